"""Session 21 (formats21): an interlaced file's field order is the one its pictures are flagged
with (what players and bwdif go by), not the stream's word for it: bottom-first H.264 in MPEG-TS
read "tt" (the parser's guess) and --deinterlace off wrote it top first, every field pair in the
wrong order. DV (bottom first, no stream word) was "unknown" and written progressive."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from stream_gpen.io import open_source


def _fields_clip(path, order: str, n=6, w=192, h=144):
    """x264 with interlaced DCT, each picture flagged ``order`` first by FFmpeg's setfield."""
    rng = np.random.default_rng(5)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"flags": "+ildct", "preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.time_base = Fraction(1, 25)
        g = av.filter.Graph()
        src = g.add_buffer(width=w, height=h, format="yuv420p", time_base=Fraction(1, 25))
        flag = g.add("setfield", order)
        src.link_to(flag)
        flag.link_to(g.add("buffersink"))
        g.configure()
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), format="rgb24")
            vf = vf.reformat(format="yuv420p")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            g.push(vf)
            for p in s.encode(g.pull()):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _shown_first(path) -> str:
    """Each decoded picture's flag, read as the source reads it: t or b per frame."""
    from stream_gpen.io._source import _shown_field_first

    with av.open(str(path)) as c:
        return "".join(_shown_field_first(f) or "?" for f in c.decode(video=0))


@pytest.mark.parametrize("order, want", [("bff", "bb"), ("tff", "tt")])
def test_the_pictures_field_order_is_kept_with_deinterlace_off(tmp_path, mobilenet_weights, order, want):
    from stream_gpen import Enhancer

    from tests._doubles import IdentityRestorer

    clip = _fields_clip(tmp_path / f"{order}.ts", order)
    with av.open(str(clip)) as c:
        said = c.streams.video[0].codec_context.field_order
    with open_source(clip, deinterlace="off") as src:
        assert src.metadata.interlaced == want
    assert _shown_first(clip) == want[0] * 6
    enh = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, deinterlace="off")
    for ext in (".ts", ".mkv"):
        out = tmp_path / f"o{ext}"
        enh.enhance_file(clip, out)
        assert _shown_first(out) == want[0] * 6, (said, ext)
        with open_source(out, deinterlace="off") as again:
            assert again.metadata.interlaced == want


def test_a_wmv_keeps_its_last_frames_time(tmp_path, mobilenet_weights):
    """formats21: H.264 in ASF was encoded in the muxer's ms ticks, so its timing said 1000 fps;
    FFmpeg's ASF reader times the last packet by that duration, and the last frame read back at
    the time of the one before it (…400, 440, 440 ms)."""
    from stream_gpen import Enhancer

    from tests._clips import write_video
    from tests._doubles import IdentityRestorer

    frames = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(8)]
    src = write_video(tmp_path / "a.wmv", frames, codec="wmv2", pix_fmt="yuv420p")
    Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights).enhance_file(src, tmp_path / "o.wmv")
    with av.open(str(tmp_path / "o.wmv")) as c:
        times = [float(f.time) for f in c.decode(video=0)]
    assert len(times) == 8 and np.diff(times) == pytest.approx([0.04] * 7, abs=1e-3), times
