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


def _clip(path, n=4):
    import numpy as np

    from tests._clips import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, [np.full((48, 64, 3), 40 + 10 * i, np.uint8) for i in range(n)])


def test_a_video_another_live_run_is_restoring_is_left_to_it_under_skip_existing(tmp_path, enh):
    """Two ``--skip-existing`` runs into one folder "share the work": photos did, a video was
    restored by both and the second to finish failed (exit 5) with its copy kept beside."""
    import subprocess
    import sys

    from stream_gpen.io._sink import _machine_tag

    src, out = tmp_path / "in", tmp_path / "out"
    _clip(src / "v.mp4")
    _clip(src / "w.mp4")
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / f".v.{_machine_tag()}-{other.pid}-0123abcd.tmp.mp4").write_bytes(b"being written")
        s = enh.enhance_file(src, out, skip_existing=True)
    finally:
        other.kill()
        other.wait()
    assert not (out / "v.mp4").exists() and (out / "w.mp4").is_file()
    assert not s.skipped, s.skipped
    assert any("v.mp4 is being restored by another run" in f and str(other.pid) in f for f in s.fallbacks), s.fallbacks


def test_a_dead_runs_leftover_temp_does_not_hold_a_video_back(tmp_path, enh):
    import subprocess
    import sys

    from stream_gpen.io._sink import _machine_tag

    src, out = tmp_path / "in", tmp_path / "out"
    _clip(src / "v.mp4")
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (out / f".v.{_machine_tag()}-{gone.pid}-0123abcd.tmp.mp4").write_bytes(b"left by a killed run")
    enh.enhance_file(src, out, skip_existing=True)
    assert (out / "v.mp4").is_file()


def test_a_video_written_meanwhile_by_another_run_is_left_as_it_is_under_skip_existing(tmp_path, enh,
                                                                                       monkeypatch):
    """The other run finished the video first: this run's final rename met its output. Under
    skip_existing that is left as it is (as a photo is), this run's copy removed, not a failure."""
    from stream_gpen.io import _sink

    src, out = tmp_path / "in", tmp_path / "out"
    _clip(src / "v.mp4")
    real = _sink.place_new

    def other_run_first(tmp, target):
        from pathlib import Path

        if Path(target).name == "v.mp4":
            Path(target).write_bytes(b"the other run's")
        return real(tmp, target)

    monkeypatch.setattr(_sink, "place_new", other_run_first)
    s = enh.enhance_file(src, out, skip_existing=True)
    assert not s.skipped and s.error is None, (s.skipped, s.error)
    assert (out / "v.mp4").read_bytes() == b"the other run's"
    assert sorted(p.name for p in out.iterdir()) == ["v.mp4"]  # (no v.restored.mp4, no hidden temp)
    assert any("v.mp4 was written meanwhile" in f for f in s.fallbacks), s.fallbacks


def test_without_skip_existing_a_video_written_meanwhile_is_still_kept_beside(tmp_path, enh, monkeypatch):
    from pathlib import Path

    from stream_gpen.io import _sink

    src, out = tmp_path / "in", tmp_path / "out"
    _clip(src / "v.mp4")
    real = _sink.place_new

    def other_run_first(tmp, target):
        Path(target).write_bytes(b"the other run's")
        return real(tmp, target)

    monkeypatch.setattr(_sink, "place_new", other_run_first)
    s = enh.enhance_file(src, out)
    assert any("appeared during the run" in k for k in s.skipped), s.skipped
    assert (out / "v.restored.mp4").is_file()


def test_an_output_folder_holding_the_input_folder_is_refused_for_what_it_is(tmp_path, cli_env, capsys,
                                                                              monkeypatch):
    """``stream-gpen enhance photos -o .`` said "folder photos contains no images" (every file
    under the output folder was left out as an earlier run's output, and the output held them all)."""
    from stream_gpen.cli import main

    _photo(tmp_path / "photos" / "a.jpg")
    monkeypatch.chdir(tmp_path)
    assert main(["enhance", "photos", "-o", ".", *cli_env]) == 2
    err = capsys.readouterr().err
    assert "the output folder . holds the input folder photos" in err and "contains no images" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "photos"]


def test_an_output_folder_holding_the_input_folder_is_refused_by_the_api(tmp_path, enh):
    import pytest

    from stream_gpen.errors import InvalidInputError

    src = tmp_path / "lib" / "photos"
    _photo(src / "a.jpg")
    with pytest.raises(InvalidInputError, match="holds the input folder"):
        enh.enhance_file(src, tmp_path)
    assert not (tmp_path / "a.jpg").exists()


def test_an_output_folder_inside_the_input_is_still_left_out_of_the_walk(tmp_path):
    from stream_gpen.io._image import folder_media

    src = tmp_path / "photos"
    _photo(src / "a.jpg")
    _photo(src / "out" / "a.jpg")
    images, _, _ = folder_media(src, src / "out")
    assert [p.relative_to(src).as_posix() for p in images] == ["a.jpg"]
    images, _, _ = folder_media(src, tmp_path)  # (one that holds the input leaves nothing out)
    assert [p.relative_to(src).as_posix() for p in images] == ["a.jpg", "out/a.jpg"]


def test_a_file_where_a_mirror_subfolder_goes_fails_its_files_only(tmp_path, cli_env, capsys):
    """``out/a`` a file, the input holding ``a/x/1.jpg``: the whole run stopped (exit 4, "cannot
    write or read a file (Not a directory)"), b/ and c/ never restored."""
    import json

    from stream_gpen.cli import main

    src, out = tmp_path / "K", tmp_path / "out"
    _photo(src / "a" / "x" / "1.jpg")
    _photo(src / "b" / "2.jpg")
    _clip(src / "a" / "y" / "v.mp4")
    _clip(src / "c" / "w.mp4")
    out.mkdir()
    (out / "a").write_text("not a folder")
    rc = main(["enhance", str(src), "-o", str(out), "--report", str(tmp_path / "r.json"), *cli_env])
    err = capsys.readouterr().err
    assert rc == 5, err
    assert (out / "b" / "2.jpg").is_file() and (out / "c" / "w.mp4").is_file()
    assert (out / "a").read_text() == "not a folder"
    skipped = json.loads((tmp_path / "r.json").read_text())["skipped"]
    assert len(skipped) == 2 and all(f"{out / 'a'} is a file, not a folder" in k for k in skipped), skipped


def test_a_folder_where_nothing_can_be_read_is_exit_2_with_videos_too(tmp_path, cli_env, capsys):
    """Unreadable photos only: exit 2 ("none of the 2 images ... could be read"); a broken video
    among them (or alone) made it exit 5, "a folder was done, some files failed"."""
    import json

    from stream_gpen.cli import main

    for name, files in {"photos": ["e.jpg", "t.jpg"], "mixed": ["e.jpg", "t.mp4"], "videos": ["t.mp4"]}.items():
        src = tmp_path / name
        src.mkdir()
        for f in files:
            (src / f).write_bytes(b"" if f.startswith("e") else b"\x00garbage" * 50)
        report = tmp_path / f"{name}.json"
        rc = main(["enhance", str(src), "-o", str(tmp_path / f"out_{name}"), "--report", str(report), *cli_env])
        err = capsys.readouterr().err
        assert rc == 2, (name, err)
        assert "could be read" in err, err
        assert not (tmp_path / f"out_{name}").exists()
        if name != "photos":
            assert len(json.loads(report.read_text())["skipped"]) == len(files)


def test_a_folder_with_one_good_file_and_a_broken_video_is_still_exit_5(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    src = tmp_path / "in"
    _photo(src / "good.jpg")
    (src / "t.mp4").write_bytes(b"\x00garbage" * 50)
    assert main(["enhance", str(src), "-o", str(tmp_path / "out"), *cli_env]) == 5
    assert (tmp_path / "out" / "good.jpg").is_file()
