"""A device, lavfi graph or URL that cannot be opened is a bad input (exit 2), said in FFmpeg's
words without PyAV's ``[Errno N]`` tags (a live stream that drops later still fails as a stream,
exit 4: tests/test_io_video.py)."""
from __future__ import annotations

import functools
import http.server
import socket
import threading
from pathlib import Path

import pytest

from stream_gpen.cli import main
from stream_gpen.errors import InvalidInputError
from stream_gpen.io._source import VideoSource


@pytest.fixture
def http_dir(tmp_path):
    """A local HTTP server on an ephemeral port serving ``tmp_path``; yields its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _missing_device() -> str:
    n = next(i for i in range(10, 100) if not Path(f"/dev/video{i}").exists())
    return f"/dev/video{n}"


@pytest.mark.parametrize("spec,match", [
    ("lavfi:nosuchfilter", r"cannot open the lavfi graph 'nosuchfilter': Filter not found \(No such filter"),
    ("lavfi:testsrc2=size=", r"lavfi graph 'testsrc2=size=': Invalid argument \(Unable to parse \"size\""),
    ("lavfi:testsrc2=nosuchoption=1", r"Option not found"),
])
def test_bad_lavfi_graph_is_invalid_input(spec, match):
    with pytest.raises(InvalidInputError, match=match) as ei:
        VideoSource(spec)
    assert "[Errno" not in str(ei.value) and "lavfi:testsrc2=size=640x480" in ei.value.hint
    assert ei.value.exit_code == 2


@pytest.mark.skipif(not Path("/dev").is_dir(), reason="needs /dev (Linux)")
def test_missing_device_is_invalid_input():
    dev = _missing_device()
    with pytest.raises(InvalidInputError, match=f"capture device '{dev}' is not available: not found") as ei:
        VideoSource(dev)
    assert "[Errno" not in str(ei.value) and "stream-gpen camera --list" in ei.value.hint


def test_http_404_and_refused_connection_are_invalid_input(http_dir):
    url = f"{http_dir}/nope.mp4"
    with pytest.raises(InvalidInputError, match=r"cannot open '.*/nope.mp4': Server returned 404 Not Found$") as ei:
        VideoSource(url)
    assert "[Errno" not in str(ei.value)
    refused = f"http://127.0.0.1:{_free_port()}/x.mp4"
    with pytest.raises(InvalidInputError, match=r": Connection refused$") as ei:
        VideoSource(refused, timeout_s=5)
    assert "[Errno" not in str(ei.value)


def test_cli_exit_code_2_for_a_404_and_a_bad_graph(http_dir, tmp_path, mobilenet_weights, capsys):
    common = ["--model", "classic", "--detector-weights", str(mobilenet_weights), "--quiet"]
    assert main(["enhance", f"{http_dir}/nope.mp4", "-o", str(tmp_path / "o.mp4"), *common]) == 2
    err = capsys.readouterr().err
    assert "Server returned 404 Not Found" in err and "[Errno" not in err
    assert main(["camera", "lavfi:nosuchfilter", "-o", str(tmp_path / "c.mp4"), *common]) == 2
    err = capsys.readouterr().err
    assert "Filter not found" in err and "[Errno" not in err
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "c.mp4").exists()
