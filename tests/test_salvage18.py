"""Session 18: an error after frames were encoded keeps them as ``.partial`` (as a Ctrl-C does).

Before, any error mid-run (the restorer or the device failing at 1:50 of a two-hour video, the
encoder or the muxer refusing a packet, a camera recording's muxer failing at minute 58) deleted
everything encoded so far."""
from __future__ import annotations

import logging

import av
import numpy as np
import pytest
from pathlib import Path

from PIL import Image

from _clips import copy_through, write_video
from tests._doubles import IdentityRestorer


def _face_clip(tmp_path, shared, n=24):
    im = Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB")
    im.thumbnail((200, 200))
    base = np.asarray(im)
    return write_video(tmp_path / "in.mp4", [np.roll(base, i, axis=1) for i in range(n)])


def _frames(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def _fails_at(monkeypatch, name: str, at: int, error: Exception) -> dict:
    """``FileSink.<name>`` (``_encode`` a frame, ``_mux_video`` a packet) raises ``error`` on its
    ``at``-th call, as a full disk or a drive that went away would; returns the call count."""
    from stream_gpen.io._sink import FileSink

    real = getattr(FileSink, name)
    count = {"n": 0}

    def failing(self, item):
        count["n"] += 1
        if count["n"] == at:
            raise error
        real(self, item)

    monkeypatch.setattr(FileSink, name, failing)
    return count


class _FailsLater(IdentityRestorer):
    """Restores the first ``ok`` calls, then fails as a device that fell off the bus would."""

    def __init__(self, ok: int) -> None:
        super().__init__()
        self.ok = ok

    def __call__(self, crops):
        if self.ok <= 0:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        self.ok -= 1
        return super().__call__(crops)


def test_a_restorer_failing_mid_run_keeps_the_frames_done(tmp_path, mobilenet_weights, shared, caplog):
    from stream_gpen import Enhancer

    src = _face_clip(tmp_path, shared)
    enh = Enhancer(_FailsLater(ok=2), device="cpu", detector_weights=mobilenet_weights, progress=False,
                   batch_size=4)
    with caplog.at_level(logging.WARNING, logger="stream_gpen"), pytest.raises(RuntimeError, match="illegal memory"):
        enh.enhance_file(src, tmp_path / "o.mp4", preset="ultrafast")
    assert not (tmp_path / "o.mp4").exists()
    part = tmp_path / "o.partial.mp4"
    assert part.exists() and 1 <= _frames(part) < 24
    assert any("written before the error were saved to" in r.getMessage() and "o.partial.mp4" in r.getMessage()
               for r in caplog.records)


def test_the_cli_says_where_the_frames_before_an_error_are(tmp_path, cli_env, monkeypatch, shared, capsys):
    import stream_gpen.api as api
    from stream_gpen.cli import main

    src = _face_clip(tmp_path, shared)
    orig_init = api.Enhancer.__init__

    def init(self, model=None, **kw):
        orig_init(self, _FailsLater(ok=2), **kw)

    monkeypatch.setattr(api.Enhancer, "__init__", init)
    rep = tmp_path / "run.json"
    rc = main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), "--batch-size", "4", "--preset", "ultrafast",
               "--report", str(rep), *cli_env])
    err = capsys.readouterr().err
    assert rc != 0
    assert "saved to" in err and "o.partial.mp4" in err, err
    part = tmp_path / "o.partial.mp4"
    assert part.exists() and not (tmp_path / "o.mp4").exists()
    import json

    r = json.loads(rep.read_text())
    assert "illegal memory" in r["error"] and r["partial_output"] == str(part)
    assert r["frames_out"] == _frames(part) and r["frames_in"] == r["frames_out"] + r["frames_dropped"]


def test_an_encoder_error_mid_run_keeps_what_was_muxed(tmp_path, monkeypatch, made_sinks):
    from stream_gpen.errors import EncodeError

    clip = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(30)])
    _fails_at(monkeypatch, "_encode", 20, av.error.OSError(28, "No space left on device"))  # a full disk mid-run
    target = tmp_path / "out.mkv"
    with pytest.raises(EncodeError, match="No space left"):
        copy_through(clip, target)
    [sink] = made_sinks
    assert not target.exists()
    part = tmp_path / "out.partial.mkv"
    # what the encoder had muxed before the failing frame (x264 holds a few frames back), and
    # the count said is the file's (salvage18: it said the frames handed to the encoder)
    assert part.exists() and 1 <= _frames(part) <= 19 and sink.frames_kept == _frames(part)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.partial.mkv"]


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_an_encoder_error_before_any_packet_says_the_real_error(tmp_path, ext, monkeypatch, made_sinks):
    """salvage18: x264's default preset holds ~40 frames back; an error before its first packet
    was reported as "No such file or directory: .o.<id>.tmp.mp4" (the salvage renaming a file
    never made) instead of the disk-full error."""
    from stream_gpen.errors import EncodeError

    clip = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(12)])
    _fails_at(monkeypatch, "_encode", 6, av.error.OSError(28, "No space left on device"))
    with pytest.raises(EncodeError, match="No space left") as e:
        copy_through(clip, tmp_path / f"out.{ext}", preset="medium")
    [sink] = made_sinks
    assert "No such file" not in str(e.value) and sink.partial_path is None and sink.packets_muxed == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_a_failed_server_job_leaves_no_partial_in_its_folder(tmp_path):
    from types import SimpleNamespace

    from stream_gpen.io._partials import is_partial, remember_partial
    from stream_gpen.server._jobs import _drop_partials

    d = tmp_path / "job"
    d.mkdir()
    (d / "input.mp4").write_bytes(b"x")
    part = d / "output.partial.mp4"
    part.write_bytes(b"frames")
    remember_partial(part)
    _drop_partials(SimpleNamespace(dir=d, input_path=d / "input.mp4"))
    assert sorted(p.name for p in d.iterdir()) == ["input.mp4"] and not is_partial(part)


def test_a_full_disk_at_the_trailer_says_so_with_a_hint(tmp_path, cli_env, monkeypatch, capsys):
    """salvage18: FFmpeg's muxers say a write error at the trailer; the message named the hidden
    temporary file (gone by then) and had no hint."""
    from stream_gpen.cli import main
    from stream_gpen.io import _sink

    src = write_video(tmp_path / "a.mp4", [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(6)])

    def refuse(self, *a, **k):
        raise OSError(28, "No space left on device", str(self._path))

    monkeypatch.setattr(_sink.FileSink, "_finish_container", refuse)
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), *cli_env]) == 4
    err = capsys.readouterr().err
    assert "finishing" in err and "No space left on device" in err and ".tmp" not in err, err
    assert "hint:" in err


def test_a_folder_stopped_by_a_device_error_reports_the_folder(tmp_path, mobilenet_weights, shared):
    """salvage18: the folder's report was the failed video's own summary (its input, its frames);
    the videos done before it were missing from it."""
    from stream_gpen import Enhancer

    im = Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB")
    im.thumbnail((200, 200))
    base = np.asarray(im)
    d = tmp_path / "in"
    d.mkdir()
    write_video(d / "a.mp4", [np.roll(base, i, axis=1) for i in range(12)])
    write_video(d / "b.mp4", [np.roll(base, i, axis=1) for i in range(24)])
    enh = Enhancer(_FailsLater(ok=5), device="cpu", detector_weights=mobilenet_weights, progress=False,
                   batch_size=4)
    with pytest.raises(RuntimeError, match="illegal memory") as e:
        enh.enhance_file(d, tmp_path / "out", preset="ultrafast")
    s = e.value.summary
    assert s.input == str(d) and s.output == str(tmp_path / "out")
    assert s.frames_out > 12 and "illegal memory" in s.error  # a.mp4's 12 and b.mp4's kept part
    assert s.partial_output == str(tmp_path / "out" / "b.partial.mp4") and Path(s.partial_output).exists()


def test_an_output_given_twice_is_refused(tmp_path, capsys):
    from stream_gpen.cli import main

    assert main(["camera", "lavfi:testsrc", "-o", str(tmp_path / "a.mkv"), "-o", "null"]) == 2
    assert "given twice" in capsys.readouterr().err
    assert main(["enhance", "x.mp4", "--output", "a.mp4", "-o", "b.mp4"]) == 2
    assert "given twice (a.mp4, b.mp4)" in capsys.readouterr().err


def test_a_camera_recording_that_fails_keeps_its_part_in_the_report(tmp_path, cli_env, monkeypatch, capsys):
    import json

    from stream_gpen.cli import main

    # the second packet the recording muxes fails (a drive that went away): one is in the file
    count = _fails_at(monkeypatch, "_mux_video", 2, av.error.OSError(5, "Input/output error"))
    rep = tmp_path / "r.json"
    rc = main(["camera", "lavfi:testsrc=size=96x64:rate=25", "--seconds", "8", "-o", str(tmp_path / "a.mkv"),
               "--preset", "ultrafast", "--report", str(rep), *cli_env])
    err = capsys.readouterr().err
    part = tmp_path / "a.partial.mkv"
    assert rc == 4 and part.exists(), (rc, count, err)
    r = json.loads(rep.read_text())
    assert r["partial_output"] == str(part) and "Input/output error" in r["error"]
    assert f"frames written before the error were kept in {part}" in err


def test_a_cancel_in_an_asyncio_worker_thread_does_not_end_the_event_loop(tmp_path, mobilenet_weights):
    """api18: a run stopped by ``cancel=`` raised Interrupted, a KeyboardInterrupt; raised in
    ``asyncio.to_thread`` it was taken for Ctrl-C and ended asyncio.run with every other task,
    even under gather(return_exceptions=True)."""
    import asyncio
    import threading

    from stream_gpen import Cancelled, Enhancer, Interrupted

    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 5 * i, np.uint8) for i in range(30)])
    enh = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False)
    stop = threading.Event()

    async def main():
        other = asyncio.create_task(asyncio.sleep(0.01, result="other task done"))
        job = asyncio.to_thread(enh.enhance_file, src, tmp_path / "o.mp4", preset="ultrafast", cancel=stop,
                                on_progress=lambda done, total, faces: stop.set() if done >= 5 else None)
        return await asyncio.gather(job, other, return_exceptions=True)

    got, other = asyncio.run(main())
    assert other == "other task done"
    assert isinstance(got, Cancelled) and not isinstance(got, (KeyboardInterrupt, Interrupted))
    assert got.exit_code == 130 and got.summary.interrupted and got.summary.partial_output == str(tmp_path / "o.partial.mp4")


@pytest.mark.parametrize("fail_at", [9, 15])
def test_a_kept_mp4_part_counts_the_packet_held_for_its_duration(tmp_path, fail_at, monkeypatch, made_sinks):
    """regress18b: mp4/mov hold the last packet back (its duration is set at the end); salvage
    muxed it without counting it (the warning said 17 frames for 18), and with only that one
    packet nothing was kept."""
    from stream_gpen.errors import EncodeError

    clip = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(20)])
    _fails_at(monkeypatch, "_encode", fail_at, av.error.OSError(5, "Input/output error"))
    with pytest.raises(EncodeError):
        copy_through(clip, tmp_path / "out.mp4")
    [sink] = made_sinks
    part = tmp_path / "out.partial.mp4"
    # (the encoder holds a few frames back: what counts is that the count said is the file's)
    assert part.exists() and sink.frames_kept == _frames(part) >= 1


def test_a_folders_progress_total_leaves_out_an_audio_tail(tmp_path):
    from _clips import audio_tail_clip
    from stream_gpen.api import _header_frames

    path = audio_tail_clip(tmp_path / "tail.mkv", frames=50, audio_s=6.0)
    assert 49 <= _header_frames(path) <= 51  # (was 150: the container's 6 s)


def test_a_camera_stopped_before_its_first_frame_does_not_say_wrote(tmp_path, cli_env, capsys, monkeypatch):
    import json

    import stream_gpen.commands as commands
    from stream_gpen.cli import main

    monkeypatch.setattr(commands, "_stdin_quit_watcher", lambda stop: stop.set())  # q + Enter at once
    out, rep = tmp_path / "rec.mkv", tmp_path / "r.json"
    assert main(["camera", "lavfi:testsrc=size=96x64:rate=1", "-o", str(out),
                 "--report", str(rep), *[o for o in cli_env if o != "--quiet"]]) == 0
    err = capsys.readouterr().err
    assert "nothing was recorded" in err and f"wrote {out}" not in err and not out.exists()
    assert json.loads(rep.read_text())["output"] is None


def test_max_pixels_holds_for_frames_that_grow_mid_stream(tmp_path):
    """server18: the server's --max-pixels was checked against the header's size only: a joined
    .ts that switched to 7000x7000 frames was restored at ~1 GB a frame."""
    from _clips import ts_clip
    from stream_gpen.errors import PayloadTooLargeError
    from stream_gpen.io._source import VideoSource

    small, big = tmp_path / "a.ts", tmp_path / "b.ts"
    ts_clip(small, 10, size=(64, 48))
    ts_clip(big, 10, size=(256, 192), t0=0.4)
    joined = tmp_path / "j.ts"
    joined.write_bytes(small.read_bytes() + big.read_bytes())
    got = 0
    with pytest.raises(PayloadTooLargeError, match="256x192 = 49152 pixels, over the limit of 10000"):
        with VideoSource(joined, max_pixels=10000) as src:
            for f in src:
                got += 1
                f.release()
    assert got <= 10
    with VideoSource(joined, max_pixels=100000) as src:  # under the limit: every frame, fitted
        assert sum(1 for f in src if f.release() or True) == 20
