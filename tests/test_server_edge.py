"""Server edge cases found by using it like a client would: odd query values, clients that go away,
shutdown while uploading, paths in job summaries, metrics labels of early refusals."""
from __future__ import annotations

import logging
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")

from stream_gpen.errors import InvalidInputError  # noqa: E402
from stream_gpen.server import ServerConfig, create_app  # noqa: E402
from tests.test_server import KEY, FakeEnhancer, client_for, make_clip, real_server, wait_for, wait_job  # noqa: E402

VIDEO = {**KEY, "Content-Type": "video/mp4"}


@pytest.fixture
def fake():
    return FakeEnhancer()


def metric_lines(c) -> list[str]:
    text = c.get("/metrics", headers=KEY).text
    return [ln for ln in text.splitlines() if ln.startswith("stream_gpen_requests_total")]


# --- 1. start / duration / strength must be finite ------------------------------------------------
@pytest.mark.parametrize("params", [{"start": "inf"}, {"start": "nan"}, {"duration": "inf"},
                                    {"duration": "nan"}, {"strength": "nan"}, {"start": "-inf"}])
def test_non_finite_video_options_are_refused_before_the_upload(tmp_path, params):
    fake = FakeEnhancer()
    with client_for(fake, work_dir=tmp_path) as c:
        r = c.post("/v1/videos", params=params, content=b"v" * 100, headers=VIDEO)
        assert r.status_code == 422, r.text
        assert next(iter(params)) in r.text
        # nothing queued, nothing on disk, nothing run
        assert c.app.state.runtime["jobs"].counts() == dict.fromkeys(c.app.state.runtime["jobs"].counts(), 0)
        assert list((tmp_path / "jobs").iterdir()) == []
        assert fake.video_order == []
        assert not any('status="500"' in ln for ln in metric_lines(c))


def test_non_finite_image_strength_is_refused(fake):
    with client_for(fake) as c:
        for v in ("inf", "nan"):
            r = c.post("/v1/images:enhance", params={"strength": v}, content=b"x",
                       headers={**KEY, "Content-Type": "image/png"})
            assert r.status_code == 422, r.text


class Windowed(FakeEnhancer):
    """Takes ``start``/``duration`` and fails as the source does for a start past the end."""

    def enhance_file(self, src, dst, *, start=0.0, duration=None, **kw):
        if start > 100:
            raise InvalidInputError(f"start={start:g} s is past the end of {str(src)!r}",
                                    hint="the input is shorter than that")
        return super().enhance_file(src, dst, **kw)


@pytest.mark.parametrize("start", ["1e15", "1e308"])
def test_huge_finite_start_is_a_clean_job_error(tmp_path, start):
    with client_for(Windowed(), work_dir=tmp_path) as c:
        r = c.post("/v1/videos", params={"start": start}, content=b"v", headers=VIDEO)
        assert r.status_code == 202 and r.json()["start"] == float(start)
        info = wait_job(c, r.json()["id"])
        assert info["state"] == "failed"
        assert info["error"] == f"InvalidInputError: start={float(start):g} s is past the end of the upload"
        assert str(tmp_path) not in info["error"]


@pytest.mark.parametrize("start", ["1e15", "1e308"])
def test_huge_finite_start_on_a_real_clip(real_client_edge, tmp_path, start):
    """End to end through the real source: no OverflowError, the past-the-end message."""
    clip = make_clip(tmp_path / "c.mp4", np.zeros((64, 64, 3), np.uint8), n=3)
    r = real_client_edge.post("/v1/videos", params={"start": start}, content=clip.read_bytes(), headers=VIDEO)
    assert r.status_code == 202, r.text
    info = wait_job(real_client_edge, r.json()["id"])
    assert info["state"] == "failed" and "OverflowError" not in info["error"]
    assert info["error"].startswith("InvalidInputError: start=") and "past the end of the upload" in info["error"]


@pytest.fixture(scope="module")
def real_client_edge(mobilenet_weights):
    from fastapi.testclient import TestClient

    from stream_gpen import Enhancer
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator

    enh = Enhancer(random_generator(TINY_CONFIG), device="cpu", detector_weights=mobilenet_weights, detect_size=320)
    with TestClient(create_app(enh, config=ServerConfig(api_key="k3y"))) as c:
        yield c


# --- 2. a client that goes away mid-upload --------------------------------------------------------
def test_aborted_uploads_are_not_server_errors(tmp_path, caplog):
    """Half a body, then the socket closes: no traceback, counted as 499, no folder left (real uvicorn)."""
    app = create_app(FakeEnhancer(), config=ServerConfig(work_dir=tmp_path))
    caplog.set_level(logging.INFO)
    # log_config=None: uvicorn's loggers reach caplog (its own config stops them at "uvicorn")
    with real_server(app, log_level="info", log_config=None) as address:
        for route, ctype in (("/v1/videos", "video/mp4"), ("/v1/images:enhance", "image/png")):
            with socket.create_connection(address, timeout=10) as s:
                s.sendall(f"POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                          "Content-Length: 100000\r\n\r\n".encode() + b"v" * 5000)
                time.sleep(0.3)  # the handler is reading the body now
            wait_for(lambda: f'route="{route}",method="POST",status="499"' in app.state.metrics.render(),
                     10, f"499 counted for {route}")
        text = app.state.metrics.render()
        assert 'status="500"' not in text
        errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert errors == [], [r.getMessage() for r in errors]
        assert sum("client closed the connection" in r.getMessage() for r in caplog.records) == 2
        assert not any(r.exc_info for r in caplog.records)
        assert list((tmp_path / "jobs").iterdir()) == []


# --- 3. shutdown has begun: no 202 for a job about to be dropped ------------------------------------
def test_uploads_are_refused_once_shutdown_begins(tmp_path):
    fake = FakeEnhancer(frames=30, frame_delay=0.02)
    with client_for(fake, work_dir=tmp_path) as c:
        jobs = c.app.state.runtime["jobs"]
        running = c.post("/v1/videos", content=b"one", headers=VIDEO).json()
        queued = c.post("/v1/videos", content=b"two", headers=VIDEO).json()
        wait_job(c, running["id"], states=("running",))

        def body():  # an upload that finishes after the signal
            yield b"three-"
            jobs.stop_accepting()
            yield b"more"

        r = c.post("/v1/videos", content=body(), headers=VIDEO)
        assert r.status_code == 503 and r.json()["detail"] == "the server is shutting down", r.text
        r = c.post("/v1/videos", content=b"four", headers=VIDEO)  # a new one: refused before reading
        assert r.status_code == 503 and r.json()["detail"] == "the server is shutting down"
        assert wait_job(c, running["id"])["state"] == "done"  # the running job is not cut short
        time.sleep(0.2)
        assert c.get(f"/v1/videos/{queued['id']}", headers=KEY).json()["state"] == "queued"  # nor started
        assert fake.video_order == ["one"]
        assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == sorted([running["id"], queued["id"]])
    assert list((tmp_path / "jobs").iterdir()) == []


def test_a_stop_signal_tells_the_job_manager(fake):
    import uvicorn

    from stream_gpen.server.cli import _server_class

    with client_for(fake) as c:
        server = _server_class()(uvicorn.Config(c.app))
        server.handle_exit(signal.SIGTERM, None)
        assert server.should_exit
        r = c.post("/v1/videos", content=b"x", headers=VIDEO)
        assert r.status_code == 503 and r.json()["detail"] == "the server is shutting down"


# --- 4. no server paths in what a job shows its client -----------------------------------------------
class Noted(FakeEnhancer):
    def enhance_file(self, src, dst, **kw):
        s = super().enhance_file(src, dst, **kw)
        s.fallbacks = [f"{src} looks truncated: its data ends at 2.24 s of the 5.00 s its header promises",
                       f"late transparency in {str(src)!r}", f"wrote {dst} and {Path(dst).parent / 'x.tmp'}"]
        return s


def test_job_summaries_name_no_server_path(tmp_path):
    with client_for(Noted(), work_dir=tmp_path) as c:
        job = c.post("/v1/videos", content=b"ok", headers=VIDEO).json()
        info = wait_job(c, job["id"])
        assert info["state"] == "done"
        assert info["summary"]["fallbacks"] == [
            "the upload looks truncated: its data ends at 2.24 s of the 5.00 s its header promises",
            "late transparency in the upload", "wrote the result and the job folder/x.tmp"]
        assert str(tmp_path) not in c.get(f"/v1/videos/{job['id']}", headers=KEY).text


# --- 7. early refusals are counted under their route -------------------------------------------------
def test_early_refusals_are_counted_under_their_route(fake):
    with client_for(fake, max_video_bytes=1000, max_upload_bytes=1000) as c:
        assert c.post("/v1/videos", content=b"v" * 2000, headers=VIDEO).status_code == 413
        r = c.post("/v1/images:enhance", content=b"v" * 2000, headers={**KEY, "Content-Type": "image/png"})
        assert r.status_code == 413
        lines = metric_lines(c)
        for needle in ('route="/v1/videos",method="POST",status="413"} 1',
                       'route="/v1/images:enhance",method="POST",status="413"} 1'):
            assert any(needle in ln for ln in lines), (needle, lines)
        assert not any('route="other"' in ln for ln in lines)
        assert c.post("/nowhere", content=b"v" * 2000).status_code == 413
        assert any('route="other",method="POST",status="413"' in ln for ln in metric_lines(c))


# --- the work folder: removed while serving, full, or not a folder ---------------------------------
def test_a_removed_or_full_work_folder_is_said_not_a_bare_500(tmp_path, monkeypatch):
    """A tmp cleaner removes an idle server's work folder: every video upload got Starlette's bare
    500 page until a restart. It is made again; an upload the disk cannot hold gets 507 with why."""
    import builtins
    import errno
    import shutil

    fake = FakeEnhancer()
    with client_for(fake, work_dir=tmp_path) as c:
        shutil.rmtree(tmp_path / "jobs")
        r = c.post("/v1/videos", content=b"one", headers=VIDEO)
        assert r.status_code == 202, r.text
        assert wait_job(c, r.json()["id"])["state"] == "done"
        real_open = builtins.open

        def full(path, mode="r", *a, **k):
            if "w" in mode and str(path).startswith(str(tmp_path)):
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return real_open(path, mode, *a, **k)

        monkeypatch.setattr(builtins, "open", full)
        r = c.post("/v1/videos", content=b"two", headers=VIDEO)
        monkeypatch.undo()
        assert r.status_code == 507 and "No space left on device" in r.json()["detail"], r.text
        assert r.headers["Retry-After"] == "60" and str(tmp_path) not in r.text
        assert fake.video_order == ["one"]


def test_a_work_dir_that_is_a_file_is_refused_before_the_model_loads(tmp_path):
    from stream_gpen.server.cli import _check_work_dir

    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file, not a folder"):
        _check_work_dir(tmp_path / "f")
    _check_work_dir(tmp_path / "new" / "work")  # made
    assert (tmp_path / "new" / "work").is_dir()
