"""Perf hunt 14: work outside the model. The pyramid checks each merged face's landmarks once
(not once per scale); the OpenCV warp reads the frames of a list without stacking them."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from stream_gpen.errors import InvalidInputError
from stream_gpen.faces import FaceDetector
from stream_gpen.faces._align import warp_faces


@pytest.fixture(scope="module")
def det(mobilenet_weights):
    return FaceDetector(backbone="mobilenet0.25", device="cpu", weights=mobilenet_weights, long_side=640)


@pytest.fixture(scope="module")
def tiles(shared):
    """The shared aligned face crops tiled 3x2 at 160 px (480x320): at both (360, 480) scales
    every face is in the band both answer for (40-256 network px)."""
    paths = sorted((shared / "data/faces/aligned").glob("*.png"))[:6]
    img = np.full((320, 480, 3), 120, np.uint8)
    for k, p in enumerate(paths):
        r, c = divmod(k, 3)
        img[r * 160:(r + 1) * 160, c * 160:(c + 1) * 160] = cv2.resize(cv2.imread(str(p)), (160, 160),
                                                                      interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1]))


def _scored(det, monkeypatch, bad=None):
    """Wrap ``det.turn_margin``: the landmark rows it scores (``bad`` rows score as turned)."""
    seen = []
    real = det.turn_margin

    def counted(frame, landmarks):
        seen.append(landmarks.clone())
        m = real(frame, landmarks)
        if bad is not None:
            m[(landmarks == bad).flatten(1).all(1)] = 10.0
        return m

    monkeypatch.setattr(det, "turn_margin", counted)
    return seen


def test_pyramid_checks_each_kept_face_once(det, tiles, monkeypatch):
    """Each scale ran the landmark check (a second network call) on its own faces: a face both
    scales see was scored twice, and faces the merge drops were scored too (1080p crowd: 383
    scored for 192 kept, ~19% of the run). Now the merged faces are scored, each once."""
    for size in (360, 480):  # both scales find all six faces
        assert len(det.detect([tiles], long_side=size)[0]) == 6
    seen = _scored(det, monkeypatch)
    before = det.implausible
    got = det.detect_pyramid([tiles], (360, 480))[0]
    assert len(got) == 6 and det.implausible == before
    assert len(seen) == 1 and len(seen[0]) == 6
    # the same faces as with no check at all (all six are upright)
    det.check_landmarks = False
    try:
        plain = det.detect_pyramid([tiles], (360, 480))[0]
    finally:
        det.check_landmarks = True
    assert torch.equal(got.boxes, plain.boxes) and torch.equal(got.landmarks, plain.landmarks)
    # a probe region: checked once too, in frame pixels
    seen.clear()
    r = det.detect_pyramid([tiles], (360, 480), region=(0, 0, 480, 320))[0]
    assert len(r) == 6 and sum(len(s) for s in seen) == 6


def test_pyramid_keeps_the_other_scales_copy_of_a_face_that_fails(det, tiles, monkeypatch):
    """A merged face that fails the check leaves the other scale's copy of it to be checked and
    kept, as when each scale checked its own faces; the dropped one is counted and recorded once."""
    det.check_landmarks = False
    try:
        plain = det.detect_pyramid([tiles], (360, 480))[0]
    finally:
        det.check_landmarks = True
    seen = _scored(det, monkeypatch, bad=plain.landmarks[0])
    det.dropped_boxes.clear()
    before = det.implausible
    got = det.detect_pyramid([tiles], (360, 480))[0]
    assert det.implausible - before == 1 and len(det.dropped_boxes) == 1
    assert torch.equal(det.dropped_boxes[0], plain.boxes[:1])
    assert len(got) == 6 and not (got.landmarks == plain.landmarks[0]).flatten(1).all(1).any()
    assert sum(len(s) for s in seen) == 7  # six, then the copy the failed one had hidden


@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16])
def test_cv2_warp_reads_a_list_of_frames_without_stacking_them(dtype, monkeypatch):
    """``warp_faces`` stacked every frame of a list (a copy of each full frame, per model batch:
    5.6% of a talking-head run) before the OpenCV warp, which reads one frame per face. The list
    is now read as it is: the same crops, and no stack on the cv2 path (the torch gather still
    takes one tensor)."""
    g = torch.Generator().manual_seed(0)
    top = 255 if dtype == torch.uint8 else 65535
    frames = [torch.randint(0, top + 1, (90, 120, 3), generator=g, dtype=torch.int32).to(dtype) for _ in range(3)]
    ids = torch.tensor([2, 0, 2, 1])
    aff = torch.tensor([[[0.9, 0.1, -5.0], [-0.1, 0.9, 3.0]]]).repeat(4, 1, 1)
    aff[:, :, 2] += torch.arange(4.0)[:, None] * 7  # a face past the picture's edge too
    stacked = torch.stack(frames)
    want = {b: warp_faces(stacked, ids, aff, size=64, backend=b) for b in ("cv2", "torch")}

    def no_stack(*a, **k):
        raise AssertionError("a full-frame stack on the cv2 path")

    with monkeypatch.context() as m:
        m.setattr(torch, "stack", no_stack)
        got = warp_faces(frames, ids, aff, size=64, backend="cv2")
        one = warp_faces([frames[1]], torch.zeros(4, dtype=torch.long), aff, size=64)  # turn_margin's call
    assert torch.equal(got, want["cv2"]) and got.dtype == dtype
    assert torch.equal(one, warp_faces(frames[1], torch.zeros(4, dtype=torch.long), aff, size=64, backend="cv2"))
    assert torch.equal(warp_faces(frames, ids, aff, size=64, backend="torch"), want["torch"])


def test_warp_faces_list_checks_stay(monkeypatch):
    f = torch.zeros(20, 20, 3, dtype=torch.uint8)
    aff = torch.eye(2, 3)[None]
    with pytest.raises(InvalidInputError, match="same shape"):
        warp_faces([f, torch.zeros(10, 20, 3, dtype=torch.uint8)], [0], aff, size=8)
    with pytest.raises(InvalidInputError, match="one dtype and device"):
        warp_faces([f, f.to(torch.uint16)], [0], aff, size=8)
    with pytest.raises(InvalidInputError, match="uint8 RGB"):
        warp_faces([f.float()], [0], aff, size=8)
    with pytest.raises(InvalidInputError, match="frame ids must lie in"):
        warp_faces([f], [1], aff, size=8)
    with pytest.raises(InvalidInputError, match="list of"):
        warp_faces([f.numpy()], [0], aff, size=8)
