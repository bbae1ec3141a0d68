"""A Ctrl-C or SIGTERM while torch imports, with ``--report`` (hunt 32): the report says the run
was stopped and the exit code is the signal's. Checking the report imported ``stream_gpen.api``,
which ran torch's half-done import again: torch refused it ("Only a single TORCH_LIBRARY can be
used to register the namespace prims"), and the run ended as an "internal error", exit 1, with no
report."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# torch's import stopped by the signal: the first import of torch is where it lands, and a second
# one fails as a half-initialised torch does
_HOOK = textwrap.dedent("""
    import os, signal, sys, time

    SIG = sys.argv.pop(1)


    class _StopInTorch:
        tries = 0

        def find_spec(self, name, path=None, target=None):
            if name != "torch":
                return None
            _StopInTorch.tries += 1
            if _StopInTorch.tries > 1:
                raise RuntimeError("Only a single TORCH_LIBRARY can be used to register the namespace prims")
            if SIG == "INT":
                raise KeyboardInterrupt
            os.kill(os.getpid(), getattr(signal, "SIG" + SIG))
            for _ in range(1000):  # (the handler raises in here)
                time.sleep(0.01)
            raise AssertionError("the signal was not heard")

    sys.meta_path.insert(0, _StopInTorch())
    from stream_gpen.cli import run
    sys.exit(run())
""")


def _stopped_in_torch(sig: str, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), STREAM_GPEN_HOME=str(tmp_path / "home"), STREAM_GPEN_OFFLINE="1")
    return subprocess.run([sys.executable, "-c", _HOOK, sig, *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("sig, code", [("INT", 130), ("TERM", 143)])
def test_a_stop_while_torch_imports_writes_the_report_and_keeps_the_exit_code(tmp_path, sig, code):
    report = tmp_path / "run.json"
    # (an earlier run's report under that name: it said that run had succeeded)
    report.write_text(json.dumps({"frames_in": 5, "frames_out": 5, "interrupted": False}))
    r = _stopped_in_torch(sig, ["enhance", "lavfi:testsrc2=s=64x48:d=1", "-o", "out.mp4", "--model", "classic",
                                "--report", str(report)], tmp_path)
    assert r.returncode == code, r.stderr
    assert "internal error" not in r.stderr
    assert "interrupted" in r.stderr
    said = json.loads(report.read_text())
    assert said["interrupted"] is True and said["frames_out"] == 0


def test_camera_stopped_while_torch_imports_writes_the_report_too(tmp_path):
    report = tmp_path / "run.json"
    r = _stopped_in_torch("TERM", ["camera", "lavfi:testsrc2=s=64x48:r=10:d=1", "--model", "classic",
                                   "-o", "rec.mkv", "--report", str(report)], tmp_path)
    assert r.returncode == 143, r.stderr
    assert "internal error" not in r.stderr
    assert json.loads(report.read_text())["interrupted"] is True


def test_a_bug_while_reporting_a_stop_keeps_the_stop_s_exit_code(tmp_path, monkeypatch, capsys):
    from stream_gpen import cli, commands

    def stop(args, checked):
        raise KeyboardInterrupt

    def bug(*a, **k):
        raise AttributeError("partially initialized module 'torch' has no attribute 'Tensor'")

    monkeypatch.setattr(commands, "_enhance_command", stop)
    monkeypatch.setattr(commands, "_report_unstarted", bug)
    code = cli.main(["enhance", "lavfi:testsrc2=s=64x48:d=1", "-o", str(tmp_path / "out.mp4"),
                     "--report", str(tmp_path / "run.json")])
    err = capsys.readouterr().err
    assert code == 130, err
    assert "internal error" not in err and "interrupted" in err


def test_the_report_s_path_checks_do_not_import_torch():
    code = ("import sys\n"
            "import stream_gpen.commands, stream_gpen._places, stream_gpen.summary, stream_gpen._finishing\n"
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n")
    subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO)), check=True, timeout=60)
