"""A link back to the input folder itself from inside one of its subfolders (``loopy/sub/up ->
..``, hunt 30) was left out without a word (above() took a target equal to the input folder for
"inside the tree", and the walk then dropped it through its seen set), where a link to a folder
above the input is said as a loop, as README promises for both. Now it is said too."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from stream_gpen.io._image import _walk


def test_a_link_back_to_the_input_folder_is_said_as_a_loop(tmp_path):
    root = tmp_path / "loopy"
    (root / "sub").mkdir(parents=True)
    for p in (root / "a.jpg", root / "sub" / "b.jpg"):
        Image.fromarray(np.full((8, 8, 3), 50, np.uint8)).save(p)
    os.symlink("..", root / "sub" / "up")
    notes: list[str] = []
    files = _walk(root, notes=notes)
    assert sorted(p.relative_to(root).as_posix() for p in files) == ["a.jpg", "sub/b.jpg"]
    assert any("sub/up" in n and "a loop" in n for n in notes), notes


def test_a_link_to_a_subfolder_is_still_quiet(tmp_path):
    root = tmp_path / "tree"
    (root / "x").mkdir(parents=True)
    Image.fromarray(np.full((8, 8, 3), 50, np.uint8)).save(root / "x" / "c.jpg")
    os.symlink("x", root / "y")
    notes: list[str] = []
    files = _walk(root, notes=notes)
    assert [p.relative_to(root).as_posix() for p in files] == ["x/c.jpg"] and notes == [], notes
