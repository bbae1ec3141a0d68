"""CUDA tests of the face runner: graph replay vs eager, fp16/bf16 accuracy, buckets, fallbacks.

All carry the ``cuda`` marker: skipped without a GPU, failed instead when
``STREAM_GPEN_REQUIRE_CUDA=1`` (bench/gpu_check.sh sets it).
"""
from __future__ import annotations

import copy
import logging
import math

import pytest
import torch
from torch import nn

from stream_gpen.errors import DeviceError
from stream_gpen.models.gpen import TINY256_CONFIG, TINY_CONFIG, FullGenerator, random_generator
from stream_gpen.models.registry import MODELS
from stream_gpen.runtime import FaceRunner

pytestmark = pytest.mark.cuda

CFG256 = MODELS["gpen-bfr-256"].config
CFG512 = MODELS["gpen-bfr-512"].config


@pytest.fixture
def exact_fp32():
    """True fp32 references: TF32 (10-bit mantissa, like fp16) off for convs and matmuls."""
    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@pytest.fixture
def cudnn_benchmark():
    """Eager references then reuse the algorithms cuDNN autotuned during the graph warm-up."""
    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    yield
    torch.backends.cudnn.benchmark = old


@pytest.fixture(scope="module")
def gpen256():
    return random_generator(CFG256, seed=0)


@pytest.fixture(scope="module")
def gpen512():
    return random_generator(CFG512, seed=0)  # 71 M values: built once, deep-copied per runner


def face_like(n: int, size: int, seed: int = 0, device="cuda") -> torch.Tensor:
    """Smooth random crops (low-frequency noise + grain): nearer real faces than white noise."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand((n, 3, max(size // 16, 2), max(size // 16, 2)), generator=gen)
    img = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    img = img + 0.05 * torch.randn((n, 3, size, size), generator=gen)
    return (img.clamp(0, 1) * 255).to(torch.uint8).to(device)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double() - b.double()).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def eager_float(runner: FaceRunner, crops: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(crops)
    with torch.no_grad():  # as in the capture, so a compiled model hits the same guards
        return runner._step(crops, out).clone()


# ------------------------------------------------------------------------------ graph == eager
@pytest.mark.parametrize("amp", ["cast", "autocast"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_graph_replay_equals_eager(gpen256, precision, amp, cudnn_benchmark):
    if precision == "fp32" and amp == "autocast":
        pytest.skip("amp only applies to fp16/bf16")
    kw = dict(size=256, device="cuda", precision=precision, amp=amp, buckets=(1, 4))
    graph = FaceRunner(copy.deepcopy(gpen256), **kw)
    eager = FaceRunner(copy.deepcopy(gpen256), cuda_graphs=False, **kw)
    for seed in (1, 2):  # the second input proves the graph reads its input buffer, not the probe
        x = face_like(4, 256, seed=seed)
        out_g = graph(x)
        y_g = graph._graphs[4].static_float.clone()
        y_e = eager_float(eager, x)
        assert (y_g - y_e).abs().max().item() <= 1e-6
        assert torch.equal(out_g, eager(x))
    assert graph.summary()["buckets_captured"] == [4] and graph.fallbacks == [] and graph.cuda_graphs
    # Replaying again gives the same bits.
    assert torch.equal(graph(x), out_g)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("attr", "value"), [("impl", "fused"), ("impl", "reference"), ("blur_impl", "pool")])
def test_gpu_candidate_forms_replay_bit_exactly_and_match_reference(gpen256, attr, value, channels_last,
                                                                    cudnn_benchmark, exact_fp32):
    # The forms bench/runtime.py --forms A/Bs on a GPU (fused_nchw / fused_cl, reference /
    # reference_nchw, pool_blur / pool_blur_nchw) under a captured graph: same output as eager,
    # and >= 45 dB vs fp32 in fp16.
    model = copy.deepcopy(gpen256)
    setattr(model, attr, value)
    kw = dict(size=256, device="cuda", precision="fp16", channels_last=channels_last, buckets=(4,))
    graph = FaceRunner(copy.deepcopy(model), **kw)
    eager = FaceRunner(model, cuda_graphs=False, **kw)
    ref = FaceRunner(copy.deepcopy(gpen256), size=256, device="cuda", precision="fp32", cuda_graphs=False)
    x = face_like(4, 256, seed=5)
    out = graph(x)
    assert graph.fallbacks == [] and graph.cuda_graphs
    assert torch.equal(out, eager(x))
    assert psnr(out, ref(x)) >= 45


# ------------------------------------------------------------------------------ accuracy
@pytest.mark.parametrize(("precision", "amp", "min_db"), [("fp16", "cast", 45), ("fp16", "autocast", 45),
                                                          ("bf16", "cast", 30)])
def test_reduced_precision_psnr_gpen512(gpen512, precision, amp, min_db, exact_fp32):
    model = copy.deepcopy(gpen512)
    x = face_like(2, 512, seed=3)
    ref = FaceRunner(copy.deepcopy(model), size=512, device="cuda", precision="fp32", cuda_graphs=False)(x)
    low = FaceRunner(model, size=512, device="cuda", precision=precision, amp=amp, buckets=(2,))
    out = low(x)
    value = psnr(out, ref)
    print(f"GPEN-512 random {precision}/{amp} vs fp32: PSNR {value:.2f} dB")
    assert low.precision == precision and low.fallbacks == []
    assert value >= min_db


def load_fixture(gpen_fixtures, name: str) -> FullGenerator:
    from stream_gpen.models.loading import read_state_dict

    model = FullGenerator(TINY256_CONFIG if "256" in name else TINY_CONFIG)
    model.load_state_dict(read_state_dict(gpen_fixtures / f"gpen_{name}_state_dict.safetensors"), strict=True)
    return model.eval()


@pytest.mark.parametrize("name", ["tiny256", "tiny64"])
def test_golden_fixtures_fp32_and_fp16(gpen_fixtures, name, exact_fp32):
    model = load_fixture(gpen_fixtures, name)
    x = torch.load(gpen_fixtures / f"gpen_{name}_input.pt", weights_only=True)
    expected = torch.load(gpen_fixtures / f"gpen_{name}_output.pt", weights_only=True)
    with torch.no_grad():
        got = model.cuda()(x.cuda()).cpu()
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)
    # The fixture input quantised to uint8 crops, then fp16 (graph) vs fp32 (eager) runners.
    size = x.shape[-1]
    crops = ((x * 0.5 + 0.5) * 255).round().to(torch.uint8).cuda()
    ref = FaceRunner(copy.deepcopy(model), size=size, device="cuda", precision="fp32", cuda_graphs=False)(crops)
    for precision, min_db in (("fp16", 45), ("bf16", 30)):
        out = FaceRunner(copy.deepcopy(model), size=size, device="cuda", precision=precision, buckets=(2,))(crops)
        value = psnr(out, ref)
        print(f"fixture {name} {precision} vs fp32: PSNR {value:.2f} dB")
        assert value >= min_db, (precision, value)


# ------------------------------------------------------------------------------ buckets
def test_buckets_padding_splitting_and_order(gpen256, cudnn_benchmark):
    runner = FaceRunner(copy.deepcopy(gpen256), size=256, device="cuda", precision="fp32", buckets=(1, 2, 4))
    eager = FaceRunner(copy.deepcopy(gpen256), size=256, device="cuda", precision="fp32", cuda_graphs=False)
    x = face_like(11, 256, seed=5)
    out = runner(x)
    s = runner.summary()
    assert s["batches_per_bucket"] == {4: 3} and s["padded_faces"] == 1 and s["buckets_captured"] == [4]
    ref = eager(x)
    # Different batch shapes may pick different conv algorithms: allow one truncation level.
    # Measured on an H200 (fp32, TF32 convs on by default): 0.65% of values off by one.
    diff = (out.int() - ref.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 2e-2
    perm = torch.randperm(11, generator=torch.Generator().manual_seed(0)).cuda()
    assert (runner(x[perm]).int() - out[perm].int()).abs().max() <= 1
    # Host input: copied straight into the static buffer; same result as a device input.
    assert torch.equal(runner(x.cpu()), out)
    assert runner(x[:0]).shape == (0, 3, 256, 256)
    big = runner(face_like(9, 256, seed=6))
    assert big.shape == (9, 3, 256, 256) and runner.summary()["buckets_captured"] == [1, 4]


def test_warmup_captures_every_bucket_and_close_frees(gpen256):
    runner = FaceRunner(copy.deepcopy(gpen256), size=256, device="cuda", buckets=(1, 2, 8))
    runner.warmup()
    s = runner.summary()
    assert s["buckets_captured"] == [1, 2, 8] and s["precision"] == "fp16" and s["channels_last"] is False
    assert s["faces"] == 0  # warm-up is not counted as work
    runner.close()
    assert runner.summary()["buckets_captured"] == []
    assert runner(face_like(3, 256)).shape == (3, 3, 256, 256)  # recaptures on demand


# ------------------------------------------------------------------------------ fallbacks
class HostSync(nn.Module):
    """A model with a host sync (``.item()``) in forward: CUDA graph capture must fail."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        if x.abs().sum().item() < 0:  # never true; the sync is the point
            x = -x
        return self.inner(x)


def test_capture_failure_falls_back_to_eager_visibly(caplog):
    model = random_generator(TINY_CONFIG, seed=1)
    x = face_like(3, 64, seed=7)
    ref = FaceRunner(copy.deepcopy(model), size=64, device="cuda", precision="fp32", cuda_graphs=False)(x)
    with caplog.at_level(logging.WARNING, logger="stream_gpen.runtime._runner"):
        runner = FaceRunner(HostSync(model), size=64, device="cuda", precision="fp32", name="sync-model")
        out = runner(x)
        runner(x)
    assert runner.cuda_graphs is False and runner.summary()["cuda_graphs"] is False
    (note,) = runner.fallbacks
    assert note and note.what == "cuda_graphs" and "capturing bucket 4 failed" in note and "running eager" in note
    assert sum("sync-model" in r.getMessage() for r in caplog.records) == 1
    assert (out.int() - ref.int()).abs().max() <= 1


def test_fp16_overflow_falls_back_to_fp32_and_recaptures():
    class Overflow(nn.Module):
        def forward(self, x):
            return (x.abs() + 2) * 1e5 - 1.5e5  # in [0.5e5, 1.5e5]: finite in fp32, inf in fp16

    runner = FaceRunner(Overflow(), size=16, device="cuda", precision="fp16", buckets=(2,))
    out = runner(face_like(2, 16))
    assert runner.precision == "fp32" and runner.summary()["buckets_captured"] == [2]
    (note,) = runner.fallbacks
    assert note.what == "precision" and "fp16 output had inf/NaN" in note
    assert out.min().item() == 255  # every value is >= 0.5e5 -> clamps to 255


def test_compile_under_graph(cudnn_benchmark):
    model = random_generator(TINY_CONFIG, seed=2)
    x = face_like(2, 64, seed=8)
    plain = FaceRunner(copy.deepcopy(model), size=64, device="cuda", precision="fp16", buckets=(2,))
    compiled = FaceRunner(copy.deepcopy(model), size=64, device="cuda", precision="fp16", buckets=(2,), compile=True)
    out = compiled(x)
    assert compiled.fallbacks == [] and compiled.summary()["compile"] is True
    assert compiled.summary()["buckets_captured"] == [2]
    assert psnr(out, plain(x)) >= 40
    # Graph replay of the compiled model equals the compiled model run eagerly.
    y_g = compiled._graphs[2].static_float.clone()
    assert (y_g - eager_float(compiled, x)).abs().max().item() <= 1e-6


def test_bad_cuda_index_raises():
    with pytest.raises(DeviceError, match=r"only \d+ CUDA device\(s\) are visible"):
        FaceRunner(random_generator(TINY_CONFIG), size=64, device=f"cuda:{torch.cuda.device_count()}")


def test_auto_picks_cuda_fp16_without_fallbacks():
    runner = FaceRunner(random_generator(TINY_CONFIG), size=64)
    assert runner.device.type == "cuda" and runner.precision == "fp16" and runner.fallbacks == []
    out = runner(face_like(1, 64, device="cpu"))
    assert out.device.type == "cuda" and out.dtype == torch.uint8


def test_threads_with_their_own_streams_share_one_runner(gpen256):
    import threading

    runner = FaceRunner(copy.deepcopy(gpen256), size=256, device="cuda", buckets=(2, 4))
    inputs = [face_like(3, 256, seed=20 + i) for i in range(4)]
    expected = [runner(x).cpu() for x in inputs]
    results: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []

    def work(i):
        try:
            with torch.cuda.stream(torch.cuda.Stream()):
                for _ in range(3):
                    out = runner(inputs[i])
                results[i] = out.cpu()  # .cpu() syncs the thread's own stream
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    for i in range(4):
        assert torch.equal(results[i], expected[i])
