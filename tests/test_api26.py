"""Session 26 (api26): the Python API's dry run (``dst="null"``), a photo's output folder, and Ctrl-C
as a program's loop meets it."""
from __future__ import annotations

import json
import os
import re
import typing

import numpy as np
import pytest

from _clips import write_video
from stream_gpen import Cancelled, Enhancer, Interrupted, InvalidInputError, StreamGpenError
from stream_gpen.cli import main
from stream_gpen.summary import RunSummary


def _clip(path, n=6):
    return write_video(path, [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(n)])


# --- 1. a dry run (dst="null") checks the encoder options a real run refuses ---------------------

@pytest.mark.parametrize("kw, said", [
    (dict(crf=60), "crf=60 for codec='h264' must be within 0..51"),
    (dict(preset="fastest"), "preset='fastest' for codec='h264' is not one of"),
    (dict(codec="prores", crf=20), "codec='prores' takes no crf or preset"),
    (dict(codec="vp9", preset="slow"), "codec='vp9' takes no preset"),
    (dict(codec="av1", crf=0), "crf=0 for codec='av1' must be within 1..63"),
])
def test_a_dry_run_refuses_what_the_real_run_refuses(tmp_path, enh, kw, said):
    """api26: enhance_file(src, "null") restored the whole clip with each of these, which a real
    output refuses before its first frame."""
    src = _clip(tmp_path / "v.mp4", 3)
    frames: list = []
    for dst in ("null", tmp_path / "o.mp4"):
        with pytest.raises(InvalidInputError, match=re.escape(said)):
            enh.enhance_file(src, dst, on_progress=lambda *a: frames.append(a), **kw)
    assert frames == []  # (refused before any work)


def test_a_dry_run_takes_what_the_real_run_takes(tmp_path, enh, cli_env):
    """... and nothing more is refused: any codec (nothing is written, no container to fit), the
    command line's -o /dev/null as the API's "null" (it refused --codec prores: "cannot go into .mp4")."""
    src = _clip(tmp_path / "v.mp4", 3)
    assert enh.enhance_file(src, "null", crf=20, preset="ultrafast").frames_out == 3
    assert enh.enhance_file(src, "null", codec="prores").frames_out == 3
    assert main(["enhance", str(src), "-o", os.devnull, "--codec", "prores", *cli_env]) == 0
    assert main(["enhance", str(src), "-o", os.devnull, "--crf", "60", *cli_env]) == 2


# --- 3. Ctrl-C is a KeyboardInterrupt, never an Exception ----------------------------------------

def test_ctrl_c_is_a_keyboard_interrupt_not_an_exception():
    """Interrupted derived from StreamGpenError (an Exception) too: a program's ``except Exception``
    took Ctrl-C for a failed file."""
    assert issubclass(Interrupted, KeyboardInterrupt)
    assert not issubclass(Interrupted, Exception) and not issubclass(Interrupted, StreamGpenError)
    e = Interrupted("interrupted after 2 frames", hint="h")
    assert (str(e), e.exit_code, e.hint, e.summary) == ("interrupted after 2 frames", 130, "h", None)
    # the program's own cancel= stays an error it asked for (a KeyboardInterrupt ends an asyncio loop)
    assert issubclass(Cancelled, StreamGpenError) and not issubclass(Cancelled, KeyboardInterrupt)


def test_a_batch_loop_that_skips_failed_files_stops_on_ctrl_c(tmp_path, enh):
    """api26: ``try: enhance_file(...) except Exception: skip`` went on to the next file after a
    Ctrl-C (three files "skipped", the loop ran to its end)."""
    src = _clip(tmp_path / "v.mp4")

    def ctrl_c(done, total, faces):  # (a Ctrl-C landing in the run)
        if done == 2:
            raise KeyboardInterrupt

    done = []
    with pytest.raises(Interrupted) as e:
        for i in range(3):
            try:
                enh.enhance_file(src, tmp_path / f"o{i}.mp4", on_progress=ctrl_c)
                done.append(i)
            except Exception as exc:  # noqa: BLE001 - the user's loop under test
                done.append(f"skipped {i}: {exc}")
    assert done == [] and e.value.summary is not None and e.value.summary.interrupted


def test_the_command_line_still_says_an_interrupted_run_with_exit_130(tmp_path, cli_env, capsys, monkeypatch):
    """Interrupted is no longer a StreamGpenError: the command line still prints its message and
    hint, exits 130 and writes the report of the run so far."""
    src = _clip(tmp_path / "v.mp4", 3)

    def stopped(self, *a, **kw):
        err = Interrupted("interrupted after 2 frames", hint="the hint")
        err.summary = RunSummary(input=str(src), output=str(tmp_path / "o.mp4"), frames_out=2, interrupted=True)
        raise err

    monkeypatch.setattr(Enhancer, "enhance_file", stopped)
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), "--report", str(report), *cli_env]) == 130
    err = capsys.readouterr().err
    assert "error: interrupted after 2 frames" in err and "hint: the hint" in err, err
    r = json.loads(report.read_text())
    assert r["interrupted"] is True and r["frames_out"] == 2


def test_camera_finishes_its_other_outputs_after_a_deferred_ctrl_c():
    """A Ctrl-C deferred while one camera output was finished comes out of its close as
    Interrupted: still noted as that output's, so the next outputs are finished under their own
    names (not salvaged as .partial), then raised."""
    from stream_gpen.commands import _exit_alone

    class Sink:
        def __exit__(self, *exc):
            raise Interrupted("stopped: the output in hand was written whole first")

    failures: list = []
    assert _exit_alone(Sink(), "a.mp4", failures)(None, None, None) is False
    assert [o for o, _ in failures] == ["a.mp4"] and isinstance(failures[0][1], Interrupted)


# --- 4. the errors' annotations resolve -----------------------------------------------------------

def test_the_errors_type_hints_resolve():
    """typing.get_type_hints(StreamGpenError) raised NameError: RunSummary was imported only for
    type checkers."""
    for cls in (StreamGpenError, Interrupted, Cancelled):
        hints = typing.get_type_hints(cls)
        assert hints["summary"] == (RunSummary | None) and hints["exit_code"] is int, cls
