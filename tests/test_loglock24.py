"""Session 24 review: reading a video's Dolby Vision record does not import the sink (its log lock
lives with the metadata code)."""
from __future__ import annotations

import subprocess
import sys


def test_reading_a_video_does_not_import_the_sink(tmp_path):
    from _clips import write_video
    import numpy as np

    clip = write_video(tmp_path / "c.mp4", [np.full((32, 32, 3), 9 * i, np.uint8) for i in range(3)])
    code = ("import sys, av\n"
            "from stream_gpen.io._meta import dolby_vision\n"
            f"c = av.open({str(clip)!r})\n"
            "assert dolby_vision(c, c.streams.video[0]) is None\n"
            "print('stream_gpen.io._sink' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_sink_and_the_metadata_share_one_lock():
    from stream_gpen.io import _meta, _sink

    assert _sink._log_lock is _meta._log_lock
