"""Whether an output is being finished (its encoders flushed, its file renamed into place).

The command line's signal handler (``cli._Signals``) does not raise on a first Ctrl-C or SIGTERM
then: the run is done but for that, and an interrupt there made the sink discard the whole
encoded file (``FileSink.close``'s clean-up), or the camera say "stopped", exit 0, with no
recording. The stop is deferred (:func:`defer`) and raised as :class:`Interrupted` once the
output is whole, so a folder run still stops after that file."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_depth = 0
_deferred = False
_lock = threading.Lock()


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
