"""Photos and folders a real user brings (hunt 13): an output folder inside the input, multi-page
TIFFs and animations, camera JPEGs Pillow opens as MPO, XMP into PNG/TIFF, ImageMagick's raw
profiles, stale EXIF sizes, TIFF compressions Pillow does not write. Each case once failed."""
from __future__ import annotations

import binascii
import hashlib

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin, PngImagePlugin

from _doubles import SolidRestorer
from stream_gpen import Enhancer
from stream_gpen.errors import InvalidInputError

XMP = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
       'tiff:Orientation="6"><dc:subject>grandma, 1962</dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>')


def _md5(p) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def test_output_folder_inside_the_input_holding_its_own_photos_is_refused(tmp_path, enh, face):
    """``enhance lib -o lib/2019`` with original photos in lib/2019: they were left out of the walk
    without a word (taken for an earlier run's output), and with overwrite ``lib/2019/a.jpg`` was
    replaced by ``lib/a.jpg``'s result (exit 0). Refused now; an earlier run's output folder
    inside the input (only outputs in it) is still left out and redone as before."""
    lib = tmp_path / "lib"
    (lib / "2019").mkdir(parents=True)
    face.save(lib / "a.jpg")
    face.resize((48, 32)).save(lib / "2019" / "a.jpg")  # another photo under the same name
    face.resize((48, 32)).save(lib / "2019" / "b.jpg")
    before = _md5(lib / "2019" / "a.jpg")
    for overwrite in (False, True):
        with pytest.raises(InvalidInputError, match=r"inside the input folder and holds 1 photo.*first: b\.jpg") as e:
            enh.enhance_file(lib, lib / "2019", overwrite=overwrite)
        assert e.value.exit_code == 2 and "outside" in e.value.hint
    assert _md5(lib / "2019" / "a.jpg") == before
    # an earlier run's output inside the input: not re-walked, redone with overwrite
    (lib / "2019" / "b.jpg").unlink()
    (lib / "2019" / "a.jpg").unlink()
    (lib / "sub").mkdir()
    face.save(lib / "sub" / "c.png")
    enh.enhance_file(lib, lib / "out")
    s = enh.enhance_file(lib, lib / "out", overwrite=True, image_format="webp")  # (a.jpg -> a.webp: also its)
    assert s.frames_out == 2
    assert sorted(p.relative_to(lib / "out").as_posix() for p in (lib / "out").rglob("*.*")) == [
        "a.jpg", "a.webp", "sub/c.png", "sub/c.webp"]


def test_every_page_of_a_multi_page_tiff_and_every_frame_of_an_animation_is_restored(tmp_path, mobilenet_weights,
                                                                                       shared):
    """A 3-page TIFF (a scanned album) or a 3-frame WebP/PNG animation restored with ``-o SAME
    --overwrite`` came back with its first page alone (exit 0: pages 2..3 gone), and the TIFF's
    advice was to make a video of it. Every page is restored now and written back in order, an
    animation with its frame times and loop count; a format of one picture gets the first, said."""
    enh = Enhancer(SolidRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False)
    face = Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB")
    pages = [face, face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), face.convert("L").convert("RGB")]
    album, anim, apng = tmp_path / "album.tif", tmp_path / "anim.webp", tmp_path / "anim.png"
    pages[0].save(album, save_all=True, append_images=pages[1:], compression="tiff_lzw")
    pages[0].save(anim, save_all=True, append_images=pages[1:], duration=[200, 300, 400], loop=2, lossless=True)
    pages[0].save(apng, save_all=True, append_images=pages[1:], duration=[200, 300, 400], loop=2)
    for p in (album, anim, apng):
        s = enh.enhance_file(p, p, overwrite=True)
        assert s.frames_out == 3 and s.faces_restored >= 3, (p, s)
        with Image.open(p) as im:
            assert im.n_frames == 3
            for k, orig in enumerate(pages):
                im.seek(k)
                im.load()
                if p != album:
                    assert im.info["duration"] == 200 + 100 * k and im.info.get("loop") == 2
                got = np.asarray(im.convert("RGB")).astype(int)
                white = (got.min(axis=2) == 255).sum() - (np.asarray(orig).min(axis=2) == 255).sum()
                assert white > 500, (p, k, white)  # the face was restored (SolidRestorer: white)
                # page order kept: each page is closest to its own original outside the face
                diffs = [np.abs(got - np.asarray(o).astype(int)).mean() for o in pages]
                assert int(np.argmin(diffs)) == k, (p, k, diffs)
    with Image.open(album) as im:
        assert im.info["compression"] == "tiff_lzw"
    (tmp_path / "lib").mkdir()
    album.rename(tmp_path / "lib" / "album.tif")
    s = enh.enhance_file(tmp_path / "lib", tmp_path / "done")  # a folder's mirror too
    assert s.frames_out == 3
    with Image.open(tmp_path / "done" / "album.tif") as im:
        assert im.n_frames == 3
    album = tmp_path / "lib" / "album.tif"
    s = enh.enhance_file(album, tmp_path / "first.jpg")
    assert any("only the first page or frame of multi-page pictures was written: JPEG" in f for f in s.fallbacks)
    with Image.open(tmp_path / "first.jpg") as im:
        assert getattr(im, "n_frames", 1) == 1


def test_camera_jpeg_opened_as_mpo_keeps_sampling_progressive_and_comment(tmp_path, enh, face):
    """Camera JPEGs with an MPF preview (and Ultra HDR ones) open as MPO in Pillow: their output
    came back 4:2:0 and baseline, without the comment, and a note said JPEG cannot carry it."""
    src = tmp_path / "cam.jpg"
    face.save(src, format="MPO", save_all=True, append_images=[face.resize((48, 32))], subsampling=0,
              quality=90, progressive=True, comment=b"my comment")
    with Image.open(src) as im:
        assert im.format == "MPO"
    s = enh.enhance_file(src)
    with Image.open(tmp_path / "cam_enhanced.jpg") as im:
        assert JpegImagePlugin.get_sampling(im) == 0
        assert im.info.get("progressive") and im.info.get("comment") == b"my comment"
    assert not any("comment" in f for f in s.fallbacks), s.fallbacks


def _xmp_of_tiff(p) -> bytes | None:
    import tifffile

    with tifffile.TiffFile(p) as t:
        tag = t.pages[0].tags.get(700)
        return None if tag is None else bytes(tag.value)


def test_xmp_is_written_into_tiff_and_png_upright(tmp_path, enh, face):
    """XMP (keywords, captions, face regions) was dropped for TIFF -> TIFF (8-bit and 16-bit) and
    JPEG -> PNG/TIFF, with a note blaming Pillow, which writes both. Written now, as
    ``upright_xmp`` makes it (the picture is written upright)."""
    import tifffile

    scan, photo, deep = tmp_path / "scan.tif", tmp_path / "photo.jpg", tmp_path / "deep.tif"
    face.save(scan, compression="tiff_lzw", tiffinfo={700: XMP.encode()})
    face.save(photo, xmp=XMP.encode())
    tifffile.imwrite(deep, np.asarray(face).astype(np.uint16) * 257, photometric="rgb",
                     extratags=[(700, "B", len(XMP), XMP.encode(), True)])
    want = XMP.replace('tiff:Orientation="6"', 'tiff:Orientation="1"').encode()
    s = enh.enhance_file(scan)
    with Image.open(tmp_path / "scan_enhanced.tif") as im:
        assert im.info.get("xmp") == want and im.info["compression"] == "tiff_lzw"
    s2 = enh.enhance_file(photo, tmp_path / "photo.png")
    with Image.open(tmp_path / "photo.png") as im:
        assert im.info.get("xmp") == want  # (an iTXt chunk XML:com.adobe.xmp)
    s3 = enh.enhance_file(photo, tmp_path / "photo.tif")
    assert _xmp_of_tiff(tmp_path / "photo.tif") == want
    s4 = enh.enhance_file(deep)
    assert _xmp_of_tiff(tmp_path / "deep_enhanced.tif") == want
    with tifffile.TiffFile(tmp_path / "deep_enhanced.tif") as t:
        assert t.pages[0].dtype == np.uint16
    for summary in (s, s2, s3, s4):
        assert not any("XMP" in f for f in summary.fallbacks), summary.fallbacks


def _raw_profile(name: str, data: bytes) -> str:
    h = binascii.hexlify(data).decode()
    return f"\n{name}\n{len(data):8d}\n" + "\n".join(h[i:i + 72] for i in range(0, len(h), 72)) + "\n"


def test_png_raw_profiles_do_not_carry_a_stale_orientation(tmp_path, enh, face):
    """ImageMagick keeps a PNG's EXIF as a "Raw profile type exif" text chunk: Pillow turns the
    picture upright by it and an eXIf chunk says 1, but the text chunk was copied still saying 6
    (readers that take it turned the photo again). It is left out where EXIF is written; a "Raw
    profile type xmp" is carried with its orientation set to 1."""
    ex = Image.Exif()
    ex[274], ex[271] = 6, "Canon"
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", _raw_profile("exif", ex.tobytes()), zip=True)
    info.add_text("Raw profile type xmp", _raw_profile("xmp", XMP.encode()), zip=True)
    src = tmp_path / "magick.png"
    face.transpose(Image.Transpose.ROTATE_90).save(src, pnginfo=info)
    enh.enhance_file(src)
    with Image.open(tmp_path / "magick_enhanced.png") as im:
        assert im.size == (96, 64) and im.getexif().get(274) == 1 and im.getexif().get(271) == "Canon"
        assert "Raw profile type exif" not in im.info
        body = im.info["Raw profile type xmp"].split("\n", 3)
        xmp = binascii.unhexlify("".join(body[3].split()))
        assert int(body[2]) == len(xmp) and b'tiff:Orientation="1"' in xmp and b"grandma, 1962" in xmp


def test_rotated_photo_states_its_written_size_in_exif(tmp_path, enh, face):
    """A phone photo stored 96x64 with Orientation 6 is written 64x96 upright: its Exif IFD still
    said PixelXDimension 96, PixelYDimension 64."""
    ex = Image.Exif()
    ex[274] = 6
    ex.get_ifd(0x8769).update({40962: 96, 40963: 64})
    src = tmp_path / "phone.jpg"
    face.save(src, exif=ex.tobytes())
    enh.enhance_file(src)
    with Image.open(tmp_path / "phone_enhanced.jpg") as im:
        assert im.size == (64, 96)
        assert dict(im.getexif().get_ifd(0x8769)) == {40962: 64, 40963: 96}


def test_tiff_compressions_pillow_does_not_write_become_deflate_with_a_note(tmp_path, enh, face):
    """JPEG-in-TIFF and CCITT G4 scans were written uncompressed (3-4x bigger), without a word."""
    face.save(tmp_path / "scan.tif", compression="jpeg")
    face.convert("1").save(tmp_path / "fax.tif", compression="group4")
    for name, comp in (("scan", "jpeg"), ("fax", "group4")):
        s = enh.enhance_file(tmp_path / f"{name}.tif")
        with Image.open(tmp_path / f"{name}_enhanced.tif") as im:
            assert im.info["compression"] == "tiff_adobe_deflate"
        assert any(f"TIFF compression ({comp}) is not written here: written losslessly as deflate" in f
                   for f in s.fallbacks), s.fallbacks


def test_still_gif_is_a_photo_written_as_png_with_its_transparency(tmp_path, enh, face):
    """A one-frame GIF (an old scan, a web portrait) became a 0.1 s one-frame H.264 video padded to
    an even size, its transparency lost, and ``-o x.png`` was refused ("the input is a video").
    It is a photo now: ``NAME_enhanced.png`` by default (said), alpha kept; an animated GIF is
    still a video, in a folder too."""
    from stream_gpen.api import resolve_output

    still = face.resize((45, 45)).convert("P", palette=Image.Palette.ADAPTIVE)
    still.info["transparency"] = 0
    src = tmp_path / "portrait.gif"
    still.save(src, transparency=0)
    assert resolve_output(str(src)) == str(tmp_path / "portrait_enhanced.png")
    s = enh.enhance_file(src)
    assert s.output == str(tmp_path / "portrait_enhanced.png")
    assert any("still GIFs are written as PNG" in f for f in s.fallbacks), s.fallbacks
    with Image.open(tmp_path / "portrait_enhanced.png") as im, Image.open(src) as orig:
        assert im.size == (45, 45) and im.mode == "RGBA"
        assert (np.asarray(im)[..., 3] == np.asarray(orig.convert("RGBA"))[..., 3]).all()
    enh.enhance_file(src, tmp_path / "x.png")
    assert (tmp_path / "x.png").is_file()
    album = tmp_path / "album"
    album.mkdir()
    still.save(album / "still.gif", transparency=0)
    frames = [face.resize((32, 32)), face.resize((32, 32)).rotate(180)]
    frames[0].save(album / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    enh.enhance_file(album, tmp_path / "done")
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["anim.mp4", "still.png"]


def test_compressed_tiff_whose_exif_has_sub_directories_is_written_uncompressed_with_a_note(tmp_path):
    """libtiff (Pillow's compressed TIFF writer) refuses EXIF sub-directories: a camera's LZW TIFF
    (or, once JPEG/G4 TIFFs were written as deflate, one of those) failed with "Error setting
    from dictionary". Its EXIF is kept and the TIFF written uncompressed, said."""
    from fractions import Fraction

    import torch

    from stream_gpen.io import Frame
    from stream_gpen.io._image import ImageSink

    ex = Image.Exif()
    ex[271] = "Nikon"
    ex.get_ifd(0x8769)[36867] = "2001:01:01 10:00:00"
    for comp in ("tiff_lzw", "jpeg"):
        sink = ImageSink(tmp_path / f"{comp}.tif")
        frame = Frame(index=0, pts=0, time_base=Fraction(1), time=0.0, _image=torch.zeros(8, 8, 3, dtype=torch.uint8),
                      image_info={"format": "TIFF", "compression": comp, "exif": ex.tobytes()})
        sink.write(frame)
        with Image.open(tmp_path / f"{comp}.tif") as im:
            assert im.info["compression"] == "raw" and im.getexif().get_ifd(0x8769)[36867] == "2001:01:01 10:00:00"
        assert len(sink.fallbacks) == 1 and f"the input's {comp}): Pillow's compressed TIFF writer" in sink.fallbacks[0]


def test_a_same_size_original_under_a_reused_camera_name_is_not_taken_for_an_earlier_output(tmp_path, enh, shared):
    """A camera's photos share one size and its numbers start again: ``lib/IMG_0001.jpg`` and
    ``lib/2019/IMG_0001.jpg`` are two photos of one size. The size alone took the 2019 original for
    ``lib/IMG_0001.jpg``'s earlier output, and ``--overwrite`` replaced it; its thumbnail tells."""
    lib = tmp_path / "lib"
    (lib / "2019").mkdir(parents=True)
    whole = shared / "data/faces/whole"
    Image.open(whole / "gfpgan_whole_Blake_Lively.jpg").convert("RGB").resize((160, 120)).save(lib / "IMG_0001.jpg")
    Image.open(whole / "codeformer_whole_00.jpg").convert("RGB").resize((160, 120)).save(
        lib / "2019" / "IMG_0001.jpg")
    before = _md5(lib / "2019" / "IMG_0001.jpg")
    with pytest.raises(InvalidInputError, match=r"inside the input folder .*first: \S*IMG_0001\.jpg"):
        enh.enhance_file(lib, lib / "2019", overwrite=True)
    assert _md5(lib / "2019" / "IMG_0001.jpg") == before
    # the run's own earlier output (same size, same picture but for its faces) is redone
    (lib / "2019" / "IMG_0001.jpg").unlink()
    enh.enhance_file(lib, lib / "out")
    assert enh.enhance_file(lib, lib / "out", overwrite=True).frames_out == 1
