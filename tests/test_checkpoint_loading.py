"""Checkpoint reading, config inference and the errors for wrong or damaged files."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from stream_gpen.errors import CheckpointError, InvalidInputError, WeightsError, WeightsNotFoundError
from stream_gpen.models.gpen import TINY256_CONFIG, TINY_CONFIG, FullGenerator
from stream_gpen.models.loading import infer_config, load_generator, read_state_dict
from stream_gpen.models.registry import MODELS, GPENConfig


def _meta_state_dict(keys_file: Path) -> dict[str, torch.Tensor]:
    out = {}
    for line in keys_file.read_text().splitlines():
        name, shape = line.split()
        out[name] = torch.empty([int(d) for d in shape.strip("[]").split(",")], device="meta")
    return out


def _assert_golden(model: FullGenerator, io) -> None:
    x, ref = io
    with torch.inference_mode():
        torch.testing.assert_close(model(x), ref, atol=1e-5, rtol=1e-5)


# --- reading -------------------------------------------------------------------------------


def test_read_pt_and_safetensors_agree(gpen_fixtures: Path) -> None:
    a = read_state_dict(gpen_fixtures / "gpen_tiny64_state_dict.pt")
    b = read_state_dict(gpen_fixtures / "gpen_tiny64_state_dict.safetensors")
    # safetensors stores keys sorted; order does not matter for loading
    assert sorted(a) == sorted(b) and len(a) == 106
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_g_ema_training_checkpoint_and_module_prefix(tmp_path: Path, tiny_sd, tiny_io) -> None:
    # GPEN's train_simple.py layout: {"g", "d", "g_ema", "g_optim", "d_optim"}; DataParallel prefix.
    wrapped = {
        "g": {"module." + k: torch.zeros(1) for k in list(tiny_sd)[:3]},
        "d": {"x": torch.zeros(2)},
        "g_ema": {"module." + k: v for k, v in tiny_sd.items()},
        "g_optim": {"state": {}, "param_groups": []},
    }
    path = tmp_path / "train_ckpt.pth"
    torch.save(wrapped, path)
    sd = read_state_dict(path)
    assert list(sd) == list(tiny_sd)
    _assert_golden(load_generator(path), tiny_io)  # config inferred, g_ema used


def test_safetensors_with_other_extension_is_sniffed(tmp_path: Path, tiny_sd, tiny_io) -> None:
    path = tmp_path / "model.weights"
    save_file(tiny_sd, str(path))
    _assert_golden(load_generator(path, config=TINY_CONFIG), tiny_io)


def test_float16_checkpoint_is_upcast(tmp_path: Path, tiny_sd) -> None:
    path = tmp_path / "half.pt"
    torch.save({k: v.half() for k, v in tiny_sd.items()}, path)
    model = load_generator(path)
    assert all(p.dtype == torch.float32 for p in model.state_dict().values())
    assert not model.training and not any(p.requires_grad for p in model.parameters())


# --- config inference ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [256, 512, 1024, 2048])
def test_infer_config_of_real_layouts(gpen_fixtures: Path, size: int) -> None:
    sd = _meta_state_dict(gpen_fixtures / f"keys_{size}.txt")
    assert infer_config(sd) == MODELS[f"gpen-bfr-{size}"].config


@pytest.mark.parametrize(
    "file,config",
    [("gpen_tiny64_state_dict.pt", TINY_CONFIG), ("gpen_tiny256_pk_state_dict.safetensors", TINY256_CONFIG)],
)
def test_infer_config_of_fixtures(gpen_fixtures: Path, file: str, config: GPENConfig) -> None:
    assert infer_config(read_state_dict(gpen_fixtures / file)) == config


@pytest.mark.parametrize(
    "config",
    [
        GPENConfig(128, style_dim=32, n_mlp=3, channel_multiplier=1, narrow=0.07),
        GPENConfig(128, style_dim=16, n_mlp=1, channel_multiplier=2, narrow=0.125),
        GPENConfig(512, style_dim=512, n_mlp=8, channel_multiplier=2, narrow=0.25),
    ],
)
def test_infer_config_round_trips_unusual_configs(config: GPENConfig) -> None:
    with torch.device("meta"):
        sd = FullGenerator(config).state_dict()
    assert infer_config(sd) == config


def test_infer_config_rejects_non_gpen_dict() -> None:
    with pytest.raises(CheckpointError, match=r"not a GPEN FullGenerator state dict: no ecd0\.0\.0\.weight"):
        infer_config({"conv.weight": torch.zeros(3, 3)})


# --- damaged and wrong files ---------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match=r"checkpoint not found: .*nothere\.pth"):
        load_generator(tmp_path / "nothere.pth", spec="gpen-bfr-512")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "GPEN-BFR-512.pth"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"GPEN-BFR-512\.pth is empty \(0 bytes\)"):
        load_generator(path, spec="gpen-bfr-512")


@pytest.mark.parametrize("fraction", [0.5, 0.99])
def test_truncated_pth(tmp_path: Path, gpen_fixtures: Path, fraction: float) -> None:
    data = (gpen_fixtures / "gpen_tiny64_state_dict.pt").read_bytes()
    path = tmp_path / "GPEN-BFR-256.pth"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match=r"GPEN-BFR-256\.pth could not be read as a PyTorch checkpoint.*damaged, truncated"):
        load_generator(path, spec="gpen-bfr-256")


def test_truncated_safetensors(tmp_path: Path, gpen_fixtures: Path) -> None:
    data = (gpen_fixtures / "gpen_tiny64_state_dict.safetensors").read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors is not a readable safetensors file"):
        load_generator(path, config=TINY_CONFIG)


@pytest.mark.parametrize(
    "name,content",
    [("notes.pth", b"this is a text file, not a checkpoint\n"), ("page.pt", b"<html><body>404</body></html>")],
)
def test_non_checkpoint_file(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"{name.replace('.', '[.]')} could not be read as a PyTorch checkpoint"):
        load_generator(path, spec="gpen-bfr-512")


def test_pickle_with_arbitrary_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    # protocol 2 (torch.save's) so that the unpickler reaches the global, a class rather than data
    path.write_bytes(pickle.dumps({"generator.input.input": pickle.PickleBuffer}, protocol=2))
    with pytest.raises(
        CheckpointError,
        match=r"evil\.pth holds Python objects other than tensors and plain containers "
        r"\(Unsupported global: GLOBAL pickle\.PickleBuffer\), which weights_only loading refuses",
    ):
        read_state_dict(path)


def test_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError, match=r"list\.pt does not hold a state dict \(found list\)"):
        read_state_dict(path)
    path2 = tmp_path / "opt.pt"
    torch.save({"step": 3, "w": torch.zeros(1)}, path2)
    with pytest.raises(CheckpointError, match=r"opt\.pt is not a plain state dict: entries \['step'\]"):
        read_state_dict(path2)


def test_real_256_checkpoint_loaded_as_512(tmp_path: Path, gpen_fixtures: Path) -> None:
    # A checkpoint with exactly GPEN-BFR-256's keys and shapes (zeros, fp16 to keep the file ~38 MB).
    sd = {k: torch.zeros(v.shape, dtype=torch.float16)
          for k, v in _meta_state_dict(gpen_fixtures / "keys_256.txt").items()}
    path = tmp_path / "GPEN-BFR-256.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as info:
        load_generator(path, spec="gpen-bfr-512")
    msg = str(info.value)
    assert "GPEN-BFR-256.pth does not match the expected model gpen-bfr-512" in msg
    assert "19 missing keys (first: generator.convs.12.conv.weight" in msg
    assert "shape mismatches (first: generator.input.input: file [1,256,4,4] vs model [1,512,4,4]" in msg
    # what the file is, and how to load it, in the command line's terms and Python's
    assert ("The file is gpen-bfr-256 (" in msg and "load it with --model gpen-bfr-256 --weights PATH "
            "or with --model PATH (model='gpen-bfr-256', weights=PATH or model=PATH in Python)" in msg)
    assert isinstance(info.value, WeightsError) and isinstance(info.value, ValueError)
    assert info.value.exit_code == 3
    # and the same file loads as what it is
    model = load_generator(path, spec="gpen-bfr-256")
    assert model.size == 256 and model.config == MODELS["gpen-bfr-256"].config


def test_missing_keys(tmp_path: Path, tiny_sd) -> None:
    sd = dict(tiny_sd)
    del sd["generator.convs.3.noise.weight"]
    del sd["final_linear.0.bias"]
    path = tmp_path / "missing.pt"
    torch.save(sd, path)
    with pytest.raises(
        CheckpointError,
        match=r"missing\.pt does not match the expected model GPENConfig\(size=64.*2 missing keys "
        r"\(first: generator\.convs\.3\.noise\.weight, final_linear\.0\.bias\)",
    ):
        load_generator(path, config=TINY_CONFIG)
    # inference cannot paper over it either
    with pytest.raises(CheckpointError, match=r"missing\.pt does not match.*2 missing keys"):
        load_generator(path)


def test_unexpected_keys(tmp_path: Path, tiny_sd) -> None:
    sd = dict(tiny_sd)
    sd["generator.noises.noise_0"] = torch.zeros(1, 1, 4, 4)
    sd["ecd0.0.0.bias"] = torch.zeros(12)
    path = tmp_path / "extra.safetensors"  # safetensors sorts the keys
    save_file(sd, str(path))
    with pytest.raises(
        CheckpointError,
        match=r"extra\.safetensors does not match the expected model gpen-bfr-256 .*"
        r"2 unexpected keys \(first: ecd0\.0\.0\.bias, generator\.noises\.noise_0\)",
    ):
        load_generator(path, spec=MODELS["gpen-bfr-256"])


def test_wrong_shapes(tmp_path: Path, tiny_sd) -> None:
    sd = dict(tiny_sd)
    sd["generator.to_rgbs.1.bias"] = torch.zeros(1, 4, 1, 1)
    sd["generator.conv1.conv.weight"] = torch.zeros(25, 25, 3, 3)  # lost its leading 1
    path = tmp_path / "shapes.pt"
    torch.save(sd, path)
    with pytest.raises(
        CheckpointError,
        match=r"shapes\.pt does not match.*2 shape mismatches \(first: generator\.conv1\.conv\.weight: "
        r"file \[25,25,3,3\] vs model \[1,25,25,3,3\]; generator\.to_rgbs\.1\.bias: file \[1,4,1,1\] vs model \[1,3,1,1\]\)",
    ):
        load_generator(path, config=TINY_CONFIG)


def test_tiny256_loaded_as_bfr256_names_the_inferred_config(gpen_fixtures: Path) -> None:
    with pytest.raises(
        CheckpointError,
        match=r"gpen_tiny256_state_dict\.pt does not match the expected model gpen-bfr-256.*"
        r"The file is GPENConfig\(size=256, style_dim=48, n_mlp=8, channel_multiplier=2, narrow=0\.1, "
        r"lr_mlp=0\.01\), not a registry model: load it with --model PATH \(model=PATH in Python\), "
        r"which infers its config$",
    ):
        load_generator(gpen_fixtures / "gpen_tiny256_state_dict.pt", spec="gpen-bfr-256")


def test_option_validation(gpen_fixtures: Path) -> None:
    path = gpen_fixtures / "gpen_tiny64_state_dict.pt"
    with pytest.raises(InvalidInputError, match=r"unknown model 'gpen-bfr-999'; known models: gpen-bfr-256"):
        load_generator(path, spec="gpen-bfr-999")
    with pytest.raises(InvalidInputError, match=r"contradicts spec gpen-bfr-512"):
        load_generator(path, spec="gpen-bfr-512", config=TINY_CONFIG)
    with pytest.raises(InvalidInputError, match=r"dtype must be a floating torch\.dtype.*got torch\.int8"):
        load_generator(path, dtype=torch.int8)


def test_device_and_dtype_are_applied(gpen_fixtures: Path) -> None:
    model = load_generator(gpen_fixtures / "gpen_tiny64_state_dict.pt", dtype=torch.bfloat16, device="cpu")
    assert {t.dtype for t in model.state_dict().values()} == {torch.bfloat16}
    assert {t.device.type for t in model.state_dict().values()} == {"cpu"}


def test_mismatch_error_can_say_why_the_model_was_expected(gpen_fixtures: Path) -> None:
    # `--model auto` chose gpen-bfr-256, not the user: the caller says so instead of the bare name
    with pytest.raises(CheckpointError) as info:
        load_generator(gpen_fixtures / "gpen_tiny256_state_dict.pt", spec="gpen-bfr-256",
                       expected_as="gpen-bfr-256, the default model on cpu (--model auto)")
    msg = str(info.value)
    assert "does not match the expected model gpen-bfr-256, the default model on cpu (--model auto): " in msg
    assert "spec=None" not in msg and "load it as" not in msg


# --- files of other formats and folders ----------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:FutureWarning")
def test_torchscript_archive_is_named_and_no_warning_leaks(tmp_path: Path, recwarn) -> None:
    path = tmp_path / "traced.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(path))
    with pytest.raises(CheckpointError, match=r"traced\.pt is a TorchScript archive \(a compiled model, "
                       r"torch\.jit\.save\), not a state dict of weights; save the weights instead") as info:
        load_generator(path)
    assert "damaged" not in str(info.value)
    assert not [w for w in recwarn if "TorchScript" in str(w.message)]


@pytest.mark.parametrize("name", ["model.pth", "model.pt", "model"])
def test_safetensors_is_sniffed_whatever_the_extension(tmp_path: Path, tiny_sd, tiny_io, name: str) -> None:
    path = tmp_path / name
    save_file(tiny_sd, str(path))
    _assert_golden(load_generator(path), tiny_io)


def test_torch_file_named_safetensors_is_read_by_its_bytes(tmp_path: Path, tiny_sd, tiny_io) -> None:
    path = tmp_path / "model.safetensors"
    torch.save(tiny_sd, path)
    _assert_golden(load_generator(path), tiny_io)
    # a damaged file under that name is still reported as a safetensors file
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00[not json")
    with pytest.raises(CheckpointError, match=r"model\.safetensors is not a readable safetensors file"):
        read_state_dict(path)


def test_git_lfs_pointer_is_named(tmp_path: Path) -> None:
    path = tmp_path / "GPEN-BFR-512.pth"
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 75573183\n")
    with pytest.raises(CheckpointError, match=r"GPEN-BFR-512\.pth is a Git LFS pointer .*`git lfs pull`"):
        read_state_dict(path)


def test_folder_as_checkpoint_says_so(tmp_path: Path, gpen_fixtures: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(WeightsNotFoundError, match=r"checkpoint .* is a folder \(it holds no "
                       r"\.pth/\.pt/\.safetensors file\); name the checkpoint file inside it") as info:
        load_generator(tmp_path)
    assert info.value.exit_code == 3
    (tmp_path / "mine.pth").write_bytes((gpen_fixtures / "gpen_tiny64_state_dict.pt").read_bytes())
    with pytest.raises(WeightsNotFoundError, match=r"is a folder \(it holds mine\.pth\); name the checkpoint"):
        read_state_dict(tmp_path)


# --- the other networks' weights (face parser) go through the same reader ------------------


@pytest.mark.parametrize("kind", ["truncated", "empty", "lfs", "list", "folder"])
def test_damaged_parser_weights_are_one_weights_error(tmp_path: Path, mobilenet_weights: Path, kind: str) -> None:
    from stream_gpen.faces import FaceParser

    from tests._doubles import damaged_weights

    path = tmp_path / "ParseNet-latest.pth"
    if kind == "folder":
        path = tmp_path
        match = r"face-parsing weights not found: no ParseNet-latest\.pth / parsing_parsenet\.pth in the folder"
    else:
        match = r"face-parsing weights .*ParseNet-latest\.pth " + damaged_weights(path, kind, mobilenet_weights)
    with pytest.raises(WeightsError, match=match) as info:
        FaceParser(weights=path)
    assert info.value.exit_code == 3


def test_wrong_network_as_parser_weights_lists_the_keys(mobilenet_weights: Path) -> None:
    from stream_gpen.faces import FaceParser

    with pytest.raises(CheckpointError, match=r"is not a ParseNet checkpoint: 238 missing keys \(first: encoder\.0\."
                       r".*300 unexpected keys \(first: body\.stage1\.0\.0\.weight"):
        FaceParser(weights=mobilenet_weights)
