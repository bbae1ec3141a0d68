"""Hunt 20 (server20): an upload arriving at shutdown gets its 503 at once; job folders a killed
server left are reclaimed at start; a result removed under the server; a malformed Range; the
image endpoint naming a video or a float TIFF; an animation sent as a video."""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")

from stream_gpen.server import ServerConfig, create_app  # noqa: E402
from tests.test_server import KEY, FakeEnhancer, client_for, real_server, wait_for, wait_job  # noqa: E402

VIDEO = {**KEY, "Content-Type": "video/mp4"}


def test_an_upload_still_arriving_at_shutdown_gets_503_at_its_next_chunk(tmp_path):
    # it was read to its last byte (or cut off with no answer at the graceful timeout)
    app = create_app(FakeEnhancer(), config=ServerConfig(work_dir=tmp_path))
    with real_server(app, log_level="warning") as address:
        with socket.create_connection(address, timeout=10) as s:
            s.sendall(b"POST /v1/videos HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\n"
                      b"Content-Length: 1000000\r\n\r\n" + b"v" * 5000)
            wait_for(lambda: any((tmp_path / "jobs").iterdir()), 10, "the upload's job folder")
            app.state.runtime["jobs"].stop_accepting()
            s.sendall(b"v" * 70000)  # (over one read of the server's: a chunk after the signal)
            answer = b""
            end = time.monotonic() + 10
            while b"shutting down" not in answer and time.monotonic() < end:
                got = s.recv(65536)
                if not got:
                    break
                answer += got
        assert answer.startswith(b"HTTP/1.1 503") and b"the server is shutting down" in answer, answer[:300]
        wait_for(lambda: not any((tmp_path / "jobs").iterdir()), 10, "the upload's folder removed")


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_job_folders_a_killed_server_left_are_reclaimed_at_start(tmp_path, caplog):
    from stream_gpen.io._sink import _machine_tag

    jobs = tmp_path / "jobs"
    here = _machine_tag()
    folders = {"killed": f"{here} {_dead_pid()}", "alive": f"{here} {os.getpid()}",
               "elsewhere": f"0badc0de {_dead_pid()}", "older": None}
    for name, owner in folders.items():
        d = jobs / (name * 22)[:22]
        d.mkdir(parents=True)
        (d / "upload.bin").write_bytes(b"a user's video" * 100)
        if owner is not None:
            (d / "owner").write_text(owner + "\n")
    (jobs / "notes").mkdir()  # (not a job id: never touched)
    caplog.set_level("INFO", logger="stream_gpen.server._jobs")
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        left = sorted(p.name for p in jobs.iterdir())
        assert left == sorted(["notes"] + [(n * 22)[:22] for n in ("alive", "elsewhere", "older")]), left
        assert "removed 1 video job folder(s) (1,4" in caplog.text and "by a server that was killed" in caplog.text
        job = c.post("/v1/videos", content=b"one", headers=VIDEO).json()
        tag, pid, lock = (jobs / job["id"] / "owner").read_text().split()
        assert [tag, pid] == [here, str(os.getpid())] and (tmp_path / lock).is_file()
        wait_job(c, job["id"])
    assert not (tmp_path / lock).exists()  # (released and removed at exit)


def test_a_restarted_containers_server_reclaims_by_lock_not_by_process_id(tmp_path):
    # a new process namespace (a container restarted) has another machine tag: the process check
    # could not tell, and the old uploads stayed for good; the dead server's lock tells
    jobs = tmp_path / "jobs"
    dead, live = jobs / ("d" * 22), jobs / ("l" * 22)
    for d, lock in ((dead, ".server-dead.lock"), (live, ".server-live.lock")):
        d.mkdir(parents=True)
        (d / "upload.bin").write_bytes(b"x" * 100)
        (d / "owner").write_text(f"0badc0de 1 {lock}\n")
    (tmp_path / ".server-dead.lock").write_text("")  # (its server gone: nobody holds it)
    import fcntl

    with open(tmp_path / ".server-live.lock", "w") as held:  # another server, running
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with client_for(FakeEnhancer(), work_dir=tmp_path):
            assert not dead.exists() and live.exists()
            assert not (tmp_path / ".server-dead.lock").exists() and (tmp_path / ".server-live.lock").exists()


def test_a_result_removed_under_the_server_is_gone_not_not_done(tmp_path):
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        job = c.post("/v1/videos", content=b"one", headers=VIDEO).json()
        assert wait_job(c, job["id"])["state"] == "done"
        (tmp_path / "jobs" / job["id"] / "result.mp4").unlink()  # a tmp cleaner
        r = c.get(f"/v1/videos/{job['id']}/result", headers=KEY)
        assert r.status_code == 404 and r.json()["error"] == "JobNotFoundError", r.text
        assert "no longer on the server" in r.json()["detail"] and "upload the video again" in r.json()["detail"]
        assert c.get(f"/v1/videos/{job['id']}", headers=KEY).status_code == 404  # no result advertised
        assert not (tmp_path / "jobs" / job["id"]).exists()


@pytest.mark.parametrize("value, status", [("bytes=5-2", 200), ("items=0-5", 200), ("bytes=abc", 200),
                                           ("bytes=", 200), ("bytes=0-3", 206), ("bytes=-4", 206),
                                           ("bytes=0-1,4-5", 206), ("bytes=99999-", 416)])
def test_a_malformed_range_is_ignored(tmp_path, value, status):
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        job = c.post("/v1/videos", content=b"0123456789", headers=VIDEO).json()
        wait_job(c, job["id"])
        r = c.get(f"/v1/videos/{job['id']}/result", headers={**KEY, "Range": value})
        assert r.status_code == status, (value, r.status_code, r.text)
        if status == 200:
            assert r.content == b"video:0123456789"


def test_the_image_endpoint_names_a_video_or_a_float_tiff(tmp_path):
    import tifffile

    from tests._clips import write_video

    clip = write_video(tmp_path / "v.mp4", [np.zeros((32, 32, 3), np.uint8)] * 3)
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((8, 8, 3), np.float32), photometric="rgb")
    with client_for(FakeEnhancer()) as c:
        for body, want in ((clip.read_bytes(), "the body is a video (QuickTime"),
                           (buf.getvalue(), "a 32-bit floating-point RGB TIFF, which is not read here"),
                           (b"%PDF-1.4", "cannot decode the body as an image")):
            r = c.post("/v1/images:enhance", content=body, headers={**KEY, "Content-Type": "application/octet-stream"})
            assert r.status_code == 400 and want in r.json()["detail"], r.text
        assert "POST it to /v1/videos" in c.post("/v1/images:enhance", content=clip.read_bytes(),
                                                 headers={**KEY, "Content-Type": "image/jpeg"}).json()["detail"]


@pytest.fixture(scope="module")
def real_client(mobilenet_weights):
    from fastapi.testclient import TestClient

    from stream_gpen import Enhancer
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator

    enh = Enhancer(random_generator(TINY_CONFIG), device="cpu", detector_weights=mobilenet_weights, detect_size=320)
    with TestClient(create_app(enh, config=ServerConfig(api_key="k3y"))) as c:
        yield c


@pytest.mark.parametrize("fmt, what", [("PNG", "an animated PNG picture (3 frames)"),
                                       ("WEBP", "an animated WEBP picture (3 frames)"),
                                       ("TIFF", "a multi-page TIFF picture (3 pages)")])
def test_an_animation_sent_as_a_video_is_named(real_client, fmt, what):
    from PIL import Image

    frames = [Image.fromarray(np.full((32, 32, 3), 60 * i, np.uint8)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100)
    r = real_client.post("/v1/videos", content=buf.getvalue(), headers={**KEY, "Content-Type": "application/octet-stream"})
    assert r.status_code == 202, r.text
    info = wait_job(real_client, r.json()["id"])
    assert info["state"] == "failed" and what in info["error"], info["error"]
    assert "playlist" not in info["error"] and "returned 22" not in info["error"]


def test_a_live_servers_folders_are_kept_when_its_lock_file_was_removed(tmp_path):
    # a tmp cleaner removed server A's lock file: a second server on the folder deleted A's jobs
    from stream_gpen.io._sink import _machine_tag

    jobs = tmp_path / "jobs"
    alive = jobs / ("a" * 22)
    alive.mkdir(parents=True)
    (alive / "owner").write_text(f"{_machine_tag()} {os.getpid()} .stream-gpen-server-gone.lock\n")
    (tmp_path / ".stream-gpen-server-stale.lock").write_text("")  # (a killed server's, with no jobs)
    with client_for(FakeEnhancer(), work_dir=tmp_path):
        assert alive.exists()  # (its process is alive: the process check decides)
        locks = sorted(p.name for p in tmp_path.glob(".stream-gpen-server-*.lock"))
        assert len(locks) == 1 and locks[0] != ".stream-gpen-server-stale.lock", locks  # (only this server's)


def test_a_video_content_type_at_the_image_endpoint_is_pointed_to_videos_and_back(tmp_path):
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        r = c.post("/v1/images:enhance", content=b"x", headers={**KEY, "Content-Type": "video/mp4"})
        assert r.status_code == 415 and "POST it to /v1/videos" in r.json()["detail"], r.text
        r = c.post("/v1/videos", content=b"x", headers={**KEY, "Content-Type": "image/jpeg"})
        assert r.status_code == 415 and "POST it to /v1/images:enhance" in r.json()["detail"], r.text
        r = c.post("/v1/images:enhance", content=b"x", headers={**KEY, "Content-Type": "text/plain"})
        assert r.status_code == 415 and "POST it to" not in r.json()["detail"]
