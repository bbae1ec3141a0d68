"""Audio of hunt 15: a 7.1 gap filled with silence, the sound of a ``--start`` cut kept in sync,
and multichannel PCM whose container names no speaker order."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _clip_71_with_gap(path: Path) -> Path:
    """2 s of 25 fps H.264 and 7.1 AAC (noise) in .mkv, its packets at 1.0-1.3 s left out."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=48000)
        a.layout = "7.1"
        pk = []
        for i in range(50):
            fr = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5, np.uint8), format="rgb24")
            fr.pts = i
            pk += v.encode(fr)
        pk += v.encode(None)
        rng = np.random.default_rng(0)
        for s in range(0, 96000, 1024):
            f = av.AudioFrame(format="fltp", layout="7.1", samples=1024)
            for ch in range(8):  # (the 8 real planes: PyAV lists 9)
                f.planes[ch].update((rng.standard_normal(1024) * 0.1).astype(np.float32).tobytes())
            f.sample_rate, f.pts, f.time_base = 48000, s, Fraction(1, 48000)
            pk += a.encode(f)
        pk += a.encode(None)
        pk = [p for p in pk if not (p.stream.type == "audio" and 1.0 <= float(p.pts * p.time_base) < 1.3)]
        for p in sorted(pk, key=lambda p: float(p.dts * p.time_base)):
            c.mux(p)
    return path


# --- 1. a gap in 7.1 audio transcoded to AAC ------------------------------------------------------
def test_a_gap_in_71_audio_transcoded_to_aac_is_filled_with_silence(tmp_path):
    """The silence frame's planes were all written, and PyAV 18 lists 9 for 7.1 fltp: the 9th
    crashed the interpreter (SIGSEGV, no message, no output). Run in a child so a crash fails
    the test instead of pytest."""
    src = _clip_71_with_gap(tmp_path / "gap71.mkv")
    out = tmp_path / "o.mp4"
    code = textwrap.dedent(f"""
        from stream_gpen.io import open_source, open_sink
        with open_source({str(src)!r}) as s, open_sink({str(out)!r}, source=s, audio="aac", preset="ultrafast") as k:
            for f in s:
                k.write(f)
    """)
    r = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        assert a.codec_context.layout.name == "7.1"
        ps = [p for p in c.demux(a) if p.size]
        end = float((ps[-1].pts + ps[-1].duration) * ps[-1].time_base)
    assert abs(end - 2.0) < 0.1, end  # (the hole filled: what follows it kept its time)


# --- 2. the sound of a --start cut, to the sample ------------------------------------------------
def _noise_clip(path: Path, codec: str = "aac", sr: int = 8000, seconds: float = 3.0) -> np.ndarray:
    """25 fps H.264 and mono ``codec`` audio of low-passed noise (each stretch unlike any other,
    for cross-correlation) at ``sr``, both from 0, in .mkv; returns the noise. PCM comes in
    60-ms blocks."""
    rng = np.random.default_rng(3)
    x = np.convolve(rng.standard_normal(int(sr * seconds)) * 0.2, np.ones(2) / 2, mode="same").astype(np.float32)
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream(codec, rate=sr)
        a.layout = "mono"
        block = 1024 if codec == "aac" else sr * 3 // 50
        for i in range(round(25 * seconds)):
            fr = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 3, np.uint8), format="rgb24")
            fr.pts = i
            c.mux(v.encode(fr))
        c.mux(v.encode(None))
        for s in range(0, len(x), block):
            piece = x[None, s:s + block]
            af = (av.AudioFrame.from_ndarray(piece.copy(), format="fltp", layout="mono") if codec == "aac" else
                  av.AudioFrame.from_ndarray((piece * 32767).astype(np.int16), format="s16", layout="mono"))
            af.sample_rate, af.pts = sr, s
            c.mux(a.encode(af))
        c.mux(a.encode(None))
    return x


def _audio_from_first_frame(path: Path) -> tuple[np.ndarray, int]:
    """The decoded (mono) audio of ``path`` on the video's clock: sample 0 at the first frame."""
    with av.open(str(path)) as c:
        v0 = next(iter(c.decode(video=0))).time
    with av.open(str(path)) as c:
        frames = list(c.decode(audio=0))
        sr = frames[0].sample_rate
        x = np.concatenate([f.to_ndarray()[0] for f in frames])
        first = round((frames[0].time - v0) * sr)
    return (np.concatenate([np.zeros(first, np.float32), x]) if first >= 0 else x[-first:]), sr


def _lag_ms(ref: np.ndarray, out: np.ndarray, sr: int, most: int = 800) -> float:
    """How much later ``out`` plays than ``ref`` (ms), by cross-correlation over +-``most`` samples."""
    n = min(len(ref), len(out))
    r, o = ref[:n].astype(np.float64), out[:n].astype(np.float64)
    size = 1 << (2 * n).bit_length()
    cc = np.fft.irfft(np.fft.rfft(o, size) * np.conj(np.fft.rfft(r, size)), size)
    lags = np.r_[np.arange(most + 1), np.arange(-most, 0)]
    return 1000 * lags[int(np.argmax(np.r_[cc[:most + 1], cc[-most:]]))] / sr


@pytest.mark.parametrize("codec, start, name, audio", [
    ("aac", 1.08, "o.mp4", "copy"), ("aac", 1.08, "o.mkv", "copy"), ("aac", 1.08, "t.mp4", "aac"),
    ("aac", 1.08, "t.mkv", "aac"), ("pcm_s16le", 1.04, "o.mkv", "copy"), ("pcm_s16le", 1.04, "t.mp4", "aac")])
def test_a_cut_keeps_its_sound_in_sync_to_the_sample(tmp_path, codec, start, name, audio):
    """--start 1.08 with 8 kHz AAC (128-ms packets, 1.024-1.152 s straddling the cut): that packet
    was moved to 0 (the encoder's priming packet, when transcoded) and the whole track played
    56 ms late. Copied into mp4 it keeps its true time (the edit list hides the part before the
    cut), into mkv it is left out; transcoded, the samples before the cut are left out. (PCM in
    60-ms blocks, cut at 1.04 s: the block at 1.02 s was moved to 0, 20 ms late.)"""
    from stream_gpen.io import open_sink, open_source

    x = _noise_clip(tmp_path / "in.mkv", codec)
    ref = x[round(start * 8000):]
    out = tmp_path / name
    with (open_source(tmp_path / "in.mkv", start=start, duration=1.0) as s,
          open_sink(out, source=s, audio=audio, preset="ultrafast") as k):
        for f in s:
            k.write(f)
    got, sr = _audio_from_first_frame(out)
    assert sr == 8000
    lag = _lag_ms(ref, got, sr)
    assert abs(lag) <= 1.0, lag


# --- 3. multichannel PCM without a speaker order --------------------------------------------------
@pytest.mark.parametrize("n, usual", [(6, "5.1"), (8, "7.1")])
def test_pcm_channels_in_no_named_order_are_taken_as_the_usual_layout(tmp_path, n, usual):
    """Matroska stores no layout for PCM: FFmpeg reads "6 channels" / "8 channels". Transcoded
    for .mp4, 6 came out as 6.1 with both surrounds folded into one, 8 as stereo (LFE and back
    pair gone). Each channel carries its own tone (the LFE a low one: AAC keeps only bass there)."""
    from stream_gpen.io import open_sink, open_source

    hz = [200 * (k + 1) if k != 3 else 60 for k in range(n)]
    src = tmp_path / f"pcm{n}.mkv"
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("pcm_s16le", rate=48000)
        a.layout = usual
        for i in range(25):
            fr = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5, np.uint8), format="rgb24")
            fr.pts = i
            c.mux(v.encode(fr))
        c.mux(v.encode(None))
        t = np.arange(48000) / 48000
        x = np.stack([0.3 * np.sin(2 * np.pi * f * t) for f in hz])
        af = av.AudioFrame.from_ndarray((x.T.reshape(1, -1) * 32767).astype(np.int16), format="s16", layout=usual)
        af.sample_rate, af.pts = 48000, 0
        c.mux(a.encode(af))
        c.mux(a.encode(None))
    with av.open(str(src)) as c:
        assert c.streams.audio[0].codec_context.layout.name == f"{n} channels"  # (what the test is about)
    out = tmp_path / "o.mp4"
    with open_source(src) as s, open_sink(out, source=s, preset="ultrafast") as k:
        for f in s:
            k.write(f)
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        assert a.codec_context.layout.name == usual
        chans = [[] for _ in range(n)]
        for fr in c.decode(a):
            for ch, plane in zip(chans, fr.planes[:n]):  # (PyAV 18 lists 9 planes for 7.1)
                ch.append(np.frombuffer(bytes(plane), np.float32)[:fr.samples])
    for k_, (ch, f) in enumerate(zip(chans, hz)):
        y = np.concatenate(ch)[4800:43200]
        spec = np.abs(np.fft.rfft(y))
        peak = np.fft.rfftfreq(len(y), 1 / 48000)[int(np.argmax(spec))]
        assert abs(peak - f) < 5, (k_, peak, f)
    assert any(f"channel order unspecified, taken as {usual}" in m for m in k.fallbacks), k.fallbacks
