"""Alignment: golden template/transform vectors, batched warp vs OpenCV."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from stream_gpen.errors import InvalidInputError
from stream_gpen.faces import estimate_affines, invert_affines, reference_points, warp_faces


@pytest.fixture(scope="module")
def golden(gpen_fixtures):
    return json.loads((gpen_fixtures / "alignment_golden.json").read_text())


@pytest.fixture(scope="module")
def photo(shared):
    bgr = cv2.imread(str(shared / "data" / "faces" / "whole" / "codeformer_whole_00.jpg"))
    assert bgr is not None
    return np.ascontiguousarray(bgr[:, :, ::-1])


@pytest.mark.parametrize("size", [256, 512, 1024, 2048])
def test_reference_points_match_golden(golden, size):
    ref = reference_points(size)
    np.testing.assert_allclose(ref.numpy(), np.array(golden["reference_points"][str(size)]), atol=1e-9)


def test_affines_match_golden_umeyama(golden):
    for case in golden["cases"]:
        pts = torch.tensor(case["landmarks_xy"])
        a = estimate_affines(pts[None], size=case["crop_size"])
        assert a.shape == (1, 2, 3) and a.dtype == torch.float32
        np.testing.assert_allclose(a[0].double().numpy(), np.array(case["tfm"]), atol=2e-4, rtol=1e-5)
        inv = invert_affines(a.double())[0].numpy()
        # GPEN's inverse is a second Umeyama fit, equal to the matrix inverse to ~1e-5
        np.testing.assert_allclose(inv, np.array(case["tfm_inv"]), atol=2e-4, rtol=1e-4)


def test_affine_maps_points_onto_template():
    ref = reference_points(512)
    # a rotated, scaled, shifted template must map back onto the template exactly
    th = 0.3
    rot = torch.tensor([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]], dtype=torch.float64)
    pts = (ref @ rot.T) * 0.4 + torch.tensor([100.0, 50.0], dtype=torch.float64)
    a = estimate_affines(pts[None].float(), size=512)[0].double()
    mapped = pts @ a[:, :2].T + a[:, 2]
    np.testing.assert_allclose(mapped.numpy(), ref.numpy(), atol=5e-3)


@pytest.mark.parametrize("par", [4 / 3, 32 / 27, 8 / 9])
def test_non_square_pixels_are_aligned_in_display_geometry(par):
    # A face stored anamorphically (x divided by the pixel aspect) must land on the template
    # exactly as the square-pixel face does: the fit is a similarity on screen, not in storage.
    ref = reference_points(256)
    th = 0.2
    rot = torch.tensor([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]], dtype=torch.float64)
    shown = (ref @ rot.T) * 0.7 + torch.tensor([300.0, 120.0], dtype=torch.float64)  # display px
    stored = shown / torch.tensor([par, 1.0], dtype=torch.float64)
    a = estimate_affines(stored[None].float(), size=256, pixel_aspect=par)[0].double()
    np.testing.assert_allclose((stored @ a[:, :2].T + a[:, 2]).numpy(), ref.numpy(), atol=5e-3)
    # the matrix is the square-pixel one composed with the x scaling
    square = estimate_affines(shown[None].float(), size=256)[0].double()
    np.testing.assert_allclose(a[:, 0].numpy(), (square[:, 0] * par).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a[:, 1:].numpy(), square[:, 1:].numpy(), rtol=1e-4, atol=1e-3)
    # ignoring the pixel aspect leaves the face distorted in the crop (eyes/mouth off template)
    plain = estimate_affines(stored[None].float(), size=256)[0].double()
    assert (stored @ plain[:, :2].T + plain[:, 2] - ref).abs().max() > 2.0
    with pytest.raises(InvalidInputError, match="pixel_aspect must be a positive finite number, got 0"):
        estimate_affines(stored[None].float(), size=256, pixel_aspect=0)


def test_points_shape_is_checked():
    with pytest.raises(InvalidInputError, match=r"landmarks must be \[n, 5, 2\], got shape \(1, 4, 2\)"):
        estimate_affines(torch.zeros(1, 4, 2), size=256)
    with pytest.raises(InvalidInputError, match="crop size must be an int >= 8, got 4"):
        reference_points(4)


@pytest.mark.parametrize("backend", ["torch", "cv2"])
def test_warp_matches_opencv_on_real_faces(photo, golden, backend):
    frame = torch.from_numpy(photo)
    h, w, _ = photo.shape
    # faces of several sizes and angles, one partly outside the frame (its edge pixels repeated)
    base = reference_points(256)
    pts = []
    for s, th, cx, cy in [(0.6, 0.0, 0.3, 0.4), (1.3, 0.25, 0.6, 0.5), (0.35, -0.4, 0.05, 0.9)]:
        r = torch.tensor([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]], dtype=torch.float64)
        p = (base - 128) @ r.T * s + torch.tensor([cx * w, cy * h], dtype=torch.float64)
        pts.append(p)
    a = estimate_affines(torch.stack(pts).float(), size=256)
    crops = warp_faces(frame, torch.zeros(3, dtype=torch.long), a, size=256, backend=backend)
    assert crops.shape == (3, 3, 256, 256) and crops.dtype == torch.uint8
    for i in range(3):
        ref = cv2.warpAffine(photo, a[i].double().numpy(), (256, 256), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
        diff = np.abs(crops[i].permute(1, 2, 0).numpy().astype(int) - ref.astype(int))
        assert diff.max() <= 2, (i, diff.max())
        assert diff.mean() < 0.05, (i, diff.mean())


@pytest.mark.parametrize("backend", ["torch", "cv2"])
def test_both_warp_backends_match_opencv(photo, backend):
    """The torch gather (the GPU path) and the OpenCV path (the CPU default) cut the same crops."""
    frame = torch.from_numpy(photo)
    base = reference_points(256)
    pts = torch.stack([base * 0.7 + 40, (base - 128) * 1.2 + torch.tensor([300.0, 200.0], dtype=torch.float64)])
    a = estimate_affines(pts.float(), size=256)
    crops = warp_faces(torch.stack([frame, frame]), torch.tensor([0, 1]), a, size=256, backend=backend)
    for i in range(2):
        ref = cv2.warpAffine(photo, a[i].double().numpy(), (256, 256), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
        diff = np.abs(crops[i].permute(1, 2, 0).numpy().astype(int) - ref.astype(int))
        assert diff.max() <= 2 and diff.mean() < 0.05, (backend, i, diff.max(), diff.mean())
    with pytest.raises(InvalidInputError, match=r"backend must be one of \('auto', 'torch', 'cv2'\), got 'gl'"):
        warp_faces(frame, [0], a[:1], size=256, backend="gl")


def test_warp_batches_faces_from_many_frames(photo):
    f0 = torch.from_numpy(photo)
    f1 = torch.flip(f0, dims=[1]).contiguous()
    base = reference_points(128).float()
    a = estimate_affines((base * 2 + 40)[None].expand(3, 5, 2).contiguous(), size=128)
    ring = torch.stack([f0, f1])
    out = warp_faces(ring, torch.tensor([1, 0, 1]), a, size=128)
    single0 = warp_faces([f0], [0], a[:1], size=128)
    single1 = warp_faces(f1, [0], a[:1], size=128)
    assert torch.equal(out[1], single0[0]) and torch.equal(out[0], single1[0]) and torch.equal(out[2], out[0])
    assert not torch.equal(out[0], out[1])
    assert warp_faces(ring, torch.zeros(0, dtype=torch.long), torch.zeros(0, 2, 3), size=128).shape == (0, 3, 128, 128)


def test_warp_rejects_bad_input(photo):
    f = torch.from_numpy(photo)
    a = torch.eye(2, 3)[None]
    with pytest.raises(InvalidInputError, match=r"frame ids must lie in \[0, 1\), got \[3\]"):
        warp_faces(f, [3], a, size=64)
    with pytest.raises(InvalidInputError, match="frames must be uint8 RGB"):
        warp_faces(f.float(), [0], a, size=64)
    with pytest.raises(InvalidInputError, match="got 2 frame ids for 1 affines"):
        warp_faces(f, [0, 0], a, size=64)


@pytest.mark.cuda
def test_warp_on_cuda_matches_cpu(photo):
    f = torch.from_numpy(photo)
    a = estimate_affines((reference_points(256) * 1.5 + 30).float()[None], size=256)
    cpu = warp_faces(f, [0], a, size=256, backend="torch")
    gpu = warp_faces(f.cuda(), [0], a.cuda(), size=256)
    assert gpu.device.type == "cuda"
    assert (gpu.cpu().int() - cpu.int()).abs().max() <= 1
