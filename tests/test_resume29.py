"""Resuming a folder (``--skip-existing``) when only unreadable files are left (session 29): the
first run said "a folder done with gaps" (exit 5), the resumed one "none of the 1 images could be
read" (exit 2), as if nothing of the folder were done."""
from __future__ import annotations

import pytest
from PIL import Image


def _photo(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), (90, 90, 90)).save(path)
    return path


def _clip(path, n=4):
    import numpy as np

    from tests._clips import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, [np.full((48, 64, 3), 40 + 10 * i, np.uint8) for i in range(n)])


def _folder(tmp_path, good: str, bad: str):
    src = tmp_path / "in"
    (_photo if good.endswith(".png") else _clip)(src / good)
    (src / bad).write_bytes(b"junk\n")
    return src, tmp_path / "out"


def test_a_resumed_folder_with_only_unreadable_photos_left_is_done_with_gaps(tmp_path, enh):
    from stream_gpen.errors import NotMediaError

    good, bad = "a.png", "bad.jpg"
    src, out = _folder(tmp_path, good, bad)
    first = enh.enhance_file(src, out)
    assert len(first.skipped) == 1 and bad in first.skipped[0], first.skipped
    again = enh.enhance_file(src, out, skip_existing=True)  # (raised NotMediaError for photos)
    assert len(again.skipped) == 1 and bad in again.skipped[0], again.skipped
    assert again.frames_out == 0
    assert any(f"1 file(s) already in {out} were left as they are" in f for f in again.fallbacks), again.fallbacks
    assert (out / good).is_file()
    # with nothing done before, a folder of which nothing can be read is still bad input (exit 2)
    (out / good).unlink()
    (src / good).write_bytes(b"junk\n")
    with pytest.raises(NotMediaError, match="none of the 2 images"):
        enh.enhance_file(src, out, skip_existing=True)


@pytest.mark.parametrize(("good", "bad"), [("a.png", "bad.jpg"), ("v.mp4", "bad.mp4"), ("a.png", "bad.mp4"),
                                           ("v.mp4", "bad.jpg")])
def test_the_command_line_resume_exits_5_as_the_first_run_and_counts_the_files_done(tmp_path, cli_env, capsys,
                                                                                    good, bad):
    from stream_gpen.cli import main

    src, out = _folder(tmp_path, good, bad)
    assert main(["enhance", str(src), "-o", str(out), *cli_env]) == 5
    capsys.readouterr()
    assert main(["enhance", str(src), "-o", str(out), "--skip-existing", *cli_env]) == 5
    err = capsys.readouterr().err
    assert "none of the" not in err
    assert f"1 file(s) already in {out} left as they are" in err, err
    assert "1 file(s) skipped, unreadable or failed" in err and bad in err, err
