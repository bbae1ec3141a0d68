"""Session 31: an option after ``--`` (``enhance -- x.mp4 --model classic``) was left over as an
input and said "unrecognized arguments: --model classic (--model: did you mean --model?)": the
hint suggested the option itself. It says to put it before ``--`` now."""
from __future__ import annotations

from stream_gpen.cli import main


def test_an_option_after_double_dash_is_told_to_go_before_it(capsys):
    assert main(["enhance", "--", "x.mp4", "--model", "classic", "--qiet"]) == 2
    err = capsys.readouterr().err
    assert ("unrecognized arguments: --model classic --qiet (--model is an option: put it before '--'; "
            "--qiet: did you mean --quiet?)") in err
    assert "did you mean --model" not in err
