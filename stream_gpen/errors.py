"""One exception root for the project.

Every leaf also derives from the fitting built-in, so callers may catch either
``StreamGpenError`` or e.g. ``FileNotFoundError``. Each class carries the exit code the
``stream-gpen`` command returns for it (documented in docs/reference.md, "Exit codes").
:class:`Interrupted` (Ctrl-C) is the one exception outside that root: it is a
``KeyboardInterrupt``, never an ``Exception``, and carries the same (:class:`ErrorDetails`).
"""
from __future__ import annotations

import re

# (at run time, not under TYPE_CHECKING: typing.get_type_hints(StreamGpenError) raised NameError;
# stream_gpen.summary imports nothing of the project's, nor anything heavy)
from stream_gpen.summary import RunSummary

#: the hint of an input (or other named file) that is not there
PATH_HINT = "check the path (relative paths are from the working directory)"
#: ... where the command line also takes URLs
INPUT_HINT = "check the path; URLs need a scheme like rtsp://"
#: the largest ``batch_size`` (``--batch-size``) the Enhancer takes; here, where the CLI's parser
#: can say it without importing torch
MAX_BATCH_SIZE = 256


class ErrorDetails:
    """What the exceptions stream-gpen raises on purpose carry, mixed into :class:`StreamGpenError`
    (an ``Exception``) and :class:`Interrupted` (a ``KeyboardInterrupt``): the exit code of the
    ``stream-gpen`` command, a ``hint`` (how to fix it, or None) and ``summary``: a failed or
    stopped :meth:`Enhancer.enhance_file` run's :class:`~stream_gpen.summary.RunSummary` (None
    elsewhere). Not an exception class itself (``except`` takes the two)."""

    exit_code: int = 1
    hint: str | None = None
    # (declared: a type checker read Cancelled.summary as None, and StreamGpenError as without it, api23)
    summary: RunSummary | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)  # type: ignore[call-arg]  # (the exception class it is mixed into)
        if hint is not None:
            self.hint = hint


class StreamGpenError(ErrorDetails, Exception):
    """Root of every error stream-gpen raises on purpose (not of :class:`Interrupted`, a
    ``KeyboardInterrupt``). ``summary``: a failed :meth:`Enhancer.enhance_file` run's
    :class:`~stream_gpen.summary.RunSummary` (None elsewhere)."""


# --- input --------------------------------------------------------------------------------
class InvalidInputError(StreamGpenError, ValueError):
    """Bad input: an option value, an image or a file that cannot be used. ``option``: the
    keyword of the option a file was refused for, where the option is good but does not fit
    that file (``"start"``: past its end), else None; a folder run lists such a video apart
    from the unreadable ones."""

    exit_code = 2
    option: str | None = None

    def __init__(self, message: str, *, hint: str | None = None, option: str | None = None) -> None:
        super().__init__(message, hint=hint)
        if option is not None:
            self.option = option


class MediaNotFoundError(InvalidInputError, FileNotFoundError):
    """The input path does not exist."""


class EmptyMediaError(InvalidInputError):
    """The input file has zero bytes."""


class NotMediaError(InvalidInputError):
    """FFmpeg cannot recognise the file as any media format."""


class NoVideoStreamError(InvalidInputError):
    """The input has no video stream (e.g. audio only)."""


class UnsupportedCodecError(InvalidInputError):
    """No decoder or encoder is available for the requested codec."""


class OutputExistsError(InvalidInputError, FileExistsError):
    """The output exists and ``--overwrite`` was not given."""


# --- weights ------------------------------------------------------------------------------
class WeightsError(StreamGpenError, RuntimeError):
    """Model weights could not be found, fetched, verified or loaded."""

    exit_code = 3


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """Weights are not on disk and could not (or may not) be downloaded."""


class DownloadError(WeightsError, ConnectionError):
    """An HTTP download failed (network, HTTP status, cut connection)."""


class ChecksumError(WeightsError, ValueError):
    """A file's size or sha256 is not the expected one."""


class CheckpointError(WeightsError, ValueError):
    """A checkpoint's keys or shapes do not match the model it is loaded into."""


# --- runtime ------------------------------------------------------------------------------
class DecodeError(StreamGpenError, RuntimeError):
    """Decoding failed in a way that cannot be skipped."""

    exit_code = 4


class EncodeError(StreamGpenError, RuntimeError):
    """Encoding or muxing the output failed."""

    exit_code = 4


class OutputNotWritableError(StreamGpenError, PermissionError):
    """The output's folder may not be written into (no permission, a read-only drive): said before
    any work where it can be told then, else when the first write is refused. ``errno`` is the
    file system's (``EACCES``, ``EPERM`` or ``EROFS``)."""

    exit_code = 4


class DiskFullError(StreamGpenError, OSError):
    """A photo's output file could not be written for room: its drive is full (``ENOSPC``) or this
    user's quota on it is spent (``EDQUOT``). The message names the file; ``errno``, ``strerror``
    and ``filename`` (the output) are the ``OSError``'s, so that code which tells a full disk by
    its ``errno`` (a folder run stops at it, as every next file would fail too) still does. (A
    video's full disk is an :class:`EncodeError` naming the output.)"""

    exit_code = 4

    def __str__(self) -> str:  # (the message: OSError's own would be "[Errno 28] ...: 'path'")
        return str(self.args[0]) if self.args else ""


class FileTooLargeError(StreamGpenError, OSError):
    """A photo's output file is larger than may be written (``EFBIG``): this process's file-size
    limit (``ulimit -f``, systemd's ``LimitFSIZE``) or its drive's largest file (FAT32: 4 GiB).
    Not a :class:`DiskFullError`: the drive may have room, and in a folder run the next, smaller
    photo is written (this one is listed as skipped). The message names the file and which limit;
    ``errno``, ``strerror`` and ``filename`` are the ``OSError``'s. (A video's is an
    :class:`EncodeError` naming the output, with the same hint.)"""

    exit_code = 4

    def __str__(self) -> str:  # (the message, as DiskFullError's)
        return str(self.args[0]) if self.args else ""


class DeviceError(StreamGpenError, RuntimeError):
    """The requested compute device is not available."""

    exit_code = 2


class SourceClosedError(StreamGpenError, EOFError):
    """A live source ended or could not be reconnected."""

    exit_code = 4


class Interrupted(ErrorDetails, KeyboardInterrupt):
    """The run was interrupted (Ctrl-C: a ``KeyboardInterrupt``; at the command line also SIGTERM
    and SIGHUP, whose handlers it installs, as a program of its own may: docs/reference.md "Python API");
    finished work was kept where possible. (A ``cancel=`` event stops a run with
    :class:`Cancelled`, which is not one of these.)

    A ``KeyboardInterrupt``, not an ``Exception`` nor a :class:`StreamGpenError`: a program's
    ``except Exception`` (a batch loop skipping a file that fails) took Ctrl-C for a bad file and
    went on to the next. Catch ``Interrupted`` (or ``KeyboardInterrupt``) to handle it.

    ``summary``: the run's :class:`~stream_gpen.summary.RunSummary` so far (``interrupted`` True,
    ``partial_output``: the video's frames done, finalised as ``NAME.partial.EXT``, or None), or
    None where it stopped before the run began (while the model loaded)."""

    exit_code = 130


class Cancelled(StreamGpenError):
    """The run was stopped by its ``cancel=`` event (:meth:`Enhancer.enhance_file`): what an
    :class:`Interrupted` keeps, kept, and its ``summary`` the same. Not a ``KeyboardInterrupt``:
    one raised in a worker thread of an asyncio program (``asyncio.to_thread``,
    ``run_in_executor``) is taken for Ctrl-C and ends the whole event loop, its other tasks too."""

    exit_code = 130


# --- frame ring (io) -------------------------------------------------------------------------
class RingExhaustedError(StreamGpenError, RuntimeError):
    """Every frame-ring slot is held by frames the caller never released."""

    exit_code = 4


# --- server (stream_gpen.server) ------------------------------------------------------------
class QueueFullError(StreamGpenError, RuntimeError):
    """A bounded server queue is full: the request is refused (HTTP 429) instead of queued."""

    exit_code = 1
    retry_after_s: int = 1

    def __init__(self, message: str, *, retry_after_s: int = 1, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s


class ShuttingDownError(StreamGpenError, RuntimeError):
    """The server has begun to stop (SIGTERM, SIGHUP, Ctrl-C): a new request, an upload that
    finishes now, or an image request still waiting in the queue is answered HTTP 503 with
    ``Retry-After`` (another server, or this one restarted, can take it) instead of being left
    unanswered when the exit comes."""

    exit_code = 1
    retry_after_s: int = 5

    def __init__(self, message: str = "the server is shutting down", *, retry_after_s: int = 5,
                 hint: str | None = "retry in a few seconds (another instance, or this one once restarted)") -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s


class PayloadTooLargeError(InvalidInputError):
    """An upload or an image is over the server's size or pixel limit (HTTP 413)."""


class JobNotFoundError(InvalidInputError, LookupError):
    """No video job with this id (never existed, expired, or deleted) (HTTP 404)."""


# --- partial results (cli: folders) -----------------------------------------------------------
class SomeInputsSkippedError(StreamGpenError, RuntimeError):
    """A folder run finished and wrote every readable image, but some files could not be read
    (each is listed in the summary's ``skipped``). Exit code 5, so scripts can tell "done, with
    gaps" from "nothing done" (2) and "all done" (0)."""

    exit_code = 5


# --- hardware encoding (io sinks) --------------------------------------------------------------
class HardwareEncoderError(DeviceError):
    """A hardware encoder (NVENC) was asked for, but this machine's GPU or driver cannot open it
    (data-centre GPUs such as A100/H100/H200 have no NVENC; no NVIDIA driver; session limit)."""

    exit_code = 2


#: the hint for a write the file system refused (full, read-only, no permission, a folder gone)
FILE_SYSTEM_HINT = "check that the output folder exists, is writable and has room"

#: how a message of the Python API names an option (its keyword, as a program passes it) and how
#: the command line names the same option: the API's errors name its keywords (a program has no
#: ``-o`` or ``--skip-existing``), and ``stream-gpen`` says them in its flags
#: (:func:`in_command_line_words`). Whole phrases, for what :data:`_KEYWORD_IN_MESSAGE` does not
#: cover (a keyword named without ``=``).
API_WORDS_TO_FLAGS = (
    (" as dst", " with -o"),
    ("another dst", "another -o"),
    ("crf: h264/hevc", "--crf: h264/hevc"),  # (the ranges' hint: io._sink._CRF_PRESET_HINT)
    ("; preset: h264/hevc", "; --preset: h264/hevc"),
)

#: the keywords of :class:`~stream_gpen.api.Enhancer` and :meth:`~stream_gpen.api.Enhancer.enhance_file`
#: that the command line takes as the flag of the same name (``min_face`` -> ``--min-face``)
_SAME_NAME = (
    "model", "device", "precision", "batch_size", "detect_every", "faces", "min_face", "max_faces", "min_score",
    "detector", "detector_weights", "detect_size", "weights", "compile", "smooth_lag", "deinterlace", "mask",
    "parser_weights", "strength", "aligned", "overwrite", "codec", "crf", "preset", "audio", "quality",
    "copy_if_no_faces", "max_pixels", "start", "duration", "skip_existing", "compare", "image_format", "encoder",
    "chroma",
)
#: keyword -> flag, where the flag is not the keyword's own name
_OTHER_NAME = {"check_landmarks": "--no-landmark-check", "download": "--no-download",
               "high_bit_depth": "--bit-depth", "dst": "-o"}
#: keyword=value said otherwise than ``--flag value`` (``True`` of an on/off flag is the flag alone)
_SAID_AS = {("check_landmarks", "False"): "--no-landmark-check", ("download", "False"): "--no-download",
            ("high_bit_depth", "False"): "--bit-depth 8", ("high_bit_depth", "True"): "--bit-depth auto",
            ("dst", "'null'"): "-o /dev/null", ("dst", '"null"'): "-o /dev/null"}
#: the API's keywords and the command line's flag for each
KEYWORD_FLAGS = {**{k: "--" + k.replace("_", "-") for k in _SAME_NAME}, **_OTHER_NAME}

# ``keyword=value`` (the value a Python literal: 'text', 12, 0.5, True, None; or nothing, ``weights=``),
# not in a path (``/tmp/crf=5.mp4``, ``C:\\clips\\start=3.mp4``, a bare or quoted ``crf=18.mp4``: a
# value running on into a name's ``.ext`` or ``,x``), a URL's query (``?start=10``) or a filter
# graph (``lavfi:testsrc=rate=5:duration=2``)
_KEYWORD_IN_MESSAGE = re.compile(
    r"(?<![\w.\-/\\=:?&#'\"])(" + "|".join(sorted(KEYWORD_FLAGS, key=len, reverse=True)) + r")="
    r"(?:('[^'\n]*'|\"[^\"\n]*\"|[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?|True|False|None)(?![\w\[(=]|[.,][^\s])"
    r"|(?=[\s),;:]|$))")
# a call as written in Python (``FrameRing(high_bit_depth=True)``, a repr): its keywords are left as they are
_CALL = re.compile(r"\b[A-Za-z_]\w*\([^()]*\)")
# ``keyword (--flag)``: the keyword named without a value, its flag beside it
_KEYWORD_AND_FLAG = re.compile(r"(?<![\w.\-/])(\w+) \((-[-\w]+)\)")
# ``--flag value (--flag)`` / ``--flag value (--flag value)``: a message that named both (said once)
_FLAG_TWICE = re.compile(r"(--([\w-]+)(?: [^\s(),;:]+)?) \(--\2(?: [^\s()]+)?\)")
# ``(... in Python)``: the Python spelling beside a flag
_IN_PYTHON = re.compile(r" \((?:(?!--)[^()])* in Python\)")
_ALSO_IN_PYTHON = re.compile(r", (?:(?!--)[^(),])* in Python\)")  # (``(--detector X, detector='X' in Python)``)


def _as_flag(match: re.Match) -> str:
    import shlex

    name, value = match.group(1), match.group(2)
    flag = KEYWORD_FLAGS[name]
    if (name, value) in _SAID_AS:
        return _SAID_AS[name, value]
    if value is None or value == "True":  # (``weights=``, ``aligned=True``)
        return flag
    if value in ("False", "None"):  # (``preset=None``: the flag left out)
        return f"no {flag}"
    if value[0] in "'\"":
        return f"{flag} {shlex.quote(value[1:-1])}"  # ('' for an empty text)
    return f"{flag} {value}"


def in_command_line_words(text: str | None) -> str | None:
    """An API message (or hint) as the command line says it: each ``keyword=value`` of an option
    as its flag (``crf=60 for codec='h264'`` -> ``--crf 60 for --codec h264``, ``aligned=True`` ->
    ``--aligned``, ``skip_existing=True resumes`` -> ``--skip-existing resumes``), a keyword
    named with its flag beside it as the flag once (``min_face=30.0 (--min-face)`` -> ``--min-face
    30.0``), a Python spelling beside a flag left out (``--weights PATH (weights= in Python)``),
    and the phrases of :data:`API_WORDS_TO_FLAGS`. A message the API writes names keywords only
    (``keyword=value``) or both (``keyword=value (--flag value)``); this is what ``stream-gpen``
    prints of it (errors, hints, warnings, the run summary)."""
    if not text:
        return text
    text = _ALSO_IN_PYTHON.sub(")", _IN_PYTHON.sub("", text))
    calls = [m.span() for m in _CALL.finditer(text)]
    text = _KEYWORD_IN_MESSAGE.sub(
        lambda m: m.group(0) if any(a <= m.start() < b for a, b in calls) else _as_flag(m), text)
    text = _KEYWORD_AND_FLAG.sub(lambda m: m.group(2) if KEYWORD_FLAGS.get(m.group(1)) == m.group(2)
                                 else m.group(0), text)
    text = _FLAG_TWICE.sub(r"\1", text)
    for api, flag in API_WORDS_TO_FLAGS:
        text = re.sub(r"(?<!-)" + re.escape(api), flag, text)  # (said twice, still once: not ----crf)
    return text
