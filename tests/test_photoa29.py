"""Photos under other names, cut off, in folders that go wrong (hunt 29): a HEIC, AVIF or still GIF
without its extension is refused with a rename hint (it became a one-frame H.264 video); a cut-off
photo of any format is said as cut off, with a hint (Pillow's words alone: "could not create decoder
object"); a folder's progress reaches its total when files are skipped; a full disk under a photo is
a StreamGpenError naming the file (a bare OSError)."""
from __future__ import annotations

import errno
import io
import zlib

import av
import numpy as np
import pytest
from PIL import Image

from stream_gpen import StreamGpenError
from stream_gpen.cli import main
from stream_gpen import errors
from stream_gpen.errors import NotMediaError


def _heif_ok() -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()


def _frames(n: int, size=(96, 64)) -> list[Image.Image]:
    rng = np.random.default_rng(n)
    return [Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype("uint8")) for _ in range(n)]


# --- 1: a HEIC/AVIF/still GIF under another name ---------------------------------------------------------
@pytest.mark.parametrize("name, fmt, frames, ext", [
    ("IMG_1234", "HEIF", 1, ".heic"),
    ("burst.bin", "HEIF", 2, ".heic"),
    ("pic.dat", "AVIF", 1, ".avif"),
    ("moving.dat", "AVIF", 3, ".avif"),  # (named .avif, its every frame is restored as a photo's)
    ("anim.bin", "GIF", 1, ".gif"),
])
def test_a_heic_avif_or_still_gif_under_another_name_is_refused(tmp_path, enh, name, fmt, frames, ext):
    _heif_ok()
    src = tmp_path / name
    first, *rest = _frames(frames)
    first.save(src, fmt, **({"save_all": True, "append_images": rest} if rest else {}))
    with pytest.raises(NotMediaError, match=rf"is an? {ext[1:].upper()} picture, not a video") as e:
        enh.enhance_file(src)
    want = (src.with_suffix(ext) if src.suffix else src.with_name(src.name + ext)).name
    assert e.value.hint == f"rename it to {want} and run again", e.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no one-frame video


def test_the_cli_says_so_and_an_animated_gif_stays_a_video(tmp_path, cli_env, capsys, monkeypatch):
    _heif_ok()
    monkeypatch.chdir(tmp_path)
    _frames(1)[0].save("IMG_1234", "HEIF")
    assert main(["enhance", "IMG_1234", *cli_env]) == 2
    err = capsys.readouterr().err
    assert "IMG_1234 is a HEIC picture, not a video (its name has no extension)" in err, err
    assert "hint: rename it to IMG_1234.heic and run again" in err, err
    assert main(["info", "IMG_1234"]) == 2
    assert "rename it to IMG_1234.heic" in capsys.readouterr().err
    # an animated GIF is a video under any name, as under its own (.gif: NAME_enhanced.mp4)
    first, *rest = _frames(3)
    first.save("clip.bin", "GIF", save_all=True, append_images=rest, duration=100)
    assert main(["enhance", "clip.bin", *cli_env]) == 0
    with av.open("clip.bin_enhanced.mp4") as c:
        assert c.streams.video[0].codec_context.name == "h264"


# --- 2: cut-off photos ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, ext", [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("HEIF", "heic"),
                                      ("AVIF", "avif"), ("GIF", "gif"), ("BMP", "bmp")])
def test_a_photo_cut_off_is_said_as_such_with_a_hint(tmp_path, enh, fmt, ext, capsys):
    _heif_ok()
    buf = io.BytesIO()
    _frames(1, (160, 120))[0].save(buf, fmt)
    src = tmp_path / f"cut.{ext}"
    src.write_bytes(buf.getvalue()[: len(buf.getvalue()) * 6 // 10])
    said = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "HEIF": "HEIC", "AVIF": "AVIF", "GIF": "GIF", "BMP": "BMP"}[fmt]
    article = "an" if said == "AVIF" else "a"
    with pytest.raises(NotMediaError, match=rf"cannot read .*cut\.{ext}: {article} {said} that is cut off or "
                                            r"damaged \(") as e:
        enh.enhance_file(src, tmp_path / f"x.{ext}")
    assert e.value.hint.startswith("the file was probably not copied or saved whole"), e.value.hint
    assert main(["info", str(src)]) == 2  # (info says what enhance says)
    err = capsys.readouterr().err
    assert f"{said} that is cut off or damaged" in err and "hint: the file was probably not copied" in err, err
    if fmt == "PNG":
        _unread_otherwise(tmp_path, enh)


def _unread_otherwise(tmp_path, enh):
    """A photo Pillow cannot read for another reason keeps Pillow's words."""
    src = tmp_path / "odd.png"  # whole (its IEND there), its picture data garbage
    buf = io.BytesIO()
    _frames(1)[0].save(buf, "PNG")
    data = bytearray(buf.getvalue())
    at = data.index(b"IDAT") + 4
    data[at:at + 40] = b"\x00" * 40
    n = int.from_bytes(data[at - 8:at - 4], "big")  # (its checksum made to fit: a bad one is damage, session 30)
    data[at + n:at + n + 4] = zlib.crc32(data[at - 4:at + n]).to_bytes(4, "big")
    src.write_bytes(bytes(data))
    with pytest.raises(NotMediaError) as e:
        enh.enhance_file(src, tmp_path / "o.png")
    assert "cut off" not in str(e.value) and str(e.value).startswith(f"cannot read {src} as an image:"), e.value


# --- 3: a folder's progress ----------------------------------------------------------------------------
def _calls(enh, src, dst):
    calls = []
    enh.enhance_file(src, dst, on_progress=lambda d, t, f: calls.append((d, t)))
    return calls


def test_folder_progress_reaches_its_total_past_unreadable_photos(tmp_path, enh, face):
    for case, bad in (("mid", "b.jpg"), ("last", "c.jpg"), ("first", "a.jpg")):
        album = tmp_path / case
        album.mkdir()
        for n in ("a.jpg", "b.jpg", "c.jpg"):
            face.save(album / n)
        (album / bad).write_bytes((album / bad).read_bytes()[:300])
        calls = _calls(enh, album, tmp_path / f"{case}_out")
        assert calls[-1] == (2, 2), (case, calls)  # (session 31: the photo not written leaves the total)
        assert [d for d, _ in calls] == sorted(d for d, _ in calls), (case, calls)


def test_folder_progress_counts_a_multi_page_photo_once(tmp_path, enh, face):
    album = tmp_path / "album"
    album.mkdir()
    face.save(album / "a.jpg")
    face.save(album / "b.tif", save_all=True, append_images=[face, face])  # three pages
    calls = _calls(enh, album, tmp_path / "out")
    assert calls[-1] == (2, 2) and max(d for d, _ in calls) == 2, calls  # (it said 4 of 2)


def test_folder_with_a_video_progress_reaches_its_total(tmp_path, enh, face):
    album = tmp_path / "album"
    album.mkdir()
    face.save(album / "a.jpg")
    (album / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a picture")
    with av.open(str(album / "c.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        for img in [face] * 3:
            for p in s.encode(av.VideoFrame.from_ndarray(np.asarray(img), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    calls = _calls(enh, album, tmp_path / "out")
    assert calls[-1] == (4, 4), calls  # 1 photo (b.jpg unreadable: out of the total), 3 frames (it stopped short)


# --- 4: a full disk under a photo ----------------------------------------------------------------------
def _full(monkeypatch):
    from stream_gpen.io import _image

    tried = []

    def full(self, frame):
        tried.append(frame.rel_path)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_image.ImageSink, "_write", full)
    return tried


def test_a_full_disk_under_a_photo_is_a_stream_gpen_error_naming_the_file(tmp_path, enh, face, monkeypatch):
    tried = _full(monkeypatch)
    face.save(tmp_path / "a.jpg")
    out = tmp_path / "out.jpg"
    with pytest.raises(errors.DiskFullError, match=rf"cannot write {out}: its drive is full \(No space left on device\)") as e:
        enh.enhance_file(tmp_path / "a.jpg", out)
    assert isinstance(e.value, StreamGpenError) and isinstance(e.value, OSError)
    assert e.value.errno == errno.ENOSPC and e.value.exit_code == 4 and e.value.hint
    assert e.value.filename == str(out) and e.value.summary is not None
    # a folder run stops at it (every next photo would fail too), naming the photo's output
    album = tmp_path / "album"
    album.mkdir()
    for n in ("a.jpg", "b.jpg"):
        face.save(album / n)
    tried.clear()
    with pytest.raises(errors.DiskFullError, match=rf"cannot write {tmp_path / 'album_out' / 'a.jpg'}: its drive is full"):
        enh.enhance_file(album, tmp_path / "album_out")
    assert tried == ["a.jpg"]


def test_the_cli_says_a_full_disk_under_a_photo_with_its_name(tmp_path, cli_env, face, monkeypatch, capsys):
    _full(monkeypatch)
    face.save(tmp_path / "a.jpg")
    assert main(["enhance", str(tmp_path / "a.jpg"), *cli_env]) == 4
    err = capsys.readouterr().err
    assert f"error: cannot write {tmp_path / 'a_enhanced.jpg'}: its drive is full" in err, err
    assert "hint: make room on that drive, or choose another -o" in err, err
