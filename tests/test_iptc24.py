"""Session 24 (iptc): a JPEG's IPTC (its Photoshop APP13 image resources) was dropped by every restore."""

from __future__ import annotations

import hashlib
import io
import struct

import pytest

CAPTION = b"\x1c\x02\x78" + struct.pack(">H", 23) + b"Grandma at the seaside."  # 2:120 Caption-Abstract
BYLINE = b"\x1c\x02\x50" + struct.pack(">H", 9) + b"J. Smith."  # 2:80 By-line
IPTC = CAPTION + BYLINE


def _irb(rid: int, data: bytes, name: bytes = b"") -> bytes:
    """One image resource block, by hand: 8BIM, id, Pascal name padded even, size, data padded even."""
    pascal = bytes([len(name)]) + name
    return (b"8BIM" + struct.pack(">H", rid) + pascal + b"\x00" * (len(pascal) & 1) + struct.pack(">I", len(data))
            + data + b"\x00" * (len(data) & 1))


def _with_app13(jpeg: bytes, irb: bytes, split: int | None = None) -> bytes:
    """``jpeg`` with ``irb`` in APP13 segments right after SOI (cut every ``split`` bytes, mid-block)."""
    parts = [irb] if split is None else [irb[i:i + split] for i in range(0, len(irb), split)]
    segs = b"".join(b"\xff\xed" + struct.pack(">H", 2 + 14 + len(p)) + b"Photoshop 3.0\x00" + p for p in parts)
    return jpeg[:2] + segs + jpeg[2:]


def _app13(data: bytes) -> list[bytes]:
    """The payloads of a JPEG's APP13 segments, by hand (not through the code under test)."""
    out, i = [], 2
    while data[i] == 0xFF and data[i + 1] != 0xDA:
        n = int.from_bytes(data[i + 2:i + 4], "big")
        if data[i + 1] == 0xED:
            out.append(data[i + 4:i + 2 + n])
        i += 2 + n
    return out


def _resources(data: bytes) -> dict[int, bytes]:
    """{id: data} of the Photoshop resources in a JPEG's APP13 segments, joined, parsed by hand."""
    stream = b"".join(p[14:] for p in _app13(data) if p.startswith(b"Photoshop 3.0\x00"))
    out, i = {}, 0
    while i < len(stream) and stream[i:i + 4] == b"8BIM":
        rid = int.from_bytes(stream[i + 4:i + 6], "big")
        n = stream[i + 6]
        j = i + 7 + n + ((n + 1) & 1)
        size = int.from_bytes(stream[j:j + 4], "big")
        out[rid] = stream[j + 4:j + 4 + size]
        i = j + 4 + size + (size & 1)
    assert not stream[i:].strip(b"\x00"), "unparsed bytes in the APP13 written"
    return out


def _jpeg(face, **kw) -> bytes:
    buf = io.BytesIO()
    face.save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


def _news_photo(face, **kw) -> bytes:
    """A photo as a news desk sends it: IPTC caption + byline, its digest, a copyright flag, a URL,
    and a thumbnail of the unrestored picture (Photoshop 5+'s 0x040C, 4.0's 0x0409)."""
    irb = (_irb(0x0404, IPTC) + _irb(0x0425, hashlib.md5(IPTC).digest()) + _irb(0x040A, b"\x01")
           + _irb(0x040B, b"https://example.org/photo/1", b"url") + _irb(0x040C, b"THUMB" * 201)
           + _irb(0x0409, b"OLDTHUMB" * 10))
    return _with_app13(_jpeg(face, **kw), irb)


def test_jpeg_output_keeps_iptc_and_drops_the_thumbnails(tmp_path, enh, face):
    """The IPTC record (caption, byline) comes back byte for byte with its digest, the copyright
    flag and URL; the thumbnails of the unrestored picture are left out; nothing is said lost."""
    from PIL import Image

    (tmp_path / "news.jpg").write_bytes(_news_photo(face))
    s = enh.enhance_file(tmp_path / "news.jpg", tmp_path / "out.jpg")
    data = (tmp_path / "out.jpg").read_bytes()
    res = _resources(data)
    assert res[0x0404] == IPTC
    assert res[0x0425] == hashlib.md5(IPTC).digest()  # (the digest still true of the record kept)
    assert res[0x040A] == b"\x01" and res[0x040B] == b"https://example.org/photo/1"
    assert 0x040C not in res and 0x0409 not in res
    assert not any("IPTC" in f or "APP13" in f for f in s.fallbacks), s.fallbacks
    with Image.open(tmp_path / "out.jpg") as im:  # (a reader that parses each segment on its own: Pillow)
        im.load()
        assert im.info["photoshop"][0x0404] == IPTC


def test_a_long_app13_split_over_segments_is_read_joined_and_written_split(tmp_path, enh, face):
    """A resource stream over one segment's 64 KB comes in several APP13 segments, cut mid-block;
    it is read joined and written back split again, each segment within the 16-bit length."""
    from PIL import Image

    big = b"\x1c\x02\x78" + b"\x80\x04" + struct.pack(">I", 150_000) + b"x" * 150_000  # (IPTC's extended length)
    irb = _irb(0x0404, big) + _irb(0x040C, b"T" * 5000) + _irb(0x040A, b"\x01")
    (tmp_path / "long.jpg").write_bytes(_with_app13(_jpeg(face), irb, split=60_001))
    enh.enhance_file(tmp_path / "long.jpg", tmp_path / "out.jpg")
    data = (tmp_path / "out.jpg").read_bytes()
    segs = _app13(data)
    assert len(segs) >= 3 and all(len(p) + 2 <= 0xFFFF and p.startswith(b"Photoshop 3.0\x00") for p in segs)
    res = _resources(data)
    assert res[0x0404] == big and res[0x040A] == b"\x01" and 0x040C not in res
    with Image.open(tmp_path / "out.jpg") as im:
        im.load()
        assert im.size == face.size


@pytest.mark.parametrize("damage", [b"8BIM\x04\x04\x00\x00\x00\xff\xff\xff" + IPTC, b"JUNK" + IPTC])
def test_a_damaged_app13_keeps_nothing_and_is_said(tmp_path, enh, face, damage):
    """Resource data that does not parse (a size past its end, no 8BIM signature): nothing of it is
    written, the photo is restored, and the run says so."""
    (tmp_path / "odd.jpg").write_bytes(_with_app13(_jpeg(face), _irb(0x040A, b"\x01") + damage))
    s = enh.enhance_file(tmp_path / "odd.jpg", tmp_path / "out.jpg")
    assert _app13((tmp_path / "out.jpg").read_bytes()) == []
    assert any("do not parse" in f for f in s.fallbacks), s.fallbacks


def test_other_formats_keep_it_where_they_can_and_say_where_not(tmp_path, enh, face):
    """TIFF output keeps the IPTC record as TIFF keeps it (tag 33723, as a TIFF input's is carried);
    PNG and WebP have no place for it: said."""
    from PIL import Image

    (tmp_path / "news.jpg").write_bytes(_news_photo(face))
    s = enh.enhance_file(tmp_path / "news.jpg", tmp_path / "out.tif")
    with Image.open(tmp_path / "out.tif") as im:
        assert bytes(im.tag_v2[33723]) == IPTC
    assert any("other than IPTC were dropped" in f for f in s.fallbacks), s.fallbacks  # (the flag, the URL)
    for ext in ("png", "webp"):
        s = enh.enhance_file(tmp_path / "news.jpg", tmp_path / f"out.{ext}")
        assert any(f.startswith("IPTC (Photoshop APP13") and "was dropped" in f for f in s.fallbacks), s.fallbacks


def test_a_photo_turned_upright_drops_its_paths_keeps_iptc(tmp_path, enh, face):
    """A clipping path is drawn on the picture as stored: written turned upright (EXIF orientation
    6), it would outline the wrong place, so it is left out (said); the IPTC is kept."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    irb = _irb(0x0404, IPTC) + _irb(0x07D0, b"\x00\x06" + b"\x00" * 24, b"Path 1") + _irb(0x0BB7, b"\x06Path 1")
    (tmp_path / "turned.jpg").write_bytes(_with_app13(_jpeg(face, exif=exif.tobytes()), irb))
    s = enh.enhance_file(tmp_path / "turned.jpg", tmp_path / "out.jpg")
    res = _resources((tmp_path / "out.jpg").read_bytes())
    assert res[0x0404] == IPTC and 0x07D0 not in res and 0x0BB7 not in res
    assert any("paths" in f for f in s.fallbacks), s.fallbacks
    (tmp_path / "upright.jpg").write_bytes(_with_app13(_jpeg(face), irb))
    enh.enhance_file(tmp_path / "upright.jpg", tmp_path / "out2.jpg")
    res = _resources((tmp_path / "out2.jpg").read_bytes())
    assert 0x07D0 in res and 0x0BB7 in res  # (not turned: the path still fits)


def test_with_a_trailer_the_app13_is_kept_too(tmp_path, enh, face):
    """A JPEG with data after its picture (a motion photo's video) is written through another
    branch: the IPTC is kept there as well, the trailer still last."""
    (tmp_path / "motion.jpg").write_bytes(_news_photo(face) + b"ftypmp42 fake video")
    enh.enhance_file(tmp_path / "motion.jpg", tmp_path / "out.jpg")
    data = (tmp_path / "out.jpg").read_bytes()
    assert _resources(data)[0x0404] == IPTC and data.endswith(b"ftypmp42 fake video")


def test_cli_run_keeps_iptc_without_a_note(tmp_path, cli_env, face, capsys):
    """`stream-gpen enhance` (the real classic model): the IPTC is in the output, and the run no
    longer says it was dropped."""
    from stream_gpen.cli import main

    (tmp_path / "news.jpg").write_bytes(_news_photo(face))
    report = tmp_path / "r.json"
    assert main(["enhance", str(tmp_path / "news.jpg"), "-o", str(tmp_path / "out.jpg"), *cli_env,
                 "--report", str(report)]) == 0
    res = _resources((tmp_path / "out.jpg").read_bytes())
    assert res[0x0404] == IPTC and 0x040C not in res
    assert "IPTC" not in capsys.readouterr().err and "IPTC" not in report.read_text()


def test_server_jpeg_answer_keeps_iptc_as_enhance_does():
    """The image endpoint's JPEG answer carries the upload's IPTC (thumbnails left out), as `enhance`
    writes it; a PNG answer has no place for it and is answered all the same."""
    pytest.importorskip("fastapi")
    from PIL import Image

    from test_server import KEY, FakeEnhancer, client_for

    face = Image.new("RGB", (64, 48), (120, 90, 60))
    with client_for(FakeEnhancer()) as c:
        r = c.post("/v1/images:enhance", content=_news_photo(face), headers={**KEY, "Content-Type": "image/jpeg"})
        assert r.status_code == 200, r.text
        res = _resources(r.content)
        assert res[0x0404] == IPTC and res[0x0425] == hashlib.md5(IPTC).digest()
        assert 0x040C not in res and 0x0409 not in res
        r = c.post("/v1/images:enhance", content=_news_photo(face), params={"format": "png"},
                   headers={**KEY, "Content-Type": "image/jpeg"})
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG")


def test_describe_says_iptc_is_kept(tmp_path, face):
    """`stream-gpen info`'s plan lists the IPTC among what is written back."""
    from stream_gpen.commands import describe_input

    (tmp_path / "news.jpg").write_bytes(_news_photo(face))
    plan = describe_input(str(tmp_path / "news.jpg"))["plan"]
    assert any("IPTC" in line and "written back" in line for line in plan), plan
