"""Choosing the compute device: ``"auto"`` prefers CUDA, explicit requests never fall back."""
from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

import torch

from stream_gpen.errors import DeviceError, InvalidInputError

logger = logging.getLogger(__name__)

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
ALLOWED_DEVICES = '"auto", "cpu", "cuda" or "cuda:N"'
#: the hint of a device not understood (errors are one line plus a hint: docs/reference.md's exit codes)
_DEVICE_HINT = ("--device auto (device='auto' in Python) runs on CUDA when torch sees a GPU, else on the CPU; "
                "cuda:N picks one GPU (numbered from 0)")


def select_device(device: str | torch.device = "auto") -> tuple[torch.device, str | None]:
    """Resolve a device request to a ``torch.device``.

    Returns ``(device, fallback)`` where ``fallback`` is a human-readable note when ``"auto"``
    had to settle for the CPU (``None`` otherwise), so the caller can report it.

    ``"auto"`` picks ``cuda:0`` when torch sees a CUDA device, else the CPU. An explicit
    ``"cuda"``/``"cuda:N"`` that is not available raises :class:`DeviceError` instead of
    silently running 100x slower on the CPU.
    """
    if isinstance(device, torch.device):
        text = str(device)
    elif isinstance(device, str):
        text = device.strip().lower()
    else:
        raise InvalidInputError(
            f"device must be a string or torch.device, got {type(device).__name__}; "
            f"use {ALLOWED_DEVICES}", hint=_DEVICE_HINT
        )
    if text == "cpu:0":  # (torch's own name for torch.device("cpu", 0))
        text = "cpu"
    # (a torch.device by its name: "device device(type='cuda') requested")
    shown = repr(str(device)) if isinstance(device, torch.device) else repr(device)
    if not _DEVICE_RE.match(text):
        raise InvalidInputError(f"unknown device {shown}; use {ALLOWED_DEVICES}", hint=_DEVICE_HINT)
    if text == "cpu":
        return torch.device("cpu"), None
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device()), None
        return torch.device("cpu"), "device 'auto': torch sees no CUDA device, running on the CPU"
    # Explicit CUDA request.
    if not torch.cuda.is_available():
        raise DeviceError(
            f"device {shown} requested but torch sees no CUDA device "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})",
            hint="use --device cpu or auto (device='cpu' in Python), or install a CUDA build of torch",
        )
    index = int(text.split(":")[1]) if ":" in text else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceError(
            f"device {shown} requested but only {count} CUDA device(s) are visible "
            f"(valid: {', '.join(f'cuda:{i}' for i in range(count))})",
            hint="CUDA_VISIBLE_DEVICES, when set, hides the others and numbers the rest from 0; "
                 "--device cuda (device='cuda' in Python) takes the first",
        )
    return torch.device("cuda", index), None


# CPU features with bf16 dot-product instructions, best first. With them oneDNN runs bf16
# convolutions at about twice the fp32 rate (measured on the project's Zen 4 CPU: 2.3-2.8x per
# conv, 1.8-2x for a whole GPEN-256 forward, bench/runtime.py); without them it converts to fp32
# and computes there, which is slower than plain fp32.
_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_bf16_feature() -> str | None:
    """The CPU feature that makes bf16 convolutions fast here (``"amx_bf16"``, ``"avx512_bf16"``), or None.

    Read from ``/proc/cpuinfo`` on Linux, elsewhere (Windows, macOS) from torch's own CPU probe
    (cpuinfo), and only when torch's oneDNN backend is available and reports bf16 support.
    """
    try:
        if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
            return None
    except (AttributeError, RuntimeError):
        return None
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return _bf16_feature_from_torch()  # (no /proc: a Zen 4 under Windows kept fp32, "no native bf16")
    return _bf16_flag_in(text)


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup() -> float:
    """How much faster a bf16 convolution runs than an fp32 one on this CPU (channels-last, a 3x3
    128-channel layer at 64x64, as GPEN's are), measured once per process (~0.2 s). The bf16
    instructions alone do not say it: on a Zen 4 bf16 ran GPEN 1.8-2x fp32, on an Intel Xeon
    with avx512_bf16 (no AMX) 0.7x (measured: 0.131 vs 0.091 s a face at GPEN-256)."""
    import time

    import torch.nn.functional as F

    def run(dtype) -> float:
        x = torch.randn(1, 128, 64, 64).to(dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(128, 128, 3, 3).to(dtype).contiguous(memory_format=torch.channels_last)
        F.conv2d(x, w, padding=1)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            F.conv2d(x, w, padding=1)
            best = min(best, time.perf_counter() - t0)
        return best

    try:
        with torch.no_grad():
            fp32, bf16 = min(run(torch.float32) for _ in range(2)), min(run(torch.bfloat16) for _ in range(2))
    except (RuntimeError, TypeError):
        return 0.0
    return fp32 / bf16 if bf16 > 0 else 0.0


def _bf16_feature_from_torch() -> str | None:
    """The bf16 feature as torch's cpuinfo probe sees it (private helpers of ``torch.cpu``:
    None where this torch lacks them)."""
    probes = (("amx_bf16", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported"))
    for flag, name in probes:
        probe = getattr(torch.cpu, name, None)
        try:
            if probe is not None and probe():
                return flag
        except (RuntimeError, AttributeError):
            continue
    return None


def _bf16_flag_in(cpuinfo: str) -> str | None:
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return next((f for f in _BF16_FLAGS if f in flags), None)
    return None
