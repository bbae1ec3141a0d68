"""Session 30 (api): stream() of a photo of several pictures (an animated WebP/APNG, a multi-page
TIFF) numbers and times its frames as the file does; every frame came as index 0 at 0 s, an
APNG's cover among them, while an animated GIF (read as a video) had 0/1/2 at its own times."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image


def _pictures(n=3):
    rng = np.random.default_rng(3)
    return [Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)) for _ in range(n)]


def _timing(frames):
    return [(f.index, f.pts, f.time_base, f.time) for f in frames]


def test_an_animated_webp_gives_its_frames_numbers_and_times(enh, tmp_path):
    ims = _pictures()
    ims[0].save(tmp_path / "a.webp", save_all=True, append_images=ims[1:], duration=[100, 300, 200], loop=0)
    ms = Fraction(1, 1000)
    assert _timing(enh.stream(tmp_path / "a.webp")) == [(0, 0, ms, 0.0), (1, 100, ms, 0.1), (2, 400, ms, 0.4)]


@pytest.mark.parametrize("cover", [False, True])
def test_an_apng_gives_its_animation_as_a_player_shows_it(enh, tmp_path, cover):
    """An APNG whose default image comes before its first frame control is shown only where
    animation is not: no frame of the animation (FFmpeg's reader, a browser, leave it out)."""
    ims = _pictures()
    ims[0].save(tmp_path / "a.png", save_all=True, append_images=ims[1:], duration=[100, 300, 200], loop=0,
                default_image=cover)
    got = list(enh.stream(tmp_path / "a.png"))
    with av.open(str(tmp_path / "a.png")) as c:
        shown = [(f.to_ndarray(format="rgb24"), float(f.time)) for f in c.decode(video=0)]
    assert len(got) == len(shown) == (2 if cover else 3)
    assert [(f.index, f.time) for f in got] == [(k, t) for k, (_, t) in enumerate(shown)]
    for f, (picture, _) in zip(got, shown):  # (no face: each comes back as it is)
        assert np.array_equal(f.image, picture)


def test_a_multipage_tiff_numbers_its_pages(enh, tmp_path):
    ims = _pictures()
    ims[0].save(tmp_path / "p.tif", save_all=True, append_images=ims[1:])
    one = Fraction(1)
    got = list(enh.stream(tmp_path / "p.tif"))
    assert _timing(got) == [(0, 0, one, 0.0), (1, 1, one, 1.0), (2, 2, one, 2.0)]
    assert [f.path for f in got] == [str(tmp_path / "p.tif")] * 3


def test_a_folders_frames_are_numbered_in_order_every_page_one(enh, tmp_path):
    album = tmp_path / "album"
    album.mkdir()
    ims = _pictures()
    ims[0].save(album / "a.webp", save_all=True, append_images=ims[1:], duration=100, loop=0)
    ims[0].save(album / "b.jpg")
    got = list(enh.stream(album))
    assert [(f.index, f.pts, f.time, f.path) for f in got] == [
        (0, 0, 0.0, str(album / "a.webp")), (1, 1, 1.0, str(album / "a.webp")), (2, 2, 2.0, str(album / "a.webp")),
        (3, 3, 3.0, str(album / "b.jpg"))]


def test_a_run_still_restores_and_writes_back_an_apngs_cover(enh, tmp_path):
    """enhance_file keeps the cover (it may hold faces): written back as the cover, not a frame."""
    ims = _pictures()
    ims[0].save(tmp_path / "a.png", save_all=True, append_images=ims[1:], duration=[100, 300, 200], loop=0,
                default_image=True)
    s = enh.enhance_file(tmp_path / "a.png", tmp_path / "out.png")
    with Image.open(s.output) as im:
        assert im.n_frames == 3 and im.info.get("default_image")
    with av.open(s.output) as c:
        assert len(list(c.decode(video=0))) == 2
