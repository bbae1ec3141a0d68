"""Session 31 (misc): in a folder mirror, of two inputs named apart only by case (``a.jpg`` and
``a.JPG``), the one whose own name is the planned output's kept it; the first in sorted order
(``a.JPG``) took it, and ``a.jpg`` was written as ``a_jpg.jpg``."""
from __future__ import annotations

from stream_gpen.io._image import folder_outputs


def _names(root, dst, plan):
    return {str(k.relative_to(root)): str(v.relative_to(dst)) for k, v in plan.items()}


def test_the_file_named_as_the_output_keeps_the_name(tmp_path):
    root, dst = tmp_path / "in", tmp_path / "out"
    files = [root / "a.JPG", root / "a.jpg", root / "b.png"]  # (sorted: upper case first)
    plan, notes, clashing = folder_outputs(root, dst, files, lambda q: ".jpg")
    assert _names(root, dst, plan) == {"a.JPG": "a_jpg.jpg", "a.jpg": "a.jpg", "b.png": "b.jpg"}
    assert notes == ["a.JPG written as a_jpg.jpg: a.jpg takes a.jpg"] and clashing == set(files[:2])


def test_each_keeping_its_own_extension_the_lowercase_one_keeps_the_name(tmp_path):
    root, dst = tmp_path / "in", tmp_path / "out"
    files = [root / "a.JPG", root / "a.jpg", root / "b.png"]
    plan, notes, _ = folder_outputs(root, dst, files, lambda q: q.suffix)
    assert _names(root, dst, plan) == {"a.JPG": "a_jpg.JPG", "a.jpg": "a.jpg", "b.png": "b.png"}
    # names apart in the stem only: sorted order, as before
    files = [root / "Case.jpg", root / "case.jpg"]
    plan, _, _ = folder_outputs(root, dst, files, lambda q: q.suffix)
    assert _names(root, dst, plan) == {"Case.jpg": "Case.jpg", "case.jpg": "case_jpg.jpg"}


def test_a_folder_run_writes_a_jpg_from_a_jpg(tmp_path, det_home):
    from PIL import Image

    from stream_gpen import Enhancer

    root, dst = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    Image.new("RGB", (40, 30), (200, 0, 0)).save(root / "a.JPG")
    Image.new("RGB", (40, 30), (0, 0, 200)).save(root / "a.jpg")
    Enhancer("classic", device="cpu", download=False).enhance_file(root, dst)
    assert sorted(p.name for p in dst.iterdir()) == ["a.jpg", "a_jpg.JPG"]
    with Image.open(dst / "a.jpg") as blue, Image.open(dst / "a_jpg.JPG") as red:
        assert blue.getpixel((5, 5))[2] > 150 and red.getpixel((5, 5))[0] > 150
