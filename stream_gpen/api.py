"""The Python API: ``from stream_gpen import Enhancer``.

::

    from stream_gpen import Enhancer
    enh = Enhancer(model="auto", device="auto")       # GPEN-512 on CUDA, GPEN-256 on CPU
    out = enh.enhance_image(rgb_uint8_array)          # HxWx3 (or HxWx4, or HxW) numpy array
    summary = enh.enhance_file("in.mp4", "out.mp4")   # video, image or folder; audio kept
    for f in enh.stream("/dev/video0"):               # live: enhanced frames with timestamps
        show(f.image, f.time)

One ``Enhancer`` holds one model instance per device and may be reused for many files; threads
may share one (measured: results identical to serial runs). They take turns in the model: one
``enhance_images`` call at a time, and GPEN's runner takes one batch at a time.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import numbers
import os
import re
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Iterator, Literal, TypeVar, get_args

import numpy as np
import torch

from stream_gpen._places import holds as _holds, same_place as _same_place
from stream_gpen.io._capture import CaptureMode
from stream_gpen.errors import MAX_BATCH_SIZE, PATH_HINT
from stream_gpen.errors import (
    Cancelled,
    CheckpointError,
    InvalidInputError,
    Interrupted,
    OutputExistsError,
    StreamGpenError,
    WeightsError,
)
from stream_gpen.summary import MISFIT, RunSummary, StageTimer, misfit_hint, misfit_options, skipped_entry
from stream_gpen.faces._detector import DEFAULT_MIN_SCORE, DETECT_SCORE, SMALL_FACES, check_min_score


log = logging.getLogger(__name__)

_SINK_QUEUE = 4  # frames queued for the encoder thread
#: the detector's long side by default: video frames (detected every few frames, tracked between)
#: and photos (one detection each; small faces of group photos need the pixels)
VIDEO_DETECT_SIZE, PHOTO_DETECT_SIZE = 640, 2560
FaceSelect = Literal["all", "largest", "center"]
Precision = Literal["auto", "fp32", "fp16", "bf16"]
AudioMode = Literal["copy", "aac", "none"]
Encoder = Literal["software", "nvenc", "auto"]


@dataclass(frozen=True)
class EnhancedFrame:
    """One enhanced frame from :meth:`Enhancer.stream` or :meth:`Enhancer.stream_frames`:
    ``index`` (the source's frame number, from 0: a live source that drops stale frames skips
    numbers), ``pts`` and ``time_base`` (the source's timestamp: ``time`` = pts x time_base
    seconds; pictures given without one are timed by the ``fps`` asked for);
    ``image``: RGB ``uint8`` ``[H,W,3]`` numpy array (grey input comes back as three channels);
    for a 10/12-bit source also ``hi``, the same picture as RGB ``uint16`` (0..65535, the
    source's precision outside the faces), else ``None``; for a source with transparency (keyed
    footage) ``alpha``, ``[H,W]`` ``uint8`` (``uint16`` for a >8-bit source), else ``None``;
    for a photo (a photo file, or each photo of a folder) ``path``, the file it was read from
    (a folder's photos come in name order, so ``index`` alone does not say which), else ``None``.
    A photo of several pictures (an animated WebP/PNG/AVIF, a multi-page TIFF, a HEIF's
    pictures) gives one frame each: ``index`` is the picture's number in the file, from 0, and
    an animation's ``time`` its own, from its frames' durations (``time_base`` 1/1000); an
    APNG's cover (its default image, which no player shows as a frame) is left out. Pictures
    with no time of their own (a TIFF's pages, a folder's photos) are a second apart:
    ``pts`` = ``index``, ``time_base`` 1. A folder's ``index`` counts the frames it gave, every
    page one (consecutive frames with one ``path`` are that file's pages, in order)."""

    index: int
    image: np.ndarray
    pts: int | None
    time_base: Fraction
    time: float
    hi: np.ndarray | None = None
    alpha: np.ndarray | None = None
    path: str | None = None


def _cancelled(said: str, summary) -> Cancelled:
    """The :class:`Cancelled` of a run stopped by ``cancel`` (or a callback raising it): an
    :class:`Interrupted`'s message with "cancelled"."""
    err = Cancelled("cancelled" + said[len("interrupted"):] if said.startswith("interrupted") else said)
    err.summary = summary
    return err


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _cancel_is_not_ctrl_c(method: _Method) -> _Method:
    """A run stopped by its ``cancel`` event raises :class:`Cancelled` (with the same summary),
    not the :class:`Interrupted` (a KeyboardInterrupt) it unwinds with inside: that ended a host's
    asyncio event loop when raised in a worker thread."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Interrupted as exc:
            cancel = kwargs.get("cancel")
            if cancel is None or not cancel.is_set():
                raise
            err = _cancelled(str(exc), exc.summary)
        raise err  # (outside the except: no KeyboardInterrupt in its context to be re-raised by a host)

    # (typed as the method it wraps: type checkers saw enhance_file as Any, its keywords unchecked)
    return wrapper  # type: ignore[return-value]


def default_model_name(device: torch.device) -> str:
    """GPEN-512 on CUDA (quality), GPEN-256 on CPU (16x cheaper per face)."""
    return "gpen-bfr-512" if device.type == "cuda" else "gpen-bfr-256"


def build_restorer(
    model,
    *,
    device: torch.device,
    precision: str = "auto",
    batch_size: int = 8,
    weights: str | Path | None = None,
    download: bool = True,
    progress: bool = True,
    compile: bool = False,
    cpu_memory: str = "keep",
    notes: list[str] | None = None,
):
    """Resolve a model request to a restorer (``crops uint8 [n,3,S,S] -> same``).

    ``notes``: where what was given and not used (weights with the classic model...) is kept, for
    the run summary's fallbacks; it is logged too.

    ``model``: ``"auto"`` (an official GPEN checkpoint: found on disk or downloaded; never a silent
    downgrade), a registry name (``"gpen-bfr-512"``…), ``"classic"`` (the offline non-neural
    enhancer), a checkpoint path, an ``nn.Module`` GPEN generator (a copy of it runs: the caller's
    module is left as it was), or a ready restorer object.
    """
    from stream_gpen.models.registry import MODELS
    from stream_gpen.runtime import FaceRunner

    buckets = tuple(b for b in (1, 2, 4, 8, 16, 32) if b <= max(1, batch_size))
    if buckets[-1] != batch_size and batch_size > 0:
        buckets = tuple(sorted(set(buckets + (batch_size,))))

    def unused(msg: str, *args) -> None:
        log.warning(msg, *args)
        if notes is not None:
            notes.append(msg % args)

    def runner_for(module: torch.nn.Module, size: int, name: str):
        return FaceRunner(module, size=size, device=device, precision=precision, buckets=buckets, name=name,
                          compile=compile, cpu_memory=cpu_memory)

    if weights is not None and not isinstance(model, (str, Path)):
        # (a restorer or module given itself: its weights are its own; said, as for the classic model)
        unused("model is a %s object, which has its own weights: %s is not used", type(model).__name__, weights)
    if isinstance(model, torch.nn.Module):
        size = int(getattr(getattr(model, "config", None), "size", 0) or getattr(model, "size", 0))
        if not size:
            raise InvalidInputError("an nn.Module model needs a .config.size or .size attribute (crop size)")
        # the runner takes its module over (eval mode, no gradients, channels-last, onto the
        # device): a copy, so that the caller's (say, mid fine-tuning) trains on as it was
        import copy

        return runner_for(copy.deepcopy(model), size, type(model).__name__)
    if callable(model) and hasattr(model, "size") and not isinstance(model, (str, Path)):
        return model  # a ready restorer (runner, classic, or a test double)
    if not isinstance(model, (str, Path)):
        raise InvalidInputError(f"model must be a name, a path or a module, got {type(model).__name__}"
                                + (" (a restorer callable needs a .size attribute: its crop size)" if callable(model)
                                   else ""))
    name = str(model)
    if name.lower() in ("classic", "auto") or name.lower() in MODELS:
        name = name.lower()  # `--model GPEN-BFR-512`, as the checkpoint files are named
    if name == "classic":
        from stream_gpen.models.classic import ClassicRestorer

        if weights is not None:
            unused("the classic model has no weights: %s is not used", weights)
        if precision not in ("auto", "fp32"):
            unused("the classic model computes in fp32: precision %s is not used", precision)
        if compile:
            unused("the classic model is not a network: compile is not used")

        # Faces are cut at 512 on every device: a 256 crop pasted back enlarged blurred every face
        # larger than 256 px (a 512 px face lost ~70% of its Laplacian variance). On CPU the
        # filters run at 256 (work_size), where NLM costs ~3x less per face, and only their change
        # is enlarged onto the crop, so its finer detail stays (docs/classic.md).
        return ClassicRestorer(size=512, work_size=None if device.type == "cuda" else 256, device=device)
    from stream_gpen.models.loading import load_generator
    from stream_gpen.weights import ensure_weights

    auto = name == "auto"
    if auto:
        name = default_model_name(device)
    if name in MODELS:
        spec = MODELS[name]
        path = ensure_weights(spec, path=weights, download=download, progress=progress)
        try:
            gen = load_generator(path, spec=spec, device=device, expected_as=(
                f"{name}, the default model on {device.type} (--model auto)" if auto else None))
        except CheckpointError as exc:
            # the copy the search found (not a file the user named): say so, and how to replace it
            from stream_gpen.weights import managed_copy_hint

            hint = managed_copy_hint(spec, path)
            if hint is None:
                raise
            exc.hint = hint
            raise exc from None
        return runner_for(gen, spec.input_size, name)
    path = Path(name).expanduser()
    if path.exists():
        if weights is not None and Path(weights).expanduser().resolve() != path.resolve():
            # (the model named by its path is the checkpoint; weights= goes with a registry name)
            unused("%s is not used: the model is the checkpoint file %s (weights go with a registry name, "
                        "e.g. model 'gpen-bfr-512')", weights, path)
        if path.is_file():  # (the search's copies were checked when found; this one was not)
            from stream_gpen.weights import _refuse_damaged

            _refuse_damaged(path, "checkpoint")
        gen = load_generator(path, device=device)
        return runner_for(gen, gen.config.size, path.name)
    close = _closest_model(name)
    raise InvalidInputError(
        f"unknown model {model!r}: not a registry name ({', '.join(MODELS)}, auto, classic) "
        "and no such checkpoint file", hint=f"did you mean {close[0]}?" if close else None
    )


def _said(value) -> str:
    """``value`` as a message says it: a float as a clean number (``min_face=30``, not ``30.0``)."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return repr(value)


def detection_options_given(*, faces="all", max_faces=None, min_face=0.0, min_score=DEFAULT_MIN_SCORE,
                            detect_size=None, detect_every=5, check_landmarks=True, smooth_lag=None,
                            detector="auto", detector_weights=None) -> list[str]:
    """The Enhancer options that only face detection uses (none of them with ``aligned=True``)
    given other than their defaults, each said as ``name=value (--option)``: an aligned Enhancer
    warns of them, and ``serve --aligned`` loads its detector at start-up for them (its requests
    with ``?aligned=false`` are then evidently meant), else on the first such request."""
    # (named both ways: the keyword, and the command line's option, whoever reads the note)
    flag = {"check_landmarks": "--no-landmark-check"}
    return [f"{name}={_said(value)} ({flag.get(name, '--' + name.replace('_', '-'))})" for name, value, default in (
        ("faces", faces, "all"), ("max_faces", max_faces, None), ("min_face", float(min_face), 0.0),
        ("min_score", float(min_score), float(DEFAULT_MIN_SCORE)), ("detect_size", detect_size, None),
        ("detect_every", detect_every, 5), ("check_landmarks", bool(check_landmarks), True),
        ("smooth_lag", smooth_lag, None), ("detector", detector, "auto"),
        ("detector_weights", None if detector_weights is None else str(detector_weights), None))
        if value != default]


def _closest_model(name: str) -> list[str]:
    """The model name ``name`` was probably meant to be (``[]``: none): the same letters and size
    less the dashes and "bfr" (``gpen256``, ``GPEN_BFR_512``, ``GPEN-BFR-512.pth``), else a near miss."""
    import difflib
    import re

    from stream_gpen.models.registry import MODELS

    names = [*MODELS, "auto", "classic"]

    def bare(n: str) -> str:
        return re.sub(r"[^a-z0-9]", "", n.lower().removesuffix(".pth")).replace("bfr", "")

    same = [n for n in names if bare(n) == bare(name)]
    return same[:1] or difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.75)


def _to_rgb_tensor(image: np.ndarray) -> tuple[torch.Tensor, np.ndarray | None, torch.Tensor | None]:
    """numpy image -> (RGB uint8 [H,W,3] tensor, alpha or None, the RGB uint16 picture or None).
    Grey images are expanded; a uint16 image (0..65535) also gives its 8-bit twin ``round(v / 257)``."""
    if not isinstance(image, np.ndarray):
        raise InvalidInputError(f"image must be a numpy array, got {type(image).__name__}"
                                + (" (a PIL image: np.asarray(image.convert('RGB')))" if hasattr(image, "getbands") else ""))
    if image.dtype.kind == "u" and image.dtype.itemsize == 2 and not image.dtype.isnative:
        image = image.astype(np.uint16)  # big-endian 16 bits (Pillow's I;16B, FITS, raw PGM): the same levels
    if image.dtype not in (np.uint8, np.uint16):
        raise InvalidInputError(f"image must be uint8 (or uint16, 0..65535), got {image.dtype}")
    alpha = None
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        alpha = image[:, :, 3].copy()
        image = image[:, :, :3]
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidInputError(f"image must be HxW, HxWx3 or HxWx4, got shape {image.shape}")
    # Always a copy: faces are pasted in place and the caller's array must stay untouched.
    if image.dtype == np.uint16:
        hi = np.array(image, copy=True, order="C")
        from stream_gpen.io._convert import u8_from_u16

        return torch.from_numpy(u8_from_u16(hi)), alpha, torch.from_numpy(hi)
    return torch.from_numpy(np.array(image, copy=True, order="C")), alpha, None


def _from_rgb_tensor(t: torch.Tensor, alpha: np.ndarray | None, hi: torch.Tensor | None,
                     like: np.ndarray) -> np.ndarray:
    """The restored picture (``t``, or its 16-bit ``hi``) back in the form :func:`_to_rgb_tensor`
    took it from (``like``): grey stays grey, the alpha plane is put back, a big-endian picture
    comes back big-endian."""
    arr = (hi if hi is not None else t).cpu().numpy()
    if like.ndim == 2 or (like.ndim == 3 and like.shape[2] == 1):
        # the luma the photo writer takes (Pillow's convert("L"); its formula at 16 bits), not
        # the channels' mean: enhance_image and enhance_file of one grey photo differed by 26 levels
        if arr.dtype == np.uint8:
            from PIL import Image

            # (a copy: Pillow's buffer is read-only, and the caller was promised a new array, api23)
            arr = np.array(Image.fromarray(np.ascontiguousarray(arr), "RGB").convert("L"))
        else:
            from stream_gpen.io._image import _deep_pixels

            arr = _deep_pixels(arr.astype(np.uint16, copy=False), grey=True, alpha=None)
        arr = arr.reshape(like.shape)
    elif alpha is not None:
        arr = np.concatenate([arr, alpha[:, :, None]], axis=2)
    if like.dtype != arr.dtype and like.dtype.kind == "u" and like.dtype.itemsize == arr.dtype.itemsize:
        arr = arr.astype(like.dtype)
    return arr


class Enhancer:
    """Restore faces in images, files, folders and live streams.

    Options (keyword-only after ``model``):

    * ``model``: ``"auto"`` (default: GPEN-BFR-512 on CUDA, GPEN-BFR-256 on CPU; downloaded if
      missing and the network allows, else a :class:`~stream_gpen.errors.WeightsNotFoundError`
      saying where to put the file), a registry name, ``"classic"`` (offline, non-neural), a
      checkpoint path, an ``nn.Module`` (a copy of it runs) or a restorer object.
    * ``device``: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, or a ``torch.device`` of those
      (``torch.device("cuda", 1)``). ``"auto"`` runs on the CPU where torch sees no CUDA device (said in
      the run summary's fallbacks); a CUDA device asked for by name that is not there is a
      :class:`~stream_gpen.errors.DeviceError`.
    * ``precision``: ``"auto"`` (fp16 on CUDA; on the CPU bf16 where it has bf16 instructions and
      its bf16 convolutions measure at least 1.2x faster than fp32 (timed once a process, ~0.1 s):
      AMD Zen 4 ran GPEN ~1.8-2x fp32 with output ~53 dB PSNR from fp32's, an Intel Xeon with
      avx512_bf16 and no AMX 0.7x; else fp32), ``"fp32"`` (exact), ``"fp16"``, ``"bf16"``.
    * ``batch_size``: largest face batch (bucket), 1 to 256. Larger batches use the GPU better but
      hold more frames in flight (more latency, more memory).
    * ``detect_every``: run the detector every k frames and track in between. Higher is faster;
      new faces appear up to k-1 frames later (scene cuts and lost tracks always re-detect).
    * ``faces``: ``"all"``, the ``"largest"`` face, or the one nearest the ``"center"``; in video
      the chosen face stays chosen until another is 1.3x larger (nearer the centre), so two
      similar faces do not swap with every frame's box jitter.
    * ``max_faces``: restore at most this many faces per picture, the largest, chosen as
      ``faces="largest"`` chooses (crowds cost per face); ``None`` = all. Not used (warned) with
      ``faces="largest"``/``"center"``, which restore one face.
    * ``min_face``: ignore faces smaller than this (pixels, shorter box side, on screen: a video's
      non-square pixels are made square as a player shows them). Tiny faces gain
      little and cost as much as big ones. (Video: judged at each detection.)
    * ``check_landmarks``: leave untouched a face found sideways or upside down whose landmarks
      fit no face the right way up (RetinaFace misplaces them there: the crop aligned on them
      is a turned, zoomed face, restored and pasted over the real one); ``False`` restores every
      face the detector finds, as GPEN's own script does. See ``FaceDetector``.
    * ``min_score``: in (0, 1): restore a face the detector scores at least this sure (default 0.9, GPEN's
      own threshold; faces scored lower are mostly profiles and turned heads, which the
      frontal template restores badly, and the odd false face). In video a face already being
      restored is kept down to the detector's 0.8 (or ``min_score``, if lower), so a head that
      turns does not blink in and out of restoration.
    * ``detector``: RetinaFace backbone: ``"auto"`` (the backbone of a ``detector_weights``
      file; else ResNet-50 on CUDA, MobileNet-0.25 on CPU), ``"resnet50"``, ``"mobilenet0.25"``.
      ``detector_weights`` overrides its file.
    * ``detect_size``: the detector sees pictures downscaled to this long side (never upscaled).
      Lower is faster but misses small faces (below ~16 px at that scale). ``None`` (default):
      for video, where it runs every few frames, half the frame's long side within 640..1280
      (720p: 640, 1080p: 960, 4K: 1280; :func:`video_detect_size`); 2560 for photos, detected
      once each (a group photo's faces are small: the Solvay 1927 photo has 29 faces, 17 of
      them found at 640 at the default ``min_score``); GPEN's and GFPGAN's scripts detect photos
      at full size. A size over
      640 runs at 640 too, for the big faces (over ~512 px at the network RetinaFace finds a
      selfie's eye and mouth instead of its face): each scale drops only the faces too small
      there (under 40 px) or too large (over 256 px), so faces in between are found at both and
      the better-scored copy is kept.
    * ``weights``: explicit GPEN checkpoint path (overrides the weights cache);
      ``download``: allow downloads of missing weights; ``progress``: show a download's progress
      bar on stderr.
    * ``smooth_lag``: frames of look-ahead for landmark smoothing on files (not live sources, which
      never wait). ``None`` = the measured default (5 frames,
      :data:`stream_gpen.faces._smoother.DEFAULT_LAG`), ``0`` = off. More look-ahead = steadier
      crops (less shimmer of the restored face), at the cost of ``2 * smooth_lag`` more frames held
      in the ring (memory: half of them for repeated frames, docs/tracking.md) and ``smooth_lag`` in
      flight; too much also rounds off real fast head motion
      (docs/tracking.md).
    * ``compile``: ``torch.compile`` the GPEN runner (fuses element-wise ops; exact to 2e-6). On
      a quiet 2-core CPU it measured 1.2x the fp32 eager form per face at batch 4 and no gain in
      bf16, after seconds to minutes of compiling per batch size; on a GPU it fuses under the CUDA
      graph (docs/gpu.md). Off by default.
    * ``deinterlace``: ``"auto"`` (default) deinterlaces interlaced video (field order in the
      stream or frames flagged interlaced: VHS/DV/broadcast captures) with FFmpeg's ``bwdif``,
      one frame per frame, same timestamps, so faces are detected and restored whole instead of
      as combed fields (the output is progressive); ``"off"`` keeps the frames as decoded.
    * ``mask``: what of each restored crop is pasted. ``"feather"`` (default): the whole crop
      with a soft square edge; cheap, and steady in video. ``"parse"``: GPEN's own paste-back,
      a face-parsing network (ParseNet, :class:`~stream_gpen.faces.FaceParser`) run on each
      restored face keeps only face, hair, ears and neck, so the background GPEN re-draws
      inside the crop, hats and clothes stay original. ParseNet is expensive: 468 GFLOP per
      face, 1.7x GPEN-512 and 27x GPEN-256 (~3.5 s per face on a 2-core CPU), so in video a
      face's mask is recomputed every 5 frames and cross-faded in over the next 5 (it is in crop
      coordinates, which follow the face; ``FaceStage.parse_every``). Its weights (``parsenet``) are
      downloaded like the model's, or given with ``parser_weights`` (not used, and warned about,
      without ``mask="parse"``).
    * ``strength``: blend of each restored face with the original picture (GPEN's ``alpha``),
      applied at paste time (the paste mask times ``strength``): 1.0 pastes the model's output as
      it is; lower keeps more of the original face (identity, skin texture, expression) at the
      cost of less restoration; 0 pastes nothing (the faces keep the input's pixels; the model
      still runs, and the picture is written as any output is, re-encoded).
      ``None`` = the model's default: 1.0, except 0.8 for GPEN-BFR-2048 (GPEN's run.sh).
    * ``high_bit_depth``: 10/12-bit video (phone HDR, ProRes, 10-bit AV1) keeps its precision:
      frames carry a 16-bit copy, faces are pasted into it too, and the output is written at the
      source's depth (``codec="auto"`` then picks HEVC Main 10 for 4:2:0 sources, which players
      and hardware decoders play, unlike H.264 High 10; 4:2:2 and 4:4:4 sources, ProRes and
      broadcast masters, keep their chroma: HEVC RExt 4:2:2/4:4:4, which editors take and many
      players and phones do not). Costs ~3x the ring memory and ~1.4-1.7x the
      conversion time per frame of such video; ``False`` decodes and writes 8-bit.
    * ``cpu_memory`` (GPEN on a CPU): ``"keep"`` (default) raises glibc's mmap/trim thresholds
      for the whole process once, so GPEN's large activations are reused instead of page-faulted
      on every call (measured faster, docs/benchmarks.md); the cost is that memory the process
      frees (the model's, and the host program's own) stays with it rather than going back to the
      system, and the setting outlives the Enhancer. ``"system"`` leaves the allocator alone: for a
      long-lived host program that needs its memory back.
    * ``aligned``: the inputs are aligned face crops already (FFHQ-style: GFPGAN's and
      CodeFormer's ``cropped_faces``, face datasets, the output of another aligner). Each whole
      picture (or video frame) is resized to the model's size, restored and resized back to its
      own size (GPEN's own aligned mode returns the model's S x S output instead): no detection
      (no detector is built, so its weights are neither needed nor downloaded), no paste mask,
      the crop's edges restored too. On a picture that is not such a crop the result is a distorted
      "face" over everything: leave it off for ordinary photos and video. The detection and
      face-selection options (``faces``, ``max_faces``, ``min_face``, ``min_score``,
      ``detect_size``, ``detect_every``, ``check_landmarks``, ``smooth_lag``) are not used then;
      given, they are warned about.
    """

    # (declared: set by tuple unpacking or from getattr, type checkers could not tell their types)
    #: the device the model runs on
    device: torch.device
    #: the model's registry name, checkpoint path or class name
    model_name: str
    #: blend of each restored face with its input crop (1.0 = model output as it is)
    strength: float

    def __init__(
        self,
        model: str | Path | torch.nn.Module | Callable[[torch.Tensor], torch.Tensor] = "auto",
        *,
        device: str | torch.device = "auto",
        precision: Precision = "auto",
        batch_size: int = 8,
        detect_every: int = 5,
        faces: FaceSelect = "all",
        min_face: float = 0.0,
        max_faces: int | None = None,
        min_score: float = DEFAULT_MIN_SCORE,
        check_landmarks: bool = True,
        detector: Literal["auto", "resnet50", "mobilenet0.25"] = "auto",
        detector_weights: str | Path | None = None,
        detect_size: int | None = None,
        weights: str | Path | None = None,
        download: bool = True,
        progress: bool = True,
        compile: bool = False,
        smooth_lag: int | None = None,
        deinterlace: Literal["auto", "off"] = "auto",
        mask: Literal["feather", "parse"] = "feather",
        parser_weights: str | Path | None = None,
        strength: float | None = None,
        high_bit_depth: bool = True,
        aligned: bool = False,
        cpu_memory: Literal["keep", "system"] = "keep",
    ) -> None:
        from stream_gpen.faces import FaceDetector
        from stream_gpen.runtime import select_device

        if faces not in get_args(FaceSelect):
            raise InvalidInputError(f"faces must be one of {get_args(FaceSelect)}, got {faces!r}")
        if precision not in get_args(Precision):
            raise InvalidInputError(f"precision must be one of {get_args(Precision)}, got {precision!r}")
        # (numpy numbers are numbers: an app's np.int64 or np.float32 was refused as out of range)
        if not _whole(batch_size) or not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise InvalidInputError(f"batch_size must be an int in [1, {MAX_BATCH_SIZE}], got {batch_size!r}")
        if not _whole(detect_every) or detect_every < 1:
            raise InvalidInputError(f"detect_every must be an int >= 1, got {detect_every!r}")
        if not _real(min_face) or not 0 <= min_face < float("inf"):
            raise InvalidInputError(f"min_face must be a number >= 0, got {min_face!r}")
        if max_faces is not None and (not _whole(max_faces) or max_faces < 1):
            raise InvalidInputError(f"max_faces must be None or an int >= 1, got {max_faces!r}")
        batch_size, detect_every, min_face = int(batch_size), int(detect_every), float(min_face)
        max_faces = None if max_faces is None else int(max_faces)
        _check_flags(aligned=aligned, high_bit_depth=high_bit_depth, download=download, progress=progress,
                     check_landmarks=check_landmarks, compile=compile)  # (download="no" is truthy: downloads stayed on)
        if cpu_memory not in ("keep", "system"):
            raise InvalidInputError(f"cpu_memory must be one of ('keep', 'system'), got {cpu_memory!r}")
        for name, value in (("model", model), ("weights", weights), ("detector_weights", detector_weights),
                            ("parser_weights", parser_weights)):
            _not_empty(name, value)  # (Path("") is the working folder: "checkpoint . is a folder")
        for name, value in (("weights", weights), ("detector_weights", detector_weights),
                            ("parser_weights", parser_weights)):
            if value is not None and not isinstance(value, (str, bytes, bytearray, os.PathLike)):
                # (weights=5 was pathlib's bare TypeError six frames down, which
                # `except StreamGpenError` missed)
                raise InvalidInputError(f"{name} must be a path or None, got {type(value).__name__}")
        # (a path as bytes, as enhance_file takes one: detector_weights=b"x.pth" was a TypeError)
        weights, detector_weights, parser_weights = (_text_path(weights), _text_path(detector_weights),
                                                     _text_path(parser_weights))
        if (isinstance(min_score, bool) or not isinstance(min_score, numbers.Real)
                or not 0.0 < min_score < 1.0):  # (the detector's own check takes 0 too: one message here)
            raise InvalidInputError(f"min_score must be a number in (0, 1), got {min_score!r}")
        check_min_score(min_score)
        if smooth_lag is not None and (not _whole(smooth_lag) or not 0 <= smooth_lag <= 64):
            raise InvalidInputError(f"smooth_lag must be None (default) or an int in [0, 64], got {smooth_lag!r}")
        smooth_lag = None if smooth_lag is None else int(smooth_lag)
        if deinterlace not in ("auto", "off"):
            raise InvalidInputError(f"deinterlace must be one of ('auto', 'off'), got {deinterlace!r}")
        if strength is not None and (not _real(strength) or not 0.0 <= strength <= 1.0):
            raise InvalidInputError(f"strength must be None (the model's default) or a number in [0, 1], got {strength!r}")
        if mask not in ("feather", "parse"):
            raise InvalidInputError(f"mask must be one of ('feather', 'parse'), got {mask!r}")
        self.mask = mask
        self.high_bit_depth = bool(high_bit_depth)
        self.aligned = bool(aligned)
        if detect_size is not None and (not _whole(detect_size) or detect_size < 32):
            raise InvalidInputError(f"detect_size must be an int >= 32 or None, got {detect_size!r}")
        detect_size = None if detect_size is None else int(detect_size)
        #: the detector's long side for all pictures, or None: 640 for video, 2560 for photos
        self.detect_size = detect_size
        self.smooth_lag = smooth_lag
        self.deinterlace = deinterlace
        self.device, device_note = select_device(device)
        self.fallbacks: list[str] = [device_note] if device_note else []
        self.batch_size = batch_size
        self.detect_every = detect_every
        self.faces = faces
        self.min_face = float(min_face)
        self.max_faces = max_faces
        self.min_score = float(min_score)
        try:
            self.restorer = build_restorer(
                model, device=self.device, precision=precision, batch_size=batch_size,
                weights=weights, download=download, progress=progress, compile=compile, cpu_memory=cpu_memory,
                notes=self.fallbacks,
            )
        except WeightsError as exc:
            from stream_gpen.weights import restorer_hint

            # (its --model classic advice said the detector was "not here either" of a run given
            # --detector-weights, or of --aligned crops, which need none)
            restorer_hint(exc, detector_weights=detector_weights, aligned=bool(aligned))
            raise
        # a restorer object without a name is named by its class (its repr had an address)
        self.model_name = str(getattr(self.restorer, "name", model if isinstance(model, (str, Path))
                                      else type(model).__name__))
        from stream_gpen.models.registry import MODELS

        spec = MODELS.get(self.model_name)
        if spec is None:
            # a checkpoint given by its path that is a registry model (GPEN-BFR-2048 downloaded from
            # ModelScope as pytorch_model-2048.pt) takes that model's default strength too
            from stream_gpen.models.loading import _registry_match

            config = getattr(getattr(self.restorer, "_model32", None), "config", None)
            match = _registry_match(config) if config is not None else None
            spec = MODELS.get(match) if match else None
        #: blend of each restored face with its input crop (1.0 = model output as it is)
        self.strength = float(strength) if strength is not None else (spec.strength if spec else 1.0)
        detector_options = dict(
            # its own long side is the pyramid's coarse scale (FaceStage._detect): big faces
            backbone=detector, device=self.device, weights=detector_weights,
            long_side=min(detect_size or VIDEO_DETECT_SIZE, VIDEO_DETECT_SIZE),
            min_face=self.min_face, small_faces=self.min_face * SMALL_FACES, max_faces=None,
            score_threshold=min(DETECT_SCORE, self.min_score),
            check_landmarks=check_landmarks, download=download, progress=progress,  # (`--no-download` holds for the detector too)
        )
        # Aligned crops are never detected on: no detector weights are needed (offline) or fetched
        # (104 MB on CUDA). A copy that detects after all (a server view of an aligned Enhancer with
        # aligned=False) builds it on first use; the list is shared by shallow copies, so once.
        self._detector_box: list = [None, detector_options, threading.Lock()]
        if not self.aligned:
            self._detector_box[0] = FaceDetector(**detector_options)
        self.parser = None
        self._note_unused(faces=faces, max_faces=max_faces, min_face=min_face, min_score=min_score,
                          detect_size=detect_size, detect_every=detect_every, check_landmarks=check_landmarks,
                          smooth_lag=smooth_lag, parser_weights=parser_weights, detector=detector,
                          detector_weights=detector_weights)
        if mask == "parse" and self.aligned:
            # an aligned crop is replaced whole, as GPEN's aligned mode does: no mask to parse for
            note = "mask='parse' (--mask parse) is not used with aligned=True (--aligned): each aligned crop is restored whole"
            log.warning(note)
            self.fallbacks.append(note)
        elif mask == "parse":
            from stream_gpen.faces import FaceParser
            from stream_gpen.weights import ensure_weights

            if parser_weights is None:
                parser_weights = ensure_weights("parsenet", download=download, progress=progress)
            self.parser = FaceParser(weights=parser_weights, device=self.device)
        self._lock = threading.Lock()

    def _note_unused(self, *, faces, max_faces, min_face, min_score, detect_size, detect_every, check_landmarks,
                     smooth_lag, parser_weights, detector="auto", detector_weights=None) -> None:
        """Options given (not left at their defaults) that this Enhancer does not use, each logged
        once and kept in the fallbacks (the run summary), as an unused ``mask`` is: not silently
        ignored."""
        notes = []
        if self.aligned:
            given = detection_options_given(
                faces=faces, max_faces=max_faces, min_face=min_face, min_score=min_score, detect_size=detect_size,
                detect_every=detect_every, check_landmarks=check_landmarks, smooth_lag=smooth_lag, detector=detector,
                detector_weights=detector_weights)
            if given:
                notes.append(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} not used with aligned=True "
                             "(--aligned): no faces are detected, each aligned crop is restored whole")
        elif max_faces is not None and faces != "all":
            notes.append(f"max_faces={max_faces} (--max-faces) is not used with faces={faces!r} (--faces {faces}), "
                         "which restores one face")
        if parser_weights is not None and self.mask != "parse":
            notes.append(f"parser_weights (--parser-weights) is not used without the parse mask (the {self.mask} "
                         "mask needs no face parser): use mask='parse' (--mask parse) to use it")
        for note in notes:
            log.warning(note)
            self.fallbacks.append(note)

    @property
    def detector(self):
        """The RetinaFace detector, built on first use by an Enhancer made with ``aligned=True``.
        With ``min_face`` it also returns faces down to half of it (``small_faces``: a video's
        tracker ends the track of a face found that small), and faces scored under ``min_score``
        down to 0.8 (a tracked face is kept by them): candidates, not all restored."""
        box = self._detector_box
        with box[2]:
            if box[0] is None:
                from stream_gpen.faces import FaceDetector

                box[0] = FaceDetector(**box[1])
        return box[0]

    def __copy__(self) -> "Enhancer":
        # a shallow copy shares the model, the detector and the lock (the server's per-request views)
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo) -> "Enhancer":
        raise TypeError("an Enhancer holds a loaded model and is not deep-copied: copy.copy() gives a view that "
                        "shares it; create another Enhancer for a second model instance")

    def __reduce__(self):
        # (pickle's own "cannot pickle '_thread.lock' object" named neither the Enhancer nor a way out)
        raise TypeError("an Enhancer holds a loaded model and cannot be pickled or sent to another process: "
                        "create one in each process (with a ProcessPoolExecutor, in its initializer)")

    def __repr__(self) -> str:
        # (what was loaded, where it runs and in which precision: the default repr said only an
        # address; nothing is computed, a shallow copy's says the same)
        extra = "".join(f", {name}={value!r}" for name, value, default in (
            ("mask", getattr(self, "mask", "feather"), "feather"), ("aligned", getattr(self, "aligned", False), False))
            if value != default)
        return (f"{type(self).__name__}(model={getattr(self, 'model_name', '?')!r}, "
                f"device={str(getattr(self, 'device', '?'))!r}, precision={self.precision!r}{extra})")

    # --- helpers -------------------------------------------------------------------------------
    def _max_pending(self) -> int:
        # Frames whose faces wait for a full batch. Each holds a ring slot, so the ring is sized
        # from this (plus the sink's queue): memory stays bounded and the decoder never starves.
        return max(2, min(self.batch_size, 16))

    @property
    def precision(self) -> str:
        """The precision the model computes in (``"fp32"``, ``"fp16"``, ``"bf16"``): ``precision="auto"``
        resolved."""
        return str(getattr(getattr(self, "restorer", None), "precision", "fp32"))

    @property
    def paste_mask(self) -> str:
        """The paste mask the runs use (``"feather"`` or ``"parse"``), what the summary and report
        say: ``mask="parse"`` with ``aligned=True`` pastes no parsed mask (each aligned crop is
        restored whole, as its note at construction says), so it is ``"feather"`` there, the
        default that names no parsing (the report said "parse", the summary "0 faces parsed")."""
        return "parse" if self.mask == "parse" and self.parser is not None and not self.aligned else "feather"

    def _all_fallbacks(self) -> list[str]:
        out = list(self.fallbacks)
        for part in (self.restorer, self._detector_box[0], self.parser):
            out += [str(f) for f in getattr(part, "fallbacks", []) or []]
        return out

    def _file_lag(self) -> int:
        """Look-ahead (frames) for non-live sources: ``smooth_lag``, or the measured default."""
        from stream_gpen.faces._smoother import DEFAULT_LAG

        return DEFAULT_LAG if self.smooth_lag is None else self.smooth_lag

    def _stage(self, timer: StageTimer | None = None, *, lag: int = 0):
        """A fresh face stage; ``lag`` > 0 adds a fixed-lag smoother (non-live sources only)."""
        from stream_gpen.faces import FaceTracker, FixedLagSmoother
        from stream_gpen.faces._smoother import TRACKER_OPTIONS
        from stream_gpen.pipeline import FaceStage

        tracker = FaceTracker(
            detect_every=self.detect_every, select=self.faces, min_face=self.min_face, max_faces=self.max_faces,
            min_score=self.min_score,
            **(TRACKER_OPTIONS if lag > 0 else {}),
        )
        smoother = FixedLagSmoother(lag=lag) if lag > 0 and not self.aligned else None
        return FaceStage(self.restorer, None if self.aligned else self.detector, tracker, timer=timer or StageTimer(), smoother=smoother,
                         parser=self.parser, strength=self.strength, aligned=self.aligned,
                         still_detect_size=self.detect_size or PHOTO_DETECT_SIZE)

    def _warm_up_live(self, timer: StageTimer | None = None) -> None:
        """Capture the face model's CUDA graphs for every batch size now, before a live session's
        first frame (``timer``: counted as its ``warmup`` stage). Captured on first use instead,
        each face count first seen mid-stream (1, 2, 3-4, 5-8...) stalled a camera 0.5-2 s
        (session 16). Nothing where the restorer captures no graphs (the CPU, the classic model, a
        graph fallback): its first calls cost no capture there, and warming it up would only add
        seconds of CPU work to the start. Done once: the graphs stay for later sessions."""
        runner = self.restorer
        if getattr(runner, "cuda_graphs", False) is not True or not callable(getattr(runner, "warmup", None)):
            return
        captured = set(getattr(runner, "captured_buckets", ()))
        wanted = [b for b in runner.buckets if b <= self.batch_size and b not in captured]
        if not wanted:
            return
        log.info("warming up %s for batches %d..%d (CUDA graphs)", self.model_name, min(wanted), max(wanted))
        with (timer or StageTimer())("warmup"):
            runner.warmup(wanted)

    def _open(self, spec, *, live: bool | None = None, sink_queue: int = 0, timer: StageTimer | None = None,
              untrusted: bool = False, max_pixels: int | None = None, start: float = 0.0,
              duration: float | None = None, exclude=None, skip=None, capture=None):
        """Open ``spec`` and a face stage that fits it: ``(source, stage)``. ``capture``: a
        capture device's mode (see :func:`~stream_gpen.io.open_source`).

        The ring holds every frame the pipeline may keep at once: the pending batch and the
        repeats going out with it, the smoother's look-ahead, the sink's queue and the frame it
        encodes, the frame taken and one being decoded, so the decoder never starves
        and memory stays bounded. Live sources get no look-ahead (the ring is sized before the
        source says whether it is live; a live one then has ``lag`` spare slots). ``autorotate``:
        phone videos store sideways pixels plus a display rotation; the detector needs upright
        faces, so frames are rotated on decode and written upright (no flag).
        """
        from stream_gpen.io import open_source
        from stream_gpen.io._image import ImageSource, still_gif

        lag = 0 if live else self._file_lag()
        # (+ as many repeated frames, which may wait with the look-ahead: FaceStage.repeats_held;
        # a video at twice its frame rate, each frame shown twice, has one per frame looked ahead)
        # The sink holds its queue and the frame it encodes (FaceStage.held_downstream); the
        # batch's frames may carry a repeat each but the last two (run_stream's repeat_room: a
        # clip shown twice goes out on its repeats, max_pending - 1 frames and all their repeats
        # a call, before the frame filling the batch parts from its repeat); the frame taken and
        # one being decoded. Every slot has its owner: the repeats took the sink's, and a still
        # shot ran the ring out whenever the encoder thread was behind (hunt 32).
        downstream = sink_queue + 1 if sink_queue else 0
        ring = 2 * self._max_pending() + 2 * lag + downstream - 1
        # (a capture device's index, ``stream(0)``, is no file)
        if isinstance(spec, (str, os.PathLike)) and not untrusted and "://" not in str(spec) and still_gif(spec):
            src = ImageSource(Path(spec), device=self.device)  # a photo, not a 1-frame video
        else:
            # (an index stays one: a file named "0" here is not the camera stream(0) asks for)
            src = open_source(int(spec) if _whole(spec) else str(spec), device=self.device, live=live, ring_size=ring,
                              autorotate=True,
                              deinterlace=self.deinterlace, untrusted=untrusted, max_pixels=max_pixels,
                              high_bit_depth=self.high_bit_depth, start=start, duration=duration, exclude=exclude,
                              skip=skip, capture=capture)
        stage = self._stage(timer, lag=0 if getattr(src, "live", False) else lag)
        stage.repeats_held = stage.lag
        stage.held_downstream = downstream
        stage.pixel_aspect = pixel_aspect(getattr(src, "metadata", None))
        if getattr(src, "metadata", None) is not None:
            stage.video_detect_size = self.detect_size or video_detect_size(src.metadata, stage.pixel_aspect)
        from stream_gpen.faces._hdr import HdrColour

        stage.colour = HdrColour.for_video(getattr(src, "metadata", None))
        if stage.colour is not None:
            log.info("%s", stage.colour.describe())
        if stage.pixel_aspect != 1.0:
            log.info("non-square pixels (pixel aspect %.4g): faces are aligned in display geometry", stage.pixel_aspect)
        return src, stage

    def _frames(self, src, stage, *, latency_budget_s: float | None = 0.05, on_frame=None, stop=None,
                max_frames: int | None = None):
        """The restored frames of ``src`` in input order (each still holds its ring slot);
        ``stop``, ``max_frames``: see :func:`~stream_gpen.pipeline.run_stream`."""
        from stream_gpen.pipeline import run_stream

        budget = latency_budget_s if getattr(src, "live", False) else None
        return run_stream(src, stage, batch_faces=self.batch_size, max_pending_frames=self._max_pending(),
                          latency_budget_s=budget, on_frame=on_frame, stop=stop, max_frames=max_frames)

    def _summary(self, **kw) -> RunSummary:
        return RunSummary(model=self.model_name, device=str(self.device), precision=self.precision, mask=self.paste_mask,
                          strength=self.strength, **kw)

    # --- images --------------------------------------------------------------------------------
    def enhance_image(self, image: np.ndarray) -> np.ndarray:
        """Restore the faces of one picture: ``image``, a numpy array, RGB(A) ``uint8`` ``[H,W,3]``
        / ``[H,W,4]`` or grey ``[H,W]`` (or ``uint16``, 0..65535: a 16-bit scan, whose faces then
        keep the model's own precision; a PIL image: ``np.asarray(im.convert("RGB"))``); returns a
        new array of the same shape and dtype (``image`` is left untouched)."""
        return self._enhance_images([image], numbered=False)[0]

    def enhance_images(self, images: Iterable[np.ndarray]) -> list[np.ndarray]:
        """Restore several pictures, ``images`` (any iterable of what :meth:`enhance_image` takes: a
        list, a generator, an ``[N,H,W,C]`` array); returned as a list, in order. All
        their faces go through the model in shared batches (8-bit and 16-bit images in one batch each).
        One that is not a picture (``None``, a float array...) raises :class:`InvalidInputError`
        naming its index (``picture 1: ...``), before any is restored."""
        return self._enhance_images(images, numbered=True)

    def _enhance_images(self, images: Iterable[np.ndarray], *, numbered: bool) -> list[np.ndarray]:
        if isinstance(images, torch.Tensor) or isinstance(images, np.ndarray) and images.ndim != 4:
            # one picture's rows would each be restored as a grey picture of their own
            raise InvalidInputError(f"enhance_images() takes a list of pictures, not one {type(images).__name__} "
                                    f"(shape {tuple(images.shape)}); for one picture use enhance_image()")
        pictures = _pictures_in(images, "enhance_images()", "images")
        # each picture is copied as it is pulled: a generator that refills one buffer (a video
        # reader's) gave every picture the last one's result (api23); only its form is kept
        tensors, alphas, his, forms = [], [], [], []
        for k, im in enumerate(pictures):
            if isinstance(im, np.ndarray) and im.dtype.kind == "u" and im.dtype.itemsize == 2 and im.size and 0 < im.max() <= 255:
                # (8-bit values widened without scaling, `img.astype(np.uint16)`: read as a nearly
                # black picture, no face found, returned unchanged without a word)
                log.warning("picture %d is uint16 with values 0..%d only: uint16 pictures are read as 0..65535, so "
                            "it is nearly black here; pass it as uint8, or multiply it by 257", k, int(im.max()))
            try:
                t, a, hi = _to_rgb_tensor(im)
            except InvalidInputError as e:
                if not numbered:
                    raise
                # (which of a batch's pictures was bad: "image must be a numpy array, got NoneType"
                # named none, as stream_frames() names its)
                raise InvalidInputError(f"enhance_images(): picture {k}: {e}", hint=e.hint) from None
            tensors.append(t.to(self.device))
            his.append(hi.to(self.device) if hi is not None else None)
            alphas.append(a)
            forms.append(np.broadcast_to(np.zeros((), im.dtype), im.shape))  # (shape and dtype, no pixels)
        with self._lock:
            stage = self._stage()
            affines = [stage.plan_still(t) for t in tensors]
            # Group by frame so each image's faces stay together; the runner splits into buckets.
            for deep in (False, True):
                group = [i for i, h in enumerate(his) if (h is not None) == deep]
                if group:
                    stage.restore([tensors[i] for i in group], [affines[i] for i in group],
                                  hi=[his[i] for i in group] if deep else None)
        return [_from_rgb_tensor(t, a, hi, like) for t, a, like, hi in zip(tensors, alphas, forms, his)]

    def _picture_stage(self, width: int, height: int, *, live: bool = True):
        """A face stage for a sequence of pictures of one size (:meth:`stream_frames`, the server's
        live connections): faces tracked from picture to picture, detected at the video size."""
        stage = self._stage(lag=0 if live else self._file_lag())
        stage.repeats_held = stage.lag  # (as a file's: a picture feed has no ring to run out of)
        stage.video_detect_size = self.detect_size or video_detect_size(SimpleNamespace(width=width, height=height))
        return stage

    def _restore_tracked(self, stage, index: int, image: np.ndarray) -> np.ndarray:
        """Picture ``index`` of a live sequence through ``stage`` (:meth:`_picture_stage`,
        ``live=True``), returned as :meth:`enhance_image` returns it (``image`` is left untouched)."""
        t, a, hi = _to_rgb_tensor(image)
        t, hi = t.to(self.device), hi.to(self.device) if hi is not None else None
        with self._lock:  # (the detector and the model are shared with this Enhancer's other users)
            [(_, affines)] = stage.plan_frames(index, t)
            stage.repeat_of(index)  # (asked, so that it is not kept: each repeat was, for the connection's life)
            stage.restore([t], [affines], hi=None if hi is None else [hi], indices=[index])
        return _from_rgb_tensor(t, a, hi, image)

    # --- files and streams ---------------------------------------------------------------------
    @_cancel_is_not_ctrl_c
    def enhance_file(
        self,
        src: str | os.PathLike | bytes,
        dst: str | os.PathLike | bytes | None = None,
        *,
        overwrite: bool = False,
        codec: str = "auto",
        crf: int | None = None,
        preset: str | None = None,
        audio: AudioMode = "copy",
        quality: int | None = None,
        on_progress: Callable[[int, int | None, int], None] | None = None,
        cancel: threading.Event | None = None,
        copy_if_no_faces: bool = False,
        untrusted: bool = False,
        max_pixels: int | None = None,
        start: float = 0.0,
        duration: float | None = None,
        skip_existing: bool = False,
        compare: bool = False,
        image_format: str | None = None,
        encoder: Encoder = "software",
        chroma: str = "auto",
    ) -> RunSummary:
        """Enhance a video file, URL, image or folder into ``dst``; returns the run's :class:`RunSummary`.

        ``src``: a video or photo file, a folder (its photos and videos), an http(s)/RTSP/... URL or a
        ``lavfi:`` graph (a path may be ``str``, ``bytes`` or ``os.PathLike``; ``~`` is expanded). A
        graph is read as a file is, every frame in order and not paced (:meth:`stream` and ``camera``
        play one live); a live URL (rtsp, udp...) restored slower than it comes drops frames, which
        the summary counts and its ``fallbacks`` say (on CUDA the face model's graphs are captured
        before it opens, as ``camera`` does: the summary's ``warmup`` stage).
        ``dst``: the output file, in a folder that exists (a photo's as a video's: one not there, or
        a file on its path, is refused before any work); ``None`` (default) writes
        ``name_enhanced.ext`` beside ``src`` (a folder: ``name_enhanced/``); an existing folder, or a
        name ending in ``/``, is a folder (one that is not there is refused): a video gets its
        default name in it, a photo its own name (its default name in its own folder); a folder
        input is mirrored into ``dst``, made if missing. The same rules as the command line's ``-o``
        (:func:`resolve_output`). A folder this process may not write into (no permission, a
        read-only drive) is refused before any work too
        (:class:`~stream_gpen.errors.OutputNotWritableError`, a ``PermissionError``). A photo whose
        drive is full raises :class:`~stream_gpen.errors.DiskFullError` (an ``OSError``, ``errno``
        ``ENOSPC``) naming the file; one over the file-size limit (``ulimit -f``, FAT32's 4 GiB),
        :class:`~stream_gpen.errors.FileTooLargeError` (``EFBIG``; in a folder run it is skipped);
        a video's, :class:`~stream_gpen.errors.EncodeError`.
        ``overwrite``: replace an existing output (else
        :class:`~stream_gpen.errors.OutputExistsError`, before any work: a folder's, where any of its
        outputs exists; ``dst`` the input file itself is said as such; see also ``skip_existing``).
        ``on_progress(frames_done, frames_total_or_None, faces_so_far)`` is called per frame
        (``frames_total_or_None``: ``None`` where the count is unknown; a count worked out from
        the duration, which a variable-rate clip's frames do not keep to, is corrected as they
        come, and a video's last call, once it is whole, says the frames done as the total). A single photo counts its
        pictures (an animation's frames, a TIFF's pages: done when the file is written; those a
        one-picture format leaves out count as done). A folder counts its photos
        as frames (a multi-page one once, when it is written) and its videos' frames; a photo that
        is skipped (it cannot be read or written, or another run wrote it) leaves the total as it is
        found (the count is of the photos written), a video skipped or failed counts as done, and
        the last call reaches the total. ``faces_so_far`` counts the
        faces sent through the model so far, which runs a batch of frames ahead of those written:
        it may include faces of frames not yet in ``frames_done`` (a group photo on a CPU also
        reports it per model batch, ``frames_done`` unchanged).
        ``cancel``: set it to stop early; a video's output is then finalised as ``.partial`` like
        Ctrl-C, a folder stops after the photo in hand (its photos so far are written), a single
        photo whose restoring has begun is finished and returned; set before the start, nothing runs.
        ``on_progress`` raising :class:`stream_gpen.Cancelled` stops the run the same way.
        A single photo is written whole under its name before its last call: another exception
        raised there is raised as it is, with the photo kept (its ``.summary``: ``output`` names
        it, ``frames_out`` counts it, ``fallbacks`` says "written whole before the error"; a
        retry needs ``overwrite=True`` or ``skip_existing=True``).
        A run stopped by Ctrl-C raises :class:`stream_gpen.Interrupted` (a ``KeyboardInterrupt``, not
        an ``Exception`` nor a ``StreamGpenError``: a loop's ``except Exception`` does not take Ctrl-C
        for a failed file), one stopped by ``cancel`` :class:`stream_gpen.Cancelled` (a
        ``StreamGpenError``, not a ``KeyboardInterrupt``: safe in an asyncio program's worker
        threads); either's ``.summary`` is the run's summary so far (``interrupted``, ``partial_output``).
        No signal handler is installed here: SIGTERM/SIGHUP end the process (Python's default) unless
        the program's own handler stops the run (``cancel.set()``, or ``signal.default_int_handler``
        for :class:`stream_gpen.Interrupted`), as the command line's does.
        A run that fails mid-way raises its error, with ``.summary`` (``error``; a video's frames
        encoded before it kept as ``.partial``, ``partial_output``).
        ``codec``: ``"auto"`` (H.264; HEVC for a 10/12-bit source; VP9 for a ``.webm`` output; ProRes
        4444 for a source with transparency into ``.mov``/``.mkv``), ``"h264"``, ``"hevc"``, ``"av1"``,
        ``"vp9"``, ``"prores"`` (ProRes 422 HQ, or 4444 for 4:4:4 and alpha: editing; no crf/preset).
        ``crf`` (videos): the encoder's quality, lower is better and bigger (h264/hevc 0-51, vp9
        0-63, av1 1-63); ``None``: the codec's default. ``preset`` (videos): the encoder's speed
        (h264/hevc ``"ultrafast"``..``"veryslow"``, av1 ``"0"``..``"13"``, higher faster; vp9 and
        prores take none); ``None``: the codec's default. Both are checked before any work.
        ``audio`` (videos): ``"copy"`` (default: the source's audio packets as they are, transcoded
        only where the output container cannot hold them), ``"aac"`` (always AAC), ``"none"``
        (video only: subtitles, data, attachments, cover art and a second video track are left out too).
        ``chroma``: ``"auto"`` keeps a 4:2:2 / 4:4:4 source's chroma (editors take it; browsers,
        phones and TVs do not play H.264/HEVC 4:2:2 or 4:4:4), ``"420"`` writes 4:2:0, which every
        player decodes (not with ProRes, which has none).
        A folder with unreadable images: the readable ones are written and the others listed in
        ``summary.skipped`` (path and reason); nothing is raised for them.
        ``copy_if_no_faces``: a video in which no face was restored is stream-copied to ``dst``
        instead of re-encoded (bit-exact, no generation loss; audio or subtitles the container
        cannot take are transcoded or dropped as the re-encode does them; of an input with several
        programs, a DVB multiplex's channels, the restored video's program alone is copied, as the
        re-encode keeps it, and of its video the main stream alone); the summary's fallbacks say so.
        Recordings joined end to end (``cat a.ts b.ts``: the clock jumps back) are copied with
        each later one moved to run on, audio in sync, as the re-encode moves them. Where the read
        repaired the input's timestamps otherwise (a damaged timestamp, frames without one:
        ``VideoSource.timestamp_repairs``), which a copy would keep as they are, the re-encode is
        kept, with a note. (A
        photo in which no face is found is always copied as it is, where written in its own format,
        upright and in RGB: ``quality`` does not apply to it.)
        ``quality`` (1-100, JPEG/WebP/HEIC/AVIF outputs): ``None`` keeps a JPEG source's own
        quantisation tables in a JPEG output where they are at least quality 90's (its quality,
        about its size), writes a coarser JPEG's at 90 (its own quality blurs the restored faces)
        and anything else at 95 (a low-quality WebP/HEIC/AVIF then grows: give a lower one).
        Given for a video or a lossless (PNG/TIFF/BMP) output, or (as ``image_format``) for a folder
        that holds videos only, it does nothing, and a warning says so (as the command line's).
        ``untrusted``: ``src`` is a file from someone else (an upload): a file named as a photo whose
        bytes are a plain picture (``stream_gpen.io._open.UNTRUSTED_PICTURES``: no EPS) is read as
        a photo, anything else as a video with media demuxers only, never as a playlist or script
        that opens other files or URLs (``stream_gpen.io._source.UNTRUSTED_DEMUXERS``). ``max_pixels``: refuse video frames and photos
        with more pixels than this (``PayloadTooLargeError``; a photo's size is read from its
        header, before decoding; in a folder such a photo is skipped and listed).
        A folder is mirrored into ``dst``: its images, and each video in it (same name; a container
        the sink does not write becomes ``.mp4``); a video that fails is listed in
        ``summary.skipped`` and the others go on, and so is one that an option does not fit
        (``start`` past its end: ``"PATH: start= does not fit this file: why"``). The summary adds
        up all of them. Where nothing could be restored (every file unreadable, or refused for
        ``start``), :class:`InvalidInputError` is raised instead; not in a resumed run
        (``skip_existing``) with files done before, which returns its summary as the first run
        did.
        ``start`` / ``duration`` (seconds as numbers, ``start=90``, not the command line's text
        ``"1:30"``; checked before any work, a folder's too; videos only): restore just that part of the video, written
        from 0 with its audio, subtitles and chapters cut to match: a quick way to try settings on
        a long video (``copy_if_no_faces`` is then off: it would copy the whole input).
        ``skip_existing``: leave alone every output that already exists (a folder: those files; a
        single input: the whole job), so an interrupted run of a big folder resumes where it
        stopped; the summary says how many were left. Each output is looked for again when its
        turn comes, so two such runs into one folder share the work. (``overwrite`` redoes them
        instead.)
        ``compare``: write the input and the result side by side (input left, restored right,
        twice the width, 8-bit) to judge settings; audio and timing as usual.
        ``image_format`` (a photo, or every photo of a folder): write it in this format (``"jpg"``,
        ``"png"`` (``"apng"``: the same PNG, named ``.apng``), ``"webp"``, ``"tif"``, ``"heic"``, ``"avif"``...),
        e.g. iPhone HEICs as JPEGs;
        ``None`` keeps each photo's own (its default name takes the new extension).
        ``dst="null"``: write nothing (a dry run or a benchmark; ``-o /dev/null`` at the command line);
        a video's ``crf``/``preset``/``encoder`` are checked as for an ``.mp4``, as the real run will.
        ``encoder`` (videos): ``"software"`` (default: libx264/libx265/SVT-AV1/libvpx on the CPU),
        ``"nvenc"`` (NVIDIA's hardware encoder: frees the CPU, which limits the rate once GPEN runs
        on a GPU; a :class:`~stream_gpen.errors.HardwareEncoderError` where the GPU/driver has none,
        e.g. A100/H100/H200) or ``"auto"`` (NVENC where it works, else software; the summary's
        fallbacks say why). See :class:`~stream_gpen.io.FileSink`.
        """
        from stream_gpen.io._sink import ENCODER_MODES

        # (overwrite="no" from a config file or a form is truthy: it wrote over the existing output)
        _check_flags(overwrite=overwrite, copy_if_no_faces=copy_if_no_faces, untrusted=untrusted,
                     skip_existing=skip_existing, compare=compare)
        if encoder not in ENCODER_MODES:  # before a folder walk or a model run, not at the first video
            raise InvalidInputError(f"encoder={encoder!r} is not one of {ENCODER_MODES}")
        from stream_gpen.io._sink import check_codec_audio

        # (a folder's videos each failed on them, every one "skipped", and the run returned normally)
        check_codec_audio(codec, audio)
        from stream_gpen.io._source import check_window

        # (a folder's photos were restored and each video then refused, "skipped", the run
        # returning normally; start="0:01" with on_progress was a bare TypeError)
        start, duration = check_window(start, duration)
        for name, value in (("quality", quality), ("crf", crf)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
                raise InvalidInputError(f"{name} must be a whole number, got {value!r}")
        if quality is not None and not 1 <= quality <= 100:
            # (before any work: quality=0 passed, and a photo failed only once restored, at its writing;
            # a video's or a dry run's quality=0 was never said at all)
            raise InvalidInputError(f"quality={quality} must be within 1..100 (None: the default)")
        if preset is not None and not isinstance(preset, str):
            raise InvalidInputError(f"preset must be a name (e.g. 'medium'), got {preset!r}")
        if max_pixels is not None and (not _whole(max_pixels) or max_pixels < 1):
            # (-5, 0, NaN, True, 2.5 were taken without a word: no frame fits a limit of 0)
            raise InvalidInputError(f"max_pixels must be None (no limit) or a whole number of pixels >= 1, "
                                    f"got {max_pixels!r}")
        from stream_gpen.io._image import check_image_format
        from stream_gpen.io._source import IMAGE_EXTS as _IMAGE_EXTS

        # (checked first: it was taken for a video's extension, "face.png is written as video")
        check_image_format(image_format)
        from stream_gpen.io._sink import check_chroma

        check_chroma(chroma, codec)
        if on_progress is not None and not callable(on_progress):
            raise InvalidInputError(f"on_progress must be a function (done, total, faces), got {on_progress!r}")
        if cancel is not None and not callable(getattr(cancel, "is_set", None)):
            raise InvalidInputError(f"cancel must be a threading.Event (or anything with is_set()), got {cancel!r}")
        for name, value in (("src", src), ("dst", dst)):
            if (value is not None or name == "src") and not isinstance(value, (str, bytes, bytearray, os.PathLike)):
                # (a numpy array was "File name too long: '[[[0 0 0]...", a PIL image or a file object
                # "input not found: <... at 0x...>")
                raise InvalidInputError(
                    f"enhance_file() reads and writes files, URLs or folders by name; {name} is "
                    f"{_a_type(value)}: for pictures you already hold (numpy arrays, PIL images), use "
                    "enhance_image(); for an open file, pass its path")
        src, dst = _given_path(src, "src"), _given_path(dst, "dst")
        src_s = str(src)
        gif_default = (not image_format and (dst is None or Path(dst).is_dir()) and "://" not in src_s
                       and Path(src_s).suffix.lower() == ".gif" and _photo_suffix(Path(src_s)) == ".png")
        if "://" not in src_s and not src_s.startswith("lavfi:") and not os.path.lexists(src_s):
            # (before the output's checks: "output folder does not exist" was said of a missing input)
            from stream_gpen.errors import MediaNotFoundError

            raise MediaNotFoundError(f"input not found: {src_s!r}",
                                     hint=PATH_HINT)
        dst = resolve_output(src_s, dst, image_format)
        if gif_default:  # (a name or format the user gave is what was asked for: no note then)
            note = "still GIFs are written as PNG (there is no GIF writer here)"
            log.warning("%s (first: %s)", note, Path(dst).name)

        if image_format and dst != "null" and Path(dst).suffix.lower() not in _IMAGE_EXTS and not (
                "://" not in src_s and Path(src_s).is_dir()):
            # (keyword=value: the command line says it as --image-format png, as its other warnings)
            log.warning("image_format=%r applies to photos; %s is written as a video", image_format, src_s)
        opts = dict(overwrite=overwrite, codec=codec, crf=crf, preset=preset, audio=audio, quality=quality,
                    on_progress=on_progress, cancel=cancel, copy_if_no_faces=copy_if_no_faces,
                    untrusted=untrusted, max_pixels=max_pixels, start=start, duration=duration,
                    compare=compare, image_format=image_format, encoder=encoder, chroma=chroma)
        is_folder = "://" not in src_s and not src_s.startswith("lavfi:") and Path(src_s).is_dir()
        unused = None if is_folder else photo_options_unused(src_s, dst, quality=quality, image_format=image_format,
                                                             photo=Path(dst).suffix.lower() in _IMAGE_EXTS)
        if unused:  # (the command line said it, and passes no quality then; a program was told nothing)
            log.warning("%s", unused)
        if not is_folder and (_photo_input(src_s) if dst == "null" else Path(dst).suffix.lower() in _IMAGE_EXTS):
            _video_options_on_a_photo(f"{src_s} is {'restored' if dst == 'null' else 'written'} as a photo",
                                      codec=codec, crf=crf, preset=preset, audio=audio, encoder=encoder,
                                      chroma=chroma)
        elif not is_folder and dst == "null":
            from stream_gpen.io._sink import check_dry_run_options

            # (the null sink took any: a dry run restored the whole clip with crf=60, which the
            # real run refuses; -o /dev/null checks them the same way)
            check_dry_run_options(encoder, codec, crf, preset)
        if skip_existing and not overwrite and not is_folder and dst != "null" and Path(dst).is_file():
            # a single input (a file, a photo or video URL): the whole job is done already
            summary = self._summary(input=src_s, output=str(dst))
            summary.fallbacks.append(f"{dst} already exists: left as it is (skip_existing)")
            log.info("%s already exists: left as it is", dst)
            return summary
        if (not overwrite and not is_folder and dst != "null" and "://" not in str(dst) and Path(dst).exists()
                and not Path(dst).is_dir()):
            # before any work, as the command line does (a photo was restored, then refused at its
            # writing; the input itself was said as "output exists", with a folder run's hint)
            from stream_gpen.io._sink import check_not_special

            check_not_special(dst)  # (a named pipe is said as one: overwrite=True would not write it)
            _refuse_existing(src_s, dst)
        if not is_folder and dst != "null" and "://" not in str(dst):
            from stream_gpen.io._sink import check_segments

            check_segments(dst, src_s, overwrite)  # (an .m3u8/.mpd's: before any work, as the sink does)
        if is_image_url(src_s):
            return self._enhance_image_url(src_s, dst, opts)
        if is_folder:
            from stream_gpen.io._image import folder_media, folder_outputs, others_note

            root = Path(src_s)
            if dst == "null":
                raise InvalidInputError(f"a folder input ({src_s}) needs an output folder: the output \"null\" "
                                        "(write nothing) takes one file", hint="name an output folder as dst, or run "
                                        "the files one by one with dst=\"null\"")
            if Path(dst).exists() and not Path(dst).is_dir():
                raise InvalidInputError(f"the output {dst} is a file; a folder input needs an output folder")
            if _same_place(dst, root):
                raise InvalidInputError(f"the output folder {dst} is the input folder: the restored photos would "
                                        "replace or mix with the originals; name another as dst")
            if _holds(dst, root):
                # (every file under it was taken for an earlier run's output and left out: "folder
                # ... contains no images"; and photos/photos/x.jpg would land on photos/x.jpg)
                raise InvalidInputError(f"the output folder {dst} holds the input folder {src_s}: the mirror would "
                                        "land among (or on) the originals; name another as dst")
            walked: list[str] = []  # broken links, unreadable folders: in the summary too
            images, videos, others = folder_media(root, Path(dst), notes=walked)
            unused = photo_options_unused(src_s, dst, quality=quality, image_format=image_format, photo=False,
                                          no_photos=bool(videos) and not images)
            if unused:  # (before any work, as the video options' below)
                log.warning("%s", unused)
            if not videos:
                _video_options_on_a_photo(f"{src_s} holds no videos", codec=codec, crf=crf, preset=preset,
                                          audio=audio, encoder=encoder, chroma=chroma)
            from stream_gpen.io._sink import check_encoder_options, resolve_codec

            for ext in sorted({self._folder_video_ext(q.suffix, codec, audio).lower() for q in videos}):
                # each video's crf/preset for the codec it is written with, before the first photo
                check_encoder_options(encoder, resolve_codec(codec, "video" + ext), crf, preset)
            photo_ext = "." + image_format.lower().lstrip(".") if image_format else None
            photos = set(images)
            plan, clashes, clashing = folder_outputs(
                root, Path(dst), images + videos,
                lambda q: (photo_ext or _photo_suffix(q)) if q in photos
                else self._folder_video_ext(q.suffix, codec, audio))
            _check_output_inside(root, Path(dst), images + videos, plan, start=start)
            if not overwrite and not skip_existing and Path(dst).is_dir():
                # before any work, photos-only folders too: an existing video output was found only
                # after every photo was restored, and a photo's half-way through the photos
                there = [plan[q] for q in images + videos if _output_done(plan[q])]
                if there:
                    more = f" (and {len(there) - 1} more)" if len(there) > 1 else ""
                    raise OutputExistsError(f"output exists: {there[0]}{more}",
                                            hint=f"overwrite=True redoes {'them' if more else 'it'}, skip_existing=True "
                                                 "resumes a folder run")
            from stream_gpen.io._sink import REFUSED_ERRNOS, check_output_writable, not_writable

            check_output_writable(dst)  # (one there, read-only: each photo was restored, then refused)
            made = (images or videos) and not Path(dst).exists()
            if made:
                # made now: an output folder that cannot be made (read-only, no permission) fails the
                # run before the first file's restoration, not after it
                try:
                    Path(dst).mkdir(parents=True)
                except OSError as e:  # (a bare PermissionError)
                    if e.errno not in REFUSED_ERRNOS:
                        raise
                    raise not_writable(dst, e) from e
            for note in clashes:
                log.warning("%s", note)
            if skip_existing and not overwrite:
                # A resumed run cannot tell which of a clash's inputs an existing output came from
                # (adding `a.jpg` beside `a.png` hands `a.jpg` to the new file): those are redone.
                stale = [plan[q] for q in clashing if plan[q].is_file()]
                for out in stale:
                    out.unlink()
                if stale:
                    clashes.append(f"{len(stale)} output(s) of inputs whose names clash were redone, not skipped: "
                                   "which input made them cannot be told")
            opts["names"] = {q.relative_to(root).as_posix(): plan[q] for q in images}
            try:
                if videos or (skip_existing and not overwrite):
                    summary = self._enhance_folder(root, Path(dst), images, videos, plan,
                                                   skip_existing=skip_existing and not overwrite, **opts)
                else:
                    summary = self._enhance_one(src_s, dst, **opts)
            except BaseException as e:
                # an interrupted (or failed) run's report says why clash-renamed outputs exist too
                stopped = getattr(e, "summary", None)
                if stopped is not None:
                    stopped.fallbacks[:0] = walked + clashes
                raise
            finally:
                if made:  # (nothing could be read: no empty folder left behind)
                    with contextlib.suppress(OSError):
                        Path(dst).rmdir()  # (only if empty)
            summary.fallbacks[:0] = walked + clashes
            # a folder that could not be read: its files were not restored (a script reading
            # skipped, and the exit status, knew only of unreadable files)
            summary.skipped[:0] = [n for n in walked if ": folder left out: " in n]
            left = others_note(root, others)
            if left and not any(left in f for f in summary.fallbacks):
                # (said by the photos' job when there is one: a folder of videos, or a resumed
                # run with every photo done, said nothing of them)
                log.warning("%s", left)
                summary.fallbacks.append(left)
            return summary
        if copy_if_no_faces and _same_file(src_s, dst):
            return self._enhance_in_place(src_s, dst, opts)
        summary = self._enhance_one(src_s, dst, **opts)
        if gif_default:
            summary.fallbacks.append(f"{note} (first: {Path(dst).name})")
        return summary

    def _enhance_in_place(self, src_s: str, dst, opts: dict) -> RunSummary:
        """``copy_if_no_faces`` with the output replacing the input: the restored file replaces the
        input before it is known that there were no faces, and the stream copy would then copy the
        re-encode. The original is kept under a hidden second name of this run's own (a hard link:
        no bytes copied, where the file system has them) and put back whole when no face was found.
        (One fixed name for every run made a killed run's leftover fail every later run, "are the
        same file", and a second run would have copied its re-encode over it: the only copy of the
        original once the killed run had put its re-encode in place.)"""
        import shutil
        import uuid

        from stream_gpen.io._meta import hidden_temp
        from stream_gpen.io._sink import _machine_tag

        notes = _stale_originals(Path(src_s))
        keep = hidden_temp(Path(src_s), f".{_machine_tag()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.original")
        try:
            os.link(src_s, keep)
        except OSError:
            try:
                with open(keep, "xb"):  # (a name of its own: never a file that is there)
                    pass
                shutil.copy2(src_s, keep)
            except BaseException:  # (a full disk, a Ctrl-C: no half copy left to pass for an original)
                keep.unlink(missing_ok=True)
                raise
        unmet = _copy_unmet(opts.get("start", 0.0), opts.get("duration"), opts.get("compare", False),
                            opts.get("audio", "copy"), opts.get("codec", "auto"), opts.get("crf"),
                            opts.get("preset"), opts.get("chroma", "auto"),
                            None if self.high_bit_depth else _pix_fmt_of(str(keep)))
        try:
            summary = self._enhance_one(src_s, dst, **{**opts, "copy_if_no_faces": False})
            summary.fallbacks[:0] = notes
            if summary.faces_restored == 0 and not summary.interrupted and unmet is None:
                os.replace(keep, dst)
                summary.fallbacks.append("no faces found: the input was left as it was (copy_if_no_faces=True)")
            elif summary.faces_restored == 0:
                summary.fallbacks.append(f"no faces found; copy_if_no_faces=True does not apply to {unmet}: "
                                         "the re-encoded output was kept")
            return summary
        except Interrupted as stop:
            # stopped once the re-encode had replaced the input (a Ctrl-C while it was finished):
            # a video with no face still gets its original back (the hidden copy was deleted, and
            # the re-encode left in its place, said as "written whole first")
            done = stop.summary
            if (done is not None and done.faces_restored == 0 and unmet is None and keep.exists()
                    and Path(dst).exists() and not _same_file(str(keep), str(dst))):
                os.replace(keep, dst)
                done.fallbacks.append("no faces found: the input was put back as it was (copy_if_no_faces=True)")
            raise
        finally:
            keep.unlink(missing_ok=True)

    def _enhance_image_url(self, url: str, dst, opts: dict) -> RunSummary:
        """A photo URL: fetched into a temporary file under its own name, restored as an image
        (with its EXIF, profile and format), the summary naming the URL."""
        with fetched(url) as local:
            summary = self._enhance_one(str(local), dst, **opts)
        summary.input = url
        return summary

    def _enhance_one(self, src_s: str, dst, *, overwrite, codec, crf, preset, audio, quality, on_progress, cancel,
                     copy_if_no_faces, untrusted, max_pixels, start=0.0, duration=None, skip=None,
                     compare=False, image_format=None, encoder="software", names=None, chroma="auto") -> RunSummary:
        """One video, URL, image, or a folder of images (one source, one sink; ``names``: each
        photo's output path by its ``rel_path``, see ``folder_outputs``)."""
        from stream_gpen._finishing import stop_asked
        from stream_gpen.io import open_sink
        from stream_gpen.io._source import live_by_name

        def asked() -> bool:
            # the caller's cancel, or a stop signal (the command line's): its KeyboardInterrupt
            # may have been swallowed by a finalizer it landed in, and the run went on to the end
            return (cancel is not None and cancel.is_set()) or stop_asked()

        trimmed = bool(start) or duration is not None
        timer = StageTimer()
        summary = self._summary(input=src_s, output=None if dst == "null" else str(dst))  # ("null": nothing written)
        t0 = time.perf_counter()
        # a lavfi graph is a job's input here, read as a file is: every frame, in order, as fast as
        # it restores (read live, as camera and stream() read one, it was paced at its rate and the
        # ring dropped all but one frame a detector pass: 2 of a 50-frame graph's, unsaid)
        live = False if src_s.startswith("lavfi:") else None
        # a live source (an rtsp/udp... URL, a device) warms the face model up as camera and stream()
        # do: captured on first use, each face count first seen stalled it 0.5-2 s on CUDA, frames
        # dropped meanwhile. Before it opens where its name says it is live (a UDP socket's buffer
        # overran while the graphs were captured); else once it is open and says so, before its
        # decode thread starts (nothing where no graphs are captured: the CPU)
        if live_by_name(src_s):
            self._warm_up_live(timer)
        source, stage = self._open(src_s, live=live, sink_queue=_SINK_QUEUE, timer=timer, untrusted=untrusted,
                                   max_pixels=max_pixels, start=start, duration=duration,
                                   exclude=dst if Path(src_s).is_dir() else None, skip=skip)
        if getattr(source, "live", False) is True:
            self._warm_up_live(timer)
        with source:
            meta = source.metadata
            total = _expected_frames(meta)
            if getattr(source, "pages", None):  # (a 3-frame WebP said done 3 of 1: its pages are frames)
                total = source.pages
            is_still = getattr(meta, "kind", "") in ("image", "folder")
            if trimmed and is_still:
                raise InvalidInputError("start/duration (--start/--duration) cut videos; this input is an image or a "
                                        "folder of images")
            if trimmed and total and getattr(meta, "frame_rate", None):
                rate = float(meta.frame_rate)
                left = max(1, total - _frames_in(start, rate, total))
                total = min(left, max(1, _frames_in(duration, rate, total))) if duration is not None else left
            # a count worked out from duration x rate (no header count) is an estimate: a variable-rate
            # clip (a phone's, a screen recording's) has fewer or more frames than its nominal rate
            # says (12 frames said "12/41 (29%)" to the end); it is corrected as the frames come
            guess = (_TotalGuess(total, float(meta.frame_rate)) if total and not is_still
                     and not getattr(meta, "frame_count", None) and not getattr(meta, "frame_count_header", None)
                     and getattr(meta, "frame_rate", None) and not getattr(meta, "live", False) else None)
            sink = None
            meanwhile = [0] if skip is not None else None  # outputs another run wrote since this one began
            # a folder's progress counts its photos written, a multi-page one when its last page is
            # (it counted pages written, and stopped at 2 of 3 where a photo could not be read);
            # one this run does not write (unreadable, not writable, written meanwhile by another
            # run) leaves the total (counted as done, "7/7 frames" ended a run that wrote 5 photos
            # and skipped 2)
            handled = [0]

            def done_now() -> int:
                return handled[0] if meta.kind == "folder" else summary.frames_out

            if meta.kind == "folder" and on_progress is not None:
                user_progress, files = on_progress, total or 0

                def left_out() -> int:  # (during the run, summary.skipped holds the photos not writable)
                    return (len(getattr(source, "skipped", ())) + getattr(source, "done_meanwhile", 0)
                            + (meanwhile[0] if meanwhile else 0) + len(summary.skipped))

                said_last = [None]

                def on_progress(done: int, _total, faces: int) -> None:
                    said_last[0] = (done, max(done, files - left_out()))
                    user_progress(*said_last[0], faces)

            if is_still and on_progress is not None:  # a group photo on a CPU: progress per model batch
                stage.on_faces = lambda k: on_progress(done_now(), total, stage.faces_restored + k)
            frames = None
            by_callback = False
            if compare and codec == "auto" and not is_still and getattr(source, "high_bit_depth", False) is True:
                # the side-by-side is 8-bit: H.264, which plays everywhere, not the HEVC chosen to
                # keep a 10-bit source's depth
                from stream_gpen.io._sink import resolve_codec

                codec = resolve_codec(codec, dst, SimpleNamespace(has_alpha=getattr(source, "has_alpha", False),
                                                                  high_bit_depth=False))
            try:
                with open_sink(dst, source=source, codec=codec, crf=crf, preset=preset, audio=audio,
                               overwrite=overwrite, quality=quality, queue_size=_SINK_QUEUE,
                               image_format=image_format if is_still else None, encoder=encoder,
                               image_names=names if is_still else None, chroma=chroma) as sink:
                    originals: dict = {}
                    keep = (lambda f: originals.__setitem__(f.index, f.image.clone())) if compare else None
                    # a video stops taking frames as soon as it is cancelled (the look-ahead and
                    # the first batch held a short clip's every frame: a cancel waited for the end)
                    stop = None if is_still else asked
                    frames = (self._still_frames(source, stage, on_frame=keep) if is_still
                              else self._frames(source, stage, on_frame=keep, stop=stop))
                    if asked():
                        raise KeyboardInterrupt  # cancelled before it began: nothing is written
                    # a video's encoder thread times itself (_finish: sink.encode_seconds); timed
                    # here, write() was only the hand-over to its queue (0.01 s of a 3 s encode)
                    timed = getattr(sink, "encode_seconds", None) is None
                    try:
                        for frame in frames:
                            if compare:
                                frame = _side_by_side(frame, originals.pop(frame.index))
                            summary.frames_in += 1
                            written = sink.frames_written
                            pages = frame.image_info or {}
                            whole = pages.get("page", 0) + 1 >= pages.get("frames", 1)  # (its last page)
                            with timer("encode") if timed else contextlib.nullcontext():
                                if not self._write_photo(sink, frame, summary, folder=meta.kind == "folder",
                                                         meanwhile=meanwhile):
                                    if on_progress is not None:
                                        on_progress(done_now(), total, stage.faces_restored)
                                    continue
                            if meta.kind == "folder" and whole:
                                handled[0] += 1
                            # a photo sink counts a multi-page picture's pages when the file is written
                            # (held pages of one whose later page proves unreadable never are); a video
                            # sink's count lags on its own thread
                            summary.frames_out += sink.frames_written - written if is_still else 1
                            if guess is not None:
                                total = guess.update(frame.time, summary.frames_out)
                            if on_progress is not None:
                                # a video's faces of the frames handed on: faces_restored counts a batch
                                # ahead of them (a one-face clip said "265 frames, 272 faces")
                                on_progress(done_now(), total,
                                            stage.faces_restored if is_still else getattr(stage, "faces_out", 0))
                            # (a single photo is written whole under its name by now: that job is done)
                            if meta.kind != "image" and asked():
                                raise KeyboardInterrupt
                    except Cancelled:
                        # raised by a callback (on_progress): stopped as a cancel is, not as an error
                        # (a single photo written whole by then is done, as with the cancel event)
                        if not (meta.kind == "image" and summary.frames_out):
                            by_callback = True
                            raise KeyboardInterrupt from None
                    if stop is not None and stop():
                        raise KeyboardInterrupt  # the frames ended because the run was cancelled
                    if not is_still and on_progress is not None and total != summary.frames_out:
                        # the count is known now: a header's or an estimate's total (a variable-rate
                        # cut said 8 of 13 to the end), or none, ends as the frames done
                        total = summary.frames_out
                        on_progress(total, total, getattr(stage, "faces_out", 0))
                    if meta.kind == "image" and on_progress is not None and done_now() < (total or 0):
                        # pages a one-picture format leaves out (an animated WebP into a JPEG) are
                        # done too, as a folder's skipped files are: the count reaches its total
                        on_progress(total, total, stage.faces_restored)
                    if meta.kind == "folder" and on_progress is not None and said_last[0] != (handled[0],) * 2:
                        # the count reaches its total: the photos written (those not are out of it)
                        user_progress(handled[0], handled[0], stage.faces_restored)
            except KeyboardInterrupt as exc:
                # The sink has already finalised `<name>.partial.<ext>` (if it could).
                summary.interrupted = True
                partial = getattr(sink, "partial_path", None)
                summary.partial_output = str(partial) if partial else None
                # (nothing out where the frames encoded were lost: the output folder removed)
                self._finish_stopped(summary, frames, stage, source, timer, t0, sink=sink,
                                     kept_out=is_still or getattr(sink, "lost_reason", None) is None)
                if partial:  # what wrote the partial output, and its notes (the audio transcoded...)
                    kept = getattr(sink, "frames_kept", None)
                    if kept is not None:  # (what reached the disk of an output that could not be finished)
                        summary.frames_out = min(summary.frames_out, kept)
                        summary.frames_dropped = max(summary.frames_dropped, summary.frames_in - summary.frames_out)
                    _sink_notes(summary, sink)
                elif getattr(exc, "output_whole", False) and not is_still and "://" not in str(dst):
                    # stopped while the output was being finished: it was written whole first
                    _sink_notes(summary, sink)
                    summary.fallbacks.append(f"stopped while finishing: {dst} was written whole first")
                    _remove_old_partial(summary, dst, src_s)
                if meta.kind == "folder":  # its photos so far are written: a resumed run skips them
                    of = f" of {total}" if total else ""
                    said = (f"interrupted after {summary.frames_out}{of} "
                            f"photo{'' if (total or summary.frames_out) == 1 else 's'}; skip_existing=True resumes")
                elif is_still and not summary.frames_out:
                    said = "interrupted before the photo was written"
                elif is_still and not isinstance(exc, Interrupted) and not by_callback:
                    # a single photo is written whole at once: stopped after that, nothing was cut
                    # short (it said "interrupted after 1 frames", as of a video stopped mid-way)
                    raise _stopped_when_written(summary, dst) from exc
                else:
                    said = f"interrupted after {_plural(summary.frames_out, 'frame')}"
                if by_callback:
                    raise _cancelled(str(exc) if isinstance(exc, Interrupted) else said, summary) from None
                err = exc if isinstance(exc, Interrupted) else Interrupted(said)
                err.summary = summary
                if err is exc:
                    raise
                raise err from exc
            except Exception as exc:
                # a run that failed (the disk full mid-way, a damaged input the decoder gave up
                # on): what it had done, and why it stopped, for --report, counted as an
                # interrupted run's are; out: the frames the sink kept as .partial (FileSink.salvage),
                # else nothing
                if getattr(exc, "summary", None) is None:
                    partial = None if is_still else getattr(sink, "partial_path", None)
                    # the whole video, finished, kept under another name (its target appeared
                    # meanwhile, or could not be replaced): the report names it and counts it
                    whole = None if is_still else getattr(sink, "kept_whole", None)
                    try:
                        self._finish_stopped(summary, frames, stage, source, timer, t0, sink=sink,
                                             kept_out=is_still or partial is not None or whole is not None)
                        if whole is not None:
                            summary.output = str(whole)
                            summary.frames_out = sink.frames_written
                            summary.frames_dropped = max(0, summary.frames_in - summary.frames_out)
                            _sink_notes(summary, sink)
                        elif meta.kind == "image" and summary.frames_out:
                            # a single photo is written whole under its name before its last
                            # on_progress call: one raising there (not Cancelled) left the caller
                            # an error whose summary did not say so, and a retry met OutputExistsError
                            summary.output = str(dst)
                            summary.fallbacks.append(f"{dst} was written whole before the error: kept")
                        elif partial is not None:
                            summary.partial_output = str(partial)
                            kept = sink.frames_kept if sink.frames_kept is not None else sink.frames_written
                            summary.frames_out = min(summary.frames_out, kept)
                            summary.frames_dropped = max(summary.frames_dropped, summary.frames_in - summary.frames_out)
                            _sink_notes(summary, sink)
                    except Exception:  # noqa: BLE001 - the error that stopped the run is the one to say
                        summary.seconds = time.perf_counter() - t0
                    summary.error = " ".join(str(exc).split()) or type(exc).__name__
                    try:
                        exc.summary = summary
                    except AttributeError:  # (an exception type without a __dict__)
                        pass
                raise
            try:
                self._finish(summary, stage, source, timer, t0, sink=sink)
                n = getattr(source, "done_meanwhile", 0) + (meanwhile[0] if meanwhile else 0)
                if n:
                    summary.fallbacks.append(f"{n} photo(s) whose output another run wrote meanwhile were left as "
                                             "they are (skip_existing)")
                _sink_notes(summary, sink)
                if not is_still and "://" not in str(dst):
                    _remove_old_partial(summary, dst, src_s)
            except KeyboardInterrupt as exc:
                raise _stopped_when_written(summary, dst) from exc
        # what the stream copy could not honour: the cut, the side-by-side, the audio choice
        unmet = _copy_unmet(start, duration, compare, audio, codec, crf, preset, chroma,
                            None if self.high_bit_depth else getattr(meta, "pix_fmt", None))
        # what the read repaired in the input's timestamps, which a copy would copy as they are
        # (not the joins of recordings: the copy joins them as the read does)
        repairs = source.timestamp_repairs(joins=False) if hasattr(source, "timestamp_repairs") else []
        if copy_if_no_faces and unmet and summary.faces_restored == 0 and not is_still:
            summary.fallbacks.append(f"no faces found; copy_if_no_faces=True does not apply to {unmet}: "
                                     "the re-encoded output was kept")
        elif copy_if_no_faces and summary.faces_restored == 0 and not is_still and "://" not in src_s and repairs:
            why = f"the input's timestamps needed repairs a copy would not make: {', '.join(repairs)}"
            log.warning("no faces found, but the input cannot be stream-copied (%s); kept the re-encoded output", why)
            summary.fallbacks.append(f"no faces found; stream copy impossible ({why}): the re-encoded output was kept")
        elif copy_if_no_faces and summary.faces_restored == 0 and not is_still and "://" not in src_s and (
                uncopied := _not_copyable(src_s)):
            log.warning("no faces found, but the input cannot be stream-copied (%s); kept the re-encoded output", uncopied)
            summary.fallbacks.append(f"no faces found; stream copy impossible ({uncopied}): the re-encoded output was kept")
        elif copy_if_no_faces and summary.faces_restored == 0 and not is_still and "://" not in src_s:
            from stream_gpen.errors import EncodeError
            from stream_gpen.io import remux

            try:
                try:
                    remux(src_s, dst, said=set(summary.fallbacks), turned=_display_turn(meta), joins_said=True)
                except KeyboardInterrupt as exc:  # (the stream copy of a long video takes minutes)
                    raise _stopped_when_written(summary, dst, copy=True) from exc
                summary.encoder = "copy"  # the re-encode's encoder no longer describes the output
                _withdraw_captions_note(summary)
                summary.fallbacks.append("no faces found: the input was stream-copied to the output (copy_if_no_faces=True)")
            except EncodeError as exc:  # e.g. pcm audio into .mp4: the re-encoded output stays
                log.warning("no faces found, but the input cannot be stream-copied (%s); kept the re-encoded output", exc)
                summary.fallbacks.append(f"no faces found; stream copy impossible ({exc}): the re-encoded output was kept")
        return summary

    #: containers a folder's videos keep (others are written as .mp4: the sink's H.264/HEVC in
    #: .wmv/.flv/.3gp/.mpg would play in few places, if it muxes at all)
    _FOLDER_KEEP = (".mp4", ".mov", ".mkv", ".webm", ".m4v", ".avi")

    @classmethod
    def _folder_video_ext(cls, suffix: str, codec: str, audio: str) -> str:
        """The container a folder's video is written in: its own (if kept, see ``_FOLDER_KEEP``),
        else .mp4; and where that cannot hold the asked ``codec``/``audio`` (``--codec prores`` and
        .mp4, ``--codec h264`` and .webm), the first of .mp4, .mov, .mkv that can (a folder's
        every .mp4 failed as "unreadable" with ``--codec prores``)."""
        from stream_gpen.io._sink import check_output_encoding

        for ext in (suffix if suffix.lower() in cls._FOLDER_KEEP else ".mp4", ".mp4", ".mov", ".mkv"):
            try:
                check_output_encoding(ext.lower(), codec, audio)
            except InvalidInputError:
                continue
            return ext
        return ".mkv"  # Matroska holds every codec and audio the sink writes

    def _enhance_folder(self, root: Path, dst: Path, images: list[Path], videos: list[Path],
                        plan: dict[Path, Path], *, skip_existing: bool = False, **opts) -> RunSummary:
        """A folder with videos (or resumed): its images as one folder job, then each video into
        the mirror (``plan``: each file's output); with ``skip_existing``, files whose output
        exists are left out."""
        total = self._summary(input=str(root), output=str(dst))
        t0 = time.perf_counter()
        user_progress = opts.pop("on_progress")
        base = {"frames": 0, "faces": 0}

        grand: list[int | None] = [None]
        said = [0]  # the count last reported: it never goes back (a video longer than its header said)

        def progress(done: int, _total, faces: int) -> None:
            if user_progress is not None:  # counts go on across files, against the folder's total
                if jobs[job[0]][0] is root and _total is not None and grand[0] is not None:
                    # the photos' total less those not written (unreadable...): so is the folder's
                    shares[job[0]] = _total
                    grand[0] = sum(shares)
                said[0] = max(said[0], base["frames"] + done)
                user_progress(said[0], grand[0], base["faces"] + faces)

        trim = {"start": opts.pop("start", 0.0), "duration": opts.pop("duration", None)}
        outs = [(v, plan[v]) for v in videos]
        done_before = 0

        from stream_gpen.io._partials import forget_partial, is_partial

        def done(q: Path) -> bool:
            return _output_done(plan[q])

        had_videos = bool(outs)
        # (files that cannot be read at all; videos an option such as start does not fit; files done;
        # left to another run)
        unread = misfit = restored = left_to_others = 0

        skip = done if skip_existing else None
        if skip_existing:
            todo = [q for q in images if not done(q)]
            done_before = len(images) - len(todo) + sum(1 for v, _ in outs if done(v))
            images, outs = todo, [(v, o) for v, o in outs if not done(v)]
            total.done_before = done_before
            if done_before:
                total.fallbacks.append(f"{done_before} file(s) already in {dst} were left as they are (skip_existing)")
                log.info("%d file(s) already in %s: left as they are", done_before, dst)
        # (without overwrite or skip_existing, existing outputs were refused before: enhance_file)
        jobs = ([(root, dst)] if images else []) + outs
        # each job's share of the total (its photos, a video's frames): a job skipped or failed
        # counts as done, so that the count reaches the total
        shares: list[int | None] = [None] * len(jobs)
        if user_progress is not None:
            counts = [_header_frames(v, **trim) for v, _ in outs]
            grand[0] = len(images) + sum(counts) if None not in counts else None
            if grand[0] is not None:
                shares = ([len(images)] if images else []) + counts
        job = [0]  # (the one running)
        try:
            for j, (src, out) in enumerate(jobs):
                job[0] = j
                if grand[0] is not None:
                    base["frames"] = sum(shares[:j])
                if src is not root and out.exists() and is_partial(out):
                    # an interrupted run's recorded part of another input under this input's output
                    # name (x.partial.webm beside x.webm): superseded either way, so it makes room
                    out.unlink(missing_ok=True)
                    forget_partial(out)
                if src is not root and skip_existing and done(src):
                    # another run into the same folder wrote it since this one began
                    total.fallbacks.append(f"{out} was written meanwhile (another run?): left as it is (skip_existing)")
                    log.info("%s: written meanwhile, left as it is", out)
                    left_to_others += 1
                    continue
                if src is not root and skip_existing:
                    from stream_gpen.io._sink import output_in_progress

                    pid = output_in_progress(out)
                    if pid is not None:
                        # another run into the same folder is restoring it now: left to it (both
                        # restored it, and the second to finish failed, its copy kept beside)
                        by = f"process {pid}" if pid else "another machine's run"
                        total.fallbacks.append(f"{out} is being restored by another run ({by}): left to it "
                                               "(skip_existing)")
                        log.info("%s: being restored by another run (%s), left to it", out, by)
                        left_to_others += 1
                        continue
                made_dirs: list[Path] = []  # (a video's subfolders of the mirror, made for it)
                if src is not root:
                    from stream_gpen.io._image import make_mirror_folder

                    try:
                        made_dirs = make_mirror_folder(out.parent, dst)
                    except NotADirectoryError as e:
                        if getattr(e, "in_the_way", None) is None:
                            raise
                        # a file of the output folder where its subfolder goes: that video's
                        # failure, listed, and the rest go on (the whole run stopped, exit 4)
                        total.skipped.append(f"{src}: could not be written: {e.in_the_way} is a file, not a folder")
                        log.warning("skipped %s: %s is a file, not a folder", src, e.in_the_way)
                        continue
                try:
                    part = self._enhance_one(str(src), out, on_progress=progress, **opts,
                                             **({"skip": skip} if src is root else trim))
                except (Interrupted, Cancelled) as exc:  # (Cancelled: raised by the caller's on_progress)
                    part = getattr(exc, "summary", None)
                    if part is not None:
                        _add_summary(total, part, root, self._all_fallbacks())
                    total.interrupted, total.partial_output = True, getattr(part, "partial_output", None)
                    # the videos after it, never begun: said too ("interrupted after 1 of 2 photos"
                    # said nothing of a folder's videos, as if the photos were all there was)
                    pending = [v.relative_to(root).as_posix() for v, _ in jobs[j + 1:]]
                    left = ""
                    if pending:
                        more = f" and {len(pending) - 3} more" if len(pending) > 3 else ""
                        left = f"{len(pending)} video(s) not started: {', '.join(pending[:3])}{more}"
                        total.fallbacks.append(f"{len(pending)} video(s) not started: {', '.join(pending)} "
                                               "(interrupted; skip_existing=True resumes)")
                    if src is root and not left:  # (its own message counts the photos and says how to resume)
                        exc.summary = total
                        raise
                    if src is root:
                        said, resume = str(exc), "; skip_existing=True resumes"
                        said = (said[:-len(resume)] + f"; {left}" + resume if said.endswith(resume)
                                else f"{said}; {left}")
                    else:
                        # a video of the folder: its own message ("no frames had been encoded, nothing
                        # was saved") hid the photos and videos finished before it, and how to resume
                        kept = (f"its {part.frames_out} frame(s) so far were saved to {total.partial_output}"
                                if total.partial_output else "nothing of it was saved")
                        said = (f"interrupted in {src} ({kept}); the files before it are written; "
                                + (f"{left}; " if left else "") + "skip_existing=True resumes")
                    if isinstance(exc, Cancelled):
                        raise _cancelled(said, total) from None
                    err = Interrupted(said)
                    err.summary = total
                    raise err from None
                except StreamGpenError as exc:
                    from stream_gpen.errors import HardwareEncoderError

                    if src is root and getattr(exc, "skipped", None) and (had_videos or done_before):
                        # every photo unreadable: each is listed, and the videos are still done
                        # (the whole run stopped, exit 2, with its good videos never restored);
                        # in a resumed run with files done before, a folder done with gaps as
                        # the first run said (exit 5), not a folder of which nothing could be read
                        total.skipped += exc.skipped
                        unread += len(exc.skipped)
                        # (the photos' notes: the files neither images nor videos, said as they were
                        # walked; enhance_file said it again, not finding it in the summary)
                        total.fallbacks += [f for f in getattr(exc, "fallbacks", ()) if f not in total.fallbacks]
                        continue
                    if src is root or isinstance(exc, HardwareEncoderError):  # the machine's, not the file's
                        self._folder_failed(total, exc, root)
                        raise
                    part = getattr(exc, "summary", None)
                    twin = getattr(exc, "appeared_meanwhile", None)
                    if skip_existing and twin is not None:
                        # another run into the same folder wrote it first: left as it is, as a
                        # photo is (this run's copy, kept beside it, removed: it is the same video)
                        try:
                            Path(twin).unlink()
                        except OSError as e:
                            log.debug("removing %s failed: %s", twin, e)
                        total.fallbacks.append(f"{out} was written meanwhile (another run?): left as it is, "
                                               "this run's copy removed (skip_existing)")
                        log.info("%s: written meanwhile, left as it is", out)
                        left_to_others += 1
                        continue
                    kept = getattr(part, "partial_output", None)
                    if kept:  # (FileSink.salvage: the frames done before the error)
                        total.skipped.append(skipped_entry(src, f"{exc} (its {part.frames_out} frame(s) before the "
                                                                f"error are in {kept})"))
                    elif isinstance(exc, InvalidInputError) and exc.option is not None:
                        # readable, but the option (start: past its end) does not fit this video:
                        # said as such, not as a file that cannot be read (nor a damaged one)
                        total.skipped.append(f"{src}: {exc.option}={MISFIT}{exc}")
                        misfit += 1
                    else:
                        total.skipped.append(skipped_entry(src, exc))
                        unread += isinstance(exc, InvalidInputError)  # (cannot be read as media at all)
                    log.warning("skipped %s", total.skipped[-1])
                    continue
                except Exception as exc:  # the restorer, the device (a bug, out of memory): the run stops
                    self._folder_failed(total, exc, root)
                    raise
                finally:
                    if made_dirs:
                        from stream_gpen.io._image import remove_empty_folders

                        # a video that could not be read (or was stopped with nothing saved) left
                        # the subfolder made for it empty in the mirror, as if something were there
                        remove_empty_folders(made_dirs)
                _add_summary(total, part, root, self._all_fallbacks())
                base["frames"], base["faces"] = total.frames_out, total.faces_restored
                restored += 1
            if grand[0] is not None and said[0] < grand[0]:  # (its last files skipped or failed)
                base["frames"] = grand[0]
                progress(0, None, 0)
        finally:
            total.seconds = time.perf_counter() - t0
        if (unread or misfit) and unread + misfit == len(total.skipped) and not restored and not done_before \
                and not left_to_others:
            # nothing of the folder could be read (or its videos did not fit start=): bad input
            # (exit 2), as a folder of photos only says; a broken video among them made it "a
            # folder done, some files failed" (exit 5)
            from stream_gpen.errors import NotMediaError

            first = total.skipped[0]
            if not misfit:
                err = NotMediaError(f"none of the {unread} files in {root} could be read (first: {first})",
                                    hint="check that the files were copied whole (`stream-gpen info FILE` says "
                                         "what is wrong with one)")
            else:
                options = misfit_options(total.skipped)
                fit = " and ".join(options)
                said = (f"{fit} does not fit any of its {misfit} video(s)" if not unread else
                        f"{unread} file(s) could not be read, and {fit} does not fit the other {misfit} video(s)")
                err = InvalidInputError(f"nothing in {root} could be restored: {said} (first: {first})",
                                        hint=misfit_hint(options), option=options[0].rstrip("="))
            err.skipped = list(total.skipped)
            total.error = str(err)
            err.summary = total
            raise err
        return total

    @staticmethod
    def _write_photo(sink, frame, summary: RunSummary, *, folder: bool, meanwhile: list[int] | None = None) -> bool:
        """``sink.write(frame)``; in a folder run a photo that cannot be written (a metadata
        block its format refuses, say) is listed in ``summary.skipped`` and the rest go on. An
        existing output (the user's choice) and a full disk (every next photo too) still stop it;
        in a resumed run (skip_existing: ``meanwhile`` counts them) an output that appeared since
        the run began (another run into the same folder wrote it) is left as it is."""
        import errno

        from stream_gpen.io._sink import FULL_ERRNOS, REFUSED_ERRNOS

        if not folder:
            sink.write(frame)
            return True
        try:
            sink.write(frame)
            return True
        except OutputExistsError:
            if meanwhile is None:
                raise
            meanwhile[0] += 1
            log.info("%s: its output was written meanwhile (another run?): left as it is", frame.rel_path)
            frame.release()
            return False
        except OSError as e:
            blocked = getattr(e, "in_the_way", None)
            if blocked is not None:  # (a file of the output folder where this photo's subfolder goes)
                summary.skipped.append(f"{frame.rel_path}: could not be written: {blocked} is a file, not a folder")
                log.warning("skipped %s: %s is a file, not a folder", frame.rel_path, blocked)
                frame.release()
                return False
            # the file system refuses every next photo too: full, read-only, no permission, not a folder
            if e.errno in FULL_ERRNOS | REFUSED_ERRNOS | {errno.ENOTDIR}:
                raise
            why = e
        except Exception as e:  # noqa: BLE001 - one odd photo must not end a run over thousands
            why = e
        summary.skipped.append(f"{frame.rel_path}: could not be written ({type(why).__name__}: {why})")
        log.warning("skipped %s: could not be written: %s: %s", frame.rel_path, type(why).__name__, why)
        log.debug("writing %s failed", frame.rel_path, exc_info=True)
        frame.release()
        return False

    def _still_frames(self, source, stage, on_frame=None) -> Iterator:
        from stream_gpen.faces._hdr import HdrColour

        for frame in source:
            if on_frame is not None:
                on_frame(frame)
            img = frame.image
            # an HDR photo (PQ/HLG HEIF) is restored as SDR, as HDR video is; each photo says its own
            stage.colour = HdrColour.for_image(frame.image_info)
            with self._lock:  # (the detector's dropped boxes, which the turned search reads, are shared)
                planned = stage.plan_still(img)
            stage.restore([img], [planned], hi=[frame.hi])  # hi: a 16-bit photo's own pixels
            frame.faces = int(planned.shape[0])  # (none: the sink copies the file as it is)
            yield frame

    def _folder_failed(self, total: RunSummary, exc: BaseException, root) -> None:
        """A folder run stops on ``exc``: its summary (for --report) is the folder's so far, the
        failed file's counts and kept part added, not that one file's alone."""
        part = getattr(exc, "summary", None)
        if part is total:
            return
        if part is not None:
            _add_summary(total, part, root, self._all_fallbacks())
            total.partial_output = part.partial_output
        total.error = (getattr(part, "error", None) or " ".join(str(exc).split()) or type(exc).__name__)
        try:
            exc.summary = total
        except AttributeError:
            pass

    def _finish_stopped(self, summary: RunSummary, frames, stage, source, timer: StageTimer, t0: float, *,
                        sink=None, kept_out: bool = True) -> None:
        """:meth:`_finish` for a run stopped before its end (interrupted, or failed). The frames
        generator is closed first: the faces of frames restored but never written come out of the
        counts (the partial output had fewer). Frames read (the decoder reads ahead) and not
        written count as dropped, so that in = out + dropped, as camera counts them; ``kept_out``
        False: no output was kept (a failed video), nothing counts as out."""
        if frames is not None:
            frames.close()
        self._finish(summary, stage, source, timer, t0, sink=sink)
        if not kept_out:
            summary.frames_out = 0
        summary.frames_dropped = max(summary.frames_dropped, summary.frames_in - summary.frames_out)

    def _finish(self, summary: RunSummary, stage, source, timer: StageTimer, t0: float, *, sink=None,
                live_drops: bool = True) -> None:
        """The counts, times and notes of a run that is over into ``summary``. ``sink``: one whose
        own thread encodes adds its time to the ``encode`` stage (see ``_Sink.encode_seconds``);
        ``live_drops`` False: a live source's dropped frames are counted only (the camera's design),
        not also said in ``fallbacks``."""
        stats = getattr(source, "stats", {}) or {}
        summary.frames_dropped = int(stats.get("dropped", 0))
        summary.packets_corrupt = int(stats.get("corrupt_packets", 0))
        summary.faces_restored = stage.faces_restored
        summary.frames_with_faces = stage.frames_with_faces
        summary.detector_calls = stage.detector_calls
        summary.detector_probes = stage.detector_probes
        summary.detections_implausible = stage.detections_implausible
        summary.faces_parsed = stage.parser_calls
        summary.seconds = time.perf_counter() - t0
        summary.precision = self.precision  # (the runner may have fallen back to fp32 since the start)
        summary.stage_seconds = dict(timer.totals)
        _add_stage(summary, "decode", getattr(source, "decode_seconds", None))
        _add_stage(summary, "encode", getattr(sink, "encode_seconds", None))
        summary.frames_in = max(summary.frames_in, int(stats.get("decoded", 0)))
        summary.fallbacks = self._all_fallbacks() + [str(f) for f in getattr(source, "fallbacks", []) or []]
        if summary.frames_dropped and live_drops:
            # (a live source read by a job: a network stream that came faster than it was restored)
            note = (f"{summary.frames_dropped} frame(s) of the live source were dropped (restoring fell behind its "
                    "rate): the output skips them")
            log.warning("%s", note)
            summary.fallbacks.append(note)
        if getattr(stage, "turns_used", None):
            summary.fallbacks += stage.turned_notes()
        concealed = int(stats.get("corrupt_frames", 0))
        if concealed:  # (damaged, shown patched by the decoder: said only on stderr, the report was clean)
            summary.fallbacks.append(f"{concealed} damaged frame(s) concealed by the decoder (the input is damaged "
                                     "there)")
        summary.skipped = [str(x) for x in getattr(source, "skipped", []) or []] + summary.skipped

    def stream(self, source: str | os.PathLike | bytes | int, *, live: bool | None = None,
               latency_budget_s: float = 0.05, capture: CaptureMode | None = None) -> Iterator[EnhancedFrame]:
        """Yield enhanced frames (numpy RGB) with their timestamps from any source spec: a file
        path, URL, ``lavfi:`` graph or capture device (``/dev/video0``, or an index). A photo (a
        path or a URL) or a folder of photos gives each photo restored on its own, as
        :meth:`enhance_file` does (photos of a folder are not frames of one scene: no tracking from
        one to the next); a folder's videos are left out with a warning (:meth:`enhance_file`
        takes them).

        ``source``: a path (``str``, ``bytes``, ``os.PathLike``), URL, ``lavfi:`` graph, device name
        or a capture device's index (``0``).
        ``live``: ``None`` (default) lets the source say (capture devices, lavfi graphs and
        rtsp/rtmp/srt/udp streams are live; files and http(s) URLs are not); ``True`` reads it
        as live: when the restoring falls behind, stale frames are dropped rather than the decoder
        held (their ``index`` numbers skipped), a network stream that ends is reconnected, a file
        or graph is paced at its own rate, and no look-ahead is used; ``False`` restores every
        frame in order, with the look-ahead smoother of files (``smooth_lag``).
        ``latency_budget_s`` (live sources, seconds >= 0; default 0.05): how long a frame may wait
        for other frames' faces to fill a batch before it goes out with a smaller one (0: each
        frame alone, lowest latency; more: fuller batches, frames later). Not used for files.
        ``capture`` (capture devices only): the :class:`~stream_gpen.io.CaptureMode` asked of the
        camera, e.g. ``CaptureMode.parse(size="1280x720", rate="30", input_format="mjpeg")``;
        ``None``: the camera's own.
        The frames come as :class:`EnhancedFrame` (numpy copies: kept safely after the next one).
        Bad arguments are refused by the call itself; the source is opened at the first ``next()``."""
        source = _given_path(source, "source")  # (a path given as bytes, as enhance_file takes one)
        _check_live_options(live, latency_budget_s, none_ok=True)
        if _whole(source):  # a capture device's index (numpy's too)
            if source < 0:
                raise InvalidInputError(f"a capture device index is 0 or more, got {source}",
                                        hint="stream-gpen camera --list names the devices")
            source = int(source)
        if isinstance(source, bool) or not isinstance(source, (str, os.PathLike, int)):
            raise InvalidInputError(
                f"stream() reads a file, URL, lavfi: graph or device, not {type(source).__name__}; for pictures "
                "you already hold (numpy arrays), use stream_frames() (a sequence, tracked) or enhance_image()")
        if capture is not None:
            if not isinstance(capture, CaptureMode):
                raise InvalidInputError(f"capture must be a CaptureMode or None, got {type(capture).__name__}")
        # (checked above, at the call: as a generator it was checked at the first next() only)
        return self._stream(source, live, latency_budget_s, capture)

    def _stream(self, source, live: bool | None, latency_budget_s: float, capture=None) -> Iterator[EnhancedFrame]:
        """:meth:`stream`'s frames, its arguments checked."""
        if is_image_url(str(source)) and capture is None:  # a photo URL: the photo itself, as enhance_file() reads it
            with fetched(str(source)) as local:
                for frame in self._stream(local, live, latency_budget_s):
                    yield dataclasses.replace(frame, path=str(source))  # (not the fetched copy's name)
            return
        if live:  # (before the source opens: its first frames are not dropped meanwhile)
            self._warm_up_live()
        src, stage = self._open(source, live=live, capture=capture)
        if hasattr(src, "covers"):  # (an APNG's cover is no frame of its animation: ImageSource.covers)
            src.covers = False
        aux = getattr(src, "aux", None)
        if aux is not None:
            aux.close()  # pictures only: the source's audio is not collected (nor warned about)
        still = getattr(src.metadata, "kind", "") in ("image", "folder")
        if getattr(src.metadata, "kind", "") == "folder":
            from stream_gpen.io._image import folder_media

            videos = folder_media(Path(source))[1]
            if videos:  # (enhance_file restores them; here they would be frames among photos)
                log.warning("stream(): %d video file(s) in %s left out (photos only; Enhancer.enhance_file "
                            "restores a folder's videos too): %s", len(videos), source,
                            ", ".join(v.name for v in videos[:3]) + (", ..." if len(videos) > 3 else ""))
        with src:
            if getattr(src, "live", False):
                self._warm_up_live()  # (live=None and the source says it is live; else done above: nothing)
            frames = (self._still_frames(src, stage) if still
                      else self._frames(src, stage, latency_budget_s=latency_budget_s))
            for frame in frames:
                yield _enhanced(frame)

    def stream_frames(self, frames, *, fps: float = 30.0, live: bool = True,
                      latency_budget_s: float = 0.05) -> Iterator[EnhancedFrame]:
        """Restore a sequence of your own pictures as video: faces are tracked from frame to frame
        (fewer detector calls, no flicker), unlike :meth:`enhance_images`, which takes each
        picture on its own. ``frames``: any iterable of numpy arrays as :meth:`enhance_image`
        takes (RGB, grey or RGBA; uint8 or uint16), all of one size, e.g. an OpenCV capture loop
        (convert BGR to RGB first). Yields an :class:`EnhancedFrame` per picture, in order, as
        soon as its faces are done; ``index`` counts from 0 and ``pts``/``time`` follow ``fps``.

        ``live=True`` (default): each frame goes out within ``latency_budget_s`` of the next one
        coming in, with no look-ahead (a camera loop). ``live=False``: the look-ahead smoother
        of files is used (``smooth_lag`` frames held back: steadier faces; for recorded
        sequences). A picture identical to the one before it (a camera loop handing the same
        buffer again while no new frame came) gets that picture's faces (docs/tracking.md,
        "Repeated frames"). Pulling from ``frames`` happens in the caller's thread, inside ``next()``.
        If ``frames`` raises (a camera unplugged) or gives something that is not a picture (None
        from a failed read), the frames taken before it are restored and yielded first, then
        the error is raised. Bad arguments are refused by the call itself (pictures as they come).
        """
        _check_live_options(live, latency_budget_s, none_ok=False)
        if isinstance(frames, torch.Tensor):
            raise InvalidInputError("stream_frames() takes numpy pictures (a torch tensor: .cpu().numpy() each)")
        if isinstance(frames, np.ndarray) and frames.ndim != 4:
            raise InvalidInputError("stream_frames() takes a sequence of pictures; for one picture use enhance_image()")
        if not (isinstance(fps, numbers.Real) and not isinstance(fps, bool) and 0 < fps < 1e6):
            raise InvalidInputError(f"fps must be a positive number, got {fps!r}")
        pictures = _pictures_in(frames, "stream_frames()", "frames")
        return self._stream_frames(pictures, float(fps), live, latency_budget_s)

    def _stream_frames(self, pictures, fps: float, live: bool, latency_budget_s: float) -> Iterator[EnhancedFrame]:
        """:meth:`stream_frames`'s frames, its arguments checked."""
        feed = _PictureFeed(pictures, device=self.device, fps=fps, live=live)
        first = feed.peek()
        if first is _END:
            return
        try:
            h, w = feed.converted_first()[0].shape[:2]
        except InvalidInputError as e:  # (OpenCV's failed first read is None: not an empty run)
            raise InvalidInputError(f"stream_frames(): picture 0: {e}") from None
        stage = self._picture_stage(w, h, live=live)
        if live:
            self._warm_up_live()
        from stream_gpen.pipeline import run_stream

        for frame in run_stream(feed, stage, batch_faces=self.batch_size, max_pending_frames=self._max_pending(),
                                latency_budget_s=latency_budget_s if live else None):
            yield _enhanced(frame)
        if feed.error is not None:  # the frames taken before it are out: now the caller's error
            raise feed.error


def _pictures_in(pictures, where: str, name: str) -> Iterator:
    """An iterator over the pictures a caller gave (``enhance_images``, ``stream_frames``): one
    that is not a sequence at all (``None``, a number) is refused naming the parameter (it was
    Python's "'NoneType' object is not iterable")."""
    try:
        return iter(pictures)
    except TypeError:
        raise InvalidInputError(f"{where} takes an iterable of pictures (numpy arrays) as {name}, got "
                                f"{type(pictures).__name__}") from None


_END = object()  # the end of a picture sequence (None may be a picture: OpenCV's failed read)


class _PictureFeed:
    """The caller's pictures as a frame source for :func:`~stream_gpen.pipeline.run_stream`:
    each array checked and copied to the device as a ring-less :class:`~stream_gpen.io.Frame`.
    An error raised by the caller's iterable ends the sequence (``error``), so the frames
    already taken are restored and handed out before it is raised."""

    def __init__(self, pictures, *, device, fps: float, live: bool) -> None:
        self._it = iter(pictures)
        self._device = device
        self._tb = 1 / Fraction(fps).limit_denominator(1_000_000)
        self._first = self._UNSET = object()
        self._converted = None
        self._size: tuple[int, int] | None = None
        self.live = live
        self.error: Exception | None = None

    def peek(self):
        """The first picture (kept for iteration), or ``_END`` for an empty sequence."""
        if self._first is self._UNSET:
            self._first = next(self._it, _END)
        return self._first

    def converted_first(self):
        """The first picture as :func:`_to_rgb_tensor` gives it (converted once, kept for iteration)."""
        if self._converted is None:
            self._converted = _to_rgb_tensor(self.peek())
        return self._converted

    def _pictures(self):
        yield self.peek()
        while True:
            try:
                picture = next(self._it)
            except StopIteration:
                return
            except Exception as e:  # the caller's camera or file failed: what came before still goes out
                self.error = e
                return
            yield picture

    def __iter__(self):
        from stream_gpen.io import Frame

        if self.peek() is _END:
            return
        for index, picture in enumerate(self._pictures()):
            try:
                image, alpha, hi = self.converted_first() if index == 0 else _to_rgb_tensor(picture)
            except InvalidInputError as e:  # (OpenCV's failed read is None) the ones before still go out
                self.error = InvalidInputError(f"stream_frames(): picture {index}: {e}")
                return
            size = tuple(image.shape[:2])
            if self._size is None:
                self._size = size
            elif size != self._size:
                self.error = InvalidInputError(
                    f"stream_frames(): picture {index} is {size[1]}x{size[0]}, the first was "
                    f"{self._size[1]}x{self._size[0]}; a sequence keeps one size")
                return
            dev = self._device
            yield Frame.from_tensor(
                image.to(dev), index=index, pts=index, time_base=self._tb,
                alpha=torch.from_numpy(alpha).to(dev) if alpha is not None else None,
                hi=hi.to(dev) if hi is not None else None)


def _enhanced(frame) -> EnhancedFrame:
    """A restored frame as numpy copies (the frame is released)."""
    try:
        hi, alpha = frame.hi, frame.alpha
        path = (getattr(frame, "image_info", None) or {}).get("source_path")
        return EnhancedFrame(frame.index, frame.image.cpu().numpy().copy(), frame.pts, frame.time_base, frame.time,
                             hi.cpu().numpy().copy() if hi is not None else None,
                             alpha.cpu().numpy().copy() if alpha is not None else None,
                             os.fspath(path) if path is not None else None)
    finally:
        frame.release()


def video_detect_size(meta, par: float = 1.0) -> int:
    """The detector's long side for a video by default: half the frame's (display) long side,
    within 640..1280, on the network's 32-px grid. A face the network sees below ~16 px is
    missed, and at 640 a 1080p frame is seen at a third: walkers' 50-px faces in a 1080p crowd
    were lost (40 found on 9 sample frames at 640, 50 at 960, 54 at 1280). 720p and smaller stay
    at 640; 1080p gets 960 (with the 640 pass for big faces, ~3x the detector's time per call:
    ~45 ms on a 2-core CPU, every few frames); 4K 1280, the same third as 1080p had at 640."""
    w, h = getattr(meta, "width", 0) or 0, getattr(meta, "height", 0) or 0
    long_side = max(w * par, h)
    return int(min(max(round(long_side / 2 / 32) * 32, VIDEO_DETECT_SIZE), 2 * VIDEO_DETECT_SIZE))


def pixel_aspect(meta) -> float:
    """Width over height on screen of one pixel of the frames a source delivers: its sample
    aspect ratio (which the source already inverts when autorotate turns the frames a quarter
    turn). 1.0 for square, unknown or implausible values (outside 1/4..4: a broken header), and
    for aspects within 1% of square (e.g. 389:388 from an odd-width crop): a face distorted by
    under 1% gains nothing from a resampled detector input."""
    sar = getattr(meta, "sample_aspect_ratio", None)
    if not sar or sar <= 0:
        return 1.0
    par = float(sar)
    return par if 0.25 <= par <= 4.0 and abs(par - 1.0) >= 0.01 else 1.0


def _expected_frames(meta) -> int | None:
    """Frame count for the progress bar: counted if the source counted it, else the header's
    count, else duration x rate (an estimate for the ETA only: the container's duration includes
    an audio tail, AAC's padding at least), else unknown."""
    if getattr(meta, "frame_count", None):
        return int(meta.frame_count)
    if getattr(meta, "frame_count_header", None) and not getattr(meta, "live", False):
        return int(meta.frame_count_header)
    dur, rate = getattr(meta, "duration_s", None), getattr(meta, "frame_rate", None)
    video = getattr(meta, "video_duration_s", None)
    if dur and video and video < dur:  # (a minute of audio after the last picture was counted as frames)
        dur = video
    if dur and rate and not getattr(meta, "live", False):
        # frames whose time is before the end: a --duration 0.5 part at 25 fps holds 13 (0.00 to
        # 0.48 s), which round() made 12 (banker's rounding of 12.5); the slack absorbs float noise
        return max(1, math.ceil(dur * float(rate) - 1e-3))
    return None


class _TotalGuess:
    """A frame count estimated from duration x nominal ``rate``, corrected by the frames' own
    times once a second of them has come: frames so far x the span the estimate covers / the span
    they covered (a constant-rate clip keeps its estimate)."""

    def __init__(self, total: int, rate: float) -> None:
        self.total, self.span, self.step = total, total / rate, 1 / rate
        self.first: float | None = None

    def update(self, time: float | None, done: int) -> int | None:
        """The count to show after ``done`` frames, the last at ``time``; None (unknown) once the
        frames run past the span the estimate covers: a file still being written as it is read
        (a recording, a download) said "127/127 frames (100%)", no time left, half-way through."""
        if time is None:
            return self.total if done <= self.total else None
        if self.first is None:
            self.first = time
        seen = time - self.first
        if seen >= 1.0:
            self.total = round(done * self.span / (seen + self.step))
        if done > self.total + 1:  # (a frame's slack: rounding, a late timestamp near the end)
            return None
        return max(self.total, done)


def _not_copyable(src: str) -> str | None:
    """Why the input ``src`` (not a URL) cannot be stream-copied after its run, or None for a file:
    a ``lavfi:`` graph is generated (no file to copy), a pipe, FIFO or character device
    (``/dev/stdin`` of ``cat a.ts | ...``, a ``mkfifo``, a capture device) was read up by the run.
    Remuxing them opened the name again and failed ("No such file or directory", "Invalid data")."""
    from stream_gpen.io._source import _is_pipe, is_device_number

    if src.startswith("lavfi:"):
        return "a lavfi: graph is generated, there is no file to copy"
    if is_device_number(src) or _is_pipe(src):
        return f"{src} is a pipe or device, read up by the run"
    return None


def _copy_unmet(start, duration, compare, audio, codec="auto", crf=None, preset=None, chroma="auto",
                deep_source: str | None = None) -> str | None:
    """What of a run's options a stream copy of the input could not honour (``copy_if_no_faces``
    then keeps the re-encode), or None. ``deep_source``: the source's pixel format where the run
    writes 8 bits (``high_bit_depth=False``), so that a 10/12-bit one is not copied as it is."""
    if start or duration is not None:
        return "a trimmed run (it would copy the whole input)"
    if compare:
        return "compare=True (it would copy the input alone)"
    if audio != "copy":
        return f"audio={audio!r} (it would copy the input's audio)"
    asked = [f"{k}={v!r}" for k, v in (("codec", codec), ("crf", crf), ("preset", preset), ("chroma", chroma))
             if v is not None and v != "auto"]
    if asked:
        return f"{', '.join(asked)} (it would keep the input's own encoding)"
    if deep_source is not None:
        from stream_gpen.io._convert import bits_per_component

        if bits_per_component(deep_source) > 8:
            return (f"high_bit_depth=False (--bit-depth 8) (it would keep the input's "
                    f"{bits_per_component(deep_source)}-bit encoding)")
    return None


def _pix_fmt_of(path: str) -> str | None:
    """The main video stream's pixel format of the file at ``path``, or None."""
    import av

    from stream_gpen.io._meta import ffmpeg_local
    from stream_gpen.io._source import main_video_stream

    try:
        with av.open(ffmpeg_local(path)) as c:
            vs = main_video_stream(c)
            return vs.codec_context.pix_fmt if vs is not None else None
    except (av.FFmpegError, OSError):
        return None


def _whole(x) -> bool:
    """An integer option's value: a Python or numpy integer (not a bool)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def _real(x) -> bool:
    """A number option's value: a Python or numpy real number (not a bool)."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def _remove_old_partial(summary: RunSummary, dst, src=None) -> None:
    """Interrupted earlier runs' ``.partial`` outputs (``NAME.partial.EXT``, and the
    ``NAME.partial-N.EXT`` of runs interrupted after one) are superseded by the whole output ``dst``;
    never the run's own input ``src`` (re-restoring ``holiday.partial.mp4`` into ``holiday.mp4``
    deleted the input it had just read), and only files recorded as written for an interrupted run
    and unchanged since (:mod:`stream_gpen.io._partials`: a folder run's finished output of an input
    called ``a.partial.webm`` was removed by name)."""
    import glob

    from stream_gpen.io._meta import hidden_temp

    first = hidden_temp(dst, ".partial", hidden=False)
    stem, _, ext = first.name.rpartition(".partial")
    later = sorted(p for p in first.parent.glob(glob.escape(stem) + ".partial-*" + glob.escape(ext))
                   if re.fullmatch(re.escape(stem) + r"\.partial-\d+" + re.escape(ext), p.name))
    from stream_gpen.io._partials import forget_partial, is_partial

    for left in [first, *later]:
        if not left.is_file():
            continue
        if src is not None and _same_place(left, src):
            summary.fallbacks.append(f"{left.name} is this run's input: kept (not removed as an interrupted run's output)")
            continue
        if not is_partial(left):
            # named so, but not written by an interrupted run of this tool (or changed since): a
            # folder run's finished output of an input called so, the user's own file
            summary.fallbacks.append(f"{left.name} was kept: it is not recorded as left by an interrupted run")
            continue
        try:
            left.unlink()
            forget_partial(left)
            summary.fallbacks.append(f"removed {left.name}, left by an interrupted earlier run")
        except OSError as e:  # (open in a player on Windows: the output is written all the same)
            summary.fallbacks.append(f"{left.name}, left by an interrupted earlier run, could not be "
                                     f"removed ({e.strerror or e}): delete it yourself")


def _output_done(out: Path) -> bool:
    """A folder run's output ``out`` is there already (an interrupted run's recorded part is not it)."""
    from stream_gpen.io._partials import is_partial

    return out.exists() and not is_partial(out)


def _picture_size(path: Path) -> tuple[int, int] | None:
    """A photo's or video's size in pixels from its header (None where it cannot be read)."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - not a picture Pillow reads: a video, or a HEIC without its plugin
        pass
    try:
        import av

        with av.open(str(path)) as c:
            v = c.streams.video[0]
            return v.codec_context.width, v.codec_context.height
    except Exception:  # noqa: BLE001 - nothing known about it
        return None


def _not_earlier_output(src: Path, out: Path, name: str, start: float = 0.0) -> str | None:
    """Why ``out`` cannot be an earlier run's output of ``src`` (called ``name`` in the answer; None
    where it can be): a restored picture keeps its size (upright: EXIF-rotated photos come out
    turned; side by side with ``compare``: twice as wide; a video padded to even sides) and looks
    like its input. Unreadable sizes are given the benefit of the doubt."""
    a, b = _picture_size(src), _picture_size(out)
    if a is None or b is None:
        return None
    (w, h), (ow, oh) = a, b
    if not any(abs(ow - x) <= 1 and abs(oh - y) <= 1 for x, y in ((w, h), (h, w), (2 * w, h), (2 * h, w))):
        return f"another size than {name}: {ow}x{oh}, not {w}x{h}"
    # A camera's photos all have one size, and its file numbers start again (lib/IMG_0001.jpg and
    # lib/2019/IMG_0001.jpg): a restored photo looks like its input at a glance (only faces change),
    # another photo does not
    return None if _looks_alike(src, out, start) else f"the size of {name} but another picture at a glance"


#: the texture (grey-level spread, of 255, over a cell's 4x4 pixels in a 64x64 thumbnail) that
#: makes one of 16x16 thumbnail cells count: cells plain in both pictures (a scanner's page
#: margin, a dark background, sky, letterbox bars) are alike in any two photos and tell nothing
_ALIKE_TEXTURE = 3.0
#: the largest difference (of 255) between two pictures' textured cells, over the quarter of them
#: that differs least, for one to be the other's restored output: restoration changes faces only,
#: so a quarter is untouched. Measured on the 9 shared whole photos (close-up selfies included):
#: an input against its classic-model output, against its output with every face painted white,
#: and against a quality-50 JPEG of it, 0.1 at most (the 6 shared videos' first frames, H.264
#: re-encoded, side by side too: 1.1 at most); two different photos 5.9 and more (pairwise:
#: of one size 15.4, dimmed to 0.35x 5.9, each on one white scanner page 9.3), where the test
#: before (p25 over all cells <= 8) took 36 of 36 scan pairs and 15 of 36 dimmed pairs for alike
_ALIKE_MAX = 3.0


def _grey_thumbs(path: Path, start: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A picture's 64x64 grey thumbnails, upright: of all of it, and of its left half (a
    side-by-side ``compare`` output); a photo's through Pillow, a video's from its first decoded
    frame (at ``start`` seconds or after: a cut's output begins there). A JPEG is decoded at a
    reduced scale (Pillow's draft: a 12 MP photo took 0.28 s at full size, 0.06 s so; a resumed
    folder run thumbnails every input and output before its first photo)."""
    from PIL import Image, ImageOps

    def small(im) -> tuple[np.ndarray, np.ndarray]:
        im = im.convert("L")
        half = im.crop((0, 0, max(1, im.width // 2), im.height))
        return tuple(np.asarray(x.resize((64, 64), Image.BILINEAR), np.float32) for x in (im, half))

    def eight_bit(im):
        # a 16-bit grey (I;16) or 32-bit (I, F) picture: Pillow's convert clips it at 255, so every
        # 16-bit scan came out one flat white and any two of one size were "alike" (an original
        # was overwritten); brought to 8 bits as its 8-bit output would be
        if im.mode.startswith("I;16") or im.mode in ("I", "F"):
            a = np.asarray(im, np.float64)
            a = a * 255.0 if im.mode == "F" and a.max(initial=0) <= 1.0 else a / 257.0
            return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "L")
        return im.convert("RGB") if im.mode not in ("RGB", "L") else im

    try:
        with Image.open(path) as im:
            im.draft(None, (256, 256))  # (JPEG only; at least 256 px a side, aspect kept)
            return small(ImageOps.exif_transpose(eight_bit(im)))
    except Exception:  # noqa: BLE001 - not a picture Pillow reads: a video (a phone's VID_0001 of one size)
        pass
    import av

    from stream_gpen.io._source import display_matrix, display_orientation

    with av.open(str(path)) as c:
        at = start + (c.start_time or 0) / av.time_base  # (seconds from the file's beginning)
        if start > 0:
            c.seek(int(at * av.time_base))  # the keyframe before it, decoded on from there
        frame = None
        for frame in c.decode(video=0):
            if start <= 0 or frame.time is None or frame.time >= at - 1e-3:
                break
        if frame is None:
            raise ValueError(f"{path.name}: no video frame")
        k, mirrored = display_orientation(frame.rotation, display_matrix(frame))  # the output is upright
        im = frame.to_image()
    im = ImageOps.mirror(im) if mirrored else im
    return small(im.rotate(k, expand=True) if k else im)


#: the grey-level spread (of 255) of an ordinary photo's thumbnail: a darker or flatter pair is
#: stretched to it before the comparison (at most :data:`_ALIKE_STRETCH` times), else two different
#: dark photos differ by less than the limits (at 0.15x exposure 89 of 378 pairs of the shared
#: aligned faces were "alike", an original overwritten)
_ALIKE_SPREAD = 50.0
#: the most a dark pair is stretched: compression noise, which does not darken with the picture,
#: is stretched too
_ALIKE_STRETCH = 4.0


def _thumbs_alike(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two 64x64 thumbnails agree over a quarter of the 16x16 cells textured in either
    (a low-contrast pair first stretched towards an ordinary photo's spread)."""
    gain = min(_ALIKE_STRETCH, max(1.0, _ALIKE_SPREAD / max(float(a.std()), float(b.std()), 1e-6)))
    a, b = a * gain, b * gain
    ca, cb = a.reshape(16, 4, 16, 4), b.reshape(16, 4, 16, 4)
    diff = np.abs(ca.mean(axis=(1, 3)) - cb.mean(axis=(1, 3)))
    textured = (ca.std(axis=(1, 3)) > _ALIKE_TEXTURE) | (cb.std(axis=(1, 3)) > _ALIKE_TEXTURE)
    cells = diff[textured] if textured.any() else diff.ravel()  # (two plain pictures: all of them)
    return bool(np.percentile(cells, 25) <= _ALIKE_MAX)


def _looks_alike(a: Path, b: Path, start: float = 0.0) -> bool:
    """Whether ``b`` looks like ``a`` restored, at a glance (upright; or its left half: a
    side-by-side ``compare`` output; a video from ``start`` seconds on, as cut). Unreadable ones
    (a HEIC without its plugin) do."""
    try:
        ta = _grey_thumbs(a, start)[0]
        return any(_thumbs_alike(ta, tb) for tb in _grey_thumbs(b))
    except Exception:  # noqa: BLE001 - neither Pillow nor FFmpeg reads it: given the benefit of the doubt
        return True


def _check_output_inside(root: Path, dst: Path, inputs: list[Path], plan: dict[Path, Path], *,
                         start: float = 0.0) -> None:
    """Refuse an output folder inside the input folder where this run would overwrite (or, resumed,
    skip as done) a photo or video that is not its input's earlier output.

    Such a folder is left out of the walk (an earlier run's output would be restored again, nested
    deeper each time). ``enhance lib -o lib/2019`` with originals in lib/2019 replaced
    ``lib/2019/a.jpg`` by ``lib/a.jpg``'s result (with overwrite): a file the plan maps an input
    onto counts as that input's earlier output when its size agrees and it looks alike
    (:func:`_not_earlier_output`; a video's output begins at ``start``, a re-run's).
    Other files there (outputs of inputs since removed or renamed, of a run with another
    ``image_format``, the user's own) are left as they are: said once where they look like
    originals (no input's name)."""
    # (by identity, not resolved paths: on a case-insensitive disk ``enhance lib -o LIB/2019``
    # named lib/2019, which ``resolve()`` keeps as typed, and the originals there were replaced)
    if not dst.is_dir() or not _holds(root, dst):
        return
    from stream_gpen.io._image import folder_media
    from stream_gpen.io._meta import hidden_temp

    images, videos, _ = folder_media(dst, say=False)
    there = {str(q).lower(): q for q in images + videos}
    foreign = []
    for q, out in plan.items():
        for o in (out, hidden_temp(out, ".partial", hidden=False)):
            found = there.pop(str(o).lower(), None)
            # (both named with their folders: "a.jpg, ... than a.jpg" read as a.jpg not being a.jpg)
            why = _not_earlier_output(q, found, f"the input {q}", start) if found is not None else None
            if why is not None:
                foreign.append((found, why))
    # (an input's clash-renamed name in another format, ``a_png.jpg``, is one of its names too)
    stems = {str(q.relative_to(root).with_suffix("")).lower() for q in inputs}
    stems |= {str(q.relative_to(root).with_suffix("")).lower() + "_" + q.suffix[1:].lower() for q in inputs}

    def named(p: Path) -> bool:
        stem = str(p.relative_to(dst).with_suffix("")).lower()
        stem = re.sub(r"\.partial(-\d+)?$", "", stem)  # (interrupted runs' outputs)
        base, _, n = stem.rpartition("_")
        return stem in stems or (n.isdigit() and base in stems)

    # (an input's own output in another format, an earlier run's ``image_format``, is not odd)
    odd = [p for p in there.values() if not named(p)]
    if foreign:
        o, why = foreign[0]
        more = f"; and {len(odd)} more that no input maps to (first: {odd[0].relative_to(dst)})" if odd else ""
        raise InvalidInputError(
            f"the output folder {dst} is inside the input folder and holds {len(foreign)} photo(s) or video(s) this "
            f"run would overwrite that are not their input's earlier output (first: {o}, {why})"
            f"{more}: originals, it seems (or outputs edited since)",
            hint=f"name an output folder outside {root} as dst")
    if odd:
        log.warning("%s holds %d photo(s) or video(s) that no input of this run maps to (first: %s): left as they "
                    "are, not restored (outputs of inputs since removed or renamed, or files of your own: those "
                    "are restored by a run on %s itself)", dst, len(odd), odd[0].relative_to(dst), dst)


def _photo_input(src: str) -> bool:
    """A single input restored as a photo, by its name (a still GIF by its frames; a URL by
    :func:`is_image_url`)."""
    from stream_gpen.io._source import IMAGE_EXTS

    if "://" in src or src.startswith("lavfi:"):
        return is_image_url(src)
    own = Path(src)
    return own.suffix.lower() in IMAGE_EXTS or _photo_suffix(own) != own.suffix


def _photo_suffix(path: Path) -> str:
    """The extension a photo is written with by default: its own; a still GIF's ``.png`` (there is
    no GIF writer: an animated GIF is a video, ``.gif`` itself)."""
    from stream_gpen.io._image import still_gif

    return ".png" if path.suffix.lower() == ".gif" and still_gif(path) else path.suffix


def _plural(n: int, word: str) -> str:
    """``1 frame``, ``2 frames``, ``0 photos``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _stopped_when_written(summary: RunSummary, dst, *, copy: bool = False) -> Interrupted:
    """A stop (Ctrl-C, SIGTERM) once the output was written whole: while the summary was finished,
    or during copy_if_no_faces' stream copy (``copy``). Said as it is, with the finished run's
    counts: it was reported as stopped before the run began, "nothing was written", frames_out 0;
    also a single photo, written whole before the stop (it was "interrupted after 1 frames")."""
    summary.interrupted = True
    said = ("stopped after the run was done (nothing to write)" if dst == "null"
            else f"stopped after {dst} was written whole")
    if copy:
        said += " (re-encoded; the stream copy of copy_if_no_faces was not made)"
    summary.fallbacks.append(said)
    err = Interrupted(said)
    err.summary = summary
    return err


def _stale_originals(src: Path) -> list[str]:
    """Clear the hidden originals that in-place ``copy_if_no_faces`` runs killed with ``kill -9`` (or a
    power cut) left beside ``src``: one that is ``src`` itself (a hard link: the run was stopped before
    it replaced it) is only a second name, and goes; one that differs may be the only copy of the
    original (the run had put its re-encode in place) and is kept, and said. Those of runs still
    going (their process is there) are left alone. Returns what is to be said."""
    from stream_gpen.io._meta import hidden_temp
    from stream_gpen.io._sink import _machine_tag, _pid_alive

    pattern = re.compile(r"\.([0-9a-f]{8})-(\d+)-[0-9a-f]{8}\.original" + re.escape(src.suffix) + "$")
    try:  # (a first version's fixed name, then this run's kind)
        found = [src.with_name(f".{src.name}.original"), *src.parent.glob(f".*.original{src.suffix}")]
    except OSError:
        return []
    notes = []
    for q in found:
        m = pattern.search(q.name)
        if m is not None:
            tag = m.group(0)[: len(m.group(0)) - len(src.suffix)]
            if (hidden_temp(src, tag).name != q.name or m.group(1) != _machine_tag()
                    or int(m.group(2)) == os.getpid() or _pid_alive(int(m.group(2)))):
                continue  # another file's, or a run's that is still going (or on another machine)
        elif q.name != f".{src.name}.original" or not q.is_file():
            continue
        if _same_file(str(src), q):
            q.unlink(missing_ok=True)
            continue
        note = (f"{q} is the original of {src} kept by an earlier run that was stopped (kill -9, a power cut) "
                f"before it put it back; it was left as it is: if {src} is that run's re-encode, put {q.name} "
                "back in its place, else delete it")
        log.warning("%s", note)
        notes.append(note)
    return notes


def _refuse_existing(src: str, dst) -> None:
    """:class:`OutputExistsError` for a single input's existing output ``dst`` (no ``overwrite``,
    no ``skip_existing``), saying so where it is the input itself."""
    if _same_file(src, dst):
        raise _input_itself(src, dst)
    raise OutputExistsError(f"output exists: {dst}", hint="pass overwrite=True or choose another dst")


def _input_itself(src: str, dst) -> OutputExistsError:
    """The refusal of an output ``dst`` that is the input ``src``'s file (:func:`_same_file`), in
    API words. ``overwrite`` puts a new file in ``dst``'s place: where ``dst`` is a link to the
    input, symbolic or hard, that replaces the link and the input is kept (the hint said it
    replaced the input)."""
    if os.path.islink(dst):
        target = os.path.realpath(dst)
        what = "the input itself, a link" if os.path.abspath(src) == os.path.abspath(dst) else "a link to the input"
        return OutputExistsError(f"the output is {what}: {dst}",
                                 hint=f"choose another dst; overwrite=True replaces the link with a new file, the "
                                      f"restored copy, and keeps {target} as it is")
    if os.path.realpath(src) != os.path.realpath(dst):
        return OutputExistsError(f"the output is another name of the input (a hard link): {dst}",
                                 hint=f"choose another dst; overwrite=True puts a new file, the restored copy, under "
                                      f"that name and keeps {src} as it is")
    return OutputExistsError(f"the output is the input itself: {dst}",
                             hint="choose another dst to keep the original; overwrite=True replaces it with the "
                                  "restored copy")


def _same_file(src: str, dst) -> bool:
    """Whether ``dst`` names the local file ``src`` itself (same path, a link to it)."""
    if "://" in src or src.startswith("lavfi:") or dst is None or "://" in str(dst):
        return False
    try:
        return Path(src).is_file() and Path(dst).exists() and os.path.samefile(src, dst)
    except OSError:
        return False


def _side_by_side(frame, original: torch.Tensor):
    """A new frame: ``original`` left, ``frame``'s restored picture right; ``frame`` is released."""
    from stream_gpen.io import Frame

    img = torch.cat([original.to(frame.image.device), frame.image], dim=1)
    # transparency is the same on both sides (faces are restored under it, not in it): tiled like
    # the picture, so keyed footage and RGBA photos keep it (the sink said "kept" and wrote opaque)
    alpha = torch.cat([frame.alpha, frame.alpha], dim=1) if frame.alpha is not None else None
    out = Frame(index=frame.index, pts=frame.pts, time_base=frame.time_base, time=frame.time, _image=img,
                rel_path=frame.rel_path, image_info=frame.image_info, alpha=alpha, grey=frame.grey)
    frame.release()
    return out


def _header_frames(path: Path, start: float = 0.0, duration: float | None = None) -> int | None:
    """A video's frame count from its header (frames, else duration x rate), cut to the
    start/duration window; ``None`` if the header does not say. Only for a progress total."""
    import av

    try:
        from stream_gpen.io._meta import ffmpeg_local

        with av.open(ffmpeg_local(path)) as c:
            vs = c.streams.video[0]
            rate = float(vs.average_rate or vs.guessed_rate or 0)
            n = vs.frames or (round(float(vs.duration * vs.time_base) * rate) if vs.duration and rate else 0)
            if not n and c.duration and rate:
                from stream_gpen.io._source import _header_span, _stream_end

                # the video's own end where its header says (Matroska's per-track DURATION tag),
                # not an audio tail after it (a folder's bar ended at 10%)
                span, vend = _header_span(c), _stream_end(vs)
                seconds = c.duration / 1e6
                if span and vend is not None and span[0] < vend < span[1]:
                    seconds = vend - span[0]
                n = round(seconds * rate)
    except (av.error.FFmpegError, IndexError, OSError, ValueError):
        return None
    if not n or not rate:
        return n or None
    n = max(0, n - _frames_in(start, rate, n))
    return min(n, _frames_in(duration, rate, n)) if duration is not None else n


def _display_turn(meta) -> str | None:
    """The display rotation / mirror the source applied to its frames (a phone video's), in words,
    or None: what a stream copy has to keep in the container."""
    extra = getattr(meta, "extra", None) or {}
    deg, mirror = extra.get("applied_rotation") or 0, extra.get("applied_mirror")
    said = [f"a {deg} degree display rotation"] if deg else []
    return " and ".join(said + (["a mirrored display"] if mirror else [])) or None


def _check_live_options(live, latency_budget_s, *, none_ok: bool) -> None:
    """``live`` True/False (or None: the source says, where ``none_ok``) and a latency budget of
    seconds >= 0: live="no" was taken for live (truthy), a text budget failed deep in the stream."""
    if not (isinstance(live, (bool, np.bool_)) or (none_ok and live is None)):
        raise InvalidInputError(f"live must be True or False{' or None' if none_ok else ''}, got {live!r}")
    if (isinstance(latency_budget_s, bool) or not isinstance(latency_budget_s, numbers.Real)
            or not 0 <= latency_budget_s < float("inf")):
        raise InvalidInputError(f"latency_budget_s must be a number of seconds >= 0, got {latency_budget_s!r}")


def _a_type(value) -> str:
    """``None``, ``an int``, ``a list``: a value's type as a message says it ("src is a int",
    "src is a NoneType" before)."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _text_path(p):
    """A path given as bytes (or an ``os.PathLike`` that gives bytes), as text, the way ``os``
    decodes file names; anything else as it is. (``str(b"a.mp4")`` is ``"b'a.mp4'"``: an existing
    file was "not found".)"""
    if isinstance(p, (bytes, bytearray)) or (isinstance(p, os.PathLike) and isinstance(os.fspath(p), bytes)):
        return os.fsdecode(bytes(os.fspath(p)) if isinstance(p, os.PathLike) else bytes(p))
    if isinstance(p, os.PathLike) and not isinstance(p, Path):
        # (an os.DirEntry, or a path class of another library: str() of it is its repr, and an
        # existing file was "not found: <DirEntry 'face.png'>")
        return os.fspath(p)
    return p


def _not_empty(name: str, value) -> None:
    """An empty path (``""``, ``b""``: an unset variable, a blank form field) is refused, as the
    command line refuses it: ``Path("")`` is the working folder, which ``enhance_file("")``
    restored whole into a new folder beside it."""
    if isinstance(value, (str, bytes, bytearray)) and not value.strip():
        raise InvalidInputError(f"{name} is empty (an unset variable?)")


def _video_options_on_a_photo(where: str, *, codec, crf, preset, audio, encoder, chroma) -> None:
    """Video-only options given for a photo (or a folder of photos only: ``where`` says which) are
    checked as for a video (``codec="auto"``: as for an ``.mp4``, H.264, as a dry run), then said
    to be unused, as the command line does."""
    given = [name for name, on in (("codec", codec != "auto"), ("crf", crf is not None), ("preset", preset is not None),
                                   ("audio", audio != "copy"), ("encoder", encoder != "software"),
                                   ("chroma", chroma != "auto")) if on]
    if not given:
        return
    from stream_gpen.io._sink import check_photo_encoder_options

    check_photo_encoder_options(encoder, codec, crf, preset)
    log.warning("%s %s to videos; %s", "/".join(given), "applies" if len(given) == 1 else "apply", where)


def photo_options_unused(src: str, dst, *, quality, image_format, photo: bool, no_photos: bool = False,
                         named: Callable[[str], str] = str) -> str | None:
    """What to say of ``quality`` / ``image_format`` given where they do nothing, or None: a
    folder that holds no photos (``no_photos``: both), a single input's ``quality`` for a video
    (``photo`` False: ``dst`` is no photo's name) or a lossless photo (PNG, TIFF, BMP). A folder of
    photos is not judged (each photo has its own format). ``named``: how an option is named
    (``enhance_file`` says its keywords; the command line, which says it before the model loads
    and then leaves the options out of its run, its flags). ``image_format`` for a single
    video is said by ``enhance_file`` with its value (the command line passes it on)."""
    from stream_gpen.io._image import _FORMATS, QUALITY_FORMATS

    if dst == "null":
        return None
    if no_photos:
        given = [named(k) for k, on in (("quality", quality is not None), ("image_format", bool(image_format))) if on]
        return (f"{'/'.join(given)} {'applies' if len(given) == 1 else 'apply'} to photos; {src} holds no photos"
                if given else None)
    if quality is None or ("://" not in src and Path(src).is_dir()):
        return None
    if not photo:
        return f"{named('quality')} applies to JPEG/WebP/HEIC/AVIF outputs; {src} is written as a video"
    if _FORMATS.get(Path(dst).suffix.lower()) not in QUALITY_FORMATS:
        return f"{named('quality')} applies to JPEG/WebP/HEIC/AVIF outputs; {Path(dst).name} is lossless"
    return None


def _check_flags(**flags) -> None:
    """Yes/no options are ``True`` or ``False`` (numpy's bools too): ``"no"``, ``"False"`` or ``0``
    from a config file, an environment variable or a form are refused, not taken as their truth
    value (``overwrite="no"`` wrote over the existing output)."""
    for name, flag in flags.items():
        if not isinstance(flag, (bool, np.bool_)):
            raise InvalidInputError(f"{name} must be True or False, got {flag!r}")


def _given_path(p, name: str):
    """A path argument of enhance_file/stream: as text (:func:`_text_path`), refused if empty, and
    ``~`` expanded as the model and weights paths are (``"~/clip.mp4"`` was "not found", and an
    output ``"~/out.mp4"`` made a folder named ``~`` in the working folder); a name starting with
    ``~`` that exists as it is stays as it is."""
    if p is None:
        return None
    _not_empty(name, p)
    p = _text_path(p)
    text = os.fspath(p) if isinstance(p, os.PathLike) else p
    if isinstance(text, str) and text.startswith("~") and not os.path.lexists(text):
        expanded = os.path.expanduser(text)
        if expanded != text:
            return type(p)(expanded) if isinstance(p, Path) else expanded
    return p


def _frames_in(seconds: float, rate: float, cap: int) -> int:
    """Frames at ``rate`` whose time falls in the first ``seconds``, at most ``cap`` (``--start
    1e308`` overflows): those before a ``start`` (skipped), or those a ``duration`` keeps from the
    first frame kept. 0.5 s at 25 fps holds 13 (0.00 to 0.48 s): round() made 12, and a
    ``--start 0.13`` skipped 3, not 4; the slack absorbs float noise (as ``_expected_frames``)."""
    x = seconds * rate
    return cap if not x < cap else max(0, math.ceil(x - 1e-3))


def _withdraw_captions_note(summary: RunSummary) -> None:
    """The read's note that the video's closed captions are lost, taken back from ``summary``
    once the input was stream-copied after all (``copy_if_no_faces``): the copied video keeps
    the caption data its pictures carry (the report said they were dropped from an output that
    has them)."""
    from stream_gpen.io._source import CAPTIONS_NOTE

    kept = [f for f in summary.fallbacks if not f.endswith(CAPTIONS_NOTE)]
    if len(kept) < len(summary.fallbacks):
        summary.fallbacks = kept
        log.info("the stream copy keeps the closed captions carried in the video")


def _sink_notes(summary: RunSummary, sink) -> None:
    """The output's notes (streams dropped or transcoded, colour...) and its encoder."""
    for attr in ("fallbacks", "dropped"):
        summary.fallbacks += [str(x) for x in getattr(sink, attr, []) or []]
    _note_encoder(summary, sink)


def _note_encoder(summary: RunSummary, sink) -> None:
    """Record the FFmpeg encoder that wrote the video ("libx264", "hevc_nvenc"...; why
    encoder='auto' chose software is in the sink's fallbacks, already copied) in the summary's
    ``encoder`` field (video sinks only)."""
    enc = getattr(sink, "encoder", None)
    if isinstance(enc, str):
        summary.encoder = enc


def _add_stage(summary: RunSummary, stage: str, seconds: float | None) -> None:
    """``seconds`` (a source's or a sink's own thread's, or None: none) onto ``stage`` of the summary."""
    if seconds is not None:
        summary.stage_seconds[stage] = summary.stage_seconds.get(stage, 0.0) + max(0.0, seconds)


def _add_summary(total: RunSummary, part: RunSummary, root: Path, common: list[str]) -> None:
    """Add one file's run summary into a folder's. ``common``: the enhancer's own fallbacks (the
    same in every part: listed once); the rest are prefixed with the file they came from (a video's),
    except the photos' (``part`` of ``root`` itself), which name their files as a folder of photos
    only says them (an "images: " prefix set a resumed run's report apart from a first run's)."""
    for k in ("frames_in", "frames_out", "frames_dropped", "packets_corrupt", "faces_restored", "frames_with_faces",
              "detector_calls", "detector_probes", "detections_implausible", "faces_parsed"):
        setattr(total, k, getattr(total, k) + getattr(part, k))
    for k, v in part.stage_seconds.items():
        total.stage_seconds[k] = total.stage_seconds.get(k, 0.0) + v
    total.precision = part.precision
    if part.encoder and part.encoder not in total.encoder.split(", "):
        total.encoder = ", ".join(filter(None, (total.encoder, part.encoder)))
    src = Path(part.input)
    name = None if src == root else src.relative_to(root).as_posix()
    for f in part.fallbacks:
        msg = f if f in common or name is None else f"{name}: {f}"
        if msg not in total.fallbacks:
            total.fallbacks.append(msg)
    total.skipped += part.skipped


def _url_file_name(src: str) -> str | None:
    """The file name an http(s)/ftp URL's path ends in (``.../clip.mp4?x=1`` -> ``clip.mp4``), or
    ``None`` when it names none (a live stream, a bare host). A photo served under a name that
    does not say so (``.../portrait``, ``photo.jpg_large``, ``get.php?id=3``: :func:`_served_photo`)
    is named with its format's extension (``portrait.jpg``, ``photo.jpg``, ``get.jpg``). The name
    is made portable (:func:`_portable_name`: ``keynote%2010:30.mp4`` -> ``keynote 10_30.mp4``)."""
    from pathlib import PurePosixPath
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(src)
    if parts.scheme.lower() not in ("http", "https", "ftp"):
        return None
    # (the last segment as sent, then decoded: an encoded slash, ``a%2Fb.mp4``, is no folder)
    name = _portable_name(unquote(PurePosixPath(parts.path).name))
    ext = _served_photo(src, name)
    if ext is not None:
        return (Path(name).stem or "photo") + ext
    return name if Path(name).suffix and Path(name).stem else None


#: what no file name may hold on some system: control characters (NUL: "embedded null byte"),
#: the folder separators, and the characters Windows refuses
_UNPORTABLE = re.compile(r'[\x00-\x1f\x7f/\\<>:"|?*]')
#: names Windows takes for devices, with any extension (``CON.mp4`` is the console)
_WINDOWS_DEVICE = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?", re.IGNORECASE)


def _portable_name(name: str) -> str:
    """A file name taken from elsewhere (a URL's, percent-decoded) that every system's disks
    take: each character in :data:`_UNPORTABLE` is ``_``, trailing dots and spaces (which Windows
    drops) are left out, and a Windows device name gets ``_`` after its stem (``CON.mp4`` ->
    ``CON_.mp4``). The same on every system, so that an output copies anywhere; "" where nothing
    is left (the caller's default name is used then)."""
    name = _UNPORTABLE.sub("_", name).rstrip(". ")
    if _WINDOWS_DEVICE.fullmatch(name):
        stem, dot, rest = name.partition(".")
        name = f"{stem}_{dot}{rest}"
    return name


#: how long a URL's answer to "is it a photo" is kept (seconds): the output's name, the run and
#: the fetch ask it in turn (one request); a URL that did not answer is asked again after this
_SERVED_KEPT_S = 60.0
#: how much of a nameless URL is read to tell a photo (an HEIC's brands lie in its first box)
_SERVED_HEAD = 4096
_served: dict[str, tuple[float, str | None]] = {}
#: extensions that say what a URL serves without asking it: photos, videos, playlists, manifests
_NAMED_MEDIA = (".m3u8", ".m3u", ".mpd", ".ism", ".isml", ".f4m", ".sdp", ".pls")


def _served_photo(url: str, name: str) -> str | None:
    """The photo extension of what an http(s) URL whose file ``name`` says nothing of it (no
    extension, or one that is no photo's, video's or playlist's) serves, by its first bytes
    (:func:`stream_gpen.io._image.photo_signature`, as a photo under another name is told on
    disk), else by its ``Content-Type`` where it sends no bytes; None for any other URL and for
    anything else served (a video, an HLS playlist, a live MJPEG camera's ``multipart`` stream,
    an error). Only the first few KiB are read: a live stream is not followed."""
    import http.client
    import urllib.error
    import urllib.request

    from stream_gpen.io._image import _VIDEO_EXTS, photo_signature
    from stream_gpen.io._source import IMAGE_EXTS

    if not url.lower().startswith(("http://", "https://")):
        return None
    if Path(name).suffix.lower() in IMAGE_EXTS + _VIDEO_EXTS + _NAMED_MEDIA:
        return None  # (the name says it: a photo's is taken by it, a video's opened as a video)
    now = time.monotonic()
    kept = _served.get(url)
    if kept is not None and now - kept[0] < _SERVED_KEPT_S:
        return kept[1]
    ext = None
    try:
        ask = urllib.request.Request(url, headers={"Range": f"bytes=0-{_SERVED_HEAD - 1}"})
        with urllib.request.build_opener().open(ask, timeout=10) as r:
            kind = (r.headers.get_content_type() or "").lower()
            head = b"" if kind.startswith("multipart/") else r.read(_SERVED_HEAD)
        ext = photo_signature(head) if head else {
            "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/bmp": ".bmp",
            "image/tiff": ".tif", "image/heic": ".heic", "image/heif": ".heic", "image/avif": ".avif"}.get(kind)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        # (opened as a video then, which says what is wrong; asked again after _SERVED_KEPT_S)
        log.debug("%s: could not tell whether it is a photo (%s)", url, e)
    if len(_served) > 64:
        _served.clear()
    _served[url] = (now, ext)
    return ext


@contextlib.contextmanager
def fetched(url: str) -> Iterator[Path]:
    """A URL's file downloaded into a temporary folder under its own name (removed after)."""
    import http.client
    import shutil
    import tempfile
    import urllib.error
    import urllib.request

    from stream_gpen.errors import MediaNotFoundError

    tmp = Path(tempfile.mkdtemp(prefix="stream-gpen-url-"))
    try:
        from stream_gpen.io._meta import fit_name

        local = fit_name(tmp / (_url_file_name(url) or "download"))  # (a 300-byte name too)
        try:
            # (a fresh opener: urlopen's is built once a process and keeps the proxies of that moment)
            with urllib.request.build_opener().open(url, timeout=30) as r, open(local, "wb") as f:
                shutil.copyfileobj(r, f)
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
            # (HTTPException: InvalidURL, a proxy's port that is no number, escaped as exit 1)
            import errno

            from stream_gpen._urls import masked, via_proxy, without_passwords
            from stream_gpen.errors import SourceClosedError
            from stream_gpen.io._sink import FULL_ERRNOS

            if isinstance(e, OSError) and e.errno in FULL_ERRNOS | {errno.EFBIG, errno.EROFS}:
                raise  # this machine's disk, not the URL (exit 4, as any file the system refuses)
            reason = getattr(e, "reason", e)
            # no password in the message, nor in its cause (--debug's traceback): a proxy's
            # (https_proxy=http://alice:pw@host, quoted by urllib's errors) or the URL's own
            said = without_passwords(f"cannot fetch {masked(url)}{via_proxy(url)}: {reason}", url)
            cause = e if without_passwords(str(e), url) == str(e) else None
            if (isinstance(e, urllib.error.HTTPError) and e.code >= 500) or isinstance(e, TimeoutError) \
                    or isinstance(reason, TimeoutError):
                # may pass: exit 4, as a video URL that fails so when first opened
                raise SourceClosedError(said, hint="the server did not answer or failed; try again later") from cause
            code = getattr(e, "code", None) if isinstance(e, urllib.error.HTTPError) else None
            raise MediaNotFoundError(
                said,
                hint=("check the URL, and that it is public (not behind a login or an expired link)"
                      if code in (401, 403, 404, 410) else "check the URL, the proxy setting and the network"
                      if via_proxy(url) else "check the URL and the network")) from cause
        yield local
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def is_image_url(src: str) -> bool:
    """An http(s)/ftp URL of a photo (by its file name; one whose name says nothing, by the
    first bytes it serves: :func:`_served_photo`): fetched and restored as an image, not decoded
    as a one-frame video."""
    from stream_gpen.io._source import IMAGE_EXTS

    name = _url_file_name(src)
    return name is not None and Path(name).suffix.lower() in IMAGE_EXTS


def _device_or_stream(src: str) -> bool:
    """A device (``/dev/video0``) or a process's stream (``/dev/stdin``, ``/dev/fd/0``,
    ``/proc/self/fd/0``, a pipe named so): no output can be put beside it. A FIFO in a folder of
    files and a regular file under ``/dev/shm`` are not: their folders take files."""
    import stat

    from stream_gpen.io._sink import STREAM_PATH, kernel_folder

    try:
        mode = os.stat(src).st_mode
    except ValueError:
        return False  # (a NUL in it: the name of no file, nor of a device)
    except OSError:
        mode = 0
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return True
    path = os.path.abspath(src)
    return bool(STREAM_PATH.match(path)) or kernel_folder(os.path.dirname(path))


def default_output(src: str) -> str:
    """``clip.mp4`` -> ``clip_enhanced.mp4``; ``photos/`` -> ``photos_enhanced/``; a URL naming a
    file -> that name with ``_enhanced``, in the working folder (``https://x/y/clip.mp4`` ->
    ``clip_enhanced.mp4``); other URLs, devices, lavfi and a pipe or stdin (``/dev/fd/0``,
    ``/dev/stdin``: :func:`_device_or_stream`) -> ``stream_enhanced.mp4`` in the working folder; a container
    that cannot hold the restored video (``.mpg``/``.vob`` DVD and VHS captures, ``.dv``,
    ``.gif``...: ``io._sink.NO_MODERN_VIDEO``) -> ``NAME_enhanced.mp4``; an unknown or no extension
    -> the whole name + ``_enhanced.mp4`` (``cam.001`` -> ``cam.001_enhanced.mp4``)."""
    from stream_gpen.io._meta import fit_name
    from stream_gpen.io._sink import NO_MODERN_VIDEO

    if "://" in src or src.startswith("lavfi:"):
        name = _url_file_name(src)
        if name is None:
            return "stream_enhanced.mp4"
        src = name  # into the working folder, under the URL's own name
    if _device_or_stream(src):
        # its folder takes no files: `cat clip.mp4 | enhance /dev/fd/0` restored every frame and
        # then failed to create /dev/fd/0_enhanced.mp4 (as root, /dev/stdin_enhanced.mp4 was
        # written into the container's /dev)
        return "stream_enhanced.mp4"
    p = Path(src)
    if p.is_dir():
        if p.name in ("", ".", ".."):  # `enhance .`: named after the folder it is, beside it
            p = p.resolve()
            if not p.name:
                raise InvalidInputError(f"{src} has no name to derive an output folder from; name one as dst")
        return str(fit_name(p.with_name(p.name + "_enhanced"), len("_enhanced"), folder=True))
    from stream_gpen.io._image import _VIDEO_EXTS
    from stream_gpen.io._source import IMAGE_EXTS

    suffix, stem = _photo_suffix(p), p.stem  # (a still GIF: a photo, .png)
    if suffix == p.suffix and p.suffix.lower() in NO_MODERN_VIDEO:
        suffix = ".mp4"
    elif suffix == p.suffix and p.suffix.lower() not in _VIDEO_EXTS + tuple(IMAGE_EXTS):
        # an unknown or no extension: notes.txt was refused for its output's name
        # ("notes_enhanced.txt"), not for what it is. Kept in the name: cam.001 and cam.002 are
        # two files (cam.001_enhanced.mp4, cam.002_enhanced.mp4)
        suffix, stem = ".mp4", p.name
    return str(fit_name(p.with_name(f"{stem}_enhanced{suffix}"), len("_enhanced")))


_SAME_FORMAT = {".jpeg": ".jpg", ".jfif": ".jpg", ".jpe": ".jpg", ".tiff": ".tif", ".heif": ".heic", ".hif": ".heic",
                ".apng": ".png"}


def resolve_output(src: str, dst=None, image_format: str | None = None) -> str:
    """The file a single input is written to (a folder input's output folder as it is).

    * ``dst`` None: :func:`default_output`; a photo takes ``image_format``'s extension
      (``IMG_1.HEIC`` + ``"jpg"`` -> ``IMG_1_enhanced.jpg``).
    * ``dst`` an existing folder: a video gets its default name there; a photo keeps its own name
      (in ``image_format`` if given), except in its own folder, where that would be the photo
      itself: there it gets its default name (``photo_enhanced.jpg``).
    * ``dst`` a name ending in ``/`` (a folder, by its name) that is no folder:
      :class:`InvalidInputError` (it was taken for a file without an extension).
    * ``dst`` a file name: as it is. With ``image_format`` its extension must agree (else
      :class:`InvalidInputError`: which of the two was meant cannot be told).
    * ``dst`` in a folder that is not there, or under a file (``photo.jpg/x.png``):
      :class:`InvalidInputError` (:func:`~stream_gpen.io._sink.check_output_folder`), photos and
      videos alike; a folder input's output folder is made, with the folders above it.
    * ``~`` at the start of ``src`` or ``dst`` is the home folder, as in :meth:`Enhancer.enhance_file`.

    The command line's ``-o`` follows the same rules (``stream-gpen enhance`` calls this).
    """
    from stream_gpen.io._sink import check_output_folder

    # (``~`` expanded as enhance_file does: the folder check read "~/x.jpg" as a folder named "~")
    src, dst = _given_path(src, "src"), _given_path(dst, "dst")
    out = _output_of(str(src), dst, image_format)
    if dst is not None and out != "null" and "://" not in out:
        # before any work: a photo was restored (minutes on a CPU) and then failed to be written
        check_output_folder(out, named=dst, made=out == str(dst) and _is_local_dir(str(src)))
    return out


def _is_local_dir(src: str) -> bool:
    return "://" not in src and not src.startswith("lavfi:") and Path(src).is_dir()


def _output_of(src: str, dst, image_format: str | None) -> str:
    """:func:`resolve_output`'s name, before its folder is checked."""
    from stream_gpen.io._meta import fit_name

    if dst is not None and str(dst) == "null":
        return "null"  # the null sink (``-o /dev/null``), not a file or folder named so
    url = "://" in src or src.startswith("lavfi:")
    if not url and Path(src).is_dir():
        return str(dst) if dst is not None else default_output(src)
    own = Path(_url_file_name(src) or "stream") if url else Path(src)
    photo = _photo_input(src)
    if isinstance(dst, str) and dst.endswith(("/", os.sep)) and not Path(dst).is_dir():
        # a folder by its name, not there: Path() drops the slash, and the name was taken for a
        # file without an extension ("an image input needs an image output ... got out/")
        from stream_gpen.io._sink import check_output_folder

        check_output_folder(Path(dst) / "x", named=dst, made=True)  # (a file by that name: said as such)
        example = "photo_enhanced" + own.suffix.lower() if photo else "clip.mp4"
        raise InvalidInputError(f"output folder does not exist: {dst}",
                                hint=f"create it, or name the output file (e.g. {example})")
    ext = ("." + image_format.lower().lstrip(".")) if image_format and photo else None
    if ext is None and photo and own.suffix.lower() == ".gif" and (dst is None or Path(dst).is_dir()):
        ext = ".png"  # a still GIF's default (no GIF writer); a file name the user gave decides its format
    if dst is None:
        out = Path(default_output(src))
        return str(fit_name(out.with_suffix(ext), len("_enhanced")) if ext else out)
    d = Path(dst)
    if d.is_dir():
        if not photo:
            return str(d / Path(default_output(src)).name)
        name, keep = own.name, 0
        if not url and (_same_place(d, Path(src).parent)
                        or d.resolve() in (Path(src).resolve().parent, Path(src).absolute().parent.resolve())):
            name, keep = Path(default_output(src)).name, len("_enhanced")  # beside the photo, never onto it
        # (a longer extension may pass 255 bytes: ``--image-format webp`` of a 251-character JPEG)
        return str(fit_name(d / (Path(name).stem + ext if ext else name), keep))
    if ext and _SAME_FORMAT.get(d.suffix.lower(), d.suffix.lower()) != _SAME_FORMAT.get(ext, ext):
        raise InvalidInputError(f"the output {dst} is not a {image_format} file, which image_format (--image-format) asks for",
                                hint=f"name the output with .{image_format.lower().lstrip('.')}, or leave out the format")
    return str(dst)


__all__ = ["Enhancer", "EnhancedFrame", "build_restorer", "default_output", "is_image_url", "resolve_output",
           "StreamGpenError"]
