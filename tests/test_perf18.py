"""Session 18 speed-ups that must not change results."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F


@pytest.mark.parametrize("shape", [(1, 1), (7, 300), (300, 7), (33, 32), (32, 33), (270, 480), (203, 360)])
def test_the_change_watch_thumbnail_is_torchs_adaptive_mean(shape):
    from stream_gpen.faces._tracker import _thumb32

    x = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    ref = F.adaptive_avg_pool2d(torch.from_numpy(x)[None, None].float(), (32, 32))[0, 0].numpy()
    got = _thumb32(x)
    assert got.dtype == np.float32 and got.shape == (32, 32)
    np.testing.assert_allclose(got, ref, rtol=0, atol=3e-5)


def test_the_encode_conversion_reads_the_picture_in_place_with_the_same_samples():
    import av

    from stream_gpen.io._convert import rgb_to_av

    rgb = np.random.default_rng(3).integers(0, 256, (37, 54, 3), dtype=np.uint8)
    for pix in ("yuv420p", "yuv444p", "yuv422p10le", "nv12"):
        got = rgb_to_av(rgb.copy(), pix_fmt=pix, colorspace=1, color_range=1)
        ref = av.VideoFrame.from_ndarray(np.pad(rgb, ((0, 1), (0, 0), (0, 0)), mode="edge") if pix in ("yuv420p", "nv12")
                                         else rgb, format="rgb24")
        assert got.format.name == pix and (got.width, got.height) == (54, 37)
        if pix in ("yuv444p",):
            from stream_gpen.io._convert import _INTERP, sws_colorspace, sws_range
            from av.video.reformatter import ColorRange

            want = ref.reformat(format=pix, dst_colorspace=sws_colorspace(1), src_color_range=ColorRange.JPEG,
                                dst_color_range=sws_range(1), interpolation=_INTERP)
            assert np.array_equal(got.to_ndarray(), want.to_ndarray())
    # rgb24 kept as it is: a frame of its own, not a view of the caller's array
    vf = rgb_to_av(rgb, pix_fmt="rgb24", colorspace=None, color_range=None)
    before = vf.to_ndarray().copy()
    rgb[:] = 0
    assert np.array_equal(vf.to_ndarray(), before)


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_progress_counts_the_pictures_not_an_audio_tail(tmp_path, ext):
    """longrun18: a file whose audio runs 3 s past its 2 s of video was counted as 125 frames
    (the container's duration x rate): the ETA said minutes left at the end, the bar ended at 40%."""
    from fractions import Fraction

    import av

    from _clips import write_audio
    from stream_gpen.api import _expected_frames
    from stream_gpen.io import open_source

    path = tmp_path / f"tail.{ext}"
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=48000, layout="stereo")
        for i in range(50):
            fr = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 4 * i, np.uint8), format="rgb24")
            fr.pts, fr.time_base = i, Fraction(1, 25)
            for p in v.encode(fr):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        write_audio(c, a, 5.0)
    with open_source(path) as s:
        meta = s.metadata
    assert meta.duration_s > 4.5 and meta.video_duration_s == pytest.approx(2.0, abs=0.1)
    assert 49 <= _expected_frames(meta) <= 51
