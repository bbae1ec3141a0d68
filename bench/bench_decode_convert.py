"""What an exact 8-bit yuv420p -> RGB decode costs, side by side with swscale's SIMD converter (CPU).

Real decoded frames (the stage clip's first frame, re-encoded with x264 at 1920x1080 and 640x360, so
they state their chroma location as decoders do), one conversion per contender in turn, best of
``--repeats``; each row also gives the error against the float decode with each chroma sample
repeated over its 2x2 block (the conversion the encode side's 2x2 average undoes):

* SIMD: ``reformat`` to rgb24 with default flags (swscale's yuv420p converter; what 8-bit
  yuv420p/yuv422p decoded with before: it truncates). Repeated on one frame it reuses that
  frame's swscale context; each newly decoded frame made a new one, as in "SIMD, new context".
* exact (default): :func:`av_to_rgb_numpy`: the planes copied into a frame that states no chroma
  location, swscale's accurate path to planar gbrp, interleaved by cv2.
* exact, rgb24 out: the same, but swscale writes rgb24 itself (no SIMD writer for it).
* exact on the frame: the accurate flags on the decoded frame as it is: fast enough, but chroma
  is sampled at the stated location (odd columns take the next sample).
* via yuv444p: each chroma sample written over its 2x2 block into a yuv444p frame (cv2 nearest
  resize), then the accurate flags to rgb24.
* float32 LUTs: cv2 tables per plane, chroma terms at chroma resolution repeated by a nearest
  resize, summed and rounded (no swscale).
* NV12 rows: the same frame as a hardware decoder's download gives it (``reformat`` to nv12
  keeps the chroma location): "NV12 exact (default)" takes the chroma apart into an untagged
  yuv420p frame, then as "exact (default)"; "NV12 on the frame" is what it went through before
  (chroma of odd columns from the next sample, blue past white 0).

    python bench/bench_decode_convert.py [--repeats 15]

Every number is measured in this run; the ratios are the point (absolute times follow the load).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from av.video.reformatter import VideoReformatter  # noqa: E402

from bench._common import CLIPS, VIDEOS  # noqa: E402
from stream_gpen.io._convert import _EXACT8, _rows, _sws_src, _to_rgb, av_to_rgb_numpy  # noqa: E402

KR, KB = 0.2126, 0.0722  # the clip is BT.709


def decoded_frame(size: tuple[int, int], tmp: Path) -> av.VideoFrame:
    with av.open(str(VIDEOS / CLIPS["stage"])) as c:
        rgb = next(c.decode(video=0)).to_ndarray(format="rgb24")
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    path = tmp / f"{size[0]}x{size[1]}.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"crf": "12"})
        s.width, s.height, s.pix_fmt, s.codec_context.colorspace, s.codec_context.color_range = *size, "yuv420p", 1, 1
        vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p", dst_colorspace="itu709")
        vf.colorspace, vf.color_range = 1, 1
        for p in [*s.encode(vf), *s.encode(None)]:
            c.mux(p)
    with av.open(str(path)) as c:
        return next(c.decode(video=0))


def planes(f: av.VideoFrame) -> list[np.ndarray]:
    return [_rows(p)[:, : p.width] for p in f.planes]


def float_rgb(f: av.VideoFrame) -> np.ndarray:
    y, u, v = (a.astype(np.float64) for a in planes(f))
    u, v = (np.repeat(np.repeat(a, 2, 0), 2, 1) for a in (u, v))
    y, cb, cr = (y - 16) / 219, (u - 128) / 224, (v - 128) / 224
    r, b = y + 2 * (1 - KR) * cr, y + 2 * (1 - KB) * cb
    return np.clip(np.stack([r, (y - KR * r - KB * b) / (1 - KR - KB), b], -1) * 255, 0, 255)


def untagged(f: av.VideoFrame) -> av.VideoFrame:
    g = av.VideoFrame(f.width, f.height, f.format.name)
    for s, d in zip(planes(f), planes(g)):
        d[:] = s
    g.colorspace, g.color_range = f.colorspace, f.color_range
    return g


def rgb24_out(f: av.VideoFrame) -> np.ndarray:
    return untagged(f).reformat(format="rgb24", interpolation=_EXACT8, **_sws_src(f)).to_ndarray()


def via_yuv444p(f: av.VideoFrame) -> np.ndarray:
    g = av.VideoFrame(f.width, f.height, "yuv444p")
    src, dst = planes(f), planes(g)
    dst[0][:] = src[0]
    for k in (1, 2):
        cv2.resize(src[k], (f.width, f.height), dst=dst[k], interpolation=cv2.INTER_NEAREST)
    return g.reformat(format="rgb24", interpolation=_EXACT8, **_sws_src(f)).to_ndarray()


_C = np.arange(256, dtype=np.float64)
_LUTS = [(np.float32(t)[None]) for t in (
    (_C - 16) * 255 / 219,                                        # Y
    2 * (1 - KR) * (_C - 128) * 255 / 224,                        # Cr -> R
    -2 * (1 - KR) * KR / (1 - KR - KB) * (_C - 128) * 255 / 224,  # Cr -> G
    -2 * (1 - KB) * KB / (1 - KR - KB) * (_C - 128) * 255 / 224,  # Cb -> G
    2 * (1 - KB) * (_C - 128) * 255 / 224)]                       # Cb -> B


def float_luts(f: av.VideoFrame) -> np.ndarray:
    y, u, v = planes(f)
    ly = cv2.LUT(y, _LUTS[0])
    chroma = cv2.merge((cv2.LUT(v, _LUTS[1]), cv2.add(cv2.LUT(v, _LUTS[2]), cv2.LUT(u, _LUTS[3])), cv2.LUT(u, _LUTS[4])))
    rgb = cv2.add(cv2.merge((ly, ly, ly)), cv2.resize(chroma, (f.width, f.height), interpolation=cv2.INTER_NEAREST))
    return cv2.convertScaleAbs(cv2.max(rgb, 0.0))  # rounds and saturates


CONTENDERS = {
    "SIMD (before)": lambda f: _to_rgb(f, "rgb24", None),
    "SIMD, new context": lambda f: VideoReformatter().reformat(f, format="rgb24", **_sws_src(f)).to_ndarray(),
    "exact (default)": av_to_rgb_numpy,
    "exact, rgb24 out": rgb24_out,
    "exact on the frame": lambda f: _to_rgb(f, "rgb24", _EXACT8),
    "via yuv444p": via_yuv444p,
    "float32 LUTs": float_luts,
}
NV12_CONTENDERS = {
    "NV12 exact (default)": av_to_rgb_numpy,
    "NV12 on the frame": lambda f: _to_rgb(f, "rgb24", _EXACT8),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for size in ((1920, 1080), (640, 360)):
            f = decoded_frame(size, Path(tmp))
            nv = f.reformat(format="nv12")
            ref = float_rgb(f)
            rows = [(name, fn, f) for name, fn in CONTENDERS.items()]
            # float32 LUTs last: whatever runs right after it here ran 2-3x slower (cv2's threads)
            rows[-1:-1] = [(name, fn, nv) for name, fn in NV12_CONTENDERS.items()]
            times: dict[str, list[float]] = {name: [] for name, _, _ in rows}
            for _ in range(args.repeats):
                for name, fn, frame in rows:  # in turn: load drift hits all alike
                    t = time.perf_counter()
                    fn(frame)
                    times[name].append(time.perf_counter() - t)
            base = min(times["SIMD (before)"])
            print(f"\n{size[0]}x{size[1]} {f.format.name} frame, best of {args.repeats}")
            print(f"{'conversion':<20} {'ms':>7} {'ratio':>6} {'max |err|':>10} {'mean err R, G, B':>22}")
            for name, fn, frame in rows:
                d = fn(frame).astype(np.float64) - ref
                bias = ", ".join(f"{m:+.2f}" for m in d.mean((0, 1)))
                print(f"{name:<20} {min(times[name]) * 1000:>7.2f} {min(times[name]) / base:>5.1f}x "
                      f"{np.abs(d).max():>10.2f} {bias:>22}")


if __name__ == "__main__":
    main()
