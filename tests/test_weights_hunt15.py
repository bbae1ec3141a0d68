"""Hunt 15 (weights): `make demo` without the detector, a two-URL file on a connection that
drops, no home directory, `weights list`'s copy in use, name spellings, the by-hand advice, and a
full disk. Local HTTP server from test_weights (no internet)."""
from __future__ import annotations

import errno
import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from stream_gpen import weights
from stream_gpen.cli import main as cli_main
from stream_gpen.errors import DownloadError, InvalidInputError, WeightsError
from stream_gpen.weights import DETECTOR_FILES, ensure_weights
import tests.test_weights as _tw
from tests.test_weights import BODY, CKPT, make

ROOT = Path(__file__).resolve().parents[1]
# test_weights' fixtures: a local HTTP server, and a private cache and checkout (autouse)
server, dirs = _tw.server, _tw.dirs


def _demo():
    spec = importlib.util.spec_from_file_location("stream_gpen_demo", ROOT / "samples" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- #1, #5: make demo offline without the detector -----------------------------------------
def test_demo_without_detector_exits_cleanly_naming_the_missing_files(dirs, monkeypatch, tmp_path, capsys):
    # A fresh clone offline: no ../shared copy of the detector, nothing in the cache. On CUDA
    # `auto` is gpen-bfr-512 (simulated here): the advice names that file, not gpen-bfr-256.
    import stream_gpen.api

    monkeypatch.setenv("STREAM_GPEN_SHARED", str(tmp_path / "nonexistent"))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    monkeypatch.setattr(stream_gpen.api, "default_model_name", lambda device: "gpen-bfr-512")
    code = _demo().main(["--device", "cpu", "--out", str(tmp_path / "out")])  # no traceback: returns
    err = " ".join(capsys.readouterr().err.split())
    assert code == 3
    assert "falls back" not in err  # (one paragraph: the fallback cannot run either)
    assert "`stream-gpen weights download gpen-bfr-512` for GPEN results" in err
    assert "gpen-bfr-256" not in err
    detector = DETECTOR_FILES["retinaface-mobilenet0.25"]
    assert "The demo cannot run without the RetinaFace face detector" in err
    assert f"{detector.filename}) not found" in err
    assert detector.urls[0] in err and str(dirs.home / detector.filename) in err
    assert "`stream-gpen weights download retinaface-mobilenet0.25`" in err
    assert not list((tmp_path / "out").iterdir())


# --- #2: a two-URL file on a connection that drops ------------------------------------------
def test_two_url_file_resumes_each_url_on_a_connection_that_drops(server, dirs):
    # Both URLs cut every connection (twice each): each run must add to what the earlier runs got
    # from that URL, not start over a part the other URL wrote, or no run ever finishes.
    wf = make(server.serve("/gpen.pth", CKPT, faults=["cut", "cut"]),
              server.serve("/facexlib.pth", CKPT, faults=["cut", "cut"]), size=None, sha256=None)
    half, three_quarters = len(CKPT) // 2, len(CKPT) // 2 + (len(CKPT) - len(CKPT) // 2) // 2
    for _ in range(2):
        with pytest.raises(DownloadError, match="run again to resume"):
            ensure_weights(wf, progress=False)
    assert ensure_weights(wf, progress=False).read_bytes() == CKPT
    assert server.requests == [
        ("/gpen.pth", None), ("/facexlib.pth", None),
        ("/gpen.pth", f"bytes={half}-"), ("/facexlib.pth", f"bytes={half}-"),
        ("/gpen.pth", f"bytes={three_quarters}-"),
    ]
    # the finished file only: both URLs' parts and their records are gone
    # (and the record of its check, so the next run does not read it all again)
    assert sorted(p.name for p in dirs.home.iterdir()) == ["test-model.pth", "verified.json"]


def test_second_urls_part_has_its_own_name_and_record(server, dirs):
    wf = make(server.url("/gone.pth"), server.serve("/mirror.pth", CKPT, faults=["cut"]), size=None, sha256=None)
    with pytest.raises(DownloadError):
        ensure_weights(wf, progress=False)
    part = dirs.home / "test-model.pth.part-2"
    assert part.stat().st_size == len(CKPT) // 2
    assert (dirs.home / "test-model.pth.part-2.url").read_text() == server.url("/mirror.pth")
    assert not (dirs.home / "test-model.pth.part").exists()


# --- #4: no home directory ------------------------------------------------------------------
def test_no_home_directory_is_a_clear_weights_error(dirs, monkeypatch, capsys):
    import pwd

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.delenv("STREAM_GPEN_HOME")
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    with pytest.raises(WeightsError, match="STREAM_GPEN_HOME is not set, and neither is HOME"):
        weights.home_dir()
    assert cli_main(["weights", "list"]) == 3
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err
    assert re.search(r"error: cannot tell where the weights cache is.*\n.*hint: set STREAM_GPEN_HOME", err)


# --- #6: weights list shows the copy in use -------------------------------------------------
def test_list_shows_the_good_copy_in_use_and_the_ignored_one(dirs, capsys, mobilenet_weights):
    wf = DETECTOR_FILES["retinaface-mobilenet0.25"]
    dirs.home.mkdir()
    (dirs.home / wf.filename).write_bytes(b"cut short")  # first in search order, wrong size
    (dirs.repo / wf.filename).write_bytes(mobilenet_weights.read_bytes())  # the one a run uses
    assert cli_main(["weights", "list"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(wf.name + " "))
    assert line.endswith(f"  {dirs.repo / wf.filename}  (ignored: {dirs.home / wf.filename} (wrong size))")
    # the right size and a wrong sha256 (hunt 20): every run ignores it, and it was listed as the one used
    (dirs.home / wf.filename).write_bytes(bytes(wf.size))
    assert cli_main(["weights", "list"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(wf.name + " "))
    assert line.endswith(f"  {dirs.repo / wf.filename}  (ignored: {dirs.home / wf.filename} (checksum mismatch))")
    (dirs.repo / wf.filename).unlink()
    assert cli_main(["weights", "list"]) == 0
    assert f"{dirs.home / wf.filename}  (checksum mismatch: run `stream-gpen weights verify`)" in capsys.readouterr().out


def test_list_with_only_a_bad_copy_still_says_so(dirs, capsys):
    wf = DETECTOR_FILES["retinaface-mobilenet0.25"]
    (dirs.repo / wf.filename).write_bytes(b"cut short")
    assert cli_main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{dirs.repo / wf.filename}  (wrong size: run `stream-gpen weights verify`)" in out


# --- #7: names ------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling, name", [
    ("GPEN-BFR-512", "gpen-bfr-512"), ("Gpen-Bfr-256", "gpen-bfr-256"), ("gpen-bfr-512.PTH", "gpen-bfr-512"),
    ("mobilenet0.25", "retinaface-mobilenet0.25"), ("ResNet50", "retinaface-resnet50"), (" parsenet ", "parsenet"),
])
def test_weights_names_in_any_case_and_detector_spellings(spelling, name):
    assert weights.get_weight_file(spelling).name == name


def test_unknown_weights_name_suggests_the_close_one(capsys):
    with pytest.raises(InvalidInputError, match="unknown weights 'gpen-bfr-521'") as info:
        weights.get_weight_file("gpen-bfr-521")
    assert info.value.hint.startswith("did you mean 'gpen-bfr-512'?")
    assert cli_main(["weights", "download", "mobilenet025x"]) == 2
    assert "did you mean 'retinaface-mobilenet0.25'?" in capsys.readouterr().err


# --- #9: the by-hand advice names every URL -------------------------------------------------
def test_by_hand_advice_lists_every_url(server, dirs):
    first, mirror = server.url("/gone.pth"), server.url("/also-gone.pth")
    with pytest.raises(DownloadError) as info:
        ensure_weights(make(first, mirror), progress=False)
    assert f"download {first} or {mirror} by hand and save it as {dirs.home / 'test-model.pth'}" in str(info.value)


# --- #10: a full disk names the part it keeps -----------------------------------------------
def test_disk_full_names_the_kept_part(dirs, monkeypatch):
    def fill_disk(url, part, wf, *, progress):
        part.write_bytes(BODY[:4096])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(weights, "_fetch", fill_disk)
    part = dirs.home / "test-model.pth.part"
    with pytest.raises(DownloadError) as info:
        ensure_weights(make("http://127.0.0.1:9/w.bin", size=None, sha256=None), progress=False)
    assert (f"No space left on device; the partial download {part} (4,096 bytes) is kept to resume it: "
            "delete it to free that space") in str(info.value)
    assert part.stat().st_size == 4096


def test_a_mirror_needs_room_beside_the_first_urls_part(dirs, monkeypatch):
    """The free-space check counted the largest part: with the first URL's part kept for a resume,
    the mirror's own copy from 0 could fill the disk mid-download. Each URL is checked for its own part."""
    tried = []

    def cut(url, part, wf, *, progress):
        tried.append(url)
        part.write_bytes(BODY[: len(BODY) - 10])
        raise weights._Failure("connection closed")

    monkeypatch.setattr(weights, "_fetch", cut)
    monkeypatch.setattr(weights.shutil, "disk_usage",
                        lambda p: SimpleNamespace(total=10**9, used=0, free=len(BODY) // 2))
    wf = make("http://127.0.0.1:9/a.bin", "http://127.0.0.1:9/b.bin")
    dirs.home.mkdir()
    (dirs.home / "test-model.pth.part").write_bytes(BODY[: len(BODY) - 10])  # an earlier run's, 10 bytes short
    with pytest.raises(DownloadError) as info:
        ensure_weights(wf, progress=False)
    assert tried == ["http://127.0.0.1:9/a.bin"]  # the mirror was not started on a disk it would fill
    assert "http://127.0.0.1:9/b.bin failed: not enough disk space for its copy beside the partial download" in str(info.value)
