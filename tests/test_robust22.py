"""Long video jobs, stop signals and files on disk (robust22): a stop signal swallowed by a
finalizer, a full disk, a stale in-place backup, a Ctrl-C after the output was written."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import av
import numpy as np

from stream_gpen.cli import main


def make_clip(path: Path, n: int = 12, w: int = 64, h: int = 48) -> Path:
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.options = {"preset": "ultrafast", "bf": "0"}
        for i in range(n):
            a = np.full((h, w, 3), 20 * (i % 10), np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    return path


def frames_in(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def _until_handled(seconds: float = 10.0) -> None:
    """Wait, sleeping, until the signal just sent has been handled (its handler asks the run to
    stop first thing, and may raise here): a thousand bytecodes were not always enough on a
    loaded machine, where the handler then ran somewhere else."""
    from stream_gpen._finishing import stop_asked

    end = time.monotonic() + seconds
    while not stop_asked() and time.monotonic() < end:
        time.sleep(0.001)


class _Finalizer:
    """A finalizer in which a SIGTERM lands (torch and PyAV run many while frames flow)."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        _until_handled()  # (the handler runs here: its raise is swallowed)


def test_a_sigterm_swallowed_by_a_finalizer_still_stops_and_a_later_one_raises(capsys):
    from stream_gpen._finishing import stop_asked
    from stream_gpen.cli import _Signals

    with _Signals() as sig:
        _Finalizer()  # (dropped at once: its __del__ runs here)
        assert stop_asked()  # the run polls this between frames
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # no stop is under way: this one is not ignored
            time.sleep(1.0)  # (the handler raises in this sleep)
            raise AssertionError("the second SIGTERM was ignored")
        except KeyboardInterrupt:
            pass
    assert sig.exit_code(130) == 143 and not stop_asked()  # (cleared for a next main())
    err = capsys.readouterr().err
    assert "Exception ignored" not in err and "finishing what was written" not in err


def test_a_run_whose_sigterm_was_swallowed_stops_at_the_next_frame(tmp_path, cli_env, monkeypatch, capsys):
    """A SIGTERM whose KeyboardInterrupt landed in a finalizer: the run went on to the end and
    exited 0 (`timeout`, `docker stop`). It stops at the next frame, its frames kept as .partial."""
    from stream_gpen import commands

    real = commands._Progress.__call__

    def progress(self, done, total, faces):
        real(self, done, total, faces)
        if done == 3:
            _Finalizer()

    monkeypatch.setattr(commands._Progress, "__call__", progress)
    src = make_clip(tmp_path / "a.mp4", n=30)
    out, report = tmp_path / "o.mp4", tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(out), "--report", str(report), *cli_env]) == 143
    assert not out.exists()
    r = json.loads(report.read_text())
    assert r["interrupted"] and r["partial_output"] == str(tmp_path / "o.partial.mp4")
    assert 3 <= frames_in(tmp_path / "o.partial.mp4") < 30



def _noise_clip(path: Path, n: int) -> Path:
    """``n`` frames of noise, lossless: ~10 KB a frame."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 96, 64, "yuv420p"
        vs.codec_context.options = {"preset": "ultrafast", "crf": "0"}
        rng = np.random.default_rng(0)
        for _ in range(n):
            for p in vs.encode(av.VideoFrame.from_ndarray(rng.integers(0, 256, (64, 96, 3), np.uint8),
                                                          format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    return path


def _temp_file_stays(monkeypatch) -> None:
    """os.stat says a sink's temporary output stays at the size it first had."""
    from types import SimpleNamespace

    real_stat, first = os.stat, {}

    def stat(path, *a, **k):
        st = real_stat(path, *a, **k)
        if ".tmp." in os.fspath(path):
            size = first.setdefault(os.fspath(path), st.st_size)
            return SimpleNamespace(**{f: getattr(st, f) for f in dir(st) if f.startswith("st_")} | {"st_size": size})
        return st

    monkeypatch.setattr(os, "stat", stat)


def test_a_full_disk_stops_the_run_at_once_not_at_the_end(tmp_path, cli_env, monkeypatch, capsys):
    """A full disk (or a quota): the muxer keeps the refused writes to itself until the trailer,
    so the whole video was restored and encoded before the run failed. The temporary file's size
    on disk is held against what was muxed: the run stops soon after the first refused write."""
    from types import SimpleNamespace

    from stream_gpen.io import _sink

    n = 150
    src = _noise_clip(tmp_path / "a.mp4", n)
    # the disk is full: the temporary file stays at its header, no block is free
    _temp_file_stays(monkeypatch)
    monkeypatch.setattr(os, "statvfs", lambda p: SimpleNamespace(f_blocks=1000, f_bfree=0, f_bavail=0, f_frsize=4096))
    monkeypatch.setattr(_sink, "_ROOM_CHECK_S", 0.0, raising=False)  # (every packet: not on the machine's speed)
    out, report = tmp_path / "o.mp4", tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(out), "--crf", "0", "--report", str(report), *cli_env]) == 4
    assert "No space left on device" in capsys.readouterr().err
    r = json.loads(report.read_text())
    assert r["frames_in"] < n // 2, r
    assert not out.exists()


def test_a_killed_in_place_runs_original_neither_fails_the_next_run_nor_is_overwritten(tmp_path, cli_env, capsys):
    """An in-place --copy-if-no-faces run killed with kill -9 left its hidden `.NAME.original`: every
    later such run failed, exit 4, "are the same file"; and where the killed run had put its
    re-encode in place, the next run would have copied its own re-encode over that only original."""
    import hashlib

    src = make_clip(tmp_path / "in.mp4")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    left = tmp_path / ".in.mp4.original"
    os.link(src, left)  # the killed run's second name of the input
    opts = ["enhance", str(src), "-o", str(src), "--overwrite", "--copy-if-no-faces", *cli_env]
    assert main(opts) == 0, capsys.readouterr().err
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest  # (no faces: left as it was)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["in.mp4"]

    left.write_bytes(b"the original, kept by a run killed after it put its re-encode in place")
    report = tmp_path / "r.json"
    assert main([*opts, "--report", str(report)]) == 0
    assert left.read_bytes().startswith(b"the original, kept")  # left as it is
    assert str(left) in capsys.readouterr().err
    assert any(str(left) in f for f in json.loads(report.read_text())["fallbacks"])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name not in ("home", "r.json")) == [".in.mp4.original",
                                                                                               "in.mp4"]


def test_a_ctrl_c_during_the_stream_copy_says_the_output_was_written(tmp_path, cli_env, monkeypatch, capsys):
    """Ctrl-C during --copy-if-no-faces' stream copy (minutes on a long video), after the re-encode
    was written whole: the report said "stopped before the run began ... nothing was written",
    frames_out 0."""
    from stream_gpen import io

    real = io.remux

    def remux(*a, **k):
        os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C now
        _until_handled()  # (the handler runs here)
        return real(*a, **k)

    monkeypatch.setattr(io, "remux", remux)
    src = make_clip(tmp_path / "a.mp4")
    out, report = tmp_path / "o.mp4", tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(out), "--copy-if-no-faces", "--report", str(report), *cli_env]) == 130
    assert f"stopped after {out} was written" in capsys.readouterr().err
    r = json.loads(report.read_text())
    assert r["interrupted"] and r["frames_out"] == 12 and r["output"] == str(out)
    assert not any("nothing was written" in f for f in r["fallbacks"])
    assert any("the stream copy of copy_if_no_faces was not made" in f for f in r["fallbacks"])
    assert frames_in(out) == 12


def test_a_ctrl_c_just_before_the_sink_starts_finishing_keeps_the_frames(tmp_path, cli_env, monkeypatch, capsys):
    """A Ctrl-C in FileSink.close() before it entered finishing(): no output, no .partial, the
    hidden temporary file left behind, and a report counting 12 frames out that nothing held."""
    import contextlib

    from stream_gpen import _finishing

    real = _finishing.finishing

    @contextlib.contextmanager
    def finishing():
        os.kill(os.getpid(), signal.SIGINT)
        _until_handled()  # (the handler runs here, before the real finishing() is entered)
        with real():
            yield

    monkeypatch.setattr(_finishing, "finishing", finishing)
    src = make_clip(tmp_path / "a.mp4")
    out, report = tmp_path / "o.mp4", tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(out), "--report", str(report), *cli_env]) == 130
    partial = tmp_path / "o.partial.mp4"
    assert frames_in(partial) == 12
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["a.mp4", "o.partial.mp4", "r.json"]
    assert json.loads(report.read_text())["partial_output"] == str(partial)


def test_an_output_name_too_long_for_the_file_system_is_refused_first(tmp_path, cli_env, capsys):
    """-o with a name over 255 bytes failed once the model was loaded, exit 4, with the hint of a
    full or read-only folder, and no --report."""
    src = make_clip(tmp_path / "a.mp4", n=2)
    out, report = tmp_path / ("a" * 257 + ".mp4"), tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(out), "--report", str(report), *cli_env]) == 2
    err = capsys.readouterr().err
    assert "longer than the file system allows (261 bytes, at most 255)" in err and "shorter name" in err
    assert "has room" not in err
    assert "longer than the file system allows" in json.loads(report.read_text())["error"]
    # camera too (regress22b: exit 4, "cannot write or read a file", the full-folder hint)
    assert main(["camera", "lavfi:testsrc=size=96x64", "--frames", "2", "-o", str(out), *cli_env]) == 2
    assert "longer than the file system allows" in capsys.readouterr().err


def test_a_camera_session_whose_sigterm_was_swallowed_stops_too(tmp_path, det_home, monkeypatch, capsys):
    """The camera's stop is a Ctrl-C or SIGTERM as well: one swallowed by a finalizer recorded on
    to --frames (or for ever)."""
    from stream_gpen import commands

    real_write = commands._Tee.write
    written = []

    def write(self, frame):
        if len(written) == 6:
            _Finalizer()
        real_write(self, frame)
        written.append(frame.index)

    monkeypatch.setattr(commands._Tee, "write", write)
    out = tmp_path / "rec.mp4"
    assert main(["camera", "lavfi:testsrc2=size=96x64:rate=25", "--model", "classic", "--detect-size", "96",
                 "-o", str(out), "--frames", "60"]) == 0
    assert "stopped (a stop signal): finishing the outputs" in capsys.readouterr().err
    assert 6 < frames_in(out) < 20


def test_bytes_the_muxer_holds_back_do_not_stop_a_run_with_room(tmp_path, cli_env, monkeypatch):
    """regress22b: waiting for a stream's next packet, FFmpeg's interleaver holds up to 10 s of the
    others (2 GB of 4K ProRes): more than 256 MiB muxed and not on disk was taken for a quota and
    stopped good runs. With room on the disk, a file that has not grown yet is no error."""
    from stream_gpen.io import _sink

    src = _noise_clip(tmp_path / "a.mp4", 30)
    _temp_file_stays(monkeypatch)  # nothing reaches the disk until the end, as if all were held
    monkeypatch.setattr(_sink, "_ROOM_CHECK_S", 0.0, raising=False)
    monkeypatch.setattr(_sink, "_STALLED_BYTES", 1 << 10, raising=False)  # (the old rule, at this clip's scale)
    out = tmp_path / "o.mkv"
    assert main(["enhance", str(src), "-o", str(out), "--crf", "0", *cli_env]) == 0
    assert out.exists()


def test_a_ctrl_c_while_an_in_place_no_face_run_finishes_puts_the_original_back(tmp_path, cli_env, monkeypatch):
    """regress22b: in place with --copy-if-no-faces, a Ctrl-C while the re-encode was being
    finished (deferred until it was whole, then raised) left the re-encode over the input and
    deleted the hidden original: a video with no face lost its original."""
    import contextlib

    import stream_gpen._finishing as finishing_mod
    import stream_gpen.io._sink as sink_mod

    src = make_clip(tmp_path / "nf.mp4")
    before = src.read_bytes()
    real = finishing_mod.finishing

    @contextlib.contextmanager
    def finishing():
        with real():
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the output is finished: deferred
            yield

    monkeypatch.setattr(finishing_mod, "finishing", finishing)
    monkeypatch.setattr(sink_mod, "finishing", finishing, raising=False)
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(src), "--overwrite", "--copy-if-no-faces", "--report", str(report),
                 *cli_env]) == 130
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["nf.mp4", "r.json"]
    assert any("put back as it was" in f for f in json.loads(report.read_text())["fallbacks"])
