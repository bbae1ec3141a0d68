"""GPEN FullGenerator: state-dict layout, golden outputs, intermediates, batching, precision."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from stream_gpen.errors import InvalidInputError
from stream_gpen.models.gpen import (
    TINY256_CONFIG,
    TINY_CONFIG,
    FullGenerator,
    random_generator,
    upfirdn2d,
)
from stream_gpen.models.loading import load_generator
from stream_gpen.models.registry import MODELS, GPENConfig

FIXTURES = {
    "tiny64": (TINY_CONFIG, "gpen_tiny64_input.pt"),
    "tiny64_pk": (TINY_CONFIG, "gpen_tiny64_input.pt"),
    "tiny256": (TINY256_CONFIG, "gpen_tiny256_input.pt"),
    "tiny256_pk": (TINY256_CONFIG, "gpen_tiny256_input.pt"),
}


def _load(path: Path) -> torch.Tensor:
    return torch.load(path, map_location="cpu", weights_only=True)


def _read_keys(path: Path) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for line in path.read_text().splitlines():
        name, shape = line.split()
        out.append((name, tuple(int(d) for d in shape.strip("[]").split(","))))
    return out


# --- layout --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [256, 512, 1024, 2048])
def test_state_dict_keys_match_official(gpen_fixtures: Path, size: int) -> None:
    expected = _read_keys(gpen_fixtures / f"keys_{size}.txt")
    with torch.device("meta"):
        model = FullGenerator(MODELS[f"gpen-bfr-{size}"].config)
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert got == expected  # names, shapes and order
    n_buffers = sum(1 for k, _ in expected if k.endswith(".kernel"))
    assert len(list(model.buffers())) == n_buffers


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registry_model_builds(name: str) -> None:
    spec = MODELS[name]
    with torch.device("meta"):
        model = FullGenerator(spec.config)
    assert model.size == spec.input_size
    x = torch.empty(1, 3, spec.input_size, spec.input_size, device="meta")
    assert model(x).shape == (1, 3, spec.input_size, spec.input_size)


def test_param_counts_match_facts() -> None:
    # FACTS.md section 9: parameters excluding buffers.
    with torch.device("meta"):
        m256 = FullGenerator(MODELS["gpen-bfr-256"].config)
        m512 = FullGenerator(MODELS["gpen-bfr-512"].config)
    assert sum(p.numel() for p in m256.parameters()) == 18_879_010
    assert sum(p.numel() for p in m512.parameters()) == 71_005_223


def test_config_validation_names_bad_value() -> None:
    with pytest.raises(InvalidInputError, match=r"size must be one of 8, 16, .*2048, got 300"):
        GPENConfig(300)
    with pytest.raises(InvalidInputError, match=r"leaves 0 channels at resolution 64"):
        GPENConfig(64, channel_multiplier=1, narrow=0.003)
    with pytest.raises(InvalidInputError, match="config must be a GPENConfig, got int"):
        FullGenerator(512)  # type: ignore[arg-type]


# --- golden outputs ------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["reference", "fused"])
@pytest.mark.parametrize(
    "name,ext",
    [(name, ".pt") for name in sorted(FIXTURES)] + [("tiny64", ".safetensors"), ("tiny64_pk", ".safetensors")],
)
def test_golden_float32(gpen_fixtures: Path, name: str, ext: str, impl: str) -> None:
    config, input_file = FIXTURES[name]
    model = load_generator(gpen_fixtures / f"gpen_{name}_state_dict{ext}", config=config)
    model.impl = impl
    x = _load(gpen_fixtures / input_file)
    with torch.inference_mode():
        y = model(x)
    torch.testing.assert_close(y, _load(gpen_fixtures / f"gpen_{name}_output.pt"), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["tiny256", "tiny256_pk"])
def test_safetensors_and_pt_load_identical_models(gpen_fixtures: Path, name: str) -> None:
    # Saves a tiny256 forward per file: identical parameters imply the identical (golden) output.
    a = load_generator(gpen_fixtures / f"gpen_{name}_state_dict.pt", config=TINY256_CONFIG)
    b = load_generator(gpen_fixtures / f"gpen_{name}_state_dict.safetensors")  # config inferred
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("impl", ["reference", "fused"])
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_golden_float64(gpen_fixtures: Path, name: str, impl: str) -> None:
    config, input_file = FIXTURES[name]
    model = load_generator(
        gpen_fixtures / f"gpen_{name}_state_dict.pt", config=config, dtype=torch.float64
    )
    model.impl = impl
    x = _load(gpen_fixtures / input_file).double()
    with torch.inference_mode():
        y = model(x)
    ref = _load(gpen_fixtures / f"gpen_{name}_output_f64.pt")
    assert ref.dtype == torch.float64
    torch.testing.assert_close(y, ref, atol=1e-9, rtol=1e-9)


def test_tiny64_intermediates_layer_by_layer(gpen_fixtures: Path) -> None:
    ref = _load(gpen_fixtures / "gpen_tiny64_intermediates.pt")
    model = load_generator(gpen_fixtures / "gpen_tiny64_state_dict.pt", config=TINY_CONFIG)
    modules = dict(model.named_modules())
    got: dict[str, torch.Tensor] = {}
    hooks = [
        modules[name].register_forward_hook(
            lambda _m, _i, out, name=name: got.__setitem__(name, out)
        )
        for name in ref
    ]
    try:
        with torch.inference_mode():
            model(_load(gpen_fixtures / "gpen_tiny64_input.pt"))
    finally:
        for h in hooks:
            h.remove()
    assert set(got) == set(ref)
    assert len(ref) == 5 + 2 + 2 + 8 + 4
    for name, expected in ref.items():
        torch.testing.assert_close(got[name], expected, atol=1e-5, rtol=1e-5, msg=name)


def test_pk_kernels_are_loaded_not_rebuilt(gpen_fixtures: Path) -> None:
    # The _pk fixtures differ from the standard ones only through the kernel buffers (and weights);
    # the model must use the buffers from the file.
    model = load_generator(gpen_fixtures / "gpen_tiny64_pk_state_dict.pt", config=TINY_CONFIG)
    kernel = model.ecd1[0][0].kernel
    assert not torch.allclose(kernel, kernel.flip(0, 1))  # asymmetric, as loaded


# --- upfirdn2d -----------------------------------------------------------------------------


def _upfirdn_reference(x, k, up, down, pad):
    """Loop-based 1-D-per-axis reference written straight from FACTS.md section 4."""
    x = x.double()
    k = k.double()
    b, c, h, w = x.shape
    uh, uw = h * up, w * up
    u = torch.zeros(b, c, uh, uw, dtype=torch.float64)
    u[:, :, ::up, ::up] = x
    p0, p1 = pad
    padded = torch.zeros(b, c, uh + p0 + p1, uw + p0 + p1, dtype=torch.float64)
    padded[:, :, p0 : p0 + uh, p0 : p0 + uw] = u
    kh, kw = k.shape
    oh, ow = padded.shape[2] - kh + 1, padded.shape[3] - kw + 1
    out = torch.zeros(b, c, oh, ow, dtype=torch.float64)
    for i in range(oh):
        for j in range(ow):
            win = padded[:, :, i : i + kh, j : j + kw]
            # true convolution: out[i] = Σ_m padded[i + m] · k[kh - 1 - m]
            out[:, :, i, j] = (win * k.flip(0, 1)).sum(dim=(2, 3))
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize("up,down,pad", [(1, 1, (2, 2)), (2, 1, (2, 1)), (1, 1, (1, 1)), (1, 2, (1, 1))])
def test_upfirdn2d_matches_loop_reference_with_asymmetric_kernel(up, down, pad) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    k = torch.rand(4, 4, generator=g, dtype=torch.float64)  # asymmetric: flip matters
    got = upfirdn2d(x, k, up=up, down=down, pad=pad)
    ref = _upfirdn_reference(x, k, up, down, pad)
    n = (5 * up + pad[0] + pad[1] - 4) // down + 1
    assert got.shape[2] == n
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=1e-12)


# --- batching, determinism, precision, layouts ----------------------------------------------


def test_random_generator_is_deterministic_and_sane() -> None:
    a = random_generator(TINY_CONFIG, seed=5)
    b = random_generator(TINY_CONFIG, seed=5)
    c = random_generator(TINY_CONFIG, seed=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["generator.input.input"], sc["generator.input.input"])
    assert not a.training and not any(p.requires_grad for p in a.parameters())
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        y = a(x)
    assert torch.isfinite(y).all()
    assert 0.05 < y.std().item() < 1.0 and y.abs().max().item() < 3.0
    assert (y[0] - y[1]).abs().mean().item() > 0.02  # the output depends on the input


def test_batch_independence() -> None:
    model = random_generator(TINY_CONFIG, seed=1)
    g = torch.Generator().manual_seed(7)
    x = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
    with torch.inference_mode():
        y3 = model(x)
        y1 = [model(x[i : i + 1]) for i in range(3)]
    assert y3.shape == (3, 3, 64, 64) and y1[0].shape == (1, 3, 64, 64)
    for i in range(3):
        torch.testing.assert_close(y3[i : i + 1], y1[i], atol=1e-5, rtol=1e-5)
    # and the samples really differ (the test would be vacuous otherwise)
    assert (y3[0] - y3[1]).abs().max() > 1e-2


def test_forward_is_deterministic_and_eval_equals_train() -> None:
    model = random_generator(TINY_CONFIG, seed=2)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.inference_mode():
        y1 = model(x)
        model.train()
        y2 = model(x)
    assert torch.equal(y1, y2)


def test_batched_modconv_equals_grouped_form() -> None:
    # The official per-sample weight form (grouped conv) must equal the batched form.
    from stream_gpen.models.gpen import ModulatedConv2d

    torch.manual_seed(0)
    for upsample, demod in [(False, True), (True, True), (False, False)]:
        k = 1 if not demod else 3
        conv = ModulatedConv2d(6, 5, k, 8, demodulate=demod, upsample=upsample).double()
        x = torch.randn(3, 6, 7, 7, dtype=torch.float64)
        style = torch.randn(3, 8, dtype=torch.float64)
        s = conv.modulation(style)  # [B, in]
        w = conv.scale * conv.weight[None] * s[:, None, :, None, None]  # [B, out, in, k, k]
        if demod:
            w = w * torch.rsqrt(w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        if upsample:
            wt = w.transpose(1, 2).reshape(3 * 6, 5, k, k)
            ref = torch.nn.functional.conv_transpose2d(
                x.reshape(1, 18, 7, 7), wt, stride=2, groups=3
            ).reshape(3, 5, 15, 15)
            ref = conv.blur(ref)
        else:
            ref = torch.nn.functional.conv2d(
                x.reshape(1, 18, 7, 7), w.reshape(15, 6, k, k), padding=k // 2, groups=3
            ).reshape(3, 5, 7, 7)
        torch.testing.assert_close(conv(x, style), ref, atol=1e-12, rtol=1e-12)


def test_channels_last_gives_same_output(gpen_fixtures: Path) -> None:
    model = load_generator(gpen_fixtures / "gpen_tiny64_state_dict.pt", config=TINY_CONFIG)
    x = _load(gpen_fixtures / "gpen_tiny64_input.pt")
    with torch.inference_mode():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        y = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    # the state dict keeps the official 5-D shape after the conversion
    assert model.state_dict()["generator.conv1.conv.weight"].shape == (1, 25, 25, 3, 3)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_close_to_float32(dtype: torch.dtype) -> None:
    ref_model = random_generator(TINY_CONFIG, seed=4)
    model = random_generator(TINY_CONFIG, seed=4, dtype=dtype)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.inference_mode():
        ref = ref_model(x)
        try:
            y = model(x.to(dtype))
        except (RuntimeError, NotImplementedError) as e:  # pragma: no cover - CPU op coverage
            pytest.skip(f"{dtype} not supported by this CPU build: {e}")
    # bfloat16 CPU inference keeps the 3-channel RGB skip, and so the output, in float32
    # (ToRGB.forward_fused); float16 runs the reference form throughout.
    assert y.dtype == (torch.float32 if dtype == torch.bfloat16 else dtype)
    err = (y.float() - ref).abs()
    # bf16 has 8 mantissa bits, fp16 11: errors well under the 1/255 of a uint8 step on average.
    assert err.mean().item() < 4e-3 and err.max().item() < 5e-2


def test_demodulation_does_not_overflow_in_float16() -> None:
    # Large styles make Σ(W·s)² exceed float16's 65504; the fp32 demodulation must keep it finite.
    from stream_gpen.models.gpen import ModulatedConv2d

    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 8, 3, 4)
    with torch.no_grad():
        conv.modulation.bias.fill_(300.0)
    x = torch.randn(2, 64, 6, 6)
    style = torch.randn(2, 4)
    ref = conv(x, style)
    half = conv.half()
    w_sq_sum = (half.scale * half.weight.float() * 300) ** 2
    assert w_sq_sum.sum(dim=(1, 2, 3)).max() > 65504  # would overflow if summed in fp16
    try:
        y = half(x.half(), style.half())
    except (RuntimeError, NotImplementedError) as e:  # pragma: no cover
        pytest.skip(f"float16 conv not supported on this CPU build: {e}")
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.float(), ref, atol=2e-2, rtol=2e-2)


@pytest.mark.cuda
def test_cuda_matches_cpu_and_graph_captures(gpen_fixtures: Path) -> None:
    model = load_generator(
        gpen_fixtures / "gpen_tiny256_pk_state_dict.pt", config=TINY256_CONFIG, device="cuda"
    )
    x = _load(gpen_fixtures / "gpen_tiny256_input.pt").cuda()
    ref = _load(gpen_fixtures / "gpen_tiny256_pk_output.pt")
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        # TF32 would cost ~1e-3; this compares the maths, not the tensor-core precision. The graph
        # part runs without TF32 too: on the H200, eager vs replay differed by 3.6e-4 with it on.
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        with torch.inference_mode():
            y = model(x)
        torch.testing.assert_close(y.cpu(), ref, atol=1e-4, rtol=1e-4)
        with torch.inference_mode():
            static_x = x.clone()
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(2):
                    model(static_x)
            torch.cuda.current_stream().wait_stream(s)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_y = model(static_x)
            static_x.copy_(x.flip(0))
            graph.replay()
            torch.testing.assert_close(static_y, model(x.flip(0)), atol=1e-4, rtol=1e-4)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags
    assert math.isfinite(static_y.float().abs().max().item())


def test_autocast_float16_keeps_demodulation_in_float32() -> None:
    # Under autocast a matmul would run in fp16 and Σ(W·s)² (> 65504 here) would overflow to inf,
    # zeroing the layer; the demodulation must stay in fp32.
    from stream_gpen.models.gpen import ModulatedConv2d

    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 8, 3, 4).eval()
    with torch.no_grad():
        conv.modulation.bias.fill_(300.0)
    x, style = torch.randn(2, 64, 5, 5), torch.randn(2, 4)
    with torch.no_grad():
        ref = conv(x, style)
        try:
            with torch.autocast("cpu", dtype=torch.float16):
                y = conv(x, style)
        except (RuntimeError, NotImplementedError) as e:  # pragma: no cover
            pytest.skip(f"float16 autocast not supported on this CPU build: {e}")
    assert y.dtype == torch.float16  # the conv itself ran in fp16 ...
    assert ref.abs().mean() > 0.1
    torch.testing.assert_close(y.float(), ref, atol=3e-2, rtol=3e-2)  # ... and was demodulated right


# --- the fused CPU path vs the reference path ----------------------------------------------


def _count_fused_calls(monkeypatch) -> dict[str, int]:
    from stream_gpen.models import gpen

    calls = {"styled": 0, "to_rgb": 0}
    for cls, key in ((gpen.StyledConv, "styled"), (gpen.ToRGB, "to_rgb")):
        original = cls.forward_fused

        def spy(self, *args, _original=original, _key=key):
            calls[_key] += 1
            return _original(self, *args)

        monkeypatch.setattr(cls, "forward_fused", spy)
    return calls


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fused_equals_reference_float64_batch1_and_2(monkeypatch, gpen_fixtures: Path, name: str, separable: bool) -> None:
    # Batch 1 runs the plain conv with a per-sample weight, batch 2 the grouped conv; with
    # SEPARABLE_BLUR the rank-1 kernels run as two 1-D passes, the _pk fixtures' full-rank
    # kernels must still take the 2-D pass.
    from stream_gpen.models import gpen

    monkeypatch.setattr(gpen, "SEPARABLE_BLUR", separable)
    config, input_file = FIXTURES[name]
    model = load_generator(gpen_fixtures / f"gpen_{name}_state_dict.pt", config=config, dtype=torch.float64)
    x = _load(gpen_fixtures / input_file).double()
    with torch.inference_mode():
        for xb in (x[:1], x):
            model.impl = "reference"
            ref = model(xb)
            model.impl = "fused"
            got = model(xb)
            torch.testing.assert_close(got, ref, atol=1e-12, rtol=1e-12)
    assert (ref[0] - ref[1]).abs().max() > 1e-2  # the two samples differ: batching is really checked


def test_fixture_configs_exercise_both_modulation_branches() -> None:
    # Each fused ModulatedConv2d picks weight or activation modulation by shape; the fixture
    # configs (and so the golden/float64 comparisons above) must cover both.
    from stream_gpen.models import gpen

    for config in (TINY_CONFIG, TINY256_CONFIG):
        with torch.device("meta"):
            model = FullGenerator(config)
        picks, res = set(), 4
        styled = [model.generator.conv1] + list(model.generator.convs)
        for i, layer in enumerate(styled):
            if layer.conv.upsample:
                x_res = res
                res *= 2
            else:
                x_res = res
            x = torch.empty(1, layer.conv.in_channel, x_res, x_res, device="meta")
            picks.add(layer.conv.weight_modulation_pays(x))
        assert picks == {True, False}, config
        assert isinstance(model.generator.convs[0], gpen.StyledConv)


@pytest.mark.parametrize("upsample,demod,k", [(False, True, 3), (True, True, 3), (False, False, 1)])
@pytest.mark.parametrize("weight_branch", [True, False])
def test_fused_modconv_equals_official_grouped_form(monkeypatch, upsample, demod, k, weight_branch) -> None:
    from stream_gpen.models.gpen import ModulatedConv2d

    monkeypatch.setattr(ModulatedConv2d, "weight_modulation_pays", lambda self, x: weight_branch)
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, k, 8, demodulate=demod, upsample=upsample).double()
    x = torch.randn(3, 6, 7, 7, dtype=torch.float64)
    style = torch.randn(3, 8, dtype=torch.float64)
    bias = torch.randn(5, dtype=torch.float64)
    with torch.no_grad():
        ref = conv(x, style)  # equal to the grouped form (test_batched_modconv_equals_grouped_form)
        got = conv.forward_fused(x, style, gain=math.sqrt(2.0), bias=bias)
        plain = conv.forward_fused(x, style)
    torch.testing.assert_close(got, math.sqrt(2.0) * ref + bias[None, :, None, None], atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(plain, ref, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("kind", ["gpen", "rank1_asymmetric", "full_rank"])
def test_fused_blur_equals_upfirdn2d(monkeypatch, kind: str, separable: bool) -> None:
    from stream_gpen.models import gpen
    from stream_gpen.models.gpen import Blur, _blur_fused, _rank1_factors

    monkeypatch.setattr(gpen, "SEPARABLE_BLUR", separable)

    g = torch.Generator().manual_seed(5)
    blur = Blur((2, 2)).double()
    if kind == "rank1_asymmetric":  # separable but not symmetric: the 1-D factors must be flipped
        # Dyadic taps: the outer product and its factors are exact in float64.
        a, b = (torch.randint(1, 9, (4,), generator=g).double() / 8 for _ in range(2))
        blur.kernel.copy_(torch.outer(a, b))
    elif kind == "full_rank":
        blur.kernel.copy_(torch.rand(4, 4, generator=g, dtype=torch.float64))
    assert (_rank1_factors(blur.kernel) is None) == (kind == "full_rank")
    x = torch.randn(2, 3, 9, 8, generator=g, dtype=torch.float64)
    bias = torch.randn(3, generator=g, dtype=torch.float64)
    ref = upfirdn2d(x, blur.kernel, pad=(2, 2)) + bias[None, :, None, None]
    torch.testing.assert_close(_blur_fused(x, blur, bias), ref, atol=1e-12, rtol=1e-12)


def test_fused_upsample_equals_upfirdn2d_with_asymmetric_kernel() -> None:
    from stream_gpen.models.gpen import Upsample, _upsample_fused

    g = torch.Generator().manual_seed(6)
    up = Upsample(2).double()
    up.kernel.copy_(torch.rand(4, 4, generator=g, dtype=torch.float64))  # asymmetric, full rank
    x = torch.randn(2, 3, 5, 7, generator=g, dtype=torch.float64)
    bias = torch.randn(3, generator=g, dtype=torch.float64)
    ref = upfirdn2d(x, up.kernel, up=2, pad=up.pad) + bias[None, :, None, None]
    got = _upsample_fused(x, up, bias)
    assert got.shape == (2, 3, 10, 14)
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=1e-12)
    # NCHW runs as one single-channel conv over the b·c maps, channels-last as the grouped conv
    cl = _upsample_fused(x.contiguous(memory_format=torch.channels_last), up, bias)
    torch.testing.assert_close(cl, ref, atol=1e-12, rtol=1e-12)


def test_fused_caches_follow_a_reloaded_state_dict(monkeypatch, gpen_fixtures: Path) -> None:
    # The fused path caches Σ W² and the blur factors; loading other weights into the same
    # model (rank-1 -> full-rank kernels) must not reuse them.
    from stream_gpen.models import gpen

    monkeypatch.setattr(gpen, "SEPARABLE_BLUR", True)
    model = load_generator(gpen_fixtures / "gpen_tiny64_state_dict.pt", config=TINY_CONFIG)
    model.impl = "fused"
    x = _load(gpen_fixtures / "gpen_tiny64_input.pt")
    with torch.inference_mode():
        torch.testing.assert_close(model(x), _load(gpen_fixtures / "gpen_tiny64_output.pt"), atol=1e-5, rtol=1e-5)
    pk = _load(gpen_fixtures / "gpen_tiny64_pk_state_dict.pt")
    model.load_state_dict(pk)
    with torch.inference_mode():
        y = model(x)
    torch.testing.assert_close(y, _load(gpen_fixtures / "gpen_tiny64_pk_output.pt"), atol=1e-5, rtol=1e-5)


def test_auto_impl_picks_fused_only_for_cpu_fp32_bf16_inference(monkeypatch) -> None:
    calls = _count_fused_calls(monkeypatch)
    model = random_generator(TINY_CONFIG, seed=1)
    assert model.impl == "auto"
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.inference_mode():
        model(x)
    n_styled = 1 + 2 * (TINY_CONFIG.log_size - 2)
    assert calls == {"styled": n_styled, "to_rgb": TINY_CONFIG.log_size - 1}
    model(x)  # autograd on: reference (the fused form writes with out= / in place)
    with torch.inference_mode():
        model.to(torch.float16)(x.half())  # float16 on the CPU: reference
        with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast: reference
            model.float()(x)
        model.impl = "reference"
        model(x)
    assert calls["styled"] == n_styled
    with torch.inference_mode():
        model.impl = "fused"
        model(x)
    assert calls["styled"] == 2 * n_styled
    with torch.inference_mode():
        model.impl = "auto"
        model.to(torch.bfloat16)(x.bfloat16())  # bfloat16 (the CPU's fast precision): fused
    assert calls["styled"] == 3 * n_styled


def _float64_reference(gpen_fixtures: Path, name: str):
    """(float64 model of fixture ``name``, its input, the reference form's output)."""
    config, input_file = FIXTURES[name]
    model = load_generator(gpen_fixtures / f"gpen_{name}_state_dict.pt", config=config, dtype=torch.float64)
    x = _load(gpen_fixtures / input_file).double()
    with torch.inference_mode():
        model.impl = "reference"
        ref = model(x)
    return model, x, ref


@pytest.mark.parametrize("name", ["tiny64", "tiny256_pk"])
def test_fused_channels_last_equals_reference_float64(monkeypatch, gpen_fixtures: Path, name: str) -> None:
    # NHWC input (the CPU bf16 path): activation modulation below NHWC_PER_SAMPLE_MIN_PIXELS,
    # one conv per sample with its modulated weight from there up (tiny256's 128² and 256²
    # layers), and the ToRGB as a batched matmul: the same function as the reference form.
    from stream_gpen.models.gpen import ModulatedConv2d

    seen: list[bool] = []
    pays = ModulatedConv2d.weight_modulation_pays
    monkeypatch.setattr(ModulatedConv2d, "weight_modulation_pays", lambda self, x: seen.append(pays(self, x)) or seen[-1])
    model, x, ref = _float64_reference(gpen_fixtures, name)
    with torch.inference_mode():
        model.impl = "fused"
        model.to(memory_format=torch.channels_last)
        got = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=1e-12)
    # tiny64 is all below the threshold (NCHW would have picked weight modulation somewhere);
    # tiny256's batch of 2 takes both branches
    assert set(seen) == ({False} if name == "tiny64" else {True, False})
    assert x.shape[0] > 1


def test_memoised_weights_follow_module_to() -> None:
    # Module.to() swaps parameter storage in place: the fused form's cached derived weights
    # (e.g. the contiguous transposed weight) must not survive a dtype change.
    torch.manual_seed(0)
    model = random_generator(TINY_CONFIG, seed=2)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.inference_mode():
        model.impl = "fused"
        model(x)
        y16 = model.to(torch.bfloat16)(x.bfloat16())
        y64 = model.double()(x.double())
        model.impl = "reference"
        ref = model(x.double())
    assert y16.dtype in (torch.bfloat16, torch.float32) and torch.isfinite(y16).all()
    torch.testing.assert_close(y64, ref, atol=1e-12, rtol=1e-12)


def test_bfloat16_style_path_runs_in_float32_from_cached_weights() -> None:
    from stream_gpen.models.gpen import EqualLinear

    torch.manual_seed(0)
    lin = EqualLinear(16, 8, lr_mul=0.01, activation=True).to(torch.bfloat16)
    x = torch.randn(3, 16).bfloat16()
    with torch.inference_mode():
        y = lin(x)
        again = lin(x)
    assert y.dtype == torch.bfloat16 and torch.equal(y, again)
    assert set(lin._memo._entries) == {"w32", "b32"}  # the float32 weights are made once
    exact = lin.float()(x.float())  # the float32 layer on the same (bf16-valued) input and weights
    torch.testing.assert_close(y.float(), exact, atol=0, rtol=2**-8)  # only the final bf16 rounding


def test_bfloat16_fused_channels_last_is_close_to_float32_at_full_size() -> None:
    # The CPU's default on bf16-capable CPUs: GPEN-BFR-256's real config (random weights).
    # Measured ~52 dB PSNR on the uint8 output vs float32; 45 dB is the fp16-on-GPU bar.
    config = MODELS["gpen-bfr-256"].config
    model = random_generator(config, seed=0)
    low = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    x = torch.nn.functional.interpolate(low, size=(256, 256), mode="bilinear", align_corners=False) * 2 - 1
    with torch.inference_mode():
        ref = model(x)
        model.to(torch.bfloat16).to(memory_format=torch.channels_last)
        y = model(x.bfloat16().contiguous(memory_format=torch.channels_last)).float()

    def u8(t: torch.Tensor) -> torch.Tensor:
        return ((t * 0.5 + 0.5).clamp(0, 1) * 255).to(torch.uint8).double()

    mse = (u8(y) - u8(ref)).pow(2).mean().item()
    assert 10 * math.log10(255.0**2 / mse) > 45
    assert (u8(y) - u8(ref)).abs().max().item() <= 8


def test_auto_impl_traces_the_reference_path_under_compile() -> None:
    # The fused form would break the graph (cached tensors, kernel checks); under tracing "auto"
    # must pick the reference form, which traces as one graph (fullgraph=True raises otherwise).
    model = random_generator(TINY_CONFIG, seed=1)
    compiled = torch.compile(model, backend="eager", fullgraph=True, dynamic=False)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4)) * 2 - 1
    with torch.inference_mode():
        y = compiled(x)
        ref = model(x)  # eager: fused
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)


def test_impl_validation_names_bad_value() -> None:
    with pytest.raises(InvalidInputError, match=r"impl='fast' is not allowed; use one of 'auto', 'reference', 'fused'"):
        FullGenerator(TINY_CONFIG, impl="fast")  # type: ignore[arg-type]
    model = random_generator(TINY_CONFIG)
    with pytest.raises(InvalidInputError, match=r"impl=None is not allowed"):
        model.impl = None  # type: ignore[assignment]
    assert model.impl == "auto"
    model.impl = "reference"
    assert {m.impl for m in model.modules() if hasattr(m, "impl") and m is not model} == {"reference"}


@pytest.mark.parametrize("pad,factor", [((1, 1), 2), ((2, 2), 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_pool_blur_equals_upfirdn2d(pad, factor, channels_last) -> None:
    # The binomial 4x4 FIR as three 2x2 box filters (Blur.blur_impl = "pool", a GPU candidate).
    from stream_gpen.models.gpen import Blur

    blur = Blur(pad, upsample_factor=factor).double()
    blur.blur_impl = "pool"
    x = torch.randn(2, 5, 9, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ref = upfirdn2d(x, blur.kernel, pad=pad)
    with torch.no_grad():
        got = blur(x)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=1e-12)
    # any other kernel (a perturbed checkpoint) takes the conv
    blur.kernel.copy_(torch.rand(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5)))
    with torch.no_grad():
        torch.testing.assert_close(blur(x), upfirdn2d(x, blur.kernel, pad=pad), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("name", ["tiny256", "tiny64_pk"])
def test_pool_blur_model_equals_conv_blur_float64(monkeypatch, gpen_fixtures: Path, name: str) -> None:
    from stream_gpen.models import gpen

    pooled = []
    real = gpen._blur_pool
    monkeypatch.setattr(gpen, "_blur_pool", lambda *a: pooled.append(1) or real(*a))
    model, x, ref = _float64_reference(gpen_fixtures, name)
    with torch.inference_mode():
        model.blur_impl = "pool"
        got = model(x)
    assert model.blur_impl == "pool" and all(m.blur_impl == "pool" for m in model.modules() if type(m).__name__ == "Blur")
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=1e-12)
    # the binomial kernels pool (every encoder and upsampling blur); the _pk kernels never do
    assert (len(pooled) > 0) == (name == "tiny256")
    with pytest.raises(InvalidInputError, match="blur_impl='fir' is not allowed"):
        model.blur_impl = "fir"


def test_auto_form_is_fused_on_cuda_and_cpu_but_not_under_autocast_or_grad():
    # Session 16 on an H200: the fused form in NCHW ran GPEN-512 fp16 2.0-2.1x the reference form
    # (docs/gpu.md), so "auto" picks it on CUDA too. Decided from the tensor's device and dtype
    # alone: checked here without a GPU on stand-ins.
    from types import SimpleNamespace

    from stream_gpen.models.gpen import _use_fused

    def x(device, dtype):
        return SimpleNamespace(device=torch.device(device), dtype=dtype)

    with torch.no_grad():
        for dtype in (torch.float16, torch.bfloat16, torch.float32):
            assert _use_fused("auto", x("cuda", dtype))
        assert not _use_fused("auto", x("cuda", torch.float64))
        assert _use_fused("auto", x("cpu", torch.float32)) and not _use_fused("auto", x("cpu", torch.float16))
        assert not _use_fused("auto", x("meta", torch.float32))
        assert not _use_fused("reference", x("cuda", torch.float16)) and _use_fused("fused", x("meta", torch.float16))
    assert not _use_fused("auto", x("cuda", torch.float16))  # autograd on
    assert not _use_fused("auto", x("cpu", torch.float32))
