"""Hunt 30 (weights): STREAM_GPEN_HOME naming an unknown user's home, and what the demo says.

``STREAM_GPEN_HOME='~nosuchuser/weights'`` (``Path.expanduser`` cannot expand an unknown user)
was said as "STREAM_GPEN_HOME is not set, and neither is HOME", though both were set; now the
message says which user is unknown. And ``make demo`` took any weights error not about a named
file for a missing detector ("cannot run without the RetinaFace face detector ... put the file
where the message says"), though no file was missing; now such an error is said as it is, with
its hint, and the detector paragraph is kept for the detector."""
from __future__ import annotations

import importlib.util
import os
import re

import pytest

from stream_gpen import cli, weights
from stream_gpen.errors import WeightsError
import tests.test_weights as _tw
from tests.conftest import REPO

dirs = _tw.dirs

pwd = pytest.importorskip("pwd")  # (~user is expanded from the passwd database on POSIX)


def _unknown_user() -> str:
    for n in range(100):
        name = f"nosuchuser{n or ''}"
        try:
            pwd.getpwnam(name)
        except KeyError:
            return name
    pytest.skip("every candidate user name exists here")


def _demo():
    spec = importlib.util.spec_from_file_location("demo30home", REPO / "samples" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


def test_an_unknown_users_home_is_named(dirs, monkeypatch, capsys):
    user = _unknown_user()
    monkeypatch.setenv("STREAM_GPEN_HOME", f"~{user}/weights")
    assert os.environ.get("HOME")
    with pytest.raises(WeightsError) as info:
        weights.home_dir()
    message = str(info.value)
    assert message == (f"cannot tell where the weights cache is: STREAM_GPEN_HOME=~{user}/weights names the home "
                       f"folder of ~{user}, and there is no user '{user}' here")
    assert "not set" not in message
    assert info.value.hint.startswith("set STREAM_GPEN_HOME to a folder for the weights")
    assert cli.main(["weights", "path", "gpen-bfr-256"]) == 3
    err = capsys.readouterr().err
    assert f"there is no user '{user}' here" in err and "neither is HOME" not in err


def test_a_tilde_home_without_home_says_so(dirs, monkeypatch):
    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setenv("STREAM_GPEN_HOME", "~/weights")
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    with pytest.raises(WeightsError, match=r"STREAM_GPEN_HOME=~/weights starts with ~, but HOME is not set \(user id"):
        weights.home_dir()
    monkeypatch.delenv("STREAM_GPEN_HOME")  # (the case before: unchanged)
    with pytest.raises(WeightsError, match="STREAM_GPEN_HOME is not set, and neither is HOME"):
        weights.home_dir()


def test_the_demo_says_the_error_itself_when_no_file_is_missing(dirs, monkeypatch, capsys, tmp_path):
    user = _unknown_user()
    monkeypatch.setenv("STREAM_GPEN_HOME", f"~{user}/weights")
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    demo = _demo()
    for model in ("auto", "gpen-bfr-256"):
        assert demo.main(["--device", "cpu", "--model", model, "--out", str(tmp_path / "out")]) == 3
        err = capsys.readouterr().err
        assert re.search(rf"demo: error: cannot tell where the weights cache is: .*no user '{user}' here\n"
                         r"hint: set STREAM_GPEN_HOME to a folder", err), err
        assert "RetinaFace" not in err and "Put the file" not in err


def test_the_demo_still_blames_a_missing_detector(dirs, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    monkeypatch.setenv("STREAM_GPEN_SHARED", str(tmp_path / "no-shared"))
    assert _demo().main(["--device", "cpu", "--out", str(tmp_path / "out")]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "The demo cannot run without the RetinaFace face detector" in err
    assert "stream-gpen weights download retinaface-mobilenet0.25" in err
