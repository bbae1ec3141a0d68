"""Session 21 (photos21): a real Ultra HDR JPEG (its XMP says hdrgm:Version, which Pillow opens as
a plain JPEG, not an MPO) keeps its gain map through the MPF index (it was taken for a trailer:
appended, unindexed); the gain map is turned with its photo when EXIF turns it upright."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from stream_gpen.io._image import _jpeg_segments, _read_gain_map, _with_gain_map

REAL_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            b'<rdf:Description xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/" hdrgm:Version="1.0"/>'
            b'</rdf:RDF></x:xmpmeta>')
ISO = b"\xff\xe2" + (2 + 28 + 4).to_bytes(2, "big") + b"urn:iso:std:iso:ts:21496:-1\x00" + b"\x00\x00\x00\x00"


def _ultra_hdr(path, shared, orientation: int):
    """A phone's Ultra HDR JPEG: primary (stored turned for ``orientation`` 6) with the real hdrgm
    XMP, the ISO 21496-1 segment, an MPF index and a gain map (a left-to-right ramp, a quarter of
    the stored size, with its own hdrgm XMP) after the primary's end."""
    base = Image.open(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg").convert("RGB").resize((480, 320))
    stored = base if orientation == 1 else base.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = orientation
    b = io.BytesIO()
    stored.save(b, "JPEG", quality=90, exif=exif.tobytes(), xmp=REAL_XMP)
    ramp = np.tile(np.linspace(0, 255, stored.width // 4).astype(np.uint8), (stored.height // 4, 1))
    g = io.BytesIO()
    Image.fromarray(ramp).save(g, "JPEG", quality=95, xmp=b'<x hdrgm:GainMapMax="2.0"/>')
    path.write_bytes(_with_gain_map(b.getvalue(), g.getvalue(), ISO))
    return path


def _gain_of(path):
    data = path.read_bytes()
    with Image.open(path) as im:
        got = _read_gain_map(im, data)
        size = im.size
    return size, got


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_real_ultra_hdr_jpeg_keeps_its_indexed_gain_map_turned_with_it(tmp_path, shared, enh, orientation):
    src = _ultra_hdr(tmp_path / "PXL.jpg", shared, orientation)
    with Image.open(src) as im:
        assert im.format == "JPEG"  # (Pillow's word for a real one: the case this is about)
    size, got = _gain_of(src)
    assert "gain_map" in got and "gain_map_iso" in got
    s = enh.enhance_file(src, tmp_path / "out.jpg")
    assert not any("motion photo" in f for f in s.fallbacks), s.fallbacks
    out_size, out = _gain_of(tmp_path / "out.jpg")
    assert out_size == (480, 320) and "gain_map" in out and "gain_map_iso" in out
    assert not (tmp_path / "out.jpg").read_bytes().endswith(out["gain_map"] * 2)  # (one map, not a trailer too)
    with Image.open(io.BytesIO(out["gain_map"])) as g:
        ramp = np.asarray(g.convert("L"), np.float32)
        segs = [seg for _, m, seg in _jpeg_segments(out["gain_map"])]
    assert ramp.shape == (80, 120)  # turned with the photo: a quarter of the upright size
    # the ramp runs along the photo's upright width when it was stored that way, else along its height
    along_x = np.abs(np.diff(ramp.mean(0))).mean() > np.abs(np.diff(ramp.mean(1))).mean()
    assert along_x == (orientation == 1)
    assert any(b"GainMapMax" in seg for seg in segs)  # its own metadata carried over


def test_a_bmp_keeps_its_dpi(tmp_path, enh):
    """photos21: BMP output was written at Pillow's 96 dpi (a 300-dpi scan)."""
    src = tmp_path / "scan.bmp"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(src, dpi=(300, 300))
    enh.enhance_file(src, tmp_path / "o.bmp")
    enh.enhance_file(src, tmp_path / "o2.bmp")
    with Image.open(tmp_path / "o.bmp") as im:
        assert [round(d) for d in im.info["dpi"]] == [300, 300]


def test_a_turned_422_jpeg_is_written_444(tmp_path, enh):
    """photos21: a camera's 4:2:2 JPEG turned upright was written 4:2:2 again: its colour halved both ways."""
    from PIL import JpegImagePlugin

    rng = np.random.default_rng(2)
    exif = Image.Exif()
    exif[0x0112] = 6
    for orient, want in ((6, 0), (1, 1)):
        exif[0x0112] = orient
        src = tmp_path / f"cam{orient}.jpg"
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(src, quality=92, subsampling=1,
                                                                                   exif=exif.tobytes())
        enh.enhance_file(src, tmp_path / f"o{orient}.jpg")
        with Image.open(tmp_path / f"o{orient}.jpg") as im:
            assert JpegImagePlugin.get_sampling(im) == want
