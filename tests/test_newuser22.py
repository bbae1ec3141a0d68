"""Hunt 22 (newuser22): what the docs promise, as a new user reads them."""
from __future__ import annotations

import json

import av
import numpy as np
import pytest

from stream_gpen.cli import main


def _deep_clip(path, n=6, w=96, h=64):
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx265", rate=25, options={"preset": "ultrafast", "x265-params": "log-level=none"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p10le"
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((h, w, 3), 40 + 10 * i, np.uint8), format="rgb24")
            f = f.reformat(format="yuv420p10le")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


@pytest.mark.parametrize("in_place", [False, True])
def test_bit_depth_8_is_not_dropped_by_copy_if_no_faces(tmp_path, cli_env, in_place):
    # a faceless 10-bit clip was stream-copied as 10-bit HEVC with --bit-depth 8 --copy-if-no-faces
    src = _deep_clip(tmp_path / "a.mp4")
    out = src if in_place else tmp_path / "o.mp4"
    report = tmp_path / "r.json"
    args = ["enhance", str(src), "-o", str(out), *cli_env, "--copy-if-no-faces", "--bit-depth", "8",
            "--report", str(report)] + (["--overwrite"] if in_place else [])
    assert main(args) == 0
    fb = json.loads(report.read_text())["fallbacks"]
    assert any("--copy-if-no-faces does not apply to --bit-depth 8" in f for f in fb), fb
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"


def test_camera_records_a_444_source_in_420(tmp_path, cli_env, capsys):
    # recorded as H.264 High 4:4:4 (browsers, phones and ingest servers refuse it), with a note naming
    # --chroma 420, an option camera does not have
    out = tmp_path / "rec.mp4"
    assert main(["camera", "lavfi:testsrc=size=96x64,format=yuv444p", "--frames", "3", "-o", str(out),
                 *[o for o in cli_env if o != "--quiet"]]) == 0
    assert "--chroma" not in capsys.readouterr().err
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"


def test_compare_of_a_10_bit_video_is_written_as_h264(tmp_path, cli_env):
    # the 8-bit side-by-side was written as 8-bit HEVC (chosen to keep a depth it no longer had);
    # --bit-depth 8 on the same source gives H.264
    src = _deep_clip(tmp_path / "a.mp4")
    assert main(["enhance", str(src), "-o", str(tmp_path / "c.mp4"), *cli_env, "--compare"]) == 0
    with av.open(str(tmp_path / "c.mp4")) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.name, cc.pix_fmt, cc.width) == ("h264", "yuv420p", 192)


def test_a_folder_of_unreadable_photos_gets_a_hint(tmp_path, cli_env, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 200)  # a JPEG cut inside its header
    assert main(["enhance", str(folder), "-o", str(tmp_path / "out"), *cli_env]) == 2
    err = capsys.readouterr().err
    assert "none of the 1 images" in err and "\nhint: check that the files were copied whole" in err, err


def test_info_says_a_variable_rate_clips_average(tmp_path, capsys):
    """formats22: a phone's variable-rate clip (timescale 600, steps of 10-60 ticks) showed
    "frame_rate 120.0", FFmpeg's shortest step, and looked like slow motion."""
    from fractions import Fraction

    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30, options={"preset": "ultrafast", "bf": "0"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.time_base = Fraction(1, 600)
        for i, t in enumerate([0, 20, 40, 55, 75, 100, 140, 150, 170, 200, 260, 280]):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 600)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    assert main(["info", "--json", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frame_rate"] > 100 and info["variable_rate"].startswith("2"), info


def test_info_faces_spreads_over_a_webm_without_a_duration(tmp_path, capsys, mobilenet_weights):
    """formats22: a browser's MediaRecorder WebM has no duration in its header: info --faces looked
    at the first frame only (frames_sampled 1), where the help says 8 spread over the video."""
    path = tmp_path / "rec.webm"
    with av.open(str(path), "w", options={"live": "1"}) as c:
        s = c.add_stream("libvpx-vp9", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(20):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * i, np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    assert main(["info", "--json", "--faces", "--detector-weights", str(mobilenet_weights), str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert not info.get("duration_s") and info["faces"]["frames_sampled"] >= 6, info


def test_a_colon_in_the_name_does_not_undo_bit_depth_8(tmp_path, cli_env, monkeypatch):
    """review22: the source's depth was read with av.open(name): "10:30.mp4" is a protocol to FFmpeg,
    the error was swallowed, and a 10-bit clip was stream-copied again despite --bit-depth 8."""
    monkeypatch.chdir(tmp_path)
    src = _deep_clip(tmp_path / "10:30.mp4")
    assert main(["enhance", "10:30.mp4", "-o", "10:30.mp4", *cli_env, "--overwrite", "--copy-if-no-faces",
                 "--bit-depth", "8"]) == 0
    with av.open(str(src)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
