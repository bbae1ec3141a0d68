"""A pipe or FIFO read live: unpaced (a producer's frames as they come), paced once a whole file is
written into it faster than real time (hunt 32)."""

import logging
import os
import threading
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from stream_gpen.io._source import VideoSource

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")


def _ts(path, seconds: float, rate: int = 25) -> bytes:
    """An MPEG-TS of ``seconds`` of 64x64 video at ``rate`` fps; its bytes."""
    with av.open(str(path), "w", format="mpegts") as o:
        s = o.add_stream("mpeg2video", rate=rate)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        for n in range(round(seconds * rate)):
            f = av.VideoFrame.from_ndarray(np.full((64, 64, 3), n * 2 % 256, np.uint8), format="rgb24")
            f.pts, f.time_base = n, Fraction(1, rate)
            for p in s.encode(f):
                o.mux(p)
        for p in s.encode():
            o.mux(p)
    return path.read_bytes()


def _feed(fifo, data: bytes, seconds: float | None) -> threading.Thread:
    """Write ``data`` into ``fifo`` from a thread: spread over ``seconds`` (a live producer), or
    all at once (None: ``cat file > fifo``)."""
    def write():
        t0 = time.monotonic()
        try:
            with open(fifo, "wb", buffering=0) as w:
                for i in range(0, len(data), 1880):
                    w.write(data[i:i + 1880])
                    if seconds is not None:
                        time.sleep(max(0.0, t0 + seconds * (i + 1880) / len(data) - time.monotonic()))
        except BrokenPipeError:
            pass

    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


def test_a_live_producer_in_a_fifo_is_read_unpaced(tmp_path):
    data = _ts(tmp_path / "live.ts", 1.0)
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    writer = _feed(fifo, data, seconds=1.0)
    with VideoSource(str(fifo), live=True) as s:
        # not paced like a file (its first frame came after FFmpeg's read-ahead: every later one
        # was held that late for good), decoded with slice threads (frame threads hold frames
        # back), and no frames read at the open to guess the rate
        assert s.paced is False
        assert s._vstream.thread_type.name == "SLICE"
        assert s._options.get("fpsprobesize") == "0"
        for f in s:
            f.release()
    writer.join(5)
    assert s.paced is False and not s._ahead  # (a live producer never runs ahead of the clock)


def test_a_file_dumped_into_a_fifo_is_paced(tmp_path, caplog):
    data = _ts(tmp_path / "clip.ts", 4.0)
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    writer = _feed(fifo, data, seconds=None)  # cat clip.ts > feed
    with caplog.at_level(logging.INFO, logger="stream_gpen"):
        with VideoSource(str(fifo), live=True) as s:
            assert s.paced is False
            for f in s:
                f.release()
    writer.join(5)
    assert s.paced is True and s._ahead  # ran ahead of the wall clock: a file, played at its own rate
    assert "a whole file written into the pipe" in caplog.text


def test_an_offline_read_of_a_pipe_is_not_paced(tmp_path):
    data = _ts(tmp_path / "clip.ts", 0.4)
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    writer = _feed(fifo, data, seconds=None)
    with VideoSource(str(fifo)) as s:  # enhance /dev/stdin: every frame, as fast as it decodes
        assert s.paced is False and not s._watch_ahead
        assert "fpsprobesize" not in s._options
        n = sum(1 for f in s if f.release() or True)
    writer.join(5)
    assert n == 10
