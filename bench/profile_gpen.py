"""Where GPEN's GPU time goes: torch.profiler over a few forward passes, top kernels and modules.

    python bench/profile_gpen.py [--size 512] [--batch 16] [--precision fp16]

Prints the CUDA kernels by total time and the time per module type (ModulatedConv2d, Blur,
Upsample, ...), so the next optimisation targets the layers that cost most.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, choices=[256, 512])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--precision", default="fp16", choices=["fp16", "bf16", "fp32"])
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--impl", default="reference", choices=["reference", "fused"],
                    help="the model form (FullGenerator.impl): reference (session 1's profile), or fused, "
                    "what the runner runs on CUDA since session 16 (NCHW)")
    args = ap.parse_args()
    from torch.profiler import ProfilerActivity, profile, record_function

    from stream_gpen.models.gpen import random_generator
    from stream_gpen.models.registry import MODELS

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.precision]
    torch.backends.cudnn.benchmark = True
    if not torch.cuda.is_available():
        sys.exit("profile_gpen.py profiles CUDA kernels: no CUDA device here (bench/runtime.py times the CPU)")
    model = random_generator(MODELS[f"gpen-bfr-{args.size}"].config).cuda().to(dtype).eval()
    model.impl = args.impl
    x = torch.rand(args.batch, 3, args.size, args.size, device="cuda", dtype=dtype) * 2 - 1
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    # Time per module type with CUDA events around each leaf-ish module.
    per_type: dict[str, float] = defaultdict(float)
    events = []

    def pre(mod, _inp):
        e = torch.cuda.Event(enable_timing=True)
        e.record()
        mod._t0 = e

    def post(mod, _inp, _out):
        e = torch.cuda.Event(enable_timing=True)
        e.record()
        events.append((type(mod).__name__, mod._t0, e))

    names = {"ModulatedConv2d", "Blur", "Upsample", "FusedLeakyReLU", "NoiseInjection", "EqualConv2d",
             "EqualLinear", "ToRGB"}
    hooks = []
    for m in model.modules():
        if type(m).__name__ in names:
            hooks += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        torch.cuda.synchronize()
        events.clear()
        for _ in range(3):
            model(x)
        torch.cuda.synchronize()
    for name, a, b in events:
        per_type[name] += a.elapsed_time(b) / 3
    for h in hooks:
        h.remove()
    total = sum(v for k, v in per_type.items() if k in ("ModulatedConv2d", "Blur", "Upsample", "FusedLeakyReLU",
                                                         "NoiseInjection", "EqualConv2d"))
    print(f"GPEN-{args.size} {args.precision} batch {args.batch} impl={args.impl} channels_last={args.channels_last}")
    print("ms per forward by module type (nested modules overlap: ToRGB holds a ModulatedConv2d):")
    for k, v in sorted(per_type.items(), key=lambda kv: -kv[1]):
        print(f"  {k:18} {v:8.2f} ms")
    with torch.inference_mode():
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            with record_function("forward"):
                model(x)
            torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=20, max_name_column_width=70))
    print(f"(leaf-module sum {total:.1f} ms)")


if __name__ == "__main__":
    main()
