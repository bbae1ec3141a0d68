"""Session 29 (srv): the video jobs' server, over real HTTP (uvicorn on 127.0.0.1).

* ``?chroma=`` on /v1/videos (the command line's ``--chroma``): a 4:2:2 upload came back HEVC/H.264
  4:2:2, which most players do not play, with no way to ask for 4:2:0 (422) and nothing said;
* a job that fails part-way keeps the run's summary (``summary: null`` before), with the job's error;
* CORS: a page of an ``--allow-origin`` origin may read a result's ETag, Content-Range,
  Content-Disposition and Accept-Ranges;
* ``.h263`` / ``.swf`` uploads are read (refused as "a playlist or script"), and a format that is
  only not on the upload list is said as such, not as a playlist;
* ``--job-ttl`` is kept while another job runs (expired results stayed on disk until it ended);
* the containers' registered content types (application/mxf, application/mp4, ...) and what
  ``mimetypes`` gives for the video extensions are taken (415 before);
* /openapi.json: 422 is either shape (the server's Error or FastAPI's list), 403 is listed.
"""
from __future__ import annotations

import fractions
import mimetypes
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
import httpx  # noqa: E402

from stream_gpen.server import ServerConfig, create_app  # noqa: E402
from tests.test_server import KEY, FakeEnhancer, real_server, wait_for, wait_job  # noqa: E402

VIDEO = {**KEY, "Content-Type": "video/mp4"}


@pytest.fixture(scope="module")
def real_enh(mobilenet_weights):
    """The real pipeline (identity restorer, the real detector at a small size)."""
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    return Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, detect_size=160,
                    progress=False)


def _serve(enh, tmp_path, **cfg):
    cfg.setdefault("api_key", "k3y")
    return create_app(enh, config=ServerConfig(work_dir=tmp_path / "work", **cfg))


class _Client:
    """A real server for ``app`` and an httpx client of it."""

    def __init__(self, app) -> None:
        self.app = app

    def __enter__(self) -> httpx.Client:
        self._server = real_server(self.app, log_level="warning")
        host, port = self._server.__enter__()
        self._client = httpx.Client(base_url=f"http://{host}:{port}", timeout=60)
        return self._client

    def __exit__(self, *exc) -> None:
        self._client.close()
        self._server.__exit__(*exc)


def _clip(path: Path, pix_fmt: str, n: int = 3, fmt: str | None = None, codec: str = "libx264",
          size=(64, 48)) -> Path:
    rng = np.random.default_rng(29)
    w, h = size
    with av.open(str(path), "w", format=fmt) as o:
        s = o.add_stream(codec, rate=10)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        s.codec_context.time_base = fractions.Fraction(1, 10)
        for i in range(n):
            f = av.VideoFrame.from_ndarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), format="rgb24")
            f = f.reformat(format=pix_fmt)
            f.pts, f.time_base = i, fractions.Fraction(1, 10)
            for p in s.encode(f):
                o.mux(p)
        for p in s.encode():
            o.mux(p)
    return path


def _pix(data: bytes, tmp_path: Path) -> str:
    p = tmp_path / "got.mp4"
    p.write_bytes(data)
    with av.open(str(p)) as c:
        return c.streams.video[0].codec_context.pix_fmt


# --- 1. chroma ---------------------------------------------------------------------------------------
def test_chroma_option_and_the_kept_chroma_note(real_enh, tmp_path):
    body = _clip(tmp_path / "in.mp4", "yuv422p").read_bytes()
    with _Client(_serve(real_enh, tmp_path)) as c:
        kept = c.post("/v1/videos", content=body, headers=VIDEO).json()
        assert kept["chroma"] == "auto"
        done = wait_job(c, kept["id"])
        assert done["state"] == "done", done
        assert _pix(c.get(done["result"], headers=KEY).content, tmp_path) == "yuv422p"
        notes = [f for f in done["summary"]["fallbacks"] if "4:2:2" in f]
        assert len(notes) == 1 and "?chroma=420" in notes[0] and "do not play" in notes[0], done["summary"]

        r = c.post("/v1/videos", content=body, headers=VIDEO, params={"chroma": "420"})
        assert r.status_code == 202, r.text
        assert r.json()["chroma"] == "420"
        done = wait_job(c, r.json()["id"])
        assert done["state"] == "done", done
        assert _pix(c.get(done["result"], headers=KEY).content, tmp_path) == "yuv420p"
        assert not [f for f in done["summary"]["fallbacks"] if "chroma" in f]

        bad = c.post("/v1/videos", content=body, headers=VIDEO, params={"chroma": "444"})
        assert bad.status_code == 422 and bad.json()["error"] == "OptionValueError"
        assert "'444' is not one of auto, 420" in bad.json()["detail"]


# --- 2. a failed job's summary ---------------------------------------------------------------------
class _Flaky:
    """A restorer that fails on its third batch (the run has written frames by then)."""

    name = "flaky"
    fallbacks: list = []

    def __init__(self) -> None:
        self.size, self.device, self.calls = 64, torch.device("cpu"), 0

    def __call__(self, crops):
        self.calls += 1
        if self.calls >= 3:
            raise RuntimeError("the restorer blew up")
        return crops.clone()


def test_a_failed_job_keeps_its_summary(mobilenet_weights, tmp_path):
    from PIL import Image

    from stream_gpen import Enhancer
    from tests._clips import write_video

    photo = np.asarray(Image.open(Path(__file__).resolve().parents[1] / "samples" / "astronaut_degraded.jpg")
                       .convert("RGB").resize((192, 192)))
    src = write_video(tmp_path / "faces.mp4", (np.roll(photo, i, axis=1) for i in range(8)), rate=10)
    enh = Enhancer(_Flaky(), device="cpu", detector_weights=mobilenet_weights, detect_size=160, batch_size=2,
                   progress=False)
    with _Client(_serve(enh, tmp_path)) as c:
        job = c.post("/v1/videos", content=src.read_bytes(), headers=VIDEO).json()
        failed = wait_job(c, job["id"])
    assert failed["state"] == "failed" and "the restorer blew up" in failed["error"], failed
    s = failed["summary"]
    assert s is not None, failed
    assert s["error"] == failed["error"] and s["frames_in"] > 0 and s["faces_restored"] >= 1
    assert s["input"] == "the upload" and s["output"] is None and s["partial_output"] is None
    assert str(tmp_path) not in str(s)  # (the server's paths are not the client's business)


# --- 3. CORS --------------------------------------------------------------------------------------
def test_cors_exposes_the_result_headers(tmp_path):
    origin = "http://app.example"
    with _Client(_serve(FakeEnhancer(frames=1), tmp_path, allowed_origins=(origin,))) as c:
        job = c.post("/v1/videos", content=b"x" * 1000, headers={**VIDEO, "Origin": origin}).json()
        done = wait_job(c, job["id"])
        r = c.get(done["result"], headers={**KEY, "Origin": origin, "Range": "bytes=0-99"})
    assert r.status_code == 206 and r.headers["access-control-allow-origin"] == origin
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "content-range", "content-disposition", "accept-ranges", "location"} <= exposed
    for name in ("etag", "content-range", "content-disposition", "accept-ranges"):
        assert name in r.headers  # (what the page may now read is sent)


# --- 4. .h263 / .swf ----------------------------------------------------------------------------------
def test_h263_and_swf_uploads_are_read(real_enh, tmp_path):
    h263 = _clip(tmp_path / "t.h263", "yuv420p", n=4, fmt="h263", codec="h263", size=(128, 96))
    swf = _clip(tmp_path / "t.swf", "yuv420p", n=4, fmt="swf", codec="flv1", size=(64, 48))
    smjpeg = _clip(tmp_path / "t.smjpeg", "yuvj420p", n=2, fmt="smjpeg", codec="mjpeg")
    octet = {**KEY, "Content-Type": "application/octet-stream"}
    with _Client(_serve(real_enh, tmp_path)) as c:
        for f in (h263, swf):
            job = c.post("/v1/videos", content=f.read_bytes(), headers=octet).json()
            done = wait_job(c, job["id"])
            assert done["state"] == "done" and done["frames_done"] == 4, (f.name, done)
        # a format that is only not on the upload list: said as that, not as a playlist or script
        job = c.post("/v1/videos", content=smjpeg.read_bytes(), headers=octet).json()
        failed = wait_job(c, job["id"])
    assert failed["state"] == "failed"
    assert "the upload is smjpeg" in failed["error"] and "not among the formats" in failed["error"], failed
    assert "playlist" not in failed["error"]


def test_a_playlist_upload_is_still_said_as_one(tmp_path):
    from stream_gpen.errors import NotMediaError
    from stream_gpen.io import open_source

    (tmp_path / "seg.ts").write_bytes(b"")
    pl = tmp_path / "list.m3u8"
    pl.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:0.2,\nseg.ts\n#EXT-X-ENDLIST\n")
    with pytest.raises(NotMediaError, match=r"\(FFmpeg reads it as hls\).*never as a playlist"):
        open_source(str(pl), untrusted=True)


# --- 5. --job-ttl while another job runs ----------------------------------------------------------------
class _Held(FakeEnhancer):
    """An upload of b"long" runs until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__(frames=1)
        self.release, self.long_started = threading.Event(), threading.Event()

    def enhance_file(self, src, dst, **kw):
        if Path(src).read_bytes() == b"long":
            self.long_started.set()
            assert self.release.wait(60), "never released"
        return super().enhance_file(src, dst, **kw)


def test_results_expire_while_another_job_runs(tmp_path):
    fake = _Held()
    jobs_dir = tmp_path / "work" / "jobs"
    with _Client(_serve(fake, tmp_path, job_ttl_s=0.5)) as c:
        try:
            short = c.post("/v1/videos", content=b"short", headers=VIDEO).json()["id"]
            c.post("/v1/videos", content=b"long", headers=VIDEO)
            # (no request for a job meanwhile: a GET expired jobs itself)
            assert fake.long_started.wait(30)
            assert fake.video_order == ["short"]  # short finished before long began
            wait_for(lambda: not (jobs_dir / short).exists(), 30, "the short job's result to expire")
        finally:
            fake.release.set()


# --- 6. content types --------------------------------------------------------------------------------
def test_registered_and_mimetypes_container_types_are_taken(tmp_path):
    derived = {mimetypes.guess_type("x" + ext)[0] for ext in (".3gp", ".asf", ".mxf", ".mov", ".mkv", ".wmv")}
    types = {"application/mxf", "application/mp4", "application/ogg", "audio/3gpp", "video/3gpp",
             "application/vnd.ms-asf"} | {t for t in derived if t}
    with _Client(_serve(FakeEnhancer(frames=1), tmp_path, max_jobs=len(types) + 2)) as c:
        for t in sorted(types):
            r = c.post("/v1/videos", content=b"clip", headers={**KEY, "Content-Type": t})
            assert r.status_code == 202, (t, r.text)
        for t in ("text/plain", "image/png", "application/json"):
            r = c.post("/v1/videos", content=b"clip", headers={**KEY, "Content-Type": t})
            assert r.status_code == 415, (t, r.text)


# --- 7. /openapi.json -------------------------------------------------------------------------------
def test_openapi_says_both_422_shapes_and_403(tmp_path):
    with _Client(_serve(FakeEnhancer(frames=1), tmp_path)) as c:
        doc = c.get("/openapi.json").json()
        own = c.post("/v1/videos?strenght=1", content=b"clip", headers=VIDEO)
        fastapi_own = c.post("/v1/videos?strength=abc", content=b"clip", headers=VIDEO)
    assert own.status_code == fastapi_own.status_code == 422
    assert isinstance(own.json()["detail"], str) and isinstance(fastapi_own.json()["detail"], list)
    post = doc["paths"]["/v1/videos"]["post"]
    shapes = post["responses"]["422"]["content"]["application/json"]["schema"]["oneOf"]
    assert {"$ref": "#/components/schemas/Error"} in shapes
    assert {"$ref": "#/components/schemas/HTTPValidationError"} in shapes
    image = doc["paths"]["/v1/images:enhance"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert len(image["oneOf"]) == 2
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "403" in op["responses"], (method, path)
            assert op["responses"]["403"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"}
    assert "Origin" in post["responses"]["403"]["description"]
    assert "Origin" not in doc["paths"]["/v1/models"]["get"]["responses"]["403"]["description"]
    chroma = [p for p in post["parameters"] if p["name"] == "chroma"]
    assert chroma and chroma[0]["schema"]["enum"] == ["auto", "420"]
    assert doc["components"]["schemas"]["VideoJob"]["properties"]["chroma"]["enum"] == ["auto", "420"]
