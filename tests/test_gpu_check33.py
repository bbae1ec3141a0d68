"""Hunt 33: bench/gpu_check.sh wrote 15-17 files into ``$OUT`` (a log per step, the table, two
JSON files) but the device tool brings back at most 8 of them, so part of a once-per-task GPU
run's results could be lost. The step logs now go to a scratch folder outside ``$OUT``."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.sh"

# a python that answers at once: prints its arguments and writes the --json file it is given
FAKE_PYTHON = """#!/bin/sh
echo "fake python $*"
while [ $# -gt 0 ]; do
    if [ "$1" = "--json" ]; then echo '{}' > "$2"; fi
    shift
done
"""


def test_out_holds_at_most_the_eight_files_the_device_tool_brings_back(tmp_path):
    repo = tmp_path / "repo"
    (repo / "bench").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "bench" / SCRIPT.name)
    for optional in ("e2e.py", "gpu_io_check.py"):  # (present: every step runs)
        (repo / "bench" / optional).write_text("")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text(FAKE_PYTHON)
    (fake / "python3").chmod(0o755)
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho fake GPU\n")
    (fake / "nvidia-smi").chmod(0o755)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "PYTHON": str(fake / "python3"),
           "OUT": str(out), "TMPDIR": str(scratch), "STREAM_GPEN_SHARED": str(tmp_path)}
    proc = subprocess.run(["bash", str(repo / "bench" / SCRIPT.name)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = proc.stdout[proc.stdout.index("==== gpu_check summary"):]
    assert "runtime compile" in table and "SKIPPED" not in table, table  # (every step ran)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= 8, sorted(p.name for p in files)
    for p in files:
        assert re.fullmatch(r"[A-Za-z0-9._-]+", p.name), p.name
        assert p.stat().st_size <= 16 * 2**20, p
    names = {p.name for p in files}
    assert {"gpu_check.log", "summary.txt", "pytest_cuda.log", "runtime_bench.json",
            "forms_bench.json"} <= names, names
    # the whole run's log still has every step's output; the step logs are in the scratch folder
    main_log = (out / "gpu_check.log").read_text()
    assert "fake python bench/crop_antialias.py --device cuda" in main_log
    assert list(scratch.glob("gpu_check_steps.*/crop_antialias.log"))


def _first_seen(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def test_the_docs_list_the_steps_the_script_runs_in_its_order():
    """docs/gpu.md's step list had no NVENC probe and no crop bench, and put the detector-shapes
    bench after the identity e2e run (the script runs it before)."""
    code = "\n".join(line for line in SCRIPT.read_text().splitlines() if not line.lstrip().startswith("#"))
    script = _first_seen(re.findall(r"bench/(\w+)\.py", code))
    doc = (ROOT / "docs" / "gpu.md").read_text()
    section = doc[doc.index("## The GPU check"):doc.index("Every step has a timeout")]
    listed = _first_seen(re.findall(r"bench/(\w+)\.py", section))
    assert [n for n in listed if n in script] == script, (listed, script)
    assert "nvenc_available" in code and "NVENC" in section
