"""Pacing of sources read live (lavfi graphs, files as cameras): rates slower than the jump limit."""
from __future__ import annotations

import pytest

from stream_gpen.io._source import _Pacer


class _FakeClock:
    """A clock that only moves when the pacer waits."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, s: float) -> bool:
        self.waits.append(s)
        self.now += s
        return False  # not stopped


def test_a_slow_rate_is_paced_not_taken_for_clock_jumps():
    """A time-lapse or slideshow source (one frame per 20 s): every step exceeded the 10 s jump
    limit, so nothing was paced and `camera --seconds 2` wrote an 11-hour recording in seconds."""
    for interval in (20.0, None):  # the stream's nominal rate known, or learnt from the steps
        clock = _FakeClock()
        pace = _Pacer(clock.wait, clock=clock, interval=interval)
        assert all(pace(20.0 * k) for k in range(5))
        assert clock.waits == pytest.approx([20.0] * (4 if interval else 3))
        assert pace.resyncs == (0 if interval else 1)
        # a real jump (an hour on) is still one, and so is a second one after it
        n = len(clock.waits)
        assert pace(3700.0) and pace(3720.0) and pace(9000.0) and pace(9020.0)
        assert pace.resyncs == (2 if interval else 3) and clock.waits[n:] == pytest.approx([20.0, 20.0])
