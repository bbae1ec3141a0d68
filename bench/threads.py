"""torch's OpenMP threads on a shared CPU: spinning waits (the old default) vs sleeping waits vs one thread.

    python bench/threads.py [--rounds 3] [--calls 5] [--clip old_tv] [--duration 1] [--busy 0]

torch runs its CPU kernels on GNU libgomp threads (as many as cores). With ``OMP_WAIT_POLICY``
unset, a thread that reaches a barrier first spins (up to 300000 polls) for the others; on a
2-core machine shared with the run's own decoder and x264 threads (and with other jobs), the other
thread is often not running, and the spinning one burns the core it needs. ``import stream_gpen``
now sets ``OMP_WAIT_POLICY=PASSIVE`` (unless set); this script measures what that is worth.

Each variant runs in a fresh process, the variants take turns within each round (this machine's
load changes between rounds, not within one turn), and the ratios are taken within a round:

* ``spin``: the old default (torch imported before stream_gpen, no OpenMP variables: libgomp
  spins at barriers);
* ``passive``: the new default (``import stream_gpen`` first: ``OMP_WAIT_POLICY=PASSIVE``);
* ``1thread``: ``OMP_NUM_THREADS=1`` (no barriers at all, half the cores for torch).

Measured per variant: the MobileNet-0.25 detector on a real frame and a tiny GPEN batch (8 faces
at 64 px) in one process (wall and process CPU per call, medians of ``--calls``), and a short
``stream-gpen enhance`` of the clip (GPEN-256 with random weights: the released compute) as a
whole process (wall, user + system CPU). ``--busy N`` adds N busy-looping processes for the whole
run, to see a loaded machine on a quiet one. CPU time is the steadier measure: a spinning wait is
CPU spent on nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, clip_paths, detector_weights  # noqa: E402

VARIANTS = {  # name: (extra environment, import torch before stream_gpen)
    "spin": ({}, True),
    "passive": ({}, False),
    "1thread": ({"OMP_NUM_THREADS": "1"}, False),
}
_OMP_VARS = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT", "MKL_NUM_THREADS")


def _child_micro(frame_clip: str, weights: str, calls: int) -> None:
    """(in the variant's process) detector and tiny-GPEN times per call, one JSON line."""
    import importlib

    importlib.import_module("stream_gpen")  # (first, unless the variant imported torch already)
    import av
    import torch

    from stream_gpen.faces._detector import FaceDetector
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator

    with av.open(frame_clip) as c:
        frame = torch.from_numpy(next(c.decode(video=0)).to_ndarray(format="rgb24"))
    det = FaceDetector(weights=weights, device="cpu")
    gen = random_generator(TINY_CONFIG, seed=1).eval()
    faces = torch.randn(8, 3, 64, 64)

    def per_call(fn) -> tuple[float, float]:
        fn()  # (warm-up: first-call allocations)
        walls, cpus = [], []
        for _ in range(calls):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        return statistics.median(walls), statistics.median(cpus)

    with torch.inference_mode():
        out = {"threads": torch.get_num_threads(), "detect": per_call(lambda: det.detect([frame])),
               "gpen": per_call(lambda: gen(faces))}
    print(json.dumps(out))


def _env(extra: dict[str, str], home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _OMP_VARS}
    env.update(extra, STREAM_GPEN_HOME=home, STREAM_GPEN_OFFLINE="1", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return env


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[str, float, float]:
    """stdout, wall seconds and the child's user + system CPU seconds."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout, wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=5, help="timed calls per micro-benchmark and round")
    ap.add_argument("--clip", default="old_tv", help="a bench/_common.py clip name")
    ap.add_argument("--duration", default="1", help="seconds of the clip each enhance run restores")
    ap.add_argument("--busy", type=int, default=0, help="busy-looping processes beside the benchmark")
    ap.add_argument("--skip-enhance", action="store_true")
    ap.add_argument("--child-micro", nargs=3, metavar=("CLIP", "WEIGHTS", "CALLS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_micro:
        clip, weights, calls = args.child_micro
        return _child_micro(clip, weights, int(calls))

    clip = str(clip_paths([args.clip])[args.clip])
    weights = str(detector_weights())
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    rows: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            gpen = Path(tmp) / "gpen256_random.pth"
            subprocess.run([sys.executable, "-c", (
                "import sys, torch; from stream_gpen.models.gpen import random_generator; "
                "from stream_gpen.models.registry import MODELS; "
                "torch.save(random_generator(MODELS['gpen-bfr-256'].config, seed=0).state_dict(), sys.argv[1])"),
                str(gpen)], env=_env({}, tmp), check=True)
            print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start, {args.busy} busy loops")
            for r in range(args.rounds):
                order = list(VARIANTS)[r % len(VARIANTS):] + list(VARIANTS)[:r % len(VARIANTS)]
                for name in order:
                    extra, torch_first = VARIANTS[name]
                    env = _env(extra, tmp)
                    head = [sys.executable, "-c", ("import torch; " if torch_first else "")
                            + "import runpy, sys; sys.argv[0] = sys.argv[1]; del sys.argv[1]; "
                            "runpy.run_path(sys.argv[0], run_name='__main__')"]
                    out, _, _ = _timed([*head, __file__, "--child-micro", clip, weights, str(args.calls)], env)
                    micro = json.loads(out.strip().splitlines()[-1])
                    row = {"threads": micro["threads"], "det_wall": micro["detect"][0], "det_cpu": micro["detect"][1],
                           "gpen_wall": micro["gpen"][0], "gpen_cpu": micro["gpen"][1]}
                    if not args.skip_enhance:
                        cli = [sys.executable, "-c", ("import torch; " if torch_first else "")
                               + "import sys; from stream_gpen.cli import run; sys.argv[0] = 'stream-gpen'; sys.exit(run())"]
                        _, row["enh_wall"], row["enh_cpu"] = _timed(
                            [*cli, "enhance", clip, "-o", str(Path(tmp) / f"{name}.mp4"), "--device", "cpu", "--quiet",
                             "--model", str(gpen), "--detector-weights", weights, "--duration", args.duration,
                             "--overwrite"], env)
                    rows[name].append(row)
                    print(f"round {r + 1} {name:8s} " + " ".join(
                        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
            print(f"load average {os.getloadavg()[0]:.1f} at end")
    finally:
        for p in busy:
            p.kill()
            p.wait()

    print("\nratio of each variant to spin (old default), taken within a round: median [min-max]")
    for name in VARIANTS:
        if name == "spin":
            continue
        cells = []
        for key in rows[name][0]:
            if key == "threads":
                continue
            ratios = [mine[key] / old[key] for mine, old in zip(rows[name], rows["spin"])]
            cells.append(f"{key} {statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]")
        print(f"{name:8s} " + "  ".join(cells))


if __name__ == "__main__":
    main()
