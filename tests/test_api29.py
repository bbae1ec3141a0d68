"""Session 29 (api29): existing outputs refused before any work (a single photo, a folder of photos,
the input itself as dst), an output folder that may not be written into, what the API does with
SIGTERM, and a cut shorter than a frame."""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from _clips import write_video
from stream_gpen import Cancelled, Enhancer, Interrupted
from stream_gpen.cli import main
from stream_gpen import errors
from stream_gpen.errors import OutputExistsError, StreamGpenError, in_command_line_words

REPO = Path(__file__).resolve().parents[1]


def _clip(path, n=3, step=30):
    return write_video(path, [np.full((48, 64, 3), step * i, np.uint8) for i in range(n)])


@pytest.fixture
def no_work(monkeypatch):
    """Any input opened for restoring fails the test (a refusal must come before any work) while
    ``guard["on"]``."""
    guard = {"on": True}
    real = Enhancer._open

    def opened(self, src, **kw):
        if guard["on"]:
            raise AssertionError(f"{src} was opened for restoring")
        return real(self, src, **kw)

    monkeypatch.setattr(Enhancer, "_open", opened)
    return guard


# --- 1. a single input's existing output: refused up front, and the input itself said so ----------

def test_an_existing_photo_output_is_refused_before_the_photo_is_restored(tmp_path, enh, face, no_work):
    """api29: enhance_file(photo, existing) restored the photo (minutes on a CPU) and was refused at
    its writing, with a folder run's hint (skip_existing=True resumes a folder run)."""
    photo, there = tmp_path / "a.png", tmp_path / "b.png"
    face.save(photo)
    face.save(there)
    with pytest.raises(OutputExistsError, match=f"^output exists: {re.escape(str(there))}$") as e:
        enh.enhance_file(photo, there)
    assert e.value.hint == "pass overwrite=True or choose another dst"
    # overwrite and skip_existing take it as before
    no_work["on"] = False
    assert enh.enhance_file(photo, there, skip_existing=True).frames_out == 0
    assert enh.enhance_file(photo, there, overwrite=True).frames_out == 1
    assert enh.enhance_file(photo, photo, overwrite=True).frames_out == 1  # (restored in place)


@pytest.mark.parametrize("kind", ["photo", "video"])
def test_the_input_itself_as_dst_is_said_as_such(tmp_path, enh, face, no_work, kind):
    """api29: enhance_file(x, x) said "output exists: x" (a photo's after restoring it, with a hint
    to resume a folder run); the command line said "the output is the input itself"."""
    if kind == "photo":
        src = tmp_path / "a.png"
        face.save(src)
    else:
        src = _clip(tmp_path / "v.mp4")
    with pytest.raises(OutputExistsError, match=f"^the output is the input itself: {re.escape(str(src))}$") as e:
        enh.enhance_file(src, src)
    assert e.value.hint == "choose another dst to keep the original; overwrite=True replaces it with the restored copy"
    assert in_command_line_words(e.value.hint) == ("choose another -o to keep the original; --overwrite replaces it "
                                                   "with the restored copy")


# --- 2. a folder of photos only: its existing outputs refused before the first photo ---------------

def test_a_photos_only_folder_into_a_folder_holding_an_output_is_refused_up_front(tmp_path, enh, face, no_work):
    """api29: photos only (no videos, no skip_existing) went to the photos' job without the up-front
    check: a, b were restored and written, then c's existing output raised half-way."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    for n in "abc":
        face.save(src / f"{n}.png")
    face.save(out / "c.png")
    with pytest.raises(OutputExistsError, match=f"^output exists: {re.escape(str(out / 'c.png'))}$") as e:
        enh.enhance_file(src, out)
    assert e.value.hint == "overwrite=True redoes it, skip_existing=True resumes a folder run"
    assert sorted(os.listdir(out)) == ["c.png"]
    face.save(out / "a.png")
    with pytest.raises(OutputExistsError, match=r"output exists: .*a\.png \(and 1 more\)$") as e:
        enh.enhance_file(src, out)
    assert e.value.hint == "overwrite=True redoes them, skip_existing=True resumes a folder run"
    # a resumed run, and one that redoes them, as before
    no_work["on"] = False
    assert enh.enhance_file(src, out, skip_existing=True).frames_out == 1
    assert enh.enhance_file(src, out, overwrite=True).frames_out == 3


# --- 3. an output folder this process may not write into -------------------------------------------

@pytest.fixture
def refused(monkeypatch, tmp_path):
    """A folder ``ro`` that os.access says may not be written into (the tests run as root, whom
    permissions do not stop)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access

    def access(path, mode, *a, **kw):
        if mode & os.W_OK and Path(path) == ro:
            return False
        return real(path, mode, *a, **kw)

    monkeypatch.setattr(os, "access", access)
    return ro


def _said_not_writable(e, folder):
    assert isinstance(e, errors.OutputNotWritableError) and isinstance(e, PermissionError), type(e)
    assert str(e) == f"cannot write into the output folder {folder}: permission denied", str(e)
    assert e.errno in (errno.EACCES, errno.EPERM) and e.exit_code == 4
    assert e.hint.startswith("choose another dst, in a folder you may write into"), e.hint


def test_a_read_only_output_folder_is_refused_before_any_work(tmp_path, enh, face, refused, no_work):
    """api29: only the folder's existence was checked: a photo was restored, then a bare
    PermissionError escaped; a video ran to its end and said its folder had "disappeared"."""
    photo = tmp_path / "a.png"
    face.save(photo)
    video = _clip(tmp_path / "v.mp4")
    lib = tmp_path / "lib"
    lib.mkdir()
    face.save(lib / "b.png")
    for src, dst in ((photo, refused / "x.png"), (video, refused / "x.mp4"), (photo, refused), (lib, refused)):
        with pytest.raises(errors.OutputNotWritableError) as e:
            enh.enhance_file(src, dst)
        _said_not_writable(e.value, refused)
    assert os.listdir(refused) == []


def test_the_command_line_says_a_read_only_output_folder_with_exit_4(tmp_path, face, refused, cli_env, capsys):
    photo = tmp_path / "a.png"
    face.save(photo)
    assert main(["enhance", str(photo), "-o", str(refused / "x.png"), *cli_env]) == 4
    err = capsys.readouterr().err
    assert f"error: cannot write into the output folder {refused}: permission denied" in err, err
    assert "hint: choose another -o, in a folder you may write into" in err, err


def test_a_photo_write_refused_mid_run_is_the_projects_error(tmp_path, enh, face, monkeypatch):
    """Where the folder is refused only at the write (made read-only during the run, or not told by
    os.access), a photo raised a bare PermissionError naming its hidden temporary file."""
    photo, out = tmp_path / "a.png", tmp_path / "out"
    face.save(photo)
    out.mkdir()
    real = Path.write_bytes

    def write_bytes(self, data):
        if self.parent == out:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    with pytest.raises(errors.OutputNotWritableError) as e:
        enh.enhance_file(photo, out / "x.png")
    _said_not_writable(e.value, out)
    assert isinstance(e.value.__cause__, PermissionError)


@contextlib.contextmanager
def _immutable(folder: Path):
    """``folder`` made immutable (``chattr +i``: refused even to root), or the test skipped."""
    try:
        subprocess.run(["chattr", "+i", str(folder)], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("chattr +i is not available here")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False, capture_output=True, timeout=30)


@pytest.mark.parametrize("frames", [3, 60])  # (the encoder still holding every frame; packets muxed)
def test_a_video_refused_at_its_first_write_is_not_said_as_a_folder_gone(tmp_path, enh, monkeypatch, caplog,
                                                                           frames):
    """api29: a video into a folder the muxer may not make its file in said (warned) that the output
    folder "disappeared during the run (removed, moved or renamed...)", and failed as "encoding ...
    failed: Operation not permitted"."""
    src = write_video(tmp_path / "v.mp4", [np.full((48, 64, 3), 4 * i, np.uint8) for i in range(frames)])
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr(os, "access", lambda *a, **kw: True)  # (not told before the run)
    with _immutable(ro), caplog.at_level(logging.WARNING), pytest.raises(errors.OutputNotWritableError) as e:
        enh.enhance_file(src, ro / "x.mp4")
    assert str(e.value).startswith(f"cannot write into the output folder {ro}: "), str(e.value)
    assert e.value.exit_code == 4 and e.value.summary is not None and e.value.summary.error == str(e.value)
    assert "disappeared" not in caplog.text, caplog.text


def test_a_folder_run_into_an_immutable_folder_is_the_projects_error(tmp_path, enh, face, monkeypatch):
    """api29: a folder run into a folder that may not be written into raised a bare PermissionError
    from mkdir (its output folder to be made there) or from the first photo's write."""
    lib, ro = tmp_path / "lib", tmp_path / "ro"
    lib.mkdir()
    ro.mkdir()
    face.save(lib / "b.png")
    monkeypatch.setattr(os, "access", lambda *a, **kw: True)
    with _immutable(ro):
        for dst in (ro / "sub", ro):
            with pytest.raises(errors.OutputNotWritableError) as e:
                enh.enhance_file(lib, dst)
            assert str(e.value).startswith(f"cannot write into the output folder {ro}: "), str(e.value)
            assert isinstance(e.value, StreamGpenError) and e.value.exit_code == 4


# --- 4. SIGTERM through the API: what README says, and its recipe works ------------------------------

def _api_section() -> str:
    """The Python API's prose: README's example links to it in docs/reference.md (session 34)."""
    text = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")
    return text[text.index("## Python API"):text.index("## Weights")]


def test_readme_says_the_api_installs_no_signal_handlers_and_its_recipe_works(tmp_path, enh):
    """api29: README said "Ctrl-C (SIGTERM, SIGHUP) during a run raises Interrupted" of the API;
    only the command line installs handlers (cli._Signals). It says so now, and how a program
    gets the same: its recipe stops a run on SIGTERM, the video so far kept."""
    api = " ".join(_api_section().split())
    assert "(SIGTERM, SIGHUP) during a run raises" not in api
    assert "the API installs no signal handlers" in api
    assert "signal.default_int_handler)` raises `Interrupted`" in api and "with `cancel=event` raises `Cancelled`" in api
    src = _clip(tmp_path / "v.mp4", 12, 20)

    def term_at_4(done, total, faces):
        if done == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    for k, (handler, event, raised) in enumerate(((signal.default_int_handler, None, Interrupted),
                                                  (None, threading.Event(), Cancelled))):
        old = signal.signal(signal.SIGTERM, handler or (lambda *_, ev=event: ev.set()))
        try:
            with pytest.raises(raised) as e:
                enh.enhance_file(src, tmp_path / f"o{k}.mp4", on_progress=term_at_4, cancel=event)
        finally:
            signal.signal(signal.SIGTERM, old)
        assert e.value.summary.interrupted and Path(e.value.summary.partial_output).is_file()


# --- 5. a cut shorter than a frame --------------------------------------------------------------------

def _greys(path):
    with av.open(str(path)) as c:
        return [int(np.median(f.to_ndarray(format="rgb24"))) for f in c.decode(video=0)]


@pytest.mark.parametrize("start, duration, grey", [(0.0, 1e-7, 0), (0.0, 1e-9, 0), (0.04, 1e-7, 30),
                                                   (0.08, 5e-7, 60)])
def test_a_duration_shorter_than_the_float_slack_keeps_the_frame_on_screen(tmp_path, enh, start, duration, grey):
    """api29: duration=1e-7 said "the video stream contains no frames", and start=0.04 with it
    "start=0.04 s is past the end" of a 0.12 s clip: the window's end, less its 1e-6 s slack,
    fell before the first frame. A cut shorter than a frame keeps that one frame."""
    src = _clip(tmp_path / "v.mp4")
    s = enh.enhance_file(src, tmp_path / "o.mp4", start=start, duration=duration)
    assert s.frames_out == 1
    got = _greys(tmp_path / "o.mp4")
    assert len(got) == 1 and abs(got[0] - grey) <= 3, got


def test_a_one_frame_clip_with_a_tiny_duration_is_restored(tmp_path, enh):
    src = write_video(tmp_path / "one.mp4", [np.full((48, 64, 3), 100, np.uint8)], rate=10**7)
    assert enh.enhance_file(src, tmp_path / "o.mp4").frames_out == 1
    assert enh.enhance_file(src, tmp_path / "o2.mp4", duration=1e-7).frames_out == 1
