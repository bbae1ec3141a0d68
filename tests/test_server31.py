"""Session 31 (server): a POST /v1/videos whose Content-Type or Content-Encoding the route does not
take is answered 415 even while every job slot is taken (it was 429 "raise --max-jobs": the slot
was reserved before the headers were checked)."""
from __future__ import annotations

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
