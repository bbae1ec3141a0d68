"""Reading a frame's side data must not keep the frame alive (session 33).

PyAV 18's ``frame.side_data`` is kept on the frame and points back at it: a reference cycle that
only a full garbage collection frees. Looked at for every frame (closed captions that start after
the first), it held each decoded frame: +146 MB over 3 minutes of 720p (tests/test_io_rss.py).
"""
from __future__ import annotations

import sys

import av
import numpy as np

from stream_gpen.io._meta import frame_side_data


def test_reading_side_data_takes_no_lasting_reference_to_the_frame():
    f = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
    before = sys.getrefcount(f)
    for _ in range(3):
        assert frame_side_data(f) == []
    assert sys.getrefcount(f) == before

