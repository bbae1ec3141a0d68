"""Folder runs (session 27's folder hunt): a link to a folder above the input, two resumed runs
sharing one folder's videos, an output folder that holds the input, a file in the mirror where
a subfolder goes."""
from __future__ import annotations

import logging

from PIL import Image


def _photo(path, shade=90):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (shade, shade, shade)).save(path)
    return path


def test_a_link_to_a_folder_above_the_input_is_left_out_and_said(tmp_path, caplog):
    """``photos/up -> ..``: the folder run restored everything above the input folder (its
    siblings, a private folder; ``-> /`` the whole disk) without a word."""
    from stream_gpen.io._image import folder_media

    lib = tmp_path / "lib"
    photos = lib / "photos"
    _photo(photos / "a.jpg")
    _photo(lib / "private" / "secret.jpg")
    _photo(lib / "other.jpg")
    (photos / "up").symlink_to("..", target_is_directory=True)
    (photos / "root").symlink_to("/", target_is_directory=True)
    notes: list[str] = []
    with caplog.at_level(logging.WARNING, logger="stream_gpen"):
        images, _, _ = folder_media(photos, notes=notes)
    assert [p.relative_to(photos).as_posix() for p in images] == ["a.jpg"]
    assert any("up: a link to a folder above" in n and "left out" in n for n in notes), notes
    assert any("root: a link to a folder above" in n for n in notes), notes


def test_a_linked_in_folders_link_to_its_own_parent_is_a_loop_left_out(tmp_path):
    """A year folder linked in from another disk, holding a link back to that disk's top: the
    whole other disk came in."""
    from stream_gpen.io._image import folder_media

    album, disk = tmp_path / "album", tmp_path / "disk"
    _photo(album / "home.jpg")
    _photo(disk / "2019" / "beach.jpg")
    _photo(disk / "unrelated" / "x.jpg")
    (album / "2019").symlink_to(disk / "2019", target_is_directory=True)
    (disk / "2019" / "all").symlink_to(disk, target_is_directory=True)
    notes: list[str] = []
    images, _, _ = folder_media(album, notes=notes)
    assert [p.relative_to(album).as_posix() for p in images] == ["2019/beach.jpg", "home.jpg"]
    assert any("all: a link to a folder above" in n for n in notes), notes


def test_a_link_to_a_folder_above_the_input_at_the_command_line(tmp_path, cli_env, capsys):
    import json

    from stream_gpen.cli import main

    lib = tmp_path / "lib"
    photos = lib / "photos"
    _photo(photos / "a.jpg")
    _photo(lib / "private" / "secret.jpg")
    (photos / "up").symlink_to("..", target_is_directory=True)
    out = tmp_path / "out"
    assert main(["enhance", str(photos), "-o", str(out), "--report", str(tmp_path / "r.json"), *cli_env]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a.jpg"]
    assert "a link to a folder above" in capsys.readouterr().err
    fallbacks = json.loads((tmp_path / "r.json").read_text())["fallbacks"]
    assert any("a link to a folder above" in f for f in fallbacks), fallbacks
