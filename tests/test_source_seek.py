"""Where a trimmed read starts, and what a header's duration means, per container: ``start``
lands on the asked time in MPEG-TS too (whose seek ignores keyframes), and a Matroska file
whose streams start late (its Duration is then the end time) is neither "truncated" nor longer
than it is."""
from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np
import pytest

from stream_gpen.io import open_source
from stream_gpen.io._source import VideoSource, _header_span

FPS = 25


def make(path, *, n: int, start: float = 0.0, gop: int | None = None, bframes: int = 0,
         codec: str = "libx264") -> None:
    """``n`` frames of 64x48 video (H.264 by default) at 25 fps, the first at ``start`` s; frame k is grey
    level 9k, so a decoded frame tells which it is."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=FPS)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.codec_context.time_base = Fraction(1, FPS)
        if codec == "libx264":
            vs.options = {"bf": str(bframes), "preset": "ultrafast", "crf": "10",
                          **({"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"} if gop else {})}
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 9 * i % 256, np.uint8), format="rgb24")
            vf = vf.reformat(format="yuv420p")
            vf.pts, vf.time_base = i + round(start * FPS), Fraction(1, FPS)
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)


def read(path, **window) -> list[int]:
    """The frame numbers (see :func:`make`) that a trimmed read of a clip made from 1.4 s gives out."""
    with open_source(path, **window) as s:
        out = []
        for f in s:
            k = round(float(f.image.float().mean()) / 9)
            assert f.time == pytest.approx(1.4 + k / FPS, abs=1e-3)  # (made from 1.4 s) its own time
            out.append(k)
            f.release()
    return out


@pytest.mark.parametrize("gop, bframes", [(10, 0), (10, 2), (None, 0)])
def test_a_ts_window_starts_at_the_asked_time_not_at_the_next_keyframe(tmp_path, gop, bframes):
    # 2 s from 1.4 s (the usual MPEG-TS start), a keyframe every 0.4 s, or only the first one
    ts = tmp_path / "c.ts"
    make(ts, n=50, start=1.4, gop=gop, bframes=bframes)
    assert read(ts, start=0.5, duration=0.4) == list(range(13, 23))  # 0.52-0.88 s
    assert read(ts, start=0.0, duration=0.2) == list(range(5))


def test_other_containers_window_the_same_frames(tmp_path):
    for ext in ("mp4", "mkv"):
        p = tmp_path / f"c.{ext}"
        make(p, n=50, start=1.4, gop=10)
        assert read(p, start=0.5, duration=0.4) == list(range(13, 23)), ext


@pytest.mark.parametrize("ext", ["mkv", "webm", "mp4", "mov", "ts"])
def test_a_late_start_is_not_counted_twice_in_the_duration(tmp_path, ext):
    # FFmpeg writes Matroska's Duration as the end time (3 s + 1 s = 4 s); the others hold the span
    p = tmp_path / f"c.{ext}"
    make(p, n=25, start=3.0, codec="libvpx-vp9" if ext == "webm" else "libx264")
    with av.open(str(p)) as c:
        s0, end = _header_span(c)
    assert s0 == pytest.approx(3.0, abs=0.01) and end == pytest.approx(4.0, abs=0.05)
    with open_source(p) as s:
        assert s.metadata.duration_s == pytest.approx(1.0, abs=0.05)
        n = 0
        for f in s:
            n += 1
            f.release()
    assert n == 25
    assert not [m for m in s.fallbacks if "truncated" in m], s.fallbacks


def test_a_cut_matroska_file_that_starts_late_is_still_called_truncated(tmp_path):
    p = tmp_path / "c.mkv"
    make(p, n=100, start=3.0, gop=10)  # 4 s from 3 s
    data = p.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 5])  # (the Duration is in the header, at the top)
    with open_source(cut) as s:
        for f in s:
            f.release()
    assert [m for m in s.fallbacks if "looks truncated" in m and "of the 4.00 s" in m], s.fallbacks


def test_a_matroska_file_that_starts_late_and_ran_to_its_end_ended_like_a_file(tmp_path):
    # (how a "live" http(s) input tells a file that ended, not reconnected to, from a drop)
    p = tmp_path / "c.mkv"
    make(p, n=100, start=3.0, gop=25)  # 4 s from 3 s: its Duration says 7 s
    me = SimpleNamespace(spec="c.mkv")
    with av.open(str(p)) as c:
        assert VideoSource._ended_like_a_file(me, c, session_end=7.0)
        assert not VideoSource._ended_like_a_file(me, c, session_end=4.0)  # a drop 1 s in


@pytest.mark.parametrize("ext", ["mpg", "vob"])
def test_an_mpeg_ps_window_starts_at_the_asked_time(tmp_path, ext):
    """DVD/VHS captures (MPEG-PS) seek like MPEG-TS, onto the packet at the time asked: the window
    began at the next keyframe, up to a GOP late (0.44 s lost on a DVD-like clip)."""
    p = tmp_path / f"c.{ext}"
    rng = np.random.default_rng(0)
    with av.open(str(p), "w") as out:  # DVD-like: 352x288, a keyframe every 12 frames, B-frames
        vs = out.add_stream("mpeg2video", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = 352, 288, "yuv420p"
        vs.options = {"g": "12", "b": "4M", "bf": "2", "qmax": "3"}
        for i in range(60):
            img = np.full((288, 352, 3), 4 * i, np.uint8)  # which frame it is (top half)
            img[160:] = rng.integers(0, 256, (128, 352, 3), dtype=np.uint8)  # bytes, so the seek has a file to search
            vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            for pk in vs.encode(vf):
                out.mux(pk)
        for pk in vs.encode(None):
            out.mux(pk)
    with av.open(str(p)) as c:
        assert c.format.name == "mpeg"

    def frames(**window):
        got = []
        with open_source(p, **window) as s:
            for f in s:
                got.append(round(float(f.image[16:48, 16:48].float().mean()) / 4))
                f.release()
        return got

    got = frames(start=1.0, duration=0.8)
    assert got == list(range(25, 45)), got  # (it began 5 frames late)


def test_seek_note_is_in_start_terms_not_the_file_clock(tmp_path, caplog):
    # the note said "the seek to 101.5 s ... decoding from 100.5 s" for --start 1.5 on a .ts whose
    # clock starts at 100 s (a broadcast capture's at 10 h: "seek to 36001.5 s")
    import logging

    from tests._clips import ts_clip

    clip = tmp_path / "clip.ts"
    ts_clip(clip, n=75, t0=100.0)
    with caplog.at_level(logging.INFO, logger="stream_gpen.io._source"):
        with open_source(clip, start=1.5, duration=0.2) as src:
            frames = [f.time for f in src]
    notes = [r.getMessage() for r in caplog.records if "landed past the keyframe" in r.getMessage()]
    assert notes, caplog.text
    assert "the seek to 1.500 s" in notes[0] and "decoding from 0.500 s" in notes[0], notes[0]
    assert frames
