"""CPU tests of the face runner: buckets, padding, order, uint8 conventions, fallbacks, validation."""
from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from torch import nn

from stream_gpen.errors import DeviceError, InvalidInputError, StreamGpenError
from stream_gpen.models.gpen import TINY_CONFIG, random_generator
from stream_gpen.runtime import DEFAULT_BUCKETS, Chunk, Fallback, FaceRunner, plan_batches, select_device
from stream_gpen.runtime._plan import exact_chunks, validate_buckets

S = TINY_CONFIG.size


def reference(model: nn.Module, crops: torch.Tensor) -> torch.Tensor:
    """GPEN's face_gan.py conventions written out longhand (FACTS.md section 6), fp32."""
    x = (crops.float() / 255.0 - 0.5) / 0.5
    with torch.no_grad():
        y = model(x)
    if isinstance(y, tuple):
        y = y[0]
    return ((y * 0.5 + 0.5).clamp(0, 1) * 255.0).to(torch.uint8)


def random_crops(n: int, size: int = S, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)


@pytest.fixture(scope="module")
def tiny():
    return random_generator(TINY_CONFIG, seed=3)


class Constant(nn.Module):
    """Returns a fixed image (batch-broadcast) as ``(image, None)`` like the official model."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("value", value)

    def forward(self, x):
        return self.value.to(x.dtype).expand(x.shape[0], -1, -1, -1), None


# ------------------------------------------------------------------------------ planning
@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, [(1, 1)]),
        (3, [(3, 4)]),
        (16, [(16, 16)]),
        (20, [(16, 16), (4, 4)]),
        (31, [(31, 32)]),
        (33, [(32, 32), (1, 1)]),
        (100, [(32, 32), (32, 32), (32, 32), (4, 4)]),
    ],
)
def test_plan_batches_examples(n, expected):
    assert [(c.count, c.bucket) for c in plan_batches(n, DEFAULT_BUCKETS)] == expected


@pytest.mark.parametrize("buckets", [(1, 2, 4, 8, 16, 32), (4, 8), (3, 5), (7,)])
def test_plan_batches_covers_every_face_in_order(buckets):
    for n in range(0, 150):
        chunks = plan_batches(n, buckets)
        starts = [c.start for c in chunks]
        assert starts == sorted(starts)
        assert sum(c.count for c in chunks) == n
        pos = 0
        for c in chunks:
            assert c.start == pos and 1 <= c.count <= c.bucket and c.bucket in buckets
            pos += c.count
        # At most one chunk carries padding, and it is the last one.
        assert all(c.padding == 0 for c in chunks[:-1])


def test_plan_overhead_trades_padding_for_calls():
    assert [c.bucket for c in plan_batches(20, DEFAULT_BUCKETS, overhead=100)] == [32]
    assert [c.bucket for c in plan_batches(7, DEFAULT_BUCKETS, overhead=0)] == [4, 2, 1]


def test_exact_chunks():
    assert exact_chunks(10, 4) == [Chunk(0, 4, 4), Chunk(4, 4, 4), Chunk(8, 2, 2)]


@pytest.mark.parametrize(
    ("buckets", "max_batch", "match"),
    [
        ((), None, "non-empty sequence of positive integers"),
        ((0, 2), None, r"positive integers, got \(0, 2\)"),
        ((1.5,), None, "positive integers"),
        (("a",), None, "positive integers"),
        ((4, 8), 2, "max_batch=2 is smaller than every bucket"),
        ((1, 2), 0, "max_batch must be a positive integer"),
    ],
)
def test_validate_buckets_errors(buckets, max_batch, match):
    with pytest.raises(InvalidInputError, match=match):
        validate_buckets(buckets, max_batch)


def test_validate_buckets_sorts_dedups_and_caps():
    assert validate_buckets((8, 1, 4, 4, 32), 8) == (1, 4, 8)


# ------------------------------------------------------------------------------ device
def test_select_device_cpu_and_errors():
    assert select_device("cpu") == (torch.device("cpu"), None)
    with pytest.raises(InvalidInputError, match=r"unknown device 'gpu'; use \"auto\", \"cpu\""):
        select_device("gpu")
    with pytest.raises(InvalidInputError, match="must be a string or torch.device"):
        select_device(0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA behaviour")
def test_select_device_without_cuda():
    dev, note = select_device("auto")
    assert dev.type == "cpu" and "no CUDA device" in note
    with pytest.raises(DeviceError, match=r"device 'cuda:1' requested but torch sees no CUDA device") as info:
        select_device("cuda:1")
    assert isinstance(info.value, RuntimeError) and info.value.exit_code == 2


# ------------------------------------------------------------------------------ runner
def test_runner_matches_longhand_reference_bit_exact(tiny):
    crops = random_crops(5)
    # NCHW: bit-exact (the default, channels-last, is within float rounding: see
    # test_channels_last_option_gives_same_result)
    runner = FaceRunner(tiny, size=S, device="cpu", precision="fp32", channels_last=False)
    out = runner(crops)
    assert out.dtype == torch.uint8 and out.shape == crops.shape and out.device.type == "cpu"
    assert torch.equal(out, reference(tiny, crops))
    assert runner.precision == "fp32" and runner.fallbacks == [] and runner.channels_last is False
    s = runner.summary()
    assert (s["faces"], s["calls"], s["batches"], s["padded_faces"]) == (5, 1, 1, 0)
    assert s["device"] == "cpu" and s["precision"] == "fp32" and s["threads"] >= 1


def test_runner_keeps_order_and_splits_large_requests(tiny):
    crops = random_crops(7, seed=1)
    runner = FaceRunner(tiny, size=S, device="cpu", precision="fp32", buckets=(1, 2, 4))
    out = runner(crops)
    assert runner.summary()["batches_per_bucket"] == {4: 1, 3: 1}  # exact sizes in eager mode
    # Batch composition may change a float by an ulp; a truncation boundary then moves 1 level.
    assert (out.int() - reference(tiny, crops).int()).abs().max() <= 1
    perm = torch.tensor([6, 2, 0, 5, 1, 4, 3])
    out_perm = runner(crops[perm])
    assert (out_perm.int() - out[perm].int()).abs().max() <= 1
    assert not torch.equal(out_perm, out)  # the crops differ, so order is really being checked


def test_runner_pads_to_buckets_when_shapes_must_be_fixed(tiny, monkeypatch):
    # compile=True fixes shapes (no recompiles); stand in an identity "compiler" to test padding.
    monkeypatch.setattr(torch, "compile", lambda model, **kw: model)
    runner = FaceRunner(tiny, size=S, device="cpu", precision="fp32", buckets=(1, 4, 8), compile=True)
    crops = random_crops(7, seed=2)
    out = runner(crops)
    s = runner.summary()
    assert s["batches_per_bucket"] == {8: 1} and s["padded_faces"] == 1 and s["compile"] is True
    assert runner.channels_last is True  # CPU "auto": channels-last only pays with compile
    assert (out.int() - reference(tiny, crops).int()).abs().max() <= 1


def test_truncation_and_clamp_convention():
    # Output values chosen so rounding and truncation differ: (y*0.5+0.5)*255 = 100.75 -> 100.
    y = torch.empty(1, 3, 8, 8)
    y[:, 0] = 100.75 / 255 * 2 - 1
    y[:, 1] = 2.0  # clamps to 255
    y[:, 2] = -3.0  # clamps to 0
    runner = FaceRunner(Constant(y), size=8, device="cpu", precision="fp32")
    out = runner(random_crops(2, size=8))
    assert out[:, 0].unique().tolist() == [100]
    assert out[:, 1].unique().tolist() == [255]
    assert out[:, 2].unique().tolist() == [0]


def test_input_is_scaled_to_minus_one_one():
    class Echo(nn.Module):
        def forward(self, x):
            Echo.seen = x.clone()
            return x

    crops = torch.tensor([0, 255, 128], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 8, 8).contiguous()
    FaceRunner(Echo(), size=8, device="cpu", precision="fp32")(crops)
    assert Echo.seen[0, :, 0, 0].tolist() == pytest.approx([-1.0, 1.0, 128 / 255 * 2 - 1], abs=1e-7)


def test_empty_and_non_contiguous_inputs(tiny):
    runner = FaceRunner(tiny, size=S, device="cpu", precision="fp32")
    empty = runner(torch.empty(0, 3, S, S, dtype=torch.uint8))
    assert empty.shape == (0, 3, S, S) and empty.dtype == torch.uint8 and runner.summary()["batches"] == 0
    crops = random_crops(3, seed=4)
    expected = reference(tiny, crops)
    nhwc = crops.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # channels-last strides
    assert (runner(nhwc).int() - expected.int()).abs().max() <= 1
    assert (runner(crops[::2]).int() - expected[[0, 2]].int()).abs().max() <= 1


def test_channels_last_option_gives_same_result(tiny):
    crops = random_crops(2, seed=5)
    a = FaceRunner(random_generator(TINY_CONFIG, seed=3), size=S, device="cpu", precision="fp32", channels_last=True)
    assert a.channels_last is True
    assert (a(crops).int() - reference(tiny, crops).int()).abs().max() <= 1


@pytest.mark.parametrize("amp", ["cast", "autocast"])
def test_bf16_on_cpu_is_close_to_fp32(tiny, amp):
    crops = random_crops(2, seed=6)
    runner = FaceRunner(random_generator(TINY_CONFIG, seed=3), size=S, device="cpu", precision="bf16", amp=amp)
    out = runner(crops)
    mse = (out.double() - reference(tiny, crops).double()).pow(2).mean().item()
    psnr = 10 * torch.log10(torch.tensor(255.0**2 / mse)).item()
    assert psnr > 35, psnr
    assert runner.summary()["amp"] == amp and runner.fallbacks == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(precision="half"), r"precision='half' is not allowed; use one of 'auto', 'fp32', 'fp16', 'bf16'"),
        (dict(amp="fast"), r"amp='fast' is not allowed; use one of 'cast', 'autocast'"),
        (dict(channels_last="yes"), r"channels_last='yes' is not allowed"),
        (dict(compile=1), r"compile=1 is not allowed; use one of True, False"),
        (dict(cuda_graphs=None), r"cuda_graphs=None is not allowed"),
        (dict(device="tpu"), r"unknown device 'tpu'"),
        (dict(size=32), r"size=32 does not match the model's input size 64; pass size=64"),
        (dict(buckets=(4, 8), max_batch=2), r"max_batch=2 is smaller than every bucket"),
        (dict(warmup_iters=0), r"warmup_iters must be an integer >= 1"),
        (dict(cpu_memory="free"), r"cpu_memory='free' is not allowed; use one of 'keep', 'system'"),
    ],
)
def test_constructor_validation(tiny, kwargs, match):
    kw = dict(size=S, device="cpu") | kwargs
    with pytest.raises(InvalidInputError, match=match) as info:
        FaceRunner(tiny, **kw)
    assert isinstance(info.value, ValueError) and isinstance(info.value, StreamGpenError)


def test_model_must_be_a_module():
    with pytest.raises(InvalidInputError, match="model must be a torch.nn.Module, got function"):
        FaceRunner(lambda x: x, size=S, device="cpu", precision="fp32")


@pytest.mark.parametrize(
    ("crops", "match"),
    [
        (torch.zeros(2, 3, S, S, dtype=torch.float32), r"crops must be torch.uint8 \(0..255 RGB\), got torch.float32"),
        (torch.zeros(2, S, S, 3, dtype=torch.uint8), r"crops must have shape \[n, 3, 64, 64\] \(NCHW RGB\), got \[2, 64, 64, 3\]"),
        (torch.zeros(3, S, S, dtype=torch.uint8), r"got \[3, 64, 64\]"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), r"got \[1, 3, 32, 32\]"),
        ("not a tensor", "crops must be a torch.Tensor, got str"),
    ],
)
def test_call_validation(tiny, crops, match):
    runner = FaceRunner(tiny, size=S, device="cpu", precision="fp32")
    with pytest.raises(InvalidInputError, match=match):
        runner(crops)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA behaviour")
def test_auto_device_fallback_is_visible_and_logged_once(tiny, caplog):
    with caplog.at_level(logging.WARNING, logger="stream_gpen.runtime._runner"):
        runner = FaceRunner(tiny, size=S, device="auto", name="face-runner-test")
        runner._fallback("device", runner.fallbacks[0].reason)  # the same note again: no new log
    assert runner.device.type == "cpu" and runner.cuda_graphs is False
    (note,) = runner.fallbacks
    assert isinstance(note, Fallback) and note and note.what == "device"
    assert "no CUDA device" in str(note) and "no CUDA device" in note.reason
    records = [r for r in caplog.records if "face-runner-test" in r.getMessage()]
    assert len(records) == 1
    assert runner.summary()["fallbacks"] == [str(note)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA behaviour")
def test_explicit_cuda_without_cuda_raises(tiny):
    with pytest.raises(DeviceError, match="requested but torch sees no CUDA device"):
        FaceRunner(tiny, size=S, device="cuda")


def test_compile_failure_falls_back_to_eager(tiny, monkeypatch, caplog):
    def broken_compile(model, **kw):
        def compiled(x):
            raise RuntimeError("inductor exploded\nsecond line")

        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    crops = random_crops(3, seed=7)
    with caplog.at_level(logging.WARNING, logger="stream_gpen.runtime._runner"):
        runner = FaceRunner(tiny, size=S, device="cpu", precision="fp32", compile=True, buckets=(4,))
        out = runner(crops)
        runner(crops)
    assert (out.int() - reference(tiny, crops).int()).abs().max() <= 1
    (note,) = runner.fallbacks
    assert note.what == "compile" and "RuntimeError: inductor exploded" in note and "running eager" in note
    assert runner.compile is False and runner.summary()["compile"] is False
    assert sum("inductor exploded" in r.getMessage() for r in caplog.records) == 1


def test_overflowing_reduced_precision_falls_back_to_fp32():
    class Overflow(nn.Module):
        # 1e5 is finite in fp32 but overflows float16 (max 65504) to inf.
        def forward(self, x):
            return (x.abs() + 1) * 1e5 - 1e5 * 1.5

    runner = FaceRunner(Overflow(), size=8, device="cpu", precision="fp16")
    out = runner(random_crops(2, size=8))
    assert runner.precision == "fp32"
    (note,) = runner.fallbacks
    assert note.what == "precision" and "fp16 output had inf/NaN" in note and "running fp32" in note
    expected = reference(Overflow(), random_crops(2, size=8))
    assert torch.equal(out, expected)


def test_warmup_and_context_manager(tiny):
    with FaceRunner(tiny, size=S, device="cpu", precision="fp32", buckets=(1, 2)) as runner:
        runner.warmup()
        with pytest.raises(InvalidInputError, match=r"buckets \[3\] are not among this runner's buckets \(1, 2\)"):
            runner.warmup([3])
        assert runner(random_crops(1)).shape == (1, 3, S, S)
        runner.reset_stats()
        assert runner.summary()["faces"] == 0
    assert "FaceRunner(name='gpen-64'" in repr(runner)


def test_concurrent_calls_are_serialised(tiny):
    runner = FaceRunner(tiny, size=S, device="cpu", precision="fp32")
    crops = [random_crops(2, seed=10 + i) for i in range(4)]
    results: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []

    def work(i):
        try:
            results[i] = runner(crops[i])
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    for i in range(4):
        assert torch.equal(results[i], reference(tiny, crops[i]))
    assert runner.summary()["faces"] == 8


def test_default_name_and_restorer_attributes(tiny):
    runner = FaceRunner(tiny, size=S, device="cpu", precision="fp32", name="gpen-bfr-64-test")
    assert runner.name == "gpen-bfr-64-test" and runner.size == S
    assert isinstance(runner.device, torch.device) and runner.fallbacks == []
    assert FaceRunner(tiny, size=S, device="cpu", precision="fp32").name == "gpen-64"


# ------------------------------------------------------------------------------ CPU path
_FAULTS_SCRIPT = """
import resource, sys, torch
from stream_gpen.models.gpen import TINY_CONFIG, random_generator
from stream_gpen.runtime import FaceRunner
if sys.argv[1] == "keep":
    runner = FaceRunner(random_generator(TINY_CONFIG), size=64, device="cpu", precision="fp32")
    assert runner.summary()["cpu_memory"] == "keep", runner.fallbacks
size = 40 << 20  # over glibc's 32 MiB maximum mmap threshold: a fresh mmap per block by default
for _ in range(2):
    torch.empty(size, dtype=torch.uint8).fill_(1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    torch.empty(size, dtype=torch.uint8).fill_(1)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_cpu_memory_keep_stops_page_faults_of_large_tensors(tiny):
    from stream_gpen.runtime import _cpu_memory

    runner = FaceRunner(tiny, size=S, device="cpu", precision="fp32")  # cpu_memory="keep" is the default
    if runner.fallbacks:  # e.g. musl: then it must say so
        pytest.skip(f"allocator tuning not available here: {runner.fallbacks}")
    assert runner.summary()["cpu_memory"] == "keep" and _cpu_memory.freed_memory_kept()
    assert _cpu_memory.keep_freed_memory() is None  # idempotent
    # The point of it, in fresh processes (the setting is process-wide and cannot be undone): a
    # 40 MiB block freed and requested again is reused instead of being faulted in anew
    # (10240 faults of 4 KiB per block).
    faults = {}
    for mode in ("system", "keep"):
        done = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT, mode], capture_output=True, text=True,
                              timeout=300, cwd=Path(__file__).resolve().parents[1])
        assert done.returncode == 0, done.stderr
        faults[mode] = int(done.stdout.split()[-1])
    assert faults["system"] >= 6 * 10240, faults  # the default really faults (else this test is moot)
    assert faults["keep"] < 2 * 10240, faults


def test_cpu_memory_failure_is_a_visible_fallback(tiny, monkeypatch, caplog):
    from stream_gpen.runtime import _runner

    monkeypatch.setattr(_runner, "keep_freed_memory", lambda: "the C library is not glibc (test)")
    monkeypatch.setattr(_runner, "freed_memory_kept", lambda: False)
    with caplog.at_level(logging.WARNING, logger="stream_gpen.runtime._runner"):
        runner = FaceRunner(tiny, size=S, device="cpu", precision="fp32", name="mem-test")
    (note,) = runner.fallbacks
    assert note.what == "cpu_memory" and "not glibc (test)" in note and "page-fault" in note
    assert runner.summary()["cpu_memory"] == "system"
    assert sum("mem-test" in r.getMessage() for r in caplog.records) == 1
    # "system" asks for nothing, so nothing falls back.
    assert FaceRunner(tiny, size=S, device="cpu", precision="fp32", cpu_memory="system").fallbacks == []


def test_compile_traces_the_reference_form_as_one_graph(tiny, monkeypatch):
    # A real torch.compile (dynamo tracing; the "eager" backend skips the minutes of inductor
    # codegen). fullgraph=True raises on a graph break, which would surface as a compile
    # fallback: the runner must trace GEN's reference form, while eager CPU calls run the fused one.
    real_compile = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda model, **kw: real_compile(model, backend="eager", fullgraph=True, **kw)
    )
    crops = random_crops(2, seed=11)
    runner = FaceRunner(tiny, size=S, device="cpu", precision="fp32", compile=True, buckets=(2,))
    out = runner(crops)
    assert runner.fallbacks == [] and runner.summary()["compile"] is True
    assert (out.int() - reference(tiny, crops).int()).abs().max() <= 1


# ------------------------------------------------------------------------------ CPU precision
def test_bf16_cpu_feature_is_read_from_cpuinfo_flags():
    from stream_gpen.runtime._device import _bf16_flag_in

    zen4 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n"
    spr = "flags\t\t: avx512f avx512_bf16 amx_bf16 amx_tile\n"
    assert _bf16_flag_in(zen4) == "avx512_bf16"
    assert _bf16_flag_in(spr) == "amx_bf16"  # the faster unit wins
    assert _bf16_flag_in("flags\t\t: fpu avx2 avx512f avx512bw\n") is None
    assert _bf16_flag_in("model name: something\n") is None


@pytest.mark.parametrize(("feature", "speedup", "precision", "channels_last"),
                         [("avx512_bf16", 2.0, "bf16", True), (None, 2.0, "fp32", True),
                          # (session 21: an Intel Xeon with avx512_bf16 ran bf16 at 0.7x fp32's speed)
                          ("avx512_bf16", 0.6, "fp32", True)])
def test_auto_precision_on_cpu_follows_native_bf16(tiny, monkeypatch, feature, speedup, precision, channels_last):
    from stream_gpen.runtime import _runner

    monkeypatch.setattr(_runner, "cpu_bf16_feature", lambda: feature)
    monkeypatch.setattr(_runner, "cpu_bf16_speedup", lambda: speedup)
    runner = FaceRunner(random_generator(TINY_CONFIG, seed=3), size=S, device="cpu")
    assert (runner.precision, runner.channels_last) == (precision, channels_last)
    s = runner.summary()
    assert s["requested_precision"] == "auto" and s["precision"] == precision
    assert (feature or "without native bf16") in s["precision_reason"]
    if feature:
        assert f"measured {speedup:.1f}" in s["precision_reason"]
    assert runner.fallbacks == []  # a choice, not a fallback
    out = runner(random_crops(2, seed=12))
    # Tiny random models are the worst case for bf16 (few channels per sum); real configs ~52 dB.
    err = (out.int() - reference(tiny, random_crops(2, seed=12)).int()).abs()
    assert err.max() <= (16 if precision == "bf16" else 1)  # fp32: an ulp may move a truncation
    # An explicit precision has no reason to give and is not overridden.
    assert FaceRunner(tiny, size=S, device="cpu", precision="fp32").summary()["precision_reason"] is None


def test_bf16_default_is_close_to_fp32_at_full_size(monkeypatch):
    from stream_gpen.models.registry import MODELS
    from stream_gpen.runtime import _runner

    monkeypatch.setattr(_runner, "cpu_bf16_feature", lambda: "avx512_bf16")
    monkeypatch.setattr(_runner, "cpu_bf16_speedup", lambda: 2.0)
    config = MODELS["gpen-bfr-256"].config
    fast = FaceRunner(random_generator(config, seed=0), size=256, device="cpu")
    exact = FaceRunner(random_generator(config, seed=0), size=256, device="cpu", precision="fp32")
    # one crop: a CPU without bf16 instructions emulates them (~9 s a 256-px crop here)
    low = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    crops = (torch.nn.functional.interpolate(low, size=(256, 256), mode="bilinear") * 255).to(torch.uint8)
    a, b = fast(crops).double(), exact(crops).double()
    assert fast.precision == "bf16" and fast.fallbacks == []
    psnr = 10 * torch.log10(torch.tensor(255.0**2 / (a - b).pow(2).mean().item())).item()
    assert psnr > 45, psnr


def test_the_bf16_speedup_is_measured_once():
    """The bf16 instructions alone did not say bf16 pays: it is measured (a fraction of a second)."""
    from stream_gpen.runtime._device import cpu_bf16_speedup

    first = cpu_bf16_speedup()
    assert first >= 0.0 and cpu_bf16_speedup() == first  # (cached: one measurement per process)
