"""Tracker benchmark on the real clips: detector calls/frame, recall, jitter ratio, offset.

    .venv/bin/python bench/tracking.py [--clips DIR] [--weights PTH] [--max-frames N] [--only a,b]
                                       [--configs default offline "offline;lag=3" "lag=5;settle=1.0;smooth_sigma=2" ...]
                                       [--long-side 640] [--cache DIR]
                                       [--detector-resize auto|float|uint8]

Whole clips by default (``--max-frames`` 0 or absent). Per-frame detections are cached in
``--cache`` (``/tmp/stream_gpen_tracking_cache``), so after the first run only the tracker runs
and settings can be iterated in seconds per clip.

Per clip, per-frame detection (every frame, same detector and settings) is the reference; the
tracker is fed exactly those detections on the frames where it asks for one, so its detector
calls are counted without running the network twice. Metrics:

* calls/frame: frames where ``needs_detection`` was true / frames (periodic, recovery and
  change-watch probe detections). Probes usually look at a region only: the row's note gives
  probes/frame and the detector work per frame in whole-frame units (a probe counts its region's
  share of the frame).
* recall: reference faces (score >= 0.8, box side >= 48 px) covered by a tracker track (IoU >= 0.3).
* jitter: mean |second difference| of the 5 points, per face chain over consecutive frames, in
  template pixels (S=256, divided by each face's scale); the ratio is tracker / per-frame detection
  over the same matched frames.
* offset: mean distance tracker point <-> reference point, / inter-ocular distance (reference);
  mean and median over matched faces (profile faces have a tiny inter-ocular distance, which
  inflates the mean).
* ``offline`` (and ``lag=N`` in a ``key=value`` config): the tracker followed by the fixed-lag
  smoother (:class:`stream_gpen.faces.FixedLagSmoother`), as the pipeline runs files; the metrics
  are taken on the smoother's released tracks, frame by frame as for the tracker.
* ``floor:SIGMA``: not a tracker but the per-frame detections smoothed non-causally (Gaussian,
  SIGMA frames): the offset a smoother with look-ahead reaches at that jitter. It shows how much
  of the offset is the reference's own noise and real motion, i.e. what no causal tracker beats.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream_gpen.faces import Detections, FaceDetector, FaceTracker  # noqa: E402
from stream_gpen.faces._smoother import FixedLagSmoother  # noqa: E402
from stream_gpen.faces._tracker import _REF, _iou, _similarity  # noqa: E402
from _common import SHARED  # noqa: E402  ($STREAM_GPEN_SHARED, else ../shared, as every benchmark)


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


def _cache_file(path: Path, det, args) -> Path | None:
    """Per-frame detections are the slow part on CPU; cache them on disk, keyed on everything that
    changes them (clip bytes identity, weights, detector settings, frame selection)."""
    if not args.cache:
        return None
    st, wst = path.stat(), Path(det.weights).stat()
    key = "|".join(map(str, [
        path.resolve(), st.st_size, st.st_mtime_ns, Path(det.weights).resolve(), wst.st_size, det.backbone,
        det.long_side, det.score_threshold, det.nms_threshold, args.max_frames or 0, args.stride,
    ] + (["input=uint8"] if det.resize_uint8 else [])))  # (float-input keys as before: old caches stay valid)
    return Path(args.cache) / f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def reference_detections(path: Path, det, args) -> tuple[list[Detections], float]:
    """Per-frame detection on every (sub-sampled) frame, batched; from the cache when present."""
    cf = _cache_file(path, det, args)
    if cf is not None and cf.is_file():
        z = np.load(cf)
        splits = np.cumsum(z["counts"])[:-1]
        refs = [
            Detections(torch.from_numpy(b), torch.from_numpy(l), torch.from_numpy(s))
            for b, l, s in zip(np.split(z["boxes"], splits), np.split(z["landmarks"], splits), np.split(z["scores"], splits))
        ]
        return refs, float(z["seconds"])
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
    if cf is not None:
        cf.parent.mkdir(parents=True, exist_ok=True)
        tmp = cf.with_suffix(".tmp.npz")
        np.savez(
            tmp, counts=np.array([len(d) for d in refs], dtype=np.int64),
            boxes=np.concatenate([d.boxes.numpy() for d in refs]).reshape(-1, 4).astype(np.float32),
            landmarks=np.concatenate([d.landmarks.numpy() for d in refs]).reshape(-1, 5, 2).astype(np.float32),
            scores=np.concatenate([d.scores.numpy() for d in refs]).reshape(-1).astype(np.float32),
            seconds=t_det,
        )
        tmp.replace(cf)
    return refs, t_det


def run_clip(path, det, configs, args):
    refs, t_det = reference_detections(path, det, args)
    n = len(refs)
    good = []
    for d in refs:
        side = torch.minimum(d.boxes[:, 2] - d.boxes[:, 0], d.boxes[:, 3] - d.boxes[:, 1])
        good.append(((d.scores >= 0.8) & (side >= 48)).numpy())
    rows = []
    for name, kw in configs:
        kw = dict(kw)
        floor = kw.pop("_floor", None)
        private = {k: kw.pop(k) for k in list(kw) if k.startswith("_")}  # experiment-only internals
        smooth = {k[len("smooth_"):]: kw.pop(k) for k in list(kw) if k.startswith("smooth_")}
        lag = kw.pop("lag", 0)
        tr = FaceTracker(**kw)
        for k, v in private.items():
            setattr(tr, k, v)
        sm_attrs = {k: smooth.pop(k) for k in list(smooth) if k.isupper()}  # class constants, experiments only
        sm = FixedLagSmoother(lag=lag, **smooth) if lag else None
        for k, v in sm_attrs.items():
            setattr(sm, k, v)
        calls = 0
        covered = total = 0
        tr_seq: dict = {}
        ref_seq: dict = {}
        offs = []
        faces_out = 0
        t1 = time.perf_counter()
        outs: list = [None] * n
        cuts_seen = 0
        for i, fr in enumerate(frames_of(path, args.max_frames, args.stride)):
            need = tr.needs_detection(i, fr)
            calls += need
            d = refs[i] if need else None
            if need and tr.probe_region is not None:
                # a region probe: the detector sees only that part of the frame
                x1, y1, x2, y2 = tr.probe_region
                c = (d.boxes[:, :2] + d.boxes[:, 2:]) / 2
                d = d.select(torch.nonzero((c[:, 0] >= x1) & (c[:, 0] <= x2) & (c[:, 1] >= y1) & (c[:, 1] <= y2)).flatten())
            tracks = tr.update(i, d, frame=fr)
            if sm is None:
                outs[i] = tracks
                continue
            cut = tr.scene_cuts > cuts_seen
            cuts_seen = tr.scene_cuts
            for j, tj in sm.push(i, tracks, cut=cut):
                outs[j] = tj
        if sm is not None:
            for j, tj in sm.flush():
                outs[j] = tj
        for i, tracks in enumerate(outs):
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
        if floor is not None:
            tr_seq, offs = floor_offsets(tr_seq, ref_seq, floor)
        jt, nj = chain_jitter(tr_seq)
        jr, _ = chain_jitter(ref_seq)
        rows.append(dict(
            config=name, frames=n, calls=calls / max(n, 1), recall=covered / total if total else float("nan"),
            ref_faces=total, jitter_tr=jt, jitter_ref=jr, jitter_ratio=jt / jr if jr > 0 else float("nan"),
            offset=float(np.mean(offs)) if offs else float("nan"),
            offset_med=float(np.median(offs)) if offs else float("nan"), cuts=tr.scene_cuts, faces_out=faces_out,
            tracker_s=t_tr, probes=tr.probes / max(n, 1),
            # detector work in whole-frame units: region probes cost their share of the pixels
            work=(calls - tr.probes + tr.probe_area) / max(n, 1),
        ))
    return rows, t_det


def _value(v: str):
    import ast

    try:
        return ast.literal_eval(v)
    except (ValueError, SyntaxError):
        return v  # a bare word: a Literal option such as filter=one_euro


def parse_config(s: str):
    """``default`` | ``offline[;key=value...]`` (the pipeline's file setting: tracker + fixed-lag
    smoother) | ``key=value;key=value`` (FaceTracker options; ``lag=N`` adds a
    :class:`FixedLagSmoother`, ``smooth_<option>=v`` sets its options) | ``floor:SIGMA`` (see
    :func:`floor_offsets`) | legacy ``motion:detect_every:smoothing(min_cutoff|off)[:beta[:correction]]``
    (the One-Euro filter of the first version)."""
    if s == "default":
        return s, {}
    if s.startswith("offline"):
        # what the pipeline runs on files: the smoother's default look-ahead and tracker options,
        # plus any overrides: offline;key=value;...
        from stream_gpen.faces._smoother import DEFAULT_LAG, TRACKER_OPTIONS

        kw = dict(TRACKER_OPTIONS, lag=DEFAULT_LAG)
        if ";" in s:
            kw.update({k: _value(v) for k, v in (kv.split("=", 1) for kv in s.split(";")[1:])})
        return s, kw
    if s.startswith("floor"):
        return s, dict(detect_every=1, smoothing=None, correction=1.0, _floor=float(s.split(":")[1]) if ":" in s else 3.0)
    if "=" in s:
        return s, {k: _value(v) for k, v in (kv.split("=", 1) for kv in s.split(";"))}
    parts = s.split(":")
    motion, k, sm = parts[:3]
    kw = dict(filter="one_euro", motion=motion, detect_every=int(k), smoothing=None if sm == "off" else float(sm))
    if len(parts) > 3:
        kw["beta"] = float(parts[3])
    if len(parts) > 4:
        kw["correction"] = float(parts[4])
    return s, kw


def floor_offsets(tr_seq: dict, ref_seq: dict, sigma: float) -> tuple[dict, list]:
    """The offset metric's noise floor: per-frame detections smoothed *non-causally* (Gaussian,
    ``sigma`` frames, over pose and shape parameters of each face's consecutive frames). No
    causal tracker can be expected to beat this track's distance to the raw detections by much:
    what remains is mostly the detector's own frame-to-frame landmark noise."""
    from stream_gpen.faces._tracker import _compose, _pose

    out, offs = {}, []
    for key, items in ref_seq.items():
        items = sorted(items, key=lambda x: x[0])
        segs, cur = [], [items[0]]
        for it in items[1:]:
            if it[0] == cur[-1][0] + 1:
                cur.append(it)
            else:
                segs.append(cur)
                cur = [it]
        segs.append(cur)
        res = []
        for seg in segs:
            qs = [_pose(p) for _, p in seg]
            q = np.array([a for a, _ in qs])
            q[:, 3] = np.unwrap(q[:, 3])
            r = np.array([b for _, b in qs])
            n = len(seg)
            idx = np.arange(n)
            w = np.exp(-0.5 * ((idx[:, None] - idx[None, :]) / sigma) ** 2)
            w /= w.sum(1, keepdims=True)
            qs_, rs_ = w @ q, w @ r
            for (f, rp), qq, rr in zip(seg, qs_, rs_):
                sp = _compose(qq, rr)
                res.append((f, sp))
                iod = np.linalg.norm(rp[0] - rp[1])
                offs.append(np.linalg.norm(sp - rp, axis=1).mean() / max(iod, 1e-6))
        out[key] = res
    return out, offs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=SHARED / "data" / "videos")
    ap.add_argument("--weights", type=Path, default=SHARED / "weights" / "detection_mobilenet0.25_Final.pth")
    ap.add_argument("--max-frames", type=int, default=None, help="frames per clip (after stride); 0 or absent = the whole clip")
    ap.add_argument("--stride", type=int, default=1, help="use every n-th frame (changes motion per frame!)")
    ap.add_argument("--long-side", type=int, default=640)
    ap.add_argument("--detector-resize", default="auto", choices=["auto", "float", "uint8"],
                    help="FaceDetector resize: auto = uint8 on this CPU, as the pipeline runs")
    ap.add_argument("--cache", default="/tmp/stream_gpen_tracking_cache",
                    help="folder for cached per-frame detections ('' = no cache)")
    ap.add_argument("--only", default="", help="comma-separated substrings of clip names to run")
    ap.add_argument(
        "--configs", nargs="+",
        default=[
            "default", "offline", "offline;smooth_drift=keep", "offline;lag=3", "offline;lag=8", "lag=5",
            "floor:1.5", "floor:2", "flow:5:0.02:0.1:0.5", "process_noise=0.4;expression_noise=0.5",
            "process_noise=1.0;expression_noise=1.0", "landmark_flow=0.0", "settle=0.15;velocity_smoothing=0.3",
            "detect_every=4", "detect_every=3", "detect_every=8",
        ],
        help="'default' | key=value;... (FaceTracker options) | floor:SIGMA (smoothed per-frame detection, "
        "the offset floor) | legacy motion:detect_every:smoothing(min_cutoff|off)[:beta[:correction]] (One-Euro)",
    )
    args = ap.parse_args()
    torch.set_num_threads(2)
    det = FaceDetector(backbone="mobilenet0.25", device="cpu", weights=args.weights, long_side=args.long_side,
                       resize=args.detector_resize)
    configs = [parse_config(c) for c in args.configs]
    print(f"detector: {det!r}; max_frames={args.max_frames} stride={args.stride}; busy shared 2-core CPU")
    hdr = f"{'clip':24s} {'frames':>6s} {'calls/f':>7s} {'recall':>7s} {'jit tr':>7s} {'jit det':>7s} {'ratio':>6s} {'offset':>7s} {'off med':>7s} {'cuts':>4s}  config"
    print(hdr)
    for path in sorted(args.clips.glob("*.mp4")):
        if args.only and not any(o in path.name for o in args.only.split(",")):
            continue
        rows, t_det = run_clip(path, det, configs, args)
        for r in rows:
            print(
                f"{path.stem[:24]:24s} {r['frames']:6d} {r['calls']:7.3f} {r['recall']:7.2%} "
                f"{r['jitter_tr']:7.3f} {r['jitter_ref']:7.3f} {r['jitter_ratio']:6.2f} {r['offset']:7.2%} {r['offset_med']:7.2%} {r['cuts']:4d}  {r['config']}"
                f"   (faces out {r['faces_out']}, ref faces {r['ref_faces']}, probes/f {r['probes']:.3f}, detector work/f {r['work']:.3f}, tracker {r['tracker_s']:.1f}s)"
            )
        print(f"  per-frame detection: {t_det:.1f}s for {rows[0]['frames']} frames", flush=True)


if __name__ == "__main__":
    main()
