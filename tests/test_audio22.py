"""Hunt 22 (audio22): a second subtitle track is not held back as a "fresh" stream (lost with
--duration, stored after the last frame otherwise); --duration alone cuts the chapters."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stream_gpen.io import open_sink, open_source
from tests.test_io_subtitles import make_clip

SRT = """1
00:00:00,100 --> 00:00:00,900
first

2
00:00:01,200 --> 00:00:01,600
second

3
00:00:01,800 --> 00:00:01,900
third
"""


def _with_srt(tmp_path: Path, srt: str, langs=("eng",), n: int = 60) -> Path:
    """A clip of ``n`` frames with the SubRip ``srt`` as one track per language, interleaved by
    time as mkvmerge writes a film with several subtitle languages."""
    clip = make_clip(tmp_path / "clip.mkv", n=n)
    sub = tmp_path / "s.srt"
    sub.write_text(srt, encoding="utf-8")
    dst = tmp_path / "subs.mkv"
    with av.open(str(clip)) as v, av.open(str(sub)) as s, av.open(str(dst), "w") as out:
        vo = out.add_stream_from_template(v.streams.video[0])
        tracks = []
        for lang in langs:
            so = out.add_stream_from_template(s.streams.subtitles[0])
            so.metadata["language"] = lang
            tracks.append(so)
        cues = [p for p in s.demux(s.streams.subtitles[0]) if p.size]
        items = [(float(p.pts * p.time_base), 0, p, vo) for p in v.demux(v.streams.video[0]) if p.size]
        items += [(float(p.pts * p.time_base), 1 + k, p, so) for p in cues for k, so in enumerate(tracks)]
        for _, _, p, st in sorted(items, key=lambda x: (x[0], x[1])):
            q = av.Packet(bytes(p))
            q.pts, q.dts, q.duration, q.time_base = p.pts, p.dts, p.duration, p.time_base
            q.is_keyframe = p.is_keyframe
            q.stream = st
            out.mux(q)
    return dst


def _through(src_path: Path, dst: Path, **source_kw) -> Path:
    with open_source(src_path, **source_kw) as src, open_sink(dst, source=src, preset="ultrafast") as sink:
        for f in src:
            sink.write(f)
    return dst


def _cues(path: Path) -> dict:
    """language -> [(start s, file position order)] of each subtitle track, and the order of all packets."""
    out: dict = {}
    with av.open(str(path)) as c:
        order = [(p.stream.type, p.stream.metadata.get("language"), float(p.pts * p.time_base))
                 for p in c.demux() if p.size and p.pts is not None]
    for kind, lang, t in order:
        if kind == "subtitle":
            out.setdefault(lang, []).append(round(t, 2))
    return out, order


@pytest.mark.parametrize("duration", [None, 1.5])
def test_a_second_subtitle_track_is_kept_and_stored_in_time(tmp_path, duration):
    dst = _through(_with_srt(tmp_path, SRT, ("eng", "fra")), tmp_path / "o.mkv", duration=duration)
    cues, order = _cues(dst)
    want = [0.1, 1.2] if duration else [0.1, 1.2, 1.8]
    assert cues.get("eng") == want and cues.get("fra") == want, cues  # fra came back empty with --duration
    # stored beside their pictures, not after the last frame
    for k, (kind, lang, t) in enumerate(order):
        if kind == "subtitle":
            later_video = [tt for kk, _, tt in order[:k] if kk == "video" and tt > t + 0.5]
            assert not later_video, (lang, t, later_video[:3])


def test_duration_alone_cuts_the_chapters(tmp_path):
    src_path = make_clip(tmp_path / "c.mkv", n=60)
    with_ch = tmp_path / "ch.mkv"
    with av.open(str(src_path)) as v, av.open(str(with_ch), "w") as out:
        vo = out.add_stream_from_template(v.streams.video[0])
        out.set_chapters([{"id": i + 1, "start": s, "end": e, "time_base": Fraction(1, 1000), "metadata": {"title": t}}
                          for i, (s, e, t) in enumerate([(0, 1000, "a"), (1000, 1500, "b"), (1500, 2400, "c")])])
        for p in v.demux(v.streams.video[0]):
            if p.size:
                p.stream = vo
                out.mux(p)
    dst = _through(with_ch, tmp_path / "o.mkv", duration=1.2)
    with av.open(str(dst)) as c:
        chapters = [(round(float(ch["start"] * ch["time_base"]), 2), round(float(ch["end"] * ch["time_base"]), 2))
                    for ch in c.chapters()]
    assert chapters == [(0.0, 1.0), (1.0, 1.2)], chapters  # (the 1.5 s chapter was kept, past the end)


def test_track_titles_dropped_by_mpegts_are_said(tmp_path):
    # "Main", "Commentary", "Surround" all read "Audio 1/2/3" in a .ts, with no word (a language
    # lost into .avi was said)
    from tests._clips import write_audio

    titled = tmp_path / "t.mkv"
    with av.open(str(titled), "w") as c:
        v = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.metadata["title"] = "Picture"
        a = c.add_stream("aac", rate=48000)
        a.metadata["title"] = "Commentary"
        for i in range(10):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        write_audio(c, a, 0.4)
    with open_source(titled) as src, open_sink(tmp_path / "o.ts", source=src, preset="ultrafast") as sink:
        for f in src:
            sink.write(f)
    said = " ".join(sink.dropped)
    assert "title 'Commentary' dropped" in said and "title 'Picture' dropped" in said, sink.dropped


def test_duration_alone_cuts_an_mp4s_converted_cues(tmp_path):
    # regress22a: a SubRip cue converted to mov_text ran on to 3.5 s in a 2 s .mp4 (the .mkv's was cut)
    one = _with_srt(tmp_path, "1\n00:00:00,500 --> 00:00:03,500\nlong\n", n=100)
    dst = _through(one, tmp_path / "o.mp4", duration=2.0)
    with av.open(str(dst)) as c:
        ends = [float((p.pts + p.duration) * p.time_base) for p in c.demux(c.streams.subtitles[0]) if p.size]
    assert ends and max(ends) <= 2.0 + 1e-6, ends
