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
_lock = threading.Lock()
_stop = threading.Event()


@contextmanager
def finishing() -> Iterator[None]:
    global _depth, _deferred
    with _lock:
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            stop, _deferred = _deferred and _depth == 0, _deferred and _depth > 0
    if stop:
        from stream_gpen.errors import Interrupted

        err = Interrupted("stopped: the output in hand was written whole first")
        err.output_whole = True  # (the run's summary says so, and an earlier run's .partial goes)
        raise err


def is_finishing() -> bool:
    return _depth > 0


def defer() -> None:
    """A stop asked while finishing: raised when the outermost :func:`finishing` block ends."""
    global _deferred
    _deferred = True


def ask_stop() -> None:
    """A stop signal came (the command line's handler): the run stops at its next frame, even where
    the KeyboardInterrupt raised for it was swallowed."""
    _stop.set()


def stop_asked() -> bool:
    return _stop.is_set()


def clear_stop() -> None:
    """Before and after a command line's run (``main()`` may be called again in the same process)."""
    _stop.clear()
