"""Records and child processes that outlived what they were for (hunt 33)."""
from __future__ import annotations

import types

import pytest

from stream_gpen.server import _metrics

WINDOW_S = 10.0  # (what stream_gpen_faces_per_second says it averages over)


@pytest.fixture
def clock(monkeypatch):
    """A clock the metrics module reads instead of the real one (only that module's)."""
    now = [1000.0]
    monkeypatch.setattr(_metrics, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_the_faces_per_second_record_stays_within_its_window_unscraped(clock):
    """Every video frame and image batch added an entry that only a ``/metrics`` read pruned:
    an unscraped server grew by ~100 bytes a frame for good."""
    m = _metrics.Metrics()
    for i in range(100_000):  # (100 frames a second of simulated time, 1000 s in all)
        clock[0] += 0.01
        m.add_faces(1 + i % 3)
        if i % 10 == 0:
            m.batch(2, 1)
    kept = (WINDOW_S + 1) / 0.01 * 1.1
    assert len(m._face_times) <= kept
    # (the rate is unchanged in meaning: faces of the last window over the window)
    last = 100_000 - int(WINDOW_S / 0.01)
    want = sum(1 + i % 3 for i in range(last, 100_000)) + sum(1 for i in range(last, 100_000) if i % 10 == 0)
    assert m.faces_per_second() == pytest.approx(want / WINDOW_S, rel=0.01)
    assert m.faces_total == sum(1 + i % 3 for i in range(100_000)) + 10_000


def test_frames_without_faces_are_counted_but_not_kept(clock):
    m = _metrics.Metrics()
    for _ in range(1000):
        m.add_faces(0)
    m.add_faces(5)
    assert len(m._face_times) == 1
    assert m.faces_per_second() == pytest.approx(5 / WINDOW_S)
    clock[0] += WINDOW_S + 1
    assert m.faces_per_second() == 0.0
