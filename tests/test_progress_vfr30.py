"""Session 30 (api): on_progress of a cut of a variable-rate clip whose header counts no frames
ended below its total (duration=0.5 said 8 of 13 to the end: the estimate is corrected by the
frames' times only after a second of them); the last call now says the true count."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest


@pytest.fixture(scope="module")
def vfr(tmp_path_factory):
    """30 frames over 1.8 s at a nominal 25 fps (steps of 40 and 100 ms), in Matroska: no count."""
    path = tmp_path_factory.mktemp("vfr") / "vfr.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        t = 0
        for i in range(30):
            vf = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i, np.uint8), format="rgb24")
            vf.pts, vf.time_base = t, Fraction(1, 1000)
            t += 40 if i % 3 else 100
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.mark.parametrize("kw", [{}, dict(duration=0.5), dict(start=1.5), dict(start=0.3, duration=0.6)])
def test_the_last_progress_call_of_a_cut_reaches_its_total(enh, vfr, tmp_path, kw):
    calls = []
    s = enh.enhance_file(vfr, tmp_path / "o.mp4", on_progress=lambda *a: calls.append(a[:2]), **kw)
    assert calls[-1] == (s.frames_out, s.frames_out), calls
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)  # (never back)


def test_a_folders_video_cut_still_ends_at_the_folders_total(enh, vfr, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "v.mkv").symlink_to(vfr)
    calls = []
    enh.enhance_file(folder, tmp_path / "out", duration=0.5, on_progress=lambda *a: calls.append(a[:2]))
    assert calls[-1][0] == calls[-1][1], calls
