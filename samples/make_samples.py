#!/usr/bin/env python3
"""Make the demo inputs in samples/ from public-domain material available offline.

Source: scikit-image's ``astronaut`` photo (Eileen Collins, NASA, public domain), shipped inside
scikit-image, so no network is needed. Outputs (deterministic, seeded):

* ``samples/astronaut_degraded.jpg`` — the photo, downscaled, blurred, noisy and JPEG-compressed.
* ``samples/astronaut_clip.mp4`` — 4 s, 25 fps, 640x480 H.264: a slow pan and zoom over the photo
  (camera motion), each frame degraded (blur, noise, downscale) and encoded at a high CRF, with a
  440 Hz AAC tone so the demo shows audio being kept.

Run: ``python samples/make_samples.py [--force]``. Existing files are kept unless ``--force``.
"""
from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
PHOTO = HERE / "astronaut_degraded.jpg"
CLIP = HERE / "astronaut_clip.mp4"


def _astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # RGB uint8 512x512


def _degrade(rgb: np.ndarray, rng: np.random.Generator, *, scale: float, sigma: float, noise: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    out += rng.normal(0.0, noise, out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def make_photo(path: Path) -> None:
    rng = np.random.default_rng(0)
    img = _degrade(_astronaut(), rng, scale=0.5, sigma=1.0, noise=6.0)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 40])


def make_clip(path: Path, *, seconds: float = 4.0, fps: int = 25, size=(640, 480)) -> None:
    rng = np.random.default_rng(1)
    src = cv2.resize(_astronaut(), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    w, h = size
    n = int(seconds * fps)
    sample_rate = 44100
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"crf": "32", "preset": "veryfast"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = out.add_stream("aac", rate=sample_rate)
        aus.layout = "stereo"
        for i in range(n):
            t = i / max(n - 1, 1)
            zoom = 1.0 + 0.25 * t  # slow push-in
            cw, ch = int(700 / zoom), int(525 / zoom)
            cx = int(380 + 120 * np.sin(2 * np.pi * t))  # pan around the face
            cy = int(330 + 40 * t)
            x0 = int(np.clip(cx - cw // 2, 0, 1024 - cw))
            y0 = int(np.clip(cy - ch // 2, 0, 1024 - ch))
            frame = cv2.resize(src[y0 : y0 + ch, x0 : x0 + cw], (w, h), interpolation=cv2.INTER_AREA)
            frame = _degrade(frame, rng, scale=0.45, sigma=0.8, noise=5.0)
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            for pkt in vs.encode(vf):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        # 440 Hz tone, AAC frames of 1024 samples.
        total = int(seconds * sample_rate)
        for start in range(0, total, 1024):
            k = np.arange(start, min(start + 1024, total))
            tone = (0.2 * np.sin(2 * np.pi * 440 * k / sample_rate)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            af.sample_rate = sample_rate
            af.pts = start
            af.time_base = Fraction(1, sample_rate)
            for pkt in aus.encode(af):
                out.mux(pkt)
        for pkt in aus.encode():
            out.mux(pkt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="rebuild even if the files exist")
    args = ap.parse_args()
    for path, make in ((PHOTO, make_photo), (CLIP, make_clip)):
        if path.exists() and not args.force:
            print(f"kept {path.relative_to(HERE.parent)}")
            continue
        tmp = path.with_name(path.stem + ".tmp" + path.suffix)
        make(tmp)
        tmp.replace(path)
        print(f"made {path.relative_to(HERE.parent)} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
