"""What the Enhancer makes of the model, weights and precision it is given (the hunt of
session 11: a user's own checkpoints, --no-download, fallbacks said in the summary)."""
from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch
from torch import nn

from stream_gpen.errors import CheckpointError, WeightsNotFoundError


def test_no_download_holds_for_the_face_detector_too(tmp_path, monkeypatch):
    """`--no-download` fetched the detector anyway (104 MB for the ResNet-50 on CUDA)."""
    import stream_gpen.weights as weights_mod
    from stream_gpen import Enhancer

    home = tmp_path / "empty"
    home.mkdir()
    monkeypatch.setenv("STREAM_GPEN_HOME", str(home))
    monkeypatch.delenv("STREAM_GPEN_OFFLINE", raising=False)
    monkeypatch.setattr(weights_mod, "search_dirs", lambda: [home])

    def no_fetch(*a, **k):
        raise AssertionError("downloaded although download=False")

    monkeypatch.setattr(weights_mod, "_download", no_fetch)
    with pytest.raises(WeightsNotFoundError, match="detection_mobilenet0.25_Final.pth"):
        Enhancer(model="classic", device="cpu", download=False)


def test_nan_weights_are_refused_not_pasted_as_black_faces():
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator
    from stream_gpen.runtime import FaceRunner

    gen = random_generator(TINY_CONFIG, seed=1)
    name, p = next(iter(gen.named_parameters()))
    with torch.no_grad():
        p.view(-1)[0] = float("nan")
    with pytest.raises(CheckpointError, match=rf"weights hold NaN/inf in 1 tensor\(s\) \(first: {name}\)"):
        FaceRunner(gen, size=TINY_CONFIG.size, device="cpu", precision="fp32")


def test_nan_detector_and_parser_weights_are_refused(tmp_path, mobilenet_weights):
    """A NaN detector found no face and a NaN parser pasted nothing, each exit 0 (the face
    counted as restored), and `serve` started with them: refused like a NaN GPEN checkpoint."""
    from stream_gpen.faces import FaceDetector, FaceParser
    from stream_gpen.faces._parse import build_parsenet

    det = torch.load(mobilenet_weights, map_location="cpu", weights_only=True)
    det = {k: v.fill_(float("nan")) if v.is_floating_point() else v for k, v in det.items()}
    torch.save(det, tmp_path / "det_nan.pth")
    with pytest.raises(CheckpointError, match=r"det_nan\.pth: the detector weights hold NaN/inf") as info:
        FaceDetector(device="cpu", weights=tmp_path / "det_nan.pth")
    assert info.value.exit_code == 3
    parse = {k: v.clone().fill_(float("nan")) if v.is_floating_point() else v
             for k, v in build_parsenet().state_dict().items()}
    torch.save(parse, tmp_path / "parse_nan.pth")
    with pytest.raises(CheckpointError, match=r"parse_nan\.pth: the face-parsing weights hold NaN/inf"):
        FaceParser(weights=tmp_path / "parse_nan.pth")


def test_a_registry_model_given_by_its_path_keeps_its_default_strength(tmp_path, monkeypatch, mobilenet_weights):
    """GPEN-BFR-2048 passed as --model ~/Downloads/pytorch_model-2048.pt ran at strength 1.0,
    as gpen-bfr-2048 at 0.8 (GPEN's run.sh). Here a registry entry of the tiny config stands in."""
    from stream_gpen import Enhancer
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator
    from stream_gpen.models.registry import MODELS

    base = MODELS["gpen-bfr-256"]
    monkeypatch.setitem(MODELS, "gpen-tiny-test", dataclasses.replace(base, name="gpen-tiny-test",
                                                                      config=TINY_CONFIG, strength=0.8))
    path = tmp_path / "my_download.pt"
    torch.save(random_generator(TINY_CONFIG, seed=1).state_dict(), path)
    enh = Enhancer(model=str(path), device="cpu", detector_weights=mobilenet_weights)
    assert enh.strength == 0.8
    assert Enhancer(model=str(path), device="cpu", detector_weights=mobilenet_weights, strength=1.0).strength == 1.0


def test_options_a_model_does_not_use_are_said(tmp_path, caplog, tiny_ckpt, mobilenet_weights):
    from stream_gpen import Enhancer

    with caplog.at_level(logging.WARNING, logger="stream_gpen"):
        Enhancer(model="classic", device="cpu", precision="bf16", compile=True, detector_weights=mobilenet_weights)
        Enhancer(model=str(tiny_ckpt), device="cpu", weights=str(tmp_path / "other.pth"),
                 detector_weights=mobilenet_weights)
    said = " | ".join(r.getMessage() for r in caplog.records)
    assert "precision bf16 is not used" in said and "compile is not used" in said, said
    assert "other.pth is not used: the model is the checkpoint file" in said, said


def test_summary_names_the_precision_the_run_ended_with(tmp_path, mobilenet_weights, shared):
    """A reduced-precision run that fell back to fp32 said bf16/fp16 in its summary and report."""
    from PIL import Image

    from stream_gpen import Enhancer
    from stream_gpen.runtime import FaceRunner

    class Overflow(nn.Module):
        size = 64

        def forward(self, x):  # finite in fp32, inf in fp16 (max 65504)
            return (x.abs() + 1) * 1e5 - 1e5 * 1.5

    runner = FaceRunner(Overflow(), size=64, device="cpu", precision="fp16", name="overflow")
    enh = Enhancer(runner, device="cpu", detector_weights=mobilenet_weights)
    src = tmp_path / "face.jpg"
    Image.open(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg").convert("RGB").resize((320, 240)).save(src)
    assert enh.precision == "fp16"
    summary = enh.enhance_file(src, tmp_path / "out.png")
    assert summary.faces_restored >= 1 and runner.precision == "fp32"
    assert summary.precision == "fp32" and summary.to_dict()["precision"] == "fp32"
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == (240, 320, 3)
