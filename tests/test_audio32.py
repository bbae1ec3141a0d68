"""Hunt 32 (audio): copied audio into AVI whose packet times round onto one tick of the output's
clock; gaps in copied audio into AVI; AAC changing its layout or rate mid-stream; Opus resampling."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stream_gpen.io import open_sink, open_source


def _clip(path: Path, codec: str = "aac", rate: int = 48000, layout: str | tuple[str, ...] = "stereo",
          vdur: float = 1.0, adur: float = 1.0, voff: float = 0.0, aoff: float = 0.0,
          gap: tuple[float, float] | None = None) -> Path:
    """A 64x48 25 fps x264 clip from ``voff`` s with a 440 Hz tone in ``codec`` from ``aoff`` s,
    silent (no packets) between the times of ``gap``; one audio track for each of ``layout``'s
    layouts where it is a tuple."""
    with av.open(str(path), "w") as o:
        v = o.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.options = {"preset": "ultrafast", "bf": "0"}
        tracks = []
        for name in (layout,) if isinstance(layout, str) else layout:
            tracks.append(o.add_stream(codec, rate=rate))
            tracks[-1].layout = name
        pk = []
        for i in range(int(vdur * 25)):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5 % 256, np.uint8), format="rgb24")
            f.pts, f.time_base = i + round(voff * 25), Fraction(1, 25)
            pk += v.encode(f)
        pk += v.encode(None)
        for a in tracks:
            cc = a.codec_context
            fs, t = cc.frame_size or 1024, 0
            while t < int(adur * rate):
                if not (gap and gap[0] <= t / rate < gap[1]):
                    s = (0.3 * np.sin(2 * np.pi * 440 * np.arange(t, t + fs) / rate)).astype(np.float32)
                    f = av.AudioFrame.from_ndarray(np.tile(s, (cc.layout.nb_channels, 1)), format="fltp",
                                                   layout=cc.layout.name)
                    f.sample_rate, f.pts, f.time_base = rate, t + round(aoff * rate), Fraction(1, rate)
                    pk += a.encode(f)
                t += fs
            pk += a.encode(None)
        for p in sorted(pk, key=lambda p: float(p.pts * p.time_base)):
            o.mux(p)
    return path


def _through(src_path: Path, dst: Path, preset: str | None = "ultrafast"):
    with open_source(src_path) as src, open_sink(dst, source=src, preset=preset) as sink:
        for f in src:
            sink.write(f)
    return sink


def _audio(path: Path) -> tuple[int, int, list[float]]:
    """(samples decoded, sample rate, packet start times in s) of the first audio track."""
    with av.open(str(path)) as c:
        n = sum(f.samples for f in c.decode(c.streams.audio[0]))
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        ts = [float(p.pts * p.time_base) for p in c.demux(s) if p.pts is not None and p.size]
        return n, s.codec_context.sample_rate, ts


def test_copied_audio_whose_times_round_onto_one_avi_tick_is_written(tmp_path):
    # Matroska's 1 ms clock against AVI's 1024/48000 s ticks of AAC: video from 0.48 s, so the
    # audio moves by 480 ms and two packets 21 ms apart land on one tick ("returned 22", exit 4)
    src = _clip(tmp_path / "early.mkv", vdur=2, adur=2.5, voff=0.48)
    sink = _through(src, tmp_path / "o.avi")
    n, rate, ts = _audio(tmp_path / "o.avi")
    assert rate == 48000 and n > 90000, n
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    assert any("same tick" in f for f in sink.fallbacks), sink.fallbacks
    assert not any("went backwards" in f for f in sink.fallbacks), sink.fallbacks


@pytest.mark.parametrize("name,codec", [("gap.ts", "mp2"), ("gap.mkv", "ac3")])
def test_a_gap_in_copied_audio_into_avi_is_kept(tmp_path, name, codec):
    # no sound from 0.5 to 1.2 s: copied into AVI (no start times) the pause was closed up, the
    # track ran 0-1.3 s and all after the pause played 0.7 s early, unsaid
    src = _clip(tmp_path / name, codec, vdur=2, adur=2, gap=(0.5, 1.2))
    sink = _through(src, tmp_path / "o.avi")
    n, rate, _ = _audio(tmp_path / "o.avi")
    assert abs(n / rate - 2.0) < 0.1, n / rate
    assert any("pauses at" in f and "filled with silence" in f for f in sink.fallbacks), sink.fallbacks


def test_copied_audio_without_a_gap_into_avi_stays_a_copy(tmp_path):
    src = _clip(tmp_path / "plain.mkv", "ac3", vdur=2, adur=2)
    sink = _through(src, tmp_path / "o.avi")
    with av.open(str(tmp_path / "o.avi")) as c:
        assert c.streams.audio[0].codec_context.name == "ac3"
    assert not any("transcoded" in f for f in sink.fallbacks), sink.fallbacks


def _switching(tmp_path: Path, rate: int, layout: str | tuple[str, ...]) -> Path:
    """A .ts joined from a second of stereo 48 kHz AAC and a second of ``layout`` at ``rate``
    (a TV recording across an ad break: ``cat a.ts b.ts``); as many tracks as ``layout`` has
    layouts where it is a tuple (the first part stereo in each)."""
    first = "stereo" if isinstance(layout, str) else ("stereo",) * len(layout)
    a = _clip(tmp_path / "a.ts", "aac", 48000, first, vdur=1, adur=1.024)
    b = _clip(tmp_path / "b.ts", "aac", rate, layout, vdur=1, adur=1, voff=1, aoff=1.0453333)
    dst = tmp_path / "switch.ts"
    dst.write_bytes(a.read_bytes() + b.read_bytes())
    return dst


@pytest.mark.parametrize("rate,layout,ext", [(48000, "5.1", "mp4"), (48000, "5.1", "avi"), (44100, "stereo", "mkv")])
def test_copied_adts_aac_that_changes_its_channels_or_rate_is_transcoded(tmp_path, rate, layout, ext):
    # copied, the track kept the first packet's configuration: the 5.1 half failed to decode
    # ("Invalid data"), the 44.1 kHz half played 9% fast under a 48 kHz header, unsaid
    sink = _through(_switching(tmp_path, rate, layout), tmp_path / f"o.{ext}")
    n, out_rate, _ = _audio(tmp_path / f"o.{ext}")  # (raises on a packet it cannot decode)
    assert abs(n / out_rate - 2.0) < 0.12, n / out_rate
    assert any("transcoded" in f and "ADTS AAC changes from 2 channel(s) at 48000 Hz" in f
               for f in sink.fallbacks), sink.fallbacks


def test_adts_aac_that_changes_is_still_copied_into_ts(tmp_path):
    sink = _through(_switching(tmp_path, 48000, "5.1"), tmp_path / "o.ts")
    assert not any("transcoded" in f for f in sink.fallbacks), sink.fallbacks
    with av.open(str(tmp_path / "o.ts")) as c:
        assert {f.layout.name for f in c.decode(c.streams.audio[0])} == {"stereo", "5.1"}


@pytest.mark.parametrize("rate", [44100, 96000])
def test_audio_resampled_for_opus_says_so(tmp_path, rate):
    # AAC at 44.1/96 kHz into .webm: Opus takes 48 kHz only; the note said "transcoded to libopus"
    src = _clip(tmp_path / "a.mp4", "aac", rate, vdur=0.4, adur=0.4)
    sink = _through(src, tmp_path / "o.webm", preset=None)  # (VP9)
    assert any(f"transcoded to libopus, resampled from {rate} to 48000 Hz (Opus is 48 kHz only)" in f
               for f in sink.fallbacks), sink.fallbacks
