"""The exact decode reuses one planar twin per thread and size (a video's frames): a frame's
conversion must not depend on the frame converted before it."""
from __future__ import annotations

import threading

import av
import numpy as np
import pytest

from stream_gpen.io._convert import av_to_rgb_numpy


def _frame(fmt, w, h, seed):
    rng = np.random.default_rng(seed)
    f = av.VideoFrame(w, h, fmt)
    for p in f.planes:
        a = np.frombuffer(p, np.uint8)
        a[:] = rng.integers(0, 256, a.size, dtype=np.uint8)
    if fmt.endswith("le"):  # keep >8-bit codes in range: a fresh frame's bytes are random
        for p in f.planes:
            a = np.frombuffer(p, np.uint16)
            a &= (1 << 10) - 1
    return f


def _fresh(f, high):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("rgb", av_to_rgb_numpy(f, high=high)))
    t.start()
    t.join()
    return out["rgb"]


@pytest.mark.parametrize(("fmt", "high"), [("yuv420p", False), ("yuv422p", False), ("nv12", False),
                                           ("yuv420p10le", True), ("yuv420p10le", False)])
@pytest.mark.parametrize(("w", "h"), [(641, 361), (640, 360)])
def test_a_frame_converts_alike_after_another(fmt, high, w, h):
    a, b = _frame(fmt, w, h, 1), _frame(fmt, w, h, 2)
    av_to_rgb_numpy(a, high=high)
    after_a = av_to_rgb_numpy(b, high=high)
    assert after_a.shape[:2] == (h, w)
    np.testing.assert_array_equal(after_a, _fresh(b, high))
    # and the first frame again, after the second
    np.testing.assert_array_equal(av_to_rgb_numpy(a, high=high), _fresh(a, high))
