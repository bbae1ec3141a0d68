"""Session 31: ``-o link.jpg``, a link to the input ``orig.jpg``, was refused as "the output is the
input itself" with the hint "--overwrite replaces it with the restored copy"; with --overwrite the
link was replaced by a new file and orig.jpg kept. The refusal says what --overwrite does to a
link (symbolic or hard) now; the input itself under its own name is said as before."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from _clips import write_video
from stream_gpen.cli import main

_RUN = ["--model", "classic", "--device", "cpu", "--quiet"]


def _input(tmp_path, shared, kind):
    if kind == "photo":
        src = tmp_path / "orig.png"
        shutil.copy(shared / "data/faces/aligned/gpen_ffhq_00000.png", src)
        return src
    return write_video(tmp_path / "orig.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)])


def _hint(err: str) -> str:
    return next(ln for ln in err.splitlines() if ln.startswith("hint: "))


@pytest.mark.parametrize("kind", ["photo", "video"])
def test_a_symbolic_link_to_the_input_as_output_is_said_as_a_link(tmp_path, shared, det_home, capsys, kind):
    src = _input(tmp_path, shared, kind)
    before = src.read_bytes()
    link = src.with_name("link" + src.suffix)
    link.symlink_to(src.name)
    assert main(["enhance", str(src), "-o", str(link), *_RUN]) == 2
    err = capsys.readouterr().err
    assert f"error: the output is a link to the input: {link}\n" in err
    assert _hint(err) == (f"hint: choose another -o; --overwrite replaces the link with a new file, the restored "
                          f"copy, and keeps {src} as it is")
    # what the hint says is what --overwrite does
    assert main(["enhance", str(src), "-o", str(link), *_RUN, "--overwrite"]) == 0
    assert not link.is_symlink() and link.is_file() and src.read_bytes() == before
    # the input named by the link itself: the same
    link.unlink()
    link.symlink_to(src.name)
    assert main(["enhance", str(link), "-o", str(link), *_RUN]) == 2
    err = capsys.readouterr().err
    assert f"error: the output is the input itself, a link: {link}\n" in err and f"keeps {src} as it is" in err


def test_a_hard_link_to_the_input_as_output_is_said_as_another_name(tmp_path, shared, det_home, capsys):
    src = _input(tmp_path, shared, "photo")
    before = src.read_bytes()
    other = tmp_path / "other.png"
    os.link(src, other)
    assert main(["enhance", str(src), "-o", str(other), *_RUN]) == 2
    err = capsys.readouterr().err
    assert f"error: the output is another name of the input (a hard link): {other}\n" in err
    assert _hint(err) == (f"hint: choose another -o; --overwrite puts a new file, the restored copy, under that "
                          f"name and keeps {src} as it is")
    assert main(["enhance", str(src), "-o", str(other), *_RUN, "--overwrite"]) == 0
    assert not os.path.samefile(src, other) and src.read_bytes() == before


def test_the_input_itself_is_said_as_before(tmp_path, shared, det_home, capsys):
    src = _input(tmp_path, shared, "photo")
    assert main(["enhance", str(src), "-o", str(src), *_RUN]) == 2
    err = capsys.readouterr().err
    assert f"error: the output is the input itself: {src}\n" in err
    assert _hint(err) == "hint: choose another -o to keep the original; --overwrite replaces it with the restored copy"
