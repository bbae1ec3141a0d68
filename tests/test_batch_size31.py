"""Session 31: ``--batch-size 100000`` passed the parser and failed later as "batch_size must be an
int in [1, 256]", naming the Python keyword, with no hint; the help said only "default 8". The
parser takes 1 to the Enhancer's largest batch now, refusing the rest as it refuses 0, and the help
says the range."""
from __future__ import annotations

import pytest

from stream_gpen.cli import main

MAX_BATCH_SIZE = 256  # (stream_gpen.errors.MAX_BATCH_SIZE)


@pytest.mark.parametrize("command", ["enhance", "camera"])
@pytest.mark.parametrize("value", ["100000", str(MAX_BATCH_SIZE + 1), "0", "-3"])
def test_batch_size_out_of_range_is_a_usage_error(tmp_path, capsys, command, value):
    assert main([command, str(tmp_path / "in.mp4"), "--batch-size", value]) == 2
    err = capsys.readouterr().err
    assert f"argument --batch-size: must be an int in [1, {MAX_BATCH_SIZE}], got '{value}'" in err
    assert "batch_size" not in err and f"stream-gpen {command} --help" in err


@pytest.mark.parametrize("command", ["enhance", "camera"])
def test_batch_size_help_says_the_range(capsys, command):
    assert main([command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"--batch-size N largest face batch, 1-{MAX_BATCH_SIZE};" in out
