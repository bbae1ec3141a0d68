"""Damaged timestamps where the source's join/outlier logic (``_Joins``) had no neighbour to judge
by: a stream's first or last packet one hour off, a presentation time one hour off its intact
decode time (B-frames), and the "looks truncated" claim a damaged timestamp left behind."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from tests._clips import damage_pes, read_times, ts_clip

H = 3600.0


def _damaged(tmp_path, caplog, kind, k, *, bf=0, dts_too=True):
    data = ts_clip(tmp_path / "a.ts", bf=bf)
    damage_pes(data, kind, k, H, dts_too=dts_too)
    path = tmp_path / "bad.ts"
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO, logger="stream_gpen.io._source"):
        times, audio, fallbacks = read_times(path)
    return times, audio, fallbacks, [r.getMessage() for r in caplog.records]


def test_a_damaged_first_video_timestamp_is_retimed_not_a_join(tmp_path, caplog):
    """The first video PES an hour ahead became the video's start; the next (correct) packet was
    then a jump back, a "join", and every later frame moved an hour past its audio. (The first
    audio PES an hour ahead is another case: FFmpeg's demuxer takes it for the start of the
    program's clock and moves every later timestamp by its 33-bit wrap, 26.5 h.)"""
    times, audio, _, msgs = _damaged(tmp_path, caplog, "video", 0)
    assert len(times) == 25, times
    assert max(times) < 1.5 and min(times) >= 0, times
    steps = np.diff(times)
    assert steps.min() > 0.039 and steps.max() < 0.041, times
    assert audio and max(audio) < 1.5, audio
    assert not any("jump back" in m for m in msgs), msgs
    assert sum("a damaged timestamp, retimed" in m for m in msgs) == 1, msgs


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_a_damaged_last_timestamp_is_retimed_not_kept_an_hour_after_the_end(tmp_path, caplog, kind):
    """The last video (audio) PES an hour ahead was held as a leap and passed on unchanged at the
    end of the input: the output had a packet an hour after everything else."""
    times, audio, _, msgs = _damaged(tmp_path, caplog, kind, -1)
    assert len(times) == 25, times
    assert max(times) < 1.5 and max(audio) < 1.5, (times, audio)
    steps = np.diff(times)
    assert steps.min() > 0.039 and steps.max() < 0.041, times
    assert sum("a damaged timestamp, retimed" in m for m in msgs) == 1, msgs


def test_a_trailing_pause_without_other_streams_past_it_is_kept(tmp_path):
    """The same leap on the last two frames, with the audio running on past them: a pause in the
    picture (a still screen), not damage. So is a leap of seconds past the other streams' end (a
    slideshow's last frames after its music ended: closed up, a 30 s slideshow was 0.16 s long)."""
    data = ts_clip(tmp_path / "a.ts", audio_s=2.0)
    damage_pes(data, "video", -2, 0.5)
    damage_pes(data, "video", -1, 0.5)
    path = tmp_path / "pause.ts"
    path.write_bytes(bytes(data))
    times, _, _ = read_times(path)
    assert len(times) == 25 and abs(times[-2] - times[-3] - 0.54) < 1e-3, times
    data = ts_clip(tmp_path / "b.ts", audio_s=0.5)  # the audio ends first
    damage_pes(data, "video", -2, 8.0)
    damage_pes(data, "video", -1, 8.0)
    path = tmp_path / "slides.ts"
    path.write_bytes(bytes(data))
    times, _, _ = read_times(path)
    assert len(times) == 25 and abs(times[-2] - times[-3] - 8.04) < 1e-3, times


def test_no_truncation_claim_after_a_retimed_timestamp(tmp_path, caplog):
    """A video PES 5 s ahead, retimed: the header's duration (FFmpeg's estimate from the same
    damaged timestamp) said 6 s, and the run said the file "looks truncated"; it was whole."""
    data = ts_clip(tmp_path / "a.ts")
    damage_pes(data, "video", 10, 5.0)
    path = tmp_path / "bad.ts"
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO, logger="stream_gpen.io._source"):
        times, _, fallbacks = read_times(path)
    assert len(times) == 25 and max(times) < 1.5, times
    assert any("a damaged timestamp, retimed" in r.getMessage() for r in caplog.records)
    assert not any("truncated" in f for f in fallbacks), fallbacks


def test_a_pause_in_b_frame_video_keeps_its_times(tmp_path):
    """x264 with B-frames after a 5 s pause: the first frames' pts run seconds ahead of their dts
    by design. A bound on that difference took them for damaged timestamps, and the rest of the
    file played 5 s late against its audio."""
    import av
    from fractions import Fraction

    path = tmp_path / "pause.mp4"
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.codec_context.time_base = Fraction(1, 25)
        for i in [*range(50), *range(175, 225)]:
            fr = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 5 * (i % 50), np.uint8), format="rgb24")
            fr.pts, fr.time_base = i, Fraction(1, 25)
            for p in v.encode(fr):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    times, _, fallbacks = read_times(path)
    assert len(times) == 100 and abs(times[50] - 7.0) < 1e-3 and abs(times[-1] - 8.96) < 1e-3, times
    assert np.diff(times).min() > 0.039, times
    assert not any("damaged timestamp" in f for f in fallbacks)


def test_a_damaged_presentation_time_over_an_intact_decode_time_is_retimed(tmp_path, caplog):
    """B-frame video, one PES's PTS an hour ahead and its DTS intact: the frame came out at 3600 s,
    the one before it lasted the hour, and every later frame was pinned one tick after it. A
    decoded frame far ahead of both neighbours, the next back on time, is retimed between them
    (a pause goes on from its new time: test_a_pause_in_b_frame_video_keeps_its_times)."""
    times, _, _, msgs = _damaged(tmp_path, caplog, "video", 10, bf=2, dts_too=False)
    assert len(times) == 25 and max(times) < 1.5, times
    assert np.diff(times).min() > 0, times
    assert sum("a damaged timestamp, retimed" in m for m in msgs) == 1, msgs
