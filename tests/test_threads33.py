"""torch's OpenMP threads sleep at barriers instead of spinning (hunt 33).

Nothing set ``OMP_WAIT_POLICY``: GNU libgomp's threads spun at each barrier waiting for the other,
and on a 2-core machine shared with the decoder and x264 threads the detector took 5-20x longer
(bench/threads.py). ``import stream_gpen`` now sets ``PASSIVE`` before anything imports torch,
unless the user set it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_DISPLAY_ENV")}
    clean.update(env, PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=clean, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


_PRINT = "import os; print(os.environ.get('OMP_WAIT_POLICY'))"


@pytest.mark.parametrize("entry", ["import stream_gpen", "import stream_gpen.cli"])  # (cli: the console script's module)
def test_importing_the_package_sets_a_passive_wait_policy_unless_the_user_set_one(entry):
    assert _python(f"{entry}; {_PRINT}").stdout.split() == ["PASSIVE"]
    assert _python(f"{entry}; {_PRINT}", OMP_WAIT_POLICY="active").stdout.split() == ["active"]


def test_python_m_stream_gpen_runs_with_the_passive_policy():
    # what `python -m stream_gpen --version` does, with the environment read as the process ends
    code = ("import atexit, runpy, sys; atexit.register(lambda: print(__import__('os').environ.get('OMP_WAIT_POLICY'))); "
            "sys.argv = ['stream_gpen', '--version']; runpy.run_module('stream_gpen', run_name='__main__')")
    out = _python(code).stdout.split()
    assert out[-1] == "PASSIVE", out


def test_libgomp_loaded_by_torch_reads_the_policy():
    # libgomp reads the variable when torch loads it; OMP_DISPLAY_ENV=VERBOSE prints what it took
    # (its OMP_WAIT_POLICY line says PASSIVE when unset too; the spin count tells them apart: 300000
    # unset, 0 passive)
    old = _python("import torch", OMP_DISPLAY_ENV="VERBOSE").stderr
    if "GOMP_SPINCOUNT" not in old:
        pytest.skip("torch here does not run on GNU libgomp")
    assert "GOMP_SPINCOUNT = '0'" not in old  # (the default spins)
    new = _python("import stream_gpen, torch", OMP_DISPLAY_ENV="VERBOSE").stderr
    assert "GOMP_SPINCOUNT = '0'" in new, new[-1500:]


def test_the_package_import_still_loads_no_torch():
    assert _python("import stream_gpen, sys; print('torch' in sys.modules)").stdout.split() == ["False"]
