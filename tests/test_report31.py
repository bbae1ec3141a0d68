"""Folder runs' reports and messages (session 31): what a folder run lists as skipped, says when
stopped, and leaves behind."""
from __future__ import annotations

import json


def test_a_folder_none_of_whose_photos_can_be_read_lists_them_in_its_report(tmp_path, cli_env):
    from stream_gpen.cli import main

    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "r.json"
    src.mkdir()
    (src / "x.jpg").write_bytes(b"x\n")
    (src / "y.png").write_bytes(b"not a picture " * 10)
    assert main(["enhance", str(src), "-o", str(out), "--report", str(report), *cli_env]) == 2
    r = json.loads(report.read_text())
    assert "none of the 2 images" in r["error"], r
    assert len(r["skipped"]) == 2 and str(src / "x.jpg") in r["skipped"][0] and str(src / "y.png") in r["skipped"][1], r
    assert not out.exists()
