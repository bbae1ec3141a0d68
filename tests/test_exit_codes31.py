"""Session 31: an output that could not be written into its folder exited 4
(OutputNotWritableError), a --report there 2 (InvalidInputError), and the exit-code texts said
4 only of decoding and encoding. A --report the file system refuses (read-only, no permission)
exits 4 as well now, and README and --help say so."""
from __future__ import annotations

import errno
import tempfile

import numpy as np

from _clips import write_video
from stream_gpen.cli import build_parser, main
from stream_gpen.errors import OutputNotWritableError


def test_a_report_in_a_read_only_folder_exits_4_as_the_output_does(tmp_path, capsys, monkeypatch):
    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)])

    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    code = main(["enhance", str(src), "-o", str(tmp_path / "out.mp4"), "--report", str(tmp_path / "r.json"),
                 "--model", "classic", "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert code == OutputNotWritableError.exit_code == 4, err
    assert f"--report {tmp_path / 'r.json'} cannot be written there: Read-only file system" in err


def test_the_exit_code_texts_say_4_of_an_output_that_cannot_be_written():
    from pathlib import Path

    assert "an output or --report that cannot be written" in build_parser().epilog
    reference = (Path(__file__).resolve().parents[1] / "docs" / "reference.md").read_text(encoding="utf-8")
    assert "or `--report`'s, that may not be written into is said before any work, exit 4 as well" in reference
