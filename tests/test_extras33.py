"""Streams and metadata beside the pictures, found by hunt 33: a container-level timecode, closed
captions that start late, DASH's tags and marks. Every input is built here, tiny."""
from __future__ import annotations

import av
import numpy as np
import pytest

from _clips import copy_through, encode_frames, write_audio, write_video
from stream_gpen.io import open_source

W, H = 64, 48


def _frames(n: int) -> list[np.ndarray]:
    return [np.full((H, W, 3), (40 + 9 * i) % 240, np.uint8) for i in range(n)]


# --- 1. a container-level timecode ----------------------------------------------------------------
@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_container_timecode_is_moved_by_start_and_written_once(tmp_path, ext):
    # (an MXF keeps its timecode at the file level only; a Matroska written so is the small stand-in)
    clip = write_video(tmp_path / "tc.mkv", _frames(20),
                       setup=lambda s: s.container.metadata.__setitem__("timecode", "10:00:00:00"))
    with av.open(str(clip)) as c:
        assert not any("timecode" in k.lower() for k in c.streams.video[0].metadata)
    out = tmp_path / f"o.{ext}"
    sink = copy_through(clip, out, source_kw={"start": 0.4})
    assert not any("timecode" in m.lower() for m in sink.dropped), sink.dropped
    with av.open(str(out)) as c:
        found = [v for s in (c, *c.streams) for k, v in s.metadata.items() if k.lower() == "timecode"]
    # 0.4 s = 10 frames at 25 fps; never the input's unmoved one beside it (mov's muxer prefers a
    # global timecode to the stream's, Matroska wrote both)
    assert found and set(found) == {"10:00:00:10"}, found



# --- 2. closed captions that start late -------------------------------------------------------------
def _sei_a53(i: int) -> bytes:
    """An H.264 SEI NAL unit carrying one CEA-608 caption pair in ATSC A/53 user data."""
    cc = bytes([0xB5, 0x00, 0x31]) + b"GA94" + bytes([0x03, 0x40 | 2, 0xFF, 0xFC, 0x94, 0x2C,
                                                      0xFC, 0xC1 if i % 2 else 0x80, 0x80, 0xFF])
    return b"\x00\x00\x00\x01\x06" + bytes([4, len(cc)]) + cc + b"\x80"


def captioned_clip(path, *, first: int, n: int = 12):
    """An mkv of ``n`` H.264 frames whose captions (A53 SEI before the slice) begin at frame ``first``
    (a broadcast recording whose captions start after its first picture)."""
    from fractions import Fraction

    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = W, H, "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, 25), Fraction(25)
    enc.options = {"bframes": "0", "preset": "ultrafast"}
    packets = []
    for i, img in enumerate(_frames(n)):
        f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        f.pts, f.time_base = i, Fraction(1, 25)
        packets += enc.encode(f)
    packets += enc.encode(None)
    raw = bytearray()
    for j, p in enumerate(packets):
        b = bytes(p)
        k = next(k for k in range(len(b) - 3) if b[k:k + 3] == b"\x00\x00\x01" and b[k + 3] & 0x1F in (1, 5))
        k -= 1 if k and b[k - 1] == 0 else 0
        raw += b[:k] + _sei_a53(j) + b[k:] if j >= first else b
    es = path.with_suffix(".h264")
    es.write_bytes(bytes(raw))
    with av.open(str(es)) as src, av.open(str(path), "w") as out:
        ins = src.streams.video[0]
        os_ = out.add_stream_from_template(ins)
        for i, p in enumerate(q for q in src.demux(ins) if q.size):
            p.stream, p.pts, p.dts, p.time_base = os_, i, i, Fraction(1, 25)
            out.mux(p)
    return path


def test_captions_that_start_after_the_first_frame_are_said_to_be_lost(tmp_path):
    clip = captioned_clip(tmp_path / "tv.mkv", first=6)
    with av.open(str(clip)) as c:  # (the clip is as meant: captions from frame 6 on)
        firsts = [k for k, f in enumerate(c.decode(video=0)) if any("A53" in str(sd.type) for sd in f.side_data)]
    assert firsts and firsts[0] == 6
    with open_source(clip) as src:
        for f in src:
            f.release()
    assert any("closed captions carried in the video" in m for m in src.fallbacks), src.fallbacks
    with open_source(captioned_clip(tmp_path / "clean.mkv", first=99)) as src:
        for f in src:
            f.release()
    assert not any("closed captions" in m for m in src.fallbacks), src.fallbacks


# --- 3. captions kept by --copy-if-no-faces ----------------------------------------------------------
def test_copy_if_no_faces_that_keeps_the_captions_does_not_say_them_lost(tmp_path, enh):
    clip = captioned_clip(tmp_path / "tv.mkv", first=0)
    s = enh.enhance_file(clip, tmp_path / "o.mkv", copy_if_no_faces=True)
    assert s.encoder == "copy"
    assert not any("closed captions" in m for m in s.fallbacks), s.fallbacks
    with av.open(str(tmp_path / "o.mkv")) as c:  # (the copy has them)
        assert any(any("A53" in str(sd.type) for sd in f.side_data) for f in c.decode(video=0))
    s = enh.enhance_file(clip, tmp_path / "re.mkv")  # re-encoded: said
    assert any("closed captions carried in the video" in m for m in s.fallbacks), s.fallbacks


# --- 4. DASH's tags, track titles and marks -----------------------------------------------------------
def test_dash_says_which_tags_titles_and_marks_it_drops(tmp_path):
    clip = tmp_path / "marks.mkv"
    with av.open(str(clip), "w") as c:
        c.metadata.update({"title": "Film", "ARTIST": "Someone"})
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.metadata["title"] = "Main cam"
        aus = c.add_stream("aac", rate=48000)
        aus.metadata.update({"title": "Commentaire", "language": "fra"})
        aus.disposition = av.stream.Disposition.comment
        encode_frames(c, vs, _frames(10))
        write_audio(c, aus, 0.4)
    sink = copy_through(clip, tmp_path / "o.mpd")
    said = "\n".join(sink.dropped)
    assert "container tags dropped: the dash container cannot hold ARTIST (" in said, said
    assert "stream #0: its title 'Main cam' dropped" in said, said
    assert "stream #1: its title 'Commentaire' and its commentary mark dropped" in said, said
    mpd = (tmp_path / "o.mpd").read_text()
    assert "<Title>Film</Title>" in mpd and "Commentaire" not in mpd and "Role" not in mpd  # (as said)


# --- 8. an MXF's structural identifiers --------------------------------------------------------------
def test_mxf_identifiers_are_not_carried_into_another_container(tmp_path):
    clip = write_video(tmp_path / "a.mxf", _frames(10), codec="mpeg2video")
    with av.open(str(clip)) as c:  # (FFmpeg's MXF reader gives them as tags)
        assert {"uid", "material_package_umid", "company_name"} <= set(c.metadata)
        assert "file_package_umid" in c.streams.video[0].metadata
    sink = copy_through(clip, tmp_path / "o.mkv")
    with av.open(str(tmp_path / "o.mkv")) as c:
        tags = {k.lower() for s in (c, *c.streams) for k in s.metadata}
    assert not tags & {"uid", "generation_uid", "material_package_umid", "file_package_umid", "company_name",
                       "product_name", "product_version", "operational_pattern_ul"}, tags
    sink = copy_through(clip, tmp_path / "o.mp4")
    assert not any("container tags dropped" in m for m in sink.dropped), sink.dropped


# --- 5. info and a Matroska's attachments ----------------------------------------------------------
def test_info_lists_attachments_apart_with_what_enhance_does_with_them(tmp_path):
    from stream_gpen.commands import _attachment_plan, describe_input

    clip = write_video(tmp_path / "subs.mkv", _frames(3), setup=lambda s: s.container.add_attachment(
        "FancyFont.ttf", "font/ttf", b"\x00\x01\x00\x00" + b"font" * 50))
    info = describe_input(str(clip))
    assert "data" not in info, info.get("data")  # (was: listed as a data track, "matroska does not accept" it)
    assert info["attachments"] == [{"stream": 1, "file": "FancyFont.ttf", "mimetype": "font/ttf"}]
    assert "attachment FancyFont.ttf: kept" in info["plan"], info["plan"]
    assert not any("dropped" in line for line in info["plan"]), info["plan"]
    sink = copy_through(clip, tmp_path / "o.mp4")  # (into another container: the sink's words)
    assert _attachment_plan(str(tmp_path / "o.mp4"), info["attachments"]) == [
        m for m in sink.dropped if m.startswith("attachment")]


# --- 6. --audio none and cover art ----------------------------------------------------------------
def test_audio_none_names_the_cover_art_it_leaves_out(tmp_path):
    import io

    from PIL import Image

    jpeg = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(jpeg, "JPEG")
    clip = write_video(tmp_path / "album.mkv", _frames(3), setup=lambda s: s.container.add_attachment(
        "cover.jpg", "image/jpeg", jpeg.getvalue()))
    with av.open(str(clip)) as c:  # (read back as an attached picture)
        assert [s.type for s in c.streams] == ["video", "video"]
    sink = copy_through(clip, tmp_path / "o.mkv", audio="none")
    assert any(m.startswith("cover art (stream #1, mjpeg) dropped: left out with the audio") for m in sink.dropped), \
        sink.dropped


# --- 7. --copy-if-no-faces and the same loss said twice -------------------------------------------
def test_copy_if_no_faces_says_each_conversion_and_drop_once(tmp_path, enh, caplog):
    import logging

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,100\nhello\n", encoding="utf-8")
    clip = tmp_path / "subs.mkv"
    with av.open(str(srt)) as sc, av.open(str(clip), "w") as c:
        c.add_attachment("FancyFont.ttf", "font/ttf", b"\x00\x01\x00\x00" + b"font" * 50)
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        ss = c.add_stream_from_template(sc.streams[0])
        encode_frames(c, vs, _frames(5))
        for p in sc.demux(sc.streams[0]):
            if p.size:
                p.stream = ss
                c.mux(p)
    caplog.set_level(logging.INFO, logger="stream_gpen")
    s = enh.enhance_file(clip, tmp_path / "o.mp4", copy_if_no_faces=True)
    assert s.encoder == "copy"
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    for what in ("subtitle stream #1", "FancyFont.ttf"):
        assert len([m for m in said if what in m]) == 1, [m for m in said if what in m]


def test_info_names_cover_art_and_chapters_with_what_enhance_does_with_them(tmp_path):
    import io
    from fractions import Fraction

    from PIL import Image

    from stream_gpen.commands import _covers_chapters_plan, describe_input

    jpeg = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(jpeg, "JPEG")

    def setup(s):
        s.container.add_attachment("cover.jpg", "image/jpeg", jpeg.getvalue())
        s.container.set_chapters([{"id": 1, "start": 0, "end": 4, "time_base": Fraction(1, 25),
                                   "metadata": {"title": "One"}}])

    clip = write_video(tmp_path / "album.mkv", _frames(5), setup=setup)
    info = describe_input(str(clip))
    assert info["cover_art"] == [{"stream": 1, "codec": "mjpeg"}] and info["chapters"] == 1
    assert "cover art (stream #1): kept" in info["plan"] and "1 chapter(s): kept" in info["plan"], info["plan"]
    sink = copy_through(clip, tmp_path / "o.avi")  # (into a container with no place for them: the sink's words)
    assert sorted(_covers_chapters_plan(str(tmp_path / "o.avi"), info["cover_art"], 1)) == sorted(
        m for m in sink.dropped if m.startswith(("cover art", "1 chapter")))
