"""Session 23: the photo detection pyramid picks the finer scale's landmarks (baseline23)."""
import cv2
import numpy as np
import pytest
import torch

from stream_gpen.faces import FaceDetector
from stream_gpen.faces._detector import Detections


@pytest.fixture(scope="module")
def det(mobilenet_weights):
    return FaceDetector(backbone="mobilenet0.25", device="cpu", weights=mobilenet_weights, long_side=640)


def _photo(shared, name, long_side):
    bgr = cv2.imread(str(shared / "data/faces/whole" / name))
    k = long_side / max(bgr.shape[:2])
    bgr = cv2.resize(bgr, (round(bgr.shape[1] * k), round(bgr.shape[0] * k)), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1]))


def test_a_photo_just_over_the_base_size_is_detected_once_at_its_own_size(det, shared):
    """A 700 px photo was detected at 640 and at 700 and the copies merged by score: on a
    near-tie (0.9996 at 640 vs 0.9980 at 700) the 640 copy's landmarks, 3.9 px off the full-size
    ones, aligned the face (3 crop px, 1.7 degrees off GPEN's own crop). Scales within 1.25x
    of each other are one now: the finer."""
    pic = _photo(shared, "gfpgan_whole_Blake_Lively.jpg", 700)
    before = det.calls
    got = det.detect_pyramid([pic], (640, 2560))[0]
    assert det.calls - before == 1
    ref = det.detect([pic], long_side=700)[0]
    assert len(got) == len(ref) > 0
    assert torch.equal(got.landmarks, ref.landmarks) and torch.equal(got.scores, ref.scores)


def _one(box, score, shift=0.0):
    b = torch.tensor([box], dtype=torch.float32)
    lm = torch.tensor([[[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]]], dtype=torch.float32) + shift
    return Detections(b + shift, lm, torch.tensor([score], dtype=torch.float32))


@pytest.mark.parametrize("coarse, fine, keep_fine", [(0.9996, 0.9980, True), (0.999, 0.95, False),
                                                      (0.95, 0.999, True)])
def test_the_merge_keeps_the_finer_copy_of_a_near_tied_face(det, coarse, fine, keep_fine, monkeypatch):
    monkeypatch.setattr(det, "check_landmarks", False)
    frame = torch.zeros(200, 200, 3, dtype=torch.uint8)
    got = det._merged(frame, [_one([10, 10, 90, 110], coarse), _one([10, 10, 90, 110], fine, shift=2.0)])
    assert len(got) == 1
    assert float(got.scores[0]) == pytest.approx(fine if keep_fine else coarse)  # scores reported as measured
    assert float(got.landmarks[0, 0, 0]) == (32.0 if keep_fine else 30.0)
