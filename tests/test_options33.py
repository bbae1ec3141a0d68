"""Hunt 33 (options): options that meet each other — a photo's encoder options checked for every
encoder, ..."""
from __future__ import annotations

import re

import pytest

from stream_gpen import InvalidInputError
from stream_gpen.cli import main


# --- 1. a photo's --crf/--preset are checked for every --encoder, as a video's are ---------------

@pytest.mark.parametrize("encoder, crf, said", [
    ("auto", 60, "crf=60 for codec='h264'"),  # (software or NVENC here: both take at most 51)
    ("nvenc", 60, "crf=60 for codec='h264' with encoder='nvenc' must be within 1..51"),
    ("nvenc", 0, "crf=0 with encoder='nvenc'"),
])
def test_a_photo_crf_is_checked_for_every_encoder(tmp_path, enh, face, cli_env, capsys, encoder, crf, said):
    """hunt 33: ``enhance photo.jpg --crf 60 --encoder auto`` (or nvenc, or nvenc's --crf 0) only
    said the options were unused, exit 0, where the same command for a video is refused: only
    --encoder software's were checked; the API's enhance_file likewise."""
    photo = tmp_path / "a.jpg"
    face.save(photo)
    with pytest.raises(InvalidInputError, match=re.escape(said)):
        enh.enhance_file(photo, tmp_path / "b.jpg", encoder=encoder, crf=crf)
    assert main(["enhance", str(photo), "-o", str(tmp_path / "c.jpg"), "--encoder", encoder, "--crf", str(crf),
                 *cli_env]) == 2
    assert f"--crf {crf} " in capsys.readouterr().err
    assert not (tmp_path / "b.jpg").exists() and not (tmp_path / "c.jpg").exists()


# --- 2. --mask parse with --aligned: the mask used is said, not the one asked for ---------------

def test_aligned_runs_report_the_mask_they_use(tmp_path, face, cli_env, capsys, mobilenet_weights):
    """hunt 33: with --aligned --mask parse (parse is not used: each crop is restored whole, as a
    note says) the summary said "parse paste mask (0 faces parsed)", the report "mask": "parse",
    and camera warned that --mask parse on a CPU costs seconds per face."""
    import json
    import os

    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    enh = Enhancer(IdentityRestorer(), device="cpu", aligned=True, mask="parse", progress=False)
    assert enh.parser is None and enh.paste_mask == "feather"
    photo = tmp_path / "a.png"
    face.save(photo)
    s = enh.enhance_file(photo, tmp_path / "b.png")
    assert s.mask == "feather" and "paste mask" not in s.format()
    report = tmp_path / "r.json"
    assert main(["camera", "lavfi:testsrc2=size=64x64:rate=5", "-o", os.devnull, "--frames", "2", "--aligned",
                 "--mask", "parse", "--report", str(report), *cli_env]) == 0
    err = capsys.readouterr().err
    assert "--mask parse is not used with --aligned" in err and "costs seconds per face" not in err, err
    assert json.loads(report.read_text())["mask"] == "feather"
