"""Session 27 (fsrv27): a video result downloaded while its job is deleted (DELETE from another
connection) or expires (--job-ttl) is sent whole, or answered 404 if it was already gone: never a
200 whose body stops short of its Content-Length. And GET /result answers a cache's conditional
request (If-None-Match, If-Modified-Since) with 304.

The deletion is made at a fixed point of the answer by a wrapper around the app (when the handler's
answer starts), not by racing two requests."""
from __future__ import annotations

import os
import re
import shutil
from email.utils import formatdate

import pytest

pytest.importorskip("fastapi")

from starlette.testclient import TestClient  # noqa: E402

from stream_gpen.server import ServerConfig, create_app  # noqa: E402
from tests.test_server import KEY, FakeEnhancer, real_server, wait_job  # noqa: E402

VIDEO = {**KEY, "Content-Type": "video/mp4"}
# over a few of any server's read chunks (Starlette's 64 KiB), not a multiple of them
UPLOAD = b"".join(b"%07d;" % i for i in range(40000)) + b"tail"  # (the fake model reads it as text)
RESULT = b"video:" + UPLOAD


class _AtAnswerStart:
    """The app, calling ``hook(job_id)`` when a /result answer's status line is about to go out:
    after the handler has decided what to send, before a byte of the body."""

    def __init__(self, app, hook) -> None:
        self.app, self.hook = app, hook
        self.state = app.state

    async def __call__(self, scope, receive, send):
        m = re.search(r"/v1/videos/([^/]+)/result$", scope.get("path", "")) if scope["type"] == "http" else None
        if m is None:
            return await self.app(scope, receive, send)

        async def send_(message):
            if message["type"] == "http.response.start":
                self.hook(m.group(1))
            await send(message)

        await self.app(scope, receive, send_)


def _jobs(app):
    return app.state.runtime["jobs"]


def _done_job(c) -> str:
    job = c.post("/v1/videos", content=UPLOAD, headers=VIDEO).json()
    assert wait_job(c, job["id"])["state"] == "done"
    return job["id"]


def _app(tmp_path, hook):
    """The app, ``hook(app, job_id)`` called at the first answer for each job's result."""
    app = create_app(FakeEnhancer(), config=ServerConfig(api_key="k3y", work_dir=tmp_path))
    seen = set()

    def once(job_id):
        if job_id not in seen:
            seen.add(job_id)
            hook(app, job_id)

    return _AtAnswerStart(app, once)


def _delete(app, job_id):
    _jobs(app).delete(job_id)


def _expire(app, job_id):
    jobs = _jobs(app)
    ttl, jobs.ttl_s = jobs.ttl_s, 0.0
    try:
        with pytest.raises(Exception, match="unknown, expired or deleted"):
            jobs.get(job_id)  # (expiry runs first: the job is dropped and its folder removed)
    finally:
        jobs.ttl_s = ttl


@pytest.mark.parametrize("gone", [_delete, _expire], ids=["delete", "expiry"])
def test_a_result_deleted_while_its_answer_starts_is_sent_whole(tmp_path, gone):
    fired = []
    app = _app(tmp_path, lambda a, j: (fired.append(j), gone(a, j)))
    with TestClient(app) as c:
        job_id = _done_job(c)
        r = c.get(f"/v1/videos/{job_id}/result", headers=KEY)
        assert fired == [job_id] and not (tmp_path / "jobs" / job_id).exists()
        assert r.status_code == 200 and r.headers["content-length"] == str(len(RESULT))
        assert r.content == RESULT
        assert c.get(f"/v1/videos/{job_id}/result", headers=KEY).status_code == 404  # gone now


@pytest.mark.parametrize("gone", [_delete, _expire], ids=["delete", "expiry"])
def test_ranges_of_a_result_deleted_while_the_answer_starts_are_sent_whole(tmp_path, gone):
    app = _app(tmp_path, gone)
    n = len(RESULT)
    with TestClient(app) as c:
        job_id = _done_job(c)
        r = c.get(f"/v1/videos/{job_id}/result", headers={**KEY, "Range": "bytes=70000-"})
        assert r.status_code == 206 and r.headers["content-range"] == f"bytes 70000-{n - 1}/{n}"
        assert r.content == RESULT[70000:]
        job_id = _done_job(c)
        r = c.get(f"/v1/videos/{job_id}/result", headers={**KEY, "Range": "bytes=0-9,200000-200009"})
        assert r.status_code == 206 and r.headers["content-type"].startswith("multipart/byteranges; boundary=")
        assert int(r.headers["content-length"]) == len(r.content)
        assert RESULT[:10] in r.content and RESULT[200000:200010] in r.content


def test_a_result_deleted_between_the_check_and_the_open_is_a_clean_404(tmp_path):
    # the DELETE lands after the handler found the job done, before it opened the file
    app = create_app(FakeEnhancer(), config=ServerConfig(api_key="k3y", work_dir=tmp_path))
    with TestClient(app) as c:
        job_id = _done_job(c)
        jobs = _jobs(app)
        get = jobs.get

        def get_then_delete(wanted):
            job = get(wanted)
            jobs.get = get
            jobs.delete(wanted)
            return job

        jobs.get = get_then_delete
        r = c.get(f"/v1/videos/{job_id}/result", headers=KEY)
        assert r.status_code == 404 and r.json()["error"] == "JobNotFoundError", r.text
        # a tmp cleaner's removal, the same way: 404, the record dropped
        job_id = _done_job(c)

        def get_then_clean(wanted):
            job = get(wanted)
            jobs.get = get
            shutil.rmtree(tmp_path / "jobs" / wanted)
            return job

        jobs.get = get_then_clean
        r = c.get(f"/v1/videos/{job_id}/result", headers=KEY)
        assert r.status_code == 404 and r.json()["error"] == "JobNotFoundError", r.text
        assert c.get(f"/v1/videos/{job_id}", headers=KEY).status_code == 404


def test_over_real_http_a_download_outlives_the_delete(tmp_path):
    import httpx

    app = _app(tmp_path, _delete)
    with real_server(app, log_level="warning") as (host, port), \
            httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as c:
        job = c.post("/v1/videos", content=UPLOAD, headers=VIDEO).json()
        assert wait_job(c, job["id"])["state"] == "done"
        r = c.get(f"/v1/videos/{job['id']}/result", headers=KEY)
        assert r.status_code == 200 and r.content == RESULT
        assert c.get(f"/v1/videos/{job['id']}", headers=KEY).status_code == 404
        metrics = c.get("/metrics", headers=KEY).text
        assert 'status="500"' not in metrics


def _open_fds_on(folder) -> int:
    fds = "/proc/self/fd"
    n = 0
    for fd in os.listdir(fds):
        try:
            n += os.readlink(f"{fds}/{fd}").startswith(str(folder))
        except OSError:
            pass
    return n


def test_result_answers_keep_range_if_range_head_and_etag(tmp_path):
    n = len(RESULT)
    app = create_app(FakeEnhancer(), config=ServerConfig(api_key="k3y", work_dir=tmp_path))
    with TestClient(app) as c:
        job_id = _done_job(c)
        url = f"/v1/videos/{job_id}/result"
        full = c.get(url, headers=KEY)
        assert full.status_code == 200 and full.content == RESULT
        h = full.headers
        assert h["content-type"] == "video/mp4" and h["accept-ranges"] == "bytes"
        assert h["content-disposition"] == f'attachment; filename="{job_id}.mp4"'
        assert h["content-length"] == str(n) and h["etag"].startswith('"') and h["last-modified"].endswith("GMT")
        head = c.head(url, headers=KEY)
        assert head.status_code == 200 and head.content == b""
        assert {k: head.headers[k] for k in ("content-length", "etag", "last-modified", "content-type")} == {
            k: h[k] for k in ("content-length", "etag", "last-modified", "content-type")}
        r = c.get(url, headers={**KEY, "Range": "bytes=-4"})
        assert r.status_code == 206 and r.content == b"tail"
        assert r.headers["content-range"] == f"bytes {n - 4}-{n - 1}/{n}"
        r = c.head(url, headers={**KEY, "Range": "bytes=0-99"})
        assert r.status_code == 206 and r.headers["content-length"] == "100" and r.content == b""
        for if_range, status in ((h["etag"], 206), (h["last-modified"], 206), ('"other"', 200),
                                 ("W/" + h["etag"], 200)):
            r = c.get(url, headers={**KEY, "Range": "bytes=0-9", "If-Range": if_range})
            assert r.status_code == status, if_range
            assert r.content == (RESULT[:10] if status == 206 else RESULT)
        r = c.get(url, headers={**KEY, "Range": f"bytes={n}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{n}"
        assert r.json()["error"] == "RangeNotSatisfiableError"  # (JSON as every error answer; Starlette's was text)
        r = c.get(url, headers={**KEY, "Range": f"bytes=0-1,{n}-"})  # one satisfiable range: that one (RFC 9110)
        assert r.status_code == 206 and r.content == RESULT[:2]
        r = c.get(url, headers={**KEY, "Range": "bytes=5-2"})  # malformed: ignored (RFC 9110)
        assert r.status_code == 200 and r.content == RESULT
        if os.path.isdir("/proc/self/fd"):
            assert _open_fds_on(tmp_path / "jobs") == 0  # every answer closed its file


def test_a_conditional_get_of_an_unchanged_result_is_304(tmp_path):
    app = create_app(FakeEnhancer(), config=ServerConfig(api_key="k3y", work_dir=tmp_path))
    with TestClient(app) as c:
        job_id = _done_job(c)
        url = f"/v1/videos/{job_id}/result"
        h = c.get(url, headers=KEY).headers
        etag, modified = h["etag"], h["last-modified"]
        for cond in ({"If-None-Match": etag}, {"If-None-Match": f'"x", W/{etag}'}, {"If-None-Match": "*"},
                     {"If-Modified-Since": modified}, {"If-Modified-Since": formatdate(2e9, usegmt=True)}):
            for method in (c.get, c.head):
                r = method(url, headers={**KEY, **cond})
                assert r.status_code == 304 and r.content == b"", (cond, r.status_code)
                assert r.headers["etag"] == etag and "content-length" not in r.headers, cond
        for cond in ({"If-None-Match": '"x"'}, {"If-Modified-Since": formatdate(1e9, usegmt=True)},
                     {"If-Modified-Since": "yesterday"},
                     # If-None-Match decides alone when both are sent (RFC 9110 13.2.2)
                     {"If-None-Match": '"x"', "If-Modified-Since": modified}):
            r = c.get(url, headers={**KEY, **cond})
            assert r.status_code == 200 and r.content == RESULT, cond
        if os.path.isdir("/proc/self/fd"):
            assert _open_fds_on(tmp_path / "jobs") == 0
