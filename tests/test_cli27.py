"""Session 27, a new user's walk (fnew27): the "no weights" hint sent an offline user to
``--model classic`` as needing no file at all (it still needs the RetinaFace detector); a photo's
``--crf 60`` was taken (it fits VP9) where the same command for a video refuses it, and its
``--crf 64`` was refused "for --codec h264", a codec no one had asked for; the API's
``image_format`` warning kept its keyword on the command line; ``bench/tracking.py`` ignored
``$STREAM_GPEN_SHARED``; ``--device tpu`` and ``info`` of a missing file gave no ``hint:``."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from _clips import write_video
from stream_gpen.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _clip(path: Path) -> Path:
    return write_video(path, [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)])


# --- 1. the "no weights" hint: classic needs no GPEN file, but the detector -------------------------

@pytest.fixture
def no_repo_weights(monkeypatch):
    """Only the test's own cache is searched (a checkout's weights/ may hold a detector)."""
    monkeypatch.setattr("stream_gpen.weights.repo_weights_dir", lambda: None)


def test_the_no_weights_hint_says_classic_still_needs_the_detector(tmp_path, monkeypatch, no_repo_weights, capsys):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("STREAM_GPEN_HOME", str(home))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    assert main(["weights", "path", "gpen-bfr-512"]) == 3
    hint = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("hint: "))
    assert "runs without any weights file" not in hint
    assert "--model classic" in hint and "needs no GPEN weights file" in hint
    assert "RetinaFace detector" in hint and ", which is not here either" in hint
    assert "stream-gpen weights download retinaface-mobilenet0.25" in hint and "--detector-weights PATH" in hint
    assert "in Python" not in hint  # (the command line's words)


def test_the_no_weights_hint_does_not_call_a_present_detector_missing(det_home, no_repo_weights, capsys):
    assert main(["weights", "path", "gpen-bfr-512"]) == 3
    hint = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("hint: "))
    assert "RetinaFace detector" in hint and "not here either" not in hint


# --- 2. a photo's --crf/--preset, checked as the same command's video -------------------------------

@pytest.mark.parametrize("options, said", [
    (["--crf", "60"], "--crf 60 for --codec auto (h264, as in an .mp4) must be within 0..51"),
    (["--crf", "64"], "--crf 64 for --codec auto (h264, as in an .mp4) must be within 0..51"),
    (["--preset", "fastest"], "--preset fastest for --codec auto (h264, as in an .mp4) is not one of"),
])
def test_a_photo_refuses_the_crf_its_video_refuses(tmp_path, face, cli_env, capsys, options, said):
    photo, clip = tmp_path / "p.jpg", _clip(tmp_path / "v.mp4")
    face.save(photo)
    assert main(["enhance", str(clip), "-o", str(tmp_path / "o.mp4"), *cli_env, *options]) == 2
    capsys.readouterr()
    assert main(["enhance", str(photo), "-o", str(tmp_path / "o.jpg"), *cli_env, *options]) == 2
    err = capsys.readouterr().err
    assert said in err and "--codec h264" not in err, err
    assert not (tmp_path / "o.jpg").exists()


def test_a_photo_takes_what_its_codec_takes(tmp_path, face, cli_env, capsys):
    """--codec vp9 --crf 60 fits VP9: said unused, the photo written."""
    photo = tmp_path / "p.jpg"
    face.save(photo)
    assert main(["enhance", str(photo), "-o", str(tmp_path / "o.jpg"), "--codec", "vp9", "--crf", "60", *cli_env]) == 0
    assert "--codec/--crf apply to videos" in capsys.readouterr().err
    assert (tmp_path / "o.jpg").is_file()


def test_the_api_checks_a_photo_s_crf_as_a_video_s(tmp_path, enh, face):
    from stream_gpen import InvalidInputError

    photo = tmp_path / "p.png"
    face.save(photo)
    with pytest.raises(InvalidInputError, match=r"^crf=60 for codec='auto' \(h264, as in an \.mp4\) must be within"):
        enh.enhance_file(photo, tmp_path / "o.png", crf=60)
    with pytest.raises(InvalidInputError, match=r"crf=60 for codec='h264' must be within 0\.\.51"):
        enh.enhance_file(_clip(tmp_path / "v.mp4"), tmp_path / "o.mp4", crf=60)
    assert not (tmp_path / "o.png").exists()


# --- 3. the API's image_format warning, in the command line's words ---------------------------------

def test_the_image_format_warning_is_said_with_its_flag(tmp_path, cli_env, capsys):
    clip = _clip(tmp_path / "v.mp4")
    assert main(["enhance", str(clip), "-o", str(tmp_path / "o.mp4"), "--image-format", "png",
                 *cli_env[:-1]]) == 0
    said = [ln for ln in capsys.readouterr().err.splitlines() if "applies to photos" in ln]
    assert said == [f"stream-gpen: warning: --image-format png applies to photos; {clip} is written as a video"], said


# --- 4. bench/tracking.py honours $STREAM_GPEN_SHARED -----------------------------------------------

def test_the_tracking_benchmark_honours_stream_gpen_shared(tmp_path, monkeypatch):
    import importlib

    where = tmp_path / "elsewhere"
    monkeypatch.setenv("STREAM_GPEN_SHARED", str(where))
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    for name in ("_common", "tracking"):  # (imported afresh: _common reads the variable on import)
        monkeypatch.delitem(sys.modules, name, raising=False)
    try:
        assert importlib.import_module("tracking").SHARED == where
    finally:
        for name in ("_common", "tracking"):  # (another test's import reads its own environment)
            sys.modules.pop(name, None)


# --- 5. errors with their hint -----------------------------------------------------------------------

def test_an_unknown_device_comes_with_a_hint(tmp_path, cli_env, capsys):
    clip = _clip(tmp_path / "v.mp4")
    opts = [o for o in cli_env if o not in ("--device", "cpu")]
    assert main(["enhance", str(clip), "-o", os.devnull, *opts, "--device", "tpu"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown device 'tpu'" in err and "\nhint: --device auto" in err, err


def test_info_of_a_missing_file_comes_with_a_hint(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nosuch.mp4")]) == 2
    err = capsys.readouterr().err
    assert "error: input not found" in err and "\nhint: check the path" in err, err


def test_other_missing_inputs_and_devices_come_with_a_hint(tmp_path):
    from stream_gpen.errors import StreamGpenError
    from stream_gpen.io._image import ImageSource
    from stream_gpen.runtime import select_device

    for make in (lambda: ImageSource(tmp_path / "nosuch.jpg"), lambda: select_device("tpu"),
                 lambda: select_device(3)):
        with pytest.raises(StreamGpenError) as e:
            make()
        assert e.value.hint, e.value
