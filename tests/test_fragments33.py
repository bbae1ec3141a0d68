"""A fragmented mp4 cut off (a live recording killed, a full disk) is kept up to its last whole
fragment: the cut fragment's moof lists samples its mdat does not hold, and decoding the short
last one failed with "Invalid data" (session 33)."""
from __future__ import annotations

import os

import av
import numpy as np

from _clips import write_video
from stream_gpen.io._sink import _playable_frames


def _fragmented(path, frames=30, rate=10):
    rng = np.random.default_rng(1)
    write_video(path, (rng.integers(0, 255, (48, 64, 3), np.uint8) for _ in range(frames)), rate=rate,
                options={"g": "10", "preset": "ultrafast", "crf": "0"},
                container_options={"movflags": "frag_keyframe+empty_moov+default_base_moof"})


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
    write_video(clip, (np.full((48, 64, 3), 30 * i, np.uint8) for i in range(5)), codec="mpeg4", rate=10)
    size = os.path.getsize(clip)
    assert _playable_frames(clip) == 5 and os.path.getsize(clip) == size
