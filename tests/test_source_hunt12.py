"""The source on damaged or awkward inputs: one damaged timestamp in a transport stream (not a join
of recordings), and an mp4 whose index is at its end read from a pipe (not a damaged file)."""
from __future__ import annotations

import logging
import os
import threading

import av
import numpy as np
import pytest

from stream_gpen.errors import InvalidInputError
from stream_gpen.io import open_source
from tests._clips import damage_pes, read_times, ts_clip


@pytest.mark.parametrize("damaged", [(10,), (10, 11)], ids=["one", "two-in-a-row"])
def test_a_damaged_timestamp_is_retimed_not_taken_for_a_join(tmp_path, caplog, damaged):
    """A video PES 2 hours ahead, the next back on the timeline: taken for a leap, then a join of
    recordings, everything after it was moved 2 hours on, away from its audio (a 2 s clip came
    out 2 hours long). Now it is retimed between its neighbours, and the frames run on as filmed."""
    data = ts_clip(tmp_path / "a.ts")
    for k in damaged:
        damage_pes(data, "video", k, 7200.0)
    path = tmp_path / "bad.ts"
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO, logger="stream_gpen.io._source"):
        times, audio, _ = read_times(path)
    assert len(times) == 25, times
    steps = np.diff(times)
    assert max(times) < 1.5 and steps.min() > 0.039 and steps.max() < 0.041, times
    assert audio and max(audio) < 1.5, audio
    msgs = [r.getMessage() for r in caplog.records]
    assert not any("jump back" in m for m in msgs), msgs
    assert sum("a damaged timestamp, retimed" in m for m in msgs) == len(damaged), msgs


def test_a_pause_in_a_ts_is_still_kept(tmp_path):
    """The same leap with every later packet after it (a camera's pause): not a damaged timestamp."""
    data = ts_clip(tmp_path / "a.ts")
    for k in range(10, 25):
        damage_pes(data, "video", k, 60.0)
    path = tmp_path / "pause.ts"
    path.write_bytes(bytes(data))
    times, _, _ = read_times(path)
    assert len(times) == 25 and abs(times[10] - times[9] - 60.04) < 1e-3, times


def _through_a_fifo(tmp_path, data: bytes, name: str):
    """(path of a FIFO fed ``data`` by a thread, the thread)."""
    fifo = tmp_path / name
    os.mkfifo(fifo)

    def feed():
        try:
            with open(fifo, "wb") as f:
                f.write(data)
        except OSError:
            pass  # (the reader gave up: a broken pipe)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    return fifo, t


def _unblock(fifo, t) -> None:
    """Let a feeder still waiting for a reader finish (the test failed before reading)."""
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass
    t.join(5)


def _mp4(path, *, faststart=False) -> bytes:
    """5 frames of lossless noise (~150 KB: more than FFmpeg keeps of a pipe to seek back in)."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "+faststart"} if faststart else {}) as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
        v.options = {"qp": "0"}
        for i in range(5):
            fr = av.VideoFrame.from_ndarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), format="rgb24")
            fr.pts = i
            for p in v.encode(fr):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    return path.read_bytes()


def test_an_mp4_with_its_index_at_the_end_through_a_pipe_says_so(tmp_path):
    """``cat a.mp4 | stream-gpen enhance /dev/stdin``: an intact mp4 was called "damaged or
    truncated" (exit 4). It is an input that cannot be read this way: exit 2, saying what to give."""
    fifo, t = _through_a_fifo(tmp_path, _mp4(tmp_path / "file.mp4"), "pipe.mp4")
    try:
        with pytest.raises(InvalidInputError, match=r"with its index \(moov\) at the end: such a file cannot be read from a pipe") as e:
            open_source(str(fifo))
        assert e.value.exit_code == 2 and "faststart" in e.value.hint
    finally:
        _unblock(fifo, t)


@pytest.mark.parametrize("kind", ["faststart.mp4", "a.ts"])
def test_a_streamable_file_through_a_pipe_is_still_read(tmp_path, kind):
    data = _mp4(tmp_path / "fs.mp4", faststart=True) if kind.endswith(".mp4") else bytes(ts_clip(tmp_path / "x.ts", 5))
    fifo, t = _through_a_fifo(tmp_path, data, "in-" + kind)
    try:
        times, _, _ = read_times(fifo)
        assert len(times) == 5
    finally:
        _unblock(fifo, t)
