"""Hunt 32 (scan): the look-ahead over copied audio (copy_hazard) reads only the part copied
(--start/--duration) and stops at the first hazard, instead of the whole input."""
from __future__ import annotations

import logging
from pathlib import Path

import av

from stream_gpen.io import open_sink, open_source
from stream_gpen.io import _sink
from stream_gpen.io._sink import audio_copy_hazards, copy_hazards

from test_audio32 import _audio, _clip, _switching


def copy_hazard(path, stream, *, gaps, adts, window=None):
    return copy_hazards(path, [(stream, gaps, adts, window)])[stream.index]


def audio_copy_hazard(path, stream, fmt_name, window=None):
    return audio_copy_hazards(path, [stream], fmt_name, window)[stream.index]


def _stream(path: Path):
    c = av.open(str(path))
    return c, c.streams.audio[0]


def test_a_change_after_the_window_is_no_hazard_one_inside_is(tmp_path):
    # stereo until 1.0 s, then 5.1: a part that ends before the change copies fine
    src = _switching(tmp_path, 48000, "5.1")
    c, s = _stream(src)
    with c:
        t0 = float(s.start_time * s.time_base)
        assert "changes from 2 channel(s)" in copy_hazard(src, s, gaps=False, adts=True)
        assert copy_hazard(src, s, gaps=False, adts=True, window=(None, t0 + 0.8)) is None
        assert "changes from 2 channel(s)" in copy_hazard(src, s, gaps=False, adts=True, window=(None, t0 + 1.6))
        # a part wholly after the change: one configuration, read from a seek to it
        assert copy_hazard(src, s, gaps=False, adts=True, window=(t0 + 1.2, t0 + 1.9)) is None
        assert audio_copy_hazard(src, s, "mp4", (t0 + 1.2, None)) is None
        # into AVI the track keeps the file's first packet's configuration: still read from the top
        assert "changes from 2 channel(s)" in audio_copy_hazard(src, s, "avi", (t0 + 1.2, None))


def test_a_gap_outside_the_window_is_no_hazard(tmp_path):
    src = _clip(tmp_path / "gap.mkv", "ac3", vdur=3, adur=3, gap=(2.0, 2.5))
    c, s = _stream(src)
    with c:
        assert "pauses at" in copy_hazard(src, s, gaps=True, adts=False)
        assert copy_hazard(src, s, gaps=True, adts=False, window=(None, 1.5)) is None
        assert copy_hazard(src, s, gaps=True, adts=False, window=(0.5, 1.5)) is None
        assert "pauses at" in copy_hazard(src, s, gaps=True, adts=False, window=(1.5, None))


def test_the_scan_stops_at_the_window_end_and_at_the_first_hazard(tmp_path, monkeypatch):
    src = _clip(tmp_path / "gap.mkv", "ac3", vdur=3, adur=3, gap=(0.5, 0.7))
    read = []
    scan = _sink._scan_packets

    def counted(*a):
        for p in scan(*a):
            read.append(p)
            yield p

    monkeypatch.setattr(_sink, "_scan_packets", counted)
    c, s = _stream(src)
    with c:
        total = sum(1 for p in c.demux(s) if p.size)
        assert "pauses at" in copy_hazard(src, s, gaps=True, adts=False)
        assert len(read) < total / 3, (len(read), total)  # (stopped at the pause)
        read.clear()
        assert copy_hazard(src, s, gaps=False, adts=True, window=(None, 1.0)) is None
        assert len(read) < total / 2, (len(read), total)


def test_a_part_copied_by_the_sink_is_judged_alone(tmp_path):
    # --duration 0.8 of a TV recording whose AAC turns 5.1 at 1.0 s: nothing to transcode
    src = _switching(tmp_path, 48000, "5.1")
    with open_source(src, duration=0.8) as source, open_sink(tmp_path / "o.mp4", source=source,
                                                             preset="ultrafast") as sink:
        for f in source:
            sink.write(f)
    assert not any("transcoded" in f for f in sink.fallbacks), sink.fallbacks
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
    n, rate, _ = _audio(tmp_path / "o.mp4")
    assert abs(n / rate - 0.8) < 0.1, n / rate


def test_a_long_scan_says_what_it_reads(tmp_path, monkeypatch, caplog):
    src = _clip(tmp_path / "a.mkv", "ac3", vdur=1, adur=1)
    monkeypatch.setattr(_sink, "_SCAN_SAY_BYTES", 1)
    c, s = _stream(src)
    with c, caplog.at_level(logging.INFO, logger="stream_gpen.io._sink"):
        assert copy_hazard(src, s, gaps=True, adts=False, window=(None, 0.5)) is None
    assert any("reading the packets of audio stream" in r.getMessage() and "up to 0.500 s" in r.getMessage()
               for r in caplog.records), caplog.records
