"""The live path's timing: a pending batch leaves when its latency budget runs out even if no
next frame comes; stops (``stop``, ``--seconds``) are noticed while waiting for a slow source;
the reported latency counts from the decoder's publishing a frame; the counts after a stop agree.

The pipeline's scheduling is checked on a fake clock (no threads); the real runs check orders of
events (a frame yielded before the next one is published), never durations.
"""
from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch

from stream_gpen import pipeline
from stream_gpen.io import Frame, FrameRing


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class _SlowSource:
    """Frames published at ``times`` on a fake clock; ``ring.wait_ready`` moves the clock."""

    def __init__(self, clock: _Clock, times: list[float], faces: int = 0) -> None:
        self.clock, self.times, self.faces = clock, list(times), faces
        self.taken = 0
        self.waits: list[float] = []
        self.ring = self
        self.ring_size = 16

    def wait_ready(self, timeout: float) -> bool:
        self.waits.append(timeout)
        due = self.times[self.taken] if self.taken < len(self.times) else self.clock.now  # (the end)
        if due <= self.clock.now + timeout:
            self.clock.now = max(self.clock.now, due)
            return True
        self.clock.now += timeout
        return False

    def __iter__(self):
        return self

    def __next__(self):
        if self.taken >= len(self.times):
            raise StopIteration
        i = self.taken
        self.taken += 1
        return Frame.from_tensor(torch.zeros(4, 4, 3, dtype=torch.uint8), index=i)


class _Stage:
    """Plans ``faces`` faces a frame and counts them at restore, as FaceStage does."""

    def __init__(self, faces: int = 0) -> None:
        self.faces, self.lag = faces, 0
        self.faces_restored = self.frames_with_faces = self.frames_discarded = 0
        self.batches: list[list[int]] = []

    def plan_frames(self, index, image):
        return [(index, torch.zeros(self.faces, 2, 3))]

    def plan_flush(self):
        return []

    def restore(self, images, affines, hi=None, indices=None):
        self.batches.append(list(indices))
        self.faces_restored += sum(len(a) for a in affines)
        self.frames_with_faces += sum(len(a) > 0 for a in affines)


@pytest.fixture
def clock(monkeypatch):
    c = _Clock()
    monkeypatch.setattr(pipeline, "time", SimpleNamespace(perf_counter=c.perf_counter))
    return c


def test_a_pending_frame_leaves_when_its_budget_runs_out(clock):
    """A 1 fps source, 0.05 s budget: frame k was held until frame k + 1 came (a whole second)."""
    src = _SlowSource(clock, [0.0, 1.0, 2.0, 9.0])
    out = [(f.index, clock.now) for f in pipeline.run_stream(src, _Stage(), max_pending_frames=4,
                                                             latency_budget_s=0.05)]
    assert [i for i, _ in out] == [0, 1, 2, 3]
    assert [t for _, t in out] == pytest.approx([0.05, 1.05, 2.05, 9.0])  # (the last: at the end of input)


def test_a_stop_is_noticed_while_the_source_is_silent(clock):
    """One frame every 8 s: a stop asked for at 2 s was seen only when the next frame came."""
    src = _SlowSource(clock, [0.0, 8.0, 16.0])
    got = [f.index for f in pipeline.run_stream(src, _Stage(), max_pending_frames=4, latency_budget_s=0.05,
                                                stop=lambda: clock.now >= 2.0)]
    assert got == [0] and src.taken == 1
    assert max(src.waits) <= 0.1 + 1e-9 and 2.0 <= clock.now <= 2.1


def test_files_are_batched_as_before(clock):
    """No budget and no stop (files): the source is read as it comes, batches fill to their size."""
    src = _SlowSource(clock, [0.0] * 7)
    stage = _Stage()
    assert [f.index for f in pipeline.run_stream(src, stage, max_pending_frames=3)] == list(range(7))
    assert stage.batches == [[0, 1, 2], [3, 4, 5], [6]] and src.waits == []


def test_frames_not_handed_on_are_counted_and_their_faces_not(clock):
    """Stopping after 2 of a batch of 4 restored frames: their faces were counted (faces restored
    96 in 48 frames, out 45) and the frames missing from frames in."""
    src = _SlowSource(clock, [0.0] * 6)
    stage = _Stage(faces=2)
    frames = pipeline.run_stream(src, stage, batch_faces=8, max_pending_frames=8, latency_budget_s=10.0)
    got = [next(frames).index, next(frames).index]
    frames.close()
    assert got == [0, 1] and src.taken == 4
    assert stage.faces_restored == 4 and stage.frames_with_faces == 2 and stage.frames_discarded == 2


def test_wait_ready_answers_a_publish_and_times_out():
    ring = FrameRing(2, 4, 4)
    assert not ring.wait_ready(0.01)
    slot = ring.acquire()
    f = Frame(index=0, pts=0, time_base=Frame.from_tensor(ring.slots[slot]).time_base, time=0.0,
              _image=ring.slots[slot], _ring=ring, slot=slot)
    ring.publish(f)
    assert f.published is not None and ring.wait_ready(0.0)
    assert ring.get() is f
    ring.finish()
    assert ring.wait_ready(0.0)


# --- real live sources ------------------------------------------------------------------------
@pytest.fixture
def enh(mobilenet_weights):
    from stream_gpen import Enhancer

    return Enhancer("classic", device="cpu", progress=False, detect_size=96, detector_weights=str(mobilenet_weights))


def test_a_slow_camera_frame_is_not_held_for_the_next(enh):
    """lavfi at 2 fps: every other frame waited for the next one (0.5 s against a 0.05 s budget).
    Each frame now comes out before the next one is even published. (At one frame every 2 s, so
    that a loaded machine's slow restore of a 96x64 frame cannot take longer than the interval.)"""
    src, stage = enh._open("lavfi:testsrc2=size=96x64:rate=1/2", live=True)
    yielded, published = [], []
    with src:
        frames = enh._frames(src, stage, latency_budget_s=0.05)
        for f in frames:
            yielded.append(__import__("time").perf_counter())
            published.append(f.published)
            f.release()
            if len(yielded) == 2:
                break
        frames.close()
    assert all(y < p for y, p in zip(yielded, published[1:])), (yielded, published)


def _run(enh, tmp_path, monkeypatch, **kw):
    """run_camera on a source that publishes a frame every 4 s; the frames published, in order."""
    from stream_gpen.commands import run_camera

    published = []
    real = FrameRing.publish

    def publish(self, frame):
        published.append(frame.index)
        real(self, frame)

    monkeypatch.setattr(FrameRing, "publish", publish)
    rec = tmp_path / "rec.mp4"
    summary = run_camera(enh, "lavfi:testsrc2=size=96x64:rate=1/4", outputs=[str(rec)], quiet=True, **kw)
    return summary, published, rec


def test_seconds_is_noticed_without_the_next_frame(enh, tmp_path, monkeypatch):
    """--seconds 1 on one frame every 4 s (or 8): the run went on until the next frame came."""
    summary, published, rec = _run(enh, tmp_path, monkeypatch, seconds=1.0)
    assert published == [0] and summary.frames_out <= 1 and rec.exists()
    assert summary.frames_in == summary.frames_out + summary.frames_dropped == 1


def test_stop_is_noticed_without_the_next_frame(enh, tmp_path, monkeypatch):
    """q + Enter (the stop event) after the first frame: it took until the next one."""
    from stream_gpen import commands

    stop = threading.Event()
    real = commands._Tee.write

    def write(self, frame):
        real(self, frame)
        threading.Timer(0.3, stop.set).start()  # (q typed a moment after the frame was written)

    monkeypatch.setattr(commands._Tee, "write", write)
    summary, published, _ = _run(enh, tmp_path, monkeypatch, stop=stop)
    assert published == [0] and summary.frames_out == 1


def test_added_latency_counts_the_time_in_the_ring(enh, tmp_path, monkeypatch):
    """A slow output: frames wait in the ring before the pipeline takes them. The reported latency
    (stamped when taken) left that out: 0.40 s reported, 0.72 s from decode to written."""
    import time

    from stream_gpen import commands
    from stream_gpen.commands import run_camera

    true = []
    real = commands._Tee.write

    def write(self, frame):
        time.sleep(0.15)
        real(self, frame)
        true.append(time.perf_counter() - frame.published)

    monkeypatch.setattr(commands._Tee, "write", write)
    s = run_camera(enh, "lavfi:testsrc2=size=96x64:rate=25", outputs=["null"], quiet=True, frames=6)
    assert len(true) == 6
    # written after its own stamp, the camera's clock can only say more than the true latency
    assert s.mean_added_latency >= sum(true) / len(true)
