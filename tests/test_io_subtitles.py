"""Subtitles through the sink: text converted (SubRip/ASS/WebVTT <-> mov_text), bitmap dropped.

Inputs are built here: a tiny x264 clip plus a subtitle file (.srt/.ass/.vtt) muxed by PyAV into
.mkv/.mp4, with a language and a title. Outputs are read back cue by cue: text, start (within one
tick of the output time base), duration and tags.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stream_gpen.io import open_sink, open_source, remux
from stream_gpen.io._subtitles import is_text_subtitle, plain_text, text_target

N_FRAMES = 25  # one second at 25 fps

SRT = """1
00:00:00,100 --> 00:00:00,400
<i>hello</i> there

2
00:00:00,520 --> 00:00:00,880
two
lines
"""
ASS = r"""[Script Info]
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,0,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.10,0:00:00.40,Default,,0,0,0,,{\b1\pos(10,20)}hello{\b0} there
Dialogue: 0,0:00:00.52,0:00:00.88,Default,,0,0,0,,two\Nlines, with a comma
"""
VTT = """WEBVTT

00:00:00.100 --> 00:00:00.400
<b>hello</b> there

00:00:00.520 --> 00:00:00.880
two
lines
"""
# (start s, end s, plain text) per cue of each file above
CUES = {
    "srt": [(0.10, 0.40, "hello there"), (0.52, 0.88, "two\nlines")],
    "ass": [(0.10, 0.40, "hello there"), (0.52, 0.88, "two\nlines, with a comma")],
    "vtt": [(0.10, 0.40, "hello there"), (0.52, 0.88, "two\nlines")],
}
TEXTS = {"srt": SRT, "ass": ASS, "vtt": VTT}


def make_clip(path: Path, n: int = N_FRAMES) -> Path:
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.codec_context.options = {"preset": "ultrafast", "bf": "0"}
        for i in range(n):
            arr = np.full((48, 64, 3), (i * 9) % 255, np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    return path


def with_subtitles(tmp_path: Path, kind: str, out_name: str, *, text: str | None = None, language="fra",
                   title="Français") -> Path:
    """The clip with the subtitle file of ``kind`` muxed in (converted by PyAV when the container
    needs it: mov_text for .mp4 goes through FFmpeg's encoder, as our sink does)."""
    clip = make_clip(tmp_path / "clip.mkv")
    sub = tmp_path / f"s.{kind}"
    sub.write_text(text or TEXTS[kind], encoding="utf-8")
    dst = tmp_path / out_name
    with av.open(str(clip)) as v, av.open(str(sub)) as s, av.open(str(dst), "w") as out:
        vo = out.add_stream_from_template(v.streams.video[0])
        ins = s.streams.subtitles[0]
        if dst.suffix == ".mp4":  # mp4 takes only mov_text: encode the cues as such
            dec = ins.codec_context
            so = out.add_stream("mov_text")
            pk = [p for p in s.demux(ins) if p.size]
            decoded = [dec.decode2(p) for p in pk]
            so.codec_context.subtitle_header = dec.subtitle_header
        else:
            so = out.add_stream_from_template(ins)
            pk = [p for p in s.demux(ins) if p.size]
            decoded = None
        so.metadata["language"] = language
        so.metadata["title"] = title
        for p in v.demux(v.streams.video[0]):
            if p.size:
                p.stream = vo
                out.mux(p)
        for k, p in enumerate(pk):
            if decoded is not None:
                q = so.codec_context.encode_subtitle(decoded[k])
                q.pts = q.dts = p.pts
                q.duration, q.time_base = p.duration, p.time_base
                p = q
            p.stream = so
            out.mux(p)
    return dst


def transcode(src_path, dst_path, **kw):
    with open_source(src_path) as src:
        preset = None if str(dst_path).endswith(".webm") else "ultrafast"  # vp9 takes no preset
        with open_sink(dst_path, source=src, preset=preset, **kw) as sink:
            for f in src:
                sink.write(f)
    return sink


def read_cues(path: Path) -> dict:
    """Every packet of every stream demuxed and decoded (a damaged file fails here), and the
    subtitle stream's cues as (start s, duration s, text without markup, raw payload)."""
    with av.open(str(path)) as c:
        subs = c.streams.subtitles
        assert len(subs) == 1, [s.type for s in c.streams]
        st = subs[0]
        info = {"codec": st.codec_context.name, "time_base": st.time_base, "metadata": dict(st.metadata),
                "cues": [], "streams": [s.type for s in c.streams], "video_frames": 0}
        for p in c.demux():
            if p.size == 0 and p.pts is None:
                continue
            if p.stream.type == "video":
                info["video_frames"] += len(p.decode())
                continue
            if p.stream.type != "subtitle":
                p.decode()
                continue
            sset = st.decode2(p)
            texts = [r.dialogue.decode() for r in sset if r.type == b"ass"] if sset is not None else []
            if not texts:  # mov_text's empty samples fill the gaps between cues
                continue
            info["cues"].append((float(p.pts * p.time_base), float(p.duration * p.time_base),
                                 plain_text("\n".join(texts)), bytes(p)))
        info["video_frames"] += len(c.streams.video[0].decode(None))  # frames the decoder held back
    return info


def assert_cues(info: dict, expected, *, tick: float) -> None:
    got = [(t, d, text) for t, d, text, _ in info["cues"]]
    assert [g[2] for g in got] == [e[2] for e in expected]
    for (t, d, _), (s, e, _) in zip(got, expected):
        assert abs(t - s) <= tick, (t, s)
        assert abs(d - (e - s)) <= tick, (d, e - s)


# --- the helpers ------------------------------------------------------------------------------
def test_plain_text_strips_markup():
    assert plain_text(r"{\b1\pos(10,20)}Bold{\b0} start\Nsecond") == "Bold start\nsecond"
    assert plain_text('<i>it</i> <font color="red">red</font>\\nx') == "it red\nx"
    assert plain_text("a < b and c > d") == "a < b and c > d"  # not tags


def test_text_targets_per_container():
    assert text_target("mp4", "subrip") == "mov_text"
    assert text_target("mov", "ass") == "mov_text"
    assert text_target("matroska", "mov_text") == "subrip"
    assert text_target("webm", "mov_text") == "webvtt" and text_target("webm", "subrip") == "webvtt"
    assert text_target("avi", "subrip") is None and text_target("mpegts", "subrip") is None
    for bitmap in ("dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle"):
        assert not is_text_subtitle(bitmap) and text_target("mp4", bitmap) is None
    assert not is_text_subtitle("eia_608") and not is_text_subtitle(None) and not is_text_subtitle("nonsense")


# --- text -> mov_text ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["srt", "ass", "vtt"])
@pytest.mark.parametrize("out_name", ["o.mp4", "o.mov"])
def test_text_subtitles_become_mov_text(tmp_path, kind, out_name):
    src = with_subtitles(tmp_path, kind, "in.mkv")
    sink = transcode(src, tmp_path / out_name)
    assert sink.dropped == []
    assert any(f"subtitle stream #1 ({'subrip' if kind == 'srt' else kind if kind == 'ass' else 'webvtt'}) "
               "converted to mov_text" in f for f in sink.fallbacks), sink.fallbacks
    info = read_cues(tmp_path / out_name)
    assert info["codec"] == "mov_text" and info["video_frames"] == N_FRAMES
    assert info["metadata"]["language"] == "fra"
    assert "Français" in (info["metadata"].get("title"), info["metadata"].get("name"))  # mov reads it back as 'name'
    assert_cues(info, CUES[kind], tick=float(info["time_base"]))
    # the tx3g payload itself: 2-byte big-endian length, then the text with the tags gone and
    # \N as a newline (styles, if any, follow in their own boxes)
    for (_, _, text, raw), (_, _, want) in zip(info["cues"], CUES[kind]):
        n = int.from_bytes(raw[:2], "big")
        assert raw[2:2 + n].decode() == want


def test_overlapping_ass_events_become_successive_samples(tmp_path):
    """mov_text shows one sample at a time and needs increasing times: overlapping events (and
    two starting together) are cut into samples that show every visible line."""
    ass = ASS.split("Dialogue:")[0] + "\n".join([
        r"Dialogue: 0,0:00:00.10,0:00:00.60,Default,,0,0,0,,sign",
        r"Dialogue: 0,0:00:00.10,0:00:00.30,Default,,0,0,0,,first",
        r"Dialogue: 0,0:00:00.40,0:00:00.80,Default,,0,0,0,,{\i1}second{\i0}",
    ]) + "\n"
    src = with_subtitles(tmp_path, "ass", "in.mkv", text=ass)
    sink = transcode(src, tmp_path / "o.mp4")
    info = read_cues(tmp_path / "o.mp4")
    assert sink.dropped == [] and not [f for f in sink.fallbacks if "left out" in f]
    assert_cues(info, [(0.10, 0.30, "sign\nfirst"), (0.30, 0.40, "sign"), (0.40, 0.60, "sign\nsecond"),
                       (0.60, 0.80, "second")], tick=float(info["time_base"]))


def test_mov_text_samples_from_cues_out_of_order(tmp_path):
    """Cues that arrive out of start order (a badly interleaved input): before anything was
    written they are simply sorted in; after, a late cue shows from the last written time on, and
    one wholly in the past is left out and counted."""
    from stream_gpen.io._subtitles import SubtitleConverter

    src = with_subtitles(tmp_path, "srt", "in.mkv")
    with av.open(str(src)) as c, av.open(str(tmp_path / "x.mp4"), "w") as out:
        conv = SubtitleConverter(c.streams.subtitles[0], out, "mov_text")

        def cue(text, start, end):
            p = av.Packet(text.encode())
            p.pts = p.dts = start
            p.duration, p.time_base = end - start, Fraction(1, 1000)
            return conv.convert(p)

        def sample(q):
            n = int.from_bytes(bytes(q)[:2], "big")
            return q.pts, q.duration, bytes(q)[2:2 + n].decode()

        got = cue("b", 500, 800) + cue("a", 100, 400)  # nothing final yet: sorted in
        got += cue("c", 900, 1000)
        assert [sample(q) for q in got] == [(100, 300, "a"), (500, 300, "b")]
        got = cue("d", 950, 1200) + cue("late", 920, 1100)  # 'late' starts before 950, written up to
        got += cue("past", 100, 200) + conv.flush()
        assert [sample(q) for q in got] == [(900, 50, "c"), (950, 50, "c\nd\nlate"), (1000, 100, "d\nlate"),
                                            (1100, 100, "d")]
        assert conv.skipped == 1 and conv.cues == 6


# --- mov_text -> SubRip / WebVTT --------------------------------------------------------------
@pytest.mark.parametrize("out_name,codec", [("o.mkv", "subrip"), ("o.webm", "webvtt")])
def test_mov_text_becomes_subrip_or_webvtt(tmp_path, out_name, codec):
    src = with_subtitles(tmp_path, "srt", "in.mp4", language="deu", title="Deutsch")
    with av.open(str(src)) as c:
        assert c.streams.subtitles[0].codec_context.name == "mov_text"
    sink = transcode(src, tmp_path / out_name)
    assert sink.dropped == []
    assert any(f"subtitle stream #1 (mov_text) converted to {codec}" in f for f in sink.fallbacks), sink.fallbacks
    info = read_cues(tmp_path / out_name)
    assert info["codec"] == {"subrip": "subrip", "webvtt": "webvtt"}[codec] or info["codec"] == "srt"
    assert info["metadata"].get("language") in ("deu", "ger") and info["metadata"].get("title") == "Deutsch"
    assert_cues(info, CUES["srt"], tick=float(info["time_base"]))
    assert info["cues"][0][3].startswith(b"<i>hello</i>")  # SubRip/WebVTT keep the italics


def test_copyable_subtitles_are_copied_not_converted(tmp_path):
    src = with_subtitles(tmp_path, "srt", "in.mkv")
    sink = transcode(src, tmp_path / "o.mkv")
    assert sink.dropped == [] and not [f for f in sink.fallbacks if "subtitle" in f]
    info = read_cues(tmp_path / "o.mkv")
    assert info["codec"] == "srt" and [c[3] for c in info["cues"]] == [b"<i>hello</i> there", b"two\nlines"]


def test_subtitles_kept_with_audio_aac(tmp_path):
    """audio='aac' is about audio: subtitles are still copied/converted, not dropped."""
    src = with_subtitles(tmp_path, "srt", "in.mkv")
    sink = transcode(src, tmp_path / "o.mp4", audio="aac")
    assert sink.dropped == []
    assert_cues(read_cues(tmp_path / "o.mp4"), CUES["srt"], tick=1e-6)
    sink = transcode(src, tmp_path / "n.mp4", audio="none")
    assert any("subtitle stream #1 (subrip) dropped: left out with the audio (--audio none)" in d for d in sink.dropped)


# --- what cannot be converted -------------------------------------------------------------------
def _with_dvd_subtitles(tmp_path: Path) -> Path:
    clip = make_clip(tmp_path / "clip.mkv")
    dst = tmp_path / "dvd.mkv"
    with av.open(str(clip)) as v, av.open(str(dst), "w") as out:
        vo = out.add_stream_from_template(v.streams.video[0])
        so = out.add_stream("dvd_subtitle")
        for p in v.demux(v.streams.video[0]):
            if p.size:
                p.stream = vo
                out.mux(p)
        p = av.Packet(b"\x00\x10" + bytes(14))  # the sink never decodes it: only the codec matters
        p.pts = p.dts = 100
        p.duration, p.time_base, p.stream = 300, Fraction(1, 1000), so
        out.mux(p)
    return dst


def test_bitmap_subtitles_dropped_and_reported(tmp_path):
    src = _with_dvd_subtitles(tmp_path)
    sink = transcode(src, tmp_path / "o.mp4")
    # (FFmpeg's mp4 muxer lists dvd_subtitle, but such a copy does not play back: "not copied here")
    assert any(d.startswith("subtitle stream #1 (dvd_subtitle) dropped: dvd_subtitle is not stream-copied into mp4")
               and "not text" in d for d in sink.dropped), sink.dropped
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert [s.type for s in c.streams] == ["video"]


def test_text_subtitles_into_avi_dropped_and_reported(tmp_path):
    src = with_subtitles(tmp_path, "srt", "in.mkv")
    sink = transcode(src, tmp_path / "o.avi")
    assert any("subtitle stream #1 (subrip) dropped: avi does not accept subrip and holds no text subtitles" in d
               for d in sink.dropped), sink.dropped


# --- through the whole pipeline: the run summary says "converted" ------------------------------
class _Identity:
    name, fallbacks, size = "identity", [], 64

    def __init__(self) -> None:
        import torch

        self.device = torch.device("cpu")

    def __call__(self, crops):
        return crops.clone()


def test_enhance_file_reports_converted_subtitles(tmp_path, mobilenet_weights):
    from stream_gpen import Enhancer

    src = with_subtitles(tmp_path, "ass", "in.mkv")
    enh = Enhancer(_Identity(), device="cpu", detector_weights=mobilenet_weights, batch_size=2, progress=False)
    summary = enh.enhance_file(src, tmp_path / "o.mp4")
    assert any("subtitle stream #1 (ass) converted to mov_text" in f for f in summary.fallbacks), summary.fallbacks
    assert not [f for f in summary.fallbacks if "dropped" in f]
    info = read_cues(tmp_path / "o.mp4")
    assert info["video_frames"] == N_FRAMES and info["metadata"]["language"] == "fra"
    assert_cues(info, CUES["ass"], tick=float(info["time_base"]))


# --- AVI: no start times, so the sink writes every stream from the first video frame ------------
DT = {"flt": np.float32, "fltp": np.float32, "s16": np.int16, "s16p": np.int16, "s32": np.int32, "s32p": np.int32}


def make_av_clip(path: Path, audio: str, *, start_s: float = 0.0, n: int = N_FRAMES) -> Path:
    """x264 video at 25 fps and ``audio`` (silence), both starting at ``start_s``; AAC and MP3
    encoders put their priming packet(s) before it."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.codec_context.options = {"preset": "ultrafast", "bf": "0"}
        a = c.add_stream(audio, rate=48000 if audio == "libopus" else 44100)
        a.layout = "mono"
        rate = a.codec_context.sample_rate
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 9, np.uint8), format="rgb24")
            f.pts, f.time_base = i + round(start_s * 25), Fraction(1, 25)
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        fmt = a.codec_context.codec.audio_formats[0].name
        chunk, total = a.codec_context.frame_size or 1024, rate * n // 25
        for s0 in range(0, total, chunk):
            af = av.AudioFrame.from_ndarray(np.zeros((1, min(chunk, total - s0)), DT[fmt]), format=fmt, layout="mono")
            af.sample_rate, af.pts, af.time_base = rate, s0 + round(start_s * rate), Fraction(1, rate)
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    return path


def packet_timeline(path: Path, kind: str) -> list[float]:
    """Packet times in demux order: dts for AVI (its chunk timeline: AVI stores no pts, and
    FFmpeg's reader guesses H.264 pts one frame late), pts otherwise."""
    with av.open(str(path)) as c:
        s = [x for x in c.streams if x.type == kind][0]
        avi = c.format.name == "avi"
        return [float((p.dts if avi else p.pts) * p.time_base) for p in c.demux(s) if p.size]


@pytest.mark.parametrize("audio,start_s", [("aac", 0.0), ("libmp3lame", 1.0), ("libopus", 0.5)])
def test_avi_audio_and_video_start_together(tmp_path, audio, start_s):
    """AAC/MP3 priming packets sit before 0 and an MPEG-TS-like input starts late: written as is,
    FFmpeg shifts every AVI frame but the first (measured before the fix: frames at 0, 64 ms,
    104 ms... with audio at 0; a 1 s start gave a 1.04 s freeze). Opus is transcoded to AAC."""
    src = make_av_clip(tmp_path / "in.mkv", audio, start_s=start_s)
    sink = transcode(src, tmp_path / "o.avi")
    half = 0.5 / 25
    v_in, v_out = packet_timeline(src, "video"), packet_timeline(tmp_path / "o.avi", "video")
    assert len(v_out) == len(v_in) == N_FRAMES
    origin = v_in[0]
    assert max(abs(o - (i - origin)) for o, i in zip(v_out, v_in)) < half, v_out[:4]
    a_out = packet_timeline(tmp_path / "o.avi", "audio")
    assert abs(a_out[0]) < half and abs(v_out[0]) < half  # both start at 0 ...
    if audio != "libopus":  # ... and copied audio keeps its spacing from the origin
        a_in = [t - origin for t in packet_timeline(src, "audio")]
        kept = [t for t in a_in if t > -half]  # the packets that end before the origin are left out
        assert all(abs(o - i) < half for o, i in zip(a_out, kept[: len(a_out)])), (a_out[:3], kept[:3])
        assert len(a_out) >= len(kept) - 1
        assert any("avi stores no start times" in f for f in sink.fallbacks), sink.fallbacks
    assert not [f for f in sink.fallbacks if "plays" in f]


def test_avi_audio_starting_after_the_video_is_reported(tmp_path):
    """AVI cannot delay a stream's start: audio that begins 0.2 s after the first frame plays
    0.2 s early there, and the sink says so instead of hiding it."""
    clip = make_av_clip(tmp_path / "v.mkv", "libmp3lame")
    src = tmp_path / "late.mkv"
    with av.open(str(clip)) as i, av.open(str(src), "w") as o:
        m = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for p in i.demux():
            if not p.size:
                continue
            if p.stream.type == "audio":
                if p.pts * p.time_base < 0.2:
                    continue
            p.stream = m[p.stream.index]
            o.mux(p)
    sink = transcode(src, tmp_path / "o.avi")
    assert any(f.startswith("output audio stream #1 starts 0.2") and "plays 0.2" in f
               for f in sink.fallbacks), sink.fallbacks
    assert packet_timeline(tmp_path / "o.avi", "video")[:2] == pytest.approx([0.0, 0.04], abs=1e-3)


def test_mkv_and_mp4_start_at_the_inputs_start(tmp_path):
    """As FFmpeg writes them (no -copyts): every stream moves back by the input's start (1 s
    here), audio with the video. (They kept the input's times: a .ts at 10 h became a 10-hour
    mp4, mostly an empty edit.)"""
    src = make_av_clip(tmp_path / "in.mkv", "libmp3lame", start_s=1.0)
    transcode(src, tmp_path / "o.mkv")
    assert packet_timeline(tmp_path / "o.mkv", "video")[:2] == pytest.approx([0.0, 0.04], abs=1e-3)
    assert packet_timeline(tmp_path / "o.mkv", "audio")[0] == pytest.approx(0.0, abs=0.03)


# --- remux (copy_if_no_faces) follows the same rules --------------------------------------------
def test_remux_converts_text_subtitles(tmp_path):
    src = with_subtitles(tmp_path, "srt", "in.mkv")
    assert remux(src, tmp_path / "r.mp4") == N_FRAMES
    info = read_cues(tmp_path / "r.mp4")
    assert info["codec"] == "mov_text" and info["metadata"]["language"] == "fra"
    assert_cues(info, CUES["srt"], tick=float(info["time_base"]))
    # and back: mov_text into mkv becomes SubRip
    assert remux(tmp_path / "r.mp4", tmp_path / "r.mkv") == N_FRAMES
    assert_cues(read_cues(tmp_path / "r.mkv"), CUES["srt"], tick=1e-3)


def test_remux_into_avi_starts_streams_together(tmp_path):
    """A plain stream copy of AAC (priming packet at -23 ms) into AVI made FFmpeg shift every frame
    but the first by 24 ms; remux writes AVI from the first video packet on instead. (MPEG-4 Part 2
    video: H.264 from MP4/MKV needs a bitstream filter for AVI, which remux refuses.)"""
    src = tmp_path / "in.mkv"
    with av.open(str(make_av_clip(tmp_path / "v.mkv", "aac", start_s=1.0))) as i, av.open(str(src), "w") as o:
        # same audio, video re-encoded as mpeg4 (stream-copyable into AVI)
        vs = o.add_stream("mpeg4", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.time_base = Fraction(1, 25)
        ao = o.add_stream_from_template(i.streams.audio[0])
        for p in i.demux():
            if p.stream.type == "audio" and p.size:
                p.stream = ao
                o.mux(p)
            elif p.stream.type == "video":
                for f in p.decode():
                    f.pict_type = av.video.frame.PictureType.NONE
                    for q in vs.encode(f):
                        o.mux(q)
        for q in vs.encode(None):
            o.mux(q)
    remux(src, tmp_path / "r.avi")
    v = packet_timeline(tmp_path / "r.avi", "video")
    a = packet_timeline(tmp_path / "r.avi", "audio")
    assert v[:3] == pytest.approx([0.0, 0.04, 0.08], abs=1e-3) and abs(a[0]) < 0.02
    assert len(v) == N_FRAMES


@pytest.mark.parametrize("out_name", ["part.mkv", "part.mp4"])
def test_a_part_keeps_the_cues_on_screen_at_its_start_and_cuts_them_at_its_end(tmp_path, out_name):
    """``--start 2 --duration 1`` of a clip with a keyframe every second and cues A 0-3 s,
    B 1-2.2 s, C 2.5-3.5 s: A and B, on screen at the cut, were lost (the seek lands on the
    keyframe at 2 s, after their packets) or dropped as "mostly before the origin"; C ran on to
    1.5 s, so the file said 1.5 s for 1 s of video. Now A shows 0-1, B 0-0.2, C 0.5-1."""
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:03,000\nA\n\n2\n00:00:01,000 --> 00:00:02,200\nB\n\n"
                   "3\n00:00:02,500 --> 00:00:03,500\nC\n", encoding="utf-8")
    src = tmp_path / "film.mkv"
    with av.open(str(srt)) as s, av.open(str(src), "w") as out:
        vs = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "g": "25", "keyint_min": "25",
                                                         "sc_threshold": "0"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        so = out.add_stream_from_template(s.streams.subtitles[0])
        cues = [p for p in s.demux(s.streams.subtitles[0]) if p.size]
        for i in range(100):
            for p in vs.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 2 * i, np.uint8), format="rgb24")):
                out.mux(p)
            while cues and cues[0].pts * cues[0].time_base <= Fraction(i, 25):  # interleaved by time
                p = cues.pop(0)
                p.stream = so
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    dst = tmp_path / out_name
    with open_source(src, start=2.0, duration=1.0) as source, open_sink(dst, source=source, preset="ultrafast") as sink:
        for f in source:
            sink.write(f)
    with av.open(str(dst)) as c:
        assert c.duration / 1e6 == pytest.approx(1.0, abs=0.05)
    shown = [(round(t, 2), round(d, 2), text) for t, d, text, _ in read_cues(dst)["cues"]]
    if out_name.endswith(".mkv"):
        assert shown == [(0.0, 1.0, "A"), (0.0, 0.2, "B"), (0.5, 0.5, "C")], shown
    else:  # mov_text: one sample per change of what is on screen
        assert shown == [(0.0, 0.2, "A\nB"), (0.2, 0.3, "A"), (0.5, 0.5, "A\nC")], shown


def test_each_line_of_a_shared_mov_text_sample_keeps_its_own_style(tmp_path):
    """A sign (its own style: yellow, bold, small) on screen while a line of dialogue shows: the
    sample holding both was written under the sign's style, so the dialogue came out yellow and
    bold. Each later line now resets to its own style."""
    head, events = ASS.split("[Events]")
    head = head.replace("Style: Default,", "Style: Sign,Arial,14,&H0000FFFF,&H000000FF,&H00000000,&H00000000,"
                        "-1,0,0,0,100,100,0,0,1,2,0,8,10,10,10,1\nStyle: Default,")
    ass = head + "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n" + "\n".join([
        r"Dialogue: 0,0:00:00.10,0:00:00.80,Sign,,0,0,0,,SHOP",
        r"Dialogue: 0,0:00:00.30,0:00:00.50,Default,,0,0,0,,plain words",
    ]) + "\n"
    src = with_subtitles(tmp_path, "ass", "in.mkv", text=ass)
    transcode(src, tmp_path / "o.mp4")
    with av.open(str(tmp_path / "o.mp4")) as c:
        st = c.streams.subtitles[0]
        both = [r.ass.decode() for p in c.demux(st) if p.size for r in (st.codec_context.decode2(p) or [])
                if "plain words" in r.ass.decode()]
    assert len(both) == 1 and "{\\r}plain words" in both[0], both  # back to the plain style


def _x264_at(path: Path, times: list, rate, tb: Fraction) -> Path:
    """A video-only H.264 clip (no B-frames) with a frame at each of ``times`` (seconds) on ``tb``."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.codec_context.options = {"preset": "ultrafast", "bf": "0"}
        vs.codec_context.time_base = tb
        for i, t in enumerate(times):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 6 % 256, np.uint8), format="rgb24")
            f.pts, f.time_base = round(t / tb), tb
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    return path


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30000, 1001)])
@pytest.mark.parametrize("copy", [False, True], ids=["encode", "copy"])
def test_avi_output_runs_at_the_frame_rate_not_the_source_clock(tmp_path, rate, copy):
    """AVI stores a rate (1/time base) and one chunk per tick. From a Matroska source (1/1000 s)
    the file declared 1000 fps and wrote 39 empty chunks between two frames of a 25 fps clip
    (3800 chunks for 40 frames), encoded or stream-copied. On the frame grid a pause is still a
    held frame."""
    times = [i / rate for i in range(10)] + [2 + i / rate for i in range(10)]  # a 2 s pause (VFR)
    src = _x264_at(tmp_path / "in.mkv", times, rate, Fraction(1, 1000))
    assert av.open(str(src)).streams.video[0].time_base == Fraction(1, 1000)
    if copy:
        assert remux(src, tmp_path / "o.avi") == len(times)
    else:
        transcode(src, tmp_path / "o.avi")
    with av.open(str(tmp_path / "o.avi")) as c:
        st = c.streams.video[0]
        assert st.time_base == 1 / rate and st.average_rate == rate
        assert st.frames <= round((times[-1] + 1 / rate) * rate) + 1  # one chunk per frame slot
    v_in, v_out = packet_timeline(src, "video"), packet_timeline(tmp_path / "o.avi", "video")
    assert len(v_out) == len(times)
    assert max(abs(o - i) for o, i in zip(v_out, v_in)) < 0.5 / rate, v_out


def test_copied_avi_frames_on_one_slot_go_to_the_next():
    """A VFR source's two frames 10 ms apart land on one 25 fps slot: the second takes the next."""
    from stream_gpen.io._sink import to_avi_grid
    last, slots = None, []
    for ms in (0, 40, 50, 120, 2000):
        p = av.Packet(b"\0")
        p.time_base, p.pts, p.dts, p.duration = Fraction(1, 1000), ms, ms, 40
        last = to_avi_grid(p, Fraction(1, 25), last)
        slots.append((p.pts, p.dts, p.duration, p.time_base))
    assert slots == [(s, s, 1, Fraction(1, 25)) for s in (0, 1, 2, 3, 50)]


def _marked_clip(path: Path) -> Path:
    """x264 video, a commentary AAC track, an audio-description AAC track and SDH SubRip cues."""
    D = av.stream.Disposition
    srt = path.with_suffix(".srt")
    srt.write_text(SRT, encoding="utf-8")
    with av.open(str(path), "w") as c, av.open(str(srt)) as s:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.codec_context.options = {"preset": "ultrafast", "bf": "0"}
        auds = []
        for disp in (D.comment, D.visual_impaired):
            a = c.add_stream("aac", rate=48000)
            a.layout, a.disposition = "mono", int(disp)
            auds.append(a)
        sub = c.add_stream_from_template(s.streams.subtitles[0])
        sub.disposition = int(D.hearing_impaired | D.forced)
        for i in range(10):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 9, np.uint8), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        for a in auds:
            for k in range(0, 19200, 1024):
                af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = 48000, k, Fraction(1, 48000)
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
        for p in s.demux(s.streams.subtitles[0]):
            if p.size:
                p.stream = sub
                c.mux(p)
    return path


@pytest.mark.parametrize("ext, kept, said", [
    (".mkv", {1: {"comment"}, 2: {"visual_impaired"}, 3: {"hearing_impaired", "forced"}}, []),
    (".mp4", {1: {"comment"}, 2: {"visual_impaired"}, 3: {"hearing_impaired", "forced"}}, []),
    (".webm", {3: {"forced"}}, ["stream #1: its commentary mark", "stream #2: its audio description mark",
                                "stream #3: its hearing impaired mark"]),
    (".mov", {}, ["stream #1: its commentary mark", "stream #2: its audio description mark",
                  "stream #3: its forced, hearing impaired marks"]),
])
def test_track_marks_kept_or_said_to_be_dropped(tmp_path, ext, kept, said):
    """Commentary, audio description and SDH/forced subtitle marks: kept where the container has
    a place for them, said where it has none (.webm and .mov dropped them without a word)."""
    src = _marked_clip(tmp_path / "in.mkv")
    sink = transcode(src, tmp_path / f"o{ext}")
    D = av.stream.Disposition
    marks = ("comment", "visual_impaired", "hearing_impaired", "forced")
    with av.open(str(tmp_path / f"o{ext}")) as c:
        got = {s.index: {m for m in marks if int(s.disposition) & int(getattr(D, m))} for s in c.streams}
    assert {i: m for i, m in got.items() if m} == kept
    notes = [d for d in sink.dropped if " mark" in d]
    assert len(notes) == len(said) and all(any(n.startswith(w) for n in notes) for w in said), notes


def test_stream_copy_says_which_track_marks_it_drops(tmp_path, caplog):
    src = _marked_clip(tmp_path / "in.mkv")
    with caplog.at_level("WARNING", logger="stream_gpen"):
        remux(src, tmp_path / "o.mov")
    said = [r.getMessage() for r in caplog.records if " mark" in r.getMessage()]
    assert len(said) == 3 and any("stream #3: its forced, hearing impaired marks dropped" in m for m in said), said


@pytest.mark.parametrize("copy", [False, True], ids=["encode", "copy"])
def test_a_vfr_avi_keeps_each_frame_near_its_time_without_a_chunk_flood(tmp_path, copy):
    """A phone's low-light clip (each frame shown 1/30 to 1/15 s, 1/90000 s clock) into AVI: it
    declared 600 fps with 20-30 index entries a frame; on a grid of its average rate frames
    landed up to 64 ms off their sound. A quarter of the average interval: 4 ticks a frame."""
    import random

    rng = random.Random(1)
    times, t = [], 0.0
    for _ in range(40):
        times.append(t)
        t += rng.uniform(1 / 30, 1 / 15)  # (times on no grid: FFmpeg guesses no clean rate)
    src = _x264_at(tmp_path / "in.mp4", times, 30, Fraction(1, 90000))
    if copy:
        assert remux(src, tmp_path / "o.avi") == len(times)
    else:
        transcode(src, tmp_path / "o.avi")
    mean = (times[-1] - times[0]) / (len(times) - 1)
    with av.open(str(tmp_path / "o.avi")) as c:
        st = c.streams.video[0]
        assert float(st.average_rate) * mean <= 4.2  # about four ticks a frame, not 600 fps
        assert st.frames <= 4 * len(times) + 4
    v_out = packet_timeline(tmp_path / "o.avi", "video")
    assert len(v_out) == len(times)
    assert max(abs(o - i) for o, i in zip(v_out, times)) <= mean / 8 + 1e-3, v_out[:5]
