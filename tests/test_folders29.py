"""Folder runs (session 29): a video that ``--start`` does not fit (past its end) is readable, but
the folder's summary counted it as "unreadable or failed", and a folder of such videos ended with
"none of the 2 files could be read ... check that the files were copied whole". Now it is listed
apart ("start= does not fit this file"), counted apart, with a hint about the option; exit 5 as
before where something was restored, 2 where nothing could be."""
from __future__ import annotations

import json

import numpy as np
import pytest

from stream_gpen.errors import InvalidInputError, NotMediaError


def _clip(path, n=4):
    from tests._clips import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, [np.full((48, 64, 3), 40 + 3 * i, np.uint8) for i in range(n)])  # 25 fps


def _broken(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a video at all, just text " * 20)
    return path


def test_a_video_start_is_past_the_end_of_is_not_counted_as_unreadable(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "r.json"
    _clip(src / "short.mp4")  # 0.16 s
    _clip(src / "long.mp4", n=40)  # 1.6 s
    assert main(["enhance", str(src), "-o", str(out), "--start", "1", "--report", str(report), *cli_env]) == 5
    err = capsys.readouterr().err
    assert "1 video(s) left out: --start does not fit them" in err, err
    assert "unreadable" not in err, err
    assert "hint: --start applies to every video in the folder" in err and "stream-gpen info FILE" in err, err
    assert (out / "long.mp4").is_file() and not (out / "short.mp4").exists()
    skipped = json.loads(report.read_text())["skipped"]
    assert len(skipped) == 1 and "short.mp4: --start does not fit this file: --start 1 s is past the end" in skipped[0]


def test_a_folder_no_video_of_which_start_fits_is_said_so_not_unreadable(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    src, out = tmp_path / "in", tmp_path / "out"
    _clip(src / "a.mp4")
    _clip(src / "b.mp4")
    assert main(["enhance", str(src), "-o", str(out), "--start", "1", *cli_env]) == 2
    err = capsys.readouterr().err
    assert f"nothing in {src} could be restored: --start does not fit any of its 2 video(s)" in err, err
    assert "could be read" not in err and "copied whole" not in err, err
    assert "hint: --start applies to every video in the folder" in err, err


def test_the_api_raises_an_invalid_input_error_naming_the_option(tmp_path, enh):
    src, out = tmp_path / "in", tmp_path / "out"
    _clip(src / "a.mp4")
    _clip(src / "b.mp4")
    with pytest.raises(InvalidInputError, match="start= does not fit any of its 2 video") as info:
        enh.enhance_file(src, out, start=1.0)
    assert not isinstance(info.value, NotMediaError)
    assert info.value.option == "start" and info.value.exit_code == 2
    assert "start= applies to every video in the folder" in info.value.hint
    assert [s.split(": ", 1)[1].split(" does not fit this file: ")[0] for s in info.value.summary.skipped] \
        == ["start=", "start="]


def test_a_single_videos_start_error_names_its_option(tmp_path, enh):
    _clip(tmp_path / "a.mp4")
    with pytest.raises(InvalidInputError, match="past the end") as info:
        enh.enhance_file(tmp_path / "a.mp4", tmp_path / "o.mp4", start=1.0)
    assert info.value.option == "start"


def test_unreadable_and_misfit_files_are_counted_apart(tmp_path, enh):
    src, out = tmp_path / "in", tmp_path / "out"
    _clip(src / "a.mp4")
    _broken(src / "b.mp4")
    with pytest.raises(InvalidInputError, match=r"1 file\(s\) could not be read, and start= does not fit the "
                                                r"other 1 video\(s\)"):
        enh.enhance_file(src, out, start=1.0)
    (src / "a.mp4").unlink()  # unreadable files only: said as before
    _broken(src / "c.mp4")
    with pytest.raises(NotMediaError, match="none of the 2 files in .* could be read"):
        enh.enhance_file(src, out, start=1.0)


def test_a_folder_done_with_both_kinds_says_each(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    src, out = tmp_path / "in", tmp_path / "out"
    _clip(src / "a.mp4")
    _broken(src / "b.mp4")
    _clip(src / "c.mp4", n=40)
    assert main(["enhance", str(src), "-o", str(out), "--start", "1", *cli_env]) == 5
    err = capsys.readouterr().err
    assert ("1 file(s) skipped, unreadable or failed, 1 video(s) left out: --start does not fit them" in err), err


def test_misfit_options_and_hint():
    from stream_gpen.summary import misfit_hint, misfit_options

    skipped = ["/x/a b.mp4: start= does not fit this file: start=3 s is past the end of '/x/a b.mp4'",
               "/x/c.mp4: cannot open it",
               "/x/d.mp4: --start does not fit this file: --start 3 s is past the end"]
    assert misfit_options(skipped) == ["start=", "--start"]
    assert misfit_options(skipped[1:2]) == []
    assert "`stream-gpen info FILE`" in misfit_hint(["--start"])
    assert "stream-gpen info" not in misfit_hint(["--other"])
