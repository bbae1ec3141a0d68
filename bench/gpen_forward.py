"""GPEN forward time per face, random weights, on the current device.

    .venv/bin/python bench/gpen_forward.py                       # 256 and 512, batch 1 and 4
    .venv/bin/python bench/gpen_forward.py --sizes 256 --repeats 5 --forms reference fused grouped \
        --cpu-memory system keep

For each size and batch: warm-up calls, then ``--repeats`` timed calls; prints the median time
per call and per face, and, measured side by side in the same run, the per-face ratio of each
batch to batch 1 and of each form to the reference form. Forms (``--forms``):

* ``reference`` — ``FullGenerator(impl="reference")``: the batched modulated conv, the GPU path;
* ``fused`` — ``impl="fused"``: the CPU eager path (weight modulation, folded bias/gain, ...);
* ``fused_separable`` — the same with rank-1 blur kernels as two 1-D passes instead of one 4x4
  pass (``gpen.SEPARABLE_BLUR``; measured slower on the 2-core CPU, so off by default);
* ``grouped`` — the reference path with the official per-sample-weight (grouped conv) form of
  the modulated convolution, i.e. what GPEN's own code runs.

``--cpu-memory system keep`` (CPU) runs each allocator setting (stream_gpen.runtime._cpu_memory)
in its own worker process, since the setting is process-wide; the parent interleaves the calls
round-robin over settings and forms, so load drift hits every variant alike. The per-call minor
page faults and system time are printed too. On CUDA the calls are synchronised and run under
``torch.inference_mode``; no CUDA graphs here (that is the runtime's benchmark).

CPU note: GPEN-512 takes 5-19 s per face on a 2-core CPU, so CPU defaults are 1 warm-up and
2 repeats; on CUDA 3 and 10.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import refuse_missing_cuda  # noqa: E402

from stream_gpen.models import gpen  # noqa: E402
from stream_gpen.models.registry import MODELS  # noqa: E402

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _grouped_forward(self: gpen.ModulatedConv2d, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The official per-sample-weight form (grouped conv, groups=batch), for comparison only."""
    b, cin, h, w = x.shape
    s = self.modulation(style)
    weight = self.scale * self.weight[None] * s[:, None, :, None, None]  # [B, out, in, k, k]
    if self.demodulate:
        d = torch.rsqrt(weight.float().square().sum(dim=(2, 3, 4)) + 1e-8).to(weight.dtype)
        weight = weight * d[:, :, None, None, None]
    k = self.kernel_size
    x = x.reshape(1, b * cin, h, w)
    if self.upsample:
        wt = weight.transpose(1, 2).reshape(b * cin, self.out_channel, k, k)
        out = F.conv_transpose2d(x, wt, stride=2, padding=0, groups=b)
        out = out.reshape(b, self.out_channel, out.shape[2], out.shape[3])
        return self.blur(out)
    out = F.conv2d(x, weight.reshape(b * self.out_channel, cin, k, k), padding=self.padding, groups=b)
    return out.reshape(b, self.out_channel, h, w)


class _Worker:
    """Holds the models of one process-wide allocator setting and times single calls on request.

    In-process for ``None`` (no allocator change asked for), else a spawned child process.
    """

    def __init__(self, memory: str | None, args) -> None:
        self.memory = memory
        if memory is None:
            self._conn = None
            self._state = _worker_state(args)
        else:
            ctx = mp.get_context("spawn")
            self._conn, child = ctx.Pipe()
            self._proc = ctx.Process(target=_worker_main, args=(child, memory, args), daemon=True)
            self._proc.start()

    def call(self, *request):
        if self._conn is None:
            return _worker_handle(self._state, *request)
        self._conn.send(request)
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"worker ({self.memory}) failed: {value}")
        return value

    def close(self) -> None:
        if self._conn is not None:
            self._conn.send(None)
            self._proc.join(timeout=60)


def _worker_state(args) -> dict:
    return {"args": args, "models": {}, "inputs": {}}


def _worker_main(conn, memory: str, args) -> None:
    if memory == "keep":
        from stream_gpen.runtime._cpu_memory import keep_freed_memory

        note = keep_freed_memory()
        if note:
            print(f"# cpu-memory keep not applied: {note}", flush=True)
    state = _worker_state(args)
    while (request := conn.recv()) is not None:
        try:
            conn.send((True, _worker_handle(state, *request)))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
            conn.send((False, f"{type(exc).__name__}: {exc}"))


def _worker_handle(state: dict, op: str, size: int, form: str, batch: int):
    """``op`` "warm" (untimed) or "time": one forward; returns (seconds, minor faults, sys s)."""
    args = state["args"]
    device = torch.device(args.device)
    dtype = _DTYPES[args.dtype]
    if size not in state["models"]:
        state["models"].clear()  # one size at a time (GPEN-512 is 280 MB per copy)
        model = gpen.random_generator(MODELS[f"gpen-bfr-{size}"].config, seed=0, device=device, dtype=dtype)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        state["models"][size] = model
    model = state["models"][size]
    key = (size, batch)
    if key not in state["inputs"]:
        g = torch.Generator().manual_seed(batch)
        x = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device, dtype)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        state["inputs"] = {key: x}
    x = state["inputs"][key]
    model.impl = "fused" if form.startswith("fused") else "reference"
    gpen.SEPARABLE_BLUR = form == "fused_separable"
    batched_forward = gpen.ModulatedConv2d.forward
    if form == "grouped":
        gpen.ModulatedConv2d.forward = _grouped_forward
    try:
        with torch.inference_mode():
            _sync(device)
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            model(x)
            _sync(device)
            dt = time.perf_counter() - t0
            r1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        gpen.ModulatedConv2d.forward = batched_forward
    return dt, r1.ru_minflt - r0.ru_minflt, r1.ru_stime - r0.ru_stime


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512], choices=[256, 512, 1024, 2048],
                   help="registry configs gpen-bfr-SIZE to time")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--repeats", type=int, default=None, help="timed calls (default: 2 on CPU, 10 on CUDA)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls (default: 1 on CPU, 3 on CUDA)")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--dtype", choices=sorted(_DTYPES), default="float32")
    p.add_argument("--channels-last", action="store_true", help="model and input in channels_last")
    p.add_argument("--forms", nargs="+", choices=["reference", "fused", "fused_separable", "grouped"], default=None,
                   help="forward forms to time side by side (default: reference fused on CPU, reference on CUDA)")
    p.add_argument("--modconv", nargs="+", choices=["batched", "grouped"], default=None,
                   help="old spelling: batched = --forms reference, grouped = grouped")
    p.add_argument("--cpu-memory", nargs="+", choices=["system", "keep"], default=None,
                   help="CPU allocator settings, each in its own worker process (default: none, in-process)")
    args = p.parse_args(argv)
    refuse_missing_cuda(p, args.device)

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(args.device)
    cpu = device.type == "cpu"
    repeats = args.repeats if args.repeats is not None else (2 if cpu else 10)
    warmup = args.warmup if args.warmup is not None else (1 if cpu else 3)
    forms = args.forms or ([{"batched": "reference"}.get(f, f) for f in args.modconv] if args.modconv else None)
    forms = forms or (["reference", "fused"] if cpu else ["reference"])
    memories = args.cpu_memory if (args.cpu_memory and cpu) else [None]
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        import os

        where = f"CPU, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}"
    print(f"# GPEN forward, random weights, {device} ({where}), {args.dtype}, "
          f"channels_last={args.channels_last}, warmup {warmup}, median of {repeats} round-robin; "
          f"torch {torch.__version__}")
    variants = [(m, f) for m in memories for f in forms]
    ref_variant = variants[0]
    workers = {m: _Worker(m, args) for m in memories}
    try:
        print(f"{'model':<14} {'memory':<7} {'form':<10} {'batch':>5} {'ms/call':>10} {'ms/face':>10} {'face/s':>8} "
              f"{'vs b1/face':>10} {'vs first':>8} {'minflt':>8} {'sys ms':>7}")
        for size in args.sizes:
            name = f"gpen-bfr-{size}"
            per_face: dict[tuple, float] = {}
            for batch in args.batches:
                for m, f in variants:
                    for _ in range(warmup):
                        workers[m].call("warm", size, f, batch)
                samples: dict[tuple, list] = {v: [] for v in variants}
                for _ in range(repeats):
                    for m, f in variants:  # round-robin: load drift hits every variant alike
                        samples[m, f].append(workers[m].call("time", size, f, batch))
                for v in variants:
                    med = statistics.median(t for t, _, _ in samples[v])
                    flt = statistics.median(n for _, n, _ in samples[v])
                    sys_s = statistics.median(st for _, _, st in samples[v])
                    per_face[v, batch] = med / batch
                    b1 = per_face.get((v, args.batches[0]))
                    vs_b1 = f"{per_face[v, batch] / b1:.2f}" if b1 else "-"
                    ref = per_face.get((ref_variant, batch))
                    vs_ref = f"{ref / per_face[v, batch]:.2f}x" if v != ref_variant else "-"
                    print(f"{name:<14} {v[0] or '-':<7} {v[1]:<10} {batch:>5} {med * 1e3:>10.1f} "
                          f"{med / batch * 1e3:>10.1f} {batch / med:>8.2f} {vs_b1:>10} {vs_ref:>8} "
                          f"{flt:>8.0f} {sys_s * 1e3:>7.0f}", flush=True)
    finally:
        for w in workers.values():
            w.close()
    print("# vs first: speed-up per face over the first variant (higher is faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
