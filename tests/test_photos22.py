"""Session 22 (photos22): a JPEG written from a JPEG keeps its own quantisation tables unless a
quality is asked for (q95 doubled web JPEGs); TIFF predictors, 32-bit grey notes, EXIF patched in
place, PNG cICP and a dash-named input."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image


def _jpeg(path, face, quality: int):
    face.resize((320, 240)).save(path, "JPEG", quality=quality)
    return path


def test_a_jpeg_keeps_its_own_quantisation_tables(tmp_path, enh, face):
    """photos22: a q92 JPEG came back at q95, bigger; a q100 master was quantised more coarsely."""
    for q in (92, 100):
        src = _jpeg(tmp_path / f"q{q}.jpg", face, q)
        enh.enhance_file(src, tmp_path / f"o{q}.jpg")
        with Image.open(src) as a, Image.open(tmp_path / f"o{q}.jpg") as b:
            assert b.quantization == a.quantization
        assert (tmp_path / f"o{q}.jpg").stat().st_size < 1.2 * src.stat().st_size


def test_a_coarse_jpeg_is_written_at_the_floor_not_its_own_quality(tmp_path, enh, face):
    """A q50 web JPEG written with its own tables lost the restored faces' detail; at 95 it was
    2.4x bigger: it is written at 90."""
    from stream_gpen.io._image import jpeg_quality

    src = _jpeg(tmp_path / "q50.jpg", face, 50)
    enh.enhance_file(src, tmp_path / "o.jpg")
    with Image.open(tmp_path / "o.jpg") as b:
        assert round(jpeg_quality(b.quantization[0])) == 90
    for q in (50, 75, 90, 100):
        with Image.open(_jpeg(tmp_path / f"e{q}.jpg", face, q)) as im:
            assert abs(jpeg_quality(im.quantization[0]) - q) <= 1, q


def test_a_quality_given_is_used(tmp_path, enh, face):
    src = _jpeg(tmp_path / "q50.jpg", face, 50)
    enh.enhance_file(src, tmp_path / "o.jpg", quality=95)
    with Image.open(tmp_path / "o.jpg") as b:
        assert sum(b.quantization[0]) < 400  # (q50's luma table sums to ~3500)


def test_tables_pillow_refuses_fall_back_to_95(tmp_path, face):
    from stream_gpen.io._image import ImageSink

    sink = ImageSink(tmp_path / "o.jpg")
    assert sink._jpeg_tables({"qtables": [[1] * 64] * 5}) is None  # (5 tables: Pillow takes 4 at most)
    assert sink._jpeg_tables({"qtables": [[1] * 30]}) is None
    kw = sink._save_options(tmp_path / "o.jpg", face, {"format": "JPEG", "qtables": [[1] * 64] * 5})
    assert kw["quality"] == 95 and "qtables" not in kw
    kw = sink._save_options(tmp_path / "o.webp", face, {"format": "JPEG", "qtables": [[1] * 64] * 2})
    assert kw["quality"] == 95 and "qtables" not in kw  # (another format: its own encoder)


@pytest.mark.parametrize("compression", ["tiff_lzw", "tiff_adobe_deflate"])
def test_an_8bit_tiff_keeps_its_horizontal_predictor(tmp_path, enh, face, compression):
    """photos22: an LZW/deflate TIFF with predictor 2 came back without it, 1.3-1.5x bigger."""
    import tifffile

    src = tmp_path / "scan.tif"
    face.resize((320, 240)).save(src, compression=compression, tiffinfo={317: 2, 270: "a scan"})
    enh.enhance_file(src, tmp_path / "o.tif")
    with tifffile.TiffFile(tmp_path / "o.tif") as t:
        page = t.pages[0]
        assert page.predictor == 2 and page.compression == tifffile.TiffFile(src).pages[0].compression
        assert page.tags[270].value == "a scan"
    with Image.open(tmp_path / "o.tif") as im:
        assert np.abs(np.asarray(im, np.int16) - np.asarray(Image.open(src), np.int16)).mean() < 1  # (decoded right)


def _grey32(path, face, kind: str):
    import tifffile

    a = np.asarray(face.convert("L").resize((320, 240)), np.float32) / 255
    tifffile.imwrite(path, a if kind == "f" else (a * 4.0e9).astype(np.uint32), photometric="minisblack")
    return path


def test_a_32bit_integer_grey_tiff_is_scaled_by_its_full_range(tmp_path, face):
    """photos22: uint32 grey was clipped at 65535 (a white picture: no face found)."""
    from stream_gpen.io._image import _load

    rgb, _, grey, info, hi = _load(_grey32(tmp_path / "u.tif", face, "u"))
    want = np.asarray(face.convert("L").resize((320, 240)), np.float32)
    assert grey and hi is None and info["deep32"] == "integer"
    assert np.abs(rgb[..., 0] - want * 4.0e9 / 4294967295).max() <= 1  # (the file's 0..4e9 of 0..2^32-1)


@pytest.mark.parametrize("dtype, scale", [(np.uint32, 65535), (np.int32, 65535), (np.int32, 2.0e9)])
@pytest.mark.parametrize("turned", [False, True])
def test_32bit_integer_grey_holding_16bit_values_or_signed_is_read_right(tmp_path, face, dtype, scale, turned):
    """regress22a: a uint32 TIFF holding 0..65535 (16-bit data in a 32-bit file) read as black; a
    signed one at half brightness (its SampleFormat was looked for on the upright copy, which has
    no TIFF tags)."""
    import tifffile

    from stream_gpen.io._image import _load

    a = np.asarray(face.convert("L").resize((320, 240)), np.float64) / 255
    src = tmp_path / "g.tif"
    tifffile.imwrite(src, (a * scale).astype(dtype), photometric="minisblack",
                     extratags=[(274, 3, 1, 3, True)] if turned else [])  # (orientation 3: turned half a turn)
    rgb, _, grey, info, hi = _load(src)
    got = rgb[..., 0].astype(np.float64)
    full = scale if scale <= 65535 else 2147483647  # (16-bit data on its own scale; signed 32-bit on 2^31-1)
    want = a * 255 * scale / full
    want = want[::-1, ::-1] if turned else want
    assert grey and np.abs(got - want).mean() < 1.5, (dtype, scale, np.abs(got - want).mean())


@pytest.mark.parametrize("kind", ["f", "u"])
def test_32bit_grey_notes_are_said_when_written_and_blame_no_decoder(tmp_path, enh, face, kind, caplog, monkeypatch):
    """photos22: both were said "restored and written at 8 bits: OpenCV did not decode it at 16
    bits", the uint32 one when it was copied unchanged."""
    from stream_gpen.io._image import ImageSink

    src = _grey32(tmp_path / "g.tif", face, kind)
    s = enh.enhance_file(src, tmp_path / "o.tif")
    said = " ".join(s.fallbacks + [r.getMessage() for r in caplog.records])
    assert "OpenCV" not in said
    assert f"32-bit {'floating-point' if kind == 'f' else 'integer'} grey TIFFs were written as 8-bit grey" in said
    with Image.open(tmp_path / "o.tif") as im:
        assert im.mode == "L"
    monkeypatch.setattr(ImageSink, "copy_unchanged", True)
    blank = tmp_path / "blank.tif"
    import tifffile

    tifffile.imwrite(blank, np.zeros((64, 64), np.float32 if kind == "f" else np.uint32), photometric="minisblack")
    caplog.clear()
    s = enh.enhance_file(blank, tmp_path / "ob.tif")
    assert (tmp_path / "ob.tif").read_bytes() == blank.read_bytes()
    assert not any("8-bit" in m or "8 bits" in m for m in s.fallbacks + [r.getMessage() for r in caplog.records])


def _entries(exif: bytes) -> dict:
    """{(ifd, tag): (type, count, raw value field)} of a TIFF-structured EXIF block."""
    import struct

    t = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
    bo = "<" if t[:2] == b"II" else ">"
    out: dict = {}

    def walk(at: int, name: str) -> None:
        for i in range(struct.unpack_from(bo + "H", t, at)[0]):
            tag, kind, count = struct.unpack_from(bo + "HHI", t, at + 2 + 12 * i)
            field = t[at + 10 + 12 * i: at + 14 + 12 * i]
            out[(name, tag)] = (kind, count, field)
            if tag == 0x8769:
                walk(struct.unpack(bo + "I", field)[0], "exif")

    walk(struct.unpack_from(bo + "I", t, 4)[0], "ifd0")
    return out


def _camera_exif(orientation_type: int = 3) -> bytes:
    """A camera's EXIF (little-endian): Orientation 6, an UNDEFINED MakerNote (offsets from the TIFF
    header, as Canon's), a negative SRATIONAL and PixelX/YDimension as LONG / SHORT."""
    import struct

    ifd0_at, exif_at = 8, 8 + 2 + 2 * 12 + 4
    data_at = exif_at + 2 + 4 * 12 + 4
    note, bias = b"Canon\x00" + bytes(range(14)), struct.pack("<ii", -1, 3)
    t = b"II*\x00" + struct.pack("<I", ifd0_at)
    t += struct.pack("<H", 2) + struct.pack("<HHI", 0x0112, orientation_type, 1) + struct.pack("<I", 6)
    t += struct.pack("<HHII", 0x8769, 4, 1, exif_at) + struct.pack("<I", 0)
    t += struct.pack("<H", 4) + struct.pack("<HHII", 0x9204, 10, 1, data_at)
    t += struct.pack("<HHII", 0x927C, 7, len(note), data_at + 8)
    t += struct.pack("<HHII", 0xA002, 4, 1, 4032) + struct.pack("<HHI", 0xA003, 3, 1) + struct.pack("<HH", 3024, 0)
    t += struct.pack("<I", 0) + bias + note
    return b"Exif\x00\x00" + t


def _turned(tmp_path, face, exif: bytes):
    src = tmp_path / "cam.jpg"
    face.resize((240, 320)).transpose(Image.Transpose.ROTATE_90).save(src, "JPEG", quality=90, exif=exif)
    return src


def test_a_turned_photos_exif_is_patched_in_place(tmp_path, enh, face):
    """photos22: the orientation reset and the new size re-serialised the block with Pillow: the
    MakerNote became BYTE and moved, SRATIONAL became RATIONAL, LONG became SHORT."""
    import struct

    src = _turned(tmp_path, face, _camera_exif())
    enh.enhance_file(src, tmp_path / "o.jpg")
    with Image.open(src) as a, Image.open(tmp_path / "o.jpg") as b:
        before, after = _entries(a.info["exif"]), _entries(b.info["exif"])
        assert b.size == (240, 320) and len(b.info["exif"]) == len(a.info["exif"])
        exif = b.getexif()
        assert exif[0x0112] == 1 and exif.get_ifd(0x8769)[0xA002] == 240 and exif.get_ifd(0x8769)[0xA003] == 320
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {("ifd0", 0x0112), ("exif", 0xA002), ("exif", 0xA003)}
    assert all(before[k][:2] == after[k][:2] for k in before)  # (types and counts as they were)
    assert struct.unpack("<I", after[("exif", 0xA002)][2])[0] == 240


def test_an_exif_it_cannot_patch_is_laid_out_again(tmp_path, enh, face):
    from stream_gpen.io._image import _patched_exif

    odd = _camera_exif(orientation_type=1)  # (Orientation as a BYTE: not what the patcher takes)
    assert _patched_exif(odd, {0x0112: 1}, {}) is None
    assert _patched_exif(_camera_exif(), {}, {0xA003: 70000}) is None  # (over a SHORT)
    assert _patched_exif(b"not exif", {0x0112: 1}, {}) is None
    src = _turned(tmp_path, face, odd)
    enh.enhance_file(src, tmp_path / "o.jpg")
    with Image.open(tmp_path / "o.jpg") as b:
        assert b.getexif().get(0x0112, 1) == 1  # (as before: laid out by Pillow)


def test_a_real_iphone_exif_keeps_its_entry_types_and_maker_note(tmp_path, enh, shared):
    """photos22: the real iPhone 6s EXIF (Orientation 6) on a smaller copy of its photo."""
    with Image.open(shared / "data/faces/whole/gpen_selfie_20200320.101220.jpg") as im:
        src = tmp_path / "iph6.jpg"
        im.resize((504, 378)).save(src, "JPEG", quality=90, exif=im.info["exif"])
    enh.enhance_file(src, tmp_path / "o.jpg")
    with Image.open(src) as a, Image.open(tmp_path / "o.jpg") as b:
        before, after = _entries(a.info["exif"]), _entries(b.info["exif"])
        exif = b.getexif()
        assert exif[0x0112] == 1 and b.size == (378, 504)
        assert (exif.get_ifd(0x8769)[0xA002], exif.get_ifd(0x8769)[0xA003]) == (378, 504)
    assert {k for k in before if before[k] != after[k]} <= {("ifd0", 0x0112), ("exif", 0xA002), ("exif", 0xA003)}
    assert all(before[k][:2] == after[k][:2] for k in before) and before.keys() == after.keys()
    assert after[("exif", 0x927C)] == before[("exif", 0x927C)]  # (the MakerNote: UNDEFINED, where it was)
    # the camera's thumbnail (IFD1: the unrestored picture, stored sideways) is not linked any more,
    # as Pillow's re-layout left it out: shown upright-tagged, it was sideways and the old face
    assert _ifd1(a.info["exif"]) != 0 and _ifd1(b.info["exif"]) == 0
    # ... and its bytes, after all the rest, are cut off (a PNG with a big thumbnail written as JPEG
    # went over a JPEG segment's 64 KB and lost its whole EXIF; the old face stayed in the file)
    assert len(b.info["exif"]) < len(a.info["exif"]) - 8000, (len(a.info["exif"]), len(b.info["exif"]))


def _ifd1(exif: bytes) -> int:
    import struct

    t = exif[6:]
    bo = "<" if t[:2] == b"II" else ">"
    first = struct.unpack_from(bo + "I", t, 4)[0]
    return struct.unpack_from(bo + "I", t, first + 2 + 12 * struct.unpack_from(bo + "H", t, first)[0])[0]


def _chunks(path) -> dict:
    from stream_gpen.io._image import _png_chunk_list

    return {t: c[8:-4] for t, c in _png_chunk_list(path.read_bytes())}


@pytest.mark.parametrize("deep", [False, True])
def test_a_png_keeps_its_cicp_and_says_pq_faces_were_restored_as_sdr(tmp_path, enh, face, deep, caplog):
    """photos22: a PQ/BT.2020 PNG (cICP) lost its colour description silently (8 and 16 bits)."""
    import struct
    import zlib

    import cv2

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    big = face.resize((320, 240))
    if deep:
        ok, enc = cv2.imencode(".png", (np.asarray(big).astype(np.uint16) * 257)[..., ::-1])
        data = enc.tobytes()
    else:
        b = io.BytesIO()
        big.save(b, "PNG")
        data = b.getvalue()
    cicp, clli = bytes([9, 16, 0, 1]), struct.pack(">II", 10000000, 4000000)
    src = tmp_path / "pq.png"
    src.write_bytes(data[:33] + chunk(b"cICP", cicp) + chunk(b"cLLI", clli) + data[33:])
    s = enh.enhance_file(src, tmp_path / "o.png")
    got = _chunks(tmp_path / "o.png")
    assert got[b"cICP"] == cicp and got[b"cLLI"] == clli
    names = list(_chunks(tmp_path / "o.png"))
    assert names.index(b"cICP") < names.index(b"IDAT")
    assert any("PQ HDR PNGs (cICP) were restored as if their codes were SDR" in f for f in s.fallbacks), s.fallbacks
    s = enh.enhance_file(src, tmp_path / "o.jpg")
    assert any("cICP: primaries 9, transfer 16) was dropped" in f for f in s.fallbacks), s.fallbacks


def test_a_file_name_starting_with_a_dash_is_said_so(tmp_path, monkeypatch, capsys, face):
    """photos22: `enhance -dash.jpg` said only "the following arguments are required: INPUT"."""
    from stream_gpen.cli import main

    monkeypatch.chdir(tmp_path)
    face.save(tmp_path / "-dash.jpg")
    assert main(["enhance", "-dash.jpg", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: INPUT" in err
    assert "write ./-dash.jpg or -- -dash.jpg" in err
    assert main(["enhance", "-nothere.jpg"]) == 2
    assert "write ./" not in capsys.readouterr().err  # (no such file: nothing to say about it)


def test_a_quarter_turned_jpegs_tables_are_turned_too(tmp_path, enh, face):
    """regress22a: turned upright a quarter, its horizontal frequencies were quantised with the
    vertical ones' steps (the tables are not symmetric)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    src = tmp_path / "t.jpg"
    face.resize((240, 320)).save(src, "JPEG", quality=93, exif=exif.tobytes())
    enh.enhance_file(src, tmp_path / "o.jpg")
    with Image.open(src) as a, Image.open(tmp_path / "o.jpg") as b:
        for k, t in a.quantization.items():
            assert list(b.quantization[k]) == [t[8 * c + r] for r in range(8) for c in range(8)]
        assert list(b.quantization[0]) != list(a.quantization[0])  # (the table is not symmetric)


def test_a_multi_page_32bit_grey_tiffs_later_pages_are_scaled_as_its_first(tmp_path, face):
    """review22: page 2 on went through the old reading (clipped at 65535: white)."""
    import tifffile

    from stream_gpen.io._image import _load, _load_page

    a = (np.asarray(face.convert("L").resize((96, 64)), np.float64) / 255 * 4.0e9).astype(np.uint32)
    src = tmp_path / "p.tif"
    tifffile.imwrite(src, np.stack([a, a]), photometric="minisblack")
    first = _load(src)[0]
    second = _load_page(src, 1)[0]
    assert np.abs(first.astype(int) - second.astype(int)).max() <= 1 and 40 < second.mean() < 220
