"""``--model classic`` lost about two thirds of a face's fine detail even where it changed nothing:
the face was warped into the aligned crop and the restored crop warped back, two resamplings of
the whole face. A filter-type restorer (``residual = True``: classic) now has only its change
pasted back, added to the frame's own pixels; GPEN-type restorers keep the plain paste
(session 33)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from stream_gpen.faces import paste_faces
from tests._doubles import IdentityRestorer
from tests.test_hdr32 import _bright_face_clip, _FineIdentity


class _ResidualIdentity(IdentityRestorer):
    """A filter that changes nothing (classic-type: ``residual``)."""

    residual = True


def _photo(shared, name: str, side: int) -> np.ndarray:
    bgr = cv2.imread(str(shared / "data/faces/whole" / name))
    k = side / max(bgr.shape[:2])
    bgr = cv2.resize(bgr, (round(bgr.shape[1] * k), round(bgr.shape[0] * k)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _detail(rgb: np.ndarray) -> float:
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(y, cv2.CV_64F).var())


@pytest.fixture(scope="module")
def selfie(shared):
    """The 2316 px selfie at 1100 px: one face larger than the 512 crop."""
    return _photo(shared, "gpen_selfie_2020-12-10_175750.jpg", 1100)


def test_a_classic_restorer_that_changes_nothing_gives_the_photo_back(selfie, mobilenet_weights):
    """The real classic restorer with its filters off, through the whole-photo path (its face cut
    at its own size, ``with_size``), 8 and 16 bits: the photo comes back within a code everywhere.
    Before, the face kept 35% of its Laplacian variance (pixels off by tens of codes)."""
    from stream_gpen import Enhancer
    from stream_gpen.models.classic import ClassicRestorer

    sides = []  # (shared by the copies with_size makes)

    class Seen(ClassicRestorer):
        def _restore(self, crops):
            sides.append(int(crops.shape[-1]))
            return super()._restore(crops)

    enh = Enhancer(Seen(size=512, strength=0.0, detail=0.0), device="cpu",
                   detector_weights=mobilenet_weights, faces="largest", progress=False)
    out = enh.enhance_image(selfie)
    assert len(sides) == 1 and sides[0] > 512  # the face, cut at its own size
    assert np.abs(out.astype(int) - selfie).max() <= 1
    deep = selfie.astype(np.uint16) * 257 + 99
    back = enh.enhance_image(deep)
    assert np.abs(back.astype(np.int64) - deep).max() <= 257


def test_only_residual_restorers_skip_the_round_trip(shared, mobilenet_weights):
    """One switch, the restorer's ``residual`` flag: the same identity model without it (GPEN-type,
    which repaints the face) still has its crop warped back, so the face is softened; with it the
    photo comes back."""
    from stream_gpen import Enhancer

    rgb = _photo(shared, "gfpgan_whole_Blake_Lively.jpg", 700)
    outs = {}
    for cls in (IdentityRestorer, _ResidualIdentity):
        enh = Enhancer(cls(512), device="cpu", detector_weights=mobilenet_weights, faces="largest", progress=False)
        outs[cls] = enh.enhance_image(rgb)
    changed = np.abs(outs[IdentityRestorer].astype(int) - rgb).max(-1)
    assert (changed > 2).sum() > 1000  # the plain paste: the round trip shows
    assert np.abs(outs[_ResidualIdentity].astype(int) - rgb).max() == 0


@pytest.mark.parametrize("backend", ["torch", "cv2"])
@pytest.mark.parametrize("bits", [8, 16])
def test_residual_paste_adds_the_change_once(backend, bits):
    """``paste_faces(originals=...)``: the frame plus the change warped, under the same masks; two
    faces whose squares overlap each add their own change to the frame as it was (a plain paste
    takes the upper face there), never one change on top of the other."""
    rng = np.random.default_rng(3)
    top = 255 if bits == 8 else 65535
    frame = torch.from_numpy(rng.integers(0, top // 2, (200, 260, 3))).to(torch.uint8 if bits == 8 else torch.uint16)
    cut = torch.from_numpy(rng.integers(0, 200, (2, 3, 64, 64))).to(torch.uint8)
    changed = (cut.int() + 20).to(torch.uint8)
    s = 0.8  # frame px per crop px (crop 64 -> ~80 px faces)
    aff = torch.tensor([[[1 / s, 0, -40 / s], [0, 1 / s, -40 / s]], [[1 / s, 0, -90 / s], [0, 1 / s, -60 / s]]],
                       dtype=torch.float64)
    same = paste_faces(frame.clone(), cut, aff, originals=cut, backend=backend)
    assert torch.equal(same, frame)
    out = paste_faces(frame.clone(), changed, aff, originals=cut, backend=backend)
    step = 20 * (257 if bits == 16 else 1)
    d = out.double() - frame.double()
    assert d.max() <= step + 1 and d.min() >= 0
    assert (d > step - 1).all(-1).sum() > 2000  # both faces' full-weight areas, their overlap too
    # a solid change pasted whole is the plain paste's mask times the change
    ones = paste_faces(torch.zeros_like(frame), torch.full_like(cut[:1], 255), aff[:1], backend=backend)
    single = paste_faces(frame.clone(), changed[:1], aff[:1], originals=cut[:1], backend=backend)
    want = ones.double() / top * step
    assert ((single.double() - frame.double()) - want).abs().max() <= 1.01


def test_hdr_10bit_residual_applies_the_models_change_once(shared, tmp_path, mobilenet_weights):
    """10-bit HLG through the 16-bit path: a model that changes nothing gives the frame back (the
    plain paste: thousands of pixels off by more than half a 10-bit code, test_hdr32); one that brightens the
    face moves it as much as the plain paste does (the HDR mapping already returns the change
    against the crop it cut: measured against that crop, it is not applied twice)."""
    from stream_gpen import Enhancer
    from stream_gpen.io import open_source

    class Residual(_FineIdentity):
        residual = True

    class Brighter(_FineIdentity):
        def restore_fine(self, crops):
            f = (crops.float() + 12).clamp_(0, 255)
            return f.round().to(torch.uint8), f

    class ResidualBrighter(Brighter):
        residual = True

    clip = _bright_face_clip(shared, tmp_path / "hlg.mkv", 18)
    with open_source(clip) as src:
        ref = np.asarray(next(iter(src)).hi).astype(np.float64)

    def moved(cls):
        out = list(Enhancer(cls(512), device="cpu", detector_weights=mobilenet_weights,
                            faces="largest").stream(clip))[0]
        return (np.asarray(out.hi).astype(np.float64) - ref) / 64  # in 10-bit codes

    assert (np.abs(moved(Residual)) > 0.5).sum() == 0
    lift, lift_res = moved(Brighter), moved(ResidualBrighter)
    face = np.abs(lift).mean(-1) > 2  # where the model's change shows
    assert face.sum() > 10000
    ratio = lift_res.mean(-1)[face].mean() / lift.mean(-1)[face].mean()
    assert 0.95 < ratio < 1.05, ratio


@pytest.mark.parametrize("backend", ["torch", "cv2"])
def test_noise_finer_than_the_round_trip_is_thinned_at_the_filters_threshold(backend):
    """A filter that removes a face's noise: the frame's band finer than the round trip through the
    crop is noise too. Kept whole, it passes (std 12 -> ~7 here); at classic's threshold
    (``fine_shrink``) it is thinned as classic thins its crop's own fine band."""
    from stream_gpen.faces import warp_faces
    from stream_gpen.models.classic import ClassicRestorer

    rng = np.random.default_rng(5)
    frame = torch.from_numpy(np.clip(128 + rng.normal(0, 12, (240, 240, 3)), 0, 255).round().astype(np.uint8))
    rot = torch.from_numpy(cv2.getRotationMatrix2D((119.5, 119.5), 7.0, 1.0))[None]
    rot[:, :, 2] -= 56  # a 128 crop of the frame's centre, turned 7 degrees
    crop = warp_faces([frame], torch.zeros(1, dtype=torch.long), rot, size=128)
    clean = torch.full_like(crop, 128)  # the noise removed
    centre = (slice(90, 150),) * 2

    def noise(**kw):
        out = paste_faces(frame.clone(), clean, rot, backend=backend, **kw)
        return float(out[centre].double().std())

    assert noise() < 1.0
    assert noise(originals=crop) > 5.0
    assert noise(originals=crop, fine_shrink=ClassicRestorer().fine_shrink) < 2.5
