"""Hunt 22 (weights22): checkpoints as other tools save them (BasicSR's params_ema, Lightning's
state_dict, torch.compile's _orig_mod. prefix) load; another family's file is named as such; a
pickle calling a blocked global (os.system) is refused as unsafe, not as "damaged"; a relative
$STREAM_GPEN_HOME is made absolute."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from stream_gpen import weights
from stream_gpen.errors import CheckpointError
from stream_gpen.models.loading import load_generator, read_state_dict
from tests.test_checkpoint_loading import _assert_golden


@pytest.mark.parametrize("wrapper", ["params_ema", "params", "state_dict", "model", "net_g"])
@pytest.mark.parametrize("prefix", ["", "_orig_mod.", "module._orig_mod."])
def test_wrapped_and_compiled_gpen_checkpoints_load(tmp_path: Path, tiny_sd, tiny_io, wrapper, prefix) -> None:
    # each was refused: "entries ['params_ema'] are not tensors (a training checkpoint without 'g_ema'?)",
    # or "not a GPEN FullGenerator state dict: no ecd0.0.0.weight" for the torch.compile prefix
    path = tmp_path / "wrapped.pth"
    torch.save({wrapper: {prefix + k: v for k, v in tiny_sd.items()}, "iter": 5000}, path)
    assert list(read_state_dict(path)) == list(tiny_sd)
    _assert_golden(load_generator(path), tiny_io)


@pytest.mark.parametrize("keys, family", [
    (["stylegan_decoder.style_mlp.1.weight", "conv_body_first.weight"], "GFPGAN"),
    (["quantize.embedding.weight", "position_emb", "encoder.blocks.0.weight"], "CodeFormer"),
])
def test_another_family_is_named(tmp_path: Path, keys, family) -> None:
    path = tmp_path / "other.pth"
    torch.save({"params_ema": {k: torch.zeros(2) for k in keys}}, path)
    with pytest.raises(CheckpointError, match=f"not a GPEN checkpoint: its layers are {family}'s"):
        load_generator(path)


class _System:
    def __reduce__(self):
        return (os.system, ("true",))


def test_a_pickle_calling_a_blocked_global_is_refused_as_unsafe_not_damaged(tmp_path: Path) -> None:
    # torch 2.14 words it "unsupported GLOBAL posix.system whose module posix is blocked": the
    # message said "damaged ... download it again" and quoted torch's advice to load with
    # weights_only=False
    path = tmp_path / "evil.pth"
    torch.save({"x": _System()}, path)
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path)
    msg = str(info.value)
    assert "holds Python objects other than tensors" in msg and "system" in msg, msg
    assert "damaged" not in msg and "weights_only` set to `False`" not in msg, msg


def test_a_relative_home_is_made_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STREAM_GPEN_HOME", "relhome")
    assert weights.home_dir() == tmp_path / "relhome"
