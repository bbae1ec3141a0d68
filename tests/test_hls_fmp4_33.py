"""Session 33: an HEVC ``.m3u8`` output was written as MPEG-TS segments, which Apple's HLS spec does
not take for HEVC (Safari and iOS play HEVC HLS from fragmented-MP4 segments only). An HEVC
playlist's segments are fMP4 now (``NAME_0.m4s`` ..., their init segment ``NAME_init.mp4`` listed
as ``#EXT-X-MAP``, its sample entry ``hvc1``); H.264 stays in TS. A replaced output's old segments of either kind go."""
from __future__ import annotations

import av
import numpy as np

from _clips import write_video
from stream_gpen.io import FileSink, open_source
from stream_gpen.io._sink import segments_there

H, W = 48, 64


def _render(tmp_path, n: int, grey: int, codec: str) -> list:
    src = write_video(tmp_path / f"in{n}.mkv", [np.full((H, W, 3), grey, np.uint8)] * n, rate=10,
                      options={"preset": "ultrafast", "bf": "0"})
    with open_source(src) as s:  # (live: a keyframe, so a segment, every 2 s)
        sink = FileSink(tmp_path / "o.m3u8", source=s, preset="ultrafast", codec=codec, live=True, overwrite=True)
        for f in s:
            sink.write(f)
        sink.close()
    return segments_there(tmp_path / "o.m3u8")


def test_an_hevc_playlist_has_fmp4_segments(tmp_path):
    segs = _render(tmp_path, 60, 40, "hevc")
    names = sorted(q.name for q in segs)
    assert "o_init.mp4" in names and {"o_0.m4s", "o_1.m4s", "o_2.m4s"} <= set(names), names
    assert not any(n.endswith(".ts") for n in names)
    text = (tmp_path / "o.m3u8").read_text()
    assert '#EXT-X-MAP:URI="o_init.mp4"' in text and "o_0.m4s" in text, text
    assert b"hvc1" in (tmp_path / "o_init.mp4").read_bytes()  # (the sample entry Apple's players take)
    with av.open(str(tmp_path / "o.m3u8")) as c:
        assert c.streams.video[0].codec_context.name == "hevc"
        frames = [f for f in c.decode(video=0)]
    assert len(frames) == 60
    assert max(abs(float(f.to_ndarray(format="gray").mean()) - 40) for f in frames) < 8
    assert [round(float(f.time - frames[0].time), 3) for f in frames] == [round(k / 10, 3) for k in range(60)]
    # written over by an H.264 playlist (TS segments): none of the HEVC one's files is left
    short = _render(tmp_path, 20, 200, "h264")
    assert short and all(q.suffix == ".ts" for q in short), short
    assert "#EXT-X-MAP" not in (tmp_path / "o.m3u8").read_text()
    assert not list(tmp_path.glob("o_*.m4s")) and not (tmp_path / "o_init.mp4").exists()
    # and back: the TS segments go in turn
    again = _render(tmp_path, 20, 90, "hevc")
    assert again and not list(tmp_path.glob("o_*.ts")), again
