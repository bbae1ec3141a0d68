"""Session 30 (docs): ``--chroma 420`` (and the camera's recordings, and the server's ``?chroma=420``,
which pass chroma="420") was ignored for RGB sources above 8 bits (an FFV1 ``gbrp10le`` master, a
16-bit RGB render): ``as_420`` mapped only planar ``yuv422``/``yuv444`` names, so the output was HEVC
4:4:4 while ``info`` said "--chroma 420 writes 4:2:0". Now every format with more chroma than 4:2:0
has its 4:2:0 twin at its depth."""
from __future__ import annotations

import av
import numpy as np
import pytest

from _clips import write_video
from stream_gpen.io._sink import as_420, choose_high_pix_fmt, _video_formats


def _rgb_clip(path, pix_fmt, n=3):
    rng = np.random.default_rng(5)
    return write_video(path, [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(n)], codec="ffv1",
                       pix_fmt=pix_fmt)


def _pix(path) -> str:
    with av.open(str(path)) as c:
        return c.streams.video[0].codec_context.pix_fmt


@pytest.mark.parametrize("src, twin", [
    ("gbrp10le", "yuv420p10le"), ("gbrp12le", "yuv420p12le"), ("gbrp9le", "yuv420p9le"), ("gbrp16le", "yuv420p16le"),
    ("rgb48le", "yuv420p16le"), ("bgr48be", "yuv420p16le"), ("x2rgb10le", "yuv420p10le"),
    ("rgba64le", "yuva420p16le"), ("gbrap10le", "yuva420p10le"), ("gbrap12le", "yuv420p12le"),
    ("gbrpf32le", "yuv420p16le"), ("y210le", "yuv420p10le"), ("p210le", "yuv420p10le"), ("xv30le", "yuv420p10le"),
    ("yuv440p10le", "yuv420p10le"), ("nv16", "yuv420p"), ("yuyv422", "yuv420p"), ("gbrp", "yuv420p"),
    ("yuva444p12le", "yuv420p12le"),  # (FFmpeg has no yuva420p12le)
    ("yuv444p", "yuv420p"), ("yuvj444p", "yuvj420p"), ("yuv422p10le", "yuv420p10le"),
    ("yuv420p", "yuv420p"), ("nv12", "nv12"), ("p010le", "p010le"), ("gray10le", "gray10le"), ("yuv411p", "yuv411p"),
])
def test_as_420_maps_every_layout(src, twin):
    assert as_420(src) == twin
    av.VideoFormat(as_420(src))  # a real format


@pytest.mark.parametrize("src, hevc, h264", [("gbrp10le", "yuv420p10le", "yuv420p10le"),
                                            ("gbrp12le", "yuv420p12le", "yuv420p10le"),
                                            ("rgb48le", "yuv420p12le", "yuv420p10le")])
def test_the_encoders_deepest_420(src, hevc, h264):
    assert choose_high_pix_fmt(as_420(src), _video_formats("libx265")) == hevc
    assert choose_high_pix_fmt(as_420(src), _video_formats("libx264")) == h264


@pytest.mark.parametrize("src_pix, kept, out_420", [("gbrp10le", "yuv444p10le", "yuv420p10le"),
                                                    ("gbrp12le", "yuv444p12le", "yuv420p12le")])
def test_high_depth_rgb_is_written_420(tmp_path, enh, src_pix, kept, out_420):
    src = _rgb_clip(tmp_path / "in.mkv", src_pix)
    enh.enhance_file(src, tmp_path / "keep.mkv")
    assert _pix(tmp_path / "keep.mkv") == kept
    s = enh.enhance_file(src, tmp_path / "o.mkv", chroma="420")
    assert _pix(tmp_path / "o.mkv") == out_420 and s.frames_out == 3
    assert not [f for f in s.fallbacks if "chroma" in f]


def test_cli_and_camera(tmp_path, cli_env):
    from stream_gpen.cli import main

    src = _rgb_clip(tmp_path / "in.mkv", "gbrp10le")
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mkv"), "--chroma", "420", *cli_env]) == 0
    assert _pix(tmp_path / "o.mkv") == "yuv420p10le"
    assert main(["camera", str(src), "-o", str(tmp_path / "rec.mkv"), *cli_env]) == 0
    assert _pix(tmp_path / "rec.mkv") == "yuv420p10le"
