"""Session 18: a live source whose clock jumps within a session (an encoder restarted with a new
clock, recordings joined and played out as a live feed).

Live sources were not judged for joins at all (only reconnects were, by _Timeline): a clock that
jumped an hour ahead 1 s into a 2 s feed made a recording an hour long, its last picture held
for 59:59; one that jumped back squeezed the rest into a tick a frame."""
from __future__ import annotations

import av
import numpy as np
import pytest

from _clips import ts_clip
from stream_gpen.io import open_sink, open_source


def _joined(tmp_path, t1: float):
    a, b = tmp_path / "a.ts", tmp_path / "b.ts"
    ts_clip(a, 25, t0=0.0)
    ts_clip(b, 25, t0=t1)
    out = tmp_path / "joined.ts"
    out.write_bytes(a.read_bytes() + b.read_bytes())
    return out


def _record(src_path, out, **kw):
    times = []
    with open_source(src_path, **kw) as src:
        with open_sink(out, source=src, preset="ultrafast", audio="copy") as sink:
            for f in src:
                times.append(f.time)
                sink.write(f)
    return times


def _span(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        vt = [float(f.pts * v.time_base) for f in c.decode(v)]
    with av.open(str(path)) as c:
        at = [float(p.pts * p.time_base) for p in c.demux(c.streams.audio[0]) if p.size and p.pts is not None]
    return vt, at


@pytest.mark.parametrize("t1", [3600.0, 0.0], ids=["leaps-ahead", "steps-back"])
def test_a_live_feed_whose_clock_jumps_is_recorded_in_real_time(tmp_path, t1, caplog):
    src = _joined(tmp_path, t1 if t1 else 0.0)
    times = _record(src, tmp_path / "rec.mkv", live=True)  # a file played as a live feed: paced
    assert len(times) == 50
    steps = np.diff(times)
    assert (steps > 0).all() and steps.max() < 0.5, steps.max()
    vt, at = _span(tmp_path / "rec.mkv")
    # (a join runs on after the end of every stream: here the first part's audio, 0.15 s past its video)
    assert len(vt) == 50 and vt[-1] - vt[0] == pytest.approx(49 / 25, abs=0.25)
    assert (np.diff(vt) > 0.02).all(), "no frame squeezed against the one before"
    # the audio of the second part moved with its video
    assert at[-1] - at[0] == pytest.approx(vt[-1] - vt[0], abs=0.3) and (np.diff(at) > 0).all()
    if t1:
        assert any("clock jumps from" in r.getMessage() for r in caplog.records)


def test_a_files_pause_is_kept_and_a_live_feeds_real_pause_too(tmp_path):
    # offline, a leap is the file's own pause (a slideshow, a VFR still): kept
    src = _joined(tmp_path, 5.0)
    times = _record(src, tmp_path / "off.mkv", live=False)
    assert max(np.diff(times)) == pytest.approx(4.0, abs=0.1)
    # live, a leap no further ahead than the time that passed is real (lost data, a pause): kept too
    times = _record(src, tmp_path / "live.mkv", live=True)
    assert max(np.diff(times)) == pytest.approx(4.0, abs=0.1)
