"""Video sources, sinks and the frame ring: real shared clips plus synthetic files made here."""
from __future__ import annotations

import re
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from stream_gpen.errors import (
    EmptyMediaError,
    Interrupted,
    InvalidInputError,
    MediaNotFoundError,
    NotMediaError,
    NoVideoStreamError,
    OutputExistsError,
    RingExhaustedError,
    StreamGpenError,
)
from stream_gpen.io import FrameReleasedError, open_sink, open_source
from tests._clips import write_pcm_clip

SHARED_CLIPS = {  # frame counts from shared/data/videos/SOURCES.md
    "retalking_face2_frontal_talking_head.mp4": (125, 844, 844, True),
    "hamilton_stage_lowlight_multiface.mp4": (275, 640, 360, True),
    "facenet_crowd_1080p_multiface.mp4": (105, 1920, 1080, True),
    "liveportrait_d13_phone_selfie_portrait.mp4": (352, 720, 1280, False),
    "keep_real4_old_tv_lowres.mp4": (300, 388, 512, False),
    "upscaleavideo_old_movie1_bw_noface.mp4": (27, 480, 352, False),
}


def pattern(i: int, h: int, w: int) -> np.ndarray:
    """Smooth moving gradient: compresses well, so PSNR after a round trip is meaningful."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 9.0 + i / 3.0)
    g = 128 + 100 * np.cos(y / 7.0 - i / 4.0)
    b = 128 + 60 * np.sin((x + y) / 13.0)
    return np.stack([r, g, b], -1).round().astype(np.uint8)


def make_clip(path: Path, *, n=12, w=64, h=48, pts=None, tb=Fraction(1, 25), audio: str | None = None,
              rotation: int = 0, color_range: int | None = None, codec="libx264", pix_fmt="yuv420p") -> list[np.ndarray]:
    frames = [pattern(i, h, w) for i in range(n)]
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=25)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        vs.time_base = tb
        vs.codec_context.time_base = tb
        vs.codec_context.options = {"crf": "10", "preset": "ultrafast"} if codec == "libx264" else {}
        if color_range is not None:
            vs.codec_context.color_range = color_range
        if rotation:
            vs.set_display_rotation(rotation)
        astream = None
        if audio:
            astream = out.add_stream(audio, rate=48000 if audio == "libopus" else 44100)
            astream.layout = "mono"
        for i, arr in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format=pix_fmt)
            if color_range is not None:
                vf.color_range = color_range
            vf.pts = pts[i] if pts is not None else i * int(1 / (tb * 25))
            vf.time_base = tb
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        if astream is not None:
            rate = astream.codec_context.sample_rate
            fmt = astream.codec_context.codec.audio_formats[0].name
            total = int(rate * n / 25)
            t = np.arange(total) / rate
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            chunk = astream.codec_context.frame_size or 1024
            for k, s0 in enumerate(range(0, total, chunk)):
                block = samples[s0:s0 + chunk]
                if fmt == "s16":
                    block = (block * 32767).astype(np.int16)
                af = av.AudioFrame.from_ndarray(block[None, :], format=fmt, layout="mono")
                af.sample_rate, af.pts = rate, s0
                for p in astream.encode(af):
                    out.mux(p)
            for p in astream.encode(None):
                out.mux(p)
    return frames


def transcode(src_path, dst_path, **sink_kw) -> tuple:
    with open_source(src_path) as src:
        with open_sink(dst_path, source=src, **sink_kw) as sink:
            for f in src:
                sink.write(f)
    return src, sink


def decode_all(path) -> list[np.ndarray]:
    with open_source(path) as src:
        out = []
        for f in src:
            out.append(f.image.numpy().copy())
            f.release()
    return out


def packet_times(path, kind) -> list[float]:
    with av.open(str(path)) as c:
        s = [x for x in c.streams if x.type == kind][0]
        return sorted(float(p.pts * p.time_base) for p in c.demux(s) if p.size and p.pts is not None)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


# --- shared clips -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SHARED_CLIPS))
def test_shared_clips_decode_with_documented_frame_counts(shared, name):
    n, w, h, has_audio = SHARED_CLIPS[name]
    path = shared / "data" / "videos" / name
    with open_source(path, ring_size=4, count_frames=True) as src:
        count = 0
        for f in src:
            assert f.image.shape == (h, w, 3) and f.image.dtype == torch.uint8
            assert f.index == count
            count += 1
            f.release()
    assert count == n == src.metadata.frame_count
    assert (src.metadata.width, src.metadata.height) == (w, h)
    assert bool(src.metadata.audio) == has_audio
    assert isinstance(src.metadata.frame_rate, Fraction) and isinstance(src.metadata.time_base, Fraction)
    assert src.stats["corrupt_packets"] == 0


def test_shared_metadata_fields(shared):
    vids = shared / "data" / "videos"
    with open_source(vids / "hamilton_stage_lowlight_multiface.mp4") as src:
        m = src.metadata
    assert m.frame_rate == Fraction(2997, 100)  # not 30000/1001, not int(fps)
    assert m.color_range == "limited" and m.audio[0].codec == "aac" and m.audio[0].sample_rate == 44100
    with open_source(vids / "upscaleavideo_old_movie1_bw_noface.mp4") as src:
        assert src.metadata.pix_fmt == "yuvj420p" and src.metadata.color_range == "full"


def test_shared_clip_roundtrip_keeps_audio_packets_and_pts(shared, tmp_path):
    clip = shared / "data" / "videos" / "hamilton_stage_lowlight_multiface.mp4"
    out = tmp_path / "out.mp4"
    src, sink = transcode(clip, out, preset="ultrafast", crf=18)
    assert sink.frames_written == 275 and sink.dropped == [] and sink.fallbacks == []
    assert packet_times(out, "audio") == packet_times(clip, "audio")
    assert packet_times(out, "video") == packet_times(clip, "video")
    a, b = decode_all(clip), decode_all(out)
    assert len(a) == len(b) == 275
    assert min(psnr(x, y) for x, y in zip(a[::25], b[::25])) > 30


# --- synthetic round trips ----------------------------------------------------------------------
def test_roundtrip_psnr_and_pts(tmp_path):
    clip = tmp_path / "in.mp4"
    frames = make_clip(clip, n=10)
    out = tmp_path / "out.mkv"
    transcode(clip, out, crf=12, preset="ultrafast")
    back = decode_all(out)
    assert len(back) == 10
    assert min(psnr(a, b) for a, b in zip(frames, back)) > 32


def test_vfr_keeps_every_pts(tmp_path):
    pts = [0, 40, 50, 130, 140, 300, 310, 311, 500, 733]
    clip = tmp_path / "vfr.mkv"
    make_clip(clip, n=len(pts), pts=pts, tb=Fraction(1, 1000))
    with open_source(clip) as src:
        got = []
        for f in src:
            got.append(f.pts)
            assert f.time == pytest.approx(f.pts / 1000)
            f.release()
    assert got == pts
    out = tmp_path / "vfr_out.mp4"
    transcode(clip, out, preset="ultrafast")
    assert packet_times(out, "video") == pytest.approx([p / 1000 for p in pts])


def test_audio_copy_in_sync_and_transcode_when_container_refuses(tmp_path):
    clip = tmp_path / "a.mkv"
    make_clip(clip, n=20, audio="pcm_s16le")
    out = tmp_path / "copy.mkv"
    _, sink = transcode(clip, out, preset="ultrafast")
    assert sink.fallbacks == [] and packet_times(out, "audio") == packet_times(clip, "audio")
    # webm cannot hold pcm: audio becomes opus, and the sink says so
    out2 = tmp_path / "t.webm"
    _, sink2 = transcode(clip, out2, codec="vp9", crf=40, preset=None)
    assert any("transcoded to libopus" in m for m in sink2.fallbacks)
    with av.open(str(out2)) as c:
        assert c.streams.audio[0].codec_context.name == "opus"
        dur = float(c.streams.audio[0].duration * c.streams.audio[0].time_base) if c.streams.audio[0].duration else None
    assert packet_times(out2, "audio")[0] == pytest.approx(0.0, abs=0.03)
    assert dur is None or dur == pytest.approx(20 / 25, abs=0.1)


def test_audio_none_is_reported(tmp_path):
    clip = tmp_path / "a.mp4"
    make_clip(clip, n=6, audio="aac")
    _, sink = transcode(clip, tmp_path / "o.mp4", audio="none", preset="ultrafast")
    assert any("no audio asked for (--audio none" in d for d in sink.dropped)
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert not c.streams.audio


def test_rotation_and_full_range_survive(tmp_path):
    clip = tmp_path / "rot.mp4"
    make_clip(clip, n=4, rotation=90, color_range=2)
    with open_source(clip) as src:
        assert src.metadata.rotation == 90 and src.metadata.color_range == "full"
        for f in src:
            assert f.image.shape == (48, 64, 3)  # pixels as stored; rotation stays metadata
            f.release()
    out = tmp_path / "rot_out.mp4"
    transcode(clip, out, preset="ultrafast")
    with open_source(out) as src:
        assert src.metadata.rotation == 90 and src.metadata.color_range == "full"


def test_full_range_colours_roundtrip(tmp_path, shared):
    clip = shared / "data" / "videos" / "upscaleavideo_old_movie1_bw_noface.mp4"
    out = tmp_path / "bw.mp4"
    transcode(clip, out, crf=10, preset="ultrafast")
    a, b = decode_all(clip), decode_all(out)
    assert min(psnr(x, y) for x, y in zip(a, b)) > 35
    assert abs(float(a[5].mean()) - float(b[5].mean())) < 1.0  # no range squeeze/stretch


@pytest.mark.parametrize("odd_size, expect", [("pad", (66, 50)), ("crop", (64, 48))])
def test_odd_size(tmp_path, odd_size, expect):
    clip = tmp_path / "odd.mkv"
    make_clip(clip, n=3, w=65, h=49, codec="ffv1", pix_fmt="yuv420p")
    with open_source(clip) as src:
        assert src.metadata.size == (65, 49)
        with open_sink(tmp_path / "o.mp4", source=src, odd_size=odd_size, preset="ultrafast") as sink:
            for f in src:
                sink.write(f)
    assert any("odd frame size 65x49" in m for m in sink.fallbacks)
    with open_source(tmp_path / "o.mp4") as s2:
        assert s2.metadata.size == expect


# --- errors -------------------------------------------------------------------------------------
def test_missing_empty_garbage_audio_only(tmp_path):
    with pytest.raises(MediaNotFoundError, match="input not found"):
        open_source(tmp_path / "nope.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(EmptyMediaError, match="0 bytes"):
        open_source(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(NotMediaError, match="cannot read .* as media"):
        open_source(tmp_path / "junk.mp4")
    a = tmp_path / "audio.m4a"
    with av.open(str(a), "w") as out:
        s = out.add_stream("aac", rate=44100)
        s.layout = "mono"
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts = 44100, 0
        for p in list(s.encode(af)) + list(s.encode(None)):
            out.mux(p)
    with pytest.raises(NoVideoStreamError, match="no video stream"):
        open_source(a)
    # leaves are also built-ins
    assert issubclass(MediaNotFoundError, FileNotFoundError) and issubclass(NotMediaError, ValueError)


def test_truncated_mp4_and_corrupt_ts(tmp_path):
    clip = tmp_path / "c.mp4"
    make_clip(clip, n=30)
    data = clip.read_bytes()
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: unreadable
    with pytest.raises(NotMediaError, match="truncated"):
        open_source(trunc)
    ts = tmp_path / "c.ts"
    make_clip(ts, n=60, w=128, h=96)
    raw = bytearray(ts.read_bytes())
    rng = np.random.default_rng(1)
    mid = len(raw) // 2
    raw[mid:mid + 3000] = rng.bytes(3000)
    bad = tmp_path / "bad.ts"
    bad.write_bytes(bytes(raw[: int(len(raw) * 0.9)]))
    with open_source(bad) as src:
        n = 0
        for f in src:
            n += 1
            f.release()
    assert 30 <= n <= 60  # decoding went on past the damage and the cut


def test_sink_refuses_existing_and_bad_options(tmp_path):
    (tmp_path / "x.mp4").write_bytes(b"1")
    with pytest.raises(OutputExistsError, match="output exists"):
        open_sink(tmp_path / "x.mp4")
    with pytest.raises(InvalidInputError, match=r"codec='x265' is not one of \('auto', 'h264', 'hevc', 'av1', 'vp9', 'prores'\)"):
        open_sink(tmp_path / "y.mp4", codec="x265")
    with pytest.raises(InvalidInputError, match=r"audio='mp3' is not one of"):
        open_sink(tmp_path / "y.mp4", audio="mp3")
    with pytest.raises(InvalidInputError, match="decode='gpu' is not one of"):
        open_source("lavfi:testsrc2=size=64x48:rate=25", decode="gpu")


# --- atomic write / interrupt ------------------------------------------------------------------
def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def test_ctrl_c_leaves_playable_partial(tmp_path):
    clip = tmp_path / "in.mp4"
    make_clip(clip, n=40, audio="aac")
    target = tmp_path / "out.mp4"
    with pytest.raises(Interrupted, match=re.escape(str(tmp_path / "out.partial.mp4"))) as ei:
        with open_source(clip) as src:
            with open_sink(target, source=src, preset="ultrafast") as sink:
                for f in src:
                    sink.write(f)
                    if f.index == 14:
                        raise KeyboardInterrupt
    assert isinstance(ei.value, KeyboardInterrupt) and ei.value.exit_code == 130
    assert not target.exists() and _leftovers(tmp_path) == []
    partial = tmp_path / "out.partial.mp4"
    back = decode_all(partial)
    assert len(back) == 15
    with av.open(str(partial)) as c:
        assert c.streams.audio  # audio up to the cut is kept


def test_error_leaves_no_output_but_keeps_the_frames_done(tmp_path):
    # an error mid-run (the restorer, the device, the source) leaves nothing under the target's
    # name, and the frames encoded before it are kept as .partial, as a Ctrl-C keeps them
    clip = tmp_path / "in.mp4"
    make_clip(clip, n=20)
    target = tmp_path / "out.mp4"
    with pytest.raises(ZeroDivisionError):
        with open_source(clip) as src:
            with open_sink(target, source=src, preset="ultrafast") as sink:
                for f in src:
                    sink.write(f)
                    if f.index == 5:
                        1 / 0
    assert not target.exists() and _leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.partial.mp4"]
    assert len(decode_all(tmp_path / "out.partial.mp4")) == 6 and sink.partial_path == tmp_path / "out.partial.mp4"


def test_error_before_any_frame_leaves_nothing(tmp_path):
    clip = tmp_path / "in.mp4"
    make_clip(clip, n=4)
    target = tmp_path / "out.mp4"
    with pytest.raises(ZeroDivisionError):
        with open_source(clip) as src:
            with open_sink(target, source=src, preset="ultrafast"):
                1 / 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_success_is_atomic_rename(tmp_path):
    clip = tmp_path / "in.mp4"
    make_clip(clip, n=5)
    seen = []
    with open_source(clip) as src:
        with open_sink(tmp_path / "out.mp4", source=src, preset="ultrafast") as sink:
            for f in src:
                sink.write(f)
            # The writer thread opens its temporary file when it gets the first frame: wait for
            # it (bounded) rather than race it; the final name must not exist before close.
            deadline = time.monotonic() + 20
            while not any(".tmp" in p.name for p in tmp_path.iterdir()) and time.monotonic() < deadline:
                time.sleep(0.02)
            seen = sorted(p.name for p in tmp_path.iterdir())
    assert "out.mp4" not in seen and any(".tmp" in n for n in seen)
    assert (tmp_path / "out.mp4").exists() and _leftovers(tmp_path) == []


# --- ring ---------------------------------------------------------------------------------------
def test_ring_slot_reuse_and_misuse(tmp_path):
    clip = tmp_path / "in.mp4"
    make_clip(clip, n=12)
    with open_source(clip, ring_size=3) as src:
        f0 = next(src)
        img0 = f0.image.clone()
        f0.release()
        f0.release()  # idempotent
        with pytest.raises(FrameReleasedError, match="was released"):
            f0.image
        held = [next(src) for _ in range(3)]
        with pytest.raises(RingExhaustedError, match="all 3 frame-ring slots are held"):
            next(src)
        assert len({f.slot for f in held}) == 3
        for f in held:
            f.release()
        rest = []
        for f in src:
            rest.append(f.index)
            f.release()
    assert rest == list(range(4, 12))
    assert img0.shape == (48, 64, 3)


def test_decoder_exception_reaches_caller(tmp_path, monkeypatch):
    clip = tmp_path / "in.mp4"
    make_clip(clip, n=12)
    src = open_source(clip, ring_size=2)
    real = src._emit

    def boom(f, index):
        if index == 4:
            raise MemoryError("simulated")
        real(f, index)

    monkeypatch.setattr(src, "_emit", boom)
    got = []
    with pytest.raises(MemoryError, match="simulated"):
        with src:
            for f in src:
                got.append(f.index)
                f.release()
    assert got == [0, 1, 2, 3]
    assert not src._thread.is_alive()


def test_backpressure_bounds_decoder(tmp_path):
    clip = tmp_path / "in.mp4"
    make_clip(clip, n=30)
    with open_source(clip, ring_size=3) as src:
        first = next(src)
        src._thread.join(timeout=1.0)  # the decoder must be blocked on the full ring, not finished
        assert src._thread.is_alive()
        assert src.stats["decoded"] <= 4
        first.release()
        n = 1 + sum(1 for f in src if f.release() is None)
    assert n == 30


def test_close_midway_stops_thread(tmp_path):
    clip = tmp_path / "in.mp4"
    make_clip(clip, n=30)
    with open_source(clip, ring_size=2) as src:
        next(src)  # never released: close must not hang on it
    assert not src._thread.is_alive()


def test_lavfi_live_drops_stale_frames():
    # (paced at its own rate, as a live source: 100 frames at 100 fps take a second)
    with open_source("lavfi:testsrc2=size=64x48:rate=100:duration=1", ring_size=2) as src:
        assert src.metadata.live and src.metadata.kind == "lavfi"
        f = next(src)
        src._thread.join(timeout=0.6)  # a slow consumer: the decoder keeps only the newest frames
        last = f.index
        f.release()
        idx = []
        for g in src:
            idx.append(g.index)
            g.release()
    assert src.stats["dropped"] > 0 and idx[-1] == 99 and len(idx) < 99 - last


def test_null_sink_and_url_sink_validation(tmp_path):
    with open_source("lavfi:testsrc2=size=64x48:rate=25:duration=0.4", live=False) as src:
        with open_sink("null", source=src) as sink:
            for f in src:
                sink.write(f)
    assert sink.frames_written == 10 and src.stats["dropped"] == 0
    with pytest.raises(InvalidInputError, match="scheme 'gopher'"):
        from stream_gpen.io import FileSink

        FileSink("gopher://x", is_url=True)


def test_udp_stream_sink_writes(tmp_path):
    # a stream sink to a local UDP port (no listener needed): frames are encoded and sent
    with open_source("lavfi:testsrc2=size=64x48:rate=25:duration=0.4", live=False) as src:
        with open_sink("udp://127.0.0.1:45999?pkt_size=1316", source=src, preset="ultrafast") as sink:
            for f in src:
                sink.write(f)
    assert sink.frames_written == 10


def test_errors_have_exit_codes():
    assert RingExhaustedError.exit_code == 4 and issubclass(RingExhaustedError, StreamGpenError)


# --- CUDA (run on a lent GPU; skipped here) -------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("decode", ["cpu", "nvdec"])
def test_cuda_ring_matches_cpu_decode(tmp_path, decode):
    clip = tmp_path / "in.mp4"
    make_clip(clip, n=8, w=256, h=144)
    ref = decode_all(clip)
    with open_source(clip, device="cuda", decode=decode, ring_size=3) as src:
        got = []
        for f in src:
            assert f.image.is_cuda
            got.append(f.image.cpu().numpy())
            f.release()
    if decode == "nvdec" and any("NVDEC failed to open" in m for m in src.fallbacks):
        # The lent H200 VM exposes no video engine (EOPNOTSUPP); the CPU fallback was checked above.
        pytest.skip(f"NVDEC not available on this machine: {src.fallbacks}")
    assert src.fallbacks == []
    assert len(got) == len(ref)
    for a, b in zip(ref, got):
        d = np.abs(a.astype(int) - b.astype(int))
        if decode == "cpu":
            assert d.max() == 0
        else:
            assert d.mean() < 1.5


@pytest.mark.cuda
def test_cuda_roundtrip_through_sink(tmp_path):
    clip = tmp_path / "in.mp4"
    make_clip(clip, n=6, audio="aac")
    with open_source(clip, device="cuda") as src:
        with open_sink(tmp_path / "o.mp4", source=src, crf=12, preset="ultrafast") as sink:
            for f in src:
                f.image[:4, :4] = 255  # in-place edit on the device slot is what gets encoded
                sink.write(f)
    back = decode_all(tmp_path / "o.mp4")
    assert len(back) == 6 and back[0][:2, :2].min() > 200
    assert packet_times(tmp_path / "o.mp4", "audio") == packet_times(clip, "audio")


@pytest.mark.parametrize("name", ["hamilton_stage_lowlight_multiface.mp4", "upscaleavideo_old_movie1_bw_noface.mp4"])
def test_nv12_torch_conversion_matches_swscale(shared, name):
    """The NVDEC path's NV12->RGB maths, run on CPU tensors exposed through DLPack like on the GPU."""
    from stream_gpen.io._convert import av_to_rgb_numpy, is_full_range, nv12_to_rgb

    with av.open(str(shared / "data" / "videos" / name)) as c:
        f = next(c.decode(video=0))
    nv = f.reformat(format="nv12")
    out = torch.empty((f.height, f.width, 3), dtype=torch.uint8)
    nv12_to_rgb(torch.from_dlpack(nv.planes[0]), torch.from_dlpack(nv.planes[1]), out,
                colorspace=f.colorspace, full_range=is_full_range(f.format.name, f.color_range))
    d = np.abs(out.numpy().astype(int) - av_to_rgb_numpy(f).astype(int))
    assert d.max() <= 1 and d.mean() < 0.01  # both repeat chroma and round the float conversion


def test_http_source_reads_file_then_live_reconnect_gives_up(tmp_path):
    import http.server
    import functools

    clip = tmp_path / "c.ts"
    make_clip(clip, n=10)
    hits = []

    class OneShot(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if len(hits) > 2:  # the "camera" goes away after the first two connections
                self.send_error(404)
                return
            super().do_GET()

        def send_header(self, key, value):
            # the live read (2nd connection) is a feed: no length, the data ends with the connection
            # (an answer with a length is a file, which ends at its end instead of reconnecting)
            if len(hits) == 2 and key.lower() == "content-length":
                key, value = "Connection", "close"
            super().send_header(key, value)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(OneShot, directory=str(tmp_path)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/c.ts"
    try:
        with open_source(url) as src:  # http: not live, the end of the file is the end
            assert not src.metadata.live and src.metadata.kind == "url"
            assert sum(1 for f in src if f.release() is None) == 10
        from stream_gpen.errors import SourceClosedError

        # once open, a reconnect that meets a 404 (the camera went away) is a stream that failed
        # while running: retried, then SourceClosedError (exit 4), never a bad-input exit 2
        with pytest.raises(SourceClosedError, match="did not come back after 2 reconnect attempts") as ei:
            with open_source(url, live=True, reconnect=2, reconnect_delay_s=0.01) as src:
                for f in src:
                    f.release()
        assert src.stats["reconnects"] == 2
        assert ei.value.exit_code == 4 and "[Errno" not in str(ei.value)
    finally:
        srv.shutdown()


def test_preset_validation(tmp_path):
    with pytest.raises(InvalidInputError, match=r"preset='turbo' for codec='h264' is not one of \('ultrafast'"):
        open_sink(tmp_path / "a.mp4", preset="turbo")


def test_autorotate_makes_frames_upright(tmp_path):
    clip = tmp_path / "rot.mkv"
    frames = make_clip(clip, n=3, w=64, h=48, rotation=90, codec="ffv1", pix_fmt="yuv444p")
    with open_source(clip, autorotate=True) as src:
        m = src.metadata
        assert (m.width, m.height, m.rotation, m.extra["applied_rotation"]) == (48, 64, 0, 90)
        f = next(src)
        img = f.image.numpy().copy()
        f.release()
    upright = np.rot90(frames[0], 1, (0, 1))  # 90 degrees counter-clockwise, as players show it
    assert img.shape == upright.shape and psnr(img, upright) > 35
    out = tmp_path / "o.mp4"
    with open_source(clip, autorotate=True) as src:
        with open_sink(out, source=src, preset="ultrafast") as sink:
            for f in src:
                sink.write(f)
    with open_source(out) as s2:
        assert s2.metadata.rotation == 0 and s2.metadata.size == (48, 64)


def test_frame_validation_and_from_tensor(tmp_path):
    with pytest.raises(ValueError, match=r"uint8 \[H, W, 3\]"):
        from stream_gpen.io import Frame

        Frame.from_tensor(torch.zeros(4, 4, 3))
    from stream_gpen.io import Frame

    frames = [Frame.from_tensor(torch.from_numpy(pattern(i, 32, 48)), index=i, pts=i * 2, time_base=Fraction(1, 50))
              for i in range(5)]
    with open_sink(tmp_path / "o.mkv", preset="ultrafast", crf=10) as sink:  # no source: frames carry everything
        for f in frames:
            sink.write(f)
    assert all(f.released for f in frames)
    assert packet_times(tmp_path / "o.mkv", "video") == pytest.approx([i * 2 / 50 for i in range(5)], abs=1e-3)


def test_subtitles_copied_or_dropped_with_reason(tmp_path):
    clip = tmp_path / "v.mkv"
    make_clip(clip, n=25, audio="aac")
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,100 --> 00:00:00,400\nhello\n\n2\n00:00:00,500 --> 00:00:00,900\nworld\n")
    both = tmp_path / "vs.mkv"
    with av.open(str(clip)) as a, av.open(str(srt)) as s, av.open(str(both), "w") as out:
        m = {a.streams.video[0]: out.add_stream_from_template(a.streams.video[0]),
             a.streams.audio[0]: out.add_stream_from_template(a.streams.audio[0]),
             s.streams.subtitles[0]: out.add_stream_from_template(s.streams.subtitles[0])}
        for c in (a, s):
            for p in c.demux():
                if p.size:
                    p.stream = m[p.stream]
                    out.mux(p)
    with open_source(both) as src:
        assert [x.codec for x in src.metadata.subtitles] == ["subrip"]
    out_mkv = tmp_path / "o.mkv"
    _, sink = transcode(both, out_mkv, preset="ultrafast")
    assert sink.dropped == [] and packet_times(out_mkv, "subtitle") == packet_times(both, "subtitle")
    assert packet_times(out_mkv, "audio") == packet_times(both, "audio")
    out_mp4 = tmp_path / "o.mp4"
    _, sink = transcode(both, out_mp4, preset="ultrafast")  # mp4 takes mov_text, not subrip: converted
    assert sink.dropped == [] and any("subtitle stream #2 (subrip) converted to mov_text" in f for f in sink.fallbacks)
    with av.open(str(out_mp4)) as c:
        assert c.streams.subtitles[0].codec_context.name == "mov_text"


# --- interlaced sources ---------------------------------------------------------------------------
def _interlaced_clip(path, n=8, w=320, h=240):
    """A bright bar moving right, each frame's two fields half a frame apart (top field first),
    encoded interlaced: decoded as is, its edges comb."""
    from tests._clips import write_video

    def frames():
        for i in range(n):
            img = np.full((h, w, 3), 40, np.uint8)
            for field, dt in ((0, 0.0), (1, 0.5)):
                x = int(40 + 12 * (i + dt))
                rows = np.arange(field, h, 2)
                img[rows[(rows > 60) & (rows < 180)], x : x + 60] = 220
            yield img

    write_video(path, frames(), options={"preset": "ultrafast", "crf": "12", "x264-params": "tff=1"})


def _combing(img: np.ndarray) -> float:
    g = img.astype(np.float32).mean(2)
    return float(np.abs(g[1:-1] - (g[:-2] + g[2:]) / 2).mean())


def test_interlaced_video_is_deinterlaced_with_its_timestamps(tmp_path):
    clip = tmp_path / "interlaced.mp4"
    _interlaced_clip(clip)
    got = {}
    for mode in ("auto", "off"):
        with open_source(clip, deinterlace=mode) as src:
            rows = []
            for f in src:
                rows.append((f.pts, f.time, _combing(f.image.numpy())))
                f.release()
            got[mode] = (src.metadata, rows)
    (m_auto, auto), (m_off, off) = got["auto"], got["off"]
    # (x264's tff=1 is its header's word; FFmpeg's libx264 flags each picture from the frame it is
    # given, unflagged here: bottom first, which players, bwdif and the source go by)
    assert m_off.interlaced == "bb" and "deinterlaced_from" not in m_off.extra
    assert m_auto.interlaced == "progressive" and m_auto.extra["deinterlaced_from"] == "bb"
    # every frame out, once, with the decoder's own timestamps
    assert [r[:2] for r in auto] == [r[:2] for r in off] and len(auto) == 8
    # the combs are gone: line-to-line alternation drops by an order of magnitude
    assert np.mean([r[2] for r in auto]) < 0.2 * np.mean([r[2] for r in off])


def test_progressive_video_is_not_filtered(tmp_path):
    clip = tmp_path / "progressive.mp4"
    make_clip(clip, n=4)
    with open_source(clip) as a, open_source(clip, deinterlace="off") as b:
        assert a.metadata.interlaced == "progressive" and "deinterlaced_from" not in a.metadata.extra
        for fa, fb in zip(a, b):
            assert torch.equal(fa.image, fb.image)
            fa.release()
            fb.release()
    with pytest.raises(InvalidInputError, match=r"deinterlace must be one of \('auto', 'off'\), got 'yadif'"):
        open_source(clip, deinterlace="yadif")


# --- AVI input timing --------------------------------------------------------------------------
@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_avi_input_frames_keep_their_chunk_times(tmp_path, codec):
    # AVI has no pts: frame k is chunk k. FFmpeg's H.264 parser guesses every pts one frame
    # later (k+1), which put the whole video a frame behind the audio; MPEG-4 reads right.
    path = tmp_path / f"{codec}.avi"
    # PCM audio: no encoder priming, so a clean chunk timeline; x264 ultrafast has no B-frames
    make_clip(path, n=10, codec=codec, audio="pcm_s16le")
    with av.open(str(path)) as c:
        guessed = [f.pts for f in c.decode(video=0)]
    if codec == "libx264":
        assert guessed[0] == 1  # FFmpeg's guess that this fixes; if it changes, the shift is 0
    times = []
    with open_source(path) as src:
        for fr in src:
            times.append(fr.time)
            fr.release()
    assert times == pytest.approx([k / 25 for k in range(10)])


def test_untrusted_file_is_read_with_media_demuxers_only(tmp_path):
    """Uploads (the server's video jobs) cannot be playlists that make FFmpeg read other files."""
    from stream_gpen.errors import InvalidInputError, NotMediaError

    seg = tmp_path / "secret.ts"
    make_clip(seg, n=4)  # .ts: an MPEG-TS file
    playlist = tmp_path / "list.m3u8"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:0.2,\nsecret.ts\n#EXT-X-ENDLIST\n")
    with open_source(playlist) as src:  # a user's own playlist on the command line: fine
        assert src.metadata.container == "hls" and sum(1 for f in src if not f.release()) == 4
    with pytest.raises(NotMediaError, match="untrusted upload is read with media containers only"):
        open_source(playlist, untrusted=True)
    with open_source(seg, untrusted=True) as src:  # a real media file is read as usual
        assert sum(1 for f in src if not f.release()) == 4
    with pytest.raises(InvalidInputError, match="an untrusted source must be a local file"):
        open_source("http://127.0.0.1:9/x.mp4", untrusted=True)
    from stream_gpen.errors import PayloadTooLargeError

    with pytest.raises(PayloadTooLargeError, match=r"video frames are 64x48 = 3072 pixels, over the limit of 3000"):
        open_source(seg, untrusted=True, max_pixels=3000)
    with open_source(seg, max_pixels=3072) as src:
        assert src.metadata.width * src.metadata.height == 3072


@pytest.mark.parametrize("pix", ["yuv420p", "yuv420p10le"])
def test_resolution_change_mid_stream_is_letterboxed(tmp_path, pix):
    """A transport stream whose picture size changes (TV/IPTV recordings, joined clips): every
    frame comes out at the first size, later pictures scaled with their aspect kept and centred
    on black, said once in ``fallbacks`` (before: an internal error that lost the whole job)."""
    def segment(path, w, h, n, start, value):
        with av.open(str(path), "w", format="mpegts") as o:
            s = o.add_stream("libx264", rate=25, options={"preset": "ultrafast", "qp": "0"})
            s.width, s.height, s.pix_fmt = w, h, pix
            for i in range(n):
                img = np.full((h, w, 3), value, np.uint8)
                f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=pix)
                f.pts = start + i
                for p in s.encode(f):
                    o.mux(p)
            for p in s.encode():
                o.mux(p)

    segment(tmp_path / "a.ts", 320, 240, 6, 0, 60)
    segment(tmp_path / "b.ts", 640, 360, 6, 6, 200)
    joined = tmp_path / "joined.ts"
    joined.write_bytes((tmp_path / "a.ts").read_bytes() + (tmp_path / "b.ts").read_bytes())
    with open_source(joined) as src:
        frames = []
        for f in src:
            frames.append((f.image.clone(), None if f.hi is None else f.hi.clone()))
            f.release()
        notes = list(src.fallbacks)
    assert len(frames) == 12 and all(tuple(im.shape) == (240, 320, 3) for im, _ in frames)
    last, last_hi = frames[-1]
    # 640x360 (16:9) into 320x240: 320x180 in the middle, 30-px black bars above and below
    assert int(last[:28].max()) == 0 and int(last[-28:].max()) == 0
    assert abs(float(last[40:200].float().mean()) - 200) < 3
    assert abs(float(frames[0][0].float().mean()) - 60) < 3
    if pix.endswith("10le"):
        assert last_hi is not None and last_hi.dtype == torch.uint16
        assert int(last_hi[:28].int().max()) == 0 and abs(float(last_hi[40:200].float().mean()) / 257 - 200) < 3
    assert sum("frame size changed mid-stream at frame 6: 640x360" in n and "letterboxed" in n for n in notes) == 1


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_start_and_duration_cut_video_audio_and_chapters(tmp_path, ext):
    """A window of a 5-s clip with audio and chapters: the frames from `start` for `duration`,
    written from 0, the audio of the same window (in sync, same length), chapters moved and cut."""
    from tests.test_fidelity import make_clip

    ch = make_clip(tmp_path / "chapters.mkv", w=64, h=48, n=125, audio=True, chapters=[
        {"id": 1, "start": 0, "end": 1500, "time_base": Fraction(1, 1000), "metadata": {"title": "a"}},
        {"id": 2, "start": 1500, "end": 5000, "time_base": Fraction(1, 1000), "metadata": {"title": "b"}}])
    n_all = 125
    dst = tmp_path / f"cut.{ext}"
    with open_source(ch, start=2.0, duration=1.5) as s, open_sink(dst, source=s, preset="ultrafast") as k:
        got = []
        for f in s:
            got.append(f.time)
            k.write(f)
    assert len(got) == 38 and got[0] == pytest.approx(2.0) and n_all == 125  # 2.00 .. 3.48 s at 25 fps
    with av.open(str(dst)) as c:
        v = [float(f.time) for f in c.decode(video=0)]
    with av.open(str(dst)) as c:
        a = [p for p in c.demux(audio=0) if p.size]
        chapters = c.chapters()
    assert len(v) == 38 and v[0] == pytest.approx(0.0, abs=1e-3) and v[-1] == pytest.approx(1.48, abs=1e-3)
    t0 = min(float(p.pts * p.time_base) for p in a)
    audio_len = sum(float(p.duration * p.time_base) for p in a)
    assert abs(t0) < 0.03 and abs(audio_len - 1.5) < 0.05  # the window's audio, starting with the video
    # chapter a (0-1.5 s) is before the window; b is cut to it: 0 .. 1.5 s
    assert [c["metadata"]["title"] for c in chapters] == ["b"]
    b = chapters[0]
    assert float(b["start"] * b["time_base"]) == pytest.approx(0.0) and float(b["end"] * b["time_base"]) == pytest.approx(1.5)


def test_start_counts_on_the_files_timeline(shared):
    """The stage clip's video starts 0.85 s after its audio: --start counts from the file's start,
    as players show time and FFmpeg's -ss does, not from the first video frame."""
    clip = shared / "data/videos/hamilton_stage_lowlight_multiface.mp4"
    firsts, counts = [], []
    for t in (0.5, 8.5):
        with open_source(clip, start=t, duration=0.5) as s:
            times = []
            for f in s:
                times.append(f.time)
                f.release()
        firsts.append(times[0])
        counts.append(len(times))
    assert firsts[0] == pytest.approx(0.852, abs=0.002)  # nothing before the video's own start
    assert 8.5 <= firsts[1] < 8.5 + 1 / 29.97 + 1e-3
    assert counts == [15, 15]  # the duration counts from the first frame kept: 0.5 s of video each


def test_start_and_duration_errors(tmp_path, shared):
    src = shared / "data/videos/retalking_face2_frontal_talking_head.mp4"
    with pytest.raises(InvalidInputError, match=r"start=9 s is past the end"):
        open_source(src, start=9.0)
    with pytest.raises(InvalidInputError, match="duration must be None or a number of seconds > 0"):
        open_source(src, duration=0)
    with pytest.raises(InvalidInputError, match="start must be a number of seconds >= 0"):
        open_source(src, start=-1)
    with pytest.raises(InvalidInputError, match="is a live source"):
        open_source("lavfi:testsrc2=size=64x48:rate=10", start=1.0)
    with open_source("lavfi:testsrc2=size=64x48:rate=10", duration=0.5) as s:  # a live source: duration only
        n = 0
        for f in s:
            n += 1
            f.release()
    assert 4 <= n <= 6


@pytest.mark.parametrize("codec", ["hevc", "av1"])
def test_encoders_do_not_print_their_banners(tmp_path, capfd, codec):
    """x265 and SVT-AV1 print ~25 lines of banner and statistics straight to stderr, past FFmpeg's
    log level: the sink turns them down to errors, so --quiet is quiet."""
    src = tmp_path / "in.mp4"
    make_clip(src, n=4)
    capfd.readouterr()
    with open_source(src) as s, open_sink(tmp_path / f"o_{codec}.mkv", source=s, codec=codec, preset=None) as k:
        for f in s:
            k.write(f)
    err = capfd.readouterr().err
    assert "x265 [info]" not in err and "Svt[info]" not in err, err[:500]


def test_transcoded_audio_keeps_a_gap_in_its_source(tmp_path):
    """Source audio with a 0.8 s dropout, re-encoded (audio='aac', or any .webm): the part after
    the gap must stay at its time. The encoder numbered samples back to back, so it played 0.75 s
    early (and the audio ended 0.8 s before the video)."""
    # 2.4 s of video; audio 0-0.8 s and 1.6-2.4 s
    src = write_pcm_clip(tmp_path / "gap.mkv", range(60), [i for i in range(60) if not 20 <= i < 40])

    def audio_span(path):
        with av.open(str(path)) as c:
            ps = [p for p in c.demux(audio=0) if p.size]
            return float(ps[0].pts * ps[0].time_base), float((ps[-1].pts + ps[-1].duration) * ps[-1].time_base)

    out = tmp_path / "o.mkv"
    with open_source(src) as s, open_sink(out, source=s, audio="aac", preset="ultrafast") as sink:
        for f in s:
            sink.write(f)
    first, last = audio_span(out)
    assert abs(first) < 0.2 and abs(last - 2.4) < 0.1, (first, last)  # (AAC primes with 1024 samples)
