"""Folder walks (hunt 14): a folder of the tree that a link inside the tree also reaches is
mirrored under its own path, whatever order the disk lists folders in. Each case once failed."""
from __future__ import annotations

import os
from pathlib import Path

from stream_gpen.io._image import _walk


def test_a_folder_linked_from_inside_the_tree_is_walked_under_its_own_path(tmp_path):
    """archive/1998 linked from "Ömas Fotos/link_1998": the whole 1998 subtree was mirrored under
    the link's path (out/1998 missing) when the disk listed the link's folder first."""
    root = tmp_path / "archive"
    for rel in ("1998/sub/a.jpg", "Photos/b.jpg", "Ömas Fotos/c.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    os.symlink(root / "1998", root / "Ömas Fotos" / "link_1998")
    os.symlink(root / "Photos", root / "Aa_alias")  # (listed before Photos by name as well)
    os.symlink(root, root / "Photos" / "loop")
    outside = tmp_path / "other_disk" / "2001"
    outside.mkdir(parents=True)
    (outside / "d.jpg").write_bytes(b"x")
    os.symlink(outside, root / "2001")  # a folder on another disk, linked in: walked through the link
    files = sorted(str(p.relative_to(root)) for p in _walk(root))
    assert files == ["1998/sub/a.jpg", "2001/d.jpg", "Photos/b.jpg", "Ömas Fotos/c.jpg"], files


def test_a_hidden_folder_reached_through_a_link_is_still_walked(tmp_path):
    """A link inside the tree to a folder the walk leaves out (hidden) is its only way in: kept."""
    root = tmp_path / "lib"
    (root / ".store" / "2019").mkdir(parents=True)
    (root / ".store" / "2019" / "a.jpg").write_bytes(b"x")
    os.symlink(root / ".store" / "2019", root / "2019")
    assert [str(p.relative_to(root)) for p in _walk(root)] == [str(Path("2019") / "a.jpg")]
