"""Hunt 34 (slowloris): a video upload sent a byte every few seconds, never idle for
--request-timeout, held its --max-jobs place for as long as its client liked; a few such clients
starved everyone. Past --request-timeout an upload must keep up --min-upload-rate on average (408)."""
from __future__ import annotations

import socket

import pytest

from tests.test_serversec33 import _reply, trickle


def _video_head(length: int) -> bytes:
    return (f"POST /v1/videos HTTP/1.1\r\nHost: x\r\nX-API-Key: k3y\r\nContent-Type: video/mp4\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def test_a_trickled_video_upload_is_408_and_gives_its_job_place_back(tmp_path):
    """One byte each 0.1 s (the idle limit is 0.5 s) is far under the default 10 KB/s: once the
    first --request-timeout has passed the upload gets 408, its job and folder are gone, and the
    one --max-jobs place takes the next upload. (The old code never answered it.)"""
    from stream_gpen.server import ServerConfig, create_app
    from tests.test_server import FakeEnhancer, real_server, wait_for

    app = create_app(FakeEnhancer(), config=ServerConfig(api_key="k3y", request_timeout_s=0.5, max_jobs=1,
                                                          work_dir=tmp_path))
    with real_server(app, log_level="warning") as address:
        with socket.create_connection(address, timeout=10) as c:
            c.sendall(_video_head(1000))
            reply = trickle(c, most=40)  # (4 s at most; the answer is due after about 0.5 s)
        assert reply.startswith("HTTP/1.1 408"), reply
        assert '"error":"UploadTimeoutError"' in reply
        assert "slower than 10 KB/s on average (--min-upload-rate) after its first 0.5 s (--request-timeout)" in reply
        jobs = app.state.runtime["jobs"]
        wait_for(lambda: not any(jobs.counts()[s] for s in ("uploading", "queued", "running")), 10, "the place back")
        assert list((tmp_path / "jobs").iterdir()) == []  # (the upload's folder removed)
        with socket.create_connection(address, timeout=10) as c:
            c.sendall(_video_head(3) + b"abc")
            assert _reply(c).startswith("HTTP/1.1 202")


def test_min_upload_rate_zero_lets_a_slow_upload_take_its_time(tmp_path):
    from stream_gpen.server import ServerConfig, create_app
    from tests.test_server import FakeEnhancer, real_server

    app = create_app(FakeEnhancer(), config=ServerConfig(api_key="k3y", request_timeout_s=0.3, max_jobs=1,
                                                          min_upload_bytes_per_s=0, work_dir=tmp_path))
    with real_server(app, log_level="warning") as address:
        with socket.create_connection(address, timeout=10) as c:
            c.sendall(_video_head(8))
            reply = trickle(c, most=8)  # (0.8 s: past the 0.3 s after which a rate would be held to)
    assert reply.startswith("HTTP/1.1 202"), reply


def test_min_upload_rate_option_is_kilobytes_a_second_and_zero_turns_it_off():
    from stream_gpen.cli import build_parser
    from stream_gpen.errors import InvalidInputError
    from stream_gpen.server import ServerConfig
    from stream_gpen.server.cli import config_from_args

    def rate(*argv: str) -> int:
        return config_from_args(build_parser().parse_args(["serve", "--api-key", "k", *argv])).min_upload_bytes_per_s

    assert rate() == 10 * 1024 == ServerConfig().min_upload_bytes_per_s
    assert rate("--min-upload-rate", "0.5") == 512
    assert rate("--min-upload-rate", "0") == 0
    with pytest.raises(SystemExit):
        rate("--min-upload-rate", "-1")
    with pytest.raises(InvalidInputError, match=r"min_upload_bytes_per_s must be >= 0, got -1"):
        ServerConfig(min_upload_bytes_per_s=-1)
