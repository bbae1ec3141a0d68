#!/usr/bin/env python3
"""The classic enhancer's crop size vs filter size on 512 px faces (docs/classic.md, "Face size").

Side by side in one run, per face: the old CPU default (the 512 crop shrunk to 256, restored,
enlarged back: what a 256 crop does to a 512 px face), the CPU default (512 crop, filters at 256,
``work_size=256``) and the filters at the crop's own size (``work_size=None``, the CUDA default).
Prints PSNR gain against the clean crop, the share of the input's Laplacian variance kept (fine
detail) and wall-clock ms per face. Faces: ``gpen_ffhq_00001``, ``gpen_ffhq_00002`` (1024 -> 512,
area) and ``gfpgan_crop_Adele`` (512); ``_FINE_SHRINK`` was chosen on them.

``--paste`` (session 33) measures the paste-back instead: each face (512 px, its frame padded by
64 px) is cut from the frame tilted 7 degrees, as a face with its head tilted is, restored with
the CPU default, and pasted back both ways: the whole restored crop warped back (what GPEN gets)
and only the change added to the frame (``paste_faces(originals=...)``, what ``classic`` gets).
PSNR and detail kept are over the face (the frame's central 384 px), against the clean frame and
the degraded one; "changes nothing" is a restorer that gives its crop back.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import classic_eval as ce  # noqa: E402

FACES = ("gpen_ffhq_00001.png", "gpen_ffhq_00002.png", "gfpgan_crop_Adele.png")


def detail(rgb: np.ndarray) -> float:
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(y, cv2.CV_64F).var())


DEGRADATIONS = {"clean": lambda a: a, "noise σ12": ce.noise, "JPEG q20": ce.jpeg, "blur σ2": ce.blur}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Faces from the shared data (STREAM_GPEN_SHARED or ../shared); "
                                        "prints a Markdown table.")
    ap.add_argument("--paste", action="store_true", help="measure the paste-back, plain vs residual (module doc)")
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    aligned = ce.shared_dir() / "data" / "faces" / "aligned"
    refs = [cv2.resize(cv2.cvtColor(cv2.imread(str(aligned / n)), cv2.COLOR_BGR2RGB), (512, 512),
                       interpolation=cv2.INTER_AREA) for n in FACES]
    return paste_table(refs) if args.paste else work_size_table(refs)


def work_size_table(refs: list[np.ndarray]) -> int:
    from stream_gpen.models.classic import ClassicRestorer

    r256, work, full = ClassicRestorer(size=256), ClassicRestorer(size=512, work_size=256), ClassicRestorer(size=512)

    def round_trip(x):
        small = F.interpolate(x.float(), size=(256, 256), mode="area").round_().to(torch.uint8)
        return F.interpolate(r256(small).float(), size=(512, 512), mode="bilinear",
                             align_corners=False).round_().clamp_(0, 255).to(torch.uint8)

    ways = {"256 round trip (old CPU default)": round_trip, "work_size=256 (CPU default)": work,
            "work_size=None (CUDA default)": full}
    degs = DEGRADATIONS
    ms = {k: 0.0 for k in ways}
    rows = []
    for dname, fn in degs.items():
        row = {}
        for k, way in ways.items():
            gains, kept = [], []
            for ref in refs:
                deg = fn(ref)
                x = torch.from_numpy(deg).permute(2, 0, 1)[None].contiguous()
                t0 = time.perf_counter()
                out = way(x)[0].permute(1, 2, 0).numpy()
                ms[k] += (time.perf_counter() - t0) * 1000
                gains.append(ce.psnr(out, ref) - (ce.psnr(deg, ref) if dname != "clean" else 0.0))
                kept.append(detail(out) / detail(deg))
            row[k] = (np.mean(gains), np.mean(kept))
        rows.append((dname, row))
    n = len(degs) * len(refs)
    print("| input (512 px faces) | " + " | ".join(ways) + " |")
    print("|---|" + "---:|" * len(ways))
    for dname, row in rows:
        label = "clean: PSNR / detail kept" if dname == "clean" else f"{dname}: gain / detail kept"
        print(f"| {label} | " + " | ".join(f"{g:+.2f} dB / {100 * d:.0f}%" if dname != "clean" else
                                           f"{g:.2f} dB / {100 * d:.0f}%" for g, d in row.values()) + " |")
    print("| ms per face | " + " | ".join(f"{ms[k] / n:.0f}" for k in ways) + " |")
    return 0


def paste_table(refs: list[np.ndarray], pad: int = 64, tilt: float = 7.0) -> int:
    from stream_gpen.faces import paste_faces, warp_faces
    from stream_gpen.models.classic import ClassicRestorer

    restorers = {"changes nothing": lambda x: x.clone(), "classic (CPU default)": ClassicRestorer(size=512, work_size=256)}
    side = 512 + 2 * pad
    # frame -> crop: a 512 crop of the face, turned by ``tilt`` degrees about the frame's centre
    c = (side - 1) / 2
    rot = cv2.getRotationMatrix2D((c, c), tilt, 1.0)
    rot[:, 2] -= pad
    aff = torch.from_numpy(rot)[None]
    face = (slice(2 * pad, side - 2 * pad),) * 2
    rows = []
    for dname, fn in DEGRADATIONS.items():
        for rname, restore in restorers.items():
            if dname != "clean" and rname == "changes nothing":
                continue
            got = {"plain paste": ([], []), "residual, no threshold": ([], []), "residual paste": ([], [])}
            for ref in refs:
                clean = cv2.copyMakeBorder(ref, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
                deg = fn(clean)
                frame = torch.from_numpy(deg)
                crop = warp_faces([frame], torch.zeros(1, dtype=torch.long), aff, size=512, antialias=True)
                out = restore(crop)
                shrink = getattr(restore, "fine_shrink", 0.0)
                for way, kw in (("plain paste", {}), ("residual, no threshold", {"originals": crop}),
                                ("residual paste", {"originals": crop, "fine_shrink": shrink})):
                    res = paste_faces(frame.clone(), out, aff, **kw).numpy()
                    base = ce.psnr(deg[face], clean[face]) if dname != "clean" else 0.0
                    got[way][0].append(ce.psnr(res[face], clean[face]) - base)
                    got[way][1].append(detail(res[face]) / detail(deg[face]))
            rows.append((f"{dname}, {rname}", {k: (np.mean(g), np.mean(d)) for k, (g, d) in got.items()}))
    print("| face in the frame (512 px, tilted 7°) | plain paste (GPEN's, old classic) | residual, band kept whole "
          "| residual, band thinned (classic now) |")
    print("|---|---:|---:|---:|")
    for label, row in rows:
        clean = label.startswith("clean")
        what = "PSNR" if clean else "gain"
        print(f"| {label}: {what} / detail kept | " + " | ".join(
            ("∞ dB" if g > 99 else f"{g:.2f} dB" if clean else f"{g:+.2f} dB") + f" / {100 * d:.0f}%"
            for g, d in row.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
