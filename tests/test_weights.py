"""Weights manager: search order, aliases, verification, and the real download code against a
local HTTP server on 127.0.0.1 with Range support and fault injection (no internet)."""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import random
import re
import socket
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from stream_gpen import weights
from stream_gpen.errors import (
    ChecksumError,
    DownloadError,
    InvalidInputError,
    WeightsError,
    WeightsNotFoundError,
)
from stream_gpen.weights import WeightFile, ensure_weights

BODY = random.Random(0).randbytes(300_000)
SHA = hashlib.sha256(BODY).hexdigest()


def zipped(payload: bytes) -> bytes:
    """A zip archive holding ``payload``: the container torch.save writes since PyTorch 1.6."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data/0", payload)
    return buf.getvalue()


CKPT = zipped(BODY)  # what GPEN's 1024/2048 files and ParseNet look like: no size or sha256 published


# --- a tiny file server ---------------------------------------------------------------------
@dataclass
class Route:
    body: bytes
    honour_range: bool = True
    # One fault is consumed per request: "cut" (send half the body, then close), "html" / "json" (claim
    # that content type), "stall" (send headers, then nothing), "halfstall" (half the body, then
    # nothing), "nolength" (no Content-Length), "cutnolength" (both: the end of the body is the
    # closed connection, and it comes early), "500", "loop" (a redirect to itself), "from0" (a
    # resume answered with a 206 of the whole file), "wrongstart" (a 206 from another byte).
    faults: list[str] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)  # "gate": half, wait, rest
    etag: str | None = None  # sent as ETag; a Range whose If-Range names another is answered whole (200)


class _Handler(BaseHTTPRequestHandler):
    server: WeightServer

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        srv.if_ranges.append(self.headers.get("If-Range"))
        route = srv.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        fault = route.faults.pop(0) if route.faults else None
        if fault == "500":
            self.send_error(500)
            return
        if fault == "loop":  # a redirect to itself: urllib gives up after 10
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, start = route.body, 0
        if rng and fault == "from0":  # a 206 for the whole file, whatever the Range asked
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{len(body)}")
        elif rng and fault == "wrongstart":  # a 206 from 1,000 bytes before the byte asked for
            start = int(rng.removeprefix("bytes=").split("-")[0]) - 1000
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        elif rng and route.honour_range and (route.etag is None or self.headers.get("If-Range") in (None, route.etag)):
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        ctype = {"html": "text/html; charset=utf-8", "json": "application/json"}.get(fault, "application/octet-stream")
        self.send_header("Content-Type", ctype)
        if route.etag is not None:
            self.send_header("ETag", route.etag)
        if fault not in ("nolength", "cutnolength"):  # without it, the end of the body is the closed connection
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if fault in ("cut", "cutnolength"):
            self.wfile.write(payload[: len(payload) // 2])
            self.close_connection = True
            return
        if fault == "gate":
            self.wfile.write(payload[: len(payload) // 2])
            route.gate.wait(10)
            self.wfile.write(payload[len(payload) // 2:])
            return
        if fault == "stall":
            srv.release.wait(10)
            return
        if fault == "halfstall":
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            srv.release.wait(10)
            return
        self.wfile.write(payload)


class WeightServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.if_ranges: list[str | None] = []  # each request's If-Range header
        self.release = threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"

    def serve(self, path: str, body: bytes = BODY, **kw) -> str:
        self.routes[path] = Route(body, **kw)
        return self.url(path)


@pytest.fixture
def server():
    srv = WeightServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def dirs(tmp_path, monkeypatch):
    """A private cache and a fake checkout, so no test sees the user's real files."""
    checkout = tmp_path / "checkout"
    (checkout / "weights").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("")
    monkeypatch.setattr(weights, "_CHECKOUT", checkout)
    home = tmp_path / "home"
    monkeypatch.setenv("STREAM_GPEN_HOME", str(home))
    monkeypatch.delenv("STREAM_GPEN_OFFLINE", raising=False)
    return SimpleNamespace(home=home, repo=checkout / "weights")


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/w.bin"  # nothing listens there any more


def make(*urls: str, size: int | None = len(BODY), sha256: str | None = SHA, **kw) -> WeightFile:
    return WeightFile(name="test-model", filename="test-model.pth", urls=urls, size=size,
                      sha256=sha256, **kw)


# --- downloads ------------------------------------------------------------------------------
def test_full_download(server, dirs):
    wf = make(server.serve("/w.bin"))
    path = ensure_weights(wf, progress=False)
    assert path == dirs.home / "test-model.pth"
    assert path.read_bytes() == BODY
    assert not path.with_name("test-model.pth.part").exists()
    assert not path.with_name("test-model.pth.part.url").exists()
    assert server.requests == [("/w.bin", None)]
    # Second call: found in the cache, no request.
    assert ensure_weights(wf, progress=False) == path
    assert len(server.requests) == 1


def test_resume_after_cut_connection(server, dirs):
    wf = make(server.serve("/w.bin", faults=["cut"]))
    with pytest.raises(DownloadError, match=r"w\.bin failed: connection closed after 150,000 of 300,000 "
                                            r"bytes; run again to resume"):
        ensure_weights(wf, progress=False)
    part = dirs.home / "test-model.pth.part"
    assert part.stat().st_size == 150_000
    assert not (dirs.home / "test-model.pth").exists()

    path = ensure_weights(wf, progress=False)
    assert server.requests[-1] == ("/w.bin", "bytes=150000-")
    assert path.read_bytes() == BODY
    assert not part.exists()


def test_server_that_ignores_range_restarts_cleanly(server, dirs, caplog):
    wf = make(server.serve("/w.bin", honour_range=False, faults=["cut"]))
    with pytest.raises(DownloadError, match="connection closed"):
        ensure_weights(wf, progress=False)
    with caplog.at_level("INFO", logger="stream_gpen.weights"):
        path = ensure_weights(wf, progress=False)
    assert server.requests[-1] == ("/w.bin", "bytes=150000-")  # asked to resume ...
    assert path.read_bytes() == BODY  # ... got a 200 with the whole file: not appended twice
    assert "ignored the resume request" in caplog.text


def test_part_is_never_resumed_from_another_url(server, dirs, caplog):
    # GPEN's and facexlib's ParseNet are different files: the mirror's bytes after the first URL's
    # cut would make a splice that nothing catches (no size or sha256 published).
    mirror_body = zipped(BODY[::-1] + b"re-saved")
    wf = make(server.serve("/gpen.pth", CKPT, faults=["cut"]), server.serve("/facexlib.pth", mirror_body),
              size=None, sha256=None)
    with caplog.at_level("INFO", logger="stream_gpen.weights"):
        path = ensure_weights(wf, progress=False)
    assert server.requests == [("/gpen.pth", None), ("/facexlib.pth", None)]  # no Range to the mirror
    assert path.read_bytes() == mirror_body
    assert "trying the next URL" in caplog.text
    # (and the record of its check, so the next run does not read it all again)
    assert sorted(p.name for p in dirs.home.iterdir()) == ["test-model.pth", "verified.json"]


def test_part_waits_for_its_own_url(server, dirs):
    # The mirror fails before sending anything: the first URL's part is kept, and resumed from it.
    wf = make(server.serve("/gpen.pth", CKPT, faults=["cut"]), server.url("/gone.pth"), size=None, sha256=None)
    with pytest.raises(DownloadError, match=r"gpen\.pth failed: connection closed after .*gone\.pth failed: HTTP 404"):
        ensure_weights(wf, progress=False)
    part = dirs.home / "test-model.pth.part"
    assert part.stat().st_size == len(CKPT) // 2
    assert (dirs.home / "test-model.pth.part.url").read_text() == server.url("/gpen.pth")
    assert ensure_weights(wf, progress=False).read_bytes() == CKPT
    assert server.requests[-1] == ("/gpen.pth", f"bytes={len(CKPT) // 2}-")
    assert not part.exists()


def test_stale_part_is_retried_from_zero(server, dirs):
    dirs.home.mkdir()
    (dirs.home / "test-model.pth.part").write_bytes(b"x" * 100_000)  # not a prefix of BODY
    path = ensure_weights(make(server.serve("/w.bin")), progress=False)
    assert path.read_bytes() == BODY
    assert server.requests == [("/w.bin", "bytes=100000-"), ("/w.bin", None)]


def test_checksum_mismatch_is_not_kept(server, dirs):
    wf = make(server.serve("/w.bin"), sha256="0" * 64)
    target = dirs.home / "test-model.pth"
    with pytest.raises(ChecksumError, match=rf"checksum mismatch \(sha256 {SHA}, expected 0{{64}}\).*"
                                            rf"save it as {re.escape(str(target))}"):
        ensure_weights(wf, progress=False)
    assert not target.exists()
    assert not target.with_name("test-model.pth.part").exists()


def test_size_mismatch_is_not_kept(server, dirs):
    # Content-Length disagrees with the registry: refused before the body is fetched.
    wf = make(server.serve("/w.bin"), size=len(BODY) + 10, sha256=None)
    with pytest.raises(ChecksumError, match=r"size mismatch \(the server has 300,000 bytes, expected 300,010\)"):
        ensure_weights(wf, progress=False)
    assert [p.name for p in dirs.home.iterdir()] == []  # no .pth, no .part, no .lock
    # No Content-Length: caught by the check of the finished file.
    wf = make(server.serve("/w.bin", faults=["nolength"]), size=len(BODY) - 10, sha256=None)
    with pytest.raises(ChecksumError, match=r"size mismatch \(300,000 bytes, expected 299,990"):
        ensure_weights(wf, progress=False)
    assert [p.name for p in dirs.home.iterdir()] == []  # no .pth, no .part, no .lock


def test_http_404_names_url_and_where_to_put_the_file(server, dirs):
    url = server.url("/missing.bin")
    with pytest.raises(DownloadError) as info:
        ensure_weights(make(url), progress=False)
    msg = str(info.value)
    assert f"{url} failed: HTTP 404" in msg
    assert f"download {url} by hand and save it as {dirs.home / 'test-model.pth'} (300,000 bytes, sha256 {SHA})" in msg
    assert "--weights PATH" in info.value.hint
    assert str(dirs.repo / "test-model.pth") in info.value.hint
    assert info.value.exit_code == 3


def test_connection_refused(dirs):
    url = closed_port_url()
    with pytest.raises(DownloadError, match=rf"{re.escape(url)} failed: cannot connect \(.*refused"):
        ensure_weights(make(url), progress=False)


def test_urls_are_tried_in_order(server, dirs):
    wf = make(server.url("/gone.bin"), server.serve("/w.bin", faults=["500"]), server.serve("/mirror.bin"))
    assert ensure_weights(wf, progress=False).read_bytes() == BODY
    assert [p for p, _ in server.requests] == ["/gone.bin", "/w.bin", "/mirror.bin"]


def test_every_failed_url_is_reported(server, dirs):
    wf = make(server.url("/gone.bin"), closed_port_url())
    with pytest.raises(DownloadError, match=r"gone\.bin failed: HTTP 404 .*; http://127.*failed: cannot connect"):
        ensure_weights(wf, progress=False)


def test_html_page_is_rejected(server, dirs):
    wf = make(server.serve("/w.bin", faults=["html"]))
    with pytest.raises(DownloadError, match="sent an HTML page, not the weights file"):
        ensure_weights(wf, progress=False)
    wf = make(server.serve("/w.bin", faults=["json"]))
    with pytest.raises(DownloadError, match="sent a JSON message, not the weights file"):
        ensure_weights(wf, progress=False)
    assert not (dirs.home / "test-model.pth").exists()


def test_stalled_connection_times_out(server, dirs, monkeypatch):
    monkeypatch.setattr(weights, "_TIMEOUT_S", 0.3)
    wf = make(server.serve("/w.bin", faults=["stall"]))
    with pytest.raises(DownloadError, match=r"connection stalled after 0 bytes \(no data for 0\.3 s\)"):
        ensure_weights(wf, progress=False)


def test_stall_keeps_what_arrived(server, dirs, monkeypatch):
    monkeypatch.setattr(weights, "_TIMEOUT_S", 0.3)
    wf = make(server.serve("/w.bin", faults=["halfstall"]))
    with pytest.raises(DownloadError, match=r"connection stalled after 150,000 bytes \(no data for 0\.3 s\); "
                                            r"run again to resume"):
        ensure_weights(wf, progress=False)
    assert (dirs.home / "test-model.pth.part").stat().st_size == 150_000
    assert ensure_weights(wf, progress=False).read_bytes() == BODY
    assert server.requests[-1] == ("/w.bin", "bytes=150000-")


def test_close_delimited_cut_of_unknown_size_is_not_saved(server, dirs):
    # No Content-Length and no published size: the server closing early looks like the end.
    wf = make(server.serve("/w.pt", CKPT, faults=["cutnolength"]), size=None, sha256=None)
    target = dirs.home / "test-model.pth"
    with pytest.raises(DownloadError, match=rf"connection closed after {len(CKPT) // 2:,} bytes, before the end "
                                            rf"of the file \(a zip archive without its end: truncated at "
                                            rf"{len(CKPT) // 2:,} bytes\); run again to resume"):
        ensure_weights(wf, progress=False)
    assert not target.exists()
    assert (dirs.home / "test-model.pth.part").read_bytes() == CKPT[: len(CKPT) // 2]  # kept to resume
    assert ensure_weights(wf, progress=False).read_bytes() == CKPT
    assert server.requests[-1] == ("/w.pt", f"bytes={len(CKPT) // 2}-")


def test_download_of_unknown_size_that_is_not_a_checkpoint_is_not_kept(server, dirs):
    wf = make(server.serve("/w.pt", b"<html>please log in</html>", faults=["nolength"]), size=None, sha256=None)
    with pytest.raises(ChecksumError, match=r"failed its check: damaged \(not a PyTorch checkpoint \(it starts "
                                            r"with b'<html>please log'\)\)"):
        ensure_weights(wf, progress=False)
    assert [p.name for p in dirs.home.iterdir()] == []  # no .pth, no .part, no .lock


def test_progress_bar_only_on_a_terminal(server, dirs, capsys, monkeypatch):
    wf = make(server.serve("/w.bin"))
    ensure_weights(wf, progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "%|" not in err and "B/s" not in err

    (dirs.home / "test-model.pth").unlink()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    ensure_weights(wf, progress=False)
    assert "%|" not in capsys.readouterr().err
    (dirs.home / "test-model.pth").unlink()
    ensure_weights(wf, progress=True)
    err = capsys.readouterr().err
    assert "test-model.pth:   0%|" in err and "/293k" in err  # drawn (and cleared at the end)


def test_offline_forbids_downloads(server, dirs, monkeypatch):
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    url = server.serve("/w.bin")
    target = dirs.home / "test-model.pth"
    with pytest.raises(WeightsNotFoundError, match=rf"downloads are disabled \(STREAM_GPEN_OFFLINE=1\); "
                                                  rf"download {re.escape(url)} by hand and save it as "
                                                  rf"{re.escape(str(target))}"):
        ensure_weights(make(url), progress=False)
    with pytest.raises(WeightsNotFoundError, match="has not been downloaded"):
        monkeypatch.delenv("STREAM_GPEN_OFFLINE")
        ensure_weights(make(url), download=False)
    assert server.requests == []
    for value in ("0", "off", "OFF ", "false", "no", ""):
        monkeypatch.setenv("STREAM_GPEN_OFFLINE", value)
        assert not weights.offline(), value
    for value in ("1", "on", "yes", "true"):
        monkeypatch.setenv("STREAM_GPEN_OFFLINE", value)
        assert weights.offline(), value


def test_concurrent_downloads_wait_for_each_other(server, dirs, caplog):
    route_url = server.serve("/w.bin", faults=["gate"])
    wf = make(route_url)
    results, first = [], threading.Thread(target=lambda: results.append(ensure_weights(wf, progress=False)))
    with caplog.at_level("INFO", logger="stream_gpen.weights"):
        first.start()
        for _ in range(3000):  # until the first download is under way, held half-sent at the gate
            if server.requests:
                break
            time.sleep(0.01)
        second = threading.Thread(target=lambda: results.append(ensure_weights(wf, progress=False)))
        second.start()
        for _ in range(3000):  # up to 30 s on a very busy machine; normally a few ms
            if "another process is downloading" in caplog.text:
                break
            time.sleep(0.01)
        server.routes["/w.bin"].gate.set()
        first.join(10)
        second.join(10)
    assert "another process is downloading test-model.pth; waiting for it" in caplog.text
    assert results == [dirs.home / "test-model.pth"] * 2
    assert len(server.requests) == 1  # the second one used the first one's file
    assert (dirs.home / "test-model.pth").read_bytes() == BODY


def test_unwritable_cache_is_a_clear_error(server, dirs, monkeypatch):
    dirs.home.parent.joinpath("a-file").write_text("")
    monkeypatch.setenv("STREAM_GPEN_HOME", str(dirs.home.parent / "a-file" / "cache"))
    with pytest.raises(DownloadError, match=r"cannot write test-model\.pth to .*a-file/cache: Not a directory"):
        ensure_weights(make(server.serve("/w.bin")), progress=False)
    assert server.requests == []


def test_cache_that_is_a_file_is_a_clear_error(server, dirs, monkeypatch):
    dirs.home.parent.joinpath("a-file").write_text("")
    monkeypatch.setenv("STREAM_GPEN_HOME", str(dirs.home.parent / "a-file"))
    with pytest.raises(DownloadError, match=r"cannot save test-model\.pth in .*a-file: it is a file, "
                                            r"not a folder") as info:
        ensure_weights(make(server.serve("/w.bin")), progress=False)
    assert "set STREAM_GPEN_HOME to a folder" in info.value.hint
    assert server.requests == []


def test_file_without_urls(dirs):
    wf = WeightFile(name="handmade", filename="handmade.pth", urls=())
    with pytest.raises(WeightsNotFoundError, match=rf"put it by hand as {re.escape(str(dirs.home / 'handmade.pth'))} "
                                                  r"\(size not published, sha256 not published\)"):
        ensure_weights(wf, download=False)
    with pytest.raises(WeightsNotFoundError, match="it has no download URL"):
        ensure_weights(wf)


# --- finding files --------------------------------------------------------------------------
def test_explicit_path_overrides_everything(tmp_path, dirs):
    dirs.home.mkdir()
    (dirs.home / "test-model.pth").write_bytes(BODY)
    mine = tmp_path / "finetuned.pth"
    mine.write_bytes(b"not the registry's bytes")  # explicit files are not checked
    wf = make("http://127.0.0.1:9/never")
    assert ensure_weights(wf, path=mine) == mine
    assert ensure_weights(wf, path=str(dirs.home)) == dirs.home / "test-model.pth"
    with pytest.raises(WeightsNotFoundError, match=r"weights file .*nope\.pth does not exist \(given explicitly"):
        ensure_weights(wf, path=tmp_path / "nope.pth")
    with pytest.raises(WeightsNotFoundError, match=r"no test-model\.pth in the given weights directory"):
        ensure_weights(wf, path=tmp_path / "checkout")


def test_search_order_cache_then_checkout(dirs, monkeypatch, tmp_path):
    wf = make("http://127.0.0.1:9/never")
    assert weights.search_dirs() == [dirs.home, dirs.repo]
    (dirs.repo / "test-model.pth").write_bytes(BODY)
    assert ensure_weights(wf, download=False) == dirs.repo / "test-model.pth"
    dirs.home.mkdir()
    (dirs.home / "test-model.pth").write_bytes(BODY)
    assert ensure_weights(wf, download=False) == dirs.home / "test-model.pth"
    # No pyproject.toml beside weights/: not a checkout (e.g. site-packages), not searched.
    (tmp_path / "checkout" / "pyproject.toml").unlink()
    assert weights.search_dirs() == [dirs.home]


def test_default_home(monkeypatch):
    monkeypatch.delenv("STREAM_GPEN_HOME")
    assert weights.home_dir() == Path.home() / ".cache" / "stream-gpen"


def test_aliases_are_found(dirs):
    wf = make("http://127.0.0.1:9/never", aliases=("other-name.pth",))
    (dirs.repo / "other-name.pth").write_bytes(BODY)
    assert ensure_weights(wf, download=False) == dirs.repo / "other-name.pth"


def test_corrupt_copy_is_skipped_and_replaced(server, dirs, caplog):
    dirs.home.mkdir()
    bad = dirs.home / "test-model.pth"
    bad.write_bytes(BODY[:-1] + bytes([BODY[-1] ^ 1]))  # right size, wrong sha256
    wf = make(server.serve("/w.bin"))
    (dirs.repo / "test-model.pth").write_bytes(BODY)
    with caplog.at_level("WARNING", logger="stream_gpen.weights"):
        assert ensure_weights(wf, download=False) == dirs.repo / "test-model.pth"
    assert f"ignoring {bad}: checksum mismatch" in caplog.text
    (dirs.repo / "test-model.pth").unlink()
    with pytest.raises(WeightsNotFoundError, match=f"the copy at {re.escape(str(bad))} was ignored"):
        ensure_weights(wf, download=False)  # the corrupt copy is never returned (and not "not downloaded")
    with caplog.at_level("WARNING", logger="stream_gpen.weights"):
        assert ensure_weights(wf, progress=False) == bad  # downloaded in its place ...
    assert bad.read_bytes() == BODY
    aside = dirs.home / "test-model.pth.ignored"  # ... once it was moved aside: it may be the user's
    assert aside.read_bytes() == BODY[:-1] + bytes([BODY[-1] ^ 1])
    assert f"moved the ignored copy {bad} aside to {aside}" in caplog.text


def test_ignored_copies_are_never_overwritten(server, dirs):
    dirs.home.mkdir()
    wf = make(server.serve("/w.bin"))
    target = dirs.home / "test-model.pth"
    for n, mine in enumerate([b"my fp16 copy", b"my other copy"]):
        target.write_bytes(mine)
        assert weights.download(wf, progress=False) == target  # `weights download` goes this way
        assert target.read_bytes() == BODY
        target.unlink()
    assert (dirs.home / "test-model.pth.ignored").read_bytes() == b"my fp16 copy"
    assert (dirs.home / "test-model.pth.ignored-2").read_bytes() == b"my other copy"
    # A failed download leaves the copy where it was.
    target.write_bytes(b"mine again")
    with pytest.raises(DownloadError):
        weights.download(make(server.url("/gone.bin")), progress=False)
    assert target.read_bytes() == b"mine again"


def test_verify_statuses(dirs, monkeypatch):
    files = {
        "good": WeightFile(name="good", filename="good.pth", urls=(), size=len(BODY), sha256=SHA),
        "nosha": WeightFile(name="nosha", filename="nosha.pth", urls=(), size=len(CKPT)),
        "short": WeightFile(name="short", filename="short.pth", urls=(), size=len(BODY), sha256=SHA),
        "flipped": WeightFile(name="flipped", filename="flipped.pth", urls=(), size=len(BODY), sha256=SHA),
        "absent": WeightFile(name="absent", filename="absent.pth", urls=()),
    }
    monkeypatch.setattr(weights, "all_weight_files", lambda: files)
    for name, data in [("good", BODY), ("nosha", CKPT), ("short", BODY[:10]), ("flipped", BODY[::-1])]:
        (dirs.repo / f"{name}.pth").write_bytes(data)
    status = {r.file.name: r.status for r in weights.verify()}
    assert status == {"good": "ok", "nosha": "unverified", "short": "size mismatch",
                      "flipped": "checksum mismatch", "absent": "missing"}
    assert [r.status for r in weights.verify(["short"])] == ["size mismatch"]


def safetensors_bytes(payload: bytes) -> bytes:
    header = json.dumps({"w": {"dtype": "U8", "shape": [len(payload)], "data_offsets": [0, len(payload)]}}).encode()
    return len(header).to_bytes(8, "little") + header + payload


def legacy_checkpoint() -> bytes:
    """A small state dict as torch.save wrote it before PyTorch 1.6 (several storage types)."""
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.arange(12, dtype=torch.float32).reshape(3, 4), "n": torch.arange(5),
                "h": torch.ones(3, dtype=torch.float16)}, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def test_unverifiable_copy_must_be_a_whole_checkpoint(dirs, monkeypatch, caplog):
    # No sha256 (GPEN 1024/2048, ParseNet): a cut or foreign file is "damaged", skipped, re-downloaded.
    legacy = legacy_checkpoint()  # torch.save before 1.6 (the RetinaFace files, ParseNet): no directory
    copies = {
        "whole-zip": (CKPT, "unverified", "size unknown too"),
        "legacy": (legacy, "unverified", "size unknown too"),
        "cut-legacy": (legacy[:-10], "damaged", "(pre-1.6 format) cut short"),  # its storages walked
        "junk-legacy": (pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + BODY[:1000], "damaged", "pre-1.6 format"),
        "whole-st": (safetensors_bytes(BODY[:1000]), "unverified", "size unknown too"),
        "cut-zip": (CKPT[:-100], "damaged", "a zip archive without its end: truncated"),
        "cut-st": (safetensors_bytes(BODY[:1000])[:-1], "damaged", "a safetensors file cut short"),
        "html": (b"<html>gone</html>", "damaged", "not a PyTorch checkpoint (it starts with b'<html>gone"),
        "empty": (b"", "damaged", "an empty file"),
    }
    files = {name: WeightFile(name=name, filename=f"{name}.pt", urls=("http://127.0.0.1:9/never",))
             for name in copies}
    monkeypatch.setattr(weights, "all_weight_files", lambda: files)
    for name, (data, _, _) in copies.items():
        (dirs.repo / f"{name}.pt").write_bytes(data)
    results = {r.file.name: r for r in weights.verify()}
    for name, (_, status, detail) in copies.items():
        assert results[name].status == status and detail in results[name].detail, (name, results[name])
    # Never taken for a good copy, so `weights download` does not call it "already present".
    with caplog.at_level("WARNING", logger="stream_gpen.weights"):
        assert weights.find_weights(files["cut-zip"]) is None
    assert "cut-zip.pt: damaged (a zip archive without its end" in caplog.text
    with pytest.raises(WeightsNotFoundError, match="cut-zip.pt was ignored"):
        ensure_weights(files["cut-zip"], download=False)


def test_registry_lists_models_detectors_and_parser():
    files = weights.all_weight_files()
    assert list(files) == ["gpen-bfr-256", "gpen-bfr-512", "gpen-bfr-1024", "gpen-bfr-2048",
                           "retinaface-resnet50", "retinaface-mobilenet0.25", "parsenet"]
    # GPEN's own file first; facexlib's copy of the same network is accepted on disk too
    assert files["parsenet"].urls[0].endswith("/ParseNet-latest.pth")
    assert weights.get_weight_file("parsing_parsenet.pth") is files["parsenet"]
    for wf in files.values():
        assert wf.urls and all(u.startswith("https://") for u in wf.urls)
        assert wf.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", wf.sha256)
    assert weights.get_weight_file("GPEN-BFR-512.pth") is files["gpen-bfr-512"]
    from stream_gpen.models.registry import MODELS

    assert weights.get_weight_file(MODELS["gpen-bfr-256"]) is files["gpen-bfr-256"]  # a ModelSpec
    assert weights.get_weight_file("pytorch_model.pt") is files["gpen-bfr-1024"]
    with pytest.raises(InvalidInputError, match=r"unknown weights 'gpen-bfr-9'; known: gpen-bfr-256, "):
        weights.get_weight_file("gpen-bfr-9")


def test_real_mobilenet_matches_pinned_sha256(mobilenet_weights, monkeypatch):
    monkeypatch.setenv("STREAM_GPEN_HOME", str(mobilenet_weights.parent))
    monkeypatch.setattr(weights, "_remember", lambda *a: None)  # (no record of the check in ../shared)
    assert ensure_weights("retinaface-mobilenet0.25", download=False) == mobilenet_weights
    [result] = weights.verify(["retinaface-mobilenet0.25"])
    assert result.status == "ok", result.detail


def test_errors_are_weights_errors():
    assert issubclass(DownloadError, WeightsError) and issubclass(DownloadError, ConnectionError)
    assert issubclass(WeightsNotFoundError, FileNotFoundError)


def test_weights_readme_lists_every_file():
    text = (Path(weights.__file__).resolve().parents[1] / "weights" / "README.md").read_text()
    for wf in weights.all_weight_files().values():
        row = next((line for line in text.splitlines() if f"`{wf.filename}`" in line and line.startswith("|")), None)
        assert row is not None, f"{wf.filename} has no table row in weights/README.md"
        assert (f"{wf.size:,}" if wf.size else "not published") in row, row
        assert (wf.sha256 or "not published") in row, row
        for url in wf.urls:
            assert url in text
