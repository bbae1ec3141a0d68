"""The classic (non-neural) restorer: interface, validation, batching, and that it restores."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from stream_gpen.errors import DeviceError, InvalidInputError, StreamGpenError
from stream_gpen.models import classic
from stream_gpen.models.classic import METHODS, ClassicRestorer

S = 128  # small crops keep NLM (121 passes) cheap; the maths does not depend on S


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double() - b.double()).square().mean().item()
    return 10 * math.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def clean_face(shared) -> torch.Tensor:
    """A clean FFHQ aligned crop (not one of the degraded demo inputs), [1, 3, S, S] uint8."""
    img = cv2.imread(str(shared / "data" / "faces" / "aligned" / "gpen_ffhq_00002.png"))
    assert img is not None
    img = cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), (S, S), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).contiguous()


def _noisy(face: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(face.shape, generator=g) * sigma
    return (face.float() + noise).round().clamp(0, 255).to(torch.uint8)


def _jpeg(face: torch.Tensor, quality: int) -> torch.Tensor:
    rgb = face[0].permute(1, 2, 0).numpy()
    ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    return torch.from_numpy(out).permute(2, 0, 1).unsqueeze(0)


# --- interface -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_shapes_dtype_and_attributes(method):
    r = ClassicRestorer(size=32, method=method)
    assert (r.size, r.device, r.name, r.fallbacks) == (32, torch.device("cpu"), "classic", [])
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    y = r(x)
    assert y.shape == x.shape and y.dtype == torch.uint8 and y.device == x.device
    assert not torch.equal(y, x)  # it did something to random noise
    y.add_(0)  # an ordinary tensor (not an inference-mode one): paste-back may write to it


def test_empty_batch():
    r = ClassicRestorer(size=32)
    y = r(torch.zeros((0, 3, 32, 32), dtype=torch.uint8))
    assert y.shape == (0, 3, 32, 32) and y.dtype == torch.uint8


def test_input_not_modified_and_identity_when_off():
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    before = x.clone()
    ClassicRestorer(size=32)(x)
    assert torch.equal(x, before)
    assert torch.equal(ClassicRestorer(size=32, strength=0, detail=0)(x), x)


@pytest.mark.parametrize("method", METHODS)
def test_batch_independence(method, clean_face):
    faces = torch.cat([_noisy(clean_face, 5, seed=0), _noisy(clean_face, 20, seed=1), clean_face])
    r = ClassicRestorer(size=S, method=method)
    together = r(faces)
    for i in range(len(faces)):
        alone = r(faces[i : i + 1])
        # Same maths per crop; allow one grey level for float reassociation in batched kernels.
        assert (together[i : i + 1].int() - alone.int()).abs().max().item() <= 1


# --- validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "wavelet"}, r"method='wavelet' is not allowed: expected one of 'nlm', 'guided', 'bilateral'"),
        ({"strength": -0.5}, r"strength=-0.5 is not allowed: expected a number in \[0.0, 4.0\]"),
        ({"strength": "high"}, r"strength='high' is not allowed"),
        ({"detail": 5}, r"detail=5 is not allowed: expected a number in \[0.0, 3.0\]"),
        ({"noise_sigma": 300.0}, r"noise_sigma=300.0 is not allowed"),
        ({"size": 8}, r"size=8 is not allowed: expected an int in \[16, 4096\]"),
        ({"size": 512.0}, r"size=512.0 is not allowed"),
        ({"search_radius": 0}, r"search_radius=0 is not allowed: expected an int in \[1, 15\]"),
        ({"device": "tpu"}, r"device='tpu' is not allowed"),
    ],
)
def test_invalid_options(kwargs, match):
    with pytest.raises(InvalidInputError, match=match) as info:
        ClassicRestorer(**kwargs)
    assert isinstance(info.value, ValueError) and info.value.exit_code == 2


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        ClassicRestorer(512)  # type: ignore[misc]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda_is_a_device_error():
    with pytest.raises(DeviceError, match=r"device='cuda' was asked for but torch sees no CUDA device"):
        ClassicRestorer(device="cuda")


@pytest.mark.parametrize(
    ("crops", "match"),
    [
        (torch.zeros((1, 3, 32, 32), dtype=torch.float32), r"crops must be torch.uint8 RGB, got dtype torch.float32"),
        (torch.zeros((1, 32, 32, 3), dtype=torch.uint8), r"crops must have shape \[n, 3, 32, 32\], got \[1, 32, 32, 3\]"),
        (torch.zeros((3, 32, 32), dtype=torch.uint8), r"crops must have shape \[n, 3, 32, 32\]"),
        (torch.zeros((1, 3, 64, 64), dtype=torch.uint8), r"got \[1, 3, 64, 64\]"),
        (np.zeros((1, 3, 32, 32), np.uint8), r"crops must be a torch.Tensor, got ndarray"),
    ],
)
def test_invalid_crops(crops, match):
    with pytest.raises(InvalidInputError, match=match):
        ClassicRestorer(size=32)(crops)


def test_crops_on_the_wrong_device_are_refused():
    r = ClassicRestorer(size=32)
    meta = torch.zeros((1, 3, 32, 32), dtype=torch.uint8, device="meta")
    with pytest.raises(StreamGpenError, match=r"crops are on meta but this restorer runs on cpu"):
        r(meta)


# --- the maths -----------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [4.0, 10.0, 20.0])
def test_noise_estimate_on_flat_grey(sigma):
    x = torch.full((1, 3, 128, 128), 128.0)
    x = _noisy(x, sigma, seed=3).float() / 255
    est = classic.estimate_noise(x).item() * 255
    # Luma of 3 independent channels has std sigma * sqrt(.299^2 + .587^2 + .114^2).
    expected = sigma * math.sqrt(0.299**2 + 0.587**2 + 0.114**2)
    assert est == pytest.approx(expected, rel=0.12)


def test_fixed_noise_sigma_sets_the_strength(clean_face):
    noisy = _noisy(clean_face, 15)
    weak = ClassicRestorer(size=S, noise_sigma=1.0, detail=0)(noisy)
    strong = ClassicRestorer(size=S, noise_sigma=15.0, detail=0)(noisy)
    assert _psnr(strong, clean_face) > _psnr(weak, clean_face) + 1.0


# --- it restores (a test that can fail) ----------------------------------------------------------
@pytest.mark.parametrize(
    ("degrade", "min_gain_db"),
    [
        (lambda f: _noisy(f, 15, seed=4), 5.0),
        (lambda f: _jpeg(f, 20), 0.2),
        (lambda f: _jpeg(_noisy(f, 8, seed=5), 40), 0.5),
    ],
    ids=["noise15", "jpeg20", "noise8+jpeg40"],
)
def test_improves_psnr_on_a_degraded_clean_face(clean_face, degrade, min_gain_db):
    degraded = degrade(clean_face)
    restored = ClassicRestorer(size=S)(degraded)
    before, after = _psnr(degraded, clean_face), _psnr(restored, clean_face)
    assert after >= before + min_gain_db, f"PSNR {before:.2f} -> {after:.2f} dB"


def test_leaves_a_clean_face_nearly_alone(clean_face):
    # Restrained: on a clean input the estimated noise is low, so little is changed.
    out = ClassicRestorer(size=S)(clean_face)
    assert _psnr(out, clean_face) > 36.0


# --- CUDA ----------------------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("method", METHODS)
def test_cuda_matches_cpu(method, clean_face):
    noisy = _noisy(clean_face, 12)
    gpu = ClassicRestorer(size=S, device="cuda", method=method)
    assert gpu.device.type == "cuda"
    out = gpu(noisy.cuda())
    assert out.device.type == "cuda" and out.dtype == torch.uint8 and out.shape == noisy.shape
    ref = ClassicRestorer(size=S, method=method)(noisy)
    diff = (out.cpu().int() - ref.int()).abs()
    assert diff.max().item() <= 2 and diff.float().mean().item() < 0.05
    with pytest.raises(InvalidInputError, match=r"crops are on cpu but this restorer runs on cuda:0"):
        gpu(noisy)


def test_classic_says_weights_are_not_used(caplog):
    import logging

    import torch

    from stream_gpen.api import build_restorer

    with caplog.at_level(logging.WARNING, logger="stream_gpen"):
        build_restorer("classic", device=torch.device("cpu"), weights="/tmp/GPEN-BFR-512.pth")
    assert any("classic model has no weights" in r.getMessage() for r in caplog.records)
