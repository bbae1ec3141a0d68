"""A video whose frames all share one timestamp (an MPEG-TS written with its pts never set) is
placed one frame interval apart, not squeezed into a tick each (hunt 32)."""

import logging
import os
from fractions import Fraction

import av
import numpy as np
import pytest

from stream_gpen.io._source import VideoSource
from tests._clips import fed_fifo


def _one_time(path, n: int = 10, rate: int = 25, at: list | None = None) -> None:
    """An MPEG-TS of ``n`` 64x64 frames whose packets all carry pts/dts 0 (``at``: these times, in
    frames, instead), its stream at ``rate`` fps."""
    with av.open(str(path), "w", format="mpegts") as o:
        s = o.add_stream("mpeg2video", rate=rate)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        s.max_b_frames = 0
        packets = []
        for k in range(n):
            f = av.VideoFrame.from_ndarray(np.full((64, 64, 3), k * 20 % 256, np.uint8), format="rgb24")
            f.pts, f.time_base = k, Fraction(1, rate)
            packets += s.encode(f)
        packets += s.encode()
        for k, p in enumerate(packets):
            t = round((at[k] if at is not None else 0) * 90000 / rate)
            p.time_base, p.pts, p.dts = Fraction(1, 90000), t, t
            o.mux(p)


def _times(spec, **kw) -> tuple[list, VideoSource]:
    out = []
    with VideoSource(spec, **kw) as s:
        for f in s:
            out.append(round(f.time, 6))
            f.release()
    return out, s


def test_frames_sharing_one_time_are_placed_a_frame_apart(tmp_path, caplog):
    _one_time(tmp_path / "one.ts")
    with caplog.at_level(logging.WARNING, logger="stream_gpen"):
        times, s = _times(str(tmp_path / "one.ts"))
    assert times == [round(k * 0.04, 6) for k in range(10)]  # the input's length, not 0.04 s
    (said,) = [m for m in s.fallbacks if "do not advance" in m]
    assert "one frame interval apart at its rate (25 fps)" in said
    assert not [m for m in s.fallbacks if "come at or before" in m]  # not an overlap at a join


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_frames_sharing_one_time_from_a_pipe_read_live_are_timed_as_they_come(tmp_path):
    _one_time(tmp_path / "one.ts")
    fifo = tmp_path / "feed"
    t = fed_fifo(fifo, (tmp_path / "one.ts").read_bytes())
    times, s = _times(str(fifo), live=True, ring_size=16)  # (camera: each a frame after the one before)
    t.join(5)
    assert times == [round(k * 0.04, 6) for k in range(10)]


def test_a_clock_that_starts_stuck_then_moves_on_is_placed_between(tmp_path):
    # three frames at 0, then the clock goes on from frame 3: the held ones fit a frame apart
    _one_time(tmp_path / "late.ts", n=6, at=[0, 0, 0, 3, 4, 5])
    times, s = _times(str(tmp_path / "late.ts"))
    assert times == [0.0, 0.04, 0.08, 0.12, 0.16, 0.2]
    assert s.stats["stuck_frames"] == 2
    # a clock that moves on from the first frame is left as it is (a frame at or before the one
    # before it later on is a join's overlap: tests/test_source_hunt14.py, tests/test_leaps30.py)
    _one_time(tmp_path / "timed.ts", n=6, at=[0, 1, 2, 3, 5, 6])
    times, s = _times(str(tmp_path / "timed.ts"))
    assert times == [0.0, 0.04, 0.08, 0.12, 0.2, 0.24] and "stuck_frames" not in s.stats
