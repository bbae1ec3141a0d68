"""The residual paste of ``--model classic`` (session 33) was 3-11x slower per face than the plain
paste on the default cv2 backend (a float32 blend and a torch noise estimate over the whole ROI of
every face), ignored classic's ``noise_sigma`` (the frame's band was always thinned at an
estimate), and crashed on a face whose ROI was under 3 px in a dimension (hunt 33)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from stream_gpen.faces import paste_faces, warp_faces


def _aff(size: int, cx: float, cy: float, face: float, ang: float = 7.0) -> torch.Tensor:
    """frame -> crop: a ``size`` crop of side ``2 * face`` frame px about (cx, cy), turned ``ang``."""
    s, a = size / (face * 2.0), math.radians(ang)
    m = torch.tensor([[s * math.cos(a), s * math.sin(a), 0], [-s * math.sin(a), s * math.cos(a), 0]],
                     dtype=torch.float64)
    m[:, 2] = torch.tensor([size / 2, size / 2], dtype=torch.float64) - m[:, :2] @ torch.tensor([cx, cy], dtype=torch.float64)
    return m[None]


def _noisy(h: int = 240, w: int = 240, seed: int = 5) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.clip(128 + rng.normal(0, 12, (h, w, 3)), 0, 255).round().astype(np.uint8))


def _hf(x: torch.Tensor) -> np.ndarray:
    f = x.numpy().astype(np.float32)
    return (f - cv2.GaussianBlur(f, (0, 0), 1.0)).mean(-1)


@pytest.mark.parametrize("backend", ["torch", "cv2"])
def test_the_frames_band_is_thinned_at_the_noise_level_the_filter_was_told(backend):
    """``fine_sigma``: classic's fixed ``noise_sigma`` sets the threshold (0 keeps the frame's band
    whole, as classic keeps its crop's; 30 thins it more than the estimate). Before, the level was
    always estimated from the frame."""
    frame = _noisy()
    aff = _aff(128, 119.5, 119.5, 64.0)
    crop = warp_faces([frame], torch.zeros(1, dtype=torch.long), aff, size=128)
    clean = torch.full_like(crop, 128)
    centre = (slice(90, 150),) * 2
    hin = _hf(frame)[centre].std()

    def kept(**kw):
        out = paste_faces(frame.clone(), clean, aff, backend=backend, originals=crop, **kw)
        return _hf(out)[centre].std() / hin

    whole = kept()
    assert kept(fine_shrink=2.0, fine_sigma=[0.0]) == pytest.approx(whole, abs=1e-6)
    estimated = kept(fine_shrink=2.0)
    assert estimated < 0.5 * whole
    assert kept(fine_shrink=2.0, fine_sigma=torch.tensor([30.0])) < 0.5 * estimated


def test_the_pipeline_hands_classics_noise_sigma_to_the_paste(shared, mobilenet_weights, monkeypatch):
    """Through the pipeline: ``ClassicRestorer(noise_sigma=...)`` reaches paste_faces as the
    faces' noise level; with it unset the paste estimates it (``None``)."""
    import stream_gpen.pipeline as pipeline
    from stream_gpen import Enhancer
    from stream_gpen.models.classic import ClassicRestorer

    seen = []
    real = pipeline.paste_faces

    def spy(*args, **kw):
        seen.append((kw.get("fine_shrink"), kw.get("fine_sigma")))
        return real(*args, **kw)

    monkeypatch.setattr(pipeline, "paste_faces", spy)
    bgr = cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))
    rgb = np.ascontiguousarray(cv2.resize(bgr, (350, round(bgr.shape[0] * 350 / bgr.shape[1])),
                                          interpolation=cv2.INTER_AREA)[:, :, ::-1])
    for sigma in (0.0, None):
        seen.clear()
        enh = Enhancer(ClassicRestorer(size=128, noise_sigma=sigma, method="guided"), device="cpu",
                       detector_weights=mobilenet_weights, faces="largest", progress=False)
        enh.enhance_image(rgb)
        assert seen and all(shrink == 2.0 for shrink, _ in seen)
        if sigma is None:
            assert all(s is None for _, s in seen)
        else:
            assert all(list(s) == [sigma] for _, s in seen)


@pytest.mark.parametrize("backend", ["torch", "cv2"])
@pytest.mark.parametrize("rows", [1, 2, 3])
def test_a_face_at_the_frames_edge_with_a_sliver_of_roi_pastes(backend, rows):
    """A crop that overlaps the frame by 1 or 2 rows: its ROI is too small for the 3x3 noise
    mask. The residual paste raised RuntimeError there (the plain paste did not)."""
    frame = _noisy(200, 300)
    face = 60.0
    aff = _aff(128, 150.0, 200 + face - rows, face, ang=0.0)
    crop = warp_faces([frame], torch.zeros(1, dtype=torch.long), aff, size=128)
    brighter = (crop.int() + 20).clamp(0, 255).to(torch.uint8)
    out = paste_faces(frame.clone(), brighter, aff, backend=backend, originals=crop, fine_shrink=2.0)
    d = out.int() - frame.int()
    assert d.min() >= 0 and d.max() <= 21
    assert torch.equal(out[: 200 - rows - 2], frame[: 200 - rows - 2])


@pytest.mark.parametrize("given", [True, False])
def test_the_residual_paste_runs_no_torch_noise_estimate_per_face_on_the_cpu(given, monkeypatch):
    """The cost: the torch estimate (luma, full conv2d, median) over every face's ROI was ~72% of
    a residual paste on the CPU. Now none: the level given (``fine_sigma``) or OpenCV's estimate
    over at most the ROI's central 1024 px square."""
    import stream_gpen.models.classic as classic

    calls = []
    real = classic.estimate_noise
    monkeypatch.setattr(classic, "estimate_noise", lambda x: calls.append(tuple(x.shape)) or real(x))
    seen = []
    real_hwc = classic.estimate_noise_hwc
    monkeypatch.setattr(classic, "estimate_noise_hwc", lambda x, **kw: seen.append(x.shape) or real_hwc(x, **kw))
    frame = _noisy(1400, 1400)
    aff = _aff(512, 700.0, 700.0, 600.0)
    crop = warp_faces([frame], torch.zeros(1, dtype=torch.long), aff, size=512)
    kw = {"fine_sigma": [12.0]} if given else {}
    for backend in ("cv2", "torch"):
        paste_faces(frame.clone(), crop, aff, backend=backend, originals=crop, fine_shrink=2.0, **kw)
    assert calls == []
    assert seen == ([] if given else [(1024, 1024, 3)] * 2)
