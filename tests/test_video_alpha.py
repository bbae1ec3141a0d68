"""Video with transparency (keyed footage): what happens to its alpha channel is said, not hidden."""
from __future__ import annotations

import av
import numpy as np
import pytest

from stream_gpen.io import open_source


def _clip(path, codec: str, pix_fmt: str, options: dict | None = None, frames: int = 3) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25, options=options or {})
        s.width, s.height, s.pix_fmt = 64, 48, pix_fmt
        for i in range(frames):
            a = np.zeros((48, 64, 4), np.uint8)
            a[..., 0] = 200
            a[10:40, 16:48, 3] = 255
            f = av.VideoFrame.from_ndarray(a, format="rgba").reformat(format=pix_fmt)
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.mark.parametrize("name, codec, pix_fmt, options", [
    ("prores4444.mov", "prores_ks", "yuva444p10le", {"profile": "4"}),
    ("png.mov", "png", "rgba", None),
    ("qtrle.mov", "qtrle", "argb", None),
    ("vp9alpha.webm", "libvpx-vp9", "yuva420p", None),
])
def test_alpha_channel_loss_is_reported(tmp_path, name, codec, pix_fmt, options):
    _clip(tmp_path / name, codec, pix_fmt, options)
    with open_source(tmp_path / name) as src:
        assert sum(1 for _ in src) == 3
        assert any("alpha channel (transparency) is not kept" in f for f in src.fallbacks)


def test_opaque_video_says_nothing_about_alpha(tmp_path):
    _clip(tmp_path / "o.mov", "png", "rgb24")
    with open_source(tmp_path / "o.mov") as src:
        assert not any("alpha" in f for f in src.fallbacks)
