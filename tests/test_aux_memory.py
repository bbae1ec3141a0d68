"""Audio that runs on after the video is not held in memory whole.

The decode thread demuxes ahead of the frames the sink writes, and the sink takes audio only up
to each frame's time: a short title clip over a long recording would keep the whole recording's
audio in RAM. Past ``AUX_MEMORY_BUDGET`` bytes the packets wait in a temporary file instead; what
the sink gets back must be the same packets (bytes, times, flags, side data, stream).
"""
from __future__ import annotations

import hashlib

import av
import numpy as np
import pytest

import stream_gpen.io._source as source_mod
from stream_gpen.io import open_sink, open_source
from stream_gpen.io._source import AuxChannel
from tests._clips import write_audio

BUDGET = 16 << 10  # a few audio packets: the 3 s tail spills hundreds


def _tail_clip(path, *, video_s: float = 0.4, audio_s: float = 3.0, codec: str = "aac"):
    """A tiny video (``video_s`` seconds, 64x48 at 10 fps) with ``audio_s`` seconds of audio."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream(codec, rate=48000)
        a.layout = "stereo"
        for i in range(round(video_s * 10)):
            img = np.full((48, 64, 3), 20 * i % 256, np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            for p in vs.encode(vf):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        write_audio(c, a, audio_s)
    return path


def _audio_packets(path) -> list[tuple]:
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        return [(p.pts, p.dts, p.duration, hashlib.sha1(bytes(p)).hexdigest())
                for p in c.demux(a) if p.size]


def _transcode(src_path, dst_path, **sink_kw):
    with open_source(src_path) as src:
        with open_sink(dst_path, source=src, preset="ultrafast", **sink_kw) as sink:
            for f in src:
                sink.write(f)
    return src.aux


def _fill(ch: AuxChannel, path) -> av.container.InputContainer:
    c = av.open(str(path))
    for p in c.demux():
        if p.stream.type != "video" and (p.size or p.pts is not None):
            ch.put(p, 0)
    return c


def _describe(p) -> tuple:
    return (p.stream.index, p.pts, p.dts, p.duration, p.time_base, p.is_keyframe, p.is_discard,
            hashlib.sha1(bytes(p)).hexdigest(), [(s.data_type, bytes(s)) for s in p.iter_sidedata()])


def test_spilled_packets_come_back_identical_and_in_order(tmp_path, monkeypatch):
    clip = _tail_clip(tmp_path / "t.mp4")  # mp4 AAC: the first packet carries skip_samples side data
    cuts = (0.1, 0.5, 0.5, 1.7, None)

    def taken(ch: AuxChannel, c) -> list:
        out = [(t, _describe(p), p.stream is c.streams[p.stream.index]) for t in cuts for p in ch.take_until(t)]
        assert ch.memory_bytes == 0
        return out

    ch = AuxChannel()
    ch.subscribe()
    with _fill(ch, clip) as c:
        want = taken(ch, c)
    assert ch.spilled == 0 and want and all(same for *_, same in want)
    assert any(d[-1] for _, d, _ in want), "the clip should have a packet with side data"

    monkeypatch.setattr(source_mod, "AUX_MEMORY_BUDGET", BUDGET)
    ch = AuxChannel()
    ch.subscribe()
    with _fill(ch, clip) as c:
        assert ch.spilled > 100 and ch.peak_memory_bytes <= BUDGET
        got = taken(ch, c)
    assert got == want  # same packets, same takes, the input's own stream objects
    # drained: the next packets go to memory again, and close() drops the file
    assert ch._spill_count == 0 and ch._spill_end == 0
    ch.close()
    assert ch._spill is None


def test_channel_discards_spilled_packets_when_no_sink_subscribes(tmp_path, monkeypatch):
    monkeypatch.setattr(source_mod, "AUX_MEMORY_BUDGET", BUDGET)
    ch = AuxChannel()
    with _fill(ch, _tail_clip(tmp_path / "t.mkv", codec="pcm_s16le")):
        assert ch.spilled
        n = ch.spilled + len(ch._packets)
        ch.put(av.Packet(b"late"), source_mod._AUX_GRACE_FRAMES + 1)  # a sink never came
    assert ch.discarded == n + 1 and ch._spill is None and ch.memory_bytes == 0
    assert list(ch.take_until(None)) == []


@pytest.mark.parametrize("ext,audio_codec,audio", [
    (".mkv", "pcm_s16le", "copy"),   # the reported case: a long PCM tail, copied
    (".mp4", "aac", "copy"),
    (".mp4", "aac", "aac"),          # transcoded: spilled packets are decoded by their stream
])
def test_output_audio_is_the_same_with_the_tail_spilled(tmp_path, monkeypatch, ext, audio_codec, audio):
    clip = _tail_clip(tmp_path / f"in{ext}", codec=audio_codec)
    ref = tmp_path / f"ref{ext}"
    aux = _transcode(clip, ref, audio=audio)
    assert aux.spilled == 0
    want = _audio_packets(ref)
    if audio == "copy":
        assert want == _audio_packets(clip)

    monkeypatch.setattr(source_mod, "AUX_MEMORY_BUDGET", BUDGET)
    out = tmp_path / f"spilled{ext}"
    aux = _transcode(clip, out, audio=audio)
    assert aux.spilled > 50, "the test should make the channel spill"
    assert aux.peak_memory_bytes <= BUDGET
    got = _audio_packets(out)
    assert len(got) == len(want) and got == want
    assert got[-1][0] > got[0][0]  # the whole 3 s tail, not just the 0.4 s of video
