"""Session 31 (server): a POST /v1/videos whose Content-Type or Content-Encoding the route does not
take is answered 415 even while every job slot is taken (it was 429 "raise --max-jobs": the slot
was reserved before the headers were checked); /openapi.json lists a result's 304 and /healthz's
503; a video job over --max-pixels names the option, as the image endpoint does."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")

from tests.test_server import KEY, FakeEnhancer, client_for  # noqa: E402


def test_wrong_type_is_415_while_all_job_slots_are_taken(tmp_path):
    with client_for(FakeEnhancer(), work_dir=tmp_path, max_jobs=1) as c:
        jobs = c.app.state.runtime["jobs"]
        held = jobs.new_job(model=None, faces=None)  # (an upload still arriving holds the only slot)
        try:
            for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "image/png"},
                            {"Content-Type": "application/x-www-form-urlencoded"}, {},
                            {"Content-Type": "video/mp4", "Content-Encoding": "gzip"}):
                r = c.post("/v1/videos", content=b"abc", headers={**KEY, **headers})
                assert r.status_code == 415, (headers, r.text)
                assert r.json()["error"] == "UnsupportedMediaTypeError" and "retry-after" not in r.headers
            # a type the route takes still finds the queue full
            r = c.post("/v1/videos", content=b"abc", headers={**KEY, "Content-Type": "video/mp4"})
            assert r.status_code == 429 and r.json()["error"] == "QueueFullError"
        finally:
            jobs.discard(held)


def test_openapi_lists_the_304_of_a_result_and_the_503_of_healthz(tmp_path):
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        paths = c.get("/openapi.json").json()["paths"]
        assert "304" in paths["/v1/videos/{job_id}/result"]["get"]["responses"]
        starting = paths["/healthz"]["get"]["responses"]["503"]
        assert starting["content"]["application/json"]["schema"]["properties"]["status"]["enum"] == ["starting"]


def test_a_video_over_max_pixels_names_the_option(tmp_path, mobilenet_weights):
    """The source's words ("over the limit of 1000") are said with the server's option, as the
    image endpoint's 413 is."""
    from stream_gpen import Enhancer
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator
    from tests.test_server import make_clip, wait_job

    enh = Enhancer(random_generator(TINY_CONFIG), device="cpu", detector_weights=mobilenet_weights, detect_size=320)
    clip = make_clip(tmp_path / "c.mp4", np.zeros((48, 64, 3), np.uint8), n=2)
    with client_for(enh, work_dir=tmp_path / "w", max_pixels=1000) as c:
        r = c.post("/v1/videos", content=clip.read_bytes(), headers={**KEY, "Content-Type": "video/mp4"})
        info = wait_job(c, r.json()["id"])
        assert info["error"] == ("PayloadTooLargeError: video frames are 64x48 = 3072 pixels, over the limit of 1000 "
                                 "(the server's --max-pixels)"), info
        assert info["summary"]["error"] == info["error"]


def _png_of(size: int) -> bytes:
    """A valid PNG of exactly ``size`` bytes (a text chunk pads it)."""
    import io
    import struct
    import zlib

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, "PNG")
    png = buf.getvalue()
    pad = size - len(png) - 12 - len(b"Comment\0")
    body = b"tEXt" + b"Comment\0" + b"x" * pad
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return png[:33] + chunk + png[33:]  # (after IHDR)


def test_the_upload_limit_is_the_form_files_not_the_forms(tmp_path):
    """A file just under the limit, sent as a form (curl -F file=@): the form's own bytes do not
    count; the file is held to the limit itself."""
    with client_for(FakeEnhancer(), work_dir=tmp_path, max_upload_bytes=4000, max_video_bytes=3000) as c:
        png = _png_of(4000)
        r = c.post("/v1/images:enhance", files={"file": ("a.png", png, "image/png")}, headers=KEY)
        assert r.status_code == 200, r.text
        r = c.post("/v1/images:enhance", files={"file": ("a.png", png + b"\0", "image/png")}, headers=KEY)
        assert r.status_code == 413 and r.json()["detail"] == "the form's file is over the limit of 4000 bytes"

        r = c.post("/v1/videos", files={"file": ("a.mp4", b"v" * 3000, "video/mp4")}, data={"note": "n" * 2000},
                   headers=KEY)
        assert r.status_code == 202, r.text
        r = c.post("/v1/videos", files={"file": ("a.mp4", b"v" * 3001, "video/mp4")}, headers=KEY)
        assert r.status_code == 413 and r.json()["detail"] == "the form's file is over the limit of 3000 bytes"
        # a form far larger than its file and the room for the form: refused from its Content-Length
        r = c.post("/v1/videos", files={"file": ("a.mp4", b"v" * 10, "video/mp4")}, data={"note": "n" * 70000},
                   headers=KEY)
        assert r.status_code == 413 and "3000 bytes for the file and 65536 for the form" in r.json()["detail"]
