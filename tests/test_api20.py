"""Hunt 20 (api20): any os.PathLike is a path (an os.DirEntry was "not found: <DirEntry ...>");
options checked up front (image_format, on_progress, cancel, download, progress, live,
latency_budget_s); a weights file given with a model object is said to be unused; uint16
pictures holding 8-bit values are warned about."""
from __future__ import annotations

import logging
import os
import threading

import numpy as np
import pytest
from PIL import Image

from _clips import write_video
from stream_gpen.errors import InvalidInputError


def _photo(path):
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def test_a_dir_entry_is_a_path(tmp_path, enh):
    _photo(tmp_path / "p.png")
    write_video(tmp_path / "v.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)])
    entries = {e.name: e for e in os.scandir(tmp_path)}
    s = enh.enhance_file(entries["p.png"], tmp_path / "o.png")
    assert s.frames_out == 1 and (tmp_path / "o.png").exists()
    assert len(list(enh.stream(entries["v.mp4"]))) == 3


@pytest.mark.parametrize("kw, said", [
    ({"image_format": "xyz"}, "image_format='xyz' is not a photo format"),
    ({"on_progress": 5}, "on_progress must be a function"),
    ({"cancel": True}, "cancel must be a threading.Event"),
])
def test_enhance_file_options_are_checked_before_the_run(tmp_path, enh, kw, said):
    src = write_video(tmp_path / "v.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)])
    with pytest.raises(InvalidInputError, match=said):
        enh.enhance_file(src, tmp_path / "o.mp4", **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]  # (no .partial left)
    enh.enhance_file(src, tmp_path / "o.mp4", cancel=threading.Event(), on_progress=lambda *a: None)


def test_flags_are_booleans(mobilenet_weights):
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    for kw in ({"download": "no"}, {"progress": None}):
        with pytest.raises(InvalidInputError, match="must be True or False"):
            Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, **kw)


@pytest.mark.parametrize("kw, said", [({"live": "no"}, "live must be True or False"),
                                      ({"latency_budget_s": "x"}, "latency_budget_s must be a number"),
                                      ({"latency_budget_s": -1}, "latency_budget_s must be a number")])
def test_stream_options_are_checked(tmp_path, enh, kw, said):
    src = write_video(tmp_path / "v.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)])
    with pytest.raises(InvalidInputError, match=said):
        next(iter(enh.stream(src, **kw)))
    with pytest.raises(InvalidInputError, match=said.replace("live must be True or False", "live must be True or False")):
        next(iter(enh.stream_frames([np.zeros((48, 64, 3), np.uint8)], **kw)))


def test_weights_given_with_a_model_object_are_said_to_be_unused(mobilenet_weights, caplog):
    from stream_gpen import Enhancer
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator

    with caplog.at_level(logging.WARNING, logger="stream_gpen"):
        Enhancer(random_generator(TINY_CONFIG), device="cpu", detector_weights=mobilenet_weights,
                 weights="/no/such/file.pth")
    assert "has its own weights: /no/such/file.pth is not used" in caplog.text


def test_a_uint16_picture_of_8_bit_values_is_warned_about(enh, caplog):
    img = np.random.default_rng(4).integers(0, 255, (48, 64, 3), dtype=np.uint8).astype(np.uint16)
    with caplog.at_level(logging.WARNING, logger="stream_gpen"):
        enh.enhance_image(img)
        assert "uint16 with values 0..254 only" in caplog.text or "uint16 with values 0..255 only" in caplog.text
        caplog.clear()
        enh.enhance_image(img * 257)
    assert "uint16 with values" not in caplog.text


def test_newcomer_paths(tmp_path, enh):
    """newuser20: `import stream_gpen; stream_gpen.cli.main(...)` as the README shows it; a PIL image
    refused with the conversion to use; the GPEN weights' hint names the offline classic model."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", "import stream_gpen; print(stream_gpen.cli.main.__name__)"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "main", r.stderr
    with pytest.raises(InvalidInputError, match=r"np.asarray\(image.convert\('RGB'\)\)"):
        enh.enhance_image(Image.new("RGB", (8, 8)))
    from stream_gpen.weights import _hint, get_weight_file

    assert "--model classic" in _hint(get_weight_file("gpen-bfr-512"))
    assert "--model classic" not in _hint(get_weight_file("retinaface-mobilenet0.25"))
