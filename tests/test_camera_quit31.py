"""q + Enter stops camera only when typed on a terminal: its help, README and cookbook say so (hunt 31)."""

import re
from pathlib import Path

from stream_gpen.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_camera_help_says_q_is_read_from_a_terminal(capsys):
    assert main(["camera", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "q + Enter typed on a terminal (a piped or redirected stdin is not read for it)" in out


def test_readme_and_cookbook_say_q_is_read_from_a_terminal():
    for doc in ("README.md", "docs/reference.md", "docs/cookbook.md"):
        text = " ".join((ROOT / doc).read_text(encoding="utf-8").split())
        for m in re.finditer(r"q \+ Enter", text):
            if "Stop with" in text[max(0, m.start() - 12):m.start()] or "`--seconds`, " in text[m.start() - 14:m.start()]:
                assert "terminal" in text[m.end():m.end() + 40], (doc, text[m.start() - 40:m.end() + 40])
