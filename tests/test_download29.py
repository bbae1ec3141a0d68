"""Session 29 (dl): a video result's download reads Range and the conditional headers as RFC 9110
says, over real HTTP (uvicorn on 127.0.0.1): a Range number of any length is clamped or past the
end, never a 500; a list's empty elements are skipped; the parts of ``multipart/byteranges`` come
in the order asked for; If-Match and If-Unmodified-Since are honoured (412); an HTTP date without a
zone is GMT; and the open result is closed on every answer that does not send it whole."""
from __future__ import annotations

import os
import re
import socket
import struct
import time
from email.utils import formatdate, parsedate_to_datetime

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from stream_gpen.server import ServerConfig, create_app  # noqa: E402
from tests.test_server import KEY, FakeEnhancer, real_server, wait_for, wait_job  # noqa: E402

VIDEO = {**KEY, "Content-Type": "video/mp4"}
# a few MB: more than loopback's socket buffers take, so a client that hangs up cuts the answer
UPLOAD = b"".join(b"%09d;" % i for i in range(600_000)) + b"tail"
RESULT = b"video:" + UPLOAD
N = len(RESULT)
NINES = "9" * 5000  # (more digits than Python's int() takes from a string: 4300)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real server with one finished job: ``(client, result url, work dir)``."""
    work = tmp_path_factory.mktemp("dl29")
    app = create_app(FakeEnhancer(), config=ServerConfig(api_key="k3y", work_dir=work))
    with real_server(app, log_level="warning") as (host, port), \
            httpx.Client(base_url=f"http://{host}:{port}", timeout=60) as c:
        job = c.post("/v1/videos", content=UPLOAD, headers=VIDEO).json()
        assert wait_job(c, job["id"])["state"] == "done"
        yield c, f"/v1/videos/{job['id']}/result", work


def _get(c, url, method="GET", **headers):
    return c.request(method, url, headers={**KEY, **headers})


def _parts(r) -> list[tuple[str, bytes]]:
    """A ``multipart/byteranges`` answer's parts: (Content-Range, body) each, in the order sent."""
    boundary = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", r.headers["content-type"]).group(1).encode()
    assert int(r.headers["content-length"]) == len(r.content)
    chunks = r.content.split(b"--" + boundary)
    assert chunks[0] == b"" and chunks[-1] == b"--"
    out = []
    for chunk in chunks[1:-1]:
        head, _, body = chunk.partition(b"\r\n\r\n")
        assert body.endswith(b"\r\n")
        out.append((re.search(rb"Content-Range: (.+)", head).group(1).decode().strip(), body[:-2]))
    return out


def _open_fds_on(folder) -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder))
        except OSError:
            pass
    return n


def _no_500(c):
    assert 'status="500"' not in c.get("/metrics", headers=KEY).text


def test_range_numbers_of_any_length_are_clamped_or_past_the_end(served):
    c, url, _ = served
    for value in ("bytes=0-99999999999999999999999", f"bytes=0-{NINES}", f"bytes=-{NINES}", f"bytes=0-0{NINES}"):
        r = _get(c, url, Range=value)  # a last byte past the end: the end (RFC 9110 14.1.2)
        assert r.status_code == 206 and r.content == RESULT, (value[:40], r.status_code, r.text[:200])
        assert r.headers["content-range"] == f"bytes 0-{N - 1}/{N}"
    r = _get(c, url, Range=f"bytes={NINES}-")  # valid, starts past the end: unsatisfiable
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{N}", r.text[:200]
    assert r.json()["error"] == "RangeNotSatisfiableError"
    r = _get(c, url, Range=f"bytes=0-1,{NINES}-{NINES}")  # one satisfiable: that one
    assert r.status_code == 206 and r.content == RESULT[:2]
    r = _get(c, url, Range=f"bytes=000000000000000000000000000003-00000000000000000000000000000{N + 5}")
    assert r.status_code == 206 and r.content == RESULT[3:]
    for value in (f"bytes=1{NINES}-{NINES}", "bytes=99999999999999999999999-99999999999999999999998"):
        r = _get(c, url, Range=value)  # (the last byte before the first: malformed, the whole result)
        assert r.status_code == 200 and r.content == RESULT, (value[:40], r.status_code)
    _no_500(c)


def test_empty_elements_of_a_range_list_are_skipped(served):
    c, url, _ = served
    r = _get(c, url, Range="bytes=,0-1")
    assert r.status_code == 206 and r.content == RESULT[:2] and r.headers["content-range"] == f"bytes 0-1/{N}"
    r = _get(c, url, Range="bytes=0-1, ,, 3-4,")
    assert r.status_code == 206
    assert _parts(r) == [(f"bytes 0-1/{N}", RESULT[:2]), (f"bytes 3-4/{N}", RESULT[3:5])]
    for value in ("bytes=", "bytes=,", "bytes= ,,"):  # no range at all: malformed, ignored
        r = _get(c, url, Range=value)
        assert r.status_code == 200 and r.content == RESULT, value


def test_multipart_parts_come_in_the_order_asked_overlaps_merged_where_the_first_was(served):
    c, url, _ = served
    r = _get(c, url, Range="bytes=200000-200009,0-9")
    assert r.status_code == 206
    assert _parts(r) == [(f"bytes 200000-200009/{N}", RESULT[200000:200010]), (f"bytes 0-9/{N}", RESULT[:10])]
    r = _get(c, url, Range="bytes=-4,100-199,0-9,150-249")  # 100-199 and 150-249 overlap: one part, second
    assert _parts(r) == [(f"bytes {N - 4}-{N - 1}/{N}", b"tail"), (f"bytes 100-249/{N}", RESULT[100:250]),
                         (f"bytes 0-9/{N}", RESULT[:10])]
    r = _get(c, url, Range="bytes=10-19,0-9")  # touching: one range, not a multipart
    assert r.status_code == 206 and r.headers["content-range"] == f"bytes 0-19/{N}" and r.content == RESULT[:20]


def test_if_match_and_if_unmodified_since_answer_412_when_they_do_not_hold(served):
    c, url, _ = served
    h = _get(c, url, "HEAD").headers
    etag, modified = h["etag"], h["last-modified"]
    for cond in ({"If-Match": etag}, {"If-Match": "*"}, {"If-Match": f'"x", {etag}'},
                 {"If-Unmodified-Since": modified}, {"If-Unmodified-Since": formatdate(4e9, usegmt=True)},
                 {"If-Unmodified-Since": "yesterday"},  # not a date: ignored
                 # If-Unmodified-Since is not read when If-Match is sent (RFC 9110 13.2.2)
                 {"If-Match": etag, "If-Unmodified-Since": formatdate(1e9, usegmt=True)}):
        r = _get(c, url, **cond)
        assert r.status_code == 200 and r.content == RESULT, (cond, r.status_code, r.text[:200])
    for cond in ({"If-Match": '"x"'}, {"If-Match": "W/" + etag},  # (strong comparison: a weak tag never matches)
                 {"If-Match": etag.strip('"')}, {"If-Unmodified-Since": formatdate(1e9, usegmt=True)},
                 {"If-Match": '"x"', "If-Unmodified-Since": modified},
                 # 412 before 304 and before a Range
                 {"If-Match": '"x"', "If-None-Match": etag}, {"If-Match": '"x"', "Range": "bytes=0-9"}):
        r = _get(c, url, **cond)
        assert r.status_code == 412, (cond, r.status_code)
        body = r.json()
        assert body["error"] == "PreconditionFailedError" and body["hint"], body
        assert ("If-Match" in body["detail"]) == ("If-Match" in cond), body
        assert _get(c, url, "HEAD", **cond).status_code == 412
    r = _get(c, url, **{"If-Match": etag, "If-None-Match": etag})  # If-Match holds, then If-None-Match: 304
    assert r.status_code == 304
    r = _get(c, url, **{"If-Match": etag, "Range": "bytes=0-9", "If-Range": etag})
    assert r.status_code == 206 and r.content == RESULT[:10]
    _no_500(c)


@pytest.fixture
def far_east(monkeypatch):
    """The server's local time 14 hours ahead of UTC (a date read as local time is then off)."""
    monkeypatch.setenv("TZ", "XXX-14")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_http_dates_without_a_zone_are_gmt(served, far_east):
    c, url, _ = served
    modified = _get(c, url, "HEAD").headers["last-modified"]
    assert modified.endswith(" GMT")
    bare = modified[:-4]
    for value in (bare, bare + " -0000"):
        r = _get(c, url, **{"If-Modified-Since": value})
        assert r.status_code == 304, (value, r.status_code)
        assert _get(c, url, **{"If-Unmodified-Since": value}).status_code == 200, value
    hour_before = formatdate(parsedate_to_datetime(modified).timestamp() - 3600, usegmt=True)[:-4]
    r = _get(c, url, **{"If-Unmodified-Since": hour_before})
    assert r.status_code == 412 and r.json()["error"] == "PreconditionFailedError", (hour_before, r.status_code)
    assert _get(c, url, **{"If-Modified-Since": hour_before}).status_code == 200


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc/self/fd")
def test_the_open_result_is_closed_on_every_answer(served):
    c, url, work = served
    etag = _get(c, url, "HEAD").headers["etag"]
    for headers, status in (({"Range": f"bytes={N}-"}, 416), ({"Range": f"bytes={NINES}-"}, 416),
                            ({"Range": f"bytes=0-{NINES}"}, 206), ({"If-Match": '"x"'}, 412),
                            ({"If-Unmodified-Since": formatdate(1e9, usegmt=True)}, 412),
                            ({"If-None-Match": etag}, 304)):
        assert _get(c, url, **headers).status_code == status, headers
        wait_for(lambda: _open_fds_on(work / "jobs") == 0, 20, f"the result closed after {status}")
    # a client hanging up in the middle of the body
    host, port = c.base_url.host, c.base_url.port
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # (a small window: the answer waits on it)
        s.settimeout(30)
        s.connect((host, port))
        s.sendall(f"GET {url} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: k3y\r\n\r\n".encode())
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(65536)
        assert got.startswith(b"HTTP/1.1 200")
        wait_for(lambda: _open_fds_on(work / "jobs") == 1, 20, "the result open while it is sent")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # (RST)
    wait_for(lambda: _open_fds_on(work / "jobs") == 0, 20, "the result closed after the client hung up")
    assert _get(c, url).content == RESULT  # (the server still answers)
    _no_500(c)
