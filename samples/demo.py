#!/usr/bin/env python3
"""`make demo`: enhance the sample clip and photo with the best model available.

Tries ``--model auto`` (official GPEN weights, downloaded if the network allows). When they are
missing and cannot be fetched, says so in one paragraph and runs the same job with the non-neural
``classic`` enhancer. Every model needs the RetinaFace face detector (1.7 MB on CPU, downloaded
like the rest): without it the demo says which file is missing, where to get it and where to put
it, and exits with status 3; a weights error that is not a missing file (a ``STREAM_GPEN_HOME``
that cannot be used, a ``--model`` file that cannot be read) is said as it is, with its hint,
same status. Writes to ``samples/out/``: the enhanced clip (audio kept), the
enhanced photo, and a side-by-side comparison image.
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


def _say(msg: str) -> None:
    print("\n" + textwrap.fill(msg, width=100, break_long_words=False, break_on_hyphens=False) + "\n",
          file=sys.stderr)


def _give_up(exc, what: str) -> int:
    """One paragraph for a file no fallback can do without (the detector, or a model asked for by
    name), then the error's exit status: no traceback for a missing download."""
    name = getattr(exc, "weights_name", None)
    fetch = f"run `stream-gpen weights download {name}`" if name else "get the file named above"
    hint = f" ({exc.hint})" if getattr(exc, "hint", None) else ""
    _say(f"The demo cannot run without {what}: {' '.join(str(exc).split()).rstrip('.')}{hint}. "
         f"Put the file where the message says (or {fetch} where the network allows) and rerun "
         "`make demo`.")
    return exc.exit_code


def _fail(exc) -> int:
    """An error that is not about a file to fetch (a cache setting that cannot be used, a checkpoint
    that cannot be read): its own message and hint, as the command line says them."""
    print(f"demo: error: {' '.join(str(exc).split())}", file=sys.stderr)
    if getattr(exc, "hint", None):
        print(f"hint: {exc.hint}", file=sys.stderr)
    return exc.exit_code


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--no-download", action="store_true", help="do not try to download weights")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default samples/out)")
    args = ap.parse_args(argv)
    out_dir = args.out

    from stream_gpen.errors import WeightsError
    from stream_gpen.weights import DETECTOR_FILES

    out_dir.mkdir(parents=True, exist_ok=True)
    download = not args.no_download
    try:
        enh = _build(args.model, args.device, download=download)
    except WeightsError as exc:
        name = getattr(exc, "weights_name", None)
        if name in DETECTOR_FILES:  # `classic` needs the same detector: no fallback helps
            return _give_up(exc, "the RetinaFace face detector")
        if args.model != "auto":
            return _give_up(exc, f"the weights of --model {args.model}") if name else _fail(exc)
        fetch = f"run `stream-gpen weights download {name}`" if name else "get the file named above"
        try:  # (before saying it falls back: without the detector the fallback cannot run either)
            enh = _build("classic", args.device, download=download)
        except WeightsError as det_exc:
            if getattr(det_exc, "weights_name", None) not in DETECTOR_FILES:
                return _fail(det_exc)  # (not the detector missing: say what is wrong instead)
            return _give_up(det_exc, "the RetinaFace face detector, which the classic fallback needs too (the GPEN "
                            f"weights are missing as well: {fetch} for GPEN results)")
        _say(
            f"GPEN weights are not available here: {' '.join(str(exc).split()).rstrip('.')}. "
            "The demo now falls back to the 'classic' enhancer (non-neural denoise and detail "
            "boost; it still needs the RetinaFace face detector) so you can see the whole "
            f"pipeline work; put the file where the message says (or {fetch}) and rerun "
            "`make demo` for GPEN results."
        )

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
