"""End-to-end fps vs the plain transcode of the same clip, same encoder settings, same run.

For each clip: (1) plain transcode (decode -> ring -> encode, bench/transcode.py's baseline) and
(2) the full enhancement, both with libx264 at the same preset/CRF. Prints fps of both and the
ratio enhanced/plain (1.0 = enhancement is free; the GPU goal is >= 0.8 at 1080p with GPEN-512).

    python bench/e2e.py                      # CPU: GPEN-256 random weights, a few frames per clip
    python bench/e2e.py --gpu-quick          # CUDA: GPEN-512 fp16, synthetic 1080p + 2 real clips
    python bench/e2e.py --model gpen-bfr-512 # real weights if present
    python bench/e2e.py --model identity     # no face model: the pipeline's own cost (ceiling)

``--model identity`` returns every crop unchanged: everything else (decode, detection, tracking,
smoothing, warp, paste, encode) runs as usual, so its ratio is the best any face model can reach
with this pipeline on this machine.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    CLIPS, clip_paths, detector_weights, random_gpen, refuse_missing_cuda, synthetic_faces_clip, trim)


def plain(src: Path, dst: Path, preset: str, crf: int) -> tuple[int, float]:
    from stream_gpen.io import open_sink, open_source

    t0 = time.perf_counter()
    with open_source(src) as s, open_sink(dst, source=s, preset=preset, crf=crf, overwrite=True) as sink:
        for f in s:
            sink.write(f)
    return sink.frames_written, time.perf_counter() - t0


class IdentityRestorer:
    """A restorer that returns its crops: measures the pipeline without a face model."""

    name = "identity"
    fallbacks: list = []

    def __init__(self, size: int, device) -> None:
        self.size, self.device = size, torch.device(device)

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        return crops


def simd_to_rgb(frame, *, high: bool = False, out=None):
    """``--decode-convert simd``'s stand-in for :func:`av_to_rgb_numpy` in the decode thread, with
    its contract (``out``: the ring slot written into and returned): 8-bit frames through
    swscale's SIMD converter, >8-bit ones as stream-gpen converts them."""
    from stream_gpen.io._convert import _to_rgb, av_to_rgb_numpy

    if high:
        return av_to_rgb_numpy(frame, high=True, out=out)
    rgb = _to_rgb(frame, "rgb24")
    if out is None:
        return rgb
    np.copyto(out, rgb)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default=None, help="registry name / checkpoint (default: random GPEN of the device's default size)")
    ap.add_argument("--size", type=int, default=None, help="random GPEN size (default 512 on CUDA, 256 on CPU)")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--clips", default=None, help=f"comma list of {','.join(CLIPS)},synthetic_1080p")
    ap.add_argument("--max-frames", type=int, default=None,
                    help="frames per clip (default 12 on CPU, all on CUDA; 0 = the whole clip)")
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--crf", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--gpu-quick", action="store_true", help="short CUDA run for bench/gpu_check.sh")
    ap.add_argument("--compile", action="store_true", help="torch.compile the runner (warm-up excluded)")
    ap.add_argument("--decode-convert", choices=("exact", "simd"), default="exact",
                    help="8-bit YUV->RGB in the decode thread: the exact conversion stream-gpen runs (default), or "
                         "swscale's SIMD converter it ran before session 15 (truncates ~1 level; an A/B of its cost)")
    args = ap.parse_args()
    if args.decode_convert == "simd":
        import stream_gpen.io._source as source_mod

        source_mod.av_to_rgb_numpy = simd_to_rgb
    refuse_missing_cuda(ap, args.device)
    torch.set_grad_enabled(False)

    from stream_gpen import Enhancer
    from stream_gpen.runtime import select_device

    t_start = time.perf_counter()
    device, _ = select_device(args.device)
    cuda = device.type == "cuda"
    if args.gpu_quick and not cuda:
        sys.exit("--gpu-quick needs CUDA")
    size = args.size or (512 if cuda else 256)
    clips = (args.clips or ("synthetic_1080p,talking_head,crowd_1080p" if cuda else "talking_head,old_tv,synthetic_1080p")).split(",")
    max_frames = args.max_frames if args.max_frames is not None else (60 if args.gpu_quick else None if cuda else 12)
    max_frames = max_frames or None  # (0: the whole clip, as naive.py and tracking.py take it)
    sources, det = clip_paths(clips, synthetic="synthetic_1080p"), detector_weights()  # (before any work)
    # (random GPEN on the CPU, as a checkpoint loads: the runner puts its fp16 copy on the GPU)
    model = IdentityRestorer(size, device) if args.model == "identity" else args.model or random_gpen(size)
    enh = Enhancer(model, device=str(device), precision=args.precision, batch_size=args.batch_size,
                   download=False, compile=args.compile, detector="mobilenet0.25",
                   detector_weights=det)  # (no download: a run with the network would time it)
    del model  # (Enhancer runs its own copy: this one would only add to the peak RSS)
    print(f"model {enh.model_name} ({'random weights' if args.model is None else args.model}) on {device}, "
          f"precision {enh.precision}, compile {args.compile}, batch {args.batch_size}, x264 preset {args.preset} crf {args.crf}, "
          f"decode conversion {args.decode_convert}")
    if cuda:
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in clips:
            if name == "synthetic_1080p":
                src = synthetic_faces_clip(tmp / "syn.mp4", frames=max_frames or 120)
            else:
                src = trim(sources[name], tmp / f"{name}.mp4", max_frames)
            # Warm-up (graph capture, cudnn autotune, detector priors) outside the timing.
            t_warm = time.perf_counter()
            enh.enhance_file(src, tmp / "warm.mp4", overwrite=True, preset=args.preset, crf=args.crf)
            t_warm = time.perf_counter() - t_warm
            n_plain, t_plain = plain(src, tmp / "plain.mp4", args.preset, args.crf)
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            s = enh.enhance_file(src, tmp / "enh.mp4", overwrite=True, preset=args.preset, crf=args.crf)
            t_enh = time.perf_counter() - t0
            assert s.frames_out == n_plain, (s.frames_out, n_plain)
            # as it goes (a run cut short by a timeout still says where its time went)
            print(f"{name}: warm-up {t_warm:.1f} s, plain {t_plain:.1f} s, enhanced {t_enh:.1f} s "
                  f"({time.perf_counter() - t_start:.0f} s since start)", flush=True)
            rows.append((name, n_plain, n_plain / t_plain, s.frames_out / t_enh, s.faces_restored, s.detector_calls,
                         s.stage_seconds))
    print(f"\n{'clip':16} {'frames':>6} {'plain fps':>10} {'enh fps':>9} {'ratio':>6} {'faces':>6} {'det':>4}")
    for name, n, fp, fe, faces, det, _ in rows:
        print(f"{name:16} {n:6d} {fp:10.2f} {fe:9.2f} {fe / fp:6.2f} {faces:6d} {det:4d}")
    for name, *_, stages in rows:
        print(f"{name:16} stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in sorted(stages.items())))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if cuda:
        print(f"peak CUDA memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
