"""Writing small test videos: the encode / mux / flush loop every clip-making helper needs."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable

import av
import numpy as np


def write_video(path: Path, frames: Iterable[np.ndarray], *, codec: str = "libx264", rate=25,
                pix_fmt: str = "yuv420p", options: dict | None = None, fmt: str | None = None,
                setup: Callable | None = None, container_options: dict | None = None) -> Path:
    """Encode RGB ``uint8 [H,W,3]`` (or RGBA ``[H,W,4]``: keyed clips) frames (pts 0, 1, 2, ...
    in 1/rate) into a new file.

    The stream takes its size from the first frame; ``setup(stream)`` can set more on it (display
    rotation, SAR, colour tags) before the first frame is encoded; ``container_options`` go to the
    muxer (``movflags=faststart``)."""
    with av.open(str(path), "w", format=fmt, options=dict(container_options or {})) as c:
        s = None
        for i, img in enumerate(frames):
            if s is None:
                s = c.add_stream(codec, rate=Fraction(rate), options=dict(options or {}))
                s.width, s.height, s.pix_fmt = img.shape[1], img.shape[0], pix_fmt
                if setup is not None:
                    setup(s)
            encode_frame(c, s, img, i)
        if s is None:
            raise ValueError("write_video needs at least one frame")
        for p in s.encode():
            c.mux(p)
    return path


def encode_frame(container, stream, img: np.ndarray, pts: int) -> None:
    """Encode the RGB (or RGBA) ``uint8`` picture ``img`` at ``pts`` into ``stream`` and mux it."""
    vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgba" if img.shape[2] == 4 else "rgb24")
    vf.pts = pts
    for p in stream.encode(vf):
        container.mux(p)


def encode_frames(container, stream, frames: Iterable[np.ndarray]) -> None:
    """Encode RGB ``frames`` (pts 0, 1, 2, ...) into ``stream`` of an open ``container`` and flush
    the encoder: :func:`write_video`'s loop, for a clip with more streams than its video."""
    for i, img in enumerate(frames):
        encode_frame(container, stream, img, i)
    for p in stream.encode():
        container.mux(p)


def write_audio(container, stream, seconds: float, *, tone_hz: float | None = 440.0) -> None:
    """Encode ``seconds`` of stereo audio into ``stream`` of an open ``container`` (a 440 Hz tone,
    or silence with ``tone_hz=None``), converted to the encoder's sample format, then flush it."""
    sr = stream.codec_context.sample_rate
    fs = stream.codec_context.frame_size or 1024
    rs = av.AudioResampler(format=stream.codec_context.codec.audio_formats[0].name, layout="stereo", rate=sr)
    total = int(seconds * sr)
    for t in range(0, total, fs):
        m = min(fs, total - t)
        x = (np.zeros(m) if tone_hz is None else 0.2 * np.sin(2 * np.pi * tone_hz * np.arange(t, t + m) / sr))
        af = av.AudioFrame.from_ndarray(np.stack([x, x]).astype(np.float32), format="fltp", layout="stereo")
        af.sample_rate, af.pts = sr, t
        for rf in rs.resample(af):
            for p in stream.encode(rf):
                container.mux(p)
    for p in stream.encode(None):
        container.mux(p)


def write_pcm_clip(path: Path, video: Iterable[int], audio: Iterable[int], *, size=(64, 48)) -> Path:
    """A Matroska clip of 25 fps H.264 frames at the given frame indices (pts in 1/25 s) and
    8 kHz mono PCM in 40 ms blocks at the given block indices (block ``i`` starts at ``i`` / 25 s,
    with a constant level), so gaps and offsets between the two can be placed exactly."""
    w, h = size
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = c.add_stream("pcm_s16le", rate=8000)
        a.layout = "mono"
        for i in audio:
            af = av.AudioFrame.from_ndarray(np.full((1, 320), 1000, np.int16), format="s16", layout="mono")
            af.sample_rate, af.pts = 8000, i * 320
            c.mux(a.encode(af))
        for i in video:
            fr = av.VideoFrame.from_ndarray(np.full((h, w, 3), 7 * i % 255, np.uint8), format="rgb24")
            fr.pts = i
            c.mux(v.encode(fr))
        c.mux(v.encode(None))
        c.mux(a.encode(None))
    return path


def copy_through(src_path, dst, *, source_kw: dict | None = None, **sink_kw):
    """Decode ``src_path`` and encode every frame into ``dst`` through the project's own source
    and sink (``preset`` ultrafast unless given); returns the sink (its fallbacks, notes)."""
    from stream_gpen.io import open_sink, open_source

    with open_source(src_path, **(source_kw or {})) as src:
        sink_kw.setdefault("preset", "ultrafast")
        with open_sink(dst, source=src, **sink_kw) as sink:
            for f in src:
                sink.write(f)
    return sink


def ts_clip(path, n=25, *, bf=0, audio_s=None, size=(64, 48), t0: float = 0.0) -> bytearray:
    """An MPEG-TS clip (another container where ``path`` names one: .mp4, .mkv): ``n`` frames at
    25 fps (``bf`` B-frames) with its AAC audio (as long as the video, or ``audio_s`` seconds),
    both starting ``t0`` seconds into the stream's clock (a broadcast capture's is hours in)."""
    w, h = size
    with av.open(str(path), "w", format="mpegts" if Path(path).suffix in (".ts", "") else None) as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.options = {"bf": str(bf), "g": "25"}
        a = c.add_stream("aac", rate=8000, layout="mono")
        for i in range(n):
            fr = av.VideoFrame.from_ndarray(np.full((h, w, 3), 7 * i % 255, np.uint8), format="rgb24")
            fr.pts, fr.time_base = i + round(t0 * 25), Fraction(1, 25)
            for p in v.encode(fr):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        fs = a.codec_context.frame_size or 1024
        for k in range(0, round((n / 25 if audio_s is None else audio_s) * 8000), fs):
            af = av.AudioFrame.from_ndarray(np.zeros((1, fs), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 8000, k + round(t0 * 8000), Fraction(1, 8000)
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    return bytearray(path.read_bytes())


def ts_part(path, w: int, h: int, sar: Fraction | None, t0: int, n: int = 25, *, grey: int = 255,
            options: dict | None = None) -> bytes:
    """``n`` flat ``grey`` frames of ``w`` x ``h`` stored pixels of shape ``sar`` (``None``: no
    SAR in the stream) at 25 fps from pts ``t0``, as MPEG-TS bytes: parts to join into a TS
    whose picture changes mid-stream."""
    with av.open(str(path), "w", format="mpegts") as c:
        s = c.add_stream("libx264", rate=25, options=options if options is not None else {"bf": "0"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if sar is not None:
            s.codec_context.sample_aspect_ratio = sar
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(np.full((h, w, 3), grey, np.uint8), format="rgb24")
            vf.pts = t0 + i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return Path(path).read_bytes()


def damage_pes(data: bytearray, kind: str, k: int, seconds: float, *, dts_too: bool = True) -> None:
    """Add ``seconds`` to the PTS (and the DTS, where ``dts_too``) of the ``k``-th (``-1``: the
    last) ``kind`` ("video" or "audio") PES header, as a bit flipped high in it does."""
    def get(off):
        b = data[off:off + 5]
        return ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | (b[4] >> 1)

    def put(off, v, prefix):
        v &= (1 << 33) - 1
        data[off] = (prefix << 4) | (((v >> 30) & 7) << 1) | 1
        data[off + 1], data[off + 2] = (v >> 22) & 0xFF, (((v >> 15) & 0x7F) << 1) | 1
        data[off + 3], data[off + 4] = (v >> 7) & 0xFF, ((v & 0x7F) << 1) | 1

    heads = []  # (offset of the PTS field, has a DTS)
    for i in range(0, len(data), 188):
        p = data[i:i + 188]
        if p[0] != 0x47 or not p[1] & 0x40:
            continue  # (not the start of a PES)
        afc, off = (p[3] >> 4) & 3, 4
        if afc & 2:
            off += 1 + p[4]
        if not afc & 1 or p[off:off + 3] != b"\x00\x00\x01" or not p[off + 7] & 0x80:
            continue
        sid = p[off + 3]
        if (0xE0 <= sid <= 0xEF) == (kind == "video") and (0xC0 <= sid <= 0xEF):
            heads.append((i + off + 9, bool(p[off + 7] & 0x40)))
    h, has_dts = heads[k]
    d = round(seconds * 90000)
    put(h, get(h) + d, 3 if has_dts else 2)
    if has_dts and dts_too:
        put(h + 5, get(h + 5) + d, 1)


def read_times(path):
    """(frame times, audio packet times, the source's fallbacks) of ``path``."""
    from stream_gpen.io import open_source

    with open_source(str(path)) as src:
        src.aux.subscribe()
        times = []
        for f in src:
            times.append(f.time)
            f.release()
        audio = [float(p.pts * p.time_base) for p in src.aux.take_until(None) if p.size and p.stream.type == "audio"]
        fallbacks = list(src.fallbacks)
    return times, audio, fallbacks


def window_frames(path, **window) -> list[tuple[float, int]]:
    """(time, grey level) of each frame ``open_source`` gives of ``path`` in ``window``."""
    from stream_gpen.io import open_source

    with open_source(str(path), **window) as src:
        out = []
        for f in src:
            out.append((round(f.time, 4), int(f.image[0, 0, 0])))
            f.release()
    return out


def audio_tail_clip(path: Path, *, frames: int = 50, audio_s: float = 5.0) -> Path:
    """``frames`` 64x48 frames at 25 fps with AAC audio running ``audio_s`` seconds, past the last
    picture: the container's duration is the audio's, the video stream's its own."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=48000, layout="stereo")
        for i in range(frames):
            fr = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 4 * i % 256, np.uint8), format="rgb24")
            fr.pts, fr.time_base = i, Fraction(1, 25)
            for p in v.encode(fr):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        write_audio(c, a, audio_s)
    return path


def fed_fifo(path: Path, data: bytes):
    """A named pipe at ``path`` and a started daemon thread writing ``data`` into it (it blocks
    until a reader opens the pipe): join it once the pipe has been read."""
    import os
    import threading

    os.mkfifo(path)

    def write():
        with open(path, "wb") as w:
            w.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer


def two_angles(path):
    """An mp4 of two video tracks (64x48 and 32x24, 25 frames each) and no audio."""
    with av.open(str(path), "w") as c:
        streams = []
        for w, h in ((64, 48), (32, 24)):
            s = c.add_stream("libx264", rate=25, options={"bf": "0"})
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            streams.append(s)
        for i in range(25):
            for s in streams:
                f = av.VideoFrame.from_ndarray(np.full((s.height, s.width, 3), 9 * i, np.uint8), format="rgb24")
                f.pts, f.time_base = i, Fraction(1, 25)
                for p in s.encode(f):
                    c.mux(p)
        for s in streams:
            for p in s.encode():
                c.mux(p)
    return path
