"""Hunt 32: a subtitle track with no cues was said "left out" of an .mp4/.mov output (a warning,
and the summary's fallbacks) where the file holds it: FFmpeg's mp4/mov muxers end every mov_text
track with a blank cue, so its track is written, where an empty audio or data track is not."""
from __future__ import annotations

import av
import numpy as np
import pytest

from tests._clips import copy_through


def _empty_sub(tmp_path):
    srt = tmp_path / "one.srt"
    srt.write_text("1\n00:00:00,100 --> 00:00:00,400\nhello\n")
    path = tmp_path / "empty_sub.mkv"
    with av.open(str(srt)) as s, av.open(str(path), "w") as o:
        v = o.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        o.add_stream_from_template(s.streams[0])  # a subtitle track, no cue muxed into it
        for i in range(10):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 9, np.uint8), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                o.mux(p)
        for p in v.encode():
            o.mux(p)
    return path


@pytest.mark.parametrize("ext,part", [("mp4", {}), ("mov", {}), ("mp4", {"start": 0.1, "duration": 0.2})])
def test_an_empty_subtitle_track_kept_in_mp4_is_not_said_left_out(tmp_path, ext, part):
    out = tmp_path / f"o.{ext}"
    sink = copy_through(_empty_sub(tmp_path), out, source_kw=part)
    with av.open(str(out)) as c:
        assert [s.codec_context.name for s in c.streams.subtitles] == ["mov_text"]  # (what the muxer wrote)
    said = [m for m in sink.dropped + sink.fallbacks if "had no packets" in m or "left out" in m]
    assert not said, said

