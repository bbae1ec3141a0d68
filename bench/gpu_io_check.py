"""NVDEC check for the lent GPU: decode fps CPU vs NVDEC on a generated 1080p clip, frames equal.

Run: python bench/gpu_io_check.py   (exits non-zero on a mismatch or when NVDEC silently fell back)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stream_gpen.io import open_source  # noqa: E402

N, W, H = 240, 1920, 1080
TOL_MEAN, TOL_MAX_P999 = 1.5, 12  # levels: chroma upsampling differs slightly from swscale's


def make_clip(path: Path) -> None:
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=30)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.codec_context.colorspace = 1  # bt709, limited: the common HD case
        vs.codec_context.color_range = 1
        vs.codec_context.options = {"preset": "ultrafast", "crf": "18"}
        for i in range(N):
            img = np.stack([128 + 100 * np.sin(x / 37 + i / 9), 128 + 100 * np.cos(y / 23 - i / 7),
                            128 + 60 * np.sin((x + y) / 51 + i / 5)], -1).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p", dst_colorspace=1)
            vf.pts = i
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)


def run(path: Path, decode: str, keep: set[int]):
    kept, n = {}, 0
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with open_source(path, device="cuda", decode=decode, ring_size=8) as src:
        for f in src:
            if f.index in keep:
                kept[f.index] = f.image.clone()
            n += 1
            f.release()
    torch.cuda.synchronize()
    return n, time.perf_counter() - t0, kept, src.fallbacks


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0],
                            epilog="Takes no options; exits 0 when NVDEC frames match the CPU's, 1 on a "
                                   "mismatch or a silent fallback, 2 without CUDA.").parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device"); return 2
    print("hwdevices:", av.codec.hwaccel.hwdevices_available())
    with tempfile.TemporaryDirectory() as d:
        clip = Path(d) / "clip1080.mp4"
        make_clip(clip)
        keep = {0, 1, 57, 120, N - 1}
        run(clip, "nvdec", set())  # warm up CUDA context / cuvid
        n_c, t_c, cpu, fb_c = run(clip, "cpu", keep)
        n_g, t_g, gpu, fb_g = run(clip, "nvdec", keep)
    ok = n_c == n_g == N and not fb_g
    rows = []
    for i in sorted(keep):
        diff = (cpu[i].int() - gpu[i].int()).abs().float()
        mean, p999 = diff.mean().item(), torch.quantile(diff.flatten()[::97], 0.999).item()
        good = mean <= TOL_MEAN and p999 <= TOL_MAX_P999
        ok &= good
        rows.append((i, mean, p999, diff.max().item(), good))
    print(f"{'decode':8} {'frames':>6} {'seconds':>8} {'fps':>8}")
    print(f"{'cpu':8} {n_c:6d} {t_c:8.2f} {n_c / t_c:8.1f}")
    print(f"{'nvdec':8} {n_g:6d} {t_g:8.2f} {n_g / t_g:8.1f}   ratio nvdec/cpu = {t_c / t_g:.2f}x")
    print("fallbacks:", fb_g or "none")
    print(f"{'frame':>6} {'mean|d|':>8} {'p99.9':>6} {'max':>5}  ok")
    for i, m, p, mx, g in rows:
        print(f"{i:6d} {m:8.3f} {p:6.1f} {mx:5.0f}  {g}")
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
