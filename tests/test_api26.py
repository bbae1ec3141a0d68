"""Session 26 (api26): the Python API's dry run (``dst="null"``), a photo's output folder, and Ctrl-C
as a program's loop meets it."""
from __future__ import annotations

import json
import typing

import numpy as np
import pytest

from _clips import write_video
from stream_gpen import Cancelled, Enhancer, Interrupted, StreamGpenError
from stream_gpen.cli import main
from stream_gpen.summary import RunSummary


def _clip(path, n=6):
    return write_video(path, [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(n)])


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
