"""``min_face`` on anamorphic video (hunt31 oddvideo): a face is judged by its size on screen, so
the same picture stored with 2:1 or 1:2 pixels keeps or drops its face as with square pixels."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from stream_gpen import Enhancer
from stream_gpen.errors import InvalidInputError
from stream_gpen.faces import Detections, FaceTracker
from tests._clips import write_video
from tests._doubles import SolidRestorer


@pytest.fixture(scope="module")
def picture(shared):
    """A 424x424 picture whose face is ~140 px on its shorter side (on screen)."""
    import cv2

    face = cv2.imread(str(shared / "data/faces/aligned/gpen_ffhq_00001.png"))[:, :, ::-1]
    img = np.full((424, 424, 3), 80, np.uint8)
    img[92:332, 92:332] = cv2.resize(face, (240, 240), interpolation=cv2.INTER_AREA)
    return img


def _stored(img, sar: Fraction):
    """``img`` as stored with pixels of aspect ``sar`` (squeezed along their longer side)."""
    import cv2

    h, w = img.shape[:2]
    size = (round(w / sar), h) if sar > 1 else (w, round(h * sar))
    return np.ascontiguousarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA))


def _restored(tmp_path, mobilenet_weights, img, sar: Fraction, min_face: float) -> int:
    name = f"sar{sar.numerator}_{sar.denominator}_{min_face:g}"
    src = write_video(tmp_path / f"{name}.mkv", [_stored(img, sar)] * 3, rate=10, pix_fmt="yuv444p",
                      options={"preset": "ultrafast", "crf": "10"},
                      setup=lambda s: setattr(s.codec_context, "sample_aspect_ratio", sar))
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, min_face=min_face,
                   progress=False)
    return enh.enhance_file(src, tmp_path / f"{name}_out.mkv").faces_restored


def test_min_face_judges_anamorphic_faces_on_screen(tmp_path, mobilenet_weights, picture):
    """The square picture's face (~140 px) is kept at --min-face 110 and dropped at 170; stored
    212x424 at SAR 2:1 or 424x212 at SAR 1:2 (the same picture on screen) the verdicts are the
    same. (The stored box's shorter side, ~70 px, dropped it at 110: hunt31.)"""
    for min_face, want in ((110, 3), (170, 0)):
        assert _restored(tmp_path, mobilenet_weights, picture, Fraction(1), min_face) == want
        for sar in (Fraction(2), Fraction(1, 2)):
            assert _restored(tmp_path, mobilenet_weights, picture, sar, min_face) == want, (sar, min_face)


def _det(box):
    box = torch.tensor([box], dtype=torch.float32)
    cx, cy = (box[0, 0] + box[0, 2]) / 2, (box[0, 1] + box[0, 3]) / 2
    w, h = box[0, 2] - box[0, 0], box[0, 3] - box[0, 1]
    lm = torch.tensor([[[cx - w / 5, cy - h / 8], [cx + w / 5, cy - h / 8], [cx, cy],
                        [cx - w / 6, cy + h / 5], [cx + w / 6, cy + h / 5]]])
    return Detections(box, lm, torch.tensor([0.99]))


@pytest.mark.parametrize("aspect, box, kept", [
    (1.0, (100, 100, 160, 220), False),  # 60 px wide
    (2.0, (100, 100, 160, 220), True),  # 120 x 120 on screen
    (0.5, (100, 100, 220, 160), True),  # 120 x 120 on screen (heights doubled)
    (0.5, (100, 100, 160, 220), False),  # 60 x 240 on screen
])
def test_tracker_min_face_in_display_px(aspect, box, kept):
    frame = torch.full((300, 300, 3), 90, dtype=torch.uint8)
    tracker = FaceTracker(min_face=100, pixel_aspect=aspect, motion="none", watch=False)
    assert bool(tracker.update(0, _det(box), frame=frame)) == kept


def test_tracker_pixel_aspect_checked():
    with pytest.raises(InvalidInputError, match="pixel_aspect must be a positive finite number, got 0"):
        FaceTracker(pixel_aspect=0)
