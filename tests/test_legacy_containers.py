"""Legacy and odd containers: ASF/.wmv (no presentation times), raw streams and pictures (.y4m,
.hevc, .rm...) that hold none of the sink's video, and the native audio of old phones (AMR in
.3gp), digicams (IMA ADPCM in MJPEG .avi) and Flash (Nellymoser in .flv), which is copied."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

from stream_gpen.errors import EncodeError, InvalidInputError
from stream_gpen.io import open_sink, remux
from stream_gpen.io._sink import FileSink, can_copy, check_output_encoding, codec_identity, copy_refusal
from tests._clips import copy_through, write_video

W, H = 64, 48
N = 12


def _frames(n: int = N) -> list[np.ndarray]:
    """Frame ``i`` is one flat level (20 i), so the order frames play in can be read back."""
    return [np.full((H, W, 3), 20 * i, np.uint8) for i in range(n)]


def _played(path) -> list[int]:
    """The frames of ``path`` sorted by their timestamps (as a player shows them), each as the
    input frame index its level says."""
    with av.open(str(path)) as c:
        got = [(f.time, round(float(f.to_ndarray(format="gray").mean()) / 20)) for f in c.decode(video=0)]
    assert all(t is not None for t, _ in got)
    return [i for _, i in sorted(got, key=lambda x: x[0])]


def _decode_order_times(path) -> list[float | None]:
    with av.open(str(path)) as c:
        return [None if f.time is None else float(f.time) for f in c.decode(video=0)]


# --- 1. ASF (.wmv/.asf) stores no presentation times: no B-frames there ---------------------------
@pytest.mark.parametrize("name", ["out.wmv", "out.asf"])
def test_a_wmv_output_plays_its_frames_in_order(tmp_path, name):
    src = write_video(tmp_path / "in.mp4", _frames())
    copy_through(src, tmp_path / name, preset="medium")  # (x264's ultrafast has no B-frames to lose)
    assert _played(tmp_path / name) == list(range(N))
    times = _decode_order_times(tmp_path / name)
    assert times == sorted(times)  # (B-frames came back as 0.04, 0.16, 0.12, 0.2, 0.08...)


def test_the_same_settings_keep_b_frames_elsewhere(tmp_path):
    """(So the clip above would have had B-frames.)"""
    src = write_video(tmp_path / "in.mp4", _frames())
    copy_through(src, tmp_path / "o.mkv", preset="medium")
    with av.open(str(tmp_path / "o.mkv")) as c:
        assert c.streams.video[0].codec_context.has_b_frames


@pytest.mark.parametrize("fmt", ["asf", "asf_stream", "avi"])
def test_nvenc_into_asf_and_avi_has_no_b_frames(fmt):
    sink = SimpleNamespace(codec="h264", crf=None, preset=None, live=False, _pix="nv12",
                           _out=SimpleNamespace(format=SimpleNamespace(name=fmt)))
    assert FileSink._nvenc_options(sink)["bf"] == "0"
    sink._out.format.name = "mp4"
    assert "bf" not in FileSink._nvenc_options(sink)


def test_a_b_frame_stream_is_not_copied_into_wmv(tmp_path):
    src = write_video(tmp_path / "b.mp4", _frames(), options={"bf": "3"})
    with pytest.raises(EncodeError, match=r"into \.wmv: it has B-frames, whose display order the asf container"):
        remux(src, tmp_path / "b.wmv")
    assert not (tmp_path / "b.wmv").exists()


def test_mp4_h264_copied_into_wmv_plays_in_order(tmp_path):
    """MP4's length-prefixed H.264 goes into ASF as Annex B (read back, its packets were split
    into pieces: 39 frames for 20, most without a time)."""
    rng = np.random.default_rng(1)
    frames = [np.full((120, 160, 3), 12 * i, np.uint8) for i in range(20)]
    for i, f in enumerate(frames):
        f[(5 * i) % 110:(5 * i) % 110 + 10, :, 1] = rng.integers(0, 255, (10, 160), np.uint8)
    src = write_video(tmp_path / "nb.mp4", frames, options={"bf": "0"})
    assert remux(src, tmp_path / "nb.wmv") == 20
    times = _decode_order_times(tmp_path / "nb.wmv")
    assert len(times) == 20 and times == sorted(set(times))


# --- 2. raw and odd containers: .mp4 by default, refused up front when asked for --------------------
@pytest.mark.parametrize("ext", [".y4m", ".hevc", ".h265", ".ivf", ".mjpeg", ".mjpg", ".obu", ".rm", ".rmvb",
                                 ".h263", ".swf", ".yuv"])
def test_a_raw_or_odd_input_is_written_as_mp4_by_default(ext):
    from stream_gpen.api import default_output

    assert default_output(f"clips/cam{ext}") == str(Path("clips/cam_enhanced.mp4"))


@pytest.mark.parametrize("name, words", [
    ("x.y4m", r"the yuv4mpegpipe container \(\.y4m\) cannot hold h264 video"),
    ("x.rm", r"the rm container \(\.rm\) cannot hold h264 video"),
    ("x.rmvb", r"the rm container \(\.rmvb\) cannot hold h264 video"),
    ("x.mjpeg", r"the mjpeg container \(\.mjpeg\) cannot hold h264"),
    ("x.h263", r"the h263 container"),
    ("x.swf", r"the swf container"),
    ("x.dv", r"the dv container \(\.dv\) cannot hold h264 video"),
    ("x.hevc", r"the hevc container \(\.hevc\) holds only a bare HEVC stream \(no audio\)"),
    ("x.ivf", r"the ivf container \(\.ivf\) holds only a bare VP8/VP9/AV1 stream"),
])
def test_a_container_without_our_video_is_refused_by_name(name, words):
    with pytest.raises(InvalidInputError, match=words + r".*write a video container \(\.mp4"):
        check_output_encoding(name, "auto")


def test_such_a_container_is_refused_whatever_the_codec():
    with pytest.raises(InvalidInputError, match="bare HEVC"):
        check_output_encoding("x.h265", "hevc")
    with pytest.raises(InvalidInputError, match="cannot hold hevc video"):
        check_output_encoding("x.y4m", "hevc")
    check_output_encoding("x.h264", "auto")  # a bare H.264 stream is written as before
    check_output_encoding("x.wmv", "auto")


@pytest.mark.parametrize("name", ["x.y4m", "x.hevc", "x.rm"])
def test_the_sink_refuses_them_before_encoding_and_leaves_nothing(tmp_path, name):
    with pytest.raises(InvalidInputError, match="write a video container"):
        open_sink(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_the_cli_refuses_them_before_the_model_loads(tmp_path, monkeypatch, capsys):
    from stream_gpen import commands
    from stream_gpen.cli import main

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the output was refused")

    monkeypatch.setattr(commands, "_make_enhancer", no_model)
    src = write_video(tmp_path / "in.mp4", _frames(3))
    for name in ("o.y4m", "o.hevc", "o.rm", "o.dv"):
        assert main(["enhance", str(src), "-o", str(tmp_path / name), "--model", "classic", "--device", "cpu"]) == 2
        assert "cannot hold h264" in capsys.readouterr().err or name == "o.hevc"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_a_bare_stream_without_b_frames_is_copied_with_its_frame_times(tmp_path):
    """A camera's bare .h264/.hevc carries no timestamps: muxers refused every packet ("Invalid
    argument"); copied into .mp4, frame k is at k frame durations."""
    src = write_video(tmp_path / "cam.h264", _frames(), fmt="h264", options={"bf": "0"})
    assert remux(src, tmp_path / "cam.mp4") == N
    assert _played(tmp_path / "cam.mp4") == list(range(N))
    assert _decode_order_times(tmp_path / "cam.mp4") == pytest.approx([i / 25 for i in range(N)])


def test_a_bare_stream_with_b_frames_is_refused_clearly(tmp_path):
    src = write_video(tmp_path / "cam.h264", _frames(), fmt="h264", options={"bf": "3"})
    with pytest.raises(EncodeError, match=r"bare stream without timestamps and with B-frames.*re-encoded"):
        remux(src, tmp_path / "cam.mp4")
    assert remux(src, tmp_path / "again.h264") == N  # into a bare stream again, it needs none


def test_a_y4m_copy_into_mp4_fails_clearly(tmp_path):
    src = write_video(tmp_path / "raw.y4m", _frames(3), codec="rawvideo", fmt="yuv4mpegpipe")
    with pytest.raises(EncodeError, match=r"cannot stream-copy video stream #0 \(rawvideo\) into \.mp4"):
        remux(src, tmp_path / "raw.mp4")


# --- 3. codecs compared by identity, not by the name of a decoder or encoder ---------------------------
@pytest.mark.parametrize("muxer, ext, codecs", [
    ("3gp", ".3gp", ("amr_nb", "amr_wb")), ("3g2", ".3g2", ("amr_nb", "amr_wb")),
    ("matroska", ".mkv", ("dts", "ra_144", "ra_288")),
    ("asf", ".wmv", ("amr_nb", "dts", "adpcm_g722", "adpcm_g726")), ("nut", ".nut", ("amr_wb", "dts", "adpcm_g726")),
])
def test_a_muxer_listing_implementation_names_takes_the_canonical_one(tmp_path, muxer, ext, codecs):
    with av.open(str(tmp_path / f"x{ext}"), "w", format=muxer) as out:
        for codec in codecs:
            assert can_copy(out.format.name, codec, out.supported_codecs), codec


def test_codec_identity_maps_every_name_of_a_codec():
    assert {codec_identity(n) for n in ("amrnb", "libopencore_amrnb", "amr_nb")} == {"amr_nb"}
    assert codec_identity("dca") == "dts" and codec_identity("g726") == "adpcm_g726"
    assert codec_identity("mp3float") == "mp3" and codec_identity("srt") == "subrip"
    assert codec_identity("no-such-codec") == "no-such-codec"


def _with_audio(path, vcodec, acodec, rate, *, fmt=None, pix_fmt="yuv420p", layout="mono", seconds=0.5):
    """``seconds`` of 25 fps ``vcodec`` video and a 440 Hz tone in ``acodec`` (mono)."""
    with av.open(str(path), "w", format=fmt) as c:
        vs = c.add_stream(vcodec, rate=25)
        vs.width, vs.height, vs.pix_fmt = W, H, pix_fmt
        a = c.add_stream(acodec, rate=rate, layout=layout)
        for i, img in enumerate(_frames(round(25 * seconds))):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            for p in vs.encode(vf):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        fs = a.codec_context.frame_size or 1024
        rs = av.AudioResampler(format=a.codec_context.codec.audio_formats[0].name, layout=layout, rate=rate)
        total = round(seconds * rate)
        for t in range(0, total, fs):
            x = 0.2 * np.sin(2 * np.pi * 440 * np.arange(t, min(t + fs, total)) / rate)
            af = av.AudioFrame.from_ndarray(x[None].astype(np.float32), format="fltp", layout=layout)
            af.sample_rate, af.pts = rate, t
            for rf in rs.resample(af):
                for p in a.encode(rf):
                    c.mux(p)
        for p in a.encode():
            c.mux(p)
    return path


def _audio(path) -> tuple[str, int]:
    with av.open(str(path)) as c:
        name = c.streams.audio[0].codec_context.name
        return name, sum(f.samples for f in c.decode(audio=0))


def test_amr_in_3gp_is_copied(tmp_path):
    if "libopencore_amrnb" not in av.codecs_available:
        pytest.skip("no AMR-NB encoder in this FFmpeg to build the clip (can_copy is tested by name above)")
    src = _with_audio(tmp_path / "phone.3gp", "mpeg4", "libopencore_amrnb", 8000, fmt="3gp")
    sink = copy_through(src, tmp_path / "o.3gp")
    assert not [f for f in sink.fallbacks if "transcoded" in f]
    assert _audio(tmp_path / "o.3gp") == _audio(src)
    remux(src, tmp_path / "copy.3gp")  # --copy-if-no-faces: "the 3gp container does not take it"
    assert _audio(tmp_path / "copy.3gp") == _audio(src)


# --- 4. the native audio of old AVI and FLV files is copied --------------------------------------------
@pytest.mark.parametrize("name, vcodec, acodec, rate, pix_fmt", [
    ("flash.flv", "flv", "nellymoser", 22050, "yuv420p"),
    ("flash_adpcm.flv", "flv", "adpcm_swf", 22050, "yuv420p"),
])
def test_native_audio_of_old_avi_and_flv_is_copied_in_full(tmp_path, name, vcodec, acodec, rate, pix_fmt):
    src = _with_audio(tmp_path / name, vcodec, acodec, rate, pix_fmt=pix_fmt)
    want = _audio(src)
    assert want[1] > 0.4 * rate
    out = tmp_path / f"o{src.suffix}"
    sink = copy_through(src, out)
    assert not [f for f in sink.fallbacks if "transcoded" in f]
    assert _audio(out) == want
    remux(src, tmp_path / f"copy{src.suffix}")
    assert _audio(tmp_path / f"copy{src.suffix}") == want


@pytest.mark.parametrize("acodec", ["adpcm_ima_wav", "adpcm_ms"])
def test_digicam_adpcm_into_avi_is_transcoded_and_keeps_its_time(tmp_path, acodec):
    """Copied into AVI, IMA/MS ADPCM was timed by FFmpeg's muxer from the bit rate, which FFmpeg's
    own ADPCM files leave at 0: 1 s of sound read back as 3 s (4 s as 4052 s). It is transcoded,
    said so truthfully, and lasts as long as the input."""
    src = _with_audio(tmp_path / "digicam.avi", "mjpeg", acodec, 22050, pix_fmt="yuvj420p")
    want = _audio(src)[1] / 22050
    sink = copy_through(src, tmp_path / "o.avi")
    note = next(f for f in sink.fallbacks if "transcoded" in f)
    assert f"{acodec} is not stream-copied into avi here" in note, note
    with av.open(str(tmp_path / "o.avi")) as c:
        frames = list(c.decode(audio=0))
        end = float(frames[-1].pts * frames[-1].time_base) + frames[-1].samples / frames[-1].sample_rate
    assert abs(end - want) < 0.1, (end, want)


def test_what_only_this_tool_declines_is_not_said_to_be_refused_by_the_container(tmp_path):
    with av.open(str(tmp_path / "x.mp4"), "w") as out:
        assert not can_copy(out.format.name, "pcm_s16le", out.supported_codecs)
        why = copy_refusal(out.format.name, "pcm_s16le", out.supported_codecs)
        assert "does not accept" not in why and "not stream-copied into mp4" in why
        assert copy_refusal(out.format.name, "wmav2", out.supported_codecs) == "mp4 does not accept wmav2"


def test_the_transcode_note_says_so(tmp_path):
    src = _with_audio(tmp_path / "pcm.mkv", "libx264", "pcm_s16le", 8000)
    sink = copy_through(src, tmp_path / "o.mp4")
    note = next(f for f in sink.fallbacks if "transcoded" in f)
    assert "pcm_s16le is not stream-copied into mp4 here" in note and "does not accept" not in note


def test_a_bare_h264_output_of_a_clip_with_audio_drops_the_audio(tmp_path):
    """`-o clip.h264` of a clip with sound failed at the first packet, after the model loaded
    ("'h264' format does not support 'aac' codec", exit 4); a bare stream holds the video only."""
    from tests._clips import write_pcm_clip

    src = write_pcm_clip(tmp_path / "in.mkv", range(10), range(10))
    sink = copy_through(src, tmp_path / "o.h264")
    assert any("audio stream #1 (pcm_s16le) dropped: the h264 container (.h264) holds a bare video" in d
               for d in sink.dropped), sink.dropped
    with av.open(str(tmp_path / "o.h264")) as c:
        assert [s.type for s in c.streams] == ["video"] and sum(1 for _ in c.decode(video=0)) == 10
