"""Hunt 30 (weights): a GPEN checkpoint saved without its constant blur kernels.

The blur and upsampling kernels are buffers every released checkpoint holds with the same
constant values, which an implementation "may either load or rebuild" (fixtures/gpen/FACTS.md
§3). A state dict saved without them (only its parameters) was refused as "18 missing keys",
and a managed copy of it was skipped as "wrong model". Now they are rebuilt where they are all
that is missing; a file missing anything else is refused as before, and a file that holds other
kernels (the ``_pk`` fixtures) keeps its own."""
from __future__ import annotations

import pytest
import torch

from stream_gpen import weights
from stream_gpen.errors import CheckpointError
from stream_gpen.models.gpen import FullGenerator
from stream_gpen.models.loading import infer_config, load_generator
from stream_gpen.models.registry import MODELS


def _without_kernels(sd: dict) -> dict:
    return {k: v for k, v in sd.items() if not k.endswith(".kernel")}


def test_a_checkpoint_without_its_kernels_loads_with_the_constants(tmp_path, gpen_fixtures):
    full = torch.load(gpen_fixtures / "gpen_tiny256_state_dict.pt", map_location="cpu", weights_only=True)
    kernels = sorted(k for k in full if k.endswith(".kernel"))
    assert len(kernels) == 18  # (FACTS §3: the 256 layout's 18 buffers)
    path = tmp_path / "params_only.pt"
    torch.save(_without_kernels(full), path)
    model = load_generator(path)  # (its config inferred from the shapes, as for any file)
    loaded = model.state_dict()
    for key in kernels:  # the official code's values, to the bit
        assert torch.equal(loaded[key], full[key]), key
    reference = load_generator(gpen_fixtures / "gpen_tiny256_state_dict.pt")
    assert all(torch.equal(loaded[k], v) for k, v in reference.state_dict().items())


def test_anything_else_missing_is_still_refused(tmp_path, gpen_fixtures):
    full = torch.load(gpen_fixtures / "gpen_tiny256_state_dict.pt", map_location="cpu", weights_only=True)
    sd = _without_kernels(full)
    del sd["final_linear.0.bias"]
    path = tmp_path / "short.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"short\.pt does not match the expected model .*19 missing keys"):
        load_generator(path, config=infer_config(full))


def test_perturbed_kernels_are_kept(gpen_fixtures):
    pk = torch.load(gpen_fixtures / "gpen_tiny256_pk_state_dict.pt", map_location="cpu", weights_only=True)
    loaded = load_generator(gpen_fixtures / "gpen_tiny256_pk_state_dict.pt").state_dict()
    assert all(torch.equal(loaded[k], pk[k]) for k in pk if k.endswith(".kernel"))


def test_a_managed_copy_without_its_kernels_is_not_a_wrong_model(tmp_path):
    spec = MODELS["gpen-bfr-256"]
    with torch.device("meta"):
        shapes = FullGenerator(spec.config).state_dict()
    path = tmp_path / spec.weights.filename
    torch.save({k: torch.zeros(v.shape) for k, v in _without_kernels(shapes).items()}, path)
    assert weights._wrong_model(spec.weights, path) is None
    # (and one with a learned tensor missing too is still the wrong model)
    torch.save({k: torch.zeros(v.shape) for k, v in _without_kernels(shapes).items() if k != "final_linear.0.bias"},
               path)
    status, detail = weights._wrong_model(spec.weights, path)
    assert status == "wrong model" and "19 missing keys" in detail
