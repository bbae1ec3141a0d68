"""Session 24 review: the command line's --report says the API's messages in its flags too (only
what it printed to stderr was reworded)."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image


def test_the_report_says_the_error_in_flags(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    lib = tmp_path / "lib"
    lib.mkdir()
    for n in "ab":
        Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(lib / f"{n}.jpg")
    report = tmp_path / "r.json"
    assert main(["enhance", str(lib), "-o", str(lib), "--overwrite", "--report", str(report), *cli_env]) == 2
    err = capsys.readouterr().err
    said = json.loads(report.read_text())["error"]
    assert "name another with -o" in err and "name another with -o" in said, (err, said)
    assert " as dst" not in said


def test_in_flags_rewords_error_notes_and_skips():
    from stream_gpen.commands import _in_flags
    from stream_gpen.summary import RunSummary

    s = RunSummary(input="x", output="y")
    s.error = "interrupted after 1 of 3 photos; skip_existing=True resumes"
    s.fallbacks = ["pass overwrite=True or choose another dst"]
    s.skipped = ['name a regular file as dst (dst="null" restores without writing anything)']
    _in_flags(s)
    assert s.error.endswith("--skip-existing resumes")
    assert s.fallbacks == ["pass --overwrite or choose another -o"]
    assert s.skipped == ["name a regular file with -o (-o /dev/null restores without writing anything)"]
