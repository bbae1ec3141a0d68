"""Session 30 (api): on_progress of a single photo of several pictures counts its pictures in the
total as in the count done (a 3-frame WebP said (0, 1), (0, 1), (3, 1): done past its total)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def webp(tmp_path):
    rng = np.random.default_rng(5)
    ims = [Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)) for _ in range(3)]
    ims[0].save(tmp_path / "a.webp", save_all=True, append_images=ims[1:], duration=[100, 300, 200], loop=0)
    return tmp_path / "a.webp"


@pytest.mark.parametrize("out,written", [("out.webp", 3), ("out.tif", 3), ("out.jpg", 1)])
def test_a_multi_frame_photo_counts_its_frames(enh, webp, tmp_path, out, written):
    calls = []
    s = enh.enhance_file(webp, tmp_path / out, on_progress=lambda *a: calls.append(a[:2]))
    assert s.frames_out == written
    assert all(t == 3 and d <= t for d, t in calls), calls
    assert calls[-1] == (3, 3)  # (a JPEG holds one: the pages it leaves out are done too)


def test_a_one_picture_photo_still_counts_one(enh, tmp_path):
    Image.fromarray(np.zeros((40, 56, 3), np.uint8)).save(tmp_path / "a.png")
    calls = []
    enh.enhance_file(tmp_path / "a.png", tmp_path / "o.png", on_progress=lambda *a: calls.append(a[:2]))
    assert calls == [(1, 1)]
