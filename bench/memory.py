"""Peak RSS of a full enhancement run: a 10-minute 720p clip vs a 1-minute one (target: +10% at most).

Each run is a fresh subprocess (its VmHWM is that run's own peak; ``ru_maxrss`` would include the
parent's, since it survives exec) through the whole
pipeline: decode thread -> ring -> detect/track -> GPEN (tiny random weights, the memory of the
pipeline is what is measured, not the model's) -> paste -> encode thread with an audio track
copied. The clips are synthetic (a real face moving over a textured background, with a tone), at
a low frame rate so the 10-minute run fits a CPU benchmark.

    python bench/memory.py [--fps 5] [--minutes 1 10]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, detector_weights  # noqa: E402

CHILD = r"""
import json, sys, time
from stream_gpen import Enhancer
from stream_gpen.models.gpen import TINY256_CONFIG, random_generator
enh = Enhancer(random_generator(TINY256_CONFIG), device="cpu", detector_weights=sys.argv[3], download=False)
t0 = time.perf_counter()
s = enh.enhance_file(sys.argv[1], sys.argv[2], overwrite=True, preset="ultrafast")
print(json.dumps({"frames": s.frames_out, "faces": s.faces_restored, "seconds": time.perf_counter() - t0,
                  "peak_rss_mib": [int(l.split()[1]) / 1024 for l in open("/proc/self/status")
                                   if l.startswith("VmHWM:")][0]}))
"""


def make_clip(path: Path, minutes: float, fps: int) -> None:
    w, h = 1280, 720
    face = cv2.imread(str(SHARED / "data/faces/aligned/gpen_ffhq_00001.png"))[:, :, ::-1]
    face = cv2.resize(face, (300, 300))
    rng = np.random.default_rng(0)
    bg = rng.integers(40, 160, (h, w, 3), dtype=np.uint8)
    n = int(minutes * 60 * fps)
    sr = 48000
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "23"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = out.add_stream("aac", rate=sr)
        aus.layout = "mono"
        apts = 0
        for i in range(n):
            img = bg.copy()
            x = int(490 + 300 * np.sin(i / 40))
            y = int(210 + 100 * np.cos(i / 55))
            img[y : y + 300, x : x + 300] = face
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            for p in vs.encode(vf):
                out.mux(p)
            while apts < (i + 1) * sr // fps:
                k = np.arange(apts, apts + 1024)
                af = av.AudioFrame.from_ndarray((0.1 * np.sin(k * 2 * np.pi * 330 / sr)).astype(np.float32)[None],
                                                format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = sr, apts, Fraction(1, sr)
                for p in aus.encode(af):
                    out.mux(p)
                apts += 1024
        for s in (vs, aus):
            for p in s.encode():
                out.mux(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fps", type=int, default=5)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in args.minutes:
            clip = Path(tmp) / f"clip_{m}.mp4"
            make_clip(clip, m, args.fps)
            r = subprocess.run([sys.executable, "-c", CHILD, str(clip), str(Path(tmp) / "out.mp4"), str(detector_weights())],
                               capture_output=True, text=True, check=True)
            res = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append((m, res))
            print(f"{m:5.1f} min: {res['frames']} frames, {res['faces']} faces, {res['seconds']:.0f} s, "
                  f"peak RSS {res['peak_rss_mib']:.0f} MiB", flush=True)
    base = rows[0][1]["peak_rss_mib"]
    for m, res in rows[1:]:
        print(f"peak RSS {m:g} min / {rows[0][0]:g} min = {res['peak_rss_mib'] / base:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
