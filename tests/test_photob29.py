"""Session 29 (photob): a TIFF's IPTC into a JPEG's APP13 (it rode inside the EXIF block, where
no photo app looks), multi-page 16-bit TIFFs kept at 16 bits, a note naming the hidden temporary
file, `info`'s size of a sideways TIFF given twice turned, and XMP sizes left stale when a sideways
photo was turned upright."""
from __future__ import annotations

import io
import re
import struct

import numpy as np
import pytest
from PIL import Image

CAPTION = b"\x1c\x02\x78" + struct.pack(">H", 23) + b"Grandma at the seaside."  # 2:120 Caption-Abstract
KEYWORD = b"\x1c\x02\x19" + struct.pack(">H", 4) + b"lake"  # 2:25 Keywords
IPTC = b"\x1c\x02\x00\x00\x02\x00\x04" + CAPTION + KEYWORD  # (2:00 record version first, as writers put it)


def _app13_iptc(data: bytes) -> bytes | None:
    """The IPTC record (resource 0x0404) of a JPEG's APP13 segments, parsed by hand."""
    stream, i = b"", 2
    while data[i] == 0xFF and data[i + 1] != 0xDA:
        n = int.from_bytes(data[i + 2:i + 4], "big")
        if data[i + 1] == 0xED and data[i + 4:i + 18] == b"Photoshop 3.0\x00":
            stream += data[i + 18:i + 2 + n]
        i += 2 + n
    j = 0
    while j < len(stream) and stream[j:j + 4] == b"8BIM":
        rid, name = int.from_bytes(stream[j + 4:j + 6], "big"), stream[j + 6]
        k = j + 7 + name + ((name + 1) & 1)
        size = int.from_bytes(stream[k:k + 4], "big")
        if rid == 0x0404:
            return stream[k + 4:k + 4 + size]
        j = k + 4 + size + (size & 1)
    return None


def _tiff_with_iptc(path, face, *, deep: bool = False, as_longs: bool = False, extratags=()):
    """A TIFF with the IPTC record in tag 33723: as bytes, or as Photoshop stores it (4-byte LONGs,
    zero-padded)."""
    import tifffile

    a = np.asarray(face.resize((192, 128)))
    if deep:
        a = a.astype(np.uint16) * 257 + 3  # (not a multiple of 257: 16-bit detail)
    if as_longs:
        padded = IPTC + b"\x00" * (-len(IPTC) % 4)
        tag = (33723, "I", len(padded) // 4, struct.unpack(f"<{len(padded) // 4}I", padded), True)
    else:
        tag = (33723, "B", len(IPTC), IPTC, True)
    tifffile.imwrite(path, a, photometric="rgb", extratags=[tag, *extratags])
    return path


@pytest.mark.parametrize("as_longs", [False, True])
def test_a_tiffs_iptc_goes_into_a_jpegs_app13_not_its_exif(tmp_path, enh, face, as_longs):
    """hunt29: a TIFF's IPTC written as JPEG had no APP13 (Pillow and photo apps saw none), only a tag
    33723 inside the EXIF block, unsaid. Photoshop's LONG-stored record comes back without its padding."""
    from PIL import IptcImagePlugin

    src = _tiff_with_iptc(tmp_path / "scan.tif", face, as_longs=as_longs)
    s = enh.enhance_file(src, tmp_path / "out.jpg")
    data = (tmp_path / "out.jpg").read_bytes()
    assert _app13_iptc(data) == IPTC
    with Image.open(tmp_path / "out.jpg") as im:
        assert 33723 not in im.getexif()  # (not twice)
        assert IptcImagePlugin.getiptcinfo(im)[(2, 120)] == b"Grandma at the seaside."
    assert not any("IPTC" in f for f in s.fallbacks), s.fallbacks


def test_a_tiffs_iptc_is_said_dropped_where_the_output_has_no_place(tmp_path, enh, face):
    """As a JPEG's IPTC is: PNG output has none (it rode unsaid in the PNG's EXIF)."""
    src = _tiff_with_iptc(tmp_path / "scan.tif", face)
    s = enh.enhance_file(src, tmp_path / "out.png")
    assert any(f.startswith("IPTC (TIFF tag 33723") and "was dropped" in f for f in s.fallbacks), s.fallbacks
    with Image.open(tmp_path / "out.png") as im:
        assert 33723 not in im.getexif()


def test_a_tiffs_iptc_stays_tag_33723_in_tiff_output_16_bit_too(tmp_path, enh, face):
    """TIFF out: the record in tag 33723, 8-bit and 16-bit alike (the 16-bit writer dropped it:
    "TIFF tags [33723] were dropped")."""
    import tifffile
    from PIL import IptcImagePlugin

    for deep in (False, True):
        src = _tiff_with_iptc(tmp_path / f"d{deep}.tif", face, deep=deep, as_longs=True)
        s = enh.enhance_file(src, tmp_path / f"o{deep}.tif")
        with tifffile.TiffFile(tmp_path / f"o{deep}.tif") as t:
            page = t.pages[0]
            assert page.dtype == (np.uint16 if deep else np.uint8)
            assert bytes(page.tags[33723].value) == IPTC
        with Image.open(tmp_path / f"o{deep}.tif") as im:
            assert IptcImagePlugin.getiptcinfo(im)[(2, 25)] == b"lake"
        assert not any("33723" in f or "IPTC" in f for f in s.fallbacks), s.fallbacks


def test_info_lists_a_tiffs_iptc_as_written_back(tmp_path, face):
    from stream_gpen.commands import describe_input

    plan = describe_input(str(_tiff_with_iptc(tmp_path / "scan.tif", face)))["plan"]
    assert any("IPTC" in line and "written back" in line for line in plan), plan


def test_server_jpeg_answer_of_a_tiff_upload_has_its_iptc_in_app13():
    pytest.importorskip("fastapi")
    import tifffile

    from test_server import KEY, FakeEnhancer, client_for

    buf = io.BytesIO()
    tifffile.imwrite(buf, np.full((48, 64, 3), 100, np.uint8), photometric="rgb",
                     extratags=[(33723, "B", len(IPTC), IPTC, True), (315, "s", 0, "J. Smith", True)])
    with client_for(FakeEnhancer()) as c:
        r = c.post("/v1/images:enhance", content=buf.getvalue(), params={"format": "jpeg"},
                   headers={**KEY, "Content-Type": "image/tiff"})
        assert r.status_code == 200, r.text
        assert _app13_iptc(r.content) == IPTC
        with Image.open(io.BytesIO(r.content)) as im:
            assert 33723 not in im.getexif() and im.getexif().get(315) == "J. Smith"


# --- multi-page 16-bit TIFFs ---------------------------------------------------------------------
def _deep_pages(face):
    a = np.asarray(face.resize((192, 128)))
    rng = np.random.default_rng(0)
    first = a.astype(np.uint16) * 257 + rng.integers(0, 200, a.shape, dtype=np.uint16)
    return first, np.ascontiguousarray(first[::-1, ::-1])  # (the second upside down: no face found in it)


def test_a_multi_page_16bit_tiff_comes_back_16bit_every_page(tmp_path, enh, face):
    """hunt29: a 2-page 16-bit TIFF came back 8-bit ("its 16-bit pages or frames are restored and
    written at 8 bits"), where README says 16-bit TIFF in, 16-bit out. Its preview stays a preview."""
    import tifffile

    first, second = _deep_pages(face)
    src = tmp_path / "album.tif"
    with tifffile.TiffWriter(src) as w:
        w.write(first, photometric="rgb")
        w.write(np.ascontiguousarray(first[::4, ::4]), photometric="rgb", subfiletype=1)
        w.write(second, photometric="rgb")
    s = enh.enhance_file(src, tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as t:
        got = [(p.shape, p.dtype, int(p.subfiletype or 0)) for p in t.pages]
        assert got == [((128, 192, 3), np.uint16, 0), ((32, 48, 3), np.uint16, 1), ((128, 192, 3), np.uint16, 0)]
        assert np.array_equal(t.pages[2].asarray(), second)  # (no face: every 16-bit level as it was)
        assert (t.pages[0].asarray() == first).mean() > 0.5  # (around the face: as it was)
    assert not any("8 bits" in f for f in s.fallbacks), s.fallbacks


def test_a_multi_page_16bit_tiffs_lzw_later_page_and_an_8bit_page(tmp_path, enh, face):
    """A page read by OpenCV's multi-page decoder (LZW: tifffile here has no LZW codec), and a
    file whose second page is 8-bit: each page keeps its own depth."""
    import cv2
    import tifffile

    first, second = _deep_pages(face)
    src = tmp_path / "lzw.tif"
    assert cv2.imwritemulti(str(src), [first[..., ::-1], second[..., ::-1]])  # (OpenCV: LZW, BGR in)
    enh.enhance_file(src, tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as t:
        assert [p.dtype for p in t.pages] == [np.uint16, np.uint16]
        assert np.array_equal(t.pages[1].asarray(), second)
    mixed = tmp_path / "mixed.tif"
    eight = np.ascontiguousarray((second // 257).astype(np.uint8))
    with tifffile.TiffWriter(mixed) as w:
        w.write(first, photometric="rgb")
        w.write(eight, photometric="rgb")
    enh.enhance_file(mixed, tmp_path / "mixed_out.tif")
    with tifffile.TiffFile(tmp_path / "mixed_out.tif") as t:
        assert [p.dtype for p in t.pages] == [np.uint16, np.uint8]
        assert np.array_equal(t.pages[1].asarray(), eight)


def test_a_multi_page_16bit_tiff_as_png_says_8_bits(tmp_path, enh, face):
    """A multi-page PNG (APNG) output is written at 8 bits here: said as such."""
    import tifffile

    first, second = _deep_pages(face)
    tifffile.imwrite(tmp_path / "m.tif", np.stack([first, second]), photometric="rgb")
    s = enh.enhance_file(tmp_path / "m.tif", tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as im:
        assert im.n_frames == 2
    assert any("multi-page pictures were written at 8 bits" in f for f in s.fallbacks), s.fallbacks


# --- the hidden temporary file's name -------------------------------------------------------------
def test_a_16bit_tiffs_dropped_tags_are_said_of_the_output_not_its_temporary_file(tmp_path, enh, face):
    """hunt29: "TIFF tags [...] were dropped ... (first: .x_enhanced.d3403c09.tmp.tif)", in the
    summary and --report too."""
    src = _tiff_with_iptc(tmp_path / "scan.tif", face, deep=True, extratags=[(65000, "s", 0, "private", True)])
    s = enh.enhance_file(src, tmp_path / "out.tif")
    notes = [f for f in s.fallbacks if "TIFF tags" in f]
    assert notes and all(f.endswith("(first: out.tif)") for f in notes), s.fallbacks
    assert "65000" in notes[0] and "33723" not in notes[0]


# --- a TIFF's orientation: info and the reader ------------------------------------------------------
def _sideways_tiff(path, face):
    """A TIFF stored 64x96 (w x h) with Orientation 6: upright it is 96x64."""
    import tifffile

    tifffile.imwrite(path, np.rot90(np.asarray(face), 1).copy(), photometric="rgb",
                     extratags=[(274, "H", 1, 6, True)])
    return path


def test_info_gives_a_sideways_tiffs_stored_size_and_its_upright_one(tmp_path, face):
    """hunt29: Pillow reports a TIFF's size already turned by its orientation, and info turned it
    again: "size 491x310, size_upright 310x491" for a TIFF stored 310x491 (enhance writes 491x310)."""
    from stream_gpen.commands import describe_input

    src = _sideways_tiff(tmp_path / "t.tif", face)
    d = describe_input(str(src))
    assert d["size"] == [64, 96] and d["size_upright"] == [96, 64]
    from stream_gpen.io._image import stored_size

    with Image.open(src) as im:
        assert stored_size(im) == (64, 96)


def test_the_readers_fallback_turn_does_not_turn_a_tiff_pillow_turned(tmp_path, face, monkeypatch):
    """Where Pillow's exif_transpose fails (a tag of the wrong type), the turn is made by the
    orientation: a TIFF is already turned by Pillow as it loads, and was turned a second time."""
    from PIL import ImageOps

    from stream_gpen.io._image import _load

    real = ImageOps.exif_transpose

    def failing(image, *, in_place=False):
        if not in_place:  # (Pillow's own, as a TIFF loads, goes on)
            raise ValueError("a tag of the wrong type")
        return real(image, in_place=True)

    monkeypatch.setattr(ImageOps, "exif_transpose", failing)
    rgb = _load(_sideways_tiff(tmp_path / "t.tif", face))[0]
    assert rgb.shape == (64, 96, 3) and np.abs(rgb.astype(int) - np.asarray(face, int)).mean() < 1


# --- XMP's stated size ---------------------------------------------------------------------------------
_XMP_ATTRS = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
              '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
              'tiff:Orientation="6" tiff:ImageWidth="96" tiff:ImageLength="64" exif:PixelXDimension="96" '
              'exif:PixelYDimension="64"/></rdf:RDF></x:xmpmeta>')
_XMP_ELEMENTS = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                 '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/">'
                 '<tiff:Orientation>6</tiff:Orientation><tiff:ImageWidth>96</tiff:ImageWidth>'
                 '<tiff:ImageLength>64</tiff:ImageLength><exif:PixelXDimension>96</exif:PixelXDimension>'
                 '<exif:PixelYDimension>64</exif:PixelYDimension></rdf:Description></rdf:RDF></x:xmpmeta>')


def _sizes(xmp: str) -> dict[str, int]:
    return {m[0]: int(m[1]) for m in re.findall(r"(tiff:Image\w+|exif:Pixel\w+)(?:=\"|>)(\d+)", xmp)}


@pytest.mark.parametrize("xmp", [_XMP_ATTRS, _XMP_ELEMENTS], ids=["attributes", "elements"])
@pytest.mark.parametrize("ext", ["jpg", "png", "tif"])
def test_xmp_states_the_written_size_of_a_photo_turned_upright(tmp_path, enh, face, xmp, ext):
    """hunt29: a sideways photo written 96x64 upright kept XMP tiff:ImageWidth="64"
    tiff:ImageLength="96" (and exif:PixelX/YDimension) while its EXIF was updated."""
    exif = Image.Exif()
    exif[0x0112] = 6
    src = tmp_path / "s.jpg"
    face.rotate(90, expand=True).save(src, "JPEG", quality=95, exif=exif.tobytes(),
                                      xmp=xmp.replace('"96"', '"X"').replace('"64"', '"96"').replace('"X"', '"64"')
                                      .replace(">96<", ">X<").replace(">64<", ">96<").replace(">X<", ">64<").encode())
    enh.enhance_file(src, tmp_path / f"o.{ext}")
    with Image.open(tmp_path / f"o.{ext}") as im:
        assert im.size == (96, 64)
        raw = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp") or im.tag_v2.get(700)
        text = raw.decode() if isinstance(raw, bytes) else raw
    assert _sizes(text) == {"tiff:ImageWidth": 96, "tiff:ImageLength": 64, "exif:PixelXDimension": 96,
                            "exif:PixelYDimension": 64}, text


def test_upright_xmp_sets_the_size_it_is_given_and_swaps_without_one():
    from stream_gpen.io._image import upright_xmp

    stored = _XMP_ELEMENTS.replace(">96<", ">X<").replace(">64<", ">96<").replace(">X<", ">64<")
    assert _sizes(upright_xmp(stored, turned=True)) == _sizes(_XMP_ELEMENTS)  # (the server's: no size known)
    fixed = upright_xmp(_XMP_ATTRS.encode(), size=(200, 100))
    assert isinstance(fixed, bytes) and _sizes(fixed.decode())["tiff:ImageWidth"] == 200
