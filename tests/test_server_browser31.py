"""The live page's status line, stats and buttons through a session's ends, in headless Chromium
(as tests/test_server_browser.py): a key past Latin-1, a bad frame among good ones, Stop, and a
server that goes away under a running camera."""
from __future__ import annotations

import os

import pytest

from tests.test_server_browser import CHROMIUM, CHROMIUM_ARGS, CLIP, _Server, write_y4m

KEY = "pässwort-ключ"


def test_live_page_status_through_a_session(mobilenet_weights, tmp_path):
    if os.environ.get("STREAM_GPEN_SKIP_BROWSER") == "1":
        pytest.skip("STREAM_GPEN_SKIP_BROWSER=1")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure_chromium.sh (make test does)")
    from playwright.sync_api import sync_playwright

    from stream_gpen import Enhancer
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator
    from stream_gpen.server import ServerConfig, create_app

    enh = Enhancer(random_generator(TINY_CONFIG), device="cpu", detector_weights=mobilenet_weights, detect_size=320)
    app = create_app(enh, config=ServerConfig(api_key=KEY))
    fake_cam = write_y4m(CLIP, tmp_path / "camera.y4m", frames=10)

    with _Server(app) as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={fake_cam}"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            # (the favicon's 404 was one; the first models request's 401, before the key, is meant)
            page.on("console", lambda m: m.type == "error" and "401" not in m.text and errors.append(m.text))
            page.goto(f"http://127.0.0.1:{srv.port}/")
            page.wait_for_function("document.querySelector('#status').textContent === 'API key needed'")
            # A key past Latin-1 goes as its UTF-8 bytes, as curl sends it; the models load and the
            # "API key needed" goes with them.
            page.fill("#key", KEY)
            page.dispatch_event("#key", "change")
            page.wait_for_function("document.querySelector('#model').options.length > 0", timeout=30_000)
            assert page.inner_text("#status") == "idle"

            page.select_option("#width", "320")
            page.click("#start")
            page.wait_for_function("window.streamGpen.frames >= 2", timeout=60_000)
            # A bad frame: its error is said and counted as an error (not a dropped frame), and the
            # status is back to connected once a later frame comes back.
            # (sent with the camera paused and no frame on the wire: a newer frame would replace it,
            # "dropped", before its turn)
            page.evaluate("clearInterval(timer)")
            page.wait_for_timeout(200)  # a grab already started sends its frame
            page.wait_for_function("sent.size === 0", timeout=30_000)
            page.evaluate("ws.send(new Blob([header(++seq, 0, 0, 0), new Uint8Array([1, 2, 3])]))")
            page.wait_for_function("window.streamGpen.errors === 1", timeout=30_000)
            assert page.inner_text("#status").startswith("error: ")
            page.evaluate("timer = setInterval(grab, 33)")
            frames = page.evaluate("window.streamGpen.frames")
            page.wait_for_function(f"window.streamGpen.frames >= {frames + 2}", timeout=60_000)
            page.wait_for_function("document.querySelector('#status').textContent === 'connected'", timeout=10_000)
            assert page.inner_text("#errors") == "1"

            # Stop says idle, and the socket's late close event does not overwrite it.
            page.click("#stop")
            page.wait_for_function("document.querySelector('#status').textContent === 'idle'")
            page.wait_for_timeout(500)
            assert page.inner_text("#status") == "idle"

            # The server goes away under a running camera: the page stops as Stop would, in words.
            page.click("#start")
            page.wait_for_function("document.querySelector('#status').textContent === 'connected'", timeout=30_000)
            srv.server.should_exit = True
            page.wait_for_function("!document.querySelector('#start').disabled", timeout=30_000)
            status = page.inner_text("#status")
            assert "server went away (1012)" in status or "connection was lost (1006)" in status, status
            assert page.evaluate("document.querySelector('#stop').disabled && stream === null && timer === null")
        finally:
            browser.close()
    assert not errors, errors
