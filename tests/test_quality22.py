"""Hunt 22 (quality22): a black-and-white (or sepia) picture stored as RGB keeps its own colour in
the restored faces: only the model's brightness is taken (a model paints its colours into them)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests._doubles import IdentityRestorer


class Tinting(IdentityRestorer):
    """A restorer with a colour cast (+12 red, -12 blue) and a brightness change (+10)."""

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        out = crops.int() + 10
        out[:, 0] += 12
        out[:, 2] -= 12
        return out.clamp(0, 255).to(torch.uint8)


@pytest.fixture()
def tint(mobilenet_weights):
    from stream_gpen import Enhancer

    return Enhancer(Tinting(), device="cpu", detector_weights=mobilenet_weights, progress=False)


@pytest.mark.parametrize("tone", ["grey", "sepia", "colour"])
def test_a_monochrome_photo_keeps_its_tone_in_the_faces(shared, tint, tone):
    with Image.open(shared / "data/faces/whole/gpen_selfie_2020-12-10_175750.jpg") as im:
        grey = np.asarray(im.convert("L").resize((320, 320)), np.int16)
    if tone == "colour":
        with Image.open(shared / "data/faces/whole/codeformer_whole_00.jpg") as im:
            rgb = np.asarray(im.convert("RGB").resize((320, 320)), np.int16)
    else:
        offset = np.array([0, 0, 0] if tone == "grey" else [20, 0, -25])
        rgb = np.clip(grey[..., None] + offset, 0, 255)
    rgb = rgb.astype(np.uint8)
    out = tint.enhance_image(rgb).astype(np.int16)
    changed = np.abs(out - rgb).sum(-1) > 0
    assert changed.sum() > 1000, "no face restored"
    if tone == "colour":  # (a coloured picture takes the model's colours as they are)
        assert (out[changed][:, 0] - out[changed][:, 2]).mean() > (rgb[changed][:, 0] - rgb[changed][:, 2]).mean() + 10
        return
    # the picture's own colour differences stay; the brightness change comes through
    diff_in = rgb.astype(np.int16)[..., 0] - rgb.astype(np.int16)[..., 2]
    diff_out = out[..., 0] - out[..., 2]
    inside = changed & (rgb.max(-1) < 220) & (rgb.min(-1) > 30)  # (a channel clipped at 0 or 255 moves it)
    gap = np.abs(diff_out - diff_in)[inside]
    assert np.percentile(gap, 99) <= 1 and gap.mean() < 0.2, (np.percentile(gap, 99), gap.mean())
    assert (out - rgb)[changed].mean() > 5
