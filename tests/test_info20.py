"""Session 20: `info` says when a file's data ends well short of its header (a download cut off),
and `--audio aac` on a video without sound says so (it was a silent no-op)."""
from __future__ import annotations

import av
import numpy as np
import pytest

from _clips import audio_tail_clip, write_video


def _noisy(path, n=100, **kw):
    rng = np.random.default_rng(1)  # (noise: the bytes spread evenly over the clip's time)
    return write_video(path, [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(n)], **kw)


def _cut(path, keep=0.5):
    data = path.read_bytes()
    cut = path.with_name("cut_" + path.name)
    cut.write_bytes(data[:int(len(data) * keep)])
    return cut


@pytest.mark.parametrize("name, opts", [("a.mp4", {"movflags": "faststart"}), ("a.mkv", None)])
def test_info_says_a_file_cut_off_short_of_its_header(tmp_path, name, opts):
    from stream_gpen.commands import describe_input

    whole = _noisy(tmp_path / name, container_options=opts)
    info = describe_input(str(whole))
    assert "truncated" not in info and not any("cut off" in p for p in info["plan"]), info["plan"]
    cut = _cut(whole)
    info = describe_input(str(cut))
    assert info["truncated"] is True
    note = next(p for p in info["plan"] if "cut off" in p)
    assert "of the 4.0" in note and "its header promises" in note, note
    with av.open(str(cut)) as c:
        assert c.duration / 1e6 == pytest.approx(4.0, abs=0.1)  # (the header still says the whole)


def test_a_file_cut_a_little_or_a_video_ending_before_its_audio_is_not_called_cut(tmp_path):
    from stream_gpen.commands import describe_input
    from stream_gpen.io._source import data_ends_short

    # the video's 2 s end before the audio's 5 s: the header's duration is the audio's, all there
    tail = audio_tail_clip(tmp_path / "tail.mp4", frames=50, audio_s=5.0)
    assert data_ends_short(str(tail)) is None
    assert "truncated" not in describe_input(str(tail))
    # under a second short of 4 s: as a run judges it (_check_truncated), not flagged
    whole = _noisy(tmp_path / "b.mkv")
    assert data_ends_short(str(_cut(whole, keep=0.85))) is None
    got, probe, want = data_ends_short(str(_cut(whole, keep=0.6)))
    assert 1.9 < got < 2.8 and probe == pytest.approx(3.0, abs=0.05) and want == pytest.approx(4.0, abs=0.05)


def test_audio_aac_on_a_video_without_sound_says_so(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    src = _noisy(tmp_path / "silent.mp4", n=5)
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), "--audio", "aac", *cli_env]) == 0
    err = capsys.readouterr().err
    assert "silent.mp4 has no audio stream" in err and "--audio aac" in err, err
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert not c.streams.audio and c.streams.video[0].frames == 5
    # with sound, or under the default copy: no such line
    tail = audio_tail_clip(tmp_path / "tail.mp4", frames=5, audio_s=0.2)
    assert main(["enhance", str(tail), "-o", str(tmp_path / "t.mp4"), "--audio", "aac", *cli_env]) == 0
    assert main(["enhance", str(src), "-o", str(tmp_path / "c.mp4"), *cli_env]) == 0
    assert "no audio stream" not in capsys.readouterr().err


def test_info_says_the_depth_a_16_bit_master_is_written_at(tmp_path):
    from stream_gpen.commands import describe_input

    src = write_video(tmp_path / "scan16.mkv", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)],
                      codec="ffv1", pix_fmt="yuv444p16le")
    plan = describe_input(str(src))["plan"]
    assert any("16-bit: written at 12 bits (libx265's most)" in p for p in plan), plan  # (said "kept at 16")


def test_info_says_8_bit_rgb_is_written_as_420(tmp_path):
    from stream_gpen.commands import describe_input

    src = write_video(tmp_path / "rgb.avi", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)],
                      codec="rawvideo", pix_fmt="bgr24")
    assert any("8-bit RGB (bgr24): written as 4:2:0" in p for p in describe_input(str(src))["plan"])
    yuv = write_video(tmp_path / "yuv.mp4", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)])
    assert not any("8-bit RGB" in p for p in describe_input(str(yuv))["plan"])
