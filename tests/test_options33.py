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
