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


class _Stop(Exception):
    pass


def _bench_module(name: str):
    """``bench/NAME.py`` imported in this process (as its own run imports it, ``bench/`` on the path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_bench33_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model_handed_to_enhancer(monkeypatch, name: str, argv: list[str]) -> list[str]:
    """Run bench/NAME.py's main() on a pretend CUDA machine up to its ``Enhancer(...)``: the devices
    its random GPEN was built on."""
    import torch

    import stream_gpen
    import stream_gpen.runtime

    bench = _bench_module(name)
    built: list[str] = []

    def fake_random_gpen(size, device="cpu"):
        built.append(str(device))
        return torch.nn.Linear(1, 1)

    def fake_enhancer(model, **kwargs):
        raise _Stop

    monkeypatch.setattr(bench, "random_gpen", fake_random_gpen)
    monkeypatch.setattr(bench, "refuse_missing_cuda", lambda parser, device: None)
    monkeypatch.setattr(bench, "clip_paths", lambda *a, **k: {})
    monkeypatch.setattr(bench, "detector_weights", lambda: Path("det.pth"))
    monkeypatch.setattr(stream_gpen, "Enhancer", fake_enhancer)
    monkeypatch.setattr(stream_gpen.runtime, "select_device", lambda device: (torch.device("cuda"), "pretend"))
    if hasattr(bench, "_Naive"):
        monkeypatch.setattr(bench, "_Naive", lambda *a: None)  # (its own process: not this check's)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *argv])
    grad = torch.is_grad_enabled()
    try:
        bench.main()
    except _Stop:
        pass
    finally:
        torch.set_grad_enabled(grad)  # (main() turns gradients off for the process)
    return built


def test_benches_hand_enhancer_a_random_gpen_built_on_the_cpu(monkeypatch):
    """e2e.py built its random GPEN on the GPU and handed it to Enhancer, which copies it (on the
    GPU) before the runner makes its fp16 copy: ~0.53 GB of GPEN-512 fp32 a real run, whose
    checkpoint loads on the CPU, never holds, in the bench's peak CUDA memory."""
    assert _model_handed_to_enhancer(monkeypatch, "e2e", ["--clips", "talking_head"]) == ["cpu"]
    assert _model_handed_to_enhancer(monkeypatch, "naive", ["--device", "cuda"]) == ["cpu"]
