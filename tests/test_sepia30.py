"""Hunt 30 (faces): a sepia-toned face (its tint grows with its brightness, as a print's does) is
monochrome too: it takes only the restored brightness and keeps the photo's own tone, not the
model's colours; coloured faces stay coloured."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests._doubles import IdentityRestorer
from tests.test_quality22 import Tinting

WHOLE = ["codeformer_whole_00.jpg", "codeformer_whole_03.jpg", "codeformer_whole_04.jpg", "codeformer_whole_05.jpg",
         "gfpgan_whole_00.jpg", "gfpgan_whole_Blake_Lively.jpg", "gpen_Solvay_conference_1927.png",
         "gpen_selfie_2020-12-10_175750.jpg", "gpen_selfie_20200320.101220.jpg"]


def _sepia(rgb: np.ndarray) -> np.ndarray:
    grey = np.asarray(Image.fromarray(rgb).convert("L"), np.float64)
    return np.clip(np.dstack([grey * 1.07, grey * 0.888, grey * 0.559]), 0, 255).astype(np.uint8)


def _off_tone(ref: np.ndarray, pic: np.ndarray, where: np.ndarray) -> float:
    """Mean distance of ``pic``'s colour differences (R-G, G-B) from ``ref``'s tone line in luma."""
    def parts(a):
        a = a.astype(np.float64)
        y = a @ [0.299, 0.587, 0.114] / 255.0
        return np.stack([np.ones_like(y), y, y * y], -1), np.stack([a[..., 0] - a[..., 1], a[..., 1] - a[..., 2]], -1)

    x, d = parts(ref)
    ok = (ref.min(-1) > 2) & (ref.max(-1) < 253)
    coef = np.linalg.lstsq(x[ok], d[ok], rcond=None)[0]
    x, d = parts(pic)
    m = where & (pic.min(-1) > 2) & (pic.max(-1) < 253)
    return float(np.abs(d - x @ coef)[m].mean())


def test_a_sepia_photo_keeps_its_tone_in_the_faces(shared, mobilenet_weights):
    from stream_gpen import Enhancer

    with Image.open(shared / "data/faces/whole/gpen_selfie_2020-12-10_175750.jpg") as im:
        sep = _sepia(np.asarray(im.convert("RGB").resize((320, 320))))
    out = Enhancer(Tinting(), device="cpu", detector_weights=mobilenet_weights, progress=False).enhance_image(sep)
    changed = np.abs(out.astype(int) - sep).sum(-1) > 0
    assert changed.sum() > 1000, "no face restored"
    assert (out.astype(int) - sep)[changed].mean() > 5  # the brightness came through
    assert _off_tone(sep, out, changed) < 1.0, _off_tone(sep, out, changed)  # (the model's cast: ~20)


def test_luma_only_moves_a_pixel_along_the_tone_line():
    from stream_gpen.pipeline import _luma_only, _monochrome

    y = torch.linspace(40, 200, 64).view(1, 1, 1, 64).expand(1, 1, 64, 64)
    crops = torch.cat([y * 1.07, y * 0.888, y * 0.559], 1).round().to(torch.uint8)
    assert _monochrome(crops).item()
    out = _luma_only(crops.int().add(15).clamp(0, 255).to(torch.uint8), crops)
    o = out.float()
    assert ((o[:, 0] - o[:, 1]) / (o[:, 1] - o[:, 2]) - (1.07 - 0.888) / (0.888 - 0.559)).abs().max() < 0.06
    assert ((o * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1) - crops.float().mean(1)).mean() > 10


class _Capture(IdentityRestorer):
    def __init__(self) -> None:
        super().__init__(256)
        self.crops: list[torch.Tensor] = []

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        self.crops.append(crops.clone())
        return crops.clone()


@pytest.mark.parametrize("name", WHOLE)
def test_the_shared_photos_faces_keep_their_class(shared, mobilenet_weights, name):
    """Coloured faces are not monochrome (their colour differences stray 11-40 levels from any tone
    curve); the Solvay photo (grey) is, and each photo made sepia is."""
    from stream_gpen import Enhancer
    from stream_gpen.pipeline import _monochrome

    with Image.open(shared / "data/faces/whole" / name) as im:
        rgb = np.asarray(im.convert("RGB"))
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    for pic, mono in ((rgb, grey), (_sepia(rgb), True)):
        cap = _Capture()
        Enhancer(cap, device="cpu", detector_weights=mobilenet_weights, progress=False).enhance_image(pic)
        assert cap.crops, "no face found"
        assert _monochrome(torch.cat(cap.crops)).tolist() == [mono] * sum(len(c) for c in cap.crops)
