"""Frames without a pts inside a ``start``/``duration`` window (hunt 30). Session 29 placed a
timed container's frames without a pts (an MPEG-TS whose first PES carry no PTS) one frame
interval before the first timed frame, but only after the window had judged them: with a window
they were timed by their index over the rate first (0 s, 0.04 s, ...), so ``duration`` alone
dropped them as before the window (a clock at 10 s) or kept them at 0 s before a gap, with
B-frames out of order. With ``start``, the seek back to a keyframe could not see the untimed one
at the top and landed on the next timed keyframe: the part's first GOP was lost (the whole part
a second late). Now a window's frames are placed before it judges them, and a part whose
keyframe is among the untimed frames at the top is decoded from the file's first byte: the
frames, their times and pictures, are the intact file's."""
from __future__ import annotations

import av
import pytest
from _clips import copy_through, ts_clip, window_frames as _frames

from tests.test_edge29 import _strip_pts


@pytest.fixture(scope="module", params=[(0.0, 0), (10.0, 2)], ids=["at-0", "at-10s-bframes"])
def clips(request, tmp_path_factory):
    t0, bf = request.param
    d = tmp_path_factory.mktemp("untimed")
    intact, src = d / "intact.ts", d / "nopts.ts"
    ts_clip(intact, n=50, bf=bf, t0=t0)
    src.write_bytes(_strip_pts(bytearray(intact.read_bytes()), 0, 5))  # (the first 5 frames, the keyframe among them)
    with av.open(str(src)) as c:
        assert sum(p.pts is None for p in c.demux(c.streams.video[0]) if p.size) == 5
    return intact, src


@pytest.mark.parametrize("window", [{"duration": 1.0}, {"duration": 0.2}, {"start": 0.1, "duration": 1.0},
                                    {"start": 0.25, "duration": 0.3}, {"start": 0.5, "duration": 0.3}, {"start": 0.15}],
                         ids=["duration", "short", "start-in-untimed", "start-at-untimed", "start-after", "start-only"])
def test_untimed_leading_frames_in_a_window_are_the_intact_files(clips, window):
    intact, src = clips
    want = _frames(intact, **window)
    assert len(want) >= 5
    assert _frames(src, **window) == want


def test_the_part_written_is_the_intact_files(clips, tmp_path):
    intact, src = clips
    window = {"start": 0.1, "duration": 1.0}
    copy_through(src, tmp_path / "o.mp4", source_kw=window)
    copy_through(intact, tmp_path / "ref.mp4", source_kw=window)
    got, ref = [], []
    for path, frames in ((tmp_path / "o.mp4", got), (tmp_path / "ref.mp4", ref)):
        with av.open(str(path)) as c:
            frames += [(float(f.pts * f.time_base), float(f.to_ndarray(format="gray").mean()))
                       for f in c.decode(c.streams.video[0])]
    assert len(ref) == 25 and len(got) == 25
    assert [t for t, _ in got] == pytest.approx([t for t, _ in ref], abs=1e-6)
    assert [g for _, g in got] == pytest.approx([g for _, g in ref], abs=2)  # (the same pictures: not a GOP later)
