"""Per-frame helper costs of the CPU pipeline, old way vs new way side by side (session 18).

    python bench/small_ops.py [--size 1920x1080] [--repeats 30]

1. Encode-side RGB -> yuv420p (``stream_gpen.io._convert.rgb_to_av``): copying the picture into a
   frame first (``VideoFrame.from_ndarray``, the GIL held) then swscale, against swscale reading
   the picture in place (``from_numpy_buffer``, what the sink does since session 18). Same samples.
3. (session 19) The sink's full conversion (``rgb_to_av``) into limited-range yuv420p against
   full-range yuv420p (webcam MJPEG, Android phones), whose chroma planes are computed again,
   rounded, from the box-averaged RGB (swscale's full-range encode truncates them).
2. The change watch's 32x32 thumbnail of the small grey frame: ``F.adaptive_avg_pool2d`` against
   ``stream_gpen.faces._tracker._thumb32`` (an integral image). Max difference printed.

Rounds alternate old/new so that a busy machine's load hits both alike; ratios are what to read.
"""
from __future__ import annotations

import argparse
import time

import av
import numpy as np
import torch
import torch.nn.functional as F


def _time(fn, repeats: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    from stream_gpen.faces._tracker import _thumb32
    from stream_gpen.io._convert import rgb_to_av

    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)

    def copy_then_convert():
        return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p", interpolation="BILINEAR")

    def in_place():
        return av.VideoFrame.from_numpy_buffer(rgb, format="rgb24").reformat(format="yuv420p", interpolation="BILINEAR")

    same = np.array_equal(copy_then_convert().to_ndarray(), in_place().to_ndarray())
    grey = np.random.default_rng(1).integers(0, 256, (h // 4, w // 4), dtype=np.uint8)  # the watch's small frame
    pool = lambda: F.adaptive_avg_pool2d(torch.from_numpy(grey)[None, None].float(), (32, 32))  # noqa: E731
    diff = float(np.abs(pool()[0, 0].numpy() - _thumb32(grey)).max())
    print(f"{w}x{h}, {args.repeats} repeats x {args.rounds} rounds, torch threads {torch.get_num_threads()}")
    print(f"rgb->yuv420p: same samples {same};  thumbnail {grey.shape[1]}x{grey.shape[0]}: max |diff| {diff:.1e}")
    print("round | copy+convert ms | in place ms | ratio | adaptive pool ms | integral ms | ratio")
    for r in range(args.rounds):
        a, b = _time(copy_then_convert, args.repeats), _time(in_place, args.repeats)
        c, d = _time(pool, args.repeats), _time(lambda: _thumb32(grey), args.repeats)
        print(f"{r + 1:5d} | {a:15.2f} | {b:11.2f} | {a / b:5.2f} | {c:16.2f} | {d:11.2f} | {c / d:5.1f}")
    limited = lambda: rgb_to_av(rgb, pix_fmt="yuv420p", colorspace=1, color_range=1)  # noqa: E731
    full = lambda: rgb_to_av(rgb, pix_fmt="yuv420p", colorspace=1, color_range=2)  # noqa: E731
    print("round | rgb_to_av limited ms | full range ms | ratio")
    for r in range(args.rounds):
        a, b = _time(limited, args.repeats), _time(full, args.repeats)
        print(f"{r + 1:5d} | {a:20.2f} | {b:13.2f} | {b / a:5.2f}")
    # also what rgb_to_av itself costs now, tags and all
    e = _time(lambda: rgb_to_av(rgb, pix_fmt="yuv420p", colorspace=1, color_range=1), args.repeats)
    print(f"rgb_to_av(yuv420p, bt709, limited): {e:.2f} ms per frame")


if __name__ == "__main__":
    main()
