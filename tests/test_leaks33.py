"""Records and child processes that outlived what they were for (hunt 33)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from stream_gpen.io import _relay
from stream_gpen.server import _metrics

HERE = Path(__file__).resolve().parent

WINDOW_S = 10.0  # (what stream_gpen_faces_per_second says it averages over)


@pytest.fixture
def clock(monkeypatch):
    """A clock the metrics module reads instead of the real one (only that module's)."""
    now = [1000.0]
    monkeypatch.setattr(_metrics, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_the_faces_per_second_record_stays_within_its_window_unscraped(clock):
    """Every video frame and image batch added an entry that only a ``/metrics`` read pruned:
    an unscraped server grew by ~100 bytes a frame for good."""
    m = _metrics.Metrics()
    for i in range(100_000):  # (100 frames a second of simulated time, 1000 s in all)
        clock[0] += 0.01
        m.add_faces(1 + i % 3)
        if i % 10 == 0:
            m.batch(2, 1)
    kept = (WINDOW_S + 1) / 0.01 * 1.1
    assert len(m._face_times) <= kept
    # (the rate is unchanged in meaning: faces of the last window over the window)
    last = 100_000 - int(WINDOW_S / 0.01)
    want = sum(1 + i % 3 for i in range(last, 100_000)) + sum(1 for i in range(last, 100_000) if i % 10 == 0)
    assert m.faces_per_second() == pytest.approx(want / WINDOW_S, rel=0.01)
    assert m.faces_total == sum(1 + i % 3 for i in range(100_000)) + 10_000


def test_frames_without_faces_are_counted_but_not_kept(clock):
    m = _metrics.Metrics()
    for _ in range(1000):
        m.add_faces(0)
    m.add_faces(5)
    assert len(m._face_times) == 1
    assert m.faces_per_second() == pytest.approx(5 / WINDOW_S)
    clock[0] += WINDOW_S + 1
    assert m.faces_per_second() == 0.0


def _feed(relay: _relay.StreamRelay) -> None:
    """A few pictures of FLV into the relay's pipe, as the sink muxes them: enough for the child to
    open its output and start the handshake."""
    import av
    import numpy as np

    out = av.open(relay.pipe, "w", format="flv", options={"flush_packets": "1"})
    s = out.add_stream("flv", rate=10)
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    rng = np.random.default_rng(0)
    for i in range(10):
        f = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), np.uint8), format="rgb24")
        f.pts = i
        for p in s.encode(f):
            out.mux(p)


@pytest.fixture
def black_hole():
    """An "RTMP server" that accepts the connection and never answers the handshake."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    accepted, stop, conns = threading.Event(), threading.Event(), []

    def serve() -> None:
        while not stop.is_set():
            try:
                conns.append(listener.accept()[0])
                accepted.set()
            except TimeoutError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"rtmp://127.0.0.1:{listener.getsockname()[1]}/live/x", accepted
    stop.set()
    t.join(2)
    for c in conns:
        c.close()
    listener.close()


def _gone(pid: int, within: float) -> bool:
    """The process ended (a zombie nobody reaps counts: it holds nothing) within ``within`` s."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.2)
    return False


_PARENT = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
from stream_gpen.io._relay import StreamRelay
from test_leaks33 import _feed
relay = StreamRelay(sys.argv[1], "flv")
_feed(relay)
print(relay.proc.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_relay_stuck_in_the_handshake_goes_with_its_killed_parent(black_hole):
    """``camera --stream rtmp://...`` killed with ``kill -9`` while the server had not answered:
    the relay child lived on for good, reparented to init, blocked in the handshake."""
    url, accepted = black_hole
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, url, str(HERE)], stdout=subprocess.PIPE, env=env,
                              text=True)
    child = None
    try:
        child = int(parent.stdout.readline())
        assert accepted.wait(60)  # (the child is in the handshake)
        parent.kill()
        parent.wait()
        assert _gone(child, 20)
    finally:
        parent.kill()
        parent.wait()
        if child is not None and not _gone(child, 0.5):
            os.kill(child, signal.SIGKILL)


@pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="the child's alarm needs SIGALRM")
def test_a_relay_the_server_never_answers_ends_itself_and_says_why(black_hole, monkeypatch):
    """Where nothing kills it (its parent died on another system, or started it from a thread),
    the child bounds its wait on the server itself."""
    url, accepted = black_hole
    monkeypatch.setattr(_relay, "RELAY_STALL_S", 1, raising=False)
    relay = _relay.StreamRelay(url, "flv")
    try:
        _feed(relay)
        assert accepted.wait(60)
        assert relay.why(wait=20) == "the server took nothing for 1 s"
    finally:
        relay.kill()
