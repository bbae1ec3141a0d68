"""Hunt 18 (camera18): the camera command's early refusals and its stops before the first frame."""
from __future__ import annotations

import pytest

from stream_gpen.cli import main


@pytest.mark.parametrize("extra, said", [
    (["--stream", "http://127.0.0.1:9/x"], "stream URL scheme 'http' is not one of ('rtmp'"),
    (["--stream", "out.mp4"], "a stream URL is one of rtmp://"),
    (["-o", "rec.xyz"], "no video container is known for the output name rec.xyz"),
])
def test_camera_output_mistakes_are_refused_before_the_model_loads(tmp_path, monkeypatch, capsys, extra, said):
    # a model name whose weights are missing (offline): a weights error (exit 3) came first, the
    # output's own mistake only once the model had loaded and the source had opened
    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    assert main(["camera", "lavfi:testsrc=size=96x64", *extra, "--seconds", "1", "--model", "gpen-bfr-512",
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert said in err and "weights" not in err.lower(), err


def test_virtual_camera_without_pyvirtualcam_is_refused_early(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyvirtualcam" else real(name, *a))
    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    assert main(["camera", "lavfi:testsrc=size=96x64", "--virtual-camera", "--model", "gpen-bfr-512",
                 "--device", "cpu"]) == 2
    assert "--virtual-camera needs pyvirtualcam" in capsys.readouterr().err


def test_a_stop_before_the_first_frame_is_not_an_error(tmp_path, cli_env, capsys, monkeypatch):
    """q + Enter (or a --seconds shorter than the first frame's coming) before the first frame said
    "error: no frames were written ...; nothing to save", exit 4."""
    import stream_gpen.commands as commands

    monkeypatch.setattr(commands, "_stdin_quit_watcher", lambda stop: stop.set())  # q + Enter at once
    out = tmp_path / "rec.mkv"
    assert main(["camera", "lavfi:testsrc=size=96x64:rate=1", "-o", str(out),
                 *[o for o in cli_env if o != "--quiet"]]) == 0
    err = capsys.readouterr().err
    assert "nothing was recorded" in err and "error" not in err, err
    assert not out.exists()


def test_camera_refusals_before_the_session_write_the_report(tmp_path, cli_env):
    """docs18b: a bad -o name, a missing device or an existing output (exit 2) left an earlier
    report saying the run had succeeded; enhance's refusals write one."""
    import json

    rep = tmp_path / "r.json"
    assert main(["camera", "lavfi:testsrc=size=96x64", "--frames", "2", "-o", str(tmp_path / "ok.mkv"),
                 "--report", str(rep), *cli_env]) == 0
    assert json.loads(rep.read_text())["error"] is None
    for extra in (["-o", str(tmp_path / "rec.xyz")], ["-o", str(tmp_path / "ok.mkv")]):
        assert main(["camera", "lavfi:testsrc=size=96x64", "--frames", "2", *extra, "--report", str(rep),
                     *cli_env]) == 2
        r = json.loads(rep.read_text())
        assert r["error"] and r["frames_out"] == 0, (extra, r)


def test_a_camera_stopped_at_once_over_an_older_file_does_not_say_wrote(tmp_path, cli_env, capsys, monkeypatch):
    import stream_gpen.commands as commands

    out = tmp_path / "rec.mkv"
    out.write_bytes(b"an older recording")
    monkeypatch.setattr(commands, "_stdin_quit_watcher", lambda stop: stop.set())
    assert main(["camera", "lavfi:testsrc=size=96x64:rate=1", "-o", str(out), "--overwrite",
                 *[o for o in cli_env if o != "--quiet"]]) == 0
    err = capsys.readouterr().err
    assert "nothing was recorded" in err and f"wrote {out}" not in err
    assert out.read_bytes() == b"an older recording"
