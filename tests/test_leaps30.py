"""A damaged presentation time (one video PES's PTS 1000 s ahead, its DTS intact: a flipped bit
in a .ts) inside a ``start``/``duration`` window (hunt 30). The repair (``_mend_leap``, the frame
retimed between its neighbours) ran after the window had judged the raw time: 1000 s on, past
the window's end, so the part ended at that frame, unsaid (``--start 0.5 --duration 2``: 18 of
50 frames, the last one held for the rest), and in a whole run every later frame was counted
as stepping back from it ("44 frame(s) come at or before the frame before them"). Now the time
is mended before anything judges it: the part is the intact file's, and nothing is said to step
back."""
from __future__ import annotations

import logging

import pytest
from _clips import damage_pes, read_times, ts_clip, window_frames as _frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("leap")
    intact, bad = d / "intact.ts", d / "bad.ts"
    data = ts_clip(intact, n=50, bf=2, t0=10.0)
    damage_pes(data, "video", 20, 1000.0, dts_too=False)
    bad.write_bytes(bytes(data))
    return intact, bad


@pytest.mark.parametrize("window", [{"start": 0.3, "duration": 1.2}, {"duration": 1.5}, {"start": 0.5}],
                         ids=["start-duration", "duration", "start"])
def test_a_part_over_a_damaged_presentation_time_is_the_intact_files(clips, window, caplog):
    intact, bad = clips
    want = _frames(intact, **window)
    with caplog.at_level(logging.INFO, logger="stream_gpen.io._source"):
        got = _frames(bad, **window)
    assert len(want) >= 30
    assert got == want
    assert sum("a damaged timestamp, retimed" in r.getMessage() for r in caplog.records) == 1


def test_no_frames_said_to_step_back_after_a_retimed_presentation_time(clips):
    intact, bad = clips
    times, _, fallbacks = read_times(bad)
    assert times == pytest.approx(read_times(intact)[0], abs=1e-6)
    assert not any("at or before the frame before them" in f for f in fallbacks), fallbacks
