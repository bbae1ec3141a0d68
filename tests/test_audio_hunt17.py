"""A part's sound and cues, hunt 17: ``--duration`` without ``--start`` cut nothing at the part's end
(copied PCM ran 0.4 s past the last frame, a subtitle cue 0.8 s); copied PCM in Matroska whose
packets are not a whole number of milliseconds long was never cut (Matroska rounds durations to
the ms); and a Matroska seek skipped the audio packet playing at the cut when a video keyframe
came after that packet's start (a camera's 0.5 s PCM packets, a keyframe every 0.2 s: 0.22 s of
no sound at the head of the part)."""
from __future__ import annotations

import av
import numpy as np
import pytest

from _clips import copy_through
from test_audio_hunt15 import _audio_from_first_frame, _lag_ms


def _clip(path, *, sr=8000, block=4000, gop=None, seconds=3.0, cue=None):
    """``seconds`` of 25 fps H.264 (a keyframe every ``gop`` frames, or x264's default) with mono
    pcm_s16le noise in packets of ``block`` samples, and a SubRip ``cue`` (start, end) if given."""
    rng = np.random.default_rng(5)
    x = np.convolve(rng.standard_normal(int(sr * seconds)) * 0.2, np.ones(2) / 2, mode="same").astype(np.float32)
    srt = None
    if cue is not None:
        def stamp(t):
            return f"00:00:{int(t):02d},{round(t % 1 * 1000):03d}"
        srt = path.with_suffix(".srt")
        srt.write_text(f"1\n{stamp(cue[0])} --> {stamp(cue[1])}\nhello\n\n")
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        if gop:
            v.options = {"g": str(gop)}
        a = c.add_stream("pcm_s16le", rate=sr)
        a.layout = "mono"
        packets = []
        for i in range(round(25 * seconds)):
            fr = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 3, np.uint8), format="rgb24")
            fr.pts = i
            packets += v.encode(fr)
        packets += v.encode(None)
        for s in range(0, len(x), block):
            af = av.AudioFrame.from_ndarray((x[None, s:s + block] * 32767).astype(np.int16), format="s16", layout="mono")
            af.sample_rate, af.pts = sr, s
            packets += a.encode(af)
        packets += a.encode(None)
        if srt is not None:
            with av.open(str(srt)) as s_in:
                st = c.add_stream_from_template(s_in.streams[0])
                for p in s_in.demux():
                    if p.size:
                        p.stream = st
                        packets.append(p)
        for p in packets:
            c.mux(p)
    return x


def _audio_span(path) -> tuple[float, float]:
    with av.open(str(path)) as c:
        ps = [p for p in c.demux(audio=0) if p.size]
        first = float(ps[0].pts * ps[0].time_base)
        end = float((ps[-1].pts + ps[-1].duration) * ps[-1].time_base)
    return first, end


@pytest.mark.parametrize("start", [None, 0.0])
def test_a_duration_alone_cuts_copied_pcm_and_cues_at_the_part_end(tmp_path, start):
    x = _clip(tmp_path / "in.mkv", cue=(0.8, 1.8))
    kw = {"duration": 1.1} if start is None else {"start": start, "duration": 1.1}
    out = tmp_path / "o.mkv"
    copy_through(tmp_path / "in.mkv", out, source_kw=kw, audio="copy")
    first, end = _audio_span(out)
    assert first <= 0.001 and abs(end - 1.1) <= 0.002, (first, end)  # (was 0 and 1.5)
    got, sr = _audio_from_first_frame(out)
    assert abs(_lag_ms(x, got, sr)) <= 1.0
    with av.open(str(out)) as c:
        cues = [p for p in c.demux(subtitles=0) if p.size]
        assert len(cues) == 1
        assert abs(float((cues[0].pts + cues[0].duration) * cues[0].time_base) - 1.1) <= 0.002  # (was 1.8)
        assert c.duration / 1e6 <= 1.15  # (was 1.8: the file ran past its video)


def test_a_duration_alone_stops_transcoded_sound_at_the_part_end(tmp_path):
    _clip(tmp_path / "in.mkv")
    out = tmp_path / "t.mp4"
    copy_through(tmp_path / "in.mkv", out, source_kw={"duration": 1.1}, audio="aac")
    got, sr = _audio_from_first_frame(out)
    # AAC pads its last frame (1024 samples: 0.128 s at 8 kHz); was 1.536 s
    assert 1.1 - 0.002 <= len(got) / sr <= 1.1 + 1024 / sr, len(got) / sr


@pytest.mark.parametrize("sr, block", [(44100, 22045), (48000, 1024)])
def test_copied_pcm_in_packets_of_no_whole_ms_is_cut_to_the_sample(tmp_path, sr, block):
    # Matroska stores 22045 samples at 44.1 kHz as 499 ms, 1024 at 48 kHz as 21 ms: the count
    # from the duration did not divide the packet's bytes, and the cut was left out
    x = _clip(tmp_path / "in.mkv", sr=sr, block=block)
    start = 1.28
    out = tmp_path / "o.mkv"
    copy_through(tmp_path / "in.mkv", out, source_kw={"start": start, "duration": 1.0}, audio="copy")
    first, end = _audio_span(out)
    assert first <= 0.001 and abs(end - 1.0) <= 0.002, (first, end)  # (was 0.22 and 1.22 at 44.1 kHz)
    got, _ = _audio_from_first_frame(out)
    assert abs(len(got) / sr - 1.0) <= 0.002
    assert abs(_lag_ms(x[round(start * sr):], got, sr)) <= 1.0


@pytest.mark.parametrize("name, audio", [("o.mkv", "copy"), ("t.mp4", "aac")])
def test_a_matroska_cut_reads_the_audio_packet_playing_at_the_cut(tmp_path, name, audio):
    # keyframes every 0.2 s; the PCM packet 1.0-1.5 s plays at the cut (1.28 s) but starts before
    # the keyframe the seek lands on (1.2 s), and FFmpeg's Matroska seek skipped it
    x = _clip(tmp_path / "in.mkv", gop=5)
    start = 1.28
    out = tmp_path / name
    copy_through(tmp_path / "in.mkv", out, source_kw={"start": start, "duration": 1.0}, audio=audio)
    got, sr = _audio_from_first_frame(out)
    head = np.abs(got[: round(0.15 * sr)])
    assert head.max() > 0.05, "no sound at the head of the part"  # (was silent up to 0.20-0.22 s)
    assert abs(_lag_ms(x[round(start * sr):], got, sr)) <= 1.0
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames in (0, 25) and sum(1 for _ in c.decode(video=0)) == 25


def test_duration_alone_keeps_the_aac_priming_packet(tmp_path):
    """realclips18: `--duration` with no `--start` dropped an AAC track's first packet (pts -1024,
    ending at the window's start): the first ~9 ms of sound came out silent, then ramped up. A
    whole run keeps it; so does a part that starts at the file's start."""
    import av
    import numpy as np

    from _clips import copy_through

    src = tmp_path / "tone.mp4"
    with av.open(str(src), "w") as o:
        v = o.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = o.add_stream("aac", rate=44100, layout="stereo")
        for i in range(50):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 3 * i, np.uint8), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                o.mux(p)
        t = np.arange(44100 * 2) / 44100
        sig = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for s in range(0, len(sig) - 1024, 1024):
            af = av.AudioFrame.from_ndarray(np.stack([sig[s:s + 1024]] * 2), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 44100, s
            for p in a.encode(af):
                o.mux(p)
        for p in v.encode():
            o.mux(p)
        for p in a.encode():
            o.mux(p)

    def first_audio(path):
        with av.open(str(path)) as c:
            return next(p.pts for p in c.demux(c.streams.audio[0]) if p.size)

    assert first_audio(src) == -1024  # (the encoder's priming packet)
    out = tmp_path / "part.mp4"
    copy_through(src, out, source_kw={"duration": 1.0}, audio="copy")
    assert first_audio(out) == -1024

    def pcm(path, n=2048):
        with av.open(str(path)) as c:
            return np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)[:, :n]

    assert np.abs(pcm(out) - pcm(src)).max() < 1e-4  # the first samples as the whole file has them
