"""Hunt 20 (regress20): neighbours of session 19's fixes. A photo under another name is refused
with a rename hint (it became a one-frame H.264 video); a cut animated PNG is not called a video;
a folder run keeps a skipped file's hint; empty --model/--parser-weights/--work-dir and an empty
$STREAM_GPEN_API_KEY are refused; stream() takes a path given as bytes."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from _clips import write_video


def _jpeg(path):
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path, "JPEG")
    return path


@pytest.mark.parametrize("name, hint", [("photo.jpg_large", "photo.jpg"), ("download", "download.jpg"),
                                        ("pic.mp4", "pic.jpg")])
def test_a_photo_under_another_name_is_refused_with_a_rename_hint(tmp_path, cli_env, capsys, name, hint):
    from stream_gpen.cli import main

    src = _jpeg(tmp_path / name)
    assert main(["enhance", str(src), *cli_env]) == 2
    err = capsys.readouterr().err
    assert "is a JPG picture, not a video" in err and f"rename it to {hint}" in err, err
    assert [p.name for p in tmp_path.iterdir() if p.name != "home"] == [name]  # no one-frame video written
    assert main(["info", str(src)]) == 2 and f"rename it to {hint}" in capsys.readouterr().err


def test_a_real_one_frame_video_is_still_a_video(tmp_path, cli_env):
    from stream_gpen.cli import main

    src = write_video(tmp_path / "one.mp4", [np.full((48, 64, 3), 90, np.uint8)])
    assert main(["enhance", str(src), *cli_env]) == 0 and (tmp_path / "one_enhanced.mp4").exists()


def test_a_cut_animated_png_is_not_called_a_video(tmp_path):
    from stream_gpen.io._image import video_in_disguise

    frames = [Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)) for i in range(6)]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=100)
    cut = tmp_path / "anim.png"
    cut.write_bytes(buf.getvalue()[:int(len(buf.getvalue()) * 0.7)])
    assert video_in_disguise(cut) is None


def test_a_folder_run_keeps_a_skipped_files_hint(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    root = tmp_path / "in"
    root.mkdir()
    _jpeg(root / "p.jpg")
    clip = write_video(tmp_path / "clip.mp4", [np.full((48, 64, 3), 90, np.uint8)] * 3)
    clip.rename(root / "clip.jpg")  # an MP4 under a picture's name
    report = tmp_path / "r.json"
    main(["enhance", str(root), "-o", str(tmp_path / "out"), "--report", str(report), *cli_env])
    err = capsys.readouterr().err
    assert "skipped" in err and "rename it to .mp4" in err, err
    assert "rename it to .mp4" in report.read_text()


@pytest.mark.parametrize("argv", [["enhance", "IN", "--model", ""], ["enhance", "IN", "--parser-weights", ""],
                                  ["serve", "--work-dir", ""]])
def test_more_empty_paths_are_refused(tmp_path, capsys, argv):
    from stream_gpen.cli import main

    argv = [str(_jpeg(tmp_path / "p.jpg")) if a == "IN" else a for a in argv]
    assert main(argv) == 2 and "is empty" in capsys.readouterr().err


def test_an_empty_api_key_variable_is_refused(monkeypatch):
    pytest.importorskip("fastapi")
    from stream_gpen.cli import build_parser
    from stream_gpen.errors import InvalidInputError
    from stream_gpen.server.cli import config_from_args

    monkeypatch.setenv("STREAM_GPEN_API_KEY", "")  # (`-e STREAM_GPEN_API_KEY=$KEY`, KEY unset): an open API
    with pytest.raises(InvalidInputError, match="STREAM_GPEN_API_KEY is set but blank"):
        config_from_args(build_parser().parse_args(["serve"]))


def test_stream_takes_a_path_given_as_bytes(tmp_path, enh):
    class BytesPath:
        def __init__(self, p):
            self.p = p

        def __fspath__(self):
            return os.fsencode(self.p)

    clip = write_video(tmp_path / "c.mp4", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)])
    assert len(list(enh.stream(BytesPath(str(clip))))) == 3
    assert len(list(enh.stream(os.fsencode(str(clip))))) == 3


def test_an_extensionless_input_is_said_as_such_and_a_photo_gets_no_video_note(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    clip = write_video(tmp_path / "c.mp4", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)])
    clip.rename(tmp_path / "myvideo")
    cli = [a for a in cli_env if a != "--quiet"]
    assert main(["enhance", str(tmp_path / "myvideo"), *cli]) == 0
    err = capsys.readouterr().err
    assert "an extensionless input is written as" in err and "a  input" not in err, err
    assert main(["enhance", str(_jpeg(tmp_path / "download")), *cli]) == 2
    assert "is written as" not in capsys.readouterr().err
