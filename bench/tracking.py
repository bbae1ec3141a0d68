"""Tracker benchmark on the real clips: detector calls/frame, recall, jitter ratio, offset.

    .venv/bin/python bench/tracking.py [--clips DIR] [--weights PTH] [--max-frames N]
                                       [--configs flow:5:0.3 none:5:off ...] [--long-side 640]

Per clip, per-frame detection (every frame, same detector and settings) is the reference; the
tracker is fed exactly those detections on the frames where it asks for one, so its detector
calls are counted without running the network twice. Metrics:

* calls/frame: frames where ``needs_detection`` was true / frames.
* recall: reference faces (score >= 0.8, box side >= 48 px) covered by a tracker track (IoU >= 0.3).
* jitter: mean |second difference| of the 5 points, per face chain over consecutive frames, in
  template pixels (S=256, divided by each face's scale); the ratio is tracker / per-frame detection
  over the same matched frames.
* offset: mean distance tracker point <-> reference point, / inter-ocular distance (reference);
  mean and median over matched faces (profile faces have a tiny inter-ocular distance, which
  inflates the mean).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stream_gpen.faces import FaceDetector, FaceTracker  # noqa: E402
from stream_gpen.faces._tracker import _REF, _iou, _similarity  # noqa: E402

SHARED = REPO.parent / "shared"


def frames_of(path: Path, max_frames: int | None, stride: int):
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        n = 0
        for i, f in enumerate(c.decode(s)):
            if i % stride:
                continue
            yield torch.from_numpy(f.to_ndarray(format="rgb24"))
            n += 1
            if max_frames and n >= max_frames:
                return


def scale_of(p: np.ndarray) -> float:
    a = _similarity(p, _REF)
    return math.hypot(a[0, 0], a[1, 0])


def chain_jitter(seqs: dict) -> tuple[float, int]:
    """seqs: key -> list of (frame, points) with consecutive frames; mean |2nd diff| in template px."""
    vals = []
    for items in seqs.values():
        items.sort(key=lambda x: x[0])
        for (f0, p0), (f1, p1), (f2, p2) in zip(items, items[1:], items[2:]):
            if f1 != f0 + 1 or f2 != f1 + 1:
                continue
            acc = np.linalg.norm(p2 - 2 * p1 + p0, axis=1).mean() * scale_of(p1)
            vals.append(acc)
    return (float(np.mean(vals)) if vals else float("nan")), len(vals)


def run_clip(path, det, configs, args):
    # Reference: per-frame detection on every (sub-sampled) frame, batched.
    refs, batch = [], []
    t0 = time.perf_counter()
    for fr in frames_of(path, args.max_frames, args.stride):
        batch.append(fr)
        if len(batch) == 8:
            refs += det.detect(batch)
            batch = []
    if batch:
        refs += det.detect(batch)
    t_det = time.perf_counter() - t0
    n = len(refs)
    good = []
    for d in refs:
        side = torch.minimum(d.boxes[:, 2] - d.boxes[:, 0], d.boxes[:, 3] - d.boxes[:, 1])
        good.append(((d.scores >= 0.8) & (side >= 48)).numpy())
    rows = []
    for name, kw in configs:
        tr = FaceTracker(**kw)
        calls = 0
        covered = total = 0
        tr_seq: dict = {}
        ref_seq: dict = {}
        offs = []
        faces_out = 0
        t1 = time.perf_counter()
        for i, fr in enumerate(frames_of(path, args.max_frames, args.stride)):
            need = tr.needs_detection(i, fr)
            calls += need
            tracks = tr.update(i, refs[i] if need else None, frame=fr)
            faces_out += len(tracks)
            d = refs[i]
            gb = d.boxes.numpy()[good[i]]
            gl = d.landmarks.numpy()[good[i]]
            total += len(gb)
            if not len(gb) or not tracks:
                continue
            iou = _iou(gb.astype(np.float64), np.stack([t.box.numpy() for t in tracks]).astype(np.float64))
            for j in range(len(gb)):
                k = int(iou[j].argmax())
                if iou[j, k] < 0.3:
                    continue
                covered += 1
                tp = tracks[k].landmarks.numpy().astype(np.float64)
                rp = gl[j].astype(np.float64)
                iod = np.linalg.norm(rp[0] - rp[1])
                offs.append(np.linalg.norm(tp - rp, axis=1).mean() / max(iod, 1e-6))
                # same face, same frames for both sequences: key by track id
                tr_seq.setdefault(tracks[k].id, []).append((i, tp))
                ref_seq.setdefault(tracks[k].id, []).append((i, rp))
        t_tr = time.perf_counter() - t1
        jt, nj = chain_jitter(tr_seq)
        jr, _ = chain_jitter(ref_seq)
        rows.append(dict(
            config=name, frames=n, calls=calls / max(n, 1), recall=covered / total if total else float("nan"),
            ref_faces=total, jitter_tr=jt, jitter_ref=jr, jitter_ratio=jt / jr if jr > 0 else float("nan"),
            offset=float(np.mean(offs)) if offs else float("nan"),
            offset_med=float(np.median(offs)) if offs else float("nan"), cuts=tr.scene_cuts, faces_out=faces_out,
            tracker_s=t_tr,
        ))
    return rows, t_det


def parse_config(s: str):
    parts = s.split(":")
    motion, k, sm = parts[:3]
    kw = dict(motion=motion, detect_every=int(k), smoothing=None if sm == "off" else float(sm))
    if len(parts) > 3:
        kw["beta"] = float(parts[3])
    if len(parts) > 4:
        kw["correction"] = float(parts[4])
    return s, kw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=SHARED / "data" / "videos")
    ap.add_argument("--weights", type=Path, default=SHARED / "weights" / "detection_mobilenet0.25_Final.pth")
    ap.add_argument("--max-frames", type=int, default=None, help="frames per clip (after stride)")
    ap.add_argument("--stride", type=int, default=1, help="use every n-th frame (changes motion per frame!)")
    ap.add_argument("--long-side", type=int, default=640)
    ap.add_argument("--only", default="", help="substring filter on clip names")
    ap.add_argument(
        "--configs", nargs="+",
        default=["none:5:off", "flow:5:off", "flow:5:0.02:0.1:1", "flow:5:0.02:0.1:0.5", "flow:3:0.02:0.1:0.5", "flow:8:0.02:0.1:0.5"],
        help="motion:detect_every:smoothing(min_cutoff|off)[:beta[:correction]]",
    )
    args = ap.parse_args()
    torch.set_num_threads(2)
    det = FaceDetector(backbone="mobilenet0.25", device="cpu", weights=args.weights, long_side=args.long_side)
    configs = [parse_config(c) for c in args.configs]
    print(f"detector: {det!r}; max_frames={args.max_frames} stride={args.stride}; busy shared 2-core CPU")
    hdr = f"{'clip':44s} {'config':12s} {'frames':>6s} {'calls/f':>7s} {'recall':>7s} {'jit tr':>7s} {'jit det':>7s} {'ratio':>6s} {'offset':>7s} {'off med':>7s} {'cuts':>4s}"
    print(hdr)
    for path in sorted(args.clips.glob("*.mp4")):
        if args.only and args.only not in path.name:
            continue
        rows, t_det = run_clip(path, det, configs, args)
        for r in rows:
            print(
                f"{path.stem[:44]:44s} {r['config']:12s} {r['frames']:6d} {r['calls']:7.3f} {r['recall']:7.2%} "
                f"{r['jitter_tr']:7.3f} {r['jitter_ref']:7.3f} {r['jitter_ratio']:6.2f} {r['offset']:7.2%} {r['offset_med']:7.2%} {r['cuts']:4d}"
                f"   (faces out {r['faces_out']}, ref faces {r['ref_faces']}, tracker {r['tracker_s']:.1f}s)"
            )
        print(f"  per-frame detection: {t_det:.1f}s for {rows[0]['frames']} frames", flush=True)


if __name__ == "__main__":
    main()
