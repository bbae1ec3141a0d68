"""Session 26 (photos26): a face-less camera JPEG with an MPF preview (Pillow: MPO) is copied byte for
byte, and the "main photo is restored" note is given only where it was; a photo stored sideways keeps
its horizontal and vertical resolution on the right axes; a TIFF cut before its first IFD is said to be
cut off, without tifffile's own log line on stderr."""
from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
from PIL import Image


def _landscape(w: int = 120, h: int = 80) -> Image.Image:
    """A picture with no face in it: a graded sky and some noise."""
    rng = np.random.default_rng(1)
    a = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3)) * [1, 0.8, 0.5] + rng.normal(0, 8, (h, w, 3))
    return Image.fromarray(a.clip(0, 255).astype(np.uint8))


def test_a_faceless_camera_jpeg_with_a_preview_is_copied_byte_for_byte(tmp_path, enh, shared, monkeypatch):
    """photos26 #1: an MPO (a camera JPEG with an MPF preview) with no face was encoded again
    (111,179 -> 102,633 bytes, 0.71 levels off on average, its preview dropped: its format, MPO, was
    compared with the output's, JPEG), and the run said its main photo was restored."""
    from stream_gpen.io._image import ImageSink

    monkeypatch.setattr(ImageSink, "copy_unchanged", True)
    land = _landscape()
    src = tmp_path / "cam.jpg"
    land.save(src, format="MPO", save_all=True, append_images=[land.resize((40, 26))], quality=95)
    with Image.open(src) as im:
        assert im.format == "MPO" and im.n_frames == 2
    s = enh.enhance_file(src, tmp_path / "out.jpg")
    assert s.faces_restored == 0
    assert (tmp_path / "out.jpg").read_bytes() == src.read_bytes()
    assert not any("restored" in f for f in s.fallbacks), s.fallbacks
    # written in another format: the preview goes, said, and not as restored
    s = enh.enhance_file(src, tmp_path / "out.png")
    said = [f for f in s.fallbacks if "main photo" in f]
    assert len(said) == 1 and "(no face found) written on its own" in said[0] and "restored" not in said[0], said
    # one with a face: restored, and said so
    face = Image.open(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg").convert("RGB").resize((320, 240))
    face.save(tmp_path / "face.jpg", format="MPO", save_all=True, append_images=[face.resize((80, 60))])
    s = enh.enhance_file(tmp_path / "face.jpg", tmp_path / "face_out.jpg")
    assert s.faces_restored >= 1
    said = [f for f in s.fallbacks if "main photo" in f]
    assert len(said) == 1 and "a camera's large preview" in said[0] and "restored and written on its own" in said[0]


def _sideways_scan(path, fmt: str) -> None:
    """A face-less picture stored sideways (orientation 6: 40 wide, 64 high as stored) at 300 dpi
    across and 150 dpi down as stored, said by the format's own field, the EXIF and the XMP."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[282], exif[283], exif[296] = 300.0, 150.0, 2
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6" '
           b'tiff:XResolution="300/1" tiff:YResolution="150/1"/></rdf:RDF></x:xmpmeta>')
    _landscape(64, 40).transpose(Image.Transpose.ROTATE_90).save(path, format=fmt, exif=exif, dpi=(300, 150),
                                                                   xmp=xmp)


def _xmp_resolution(xmp) -> tuple[str, str]:
    import re

    text = bytes(xmp).decode() if isinstance(xmp, (bytes, bytearray)) else str(xmp)
    return tuple(re.search(rf'tiff:{a}Resolution="([^"]*)"', text)[1] for a in "XY")


@pytest.mark.parametrize("out_ext", [".jpg", ".png", ".tif"])
def test_a_sideways_photo_keeps_its_resolution_on_the_right_axes(tmp_path, enh, out_ext):
    """photos26 #2: a 464x700 scan at 300 x 150 dpi, orientation 6, was written upright (700x464)
    still at 300 x 150 dpi, in the format's field, the EXIF and the XMP alike: printed 2.33 x 3.09
    inches instead of 4.67 x 1.55. Horizontal and vertical trade places with the axes."""
    src = tmp_path / "scan.jpg"
    _sideways_scan(src, "JPEG")
    with Image.open(src) as im:
        assert im.size == (40, 64) and tuple(im.info["dpi"]) == (300, 150)
    out = tmp_path / f"out{out_ext}"
    enh.enhance_file(src, out)
    with Image.open(out) as im:
        assert im.size == (64, 40)
        assert tuple(round(float(d)) for d in im.info["dpi"]) == (150, 300)
        exif = im.getexif()
        if out_ext != ".tif":  # (a TIFF's resolution is its own tags: those above)
            assert (float(exif[282]), float(exif[283])) == (150.0, 300.0)
        assert exif.get(0x0112, 1) == 1
        assert _xmp_resolution(im.info["xmp"]) == ("150/1", "300/1")


def test_turned_resolution_swaps_the_two_entries_alone():
    from stream_gpen.io._image import _turned_resolution

    exif = Image.Exif()
    exif[282], exif[283], exif[305] = 300.0, 150.0, "scanner"
    block = exif.tobytes()
    turned = Image.Exif()
    turned.load(_turned_resolution(block))
    assert (float(turned[282]), float(turned[283]), turned[305]) == (150.0, 300.0, "scanner")
    exif[282] = 150.0
    assert _turned_resolution(exif.tobytes()) == exif.tobytes()  # (equal: every byte as it was)
    exif[283] = 300
    turned.load(_turned_resolution(exif.tobytes()))  # (of two types: the entries trade places)
    assert (float(turned[282]), float(turned[283])) == (300.0, 150.0)
    del exif[283]
    assert _turned_resolution(exif.tobytes()) == exif.tobytes()  # (one of them: left as it is)
    assert _turned_resolution(b"Exif\x00\x00junk") == b"Exif\x00\x00junk"


def test_the_server_turns_the_resolution_too():
    import io

    from stream_gpen.server._imaging import decode_image

    buf = io.BytesIO()
    _sideways_scan(buf, "JPEG")
    d = decode_image(buf.getvalue(), max_pixels=10**6)
    assert d.pixels.shape[:2] == (40, 64) and d.dpi == (150, 300) and _xmp_resolution(d.xmp) == ("150/1", "300/1")
    exif = Image.Exif()
    exif.load(d.exif)
    assert (float(exif[282]), float(exif[283])) == (150.0, 300.0)


def test_a_tiff_cut_before_its_first_page_is_said_to_be_cut_off(tmp_path, caplog):
    """photos26 #3: a TIFF whose first IFD (written after the pictures) was cut off printed
    tifffile's "<tifffile.TiffPages @N> invalid offset to first page N" on stderr, even under
    --quiet, and was refused as "cannot identify image file"."""
    from stream_gpen.errors import NotMediaError
    from stream_gpen.io._image import _load

    pic = _landscape(200, 150)
    pic.save(tmp_path / "full.tif", compression="tiff_lzw")
    data = (tmp_path / "full.tif").read_bytes()
    first_ifd = int.from_bytes(data[4:8], "little")
    assert first_ifd > len(data) // 2  # (Pillow writes the IFD after its picture)
    (tmp_path / "cut.tif").write_bytes(data[: first_ifd - 100])
    with caplog.at_level(logging.DEBUG), pytest.raises(NotMediaError, match="TIFF that is cut off or damaged") as e:
        _load(tmp_path / "cut.tif")
    assert "cannot identify" not in str(e.value) and "copied or saved whole" in e.value.hint
    # (with no handler of its own, Python's last resort printed tifffile's records on stderr)
    assert not [r for r in caplog.records if r.name.startswith("tifffile")], caplog.records
    # the tifffile logger is as it was, for the host program: its records are not filtered any more
    got: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            got.append(record)

    keep = Keep()
    logger = logging.getLogger("tifffile")
    logger.addHandler(keep)
    try:
        assert not logger.filters
        logger.error("the host's own")
        assert [r.getMessage() for r in got] == ["the host's own"]
    finally:
        logger.removeHandler(keep)


def test_tifffile_is_hushed_for_the_probing_thread_alone():
    from stream_gpen.io._image import _tifffile_hushed

    got: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            got.append(record.getMessage())

    keep = Keep()
    logger = logging.getLogger("tifffile")
    logger.addHandler(keep)
    try:
        with _tifffile_hushed():
            with _tifffile_hushed():  # (nested: still hushed once the inner one is done)
                logger.error("inner")
            logger.error("outer")
            other = threading.Thread(target=logger.error, args=("another thread",))
            other.start()
            other.join()
        logger.error("after")
    finally:
        logger.removeHandler(keep)
    assert got == ["another thread", "after"] and not logger.filters


def test_info_says_a_cut_tiff_is_cut_off(tmp_path):
    from stream_gpen.commands import _describe_image
    from stream_gpen.errors import NotMediaError

    head = b"II*\x00" + (10**6).to_bytes(4, "little") + bytes(200)
    (tmp_path / "cut.tif").write_bytes(head)
    with pytest.raises(NotMediaError, match="TIFF that is cut off or damaged"):
        _describe_image(tmp_path / "cut.tif")
