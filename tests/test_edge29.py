"""Input edges, review 29.

1. Frames without a pts in a container that has times (an MPEG-TS whose first PES carry no PTS,
   a PES that lost it) were timed by their index over the frame rate: the leading ones at 0 s,
   0.04 s, ... before timed frames 10 s on (a 10 s gap in the output), and one among B-frames
   onto a timed frame's time (pushed one tick after it by the sink). Now they are placed one
   frame interval apart before the first timed frame, or between the timed frames around them.
2. An MPEG-TS with two programs (two channels, each a video and its audio): the output kept the
   audio of both, the other program's first (players play it with the restored picture). Now the
   audio (subtitles, data) of the restored video's program only is kept, the others dropped with
   a note that says which audio was kept.
"""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
from _clips import copy_through, read_times, ts_clip

from stream_gpen.io._source import VideoSource

RATE = 25
N = 50


def _strip_pts(data: bytearray, first: int, stop: int) -> bytearray:
    """The video PES headers ``first`` to ``stop - 1`` (in file order) without their PTS/DTS: the
    flags cleared and the fields overwritten with stuffing (the header keeps its length)."""
    k = 0
    for off in range(0, len(data), 188):
        p = data[off:off + 188]
        if not p[1] & 0x40:
            continue  # (not the start of a PES)
        afc, i = (p[3] >> 4) & 3, 4
        if afc & 2:
            i += 1 + p[4]
        if not afc & 1 or p[i:i + 3] != b"\x00\x00\x01" or not 0xE0 <= p[i + 3] <= 0xEF:
            continue
        if first <= k < stop and p[i + 7] & 0xC0:
            n = 10 if p[i + 7] & 0xC0 == 0xC0 else 5
            data[off + i + 7] &= 0x3F
            data[off + i + 9:off + i + 9 + n] = b"\xff" * n
        k += 1
    return data


def _video_times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as c:
        return [f.pts * Fraction(f.time_base) for f in c.decode(c.streams.video[0])]


@pytest.mark.parametrize("t0, bf, cut", [(10.0, 2, (0, 5)), (0.0, 2, (0, 5)), (10.0, 0, (0, 5)), (0.0, 2, (20, 25))],
                         ids=["leading-10h-bframes", "leading-bframes", "leading-10h", "mid-stream"])
def test_frames_without_pts_keep_one_frame_interval(tmp_path, t0, bf, cut):
    intact = tmp_path / "intact.ts"
    ts_clip(intact, n=N, bf=bf, t0=t0)
    src = tmp_path / "nopts.ts"
    src.write_bytes(_strip_pts(bytearray(intact.read_bytes()), *cut))
    with av.open(str(src)) as c:  # (the input is what the test says: packets without times)
        assert sum(p.pts is None for p in c.demux(c.streams.video[0]) if p.size) == cut[1] - cut[0]

    times, _, _ = read_times(src)
    want, _, _ = read_times(intact)
    assert len(times) == N
    assert times == pytest.approx(want, abs=1e-6)

    sink = copy_through(src, tmp_path / "o.mp4")
    assert sink.fixed_pts == 0  # (no frame pushed one tick after another)
    got = _video_times(tmp_path / "o.mp4")
    copy_through(intact, tmp_path / "ref.mp4")
    ref = _video_times(tmp_path / "ref.mp4")
    assert len(got) == N
    steps = {round(float(b - a), 4) for a, b in zip(got, got[1:])}
    assert steps == {1 / RATE}
    assert got == ref  # the same timeline as the intact file's: its length too
    with av.open(str(tmp_path / "o.mp4")) as o, av.open(str(tmp_path / "ref.mp4")) as r:
        assert o.duration == r.duration


def _placed(frames, *, live=False, gap=Fraction(1, RATE)):
    """Frames ``(pts or None)`` (1/90000 s) through ``VideoSource._untimed_placed``: their pts
    afterwards, and the stats it kept."""
    me = SimpleNamespace(_container=None, _hold_gap=lambda: gap, live=live, spec="clip.ts", stats={},
                         _vstream=SimpleNamespace(time_base=Fraction(1, 90000)))
    fs = [SimpleNamespace(pts=p, time_base=Fraction(1, 90000)) for p in frames]
    out = list(VideoSource._untimed_placed(me, iter(fs)))
    assert out == fs  # (in order, none lost)
    return [f.pts for f in out], me.stats


def test_untimed_frames_placed_between_their_neighbours():
    T = 3600  # one frame at 25 fps
    pts, stats = _placed([None, None, 10 * T, 11 * T, None, None, 14 * T, None])
    assert pts == [8 * T, 9 * T, 10 * T, 11 * T, 12 * T, 13 * T, 14 * T, 15 * T]
    assert stats["untimed_frames"] == 5
    # squeezed evenly where one interval apart does not fit (never onto the next timed frame)
    pts, _ = _placed([0, None, None, None, 2 * T])
    assert pts == [0, T // 2, T, 3 * T // 2, 2 * T]


def test_untimed_frames_beyond_the_hold():
    T = 3600
    # a stream with no times at all in a timed container: left to the index over the rate
    pts, stats = _placed([None] * 40)
    assert pts == [None] * 40 and "untimed_frames" not in stats
    # after a timed frame, more than 1 s of frames without one go on a frame interval apart
    pts, _ = _placed([0] + [None] * 40 + [100 * T])
    assert pts == [k * T for k in range(41)] + [100 * T]


def test_live_untimed_frames_wait_only_at_the_start():
    T = 3600
    me = SimpleNamespace(_container=None, _hold_gap=lambda: Fraction(1, RATE), live=True, spec="udp://x", stats={},
                         _vstream=SimpleNamespace(time_base=Fraction(1, 90000)))
    fs = [SimpleNamespace(pts=p, time_base=Fraction(1, 90000)) for p in (None, 5 * T, None, 9 * T)]
    gen = VideoSource._untimed_placed(me, iter(fs))
    assert next(gen) is fs[0] and fs[0].pts == 4 * T  # held for the first timed frame
    assert next(gen) is fs[1]
    assert next(gen) is fs[2] and fs[2].pts == 6 * T  # given out at once, before 9 T is read
    assert next(gen) is fs[3]


# -- 2. two programs ---------------------------------------------------------------------------


def _program(path: Path, sid: int, pmt_pid: int, first_pid: int, size: tuple[int, int], rate: int | None) -> bytes:
    """A one-program MPEG-TS (service ``sid``): ``N`` frames of ``size`` and, with ``rate``, AAC
    at that sample rate, its PMT and streams at the PIDs given."""
    w, h = size
    with av.open(str(path), "w", format="mpegts", options={
            "mpegts_service_id": str(sid), "mpegts_pmt_start_pid": str(pmt_pid), "mpegts_start_pid": str(first_pid)}) as c:
        v = c.add_stream("libx264", rate=RATE, options={"bf": "0"})
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = c.add_stream("aac", rate=rate, layout="mono") if rate else None
        for i in range(N):
            fr = av.VideoFrame.from_ndarray(np.full((h, w, 3), 7 * i % 255, np.uint8), format="rgb24")
            fr.pts, fr.time_base = i, Fraction(1, RATE)
            for p in v.encode(fr):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        if a is not None:
            fs = a.codec_context.frame_size or 1024
            for k in range(0, N * rate // RATE, fs):
                af = av.AudioFrame.from_ndarray(np.zeros((1, fs), np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = rate, k, Fraction(1, rate)
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
    return path.read_bytes()


def _crc32_mpeg(b: bytes) -> int:
    crc = 0xFFFFFFFF
    for x in b:
        crc ^= x << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def _pat(programs: list[tuple[int, int]], cc: int) -> bytes:
    body = b"".join(sid.to_bytes(2, "big") + (0xE000 | pid).to_bytes(2, "big") for sid, pid in programs)
    n = 5 + len(body) + 4
    sec = bytes([0x00, 0xB0 | n >> 8, n & 0xFF, 0x00, 0x01, 0xC1, 0x00, 0x00]) + body
    sec += _crc32_mpeg(sec).to_bytes(4, "big")
    p = bytes([0x47, 0x40, 0x00, 0x10 | cc & 15, 0x00]) + sec
    return p + b"\xff" * (188 - len(p))


def _multiplex(path: Path, a: bytes, b: bytes, programs: list[tuple[int, int]]) -> Path:
    """Two one-program TS files as one two-program TS (a DVB multiplex): their packets
    interleaved in step, their own PAT/SDT replaced by one PAT that lists both programs."""
    def packets(d):
        return [d[i:i + 188] for i in range(0, len(d), 188) if ((d[i + 1] & 0x1F) << 8 | d[i + 2]) not in (0, 0x11)]

    pa, pb = packets(a), packets(b)
    out, i, j = [], 0, 0
    while i < len(pa) or j < len(pb):
        if (i + j) % 40 == 0:
            out.append(_pat(programs, len(out)))
        if j >= len(pb) or (i < len(pa) and i / len(pa) <= j / len(pb)):
            out.append(pa[i])
            i += 1
        else:
            out.append(pb[j])
            j += 1
    path.write_bytes(b"".join(out))
    return path


def _two_programs(tmp_path: Path, *, second_audio: bool = True) -> Path:
    """Program 1: 64x48 video, 8 kHz audio; program 2: 96x64 video (the largest: restored) and
    16 kHz audio (or none)."""
    a = _program(tmp_path / "p1.ts", 1, 0x1000, 0x100, (64, 48), 8000)
    b = _program(tmp_path / "p2.ts", 2, 0x1100, 0x200, (96, 64), 16000 if second_audio else None)
    return _multiplex(tmp_path / "two.ts", a, b, [(1, 0x1000), (2, 0x1100)])


def test_stream_programs(tmp_path):
    from stream_gpen.io._meta import stream_programs

    src = _two_programs(tmp_path)
    with av.open(str(src)) as c:
        assert stream_programs(c) == {0: {1}, 1: {1}, 2: {2}, 3: {2}}
        assert [s.type for s in c.streams] == ["video", "audio", "video", "audio"]
    with av.open(str(tmp_path / "p1.ts")) as c:
        assert stream_programs(c) == {}  # one program: every stream goes with the video


def test_two_programs_keep_the_restored_videos_audio(tmp_path, caplog):
    src = _two_programs(tmp_path)
    caplog.set_level(logging.INFO, logger="stream_gpen")
    sink = copy_through(src, tmp_path / "o.mkv")
    with av.open(str(tmp_path / "o.mkv")) as c:
        assert [(s.type, s.codec_context.width if s.type == "video" else s.codec_context.sample_rate)
                for s in c.streams] == [("video", 96), ("audio", 16000)]  # program 2's, not program 1's
    assert ("audio stream #1 (aac) dropped: it is in program 1, the restored video (stream #2) in program 2 "
            "(its audio, #3, is kept)") in sink.dropped
    assert "o.mkv: of 2 audio streams, #3 (aac) kept: in program 2 with the restored video (stream #2)" in caplog.text
    assert "restoring #2 (96x64, the largest, program 2); not restored: #0 (64x48, program 1)" in caplog.text


def test_a_program_without_audio_takes_none_of_the_others(tmp_path):
    src = _two_programs(tmp_path, second_audio=False)
    sink = copy_through(src, tmp_path / "o.mp4")
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert [s.type for s in c.streams] == ["video"]
    assert ("audio stream #1 (aac) dropped: it is in program 1, the restored video (stream #2) in program 2 "
            "(which has no audio)") in sink.dropped
