"""Session 31 (misc): a 16-bit LZW TIFF came back as deflate, 1.3x bigger, and nothing said so
(the 8-bit writer keeps LZW, and says where it cannot keep a compression): the 16-bit writer
(tifffile) wrote deflate for every compressed input. It now writes the input's compression where
tifffile can (LZW, PackBits, zstd need imagecodecs) and says where it writes deflate instead."""
from __future__ import annotations

import numpy as np


def _lzw16(path, face):
    import cv2

    a = np.asarray(face.resize((192, 128))).astype(np.uint16) * 257
    a += np.random.default_rng(0).integers(0, 200, a.shape, dtype=np.uint16)
    assert cv2.imwrite(str(path), a[..., ::-1])  # (OpenCV writes LZW, tifffile here does not)
    import tifffile

    with tifffile.TiffFile(path) as t:
        assert t.pages[0].compression == 5 and t.pages[0].dtype == np.uint16
    return a


def test_a_16bit_lzw_tiff_keeps_lzw_or_says_it_became_deflate(tmp_path, enh, face):
    import tifffile

    from stream_gpen.io._image import _tifffile_writes

    src = _lzw16(tmp_path / "scan.tif", face)
    s = enh.enhance_file(tmp_path / "scan.tif", tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as t:
        page = t.pages[0]
        assert page.dtype == np.uint16 and page.shape == src.shape
        said = [f for f in s.fallbacks if "TIFF compression (tiff_lzw)" in f]
        if _tifffile_writes("lzw"):  # (imagecodecs installed)
            assert page.compression == 5 and page.predictor == 2 and not said, s.fallbacks
        else:
            assert page.compression == 8 and page.predictor == 2  # deflate, with its predictor
            assert len(said) == 1 and "written losslessly as deflate instead" in said[0], s.fallbacks
            assert "pip install imagecodecs" in said[0]


def test_a_16bit_deflate_tiff_stays_deflate_unsaid(tmp_path, enh, face):
    import tifffile

    a = np.asarray(face.resize((192, 128))).astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "d.tif", a, photometric="rgb", compression="zlib", predictor=True)
    s = enh.enhance_file(tmp_path / "d.tif", tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as t:
        assert t.pages[0].compression == 8 and t.pages[0].dtype == np.uint16
    assert not any("TIFF compression" in f for f in s.fallbacks), s.fallbacks


def test_lzw_is_written_where_tifffile_can(tmp_path, enh, face, monkeypatch):
    """Where imagecodecs is installed LZW is written back: tifffile's writer is stood in for by one
    that records what it was asked for (imagecodecs is not a dependency)."""
    import tifffile

    from stream_gpen.io import _image

    asked = []
    real_write = tifffile.TiffWriter.write

    def write(self, data, *a, compression=None, **kw):
        asked.append(compression)
        return real_write(self, data, *a, compression="zlib" if compression == "lzw" else compression, **kw)

    monkeypatch.setattr(tifffile.TiffWriter, "write", write)
    monkeypatch.setattr(_image, "_tifffile_writes", lambda c: True)
    _lzw16(tmp_path / "scan.tif", face)
    s = enh.enhance_file(tmp_path / "scan.tif", tmp_path / "out.tif")
    assert asked == ["lzw"] and not any("TIFF compression" in f for f in s.fallbacks), (asked, s.fallbacks)

