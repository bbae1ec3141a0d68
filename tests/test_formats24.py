"""Hunt 24 (formats): photo formats that are not read here. A raw DNG (a phone's RAW / ProRAW: a
TIFF whose IFD0 is a small preview, the raw image in a SubIFD) was called "a TIF picture, not a
video: rename it to real.tif", and renamed it restored only the 256x170 preview, exit 0, with a note
calling the dropped raw image a "preview". A JPEG XL got "no decoder for the video codec". A folder
run listed them as "neither images nor videos" (with .aae/.db/.txt), and a folder of only such
photos "contains no images", without a word on what they are. Each is now told by its bytes (or
name) and refused with how to convert it; the server's endpoints refuse them with the same words."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

#: a JPEG XL bare codestream (FF0A) and the ISO-BMFF container form (its 'JXL ' signature box)
JXL_CODESTREAM = b"\xff\x0a\xfa\x7f\x01\x90\x08\x06\x01\x00\x48\x00\x4b\x38\x41\x3c\xb6\x3a\x1f\x00"
JXL_BOXED = b"\x00\x00\x00\x0cJXL \x0d\x0a\x87\x0a\x00\x00\x00\x14ftypjxl \x00\x00\x00\x00jxl "


def _picture(h, w, seed=3):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _dng(path, *, dng_tag=True):
    """A DNG as phones write it: IFD0 a small RGB preview (NewSubfileType 1) with the DNGVersion
    tag, the raw CFA image (larger) in its SubIFD. ``dng_tag=False``: the same layout, a plain TIFF."""
    extra = [(50706, "B", 4, (1, 4, 0, 0), True)] if dng_tag else []
    raw = (np.random.default_rng(4).integers(0, 4095, (200, 320))).astype(np.uint16)
    with tifffile.TiffWriter(path) as t:
        t.write(_picture(40, 64), photometric="rgb", subfiletype=1, subifds=1, extratags=extra)
        if dng_tag:
            t.write(raw, photometric=32803, extratags=[(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True)])
        else:
            t.write(_picture(200, 320, 5), photometric="rgb")
    return path


def _outputs(tmp_path, *keep):
    return sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and "home" not in p.parts
                  and p.name not in keep)


@pytest.mark.parametrize("name", ["IMG_0003.DNG", "photo.dng", "as_tif.tif", "as_tiff.TIFF"])
def test_a_raw_dng_is_refused_with_how_to_export_it_never_renamed_to_tif(tmp_path, cli_env, capsys, name):
    from stream_gpen.cli import main

    src = _dng(tmp_path / name)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["enhance", str(src), "-o", str(out), *cli_env]) == 2
    err = capsys.readouterr().err
    assert "is a raw DNG photo" in err and "not read here" in err, err
    assert "rename" not in err.replace(str(src), "") and ".tif" not in err.replace(str(src), ""), err
    assert "export a JPEG, TIFF or HEIC" in err and "raw developer" in err, err
    assert err.count("error:") == 1 and len([ln for ln in err.splitlines() if ln.startswith("stream-gpen: error")]) == 1
    assert not any(out.iterdir())  # the preview was not restored
    assert main(["info", str(src)]) == 2 and "is a raw DNG photo" in capsys.readouterr().err


@pytest.mark.parametrize("data", [JXL_CODESTREAM, JXL_BOXED], ids=["codestream", "boxed"])
@pytest.mark.parametrize("name", ["photo.jxl", "photo.JXL", "photo.jpg", "photo"])
def test_a_jpeg_xl_is_refused_by_its_bytes_with_how_to_convert_it(tmp_path, cli_env, capsys, data, name):
    from stream_gpen.cli import main

    src = tmp_path / name
    src.write_bytes(data)
    assert main(["enhance", str(src), "-o", str(tmp_path / "out.png"), *cli_env]) == 2
    err = capsys.readouterr().err
    assert "is a JPEG XL photo" in err and "Pillow has no JPEG XL decoder" in err, err
    assert "convert it to JPEG, PNG or HEIC" in err and "no decoder for the video codec" not in err, err
    assert not (tmp_path / "out.png").exists()


def test_the_api_refuses_them_too(tmp_path, enh):
    from stream_gpen.errors import NotMediaError

    dng = _dng(tmp_path / "a.dng")
    jxl = tmp_path / "b.jxl"
    jxl.write_bytes(JXL_BOXED)
    for src in (dng, _dng(tmp_path / "c.tif"), jxl):
        with pytest.raises(NotMediaError, match="raw DNG photo|JPEG XL photo") as e:
            enh.enhance_file(src, tmp_path / "out.png")
        assert e.value.exit_code == 2 and e.value.hint
    from stream_gpen.io import open_source
    from stream_gpen.io._image import load_image

    with pytest.raises(NotMediaError, match="raw DNG photo"):
        load_image(tmp_path / "c.tif")
    for src in (dng, jxl):
        with pytest.raises(NotMediaError, match="raw DNG photo|JPEG XL photo"):
            open_source(src)


def test_a_tiff_is_still_read_and_a_jpeg_named_jxl_is_not_taken_for_one(tmp_path):
    from stream_gpen.io._unread import unread_photo

    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, _picture(20, 30), photometric="rgb")
    assert unread_photo(plain) is None
    jpeg = tmp_path / "photo.jxl"
    Image.fromarray(_picture(20, 30)).save(jpeg, "JPEG")
    assert unread_photo(jpeg) is None
    assert unread_photo(tmp_path / "missing.tif") is None  # (its reader says it is not there)
    nef = tmp_path / "DSC_1.NEF"
    tifffile.imwrite(nef, _picture(20, 30), photometric="rgb")
    assert unread_photo(nef)[0] == "raw"  # a maker's raw, by its name (a TIFF inside)


def test_a_folder_says_which_photos_are_not_read_and_how_to_convert_them(tmp_path, enh):
    root = tmp_path / "album"
    root.mkdir()
    Image.fromarray(_picture(48, 64)).save(root / "IMG_0001.JPG")
    _dng(root / "IMG_0003.DNG")
    (root / "photo.jxl").write_bytes(JXL_CODESTREAM)
    (root / "IMG_0001.AAE").write_text("<plist/>")
    (root / "Thumbs.db").write_bytes(b"\0")
    (root / "notes.txt").write_text("hi")
    s = enh.enhance_file(root, tmp_path / "out")
    said = " ".join(s.fallbacks)
    assert "2 photo(s)" in said and "formats not read here" in said and "1 raw DNG, 1 JPEG XL" in said, said
    assert "raw developer" in said and "JPEG XL photos to JPEG, PNG or HEIC" in said, said
    assert "3 file(s)" in said and "neither images nor videos" in said and "(1 .aae, 1 .db, 1 .txt)" in said, said
    assert ".dng" not in said.split("neither images nor videos")[1], said


def test_a_folder_of_only_dng_and_jxl_says_what_they_are(tmp_path, enh):
    from stream_gpen.errors import NotMediaError

    root = tmp_path / "raws"
    root.mkdir()
    _dng(root / "IMG_1.DNG")
    (root / "IMG_2.jxl").write_bytes(JXL_BOXED)
    with pytest.raises(NotMediaError, match="contains no images") as e:
        enh.enhance_file(root, tmp_path / "out")
    assert "2 photo(s) are in formats not read here" in str(e.value) and "1 raw DNG, 1 JPEG XL" in str(e.value)
    assert "raw developer" in e.value.hint and "JPEG XL" in e.value.hint


def test_a_full_resolution_subifd_is_not_called_a_preview(tmp_path, enh):
    """A plain TIFF of a DNG's layout (IFD0 a preview, the picture in a SubIFD, no DNGVersion): only
    the preview is read (Pillow does not follow SubIFDs); the note said the dropped picture was a
    "reduced-resolution preview". A pyramid's SubIFD previews keep their words."""
    src = _dng(tmp_path / "layout.tif", dng_tag=False)
    s = enh.enhance_file(src, tmp_path / "out.tif")
    said = " ".join(s.fallbacks)
    assert "reduced-resolution previews" not in said, said
    assert "full-resolution images" in said and "320x200" in said and "only its 64x40 picture" in said, said
    pyramid = tmp_path / "pyramid.tif"
    with tifffile.TiffWriter(pyramid) as t:
        t.write(_picture(80, 120), photometric="rgb", subifds=1)
        t.write(_picture(40, 60), photometric="rgb", subfiletype=1)
    s = enh.enhance_file(pyramid, tmp_path / "pyramid_out.tif")
    said = " ".join(s.fallbacks)
    assert "SubIFDs (reduced-resolution previews kept beside the picture) were dropped" in said, said
    assert "full-resolution" not in said and "only its" not in said, said


def test_the_server_refuses_them_with_the_same_words(tmp_path, enh):
    pytest.importorskip("fastapi")
    from tests.test_server import KEY, client_for, wait_job

    dng = _dng(tmp_path / "a.DNG").read_bytes()
    with client_for(enh, work_dir=tmp_path / "work") as c:
        for data, ctype, what in ((dng, "image/x-adobe-dng", "raw DNG photo"), (dng, "image/tiff", "raw DNG photo"),
                                  (JXL_CODESTREAM, "image/jxl", "JPEG XL photo"),
                                  (JXL_BOXED, "application/octet-stream", "JPEG XL photo")):
            r = c.post("/v1/images:enhance", content=data, headers={**KEY, "Content-Type": ctype})
            assert r.status_code == 415, (r.status_code, r.text[:200])
            assert what in r.json()["detail"] and r.json()["hint"], r.json()
        for data, what in ((dng, "raw DNG photo"), (JXL_BOXED, "JPEG XL photo")):
            r = c.post("/v1/videos", content=data, headers={**KEY, "Content-Type": "video/mp4"})
            assert r.status_code == 202, r.text
            job = wait_job(c, r.json()["id"])
            assert job["state"] == "failed" and what in job["error"], job
            assert "images:enhance" not in job["error"] and "upload.bin" not in job["error"], job
