"""``start`` / ``duration`` at their extremes: a start past the end is the input's fault in words,
never an ``OverflowError`` from the seek (its target is an int64 of stream ticks)."""
from __future__ import annotations

import re
from fractions import Fraction

import pytest

from stream_gpen.errors import InvalidInputError
from stream_gpen.io import open_source
from stream_gpen.io._source import _seek_target
from tests._clips import write_pcm_clip
from tests.test_io_video import make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    p = tmp_path_factory.mktemp("win") / "c.mp4"
    make_clip(p, n=10)  # 0.4 s
    return p


@pytest.fixture(scope="module")
def ts90k(tmp_path_factory):
    p = tmp_path_factory.mktemp("win") / "c.mkv"
    make_clip(p, n=10, tb=Fraction(1, 90000))  # an MPEG-TS-like time base: 1e15 s overflows int64
    return p


@pytest.mark.parametrize("start", [0.4, 0.5, 3600.0, 1e15, 1e18, 1e308])
def test_a_start_at_or_past_the_end_is_refused_in_words(clip, ts90k, start):
    for path in (clip, ts90k):
        with pytest.raises(InvalidInputError, match=re.escape(f"start={start:g} s is past the end of ")):
            open_source(path, start=start)


def test_a_start_past_the_end_of_a_file_without_a_duration_is_refused_too(tmp_path):
    # raw H.264: no container duration, no index; the seek's int64 target is the only guard
    raw = _raw_h264(tmp_path, 5)
    for start in (5.0, 1e15, 1e308):
        with pytest.raises(InvalidInputError, match="is past the end of"):
            open_source(raw, start=start)


@pytest.mark.parametrize("start", [float("inf"), float("nan"), -1.0, True, "1"])
def test_a_start_that_is_not_a_finite_time_is_refused(clip, start):
    with pytest.raises(InvalidInputError, match="start must be a number of seconds >= 0"):
        open_source(clip, start=start)


@pytest.mark.parametrize("duration", [float("inf"), float("nan"), 0.0, -1.0])
def test_a_duration_that_is_not_a_finite_time_is_refused(clip, duration):
    with pytest.raises(InvalidInputError, match="duration must be None or a number of seconds > 0"):
        open_source(clip, duration=duration)


def test_a_huge_duration_is_the_rest_of_the_video(clip):
    with open_source(clip, start=0.2, duration=1e308) as src:
        assert sum(1 for f in src if f.release() is None) == 5


def test_seek_target_refuses_what_int64_cannot_hold():
    assert _seek_target(2.0, Fraction(1, 90000)) == 180000
    for t in (1e15, 1e308):
        with pytest.raises(OverflowError):
            _seek_target(t, Fraction(1, 90000))


# --- audio='none': discarding the source's audio is what was asked for, not a warning ---------

@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    p = tmp_path_factory.mktemp("aux") / "a.mkv"
    make_clip(p, n=80, audio="aac")  # past the 64 frames a sink has to subscribe in
    return p


def _aux_logs(caplog):
    return [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "stream_gpen.io._source" and "audio/subtitle packets" in r.getMessage()]


def test_a_sink_without_audio_declines_the_packets_without_a_warning(long_clip, tmp_path, caplog):
    from stream_gpen.io import open_sink

    caplog.set_level("INFO", logger="stream_gpen.io._source")
    with open_source(long_clip) as src:
        with open_sink(tmp_path / "o.mp4", source=src, preset="ultrafast", audio="none") as sink:
            for f in src:
                sink.write(f)
    assert src.aux.discarded > 0
    # said once, by the sink, stream by stream (the channel's own note is debug: it said it twice)
    assert _aux_logs(caplog) == []
    assert any("audio stream #1 (aac) dropped: no audio asked for (--audio none" in d for d in sink.dropped)


def test_frames_read_with_no_sink_at_all_still_warn_that_the_audio_goes_nowhere(long_clip, caplog):
    caplog.set_level("INFO", logger="stream_gpen.io._source")
    with open_source(long_clip) as src:
        for f in src:
            f.release()
    assert _aux_logs(caplog) == [
        ("WARNING", "no sink consumes the source's audio/subtitle packets; they are discarded")]


def test_progress_counts_do_not_overflow_on_huge_windows():
    from stream_gpen.api import _frames_in

    assert _frames_in(1e308, 25.0, 100) == 100 and _frames_in(float("nan"), 25.0, 100) == 100
    assert _frames_in(2.0, 25.0, 100) == 50 and _frames_in(0.0, 25.0, 100) == 0


def test_duration_counts_from_the_first_frame_of_a_late_video(tmp_path):
    """A video that starts 0.85 s after its file (its audio starts first, as in a phone or camera
    recording): --duration 0.4 gives 0.4 s of video; it gave 'the video stream contains no
    frames', the window's end being taken from the file's start."""
    # 2 s of audio from 0; 1 s of video from 0.84 s (frame 21 at 25 fps)
    path = write_pcm_clip(tmp_path / "late.mkv", range(21, 46), range(50))
    with open_source(str(path), duration=0.4) as src:
        times = []
        for f in src:
            times.append(f.time)
            f.release()
    assert len(times) == 10 and abs(times[0] - 0.84) < 1e-3, times


# --- a part of a raw elementary stream, and of an Ogg file whose audio runs ahead -------------

def _raw_h264(tmp_path, n: int):
    import av

    make_clip(tmp_path / "c.mkv", n=n)
    raw = tmp_path / "c.h264"
    with av.open(str(tmp_path / "c.mkv")) as i, av.open(str(raw), "w", format="h264") as o:
        s = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(i.streams.video[0]):
            if p.size:
                p.stream = s
                o.mux(p)
    return raw


def _read(path, **kw):
    with open_source(path, **kw) as src:
        out = []
        for f in src:
            out.append((round(f.time, 6), f.image.numpy().copy()))
            f.release()
    return out


def test_a_part_of_a_raw_h264_stream_goes_by_frame_index(tmp_path):
    """A raw .h264 (no timestamps, 25 fps, 30 frames) is timed by index over the frame rate: the
    window uses those times. ``start`` said 'past the end' (the failed seek left the read at the
    stream's end) and ``duration`` was ignored (every frame kept)."""
    raw = _raw_h264(tmp_path, 30)
    whole = _read(raw)
    assert len(whole) == 30
    part = _read(raw, start=0.4, duration=0.4)
    assert [t for t, _ in part] == [round(0.4 + 0.04 * k, 6) for k in range(10)]
    assert all((a == b).all() for (_, a), (_, b) in zip(part, whole[10:20]))  # frames 10-19
    head = _read(raw, duration=0.4)
    assert [t for t, _ in head] == [round(0.04 * k, 6) for k in range(10)]
    assert len(_read(raw, start=0.4)) == 20


def test_a_part_of_an_ogg_file_has_no_audio_past_its_end(tmp_path):
    """Ogg stores the audio about 1 s ahead of the video: the packets read before the part's first
    frame (which fixes its end) were all queued, and the part's audio ran on to ~1 s (0.58 s of
    audio for a 0.4 s part). Only what starts before the end is kept now."""
    import av
    import numpy as np

    path = tmp_path / "a.ogv"
    with av.open(str(path), "w", format="ogg") as c:
        v = c.add_stream("libvpx", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("vorbis", rate=16000)
        a.layout = "stereo"
        a.codec_context.options = {"strict": "-2"}  # (FFmpeg's own Vorbis encoder is "experimental")
        for i in range(50):  # 2 s of each, 40 ms of audio after each frame
            fr = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 5 * i, np.uint8), format="rgb24")
            fr.pts = i
            c.mux(v.encode(fr))
            af = av.AudioFrame.from_ndarray(np.zeros((2, 640), np.float32), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 16000, 640 * i
            c.mux(a.encode(af))
        c.mux(v.encode(None))
        c.mux(a.encode(None))
    with av.open(str(path)) as c:  # (the premise: audio from well past 0.8 s comes before the video at 0.4 s)
        order = [(p.stream.type, float(p.pts * p.time_base)) for p in c.demux() if p.pts is not None]
    first_in_part = next(i for i, (k, t) in enumerate(order) if k == "video" and t >= 0.4)
    assert max(t for k, t in order[:first_in_part] if k == "audio") > 0.85
    with open_source(path, start=0.4, duration=0.4) as src:
        times = [f.time for f in src if f.release() is None]
        audio = [float(p.pts * p.time_base) for p in src.aux.take_until(None)]
    assert len(times) == 10 and abs(times[0] - 0.4) < 1e-6
    assert audio and min(audio) < 0.41 and 0.7 < max(audio) < 0.8 - 1e-6, audio
