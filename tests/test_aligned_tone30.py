"""Hunt 30 (faces): an aligned black-and-white crop (``--aligned``) keeps its own tone, as the
same face inside a whole photo does: only the model's brightness is taken."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.test_quality22 import Tinting


def _enh(mobilenet_weights, **kw):
    from stream_gpen import Enhancer

    return Enhancer(Tinting(512), device="cpu", detector_weights=mobilenet_weights, aligned=True, progress=False, **kw)


@pytest.mark.parametrize("deep", [False, True])
def test_an_aligned_grey_crop_stays_grey(shared, mobilenet_weights, deep):
    with Image.open(shared / "data/faces/aligned/codeformer_gray_067_David_Beckham_00.png") as im:
        rgb = np.asarray(im.convert("RGB"))
    assert (rgb[..., 0] == rgb[..., 1]).all()
    pic = rgb.astype(np.uint16) * 257 if deep else rgb
    out = _enh(mobilenet_weights).enhance_image(pic).astype(np.int64)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert (out - pic).mean() > (5 * 257 if deep else 5)  # the brightness came through


def test_an_aligned_colour_crop_takes_the_models_colours(shared, mobilenet_weights):
    with Image.open(shared / "data/faces/aligned/codeformer_crop_0143.png") as im:
        rgb = np.asarray(im.convert("RGB")).astype(np.int64)
    out = _enh(mobilenet_weights).enhance_image(rgb.astype(np.uint8)).astype(np.int64)
    assert (out[..., 0] - out[..., 2]).mean() > (rgb[..., 0] - rgb[..., 2]).mean() + 10
