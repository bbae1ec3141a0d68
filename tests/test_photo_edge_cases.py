"""Photos as people's folders hold them: EXIF written by odd software, scans with big metadata,
dark 16-bit pictures, folders run from inside. Each case once failed or lost something."""
from __future__ import annotations

import io
import json
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from _doubles import IdentityRestorer
from stream_gpen import Enhancer
from stream_gpen.cli import main


def _jpeg_with_exif_ifd(img: Image.Image, entries, extra: bytes = b"", cut: int | None = None) -> bytes:
    """A JPEG whose APP1 holds a hand-made little-endian IFD0 of ``entries`` (tag, type, count,
    4-byte value): what cameras and editors write, type errors included; ``cut``: the block
    truncated to this many bytes."""
    body = struct.pack("<H", len(entries))
    for tag, typ, cnt, val in entries:
        body += struct.pack("<HHI", tag, typ, cnt) + val
    body += struct.pack("<I", 0)
    exif = (b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + body + extra)[:cut]
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    d = buf.getvalue()
    return d[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + d[2:]


def test_orientation_of_the_wrong_type_is_applied_not_a_crash(tmp_path, enh, face):
    """Orientation 6 stored as a RATIONAL (Pillow's re-encoding of it fails): turned upright, the
    EXIF it cannot re-encode reported and not carried; text, out-of-range and 0: as stored."""
    after = 8 + 2 + 12 + 4  # the rational's 8 bytes follow the IFD
    cases = {  # name: (IFD entries, data after the IFD, output size (w, h)); the input is 96x64
        "rational6.jpg": ([(0x0112, 5, 1, struct.pack("<I", after))], struct.pack("<II", 6, 1), (64, 96)),
        "ascii.jpg": ([(0x0112, 2, 2, b"6\x00\x00\x00")], b"", (96, 64)),  # text: not applied (as Pillow)
        "long.jpg": ([(0x0112, 4, 1, struct.pack("<I", 70000))], b"", (96, 64)),
        "zero.jpg": ([(0x0112, 3, 1, struct.pack("<HH", 0, 0))], b"", (96, 64)),
    }
    for name, (entries, extra, size) in cases.items():
        (tmp_path / name).write_bytes(_jpeg_with_exif_ifd(face, entries, extra))
        enh.enhance_file(tmp_path / name, tmp_path / f"out_{name}")
        with Image.open(tmp_path / f"out_{name}") as out:
            assert out.size == size, (name, out.size)


def test_corrupt_exif_is_said_once_as_ours(tmp_path, enh, face, caplog):
    (tmp_path / "t.jpg").write_bytes(_jpeg_with_exif_ifd(face, [(0x0112, 3, 1, struct.pack("<HH", 6, 0))], cut=20))
    with _no_python_warnings():
        enh.enhance_file(tmp_path / "t.jpg", tmp_path / "o.jpg")
    assert (tmp_path / "o.jpg").exists()
    assert any("t.jpg: Corrupt EXIF data" in r.getMessage() for r in caplog.records), caplog.records


class _no_python_warnings:
    """Python warnings (Pillow's "Corrupt EXIF data") must not escape as a source line of Pillow's."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self.said = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        assert not [w for w in self.said if "EXIF" in str(w.message)], [str(w.message) for w in self.said]


def test_scan_metadata_a_jpeg_cannot_hold_is_dropped_and_said(tmp_path, enh, face):
    """A scan's TIFF with a 100 KB Photoshop resource block and layer data: neither is carried
    (they hold the unrestored picture, which an editor would show; as JPEG EXIF the block was
    also too long for an APP1 segment and crashed the run); its description is."""
    src = tmp_path / "scan.tif"
    face.save(src, tiffinfo={34377: b"8BIM" + bytes(100_000), 37724: b"Adobe Photoshop Document Data Block\x00",
                             270: "family, 1962", 282: 300.0, 283: 300.0, 296: 2})
    s = enh.enhance_file(src, tmp_path / "scan.jpg")
    with Image.open(tmp_path / "scan.jpg") as out:
        assert out.format == "JPEG" and out.info.get("dpi") == (300, 300)
        assert out.getexif().get(270) == "family, 1962" and 34377 not in out.getexif()
    assert any("Photoshop layers" in f for f in s.fallbacks), s.fallbacks
    s = enh.enhance_file(src, tmp_path / "out.tif")
    with Image.open(tmp_path / "out.tif") as out:
        tags = dict(out.tag_v2)
        assert 37724 not in tags and 34377 not in tags and tags.get(270) == "family, 1962"
    assert any("Photoshop layers" in f for f in s.fallbacks), s.fallbacks

    # a big EXIF in a PNG, written as JPEG: dropped and said
    exif = Image.Exif()
    exif[0x010E] = "x" * 70_000
    face.save(tmp_path / "big.png", exif=exif.tobytes())
    s = enh.enhance_file(tmp_path / "big.png", tmp_path / "big.jpg")
    assert (tmp_path / "big.jpg").exists() and any("EXIF was dropped" in f for f in s.fallbacks)


def test_photo_metadata_round_4(tmp_path, enh, face):
    """(1) A Lightroom-sized XMP (over 64 KB) written as JPEG crashed the run (Pillow refuses
    it): dropped and said, as a big EXIF is. (2) A PNG's colour key (tRNS on an RGB or grey
    picture) was lost: the keyed pixels stay transparent. (3) A grey photo's GRAY profile went
    into an RGB WebP (WebP has no grey): dropped and said."""
    big = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b" " * 100_000 + b"</x:xmpmeta>"
    face.save(tmp_path / "edited.webp", xmp=big, lossless=True)
    s = enh.enhance_file(tmp_path / "edited.webp", tmp_path / "edited.jpg")
    assert (tmp_path / "edited.jpg").exists() and any("XMP was dropped" in f for f in s.fallbacks), s.fallbacks

    keyed = np.asarray(face).copy()
    keyed[:8] = (0, 255, 0)
    Image.fromarray(keyed).save(tmp_path / "keyed.png", transparency=(0, 255, 0))
    Image.fromarray(keyed[:, :, 1]).save(tmp_path / "keyed_grey.png", transparency=255)
    for name in ("keyed.png", "keyed_grey.png"):
        enh.enhance_file(tmp_path / name, tmp_path / f"out_{name}")
        with Image.open(tmp_path / f"out_{name}") as out:
            a = np.asarray(out.convert("RGBA"))[:, :, 3]
        assert (a[:8] == 0).all() and (a[8:] == 255).mean() > 0.95, name

    grey_icc = _gray_profile()
    face.convert("L").save(tmp_path / "grey.jpg", icc_profile=grey_icc)
    s = enh.enhance_file(tmp_path / "grey.jpg", tmp_path / "grey.webp")
    with Image.open(tmp_path / "grey.webp") as out:
        assert out.info.get("icc_profile") is None
    assert any("GRAY ICC profile was dropped" in f and "RGB pixels" in f for f in s.fallbacks), s.fallbacks


def test_xmp_orientation_is_reset_with_the_exif_one(tmp_path, enh, face):
    """A phone photo stored sideways with EXIF and XMP Orientation 6 is written upright with EXIF
    Orientation 1, but its XMP still said 6: XMP-first readers turned it again."""
    side = face.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    side.save(tmp_path / "phone.jpg", exif=exif, xmp=xmp)
    enh.enhance_file(tmp_path / "phone.jpg", tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.size == face.size and out.getexif().get(0x0112, 1) == 1
        assert b'tiff:Orientation="1"' in out.info["xmp"] and b'Orientation="6"' not in out.info["xmp"]


def _gray_profile() -> bytes:
    """A minimal ICC v2 GRAY display profile (header, a gamma 2.2 grey TRC and a D50 white)."""
    def tag(sig, data):
        return sig, data + b"\0" * (-len(data) % 4)

    xyz = b"XYZ \0\0\0\0" + struct.pack(">3i", 63190, 65536, 54061)  # D50
    trc = b"curv\0\0\0\0" + struct.pack(">IH", 1, 563) + b"\0\0"  # gamma 2.2 (u8.8)
    desc = b"desc\0\0\0\0" + struct.pack(">I", 5) + b"gray\0" + b"\0" * 79
    tags = [tag(b"desc", desc), tag(b"wtpt", xyz), tag(b"kTRC", trc)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = struct.pack(">I4sI4s4s4s", size, b"none", 0x02100000, b"mntr", b"GRAY", b"XYZ ") + bytes(12)
    header += b"acsp" + bytes(24) + struct.pack(">3i", 63190, 65536, 54061) + bytes(48)
    return header + table + body


def test_tiff_without_resolution_gets_none(tmp_path, enh, face):
    """Pillow says (1, 1) dpi for a TIFF without resolution tags; written back that would make a
    photo hundreds of inches wide in layout programs."""
    cv2.imwrite(str(tmp_path / "cv.tif"), np.asarray(face)[:, :, ::-1])
    for out in ("o.tif", "o.png", "o.jpg"):
        enh.enhance_file(tmp_path / "cv.tif", tmp_path / out)
    with Image.open(tmp_path / "o.tif") as t, Image.open(tmp_path / "o.png") as p, Image.open(tmp_path / "o.jpg") as j:
        assert 282 not in t.tag_v2 and "dpi" not in p.info and j.info.get("dpi") in (None, (72, 72), (1, 1)) \
            and j.info.get("jfif_unit", 0) == 0


def test_dark_16_bit_grey_stays_dark_and_16_bit(tmp_path, enh):
    """A 16-bit grey scan whose brightest value is 218 of 65535 is a dark picture, not an 8-bit
    one: kept as it is, not stretched 257x."""
    dark = (np.arange(64 * 80, dtype=np.uint16).reshape(64, 80) % 219)
    cv2.imwrite(str(tmp_path / "dark.png"), dark)
    s = enh.enhance_file(tmp_path / "dark.png", tmp_path / "out.png")
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and np.array_equal(out, dark)
    assert not any("do not match" in f for f in s.fallbacks), s.fallbacks


def test_a_photo_that_fails_in_a_folder_is_listed_and_the_rest_go_on(tmp_path, enh, face, monkeypatch):
    import stream_gpen.io._image as image_mod

    album = tmp_path / "album"
    album.mkdir()
    for n in ("a", "b", "c", "d"):
        face.save(album / f"{n}.png")
    load, options = image_mod._load, image_mod.ImageSink._save_options

    def bad_load(path, notes=None):
        if path.name == "b.png":
            raise RuntimeError("a decoder bug")
        return load(path, notes)

    def bad_options(self, path, im, info):
        if path.name == "c.png":
            raise ValueError("a writer bug")
        return options(self, path, im, info)

    monkeypatch.setattr(image_mod, "_load", bad_load)
    monkeypatch.setattr(image_mod.ImageSink, "_save_options", bad_options)
    s = enh.enhance_file(album, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "d.png"]
    assert s.frames_out == 2 and len(s.skipped) == 2
    assert "b.png: could not be read (RuntimeError: a decoder bug)" in s.skipped[0]
    assert s.skipped[1] == "c.png: could not be written (ValueError: a writer bug)"


def test_a_folder_run_stops_when_the_output_refuses_writing(tmp_path, enh, face, monkeypatch):
    """An output folder the user may not write into: every photo was restored, then each write
    failed on its own ("skipped ... PermissionError"), exit 5 and "wrote DIR". The first refusal
    (no permission, not a folder) now ends the run as a full disk does (exit 4)."""
    import errno

    from stream_gpen.io import _image

    (tmp_path / "in").mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        face.save(tmp_path / "in" / name)
    calls = []

    def refuse(self, frame):
        calls.append(frame.rel_path)
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "out" / ".a.tmp.jpg"))

    monkeypatch.setattr(_image.ImageSink, "write", refuse)
    with pytest.raises(PermissionError):
        enh.enhance_file(tmp_path / "in", tmp_path / "out")
    assert len(calls) == 1


def test_folder_outputs_from_dot_and_onto_itself(tmp_path, det_home, face, monkeypatch, capsys):
    album = tmp_path / "album"
    album.mkdir()
    face.save(album / "a.jpg")
    monkeypatch.chdir(album)
    cli = ["--model", "classic", "--quiet"]
    assert main(["enhance", ".", *cli]) == 0
    assert (tmp_path / "album_enhanced" / "a.jpg").exists()
    assert main(["enhance", ".", "-o", ".", *cli]) == 2
    assert "is the input folder" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("")
    assert main(["enhance", ".", "-o", str(tmp_path / "x.txt"), "--overwrite", *cli]) == 2
    assert "is a file; a folder input needs an output folder" in capsys.readouterr().err


def test_api_resume_with_an_upper_case_format(tmp_path, enh, face):
    album = tmp_path / "album"
    album.mkdir()
    face.save(album / "a.png")
    enh.enhance_file(album, tmp_path / "out", image_format="JPG", skip_existing=True)
    again = enh.enhance_file(album, tmp_path / "out", image_format="JPG", skip_existing=True)
    assert again.frames_out == 0 and (tmp_path / "out" / "a.jpg").exists()


def test_info_on_photos_says_what_enhance_does(tmp_path, det_home, face, capsys):
    (tmp_path / "no.jpg").write_text("not an image\n")
    assert main(["info", str(tmp_path / "no.jpg")]) == 2
    assert "cannot read" in capsys.readouterr().err

    f32 = np.linspace(0, 1, 64 * 80, dtype=np.float32).reshape(64, 80)
    Image.fromarray(f32, "F").save(tmp_path / "f.tif")
    assert main(["info", "--json", str(tmp_path / "f.tif")]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert any("written at 8 bits" in p for p in plan) and not any("written at 16" in p for p in plan), plan

    from PIL import ImageCms

    cmyk = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cmyk = cmyk[:16] + b"CMYK" + cmyk[20:]  # a profile of another colour space
    face.convert("CMYK").save(tmp_path / "c.jpg", icc_profile=cmyk)
    assert main(["info", "--json", str(tmp_path / "c.jpg")]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert "ICC profile (CMYK) dropped: it does not describe the RGB pixels written" in plan, plan


def test_group_photo_small_faces_are_found(tmp_path, shared, mobilenet_weights):
    """GPEN's own demo photo (the 1927 Solvay conference, 29 people, faces ~35 px): photos are
    detected at up to 2560 px, not video's 640 (which finds 23), as GPEN's script finds them all,
    and at 640 for the big faces; an explicit detect_size applies to photos too."""
    src = shared / "data/faces/whole/gpen_Solvay_conference_1927.png"
    photo = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False)
    assert photo.enhance_file(src, tmp_path / "a.png").faces_restored == 29
    small = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False,
                     detect_size=640)
    assert small.enhance_file(src, tmp_path / "b.png").faces_restored < 26
    # a selfie's face (1000-1500 px) is over the anchors at 2560: found at 640, not as its parts
    for name in ("gpen_selfie_20200320.101220.jpg", "gpen_selfie_2020-12-10_175750.jpg"):
        assert photo.enhance_file(shared / "data/faces/whole" / name, tmp_path / name).faces_restored == 1, name
    with pytest.raises(Exception, match="detect_size must be an int >= 32 or None, got 8"):
        Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, detect_size=8)


def test_a_photo_of_many_faces_reports_progress_per_model_batch(tmp_path, shared, mobilenet_weights):
    """29 faces take minutes on a CPU: the progress callback hears of each model batch (its
    largest bucket, 8 here) before the photo is written, not only at the end."""
    calls = []
    enh = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False)
    enh.enhance_file(shared / "data/faces/whole/gpen_Solvay_conference_1927.png", tmp_path / "a.png",
                     on_progress=lambda done, total, faces: calls.append((done, total, faces)))
    assert calls == [(0, 1, 8), (0, 1, 16), (0, 1, 24), (0, 1, 29), (1, 1, 29)]


def test_info_faces_counts_what_enhance_restores(shared, det_home, capsys):
    """`info --faces` detects as enhance does (the pyramid): a selfie is one face, not its parts,
    and the Solvay photo 29."""
    for name, n in (("gpen_selfie_20200320.101220.jpg", 1), ("gpen_Solvay_conference_1927.png", 29)):
        assert main(["info", "--faces", "--json", str(shared / "data/faces/whole" / name)]) == 0
        assert json.loads(capsys.readouterr().out)["faces"]["per_frame"] == [n], name


def test_long_names_that_fit_are_written(tmp_path, enh, face):
    """A photo or video named with 83 CJK characters (253 bytes: a download's title) fits the file
    system, but its hidden temporary name, 5-14 bytes longer, did not: "File name too long"."""
    import av

    from tests._clips import write_video

    name = "家" * 83
    face.save(tmp_path / f"{name}.jpg")
    enh.enhance_file(tmp_path / f"{name}.jpg", tmp_path / f"{name[:-1]}x.jpg")
    assert (tmp_path / f"{name[:-1]}x.jpg").is_file()
    write_video(tmp_path / f"{name[:-1]}.mp4", [np.zeros((48, 64, 3), np.uint8)] * 2)
    enh.enhance_file(tmp_path / f"{name[:-1]}.mp4", tmp_path / f"{name[:-2]}x.mp4")
    with av.open(str(tmp_path / f"{name[:-2]}x.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 2


def test_metadata_a_format_change_drops_is_said(tmp_path, enh, face):
    """IPTC (APP13), a PNG's text and gamma, a JPEG's comment were dropped without a word when the
    output could not carry them (IPTC: into PNG; JPEG output keeps it, see test_iptc24)."""
    from PIL import PngImagePlugin

    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0b\x1c\x02x\x00\x06grandma\x00"
    face.save(tmp_path / "news.jpg")
    data = (tmp_path / "news.jpg").read_bytes()
    seg = b"\xff\xed" + struct.pack(">H", len(iptc) + 2) + iptc
    (tmp_path / "news.jpg").write_bytes(data[:2] + seg + data[2:])
    s = enh.enhance_file(tmp_path / "news.jpg", tmp_path / "news_out.png")
    assert any(f.startswith("IPTC") for f in s.fallbacks), s.fallbacks
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("Author", "grandpa")
    face.save(tmp_path / "scan.png", pnginfo=chunks)
    s = enh.enhance_file(tmp_path / "scan.png", tmp_path / "scan.jpg")
    assert any("the input's text (PNG) was dropped" in f for f in s.fallbacks), s.fallbacks
    s = enh.enhance_file(tmp_path / "scan.png", tmp_path / "scan_out.png")
    assert not any("was dropped" in f for f in s.fallbacks), s.fallbacks
