"""Server findings of hunt 15: multi-frame images, live refusals through a real server, form
fields named as options, JPEG metadata, HEAD, the view cache, storage failures of jobs, GIFs."""
from __future__ import annotations

import asyncio
import io
import warnings

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")

from stream_gpen.server import ServerConfig, create_app  # noqa: E402
from tests.test_server import KEY, FakeEnhancer, client_for, real_server, wait_job  # noqa: E402

IMAGE = "/v1/images:enhance"


@pytest.fixture
def fake():
    return FakeEnhancer()


def picture(seed: int = 1, size=(40, 60)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8))


def saved(frames: list[Image.Image], fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    if len(frames) > 1:
        kw.update(save_all=True, append_images=frames[1:])
    frames[0].save(buf, fmt, **kw)
    return buf.getvalue()


# --- 1. animated / multi-page images: refused, not answered with frame 1 --------------------------
@pytest.mark.parametrize("fmt", ["WEBP", "PNG", "TIFF", "GIF"])
def test_multi_frame_images_are_refused_not_cut_to_one_frame(fake, fmt):
    data = saved([picture(1), picture(2), picture(3)], fmt, duration=200, loop=0)
    with client_for(fake) as c:
        r = c.post(IMAGE, content=data, headers={**KEY, "Content-Type": "application/octet-stream"})
    assert r.status_code == 415, r.text
    body = r.json()
    assert body["error"] == "UnsupportedImageError"
    assert f"animated or multi-page {fmt} (3 frames)" in body["detail"]
    assert "stream-gpen enhance" in body["detail"]
    assert ("/v1/videos" in body["detail"]) == (fmt == "GIF")  # (the video route reads animated GIFs)
    assert fake.batches == []


# --- 8. GIFs: a still one is a photo (answered as PNG), an animated one a video ------------------
def test_a_still_gif_is_a_photo_and_image_gif_is_a_video_type(fake, tmp_path):
    with client_for(fake, work_dir=tmp_path) as c:
        r = c.post(IMAGE, content=saved([picture(1)], "GIF"), headers={**KEY, "Content-Type": "image/gif"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/png" and fake.batches == [1]
        with Image.open(io.BytesIO(r.content)) as out:
            assert out.format == "PNG" and out.size == (60, 40)
        r = c.post("/v1/videos", content=b"gif", headers={**KEY, "Content-Type": "image/gif"})
        assert r.status_code == 202, r.text
        assert wait_job(c, r.json()["id"])["state"] == "done"


# --- 2. /v1/live refusals keep their close code and reason through uvicorn -------------------------
def test_live_refusals_reach_a_real_client_with_code_and_reason(fake):
    websockets = pytest.importorskip("websockets")
    app = create_app(fake, config=ServerConfig(api_key="k3y"))

    async def closed(url: str):
        async with websockets.connect(url) as ws:
            with pytest.raises(websockets.ConnectionClosed) as e:
                await asyncio.wait_for(ws.recv(), 20)
        return e.value.rcvd.code, e.value.rcvd.reason

    with real_server(app, log_level="warning") as (host, port):
        base = f"ws://{host}:{port}/v1/live"
        cases = {
            "": (1008, "missing or wrong API key"),
            "?key=nope": (1008, "missing or wrong API key"),
            "?key=k3y&strenght=0.5": (1008, "did you mean 'strength'?"),
            "?key=k3y&faces=bogus": (1008, "faces must be one of"),
            "?key=k3y&strength=7": (1008, "strength must be a number in [0, 1]"),
            "?key=k3y&aligned=maybe": (1008, "aligned"),
        }
        for query, (code, reason) in cases.items():
            got = asyncio.run(closed(base + query))
            assert got[0] == code and reason in got[1], (query, got)


# --- 4. multipart form fields named as options: refused, not silently ignored ----------------------
def test_form_fields_named_as_options_are_refused(fake, tmp_path):
    png = saved([picture(1)], "PNG")
    with client_for(fake, work_dir=tmp_path) as c:
        r = c.post(IMAGE, files={"file": ("a.png", png, "image/png")}, data={"strength": "0"}, headers=KEY)
        assert r.status_code == 422, r.headers
        assert r.json()["error"] == "FormOptionError"
        assert "send strength as a query parameter (?strength=...)" in r.json()["detail"]
        r = c.post("/v1/videos", files={"file": ("a.mp4", b"v", "video/mp4")}, data={"start": "3"}, headers=KEY)
        assert r.status_code == 422 and "?start=" in r.json()["detail"], r.text
        assert list((tmp_path / "jobs").iterdir()) == []
        # other form fields (a name, a token) are still read past
        r = c.post(IMAGE, files={"file": ("a.png", png, "image/png")}, data={"title": "me"},
                   params={"format": "png"}, headers=KEY)
        assert r.status_code == 200, r.text
    assert fake.batches == [1]


# --- 3. JPEG print resolution, chroma subsampling and XMP come back as enhance keeps them ----------
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')


def test_jpeg_dpi_subsampling_and_xmp_are_kept(fake):
    from PIL import JpegImagePlugin

    data = saved([picture(1)], "JPEG", dpi=(300, 300), subsampling=0, xmp=XMP, quality=95)
    with client_for(fake) as c:
        for fmt in ("jpeg", "png", "webp"):
            r = c.post(IMAGE, content=data, params={"format": fmt}, headers={**KEY, "Content-Type": "image/jpeg"})
            assert r.status_code == 200, r.text
            with Image.open(io.BytesIO(r.content)) as out:
                xmp = out.info.get("xmp") or out.info.get("XML:com.adobe.xmp")
                assert xmp and 'tiff:Orientation="1"' in (xmp.decode() if isinstance(xmp, bytes) else xmp), fmt
                if fmt != "webp":  # (WebP has no print resolution)
                    assert tuple(round(d) for d in out.info["dpi"]) == (300, 300), fmt
                if fmt == "jpeg":
                    assert JpegImagePlugin.get_sampling(out) == 0  # 4:4:4 stays 4:4:4
    # a PNG upload without a resolution gets none invented
    with client_for(fake) as c:
        r = c.post(IMAGE, content=saved([picture(1)], "PNG"), params={"format": "jpeg"},
                   headers={**KEY, "Content-Type": "image/png"})
        with Image.open(io.BytesIO(r.content)) as out:
            assert out.info.get("dpi") in (None, (1, 1)) and "xmp" not in out.info


# --- 5. HEAD on the GET routes ------------------------------------------------------------------------
def test_head_is_answered_on_get_routes(fake, tmp_path):
    with client_for(fake, work_dir=tmp_path) as c:
        job = c.post("/v1/videos", content=b"clip", headers={**KEY, "Content-Type": "video/mp4"}).json()
        assert wait_job(c, job["id"])["state"] == "done"
        for path in ("/healthz", "/metrics", "/v1/models", f"/v1/videos/{job['id']}",
                     f"/v1/videos/{job['id']}/result", "/"):
            get, head = c.get(path, headers=KEY), c.head(path, headers=KEY)
            assert head.status_code == get.status_code == 200, (path, head.status_code)
            assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"], path
        head = c.head(f"/v1/videos/{job['id']}/result", headers=KEY)
        assert head.headers["content-length"] == str(len(b"video:clip")) and head.headers["accept-ranges"] == "bytes"
        assert c.head("/v1/models").status_code == 401  # the key is still required
        assert c.head("/v1/videos/nope", headers=KEY).status_code == 404
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # (no "Duplicate Operation ID": HEAD stays out of /docs)
            ops = c.get("/openapi.json").json()["paths"]
        assert list(ops["/healthz"]) == ["get"]


# --- 9. the view cache is bounded -------------------------------------------------------------------
def test_views_per_strength_are_bounded():
    from stream_gpen.server._models import MAX_VIEWS, ModelSet

    models = ModelSet({"fake": FakeEnhancer()})
    first = models.view(strength=0.5)
    for i in range(MAX_VIEWS * 3):
        models.view(strength=i / (MAX_VIEWS * 3))
        assert models.view(strength=0.5) is first  # (the one used all along stays)
    assert len(models._views) == MAX_VIEWS
    v = models.view(strength=0.123456)
    assert (v.strength, v.faces) == (0.123456, "all") and models.view(strength=0.123456) is v


# --- 7. a job failed by the server's own disk: a storage error to retry, no temp file names ----------
class DiskFull(FakeEnhancer):
    def enhance_file(self, src, dst, **kw):
        import errno
        from pathlib import Path

        from stream_gpen.errors import EncodeError

        tmp = Path(dst).parent / ".result.e159c9a1-24533-3c995b50.tmp.mp4"
        try:
            raise OSError(errno.EFBIG, "File too large", str(tmp))
        except OSError as e:
            raise EncodeError(f"finishing {dst} failed: {e}") from e


def test_a_job_failed_by_the_servers_disk_is_a_storage_error(tmp_path):
    with client_for(DiskFull(), work_dir=tmp_path) as c:
        job = c.post("/v1/videos", content=b"clip", headers={**KEY, "Content-Type": "video/mp4"}).json()
        info = wait_job(c, job["id"])
    assert info["state"] == "failed"
    assert info["error"] == "StorageError: the server could not store the result (File too large); retry later"


# --- 6. /docs: the key as security schemes, the error answers described -------------------------------
def test_openapi_has_the_key_and_the_error_answers(fake):
    with client_for(fake) as c:  # (with --api-key k3y)
        doc = c.get("/openapi.json").json()
    assert set(doc["components"]["securitySchemes"]) == {"APIKeyHeader", "Bearer"}
    assert doc["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    image = doc["paths"]["/v1/images:enhance"]["post"]
    assert image["security"] and {"400", "401", "413", "415", "429", "503"} <= set(image["responses"])
    assert image["responses"]["413"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert {"image/heic", "image/gif", "application/octet-stream"} <= set(image["requestBody"]["content"])
    assert "507" in doc["paths"]["/v1/videos"]["post"]["responses"]
    job = doc["paths"]["/v1/videos/{job_id}"]["get"]["responses"]
    assert "404" in job and "422" not in job
    assert "security" not in doc["paths"]["/healthz"]["get"]
    with client_for(fake, api_key=None) as c:
        doc = c.get("/openapi.json").json()
    assert "securitySchemes" not in doc["components"]
    assert "401" not in doc["paths"]["/v1/images:enhance"]["post"]["responses"]


# --- 10. the server's own 422 for an unknown query parameter has an `error`, as its other answers -------
def test_unknown_query_answer_names_its_error(fake):
    with client_for(fake) as c:
        r = c.post(IMAGE, params={"strenght": "0"}, content=b"x", headers={**KEY, "Content-Type": "image/png"})
    assert r.status_code == 422
    assert r.json() == {"detail": "unknown query parameter 'strenght' (did you mean 'strength'?)",
                        "error": "UnknownOptionError"}


# --- 10. a too-short live message replaced by a newer frame is said, not dropped unseen -----------------
def test_a_short_live_message_replaced_while_busy_is_said():
    import json
    import threading

    from stream_gpen.server._live import HEADER, KIND_JPEG

    fake = FakeEnhancer()
    fake.gate = threading.Event()
    frame = saved([picture(1, (8, 8))], "JPEG")
    with client_for(fake, batch_wait_ms=0) as c, c.websocket_connect("/v1/live", headers=KEY) as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        ws.send_bytes(HEADER.pack(1, 0, 0, KIND_JPEG) + frame)
        assert fake.entered.wait(20)  # frame 1 is in the model
        ws.send_bytes(b"short")
        ws.send_bytes(HEADER.pack(2, 0, 0, KIND_JPEG) + frame)
        assert json.loads(ws.receive_text()) == {
            "type": "error", "seq": None, "detail": f"live frame shorter than its {HEADER.size}-byte header"}
        fake.gate.set()
        got = []
        while len(got) < 2:
            msg = ws.receive()
            if msg.get("bytes"):
                got.append(HEADER.unpack_from(msg["bytes"])[0])
        assert got == [1, 2]


def test_a_query_parameter_given_twice_is_refused(fake):
    with client_for(fake) as c:
        r = c.post(IMAGE + "?strength=0.3&strength=0.9", content=b"x", headers={**KEY, "Content-Type": "image/png"})
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == "query parameter 'strength' given 2 times; give it once"
    assert fake.batches == []
