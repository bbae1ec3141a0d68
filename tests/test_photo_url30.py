"""Session 30 (api): a photo served at a URL whose name says nothing of it (no extension:
``.../portrait``; ``photo.jpg_large``) is fetched and restored as the photo it is, told by the
first bytes it serves; video URLs without a name stay videos. Local servers only."""
from __future__ import annotations

import functools
import http.server
import io
import threading
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

from _clips import write_video
from stream_gpen.api import default_output, is_image_url


@contextmanager
def _served(folder, handler=None):
    """``folder``'s files over http on 127.0.0.1 (or ``handler``'s answers); yields the base URL."""
    handler = handler or functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def www(tmp_path, face):
    folder = tmp_path / "www"
    folder.mkdir()
    face.save(folder / "portrait", format="JPEG")
    face.crop((0, 0, 95, 63)).save(folder / "odd", format="PNG")  # 95x63: a video pads it to 96x64
    face.save(folder / "photo.jpg_large", format="JPEG")
    write_video(folder / "clip", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)], fmt="mp4")
    return folder


def test_a_nameless_photo_url_is_restored_as_the_photo_it_is(enh, www, tmp_path):
    """api30: http://host/portrait serving a JPEG became a one-frame H.264 MP4 (95x63 padded to
    96x64), a .jpg dst was refused ("the input is a video") and stream() gave path=None."""
    out = tmp_path / "out"
    out.mkdir()
    with _served(www) as base:
        for name, fmt in (("portrait", "JPEG"), ("odd", "PNG")):
            s = enh.enhance_file(f"{base}/{name}", out)
            assert s.output == str(out / f"{name}{'.jpg' if fmt == 'JPEG' else '.png'}") and s.input == f"{base}/{name}"
            with Image.open(s.output) as im:
                assert im.format == fmt and im.size == Image.open(www / name).size
        s = enh.enhance_file(f"{base}/portrait", tmp_path / "mine.jpg")
        with Image.open(s.output) as im:
            assert im.format == "JPEG" and im.size == (96, 64)
        frames = list(enh.stream(f"{base}/odd"))
        assert [(f.index, f.path, f.image.shape) for f in frames] == [(0, f"{base}/odd", (63, 95, 3))]
        assert is_image_url(f"{base}/photo.jpg_large") and default_output(f"{base}/photo.jpg_large") == \
            "photo_enhanced.jpg"
        assert default_output(f"{base}/portrait") == "portrait_enhanced.jpg"


def test_a_nameless_video_url_is_still_a_video(enh, www, tmp_path):
    with _served(www) as base:
        assert not is_image_url(f"{base}/clip") and default_output(f"{base}/clip") == "stream_enhanced.mp4"
        s = enh.enhance_file(f"{base}/clip", tmp_path / "v.mp4")
        assert s.frames_out == 3
        # a name that says it is a video is not asked at all (an HLS/DASH server, a camera)
        assert not is_image_url(f"{base}/nothing.m3u8") and not is_image_url(f"{base}/nothing.mp4")
        assert not is_image_url("rtmp://127.0.0.1:9/live/key") and not is_image_url("rtsp://127.0.0.1:9/cam")


def test_a_live_camera_url_is_not_followed_and_a_dead_one_is_a_video(tmp_path):
    """An MJPEG camera's multipart stream never ends: the question is answered from its headers;
    a URL that does not answer is left to the video reader (which says what is wrong)."""
    stop = threading.Event()

    class Camera(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            jpeg = io.BytesIO()
            Image.new("RGB", (8, 8)).save(jpeg, "JPEG")
            try:
                while not stop.is_set():
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg.getvalue() + b"\r\n")
            except OSError:
                pass

    with _served(tmp_path, Camera) as base:
        try:
            assert not is_image_url(f"{base}/video")
        finally:
            stop.set()
    assert not is_image_url(f"{base}/gone")  # (the server is gone: a video, said by its reader)


def test_photo_signatures():
    from stream_gpen.io._image import photo_signature

    def saved(fmt, **kw):
        b = io.BytesIO()
        Image.new("RGB", (8, 8)).save(b, fmt, **kw)
        return b.getvalue()[:4096]

    assert [photo_signature(saved(f)) for f in ("JPEG", "PNG", "WEBP", "BMP", "TIFF")] == \
        [".jpg", ".png", ".webp", ".bmp", ".tif"]
    assert photo_signature(saved("GIF")) is None  # (its frames decide: left to the reader)
    heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"
    avif = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf"
    mp4 = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41"
    assert [photo_signature(b) for b in (heic, avif, mp4, b"BMx", b"")] == [".heic", ".avif", None, None, None]


def test_the_command_line_takes_a_nameless_photo_url_too(www, tmp_path, cli_env, monkeypatch):
    """``stream-gpen enhance URL`` names and writes it as the API does (one rule: resolve_output)."""
    from stream_gpen.cli import main

    monkeypatch.chdir(tmp_path)
    with _served(www) as base:
        assert main(["enhance", f"{base}/odd", *cli_env]) == 0
    with Image.open(tmp_path / "odd_enhanced.png") as im:
        assert im.format == "PNG" and im.size == (95, 63)
