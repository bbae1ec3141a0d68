"""Session 24: ``max_pixels`` bounds photos too (it bounded video frames only)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stream_gpen.errors import PayloadTooLargeError


def _photo(path, w, h, fmt=None):
    Image.fromarray(np.random.default_rng(w).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, fmt)
    return path


@pytest.mark.parametrize("untrusted", [False, True])
def test_a_photo_over_max_pixels_is_refused(enh, tmp_path, untrusted):
    """``enhance_file(photo, untrusted=True, max_pixels=N)`` (an upload service's call) decoded and
    restored a photo of any size: the limit was for video frames only (api24 noticed). A photo
    over it is now refused from its header, before decoding; one within it is restored."""
    src = _photo(tmp_path / "big.png", 120, 100)
    with pytest.raises(PayloadTooLargeError, match="120x100 = 12000 pixels, over the limit of 11999"):
        enh.enhance_file(src, tmp_path / "out.png", untrusted=untrusted, max_pixels=11999)
    assert not (tmp_path / "out.png").exists()
    enh.enhance_file(src, tmp_path / "out.png", untrusted=untrusted, max_pixels=12000)
    assert Image.open(tmp_path / "out.png").size == (120, 100)


def test_a_folders_photo_over_max_pixels_is_skipped_and_listed(enh, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _photo(folder / "small.jpg", 60, 40)
    _photo(folder / "large.jpg", 200, 150)
    summary = enh.enhance_file(folder, tmp_path / "out", max_pixels=10000)
    assert (tmp_path / "out" / "small_enhanced.jpg").exists() or any((tmp_path / "out").rglob("small*"))
    assert not any((tmp_path / "out").rglob("large*"))
    assert any("large.jpg" in s and "over the limit of 10000" in s for s in summary.skipped), summary.skipped
