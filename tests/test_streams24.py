"""Session 24's video-handling fixes: container tags an .mp4/.mov cannot hold, the ``--audio none``
note on a timecode/chapter track, the last frame's duration of a VFR clip with B-frames, Dolby
Vision, and ``--copy-if-no-faces`` with side streams the re-encode drops or converts too."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from _clips import copy_through

FR = [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)]


def tagged_mkv(path: Path, tags: dict) -> Path:
    with av.open(str(path), "w") as c:
        c.metadata.update(tags)
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for i, img in enumerate(FR):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    return path


def _tags_note(sink) -> str:
    return " ".join(d for d in sink.dropped if "container tags" in d)


@pytest.mark.parametrize("ext, lost", [("mp4", {"DATE_RECORDED"}), ("mov", {"DATE_RECORDED", "DESCRIPTION", "KEYWORDS"})])
def test_mov_tags_it_cannot_hold_are_said(tmp_path, ext, lost):
    # the mov muxer writes a fixed list of atoms: a Matroska's DATE_RECORDED (and in .mov its
    # DESCRIPTION, KEYWORDS) vanished without a note, where .avi/.ts named theirs
    src = tagged_mkv(tmp_path / "in.mkv", {"title": "T", "date": "2020", "comment": "C", "DATE_RECORDED": "2020-01-02",
                                           "DESCRIPTION": "D", "KEYWORDS": "kw"})
    sink = copy_through(src, tmp_path / f"out.{ext}")
    with av.open(str(tmp_path / f"out.{ext}")) as c:
        back = {k.lower() for k in c.metadata}
    note = _tags_note(sink)
    assert {k for k in ("title", "date", "comment", "date_recorded", "description", "keywords")
            if k not in back} == {k.lower() for k in lost}
    for k in lost:
        assert k in note, (k, sink.dropped)
    assert "title" not in note and "comment" not in note.replace("(", "")


def test_mov_tags_fill_empty_standard_slots(tmp_path):
    # with no date/comment of its own, the recording date and description land where QuickTime
    # and iTunes readers look for them; nothing is then lost (and nothing said)
    src = tagged_mkv(tmp_path / "in.mkv", {"DATE_RECORDED": "2020-01-02", "DESCRIPTION": "D"})
    for ext in ("mov", "mp4"):
        sink = copy_through(src, tmp_path / f"out.{ext}")
        with av.open(str(tmp_path / f"out.{ext}")) as c:
            meta = {k.lower(): v for k, v in c.metadata.items()}
        assert meta.get("date") == "2020-01-02", (ext, meta)
        assert "D" in (meta.get("description"), meta.get("comment")), (ext, meta)
        assert not _tags_note(sink), sink.dropped


def test_mdta_mov_keeps_every_tag_without_a_note(tmp_path):
    # an iPhone's com.apple.quicktime keys switch the muxer to mdta keys, which hold any key
    src = tagged_mkv(tmp_path / "in.mkv", {"com.apple.quicktime.make": "Apple", "DATE_RECORDED": "2020-01-02"})
    sink = copy_through(src, tmp_path / "out.mov")
    with av.open(str(tmp_path / "out.mov")) as c:
        back = {k.lower() for k in c.metadata}
    assert {"com.apple.quicktime.make", "date_recorded"} <= back
    assert not _tags_note(sink), sink.dropped


def timecode_clip(path: Path, *, chapters: bool, audio: bool = False) -> Path:
    """A .mov/.mp4 whose video has a timecode (the muxer writes a ``tmcd`` track), with chapters
    (FFmpeg's chapter text track) and AAC audio if asked."""
    from fractions import Fraction

    from _clips import write_audio

    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.metadata["timecode"] = "01:02:03:04"
        if chapters:
            c.set_chapters([{"id": i + 1, "start": 80 * i, "end": 80 * (i + 1), "time_base": Fraction(1, 1000),
                             "metadata": {"title": f"Part {i + 1}"}} for i in range(2)])
        a = c.add_stream("aac", rate=48000, layout="stereo") if audio else None
        for i in range(4):
            f = av.VideoFrame.from_ndarray(FR[i % 3], format="rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        if a is not None:
            write_audio(c, a, 0.16)
    return path


@pytest.mark.parametrize("ext, chapters", [("mov", False), ("mp4", True)])
def test_audio_none_does_not_say_a_kept_timecode_or_chapter_track_dropped(tmp_path, ext, chapters):
    # the tmcd track is carried as the video's timecode tag (the muxer writes a new one), the
    # chapter track as the chapters: "dropped: left out with the audio" was untrue
    src = timecode_clip(tmp_path / f"in.{ext}", chapters=chapters, audio=True)
    sink = copy_through(src, tmp_path / f"out.{ext}", audio="none")
    with av.open(str(tmp_path / f"out.{ext}")) as c:
        assert c.streams.video[0].metadata.get("timecode") == "01:02:03:04"
        assert len(c.chapters()) == (2 if chapters else 0)
        assert not c.streams.audio
    said = [d for d in sink.dropped if "dropped" in d]
    assert said and all(d.startswith("audio stream") for d in said), sink.dropped


def test_mp4_chapter_track_beside_a_timecode_is_not_copied_twice(tmp_path):
    # FFmpeg's muxer gives such an mp4's video the tmcd reference in place of the chapter one, so
    # the demuxer reads the chapter track as a subtitle track: it was copied next to the new one
    src = timecode_clip(tmp_path / "in.mp4", chapters=True)
    with av.open(str(src)) as c:
        before = len(c.streams)
    copy_through(src, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert len(c.streams) == before, [(s.type, dict(s.metadata)) for s in c.streams]
        assert [ch["metadata"]["title"] for ch in c.chapters()] == ["Part 1", "Part 2"]


def vfr_bframes_mp4(path: Path, last_sample: int | None = None) -> Path:
    """A screen-recording-like mp4 (pts in 1/1000 s, irregular) with B-frames, 30 fps nominal: its
    last frame (1.4 s) is not the last sample in decode order, whose step to the next sample the
    decoder gave it as its duration (0.25 s, not the file's 1/30 s). ``last_sample``: the last
    packet's duration (ms) as muxed, where given."""
    from fractions import Fraction

    pts = [0, 33, 50, 120, 133, 300, 317, 333, 700, 716, 733, 750, 1000, 1010, 1400]
    y, x = np.mgrid[0:48, 0:64]
    with av.open(str(path), "w") as c:
        # (smooth moving content and fixed B-frame placement: x264 then codes the 1.4 s frame as a
        # P-frame followed in decode order by the B-frames shown before it)
        v = c.add_stream("libx264", rate=30, options={"bf": "3", "x264-params": "b-adapt=0:log-level=error"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.codec_context.time_base = v.time_base = Fraction(1, 1000)
        packets = []
        for i, t in enumerate(pts):
            img = np.stack([(x * 4 + i * 3) % 256, (y * 5 + i * 2) % 256, ((x + y) * 2) % 256], -1).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            packets += list(v.encode(f))
        packets += list(v.encode())
        if last_sample is not None:
            packets[-1].duration = last_sample
        for p in packets:
            c.mux(p)
    return path


def _video_end(path: Path) -> float:
    """Where the video track ends, as players read it (its start plus its duration)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return float((s.start_time + s.duration) * s.time_base)


def test_vfr_bframes_last_frame_keeps_the_files_duration(tmp_path):
    from stream_gpen.io import open_source

    src = vfr_bframes_mp4(tmp_path / "vfr.mp4")
    with av.open(str(src)) as c:  # (the clip is what it should be: the decoder's last duration is another frame's)
        s = c.streams.video[0]
        last = list(c.decode(s))[-1]
        assert abs(float(last.time) - 1.4) < 1e-3 and float(last.duration * s.time_base) > 0.1
    with open_source(str(src)) as s:
        durs = []
        for f in s:
            durs.append((f.time, f.duration))
            f.release()
    assert abs(durs[-1][0] - 1.4) < 1e-3 and abs(durs[-1][1] - 1 / 30) < 2e-3, durs[-3:]
    copy_through(src, tmp_path / "out.mp4")
    assert _video_end(tmp_path / "out.mp4") == pytest.approx(1.4 + 1 / 30, abs=2e-3)


def test_cfr_bframes_mp4_last_frame_unchanged(tmp_path):
    from _clips import write_video
    from stream_gpen.io import open_source

    src = write_video(tmp_path / "cfr.mp4", [np.full((48, 64, 3), 9 * i, np.uint8) for i in range(12)],
                      options={"bf": "3"})
    with open_source(str(src)) as s:
        durs = []
        for f in s:
            durs.append(f.duration)
            f.release()
    assert durs == pytest.approx([0.04] * 12)


def dolby_vision_mov(path: Path, *, profile: int, compat: int) -> Path:
    """A tiny HEVC .mov with a Dolby Vision configuration record (``dvcC`` for profiles up to 7,
    ``dvvC`` above, as phones write it) added to its sample entry; the pictures carry no RPU."""
    import struct

    from _clips import write_video

    write_video(path, [np.full((64, 64, 3), 40 * i, np.uint8) for i in range(3)], codec="libx265",
                options={"x265-params": "log-level=error"}, fmt="mov")
    b = bytearray(path.read_bytes())

    def child(start, end, kind, skip=8):
        i = start + skip
        while i + 8 <= end:
            size, typ = struct.unpack(">I4s", b[i:i + 8])
            if typ == kind:
                return i, size
            i += size
        raise LookupError(kind)

    chain = [child(0, len(b), b"moov", 0)]
    for kind in (b"trak", b"mdia", b"minf", b"stbl", b"stsd"):
        chain.append(child(chain[-1][0], sum(chain[-1]), kind))
    stsd = chain[-1]  # (its entries follow its version, flags and entry count)
    try:
        chain.append(child(stsd[0], sum(stsd), b"hev1", 16))
    except LookupError:
        chain.append(child(stsd[0], sum(stsd), b"hvc1", 16))
    assert child(0, len(b), b"mdat", 0)[0] < chain[0][0]  # (the moov last: no sample offset moves)
    rec = bytes([1, 0]) + struct.pack(">H", (profile << 9) | (4 << 3) | 0b101) + bytes([compat << 4]) + bytes(19)
    box = struct.pack(">I4s", 8 + len(rec), b"dvcC" if profile <= 7 else b"dvvC") + rec
    at = chain[-1][0] + chain[-1][1]
    b[at:at] = box
    for off, size in chain:
        struct.pack_into(">I", b, off, size + len(box))
    path.write_bytes(bytes(b))
    return path


@pytest.mark.parametrize("profile, compat, words", [(8, 4, ["profile 8.4", "HLG base layer"]),
                                                    (5, 0, ["profile 5", "colours are wrong"])])
def test_dolby_vision_loss_is_said(tmp_path, profile, compat, words):
    # the record (an iPhone's 8.4) was dropped on re-encode without a word; a profile 5 video,
    # which no player shows right without Dolby Vision, came out with wrong colours unsaid
    from stream_gpen.io import open_source

    src = dolby_vision_mov(tmp_path / "dv.mov", profile=profile, compat=compat)
    with open_source(str(src)) as s:
        assert s.metadata.extra["dolby_vision"]["profile"] == profile
    sink = copy_through(src, tmp_path / "out.mov")
    note = " ".join(f for f in sink.fallbacks if "Dolby Vision" in f)
    assert all(w in note for w in words), sink.fallbacks


def test_dolby_vision_in_info(tmp_path, cli_env, capsys):
    import json

    from stream_gpen.cli import main

    src = dolby_vision_mov(tmp_path / "dv.mov", profile=5, compat=0)
    assert main(["info", str(src), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dolby_vision"]["profile"] == 5
    assert any("profile 5" in p and "colours are wrong" in p for p in info["plan"]), info["plan"]


def opus_srt_mkv(path: Path) -> Path:
    """A face-less .mkv: 25 grey frames, Opus audio and SubRip subtitles (as the copy of
    ``--copy-if-no-faces`` into .mov / .ts meets them)."""
    from _clips import write_audio

    srt = path.with_suffix(".srt")
    srt.write_text("1\n00:00:00,100 --> 00:00:00,400\nhello\n\n2\n00:00:00,500 --> 00:00:00,900\nthere\n",
                   encoding="utf-8")
    with av.open(str(srt)) as s, av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("libopus", rate=48000, layout="stereo")
        so = c.add_stream_from_template(s.streams.subtitles[0])
        for i in range(25):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 100 + i, np.uint8), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        write_audio(c, a, 1.0)
        for p in s.demux(s.streams.subtitles[0]):
            if p.size:
                p.stream = so
                c.mux(p)
    return path


def _video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


@pytest.mark.parametrize("ext, said, kinds", [
    (".ts", "subtitle stream #2 (subrip) dropped: mpegts does not accept subrip", {"video": "h264", "audio": "opus"}),
    (".mov", "audio stream #1 (opus) transcoded to aac", {"video": "h264", "audio": "aac", "subtitle": "mov_text"}),
])
def test_copy_if_no_faces_drops_or_converts_side_streams_as_the_reencode_does(tmp_path, enh, ext, said, kinds):
    # SubRip into .ts (dropped by the re-encode too) or Opus into .mov (transcoded by it too) made
    # the copy refuse: the re-encoded video was kept for a stream it had itself dropped/converted
    src = opus_srt_mkv(tmp_path / "in.mkv")
    dst = tmp_path / f"out{ext}"
    s = enh.enhance_file(src, dst, copy_if_no_faces=True)
    assert s.faces_restored == 0
    assert any("stream-copied to the output" in f for f in s.fallbacks), s.fallbacks
    assert any(said in f for f in s.fallbacks), s.fallbacks
    assert not any("stream copy impossible" in f for f in s.fallbacks), s.fallbacks
    assert s.encoder == "copy" and len(_video_packets(dst)) == len(_video_packets(src))
    with av.open(str(dst)) as c:
        assert {st.type: st.codec_context.name for st in c.streams} == kinds
        if ext == ".mov":
            a = c.streams.audio[0]
            assert float(a.duration * a.time_base) == pytest.approx(1.0, abs=0.05)
