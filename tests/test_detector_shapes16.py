"""The detector's fixed-shape mode (``FaceDetector(fixed_shapes=...)``, on by default on CUDA).

On an H200 (session 16) the first pass over a 1080p crowd clip took 45 s and the second 4 s: every
new network input shape pays cuDNN's per-shape setup, and region windows come in many sizes. With
fixed shapes a region is looked for in the whole frame's detection and the landmark-check crops
go in power-of-two batches. Checked here on the CPU: the same faces, far fewer shapes.
"""
from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from stream_gpen.faces import FaceDetector


def _frames(path, n):
    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % 10 == 0:
                out.append(torch.from_numpy(f.to_ndarray(format="rgb24")))
            if len(out) == n:
                break
    return out


@pytest.fixture(scope="module")
def crowd(shared):
    return _frames(shared / "data" / "videos" / "facenet_crowd_1080p_multiface.mp4", 3)


def _detector(weights, fixed):
    return FaceDetector(backbone="mobilenet0.25", device="cpu", weights=weights, long_side=640, fixed_shapes=fixed)


class _Shapes:
    """Records the network's input shapes."""

    def __init__(self, det):
        self.seen = []
        forward = det.net.forward

        def spy(x, *a, **k):
            self.seen.append(tuple(x.shape))
            return forward(x, *a, **k)

        det.net.forward = spy


def test_default_is_off_on_the_cpu(mobilenet_weights):
    assert FaceDetector(device="cpu", weights=mobilenet_weights).fixed_shapes is False
    assert FaceDetector(device="cpu", weights=mobilenet_weights, fixed_shapes=True).fixed_shapes is True


def test_regions_find_the_same_faces_on_one_input_shape(mobilenet_weights, crowd):
    window, fixed = _detector(mobilenet_weights, False), _detector(mobilenet_weights, True)
    shapes = _Shapes(fixed)
    found = {"window": 0, "fixed": 0, "matched": 0}
    for frame in crowd:
        h, w = frame.shape[:2]
        full = window.detect(frame)[0]
        assert len(full) >= 3
        # a window around each face (the tracker's re-detect), and around pairs: many sizes
        regions = [tuple(float(v) for v in b) for b in full.boxes]
        regions += [(float(min(a[0], b[0])), float(min(a[1], b[1])), float(max(a[2], b[2])), float(max(a[3], b[3])))
                    for a, b in zip(full.boxes[:-1], full.boxes[1:])]
        for r in regions:
            a, b = window.detect_region(frame, r), fixed.detect_region(frame, r)
            # exactly the whole frame's detections of the faces the window holds
            for k in range(len(b)):
                j = int((full.boxes - b.boxes[k]).abs().sum(1).argmin())
                assert torch.equal(full.boxes[j], b.boxes[k]) and torch.equal(full.landmarks[j], b.landmarks[k])
            # and the window's own faces, within a network pixel: its zero padding is not the
            # frame's context (a small face scored 0.85 in its window, 0.96 whole; one at 0.84
            # whole was under 0.8 near a window's edge)
            px = w / 640
            for k in range(len(a)):
                if len(b) and float((b.boxes - a.boxes[k]).abs().amax(1).min()) < px:
                    found["matched"] += 1
            found["window"] += len(a)
            found["fixed"] += len(b)
    assert found["window"] >= 10
    print(found)
    assert found["matched"] >= 0.9 * found["window"] and found["fixed"] >= found["window"], found
    # every region ran on the whole frame's shape; the checks on power-of-two batches
    frame_shape = (1, 3, 360, 640)
    assert {s for s in shapes.seen if s[-1] != 128} == {frame_shape}
    checks = {s[0] for s in shapes.seen if s[-1] == 128}
    assert checks and all(n & (n - 1) == 0 for n in checks)


def test_padded_check_batches_score_each_face_as_alone(mobilenet_weights, crowd):
    window, fixed = _detector(mobilenet_weights, False), _detector(mobilenet_weights, True)
    frame = crowd[0]
    d = window.detect(frame)[0]
    lms = d.landmarks[:3]  # 12 crops: padded to 16
    shapes = _Shapes(fixed)
    a, b = window.turn_margin(frame, lms), fixed.turn_margin(frame, lms)
    assert shapes.seen == [(16, 3, 128, 128)]
    assert a.shape == b.shape == (3,)
    np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-3)


@pytest.mark.parametrize("fixed", [False, True])
def test_turn_margin_of_no_faces_is_empty(mobilenet_weights, crowd, fixed):
    # (hunt 16) the window mode ran the network on an empty batch and raised
    out = _detector(mobilenet_weights, fixed).turn_margin(crowd[0], torch.zeros(0, 5, 2))
    assert out.shape == (0,)
