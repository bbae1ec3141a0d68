#!/usr/bin/env python3
"""`make demo`: enhance the sample clip and photo with the best model available.

Tries ``--model auto`` (official GPEN weights, downloaded if the network allows). When they are
missing and cannot be fetched, says so in one paragraph and runs the same job with the offline
``classic`` enhancer, so the demo always finishes. Writes to ``samples/out/``:
the enhanced clip (audio kept), the enhanced photo, and a side-by-side comparison image.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def _side_by_side(before: np.ndarray, after: np.ndarray, label_a: str, label_b: str) -> np.ndarray:
    h = max(before.shape[0], after.shape[0])
    pad = lambda im: np.pad(im, ((0, h - im.shape[0]), (0, 0), (0, 0)))  # noqa: E731
    grid = np.concatenate([pad(before), np.full((h, 8, 3), 255, np.uint8), pad(after)], axis=1)
    grid = np.ascontiguousarray(grid)
    for x, text in ((10, label_a), (before.shape[1] + 18, label_b)):
        cv2.putText(grid, text, (x, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(grid, text, (x, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return grid


def _detector_weights() -> Path | None:
    """The RetinaFace MobileNet file, if the weights cache lacks it but a development checkout has
    it in ``../shared/weights`` (or ``$STREAM_GPEN_SHARED/weights``): lets the demo run offline
    there. Elsewhere ``None``: the weights manager finds or downloads it as usual."""
    import os

    from stream_gpen.weights import DETECTOR_FILES, find_weights

    wf = DETECTOR_FILES["retinaface-mobilenet0.25"]
    if find_weights(wf) is not None:
        return None
    shared = Path(os.environ.get("STREAM_GPEN_SHARED", HERE.parent.parent / "shared"))
    candidate = shared / "weights" / wf.filename
    return candidate if candidate.is_file() else None


def _build(model: str, device: str, download: bool):
    from stream_gpen import Enhancer

    det = _detector_weights()
    return Enhancer(model, device=device, download=download, detector="mobilenet0.25" if det else "auto",
                    detector_weights=det)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--no-download", action="store_true", help="do not try to download weights")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default samples/out)")
    args = ap.parse_args(argv)
    out_dir = args.out

    from stream_gpen.errors import WeightsError

    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        enh = _build(args.model, args.device, download=not args.no_download)
    except WeightsError as exc:
        if args.model != "auto":
            raise
        msg = (
            f"GPEN weights are not available here: {' '.join(str(exc).split()).rstrip('.')}. "
            "The demo now falls back to the offline 'classic' enhancer (non-neural denoise and "
            "detail boost) so you can see the whole pipeline work; put the file where the message "
            "says (or run `stream-gpen weights download gpen-bfr-256`) and rerun `make demo` for "
            "GPEN results."
        )
        print("\n" + textwrap.fill(msg, width=100, break_long_words=False, break_on_hyphens=False) + "\n",
              file=sys.stderr)
        enh = _build("classic", args.device, download=False)

    photo_in = HERE / "astronaut_degraded.jpg"
    clip_in = HERE / "astronaut_clip.mp4"
    photo_out = out_dir / "astronaut_degraded_enhanced.jpg"
    clip_out = out_dir / "astronaut_clip_enhanced.mp4"

    print(f"model: {enh.model_name} on {enh.device}", file=sys.stderr)
    s = enh.enhance_file(photo_in, photo_out, overwrite=True)
    print(f"photo: {s.faces_restored} face(s) restored -> {photo_out}", file=sys.stderr)

    from stream_gpen.commands import _Progress

    progress = _Progress(True, clip_in.name)
    s = enh.enhance_file(clip_in, clip_out, overwrite=True, on_progress=progress)
    progress.close()
    print(s.format(), file=sys.stderr)
    print(f"clip: -> {clip_out}", file=sys.stderr)

    before = cv2.imread(str(photo_in))
    after = cv2.imread(str(photo_out))
    side = _side_by_side(before, after, "input", f"stream-gpen ({enh.model_name})")
    side_path = out_dir / "astronaut_side_by_side.jpg"
    cv2.imwrite(str(side_path), side, [cv2.IMWRITE_JPEG_QUALITY, 92])
    print(f"side-by-side: {side_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
