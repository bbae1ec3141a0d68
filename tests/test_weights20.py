"""Hunt 20 (weights20): a cut pre-1.6 checkpoint (ParseNet, the RetinaFace files) is told from a
whole one; a resume answered with 416 or with the whole file; a redirect loop's message. Local
HTTP server from test_weights (no internet)."""
from __future__ import annotations

import pytest

from stream_gpen import weights
from stream_gpen.errors import DownloadError
from stream_gpen.weights import WeightFile, _damage, ensure_weights
import tests.test_weights as _tw
from tests.test_weights import CKPT, legacy_checkpoint, make

server, dirs = _tw.server, _tw.dirs


@pytest.mark.parametrize("cut", [20, 57, 300, 1_000, 60_000, 894_867, -1])
def test_a_cut_pre_16_checkpoint_is_damaged_and_resumable(tmp_path, mobilenet_weights, cut):
    # the real RetinaFace file is in the pre-1.6 format: any cut of it is "truncated" (a resume
    # can finish it), the whole file is not
    data = mobilenet_weights.read_bytes()
    assert _damage(mobilenet_weights) is None
    part = tmp_path / "d.pth"
    part.write_bytes(data[:cut])
    detail, truncated = _damage(part)
    assert truncated and "pre-1.6 format" in detail, detail
    # bytes past the end: torch.save writes none, so they are another file's, spliced on by a resume
    # (weights27: such a file was whole here, and loaded the wrong weights). Not a cut: no resume.
    part.write_bytes(data + b"\0" * 7)
    detail, truncated = _damage(part)
    assert not truncated and "7 bytes after its end" in detail, detail


def test_a_cut_parsenet_in_the_cache_is_not_already_present(dirs, capsys):
    # half a ParseNet (no size or sha256 published): `weights verify` said UNVERIFIED (exit 0),
    # `weights download` "already present", and `enhance --mask parse` "download it again"
    wf = WeightFile(name="parsenet-test", filename="p.pth", urls=("http://127.0.0.1:9/never",))
    dirs.home.mkdir()
    (dirs.home / "p.pth").write_bytes(legacy_checkpoint()[:-20])
    assert weights.find_weights(wf) is None
    (result,) = [weights.check_file(wf, dirs.home / "p.pth")]
    assert result.status == "damaged" and "cut short" in result.detail


def test_a_cut_legacy_download_without_a_length_is_kept_as_a_part(server, dirs):
    legacy = legacy_checkpoint()
    wf = make(server.serve("/p.pth", legacy, faults=["cutnolength"]), size=None, sha256=None)
    with pytest.raises(DownloadError, match="before the end of the file .*pre-1.6 format.*run again to resume"):
        ensure_weights(wf, progress=False)
    assert not (dirs.home / "test-model.pth").exists()  # never under the final name
    assert (dirs.home / "test-model.pth.part").stat().st_size == len(legacy) // 2
    assert ensure_weights(wf, progress=False).read_bytes() == legacy  # resumed
    assert server.requests[-1] == ("/p.pth", f"bytes={len(legacy) // 2}-")


def test_a_whole_part_answered_416_is_checked_not_discarded(server, dirs):
    # a run stopped between the last byte and its check (a file of unknown size): the resume
    # asks past the end, the server says 416 with the file's length: the part is the file
    url = server.serve("/big.pth", CKPT)
    wf = make(url, size=None, sha256=None)
    dirs.home.mkdir()
    (dirs.home / "test-model.pth.part").write_bytes(CKPT)
    (dirs.home / "test-model.pth.part.url").write_text(url)
    assert ensure_weights(wf, progress=False).read_bytes() == CKPT
    assert server.requests == [("/big.pth", f"bytes={len(CKPT)}-")]


def test_a_part_the_server_cannot_continue_starts_over_in_the_same_run(server, dirs):
    url = server.serve("/big.pth", CKPT)
    wf = make(url, size=None, sha256=None)
    dirs.home.mkdir()
    (dirs.home / "test-model.pth.part").write_bytes(CKPT + b"not of this file")  # longer than the file
    (dirs.home / "test-model.pth.part.url").write_text(url)
    assert ensure_weights(wf, progress=False).read_bytes() == CKPT  # (it failed: "partial file discarded")
    assert server.requests == [("/big.pth", f"bytes={len(CKPT) + 16}-"), ("/big.pth", None)]


def test_a_resume_answered_with_the_whole_file_downloads_it(server, dirs):
    wf = make(server.serve("/w.bin", CKPT, faults=["cut", "from0"]), size=None, sha256=None)
    with pytest.raises(DownloadError, match="run again to resume"):
        ensure_weights(wf, progress=False)
    assert ensure_weights(wf, progress=False).read_bytes() == CKPT  # (it failed, the body dropped)
    assert server.requests[-1] == ("/w.bin", f"bytes={len(CKPT) // 2}-")


def test_a_redirect_loop_is_one_line(server, dirs, capsys):
    wf = make(server.serve("/loop.pth", faults=["loop"] * 20))
    with pytest.raises(DownloadError) as info:
        ensure_weights(wf, progress=False)
    assert "too many redirects" in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_whole_pickled_module_in_the_old_format_is_walked_too(tmp_path):
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    path = tmp_path / "model.pth"
    torch.save(model, path, _use_new_zipfile_serialization=False)  # (it said "an unreadable index")
    assert _damage(path) is None
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[:-20])
    assert _damage(cut)[1] is True
