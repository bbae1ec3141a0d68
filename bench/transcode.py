"""Plain-transcode baseline: decode -> frame ring -> encode, no processing.

Every later speed target is a ratio to these numbers. The script makes its own synthetic clips
(moving gradients + texture, x264 CRF 18), then measures frames per second side by side in one run:
decode only (null sink), and decode -> encode with h264 (libx264) presets veryfast and medium.

    python bench/transcode.py [--frames 90] [--sizes 720p,1080p]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stream_gpen.io import open_sink, open_source  # noqa: E402

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def make_clip(path: Path, w: int, h: int, n: int) -> None:
    rng = np.random.default_rng(0)
    tex = rng.integers(0, 40, (h, w, 1), dtype=np.uint8)  # some texture so the encoder has work
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.options = {"preset": "ultrafast", "crf": "18"}
        for i in range(n):
            img = np.stack([100 + 80 * np.sin(x / 61 + i / 7), 100 + 80 * np.cos(y / 43 - i / 11),
                            100 + 50 * np.sin((x + y) / 97 + i / 5)], -1).astype(np.uint8)
            img = np.roll(img + tex, 4 * i, axis=1)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)


def run(clip: Path, target: str, **kw) -> tuple[int, float]:
    t0 = time.perf_counter()
    with open_source(clip) as src:
        with open_sink(target, source=src, **kw) as sink:
            for f in src:
                sink.write(f)
    return sink.frames_written, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--sizes", default="720p,1080p")
    args = ap.parse_args()
    print(f"plain transcode, {args.frames} frames per clip, {os.cpu_count()} CPUs, PyAV {av.__version__}")
    print(f"{'size':6} {'mode':18} {'frames':>6} {'seconds':>8} {'fps':>7} {'vs decode':>9}")
    with tempfile.TemporaryDirectory() as d:
        for name in args.sizes.split(","):
            w, h = SIZES[name]
            clip = Path(d) / f"{name}.mp4"
            make_clip(clip, w, h, args.frames)
            n, t = run(clip, "null")
            base = n / t
            print(f"{name:6} {'decode->null':18} {n:6d} {t:8.2f} {base:7.1f} {1.0:9.2f}")
            for preset in ("veryfast", "medium"):
                n, t = run(clip, str(Path(d) / f"{name}_{preset}.mp4"), preset=preset, overwrite=True)
                print(f"{name:6} {'h264 ' + preset:18} {n:6d} {t:8.2f} {n / t:7.1f} {n / t / base:9.2f}")


if __name__ == "__main__":
    main()
