"""Hunt 33 (server security): a video over --max-pixels is refused on its header's size before
any frame is decoded (a 14 MB 16000x16000 MJPEG upload cost 1.5 GB to decode, then was refused)."""
from __future__ import annotations

import pytest

from tests.test_io_video import make_clip


def test_a_video_over_max_pixels_is_refused_before_any_frame_is_decoded(tmp_path, monkeypatch):
    from stream_gpen.errors import PayloadTooLargeError
    from stream_gpen.io import open_source
    from stream_gpen.io._source import VideoSource

    clip = tmp_path / "c.ts"
    make_clip(clip, n=2)  # 64x48

    def no_decode(self):
        raise AssertionError("a frame was decoded before the size was checked")

    monkeypatch.setattr(VideoSource, "_decode_frames", no_decode)
    with pytest.raises(PayloadTooLargeError, match=r"video frames are 64x48 = 3072 pixels, over the limit of 3000"):
        open_source(clip, untrusted=True, max_pixels=3000)


def _reply(sock, data: bytes = b"") -> str:
    """The server's whole answer on ``sock`` (read until its Content-Length, or the close), that
    begins with ``data`` if some was read already."""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        n = [int(v) for k, v in (ln.split(b":", 1) for ln in head.split(b"\r\n")[1:] if b":" in ln)
             if k.strip().lower() == b"content-length"]
        if sep and n and len(body) >= n[0]:
            break
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1")


def trickle(sock, every_s: float = 0.1, most: int = 200) -> str:
    """Send a request's body on ``sock`` one byte each ``every_s`` seconds (each well within an
    idle limit), ``most`` bytes at most, until the server answers; its answer ("" if none came)."""
    import socket

    sock.settimeout(every_s)
    data = b""
    for _ in range(most):
        sock.sendall(b"x")
        try:
            data = sock.recv(4096)
        except socket.timeout:
            continue
        break
    sock.settimeout(10)
    return _reply(sock, data) if data else ""


_IMAGE_HEAD = (b"POST /v1/images:enhance HTTP/1.1\r\nHost: x\r\nX-API-Key: k3y\r\nContent-Type: image/png\r\n"
               b"Content-Length: 1000\r\n\r\n")


def test_image_requests_in_flight_are_bounded_before_their_bodies_are_read(tmp_path):
    """With --max-batch 1 --max-queue 1, two image bodies still arriving take both places: a third
    request is answered 429 (Retry-After) at once, its body never read. (Each was read and decoded
    before the queue was checked: 6 small PNG bombs held 2.6 GB at once.)"""
    import socket

    from stream_gpen.server import ServerConfig, create_app
    from tests.test_server import FakeEnhancer, real_server, wait_for

    app = create_app(FakeEnhancer(), config=ServerConfig(api_key="k3y", max_batch=1, max_queue=1,
                                                          request_timeout_s=60, work_dir=tmp_path))
    with real_server(app, log_level="warning") as address:
        slow = [socket.create_connection(address, timeout=10) for _ in range(2)]
        try:
            for s in slow:
                s.sendall(_IMAGE_HEAD + b"\x89PNG")
            wait_for(lambda: app.state.images.held == 2, 10, "two image bodies being read")
            with socket.create_connection(address, timeout=10) as c:
                c.sendall(_IMAGE_HEAD)  # (no body: an answer proves it was not waited for)
                reply = _reply(c)
            assert reply.startswith("HTTP/1.1 429"), reply
            assert "retry-after: 1" in reply.lower() and "image queue full (1 waiting)" in reply and "2 in flight at most" in reply
        finally:
            for s in slow:
                s.close()
        wait_for(lambda: app.state.images.held == 0, 10, "the places given back")


def test_a_trickled_image_body_times_out_as_a_whole(tmp_path):
    """One byte at a time, each within the idle limit, no longer holds an image body (and its
    memory) for ever: the whole body must arrive within --request-timeout (408)."""
    import socket

    from stream_gpen.server import ServerConfig, create_app
    from tests.test_server import FakeEnhancer, real_server

    app = create_app(FakeEnhancer(), config=ServerConfig(api_key="k3y", request_timeout_s=0.5, work_dir=tmp_path))
    with real_server(app, log_level="warning") as address:
        with socket.create_connection(address, timeout=10) as c:
            c.sendall(_IMAGE_HEAD)
            reply = trickle(c, most=200)  # (20 s at most: the old code never answered)
    assert reply.startswith("HTTP/1.1 408"), reply
    assert "request body not received whole within 0.5 s (--request-timeout)" in reply


@pytest.mark.parametrize("route", ["/v1/videos", "/v1/images:enhance"])
def test_a_multipart_boundary_the_parser_refuses_is_400(tmp_path, route):
    """A boundary of 300 characters (RFC 2046 allows 70, the parser 256) was a 500 and a traceback."""
    pytest.importorskip("fastapi")
    from tests.test_server import KEY, FakeEnhancer, client_for

    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        r = c.post(route, content=b"abc", headers={**KEY, "Content-Type": "multipart/form-data; boundary=" + "b" * 300})
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "InvalidInputError" and r.json()["detail"].startswith("malformed multipart body")


def test_a_script_ffmpeg_refuses_for_safety_says_why(tmp_path):
    """A concat script with an absolute path, a local playlist naming /etc/passwd: FFmpeg's own
    reason and a hint, not "[Errno 1] Operation not permitted" or "truncated/corrupt header"."""
    from stream_gpen.errors import NotMediaError
    from stream_gpen.io import open_source

    clip = tmp_path / "c.ts"
    make_clip(clip, n=2)
    concat = tmp_path / "evil.ffconcat"
    concat.write_text(f"ffconcat version 1.0\nfile {clip}\n")
    with pytest.raises(NotMediaError, match=r"Unsafe file name") as info:
        open_source(concat)
    assert "absolute paths and URLs in a concat script are refused" in info.value.hint
    playlist = tmp_path / "evil.m3u8"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n/etc/passwd\n#EXT-X-ENDLIST\n")
    with pytest.raises(NotMediaError, match=r"/etc/passwd is not in allowed_segment_extensions") as info:
        open_source(playlist)
    assert "the playlist refers to a segment FFmpeg will not open" in info.value.hint
