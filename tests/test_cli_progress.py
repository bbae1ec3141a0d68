"""Progress when stderr is not a terminal (a container's log, ``2>&1 | tee``, cron): plain lines,
not a bar's carriage returns, and not silence until the summary."""
from __future__ import annotations

import logging

from stream_gpen import commands
from stream_gpen.cli import main


def test_piped_progress_says_how_far_how_fast_and_how_long(monkeypatch, caplog):
    clock = iter([100.0, 110.0, 131.0, 140.0, 161.5])
    monkeypatch.setattr(commands.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(commands.sys.stderr, "isatty", lambda: False, raising=False)
    caplog.set_level(logging.INFO, logger="stream_gpen.cli")
    p = commands._Progress(True, "clip.mp4")
    assert not p.enabled and p.piped  # no tqdm bar
    p(1, 1000, 0)  # t=100: the first frame starts the clock (after the model load), says nothing
    p(100, 1000, 90)  # t=110: too soon
    p(301, 1000, 280)  # t=131: 300 frames in 31 s
    p(400, 1000, 380)  # t=140: 9 s after the last line: nothing
    p(601, 1000, 560)  # t=161.5: 600 frames in 61.5 s, 399 left
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "clip.mp4: 301/1000 frames (30%), 280 faces, 9.7 frames/s, about 72 s left",
        "clip.mp4: 601/1000 frames (60%), 560 faces, 9.8 frames/s, about 41 s left",
    ]
    assert p.bar is None


def test_piped_progress_without_a_total_and_past_an_estimate(monkeypatch, caplog):
    clock = iter([0.0, 40.0, 80.0])
    monkeypatch.setattr(commands.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(commands.sys.stderr, "isatty", lambda: False, raising=False)
    caplog.set_level(logging.INFO, logger="stream_gpen.cli")
    p = commands._Progress(True, "live")
    p(0, None, 0)
    p(1200, None, 3)  # a stream of unknown length: frames and rate, no percentage, no time left
    p(2500, 2400, 5)  # past an estimated total (a VFR rate): no "104%"
    assert [r.getMessage() for r in caplog.records] == [
        "live: 1200 frames, 3 faces, 30.0 frames/s", "live: 2500 frames, 5 faces, 31.2 frames/s"]


def test_duration_words():
    assert [commands._duration_words(s) for s in (0.4, 42, 89.4, 90, 3599, 3600, 7530)] == [
        "0 s", "42 s", "89 s", "2 min", "60 min", "1 h 00 min", "2 h 05 min"]


def test_enhance_piped_prints_progress_lines_and_quiet_none(tmp_path, shared, tiny_ckpt, det_home,
                                                            monkeypatch, capsys):
    monkeypatch.setattr(commands._Progress, "PIPED_EVERY_S", 0.0)
    src = shared / "data/videos/retalking_face2_frontal_talking_head.mp4"
    args = ["enhance", str(src), "--model", str(tiny_ckpt), "--device", "cpu", "--preset", "ultrafast",
            "--duration", "0.2"]
    assert main(args + ["-o", str(tmp_path / "a.mp4")]) == 0
    err = capsys.readouterr().err  # (captured: not a TTY)
    steps = [ln for ln in err.splitlines() if ln.startswith("stream-gpen: retalking_face2") and "frames/s" in ln]
    assert steps and "/5 frames (" in steps[-1] and "faces" in steps[-1], err
    assert "\r" not in err
    assert main(args + ["-o", str(tmp_path / "b.mp4"), "--quiet"]) == 0
    assert "frames/s" not in capsys.readouterr().err


def test_camera_piped_status_is_plain_lines(det_home, monkeypatch, capsys):
    """Piped, the camera's status was one ever-growing line of carriage returns in the log."""
    monkeypatch.setattr(commands._Progress, "PIPED_EVERY_S", 0.0)
    assert main(["camera", "lavfi:testsrc2=size=160x120:rate=25", "--model", "classic", "--detect-size", "96",
                 "-o", "null", "--frames", "40"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("stream-gpen: live: ") and "added latency" in ln]
    assert lines and " fps added latency " in lines[0], err


def test_expected_frames_of_a_part_counts_the_frames_before_its_end():
    """--duration 0.5 at 25 fps writes 13 frames (0.00 to 0.48 s): the total said 12 (round(12.5))."""
    from types import SimpleNamespace

    from stream_gpen.api import _expected_frames

    part = SimpleNamespace(frame_count=None, frame_count_header=None, duration_s=0.5, frame_rate=25.0)
    assert _expected_frames(part) == 13
    whole = SimpleNamespace(frame_count=None, frame_count_header=None, duration_s=100 / 29.97, frame_rate=29.97)
    assert _expected_frames(whole) == 100


def test_a_terminal_of_no_columns_gets_the_piped_lines(monkeypatch):
    """A pty made without a size (``script``, some CI runners) says 0 columns: tqdm drew nothing
    there, and an hour-long run was silent until its summary."""
    import os

    monkeypatch.setattr(commands.sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(commands.sys.stderr, "fileno", lambda: 2, raising=False)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=None: os.terminal_size((0, 0)))
    p = commands._Progress(True, "clip.mp4")
    assert not p.enabled and p.piped
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=None: os.terminal_size((120, 40)))
    p = commands._Progress(True, "clip.mp4")
    assert p.enabled and not p.piped
    # a width and no height (a pty sized with its columns only): tqdm drew nothing there either
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=None: os.terminal_size((80, 0)))
    p = commands._Progress(True, "clip.mp4")
    assert not p.enabled and p.piped

    def unknown(fd=None):
        raise OSError(25, "Inappropriate ioctl for device")

    monkeypatch.setattr(os, "get_terminal_size", unknown)  # a terminal that does not say: the bar
    assert commands._Progress(True, "clip.mp4").enabled
