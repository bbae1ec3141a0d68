"""Hunt 27 (weights27): a proxy's password in error messages; an HTTP error or a block page from a
proxy that did not name it; a pre-1.6 checkpoint with another file's bytes after its end taken as
whole; a wrong network's file in the cache taken as the model (verify UNVERIFIED, download
"already present", every run stopped at the load with no way out). Local servers on 127.0.0.1
only (test_weights' file server, and a one-answer "proxy" here)."""
from __future__ import annotations

import dataclasses
import io
import logging
import math
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from stream_gpen import weights
from stream_gpen.cli import main as cli_main
from stream_gpen.errors import CheckpointError, DownloadError, WeightsNotFoundError
from stream_gpen.weights import WeightFile, check_file, ensure_weights, find_weights
import tests.test_weights as _tw

# test_weights' fixtures: a local HTTP server, and a private cache and checkout (autouse)
server, dirs = _tw.server, _tw.dirs

SECRET = "S3cretPass"


@pytest.fixture
def no_proxies(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Proxy(ThreadingHTTPServer):
    """Answers every request with ``status`` and a small HTML page, as a corporate proxy's block
    page (urllib sends a plain-http URL to an HTTP proxy as ``GET http://host/path``)."""

    daemon_threads = True

    def __init__(self, status: int) -> None:
        self.status = status

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(handler):  # noqa: N805
                page = b"<html>Access denied by corporate policy</html>"
                handler.send_response(self.status)
                handler.send_header("Content-Type", "text/html")
                handler.send_header("Content-Length", str(len(page)))
                handler.end_headers()
                handler.wfile.write(page)

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def proxy():
    made = []

    def start(status: int) -> int:
        srv = _Proxy(status)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        made.append(srv)
        return srv.server_port

    yield start
    for srv in made:
        srv.shutdown()
        srv.server_close()


# --- 1. the proxy's user name and password are never shown -----------------------------------
def test_a_proxy_password_is_not_in_the_error_or_the_log(dirs, no_proxies, monkeypatch, caplog):
    # `stream-gpen weights download` printed "cannot connect through the proxy
    # http://alice:S3cretPass@127.0.0.1:9 (from $HTTPS_PROXY)"
    port = _closed_port()
    monkeypatch.setenv("http_proxy", f"http://alice:{SECRET}@127.0.0.1:{port}")
    # (two URLs: the first one's failure is logged as a warning, the last one's is the error)
    wf = _tw.make("http://weights.invalid/a.pth", "http://weights.invalid/b.pth")
    with caplog.at_level(logging.INFO, logger="stream_gpen"), pytest.raises(DownloadError) as info:
        ensure_weights(wf, progress=False)
    message = str(info.value)
    assert f"cannot connect through the proxy http://***@127.0.0.1:{port} (from $http_proxy)" in message
    logged = " | ".join(r.getMessage() for r in caplog.records)
    assert "through the proxy http://***@127.0.0.1" in logged
    assert SECRET not in message and SECRET not in logged and "alice" not in message + logged


@pytest.mark.parametrize("given, shown", [
    ("http://alice:pw@proxy.corp:3128", "http://***@proxy.corp:3128"),
    ("http://alice@proxy.corp:3128/", "http://***@proxy.corp:3128/"),
    ("alice:pw@proxy.corp:3128", "***@proxy.corp:3128"),  # (urllib takes it without a scheme too)
    ("http://a%40b:p%40ss@10.0.0.1:8080", "http://***@10.0.0.1:8080"),
    ("http://proxy.corp:3128", "http://proxy.corp:3128"),
    ("socks5://bob:pw@127.0.0.1:1080", "socks5://***@127.0.0.1:1080"),
    # (review27) urlsplit ends the user info at "#", "?" or "/": such passwords were shown whole
    ("http://alice:s3cr#t@127.0.0.1:18931", "http://***@127.0.0.1:18931"),
    ("http://alice:p?ss@h:3128", "http://***@h:3128"),
    ("alice:p#w@h:3128", "***@h:3128"),
    ("http://alice:pa/ss@h:3128", "http://***@h:3128"),
    ("http://alice:a://b@h:3128", "http://***@h:3128"),
])
def test_a_proxy_url_is_shown_without_its_user_info(given, shown):
    assert weights._masked(given) == shown


# --- 4. an HTTP error or a page from the proxy names the proxy -------------------------------
@pytest.mark.parametrize("status, said", [(403, "HTTP 403 Forbidden"),
                                           (200, "the server sent an HTML page, not the weights file")])
def test_an_answer_through_a_proxy_names_the_proxy(dirs, no_proxies, monkeypatch, proxy, status, said):
    port = proxy(status)
    monkeypatch.setenv("http_proxy", f"http://alice:{SECRET}@127.0.0.1:{port}")
    wf = _tw.make("http://weights.invalid/a.pth", size=None, sha256=None)
    with pytest.raises(DownloadError) as info:
        ensure_weights(wf, progress=False)
    message = str(info.value)
    assert f"{said} through the proxy http://***@127.0.0.1:{port} (from $http_proxy)" in message, message
    assert SECRET not in message


# --- 2. a pre-1.6 checkpoint ends exactly at its last storage --------------------------------
def _legacy(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def test_a_pre_16_checkpoint_with_another_files_end_spliced_on_is_damaged(dirs):
    # a resume of a download onto a changed file: the first half of A, then B's bytes from there
    a = _legacy({"a": torch.zeros(100_000)})
    b = _legacy({"a": torch.ones(200_000)})
    cut = len(a) // 2
    wf = WeightFile(name="parsenet-test", filename="p.pth", urls=("http://127.0.0.1:9/never",))
    dirs.home.mkdir()
    path = dirs.home / "p.pth"
    path.write_bytes(a[:cut] + b[cut:])
    result = check_file(wf, path, deep=True)
    assert result.status == "damaged" and f"{len(b) - len(a):,} bytes after its end" in result.detail, result
    assert find_weights(wf) is None
    with pytest.raises(WeightsNotFoundError, match="was ignored \\(damaged: .*after its end"):
        ensure_weights(wf, download=False)


@pytest.mark.parametrize("obj", [
    {},
    {"w": torch.randn(3, 4), "n": torch.arange(7), "h": torch.ones(2, dtype=torch.float16),
     "b": torch.tensor([True, False]), "c": torch.zeros(3, dtype=torch.complex64),
     "bf": torch.zeros(4, dtype=torch.bfloat16), "i8": torch.zeros(3, dtype=torch.int8),
     "d": torch.zeros(2, dtype=torch.float64), "e": torch.zeros(0), "u16": torch.zeros(3, dtype=torch.uint16)},
    # views of one storage (saved once), in any order; a whole module; a wrapper with plain data
    (lambda x: {"row": x[2], "x": x, "col": x[:, 3], "t": x.t(), "tail": x[5:]})(torch.randn(10, 10)),
    torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)),
    {"state_dict": {"module.w": torch.randn(2, 2)}, "epoch": 3, "opt": [1.0, "x", None]},
], ids=["empty", "dtypes", "views", "module", "wrapped"])
def test_a_whole_pre_16_checkpoint_ends_at_its_last_storage(tmp_path, obj):
    path = tmp_path / "c.pth"
    data = _legacy(obj)
    path.write_bytes(data)
    assert weights._damage(path, deep=True) is None
    path.write_bytes(data + b"\x01")
    detail, truncated = weights._damage(path, deep=True)
    assert not truncated and "1 bytes after its end" in detail


# --- 3. a wrong network's file in the cache --------------------------------------------------
def _shapes_checkpoint(shapes: dict, nan: str | None = None) -> bytes:
    """A state dict with these names and shapes, each tensor one value expanded (a few kB)."""
    buf = io.BytesIO()
    torch.save({k: torch.full((), math.nan if k == nan else 0.0).expand(s) for k, s in shapes.items()}, buf)
    return buf.getvalue()


def _gpen_shapes(config) -> dict:
    from stream_gpen.models.gpen import FullGenerator

    with torch.device("meta"):
        return {k: v.shape for k, v in FullGenerator(config).state_dict().items()}


def _foreign() -> bytes:
    buf = io.BytesIO()
    torch.save({"x": torch.arange(3.0)}, buf)
    return buf.getvalue()


def test_a_wrong_network_in_the_cache_fails_verify_and_is_downloaded_over(dirs, server, no_proxies, monkeypatch,
                                                                           capsys):
    from stream_gpen.models.registry import MODELS

    spec = MODELS["gpen-bfr-1024"]
    right = _shapes_checkpoint(_gpen_shapes(spec.config))
    url = server.serve("/GPEN-BFR-1024.pt", right)
    monkeypatch.setitem(MODELS, spec.name, dataclasses.replace(
        spec, weights=dataclasses.replace(spec.weights, urls=(url,))))
    dirs.home.mkdir()
    cached = dirs.home / "GPEN-BFR-1024.pt"
    cached.write_bytes(_foreign())
    # verify said UNVERIFIED ... exit 0
    assert cli_main(["weights", "verify", "gpen-bfr-1024"]) == 3
    out = capsys.readouterr().out
    assert out.startswith("WRONG MODEL") and "not a gpen-bfr-1024 checkpoint" in out and "unexpected keys (first: x)" in out
    # download said "already present"
    assert cli_main(["weights", "download", "gpen-bfr-1024", "--no-progress"]) == 0
    assert capsys.readouterr().out == f"gpen-bfr-1024: {cached}\n"
    assert cached.read_bytes() == right
    assert (dirs.home / "GPEN-BFR-1024.pt.ignored").read_bytes() == _foreign()  # moved aside, not lost
    assert cli_main(["weights", "verify", "gpen-bfr-1024"]) == 0
    assert capsys.readouterr().out.startswith("UNVERIFIED")


def test_a_wrong_network_in_the_cache_offline_names_the_copy_and_why(dirs, monkeypatch):
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    dirs.home.mkdir()
    (dirs.home / "ParseNet-latest.pth").write_bytes(_foreign())
    with pytest.raises(WeightsNotFoundError, match="ParseNet-latest.pth was ignored \\(wrong model: not a parsenet "
                                                   "checkpoint: .*unexpected keys \\(first: x\\)"):
        ensure_weights("parsenet")


def test_a_download_of_the_wrong_network_is_not_kept(dirs, server, no_proxies):
    from stream_gpen.models.registry import MODELS

    wf = dataclasses.replace(MODELS["gpen-bfr-2048"].weights, urls=(server.serve("/x.pt", _foreign()),))
    with pytest.raises(weights.ChecksumError, match="failed its check: wrong model"):
        ensure_weights(wf, progress=False)
    assert not (dirs.home / wf.filename).exists()


@pytest.fixture
def tiny_model(monkeypatch):
    """A registry entry like GPEN-BFR-1024 (no size, no sha256) for the tiny generator."""
    from stream_gpen.models.gpen import TINY_CONFIG
    from stream_gpen.models.registry import MODELS

    base = MODELS["gpen-bfr-1024"]
    wf = WeightFile(name="gpen-tiny-test", filename="gpen-tiny-test.pth", urls=("http://127.0.0.1:9/never",))
    monkeypatch.setitem(MODELS, wf.name, dataclasses.replace(base, name=wf.name, config=TINY_CONFIG, weights=wf))
    return wf


def test_a_cached_copy_that_will_not_load_says_it_is_the_cached_copy(dirs, tiny_model, monkeypatch, mobilenet_weights):
    # its names and shapes fit, so the search takes it, but a tensor is not float: the load refuses
    # it, and the error said nothing of where the file came from or how to replace it
    from stream_gpen import Enhancer
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator

    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    state = random_generator(TINY_CONFIG, seed=1).state_dict()
    first = next(iter(state))
    state[first] = torch.zeros(state[first].shape, dtype=torch.int64)
    dirs.home.mkdir()
    torch.save(state, dirs.home / tiny_model.filename)
    with pytest.raises(CheckpointError, match="non-float tensors") as info:
        Enhancer(model=tiny_model.name, device="cpu", detector_weights=mobilenet_weights, progress=False)
    hint = info.value.hint or ""
    assert f"{dirs.home / tiny_model.filename} is the copy of gpen-tiny-test in the weights cache" in hint, hint
    assert "`stream-gpen weights download gpen-tiny-test`" in hint


def test_a_cached_parsenet_that_will_not_load_says_it_is_the_cached_copy(dirs, monkeypatch):
    # ParseNet's hint said "pass GPEN's ParseNet-latest.pth ...", when no file had been passed
    from stream_gpen.faces import FaceParser
    from stream_gpen.faces._parse import build_parsenet

    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in build_parsenet().state_dict().items()}
    dirs.repo.joinpath("ParseNet-latest.pth").write_bytes(
        _shapes_checkpoint(shapes, nan=next(k for k in shapes if k.endswith("weight"))))
    with pytest.raises(CheckpointError, match="NaN/inf") as info:
        FaceParser()
    hint = info.value.hint or ""
    assert "is the copy of parsenet in the checkout's weights/ folder" in hint, hint
    assert "`stream-gpen weights download parsenet`" in hint
    # a file the user gave elsewhere keeps its own hint
    own = dirs.repo.parent / "mine.pth"
    own.write_bytes(dirs.repo.joinpath("ParseNet-latest.pth").read_bytes())
    with pytest.raises(CheckpointError) as info:
        FaceParser(weights=own)
    assert "weights download" not in (info.value.hint or "")
