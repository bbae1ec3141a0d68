"""Session 30 (docs): an error said to a stderr whose reader has gone (``stream-gpen enhance x 2>&1 |
head -0``, a log collector that died) exited 1, "internal error": the BrokenPipeError raised while
printing the error escaped the error's handler. The error keeps its own code (2 for a missing
input); what was to be said is lost. Notes said before the error (a .jxl input's) and the --debug
traceback too. Stdout's reader gone on a command that succeeds stays 141 (tests/test_cli.py)."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream_gpen.cli import main

ROOT = Path(__file__).resolve().parents[1]


class _Gone(io.TextIOBase):
    """A stderr whose reader has gone: every write is a BrokenPipeError."""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_an_error_keeps_its_code(tmp_path, monkeypatch, debug):
    monkeypatch.setattr(sys, "stderr", _Gone())
    assert main([*debug, "enhance", str(tmp_path / "missing.mp4")]) == 2


def test_a_note_before_the_error_too(tmp_path, monkeypatch):
    (tmp_path / "x.jxl").write_bytes(b"\xff\x0a" + b"\x00" * 64)  # (its note: "a .jxl input is written as ...")
    monkeypatch.setattr(sys, "stderr", _Gone())
    assert main(["enhance", str(tmp_path / "x.jxl")]) == 2


def _closed_pipe_run(args, cwd) -> subprocess.CompletedProcess:
    """The program with its stderr (and stdout) a pipe whose reader has already gone."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run([sys.executable, "-m", "stream_gpen", *args], stdout=w, stderr=w, cwd=cwd,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    finally:
        os.close(w)


def test_the_program_exits_with_the_errors_code(tmp_path):
    """(the real program: Python's flush of stderr at exit must not fail again either, exit 120)"""
    (tmp_path / "x.jxl").write_bytes(b"\xff\x0a" + b"\x00" * 64)
    assert _closed_pipe_run(["enhance", str(tmp_path / "missing.mp4")], tmp_path).returncode == 2
    assert _closed_pipe_run(["enhance", str(tmp_path / "x.jxl")], tmp_path).returncode == 2
    assert _closed_pipe_run(["--bogus-option"], tmp_path).returncode == 2
