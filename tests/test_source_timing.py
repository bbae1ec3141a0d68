"""The source's timing at the edges of a window and of a file: audio stored after the window's last
video frame, a start inside a pause, a clock that jumps back (joined recordings), each frame's
duration, an empty video track, and colour tags only the container carries."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from stream_gpen.errors import InvalidInputError
from stream_gpen.io import open_source


def _clip(path, video, audio=(), *, video_first=False, last_duration=None, size=(64, 48)):
    """A Matroska clip of H.264 frames at the given indices (pts in 1/25 s; frame ``i`` is grey
    level ``7 * i % 255``) and 8 kHz PCM in 40 ms blocks at the given block indices. The packets
    are written in the order given (``video_first``: all video, then all audio, as phones' chunked
    interleave does at its extreme); ``last_duration`` (1/25 s ticks): the last frame is held."""
    w, h = size
    with av.open(str(path), "w", options={"max_interleave_delta": "1"}) as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.options = {"bf": "0"}
        a = c.add_stream("pcm_s16le", rate=8000)
        a.layout = "mono"
        vp = []
        for i in video:
            fr = av.VideoFrame.from_ndarray(np.full((h, w, 3), 7 * i % 255, np.uint8), format="rgb24")
            fr.pts = i
            vp += v.encode(fr)
        vp += v.encode(None)
        if last_duration is not None:
            vp[-1].duration = last_duration
        ap = []
        for i in audio:
            af = av.AudioFrame.from_ndarray(np.full((1, 320), 1000, np.int16), format="s16", layout="mono")
            af.sample_rate, af.pts = 8000, i * 320
            ap += a.encode(af)
        ap += a.encode(None)
        for p in (vp + ap if video_first else sorted(vp + ap, key=lambda p: p.pts * p.time_base)):
            c.mux(p)
    return path


def _read(path, **kw):
    """(frames as (time, duration, grey level), audio packet times) of a whole read."""
    with open_source(str(path), **kw) as src:
        src.aux.subscribe()
        frames = []
        for f in src:
            frames.append((f.time, getattr(f, "duration", None), int(f.image[0, 0, 0])))
            f.release()
        audio = [float(p.pts * p.time_base) for p in src.aux.take_until(None) if p.stream.type == "audio"]
    return frames, audio


def test_duration_keeps_the_audio_the_file_stores_after_the_window(tmp_path):
    """All video first, then all audio: the window's audio comes after the video frame past its end.
    The read stopped at that frame, and the output had no audio at all."""
    path = _clip(tmp_path / "vfirst.mkv", range(50), range(50), video_first=True)
    frames, audio = _read(path, start=0.4, duration=0.8)
    assert len(frames) == 20 and abs(frames[0][0] - 0.4) < 1e-6
    assert audio and min(audio) <= 0.4 + 1e-6 and max(audio) >= 1.16 - 1e-6, audio
    assert all(0.36 - 1e-6 <= t < 1.2 for t in audio), audio


def test_a_start_inside_a_pause_opens_on_the_frame_on_screen(tmp_path):
    """Frames 0..5, a 3.76 s pause, frames 100..105: start=2 opens at 2.0 s on frame 5 (on screen
    then), with the audio from 2.0 s; it opened at 4.0 s, the 2 s between lost."""
    path = _clip(tmp_path / "pause.mkv", [*range(6), *range(100, 106)], range(106))
    frames, audio = _read(path, start=2.0, duration=3.0)
    assert [round(t, 6) for t, _, _ in frames] == [2.0, 4.0, 4.04, 4.08, 4.12, 4.16, 4.2]
    assert frames[0][2] in range(7 * 5 - 2, 7 * 5 + 3)  # the picture of frame 5
    assert abs(frames[0][1] - 2.0) < 1e-6  # on screen until frame 100
    assert abs(min(audio) - 2.0) < 1e-6 and max(audio) >= 4.2 - 1e-6


def test_a_start_between_two_frames_of_steady_video_stays_frame_exact(tmp_path):
    path = _clip(tmp_path / "cfr.mkv", range(25), range(25))
    frames, _ = _read(path, start=0.5, duration=0.4)
    assert abs(frames[0][0] - 0.52) < 1e-6 and len(frames) == 10


def test_a_start_on_a_still_held_at_the_end_opens_on_it(tmp_path):
    """8 frames, the last one held 2 s: start=1 is inside the file (it said 'past the end')."""
    path = _clip(tmp_path / "hold.mkv", range(8), last_duration=50)
    frames, _ = _read(path, start=1.0)
    assert len(frames) == 1 and abs(frames[0][0] - 1.0) < 1e-6
    assert abs(frames[0][1] - 1.28) < 1e-6  # what is left of the still: to 2.28 s
    with pytest.raises(InvalidInputError, match="past the end"):
        open_source(str(path), start=3.5)


def test_frames_carry_their_duration_and_the_windows_last_lasts_to_its_end(tmp_path):
    path = _clip(tmp_path / "hold.mkv", [*range(4), 40], last_duration=50)
    frames, _ = _read(path)
    assert [round(d, 6) for _, d, _ in frames] == [0.04, 0.04, 0.04, 1.48, 2.0]
    # the window's last frame is on screen until the window's end (0.12 + 0.5 s: the next frame,
    # 1.6 s, is past it); it lasted 0.04 s, the rest of the window empty
    frames, _ = _read(path, start=0.1, duration=0.5)
    assert [round(t, 6) for t, _, _ in frames] == [0.12] and abs(frames[-1][1] - 0.5) < 1e-6, frames


def _ts_segment(path, first_pts, n, *, size=(64, 48)):
    """An MPEG-TS segment: ``n`` frames at 25 fps from ``first_pts`` (1/25 s) with its AAC audio."""
    w, h = size
    with av.open(str(path), "w", format="mpegts") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.options = {"bf": "0", "g": "25"}
        a = c.add_stream("aac", rate=8000, layout="mono")
        for i in range(n):
            fr = av.VideoFrame.from_ndarray(np.full((h, w, 3), 7 * i % 255, np.uint8), format="rgb24")
            fr.pts, fr.time_base = first_pts + i, Fraction(1, 25)
            for p in v.encode(fr):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        fs = a.codec_context.frame_size or 1024
        start = first_pts * 320
        for k in range(0, n * 320, fs):
            af = av.AudioFrame.from_ndarray(np.zeros((1, fs), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 8000, start + k, Fraction(1, 8000)
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    return path.read_bytes()


def test_a_clock_that_jumps_back_runs_on_after_the_join(tmp_path, caplog):
    """Two MPEG-TS segments joined (``cat a.ts b.ts``), the second's clock 0.6 s behind the first's
    end: its frames follow on (they were passed on at their own times, 0.6 s back, and written a
    tick apart), and its audio moves with them (its dts went back: muxers refuse that)."""
    path = tmp_path / "joined.ts"
    path.write_bytes(_ts_segment(tmp_path / "a.ts", 0, 25) + _ts_segment(tmp_path / "b.ts", 10, 25))
    with open_source(str(path)) as src:
        src.aux.subscribe()
        times = []
        for f in src:
            times.append(f.time)
            f.release()
        audio = [(p.dts * p.time_base, p.pts * p.time_base) for p in src.aux.take_until(None) if p.size]
    steps = np.diff(times)
    # (the second segment starts after the first one's audio too: AAC blocks of 128 ms at 8 kHz)
    assert len(times) == 50 and steps.min() > 0.039 and steps.max() < 0.3, steps
    dts = [float(d) for d, _ in audio]
    assert all(b > a for a, b in zip(dts, dts[1:])), dts
    # the second segment's audio moved with its video: both start near the join
    assert abs(float(audio[len(audio) // 2 + 1][1]) - times[25]) < 0.5
    assert sum("jump back" in r.getMessage() for r in caplog.records) == 1


def test_an_empty_video_track_is_the_inputs_fault(tmp_path):
    """A video track with no frames (an audio file with a video stream declared): exit 2, not 4."""
    path = tmp_path / "zero.mkv"
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("pcm_s16le", rate=8000)
        a.layout = "mono"
        af = av.AudioFrame.from_ndarray(np.zeros((1, 320), np.int16), format="s16", layout="mono")
        af.sample_rate, af.pts = 8000, 0
        c.mux(a.encode(af))
        c.mux(a.encode(None))
    with pytest.raises(InvalidInputError, match="the video stream contains no frames") as e:
        open_source(str(path))
    assert e.value.exit_code == 2


def test_colour_tags_only_the_container_carries_are_read(tmp_path):
    """ProRes frames untagged (2) in a mov whose stream says BT.2020 / PQ: the stream's tags are
    used (they were read as unspecified: an HDR master came back as SDR)."""
    path = tmp_path / "pq.mov"
    with av.open(str(path), "w") as c:
        s = c.add_stream("prores_ks", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv422p10le"
        s.codec_context.color_primaries, s.codec_context.color_trc, s.codec_context.colorspace = 9, 16, 9
        fr = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 100, np.uint8), format="rgb24").reformat(format="yuv422p10le")
        fr.pts = 0
        for p in [*s.encode(fr), *s.encode(None)]:
            c.mux(p)
    with av.open(str(path)) as c:  # (the premise: the decoder leaves the frame untagged)
        f = next(c.decode(video=0))
        assert (int(f.color_primaries), int(f.color_trc)) == (2, 2)
    m = open_source(str(path)).metadata
    assert (m.color_primaries, m.color_trc, m.color_space) == ("bt2020", "smpte2084", "bt2020nc")
    assert m.extra["matrix_id"] == 9


def test_the_chroma_location_the_codec_fixes_is_in_the_metadata(tmp_path):
    """JPEG's chroma sits centred (JFIF): said as ``extra["chroma_location"]`` for the sink to tag;
    None where it is not known (PyAV reads no H.264/HEVC VUI value)."""
    from tests._clips import write_video

    img = [np.full((48, 64, 3), 90, np.uint8)] * 2
    mj = write_video(tmp_path / "mj.mkv", img, codec="mjpeg", pix_fmt="yuvj420p")
    avc = write_video(tmp_path / "avc.mkv", img)
    assert open_source(str(mj)).metadata.extra["chroma_location"] == "center"
    assert open_source(str(avc)).metadata.extra["chroma_location"] is None
