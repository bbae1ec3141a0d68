"""Copied PCM at a cut is cut to the sample (hunt 16): a camera or DVR writing its PCM in 0.5 s
packets gave a --start/--duration part 0.18 s of silence at its head and sound running 0.18 s past
its last frame (packets were kept or left out whole)."""
from __future__ import annotations

import av
import numpy as np

from test_audio_hunt15 import _audio_from_first_frame, _lag_ms


def _clip(path, sr=8000, seconds=3.0, block_s=0.5):
    rng = np.random.default_rng(5)
    x = np.convolve(rng.standard_normal(int(sr * seconds)) * 0.2, np.ones(2) / 2, mode="same").astype(np.float32)
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("pcm_s16le", rate=sr)
        a.layout = "mono"
        for i in range(round(25 * seconds)):
            fr = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 3, np.uint8), format="rgb24")
            fr.pts = i
            c.mux(v.encode(fr))
        c.mux(v.encode(None))
        block = int(sr * block_s)
        for s in range(0, len(x), block):
            af = av.AudioFrame.from_ndarray((x[None, s:s + block] * 32767).astype(np.int16), format="s16", layout="mono")
            af.sample_rate, af.pts = sr, s
            c.mux(a.encode(af))
        c.mux(a.encode(None))
    return x


def test_copied_pcm_in_big_packets_is_cut_to_the_sample(tmp_path):
    from stream_gpen.io import open_sink, open_source

    x = _clip(tmp_path / "in.mkv")
    start = 1.28  # inside the packet 1.0-1.5 s; 1.0 s long: the part ends inside the packet 2.0-2.5 s
    out = tmp_path / "o.mkv"
    with (open_source(tmp_path / "in.mkv", start=start, duration=1.0) as s,
          open_sink(out, source=s, audio="copy", preset="ultrafast") as k):
        for f in s:
            k.write(f)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "pcm_s16le"  # (copied)
        ps = [p for p in c.demux(audio=0) if p.size]
        first = float(ps[0].pts * ps[0].time_base)
        end = float((ps[-1].pts + ps[-1].duration) * ps[-1].time_base)
    assert first <= 0.001 and abs(end - 1.0) <= 0.002, (first, end)  # (was 0.22 and 1.22)
    got, sr = _audio_from_first_frame(out)
    assert abs(len(got) / sr - 1.0) <= 0.002
    assert abs(_lag_ms(x[round(start * 8000):], got, sr)) <= 1.0


def test_transcoded_sound_of_a_part_stops_with_its_last_frame(tmp_path):
    # the same big PCM packets transcoded to AAC in .mp4: the sound ran 0.22 s past the part's end
    from stream_gpen.io import open_sink, open_source

    x = _clip(tmp_path / "in.mkv")
    start = 1.28
    out = tmp_path / "t.mp4"
    with (open_source(tmp_path / "in.mkv", start=start, duration=1.0) as s,
          open_sink(out, source=s, audio="aac", preset="ultrafast") as k):
        for f in s:
            k.write(f)
    got, sr = _audio_from_first_frame(out)
    assert abs(len(got) / sr - 1.0) <= 0.03, len(got) / sr  # (AAC's last frame is padded; was 1.22)
    assert abs(_lag_ms(x[round(start * 8000):], got, sr)) <= 1.0
