"""The detector's fixed-shape mode (``FaceDetector(fixed_shapes=...)``) against region windows.

A region detection (the tracker's re-detect after a miss, the change-watch probes) runs the
network either on a window around the region, whose size follows the faces, or on the whole
frame at the same scale (fixed shapes, the CUDA default since session 16). On a GPU every new
input shape pays cuDNN's per-shape setup: on an H200 the first pass over the 1080p crowd clip took
45 s, the second 4 s. This runs each clip through the whole face pipeline (detection, tracking,
smoothing; an identity restorer, so no face model) once per mode and prints, side by side:
faces restored, detector calls, distinct network input shapes, frames whose face count changed
from the previous frame ("switches"), frames where the two modes' face counts differ, and the wall
time of the pass (on a GPU: the first pass, setup included).

    python bench/detector_shapes.py                          # CPU: every shared clip, 150 frames
    python bench/detector_shapes.py --device cuda --clips crowd_1080p --max-frames 60

Each mode runs in its own process (a fresh cuDNN cache), the window mode first.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CLIPS, clip_paths, detector_weights, refuse_missing_cuda, trim  # noqa: E402


def one(clip: str, fixed: bool, device: str, max_frames: int) -> dict:
    """One pass of ``clip`` in this process: the numbers above, and the per-frame face counts."""
    import torch

    import stream_gpen.pipeline as pipeline
    from e2e import IdentityRestorer
    from stream_gpen import Enhancer

    torch.set_grad_enabled(False)
    per_frame: dict[int, int] = {}
    planned = pipeline.FaceStage._planned

    def spy_planned(self, index, tracks):
        per_frame[index] = len(tracks)
        return planned(self, index, tracks)

    pipeline.FaceStage._planned = spy_planned
    enh = Enhancer(IdentityRestorer(512, device), device=device, download=False, detector="mobilenet0.25",
                   detector_weights=detector_weights())
    enh.detector.fixed_shapes = fixed
    shapes = set()
    forward = enh.detector.net.forward

    def spy_forward(x, *a, **k):
        shapes.add(tuple(x.shape))
        return forward(x, *a, **k)

    enh.detector.net.forward = spy_forward
    with tempfile.TemporaryDirectory() as tmp:
        src = trim(clip_paths([clip])[clip], Path(tmp) / "clip.mp4", max_frames)
        t0 = time.perf_counter()
        s = enh.enhance_file(src, Path(tmp) / "out.mp4", overwrite=True)
        seconds = time.perf_counter() - t0
    counts = [per_frame.get(i, 0) for i in range(s.frames_out)]
    return {"faces": s.faces_restored, "detector_calls": s.detector_calls, "shapes": len(shapes),
            "switches": sum(a != b for a, b in zip(counts, counts[1:])), "seconds": seconds, "counts": counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clips", default=",".join(CLIPS), help=f"comma list of {','.join(CLIPS)}")
    ap.add_argument("--max-frames", type=int, default=150)
    ap.add_argument("--one", choices=("window", "fixed"), help=argparse.SUPPRESS)  # a child process's pass
    args = ap.parse_args()
    refuse_missing_cuda(ap, args.device)
    clips = args.clips.split(",")
    clip_paths(clips), detector_weights()  # (each checked before the first child process)
    if args.one:
        print(json.dumps(one(clips[0], args.one == "fixed", args.device, args.max_frames)))
        return
    print(f"{args.max_frames} frames per clip on {args.device}; each mode in its own process")
    print(f"{'clip':13} {'mode':6} {'faces':>6} {'det':>5} {'shapes':>6} {'switches':>8} {'seconds':>8}")
    for clip in clips:
        runs = {}
        for mode in ("window", "fixed"):
            out = subprocess.run([sys.executable, __file__, "--one", mode, "--clips", clip, "--device", args.device,
                                  "--max-frames", str(args.max_frames)], capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"{clip} {mode} failed:\n{out.stderr[-2000:]}")
            runs[mode] = r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{clip:13} {mode:6} {r['faces']:6d} {r['detector_calls']:5d} {r['shapes']:6d} {r['switches']:8d} "
                  f"{r['seconds']:8.2f}", flush=True)
        differ = sum(a != b for a, b in zip(runs["window"]["counts"], runs["fixed"]["counts"]))
        print(f"{clip:13} frames whose face count differs between the modes: {differ}", flush=True)


if __name__ == "__main__":
    main()
