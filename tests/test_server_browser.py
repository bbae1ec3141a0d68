"""The live page in a real browser: Debian's chromium, headless, fake camera fed from samples/.

Chromium's fake capture device plays a Y4M clip made from ``samples/astronaut_clip.mp4`` (a face),
the page streams frames over ``WS /v1/live`` to a real server (uvicorn on 127.0.0.1, tiny random
GPEN + real MobileNet detector) and shows what comes back. Asserts enhanced frames arrive, faces
were restored, and saves a screenshot to ``$STREAM_GPEN_ARTIFACTS`` (default ``tests/artifacts/``).

Needs ``/usr/bin/chromium`` (``scripts/ensure_chromium.sh``, run by ``make test``) and the
``playwright`` package (dev extra; its own browser download is not used). Missing either is a
failure, not a skip, so CI cannot pass without running it; ``STREAM_GPEN_SKIP_BROWSER=1`` skips it
on purpose (e.g. a laptop without apt).
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CLIP = REPO / "samples" / "astronaut_clip.mp4"
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
]


def artifacts_dir() -> Path:
    d = Path(os.environ.get("STREAM_GPEN_ARTIFACTS", REPO / "tests" / "artifacts"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_y4m(src: Path, dst: Path, *, width: int = 320, height: int = 240, frames: int = 25) -> Path:
    """A few frames of ``src`` as raw 4:2:0 Y4M, the format Chromium's fake camera reads."""
    with av.open(str(src)) as c, open(dst, "wb") as out:
        rate = c.streams.video[0].average_rate or 25
        out.write(f"YUV4MPEG2 W{width} H{height} F{rate.numerator}:{rate.denominator} Ip A1:1 C420jpeg\n".encode())
        for i, frame in enumerate(c.decode(video=0)):
            if i >= frames:
                break
            yuv = frame.reformat(width=width, height=height, format="yuv420p").to_ndarray()
            out.write(b"FRAME\n" + np.ascontiguousarray(yuv).tobytes())
    return dst


class _Server:
    """uvicorn in a thread on a free 127.0.0.1 port; stops (and cleans up) on exit."""

    def __init__(self, app) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws_max_size=32 << 20))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "_Server":
        self.thread.start()
        end = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > end:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def test_live_page_in_chromium(mobilenet_weights, tmp_path):
    if os.environ.get("STREAM_GPEN_SKIP_BROWSER") == "1":
        pytest.skip("STREAM_GPEN_SKIP_BROWSER=1")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure_chromium.sh (make test does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[dev]'")
    import httpx

    from stream_gpen import Enhancer
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator
    from stream_gpen.server import ServerConfig, create_app

    enh = Enhancer(random_generator(TINY_CONFIG), device="cpu", detector_weights=mobilenet_weights, detect_size=320)
    app = create_app(enh, config=ServerConfig(api_key="browser-key"))
    fake_cam = write_y4m(CLIP, tmp_path / "camera.y4m")
    shot = artifacts_dir() / "live_page.png"
    shot.unlink(missing_ok=True)

    with _Server(app) as srv, sync_playwright() as pw:
        base = f"http://127.0.0.1:{srv.port}"
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={fake_cam}"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "/")
            page.fill("#key", "browser-key")
            page.dispatch_event("#key", "change")
            page.wait_for_function("document.querySelector('#model').options.length > 0", timeout=30_000)
            page.select_option("#width", "320")
            page.click("#start")
            page.wait_for_function("window.streamGpen.frames >= 5", timeout=90_000)
            stats = page.evaluate("({...window.streamGpen})")
            # The enhanced pane shows a real picture, not an empty canvas.
            spread = page.evaluate("""() => {
                const c = document.querySelector('#enhanced');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let lo = 255, hi = 0;
                for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i + 1]); hi = Math.max(hi, d[i + 1]); }
                return [c.width, c.height, hi - lo];
            }""")
            page.wait_for_timeout(300)  # let the stats line repaint
            page.screenshot(path=str(shot), full_page=True)
            # Raw RGBA frames (no JPEG either way) work too.
            page.select_option("#kind", "raw")
            before = page.evaluate("window.streamGpen.frames")
            page.wait_for_function(f"window.streamGpen.frames >= {before + 4}", timeout=60_000)
            status_text = page.inner_text("#status")
            fps_text = page.inner_text("#fps")
            latency_text = page.inner_text("#latency")
            page.click("#stop")
        finally:
            browser.close()
        metrics = httpx.get(base + "/metrics", headers={"X-API-Key": "browser-key"}).text

    assert not errors, errors
    assert stats["frames"] >= 5 and stats["latency"] is not None and stats["latency"] > 0
    assert float(fps_text) > 0 and latency_text != "–"
    assert spread[0] == 320 and spread[2] > 30, spread
    processed = next(float(l.split()[1]) for l in metrics.splitlines()
                     if l.startswith('stream_gpen_live_frames_total{result="processed"}'))
    faces = next(float(l.split()[1]) for l in metrics.splitlines() if l.startswith("stream_gpen_faces_restored_total"))
    assert processed >= 8
    raw = next((float(l.split()[1]) for l in metrics.splitlines()
               if l.startswith('stream_gpen_live_processed_by_kind_total{kind="rgba"}')), 0.0)
    assert raw >= 1, (status_text, [l for l in metrics.splitlines() if "kind" in l or "error" in l])
    assert faces >= 1, "the fake camera shows a face: the live frames must have had faces restored"
    assert shot.stat().st_size > 10_000
