"""A classic (non-neural) face enhancer with the restorer interface.

It runs where no GPEN checkpoint is available (offline machines, first tries): aligned uint8 crops
``[n, 3, S, S]`` in, crops of the same shape out, the whole batch on the device in one go.

What it does, per crop, all in torch:

1. estimate the crop's noise level from its luminance (median absolute response of a Laplacian
   mask, Immerkaer-style, robust to the face's edges because most of a face is smooth skin);
2. edge-preserving denoise whose strength follows that estimate: non-local means (default),
   a guided filter or a bilateral filter (``method``);
3. a restrained detail boost: unsharp mask on luminance with a soft threshold, so that the
   boost sharpens edges but does not re-amplify the noise left after step 2.

It cannot invent detail the way GPEN does: it removes noise and compression artefacts and
crisps edges a little. ``bench/classic_eval.py`` measures it (PSNR/SSIM on held-out clean faces
under blur, downscaling, noise, JPEG and real H.264) and ``docs/classic.md`` holds the numbers and
how the defaults below were chosen.
"""
from __future__ import annotations

import copy
import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from stream_gpen.errors import DeviceError, InvalidInputError

Method = Literal["nlm", "guided", "bilateral"]
METHODS: tuple[str, ...] = get_args(Method)

# BT.601 luma weights: the detail boost and the noise estimate work on luminance only.
_LUMA = (0.299, 0.587, 0.114)
# For Gaussian noise of std s, a 3x3 Laplacian-like mask M (||M||_2 = 6) responds with std 6 s,
# and the median of |N(0, v)| is 0.6745 sqrt(v).
_MAD_TO_SIGMA = 1.0 / (0.6745 * 6.0)
_LAPLACE = ((1.0, -2.0, 1.0), (-2.0, 4.0, -2.0), (1.0, -2.0, 1.0))

# Defaults chosen on the tuning faces by bench/classic_eval.py --tune (see docs/classic.md).
# The floor is what removes compression artefacts (JPEG/H.264 leave little measurable noise) and
# also what costs a little on clean-but-soft crops: on the tuning faces floor 0.025 gave
# JPEG +0.93 / blur -0.51 dB and floor 0.015 gave +0.56 / -0.29 dB (NLM, no sharpening).
# Compression was the weak spot on sharp faces (see docs/classic.md), hence the higher floor.
_DEFAULTS = {
    # h (NLM), sigma_r (bilateral) or sqrt(eps) (guided) = gain * sigma_est + floor, in [0, 1] units.
    "nlm": {"gain": 1.0, "floor": 0.03},
    "guided": {"gain": 2.5, "floor": 0.03},
    "bilateral": {"gain": 3.0, "floor": 0.03},
}
_BILATERAL_RADIUS = 4  # ~2.7 sigma_s of its spatial Gaussian (sigma_s = 1.5)
# A crop larger than ``work_size``: its band finer than the work size is soft-thresholded at this
# many times the crop's noise estimate (times ``strength``). Chosen on 512 crops filtered at 256
# (gpen_ffhq_00001/00002, Adele; docs/classic.md): 2 kept noise sigma 12 at +8.0 dB (0: +0.6 dB,
# the fine grain all kept; 3: +8.7 dB) while a clean crop kept 78% of its Laplacian variance
# (0: 99%, 3: 71%; the 256 round trip it replaces kept 15%).
_FINE_SHRINK = 2.0


def _check_range(name: str, value: float, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (lo <= value <= hi):
        raise InvalidInputError(
            f"{name}={value!r} is not allowed: expected a number in [{lo}, {hi}]"
        )
    return float(value)


class ClassicRestorer:
    """Non-neural face restorer: adaptive edge-preserving denoise plus a restrained sharpen.

    A restorer per the project convention: ``restorer(crops)`` maps RGB ``torch.uint8``
    ``[n, 3, size, size]`` on ``device`` to the same shape, dtype and device; it has ``size``,
    ``device``, ``name`` (``"classic"``) and ``fallbacks`` (always empty: nothing here can fall
    back). Crops are processed independently: a crop's output does not depend on its batch.

    The filters work in crop pixels at any side: :meth:`with_size` gives the same restorer for
    another crop side, so an aligned photo (``--aligned``) is restored at its own size, not
    resized to ``size`` and back, which would blur a larger one.

    Args:
        size: crop side S the pipeline aligns detected faces to; 512 (GPEN-BFR-512's alignment
            template) keeps the detail of faces up to 512 px, a smaller S blurs larger faces
            (the crop is pasted back enlarged).
        work_size: the side the filters run at (``None`` = the crop's own side). A larger crop
            is filtered at this side and only the filters' change is applied to it, enlarged;
            its detail finer than the work size is kept, except the part below the noise level
            (soft-thresholded at ``_FINE_SHRINK`` times the noise estimate), so the crop never
            comes out blurrier than it went in. Lower is cheaper (NLM's cost goes with the
            pixels: ~3x less per 512 px face at 256 on CPU) at a small cost in denoising and
            sharpening (docs/classic.md has the numbers).
        device: where the batch is processed. ``"cuda"`` without CUDA raises ``DeviceError``.
        method: the edge-preserving denoiser. ``"nlm"`` (non-local means, the default) removes
            the most noise and compression artefacts for the least blur, and is the slowest
            (one pass per search offset: 7x7 = 49 by default); ``"guided"`` (guided filter,
            luminance as guide) is ~6x cheaper on CPU (5.9x in docs/classic.md) and blurs soft detail more;
            ``"bilateral"`` costs about as much as NLM and gains less. docs/classic.md has the
            measured comparison.
        strength: multiplies the denoise strength the noise estimate asks for. Raise it for
            very noisy or blocky footage (smoother skin, at the cost of fine texture such as
            hair and stubble); lower it to keep texture; 0 turns the denoiser off.
        detail: amount of the unsharp mask on luminance (0 = off). Higher values crisp edges
            (eyes, lips) and gain a little on merely blurred faces, but exaggerate ringing around
            JPEG/H.264 blocks: on sharp compressed faces 0.5 already lowered PSNR (JPEG q20
            -0.23 dB vs +0.52 dB without), hence the restrained default 0.25.
        noise_sigma: fixes the noise level (0..100, in 0..255 units) instead of estimating it per crop;
            the pipeline's paste thins the frame's band finer than the crop at it too (0: kept whole).
            Estimating adapts to each face (clean crops are left nearly untouched) but can vary
            a little from frame to frame; a fixed value is steadier across a video.
        search_radius: NLM search window radius in pixels ((2r+1)^2 passes). Larger finds
            more similar patches (stronger denoise of heavy noise) at quadratic cost; 3 was
            tuned for speed on CPU.
    """

    name = "classic"
    #: A filter, not a painter: the pipeline pastes back this restorer's change, added to the
    #: frame's own pixels (``paste_faces(originals=...)``), instead of the whole crop warped back,
    #: which costs a face about half its fine detail by itself. GPEN, which draws the face anew,
    #: has no such attribute (``False``): its crop is the face.
    residual = True

    def __init__(
        self,
        *,
        size: int = 512,
        work_size: int | None = None,
        device: str | torch.device = "cpu",
        method: Method = "nlm",
        strength: float = 1.0,
        detail: float = 0.25,
        noise_sigma: float | None = None,
        search_radius: int = 3,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 4096:
            raise InvalidInputError(f"size={size!r} is not allowed: expected an int in [16, 4096]")
        if method not in METHODS:
            raise InvalidInputError(
                f"method={method!r} is not allowed: expected one of {', '.join(map(repr, METHODS))}"
            )
        if work_size is not None and (isinstance(work_size, bool) or not isinstance(work_size, int)
                                      or not 16 <= work_size <= 4096):
            raise InvalidInputError(
                f"work_size={work_size!r} is not allowed: expected None or an int in [16, 4096]"
            )
        self.size = size
        self.work_size = work_size
        self.method: Method = method
        self.strength = _check_range("strength", strength, 0.0, 4.0)
        self.detail = _check_range("detail", detail, 0.0, 3.0)
        self.noise_sigma = (
            None if noise_sigma is None else _check_range("noise_sigma", noise_sigma, 0.0, 100.0)
        )
        if isinstance(search_radius, bool) or not isinstance(search_radius, int) or not (
            1 <= search_radius <= 15
        ):
            raise InvalidInputError(
                f"search_radius={search_radius!r} is not allowed: expected an int in [1, 15]"
            )
        self.search_radius = search_radius
        self.device = _resolve_device(device)
        self.fallbacks: list[str] = []
        params = _DEFAULTS[method]
        self._gain = params["gain"]
        self._floor = params["floor"]

    def __repr__(self) -> str:
        return (
            f"ClassicRestorer(size={self.size}, work_size={self.work_size}, device='{self.device}', method='{self.method}', "
            f"strength={self.strength}, detail={self.detail}, noise_sigma={self.noise_sigma})"
        )

    @property
    def fine_shrink(self) -> float:
        """The threshold, in multiples of the noise, for the frame's band finer than the round
        trip through the crop (``paste_faces(fine_shrink=...)``): the one this restorer applies
        to its crop's band finer than ``work_size``, so noise there is thinned as here (0 with
        the denoiser off: the frame's band is kept whole). The pipeline applies it at
        ``noise_sigma`` where that is fixed (``paste_faces(fine_sigma=...)``), else at the noise
        estimated around each face in the frame."""
        return _FINE_SHRINK * self.strength

    def _sigma(self, x: torch.Tensor) -> torch.Tensor:
        """Per crop noise std ``[n]`` of ``x`` (float, 0..1): fixed or estimated."""
        if self.noise_sigma is None:
            return estimate_noise(x)
        return torch.full((x.shape[0],), self.noise_sigma / 255.0, device=x.device, dtype=x.dtype)

    def with_size(self, size: int) -> ClassicRestorer:
        """The same restorer (options, device, ``work_size``) for crops of side ``size``."""
        if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 4096:
            raise InvalidInputError(f"size={size!r} is not allowed: expected an int in [16, 4096]")
        other = copy.copy(self)
        other.size = size
        return other

    # no_grad, not inference_mode: the outputs stay ordinary tensors the pipeline may write to.
    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        return self._restore(crops).round_().to(torch.uint8)

    def restore_fine(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(uint8 output, the same before rounding)``: float32 on the 0..255 scale, for
        10/12-bit video whose faces keep more than 8 bits (see ``FaceRunner.restore_fine``)."""
        fine = self._restore(crops)
        return fine.round().to(torch.uint8), fine

    def _restore(self, crops: torch.Tensor) -> torch.Tensor:
        """Restored crops as float32 on the 0..255 scale, clamped, not yet rounded."""
        from stream_gpen.runtime._runner import no_autocast

        with torch.no_grad(), no_autocast():  # float32, whatever autocast a host has on
            return self._restore_f32(crops)

    def _restore_f32(self, crops: torch.Tensor) -> torch.Tensor:
        self._check_crops(crops)
        if crops.shape[0] == 0:
            return crops.float()
        x = crops.float().div_(255.0)
        side = x.shape[-1]
        if self.work_size is not None and side > self.work_size:
            return self._two_scale(x).mul_(255.0).clamp_(0, 255)
        return self._filter(x).mul_(255.0).clamp_(0, 255)

    def _filter(self, x: torch.Tensor) -> torch.Tensor:
        """The filters at ``x``'s own size (float [n,3,S,S] in [0, 1], overwritten)."""
        sigma = self._sigma(x)
        if self.strength > 0:
            level = self.strength * (self._gain * sigma + self._floor)
            x = self._denoise(x, level, sigma)
        if self.detail > 0:
            x = unsharp_luma(x, amount=self.detail)
        return x

    def _two_scale(self, x: torch.Tensor) -> torch.Tensor:
        """A crop larger than ``work_size``: the filters' change at the work size, enlarged, plus
        the crop's own finer band, soft-thresholded against its noise. Filtering the reduced crop
        and enlarging the result instead (a round trip through the work size) would throw that
        band away: a 512 px face lost ~70% of its Laplacian variance at 256."""
        side, work = x.shape[-1], self.work_size
        small = F.interpolate(x, size=(work, work), mode="area")
        base = F.interpolate(small, size=(side, side), mode="bilinear", align_corners=False)
        fine = x - base
        if self.strength > 0:
            tau = (self.fine_shrink * self._sigma(x)).view(-1, 1, 1, 1)
            fine = fine.sign() * (fine.abs() - tau).clamp_min_(0)
        change = self._filter(small.clone()).sub_(small)
        return base.add_(F.interpolate(change, size=(side, side), mode="bilinear", align_corners=False)).add_(fine)

    def _denoise(self, x: torch.Tensor, level: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.method == "nlm":
            return nlm(x, h=level, sigma=sigma, search_radius=self.search_radius)
        if self.method == "guided":
            return guided_filter(x, eps=level * level)
        return bilateral(x, sigma_r=level, search_radius=_BILATERAL_RADIUS)

    def _check_crops(self, crops: torch.Tensor) -> None:
        if not isinstance(crops, torch.Tensor):
            raise InvalidInputError(f"crops must be a torch.Tensor, got {type(crops).__name__}")
        if crops.dtype != torch.uint8:
            raise InvalidInputError(f"crops must be torch.uint8 RGB, got dtype {crops.dtype}")
        if crops.ndim != 4 or crops.shape[1] != 3 or crops.shape[2:] != (self.size, self.size):
            raise InvalidInputError(
                f"crops must have shape [n, 3, {self.size}, {self.size}], got {list(crops.shape)}"
            )
        if crops.device != self.device:
            # No hidden host<->device copies in the frame loop: the caller moves crops once.
            raise InvalidInputError(
                f"crops are on {crops.device} but this restorer runs on {self.device}; "
                f"move them with crops.to('{self.device}') or build the restorer there"
            )


def _resolve_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InvalidInputError(
            f"device={device!r} is not allowed: expected 'cpu', 'cuda' or 'cuda:N'",
            hint="device='cpu', or 'cuda' for the first GPU torch sees",
        ) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device={device!r} was asked for but torch sees no CUDA device",
                hint="use device='cpu', or install a CUDA build of torch",
            )
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    elif dev.type != "cpu":
        raise InvalidInputError(f"device={device!r} is not allowed: expected 'cpu' or 'cuda[:N]'",
                                hint="device='cpu', or 'cuda' for the first GPU torch sees")
    return dev


# --- building blocks (pure functions on float [n, c, H, W] in [0, 1]) --------------------------
def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luminance ``[n, 1, H, W]`` of RGB ``x``."""
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def estimate_noise(x: torch.Tensor) -> torch.Tensor:
    """Per-image noise std ``[n]`` (0..1 units) of RGB ``x``, from its luminance.

    Median rather than mean of the Laplacian response: edges (eyes, hair) are a minority of a
    face crop, so the median follows the noise on skin, not the picture's structure.
    """
    y = luma(x)
    mask = torch.tensor(_LAPLACE, device=x.device, dtype=x.dtype).view(1, 1, 3, 3)
    resp = F.conv2d(y, mask).abs().flatten(1)
    return resp.median(dim=1).values * _MAD_TO_SIGMA


def estimate_noise_hwc(rgb, *, stride: int = 2) -> float:
    """:func:`estimate_noise` of one RGB picture ``[h, w, 3]`` (a numpy array or CPU tensor, any
    scale: the answer is on the same one) with OpenCV and numpy: the same luminance, mask and
    median, the median taken over every ``stride``-th response in each direction. For a frame's
    area around a face per paste (``paste_faces``' residual band), where torch's conv and median
    cost more than the paste itself. 0 for a picture under 3 px in a dimension (no response)."""
    import cv2
    import numpy as np

    rgb = np.asarray(rgb)
    if rgb.shape[0] < 3 or rgb.shape[1] < 3:
        return 0.0
    y = cv2.transform(np.ascontiguousarray(rgb, dtype=np.float32), np.array([_LUMA], dtype=np.float32))
    resp = np.abs(cv2.filter2D(y, cv2.CV_32F, np.array(_LAPLACE, dtype=np.float32))[1:-1, 1:-1][::stride, ::stride])
    return float(np.median(resp)) * _MAD_TO_SIGMA


def _shift_views(xp: torch.Tensor, pad: int, h: int, w: int, dy: int, dx: int) -> torch.Tensor:
    return xp[:, :, pad + dy : pad + dy + h, pad + dx : pad + dx + w]


def nlm(
    x: torch.Tensor,
    *,
    h: torch.Tensor,
    sigma: torch.Tensor,
    search_radius: int = 3,
    patch_radius: int = 1,
) -> torch.Tensor:
    """Non-local means with per-image filtering parameter ``h`` ``[n]``.

    Patch distances use all three channels (colour noise and chroma blocks weigh in); the
    expected distance of two noisy copies of the same patch (2 sigma^2) is subtracted, as in
    Buades et al., so that equal patches get full weight whatever the noise level. The loop is
    over search offsets, not pixels: each pass is a few whole-batch tensor ops.
    """
    n, c, H, W = x.shape
    pad = search_radius
    xp = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    inv_h2 = (1.0 / (h * h).clamp_min(1e-8)).view(n, 1, 1, 1)
    bias = (2.0 * sigma * sigma).view(n, 1, 1, 1)
    k = 2 * patch_radius + 1
    num = torch.zeros_like(x)
    den = torch.zeros((n, 1, H, W), device=x.device, dtype=x.dtype)
    for dy in range(-search_radius, search_radius + 1):
        for dx in range(-search_radius, search_radius + 1):
            shifted = _shift_views(xp, pad, H, W, dy, dx)
            d = (x - shifted).square_().mean(1, keepdim=True)
            d = F.avg_pool2d(d, k, stride=1, padding=patch_radius, count_include_pad=False)
            wgt = d.sub_(bias).clamp_min_(0).mul_(inv_h2).neg_().exp_()
            num.addcmul_(wgt, shifted)
            den.add_(wgt)
    return num.div_(den)


def bilateral(
    x: torch.Tensor, *, sigma_r: torch.Tensor, search_radius: int = 3, sigma_s: float = 1.5
) -> torch.Tensor:
    """Bilateral filter: spatial Gaussian ``sigma_s`` times range Gaussian ``sigma_r`` ``[n]``
    (on the RGB distance), one pass per window offset."""
    n, c, H, W = x.shape
    pad = search_radius
    xp = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    inv_r = (1.0 / (2.0 * sigma_r * sigma_r).clamp_min(1e-8)).view(n, 1, 1, 1)
    num = torch.zeros_like(x)
    den = torch.zeros((n, 1, H, W), device=x.device, dtype=x.dtype)
    for dy in range(-search_radius, search_radius + 1):
        for dx in range(-search_radius, search_radius + 1):
            shifted = _shift_views(xp, pad, H, W, dy, dx)
            spatial = math.exp(-(dy * dy + dx * dx) / (2.0 * sigma_s * sigma_s))
            d = (x - shifted).square_().mean(1, keepdim=True)
            wgt = d.mul_(inv_r).neg_().exp_().mul_(spatial)
            num.addcmul_(wgt, shifted)
            den.add_(wgt)
    return num.div_(den)


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided_filter(x: torch.Tensor, *, eps: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Guided filter (He et al.) of each RGB channel with the luminance as guide.

    ``eps`` ``[n]`` is the variance below which a window counts as flat and is averaged; above
    it, the local linear model keeps the edge. One guide for all channels keeps colour edges
    aligned with luminance edges and smooths chroma noise on skin.
    """
    n = x.shape[0]
    guide = luma(x)
    eps = eps.view(n, 1, 1, 1)
    mean_i = _box(guide, radius)
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    mean_p = _box(x, radius)
    cov_ip = _box(guide * x, radius) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box(a, radius) * guide + _box(b, radius)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding, per channel."""
    r = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(t * t) / (2.0 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def unsharp_luma(
    x: torch.Tensor, *, amount: float, sigma: float = 1.5, threshold: float = 2.0 / 255.0
) -> torch.Tensor:
    """Unsharp mask on luminance with a soft threshold, added equally to R, G and B.

    Only luminance is sharpened (chroma is half resolution in every 4:2:0 source, sharpening it
    paints colour fringes). Detail smaller than ``threshold`` is treated as residual noise and
    left alone; above it, the boost starts from zero, so there is no step at the threshold.
    """
    y = luma(x)
    detail = y - gaussian_blur(y, sigma)
    detail = detail.sign() * (detail.abs() - threshold).clamp_min(0)
    return x.add_(detail, alpha=amount)
