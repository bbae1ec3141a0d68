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


def _rows(plane) -> np.ndarray:
    """A frame plane's bytes, one row a line (its padding included)."""
    return np.frombuffer(bytes(plane), np.uint8).reshape(plane.height, plane.line_size)


def test_the_encode_conversion_reads_the_picture_in_place_with_the_same_samples(monkeypatch):
    """rgb_to_av with swscale reading the caller's array in place gives the samples the old copy
    into a frame first (from_ndarray) gave: every format, odd sizes (padded and cropped), 16 bits."""
    import av

    from stream_gpen.io._convert import rgb_to_av

    rng = np.random.default_rng(3)
    cases = [(np.uint8, pix) for pix in ("yuv420p", "yuv444p", "yuv422p", "nv12", "yuvj420p")]
    cases += [(np.uint16, pix) for pix in ("yuv420p10le", "yuv444p12le")]
    for dtype, pix in cases:
        for h, w in ((37, 54), (48, 64), (21, 33)):
            hi = 65535 if dtype == np.uint16 else 255
            rgb = rng.integers(0, hi + 1, (h, w, 3), dtype=np.int64).astype(dtype)
            new = rgb_to_av(rgb.copy(), pix_fmt=pix, colorspace=1, color_range=2 if "j" in pix else 1)
            with monkeypatch.context() as m:  # the old way: a frame of its own first
                m.setattr(av.VideoFrame, "from_numpy_buffer", av.VideoFrame.from_ndarray)
                old = rgb_to_av(rgb.copy(), pix_fmt=pix, colorspace=1, color_range=2 if "j" in pix else 1)
            assert (new.width, new.height, new.format.name) == (w, h, old.format.name)
            for k, (a, b) in enumerate(zip(new.planes, old.planes)):
                width = a.width * (2 if dtype == np.uint16 else 1) * (2 if pix == "nv12" and k == 1 else 1)
                assert np.array_equal(_rows(a)[:, :width], _rows(b)[:, :width]), (pix, h, w, k)
    # rgb24 kept as it is: a frame of its own, not a view of the caller's array
    rgb = rng.integers(0, 256, (37, 54, 3), dtype=np.uint8)
    vf = rgb_to_av(rgb, pix_fmt="rgb24", colorspace=None, color_range=None)
    before = vf.to_ndarray().copy()
    rgb[:] = 0
    assert np.array_equal(vf.to_ndarray(), before)


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_progress_counts_the_pictures_not_an_audio_tail(tmp_path, ext):
    """longrun18: a file whose audio runs 3 s past its 2 s of video was counted as 125 frames
    (the container's duration x rate): the ETA said minutes left at the end, the bar ended at 40%."""
    from _clips import audio_tail_clip
    from stream_gpen.api import _expected_frames
    from stream_gpen.io import open_source

    path = audio_tail_clip(tmp_path / f"tail.{ext}", frames=50, audio_s=5.0)
    with open_source(path) as s:
        meta = s.metadata
    assert meta.duration_s > 4.5 and meta.video_duration_s == pytest.approx(2.0, abs=0.1)
    assert 49 <= _expected_frames(meta) <= 51
