"""aa25: a face larger than the crop is cut averaged over each crop pixel's footprint.

GPEN's script (and ours before) read every crop pixel bilinearly at one point of the frame: a
face the crop shrinks 3x skipped two frame pixels in three, so fine texture and sensor noise
aliased into grain, and a face moving by fractions of a pixel changed its crop from frame to
frame where the face itself did not change (shimmer, which the restored face inherits)."""
from __future__ import annotations

import numpy as np
import torch

from _doubles import IdentityRestorer
from stream_gpen.faces import warp_faces
from stream_gpen.faces._align import face_scale
from stream_gpen.pipeline import FaceStage

S = 64


def _texture(h=420, w=420, seed=0) -> np.ndarray:
    """Fine detail at the frame's own resolution (noise on a smooth ramp): what aliases."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 200, w)[None, :, None] + np.linspace(0, 30, h)[:, None, None]
    return np.clip(ramp + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)


def _affine(scale: float, shift=(0.0, 0.0), centre=(210.0, 210.0)) -> torch.Tensor:
    """Frame -> crop: ``scale`` frame px per crop px, a slight turn, the face centre at the crop's."""
    a = 0.1
    lin = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) / scale
    c = np.array(centre) + np.array(shift)
    t = np.array([S / 2 - 0.5, S / 2 - 0.5]) - lin @ c
    return torch.tensor(np.hstack([lin, t[:, None]]), dtype=torch.float32)[None]


def _crop(img, aff, *, antialias=True, backend="cv2") -> np.ndarray:
    out = warp_faces(torch.from_numpy(np.ascontiguousarray(img)), torch.zeros(1, dtype=torch.long), aff, size=S,
                     backend=backend, antialias=antialias)
    return out[0].permute(1, 2, 0).numpy().astype(np.float64)


def _shifted(img, dx, dy) -> np.ndarray:
    """``img`` moved by a fraction of a pixel (FFT phase shift: exact for the periodic texture)."""
    f = np.fft.fft2(img.astype(np.float64), axes=(0, 1))
    ky = np.fft.fftfreq(img.shape[0])[:, None, None]
    kx = np.fft.fftfreq(img.shape[1])[None, :, None]
    return np.fft.ifft2(f * np.exp(-2j * np.pi * (kx * dx + ky * dy)), axes=(0, 1)).real


def test_the_scale_is_frame_pixels_per_crop_pixel():
    assert abs(float(1 / face_scale(_affine(3.0))[0]) - 3.0) < 1e-5
    assert abs(float(1 / face_scale(_affine(0.5))[0]) - 0.5) < 1e-5


def test_a_shrunk_face_no_longer_shimmers_as_it_moves():
    """The texture panned by fractions of a pixel, the crop following it exactly: an ideal crop
    would not change at all; the bilinear one changed by 10.4 grey levels a frame at 3x, the
    averaged one by 1.8."""
    img = _texture()
    changes = {}
    for aa in (False, True):
        crops = []
        for t in range(5):
            dx, dy = 0.37 * t, 0.23 * t
            moved = np.clip(_shifted(img, dx, dy) + 0.5, 0, 255).astype(np.uint8)
            crops.append(_crop(moved, _affine(3.0, (dx, dy)), antialias=aa))
        changes[aa] = np.mean([np.abs(a - b).mean() for a, b in zip(crops, crops[1:])])
    assert changes[True] < 0.4 * changes[False], changes


def test_a_shrunk_face_is_close_to_an_area_resize():
    """Against the frame area-resized to the crop's scale first (what FFHQ's crops are): the
    footprint average is much closer than the point read."""
    import cv2

    img = _texture()
    small = cv2.resize(img, None, fx=1 / 3, fy=1 / 3, interpolation=cv2.INTER_AREA).astype(np.float64)
    # (the same crop from the 3x smaller frame: centre (210 + 1) / 3 - 0.5 there)
    ref = _crop(np.clip(small + 0.5, 0, 255).astype(np.uint8), _affine(1.0, centre=(69.5, 69.5)), antialias=False)
    err = {aa: np.abs(_crop(img, _affine(3.0), antialias=aa) - ref)[8:-8, 8:-8].mean() for aa in (False, True)}
    assert err[True] < 0.5 * err[False], err


def test_torch_and_opencv_agree():
    img = _texture()
    for scale in (1.4, 3.0, 7.0):
        a = _crop(img, _affine(scale), backend="cv2")
        b = _crop(img, _affine(scale), backend="torch")
        assert np.abs(a - b).max() <= 1.0 and np.abs(a - b).mean() < 0.2, scale


def test_sixteen_bit_frames_are_averaged_too():
    img = _texture().astype(np.uint16) * 257
    for backend in ("cv2", "torch"):
        aa = _crop(img, _affine(3.0), backend=backend)
        plain = _crop(img, _affine(3.0), antialias=False, backend=backend)
        ref8 = _crop((img // 257).astype(np.uint8), _affine(3.0), backend=backend) * 257
        assert np.abs(aa - ref8).max() <= 257 * 1.01 and np.abs(aa - plain).mean() > 257 * 5, backend


def test_a_face_the_crop_does_not_shrink_is_cut_as_before_and_the_filter_grows_from_nothing():
    img = _texture()
    for scale in (0.5, 1.0):  # enlarged or 1:1: the same crop
        assert np.array_equal(_crop(img, _affine(scale)), _crop(img, _affine(scale), antialias=False))
    # just over 1 frame px a crop px: barely filtered (no step as a zoom crosses 1)
    near = np.abs(_crop(img, _affine(1.01)) - _crop(img, _affine(1.01), antialias=False)).mean()
    mid = np.abs(_crop(img, _affine(1.5)) - _crop(img, _affine(1.5), antialias=False)).mean()
    assert near < 1.0 < mid, (near, mid)


def test_the_face_stage_hands_the_model_averaged_crops():
    """The pipeline's crops (photo and video) are the antialiased ones; antialias=False is
    GPEN's script's read."""
    img = torch.from_numpy(_texture())
    seen = {}

    class Spy(IdentityRestorer):
        def __call__(self, crops):
            seen.setdefault("crops", []).append(crops.clone())
            return crops.clone()

    for aa in (True, False):
        FaceStage(Spy(S), None, None, antialias=aa).restore([img.clone()], [_affine(3.0)])
    got, plain = (c[0].permute(1, 2, 0).numpy().astype(np.float64) for c in seen["crops"])
    assert np.array_equal(got, _crop(img.numpy(), _affine(3.0)))
    assert np.array_equal(plain, _crop(img.numpy(), _affine(3.0), antialias=False))


def test_a_face_is_cut_the_same_whatever_is_batched_with_it():
    """The sub-sample count was the batch's largest need: a face shrunk 2x was read 2x2 alone and
    4x4 beside a face shrunk 4x (up to 11 grey levels apart: a face entering the shot changed
    every other face's crop)."""
    img = _texture()
    both = torch.cat([_affine(2.0), _affine(4.0, (30.0, 20.0))])
    for backend in ("cv2", "torch"):
        alone = _crop(img, _affine(2.0), backend=backend)
        together = warp_faces(torch.from_numpy(img), torch.zeros(2, dtype=torch.long), both, size=S,
                              backend=backend, antialias=True)[0].permute(1, 2, 0).numpy().astype(np.float64)
        assert np.array_equal(alone, together), backend

