"""Hunt 32: ``enhance clip.mp4 --detect-every 30`` of a clip with long runs of identical frames
(a still shot, a freeze) aborted now and then with "all 25 frame-ring slots are held by frames
that were never released" (RingExhaustedError, a partial output): the repeats going out with the
pending batch took the ring slots the sink's queue and its encoder hold, so the ring ran out
whenever the encoder thread was behind."""
from __future__ import annotations

import numpy as np
import pytest

from _clips import write_video


def _runs(path, pattern):
    """A lossless clip (every repeat bit-identical) of noise pictures, ``pattern[i]`` copies of
    picture ``i``."""
    rng = np.random.default_rng(3)
    frames = []
    for n in pattern:
        frames += [rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)] * n
    return write_video(path, frames, codec="ffv1", pix_fmt="yuv444p")


class _SlowSink:
    """A sink whose encoder is as far behind as it may be: its queue full and a frame being
    encoded, so the last ``queue_size + 1`` frames written hold their slots (deterministic: what a
    slow encoder thread does at its worst)."""

    def __init__(self, ring, queue_size):
        self.ring, self.kept, self.keep = ring, [], queue_size + 1
        self.peak = 0  # most slots held (by the pipeline and this sink) when a frame was asked for

    def write(self, frame):
        self.kept.append(frame)
        while len(self.kept) > self.keep:
            self.kept.pop(0).release()

    def asked(self):
        from stream_gpen.io._ring import _HELD

        self.peak = max(self.peak, sum(s == _HELD for s in self.ring._state))


@pytest.mark.parametrize("pattern", [
    [1] * 3 + [40] + [1] * 3,  # a still shot (the hunter's clip: one face, bit-identical frames)
    [2] * 30,  # every frame shown twice
    [1, 6] * 8,  # a freeze, a frame, a freeze...
])
def test_identical_frames_never_exhaust_the_ring_behind_a_slow_sink(tmp_path, mobilenet_weights, pattern):
    from stream_gpen import Enhancer
    from stream_gpen.api import _SINK_QUEUE
    from tests._doubles import SolidRestorer

    clip = _runs(tmp_path / "runs.mkv", pattern)
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, progress=False,
                   detect_every=30)
    src, stage = enh._open(str(clip), sink_queue=_SINK_QUEUE)
    with src:
        sink = _SlowSink(src.ring, _SINK_QUEUE)
        n = 0
        for frame in enh._frames(src, stage, on_frame=lambda f: sink.asked()):
            sink.write(frame)
            n += 1
        for f in sink.kept:
            f.release()
    assert n == sum(pattern) and stage.repeats > 0
    # (taken, each frame left the decoder a slot to work ahead in: it never waited on the pipeline)
    assert sink.peak <= src.ring.size - 1, (sink.peak, src.ring.size)
