"""Damaged and odd inputs, hunt 19 (edge19): files cut off before their first picture are said to
be cut off (not "no video stream" / "contains no frames", nor a truncation warning promising an
output that never comes); a video under a picture's name is told to be renamed."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from _clips import write_audio, write_video


def _clip(path, n=50, **kw):
    rng = np.random.default_rng(2)
    return write_video(path, [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(n)], **kw)


def _run(cli_env, src, tmp_path, out="o.mp4", *extra):
    from stream_gpen.cli import main

    return main(["enhance", str(src), "-o", str(tmp_path / out), *cli_env, *extra])


@pytest.mark.parametrize("name", ["head.mp4", "cut.mkv"])
def test_a_file_cut_off_before_its_first_picture_is_said_to_be_cut_off(tmp_path, cli_env, capsys, name):
    whole = _clip(tmp_path / f"whole{name[-4:]}",
                  container_options={"movflags": "faststart"} if name.endswith(".mp4") else None)
    data = whole.read_bytes()
    if name.endswith(".mp4"):
        keep = 100  # inside its header (moov first): FFmpeg opens it and finds no stream
    else:
        with av.open(str(whole)) as c:
            first = next(p for p in c.demux(video=0) if p.size)
            keep = first.pos + first.size // 2  # the header whole, the first picture half there
    cut = tmp_path / name
    cut.write_bytes(data[:keep])
    assert _run(cli_env, cut, tmp_path) == 2
    err = capsys.readouterr().err
    assert "cut off" in err and "give it a video or image file" not in err and "contains no frames" not in err, err
    assert "the output is only that part" not in err  # (there is no output)
    assert not (tmp_path / "o.mp4").exists()


def test_a_video_track_with_no_frames_beside_whole_audio_is_still_an_empty_video(tmp_path, cli_env, capsys):
    src = tmp_path / "zero.mkv"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        write_audio(c, c.add_stream("aac", rate=48000), 3.0)
        for p in s.encode():
            c.mux(p)
    assert _run(cli_env, src, tmp_path) == 2
    err = capsys.readouterr().err
    assert "contains no frames" in err and "cut off" not in err, err


def test_a_video_under_a_pictures_name_is_told_to_be_renamed(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    clip = _clip(tmp_path / "v.mp4", n=3)
    disguised = tmp_path / "v.jpg"
    disguised.write_bytes(clip.read_bytes())
    assert _run(cli_env, disguised, tmp_path, "o.jpg") == 2
    assert "rename it to .mp4" in capsys.readouterr().err
    assert main(["info", str(disguised)]) == 2
    assert "rename it to .mp4" in capsys.readouterr().err
    (tmp_path / "junk.jpg").write_bytes(b"hello, not a picture")
    assert _run(cli_env, tmp_path / "junk.jpg", tmp_path, "o2.jpg") == 2
    assert "rename" not in capsys.readouterr().err


def test_a_whole_mkv_damaged_in_the_middle_is_not_called_truncated(tmp_path, cli_env, capsys):
    whole = _clip(tmp_path / "whole.mkv", n=300)  # 12 s: FFmpeg starts a cluster every 5 s
    data = bytearray(whole.read_bytes())
    at = data.find(b"\x1f\x43\xb6\x75", len(data) // 2)  # a cluster past the middle: its header broken
    assert at > 0
    for k in range(at, min(at + 2000, len(data))):
        data[k] ^= 0xFF
    (tmp_path / "damaged.mkv").write_bytes(bytes(data))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(bytes(whole.read_bytes()[:len(data) // 3]))
    assert _run(cli_env, tmp_path / "damaged.mkv", tmp_path, "o1.mkv") == 0
    err = capsys.readouterr().err
    assert "is damaged at about" in err and "looks truncated" not in err, err
    assert _run(cli_env, cut, tmp_path, "o2.mkv") == 0
    err = capsys.readouterr().err
    assert "looks truncated" in err and "damaged at" not in err, err


def test_a_start_past_the_data_of_a_cut_file_says_where_the_data_ends(tmp_path, cli_env, capsys):
    # info shows the header's 2 s, the data ends at ~0.6 s: "past the end", with a hint to look at
    # info, left the user puzzled
    whole = _clip(tmp_path / "whole.mkv")
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) * 3 // 10])
    assert _run(cli_env, cut, tmp_path, "o.mkv", "--start", "1.5") == 2
    err = capsys.readouterr().err
    assert "past the end of the data" in err and "header promises" in err and "cut off" in err, err


def test_an_animated_gif_cut_off_is_said_to_be(tmp_path, cli_env, capsys):
    from PIL import Image

    rng = np.random.default_rng(5)
    frames = [Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)) for _ in range(6)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    data = (tmp_path / "anim.gif").read_bytes()
    (tmp_path / "cut.gif").write_bytes(data[: len(data) * 6 // 10])
    assert _run(cli_env, tmp_path / "anim.gif", tmp_path, "o1.mp4") == 0
    assert "cut off" not in capsys.readouterr().err
    assert _run(cli_env, tmp_path / "cut.gif", tmp_path, "o2.mp4") == 0  # (4 of 6 frames, silently)
    assert "GIF trailer is missing" in capsys.readouterr().err


def test_a_damaged_heic_photo_is_not_called_a_video(tmp_path, cli_env, capsys):
    # FFmpeg reads a HEIF as a QuickTime file with a video stream: a cut-off HEIC was told to be
    # renamed to .mp4
    import pillow_heif
    from PIL import Image

    from stream_gpen.cli import main

    pillow_heif.register_heif_opener()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(tmp_path / "p.heic")
    data = (tmp_path / "p.heic").read_bytes()
    (tmp_path / "cut.heic").write_bytes(data[: len(data) * 6 // 10])
    main(["info", str(tmp_path / "cut.heic")])
    assert "rename" not in capsys.readouterr().err


def test_an_unknown_extension_keeps_its_name_in_the_default_output(tmp_path):
    from stream_gpen.api import default_output

    assert Path(default_output(str(tmp_path / "cam.001"))).name == "cam.001_enhanced.mp4"
    assert Path(default_output(str(tmp_path / "cam.002"))).name == "cam.002_enhanced.mp4"  # (both were cam_enhanced)
    assert Path(default_output(str(tmp_path / "clip.mp4"))).name == "clip_enhanced.mp4"
    assert Path(default_output(str(tmp_path / "old.vob"))).name == "old_enhanced.mp4"
