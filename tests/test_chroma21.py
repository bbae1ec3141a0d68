"""Session 21 (newuser21): an 8-bit 4:4:4 / 4:2:2 H.264 source (an OBS 4:4:4 screen recording, a
broadcast master) was written as H.264 High 4:4:4 / 4:2:2, which browsers, phones and TVs do not
play, and no option gave 4:2:0; `info` said nothing of it. chroma="420" (--chroma 420) writes 4:2:0."""
from __future__ import annotations

import json

import av
import numpy as np
import pytest

from _clips import write_video
from stream_gpen.errors import InvalidInputError
from stream_gpen.io._sink import as_420


def _clip(path, pix_fmt):
    rng = np.random.default_rng(3)
    return write_video(path, [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(3)], pix_fmt=pix_fmt,
                       codec="libx265" if "10" in pix_fmt else "libx264",
                       options={"x265-params": "log-level=error"} if "10" in pix_fmt else None)


def _pix(path) -> str:
    with av.open(str(path)) as c:
        return c.streams.video[0].codec_context.pix_fmt


def test_as_420():
    assert [as_420(p) for p in ("yuv444p", "yuv422p", "yuvj444p", "yuv422p10le", "yuva444p12le", "yuv420p", "nv12",
                                "gbrp")] == ["yuv420p", "yuv420p", "yuvj420p", "yuv420p10le", "yuv420p12le",
                                             "yuv420p", "nv12", "yuv420p"]


@pytest.mark.parametrize("src_pix, kept, out_420", [("yuv444p", "yuv444p", "yuv420p"), ("yuv422p", "yuv422p", "yuv420p"),
                                                    ("yuv422p10le", "yuv422p10le", "yuv420p10le")])
def test_chroma_420_writes_what_every_player_decodes(tmp_path, enh, src_pix, kept, out_420):
    src = _clip(tmp_path / "in.mp4", src_pix)
    enh.enhance_file(src, tmp_path / "keep.mp4")
    assert _pix(tmp_path / "keep.mp4") == kept
    s = enh.enhance_file(src, tmp_path / "o.mp4", chroma="420")
    assert _pix(tmp_path / "o.mp4") == out_420 and s.frames_out == 3


def test_chroma_is_checked(tmp_path, enh):
    src = _clip(tmp_path / "in.mp4", "yuv444p")
    with pytest.raises(InvalidInputError, match="chroma='444' is not one of"):
        enh.enhance_file(src, tmp_path / "o.mp4", chroma="444")
    with pytest.raises(InvalidInputError, match="ProRes has no 4:2:0"):
        enh.enhance_file(src, tmp_path / "o.mov", codec="prores", chroma="420")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_info_and_the_cli_say_and_take_it(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    src = _clip(tmp_path / "in.mp4", "yuv444p")
    assert main(["info", "--json", str(src)]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert any("4:4:4 chroma kept" in p and "--chroma 420" in p for p in plan), plan
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), "--chroma", "420", *cli_env]) == 0
    assert _pix(tmp_path / "o.mp4") == "yuv420p"
    assert main(["enhance", str(src), "-o", str(tmp_path / "p.mov"), "--codec", "prores", "--chroma", "420",
                 *cli_env]) == 2
    assert "ProRes has no 4:2:0" in capsys.readouterr().err
    plain = _clip(tmp_path / "plain.mp4", "yuv420p")
    assert main(["info", "--json", str(plain)]) == 0
    assert not any("chroma kept" in p for p in json.loads(capsys.readouterr().out)["plan"])
