"""Hunt 18 (docs against the code): hints, help texts and docstrings users read."""
from __future__ import annotations

import dataclasses

import pytest

from stream_gpen.cli import build_parser, main


@pytest.mark.parametrize("argv, said", [
    (["info", "x.mp4", "--model", "classic"], "--model is an option of enhance, camera, serve"),
    (["weights", "list", "--port", "3"], "--port is an option of serve"),
    (["enhance", "x.mp4", "--modle", "classic"], "--modle: did you mean --model?"),
    (["info", "x.mp4", "--jsn"], "--jsn: did you mean --json?"),
])
def test_an_unknown_option_gets_the_right_hint(argv, said, capsys):
    # `info x --model classic` was answered "did you mean --help?" (the shared "--" alone made them close)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert said in err and "--help?" not in err, err


def test_every_command_lists_the_exit_codes():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and "enhance" in a.choices)
    for name, p in sub.choices.items():
        assert p.epilog and "exit codes" in p.epilog and "141" in p.epilog, name
    weights = sub.choices["weights"]
    nested = next(a for a in weights._actions if getattr(a, "choices", None) and "verify" in a.choices)
    for name, p in nested.choices.items():
        assert p.epilog and "exit codes" in p.epilog, f"weights {name}"
    assert "141" in parser.epilog


def test_the_run_summary_documents_each_field():
    from stream_gpen import RunSummary

    doc = RunSummary.__doc__ or ""
    missing = [f.name for f in dataclasses.fields(RunSummary) if f"``{f.name}``" not in doc]
    assert not missing, missing
    assert "``fps``" in doc


def test_interrupted_declares_its_summary():
    from stream_gpen import Interrupted

    assert Interrupted("x").summary is None and "summary" in Interrupted.__doc__


def test_serve_without_python_multipart_says_so_before_it_starts(monkeypatch, capsys):
    """package18: `serve` checked only uvicorn and fastapi; without python-multipart it started,
    said /healthz ok, and answered every upload with a 500."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("python_multipart", "multipart") else real(name, *a))
    assert main(["serve", "--model", "classic", "--device", "cpu", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "python-multipart is missing" in err and "pip install" in err and "stream-gpen[" not in err


def test_the_declared_pyav_minimum_is_one_that_works():
    """package18: pyproject said av>=14.0, while PyAV before 18.1 fails on every input here."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert re.search(r'"av>=18\.1"', text)


@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.5, -0.1, "0.5", True])
def test_min_score_is_refused_with_one_message(bad):
    """api18: 1.5 was "must be a number in [0, 1)" (the detector's check) while 0 said "(0, 1)"."""
    from stream_gpen import Enhancer
    from stream_gpen.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"min_score must be a number in \(0, 1\)"):
        Enhancer("classic", device="cpu", min_score=bad)
