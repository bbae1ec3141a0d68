"""Session 31: bench/gpu_check.sh, the one prepared check for a lent GPU. Its ``--model identity``
e2e step had 50 s, which ran out in session 16's warm-up; the carried wheels' pip install and the
machine-info block (nvidia-smi, the torch import) ran with no timeout, so a hung driver or pip
could eat the lease with no summary table printed."""
from __future__ import annotations

import re
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
