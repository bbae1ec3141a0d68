"""Shared helpers for the end-to-end benchmarks: clips, models, trimming. (PyAV is imported where a
clip is read or written: a bench that reads none, such as crop_antialias.py, runs without it.)"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STREAM_GPEN_SHARED", REPO.parent / "shared"))
VIDEOS = SHARED / "data" / "videos"
MOBILENET = SHARED / "weights" / "detection_mobilenet0.25_Final.pth"  # (see detector_weights())

CLIPS = {
    "talking_head": "retalking_face2_frontal_talking_head.mp4",
    "selfie": "liveportrait_d13_phone_selfie_portrait.mp4",
    "old_tv": "keep_real4_old_tv_lowres.mp4",
    "crowd_1080p": "facenet_crowd_1080p_multiface.mp4",
    "stage": "hamilton_stage_lowlight_multiface.mp4",
    "noface": "upscaleavideo_old_movie1_bw_noface.mp4",
}


def _stop(message: str) -> None:
    """One line on stderr and exit 2 (a setup the benchmark cannot run in, not a bug in it)."""
    print(f"{Path(sys.argv[0]).name}: {message}", file=sys.stderr)
    raise SystemExit(2)


def detector_weights() -> Path:
    """The RetinaFace MobileNet-0.25 file: SHARED's copy, else the user's weights cache (the copy
    ``stream-gpen weights path retinaface-mobilenet0.25`` names), else one line and exit 2.
    A clone without ``../shared`` that has fetched the detector benchmarks with it."""
    if MOBILENET.is_file():
        return MOBILENET
    from stream_gpen.weights import DETECTOR_FILES, find_weights

    wf = DETECTOR_FILES["retinaface-mobilenet0.25"]
    found = find_weights(wf)
    if found is None:
        _stop(f"the detector weights {wf.filename} are neither in {MOBILENET.parent} (set "
              f"STREAM_GPEN_SHARED) nor in the weights cache: run `stream-gpen weights download {wf.name}`")
    return found


def clip_paths(names, *, synthetic: str | None = None) -> dict[str, Path]:
    """``{name: path}`` of the benchmark clips asked for, each checked before any work starts: an
    unknown name or a missing file is one line and exit 2 (the clips are the test assets in
    ``../shared/data/videos``, not part of the repository). ``synthetic`` is the script's
    clip-free option, if it has one, named in that line; it maps to no path here."""
    names = list(names)
    unknown = [n for n in names if n not in CLIPS and n != synthetic]
    if unknown:
        _stop(f"unknown clip {', '.join(unknown)}; known: {', '.join([*CLIPS, *filter(None, [synthetic])])}")
    paths = {n: VIDEOS / CLIPS[n] for n in names if n != synthetic}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        faces = SHARED / "data" / "faces" / "aligned"  # (what the synthetic clip is made of)
        other = f"; or --clips {synthetic}" if synthetic and any(faces.glob("gpen_ffhq_*.png")) else ""
        _stop(f"benchmark clip{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found in {VIDEOS}: "
              f"the clips are test assets, from ../shared beside the checkout or $STREAM_GPEN_SHARED{other}")
    return paths


def trim(src: Path, dst: Path, max_frames: int | None) -> Path:
    """Copy the first ``max_frames`` frames of ``src`` (near-lossless x264) so every contender
    processes exactly the same input. ``None`` returns ``src`` unchanged."""
    if max_frames is None:
        return src
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        ivs = inp.streams.video[0]
        rate = ivs.average_rate or 25
        vs = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "crf": "10"})
        vs.width, vs.height, vs.pix_fmt = ivs.codec_context.width, ivs.codec_context.height, "yuv420p"
        for i, f in enumerate(inp.decode(ivs)):
            if i >= max_frames:
                break
            nf = av.VideoFrame.from_ndarray(f.to_ndarray(format="rgb24"), format="rgb24")
            nf.pts = i
            for p in vs.encode(nf):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    return dst


def synthetic_faces_clip(path: Path, *, size=(1920, 1080), frames: int = 30, faces: int = 2, fps: int = 25) -> Path:
    """A clip with real faces (shared FFHQ crops) moving over a textured background."""
    w, h = size
    crops = sorted((SHARED / "data" / "faces" / "aligned").glob("gpen_ffhq_*.png"))[:faces]
    if len(crops) < faces:  # (a face-less clip would measure the pipeline with nothing to restore)
        raise SystemExit(f"synthetic clip: {faces} face photos wanted, {len(crops)} found in "
                         f"{SHARED / 'data' / 'faces' / 'aligned'} (set STREAM_GPEN_SHARED)")
    import av

    imgs = [cv2.resize(cv2.imread(str(c))[:, :, ::-1], (h // 3, h // 3)) for c in crops]
    rng = np.random.default_rng(0)
    bg = rng.integers(60, 120, (h, w, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "16"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            img = bg.copy()
            for k, face in enumerate(imgs):
                s = face.shape[0]
                x = int((w - s) * (k + 0.5) / len(imgs) + 40 * np.sin(i / 9 + k))
                y = int((h - s) / 2 + 30 * np.cos(i / 11 + k))
                img[y : y + s, x : x + s] = face
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    return path


def random_gpen(size: int, device: str = "cpu"):
    """Random-weight GPEN of the released config (same compute as the real checkpoint).

    On the CPU unless ``device`` says otherwise, as ``load_generator`` builds a checkpoint: a model
    handed to ``Enhancer`` should come so, since only the runner's fp16 copy of it goes to the GPU.
    (Built on the GPU, the fp32 model and ``Enhancer``'s copy of it both stayed there: ~0.53 GB
    of GPEN-512 that a real run does not hold, counted in e2e.py's peak CUDA memory until hunt 33.)
    Pass the device only for a model run as it is (naive.py's loop)."""
    from stream_gpen.models.gpen import FullGenerator, random_generator
    from stream_gpen.models.registry import MODELS

    cfg = MODELS[f"gpen-bfr-{size}"].config
    gen = random_generator(cfg, seed=0)
    assert isinstance(gen, FullGenerator)
    return gen.to(device).eval()


def count_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def refuse_missing_cuda(parser, device) -> None:
    """``--device cuda`` on a machine without CUDA: one line and exit 2 (argparse's own), not
    torch's traceback from deep inside the first CUDA call."""
    import torch

    if str(device or "").startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {device}: torch sees no CUDA device on this machine")
