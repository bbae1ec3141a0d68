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
