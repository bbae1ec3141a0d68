"""Session 31 (misc): a download left an empty ``NAME.pth.lock`` in the weights cache for good,
failed (``stream-gpen weights download`` without a network: exit 3) or done. The lock file is now
removed by its holder while it still holds it, and a process that waited on a removed file locks
the one there now instead (so two processes never hold "the lock" at once)."""
from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from stream_gpen import weights
from stream_gpen.errors import DownloadError
from stream_gpen.weights import ensure_weights
import tests.test_weights as _tw

fcntl = pytest.importorskip("fcntl")

dirs = _tw.dirs
server = _tw.server


def test_a_failed_download_leaves_no_lock_file(dirs):
    with pytest.raises(DownloadError) as info:
        ensure_weights(_tw.make(_tw.closed_port_url()), progress=False)
    assert info.value.exit_code == 3
    assert sorted(p.name for p in dirs.home.iterdir()) == []


def test_a_finished_download_leaves_no_lock_file(server, dirs):
    path = ensure_weights(_tw.make(server.serve("/w.bin")), progress=False)
    assert path.read_bytes() == _tw.BODY
    assert sorted(p.name for p in dirs.home.iterdir()) == ["test-model.pth", "verified.json"]


class _Flock:
    """``fcntl`` with its ``flock`` calls recorded: (thread name, operation, inode locked)."""

    LOCK_EX, LOCK_NB, LOCK_UN = fcntl.LOCK_EX, fcntl.LOCK_NB, fcntl.LOCK_UN

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def flock(self, handle, op) -> None:
        self.calls.append((threading.current_thread().name, op, os.fstat(handle.fileno()).st_ino))
        fcntl.flock(handle, op)


def test_a_waiter_on_a_removed_lock_file_locks_the_new_one(tmp_path, monkeypatch):
    """A holds the lock; B waits on its file; A removes the file (still holding it), C makes and
    locks a new one, then A lets go. B, woken on the removed file, must wait for C."""
    target, lock = tmp_path / "w.pth", tmp_path / "w.pth.lock"
    rec = _Flock()
    monkeypatch.setitem(sys.modules, "fcntl", rec)
    events: list[str] = []
    a_in, a_go, c_in, c_go, b_in, b_go = (threading.Event() for _ in range(6))
    remove = weights._remove_lock

    def removed_then_c_comes(path):
        done = remove(path)
        if threading.current_thread().name == "A":
            assert done and not lock.exists()
            threading.Thread(target=holder, args=("C", c_in, c_go), name="C", daemon=True).start()
            assert c_in.wait(60)  # (C holds the new file before A lets go of the old one)
        return done

    monkeypatch.setattr(weights, "_remove_lock", removed_then_c_comes)

    def holder(name, entered, go) -> None:
        with weights._exclusive(target):
            events.append(f"{name} in")
            entered.set()
            assert go.wait(60)
            events.append(f"{name} out")

    def waits(name: str, inode: int | None = None):
        return lambda: any(n == name and op == fcntl.LOCK_EX and (inode is None or ino == inode)
                           for n, op, ino in rec.calls)

    a = threading.Thread(target=holder, args=("A", a_in, a_go), name="A", daemon=True)
    a.start()
    assert a_in.wait(60)
    old = os.stat(lock).st_ino
    b = threading.Thread(target=holder, args=("B", b_in, b_go), name="B", daemon=True)
    b.start()
    _tw_until(waits("B", old))  # B blocked on A's file
    a_go.set()
    a.join(60)
    new = os.stat(lock).st_ino  # C's
    assert new != old
    _tw_until(waits("B", new))  # B woke on the removed file, and now waits on C's
    assert events == ["A in", "A out", "C in"] and not b_in.is_set()
    c_go.set()
    assert b_in.wait(60)
    b_go.set()
    b.join(60)
    assert events == ["A in", "A out", "C in", "C out", "B in", "B out"]
    assert not lock.exists()


def _tw_until(condition) -> None:
    deadline = time.monotonic() + 60  # (normally milliseconds; the limit only stops a broken test hanging)
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)
