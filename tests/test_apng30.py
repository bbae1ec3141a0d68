"""Animated PNGs under other names (hunt 30): an APNG named ``.png`` is a photo (every frame
restored, written back as an animated PNG), but named ``.apng`` it was read as a video and written
as ``NAME_enhanced.mp4`` (H.264, its frames' times and loop lost), and under a name that is no
photo's (``clip.bin``, ``clip.mp4``, none) likewise. Now ``.apng`` is a photo extension, as
``.png`` is; under another name it is refused with a rename hint, as a HEIC/AVIF/still GIF is (so
is a still PNG named ``.gif``)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stream_gpen.api import default_output
from stream_gpen.cli import main
from stream_gpen.errors import NotMediaError


def _apng(path, n: int = 3) -> None:
    rng = np.random.default_rng(n)
    first, *rest = [Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)) for _ in range(n)]
    first.save(path, "PNG", save_all=True, append_images=rest, duration=[100, 200, 300], loop=0)


def test_an_apng_named_apng_is_restored_as_the_same_file_named_png(tmp_path, enh):
    for name in ("clip.apng", "clip.png"):
        _apng(tmp_path / name)
        enh.enhance_file(tmp_path / name)
    assert default_output(str(tmp_path / "clip.apng")) == str(tmp_path / "clip_enhanced.apng")
    for name in ("clip_enhanced.apng", "clip_enhanced.png"):
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG" and im.n_frames == 3 and im.info.get("loop") == 0, (name, im.info)
            durations = []
            for i in range(3):
                im.seek(i)
                durations.append(im.info["duration"])
        assert durations == [100, 200, 300], (name, durations)
    assert not (tmp_path / "clip_enhanced.mp4").exists()


def test_a_folder_run_restores_its_apngs_as_photos(tmp_path, enh):
    album = tmp_path / "album"
    album.mkdir()
    _apng(album / "a.apng")
    summary = enh.enhance_file(album, tmp_path / "out")
    with Image.open(tmp_path / "out" / "a.apng") as im:
        assert im.format == "PNG" and im.n_frames == 3
    assert summary.frames_out == 3 and not summary.skipped


@pytest.mark.parametrize("name, renamed", [("clip.bin", "clip.png"), ("clip.mp4", "clip.png"),
                                           ("clip", "clip.png"), ("clip.gif", "clip.png")])
def test_an_apng_under_another_name_is_refused_with_a_rename_hint(tmp_path, enh, name, renamed):
    _apng(tmp_path / name)
    with pytest.raises(NotMediaError, match=r"is an animated PNG \(APNG\), not a video") as e:
        enh.enhance_file(tmp_path / name)
    assert e.value.hint == f"rename it to {renamed} and run again", e.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # (no H.264 video of it)


def test_a_still_png_named_gif_is_refused_with_a_rename_hint(tmp_path, enh):
    Image.new("RGB", (96, 64), (90, 120, 150)).save(tmp_path / "still.gif", "PNG")
    with pytest.raises(NotMediaError, match=r"still\.gif is a PNG picture, not a video") as e:
        enh.enhance_file(tmp_path / "still.gif")
    assert e.value.hint == "rename it to still.png and run again", e.value.hint


def test_the_cli_writes_an_apng_as_one_and_takes_image_format_apng(tmp_path, cli_env, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _apng(tmp_path / "clip.apng")
    assert main(["enhance", "clip.apng", *cli_env]) == 0, capsys.readouterr().err
    with Image.open("clip_enhanced.apng") as im:
        assert im.n_frames == 3
    # (.apng and .png are one format, as .jpeg and .jpg are: neither name is refused for the other)
    assert main(["enhance", "clip.apng", "-o", "again.png", "--image-format", "apng", *cli_env]) == 0, \
        capsys.readouterr().err
    assert main(["enhance", "clip.apng", "--image-format", "png", *cli_env]) == 0, capsys.readouterr().err
    for name in ("again.png", "clip_enhanced.png"):
        with Image.open(name) as im:
            assert im.n_frames == 3
