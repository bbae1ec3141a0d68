"""``warnings.catch_warnings`` for library code that may run in several threads at once."""
from __future__ import annotations

import contextlib
import threading
import warnings

# catch_warnings swaps the process-wide filter list and showwarning (Python < 3.14): two blocks
# overlapping in two threads restore each other's state in the wrong order, which left an
# "always" filter in the host program for good, and a warning of one thread recorded under the
# other's photo. Our blocks take turns; each is short (one picture's decode, one model build).
_LOCK = threading.RLock()


@contextlib.contextmanager
def caught_warnings(*, record: bool = False):
    """``warnings.catch_warnings(record=record)``, one thread at a time."""
    with _LOCK, warnings.catch_warnings(record=record) as caught:
        yield caught
