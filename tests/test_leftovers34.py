"""Session 34 leftovers.

* An HEVC ``.m3u8`` output (fMP4 segments, session 33) of a source with ADTS AAC (MPEG-TS, a
  broadcast or camera recording) failed at the first audio packet, said as "cannot write into the
  output folder ...: permission denied": FFmpeg's hls muxer hands copied packets to its mp4 muxer
  without the ``aac_adtstoasc`` conversion that muxer makes on its own.
"""
from __future__ import annotations

import av

from _clips import copy_through, ts_clip
from stream_gpen.io._sink import segments_there


def _audio_seconds(path) -> float:
    with av.open(str(path)) as c:
        return sum(f.samples for f in c.decode(audio=0)) / c.streams.audio[0].sample_rate


def _playlist(tmp_path, codec: str, **kw) -> None:
    """``in.ts`` (2 s at 25 fps, ADTS AAC audio) written as ``o.m3u8`` in ``codec``; checks that its
    segments are fMP4 and listed so."""
    ts_clip(tmp_path / "in.ts", 50)
    copy_through(tmp_path / "in.ts", tmp_path / "o.m3u8", codec=codec, **kw)
    names = sorted(q.name for q in segments_there(tmp_path / "o.m3u8"))
    assert "o_init.mp4" in names and "o_0.m4s" in names and not any(n.endswith(".ts") for n in names), names
    text = (tmp_path / "o.m3u8").read_text()
    assert '#EXT-X-MAP:URI="o_init.mp4"' in text and "o_0.m4s" in text, text
    with av.open(str(tmp_path / "o.m3u8")) as c:
        assert [s.codec_context.name for s in c.streams] == [codec, "aac"]
        assert len(list(c.decode(video=0))) == 50
    assert abs(_audio_seconds(tmp_path / "o.m3u8") - _audio_seconds(tmp_path / "in.ts")) < 0.01


def test_an_hevc_playlist_of_a_ts_keeps_its_adts_audio(tmp_path):
    _playlist(tmp_path, "hevc")
