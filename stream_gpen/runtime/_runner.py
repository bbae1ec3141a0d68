"""FaceRunner: fixed-shape face batches through GPEN, replayed from CUDA graphs on the GPU.

The runner owns the model's execution: device placement, precision, memory format, batch
buckets, static buffers and captured graphs. Pre- and post-processing (FACTS.md section 6) are
fused into the same step so uint8 crops go in and uint8 crops come out, all on the device.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn

from stream_gpen.errors import InvalidInputError
from stream_gpen.runtime._cpu_memory import freed_memory_kept, keep_freed_memory
from stream_gpen.runtime._device import cpu_bf16_feature, cpu_bf16_speedup, select_device
from stream_gpen.runtime._plan import Chunk, exact_chunks, plan_batches, validate_buckets

logger = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "fp16", "bf16"]
Amp = Literal["cast", "autocast"]
ChannelsLast = Literal["auto"] | bool  # type: ignore[valid-type]
CpuMemory = Literal["keep", "system"]

DEFAULT_BUCKETS: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

# CPU defaults, from bench/runtime.py on the project's 2-core Zen 4 CPU (GPEN-BFR-256 config,
# docs/benchmarks.md "Runtime on the CPU"):
# * precision: bf16 where the CPU has bf16 dot-product instructions (avx512_bf16 / amx_bf16, see
#   cpu_bf16_feature): with channels-last it is 1.8-2x fp32 per face, and its uint8 output is
#   51-53 dB PSNR from fp32's (max 2 grey levels), above the 45 dB bar fp16 meets on the GPU. It
#   fails fp32's 1e-4 float tolerance, so precision="fp32" stays one option away. Without those
#   instructions bf16 is emulated and slower, so fp32 stays the default there; with them it is
#   chosen only where a bf16 convolution measures faster (cpu_bf16_speedup, _BF16_PAYS): an Intel
#   Xeon with avx512_bf16 and no AMX ran GPEN-256 bf16 at 0.7x fp32 (session 21).
# * torch.compile is exact (|d| ~2e-6) but, on a quiet machine against the fused eager form, only
#   1.17x (fp32) / 1.20x (fp32 channels-last) at batch 4, and nothing for bf16 (2.22x vs bf16
#   eager's 2.15x); its first call per batch shape compiles for seconds to minutes: opt-in.
#   (Session 1's 2.3-2.6x was against the slower reference form on a loaded machine.)
# * channels-last pays with bf16 (oneDNN's bf16 convs want NHWC: 1.8x vs 1.5x NCHW), with
#   compile (1.47x vs 1.15x at batch 1), and since session 4 in fp32 eager: the fused form's
#   channels-last path (per-sample weights at high resolution, the ToRGB as a batched matmul)
#   ran 1.09-1.20x the fused NCHW form, and with oneDNN capped to AVX2 or to AVX-512 without
#   bf16 (ONEDNN_MAX_CPU_ISA, standing in for the CPUs that run fp32 by default) 1.08-1.21x.
#: bf16 is the CPU's default only where its convolutions measure at least this much faster than
#: fp32's (cpu_bf16_speedup): the bf16 instructions alone did not say it (an Intel Xeon with
#: avx512_bf16 ran GPEN-256 in bf16 at 0.7x fp32's speed, session 21)
_BF16_PAYS = 1.2
CPU_CHANNELS_LAST_WITH_COMPILE = True
CPU_CHANNELS_LAST_BF16 = True
CPU_CHANNELS_LAST_EAGER = True
# CUDA, measured on an H200 in session 16 (bench/runtime.py --forms, GPEN-512 fp16, captured
# graphs; faces/s at buckets 1 | 4 | 16): reference form channels-last 115 | 140 | 150, NCHW
# 168 | 237 | 264; fused form channels-last 134 | 164 | 174, NCHW 234 | 290 | 316 (5.4 GB at 16
# against 8.1). NHWC loses twice: PyTorch's depthwise kernel (the FIR blur) is slow in it, and
# the fused form's per-sample weights run as one grouped conv only in NCHW. torch.compile was
# measured channels-last only (158 | - | 203).
CUDA_CHANNELS_LAST = False
CUDA_CHANNELS_LAST_WITH_COMPILE = True


class Fallback(str):
    """One thing that fell back, and why: truthy, prints its reason, compares as the string.

    ``what`` names the feature ("cuda_graphs", "compile", "precision", "device", "cpu_memory"), ``reason``
    says what happened and what runs instead.
    """

    what: str
    reason: str

    def __new__(cls, what: str, reason: str) -> Fallback:
        obj = super().__new__(cls, f"{what}: {reason}")
        obj.what = what
        obj.reason = reason
        return obj


@dataclass
class _Graph:
    """One captured bucket: the graph and the static buffers it reads and writes."""

    bucket: int
    graph: torch.cuda.CUDAGraph
    static_in: torch.Tensor  # [bucket,3,S,S] uint8, the graph's only input
    static_out: torch.Tensor  # [bucket,3,S,S] uint8, the graph's output
    # The model's float output inside the graph's pool (kept alive so replays refresh it): lets
    # tests compare replay with eager before the uint8 truncation hides small differences.
    static_float: torch.Tensor


#: device types whose autocast a host may have turned on around a call into the library
_AUTOCAST_TYPES = ("cpu", "cuda", "xpu", "mps")


def no_autocast() -> contextlib.AbstractContextManager:
    """Turn off any autocast the caller has on (a host's ``torch.autocast`` block): the library's
    detector, alignment and fp32 models must compute in the dtypes they were calibrated in (bf16
    landmarks are rounded by pixels). The runner's own fp16/bf16 autocast is entered inside."""
    stack = contextlib.ExitStack()
    for dev in _AUTOCAST_TYPES:
        try:
            on = torch.is_autocast_enabled(dev)
        except (RuntimeError, TypeError):  # a device type this torch build does not know
            continue
        if on:
            stack.enter_context(torch.autocast(dev, enabled=False))
    return stack


def _to_255(y: torch.Tensor) -> torch.Tensor:
    """The model's [-1,1] output on the 0..255 scale, in GPEN's order (FACTS.md section 6), float32;
    its truncation is the uint8 output."""
    return y.float().mul(0.5).add_(0.5).clamp_(0.0, 1.0).mul_(255.0)


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    # `True == 1` in Python: compare types too so that e.g. compile=1 is rejected.
    if not any(value == a and type(value) is type(a) for a in allowed):
        raise InvalidInputError(
            f"{name}={value!r} is not allowed; use one of {', '.join(repr(a) for a in allowed)}"
        )


class FaceRunner:
    """Run a face-restoration generator on ``[n,3,S,S]`` uint8 RGB crops, any ``n``.

    ``runner(crops)`` returns restored crops of the same shape, in the same order, as uint8 on
    ``runner.device``. Requests are cut into chunks padded up to a bucket size; on CUDA each
    bucket has static input/output buffers and one captured CUDA graph that is replayed, so a
    batch costs one graph launch and no allocations.

    The runner takes ownership of ``model``: it is put in eval mode with gradients off. For fp32
    (and ``amp="autocast"``) it is moved to the device and may be converted to channels-last; for
    fp16/bf16 with ``amp="cast"`` a low-precision copy goes to the device and ``model`` stays
    where it is, kept as the fp32 master for a precision fallback.

    Knobs (keyword-only, validated here):

    * ``size`` — crop side S; must match the model.
    * ``device`` — ``"auto"`` (CUDA if torch sees one, else CPU; the CPU choice is reported in
      ``fallbacks``), ``"cpu"``, ``"cuda"``, ``"cuda:N"``. Explicit CUDA never falls back.
    * ``precision`` — ``"auto"`` is fp16 on CUDA (tensor cores, ~2-4x fp32); on the CPU it is
      bf16 where the CPU has bf16 instructions (avx512_bf16/amx_bf16) and its bf16 convolutions
      measure at least 1.2x fp32's speed (once per process, ~0.1 s; Zen 4: ~1.8-2x, uint8 output
      ~53 dB PSNR from fp32's; an Intel Xeon without AMX: 0.7x, so fp32) and fp32 elsewhere;
      ``precision_reason`` says which and why.
      fp16/bf16 run under autocast, which keeps reductions (the demodulation and pixel-norm sums of
      squares, ``rsqrt``) in fp32 where fp16 would overflow. bf16 cannot overflow but is ~8x
      coarser than fp16 (measured on the CPU: uint8 output 53-55 dB PSNR from fp32's for the
      GPEN-256/512 configs with random weights). If the first reduced-precision output is not
      finite the runner drops to fp32 and reports it.
    * ``amp`` — how fp16/bf16 is applied. ``"cast"``: a low-precision copy of the model runs
      with low-precision weights and activations (fewest kernels and bytes; relies on the model
      keeping its overflow-prone reductions in fp32, which ``FullGenerator`` does). The fp32
      model is kept for a fallback. ``"autocast"``: weights stay fp32 and ``torch.autocast``
      casts per op (reductions in fp32 for *any* model; costs a weight cast per call and fp32
      element-wise traffic).
    * ``buckets`` — batch shapes to use. More buckets mean less padding but more graphs (memory,
      capture time); fewer mean more wasted work on padded rows.
    * ``max_batch`` — drop buckets above this (caps device memory; default: the largest bucket).
    * ``cuda_graphs`` — replay captured graphs (removes ~1000 kernel launches per batch; matters
      most for small batches). Off: eager mode, exact batch sizes, no padding.
    * ``compile`` — ``torch.compile`` the model (fuses the element-wise ops around each conv);
      costs compile time per bucket on first use (seconds to minutes per shape on a 2-core CPU,
      where it then runs GPEN-256 fp32 1.2x faster than the fused eager form at batch 4, and bf16
      no faster). Falls back to eager if compiling fails.
    * ``channels_last`` — NHWC memory format; ``"auto"``: on CUDA off (the fused form in NCHW
      ran GPEN-512 fp16 1.7-2.1x faster than any channels-last form on an H200: the depthwise
      blur and the per-sample weights are slow in NHWC; docs/gpu.md) except with ``compile``
      (measured only channels-last there); on the CPU on for bf16, for ``compile`` and, since
      session 4, for fp32 eager too (``CPU_CHANNELS_LAST_*`` above; docs/benchmarks.md).
    * ``name`` — shown in logs and ``summary()``.
    * ``warmup_iters`` — eager passes on a side stream before each capture (cuDNN autotuning,
      lazy inits, compile); 3 is plenty, 1 is the minimum.
    * ``cpu_memory`` — CPU device only. ``"keep"`` (default) tunes glibc's malloc once for the
      whole process so freed activations are reused instead of handed back to the OS and
      page-faulted in again on the next call (measured: a fifth to a third of a CPU forward at batch 4;
      see ``stream_gpen/runtime/_cpu_memory.py``). Costs: the process's RSS stays at its peak, and
      the setting is process-wide and permanent. Where it cannot apply (not glibc) it is reported
      in ``fallbacks``. ``"system"`` leaves the allocator alone.

    Eager and graph-captured runs use ``FullGenerator``'s fused form (``impl="auto"``, see
    :mod:`stream_gpen.models.gpen`) on the CPU and on CUDA; ``torch.compile`` and
    ``amp="autocast"`` run its reference form.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        size: int,
        device: str | torch.device = "auto",
        precision: Precision = "auto",
        amp: Amp = "cast",
        buckets: Sequence[int] = DEFAULT_BUCKETS,
        max_batch: int | None = None,
        cuda_graphs: bool = True,
        compile: bool = False,
        channels_last: ChannelsLast = "auto",
        name: str | None = None,
        warmup_iters: int = 3,
        cpu_memory: CpuMemory = "keep",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 8:
            raise InvalidInputError(f"size must be an integer >= 8, got {size!r}")
        model_size = _model_size(model)
        if model_size is not None and model_size != size:
            raise InvalidInputError(
                f"size={size} does not match the model's input size {model_size}; pass size={model_size}"
            )
        _check_choice("precision", precision, get_args(Precision))
        _check_choice("amp", amp, get_args(Amp))
        _check_choice("channels_last", channels_last, ("auto", True, False))
        _check_choice("cuda_graphs", cuda_graphs, (True, False))
        _check_choice("compile", compile, (True, False))
        _check_choice("cpu_memory", cpu_memory, get_args(CpuMemory))
        if isinstance(warmup_iters, bool) or not isinstance(warmup_iters, int) or warmup_iters < 1:
            raise InvalidInputError(f"warmup_iters must be an integer >= 1, got {warmup_iters!r}")
        self.buckets = validate_buckets(buckets, max_batch)
        self.max_batch = self.buckets[-1]
        self.size = size
        self.name = name or getattr(model, "name", None) or f"gpen-{size}"
        self.fallbacks: list[Fallback] = []
        self._lock = threading.Lock()

        self.device, device_note = select_device(device)
        if device_note:
            self._fallback("device", device_note)
        on_cuda = self.device.type == "cuda"
        # What is in effect for the process (an earlier runner may have set it): None off the CPU.
        self.cpu_memory: CpuMemory | None = None
        if not on_cuda:
            if cpu_memory == "keep":
                note = keep_freed_memory()
                if note is not None:
                    self._fallback("cpu_memory", f"{note}; large CPU tensors page-fault on every call")
            self.cpu_memory = "keep" if freed_memory_kept() else "system"

        self.requested_precision = precision
        # Why "auto" chose what it chose (None for an explicit precision); in summary().
        self.precision_reason: str | None = None
        if precision == "auto":
            precision, self.precision_reason = _auto_precision(on_cuda)
            logger.info("%s: precision auto -> %s (%s)", self.name, precision, self.precision_reason)
        if precision == "bf16" and on_cuda and not torch.cuda.is_bf16_supported():
            self._fallback("precision", f"bf16 is not supported on {torch.cuda.get_device_name(self.device)}; using fp16")
            precision = "fp16"
        self.precision: Literal["fp32", "fp16", "bf16"] = precision
        if channels_last == "auto":
            if on_cuda:
                channels_last = CUDA_CHANNELS_LAST_WITH_COMPILE if compile else CUDA_CHANNELS_LAST
            else:
                if compile:
                    channels_last = CPU_CHANNELS_LAST_WITH_COMPILE
                elif precision == "bf16":
                    channels_last = CPU_CHANNELS_LAST_BF16
                else:
                    channels_last = CPU_CHANNELS_LAST_EAGER
        self.channels_last: bool = channels_last
        self.cuda_graphs: bool = cuda_graphs and on_cuda
        self.compile: bool = compile
        self._warmup_iters = warmup_iters

        self.amp: str = amp
        from stream_gpen.models.loading import refuse_nonfinite

        # (NaN/inf weights: every face would come out black, pasted over the real ones)
        refuse_nonfinite([*model.named_parameters(), *model.named_buffers()], self.name, "model's weights")
        model.eval().requires_grad_(False)
        self._model32 = model
        self._set_model()

        self._graphs: dict[int, _Graph] = {}
        self._stream: torch.cuda.Stream | None = None  # created on first CUDA call
        self._pool = None  # graph memory pool shared by all buckets (they never run concurrently)
        self._checked_finite = precision == "fp32"
        self._stats: Counter[str] = Counter()
        self._bucket_calls: Counter[int] = Counter()
        self._capture_s = 0.0

    # ------------------------------------------------------------------ public
    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        """Restore ``crops`` ([n,3,S,S] uint8 RGB, any device) -> [n,3,S,S] uint8 on ``self.device``.

        On CUDA the work runs on the runner's own stream, ordered after the caller's current
        stream (the crops may come from there) and before it (the caller's stream waits for the
        result); no host sync. Record an event before yet another stream or the host reads it.
        """
        return self._call(crops, fine=False)[0]

    def restore_fine(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Like ``runner(crops)``, and also the output before quantisation: ``(u8, fine)``.

        ``fine`` is float32 ``[n,3,S,S]`` on the 0..255 scale (``clamp(y*0.5+0.5, 0, 1)*255``,
        the value FACTS.md section 6 truncates), so ``u8 == fine.floor()`` exactly. A 10/12-bit
        video pastes ``fine`` into its 16-bit picture: the face keeps the model's own precision
        instead of 8-bit steps (banding in smooth skin on an HDR screen). It costs one extra
        element-wise pass and 4 bytes per value; the graphs are the same ones ``runner(crops)``
        replays (their float output is already held in the graph's pool)."""
        return self._call(crops, fine=True)

    def _call(self, crops: torch.Tensor, *, fine: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._validate(crops)
        n = crops.shape[0]
        shape = (n, 3, self.size, self.size)
        out = torch.empty(shape, dtype=torch.uint8, device=self.device)
        out_f = torch.empty(shape, dtype=torch.float32, device=self.device) if fine else None
        if n == 0:
            return out, out_f
        with self._lock, self._runner_stream():
            for chunk in self._plan(n):
                self._run_chunk(crops, chunk, out, out_f)
            self._stats["calls"] += 1
            self._stats["faces"] += n
        return out, out_f

    def warmup(self, buckets: Sequence[int] | None = None) -> None:
        """Capture (CUDA) or compile/prime (eager) the given buckets now instead of on first use.

        Costs ``warmup_iters + 1`` forward passes per bucket; call it before a live stream starts
        so the first frames do not wait for capture (``Enhancer``'s live paths, the camera command
        and the server do, on CUDA: see ``Enhancer._warm_up_live``).
        """
        wanted = self.buckets if buckets is None else tuple(buckets)
        bad = [b for b in wanted if b not in self.buckets]
        if bad:
            raise InvalidInputError(f"buckets {bad} are not among this runner's buckets {self.buckets}")
        with self._lock, self._runner_stream():
            # Largest first: the shared pool grows to the largest bucket once and the smaller
            # captures reuse its blocks.
            for b in sorted(wanted, reverse=True):
                if self.cuda_graphs:
                    self._graph_for(b)
                else:
                    probe = self._probe(b)
                    with torch.inference_mode():
                        self._step_eager(probe)

    @property
    def captured_buckets(self) -> tuple[int, ...]:
        """The buckets whose CUDA graph is captured (what :meth:`warmup` has left to do: the others)."""
        return tuple(sorted(self._graphs))

    def summary(self) -> dict:
        """What ran and how: device, precision, buckets captured, fallbacks, counters."""
        info: dict = {
            "name": self.name,
            "size": self.size,
            "device": str(self.device),
            "precision": self.precision,
            "requested_precision": self.requested_precision,
            "precision_reason": self.precision_reason,
            "amp": self.amp if self.precision != "fp32" else None,
            "channels_last": self.channels_last,
            "cuda_graphs": self.cuda_graphs,
            "compile": self.compile,
            "buckets": list(self.buckets),
            "buckets_captured": list(self.captured_buckets),
            "capture_seconds": round(self._capture_s, 3),
            "fallbacks": [str(f) for f in self.fallbacks],
            "calls": self._stats["calls"],
            "faces": self._stats["faces"],
            "batches": self._stats["batches"],
            "padded_faces": self._stats["padded"],
            "batches_per_bucket": dict(sorted(self._bucket_calls.items())),
        }
        if self.device.type == "cpu":
            info["threads"] = torch.get_num_threads()
            info["cpu_memory"] = self.cpu_memory
        else:
            info["tf32_conv"] = torch.backends.cudnn.allow_tf32
            info["cuda_reserved_bytes"] = self._reserved_bytes()
        return info

    def reset_stats(self) -> None:
        """Zero the counters in ``summary()`` (graphs and buffers are kept)."""
        self._stats.clear()
        self._bucket_calls.clear()

    def close(self) -> None:
        """Drop captured graphs and static buffers (frees their device memory)."""
        with self._lock:
            self._graphs.clear()
            self._pool = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def __enter__(self) -> FaceRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"FaceRunner(name={self.name!r}, size={self.size}, device={str(self.device)!r}, "
            f"precision={self.precision!r}, amp={self.amp!r}, buckets={self.buckets}, cuda_graphs={self.cuda_graphs}, "
            f"compile={self.compile}, channels_last={self.channels_last})"
        )

    # ------------------------------------------------------------------ internals
    @contextlib.contextmanager
    def _runner_stream(self) -> Iterator[None]:
        """Run on the runner's own CUDA stream, ordered after and before the caller's stream.

        All graphs share one memory pool and each bucket has one set of static buffers, so their
        replays must never overlap on the GPU; the lock only orders the host side. One private
        stream orders the GPU side too, whatever stream each calling thread has current.
        """
        if self.device.type != "cuda":
            yield
            return
        if self._stream is None:
            self._stream = torch.cuda.Stream(self.device)
        caller = torch.cuda.current_stream(self.device)
        self._stream.wait_stream(caller)  # the crops are ready
        with torch.cuda.stream(self._stream):
            yield
        caller.wait_stream(self._stream)  # the result is ready for the caller's stream

    def _validate(self, crops: torch.Tensor) -> None:
        if not isinstance(crops, torch.Tensor):
            raise InvalidInputError(f"crops must be a torch.Tensor, got {type(crops).__name__}")
        S = self.size
        if crops.ndim != 4 or crops.shape[1] != 3 or tuple(crops.shape[2:]) != (S, S):
            raise InvalidInputError(
                f"crops must have shape [n, 3, {S}, {S}] (NCHW RGB), got {list(crops.shape)}"
            )
        if crops.dtype != torch.uint8:
            raise InvalidInputError(f"crops must be torch.uint8 (0..255 RGB), got {crops.dtype}")

    def _plan(self, n: int) -> list[Chunk]:
        if self.cuda_graphs or self.compile:
            # Fixed shapes: a graph per bucket / no recompiles. Padding is the price.
            return plan_batches(n, self.buckets)
        return exact_chunks(n, self.max_batch)

    def _fallback(self, what: str, reason: str) -> None:
        note = Fallback(what, reason)
        if note not in self.fallbacks:
            self.fallbacks.append(note)
            logger.warning("%s: %s", self.name, note)

    def _set_model(self) -> None:
        """(Re)build the callable for the current precision: cast copy or fp32 model, compiled or not."""
        if self.precision != "fp32" and self.amp == "cast":
            # Copy where the caller's model lives (usually the CPU), then move: the fp32 master
            # stays off the GPU and only the low-precision copy takes device memory.
            model = copy.deepcopy(self._model32).to(self.device, _DTYPES[self.precision])
        else:
            model = self._model32.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self._run_model = model
        self._fn: Callable[[torch.Tensor], object] = model
        if self.compile:
            try:
                # dynamic=False: one specialised kernel set per bucket, as the graphs want.
                self._fn = torch.compile(model, dynamic=False)
            except Exception as exc:  # noqa: BLE001 - reported as a fallback, never silent
                self._compile_failed(exc)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32" or self.amp == "cast":
            return contextlib.nullcontext()
        # cache_enabled=False: the weight-cast cache must not outlive a graph capture.
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision], cache_enabled=False)

    def _step(self, u8: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The fused step: uint8 -> [-1,1] -> model -> uint8 written into ``out``; returns the float output.

        Same operation order as GPEN's face_gan.py (FACTS.md section 6): /255, -0.5, /0.5;
        y*0.5+0.5, clamp [0,1], *255, truncation to uint8 (not rounding). Pre/post stay fp32.
        """
        x = u8.float().div_(255.0).sub_(0.5).div_(0.5)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.precision != "fp32" and self.amp == "cast":
            x = x.to(_DTYPES[self.precision])
        with no_autocast(), self._autocast():  # the precision chosen, not a host's autocast
            y = self._fn(x)
        if isinstance(y, (tuple, list)):  # the official FullGenerator returns (image, latents)
            y = y[0]
        y = y.float()
        out.copy_(_to_255(y))  # float->uint8 copy truncates
        return y

    def _step_eager(self, u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = torch.empty(u8.shape, dtype=torch.uint8, device=self.device)
        y = self._step_with_compile_fallback(u8, out)
        return out, y

    def _step_with_compile_fallback(self, u8: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        try:
            y = self._step(u8, out)
        except Exception as exc:
            if self._fn is self._run_model or _is_oom(exc):
                raise
            self._compile_failed(exc)
            y = self._step(u8, out)
        if self._check_finite_once(y):  # precision dropped to fp32: redo this batch
            y = self._step(u8, out)
        return y

    def _compile_failed(self, exc: BaseException) -> None:
        self._fn = self._run_model
        self.compile = False
        self._fallback("compile", f"torch.compile failed ({type(exc).__name__}: {_first_line(exc)}); running eager")

    def _check_finite_once(self, y: torch.Tensor) -> bool:
        """Check the first reduced-precision output; on inf/NaN switch to fp32 and return True.

        Only the first batch is checked: the check syncs with the device, and an overflow in
        GPEN comes from its weights and activation scale, which the first batch already shows.
        """
        if self._checked_finite:
            return False
        self._checked_finite = True
        if bool(torch.isfinite(y).all()):
            return False
        bad = self.precision
        self.precision = "fp32"
        self._set_model()
        self._graphs.clear()  # nothing captured yet (the check runs first), but be safe
        self._pool = None
        self._fallback(
            "precision",
            f"{bad} output had inf/NaN on the first batch (overflow inside the model); running fp32",
        )
        return True

    def _run_chunk(self, crops: torch.Tensor, chunk: Chunk, out: torch.Tensor, out_f: torch.Tensor | None) -> None:
        src = crops[chunk.start : chunk.start + chunk.count]
        dst = out[chunk.start : chunk.start + chunk.count]
        dst_f = out_f[chunk.start : chunk.start + chunk.count] if out_f is not None else None
        self._stats["batches"] += 1
        self._stats["padded"] += chunk.padding
        self._bucket_calls[chunk.bucket] += 1
        if self.cuda_graphs:
            g = self._graph_for(chunk.bucket)
            if g is not None:
                g.static_in[: chunk.count].copy_(src, non_blocking=True)
                g.graph.replay()
                dst.copy_(g.static_out[: chunk.count])
                if dst_f is not None:
                    dst_f.copy_(_to_255(g.static_float[: chunk.count]))
                return
        # Eager: pad only when a fixed shape is wanted (compile), else run the exact size.
        if chunk.padding:
            batch = torch.zeros((chunk.bucket, 3, self.size, self.size), dtype=torch.uint8, device=self.device)
            batch[: chunk.count].copy_(src, non_blocking=True)
        else:
            batch = src.to(self.device, non_blocking=True)
        with torch.inference_mode():
            y8, y = self._step_eager(batch)
        dst.copy_(y8[: chunk.count])
        if dst_f is not None:
            dst_f.copy_(_to_255(y[: chunk.count]))

    def _probe(self, bucket: int) -> torch.Tensor:
        # Deterministic noise crops: exercise every kernel with realistic value ranges.
        gen = torch.Generator().manual_seed(1234 + bucket)
        crops = torch.randint(0, 256, (bucket, 3, self.size, self.size), dtype=torch.uint8, generator=gen)
        return crops.to(self.device)

    def _graph_for(self, bucket: int) -> _Graph | None:
        """The captured graph of ``bucket``, capturing it on first use; None after a fallback."""
        g = self._graphs.get(bucket)
        if g is not None:
            return g
        if not self.cuda_graphs:
            return None
        t0 = time.perf_counter()
        prev_stream = torch.cuda.current_stream(self.device)
        try:
            g = self._capture(bucket)
        except Exception as exc:
            # torch.cuda.graph leaves its capture stream current when capture_end fails.
            torch.cuda.set_stream(prev_stream)
            if _is_oom(exc):
                raise
            self.cuda_graphs = False
            self._graphs.clear()
            self._pool = None
            self._fallback(
                "cuda_graphs",
                f"capturing bucket {bucket} failed ({type(exc).__name__}: {_first_line(exc)}); running eager",
            )
            with contextlib.suppress(Exception):
                torch.cuda.synchronize(self.device)
            return None
        self._graphs[bucket] = g
        self._capture_s += time.perf_counter() - t0
        return g

    def _capture(self, bucket: int) -> _Graph:
        dev = self.device
        static_in = self._probe(bucket)
        static_out = torch.empty_like(static_in)
        with torch.cuda.device(dev), _cudnn_benchmark():
            # Warm up on a side stream (as torch.cuda.graph requires): cuDNN picks and caches
            # its algorithms, lazy CUDA inits and torch.compile happen outside the capture.
            side = torch.cuda.Stream(dev)
            side.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(side), torch.no_grad():
                for _ in range(self._warmup_iters):
                    self._step_with_compile_fallback(static_in, static_out)
            torch.cuda.current_stream(dev).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # thread_local: other pipeline threads may keep using CUDA (decode uploads, the
            # detector) while we capture; "global" would make their calls fail.
            with torch.no_grad(), torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
                static_float = self._step(static_in, static_out)
        if self._pool is None:
            self._pool = graph.pool()
        return _Graph(bucket, graph, static_in, static_out, static_float)

    def _reserved_bytes(self) -> int | None:
        try:
            return int(torch.cuda.memory_reserved(self.device))
        except Exception:  # noqa: BLE001 - informational only
            return None


@contextlib.contextmanager
def _cudnn_benchmark() -> Iterator[None]:
    """cuDNN autotuning while warming up and capturing (shapes are fixed, the choice is baked
    into the graph); the global flag is restored afterwards so nothing else changes behaviour."""
    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = old


def _auto_precision(on_cuda: bool) -> tuple[Literal["fp32", "fp16", "bf16"], str]:
    """What ``precision="auto"`` runs, and why (see the CPU defaults at the top of this module)."""
    if on_cuda:
        return "fp16", "CUDA: fp16 on tensor cores"
    feature = cpu_bf16_feature()
    if feature is not None:
        speedup = cpu_bf16_speedup()
        if speedup >= _BF16_PAYS:
            return "bf16", (
                f"the CPU has {feature} and its bf16 convolutions measured {speedup:.1f}x fp32's speed here; its "
                "output is ~53 dB PSNR from fp32's; precision='fp32' for exact fp32"
            )
        return "fp32", (f"the CPU has {feature}, but its bf16 convolutions measured {speedup:.2f}x fp32's speed here "
                        "(bf16 runs only where it is faster): fp32")
    return "fp32", "CPU without native bf16 (avx512_bf16/amx_bf16): fp32"


def _model_size(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    size = getattr(config, "size", None)
    if size is None:
        size = getattr(model, "size", None)
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
