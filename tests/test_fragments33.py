"""A fragmented mp4 cut off (a live recording killed, a full disk) is kept up to its last whole
fragment: the cut fragment's moof lists samples its mdat does not hold, and decoding the short
last one failed with "Invalid data" (session 33)."""
from __future__ import annotations

import os

import av
import numpy as np

from stream_gpen.io._sink import _playable_frames


def _fragmented(path, frames=30, rate=10):
    with av.open(str(path), "w", options={"movflags": "frag_keyframe+empty_moov+default_base_moof"}) as out:
        s = out.add_stream("libx264", rate=rate, options={"g": "10", "preset": "ultrafast", "crf": "0"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(1)
        for _ in range(frames):
            for p in s.encode(av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), np.uint8), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def _decode_all(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_a_cut_fragmented_mp4_keeps_its_whole_fragments_and_decodes_to_the_end(tmp_path):
    clip = tmp_path / "rec.mp4"
    _fragmented(clip)
    size = os.path.getsize(clip)
    with open(clip, "r+b") as f:
        f.truncate(size - 500)  # (inside the last fragment's mdat)
    n = _playable_frames(clip)
    assert 10 <= n < 30 and os.path.getsize(clip) < size - 500
    assert _decode_all(clip) == n  # (no "Invalid data" at the end)


def test_a_cut_inside_the_first_fragment_is_left_as_it_is(tmp_path):
    clip = tmp_path / "rec.mp4"
    _fragmented(clip, frames=8)  # (one fragment only)
    size = os.path.getsize(clip)
    with open(clip, "r+b") as f:
        f.truncate(size - 300)
    _playable_frames(clip)
    assert os.path.getsize(clip) == size - 300


def test_a_regular_mkv_is_not_touched(tmp_path):
    clip = tmp_path / "rec.mkv"
    with av.open(str(clip), "w") as out:
        s = out.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 30 * i, np.uint8), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    size = os.path.getsize(clip)
    assert _playable_frames(clip) == 5 and os.path.getsize(clip) == size
