"""Session 23 (photos23): a lossless animated WebP stays lossless, a BigTIFF keeps its text tags,
a damaged multi-page TIFF, a JPEG without its EOI, an APNG with a cover image, a PNG with a bad
ancillary CRC, and a kept half-written file's mode."""
from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest
from PIL import Image


def _webp_chunks(path) -> list[str]:
    """The top-level RIFF chunks of a WebP, an ANMF named with its frame's bitstream."""
    d, i, out = path.read_bytes(), 12, []
    while i < len(d):
        kind, n = d[i : i + 4], struct.unpack("<I", d[i + 4 : i + 8])[0]
        out.append(kind.decode() + (f"[{d[i + 24 : i + 28].decode()}]" if kind == b"ANMF" else ""))
        i += 8 + n + (n & 1)
    return out


def test_a_lossless_animated_webp_stays_lossless(tmp_path, enh, face):
    """photos23 #1: a 2-frame lossless WebP animation came back lossy (105 KB -> 34 KB): the
    lossless check looked for a top-level VP8L chunk, and an animation keeps each frame's inside
    its ANMF chunk."""
    src = tmp_path / "anim.webp"
    face.save(src, save_all=True, append_images=[face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)], lossless=True,
              duration=150)
    assert _webp_chunks(src).count("ANMF[VP8L]") == 2
    enh.enhance_file(src, tmp_path / "o.webp")
    assert _webp_chunks(tmp_path / "o.webp").count("ANMF[VP8L]") == 2
    lossy = tmp_path / "lossy.webp"  # (a lossy animation stays lossy)
    face.save(lossy, save_all=True, append_images=[face], quality=80, duration=150)
    from stream_gpen.io._image import _webp_is_lossless

    assert _webp_is_lossless(src) and not _webp_is_lossless(lossy)


def test_a_bigtiff_keeps_its_text_tags(tmp_path, enh, face, caplog):
    """photos23 #2: a BigTIFF lost Artist, Copyright, DateTime, ImageDescription and Software,
    with "its EXIF block could not be read ... unpack requires a buffer of 8 bytes": Pillow
    serialised its tags behind a BigTIFF header its own reader cannot parse."""
    import tifffile

    src = tmp_path / "big.tif"
    tifffile.imwrite(src, np.asarray(face), bigtiff=True, photometric="rgb", description="My caption",
                     software="Scanner 1.0", metadata=None,
                     extratags=[(315, "s", 0, "Artist Name", True), (33432, "s", 0, "(c) Me", True),
                                (306, "s", 0, "2020:01:01 10:00:00", True)])
    want = {270: "My caption", 305: "Scanner 1.0", 306: "2020:01:01 10:00:00", 315: "Artist Name", 33432: "(c) Me"}
    for out in ("o.tif", "o.jpg"):
        enh.enhance_file(src, tmp_path / out)
        with Image.open(tmp_path / out) as im:
            assert {t: v for t, v in im.getexif().items() if t in want} == want, out
    assert "could not be read" not in caplog.text


def _cut_album(tmp_path, face):
    album = tmp_path / "album.tif"
    face.save(album, save_all=True, append_images=[face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), face],
              compression="tiff_lzw")
    data = album.read_bytes()
    cut = tmp_path / "lib" / "cut.tif"
    cut.parent.mkdir()
    cut.write_bytes(data[: int(len(data) * 0.8)])
    return cut


def test_a_cut_multi_page_tiff_is_a_damaged_file_not_an_internal_error(tmp_path, enh, face):
    """photos23 #3: a 3-page LZW TIFF cut at 80% ended in "internal error ... please report it"
    (exit 1): Pillow's page count raised TypeError "Missing dimensions" for the cut-off IFD."""
    from stream_gpen.errors import InvalidInputError, NotMediaError
    from stream_gpen.io._image import _load
    from stream_gpen.server._imaging import _decode_image

    cut = _cut_album(tmp_path, face)
    with pytest.raises(NotMediaError, match="a TIFF that is cut off or damaged .its page 3 ends past the file's end"):
        _load(cut)  # (session 30: its strips and directories measured, as the other formats' chunks are)
    with pytest.raises(InvalidInputError, match="page 3 is damaged or cut off"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (Pillow's "Corrupt EXIF data" of the cut IFD)
        _decode_image(cut.read_bytes(), max_pixels=10**8)  # (the server: a 400, not a 500)
    face.save(cut.parent / "ok.png")
    s = enh.enhance_file(cut.parent, tmp_path / "out")  # a folder goes on, the file skipped and listed
    assert (tmp_path / "out" / "ok.png").exists() and not (tmp_path / "out" / "cut.tif").exists()
    assert any("page 3 ends past" in k for k in s.skipped)


@pytest.mark.parametrize("progressive", [False, True])
def test_a_jpeg_missing_only_its_end_marker_is_read_and_a_cut_one_refused(tmp_path, face, progressive):
    """photos23 #4: a whole JPEG without its final EOI marker (the last 2 bytes cut) was refused,
    "image file is truncated (1 bytes not processed)", though it decodes pixel for pixel as the
    original. It is read now, said; one whose scan data is cut short too is still refused."""
    from stream_gpen.errors import NotMediaError
    from stream_gpen.io._image import _load

    whole = tmp_path / "whole.jpg"
    face.resize((320, 240)).save(whole, quality=95, progressive=progressive)
    data = whole.read_bytes()
    (tmp_path / "noeoi.jpg").write_bytes(data[:-2])
    notes: list[str] = []
    rgb, *_ = _load(tmp_path / "noeoi.jpg", notes)
    assert np.array_equal(rgb, _load(whole)[0])
    assert any("JPEG end marker (the last 2 bytes) is missing" in n for n in notes)
    for cut in (-6, -40, int(len(data) * 0.8)):
        (tmp_path / "cut.jpg").write_bytes(data[:cut])
        with pytest.raises(NotMediaError, match="cut off or damaged"):
            _load(tmp_path / "cut.jpg")


def test_a_faceless_jpeg_missing_its_end_marker_is_written_whole(tmp_path, enh, monkeypatch):
    """photos23 #4: a photo without a face is copied byte for byte; one read with its missing
    EOI put back would have been copied without it, as damaged as it came."""
    from stream_gpen.io._image import ImageSink

    monkeypatch.setattr(ImageSink, "copy_unchanged", True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), np.uint8)).save(tmp_path / "a.jpg", quality=90)
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "a.jpg").read_bytes()[:-2])
    enh.enhance_file(tmp_path / "cut.jpg", tmp_path / "o.jpg")
    assert (tmp_path / "o.jpg").read_bytes()[-2:] == b"\xff\xd9"


def _png_chunks(path) -> list:
    """An APNG's chunk order: acTL with its frame count, and runs of fcTL / IDAT."""
    d, i, out = path.read_bytes(), 8, []
    while i < len(d):
        n, kind = struct.unpack(">I4s", d[i : i + 8])
        if kind == b"acTL":
            out.append(("acTL", struct.unpack(">I", d[i + 8 : i + 12])[0]))
        elif kind in (b"fcTL", b"IDAT") and (not out or out[-1] != kind.decode()):
            out.append(kind.decode())
        i += 12 + n
    return out


def test_an_apng_cover_image_stays_the_cover(tmp_path, mobilenet_weights, shared):
    """photos23 #5: an APNG whose default image is not part of its animation (IDAT before the
    first fcTL) came back with that image as an extra animation frame (acTL 2 -> 3 frames). It
    is restored (it may hold faces) and written back as the cover; WebP has no place for one."""
    from stream_gpen import Enhancer
    from tests._doubles import SolidRestorer

    enh = Enhancer(SolidRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False)
    face = Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB")
    flipped = face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    red = face.copy()
    red.paste((255, 0, 0), (10, 10, 60, 60))
    src = tmp_path / "a.png"
    face.save(src, save_all=True, append_images=[red, flipped], default_image=True, duration=[200, 300], loop=2)
    assert _png_chunks(src) == [("acTL", 2), "IDAT", "fcTL"]
    s = enh.enhance_file(src, tmp_path / "o.png")
    assert _png_chunks(tmp_path / "o.png") == [("acTL", 2), "IDAT", "fcTL"]
    with Image.open(tmp_path / "o.png") as im:
        assert im.info.get("default_image") and im.info["loop"] == 2 and im.n_frames == 3
        got = []
        for k in range(3):
            im.seek(k)
            im.load()
            got.append((im.info.get("duration"), np.asarray(im.convert("RGB"))))
    assert [d for d, _ in got] == [None, 200, 300]
    white = (got[0][1].min(axis=2) == 255).sum() - (np.asarray(face).min(axis=2) == 255).sum()
    assert white > 500 and s.frames_out == 3  # (the cover's face restored: SolidRestorer paints it white)
    assert (got[1][1][30, 30] == (255, 0, 0)).all()  # (the first animation frame is the red one)
    s = enh.enhance_file(src, tmp_path / "o.webp")
    with Image.open(tmp_path / "o.webp") as im:
        assert im.n_frames == 2 and s.frames_out == 2
        assert np.abs(np.asarray(im.convert("RGB"))[30, 30].astype(int) - (255, 0, 0)).max() <= 8
    assert any("cover picture of animated PNGs" in f for f in s.fallbacks)


def test_a_photo_kept_beside_a_folder_in_its_place_is_not_made_executable(tmp_path, enh, face):
    """photos23 #7: with ``-o out --overwrite`` and a folder ``out/a.jpg``, the photo kept beside
    it (``out/a.restored.jpg``) got the folder's permission bits, 0755: executable."""
    import os
    import stat

    from stream_gpen.io._sink import keep_mode

    (tmp_path / "in").mkdir()
    face.save(tmp_path / "in" / "a.jpg")
    os.chmod(tmp_path / "in" / "a.jpg", 0o600)
    (tmp_path / "out" / "a.jpg").mkdir(parents=True)
    os.chmod(tmp_path / "out" / "a.jpg", 0o755)
    s = enh.enhance_file(tmp_path / "in", tmp_path / "out", overwrite=True)
    kept = tmp_path / "out" / "a.restored.jpg"
    assert s.skipped and kept.is_file()
    assert not stat.S_IMODE(kept.stat().st_mode) & 0o111
    (tmp_path / "old").write_bytes(b"")  # (a regular file's bits are still kept)
    os.chmod(tmp_path / "old", 0o600)
    keep_mode(tmp_path / "old", kept)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def _bad_crc(data: bytes, kind: bytes) -> bytes:
    """``data`` (a PNG) with the checksum of its first ``kind`` chunk broken."""
    d = bytearray(data)
    i = d.find(kind)
    n = int.from_bytes(d[i - 4 : i], "big")
    d[i + 4 + n] ^= 0xFF
    return bytes(d)


def test_a_png_with_a_damaged_optional_chunk_is_read_and_a_damaged_critical_one_refused(tmp_path, enh, face):
    """photos23 #6: a PNG whose tEXt chunk failed its checksum was "cannot identify image file"
    (exit 2), which libpng reads with a warning. The damaged optional chunk is left out, said by
    name; a critical chunk's (IHDR) bad checksum is still refused."""
    from PIL import PngImagePlugin

    from stream_gpen.errors import NotMediaError
    from stream_gpen.io._image import _load

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "me")
    info.add_text("Title", "kept")
    face.save(tmp_path / "ok.png", pnginfo=info)
    good = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "bad.png").write_bytes(_bad_crc(good, b"tEXt"))
    notes: list[str] = []
    rgb, _, _, image_info, _ = _load(tmp_path / "bad.png", notes)
    assert np.array_equal(rgb, np.asarray(face)) and image_info["text"] == {"Title": "kept"}
    assert any("its optional tEXt chunk failed its checksum (damaged) and was left out" in n for n in notes)
    enh.enhance_file(tmp_path / "bad.png", tmp_path / "o.png")
    with Image.open(tmp_path / "o.png") as im:
        assert im.text == {"Title": "kept"}
    flipped = face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)  # (an APNG's later frames too)
    face.save(tmp_path / "anim.png", save_all=True, append_images=[flipped], duration=[200, 300], pnginfo=info)
    (tmp_path / "anim_bad.png").write_bytes(_bad_crc((tmp_path / "anim.png").read_bytes(), b"tEXt"))
    s = enh.enhance_file(tmp_path / "anim_bad.png", tmp_path / "anim_o.png")
    with Image.open(tmp_path / "anim_o.png") as im:
        assert im.n_frames == 2 and s.frames_out == 2 and im.text == {"Title": "kept"}
    (tmp_path / "ihdr.png").write_bytes(_bad_crc(good, b"IHDR"))
    with pytest.raises(NotMediaError, match="cannot read"):
        _load(tmp_path / "ihdr.png")
