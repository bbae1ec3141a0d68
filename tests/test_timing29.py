"""Session 29 (ftiming29): the run summary's stage times and the reports around a stop.

1. ``stage_seconds["encode"]`` timed the hand-over of each frame to the encoder thread's queue
   (0.01 s of a run whose encoder worked for seconds), not the encoding, and there was no
   ``decode`` stage, which the RunSummary docstring listed: both are now the worker threads' own
   time (not their waits: a full ring, an empty queue), the encoder's flush and trailer included;
2. a camera session ended by SIGTERM (or Ctrl-C) said ``interrupted: false``; it is interrupted,
   ``stopped_by`` names the signal, and the recording is still finished under its own name, exit 0;
3. ``enhance`` of a finite lavfi graph read it live: paced at its rate, the ring dropped all but
   one frame a detector pass (2 of 50 written), unsaid; it is read as a file, every frame out, and
   a live source's drops in a job are said in the fallbacks;
4. the missing-GPEN-weights hint called the detector "not here either" of a run given
   ``--detector-weights`` (or of ``--aligned`` crops, which need none).

The stage tests run the threads against a clock that moves only where the test says (a frame's
decoding or encoding, a wait for a slot): the times they check are exact, not wall time.
"""
from __future__ import annotations

import json
import os
import signal
import time
import types

import pytest

from stream_gpen.cli import main

TINY = "lavfi:testsrc=size=64x48:rate=25:duration=0.2"  # 5 frames


def _fake_clock(monkeypatch, module) -> list[float]:
    """``module.time`` with a ``perf_counter`` that reads the returned cell (the rest real)."""
    now = [0.0]
    fake = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")})
    fake.perf_counter = lambda: now[0]
    monkeypatch.setattr(module, "time", fake)
    return now


@pytest.fixture
def enh(mobilenet_weights):
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    return Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False,
                    detect_size=64)


# --- 1. decode and encode: the threads' own time ---------------------------------------------------

def test_the_encode_stage_is_the_encoder_threads_work_with_its_flush(tmp_path, enh, monkeypatch):
    from stream_gpen.io import _sink

    now = _fake_clock(monkeypatch, _sink)
    real_encode = _sink.FileSink._encode
    real_flush = getattr(_sink.FileSink, "_flush_and_close", None)

    def encode(self, frame):
        now[0] += 1.0  # each frame: a second of encoding and muxing
        return real_encode(self, frame)

    def flush(self, *, all_aux):
        now[0] += 10.0  # the encoder's held frames and the trailer: ten seconds
        return real_flush(self, all_aux=all_aux)

    monkeypatch.setattr(_sink.FileSink, "_encode", encode)
    monkeypatch.setattr(_sink.FileSink, "_flush_and_close", flush, raising=False)
    s = enh.enhance_file(TINY, tmp_path / "o.mp4")
    assert s.frames_out == 5
    assert s.stage_seconds["encode"] == pytest.approx(5 * 1.0 + 10.0), s.stage_seconds
    assert "encode" in s.to_dict()["stage_seconds"] and "stages: " in s.format()


def test_the_decode_stage_is_the_decoders_work_not_its_wait_for_a_free_slot(tmp_path, enh, monkeypatch):
    from stream_gpen.io import _ring, _source

    now = _fake_clock(monkeypatch, _source)
    real_frames = _source.VideoSource._decode_frames
    real_acquire = _ring.FrameRing.acquire

    def decode_frames(self):
        for f in real_frames(self):
            now[0] += 1.0  # each frame: a second of demuxing and decoding
            yield f

    def acquire(self, **kw):
        now[0] += 100.0  # the pipeline behind: a long wait for a free slot, which is no decoding
        return real_acquire(self, **kw)

    monkeypatch.setattr(_source.VideoSource, "_decode_frames", decode_frames)
    monkeypatch.setattr(_ring.FrameRing, "acquire", acquire)
    s = enh.enhance_file(TINY, tmp_path / "o.mp4")
    assert s.frames_in == s.frames_out == 5
    assert s.stage_seconds.get("decode") == pytest.approx(5.0), s.stage_seconds
    assert "decode " in s.format()


def test_a_photo_run_reports_its_decode_and_encode_stages(tmp_path, enh, face):
    photo = tmp_path / "p.jpg"
    face.save(photo)
    s = enh.enhance_file(photo, tmp_path / "o.jpg")
    assert s.frames_out == 1
    assert {"decode", "encode"} <= set(s.stage_seconds), s.stage_seconds


# --- 2. a camera stopped by a signal: interrupted, its recording whole -----------------------------

@pytest.mark.parametrize("signame, said", [("SIGTERM", "SIGTERM"), ("SIGINT", "Ctrl-C")])
def test_a_camera_stopped_by_a_signal_is_interrupted_and_says_which(tmp_path, det_home, monkeypatch, capsys,
                                                                  signame, said):
    from stream_gpen import commands
    from stream_gpen.io import _sink

    now = _fake_clock(monkeypatch, _sink)
    real_encode = _sink.FileSink._encode

    def encode(self, frame):
        now[0] += 1.0
        return real_encode(self, frame)

    monkeypatch.setattr(_sink.FileSink, "_encode", encode)
    sig = getattr(signal, signame)
    absorbed = []
    # (the CLI's handler takes the signal; should it not be in place, this absorbs it and the run
    # stops at --frames: the test fails instead of ending pytest)
    old = signal.signal(sig, signal.default_int_handler if signame == "SIGINT" else lambda *a: absorbed.append(a))
    real_write = commands._Tee.write
    written = []

    def write(self, frame):
        if len(written) == 4:
            os.kill(os.getpid(), sig)  # (raised in this thread before the next line runs)
        real_write(self, frame)
        written.append(frame.index)

    monkeypatch.setattr(commands._Tee, "write", write)
    out, report = tmp_path / "rec.mp4", tmp_path / "rec.json"
    try:
        rc = main(["camera", "lavfi:testsrc2=size=96x64:rate=25", "--model", "classic", "--detect-size", "96",
                   "-o", str(out), "--frames", "60", "--report", str(report)])
    finally:
        signal.signal(sig, old)
    err = capsys.readouterr().err
    assert rc == 0 and not absorbed, err  # (a camera's usual end: its recording finished, exit 0)
    assert out.is_file() and not list(tmp_path.glob("rec.partial*"))
    r = json.loads(report.read_text())
    assert r["interrupted"] is True and r["stopped_by"] == said and r["partial_output"] is None, r
    assert r["frames_out"] == 4 and r["error"] is None
    assert f"stopped by {said}: the outputs were finished under their own names" in err, err
    assert "partial output: none" not in err
    # the encoder thread's own time: its four frames, not the queueing in this thread
    assert r["stage_seconds"]["encode"] == pytest.approx(4.0), r["stage_seconds"]
    assert "decode" in r["stage_seconds"]


def test_a_camera_that_ends_at_its_frames_is_not_interrupted(tmp_path, det_home):
    report = tmp_path / "r.json"
    assert main(["camera", "lavfi:testsrc2=size=96x64:rate=25", "--model", "classic", "--detect-size", "96",
                 "-o", str(tmp_path / "rec.mp4"), "--frames", "3", "--quiet", "--report", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["interrupted"] is False and r["stopped_by"] is None and r["frames_out"] == 3
    assert {"decode", "encode"} <= set(r["stage_seconds"])


# --- 3. enhance of a finite lavfi graph: read as a file, every frame out -----------------------------

def test_enhance_of_a_finite_lavfi_graph_writes_every_frame_unpaced(tmp_path, cli_env, monkeypatch):
    import av

    from stream_gpen.io import _open

    opened = []

    class Spy(_open.VideoSource):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            opened.append(self)

    monkeypatch.setattr(_open, "VideoSource", Spy)
    out, report = tmp_path / "o.mp4", tmp_path / "r.json"
    spec = "lavfi:testsrc=duration=1:size=64x48:rate=25"
    assert main(["enhance", spec, "-o", str(out), *cli_env, "--report", str(report)]) == 0
    assert [(s.live, s.paced) for s in opened] == [(False, False)]  # (it was live and paced: 2 of 50 out)
    r = json.loads(report.read_text())
    assert r["frames_in"] == r["frames_out"] == 25 and r["frames_dropped"] == 0, r
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 25
    # the camera still plays a graph live, at its own rate, as a camera delivers
    opened.clear()
    assert main(["camera", spec, *cli_env, "-o", "null", "--frames", "2"]) == 0
    assert [(s.live, s.paced) for s in opened] == [(True, True)]


def test_a_live_sources_drops_in_a_job_are_said_in_the_fallbacks(enh, caplog):
    """(An rtsp/udp stream read by enhance is live: a restoring slower than it drops frames, which
    the summary counted and nothing said.)"""
    from stream_gpen.summary import RunSummary, StageTimer

    source = types.SimpleNamespace(stats={"decoded": 30, "dropped": 7}, fallbacks=[], skipped=[])
    summary = RunSummary()
    caplog.set_level("WARNING", logger="stream_gpen")
    enh._finish(summary, enh._stage(), source, StageTimer(), time.perf_counter())
    assert summary.frames_dropped == 7
    said = [f for f in summary.fallbacks if "7 frame(s) of the live source were dropped" in f]
    assert said and said[0] in caplog.text, summary.fallbacks


# --- 4. the no-GPEN-weights hint says what is missing -------------------------------------------------

@pytest.fixture
def no_repo_weights(monkeypatch):
    """Only the test's own cache is searched (a checkout's weights/ may hold a detector)."""
    monkeypatch.setattr("stream_gpen.weights.repo_weights_dir", lambda: None)


def _hint(capsys) -> str:
    return next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("hint: "))


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("STREAM_GPEN_HOME", str(home))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    return home


def test_the_hint_does_not_call_a_given_detector_missing(tmp_path, empty_home, no_repo_weights, capsys,
                                                         mobilenet_weights):
    argv = ["enhance", TINY, "-o", str(tmp_path / "o.mp4"), "--model", "gpen-bfr-512", "--device", "cpu"]
    assert main([*argv, "--detector-weights", str(mobilenet_weights)]) == 3
    hint = _hint(capsys)
    assert "not here either" not in hint and "weights download retinaface" not in hint, hint
    assert "--model classic" in hint and f"the detector weights given ({mobilenet_weights})" in hint, hint
    # a given path that is not there is said as such, not as the cache's missing copy
    assert main([*argv, "--detector-weights", str(tmp_path / "nope.pth")]) == 3
    hint = _hint(capsys)
    assert f"the detector weights given (--detector-weights), {tmp_path / 'nope.pth'}, are not there" in hint, hint
    assert "which is not here either" not in hint
    # aligned crops need no detector at all
    assert main([*argv, "--aligned"]) == 3
    hint = _hint(capsys)
    assert "nor a detector on aligned crops (--aligned)" in hint and "RetinaFace" not in hint, hint


def test_the_apis_hint_follows_its_detector_weights(empty_home, no_repo_weights, mobilenet_weights):
    from stream_gpen import Enhancer
    from stream_gpen.errors import WeightsNotFoundError

    with pytest.raises(WeightsNotFoundError) as ei:
        Enhancer("gpen-bfr-512", device="cpu", detector_weights=mobilenet_weights)
    assert "not here either" not in ei.value.hint and "detector weights given" in ei.value.hint
    with pytest.raises(WeightsNotFoundError) as ei:  # (nothing given: the cache's missing detector, as before)
        Enhancer("gpen-bfr-512", device="cpu")
    assert ", which is not here either" in ei.value.hint
