"""Session 26 (photos26): a face-less camera JPEG with an MPF preview (Pillow: MPO) is copied byte for
byte, and the "main photo is restored" note is given only where it was."""
from __future__ import annotations

import numpy as np
from PIL import Image


def _landscape(w: int = 120, h: int = 80) -> Image.Image:
    """A picture with no face in it: a graded sky and some noise."""
    rng = np.random.default_rng(1)
    a = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3)) * [1, 0.8, 0.5] + rng.normal(0, 8, (h, w, 3))
    return Image.fromarray(a.clip(0, 255).astype(np.uint8))


def test_a_faceless_camera_jpeg_with_a_preview_is_copied_byte_for_byte(tmp_path, enh, shared, monkeypatch):
    """photos26 #1: an MPO (a camera JPEG with an MPF preview) with no face was encoded again
    (111,179 -> 102,633 bytes, 0.71 levels off on average, its preview dropped: its format, MPO, was
    compared with the output's, JPEG), and the run said its main photo was restored."""
    from stream_gpen.io._image import ImageSink

    monkeypatch.setattr(ImageSink, "copy_unchanged", True)
    land = _landscape()
    src = tmp_path / "cam.jpg"
    land.save(src, format="MPO", save_all=True, append_images=[land.resize((40, 26))], quality=95)
    with Image.open(src) as im:
        assert im.format == "MPO" and im.n_frames == 2
    s = enh.enhance_file(src, tmp_path / "out.jpg")
    assert s.faces_restored == 0
    assert (tmp_path / "out.jpg").read_bytes() == src.read_bytes()
    assert not any("restored" in f for f in s.fallbacks), s.fallbacks
    # written in another format: the preview goes, said, and not as restored
    s = enh.enhance_file(src, tmp_path / "out.png")
    said = [f for f in s.fallbacks if "main photo" in f]
    assert len(said) == 1 and "(no face found) written on its own" in said[0] and "restored" not in said[0], said
    # one with a face: restored, and said so
    face = Image.open(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg").convert("RGB").resize((320, 240))
    face.save(tmp_path / "face.jpg", format="MPO", save_all=True, append_images=[face.resize((80, 60))])
    s = enh.enhance_file(tmp_path / "face.jpg", tmp_path / "face_out.jpg")
    assert s.faces_restored >= 1
    said = [f for f in s.fallbacks if "main photo" in f]
    assert len(said) == 1 and "a camera's large preview" in said[0] and "restored and written on its own" in said[0]
