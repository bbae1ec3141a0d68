"""Session 23 (server23): what `serve` got wrong for real clients."""

from __future__ import annotations

import socket
import struct
import zlib

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("websockets")

from stream_gpen.errors import InvalidInputError  # noqa: E402
from stream_gpen.server import ServerConfig  # noqa: E402
from test_server import KEY, FakeEnhancer, client_for, real_server  # noqa: E402


def _serve_config(monkeypatch, argv):
    """The uvicorn.Config `serve` builds (the model and the port check stubbed out)."""
    import stream_gpen.commands as commands
    import stream_gpen.server.cli as server_cli
    from stream_gpen.cli import build_parser

    seen = {}

    class Server:
        started = True

        def __init__(self, config) -> None:
            seen["config"] = config

        def run(self) -> None:
            pass

    monkeypatch.setattr(commands, "_make_enhancer", lambda args: FakeEnhancer())
    monkeypatch.setattr(server_cli, "_check_port", lambda host, port: None)
    monkeypatch.setattr(server_cli, "_server_class", lambda: Server)
    assert server_cli._run_serve(build_parser().parse_args(["serve", "--device", "cpu", *argv])) == 0
    return seen["config"]


# --- 1. live frames are not deflated on the event loop ------------------------------------------------
def test_live_socket_agrees_no_compression(monkeypatch):
    """uvicorn's default permessage-deflate was agreed with every browser: each 1080p RGBA answer
    was deflated on the event loop (~1 s here), stalling every other request (/healthz 0.9-1.2 s),
    and a JPEG answer grew. `serve` turns it off: a client offering it gets no extension."""
    config = _serve_config(monkeypatch, ["--api-key", "k3y"])
    assert config.ws_per_message_deflate is False
    with client_for(FakeEnhancer()) as c, real_server(
            c.app, ws_per_message_deflate=config.ws_per_message_deflate) as (host, port):
        # the handshake a browser sends, by hand (a client library's own state stays out of it)
        ask = (f"GET /v1/live HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
               f"X-API-Key: {KEY['X-API-Key']}\r\n\r\n")
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(ask.encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
        head = head.split(b"\r\n\r\n")[0].decode("latin-1").lower()
        assert head.startswith("http/1.1 101"), head
        assert "sec-websocket-extensions" not in head, head


# --- 2. --max-pixels over what Pillow opens -------------------------------------------------------------
def _png_header(w: int, h: int) -> bytes:
    """A PNG that claims ``w x h`` (Pillow reads the header before any pixel)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def test_max_pixels_over_pillows_limit_is_refused_at_start(monkeypatch, capsys):
    """`--max-pixels 500e6` was taken, then a 400 MP image got 413 quoting Pillow's own limit
    (178956970): the option could never be honoured. Now refused at start, and the 413 names both."""
    from stream_gpen.cli import main

    with pytest.raises(InvalidInputError, match="at most 178956970"):
        ServerConfig(max_pixels=500_000_000)
    ServerConfig(max_pixels=178956970)
    assert main(["serve", "--device", "cpu", "--max-pixels", "500e6"]) == 2
    assert "at most 178956970" in capsys.readouterr().err
    with client_for(FakeEnhancer(), max_pixels=100_000_000) as c:
        r = c.post("/v1/images:enhance", content=_png_header(20000, 20000),
                   headers={**KEY, "Content-Type": "image/png"})
        assert r.status_code == 413
        assert "178956970" in r.json()["detail"] and "100000000 (--max-pixels)" in r.json()["detail"]


# --- 3. an HTTP/1.0 probe without Host -------------------------------------------------------------------
def test_a_request_without_host_passes_the_loopback_name_check():
    """HAProxy's default `option httpchk` (HTTP/1.0, no Host) got 403 from a loopback server:
    no Host cannot be a rebound name (browsers always send one). Another name is still refused."""
    from stream_gpen.server._config import LOOPBACK_NAMES

    with client_for(FakeEnhancer(), allowed_hosts=LOOPBACK_NAMES) as c, real_server(c.app) as (host, port):
        def ask(head: bytes) -> bytes:
            with socket.create_connection((host, port), timeout=10) as s:
                s.sendall(head)
                out = b""
                while chunk := s.recv(65536):
                    out += chunk
            return out

        assert ask(b"GET /healthz HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200")
        assert ask(b"GET /healthz HTTP/1.0\r\nHost: evil.example\r\n\r\n").startswith(b"HTTP/1.1 403")


# --- 4. the --work-dir help says what it holds ----------------------------------------------------------
def test_work_dir_help_says_finished_results_are_not_counted(capsys):
    from stream_gpen.cli import main

    assert main(["serve", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "every result finished within --job- ttl" in text or "every result finished within --job-ttl" in text


# --- 5. the image answer is written as enhance writes the photo --------------------------------------
def test_image_answer_quality_follows_enhance(tmp_path):
    """Every JPEG answer was written at quality 92: a q95 upload came back with coarser tables than
    `enhance` keeps (first values [3,2,2,3,4] vs [2,1,1,2,2], pixels up to 26 levels apart), and a
    lossless WebP came back lossy. Unless `quality` is asked, the answer now follows enhance's rule."""
    import io

    import numpy as np
    from PIL import Image

    from stream_gpen.io._image import _webp_is_lossless

    rng = np.random.default_rng(0)
    pic = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)

    def sent(fmt, **kw):
        buf = io.BytesIO()
        Image.fromarray(pic).save(buf, fmt, **kw)
        return buf.getvalue()

    def tables(data):
        with Image.open(io.BytesIO(data)) as im:
            return {k: list(v) for k, v in im.quantization.items()}

    with client_for(FakeEnhancer()) as c:
        def answer(data, media, **params):
            r = c.post("/v1/images:enhance", content=data, params=params, headers={**KEY, "Content-Type": media})
            assert r.status_code == 200, r.text
            return r.content

        fine = sent("JPEG", quality=95)
        assert tables(answer(fine, "image/jpeg")) == tables(fine)  # its own tables
        coarse = sent("JPEG", quality=70)
        assert tables(answer(coarse, "image/jpeg")) == tables(sent("JPEG", quality=90))  # the floor
        assert tables(answer(coarse, "image/jpeg", quality=50)) == tables(sent("JPEG", quality=50))  # as asked
        png = sent("PNG")
        assert tables(answer(png, "image/png", format="jpeg")) == tables(sent("JPEG", quality=95))
        lossless = sent("WEBP", lossless=True)
        assert _webp_is_lossless(lossless)
        assert _webp_is_lossless(answer(lossless, "image/webp"))
        assert not _webp_is_lossless(answer(sent("WEBP", quality=80), "image/webp"))


# --- 6. uploads enhance reads repaired are read repaired by the server too ----------------------------
def test_image_endpoint_reads_a_jpeg_without_end_marker_and_a_png_with_a_damaged_text_chunk(caplog):
    """`enhance` reads a whole JPEG missing only its end marker and a PNG whose optional text
    chunk fails its checksum (photos23 #4, #6); the image endpoint refused both (400)."""
    import io
    import logging

    import numpy as np
    from PIL import Image, PngImagePlugin

    rng = np.random.default_rng(1)
    pic = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pic).save(buf, "JPEG", quality=95)
    jpeg = buf.getvalue()
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "hello")
    buf = io.BytesIO()
    Image.fromarray(pic).save(buf, "PNG", pnginfo=info)
    png = bytearray(buf.getvalue())
    at = png.index(b"tEXt") + 4
    png[at] ^= 0xFF  # the text changed under its checksum
    with client_for(FakeEnhancer()) as c, caplog.at_level(logging.WARNING):
        def post(data, media):
            return c.post("/v1/images:enhance", content=bytes(data), params={"format": "png"},
                          headers={**KEY, "Content-Type": media})

        r = post(jpeg[:-2], "image/jpeg")
        assert r.status_code == 200, r.text
        with Image.open(io.BytesIO(post(jpeg, "image/jpeg").content)) as a, Image.open(io.BytesIO(r.content)) as b:
            assert np.array_equal(np.asarray(a), np.asarray(b))
        assert post(jpeg[: len(jpeg) * 2 // 3], "image/jpeg").status_code == 400  # really cut: refused
        r = post(png, "image/png")
        assert r.status_code == 200, r.text
    assert "JPEG end marker" in caplog.text and "tEXt" in caplog.text


def test_the_pixel_limit_is_checked_before_a_jpeg_end_marker_repair(monkeypatch):
    """review23: the end-marker repair (two full decodes) ran before the --max-pixels check: a
    flat 169 MP JPEG of a few MB, cut by 2 bytes, cost ~1.5 GB and seconds per request under a
    40 MP limit. The size is now checked first; the repair is not even tried for a refused one."""
    import io

    import numpy as np
    from PIL import Image

    import stream_gpen.io._image as image_io

    tried = []
    real = image_io._eoi_restored
    monkeypatch.setattr(image_io, "_eoi_restored", lambda data: tried.append(1) or real(data))
    buf = io.BytesIO()
    Image.fromarray(np.full((100, 120, 3), 90, np.uint8)).save(buf, "JPEG")
    cut = buf.getvalue()[:-2]
    with client_for(FakeEnhancer(), max_pixels=5000) as c:
        r = c.post("/v1/images:enhance", content=cut, headers={**KEY, "Content-Type": "image/jpeg"})
        assert r.status_code == 413 and "(--max-pixels)" in r.json()["detail"]
    assert not tried
    with client_for(FakeEnhancer()) as c:
        r = c.post("/v1/images:enhance", content=cut, headers={**KEY, "Content-Type": "image/jpeg"})
        assert r.status_code == 200
    assert tried


def test_nms_of_half_precision_boxes_suppresses():
    """review23: in float16 a 300x300 box's area (90000) overflowed to inf, the IoU was NaN and
    two identical boxes were both kept; torchvision computes in float."""
    import torch

    from stream_gpen.faces._detector import nms

    boxes = torch.tensor([[0, 0, 300, 300], [0, 0, 300, 300]], dtype=torch.float16)
    assert nms(boxes, torch.tensor([0.9, 0.8], dtype=torch.float16), 0.4).tolist() == [0]
