"""What ``--mask parse`` costs: the face parser (ParseNet at 512) against the GPEN runner.

Per face, random weights (the compute of the real checkpoints), timed round-robin side by side
so load drift hits both alike:

* CPU: the parser (fp32, BN folded, channels-last) vs the default CPU model, GPEN-256, through
  its runner at ``precision="auto"``; batch 1.
* CUDA: the parser in fp16 and fp32 vs GPEN-512 fp16 through the graph runner, batch 1 and 8;
  and how many fp16 labels differ from fp32 (fp16 overflow would show as NaN / garbage labels).

In video a face is parsed every ``FaceStage.parse_every`` (5) frames, so the per-frame cost is a
fifth of the ratio printed here.

    python bench/parse.py [--device cpu|cuda] [--repeats N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import refuse_missing_cuda  # noqa: E402

import torch  # noqa: E402

from stream_gpen.faces._parse import FaceParser, build_parsenet  # noqa: E402
from stream_gpen.models.gpen import random_generator  # noqa: E402
from stream_gpen.models.registry import MODELS  # noqa: E402
from stream_gpen.runtime import FaceRunner  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fns: dict, repeats: int, device: torch.device) -> dict:
    times = {k: [] for k in fns}
    for fn in fns.values():  # warm-up (graph capture, cudnn autotune) outside the timing
        fn()
    _sync(device)
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args(argv)
    refuse_missing_cuda(ap, args.device)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    repeats = args.repeats or (20 if cuda else 3)
    state = build_parsenet().state_dict()
    size = 512 if cuda else 256
    gen = random_generator(MODELS[f"gpen-bfr-{size}"].config, seed=0)
    print(f"{device}: torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}"
          + (f", {torch.cuda.get_device_name(device)}" if cuda else f", {torch.get_num_threads()} threads"))
    batches = (1, 8) if cuda else (1,)
    for batch in batches:
        g = torch.Generator().manual_seed(batch)
        x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=g).to(device)
        runner = FaceRunner(gen, size=size, device=device, buckets=(batch,),
                            **({"precision": "fp16"} if cuda else {}))
        parsers = {"parse_fp16": FaceParser(state_dict=state, device=device, precision="fp16", batch_size=batch)} if cuda else {}
        parsers["parse_fp32"] = FaceParser(state_dict=state, device=device, precision="fp32", batch_size=batch)
        fns = {f"gpen{size}_{runner.precision}": lambda: runner(x)}
        fns.update({k: (lambda p=p: p.labels(x)) for k, p in parsers.items()})
        med = _time(fns, repeats, device)
        base = med[next(iter(fns))]
        print(f"\nbatch {batch}, median of {repeats} (round-robin)")
        print(f"{'what':<16} {'ms/face':>9} {'x GPEN':>7}")
        for k, t in med.items():
            print(f"{k:<16} {1000 * t / batch:>9.2f} {t / base:>6.2f}x")
        if cuda:
            a, b = parsers["parse_fp16"].labels(x), parsers["parse_fp32"].labels(x)
            print(f"fp16 vs fp32 labels: {(a != b).float().mean().item() * 100:.3f}% differ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
