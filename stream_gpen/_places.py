"""Whether two paths name one place, or one holds the other; and the file system's refusals.

Torch-free: ``--report`` is checked with these when a Ctrl-C or SIGTERM stopped a run while torch
imported (hunt 32). Importing :mod:`stream_gpen.api` for them then ran torch's half-done import
again, which failed ("Only a single TORCH_LIBRARY ..."): an "internal error", exit 1, no report.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

#: the file system's refusals of a write that no other output in that folder would escape
REFUSED_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def same_place(a, b) -> bool:
    """Whether paths ``a`` and ``b`` name one file or folder: by identity where both exist (on a
    case-insensitive disk, macOS's or a FAT/exFAT card's, ``trip`` is ``Trip``, which ``resolve()``
    does not say: ``--overwrite`` then replaced the original photos), else by their resolved paths."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def holds(folder, inner) -> bool:
    """Whether folder ``folder`` holds ``inner`` (a parent of it, at any depth; not itself): by
    identity where it exists (a case-insensitive disk), else by resolved paths."""
    try:
        parents = Path(inner).resolve().parents
        if os.path.isdir(folder):
            return any(os.path.samefile(folder, p) for p in parents if os.path.isdir(p))
        return Path(folder).resolve() in parents
    except OSError:
        return False


def file_size_limit() -> int | None:
    """The process's file-size limit in bytes (RLIMIT_FSIZE: ``ulimit -f``, systemd's
    ``LimitFSIZE``), or None where there is none (or no such limit on this system). What a write
    refused with ``EFBIG`` ran into, where it is set; else the drive's largest file (FAT32)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, AttributeError, OSError, ValueError):  # (Windows)
        return None
    return None if soft == resource.RLIM_INFINITY or soft < 0 else int(soft)
