"""Whether an output is being finished (its encoders flushed, its file renamed into place).

The command line's signal handler (``cli._Signals``) does not raise on a first Ctrl-C or SIGTERM
then: the run is done but for that, and an interrupt there made the sink discard the whole
encoded file (``FileSink.close``'s clean-up), or the camera say "stopped", exit 0, with no
recording. The stop is deferred (:func:`defer`) and raised as :class:`Interrupted` once the
output is whole, so a folder run still stops after that file.

A stop signal is also a flag (:func:`ask_stop`) that a run polls between frames: Python swallows an
exception raised inside a finalizer or weakref callback (torch and PyAV run many), and a SIGTERM
whose KeyboardInterrupt landed there was lost: the run went on to the end and exited 0."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_depth = 0
_deferred = False
_what: str | None = None  # the output the outermost block finishes, named when a stop waited for it
_lock = threading.Lock()
_stop = threading.Event()
_stop_what: str | None = None  # the signal that asked it ("Ctrl-C", "SIGTERM"...), where told


@contextmanager
def finishing() -> Iterator[None]:
    global _depth, _deferred, _what
    with _lock:
        if _depth == 0:
            _what = None
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            stop, _deferred = _deferred and _depth == 0, _deferred and _depth > 0
            name = _what
    if stop:
        from stream_gpen.errors import Interrupted

        # (it said "the output in hand", not which: a folder run's, a camera's several outputs)
        err = Interrupted(f"stopped: {name or 'the output in hand'} was written whole first")
        err.output_whole = True  # (the run's summary says so, and an earlier run's .partial goes)
        raise err


def finishing_output(what: object) -> None:
    """Inside :func:`finishing`: the output it finishes, named if a stop waits for it (the first
    named, where blocks nest)."""
    global _what
    with _lock:
        if _depth > 0 and _what is None:
            _what = str(what)


def is_finishing() -> bool:
    return _depth > 0


def defer() -> None:
    """A stop asked while finishing: raised when the outermost :func:`finishing` block ends."""
    global _deferred
    _deferred = True


def ask_stop(what: str | None = None) -> None:
    """A stop signal came (the command line's handler; ``what``: which, ``"Ctrl-C"``,
    ``"SIGTERM"``...): the run stops at its next frame, even where the KeyboardInterrupt raised
    for it was swallowed."""
    global _stop_what
    if not _stop.is_set():
        _stop_what = what
    _stop.set()


def stop_asked() -> bool:
    return _stop.is_set()


def stop_signal() -> str | None:
    """The signal :func:`ask_stop` was told of (the first), or None."""
    return _stop_what if _stop.is_set() else None


def clear_stop() -> None:
    """Before and after a command line's run (``main()`` may be called again in the same process)."""
    global _stop_what
    _stop.clear()
    _stop_what = None
