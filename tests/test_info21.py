"""Session 21 (newuser21): `info` says an empty photo is empty (it gave Pillow's "cannot identify
image file"), gives a photo turned a quarter by EXIF its upright size too (the size written), and
says an interlaced file's field order in words (FFmpeg's "bb" in the text); `--start -1` is said
to be negative, not a malformed time."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _clips import write_video
from stream_gpen.cli import main


def test_info_on_an_empty_photo_says_it_is_empty(tmp_path, capsys):
    empty = tmp_path / "empty.jpg"
    empty.touch()
    assert main(["info", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "image is empty (0 bytes)" in err and "not fully written or copied" in err


def test_info_gives_the_upright_size_of_a_turned_photo(shared, capsys):
    selfie = shared / "data/faces/whole/gpen_selfie_20200320.101220.jpg"  # EXIF orientation 6
    assert main(["info", "--json", str(selfie)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["exif_orientation"] == 6 and info["size"] == [4032, 3024] and info["size_upright"] == [3024, 4032]
    assert main(["info", str(selfie)]) == 0
    assert "size_upright         3024x4032" in capsys.readouterr().out
    plain = shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"
    assert main(["info", "--json", str(plain)]) == 0
    assert "size_upright" not in json.loads(capsys.readouterr().out)


def test_info_says_the_field_order_in_words(tmp_path, capsys):
    frames = [np.full((64, 96, 3), 30 + 20 * i, np.uint8) for i in range(4)]
    clip = write_video(tmp_path / "i.mp4", frames,
                       options={"preset": "ultrafast", "x264-params": "tff=1", "flags": "+ildct+ilme"})
    assert main(["info", "--json", str(clip)]) == 0
    assert json.loads(capsys.readouterr().out)["interlaced"] == "tt"  # (the JSON keeps FFmpeg's code)
    assert main(["info", str(clip)]) == 0
    assert "interlaced           yes, top field first" in capsys.readouterr().out


@pytest.mark.parametrize("value, said", [("-1", "must not be negative"), ("-0:30", "must not be negative"),
                                         ("1:-5", "expected seconds or"), ("abc", "expected seconds or")])
def test_a_negative_start_is_said_to_be_negative(tmp_path, capsys, value, said):
    assert main(["enhance", str(tmp_path / "x.mp4"), f"--start={value}"]) == 2
    assert said in capsys.readouterr().err


@pytest.mark.parametrize("name, said", [("notes.mp4", "FFmpeg cannot read"), ("notes.jpg", "as an image"),
                                        ("empty.mp4", "input is empty")])
def test_an_unreadable_input_is_said_before_the_model_loads(tmp_path, cli_env, capsys, monkeypatch, name, said):
    """newuser21: a text file named .mp4 was refused only after the model's weights were loaded
    (downloaded, on a first run), and offline without them with the weights' error instead."""
    import stream_gpen.commands as commands

    def no_model(args):
        raise AssertionError("the model was loaded for an input that cannot be read")

    monkeypatch.setattr(commands, "_make_enhancer", no_model)
    bad = tmp_path / name
    bad.write_text("" if name.startswith("empty") else "my notes, not a video\n")
    assert main(["enhance", str(bad), *cli_env]) == 2
    assert said in capsys.readouterr().err


def test_the_progress_total_of_a_variable_rate_clip_follows_its_frames(tmp_path, enh):
    """newuser21: a VFR Matroska clip (12 frames over 1.64 s, nominal 25 fps) said "12/41 frames
    (29%)" to its end: the estimate (duration x rate) is corrected by the frames' own times."""
    from fractions import Fraction

    import av

    times = [0, 40, 80, 200, 240, 600, 640, 680, 720, 1520, 1560, 1600]
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"preset": "ultrafast", "bf": "0"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times):
            vf = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
            vf.pts, vf.time_base = t, Fraction(1, 1000)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    seen = []
    enh.enhance_file(path, tmp_path / "o.mp4", on_progress=lambda done, total, faces: seen.append((done, total)))
    assert seen[0][1] > 30  # (the estimate at the start: 1.64 s x 25)
    assert seen[-1] == (12, 12) or abs(seen[-1][1] - 12) <= 2, seen
