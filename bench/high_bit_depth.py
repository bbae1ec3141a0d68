"""What keeping 10-bit video at 10 bits costs, side by side with the 8-bit path (CPU).

1. Per 1920x1080 frame: the decode conversion (yuv420p10le -> RGB; 8-bit path: rgb24; 10-bit
   path: rgb48 plus the derived uint8 picture), the encode conversion (RGB -> yuv420p /
   yuv420p10le) and pasting one 512-px face (cv2 and torch backends, uint8 vs uint16 frame).
2. Whole io path: a 10-bit 1280x720 HEVC clip decoded and re-encoded as HEVC ultrafast, with
   ``high_bit_depth=False`` (8-bit frames, 8-bit output) and ``True`` (16-bit copy, 10-bit
   output), alternated, best of ``--repeats``.
   Then what faces at the model's own precision (``restore_fine``) add per 512-px face.
3. The encoders at their defaults, 30 synthetic 1080p frames: x264 medium 8-bit (what an 8-bit
   source gets) vs x265 medium 10-bit (what ``codec="auto"`` picks for a 10-bit source), and
   x265 fast/faster for scale: fps and bytes.

    python bench/high_bit_depth.py [--repeats 3]

Every number is measured in this run; the ratios are the point (absolute times follow the load).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from stream_gpen.faces import paste_faces  # noqa: E402
from stream_gpen.io import open_sink, open_source  # noqa: E402
from stream_gpen.io._convert import av_to_rgb_numpy, rgb8_from_rgb16, rgb_to_av  # noqa: E402


def best_ms(fn, n: int = 7) -> float:
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts) * 1000


def conversions() -> None:
    w, h = 1920, 1080
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p10le")
    vf.colorspace, vf.color_range = 1, 1
    d8 = best_ms(lambda: torch.from_numpy(av_to_rgb_numpy(vf)))
    d16 = best_ms(lambda: rgb8_from_rgb16(torch.from_numpy(av_to_rgb_numpy(vf, high=True))))
    hi, lo = av_to_rgb_numpy(vf, high=True), av_to_rgb_numpy(vf)
    e8 = best_ms(lambda: rgb_to_av(lo, pix_fmt="yuv420p", colorspace=1, color_range=1))
    e16 = best_ms(lambda: rgb_to_av(hi, pix_fmt="yuv420p10le", colorspace=1, color_range=1))
    crop = torch.randint(0, 256, (1, 3, 512, 512), dtype=torch.uint8)
    aff = torch.tensor([[[1.6, 0.0, -1200.0], [0.0, 1.6, -400.0]]])
    t8, t16 = torch.from_numpy(lo.copy()), torch.from_numpy(hi.copy())
    rows = [("decode conversion", d8, d16), ("encode conversion", e8, e16)]
    for backend in ("cv2", "torch"):
        rows.append((f"paste a 512 face ({backend})", best_ms(lambda: paste_faces(t8, crop, aff, backend=backend)),
                     best_ms(lambda: paste_faces(t16, crop, aff, backend=backend))))
    print(f"per {w}x{h} frame, best of 7")
    print(f"{'step':<26} {'8-bit ms':>9} {'10-bit ms':>10} {'ratio':>6}")
    for name, a, b in rows:
        print(f"{name:<26} {a:>9.1f} {b:>10.1f} {b / a:>5.2f}x")


def fine_faces() -> None:
    """Faces at the model's precision in the 16-bit picture (``restore_fine``), per 512-px face:
    what the 10-bit path pays for it over pasting the 8-bit face, step by step."""
    from stream_gpen.faces import warp_faces
    from stream_gpen.faces._hdr import HdrColour

    w, h = 1920, 1080
    hi = torch.from_numpy(np.random.default_rng(1).integers(0, 65536, (h, w, 3), dtype=np.uint16))
    u8 = torch.randint(0, 256, (1, 3, 512, 512), dtype=torch.uint8)
    fine = u8.float() + 0.4
    aff = torch.tensor([[[1.6, 0.0, -1200.0], [0.0, 1.6, -400.0]]])
    colour = HdrColour("hlg")
    given = colour.to_sdr(u8)
    rows = []
    for backend in ("cv2", "torch"):
        rows.append((f"paste into rgb48 ({backend})", best_ms(lambda: paste_faces(hi, u8, aff, backend=backend)),
                     best_ms(lambda: paste_faces(hi, fine, aff, backend=backend))))
    crops_hi = warp_faces(hi, torch.zeros(1, dtype=torch.long), aff, size=512)
    rows.append(("HDR map back", best_ms(lambda: colour.from_sdr(u8, u8, given)),
                 best_ms(lambda: colour.from_sdr_fine(fine, crops_hi))))
    warp16 = best_ms(lambda: warp_faces(hi, torch.zeros(1, dtype=torch.long), aff, size=512))
    print("\nper 512-px face in a 1080p 10-bit frame, best of 7: 8-bit face (before) vs the model's own precision")
    print(f"{'step':<26} {'8-bit ms':>9} {'fine ms':>10} {'ratio':>6}")
    for name, a, b in rows:
        print(f"{name:<26} {a:>9.1f} {b:>10.1f} {b / a:>5.2f}x")
    print(f"{'+ 16-bit crop (HDR or strength < 1 only)':<42} {warp16:>5.1f} ms")


def io_path(repeats: int) -> None:
    w, h, n = 1280, 720, 24
    with tempfile.TemporaryDirectory() as tmp:
        src_path, out_path = Path(tmp) / "in10.mkv", Path(tmp) / "out.mkv"
        with av.open(str(src_path), "w") as c:
            s = c.add_stream("libx265", rate=25)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p10le"
            s.codec_context.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
            x = np.linspace(0, 255, w)
            for i in range(n):
                img = np.broadcast_to(np.stack([x, x * 0.8, x * 0.5], -1)[None] + i, (h, w, 3))
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img.clip(0, 255).astype(np.uint8)), format="rgb24")
                vf = vf.reformat(format="yuv420p10le")
                vf.pts = i
                for p in s.encode(vf):
                    c.mux(p)
            for p in s.encode(None):
                c.mux(p)
        res: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(repeats):
            for hb in (False, True):  # alternated: load drift hits both alike
                t = time.perf_counter()
                with open_source(src_path, high_bit_depth=hb) as src, \
                        open_sink(out_path, source=src, codec="hevc", preset="ultrafast", overwrite=True) as sink:
                    for f in src:
                        sink.write(f)
                res[hb].append(time.perf_counter() - t)
        a, b = min(res[False]), min(res[True])
        print(f"\n{n} frames {w}x{h} 10-bit HEVC -> HEVC ultrafast, best of {repeats}: "
              f"8-bit path {a / n * 1000:.1f} ms/frame, 10-bit path {b / n * 1000:.1f} ms/frame, ratio {b / a:.2f}x")


def encoders() -> None:
    w, h, n = 1920, 1080, 30
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    frames = [np.roll(base, 4 * i, axis=1) for i in range(n)]
    quiet = {"x265-params": "log-level=error"}
    print(f"\n{n} synthetic {w}x{h} frames (moving blocks), one encode each")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "enc.mkv"
        for name, codec, pix, opts in [("x264 medium 8-bit", "libx264", "yuv420p", {}),
                                       ("x265 medium 10-bit", "libx265", "yuv420p10le", quiet),
                                       ("x265 fast 10-bit", "libx265", "yuv420p10le", {"preset": "fast", **quiet}),
                                       ("x265 faster 10-bit", "libx265", "yuv420p10le", {"preset": "faster", **quiet})]:
            t = time.perf_counter()
            with av.open(str(out), "w") as c:
                s = c.add_stream(codec, rate=30, options=opts)
                s.width, s.height, s.pix_fmt = w, h, pix
                for i, f in enumerate(frames):
                    vf = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format=pix)
                    vf.pts = i
                    for p in s.encode(vf):
                        c.mux(p)
                for p in s.encode():
                    c.mux(p)
            dt = time.perf_counter() - t
            print(f"{name:<22} {n / dt:6.1f} fps {out.stat().st_size / 1e3:8.0f} kB")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"CPU, torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    conversions()
    fine_faces()
    io_path(args.repeats)
    encoders()
    return 0


if __name__ == "__main__":
    sys.exit(main())
