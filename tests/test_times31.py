"""Session 31 (server): times and numbers given as text (``--start``/``--duration``, the server's
``start``/``duration`` query, the numeric options of ``enhance``, ``camera`` and ``serve``) are read
only in ASCII digits: float() and int() also took ``4_9`` (49) and other scripts' digits (``١`` is
1), so ``--start 4_9`` began 49 s in without a word."""
from __future__ import annotations

import pytest

from stream_gpen.cli import build_parser

ODD = ["1_0", "4_9", "\u0661", "\uff18", "1.0_5", "1:3_0"]  # (underscore; Arabic-Indic 1; fullwidth 8)


@pytest.mark.parametrize("argv", [
    *(["enhance", "x.mp4", opt, text] for opt in ("--start", "--duration") for text in ODD),
    ["enhance", "x.mp4", "--batch-size", "1_6"], ["enhance", "x.mp4", "--crf", "2_3"],
    ["enhance", "x.mp4", "--strength", "0.\u0665"], ["camera", "--seconds", "1_0"],
    ["serve", "--max-jobs", "1_0"], ["serve", "--max-upload-mb", "1_0"], ["serve", "--max-pixels", "1_000"]])
def test_odd_digits_are_refused_on_the_command_line(argv, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert f"{argv[-2]}:" in capsys.readouterr().err


@pytest.mark.parametrize("text, seconds", [("90", 90.0), ("90.5", 90.5), (".5", 0.5), ("1:30", 90.0),
                                           ("01:01:30.25", 3690.25), ("1e3", 1000.0)])
def test_the_documented_times_still_parse(text, seconds):
    args = build_parser().parse_args(["enhance", "x.mp4", "--start", text, "--duration", text])
    assert (args.start, args.duration) == (seconds, seconds)


@pytest.mark.parametrize("name", ["start", "duration"])
@pytest.mark.parametrize("text", ODD)
def test_odd_digits_are_refused_by_the_server(tmp_path, name, text):
    pytest.importorskip("fastapi")
    from tests.test_server import KEY, FakeEnhancer, client_for

    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        r = c.post("/v1/videos", params={name: text}, content=b"v" * 10, headers={**KEY, "Content-Type": "video/mp4"})
        assert r.status_code == 422 and r.json()["detail"].startswith(f"{name}: expected seconds or [HH:]MM:SS"), r.text
        assert list((tmp_path / "jobs").iterdir()) == []
