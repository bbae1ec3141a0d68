"""FileSink and remux: slow slideshows into AVI, tags and languages a container drops, odd sizes
of formats without chroma subsampling, an explicit --audio aac, and interlaced output."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stream_gpen.io._remux import remux
from stream_gpen.io._sink import avi_frame_grid
from tests._clips import copy_through, write_audio, write_video

W, H = 64, 48


def _slides(path: Path) -> Path:
    """Four pictures at 0, 2, 4 and 6 s (0.5 fps) in an mp4 with a 1/16000 s clock."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(1, 2), options={"preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.time_base = Fraction(1, 16000)
        for i in range(4):
            f = av.VideoFrame.from_ndarray(np.full((H, W, 3), 50 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = 32000 * i, Fraction(1, 16000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def _avi_video(path: Path) -> tuple[Fraction, list[int], int]:
    """The video's time base, its frames' chunk slots and the number of its chunk tags."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        slots = [p.dts for p in c.demux(s) if p.size]
        return Fraction(s.time_base), slots, path.read_bytes().count(b"00dc")


def test_the_avi_grid_follows_rates_under_one_fps():
    assert avi_frame_grid(Fraction(1, 2), Fraction(1, 16000)) == 2
    assert avi_frame_grid(Fraction(1, 5), Fraction(1, 90000)) == 5
    assert avi_frame_grid(None, Fraction(1, 1000), average=Fraction(1, 2)) == Fraction(1, 2)  # a quarter frame
    assert avi_frame_grid(Fraction(25), Fraction(1, 1000)) == Fraction(1, 25)  # (unchanged)


@pytest.mark.parametrize("how", ["encode", "remux"])
def test_a_half_fps_slideshow_into_avi_has_one_chunk_a_frame(tmp_path, how):
    """Its grid was the source's clock (FFmpeg capped it at 1/600): 600 fps declared, 1199 empty
    chunks between two pictures."""
    src = _slides(tmp_path / "s.mp4")
    dst = tmp_path / "s.avi"
    if how == "encode":
        copy_through(src, dst)
    else:
        remux(src, dst)
    tb, slots, chunks = _avi_video(dst)
    assert tb == 2 and slots == [0, 1, 2, 3]
    assert chunks < 12  # four frames (and the index's entries), no empty ones


def _tagged(path: Path, *, fmt: str | None = None, langs=("eng", "fra"), comment: int | None = None) -> Path:
    """One second of 25 fps video and an AAC track per language (titled), ``comment``: the track
    index marked as a commentary."""
    with av.open(str(path), "w", format=fmt) as c:
        v = c.add_stream("mpeg4", rate=25)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        auds = []
        for k, lang in enumerate(langs):
            a = c.add_stream("aac", rate=48000, layout="stereo")
            a.metadata.update({"language": lang, "title": f"track {k}"})
            if comment == k:
                a.disposition = av.stream.Disposition.comment
            auds.append(a)
        for i in range(25):
            f = av.VideoFrame.from_ndarray(np.full((H, W, 3), 9 * i, np.uint8), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        for a in auds:
            write_audio(c, a, 1.0)
    return path


@pytest.mark.parametrize("how", ["encode", "remux"])
def test_an_avi_into_avi_does_not_say_its_software_tag_was_dropped(tmp_path, how, caplog):
    """FFmpeg reads an AVI's ISFT as ``software``; the muxer writes its own, so this warned on
    every AVI written by FFmpeg (or a camera) although the output has the tag."""
    src = _tagged(tmp_path / "a.avi", langs=())
    with av.open(str(src)) as c:
        assert "software" in c.metadata
    dst = tmp_path / "b.avi"
    if how == "encode":
        sink = copy_through(src, dst)
        assert not [m for m in sink.dropped + sink.fallbacks if "software" in m]
    else:
        remux(src, dst)
    assert "software" not in caplog.text
    with av.open(str(dst)) as c:
        assert c.metadata.get("software", "").startswith("Lavf")


@pytest.mark.parametrize("how, ext", [("encode", ".avi"), ("remux", ".avi"), ("encode", ".flv")])
def test_a_track_language_the_container_drops_is_said(tmp_path, how, ext, caplog):
    """AVI (its strn chunk holds the title only) and FLV write no language: it vanished silently.
    (FLV: only the sink, whose muxer takes the three tracks; the remux's refuses them.)"""
    src = _tagged(tmp_path / "m.mkv", langs=("eng", "fra", "und"), comment=1)
    dst = tmp_path / f"o{ext}"
    if how == "encode":
        copy_through(src, dst)
    else:
        remux(src, dst)
    said = [r.getMessage() for r in caplog.records if "language" in r.getMessage()]
    # (FLV writes no track title either: named too since hunt 22)
    title = {"eng": " and its title 'track 0'", "fra": " and its title 'track 1'"} if ext == ".flv" else {
        "eng": "", "fra": ""}
    assert any(f"stream #1: its language 'eng'{title['eng']} dropped" in m for m in said), said
    assert any(f"stream #2: its language 'fra'{title['fra']} and its commentary mark dropped" in m and "for them" in m
               for m in said), said
    assert not any("stream #3" in m for m in said)  # (und: nothing to lose)
    with av.open(str(dst)) as c:
        assert not any(s.metadata.get("language") for s in c.streams.audio)


def test_a_track_language_the_container_keeps_is_not_mentioned(tmp_path, caplog):
    src = _tagged(tmp_path / "m.mkv", langs=("eng", "fra"))
    copy_through(src, tmp_path / "o.mp4")
    assert "language" not in caplog.text
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert [s.metadata.get("language") for s in c.streams.audio] == ["eng", "fra"]


@pytest.mark.parametrize("pix, codec, expect", [
    ("yuv444p", "h264", (53, 39)),   # 4:4:4: nothing to pad
    ("yuv444p", "hevc", (53, 39)),
    ("yuv422p", "h264", (54, 39)),   # 4:2:2: the width only
    ("yuv420p", "h264", (54, 40)),   # 4:2:0: both, as before
])
def test_an_odd_size_is_padded_only_where_the_chroma_is_halved(tmp_path, pix, codec, expect):
    """A 4:4:4 853x479 clip came out 854x480, its edge row and column repeated, with the reason
    'yuv420 needs them' although the output was 4:4:4."""
    rng = np.random.default_rng(0)
    src = tmp_path / "odd.mkv"  # (FFV1: any size in any format)
    write_video(src, [rng.integers(0, 255, (39, 53, 3), np.uint8) for _ in range(3)], codec="ffv1", pix_fmt=pix)
    sink = copy_through(src, tmp_path / "o.mkv", codec=codec)
    with av.open(str(tmp_path / "o.mkv")) as c:
        f = next(c.decode(video=0))
        assert (f.width, f.height) == expect and f.format.name.startswith(pix[:7])
    said = [m for m in sink.fallbacks if "odd frame size" in m]
    if expect == (53, 39):
        assert not said
    else:
        dims = "width and height" if expect == (54, 40) else "width"
        assert said == [f"odd frame size 53x39: pad to {expect[0]}x{expect[1]} (libx264 encodes {pix} at an even "
                        f"{dims} only: its chroma has half the {dims})"]


def test_an_odd_444_size_is_cropped_to_nothing_too(tmp_path):
    src = tmp_path / "odd.mkv"
    write_video(src, [np.zeros((39, 53, 3), np.uint8)] * 2, codec="ffv1", pix_fmt="yuv444p")
    copy_through(src, tmp_path / "o.mp4", odd_size="crop")
    with av.open(str(tmp_path / "o.mp4")) as c:
        s = c.streams.video[0]
        assert (s.width, s.height) == (53, 39)


def test_audio_aac_as_asked_is_no_fallback(tmp_path, caplog):
    """--audio aac on AAC audio warned 'transcoded to aac: audio='aac'' and filled the fallbacks:
    it is what the user asked for."""
    src = _tagged(tmp_path / "a.mkv", langs=("eng",))
    with caplog.at_level("INFO"):
        sink = copy_through(src, tmp_path / "o.mp4", audio="aac")
    assert not [m for m in sink.fallbacks if "transcoded" in m]
    said = [r for r in caplog.records if "transcoded to aac" in r.getMessage()]
    assert [(r.levelname, r.getMessage()) for r in said] == [
        ("INFO", "audio stream #1 (aac) transcoded to aac: as asked (--audio aac)")]


def test_audio_the_container_refuses_is_still_a_fallback(tmp_path):
    src = _tagged(tmp_path / "a.mkv", langs=("eng",))
    sink = copy_through(src, tmp_path / "o.webm", preset=None)  # (VP9 + Opus only)
    assert any("audio stream #1 (aac) transcoded to libopus: webm does not accept aac" in m for m in sink.fallbacks), sink.fallbacks


def _interlaced(path: Path, order: str) -> Path:
    """Eight frames of H.264 coded as fields (``tt`` or ``bb``), the Matroska FieldOrder set."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"preset": "ultrafast", "flags": "+ildct"})
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.codec_context.field_order = {"tt": 2, "bb": 3}[order]
        g = av.filter.Graph()
        b = g.add_buffer(width=W, height=H, format="yuv420p", time_base=Fraction(1, 25))
        f = g.add("setfield", "tff" if order == "tt" else "bff")
        b.link_to(f)
        f.link_to(g.add("buffersink"))
        g.configure()
        for i in range(8):
            img = np.full((H, W, 3), 40, np.uint8)
            img[1::2, 8 * i: 8 * i + 16] = 220  # a bar in one field only: combs
            vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            g.push(vf)
            for p in s.encode(g.pull()):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def _fields(path: Path) -> tuple[int, str]:
    """The video stream's field order and its second frame's as FFmpeg's showinfo tells it
    (``T``, ``B`` or ``P``): the bitstream's, which a demuxer's stream-level guess may not be."""
    import av.logging

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(v))
        g = av.filter.Graph()
        b = g.add_buffer(template=v)
        si = g.add("showinfo")
        b.link_to(si)
        si.link_to(g.add("buffersink"))
        g.configure()
        level = av.logging.get_level()
        av.logging.set_level(av.logging.INFO)
        try:
            with av.logging.Capture() as logs:
                g.push(frames[1])
                g.pull()
        finally:
            av.logging.set_level(level)
        line = next(m for _, _, m in logs if " i:" in m)
        return v.codec_context.field_order, line.split(" i:")[1][0]


@pytest.mark.parametrize("order, name, codec, expect", [
    ("tt", "o.mkv", "h264", (2, "T")),
    ("bb", "o.mkv", "h264", (3, "B")),
    ("bb", "o.mp4", "h264", (None, "B")),  # (mp4: the bitstream says it; the demuxer guesses tt)
    ("bb", "o.mkv", "hevc", (3, "P")),     # progressive pictures, the container's tag kept
])
def test_deinterlace_off_keeps_the_field_order(tmp_path, order, name, codec, expect, caplog):
    """--deinterlace off wrote the woven fields flagged progressive: no player deinterlaced them."""
    src = _interlaced(tmp_path / "i.mkv", order)
    with caplog.at_level("INFO"):
        sink = copy_through(src, tmp_path / name, codec=codec, source_kw={"deinterlace": "off"})
    fo, pic = _fields(tmp_path / name)
    assert pic == expect[1] and (expect[0] is None or fo == expect[0])
    notes = [m for m in sink.fallbacks if "interlaced" in m]
    if codec == "hevc":
        assert notes == ["interlaced video (bb) coded as progressive pictures by libx265: its field order is kept as "
                         "the matroska container's tag; codec='h264' keeps the fields, --deinterlace auto removes them"]
    else:
        assert not notes and f"interlaced ({order}): coded as fields by libx264" in caplog.text


def test_a_deinterlaced_output_is_progressive(tmp_path):
    src = _interlaced(tmp_path / "i.mkv", "tt")
    copy_through(src, tmp_path / "o.mkv")
    assert _fields(tmp_path / "o.mkv") == (1, "P")


def test_failed_encodes_and_option_errors_come_with_hints(tmp_path):
    import errno

    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io._sink import FileSink, _check_software_options, _encode_hint

    # a file system refusal says what to check (the photo path did, a video's said nothing more)
    for code in (errno.ENOSPC, errno.EROFS, errno.ENOENT, errno.EACCES):
        assert _encode_hint(OSError(code, "x")) == "check that the output folder exists, is writable and has room"
    assert _encode_hint(ValueError("bad")) is None
    # prores says it takes no crf, not a range that is not its own ("must be within 0..63")
    with pytest.raises(InvalidInputError, match="codec='prores' takes no crf or preset"):
        _check_software_options("prores", 99, None)
    with pytest.raises(InvalidInputError) as e:
        FileSink(tmp_path / "missing" / "o.mp4")
    assert "output folder does not exist" in str(e.value) and e.value.hint == "create it, or choose another dst"


def test_audio_left_out_before_an_avis_first_frame_is_a_warning_when_it_is_sound(tmp_path, caplog):
    # a second of sound before the pictures, left out of an AVI (which stores no start times), was
    # an info line like a codec's priming packet; it is a loss: a warning with its length
    import logging

    from tests.test_sink_timing_colour import _clip

    src = _clip(tmp_path / "late_video.mkv", [25 + i for i in range(10)], Fraction(1, 25), audio_start=0.0,
                audio_s=1.4)
    with caplog.at_level(logging.INFO, logger="stream_gpen.io._sink"):
        copy_through(src, tmp_path / "o.avi", preset="ultrafast")
    said = [r for r in caplog.records if "stores no start times" in r.getMessage()]
    assert said and said[0].levelno == logging.WARNING, [(r.levelname, r.getMessage()) for r in said]
    assert "s of it" in said[0].getMessage()
    # a codec's priming alone stays a note
    caplog.clear()
    src = _clip(tmp_path / "together.mkv", list(range(10)), Fraction(1, 25), audio_start=0.0, audio_s=0.4)
    with caplog.at_level(logging.INFO, logger="stream_gpen.io._sink"):
        copy_through(src, tmp_path / "o2.avi", preset="ultrafast")
    assert all(r.levelno == logging.INFO for r in caplog.records if "stores no start times" in r.getMessage())
