"""TIFFs with a reduced-resolution preview (hunt 15): scanners, cameras and editors store the
picture again, small, as a second IFD marked NewSubfileType 1. The server refused such a photo as
"multi-page" (415) and ``enhance`` restored the preview as a second page, written as a full page
(NewSubfileType 0). Each case once failed."""
from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image

from _doubles import SolidRestorer
from stream_gpen import Enhancer

pytest.importorskip("fastapi")

from tests.test_server import KEY, FakeEnhancer, client_for  # noqa: E402

IMAGE = "/v1/images:enhance"


@pytest.fixture(scope="module")
def photo(shared) -> np.ndarray:
    """A real face photo (225x225 RGB), large enough for the detector."""
    return np.asarray(Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB"))


def tiff(pages: list[tuple[np.ndarray, int]], **kw) -> bytes:
    """A TIFF of (pixels, NewSubfileType) IFDs, in order."""
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as t:
        for pixels, kind in pages:
            t.write(pixels, photometric="rgb" if pixels.ndim == 3 else "minisblack", subfiletype=kind, **kw)
    return buf.getvalue()


def small(pixels: np.ndarray, f: int = 4) -> np.ndarray:
    return np.ascontiguousarray(pixels[::f, ::f])


def layout(data) -> list[tuple[tuple[int, ...], int]]:
    """(shape, NewSubfileType) of each IFD of a TIFF (bytes or a path)."""
    with tifffile.TiffFile(io.BytesIO(data) if isinstance(data, bytes) else data) as t:
        return [(p.shape, p.subfiletype) for p in t.pages]


def white(pixels: np.ndarray) -> int:
    return int((np.asarray(pixels).reshape(pixels.shape[0], pixels.shape[1], -1).min(axis=2) >= 250).sum())


# --- the server: a TIFF with a preview is one picture ----------------------------------------------
def test_server_restores_a_tiff_whose_only_other_ifd_is_its_preview(photo):
    rng = np.random.default_rng(1)
    pic = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    for ifds in ([(pic, 0), (small(pic), 1)], [(small(pic), 1), (pic, 0)]):  # (a preview stored first, too)
        fake = FakeEnhancer()
        with client_for(fake) as c:
            r = c.post(IMAGE, content=tiff(ifds), headers={**KEY, "Content-Type": "image/tiff"})
        assert r.status_code == 200, r.text  # was 415: "multi-page TIFF (2 frames)"
        assert r.headers["content-type"] == "image/png" and fake.batches == [1]
        with Image.open(io.BytesIO(r.content)) as out:
            assert out.size == (60, 40)  # the full picture, not the preview
    # several full pages are still refused, counted without their preview
    fake = FakeEnhancer()
    with client_for(fake) as c:
        r = c.post(IMAGE, content=tiff([(pic, 0), (small(pic), 1), (pic[::-1].copy(), 0)]),
                   headers={**KEY, "Content-Type": "image/tiff"})
    assert r.status_code == 415, r.text
    assert "multi-page TIFF (2 frames)" in r.json()["detail"] and fake.batches == []


# --- enhance: the preview stays a preview, made from the restored picture ---------------------------
@pytest.fixture(scope="module")
def solid(mobilenet_weights):
    return Enhancer(SolidRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False)


def test_enhance_keeps_a_tiffs_preview_as_a_preview_of_the_restored_picture(tmp_path, solid, photo):
    src = tmp_path / "scan.tif"
    src.write_bytes(tiff([(photo, 0), (small(photo), 1)], compression="zlib"))
    out = tmp_path / "out.tif"
    s = solid.enhance_file(src, out)
    assert s.frames_out == 1 and s.faces_restored >= 1
    # was [((225,225,3), 0), ((57,57,3), 0)]: the preview restored as a page of its own and written as one
    assert layout(out) == [((225, 225, 3), 0), ((57, 57, 3), 1)]
    with tifffile.TiffFile(out) as t:
        full, preview = t.pages[0].asarray(), t.pages[1].asarray()
    assert white(full) > 500 + white(photo)  # the face restored (SolidRestorer: white)
    assert white(preview) > 20 + white(small(photo))  # and the preview shows it restored too
    assert not any("first page" in f for f in s.fallbacks), s.fallbacks
    # written as PNG: one picture, no word of pages
    s = solid.enhance_file(src, tmp_path / "out.png")
    assert s.frames_out == 1 and not any("page" in f for f in s.fallbacks), s.fallbacks
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (225, 225) and getattr(im, "n_frames", 1) == 1


def test_a_multi_page_tiffs_previews_stay_beside_their_pages(tmp_path, solid, photo):
    other = np.ascontiguousarray(photo[:, ::-1])
    src = tmp_path / "album.tif"
    src.write_bytes(tiff([(photo, 0), (small(photo), 1), (other, 0), (small(other, 3), 1)]))
    out = tmp_path / "out.tif"
    s = solid.enhance_file(src, out)
    assert s.frames_out == 2 and s.faces_restored >= 2  # (was 4 "pages")
    assert layout(out) == [((225, 225, 3), 0), ((57, 57, 3), 1), ((225, 225, 3), 0), ((75, 75, 3), 1)]
    with tifffile.TiffFile(out) as t:
        got = [p.asarray().astype(int) for p in t.pages]
    # each page keeps its place (the mirrored one second), each preview shows its own page
    for k, orig in ((0, photo), (2, other)):
        assert np.abs(got[k] - orig).mean() < np.abs(got[k] - (other if k == 0 else photo)).mean()
    assert np.abs(got[3] - small(got[2], 3)).mean() < np.abs(got[3] - small(got[0], 3)).mean()


def test_a_16_bit_tiffs_preview_is_written_at_16_bits_as_a_preview(tmp_path, solid, photo):
    deep = photo.astype(np.uint16) * 257
    src = tmp_path / "scan16.tif"
    src.write_bytes(tiff([(deep, 0), (small(deep), 1)]))
    out = tmp_path / "out.tif"
    s = solid.enhance_file(src, out)
    assert s.frames_out == 1 and s.faces_restored >= 1
    assert not any("8 bits" in f for f in s.fallbacks), s.fallbacks  # (kept its 16 bits: one page)
    with tifffile.TiffFile(out) as t:
        assert [(p.shape, p.subfiletype, p.dtype) for p in t.pages] == [
            ((225, 225, 3), 0, np.uint16), ((57, 57, 3), 1, np.uint16)]
        assert white(t.pages[1].asarray() >> 8) > 20 + white(small(photo))


def test_a_preview_stored_first_or_of_a_turned_photo_is_written_after_the_upright_picture(tmp_path, solid, photo):
    """A preview stored before the picture goes after it (the picture is the first IFD readers
    take), and a photo turned upright by its EXIF orientation gets its preview turned too."""
    tall = np.ascontiguousarray(photo[:, :180])  # 180x225 as stored
    src = tmp_path / "first.tif"
    src.write_bytes(tiff([(small(tall), 1), (tall, 0)]))
    s = solid.enhance_file(src, tmp_path / "first_out.tif")
    assert s.frames_out == 1
    assert layout(tmp_path / "first_out.tif") == [((225, 180, 3), 0), ((57, 45, 3), 1)]
    turned = tmp_path / "turned.tif"
    with tifffile.TiffWriter(turned) as t:
        t.write(tall, photometric="rgb", extratags=[(274, "H", 1, 6, True)])  # EXIF orientation: 90° clockwise
        t.write(small(tall), photometric="rgb", subfiletype=1)
    solid.enhance_file(turned, tmp_path / "turned_out.tif")
    assert layout(tmp_path / "turned_out.tif") == [((180, 225, 3), 0), ((45, 57, 3), 1)]


def test_a_tiffs_subifd_previews_are_dropped_said_and_leave_no_stale_offset(tmp_path, enh, photo):
    """Previews kept as SubIFDs (tifffile's and pyramid writers' layout; Pillow reads and writes
    none) are dropped with a note. Their offsets (tag 330) were copied into the output as they were,
    pointing into nothing: readers failed on the restored file."""
    src = tmp_path / "pyramid.tif"
    with tifffile.TiffWriter(src) as t:
        t.write(photo, photometric="rgb", subifds=1)
        t.write(small(photo, 2), photometric="rgb", subfiletype=1)
    s = enh.enhance_file(src, tmp_path / "out.tif")
    assert any("SubIFDs (reduced-resolution previews kept beside the picture) were dropped" in f
               for f in s.fallbacks), s.fallbacks
    with tifffile.TiffFile(tmp_path / "out.tif") as t:
        assert len(t.pages) == 1 and 330 not in t.pages[0].tags
        assert np.abs(t.pages[0].asarray().astype(int) - photo).mean() < 2  # (IdentityRestorer: as it was)


def test_info_counts_a_tiffs_pages_not_its_previews(tmp_path):
    """`info` counted the preview as a page ("each of its 2 pages restored"), which enhance does not do."""
    from stream_gpen.commands import describe_input

    rng = np.random.default_rng(3)
    pic = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    (tmp_path / "scan.tif").write_bytes(tiff([(pic, 0), (small(pic), 1)]))
    info = describe_input(str(tmp_path / "scan.tif"))
    assert info["frames"] == 1 and not any("pages" in line for line in info["plan"])
