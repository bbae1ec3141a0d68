"""Session 34 leftovers.

* An HEVC ``.m3u8`` output (fMP4 segments, session 33) of a source with ADTS AAC (MPEG-TS, a
  broadcast or camera recording) failed at the first audio packet, said as "cannot write into the
  output folder ...: permission denied": FFmpeg's hls muxer hands copied packets to its mp4 muxer
  without the ``aac_adtstoasc`` conversion that muxer makes on its own.
* An AV1 ``.m3u8`` output was refused, though HLS carries AV1 in fMP4 segments.
* ``Enhancer.enhance_file`` of a live source (an rtsp/udp... URL, a device) did not warm the face
  model's CUDA graphs up, as camera, stream() and serve do: its first seconds stalled and dropped.
* (Checked, not changed) ``enhance photo.jpg --encoder nvenc`` on a machine without NVENC writes
  the photo and says the option is unused, where a video is refused: pinned here.
"""
from __future__ import annotations

import logging

import av
import pytest

from _clips import copy_through, ts_clip
from stream_gpen.cli import main
from stream_gpen.errors import InvalidInputError
from stream_gpen.io._sink import check_output_encoding, segments_there
from test_warmup33 import LAVFI, _enhancer, _GraphRunner


def _audio_seconds(path) -> float:
    with av.open(str(path)) as c:
        return sum(f.samples for f in c.decode(audio=0)) / c.streams.audio[0].sample_rate


def _playlist(tmp_path, codec: str, **kw) -> None:
    """``in.ts`` (2 s at 25 fps, ADTS AAC audio) written as ``o.m3u8`` in ``codec``; checks that its
    segments are fMP4 and listed so."""
    ts_clip(tmp_path / "in.ts", 50)
    copy_through(tmp_path / "in.ts", tmp_path / "o.m3u8", codec=codec, **kw)
    names = sorted(q.name for q in segments_there(tmp_path / "o.m3u8"))
    assert "o_init.mp4" in names and "o_0.m4s" in names and not any(n.endswith(".ts") for n in names), names
    text = (tmp_path / "o.m3u8").read_text()
    assert '#EXT-X-MAP:URI="o_init.mp4"' in text and "o_0.m4s" in text, text
    with av.open(str(tmp_path / "o.m3u8")) as c:
        assert [s.codec_context.codec.canonical_name for s in c.streams] == [codec, "aac"]
        assert len(list(c.decode(video=0))) == 50
    assert abs(_audio_seconds(tmp_path / "o.m3u8") - _audio_seconds(tmp_path / "in.ts")) < 0.01


def test_an_hevc_playlist_of_a_ts_keeps_its_adts_audio(tmp_path):
    _playlist(tmp_path, "hevc")


# An AV1 ``.m3u8`` output was refused ("cannot go into .m3u8 (mpegts holds 'h264' / 'hevc')"),
# though Apple's HLS spec takes AV1 in fragmented-MP4 segments, as it takes HEVC (MPEG-TS has no AV1
# mapping: FFmpeg's mpegts muxer writes it as an unnamed data stream).

def test_an_av1_playlist_has_fmp4_segments_and_keeps_its_audio(tmp_path):
    _playlist(tmp_path, "av1", preset="12")
    assert b"av01" in (tmp_path / "o_init.mp4").read_bytes()  # (AV1's ISO-BMFF sample entry)


@pytest.mark.parametrize("fmt", [None, "hls"])  # (as the CLI judges the name; as the sink, its muxer)
def test_an_m3u8_takes_av1_but_still_refuses_vp9_and_prores(fmt):
    check_output_encoding("o.m3u8", "av1", fmt=fmt)
    check_output_encoding("o.m3u8", "hevc", fmt=fmt)
    for codec in ("vp9", "prores"):
        with pytest.raises(InvalidInputError, match=rf"codec='{codec}'.*cannot go into \.m3u8 .*'h264' / 'hevc' / 'av1'"):
            check_output_encoding("o.m3u8", codec, fmt=fmt)


def _live_lavfi(enh, spec: str):
    """``enh._open`` (recording "open", see test_warmup33's ``_enhancer``) opening the lavfi graph,
    live, 5 frames: a stand-in for ``spec``, a camera or network stream the test machine has not."""
    opened = enh._open

    def open_(src, **kw):
        assert src == spec
        return opened(LAVFI.replace("testsrc2=", "testsrc2=duration=0.2:"), **{**kw, "live": True})

    enh._open = open_


@pytest.mark.parametrize("spec, first", [
    ("rtsp://127.0.0.1:9/cam", [("warmup", (1, 2, 4)), "open"]),  # (said live by its name: before it opens)
    ("http://127.0.0.1:9/live", ["open", ("warmup", (1, 2, 4))]),  # (said live by the open)
])
def test_enhance_file_warms_up_for_a_live_source(tmp_path, mobilenet_weights, spec, first):
    events: list = []
    enh = _enhancer(_GraphRunner(events), mobilenet_weights)
    _live_lavfi(enh, spec)
    summary = enh.enhance_file(spec, tmp_path / "o.mkv")
    assert summary.frames_out >= 1
    assert events[:2] == first and events.count(("warmup", (1, 2, 4))) == 1, events
    assert "warmup" in summary.stage_seconds, summary.stage_seconds


def test_enhance_file_warms_up_nothing_for_a_file_or_on_the_cpu(tmp_path, mobilenet_weights):
    events: list = []
    enh = _enhancer(_GraphRunner(events), mobilenet_weights)
    ts_clip(tmp_path / "in.ts", 5)
    enh.enhance_file(tmp_path / "in.ts", tmp_path / "o.mkv")
    assert ("warmup", (1, 2, 4)) not in events, events
    cpu: list = []  # (a restorer that captures no graphs: the CPU, the classic model)
    enh = _enhancer(_GraphRunner(cpu, cuda_graphs=False), mobilenet_weights)
    _live_lavfi(enh, "rtsp://127.0.0.1:9/cam")
    enh.enhance_file("rtsp://127.0.0.1:9/cam", tmp_path / "o2.mkv")
    assert not any(isinstance(e, tuple) for e in cpu), cpu


def test_live_by_name():
    from stream_gpen.io._source import live_by_name

    assert live_by_name("rtsp://cam/1") and live_by_name("UDP://@:1234") and live_by_name("srt://h:1")
    assert not live_by_name("https://h/v.mp4") and not live_by_name("hls://h/x.m3u8")
    assert not live_by_name("lavfi:testsrc2") and not live_by_name("clip.mp4") and not live_by_name("file:///x")


def test_a_photo_with_encoder_nvenc_is_written_and_the_option_said_unused(tmp_path, enh, face, cli_env, capsys,
                                                                         caplog):
    """A photo has no video encoder: --encoder nvenc is not probed for it (this machine has no
    NVENC, which refuses a video), only said to be unused, as the other video options are."""
    photo = tmp_path / "a.jpg"
    face.save(photo)
    assert main(["enhance", str(photo), "-o", str(tmp_path / "c.jpg"), "--encoder", "nvenc", *cli_env]) == 0
    assert f"--encoder applies to videos; {photo} is written as a photo" in capsys.readouterr().err
    assert (tmp_path / "c.jpg").is_file()
    with caplog.at_level(logging.WARNING):
        enh.enhance_file(photo, tmp_path / "b.jpg", encoder="nvenc")
    assert "encoder applies to videos" in caplog.text and (tmp_path / "b.jpg").is_file()
