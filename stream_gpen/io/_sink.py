"""Video sinks: files (atomic, ``.partial`` on Ctrl-C), stream URLs, null, preview, virtual camera.

Encoding runs in the sink's own thread: ``write(frame)`` queues the frame (bounded queue, so a slow
encoder applies back-pressure to the pipeline) and the thread encodes it straight from its ring
slot, muxes the source's audio/subtitle packets up to that frame's time, then releases the slot.
"""
from __future__ import annotations

import errno
import functools
import logging
import math
import os
import queue
import re
import shutil
import sys
import struct
import threading
import time
import uuid
import contextlib
from collections import deque
from contextlib import contextmanager, nullcontext
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from stream_gpen._places import REFUSED_ERRNOS, file_size_limit as _file_size_limit
from stream_gpen.errors import (
    EncodeError,
    HardwareEncoderError,
    Interrupted,
    InvalidInputError,
    OutputExistsError,
    OutputNotWritableError,
    UnsupportedCodecError,
)
from stream_gpen.io._convert import (
    add_alpha,
    alpha_twin,
    bits_per_component,
    chroma_of,
    decode_colorspace,
    decode_range,
    plane_arrays,
    rgb_to_av,
)
from stream_gpen.io._meta import (
    COLOR_PRIMARIES,
    COLOR_TRCS,
    _log_lock,  # (FFmpeg's log level is process-wide: see there)
    audio_params_unknown,
    dolby_vision_note,
    ffmpeg_local,
    hidden_temp,
)
from stream_gpen.io._ring import Frame
from stream_gpen.io._subtitles import SubtitleConverter, is_text_subtitle, text_target
from stream_gpen.io._tags import (
    accepts_attachments,
    attachment,
    attachment_refused,
    carried_otherwise,
    copy_container_tags,
    copy_stream_tags,
    cover_attachment,
    cover_refused,
    is_cover,
    marks_lost,
    other_video_dropped,
    timecode_of,
)

log = logging.getLogger(__name__)

VideoCodec = Literal["auto", "h264", "hevc", "av1", "vp9", "prores"]
AudioMode = Literal["copy", "aac", "none"]
OddSize = Literal["pad", "crop"]
_ENCODERS = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1", "vp9": "libvpx-vp9", "prores": "prores_ks"}
_AUDIO_MODES = ("copy", "aac", "none")
_STREAM_FORMATS = {"rtmp": "flv", "rtmps": "flv", "srt": "mpegts", "udp": "mpegts", "tcp": "mpegts", "rtp": "rtp_mpegts", "rtsp": "rtsp"}
_QUEUE_POLL_S = 0.1
#: stream URL schemes sent through a child process (see stream_gpen.io._relay)
_RELAYED = ("rtmp", "rtmps")
#: live outputs (stream URLs, the camera's recordings) get keyframes at most this far apart (frames
#: at a steady rate; see FileSink._keyframe_due), in the
#: frames' own time: a viewer who joins a stream late waits for its next keyframe (x264's default
#: keyint of 250 frames kept one 10 s at 25 fps, and a live output runs at the restoring rate, so a
#: 1 fps recording had one keyframe in 40 s and could not be seeked in). Forced by time rather than
#: by a frame count (the encoders' ``g``), which a variable rate makes a variable time.
LIVE_KEYFRAME_S = Fraction(2)
#: a stream URL's writer busy this long on one frame (its encoding and sending: a server or viewer
#: that accepted the connection and stopped reading blocks the socket write for good) fails that
#: output ("made no progress"): the run ends as for a server that hung up, instead of waiting on it
#: forever. The thread stuck in the write is abandoned (a daemon), its container never touched again.
STREAM_STALL_S = 5.0
#: ... and while the outputs are finished (a stop, --seconds, the end of the input): a stream's
#: writer is waited for this long without progress, then abandoned the same way
STREAM_CLOSE_WAIT_S = 2.0
_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")

# --- encoder selection: software (libx264/libx265/libsvtav1/libvpx-vp9) or NVIDIA's NVENC -----------
Encoder = Literal["software", "nvenc", "auto"]
ENCODER_MODES = ("software", "nvenc", "auto")
#: NVENC encoders of FFmpeg per codec (VP9 has none: NVIDIA GPUs decode VP9 but never encoded it)
NVENC_ENCODERS = {"h264": "h264_nvenc", "hevc": "hevc_nvenc", "av1": "av1_nvenc"}
_NVENC_LEVELS = ("p1", "p2", "p3", "p4", "p5", "p6", "p7")
#: x264/x265 preset names -> NVENC presets p1 (fastest) .. p7 (slowest, best). ``medium`` is both
#: families' default (p4); the ten x264 names share seven levels, the ends doubled up.
NVENC_PRESETS = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p3",
                 "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7", "placebo": "p7"}
#: ``crf=None`` under NVENC: the software encoder's own default number for the codec (x264 23,
#: x265 28, SVT-AV1 35), so "no crf" means the usual quality on both (not the same bytes: see
#: nvenc_options). NVENC itself would fall back to a 2 Mbit/s target whatever the frame size.
NVENC_DEFAULT_CQ = {"h264": 23, "hevc": 28, "av1": 35}
NVENC_HINT = ("this GPU/driver has no NVENC (data-centre GPUs such as A100/H100/H200 have none) "
              "— use --encoder software (encoder='software')")
#: ... where no NVIDIA driver was found at all (no GPU: a CPU machine, a container without the GPU)
NO_NVIDIA_HINT = ("no NVIDIA GPU/driver was found here: NVENC needs an NVIDIA GPU that has it (GeForce/RTX, L4, "
                  "L40S, A10...; not A100/H100/H200) and its driver — use --encoder software (encoder='software')")


def nvenc_hint(why: str) -> str:
    """The hint of an NVENC that could not be used for the reason ``why`` (:func:`nvenc_available`)."""
    return NO_NVIDIA_HINT if "libcuda" in why.lower() else NVENC_HINT


_PROBE_SIZE = (256, 144)  # width, height of the probe's test frame (NVENC's minimum is ~145x49)


def nvenc_preset(preset: str | None) -> str:
    """The NVENC preset for ``preset``: an x264/x265 name (see :data:`NVENC_PRESETS`), ``p1``..``p7``
    as they are, ``None`` -> ``p4`` (FFmpeg's default). Anything else: :class:`InvalidInputError`."""
    if preset is None:
        return "p4"
    p = str(preset)
    if p in _NVENC_LEVELS:
        return p
    if p in NVENC_PRESETS:
        return NVENC_PRESETS[p]
    raise InvalidInputError(f"preset={preset!r} for encoder='nvenc' is not one of {_NVENC_LEVELS} "
                            f"(p1 fastest .. p7 best) or the x264 names {_X26X_PRESETS}")


#: NVENC level -> the x264/x265 name a software fallback of encoder='auto' uses
_LEVEL_X26X = {1: "ultrafast", 2: "veryfast", 3: "faster", 4: "medium", 5: "slow", 6: "slower", 7: "veryslow"}


def _preset_level(codec: str, preset: str) -> int | None:
    """A preset's speed as an NVENC level 1 (fastest) .. 7 (slowest); ``None`` if unknown."""
    if preset in _NVENC_LEVELS:
        return int(preset[1])
    if preset in NVENC_PRESETS:
        return int(NVENC_PRESETS[preset][1])
    if codec == "av1" and preset.isdigit() and 0 <= int(preset) <= 13:
        return 7 - int(preset) // 2  # SVT-AV1: 0 slowest .. 13 fastest
    return None


def auto_preset(codec: str, preset: str | None, *, hardware: bool) -> str | None:
    """encoder='auto': ``preset`` in the terms of the encoder it chose, so one command line runs
    on machines with and without NVENC. x264 names, p1..p7 and (av1) SVT-AV1's 0..13 are
    translated by speed (``medium`` = p4 = SVT 6); anything else is left for the chosen
    encoder's own check to refuse."""
    if preset is None:
        return None
    p = str(preset)
    level = _preset_level(codec, p)
    if hardware:
        return f"p{level}" if level is not None else p
    if codec in ("h264", "hevc") and p not in _X26X_PRESETS and level is not None:
        return _LEVEL_X26X[level]
    if codec == "av1" and not p.isdigit() and level is not None:
        return str((7 - level) * 2)
    return p


def check_nvenc_crf(codec: str, crf: int | None) -> None:
    """NVENC's constant-quality level (``cq``) runs 1..51 (h264/hevc) or 1..63 (av1); its 0 means
    "automatic", not lossless as x264's crf 0, so it is refused rather than passed on."""
    if crf is None:
        return
    top = 63 if codec == "av1" else 51
    if crf == 0:
        raise InvalidInputError(f"crf=0 with encoder='nvenc': NVENC's cq 0 means 'automatic', not lossless; "
                                f"give a crf within 1..{top} (or encoder='software' for lossless x264/x265)")
    if not 1 <= crf <= top:
        raise InvalidInputError(f"crf={crf} for codec={codec!r} with encoder='nvenc' must be within 1..{top}")


def nvenc_pix_fmt(codec: str, source_pix_fmt: str | None, *, high: bool, supported=()) -> str | None:
    """The pixel format to hand ``<codec>_nvenc``; ``None`` = it cannot keep a >8-bit source.

    ``high`` (frames carry ``hi``: a >8-bit source): ``p010le`` (10-bit 4:2:0: HEVC Main 10 /
    AV1 Main) for hevc and av1; for a 4:4:4 source with hevc, HEVC Main 4:4:4 10 from
    ``yuv444p10msble`` where the encoder lists it (``supported``: FFmpeg >= 8; 10-bit codes in the
    top bits, as NVENC reads them, so they are the software path's codes exactly), else
    ``yuv444p16le`` (NVENC keeps its top 10 bits: up to one code lower than rounding would give).
    NVENC has no 12-bit, so 12/16-bit sources are kept at 10. h264: ``None``
    (NVENC encodes H.264 High 10 only on RTX 50-series GPUs, and few players play it): the caller
    writes 8-bit and says so. 8-bit: ``nv12`` (NVENC's native 4:2:0 layout), ``yuv444p`` for a
    4:4:4 source with h264/hevc (AV1 NVENC is 4:2:0 only). 4:2:2 becomes 4:2:0 (NVENC encodes
    4:2:2 only on RTX 50-series GPUs; the probe checks 4:2:0)."""
    _check_nvenc_codec(codec)
    four44 = source_pix_fmt is not None and chroma_of(source_pix_fmt) == "444" and codec != "av1"
    if high:
        if codec == "h264":
            return None
        if not four44:
            return "p010le"
        return "yuv444p10msble" if "yuv444p10msble" in supported else "yuv444p16le"
    # 8-bit: as the software path (_choose_pix), only a yuv444p source keeps 4:4:4
    return "yuv444p" if source_pix_fmt in ("yuv444p", "yuvj444p") and codec != "av1" else "nv12"


def nvenc_options(codec: str, *, crf: int | None = None, preset: str | None = None, live: bool = False,
                  pix_fmt: str = "nv12", no_bframes: bool = False) -> dict[str, str]:
    """FFmpeg options for ``<codec>_nvenc`` (pure: what the sink passes to the encoder).

    * quality: constant quality, ``rc=vbr`` + ``cq=crf`` + ``b=0`` (no bitrate cap, so ``cq``
      alone decides, as x264's crf does). Same scale (1..51, av1 1..63; see
      :func:`check_nvenc_crf` for 0) and direction as x264/x265's crf, but not the same quality
      at the same number: hardware encoders generally spend more bytes than x264 medium for a
      like picture (not measured here: no NVENC was at hand), so compare outputs, not numbers.
      ``None`` -> :data:`NVENC_DEFAULT_CQ`.
    * ``preset``: see :func:`nvenc_preset` (p1 fastest .. p7 best; ``medium`` = p4).
    * ``live`` (stream URLs, the camera's outputs): ``tune=ll`` (low latency), no B-frames and
      ``delay=0`` (each packet out as soon as its frame is encoded), like x264's zerolatency;
      ``forced-idr`` (h264/hevc) makes the keyframes the sink forces every
      :data:`LIVE_KEYFRAME_S` IDR frames, where a decoder can start.
      Files: ``tune=hq`` with B-frames as the preset sets them.
    * ``no_bframes``: B-frames off for containers without presentation times (AVI, ASF/.wmv).
    * ``profile`` from ``pix_fmt``: h264 ``high`` (NVENC's default is ``main``, which compresses
      worse) or ``high444p``; hevc ``main`` / ``main10`` (p010le) / ``rext`` (4:4:4); av1 none
      (NVENC picks it).
    """
    _check_nvenc_codec(codec)
    check_nvenc_crf(codec, crf)
    opts = {"preset": nvenc_preset(preset), "tune": "ll" if live else "hq", "rc": "vbr",
            "cq": str(NVENC_DEFAULT_CQ[codec] if crf is None else int(crf)), "b": "0"}
    if live or no_bframes:
        opts["bf"] = "0"
    if live:
        opts["delay"] = "0"
        if codec != "av1":  # (av1_nvenc has no such option)
            opts["forced-idr"] = "1"  # the keyframes the sink asks for (LIVE_KEYFRAME_S) as IDR, where viewers can join
    if codec == "h264":
        opts["profile"] = "high444p" if pix_fmt.startswith("yuv444") else "high"
    elif codec == "hevc":
        opts["profile"] = ("rext" if pix_fmt.startswith("yuv444")
                           else "main10" if bits_per_component(pix_fmt) > 8 else "main")
    return opts


# What FFmpeg's NVENC wrapper says when it cannot open, and what it means for the user.
_NVENC_WHY = (
    ("libcuda", "no NVIDIA driver (libcuda) on this machine"),
    ("libnvidia-encode", "the NVIDIA driver has no NVENC library (libnvidia-encode; in a container, "
                         "NVIDIA_DRIVER_CAPABILITIES must include 'video')"),
    ("no capable devices", "no GPU with NVENC"),
    ("no nvenc capable devices", "no GPU with NVENC"),
    ("unsupported device", "this GPU has no NVENC"),
    ("required nvenc api version", "the NVIDIA driver is older than this FFmpeg's NVENC needs (update the driver)"),
    ("out of memory", "NVENC session limit reached (consumer GPUs allow a few concurrent encodes) or GPU memory full"),
    ("incompatible client key", "NVENC session limit reached (consumer GPUs allow a few concurrent encodes)"),
)


def explain_nvenc_error(encoder: str, ffmpeg_lines: list[str], exc: BaseException | None = None) -> str:
    """One line: why ``encoder`` could not be opened, from FFmpeg's log lines (the last error
    names the cause, e.g. "Cannot load libcuda.so.1") or else the exception, with what it means."""
    lines = [ln.strip() for ln in ffmpeg_lines if ln and ln.strip()]
    raw = lines[-1] if lines else (str(exc).split(";")[0] if exc is not None else "unknown error")
    text = " ".join(lines).lower() or raw.lower()
    meaning = next((m for key, m in _NVENC_WHY if key in text), None)
    return f"{encoder} did not open: {raw}" + (f"; {meaning}" if meaning else "")



@contextmanager
def _ffmpeg_errors():
    """Collect FFmpeg's error lines of this thread (the reason an encoder did not open); the
    exception PyAV raises says only "Operation not permitted"."""
    with _log_lock, _capture_errors() as lines:
        yield lines


@contextmanager
def _capture_errors(records: list | None = None):
    """FFmpeg's error lines of this thread, into the list it yields; ``records`` (given): each as
    ``(name, message)`` too, ``name`` the logging component (a demuxer's: ``"swf"``). Callers hold
    ``_log_lock`` (the log level is process-wide)."""
    import av.logging

    old = av.logging.get_level()
    raise_level = old is None or old < av.logging.ERROR
    if raise_level:
        av.logging.set_level(av.logging.ERROR)
    # PyAV drops a message identical to the one before it: a second probe's "Cannot load
    # libcuda.so.1" would go missing
    skip = av.logging.get_skip_repeated()
    av.logging.set_skip_repeated(False)
    lines: list[str] = []
    try:
        with av.logging.Capture(local=True) as logs:
            yield lines
    finally:
        av.logging.set_skip_repeated(skip)
        if raise_level:
            av.logging.set_level(old)
        errors = [m for m in logs if m[0] <= av.logging.ERROR]
        lines.extend(str(m[2]) for m in errors)
        if records is not None:
            records.extend((m[1], str(m[2])) for m in errors)


_svt_log_lock = threading.Lock()


@contextmanager
def _quiet_svt(encoder: str):
    """Around the opening of an encoder: SVT-AV1 prints a banner and its settings at info level,
    read from ``SVT_LOG`` when each encoder starts: errors only (its one common warning is about
    thread priority), unless the user set a level. Set only while it opens and then taken away
    again (left set, every program the host started later inherited it), under a lock so that
    two sinks opening at once do not take it from each other."""
    if encoder != "libsvtav1":
        yield
        return
    with _svt_log_lock:
        if "SVT_LOG" in os.environ:
            yield
            return
        os.environ["SVT_LOG"] = "1"
        try:
            yield
        finally:
            os.environ.pop("SVT_LOG", None)


def _try_open(encoder: str, *, width: int, height: int, pix_fmt: str, options: dict[str, str],
              rate: Fraction = Fraction(25), encode: bool = False) -> str | None:
    """Open ``encoder`` with these settings (and with ``encode``, encode one grey frame and flush);
    ``None`` if it works, else why not (see :func:`explain_nvenc_error`). The context is freed
    before returning, so no encoder session is kept."""
    if encoder not in av.codecs_available:
        return f"{encoder} is not in this FFmpeg build"
    cc = None
    try:
        with _ffmpeg_errors() as lines:
            try:
                cc = av.CodecContext.create(encoder, "w")
                cc.width, cc.height, cc.pix_fmt = width, height, pix_fmt
                cc.framerate = rate
                cc.time_base = 1 / Fraction(rate)
                cc.options = dict(options)
                cc.open()
                if encode:
                    grey = np.full((height, width, 3), 128, np.uint8)
                    vf = rgb_to_av(grey, pix_fmt=pix_fmt, colorspace=1, color_range=1)
                    vf.pts = 0
                    packets = list(cc.encode(vf)) + list(cc.encode(None))
                    if not packets:
                        return f"{encoder} opened, but gave no packet for a test frame"
                return None
            except (av.error.FFmpegError, ValueError, OSError, RuntimeError) as e:
                err = e
        return explain_nvenc_error(encoder, lines, err)
    finally:
        del cc  # frees the encoder (and its NVENC session) now


_probe_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _probe(codec: str) -> str | None:
    w, h = _PROBE_SIZE
    why = _try_open(NVENC_ENCODERS[codec], width=w, height=h, pix_fmt="nv12", options={"preset": "p1"}, encode=True)
    log.debug("NVENC probe for %s: %s", codec, why or "usable")
    return why


def nvenc_available(codec: str) -> str | None:
    """``None`` if NVENC can encode ``codec`` (h264, hevc, av1) here, else why not (one line).

    Opens ``<codec>_nvenc`` on a 256x144 nv12 test frame, encodes it and flushes: the only sure
    test (the encoder is in every PyAV wheel; whether the GPU has NVENC, the driver its
    library, and a session is free, shows only on opening). Done once per process per codec
    (tens of ms with a GPU: a CUDA context and an encode session) and cached; a session limit hit
    later is caught when the file's own encoder is opened (see ``FileSink``)."""
    if codec not in NVENC_ENCODERS:
        raise InvalidInputError(f"codec={codec!r} has no NVENC encoder; NVENC takes codec {tuple(NVENC_ENCODERS)}")
    with _probe_lock:
        return _probe(codec)


_auto_logged: set[tuple[str, str]] = set()


def resolve_encoder(encoder: str, codec: str, *, quiet: bool = False) -> tuple[str, str | None]:
    """``(FFmpeg encoder name, note)`` for ``encoder`` (software / nvenc / auto) and a resolved
    ``codec``; ``note`` says why ``auto`` chose software (``None`` otherwise). ``nvenc`` whose
    probe fails raises :class:`HardwareEncoderError` (one line, with :func:`nvenc_hint`).
    ``quiet``: the note is not logged (nor counted as said): nothing is encoded with it (a photo's
    options are checked as a video's)."""
    if encoder not in ENCODER_MODES:
        raise InvalidInputError(f"encoder={encoder!r} is not one of {ENCODER_MODES}")
    if encoder == "software":
        return _ENCODERS[codec], None
    if encoder == "nvenc":
        _check_nvenc_codec(codec)
        why = nvenc_available(codec)
        if why is not None:
            raise HardwareEncoderError(f"encoder='nvenc' cannot be used: {why}", hint=nvenc_hint(why))
        return NVENC_ENCODERS[codec], None
    why = nvenc_available(codec) if codec in NVENC_ENCODERS else f"{codec} has no NVENC encoder"
    if why is None:
        return NVENC_ENCODERS[codec], None
    note = f"encoder='auto' used {_ENCODERS[codec]}, not NVENC: {why}"
    if not quiet and (codec, why) not in _auto_logged:  # once per process, not once per file of a folder
        _auto_logged.add((codec, why))
        log.info("%s", note)
    return _ENCODERS[codec], note


def _audio_fallback_codec(fmt_name: str) -> str:
    return "libopus" if ("webm" in fmt_name or "matroska" in fmt_name) else "aac"


def transcode_plan(codec: str, ins, sample_rate: int | None, channels: int | None, *,
                   unknown: bool = False) -> tuple[int, str, str]:
    """(rate, layout, words) for input audio stream ``ins`` transcoded to ``codec``: the rate and
    channel layout it is written with (:func:`_encoder_rate`, :func:`_keep_layout`) and what
    that changes, in words for the note (", downmixed from 6 channels to stereo"; "" when
    nothing). ``unknown``: the input's rate and channels were not known where it begins. One
    rule for the encoding sink and the stream copy of ``--copy-if-no-faces`` (see _remux)."""
    rate = _encoder_rate(codec, sample_rate or 48000)
    src_layout = getattr(getattr(getattr(ins, "codec_context", None), "layout", None), "name", None)
    # "6 channels" (Matroska stores no layout for PCM): taken as FFmpeg's usual 5.1, or its LFE
    # and surrounds were folded into 6.1, and 8 channels into stereo
    guessed = _guessed_layout(src_layout)
    layout = _keep_layout(codec, rate, guessed or src_layout, channels)
    n_out = len(av.AudioLayout(layout).channels)
    n_in = channels or 0
    mixed = f", downmixed from {n_in} channels to {layout}" if n_in > n_out else ""
    if guessed:
        mixed = f", channel order unspecified, taken as {guessed}{mixed}"
        src_layout = guessed
    if unknown:  # (what it really is shows only when it is decoded)
        mixed = f", written as {layout} at {rate} Hz"
    elif not mixed and src_layout and n_in < n_out:
        mixed = f", {src_layout} written as {layout} ({codec} takes no {src_layout})"
    if sample_rate and rate != sample_rate:
        takes = "Opus is 48 kHz only" if codec == "libopus" else f"{codec} does not take {sample_rate}"
        mixed += f", resampled from {sample_rate} to {rate} Hz ({takes})"
    return rate, layout, mixed


def transcoded_note(index: int, name: str | None, codec: str, words: str, why: str) -> str:
    """The note for audio stream ``index`` transcoded to ``codec`` (``words``: :func:`transcode_plan`'s)."""
    return f"audio stream #{index} ({name}) transcoded to {codec}{words}: {why}"


def subtitle_refusal(fmt_name: str, codec: str | None, supported) -> str:
    """Why subtitles in ``codec`` are dropped from the muxer ``fmt_name``: not copied, and no text
    subtitle codec there to convert them to (or not text, so nothing to convert)."""
    return copy_refusal(fmt_name, codec, supported) + (
        " and holds no text subtitles to convert it to" if is_text_subtitle(codec) else
        " (not text subtitles, so they cannot be converted)")


#: Video file names whose containers cannot hold the video the sink writes (H.264/HEVC/AV1/VP9/
#: ProRes), with the muxer that writes them: MPEG-PS and DVD (.mpg/.vob: MPEG-1/2 only; .mod/.tod
#: are camcorder names for it), raw MPEG-1/2, DV, Ogg (Theora), MXF, GIF, YUV4MPEG (.y4m: raw
#: pictures; the muxer failed only at the end of a run) and raw pictures (.yuv), Motion JPEG,
#: RealMedia, H.261/H.263, Flash (.swf), raw VC-1, AMV, GXF -- and the raw elementary streams of
#: one codec (.hevc, .ivf, .obu: no audio, and .hevc/.obu no frame times; they take no H.264).
#: An input named so is written as .mp4 by default (api.default_output, NO_MODERN_VIDEO); asking
#: for such an output is refused before anything runs (check_output_encoding).
_NO_VIDEO_EXTS = {
    ".mpg": "mpeg", ".mpeg": "mpeg", ".mod": "mpeg", ".tod": "mpeg", ".vob": "vob", ".m1v": "mpeg1video",
    ".m2v": "mpeg2video", ".dv": "dv", ".ogv": "ogv", ".ogg": "ogg", ".mxf": "mxf", ".gif": "gif",
    ".y4m": "yuv4mpegpipe", ".yuv": "rawvideo", ".rgb": "rawvideo", ".mjpeg": "mjpeg", ".mjpg": "mjpeg",
    ".rm": "rm", ".rmvb": "rm", ".h263": "h263", ".h261": "h261", ".swf": "swf", ".vc1": "vc1", ".rcv": "vc1test",
    ".amv": "amv", ".gxf": "gxf", ".hevc": "hevc", ".h265": "hevc", ".265": "hevc", ".ivf": "ivf", ".obu": "obu",
}
NO_MODERN_VIDEO = tuple(_NO_VIDEO_EXTS)
#: the muxers of those names, and the others that hold none of the sink's video (still images,
#: audio, subtitles, the VCD/SVCD/DVD variants of MPEG-PS, other raw video streams)
_NO_VIDEO_MUXERS = frozenset({
    *_NO_VIDEO_EXTS.values(), "apng", "image2", "webp", "mp3", "wav", "adts", "flac", "null", "srt", "dvd", "svcd",
    "vcd", "mxf_d10", "mxf_opatom", "mpjpeg", "m4v", "dirac", "cavsvideo", "avs2", "avs3", "vvc", "evc", "dnxhd",
    "roq", "filmstrip", "a64"})
#: muxers of a bare video stream that the sink may write (``-o clip.h264``): no audio, no subtitles
_BARE_VIDEO = frozenset({"h264", "hevc", "m4v", "ivf", "obu", "rawvideo"})
#: raw elementary streams that hold one codec the sink writes, but as bare packets (see above)
_RAW_STREAM = {"hevc": "HEVC", "ivf": "VP8/VP9/AV1", "obu": "AV1"}


def resolve_codec(codec: str, target, source=None) -> str:
    """``"auto"`` -> ``vp9`` for a ``.webm`` name (webm holds only VP8/VP9/AV1); ``prores``
    (ProRes 4444, alpha kept) for a source with transparency (``source.has_alpha``: keyed
    footage) into ``.mov``/``.mkv``; ``hevc`` when the frames carry more than 8 bits
    (``source.high_bit_depth``: HEVC Main 10 is what phones, TVs, browsers and hardware decoders
    play, H.264 High 10 almost nothing does), except into containers that cannot hold HEVC
    (``.avi``, and ``.m4v``/``.3gp``/``.3g2``/``.f4v``, whose FFmpeg muxers take H.264 only): there
    ``h264``, whose 10-bit profiles (libx264) keep the depth of a capture card's v210/FFV1 AVI or
    a HandBrake/Apple 10-bit ``.m4v``; else ``h264``."""
    if codec != "auto":
        return codec
    name = str(target).lower()
    if name.endswith(".webm"):
        return "vp9"
    if getattr(source, "has_alpha", False) is True and name.endswith((".mov", ".mkv")):
        return "prores"
    holds_hevc = "hevc" in _VIDEO_IN.get(_family(name, None)[0], ("hevc",))
    if getattr(source, "high_bit_depth", False) is True and holds_hevc:
        return "hevc"
    return "h264"


#: software encoders that encode odd sizes in every format they take, subsampled chroma too
#: (libvpx-vp9: 4:2:0, 4:2:2 and its alpha twin; SVT-AV1: 4:2:0 at 8 and 10 bits; each read back
#: at the odd size, its edge row and column as close as the rest). x264/x265 refuse odd 4:2:0/4:2:2.
_ODD_SIZE_ENCODERS = frozenset({"libvpx-vp9", "libsvtav1"})

#: where transparency can go: the encoders the sink writes alpha with, and what to tell users
_ALPHA_ENCODERS = ("prores_ks", "libvpx-vp9")
_ALPHA_HOME = "write .mov or .mkv (ProRes 4444) or .webm (VP9) to keep it"


# Copying a stream is decided per (muxer, codec): FFmpeg's own answer (``supported_codecs``) is too
# generous for some pairs -- they fail at the header or trailer (pcm in mp4, opus/flac in mov) or
# even abort the process (pcm in flv) -- and empty for others (mpegts). Known muxers therefore get
# an explicit allow-list of what plays back; the rest fall back to FFmpeg's answer.
_PCM = ("pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be", "pcm_s32le", "pcm_f32le", "pcm_u8")
_G711 = ("pcm_alaw", "pcm_mulaw")
_COPY_OK: dict[str, tuple[str, ...]] = {
    # (bin_data: GoPro's gpmd telemetry, see gopro_telemetry; the muxers write its gpmd sample
    # entry from the copied tag and keep its handler, as GoPro Player and telemetry tools read it)
    "mp4": ("aac", "mp3", "ac3", "eac3", "alac", "flac", "opus", "mov_text", "bin_data"),
    "ipod": ("aac", "ac3", "eac3", "alac", "mov_text"),
    # (G.711 from IP cameras and DVRs copies into .mov/.avi; QuickTime c608 caption tracks into .mov)
    "mov": ("aac", "mp3", "ac3", "eac3", "alac", "mov_text", "adpcm_ima_qt", *_PCM, *_G711, "eia_608", "bin_data"),
    # (FLV's own Nellymoser and ADPCM: copies decode in full. The IMA/MS ADPCM of old digicams'
    # MJPEG AVIs is not copied into AVI: FFmpeg's muxer times its blocks by the bit rate, which
    # FFmpeg's own ADPCM files leave at 0, and 1 s of sound read back as 3 s, or 4 s as 4052 s)
    "flv": ("aac", "mp3", "nellymoser", "adpcm_swf"),
    "avi": ("mp3", "mp2", "ac3", "aac", *_PCM, *_G711),
    # (klv: MISB drone/UAS telemetry, timed_id3: HLS's timed metadata; both are MPEG-TS's own and
    # copy back whole. Matroska and mp4 refuse them at the first packet, mov writes a track that
    # reads back with no codec and one packet short)
    "mpegts": ("aac", "mp3", "mp2", "ac3", "eac3", "opus", "dvb_subtitle", "klv", "timed_id3"),
    "webm": ("opus", "vorbis", "webvtt"),
}


@functools.lru_cache(maxsize=None)
def codec_identity(name: str) -> str:
    """The canonical name of the codec ``name`` names (``amrnb``, ``libopencore_amrnb``,
    ``amr_nb`` -> ``amr_nb``; ``dca`` -> ``dts``; ``g726`` -> ``adpcm_g726``; ``mp3float`` ->
    ``mp3``; ``srt`` -> ``subrip``), or ``name`` itself when FFmpeg knows no such codec.

    A source names its streams by the codec's canonical name, a muxer's ``supported_codecs`` by
    its decoders' and encoders' names: compared as they are, AMR never matched 3GP nor DTS
    Matroska, and both were re-encoded (lossy) with a false "does not accept"."""
    for mode in ("r", "w"):
        try:
            return av.Codec(name, mode).canonical_name
        except (ValueError, av.error.FFmpegError):  # (UnknownCodecError is a ValueError)
            continue
    return name


def _identities(supported) -> frozenset[str]:
    return frozenset(codec_identity(n) for n in supported)


def can_copy(fmt_name: str, codec: str | None, supported) -> bool:
    """True if packets of ``codec`` can be stream-copied into the muxer ``fmt_name`` (codecs
    compared by identity, see :func:`codec_identity`)."""
    if not codec:
        return False
    codec = codec_identity(codec)
    for key, ok in _COPY_OK.items():
        if key in fmt_name.split(","):
            return codec in ok
    return codec in _identities(supported)


#: data tracks that only MPEG-TS carries here (see _COPY_OK), named for the message
_TS_DATA = {"klv": "KLV metadata (MISB drone/UAS telemetry)", "timed_id3": "timed ID3 metadata"}


def copy_refusal(fmt_name: str, codec: str | None, supported) -> str:
    """Why ``codec`` is not stream-copied into the muxer ``fmt_name`` (``can_copy`` said no), in
    words that do not blame the container for what is only this tool's choice: a codec FFmpeg's
    muxer takes but that is left off its allow-list here (``_COPY_OK``: such copies failed at the
    header or trailer, or did not play back) is "not copied", not "not accepted". ``codec``
    ``None``: a data track FFmpeg names no codec for (DJI telemetry, camera makers' own tracks)."""
    if codec == "bin_data":  # (GoPro's gpmd, see gopro_telemetry)
        return "GoPro telemetry (gpmd) is copied into .mp4 and .mov only (write one of those to keep it)"
    if not codec:
        return "its format is unknown (FFmpeg names no codec for it), so it is not copied"
    if codec in _TS_DATA and "mpegts" not in fmt_name.split(","):
        return f"{_TS_DATA[codec]} is copied into MPEG-TS (.ts) only (write .ts to keep it)"
    if codec_identity(codec) in _identities(supported):
        return f"{codec} is not stream-copied into {fmt_name} here (such copies fail or do not play back)"
    return f"{fmt_name} does not accept {codec}"


def gopro_telemetry(stream, input_format: str) -> bool:
    """True for GoPro's telemetry track (GPS, gyro, accelerometer: its ``gpmd`` sample entry),
    which FFmpeg's mov/mp4 demuxer, alone, names ``bin_data``. Its copy keeps that tag, so the
    output is a gpmd track again; a ``bin_data`` stream of another demuxer (a private stream of
    MPEG-TS) is of unknown format and would be mislabelled as GoPro's."""
    return (getattr(stream, "type", None) == "data" and getattr(stream, "name", None) == "bin_data"
            and "mov" in input_format.split(","))


def aux_codec(info, stream, input_format: str) -> str | None:
    """The codec a sink copies auxiliary stream ``info`` as: its own, or ``bin_data`` for GoPro
    telemetry (a data stream PyAV gives no codec)."""
    if info.codec is None and gopro_telemetry(stream, input_format):
        return "bin_data"
    return info.codec


def needs_adtstoasc(fmt_name: str, stream, *, fmp4_segments: bool = False) -> bool:
    """True for ADTS AAC (MPEG-TS, .aac: no AudioSpecificConfig in the extradata) copied into AVI,
    or into an HLS playlist's fragmented-MP4 segments (``fmp4_segments``: see
    :data:`_HLS_FMP4_CODECS`). FFmpeg's mp4/mov/mkv/flv muxers convert it themselves; its avi muxer
    refuses the first packet ("ADTS is only supported with codec tag 0x1610"), which failed every
    .ts -> .avi, and its hls muxer hands the packets to its mp4 muxer without that conversion
    ("Malformed AAC bitstream detected"), which failed every .ts -> HEVC .m3u8 with "Operation not
    permitted" (said as a folder that cannot be written)."""
    cc = getattr(stream, "codec_context", None)
    into = "avi" in fmt_name.split(",") or fmp4_segments
    return into and cc is not None and cc.name == "aac" and not cc.extradata


def adts_to_asc(path, stream):
    """(``aac_adtstoasc`` filter for the packets of ADTS AAC ``stream``, its AudioSpecificConfig)
    or ``None`` when it cannot be read. The config (the output stream's extradata) is in the
    stream's first packet, which ``path`` is opened again for: the output's header is written
    before any audio packet arrives."""
    try:
        with av.open(ffmpeg_local(path)) as c:
            s = c.streams[stream.index]
            probe = av.bitstream.BitStreamFilterContext("aac_adtstoasc", s)
            first = next((p for p in c.demux(s) if p.size), None)
            got = probe.filter(first) if first is not None else []
            asc = next((bytes(q.get_sidedata("new_extradata")) for q in got if q.has_sidedata("new_extradata")), b"")
    except (av.error.FFmpegError, ValueError, OSError, IndexError):
        return None
    return (av.bitstream.BitStreamFilterContext("aac_adtstoasc", stream), asc) if asc else None


#: the sampling rates of an ADTS header's sampling frequency index
_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


def _adts_config(data: bytes) -> tuple[int, int, int] | None:
    """(profile, sampling frequency index, channel configuration) of the ADTS header ``data``
    starts with, or None where it is none."""
    if len(data) < 7 or data[0] != 0xFF or data[1] & 0xF6 != 0xF0:
        return None
    return data[2] >> 6, (data[2] >> 2) & 0xF, ((data[2] & 1) << 2) | (data[3] >> 6)


def _adts_words(config: tuple[int, int, int]) -> str:
    rate = _ADTS_RATES[config[1]] if config[1] < len(_ADTS_RATES) else None
    return f"{config[2]} channel(s) at {rate} Hz" if rate else f"{config[2]} channel(s)"


#: inputs from this size (bytes) on say that their audio is being read before the copy (see copy_hazards)
_SCAN_SAY_BYTES = 1 << 30

#: how far past the start (s) a seek's packets are held back waiting for each stream's first one
#: before the seek is given up for a read from the top (a track with none near the start: one
#: that ends earlier, or is muxed far from its times)
_SEEK_HEAD_S = 5.0


def _packet_time(p) -> Fraction | None:
    return p.pts * Fraction(p.time_base) if p.pts is not None else None


def _seek_head(packets, indices, start: float) -> list | None:
    """The packets read after a seek up to the first (not empty) one of each stream of
    ``indices``, or None where one of those plays past ``start`` (the seek skipped part of that
    stream, see :func:`_scan_packets`) or none came within :data:`_SEEK_HEAD_S` of it."""
    head, first = [], {}
    for p in packets:
        head.append(p)
        t = _packet_time(p)
        if p.size and p.stream.index not in first:
            first[p.stream.index] = t
            if t is not None and t > start + 1e-6:
                return None
            if len(first) == len(indices):
                return head
        if t is not None and t > start + _SEEK_HEAD_S:
            return None
    return None  # (the file ended with a stream unseen: as a single stream's empty read, from the top)


def _scan_packets(path, indices, start: float | None):
    """The packets of the streams ``indices`` of the file at ``path``, in the file's order, in one
    read: from those that play at ``start`` (s, the streams' own clock) on after a seek to a
    second before it, or from the top (``start`` None, the seek failing or landing past
    ``start`` for any of them: an MPEG-TS seek that misses would leave what it skipped unread)."""
    if start is not None and start > 0:
        with av.open(ffmpeg_local(path)) as c:
            try:
                c.seek(max(0, int((start - 1) * 1e6)), backward=True)
                packets = c.demux(*(c.streams[i] for i in indices))
                head = _seek_head(packets, indices, start)
            except av.error.FFmpegError:
                head = None
            if head is not None:
                yield from head
                yield from packets
                return
    with av.open(ffmpeg_local(path)) as c:
        yield from c.demux(*(c.streams[i] for i in indices))


class _CopyCheck:
    """One audio stream's part of :func:`copy_hazards`: what is judged (``gaps``, ``adts``), over
    which part (``window``), and what was read of it so far. ``verdict`` is its hazard, in words;
    ``done`` says that no later packet can change it."""

    def __init__(self, stream, gaps: bool, adts: bool, window: tuple[float | None, float | None] | None):
        self.stream, self.gaps, self.adts = stream, gaps, adts
        self.start, self.stop = window if window is not None else (None, None)
        self.tb = Fraction(stream.time_base)
        self.end = self.first = self.verdict = None
        self.done = False

    def feed(self, p) -> None:
        t = p.pts * self.tb if p.pts is not None else None
        if t is not None and self.stop is not None and t >= self.stop - 1e-6:
            self.done = True  # (past the part: not copied)
            return
        if t is not None and self.start is not None and (t + (p.duration or 0) * self.tb <= self.start + 1e-6):
            return  # (before the part: cut off)
        if self.adts:
            config = _adts_config(bytes(p)[:7])
            if self.first is None:
                self.first = config
            elif config is not None and config != self.first:
                at = f" at {float(t):.3f} s" if t is not None else ""
                self.verdict = (f"its ADTS AAC changes from {_adts_words(self.first)} to {_adts_words(config)}{at}, "
                                f"which a copy cannot follow (one configuration for the whole track)")
        if self.gaps and t is not None and self.verdict is None:
            if self.end is not None and t - self.end > _AUDIO_GAP_S:
                self.verdict = (f"its sound pauses at {float(self.end):.3f} s for {float(t - self.end):.3f} s, which "
                                f"a copy into a container with no start times would close up, playing all that "
                                "follows early; transcoded, the pause is filled with silence")
            self.end = t + p.duration * self.tb if p.duration else None
        self.done = self.verdict is not None


def copy_hazards(path, checks) -> dict[int, str | None]:
    """Why a stream copy of each audio stream of ``checks`` (``(stream, gaps, adts, window)``
    each) of the file at ``path`` would come out wrong, in words, or None, by stream index; read
    from the file's packets, without decoding them (a second's work for an hour of TS), in one
    read for all of them (a TV recording's three tracks were read three times over before the
    run began). The transcoder handles both cases (FileSink._transcode_audio).

    * ``gaps``: a packet starting more than :data:`_AUDIO_GAP_S` after the previous one ends (a
      dropout, a recording paused, a joined file), for a container that stores no start times
      (AVI: the sound is one run of blocks): the copy closes the pause up and all that follows
      plays early by its length. The transcoder fills it with silence.
    * ``adts``: ADTS AAC (MPEG-TS) whose headers change their channels or rate (a TV recording
      switching between 2.0 and 5.1 at an ad break, 48 kHz and 44.1 kHz), for a container that
      keeps one AudioSpecificConfig for the track (mp4/mkv/avi, from the first packet): the part
      after the change is undecodable ("Invalid data") or plays at the first part's rate.

    ``window``: (start, end) in seconds of the stream's clock, either None, of the part that is
    copied (``--start``/``--duration``): only its packets are judged, from a seek to ``start``
    to the first packet at ``end`` or later (where the sink's cut drops them), as
    ``start=None`` from the top. The read starts at the earliest ``start`` of all and stops when
    every stream has its verdict (its first hazard, or the end of its part); a long one (an input
    over :data:`_SCAN_SAY_BYTES`) says so in the log."""
    todo = [_CopyCheck(*check) for check in checks]
    if not todo:
        return {}
    starts = [c.start for c in todo]
    start = None if None in starts else min(starts)
    try:
        size = os.path.getsize(path) if not str(path).startswith(("pipe:", "-")) else 0
    except (OSError, TypeError, ValueError):
        size = 0
    if size >= _SCAN_SAY_BYTES:
        stops = {c.stop for c in todo}
        stop = None if None in stops else max(stops)
        part = (f" from {start:.3f} s" if start is not None else "") + (f" up to {stop:.3f} s" if stop is not None else "")
        log.info("reading the packets of audio stream(s) %s of %s%s (%.1f GB file, not decoded) to check that "
                 "a stream copy of them comes out right (%s)", ", ".join(f"#{c.stream.index}" for c in todo), path,
                 part or " (all of it)", size / 1e9,
                 " and ".join(w for w, on in (("pauses", any(c.gaps for c in todo)),
                                              ("ADTS AAC changes", any(c.adts for c in todo))) if on))
    by_index = {c.stream.index: c for c in todo}
    try:
        packets = _scan_packets(path, list(by_index), start)
        try:
            for p in packets:
                check = by_index.get(p.stream.index)
                if check is None or check.done or not p.size:
                    continue
                check.feed(p)
                if check.done and all(c.done for c in todo):
                    break
        finally:
            packets.close()  # (the file closes here, read no further)
    except (av.error.FFmpegError, ValueError, OSError, IndexError, TypeError):
        pass  # (what was found before stands; the rest is copied as it is)
    return {c.stream.index: c.verdict for c in todo}


def audio_copy_hazards(path, streams, fmt_name: str,
                       window: tuple[float | None, float | None] | None = None, *,
                       fmp4_segments: bool = False) -> dict[int, str | None]:
    """:func:`copy_hazards` for audio ``streams`` of the file at ``path`` copied into the
    container ``fmt_name``, by stream index, reading (once, for all of them) only those where a
    hazard can be: gaps for a container without start times (see :data:`_NO_START_TIMES`),
    changes of ADTS AAC (no extradata: its config is in each frame) for one other than MPEG-TS
    and raw ADTS (which keep each frame's header: a change plays there). One rule for the
    encoding sink and the stream copy of ``--copy-if-no-faces``; ``window`` as for
    :func:`copy_hazards` (the sink's ``--start``/``--duration``); ``fmp4_segments`` as for
    :func:`needs_adtstoasc`."""
    fmts = set(fmt_name.split(","))
    gaps = bool(fmts & set(_NO_START_TIMES))
    checks = []
    for stream in streams:
        cc = getattr(stream, "codec_context", None)
        changes = cc is not None and cc.name == "aac" and not cc.extradata and not fmts & {"mpegts", "adts"}
        part = window
        if window is not None and changes and needs_adtstoasc(fmt_name, stream, fmp4_segments=fmp4_segments):
            # into AVI (and fMP4 segments) the track's configuration is the file's first packet's (adts_to_asc), not the
            # part's: read from the top
            part = (None, window[1])
        if gaps or changes:
            checks.append((stream, gaps, changes, part))
    found = copy_hazards(path, checks)
    return {s.index: found.get(s.index) for s in streams}


def resample_changing(resampler, frame) -> tuple:
    """(resampler, frames): audio ``frame`` through ``resampler``, or, where the source's audio
    changed its layout or rate mid-stream (TV recordings switch between 2.0 and 5.1 at ad
    breaks), through a new one with the same output (as FFmpeg reconfigures its filter graph),
    the old one drained first. PyAV's resampler is set up by its first frame and refuses the
    next kind; one whose first frame needed no change passes every later one through
    unchecked (the encoder refused the 5.1 after a stereo start), so that is checked here.
    The resampler returned is the one to go on with; a new one says the audio changed."""
    try:
        if resampler.is_passthrough and (frame.format.name, frame.layout.name, frame.sample_rate) != (
                resampler.format.name, resampler.layout.name, resampler.rate):
            raise ValueError("the frame does not match the resampler's setup")
        return resampler, resampler.resample(frame)
    except ValueError:
        out = list(resampler.resample(None))
        resampler = av.AudioResampler(format=resampler.format.name, layout=resampler.layout.name, rate=resampler.rate)
        return resampler, out + resampler.resample(frame)


def silence(fmt: str, layout: str, rate: int, start: int, n: int):
    """``n`` samples of silence in ``fmt``/``layout`` at ``rate`` from sample ``start``, as frames of
    at most a second (an hour's gap costs no hour of memory)."""
    while n > 0:
        k = min(n, rate)
        f = av.AudioFrame(format=fmt, layout=layout, samples=k)
        # only the real planes (one per channel if planar, else one): PyAV 18 lists 9 for a
        # 7.1 fltp frame, and writing the 9th crashed the interpreter (SIGSEGV)
        for plane in f.planes[:len(f.layout.channels) if f.format.is_planar else 1]:
            plane.update(bytes(plane.buffer_size))
        f.sample_rate, f.pts, f.time_base = rate, start, Fraction(1, rate)
        start += k
        n -= k
        yield f


# Muxers that store no start time per stream: the first packet of every stream plays at 0 and
# later ones at their distance from it (AVI: one chunk per frame / audio block, gaps filled with
# empty chunks). A start offset in the input (MPEG-TS starts at 1.4 s, a cut clip at its cut) or
# a negative one (AAC encoder priming: the first packet at -1024 samples, which MP4/MKV hide
# with an edit list / codec delay) would make FFmpeg shift the later packets but not the first:
# every frame but the first plays late against the audio. The sink therefore writes such
# containers relative to the first video frame itself (see FileSink._origin).
_NO_START_TIMES = ("avi",)
#: muxers that keep no presentation order, one time per packet: frames come back in the order
#: stored, so B-frames (stored ahead of the frames they follow) play out of order (AVI; a .wmv of
#: H.264 with B-frames read back as frames 0, 4, 2, 1, 3, 8...). The sink writes them without
#: B-frames; remux refuses to copy a B-frame stream into them.
_NO_PTS = ("avi", "asf", "asf_stream")


def stores_no_pts(fmt_name: str) -> bool:
    """True for a muxer that keeps no presentation order (see ``_NO_PTS``): no B-frames there."""
    return bool(set(fmt_name.split(",")) & set(_NO_PTS))


#: muxers that turn negative start times into an edit list, which players honour by hiding them
_MOV_FAMILY = {"mov", "mp4", "ipod", "3gp", "3g2", "psp", "ismv", "f4v"}
#: of those, the muxers a live source's recording is written fragmented into, so that a killed one
#: plays (see _live_flush; .ismv is fragmented by its muxer already)
_LIVE_FRAGMENTED = _MOV_FAMILY - {"ismv"}
#: codecs of the tracks FFmpeg's mp4/mov muxers write though they got no packet: its trailer ends
#: every mov_text track with a blank sample (a cue of no text, at the track's end), so the
#: subtitle track is in the file, empty; an audio or data track without samples is left out
_MOV_KEEPS_EMPTY = {"mov_text"}


#: an input whose earliest kept stream starts later than this (seconds) is written from 0 (see
#: FileSink._choose_shift and remux); earlier starts are the encoders' delay (AAC priming: 23 ms,
#: two B-frames at 24 fps: 83 ms), which the input's own muxer put there
SHIFT_MIN_S = Fraction(1, 10)


def _round_tick(x: Fraction) -> int:
    """``x`` rounded as FFmpeg's ``av_rescale_q`` rounds a time into another time base: to the
    nearest integer, halves away from zero."""
    return int(math.floor(x + Fraction(1, 2))) if x >= 0 else -int(math.floor(-x + Fraction(1, 2)))


def follow_on(p, last: Fraction | None) -> tuple[Fraction, Fraction] | None:
    """Move packet ``p`` (its dts, and its pts with it), about to be muxed, to the next tick of
    its output stream's clock after ``last`` (the dts in s of the one muxed before it into that
    stream) where it is not after it there: the muxer refuses it ("returned 22"). Returns
    ``(t, last)`` (``t``: its dts, in s, before the move; ``t <= last``: its time went
    backwards, a joined recording; else it rounded onto ``last``'s tick), or None if not moved.

    "After" is judged in the output stream's ticks, where the muxer judges it: AVI counts AAC
    in frames of 1024 samples (21.3 ms), so two packets 21 ms apart on a Matroska clock (1 ms)
    can round to the same tick although the times go forward; such a packet goes one tick on
    (its sound is at most a tick off). Subtitle and data cues may share a tick."""
    if last is None or p.dts is None or not p.time_base:
        return None
    tb = Fraction(p.time_base)
    # (``last`` was muxed, so the header is written and the output stream's time base final)
    otb = Fraction(p.stream.time_base) if p.stream.time_base else tb
    t = Fraction(p.dts) * tb
    ticks = _round_tick(t / otb)  # (where FFmpeg's rescale puts it: to nearest, halves away from 0)
    last_ticks = _round_tick(last / otb)
    if ticks > last_ticks or (ticks == last_ticks and p.stream.type in ("subtitle", "data")):
        return None
    # the first dts of ``p``'s time base that rescales to the next output tick
    delta = math.floor((last_ticks + Fraction(1, 2)) * otb / tb) + 1 - p.dts
    p.dts += delta
    if p.pts is not None:
        p.pts += delta
    return t, last


def move_packet(p, ticks: int) -> None:
    """Move packet ``p`` by ``ticks`` of its time base (pts and dts, where it has them)."""
    if ticks:
        if p.pts is not None:
            p.pts += ticks
        if p.dts is not None:
            p.dts += ticks


#: the slowest frame rate an AVI's grid follows (one frame an hour); below it, the source's time base
_AVI_MIN_RATE = Fraction(1, 3600)


def avi_frame_grid(rate, tb: Fraction, average=None, interval=None) -> Fraction:
    """The time base of an AVI's video. AVI stores no times; a frame's time is its chunk's index,
    and its header's rate is ``1/time base``. Left at a Matroska or MPEG-TS source's 1/1000 or
    1/90000 s, the file declared 1000 (FFmpeg caps it at 600) fps and wrote 39 empty chunks
    between every two frames of a 25 fps clip: players show the rate, some stutter or refuse, and
    the index grows 40-fold.

    * A clean guessed ``rate`` (up to 300 fps, a denominator up to NTSC's 1001; down to one frame
      an hour, where its interval is the clean number: a 0.5 fps slideshow, a time-lapse): one
      tick a frame. A frame that lands on a taken slot goes to the next one
      (FileSink._encode's bump, remux's :func:`to_avi_grid`); a pause becomes a held frame.
    * Else (a VFR source: a phone's low-light clip, a screen recording, a VFR Matroska file) a
      quarter of the ``average`` frame interval: each frame within an eighth of a frame of its
      time (on a grid of the average rate, frames of a phone's 1/30-1/15 s mix landed up to 64 ms
      off, out of sync with the sound), four ticks a frame instead of 20-30. Without a usable
      average (a VFR Matroska file's is its clock's), the first frame's ``interval`` (seconds)
      stands in for it.
    * With none of these, the source's time base."""
    r = Fraction(rate) if rate else None
    # (below 1 fps the clean part is the interval: 1/2 fps, a tick of 2 s; a grid of the source's
    # 1/16000 s clock declared 600 fps and wrote 1199 empty chunks between the slides)
    if r is not None and _AVI_MIN_RATE <= r <= 300 and min(r.numerator, r.denominator) <= 1001:
        return 1 / r if 1 / r > tb else tb
    for a in (average, 1 / Fraction(interval).limit_denominator(1 << 20) if interval else None):
        a = Fraction(a) if a else None
        if a is not None and _AVI_MIN_RATE <= a <= 300:
            grid = 1 / (4 * a).limit_denominator(1001)
            return grid if grid > tb else tb
    return tb


#: FFmpeg's AVFieldOrder of StreamMetadata.interlaced's names
_FIELD_ORDERS = {"tt": 2, "bb": 3, "tb": 4, "bt": 5}


#: the most empty slots FFmpeg's AVI muxer writes between two frames of a stream ("Too large
#: number of skipped frames"): a longer pause (40 min at 25 fps: a camera paused, a surveillance
#: clip) failed the whole run at its end
AVI_MAX_SKIP = 60000
#: video packets whose pts bound the next one's dts from below (see FileSink._mux_video): an encoder
#: that reorders frames by up to R places gives a packet the pts of one among its 2R before as dts
_DTS_WINDOW = 64


def to_avi_grid(p, grid: Fraction, last: int | None) -> int:
    """Put copied video packet ``p`` (AVI: no B-frames, pts = dts) on the frame grid, after
    slot ``last``; returns its slot. A pause of more than :data:`AVI_MAX_SKIP` slots raises
    :class:`EncodeError` (a copied packet cannot be repeated to fill it: it may need the ones
    before it to decode)."""
    tb = Fraction(p.time_base)
    t = p.dts if p.dts is not None else p.pts
    slot = round(Fraction(t) * tb / grid) if t is not None else (-1 if last is None else last) + 1
    if last is not None and slot <= last:
        slot = last + 1
    if last is not None and slot - last - 1 > AVI_MAX_SKIP:
        raise EncodeError(f"the video pauses for {float((slot - last) * grid):.0f} s at {float(last * grid):.3f} s, "
                          f"longer than AVI can hold ({AVI_MAX_SKIP} empty frames); write .mkv or .mp4 instead")
    dur = round(Fraction(p.duration) * tb / grid) if p.duration else 0
    p.time_base = grid
    p.pts = p.dts = slot
    p.duration = max(dur, 1) if dur else 0
    return slot


def _pcm_block(cc) -> int | None:
    """Bytes of one sample frame (all channels) of a plain PCM codec (``pcm_s16le``, ``pcm_f32be``,
    ``pcm_u8``, ``pcm_alaw``...), or None for one whose packets carry more than samples
    (``pcm_dvd``, ``pcm_bluray``: headers), planar ones or one whose name does not say."""
    m = re.fullmatch(r"pcm_[suf](8|16|24|32|64)(le|be)?", cc.name or "")
    width = int(m.group(1)) // 8 if m else (1 if cc.name in ("pcm_alaw", "pcm_mulaw") else None)
    channels = getattr(cc, "channels", 0) or 0
    return width * channels if width and channels > 0 else None


def _drop_samples(frame, n: int, layout: str | None = None, *, keep: int | None = None):
    """Audio ``frame`` without its first ``n`` samples (and only ``keep`` of the rest, if given), its
    channels named ``layout`` if given (a new frame; only the real planes are read: PyAV 18 lists 9
    for 7.1 planar audio, see FileSink._encode_silence)."""
    m = frame.samples - n if keep is None else min(keep, frame.samples - n)
    out = av.AudioFrame(format=frame.format.name, layout=layout or frame.layout.name, samples=m)
    planar = frame.format.is_planar
    size = frame.format.bytes * (1 if planar else len(frame.layout.channels))
    for src, dst in zip(frame.planes[:len(frame.layout.channels) if planar else 1], out.planes):
        d = bytes(src)[n * size:(n + m) * size]
        dst.update(d + bytes(dst.buffer_size - len(d)))
    out.sample_rate, out.pts, out.time_base = frame.sample_rate, frame.pts, frame.time_base
    return out


@functools.lru_cache(maxsize=None)
def _guessed_layout(layout: str | None) -> str | None:
    """The usual layout for an ``N channels`` layout whose speaker order is unspecified (PCM in
    Matroska, AVI or WAV without a channel mask), as FFmpeg guesses it (5.1 for 6, 7.1 for 8);
    ``None`` for a named layout, or a count without a usual one."""
    try:
        names = _speakers(layout) if layout else None
    except ValueError:
        return None
    if not names or any(c != "NONE" for c in names):
        return None
    return _USUAL_LAYOUTS.get(len(names))


def keep_from_origin(p, shift: int = 0, *, edit_list: bool) -> bool:
    """Move packet ``p`` ``shift`` ticks (its time base) earlier for a container with start times;
    False if it then lies before 0 and is to be left out. One that straddles 0 keeps its true
    (negative) time where an ``edit_list`` (mp4/mov) hides its part before 0, as FFmpeg's
    ``-ss -c copy`` does; elsewhere it is left out and the stream starts a moment after 0, in
    sync (Matroska and MPEG-TS would start every stream that much later, the video too). Moved
    to 0, as :func:`clamp_to_origin` does, it made the whole track play late by up to half a
    packet: 64 ms for 8 kHz AAC."""
    move_packet(p, -shift)
    t = p.pts if p.pts is not None else p.dts
    return t is None or t >= 0 or (edit_list and t + (p.duration or 0) > 0)


def clamp_to_origin(p, shift: int = 0) -> bool:
    """Move packet ``p`` ``shift`` ticks (its time base) earlier for a container without start
    times (see _NO_START_TIMES); False if it then lies before 0 and is to be left out.

    Such a container plays each stream's first packet at 0, whatever its time: of the packets
    around the origin the one nearest to it is kept (moved to 0, an error of under half a
    packet), those mostly before it are left out."""
    move_packet(p, -shift)
    t = p.pts if p.pts is not None else p.dts
    if t is None or t >= 0:
        return True
    if t + (p.duration or 0) / 2 < 0:
        return False
    p.pts = 0 if p.pts is not None else None
    p.dts = 0 if p.dts is not None else None
    return True


def advance_timecode(tc: str, frames: int, rate: Fraction) -> str | None:
    """SMPTE timecode ``tc`` (``HH:MM:SS:FF``; ``;`` before the frames for drop-frame) moved
    ``frames`` frames on at frame rate ``rate``, wrapping at 24 h; ``None`` if it cannot be read or
    its rate is one timecode cannot count (drop-frame is only defined for 29.97 and 59.94 fps).

    The timecode labels the first frame: a clip cut ``frames`` frames in must say where its own
    first frame was, or an editor conforming by timecode places it that much too early."""
    parts = tc.replace(";", ":").replace(".", ":").split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts) or not rate or rate <= 0:
        return None
    hh, mm, ss, ff = (int(p) for p in parts)
    fps = round(rate)
    drop = ";" in tc or "." in tc
    if fps <= 0 or ff >= fps or mm >= 60 or ss >= 60:
        return None
    day = 24 * 3600 * fps
    if not drop:
        n = (((hh * 60 + mm) * 60 + ss) * fps + ff + frames) % day
        return f"{n // fps // 3600:02d}:{n // fps // 60 % 60:02d}:{n // fps % 60:02d}:{n % fps:02d}"
    if fps not in (30, 60) or abs(float(rate) - fps * 1000 / 1001) > 0.01:
        return None
    d = fps // 15  # frame numbers skipped each minute (2 at 29.97, 4 at 59.94), except every tenth
    minutes = hh * 60 + mm
    n = ((hh * 3600 + mm * 60 + ss) * fps + ff) - d * (minutes - minutes // 10) + frames
    per10, per1 = fps * 600 - 9 * d, fps * 60 - d
    n %= 24 * 6 * per10
    tens, rem = divmod(n, per10)
    n += 9 * d * tens + (d * ((rem - d) // per1) if rem > d else 0)
    return f"{n // fps // 3600 % 24:02d}:{n // fps // 60 % 60:02d}:{n // fps % 60:02d};{n % fps:02d}"


def set_container_sar(stream, sar: Fraction) -> bool:
    """Set ``AVStream.sample_aspect_ratio`` of an output ``stream`` (before the header is written).

    Matroska/WebM write the display size from the *stream's* SAR only, which PyAV cannot set
    (PyAV-Org/PyAV#764: it sets the codec's, which mp4/mov/avi and the H.264/HEVC VUI use). A
    VP9/AV1/FFV1 track in .mkv/.webm would otherwise lose it (VP9/AV1 bitstreams have no SAR
    field). The field is written through the stream's C struct, only after checking that the
    pointer found there is this stream (its index, media type and codec id) and that its SAR is
    still unset; else nothing is touched and False is returned (the caller reports it).
    """
    import ctypes

    try:
        # The offsets below were read from PyAV 18's stream object and FFmpeg 8's AVStream (the
        # wheels' build): any other PyAV major version is not touched (reported by the caller).
        if (sys.implementation.name != "cpython" or ctypes.sizeof(ctypes.c_void_p) != 8
                or av.__version__.split(".")[0] != "18"):
            return False
        # Cython object: PyObject_HEAD (16 bytes), vtable pointer, then `AVStream *ptr` (av/stream.pxd).
        ptr = ctypes.c_void_p.from_address(id(stream) + 24).value
        if not ptr:
            return False
        # AVStream (FFmpeg >= 6.1): av_class, index @8, id, codecpar @16, ..., sample_aspect_ratio @72
        par = ctypes.c_void_p.from_address(ptr + 16).value
        codec = getattr(getattr(stream, "codec_context", None), "codec", None)
        if (not par or ctypes.c_int.from_address(ptr + 8).value != stream.index
                or ctypes.c_int.from_address(par).value != 0  # AVMEDIA_TYPE_VIDEO
                or codec is None or ctypes.c_int.from_address(par + 4).value != codec.id
                or ctypes.c_int.from_address(ptr + 72).value != 0):
            return False
        ctypes.c_int.from_address(ptr + 72).value = sar.numerator
        ctypes.c_int.from_address(ptr + 76).value = sar.denominator
        return True
    except (AttributeError, TypeError, ValueError, OverflowError):
        return False


def clear_initial_padding(stream) -> bool:
    """Set ``AVCodecParameters.initial_padding`` of a copied (template) output audio ``stream`` to
    0, before the header is written; True if it is 0 now.

    The padding is the encoder's priming (AAC: 1024 samples), which Matroska writes as its
    CodecDelay and mp4 as Opus's pre-skip: decoders drop that many samples from the start. A
    stream whose first packets were cut (``--start``) no longer begins with the priming packet,
    so the delay would drop the first *real* packet instead (128 ms at 8 kHz). PyAV has no
    setter: the field is written through the C struct as :func:`set_container_sar` does, only
    after checking that the pointer is this audio stream's (media type, codec id, sample rate and
    frame size where expected), and copied into the stream's codec context with FFmpeg's own
    ``avcodec_parameters_to_context`` (PyAV rebuilds the parameters from the context when the
    header is written). Call it right after ``add_stream_from_template``: the context is reset to
    the parameters (extradata included)."""
    import ctypes

    try:
        if (sys.implementation.name != "cpython" or ctypes.sizeof(ctypes.c_void_p) != 8
                or av.__version__.split(".")[0] != "18"):
            return False
        ptr = ctypes.c_void_p.from_address(id(stream) + 24).value  # AVStream * (see set_container_sar)
        par = ctypes.c_void_p.from_address(ptr + 16).value if ptr else None
        cc = getattr(stream, "codec_context", None)
        codec = getattr(cc, "codec", None)
        # AVCodecParameters (FFmpeg 7/8): codec_type @0, codec_id @4, ch_layout @128 (24 bytes),
        # sample_rate @152, block_align, frame_size @160, initial_padding @164
        if (not par or codec is None or ctypes.c_int.from_address(par).value != 1  # AVMEDIA_TYPE_AUDIO
                or ctypes.c_int.from_address(par + 4).value != codec.id
                or ctypes.c_int.from_address(par + 152).value != (cc.sample_rate or -1)
                or ctypes.c_int.from_address(par + 160).value != (cc.frame_size or 0)):
            return False
        # PyAV's CodecContext: PyObject_HEAD, vtable pointer, then `AVCodecContext *ptr` (av/codec/context.pxd);
        # AVCodecContext: av_class, log_level_offset @8, codec_type @12, codec @16, codec_id @24
        ctx = ctypes.c_void_p.from_address(id(cc) + 24).value
        if (not ctx or ctypes.c_int.from_address(ctx + 12).value != 1
                or ctypes.c_int.from_address(ctx + 24).value != codec.id):
            return False
        if ctypes.c_int.from_address(par + 164).value == 0:
            return True  # (mp4/mov inputs: their edit list, not a delay, hides the priming)
        lib = _libavcodec()
        if lib is None:
            return False
        ctypes.c_int.from_address(par + 164).value = 0
        return lib.avcodec_parameters_to_context(ctypes.c_void_p(ctx), ctypes.c_void_p(par)) >= 0
    except (AttributeError, TypeError, ValueError, OverflowError, OSError):
        return False


@functools.lru_cache(maxsize=1)
def _libavcodec():
    """The libavcodec PyAV runs on (its wheel's copy, already loaded), through ctypes; ``None``
    when it cannot be found."""
    import ctypes
    import glob

    here = os.path.dirname(os.path.dirname(av.__file__))
    libs = sorted(glob.glob(os.path.join(here, "av.libs", "libavcodec*.so*")))
    if not libs:
        return None
    lib = ctypes.CDLL(libs[0])
    lib.avcodec_parameters_to_context.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.avcodec_parameters_to_context.restype = ctypes.c_int
    return lib


def _video_formats(encoder: str) -> set[str]:
    try:
        return {f.name for f in (av.codec.Codec(encoder, "w").video_formats or [])}
    except (ValueError, av.error.FFmpegError):  # not in this build
        return set()


def choose_high_pix_fmt(source_pix_fmt: str, supported) -> str | None:
    """The pixel format to encode a >8-bit source with, from the encoder's ``supported`` ones.

    Keeps the source's bit depth (12-bit stays 12-bit where the encoder has it, 16-bit becomes
    12 or 10) and its chroma (4:2:2 / 4:4:4; grey and 4:1:1 become 4:2:0), trading chroma
    before depth: 10-bit 4:2:0 over 8-bit anything, because banding shows more than chroma
    resolution. ``None`` when the encoder has no format above 8 bits (libvpx-vp9 built 8-bit
    only, mpeg4, ...): the caller then writes 8-bit and says so.
    """
    bits = bits_per_component(source_pix_fmt)
    chroma = chroma_of(source_pix_fmt)
    depths = [d for d in (12, 10) if d <= max(bits, 10)]
    for c in dict.fromkeys((chroma, "420")):
        for d in depths:
            pix = f"yuv{c}p{d}le"
            if pix in supported:
                return pix
    return None


def prores_pix(source_pix_fmt: str, alpha: bool = False) -> str:
    """ProRes's pixel format for a source: 10-bit 4:2:2 (HQ), or 4:4:4 (4444) for 4:4:4 sources
    and transparency."""
    return "yuv444p10le" if alpha or chroma_of(source_pix_fmt) == "444" else "yuv422p10le"


def _even_sides(encoder: str, pix_fmt: str, *, hardware: bool = False) -> tuple[bool, bool]:
    """Whether ``encoder`` needs an even (height, width) for ``pix_fmt``: see
    ``FileSink._subsampled``."""
    if hardware:
        return True, True
    if encoder in _ODD_SIZE_ENCODERS:
        return False, False
    fmt = av.VideoFormat(pix_fmt)
    return fmt.chroma_height(3) < 3, fmt.chroma_width(3) < 3


def _software_pix(encoder: str, source_pix_fmt: str) -> str:
    """The 8-bit pixel format a software ``encoder`` writes a ``source_pix_fmt`` source with (see
    FileSink._choose_pix)."""
    cand = _unjpeg(source_pix_fmt)
    return cand if cand in ("yuv422p", "yuv444p") and cand in _video_formats(encoder) else "yuv420p"


def _unjpeg(pix_fmt: str) -> str:
    """The limited-range name of a full-range JPEG format (the range itself travels as a tag):
    ``yuvj444p`` (full-range 4:4:4, a deliberate choice: OBS "I444, full range") keeps 4:4:4;
    ``yuvj422p`` (MJPEG's default, not a choice; H.264 4:2:2 plays in few places) and every other
    ``yuvj*`` become 4:2:0."""
    if pix_fmt == "yuvj444p":
        return "yuv444p"
    return "yuv420p" if pix_fmt.startswith("yuvj") else pix_fmt


#: the sample rates FFmpeg's AAC encoder opens at (MPEG-4's table); another (192 kHz masters,
#: 47.952 kHz pull-down audio) made the whole run fail ("avcodec_open2 returned 22")
_AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)


def _encoder_rate(codec: str, rate: int) -> int:
    """The sample rate audio transcoded to ``codec`` is written at: Opus 48 kHz; AAC the input's
    where it takes it, else the nearest rate it takes (at most 96 kHz); else the input's."""
    if codec == "libopus":
        return 48000
    if codec == "aac" and rate not in _AAC_RATES:
        return min(_AAC_RATES, key=lambda r: (abs(r - rate), -r))
    return rate


#: the usual speaker layout for a number of channels (what AAC and Opus number them in)
_USUAL_LAYOUTS = {3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


@functools.lru_cache(maxsize=None)
def _encoder_takes(codec: str, rate: int, layout: str) -> bool:
    """True if the audio encoder ``codec`` opens with this channel ``layout`` (libopus: up to 8
    channels in Vorbis order, e.g. ``5.1`` but not ``5.1(side)``; FFmpeg's aac: 5.1, 7.1, ...)."""
    try:
        cc = av.CodecContext.create(codec, "w")
        cc.sample_rate, cc.layout = rate, layout
        cc.format = cc.codec.audio_formats[0].name
        cc.open()
        return True
    except (av.error.FFmpegError, ValueError):
        return False


#: the layouts libopus writes in the order its decoders read back: 5.0 and 6.1 came back with
#: centre and surrounds rotated (FFmpeg's wrapper and both decoders agree, so it is the mapping)
_OPUS_SAFE = frozenset({"mono", "stereo", "3.0", "quad", "5.1", "7.1"})


def _speakers(layout: str) -> list[str]:
    return [c.name for c in av.AudioLayout(layout).channels]


def _keep_layout(codec: str, rate: int, layout: str | None, channels: int | None) -> str:
    """The channel layout audio transcoded to ``codec`` is written with, where the encoder takes
    it: the usual layout for as many ``channels`` (5.1(side) -> 5.1: the surround pair named back
    instead of side, as FFmpeg's own transcodes do; AAC signals only those in its header), unless
    that would lose the LFE (2.1 is not 3.0); else the input's ``layout`` as it is; else a larger
    usual layout holding as many speakers and the LFE (2.1/3.1/4.1 -> 5.1, and for Opus, whose
    5.0/6.1 come back scrambled, 5.0 -> 5.1, 6.1 -> 7.1); else stereo (mono stays mono). The
    caller says "downmixed" when channels are lost."""
    try:
        names = _speakers(layout) if layout else None
    except ValueError:
        names = None
    n = channels or (len(names) if names else 2)
    if n <= 2:
        return "stereo" if n == 2 else "mono"
    lfe = names is not None and "LFE" in names
    usual = _USUAL_LAYOUTS.get(n)
    cands = [usual] if usual and (names is None or ("LFE" in _speakers(usual)) == lfe) else []
    cands += [layout] if layout else []
    cands += [big for m, big in sorted(_USUAL_LAYOUTS.items()) if m > n and (not lfe or "LFE" in _speakers(big))]
    for cand in dict.fromkeys(cands):
        if codec == "libopus" and cand not in _OPUS_SAFE:
            continue
        try:
            if len(_speakers(cand)) >= n and _encoder_takes(codec, rate, cand):
                return cand
        except ValueError:  # a layout name this FFmpeg cannot parse
            continue
    return "stereo"


def _describe(stream) -> str:
    """A name for a stream without a codec context (data tracks): its handler, else the codec
    FFmpeg names (``klv``), else "unknown codec"."""
    from stream_gpen.io._source import _data_codec

    md = getattr(stream, "metadata", None) or {}
    return md.get("handler_name") or _data_codec(stream) or "unknown codec"


#: FFmpeg's AVChromaLocation values and names (1..6; 0 "unspecified" is not written)
_CHROMA_LOCATIONS = {1: "left", 2: "center", 3: "topleft", 4: "top", 5: "bottomleft", 6: "bottom"}

#: a gap in transcoded audio longer than this (seconds) is filled with silence; shorter ones are
#: the source's own packet jitter
_AUDIO_GAP_S = 0.04


@functools.lru_cache(maxsize=1)
def _machine_tag() -> str:
    """8 hex digits naming this machine's boot and this process namespace: process ids mean
    something only among the processes that share both (another machine writing into a shared
    folder, or another container, has its own)."""
    import hashlib
    import socket

    parts = [socket.gethostname()]
    for p in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(os.readlink(p) if p.endswith("pid") else Path(p).read_text().strip())
        except OSError:
            parts.append("")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:8]


@functools.lru_cache(maxsize=1)
def _pids_comparable() -> bool:
    """Whether :func:`_machine_tag` names this process namespace for sure: on Linux it reads the
    namespace, elsewhere (macOS, Windows) there are no containers sharing the host name; where
    /proc could not be read (a sandbox) two containers may share a tag, and a process id of one
    means nothing in the other."""
    if not sys.platform.startswith("linux"):
        return True
    try:
        os.readlink("/proc/self/ns/pid")
    except OSError:
        return False
    return True


#: a live source's recording reaches the disk at least this often (milliseconds of its frames)
LIVE_FLUSH_MS = 1000


def _live_flush(fmt_name: str) -> dict[str, str]:
    """The muxer options that put a live source's recording on the disk as it is made, so that a
    ``kill -9`` or a power cut loses at most about :data:`LIVE_FLUSH_MS` of it (the kept
    ``.live.tmp``, see :meth:`FileSink._remove_stale_temps`): each packet is written out at once
    (FFmpeg held them in its write buffer: a camera's low-bitrate ``.mkv`` was 0 bytes on disk
    after 43 s of recording, all of it lost), and a Matroska/WebM cluster, which the muxer keeps
    whole in memory until it ends (5 s by default), ends every second. More, smaller writes: a
    few dozen a second, nothing beside an encoder's work.

    An mp4/mov has no index until it is finished (its ``moov``, written last): a killed
    recording did not open at all, and was removed. It is written fragmented while it is made
    (an empty ``moov``, then a ``moof`` index before each :data:`LIVE_FLUSH_MS` of samples), so
    what reached the disk plays, and at its clean end FFmpeg's ``hybrid_fragmented`` makes it a
    regular mp4 in place (one ``mdat``, the whole index written after it, as a file's run's mp4):
    its frame count is in its header, players that handle fragments poorly see an ordinary file,
    and nothing is copied (a remux into a regular file at the end would read and write an hour's
    recording again). Measured with FFmpeg 8: the finished file's frames, times, audio and
    duration are those of a regular mp4 (``use_editlist``: its edit list hides the AAC priming
    as there; without it the audio played 1024 samples, 21 ms, late). A killed one plays its
    audio those 21 ms late (its ``moov``, written empty before the first packet, has no edit
    list); written with the first fragment instead (``hybrid_fragmented``'s default), that
    ``moov``'s edit list made FFmpeg's reader skip the killed recording's whole first second.
    (Not ``faststart``: nothing here moves the index to the front, which would rewrite the file.)"""
    options = {"flush_packets": "1"}
    if fmt_name in ("matroska", "webm"):
        options["cluster_time_limit"] = str(LIVE_FLUSH_MS)
    elif set(fmt_name.split(",")) & _LIVE_FRAGMENTED:
        options.update(movflags="hybrid_fragmented+empty_moov+default_base_moof", use_editlist="1",
                       frag_duration=str(LIVE_FLUSH_MS * 1000))  # (microseconds)
    return options


def _temp_pattern(suffix: str):
    """The hidden temporary output's tag (``.<machine>-<pid>-<random>[.live].tmp``) ending a name
    with ``suffix``: group 1 the machine, 2 the process id, 3 ``.live`` for a live source's
    recording (see :meth:`FileSink._remove_stale_temps`)."""
    return re.compile(r"\.([0-9a-f]{8})-(\d+)-[0-9a-f]{8}(\.live)?\.tmp" + re.escape(suffix) + "$")


def output_in_progress(target) -> int | None:
    """The process id of another live run of this machine writing ``target`` now (its hidden
    temporary output ``.NAME.<machine>-<pid>-<random>.tmp.EXT`` is beside it), else None. A
    resumed folder run (skip_existing) leaves such a video to that run: both restored it, and the
    one to finish second failed on the first one's output. A temporary output of another machine
    or container (whose process id means nothing here) counts while it is being written (changed
    within :attr:`FileSink.STALE_TEMP_S`): its id is returned as 0."""
    t = Path(target)
    pattern = _temp_pattern(t.suffix)
    try:
        candidates = list(t.parent.glob(f".*.tmp{t.suffix}"))
    except OSError:
        return None
    here, now = _machine_tag(), time.time()
    for q in candidates:
        m = pattern.search(q.name)
        if m is None or hidden_temp(t, m.group(0)[: len(m.group(0)) - len(t.suffix)]).name != q.name:
            continue
        pid = int(m.group(2))
        if m.group(1) == here and _pids_comparable():
            if pid != os.getpid() and _pid_alive(pid):
                return pid
            continue
        try:
            if now - q.stat().st_mtime < FileSink.STALE_TEMP_S and not (m.group(1) == here and pid == os.getpid()):
                return 0
        except OSError:
            continue
    return None


def _whole_fragments(path) -> None:
    """Cut a fragmented mp4/mov that was never finished (a live recording killed, or stopped by a
    full disk) after its last whole fragment: the cut one's samples are listed in full by its
    ``moof`` while its ``mdat`` stops short, and a decoder given the last, short one fails with
    "Invalid data" (a player stops there, or shows garbage). Left as it is where no fragment is
    whole (the first one's samples that did reach the disk still play), and anything not mp4/mov."""
    try:
        with open(path, "r+b") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            if len(head) < 8 or head[4:8] != b"ftyp":
                return
            at, whole, moof, fragments = 0, 0, None, 0  # (moof: where the fragment whose mdat is awaited starts)
            while at + 8 <= size:
                f.seek(at)
                h = f.read(16)
                n, kind = struct.unpack(">I4s", h[:8])
                if n == 1 and len(h) >= 16:
                    n = struct.unpack(">Q", h[8:16])[0]
                if n < 8 or at + n > size:
                    break  # (a box the cut went through, or one that runs to the end: size 0)
                if kind == b"moof":
                    moof = at
                elif kind == b"mdat":
                    fragments += moof is not None
                    moof = None
                at += n
                if moof is None:
                    whole = at
            if whole < size and fragments:
                f.truncate(whole)
                log.debug("cut %s after its last whole fragment (%d of %d bytes)", path, whole, size)
    except (OSError, struct.error):
        pass


def _playable_frames(path) -> int:
    """The video frames a file that was never finished holds where its format plays without a
    trailer (Matroska/WebM, MPEG-TS, FLV, a fragmented mp4/mov such as a live recording's: see
    :func:`_live_flush`, first cut after its last whole fragment by :func:`_whole_fragments`; a
    regular mp4/mov without its index does not open): checked by decoding its first frame and
    counted by its whole packets (a truncated .mkv decoded 23 frames of its 23 packets; the
    demuxer flags one a cut went through, FLV's last); 0 where nothing plays."""
    _whole_fragments(path)
    n, seen = 0, False
    try:
        with av.open(ffmpeg_local(path)) as c:
            v = c.streams.video[0]
            for p in c.demux(v):
                if not p.size or p.is_corrupt:
                    continue
                if not seen:
                    seen = bool(p.decode())
                n += 1
    except (av.error.FFmpegError, ValueError, IndexError, OSError) as e:
        log.debug("reading back the frames of %s: %s", path, e)
    return n if seen else 0


def _rename_partial(path, target) -> Path:
    """Move ``path`` to ``target``'s first free ``NAME.partial.EXT`` (``NAME.partial-1.EXT``...):
    an earlier stopped run's part (stopped at 90 %, this one at 2 %) is never replaced."""
    t = Path(target)
    for k in range(100):
        q = hidden_temp(t, ".partial" + (f"-{k}" if k else ""), hidden=False)
        if os.path.lexists(q):
            continue
        try:
            os.rename(path, q)  # (the name is free; where it was just taken: the next)
        except FileExistsError:
            continue
        return q
    q = hidden_temp(t, ".partial", hidden=False)
    os.replace(path, q)
    return q


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is still there (or its id was taken again), asked
    without signalling it; when in doubt, alive (a live run's temporary output is never removed).

    POSIX: ``kill(pid, 0)``. Windows has no signal 0: ``os.kill(pid, 0)`` there is CTRL_C_EVENT,
    sent to the console group ``pid`` (a spurious Ctrl-C), and it never says "no such process",
    so no leftover was ever removed; the process is looked up with OpenProcess instead."""
    if os.name == "nt":
        return _pid_alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # (PermissionError: another user's live process)
        return True
    return True


def _kernel32():
    """Windows' kernel32, typed for :func:`_pid_alive_windows` (a function, so tests can stand in
    for it on other systems)."""
    import ctypes

    k = ctypes.WinDLL("kernel32", use_last_error=True)
    k.OpenProcess.argtypes, k.OpenProcess.restype = (ctypes.c_uint32, ctypes.c_int, ctypes.c_uint32), ctypes.c_void_p
    k.GetExitCodeProcess.argtypes = (ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32))
    k.GetExitCodeProcess.restype = ctypes.c_int
    k.CloseHandle.argtypes, k.CloseHandle.restype = (ctypes.c_void_p,), ctypes.c_int
    return k


def _last_error() -> int:
    import ctypes

    return ctypes.get_last_error()


def _pid_alive_windows(pid: int) -> bool:
    """OpenProcess refuses an id no process has with ERROR_INVALID_PARAMETER (dead); any other
    refusal (access denied: another user's process) means it exists. An open process is alive
    while its exit code reads STILL_ACTIVE (a process that has exited but whose handle another
    program still holds is dead)."""
    import ctypes

    k = _kernel32()
    h = k.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not h:
        return _last_error() != 87  # ERROR_INVALID_PARAMETER: no such process
    try:
        code = ctypes.c_uint32()
        if not k.GetExitCodeProcess(h, ctypes.byref(code)):
            return True
        return code.value == 259  # STILL_ACTIVE
    finally:
        k.CloseHandle(h)


#: copied audio codecs whose packets are decoded on the side to count the damaged ones
#: (:meth:`FileSink._check_copied`): compressed, cheap to decode, and damage shows as an error
_CHECKED_AUDIO = frozenset({"aac", "aac_latm", "mp3", "mp2", "opus", "vorbis", "ac3", "eac3", "flac", "alac"})


def _damage_check(ins):
    """A throwaway decoder for the copied audio stream ``ins``, or ``None`` (another codec, or
    one that does not open: the copy goes on unchecked)."""
    try:
        ctx = ins.codec_context
        if ctx.name not in _CHECKED_AUDIO:
            return None
        d = av.CodecContext.create(ctx.name, "r")
        if ctx.extradata:
            d.extradata = ctx.extradata
        if ctx.sample_rate:
            d.sample_rate = ctx.sample_rate
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            d.layout = ctx.layout
        d.open()
        return d
    except (av.error.FFmpegError, ValueError, AttributeError, TypeError):
        return None


#: a process's stream as a path names it: ``/dev/stdout``, ``/dev/fd/N``, ``/proc/PID/fd/N``
STREAM_PATH = re.compile(r"/dev/(fd/|std(in|out|err)$)|/proc/[^/]+(/task/[^/]+)?/fd/")


def _process_stream(target) -> bool:
    """``target`` is, or is a link to, a process's stream: ``/dev/stdout``, ``/dev/fd/N``,
    ``/proc/self/fd/N``. Followed link by link: os.stat sees only where the stream goes (a file
    stdout was redirected to is a regular file; the run replaced the link with a new file and the
    redirected file stayed empty), realpath only the last name."""
    try:
        p = os.path.abspath(os.fspath(target))
    except (TypeError, ValueError):
        return False
    for _ in range(40):  # (a loop of links: as the OS, give up)
        for q in (p, os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))):
            if STREAM_PATH.match(q):
                return True
        try:
            p = os.path.join(os.path.dirname(p), os.readlink(p))
        except (OSError, ValueError):  # (not a link)
            return False
        p = os.path.normpath(p)
    return False


def check_not_special(target) -> None:
    """Refuse an existing ``target`` that is not a regular file (or a folder, whose own checks
    apply): a named pipe, a device, a socket. The output is written to a temporary file renamed
    over the target, which replaced a pipe with a plain file (its reader waited for ever); no
    container is written into a pipe or device here. (The command line sends ``-o /dev/null`` to
    the null sink before this; the API's is ``"null"``.)"""
    import stat

    if _process_stream(target):
        raise InvalidInputError(f"output {target} is a process's stream (standard output, /dev/fd/N): writing to "
                                "stdout is not supported; the output is written to a file and renamed into place",
                                hint="name a regular file as dst (dst=\"null\" restores without writing anything)")
    try:
        mode = os.stat(target).st_mode
    except (OSError, ValueError):  # (absent: the usual case)
        return
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise InvalidInputError(f"output {target} is {kind}: the output is written to a file and renamed into place, "
                            "which would replace it",
                            hint="name a regular file as dst (dst=\"null\" restores without writing anything)")


def check_output_folder(target, *, named=None, made: bool = False) -> None:
    """The folder an output file goes into (``made``: an output folder, made with the folders
    above it), before any work: a file on its path (``photo.jpg/x.png``) is refused as a file (a
    photo was restored, then failed with a bare FileExistsError; a video said "output folder does
    not exist" of it), a folder that is not there too (a photo's was made, a mistyped name and
    all, a video's refused), and one this process may not write into (:func:`check_output_writable`;
    ``made``: the output folder itself, where it exists). ``named``: the output as the caller gave
    it (``dst``), for the message."""
    t = Path(target)
    above = next((p for p in t.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise InvalidInputError(f"the output's folder {above} is a file, not a folder: dst={str(named or t)!r}",
                                hint="choose another dst, in a folder (the file's own folder, or a new one)")
    if not made and not t.parent.is_dir():
        raise InvalidInputError(f"output folder does not exist: {t.parent}", hint="create it, or choose another dst")
    # (a read-only one failed once the work was done: a photo with a bare PermissionError, a video
    # saying its folder had "disappeared during the run"; a folder to be made is tried at once)
    check_output_writable(t if made else t.parent)


#: the file system's "no room": a full drive, this user's disk quota spent
FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def refused_in(folder, e: BaseException | None) -> bool:
    """``e`` is the file system refusing a file of ``folder`` (:data:`REFUSED_ERRNOS`), naming one
    there or none: not another file's (an encoder refusing to open says EPERM too)."""
    if not (isinstance(e, OSError) and e.errno in REFUSED_ERRNOS):
        return False
    named = getattr(e, "filename", None)
    return named is None or os.path.dirname(os.path.abspath(str(named))) == os.path.abspath(folder)


def not_writable(folder, err: OSError | None = None) -> OutputNotWritableError:
    """The error of an output ``folder`` this process may not write into (``err``: the refused
    write's, where there was one), with the file system's ``errno``; one that could not be made,
    the nearest folder above it that is there (the one that refused it)."""
    if not Path(folder).is_dir():
        folder = next((q for q in Path(folder).parents if q.is_dir()), Path(folder).parent)
    code = getattr(err, "errno", None)
    if code is None:  # (told before any write: a read-only mount, else the folder's permissions)
        try:
            code = errno.EROFS if os.statvfs(folder).f_flag & os.ST_RDONLY else errno.EACCES
        except (AttributeError, OSError, ValueError):  # (Windows: no statvfs)
            code = errno.EACCES
    why = ("it is on a read-only drive" if code == errno.EROFS else
           "it is the kernel's (/proc, /sys), which takes no files" if kernel_folder(folder) else "permission denied")
    e = OutputNotWritableError(f"cannot write into the output folder {folder}: {why}",
                               hint="choose another dst, in a folder you may write into (or make this one "
                                    "writable: its permissions, or how its drive is mounted)")
    e.errno = code  # (as the OSError it stands for: a folder run stops at it, as at a full disk)
    return e


def check_output_writable(folder) -> None:
    """:func:`not_writable` raised where ``folder`` exists and this process may not make files in it
    (write and search permission; a read-only drive). A folder that is not there is left to the
    caller's own check (made, or refused as missing)."""
    f = Path(folder)
    if f.is_dir() and (kernel_folder(f) or not os.access(f, os.W_OK | os.X_OK)):
        raise not_writable(f)


def kernel_folder(folder) -> bool:
    """``folder`` is in /proc or /sys (``/dev/fd`` is /proc/self/fd): no file can be made there,
    though os.access says it may be written (root; a process's own /proc/self/fd), so the run
    restored every frame and failed at the end."""
    path = os.path.realpath(folder)
    return path in ("/proc", "/sys") or path.startswith(("/proc/", "/sys/"))


def keep_beside(tmp, target) -> Path | None:
    """Move a finished temporary output that could not replace ``target`` (Windows: ``target`` is
    open in another program, or read-only) to a visible name beside it, ``NAME.restored.EXT``
    (``NAME.restored-1.EXT``, ... where taken: an earlier result is never replaced); that name, or
    ``None`` when even this rename failed (``tmp`` is then where it was)."""
    for k in range(100):
        q = hidden_temp(target, ".restored" + (f"-{k}" if k else ""), hidden=False)
        if q.exists():
            continue
        try:
            os.rename(tmp, q)  # (the name is free; on Windows a rename never replaces)
        except FileExistsError:
            continue
        except OSError:
            return None
        return q
    return None


def place_new(tmp, target) -> None:
    """Move the finished temporary output ``tmp`` to ``target`` where no ``overwrite`` was asked:
    never over a file that is there now (``FileExistsError``). A hard link then the unlink of
    ``tmp`` is atomic about it (``os.replace`` replaced a file another run wrote during this one);
    where the file system has no hard links (FAT, exFAT, some shares), a check then the rename."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        if os.path.islink(target) and not os.path.exists(target):
            # a dangling symlink: no file there, as the start's check saw it (it follows links);
            # replaced by the output, as before
            os.replace(tmp, target)
            return
        raise
    except OSError:
        if os.path.exists(target):  # (a dangling symlink is no file: replaced, as above)
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
        os.replace(tmp, target)
        return
    try:
        os.unlink(tmp)
    except OSError:  # (the output is in place; a hidden leftover is removed by a later run)
        pass


def keep_mode(old, new) -> None:
    """Give ``new`` (a finished temporary output) the permission bits of the ``old`` file it is
    about to replace (``--overwrite``, an in-place run), so that a private video or photo stays
    private, as ``sed -i`` keeps it; nothing when there is no old file or the bits cannot be set.
    Only a regular file's: a folder in the output's place (``-o out --overwrite`` with a folder
    ``out/a.jpg``) gave the photo kept beside it its 0755, executable."""
    import stat

    try:
        if stat.S_ISREG(os.stat(old).st_mode):
            shutil.copymode(old, new)
    except OSError:
        pass


def webm_refuses(codec: str) -> str | None:
    """Why WebM cannot hold ``codec`` (H.264/HEVC: WebM is VP8/VP9/AV1 only), or ``None``."""
    if codec in ("h264", "hevc"):
        return f"codec={codec!r} cannot go into webm; use codec='vp9' or codec='av1', or a .mp4/.mkv name"
    return None


# What each container family holds of the codecs the sink writes, as FFmpeg 8's muxers take them
# (each pair tried with PyAV: written, then read back). The ones missing fail only mid-run (mp4 and
# webm refuse ProRes, mov VP9/AV1 "returned 22", avi HEVC) or, worse, not at all: mpegts takes
# VP9/AV1/ProRes packets as an unnamed data stream, a file with no readable video. Matroska holds
# them all; FLV (enhanced) holds HEVC/VP9/AV1 too. Only FFmpeg's own "mp4" muxer takes
# HEVC/AV1/VP9: its ipod (.m4v), 3gp/3g2 and f4v muxers take H.264 alone ("'ipod' format does not
# support 'libx265' codec"), ismv H.264/HEVC.
_VIDEO_IN = {
    "mp4": ("h264", "hevc", "av1", "vp9"),
    "m4v": ("h264",),
    "ismv": ("h264", "hevc"),
    "mov": ("h264", "hevc", "prores"),
    "webm": ("vp9", "av1"),
    "mpegts": ("h264", "hevc"),
    "hls": ("h264", "hevc", "av1"),
    "avi": ("h264", "av1", "vp9"),
    "flv": ("h264", "hevc", "av1", "vp9"),
}
# (a DASH manifest's segments are fragmented MP4: judged as such, an .mpd took ProRes up to the mp4
# muxer's refusal at the first frame, an init segment left behind. An HLS playlist's are MPEG-TS,
# or fMP4 for the codecs TS cannot carry to Apple's players, see _HLS_FMP4_CODECS: TS's H.264 and
# HEVC, and AV1. Judged as TS, an .m3u8 took VP9/ProRes as segments with no readable video)
_FAMILY_OF_MUXER = {"mp4": "mp4", "ipod": "m4v", "3gp": "m4v", "3g2": "m4v", "psp": "m4v", "ismv": "ismv",
                    "f4v": "m4v", "mov": "mov", "webm": "webm", "mpegts": "mpegts", "rtp_mpegts": "mpegts",
                    "avi": "avi", "flv": "flv", "hls": "hls", "dash": "mp4"}
_FAMILY_OF_EXT = {".mp4": "mp4", ".m4v": "m4v", ".3gp": "m4v", ".3g2": "m4v", ".f4v": "m4v", ".ismv": "ismv",
                  ".mov": "mov", ".qt": "mov", ".webm": "webm", ".ts": "mpegts", ".mts": "mpegts",
                  ".m2ts": "mpegts", ".m2t": "mpegts", ".avi": "avi", ".flv": "flv", ".m3u8": "hls",
                  ".mpd": "mp4"}
#: how a family is named in messages, where its muxer's name says little
_FAMILY_SHOWN = {"m4v": "the .m4v/.3gp/.3g2/.f4v family"}
_WAY_OUT = {
    "prores": "ProRes goes into .mov or .mkv",
    "vp9": "VP9/AV1 go into .mp4, .mkv or .webm",
    "av1": "VP9/AV1 go into .mp4, .mkv or .webm",
    "hevc": "HEVC goes into .mp4, .mkv, .mov or .ts",
    "h264": "H.264 goes into .mp4, .mkv, .mov, .ts or .avi",
}


def _family(target, fmt: str | None) -> tuple[str | None, str]:
    """(container family, the name users know it by) from a muxer name, else the file name."""
    text = str(target).lower()
    if fmt is None and "://" in text:  # a stream URL: the muxer its scheme writes with
        fmt = _STREAM_FORMATS.get(text.split("://", 1)[0])
    ext = "" if "://" in text else text if text.startswith(".") and "/" not in text else os.path.splitext(text)[1]
    if fmt is not None:
        fam = next((_FAMILY_OF_MUXER[f] for f in fmt.split(",") if f in _FAMILY_OF_MUXER), None)
        return fam, ext or fmt.split(",")[0]
    return _FAMILY_OF_EXT.get(ext), ext


def _segment_stem(dst: Path) -> str:
    """``dst``'s stem as the HLS/DASH muxers' segment names take it (a '%' or '$' would be read as
    part of their patterns)."""
    return dst.stem.replace("%", "_").replace("$", "_")


#: the video codecs an .m3u8 output writes as fragmented-MP4 segments (``NAME_0.m4s`` ..., with
#: their init segment ``NAME_init.mp4``, the playlist's ``#EXT-X-MAP``) rather than MPEG-TS:
#: Apple's HLS authoring spec takes HEVC and AV1 in fMP4 only (Safari and iOS do not play HEVC in
#: TS; MPEG-TS has no AV1 mapping at all: FFmpeg's mpegts muxer wrote it as an unnamed data stream).
#: H.264 stays in TS segments, which every HLS player plays (fMP4 needs HLS version 7)
_HLS_FMP4_CODECS = ("hevc", "av1")


def segment_names(dst, *, codec: str | None = None) -> dict[str, str]:
    """The muxer options that name the segments an .m3u8 (HLS) or .mpd (DASH) output ``dst``
    writes beside it, after its own name: ``NAME_0.ts``, ``NAME_1.ts`` ... (``NAME_0.m4s`` ...
    and ``NAME_init.mp4`` for a ``codec`` of :data:`_HLS_FMP4_CODECS`, with the segment type
    that goes with them); ``NAME_init_0.m4s``, ``NAME_chunk_0_00001.m4s`` ... (the '_' keeps two
    outputs' apart: ``clip.m3u8``'s eleventh segment was ``clip10.ts``, ``clip1.m3u8``'s first
    too, and DASH's fixed ``init-stream0.m4s`` was every manifest's in a folder). ``{}`` for
    other names."""
    dst = Path(dst)
    stem, ext = _segment_stem(dst), dst.suffix.lower()
    if ext == ".m3u8" and codec in _HLS_FMP4_CODECS:
        # (the init segment's name is taken relative to the segments' folder, as the playlist lists it)
        return {"hls_segment_type": "fmp4", "hls_segment_filename": str(dst.with_name(f"{stem}_%d.m4s")),
                "hls_fmp4_init_filename": f"{stem}_init.mp4"}
    if ext == ".m3u8":
        return {"hls_segment_filename": str(dst.with_name(f"{stem}_%d.ts"))}
    if ext == ".mpd":  # (relative names: the muxer writes them beside the manifest)
        return {"init_seg_name": f"{stem}_init_$RepresentationID$.$ext$",
                "media_seg_name": f"{stem}_chunk_$RepresentationID$_$Number%05d$.$ext$"}
    return {}


def segments_there(dst) -> list[Path]:
    """The files beside ``dst`` (an .m3u8/.mpd output) that its segments would be written over
    (see :func:`segment_names`; any segment number, and an .m3u8's of either segment type: an
    HEVC playlist's ``.m4s`` replaced by an H.264 one's ``.ts`` are the old output's too), sorted;
    ``[]`` for other outputs."""
    dst = Path(dst)
    stem, ext = re.escape(_segment_stem(dst)), dst.suffix.lower()
    if ext == ".m3u8":
        pattern = re.compile(stem + r"_(\d+\.(ts|m4s)|init\.mp4)")
    elif ext == ".mpd":
        pattern = re.compile(stem + r"_(init_\d+|chunk_\d+_\d+)\.(m4s|mp4|webm)")
    else:
        return []
    try:
        return sorted(q for q in dst.parent.iterdir() if pattern.fullmatch(q.name))
    except OSError:  # (no such folder yet: nothing there)
        return []


def _file_idents(paths) -> dict:
    """``{path: (inode, mtime_ns, size)}`` of those of ``paths`` that are there."""
    out = {}
    for q in paths:
        try:
            st = os.stat(q)
        except OSError:
            continue
        out[Path(q)] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def check_segments(dst, src, overwrite: bool, *, hint: str = "pass overwrite=True or choose another dst") -> None:
    """Refuse (:class:`OutputExistsError`) an .m3u8/.mpd output ``dst`` whose segments would be
    written over existing files (without ``overwrite``) or over the input ``src`` (even with it:
    the muxer writes them in place, not through a temporary file, while the input is read). They
    were replaced silently: ``-o hls/clip.m3u8`` of ``hls/clip0.ts`` wrote its first segment
    over its own input."""
    there = segments_there(dst)
    if not there:
        return
    src = str(src) if src is not None else ""
    if src and "://" not in src and not src.startswith("lavfi:"):
        for q in there:
            try:
                same = os.path.samefile(src, q)
            except OSError:
                same = False
            if same:  # (raised outside the try: OutputExistsError is an OSError too)
                raise OutputExistsError(f"the output {dst} would write its segment {q.name} over the input itself",
                                        hint="choose another output name (its segments are named after it)")
    if not overwrite:
        more = f" (and {len(there) - 1} more)" if len(there) > 1 else ""
        raise OutputExistsError(f"output exists: {there[0]}{more}, a segment name of {Path(dst).name}", hint=hint)


def check_output_encoding(target, codec: str, audio: str = "copy", *, fmt: str | None = None) -> None:
    """Refuse, before anything is encoded, a video ``codec`` or ``audio`` mode the output's
    container cannot hold, or a container that holds none of the sink's video (``.y4m``, ``.dv``,
    ``.gif``, ``.hevc``...: see ``_NO_VIDEO_EXTS``) (:class:`InvalidInputError`, naming the option
    and a way out).

    ``target``: the output's name or extension (``"x.mov"``, ``".ts"``) or a stream URL (judged by
    the muxer its scheme writes with: rtmp -> flv, srt/udp/tcp -> mpegts); ``fmt``: the muxer's
    name, when known (the sink passes its own). ``codec`` ``"auto"`` always fits (see
    :func:`resolve_codec`). Containers not listed in ``_VIDEO_IN`` (Matroska, unknown names) are
    left to FFmpeg. Cheap: nothing is opened, so the CLI calls it before the model loads; the sink
    calls it too."""
    text = str(target)
    if "://" in text and text.split("://", 1)[0].lower() in _STREAM_FORMATS:
        from stream_gpen.io._source import protocol_missing

        scheme = text.split("://", 1)[0].lower()
        if protocol_missing(scheme):
            # (said only once the model had loaded: "encoding srt://... failed: Protocol not found", exit 4)
            raise InvalidInputError(f"this FFmpeg (PyAV's) has no {scheme}:// protocol: cannot send to {text}",
                                    hint="send with rtmp://, udp:// or rtsp:// instead")
    why = _refuses_video(target, codec, fmt)
    if why is not None:
        raise InvalidInputError(why)
    fam, shown = _family(target, fmt)
    if fam is None:
        return
    if codec != "auto" and codec in _ENCODERS and codec not in _VIDEO_IN[fam]:
        if fam == "webm" and webm_refuses(codec):
            raise InvalidInputError(webm_refuses(codec))
        fits = " / ".join(repr(c) for c in _VIDEO_IN[fam])
        raise InvalidInputError(f"codec={codec!r} (--codec {codec}) cannot go into {shown} "
                                f"({_FAMILY_SHOWN.get(fam, fam)} holds {fits}): "
                                f"{_WAY_OUT[codec]}; name the output so, or choose a codec it holds")
    if audio == "aac" and fam == "webm":
        raise InvalidInputError(f"audio='aac' (--audio aac) cannot go into {shown}: WebM holds Opus/Vorbis audio only; "
                                "use audio='copy' (--audio copy), which transcodes the audio WebM cannot take to Opus, or a .mkv name")


def _refuses_video(target, codec: str, fmt: str | None) -> str | None:
    """Why the output ``target`` (judged by the muxer ``fmt`` when known, else by its extension)
    cannot take the sink's video at all (see ``_NO_VIDEO_MUXERS``), or ``None``. Only the muxers
    that cannot take our video at all: FFmpeg's supported_codecs list is incomplete for some
    (mpegts lists no h264), so it is not asked here."""
    text = str(target).lower()
    if "://" in text:
        return None  # a stream URL: its scheme's muxer (flv, mpegts...) holds video
    ext = text if text.startswith(".") and "/" not in text else os.path.splitext(text)[1]
    if fmt is not None:
        mux = next((f for f in fmt.split(",") if f in _NO_VIDEO_MUXERS), None)
    else:
        mux = _NO_VIDEO_EXTS.get(ext)
    if mux is None:
        return None
    shown = ext or mux
    if mux in _RAW_STREAM:
        return (f"the {mux} container ({shown}) holds only a bare {_RAW_STREAM[mux]} stream (no audio) and is not "
                "written here; write a video container (.mp4, .mkv, .mov, .webm)")
    what = "h264" if codec == "auto" else codec  # (what "auto" is for these names, see resolve_codec)
    return (f"the {mux} container ({shown}) cannot hold {what} video (nor any other codec written here); "
            "write a video container (.mp4, .mkv, .mov, .webm)")


def _check_nvenc_codec(codec: str) -> None:
    if codec not in NVENC_ENCODERS:
        raise InvalidInputError(f"codec={codec!r} has no NVENC encoder: encoder='nvenc' takes codec "
                                f"{tuple(NVENC_ENCODERS)} (or 'auto', which is h264 or hevc outside .webm)")


def _check_software_options(codec: str, crf: int | None, preset: str | None, note: str | None = None, *,
                            named: str | None = None) -> None:
    """crf/preset ranges of the software encoders; ``note``: why encoder='auto' chose one;
    ``named``: how the messages name the codec (default ``codec='h264'``)."""
    why = f" ({note})" if note else ""
    named = named or f"codec={codec!r}"
    if codec == "prores" and (crf is not None or preset is not None):  # (before a range that is not its own)
        raise InvalidInputError("codec='prores' takes no crf or preset: ProRes is fixed-quality (422 HQ, or 4444 for "
                                "4:4:4 and alpha); leave them unset")
    top = 51 if codec in ("h264", "hevc") else 63  # x264/x265 clamp anything above 51 silently
    # SVT-AV1 (through FFmpeg) takes crf 1..63: its 0 means "not set", i.e. the default (35)
    low = 1 if codec == "av1" else 0
    if crf is not None and not (low <= crf <= top):
        raise InvalidInputError(f"crf={crf} for {named} must be within {low}..{top}"
                                + (" (SVT-AV1 has no crf 0: it would mean its default, 35; 1 is the best quality)"
                                   if codec == "av1" and crf == 0 else ""))
    if preset is not None and codec in ("h264", "hevc") and preset not in _X26X_PRESETS:
        raise InvalidInputError(f"preset={preset!r} for {named} is not one of {_X26X_PRESETS}{why}")
    if preset is not None and codec == "av1" and not (str(preset).isdigit() and 0 <= int(preset) <= 13):
        raise InvalidInputError(f"preset={preset!r} for codec='av1' (svt-av1) must be '0'..'13' (higher is faster){why}")
    if preset is not None and codec == "vp9":
        raise InvalidInputError("codec='vp9' takes no preset (libvpx speed is fixed here): leave it out")


# (said by the command line as --crf: ... --preset: ..., errors.API_WORDS_TO_FLAGS)
_CRF_PRESET_HINT = ("crf: h264/hevc 0-51, vp9 0-63, av1 1-63; preset: h264/hevc ultrafast..veryslow, av1 0-13, "
                    "none for vp9/prores; leave either out for the codec's default")


def check_crf_preset(codec: str, crf: int | None, preset: str | None, note: str | None = None) -> None:
    """--crf/--preset for the software encoder of ``codec``, before the model loads (the sink
    checks them again), with the ranges as a hint; ``note``: why --encoder auto chose software.

    ``"auto"`` (a photo's options, which no encoder uses) is checked as a video's with the same
    options is by default, for the codec of an ``.mp4`` (H.264), and named as ``codec='auto'``:
    a photo took ``crf=60`` (it fits VP9) which the same command for a video refuses, and its
    ``crf=64`` was refused "for codec='h264'", a codec no one had asked for."""
    asked, codec = codec, resolve_codec(codec, DRY_RUN_AS)
    named = f"codec={asked!r} ({codec}, as in an .mp4)" if asked != codec else None
    try:
        _check_software_options(codec, crf, preset, note, named=named)
    except InvalidInputError as e:
        raise InvalidInputError(str(e), hint=e.hint or _CRF_PRESET_HINT) from e


def check_encoder_options(encoder: str, codec: str, crf: int | None, preset: str | None, *,
                          quiet: bool = False) -> None:
    """--crf/--preset for the encoder ``encoder`` gives the resolved ``codec``, before the model
    loads, as the sink will check them: ``auto`` is resolved here (NVENC's probe is cached, so
    the sink's own costs nothing more), its preset translated as the sink translates it.
    ``quiet``: nothing will be encoded (a photo): ``auto``'s choice is not said."""
    note = None
    if encoder == "nvenc":  # (ranges before the probe, as the sink: _check_nvenc_early probes)
        _check_nvenc_codec(codec)
        check_nvenc_crf(codec, crf)
        nvenc_preset(preset)
        return
    if encoder == "auto":
        enc, note = resolve_encoder("auto", codec, quiet=quiet)
        hardware = enc in NVENC_ENCODERS.values()
        preset = auto_preset(codec, preset, hardware=hardware)
        if hardware:
            check_nvenc_crf(codec, crf)
            nvenc_preset(preset)
            return
    check_crf_preset(codec, crf, preset, note)


#: the output name a dry run's (``dst="null"``, ``-o /dev/null``) codec is chosen for
DRY_RUN_AS = "null.mp4"


def check_dry_run_options(encoder: str, codec: str, crf: int | None, preset: str | None) -> None:
    """A dry run's (``dst="null"``, ``-o /dev/null``) crf/preset/encoder, refused as the real run
    refuses them, before any work: the null sink encodes nothing and took any (``crf=60``,
    ``preset="fastest"``, a ProRes crf: the whole clip restored, then the real run refused them).
    Checked for the codec an ``.mp4`` is written with (``"auto"``: H.264); no container's fit,
    as nothing is written (``codec="prores"`` runs as for a ``.mov``). NVENC is probed as the real
    run's sink probes it."""
    codec = resolve_codec(codec, DRY_RUN_AS)
    check_encoder_options(encoder, codec, crf, preset)
    if encoder == "nvenc":
        resolve_encoder(encoder, codec)


def check_photo_encoder_options(encoder: str, codec: str, crf: int | None, preset: str | None) -> None:
    """A photo's crf/preset (which no encoder uses) checked as a video's with the same options,
    written as an ``.mp4``, would be, for every ``encoder``: only the software encoder's were
    checked, so ``crf=60`` with ``encoder='auto'``/``'nvenc'`` (or NVENC's ``crf=0``) was merely
    said to be unused where the same command for a video is refused. The software encoder's
    messages name ``codec='auto'`` as :func:`check_crf_preset` does; ``nvenc`` is not probed
    (nothing is encoded: a machine without NVENC is not refused, as a video is), ``auto`` is
    resolved as :func:`check_encoder_options` resolves it, without saying it "used libx264, not
    NVENC" (a refused crf read as if a software encode had been tried)."""
    if encoder == "software":
        check_crf_preset(codec, crf, preset)
    else:
        check_encoder_options(encoder, resolve_codec(codec, DRY_RUN_AS), crf, preset, quiet=True)


def _encode_hint(err: BaseException, *, live: bool = False) -> str | None:
    """The hint of a failed encode: the error's own, or where the file system refused the output
    (a full disk, a read-only or vanished folder) what to check, as a photo's failed write says.
    ``live``: a live source's output (a camera, a live stream), which has no part to cut with
    start= and duration=: that advice is left out."""
    import errno

    own = getattr(err, "hint", None)
    if own or not isinstance(err, OSError):
        return own
    if err.errno in FULL_ERRNOS | REFUSED_ERRNOS | {errno.ENOENT, errno.EIO}:
        from stream_gpen.errors import FILE_SYSTEM_HINT

        return FILE_SYSTEM_HINT
    if err.errno == errno.EFBIG:
        part = "" if live else ", or a part: start= and duration="
        limit = _file_size_limit()
        if limit is not None:  # this process's own limit (a shell's ulimit -f, systemd's LimitFSIZE)
            return (f"this process may write files of at most {limit} bytes (its file-size limit: ulimit -f, "
                    "systemd's LimitFSIZE or the container's): raise it (ulimit -f unlimited), or make the file "
                    f"smaller (a higher crf={part})")
        # a FAT32 drive (USB sticks, SD cards) holds files up to 4 GiB: an hour of video fails there
        return ("the output drive's file-size limit was reached (FAT32, on most USB sticks and SD cards, holds at most "
                "4 GiB per file): write to an exFAT, NTFS, APFS or ext4 drive, or make the file smaller (a higher "
                f"crf=, codec='hevc'{part})")
    return None


Chroma = Literal["auto", "420"]
CHROMA_MODES = ("auto", "420")


def check_codec_audio(codec: str, audio: str) -> None:
    """``codec`` is ``auto`` or one written here, ``audio`` one of the audio modes: checked by the
    sink, and by ``enhance_file`` before a folder walk (each video of a folder failed on them)."""
    if codec != "auto" and codec not in _ENCODERS:
        raise InvalidInputError(f"codec={codec!r} is not one of {('auto', *_ENCODERS)}")
    if audio not in _AUDIO_MODES:
        raise InvalidInputError(f"audio={audio!r} is not one of {_AUDIO_MODES}")


def check_chroma(chroma, codec: str = "auto") -> None:
    """``chroma`` is one of :data:`CHROMA_MODES`, and one the codec can write (ProRes has no 4:2:0)."""
    if chroma not in CHROMA_MODES:
        raise InvalidInputError(f"chroma={chroma!r} is not one of {CHROMA_MODES}")
    if chroma == "420" and codec == "prores":
        raise InvalidInputError("chroma='420' (--chroma 420) with codec='prores': ProRes has no 4:2:0 (it is 4:2:2 "
                                "or 4:4:4)", hint="leave out chroma (--chroma), or choose codec h264/hevc/av1/vp9 (--codec)")


def as_420(pix_fmt: str) -> str:
    """The 4:2:0 twin of any format with more chroma, at its depth: planar YUV keeps its name's
    kind (``yuv444p10le`` -> ``yuv420p10le``, ``yuvj444p`` -> ``yuvj420p``); RGB (``gbrp10le``,
    ``rgb48le``, ``x2rgb10le``, ...), packed and semi-planar YUV (``y210le``, ``nv16``, ...) and
    4:4:0 become ``yuv420p`` at their depth (16-bit: ``yuv420p16le``, which the encoder's
    choice, :func:`choose_high_pix_fmt`, takes down to the deepest 4:2:0 it has). Alpha stays
    where FFmpeg has the ``yuva`` twin. 4:2:0, grey and 4:1:1 (already written 4:2:0) as they are."""
    m = re.fullmatch(r"yuv(a?)j?4(22|44)p(.*)", pix_fmt)
    if m is not None:
        full = "j" if pix_fmt.startswith(("yuvj", "yuvaj")) and not m.group(3) else ""
        twin = f"yuv{m.group(1)}{full}420p{m.group(3)}"
        return twin if _pix_fmt_known(twin) else f"yuv{full}420p{m.group(3)}"  # (no yuva420p12le)
    if chroma_of(pix_fmt) == "420":
        return pix_fmt
    fmt = av.VideoFormat(pix_fmt)
    bits = min(bits_per_component(pix_fmt), 16)
    depth = "" if bits <= 8 else f"{bits}le"
    if any(c.is_alpha for c in fmt.components) and _pix_fmt_known(f"yuva420p{depth}"):
        return f"yuva420p{depth}"
    return f"yuv420p{depth}" if _pix_fmt_known(f"yuv420p{depth}") else "yuv420p16le"


def _pix_fmt_known(name: str) -> bool:
    try:
        av.VideoFormat(name)
    except (ValueError, av.error.FFmpegError):
        return False
    return True


def _yuv_copy(src, pix_fmt: str, colorspace: int, color_range: int):
    """A new frame of ``pix_fmt`` (``src``'s own format, or its plain twin of a ``yuvj`` one)
    holding ``src``'s samples, tagged as :func:`rgb_to_av` tags its frames (the encoder may hold a
    frame: ``src`` is the decoder's)."""
    vf = _yuv_part(src, (0, 0, src.width, src.height), pix_fmt)
    if color_range in (1, 2):
        vf.color_range = color_range
    if colorspace is not None and colorspace != 2:
        vf.colorspace = colorspace
    return vf


def _subsampling(plane: np.ndarray, width: int, height: int) -> tuple[int, int]:
    """A plane's (x, y) subsampling in a ``width`` x ``height`` frame (4:2:0 / 4:2:2 chroma: 2)."""
    return (2 if plane.shape[1] < width else 1), (2 if plane.shape[0] < height else 1)


def _whole_boxes(areas, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """``areas`` widened to whole 2x2 chroma blocks and merged where they touch (an area is
    converted as one picture: two overlapping ones converted apart would disagree where both reach)."""
    boxes = [(max(0, x0 - x0 % 2), max(0, y0 - y0 % 2), min(width, x1 + x1 % 2), min(height, y1 + y1 % 2))
             for x0, y0, x1, y1 in areas]
    merged = True
    while merged:
        merged = False
        out: list[tuple[int, int, int, int]] = []
        for b in boxes:
            for k, o in enumerate(out):
                if b[0] <= o[2] and o[0] <= b[2] and b[1] <= o[3] and o[1] <= b[3]:
                    out[k] = (min(b[0], o[0]), min(b[1], o[1]), max(b[2], o[2]), max(b[3], o[3]))
                    merged = True
                    break
            else:
                out.append(b)
        boxes = out
    return boxes


def _yuv_part(src, box, pix_fmt: str):
    """A new frame of ``pix_fmt`` (``src``'s layout) holding ``src``'s samples in ``box`` (on
    even coordinates; the whole frame's box: a copy of it)."""
    x0, y0, x1, y1 = box
    part = av.VideoFrame(x1 - x0, y1 - y0, pix_fmt)
    w, h = src.width, src.height
    for d, s in zip(plane_arrays(part), plane_arrays(src)):
        sx, sy = _subsampling(s, w, h)
        d[...] = s[y0 // sy:y0 // sy + d.shape[0], x0 // sx:x0 // sx + d.shape[1]]
    return part


def _yuv_region(src, box, colorspace: int):
    """``src``'s samples in ``box`` (:func:`_yuv_part`), tagged with the matrix ``src`` decodes
    with (an untagged HD frame's BT.709: a region under 1280 px wide would otherwise be taken for
    SD) and its range."""
    region = _yuv_part(src, box, src.format.name)
    region.colorspace = colorspace
    region.color_range = src.color_range
    return region


def _yuv_paste(vf, src, rgb: np.ndarray, areas, pix_fmt: str, colorspace: int, color_range: int, *,
               unpasted=None) -> None:
    """Add the faces' changes to ``vf`` (``src``'s decoded samples, :func:`_yuv_copy`) in their
    ``areas`` (:attr:`Frame.pasted`): each area's restored RGB (``rgb``, uint8 or the 16-bit
    picture) and its decoded RGB are converted alike, and the difference is added to the decoded
    samples. An unchanged pixel adds nothing, so the picture is exact up to the face's soft edge,
    and a code above white or below black (clipped in RGB) keeps its excess under the face too:
    taken whole from the converted RGB, each area's rectangle showed as a 15-level step in the
    super-whites around a face once graded.

    ``unpasted``: ``[(box, rgb), ...]``, the decoded RGB of the areas' boxes (:func:`_whole_boxes`)
    as the frame held it before the faces went in (:attr:`Frame.unpasted`); a box without one is
    decoded again from ``src`` (the same pixels: the decode repeats each chroma sample over its
    block, so a box on whole blocks converts as it does in the whole frame)."""
    from stream_gpen.io._convert import av_to_rgb_numpy

    high = rgb.dtype == np.uint16
    top = (1 << max(c.bits for c in vf.format.components)) - 1
    # part + now - was lies in [-top, 2 * top]: int16 up to 14 bits (8/10/12-bit video), in place
    # (int32 with temporaries: 12-15 ms a 4K frame with one 750 px face, of 62)
    dt = np.int16 if top < 1 << 14 else np.int32
    kept = {tuple(box): np.asarray(a) for box, a in unpasted or ()}  # (torch CPU tensors: no copy)
    planes = plane_arrays(vf)
    w, h = vf.width, vf.height
    for box in _whole_boxes(areas, w, h):
        x0, y0, x1, y1 = box
        decoded = kept.get(box)
        if decoded is None or decoded.dtype != rgb.dtype:
            decoded = av_to_rgb_numpy(_yuv_region(src, box, colorspace), high=high)
        was = plane_arrays(rgb_to_av(decoded, pix_fmt=pix_fmt, colorspace=colorspace, color_range=color_range))
        now = plane_arrays(rgb_to_av(np.ascontiguousarray(rgb[y0:y1, x0:x1]), pix_fmt=pix_fmt, colorspace=colorspace,
                                      color_range=color_range))
        for p, a, b in zip(planes, was, now):
            sx, sy = _subsampling(p, w, h)
            part = p[y0 // sy:y0 // sy + a.shape[0], x0 // sx:x0 // sx + a.shape[1]]
            d = part.astype(dt)
            np.add(d, b, out=d, dtype=dt, casting="unsafe")
            np.subtract(d, a, out=d, dtype=dt, casting="unsafe")
            np.clip(d, 0, top, out=d)
            part[...] = d


#: how often the muxed bytes are held against the temporary file's size and the free space
#: (FileSink._check_room); what a muxer may hold back unwritten before that is looked at (avio's
#: 32 KiB buffer). (No limit on how much it may hold: waiting for a stream's next packet, the
#: interleaver holds up to 10 s of the others, 2 GB of 4K ProRes; a quota is therefore said only
#: at the end, where the muxer reports it.)
_ROOM_CHECK_S = 1.0
_ROOM_SLACK = 64 << 10


class _StreamStalled(EncodeError):
    """A stream URL's writer made no progress for :data:`STREAM_STALL_S` (or, while finishing,
    :data:`STREAM_CLOSE_WAIT_S`): said as it is (:meth:`FileSink._failed`)."""


class _OutputGone(EncodeError):
    """The temporary output left its path during the run (its folder removed or moved): raised by
    the encoder thread's room check, said as it is (:meth:`FileSink._failed`)."""


_KEEP_FOLDER_HINT = "keep the output folder in place until the run ends, then run it again"

#: where this process's open files are listed, each a link to the file's path now (Linux)
_PROC_FDS = "/proc/self/fd"


def _open_as(path: str, ident: tuple[int, int] | None) -> str | None:
    """Where the file this process opened as ``path`` is now that it is gone from there: its folder
    was renamed or moved (the descriptor follows it: ``/proc/self/fd``, Linux). Found by its name
    (a temporary output's is unique) or its ``(st_dev, st_ino)``; ``None`` where it was deleted
    (the link then ends in " (deleted)", its link count is 0), is no longer open, or this system
    does not say (:func:`_can_follow`)."""
    name = os.path.basename(path)
    try:
        fds = os.listdir(_PROC_FDS)
    except OSError:
        return None
    for fd in fds:
        link = os.path.join(_PROC_FDS, fd)
        try:
            now, st = os.readlink(link), os.stat(link)
        except OSError:  # (closed meanwhile: the listing's own descriptor, a thread's file)
            continue
        if ((os.path.basename(now) == name or (st.st_dev, st.st_ino) == ident) and st.st_nlink
                and os.path.isfile(now) and os.path.samefile(now, link)):
            return now
    return None


def _can_follow() -> bool:
    """Whether :func:`_open_as` can tell a moved file from a deleted one here."""
    return os.path.isdir(_PROC_FDS)


def other_programs(programs: dict[int, frozenset[int]], main: int, streams: list[tuple[int, str, str | None]], *,
                   video: str, target) -> dict[int, str]:
    """Of ``streams`` (``(index, kind, codec)``), those of programs other than the video stream
    ``main``'s (an input with several, see :func:`~stream_gpen.io._meta.stream_programs`: a DVB
    multiplex's other channels), each with why it is left out; which audio is kept is logged
    (``video``: how the messages call the video, "the restored video"; ``target``: the output,
    named in the log). A stream in no program, or in the video's, is kept: players play a
    program's own streams together. The encoding sink's rule, and the stream copy's
    (:func:`~stream_gpen.io.remux`), so that ``--copy-if-no-faces`` keeps what the re-encode kept."""
    mine = programs.get(main)
    if not mine:
        return {}

    def named(ps) -> str:
        return ("program " if len(ps) == 1 else "programs ") + ", ".join(map(str, sorted(ps)))

    foreign = {i for i, _, _ in streams if programs.get(i) and not programs[i] & mine}
    audio = [(i, codec) for i, kind, codec in streams if kind == "audio"]
    kept = [(i, codec) for i, codec in audio if i not in foreign]
    video = f"{video} (stream #{main})"
    if len(audio) > 1 and foreign:
        if kept:
            which = ", ".join(f"#{i} ({codec or 'audio'})" for i, codec in kept)
            log.info("%s: of %d audio streams, %s kept: in %s with %s", target, len(audio), which, named(mine), video)
        else:
            log.info("%s: of %d audio streams, none kept: %s of %s has no audio", target, len(audio), named(mine),
                     video)
    has = ("its audio, " + ", ".join(f"#{i}" for i, _ in kept) + ", is kept") if kept else "which has no audio"
    return {i: f"it is in {named(programs[i])}, {video} in {named(mine)} ({has})" for i, _, _ in streams if i in foreign}


class _Sink:
    """Common context-manager plumbing for sinks."""

    fallbacks: list[str]
    frames_written: int
    #: seconds the sink's own encoder thread spent encoding and muxing (setting up, flushing and
    #: finishing the container included; not its waits for frames), summed; None: the sink does
    #: its work in the caller's thread, inside :meth:`write` (the caller times that)
    encode_seconds: float | None = None

    def __enter__(self):
        return self

    def write(self, frame: Frame) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def abort(self) -> None:
        self.close()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class NullSink(_Sink):
    """Discards frames (benchmarks): counts them and releases their slots."""

    def __init__(self) -> None:
        self.frames_written = 0
        self.fallbacks = []

    def write(self, frame: Frame) -> None:
        frame.image  # a released frame is a pipeline bug; fail here like a real sink would
        self.frames_written += 1
        frame.release()

    def close(self) -> None:
        pass


class FileSink(_Sink):
    """Encode frames into a file (or a stream URL), keeping pts, audio, colour and rotation.

    Options (keyword-only, validated here):

    * ``codec``: ``h264`` (libx264, plays everywhere), ``hevc`` (libx265, ~40% smaller, slower),
      ``av1`` (libsvtav1, smallest, needs modern players), ``vp9`` (libvpx at cpu-used 4: ~3x
      faster than libvpx's default for ~20% more bytes; for webm), ``auto`` (vp9 for a ``.webm``
      name, else h264).
    * ``crf``: quality (lower = better and bigger); ``None`` = encoder default (x264: 23).
    * ``preset``: speed/size trade-off (x264/x265: ultrafast..veryslow; svt-av1: "0".."13").
    * ``audio``: ``copy`` keeps audio/subtitle/data packet-for-packet when the container accepts
      the codec, else transcodes audio (aac for mp4/mov, opus for webm/mkv) and reports it;
      ``aac`` always transcodes audio; ``none`` drops audio, subtitles and data (stated in
      ``dropped``). Under ``copy`` and ``aac``, text subtitles the container cannot copy are
      converted cue by cue (SubRip/ASS/WebVTT -> mov_text for mp4/mov; mov_text -> SubRip for
      mkv, WebVTT for webm; styling the target cannot express is lost) and reported in
      ``fallbacks``; bitmap subtitles (DVD, PGS) it cannot hold are dropped (in ``dropped``).
    * ``odd_size``: a dimension the output's chroma is halved in (both for 4:2:0, the width for
      4:2:2, none for 4:4:4) must be even for H.264, HEVC and NVENC (VP9 and AV1 keep odd sizes):
      ``pad`` repeats the last row/column (output 1 px larger, nothing lost), ``crop`` drops it
      (output 1 px smaller, exact size ratio kept).
    * ``queue_size``: frames waiting for the encoder; more smooths bursts but holds more slots.
    * ``encoder``: ``software`` (default: the encoders above, on the CPU), ``nvenc`` (NVIDIA's
      hardware encoder: h264_nvenc / hevc_nvenc / av1_nvenc; frees the CPU, which becomes the
      bottleneck once GPEN runs on a GPU, for somewhat bigger files at the same quality; vp9 has
      none; data-centre GPUs such as A100/H100/H200 have no NVENC) or ``auto`` (NVENC when
      :func:`nvenc_available` says it works here, else software, logged and in ``fallbacks``).
      Under NVENC ``crf`` is its constant quality (``cq``, see :func:`nvenc_options`) and
      ``preset`` takes the x264 names (mapped onto p1..p7, :data:`NVENC_PRESETS`) or p1..p7;
      10-bit goes out as p010le (HEVC Main 10 / AV1), H.264 stays 8-bit (:func:`nvenc_pix_fmt`).
      ``encoder`` says which FFmpeg encoder ran.
    * ``live``: the output is watched as it is written (stream URLs, the camera command's
      recordings): keyframes at most :data:`LIVE_KEYFRAME_S` seconds of the frames' time apart
      at a steady rate (forced by time: a live output's rate is the restoring rate; see
      ``_keyframe_due`` for irregular frames), where a viewer joining late starts; NVENC uses
      its low-latency tuning without B-frames. ``None`` = only for stream URLs.
      Stream URLs hold no frame in the encoder (:meth:`_software_options`): libx264/libx265 with
      ``tune=zerolatency`` and slice threads (frame threads held one frame per thread: 2 frames
      on 2 cores, 23 on 16), libvpx-vp9 with ``lag-in-frames=0`` (it held 24), SVT-AV1 with its
      low-delay prediction structure (it held ~40). Recordings keep the encoders' look-ahead and
      B-frames (x264 veryfast's recording of a talking head was half the size of a zerolatency
      one) and frame threads: their delay of a few frames shows only in the file; into mp4/mov
      libx264/libx265 make no B-frames (FFmpeg hid the last frames of such a recording whose
      frames came unevenly, see :meth:`_software_options`).
    * ``no_audio_why``: under ``audio="none"``, why, as the dropped streams' notes give it
      (``"--audio none"``; the camera's ``"a camera records video only"``).

    What else is kept (nothing is lost silently: what a container cannot hold is in ``dropped``):

    * timing: every stream's offset from the others; the whole starts at 0 when the input's clock
      starts later (wall-clock stamped webcams, a .ts at 10 h), as FFmpeg writes it (see
      ``_choose_shift``); each frame's duration (``frame.duration``: a still held at the end keeps
      its length); what an mp4/mov edit list hides stays hidden (left out of containers without
      edit lists, see ``_hidden_by_edit_list``); copied packets whose time goes backwards (joined
      recordings) are moved to follow on (``_keep_monotonic``);
    * audio channels: transcoded audio keeps its layout (5.1, 7.1) where the encoder takes it,
      else is downmixed to stereo, and the note says so;

    * pixel shape: the input's sample aspect ratio (DV 10:11, DVD 32:27, HDV 4:3...) in the
      bitstream and the container, inverted when ``autorotate`` turned the frames a quarter turn;
    * colour: encoded with the matrix and range the source decoded with, and tagged with them
      (untagged input: BT.709 for HD, BT.601 for SD, as players assume; see
      ``_convert.decode_colorspace``; ProRes, which has no range flag, is always written with
      limited-range codes); primaries and transfer copied (PQ/HLG/BT.2020 included; on every
      frame too, where ProRes reads them), and the chroma sample location when the source gives one.
      HDR10 static metadata (mastering display, content light level) is passed to libx265 and
      SVT-AV1 as their own parameters (PyAV cannot attach side data to encoded frames); other
      encoders drop it, with a note;
    * bit depth: frames from a >8-bit source (10/12-bit HEVC, ProRes, AV1, VP9, HDR; see
      ``VideoSource(high_bit_depth=...)``) carry a 16-bit copy (``frame.hi``) and are encoded from
      it at the source's depth and chroma where the encoder has the format (libx265: 10/12-bit
      4:2:0/4:2:2/4:4:4; libx264: 10-bit, High 10 / High 4:2:2 profiles, which browsers and most
      hardware decoders do not play, so prefer ``hevc`` or ``av1`` for delivery; libsvtav1: 10-bit
      4:2:0), else at 10-bit 4:2:0 (see :func:`choose_high_pix_fmt`): outside the pasted faces the
      picture keeps its precision (no banding), the faces themselves are 8-bit (GPEN's output)
      scaled to 16 bits. An encoder with no format above 8 bits (libvpx-vp9 in 8-bit builds), and
      H.264 to a stream URL (ingest servers refuse High 10), write 8-bit 4:2:0 and say so in
      ``fallbacks``. 8-bit sources are written 8-bit as before;
    * container tags (creation time, location, make/model, title, ...), chapters, per-track
      language/title/disposition, the timecode (a new ``tmcd`` track in mov/mp4), Matroska
      attachments and cover art (see ``_tags``).

    Output is written to ``.<name>.<id>.tmp<ext>`` next to the target and renamed on success
    (``.live.tmp`` for a live source's: a killed run's is kept, see :meth:`_remove_stale_temps`).
    KeyboardInterrupt inside the ``with``: frames so far are finalized into ``<name>.partial<ext>``
    (``<name>.partial-1<ext>``... beside an earlier run's, which is kept) and :class:`Interrupted`
    (a KeyboardInterrupt) says where. Any other error after frames were encoded: they are kept
    the same way (:meth:`salvage`, a warning says where); nothing under the target's name. A
    target that is a pipe or a device is refused (:func:`check_not_special`).
    """

    def __init__(
        self,
        target,
        *,
        source=None,
        codec: VideoCodec = "h264",
        crf: int | None = None,
        preset: str | None = None,
        audio: AudioMode = "copy",
        overwrite: bool = False,
        odd_size: OddSize = "pad",
        queue_size: int = 4,
        is_url: bool = False,
        encoder: Encoder = "software",
        live: bool | None = None,
        no_audio_why: str = "--audio none",
        chroma: Chroma = "auto",
    ) -> None:
        if encoder not in ENCODER_MODES:
            raise InvalidInputError(f"encoder={encoder!r} is not one of {ENCODER_MODES}")
        check_chroma(chroma, codec)
        #: "420": 4:2:2 / 4:4:4 sources are written 4:2:0, the chroma every player decodes
        self.chroma = chroma
        check_codec_audio(codec, audio)
        asked, codec = codec, resolve_codec(codec, target, None if is_url else source)
        chroma_note = None
        if self.chroma == "420" and codec == "prores":  # (chosen for a transparent source: ProRes 4444)
            chroma_note = ("chroma='420' (--chroma 420) unused: ProRes 4444 was chosen to keep the source's "
                           "transparency, and ProRes has no 4:2:0 (a .webm output keeps the alpha in 4:2:0 VP9)")
            log.warning("%s", chroma_note)
            self.chroma = "auto"
        alpha_note = None
        if asked == "auto" and codec == "prores" and (crf is not None or preset is not None):
            # chosen for the transparency, not by the user: their crf/preset is not an error here
            alpha_note = ("ProRes 4444 was chosen to keep the source's transparency: crf/preset (--crf/--preset) "
                          "unused, ProRes is fixed-quality; --codec h264 drops the alpha, a .webm output keeps it "
                          "with VP9")
            log.warning("%s", alpha_note)
            crf = preset = None
        if odd_size not in ("pad", "crop"):
            raise InvalidInputError(f"odd_size={odd_size!r} is not one of ('pad', 'crop')")
        if encoder == "nvenc":  # option errors before the probe (which may take a moment with a GPU)
            _check_nvenc_codec(codec)
            check_nvenc_crf(codec, crf)
            nvenc_preset(preset)
        enc, encoder_note = resolve_encoder(encoder, codec)
        self._preset_asked = preset
        if encoder == "auto":
            preset = auto_preset(codec, preset, hardware=enc in NVENC_ENCODERS.values())
        if enc in NVENC_ENCODERS.values():
            check_nvenc_crf(codec, crf)
            nvenc_preset(preset)
        else:
            _check_software_options(codec, crf, preset, encoder_note)
        if enc not in av.codecs_available:
            raise UnsupportedCodecError(f"encoder {enc} for codec={codec!r} is not in this FFmpeg build")
        #: the FFmpeg encoder that writes the video ("libx264", "hevc_nvenc", ...); ``encoder_mode``
        #: is what was asked ("software", "nvenc", "auto"), ``encoder_note`` why "auto" chose software
        self.encoder = enc
        self.encoder_mode = encoder
        self.encoder_note = encoder_note
        self.live = bool(is_url) if live is None else bool(live)
        self.is_url = is_url
        self.target = str(target) if is_url else Path(target)
        # (the files are found by absolute paths: an API caller's os.chdir mid-run moved a relative
        # output's "folder" to the new working folder, "the output folder . was moved or renamed to
        # ...". Messages say ``target`` as it was given.)
        self._dst = None if is_url else Path(os.path.abspath(self.target))
        self.source = source
        self.meta = getattr(source, "metadata", None)
        self.codec = codec
        self.crf = crf
        self.preset = preset
        self.audio = audio
        self.odd_size = odd_size
        self.fallbacks: list[str] = [n for n in (alpha_note, chroma_note, encoder_note) if n]
        self.dropped: list[str] = []  # streams not carried over, with the reason (also logged)
        self.frames_written = 0
        self.encode_seconds = 0.0  # (the encoder thread's: see _Sink.encode_seconds)
        self.fixed_pts = 0
        self.fixed_dts = 0  # encoder packets with an impossible dts, repaired before muxing
        self.packets_muxed = 0  # video packets in the file so far (an encoder holds frames back)
        self._bytes_muxed = 0  # ... and their bytes, against the file's size on disk (_check_room)
        self._size_limit: int | None = None  # ulimit -f in bytes (0: none), read at the first check
        self._room_checked = time.monotonic()
        #: frames in the kept .partial output after an error (:meth:`salvage`), else None
        self.frames_kept: int | None = None
        #: why a stopped run's frames were not kept (its output folder removed, the file unfinishable)
        self.lost_reason: str | None = None
        self._ident: tuple[int, int] | None = None  # the temporary output's (st_dev, st_ino), see _follow
        self._moved_from: Path | None = None  # where it was, its folder moved during the run (_follow)
        self._last_dts: int | None = None
        self._next_key: Fraction | None = None  # live: the frame time from which the next keyframe is forced
        self._prev_key_t: Fraction | None = None  # live: the time of the frame before (_keyframe_due)
        # _mux_video's view of the encoder: the pts of its last packets, of the first frame given it
        # (since its setup) and how far before that its dts may start
        self._recent_pts: deque[int] = deque(maxlen=_DTS_WINDOW)
        self._first_pts: int | None = None
        self._dts_slack = 0
        self.partial_path: Path | None = None
        #: the finished video, kept under another name when it could not take the target's (the
        #: target appeared during the run, or could not be replaced): see _keep_beside
        self.kept_whole: Path | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._pix = "yuv420p"
        self._hi = False  # encoding from frame.hi (a >8-bit pix_fmt), decided at the first frame
        self._alpha_pix: str | None = None  # the stream's format when the source's alpha is written
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop_encoding = threading.Event()
        #: when the writer thread began the frame it is on (None while it waits for one): a stream
        #: URL's writer busy past :data:`STREAM_STALL_S` is stalled (:meth:`stalled`)
        self._busy_since: float | None = None
        self._abandoned = False  # a stalled stream's writer left to itself: its container is not touched
        #: a stream URL whose queue is full does not hold the caller up: the frame is not sent to it
        #: (counted in ``frames_not_sent``) and the caller's other outputs go on. Set by the camera
        #: for its --stream (a live session must not wait on one viewer or server); off by default,
        #: so ``enhance`` sends every frame
        self.drop_when_behind = False
        self.frames_not_sent = 0
        self._overwrite = bool(overwrite)

        if is_url:
            scheme = self.target.split("://", 1)[0].lower()
            self._fmt = _STREAM_FORMATS.get(scheme)
            if self._fmt is None:
                raise InvalidInputError(f"stream URL scheme {scheme!r} is not one of {tuple(_STREAM_FORMATS)}")
            # (FFmpeg names its protocols in lower case: -o UDP://... was "Protocol not found")
            self._path = scheme + "://" + self.target.split("://", 1)[1]
        else:
            t = self.target
            check_not_special(t)
            if t.is_dir():  # (camera -o FOLDER said "has no extension")
                raise InvalidInputError(f"output {t} is a folder; name a file in it, e.g. {t / 'recording.mp4'}")
            if t.suffix == "":
                raise InvalidInputError(f"output {t} has no extension; name the container, e.g. {t.name}.mp4")
            if t.exists() and not overwrite:
                raise OutputExistsError(f"output exists: {t}", hint="pass overwrite=True or choose another dst")
            check_segments(self._dst, getattr(source, "spec", None), overwrite)
            check_output_folder(t)
            self._fmt = None
            self._remove_stale_temps(t)
            # (the machine and process in the name tell a later run whose it is: _remove_stale_temps)
            # (a live source's recording is marked: a killed run's is kept, see _remove_stale_temps)
            live = ".live" if getattr(source, "live", False) else ""
            self._path = str(hidden_temp(self._dst, f".{_machine_tag()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{live}.tmp"))
        #: rtmp(s):// is sent by a child process (:mod:`stream_gpen.io._relay`): PyAV's handshake
        #: with a server that never answers froze the whole process
        self._relay = None
        try:
            if is_url and scheme in _RELAYED:
                from stream_gpen.io._relay import StreamRelay

                self._relay = StreamRelay(self._path, self._fmt)
                self._out = av.open(self._relay.pipe, "w", format=self._fmt)
            else:
                self._out = av.open(ffmpeg_local(self._path), "w", format=self._fmt)
        except (av.error.FFmpegError, ValueError) as e:
            if self._relay is not None:
                self._relay.kill()
            raise InvalidInputError(f"cannot write {self.target}: {e} (is the extension a known container?)") from e
        fmt_name = self._out.format.name
        #: the muxer makes its own files (HLS, DASH: a playlist or manifest written as segments close,
        #: and the segments beside it; FFmpeg's AVFMT_NOFILE): nothing is at ``_path`` for seconds
        #: and then not one file, so the room check's stat and the moved-folder search do not apply
        self._own_files = not is_url and bool(getattr(self._out.format, "no_file", False))
        if fmt_name == "hls" and not is_url:
            # FFmpeg's HLS muxer lists only the last 5 segments by default (a 40 s video's playlist
            # played its last 9 s, the rest unlisted beside it) and names them after the file it
            # writes, here the hidden temporary name (.o.<tag>.tmp0.ts ...): every segment listed,
            # named after the output (o_0.ts, o_1.ts ...: segment_names)
            self._out.options.update({"hls_list_size": "0", "hls_playlist_type": "event" if self.live else "vod"})
        if self._own_files:
            self._out.options.update(segment_names(self._dst, codec=self.codec))
        elif not is_url and getattr(source, "live", False):
            self._out.options.update(_live_flush(fmt_name))
        #: the segments of an earlier output of this name (replaced: overwrite), as they were: those
        #: this run does not write again are removed once it is finished (_remove_old_segments)
        self._old_segments = _file_idents(segments_there(self._dst)) if self._own_files and overwrite else {}
        bad = None
        try:
            check_output_encoding(self.target, codec, audio, fmt=fmt_name)
        except InvalidInputError as e:
            bad = str(e)
        if bad:
            self._out.close()
            if self._relay is not None:
                self._relay.kill()
            self._remove_tmp()
            raise InvalidInputError(bad)
        self._vstream = None
        # AVI (see _NO_START_TIMES), and any output of a trimmed source (``trim_start``): every
        # stream is written relative to the first video frame's time (the origin); audio packets
        # before it are left out (counted, and reported for AVI, where it is a loss). mp4/mov of a
        # video that starts before 0 are rebased too, decided at the first frame (_rebase_negative).
        self._rebase_avi = bool(set(fmt_name.split(",")) & set(_NO_START_TIMES))
        self._rebase = self._rebase_avi or bool(getattr(source, "trim_start", 0))
        self._origin: Fraction | None = None
        self._first_time: float | None = None  # the first written frame's time in the source's seconds
        self._before_origin = 0
        self._before_origin_s = 0.0  # (their length, where the packets say it)
        self._bad_aux: dict[int, int] = {}  # output stream index -> damaged copied packets left out
        self._aux_check: dict[int, object] = {}  # input stream index -> a throwaway decoder of copied audio
        self._aux_damaged: dict[int, int] = {}  # output stream index -> copied audio packets it could not decode
        self._late_audio: dict[int, float] = {}
        self._aux_last_dts: dict[int, Fraction] = {}  # output stream index -> last muxed dts (s)
        self._aux_muxed: dict[int, int] = {}  # output stream index -> packets muxed (see _report_empty)
        self._aux_reconfigured = False  # an audio transcoder met a change of layout/rate (said once)
        self._aux_bumped: dict[int, int] = {}  # output stream index -> packets moved to follow on
        self._aux_rounded: dict[int, int] = {}  # output stream index -> packets moved a tick on (_keep_monotonic)
        self._frame_tags: dict[str, int] = {}  # colour tags set on every frame (see _setup)
        self._durations: dict[int, int] = {}  # encoded pts -> the frame's duration in ticks (frame.duration)
        self._video_end: int | None = None  # the end of the last frame shown (pts + duration), in its ticks
        self._held_video = None  # mp4/mov: the last video packet, muxed by _finish_video
        self._held_vf = None  # AVI: the last frame encoded, written again through a long pause
        self._fields = None  # an interlaced source's frames are flagged with its field order (_setup_fields)
        self._dts_delay: int | None = None  # mp4/mov: the first video packet's pts - dts (B-frame delay)
        self._hidden: dict[int, int] = {}  # input stream index -> packets an edit list hid, left out
        self._aux_map: dict[int, tuple] = {}  # input stream index -> (out stream, transcoder, aac_adtstoasc or None)
        self._aux = None
        if source is not None and audio != "none" and getattr(source, "aux", None) is not None:
            self._aux = source.aux
            self._aux.subscribe()
        elif self.meta is not None and audio == "none":
            if getattr(source, "aux", None) is not None:
                source.aux.decline()  # by choice: discarding them is no warning
            in_streams = {s.index: s for s in getattr(getattr(source, "_container", None), "streams", ())}
            msgs = []
            for s in self.meta.audio + self.meta.subtitles + self.meta.data:
                if s.index in in_streams and carried_otherwise(in_streams[s.index]):
                    continue  # a timecode / chapter track: kept as the timecode tag / chapters (_setup_tags)
                why = "no audio asked for" if s.kind == "audio" else "left out with the audio"
                msgs.append(f"{s.kind} stream #{s.index} ({s.codec or s.kind}) dropped: {why} ({no_audio_why})")
            main = getattr(source, "_vstream", None)
            for ins in in_streams.values():
                # video besides the main one (cover art, a second angle) is set up with the audio
                # (_setup_other_video), which is not: a cover vanished without a word. A second
                # angle is dropped under every audio mode, for its own reason: said as by default (a
                # warning), not as the choice
                if ins.type == "video" and (main is None or ins.index != main.index):
                    name = getattr(ins.codec_context, "name", None) or "unknown codec"
                    if is_cover(ins):
                        msgs.append(f"cover art (stream #{ins.index}, {name}) dropped: left out with the audio "
                                    f"({no_audio_why})")
                    else:
                        self._drop(other_video_dropped(ins.index, name))
            for msg in msgs:
                # asked for: listed in the summary, said at info level (not as a warning); said
                # once per source: every output of a camera (-o FILE --stream URL) drops the
                # same streams by the same choice, and each summary still lists it
                said = getattr(source, "_drops_said", None)
                if said is None and source is not None:
                    with contextlib.suppress(AttributeError):
                        said = source._drops_said = set()
                self._drop(msg, level=logging.DEBUG if said is not None and msg in said else logging.INFO)
                if said is not None:
                    said.add(msg)
        if self.meta is not None and audio == "aac" and not self.meta.audio and not self.meta.live:
            # asked for AAC, and there is no sound to encode: said, not a silent no-op
            log.warning("audio='aac' (--audio aac): %s has no audio stream; the output has no sound either",
                        Path(str(getattr(source, "spec", "") or "the input")).name)
        self._thread = threading.Thread(target=self._run, name=f"encode:{Path(str(target)).name}", daemon=True)
        self._thread.start()

    #: a temporary output untouched this long, of a process gone from this machine, was left by a
    #: killed run (a guard on top of the machine tag and the process check, used only where the
    #: process namespace could not be read: see :func:`_pids_comparable`)
    STALE_TEMP_S = 60.0

    def _remove_stale_temps(self, target: Path) -> None:
        """Remove the hidden temporary outputs (``.NAME.<machine>-<pid>-<random>.tmp.EXT``) that
        runs killed with ``kill -9`` (or a power cut) left beside ``target``: nothing else ever
        removes them, and each can be as large as the video written so far. Only those made on
        this machine and in this process namespace (:func:`_machine_tag`: a run on another
        machine or in another container writing into a shared folder is never judged by its
        process id, which means nothing here) whose process is gone, and said.

        One of a live source's recording (``.live.tmp``: a camera, a live stream) is the only
        copy of footage that cannot be read again: where what reached it plays (Matroska/WebM,
        MPEG-TS, FLV, and mp4/mov, written fragmented for this: see :func:`_live_flush`) it is kept as
        ``NAME.partial.EXT`` (``NAME.partial-1.EXT``... beside earlier ones), said in a warning,
        and not recorded as a stopped run's part, so no later run removes it."""
        pattern = _temp_pattern(target.suffix)
        try:
            candidates = list(target.parent.glob(f".*.tmp{target.suffix}"))
        except OSError:
            return
        now, here = time.time(), _machine_tag()
        for q in candidates:
            m = pattern.search(q.name)
            if m is None:
                continue
            # (the name ``target`` would give with this very tag: a long stem is shortened to fit
            # 255 bytes with the tag, so comparing the part before the tag with the bare stem
            # missed every temporary output of a long name)
            tag = m.group(0)[: len(m.group(0)) - len(target.suffix)]
            if m.group(1) != here or hidden_temp(target, tag).name != q.name:
                continue
            pid = int(m.group(2))
            if pid == os.getpid() or _pid_alive(pid):
                continue  # its process is still there (or its id was taken again: left alone)
            # (no age guard where the process check is sound: a run killed with kill -9 was
            # writing until it died, so its file is always fresh, and "kill it, start it again"
            # left it for good; the guard stays where the process table could not be identified)
            try:
                if not _pids_comparable() and now - q.stat().st_mtime < self.STALE_TEMP_S:
                    continue
            except OSError:  # (the file went)
                continue
            if m.group(3) and _playable_frames(q):
                try:
                    kept = _rename_partial(q, target)
                except OSError:
                    continue
                msg = (f"kept {kept.name}: the recording of a live source by a run that was killed (it plays "
                       "up to where it stopped)")
                self.fallbacks.append(msg)
                log.warning("%s", msg)
                continue
            try:
                size = q.stat().st_size
                q.unlink()
            except OSError:
                continue
            msg = f"removed {q.name} ({size:,} bytes), the temporary output of a run that was killed"
            self.fallbacks.append(msg)
            log.info("%s", msg)

    # --- set-up at the first frame (needs the frame size) --------------------------------
    def _drop(self, msg: str, level: int = logging.WARNING) -> None:
        self.dropped.append(msg)
        log.log(level, msg)

    def _setup(self, h: int, w: int, frame: Frame) -> None:
        out, meta = self._out, self.meta
        enc = self.encoder
        tb = frame.time_base
        rate = self._rate(frame)
        vs = out.add_stream(enc, rate=rate)
        vs.width, vs.height = w, h
        if self.codec == "hevc" and (set(out.format.name.split(",")) & {"mov", "mp4", "ipod"} or self._fmp4_segments):
            # Apple's players (QuickTime, iOS, Safari) play HEVC in mp4/mov only as 'hvc1'
            # (parameter sets in the sample description), not FFmpeg's default 'hev1'; an HLS
            # playlist's fMP4 segments too (the HLS muxer hands the tag to its mp4 muxer)
            vs.codec_tag = "hvc1"
        pix = self._pix
        if (h, w) != self._even_size(h, w):  # pragma: no cover - sizes are made even in _to_even
            raise EncodeError(f"{pix} needs even sizes, got {w}x{h}")
        vs.pix_fmt = self._alpha_pix or pix
        average = (meta.extra or {}).get("average_rate") if meta is not None else None
        # ASF (.wmv) times its packets in ms, and FFmpeg's reader takes a packet's time from the next
        # one, the last one's from its duration, which it has from the H.264/HEVC timing: encoded in
        # ms ticks, that said 1000 fps, and the last frame read back at the time of the one before it
        asf = bool(set(out.format.name.split(",")) & {"asf", "asf_stream"}) and enc in ("libx264", "libx265")
        self._tb_out = (avi_frame_grid(rate, tb, average, getattr(frame, "duration", None))
                        if self._rebase_avi or asf else tb)
        vs.time_base = self._tb_out
        vs.codec_context.time_base = self._tb_out
        cc = vs.codec_context
        # Colour: encode with the matrix and range the source decoded with (its tags; for untagged
        # video the players' guess, see decode_colorspace) and write them as tags, so decode,
        # encode and tags agree and no player has to guess. Primaries and transfer (bt709, PQ,
        # HLG...) describe the RGB values themselves, which pass through unchanged (at the
        # source's depth when frames carry ``hi``, see _choose_hi_pix; else 8-bit), so the
        # input's are copied as they are.
        ex = meta.extra if meta is not None else {}
        self._colorspace = ex.get("matrix_id") or decode_colorspace(None, w, h)
        self._color_range = ex.get("range_id") or (2 if meta is not None and meta.color_range == "full" else 1)
        if self.codec == "prores" and self._color_range != 1:
            # ProRes has no range flag: every decoder reads its codes as limited range, so a
            # full-range source (PNG-in-mov keyed footage, yuvj MJPEG) is converted to limited
            # codes, or its shadows would be crushed and highlights clipped
            log.info("%s: ProRes is limited range only: the full-range source is written with limited-range codes",
                     self.target)
            self._color_range = 1
        cc.colorspace = self._colorspace
        cc.color_range = self._color_range
        # primaries and transfer go on every frame too: prores_ks writes its frame header from the
        # frame, not the codec context (without them an HDR ProRes reads back as SDR)
        self._frame_tags: dict[str, int] = {}
        for attr, key, known in (("color_primaries", "color_primaries_id", COLOR_PRIMARIES),
                                 ("color_trc", "color_trc_id", COLOR_TRCS)):
            v = ex.get(key)
            if v is not None and v != 2 and v in known:
                setattr(cc, attr, v)
                self._frame_tags[attr] = v
        if meta is not None:
            if meta.extra.get("display_matrix") and not self.is_url:
                # a mirror (not applied to the pixels): the input's own matrix, as it was
                vs.set_display_matrix(list(meta.extra["display_matrix"]))
            elif meta.rotation and not self.is_url:
                vs.set_display_rotation(meta.rotation)
            # Anamorphic input (DV/DVD/HDV): without its SAR a 16:9 DVD plays squeezed to 3:2. The
            # encoder writes it into the bitstream (H.264/HEVC VUI) and the muxer into the container
            # (mp4/mov pasp, mkv/webm display size, avi vprp): VP9/AV1 bitstreams have no field for
            # it. Pad/crop to even sizes changes one row/column, not the pixel shape: same SAR.
            sar = meta.sample_aspect_ratio
            if sar is not None and sar > 0:
                cc.sample_aspect_ratio = sar
                if (sar != 1 and set(out.format.name.split(",")) & {"matroska", "webm"}
                        and not set_container_sar(vs, sar)):
                    msg = (f"sample aspect ratio {sar} written to the bitstream only: this PyAV/FFmpeg build does not "
                           f"let it into the {out.format.name} header (players may show the picture at {w}:{h})")
                    self.fallbacks.append(msg)
                    log.warning(msg)
        opts = self._nvenc_options() if self._hardware else self._software_options(enc)
        hdr10 = self._hdr10_params(enc)
        if hdr10 and enc == "libx265":
            opts["x265-params"] = ":".join(filter(None, (opts.get("x265-params"), hdr10)))
        elif hdr10:
            opts["svtav1-params"] = ":".join(filter(None, (opts.get("svtav1-params"), hdr10)))
        dv = (meta.extra or {}).get("dolby_vision") if meta is not None else None
        if dv:  # (FFmpeg's encoders make no Dolby Vision RPU: a base layer at best, see dolby_vision_note)
            msg = dolby_vision_note(dv)
            self.fallbacks.append(msg)
            log.warning(msg)
        loc = self._chroma_location()
        if loc is not None:
            opts["chroma_sample_location"] = loc  # AVCodecContext's option: x264/x265/SVT-AV1 write it in the VUI
        self._setup_fields(vs, opts, frame)
        cc.options = opts
        # frame + slice threads, the fastest, for files; frame threads hold a frame each, which a
        # stream cannot wait for: slice threads (zerolatency's own choice, which "AUTO" overrode)
        cc.thread_type = "SLICE" if self.is_url else "AUTO"
        self._vstream = vs
        self._first_time = float(frame.pts * frame.time_base) if frame.pts is not None else frame.time
        if self._aux is not None and meta is not None:
            self._setup_aux(meta)
        self._choose_shift(frame)
        self._setup_tags(vs)

    def _setup_fields(self, vs, opts: dict[str, str], frame: Frame) -> None:
        """Keep an interlaced source's field order (``deinterlace='off'``: its pixels are the two
        fields woven). Written as progressive, players never deinterlaced it and its combing
        showed everywhere. x264 and ProRes code the fields as fields (interlaced DCT), with each
        frame flagged top or bottom field first (FFmpeg's ``setfield``: x264 takes the order from
        the frame, not its options). The stream's field order goes to the container where it has
        a place: Matroska's FieldOrder, and the mp4/mov ``fiel`` atom, which FFmpeg's mov muxer
        writes for ProRes and HEVC but not for x264's H.264 (measured). H.264 in .mp4/.mov
        carries it in its pictures' flags alone: FFmpeg
        reads such a stream back as "tt" at stream level over bottom-first pictures (x264's
        pic-struct option changes nothing), so players that go by the stream-level order take
        it top first; .mkv, or ProRes in .mov, keep it in the container too. x265, VP9 and AV1
        here code progressive pictures: the container's tag alone tells players (none in WebM or
        MPEG-TS), which is said.
        The 4:2:0 chroma is converted from the frame as a whole, not field by field."""
        meta = self.meta
        order = meta.interlaced if meta is not None else "progressive"
        if order not in _FIELD_ORDERS or frame.image.shape[0] != meta.height:  # (a resized picture has no fields)
            return
        vs.codec_context.field_order = _FIELD_ORDERS[order]
        fmts = set(self._out.format.name.split(","))
        if self.encoder in ("libx264", "prores_ks"):
            opts["flags"] = "+ildct"
            tff = order in ("tt", "tb")
            graph = av.filter.Graph()
            src = graph.add_buffer(width=vs.width, height=vs.height, format=vs.pix_fmt, time_base=self._tb_out)
            flag = graph.add("setfield", "tff" if tff else "bff")
            src.link_to(flag)
            flag.link_to(graph.add("buffersink"))
            graph.configure()
            self._fields = graph
            log.info("%s: interlaced (%s): coded as fields by %s, %s field first", self.target, order, self.encoder,
                     "top" if tff else "bottom")
            return
        kept = bool(fmts & (_MOV_FAMILY | {"matroska"})) and "webm" not in fmts
        msg = (f"interlaced video ({order}) coded as progressive pictures by {self.encoder}: "
               + (f"its field order is kept as the {self._out.format.name.split(',')[0]} container's tag"
                  if kept else "the output is flagged progressive")
               + "; codec='h264' keeps the fields, --deinterlace auto removes them")
        self.fallbacks.append(msg)
        log.warning(msg)

    def _chroma_location(self) -> str | None:
        """The source's chroma sample location (FFmpeg's names: ``left`` for MPEG-2/H.264 SD/HD,
        ``topleft`` for UHD/HDR10, ``center`` for JPEG/MJPEG), or ``None`` when it said none
        (encoders then write none: players assume ``left``). Without it a player that honours the
        tag shifts the chroma of a ``topleft`` or ``center`` source by half a sample."""
        meta = self.meta
        loc = getattr(meta, "chroma_location", None)
        if loc is None and meta is not None:
            loc = (getattr(meta, "extra", None) or {}).get("chroma_location")
        if isinstance(loc, int):
            loc = _CHROMA_LOCATIONS.get(loc)
        return loc if loc in _CHROMA_LOCATIONS.values() else None

    def _choose_shift(self, frame: Frame) -> None:
        """Outputs start where the input's earliest kept stream starts, as FFmpeg writes them
        (it subtracts the input's start time unless told ``-copyts``): a live source stamped with
        wall-clock time (FFmpeg's v4l2 input: seconds since 1970), a TV recording or an HLS stream
        joined at 10 h would otherwise give an mp4 whose edit list plays hours or decades of
        nothing first (and a wrapped clock in .ts/.flv). Every stream moves by the same amount, so
        a video that starts 0.85 s after its audio still does. AVI and trimmed runs rebase on the
        first frame instead (``_rebase``); a start at or before 0 is left as it is (negative
        times: ``_rebase_negative`` and the muxers' edit lists), and so is one under
        :data:`SHIFT_MIN_S` (encoder delay the input's muxer left there: its packets keep their
        times exactly)."""
        if self._rebase:
            return
        pts = frame.pts if frame.pts is not None else round(frame.time / frame.time_base)
        starts = [Fraction(pts) * frame.time_base]
        inp = getattr(self.source, "_container", None)
        for index in self._aux_map:
            st = inp.streams[index] if inp is not None and index < len(inp.streams) else None
            if st is not None and st.type != "video" and st.start_time is not None and st.time_base:  # not covers
                starts.append(Fraction(st.start_time) * Fraction(st.time_base))
        origin = min(starts)
        if origin > SHIFT_MIN_S:
            self._origin = origin
            log.debug("%s: written from the input's start at %.3f s", self.target, float(origin))

    def _hdr10_params(self, enc: str) -> str | None:
        """The source's HDR10 static metadata (mastering display, content light level; see
        :func:`~stream_gpen.io._meta.hdr_static_metadata`) as libx265 / SVT-AV1 parameters, so the
        output is tone-mapped for the display it was graded on. Other encoders (x264, libvpx,
        NVENC) get no way to write it from here: dropped, and said so."""
        ex = self.meta.extra if self.meta is not None else {}
        md, cl = ex.get("mastering_display"), ex.get("content_light")
        if md is not None and md.get("max_nits") is None:
            md = None  # primaries without luminance: neither encoder takes half a description
        if md is None and cl is None:
            return None
        if enc not in ("libx265", "libsvtav1"):
            msg = (f"HDR10 metadata (mastering display / content light level) dropped: {enc} is not given it here "
                   "(codec='hevc' or codec='av1' with encoder='software' keeps it); players tone-map with defaults")
            self.fallbacks.append(msg)
            log.warning(msg)
            return None
        if enc == "libx265":  # chromaticities in 0.00002, luminance in 0.0001 cd/m²
            names = ("master-display", "max-cll")

            def xy(p):
                return f"({round(p[0] * 50000)},{round(p[1] * 50000)})"

            def nits(v):
                return str(round(v * 10000))
        else:  # SVT-AV1: plain numbers
            names = ("mastering-display", "content-light")

            def xy(p):
                return f"({p[0]:.4f},{p[1]:.4f})"

            def nits(v):
                return f"{v:.4f}"
        parts = []
        if md is not None:
            parts.append(f"{names[0]}=G{xy(md['g'])}B{xy(md['b'])}R{xy(md['r'])}WP{xy(md['white'])}"
                         f"L({nits(md['max_nits'])},{nits(md['min_nits'])})")
        if cl is not None:
            parts.append(f"{names[1]}={cl[0]},{cl[1]}")
        return ":".join(parts)

    @property
    def _hardware(self) -> bool:
        return self.encoder in NVENC_ENCODERS.values()

    @property
    def _fmp4_segments(self) -> bool:
        """An .m3u8 output written as fragmented-MP4 segments (see :func:`segment_names`)."""
        return self._out.options.get("hls_segment_type") == "fmp4"

    def _rate(self, frame: Frame) -> Fraction:
        meta, tb = self.meta, frame.time_base
        return meta.frame_rate if meta is not None and meta.frame_rate else (1 / tb if tb <= Fraction(1, 10) else Fraction(25))

    def _nvenc_options(self) -> dict[str, str]:
        return nvenc_options(self.codec, crf=self.crf, preset=self.preset, live=self.live, pix_fmt=self._pix,
                             no_bframes=stores_no_pts(self._out.format.name))

    def _software_options(self, enc: str) -> dict[str, str]:
        out = self._out
        opts = {}
        # A live recording into mp4/mov: no B-frames either. Its frames come at the restoring
        # rate, unevenly (slow first frames, a stall), with a keyframe forced at least every
        # LIVE_KEYFRAME_S (at 1 fps nearly every frame); FFmpeg's reader of the edit list that
        # hides the B-frame delay ends the track at the second keyframe whose time plus the gap
        # to the next packet's decoding time (the gap between two earlier frames) passes the
        # edit's end, and the frames after it are never shown: a 5-frame recording at 0, 2.12,
        # 3.68, 4.8 and 4.96 s played 4 of them, its summary counting 5. Without B-frames a
        # packet's decoding time is its own, and that gap is its own frame's.
        live_mov = self.live and bool(set(out.format.name.split(",")) & _MOV_FAMILY)
        if stores_no_pts(out.format.name) or live_mov:
            # AVI and ASF (.wmv) store no presentation times: B-frames would come back with shuffled
            # timestamps (see _NO_PTS). In AVI frame k is chunk k (k / rate). FFmpeg's own reader
            # still shows H.264 in AVI (and ASF) one frame late (it guesses each pts as the next
            # frame's dts, whatever the encoder settings; MPEG-4 Part 2 is read at its dts): that is
            # the reader's guess, the same for any H.264 AVI, and not in the file; audio/video sync
            # is checked on the chunk timeline.
            if enc == "libx264":
                opts["bf"] = "0"
            elif enc == "libx265":
                opts["x265-params"] = "bframes=0"
        if enc == "libx265":
            # x265 prints its own banner and per-run statistics (~25 lines on stderr) whatever
            # FFmpeg's log level: errors only, as the other encoders
            opts["x265-params"] = ":".join(filter(None, (opts.get("x265-params"), "log-level=error")))
        if enc == "prores_ks":
            # 4444 for 4:4:4 and alpha (what editors exchange keyed footage in), else 422 HQ
            opts["profile"] = "4444" if chroma_of(self._pix) == "444" else "hq"
        if enc == "libvpx-vp9":
            # libvpx's default (good, cpu-used 0, one row thread) ran at 8.5 fps on 640x360 here;
            # cpu-used 4 + row threads: 24 fps for ~19% more bytes (docs in FileSink).
            opts.update({"deadline": "good", "cpu-used": "4", "row-mt": "1"})
        if self.crf is not None:
            opts["crf"] = str(self.crf)
        if self.preset is not None:
            opts["preset"] = str(self.preset)
        if self.live and enc == "libx265":
            # a forced keyframe (LIVE_KEYFRAME_S) is an IDR picture, where a decoder can start (x265
            # makes it a plain I picture otherwise; x264's is an IDR anyway)
            opts["forced-idr"] = "1"
        if self.is_url:
            # stream URLs: no frame held in the encoder, each packet out once its frame is encoded
            # (with slice threads, see _setup)
            if enc in ("libx264", "libx265"):
                opts["tune"] = "zerolatency"  # no look-ahead, no B-frames
            elif enc == "libvpx-vp9":
                opts["lag-in-frames"] = "0"  # (libvpx's default of 25 held 24 frames)
            elif enc == "libsvtav1":
                # low-delay prediction (SVT-AV1's random access held ~40 frames)
                opts["svtav1-params"] = ":".join(filter(None, (opts.get("svtav1-params"), "pred-struct=1")))
        return opts

    def _setup_tags(self, vs) -> None:
        """Global tags, chapters, the video track's tags and timecode from the input (see _tags)."""
        inp = getattr(self.source, "_container", None)
        ins = getattr(self.source, "_vstream", None)
        if inp is None or ins is None:
            return
        out = self._out
        win = getattr(self.source, "_window", None) if getattr(self.source, "trim_start", 0) else None
        if win is not None and self._first_time is not None:
            # from the first frame kept, as the audio and subtitles are (a --start 0.3 at 25 fps
            # opens on the frame at 0.32: chapters moved by 0.30 landed 20 ms off)
            win = (max(float(win[0]), self._first_time), win[1])
        if win is None and self._origin is not None and not self._rebase:
            win = (float(self._origin), None)  # chapters move with the streams (_choose_shift)
        part = getattr(self.source, "_window", None)
        if part is not None and part[1] is not None and not getattr(self.source, "trim_start", 0):
            # --duration alone: the times stay the source's (or move with the streams, above), and
            # the chapters end with the part (a 2 s part kept its chapter at 2.5 s, and an mp4's
            # chapter track made it read as the source's whole length)
            win = (win[0] if win is not None else 0.0, part[1])
        for msg in copy_container_tags(inp, out, window=win):
            self._drop(msg)
        self._note_marks(copy_stream_tags(ins, vs, encoded=True))
        tc = timecode_of(inp, ins)
        if tc and getattr(self.source, "trim_start", 0) and self._first_time is not None:
            # --start cut the clip: its timecode moves on by the frames cut off its front
            rate = self.meta.frame_rate if self.meta is not None else None
            t0 = float(ins.start_time * ins.time_base) if ins.start_time is not None and ins.time_base else 0.0
            cut = round((self._first_time - t0) * rate) if rate else 0
            moved = advance_timecode(tc, cut, rate) if rate else None
            if moved is None:
                self._drop(f"timecode {tc} dropped: the clip was cut {self._first_time - t0:.3f} s in and the timecode "
                           f"cannot be moved on at {float(rate or 0):g} fps")
                return
            tc = moved
        if tc:
            fmts = set(out.format.name.split(","))
            if fmts & {"mov", "mp4", "ipod", "matroska", "webm"}:
                vs.metadata["timecode"] = tc  # mov/mp4: the muxer writes a tmcd track from it
            else:
                self._drop(f"timecode {tc} dropped: the {out.format.name} container has no timecode "
                           "(write .mov, .mp4 or .mkv to keep it)")

    def _copy_plan(self, info, ins) -> tuple[bool, bool, str | None, tuple | None, bool] | None:
        """What is done with audio or data stream ``info`` (the input's ``ins``) before its
        packets are read ahead (:func:`audio_copy_hazards`): (copying: a copy is asked for, copy:
        and can be made, why not, the ``aac_adtstoasc`` filter and config it is copied through,
        its sample rate and channels unknown), or None: it is dropped (audio of unknown rate and
        channels that nothing here can decode). Side-effect free, so that every track's plan is
        known before the one read of the file for all of them."""
        out = self._out
        name = aux_codec(info, ins, self.source._container.format.name)
        # (data tracks are kept under --audio aac too, as subtitles are: 'aac' is about audio)
        copying = self.audio == "copy" or info.kind == "data"
        copy = copying and can_copy(out.format.name, name, out.supported_codecs)
        why = adts = None
        unknown = audio_params_unknown(info)
        if unknown and getattr(ins, "codec_context", None) is None:
            return None
        if copy and unknown:
            # a copy needs them in the output's header: the muxer refused it at the end of the
            # run ("Invalid argument"); decoded, each frame says its rate and channels
            copy, why = False, ("its sample rate and channels were not found where the input begins (audio that "
                                "starts late, or a joined recording whose first part has none)")
        if copy and needs_adtstoasc(out.format.name, ins, fmp4_segments=self._fmp4_segments):
            # copied through aac_adtstoasc; a live source's first packet cannot be read ahead
            file = getattr(self.source, "kind", None) == "file"
            adts = adts_to_asc(self.source.spec, ins) if file else None
            if adts is None:
                into = "fMP4 segments" if self._fmp4_segments else "AVI"
                copy, why = False, f"its ADTS AAC (as in MPEG-TS) could not be converted for {into}"
        return copying, copy, why, adts, unknown

    def _setup_aux(self, meta) -> None:
        out = self._out
        if set(out.format.name.split(",")) & _BARE_VIDEO:
            # a raw elementary stream (-o clip.h264) holds the one video stream and nothing else:
            # the audio failed the run at its first packet ("'h264' format does not support 'aac'")
            for info in meta.audio + meta.subtitles + meta.data:
                self._drop(f"{info.kind} stream #{info.index} ({info.codec}) dropped: the {out.format.name} container "
                           f"({Path(str(self.target)).suffix}) holds a bare video stream only (write .mp4 or .mkv to keep it)")
            return
        in_streams = {s.index: s for s in self.source._container.streams}
        self._setup_other_video(in_streams)
        foreign = self._other_programs(meta)
        # (a track carried otherwise: as chapters / the video's timecode tag, see _setup_tags)
        aux = [(info, in_streams.get(info.index)) for info in meta.audio + meta.subtitles + meta.data
               if info.index not in in_streams or not carried_otherwise(in_streams[info.index])]
        plans = {info.index: self._copy_plan(info, ins) for info, ins in aux
                 if info.index not in foreign and info.kind in ("audio", "data")}
        # the copied audio's packets, read ahead for what a copy would get wrong: all its tracks in
        # one read of the file (a live source's cannot be read ahead)
        file = getattr(self.source, "kind", None) == "file"
        copied = {i for i, plan in plans.items() if plan is not None and plan[1]}
        checked = [ins for info, ins in aux if file and info.kind == "audio" and info.index in copied and ins is not None]
        hazards = audio_copy_hazards(self.source.spec, checked, out.format.name, self._copied_part(),
                                     fmp4_segments=self._fmp4_segments)
        for info, ins in aux:
            name = aux_codec(info, ins, self.source._container.format.name)
            if info.index in foreign:
                self._drop(f"{info.kind} stream #{info.index} ({name or info.kind}) dropped: {foreign[info.index]}")
                continue
            if info.kind == "subtitle":
                self._setup_subtitle(info, ins)
                continue
            if info.kind == "attachment":
                self._setup_attachment(info, ins)
                continue
            if plans[info.index] is None:
                # (nothing here can decode it either, to learn what it is)
                self._drop(f"audio stream #{info.index} ({name or 'unknown codec'}) dropped: its sample rate and "
                           "channels were not found where the input begins, and this FFmpeg cannot decode it "
                           "(pass --audio none to leave it out knowingly)")
                continue
            copying, copy, why, adts, unknown = plans[info.index]
            if copy and info.index in hazards:
                why = hazards[info.index]
                copy = why is None
            if copy:
                try:
                    o = out.add_stream_from_template(ins)
                    if (info.kind == "audio" and getattr(self.source, "trim_start", 0) and not clear_initial_padding(o)
                            and getattr(o.codec_context, "delay", 0)):
                        # (cut off the front: the first packet kept is no priming, see clear_initial_padding)
                        msg = (f"audio stream #{info.index} ({name}): its encoder delay could not be cleared in this "
                               f"PyAV/FFmpeg build: players drop its first {o.codec_context.delay} samples")
                        self.fallbacks.append(msg)
                        log.warning(msg)
                    if adts is not None:
                        o.codec_context.extradata = adts[1]
                    self._aux_map[info.index] = (o, adts[0] if adts is not None else None)
                    if info.kind == "audio":
                        self._aux_check[info.index] = _damage_check(ins)
                    self._note_marks(copy_stream_tags(ins, o))
                    continue
                except (ValueError, av.error.FFmpegError) as e:
                    why = str(e)
            elif why is None:
                why = (copy_refusal(out.format.name, name, out.supported_codecs) if copying
                       else "as asked (--audio aac)")
            if info.kind == "audio":
                codec = "aac" if self.audio == "aac" else _audio_fallback_codec(out.format.name)
                rate, layout, mixed = transcode_plan(codec, ins, info.sample_rate, info.channels, unknown=bool(unknown))
                o = out.add_stream(codec, rate=rate)
                o.layout = layout
                resampler = av.AudioResampler(format=o.codec_context.codec.audio_formats[0].name, layout=layout, rate=rate)
                self._aux_map[info.index] = (o, [resampler, None])
                self._note_marks(copy_stream_tags(ins, o, encoded=True))
                msg = transcoded_note(info.index, name, codec, mixed, why)
                if self.audio == "aac" and not mixed:
                    log.info(msg)  # what was asked, nothing more lost: no fallback
                else:  # (the container refused a copy, or the encoder changed its channels or rate)
                    self.fallbacks.append(msg)
                    log.warning(msg)
            else:
                self._drop(f"{info.kind} stream #{info.index} ({info.codec or _describe(ins)}) dropped: {why}")

    def _other_programs(self, meta) -> dict[int, str]:
        """The audio, subtitle and data streams of programs other than the restored video's
        (an input with several, see ``VideoSource.programs``: a DVB multiplex's other channels),
        each with why it is left out (:func:`other_programs`)."""
        main = getattr(self.source, "_vstream", None)
        if main is None:
            return {}
        return other_programs(self.source.programs, main.index,
                              [(i.index, i.kind, i.codec) for i in meta.audio + meta.subtitles + meta.data],
                              video="the restored video", target=self.target)

    def _setup_other_video(self, in_streams: dict) -> None:
        # Video streams besides the one restored: cover art (an attached picture: album/phone
        # thumbnails, MKV covers) is copied as it is where the container has covers; anything else
        # (a second angle) is not restored and is reported.
        main = getattr(self.source, "_vstream", None)
        fmts = set(self._out.format.name.split(","))
        for ins in in_streams.values():
            if ins.type != "video" or (main is not None and ins.index == main.index):
                continue
            name = getattr(ins.codec_context, "name", None) or "unknown codec"
            cover = bool(int(ins.disposition) & int(av.stream.Disposition.attached_pic))
            if not cover:
                self._drop(other_video_dropped(ins.index, name))
                continue
            if "matroska" in fmts:
                self._cover_as_attachment(ins, name)
                continue
            refused = cover_refused(self._out.format.name, ins.index, name)
            if refused:
                self._drop(refused)
                continue
            try:
                o = self._out.add_stream_from_template(ins)
                copy_stream_tags(ins, o)
                o.disposition = int(ins.disposition)
            except (ValueError, av.error.FFmpegError) as e:
                self._drop(f"cover art (stream #{ins.index}, {name}) dropped: {e}")
                continue
            self._aux_map[ins.index] = (o, None)

    def _note_marks(self, note: str | None) -> None:
        if note:
            self._drop(note)

    def _cover_as_attachment(self, ins, name: str) -> None:
        # Matroska keeps covers as attachments (FFmpeg reads them back as attached pictures).
        att = cover_attachment(self.source.spec, ins) if getattr(self.source, "kind", None) == "file" else None
        if att is None:
            self._drop(f"cover art (stream #{ins.index}, {name}) dropped: it could not be read as an attachment")
            return
        self._out.add_attachment(*att)

    def _setup_attachment(self, info, ins) -> None:
        # Matroska attachments (fonts an ASS subtitle track needs, cover images) are part of the
        # header, not packets; other containers have no place for them.
        att = attachment(ins) if ins is not None else None
        if att is None:
            self._drop(f"attachment stream #{info.index} dropped: its file name, type or data could not be read")
        elif not accepts_attachments(self._out):
            self._drop(attachment_refused(self._out.format.name, att[0], att[1]))
        else:
            self._out.add_attachment(*att)

    def _setup_subtitle(self, info, ins) -> None:
        # Subtitles are kept under audio='copy' and 'aac' alike ('aac' is about audio): copied when
        # the container takes the codec, else text is converted to the container's text codec
        # (SubRip/ASS/WebVTT <-> mov_text, see _subtitles), else (bitmap subtitles) dropped.
        out, name = self._out, info.codec
        fmt = out.format.name
        why = None
        if can_copy(fmt, name, out.supported_codecs):
            try:
                self._aux_map[info.index] = (out.add_stream_from_template(ins), None)
                self._note_marks(copy_stream_tags(ins, self._aux_map[info.index][0]))
                return
            except (ValueError, av.error.FFmpegError) as e:
                why = str(e)
        target = text_target(fmt, name)
        if target is None:
            if why is None:
                why = subtitle_refusal(fmt, name, out.supported_codecs)
            self._drop(f"subtitle stream #{info.index} ({name}) dropped: {why}")
            return
        try:
            conv = SubtitleConverter(ins, out, target)
        except (ValueError, av.error.FFmpegError) as e:
            self._drop(f"subtitle stream #{info.index} ({name}) dropped: converting it to {target} failed ({e})")
            return
        self._aux_map[info.index] = (conv.stream, conv)
        msg = f"subtitle stream #{info.index} ({name}) converted to {target}: {fmt} does not accept {name}"
        self.fallbacks.append(msg)
        log.info(msg)
        self._note_marks(marks_lost(out, ins.index, int(ins.disposition)))

    # --- encoder thread -----------------------------------------------------------------
    def write(self, frame: Frame) -> None:
        """Queue ``frame`` for encoding; the sink releases its slot once encoded.

        Blocks while the encoder is ``queue_size`` frames behind (back-pressure). Raises the
        encoder thread's error, if it had one."""
        if self._closed:
            raise EncodeError("write() after the sink was closed")
        frame.image  # fail now (in the caller) for a released frame
        while True:
            if self._error is None and self.stalled():
                self._give_up(STREAM_STALL_S)
            if self._error is not None:
                raise self._failed() from self._error
            try:
                if self.drop_when_behind and self.is_url:
                    self._queue.put_nowait(frame)
                else:
                    self._queue.put(frame, timeout=_QUEUE_POLL_S)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    raise EncodeError(f"encoder thread for {self.target} stopped")
                if self.drop_when_behind and self.is_url:
                    self.frames_not_sent += 1
                    if self.frames_not_sent == 1:
                        log.warning("%s is behind (the network or the server is slow): frames are left out of "
                                    "the stream until it catches up", self.target)
                    frame.release()
                    return

    def stalled(self, bound: float | None = None) -> bool:
        """A stream URL whose writer has been busy on one frame for ``bound`` seconds (default
        :data:`STREAM_STALL_S`: blocked on a server or viewer that stopped reading), or was given up
        on already. Files: never."""
        if not self.is_url:
            return False
        bound = STREAM_STALL_S if bound is None else bound
        since = self._busy_since
        return self._abandoned or (since is not None and time.monotonic() - since >= bound)

    def _give_up(self, bound: float) -> None:
        """Fail a stalled stream: its writer thread (a daemon, blocked in the socket write) is left
        to itself and its container is never touched again (closing it under the write would crash)."""
        since = self._busy_since
        waited = max(bound, time.monotonic() - since) if since is not None else bound
        if self._error is None:
            self._error = _StreamStalled(
                f"sending to {self.target} made no progress for {waited:.1f} s (the server or viewer stopped "
                "reading): the stream was stopped",
                hint="check the server (or the viewer of a tcp:// stream); a slow network drops frames from "
                     "the stream, a stopped one ends it")
        self._abandoned = True
        self._stop_encoding.set()
        if self._relay is not None:  # (its pipe broken: the writer stuck on it comes back, failed)
            self._relay.kill()

    def _failed(self) -> EncodeError | OutputNotWritableError:
        """The error to raise for the encoder thread's: its own words where it says the whole of it
        (the output folder gone, :meth:`_vanished`; one it may not write into, :meth:`_refused`),
        else "encoding NAME failed: ..."."""
        e = self._error
        if isinstance(e, (_OutputGone, _StreamStalled)):
            return EncodeError(str(e), hint=e.hint)
        if self._gone_first():  # (the muxer's first write, its folder removed before it)
            return EncodeError(self._gone_words(made=False), hint=_KEEP_FOLDER_HINT)
        if self._refused(e):
            return not_writable(Path(self._path).parent, e)
        # (an OSError's words only: FFmpeg's name the hidden temporary file, gone by then)
        why = e.strerror if isinstance(e, OSError) and e.strerror else e
        if self._relay is not None:  # (a broken pipe: the child sending the stream says why it ended)
            why = self._relay.why(wait=1.0) or why
        return EncodeError(f"encoding {self.target} failed: {why}", hint=_encode_hint(e, live=self.live))

    def _refused(self, e: BaseException | None = None) -> bool:
        """The encoder thread's error (or ``e``) is the file system refusing the muxer the file (no
        permission in its folder, a read-only drive: made so during the run, or not told by
        ``os.access`` before it), its folder still there: not a folder gone."""
        e = self._error if e is None else e
        # (an encoder refusing to open says EPERM too: av's error then names the call,
        # 'avcodec_open2("h264_nvenc", ...)', not a file of the output's folder)
        if self.is_url or not refused_in(Path(self._path).parent, e):
            return False
        return Path(self._path).parent.is_dir()

    def _refused_words(self, e: BaseException | None) -> str:
        why = e.strerror if isinstance(e, OSError) and e.strerror else "permission denied"
        return (f"nothing was saved of the {self.frames_written} frame(s) encoded: the output folder "
                f"{Path(self._path).parent} cannot be written into ({why})")

    def _gone_first(self, e: BaseException | None = None) -> bool:
        """The encoder thread's error (or ``e``) is the muxer failing to make the file at its
        first packet, the output folder gone before."""
        e = self._error if e is None else e
        return isinstance(e, FileNotFoundError) and not self.is_url and not Path(self._path).parent.is_dir()

    def _run(self) -> None:
        try:
            while True:
                try:
                    frame = self._queue.get(timeout=_QUEUE_POLL_S)
                except queue.Empty:
                    if self._stop_encoding.is_set():
                        return
                    continue
                if frame is None:
                    return
                self._busy_since = time.monotonic()
                t0 = time.perf_counter()
                try:
                    self._encode(frame)
                finally:
                    self.encode_seconds += time.perf_counter() - t0
                    self._busy_since = None
                    frame.release()
                if self._abandoned:  # (given up on while stuck: the write came back after all)
                    return
                if time.monotonic() - self._room_checked >= _ROOM_CHECK_S:
                    self._check_room()  # (also while the encoder holds its first frames back: x264 ~40)
        except BaseException as e:
            if not self._abandoned:  # (given up on: the stall is the error, not the broken pipe after)
                self._error = e
            # drain so a blocked writer wakes and frames go back to the ring
            while True:
                try:
                    f = self._queue.get_nowait()
                except queue.Empty:
                    break
                if f is not None:
                    f.release()

    def _choose_pix(self) -> str:
        # Keep 4:2:2 (DV, broadcast) / 4:4:4 chroma when the encoder can; everything else
        # (grey, RGB, 4:1:1...) becomes 8-bit 4:2:0, which every player decodes. MJPEG's
        # 4:2:2 (webcams, old photo cameras: yuvj422p) is JPEG's default, not a choice, and
        # H.264 4:2:2 does not play in browsers or on phones: those become 4:2:0 too; full-range
        # 4:4:4 (yuvj444p) stays 4:4:4 (see _unjpeg). (>8-bit frames: see _choose_hi_pix.)
        cand = self.meta.pix_fmt if self.meta is not None else "yuv420p"
        if self.chroma == "420":
            cand = as_420(cand)
        if self._hardware:
            pix = nvenc_pix_fmt(self.codec, cand, high=False)
            self._note_nvenc_format(pix, _software_pix(_ENCODERS[self.codec], cand), cand)
            return pix
        pix = _software_pix(self.encoder, cand)
        if self.encoder in ("libx264", "libx265") and chroma_of(pix) != "420":
            log.info("%s: the source's %s chroma is kept (%s): editors take it; browsers, phones and TVs do not play "
                     "it (chroma='420' (--chroma 420) writes 4:2:0)", self.target, ":".join(chroma_of(pix)), pix)
        return pix

    def _note_nvenc_format(self, pix: str, soft: str | None, src: str) -> None:
        """Say what NVENC's format keeps less of than the software encoder of the codec would
        (chroma, depth): a visible fallback, not a silent one."""
        if soft is None:
            return
        rank = {"420": 0, "422": 1, "444": 2}
        lost = []
        if rank[chroma_of(soft)] > rank[chroma_of(pix)]:
            lost.append(":".join(chroma_of(soft)) + " chroma")
        if bits_per_component(soft) > min(bits_per_component(pix), 10):  # NVENC reads 16-bit as 10
            lost.append(f"{bits_per_component(soft)}-bit depth")
        if lost:
            msg = (f"{self.encoder}: the {src} source is written as {pix}, without its {' and '.join(lost)} (NVENC: "
                   "4:2:2 only on RTX 50-series GPUs, no 12-bit, AV1 4:2:0 only); encoder='software' keeps "
                   f"{soft}")
            self.fallbacks.append(msg)
            log.warning(msg)

    def _choose_hi_pix(self) -> str | None:
        """The pixel format for frames that carry ``hi`` (a >8-bit source), or ``None`` (with a
        fallback note) when the encoder has no format above 8 bits: see :func:`choose_high_pix_fmt`."""
        src = self.meta.pix_fmt if self.meta is not None else "yuv420p10le"
        if self.chroma == "420":
            src = as_420(src)
        enc = self.encoder
        if self._hardware:
            pix = nvenc_pix_fmt(self.codec, src, high=True, supported=_video_formats(enc))
            if pix is None:
                msg = (f"{enc} writes 8-bit only (NVENC encodes H.264 High 10 only on RTX 50-series GPUs, and few "
                       f"players play it): the {bits_per_component(src)}-bit source ({src}) is written as 8-bit 4:2:0 "
                       "(codec='hevc' or codec='av1' keeps its precision)")
                self.fallbacks.append(msg)
                log.warning(msg)
            else:
                log.info("%s: %d-bit source (%s) encoded as %s with %s", self.target, bits_per_component(src), src,
                         pix, enc)
                self._note_nvenc_format(pix, choose_high_pix_fmt(src, _video_formats(_ENCODERS[self.codec])), src)
            return pix
        if self.is_url and enc == "libx264":
            # RTMP/SRT ingest servers and live players take 8-bit H.264 only (High 10 is refused)
            msg = (f"stream output with codec='h264': the {bits_per_component(src)}-bit source ({src}) is streamed "
                   "as 8-bit 4:2:0, the only H.264 that ingest servers and players take (codec='hevc' keeps its precision)")
            self.fallbacks.append(msg)
            log.warning(msg)
            return None
        pix = choose_high_pix_fmt(src, _video_formats(enc))
        if pix is None:
            able = [c for c, e in _ENCODERS.items() if e in av.codecs_available and choose_high_pix_fmt(src, _video_formats(e))]
            msg = (f"{enc} (codec={self.codec!r}) has no pixel format above 8 bits in this FFmpeg build: the "
                   f"{bits_per_component(src)}-bit source ({src}) is written as 8-bit 4:2:0 (smooth gradients may band)"
                   + (f"; --codec {' / '.join(able)} keep{'s' if len(able) == 1 else ''} its precision" if able else ""))
            self.fallbacks.append(msg)
            log.warning(msg)
        else:
            log.info("%s: %d-bit source (%s) encoded as %s with %s%s", self.target, bits_per_component(src), src, pix,
                     enc, " (H.264 High 10 / 4:2:2 profiles: browsers and most hardware decoders do not play "
                     "them; codec='hevc' or codec='av1' for delivery)" if enc == "libx264" else "")
        return pix

    def _decoded_as_is(self, frame: Frame, size: tuple[int, int]):
        """The decoded YUV picture of ``frame`` (:attr:`Frame.yuv`) where the frame may be written
        from it outside its pasted faces: the same pixel format as the output's (a full-range
        ``yuvj`` one is its plain twin, its range a tag), size, matrix and range, by a software
        encoder, with no alpha to add. RGB is clipped to its range: a YUV picture's codes above
        white and below black (super-whites of camcorders and broadcast, 4-10% of some real clips'
        highlights) came back clipped, every frame, faces or not. None: the RGB is encoded."""
        src = getattr(frame, "yuv", None)
        if src is None or getattr(frame, "pasted", None) is None or self._hardware or self._alpha_pix is not None:
            return None
        try:
            # (the plain twin of a full-range yuvj format: the same layout, its range a tag; _unjpeg
            # also makes MJPEG's 4:2:2 a 4:2:0, a layout of its own)
            if (src.format.name.replace("yuvj", "yuv") != self._pix or (src.height, src.width) != tuple(size)
                    or decode_colorspace(src.colorspace, src.width, src.height) != self._colorspace
                    or decode_range(src.format.name, int(src.color_range)) != self._color_range):
                return None
        except (AttributeError, TypeError, ValueError):
            return None
        return src

    def _to_even(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        eh, ew = self._even_size(h, w)
        if (eh, ew) == (h, w):
            return img
        if self.odd_size == "crop":
            return img[:eh, :ew]
        return np.pad(img, ((0, eh - h), (0, ew - w), (0, 0)), mode="edge")

    def _choose_formats(self, frame: Frame) -> None:
        # >8-bit source frames (``hi``): encode 10/12-bit from the 16-bit copy when the
        # encoder can (decided once, at the first frame)
        alpha = getattr(self.source, "has_alpha", False) is True
        if self.codec == "prores":
            src = self.meta.pix_fmt if self.meta is not None else "yuv422p10le"
            self._pix = prores_pix(src, alpha)
            self._hi = frame.hi is not None
            if self._hi and bits_per_component(src) > 10:
                msg = (f"FFmpeg's ProRes encoder takes 10-bit input: the {bits_per_component(src)}-bit source ({src}) "
                       f"is written at 10 bits (codec='hevc' (--codec hevc) keeps 12 bits"
                       f"{' but no key channel' if alpha else ''})")
                self.fallbacks.append(msg)
                log.warning(msg)
        else:
            pix = self._choose_hi_pix() if frame.hi is not None else None
            self._hi = pix is not None
            self._pix = pix or self._choose_pix()
        self._alpha_pix = None
        if alpha:
            self._choose_alpha()

    def _choose_alpha(self) -> None:
        """Write the source's transparency where the encoder has the format's ``yuva`` twin
        (ProRes 4444, VP9 4:2:0 at 8 bits); VP9 drops a 10-bit source to 8 bits for it (keyed
        footage needs its key more than two extra bits). Elsewhere (H.264, HEVC, AV1, NVENC) the
        output is opaque, and the fallbacks say so."""
        # Only encoders known to write alpha: libx265 lists yuva420p, but opening it fails unless
        # x265 was built with its alpha layer (this wheel's is not), so the format list is not enough.
        # VP9's alpha is a second layer that only Matroska/WebM carry (BlockAdditional): mp4/avi/flv
        # take the yuva420p stream but keep its picture alone.
        fmts = set(self._out.format.name.split(","))
        holds = self.encoder != "libvpx-vp9" or bool(fmts & {"matroska", "webm"})
        formats = _video_formats(self.encoder) if self.encoder in _ALPHA_ENCODERS and holds else set()
        twin = alpha_twin(self._pix)
        if twin is None or twin not in formats:
            pix8 = self._choose_pix()
            twin8 = alpha_twin(pix8)
            if self._hi and twin8 is not None and twin8 in formats:
                msg = (f"{self.encoder} holds transparency at 8 bits only: the {self.meta.pix_fmt if self.meta else ''} "
                       f"source is written as {twin8} to keep its alpha channel (.mov or .mkv: ProRes 4444 keeps 10 bits)")
                self.fallbacks.append(msg)
                log.warning(msg)
                self._hi, self._pix, twin = False, pix8, twin8
            else:
                msg = (f"the alpha channel (transparency) is dropped: {self.encoder} in "
                       f"{self._out.format.name.split(',')[0]} cannot hold it; {_ALPHA_HOME}")
                self.fallbacks.append(msg)
                log.warning(msg)
                return
        self._alpha_pix = twin
        log.info("%s: transparency kept (%s, %s)", self.target, self.encoder, twin)

    def _check_hardware(self, frame: Frame) -> None:
        """Open the NVENC encoder once with this video's size, format and options before its
        stream is added. The probe (``nvenc_available``) only shows that NVENC works on a small
        test frame; a consumer GPU's session limit (another program encoding), a size beyond
        NVENC's (H.264: 4096 px wide) or a format this GPU lacks (4:4:4) show only here, where
        ``encoder='auto'`` can still switch to software (a stream cannot be taken out of the
        container once added) and ``encoder='nvenc'`` gets FFmpeg's reason instead of a bare errno."""
        h, w = self._even_size(*frame.image.shape[:2])
        why = _try_open(self.encoder, width=w, height=h, pix_fmt=self._pix, options=self._nvenc_options(),
                        rate=self._rate(frame))
        if why is None:
            return
        if self.encoder_mode != "auto":
            raise HardwareEncoderError(
                f"encoder='nvenc' could not open for {w}x{h} {self._pix}: {why}",
                hint="NVENC works on this machine (its probe passed) but not with these settings: another program "
                "may hold the GPU's encode sessions (consumer GPUs allow a few at once), or the size or format is "
                "beyond this GPU's NVENC; --encoder auto falls back to software")
        self.encoder = _ENCODERS[self.codec]
        self.preset = auto_preset(self.codec, self._preset_asked, hardware=False)
        self.encoder_note = f"encoder='auto' used {self.encoder}, not NVENC ({w}x{h} {self._pix}): {why}"
        self.fallbacks.append(self.encoder_note)
        log.info("%s: %s", self.target, self.encoder_note)

    def _subsampled(self) -> tuple[bool, bool]:
        """Whether the output must have an even (height, width) because its pixel format halves
        the chroma's: both for 4:2:0, the width for 4:2:2, neither for 4:4:4. x264/x265 refuse an
        odd size there; an odd 4:4:4 size is encoded as it is (x264, x265, VP9, SVT-AV1 and
        ProRes take it). VP9 and AV1 take odd 4:2:0 sizes too (messenger and WebRTC recordings
        have them): nothing is padded for them (see :data:`_ODD_SIZE_ENCODERS`). NVENC:
        both, as before (not measured on odd 4:4:4)."""
        return _even_sides(self.encoder, self._alpha_pix or self._pix, hardware=self._hardware)

    def _even_size(self, h: int, w: int) -> tuple[int, int]:
        sh, sw = self._subsampled()
        dh, dw = h % 2 * sh, w % 2 * sw
        return (h + dh, w + dw) if self.odd_size == "pad" else (h - dh, w - dw)

    def _encode(self, frame: Frame) -> None:
        img = frame.image
        if self._vstream is None:
            n_notes = len(self.fallbacks)
            self._choose_formats(frame)
            if self._hardware:
                self._check_hardware(frame)
                if not self._hardware:  # encoder='auto' went to software: its formats, its notes
                    note = self.fallbacks.pop()
                    del self.fallbacks[n_notes:]
                    self.fallbacks.append(note)
                    self._choose_formats(frame)
        if self._hi and frame.hi is not None:
            img = frame.hi
        h, w = img.shape[:2]
        if self._vstream is None:
            even = self._even_size(h, w)
            if even != (h, w):
                dims = " and ".join(d for d, odd in (("width", even[1] != w), ("height", even[0] != h)) if odd)
                why = (f"{self.encoder} takes even sizes" if self._hardware else
                       f"{self.encoder} encodes {self._alpha_pix or self._pix} at an even {dims} only: its chroma "
                       f"has half the {dims}")
                msg = f"odd frame size {w}x{h}: {self.odd_size} to {even[1]}x{even[0]} ({why})"
                self.fallbacks.append(msg)
                log.warning(msg)
            self._setup(even[0], even[1], frame)
            self._last_pts = None
            self._last_dts = None
            self._rebase_negative(frame)
        src = self._decoded_as_is(frame, self._even_size(h, w))
        # the pasted areas' picture before the faces (see _yuv_paste), freed once the frame is encoded
        unpasted = getattr(frame, "unpasted", None)
        if unpasted is not None:
            frame.unpasted = None
            unpasted = unpasted if src is not None else None
        if img.device.type != "cpu":
            if unpasted:
                # queued before the picture's blocking copy on the same stream: done when it is
                # (no synchronisation of their own)
                unpasted = [(box, t.to("cpu", non_blocking=True)) for box, t in unpasted]
            img = img.cpu()
        arr = self._to_even(img.numpy())
        if src is not None:
            # the decoded picture as it was (no face in it: no conversion at all), the faces' changes
            # added in their areas (see _yuv_paste)
            vf = _yuv_copy(src, self._pix, self._colorspace, self._color_range)
            if frame.pasted:
                _yuv_paste(vf, src, arr, frame.pasted, self._pix, self._colorspace, self._color_range,
                           unpasted=unpasted)
        else:
            vf = rgb_to_av(arr, pix_fmt=self._pix, colorspace=self._colorspace, color_range=self._color_range)
        if self._alpha_pix is not None:
            a = frame.alpha
            if a is None or tuple(a.shape) != (h, w):  # a frame without one (or a side-by-side): opaque
                a = np.full((h, w), 255, np.uint8)
            else:
                a = a.cpu().numpy()
            vf = add_alpha(vf, self._to_even(a[..., None])[..., 0])
        for attr, v in self._frame_tags.items():
            setattr(vf, attr, v)
        # No pts (raw .h264/.hevc streams): the source's time (index / frame rate) in the output's
        # time base; a frame count there would squeeze the whole clip into a few microseconds.
        pts = frame.pts if frame.pts is not None else round(frame.time / frame.time_base)
        if self._rebase and self._origin is None:
            self._origin = Fraction(pts) * frame.time_base
        if self._origin is not None:
            pts -= round(self._origin / frame.time_base)
        tb_out = self._tb_out
        if tb_out != frame.time_base:  # (AVI: frame slots, see avi_frame_grid)
            pts = round(Fraction(pts) * frame.time_base / tb_out)
        if self._last_pts is not None and pts <= self._last_pts:
            # encoders need strictly increasing pts; the input had a duplicate/backwards stamp
            pts = self._last_pts + 1
            self.fixed_pts += 1
            if self.fixed_pts == 1 and tb_out != frame.time_base:
                # (an AVI's frame grid, see avi_frame_grid: two frames closer than a slot)
                log.info("%s: frame %d moved to the next slot of the AVI's %s fps frame grid", self.target,
                         frame.index, f"{float(1 / tb_out):.3f}".rstrip("0").rstrip("."))
            elif self.fixed_pts == 1:
                log.warning("%s: non-increasing pts at frame %d bumped by one tick", self.target, frame.index)
        if self._rebase_avi and self._last_pts is not None and pts - self._last_pts - 1 > AVI_MAX_SKIP:
            self._fill_avi_pause(pts)
        if self._last_pts is None:
            self._first_pts = pts
        self._last_pts = pts
        vf.pts = pts
        vf.time_base = tb_out
        dur = getattr(frame, "duration", None)
        if dur:
            # how long the frame is shown (a held last frame, a VFR pause, a trimmed window's end):
            # encoders give packets no duration, and the muxer would give the last one the
            # interval before it, cutting a 2 s closing still to one frame
            self._durations[pts] = max(1, round(Fraction(dur) / tb_out))
            while len(self._durations) > 256:  # frames an encoder dropped never come back as packets
                self._durations.pop(next(iter(self._durations)))
        if self._fields is not None:  # (flagged top/bottom field first, see _setup_fields)
            self._fields.push(vf)
            vf = self._fields.pull()
        if self.live:
            self._keyframe_due(vf)
        with _quiet_svt(self.encoder) if not self._vstream.codec_context.is_open else nullcontext():
            packets = self._vstream.encode(vf)  # (the first opens the encoder)
        for packet in packets:
            self._mux_video(packet)
        if self._rebase_avi:
            self._held_vf = vf  # (shown again through a long pause: _fill_avi_pause)
        self.frames_written += 1
        if self._aux is not None:
            # audio/subtitles up to the end of this frame only: were the run stopped now (Ctrl-C,
            # SIGTERM) the ``.partial`` file must end with its picture, not with a frozen last
            # frame under audio that ran ahead (the muxer interleaves whatever we give it)
            rate = self.meta.frame_rate if self.meta is not None and self.meta.frame_rate else Fraction(25)
            self._mux_aux(self._aux.take_until(frame.time + float(1 / rate)))

    def _keyframe_due(self, vf) -> None:
        """Live outputs: ``vf`` is made a keyframe when the next frame, expected one interval (the
        last one between frames) later, would come more than :data:`LIVE_KEYFRAME_S` of the
        frames' time after the last keyframe asked for, or when that time has passed already (the
        first frame is one anyway). So at a steady rate keyframes are never more than
        LIVE_KEYFRAME_S apart (0.7 fps: every 1.43 s, where forcing the first frame past the 2 s
        gave 2.86 s); a frame later than the interval before it foretold (restoring slowed down)
        may stretch a gap beyond it by that lateness, forced then. Every encoder here takes
        ``pict_type = I`` as a keyframe (x265 and NVENC as an IDR with ``forced-idr``)."""
        t = Fraction(vf.pts) * self._tb_out
        prev, self._prev_key_t = self._prev_key_t, t
        due = self._next_key is None or t >= self._next_key
        if not due and prev is not None and t > prev:
            due = t + (t - prev) > self._next_key
        if due:
            vf.pict_type = av.video.frame.PictureType.I
            self._next_key = t + LIVE_KEYFRAME_S

    def _fill_avi_pause(self, pts: int) -> None:
        """AVI stores a pause as empty chunks (the frame before is held), and FFmpeg's muxer
        writes at most :data:`AVI_MAX_SKIP` of them in a row: a longer pause before slot ``pts``
        failed the run at its end ("Invalid argument"). The frame held is encoded again every
        ``AVI_MAX_SKIP`` slots, which is what the pause shows anyway."""
        held = self._held_vf
        gap_s = float((pts - self._last_pts) * self._tb_out)
        slot = self._last_pts + AVI_MAX_SKIP
        n = 0
        while pts - self._last_pts - 1 > AVI_MAX_SKIP:
            held.pts = self._last_pts = slot
            for packet in self._vstream.encode(held):
                self._mux_video(packet)
            slot += AVI_MAX_SKIP
            n += 1
        log.info("%s: a pause of %.0f s is longer than AVI can skip: the frame before it is written again %d time(s)",
                 self.target, gap_s, n)

    def _rebase_negative(self, frame: Frame) -> None:
        """A source that starts before 0 (an MPEG-TS whose 33-bit timestamps wrapped: FFmpeg
        makes the times before the wrap negative; an edited file with a negative offset) written
        to mp4/mov: their muxer hides negative times behind an edit list, so players would start
        at 0 and never show the first frames. Such outputs are written relative to the first
        frame, like AVI and trimmed runs (audio and subtitles by the same offset: in sync)."""
        if self._rebase or self.is_url or not set(self._out.format.name.split(",")) & _MOV_FAMILY:
            return
        # (audio alone before 0, e.g. AAC priming, is what the muxer's edit list is for: left as is)
        t = frame.time if frame.pts is None else float(frame.pts * frame.time_base)
        if t < 0:
            self._rebase = True
            msg = (f"the input's video starts at {t:.3f} s (negative timestamps: a wrapped MPEG-TS clock?): "
                   f"written from its first frame at 0 so that {self._out.format.name} players show every frame")
            self.fallbacks.append(msg)
            log.info(msg)

    def _mux_video(self, packet) -> None:
        """Mux an encoded video packet, repairing an impossible dts first. libx265 (4.2, through
        libavcodec) gives clips of one or two frames an uninitialised dts about one time in three
        (e.g. -62551903713508 for pts 0), which the mp4 muxer refuses ("patches welcome").
        A dts is impossible when it is after its pts, not after the previous dts, or earlier than
        any reordering allows: an encoder that holds frames back for B-frames gives a packet the
        pts of one of the packets just before (or of itself) as dts, the first few moved back by
        at most the span of the frames it was given before its first packet (x264: the pts of
        its B-frame delay's frame minus the first's). So after a still the dts of a P-frame coded
        ahead of its B-frames lies seconds before its pts, which is right; a frame count at the
        stream's rate (64 frames, as this was) took a 3 s still at 30 fps for a broken dts.
        An impossible dts becomes the previous dts + 1 (or the pts). The packets come in the
        encoder's time base, the frames' (``_tb_out``)."""
        dts, pts = packet.dts, packet.pts
        if dts is not None and pts is not None:
            last = self._last_dts
            recent = self._recent_pts
            if last is None:  # the encoder's first packet
                recent.clear()
                given = self._last_pts if self._last_pts is not None else pts
                self._dts_slack = max(0, given - (self._first_pts if self._first_pts is not None else pts))
            recent.append(pts)
            why = ("after its display time" if dts > pts else
                   f"not after the one before ({last})" if last is not None and dts <= last else
                   "before any frame it could follow" if dts < min(recent) - self._dts_slack else None)
            if why:
                packet.dts = min(pts, last + 1) if last is not None else pts
                self.fixed_dts += 1
                if self.fixed_dts == 1:
                    log.info("%s: the video encoder gave a packet a decoding time %s (dts %d for pts %d): "
                             "written with dts %d", self.target, why, dts, pts, packet.dts)
            self._last_dts = packet.dts
        ticks = self._durations.pop(packet.pts, None) if packet.pts is not None else None
        if ticks and not packet.duration:
            packet.duration = ticks
        if packet.pts is not None and packet.duration:
            end = packet.pts + packet.duration
            self._video_end = end if self._video_end is None else max(self._video_end, end)
        if set(self._out.format.name.split(",")) & _MOV_FAMILY:
            # mp4/mov time samples by their dts and end the track at the last packet's dts + its
            # duration (+ the B-frame delay its edit list skips): with B-frames that packet is not
            # the last frame shown, so it is held back until the end (_finish_video) to be given
            # the span up to the last frame's end
            if self._dts_delay is None and packet.pts is not None and packet.dts is not None:
                self._dts_delay = max(0, packet.pts - packet.dts)
            packet, self._held_video = self._held_video, packet
            if packet is None:
                return
        self._out.mux(packet)
        self.packets_muxed += 1
        self._bytes_muxed += packet.size
        if time.monotonic() - self._room_checked >= _ROOM_CHECK_S:
            self._check_room()

    def _check_room(self) -> None:
        """Stop with the file system's error once the temporary file cannot take what was muxed.
        FFmpeg's muxers keep a refused write to themselves until the trailer: a disk that filled
        (or ``ulimit -f``) at 10 % of a two-hour video was said after all of it was
        restored and encoded. Asked about once a second (a stat: no cost to a run)."""
        self._room_checked = time.monotonic()
        if self.is_url or self._own_files:
            return
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            if self._ident is None and not self.packets_muxed:
                return  # (not made yet: the muxer opens it at its first packet)
            # its folder removed or moved (or the file deleted): the run went on restoring into a
            # file in no folder, or in another, and said so once the whole video was done (a minute
            # later on a 25 s clip; hours on a film, its disk space in use all along). Moved while
            # the output is being finished (or kept as .partial), it is finished there.
            gone = self._vanished()
            if self._moved_from is None or not self._closed:
                raise gone from None
            return
        except OSError:
            return
        self._ident = (st.st_dev, st.st_ino)
        pending = self._bytes_muxed - st.st_size  # in the muxer's buffers (avio's, a Matroska cluster), or refused
        if self._size_limit is None:
            self._size_limit = _file_size_limit() or 0  # (read once a run: 0 = none)
        limit = self._size_limit
        if limit and self._bytes_muxed > limit:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
        if pending <= _ROOM_SLACK:
            return
        try:
            fs = os.statvfs(self._path)
        except (OSError, AttributeError):  # (Windows: no statvfs)
            return
        # (f_blocks 0: a file system that does not say its size, some FUSE mounts; root may use
        # the blocks kept for it)
        free = (fs.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else fs.f_bavail) * fs.f_frsize
        if fs.f_blocks and free < pending:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def _finish_video(self) -> None:
        """Mux the packet held back by _mux_video, lasting until the end of the last frame shown."""
        held, self._held_video = self._held_video, None
        if held is None:
            return
        if self._video_end is not None and held.dts is not None:
            span = self._video_end - held.dts - (self._dts_delay or 0)
            if span > (held.duration or 0):
                held.duration = span
        self._out.mux(held)
        self.packets_muxed += 1

    def _mux_aux(self, packets) -> None:
        for p in packets:
            entry = self._aux_map.get(p.stream.index)
            if entry is None:
                continue
            o, tx = entry
            if tx is None or isinstance(tx, av.bitstream.BitStreamFilterContext):
                if self._hidden_by_edit_list(p):
                    continue
                check = self._aux_check.get(p.stream.index)
                if check is not None:
                    self._check_copied(check, p, o.index)
                # AVI: copied packets move with the video (see _NO_START_TIMES)
                shift = round(self._origin / p.time_base) if self._origin is not None else 0
                for q in (tx.filter(p) if tx is not None else [p]):  # ADTS AAC into AVI/fMP4: aac_adtstoasc
                    q.stream = o  # mux rescales from the packet's time base to the output stream's
                    self._mux_aux_packet(q, shift)
            elif isinstance(tx, SubtitleConverter):
                for q in tx.convert(p):
                    self._mux_cue(q)
            else:
                self._transcode_audio(p, o, tx)

    def _check_copied(self, decoder, p, index: int) -> None:
        """Decode a copied audio packet with a throwaway decoder, only to count those that cannot
        be decoded (bytes zeroed or overwritten in the file): they are copied as they are, and
        players click or go silent there, strict decoders stop. (Cheap: two minutes of stereo AAC
        take 0.06 s of CPU.)"""
        if not p.size:
            return
        try:
            decoder.decode(p)
        except av.error.FFmpegError:
            n = self._aux_damaged.get(index, 0)
            self._aux_damaged[index] = n + 1
            if not n:
                log.warning("%s: a damaged audio packet at %.3f s is copied as it is (output stream #%d)", self.target,
                            float((p.pts if p.pts is not None else p.dts or 0) * (p.time_base or 0)), index)
        except (ValueError, RuntimeError):  # (the checker itself: no count, no harm to the copy)
            pass

    def _hidden_by_edit_list(self, p) -> bool:
        """True for a copied packet that the input's edit list hides (an mp4/mov cut in an editor
        or with ``ffmpeg -ss -c copy``: FFmpeg flags it discard) and that ends before the first
        frame, going into a container without edit lists (mkv, ts, ...): there it would play, the
        cut-away sound over no picture, and push every stream later. mp4/mov keep it (their edit
        list hides it again); the encoder priming packet that ends at the first frame is kept as
        the decoder needs it (FFmpeg's muxers give it the delay, as before)."""
        if not p.is_discard or self._rebase or self._first_time is None:
            return False  # (AVI and trimmed runs: clamp_to_origin leaves out what is before the origin)
        if set(self._out.format.name.split(",")) & _MOV_FAMILY:
            return False
        t = p.pts if p.pts is not None else p.dts
        if t is None or not p.time_base or (t + (p.duration or 0)) * p.time_base >= min(self._first_time, 0):
            return False
        n = self._hidden.get(p.stream.index, 0)
        self._hidden[p.stream.index] = n + 1
        if not n:
            log.info("%s: stream #%d: packets the input's edit list hides are left out (%s has no edit lists)",
                     self.target, p.stream.index, self._out.format.name)
        return True

    def _transcode_audio(self, p, o, tx) -> None:
        resampler = tx[0]
        sr = o.codec_context.sample_rate
        packets = p.decode() if p is not None else []
        for af in packets:
            t = Fraction(af.pts) * af.time_base if af.pts is not None and af.time_base else None
            if t is not None and self._origin is not None:
                t -= self._origin
            if tx[1] is None:
                tx[1] = round((t or Fraction(0)) * sr)
                if tx[1] > 0 and getattr(self.source, "trim_start", 0):
                    # a cut's first decoded frame comes a packet or two after the cut (a decoder
                    # resumed after a seek gives nothing for its first packet): silence from 0, so
                    # that the encoder's first packets start there too (its priming packet,
                    # straddling 0, was moved to 0 and the whole track played late by up to
                    # half a packet: 56 ms at 8 kHz)
                    n, tx[1] = tx[1], 0
                    self._encode_silence(o, resampler, tx, n)
            elif t is not None and round(t * sr) - tx[1] > sr * _AUDIO_GAP_S:
                # A gap in the source's audio (a dropout, a stream's discontinuity, a live
                # source's outage): the encoder numbers samples back to back, so without this
                # everything after the gap would play early by its length. Filled with silence.
                self._encode_silence(o, resampler, tx, round(t * sr) - tx[1])
            guessed = _guessed_layout(af.layout.name)
            if guessed:  # (see _setup_aux: the resampler is to read it as the encoder's layout)
                af = _drop_samples(af, 0, guessed)
            new, out_frames = resample_changing(resampler, af)
            if new is not resampler:
                resampler = tx[0] = new
                if not self._aux_reconfigured:
                    self._aux_reconfigured = True
                    log.info("%s: the source's audio changed its channels or rate mid-stream; transcoding goes on",
                             self.target)
            for rf in out_frames:
                if self._rebase and tx[1] < 0:
                    # a cut (or AVI): samples before the first frame are left out here, to the
                    # sample, so the track starts at 0 exactly (packets encoded across the origin
                    # were moved to 0 by clamp_to_origin: up to half a packet late)
                    cut = min(rf.samples, -tx[1])
                    self._before_origin += 1  # (reported for AVI: sound before the pictures is lost)
                    self._before_origin_s += cut / o.codec_context.sample_rate
                    if cut == rf.samples:
                        tx[1] += cut
                        continue
                    rf, tx[1] = _drop_samples(rf, cut), 0
                if not self._rebase_avi:
                    end = self._part_end_samples(o.codec_context.sample_rate)
                    if end is not None and tx[1] + rf.samples > end:
                        # the part ends inside this frame (--duration): its sound stops with it,
                        # to the sample (a 0.5 s PCM packet ran 0.18 s past the last frame)
                        if tx[1] >= end:
                            continue
                        rf = _drop_samples(rf, 0, keep=end - tx[1])
                rf.pts = tx[1]
                rf.time_base = Fraction(1, o.codec_context.sample_rate)
                tx[1] += rf.samples
                for q in o.encode(rf):
                    self._mux_aux_packet(q, primed=True)

    def _encode_silence(self, o, resampler, tx, n: int) -> None:
        """``n`` samples of silence into audio output ``o`` from position ``tx[1]`` (in pieces of
        at most a second, so that an hour's gap costs no hour of memory)."""
        for f in silence(resampler.format.name, resampler.layout.name, o.codec_context.sample_rate, tx[1], n):
            tx[1] += f.samples
            for q in o.encode(f):
                self._mux_aux_packet(q, primed=True)

    def _mux_cue(self, q) -> None:
        """Mux a converted subtitle cue, moved with the video when the output is shifted."""
        if self._origin is not None:  # a trimmed or shifted source: cues move too
            tb = q.time_base or q.stream.time_base
            self._mux_aux_packet(q, round(self._origin / tb))
        elif self._part_end() is not None:  # --duration alone: cut at the part's end (an mp4's ran on)
            self._mux_aux_packet(q)
        else:
            self._out.mux(q)
            self._aux_muxed[q.stream.index] = self._aux_muxed.get(q.stream.index, 0) + 1

    def _mux_aux_packet(self, p, shift: int = 0, *, primed: bool = False) -> None:
        """Mux a copied or transcoded packet moved ``shift`` ticks earlier (see _choose_shift); for
        AVI and trimmed runs (``_rebase``) only from the origin on (see _NO_START_TIMES).
        ``primed``: a packet of our own audio encoder, whose samples were cut at the origin to the
        sample already; its first packet, before 0, is the encoder's priming, which Matroska/WebM
        declare as the track's codec delay (the reader skips that many samples): dropped, the
        reader skipped the part's first real samples instead (21 ms of sound at 48 kHz)."""
        if (not self._rebase_avi and p.stream.type == "audio" and p.stream.codec_context.name.startswith("pcm_")
                and (self._rebase or self._part_end() is not None)):
            # (not AVI: its audio follows the frame grid, and a sample cut there left the sound a
            # frame early and silent about it; it keeps clamp_to_origin and its warnings.
            # ``--duration`` alone cuts the end only: the source's times are kept.)
            p = self._cut_pcm(p, shift, head=self._rebase)
            shift = 0
            if p is None:
                return
        if not self._rebase and p.stream.type == "subtitle" and p.duration and self._part_end() is not None:
            if not self._cut_cue(p, shift):  # (--duration alone: a cue running past the part stops there)
                return
            shift = 0
        if self._rebase:
            if p.stream.type == "subtitle" and p.duration:
                if not self._cut_cue(p, shift):
                    return
            elif not (primed and not self._rebase_avi and {"matroska", "webm"} & set(self._out.format.name.split(","))) and not (
                    clamp_to_origin(p, shift) if self._rebase_avi else keep_from_origin(
                        p, shift, edit_list=bool(set(self._out.format.name.split(",")) & _MOV_FAMILY))):
                self._before_origin += 1
                if p.duration and p.time_base:
                    self._before_origin_s += float(p.duration * p.time_base)
                return
            t = p.pts if p.pts is not None else p.dts
            if t is not None:
                self._late_audio.setdefault(p.stream.index, float(t * p.time_base))
        else:
            move_packet(p, -shift)
        self._keep_monotonic(p)
        try:
            self._out.mux(p)
        except (av.error.InvalidDataError, av.error.PatchWelcomeError) as exc:
            if p.stream.type not in ("audio", "subtitle", "data"):
                raise
            # a copied packet damaged in the file (an ADTS header with flipped bits, which the
            # mp4 muxer's aac_adtstoasc refuses): left out and counted; it failed the whole run
            self._bad_aux[p.stream.index] = self._bad_aux.get(p.stream.index, 0) + 1
            if sum(self._bad_aux.values()) == 1:
                log.warning("%s: a damaged %s packet at %.3f s was left out (%s)", self.target, p.stream.type,
                            float((p.pts if p.pts is not None else p.dts or 0) * (p.time_base or 0)),
                            getattr(exc, "strerror", None) or exc)
            return
        self._aux_muxed[p.stream.index] = self._aux_muxed.get(p.stream.index, 0) + 1
        if p.dts is not None and p.time_base:  # (mux rebased it to the output stream's time base)
            self._aux_last_dts[p.stream.index] = Fraction(p.dts) * p.time_base

    def _copied_part(self) -> tuple[float | None, float | None] | None:
        """(start, end) in seconds of the source's clock of the audio a copy takes from a part of
        the input (``--start``/``--duration``, either None), or None: all of it. Its packets
        outside are cut off (the source's ``put_aux``); joined recordings, whose clock steps back
        (the window counts along the joins), are judged whole."""
        win = getattr(self.source, "_window", None)
        if not isinstance(win, tuple) or getattr(self.source, "_joined_end", None) is not None:
            return None
        start = win[0] if getattr(self.source, "trim_start", 0) else None
        return None if start is None and win[1] is None else (start, win[1])

    def _part_end(self) -> Fraction | None:
        """The part's end (``--duration``) in seconds from the origin, or None."""
        win = getattr(self.source, "_window", None) if getattr(self.source, "trim_start", 0) is not None else None
        if win is None or win[1] is None:
            return None
        if self._origin is None:
            # ``--duration`` alone (no rebase): the output keeps the source's times, unless
            # _choose_shift moved them at the first frame (then ``_origin`` is set)
            return None if self._rebase or self._first_time is None else Fraction(win[1])
        return Fraction(win[1]) - self._origin

    def _part_end_samples(self, sr: int) -> int | None:
        """The part's end (``--duration``) in samples at ``sr`` from the origin, or None."""
        end = self._part_end()
        return None if end is None else round(end * sr)

    def _cut_pcm(self, p, shift: int, *, head: bool = True):
        """A copied PCM packet moved ``shift`` ticks earlier and cut to the sample at the origin and
        at the part's end (``--start``/``--duration``), or None when nothing of it is left.
        PCM is raw samples: cut, not kept or dropped whole (a camera or DVR writing 0.5 s packets
        gave 0.18 s of silence at the head of a cut and sound running 0.18 s past the last frame)."""
        move_packet(p, -shift)
        t = p.pts if p.pts is not None else p.dts
        tb = Fraction(p.time_base) if p.time_base else None
        sr = p.stream.codec_context.sample_rate
        if t is None or not tb or not p.duration or not sr or p.stream.codec_context.name.endswith("_planar"):
            return p  # (planar: one channel after another in the packet, no cut by bytes)
        n = round(p.duration * tb * sr)
        block = _pcm_block(p.stream.codec_context)
        if block and p.size % block == 0 and abs(p.size // block - n) <= sr // 1000 + 1:
            # the count from the bytes: Matroska stores durations in whole ms, so a 1024-sample
            # packet at 48 kHz (21.33 ms) said 21 ms and was never cut
            n = p.size // block
        elif n <= 0 or p.size % n:
            return p  # not whole sample frames (a PCM format with headers): left to the usual rule
        else:
            block = p.size // n
        if n <= 0:
            return p
        head = min(n, max(0, round(-t * tb * sr))) if head else 0
        end = self._part_end_samples(sr)
        tail = 0 if end is None else min(n, max(0, round(t * tb * sr + n - end)))
        if head == 0 and tail == 0:
            return p
        if head + tail >= n:
            self._before_origin += 1
            self._before_origin_s += float(p.duration * tb)
            return None
        self._before_origin_s += head / sr
        # av_new_packet's own (padded) buffer, the samples copied in: a packet made from a Python
        # bytes object points FFmpeg at memory without the input padding its readers may touch
        q = av.Packet((n - head - tail) * block)
        memoryview(q)[:] = memoryview(p)[head * block:(n - tail) * block]
        q.stream, q.time_base = p.stream, p.time_base
        start = t + round(Fraction(head, sr) / tb)
        q.pts = start if p.pts is not None else None
        q.dts = start if p.dts is not None else None
        q.duration = round(Fraction(n - head - tail, sr) / tb)
        return q

    def _cut_cue(self, p, shift: int) -> bool:
        """A subtitle cue of a part (``--start``/``--duration``) moved ``shift`` ticks earlier and
        cut to the part: a cue on screen at its start shows from 0 for what is left of it, one
        running past its end stops there, one wholly outside is left out (False).
        (:func:`clamp_to_origin` keeps or drops a packet whole: right for 20 ms of audio, but it
        dropped a 0.4 s cue on screen at the cut and kept a 1.8 s one whole, so the file ran past
        the video by 0.8 s.)"""
        move_packet(p, -shift)
        t = p.pts if p.pts is not None else p.dts
        if t is None:
            return True
        if t < 0:
            end = t + p.duration
            if end <= 0:
                return False
            p.pts = 0 if p.pts is not None else None
            p.dts = 0 if p.dts is not None else None
            p.duration, t = end, 0
        end = self._part_end()
        if end is not None and p.time_base:
            limit = math.floor(end / Fraction(p.time_base))
            if t >= limit:
                return False
            p.duration = min(p.duration, limit - t)
        return True

    def _keep_monotonic(self, p) -> None:
        """A copied packet whose dts is not after the previous one of its output stream (a file
        joined from recordings whose clock restarts: ``cat a.ts b.ts``, joined AVCHD .MTS) is
        moved, with its pts, to just after it: the muxer refuses it ("returned 22") and the
        whole run would fail. Said once per stream, and counted in ``fallbacks``.

        "After" is judged in the output stream's ticks, where the muxer judges it: AVI counts AAC
        in frames of 1024 samples (21.3 ms), so two packets 21 ms apart on a Matroska clock
        (1 ms) can round to the same tick; they failed the run although the times went forward.
        Such a packet goes one tick on (said once, counted apart: its sound is at most a tick off)."""
        moved = follow_on(p, self._aux_last_dts.get(p.stream.index))
        if moved is None:
            return
        t, last = moved
        counts = self._aux_bumped if t <= last else self._aux_rounded
        n = counts.get(p.stream.index, 0)
        counts[p.stream.index] = n + 1
        if n:
            return
        if counts is self._aux_bumped:
            log.warning("%s: output stream #%d: timestamps go backwards at %.3f s (a joined recording?): its packets "
                        "are moved to follow on", self.target, p.stream.index, float(last))
        else:
            log.info("%s: output stream #%d: packets %.3f s apart at %.3f s fall on the same tick of the output's "
                     "%s s clock; the later is moved a tick on", self.target, p.stream.index, float(t - last),
                     float(last), Fraction(p.stream.time_base))

    def _finish_container(self, *, all_aux: bool) -> None:
        """:meth:`_flush_and_close`, its time counted in :attr:`encode_seconds` (x264's look-ahead
        holds ~40 frames that are encoded only here)."""
        t0 = time.perf_counter()
        try:
            self._flush_and_close(all_aux=all_aux)
        finally:
            self.encode_seconds += time.perf_counter() - t0

    def _flush_and_close(self, *, all_aux: bool) -> None:
        """The encoder's last packets, the audio and subtitles left, the notes on them, the trailer."""
        if self._vstream is None:
            raise EncodeError(f"no frames were written to {self.target}; nothing to save")
        for packet in self._vstream.encode(None):
            self._mux_video(packet)
        self._finish_video()
        if self._aux is not None:
            if all_aux:
                self._mux_aux(self._aux.take_until(None))
            for index, (o, tx) in self._aux_map.items():
                if isinstance(tx, SubtitleConverter):
                    for q in tx.flush():
                        self._mux_cue(q)
                    if tx.skipped:
                        self.fallbacks.append(f"subtitle stream #{index}: {tx.skipped} of its cues could not be "
                                              f"converted to {tx.codec} and were left out (see the log)")
                elif isinstance(tx, list):  # an audio transcoder: [resampler, next sample]
                    for rf in tx[0].resample(None):
                        rf.pts = tx[1]
                        tx[1] += rf.samples
                        for q in o.encode(rf):
                            self._mux_aux_packet(q)
                    for q in o.encode(None):
                        self._mux_aux_packet(q)
        self._report_rebase()
        if all_aux:
            self._report_empty()
        for index, n in self._aux_bumped.items():
            self.fallbacks.append(f"output stream #{index}: {n} packet(s) whose timestamps went backwards (a file joined "
                                  "from recordings?) were moved to follow on; they may play out of sync with the video")
        for index, n in self._aux_rounded.items():
            o = self._out.streams[index]
            self.fallbacks.append(f"output stream #{index}: {n} packet(s) that fell on the same tick of the output's "
                                  f"coarser clock ({float(o.time_base) * 1000:.1f} ms) were moved a tick later")
        for index, n in self._bad_aux.items():
            self.fallbacks.append(f"output stream #{index}: {n} damaged packet(s) the muxer refused were left out")
        for index, n in self._aux_damaged.items():
            self.fallbacks.append(f"audio stream #{index}: {n} damaged packet(s) copied as they were (the decoder "
                                  "cannot read them: players may click or go silent there)")
        self._follow()  # (the muxer holds the file open: where its folder moved, it says where to)
        self._out.close()

    def _report_empty(self) -> None:
        """Say each audio, subtitle or data track set up that got no packet: a part
        (``--start``/``--duration``) before a track begins (AAC from 0.5 s, ``--duration 0.3``),
        or a track empty in the input. FFmpeg's mp4/mov muxers leave a track without samples out
        of the file, which lost the audio track without a word; Matroska keeps it, empty. A
        mov_text subtitle track is the exception (:data:`_MOV_KEEPS_EMPTY`): kept, empty."""
        part = " in the chosen part (--start/--duration)" if getattr(self.source, "_window", None) else ""
        mov = bool(set(self._out.format.name.split(",")) & _MOV_FAMILY)
        for index, (o, _) in self._aux_map.items():
            if o.type not in ("audio", "subtitle", "data") or self._aux_muxed.get(o.index):
                continue
            name = getattr(o.codec_context, "name", None) if o.type != "data" else _describe(o)
            # (an empty mov_text track was said "left out", in the summary's fallbacks too, where
            # the file holds it: hunt 32)
            gone = mov and name not in _MOV_KEEPS_EMPTY
            msg = f"{o.type} stream #{index} ({name or o.type}) had no packets{part}: " + (
                f"left out (the {self._out.format.name} container writes no empty "
                f"{o.type if o.type != 'subtitle' else name or o.type} track)" if gone
                else "its track in the output is empty" + (" (one blank cue)" if mov else ""))
            if gone:
                self._drop(msg)
            else:
                log.info(msg)

    def _report_rebase(self) -> None:
        if not self._rebase_avi:
            return  # a trimmed source: audio before its first frame is meant to go
        if self._before_origin:
            lost = self._before_origin_s
            msg = (f"{self._out.format.name} stores no start times: {self._before_origin} audio packet(s) before the "
                   "first video frame (encoder priming, or audio that starts earlier"
                   + (f": {lost:.2f} s of it" if lost else "") + ") were left out so that audio and video start together")
            self.fallbacks.append(msg)
            # a codec's priming is a packet or two; a second of sound before the pictures is a loss
            if lost > 0.1:
                log.warning("%s (write .mkv or .mp4 to keep it)", msg)
            else:
                log.info(msg)
        half = 0.5 / float(self.meta.frame_rate) if self.meta is not None and self.meta.frame_rate else 0.02
        for index, t in self._late_audio.items():
            if t > half:
                msg = (f"output audio stream #{index} starts {t:.3f} s after the first video frame, which "
                       f"{self._out.format.name} cannot store: it plays {t:.3f} s early "
                       "(write .mkv or .mp4 to keep it in sync)")
                self.fallbacks.append(msg)
                log.warning(msg)

    def _join(self) -> None:
        if not self.is_url:
            self._queue.put(None)  # the thread is alive or errored; either way it stops
            self._thread.join()
            return
        # a stream's writer may be stuck in a socket write for good: waited for while it makes
        # progress, given up on once it made none for STREAM_CLOSE_WAIT_S (_give_up)
        while not self._abandoned:
            try:
                self._queue.put(None, timeout=_QUEUE_POLL_S)
                break
            except queue.Full:
                if not self._thread.is_alive():
                    break
                if self.stalled(STREAM_CLOSE_WAIT_S):
                    self._give_up(STREAM_CLOSE_WAIT_S)
        while not self._abandoned and self._thread.is_alive():
            self._thread.join(_QUEUE_POLL_S)
            if self._thread.is_alive() and self.stalled(STREAM_CLOSE_WAIT_S):
                self._give_up(STREAM_CLOSE_WAIT_S)

    def _finish_stream(self, all_aux: bool) -> None:
        """A stream URL's :meth:`_finish_container` (the encoder's last packets, the trailer: socket
        writes that may block for good) in a daemon thread of its own, given up on after
        :data:`STREAM_CLOSE_WAIT_S` without an end."""
        box: dict = {}

        def run() -> None:
            try:
                self._finish_container(all_aux=all_aux)
                if self._relay is not None:
                    self._relay.finish()  # (the rest of the pipe sent, the child's trailer)
            except BaseException as e:  # (raised in the caller)
                box["error"] = e

        t = threading.Thread(target=run, name=f"finish:{self.target}", daemon=True)
        self._busy_since = time.monotonic()
        t.start()
        try:
            while t.is_alive():
                t.join(_QUEUE_POLL_S)
                if t.is_alive() and self.stalled(STREAM_CLOSE_WAIT_S):
                    self._give_up(STREAM_CLOSE_WAIT_S)
                    raise self._failed() from self._error
        finally:
            if not self._abandoned:
                self._busy_since = None
        if "error" in box:
            raise box["error"]

    def close(self) -> None:
        """Finish: flush encoders, mux the remaining audio, rename the temp file to the target
        (a Ctrl-C meanwhile waits for it at the command line: see stream_gpen._finishing)."""
        if self._closed:
            return
        from stream_gpen._finishing import finishing, finishing_output

        with finishing():
            if not self.is_url:
                finishing_output(self.target)
            self._close()

    def _close(self) -> None:
        self._closed = True
        try:
            try:
                self._join()
            except KeyboardInterrupt as exc:
                # Ctrl-C in a Python program while the encoder drains the last frames (the command
                # line defers it, see stream_gpen._finishing): what was encoded is kept as the
                # .partial output, as a Ctrl-C mid-run keeps it, not discarded whole
                if isinstance(exc, Interrupted) or self.is_url:
                    raise
                self._closed = False
                partial = self.interrupt()
                raise Interrupted(f"interrupted while finishing: {self._stopped_words(partial)}") from exc
            if self._error is not None:
                self._closed = False
                self.salvage()  # (the frames muxed before it, as .partial)
                raise self._failed() from self._error
            src_done = getattr(getattr(self.source, "ring", None), "_finished", True)
            try:
                if self.is_url:
                    self._finish_stream(src_done)
                else:
                    self._finish_container(all_aux=src_done)
            except _OutputGone as e:  # (its folder removed: noticed while the encoder was flushed)
                raise EncodeError(str(e), hint=e.hint) from None
            except (av.error.FFmpegError, ValueError, OSError) as e:
                if self._gone_first(e):  # (removed before the muxer made the file)
                    raise EncodeError(self._gone_words(made=False), hint=_KEEP_FOLDER_HINT) from e
                if self._refused(e):  # (the muxer may not make the file: its folder is there)
                    self.lost_reason = self._refused_words(e)
                    raise not_writable(Path(self._path).parent, e) from e
                # (FFmpeg's muxers say a write error, a full disk, at the trailer: the message
                # named the hidden temporary file, gone by then). A .mkv/.webm/.ts plays without
                # its trailer: what reached the disk is kept as .partial (a camera recording cut
                # off by a full disk was deleted whole)
                why = e.strerror if isinstance(e, OSError) and e.strerror else e
                if self.is_url:  # (every frame was streamed: nothing is kept, nor lost, here)
                    raise EncodeError(f"finishing {self.target} failed: {why}", hint=_encode_hint(e, live=self.live)) from e
                kept = self._written_part()
                said = "nothing was saved"
                if kept:
                    try:
                        said = (f"the {kept} frame(s) that reached it were kept as {self._keep_partial()} "
                                "(cut off where the writes were refused: it plays up to there)")
                        self.frames_kept = kept
                    except OSError as e2:
                        log.debug("keeping the frames written before the error failed: %s", e2)
                if self.partial_path is None:
                    self.lost_reason = said
                raise EncodeError(f"finishing {self.target} failed: {why}; {said}", hint=_encode_hint(e, live=self.live)) from e
        except BaseException:
            if self.partial_path is None:
                self._discard()
            raise
        if not self.is_url:
            if self._moved_from is not None:
                self._keep_moved()
            keep_mode(self._dst, self._path)
            try:
                if self._overwrite:
                    os.replace(self._path, self._dst)
                else:
                    place_new(self._path, self._dst)
            except FileExistsError as e:
                # not there when the run began (checked then), written meanwhile: another run into
                # the same name, or a program. Kept, as is this run's result, beside it (the one
                # to finish last replaced the other's output, both runs saying they wrote it)
                kept = keep_beside(self._path, self._dst)
                self.kept_whole = kept if kept is not None else Path(self._path)
                if kept is None:
                    err = EncodeError(f"{self.target} appeared during the run and was not replaced (no overwrite); "
                                      f"the restored video is under the hidden name {self._path}: move it now")
                else:
                    err = EncodeError(f"the restored video is complete and was kept as {kept}: {self.target} appeared "
                                      "during the run (another run or program wrote it) and was not replaced",
                                      hint="pass overwrite=True to replace an output, or give each run "
                                           "another dst")
                #: (a resumed folder run, which leaves an output written meanwhile as it is, removes
                #: this copy: see Enhancer._enhance_folder)
                err.appeared_meanwhile = self.kept_whole
                raise err from e
            except OSError as e:
                self._check_still_there(e)
                if not self._release_own_input():
                    self._keep_beside(e)
                try:  # (an in-place run on Windows: its input, now closed, can be replaced)
                    os.replace(self._path, self._dst)
                except OSError as e2:
                    self._keep_beside(e2)
            if self._old_segments:
                self._remove_old_segments()

    def _remove_old_segments(self) -> None:
        """Remove the segments an earlier output of this name left that this run did not write
        again (an .m3u8/.mpd replaced with overwrite): a 40 s video's playlist written over with a
        10 s one left its segments 5-19 beside it, listed nowhere, taking their room for good."""
        gone = []
        for q, ident in _file_idents(self._old_segments).items():
            if ident == self._old_segments.get(q):  # (untouched by this run: the old output's)
                try:
                    q.unlink()
                    gone.append(q.name)
                except OSError as e:
                    log.debug("could not remove the old segment %s: %s", q, e)
        if gone:
            log.info("removed %d segment(s) of the output %s replaced (%s%s)", len(gone), self.target.name,
                     ", ".join(gone[:3]), " ..." if len(gone) > 3 else "")

    def _release_own_input(self) -> bool:
        """The target is this run's own input (an in-place run) and the source let go of it."""
        spec = getattr(self.source, "spec", None)
        release = getattr(self.source, "release_input", None)
        try:
            same = spec is not None and os.path.samefile(spec, self._dst)
        except OSError:
            same = False
        return bool(same and release is not None and release())

    def _keep_beside(self, exc: OSError) -> None:
        """The finished output could not replace the target: on Windows a file open in another
        program (a player, or this run's own input: an in-place restore) or read-only cannot be
        replaced. The complete result is kept under a visible name beside it (:func:`keep_beside`),
        never left under the hidden temporary name that a later run removes, and said."""
        t = self.target
        kept = keep_beside(self._path, self._dst)
        if kept is None:
            self._check_still_there(exc)
        self.kept_whole = kept if kept is not None else Path(self._path)
        where = (f"was kept as {kept}" if kept is not None else
                 f"is under the hidden name {self._path}: move it now, a later run of this output removes it")
        name = kept.name if kept is not None else Path(self._path).name
        raise EncodeError(
            f"the restored video is complete and {where}; {t} could not be replaced ({exc.strerror or exc})",
            hint=f"{t.name} is in use by another program (a player, or this run's own input) or read-only: "
                 f"close it, then move {name} over it") from exc

    def _check_still_there(self, exc: OSError) -> None:
        """The temporary output could not be renamed because it is gone: its folder was removed
        during the run (or its drive unplugged, a network share lost), or another program deleted
        the file. The encoder wrote into a file no longer in any folder: nothing was saved, and no
        message may point at a file that is not there. (A folder moved or renamed was followed
        before: :meth:`_follow`, :meth:`_keep_moved`.)"""
        if os.path.exists(self._path):
            return
        raise EncodeError(self._gone_words(), hint=_KEEP_FOLDER_HINT) from exc

    def _follow(self) -> None:
        """The temporary output is not at its path: where its folder was renamed or moved during the
        run (or the file renamed), ``_path`` follows it and ``_moved_from`` keeps where it was. Asked
        while the muxer holds the file open (its descriptor says where it is, :func:`_open_as`)."""
        if self.is_url or self._own_files or os.path.exists(self._path):
            return
        now = _open_as(self._path, self._ident)
        if now is not None:
            if self._moved_from is None:
                self._moved_from = Path(self._path)
            self._path = now

    def _here(self) -> Path:
        """The target's name in the folder the temporary output is in now (its folder moved: there)."""
        return self._dst if self._moved_from is None else Path(self._path).parent / self.target.name

    def _moved_words(self) -> str:
        old, new = self._moved_from, Path(self._path)
        if old.parent != new.parent:
            return f"the output folder {old.parent} was moved or renamed to {new.parent} during the run"
        return f"the temporary output {old.name} was renamed to {new.name} during the run (by another program)"

    def _gone_words(self, *, made: bool = True) -> str:
        """What became of a temporary output gone from its path and not found elsewhere
        (:meth:`_follow`): deleted, with its folder or alone, and nothing saved; or, where this
        system cannot tell a moved folder from a removed one, where to look for it. ``made``
        False: the folder went before the muxer made the file (at its first packet)."""
        folder, name = Path(self._path).parent, Path(self._path).name
        if not made:
            return (f"the output folder {folder} disappeared during the run (removed, moved or renamed, or its "
                    f"drive unplugged or network share lost): nothing was saved, {self.target} was not written")
        if folder.is_dir():
            return (f"the temporary output {name} was deleted during the run (by another program): nothing was "
                    f"saved, {self.target} was not written")
        if _can_follow():
            return (f"the output folder {folder} disappeared during the run (removed, or its drive unplugged or "
                    f"network share lost): nothing was saved, {self.target} was not written")
        return (f"the output folder {folder} disappeared during the run (removed, moved or renamed, or its drive "
                f"unplugged or network share lost): {self.target} was not written; where the folder was moved "
                f"or renamed, what was encoded is in it under the hidden name {name}")

    def _vanished(self) -> _OutputGone:
        """The room check found the temporary output gone from its path mid-run: the run stops
        (within about a second, as for a full disk), saying where it went."""
        self._follow()
        if self._moved_from is not None:  # (the frames so far are kept there as .partial: salvage)
            return _OutputGone(f"{self._moved_words()}; {self.target} was not written", hint=_KEEP_FOLDER_HINT)
        return _OutputGone(self._gone_words(), hint=_KEEP_FOLDER_HINT)

    def _keep_moved(self) -> None:
        """The output's folder was moved or renamed while the run was finishing: the complete
        video goes under its name in the folder where it is now (beside a file of that name, as
        ``NAME.restored.EXT``), never left under its hidden temporary name, and the run fails
        saying where (the target asked for was not written)."""
        here = self._here()
        try:
            place_new(self._path, here)
            kept: Path | None = here
        except OSError:
            kept = keep_beside(self._path, here)
        self.kept_whole = kept if kept is not None else Path(self._path)
        where = f"was kept as {kept}" if kept is not None else f"is under the hidden name {self._path}: move it now"
        raise EncodeError(f"{self._moved_words()}: the restored video is complete and {where}; "
                          f"{self.target} was not written", hint=_KEEP_FOLDER_HINT)

    def _written_part(self) -> int:
        """The container could not be finished (its trailer refused: a full disk, a file-size
        limit): the video frames in what reached the file, where its format plays without one
        (Matroska/WebM, MPEG-TS, FLV: a recording cut off there plays up to the cut; an mp4/mov
        without its index does not open). Checked by decoding its first frame and counted by its
        whole packets (a truncated .mkv decoded 23 frames of its 23 packets; the demuxer flags one
        the cut went through, FLV's last); 0 where nothing plays."""
        self._follow()
        try:
            self._out.close()  # (where the failed close left it open; else a no-op)
        except Exception:  # noqa: BLE001 - the trailer is what failed: said by the caller
            pass
        if self.is_url or not os.path.exists(self._path):
            return 0
        return _playable_frames(self._path)

    def _remove_tmp(self) -> None:
        if not self.is_url:
            try:
                os.unlink(self._path)
            except OSError:  # gone, or never made (a read-only file system says EROFS, not ENOENT)
                pass

    def _discard(self) -> None:
        if self._relay is not None:
            self._relay.kill()
        if self._abandoned:  # (its writer may still be inside the container: left as it is)
            return
        try:
            self._out.close()
        except Exception:  # closing a half-written container may fail; the file is deleted anyway
            pass
        self._remove_tmp()

    def abort(self) -> None:
        """An error happened: stop, leave nothing under the target name, remove temp files."""
        if self._closed:
            return
        self._closed = True
        self._stop_encoding.set()
        self._drain_queue()
        self._join()
        self._discard()

    def _drain_queue(self) -> None:
        while True:
            try:
                f = self._queue.get_nowait()
            except queue.Empty:
                return
            if f is not None:
                f.release()

    def interrupt(self) -> Path | None:
        """Ctrl-C: finalize what was encoded into ``<name>.partial<ext>`` (playable; beside an
        earlier interrupted run's, never over it); return it. None where nothing was kept:
        :attr:`lost_reason` says why where frames had been encoded (the output folder removed)."""
        if self._closed:
            return self.partial_path
        self._closed = True
        self._join()  # frames already queued are encoded: they were "done" by the pipeline
        if self.is_url or self._vstream is None:
            self._discard()
            return None
        if self._error is not None:  # (the encoder or the disk failed first: kept as after an error)
            self._closed = False
            return self.salvage()
        try:
            self._finish_container(all_aux=False)
        except _OutputGone as e:  # (its folder removed: noticed while the encoder was flushed)
            self.lost_reason = str(e)
            self._discard()
            return None
        except Exception as e:
            if self._gone_first(e):  # (removed before the first packet: the muxer could not make the file)
                self.lost_reason = self._gone_words(made=False)
                self._discard()
                return None
            if self._refused(e):  # (... or may not make it: its folder is there)
                self.lost_reason = self._refused_words(e)
                self._discard()
                return None
            kept = self._written_part()  # (the trailer refused: a .mkv plays without it)
            if not kept:
                self._discard()
                raise
            log.debug("finishing the interrupted output failed (%s): kept as it was written", e)
            self.frames_kept = kept
        except BaseException:
            self._discard()
            raise
        if not os.path.exists(self._path):  # its folder removed (not moved: _follow) during the run
            self.lost_reason = self._gone_words()
            self._discard()
            return None
        try:
            return self._keep_partial()
        except OSError as e:  # (its folder went away meanwhile, or will not take the name)
            self.lost_reason = (self._gone_words() if not os.path.exists(self._path) else
                                f"the frames encoded could not be kept as a .partial file ({e.strerror or e}): "
                                "nothing was saved")
            self._remove_tmp()
            return None

    def _stopped_words(self, partial: Path | None) -> str:
        """What an interrupted run kept, for its message."""
        if partial is not None:
            n = self.frames_kept if self.frames_kept is not None else self.frames_written
            moved = f" ({self._moved_words()})" if self._moved_from is not None else ""
            return f"1 frame was saved to {partial}{moved}" if n == 1 else f"{n} frames were saved to {partial}{moved}"
        return self.lost_reason or "no frames had been encoded, nothing was saved"

    def salvage(self) -> Path | None:
        """An error stopped the run after frames were encoded (the restorer or the device failed,
        the source broke off, the encoder or the disk refused a packet): keep them as
        ``<name>.partial<ext>``, as a Ctrl-C does, rather than discard an hour's work. Where the
        container cannot be finished (a full disk), what reached the file is kept where it plays
        without its trailer (:meth:`_written_part`: .mkv/.webm/.ts, not .mp4/.mov); otherwise
        nothing is, said (:attr:`lost_reason`). Returns the partial path."""
        if self._closed:
            return self.partial_path
        self._closed = True
        if self._error is None:
            self._join()  # frames already queued were done by the pipeline: encode them
        else:
            self._stop_encoding.set()
            self._drain_queue()
            self._join()
        if self.is_url or self._vstream is None or self.frames_written == 0:
            self._discard()
            return None
        cut = None
        # (its folder moved: the encoder and the file, open there, are sound: flushed like a Ctrl-C's)
        moved = isinstance(self._error, _OutputGone) and self._moved_from is not None
        try:
            if self._error is None or moved:
                self._finish_container(all_aux=False)
                kept = self.frames_written if self._error is None else self.packets_muxed
            else:  # the encoder or the muxer failed: what was muxed is kept, no flush
                if self.packets_muxed or self._held_video is not None:
                    self._finish_video()  # (mp4/mov: the packet held back for its duration)
                kept = self.packets_muxed
                self._follow()
                self._out.close()
        except _OutputGone:  # (its folder removed: noticed while the encoder was flushed)
            kept = 0
        except Exception as e:  # (its trailer refused: a full disk)
            log.debug("finishing the frames encoded before the error failed: %s", e)
            cut = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            kept = self._written_part()
        except BaseException as e:
            log.debug("keeping the frames encoded before the error failed: %s", e)
            self._discard()
            return None
        there = os.path.exists(self._path)
        if not kept or not there:
            # (the encoder still held every frame when it failed: x264 keeps ~40 back. HLS/DASH:
            # no playlist written, not a folder gone)
            self._discard()
            self._say_lost(None if not (there or self._own_files) else
                           f"the file could not be finished ({cut})" if cut else
                           "the encoder still held them" if not kept else "its playlist was not written")
            return None
        try:
            path = self._keep_partial()
        except OSError as e:  # (the folder went away too: the error that stopped the run is the one to say)
            log.debug("keeping the frames written before the error failed: %s", e)
            self._remove_tmp()
            self._say_lost(None if not os.path.exists(self._path) else f"it could not be renamed: {e.strerror or e}")
            return None
        self.frames_kept = kept
        if cut:
            log.warning("the %d frame(s) that reached %s before the error were saved to %s (cut off where the "
                        "writes were refused, %s: it plays up to there)", kept, self.target, path, cut)
        else:
            log.warning("the %d frame(s) written before the error were saved to %s", kept, path)
        return path

    def _say_lost(self, why: str | None) -> None:
        """Nothing of a failed run's encoded frames was kept: said (once), and why, unless the
        error that stopped the run says it (its output folder removed: ``why`` None)."""
        if self.frames_written == 0 or self.lost_reason is not None:
            return
        if why is None and self._refused():  # (never made: its folder is there, and refused it)
            # (it was said as its folder having "disappeared during the run")
            self.lost_reason = self._refused_words(self._error)
            return  # (the error raised says it)
        if why is None:  # (gone with its folder)
            self.lost_reason = self._gone_words(made=self._ident is not None or self.packets_muxed > 0)
            if not (isinstance(self._error, _OutputGone) or self._gone_first()):  # (else the error says it)
                log.warning("%s", self.lost_reason)
            return
        self.lost_reason = f"nothing was saved of the {self.frames_written} frame(s) encoded: {why}"
        log.warning("%s: %s", self.target, self.lost_reason)

    def _keep_partial(self) -> Path:
        t = self._here()  # (in the folder the output is in now: moved meanwhile, there)
        first = hidden_temp(t, ".partial", hidden=False)
        q = _rename_partial(self._path, t)
        self.partial_path = q
        from stream_gpen.io._partials import remember_partial

        remember_partial(q)  # (so a finished run removes this file, and no other of that name)
        if q != first:
            msg = f"an earlier stopped run's {first.name} was kept as it was; this run's part is {q.name}"
            self.fallbacks.append(msg)
            log.warning("%s", msg)
        return self.partial_path

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.close()
                return
            except KeyboardInterrupt as e:
                # one that landed in close() before its finishing() began (the command line defers
                # a stop only inside it): as one mid-run, not a bare exit that neither kept the
                # frames as .partial nor removed the temporary file
                if isinstance(e, Interrupted) or self._closed:
                    raise
                exc_type, exc = type(e), e
        if issubclass(exc_type, KeyboardInterrupt) and not issubclass(exc_type, Interrupted):
            partial = self.interrupt()
            raise Interrupted(f"interrupted: {self._stopped_words(partial)}") from exc
        else:
            self.salvage()


class PreviewSink(_Sink):
    """Shows frames in an OpenCV window (``q``, Esc or the window's close button closes it:
    ``closed_by_user`` becomes True). Keys are read at each frame and at each :meth:`poll`."""

    def __init__(self, *, title: str = "stream-gpen", wait_ms: int = 1) -> None:
        import cv2

        self._cv2 = cv2
        self.title = title
        self.wait_ms = wait_ms
        self.frames_written = 0
        self.fallbacks = []
        self.closed_by_user = False
        # the window exists from the first frame on (a session stopped before it came has none to
        # close: OpenCV's destroyWindow of it failed with "NULL guiReceiver", exit 1)
        self._shown = False
        # whether the GUI backend says the window is visible at all (one that cannot tell answers
        # -1 or 0 from the start: that is not the user closing it)
        self._visibility_known = False

    def write(self, frame: Frame) -> None:
        img = frame.image.cpu().numpy()
        self._cv2.imshow(self.title, img[:, :, ::-1])
        self._shown = True
        self._look(self._cv2.waitKey(self.wait_ms))
        self.frames_written += 1
        frame.release()

    def poll(self) -> bool:
        """Read the window's keys and its close button; whether the user closed it. The live loop
        asks while the source sends nothing (at least every 0.1 s): read only at each frame, a q
        waited for the next frame and the close button was never seen."""
        if self._shown and not self.closed_by_user:
            poll_key = getattr(self._cv2, "pollKey", None)  # (OpenCV >= 4.5: no 1 ms wait)
            self._look(poll_key() if poll_key is not None else self._cv2.waitKey(1))
        return self.closed_by_user

    def _look(self, key: int) -> None:
        if key != -1 and key & 0xFF in (ord("q"), 27):
            self.closed_by_user = True
            return
        try:
            visible = self._cv2.getWindowProperty(self.title, self._cv2.WND_PROP_VISIBLE)
        except self._cv2.error:  # (the window is gone: closed under a backend that says so)
            visible = 0 if self._visibility_known else -1
        if visible >= 1:
            self._visibility_known = True
        elif self._visibility_known:
            self.closed_by_user = True

    def close(self) -> None:
        if not self._shown:
            return
        # (a window the user closed, or a GUI backend gone already, is no reason for the
        # session's outputs to fail: the recording beside it is what matters)
        with contextlib.suppress(self._cv2.error):
            self._cv2.destroyWindow(self.title)


class VirtualCameraSink(_Sink):
    """Sends frames to a virtual camera (pyvirtualcam; ``pip install pyvirtualcam``, the ``camera`` extra).

    Needs a virtual camera driver (v4l2loopback on Linux, OBS on Windows/macOS); it cannot run in
    CI. ``fps`` paces the output: the camera shows frames at that rate.
    """

    def __init__(self, *, width: int, height: int, fps: float, device: str | None = None) -> None:
        try:
            import pyvirtualcam
        except ImportError as e:
            from stream_gpen.errors import DeviceError

            raise DeviceError("the virtual camera needs pyvirtualcam: pip install pyvirtualcam (or pip install -e "
                              "'.[camera]' in a checkout)") from e
        try:
            self._cam = pyvirtualcam.Camera(width=width, height=height, fps=fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                            device=device)
        except RuntimeError as e:  # (pyvirtualcam's word for "no driver / no such device here")
            from stream_gpen.errors import DeviceError

            raise DeviceError(f"no virtual camera to send to{f' at {device}' if device else ''}: {e}",
                              hint="install and load a virtual camera driver (Linux: sudo modprobe v4l2loopback "
                              "exclusive_caps=1; Windows/macOS: OBS Studio's virtual camera, started once), or "
                              "leave out --virtual-camera") from e
        self.frames_written = 0
        self.fallbacks = []

    def write(self, frame: Frame) -> None:
        self._cam.send(np.ascontiguousarray(frame.image.cpu().numpy()))
        frame.release()
        self.frames_written += 1
        self._cam.sleep_until_next_frame()

    def close(self) -> None:
        self._cam.close()
