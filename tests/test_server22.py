"""Hunt 22 (server22): SIGHUP drains as SIGTERM does, a killed server's temporary work folder is
reclaimed, cross-site and rebinding requests are refused, a curl --data upload is said as such."""
from __future__ import annotations

import os
import signal
import sys

import pytest

pytest.importorskip("fastapi")

from test_server import KEY, FakeEnhancer, client_for  # noqa: E402

VIDEO = {**KEY, "Content-Type": "video/mp4"}


# --- 1. SIGHUP (a closed terminal) stops `serve` gracefully, as SIGTERM does --------------------------
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_is_a_graceful_stop():
    import uvicorn

    from stream_gpen.server.cli import _server_class

    before = signal.getsignal(signal.SIGHUP)
    with client_for(FakeEnhancer()) as c:
        server = _server_class()(uvicorn.Config(c.app))
        with server.capture_signals():
            os.kill(os.getpid(), signal.SIGHUP)  # (it killed the process: the default action)
            assert server.should_exit and server._captured_signals == [signal.SIGHUP]
            server._captured_signals.clear()  # (uvicorn re-raises it on leaving: not in a test)
            r = c.post("/v1/videos", content=b"x", headers=VIDEO)
            assert r.status_code == 503 and r.json()["detail"] == "the server is shutting down"
    assert signal.getsignal(signal.SIGHUP) == before


# --- 2. a killed server's temporary work folder (no --work-dir) is removed by the next one -----------
@pytest.mark.skipif(sys.platform == "win32", reason="no flock: such folders are not reclaimed")
def test_a_killed_servers_temporary_folder_is_reclaimed(tmp_path, monkeypatch, caplog):
    import logging
    import tempfile

    from stream_gpen.server._jobs import TEMP_LOCK_NAME, make_temp_work_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / "stream-gpen-serve-dead1234"  # its server was killed: the lock is free
    (dead / "Job_id_of_22_chars_xx").mkdir(parents=True)
    (dead / "Job_id_of_22_chars_xx" / "upload.bin").write_bytes(b"u" * 100)
    (dead / TEMP_LOCK_NAME).write_text("")
    live, lock = make_temp_work_dir()  # another server, running
    (live / "upload.bin").write_bytes(b"x")
    starting = tmp_path / "stream-gpen-serve-starting"  # no lock file (yet): left alone
    starting.mkdir()
    other = tmp_path / "something-else"
    other.mkdir()
    (other / TEMP_LOCK_NAME).write_text("")
    try:
        with caplog.at_level(logging.INFO, logger="stream_gpen.server._jobs"):
            with client_for(FakeEnhancer()) as c:
                own = c.app.state.runtime["jobs"].work_dir
                assert own.parent == tmp_path and (own / TEMP_LOCK_NAME).is_file()
                assert not dead.exists()
                assert (live / "upload.bin").exists() and starting.exists() and other.exists()
        assert not own.exists()
        assert "removed 1 temporary work folder(s) (100 bytes)" in caplog.text
    finally:
        lock.close()


# --- 3. other sites' pages and rebound host names are refused ----------------------------------------
LOCAL = ("localhost", "127.0.0.1", "::1")


def test_cross_site_requests_are_refused():
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from stream_gpen.server import ServerConfig, create_app

    app = create_app(FakeEnhancer(), config=ServerConfig(allowed_hosts=LOCAL))
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        evil = {"Origin": "http://evil.example"}
        r = c.post("/v1/videos", files={"file": ("v.mp4", b"v")}, headers=evil)  # (a "simple" form post)
        assert r.status_code == 403 and r.json()["error"] == "ForbiddenRequestError", r.text
        assert "--allow-origin" in r.json()["hint"]
        assert c.post("/v1/videos", content=b"v", headers={"Origin": "http://127.0.0.1:9999"}).status_code == 403
        assert c.post("/v1/videos", content=b"v", headers={"Origin": "null"}).status_code == 403
        assert c.get("/v1/models", headers=evil).status_code == 200  # (a read: the browser hides the answer)
        here = {"Host": "127.0.0.1:8000"}  # (the test client's WebSocket says "testserver")
        with c.websocket_connect("/v1/live", headers={**evil, **here}) as ws:
            with pytest.raises(WebSocketDisconnect) as e:
                ws.receive_json()
        assert e.value.code == 1008 and "cross-site" in e.value.reason
        # the server's own pages (the live page, /docs) and clients without Origin (curl) are served
        r = c.post("/v1/videos", content=b"v", headers={"Origin": "http://127.0.0.1:8000", **VIDEO})
        assert r.status_code == 202, r.text
        assert c.post("/v1/videos", content=b"v", headers=VIDEO).status_code == 202
        with c.websocket_connect("/v1/live", headers={"Origin": "http://127.0.0.1:8000", **here}) as ws:
            assert ws.receive_json()["type"] == "ready"
        # DNS rebinding: a page of attacker.example whose name resolves to 127.0.0.1
        r = c.get("/metrics", headers={"Host": "attacker.example:8000"})
        assert r.status_code == 403 and "--allow-host" in r.json()["hint"]
        for host in ("localhost:8000", "[::1]:8000", "127.0.0.1"):
            assert c.get("/healthz", headers={"Host": host}).status_code == 200, host
        with c.websocket_connect("/v1/live", headers={"Host": "attacker.example:8000",
                                                      "Origin": "http://attacker.example:8000"}) as ws:
            with pytest.raises(WebSocketDisconnect) as e:
                ws.receive_json()
        assert e.value.code == 1008 and "attacker.example" in e.value.reason
        assert "stream_gpen_refused_total{reason=\"forbidden\"} 6" in c.get("/metrics").text


def test_allowed_origins_get_cors_answers():
    from fastapi.testclient import TestClient

    from stream_gpen.server import ServerConfig, create_app

    app = create_app(FakeEnhancer(), config=ServerConfig(api_key="k3y", allowed_origins=("https://App.example/",)))
    with TestClient(app) as c:
        app_origin = {"Origin": "https://app.example"}
        r = c.options("/v1/videos", headers={**app_origin, "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "x-api-key, content-type"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
        r = c.post("/v1/videos", content=b"v", headers={**VIDEO, **app_origin})
        assert r.status_code == 202 and "location" in r.headers["access-control-expose-headers"].lower()
        assert c.post("/v1/videos", content=b"v", headers={**VIDEO, "Origin": "https://other.example"}).status_code == 403


def test_serve_options_for_hosts_and_origins():
    from stream_gpen.cli import build_parser
    from stream_gpen.server.cli import config_from_args

    def config(*argv):
        return config_from_args(build_parser().parse_args(["serve", *argv]))

    assert config().allowed_hosts == LOCAL and config().allowed_origins == ()
    assert config("--host", "0.0.0.0").allowed_hosts is None  # (any name reaches it)
    assert config("--allow-host", "*").allowed_hosts is None
    assert "gpu.lan" in config("--host", "0.0.0.0", "--allow-host", "GPU.lan.").allowed_hosts
    assert config("--allow-origin", "http://localhost:3000", "--allow-origin", "*").allowed_origins == (
        "http://localhost:3000", "*")
    from stream_gpen.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="not an origin such as"):
        config("--allow-origin", "localhost:3000")


# --- 5. `curl --data @photo` (a form, newlines left out) is said as such ------------------------------
def test_a_curl_data_upload_gets_a_hint():
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "PNG")
    png = buf.getvalue()
    with client_for(FakeEnhancer()) as c:
        form = {**KEY, "Content-Type": "application/x-www-form-urlencoded"}
        for route, body in (("/v1/images:enhance", png), ("/v1/videos", b"\x00\x00\x00\x18ftypmp42")):
            r = c.post(route, content=body, headers=form)
            assert r.status_code == 415 and "--data-binary @FILE" in r.json()["hint"], (route, r.text)
            r = c.post(route, content=body, headers=KEY)  # (no Content-Type at all)
            assert r.status_code == 415 and "(none)" in r.json()["detail"] and "-F file=@FILE" in r.json()["hint"]
        stripped = png.replace(b"\r", b"").replace(b"\n", b"")
        r = c.post("/v1/images:enhance", content=stripped, headers={**KEY, "Content-Type": "image/png"})
        assert r.status_code == 400 and "newline bytes were left out" in r.json()["detail"], r.text


# --- 4. no ReDoc page (it loaded its script and Google's fonts from third parties) --------------------
def test_no_redoc_page_and_the_document_is_served():
    with client_for(FakeEnhancer()) as c:
        assert c.get("/redoc").status_code == 404
        assert c.get("/openapi.json").json()["info"]["title"] == "stream-gpen"
        assert c.get("/docs").status_code == 200


def test_openapi_types_the_binary_answers():
    # the result download and the image answer had no body schema (generated clients typed them as
    # JSON objects or nothing), and the result's 206/416 answers to a Range were not listed
    with client_for(FakeEnhancer()) as c:
        paths = c.get("/openapi.json").json()["paths"]
    binary = {"type": "string", "format": "binary"}
    image = paths["/v1/images:enhance"]["post"]["responses"]["200"]["content"]
    assert image and all(v.get("schema") == binary for v in image.values()), image
    result = paths["/v1/videos/{job_id}/result"]["get"]["responses"]
    assert result["200"]["content"]["video/*"]["schema"] == binary
    assert result["206"]["content"]["video/*"]["schema"] == binary and "416" in result


def test_a_malformed_multipart_body_leaves_no_bare_log_line(tmp_path, caplog):
    # python-multipart logged "Expected boundary character 45, got 255 at index 2" as a bare line
    # per refused body (the client gets that text in its 400 already)
    import logging

    caplog.set_level(logging.WARNING)
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        r = c.post("/v1/images:enhance", content=b"\xff\xd8\xff not a form",
                   headers={**KEY, "Content-Type": "multipart/form-data; boundary=xyz"})
        assert r.status_code == 400, r.text
    assert not [rec for rec in caplog.records if rec.name.startswith("python_multipart")], caplog.text


# --- regress22c -------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_a_nohup_server_and_run_keep_sighup_ignored():
    """`nohup stream-gpen serve &` (SIGHUP ignored from the start) drained and stopped when the SSH
    session ended; a nohup'd enhance stopped at logout, exit 129."""
    import uvicorn

    from stream_gpen.cli import _Signals
    from stream_gpen.server.cli import _server_class

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with client_for(FakeEnhancer()) as c:
            server = _server_class()(uvicorn.Config(c.app))
            with server.capture_signals():
                assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        with _Signals():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_allow_host_with_a_port_and_a_proxy_host_without_one():
    """`--allow-host NAME:PORT` never matched (every request 403, the error listing that very name);
    a page at https://host:8443 behind nginx's `Host $host` (no port) had its own POSTs refused."""
    from stream_gpen.server._config import ServerConfig, same_origin

    assert ServerConfig(allowed_hosts=("gpen.example:8443", "[::1]:8000")).allowed_hosts == ("gpen.example", "::1")
    assert ServerConfig(allowed_hosts=("gpen.example", "*")).allowed_hosts is None  # ("*": any, also from the API)
    assert same_origin("https://gpen.example:8443", "gpen.example")
    assert same_origin("https://gpen.example:8443", "gpen.example:8443")
    assert not same_origin("https://gpen.example:8443", "gpen.example:9000")
    assert not same_origin("https://evil.example:8443", "gpen.example")


def test_a_jpeg_sent_with_curl_data_gets_the_data_binary_hint(tmp_path):
    """regress22c: only a PNG got the hint; a JPEG with its newline bytes left out said "cannot
    decode"; the 415's hint named video/mp4 on the image route."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(buf, "JPEG")
    stripped = buf.getvalue()[:40]  # (a JPEG that does not decode: here cut inside its header)
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        r = c.post("/v1/images:enhance", content=stripped, headers={**KEY, "Content-Type": "image/jpeg"})
        assert r.status_code == 400 and "--data-binary" in r.json()["hint"], r.text
        r = c.post("/v1/images:enhance", content=buf.getvalue(),
                   headers={**KEY, "Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415 and "image/jpeg" in r.json()["hint"] and "video/mp4" not in r.json()["hint"]


def test_a_video_jobs_pipeline_warnings_name_the_job(tmp_path, caplog):
    """server22 #6: a warning the pipeline logged during a job ("audio stream #1 transcoded to
    aac") named no job: with several uploads an operator could not tell which one it was about."""
    import logging

    from test_server import wait_job

    class Noisy(FakeEnhancer):
        def enhance_file(self, src, dst, **kw):
            logging.getLogger("stream_gpen.io._sink").warning("audio stream #1 (pcm_s16le) transcoded to aac")
            return super().enhance_file(src, dst, **kw)

    caplog.set_level(logging.WARNING)
    with client_for(Noisy(frames=1), work_dir=tmp_path) as c:
        r = c.post("/v1/videos", content=b"v", headers=VIDEO)
        job = r.json()["id"]
        assert wait_job(c, job)["state"] == "done"
    said = [rec.getMessage() for rec in caplog.records if "transcoded to aac" in rec.getMessage()]
    assert said == [f"video job {job}: audio stream #1 (pcm_s16le) transcoded to aac"], said


def test_the_job_log_prefix_never_breaks_a_log_call():
    """review22: the job filter called getMessage() unguarded (a malformed log call raised in the
    job's threads) and read threadName as a string (None with logging.logThreads off)."""
    import logging

    from stream_gpen.server._jobs import _JobNamed

    named = _JobNamed("abc")
    bad = logging.LogRecord("stream_gpen.x", logging.WARNING, __file__, 1, "%d frames", ("many",), None)
    bad.threadName = "encode:o.mp4"
    assert named.filter(bad) is True
    none = logging.LogRecord("stream_gpen.x", logging.WARNING, __file__, 1, "hello", (), None)
    none.threadName = None
    assert named.filter(none) is True and none.msg == "hello"
