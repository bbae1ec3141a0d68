#!/usr/bin/env python3
"""The classic enhancer's crop size vs filter size on 512 px faces (docs/classic.md, "Face size").

Side by side in one run, per face: the old CPU default (the 512 crop shrunk to 256, restored,
enlarged back: what a 256 crop does to a 512 px face), the CPU default (512 crop, filters at 256,
``work_size=256``) and the filters at the crop's own size (``work_size=None``, the CUDA default).
Prints PSNR gain against the clean crop, the share of the input's Laplacian variance kept (fine
detail) and wall-clock ms per face. Faces: ``gpen_ffhq_00001``, ``gpen_ffhq_00002`` (1024 -> 512,
area) and ``gfpgan_crop_Adele`` (512); ``_FINE_SHRINK`` was chosen on them.
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


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                            epilog="Faces from the shared data (STREAM_GPEN_SHARED or ../shared); "
                                   "prints a Markdown table.").parse_args(argv)
    from stream_gpen.models.classic import ClassicRestorer

    torch.set_grad_enabled(False)
    aligned = ce.shared_dir() / "data" / "faces" / "aligned"
    refs = [cv2.resize(cv2.cvtColor(cv2.imread(str(aligned / n)), cv2.COLOR_BGR2RGB), (512, 512),
                       interpolation=cv2.INTER_AREA) for n in FACES]
    r256, work, full = ClassicRestorer(size=256), ClassicRestorer(size=512, work_size=256), ClassicRestorer(size=512)

    def round_trip(x):
        small = F.interpolate(x.float(), size=(256, 256), mode="area").round_().to(torch.uint8)
        return F.interpolate(r256(small).float(), size=(512, 512), mode="bilinear",
                             align_corners=False).round_().clamp_(0, 255).to(torch.uint8)

    ways = {"256 round trip (old CPU default)": round_trip, "work_size=256 (CPU default)": work,
            "work_size=None (CUDA default)": full}
    degs = {"clean": lambda a: a, "noise σ12": ce.noise, "JPEG q20": ce.jpeg, "blur σ2": ce.blur}
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


if __name__ == "__main__":
    raise SystemExit(main())
