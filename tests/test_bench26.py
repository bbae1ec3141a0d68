"""Session 26: `make bench-cpu` on a CPU without bf16 instructions.

`bench/runtime.py --quick --device cpu` always timed its four bf16 variants; where the CPU has no
avx512_bf16/amx_bf16 torch emulates bf16 (first batch-1 calls 6.6-56 s each on a 2-core AVX2 EPYC,
against under 1 s for fp32), an estimated 20-30 min for a run its docstring put at ~1 min. They are
now left out there, with one printed line, and ``--bf16`` times them anyway."""
from __future__ import annotations

import importlib.util
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runtime_bench():
    spec = importlib.util.spec_from_file_location("bench_runtime26", ROOT / "bench/runtime.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _bf16(variants: dict) -> list[str]:
    return [k for k, kw in variants.items() if kw.get("precision") == "bf16"]


def test_without_bf16_instructions_the_bf16_variants_are_left_out_and_said(runtime_bench, monkeypatch, capsys):
    monkeypatch.setattr(runtime_bench, "cpu_bf16_feature", lambda: None)
    variants = runtime_bench.cpu_variants(Namespace(compile=True, bf16=False))
    assert _bf16(variants) == []
    assert {"eager", "eager_reference", "channels_last", "auto", "compile", "compile_cl"} <= set(variants)
    said = capsys.readouterr().out
    assert said.count("\n") == 1 and "bf16 variants left out" in said and "--bf16" in said
    assert "bf16_nchw" in said and "compile_bf16_cl" in said


def test_bf16_flag_or_a_bf16_cpu_keeps_them(runtime_bench, monkeypatch, capsys):
    monkeypatch.setattr(runtime_bench, "cpu_bf16_feature", lambda: None)
    forced = runtime_bench.cpu_variants(Namespace(compile=False, bf16=True))
    assert set(_bf16(forced)) == {"bf16_nchw", "bf16_cl", "bf16_cl_reference", "bf16_autocast"}
    assert "emulated" in capsys.readouterr().out
    monkeypatch.setattr(runtime_bench, "cpu_bf16_feature", lambda: "avx512_bf16")
    native = runtime_bench.cpu_variants(Namespace(compile=False, bf16=False))
    assert _bf16(native) == _bf16(forced)
    assert capsys.readouterr().out == ""


def test_the_bf16_option_reaches_the_cpu_table(runtime_bench, monkeypatch):
    seen = []
    monkeypatch.setattr(runtime_bench, "bench_cpu", lambda args: seen.append(args.bf16) or [])
    assert runtime_bench.main(["--device", "cpu", "--quick"]) == 0
    assert runtime_bench.main(["--device", "cpu", "--quick", "--bf16"]) == 0
    assert seen == [False, True]


def test_make_bench_cpu_replicates_the_naive_comparison():
    """The make form ran `bench/naive.py --max-frames 4 --repeats 1`: one unreplicated pair, where
    single runs on a shared machine gave 0.78x-5.8x for the same code (docs/benchmarks.md)."""
    line = next(x for x in (ROOT / "Makefile").read_text().splitlines() if "bench/naive.py" in x)
    assert "--repeats 3" in line
