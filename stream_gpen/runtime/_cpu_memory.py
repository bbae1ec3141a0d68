"""CPU allocator tuning: keep freed memory in the process so large activations stop page-faulting.

PyTorch's CPU tensors come straight from ``malloc``. glibc serves blocks above its mmap threshold
(dynamic, at most 32 MiB) with a fresh ``mmap`` and unmaps them on free, and returns the top of
the heap to the kernel once more than the trim threshold is free. Every GPEN call allocates and
frees activations of 10-70 MiB, so each call touches fresh pages, and the kernel zero-fills each
4 KiB page on its first touch. Measured on the project's 2-core CPU (GPEN-256, fp32): 1.6 GB of
page faults and ~0.7 s of system time per batch-4 forward (about a third of the call), ~50 ms at
batch 1; with the thresholds below the faults drop to zero after the first call.

The cost: the process keeps its peak heap instead of shrinking between calls (RSS stays at its
high-water mark), and the setting is process-wide and stays for the process's lifetime. Blocks
above ~64 MiB still go through ``mmap`` when the calling thread is served by one of glibc's
secondary arenas (their heaps are capped at 64 MiB; the main thread normally uses the unbounded
main arena): GPEN-256 at batch 4 has a few such blocks, batch <= 3 none.
"""
from __future__ import annotations

import ctypes
import logging
import sys
import threading

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_THRESHOLD = -3
# mallopt takes an int: 1 GiB keeps every realistic activation on the heap.
_MMAP_THRESHOLD = 1 << 30
_TRIM_THRESHOLD = 2**31 - 1

_lock = threading.Lock()
_result: list[str | None] = []  # [] = not tried yet; [None] = in effect; [reason] = not applied


def keep_freed_memory() -> str | None:
    """Raise glibc's mmap and trim thresholds for this process (once; later calls are free).

    Returns ``None`` when the setting is in effect, else why it could not be applied (not Linux
    with glibc, or ``mallopt`` refused); the reason is the same on every call.
    """
    with _lock:
        if not _result:
            _result.append(_apply())
            if _result[0] is None:
                logger.info(
                    "CPU allocator: glibc mmap/trim thresholds raised (freed tensor memory is reused, "
                    "not returned to the OS; RSS stays at its peak)"
                )
        return _result[0]


def freed_memory_kept() -> bool:
    """Whether :func:`keep_freed_memory` is in effect in this process."""
    with _lock:
        return _result == [None]


def _apply() -> str | None:
    if not sys.platform.startswith("linux"):
        return f"needs glibc malloc (Linux), this is {sys.platform}"
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return "the C library is not glibc (no gnu_get_libc_version)"
    version.restype = ctypes.c_char_p
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # Trim first: if the mmap threshold is refused, a kept heap still helps blocks under 32 MiB.
    if not mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) or not mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD):
        return f"mallopt refused the thresholds (glibc {version().decode()})"
    return None
