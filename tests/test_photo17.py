"""Photos, hunt 17: a valid TIFF that Pillow has no mode for (32-bit float RGB from an HDR or
scientific export, 16-bit grey + alpha) was skipped as "cannot identify image file", as if it
were no picture at all."""
from __future__ import annotations

import re

import numpy as np
import pytest
import tifffile

from stream_gpen.errors import NotMediaError


@pytest.mark.parametrize("name, data, kw, kind", [
    ("f32.tif", np.full((20, 30, 3), 0.5, np.float32), {"photometric": "rgb"}, "a 32-bit floating-point RGB TIFF"),
    ("la16.tif", np.full((20, 30, 2), 30000, np.uint16), {"photometric": "minisblack", "extrasamples": ["unassalpha"]},
     "a 16-bit grey + alpha TIFF"),
])
def test_a_tiff_pillow_cannot_open_says_what_it_holds(tmp_path, enh, name, data, kw, kind):
    tifffile.imwrite(tmp_path / name, data, **kw)
    with pytest.raises(NotMediaError, match=re.escape(f"{kind}, which is not read here")) as e:
        enh.enhance_file(tmp_path / name, tmp_path / "o.tif")
    assert "cannot identify" not in str(e.value) and "16-bit RGB" in e.value.hint


def test_a_file_that_is_no_tiff_still_says_so(tmp_path, enh):
    (tmp_path / "x.tif").write_bytes(b"not a picture at all" * 10)
    with pytest.raises(NotMediaError, match="cannot read .* as an image"):
        enh.enhance_file(tmp_path / "x.tif", tmp_path / "o.tif")


@pytest.mark.parametrize("layout", ["planar", "planar_zip", "white_is_zero"])
def test_deep_tiffs_of_layouts_pillow_misreads_come_back_as_they_were(tmp_path, enh, layout):
    """photos17: a 16-bit TIFF with separate colour planes came back scrambled (73 grey levels off,
    exit 0), and a 16-bit WhiteIsZero grey scan as a negative: neither Pillow nor OpenCV decode
    those layouts right at 16 bits. tifffile reads them."""
    from PIL import Image

    rng = np.random.default_rng(3)
    small = rng.integers(0, 255, (12, 9, 3), np.uint8)
    up = np.asarray(Image.fromarray(small).resize((90, 120), Image.BICUBIC)).astype(np.uint16) * 257
    src = tmp_path / f"{layout}.tif"
    if layout == "white_is_zero":
        grey = up[..., 0]
        tifffile.imwrite(src, 65535 - grey, photometric="miniswhite")
        want = np.repeat(grey[..., None], 3, axis=2)
    else:
        kw = {"compression": "zlib"} if layout == "planar_zip" else {}
        tifffile.imwrite(src, np.moveaxis(up, 2, 0), photometric="rgb", planarconfig="separate", **kw)
        want = up
    s = enh.enhance_file(src, tmp_path / "o.tif")
    assert not any("written at 8 bits" in f for f in s.fallbacks), s.fallbacks
    with tifffile.TiffFile(tmp_path / "o.tif") as t:
        page = t.pages[0]
        got = page.asarray()
        shown = 65535 - got if int(page.photometric) == 0 else got
    if shown.ndim == 3 and shown.shape[0] == 3 and shown.shape[2] != 3:
        shown = np.moveaxis(shown, 0, -1)
    if shown.ndim == 2:
        shown = np.repeat(shown[..., None], 3, axis=2)
    assert got.dtype == np.uint16
    assert np.abs(shown.astype(float) - want.astype(float)).mean() / 257 < 0.5  # (was 73 levels / a negative)
