"""``--copy-if-no-faces`` on an MPEG-TS of two programs (hunt 30): the re-encode keeps the restored
video's program (its video, its audio: session 29), but the stream copy that replaces it when no
face was found copied every stream of every program: the other channel's video and audio came
back, and the summary's "dropped" notes of the re-encode no longer described the output. Now the
copy keeps the main video's program only, as the re-encode did, its start taken from those
streams; the other program's streams are left out (said once: by the re-encode, or by the copy)."""
from __future__ import annotations

import logging
from fractions import Fraction

import av
import numpy as np
import pytest

from stream_gpen.io import remux
from tests.test_edge29 import N, RATE, _multiplex, _two_programs


def _streams(path):
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.width if s.type == "video" else s.codec_context.sample_rate)
                for s in c.streams]


@pytest.mark.parametrize("ext", [".ts", ".mkv"])
def test_copy_if_no_faces_keeps_the_restored_programs_streams(tmp_path, enh, ext):
    src = _two_programs(tmp_path)
    reencoded = enh.enhance_file(src, tmp_path / f"re{ext}")
    copied = enh.enhance_file(src, tmp_path / f"copy{ext}", copy_if_no_faces=True)
    assert copied.faces_restored == 0 and copied.encoder == "copy"
    assert _streams(tmp_path / f"copy{ext}") == _streams(tmp_path / f"re{ext}") == [("video", 96), ("audio", 16000)]
    # (what the re-encode said it dropped is what the copy left out)
    for notes in (reencoded.fallbacks, copied.fallbacks):
        assert any(n.startswith("audio stream #1 (aac) dropped: it is in program 1") for n in notes), notes
        assert any(n.startswith("video stream #0 (h264) dropped") for n in notes), notes
    assert "no faces found: the input was stream-copied to the output (copy_if_no_faces=True)" in copied.fallbacks


def test_remux_says_the_other_programs_streams_it_leaves_out(tmp_path, caplog):
    src = _two_programs(tmp_path)
    caplog.set_level(logging.INFO, logger="stream_gpen")
    n = remux(src, tmp_path / "o.ts")
    assert n == 50 and _streams(tmp_path / "o.ts") == [("video", 96), ("audio", 16000)]
    for i, kind in ((0, "video (h264)"), (1, "audio (aac)")):
        kind, codec = kind.split()
        assert (f"remux: {kind} stream #{i} {codec} dropped: it is in program 1, the video copied (stream #2) in "
                "program 2 (its audio, #3, is kept)") in caplog.text, caplog.text
    assert "o.ts: of 2 audio streams, #3 (aac) kept: in program 2 with the video copied (stream #2)" in caplog.text
    # what the re-encode said dropped already is not said again
    caplog.clear()
    remux(src, tmp_path / "p.ts", said={"video stream #0 (h264) dropped: only the main video stream is restored",
                                        "audio stream #1 (aac) dropped: it is in program 1, the restored video ..."})
    assert "remux:" not in caplog.text, caplog.text


def test_a_program_without_audio_copies_none_of_the_others(tmp_path):
    src = _two_programs(tmp_path, second_audio=False)
    remux(src, tmp_path / "o.mkv")
    assert _streams(tmp_path / "o.mkv") == [("video", 96)]


def _late_program(path, sid: int, pmt_pid: int, first_pid: int, size, t0: int) -> bytes:
    """A one-program MPEG-TS of ``N`` frames of ``size`` from ``t0`` seconds on (no audio)."""
    w, h = size
    with av.open(str(path), "w", format="mpegts", options={
            "mpegts_service_id": str(sid), "mpegts_pmt_start_pid": str(pmt_pid), "mpegts_start_pid": str(first_pid)}) as c:
        v = c.add_stream("libx264", rate=RATE, options={"bf": "0"})
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        for i in range(N):
            fr = av.VideoFrame.from_ndarray(np.full((h, w, 3), 7 * i % 255, np.uint8), format="rgb24")
            fr.pts, fr.time_base = t0 * RATE + i, Fraction(1, RATE)
            for p in v.encode(fr):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    return path.read_bytes()


def test_the_copy_starts_where_its_own_program_starts(tmp_path):
    """Program 1 (small: not the one copied) 20 s before program 2: the copy was moved by the
    earliest stream of all, so program 2's video began 20 s into the output."""
    a = _late_program(tmp_path / "p1.ts", 1, 0x1000, 0x100, (64, 48), 0)
    b = _late_program(tmp_path / "p2.ts", 2, 0x1100, 0x200, (96, 64), 20)
    src = _multiplex(tmp_path / "two.ts", a, b, [(1, 0x1000), (2, 0x1100)])
    remux(src, tmp_path / "o.mkv")
    with av.open(str(tmp_path / "o.mkv")) as c:
        assert [s.codec_context.width for s in c.streams] == [96]
        first = min(float(p.pts * p.time_base) for p in c.demux(c.streams.video[0]) if p.pts is not None)
    assert first < 0.5, first
