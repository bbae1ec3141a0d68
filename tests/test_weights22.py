"""Hunt 22 (weights22): checking a pre-1.6 checkpoint runs nothing from it; a GPEN file's zip
members are checked against their CRC-32 after a download and by `weights verify`; a resume sends
If-Range so a file changed on the server is not spliced onto the old part. Local HTTP server from
test_weights (no internet)."""
from __future__ import annotations

import pickle

import pytest

from stream_gpen import weights
from stream_gpen.errors import ChecksumError, DownloadError
from stream_gpen.weights import _damage, ensure_weights
import tests.test_weights as _tw
from tests.test_weights import BODY, CKPT, make, zipped

server, dirs = _tw.server, _tw.dirs

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Runs:
    """Pickled as a call of ``open(marker, "w")``: unpickling it creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("where", ["magic", "sysinfo", "keys"])
def test_checking_a_pre_16_checkpoint_runs_nothing_from_it(tmp_path, dirs, where):
    # The cache check (weights list/verify/path, a default enhance, the check after a download) read
    # the magic, protocol, system-info and key pickles with plain pickle.load: a crafted file whose
    # first pickle carried the legacy magic number ran its code on a mere `weights list`.
    marker = tmp_path / "ran"
    parts = [(_LEGACY_MAGIC, _Runs(marker)) if where == "magic" else _LEGACY_MAGIC, 1001,
             {"x": _Runs(marker)} if where == "sysinfo" else {"protocol_version": 1001}, {},
             [_Runs(marker)] if where == "keys" else []]
    data = b"".join(pickle.dumps(p, protocol=2) for p in parts) + b"\0" * 64
    path = dirs.home / "parsenet-test.pth"
    dirs.home.mkdir()
    path.write_bytes(data)
    wf = make(size=None, sha256=None)
    detail, truncated = _damage(path)
    assert not marker.exists(), "unpickling ran the file's code"
    assert not truncated and "unreadable index" in detail, detail
    assert weights.check_file(wf, path).status == "damaged" and not marker.exists()


def _flipped(data: bytes, at: int, n: int = 64) -> bytes:
    return data[:at] + bytes(b ^ 0xFF for b in data[at:at + n]) + data[at + n:]


def test_flipped_bytes_inside_a_zip_checkpoint_fail_verify_and_the_download_check(server, dirs):
    # GPEN's files publish no sha256: only the zip directory was read, so damaged weights inside
    # it passed `weights verify` (exit 0) and a download's check, and loaded as wrong numbers.
    bad = _flipped(CKPT, len(CKPT) // 2)
    dirs.home.mkdir()
    (dirs.home / "test-model.pth").write_bytes(bad)
    wf = make(size=None, sha256=None)
    assert _damage(dirs.home / "test-model.pth") is None  # the cheap check (every run) cannot see it
    result = weights.check_file(wf, dirs.home / "test-model.pth", deep=True)
    assert result.status == "damaged" and "CRC-32" in result.detail, result
    (dirs.home / "test-model.pth").unlink()
    wf = make(server.serve("/bad.pth", bad), size=None, sha256=None)
    with pytest.raises(ChecksumError, match="CRC-32"):
        ensure_weights(wf, progress=False)
    assert not (dirs.home / "test-model.pth").exists() and not (dirs.home / "test-model.pth.part").exists()
    good = weights.check_file(wf, _write(dirs.home / "ok.pth", CKPT), deep=True)
    assert good.status == "unverified" and "CRC-32" in good.detail


def _write(path, data):
    path.write_bytes(data)
    return path


def test_weights_verify_reads_the_members(dirs, monkeypatch):
    wf = make(size=None, sha256=None)
    monkeypatch.setattr(weights, "get_weight_file", lambda name: wf)
    dirs.home.mkdir()
    (dirs.home / "test-model.pth").write_bytes(_flipped(CKPT, 1000))
    (result,) = weights.verify(["test-model"])
    assert result.status == "damaged" and "CRC-32" in result.detail


def test_a_resume_sends_if_range_and_a_changed_file_is_sent_whole(server, dirs, caplog):
    # The server's file changed (same length) between a cut download and its resume: the old part's
    # first half was spliced onto the new file's second half, "unverified", and loaded.
    new = zipped(BODY[::-1])
    url = server.serve("/g.pth", CKPT, faults=["cut"], etag='"v1"')
    wf = make(url, size=None, sha256=None)
    with pytest.raises(DownloadError, match="run again to resume"):
        ensure_weights(wf, progress=False)
    assert (dirs.home / "test-model.pth.part.url").read_text().splitlines() == [url, '"v1"']
    server.serve("/g.pth", new, etag='"v2"')
    assert ensure_weights(wf, progress=False).read_bytes() == new
    assert server.requests[-1][1] == f"bytes={len(CKPT) // 2}-" and server.if_ranges[-1] == '"v1"'


def test_a_changed_file_without_a_validator_is_caught_by_its_crcs_and_fetched_again(server, dirs):
    # No ETag or Last-Modified to send back: the splice is caught by the members' CRC-32 and the
    # download is retried from the start.
    new = zipped(BODY[::-1])
    wf = make(server.serve("/g.pth", CKPT, faults=["cut"]), size=None, sha256=None)
    with pytest.raises(DownloadError):
        ensure_weights(wf, progress=False)
    server.serve("/g.pth", new)
    assert ensure_weights(wf, progress=False).read_bytes() == new
    assert server.requests[-1] == ("/g.pth", None)  # the retry from zero


def test_a_dead_proxy_is_named_not_taken_for_the_server(server, dirs, monkeypatch):
    # "cannot connect (Connection refused)" sent users to check a URL that worked in their browser
    dead = _tw.closed_port_url().rsplit("/", 1)[0]
    for var in ("no_proxy", "NO_PROXY", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("http_proxy", dead)
    wf = make(server.serve("/w.bin"))
    with pytest.raises(DownloadError, match=f"cannot connect through the proxy {dead} \\(from \\$http_proxy\\)"):
        ensure_weights(wf, progress=False)
    monkeypatch.setenv("http_proxy", "socks5://127.0.0.1:1080")
    with pytest.raises(DownloadError, match="SOCKS proxies are not supported"):
        ensure_weights(wf, progress=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # bypassed: the server itself, no proxy named
    assert ensure_weights(wf, progress=False).read_bytes() == BODY
