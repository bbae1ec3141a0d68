"""Session 24: stream() and stream_frames() refuse bad arguments when called (they were generators:
nothing was checked until the first next())."""
from __future__ import annotations

import numpy as np
import pytest

from stream_gpen.errors import InvalidInputError


def test_stream_refuses_bad_arguments_at_the_call(enh):
    with pytest.raises(InvalidInputError, match="capture device index is 0 or more"):
        enh.stream(-1)
    with pytest.raises(InvalidInputError, match="latency_budget_s"):
        enh.stream("lavfi:testsrc", latency_budget_s=-1)
    with pytest.raises(InvalidInputError, match="not ndarray"):
        enh.stream(np.zeros((4, 4, 3), np.uint8))


def test_stream_frames_refuses_bad_arguments_at_the_call(enh):
    with pytest.raises(InvalidInputError, match="fps must be a positive number"):
        enh.stream_frames([np.zeros((8, 8, 3), np.uint8)], fps=0)
    with pytest.raises(InvalidInputError, match="takes an iterable of pictures"):
        enh.stream_frames(5)


def test_streams_still_run(enh, tmp_path):
    """The frames are as before (the source opened at the first next())."""
    from PIL import Image

    Image.fromarray(np.full((32, 48, 3), 90, np.uint8)).save(tmp_path / "p.png")
    gen = enh.stream(tmp_path / "p.png")
    out = list(gen)
    assert len(out) == 1 and out[0].image.shape == (32, 48, 3)
    got = list(enh.stream_frames([np.full((32, 48, 3), 90, np.uint8)] * 3, live=False))
    assert [f.index for f in got] == [0, 1, 2]
    assert list(enh.stream_frames([])) == []
