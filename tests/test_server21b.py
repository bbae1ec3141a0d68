"""Hunt 21 (server21, findings 2 and 3): the live page's key out of the WebSocket URL, and a server
behind a reverse proxy at a sub-path (``serve --root-path``)."""
from __future__ import annotations

import asyncio
import base64
import logging

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from stream_gpen.server import ServerConfig, create_app  # noqa: E402
from test_server import KEY, FakeEnhancer, client_for, real_server, wait_for  # noqa: E402


def key_protocol(key: str) -> str:
    """What the live page offers: "key." + the key's UTF-8 bytes in base64url, unpadded."""
    return "key." + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


# --- 3. behind a proxy at a sub-path -----------------------------------------------------------------
def test_serve_root_path_is_checked_and_given_to_uvicorn(monkeypatch, capsys):
    import stream_gpen.commands as commands
    import stream_gpen.server.cli as server_cli
    from stream_gpen.cli import build_parser, main

    for bad in ("gpen", "/gpen/", "/gp en", "/gpén", "//"):
        assert main(["serve", "--root-path", bad]) == 2, bad
        assert "expected a path such as /gpen" in capsys.readouterr().err
    parse = build_parser().parse_args
    assert parse(["serve"]).root_path == "" and parse(["serve", "--root-path", "/"]).root_path == ""

    seen = {}

    class Server:
        started = True

        def __init__(self, config) -> None:
            seen["root_path"] = config.root_path

        def run(self) -> None:
            pass

    monkeypatch.setattr(commands, "_make_enhancer", lambda args: FakeEnhancer())
    monkeypatch.setattr(server_cli, "_check_port", lambda host, port: None)
    monkeypatch.setattr(server_cli, "_server_class", lambda: Server)
    assert server_cli._run_serve(parse(["serve", "--root-path", "/tools/gpen", "--device", "cpu"])) == 0
    assert seen["root_path"] == "/tools/gpen"


def test_behind_a_root_path_every_link_points_under_it(tmp_path):
    """uvicorn with --root-path hands ``/gpen/...`` on (as TestClient(root_path=...) does here): the
    page's URLs are relative, and Location, ``result`` and /docs carry the prefix; the key is still
    needed (a check of "/v1/" on the whole path let everything past it), and a video upload still gets
    --max-video-mb, not --max-upload-mb."""
    app = create_app(FakeEnhancer(), config=ServerConfig(api_key="k3y", work_dir=tmp_path, max_upload_bytes=1000))
    with TestClient(app, root_path="/gpen") as c:
        page = c.get("/gpen/").text
        assert 'fetch("v1/models"' in page and 'new URL("v1/live", location.href)' in page
        assert '"/v1/' not in page and "${location.host}/" not in page
        assert "url: '/gpen/openapi.json'" in c.get("/gpen/docs").text
        assert c.get("/gpen/openapi.json").json()["servers"] == [{"url": "/gpen"}]

        for path in ("/gpen/v1/models", "/gpen/metrics"):
            assert c.get(path).status_code == 401, path
        assert c.get("/gpen/v1/models", headers=KEY).status_code == 200

        # a proxy's X-Forwarded-Prefix is not trusted: --root-path says where the server is
        r = c.post("/gpen/v1/videos", content=b"v" * 2000,
                   headers={**KEY, "Content-Type": "video/mp4", "X-Forwarded-Prefix": "/evil"})
        assert r.status_code == 202, r.text
        job = r.json()["id"]
        assert r.headers["location"] == f"/gpen/v1/videos/{job}"
        out = {}

        def done():
            out.update(c.get(f"/gpen/v1/videos/{job}", headers=KEY).json())
            return out["state"] == "done"

        wait_for(done, what="the job")
        assert out["result"] == f"/gpen/v1/videos/{job}/result"
        assert c.get(out["result"], headers=KEY).content == b"video:" + b"v" * 2000

    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:  # no --root-path: as before
        r = c.post("/v1/videos", content=b"v", headers={**KEY, "Content-Type": "video/mp4",
                                                        "X-Forwarded-Prefix": "/evil"})
        assert r.headers["location"] == f"/v1/videos/{r.json()['id']}"


# --- 2. the live page's key: a subprotocol, not the URL ------------------------------------------------
def test_live_takes_the_key_as_a_subprotocol_and_echoes_stream_gpen():
    with client_for(FakeEnhancer(), api_key="pässwort") as c:
        with c.websocket_connect("/v1/live", subprotocols=["stream-gpen", key_protocol("pässwort")]) as ws:
            assert ws.accepted_subprotocol == "stream-gpen"  # (a browser fails a connection without it)
            assert ws.receive_json()["type"] == "ready"
        for wrong in (key_protocol("passwort"), "key.", "key.!!!*"):
            with c.websocket_connect("/v1/live", subprotocols=["stream-gpen", wrong]) as ws:
                assert ws.accepted_subprotocol == "stream-gpen"  # so the page sees the reason
                with pytest.raises(WebSocketDisconnect) as e:
                    ws.receive_json()
                assert e.value.code == 1008 and "missing or wrong API key" in e.value.reason, wrong
        # the header and ?key= (non-browser clients) still work
        with c.websocket_connect("/v1/live", headers={"X-API-Key": "pässwort".encode()}) as ws:
            assert ws.accepted_subprotocol is None and ws.receive_json()["type"] == "ready"
        with c.websocket_connect("/v1/live?key=pässwort") as ws:
            assert ws.receive_json()["type"] == "ready"


def test_live_key_through_uvicorn_at_a_root_path_is_in_no_log(caplog):
    """As the page connects behind a proxy at /gpen (the proxy strips the prefix): the key in the
    subprotocol list reaches no access log or other log line, and the answer names stream-gpen."""
    websockets = pytest.importorskip("websockets")
    import httpx

    secret = "S3cretKey"
    app = create_app(FakeEnhancer(), config=ServerConfig(api_key=secret))

    async def live(url: str, protocols):
        async with websockets.connect(url, subprotocols=protocols) as ws:
            return ws.subprotocol, await asyncio.wait_for(ws.recv(), 20)

    caplog.set_level(logging.DEBUG)
    # (info: the access log; at debug uvicorn logs every handshake header, an X-API-Key too, and
    # `serve` runs it at warning)
    with real_server(app, root_path="/gpen", log_config=None, log_level="info") as (host, port):
        base = f"http://{host}:{port}"
        protocol, first = asyncio.run(live(f"ws://{host}:{port}/v1/live", ["stream-gpen", key_protocol(secret)]))
        assert protocol == "stream-gpen" and '"ready"' in first
        r = httpx.post(base + "/v1/videos", content=b"v", headers={"X-API-Key": secret, "Content-Type": "video/mp4"})
        assert r.status_code == 202 and r.headers["location"].startswith("/gpen/v1/videos/")
        assert "url: '/gpen/openapi.json'" in httpx.get(base + "/docs").text
    # (the test's websockets client logs its own handshake at debug)
    logged = [f"{r.name}: {r.getMessage()}" for r in caplog.records if not r.name.startswith("websockets")]
    assert any("uvicorn" in m and "/v1/live" in m for m in logged)  # (the access log ran)
    assert not [m for m in logged if secret in m or key_protocol(secret) in m]
