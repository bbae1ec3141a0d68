"""Session 30 (docs): a PNG whose picture data is damaged (an IDAT chunk failing its checksum, a bit
flipped in it that zlib still inflates) was restored and written without a word, exit 0: Pillow checks
no IDAT's CRC. README says such a PNG is refused as damaged (exit 2, with the hint to copy it again);
the picture chunks' checksums are now checked (IHDR, PLTE, IDAT, IEND, an APNG's fcTL/fdAT), by the
command line and the image endpoint alike. And a TIFF cut off (its strips past the end) was Pillow's
bare "image file is truncated (647 bytes not processed)" with no hint; now "a TIFF that is cut off
or damaged (it holds N of the M bytes its header gives)" with the hint."""
from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from stream_gpen.errors import InvalidInputError, NotMediaError
from stream_gpen.io._image import _load

HINT = "copy it again from its source"


def _chunk(data: bytes, kind: bytes, nth: int = 0) -> tuple[int, int]:
    """(where the body of the ``nth`` ``kind`` chunk of a PNG starts, its length)."""
    pos = 8
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        if data[pos + 4:pos + 8] == kind:
            if nth == 0:
                return pos + 8, n
            nth -= 1
        pos += 12 + n
    raise AssertionError(f"no {kind!r} chunk")


def _bad_crc(data: bytes, kind: bytes, nth: int = 0) -> bytes:
    at, n = _chunk(data, kind, nth)
    d = bytearray(data)
    d[at + n] ^= 0xFF
    return bytes(d)


def _bit_flipped(data: bytes) -> bytes:
    """``data`` (a PNG) with one bit of its picture data flipped where zlib still inflates it and
    Pillow decodes it without a word, a pixel changed (the first such bit of a fixed walk)."""
    at, n = _chunk(data, b"IDAT")
    with Image.open(io.BytesIO(data)) as im:
        ref = np.asarray(im.convert("RGB"))
    for k in range(n):
        d = bytearray(data)
        d[at + (k * 7919) % n] ^= 1
        try:
            with Image.open(io.BytesIO(bytes(d))) as im:
                x = np.asarray(im.convert("RGB"))
        except (OSError, ValueError, SyntaxError):
            continue
        if not np.array_equal(x, ref):
            return bytes(d)
    raise AssertionError("no such bit")


@pytest.fixture
def png(tmp_path, face):
    face.save(tmp_path / "ok.png")
    return (tmp_path / "ok.png").read_bytes()


def test_pillow_reads_them_without_a_word(png):
    """(what the check is for: Pillow itself says nothing of either)"""
    with Image.open(io.BytesIO(_bad_crc(png, b"IDAT"))) as im:
        im.load()
    flipped = _bit_flipped(png)
    with Image.open(io.BytesIO(flipped)) as a, Image.open(io.BytesIO(png)) as b:
        assert not np.array_equal(np.asarray(a), np.asarray(b))
    at, n = _chunk(flipped, b"IDAT")
    assert zlib.crc32(flipped[at - 4:at + n]) != int.from_bytes(flipped[at + n:at + n + 4], "big")


@pytest.mark.parametrize("damage", ["idat_crc", "bit_flipped", "iend_crc", "plte_crc"])
def test_a_png_with_damaged_picture_chunks_is_refused(tmp_path, png, face, damage, cli_env, capsys):
    from stream_gpen.cli import main

    if damage == "plte_crc":
        face.convert("P").save(tmp_path / "pal.png")
        bad = _bad_crc((tmp_path / "pal.png").read_bytes(), b"PLTE")
    else:
        bad = {"idat_crc": lambda: _bad_crc(png, b"IDAT"), "bit_flipped": lambda: _bit_flipped(png),
               "iend_crc": lambda: _bad_crc(png, b"IEND")}[damage]()
    kind = "PLTE" if damage == "plte_crc" else "IEND" if damage == "iend_crc" else "IDAT"
    (tmp_path / "bad.png").write_bytes(bad)
    with pytest.raises(NotMediaError, match=f"a PNG that is cut off or damaged \\(its {kind} chunk.* fails its checksum"):
        _load(tmp_path / "bad.png")
    assert main(["enhance", str(tmp_path / "bad.png"), "-o", str(tmp_path / "o.png"), *cli_env]) == 2
    err = capsys.readouterr().err
    assert "cut off or damaged" in err and HINT in err
    assert not (tmp_path / "o.png").exists()


def test_an_apng_frame_with_damaged_data_is_refused(tmp_path, face):
    face.save(tmp_path / "anim.png", save_all=True, append_images=[face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)],
              duration=[100, 100])
    (tmp_path / "bad.png").write_bytes(_bad_crc((tmp_path / "anim.png").read_bytes(), b"fdAT"))
    with pytest.raises(NotMediaError, match="its fdAT chunk, the picture data, fails its checksum"):
        _load(tmp_path / "bad.png")


def test_a_whole_png_and_a_damaged_optional_chunk_are_read_as_before(tmp_path, png, face):
    from PIL import PngImagePlugin

    rgb, *_ = _load(tmp_path / "ok.png")
    assert np.array_equal(rgb, np.asarray(face))
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "t")
    face.save(tmp_path / "t.png", pnginfo=info)
    (tmp_path / "t_bad.png").write_bytes(_bad_crc((tmp_path / "t.png").read_bytes(), b"tEXt"))
    notes: list[str] = []
    rgb, *_ = _load(tmp_path / "t_bad.png", notes)
    assert np.array_equal(rgb, np.asarray(face)) and any("optional tEXt" in n for n in notes)


def test_the_image_endpoint_refuses_it_too(png):
    from stream_gpen.server._imaging import _decode_image

    with pytest.raises(InvalidInputError, match="damaged .its IDAT chunk, the picture data, fails its checksum") as e:
        _decode_image(_bit_flipped(png), max_pixels=10**8)
    assert "copied whole" in (e.value.hint or "")
    assert _decode_image(png, max_pixels=10**8).pixels.shape[:2] == (64, 96)


# --- a TIFF cut off -------------------------------------------------------------------------------
def _tiff(tmp_path, face, **kw) -> bytes:
    p = tmp_path / "t.tif"
    if kw.pop("tifffile", False):
        import tifffile

        tifffile.imwrite(p, np.asarray(face), **kw)
    else:
        face.save(p, **kw)
    return p.read_bytes()


@pytest.mark.parametrize("how", ["pillow", "lzw", "big_endian", "tiled", "bigtiff"])
def test_a_cut_off_tiff_is_said_as_such(tmp_path, face, how, cli_env, capsys):
    from stream_gpen.cli import main

    kw = {"pillow": {}, "lzw": {"compression": "tiff_lzw"},
          "big_endian": {"tifffile": True, "byteorder": ">"},
          "tiled": {"tifffile": True, "tile": (16, 16)},
          "bigtiff": {"tifffile": True, "bigtiff": True}}[how]
    data = _tiff(tmp_path, face, **kw)
    (tmp_path / "cut.tif").write_bytes(data[: int(len(data) * 0.8)])
    # (an LZW TIFF of Pillow's has its directory after the pictures: cut off, it has none, said as before)
    said = r"its header is there, but no page" if how == "lzw" else r"it holds \d+ of the \d+ bytes its header"
    with pytest.raises(NotMediaError, match=r"a TIFF that is cut off or damaged \(" + said) as e:
        _load(tmp_path / "cut.tif")
    assert HINT in e.value.hint
    assert main(["enhance", str(tmp_path / "cut.tif"), "-o", str(tmp_path / "o.tif"), *cli_env]) == 2
    assert "a TIFF that is cut off or damaged" in capsys.readouterr().err


def test_a_whole_tiff_is_no_cut_one(tmp_path, face):
    from stream_gpen.io._image import _cut_short

    for kw in ({}, {"tifffile": True, "tile": (16, 16)}, {"tifffile": True, "bigtiff": True}):
        _tiff(tmp_path, face, **kw)
        assert _cut_short(tmp_path / "t.tif", ValueError("other")) is None
        rgb, *_ = _load(tmp_path / "t.tif")
        assert np.array_equal(rgb, np.asarray(face))
