"""Windows file handling, simulated here: a finished video whose target cannot be replaced (open in
a player, the run's own input, read-only: Windows refuses with "Access is denied") is kept under a
visible name and said; the stale-temporary clean-up asks whether a process lives without os.kill,
which on Windows sends a Ctrl-C and never says "no such process"."""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time

import av
import numpy as np
import pytest

from stream_gpen.errors import EncodeError
from stream_gpen.io import _sink
from stream_gpen.io._meta import hidden_temp
from tests._clips import copy_through, write_video


def _clip(tmp_path):
    return write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)])


def _refuse_replacing(monkeypatch, target):
    """``os.replace`` onto ``target`` fails as Windows' MoveFileExW does onto an open file."""
    real = os.replace

    def replace(src, dst, *a, **k):
        if os.path.abspath(dst) == os.path.abspath(target):
            raise PermissionError(13, "Access is denied", str(src), None, str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)


def _frames(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def _hidden_temps(folder):
    return sorted(p.name for p in folder.glob(".*.tmp.*"))


def test_a_target_that_cannot_be_replaced_keeps_the_whole_result_under_a_visible_name(tmp_path, monkeypatch):
    """The rename onto the target was outside the clean-up: exit 4 "cannot write or read a file
    .o.<tag>.tmp.mp4" blaming the folder, and the whole restored video stranded under a hidden
    temporary name. It is kept as o.restored.mp4, the target is untouched, and the error says so."""
    src = _clip(tmp_path)
    target = tmp_path / "o.mp4"
    target.write_bytes(b"the old output, open in a player")
    _refuse_replacing(monkeypatch, target)
    with pytest.raises(EncodeError, match=r"the restored video is complete and was kept as .*o\.restored\.mp4; "
                                          r".*o\.mp4 could not be replaced \(Access is denied\)") as info:
        copy_through(src, target, overwrite=True)
    assert info.value.exit_code == 4
    assert info.value.hint == ("o.mp4 is in use by another program (a player, or this run's own input) or "
                               "read-only: close it, then move o.restored.mp4 over it")
    assert target.read_bytes() == b"the old output, open in a player"
    assert _frames(tmp_path / "o.restored.mp4") == 3
    assert _hidden_temps(tmp_path) == []


def test_the_kept_result_never_replaces_an_earlier_one(tmp_path, monkeypatch):
    src = _clip(tmp_path)
    target = tmp_path / "o.mp4"
    target.write_bytes(b"old")
    (tmp_path / "o.restored.mp4").write_bytes(b"kept by an earlier run")
    _refuse_replacing(monkeypatch, target)
    with pytest.raises(EncodeError, match=r"kept as .*o\.restored-1\.mp4"):
        copy_through(src, target, overwrite=True)
    assert (tmp_path / "o.restored.mp4").read_bytes() == b"kept by an earlier run"
    assert _frames(tmp_path / "o.restored-1.mp4") == 3
    assert _hidden_temps(tmp_path) == []


def test_a_result_that_cannot_be_renamed_either_is_named_where_it_is(tmp_path, monkeypatch):
    src = _clip(tmp_path)
    target = tmp_path / "o.mp4"
    target.write_bytes(b"old")
    _refuse_replacing(monkeypatch, target)

    def rename(src, dst, *a, **k):
        raise PermissionError(13, "Access is denied", str(src), None, str(dst))

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(EncodeError, match=r"the restored video is complete and is under the hidden name "
                                          r".*\.o\..*\.tmp\.mp4: move it now") as info:
        copy_through(src, target, overwrite=True)
    (left,) = _hidden_temps(tmp_path)
    assert info.value.hint.endswith(f"close it, then move {left} over it")
    assert _frames(tmp_path / left) == 3 and target.read_bytes() == b"old"


def _gone_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_pid_alive_on_posix():
    assert _sink._pid_alive(os.getpid())
    assert _sink._pid_alive(1)  # init: alive (another user's: PermissionError, alive too)
    assert not _sink._pid_alive(_gone_pid())


class _FakeKernel32:
    """kernel32 as Windows answers: ``procs`` maps a pid to its exit code (259 = STILL_ACTIVE),
    ``denied`` are other users' processes (OpenProcess: access denied)."""

    def __init__(self, procs=(), denied=()):
        self.procs, self.denied, self.error, self.open, self.closed = dict(procs), set(denied), 0, [], []

    def OpenProcess(self, access, inherit, pid):
        assert access == 0x1000 and not inherit  # PROCESS_QUERY_LIMITED_INFORMATION
        if pid in self.denied:
            self.error = 5
            return None
        if pid not in self.procs:
            self.error = 87  # ERROR_INVALID_PARAMETER
            return None
        self.open.append(pid)
        return 1000 + pid

    def GetExitCodeProcess(self, handle, code):
        ctypes.cast(code, ctypes.POINTER(ctypes.c_uint32)).contents.value = self.procs[handle - 1000]
        return 1

    def CloseHandle(self, handle):
        self.closed.append(handle - 1000)
        return 1


def _windows(monkeypatch, k32):
    """Simulate Windows for the liveness check: ``os.name`` as the sink sees it, kernel32, and an
    ``os.kill`` that must not be called (signal 0 is CTRL_C_EVENT there)."""

    class NtOs:
        name = "nt"

        def __getattr__(self, attr):
            return getattr(os, attr)

    def kill(pid, sig):
        raise AssertionError(f"os.kill({pid}, {sig}) on Windows sends a Ctrl-C")

    monkeypatch.setattr(_sink, "os", NtOs())
    monkeypatch.setattr(os, "kill", kill)
    monkeypatch.setattr(_sink, "_kernel32", lambda: k32, raising=False)
    monkeypatch.setattr(_sink, "_last_error", lambda: k32.error, raising=False)


def test_pid_alive_on_windows_asks_openprocess_never_os_kill(monkeypatch):
    k32 = _FakeKernel32(procs={10: 259, 11: 0}, denied={12})
    _windows(monkeypatch, k32)
    assert _sink._pid_alive(10)  # STILL_ACTIVE
    assert not _sink._pid_alive(11)  # exited, its handle still held somewhere
    assert _sink._pid_alive(12)  # another user's: access denied, so it exists
    assert not _sink._pid_alive(13)  # no such process
    assert k32.open == [10, 11] and k32.closed == [10, 11]  # every handle closed


def test_stale_temps_are_removed_on_windows(tmp_path, monkeypatch):
    """On Windows no leftover of a killed run was ever removed (os.kill(pid, 0) never raises
    ProcessLookupError there), and each removal check sent a Ctrl-C to that process group."""
    src = _clip(tmp_path)
    target = tmp_path / "o.mp4"
    gone, alive = 4242, 4343
    stale = hidden_temp(target, f".{_sink._machine_tag()}-{gone}-0123abcd.tmp")
    live = hidden_temp(target, f".{_sink._machine_tag()}-{alive}-4567abcd.tmp")
    for q in (stale, live):
        q.write_bytes(b"\0" * 1000)
        old = time.time() - 3600
        os.utime(q, (old, old))
    _windows(monkeypatch, _FakeKernel32(procs={alive: 259}))
    sink = copy_through(src, target)
    assert target.exists() and not stale.exists() and live.exists()
    assert any(f"removed {stale.name} (1,000 bytes)" in f for f in sink.fallbacks), sink.fallbacks


def test_a_photo_that_cannot_replace_its_target_is_kept_beside_it(tmp_path, monkeypatch, mobilenet_weights):
    """The photo writer's own replace: on failure (the old photo open in a viewer) the finished
    photo was deleted, and the error blamed the folder; it is kept as NAME.restored.EXT, said."""
    from pathlib import Path

    from PIL import Image

    from stream_gpen import Enhancer

    src = tmp_path / "p.jpg"
    Image.new("RGB", (40, 32), (100, 80, 60)).save(src)
    dst = tmp_path / "o.jpg"
    dst.write_bytes(b"the old output, open in a viewer")
    real = Path.replace

    def replace(self, target):
        if Path(target).name == "o.jpg":
            raise PermissionError(13, "Access is denied", str(target))
        return real(self, target)

    monkeypatch.setattr(Path, "replace", replace)
    enh = Enhancer(model="classic", device="cpu", detector_weights=mobilenet_weights)
    with pytest.raises(EncodeError, match="kept as .*o.restored.jpg; .*could not be replaced") as e:
        enh.enhance_file(src, dst, overwrite=True)
    assert e.value.exit_code == 4 and "close it, then move o.restored.jpg over it" in e.value.hint
    assert dst.read_bytes() == b"the old output, open in a viewer"
    assert Image.open(tmp_path / "o.restored.jpg").size == (40, 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jpg", "o.restored.jpg", "p.jpg"]


def test_an_in_place_run_replaces_its_own_input_once_it_lets_go_of_it(tmp_path, monkeypatch, cli_env):
    """`enhance clip.mp4 -o clip.mp4 --overwrite` on Windows: the input was still open when the
    output was renamed over it, so every in-place run ended with exit 4 and NAME.restored.EXT.
    The source, read to its end, closes its file first. (Simulated: a replace onto a file this
    process holds open fails, as MoveFileExW does.)"""
    from stream_gpen.cli import main

    real = os.replace

    def replace(src, dst, *a, **k):
        target = os.path.realpath(dst)
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.path.realpath(os.readlink(f"/proc/self/fd/{fd}")) == target:
                    raise PermissionError(13, "Access is denied", str(dst))
            except OSError as e:
                if isinstance(e, PermissionError):
                    raise
        return real(src, dst, *a, **k)

    src = _clip(tmp_path)
    n = _frames(src)
    monkeypatch.setattr(os, "replace", replace)
    assert main(["enhance", str(src), "-o", str(src), "--overwrite", *cli_env]) == 0
    assert _frames(src) == n
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == [src.name]
