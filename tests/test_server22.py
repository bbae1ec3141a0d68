"""Hunt 22 (server22): SIGHUP drains as SIGTERM does, a killed server's temporary work folder is
reclaimed, cross-site and rebinding requests are refused, a curl --data upload is said as such."""
from __future__ import annotations

import os
import signal
import sys

import pytest

pytest.importorskip("fastapi")

from test_server import KEY, FakeEnhancer, client_for  # noqa: E402

VIDEO = {**KEY, "Content-Type": "video/mp4"}


# --- 1. SIGHUP (a closed terminal) stops `serve` gracefully, as SIGTERM does --------------------------
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_is_a_graceful_stop():
    import uvicorn

    from stream_gpen.server.cli import _server_class

    before = signal.getsignal(signal.SIGHUP)
    with client_for(FakeEnhancer()) as c:
        server = _server_class()(uvicorn.Config(c.app))
        with server.capture_signals():
            os.kill(os.getpid(), signal.SIGHUP)  # (it killed the process: the default action)
            assert server.should_exit and server._captured_signals == [signal.SIGHUP]
            server._captured_signals.clear()  # (uvicorn re-raises it on leaving: not in a test)
            r = c.post("/v1/videos", content=b"x", headers=VIDEO)
            assert r.status_code == 429 and r.json()["detail"] == "the server is shutting down"
    assert signal.getsignal(signal.SIGHUP) == before


# --- 2. a killed server's temporary work folder (no --work-dir) is removed by the next one -----------
@pytest.mark.skipif(sys.platform == "win32", reason="no flock: such folders are not reclaimed")
def test_a_killed_servers_temporary_folder_is_reclaimed(tmp_path, monkeypatch, caplog):
    import logging
    import tempfile

    from stream_gpen.server._jobs import TEMP_LOCK_NAME, make_temp_work_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / "stream-gpen-serve-dead1234"  # its server was killed: the lock is free
    (dead / "Job_id_of_22_chars_xx").mkdir(parents=True)
    (dead / "Job_id_of_22_chars_xx" / "upload.bin").write_bytes(b"u" * 100)
    (dead / TEMP_LOCK_NAME).write_text("")
    live, lock = make_temp_work_dir()  # another server, running
    (live / "upload.bin").write_bytes(b"x")
    starting = tmp_path / "stream-gpen-serve-starting"  # no lock file (yet): left alone
    starting.mkdir()
    other = tmp_path / "something-else"
    other.mkdir()
    (other / TEMP_LOCK_NAME).write_text("")
    try:
        with caplog.at_level(logging.INFO, logger="stream_gpen.server._jobs"):
            with client_for(FakeEnhancer()) as c:
                own = c.app.state.runtime["jobs"].work_dir
                assert own.parent == tmp_path and (own / TEMP_LOCK_NAME).is_file()
                assert not dead.exists()
                assert (live / "upload.bin").exists() and starting.exists() and other.exists()
        assert not own.exists()
        assert "removed 1 temporary work folder(s) (100 bytes)" in caplog.text
    finally:
        lock.close()
