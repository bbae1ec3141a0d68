"""``warnings.catch_warnings`` for library code that may run in several threads at once."""
from __future__ import annotations

import contextlib
import os
import re
import sys
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


def modules_pattern(*packages: str) -> str:
    """A ``warnings.filterwarnings(module=...)`` pattern for these packages and their submodules
    (``"torch"`` takes ``torch.serialization``, not ``torchvision``)."""
    return "(" + "|".join(re.escape(p) for p in packages) + r")(\.|$)"


@contextlib.contextmanager
def warnings_of(*packages: str, into: list):
    """Collect into ``into`` every warning the named packages raise in the block (each time it
    is raised: filter "always" for them, whatever the host's filters say).

    The warnings state is the whole process's before Python 3.14, so recording also catches what
    the host's other threads raise meanwhile: those (any warning not raised from the packages'
    files) are handed back to the host's ``warnings.showwarning`` after the block, as its own
    filters let them through, instead of being taken for the packages'. ``into`` is filled as
    the block ends, so read it after the ``with``."""
    caught: list = []
    with _LOCK:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.filterwarnings("always", module=modules_pattern(*packages))
                yield into
        finally:
            homes = _homes(packages)
            for w in caught:
                if os.path.abspath(w.filename).startswith(homes):
                    into.append(w)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)


def _homes(packages) -> tuple[str, ...]:
    """The folders (packages) or files (modules) of those of ``packages`` that are imported."""
    out = []
    for name in packages:
        f = getattr(sys.modules.get(name), "__file__", None)
        if f:
            f = os.path.abspath(f)
            out.append(os.path.dirname(f) + os.sep if os.path.basename(f).startswith("__init__.") else f)
    return tuple(out)
