"""Session 32 (query): the server's numeric options are read as the command line reads numbers
(``commands._number``: ASCII digits, a sign, a point, an exponent). pydantic read ``strength=0.1_0``
as 0.1 and ``quality=9_0`` as 90, which ``--strength`` / ``--quality`` refuse; now they get FastAPI's
422 for a malformed value, as ``strength=abc`` does, and /v1/live closes (1008) or answers an error
event. The OpenAPI document still says number / integer with the same bounds."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("fastapi")

from starlette.websockets import WebSocketDisconnect  # noqa: E402

from tests.test_server import KEY, FakeEnhancer, client_for, post_image  # noqa: E402

IMG = np.zeros((8, 8, 3), np.uint8)
ARABIC_HALF = "\u0660\u066b\u0665"  # ٠٫٥ (0.5 in Arabic-Indic digits)


@pytest.fixture
def client(tmp_path):
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        yield c


def _malformed(r, name: str, kind: str) -> None:
    """FastAPI's 422 for a value that is no number (what ``?strength=abc`` gets)."""
    assert r.status_code == 422, (r.status_code, r.text)
    (err,) = r.json()["detail"]
    assert (err["loc"], err["type"]) == (["query", name], f"{kind}_parsing"), err


@pytest.mark.parametrize("value", ["0.1_0", "0_0.5", "1e-0_1", ARABIC_HALF, "abc"])
def test_image_strength_refuses_what_the_command_line_refuses(client, value):
    _malformed(post_image(client, IMG, strength=value), "strength", "float")


@pytest.mark.parametrize("value", ["9_0", "5_0", "50.0", "\u0665\u0660", "abc"])
def test_image_quality_refuses_what_the_command_line_refuses(client, value):
    _malformed(post_image(client, IMG, quality=value, format="jpeg"), "quality", "int")


@pytest.mark.parametrize("value,shown", [("0.25", "0.25"), ("+0.5", "0.5"), ("1e-1", "0.1"), (" .75 ", "0.75")])
def test_image_strength_still_takes_plain_numbers(client, value, shown):
    r = post_image(client, IMG, strength=value, quality="+80", format="jpeg")
    assert r.status_code == 200, r.text
    assert r.headers["X-Strength"] == shown


def test_image_bounds_still_hold(client):
    for params in ({"strength": "2"}, {"strength": "inf"}, {"strength": "nan"}, {"quality": "0"}, {"quality": "101"}):
        assert post_image(client, IMG, **params).status_code == 422, params


def test_video_strength_refused_before_the_upload(client):
    r = client.post("/v1/videos", params={"strength": "0.1_0"}, content=b"video",
                    headers={**KEY, "Content-Type": "video/mp4"})
    _malformed(r, "strength", "float")
    r = client.post("/v1/videos", params={"strength": "0.25"}, content=b"video",
                    headers={**KEY, "Content-Type": "video/mp4"})
    assert r.status_code == 202 and r.json()["strength"] == 0.25


def test_live_query_strength(client):
    with pytest.raises(WebSocketDisconnect) as e:
        with client.websocket_connect("/v1/live?key=k3y&strength=0.1_0") as ws:
            ws.receive_text()
    assert e.value.code == 1008 and e.value.reason.startswith("strength: "), e.value.reason
    with client.websocket_connect("/v1/live?key=k3y&strength=0.5") as ws:
        assert json.loads(ws.receive_text())["strength"] == 0.5


def test_live_message_strength(client):
    with client.websocket_connect("/v1/live?key=k3y") as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        for bad in ("0.1_0", ARABIC_HALF):
            ws.send_text(json.dumps({"strength": bad}))
            ev = json.loads(ws.receive_text())
            assert ev["type"] == "error" and "strength must be a number in [0, 1]" in ev["detail"], ev
        ws.send_text(json.dumps({"strength": "0.5"}))
        ev = json.loads(ws.receive_text())
        assert ev["type"] == "options" and ev["strength"] == 0.5, ev


def test_openapi_still_documents_numbers(client):
    doc = client.get("/openapi.json").json()
    params = {(path, p["name"]): p["schema"] for path, ops in doc["paths"].items()
              for op in ops.values() for p in op.get("parameters", [])}
    strength = {"type": "number", "minimum": 0.0, "maximum": 1.0}
    for path in ("/v1/images:enhance", "/v1/videos"):
        assert params[(path, "strength")]["anyOf"] == [strength, {"type": "null"}]
    assert params[("/v1/images:enhance", "quality")]["anyOf"] == [
        {"type": "integer", "minimum": 1, "maximum": 100}, {"type": "null"}]
