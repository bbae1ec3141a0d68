"""Anti-aliased face crops (session 25): cost and shimmer, plain bilinear vs footprint average.

    python bench/crop_antialias.py [--shared ../shared] [--repeats 5] [--device cuda]

1. Cost of one crop (``warp_faces``, one thread) with ``antialias`` off and on, OpenCV and torch
   backends, at scales a GPEN-256/512 run meets (frame px per crop px: 1.22 = the 844x844 talking
   head into GPEN-512, 2.44 = it into GPEN-256, 3.0 = a 4K close-up). Rounds alternate.
   ``--device cuda``: the torch form only, on a CUDA frame, 16 faces a call (a full bucket),
   synchronised; no shimmer part.
2. Shimmer on real photos (the shared 4032x3024 and 2316x2316 selfies, their face found by the
   real RetinaFace MobileNet): the photo panned by fractions of a pixel (Lanczos), the crop
   following exactly; the mean change of the crop from frame to frame, which an ideal crop would
   not have, and the distance to the photo area-resized to the crop's scale first.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from _common import refuse_missing_cuda  # (bench/ is on the path: the script's own folder)
from stream_gpen.faces import estimate_affines, warp_faces
from stream_gpen.faces._align import face_scale


def _aff(scale: float, size: int, centre=(960, 540)) -> torch.Tensor:
    lin = np.eye(2) / scale
    t = np.array([size / 2, size / 2]) - lin @ np.array(centre)
    return torch.tensor(np.hstack([lin, t[:, None]]), dtype=torch.float32)[None]


def _crop(img: np.ndarray, aff: torch.Tensor, size: int, aa: bool, backend: str = "cv2") -> np.ndarray:
    out = warp_faces(torch.from_numpy(np.ascontiguousarray(img)), torch.zeros(1, dtype=torch.long), aff, size=size,
                     antialias=aa, backend=backend)
    return out[0].permute(1, 2, 0).numpy().astype(np.float64)


def cost_cuda(repeats: int) -> None:
    frame = torch.randint(0, 255, (1080, 1920, 3), dtype=torch.uint8, device="cuda")
    ids = torch.zeros(16, dtype=torch.long, device="cuda")
    print("| size | frame px / crop px | 16 faces, plain ms | antialiased ms |\n|---|---|---|---|")
    for size, scale in ((256, 2.44), (512, 1.22), (512, 2.0), (512, 3.0)):
        aff = _aff(scale, size).expand(16, 2, 3).contiguous().cuda()
        res: dict[bool, list[float]] = {}
        for aa in (False, True) * 3:
            warp_faces(frame, ids, aff, size=size, antialias=aa)
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(repeats):
                warp_faces(frame, ids, aff, size=size, antialias=aa)
            torch.cuda.synchronize()
            res.setdefault(aa, []).append((time.perf_counter() - t) / repeats * 1000)
        print(f"| {size} | {scale} | {min(res[False]):.3f} | {min(res[True]):.3f} |")


def cost(repeats: int) -> None:
    frame = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    print("| size | frame px / crop px | backend | plain ms | antialiased ms |\n|---|---|---|---|---|")
    for size, scale in ((256, 2.44), (512, 1.22), (512, 3.0)):
        for backend in ("cv2", "torch"):
            res: dict[bool, list[float]] = {}
            for aa in (False, True) * 3:
                t = time.perf_counter()
                for _ in range(repeats):
                    _crop(frame, _aff(scale, size), size, aa, backend)
                res.setdefault(aa, []).append((time.perf_counter() - t) / repeats * 1000)
            print(f"| {size} | {scale} | {backend} | {min(res[False]):.1f} | {min(res[True]):.1f} |")


def shimmer(shared: Path, size: int) -> None:
    from stream_gpen.faces._detector import FaceDetector

    weights = shared / "weights/detection_mobilenet0.25_Final.pth"
    det = FaceDetector(weights=weights, device="cpu")
    print(f"\n| photo (GPEN-{size}) | frame px / crop px | shimmer plain | antialiased | off area-resize plain | antialiased |")
    print("|---|---|---|---|---|---|")
    for name in ("gpen_selfie_20200320.101220.jpg", "gpen_selfie_2020-12-10_175750.jpg"):
        img = cv2.cvtColor(cv2.imread(str(shared / "data/faces/whole" / name)), cv2.COLOR_BGR2RGB)
        d = det.detect(torch.from_numpy(img))[0]
        a = estimate_affines(d.landmarks[:1].double(), size=size)[0].double()
        s = float(1 / face_scale(a[None])[0])
        f = 1 / s
        small = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        to_small = np.array([[f, 0, 0.5 * f - 0.5], [0, f, 0.5 * f - 0.5], [0, 0, 1]])
        a_small = (np.vstack([a.numpy(), [0, 0, 1]]) @ np.linalg.inv(to_small))[:2]
        ref = cv2.warpAffine(small, a_small, (size, size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
        row = {}
        for aa in (False, True):
            prev, diffs = None, []
            for t in range(6):
                dx, dy = 0.37 * t, 0.23 * t
                moved = cv2.warpAffine(img, np.float64([[1, 0, dx], [0, 1, dy]]), (img.shape[1], img.shape[0]),
                                       flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
                at = a.clone()
                at[:, 2] -= a[:, :2] @ torch.tensor([dx, dy], dtype=torch.float64)
                c = _crop(moved, at[None].float(), size, aa)
                if prev is not None:
                    diffs.append(np.abs(c - prev).mean())
                prev = c
            row[aa] = (np.mean(diffs), np.abs(_crop(img, a[None].float(), size, aa) - ref).mean())
        print(f"| {name} | {s:.2f} | {row[False][0]:.3f} | {row[True][0]:.3f} | {row[False][1]:.2f} | {row[True][1]:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("STREAM_GPEN_SHARED", "../shared")))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = ap.parse_args()
    refuse_missing_cuda(ap, args.device)
    if args.device == "cuda":
        cost_cuda(max(args.repeats, 20))
        return
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    cost(args.repeats)
    if (args.shared / "weights").is_dir():
        for size in (512, 256):
            shimmer(args.shared, size)


if __name__ == "__main__":
    main()
