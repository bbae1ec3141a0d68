"""Session 31 (misc): the end-to-end benchmarks (``make bench-cpu``) on a clone without
``../shared``: they took the detector only from ``$STREAM_GPEN_SHARED/weights`` (ignoring the copy
in the user's weights cache) and opened missing clips with a traceback from PyAV. Then: e2e.py's
``--decode-convert simd``, and naive.py's face threshold, face counts and CUDA device."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _bench(script: str, args: list[str], shared: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "STREAM_GPEN_SHARED": str(shared), "STREAM_GPEN_HOME": str(home),
           "STREAM_GPEN_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, f"bench/{script}", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_e2e_takes_the_detector_from_the_weights_cache(tmp_path, shared, mobilenet_weights):
    """The clips where the benchmark finds them, the detector only where `stream-gpen weights
    path retinaface-mobilenet0.25` finds it."""
    clips_only = tmp_path / "shared"
    (clips_only / "data").mkdir(parents=True)
    os.symlink(shared / "data" / "videos", clips_only / "data" / "videos")
    home = tmp_path / "home"
    home.mkdir()
    os.symlink(mobilenet_weights, home / mobilenet_weights.name)
    r = _bench("e2e.py", ["--model", "identity", "--max-frames", "2", "--clips", "talking_head",
                          "--device", "cpu"], clips_only, home)
    assert r.returncode == 0, r.stderr[-2000:]
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("talking_head ") and "stages" not in ln)
    assert row.split()[1] == "2", r.stdout


def test_without_the_clips_the_benchmarks_say_so_in_one_line(tmp_path):
    nothing, home = tmp_path / "no_shared", tmp_path / "home"
    home.mkdir()
    for script, args in (("e2e.py", ["--max-frames", "2", "--device", "cpu"]),
                         ("naive.py", ["--max-frames", "2", "--repeats", "1"])):
        r = _bench(script, args, nothing, home)
        assert r.returncode == 2, (script, r.stderr[-2000:])
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, (script, r.stderr[-2000:])
        assert lines[0].startswith(f"{script}: benchmark clips ") and "retalking_face2" in lines[0]
        assert "../shared" in lines[0] and "STREAM_GPEN_SHARED" in lines[0], lines[0]


def test_without_a_detector_anywhere_the_benchmark_says_where_to_get_it(tmp_path, shared):
    clips_only = tmp_path / "shared"
    (clips_only / "data").mkdir(parents=True)
    os.symlink(shared / "data" / "videos", clips_only / "data" / "videos")
    home = tmp_path / "home"
    home.mkdir()
    r = _bench("naive.py", ["--max-frames", "2", "--repeats", "1"], clips_only, home)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "stream-gpen weights download retinaface-mobilenet0.25" in r.stderr, r.stderr


def _bench_module(name: str):
    """``bench/NAME.py`` imported in this process (as its own run imports it, ``bench/`` on the path)."""
    spec = importlib.util.spec_from_file_location(f"_bench31_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_e2e_simd_decode_runs_and_writes_into_the_ring_slot(monkeypatch, capsys, shared):
    """`e2e.py --decode-convert simd` failed on its first frame: its stand-in for av_to_rgb_numpy
    took no ``out``, which the decode thread passes to convert straight into the ring slot."""
    import av
    import numpy as np

    import stream_gpen.io._source as source_mod
    from stream_gpen.io._convert import _to_rgb

    e2e = _bench_module("e2e")
    monkeypatch.setattr(source_mod, "av_to_rgb_numpy", source_mod.av_to_rgb_numpy)  # (main swaps it: undone after)
    monkeypatch.setattr(sys, "argv", ["e2e.py", "--max-frames", "2", "--clips", "talking_head", "--model", "identity",
                                      "--device", "cpu", "--decode-convert", "simd"])
    e2e.main()
    out = capsys.readouterr().out
    assert source_mod.av_to_rgb_numpy is e2e.simd_to_rgb and "decode conversion simd" in out, out
    row = next(ln for ln in out.splitlines() if ln.startswith("talking_head ") and "stages" not in ln)
    assert row.split()[1] == "2", out
    with av.open(str(shared / "data" / "videos" / "retalking_face2_frontal_talking_head.mp4")) as c:
        f = next(c.decode(video=0))
    slot = np.zeros((f.height, f.width, 3), np.uint8)
    assert e2e.simd_to_rgb(f, out=slot) is slot
    np.testing.assert_array_equal(slot, _to_rgb(f, "rgb24"))
    np.testing.assert_array_equal(e2e.simd_to_rgb(f), slot)


class _SameFace(torch.nn.Module):
    """A face model that returns its crops (on ``device``: where its parameter is)."""

    def __init__(self, device: str = "cpu") -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros((), device=device))
        self.seen: list[torch.device] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.device)
        return x + self.p


def test_naive_loop_keeps_the_faces_ours_restores_and_counts_them(tmp_path, shared, mobilenet_weights):
    """The naive loop kept faces down to the detector's 0.8 while ours restores from min_score's
    0.9 (54 faces to our 39 on 6 crowd frames), and said nothing about how many either restored."""
    from stream_gpen.faces._detector import DEFAULT_MIN_SCORE

    naive = _bench_module("naive")
    detector = naive.naive_detector("cpu", mobilenet_weights)
    assert detector.score_threshold == DEFAULT_MIN_SCORE
    src = naive.trim(shared / "data" / "videos" / "retalking_face2_frontal_talking_head.mp4", tmp_path / "in.mp4", 2)
    assert naive.naive_enhance(src, tmp_path / "out.mp4", _SameFace(), 256, detector) == (2, 2)
    assert "faces ours 39, naive 54" in naive.face_counts(39, 54) and "WARNING" in naive.face_counts(39, 54)
    assert "WARNING" not in naive.face_counts(39, 42) and "WARNING" not in naive.face_counts(0, 0)


class _FaceElsewhere(_SameFace):
    """A face model on the ``meta`` device (a stand-in for CUDA on a machine without it): takes
    its input there, hands back a CPU tensor as ``.cpu()`` of a CUDA output would be."""

    def __init__(self) -> None:
        super().__init__("meta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.device)
        return torch.zeros(x.shape)


def test_naive_loop_feeds_the_model_on_its_device(tmp_path, shared, mobilenet_weights):
    """`naive.py --device cuda` built every face's input on the CPU for a CUDA model (and read its
    output with .numpy()): each crop now goes to the model's device and comes back with .cpu()."""
    naive = _bench_module("naive")
    src = naive.trim(shared / "data" / "videos" / "retalking_face2_frontal_talking_head.mp4", tmp_path / "in.mp4", 1)
    gen = _FaceElsewhere()
    assert naive.naive_enhance(src, tmp_path / "out.mp4", gen, 256, naive.naive_detector("cpu", mobilenet_weights)) == (1, 1)
    assert gen.seen == [torch.device("meta")]


@pytest.mark.cuda
def test_naive_loop_runs_on_cuda(tmp_path, shared, mobilenet_weights):
    naive = _bench_module("naive")
    src = naive.trim(shared / "data" / "videos" / "retalking_face2_frontal_talking_head.mp4", tmp_path / "in.mp4", 2)
    gen = _SameFace("cuda")
    assert naive.naive_enhance(src, tmp_path / "out.mp4", gen, 256, naive.naive_detector("cuda", mobilenet_weights)) == (2, 2)
    assert gen.seen and all(d.type == "cuda" for d in gen.seen)
