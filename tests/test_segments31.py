"""HLS (.m3u8) and DASH (.mpd) outputs, whose muxers write segments beside the playlist/manifest
(segments31): segment names that clashed (with another output's, with the input itself), codecs
their segments cannot hold, and tags/marks dropped without a word."""
from __future__ import annotations

import logging

import av
import numpy as np
import pytest

from stream_gpen.cli import main
from stream_gpen.errors import InvalidInputError, OutputExistsError
from stream_gpen.io import open_source
from stream_gpen.io._sink import FileSink, check_output_encoding
from tests._clips import copy_through, write_audio, write_video

W, H = 64, 48


def _clip(path, n=10):
    return write_video(path, [np.full((H, W, 3), 9 * i, np.uint8) for i in range(n)],
                       options={"preset": "ultrafast", "bf": "0"})


def test_an_hls_output_does_not_write_a_segment_over_its_input(tmp_path, cli_env, capsys):
    """Was: exit 0, ``hls/clip0.ts`` (the input) replaced by the output's first segment. The
    segments are ``clip_0.ts`` ... now; a file of that name is refused, the input even with
    --overwrite (the muxer writes segments in place while the input is read)."""
    src = _clip(tmp_path / "clip0.ts")
    before = src.read_bytes()
    out = tmp_path / "clip.m3u8"
    assert main(["enhance", str(src), "-o", str(out), *cli_env]) == 0, capsys.readouterr().err
    assert src.read_bytes() == before and (tmp_path / "clip_0.ts").is_file()
    src = _clip(tmp_path / "clip_0.ts")
    before = src.read_bytes()
    assert main(["enhance", str(src), "-o", str(out), "--overwrite", *cli_env]) == 2
    assert "would write its segment clip_0.ts over the input itself" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_an_hls_output_refuses_existing_segment_names_without_overwrite(tmp_path):
    src = _clip(tmp_path / "in.mp4")
    other = tmp_path / "clip_0.ts"
    other.write_bytes(b"keep")
    with pytest.raises(OutputExistsError, match=r"output exists: .*clip_0\.ts, a segment name of clip\.m3u8"):
        copy_through(src, tmp_path / "clip.m3u8")
    assert other.read_bytes() == b"keep" and not (tmp_path / "clip.m3u8").exists()
    copy_through(src, tmp_path / "clip.m3u8", overwrite=True)  # (asked for: replaced)
    assert other.read_bytes() != b"keep"


def test_two_playlists_in_one_folder_keep_their_segments_apart(tmp_path):
    """Was: ``a.m3u8``'s eleventh segment and ``a1.m3u8``'s first were both ``a10.ts``: the second
    output wrote over the first's, silently."""
    for stem, grey in (("a", 40), ("a1", 200)):
        src = write_video(tmp_path / f"{stem}.mkv", [np.full((H, W, 3), grey, np.uint8)] * 240, rate=10,
                          options={"preset": "ultrafast", "bf": "0"})
        with open_source(src) as s:  # (live: a keyframe, so a segment, every 2 s: 12 of them)
            sink = FileSink(tmp_path / f"{stem}.m3u8", source=s, preset="ultrafast", live=True)
            for f in s:
                sink.write(f)
            sink.close()
    assert (tmp_path / "a_10.ts").is_file() and (tmp_path / "a1_0.ts").is_file()
    with av.open(str(tmp_path / "a.m3u8")) as c:
        means = [float(f.to_ndarray(format="gray").mean()) for f in c.decode(video=0)]
    assert len(means) == 240 and max(abs(m - 40) for m in means) < 8, means


@pytest.mark.parametrize("codec", ["vp9", "prores"])
def test_hls_refuses_codecs_its_transport_stream_segments_cannot_hold(tmp_path, codec):
    """Was: segments with no video (an unnamed data stream), exit 0; .ts refused them up front.
    (AV1 goes into fMP4 segments since session 34: test_leftovers34.)"""
    with pytest.raises(InvalidInputError, match=rf"codec='{codec}' .*cannot go into \.m3u8"):
        check_output_encoding(tmp_path / "x.m3u8", codec)
    with pytest.raises(InvalidInputError, match=rf"codec='{codec}' .*cannot go into \.m3u8"):
        check_output_encoding(tmp_path / "x.m3u8", codec, fmt="hls")


def test_dash_outputs_in_one_folder_keep_their_segments_apart(tmp_path):
    """Was: every manifest's segments were init-stream0.m4s, chunk-stream0-00001.m4s: a second
    .mpd in the folder wrote over the first's, silently; now they are named after the manifest,
    and those of an earlier run are an existing output."""
    src = _clip(tmp_path / "in.mp4")
    copy_through(src, tmp_path / "first.mpd")
    copy_through(src, tmp_path / "second.mpd")
    names = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".m4s")
    assert names and all(n.startswith(("first_init_", "first_chunk_", "second_init_", "second_chunk_"))
                         for n in names), names
    for stem in ("first", "second"):  # (this FFmpeg reads no .mpd: its init segment and chunks, joined)
        parts = sorted(tmp_path.glob(f"{stem}_init_*.m4s")) + sorted(tmp_path.glob(f"{stem}_chunk_*.m4s"))
        joined = tmp_path / f"{stem}.mp4"
        joined.write_bytes(b"".join(p.read_bytes() for p in parts))
        with av.open(str(joined)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 10
    (tmp_path / "first.mpd").unlink()
    with pytest.raises(OutputExistsError, match=r"first_chunk_0_00001\.m4s.*a segment name of first\.mpd"):
        copy_through(src, tmp_path / "first.mpd")


def test_dash_refuses_prores_before_writing_anything(tmp_path):
    """Was: accepted up front, then exit 4 at the first frame, an init segment left behind."""
    with pytest.raises(InvalidInputError, match=r"codec='prores' .*cannot go into \.mpd"):
        check_output_encoding(tmp_path / "x.mpd", "prores")
    src = _clip(tmp_path / "in.mp4")
    with pytest.raises(InvalidInputError, match=r"codec='prores'"):
        copy_through(src, tmp_path / "x.mpd", codec="prores")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_hls_says_which_tags_and_marks_it_drops(tmp_path, caplog):
    """Was: a track's title, the container's tags and the hearing-impaired/commentary marks gone
    from .m3u8 with no word (its segments are MPEG-TS, and FFmpeg's HLS muxer passes no marks);
    .ts said so."""
    src = tmp_path / "in.mkv"
    with av.open(str(src), "w") as c:
        c.metadata["title"] = "Holiday"
        v = c.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        v.codec_context.options = {"preset": "ultrafast", "bf": "0"}
        a = c.add_stream("aac", rate=48000)
        a.metadata["title"] = "Commentary"
        a.disposition = av.stream.Disposition.hearing_impaired | av.stream.Disposition.comment
        for i in range(10):
            f = av.VideoFrame.from_ndarray(np.full((H, W, 3), 9 * i, np.uint8), "rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        write_audio(c, a, 1.0)
    with caplog.at_level(logging.WARNING):
        sink = copy_through(src, tmp_path / "o.m3u8")
    said = " ".join([*sink.dropped, *sink.fallbacks])
    assert "container tags dropped: the hls container cannot hold title" in said, said
    assert "its title 'Commentary' and its hearing impaired, commentary marks dropped" in said, said
    assert "container tags dropped" in caplog.text and "marks dropped" in caplog.text


def test_the_sink_refuses_a_segment_over_its_input_for_api_callers(tmp_path):
    src = _clip(tmp_path / "o_0.ts")
    with open_source(src) as s, pytest.raises(OutputExistsError, match="over the input itself"):
        FileSink(tmp_path / "o.m3u8", source=s, overwrite=True)


def test_camera_refuses_existing_segment_names_before_the_model(tmp_path, cli_env, capsys):
    (tmp_path / "rec_0.ts").write_bytes(b"keep")
    assert main(["camera", "lavfi:testsrc=size=64x48:rate=5", "-o", str(tmp_path / "rec.m3u8"), "--frames", "2",
                 *cli_env]) == 2
    assert "rec_0.ts, a segment name of rec.m3u8" in capsys.readouterr().err
    assert (tmp_path / "rec_0.ts").read_bytes() == b"keep"


@pytest.mark.parametrize("ext", [".m3u8", ".mpd"])
def test_an_output_replaced_with_overwrite_leaves_none_of_its_old_segments(tmp_path, ext):
    """Was: a long video's playlist written over (overwrite) by a short one's kept the long one's
    later segments beside it, listed nowhere, for good. Other files are left alone."""
    from stream_gpen.io._sink import segments_there

    def render(n, grey):
        src = write_video(tmp_path / f"in{n}.mkv", [np.full((H, W, 3), grey, np.uint8)] * n, rate=10,
                          options={"preset": "ultrafast", "bf": "0"})
        with open_source(src) as s:  # (live: a keyframe, so a segment, every 2 s)
            sink = FileSink(tmp_path / f"o{ext}", source=s, preset="ultrafast", live=True, overwrite=True)
            for f in s:
                sink.write(f)
            sink.close()
        return segments_there(tmp_path / f"o{ext}")

    long = render(100, 40)
    other = tmp_path / "o_notes.txt"
    other.write_text("mine")
    short = render(20, 200)
    assert len(long) > len(short) >= 1, (long, short)
    assert set(short) <= set(long) and other.read_text() == "mine"
    assert all(q.stat().st_size > 0 for q in short)
