"""HTTP API tests: every endpoint and error path, with a tiny random-weight GPEN and test doubles.

The real model (random weights, size 64) plus the real MobileNet detector check that images,
videos and live frames really go through the pipeline; a ``FakeEnhancer`` makes queue limits,
cancellation, expiry and device exclusion deterministic.
"""
from __future__ import annotations

import contextlib
import io
import json
import struct
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from stream_gpen.errors import Interrupted, InvalidInputError  # noqa: E402
from stream_gpen.server import ServerConfig, create_app  # noqa: E402
from stream_gpen.server._live import HEADER, KIND_JPEG, KIND_RGBA  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "samples" / "astronaut_degraded.jpg"
KEY = {"X-API-Key": "k3y"}


# --- inputs ---------------------------------------------------------------------------------------
def encode(arr: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def ask_png(client, arr: np.ndarray, **params):
    """POST ``arr`` as PNG to the image route, answer as PNG: ``(response, int array)``; must be 200."""
    r = client.post("/v1/images:enhance", content=encode(arr, "PNG"), params={"format": "png", **params},
                    headers={**KEY, "Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    return r, decode(r.content).astype(int)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    # 256x256: the face stays detectable and the CPU cost stays small.
    return np.asarray(Image.open(PHOTO).convert("RGB").resize((256, 256)))


def make_clip(path: Path, frame: np.ndarray, n: int = 6) -> Path:
    from tests._clips import write_video

    return write_video(path, (np.roll(frame, i, axis=1) for i in range(n)), rate=10)


def count_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


# --- test doubles -----------------------------------------------------------------------------------
class FakeRestorer:
    size = 64
    device = torch.device("cpu")
    name = "fake"
    fallbacks: list = []

    def __call__(self, crops):
        return crops


class FakeEnhancer:
    """Inverts images; optional gate to hold a batch; records concurrency; fake video jobs."""

    def __init__(self, *, name: str = "fake", frames: int = 3, frame_delay: float = 0.0) -> None:
        self.device = torch.device("cpu")
        self.faces = "all"
        self.restorer = FakeRestorer()
        self.model_name = name
        self.precision = "fp32"
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.batches: list[int] = []
        self.faces_seen: list[str] = []
        self.frames = frames
        self.frame_delay = frame_delay
        self.video_order: list[str] = []
        self.untrusted_seen: list[bool] = []
        self.max_pixels_seen: list[int | None] = []
        self._active = 0
        self.overlap = False
        self._mu = threading.Lock()

    def _all_fallbacks(self):
        return []

    def _enter(self):
        with self._mu:
            self._active += 1
            self.overlap |= self._active > 1

    def _leave(self):
        with self._mu:
            self._active -= 1

    def enhance_images(self, images):
        self._enter()
        try:
            self.entered.set()
            if self.gate is not None:
                assert self.gate.wait(20), "test gate never opened"
            self.batches.append(len(images))
            self.faces_seen.append(self.faces)
            self.restorer(torch.zeros(len(images), 3, 64, 64))  # "one face per image" for the counter
            return [255 - im for im in images]
        finally:
            self._leave()

    def enhance_file(self, src, dst, *, overwrite, on_progress, cancel, untrusted=False, max_pixels=None):
        from stream_gpen.summary import RunSummary

        self.video_order.append(Path(src).read_bytes().decode())
        self.untrusted_seen.append(untrusted)
        self.max_pixels_seen.append(max_pixels)
        for i in range(self.frames):
            self._enter()
            try:
                time.sleep(self.frame_delay)
            finally:
                self._leave()
            on_progress(i + 1, self.frames + 1, i + 1)  # a header's estimate, one frame too many
            if cancel.is_set():
                raise Interrupted(f"interrupted after {i + 1} frames")
        Path(dst).write_bytes(b"video:" + Path(src).read_bytes())
        return RunSummary(input=str(src), output=str(dst), model="fake", frames_in=self.frames,
                          frames_out=self.frames, faces_restored=self.frames)


def wait_for(pred, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def real_server(app, **config):
    """``app`` served by a real uvicorn on a free 127.0.0.1 port in a thread; yields the address."""
    import socket

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 30, "uvicorn start")
        yield sock.getsockname()
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def wait_job(client, job_id, states=("done", "failed", "cancelled"), headers=KEY, timeout=60.0):
    out = {}

    def done():
        out.update(client.get(f"/v1/videos/{job_id}", headers=headers).json())
        return out.get("state") in states

    wait_for(done, timeout, f"job {job_id} to reach {states}")
    return out


# --- the real tiny model -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_enhancer(mobilenet_weights):
    from stream_gpen import Enhancer
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator

    return Enhancer(random_generator(TINY_CONFIG), device="cpu", detector_weights=mobilenet_weights,
                    detect_size=320, batch_size=4)


@pytest.fixture(scope="module")
def real_client(tiny_enhancer):
    app = create_app(tiny_enhancer, config=ServerConfig(api_key="k3y", batch_wait_ms=20))
    with TestClient(app) as c:
        yield c


def test_image_real_model_raw_and_multipart(real_client, photo):
    r = real_client.post("/v1/images:enhance", content=encode(photo), headers={**KEY, "Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    out = decode(r.content)
    assert out.shape == photo.shape
    # The random-weight model paints nonsense over the face: the answer differs where the face is.
    diff = np.abs(out.astype(int) - photo.astype(int)).mean(axis=2)
    assert diff[60:200, 60:200].mean() > 3 * max(1.0, diff[:20, :20].mean())

    png = encode(photo, "PNG")
    r = real_client.post("/v1/images:enhance", files={"file": ("x.png", png, "image/png")},
                         params={"faces": "largest", "format": "webp"}, headers=KEY)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/webp" and r.headers["x-faces-option"] == "largest"
    assert decode(r.content).shape == photo.shape

    metrics = real_client.get("/metrics", headers=KEY).text
    faces = float(next(l.split()[1] for l in metrics.splitlines() if l.startswith("stream_gpen_faces_restored_total")))
    assert faces >= 2


def test_strength_per_request(real_client, photo, tmp_path):
    """strength=0 gives the face back as it was (up to the warp); the default pastes the model's
    output; out of range is a 422; a video job remembers its strength."""
    r1, full = ask_png(real_client, photo)
    r0, none = ask_png(real_client, photo, strength=0)
    assert r1.headers["x-strength"] == "1" and r0.headers["x-strength"] == "0"
    face = (slice(60, 200), slice(60, 200))
    assert np.abs(none - photo)[face].mean() < 0.5 * np.abs(full - photo)[face].mean()
    assert real_client.post("/v1/images:enhance", content=encode(photo), params={"strength": 1.5},
                            headers={**KEY, "Content-Type": "image/jpeg"}).status_code == 422
    clip = make_clip(tmp_path / "in.mp4", photo[::2, ::2].copy(), n=3)
    r = real_client.post("/v1/videos", content=clip.read_bytes(), params={"strength": 0.5},
                         headers={**KEY, "Content-Type": "video/mp4"})
    assert r.status_code == 202 and r.json()["strength"] == 0.5
    assert wait_job(real_client, r.json()["id"])["state"] == "done"
    # a window of the upload: 3 frames at 10 fps from 0.1 s for 0.2 s = frames 1 and 2
    r = real_client.post("/v1/videos", content=clip.read_bytes(), params={"start": 0.1, "duration": 0.2},
                         headers={**KEY, "Content-Type": "video/mp4"})
    assert r.status_code == 202 and (r.json()["start"], r.json()["duration"]) == (0.1, 0.2)
    info = wait_job(real_client, r.json()["id"])
    assert info["state"] == "done" and info["summary"]["frames_out"] == 2, info
    assert real_client.get("/v1/models", headers=KEY).json()["models"][0]["strength"] == 1.0


def test_video_job_real_model(real_client, photo, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", photo[::2, ::2].copy(), n=5)
    r = real_client.post("/v1/videos", content=clip.read_bytes(), headers={**KEY, "Content-Type": "video/mp4"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/videos/{job['id']}"
    assert len(job["id"]) == 22 and job["state"] in ("queued", "running", "done")
    info = wait_job(real_client, job["id"])
    assert info["state"] == "done", info
    assert info["frames_done"] == 5 and info["progress"] == 1.0
    assert info["summary"]["frames_out"] == 5 and info["summary"]["input"] == "the upload"  # no server paths leak
    res = real_client.get(info["result"], headers=KEY)
    assert res.status_code == 200 and res.headers["content-type"] == "video/mp4"
    (tmp_path / "out.mp4").write_bytes(res.content)
    assert count_frames(tmp_path / "out.mp4") == 5

    d = real_client.delete(f"/v1/videos/{job['id']}", headers=KEY)
    assert d.status_code == 200 and d.json()["deleted"] is True
    assert real_client.get(f"/v1/videos/{job['id']}", headers=KEY).status_code == 404

    # A playlist that points at a file on the server is not a video the server will read.
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:0.5,\n{tmp_path / 'in.mp4'}\n#EXT-X-ENDLIST\n"
    r = real_client.post("/v1/videos", content=playlist.encode(), headers={**KEY, "Content-Type": "video/mp4"})
    info = wait_job(real_client, r.json()["id"])
    assert info["state"] == "failed" and "NotMediaError" in info["error"], info


def test_live_websocket_real_model(real_client, photo):
    with real_client.websocket_connect("/v1/live?key=k3y&faces=all") as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        ws.send_bytes(HEADER.pack(7, 0, 0, KIND_JPEG) + encode(photo))
        data = ws.receive_bytes()
        seq, w, h, kind = HEADER.unpack_from(data)
        assert (seq, kind) == (7, KIND_JPEG)
        assert decode(data[HEADER.size:]).shape == photo.shape
        ev = json.loads(ws.receive_text())
        assert ev["type"] == "frame" and ev["seq"] == 7 and ev["server_ms"] > 0

        rgba = np.dstack([photo[:64, :96], np.full((64, 96), 255, np.uint8)])
        ws.send_bytes(HEADER.pack(8, 96, 64, KIND_RGBA) + rgba.tobytes())
        data = ws.receive_bytes()
        assert HEADER.unpack_from(data) == (8, 96, 64, KIND_RGBA)
        assert len(data) == HEADER.size + 96 * 64 * 4
        assert json.loads(ws.receive_text())["seq"] == 8

        ws.send_bytes(HEADER.pack(9, 10, 10, KIND_RGBA) + b"short")
        ev = json.loads(ws.receive_text())
        assert ev["type"] == "error" and ev["seq"] == 9 and "needs 400 bytes" in ev["detail"]
        ws.send_text(json.dumps({"faces": "sideways"}))
        ev = json.loads(ws.receive_text())
        assert ev["type"] == "error" and "faces must be one of" in ev["detail"]
        ws.send_text(json.dumps({"strength": 2}))
        ev = json.loads(ws.receive_text())
        assert ev["type"] == "error" and "strength must be a number in [0, 1]" in ev["detail"]
        for odd in ({"strength": [1]}, {"model": {"a": 1}}):  # wrong JSON types: an error, not a dropped socket
            ws.send_text(json.dumps(odd))
            ev = json.loads(ws.receive_text())
            assert ev["type"] == "error" and ev["detail"].startswith("bad options"), ev
        ws.send_text(json.dumps({"faces": "all", "strength": 0}))
        assert json.loads(ws.receive_text()) == {"type": "options", "model": None, "faces": "all", "strength": 0.0,
                                                 "aligned": False}
        ws.send_bytes(HEADER.pack(10, 0, 0, KIND_JPEG) + encode(photo, "PNG"))
        weak = decode(ws.receive_bytes()[HEADER.size:]).astype(int)
        assert json.loads(ws.receive_text())["seq"] == 10
        # strength 0: the face comes back close to the input (the random model would paint over it)
        assert np.abs(weak - photo)[60:200, 60:200].mean() < np.abs(weak - photo).mean() * 3 + 4
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as e:  # refused: accepted, then a policy close with the reason
        with real_client.websocket_connect("/v1/live?key=k3y&strength=7") as ws:
            ws.receive_text()
    assert e.value.code == 1008 and "strength must be a number in [0, 1]" in e.value.reason


# --- fake model: deterministic limits --------------------------------------------------------------
@pytest.fixture
def fake():
    return FakeEnhancer()


def client_for(enh, tmp_path=None, **cfg):
    cfg.setdefault("api_key", "k3y")
    return TestClient(create_app(enh, config=ServerConfig(**cfg)))


def post_image(c, arr, headers=KEY, **params):
    return c.post("/v1/images:enhance", content=encode(arr, "PNG"), params=params,
                  headers={**headers, "Content-Type": "image/png"})


def test_concurrent_requests_share_one_batch(fake):
    img = np.full((8, 8, 3), 10, np.uint8)
    with client_for(fake, batch_wait_ms=10_000, max_batch=4) as c:
        results = []
        threads = [threading.Thread(target=lambda: results.append(post_image(c, img))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert [r.status_code for r in results] == [200] * 4
        assert all((decode(r.content) == 245).all() for r in results)
        # A full batch does not wait out the 10 s bound, and all four went through in one call.
        assert fake.batches == [4]
        metrics = c.get("/metrics", headers=KEY).text
        assert 'stream_gpen_batch_images_bucket{le="4.0"} 1' in metrics
        assert "stream_gpen_images_total 4" in metrics


def test_options_are_per_request_and_validated(fake):
    img = np.zeros((8, 8, 3), np.uint8)
    with client_for(fake) as c:
        assert post_image(c, img, faces="center").status_code == 200
        assert fake.faces_seen == ["center"]
        assert fake.faces == "all"  # the shared Enhancer is not mutated
        r = post_image(c, img, model="gpen-bfr-9000")
        assert r.status_code == 400 and "unknown model 'gpen-bfr-9000'; this server has: fake" in r.json()["detail"]
        r = post_image(c, img, faces="sideways")
        assert r.status_code == 422 and "'all', 'largest' or 'center'" in r.text
        r = post_image(c, img, quality=0)
        assert r.status_code == 422
        info = c.get("/v1/models", headers=KEY).json()
        assert info["default"] == "fake" and info["faces"] == ["all", "largest", "center"]


def test_several_models_one_instance_each():
    a, b = FakeEnhancer(name="a"), FakeEnhancer(name="b")
    built = []

    def factory():
        built.append(1)
        return b

    img = np.zeros((4, 4, 3), np.uint8)
    with TestClient(create_app(a, models={"b": factory}, config=ServerConfig())) as c:
        for _ in range(3):
            assert post_image(c, img, headers={}, model="b").status_code == 200
        assert post_image(c, img, headers={}).status_code == 200
        assert c.get("/healthz").json()["models"] == ["a", "b"]
    assert built == [1] and b.batches == [1, 1, 1] and a.batches == [1]


@pytest.mark.parametrize(
    "body, ctype, status, match",
    [
        (b"", "image/png", 400, "empty request body"),
        (b"not an image at all", "image/jpeg", 400, "cannot decode the body as an image"),
        (encode(np.zeros((4, 4, 3), np.uint8), "PCX"), "image/x-pcx", 415, "unsupported image type 'PCX'"),
        (b"hello", "text/plain", 415, "unsupported content type 'text/plain'"),
        (encode(np.zeros((4, 4, 3), np.uint8), "JPEG")[:40], "image/jpeg", 400, "cannot decode the image"),
        (encode(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8), "PNG")[:2000],
         "image/png", 400, "cannot decode the PNG image"),
    ],
)
def test_bad_images(fake, body, ctype, status, match):
    with client_for(fake) as c:
        r = c.post("/v1/images:enhance", content=body, headers={**KEY, "Content-Type": ctype})
        assert r.status_code == status, r.text
        assert match in r.json()["detail"]
    assert fake.batches == []


def test_multipart_without_file_part(fake):
    with client_for(fake) as c:
        r = c.post("/v1/images:enhance", data={"other": "x"}, files={"nope": ("a.png", b"x", "image/png")}, headers=KEY)
        assert r.status_code == 400 and "file part named 'file'" in r.json()["detail"]


def test_multipart_video_upload_goes_straight_into_the_work_dir(tmp_path, monkeypatch):
    """A multipart video upload is written into the job's folder as it arrives: Starlette's form
    parser spooled it into the system's temporary folder first (outside --work-dir; a big video
    filled a small /tmp), then it was copied. Other form fields are read past; two 'file' parts
    or a body without a boundary are 400s, with nothing left on disk."""
    import starlette.formparsers

    class NoSpool:
        def __init__(self, *a, **kw):
            raise AssertionError("an upload was spooled into the system's temporary folder")

    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", NoSpool)
    body = b"0123456789abcdef" * (1 << 17)  # 2 MiB, past Starlette's 1 MiB in-memory spool
    fake = FakeEnhancer(frames=2)
    with client_for(fake, work_dir=tmp_path) as c:
        r = c.post("/v1/videos", data={"note": "from my phone"}, files={"file": ("clip.mp4", body, "video/mp4")},
                   headers=KEY)
        assert r.status_code == 202, r.text
        assert wait_job(c, r.json()["id"])["state"] == "done"
        assert fake.video_order == [body.decode()]  # the file part, bit for bit, and nothing else
        r = c.post("/v1/videos", files=[("file", ("a.mp4", b"one", "video/mp4")), ("file", ("b.mp4", b"two", "video/mp4"))],
                   headers=KEY)
        assert r.status_code == 400 and "more than one part named 'file'" in r.json()["detail"]
        r = c.post("/v1/videos", content=b"--x\r\n", headers={**KEY, "Content-Type": "multipart/form-data"})
        assert r.status_code == 400 and "boundary" in r.json()["detail"]
        cut = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nthe first half'
        r = c.post("/v1/videos", content=cut, headers={**KEY, "Content-Type": "multipart/form-data; boundary=xyz"})
        assert r.status_code == 400 and "cut short" in r.json()["detail"]
        assert len(list((tmp_path / "jobs").iterdir())) == 1  # the refused uploads left nothing
        r = c.post("/v1/images:enhance", files={"file": ("x.png", encode(np.zeros((8, 8, 3), np.uint8), "PNG"), "image/png")},
                   headers=KEY)
        assert r.status_code == 200, r.text


def test_size_and_pixel_limits(fake, tmp_path):
    big = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    with client_for(fake, max_upload_bytes=2000, max_pixels=32 * 32, max_video_bytes=1000, work_dir=tmp_path) as c:
        r = post_image(c, big)  # Content-Length over the limit: refused before reading
        assert r.status_code == 413 and "over the limit of 2000" in r.json()["detail"]
        # Chunked (no Content-Length): refused while reading.
        r = c.post("/v1/images:enhance", content=iter([encode(big, "PNG")[:1500], b"x" * 1500]),
                   headers={**KEY, "Content-Type": "image/png"})
        assert r.status_code == 413 and "over the limit of 2000 bytes" in r.json()["detail"]
        # Small file, many pixels: refused from the header, before decoding.
        r = post_image(c, np.zeros((40, 40, 3), np.uint8))
        assert r.status_code == 413 and "40x40 = 1600 pixels, over the limit of 1024" in r.json()["detail"]
        # Video too large while streaming to disk: nothing stays behind.
        r = c.post("/v1/videos", content=iter([b"v" * 800, b"v" * 800]), headers={**KEY, "Content-Type": "video/mp4"})
        assert r.status_code == 413
        assert list(tmp_path.rglob("*.bin")) == []
        assert 'stream_gpen_refused_total{reason="too_large"}' in c.get("/metrics", headers=KEY).text
    assert fake.batches == []


def test_api_key(fake):
    img = np.zeros((4, 4, 3), np.uint8)
    with client_for(fake) as c:
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
            r = post_image(c, img, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert "missing or wrong API key" in r.json()["detail"]
        assert c.get("/metrics").status_code == 401
        assert c.get("/v1/videos/" + "a" * 22).status_code == 401
        assert post_image(c, img, headers={"Authorization": "Bearer k3y"}).status_code == 200
        text = c.get("/metrics", headers={"X-API-Key": "k3y"}).text
        # refused requests are counted like the others (they were only in refused_total)
        assert 'stream_gpen_requests_total{route="/v1/images:enhance",method="POST",status="401"} 3' in text, text
        assert 'stream_gpen_refused_total{reason="unauthorized"} 5' in text
        # The page, health and docs stay open (the page asks for the key itself).
        assert c.get("/").status_code == 200 and c.get("/healthz").status_code == 200
        assert c.get("/docs").status_code == 200
        from starlette.websockets import WebSocketDisconnect

        with pytest.raises(WebSocketDisconnect) as info:
            with c.websocket_connect("/v1/live") as ws:
                ws.receive_text()
        assert info.value.code == 1008 and "API key" in info.value.reason
    assert fake.batches == [1]


def test_queue_limit_and_timeout(fake):
    img = np.zeros((4, 4, 3), np.uint8)
    fake.gate = threading.Event()
    with client_for(fake, max_queue=1, max_batch=1, batch_wait_ms=0, request_timeout_s=30) as c:
        first = []
        t1 = threading.Thread(target=lambda: first.append(post_image(c, img)))
        t1.start()
        assert fake.entered.wait(20)  # request 1 holds the model
        second = []
        t2 = threading.Thread(target=lambda: second.append(post_image(c, img)))
        t2.start()
        wait_for(lambda: c.app.state.runtime["batcher"].depth == 1, what="request 2 queued")
        r = post_image(c, img)  # request 3: queue full
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert "image queue full (1 waiting)" in r.json()["detail"]
        assert "stream_gpen_image_queue_depth 1" in c.get("/metrics", headers=KEY).text
        fake.gate.set()
        t1.join(20), t2.join(20)
        assert first[0].status_code == 200 and second[0].status_code == 200
    fake2 = FakeEnhancer()
    fake2.gate = threading.Event()
    with client_for(fake2, max_batch=1, batch_wait_ms=0, request_timeout_s=0.3) as c:
        r = post_image(c, img)
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert "not processed within 0.3 s" in r.json()["detail"]
        fake2.gate.set()


def test_model_failure_is_isolated():
    class Flaky(FakeEnhancer):
        def enhance_images(self, images):
            if any(im.shape[0] == 5 for im in images):
                raise RuntimeError("CUDA out of memory (simulated)")
            return super().enhance_images(images)

    flaky = Flaky()
    with client_for(flaky, batch_wait_ms=2000, max_batch=2) as c:
        res = {}
        t = [threading.Thread(target=lambda n=n: res.__setitem__(n, post_image(c, np.zeros((n, 4, 3), np.uint8))))
             for n in (4, 5)]
        [x.start() for x in t]
        [x.join(30) for x in t]
        assert res[4].status_code == 200  # retried alone after the batch failed
        assert res[5].status_code == 503 and "CUDA out of memory" in res[5].json()["detail"]


def test_video_jobs_run_in_order_cancel_and_limits(tmp_path):
    fake = FakeEnhancer(frames=200, frame_delay=0.01)
    with client_for(fake, work_dir=tmp_path, max_jobs=2) as c:
        def upload(body: bytes):
            return c.post("/v1/videos", content=body, headers={**KEY, "Content-Type": "video/mp4"})

        j1, j2 = upload(b"one").json(), upload(b"two").json()
        r = upload(b"three")
        assert r.status_code == 429 and r.headers["retry-after"] == "30" and "video queue full" in r.json()["detail"]
        wait_job(c, j1["id"], states=("running",))
        assert c.get(f"/v1/videos/{j2['id']}", headers=KEY).json()["state"] == "queued"
        r = c.get(f"/v1/videos/{j1['id']}/result", headers=KEY)
        assert r.status_code == 409 and r.json()["state"] == "running"

        # Cancel the queued one: gone at once, files too.
        assert c.delete(f"/v1/videos/{j2['id']}", headers=KEY).json()["state"] == "cancelled"
        assert not (tmp_path / "jobs" / j2["id"]).exists()
        # Cancel the running one: the pipeline stops within a frame and its folder goes.
        assert c.delete(f"/v1/videos/{j1['id']}", headers=KEY).json() == {"id": j1["id"], "state": "cancelled",
                                                                          "deleted": True}
        wait_for(lambda: not (tmp_path / "jobs" / j1["id"]).exists(), what="cancelled job folder removed")
        assert c.get(f"/v1/videos/{j1['id']}", headers=KEY).status_code == 404
        assert fake.video_order == ["one"]  # job two never started
        assert fake.untrusted_seen == [True]  # uploads are opened as untrusted (media demuxers only)
        assert fake.max_pixels_seen == [c.app.state.runtime["jobs"].max_pixels] and fake.max_pixels_seen[0]
        assert upload(b"").status_code == 400  # empty upload
        assert list((tmp_path / "jobs").iterdir()) == []


def test_video_job_failure_and_expiry(tmp_path):
    class Broken(FakeEnhancer):
        def enhance_file(self, src, dst, **kw):
            if Path(src).read_bytes() in (b"bad", jpeg):
                raise InvalidInputError(f"cannot read {str(src)!r} as media (a playlist?)")
            return super().enhance_file(src, dst, **kw)

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG")
    jpeg = buf.getvalue()
    fake = Broken(frames=2)
    with client_for(fake, work_dir=tmp_path, job_ttl_s=600) as c:
        bad = c.post("/v1/videos", content=b"bad", headers={**KEY, "Content-Type": "application/octet-stream"}).json()
        info = wait_job(c, bad["id"])
        # the server's paths are not the client's business: "the upload", not /work/dir/jobs/<id>/...
        assert info["state"] == "failed" and info["error"] == "InvalidInputError: cannot read the upload as media (a playlist?)"
        photo = c.post("/v1/videos", content=jpeg, headers={**KEY, "Content-Type": "video/mp4"}).json()
        assert wait_job(c, photo["id"])["error"] == (
            "InvalidInputError: the upload is a still JPEG picture, not a video: send it to /v1/images:enhance")
        assert not (tmp_path / "jobs" / bad["id"]).exists()  # failed: files gone, record kept until expiry
        assert c.get(f"/v1/videos/{bad['id']}/result", headers=KEY).status_code == 409

        good = c.post("/v1/videos", files={"file": ("../../etc/passwd", b"ok", "video/mp4")}, headers=KEY).json()
        info = wait_job(c, good["id"])
        assert info["state"] == "done" and info["expires"] > info["finished"]
        assert info["progress"] == 1.0 and info["frames_total"] == info["frames_done"]
        res = c.get(info["result"], headers=KEY)
        assert res.status_code == 200 and res.content == b"video:ok"
        # The client's file name is never used on disk.
        assert sorted(p.name for p in (tmp_path / "jobs" / good["id"]).iterdir()) == ["owner", "result.mp4"]
        assert info["expires"] - info["finished"] == pytest.approx(600)
        # Shorten the TTL now (a short one from the start could expire jobs before a slow test reads them).
        c.app.state.runtime["jobs"].ttl_s = 0.2
        wait_for(lambda: c.get(f"/v1/videos/{good['id']}", headers=KEY).status_code == 404, 10, "expiry")
        assert not (tmp_path / "jobs" / good["id"]).exists()
        assert c.get(f"/v1/videos/{bad['id']}", headers=KEY).status_code == 404


def test_unknown_and_malformed_job_ids(fake):
    with client_for(fake) as c:
        for jid in ("a" * 22, "..%2F..%2Fetc", "x"):
            for method, suffix in (("GET", ""), ("GET", "/result"), ("DELETE", "")):
                r = c.request(method, f"/v1/videos/{jid}{suffix}", headers=KEY)
                assert r.status_code == 404, (method, jid, r.text)
        assert "unknown, expired or deleted" in c.get("/v1/videos/" + "a" * 22, headers=KEY).json()["detail"]


def test_images_are_answered_while_a_video_runs_never_concurrently(tmp_path):
    fake = FakeEnhancer(frames=1000, frame_delay=0.02)
    img = np.zeros((4, 4, 3), np.uint8)
    with client_for(fake, work_dir=tmp_path, batch_wait_ms=0) as c:
        job = c.post("/v1/videos", content=b"long", headers={**KEY, "Content-Type": "video/mp4"}).json()
        wait_job(c, job["id"], states=("running",))
        for _ in range(3):
            assert post_image(c, img).status_code == 200
        # The images got in between video frames, while the job was still running.
        info = c.get(f"/v1/videos/{job['id']}", headers=KEY).json()
        assert info["state"] == "running" and info["frames_done"] < 1000
        c.delete(f"/v1/videos/{job['id']}", headers=KEY)
        wait_for(lambda: not (tmp_path / "jobs" / job["id"]).exists(), what="cancelled job stopped and cleaned")
    assert not fake.overlap  # the model was never used by two threads at once


def test_live_drops_stale_frames():
    fake = FakeEnhancer()
    fake.gate = threading.Event()
    frame = encode(np.zeros((8, 8, 3), np.uint8))
    with client_for(fake, batch_wait_ms=0) as c, c.websocket_connect("/v1/live", headers=KEY) as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        ws.send_bytes(HEADER.pack(1, 0, 0, KIND_JPEG) + frame)
        assert fake.entered.wait(20)  # frame 1 is in the model
        for seq in (2, 3, 4):
            ws.send_bytes(HEADER.pack(seq, 0, 0, KIND_JPEG) + frame)
        # 2 and 3 were replaced by newer frames while 1 ran: the server says so at once.
        assert [json.loads(ws.receive_text()) for _ in range(2)] == [
            {"type": "dropped", "seq": 2}, {"type": "dropped", "seq": 3}]
        fake.gate.set()
        got = []
        while len(got) < 2:
            msg = ws.receive()
            if msg.get("bytes"):
                got.append(HEADER.unpack_from(msg["bytes"])[0])
        assert got == [1, 4]  # the newest frame, never the stale ones
        assert fake.batches == [1, 1]
        assert 'stream_gpen_live_frames_total{result="dropped"} 2' in c.get("/metrics", headers=KEY).text


def test_health_metrics_docs_page(fake, tmp_path):
    with client_for(fake) as c:
        work = c.app.state.runtime["jobs"].work_dir
        assert work.is_dir()
        h = c.get("/healthz").json()
        assert h["status"] == "ok" and h["models"] == ["fake"]
        post_image(c, np.zeros((4, 4, 3), np.uint8))
        m = c.get("/metrics", headers=KEY)
        assert m.headers["content-type"].startswith("text/plain")
        for needle in (
            'stream_gpen_requests_total{route="/v1/images:enhance",method="POST",status="200"} 1',
            'stream_gpen_request_seconds_count{route="/v1/images:enhance"} 1',
            "stream_gpen_faces_restored_total 1",
            "stream_gpen_faces_per_second",
            "stream_gpen_image_queue_depth 0",
            'stream_gpen_video_jobs{state="queued"} 0',
            'stream_gpen_memory_bytes{device="host",kind="rss"}',
        ):
            assert needle in m.text, needle
        paths = c.get("/openapi.json").json()["paths"]
        assert {"/v1/images:enhance", "/v1/videos", "/v1/videos/{job_id}", "/v1/videos/{job_id}/result",
                "/healthz", "/metrics"} <= set(paths)
        assert "multipart/form-data" in paths["/v1/images:enhance"]["post"]["requestBody"]["content"]
        page = c.get("/").text
        assert "getUserMedia" in page and '"v1/live"' in page  # (relative: --root-path)
        # No build step, no CDN: nothing is fetched from another origin.
        assert "src=\"http" not in page and "href=\"http" not in page and "@import" not in page
    assert not work.exists()  # the server's own temporary folder is removed at shutdown


def test_server_config_validation():
    with pytest.raises(InvalidInputError, match="max_batch must be > 0, got 0"):
        ServerConfig(max_batch=0)
    with pytest.raises(InvalidInputError, match="batch_wait_ms must be >= 0, got -1"):
        ServerConfig(batch_wait_ms=-1)
    with pytest.raises(InvalidInputError, match="max_pixels must be an int, got 1.5"):
        ServerConfig(max_pixels=1.5)
    with pytest.raises(InvalidInputError, match="api_key must be a non-empty string"):
        ServerConfig(api_key="  ")
    assert ServerConfig().loopback and ServerConfig(host="::1").loopback and not ServerConfig(host="0.0.0.0").loopback


def test_cli_parser(monkeypatch):
    import argparse

    from stream_gpen.server.cli import API_KEY_ENV, add_serve, config_from_args

    parser = argparse.ArgumentParser()
    add_serve(parser.add_subparsers())
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    args = parser.parse_args(["serve", "--max-batch", "1", "--batch-wait-ms", "0", "--max-upload-mb", "1"])
    cfg = config_from_args(args)
    assert (cfg.host, cfg.api_key, cfg.max_batch, cfg.batch_wait_ms, cfg.max_upload_bytes) == (
        "127.0.0.1", "from-env", 1, 0.0, 1024 * 1024)
    assert config_from_args(parser.parse_args(["serve", "--api-key", "cli"])).api_key == "cli"
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--batch-wait-ms", "-3"])


def test_live_header_layout():
    # The page (static/index.html) writes this layout by hand: keep both in step.
    assert HEADER.size == 12
    assert struct.pack("<IHHB3x", 1, 2, 3, 1) == HEADER.pack(1, 2, 3, KIND_RGBA)


@pytest.mark.cuda
def test_image_and_live_on_cuda(mobilenet_weights, photo):
    from stream_gpen import Enhancer
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator

    enh = Enhancer(random_generator(TINY_CONFIG), device="cuda", detector_weights=mobilenet_weights, detect_size=320)
    with client_for(enh, batch_wait_ms=50) as c:
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            c.post("/v1/images:enhance", content=encode(photo), headers={**KEY, "Content-Type": "image/jpeg"})))
            for _ in range(4)]
        [t.start() for t in threads]
        [t.join(60) for t in threads]
        assert [r.status_code for r in results] == [200] * 4
        assert all(decode(r.content).shape == photo.shape for r in results)
        with c.websocket_connect("/v1/live", headers=KEY) as ws:
            assert json.loads(ws.receive_text())["type"] == "ready"
            ws.send_bytes(HEADER.pack(1, 0, 0, KIND_JPEG) + encode(photo))
            assert HEADER.unpack_from(ws.receive_bytes())[0] == 1
        m = c.get("/metrics", headers=KEY).text
        assert 'stream_gpen_memory_bytes{device="cuda' in m
        faces = float(next(l.split()[1] for l in m.splitlines() if l.startswith("stream_gpen_faces_restored_total")))
        assert faces >= 5


def test_stalled_upload_times_out_over_real_http(tmp_path):
    """A client that stops sending mid-body gets 408 and leaves no file behind (real uvicorn)."""
    import socket

    fake = FakeEnhancer()
    # (the idle limit alone: past 0.5 s, 1000 bytes is also under --min-upload-rate, a 408 of its own)
    app = create_app(fake, config=ServerConfig(request_timeout_s=0.5, min_upload_bytes_per_s=0, work_dir=tmp_path))
    with real_server(app, log_level="warning") as address:
        with socket.create_connection(address, timeout=10) as c:
            c.sendall(b"POST /v1/videos HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\n"
                      b"Content-Length: 100000\r\n\r\n" + b"v" * 1000)
            # No more bytes are sent: the server must give up. Read until it closes the
            # connection or the whole body has arrived (headers and body may come separately).
            data = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
                head, sep, body = data.partition(b"\r\n\r\n")
                n = [int(v) for k, v in (ln.split(b":", 1) for ln in head.split(b"\r\n")[1:] if b":" in ln)
                     if k.strip().lower() == b"content-length"]
                if sep and n and len(body) >= n[0]:
                    break
            reply = data.decode()
        assert reply.startswith("HTTP/1.1 408"), reply
        assert "no request data for 0.5 s" in reply
        assert list((tmp_path / "jobs").iterdir()) == []


def test_phone_photo_formats(fake):
    """HEIC (iPhones) is accepted and answered as JPEG (browsers do not show HEIC); AVIF as AVIF."""
    import stream_gpen.io._image as image_mod

    image_mod._heif_plugin(Path("x.heic"))
    img = np.random.default_rng(2).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    with client_for(fake) as c:
        for fmt, ctype, answer in (("HEIF", "image/heic", "image/jpeg"), ("AVIF", "image/avif", "image/avif")):
            r = c.post("/v1/images:enhance", content=encode(img, fmt), headers={**KEY, "Content-Type": ctype})
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == answer and decode(r.content).shape == img.shape
        r = c.post("/v1/images:enhance", content=encode(img, "PNG"), params={"format": "avif"},
                   headers={**KEY, "Content-Type": "image/png"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/avif"


def test_16bit_grey_upload_keeps_its_brightness():
    """A 16-bit grey PNG (a scan) was converted with Pillow's convert("L"), which clips at 255:
    the answer was a white picture."""
    from stream_gpen.server._imaging import decode_image

    a = (np.arange(64 * 80).reshape(64, 80) * 12).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    d = decode_image(buf.getvalue(), max_pixels=10**7)
    assert d.pixels.dtype == np.uint8 and d.pixels.shape == (64, 80)
    assert abs(float(d.pixels.mean()) - float((a / 257).mean())) < 1.0


def test_video_jobs_use_the_servers_encoder(tiny_enhancer, photo, tmp_path):
    """``serve --encoder auto``: NVENC where it works, else software, said in the job's summary
    (here: no GPU, so libx264 and the reason); a bad value is refused at start."""
    with pytest.raises(InvalidInputError, match="encoder='quicksync' is not one of"):
        ServerConfig(encoder="quicksync")
    clip = make_clip(tmp_path / "in.mp4", photo[::2, ::2].copy(), n=3)
    with TestClient(create_app(tiny_enhancer, config=ServerConfig(api_key="k3y", encoder="auto"))) as c:
        r = c.post("/v1/videos", content=clip.read_bytes(), headers={**KEY, "Content-Type": "video/mp4"})
        info = wait_job(c, r.json()["id"])
    assert info["state"] == "done", info
    assert info["summary"]["encoder"] == "libx264"
    assert any(f.startswith("encoder='auto' used libx264, not NVENC") for f in info["summary"]["fallbacks"])


def test_aligned_face_crops(real_client, shared):
    """``?aligned=true``: the upload is an aligned face crop; the whole picture goes through the
    model (its corners change too) instead of a detected, re-aligned and pasted face."""
    crop = np.asarray(Image.open(shared / "data/faces/aligned/codeformer_crop_0143.png").convert("RGB"))

    r_normal, normal = ask_png(real_client, crop)
    r_aligned, whole = ask_png(real_client, crop, aligned="true")
    assert r_aligned.headers["x-aligned"] == "true" and r_normal.headers["x-aligned"] == "false"
    corner = (slice(0, 24), slice(0, 24))
    assert np.abs(whole - crop)[corner].mean() > 5  # aligned: the model's output everywhere
    assert np.abs(whole - normal).mean() > 5  # not what the detect / align / paste path gives


def test_aligned_live_frames(real_client, shared):
    """The live socket takes ``aligned`` too: on the query (checked before accept) and in an
    options message; an aligned frame is the model's output everywhere, unlike a detected,
    re-aligned and pasted face."""
    from starlette.websockets import WebSocketDisconnect

    crop = np.asarray(Image.open(shared / "data/faces/aligned/codeformer_crop_0143.png").convert("RGB"))
    corner = (slice(0, 24), slice(0, 24))

    def ask(ws, seq):
        ws.send_bytes(HEADER.pack(seq, 0, 0, KIND_JPEG) + encode(crop, "PNG"))
        out = decode(ws.receive_bytes()[HEADER.size:]).astype(int)
        assert json.loads(ws.receive_text())["seq"] == seq
        return out

    with real_client.websocket_connect("/v1/live?key=k3y&aligned=true") as ws:
        assert json.loads(ws.receive_text())["aligned"] is True
        whole = ask(ws, 1)
        assert np.abs(whole - crop)[corner].mean() > 5  # the model's output everywhere
        ws.send_text(json.dumps({"aligned": "yes"}))
        ev = json.loads(ws.receive_text())
        assert ev["type"] == "error" and "aligned must be true or false, not 'yes'" in ev["detail"]
        ws.send_text(json.dumps({"aligned": False}))
        assert json.loads(ws.receive_text())["aligned"] is False
        assert np.abs(ask(ws, 2) - whole).mean() > 5  # detected, aligned and pasted: another picture
    with pytest.raises(WebSocketDisconnect) as e:
        with real_client.websocket_connect("/v1/live?key=k3y&aligned=maybe") as ws:
            ws.receive_text()
    assert e.value.code == 1008  # a query that is not a boolean: FastAPI's refusal, turned into a policy close


def test_aligned_video_job(real_client, photo, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", photo[::2, ::2].copy(), n=3)
    r = real_client.post("/v1/videos", content=clip.read_bytes(), params={"aligned": "true"},
                         headers={**KEY, "Content-Type": "video/mp4"})
    assert r.status_code == 202 and r.json()["aligned"] is True
    info = wait_job(real_client, r.json()["id"])
    assert info["state"] == "done", info
    assert info["summary"]["detector_calls"] == 0 and info["summary"]["faces_restored"] == 3


def test_serve_on_a_busy_port_says_so(det_home, capsys):
    """A port another program holds: exit 2 with one line, before the model loads (uvicorn's own
    failure exits 3, the code for weights problems)."""
    import socket

    from stream_gpen.cli import main

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        assert main(["serve", "--model", "classic", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in err and "pick another --port" in err
    assert main(["serve", "--model", "classic", "--host", "no-such-host.invalid", "--port", "8000"]) == 2
    assert "not an address this machine has" in capsys.readouterr().err


def test_image_answers_keep_the_profile_and_exif(fake):
    """As the CLI does: the upload's colour profile (where it describes RGB pixels) and EXIF
    (orientation reset: the answer is upright) come back; an odd EXIF does not fail the request."""
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "Apple", 6
    pic = Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    cmyk = srgb[:16] + b"CMYK" + srgb[20:]
    with client_for(fake) as c:
        for fmt in ("jpeg", "png", "webp"):
            buf = io.BytesIO()
            pic.save(buf, "JPEG", icc_profile=srgb, exif=exif.tobytes())
            r = c.post("/v1/images:enhance", content=buf.getvalue(), params={"format": fmt},
                       headers={**KEY, "Content-Type": "image/jpeg"})
            assert r.status_code == 200, r.text
            with Image.open(io.BytesIO(r.content)) as out:
                assert out.size == (40, 60)  # turned upright
                assert out.info.get("icc_profile") == srgb, fmt
                e = out.getexif()
                assert e.get(0x010F) == "Apple" and e.get(0x0112) == 1, fmt
        buf = io.BytesIO()
        pic.convert("CMYK").save(buf, "JPEG", icc_profile=cmyk)
        r = c.post("/v1/images:enhance", content=buf.getvalue(), headers={**KEY, "Content-Type": "image/jpeg"})
        with Image.open(io.BytesIO(r.content)) as out:
            assert r.status_code == 200 and "icc_profile" not in out.info  # CMYK profile, RGB answer
        # orientation stored as a fraction: Pillow's own transpose fails on it; the request does not
        raw = io.BytesIO()
        pic.save(raw, "JPEG")
        ifd = (b"Exif\x00\x00II*\x00" + (8).to_bytes(4, "little") + (1).to_bytes(2, "little")
               + (0x0112).to_bytes(2, "little") + (5).to_bytes(2, "little") + (1).to_bytes(4, "little")
               + (26).to_bytes(4, "little") + bytes(4) + (6).to_bytes(4, "little") + (1).to_bytes(4, "little"))
        d = raw.getvalue()
        odd = d[:2] + b"\xff\xe1" + (len(ifd) + 2).to_bytes(2, "big") + ifd + d[2:]
        r = c.post("/v1/images:enhance", content=odd, headers={**KEY, "Content-Type": "image/jpeg"})
        assert r.status_code == 200, r.text
        with Image.open(io.BytesIO(r.content)) as out:
            assert out.size == (40, 60)
