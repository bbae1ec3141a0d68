"""`info` says when enhance's default output pads an odd frame size (as the sink does)."""
from __future__ import annotations

import json
import subprocess
import sys

import av
import numpy as np
import pytest


def _clip(path, codec, pix_fmt, w, h):
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.full((h, w, 3), 40 * i, np.uint8), format="rgb24")
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _plan(path, tmp_path):
    env = {"STREAM_GPEN_HOME": str(tmp_path / "home"), "STREAM_GPEN_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "stream_gpen", "info", "--json", str(path)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["plan"]


@pytest.mark.parametrize(("name", "codec", "pix", "size", "expect"), [
    # a messenger's VP9 4:2:0 at an odd size, into .mkv: H.264 by default, padded
    ("a.mkv", "libvpx-vp9", "yuv420p", (641, 361), "the odd frame size 641x361 written as 642x362"),
    ("b.mkv", "libvpx-vp9", "yuv420p", (640, 361), "the odd frame size 640x361 written as 640x362"),
    # .webm stays VP9, which takes odd sizes; 4:4:4 H.264 has full chroma: neither is padded
    ("c.webm", "libvpx-vp9", "yuv420p", (641, 361), None),
    ("d.mp4", "libx264", "yuv444p", (641, 361), None),
])
def test_info_says_when_the_default_output_pads(tmp_path, name, codec, pix, size, expect):
    plan = _plan(_clip(tmp_path / name, codec, pix, *size), tmp_path)
    odd = [line for line in plan if "odd frame size" in line]
    if expect is None:
        assert odd == []
    else:
        assert len(odd) == 1 and odd[0].startswith(expect) and "libx264's 4:2:0" in odd[0], odd


def test_a_transparent_odd_source_into_prores_4444_is_not_said_padded(tmp_path):
    # (hunt 16) VP9 with alpha in .mkv: enhance writes ProRes 4444 (full chroma) at 161x91; info
    # said "padded to 162x91: prores_ks's 4:2:2"
    path = tmp_path / "alpha.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libvpx-vp9", rate=25)
        s.width, s.height, s.pix_fmt = 161, 91, "yuva420p"
        for i in range(3):
            a = np.zeros((91, 161, 4), np.uint8)
            a[..., :3], a[..., 3] = 120, 200
            f = av.VideoFrame.from_ndarray(a, format="rgba").reformat(format="yuva420p")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    plan = _plan(path, tmp_path)
    assert any("transparency" in line and "kept" in line for line in plan), plan
    assert not [line for line in plan if "odd frame size" in line]


def test_the_keep_the_size_advice_names_no_codec_the_container_refuses(tmp_path):
    # (hunt 16) "--codec av1 keeps the size" on a .mov source: AV1 cannot go into .mov (exit 2)
    from stream_gpen.commands import _padded_size

    path = _clip(tmp_path / "odd.mkv", "libvpx-vp9", "yuv420p", 641, 361)
    (line,) = [x for x in _plan(path, tmp_path) if "odd frame size" in x]
    assert "-o NAME.webm" in line and "--codec av1 keeps" not in line and "into .mkv or .mp4" in line
    assert _padded_size("prores", "yuva444p10le", True, 161, 91, alpha=True) is None
    assert _padded_size("prores", "yuv420p", False, 161, 91)[:2] == (162, 91)
