"""The video sink's timing and colour fidelity: surround audio, edit lists, backwards timestamps,
the last frame's duration, the encoder delay of trimmed audio, ProRes range and tags, full-range
4:4:4, chroma location."""
from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import numpy as np
import pytest
import torch

from stream_gpen.errors import EncodeError
from stream_gpen.io import open_sink, open_source
from stream_gpen.io._remux import remux
from stream_gpen.io._ring import Frame
from stream_gpen.io._sink import _keep_layout
from tests._clips import copy_through, write_video

W, H = 64, 48


def _clip(path: Path, pts: list[int], tb: Fraction, *, audio_start: float | None = 0.0, audio_s: float = 0.6,
          layout: str = "stereo", audio_codec: str = "aac", rate: int = 48000, bframes: bool = False) -> Path:
    """H.264 frames at ``pts`` (in ``tb``) and ``audio_s`` of ``audio_codec`` from ``audio_start`` (s);
    negative times in mp4 become an edit list that hides them (a clip cut in an editor)."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25, options={"preset": "ultrafast", "bf": "2" if bframes else "0"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.time_base = vs.codec_context.time_base = tb
        aus = None
        if audio_start is not None:
            aus = c.add_stream(audio_codec, rate=rate, layout=layout)
        for i, p in enumerate(pts):
            f = av.VideoFrame.from_ndarray(np.full((H, W, 3), 20 * i % 250, np.uint8), format="rgb24")
            f.pts, f.time_base = p, tb
            for q in vs.encode(f):
                c.mux(q)
        for q in vs.encode(None):
            c.mux(q)
        if aus is not None:
            cc = aus.codec_context
            fs = cc.frame_size or 1024
            ch = len(av.AudioLayout(layout).channels)
            start = round(audio_start * rate)
            fmt = cc.format.name
            for k in range(0, round(audio_s * rate), fs):
                x = (0.2 * np.sin((start + k + np.arange(fs)) / 10)).astype(np.float32)
                if fmt.endswith("p"):
                    arr = np.tile(x, (ch, 1))
                else:
                    arr = np.tile(x, (ch, 1)).T.reshape(1, -1).copy()
                if fmt.startswith("s16"):
                    arr = (arr * 32767).astype(np.int16)
                af = av.AudioFrame.from_ndarray(arr, format=fmt, layout=layout)
                af.sample_rate, af.pts, af.time_base = rate, start + k, Fraction(1, rate)
                for q in aus.encode(af):
                    c.mux(q)
            for q in aus.encode(None):
                c.mux(q)
    return path


def _starts(path) -> dict[str, float]:
    with av.open(str(path)) as c:
        return {s.type: float(s.start_time * s.time_base) for s in c.streams if s.start_time is not None}


# --- audio channels ------------------------------------------------------------------------------

def test_transcoded_surround_audio_keeps_its_channels(tmp_path):
    # 6-channel PCM in .mov (a camera's or an editor's export) into .mp4, which takes no PCM:
    # transcoded to AAC, which carries 5.1, so all six channels stay
    src = _clip(tmp_path / "s.mov", list(range(5)), Fraction(1, 25), layout="5.1", audio_codec="pcm_s16le",
                audio_s=0.2)
    sink = copy_through(src, tmp_path / "o.mp4")
    with av.open(str(tmp_path / "o.mp4")) as c:
        a = c.streams.audio[0].codec_context
        assert (a.name, a.channels) == ("aac", 6)
    note = next(m for m in sink.fallbacks if "transcoded" in m)
    assert "downmixed" not in note


def test_a_layout_the_encoder_cannot_take_is_downmixed_and_said(tmp_path):
    assert _keep_layout("libopus", 48000, "5.1(side)", 6) == "5.1"  # renamed, not downmixed
    assert _keep_layout("aac", 48000, "7.1", 8) == "7.1"
    assert _keep_layout("libopus", 48000, None, 12) == "stereo"  # beyond Opus's 8 numbered channels
    assert _keep_layout("aac", 48000, "mono", 1) == "mono"


# --- edit lists ----------------------------------------------------------------------------------

def _cut_mp4(path: Path) -> Path:
    """An mp4 cut 0.2 s into its GOP: video and audio start at -0.2 s, hidden by the edit list."""
    tb = Fraction(1, 12800)
    return _clip(path, [-2560 + 512 * i for i in range(15)], tb, audio_start=-0.2, audio_s=0.8)


def test_audio_an_edit_list_hides_is_left_out_of_mkv(tmp_path):
    src = _cut_mp4(tmp_path / "cut.mp4")
    copy_through(src, tmp_path / "o.mkv")
    starts = _starts(tmp_path / "o.mkv")
    # the hidden 0.2 s of audio played first and pushed the video to 0.22 s; now at most the
    # part of one audio packet that straddles the edit point (1024 samples: 21 ms)
    assert starts["video"] < 0.022
    assert abs(starts["audio"] - 0.0) < 1e-3
    copy_through(src, tmp_path / "o.mp4")  # mp4 keeps its edit list: unchanged
    assert _starts(tmp_path / "o.mp4")["video"] == 0


def test_remux_refuses_hidden_video_frames_where_they_would_show(tmp_path):
    src = _cut_mp4(tmp_path / "cut.mp4")
    with pytest.raises(EncodeError, match="edit list hides video frames"):
        remux(src, tmp_path / "o.mkv")
    assert not (tmp_path / "o.mkv").exists()
    assert remux(src, tmp_path / "o.mp4") == 15  # mp4 hides them again


def test_remux_leaves_hidden_audio_out_of_mkv(tmp_path):
    # only the audio is cut (video from 0): its hidden packets must not play in mkv
    src = _clip(tmp_path / "a.mp4", list(range(10)), Fraction(1, 25), audio_start=-0.3, audio_s=0.7)
    remux(src, tmp_path / "o.mkv")
    # (kept, they played first and pushed the video 0.3 s later; the priming packet ending at
    # the edit point stays, as the decoder needs it)
    assert _starts(tmp_path / "o.mkv")["video"] < 0.03


# --- timestamps going backwards -------------------------------------------------------------------

def test_copied_audio_going_backwards_is_moved_on_not_fatal(tmp_path, monkeypatch, caplog):
    src_path = _clip(tmp_path / "a.mkv", list(range(10)), Fraction(1, 25), audio_s=0.4)
    with open_source(src_path) as src:
        take = src.aux.take_until
        state = {"n": 0}

        def backwards(t):  # from the 6th audio packet on, the clock restarts 0.1 s back
            out = list(take(t))
            for p in out:
                if p.stream.type == "audio":
                    state["n"] += 1
                    if state["n"] > 5:
                        back = round(Fraction(1, 10) / p.time_base)
                        p.pts -= back
                        p.dts -= back
            return out

        monkeypatch.setattr(src.aux, "take_until", backwards)
        with caplog.at_level(logging.WARNING), open_sink(tmp_path / "o.mkv", source=src, preset="ultrafast") as sink:
            for f in src:
                sink.write(f)
    assert any("backwards" in m for m in sink.fallbacks)
    assert sum("timestamps go backwards" in r.getMessage() for r in caplog.records) == 1
    with av.open(str(tmp_path / "o.mkv")) as c:
        dts = [p.dts for p in c.demux(audio=0) if p.size]
    assert len(dts) == state["n"] and all(b > a for a, b in zip(dts, dts[1:]))


# --- the last frame's duration --------------------------------------------------------------------

@pytest.mark.parametrize("ext,preset", [(".mkv", "ultrafast"), (".mp4", "ultrafast"), (".mkv", "fast"),
                                        (".mp4", "fast")])  # fast: with B-frames
def test_the_last_frame_keeps_its_duration(tmp_path, ext, preset):
    tb = Fraction(1, 30)
    out = tmp_path / f"o{ext}"
    with open_sink(out, preset=preset) as sink:
        for i in range(6):
            f = Frame.from_tensor(torch.full((H, W, 3), 30 * i, dtype=torch.uint8), index=i, pts=i, time_base=tb)
            f.duration = 2.0 if i == 5 else 1 / 30  # a closing still held 2 s (what the source reads)
            sink.write(f)
    with av.open(str(out)) as c:  # (mp4: the track's duration; its packets' durations follow their dts)
        total = c.duration / 1e6
    assert abs(total - (5 / 30 + 2.0)) < 0.002


# --- encoder delay of trimmed audio ---------------------------------------------------------------

def test_trimmed_aac_in_mkv_loses_no_packet(tmp_path):
    # FFmpeg writes AAC into mkv with CodecDelay 1024 (its priming); a trimmed copy starts with a
    # real packet, which the delay would hide: 128 ms at 8 kHz
    src = _clip(tmp_path / "a.mkv", list(range(25)), Fraction(1, 25), audio_s=1.0, rate=8000, layout="mono")
    copy_through(src, tmp_path / "o.mkv", source_kw={"start": 0.4})
    with av.open(str(tmp_path / "o.mkv")) as c:
        n_packets = sum(1 for p in c.demux(audio=0) if p.size)
    with av.open(str(tmp_path / "o.mkv")) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
    assert samples == n_packets * 1024


# --- colour ---------------------------------------------------------------------------------------

RAMP = np.repeat(np.repeat(np.arange(0, 256, 16, dtype=np.uint8), 4)[None, :, None], H, axis=0).repeat(3, axis=2)


def test_full_range_source_into_prores_keeps_its_levels(tmp_path):
    src = write_video(tmp_path / "full.mov", [RAMP] * 3, codec="mjpeg", pix_fmt="yuvj422p")
    copy_through(src, tmp_path / "o.mov", codec="prores", preset=None)
    with av.open(str(tmp_path / "o.mov")) as c:
        f = next(c.decode(video=0))
        row = f.to_ndarray(format="rgb24")[H // 2, 2::4, 1].astype(int)
    # full-range codes labelled limited read back crushed (16 -> 0) and clipped (240 -> 255)
    assert np.abs(row - RAMP[0, 2::4, 1]).max() <= 3


def test_prores_frames_carry_primaries_and_transfer(tmp_path):
    def tags(s):
        s.codec_context.color_primaries, s.codec_context.color_trc, s.codec_context.colorspace = 9, 16, 9

    src = write_video(tmp_path / "pq.mkv", [RAMP] * 3, options={"preset": "ultrafast"}, setup=tags)
    copy_through(src, tmp_path / "o.mov", codec="prores", preset=None)
    with av.open(str(tmp_path / "o.mov")) as c:
        f = next(c.decode(video=0))
    assert (f.color_primaries, f.color_trc) == (9, 16)


def test_every_h273_tag_is_kept(tmp_path):
    def tags(s):  # DCI-P3 primaries, BT.2020 12-bit transfer: once outside the sink's table
        s.codec_context.color_primaries, s.codec_context.color_trc = 11, 15

    src = write_video(tmp_path / "p3.mkv", [RAMP] * 3, options={"preset": "ultrafast"}, setup=tags)
    copy_through(src, tmp_path / "o.mkv")
    with av.open(str(tmp_path / "o.mkv")) as c:
        f = next(c.decode(video=0))
    assert (f.color_primaries, f.color_trc) == (11, 15)


def test_full_range_444_stays_444(tmp_path):
    src = write_video(tmp_path / "i444.mkv", [RAMP] * 3, pix_fmt="yuvj444p", options={"preset": "ultrafast"})
    copy_through(src, tmp_path / "o.mkv")
    with av.open(str(tmp_path / "o.mkv")) as c:
        s = c.streams.video[0]
        f = next(c.decode(s))
    assert f.format.name in ("yuv444p", "yuvj444p")
    assert f.color_range == 2  # full range kept


def _chroma_loc_type(path) -> int | None:
    """chroma_sample_loc_type of the H.264 VUI (FFmpeg's trace_headers), None when not written."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        old = av.logging.get_level()
        av.logging.set_level(av.logging.TRACE)
        try:
            with av.logging.Capture(True) as logs:
                bsf = av.bitstream.BitStreamFilterContext("trace_headers", s)
                bsf.filter(next(p for p in c.demux(s) if p.size))
        finally:
            av.logging.set_level(old)
    for _, _, msg in logs:
        if "chroma_sample_loc_type_top_field" in msg:
            return int(msg.split("=")[-1])
    return None


class _WithChromaLocation:
    """The source's metadata plus a chroma location (as the source reports it)."""

    def __init__(self, meta, loc):
        self._meta, self.chroma_location = meta, loc

    def __getattr__(self, name):
        return getattr(self._meta, name)


def test_chroma_location_is_written(tmp_path):
    src_path = write_video(tmp_path / "a.mkv", [RAMP] * 3, options={"preset": "ultrafast"})
    with open_source(src_path) as src:
        with open_sink(tmp_path / "o.mkv", source=src, preset="ultrafast") as sink:
            sink.meta = _WithChromaLocation(sink.meta, "topleft")  # (set before the first frame)
            for f in src:
                sink.write(f)
    assert _chroma_loc_type(tmp_path / "o.mkv") == 2  # topleft (UHD/HDR10 siting)
    assert _chroma_loc_type(src_path) is None


# --- audio the encoder must adapt (hunt r3a) -----------------------------------------------------
def _clip_with_audio(path, write_audio_packets, *, n=20):
    """A tiny H.264 clip (``n`` frames at 25 fps) plus whatever audio ``write_audio_packets(c)`` muxes."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25, options={"preset": "ultrafast", "bf": "0"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        write_audio_packets(c)
        for i in range(n):
            for p in vs.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 60, np.uint8), format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    return path


def _tone(c, codec, rate, layout, seconds=0.8, *, stream=None, start=0):
    """``seconds`` of a 1 kHz tone in every channel, encoded with ``codec`` into ``c``."""
    s = stream or c.add_stream(codec, rate=rate, layout=layout)
    n = int(seconds * rate)
    ch = len(av.AudioLayout(layout).channels)
    x = np.repeat((0.3 * np.sin(2 * np.pi * 1000 * np.arange(n) / rate)).astype(np.float32)[None], ch, 0)
    f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x), format="fltp", layout=layout)
    f.sample_rate, f.pts, f.time_base = rate, start, Fraction(1, rate)
    for p in s.encode(f):
        c.mux(p)
    for p in s.encode(None):
        c.mux(p)
    return s


def _audio(path):
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        return a.codec_context.name, a.codec_context.sample_rate, a.codec_context.layout.name, \
            sum(f.samples for f in c.decode(a))


def test_audio_at_a_rate_aac_does_not_take_is_resampled(tmp_path):
    """A 192 kHz FLAC master (or 47.952 kHz pull-down audio) that had to become AAC failed the
    whole run ("avcodec_open2 returned 22"): it is resampled to the nearest rate AAC takes."""
    src = _clip_with_audio(tmp_path / "master.mkv", lambda c: _tone(c, "flac", 192000, "stereo"))
    sink = copy_through(src, tmp_path / "o.ts")
    codec, rate, layout, samples = _audio(tmp_path / "o.ts")
    assert (codec, rate, layout) == ("aac", 96000, "stereo") and abs(samples - 0.8 * 96000) <= 2048
    assert any("resampled from 192000 to 96000 Hz" in m for m in sink.fallbacks), sink.fallbacks


def test_audio_that_changes_layout_midway_is_transcoded_on(tmp_path):
    """A TV recording's AC-3 switching from 2.0 to 5.1 at an ad break: PyAV's resampler, set up
    by the first frame, refused the 5.1 ones and the run failed; transcoding now goes on."""
    def switching(c):
        s = c.add_stream("ac3", rate=48000, layout="stereo")
        _tone(c, "ac3", 48000, "stereo", 0.384, stream=s)
        five = av.CodecContext.create("ac3", "w")
        five.sample_rate, five.layout, five.format, five.time_base = 48000, "5.1", "fltp", Fraction(1, 48000)
        five.open()
        x = np.zeros((6, 18432), np.float32)
        f = av.AudioFrame.from_ndarray(x, format="fltp", layout="5.1")
        f.sample_rate, f.pts, f.time_base = 48000, 18432, Fraction(1, 48000)
        for p in [*five.encode(f), *five.encode(None)]:
            p.stream, p.time_base = s, Fraction(1, 48000)
            c.mux(p)

    src = _clip_with_audio(tmp_path / "tv.ts", switching)
    copy_through(src, tmp_path / "o.webm", preset=None)
    codec, rate, layout, samples = _audio(tmp_path / "o.webm")
    assert codec == "opus" and samples >= 0.7 * 48000


@pytest.mark.parametrize("codec, layout, want", [
    ("aac", "2.1", "2.1"), ("aac", "3.1", "3.1"), ("aac", "5.1(side)", "5.1"), ("aac", "4.0", "quad"),
    ("libopus", "2.1", "5.1"), ("libopus", "3.1", "5.1"), ("libopus", "5.0", "5.1"), ("libopus", "6.1", "7.1"),
    ("libopus", "7.1", "7.1"), ("libopus", "mono", "mono")])
def test_transcoded_layouts_keep_every_speaker(codec, layout, want):
    """2.1/3.1/4.1 lost their LFE (the usual 3-channel layout is 3.0); Opus scrambles 5.0 and
    6.1 (centre and surrounds rotated on the way back), so those go out as 5.1/7.1."""
    from stream_gpen.io._sink import _keep_layout

    assert _keep_layout(codec, 48000, layout, None) == want


def test_g711_and_quicktime_captions_are_copied_where_they_fit():
    """IP cameras' G.711 audio went through AAC although AVI and MOV hold it; a .mov's c608
    caption track was dropped on .mov output as "not accepted"."""
    from stream_gpen.io._sink import can_copy

    with av.open(os.devnull, "w", format="avi") as avi, av.open(os.devnull, "w", format="mov") as mov:
        for codec in ("pcm_alaw", "pcm_mulaw"):
            assert can_copy("avi", codec, avi.supported_codecs) and can_copy("mov", codec, mov.supported_codecs)
        assert can_copy("mov", "eia_608", mov.supported_codecs)


def test_mov_keeps_track_languages_under_the_code_its_table_has(tmp_path):
    """FFmpeg's QuickTime muxer keeps only the old Macintosh table's codes, one of each ISO 639-2
    twin ("fra" but "ger", "chi"): German "deu", French "fre", Chinese "zho" audio or subtitle
    tracks came out of .mov with no language and no note. The twin it keeps is written."""
    from stream_gpen.io._tags import language_for

    with av.open(os.devnull, "w", format="mov") as mov, av.open(os.devnull, "w", format="mp4") as mp4:
        assert [language_for(mov, c) for c in ("fre", "deu", "zho", "nld", "eng", "xyz")] == \
            ["fra", "ger", "chi", "dut", "eng", "xyz"]
        assert language_for(mp4, "deu") == "deu"  # mp4 keeps every code
    src = _clip_with_audio(tmp_path / "de.mkv", lambda c: _tone(c, "aac", 48000, "stereo"))
    with av.open(str(src)) as i, av.open(str(tmp_path / "tagged.mkv"), "w") as o:
        m = {s.index: o.add_stream_from_template(s) for s in i.streams}
        m[1].metadata["language"] = "deu"
        for p in i.demux():
            if p.size:
                p.stream = m[p.stream.index]
                o.mux(p)
    copy_through(tmp_path / "tagged.mkv", tmp_path / "o.mov")
    with av.open(str(tmp_path / "o.mov")) as c:
        assert c.streams.audio[0].metadata.get("language") == "ger"


def test_a_data_track_without_a_codec_is_named_in_its_note(tmp_path):
    """Action cameras' telemetry (GoPro 'GoPro MET') has no codec PyAV names: it was dropped with
    "mp4 does not accept None". (.mp4 and .mov now keep it: tests/test_sink_hunt15.py; .mkv cannot.)"""
    from tests.test_sink_hunt15 import _gopro

    src = _gopro(tmp_path / "gopro.mp4", n=10, meta=1)
    sink = copy_through(src, tmp_path / "o.mkv")
    notes = [m for m in sink.dropped if "data stream" in m]
    assert notes and "None" not in notes[0] and "(GoPro MET)" in notes[0] and "GoPro telemetry (gpmd)" in notes[0], notes
