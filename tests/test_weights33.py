"""Hunt 33 (weights33): what a download says on its way and when it stops.

Every download here is from a local HTTP server on 127.0.0.1 (test_weights' ``server``); no test
reaches the internet."""
from __future__ import annotations

import dataclasses
import os

import pytest

from stream_gpen import _terminal, weights
from stream_gpen.cli import main as cli_main
import tests.test_weights as _tw

# test_weights' fixtures: a private cache and checkout (autouse), and the local file server
dirs, server = _tw.dirs, _tw.server


@pytest.fixture
def detector(server, monkeypatch):
    """The small detector's registry entry, served from 127.0.0.1 (test_weights' 300 kB body)."""
    real = weights.DETECTOR_FILES["retinaface-mobilenet0.25"]
    wf = dataclasses.replace(real, urls=(server.serve("/m.pth"),), size=len(_tw.BODY), sha256=_tw.SHA)
    monkeypatch.setitem(weights.DETECTOR_FILES, real.name, wf)
    return wf


# --- 1. progress when stderr is not a sized terminal ---------------------------------------------
def test_a_piped_download_says_how_far_it_is(detector, monkeypatch, capsys):
    """Piped (or logged, or CI) a download drew nothing between "downloading" and "saved": minutes
    of silence for a 284 MB file. Now a line every PIPED_EVERY_S (shrunk here to every chunk)."""
    monkeypatch.setattr(_terminal, "PIPED_EVERY_S", 0.0)
    assert cli_main(["weights", "download", detector.name]) == 0
    err = capsys.readouterr().err
    assert "detection_mobilenet0.25_Final.pth: 0.3 of 0.3 MB (100%), " in err and " MB/s" in err, err
    assert "%|" not in err  # (no bar's carriage returns in a log)

    (weights.home_dir() / detector.filename).unlink()
    assert cli_main(["weights", "download", detector.name, "--no-progress"]) == 0
    assert "MB/s" not in capsys.readouterr().err


def test_a_terminal_of_no_size_gets_the_lines_too(detector, monkeypatch, caplog):
    """``script`` and some CI runners give a pty of 0x0, where tqdm draws nothing."""
    import sys

    monkeypatch.setattr(_terminal, "PIPED_EVERY_S", 0.0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stderr, "fileno", lambda: 2, raising=False)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=None: os.terminal_size((0, 0)))
    caplog.set_level("INFO", logger="stream_gpen")
    weights.download(detector.name, progress=True)
    assert any("0.3 of 0.3 MB (100%)" in r.getMessage() for r in caplog.records), caplog.text


# --- 2. a file-size limit (ulimit -f) --------------------------------------------------------------
_LIMITED = """
import dataclasses, resource, sys
from stream_gpen import weights
from stream_gpen.cli import main
real = weights.DETECTOR_FILES["retinaface-mobilenet0.25"]
weights.DETECTOR_FILES[real.name] = dataclasses.replace(real, urls=(sys.argv[1],), size=int(sys.argv[2]),
                                                        sha256=sys.argv[3])
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
sys.exit(main(["weights", "download", real.name, "--no-progress"]))
"""


def test_a_download_over_ulimit_f_says_so_and_keeps_its_part(server, dirs):
    """EFBIG (the process's file-size limit: Python ignores SIGXFSZ, so the write fails) was told as
    "set STREAM_GPEN_HOME to a writable directory with enough space", and every rerun resumed the
    part only to stop at the same byte."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("resource")
    url = server.serve("/m.pth")
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", _LIMITED, url, str(len(_tw.BODY)), _tw.SHA], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(root)))
    assert r.returncode == 3, r.stderr
    part = dirs.home / "detection_mobilenet0.25_Final.pth.part"
    assert ("cannot write detection_mobilenet0.25_Final.pth to " f"{dirs.home}: the file is larger than this "
            "process may write (its file-size limit, ulimit -f: 100,000 bytes) (File too large); the partial "
            f"download {part} (100,000 bytes) is kept to resume it") in r.stderr, r.stderr
    assert "hint: raise that limit (ulimit -f unlimited" in r.stderr and "enough space" not in r.stderr, r.stderr


# --- 3. a dangling link or a folder under the file's name --------------------------------------------
def test_a_dangling_link_is_named_as_such(detector, dirs, monkeypatch, capsys, caplog):
    """A link to a drive not mounted was "not downloaded ... save it as <the link's path>" (list:
    "missing"), and a download moved it aside as an "ignored copy ... pass it with --detector-weights"."""
    dirs.home.mkdir()
    link = dirs.home / detector.filename
    link.symlink_to("/nonexistent-usb/detection_mobilenet0.25_Final.pth")
    said = f"{link} is a link to /nonexistent-usb/detection_mobilenet0.25_Final.pth, which does not exist"

    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    assert cli_main(["weights", "verify", "mobilenet0.25"]) == 3
    assert said in capsys.readouterr().out
    cli_main(["weights", "list"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(detector.name))
    assert row.endswith(f"missing  ({said})"), row
    assert cli_main(["weights", "path", "mobilenet0.25"]) == 3
    assert f"it has not been downloaded ({said})" in capsys.readouterr().err

    monkeypatch.delenv("STREAM_GPEN_OFFLINE")
    caplog.set_level("INFO", logger="stream_gpen")
    assert weights.download(detector.name, progress=False).read_bytes() == _tw.BODY
    moved = [r.getMessage() for r in caplog.records if r.getMessage().startswith("moved ")]
    assert moved == [f"moved {link} (a link to /nonexistent-usb/detection_mobilenet0.25_Final.pth, which does not "
                     f"exist) aside to {link}.ignored, to make room for the download; delete it if you do not need "
                     "it"], moved


def test_a_folder_under_the_files_name_is_named_as_such(detector, dirs, monkeypatch, capsys):
    (dirs.home / detector.filename).mkdir(parents=True)
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    assert cli_main(["weights", "verify", "mobilenet0.25"]) == 3
    assert f"{dirs.home / detector.filename} is a directory" in capsys.readouterr().out


# --- 4. a server that resumes at another byte ------------------------------------------------------
def test_a_resume_at_the_wrong_byte_starts_over_in_the_same_run(server, dirs, caplog):
    """It failed the run ("server resumed at 149000 instead of byte 150,000 ...: run again") and
    threw the part away; the next run then started from zero anyway."""
    wf = _tw.make(server.serve("/w.bin", faults=["cut", "wrongstart"]))
    with pytest.raises(weights.DownloadError):
        weights.ensure_weights(wf, progress=False)
    caplog.set_level("INFO", logger="stream_gpen")
    assert weights.ensure_weights(wf, progress=False).read_bytes() == _tw.BODY
    assert [r for _, r in server.requests] == [None, "bytes=150000-", None]
    assert (f"{server.url('/w.bin')} resumed test-model.pth at byte 149,000 instead of byte 150,000; downloading "
            "it from the start") in caplog.text, caplog.text


# --- 5. a truncated checkpoint given by its path ----------------------------------------------------
def test_a_truncated_checkpoint_says_where_it_ends(tmp_path):
    """torch's 337-character essay was quoted cut at 200 characters, mid-sentence ("... If you are
    seeing this er"); the weights manager's own finding says what is wrong."""
    import torch

    from stream_gpen.errors import CheckpointError
    from stream_gpen.models.loading import read_state_dict

    path = tmp_path / "trunc.pth"
    torch.save({"w": torch.zeros(64, 64)}, path)
    path.write_bytes(path.read_bytes()[:9000])
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path)
    assert (f"{path} could not be read as a PyTorch checkpoint (a zip archive without its end: truncated at "
            "9,000 bytes); the file is damaged") in str(info.value), str(info.value)


def test_a_long_reason_is_cut_at_a_sentence_end():
    from stream_gpen.models.loading import _first_sentences

    text = "First sentence here. " + "Second one runs on " * 20
    assert _first_sentences(text) == "First sentence here."
    assert _first_sentences("word " * 60).endswith("word ...") and len(_first_sentences("word " * 60)) <= 204
    assert _first_sentences("short.") == "short."


# --- 6. what a redirect, a redirect loop and a compressed reply are said as ---------------------------
def test_a_404_after_a_redirect_names_the_url_that_said_it(server, dirs):
    """GitHub's release downloads answer from another host: the 404 named only the first URL."""
    import http.server
    import threading

    class Redirect(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(302)
            # (another host: localhost, not 127.0.0.1; a signed query that is not worth quoting)
            self.send_header("Location", f"http://localhost:{server.server_port}/gone.pth?X-Signature=abc")
            self.send_header("Content-Length", "0")
            self.end_headers()

    first = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=first.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{first.server_port}/m.pth"
        with pytest.raises(weights.DownloadError) as info:
            weights.ensure_weights(_tw.make(url), progress=False)
    finally:
        first.shutdown()
        first.server_close()
    assert (f"{url} failed: HTTP 404 Not Found (redirected to http://localhost:{server.server_port}/gone.pth)"
            in str(info.value)), str(info.value)


def test_a_redirect_loop_names_the_proxy(server, dirs, monkeypatch):
    """Every other failure through a proxy names it; a redirect loop did not. (The local server
    plays the proxy: it is asked for the absolute URL, and answers with a redirect to it.)"""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    url = "http://weights.invalid/w.bin"
    server.routes[url] = _tw.Route(_tw.BODY, faults=["loop"] * 20)
    proxy = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("http_proxy", proxy)
    with pytest.raises(weights.DownloadError) as info:
        weights.ensure_weights(_tw.make(url), progress=False)
    assert f"too many redirects (a redirect loop?) through the proxy {proxy} (from $http_proxy)" \
        in str(info.value), str(info.value)


def test_a_compressed_reply_is_named(server, dirs, monkeypatch):
    """A proxy or mirror that gzips the reply: "size mismatch (the server has N bytes ...)" said
    nothing of why."""
    import gzip

    squeezed = gzip.compress(_tw.BODY)
    real = _tw._Handler.end_headers

    def end_headers(self):
        if self.path == "/gz.bin":
            self.send_header("Content-Encoding", "gzip")
        real(self)

    monkeypatch.setattr(_tw._Handler, "end_headers", end_headers)
    url = server.serve("/gz.bin", body=squeezed)
    with pytest.raises(weights.DownloadError) as info:
        weights.ensure_weights(_tw.make(url), progress=False)
    assert (f"{url} failed: the server sent the file compressed (Content-Encoding: gzip), not as its own bytes"
            in str(info.value)), str(info.value)
    assert not list(dirs.home.glob("*.part"))
