"""The benchmark scripts answer `--help` with their usage and run nothing.

`bench/gpu_io_check.py --help` used to start the whole NVDEC check (it read no options); a lent GPU's
minutes are too few to spend on a help request."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_RUN_ALL = r"""
import contextlib, glob, io, json, runpy, sys
answers = {}
for path in sorted(glob.glob("bench/*.py")):
    if path.endswith("_common.py"):
        continue
    sys.argv = [path, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(path, run_name="__main__")
        answers[path] = ["ran", out.getvalue()[-300:]]
    except SystemExit as stop:
        answers[path] = [stop.code, out.getvalue()]
print(json.dumps(answers))
"""


def test_every_bench_script_answers_help_without_running():
    done = subprocess.run([sys.executable, "-c", _RUN_ALL], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert "bench/gpu_io_check.py" in answers and len(answers) >= 10, sorted(answers)
    for path, (code, text) in answers.items():
        assert code in (0, None) and text.lstrip().startswith("usage:"), (path, code, text[-300:])
