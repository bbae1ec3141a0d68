"""Hunt 30 (faces): a photo stored sideways or upside down (no EXIF tag) has its faces found at
high scores with the landmarks misplaced; they are now looked for in the photo turned, as video
frames are, and restored from a crop aligned the right way up. Upright photos (heads tilted less
than ``TURN_LOOK``) get the same faces as before."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from tests._doubles import IdentityRestorer

UPRIGHT = ["codeformer_whole_00.jpg", "codeformer_whole_03.jpg", "codeformer_whole_04.jpg", "codeformer_whole_05.jpg",
           "gfpgan_whole_00.jpg", "gfpgan_whole_Blake_Lively.jpg", "gpen_Solvay_conference_1927.png",
           "gpen_selfie_2020-12-10_175750.jpg", "gpen_selfie_20200320.101220.jpg"]


def _stage(mobilenet_weights):
    from stream_gpen import Enhancer

    return Enhancer(IdentityRestorer(256), device="cpu", detector_weights=mobilenet_weights, progress=False)._stage()


def _points(stage, rgb: np.ndarray) -> np.ndarray:
    """The template's five points, where each face's crop put them in the photo."""
    from stream_gpen.faces._align import apply_affines, invert_affines, reference_points

    affines = stage.plan_still(torch.from_numpy(np.ascontiguousarray(rgb)))
    ref = reference_points(stage.size).float().expand(len(affines), 5, 2)
    return apply_affines(invert_affines(affines), ref).numpy()


def _photo(shared, name: str) -> np.ndarray:
    with Image.open(shared / "data/faces/whole" / name) as im:
        return np.array(ImageOps.exif_transpose(im).convert("RGB"))  # (as the photo is shown)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("name", ["codeformer_whole_03.jpg"])
def test_a_turned_photos_faces_are_aligned_upright(shared, mobilenet_weights, name, k):
    stage = _stage(mobilenet_weights)
    rgb = _photo(shared, name)
    upright = _points(stage, rgb)
    got = _points(stage, np.rot90(rgb, k))
    h, w = rgb.shape[:2]
    back = got.copy()  # (the turned photo's points, in the upright photo)
    if k == 1:
        back[..., 0], back[..., 1] = w - 1 - got[..., 1], got[..., 0]
    elif k == 2:
        back[..., 0], back[..., 1] = w - 1 - got[..., 0], h - 1 - got[..., 1]
    else:
        back[..., 0], back[..., 1] = got[..., 1], h - 1 - got[..., 0]
    assert len(got) == len(upright)
    for face in upright:
        iod = np.linalg.norm(face[0] - face[1])
        err = min(np.linalg.norm(b - face, axis=-1).mean() for b in back) / iod
        assert err < 0.08, err  # (the misread crop: 0.2-0.35)


@pytest.mark.parametrize("name", UPRIGHT)
def test_upright_photos_keep_their_faces(shared, mobilenet_weights, name):
    rgb = _photo(shared, name)
    now = _stage(mobilenet_weights)
    before = _stage(mobilenet_weights)
    before.TURN_LOOK = 1000.0  # (no face is that far from level: the search as it was)
    a, b = _points(now, rgb), _points(before, rgb)
    assert a.shape == b.shape and np.array_equal(a, b)
    assert now.detector_calls == before.detector_calls
