"""Session 31: bench/gpu_check.sh, the one prepared check for a lent GPU. Its ``--model identity``
e2e step had 50 s, which ran out in session 16's warm-up; the carried wheels' pip install and the
machine-info block (nvidia-smi, the torch import) ran with no timeout, so a hung driver or pip
could eat the lease with no summary table printed."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.sh"


def _limits() -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r'run_step "([^"]+)" (\d+) ', SCRIPT.read_text())}


def test_the_identity_e2e_step_has_time_for_the_warm_up():
    limits = _limits()
    assert limits["e2e identity"] >= 80, limits  # (50 s ran out in session 16's crowd warm-up)
    # the identity run is wanted before the SIMD-decode one (the order is the priority)
    names = list(limits)
    assert names.index("e2e identity") < names.index("e2e simd decode"), names


def test_a_hung_pip_driver_or_torch_import_cannot_keep_the_table_from_being_printed(tmp_path):
    """pip, nvidia-smi and python that never answer (a stuck driver, a stuck import): the script
    gives up on each within the budget, says so in the table and prints it last."""
    repo = tmp_path / "repo"
    (repo / "bench").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "bench" / SCRIPT.name)
    (repo / ".whl").mkdir()
    (repo / ".whl" / "carried-1.0-py3-none-any.whl").write_bytes(b"")
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("nvidia-smi", "python3"):
        (fake / name).write_text("#!/bin/sh\nexec sleep 100\n")
        (fake / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "PYTHON": str(fake / "python3"),
           "GPU_CHECK_BUDGET_S": "6", "OUT": str(tmp_path / "out")}
    proc = subprocess.Popen(["bash", str(repo / "bench" / SCRIPT.name)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=45)  # (before: the first hung command held it for good)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError("gpu_check.sh still running after 45 s with a 6 s budget")
    assert proc.returncode == 0, out
    table = out[out.index("==== gpu_check summary"):]
    assert re.search(r"^wheels +TIMEOUT", table, re.M), table
    assert re.search(r"^machine info +TIMEOUT .*nvidia-smi timed out;torch info timed out", table, re.M), table
    assert "pytest -m cuda" in table and "SKIPPED" in table, table
