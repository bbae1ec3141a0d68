"""Session 29 (fsubcmd29): the sub-commands' reports, hints and early checks.

1. a camera stopped by a signal before its session began wrote ``"stopped_by": null`` in
   ``--report`` (and ``"device": "auto"``, ``"precision": ""``, ``"encoder": ""``): it names the
   signal, and the three fields are null (nothing ran);
2. errors without their ``hint:`` line: camera ``-o photo.jpg``, ``serve --host`` an address this
   machine does not have (or cannot resolve);
3. ``camera -o /nonexistdir/x.mp4`` said the missing folder only once the model had loaded and the
   source had opened: it is refused first, as enhance refuses it;
4. ``info --detector-weights W`` without ``--faces`` ignored the option unsaid: a warning.
"""
from __future__ import annotations

import json
import os
import signal
import socket

import pytest

from stream_gpen.cli import main

SRC = "lavfi:testsrc2=size=96x64:rate=25"


# --- 1. a camera stopped before its session: the report names the signal ---------------------------

@pytest.mark.parametrize("signame, said, rc", [("SIGTERM", "SIGTERM", 143), ("SIGINT", "Ctrl-C", 130)])
def test_a_camera_stopped_before_its_session_reports_the_signal(tmp_path, det_home, monkeypatch, signame, said, rc):
    from stream_gpen import commands

    sig = getattr(signal, signame)
    absorbed = []
    # (the CLI's handler takes the signal; should it not be in place, this absorbs it)
    old = signal.signal(sig, signal.default_int_handler if signame == "SIGINT" else lambda *a: absorbed.append(a))

    def make_enhancer(args):  # the model loading when the signal comes
        os.kill(os.getpid(), sig)
        raise AssertionError("the signal should have stopped the run")

    monkeypatch.setattr(commands, "_make_enhancer", make_enhancer)
    report = tmp_path / "r.json"
    try:
        code = main(["camera", SRC, "--model", "classic", "-o", str(tmp_path / "rec.mp4"), "--frames", "3",
                     "--report", str(report)])
    finally:
        signal.signal(sig, old)
    assert code == rc and not absorbed
    r = json.loads(report.read_text())
    assert r["interrupted"] is True and r["stopped_by"] == said, r
    assert r["device"] is None and r["precision"] is None and r["encoder"] is None, r
    assert r["frames_out"] == 0 and not (tmp_path / "rec.mp4").exists()


def test_an_enhance_stopped_while_the_model_loads_reports_no_device(tmp_path, cli_env, monkeypatch, shared):
    from stream_gpen import commands

    def make_enhancer(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "_make_enhancer", make_enhancer)
    report = tmp_path / "r.json"
    video = shared / "data" / "videos" / "retalking_face2_frontal_talking_head.mp4"
    assert main(["enhance", str(video), "-o", str(tmp_path / "o.mp4"), "--report", str(report)]) == 130
    r = json.loads(report.read_text())
    assert r["interrupted"] is True and r["device"] is None and r["precision"] is None and r["encoder"] is None, r
    assert r["stopped_by"] is None  # (camera's field)


# --- 2. hints ----------------------------------------------------------------------------------------

def test_camera_image_output_name_has_a_hint(tmp_path, capsys):
    assert main(["camera", SRC, "-o", str(tmp_path / "photo.jpg")]) == 2
    err = capsys.readouterr().err
    assert "is an image name; the camera records a video" in err and "\nhint: e.g. -o " in err, err
    assert "photo.mp4" in err


def test_camera_output_without_extension_has_a_hint(tmp_path, capsys):
    assert main(["camera", SRC, "-o", str(tmp_path / "rec")]) == 2
    err = capsys.readouterr().err
    assert "has no extension" in err and "\nhint: the extension picks the container" in err, err


def _unassignable_address() -> str:
    addr = "10.255.255.1"
    try:
        with socket.socket() as s:
            s.bind((addr, 0))
    except OSError:
        return addr
    pytest.skip(f"{addr} is an address of this machine")


def test_serve_host_not_of_this_machine_has_a_hint(capsys):
    addr = _unassignable_address()
    assert main(["serve", "--host", addr, "--port", "8765"]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on {addr}:8765" in err and "\nhint: --host takes an address of this machine" in err, err


def test_serve_host_unresolvable_has_a_hint(capsys):
    assert main(["serve", "--host", "nosuchhost.invalid", "--port", "8765"]) == 2
    err = capsys.readouterr().err
    assert "not an address this machine has" in err and "\nhint: --host takes an address of this machine" in err, err


def test_report_that_is_a_folder_has_a_hint(tmp_path, capsys, shared):
    video = shared / "data" / "videos" / "retalking_face2_frontal_talking_head.mp4"
    assert main(["enhance", str(video), "-o", str(tmp_path / "o.mp4"), "--report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a folder; name a .json file" in err and "\nhint: e.g. --report " in err, err


# --- 3. camera: a missing output folder before the model loads --------------------------------------

def test_camera_missing_output_folder_is_refused_before_the_model(tmp_path, capsys, monkeypatch):
    from stream_gpen import commands

    def make_enhancer(*a, **k):
        raise AssertionError("the model was loaded before the output's folder was checked")

    monkeypatch.setattr(commands, "_make_enhancer", make_enhancer)
    out = tmp_path / "nonexistdir" / "x.mp4"
    assert main(["camera", SRC, "-o", str(out), "--frames", "3"]) == 2
    err = capsys.readouterr().err
    assert f"output folder does not exist: {out.parent}" in err and "\nhint: " in err, err
    # a file on the path: said as such
    (tmp_path / "f.txt").write_text("x")
    assert main(["camera", SRC, "-o", str(tmp_path / "f.txt" / "x.mp4"), "--frames", "3"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


# --- 4. info --detector-weights without --faces ------------------------------------------------------

def test_info_detector_weights_without_faces_warns(tmp_path, capsys, shared):
    photo = next(p for p in sorted((shared / "data").rglob("*")) if p.suffix.lower() in (".jpg", ".png"))
    assert main(["info", "--detector-weights", str(tmp_path / "nope.pth"), str(photo)]) == 0
    err = capsys.readouterr().err
    assert "--detector-weights applies to --faces" in err, err
