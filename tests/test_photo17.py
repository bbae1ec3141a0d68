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
