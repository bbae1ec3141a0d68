"""Session 31 (misc): the source distribution holds the checkout's files, not what a user's runs
left beside them: ``samples/out`` (``make demo``'s results, git-ignored) and bytecode in
``__pycache__`` were packed by ``recursive-include samples *``."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout (the list of the files that belong)")
    return [p for p in out.stdout.decode().split("\0") if p and (ROOT / p).is_file()]


def test_sdist_leaves_out_demo_results_and_bytecode(tmp_path):
    pytest.importorskip("setuptools")
    tree = tmp_path / "tree"
    tracked = _tracked()
    for rel in tracked:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tree / rel)
    # what `make demo` and a run of the scripts leave in a checkout
    (tree / "samples" / "out").mkdir()
    (tree / "samples" / "out" / "astronaut_clip_enhanced.mp4").write_bytes(b"\0" * 64)
    (tree / "samples" / "__pycache__").mkdir()
    (tree / "samples" / "__pycache__" / "demo.cpython-311.pyc").write_bytes(b"\0" * 16)
    (tree / "bench" / "__pycache__").mkdir(exist_ok=True)
    (tree / "bench" / "__pycache__" / "e2e.cpython-311.pyc").write_bytes(b"\0" * 16)
    (tree / "tests" / "stray.pyc").write_bytes(b"\0" * 16)
    dist = tmp_path / "dist"
    dist.mkdir()
    code = ("import sys; from setuptools import build_meta; "
            "print(build_meta.build_sdist(sys.argv[1]))")
    r = subprocess.run([sys.executable, "-c", code, str(dist)], cwd=tree, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    name = r.stdout.strip().splitlines()[-1]
    with tarfile.open(dist / name) as tar:
        packed = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile() and "/" in m.name}
    stray = sorted(p for p in packed if p.startswith("samples/out/") or "__pycache__" in p
                   or p.endswith((".pyc", ".pyo")))
    assert stray == []
    # and what belongs is still there
    for rel in ("samples/demo.py", "samples/make_samples.py", "samples/astronaut_clip.mp4",
                "samples/astronaut_degraded.jpg", "Makefile", "bench/e2e.py", "tests/conftest.py"):
        assert rel in packed, rel
    assert not {p for p in tracked if p.startswith("samples/")} - packed
