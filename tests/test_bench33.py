"""Hunt 33: the bench scripts' CUDA paths, checked on the CPU."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_crop_antialias_without_cuda_says_so_in_one_line():
    """``crop_antialias.py --device cuda`` without CUDA ended in torch's traceback from its first
    CUDA tensor; the other benches refuse in one line, exit 2."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "bench/crop_antialias.py", "--device", "cuda"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "--device cuda: torch sees no CUDA device" in r.stderr, r.stderr
