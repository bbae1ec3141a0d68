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


# --- 2. the output's folder, checked before any work, for photos as for videos -------------------

def test_a_photo_under_a_file_is_refused_before_it_is_restored(tmp_path, enh, face):
    """api26: enhance_file("photo.png", "p8.png/x.png") with p8.png a file restored every face and
    then raised a bare FileExistsError; a video said "output folder does not exist: p8.png"."""
    photo, taken = tmp_path / "a.png", tmp_path / "p8.png"
    face.save(photo)
    face.save(taken)
    src = _clip(tmp_path / "v.mp4", 3)
    frames: list = []
    for s, d in ((photo, taken / "x.png"), (src, taken / "x.mp4"), (photo, str(taken) + "/")):
        with pytest.raises(InvalidInputError, match=f"the output's folder {re.escape(str(taken))} is a file, not a "
                                                    "folder: dst=") as e:
            enh.enhance_file(s, d, on_progress=lambda *a: frames.append(a))
        assert e.value.hint.startswith("choose another dst, in a folder"), e.value.hint
    assert frames == []


def test_a_photo_into_a_missing_folder_is_refused_as_a_video_is(tmp_path, enh, face, cli_env, capsys):
    """A photo into a folder that is not there (a mistyped name) made the folders; a video's was
    refused. Both are refused now, before any work, by the API and the command line alike."""
    photo = tmp_path / "a.png"
    face.save(photo)
    src = _clip(tmp_path / "v.mp4", 3)
    for s, name in ((photo, "x.png"), (src, "x.mp4")):
        with pytest.raises(InvalidInputError, match="output folder does not exist: .*typo/deeper$") as e:
            enh.enhance_file(s, tmp_path / "typo" / "deeper" / name)
        assert e.value.hint == "create it, or choose another dst"
        assert main(["enhance", str(s), "-o", str(tmp_path / "typo" / "deeper" / name), *cli_env]) == 2
        err = capsys.readouterr().err
        assert "output folder does not exist" in err and "hint: create it, or choose another -o" in err, err
    assert not (tmp_path / "typo").exists()
    # a folder input's output folder is made, with the folders above it
    lib = tmp_path / "lib"
    lib.mkdir()
    face.save(lib / "b.png")
    assert enh.enhance_file(lib, tmp_path / "new" / "out").frames_out == 1
    assert (tmp_path / "new" / "out" / "b.png").is_file()


def test_the_command_line_says_a_file_on_the_outputs_path_in_its_flags(tmp_path, face, cli_env, capsys):
    photo, taken = tmp_path / "a.png", tmp_path / "p8.png"
    face.save(photo)
    face.save(taken)
    assert main(["enhance", str(photo), "-o", str(taken / "x.png"), *cli_env]) == 2
    err = capsys.readouterr().err
    assert f"error: the output's folder {taken} is a file, not a folder: -o {taken / 'x.png'}" in err, err
    assert "hint: choose another -o, in a folder" in err, err


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


def test_resolve_output_reads_a_tilde_as_the_home_folder(tmp_path, monkeypatch):
    """review26: the output-folder check read ``~/x.jpg`` as a folder named ``~`` (refused: "output
    folder does not exist: ~"), where enhance_file expands it."""
    from stream_gpen.api import resolve_output

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    assert resolve_output("p.jpg", "~/x.jpg") == str(tmp_path / "x.jpg")
    assert resolve_output("~/p.mp4", "~/sub") == str(tmp_path / "sub" / "p_enhanced.mp4")
    with pytest.raises(InvalidInputError, match="does not exist"):
        resolve_output("p.jpg", "~/missing/x.jpg")
