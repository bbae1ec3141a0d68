"""Hunt 30 (weights): ``weights.download()`` with a good copy already in a read-only cache.

Its docstring says it "returns a good one there without a request", but it took the download
lock first, and a read-only folder (a shared or mounted weights cache) cannot hold the lock file:
DownloadError "Permission denied" on ``<target>.lock``. Now a good copy is returned before the
lock is taken (and looked for again under the lock, for a download another process finished)."""
from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
import subprocess
import sys

import pytest

from stream_gpen import weights
import tests.test_weights as _tw
from tests.conftest import REPO
from tests.test_unreadable30 import _modes_bind

dirs = _tw.dirs


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(folder)``: chmod a-w; where that does not bind this process (root), ``open``
    refuses to create or write files in it, as the file system would."""
    real_open = io.open

    def read_only(folder):
        folder.chmod(0o555)
        try:
            real_open(folder / ".probe", "a").close()
        except PermissionError:
            return folder  # the mode binds us
        (folder / ".probe").unlink()
        inside = os.path.abspath(folder)

        def guarded(file, mode="r", *args, **kwargs):
            if (isinstance(file, (str, os.PathLike)) and os.path.dirname(os.path.abspath(file)) == inside
                    and set(mode) & set("wax+")):
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded)
        monkeypatch.setattr(io, "open", guarded)
        return folder

    made: list = []
    yield lambda folder: made.append(folder) or read_only(folder)
    for folder in made:
        folder.chmod(0o755)


def test_a_good_copy_in_a_read_only_cache_is_returned(dirs, read_only):
    dirs.home.mkdir()
    wf = _tw.make("http://127.0.0.1:9/never")  # (a request would fail: nothing listens there)
    (dirs.home / "test-model.pth").write_bytes(_tw.BODY)
    read_only(dirs.home)
    assert weights.download(wf, progress=False) == dirs.home / "test-model.pth"
    assert not (dirs.home / "test-model.pth.lock").exists()


def test_a_good_copy_is_returned_without_the_lock(dirs, monkeypatch):
    dirs.home.mkdir()
    wf = _tw.make("http://127.0.0.1:9/never")
    (dirs.home / "test-model.pth").write_bytes(_tw.BODY)

    def no_lock(target):
        raise AssertionError(f"the lock of {target} was taken for a copy already there")

    monkeypatch.setattr(weights, "_exclusive", no_lock)
    assert weights.download(wf, progress=False) == dirs.home / "test-model.pth"


def test_download_in_a_read_only_cache_for_real(tmp_path, mobilenet_weights):
    prefix = _modes_bind()
    if prefix is None:
        pytest.skip("root without a setpriv that drops CAP_DAC_OVERRIDE (the in-process tests cover it)")
    home = tmp_path / "ro"
    home.mkdir()
    shutil.copy(mobilenet_weights, home / mobilenet_weights.name)
    home.chmod(0o555)
    try:
        env = {**os.environ, "STREAM_GPEN_HOME": str(home), "PYTHONPATH": str(REPO)}
        env.pop("STREAM_GPEN_OFFLINE", None)
        r = subprocess.run([*prefix, sys.executable, "-c",
                            "from stream_gpen import weights; print(weights.download('mobilenet0.25'))"],
                           env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    finally:
        home.chmod(0o755)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(home / mobilenet_weights.name)
