"""A network source that drops and is reopened continues its timeline.

A reopened input starts its own clock again (an http(s) file at 0, an RTSP camera's new session
wherever its clock is). Used as they were, those timestamps went backwards and the sink "bumped"
every later frame one tick past the last: the rest of a recording was squeezed into a few
milliseconds. A live session is now moved to run on after the last frame (by the outage's
wall-clock length), its audio with it; a file read offline resumes where it was cut, with nothing
repeated. A "live" http(s) URL that is really a file ends at its end instead of being replayed.
"""
from __future__ import annotations

import http.server
import threading
from fractions import Fraction

import av
import numpy as np
import pytest

from stream_gpen.io import open_sink, open_source
from stream_gpen.io._source import _Timeline
from tests._clips import write_audio

RATE = 10
N = 30  # 3 s


def _clip(path):
    """3 s of 64x48 video at 10 fps (one keyframe a second) with 3 s of AAC, in Matroska (whose
    header has the duration)."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=RATE, options={"preset": "ultrafast", "g": "10"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=48000)
        a.layout = "stereo"
        for i in range(N):
            vf = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i, np.uint8), format="rgb24")
            vf.pts = i
            for p in vs.encode(vf):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        write_audio(c, a, N / RATE)
    return path.read_bytes()


def _serve(data: bytes, *, cut: int, premature: bool):
    """An http server whose first answer stops after ``cut`` bytes (``premature``: it promised
    the whole file, a connection that broke; else a shorter file, the stream "ended"), then
    serves the whole file. No Range support: FFmpeg reads it front to back."""
    hits = []

    class Flaky(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            first = len(hits) == 1
            body = data[:cut] if first else data
            self.send_response(200)
            self.send_header("Content-Type", "video/x-matroska")
            self.send_header("Content-Length", str(len(data) if first and premature else len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass
            self.close_connection = True

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/c.mkv", hits


def _read_back(path):
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        vt = [float(f.pts * v.time_base) for f in c.decode(v)]
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        adts = [float(p.dts * p.time_base) for p in c.demux(a) if p.size]
    return vt, adts


def _record(url, out, **kw):
    times = []
    with open_source(url, reconnect=2, reconnect_delay_s=0.3, ring_size=64, **kw) as src:
        with open_sink(out, source=src, preset="ultrafast", audio="copy") as sink:
            for f in src:
                times.append(f.time)
                sink.write(f)
    return src, sink, times


def test_a_live_stream_that_restarts_its_clock_continues_the_recording(tmp_path):
    data = _clip(tmp_path / "c.mkv")
    srv, url, hits = _serve(data, cut=len(data) // 2, premature=False)
    try:
        src, sink, times = _record(url, tmp_path / "rec.mkv", live=True)
    finally:
        srv.shutdown()
        srv.server_close()
    assert src.stats["reconnects"] == 1 and len(hits) == 2
    steps = np.diff(times)
    assert (steps > 0).all(), "frame times must keep increasing across the reconnect"
    jump = int(np.argmax(steps))
    # the outage (0.3 s back-off and the reopen) is kept as wall-clock time, not cut out or reversed
    assert 0.3 <= steps[jump] < 5.0
    # the second session (the whole file again) runs on at its own rate after the jump
    assert times[-1] - times[jump + 1] == pytest.approx((N - 1) / RATE, abs=0.15)
    assert sink.fixed_pts == 0
    vt, adts = _read_back(tmp_path / "rec.mkv")
    assert (np.diff(vt) > 0.05).all(), "no frame squeezed against the previous one"
    assert vt[-1] - vt[0] == pytest.approx(times[-1] - times[0], abs=0.02)
    # the second session's audio moved with its video: in the recording, up to its end
    assert (np.diff(adts) > 0).all() and adts[-1] > vt[-1] - 0.2


def test_an_http_file_cut_off_mid_read_resumes_where_it_stopped(tmp_path):
    data = _clip(tmp_path / "c.mkv")
    srv, url, hits = _serve(data, cut=len(data) // 2, premature=True)
    try:
        src, sink, times = _record(url, tmp_path / "out.mkv")  # http: read offline, every frame
    finally:
        srv.shutdown()
        srv.server_close()
    assert not src.live and src.stats["reconnects"] == 1
    # every frame once, in order: nothing replayed from the file's top, nothing skipped
    assert times == pytest.approx([i / RATE for i in range(N)], abs=1e-6)
    vt, adts = _read_back(tmp_path / "out.mkv")
    assert len(vt) == N and (np.diff(adts) > 0).all()
    with av.open(str(tmp_path / "c.mkv")) as c:
        ref = [float(p.dts * p.time_base) for p in c.demux(c.streams.audio[0]) if p.size]
    # every audio packet once, those read before the drop too: they were still queued when the
    # first connection was replaced, and closing it at once left their stream pointing at freed
    # memory (the sink read a garbage stream index and lost them)
    assert adts == pytest.approx(ref, abs=1e-3)


def test_an_http_mpeg_ts_file_cut_off_mid_read_resumes_without_losing_frames(tmp_path):
    """MPEG-TS over http: the resume seek is keyframe-blind in FFmpeg (it lands mid-GOP and the
    decoder drops frames up to the next keyframe): 7 of the 30 frames were lost at the cut."""
    data = _clip(tmp_path / "c.ts")
    srv, url, hits = _serve(data, cut=len(data) // 2, premature=True)
    try:
        src, sink, times = _record(url, tmp_path / "out.mkv")
    finally:
        srv.shutdown()
        srv.server_close()
    assert src.stats["reconnects"] == 1
    assert np.allclose(np.diff(times), 1 / RATE) and len(times) == N  # every frame once, in order


def test_a_replaced_input_is_closed_only_once_its_queued_packets_are_taken(tmp_path):
    from stream_gpen.io._source import AuxChannel

    _clip(tmp_path / "c.mkv")
    ch = AuxChannel()
    ch.subscribe()
    old = av.open(str(tmp_path / "c.mkv"))
    for p in old.demux(old.streams.audio[0]):
        if p.size:
            ch.put(p, 0)
            if ch.memory_bytes > 2000:
                break
    ch.retire(old)
    assert ch._retired  # still open: the queued packets point into it
    taken = [(p.stream.index, p.stream.type) for p in ch.take_until(None)]
    assert taken and set(taken) == {(1, "audio")}
    assert not ch._retired and list(ch.take_until(None)) == []
    ch.retire(av.open(str(tmp_path / "c.mkv")))  # nothing queued: closed at once
    assert not ch._retired


def test_a_live_http_url_of_a_file_ends_at_its_end_instead_of_replaying(tmp_path):
    data = _clip(tmp_path / "c.mkv")
    srv, url, hits = _serve(data, cut=len(data), premature=False)  # the whole file, every time
    try:
        with open_source(url, live=True, reconnect=3, reconnect_delay_s=0.05, ring_size=64) as src:
            times = [f.time for f in src]
    finally:
        srv.shutdown()
        srv.server_close()
    assert src.stats["reconnects"] == 0 and len(hits) == 1
    assert times[-1] == pytest.approx((N - 1) / RATE) and len(times) <= N


class _F:
    """A decoded frame's timing, as _Timeline sees it."""

    def __init__(self, pts, tb=Fraction(1, 1000)):
        self.pts, self.time_base = pts, tb


class _P:
    def __init__(self, pts, tb=Fraction(1, 48000), index=1):
        self.pts = self.dts = pts
        self.time_base = tb
        self.stream = type("S", (), {"index": index})()


def test_timeline_moves_a_live_session_by_the_wall_clock_gap_and_its_audio_with_it():
    now = [100.0]
    tl = _Timeline(Fraction(1, 1000), live=True, clock=lambda: now[0])
    for k in range(3):  # session 1: frames at 5.0, 5.1, 5.2 s, audio up to 5.25 s
        f = _F(5000 + 100 * k)
        assert tl.frame(f, Fraction(1, 10)) == []
        tl.emitted(f)
    assert tl.aux(_P(int(5.25 * 48000))) != []
    tl.reopened()
    now[0] += 2.5  # the outage
    early = _P(0)                       # the new session's audio before its first frame: held
    assert tl.aux(early) == []
    f = _F(40, Fraction(1, 90000))      # a new clock (and time base), first frame at 40 ticks
    ready = tl.frame(f, Fraction(1, 10))
    assert f.time_base == Fraction(1, 1000) and f.pts == 5200 + 2500  # last frame + the outage
    # the held packet moved the same way (it is 40/90000 s before the frame; the move is whole
    # ticks of the video's 1 ms time base) and is given out
    assert ready == [early] and abs(early.pts / 48000 - (7.7 - 40 / 90000)) <= 0.001
    tl.emitted(f)
    g = _F(40 + 9000, Fraction(1, 90000))
    tl.frame(g, Fraction(1, 10))
    assert g.pts == 7800


def test_timeline_floors_the_gap_at_one_frame_and_drops_overlapping_audio():
    tl = _Timeline(Fraction(1, 1000), live=True, clock=lambda: 0.0)  # no wall time passes
    f = _F(1000)
    tl.frame(f, Fraction(1, 25))
    tl.emitted(f)
    assert tl.aux(_P(int(1.5 * 48000))) != []  # audio ran 0.5 s ahead of the last frame
    tl.reopened()
    a1, a2 = _P(0), _P(48000)
    tl.aux(a1), tl.aux(a2)
    g = _F(0)
    ready = tl.frame(g, Fraction(1, 25))
    assert g.pts == 1040  # one frame after the last
    assert ready == [a2] and tl.dropped_packets == 1  # a1 would go back before 1.5 s


def test_timeline_resumes_a_file_after_the_last_frame():
    tl = _Timeline(Fraction(1, 1000), live=False)
    for pts in (0, 100, 200):
        f = _F(pts)
        tl.frame(f, None)
        tl.emitted(f)
    assert tl.aux(_P(int(0.3 * 48000))) != []
    assert tl.reopened() == Fraction(200, 1000)
    assert tl.frame(_F(100), None) is None and tl.frame(_F(200), None) is None
    assert tl.aux(_P(int(0.2 * 48000))) == []
    f = _F(300)
    assert tl.frame(f, None) == [] and f.pts == 300


def test_a_connection_cut_inside_the_header_is_fetched_again(tmp_path):
    """The first answer breaks inside the file's header (a phone mp4's index is megabytes): to
    FFmpeg that is 'invalid data', as a page that is not a video would be. The URL is fetched
    again instead of being called not media (exit 2) at once."""
    data = _clip(tmp_path / "c.mkv")
    srv, url, hits = _serve(data, cut=40, premature=True)
    try:
        with open_source(url) as src:
            n = sum(1 for f in src if f.release() is None)
    finally:
        srv.shutdown()
        srv.server_close()
    assert n == N and len(hits) >= 2
