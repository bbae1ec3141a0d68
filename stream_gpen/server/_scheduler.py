"""One lock per device: image batches and video jobs never use the same model at once.

A video job holds the lock for its whole run but calls :meth:`DeviceScheduler.yield_to_waiters`
between frames (from ``on_progress``, when the pipeline is not touching the model), so image
requests and live frames still get answered while a long video is processed: their latency is
bounded by one video frame step, not by the length of the video.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager


class DeviceScheduler:
    """Mutual exclusion for one device, with a polite hand-over from long jobs to short ones."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._waiting = 0  # short (image) users blocked on the lock

    @contextmanager
    def short(self):
        """Hold the device for one image batch."""
        with self._cond:
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._cond:
                self._waiting -= 1
                self._cond.notify_all()
        try:
            yield
        finally:
            self._lock.release()

    @contextmanager
    def long(self):
        """Hold the device for a video job; call :meth:`yield_to_waiters` between frames."""
        self._lock.acquire()
        try:
            yield self
        finally:
            self._lock.release()

    def yield_to_waiters(self, max_wait_s: float = 5.0) -> None:
        """From inside :meth:`long`: let the image batches that are waiting run first."""
        if not self._waiting:
            return
        self._lock.release()
        try:
            with self._cond:
                # Wait until every waiter has taken its turn at the lock (or a bound: a steady
                # stream of images must not starve the video job for ever).
                self._cond.wait_for(lambda: self._waiting == 0, timeout=max_wait_s)
        finally:
            self._lock.acquire()

    @property
    def waiting(self) -> int:
        return self._waiting
