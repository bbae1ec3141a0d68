"""Session 30 (api): quality= for a video or a lossless photo, and quality=/image_format= for a
folder of videos only, did nothing without a word from the API, while the command line warned:
one rule (api.photo_options_unused) says it in the API's words and the command line's flags,
once."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from _clips import write_video
from stream_gpen.cli import main


def _warned(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "appl" in r.getMessage()]


@pytest.fixture
def media(tmp_path):
    clip = write_video(tmp_path / "c.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(2)])
    Image.fromarray(np.zeros((40, 56, 3), np.uint8)).save(tmp_path / "p.jpg")
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "v.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(2)])
    return tmp_path, clip, videos


def test_the_api_says_an_unused_quality_or_image_format(enh, media, caplog):
    tmp, clip, videos = media
    with caplog.at_level(logging.WARNING, "stream_gpen"):
        enh.enhance_file(clip, tmp / "o.mp4", quality=50)
        assert _warned(caplog) == [f"quality applies to JPEG/WebP/HEIC/AVIF outputs; {clip} is written as a video"]
        caplog.clear()
        enh.enhance_file(tmp / "p.jpg", tmp / "o.png", quality=50)
        assert _warned(caplog) == ["quality applies to JPEG/WebP/HEIC/AVIF outputs; o.png is lossless"]
        caplog.clear()
        enh.enhance_file(videos, tmp / "out", quality=50, image_format="png")
        assert _warned(caplog) == [f"quality/image_format apply to photos; {videos} holds no photos"]
        caplog.clear()
        enh.enhance_file(videos, tmp / "out2", image_format="png")
        assert _warned(caplog) == [f"image_format applies to photos; {videos} holds no photos"]
        caplog.clear()
        enh.enhance_file(tmp / "p.jpg", tmp / "o.webp", quality=50)  # (used: nothing said)
        assert _warned(caplog) == []


@pytest.mark.parametrize("args,said", [
    (["c.mp4", "-o", "o.mp4", "--quality", "50"], "--quality applies to JPEG/WebP/HEIC/AVIF outputs; {tmp}/c.mp4 is "
                                                   "written as a video"),
    (["p.jpg", "-o", "o.png", "--quality", "50"], "--quality applies to JPEG/WebP/HEIC/AVIF outputs; o.png is lossless"),
    (["videos", "-o", "out", "--quality", "50", "--image-format", "png"],
     "--quality/--image-format apply to photos; {tmp}/videos holds no photos"),
    (["c.mp4", "-o", "o.mp4", "--quality", "50", "--image-format", "png"],
     "--quality applies to JPEG/WebP/HEIC/AVIF outputs; {tmp}/c.mp4 is written as a video"),
])
def test_the_command_line_says_it_once(media, cli_env, capsys, monkeypatch, args, said):
    tmp, _, _ = media
    monkeypatch.chdir(tmp)
    args = [str(tmp / a) if (tmp / a).exists() or a.startswith("o") else a for a in args]
    assert main(["enhance", *args, *cli_env]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "appl" in ln]
    assert lines.count(f"stream-gpen: warning: {said.format(tmp=tmp)}") == 1, err
    if "--image-format" in args and "videos" not in args[0]:  # (a video's --image-format: said by the run)
        assert f"stream-gpen: warning: --image-format png applies to photos; {tmp}/c.mp4 is written as a video" \
            in lines, err
    assert len(lines) == 1 + ("--image-format" in args and "videos" not in args[0]), err
