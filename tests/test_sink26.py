"""The output's folder removed or moved mid-run, a Ctrl-C after that, a container that cannot be
finished (a full disk, a file-size limit), a file read while it grows, and a stop while finishing
(sink26): the run stops within a second, says where the frames are or that nothing was saved,
keeps what plays, and leaves no hidden temporary file behind."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from stream_gpen.cli import main
from stream_gpen.errors import EncodeError, Interrupted
from stream_gpen.io import _sink, open_source
from stream_gpen.io._sink import FileSink
from tests._clips import write_video

W, H = 64, 48


def _clip(path: Path, n: int) -> Path:
    return write_video(path, [np.full((H, W, 3), 7 * (i % 30), np.uint8) for i in range(n)],
                       options={"preset": "ultrafast", "bf": "0"})


def _noise_clip(path: Path, n: int, w: int = 96, h: int = 64) -> Path:
    """``n`` frames of noise, lossless: ~10 KB a frame."""
    rng = np.random.default_rng(3)
    return write_video(path, [rng.integers(0, 256, (h, w, 3), np.uint8) for _ in range(n)],
                       options={"preset": "ultrafast", "crf": "0"})


def frames_in(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _until_handled(seconds: float = 10.0) -> None:
    """Wait, sleeping, until the signal just sent has been handled (see test_robust22)."""
    from stream_gpen._finishing import stop_asked

    end = time.monotonic() + seconds
    while not stop_asked() and time.monotonic() < end:
        time.sleep(0.001)


def _run_until_in_file(sink: FileSink, frames) -> None:
    """Write frames until some are in the temporary file (the encoder runs on its own thread)."""
    for f in frames:
        sink.write(f)
        if sink.packets_muxed and os.path.exists(sink._path):
            return
    raise AssertionError("no packet reached the file")


@contextlib.contextmanager
def _writing_into_x(tmp_path: Path, monkeypatch):
    """A sink writing an 80-frame clip into ``x/o.mp4``, some of it in the file already, its room
    checked at every frame (not on the machine's speed): yields it and the frames left."""
    monkeypatch.setattr(_sink, "_ROOM_CHECK_S", 0.0)
    src = _clip(tmp_path / "in.mp4", 80)
    (tmp_path / "x").mkdir()
    with open_source(src) as s:
        sink = FileSink(tmp_path / "x" / "o.mp4", source=s, preset="ultrafast")
        frames = iter(s)
        _run_until_in_file(sink, frames)
        yield sink, frames


# --- F2: the output folder removed or moved mid-run -------------------------------------------
def test_an_output_folder_removed_mid_run_stops_the_run_at_once(tmp_path, monkeypatch):
    """Was: noticed once the whole video was done (a minute more restoring into an unlinked file
    on a 25 s clip; hours on a film, its disk space in use all along)."""
    with _writing_into_x(tmp_path, monkeypatch) as (sink, frames):
        shutil.rmtree(tmp_path / "x")
        with pytest.raises(EncodeError, match=r"the output folder .*x disappeared during the run .*nothing was "
                                              r"saved, .*o\.mp4 was not written") as ei:
            for f in frames:
                sink.write(f)
        assert sink.frames_written < 60 and ei.value.exit_code == 4
        assert "Errno" not in str(ei.value) and ".tmp." not in str(ei.value)
        assert sink.salvage() is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_an_output_folder_moved_mid_run_stops_it_and_keeps_the_frames_there(tmp_path, monkeypatch):
    """Was: noticed at the end, the whole result left as a hidden .o.<uuid>.tmp.mp4 in the moved
    folder while the message said "nothing was saved"."""
    with _writing_into_x(tmp_path, monkeypatch) as (sink, frames):
        os.rename(tmp_path / "x", tmp_path / "y")
        with pytest.raises(EncodeError, match=r"the output folder .*x was moved or renamed to .*y during the "
                                              r"run; .*x/o\.mp4 was not written"):
            for f in frames:
                sink.write(f)
        assert sink.frames_written < 60
        partial = sink.salvage()
    assert partial == tmp_path / "y" / "o.partial.mp4"
    assert frames_in(partial) == sink.frames_kept >= 1
    assert sorted(p.name for p in (tmp_path / "y").iterdir()) == ["o.partial.mp4"]


def test_an_output_folder_moved_while_finishing_gets_the_whole_video(tmp_path, monkeypatch):
    """Moved after the last check (as the output was being finished): "nothing was saved", with
    the complete video under a hidden name in the moved folder."""
    monkeypatch.setattr(_sink, "_ROOM_CHECK_S", 1e9)  # (not noticed before the end)
    src = _clip(tmp_path / "in.mp4", 20)
    (tmp_path / "x").mkdir()
    with open_source(src) as s:
        sink = FileSink(tmp_path / "x" / "o.mp4", source=s, preset="ultrafast")
        for f in s:
            sink.write(f)
        os.rename(tmp_path / "x", tmp_path / "y")
        with pytest.raises(EncodeError, match=r"moved or renamed to .*y during the run: the restored video is "
                                              r"complete and was kept as .*y/o\.mp4; .*x/o\.mp4 was not "
                                              r"written") as ei:
            sink.close()
    assert "nothing was saved" not in str(ei.value) and ei.value.exit_code == 4
    assert sink.kept_whole == tmp_path / "y" / "o.mp4" and frames_in(sink.kept_whole) == 20
    assert sorted(p.name for p in (tmp_path / "y").iterdir()) == ["o.mp4"]


# --- F1: a Ctrl-C after the output folder was removed or moved --------------------------------
def _ctrl_c_after(monkeypatch, at: int, folder: Path, act) -> None:
    """At frame ``at``, ``act()`` (the folder goes), then the user presses Ctrl-C. From frame 20 on,
    once the encoder has made the temporary file in ``folder`` (at its first packet: not yet at 3)."""
    from stream_gpen import commands

    real = commands._Progress.__call__

    def progress(self, done, total, faces):
        real(self, done, total, faces)
        if done == at:
            end = time.monotonic() + 10
            while at >= 20 and not list(folder.glob(".o.*.tmp.mp4")) and time.monotonic() < end:
                time.sleep(0.01)  # (the encoder runs on its own thread: its first packet makes the file)
            act()
            os.kill(os.getpid(), signal.SIGINT)
            _until_handled()

    monkeypatch.setattr(commands._Progress, "__call__", progress)
    monkeypatch.setattr(_sink, "_ROOM_CHECK_S", 1e9)  # (the stop comes before the room check sees it)


def _remove_folder(folder: Path) -> None:
    """``rm -r folder``, taking the encoder thread's file made meanwhile too (a first rmtree raced it
    once on CI: "Directory not empty", raised inside the run as exit 4)."""
    end = time.monotonic() + 10
    while folder.exists() and time.monotonic() < end:
        shutil.rmtree(folder, ignore_errors=True)
    assert not folder.exists()


@pytest.mark.parametrize("at", [3, 20])
def test_ctrl_c_after_the_output_folder_was_removed_is_an_interrupt(tmp_path, cli_env, monkeypatch, capsys, at):
    """Was: exit 4, "interrupted": false, and a raw "[Errno 2] ... '.o.<uuid>.tmp.mp4' ->
    'o.partial.mp4'" naming the hidden temporary file. (At frame 3 the encoder has not made the
    file yet; at 20 it has.)"""
    src = _clip(tmp_path / "in.mp4", 40)
    (tmp_path / "x").mkdir()
    _ctrl_c_after(monkeypatch, at, tmp_path / "x", lambda: _remove_folder(tmp_path / "x"))
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(tmp_path / "x" / "o.mp4"), "--preset", "ultrafast",
                 "--report", str(report), *cli_env]) == 130
    err = capsys.readouterr().err
    assert "interrupted: the output folder" in err and "disappeared during the run" in err, err
    assert "nothing was saved" in err and ".tmp." not in err and "Errno" not in err
    r = json.loads(report.read_text())
    assert r["interrupted"] is True and r["error"] is None and r["partial_output"] is None
    assert r["frames_out"] == 0 and r["frames_dropped"] == r["frames_in"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "in.mp4", "r.json"]


def test_ctrl_c_after_the_output_folder_was_moved_keeps_the_frames_there(tmp_path, cli_env, monkeypatch, capsys):
    """Was: exit 4 and a 54 KB hidden .o.<uuid>.tmp.mp4 left in the renamed folder, unmentioned."""
    src = _clip(tmp_path / "in.mp4", 40)
    (tmp_path / "x").mkdir()
    _ctrl_c_after(monkeypatch, 20, tmp_path / "x", lambda: os.rename(tmp_path / "x", tmp_path / "y"))
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(tmp_path / "x" / "o.mp4"), "--preset", "ultrafast",
                 "--report", str(report), *cli_env]) == 130
    partial = tmp_path / "y" / "o.partial.mp4"
    err = capsys.readouterr().err
    assert f"were saved to {partial}" in err and "moved or renamed" in err, err
    r = json.loads(report.read_text())
    assert r["interrupted"] is True and r["partial_output"] == str(partial)
    assert frames_in(partial) == r["frames_out"] >= 20
    assert sorted(p.name for p in (tmp_path / "y").iterdir()) == ["o.partial.mp4"]


# --- F3: a container that cannot be finished keeps what plays ---------------------------------
def _limited_run(tmp_path: Path, mobilenet_weights: Path, *args: str) -> subprocess.CompletedProcess:
    """A command run under a 64 KiB file-size limit (``ulimit -f``; Python ignores SIGXFSZ): its
    writes past that are refused, as a full disk's are, trailer and all."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))

    env = {**os.environ, "STREAM_GPEN_HOME": str(tmp_path / "home"), "STREAM_GPEN_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "stream_gpen", *args, "--model", "classic", "--device", "cpu",
                           "--detector-weights", str(mobilenet_weights), "--quiet", "--preset", "ultrafast",
                           "--crf", "0"], capture_output=True, text=True, env=env, preexec_fn=limit, timeout=300)


@pytest.mark.parametrize("command, ext", [("enhance", ".mkv"), ("camera", ".mkv")])
def test_a_matroska_output_the_disk_cut_off_keeps_what_reached_it(tmp_path, mobilenet_weights, command, ext):
    """Was: deleted whole, though a cut .mkv plays (one cut at 60 % decoded 23 of its 40 frames);
    the camera's report said frames_out 56 of nothing kept."""
    src = _noise_clip(tmp_path / "in.mp4", 30)
    out, report = tmp_path / f"rec{ext}", tmp_path / "r.json"
    r = _limited_run(tmp_path, mobilenet_weights, command, str(src), "-o", str(out), "--report", str(report))
    assert r.returncode == 4, r.stderr
    partial = tmp_path / f"rec.partial{ext}"
    rep = json.loads(report.read_text())
    assert partial.is_file() and not out.exists(), r.stderr
    kept = frames_in(partial)
    assert 1 <= kept < 30 and rep["frames_out"] == kept, (kept, rep, r.stderr)
    assert rep["partial_output"] == str(partial) and str(partial) in r.stderr
    assert "nothing was saved" not in r.stderr and not _hidden(tmp_path)


def test_a_camera_mp4_the_disk_cut_off_keeps_what_reached_it(tmp_path, mobilenet_weights):
    """A camera's .mp4 is written in fragments (session 33): what reached the disk before a full
    disk (here 64 KiB, inside its first fragment) is kept as NAME.partial.mp4, not lost."""
    src = _noise_clip(tmp_path / "in.mp4", 30)
    out, report = tmp_path / "rec.mp4", tmp_path / "r.json"
    r = _limited_run(tmp_path, mobilenet_weights, "camera", str(src), "-o", str(out), "--report", str(report))
    assert r.returncode == 4, r.stderr
    partial = tmp_path / "rec.partial.mp4"
    rep = json.loads(report.read_text())
    assert partial.is_file() and not out.exists(), r.stderr
    assert 1 <= rep["frames_out"] < 30 and rep["partial_output"] == str(partial), (rep, r.stderr)
    with av.open(str(partial)) as c:  # (its first frame plays; the one the cut went through may not)
        assert next(c.decode(video=0)).width > 0
    assert "nothing was saved" not in r.stderr and not _hidden(tmp_path)


@pytest.mark.parametrize("command", ["enhance"])
def test_an_mp4_output_the_disk_cut_off_says_nothing_was_saved(tmp_path, mobilenet_weights, command):
    """An .mp4 cut off has no index (written last): nothing is kept, and that is said (a camera's
    .mp4 is fragmented and keeps what reached the disk: the test above)."""
    src = _noise_clip(tmp_path / "in.mp4", 30)
    out, report = tmp_path / "rec.mp4", tmp_path / "r.json"
    r = _limited_run(tmp_path, mobilenet_weights, command, str(src), "-o", str(out), "--report", str(report))
    assert r.returncode == 4, r.stderr
    assert "nothing was saved" in r.stderr and "File too large" in r.stderr, r.stderr
    rep = json.loads(report.read_text())
    assert rep["frames_out"] == 0 and rep["partial_output"] is None, rep
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".mp4", ".mkv")) == ["in.mp4"]
    assert not _hidden(tmp_path)


def test_a_full_disk_keeps_what_reached_a_matroska_file(tmp_path, cli_env):
    """The same on a real full disk (a small tmpfs: root only; the file-size limit above is the
    same refusal for everyone else)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a full disk) needs root; the ulimit -f tests cover it without")
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(small)],
                      capture_output=True).returncode != 0:
        pytest.skip("mount -t tmpfs failed here (no mount permission in this container)")
    try:
        src = _noise_clip(tmp_path / "in.mp4", 30)
        report = tmp_path / "r.json"
        assert main(["enhance", str(src), "-o", str(small / "o.mkv"), "--crf", "0", "--preset", "ultrafast",
                     "--report", str(report), *cli_env]) == 4
        rep = json.loads(report.read_text())
        partial = small / "o.partial.mkv"
        assert rep["partial_output"] == str(partial) and 1 <= frames_in(partial) == rep["frames_out"] < 30
        assert sorted(p.name for p in small.iterdir()) == ["o.partial.mkv"]
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


# --- F4: a file still growing while it is read ---------------------------------------------------
def test_a_frame_count_past_its_estimate_is_unknown_not_100_percent():
    """A .ts copied in while it was read: "127/127 frames (100%)", no time left, half-way."""
    from stream_gpen.api import _TotalGuess

    grows = _TotalGuess(50, 25.0)  # (the header said 2 s at 25 fps; 4 s come)
    shown = [grows.update(i / 25, i + 1) for i in range(100)]
    assert shown[:50] == [50] * 50 and all(t is None for t in shown[52:])
    steady = _TotalGuess(50, 25.0)
    assert [steady.update(i / 25, i + 1) for i in range(50)] == [50] * 50


def test_the_progress_bar_of_a_count_past_its_estimate_shows_no_total():
    """The bar kept the estimate as its total: "127/50", past 100 %."""
    from stream_gpen.commands import _Progress

    p = _Progress(True, "g.ts")
    p.enabled, p.piped = True, False  # (a terminal's bar, whatever pytest's stderr is)
    try:
        p(10, 50, 10)
        assert p.bar.total == 50
        p(127, None, 127)
        assert p.bar.total is None and p.bar.n == 127
    finally:
        p.close()


# --- a stop while the output is being finished names it ------------------------------------------
def test_a_stop_while_finishing_names_the_output():
    """Was: "stopped: the output in hand was written whole first", which output not said."""
    from stream_gpen import _finishing

    with pytest.raises(Interrupted, match=r"^stopped: clips/o\.mp4 was written whole first$"):
        with _finishing.finishing():
            _finishing.finishing_output("clips/o.mp4")
            _finishing.defer()
