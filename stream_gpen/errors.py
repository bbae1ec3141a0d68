"""One exception root for the project.

Every leaf also derives from the fitting built-in, so callers may catch either
``StreamGpenError`` or e.g. ``FileNotFoundError``. Each class carries the exit code the
``stream-gpen`` command returns for it (documented in README "Exit codes").
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream_gpen.summary import RunSummary


class StreamGpenError(Exception):
    """Root of every error stream-gpen raises on purpose. ``summary``: a failed
    :meth:`Enhancer.enhance_file` run's :class:`~stream_gpen.summary.RunSummary` (None elsewhere)."""

    exit_code: int = 1
    hint: str | None = None
    # (declared: a type checker read Cancelled.summary as None, and StreamGpenError as without it, api23)
    summary: RunSummary | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


# --- input --------------------------------------------------------------------------------
class InvalidInputError(StreamGpenError, ValueError):
    """Bad input: an option value, an image or a file that cannot be used."""

    exit_code = 2


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


class DeviceError(StreamGpenError, RuntimeError):
    """The requested compute device is not available."""

    exit_code = 2


class SourceClosedError(StreamGpenError, EOFError):
    """A live source ended or could not be reconnected."""

    exit_code = 4


class Interrupted(StreamGpenError, KeyboardInterrupt):
    """The run was interrupted (Ctrl-C, SIGTERM, SIGHUP); finished work was kept where possible.
    (A ``cancel=`` event stops a run with :class:`Cancelled`, which is not one of these.)

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
#: (:func:`in_command_line_words`). Whole phrases, so that nothing else is reworded.
API_WORDS_TO_FLAGS = (
    ("skip_existing=True", "--skip-existing"),
    ("overwrite=True", "--overwrite"),
    ('dst="null"', "-o /dev/null"),
    (" as dst", " with -o"),
    ("another dst", "another -o"),
    ("crf: h264/hevc", "--crf: h264/hevc"),  # (the ranges' hint: io._sink._CRF_PRESET_HINT)
    ("; preset: h264/hevc", "; --preset: h264/hevc"),
)


def in_command_line_words(text: str | None) -> str | None:
    """An API message (or hint) as the command line says it: each keyword of
    :data:`API_WORDS_TO_FLAGS` as its flag (``skip_existing=True resumes`` -> ``--skip-existing
    resumes``)."""
    if not text:
        return text
    for api, flag in API_WORDS_TO_FLAGS:
        text = text.replace(api, flag)
    return text
