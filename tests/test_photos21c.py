"""Session 21c (photos21, findings 3 and 4): a 16-bit grey PNG's colour key (tRNS) stays
transparency (it came back opaque, and WebP output had no alpha, without a word); a HEIC's several
pictures and an animated AVIF's frames are all written in their own format (only the first was, with
"HEIF/AVIF holds one"), and frames_out counts what was written."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

pillow_heif = pytest.importorskip("pillow_heif")


def _keyed_grey16(path, face):
    g = np.asarray(face.convert("L")).astype(np.uint16) * 257
    g[:, :10] = 1234  # the key: transparent
    Image.fromarray(g).save(path, transparency=1234)
    with Image.open(path) as im:
        assert im.mode.startswith("I") and im.info["transparency"] == 1234
    return path


def test_a_16_bit_grey_pngs_colour_key_stays_transparent(tmp_path, enh, face):
    src = _keyed_grey16(tmp_path / "scan16.png", face)
    s = enh.enhance_file(src, tmp_path / "out.png")
    out = cv2.imdecode(np.fromfile(str(tmp_path / "out.png"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (64, 96, 4)  # (16-bit grey + alpha, written as RGBA)
    assert (out[:, :10, 3] == 0).all() and (out[:, 10:, 3] == 65535).all()
    assert (out[:, 10:, 0] == out[:, 10:, 1]).all()  # (still grey)
    assert not any("alpha" in f for f in s.fallbacks), s.fallbacks  # (a key is exact at 16 bits)

    s = enh.enhance_file(src, tmp_path / "out.webp")
    with Image.open(tmp_path / "out.webp") as im:
        assert im.mode == "RGBA"
        a = np.asarray(im)[:, :, 3]
    assert (a[:, :10] == 0).all() and (a[:, 10:] == 255).all()
    assert any("written at 8 bits" in f for f in s.fallbacks), s.fallbacks


def _pictures(path):
    with Image.open(path) as im:
        first = im.size
        sizes = []
        for k in range(getattr(im, "n_frames", 1)):
            im.seek(k)
            im.load()
            sizes.append((im.size, im.info.get("duration")))
    return first, sizes


def test_a_heics_pictures_are_all_written(tmp_path, enh, face, shared):
    pillow_heif.register_heif_opener()
    other = Image.open(shared / "data/faces/whole/codeformer_whole_03.jpg").convert("RGB").resize((80, 100))
    face.save(tmp_path / "two.heic", save_all=True, append_images=[other], quality=90)
    s = enh.enhance_file(tmp_path / "two.heic", tmp_path / "out.heic")
    first, got = _pictures(tmp_path / "out.heic")
    assert [size for size, _ in got] == [(96, 64), (80, 100)]
    assert s.frames_in == s.frames_out == 2
    assert not any("holds one" in f for f in s.fallbacks), s.fallbacks

    # a primary that is not the first picture: read once each (it came twice, and the first never),
    # and the primary still the primary
    small = face.resize((48, 32))
    small.save(tmp_path / "three.heic", save_all=True, append_images=[other, face.convert("L")],
               primary_index=1, quality=90)
    with Image.open(tmp_path / "three.heic") as im:
        assert im.size == (80, 100) and im.tell() == 1
    s = enh.enhance_file(tmp_path / "three.heic", tmp_path / "out3.heic")
    first, got = _pictures(tmp_path / "out3.heic")
    assert first == (80, 100)
    assert sorted(size for size, _ in got) == sorted([(48, 32), (80, 100), (96, 64)])
    assert s.frames_out == 3
    s = enh.enhance_file(tmp_path / "three.heic", tmp_path / "one.jpg")  # a one-picture format keeps the primary
    with Image.open(tmp_path / "one.jpg") as im:
        assert im.size == (80, 100)
    assert s.frames_in == 3 and s.frames_out == 1  # (counted what was written)
    assert any("only the first page" in f and "JPEG holds one" in f for f in s.fallbacks), s.fallbacks

    # pictures of different sizes do not make one AVIF animation: the first, said (the run failed)
    s = enh.enhance_file(tmp_path / "two.heic", tmp_path / "two.avif")
    first, got = _pictures(tmp_path / "two.avif")
    assert len(got) == 1 and first == (96, 64) and s.frames_out == 1
    assert any("pages of different sizes" in f and "AVIF" in f for f in s.fallbacks), s.fallbacks


def test_an_animated_avif_keeps_its_frames_and_their_times(tmp_path, enh, face):
    face.save(tmp_path / "anim.avif", save_all=True, append_images=[face.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                                                                       face.convert("L").convert("RGB")],
              duration=[100, 300, 700], quality=80)
    _, got = _pictures(tmp_path / "anim.avif")
    assert [d for _, d in got] == [100, 300, 700]
    s = enh.enhance_file(tmp_path / "anim.avif", tmp_path / "out.avif")
    _, got = _pictures(tmp_path / "out.avif")
    assert got == [((96, 64), 100), ((96, 64), 300), ((96, 64), 700)]
    assert s.frames_in == s.frames_out == 3
    assert not any("holds one" in f for f in s.fallbacks), s.fallbacks
