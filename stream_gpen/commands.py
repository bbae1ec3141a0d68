"""The ``enhance`` and ``camera`` sub-commands of ``stream-gpen`` (registered in :mod:`stream_gpen.cli`)."""
from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import re
import sys
import threading
import time
from pathlib import Path

from stream_gpen import _terminal
from stream_gpen.errors import INPUT_HINT, MAX_BATCH_SIZE
from stream_gpen.errors import (KEYWORD_FLAGS, ErrorDetails, InvalidInputError, Interrupted, OutputExistsError,
                                 OutputNotWritableError, StreamGpenError, in_command_line_words)

log = logging.getLogger("stream_gpen.cli")

_MODEL_HELP = (
    "auto (default: GPEN-BFR-512 on CUDA, GPEN-BFR-256 on CPU; downloaded if missing), "
    "gpen-bfr-256|512|1024|2048, classic (offline non-neural enhancer), or a checkpoint path"
)


#: numbers as options are written: ASCII digits, a sign, a point, an exponent (and float's inf/nan,
#: which the callers refuse with their own words). int() and float() also take "1_0" (10) and other
#: scripts' digits ("١" is 1): ``--start 4_9`` was 49 s, not an error.
_INT_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_SECONDS = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_FLOAT_RE = re.compile(rf"[+-]?(?:{_SECONDS}|inf|infinity|nan)", re.ASCII | re.IGNORECASE)
#: ``--start``/``--duration`` and the server's ``start``/``duration``: seconds (``90.5``) or
#: ``[HH:]MM:SS[.ms]`` (``1:30.5``); a leading ``-`` is matched to be refused as negative
_TIME_RE = re.compile(rf"-?(?:{_SECONDS}|(?:[0-9]+:){{1,2}}[0-9]+(?:\.[0-9]+)?)", re.ASCII)


def _number(kind: type, text: str):
    """``kind(text)`` (int or float) for a number written as :data:`_INT_RE` / :data:`_FLOAT_RE`
    say, else ValueError."""
    text = text.strip()
    if not (_INT_RE if kind is int else _FLOAT_RE).fullmatch(text):
        raise ValueError(f"not a number: {text!r}")
    return kind(text)


def _int(text: str) -> int:
    return _number(int, text)


_int.__name__ = "int"  # (argparse's "invalid int value: 'x'")


def _positive_int(text: str) -> int:
    try:
        v = _number(int, text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _in_range(kind: type, lo, hi):
    """An argparse type: ``kind`` (int or float) parsed from the text, within ``[lo, hi]``."""
    noun = "an int" if kind is int else "a number"

    def parse(text: str):
        try:
            v = _number(kind, text)
        except ValueError:
            v = None
        if v is None or not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be {noun} in [{lo}, {hi}], got {text!r}")
        return v

    return parse


def _auto_or(parse):
    """An argparse type: ``auto`` (any case) is the default, ``None`` (README's table and
    ``--codec auto`` say so), anything else read by ``parse`` (``--crf auto`` was "invalid int value")."""

    def parse_or_auto(text: str):
        return None if text.strip().lower() == "auto" else parse(text)

    parse_or_auto.__name__ = getattr(parse, "__name__", "value")  # (argparse: "invalid int value: 'x'")
    return parse_or_auto


_quality = _auto_or(_in_range(int, 1, 100))
_crf = _auto_or(_int)
_preset = _auto_or(str)
_DETECT_EVERY = 5  # --detect-every's default
_smooth_lag = _in_range(int, 0, 64)
_strength = _in_range(float, 0, 1)
_min_score = _in_range(float, 0.01, 0.99)


def _timestamp(text: str) -> float:
    """Seconds from ``90``, ``90.5``, ``1:30`` or ``01:01:30.25`` (as FFmpeg's -ss / -t take them),
    written as :data:`_TIME_RE` says (float() also read ``1_0`` as 10 and ``١`` as 1)."""
    try:
        if not _TIME_RE.fullmatch(text.strip()):
            raise ValueError
        if text.strip().startswith("-"):  # (seconds, said so: not a format error)
            raise argparse.ArgumentTypeError(f"must not be negative (a time from the start), got {text!r}")
        parts = [float(p) for p in text.strip().split(":")]
        if any(p >= 60 for p in parts[1:]):
            raise ValueError
        v = 0.0
        for p in parts:
            v = v * 60 + p
        if v != v or v == float("inf"):
            raise ValueError
        return v
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds or [HH:]MM:SS[.ms], got {text!r}") from None


def _duration(text: str) -> float:
    v = _timestamp(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be longer than 0, got {text!r}")
    return v


def _positive_seconds(text: str) -> float:
    """A positive, finite number of seconds (0, negatives, nan and inf are no time limit)."""
    try:
        v = _number(float, text)
    except ValueError:
        v = None
    if v is None or not 0 < v < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return v


def _picture_by_content(path: str) -> bool:
    """A still JPEG/PNG/WebP/BMP/TIFF or GIF, or a HEIC/AVIF, whatever its name (the header only
    is read): what the source refuses as a photo under another name."""
    from stream_gpen.io._source import _HEIF_BRANDS

    try:
        with open(path, "rb") as f:
            head = f.read(12)
        if head[4:8] == b"ftyp" and head[8:12].decode("latin-1").strip().lower() in _HEIF_BRANDS:
            return True
        from PIL import Image

        with Image.open(path) as im:
            return (im.format in ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO", "GIF")
                    and getattr(im, "n_frames", 1) == 1)
    except Exception:  # noqa: BLE001 - not a picture Pillow knows: the question is answered
        return False


def _is_image_name(path: str) -> bool:
    """A photo's name (or a still GIF's, which is restored as a photo)."""
    from stream_gpen.io._image import still_gif
    from stream_gpen.io._source import IMAGE_EXTS

    return Path(path).suffix.lower() in IMAGE_EXTS or still_gif(path)


def _model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="auto", type=_named, help=_MODEL_HELP)
    g.add_argument("--weights", metavar="PATH", type=_named, help="explicit checkpoint file for --model (overrides the cache)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                   help="auto = fp16 on CUDA; on CPU bf16 where the CPU has bf16 instructions "
                   "(avx512_bf16/amx_bf16) and its bf16 convolutions measure faster (Zen 4: ~2x, ~53 dB from "
                   "fp32; some Intel Xeons: slower), else fp32")
    g.add_argument("--batch-size", type=_in_range(int, 1, MAX_BATCH_SIZE), default=8, metavar="N",
                   help=f"largest face batch, 1-{MAX_BATCH_SIZE}; larger uses the GPU better, holds more frames "
                   "(default 8)")
    g.add_argument("--no-download", action="store_true", help="never download weights")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the model (fuses element-wise ops; compiling takes seconds to minutes "
                   "per batch size). On a quiet CPU: fp32 1.2x eager at batch 4, bf16 no gain (docs/benchmarks.md); on an "
                   "H200 GPEN-512 ran 0.64x the default (203 vs 315 faces/s at batch 16, docs/gpu.md)")
    f = p.add_argument_group("faces")
    f.add_argument("--detect-every", type=_positive_int, default=_DETECT_EVERY,
                   help="run the detector every k frames, track in between (default 5)")
    f.add_argument("--faces", default="all", choices=["all", "largest", "center"], help="which faces to restore (default all); in video the chosen face stays chosen until another "
                   "is 1.3x larger or nearer the centre")
    f.add_argument("--min-face", type=_in_range(float, 0, 100000), default=0.0, metavar="PX",
                   help="ignore faces whose shorter box side is under PX pixels, judged at each detection "
                   "(default 0: keep all); tiny faces gain little and cost as much as big ones")
    f.add_argument("--no-landmark-check", dest="check_landmarks", action="store_false",
                   help="also restore faces found sideways or upside down whose landmarks fit no upright face "
                   "(left untouched by default: their crops are misaligned), as GPEN's own script does")
    f.add_argument("--min-score", type=_min_score, default=0.9, metavar="S",
                   help="restore faces the detector is at least this sure of (0.01-0.99, default 0.9 as GPEN's "
                   "own script; lower ones are mostly profiles, which GPEN restores badly). In video a face "
                   "already restored is kept down to 0.8 so that a turning head does not blink")
    f.add_argument("--max-faces", type=_positive_int, default=None, metavar="N",
                   help="restore at most N faces per frame, the largest, kept as --faces largest keeps its choice "
                   "(default: all; with --faces all); crowds cost per face")
    f.add_argument("--aligned", action="store_true",
                   help="the inputs are aligned face crops already (FFHQ-style, like GFPGAN's/CodeFormer's "
                   "cropped_faces): each whole picture is resized to the model, restored and resized back; "
                   "no detection, no paste mask (serve: the requests' default, which ?aligned=false turns off)")
    f.add_argument("--detector", default="auto", choices=["auto", "resnet50", "mobilenet0.25"],
                   help="RetinaFace backbone (auto: that of a --detector-weights file; else ResNet-50 on CUDA, "
                   "MobileNet-0.25 on CPU)")
    f.add_argument("--detector-weights", metavar="PATH", type=_named,
                   help="explicit RetinaFace weights file for --detector (overrides the cache)")
    f.add_argument("--detect-size", type=_in_range(int, 32, 16384), default=None,
                   help="long side the detector sees (default: video half its long side within 640..1280, "
                   "photos 2560, camera 640 to keep up live; over 640 a 640 pass runs too, for big faces; "
                   "lower = faster, misses small faces)")
    f.add_argument("--smooth-lag", type=_smooth_lag, default=None, metavar="N",
                   help="files only: smooth landmarks with N frames of look-ahead (default 5; 0 = off). "
                   "More = steadier faces, 2N more frames held in memory (N for repeated frames); live sources "
                   "never wait")
    f.add_argument("--bit-depth", default="auto", choices=["auto", "8"],
                   help="auto (default): 10/12-bit video (phone HDR, ProRes...) keeps its depth outside the faces "
                   "and is written 10/12-bit (HEVC by default); 8: decode and write 8-bit")
    f.add_argument("--deinterlace", default="auto", choices=["auto", "off"],
                   help="auto (default): interlaced video (VHS/DV/TV captures) is deinterlaced with bwdif, "
                   "one frame per frame, so faces are whole, not combed; off: frames as decoded, written with the "
                   "source's field order")
    f.add_argument("--mask", default="feather", choices=["feather", "parse"],
                   help="what of each restored face is pasted: feather (default) = the crop with a soft "
                   "square edge; parse = GPEN's own paste-back, a face-parsing net keeps face, hair, ears and "
                   "neck only (background, hats, clothes stay original); 468 GFLOP per face, 1.7x GPEN-512, 27x GPEN-256")
    f.add_argument("--strength", type=_strength, default=None, metavar="S",
                   help="blend of each restored face with the original, 0-1 (default: the model's; 1.0, "
                   "0.8 for gpen-bfr-2048 as in GPEN's run.sh); lower keeps more identity and texture")
    f.add_argument("--parser-weights", metavar="PATH", type=_named,
                   help="explicit ParseNet weights for --mask parse (overrides the cache)")


def _output_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--codec", default="auto", choices=["auto", "h264", "hevc", "av1", "vp9", "prores"],
                   help="video codec (default auto: h264; hevc for 10/12-bit sources; vp9 for a .webm output; "
                   "prores 4444 for a source with transparency into .mov/.mkv); prores = ProRes 422 HQ / 4444 for "
                   "editing (no --crf/--preset)")
    g.add_argument("--crf", type=_crf, default=None, metavar="N",
                   help="quality (lower = better, bigger; h264/hevc 0-51, vp9 0-63, av1 1-63); auto (default): "
                   "the codec's default")
    g.add_argument("--preset", type=_preset, default=None,
                   help="encoder speed preset: h264/hevc ultrafast..veryslow (and placebo), av1 0..13 (higher = "
                   "faster); vp9 and prores take none; faster = bigger file at the same --crf; auto (default): "
                   "the codec's default")
    g.add_argument("--chroma", default="auto", choices=["auto", "420"],
                   help="auto (default): a 4:2:2 / 4:4:4 source keeps its chroma (editors take it; browsers, phones "
                   "and TVs do not play H.264/HEVC 4:2:2 or 4:4:4); 420: written 4:2:0, which every player decodes")
    g.add_argument("--audio", default="copy", choices=["copy", "aac", "none"],
                   help="copy audio packets (default; transcoded only if the container needs it); aac: "
                   "always AAC (a warning where the input has no audio); none: video only (subtitles, data, "
                   "attachments and cover art are left out too)")
    _encoder_option(g)
    g.add_argument("--image-format", default=None, metavar="EXT", type=str.lower,
                   choices=["jpg", "jpeg", "jfif", "jpe", "png", "webp", "tif", "tiff", "bmp", "heic", "heif", "hif",
                            "avif", "apng"],
                   help="write photos in this format: jpg (jpeg, jfif, jpe), png (apng: the same PNG, named .apng), "
                   "webp, tif (tiff), bmp, heic (heif, hif) or avif (e.g. jpg for iPhone HEICs), a folder's every "
                   "photo or one; default: each its own")
    g.add_argument("--quality", type=_quality, default=None, metavar="Q",
                   help="JPEG/WebP/HEIC/AVIF quality 1-100 for image outputs (default auto: a JPEG from a JPEG of "
                        "quality 90 or more keeps the source's own quantisation, so about its quality and size; "
                        "a coarser one is written at 90, which keeps the restored faces' detail; anything else "
                        "95, which makes a low-quality WebP/HEIC/AVIF bigger)")
    g.add_argument("--start", type=_timestamp, default=0.0, metavar="TIME",
                   help="videos: begin at TIME (seconds or [HH:]MM:SS[.ms]); the output starts at 0 with its "
                   "audio, subtitles and chapters cut to match. With --duration, a quick way to try settings")
    g.add_argument("--duration", type=_duration, default=None, metavar="TIME",
                   help="videos: restore only this long a part (from --start)")
    g.add_argument("--compare", action="store_true",
                   help="write input and result side by side (input left, restored right) to judge settings")
    g.add_argument("--copy-if-no-faces", action="store_true",
                   help="when a video has no face at all, stream-copy it instead of re-encoding")


def _encoder_option(g) -> None:
    g.add_argument("--encoder", default="software", choices=["software", "nvenc", "auto"],
                   help="software (default: x264/x265/SVT-AV1/libvpx on the CPU); nvenc = NVIDIA's hardware "
                   "encoder for h264/hevc/av1 (RTX, L4, L40S, A10...; not A100/H100/H200), frees the CPU for "
                   "somewhat bigger files; auto = nvenc where it works here, else software (the summary says why)")


def _video_options_on_a_photo(args, src: str, where: str | None = None) -> None:
    """Video-only options given for a photo (or a folder of photos only: ``where`` says so) are
    checked as for a video, then said to be unused."""
    given = [name for name, on in (("--codec", args.codec != "auto"), ("--crf", args.crf is not None),
                                   ("--preset", args.preset is not None), ("--audio", args.audio != "copy"),
                                   ("--encoder", args.encoder != "software"),
                                   ("--chroma", getattr(args, "chroma", "auto") != "auto"),
                                   # (--copy-if-no-faces: a photo without faces is always copied, where
                                   # its format and orientation allow: docs/reference.md, Images)
                                   # (a photo is decoded at its own depth and detected once)
                                   ("--bit-depth", args.bit_depth != "auto"),
                                   ("--deinterlace", args.deinterlace != "auto"),
                                   # (with --aligned the Enhancer says these two: not twice)
                                   ("--smooth-lag", args.smooth_lag is not None and not getattr(args, "aligned", False)),
                                   ("--detect-every", args.detect_every != _DETECT_EVERY
                                    and not getattr(args, "aligned", False))) if on]
    if not given:
        return
    # (enhance_file would say so again: the run is then asked without them, see _enhance_with)
    args.video_options_said = True
    from stream_gpen.io._sink import check_photo_encoder_options

    check_photo_encoder_options(args.encoder, args.codec, args.crf, args.preset)
    log.warning("%s %s to videos; %s", "/".join(given), "applies" if len(given) == 1 else "apply",
                where or f"{src} is written as a photo")


def _animated_gif(src: str) -> bool:
    """An existing .gif of more than one frame (a video); a still one is a photo."""
    if Path(src).suffix.lower() != ".gif":
        return False
    from stream_gpen.io._image import still_gif

    try:
        return not still_gif(src)
    except Exception:  # noqa: BLE001 - unreadable: left to the run, which says what is wrong
        return True


def _check_folder_encoding(args, src: str, dst: str) -> None:
    """A folder's videos: --codec/--crf/--preset/--encoder checked before the model loads against
    the codec each video will be written with (its container named as the run names it): a bad
    value refused only at the first video skipped every video after all the photos were restored.
    A folder without videos says they are unused, as a photo does."""
    from stream_gpen.api import Enhancer
    from stream_gpen.io._image import folder_media
    from stream_gpen.io._sink import check_encoder_options, resolve_codec

    images, videos, _ = folder_media(Path(src), Path(dst), say=False)  # (the run's own walk says what it finds)
    if not videos:
        if images and (args.start or args.duration is not None):
            # before the model loads (it was refused once the model was built, or downloaded)
            raise InvalidInputError(f"--start/--duration cut videos; {src} holds photos only",
                                    hint="leave out --start and --duration for a folder of photos")
        _video_options_on_a_photo(args, src, f"{src} holds no videos")
        return
    if not images:  # (the other way round, --crf for a folder of photos, was said already)
        _say_photo_options_unused(args, src, dst, photo=False, no_photos=True)
    for ext in sorted({Enhancer._folder_video_ext(q.suffix, args.codec, args.audio).lower() for q in videos}):
        check_encoder_options(args.encoder, resolve_codec(args.codec, "video" + ext), args.crf, args.preset)


def _say_photo_options_unused(args, src: str, dst: str, *, photo: bool, no_photos: bool = False) -> None:
    """--quality (and a folder's --image-format) given where it does nothing (a video, a
    PNG/TIFF/BMP, a folder of videos only) is said to be unused before the model loads, by the
    API's rule and words (:func:`~stream_gpen.api.photo_options_unused`), and then left out of
    the run, which would say it again (see _enhance_with)."""
    from stream_gpen.api import photo_options_unused

    said = photo_options_unused(src, dst, quality=args.quality, image_format=args.image_format, photo=photo,
                                no_photos=no_photos, named=KEYWORD_FLAGS.__getitem__)
    if said:
        log.warning("%s", said)
        args.photo_options_said = ("quality", "image_format") if no_photos else ("quality",)


def _check_face_options(args) -> None:
    """Face options that contradict each other, refused before the model loads."""
    faces, n = getattr(args, "faces", "all"), getattr(args, "max_faces", None)
    if n is not None and faces != "all":
        raise InvalidInputError(f"--max-faces {n} does not combine with --faces {faces}, which restores one face",
                                hint="leave out --faces to restore the largest N faces, or --max-faces for one")


def _check_output_ext(dst: str) -> None:
    """An output name FFmpeg has no container for (``x.xyz``), refused before the model loads
    (FFmpeg says only "Could not determine output format")."""
    import av

    ext = Path(dst).suffix.lower().lstrip(".")
    if "://" in dst or not ext:
        return
    known = set()
    for name in av.formats_available:
        try:
            fmt = av.ContainerFormat(name)
        except (ValueError, av.error.FFmpegError):
            continue
        if fmt.is_output:
            known.update(fmt.extensions)
    if ext not in known:
        raise InvalidInputError(f"no video container is known for the output name {dst} (.{ext})",
                                hint="name a .mp4, .mkv, .mov or .webm (or a photo's .jpg, .png, ...)")


def _check_nvenc_early(args, dst: str) -> None:
    """--encoder nvenc on a machine without NVENC: say so now, not after the model has loaded.
    (The sink checks again with the codec the input resolves to.)"""
    if args.encoder != "nvenc" or _is_image_name(dst) or _is_image_name(args.input):
        return
    from stream_gpen.io._sink import resolve_encoder

    resolve_encoder("nvenc", "vp9" if args.codec == "auto" and dst.lower().endswith(".webm")
                    else "h264" if args.codec == "auto" else args.codec)


def _make_enhancer(args):
    from stream_gpen.api import Enhancer

    return Enhancer(**_enhancer_options(args))


def _enhancer_options(args) -> dict:
    """The Enhancer keywords the command line's model and face options give."""
    detect_size = args.detect_size
    if getattr(args, "aligned", False) and getattr(args, "run", None) is _run_camera and detect_size == _CAMERA_DETECT_SIZE:
        detect_size = None  # (the camera's default, not asked for: aligned crops are not detected, nor warned about)
    return dict(
        model=args.model, device=args.device, precision=args.precision, batch_size=args.batch_size,
        detect_every=args.detect_every, faces=args.faces, min_face=args.min_face, detector=args.detector,
        check_landmarks=getattr(args, "check_landmarks", True),
        max_faces=getattr(args, "max_faces", None), min_score=getattr(args, "min_score", 0.9),
        detect_size=detect_size, weights=args.weights, detector_weights=args.detector_weights, download=not args.no_download,
        progress=not getattr(args, "quiet", False), compile=args.compile,
        smooth_lag=getattr(args, "smooth_lag", None), deinterlace=getattr(args, "deinterlace", "auto"),
        mask=getattr(args, "mask", "feather"), parser_weights=getattr(args, "parser_weights", None),
        strength=getattr(args, "strength", None), high_bit_depth=getattr(args, "bit_depth", "auto") == "auto",
        aligned=getattr(args, "aligned", False),
    )


class _Progress:
    """tqdm bar on a terminal; nothing with --quiet. Piped or logged (stderr not a TTY: a
    container's log, ``2>&1 | tee``, a cron job) a bar's carriage returns would be noise, and
    silence until the summary looked like a hang for an hour of video: a plain line every
    :data:`PIPED_EVERY_S` seconds says how far the run is, how fast it goes and how long is left
    (see :mod:`stream_gpen._terminal`, whose rule a download's progress follows too)."""

    PIPED_EVERY_S = _terminal.PIPED_EVERY_S

    def __init__(self, enabled: bool, desc: str) -> None:
        self.bar = None
        tty = _terminal.draws_bars(sys.stderr)
        self.enabled = enabled and tty
        self.piped = enabled and not tty
        self.desc = desc
        self._first: tuple[float, int] | None = None  # (time, frames done) at the first call
        self._said = 0.0

    def __call__(self, done: int, total: int | None, faces: int) -> None:
        if self.piped:
            self._line(done, total, faces)
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="frame", dynamic_ncols=True, leave=True)
        elif total != self.bar.total:  # (an estimate corrected as the frames came, or past it: unknown)
            self.bar.total = total
        moved = done != self.bar.n
        self.bar.update(done - self.bar.n)
        # a photo's faces restored batch by batch: the count is all that moves, so show it now
        self.bar.set_postfix(faces=faces, refresh=not moved)

    def _line(self, done: int, total: int | None, faces: int) -> None:
        now = time.monotonic()
        if self._first is None:  # (timed from the first frame: the model load is not the run's pace)
            self._first, self._said = (now, done), now
            return
        if now - self._said < self.PIPED_EVERY_S:
            return
        self._said = now
        t0, done0 = self._first
        rate = (done - done0) / max(now - t0, 1e-9)
        part = f"{done}/{total} frames ({100 * done // total}%)" if total and done <= total else f"{done} frames"
        left = ""
        if total and rate > 0 and total > done:
            left = f", about {_duration_words((total - done) / rate)} left"
        log.info("%s: %s, %d faces, %.1f frames/s%s", self.desc, part, faces, rate, left)

    def close(self, finished: bool = False) -> None:
        if self.bar is not None:
            if finished and self.bar.total is not None and self.bar.total != self.bar.n:
                # (the total was an estimate: a Matroska duration with its audio tail, a VFR
                # rate, a folder's unreadable photos) a finished run's bar ends at 100%
                self.bar.total = self.bar.n
                self.bar.refresh()
            self.bar.close()


def _duration_words(seconds: float) -> str:
    """``42 s``, ``7 min``, ``2 h 05 min``: a piped progress line's time left."""
    s = int(round(seconds))
    if s < 90:
        return f"{s} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _check_report(report: str | None, media: list[str], *, overwrite: bool) -> None:
    """``--report FILE`` checked before the run (finding out after an hour of encoding would lose
    the summary): its folder exists; it is not one of the run's ``media`` (input, output) nor a
    file inside them (a folder run's photos); an existing file there is an earlier report (JSON
    with a run summary's counts), unless ``overwrite``."""
    import json

    if not report:
        return
    if Path(report).exists() and not Path(report).is_file() and not Path(report).is_dir():
        return  # /dev/stdout, a named pipe: written as it is (write_json)
    p = Path(report).resolve()
    if not p.parent.is_dir():
        raise InvalidInputError(f"--report folder does not exist: {Path(report).parent}",
                                hint="create it, or name a .json file in an existing folder")
    # (torch-free: this runs when a Ctrl-C stopped torch's import, which importing api ran again)
    from stream_gpen._places import REFUSED_ERRNOS, holds, same_place

    for m in media:
        if not m or "://" in m or m.startswith("lavfi:"):
            continue
        # (by identity where they exist: on a case-insensitive disk ``--report OUT/run.json`` is
        # inside the output folder ``out``, which resolved paths do not say)
        if same_place(m, report) or (os.path.isdir(m) and holds(m, report)):
            raise InvalidInputError(f"--report {report} is the run's own input or output, or inside it; "
                                    "name a .json file elsewhere", hint="e.g. --report run.json")
    if p.is_dir():
        raise InvalidInputError(f"--report {report} is a folder; name a .json file",
                                hint=f"e.g. --report {Path(report) / 'run.json'}")
    import tempfile

    try:  # the folder takes a file (not read-only, not someone else's)
        with tempfile.NamedTemporaryFile(dir=p.parent, prefix=f".{p.name}.", suffix=".probe"):
            pass
    except OSError as e:
        # (a read-only or someone else's folder: exit 4 as the output's own, not 2 as a bad name)
        kind = OutputNotWritableError if e.errno in REFUSED_ERRNOS else InvalidInputError
        err = kind(f"--report {report} cannot be written there: {e.strerror or e}",
                   hint="name a .json file in a writable folder")
        if kind is OutputNotWritableError:
            err.errno = e.errno
        raise err from e
    if p.exists() and not overwrite:
        try:
            old = json.loads(p.read_text(encoding="utf-8"))
            earlier = isinstance(old, dict) and {"frames_in", "frames_out"} <= old.keys()
        except (OSError, UnicodeDecodeError, ValueError):
            earlier = False
        if not earlier:
            raise OutputExistsError(f"--report {report} exists and is not an earlier run's report",
                                    hint="pass --overwrite to replace it, or name another file")


def _camera_null(output: str | None) -> bool:
    """``camera -o null`` (its null output, which writes nothing: it said "wrote null") or the
    null device."""
    return output == "null" or _null_device(output)


def _null_device(output: str | None) -> bool:
    """Whether ``-o`` names the null device (``/dev/null``, ``NUL`` on Windows): a benchmark or a
    dry run that writes nothing. Its frames go to the null sink, as ``camera``'s ``null`` output:
    writing a container through a temporary file renamed over the device replaced it (or refused
    it as an existing output)."""
    if not output or "://" in output:
        return False
    try:
        return output == os.devnull or os.path.samefile(output, os.devnull)
    except OSError:
        return False


def _writes_nothing(src: str, output: str | None) -> bool:
    """:func:`_null_device` for ``enhance``'s ``src``: a folder input needs an output folder
    (refused here: the device refusal's hint offered ``-o /dev/null``)."""
    null = _null_device(output)
    if null and "://" not in src and Path(src).is_dir():
        raise InvalidInputError(f"a folder input needs an output folder: -o {output} (write nothing) takes one file",
                                hint="name an output folder with -o")
    return null


def _in_flags(summary):
    """``summary`` with its error and notes said in the command line's flags (the API's name its
    keywords: :func:`~stream_gpen.errors.in_command_line_words`), for what the command prints and
    its ``--report``."""
    summary.error = in_command_line_words(summary.error)
    summary.fallbacks = [in_command_line_words(f) for f in summary.fallbacks]
    summary.skipped = [in_command_line_words(f) for f in summary.skipped]
    return summary


def _report_unstarted(args: argparse.Namespace, src: str, dst: str | None, exc: BaseException) -> None:
    """``--report`` for a run stopped or failed before it had a summary (while it started up or the model loaded):
    zero counts, ``interrupted`` or ``error``; ``device``, ``precision`` and ``encoder`` None (nothing ran,
    nothing was encoded: they said ``"auto"``, ``""`` and ``""``); a camera's ``stopped_by`` the signal
    (a session's own report says it: it said None)."""
    if not args.report:
        return
    from stream_gpen.summary import RunSummary

    s = RunSummary.before_start(src, dst, str(args.model), exc)
    if s is None:
        return  # (SystemExit, a bug: nothing to say about the run)
    if isinstance(exc, KeyboardInterrupt) and getattr(args, "run", None) is _run_camera:
        from stream_gpen._finishing import stop_signal

        # (stopped_by is camera's: docs/reference.md; no handler yet, in the first moments: a
        # KeyboardInterrupt is Python's own Ctrl-C)
        s.stopped_by = stop_signal() or "Ctrl-C"
    try:
        _in_flags(s).write_json(args.report)
    except OSError as e:  # (the error that stopped the run is the one to say)
        log.warning("--report %s could not be written: %s", args.report, e.strerror or e)
    try:
        exc._reported = True  # (said once: see _run_camera)
    except AttributeError:
        pass


def _report_early(args: argparse.Namespace, media: list[str], src: str, dst: str | None,
                  exc: BaseException) -> None:
    """:func:`_report_unstarted` for a run refused or stopped before its ``--report`` was checked (a
    Ctrl-C or SIGTERM while torch imported, a bad option): written where :func:`_check_report`
    takes it. Whatever goes wrong here, ``exc`` is the one to say, with its exit code (130, 143):
    a Ctrl-C while torch imported ended as an "internal error", exit 1, where reporting it failed."""
    try:
        _check_report(args.report, media, overwrite=args.overwrite)
    except (StreamGpenError, OSError):
        return  # (no report there: the run's own error or stop is said)
    except Exception as e:  # (a bug here: said, then the stop's or the refusal's own exit code)
        log.warning("--report %s was not checked: %s: %s", args.report, type(e).__name__, e)
        return
    try:
        _report_unstarted(args, src, dst, exc)
    except Exception as e:
        log.warning("--report %s could not be written: %s: %s", args.report, type(e).__name__, e)


def _run_enhance(args: argparse.Namespace) -> int:
    checked: list[str] = []  # dst once its --report was checked
    try:
        return _enhance_command(args, checked)
    except (KeyboardInterrupt, InvalidInputError) as exc:
        # (InvalidInputError: an input not found, a --start past the end, an option refused: no
        # run, and the report says why; argparse's own refusals come before any report)
        if args.report and not checked:
            # Ctrl-C (or SIGTERM) in the first seconds, while torch imports and the options are
            # checked: the report says the run was stopped, as once the model loads (an earlier
            # run's report under that name still said it had succeeded)
            _report_early(args, [args.input, args.output or ""], args.input, None, exc)
        raise


def _enhance_command(args: argparse.Namespace, checked: list[str]) -> int:
    from stream_gpen.api import _input_itself, _same_file, resolve_output

    src = args.input
    if args.overwrite and args.skip_existing:
        # (the API's overwrite wins: a user who asked for both may not expect outputs replaced)
        raise InvalidInputError("--overwrite and --skip-existing contradict each other: --overwrite replaces "
                                "existing outputs, --skip-existing leaves them; choose one",
                                hint="--skip-existing resumes a folder run; --overwrite redoes every output")
    _check_face_options(args)
    if src == "-" and not Path(src).exists():  # (a file named "-" is read as one)
        raise InvalidInputError("input '-': standard input is read as /dev/stdin here",
                                hint="cat clip.mp4 | stream-gpen enhance /dev/stdin -o out.mp4 (an MP4 piped in needs "
                                     "its index at the front: -movflags faststart)")
    if "://" not in src and not src.startswith("lavfi:") and not Path(src).exists():
        raise InvalidInputError(f"input not found: {src}", hint=INPUT_HINT)
    # `-o some/folder` for one file: a video gets its default name there, a photo its own (its
    # default name in its own folder), a folder's name not there is refused (resolve_output: the
    # API's dst= follows the same rules); --image-format names a photo's format
    null = _writes_nothing(src, args.output)
    # (the API's "null" output is -o /dev/null here: a user's -o null names a file or folder)
    given = os.path.join(".", args.output) if args.output == "null" else args.output
    if given and not null and "://" not in given:
        _check_name_length(Path(given))
    dst = "null" if null else resolve_output(src, given, args.image_format)
    if not null:
        from stream_gpen.io._sink import check_not_special

        check_not_special(dst)
    if (not args.output and Path(dst).suffix.lower() != Path(src).suffix.lower() and Path(src).is_file()
            and not _is_image_name(src) and not _picture_by_content(src)):
        # GIF, MPEG-PS/DVD (.mpg/.vob), DV...: the container cannot hold the restored video
        # (a photo under another name is refused when it opens: no word of a video output first)
        log.info("%s input is written as %s (name a .mp4/.mkv/.mov/.webm with -o to choose)",
                 f"a {Path(src).suffix}" if Path(src).suffix else "an extensionless", dst)
    if "://" not in src and Path(src).is_dir() and not null and Path(dst).is_file():
        # (said first: "output exists ... pass --overwrite" led to this refusal next)
        raise InvalidInputError(f"the output {dst} is a file; a folder input needs an output folder",
                                hint="name a new or existing folder with -o")
    if (not null and Path(dst).exists() and not args.overwrite and not args.skip_existing
            and not Path(dst).is_dir()):
        if _same_file(src, dst):
            raise _input_itself(src, dst)  # (in API words, said in the command line's)
        raise OutputExistsError(f"output exists: {dst}", hint="pass --overwrite or choose another -o")
    if not null and not (args.skip_existing and Path(dst).is_file()):
        from stream_gpen.io._sink import check_segments

        # an .m3u8/.mpd's segments, written beside it in place (an input among them even with --overwrite)
        check_segments(dst, src, args.overwrite, hint="pass --overwrite or choose another -o")
    _check_report(args.report, [src] if null else [src, dst], overwrite=args.overwrite)
    checked.append(dst)
    if "://" not in src and Path(src).is_dir() and not null and not Path(dst).is_dir():
        from stream_gpen.io._image import _VIDEO_EXTS
        from stream_gpen.io._source import IMAGE_EXTS

        if Path(dst).suffix.lower() in _VIDEO_EXTS + IMAGE_EXTS:
            # (it silently made a folder called fold.mp4: a user may have expected one file)
            log.warning("-o %s names a folder here: a folder input is written as a folder of restored files "
                        "(one per input, same names)", args.output)
    try:
        _check_before_the_model(args, src, dst, null)
        enh = _make_enhancer(args)
    except BaseException as exc:
        # stopped (Ctrl-C, SIGTERM) or failed while the model loads: the report says so, else an
        # earlier run's report under that name still said it had succeeded
        _report_unstarted(args, src, None if null else dst, exc)
        raise
    return _enhance_with(enh, args, src, dst, null)


def _check_name_length(out: Path) -> None:
    """An -o whose name (or a folder's in it) is longer than the file system takes (255 bytes on
    most) is refused here, exit 2 with the report written: it failed as "cannot write or read a
    file", exit 4, with the hint of a full or read-only folder, and no report."""
    parent = next((p for p in out.parents if os.path.isdir(p)), Path("."))
    try:
        limit = os.pathconf(parent, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # (Windows: no pathconf; NTFS takes 255 characters)
        limit = 255
    unit = "characters" if os.name == "nt" else "bytes"  # (NTFS counts UTF-16 units, POSIX file systems bytes)
    for name in out.parts:
        n = len(name) if os.name == "nt" else len(os.fsencode(name))
        if limit and limit > 0 and n > limit:
            raise InvalidInputError(f"-o: a file name is longer than the file system allows ({n} {unit}, at most "
                                    f"{limit}): {name[:40]}...", hint="choose a shorter name with -o")


def _check_before_the_model(args: argparse.Namespace, src: str, dst: str, null: bool) -> None:
    from stream_gpen.io._sink import check_chroma

    check_chroma(args.chroma, args.codec)
    photo = _is_image_name(dst) or _is_image_name(src)
    if null and not _is_image_name(src):
        # (a dry run passed --crf 99 that the real run refuses; as the API's dst="null" checks them)
        from stream_gpen.io._sink import check_dry_run_options

        check_dry_run_options(args.encoder, args.codec, args.crf, args.preset)
    elif not (null or photo or Path(dst).is_dir() or Path(src).is_dir()):
        # before the model loads, not mid-run
        from stream_gpen.io._sink import check_encoder_options, check_output_encoding, resolve_codec

        _check_output_ext(dst)
        check_output_encoding(dst, args.codec, args.audio)
        check_encoder_options(args.encoder, resolve_codec(args.codec, dst), args.crf, args.preset)
    elif "://" not in src and Path(src).is_dir():
        _check_folder_encoding(args, src, dst)
    elif photo:
        if ((args.start or args.duration is not None) and _is_image_name(src)
                and not _animated_gif(src)):  # (an animated GIF is a video: it takes a cut)
            # before the model loads (it was refused only once the model was built, or downloaded)
            raise InvalidInputError(f"--start/--duration cut videos; {src} is a photo",
                                    hint="leave out --start and --duration for a photo")
        _video_options_on_a_photo(args, src)
    _say_photo_options_unused(args, src, dst, photo=photo)
    _check_nvenc_early(args, dst)
    _probe_input(src)


def _probe_input(src: str) -> None:
    """A local file's input is opened (a photo's header read) before the model loads, so that one
    that cannot be read says so at once: a text file named .mp4 was refused only after the model's
    weights were loaded, or, offline without them, with the weights' error instead of its own.
    Errors are the run's own (a photo that fails its header is read as the run reads it, for its
    message); pipes, devices, folders and URLs are left to the run."""
    p = Path(src)
    if "://" in src or src.startswith("lavfi:") or not p.is_file():
        return
    if _is_image_name(src) and not _animated_gif(src):
        import warnings

        from PIL import Image

        from stream_gpen.io._image import _heif_plugin, _load

        try:
            _heif_plugin(p)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(p):
                    pass
        except Exception:  # noqa: BLE001 - said as the run says it (or the run says what it is)
            with _logger_at("stream_gpen.io._image", logging.ERROR):
                _load(p, [])
        return
    from stream_gpen.io import open_source

    with _logger_at("stream_gpen.io._source", logging.ERROR), open_source(src, live=False):
        pass


def _enhance_with(enh, args: argparse.Namespace, src: str, dst: str, null: bool) -> int:
    progress = _Progress(not args.quiet, Path(src).name or src)
    try:
        # video-only options said to be unused for a photo (or a folder of photos): not said twice
        video = {} if getattr(args, "video_options_said", False) else dict(
            codec=args.codec, crf=args.crf, preset=args.preset, audio=args.audio, encoder=args.encoder,
            chroma=args.chroma)
        # --quality (a folder of videos' --image-format too) said to be unused: not said twice
        photo = {k: v for k, v in (("quality", args.quality), ("image_format", args.image_format))
                 if k not in getattr(args, "photo_options_said", ())}
        summary = enh.enhance_file(
            src, dst, overwrite=args.overwrite, on_progress=progress,
            copy_if_no_faces=args.copy_if_no_faces and not null, start=args.start, duration=args.duration,
            skip_existing=args.skip_existing, compare=args.compare, **photo, **video,
        )
    except KeyboardInterrupt as exc:  # (Interrupted, or a Ctrl-C before the run had a summary)
        progress.close()
        s = getattr(exc, "summary", None)
        if s is not None and args.report:
            _in_flags(s).write_json(args.report)
        elif s is None:
            _report_unstarted(args, src, None if null else dst, exc)
        raise
    except Exception as exc:
        # a run that started and failed: the report says so (an earlier run's report under that
        # name said it had succeeded). An input that failed to open (a server's 503, exit 4), or
        # is not media, or a part past its end (exit 2) does too, with zero counts.
        progress.close()
        s = getattr(exc, "summary", None)
        if args.report and s is not None:
            try:
                _in_flags(s).write_json(args.report)
            except OSError as e:  # (the error that stopped the run is the one to say)
                log.warning("--report %s could not be written: %s", args.report, e.strerror or e)
        elif s is None:
            _report_unstarted(args, src, None if null else dst, exc)
        raise
    progress.close(finished=True)
    if not args.quiet:
        print(_in_flags(summary).format(), file=sys.stderr)
        # left as it was: a file whose output existed, or a folder run that wrote nothing new
        left = ((not Path(src).is_dir() or not summary.frames_out)
                and any(f.endswith("(skip_existing)") for f in summary.fallbacks))
        if null:
            print(f"wrote nothing (-o {args.output})", file=sys.stderr)
        elif not left and (summary.frames_out or not summary.skipped):  # (the summary's line says it was left as it is)
            print(f"wrote {dst}", file=sys.stderr)
    if args.report:  # (after "wrote": a report that cannot be written does not unmake the output)
        _in_flags(summary).write_json(args.report)
    if summary.skipped:
        from stream_gpen.errors import SomeInputsSkippedError
        from stream_gpen.summary import MISFIT, misfit_hint, misfit_options

        # (a video refused for --start past its end is readable: not counted as unreadable)
        others = [s for s in summary.skipped if MISFIT not in s]
        options = misfit_options(summary.skipped)
        said = [f"{_skipped_count(others)} skipped, unreadable or failed"] if others else []
        done = summary.done_before
        if done:  # (a resumed run: the files done before are not "nothing written")
            said.insert(0, f"{done} file(s) already in {dst} left as they are (--skip-existing)")
        if options:
            said.append(f"{len(summary.skipped) - len(others)} video(s) left out: {' and '.join(options)} "
                        "does not fit them")
        hint = "the warnings above (and --report) list every skipped file"
        raise SomeInputsSkippedError(
            f"{summary.frames_out} frames/images written to {dst}, {', '.join(said)} (first: {summary.skipped[0]})",
            hint=f"{misfit_hint(options)}; {hint}" if options else hint)
    return 0


def _skipped_count(skipped: list[str]) -> str:
    """"2 file(s)", "1 file(s) and 1 folder(s)": a folder's inputs left out, counted as said."""
    folders = sum(": folder left out: " in s for s in skipped)
    files = len(skipped) - folders
    return " and ".join(f"{n} {what}(s)" for n, what in ((files, "file"), (folders, "folder")) if n) or "0 file(s)"


def _named(value: str) -> str:
    """argparse ``type`` of a path: an empty one (an unset shell variable, ``enhance "$IN"``) is
    refused; ``Path("")`` is the working folder, so ``enhance ''`` restored all of it into
    ``../<folder>_enhanced``, and ``-o ''`` / ``--report ''`` were ignored without a word."""
    if not value:  # (a name of spaces only is a file's name: refused only where none is there)
        raise argparse.ArgumentTypeError("is empty (an unset shell variable?)")
    return value


class _Once(argparse.Action):
    """An option given at most once: a second ``-o`` replaced the first without a word (``camera
    -o a.mkv -o null`` recorded nothing, exit 0)."""

    def __call__(self, parser, namespace, values, option_string=None):
        before = getattr(namespace, self.dest, None)
        if before is not None and before != values:
            parser.error(f"{'/'.join(self.option_strings)} given twice ({before}, {values}): one output"
                         + (" (the camera also sends to --stream, --preview, --virtual-camera)"
                            if parser.prog.endswith("camera") else ""))
        setattr(namespace, self.dest, values)


def add_enhance(subparsers, parents=()) -> None:
    p = subparsers.add_parser(
        "enhance", parents=list(parents), help="restore faces in a video, image, folder or stream URL",
        description="Restore faces in INPUT (video file, image, folder of images and videos, URL, or an FFmpeg "
        "lavfi graph such as lavfi:testsrc2=duration=5, read as a file: every frame, not paced). "
        "Audio, subtitles and timestamps are kept (audio the output container cannot hold is "
        "transcoded; text subtitles it cannot hold are converted: mov_text for mp4/mov, SubRip for mkv, "
        "WebVTT for webm; bitmap subtitles it cannot hold are dropped; all of it is reported), and so are "
        "the pixel aspect ratio, colour tags, container tags (date, location, camera), chapters, timecode "
        "and attachments, and a photo's ICC profile, EXIF, DPI and JPEG subsampling. 10/12-bit and HDR "
        "video keeps its depth outside the faces (--bit-depth). Output defaults to "
        "NAME_enhanced.EXT next to the input (a folder is mirrored into FOLDER_enhanced/, its images "
        "and its videos; unreadable files in it, and videos --start does not fit, are skipped and "
        "listed, exit code 5; 2 where nothing could be restored).",
        epilog="exit codes: 0 ok, 1 internal error, 2 bad input/usage/output exists, 3 weights, "
        "4 decoding/encoding/live source failed, an output or --report that cannot be written (read-only, full, "
        "no permission) or out of memory, 5 folder done but some files skipped "
        "(unreadable, failed, or --start past a video's end), 130 interrupted (143 SIGTERM, 129 SIGHUP), "
        "141 the reader of the output closed the pipe (an error keeps its own code)",
    )
    p.add_argument("input", metavar="INPUT", type=_named)
    p.add_argument("-o", "--output", action=_Once, type=_named, help="output file (its extension picks the container or image "
                   "format) or folder (created for folder inputs; an existing one for single files); "
                   "/dev/null restores and writes nothing (a benchmark; a file named null is -o null.mp4)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave outputs that already exist as they are (folders: resume an interrupted run); "
                   "not with --overwrite")
    p.add_argument("--quiet", action="store_true", help="no progress bar (piped: no progress line every 30 s), no summary, no info lines (warnings and errors still show)")
    p.add_argument("--report", metavar="FILE.json", type=_named, help="write the run summary as JSON")
    _model_options(p)
    _output_options(p)
    p.set_defaults(run=_run_enhance)


# --- camera ------------------------------------------------------------------------------------
def _default_camera() -> str:
    """The first camera on every system: the first one ``camera --list`` shows."""
    if sys.platform.startswith("linux"):
        return "/dev/video0"
    return "0"  # the first AVFoundation / DirectShow camera, resolved by the source


def list_video_devices(root: str = "/") -> list[tuple[str, str]]:
    """``(device, name)`` of the capture devices (see :func:`video_devices`)."""
    return [(dev, name) for dev, name, _ in video_devices(root)]


#: what ``camera --list`` adds to a Linux node's name by what its driver says it is (V4l2Node.kind)
_NODE_KINDS = {"metadata": " (metadata node: not a camera)",
               "multiplanar": " (multi-planar video capture, which FFmpeg's v4l2 input does not read)",
               "other": " (not a video capture node)"}


def video_devices(root: str = "/", *, probe=None) -> list[tuple[str, str, tuple]]:
    """``(device, name, formats)`` of the capture devices: on Linux ``/dev/videoN`` as its driver
    describes it (VIDIOC_QUERYCAP, :func:`stream_gpen.io._capture.probe_v4l2`: the card's name,
    whether the node is a camera, and a camera's formats and sizes, as --input-format and
    --video-size take them); on macOS and Windows the camera's number, which ``camera`` takes as
    its source, as FFmpeg lists them (AVFoundation, DirectShow), without formats. Empty elsewhere.

    A node the driver cannot be asked about (not allowed: the 'video' group; no V4L2 device) is
    named from sysfs instead, where a node that is not its device's first (``index`` above 0) is
    said to be most likely a metadata node, which V4L2 refuses to open as a camera ("not a capture
    device"). ``probe``: probe_v4l2's stand-in for tests."""
    if sys.platform == "darwin":
        from stream_gpen.io._source import avfoundation_cameras

        return [(dev, name, ()) for dev, name in avfoundation_cameras()]
    if sys.platform == "win32":
        from stream_gpen.io._source import dshow_cameras

        return [(str(i), name, ()) for i, name in enumerate(dshow_cameras())]
    if probe is None:
        from stream_gpen.io._capture import probe_v4l2 as probe
    base = Path(root)
    out = []
    for dev in sorted((base / "dev").glob("video*"), key=lambda p: (len(p.name), p.name)):
        node = probe(str(dev))
        name_file = base / "sys/class/video4linux" / dev.name / "name"
        try:
            name = name_file.read_text().strip()
        except OSError:
            name = "?"
        if node is not None:
            out.append((f"/dev/{dev.name}", (node.card or name) + _NODE_KINDS.get(node.kind, ""), node.formats))
            continue
        try:
            index = int((name_file.parent / "index").read_text())
        except (OSError, ValueError):
            index = 0
        if index > 0:
            name += f" (node {index} of this device: most likely its metadata, not a camera)"
        out.append((f"/dev/{dev.name}", name, ()))
    return out


class _Tee:
    """Write each frame to several sinks; all but one get a private copy of the pixels. The frame
    itself (its ring slot) goes to the last sink that is not a stream URL: a stream whose server
    stopped reading holds its frames until it is given up on (FileSink.STREAM_STALL_S), and with
    them ring slots the source needs; where every sink is a stream, each gets a copy. ``timer``:
    the ``encode`` stage's, for the sinks that work in this thread (a window, a virtual camera); a
    file or stream's encoder thread times itself (``encode_seconds``: its ``write`` only queues)."""

    def __init__(self, sinks, *, timer=None):
        self.sinks = sinks
        holders = [s for s in sinks if not getattr(s, "is_url", False)]
        self._holder = holders[-1] if holders else None
        self._timer = timer

    def _write(self, sink, frame) -> None:
        if self._timer is None or getattr(sink, "encode_seconds", None) is not None:
            sink.write(frame)
        else:
            with self._timer("encode"):
                sink.write(frame)

    def write(self, frame) -> None:
        from stream_gpen.io import Frame

        given = False
        try:
            for s in self.sinks:
                if s is self._holder:
                    continue
                hi = frame.hi
                self._write(s, Frame(frame.index, frame.pts, frame.time_base, frame.time, frame.image.clone(),
                                     _hi=hi.clone() if hi is not None else None))
            if self._holder is not None:
                self._write(self._holder, frame)
                given = True
        finally:
            if not given:  # (no sink took it: its slot goes back to the ring)
                frame.release()


def _open_unless_stopped(open_, stop: threading.Event, name: str):
    """``open_()`` (a network source, which may wait up to its 10 s timeout for a sender), or
    None once ``stop`` is set first (q + Enter, noticed within 0.1 s as while running): the open
    is left to end in its own thread, and what it opened then is closed. A Ctrl-C in the meantime
    is raised here as before."""
    lock = threading.Lock()
    box: dict = {}
    done = threading.Event()

    def run() -> None:
        try:
            result = open_()
        except BaseException as e:  # (handed to the caller)
            result, box["error"] = None, e
        with lock:
            if box.get("left"):
                if result is not None:
                    with contextlib.suppress(Exception):
                        result[0].close()
                return
            box["result"] = result
            done.set()

    threading.Thread(target=run, name=f"open:{name}", daemon=True).start()
    try:
        while not done.wait(0.1):
            if stop.is_set():
                with lock:
                    if not done.is_set():
                        box["left"] = True
                        return None
    except BaseException:
        with lock:
            if not done.is_set():
                box["left"] = True
            elif box.get("result") is not None:
                with contextlib.suppress(Exception):
                    box["result"][0].close()
        raise
    if "error" in box:
        raise box["error"]
    return box["result"]


def _stdin_quit_watcher(stop: threading.Event) -> None:
    """Stop when the user types q + Enter on a terminal (the preview window also takes q)."""
    if not sys.stdin or not sys.stdin.isatty():
        return

    def watch():
        for line in sys.stdin:
            if line.strip().lower() == "q":
                stop.set()
                return

    threading.Thread(target=watch, name="stream-gpen-quit", daemon=True).start()


#: x264/x265 preset of a live recording or stream unless one is asked for: the encoder must keep
#: up with the camera on the CPU it shares with the model (a slower preset saves bytes, and a
#: recording that falls behind drops frames)
_LIVE_X26X_PRESET = "veryfast"
#: the ranges' hint (io._sink._CRF_PRESET_HINT) as the camera's defaults are: no --preset is veryfast there
_CAMERA_CRF_PRESET_HINT = ("crf: h264/hevc 0-51, vp9 0-63, av1 1-63; preset: h264/hevc ultrafast..veryslow, av1 0-13, "
                           f"none for vp9/prores; leave out --crf for the codec's default, --preset for {_LIVE_X26X_PRESET} "
                           "(h264/hevc, to keep up live; av1: the encoder's default)")
#: the detector's long side for live sources unless --detect-size says
_CAMERA_DETECT_SIZE = 640


def _refuse_still_source(source: str) -> None:
    """A folder or a photo given to ``camera`` is refused before the model loads: the camera
    records a video, and ``enhance`` is the command for those (a folder was restored as photos into
    a folder named as the recording, its videos left out unsaid; a photo failed after the model
    loaded, asking for an image output that camera refuses)."""
    from stream_gpen.io._source import is_device_number

    if "://" in source or source.startswith(("lavfi:", "/dev/", "video=")) or is_device_number(source):
        return
    path = Path(source)
    if path.is_dir():
        raise InvalidInputError(f"the camera's source is a folder: {source}",
                                hint=f"stream-gpen enhance {source} restores the photos and videos in a folder")
    from stream_gpen.io._image import photo_signature
    from stream_gpen.io._source import IMAGE_EXTS

    head = b""
    try:
        # only a regular file is sniffed: reading a named pipe (or a character device) here would
        # take its first bytes, and closing it ends the writer (EPIPE) and leaves FFmpeg's own
        # open of it waiting for a writer that never comes
        if path.is_file():
            with open(path, "rb") as f:
                head = f.read(4096)
    except OSError:
        pass  # (not readable here: the source's own opening says why)
    if path.suffix.lower() in IMAGE_EXTS or photo_signature(head):
        raise InvalidInputError(f"the camera's source is a photo: {source}",
                                hint=f"stream-gpen enhance {source} restores a photo; camera takes a capture "
                                "device, a stream URL, a lavfi: graph or a video file")


def _camera_codec(codec: str, output: str, source=None) -> str:
    """The codec an output of the camera gets for ``codec`` (``"auto"``: VP9 for a .webm name, HEVC
    for a 10/12-bit source, else H.264; a stream URL is judged by its name only, as the sink does)."""
    from stream_gpen.io._sink import resolve_codec

    return resolve_codec(codec, output, None if "://" in output else source)


def _camera_preset(codec: str, preset: str | None) -> str | None:
    """``preset``, or the live default for ``codec`` (resolved): veryfast for H.264/HEVC, the
    encoder's own default for the others (VP9 takes no preset here; AV1 takes ``--preset 0..13``)."""
    if preset is not None:
        return preset
    return _LIVE_X26X_PRESET if codec in ("h264", "hevc") else None


def _encoded_output(o: str) -> bool:
    """A camera output that is encoded (a file or a stream URL), not a window or a device."""
    return o not in ("preview", "null", "virtualcam")


def _exit_alone(sink, output: str, failures: list):
    """``sink``'s exit for the camera's ExitStack. Once the session has run (no exception in
    flight), a sink that fails to close is noted in ``failures`` instead of passed on: the stack
    would hand its error to the next sink's exit, and a FileSink aborting on it deletes its
    recording (a --stream server that hung up took the local recording with it). An exception in
    flight (a second Ctrl-C, an error while the outputs were being opened) reaches every sink as
    it would through ``enter_context``."""

    def exit_(exc_type, exc, tb):
        if exc_type is not None:
            return sink.__exit__(exc_type, exc, tb)
        try:
            sink.__exit__(None, None, None)
        except (Exception, Interrupted) as e:
            # (Interrupted: a Ctrl-C deferred while this output was finished, written whole: the
            # other outputs are finished too, and it is raised once they are)
            failures.append((output, e))
        return False

    return exit_


class _StatusLine:
    """The camera's ``\r`` status line on stderr, ended before any log line is said (a note from
    the sink or a reconnect warning landed inside it: "faces 12stream-gpen: ..."). While open, it
    ends itself through a filter on the handlers that write to stderr, whatever thread logs.
    Piped or logged (not a TTY) it is a plain info line every :attr:`_Progress.PIPED_EVERY_S`."""

    def __init__(self) -> None:
        self._open = False
        self._lock = threading.Lock()
        self._handlers: list[logging.Handler] = []
        self._said: float | None = None

    def show(self, text: str) -> None:
        if not sys.stderr.isatty():
            # piped or logged: a line each _Progress.PIPED_EVERY_S, not one ever-growing line of \r
            now = time.monotonic()
            if self._said is None or now - self._said >= _Progress.PIPED_EVERY_S:
                self._said = now
                log.info("live: %s", " ".join(text.split()))
            return
        with self._lock:
            print(f"\r{text}", end="", file=sys.stderr, flush=True)
            self._open = True

    def end(self) -> None:
        with self._lock:
            if self._open:
                print(file=sys.stderr, flush=True)
                self._open = False

    def filter(self, record: logging.LogRecord) -> bool:
        self.end()
        return True

    def __enter__(self) -> "_StatusLine":
        for name in ("stream_gpen", ""):
            for h in logging.getLogger(name).handlers:
                if getattr(h, "stream", None) is sys.stderr and h not in self._handlers:
                    h.addFilter(self)
                    self._handlers.append(h)
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handlers:
            h.removeFilter(self)
        self._handlers.clear()
        self.end()


def run_camera(enh, source: str | int, *, outputs: list[str], frames: int | None = None, seconds: float | None = None,
               quiet: bool = False, stop: threading.Event | None = None, overwrite: bool = False,
               latency_budget_s: float = 0.05, codec: str = "auto", crf: int | None = None,
               preset: str | None = None, encoder: str = "software", capture=None):
    """Live loop: low-latency source -> enhancer -> sinks. Returns the run summary.

    ``source``: a source spec, or a capture device's index (an ``int``: no file of that name).
    ``capture``: a capture device's :class:`~stream_gpen.io.CaptureMode` (size, frame rate,
    input format); ``None``: the camera's own. Any other source is refused with it.
    ``codec`` / ``crf`` / ``preset`` / ``encoder`` apply to the file and stream outputs, which are
    live outputs (NVENC low-latency tuning, no B-frames). ``codec="auto"`` picks per output from
    its name (VP9 for .webm, else H.264; HEVC for a 10/12-bit source); ``preset=None`` is
    veryfast for H.264/HEVC (keeps up with the camera; slower presets give smaller files and may
    fall behind) and the encoder's default otherwise. Ctrl-C (a KeyboardInterrupt) ends the
    session like ``stop``: the outputs are finalised under their own names. ``stop``, ``seconds``
    and a closed preview window are noticed within 0.1 s even while no frame comes (a slow or
    stalled source). An error while running (the source gone for good, an output that fails such
    as a --stream server hanging up, the restorer) also finishes the other outputs under their
    own names; it is then raised, saying what was kept, with the summary as its ``summary``."""
    from contextlib import ExitStack

    from stream_gpen.api import _SINK_QUEUE, _add_stage
    from stream_gpen.io import PreviewSink, open_sink
    from stream_gpen.summary import StageTimer

    stop = stop or threading.Event()
    timer = StageTimer()
    summary = enh._summary(input=str(source), output=",".join(outputs))
    arrival: dict[int, float] = {}
    # the last 30 frames' added latency (the status line) and the session's sum (the report's
    # mean): a list of every frame's grew by ~3.5 MB an hour at 30 fps, for a camera left running
    latencies: collections.deque[float] = collections.deque(maxlen=30)
    # the last 30 frames' times out, for the status line's rate: a mean since the start, shown at
    # its first second, said 1.9 fps of a 1 fps camera (2 frames in 1.05 s), or a start's burst rate
    written_at: collections.deque[float] = collections.deque(maxlen=30)
    latency_sum, latency_n = 0.0, 0
    t0 = time.perf_counter()
    last_print = t0
    close_failures: list = []  # (output, error) of outputs that failed to close
    # (before the source opens, whose first frames would be dropped meanwhile; its seconds are
    # the summary's "warmup" stage)
    enh._warm_up_live(timer)

    def open_():
        return enh._open(source, live=True, sink_queue=_SINK_QUEUE, timer=timer, capture=capture)

    opened = _open_unless_stopped(open_, stop, source) if "://" in str(source) else open_()
    if opened is None:
        # (q + Enter while a network source was opening: it waited for the open's 10 s timeout)
        log.warning("stopped while %s was opening: nothing was recorded", source)
        return summary
    src, stage = opened
    status = _StatusLine()
    with src, ExitStack() as stack:
        stack.enter_context(status)  # (last out: after the sinks' closing notes)
        sinks = []
        for o in outputs:
            c = _camera_codec(codec, o, src) if _encoded_output(o) else codec
            sink = open_sink(o, source=src, overwrite=overwrite, codec=c, crf=crf, preset=_camera_preset(c, preset),
                             audio="none", queue_size=_SINK_QUEUE, encoder=encoder, live=True,
                             no_audio_why="a camera records video only",
                             # a recording or stream is for watching: 4:2:0, which every player and
                             # ingest server decodes, whatever a capture card's 4:2:2/4:4:4 source
                             chroma="auto" if c == "prores" else "420").__enter__()
            stack.push(_exit_alone(sink, o, close_failures))
            if getattr(sink, "is_url", False):
                # a --stream that falls behind loses frames, not the session (the recording, the
                # preview and q/--seconds/Ctrl-C go on); one that stops taking any fails after
                # STREAM_STALL_S, the recording kept, as for a server that hung up
                sink.drop_when_behind = True
            sinks.append(sink)
        out = _Tee(sinks, timer=timer)
        stopped_by = None
        failed = None
        received = 0  # frames the pipeline handed on (one may fail to be written)

        # --seconds (and the status line's fps) count from here, the source and the outputs open:
        # opening a network source took 1.3 of a --seconds 3 before
        t_run = time.perf_counter()

        from stream_gpen._finishing import stop_asked, stop_signal

        def stopping() -> bool:
            # (stop_asked: a Ctrl-C or SIGTERM whose KeyboardInterrupt a finalizer swallowed)
            # (a stalled --stream: the run ends as for a stop, and its close raises the error)
            return (stop.is_set() or stop_asked() or (seconds is not None and time.perf_counter() - t_run >= seconds)
                    # (a preview's keys and close button, read here too: the source may send nothing)
                    or any(s.poll() for s in sinks if isinstance(s, PreviewSink))
                    or any(getattr(s, "is_url", False) and s.stalled() for s in sinks))

        # latency counts from the decoder's publishing the frame (time waiting in the ring included)
        restored = enh._frames(src, stage, latency_budget_s=latency_budget_s, stop=stopping, max_frames=frames,
                               on_frame=lambda f: arrival.__setitem__(
                                   f.index, getattr(f, "published", None) or time.perf_counter()))
        try:
            try:
                for frame in restored:
                    received += 1
                    out.write(frame)
                    now = time.perf_counter()
                    lat = now - arrival.pop(frame.index, now)
                    latencies.append(lat)
                    latency_sum, latency_n = latency_sum + lat, latency_n + 1
                    summary.frames_out += 1
                    written_at.append(now)
                    if not quiet and now - last_print >= 1.0:
                        span = written_at[-1] - written_at[0]
                        fps = ((len(written_at) - 1) / span if len(written_at) > 1 and span > 0
                               else summary.frames_out / max(now - t_run, 1e-6))
                        # (faces handed on: a restored batch a stop discards is not in the summary)
                        status.show(f"{fps:6.1f} fps  added latency {1000 * sum(latencies) / len(latencies):6.1f} ms  "
                                    f"faces {stage.faces_out}")
                        last_print = now
                    if stopping() or (frames is not None and summary.frames_out >= frames):
                        break
            except KeyboardInterrupt as exc:
                # Ctrl-C (and SIGTERM/SIGHUP, which the CLI turns into KeyboardInterrupt) is how a
                # live session normally ends, like q: stop reading here, so the sinks below close
                # normally and the recording is finalised under its own name, not as a .partial
                # (which is what a KeyboardInterrupt reaching a file sink means: a cut-short job)
                stopped_by = str(exc) or "Ctrl-C"
            except Exception as exc:
                # The source went away for good (SourceClosedError: a network camera that did not
                # come back after its reconnects), an output failed (a --stream server that hung
                # up) or the restorer did (out of memory an hour in): what was recorded is finished
                # under its own name, as for a stop, and the error is raised once the outputs are
                # closed.
                failed = exc
            finally:
                restored.close()  # the pipeline lets go of its frames before the source closes
        finally:
            enh._finish(summary, stage, src, timer, t0, live_drops=False)
            encoders = []
            for s in sinks:  # e.g. why --encoder auto encoded in software
                summary.fallbacks += [str(x) for x in getattr(s, "fallbacks", []) or [] if str(x) not in summary.fallbacks]
                enc = getattr(s, "encoder", None)
                if isinstance(enc, str) and enc and enc not in encoders:
                    encoders.append(enc)
            summary.encoder = ",".join(encoders)
            for o, s in zip(outputs, sinks):
                n = getattr(s, "frames_not_sent", 0)
                if n:
                    summary.fallbacks.append(f"{n} of the {summary.frames_out} frames were left out of {o}: the "
                                             "stream fell behind (its network or server too slow)")
            # frames taken in and not written (restored in the batch a stop cut short, or the one an
            # output failed on) are dropped like stale ones: frames in = out + dropped
            summary.frames_dropped += stage.frames_discarded + received - summary.frames_out
            summary.frames_in = summary.frames_out + summary.frames_dropped
            if latency_n:
                summary.mean_added_latency = latency_sum / latency_n
            status.end()
            if stopped_by is None and stop_asked():
                stopped_by = "a stop signal"
            if stopped_by:
                log.info("stopped (%s): finishing the outputs", stopped_by)
                # (a signal: the session interrupted, its outputs finished under their own names all
                # the same, exit 0; q, --seconds, --frames and a closed window are its planned ends)
                summary.interrupted = True
                summary.stopped_by = stop_signal() or stopped_by.removesuffix(" received")
    # the outputs' encoder threads, their flushing and finishing included (closed by now)
    for s in sinks:
        _add_stage(summary, "encode", getattr(s, "encode_seconds", None))
    if failed is None and close_failures and not summary.frames_out and all(
            "no frames were written" in str(e) for _, e in close_failures):
        # stopped (q, Ctrl-C, --seconds) before the first frame came: nothing to record, and
        # nothing went wrong (it said "error: no frames were written ...; nothing to save", exit 4)
        for o, _ in close_failures:
            log.warning("stopped before the first frame arrived: nothing was recorded to %s", o)
        close_failures = []
    if failed is None and close_failures:
        failed = close_failures[0][1]  # e.g. the stream's server hung up after the last frame
    if failed is not None:
        lost = {o for o, _ in close_failures}
        # an output that failed mid-run keeps what it had written as NAME.partial.EXT (FileSink.salvage)
        parts = [(s.partial_path, s.frames_kept if s.frames_kept is not None else s.frames_written)
                 for s in sinks if getattr(s, "partial_path", None) is not None]
        kept = [(o, getattr(s, "frames_written", summary.frames_out)) for o, s in zip(outputs, sinks)
                if _encoded_output(o) and "://" not in o and o not in lost
                and getattr(s, "partial_path", None) is None]
        if parts:
            summary.partial_output = str(parts[0][0])
        # a recording that failed holds its .partial's frames, or none (a full disk: it said 56 out
        # of an .mp4 that was deleted, where enhance says 0); out is what the fullest output holds
        nothing = [o for o, s in zip(outputs, sinks) if o in lost and _encoded_output(o) and "://" not in o
                   and getattr(s, "partial_path", None) is None]
        held = [0 if o in nothing else
                s.frames_kept if getattr(s, "partial_path", None) is not None and s.frames_kept is not None else
                getattr(s, "frames_written", summary.frames_out) for o, s in zip(outputs, sinks)]
        out_held = min(summary.frames_out, max(held, default=0))
        summary.frames_dropped += summary.frames_out - out_held
        summary.frames_out = out_held
        lost_words = [f"nothing was saved to {o}" for o in nothing if "nothing was saved" not in str(failed)]
        if (kept and any(n for _, n in kept)) or parts or lost_words:
            # (each file's own count: one written before the output that failed has that frame too)
            note = "; ".join([f"the {n} frames recorded before were kept in {o}" for o, n in kept if n]
                             + [f"the {n} frames written before the error were kept in {p}" for p, n in parts]
                             + lost_words)
            if isinstance(failed, ErrorDetails):  # its one-line message says it (Interrupted's too)
                failed.args = (f"{failed.args[0] if failed.args else failed}; {note}",) + tuple(failed.args[1:])
            else:  # (a foreign error's message is left as it is)
                log.warning("%s: %s", type(failed).__name__, note)
        summary.error = " ".join(f"{type(failed).__name__}: {failed}".split())  # (the report says it failed)
        failed.summary = summary
        raise failed
    return summary


def _check_camera_encoding(args: argparse.Namespace) -> None:
    """--codec/--crf/--preset/--encoder of the recording and the stream checked before the model
    loads (the sinks check again with the source's bit depth, and the container's fit)."""
    from stream_gpen.io._sink import (_CRF_PRESET_HINT, _STREAM_FORMATS, check_encoder_options, check_output_encoding,
                                      resolve_encoder)

    # (these were refused only once the model had loaded and the source had opened: camera18)
    if args.output and "://" not in args.output and not _camera_null(args.output):
        out = Path(args.output)
        # (`-o recdir/`, a folder not made yet: "recdir has no extension")
        if out.is_dir() or args.output.endswith(("/", os.sep, os.altsep or "/")):
            # (the sink's own words, said before the model loads and the source opens)
            raise InvalidInputError(f"output {args.output} is a folder; name a file in it, e.g. {out / 'recording.mp4'}",
                                    hint="the camera records one video: -o FOLDER/NAME.mp4")
        _check_output_ext(args.output)
        from stream_gpen.io._source import IMAGE_EXTS

        if out.suffix.lower() in IMAGE_EXTS:  # (refused only once the source had opened, and the model loaded)
            raise InvalidInputError(f"output {out} is an image name; the camera records a video: use a video "
                                    "extension (.mp4, .mkv, .mov, .webm)",
                                    hint=f"e.g. -o {out.with_suffix('.mp4')}; to restore a photo: "
                                    "stream-gpen enhance PHOTO -o OUT.jpg")
        if not out.suffix:
            raise InvalidInputError(f"output {out} has no extension; name the container, e.g. {out.name}.mp4",
                                    hint="the extension picks the container: .mp4, .mkv, .mov or .webm")
        from stream_gpen.io._sink import check_output_folder

        # (its folder missing, a file on its path, not writable: as enhance says it, not once the
        # model had loaded and the source had opened)
        check_output_folder(out, named=args.output)
    if args.stream:
        scheme = args.stream.split("://", 1)[0].lower() if "://" in args.stream else ""
        if scheme not in _STREAM_FORMATS:  # (the sink's own words, said before the model loads)
            said = f"stream URL scheme {scheme!r} is not one of {tuple(_STREAM_FORMATS)}" if scheme else (
                f"a stream URL is one of {', '.join(s + '://' for s in _STREAM_FORMATS)}")
            raise InvalidInputError(f"--stream {args.stream}: {said}", hint="record a file with -o instead")
    if getattr(args, "virtual_camera", False):
        import importlib.util

        if importlib.util.find_spec("pyvirtualcam") is None:
            raise InvalidInputError("--virtual-camera needs pyvirtualcam, which is not installed",
                                    hint="pip install pyvirtualcam (or pip install -e '.[camera]' in a checkout)")
    for o in (args.output, args.stream):
        if not o:
            continue
        codec = _camera_codec(args.codec, o)  # the source is not open yet: its bit depth is not known
        check_output_encoding(o, codec, "none")  # (the sink says so too, once the source is open)
        if args.encoder == "nvenc":
            resolve_encoder("nvenc", codec)  # no NVENC here (or none for this codec): say so now
        # (auto too: resolved as the sink will, not found out once the model has loaded)
        try:
            check_encoder_options(args.encoder, codec, args.crf, _camera_preset(codec, args.preset))
        except InvalidInputError as e:
            if e.hint == _CRF_PRESET_HINT:  # (its "leave either out for the codec's default": veryfast here)
                e.hint = _CAMERA_CRF_PRESET_HINT
            raise


_DISPLAY_PROBE = "import cv2; cv2.namedWindow('stream-gpen'); cv2.waitKey(1); cv2.destroyAllWindows()"


def _display_problem() -> str | None:
    """Why a preview window cannot open here, or None. On Linux OpenCV's window goes through X11
    (Qt's xcb plugin): with no reachable display Qt aborts the whole process (SIGABRT, no Python
    exception), taking an unfinished recording with it, so a child process tries it first."""
    if not sys.platform.startswith("linux"):
        return None
    if not os.environ.get("DISPLAY"):
        return "no display: DISPLAY is not set" + (" (Wayland without XWayland)" if os.environ.get("WAYLAND_DISPLAY") else "")
    import subprocess

    try:
        r = subprocess.run([sys.executable, "-c", _DISPLAY_PROBE], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the display {os.environ['DISPLAY']} did not answer ({exc.__class__.__name__})"
    if r.returncode != 0:
        lines = [x.strip() for x in (r.stderr or "").splitlines() if x.strip()]
        why = next((x for x in lines if "display" in x.lower()), lines[0] if lines else f"exit {r.returncode}")
        return f"OpenCV cannot open a window on display {os.environ['DISPLAY']}: {why[:160]}"
    return None


def _run_camera(args: argparse.Namespace) -> int:

    try:
        return _camera_command(args)
    except (InvalidInputError, KeyboardInterrupt) as exc:
        # refused before the session (an output name, a missing device, an existing output), or
        # stopped in its first moments (the checks' imports): the report says why, as enhance's
        # does (an earlier run's report said it had succeeded). Once the model is loading,
        # _camera_command writes it itself (exc.summary, or unstarted).
        if isinstance(exc, Interrupted) or getattr(exc, "summary", None) is not None or getattr(args, "_began", False):
            raise  # (a session that ran: its own summary was written, or is being written)
        if args.report and not getattr(exc, "_reported", False) and not getattr(exc, "summary", None):
            _report_early(args, [args.output, args.source], args.source or "", args.output, exc)
        raise


def _capture_mode(args: argparse.Namespace, source: str, first: bool):
    """The camera's --video-size/--framerate/--input-format as a CaptureMode (None: none given),
    checked before the model loads: a bad value, or a mode for a source that is no camera."""
    if args.video_size is None and args.framerate is None and args.input_format is None:
        return None
    from stream_gpen.io._source import CaptureMode, names_a_device

    capture = CaptureMode.parse(size=args.video_size, rate=args.framerate, input_format=args.input_format)
    if not (first or names_a_device(source)):
        kind = "url" if "://" in source else "lavfi" if source.startswith("lavfi:") else "file"
        raise capture.refusal(source, kind)
    return capture


def _camera_command(args: argparse.Namespace) -> int:

    if args.list:
        unused = [flag for flag, value in (("--video-size", args.video_size), ("--framerate", args.framerate),
                                           ("--input-format", args.input_format),
                                           (f"the source {args.source}", args.source)) if value is not None]
        if unused:  # (they were ignored unsaid: the list is the same whatever a run would ask)
            log.warning("--list lists every capture device and the modes it offers; %s %s for a camera run, "
                        "ignored here", " and ".join([", ".join(unused[:-1]), unused[-1]] if len(unused) > 1 else unused),
                        "is" if len(unused) == 1 else "are")
        devices = video_devices()
        for path, name, formats in devices:
            print(f"{path:<14} {name}")
            for f in formats:  # (as --input-format and --video-size take them)
                kind = " (compressed)" if f.compressed else ""
                print(f"{'':<14}   {f.name}{kind}: {' '.join(f.sizes) or 'sizes not listed'}")
        if not devices:
            if sys.platform.startswith("linux"):
                where = "no /dev/video* devices (is the camera plugged in, and are you in the 'video' group?)"
            elif sys.platform == "darwin":
                where = ("no cameras found by AVFoundation (is one connected, and may this terminal use it: "
                         "System Settings > Privacy & Security > Camera?)")
            elif sys.platform == "win32":
                where = ("no cameras found by DirectShow (is one connected, enabled and allowed in Settings > "
                         "Privacy > Camera?); a camera can also be named as DirectShow names it: video=NAME")
            else:
                where = f"listing capture devices is not supported on {sys.platform}"
            print(where, file=sys.stderr)
        return 0
    _check_face_options(args)
    outputs = []
    if args.preview:
        outputs.append("preview")
    if args.output and not _camera_null(args.output) and "://" not in args.output:
        _check_name_length(Path(args.output))  # (as enhance: exit 2 before the model, not 4 mid-run)
    if args.output:
        # -o /dev/null (or camera's own `null`): the null output (a file renamed over the device
        # would replace it); -o preview / virtualcam names a file (they opened those sinks:
        # -o preview without a display aborted Qt, after the model had loaded)
        outputs.append("null" if _camera_null(args.output) else os.path.join(".", args.output)
                       if args.output in ("preview", "virtualcam") else args.output)
    if args.stream:
        outputs.append(args.stream)
    if args.virtual_camera:
        outputs.append("virtualcam")
    if args.preview:
        problem = _display_problem()
        if problem:
            raise InvalidInputError(f"--preview needs a window: {problem}",
                                    hint="record with -o rec.mp4 or send with --stream URL; over SSH, ssh -X "
                                    "forwards a display")
    if not outputs:
        problem = _display_problem()
        outputs = ["null"] if problem else ["preview"]
        if problem:
            log.warning("%s, and no --output/--stream given: frames are processed but not shown", problem)
    given = [name for name, on in (("--codec", args.codec != "auto"), ("--crf", args.crf is not None),
                                   ("--preset", args.preset is not None), ("--encoder", args.encoder != "software"))
             if on]
    if given and not any(_encoded_output(o) for o in outputs):
        log.warning("%s %s to --output/--stream; nothing is encoded here", "/".join(given),
                    "applies" if len(given) == 1 else "apply")
    if args.smooth_lag is not None:  # (live frames are never held back for a look-ahead)
        log.warning("--smooth-lag applies to files; a live source is not held back")
    _check_report(args.report, [args.output, args.source], overwrite=args.overwrite)
    _check_camera_encoding(args)
    from stream_gpen.io._source import is_device_number

    source = args.source or _default_camera()
    # (none named: the first camera, "0" on macOS and Windows, whatever file is named so here)
    first = args.source is None and is_device_number(source, files=False)
    if args.output and not first and Path(source).is_file() and Path(args.output).exists():
        from stream_gpen.api import _same_file

        if _same_file(source, args.output):
            # even with --overwrite: camera keeps the frames it can keep up with, and no sound
            raise OutputExistsError(f"the output is the camera's source itself: {args.output}",
                                    hint="name another -o; to restore a file in place with every frame and its "
                                    "sound, use stream-gpen enhance FILE -o FILE --overwrite")
    if args.output and "://" not in args.output and Path(args.output).is_file() and not args.overwrite:
        # before the model loads (or is downloaded), as enhance says it
        raise OutputExistsError(f"output exists: {args.output}", hint="pass --overwrite or choose another -o")
    if args.output and "://" not in args.output:
        from stream_gpen.io._sink import check_segments

        check_segments(args.output, source, args.overwrite, hint="pass --overwrite or choose another -o")
    if ("://" not in source and not source.startswith(("lavfi:", "/dev/", "video=")) and not is_device_number(source)
            and not Path(source).exists()):
        # (before the model loads, in enhance's words: "example.com/live.m3u8" was a file not found, after it)
        raise InvalidInputError(f"input not found: {source}", hint=INPUT_HINT)
    if not first:
        _refuse_still_source(source)
    # (a number on Linux is /dev/videoN: `camera 7` loaded, or downloaded, the model first)
    node = f"/dev/video{source}" if sys.platform.startswith("linux") and is_device_number(source) else source
    if node.startswith("/dev/") and not Path(node).exists():
        # before the model loads (or is downloaded): the missing camera is the first thing to hear
        found = ", ".join(p for p, _ in list_video_devices()) or "none"
        raise InvalidInputError(f"no such capture device: {node} (devices here: {found})",
                                hint="stream-gpen camera --list names them; or give a lavfi:, file or URL source")
    capture = _capture_mode(args, source, first)
    try:
        enh = _make_enhancer(args)
    except BaseException as exc:  # (as enhance: an earlier report under that name said it succeeded)
        _report_unstarted(args, source, args.output, exc)
        raise
    if enh.paste_mask == "parse" and enh.device.type == "cpu":  # (not with --aligned, which parses nothing)
        log.warning("--mask parse on a CPU costs seconds per face (ParseNet, 468 GFLOP): live output will "
                    "drop most frames; use --mask feather for live work, or a GPU")
    stop = threading.Event()
    _stdin_quit_watcher(stop)
    args._began = True  # (a Ctrl-C from here on is the session's: never reported as a start that did not happen)
    try:
        summary = run_camera(enh, int(source) if first else source, outputs=outputs, frames=args.frames,
                             seconds=args.seconds, quiet=args.quiet, stop=stop, overwrite=args.overwrite,
                             codec=args.codec, crf=args.crf, preset=args.preset, encoder=args.encoder,
                             capture=capture)
    except Interrupted:
        # a second Ctrl-C while the outputs were being finalised: the error says what was kept where
        raise
    except KeyboardInterrupt as exc:
        # before the session started (while the source or the outputs were opening): nothing was
        # recorded. Said as an interrupted start (exit 130, 143 for SIGTERM), with --report, as a
        # stop while the model loads is: it said "stopped", exit 0, and wrote no report
        _report_unstarted(args, source, args.output, exc)
        raise
    except Exception as exc:
        # the session failed once running (the source gone for good, an output, the restorer):
        # run_camera finished what was recorded, and the report says how far it got
        s = getattr(exc, "summary", None)
        if s is not None and args.report:
            _in_flags(s).write_json(args.report)
        elif s is None:  # the source failed to open (a server's 503): said, not an earlier run's success
            _report_unstarted(args, source, args.output, exc)
        raise
    # (an output stopped before its first frame wrote nothing: an older file under that name is not this run's)
    recorded = bool(args.output) and summary.frames_out > 0 and not _camera_null(args.output)
    if args.output and not recorded:  # (stopped before the first frame: nothing was recorded, said above)
        summary.output = None
    if args.report:  # (first: a Ctrl-C while the summary prints leaves the report written)
        _in_flags(summary).write_json(args.report)
    if not args.quiet:
        print(_in_flags(summary).format(), file=sys.stderr)
        if recorded:
            print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _camera_codec_options(p) -> None:
    """--codec/--crf/--preset as ``enhance`` has them, with the camera's live defaults."""
    p.add_argument("--codec", default="auto", choices=["auto", "h264", "hevc", "av1", "vp9", "prores"],
                   help="video codec of --output and --stream (default auto: h264; vp9 for a .webm output; hevc "
                   "for a 10/12-bit source); prores = ProRes 422 HQ for editing (big files; no --crf/--preset)")
    p.add_argument("--crf", type=_crf, default=None, metavar="N",
                   help="quality (lower = better, bigger; h264/hevc 0-51, vp9 0-63, av1 1-63); auto (default): "
                   "the codec's default")
    p.add_argument("--preset", type=_preset, default=None,
                   help="encoder speed preset: h264/hevc ultrafast..veryslow (default auto: veryfast, to keep up with "
                   "the camera), av1 0..13 (higher = faster); vp9 and prores take none; slower = smaller files, "
                   "may fall behind live")


def add_camera(subparsers, parents=()) -> None:
    p = subparsers.add_parser(
        "camera", parents=list(parents), help="live enhancement from a camera or stream",
        description="Live face restoration from a capture device (/dev/videoN on Linux; on macOS and Windows "
        "the camera's number from camera --list, 0 = the first, or on Windows video=NAME), a stream URL, an "
        "FFmpeg lavfi graph (lavfi:testsrc2) or a video file; a lavfi graph or a file is read at its own frame "
        "rate, as a camera delivers (like ffmpeg -re); a pipe or FIFO as it comes, paced like a file once it runs "
        "ahead of the clock (a whole file written into it). Stale frames are dropped when processing falls behind, so "
        "latency stays bounded. Stop with Ctrl-C (or SIGTERM), q + Enter typed on a terminal (a piped or "
        "redirected stdin is not read for it), or q, Esc or the close button of the preview window: the "
        "recording is finished under its own name either way.",
    )
    p.add_argument("source", nargs="?", metavar="DEVICE|URL", type=_named,
                   help=f"default {_default_camera()}, the first camera (camera --list shows them); a number N is "
                   "camera N, unless a file or folder of that name is in the working folder (then read as it)")
    p.add_argument("--preview", action="store_true",
                   help="show a preview window (OpenCV); q, Esc or the window's close button stops the run")
    p.add_argument("-o", "--output", action=_Once, type=_named, help="also record to this file (.mp4, .mkv, .mov, .webm...: its extension "
                   "picks the container, and the codec unless --codec says; its folder must exist and be writable, "
                   "checked before the model loads); null or /dev/null: restore, record nothing (a benchmark)")
    p.add_argument("--stream", metavar="URL", type=_named,
                   help="also send to rtmp://, rtmps://, srt:// (where FFmpeg has SRT), udp://, tcp://, rtp:// or "
                   "rtsp:// (publishing to an RTSP server)")
    p.add_argument("--virtual-camera", action="store_true", help="also send to a virtual camera (pyvirtualcam)")
    p.add_argument("--frames", type=_positive_int, help="stop after N frames")
    p.add_argument("--seconds", type=_positive_seconds, help="stop after S seconds (a positive number)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.add_argument("--quiet", action="store_true", help="no live status line (piped: no status line every 30 s)")
    p.add_argument("--report", metavar="FILE.json", type=_named, help="write the run summary as JSON")
    p.add_argument("--list", action="store_true",
                   help="list the capture devices and exit (Linux: as each node's driver names it, metadata nodes "
                   "marked, and under each camera the formats and sizes it offers, as --input-format and "
                   "--video-size take them)")
    mode = p.add_argument_group("capture mode (capture devices only; default: the camera's own)")
    mode.add_argument("--video-size", metavar="WxH", help="ask the camera for this picture size, e.g. 1280x720")
    mode.add_argument("--framerate", metavar="FPS", help="ask the camera for this frame rate: 30, 29.97 or 30000/1001")
    mode.add_argument("--input-format", metavar="NAME",
                      help="what the camera sends, by FFmpeg's name: mjpeg (a USB webcam's full rate: left in raw "
                      "yuyv422 at 1080p it gives 5-10 fps), h264, or a raw pixel format (yuyv422, nv12; macOS: raw "
                      "only)")
    _camera_codec_options(p)
    _encoder_option(p)
    _model_options(p)
    p.set_defaults(run=_run_camera, detect_size=_CAMERA_DETECT_SIZE)


# --- info ---------------------------------------------------------------------------------------
def _describe_image(p: Path) -> dict:
    """``info`` on a photo: decoded as ``enhance`` decodes it, so the plan says what will
    really be kept (bits, profile, EXIF, DPI, transparency) and what not."""
    from PIL import Image, UnidentifiedImageError

    from stream_gpen._warnings import warnings_of
    from stream_gpen.io._image import (
        _bits_per_sample,
        _heif_plugin,
        _load,
        _orientation,
        icc_describes,
        icc_space,
        stored_size,
    )

    if p.is_file() and p.stat().st_size == 0:  # (as enhance says it, not Pillow's "cannot identify")
        from stream_gpen.errors import EmptyMediaError

        raise EmptyMediaError(f"image is empty (0 bytes): {p}", hint="the file was probably not fully written or copied")
    _heif_plugin(p)
    said: list = []
    try:
        # (Pillow's complaints, a DecompressionBombWarning among them: in the plan below, not as a
        # source line of Pillow's)
        with warnings_of("PIL", "pillow_heif", into=said), Image.open(p) as im:
            from stream_gpen.io._image import tiff_pages

            # (a TIFF's reduced-resolution previews are not pages: enhance neither counts nor restores them;
            # its size as stored: Pillow gives a TIFF's turned by its orientation, size_upright below)
            fmt, size, mode, frames = im.format, list(stored_size(im)), im.mode, len(tiff_pages(im)[0])
            orient = _orientation(im, p)
            bits = (_bits_per_sample(im, p) if fmt in ("PNG", "TIFF")
                    else int(im.info.get("bit_depth", 8) or 8) if fmt == "HEIF" else 8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        from stream_gpen.io._image import unreadable_image

        raise unreadable_image(p, e) from e  # (as enhance says it)
    except Image.DecompressionBombError as e:  # (as enhance says it)
        from stream_gpen.io._image import _BOMB_HINT

        raise InvalidInputError(f"{p} is too large to load safely: {e}", hint=_BOMB_HINT) from e
    notes: list[str] = []
    with _logger_at("stream_gpen.io._image", logging.ERROR):  # (what it would warn of is in the plan below, said once)
        _, alpha, grey, info, hi = _load(p, notes)  # raises the same errors enhance would
    out = {"kind": "image", "path": str(p), "format": fmt, "size": size, "mode": mode, "bits": bits,
           "frames": frames, "exif_orientation": orient, "icc_profile": bool(info.get("icc_profile")),
           "exif": bool(info.get("exif")), "nclx": info.get("nclx_profile"), "alpha": alpha is not None}
    if orient in (5, 6, 7, 8):  # turned a quarter: the photo written is the other way round
        out["size_upright"] = size[::-1]
    # (said as a video's display matrix is; "enhance will  turned upright (EXIF orientation)" read badly)
    plan = [f"turned upright, as its EXIF orientation ({orient}) says, and written upright (orientation 1)"
            ] if orient != 1 else []
    if hi is not None:
        plan.append(f"{bits}-bit: restored and written at {bits if fmt == 'HEIF' else 16} bits "
                    + ("(every page: TIFF output; other formats get 8)" if frames > 1
                       else "(PNG/TIFF/HEIF output; 8-bit formats get 8)"))
    if info.get("deep32"):  # (said by enhance as it writes it: a photo without a face is copied as it is)
        plan.append(f"32-bit {info['deep32']} grey: restored and written at 8 bits (no writer here keeps 32-bit "
                    "samples; copied as it is where no face is found)")
    if fmt == "GIF":
        plan.append("written as PNG by default (a still GIF is a photo; there is no GIF writer here)")
    elif frames > 1 and fmt in ("TIFF", "WEBP", "PNG"):
        plan.append(f"each of its {frames} {'pages' if fmt == 'TIFF' else 'frames'} restored and written back "
                    "into one file (.tif/.webp/.png output; other formats get the first)")
    elif info.get("mpo_pictures"):
        plan.append(f"holds {frames} pictures (MPO: a camera's large preview, a stereo pair, or an HDR gain map that "
                    "could not be read): the main photo is restored and written on its own (copied whole, as it is, "
                    "where no face is found and it is written as JPEG)")
    plan += notes  # what is not kept: 8 bits from a deeper file
    plan += [f"Pillow warns: {m}" for m in dict.fromkeys(str(w.message).strip() for w in said)]
    kept, dropped = [], []
    icc = info.get("icc_profile")
    if icc:
        (kept if icc_describes(icc, grey=grey) else dropped).append(f"ICC profile ({icc_space(icc)})")
    from stream_gpen.io._iptc import iptc_record, kept_resources

    irb, why = kept_resources(info.get("photoshop_irb"), orient)
    kept += [k for k, v in (("EXIF", info.get("exif")), ("DPI", info.get("dpi")), ("transparency", alpha is not None),
                            ("HDR gain map", info.get("gain_map") is not None),
                            ("IPTC", iptc_record(irb))) if v]
    if kept:
        plan.append(", ".join(kept) + " written back where the output format holds them")
    if dropped:
        plan.append(", ".join(dropped) + " dropped: it does not describe the RGB pixels written")
    if why == "damaged":
        plan.append("IPTC / Photoshop image resources (APP13) dropped: they do not parse (damaged)")
    if info.get("stale_tags"):
        plan.append("Photoshop layers / image resources dropped (they hold the unrestored picture)")
    out["plan"] = plan
    return out


#: FFmpeg's field orders (``info --json`` keeps its codes), said in words in ``info``'s text
_FIELD_ORDERS = {"tt": "yes, top field first", "bb": "yes, bottom field first",
                 "tb": "yes, top field coded first, bottom shown first",
                 "bt": "yes, bottom field coded first, top shown first"}


#: ``info FOLDER`` opens at most this many of its videos to tell whether enhance can read them
#: (a few tenths of a second each); the others are checked for being empty only, with a note
_FOLDER_VIDEOS_OPENED = 50


def _folder_unreadable(images: list[Path], videos: list[Path]) -> tuple[list[str], int]:
    """The files of a folder that ``enhance`` will skip as unreadable, each as its run lists it
    (``"PATH: REASON"``), found as it finds them, cheaply: a photo whose first bytes or structure
    show it empty, cut off, not a picture or in a format not read here is loaded as enhance loads
    it (:func:`~stream_gpen.io._image._load`, a whole photo's decode for those only; a JPEG with
    bytes after its end marker reads), a video is opened as enhance opens it (its header; the
    first :data:`_FOLDER_VIDEOS_OPENED` only, the rest checked for being empty). -> (those lines,
    the videos not opened)."""
    from PIL import Image

    from stream_gpen.io import open_source
    from stream_gpen.io._image import _cut_short_in, _heif_plugin, _load
    from stream_gpen.io._unread import unread_error
    from stream_gpen.summary import skipped_entry

    out = []
    for q in images:
        try:
            size = q.stat().st_size
            with open(q, "rb") as f:
                suspect = size == 0 or _cut_short_in(f, size, False) is not None
            if not suspect:
                suspect = unread_error(str(q)) is not None
            if not suspect:
                _heif_plugin(q)
                with Image.open(q):  # (its header only)
                    pass
        except Exception:  # noqa: BLE001 - Pillow's many complaints: the load below says it in enhance's words
            suspect = True
        if suspect:
            try:
                _load(q)
            except InvalidInputError as e:
                out.append(skipped_entry(q, f"{e} ({e.hint})" if getattr(e, "hint", None) else e))
            except Exception as e:  # noqa: BLE001 - as enhance lists it
                out.append(f"{q}: could not be read ({type(e).__name__}: {e})")
    for k, q in enumerate(videos):
        try:
            if k >= _FOLDER_VIDEOS_OPENED:
                if q.stat().st_size == 0:
                    out.append(skipped_entry(q, f"input is empty (0 bytes): {q}"))
                continue
            with open_source(str(q), live=False, autorotate=True):
                pass
        except StreamGpenError as e:
            out.append(skipped_entry(q, e))
        except OSError as e:
            out.append(skipped_entry(q, e))
    return out, max(len(videos) - _FOLDER_VIDEOS_OPENED, 0)


def describe_input(spec: str) -> dict:
    """What ``enhance`` will see in ``spec`` and what it will do with it (no model is loaded)."""
    from stream_gpen.api import default_output, fetched, is_image_url, pixel_aspect
    from stream_gpen.faces._hdr import HdrColour
    from stream_gpen.io import open_source
    from stream_gpen.io._convert import bits_per_component
    from stream_gpen.io._source import clock_steps_back, data_ends_short
    from stream_gpen.io._image import IMAGE_EXTS, folder_media, still_gif
    from stream_gpen.io._sink import _ENCODERS, NVENC_ENCODERS, nvenc_available, resolve_codec

    p = Path(spec)
    if is_image_url(spec):  # a photo URL: described as the photo it is
        with fetched(spec) as local:
            out = describe_input(str(local))
        out["path"] = spec
        return out
    if "://" not in spec and not spec.startswith("lavfi:") and p.is_dir():
        from stream_gpen.io._unread import folder_kinds

        images, videos, others = folder_media(p)
        unread = folder_kinds(others)
        n_unread = sum(len(qs) for qs in unread.values())
        other = len(others) - n_unread
        # (an empty, cut-off or damaged file was counted as a photo or video to restore, and the
        # plan said all were, where enhance skips it and ends with exit code 5)
        broken, unopened = _folder_unreadable(images, videos)
        names = [b.split(": ", 1)[0] for b in broken]
        first = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        readable = len(images) + len(videos) - len(broken)
        return {"kind": "folder", "path": str(p), "images": len(images), "videos": len(videos),
                "other_files": len(others), "unreadable": len(broken), "unreadable_files": broken[:10],
                "plan": [("photos and videos restored into a mirrored folder" if readable or not broken
                          else "nothing restored: no photo or video here can be read (exit code 2)")]
                + ([f"{len(broken)} file(s) that cannot be read skipped ({first}): listed as skipped, exit code 5"
                    if readable else f"{len(broken)} file(s) that cannot be read ({first})"] if broken else [])
                + ([f"{unopened} video(s) after the first {_FOLDER_VIDEOS_OPENED} not opened here (checked for "
                    "being empty only): enhance skips any it cannot read"] if unopened else [])
                + ([f"{n_unread} photo(s) in formats not read here left out ("
                    + ", ".join(f"{len(qs)} {kind}" for kind, qs in unread.items())
                    + "): export or convert them to JPEG, PNG, TIFF or HEIC"] if n_unread else [])
                + ([f"{other} other file(s) left out"] if other else [])}
    if "://" not in spec and (p.suffix.lower() in IMAGE_EXTS or still_gif(p)):
        return _describe_image(p)
    with open_source(spec, live=False if "://" not in spec and not spec.startswith("lavfi:") else None,
                     autorotate=True) as src:
        m = src.metadata
        bits = bits_per_component(m.pix_fmt)
        hdr = HdrColour.for_video(m)
        par = pixel_aspect(m)
        out = {
            "kind": m.kind, "path": spec, "container": m.container, "codec": m.codec,
            "size": [m.width, m.height], "pix_fmt": m.pix_fmt, "bits": bits,
            "frame_rate": float(m.frame_rate) if m.frame_rate else None,
            "duration_s": m.duration_s, "frames_header": m.frame_count_header,
            "rotation_applied": m.extra.get("applied_rotation", 0),
            "mirror_applied": bool(m.extra.get("applied_mirror")),
            "sample_aspect_ratio": str(m.sample_aspect_ratio) if m.sample_aspect_ratio else None,
            "colour": {"matrix": m.color_space, "range": m.color_range, "primaries": m.color_primaries,
                       "transfer": m.color_trc},
            # the file's own field order (the source reports "progressive" once it deinterlaces)
            "interlaced": m.extra.get("deinterlaced_from") or m.interlaced,
            "audio": [{"codec": a.codec, "sample_rate": a.sample_rate, "channels": a.channels,
                       "language": a.language} for a in m.audio],
            "subtitles": [{"codec": s.codec, "language": s.language} for s in m.subtitles],
        }
        avg = m.extra.get("average_rate")
        if avg and m.frame_rate and abs(float(avg) / float(m.frame_rate) - 1) > 0.05:
            # FFmpeg's frame_rate is its guess from the shortest step: a phone's variable-rate
            # clip said "120 fps" and looked like slow motion (its frames keep their own times)
            out["variable_rate"] = (f"{float(avg):.4g} fps on average (frame_rate is the shortest step's; every frame "
                                    "keeps its own time)")
        data = _data_tracks(src)
        if data:
            out["data"] = data
        attachments = _attachments(src)
        if attachments:
            out["attachments"] = attachments
        covers, chapters = _covers_and_chapters(src)
        if covers:
            out["cover_art"] = covers
        if chapters:
            out["chapters"] = chapters
        plan = []
        joined = (m.kind == "file" and bool(set((m.container or "").split(",")) & {"mpegts", "mpeg"})
                  and Path(spec).is_file() and clock_steps_back(spec))
        # (a joined file's header duration is one recording's: its data "ends short" of nothing)
        short = data_ends_short(spec) if m.kind == "file" and not joined else None
        if joined:
            out["clock_jumps_back"] = True
            plan.append(f"its clock jumps back (recordings joined into one file?): duration_s ({m.duration_s:.2f} s) is "
                        "its header's, not the whole; enhance runs each recording on from the end of the one before "
                        "(--start/--duration count on that timeline, a part read from the top)"
                        if m.duration_s else "its clock jumps back (recordings joined into one file?): enhance runs "
                        "each recording on from the end of the one before")
        if short is not None:
            got, probe, want = short
            out["truncated"] = True
            plan.append(("its data ends at about " + f"{got:.2f} s" if got is not None else
                         f"it has no data at {probe:.2f} s") + f" of the {want:.2f} s its header promises (cut off?): "
                        "enhance restores only the part that is there")
        if out["mirror_applied"]:
            plan.append("mirrored left-right, as its display matrix says, and written that way")
        if out["rotation_applied"]:  # (counter-clockwise degrees, as the source turns the frames)
            plan.append(f"turned upright: {turn_words(out['rotation_applied'])}, as its display matrix says, "
                        "and written upright")
        if m.extra.get("deinterlaced_from") or m.interlaced in ("tt", "bb", "tb", "bt"):
            plan.append("deinterlaced with bwdif (--deinterlace off keeps the fields, and their order in the output)")
        if par != 1.0:
            plan.append(f"non-square pixels ({m.sample_aspect_ratio}): faces aligned in display geometry")
        if hdr is not None:
            plan.append(hdr.describe())
            if "mastering_display" in m.extra or "content_light" in m.extra:
                plan.append("HDR10 mastering display / light level metadata: kept (HEVC and AV1 outputs)")
        dv = m.extra.get("dolby_vision")
        if dv:
            from stream_gpen.io._meta import dolby_vision_note

            out["dolby_vision"] = dict(dv)
            plan.append(dolby_vision_note(dv))
        dst = default_output(spec)
        codec = resolve_codec("auto", dst, src)
        if src.high_bit_depth:
            from stream_gpen.io._sink import _video_formats, choose_high_pix_fmt

            # as the sink picks it: FFmpeg's ProRes encoder takes 10-bit input, libx265 12 at most
            # (a 16-bit FFV1 master was said "kept at 16 bits" and written at 12)
            pix = choose_high_pix_fmt(m.pix_fmt, _video_formats(_ENCODERS[codec]))
            kept = bits_per_component(pix) if pix is not None else 8
            plan.append(f"{bits}-bit: kept at {kept} bits, the faces at the model's own precision "
                        "(--bit-depth 8 for 8-bit)" if kept >= bits else
                        f"{bits}-bit: written at {kept} bits ({_ENCODERS[codec]}'s most), the faces at the model's own "
                        "precision (--bit-depth 8 for 8-bit)")
        if not src.high_bit_depth and codec in ("h264", "hevc", "av1") and m.pix_fmt.startswith(
                ("gbr", "rgb", "bgr", "0rgb", "0bgr", "argb", "abgr")):
            plan.append(f"8-bit RGB ({m.pix_fmt}): written as 4:2:0 YUV, which every player decodes")
        kept_chroma = _kept_chroma(codec, m.pix_fmt, bool(src.high_bit_depth))
        if kept_chroma:
            plan.append(f"its {kept_chroma} chroma kept ({codec} {kept_chroma}): editors take it; browsers, phones "
                        "and TVs do not play it (--chroma 420 writes 4:2:0, which every player decodes)")
        out["alpha"] = bool(src.has_alpha)
        padded = _padded_size(codec, m.pix_fmt, bool(src.high_bit_depth), m.width, m.height,
                              alpha=bool(src.has_alpha))
        if padded is not None:
            plan.append(f"the odd frame size {m.width}x{m.height} written as {padded[0]}x{padded[1]} by default: "
                        f"{_ENCODERS[codec]}'s {padded[2]} chroma needs even sides (the last row or column repeated; "
                        "VP9 or AV1 keep the size: -o NAME.webm, or --codec vp9/av1 into .mkv or .mp4)")
        plan.append(f"written as {codec} into {Path(dst).suffix} by default (--codec, -o), "
                    + (_audio_plan(dst, m.audio) if m.audio else "no audio"))
        plan += _data_plan(dst, data)
        plan += _attachment_plan(dst, attachments)
        plan += _covers_chapters_plan(dst, covers, chapters)
        plan += _other_video_plan(src)
        if src.has_alpha:
            plan.append("transparency (alpha channel): kept" if codec in ("prores", "vp9") else
                        "transparency (alpha channel): dropped in this output; -o NAME.mov / .mkv (ProRes 4444) or "
                        ".webm (VP9) keeps it")
        if codec in NVENC_ENCODERS:  # one tiny encoder open, once per process: cheap next to opening the input
            why = nvenc_available(codec)
            out["nvenc"] = "available" if why is None else why
            plan.append(f"--encoder auto would encode with {NVENC_ENCODERS[codec]} (NVENC)" if why is None
                        else f"--encoder auto would encode with {_ENCODERS[codec]} (no usable NVENC: see nvenc)")
        else:
            out["nvenc"] = f"{codec} has no NVENC encoder"
        out["plan"] = plan
        return out


def _software_pix_of(codec: str, pix_fmt: str, high: bool) -> str:
    """The pixel format the default software encoder of ``codec`` writes a ``pix_fmt`` source in
    (FileSink._choose_hi_pix / _choose_pix; ``high``: a >8-bit source kept at its depth)."""
    from stream_gpen.io._sink import _ENCODERS, _software_pix, _video_formats, choose_high_pix_fmt

    enc = _ENCODERS[codec]
    return (choose_high_pix_fmt(pix_fmt, _video_formats(enc)) if high else None) or _software_pix(enc, pix_fmt)


def _kept_chroma(codec: str, pix_fmt: str, high: bool) -> str | None:
    """"4:2:2" / "4:4:4" where the default software encoder of ``codec`` (H.264 / HEVC) keeps a
    source's chroma that players do not decode, else None."""
    from stream_gpen.io._convert import chroma_of

    if codec not in ("h264", "hevc"):
        return None
    c = chroma_of(_software_pix_of(codec, pix_fmt, high))
    return ":".join(c) if c in ("422", "444") else None


def _padded_size(codec: str, pix_fmt: str, high: bool, width: int, height: int, *,
                 alpha: bool = False) -> tuple[int, int, str] | None:
    """``(width, height, chroma)`` the default software encoder of ``codec`` writes an odd-sized
    source at, when it pads it (as ``FileSink._even_size`` does); ``None`` when it keeps the size.
    ``alpha``: the source has transparency (ProRes keeps it as 4:4:4)."""
    from stream_gpen.io._convert import chroma_of
    from stream_gpen.io._sink import _ENCODERS, _even_sides, prores_pix

    enc = _ENCODERS[codec]
    pix = prores_pix(pix_fmt, alpha) if codec == "prores" else _software_pix_of(codec, pix_fmt, high)
    even_h, even_w = _even_sides(enc, pix)
    w, h = width + width % 2 * even_w, height + height % 2 * even_h
    return None if (w, h) == (width, height) else (w, h, ":".join(chroma_of(pix)))


def turn_words(ccw: int) -> str:
    """A display rotation (``rotation_applied``: degrees counter-clockwise, the way the frames are
    turned) in words: a phone's portrait clip (display matrix -90, ffprobe's old ``rotate=90``
    tag) is "90 degrees clockwise"."""
    ccw %= 360
    return {0: "none", 90: "90 degrees counter-clockwise", 180: "180 degrees", 270: "90 degrees clockwise"}.get(
        ccw, f"{ccw} degrees counter-clockwise")


def _data_tracks(src) -> list[dict]:
    """The input's data tracks (telemetry, timecode, chapter text), each with what it is: its
    handler name ("GoPro MET"), and the codec enhance copies it as (``None``: none known)."""
    from stream_gpen.io._sink import _describe, aux_codec
    from stream_gpen.io._tags import carried_otherwise

    container = getattr(src, "_container", None)
    if container is None:
        return []
    streams = {s.index: s for s in container.streams}
    out = []
    for info in src.metadata.data:
        ins = streams.get(info.index)
        if ins is None or info.kind == "attachment":  # (listed apart: _attachments)
            continue
        role = carried_otherwise(ins) or aux_codec(info, ins, container.format.name)
        out.append({"stream": info.index, "name": _describe(ins), "codec": role})
    return out


def _attachments(src) -> list[dict]:
    """The input's Matroska attachments (an ASS track's fonts, cover images): file name and type."""
    from stream_gpen.io._tags import attachment

    container = getattr(src, "_container", None)
    if container is None:
        return []
    out = []
    for s in container.streams:
        att = attachment(s)
        if att is not None:
            out.append({"stream": s.index, "file": att[0], "mimetype": att[1]})
    return out


def _covers_and_chapters(src) -> tuple[list[dict], int]:
    """The input's cover art (stream and codec of each attached picture) and its number of chapters."""
    from stream_gpen.io._tags import is_cover

    container = getattr(src, "_container", None)
    if container is None:
        return [], 0
    covers = [{"stream": s.index, "codec": getattr(s.codec_context, "name", None) or "unknown codec"}
              for s in container.streams if is_cover(s)]
    try:
        chapters = len(container.chapters())
    except (AttributeError, ValueError):
        chapters = 0
    return covers, chapters


def _other_video_plan(src) -> list[str]:
    """The video tracks besides the restored one and its cover art (a second angle), each dropped
    by enhance under every --audio, in the sink's words."""
    from stream_gpen.io._tags import is_cover, other_video_dropped

    container, main = getattr(src, "_container", None), getattr(src, "_vstream", None)
    if container is None:
        return []
    return [other_video_dropped(s.index, getattr(s.codec_context, "name", None) or "unknown codec")
            for s in container.streams
            if s.type == "video" and (main is None or s.index != main.index) and not is_cover(s)]


def _covers_chapters_plan(dst: str, covers: list[dict], chapters: int) -> list[str]:
    """What enhance's default output does with the cover art and chapters, in the sink's words."""
    from stream_gpen.io._tags import chapters_refused, cover_refused

    probe = _probe_format(dst) if covers or chapters else None
    if probe is None:
        return []
    fmt = probe[0]
    plan = [cover_refused(fmt, c["stream"], c["codec"]) or f"cover art (stream #{c['stream']}): kept" for c in covers]
    if chapters:
        plan.append(chapters_refused(fmt, chapters) or f"{chapters} chapter(s): kept")
    return plan


def _attachment_plan(dst: str, attachments: list[dict]) -> list[str]:
    """What enhance's default output does with the attachments, in the sink's words (Matroska
    keeps them, other containers have no place for them)."""
    from stream_gpen.io._tags import attachment_refused

    probe = _probe_format(dst) if attachments else None
    if probe is None:
        return []
    fmt = probe[0]
    if "matroska" in fmt.split(","):
        names = ", ".join(a["file"] for a in attachments)
        return [f"attachment{'s' if len(attachments) > 1 else ''} {names}: kept"]
    return [attachment_refused(fmt, a["file"], a["mimetype"]) for a in attachments]


def _probe_format(dst: str):
    """(muxer name, its supported codecs) of the container ``dst`` names, or ``None``."""
    import tempfile

    import av

    from stream_gpen.io._remux import _format_for

    try:
        with tempfile.TemporaryDirectory() as tmp, \
                av.open(str(Path(tmp) / f"probe{Path(dst).suffix}"), "w", format=_format_for(Path(dst))) as o:
            return o.format.name, o.supported_codecs
    except (av.FFmpegError, ValueError, OSError):
        return None


def _data_plan(dst: str, tracks: list[dict]) -> list[str]:
    """What enhance's default output drops of the data tracks, in the sink's words (timecode and
    chapter tracks are carried as the timecode tag and chapters, not copied)."""
    from stream_gpen.io._sink import can_copy, copy_refusal

    tracks = [t for t in tracks if t["codec"] not in ("timecode", "chapters")]
    probe = _probe_format(dst) if tracks else None
    if probe is None:
        return []
    fmt, supported = probe
    return [f"data stream #{t['stream']} ({t['name']}) dropped: {copy_refusal(fmt, t['codec'], supported)}"
            for t in tracks if not can_copy(fmt, t["codec"], supported)]


def _audio_plan(dst: str, tracks) -> str:
    """What enhance does with the audio by default (``--audio copy``) in ``dst``'s container:
    copied where it takes the codec, else transcoded (a DV's PCM or a DVD's MP2 into .mp4)."""
    from stream_gpen.io._meta import audio_params_unknown
    from stream_gpen.io._sink import _audio_fallback_codec, can_copy, copy_refusal

    probe = _probe_format(dst)
    if probe is None:
        return "audio copied"
    fmt, supported = probe
    def copied(a) -> bool:  # (audio whose rate and channels are not known until it starts: transcoded)
        return can_copy(fmt, a.codec, supported) and not audio_params_unknown(a)

    kept = [a for a in tracks if copied(a)]
    moved = [a for a in tracks if not copied(a)]
    if not moved:
        return "audio copied"
    to = _audio_fallback_codec(fmt).replace("lib", "")
    why = ("its sample rate and channels are not known where the input begins"
           if any(audio_params_unknown(a) for a in moved)
           # (enhance's own words: "is not stream-copied into mp4 here" where only this tool refuses)
           else "; ".join(dict.fromkeys(copy_refusal(fmt, a.codec, supported) for a in moved)))
    return (f"audio {', '.join(sorted({a.codec or 'unknown' for a in moved}))} transcoded to {to} ({why})"
            + (", the rest copied" if kept else ""))


def sample_faces(spec: str, info: dict, *, weights=None, n: int = 8) -> dict:
    """Faces ``enhance`` (with its default options) restores on ``n`` frames spread over a video
    (or in an image): counts per frame and the median shorter box side in pixels. Found as enhance
    finds them: a photo through :meth:`~stream_gpen.pipeline.FaceStage.still_faces` (faces
    looked for turned where they look sideways or upside down), each video sample as a shot's
    first detection (:meth:`~stream_gpen.pipeline.FaceStage.sample_faces`: the picture's turn
    checked). CPU, MobileNet unless weights say otherwise."""
    import numpy as np
    import torch

    from stream_gpen.faces import FaceDetector, FaceTracker
    from stream_gpen.faces._detector import DEFAULT_MIN_SCORE, DETECT_SCORE
    from stream_gpen.io import open_source
    from stream_gpen.pipeline import FaceStage

    from stream_gpen.api import PHOTO_DETECT_SIZE, VIDEO_DETECT_SIZE, pixel_aspect, video_detect_size

    # (info has no --detector: a file given with --detector-weights picks its own backbone)
    det = FaceDetector(device="cpu", weights=weights, long_side=VIDEO_DETECT_SIZE,
                       score_threshold=min(DETECT_SCORE, DEFAULT_MIN_SCORE))  # (as Enhancer builds it)
    # (no restorer: only detection and selection run; the turn a sample finds is kept for the next, as in a video)
    stage = FaceStage(None, det, FaceTracker(min_score=DEFAULT_MIN_SCORE), still_detect_size=PHOTO_DETECT_SIZE)
    pictures = []  # (picture, the long side enhance detects a video frame at (None: a photo's), pixel aspect)
    if info["kind"] == "image":
        from stream_gpen.io._image import load_image

        pictures.append((torch.from_numpy(load_image(Path(spec))[0]), None, 1.0))
    elif info["kind"] != "folder":
        seen = set()  # (a 3-frame clip: the same frames were counted again and again)

        def sample(starts) -> tuple[int, float]:
            """Sample at ``starts``; -> (starts that found no frame, the latest frame time met)."""
            missed, last = 0, 0.0
            for t in starts:
                try:
                    with open_source(spec, autorotate=True, start=t, duration=1.0, live=False) as src:
                        f = next(iter(src), None)
                        if f is None:
                            missed += 1
                            continue
                        last = max(last, float(f.time or 0.0))
                        key = hash(f.image[::8, ::8].numpy().tobytes())  # (a frame held into a later start)
                        if key not in seen:
                            seen.add(key)
                            par = pixel_aspect(src.metadata)
                            pictures.append((f.image.clone(), video_detect_size(src.metadata, par), par))
                        f.release()
                except StreamGpenError:
                    missed += 1
            return missed, last

        dur = info.get("duration_s") or _video_end(spec) or 0.0
        missed, last = sample([dur * (i + 0.5) / n for i in range(n)] if dur else [0.0])
        if missed and last > 0:
            # the container's duration ran on past the video (its sound, 4 s for 1 s of picture):
            # spread again over the video's own time
            pictures.clear()
            seen.clear()
            sample([last * (i + 0.5) / n for i in range(n)])
    counts, sides = [], []
    for pic, size, par in pictures:
        stage.pixel_aspect = par
        # (the stage's "they are detected turned from here" is a run's words: info says it in upright_turned)
        with _logger_at("stream_gpen.pipeline", logging.ERROR):
            if size is None:  # (a photo)
                d = stage.still_faces(pic)
            else:
                stage.video_detect_size = size
                d = stage.sample_faces(pic)
        counts.append(len(d))
        if len(d):
            wh = (d.boxes[:, 2:] - d.boxes[:, :2]).min(dim=1).values
            sides += wh.tolist()
    out = {"frames_sampled": len(pictures), "per_frame": counts,
           "median_face_px": round(float(np.median(sides)), 1) if sides else None,
           # (a video whose faces are upright in its picture turned (torch.rot90 k: counter-clockwise):
           # enhance detects them so and says it)
           "upright_turned": ", ".join(turn_words(90 * k) for k in stage.turns_used) or None}
    if info["kind"] == "folder":
        out["note"] = "--faces looks at one video or photo: give info a file of the folder"
    return out


def _video_end(spec: str, *, limit: int = 200_000) -> float | None:
    """A local file's video end in seconds from its packets, where its header gives no duration (a
    browser's MediaRecorder WebM): ``info --faces`` then looked at the first frame only. None for
    URLs and where it cannot be told within ``limit`` packets (read, not decoded)."""
    import av

    from stream_gpen.io._meta import ffmpeg_local
    from stream_gpen.io._source import main_video_stream

    if "://" in spec or spec.startswith("lavfi:") or not Path(spec).is_file():
        return None
    try:
        with av.open(ffmpeg_local(spec)) as c:
            vs = main_video_stream(c)
            if vs is None:
                return None
            start, end = None, None
            for k, p in enumerate(c.demux(vs)):
                if k >= limit:
                    return None
                if p.pts is not None and p.time_base:
                    t = float(p.pts * p.time_base)
                    start = t if start is None else min(start, t)
                    end = t if end is None else max(end, t)
            return end - start if end is not None and end > start else None
    except (av.FFmpegError, OSError):
        return None


def add_info(subparsers, parents=()) -> None:
    p = subparsers.add_parser(
        "info", parents=list(parents), help="what enhance will see in an input and do with it",
        description="Describe INPUT (video, URL, image or folder) as stream-gpen reads it: streams, size, "
        "frame rate, bit depth, colour (HDR), rotation, pixel aspect, interlacing, audio, subtitles and data "
        "tracks (telemetry, timecode), attachments (fonts), cover art and chapters, and what `enhance` will do "
        "about each; of a folder, its photos and videos and "
        "those enhance will skip as unreadable (empty, cut off, damaged). Loads no model.")
    p.add_argument("input", metavar="INPUT", type=_named)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--faces", action="store_true",
                   help="also run the face detector on 8 frames spread over the video (or on the image) and "
                   "report how many faces enhance restores there, found as it finds them (in a picture turned "
                   "sideways or upside down too), and how big they are (loads the detector only)")
    p.add_argument("--detector-weights", metavar="PATH", type=_named, help="explicit RetinaFace weights for --faces (without --faces: a warning, unused)")
    p.set_defaults(run=_run_info)


@contextlib.contextmanager
def _logger_at(name: str, level: int):
    """The logger ``name`` says nothing below ``level`` meanwhile (a command that reports in its
    own words what a module would note as it works)."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(max(level, old))
    try:
        yield
    finally:
        logger.setLevel(old)


def _run_info(args: argparse.Namespace) -> int:
    import json

    src = args.input
    if "://" not in src and not src.startswith("lavfi:") and not Path(src).exists():
        raise InvalidInputError(f"input not found: {src}", hint=INPUT_HINT)
    if args.detector_weights and not args.faces:  # (it was ignored unsaid)
        log.warning("--detector-weights applies to --faces; no faces are looked for here")
    # the source's notes as it opens and seeks ("deinterlacing with bwdif", "the seek to ... landed
    # past the keyframe") are about a run: info deinterlaces nothing, and its plan says what enhance will do
    with _logger_at("stream_gpen.io._source", logging.WARNING):
        info = describe_input(src)
        if args.faces:
            info["faces"] = sample_faces(src, info, weights=args.detector_weights)
    if args.json:
        from stream_gpen.summary import with_name_bytes

        # (default=str first: a file name that is not UTF-8 is then written as a report writes it)
        print(json.dumps(with_name_bytes(json.loads(json.dumps(info, default=str)), ("path",)), indent=2))
        return 0
    plan = info.pop("plan", [])
    for k, v in info.items():
        if v in (None, [], {}):
            continue
        if k == "rotation_applied":
            v = turn_words(v)  # (the JSON's number is counter-clockwise, as the frames are turned)
        elif isinstance(v, dict):
            v = ", ".join(f"{a} {b}" for a, b in v.items() if b is not None)  # (median_face_px of no faces)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            v = "; ".join(", ".join(f"{a} {b}" for a, b in d.items() if b is not None) for d in v)
        elif k == "interlaced" and v in _FIELD_ORDERS:
            v = _FIELD_ORDERS[v]
        elif isinstance(v, list):
            v = "x".join(str(x) for x in v) if k.startswith("size") else ", ".join(map(str, v))
        print(f"{k:<20} {v}")
    for line in plan:  # (what enhance will do: "enhance will   turned upright" said it ungrammatically)
        print(f"{'plan':<20} {line}")
    return 0
