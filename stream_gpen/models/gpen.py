"""GPEN's ``FullGenerator`` in plain PyTorch, state-dict compatible with the official checkpoints.

Written from ``fixtures/gpen/FACTS.md`` (sections 3-5). Module and parameter names match the
official state dict exactly (``keys_{256,512,1024,2048}.txt``), so a released ``GPEN-BFR-*.pth``
loads with ``strict=True``.

Differences from the official code, none of which change the maths:

* **Batched modulated convolution.** The official code folds each sample's style into its own
  copy of the weight and runs a grouped conv with ``groups=batch``. Here the style scales the
  *input activations*, one ordinary conv with the shared weight runs over the whole batch, and
  the per-sample demodulation factors scale the output. Convolution is linear per input/output
  channel, so this is the same function, but cuDNN / tensor cores see one large conv with static
  shapes, the weight is never copied per sample, and channels_last / CUDA graphs work unchanged.
* **No compiled ops.** ``upfirdn2d`` and the fused leaky ReLU are pure PyTorch (what the official
  code falls back to on CPU, which is what the golden fixtures were made with).
* **No randomness.** FullGenerator always injects encoder features, so the noise-sampling path of
  the standalone StyleGAN generator is not implemented; ``forward`` returns the image only.

Two implementations of the same maths (``FullGenerator.impl``):

* ``"reference"`` — the batched form above, one op per step of the official code. What
  ``torch.compile`` and autocast see: inductor fuses the element-wise ops itself.
* ``"fused"`` — the eager and CUDA-graph path, CPU and GPU. On a CPU nothing fuses element-wise
  ops, and about a third of GPEN-256's eager time went to passes over full-resolution activations (``x·s``,
  ``out·demod``, ``cat``, ``+bias``, leaky ReLU, ``·sqrt2``). Here, per layer, the style
  and demodulation are folded into a per-sample copy of the *weight* wherever the weight is
  smaller than the activations (the high-resolution layers; grouped conv over the batch), else
  into one ``addcmul`` after the conv; ``sqrt(2)`` and the bias of the fused leaky ReLU go into
  the conv (leaky ReLU is positively homogeneous: ``sqrt2·lrelu(y + b) = lrelu(sqrt2·y +
  sqrt2·b)``); the activation writes straight into its half of the concatenation buffer; blurs
  pad inside the conv and carry the bias; the ToRGB upsampling is a transposed conv (no
  zero-inserted copy) and the 1x1 ToRGB conv one ``baddbmm``. Same function up to float rounding
  (tests compare both paths in float64 on the fixture configs).

  In channels-last (NHWC) layout, which the CPU's bf16 path uses, the weight is never modulated
  per sample: oneDNN's NHWC convs with one shared weight are 2-3x faster than the grouped
  per-sample convs there, so ``x·s`` feeds the shared weight (see ``weight_modulation_pays``).

``"auto"`` (default) picks ``"fused"`` for float32/float64/bfloat16 on the CPU and for
float16/bfloat16/float32 on CUDA, outside autocast, autograd and ``torch.compile`` tracing;
``"reference"`` everywhere else. On CUDA the fused form runs in NCHW (the runner's default
there): on an H200 it ran GPEN-512 fp16 in captured graphs 2.0-2.1x the reference form
channels-last, GPEN-256 1.4-1.7x (docs/gpu.md, session 16); the GPU has no fused kernels of
its own, so what pays there is the same: fewer passes over high-resolution activations.

Precision: demodulation factors and the pixel norm are computed in float32 even when the module
runs in float16/bfloat16 (sums of squares over up to 1024·9 terms overflow float16's 65504 and
lose precision in bfloat16); for bfloat16 on the CPU the style path (the linear layers) and the
3-channel RGB skip run in float32 too (faster there, and more exact); everything else runs in
the module's dtype. ``forward`` has no host
syncs, no ``.item()`` and no data-dependent shapes, so it can be captured in a CUDA graph.
"""
from __future__ import annotations

import math
import weakref
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stream_gpen.errors import InvalidInputError
from stream_gpen.models.registry import GPENConfig

__all__ = [
    "TINY_CONFIG",
    "TINY256_CONFIG",
    "FullGenerator",
    "Impl",
    "random_generator",
    "upfirdn2d",
    "fused_leaky_relu",
]

#: Fixture config ``gpen_tiny64_*`` (FACTS.md section 8): 157 k values, fast enough for any test.
TINY_CONFIG = GPENConfig(64, style_dim=40, channel_multiplier=1, narrow=0.05)
#: Fixture config ``gpen_tiny256_*``: the key layout and depth of GPEN-BFR-256 at ~3.7 % of the size.
TINY256_CONFIG = GPENConfig(256, style_dim=48, channel_multiplier=2, narrow=0.1)

_BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)  # blur_kernel of every released GPEN model
_SQRT2 = math.sqrt(2.0)
_SLOPE = 0.2  # negative slope of every leaky ReLU in GPEN

#: Which implementation of the forward pass runs (module docstring): ``"auto"`` picks per input.
Impl = Literal["auto", "reference", "fused"]
BlurImpl = Literal["conv", "pool"]


def _at_least_fp32(x: Tensor) -> Tensor:
    """Upcast float16/bfloat16 to float32; leave float32/float64 alone."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _make_kernel(scale: float = 1.0) -> Tensor:
    """``outer(k, k) / sum`` for k = [1,3,3,1], times ``scale`` (4 for the 2x upsampling kernels)."""
    # worked on the CPU, then put where the model is built: on the meta device (a checkpoint's
    # model, its weights assigned later) any op imports torch._dynamo, ~3 s at every start
    k = torch.tensor(_BLUR_TAPS, dtype=torch.float32, device="cpu")
    k2 = torch.outer(k, k)
    return (k2 / k2.sum() * scale).to(torch.get_default_device())


# --- functional ops -------------------------------------------------------------------------


def fused_leaky_relu(x: Tensor, bias: Tensor, negative_slope: float = 0.2) -> Tensor:
    """``sqrt(2) · leaky_relu(x + bias)`` with ``bias`` broadcast over dim 1 (channels)."""
    shape = (1, bias.shape[0]) + (1,) * (x.dim() - 2)
    return F.leaky_relu(x + bias.view(shape), negative_slope) * _SQRT2


def upfirdn2d(
    x: Tensor, kernel: Tensor, *, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)
) -> Tensor:
    """Upsample (zero insertion), pad, FIR-filter (true convolution), downsample; per channel.

    Native semantics of StyleGAN2's op on both axes (FACTS.md section 4): sample i goes to index
    ``up·i`` with the zeros after it, ``pad = (before, after)`` zeros (negative crops), then a
    *true* convolution with ``kernel`` (i.e. cross-correlation with the kernel flipped in both
    axes, which matters for asymmetric kernels), valid mode, then every ``down``-th sample from
    index 0. Output length per axis: ``(n·up + pad0 + pad1 − kh) // down + 1``.
    """
    b, c, h, w = x.shape
    if up > 1:
        # Zero insertion as a pad of a reshaped view: static shapes, no scatter.
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    if p0 < 0 or p1 < 0:
        hh, ww = x.shape[2], x.shape[3]
        x = x[:, :, max(-p0, 0) : hh - max(-p1, 0), max(-p0, 0) : ww - max(-p1, 0)]
    kh, kw = kernel.shape
    weight = kernel.flip(0, 1).to(x.dtype).reshape(1, 1, kh, kw).expand(c, 1, kh, kw)
    return F.conv2d(x, weight, stride=down, groups=c)


# --- the fused CPU path (module docstring): helpers --------------------------------------------


def _cpu_bf16_inference(x: Tensor) -> bool:
    """bfloat16 CPU inference outside ``torch.compile``: where the style path and the RGB skip run
    in float32 (see ``EqualLinear`` and ``ToRGB.forward_fused``)."""
    return (
        x.dtype == torch.bfloat16
        and x.device.type == "cpu"
        and not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
    )


def _use_fused(impl: str, x: Tensor) -> bool:
    """Whether a layer set to ``impl`` runs its fused form on ``x``.

    ``"auto"`` wants fused only where it is measured to pay and safe: on the CPU float32/float64
    or bfloat16 (1.7-2x the reference form with channels-last on a Zen 4 CPU); on CUDA
    float16/bfloat16/float32 (GPEN-512 fp16 in captured graphs on an H200, NCHW: 2.0x the
    reference form channels-last at batch 1, 2.1x at batch 16; docs/gpu.md); no autocast (the fused
    form writes into preallocated buffers in one dtype), no autograd (it uses ``out=`` and
    in-place ops), and not while ``torch.compile`` traces (inductor fuses the reference form's
    element-wise ops better than hand fusion, and the fused form's cached tensors and kernel
    checks would break the graph).
    """
    if impl != "auto":
        return impl == "fused"
    if torch.compiler.is_compiling() or torch.is_grad_enabled():
        return False
    kind = x.device.type
    if kind == "cpu":
        return x.dtype in (torch.float32, torch.float64, torch.bfloat16) and not torch.is_autocast_enabled("cpu")
    if kind == "cuda":
        return x.dtype in (torch.float16, torch.bfloat16, torch.float32) and not torch.is_autocast_enabled("cuda")
    return False


class _Memo:
    """Per-module cache of tensors derived from a parameter or buffer, for the fused path.

    An entry is valid while its source is the same tensor object (weak reference) at the same
    version counter, so ``load_state_dict`` (in-place ``copy_``), ``assign=True`` loads and
    ``.to()`` all invalidate it. Nothing is cached while autograd records (the cached value would
    hold no graph) or for inference tensors (they have no version counter). Copies and pickles
    start empty: the cache is derived state, never saved.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[weakref.ref, int, object, tuple]] = {}

    def get(self, name: str, src: Tensor, fn):
        try:
            version = src._version
        except RuntimeError:  # inference tensor: no version counter, so no safe key
            return fn()
        # Module.to() swaps a parameter's storage in place (same object, a fresh version
        # counter): the storage address, dtype and device are part of the key.
        where = (src.data_ptr(), src.dtype, src.device)
        hit = self._entries.get(name)
        if hit is not None and hit[0]() is src and hit[1] == version and hit[3] == where:
            return hit[2]
        value = fn()
        if not torch.is_grad_enabled():
            self._entries[name] = (weakref.ref(src), version, value, where)
        return value

    def __deepcopy__(self, memo) -> _Memo:
        return _Memo()

    def __getstate__(self) -> dict:
        return {"_entries": {}}


def _is_channels_last(x: Tensor) -> bool:
    """True for a 4-D tensor laid out NHWC (and not also NCHW-contiguous, as 1x1 maps are)."""
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def _empty_like_layout(ref: Tensor, shape: tuple[int, ...]) -> Tensor:
    """An uninitialised tensor of ``shape`` in ``ref``'s dtype, device and memory format."""
    fmt = torch.channels_last if _is_channels_last(ref) else torch.contiguous_format
    return torch.empty(shape, dtype=ref.dtype, device=ref.device, memory_format=fmt)


def _rank1_factors(kernel: Tensor) -> tuple[Tensor, Tensor] | None:
    """``(col, row)`` with ``kernel == outer(col, row)`` to float rounding, or None.

    Every released checkpoint holds ``outer(k, k)`` with k = [1,3,3,1] (dyadic, so the factors
    are exact); the ``_pk`` fixtures perturb the kernels to full rank, which must take the
    general 2-D path.
    """
    k = kernel.detach().to("cpu", torch.float64)
    total = k.sum()
    if k.dim() != 2 or total.abs() < 1e-12:
        return None
    col, row = k.sum(dim=1), k.sum(dim=0) / total
    # Within a few ulps of the buffer's own dtype: a float32 kernel that is rank 1 up to its
    # rounding runs separable in float32, but float64 keeps the exact 2-D kernel.
    eps = 4 * torch.finfo(kernel.dtype).eps if kernel.is_floating_point() else 0.0
    if not torch.allclose(torch.outer(col, row), k, rtol=eps, atol=eps * float(k.abs().max())):
        return None
    return col.to(kernel.device, kernel.dtype), row.to(kernel.device, kernel.dtype)


#: Run rank-1 blur kernels as two 1-D depthwise passes instead of one 4x4 pass. Off: on the
#: project's 2-core CPU (oneDNN depthwise convs) the 4x4 pass was faster in 4 of 5 side-by-side
#: runs (1.09-1.20x in the last), half the multiply-adds notwithstanding. Kept and tested as a
#: switch for ``bench/gpen_forward.py --forms fused fused_separable``.
SEPARABLE_BLUR = False

#: Channels-last batches modulate the weights (one conv per sample, see
#: ``ModulatedConv2d.weight_modulation_pays``) from this many input pixels up; below it a
#: batch-1 conv leaves the cores idle and one shared-weight conv over the batch wins.
NHWC_PER_SAMPLE_MIN_PIXELS = 128 * 128


def _blur_fused(x: Tensor, blur: Blur, bias: Tensor | None = None) -> Tensor:
    """``upfirdn2d(x, blur.kernel, pad=blur.pad) + bias`` (bias per channel, optional).

    The padding is the conv's own zero padding (no padded copy) and the bias rides on the last
    depthwise pass (no extra pass).
    """
    c = x.shape[1]
    p0, p1 = blur.pad
    if p0 != p1 or p0 < 0:  # not used by GPEN: keep the general op
        out = upfirdn2d(x, blur.kernel, pad=blur.pad)
        return out if bias is None else out.add_(bias.view(1, -1, 1, 1))
    kernel = blur.kernel.to(x.dtype)
    kh, kw = kernel.shape
    factors = None
    if SEPARABLE_BLUR:
        factors = blur._memo.get("factors", blur.kernel, lambda: _rank1_factors(blur.kernel))
    if factors is None:
        w = kernel.flip(0, 1).reshape(1, 1, kh, kw).expand(c, 1, kh, kw)
        return F.conv2d(x, w, bias, padding=p0, groups=c)
    col, row = (f.to(x.dtype) for f in factors)
    # True convolution: flip each 1-D factor, as the 2-D kernel is flipped above.
    x = F.conv2d(x, col.flip(0).reshape(1, 1, kh, 1).expand(c, 1, kh, 1), padding=(p0, 0), groups=c)
    return F.conv2d(x, row.flip(0).reshape(1, 1, 1, kw).expand(c, 1, 1, kw), bias, padding=(0, p0), groups=c)


def _upsample_fused(x: Tensor, up: Upsample, bias: Tensor | None = None) -> Tensor:
    """``upfirdn2d(x, up.kernel, up=f, pad=up.pad) + bias`` as one depthwise transposed conv.

    Zero insertion followed by a true convolution with K is a stride-f transposed conv whose
    weight is K itself (unflipped) with padding ``kh - 1 - pad0``: no zero-inserted copy, a
    quarter of the multiply-adds, exact for any kernel.
    """
    f = up.factor
    kernel = up.kernel.to(x.dtype)
    kh, kw = kernel.shape
    p0, p1 = up.pad
    padding, out_pad = kh - 1 - p0, f + p1 - p0 - 1
    if kh != kw or padding < 0 or not 0 <= out_pad < f:  # not GPEN's shapes: the general op
        out = upfirdn2d(x, up.kernel, up=f, pad=up.pad)
        return out if bias is None else out.add_(bias.view(1, -1, 1, 1))
    b, c, h, w = x.shape
    if x.is_contiguous():
        # NCHW: one single-channel transposed conv over the b·c maps. oneDNN's grouped (depthwise)
        # transposed conv runs ~6x slower on NCHW input (24 ms vs 3-4 ms for the [4,3,128,128]
        # RGB skip of GPEN-256 in float32).
        out = F.conv_transpose2d(x.reshape(b * c, 1, h, w), kernel.reshape(1, 1, kh, kw), stride=f,
                                 padding=padding, output_padding=out_pad)
        out = out.view(b, c, out.shape[2], out.shape[3])
        return out if bias is None else out.add_(bias.view(1, -1, 1, 1))
    wt = kernel.reshape(1, 1, kh, kw).expand(c, 1, kh, kw)
    return F.conv_transpose2d(x, wt, bias, stride=f, padding=padding, output_padding=out_pad, groups=c)


# --- layers (names match the official state dict) --------------------------------------------


class PixelNorm(nn.Module):
    """``x / sqrt(mean(x², features) + 1e-8)``; computed in float32 (the squares overflow fp16)."""

    def forward(self, x: Tensor) -> Tensor:
        xf = _at_least_fp32(x)
        return (xf * torch.rsqrt(xf.square().mean(dim=1, keepdim=True) + 1e-8)).to(x.dtype)


class Blur(nn.Module):
    """FIR blur, ``upfirdn2d(x, kernel, pad=pad)``; ``kernel`` is a persistent [4,4] buffer."""

    def __init__(self, pad: tuple[int, int], *, upsample_factor: int = 1) -> None:
        super().__init__()
        self.pad = pad
        self.upsample_factor = upsample_factor
        # Loaded from the checkpoint (the _pk fixtures perturb it); the default is what every
        # released checkpoint holds.
        self.register_buffer("kernel", _make_kernel(float(upsample_factor**2)))
        self._memo = _Memo()  # rank-1 factors of the kernel, for the fused path

    def default_kernel(self) -> Tensor:
        """The kernel every released checkpoint holds, on the CPU (for a checkpoint saved without it)."""
        with torch.device("cpu"):
            return _make_kernel(float(self.upsample_factor**2))

    #: ``"conv"``: the 4x4 FIR as one depthwise conv (``upfirdn2d``). ``"pool"``: for the
    #: binomial kernel every released checkpoint holds, ``outer(k, k)`` with k = [1,3,3,1] is
    #: three 2x2 box filters in a row, so the blur runs as three stride-1 ``avg_pool2d`` passes
    #: (zero padding counted, as upfirdn2d pads with zeros); exact in float64 (~1e-15). A GPU
    #: candidate: session 1's profile found PyTorch's depthwise kernel 29% of a GPEN-512 forward
    #: on an H200 (and slower still channels-last), while pooling is a plain bandwidth-bound
    #: kernel. Unmeasured on a GPU (``bench/runtime.py --forms pool_blur``), so "conv" stays the
    #: default; on the CPU oneDNN's depthwise conv is 3-20x faster than the pooling passes.
    #: Other kernels (the ``_pk`` fixtures) always take the conv. Set via
    #: ``FullGenerator.blur_impl``; the fused CPU form does not use it.
    blur_impl: BlurImpl = "conv"

    def forward(self, x: Tensor) -> Tensor:
        if self.blur_impl == "pool" and not torch.compiler.is_compiling():
            scale = self._memo.get("binomial", self.kernel, lambda: _binomial_scale(self.kernel))
            p0, p1 = self.pad
            if scale is not None and p0 == p1 and p0 in (1, 2):
                return _blur_pool(x, p0, scale)
        return upfirdn2d(x, self.kernel, pad=self.pad)


def _binomial_scale(kernel: Tensor) -> float | None:
    """``s`` where ``kernel == s · outer(k, k) / 64`` with k = [1,3,3,1] (float rounding), else None."""
    k = kernel.detach().to("cpu", torch.float64)
    if k.shape != (4, 4):
        return None
    s = float(k.sum())
    ref = _make_kernel(1.0).double() * s
    eps = 4 * torch.finfo(kernel.dtype).eps if kernel.is_floating_point() else 0.0
    return s if s > 0 and torch.allclose(k, ref, rtol=eps, atol=eps * abs(s)) else None


def _blur_pool(x: Tensor, pad: int, scale: float) -> Tensor:
    """The binomial 4x4 blur with ``pad`` (1 or 2) zeros per side, times ``scale``, as three 2x2
    box filters. Each ``avg_pool2d`` pads at most 1 per side; padding again after a pass is the
    same as padding up front, because the first pass's outputs beyond the input's reach are 0."""
    y = F.avg_pool2d(x, 2, stride=1, padding=1)
    y = F.avg_pool2d(y, 2, stride=1, padding=1 if pad == 2 else 0)
    if scale in (1.0, 2.0, 4.0):  # the last pass divides by 4 / scale: no extra multiply
        return F.avg_pool2d(y, 2, stride=1, divisor_override=int(4 / scale))
    return F.avg_pool2d(y, 2, stride=1) * scale


class Upsample(nn.Module):
    """2x FIR upsampling of the RGB skip: ``upfirdn2d(up=2, kernel=4·K, pad=(2, 1))``."""

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", _make_kernel(float(factor**2)))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def default_kernel(self) -> Tensor:
        """The kernel every released checkpoint holds, on the CPU (for a checkpoint saved without it)."""
        with torch.device("cpu"):
            return _make_kernel(float(self.factor**2))

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias)


class EqualConv2d(nn.Module):
    """Conv with the equalised-learning-rate factor ``1/sqrt(in·k²)`` applied at run time."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, *, stride: int = 1, padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(
            x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding
        )


class EqualLinear(nn.Module):
    """Linear layer with weight factor ``lr_mul/sqrt(in)`` and bias factor ``lr_mul``.

    With ``activation`` the bias goes through the fused leaky ReLU (as in GPEN), otherwise the
    layer is a plain affine map.
    """

    def __init__(
        self, in_dim: int, out_dim: int, *, bias_init: float = 0.0, lr_mul: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        w = torch.randn(out_dim, in_dim)
        # (built on the meta device to load a checkpoint: any op there imports torch._dynamo, ~3 s
        # of CPU and ~165 MiB at every start; the loaded weights replace these anyway)
        self.weight = nn.Parameter(w if w.is_meta else w / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation
        self._memo = _Memo()  # float32 scaled weight and bias, for bfloat16 CPU inference

    def forward(self, x: Tensor) -> Tensor:
        if _cpu_bf16_inference(x):
            return self._forward_fp32(x).to(x.dtype)
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)

    def _forward_fp32(self, x: Tensor) -> Tensor:
        # oneDNN has no fast path for these skinny bfloat16 matmuls ([B, 512] x [512, 512]: 8-16 ms
        # each on the project's Zen 4 CPU, a fifth of a bf16 GPEN-256 forward over the ~40 style
        # layers, against well under a millisecond in float32), and the style path is a rounding
        # error of the FLOPs: run it in float32 from cached float32 weights.
        w = self._memo.get("w32", self.weight, lambda: self.weight.float() * self.scale)
        b = self._memo.get("b32", self.bias, lambda: self.bias.float() * self.lr_mul)
        if self.activation:
            return fused_leaky_relu(F.linear(x.float(), w), b)
        return F.linear(x.float(), w, b)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated conv in the batched form (see module docstring).

    For sample b with style s_b (from ``modulation``), the official per-sample weight is
    ``W''[o,i] = d[b,o] · scale · W[o,i] · s_b[i]`` with ``d[b,o] = (Σ_i,kh,kw (scale·W·s_b)² +
    1e-8)^-½``. Since s_b scales input channels and d scales output channels, the conv with W''
    equals ``d ⊙ conv(x ⊙ (scale·s_b), W)``: one conv with the shared weight for the whole batch.
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, *, demodulate: bool = True,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        self.in_channel = in_ch
        self.out_channel = out_ch
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.padding = kernel_size // 2
        # Held as a 4-D [out, in, k, k] parameter so that `model.to(memory_format=channels_last)`
        # works (5-D tensors cannot be channels_last); the state dict keeps the official
        # [1, out, in, k, k] shape (see _save_to_state_dict / _load_from_state_dict).
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        if upsample:
            # Blur after the stride-2 transposed conv: p = 4 - 2 - (k - 1).
            p = 4 - 2 - (kernel_size - 1)
            self.blur = Blur(((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self._memo = _Memo()  # Σ_kh,kw W², for the fused path

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        key = prefix + "weight"
        destination[key] = destination[key].unsqueeze(0)  # same key, same position

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "weight"
        w = state_dict.get(key)
        if w is not None and w.dim() == 5 and w.shape[0] == 1:
            state_dict[key] = w[0]  # load_state_dict passes us its own copy of the dict
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        weight = self.weight  # [out, in, k, k]
        s = self.modulation(style) * self.scale  # [B, in]
        x = x * s.to(x.dtype)[:, :, None, None]
        if self.upsample:
            # conv_transpose2d wants [in, out, k, k]; stride 2, padding 0 -> (2H+1)x(2W+1).
            out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2, padding=0)
            out = self.blur(out)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # Σ_i,kh,kw (W·s)² = Σ_i s_i² · Σ_kh,kw W[o,i]², in at least fp32. Broadcast-multiply
            # and sum rather than a matmul, so that autocast cannot push it back to fp16
            # (the [B, out, in] temporary is a few MB even for GPEN-2048 at batch 16).
            w_sq = _at_least_fp32(weight).square().sum(dim=(2, 3))  # [out, in]
            s_sq = _at_least_fp32(s).square()  # [B, in]
            demod = torch.rsqrt((s_sq[:, None, :] * w_sq[None]).sum(dim=2) + 1e-8)  # [B, out]
            out = out * demod.to(out.dtype)[:, :, None, None]
        return out

    def weight_modulation_pays(self, x: Tensor) -> bool:
        """Whether the fused form modulates the weight rather than the activations for ``x``.

        Per sample, a modulated weight costs one pass over ``out·in·k²`` values and saves the
        ``x·s`` pass over the input plus the demodulation/bias pass over the output: it pays at
        high resolution (few channels, many pixels) and not at 4x4-32x32 (512 channels).
        Channels-last input runs the per-sample weights as one plain conv per sample (oneDNN
        runs a grouped conv 2-3x slower in NHWC than one shared-weight conv over the batch),
        and only for a batch and from ``NHWC_PER_SAMPLE_MIN_PIXELS`` input pixels up. Below that
        a batch-1 conv leaves the cores idle; and at batch 1 the saved passes are a quarter the
        size, less than what a fresh weight per call costs (oneDNN reorders it each time: bf16
        GPEN-256 at batch 1 ran 0.8x with it).
        """
        b, cin, h, w = x.shape
        if _is_channels_last(x) and (b == 1 or h * w < NHWC_PER_SAMPLE_MIN_PIXELS):
            return False
        ho, wo = (2 * h + 1, 2 * w + 1) if self.upsample else (h, w)
        return self.out_channel * cin * self.kernel_size**2 <= cin * h * w + self.out_channel * ho * wo

    def forward_fused(
        self, x: Tensor, style: Tensor, *, gain: float = 1.0, bias: Tensor | None = None
    ) -> Tensor:
        """``gain · self(x, style) + bias`` (``bias``: ``[out]`` or None) in the fused CPU form.

        Either the per-sample weight ``gain·d·scale·W·s`` runs as one grouped conv over the
        batch (bias inside the conv: no element-wise pass at all), or, where the weight is the
        larger tensor, ``x·s`` feeds the shared weight and one in-place ``addcmul`` applies
        ``gain·d`` and the bias. See :meth:`weight_modulation_pays`.
        """
        b, cin, h, w = x.shape
        cout, k = self.out_channel, self.kernel_size
        s = self.modulation(style) * self.scale  # [B, in]
        d = None
        if self.demodulate:
            w_sq = self._memo.get(
                "w_sq", self.weight, lambda: _at_least_fp32(self.weight).square().sum(dim=(2, 3))
            )  # [out, in]
            # No autocast on this path (see _use_fused), so a matmul is safe in fp32.
            d = (torch.rsqrt(_at_least_fp32(s).square() @ w_sq.T + 1e-8) * gain).to(x.dtype)
        if self.weight_modulation_pays(x):
            # [B, out, in]: output scale x input scale of every weight slice.
            sd = (s * gain)[:, None, :] if d is None else d[:, :, None] * s[:, None, :]
            if b > 1 and _is_channels_last(x):
                return self._per_sample_convs(x, sd, bias)
            xg = x.reshape(1, b * cin, h, w)  # a view for NCHW input (and for any batch-1 input)
            if self.upsample:
                # conv_transpose2d wants [in, out, k, k] per group: write it in that layout.
                wm = x.new_empty((b, cin, cout, k, k))
                torch.mul(self.weight.transpose(0, 1)[None], sd.transpose(1, 2)[..., None, None], out=wm)
                out = F.conv_transpose2d(xg, wm.view(b * cin, cout, k, k), stride=2, groups=b)
                return _blur_fused(out.view(b, cout, 2 * h + 1, 2 * w + 1), self.blur, bias)
            wm = x.new_empty((b, cout, cin, k, k))
            torch.mul(self.weight[None], sd[..., None, None], out=wm)
            bg = bias.repeat(b) if bias is not None and b > 1 else bias
            out = F.conv2d(xg, wm.view(b * cout, cin, k, k), bg, padding=self.padding, groups=b)
            return out.view(b, cout, h, w)
        if d is None:
            s = s * gain
        xs = x * s.to(x.dtype)[:, :, None, None]
        if self.upsample:
            # [in, out, k, k] made contiguous once: oneDNN would copy the transposed view per call
            wt = self._memo.get("wt", self.weight, lambda: self.weight.transpose(0, 1).contiguous())
            out = F.conv_transpose2d(xs, wt, stride=2, padding=0)
            out = _blur_fused(out, self.blur)
        else:
            out = F.conv2d(xs, self.weight, padding=self.padding)
        if d is not None and bias is not None:
            return torch.addcmul(bias.view(1, -1, 1, 1), out, d[:, :, None, None], out=out)
        if d is not None:
            return out.mul_(d[:, :, None, None])
        return out if bias is None else out.add_(bias.view(1, -1, 1, 1))


    def _per_sample_convs(self, x: Tensor, sd: Tensor, bias: Tensor | None) -> Tensor:
        """The weight-modulation branch for a channels-last batch: one plain conv per sample
        (its own modulated weight ``sd[i]·W``), the outputs concatenated along the batch."""
        b = x.shape[0]
        if self.upsample:
            wm = torch.mul(self.weight.transpose(0, 1)[None], sd.transpose(1, 2)[..., None, None])
            outs = [F.conv_transpose2d(x[i : i + 1], wm[i], stride=2) for i in range(b)]
            return _blur_fused(torch.cat(outs), self.blur, bias)
        wm = torch.mul(self.weight[None], sd[..., None, None])
        outs = [F.conv2d(x[i : i + 1], wm[i], bias, padding=self.padding) for i in range(b)]
        return torch.cat(outs)


class NoiseInjection(nn.Module):
    """GPEN's injection with ``isconcat=True``: ``cat([x, weight · feature], dim=1)``."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, feature: Tensor) -> Tensor:
        return torch.cat((x, self.weight * feature), dim=1)


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """Modulated conv -> encoder-feature injection (doubles channels) -> fused leaky ReLU."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, *, upsample: bool = False
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(2 * out_ch)
        self.impl: Impl = "auto"  # set by FullGenerator.impl

    def forward(self, x: Tensor, style: Tensor, feature: Tensor) -> Tensor:
        if _use_fused(self.impl, x):
            return self.forward_fused(x, style, feature)
        return self.activate(self.noise(self.conv(x, style), feature))

    def forward_fused(self, x: Tensor, style: Tensor, feature: Tensor) -> Tensor:
        """Same output; each half of the concatenation is written once, activated in place.

        ``sqrt2·lrelu(y + b) = lrelu(sqrt2·y + sqrt2·b)``, so the gain and bias of the fused
        leaky ReLU fold into the conv (conv half) and into one ``addcmul`` (injection half).
        """
        c = self.conv.out_channel
        bias = self.activate.bias.to(x.dtype) * _SQRT2
        y = self.conv.forward_fused(x, style, gain=_SQRT2, bias=bias[:c])
        b, _, h, w = y.shape
        out = _empty_like_layout(y, (b, 2 * c, h, w))
        torch.ops.aten.leaky_relu.out(y, _SLOPE, out=out[:, :c])
        half = out[:, c:]
        noise_gain = self.noise.weight.to(x.dtype) * _SQRT2
        torch.addcmul(bias[c:].view(1, -1, 1, 1), feature, noise_gain, out=half)
        F.leaky_relu(half, _SLOPE, inplace=True)
        return out


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation + bias, plus the 2x-upsampled previous skip."""

    def __init__(self, in_ch: int, style_dim: int, *, upsample: bool = True) -> None:
        super().__init__()
        # Registration order fixes the state-dict order: bias, upsample.kernel, conv.*.
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = Upsample(2)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.impl: Impl = "auto"  # set by FullGenerator.impl

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        if _use_fused(self.impl, x):
            return self.forward_fused(x, style, skip)
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out

    def forward_fused(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        """Same output: the bias rides on the skip's upsampling conv, and the modulated 1x1
        conv (a [3, in] weight per sample) accumulates onto it as one batched matmul.

        With bfloat16 activations the 3-channel RGB skip is kept in float32 (and so is the
        model's output): it is tiny, it sums every scale's contribution, and oneDNN has no fast
        bfloat16 path for its depthwise upsampling (35 ms for a 32x32 map vs well under 1 ms).
        """
        b, cin, h, w = x.shape
        acc_dtype = torch.float32 if _cpu_bf16_inference(x) else x.dtype
        bias = self.bias.to(acc_dtype).view(3)
        if skip is None:
            acc = bias.view(1, 3, 1, 1).expand(b, 3, h, w).contiguous()
        else:
            acc = _upsample_fused(skip.to(acc_dtype), self.upsample, bias)
        s = self.conv.modulation(style) * self.conv.scale  # [B, in]
        if _is_channels_last(x):
            # NHWC is [B, h·w, in] in memory: the per-sample [3, in] weight is one batched matmul
            # that reads x once (no x·s pass over the 64-channel full-resolution map).
            wm = (self.conv.weight.view(1, 3, cin).to(s.dtype) * s[:, None, :]).to(x.dtype)
            y = torch.bmm(x.permute(0, 2, 3, 1).reshape(b, h * w, cin), wm.transpose(1, 2))
            return acc.add_(y.view(b, h, w, 3).permute(0, 3, 1, 2))
        if acc.dtype != x.dtype or not (x.is_contiguous() and acc.is_contiguous()):
            return acc.add_(self.conv(x, style))  # bfloat16 NCHW: the plain conv
        wm = self.conv.weight.to(x.dtype).view(1, 3, cin) * s[:, None, :]  # [B, 3, in]
        acc.view(b, 3, h * w).baddbmm_(wm, x.view(b, cin, h * w))
        return acc


class _EncoderBlock(nn.Sequential):
    """``[Blur,] EqualConv2d, FusedLeakyReLU`` (state-dict names ``ecdN.0.{0,1,2}``), with a fused
    form: ``sqrt2`` and the activation bias fold into the conv, the activation runs in place."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__(*layers)
        self.impl: Impl = "auto"  # set by FullGenerator.impl

    def forward(self, x: Tensor) -> Tensor:
        if not _use_fused(self.impl, x):
            return super().forward(x)
        *blur, conv, act = self
        if blur:
            x = _blur_fused(x, blur[0])
        bias = act.bias.to(x.dtype) if conv.bias is None else conv.bias.to(x.dtype) + act.bias.to(x.dtype)
        y = F.conv2d(
            x, conv.weight * (conv.scale * _SQRT2), bias * _SQRT2, stride=conv.stride, padding=conv.padding
        )
        return F.leaky_relu(y, _SLOPE, inplace=True)


class Generator(nn.Module):
    """Synthesis network + mapping network (``generator.*`` in the state dict)."""

    def __init__(self, config: GPENConfig) -> None:
        super().__init__()
        ch = config.channels
        d = config.style_dim
        self.style = nn.Sequential(
            PixelNorm(),
            *(
                EqualLinear(d, d, lr_mul=config.lr_mlp, activation=True)
                for _ in range(config.n_mlp)
            ),
        )
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, d)
        self.to_rgb1 = ToRGB(2 * ch[4], d, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = ch[4]
        for i in range(3, config.log_size + 1):
            out_ch = ch[2**i]
            self.convs.append(StyledConv(2 * in_ch, out_ch, 3, d, upsample=True))
            self.convs.append(StyledConv(2 * out_ch, out_ch, 3, d))
            self.to_rgbs.append(ToRGB(2 * out_ch, d))
            in_ch = out_ch

    def forward(self, z: Tensor, features: list[Tensor]) -> Tensor:
        """``features`` are the encoder outputs from 4x4 up to full resolution (one per level)."""
        w = self.style(z)
        h = self.conv1(self.input(z.shape[0]).to(z.dtype), w, features[0])
        skip = self.to_rgb1(h, w)
        for j, to_rgb in enumerate(self.to_rgbs):
            # Both convs of a level get the same encoder feature (each with its own weight).
            h = self.convs[2 * j](h, w, features[j + 1])
            h = self.convs[2 * j + 1](h, w, features[j + 1])
            skip = to_rgb(h, w, skip)
        return skip


class FullGenerator(nn.Module):
    """GPEN's U-shaped generator: encoder -> latent -> StyleGAN2 decoder fed with encoder features.

    ``forward(x)``: ``x`` is ``[B, 3, S, S]`` RGB in [-1, 1] (float32/16/bfloat16, any memory
    format); returns ``[B, 3, S, S]`` in roughly [-1, 1] — **not clamped** (the official model
    does not clamp either; callers clamp after denormalising) — in the input's dtype, except that
    bfloat16 CPU inference returns float32 (its RGB skip is kept in float32, see
    ``ToRGB.forward_fused``). Samples in a batch are independent.

    ``impl`` (keyword-only, settable later as ``model.impl``): ``"auto"`` (default) runs the
    fused CPU form for float32/float64/bfloat16 CPU inference without autocast or compile
    tracing and the reference form elsewhere (GPU, fp16, autocast, compile); ``"reference"`` / ``"fused"`` force one
    (see the module docstring). ``"fused"`` is for inference only: it writes into buffers with
    ``out=`` and in place, which autograd refuses.
    """

    def __init__(self, config: GPENConfig, *, impl: Impl = "auto", blur_impl: BlurImpl = "conv") -> None:
        super().__init__()
        if not isinstance(config, GPENConfig):
            raise InvalidInputError(f"config must be a GPENConfig, got {type(config).__name__}")
        self.config = config
        self.size = config.size
        ch = config.channels
        # `generator` first: the official state dict lists generator.*, then ecd*, then final_linear.
        self.generator = Generator(config)
        self.n_encoders = config.log_size - 1  # ecd0 … ecd{L-2}
        self.add_module(
            "ecd0",
            nn.Sequential(
                _EncoderBlock(EqualConv2d(3, ch[config.size], 1, bias=False),
                              FusedLeakyReLU(ch[config.size]))
            ),
        )
        for i in range(1, self.n_encoders):
            r = config.size >> i
            self.add_module(
                f"ecd{i}",
                nn.Sequential(
                    _EncoderBlock(
                        Blur((2, 2)),
                        EqualConv2d(ch[2 * r], ch[r], 3, stride=2, padding=0, bias=False),
                        FusedLeakyReLU(ch[r]),
                    )
                ),
            )
        self.final_linear = nn.Sequential(
            EqualLinear(16 * ch[4], config.style_dim, activation=True)
        )
        self.impl = impl
        self.blur_impl = blur_impl

    @property
    def blur_impl(self) -> BlurImpl:
        """How the reference form runs the 4x4 FIR blurs: ``"conv"`` (default) or ``"pool"``
        (see ``Blur.blur_impl``; a GPU candidate, unmeasured there)."""
        return self._blur_impl

    @blur_impl.setter
    def blur_impl(self, value: BlurImpl) -> None:
        self._blur_impl = self._set_on_layers("blur_impl", value, BlurImpl, (Blur,))

    @property
    def impl(self) -> Impl:
        """Forward implementation: ``"auto"``, ``"reference"`` or ``"fused"`` (class docstring)."""
        return self._impl

    @impl.setter
    def impl(self, value: Impl) -> None:
        self._impl = self._set_on_layers("impl", value, Impl, (StyledConv, ToRGB, _EncoderBlock))

    def _set_on_layers(self, name: str, value: str, choices, layer_types: tuple) -> str:
        """Check ``value`` against the ``Literal`` ``choices`` and set attribute ``name`` on every
        layer of ``layer_types``; returns ``value``."""
        allowed = get_args(choices)
        if not isinstance(value, str) or value not in allowed:
            raise InvalidInputError(
                f"{name}={value!r} is not allowed; use one of {', '.join(repr(a) for a in allowed)}"
            )
        for m in self.modules():
            if isinstance(m, layer_types):
                setattr(m, name, value)
        return value

    def forward(self, x: Tensor) -> Tensor:
        features = []
        h = x
        for i in range(self.n_encoders):
            h = getattr(self, f"ecd{i}")(h)
            features.append(h)
        # flatten(1) is in logical NCHW order whatever the memory format (GPEN flattens NCHW).
        z = self.final_linear(h.flatten(1))
        return self.generator(z, features[::-1])

    def extra_repr(self) -> str:
        return repr(self.config)


def random_generator(
    config: GPENConfig,
    seed: int = 0,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> FullGenerator:
    """A FullGenerator with deterministic random weights, for tests and benchmarks.

    Same ``seed`` and ``config`` give the same weights on every machine (drawn on the CPU with a
    private ``torch.Generator``; the global RNG is untouched). Weights follow GPEN's
    initialisation (unit-normal equalised weights, modulation bias 1) with small random biases
    and non-zero injection weights, so the output depends on the input; the ToRGB weights are
    scaled down so the output stays roughly within [-1, 1] (std ~0.3-0.5). Returned in eval mode
    with ``requires_grad`` off.
    """
    gen = torch.Generator().manual_seed(int(seed))
    with torch.device("meta"):
        model = FullGenerator(config)
    state = {}
    for name, ref in model.state_dict().items():
        shape = ref.shape
        if name.endswith(".kernel"):
            value = _make_kernel(1.0 if name.startswith("ecd") else 4.0)
        elif name.endswith("noise.weight"):
            # Random sign, magnitude in [0.9, 3]: large enough that the output visibly depends
            # on the input (the official init of 0 would make the output input-independent).
            value = (torch.rand(shape, generator=gen) * 2.1 + 0.9) * (
                1.0 if torch.rand((), generator=gen) > 0.5 else -1.0
            )
        elif name.endswith("modulation.bias"):
            value = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith("bias"):
            value = 0.1 * torch.randn(shape, generator=gen)
        elif name.startswith("generator.style.") or name.startswith("final_linear."):
            # EqualLinear stores weight / lr_mul.
            lr_mul = config.lr_mlp if name.startswith("generator.style.") else 1.0
            value = torch.randn(shape, generator=gen) / lr_mul
        elif ".to_rgb" in name and name.endswith("conv.weight"):
            # No demodulation in ToRGB and one contribution per level: keep each small.
            value = 0.25 * torch.randn(shape, generator=gen) / math.sqrt(config.log_size - 1)
        else:
            value = torch.randn(shape, generator=gen)
        state[name] = value.to(torch.float32)
    model.load_state_dict(state, strict=True, assign=True)
    model = model.to(device=device, dtype=dtype)
    model.eval().requires_grad_(False)
    return model
