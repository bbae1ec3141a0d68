"""``camera`` given a folder or a photo as its source (hunt 30): a folder was restored as photos
into a new folder named as the recording ("wrote c.mp4", exit 0; its videos left out unsaid), and a
photo failed after the model loaded with "an image input needs an image output ... or an existing
folder", both of which camera itself refuses. Now both are refused before the model loads (exit 2),
pointing to ``enhance``."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stream_gpen.cli import main


def _no_model(monkeypatch):
    import stream_gpen.api as api

    def boom(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(api.Enhancer, "__init__", boom)


@pytest.mark.parametrize("name", ["still.jpg", "still.png", "still_no_ext", "still.mp4"])
def test_a_photo_source_is_refused_before_the_model(tmp_path, cli_env, capsys, monkeypatch, name):
    src = tmp_path / name
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(src, format="PNG" if "png" in name else "JPEG")
    _no_model(monkeypatch)
    out = tmp_path / "rec.mp4"
    assert main(["camera", str(src), "-o", str(out), *cli_env]) == 2
    err = capsys.readouterr().err
    assert "the camera's source is a photo" in err and "stream-gpen enhance" in err, err
    assert not out.exists()


def test_a_folder_source_is_refused_before_the_model(tmp_path, cli_env, capsys, monkeypatch):
    src = tmp_path / "shots"
    src.mkdir()
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(src / "a.jpg")
    _no_model(monkeypatch)
    out = tmp_path / "c.mp4"
    assert main(["camera", str(src), "-o", str(out), *cli_env]) == 2
    err = capsys.readouterr().err
    assert "the camera's source is a folder" in err and f"stream-gpen enhance {src}" in err, err
    assert not out.exists()


def test_a_video_file_source_still_runs(tmp_path, cli_env, capsys):
    from _clips import write_video

    src = write_video(tmp_path / "clip.mp4", [np.full((48, 64, 3), v, np.uint8) for v in range(0, 200, 40)])
    out = tmp_path / "rec.mkv"
    assert main(["camera", str(src), "-o", str(out), *cli_env]) == 0, capsys.readouterr().err
    assert out.exists()
