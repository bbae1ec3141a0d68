"""The video sink's choices: where outputs start in time, and which codec / audio each container
can hold (decided before anything is encoded)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stream_gpen.errors import InvalidInputError
from stream_gpen.io import open_sink, open_source
from stream_gpen.io._remux import remux
from stream_gpen.io._sink import _check_software_options, check_output_encoding, resolve_codec
from tests._clips import copy_through, write_video

W, H = 64, 48
TEN_H = 36000  # seconds: a TV recording / an HLS stream joined mid-way


def _late_ts(path: Path, *, video_at: float = TEN_H, audio_at: float | None = TEN_H, n: int = 10,
             audio: str = "mp2") -> Path:
    """An MPEG-TS whose clock starts at 10 h: ``n`` 25 fps frames from ``video_at``, 0.4 s of mp2
    (or ``audio``: "aac" is ADTS there, as from TV and cameras) audio from ``audio_at`` (None: no
    audio)."""
    with av.open(str(path), "w", format="mpegts") as c:
        vs = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        aus = None
        if audio_at is not None:
            aus = c.add_stream(audio, rate=48000)
            aus.layout = "stereo"
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((H, W, 3), 20 * i % 250, np.uint8), format="rgb24")
            f.pts, f.time_base = round(video_at * 25) + i, Fraction(1, 25)
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        if aus is not None:
            fs = 1152 if audio == "mp2" else 1024
            for k in range(0, round(0.4 * 48000), fs):
                x = (0.2 * np.sin(np.arange(fs) / 10)).astype(np.float32)
                af = av.AudioFrame.from_ndarray(np.stack([x, x]), format="fltp", layout="stereo")
                af.sample_rate, af.pts = 48000, round(audio_at * 48000) + k
                for p in aus.encode(af):
                    c.mux(p)
            for p in aus.encode(None):
                c.mux(p)
    return path


def _starts(path) -> dict[str, float]:
    """First presentation time (s) of the first video and audio stream, as decoded."""
    out = {}
    for kind in ("video", "audio"):
        with av.open(str(path)) as c:
            ss = [s for s in c.streams if s.type == kind]
            if ss:
                f = next(c.decode(ss[0]))
                out[kind] = float(f.pts * f.time_base)
            out["duration"] = c.duration / 1e6 if c.duration else None
    return out


# --- 1. the input's clock is not the output's ---------------------------------------------------
@pytest.mark.parametrize("name", ["o.mp4", "o.mkv"])
def test_a_clock_at_ten_hours_is_written_from_zero(tmp_path, name):
    ts = _late_ts(tmp_path / "late.ts", audio_at=None)
    copy_through(ts, tmp_path / name)
    st = _starts(tmp_path / name)
    assert abs(st["video"]) < 0.01
    assert st["duration"] < 5  # not 10 hours of an empty edit before 0.4 s of picture


def test_video_starting_after_its_audio_keeps_that_offset(tmp_path):
    # audio from 10 h, video 0.4 s later (as hamilton_stage_lowlight_multiface.mp4 has 0.85 s)
    ts = _late_ts(tmp_path / "late.ts", video_at=TEN_H + 0.4, audio_at=TEN_H)
    for name in ("o.mp4", "o.mkv"):
        copy_through(ts, tmp_path / name)
        st = _starts(tmp_path / name)
        assert abs(st["audio"]) < 0.03, name
        assert abs(st["video"] - 0.4) < 0.03, name
        assert st["duration"] < 5, name


def test_transcoded_audio_moves_with_the_video(tmp_path):
    ts = _late_ts(tmp_path / "late.ts", video_at=TEN_H + 0.4, audio_at=TEN_H)
    copy_through(ts, tmp_path / "o.mp4", audio="aac")
    st = _starts(tmp_path / "o.mp4")
    assert abs(st["video"] - 0.4) < 0.03 and st["audio"] < 0.03 and st["duration"] < 5


def test_a_file_starting_at_zero_is_left_as_it_is(tmp_path):
    ts = _late_ts(tmp_path / "late.ts", video_at=TEN_H + 0.4, audio_at=TEN_H)
    copy_through(ts, tmp_path / "a.mkv")  # audio at 0, video at 0.4
    copy_through(tmp_path / "a.mkv", tmp_path / "b.mkv")
    st = _starts(tmp_path / "b.mkv")
    assert abs(st["audio"]) < 0.03 and abs(st["video"] - 0.4) < 0.03


def test_a_live_source_stamped_with_epoch_time_starts_at_zero(tmp_path):
    # FFmpeg's v4l2 input stamps webcam frames with wall-clock time (seconds since 1970)
    spec = "lavfi:testsrc2=size=64x48:rate=25:duration=0.4,settb=1/1000000,setpts=PTS+1795935000/TB"
    copy_through(spec, tmp_path / "cam.mp4")
    st = _starts(tmp_path / "cam.mp4")
    assert abs(st["video"]) < 0.01 and st["duration"] < 5


def test_stream_copy_moves_every_stream_by_the_same_start(tmp_path):
    ts = _late_ts(tmp_path / "late.ts", video_at=TEN_H + 0.4, audio_at=TEN_H)
    remux(ts, tmp_path / "r.mkv")
    st = _starts(tmp_path / "r.mkv")
    assert abs(st["audio"]) < 0.03 and abs(st["video"] - 0.4) < 0.03 and st["duration"] < 5


# --- 2. a 10-bit AVI (capture cards) --------------------------------------------------------------
class _HighBitSource:
    high_bit_depth = True
    has_alpha = False


def test_a_high_bit_depth_avi_gets_a_codec_avi_holds():
    assert resolve_codec("auto", "x.avi", _HighBitSource()) == "h264"
    check_output_encoding("x.avi", resolve_codec("auto", "x.avi", _HighBitSource()))
    assert resolve_codec("auto", "x.mkv", _HighBitSource()) == "hevc"


def _ten_bit_clip(path, codec: str, pix_fmt: str, options: dict | None = None):
    """Three 10-bit frames (a capture card's FFV1 AVI, a HandBrake .m4v)."""
    return write_video(path, [np.full((H, W, 3), 40 * i, np.uint8) for i in range(3)], codec=codec,
                       pix_fmt=pix_fmt, options=options)


def test_a_ten_bit_avi_is_written_ten_bit(tmp_path):
    src = _ten_bit_clip(tmp_path / "cap10.avi", "ffv1", "yuv422p10le")
    sink = copy_through(src, tmp_path / "out.avi", codec="auto")
    assert sink.encoder == "libx264"
    with av.open(str(tmp_path / "out.avi")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv422p10le"
        assert sum(1 for _ in c.decode(video=0)) == 3


# FFmpeg's ipod (.m4v), 3gp/3g2 and f4v muxers take H.264 only: HEVC passed the table and failed
# mid-run (a HandBrake/Apple 10-bit .m4v failed with every option at its default)
@pytest.mark.parametrize("codec, name", [("hevc", "x.m4v"), ("vp9", "x.3gp"), ("av1", "x.3g2"), ("hevc", "x.f4v"),
                                         ("vp9", "x.m2t")])
def test_h264_only_mp4_variants_refuse_other_codecs_up_front(codec, name):
    with pytest.raises(InvalidInputError, match=rf"codec='{codec}'.*go(es)? into \.mp4, \.mkv"):
        check_output_encoding(name, codec)
    check_output_encoding(name, "h264")


def test_a_ten_bit_m4v_is_written_as_ten_bit_h264(tmp_path):
    assert resolve_codec("auto", "x.m4v", _HighBitSource()) == "h264"
    assert resolve_codec("auto", "x.3gp", _HighBitSource()) == "h264"
    src = _ten_bit_clip(tmp_path / "handbrake10.m4v", "libx264", "yuv420p10le", {"preset": "ultrafast"})
    sink = copy_through(src, tmp_path / "out.m4v", codec="auto")
    assert sink.encoder == "libx264"
    with av.open(str(tmp_path / "out.m4v")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
        assert sum(1 for _ in c.decode(video=0)) == 3


# --- 2b. MPEG-TS audio (ADTS AAC) into AVI --------------------------------------------------------
def _decoded(path, kind: str) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(**{kind: 0}))


def test_adts_aac_is_copied_into_avi(tmp_path):
    # FFmpeg's avi muxer refused the first ADTS packet ("ADTS is only supported with codec tag
    # 0x1610"): every .ts -> .avi ended with "returned 22"
    ts = _late_ts(tmp_path / "tv.ts", video_at=1.4, audio_at=1.4, audio="aac")
    sink = copy_through(ts, tmp_path / "o.avi")
    assert not any("transcoded" in m for m in sink.fallbacks)
    with av.open(str(tmp_path / "o.avi")) as c:
        assert c.streams.audio[0].codec_context.name == "aac" and c.streams.audio[0].codec_context.extradata
    assert _decoded(tmp_path / "o.avi", "audio") > 10 and _decoded(tmp_path / "o.avi", "video") == 10
    remux(ts, tmp_path / "r.avi")  # --copy-if-no-faces agrees
    assert _decoded(tmp_path / "r.avi", "audio") > 10 and _decoded(tmp_path / "r.avi", "video") == 10


# --- 2c. cover art in a stream copy ---------------------------------------------------------------
def test_stream_copy_keeps_cover_art_a_cover(tmp_path):
    src = tmp_path / "phone.mp4"
    with av.open(str(src), "w") as c:
        vs = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        cover = c.add_stream("png", rate=1)
        cover.width, cover.height, cover.pix_fmt = W, H, "rgb24"
        cover.disposition = int(av.stream.Disposition.attached_pic)
        img = av.VideoFrame.from_ndarray(np.full((H, W, 3), 200, np.uint8), format="rgb24")
        img.pts = 0
        for p in cover.encode(img):
            c.mux(p)
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.full((H, W, 3), 40 * i, np.uint8), format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    with av.open(str(src)) as c:
        assert [int(s.disposition) & int(av.stream.Disposition.attached_pic) for s in c.streams] == [0, 1024]
    remux(src, tmp_path / "copy.mp4")
    with av.open(str(tmp_path / "copy.mp4")) as c:
        assert [int(s.disposition) & int(av.stream.Disposition.attached_pic) for s in c.streams] == [0, 1024]
    # Matroska holds covers as attachments, read back as the same picture (a cover stream made
    # the stream copy fail, so --copy-if-no-faces re-encoded); MPEG-TS has no covers: left out
    # with a warning, as the encoding sink does, not copied as a one-frame video track.
    remux(src, tmp_path / "copy.mkv")
    with av.open(str(tmp_path / "copy.mkv")) as c:
        assert [int(s.disposition) & int(av.stream.Disposition.attached_pic) for s in c.streams] == [0, 1024]
        assert c.streams[1].metadata.get("mimetype") == "image/png"
        pic = next(c.decode(c.streams[1])).to_ndarray(format="rgb24")
        assert pic.shape == (H, W, 3) and (pic == 200).all()
        assert sum(1 for _ in c.decode(c.streams[0])) == 3
    remux(src, tmp_path / "copy.ts")
    with av.open(str(tmp_path / "copy.ts"), format="mpegts") as c:  # (too short to be probed)
        assert [s.type for s in c.streams] == ["video"] and sum(1 for _ in c.decode(video=0)) == 3


# --- 3. SVT-AV1 has no crf 0 ------------------------------------------------------------------------
def test_av1_crf_0_is_refused_with_its_range():
    with pytest.raises(InvalidInputError, match=r"crf=0 for codec='av1' must be within 1\.\.63"):
        _check_software_options("av1", 0, None)
    _check_software_options("av1", 1, None)
    _check_software_options("h264", 0, None)  # x264's lossless


# --- 4. codec / audio the container cannot hold: refused up front -----------------------------------
@pytest.mark.parametrize("codec, name, words", [
    ("vp9", "x.ts", "VP9/AV1 go into .mp4, .mkv or .webm"),
    ("av1", "x.ts", "VP9/AV1 go into .mp4, .mkv or .webm"),
    ("av1", "x.mov", "VP9/AV1 go into .mp4, .mkv or .webm"),
    ("vp9", "x.mov", "VP9/AV1 go into .mp4, .mkv or .webm"),
    ("prores", "x.mp4", "ProRes goes into .mov or .mkv"),
    ("prores", "x.webm", "ProRes goes into .mov or .mkv"),
    ("prores", ".avi", "ProRes goes into .mov or .mkv"),
    ("hevc", "x.avi", "HEVC goes into"),
    ("h264", "x.webm", "cannot go into webm"),
])
def test_codecs_a_container_cannot_hold_are_refused(codec, name, words):
    with pytest.raises(InvalidInputError, match=rf"codec='{codec}'.*{words}" if words[0] != "c" else words):
        check_output_encoding(name, codec)


@pytest.mark.parametrize("codec, name", [("vp9", "x.mp4"), ("av1", "x.webm"), ("prores", "x.mov"),
                                         ("prores", "x.mkv"), ("hevc", "x.ts"), ("h264", "x.avi"),
                                         ("auto", "x.webm"), ("vp9", "x.unknownext")])
def test_codecs_a_container_holds_pass(codec, name):
    check_output_encoding(name, codec)


def test_a_stream_url_is_judged_by_its_muxer():
    with pytest.raises(InvalidInputError, match="VP9/AV1 go into"):
        check_output_encoding("udp://host:9000", "vp9")  # mpegts: VP9 would be a data stream
    check_output_encoding("rtmp://host/live/key", "hevc")  # enhanced FLV


def test_aac_into_webm_is_refused_with_a_way_out():
    with pytest.raises(InvalidInputError, match=r"--audio aac\) cannot go into \.webm.*--audio copy.*\.mkv"):
        check_output_encoding("x.webm", "vp9", "aac")
    check_output_encoding("x.webm", "vp9", "copy")


def test_the_sink_refuses_before_encoding_and_leaves_nothing(tmp_path):
    with pytest.raises(InvalidInputError, match="VP9/AV1 go into"):
        open_sink(tmp_path / "x.ts", codec="vp9")
    with pytest.raises(InvalidInputError, match="--audio aac"):
        open_sink(tmp_path / "x.webm", codec="vp9", audio="aac")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("codec, fmt", [("vp9", "mpegts"), ("prores", "mp4"), ("hevc", "ipod"), ("vp9", "3gp"),
                                        ("hevc", "f4v")])
def test_the_table_agrees_with_ffmpeg(tmp_path, codec, fmt):
    """What the table refuses really fails (or, in mpegts, turns into a data stream)."""
    with pytest.raises(InvalidInputError):
        check_output_encoding("out", codec, fmt=fmt)
    enc = {"vp9": "libvpx-vp9", "prores": "prores_ks", "hevc": "libx265"}[codec]
    pix = "yuv422p10le" if codec == "prores" else "yuv420p"
    path = tmp_path / f"t.{fmt}"
    try:
        write_video(path, [np.zeros((H, W, 3), np.uint8)] * 30, codec=enc, pix_fmt=pix, fmt=fmt)
        with av.open(str(path)) as c:
            assert not c.streams.video
    except (av.error.FFmpegError, ValueError):
        pass


# --- 5. VP9's alpha needs Matroska/WebM ------------------------------------------------------------
def test_vp9_alpha_into_mp4_says_dropped_not_kept(tmp_path, caplog):
    img = np.zeros((H, W, 4), np.uint8)
    img[..., 1] = 120
    img[:, W // 2:, 3] = 255  # the left half transparent
    src = write_video(tmp_path / "keyed.webm", [img] * 2, codec="libvpx-vp9", pix_fmt="yuva420p",
                      options={"cpu-used": "8", "deadline": "realtime"})
    with open_source(src) as s:
        if not s.has_alpha:
            pytest.skip("this FFmpeg build reads no VP9 alpha")
    caplog.set_level("INFO")
    sink = copy_through(src, tmp_path / "o.mp4", codec="vp9", preset=None)
    assert any("alpha channel (transparency) is dropped" in m for m in sink.fallbacks)
    assert "transparency kept" not in caplog.text
    sink = copy_through(src, tmp_path / "o.webm", codec="vp9", preset=None)
    assert not any("dropped" in m for m in sink.fallbacks)


def test_temporary_outputs_of_killed_runs_are_removed(tmp_path):
    """`kill -9` (or a power cut) left the hidden temporary output behind, and no later run removed
    it: each as large as the video written so far. One made on this machine whose process is gone
    is removed (and said), however fresh (a killed run wrote up to its end); a live run's, or one
    another machine (or container) is writing into a shared folder is left alone."""
    import os
    import subprocess
    import sys
    import time

    from stream_gpen.io import open_sink, open_source
    from stream_gpen.io._sink import _machine_tag
    from tests._clips import write_video

    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)])
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    here = _machine_tag()
    stale = tmp_path / f".o.{here}-{gone}-0123abcd.tmp.mp4"
    fresh = tmp_path / f".o.{here}-{gone}-4567abcd.tmp.mp4"
    alive = tmp_path / f".o.{here}-{os.getppid()}-89abcdef.tmp.mp4"
    other = tmp_path / f".other.{here}-{gone}-0123abcd.tmp.mp4"
    elsewhere = tmp_path / f".o.{'0' * 8 if here != '0' * 8 else '1' * 8}-{gone}-0123abcd.tmp.mp4"  # another machine
    for p in (stale, fresh, alive, other, elsewhere):
        p.write_bytes(b"\0" * 1000)
    old = time.time() - 3600
    for p in (stale, alive, other, elsewhere):
        os.utime(p, (old, old))
    with open_source(src) as s, open_sink(tmp_path / "o.mp4", source=s, preset="ultrafast") as sink:
        for f in s:
            sink.write(f)
    assert not stale.exists() and not fresh.exists() and alive.exists() and other.exists() and elsewhere.exists()
    assert any(f"removed {stale.name} (1,000 bytes)" in f for f in sink.fallbacks), sink.fallbacks


def test_a_ctrl_c_while_the_encoder_drains_keeps_a_partial_output(tmp_path, monkeypatch):
    """In a Python program (no command-line deferral), a KeyboardInterrupt while close() waited
    for the encoder's last frames discarded the whole encoded file; it is kept as .partial."""
    from stream_gpen.errors import Interrupted
    from stream_gpen.io import _sink, open_sink, open_source
    from tests._clips import write_video

    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(6)])
    real_join, calls = _sink.FileSink._join, []

    def join(self):
        real_join(self)
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt  # the user presses Ctrl-C as the last frames are encoded

    monkeypatch.setattr(_sink.FileSink, "_join", join)
    with pytest.raises(Interrupted, match="interrupted while finishing: 6 frames were saved to"):
        with open_source(src) as s, open_sink(tmp_path / "o.mp4", source=s, preset="ultrafast") as sink:
            for f in s:
                sink.write(f)
    assert not (tmp_path / "o.mp4").exists()
    with av.open(str(tmp_path / "o.partial.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 6
    assert not list(tmp_path.glob(".o.*"))
