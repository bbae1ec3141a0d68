"""Hunt 25 (weights): a cached GPEN checkpoint with a flipped byte inside its weights was used
silently. Where no sha256 is published (GPEN-BFR-256, the CPU default, among them) a run checked
only the size and the zip directory; torch.load does not check the members' CRC-32, so the file
loaded with one value changed, while `weights verify` said DAMAGED. Now a copy gets the whole
check the first time it is used, and the verdict is remembered beside it (verified.json) while the
file stays the same. Local HTTP server from test_weights (no internet)."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile

import pytest
import torch

from stream_gpen import weights
from stream_gpen.cli import main as cli_main
from stream_gpen.errors import WeightsNotFoundError
from stream_gpen.weights import WeightFile, ensure_weights
import tests.test_weights as _tw
from tests.test_weights import BODY, SHA

# test_weights' fixtures: a local HTTP server, and a private cache and checkout (autouse)
server, dirs = _tw.server, _tw.dirs

NAME = "gpen-tiny-test"
STAMPS_FILE = "verified.json"  # (weights.STAMPS_FILE: the record of each copy's check, beside it)


def _checkpoint() -> tuple[bytes, bytes]:
    """A tiny GPEN generator as torch.save writes it (a zip), and the same with one data byte flipped."""
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator

    buf = io.BytesIO()
    torch.save(random_generator(TINY_CONFIG, seed=1).state_dict(), buf)
    good = buf.getvalue()
    with zipfile.ZipFile(io.BytesIO(good)) as archive:  # the largest tensor's bytes, stored as they are
        member = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        at = good.index(archive.read(member)) + member.file_size // 2
    bad = good[:at] + bytes([good[at] ^ 0x01]) + good[at + 1:]
    return good, bad


GOOD, BAD = _checkpoint()


@pytest.fixture
def tiny_model(monkeypatch):
    """A registry entry like GPEN-BFR-256 (a size, no sha256) for a tiny generator."""
    from stream_gpen.models.gpen import TINY_CONFIG
    from stream_gpen.models.registry import MODELS

    base = MODELS["gpen-bfr-256"]
    wf = WeightFile(name=NAME, filename=f"{NAME}.pth", urls=("http://127.0.0.1:9/never",), size=len(GOOD))
    monkeypatch.setitem(MODELS, NAME, dataclasses.replace(base, name=NAME, config=TINY_CONFIG, weights=wf))
    return wf


@pytest.fixture
def crc_passes(monkeypatch):
    """How many times a zip archive's members were read against their CRC-32."""
    calls = []
    real = zipfile.ZipFile.testzip
    monkeypatch.setattr(zipfile.ZipFile, "testzip", lambda self: calls.append(1) or real(self))
    return calls


def _cache(dirs, data: bytes):
    dirs.home.mkdir(exist_ok=True)
    path = dirs.home / f"{NAME}.pth"
    path.write_bytes(data)
    return path


def test_the_flipped_byte_loads_silently_without_the_check():
    # why the whole check is needed: torch.load reads the damaged file as if it were whole
    good = torch.load(io.BytesIO(GOOD), weights_only=True)
    bad = torch.load(io.BytesIO(BAD), weights_only=True)
    assert len(BAD) == len(GOOD) and any(not torch.equal(good[k], bad[k]) for k in good)


def test_a_damaged_cached_copy_is_refused_by_path_list_and_loading(dirs, tiny_model, monkeypatch, capsys,
                                                                   mobilenet_weights):
    from stream_gpen import Enhancer

    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    path = _cache(dirs, BAD)
    assert cli_main(["weights", "path", NAME]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""  # no path printed: a script must not go on with it
    err = " ".join(captured.err.split())
    assert f"the copy at {path} was ignored (damaged: " in err and "fails its CRC-32 check" in err
    assert "downloads are disabled" in err and f"save it as {path}" in err  # how to fix it

    assert cli_main(["weights", "list"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(NAME + " "))
    assert line.endswith(f"{path}  (damaged: run `stream-gpen weights verify`)"), line

    with pytest.raises(WeightsNotFoundError, match="fails its CRC-32 check"):
        Enhancer(model=NAME, device="cpu", detector_weights=mobilenet_weights)
    # the good bytes under the same name load (the check, not the registry entry, refused it)
    path.write_bytes(GOOD)
    assert cli_main(["weights", "path", NAME]) == 0 and capsys.readouterr().out.strip() == str(path)
    Enhancer(model=NAME, device="cpu", detector_weights=mobilenet_weights)


def test_online_a_damaged_cached_copy_is_moved_aside_and_downloaded_again(server, dirs, monkeypatch):
    wf = WeightFile(name=NAME, filename=f"{NAME}.pth", urls=(server.serve("/tiny.pth", GOOD),), size=len(GOOD))
    path = _cache(dirs, BAD)
    assert ensure_weights(wf, progress=False) == path
    assert path.read_bytes() == GOOD and (dirs.home / f"{NAME}.pth.ignored").read_bytes() == BAD


def test_the_verdict_is_remembered_so_the_second_use_skips_the_crc_pass(dirs, tiny_model, crc_passes):
    path = _cache(dirs, GOOD)
    assert weights.find_weights(NAME) == path and len(crc_passes) == 1
    stamps = json.loads((dirs.home / STAMPS_FILE).read_text())
    assert stamps[path.name]["status"] == "unverified" and stamps[path.name]["size"] == len(GOOD)
    for _ in range(3):
        assert weights.find_weights(NAME) == path
        assert ensure_weights(NAME, download=False) == path
    assert len(crc_passes) == 1
    # a damaged copy's verdict too: refused each time, read once
    other = dirs.home / f"{NAME}-other.pth"
    other.write_bytes(BAD)
    wf = dataclasses.replace(tiny_model, filename=other.name)
    for _ in range(2):
        assert weights.checked(wf, other).status == "damaged"
    assert len(crc_passes) == 2
    assert weights.checked(tiny_model, path).good and len(crc_passes) == 2  # both kept in the record


def test_a_touched_or_replaced_copy_is_checked_again(dirs, tiny_model, crc_passes):
    path = _cache(dirs, GOOD)
    assert weights.find_weights(NAME) == path and len(crc_passes) == 1
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched
    assert weights.find_weights(NAME) == path and len(crc_passes) == 2
    # rewritten in place with damaged bytes, its size and mtime put back as they were (`touch -r`)
    st = path.stat()
    path.write_bytes(BAD)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert weights.find_weights(NAME) is None and len(crc_passes) == 3
    # replaced by another file (a new inode) of the same size
    replacement = dirs.home / "new.pth"
    replacement.write_bytes(GOOD)
    os.replace(replacement, path)
    assert weights.find_weights(NAME) == path and len(crc_passes) == 4
    path.write_bytes(GOOD + b"\0")  # another size: refused by the size alone, then again once right
    assert weights.find_weights(NAME) is None
    path.write_bytes(GOOD)
    assert weights.find_weights(NAME) == path and len(crc_passes) == 5
    # the registry's expectations are part of the record: a changed entry is checked afresh
    assert weights.checked(dataclasses.replace(tiny_model, size=None), path).good and len(crc_passes) == 6


def test_a_read_only_cache_still_refuses_and_uses_copies_without_a_record(dirs, tiny_model, crc_passes, monkeypatch):
    path = _cache(dirs, GOOD)
    bad = dirs.home / f"{NAME}-bad.pth"
    bad.write_bytes(BAD)
    os.chmod(dirs.home, 0o555)
    try:
        for n in (1, 2):  # no record could be written: checked in full each time, never used unchecked
            assert weights.find_weights(NAME) == path and len(crc_passes) == 2 * n - 1
            assert weights.checked(dataclasses.replace(tiny_model, filename=bad.name), bad).status == "damaged"
        assert not (dirs.home / STAMPS_FILE).exists()
        assert [p.name for p in dirs.home.iterdir() if p.name.startswith(STAMPS_FILE)] == []
    finally:
        os.chmod(dirs.home, 0o755)
    # an unreadable record is no record
    (dirs.home / STAMPS_FILE).write_text("{cut sho")
    assert weights.find_weights(NAME) == path and len(crc_passes) == 5
    assert weights.find_weights(NAME) == path and len(crc_passes) == 5


def test_a_published_sha256_is_hashed_once_per_copy(dirs, monkeypatch):
    # (the detectors: a run hashed their file each time it started)
    hashed = []
    real = weights.sha256_file
    monkeypatch.setattr(weights, "sha256_file", lambda p: hashed.append(p) or real(p))
    wf = WeightFile(name="test-model", filename="test-model.pth", urls=(), size=len(BODY), sha256=SHA)
    (dirs.repo / "test-model.pth").write_bytes(BODY)  # the checkout's weights/ folder keeps a record too
    for _ in range(3):
        assert ensure_weights(wf, download=False) == dirs.repo / "test-model.pth"
    assert len(hashed) == 1 and (dirs.repo / STAMPS_FILE).is_file()
    assert not dirs.home.exists()  # (no cache folder made for it)


def test_verify_reads_everything_and_its_verdict_is_what_runs_use(dirs, tiny_model, crc_passes, monkeypatch):
    monkeypatch.setattr(weights, "all_weight_files", lambda: {NAME: tiny_model})
    path = _cache(dirs, GOOD)
    assert weights.find_weights(NAME) == path and len(crc_passes) == 1
    assert [r.status for r in weights.verify([NAME])] == ["unverified"] and len(crc_passes) == 2  # not skipped
    assert weights.find_weights(NAME) == path and len(crc_passes) == 2
    # A record that says good while the bytes are bad (rot the mtime cannot show; simulated by
    # writing the record for the damaged file): runs trust it, `weights verify` finds it and
    # runs refuse the copy from then on.
    path.write_bytes(BAD)
    stamps = json.loads((dirs.home / STAMPS_FILE).read_text())
    st = path.stat()
    stamps[path.name].update(mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns, inode=st.st_ino)
    (dirs.home / STAMPS_FILE).write_text(json.dumps(stamps))
    assert weights.find_weights(NAME) == path
    assert cli_main(["weights", "verify", NAME]) == 3
    assert weights.find_weights(NAME) is None


def test_a_download_records_its_check(server, dirs, crc_passes):
    wf = WeightFile(name=NAME, filename=f"{NAME}.pth", urls=(server.serve("/tiny.pth", GOOD),), size=len(GOOD))
    path = ensure_weights(wf, progress=False)
    assert len(crc_passes) == 1  # the check of the download
    assert ensure_weights(wf, progress=False) == path and len(crc_passes) == 1  # not read again
    assert len(server.requests) == 1
