"""Network sources read live (``camera``) and the server's messages (hunt 13, findings 2-6).

* An http(s) URL that serves a file (a ``Content-Length``, or a declared duration) is paced at its
  own rate and ends at its end; an MPEG-TS file (no duration in its header) was reconnected to for
  ever, each replay resetting the reconnect count, and read at download speed.
* A reopened session that only replays the one before does not renew the reconnect budget, and
  one that ends where that one ended is the same file again: the source ends.
* Closing a source whose peer stalled does not wait out the 10 s read timeout.
* Error bodies always carry ``detail`` and ``error`` (no private class name); ``/v1/live`` options
  that are not a JSON object are said in the client's terms.
"""
from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from importlib import resources
from itertools import islice

import pytest

from stream_gpen.io import open_source
from tests._clips import ts_clip

pytest.importorskip("fastapi")

N = 25  # ts_clip: 25 frames at 25 fps


def _serve(data: bytes, *, length: bool, first: bytes | None = None):
    """An http server giving ``data`` (``first`` on the first request), with a Content-Length
    (a file) or without one (HTTP/1.0 until the connection closes: a live feed)."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = first if first is not None and len(hits) == 1 else data
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            if length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")  # the end of the data is the end of the answer
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass
            self.close_connection = True

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/clip.ts", hits


def _read_live(url, limit=8 * N, indices=None):
    """Frame times of ``url`` read as a live source; at most ``limit`` (a source replayed for ever
    would otherwise never end). Live, the ring hands on the newest frame and drops older ones
    when this reader falls behind (a loaded CI machine: hunt 19 saw 8-15 of 25+ frames), so the
    tests count what the source decoded, not only what was seen here."""
    with open_source(url, live=True, reconnect=3, reconnect_delay_s=0.05, ring_size=4 * N) as src:
        times = []
        for f in islice(src, limit):
            times.append(f.time)
            if indices is not None:
                indices.append(f.index)
            f.release()
    return src, times


def test_a_live_http_mpeg_ts_file_is_paced_and_ends_at_its_end(tmp_path):
    data = bytes(ts_clip(tmp_path / "c.ts", N))
    srv, url, hits = _serve(data, length=True)
    try:
        idx: list[int] = []
        src, times = _read_live(url, indices=idx)
    finally:
        srv.shutdown()
        srv.server_close()
    # paced like a local file (camera read it at 78 fps from a 25 fps clip) ...
    assert src.paced
    # ... and read once: it was replayed 19 times in 12 s, the count reset after each reopen
    assert src.stats["reconnects"] == 0 and len(hits) == 1
    assert src.stats["decoded"] == N == len(times) + src.stats["dropped"] and idx[-1] == N - 1
    assert times[-1] - times[0] == pytest.approx((idx[-1] - idx[0]) / 25, abs=1e-3)


def test_a_live_feed_without_a_length_is_not_paced_and_a_replay_of_it_ends_it(tmp_path):
    """No Content-Length, no duration: a live feed, reconnected to when it ends. A reopen that
    replays it from its first frame renews the reconnect budget only past where the session
    before ended; a session that ends there too is the same file served again."""
    data = bytes(ts_clip(tmp_path / "c.ts", N))
    half = data[: len(data) // 2 // 188 * 188]  # a feed that broke halfway, in whole TS packets
    srv, url, hits = _serve(data, length=False, first=half)
    try:
        src, times = _read_live(url)
    finally:
        srv.shutdown()
        srv.server_close()
    assert not src.paced  # a live feed comes in real time by itself
    # session 1 (half), session 2 (all: runs past session 1's end, a live stream that came
    # back), session 3 (all again, ending where session 2 did: a file replayed): 3 sessions
    assert src.stats["reconnects"] == 2 and len(hits) == 3, (src.stats, hits)
    assert N < src.stats["decoded"] < 3 * N and len(times) + src.stats["dropped"] == src.stats["decoded"]


def _stalled_server(data: bytes):
    """A live feed that sends ``data`` and then nothing, keeping the connection open."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    conns = []

    def run():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            c.recv(4096)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\n\r\n" + data)
            conns.append(c)

    threading.Thread(target=run, daemon=True).start()
    return s, conns, f"http://127.0.0.1:{s.getsockname()[1]}/live.ts"


def test_closing_a_source_whose_peer_stalled_does_not_wait_for_the_read_timeout(tmp_path):
    data = bytes(ts_clip(tmp_path / "c.ts", N))
    s, conns, url = _stalled_server(data)
    try:
        src = open_source(url, live=True, timeout_s=10.0, ring_size=4)
        src.start()
        next(src)
        seen = -1
        while src.stats["decoded"] != seen:  # until the data is used up: the decode thread then
            seen = src.stats["decoded"]       # waits in FFmpeg's read for data that never comes
            time.sleep(0.3)
        t0 = time.monotonic()
        src.close()
        # it waited out the 10 s read timeout (Ctrl-C on a stalled camera took 5-10 s to finish)
        assert time.monotonic() - t0 < 5.0
        assert src._thread.is_alive()  # left behind in its read ...
    finally:
        for c in conns:
            c.close()
        s.close()
    src._thread.join(15)
    assert not src._thread.is_alive()  # ... it ends once the read gives up, and closes the input


# --- server --------------------------------------------------------------------------------------

def _client(**cfg):
    from fastapi.testclient import TestClient

    from stream_gpen.server import ServerConfig, create_app
    from tests.test_server import FakeEnhancer

    return TestClient(create_app(FakeEnhancer(), config=ServerConfig(api_key="k3y", **cfg)))


KEY = {"X-API-Key": "k3y"}


def test_error_bodies_have_one_shape_and_public_names():
    from stream_gpen.server import _app

    # a stalled upload's 408 named a private class ("_UploadTimeout")
    assert not hasattr(_app, "_UploadTimeout")
    assert _app._status_for(_app.UploadTimeoutError("no request data for 3 s; upload abandoned"))[0] == 408
    with _client(max_upload_bytes=100) as c:
        early = c.post("/v1/images:enhance", content=b"x" * 500, headers={**KEY, "Content-Type": "image/png"})
        late = c.post("/v1/images:enhance", content=iter([b"x" * 80, b"x" * 80]),
                      headers={**KEY, "Content-Type": "image/png"})
        unauthorized = c.get("/v1/models")
    # the same 413 from the Content-Length (before routing) and while reading: one body shape
    assert early.status_code == late.status_code == 413
    assert set(early.json()) == set(late.json()) == {"detail", "error"}
    assert early.json()["error"] == late.json()["error"] == "PayloadTooLargeError"
    assert unauthorized.status_code == 401 and set(unauthorized.json()) == {"detail", "error"}


@pytest.mark.parametrize("text", ["[1,2]", "null", '"str"', "3", "not json"])
def test_live_options_that_are_not_an_object_are_said_so(text):
    with _client() as c, c.websocket_connect("/v1/live", headers=KEY) as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        ws.send_text(text)
        ev = json.loads(ws.receive_text())
    # it said "bad options: 'list' object has no attribute 'get'"
    assert ev["type"] == "error" and ev["seq"] is None
    assert ev["detail"].startswith('bad options: options must be a JSON object such as {"strength": 0.8}'), ev
    assert "attribute" not in ev["detail"]


@pytest.mark.parametrize("opts, said", [
    ({"strenght": 0.5}, "unknown option 'strenght'"),
    ({"strength": [1]}, "strength must be a number in [0, 1], not [1]"),
    ({"strength": True}, "strength must be a number in [0, 1], not true"),
    ({"model": {"a": 1}}, 'model must be a string, not {"a": 1}'),
])
def test_live_options_of_the_wrong_json_type_are_said_in_json_terms(opts, said):
    with _client() as c, c.websocket_connect("/v1/live", headers=KEY) as ws:
        json.loads(ws.receive_text())
        ws.send_text(json.dumps(opts))
        ev = json.loads(ws.receive_text())
    assert ev["type"] == "error" and said in ev["detail"], ev


def test_live_page_checks_for_a_secure_context_and_counts_only_frames_as_dropped():
    page = resources.files("stream_gpen.server").joinpath("static/index.html").read_text(encoding="utf-8")
    # on a LAN address over plain http the page said "camera: Cannot read properties of undefined"
    assert "window.isSecureContext" in page and "https reverse proxy" in page and "SSH tunnel" in page
    start = page[page.index("async function start()"):]
    assert start.index("isSecureContext") < start.index("getUserMedia(")
    # an options error (seq null) was counted as a dropped frame
    assert "if (msg.seq !== null)" in page
