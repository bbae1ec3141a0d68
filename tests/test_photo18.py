"""Hunt 18 (photos18): HEIC under another name, opaque alpha, CMYK, over-large pictures."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def test_a_heic_named_jpg_is_read_in_a_fresh_process(tmp_path):
    """A HEIC saved as .jpg was refused (exit 2) unless a real .heic had been read before in the
    same run: the HEIF reader was registered for .heic/.heif/.hif names only."""
    pillow_heif = pytest.importorskip("pillow_heif")
    path = tmp_path / "IMG_0001.jpg"
    pillow_heif.from_pillow(Image.fromarray(np.full((64, 64, 3), 120, np.uint8))).save(str(path), quality=90)
    code = ("import sys; from pathlib import Path; from stream_gpen.io._image import load_image; "
            "rgb, _ = load_image(Path(sys.argv[1])); print(rgb.shape)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "(64, 64, 3)" in out.stdout, out.stderr


def test_an_opaque_alpha_is_not_said_to_be_dropped(tmp_path, cli_env, capsys):
    """Every RGBA export whose alpha is full everywhere (and every animated WebP) warned
    "cannot store alpha; transparency dropped" when written as JPEG."""
    from stream_gpen.cli import main

    rgba = np.dstack([np.full((48, 64, 3), 90, np.uint8), np.full((48, 64), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert main(["enhance", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.jpg"), *cli_env]) == 0
    assert "transparency dropped" not in capsys.readouterr().err
    rgba[0, 0, 3] = 10  # one pixel see-through: said
    Image.fromarray(rgba, "RGBA").save(tmp_path / "b.png")
    assert main(["enhance", str(tmp_path / "b.png"), "-o", str(tmp_path / "b.jpg"), *cli_env]) == 0
    assert "transparency dropped" in capsys.readouterr().err


def test_a_cmyk_jpeg_written_as_rgb_is_said(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).convert("CMYK").save(tmp_path / "c.jpg")
    assert main(["enhance", str(tmp_path / "c.jpg"), "-o", str(tmp_path / "o.jpg"), *cli_env]) == 0
    assert "a CMYK picture: restored and written as RGB" in capsys.readouterr().err
    with Image.open(tmp_path / "o.jpg") as im:
        assert im.mode == "RGB"


def test_an_over_large_picture_gets_a_hint(tmp_path, monkeypatch):
    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io._image import load_image

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # (stands for a 200 MP photo)
    with pytest.raises(InvalidInputError) as e:
        load_image(tmp_path / "big.png")
    assert "too large to load safely" in str(e.value) and "smaller copy" in e.value.hint
