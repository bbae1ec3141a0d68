"""Benchmark of the face runner (stream_gpen.runtime.FaceRunner) on random-weight GPEN.

GPU (default when torch sees CUDA): faces/s and per-batch latency for every bucket, fp32/fp16/bf16,
eager vs CUDA graph (vs torch.compile under the graph), GPEN-512 and GPEN-256; peak device memory;
PSNR of fp16/bf16 uint8 output against fp32 eager on the same crops.

CPU (``--device cpu``): GPEN-256 at batch 1 and 4, fp32 eager (the model's fused CPU form) vs
eager with the reference form (``impl="reference"``, what eager ran before the fused form) vs
channels-last vs bf16 (NCHW, channels-last = what ``precision="auto"`` runs on CPUs with bf16
instructions, its reference form, autocast) vs ``auto`` vs torch.compile, timed round-robin side
by side so load drift hits every variant alike; speed-up, max |float output - eager| and PSNR of
the uint8 output vs fp32 eager for each. All variants share the process,
so all run with the runner's CPU allocator setting (bench/gpen_forward.py --cpu-memory measures it).
The bf16 variants run only where the CPU has bf16 instructions (avx512_bf16/amx_bf16, the test
``precision="auto"`` makes; one line says so): elsewhere torch emulates bf16, whose first batch-1
calls took 6.6-56 s each on a 2-core AVX2 EPYC (fp32's under 1 s; session 26), a quick run of an
estimated 20-30 min.
``--bf16`` times them anyway.

    python bench/runtime.py --quick --device cpu   # ~1 min (47 s on the 2-core EPYC, 1 thread,
                                                   # bf16 left out; without --compile)
    python bench/runtime.py --device cuda --json out.json

Every number is measured in this run; ratios are the point (absolute times depend on the load).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import refuse_missing_cuda  # noqa: E402

import torch  # noqa: E402

from stream_gpen.models.gpen import random_generator  # noqa: E402
from stream_gpen.models.registry import MODELS  # noqa: E402
from stream_gpen.runtime import FaceRunner  # noqa: E402
from stream_gpen.runtime._device import cpu_bf16_feature  # noqa: E402

CONFIGS = {256: MODELS["gpen-bfr-256"].config, 512: MODELS["gpen-bfr-512"].config}
GFLOP = {256: 17.41, 512: 276.22}  # per face, FACTS.md section 9


def psnr_u8(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double() - b.double()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def crops(n: int, size: int, device, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    # Smooth-ish random faces: low-frequency noise upsampled, so crops are not pure noise.
    low = torch.rand((n, 3, size // 16, size // 16), generator=gen)
    img = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    img = img + 0.05 * torch.randn((n, 3, size, size), generator=gen)
    return (img.clamp(0, 1) * 255).to(torch.uint8).to(device)


# ----------------------------------------------------------------------------------- CPU
def cpu_variants(args) -> dict[str, dict]:
    """The CPU table's variants: name -> FaceRunner keywords (plus the model's ``impl``). The bf16
    ones only where the CPU has bf16 instructions, or with ``--bf16``; one printed line says which."""
    variants = {
        "eager": dict(precision="fp32", channels_last=False),
        "eager_reference": dict(precision="fp32", channels_last=False, impl="reference"),
        "channels_last": dict(precision="fp32", channels_last=True),
        "bf16_nchw": dict(precision="bf16", channels_last=False, amp="cast"),
        "bf16_cl": dict(precision="bf16", channels_last=True, amp="cast"),  # "auto" on bf16 CPUs
        "bf16_cl_reference": dict(precision="bf16", channels_last=True, amp="cast", impl="reference"),
        "bf16_autocast": dict(precision="bf16", channels_last=False, amp="autocast"),
        "auto": dict(),  # whatever precision="auto" picks on this CPU (printed)
    }
    if args.compile:
        variants["compile"] = dict(precision="fp32", channels_last=False, compile=True)
        variants["compile_cl"] = dict(precision="fp32", channels_last=True, compile=True)
        variants["compile_bf16_cl"] = dict(precision="bf16", channels_last=True, compile=True)
    feature = cpu_bf16_feature()
    if feature is None and not args.bf16:
        left = [k for k, kw in variants.items() if kw.get("precision") == "bf16"]
        print(f"bf16 variants left out ({', '.join(left)}): this CPU has no bf16 instructions "
              "(avx512_bf16/amx_bf16), torch would emulate them (tens of seconds a call); --bf16 runs them")
        variants = {k: kw for k, kw in variants.items() if k not in left}
    elif feature is None:
        print("bf16 variants run emulated (--bf16; this CPU has no bf16 instructions): first calls take tens of seconds")
    return variants


def bench_cpu(args) -> list[dict]:
    size = 256
    base = random_generator(CONFIGS[size], seed=0)
    variants = cpu_variants(args)
    rows = []
    print(f"CPU: torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} logical cores; "
          f"load average {os.getloadavg()[0]:.1f}")
    for batch in args.cpu_batches:
        x = crops(batch, size, "cpu")
        runners = {}
        for k, kw in variants.items():
            kw = dict(kw)
            model = copy.deepcopy(base)
            model.impl = kw.pop("impl", "auto")
            runners[k] = FaceRunner(model, size=size, device="cpu", buckets=(batch,), **kw)
        floats, u8, times = {}, {}, {k: [] for k in runners}
        for k, r in runners.items():  # warm-up (and compile) outside the timing
            t0 = time.perf_counter()
            out = torch.empty_like(x)
            with torch.inference_mode():
                floats[k] = r._step(x, out).float()
            u8[k] = out
            print(f"  batch {batch} {k}: first call {time.perf_counter() - t0:.1f} s"
                  + (f" (auto -> {r.precision}, channels_last={r.channels_last})" if k == "auto" else ""), flush=True)
        for _ in range(args.repeats):
            for k, r in runners.items():  # round-robin: load drift hits every variant alike
                t0 = time.perf_counter()
                r(x)
                times[k].append(time.perf_counter() - t0)
        ref = floats["eager"]
        t_ref = statistics.median(times["eager"])
        for k in runners:
            t = statistics.median(times[k])
            rows.append(dict(size=size, batch=batch, variant=k, s_per_batch=t, speedup=t_ref / t,
                             best_speedup=min(times["eager"]) / min(times[k]),
                             max_abs=(floats[k] - ref).abs().max().item(), psnr=psnr_u8(u8[k], u8["eager"]),
                             precision=runners[k].precision, fallbacks=runners[k].fallbacks))
    print(f"\nGPEN-{size} random weights, CPU, median of {args.repeats} (round-robin); 'best' = ratio of the "
          "fastest calls (less sensitive to other processes); PSNR of the uint8 output vs fp32 eager")
    print(f"{'batch':>5} {'variant':<18} {'s/batch':>8} {'face/s':>7} {'vs eager':>8} {'best':>6} {'max|d|':>9} {'PSNR dB':>8}")
    for r in rows:
        print(f"{r['batch']:>5} {r['variant']:<18} {r['s_per_batch']:>8.3f} {r['batch'] / r['s_per_batch']:>7.2f} "
              f"{r['speedup']:>7.2f}x {r['best_speedup']:>5.2f}x {r['max_abs']:>9.2e} {r['psnr']:>8.2f}"
              + (f"  fallbacks: {r['fallbacks']}" if r["fallbacks"] else ""))
    for batch in args.cpu_batches:
        r = {row["variant"]: row for row in rows if row["batch"] == batch}
        print(f"batch {batch}: fused eager vs reference eager {r['eager_reference']['s_per_batch'] / r['eager']['s_per_batch']:.2f}x")
    return rows


# ----------------------------------------------------------------------------------- GPU
def time_cuda(fn, repeats: int) -> float:
    """Median per-call milliseconds over ``repeats`` calls, each timed with CUDA events."""
    ms = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ms.append(a.elapsed_time(b))
    return statistics.median(ms)


#: GPU model forms (``--forms``): name -> (model impl, the runner's channels_last, the model's
#: blur_impl). "default" is what the runner runs by default on CUDA (since session 16: the fused
#: form in NCHW, i.e. "fused_nchw"). "reference": the reference form channels-last (the default
#: before session 16); "reference_nchw" the same in NCHW (session 1's profile: the depthwise blur
#: is much slower in NHWC). "fused_nchw": the fused form in NCHW, where per-sample modulated
#: weights run as one grouped conv at high resolution (no ``x·s`` and demodulation passes over the
#: activations, which session 1's profile found memory-bound); "fused_cl": the fused form
#: channels-last (activation modulation everywhere). "pool_blur" / "pool_blur_nchw": the
#: reference form with the binomial FIR blurs as three 2x2 average pools
#: (``FullGenerator.blur_impl = "pool"``) instead of PyTorch's depthwise conv kernel.
#: Session 16 on an H200 (GPEN-512 fp16 graph, faces/s at buckets 1 | 4 | 16): reference 115 |
#: 140 | 150, reference_nchw 168 | 237 | 264, pool_blur 134 | 161 | 171, pool_blur_nchw 146 | 197
#: | 218, fused_cl 134 | 164 | 174, fused_nchw 234 | 290 | 316.
GPU_FORMS = {"default": ("auto", "auto", "conv"),
             "reference": ("reference", True, "conv"), "reference_nchw": ("reference", False, "conv"),
             "fused_nchw": ("fused", False, "conv"), "fused_cl": ("fused", True, "conv"),
             "pool_blur": ("reference", True, "pool"), "pool_blur_nchw": ("reference", False, "pool")}


def bench_gpu(args) -> tuple[list[dict], list[dict]]:
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    print(f"GPU: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cudnn {torch.backends.cudnn.version()}, tf32 conv {torch.backends.cudnn.allow_tf32}")
    rows, acc = [], []
    for size in args.sizes:
        base = random_generator(CONFIGS[size], seed=0)
        ref_x = crops(4, size, dev, seed=1)
        # Accuracy reference: true fp32 (TF32 off), eager. Timings below keep the default flags.
        tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            ref_runner = FaceRunner(copy.deepcopy(base), size=size, device="cuda", precision="fp32", cuda_graphs=False)
            ref_out = ref_runner(ref_x).cpu()
            del ref_runner
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
        for prec, mode, form in ((p, m, f) for p in args.precisions for m in args.modes for f in args.forms):
            if mode == "compile" and (prec not in args.compile_precisions or size not in args.compile_sizes):
                continue
            impl, layout, blur_impl = GPU_FORMS[form]
            label = mode if form == "default" else f"{mode}+{form}"
            buckets = tuple(args.compile_buckets) if mode == "compile" else tuple(args.buckets)
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            t_build = time.perf_counter()
            try:
                model = copy.deepcopy(base)
                model.impl = impl
                model.blur_impl = blur_impl
                runner = FaceRunner(model, size=size, device="cuda", precision=prec,
                                    buckets=buckets, cuda_graphs=mode != "eager",
                                    compile=mode == "compile", amp=args.amp, channels_last=layout)
                for b in buckets:
                    x = crops(b, size, dev, seed=b)
                    t0 = time.perf_counter()
                    runner(x)
                    torch.cuda.synchronize()
                    first_s = time.perf_counter() - t0
                    runner(x)
                    ms = time_cuda(lambda: runner(x), args.repeats)
                    row = dict(size=size, precision=prec, mode=label, bucket=b, ms=ms,
                               faces_s=b / ms * 1e3, tflops=GFLOP[size] * b / ms,
                               peak_mb=torch.cuda.max_memory_allocated() / 2**20, first_s=first_s,
                               fallbacks=[str(f) for f in runner.fallbacks])
                    rows.append(row)
                    print(f"  {size} {prec:<4} {label:<7} b={b:<3} {ms:8.2f} ms {row['faces_s']:8.1f} face/s "
                          f"{row['tflops']:6.1f} TFLOP/s peak {row['peak_mb']:7.0f} MB first {first_s:5.1f} s"
                          + (f" FALLBACK {row['fallbacks']}" if row["fallbacks"] else ""), flush=True)
                if 4 in buckets:
                    out = runner(ref_x).cpu()
                    acc.append(dict(size=size, precision=prec, mode=label, psnr=psnr_u8(out, ref_out),
                                max_abs=(out.int() - ref_out.int()).abs().max().item()))
                runner.close()
                del runner
            except Exception as exc:  # noqa: BLE001 - one failing config must not end the run
                if isinstance(exc, torch.OutOfMemoryError):
                    torch.cuda.empty_cache()
                print(f"  {size} {prec} {label}: FAILED {type(exc).__name__}: {exc}", flush=True)
                rows.append(dict(size=size, precision=prec, mode=label, bucket=None, error=f"{type(exc).__name__}: {exc}"))
            print(f"  ({size} {prec} {label} took {time.perf_counter() - t_build:.1f} s)", flush=True)
    return rows, acc


def print_gpu_table(rows: list[dict], acc: list[dict]) -> None:
    print("\n== runtime table (faces/s | ms per batch | peak MB) ==")
    keys = sorted({(r["size"], r["precision"], r["mode"]) for r in rows}, key=lambda k: (-k[0], k[1], k[2]))
    buckets = sorted({r["bucket"] for r in rows if r.get("bucket")})
    print(f"{'model':<9}{'prec':<5}{'mode':<18}" + "".join(f"{'b=' + str(b):>22}" for b in buckets))
    for k in keys:
        cells = []
        for b in buckets:
            r = next((r for r in rows if (r["size"], r["precision"], r["mode"]) == k and r.get("bucket") == b), None)
            cells.append(f"{r['faces_s']:7.0f} |{r['ms']:7.2f} |{r['peak_mb']:5.0f}" if r else "-")
        err = next((r["error"] for r in rows if (r["size"], r["precision"], r["mode"]) == k and "error" in r), "")
        print(f"{'gpen-' + str(k[0]):<9}{k[1]:<5}{k[2]:<18}" + "".join(f"{c:>22}" for c in cells) + (f"  ERROR {err}" if err else ""))
    if acc:
        print("\n== accuracy vs fp32 eager with TF32 off (uint8 output, 4 crops) ==")
        for a in acc:
            print(f"gpen-{a['size']} {a['precision']:<4} {a['mode']:<6} PSNR {a['psnr']:6.2f} dB  max|d| {a['max_abs']}")
    ok = [r for r in rows if r.get("size") == 512 and r.get("precision") == "fp16" and "ms" in r]
    if ok:
        best = max(ok, key=lambda r: r["faces_s"])
        b1 = [r for r in ok if r["bucket"] == 1]
        b16 = [r for r in ok if r["bucket"] == 16]
        print("\n== targets, GPEN-512 fp16 ==")
        print(f"best: {best['faces_s']:.0f} faces/s ({best['mode']}, bucket {best['bucket']}) target >= 1000")
        if b1:
            r = min(b1, key=lambda r: r["ms"])
            print(f"single-face latency: {r['ms']:.2f} ms ({r['mode']}) target <= 3")
        if b16:
            print(f"peak memory through bucket 16: {min(r['peak_mb'] for r in b16):.0f} MB target <= 4096")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--quick", action="store_true", help="few repeats (CPU: 2, GPU: 5)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 256], choices=(256, 512))
    p.add_argument("--precisions", nargs="+", default=["fp16", "bf16", "fp32"], choices=("fp32", "fp16", "bf16"))
    p.add_argument("--modes", nargs="+", default=["eager", "graph"], choices=("eager", "graph", "compile"))
    p.add_argument("--amp", choices=("cast", "autocast"), default="cast")
    p.add_argument("--forms", nargs="+", default=["default"], choices=tuple(GPU_FORMS),
                   help="GPU: model forms to time (GPU_FORMS in this file)")
    p.add_argument("--buckets", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--compile-buckets", type=int, nargs="+", default=[1, 16])
    p.add_argument("--compile-precisions", nargs="+", default=["fp16"])
    p.add_argument("--compile-sizes", type=int, nargs="+", default=[512])
    p.add_argument("--cpu-batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--compile", action="store_true", help="CPU: also time torch.compile (minutes of compiling)")
    p.add_argument("--bf16", action="store_true",
                   help="CPU: time the bf16 variants even where the CPU has no bf16 instructions (emulated: "
                        "tens of seconds a call, 20-30 min for --quick on 2 cores)")
    p.add_argument("--json", type=Path, default=None, help="write all rows here")
    args = p.parse_args(argv)
    refuse_missing_cuda(p, args.device)
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    gpu_only = [f"--{k.replace('_', '-')}" for k in ("sizes", "precisions", "modes", "amp", "forms", "buckets",
                                                      "compile_buckets", "compile_precisions", "compile_sizes")
                if getattr(args, k) != p.get_default(k)]
    if not use_cuda and gpu_only:
        # (the CPU table is fixed: GPEN-256, its eager/channels-last/bf16 variants, at --cpu-batches)
        p.error(f"{', '.join(gpu_only)}: GPU options; on the CPU the table is GPEN-256 at --cpu-batches "
                "(--compile adds the compiled variants)")
    if args.repeats is None:
        args.repeats = (5 if use_cuda else 2) if args.quick else (20 if use_cuda else 5)
    if use_cuda:
        rows, acc = bench_gpu(args)
        print_gpu_table(rows, acc)
        result = {"device": torch.cuda.get_device_name(), "rows": rows, "accuracy": acc}
    else:
        rows = bench_cpu(args)
        result = {"device": "cpu", "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
