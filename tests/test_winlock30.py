"""Hunt 30 (weights): the download lock on Windows.

``_exclusive`` locked ``<target>.lock`` with ``fcntl`` and, where that does not exist (Windows),
took no lock at all: two first-time downloads of one file both appended to the same ``.part`` and
both failed (a size mismatch for one, "cannot write" for the other). Now Windows locks the lock
file's first byte with ``msvcrt.locking``, trying again while another process holds it.

These tests run on POSIX with ``fcntl`` hidden and a stand-in ``msvcrt`` whose ``locking`` keeps
msvcrt's contract (a byte range from the handle's position; ``LK_NBLCK`` raises EACCES while
another handle holds it; ``LK_UNLCK`` releases), backed by ``flock`` on the same descriptor. They
were not run on Windows itself."""
from __future__ import annotations

import errno
import os
import sys
import threading
import time

import pytest

from stream_gpen import weights
import tests.test_weights as _tw

fcntl = pytest.importorskip("fcntl")  # (the stand-in is built on it)

dirs = _tw.dirs
server = _tw.server


class FakeMsvcrt:
    """The part of ``msvcrt`` the lock uses, with its constants' values."""

    LK_UNLCK, LK_LOCK, LK_NBLCK = 0, 1, 2

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []  # (mode, position, nbytes)
        self.refused = threading.Event()

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        self.calls.append((mode, os.lseek(fd, 0, os.SEEK_CUR), nbytes))
        if mode == self.LK_UNLCK:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
        assert mode == self.LK_NBLCK, mode
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.refused.set()
            raise PermissionError(errno.EACCES, "Permission denied") from None


@pytest.fixture
def windows(monkeypatch):
    """No ``fcntl`` to import (as on Windows), and the stand-in ``msvcrt``."""
    fake = FakeMsvcrt()
    monkeypatch.setitem(sys.modules, "fcntl", None)  # (import fcntl: ImportError)
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    monkeypatch.setattr(weights, "_LOCK_POLL_S", 0.005, raising=False)
    return fake


def _until(condition, limit_s: float = 60.0) -> None:
    """Wait for ``condition`` (normally milliseconds; the limit only stops a broken test hanging)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_a_second_holder_waits_for_the_first(windows, tmp_path, caplog):
    target = tmp_path / "w.pth"
    events: list[str] = []
    first_in, release, second_in = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with weights._exclusive(target):
            events.append("first in")
            first_in.set()
            release.wait(60)
            events.append("first out")

    def second() -> None:
        with weights._exclusive(target):
            events.append("second in")
            second_in.set()

    a, b = threading.Thread(target=first), threading.Thread(target=second)
    with caplog.at_level("INFO", logger="stream_gpen.weights"):
        a.start()
        assert first_in.wait(60)
        b.start()
        _until(lambda: windows.refused.is_set() or second_in.is_set())
        assert events == ["first in"]  # the second is held off while the first holds the lock
        release.set()
        a.join(60)
        b.join(60)
    assert events == ["first in", "first out", "second in"]
    assert "another process is downloading w.pth; waiting for it" in caplog.text
    # msvcrt's contract: one byte, from the start of the lock file, unlocked from the same place
    assert {(position, nbytes) for _, position, nbytes in windows.calls} == {(0, 1)}
    assert [mode for mode, _, _ in windows.calls].count(FakeMsvcrt.LK_UNLCK) == 2
    assert not (tmp_path / "w.pth.lock").exists()  # (removed by its last holder: session 31)


def test_a_lock_error_that_is_not_contention_is_raised(windows, tmp_path, monkeypatch):
    def no_locks(fd, mode, nbytes):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(windows, "locking", no_locks)
    with pytest.raises(OSError, match="Invalid argument"):
        with weights._exclusive(tmp_path / "w.pth"):
            pass


def test_two_first_downloads_on_windows_share_one_file(windows, server, dirs, caplog):
    # the download test of test_weights, under the Windows lock: one request, both get the file
    _tw.test_concurrent_downloads_wait_for_each_other(server, dirs, caplog)
    assert windows.refused.is_set()
