"""camera --stream to a peer that accepts the connection and then stops reading (a stalled ingest
server, a tcp:// viewer that froze), and the live keyframe interval.

The stalled peer used to hang the whole run forever: the stream's encoder thread blocked in its
socket write, the live loop blocked on the stream's full queue, and closing joined the thread
without a bound, so --seconds, SIGTERM and q did nothing. The runs here are subprocesses with a
timeout, so the old behaviour fails the test instead of hanging it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest

ROOT = Path(__file__).resolve().parents[1]
# big, incompressible frames (lossless noise): the socket's buffers fill within a second or two
NOISY = "lavfi:testsrc2=size=640x480:rate=10,noise=alls=100:allf=t"
CHEAP = ("--model", "classic", "--device", "cpu", "--detect-size", "96", "--quiet")


class _StalledPeer:
    """Accepts one TCP connection and never reads from it (a small receive buffer)."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.accepted = threading.Event()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            c, _ = self.server.accept()
        except OSError:
            return
        self.conns.append(c)
        self.accepted.set()

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.server.close()


@pytest.fixture
def peer():
    p = _StalledPeer()
    yield p
    p.close()


def _camera(args, stall_s: float | None = None, env=None):
    """A ``stream-gpen camera`` subprocess (STREAM_STALL_S set to ``stall_s`` where given)."""
    patch = f"import stream_gpen.io._sink as s; s.STREAM_STALL_S = {stall_s!r}; " if stall_s is not None else ""
    code = f"import sys; {patch}from stream_gpen.cli import main; sys.exit(main(sys.argv[1:]))"
    e = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.Popen([sys.executable, "-c", code, "camera", *args], env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def _finish(proc, timeout: float):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the camera run was still going {timeout} s on (a stalled --stream hung it)")
    return proc.returncode, err


def test_a_stream_that_stops_reading_ends_the_run_and_keeps_the_recording(tmp_path, det_home, mobilenet_weights,
                                                                          peer):
    rec, rep = tmp_path / "rec.mkv", tmp_path / "rep.json"
    url = f"tcp://127.0.0.1:{peer.port}"
    t0 = time.monotonic()
    proc = _camera([NOISY, *CHEAP, "--detector-weights", str(mobilenet_weights), "--crf", "0", "--stream", url,
                    "-o", str(rec), "--seconds", "60", "--report", str(rep)], stall_s=1.5)
    code, err = _finish(proc, 50)
    assert time.monotonic() - t0 < 50
    assert code == 4, err
    assert f"sending to {url} made no progress" in err, err
    n = _frames(rec)  # finished under its own name, readable
    assert n >= 1 and f"the {n} frames recorded before were kept in {rec}" in err, err
    data = json.loads(rep.read_text())
    assert "made no progress" in data["error"] and data["frames_out"] == n
    assert data["frames_in"] == data["frames_out"] + data["frames_dropped"]
    # the frames the stream could not take were left out of it, not of the recording, and counted
    assert any(f"frames were left out of {url}" in f for f in data["fallbacks"]), data["fallbacks"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rec")]  # no temporary file left


def test_sigterm_during_a_stalled_stream_finishes_within_seconds(tmp_path, det_home, mobilenet_weights, peer):
    rec, rep = tmp_path / "rec.mkv", tmp_path / "rep.json"
    url = f"tcp://127.0.0.1:{peer.port}"
    # (the stall is not given up mid-run here: it is met by the stop's finishing)
    proc = _camera([NOISY, *CHEAP, "--detector-weights", str(mobilenet_weights), "--crf", "0", "--stream", url,
                    "-o", str(rec), "--report", str(rep)], stall_s=600.0)
    try:
        assert peer.accepted.wait(60), "the camera never connected"
        time.sleep(4)  # frames sent until the socket's buffers filled: the stream's writer is stuck
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    code, err = _finish(proc, 30)
    assert time.monotonic() - t0 < 10, err  # STREAM_CLOSE_WAIT_S (2 s) and the finishing
    assert code == 4, err
    assert f"sending to {url} made no progress" in err, err
    n = _frames(rec)
    assert n >= 1 and f"the {n} frames recorded before were kept in {rec}" in err, err
    assert "made no progress" in json.loads(rep.read_text())["error"]


def _key_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(p.pts * s.time_base) for p in c.demux(s) if p.size and p.is_keyframe]


def test_live_keyframes_are_at_most_2_s_apart_at_a_slow_camera_rate(tmp_path, det_home):
    """A keyframe was forced on the first frame at or after the last one + 2 s: at 0.7 fps that
    is 2.86 s later (a late-joining viewer waited that long). Now it is forced on the frame whose
    next one would come past the 2 s."""
    from stream_gpen.cli import main

    rec = tmp_path / "kf.mkv"
    code = main(["camera", "lavfi:testsrc2=size=96x64:rate=0.7", "--model", "classic", "--detect-size", "96",
                 "-o", str(rec), "--seconds", "4.5", "--quiet"])
    assert code == 0
    keys = _key_times(rec)
    assert keys[0] == 0 and len(keys) >= 2, keys
    assert max(b - a for a, b in zip(keys, keys[1:])) <= 2.0 + 1e-6, keys


@pytest.mark.parametrize("fps", [Fraction(7, 10), Fraction(3), Fraction(9, 10), Fraction(25)])
def test_live_sink_keyframe_gaps_at_steady_rates(tmp_path, fps):
    """The live keyframe rule on its own (frames at a steady rate, no timing of a real run)."""
    import torch

    from stream_gpen.io import FileSink, Frame

    out = tmp_path / "o.mkv"
    tb = Fraction(1, 1000)
    with FileSink(out, live=True, preset="ultrafast", audio="none") as sink:
        for i in range(int(6 * fps) + 1):
            t = i / fps
            sink.write(Frame(index=i, pts=round(t / tb), time_base=tb, time=float(t),
                             _image=torch.full((64, 96, 3), i % 250, dtype=torch.uint8)))
    keys = _key_times(out)
    assert keys[0] == 0 and len(keys) >= 3, keys
    assert max(b - a for a, b in zip(keys, keys[1:])) <= 2.0 + 1e-6, keys


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_rtmp_server_that_never_answers_the_handshake_no_longer_freezes_the_run(tmp_path, det_home,
                                                                                   mobilenet_weights, peer):
    """PyAV opens an rtmp:// output (its handshake) holding the GIL, without a timeout: a server that
    accepted the TCP connection and never answered froze every thread, signal handlers included.
    The stream is now sent by a child process, killed once it makes no progress."""
    rec, rep = tmp_path / "rec.mkv", tmp_path / "rep.json"
    url = f"rtmp://127.0.0.1:{peer.port}/live/x"
    proc = _camera(["lavfi:testsrc2=size=96x64:rate=25", *CHEAP, "--detector-weights", str(mobilenet_weights),
                    "--stream", url, "-o", str(rec), "--seconds", "3", "--report", str(rep)])
    code, err = _finish(proc, 60)
    assert code == 4, err
    assert f"sending to {url} made no progress" in err, err
    n = _frames(rec)
    assert n >= 1 and f"the {n} frames recorded before were kept in {rec}" in err, err
    assert "made no progress" in json.loads(rep.read_text())["error"]


_RTMP_SERVER = r"""
import av, sys
c = av.open(sys.argv[1], options={"listen": "1", "timeout": "60"})
n = 0
try:
    for p in c.demux(video=0):
        n += bool(p.size)
except av.error.FFmpegError:
    pass  # (FFmpeg's listening end says an I/O error when the sender closes)
print(n, c.streams.video[0].codec_context.name, flush=True)
"""


def test_an_rtmp_stream_reaches_its_server_through_the_relay(tmp_path, det_home, mobilenet_weights):
    url = f"rtmp://127.0.0.1:{_free_port()}/live/x"
    server = subprocess.Popen([sys.executable, "-c", _RTMP_SERVER, url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)  # (listening)
        rec, rep = tmp_path / "rec.mkv", tmp_path / "rep.json"
        proc = _camera(["lavfi:testsrc2=size=96x64:rate=10", *CHEAP, "--detector-weights", str(mobilenet_weights),
                        "--stream", url, "-o", str(rec), "--seconds", "2", "--report", str(rep)])
        code, err = _finish(proc, 60)
        assert code == 0, err
        got, _ = server.communicate(timeout=20)
    finally:
        server.kill()
    n, codec = got.split()
    assert codec == "h264" and int(n) >= json.loads(rep.read_text())["frames_out"] - 1 >= 5, (got, err)


_RTMP_SERVER_AV = r"""
import av, sys
c = av.open(sys.argv[1], options={"listen": "1", "timeout": "60", "probesize": "32", "analyzeduration": "0"})
got = {}
try:
    for p in c.demux():
        if p.size:
            got[p.stream.type] = got.get(p.stream.type, 0) + 1
except av.error.FFmpegError:
    pass
print(got.get("video", 0), got.get("audio", 0), flush=True)
"""


def test_enhance_to_rtmp_sends_the_audio_through_the_relay_too(tmp_path, cli_env):
    """The relay copies every stream of the FLV (enhance moves the audio with the frames)."""
    from _clips import audio_tail_clip

    clip = audio_tail_clip(tmp_path / "a.mp4", frames=20, audio_s=0.8)
    url = f"rtmp://127.0.0.1:{_free_port()}/live/x"
    server = subprocess.Popen([sys.executable, "-c", _RTMP_SERVER_AV, url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        e = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        run = subprocess.run([sys.executable, "-m", "stream_gpen", "enhance", str(clip), "-o", url, *cli_env],
                             env=e, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        got, _ = server.communicate(timeout=20)
    finally:
        server.kill()
    video, audio = map(int, got.split())
    assert video >= 19 and audio >= 30, got
