"""Ours vs the naive per-frame loop the popular tools use, on the same clips, in one run.

The naive loop (written the way GPEN's/GFPGAN's scripts work): for every frame, run the detector
on the full frame, align each face with ``cv2.warpAffine``, restore each face alone (batch 1,
eager fp32), paste it back with a full-frame inverse warp and mask blend, and encode with OpenCV's
``VideoWriter``. Same GPEN config (random weights, same compute as the real checkpoint) and the
same RetinaFace MobileNet-0.25 weights for both contenders.

    python bench/naive.py [--size 256] [--clips talking_head,old_tv] [--max-frames 20]

Prints fps of both (median of ``--repeats`` alternated runs), the speed-up, the faces each
restored (a warning when they differ by more than 10%: then the two did different work), and
checks both outputs have the same frame count and size. The naive loop keeps the faces the
detector scores at least ours restores (``DEFAULT_MIN_SCORE``, GPEN's 0.9): at the detector's own
0.8 it restored 54 faces to our 39 on 6 frames of the crowd clip.

The naive loop runs in its own (spawned) process, as the popular tools do: our runner tunes the
CPU allocator process-wide (``FaceRunner(cpu_memory="keep")``), which must not leak into the
contender. Its GPEN runs the official per-sample-weight (grouped conv) form of the modulated
convolution by default (``--naive-form grouped``, what GPEN's own code runs); ``reference`` is our
batched form, ``fused`` our CPU form. The two processes never run at the same time.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clip_paths, count_frames, detector_weights, random_gpen, refuse_missing_cuda, trim  # noqa: E402


def _feather_mask(size: int) -> np.ndarray:
    # GPEN's rectangle mask: filled inner square, blurred twice (FACTS.md section 7).
    mask = np.zeros((size, size), np.float32)
    b = int(26 * size / 512)
    cv2.rectangle(mask, (b, b), (size - b, size - b), 1.0, -1, cv2.LINE_AA)
    k = 101 * size // 512 | 1
    mask = cv2.GaussianBlur(mask, (k, k), 4 * size / 512)
    return cv2.GaussianBlur(mask, (k, k), 4 * size / 512)


def naive_detector(device: str, det: Path):
    """The naive loop's RetinaFace: full resolution, and the score our runner needs to restore a
    face (``min_score``'s default), so both contenders restore the same faces."""
    from stream_gpen.faces import FaceDetector
    from stream_gpen.faces._detector import DEFAULT_MIN_SCORE

    return FaceDetector(backbone="mobilenet0.25", device=device, weights=det,
                        long_side=10_000, score_threshold=DEFAULT_MIN_SCORE)


def naive_enhance(src: Path, dst: Path, gen: torch.nn.Module, size: int, detector) -> tuple[int, int]:
    """Frames written and faces restored."""
    from stream_gpen.faces import reference_points

    ref = reference_points(size).numpy().astype(np.float32)
    mask = _feather_mask(size)[:, :, None]
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25
    writer = None
    n = faces = 0
    device = next(gen.parameters()).device
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        if writer is None:
            writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        rgb = torch.from_numpy(np.ascontiguousarray(frame[:, :, ::-1]))
        dets = detector.detect([rgb])[0]  # full-resolution detection, every frame
        out = frame.astype(np.float32)
        for lm in dets.landmarks.numpy():
            m, _ = cv2.estimateAffinePartial2D(lm.astype(np.float32), ref, method=cv2.LMEDS)
            crop = cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR)
            # (a round trip per face, as the popular scripts make it)
            x = torch.from_numpy(crop[:, :, ::-1].copy()).to(device).permute(2, 0, 1)[None].float() / 127.5 - 1
            with torch.no_grad():
                y = gen(x)
            face = ((y[0].permute(1, 2, 0).clamp(-1, 1) * 0.5 + 0.5) * 255).cpu().numpy().astype(np.uint8)[:, :, ::-1]
            inv = cv2.invertAffineTransform(m)
            face_full = cv2.warpAffine(face, inv, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32)
            mask_full = cv2.warpAffine(mask, inv, (w, h), flags=cv2.INTER_LINEAR)[:, :, None]
            out = out * (1 - mask_full) + face_full * mask_full
            faces += 1
        writer.write(np.clip(out, 0, 255).astype(np.uint8))
        n += 1
    cap.release()
    if writer is not None:
        writer.release()
    return n, faces


def _naive_worker(conn, size: int, device: str, form: str, cpu_memory: str, det: Path) -> None:
    """Child process: build the naive contender, then run ``(src, dst)`` requests until None."""
    torch.set_grad_enabled(False)
    if cpu_memory == "keep":
        from stream_gpen.runtime._cpu_memory import keep_freed_memory

        keep_freed_memory()
    from stream_gpen.models import gpen

    if form == "grouped":
        from gpen_forward import _grouped_forward

        gpen.ModulatedConv2d.forward = _grouped_forward
    gen = random_gpen(size, device)
    gen.impl = "fused" if form == "fused" else "reference"
    detector = naive_detector(device, det)
    while (request := conn.recv()) is not None:
        try:
            t0 = time.perf_counter()
            n, faces = naive_enhance(Path(request[0]), Path(request[1]), gen, size, detector)
            conn.send((True, (n, faces, time.perf_counter() - t0)))
        except Exception as exc:  # noqa: BLE001 - re-raised in the parent
            conn.send((False, f"{type(exc).__name__}: {exc}"))


class _Naive:
    def __init__(self, args, det: Path) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_naive_worker, daemon=True,
                                 args=(child, args.size, args.device, args.naive_form, args.naive_cpu_memory, det))
        self._proc.start()

    def run(self, src: Path, dst: Path) -> tuple[int, int, float]:
        """Frames, faces restored, seconds."""
        self._conn.send((str(src), str(dst)))
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"naive loop failed: {value}")
        return value

    def close(self) -> None:
        self._conn.send(None)
        self._proc.join(timeout=60)


def face_counts(ours: int, naive: int) -> str:
    """The faces each contender restored, side by side; a warning when they differ by more than
    10% (the fps then compare different work)."""
    line = f"faces ours {ours}, naive {naive}"
    if abs(ours - naive) > 0.1 * max(ours, naive):
        line += "  WARNING: the face counts differ by more than 10%: the speed-up compares different work"
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, choices=[256, 512])
    ap.add_argument("--clips", default="talking_head,old_tv")
    ap.add_argument("--max-frames", type=int, default=20, help="frames per clip (0 = whole clip)")
    ap.add_argument("--batch-size", type=int, default=4, help="ours: faces per GPEN call")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of each contender per clip, alternated; medians are compared")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true", help="ours with torch.compile (warm-up time reported apart)")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                    help="ours: auto = bf16 on CPUs with bf16 instructions, else fp32 (the naive loop is fp32)")
    ap.add_argument("--naive-form", choices=["grouped", "reference", "fused"], default="grouped",
                    help="the naive loop's modulated conv: grouped = GPEN's official form (default)")
    ap.add_argument("--naive-cpu-memory", choices=["system", "keep"], default="system",
                    help="the naive process's allocator (default: untouched, as in the popular tools)")
    args = ap.parse_args()
    refuse_missing_cuda(ap, args.device)
    sources = clip_paths(["talking_head", *args.clips.split(",")])  # (talking_head: the warm-up's)
    det = detector_weights()
    torch.set_grad_enabled(False)

    from stream_gpen import Enhancer

    import os

    naive = _Naive(args, det)  # spawned before our runner exists, so it inherits nothing from it
    gen = random_gpen(args.size)  # (on the CPU, as a checkpoint loads: the runner moves its fp16 copy)
    enh = Enhancer(gen, device=args.device, detector="mobilenet0.25", detector_weights=det,
                   batch_size=args.batch_size, compile=args.compile, precision=args.precision)
    print(f"GPEN-{args.size} (random weights) on {args.device}, torch threads {torch.get_num_threads()}, "
          f"ours compile={args.compile} batch {args.batch_size} precision {enh.precision} (impl {gen.impl}); "
          f"naive fp32, form {args.naive_form}, "
          f"naive cpu-memory {args.naive_cpu_memory}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'clip':14} {'frames':>6} {'ours fps':>9} {'naive fps':>10} {'speed-up':>9} {'s/frame ours':>13} {'naive':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # Warm-up outside the timings: first-call costs (oneDNN primitive caches, compile) are paid
        # once per process by both contenders.
        warm = trim(sources["talking_head"], tmp / "warm_in.mp4", 5)
        t0 = time.perf_counter()
        enh.enhance_file(warm, tmp / "warm_ours.mp4")
        naive.run(warm, tmp / "warm_naive.mp4")
        print(f"warm-up (both, 5 frames): {time.perf_counter() - t0:.1f} s")
        for name in args.clips.split(","):
            src = trim(sources[name], tmp / f"{name}_in.mp4", args.max_frames or None)
            # Alternate the contenders --repeats times and compare medians: on a shared CPU one
            # run of each can land in a quiet and a busy spell (single-run ratios were 0.8-5.8x).
            times_ours, times_naive = [], []
            for i in range(args.repeats):
                order = ("ours", "naive") if i % 2 == 0 else ("naive", "ours")
                ours_out, naive_out = tmp / f"{name}_ours_{i}.mp4", tmp / f"{name}_naive_{i}.mp4"
                for who in order:
                    t0 = time.perf_counter()
                    if who == "ours":
                        s = enh.enhance_file(src, ours_out, preset="veryfast")
                        times_ours.append(time.perf_counter() - t0)
                    else:
                        n_naive, faces_naive, t = naive.run(src, naive_out)
                        times_naive.append(t)
            t_ours, t_naive = statistics.median(times_ours), statistics.median(times_naive)
            n_ours = count_frames(ours_out)
            assert n_ours == n_naive == s.frames_out, (n_ours, n_naive, s.frames_out)
            c1, c2 = cv2.VideoCapture(str(ours_out)), cv2.VideoCapture(str(naive_out))
            size_ours = (int(c1.get(cv2.CAP_PROP_FRAME_WIDTH)), int(c1.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            size_naive = (int(c2.get(cv2.CAP_PROP_FRAME_WIDTH)), int(c2.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            assert size_ours == size_naive, (size_ours, size_naive)
            f_ours, f_naive = n_ours / t_ours, n_naive / t_naive
            pair = sorted(tn / to for to, tn in zip(times_ours, times_naive))
            print(f"{name:14} {n_ours:6d} {f_ours:9.3f} {f_naive:10.3f} {f_ours / f_naive:8.2f}x "
                  f"{t_ours / n_ours:13.3f} {t_naive / n_naive:7.3f}   (median of {args.repeats}; "
                  f"per-pair ratios {', '.join(f'{r:.2f}' for r in pair)})")
            print(f"{'':14} {face_counts(s.faces_restored, faces_naive)}")
            print(f"{'':14} ours: detector calls {s.detector_calls}, stages "
                  + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(s.stage_seconds.items()))
                  + f"; load average {os.getloadavg()[0]:.1f}", flush=True)
    naive.close()


if __name__ == "__main__":
    main()
