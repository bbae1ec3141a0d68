"""Hunt 20 (photos20): a photo in which no face is found is copied as it is, byte for byte (it was
encoded again: a JPEG lost up to 8 levels for nothing); a 16-bit CMYK TIFF is said as such, with
no OpenCV lines on stderr; a turned 16-bit TIFF does not keep tifffile's stale shape note."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from stream_gpen.io._image import ImageSink


@pytest.fixture
def copying(monkeypatch):
    monkeypatch.setattr(ImageSink, "copy_unchanged", True)  # (the suite's default encodes: conftest)


def _noise(path, fmt="JPEG", **kw):
    Image.fromarray(np.random.default_rng(5).integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(path, fmt, **kw)
    return path


def test_a_photo_without_faces_is_copied_and_one_with_faces_is_restored(tmp_path, enh, shared, copying, caplog):
    src = _noise(tmp_path / "noface.jpg", quality=90)
    with caplog.at_level(logging.INFO, logger="stream_gpen.io._image"):
        s = enh.enhance_file(src)
    assert s.faces_restored == 0 and s.frames_out == 1
    assert (tmp_path / "noface_enhanced.jpg").read_bytes() == src.read_bytes()
    assert "written as copies of their input" in caplog.text
    with Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg") as im:
        im.convert("RGB").save(tmp_path / "face.jpg", quality=90)
    s = enh.enhance_file(tmp_path / "face.jpg")
    assert s.faces_restored >= 1
    assert (tmp_path / "face_enhanced.jpg").read_bytes() != (tmp_path / "face.jpg").read_bytes()


def test_what_is_not_copied(tmp_path, enh, copying):
    src = _noise(tmp_path / "a.jpg")
    enh.enhance_file(src, tmp_path / "a.png")  # another format: written as PNG
    with Image.open(tmp_path / "a.png") as im:
        assert im.format == "PNG"
    turned = Image.fromarray(np.random.default_rng(6).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    turned.save(tmp_path / "t.jpg", exif=exif)
    enh.enhance_file(tmp_path / "t.jpg")  # written upright, as every output is
    with Image.open(tmp_path / "t_enhanced.jpg") as im:
        assert im.size == (90, 120) and im.getexif().get(0x0112, 1) == 1


def test_a_folder_copies_its_photos_without_faces(tmp_path, enh, copying):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    a = _noise(root / "a.png", "PNG")
    b = _noise(root / "sub" / "b.webp", "WEBP", quality=80)
    s = enh.enhance_file(root, tmp_path / "out")
    assert s.frames_out == 2 and not s.skipped
    assert (tmp_path / "out" / "a.png").read_bytes() == a.read_bytes()
    assert (tmp_path / "out" / "sub" / "b.webp").read_bytes() == b.read_bytes()
    # an existing output is still refused, and --overwrite still redoes it
    from stream_gpen.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        enh.enhance_file(a, tmp_path / "out" / "a.png")
    enh.enhance_file(a, tmp_path / "out" / "a.png", overwrite=True)
    assert not list((tmp_path / "out").glob(".*tmp*"))


def test_a_16_bit_cmyk_tiff_is_said_as_such_without_opencv_noise(tmp_path, enh, capfd):
    tifffile = pytest.importorskip("tifffile")
    cmyk = np.random.default_rng(7).integers(0, 65535, (40, 50, 4), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", cmyk, photometric="separated")
    enh.enhance_file(tmp_path / "c.tif")
    err = capfd.readouterr().err
    assert "[ERROR" not in err and "WARN:" not in err, err
    with Image.open(tmp_path / "c_enhanced.tif") as im:
        assert im.mode == "RGB"


def test_a_turned_16_bit_tiff_keeps_no_stale_shape_note(tmp_path, enh):
    tifffile = pytest.importorskip("tifffile")
    a = (np.random.default_rng(8).integers(0, 255, (40, 64, 3)).astype(np.uint16) * 257)
    tifffile.imwrite(tmp_path / "t.tif", a, photometric="rgb", extratags=[(274, 3, 1, 6, True)])
    enh.enhance_file(tmp_path / "t.tif")
    with tifffile.TiffFile(tmp_path / "t_enhanced.tif") as t:
        page = t.pages[0]
        assert page.shape == (64, 40, 3) and page.dtype == np.uint16
        desc = page.tags.get("ImageDescription")
        assert desc is None or "[40, 64" not in str(desc.value), desc.value


def test_a_photo_without_faces_written_over_itself_is_left_as_it_is(tmp_path, enh, copying):
    src = _noise(tmp_path / "a.jpg", quality=90)
    before = src.read_bytes()
    for _ in range(3):  # (each pass encoded it again: up to 64 levels moved, 11.6 KB -> 13.5 KB)
        enh.enhance_file(src, src, overwrite=True)
    assert src.read_bytes() == before
