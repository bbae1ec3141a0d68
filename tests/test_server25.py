"""Session 25 (serve): image requests whose client hung up, and image requests queued at a stop signal."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")

from stream_gpen.errors import QueueFullError, ShuttingDownError  # noqa: E402
from stream_gpen.server import ServerConfig, create_app  # noqa: E402
from test_server import FakeEnhancer, encode, real_server, wait_for  # noqa: E402

PNG = encode(np.full((8, 8, 3), 10, np.uint8), "PNG")


def _post(address) -> socket.socket:
    """An image request sent whole on its own connection (answer read by :func:`_answer`)."""
    s = socket.create_connection(address, timeout=10)
    s.sendall(b"POST /v1/images:enhance HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: k3y\r\nConnection: close\r\n"
              b"Content-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(PNG) + PNG)
    return s


def _answer(s: socket.socket) -> tuple[str, bytes]:
    """(status line and headers, lower-case; body) of the answer on ``s`` (socket.timeout: none came)."""
    with s:
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode("latin-1").lower(), body


def _image_requests(app, status: int) -> int:
    m = re.search(r'stream_gpen_requests_total\{[^}]*route="/v1/images:enhance"[^}]*status="%d"\} (\d+)' % status,
                  app.state.metrics.render())
    return int(m.group(1)) if m else 0


# --- 1. a client that hangs up takes its request out of the queue --------------------------------------
def test_an_image_request_whose_client_hung_up_leaves_the_queue_and_counts_as_499():
    """16 clients that closed their sockets 0.5 s after sending still had their images run (the
    next client waited 12.7 s instead of 1.0 s), held their --max-queue places (the next client
    got 429 after they had all gone) and were counted as 200. Now a hang-up cancels the request:
    not yet started, it leaves the queue at once; /metrics counts it as 499."""
    fake = FakeEnhancer()
    fake.gate = threading.Event()  # holds the running batch
    app = create_app(fake, config=ServerConfig(api_key="k3y", max_batch=1, batch_wait_ms=0, max_queue=2))
    with real_server(app, log_level="warning") as address:
        try:
            running = _post(address)
            assert fake.entered.wait(10)
            batcher = app.state.runtime["batcher"]
            left = [_post(address) for _ in range(2)]
            wait_for(lambda: batcher.depth == 2, 10, "two requests queued (the queue full)")
            for s in left:
                s.close()
            wait_for(lambda: batcher.depth == 0, 10, "the requests of the clients that left to leave the queue")
            wait_for(lambda: _image_requests(app, 499) == 2, 10, "the two counted as 499")
            after = _post(address)  # their places are free: queued, not 429
            wait_for(lambda: batcher.depth == 1, 10, "the next request queued")
            fake.gate.set()
            assert _answer(running)[0].startswith("http/1.1 200")
            assert _answer(after)[0].startswith("http/1.1 200")
        finally:
            fake.gate.set()
    assert fake.batches == [1, 1]  # the two abandoned images were never run
    assert _image_requests(app, 200) == 2 and _image_requests(app, 499) == 2


def test_a_cancelled_request_frees_its_place_and_a_stop_fails_the_queued_ones():
    from stream_gpen.server._app import _status_for
    from stream_gpen.server._batcher import ImageBatcher

    class Models:
        def resolve(self, *options):
            return ("fake", "all", 1.0, False)

    pixels = np.zeros((8, 8, 3), np.uint8)
    batcher = ImageBatcher(Models(), {}, None, max_batch=1, wait_s=0.0, max_queue=2)  # (no worker: all wait)
    first, second = batcher.submit(pixels), batcher.submit(pixels)
    with pytest.raises(QueueFullError, match="queue full"):
        batcher.submit(pixels)
    first.cancel()  # (its client hung up, or its time ran out)
    assert batcher.depth == 1
    third = batcher.submit(pixels)
    batcher.stop_accepting()
    assert batcher.closing and batcher.depth == 0
    for fut in (second, third):
        with pytest.raises(ShuttingDownError, match="the server is shutting down"):
            fut.result(0)
    with pytest.raises(ShuttingDownError):
        batcher.submit(pixels)
    assert _status_for(ShuttingDownError()) == (503, {"Retry-After": "5"})


# --- 2. a stop signal answers the queued image requests ------------------------------------------------
@contextlib.contextmanager
def _serve(app):
    """``app`` under the server class ``serve`` runs (its signal hooks, its graceful timeout), in a thread."""
    import uvicorn

    from stream_gpen.server.cli import _server_class

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = _server_class()(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 30, "uvicorn start")
        yield server, thread, sock.getsockname()
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def test_a_stop_signal_answers_queued_image_requests_503_and_finishes_the_running_batch():
    """SIGTERM with 40 image requests open: 10 got 200, 30 no answer at all after 15.6 s (uvicorn
    cancelled their handlers at its graceful timeout; the batcher failed them only after that).
    Now the queued ones get 503 ShuttingDownError with Retry-After at once, the batch being run
    is finished and answered."""
    fake = FakeEnhancer()
    fake.gate = threading.Event()
    app = create_app(fake, config=ServerConfig(api_key="k3y", max_batch=1, batch_wait_ms=0))
    with _serve(app) as (server, thread, address):
        try:
            running = _post(address)
            assert fake.entered.wait(10)
            queued = [_post(address) for _ in range(3)]
            wait_for(lambda: app.state.runtime["batcher"].depth == 3, 10, "three requests queued")
            server.handle_exit(signal.SIGTERM, None)
            for s in queued:  # (while the running batch is still held: before, they waited for it)
                head, body = _answer(s)
                assert head.startswith("http/1.1 503") and "\r\nretry-after: 5" in head, head
                answer = json.loads(body)
                assert answer["error"] == "ShuttingDownError" and answer["detail"] == "the server is shutting down"
                assert "retry" in answer["hint"]
            assert not fake.gate.is_set()
            fake.gate.set()
            head, body = _answer(running)
            assert head.startswith("http/1.1 200") and body
            thread.join(30)
            assert not thread.is_alive()
        finally:
            fake.gate.set()
    assert fake.batches == [1]
    assert _image_requests(app, 503) == 3
