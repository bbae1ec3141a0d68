"""Where a run's CPU time goes, per frame and per stage, in CPU seconds rather than wall seconds.

    python bench/stage_cpu.py [--clips talking_head,old_tv] [--max-frames 12] [--model gpen|identity]
                              [--batch-size 4] [--repeats 2]

The run summary's ``stage_seconds`` are wall time: on a shared CPU they swing 2-3x with the
other jobs' load, so they cannot say which stage to work on. This script swaps the pipeline's
stage timer for one that also sums the calling thread's CPU time (``time.thread_time``), and
prints per frame: the process's CPU (user + system), the main thread's (detect, track, align,
restore, paste run there), the other threads' (decode and encode), each stage's main-thread CPU,
and each GPEN batch's CPU (``FaceRunner`` steps). Random-weight GPEN-256 (the released compute),
fp32 unless ``--precision`` says otherwise; ``--model identity`` returns the crops unchanged (the
pipeline without a face model). Run it with ``OMP_NUM_THREADS=1`` for one torch thread: thread
CPU then adds up to the work done.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clip_paths, detector_weights, random_gpen, trim  # noqa: E402

CPU: dict[str, float] = defaultdict(float)


def _patch_timer() -> None:
    import stream_gpen.pipeline as pipeline
    import stream_gpen.summary as summary

    class CpuStageTimer(summary.StageTimer):
        @contextmanager
        def __call__(self, stage: str):
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                yield
            finally:
                self.totals[stage] += time.perf_counter() - t0
                CPU[stage] += time.thread_time() - c0

    summary.StageTimer = CpuStageTimer
    pipeline.StageTimer = CpuStageTimer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default="talking_head,old_tv")
    ap.add_argument("--max-frames", type=int, default=12)
    ap.add_argument("--model", choices=["gpen", "identity"], default="gpen")
    ap.add_argument("--size", type=int, default=256, choices=[256, 512])
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per clip (after one warm-up run)")
    args = ap.parse_args()
    sources, det = clip_paths(args.clips.split(",")), detector_weights()
    _patch_timer()
    torch.set_grad_enabled(False)
    from stream_gpen import Enhancer

    if args.model == "identity":
        from e2e import IdentityRestorer

        model = IdentityRestorer(args.size, "cpu")
    else:
        model = random_gpen(args.size, "cpu")
    enh = Enhancer(model, device="cpu", detector="mobilenet0.25", detector_weights=det,
                   batch_size=args.batch_size, precision=args.precision)
    runner = enh.restorer
    steps: list[tuple[int, float]] = []
    if hasattr(runner, "_step_eager"):  # a FaceRunner: time each batch the model runs
        step = runner._step_eager

        def timed(u8):
            c0 = time.thread_time()
            out = step(u8)
            steps.append((int(u8.shape[0]), time.thread_time() - c0))
            return out

        runner._step_eager = timed
    print(f"{args.model} {args.size} on cpu, precision {getattr(enh, 'precision', '?')}, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.clips.split(","):
            src = trim(sources[name], tmp / f"{name}.mp4", args.max_frames or None)
            enh.enhance_file(src, tmp / "warm.mp4", preset="veryfast", overwrite=True)
            for rep in range(args.repeats):
                CPU.clear()
                steps.clear()
                r0 = resource.getrusage(resource.RUSAGE_SELF)
                t0, m0 = time.perf_counter(), time.thread_time()
                s = enh.enhance_file(src, tmp / "out.mp4", preset="veryfast", overwrite=True)
                wall, main_cpu = time.perf_counter() - t0, time.thread_time() - m0
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                proc = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
                n = max(s.frames_out, 1)
                print(f"{name} run {rep + 1}: {s.frames_out} frames, {s.faces_restored} faces, {s.detector_calls} "
                      f"detector calls; ms per frame: wall {wall / n * 1e3:.0f}, process CPU {proc / n * 1e3:.0f} "
                      f"(system {(r1.ru_stime - r0.ru_stime) / n * 1e3:.0f}), main thread {main_cpu / n * 1e3:.0f}, "
                      f"other threads {(proc - main_cpu) / n * 1e3:.0f}; load {os.getloadavg()[0]:.1f}")
                staged = sum(CPU.values())
                per_stage = ", ".join(f"{k} {v / n * 1e3:.1f}" for k, v in sorted(CPU.items()))
                outside = (main_cpu - staged) / n * 1e3
                print(f"    main-thread CPU ms/frame: {per_stage}, outside the stages {outside:.1f}")
                if steps:
                    faces = sum(b for b, _ in steps)
                    print(f"    model batches (faces, CPU ms): {[(b, round(t * 1e3)) for b, t in steps]}; "
                          f"{sum(t for _, t in steps) / faces * 1e3:.0f} ms per face", flush=True)


if __name__ == "__main__":
    main()
