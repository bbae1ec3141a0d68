"""Hunt 30 (weights): a checkpoint given by its path with a damaged byte.

A copy the search finds has every zip member checked against its CRC-32, but a file given by its
path (``--model FILE``, ``--weights``, ``--detector-weights``, ``--parser-weights``) was returned
unchecked and ``torch.load`` (which does not check the CRCs) loaded the flipped weight silently,
exit 0, though the README promises that a damaged file is a one-line error with exit 3. Now such
a file is refused, naming it and the member that fails."""
from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path

import pytest

from stream_gpen import cli
from stream_gpen.errors import CheckpointError
from stream_gpen.weights import ensure_weights


def flipped(src: Path, dst: Path) -> Path:
    """``src`` with one bit flipped inside its largest tensor (the lowest of a float's mantissa:
    the network still works, so that the old code's silent load ran to its end quickly): a zip
    whose CRC-32 check fails, which torch.load reads without a word."""
    data = bytearray(src.read_bytes())
    member = max((i for i in zipfile.ZipFile(src).infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", data[member.header_offset + 26:member.header_offset + 30])
    data[member.header_offset + 30 + name_len + extra_len] ^= 0x01
    dst.write_bytes(bytes(data))
    assert zipfile.ZipFile(dst).testzip() == member.filename
    return dst


@pytest.fixture
def tiny(gpen_fixtures):
    return gpen_fixtures / "gpen_tiny256_state_dict.pt"


def test_weights_given_by_path_with_a_damaged_byte_are_refused(tmp_path, tiny):
    bad = flipped(tiny, tmp_path / "mine.pt")
    with pytest.raises(CheckpointError, match=r"checkpoint .*mine\.pt is damaged: .*fails its CRC-32") as info:
        ensure_weights("gpen-bfr-256", path=bad)
    assert info.value.exit_code == 3 and "again" in info.value.hint
    folder = tmp_path / "folder"
    folder.mkdir()
    flipped(tiny, folder / "GPEN-BFR-256.pth")
    with pytest.raises(CheckpointError, match=r"GPEN-BFR-256\.pth is damaged"):
        ensure_weights("gpen-bfr-256", path=folder)
    with pytest.raises(CheckpointError, match=r"detector weights .*mine\.pt is damaged"):
        ensure_weights("retinaface-mobilenet0.25", path=bad, what="detector weights")
    with pytest.raises(CheckpointError, match=r"face-parsing weights .*mine\.pt is damaged"):
        ensure_weights("parsenet", path=bad, what="face-parsing weights")
    # the same file whole is used as given (not checked against the registry: a fine-tuned file may differ)
    good = shutil.copy(tiny, tmp_path / "good.pt")
    assert ensure_weights("gpen-bfr-256", path=good) == good


def test_model_file_with_a_damaged_byte_is_a_one_line_error(tmp_path, tiny, shared, capsys):
    bad = flipped(tiny, tmp_path / "flipped.pt")
    photo = shared / "data" / "faces" / "aligned" / "codeformer_crop_0143.png"
    for model in ([str(bad)], ["gpen-bfr-256", "--weights", str(bad)]):
        code = cli.main(["enhance", str(photo), "-o", str(tmp_path / "o.png"), "--aligned", "--device", "cpu",
                         "--model", *model])
        err = capsys.readouterr().err
        assert code == 3, err
        assert f"error: checkpoint {bad} is damaged: a checkpoint archive whose member" in err
        assert "fails its CRC-32 check" in err
        assert not (tmp_path / "o.png").exists()


def test_detector_weights_with_a_damaged_byte(tmp_path, mobilenet_weights, shared, capsys):
    import torch

    # the released detector is a pre-1.6 file (no CRCs); the same weights in torch.save's zip format
    state = torch.load(mobilenet_weights, map_location="cpu", weights_only=True)
    torch.save(state, tmp_path / "det.pth")
    bad = flipped(tmp_path / "det.pth", tmp_path / "det_flipped.pth")
    photo = shared / "data" / "faces" / "aligned" / "codeformer_crop_0143.png"
    code = cli.main(["enhance", str(photo), "-o", str(tmp_path / "o.png"), "--model", "classic", "--device", "cpu",
                     "--detector-weights", str(bad)])
    err = capsys.readouterr().err
    assert code == 3, err
    assert f"detector weights {bad} is damaged" in err
