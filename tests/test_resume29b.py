"""A resumed folder run (``skip_existing``) counts the files done before in ``RunSummary.done_before``
(and ``--report``), not only in a line of ``fallbacks`` (session 29: the command read the count back
out of that line)."""
from __future__ import annotations

import json

from PIL import Image


def _folder(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (32, 24), (90, 90, 90)).save(src / name)
    (src / "bad.jpg").write_bytes(b"junk\n")
    return src, tmp_path / "out"


def test_a_resumed_folder_counts_the_files_done_before(tmp_path, enh):
    src, out = _folder(tmp_path)
    first = enh.enhance_file(src, out)
    assert first.done_before == 0
    (out / "b.png").unlink()  # (one to do again, one done before)
    again = enh.enhance_file(src, out, skip_existing=True)
    assert again.done_before == 1 and again.frames_out == 1
    assert again.to_dict()["done_before"] == 1
    assert any("1 file(s) already in" in f for f in again.fallbacks), again.fallbacks


def test_the_report_of_a_resumed_folder_says_done_before(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    src, out = _folder(tmp_path)
    assert main(["enhance", str(src), "-o", str(out), *cli_env]) == 5
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(out), "--skip-existing", "--report", str(report), *cli_env]) == 5
    assert json.loads(report.read_text())["done_before"] == 2
    assert "2 file(s) already in" in capsys.readouterr().err
