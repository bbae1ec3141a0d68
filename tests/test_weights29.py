"""Hunt 29 (weights29): proxy passwords and bad proxy settings.

* ``weights._masked`` hid everything up to the string's last "@": an "@" in a path or a query, or
  in text after the URL, took the host (and what followed) with it (``http://***@x``).
* A proxy setting urllib cannot use (``http:/host``: ValueError quoting it, password and all; a
  port that is no number: InvalidURL) ended a weights download as an internal error (exit 1), or
  said "InvalidURL: nonnumeric port" as if the weights server were wrong: now a DownloadError
  (exit 3) that names the proxy, its password masked.
* Photo URL fetches (``api.fetched``) and the HLS / Range questions of ``io._source`` let the
  same errors through, and quoted the password.

No test reaches the internet: the proxies are refused by urllib before any connection, or
point at a closed port on 127.0.0.1."""
from __future__ import annotations

import logging
import socket

import pytest

from stream_gpen import weights
from stream_gpen.cli import main as cli_main
from stream_gpen.errors import DownloadError, MediaNotFoundError
from stream_gpen.weights import ensure_weights
import tests.test_weights as _tw

# test_weights' fixture: a private cache and checkout (autouse)
dirs = _tw.dirs

SECRET = "S3cretPass"
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
              "no_proxy", "NO_PROXY")


@pytest.fixture
def proxy_env(monkeypatch):
    """Set one proxy variable (every other one cleared)."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)

    def set_(var: str, value: str) -> None:
        monkeypatch.setenv(var, value)

    return set_


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- 2. _masked hides the leading user info only --------------------------------------------
@pytest.mark.parametrize("given, shown", [
    ("http://alice:pw@host/path@x", "http://***@host/path@x"),
    ("http://alice:pw@host/?q=a@b", "http://***@host/?q=a@b"),
    ("http://alice:pw@host:3128 (from x@y)", "http://***@host:3128 (from x@y)"),
    ("http://host:3128 (from x@y)", "http://host:3128 (from x@y)"),
    ("http://host/a@b", "http://host/a@b"),
    ("https://medium.com/@alice/face.jpg", "https://medium.com/@alice/face.jpg"),
    ("http://alice:p@ss@host:3128/p@x", "http://***@host:3128/p@x"),  # (urllib: the last "@" before the host)
    ("http:/alice:pw@host:3128", "http:/***@host:3128"),  # (one slash: urllib refuses it; still masked)
])
def test_only_the_leading_user_info_is_masked(given, shown):
    assert weights._masked(given) == shown


def test_text_after_the_url_is_kept_and_a_proxy_password_with_a_space_still_masked(proxy_env):
    # (a space ends the URL for the rule above: the proxy urllib uses is still known whole)
    proxy = f"http://alice:my {SECRET}@127.0.0.1:3128"
    proxy_env("https_proxy", proxy)
    assert weights._masked(proxy) == "http://***@127.0.0.1:3128"
    assert weights._masked("http://127.0.0.1:3128 (from $https_proxy, see a@b)") \
        == "http://127.0.0.1:3128 (from $https_proxy, see a@b)"


# --- 3. a proxy setting urllib cannot use: DownloadError, exit 3, the proxy named -------------
@pytest.mark.parametrize("proxy, why", [
    (f"http://alice:{SECRET}@127.0.0.1:notaport", "nonnumeric port: 'notaport'"),
    (f"http:/alice:{SECRET}@127.0.0.1:3128", "proxy URL with no authority"),
])
def test_a_bad_proxy_setting_is_a_download_error_naming_it(dirs, proxy_env, caplog, proxy, why):
    proxy_env("HTTPS_PROXY", proxy)
    wf = _tw.make("https://weights.invalid/a.pth", "https://weights.invalid/b.pth")
    with caplog.at_level(logging.INFO, logger="stream_gpen"), pytest.raises(DownloadError) as info:
        ensure_weights(wf, progress=False)
    message, hint = str(info.value), info.value.hint
    shown = weights._masked(proxy)
    assert "***@127.0.0.1" in shown
    assert f"the proxy {shown} (from $HTTPS_PROXY) is not a usable proxy URL" in message, message
    assert why in message, message
    assert hint.startswith("correct $HTTPS_PROXY") and "unset it" in hint, hint
    assert info.value.exit_code == 3
    logged = " | ".join(r.getMessage() for r in caplog.records)
    for text in (message, hint, logged, repr(info.value.__cause__), repr(info.value.__context__)):
        assert SECRET not in text and "alice" not in text, text


def test_a_bad_proxy_setting_at_the_command_line_is_exit_3(dirs, proxy_env, monkeypatch, capsys):
    import dataclasses

    real = weights.DETECTOR_FILES["retinaface-mobilenet0.25"]
    monkeypatch.setitem(weights.DETECTOR_FILES, real.name,
                        dataclasses.replace(real, urls=("https://weights.invalid/m.pth",)))
    proxy_env("HTTPS_PROXY", f"http://alice:{SECRET}@127.0.0.1:notaport")
    assert cli_main(["weights", "download", real.name, "--no-progress"]) == 3
    captured = capsys.readouterr()
    err = captured.out + captured.err
    assert "the proxy http://***@127.0.0.1:notaport (from $HTTPS_PROXY) is not a usable proxy URL" in err, err
    assert "hint: correct $HTTPS_PROXY" in err and SECRET not in err, err


# --- 4. photo URLs and the stream questions -----------------------------------------------------
@pytest.mark.parametrize("proxy", [f"http://alice:{SECRET}@127.0.0.1:notaport",
                                   f"http:/alice:{SECRET}@127.0.0.1:3128",
                                   f"http://alice:{SECRET}@127.0.0.1:{_closed_port()}"])
def test_a_photo_url_fetch_names_the_proxy_without_its_password(proxy_env, proxy):
    from stream_gpen.api import fetched

    proxy_env("http_proxy", proxy)
    url = f"http://127.0.0.1:{_closed_port()}/face.png"
    with pytest.raises(MediaNotFoundError) as info:
        with fetched(url):
            pass
    message = str(info.value)
    assert f"cannot fetch {url} through the proxy {weights._masked(proxy)} (from $http_proxy)" in message, message
    for text in (message, info.value.hint, repr(info.value.__cause__)):
        assert SECRET not in text, text
    assert info.value.__cause__ is None or SECRET not in str(info.value.__cause__)


def test_a_photo_urls_own_password_is_not_shown(proxy_env):
    from stream_gpen._urls import without_passwords

    proxy_env("no_proxy", "*")
    # (urllib's http.client quotes what it took for a port: "nonnumeric port: 'S3cretPass@host'")
    assert without_passwords(f"nonnumeric port: '{SECRET}@127.0.0.1'", f"http://bob:{SECRET}@127.0.0.1/x.png") \
        == "nonnumeric port: '***@127.0.0.1'"


def test_the_stream_questions_take_a_bad_proxy_for_dont_know(proxy_env):
    from stream_gpen.io._source import _hls_ended, _served_without_ranges

    proxy_env("http_proxy", f"http://alice:{SECRET}@127.0.0.1:notaport")
    port = _closed_port()
    # (InvalidURL ended the run as an internal error)
    assert _served_without_ranges(f"http://127.0.0.1:{port}/clip.mp4", {}, 1) is False
    assert _hls_ended(f"http://127.0.0.1:{port}/live.m3u8") is False


def test_a_proxy_setting_of_an_earlier_fetch_does_not_stick(proxy_env, tmp_path):
    """urlopen's opener is built once a process, with the proxies of that moment: a photo fetch
    made while a (bad) proxy was set sent every later fetch of the process through it too (a
    server's process, a program restoring URLs). Each fetch now reads the proxies of its time."""
    import http.server
    import threading

    from stream_gpen.api import fetched
    from stream_gpen.io._source import _served_without_ranges

    proxy_env("http_proxy", f"http://alice:{SECRET}@127.0.0.1:{_closed_port()}")
    url_closed = f"http://127.0.0.1:{_closed_port()}/face.png"
    with pytest.raises(MediaNotFoundError):
        with fetched(url_closed):
            pass
    assert _served_without_ranges(url_closed, {}, 1) is False

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"data")

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        proxy_env("http_proxy", "")
        url = f"http://127.0.0.1:{srv.server_address[1]}/face.png"
        with fetched(url) as local:
            assert local.read_bytes() == b"data"
        assert _served_without_ranges(url, {}, 1) is True
    finally:
        srv.shutdown()
