"""Session 31: a camera recording into .mp4 whose frames came unevenly (5 frames at 0, 2.12, 3.68,
4.8, 4.96 s on a busy CPU) played 4 of them, its summary counting 5. The B-frame delay is hidden
by an edit list, and FFmpeg's reader of it ends the track at the second keyframe (a live output
forces one at least every 2 s: at ~1 fps nearly every frame) whose time plus the gap to the next
packet's decoding time passes the edit's end; with B-frames that gap is the one between two earlier
frames. Live recordings into mp4/mov are encoded without B-frames now."""
from __future__ import annotations

from fractions import Fraction

import av
import pytest
import torch

from stream_gpen.io import FileSink, Frame

TIMES = [Fraction(s) for s in ("0", "2.12", "3.68", "4.8", "4.96")]


def _record(out, codec: str, live: bool = True) -> None:
    tb = Fraction(1, 1000)
    g = torch.Generator().manual_seed(0)
    with FileSink(out, live=live, codec=codec, audio="none") as sink:
        for i, t in enumerate(TIMES):
            img = (torch.randint(0, 256, (64, 96, 3), generator=g, dtype=torch.uint8) if i % 2
                   else torch.full((64, 96, 3), 20 * i, dtype=torch.uint8))
            sink.write(Frame(index=i, pts=round(t / tb), time_base=tb, time=float(t), _image=img))


def _shown(path) -> list[float]:
    with av.open(str(path)) as c:
        return [round(float(f.time), 3) for f in c.decode(video=0)]


@pytest.mark.parametrize("codec", ["h264", "hevc"])
@pytest.mark.parametrize("ext", ["mp4", "mov"])
def test_an_uneven_live_recording_into_mp4_shows_every_frame(tmp_path, codec, ext):
    out = tmp_path / f"rec.{ext}"
    _record(out, codec)
    assert _shown(out) == [float(t) for t in TIMES]
    with av.open(str(out)) as c:
        assert all(p.pts == p.dts for p in c.demux(video=0) if p.size)  # (no B-frames)


def test_files_and_live_mkv_keep_their_b_frames(tmp_path):
    """Only live mp4/mov lose them: a file's recording (few keyframes) and Matroska (no edit lists)
    keep the smaller B-frame encoding."""
    for name, live in (("file.mp4", False), ("rec.mkv", True)):
        _record(tmp_path / name, "h264", live=live)
        with av.open(str(tmp_path / name), options={"ignore_editlist": "1"}) as c:
            assert any(p.dts is None or p.pts != p.dts for p in c.demux(video=0) if p.size), name
    assert _shown(tmp_path / "rec.mkv") == [float(t) for t in TIMES]
