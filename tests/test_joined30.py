"""``start`` in recordings joined end to end (hunt 30): ``cat a.ts b.ts`` of two recordings
whose clocks both start at 10 s. A whole run reads them one after another (the second moved to
run on from the end of the first); a part was cut by FFmpeg's seek on the raw times, which both
recordings hold: it landed in the wrong recording or past the end, and the part was refused as
"past the end of the data ... looks cut off or damaged" (or "past the end", with a hint to
``info``, whose duration was the first recording's). Now a local MPEG-TS/PS whose clock jumps
back is read from its first byte for a part, through the joins as the whole file is: the part is
the whole run's frames in its window; a start past the joined end says where that is; and
``info`` says the clock jumps back instead of calling the file cut off."""
from __future__ import annotations

import av
import pytest
from _clips import ts_clip, window_frames as _frames

from stream_gpen.errors import InvalidInputError


@pytest.fixture(scope="module")
def joined(tmp_path_factory):
    d = tmp_path_factory.mktemp("joined")
    path = d / "joined.ts"
    path.write_bytes(bytes(ts_clip(d / "a.ts", n=50, t0=10.0)) + bytes(ts_clip(d / "b.ts", n=40, t0=10.0)))
    with av.open(str(path)) as c:
        s0 = c.start_time / 1e6
    whole = _frames(path)
    assert len(whole) == 90 and whole[-1][0] - whole[0][0] > 3.5  # (the two recordings one after another)
    return path, s0, whole


@pytest.mark.parametrize("start, duration", [(0.5, 1.0), (1.5, 1.0), (2.5, 0.6), (3.0, None)],
                         ids=["first", "across-the-join", "second", "second-to-the-end"])
def test_a_part_of_joined_recordings_is_the_whole_runs(joined, start, duration):
    path, s0, whole = joined
    first = next(t for t, _ in whole if t >= s0 + start - 1e-6)
    end = first + duration if duration is not None else float("inf")
    want = [(t, g) for t, g in whole if first - 1e-6 <= t < end - 1e-6]
    assert len(want) >= 10
    assert _frames(path, start=start, duration=duration) == want


@pytest.fixture(scope="module")
def longer(tmp_path_factory):
    d = tmp_path_factory.mktemp("joined-long")
    path = d / "joined.ts"
    path.write_bytes(bytes(ts_clip(d / "a.ts", n=200, bf=2, t0=10.0)) + bytes(ts_clip(d / "b.ts", n=150, bf=2, t0=10.0)))
    with av.open(str(path)) as c:
        s0 = c.start_time / 1e6
    return path, s0, _frames(path)


@pytest.mark.parametrize("start", [5.1, 7.3, 10.5, 13.0])
def test_a_part_far_into_joined_recordings_skips_to_it_with_the_same_frames(longer, start):
    """(the video more than 2 s before the part is not decoded, but for the GOP it needs)"""
    path, s0, whole = longer
    first = next(t for t, _ in whole if t >= s0 + start - 1e-6)
    want = [(t, g) for t, g in whole if first - 1e-6 <= t < first + 1.0 - 1e-6]
    assert len(want) >= 20  # (7.3 s: across the join)
    assert _frames(path, start=start, duration=1.0) == want


def test_a_start_past_the_joined_end_says_where_it_ends(joined):
    path, _, whole = joined
    with pytest.raises(InvalidInputError, match=r"start=5 s is past the end of .*joined\.ts.*: read through, the "
                                                r"recordings joined in it \(its clock jumps back\) end at 3\.\d\d s") as e:
        _frames(path, start=5)
    assert "cut off" not in str(e.value) and "cut off" not in (e.value.hint or "")


def test_the_clock_stepping_back_is_found_by_sampling(joined, tmp_path):
    from stream_gpen.io._source import clock_steps_back

    path, _, _ = joined
    assert clock_steps_back(str(path))
    ts_clip(tmp_path / "one.ts", n=90, t0=10.0)
    assert not clock_steps_back(str(tmp_path / "one.ts"))


def test_info_says_the_clock_jumps_back_not_that_the_file_is_cut_off(joined):
    from stream_gpen.commands import describe_input

    path, _, _ = joined
    out = describe_input(str(path))
    assert out.get("clock_jumps_back") is True and not out.get("truncated"), out
    assert any(p.startswith("its clock jumps back (recordings joined into one file?)") for p in out["plan"]), out
    assert not any("cut off" in p for p in out["plan"]), out
