"""Session 31: ``-o`` naming stdout (``/dev/stdout``, a link ``mystdout.mp4`` to
``/proc/self/fd/1``) with stdout redirected to a file was taken as that file (os.stat follows the
links): the link was replaced by a new file, exit 0, and the redirected file stayed empty;
``/dev/stdout`` was "output exists" then "has no extension". Refused as stdout now, link by link."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from _clips import write_video
from stream_gpen.errors import InvalidInputError
from stream_gpen.io._sink import check_not_special

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/dev/fd and /proc are Linux's")

_RUN = ["--model", "classic", "--device", "cpu", "--quiet"]


def test_stdout_as_output_is_refused_even_when_redirected_to_a_file(tmp_path):
    redirected = tmp_path / "redirected.mp4"
    link = tmp_path / "mystdout.mp4"
    link.symlink_to("/proc/self/fd/1")
    fd = os.open(redirected, os.O_WRONLY | os.O_CREAT)
    saved = os.dup(1)
    try:
        os.dup2(fd, 1)  # stdout a regular file: os.stat of /dev/stdout sees only that file
        for target in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", str(link)):
            with pytest.raises(InvalidInputError, match="writing to stdout is not supported"):
                check_not_special(target)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(fd)
    with pytest.raises(InvalidInputError, match="is a named pipe"):  # (said as before)
        os.mkfifo(tmp_path / "fifo")
        check_not_special(tmp_path / "fifo")
    check_not_special(tmp_path / "absent.mp4")
    check_not_special(redirected)


def test_the_command_refuses_a_link_to_stdout_before_any_work(tmp_path, det_home, capsys):
    from stream_gpen.cli import main

    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)])
    link = tmp_path / "mystdout.mp4"
    link.symlink_to("/proc/self/fd/1")
    assert main(["enhance", str(src), "-o", str(link), *_RUN, "--overwrite"]) == 2
    assert "writing to stdout is not supported" in capsys.readouterr().err
    assert link.is_symlink()
