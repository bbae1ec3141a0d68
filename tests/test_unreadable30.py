"""Hunt 30 (weights): a weights file that cannot be read.

A copy in the cache that the file system refused to read (chmod 000, another user's file) raised
PermissionError out of the search: `weights path` and every run said "cannot write or read a
file" with the hint about the output folder (exit 4), `weights list` stopped after its header,
`make demo` died with a traceback, and a good copy in the checkout's weights/ was never reached.
A checkpoint given by its path (`--model noread.pt`) failed the same way. Now an unreadable copy
is skipped with a warning naming it, the search goes on, and where no usable copy remains (or
the file was given by its path) the error is a weights error (exit 3) naming the file and the
refusal, with a hint to make it readable.

As root, a file's mode does not stop reading it: in-process tests refuse the reads of the file
in ``open`` (where the mode itself does not already); one test runs the command under
``setpriv`` without root's override capabilities, so that the mode really binds it."""
from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stream_gpen import cli, weights
from stream_gpen.errors import WeightsError, WeightsNotFoundError
from stream_gpen.weights import ensure_weights
import tests.test_weights as _tw
from tests.conftest import REPO

# test_weights' fixture: a private cache and checkout (autouse)
dirs = _tw.dirs


@pytest.fixture
def deny(monkeypatch):
    """``deny(path)``: make ``path`` unreadable (chmod 000; where that does not bind this process,
    as for root, ``open`` refuses it as the file system would)."""
    refused: set[str] = set()
    real_open = io.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(file) in refused:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    chmodded: list[Path] = []

    def deny(path: Path) -> Path:
        path.chmod(0)
        chmodded.append(path)
        try:
            real_open(path, "rb").close()
        except PermissionError:
            return path  # the mode binds us
        refused.add(os.path.abspath(path))
        monkeypatch.setattr(builtins, "open", guarded)
        monkeypatch.setattr(io, "open", guarded)
        return path

    yield deny
    for path in chmodded:
        path.chmod(0o644)


def test_an_unreadable_cached_copy_is_skipped_for_a_good_one_elsewhere(dirs, deny, caplog):
    dirs.home.mkdir()
    wf = _tw.make("http://127.0.0.1:9/never")
    cached = dirs.home / "test-model.pth"
    cached.write_bytes(_tw.BODY)
    deny(cached)
    (dirs.repo / "test-model.pth").write_bytes(_tw.BODY)
    with caplog.at_level("WARNING", logger="stream_gpen.weights"):
        assert weights.find_weights(wf) == dirs.repo / "test-model.pth"
        assert ensure_weights(wf, download=False) == dirs.repo / "test-model.pth"
    assert f"ignoring {cached}: cannot read it (Permission denied)" in caplog.text
    assert "chmod a+r" in caplog.text


def test_no_readable_copy_left_is_a_weights_error_naming_the_file(dirs, deny, monkeypatch):
    dirs.home.mkdir()
    wf = _tw.make("http://127.0.0.1:9/never")
    cached = dirs.home / "test-model.pth"
    cached.write_bytes(_tw.BODY)
    deny(cached)
    for offline in (False, True):
        if offline:
            monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
        with pytest.raises(WeightsNotFoundError) as info:
            ensure_weights(wf, download=False)
        assert f"the copy at {cached} was ignored (unreadable: Permission denied)" in str(info.value)
        assert info.value.hint.startswith(f"make {cached} readable for this user (chmod a+r {cached})")
        assert info.value.exit_code == 3


def test_verify_says_unreadable_and_the_verdict_is_not_remembered(dirs, deny, monkeypatch):
    files = {"good": weights.WeightFile(name="good", filename="good.pth", urls=(), size=len(_tw.BODY),
                                        sha256=_tw.SHA),
             "nosha": weights.WeightFile(name="nosha", filename="nosha.pth", urls=(), size=len(_tw.CKPT))}
    monkeypatch.setattr(weights, "all_weight_files", lambda: files)
    (dirs.repo / "good.pth").write_bytes(_tw.BODY)
    (dirs.repo / "nosha.pth").write_bytes(_tw.CKPT)
    deny(dirs.repo / "good.pth")
    deny(dirs.repo / "nosha.pth")
    results = {r.file.name: r for r in weights.verify()}
    assert {n: (r.status, r.detail) for n, r in results.items()} == {
        "good": ("unreadable", "Permission denied"), "nosha": ("unreadable", "Permission denied")}
    assert not results["good"].good
    assert weights.checked(files["good"], dirs.repo / "good.pth").status == "unreadable"
    stamps = dirs.repo / weights.STAMPS_FILE
    assert not stamps.exists() or "good.pth" not in json.loads(stamps.read_text())


def test_weights_list_and_path_commands(dirs, deny, monkeypatch, capsys, mobilenet_weights):
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    wf = weights.DETECTOR_FILES["retinaface-mobilenet0.25"]
    dirs.home.mkdir()
    cached = dirs.home / wf.filename
    shutil.copy(mobilenet_weights, cached)
    deny(cached)
    assert cli.main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(wf.name))
    assert f"{cached}  (unreadable" in row
    assert "`stream-gpen weights verify` checks" in out  # (the table went on to its end)
    assert cli.main(["weights", "path", "mobilenet0.25"]) == 3
    err = capsys.readouterr().err
    assert "was ignored (unreadable: Permission denied)" in err and str(cached) in err
    assert "output folder" not in err


def test_an_unreadable_checkpoint_given_by_its_path(tmp_path, deny, gpen_fixtures, capsys, shared):
    mine = tmp_path / "noread.pt"
    shutil.copy(gpen_fixtures / "gpen_tiny256_state_dict.pt", mine)
    deny(mine)
    from stream_gpen.models.loading import load_generator

    with pytest.raises(WeightsError, match=r"cannot read the checkpoint .*noread\.pt \(permission denied\)") as info:
        load_generator(mine)
    assert f"chmod a+r {mine}" in info.value.hint and info.value.exit_code == 3
    photo = shared / "data" / "faces" / "aligned" / "codeformer_crop_0143.png"
    code = cli.main(["enhance", str(photo), "-o", str(tmp_path / "o.png"), "--model", str(mine), "--aligned",
                     "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert f"cannot read the checkpoint {mine} (permission denied)" in err
    assert "output folder" not in err


def test_the_demo_says_which_file_cannot_be_read(dirs, deny, monkeypatch, capsys, tmp_path, mobilenet_weights):
    import importlib.util

    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    monkeypatch.setenv("STREAM_GPEN_SHARED", str(tmp_path / "no-shared"))  # (no detector to fall back on)
    wf = weights.DETECTOR_FILES["retinaface-mobilenet0.25"]
    dirs.home.mkdir()
    cached = dirs.home / wf.filename
    shutil.copy(mobilenet_weights, cached)
    deny(cached)
    spec = importlib.util.spec_from_file_location("demo30", REPO / "samples" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    assert demo.main(["--device", "cpu", "--no-download", "--out", str(tmp_path / "out")]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "cannot run without the RetinaFace face detector" in err
    assert f"the copy at {cached} was ignored (unreadable: Permission denied)" in err


def _modes_bind() -> list[str] | None:
    """The command prefix under which a file's mode binds the command: none for a user other
    than root; for root, setpriv without the capabilities that override modes. ``None`` where
    root has no setpriv that can do so."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
    try:
        ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode == 0
    except OSError:
        return None
    return prefix if ok else None


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX file modes")
def test_the_command_with_a_chmod_000_copy_for_real(tmp_path, mobilenet_weights):
    prefix = _modes_bind()
    if prefix is None:
        pytest.skip("root without a setpriv that drops CAP_DAC_OVERRIDE (the in-process tests cover it)")
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(mobilenet_weights, home / mobilenet_weights.name)
    (home / mobilenet_weights.name).chmod(0)
    env = {**os.environ, "STREAM_GPEN_HOME": str(home), "STREAM_GPEN_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    run = lambda *args: subprocess.run([*prefix, sys.executable, "-m", "stream_gpen", *args],  # noqa: E731
                                       env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    r = run("weights", "path", "mobilenet0.25")
    assert r.returncode == 3, r.stderr
    assert f"ignoring {home / mobilenet_weights.name}: cannot read it (Permission denied)" in r.stderr
    assert "output folder" not in r.stderr
    r = run("weights", "list")
    assert r.returncode == 0, r.stderr
    assert "(unreadable" in r.stdout and "`stream-gpen weights verify` checks" in r.stdout
