"""16-bit photos (scans, raw developers' exports): read at 16 bits, faces restored into them,
written back at 16 bits with their metadata; 8-bit-only output formats say what they lose."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from stream_gpen.io._image import ImageSink, ImageSource, _load

tifffile = pytest.importorskip("tifffile")  # a dependency; a bare GPU image for the CUDA tests may lack it


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16(path: Path, rgb16: np.ndarray, *, icc: bytes | None = None, dpi: int | None = None,
           text: dict | None = None) -> None:
    """A 16-bit PNG with ancillary chunks, made by hand (independent of the code under test)."""
    ok, enc = cv2.imencode(".png", rgb16[..., ::-1] if rgb16.ndim == 3 else rgb16)
    assert ok
    data = enc.tobytes()
    ihdr_end = 8 + 12 + 13
    extra = b""
    if icc is not None:
        extra += _chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc))
    if dpi is not None:
        ppm = round(dpi / 0.0254)
        extra += _chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1))
    for k, v in (text or {}).items():
        extra += _chunk(b"tEXt", k.encode("latin-1") + b"\x00" + v.encode("latin-1"))
    path.write_bytes(data[:ihdr_end] + extra + data[ihdr_end:])


def _gradient(h: int = 120, w: int = 160) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 409 + 3, yy * 547 + 1, (xx + yy) * 233], -1).clip(0, 65535).astype(np.uint16)


def _write_through(src: Path, dst: Path) -> None:
    with ImageSource(src) as s:
        ImageSink(dst).write(next(s))


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_rgb_round_trips_exactly(tmp_path, ext):
    a = _gradient()
    src = tmp_path / f"in{ext}"
    cv2.imwrite(str(src), a[..., ::-1])
    assert Image.open(src).mode == "RGB"  # Pillow alone would see 8 bits
    rgb, _, grey, _, hi = _load(src)
    assert np.array_equal(hi, a) and not grey
    assert np.array_equal(rgb, np.floor(a / 257 + 0.5).astype(np.uint8))
    dst = tmp_path / f"out{ext}"
    _write_through(src, dst)
    b = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    assert b.dtype == np.uint16 and np.array_equal(b[..., ::-1], a)


def test_16bit_grey_stays_16bit_grey(tmp_path):
    g = (_gradient()[..., 0] // 2 + 1000).astype(np.uint16)
    src = tmp_path / "g.png"
    cv2.imwrite(str(src), g)
    dst = tmp_path / "o.png"
    _write_through(src, dst)
    b = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    assert b.dtype == np.uint16 and b.ndim == 2 and np.array_equal(b, g)


def test_16bit_png_keeps_profile_dpi_and_text(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "scan.png"
    _png16(src, _gradient(), icc=icc, dpi=600, text={"Title": "Grandma 1962", "Source": "Epson V600"})
    dst = tmp_path / "out.png"
    _write_through(src, dst)
    with Image.open(dst) as im:
        assert im.info.get("icc_profile") == icc
        assert tuple(round(d) for d in im.info["dpi"]) == (600, 600)
        assert im.text.get("Title") == "Grandma 1962" and im.text.get("Source") == "Epson V600"
    assert np.array_equal(cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)[..., ::-1], _gradient())


def test_16bit_tiff_keeps_profile_dpi_compression_and_text_tags(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "scan.tif"
    tifffile.imwrite(src, _gradient(), photometric="rgb", compression="zlib", iccprofile=icc,
                     resolution=(1200, 1200), resolutionunit="INCH", metadata=None,
                     software="EpsonScan 2",  # written by tifffile itself: not an extratag (it warned)
                     extratags=[(271, "s", 0, "Epson", True), (272, "s", 0, "Perfection V600", True),
                                (33432, "s", 0, "Family archive", True)])
    dst = tmp_path / "out.tif"
    _write_through(src, dst)
    with tifffile.TiffFile(dst) as t:
        page = t.pages[0]
        assert page.dtype == np.uint16 and page.compression != 1
        tags = page.tags
        assert tags["Make"].value == "Epson" and tags["Model"].value == "Perfection V600"
        assert tags["Copyright"].value == "Family archive" and tags["Software"].value == "EpsonScan 2"
        assert tags["InterColorProfile"].value == icc
        assert tags["XResolution"].value[0] / tags["XResolution"].value[1] == 1200
        assert np.array_equal(page.asarray(), _gradient())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_orientation_matches_pillows(tmp_path, orientation):
    a = _gradient(60, 100)
    src = tmp_path / "o.tif"
    tifffile.imwrite(src, a, photometric="rgb", metadata=None, extratags=[(274, "H", 1, orientation, True)])
    _, _, _, _, hi = _load(src)
    with Image.open(src) as im:
        want = np.asarray(ImageOps.exif_transpose(im).convert("RGB")).astype(int)  # Pillow: 8 bits, its rounding
    assert hi is not None and hi.shape == want.shape
    assert np.abs(hi.astype(int) / 257 - want).max() <= 1.0


def _16bit_png_into(path: Path) -> ImageSink:
    """A 16-bit PNG gradient written through an ImageSink to ``path``; the sink (its notes)."""
    src = path.with_name("in.png")
    cv2.imwrite(str(src), _gradient()[..., ::-1])
    sink = ImageSink(path)
    with ImageSource(src) as s:
        sink.write(next(s))
    return sink


def test_16bit_to_an_8bit_format_says_so(tmp_path):
    sink = _16bit_png_into(tmp_path / "out.jpg")
    assert any("16-bit pictures were written at 8 bits" in f and ".png or .tif" in f for f in sink.fallbacks)
    assert Image.open(tmp_path / "out.jpg").mode == "RGB"


def test_faces_of_a_16bit_photo_are_restored_into_its_16_bits(tmp_path, shared, mobilenet_weights):
    """A real face photo at 16 bits (with sub-8-bit detail): the restored face lands at the
    restorer's own precision (100.4 -> 25803, not 100 * 257), the rest keeps every 16-bit level."""
    from stream_gpen import Enhancer

    from tests._doubles import FineRestorer

    bgr = cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))
    bgr = cv2.resize(bgr, (320, 240), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    deep = (bgr.astype(np.int32) * 257 + rng.integers(-100, 100, bgr.shape)).clip(0, 65535).astype(np.uint16)
    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), deep)
    dst = tmp_path / "photo_enhanced.png"
    summary = Enhancer(FineRestorer(64), device="cpu", detector_weights=mobilenet_weights,
                       faces="largest").enhance_file(src, dst)
    assert summary.faces_restored == 1
    out = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16
    face = np.abs(out.astype(np.int64) - round(100.4 * 257)) <= 1
    assert face.sum() > 3000  # the face's interior
    untouched = (out == deep).all(axis=2)
    ys, xs = np.nonzero(~untouched)
    assert xs.max() - xs.min() < 0.6 * 320 and ys.max() - ys.min() < 0.8 * 240  # the face, not the photo
    assert untouched.mean() > 0.5 and len(np.unique(out[untouched])) > 4 * 256  # finer than 8 bits


def test_orientation_steps_are_pillows():
    from stream_gpen.io._image import _ORIENT

    a = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    methods = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
               5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_90}
    for o, m in methods.items():
        assert np.array_equal(_ORIENT[o](a), np.asarray(Image.fromarray(a).transpose(m))), o


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_with_alpha_keeps_both_at_16(tmp_path, ext):
    a = _gradient()
    alpha = (np.arange(160, dtype=np.uint16)[None, :].repeat(120, 0) * 409).astype(np.uint16)
    src = tmp_path / f"in{ext}"
    cv2.imwrite(str(src), np.dstack([a[..., ::-1], alpha]))
    dst = tmp_path / f"out{ext}"
    sink = ImageSink(dst)
    with ImageSource(src) as s:
        sink.write(next(s))
    b = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    assert b.dtype == np.uint16 and b.shape == (120, 160, 4)
    assert np.array_equal(b[..., 2::-1], a)
    assert np.array_equal(b[..., 3], alpha)
    # (OpenCV writes its TIFFs LZW-compressed; without imagecodecs the 16-bit writer says it
    # writes deflate instead: that note, and nothing else)
    assert all("TIFF compression (tiff_lzw)" in f for f in sink.fallbacks), sink.fallbacks


def test_info_says_a_photo_is_16bit(tmp_path):
    from stream_gpen.commands import describe_input

    cv2.imwrite(str(tmp_path / "s.png"), _gradient()[..., ::-1])
    info = describe_input(str(tmp_path / "s.png"))
    assert info["bits"] == 16 and any("written at 16 bits" in p for p in info["plan"])
    cv2.imwrite(str(tmp_path / "e.png"), (_gradient() // 257).astype(np.uint8))
    assert describe_input(str(tmp_path / "e.png"))["bits"] == 8


def test_api_takes_16bit_arrays_and_gives_16bit_back(shared, mobilenet_weights):
    from stream_gpen import Enhancer
    from stream_gpen.errors import InvalidInputError

    from tests._doubles import FineRestorer

    bgr = cv2.resize(cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg")), (320, 240),
                     interpolation=cv2.INTER_AREA)
    rgb8 = np.ascontiguousarray(bgr[..., ::-1])
    deep = (rgb8.astype(np.int32) * 257 + 77).clip(0, 65535).astype(np.uint16)
    enh = Enhancer(FineRestorer(64), device="cpu", detector_weights=mobilenet_weights, faces="largest")
    out16, out8 = enh.enhance_images([deep, rgb8])
    assert out16.dtype == np.uint16 and out16.shape == deep.shape and out8.dtype == np.uint8
    assert (np.abs(out16.astype(np.int64) - round(100.4 * 257)) <= 1).sum() > 3000  # the face, at 16 bits
    assert (out16 == deep).mean() > 0.5 and (out8 == 100).sum() > 3000
    grey = enh.enhance_image(deep[..., 1].copy())
    assert grey.dtype == np.uint16 and grey.shape == deep.shape[:2]
    with pytest.raises(InvalidInputError, match=r"must be uint8 \(or uint16"):
        enh.enhance_image(deep.astype(np.float32))
    # big-endian 16 bits (Pillow's I;16B, FITS files) are the same levels: taken, native uint16 out
    big = enh.enhance_image(deep.astype(">u2"))
    assert big.dtype == np.dtype(">u2") and np.array_equal(big, out16)  # same levels, same dtype back


def test_ultra_hdr_gain_map_is_kept_in_jpeg_output(tmp_path, shared, mobilenet_weights):
    """Phones' Ultra HDR JPEGs carry a gain map as a second MPF picture: the main photo is
    restored and the gain map written back byte for byte behind it, with a new MPF index;
    other output formats drop it and say so; a stereo MPO is noted as such (as it is written)."""
    from stream_gpen import Enhancer

    from tests._doubles import SolidRestorer

    bgr = cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))
    main_img = Image.fromarray(np.ascontiguousarray(cv2.resize(bgr, (320, 240))[..., ::-1]))
    gain = Image.fromarray(np.tile(np.arange(40, dtype=np.uint8)[None] * 6, (30, 1))).convert("RGB")
    # a stand-in for the hdrgm XMP (Pillow 13's MPO writer breaks the MPF offsets with a longer XMP)
    src = tmp_path / "PXL_0001.jpg"
    main_img.save(src, format="MPO", save_all=True, append_images=[gain], xmp=b"<x hdrgm/>")
    with Image.open(src) as im:
        assert im.format == "MPO" and im.n_frames == 2
    from stream_gpen.io._image import _read_gain_map

    with Image.open(src) as im:
        gain_bytes = _read_gain_map(im, src.read_bytes())["gain_map"]
    assert gain_bytes[:2] == b"\xff\xd8" and src.read_bytes().endswith(gain_bytes)
    notes: list[str] = []
    _load(src, notes)
    assert notes == []  # nothing is lost for JPEG output
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, faces="largest")
    summary = enh.enhance_file(src, tmp_path / "out.jpg")
    assert summary.faces_restored == 1 and not summary.fallbacks
    out = (tmp_path / "out.jpg").read_bytes()
    assert out.endswith(gain_bytes)
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.format == "MPO" and im.n_frames == 2 and b"hdrgm" in im.info["xmp"]
        first = np.asarray(im.convert("RGB"))
        assert (first > 250).all(axis=2).sum() > 500  # the restored (solid white) face is in the main photo
        im.seek(1)
        assert im.size == (40, 30) and np.abs(np.asarray(im.convert("L")).astype(int) - np.asarray(gain.convert("L"))).max() <= 2
        entries = im.mpinfo[0xB002]
        assert entries[0]["Size"] == len(out) - len(gain_bytes) and entries[1]["Size"] == len(gain_bytes)
    summary = enh.enhance_file(src, tmp_path / "out.png")
    assert any("HDR gain map was dropped: PNG output cannot hold it" in f for f in summary.fallbacks)
    main_img.save(tmp_path / "stereo.jpg", format="MPO", save_all=True, append_images=[main_img])
    notes = []
    _load(tmp_path / "stereo.jpg", notes)
    assert notes == []  # (said as it is written: test_photos26 for a photo with no face)
    summary = enh.enhance_file(tmp_path / "stereo.jpg", tmp_path / "stereo_out.jpg")
    said = [f for f in summary.fallbacks if "a stereo pair" in f]
    assert len(said) == 1 and "restored and written on its own" in said[0] and "animation" not in said[0]


def test_iphone_hdr_gain_map_loss_is_reported(tmp_path):
    from fractions import Fraction

    import torch

    from stream_gpen.io._image import _heif_gain_map
    from stream_gpen.io._ring import Frame

    assert _heif_gain_map({"aux": {"urn:com:apple:photo:2020:aux:hdrgainmap": [2]}})
    assert not _heif_gain_map({"aux": {"urn:mpeg:hevc:2015:auxid:1": [3]}}) and not _heif_gain_map({})
    sink = ImageSink(tmp_path / "o.jpg")
    frame = Frame(index=0, pts=0, time_base=Fraction(1), time=0.0,
                  _image=torch.zeros((8, 8, 3), dtype=torch.uint8),
                  image_info={"format": "HEIF", "heif_gain_map": True})
    sink.write(frame)
    assert any("HDR gain map of iPhone HDR photos was dropped" in f for f in sink.fallbacks)


def test_motion_photo_video_is_kept_after_the_restored_picture(tmp_path, shared, mobilenet_weights):
    """Pixel/Samsung motion photos: a JPEG with an MP4 after its end (found by readers from the end
    of the file). The restored JPEG gets the same bytes after it; PNG output says it drops them."""
    import av

    from stream_gpen import Enhancer

    from tests._clips import write_video
    from tests._doubles import SolidRestorer

    clip = write_video(tmp_path / "motion.mp4", [np.full((48, 64, 3), 90, np.uint8)] * 3)
    video = clip.read_bytes()
    bgr = cv2.resize(cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg")), (320, 240))
    still = Image.fromarray(np.ascontiguousarray(bgr[..., ::-1]))
    buf = io.BytesIO()
    still.save(buf, format="JPEG", quality=90, xmp=b'<x GCamera:MotionPhoto="1"/>')
    src = tmp_path / "PXL_20261128_MP.jpg"
    src.write_bytes(buf.getvalue() + video)
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, faces="largest")
    summary = enh.enhance_file(src, tmp_path / "out.jpg")
    assert summary.faces_restored == 1 and not summary.fallbacks
    out = (tmp_path / "out.jpg").read_bytes()
    assert out.endswith(video) and len(out) > len(video) + 1000
    (tmp_path / "back.mp4").write_bytes(out[-len(video):])
    with av.open(str(tmp_path / "back.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 3
    with Image.open(tmp_path / "out.jpg") as im:
        assert (np.asarray(im.convert("RGB")) > 250).all(axis=2).sum() > 500  # the restored still
    summary = enh.enhance_file(src, tmp_path / "out.png")
    assert any("a motion photo's video" in f and "dropped" in f for f in summary.fallbacks)
    # with an Ultra HDR gain map too: picture, gain map, then the video
    gain = Image.new("RGB", (40, 30), (128, 128, 128))
    mpo = io.BytesIO()
    still.save(mpo, format="MPO", save_all=True, append_images=[gain], xmp=b"<x hdrgm/>")
    both = tmp_path / "both.jpg"
    both.write_bytes(mpo.getvalue() + video)
    enh.enhance_file(both, tmp_path / "both_out.jpg")
    out = (tmp_path / "both_out.jpg").read_bytes()
    assert out.endswith(video)
    with Image.open(tmp_path / "both_out.jpg") as im:
        assert im.format == "MPO" and im.n_frames == 2


def test_10bit_heif_keeps_its_depth_and_colour_description(tmp_path, shared, mobilenet_weights):
    """A camera's 10-bit HEIF (HLG nclx): decoded at 10 bits (pillow-heif's default would give 8),
    faces restored into them, written back as 10-bit HEIF with its nclx; JPEG output says 8."""
    pillow_heif = pytest.importorskip("pillow_heif")

    from stream_gpen import Enhancer

    from tests._doubles import FineRestorer

    bgr = cv2.resize(cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg")), (320, 240))
    v10 = (bgr[..., ::-1].astype(np.uint16) * 4 + 1).clip(0, 1023)  # 10-bit codes with sub-8-bit detail
    nclx = {"color_primaries": 1, "transfer_characteristics": 1, "matrix_coefficients": 1, "full_range_flag": 1}
    src = tmp_path / "IMG_0001.HIF.heic"
    pillow_heif.encode("RGB;16", (320, 240), np.ascontiguousarray(v10 << 6).tobytes(), str(src), quality=-1,
                       chroma=444, nclx_profile=nclx, bit_depth=10)
    rgb, _, _, info, hi = _load(src)
    assert hi is not None and info["bits"] == 10
    assert np.abs(hi.astype(np.int64) - np.round(v10.astype(np.float64) * 65535 / 1023)).mean() < 200
    dst = tmp_path / "out.heic"
    summary = Enhancer(FineRestorer(64), device="cpu", detector_weights=mobilenet_weights,
                       faces="largest").enhance_file(src, dst)
    assert summary.faces_restored == 1 and not summary.fallbacks
    out = pillow_heif.open_heif(str(dst), convert_hdr_to_8bit=False)
    assert out.info["bit_depth"] == 10 and out.info["nclx_profile"]["transfer_characteristics"] == 1
    codes = np.asarray(out).astype(np.int64) >> 6
    # 100.4 is code 402.8 at 10 bits: the restorer's precision gives 403, an 8-bit face 401 (100 * 1023 / 255)
    fine = (codes == 403).all(axis=2).sum()
    assert fine > 2000 and fine > 10 * (codes == 401).all(axis=2).sum()
    summary = Enhancer(FineRestorer(64), device="cpu", detector_weights=mobilenet_weights).enhance_file(
        src, tmp_path / "out.jpg")
    assert any("10-bit pictures were written at 8 bits" in f for f in summary.fallbacks)  # (said 16 before hunt 16)


def test_16bit_into_heic_says_it_is_written_at_12_bits(tmp_path):
    # (hunt 16) HEIC holds 10 or 12 bits: a 16-bit PNG written as .heic lost 4 bits with no note,
    # while .jpg/.webp/.avif had one recommending .heic
    pillow_heif = pytest.importorskip("pillow_heif")
    sink = _16bit_png_into(tmp_path / "out.heic")
    assert any("16-bit pictures were written at 12 bits" in f and ".png or .tif" in f for f in sink.fallbacks)
    assert pillow_heif.open_heif(str(tmp_path / "out.heic"), convert_hdr_to_8bit=False).info["bit_depth"] == 12


def test_compressed_16bit_tiff_is_written_with_the_predictor(tmp_path):
    # (hunt 16) deflate without horizontal differencing: a 16-bit scan came back ~2x its size
    import tifffile

    src = tmp_path / "scan.tif"
    tifffile.imwrite(src, _gradient(240, 320), photometric="rgb", compression="zlib", predictor=True)
    dst = tmp_path / "out.tif"
    _write_through(src, dst)
    with tifffile.TiffFile(dst) as t:
        page = t.pages[0]
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE and page.predictor == tifffile.PREDICTOR.HORIZONTAL
        assert np.array_equal(page.asarray(), _gradient(240, 320))
    assert dst.stat().st_size < 2 * src.stat().st_size
