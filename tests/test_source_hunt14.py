"""Hunt 14: video/network source findings (io/_source.py)."""
from __future__ import annotations

import http.server
import threading
import time
from fractions import Fraction
from itertools import islice

import av
import numpy as np
import pytest

from stream_gpen.errors import InvalidInputError
from stream_gpen.io import open_source
from tests._clips import ts_clip, ts_part, write_audio

FPS = 25


def _serve(data: bytes, *, trickle: bool = False):
    """``data`` over HTTP/1.0 with no Content-Length (the answer ends when the connection
    closes), all at once or ``trickle``d at its own rate (a live feed); the requests seen."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.end_headers()
            step = len(data) // 20 if trickle else len(data)
            try:
                for i in range(0, len(data), step):
                    self.wfile.write(data[i : i + step])
                    self.wfile.flush()
                    if trickle:
                        time.sleep(0.2)  # 20 parts of a 4 s clip: its own rate
            except OSError:
                pass

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/clip.ts", hits


def _times(path) -> list[float]:
    times = []
    with open_source(str(path)) as src:
        for f in src:
            times.append(f.time)
            f.release()
    return times


def _read_live(url, limit):
    with open_source(url, live=True, reconnect=3, reconnect_delay_s=0.05, ring_size=4) as src:
        times = []
        for f in islice(src, limit):
            times.append(f.time)
            f.release()
    return src, times


def test_a_live_http_file_without_a_length_is_paced_and_its_replay_left_out(tmp_path):
    """late13 #4: the whole file arrived in one burst (5 of 100 frames recorded) and, reopened
    at its end, was replayed into the recording after the "outage"."""
    n = 4 * FPS
    data = bytes(ts_clip(tmp_path / "c.ts", n))
    end = _times(tmp_path / "c.ts")[-1]
    srv, url, hits = _serve(data)
    try:
        src, times = _read_live(url, 3 * n)
    finally:
        srv.shutdown()
        srv.server_close()
    assert src.paced and src._ahead  # 4 s of video in a few ms: not a live stream
    # nothing past the file's end (the replay ran on from 4 s, moved past the outage) ...
    assert times and max(times) <= end + 1e-6, times
    assert times == sorted(times)
    # ... and once paced, every frame reached the (fast) reader: the second half at least
    assert len(times) >= n // 2, len(times)


def test_a_live_feed_without_a_length_at_its_own_rate_is_not_paced(tmp_path):
    """The same clip sent at its own rate is a live feed: not paced (that would only add
    latency), and its reopened session runs on after the outage as before."""
    n = 4 * FPS
    data = bytes(ts_clip(tmp_path / "c.ts", n))
    srv, url, hits = _serve(data, trickle=True)
    try:
        src, times = _read_live(url, n + 10)
    finally:
        srv.shutdown()
        srv.server_close()
    assert not src.paced and not src._ahead
    assert len(hits) >= 2 and max(times) > _times(tmp_path / "c.ts")[-1]  # reconnected; the new session ran on


def _sar_part(path, w, h, sar, t0, n=25):
    """``n`` all-white frames of ``w`` x ``h`` stored pixels of shape ``sar`` (MPEG-TS)."""
    return ts_part(path, w, h, sar, t0, n)


@pytest.mark.parametrize("second", [(64, 48), (96, 54)], ids=["sar-only", "size-and-sar"])
def test_a_mid_stream_pixel_aspect_change_keeps_the_display_aspect(tmp_path, second):
    """video2 #1: DVB 16:9 stored anamorphic (64x48 at SAR 4:3), then 4:3 or 16:9 in square
    pixels. The output keeps SAR 4:3: the second part is pillarboxed (4:3) or fills the frame
    (16:9) instead of being stretched 33 %."""
    clip = tmp_path / "sar.ts"
    clip.write_bytes(_sar_part(tmp_path / "a.ts", 64, 48, Fraction(4, 3), 0)
                     + _sar_part(tmp_path / "b.ts", *second, Fraction(1), 25))
    with open_source(str(clip)) as src:
        pics = []
        for f in src:
            pics.append(f.image.cpu().numpy().copy())
            f.release()
    assert src.metadata.sample_aspect_ratio == Fraction(4, 3)
    assert len(pics) == 50 and all(p.shape == (48, 64, 3) for p in pics)
    assert all(p.min() > 200 for p in pics[:25])  # the first part as it was
    if second == (64, 48):
        # 64x48 square pixels show 4:3; in SAR 4:3 storage that is 48x48, pillarboxed
        for p in pics[25:]:
            assert p[:, :6].max() < 40 and p[:, -6:].max() < 40 and p[:, 10:54].min() > 200
        assert any("pixel aspect 1 " in m and "48x48" in m for m in src.fallbacks), src.fallbacks
    else:
        # 96x54 square pixels show 16:9, as 64x48 at SAR 4:3 does: the whole frame, no bars
        for p in pics[25:]:
            assert p.min() > 200
        assert any("64x48" in m and "16:9" not in m and "1.78:1" in m for m in src.fallbacks), src.fallbacks


def test_a_local_file_that_grows_while_it_is_read_is_said_to_be_cut(tmp_path, monkeypatch):
    """robust #1: a .ts recording still being written (no duration in its header to fall short
    of) was restored up to where it was when read, exit 0, nothing said."""
    from stream_gpen.io._source import VideoSource

    rec = tmp_path / "rec.ts"
    rec.write_bytes(bytes(ts_clip(tmp_path / "a.ts", 25)))
    more = bytes(ts_clip(tmp_path / "b.ts", 25, t0=1.0))
    check = VideoSource._check_grown

    def appended_at_the_end(self, seen):  # the writer appends once the read has reached the end
        with open(rec, "ab") as w:
            w.write(more)
        return check(self, seen)

    monkeypatch.setattr(VideoSource, "_check_grown", appended_at_the_end)
    with open_source(str(rec)) as src:
        n = sum(1 for f in src if f.release() or True)
    assert n == 25
    notes = [m for m in src.fallbacks if "grew by" in m]
    assert len(notes) == 1 and f"{len(more) / 1e6:.2f} MB" in notes[0] and "covers only its first" in notes[0], \
        src.fallbacks


def test_a_file_that_grew_but_was_read_to_its_end_is_not_said_to_be_cut(tmp_path):
    """hunt 17 (longrun): the writer finished before the read reached the end, the output had
    every frame, and the run still said it "covers only its first 20 s ... restore it again"."""
    rec = tmp_path / "rec.ts"
    rec.write_bytes(bytes(ts_clip(tmp_path / "a.ts", 25)))
    more = bytes(ts_clip(tmp_path / "b.ts", 25, t0=1.0))
    with open_source(str(rec)) as src:
        with open(rec, "ab") as w:  # appended before the read got there: it is read too
            w.write(more)
        n = sum(1 for f in src if f.release() or True)
    assert n == 50
    assert not any("grew by" in m for m in src.fallbacks), src.fallbacks


def test_a_finished_local_file_is_not_said_to_grow(tmp_path):
    rec = tmp_path / "rec.ts"
    rec.write_bytes(bytes(ts_clip(tmp_path / "a.ts", 25)))
    with open_source(str(rec)) as src:
        for f in src:
            f.release()
    assert not any("grew by" in m for m in src.fallbacks)


def _open_gop_clip(path, n=75):
    """HEVC with open GOPs (x265's CRA keyframes every 25 frames, 4 B-frames): the leading
    pictures before each CRA in display order come after it in decode order."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx265", rate=FPS, options={
            "x265-params": "log-level=none:keyint=25:min-keyint=25:open-gop=1:bframes=4:scenecut=0"})
        s.width, s.height, s.pix_fmt = 128, 96, "yuv420p"
        for i in range(n):
            img = np.full((96, 128, 3), 3 * i % 255, np.uint8)
            img[:, 5 * i % 128 : 5 * i % 128 + 8] = 255  # a moving bar: real motion, real B-frames
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_start_just_before_an_open_gop_keyframe_keeps_the_leading_frames(tmp_path, ext):
    """video2 #2: the seek landed on the CRA keyframe at 1.0 s (indexed by its dts, before the
    start), whose leading pictures at 0.88-0.96 s the decoder drops: the part opened late."""
    clip = _open_gop_clip(tmp_path / f"og.{ext}")
    with open_source(str(clip)) as src:
        t0 = next(src)
        base = t0.time
        t0.release()
        for f in src:
            f.release()
    with open_source(str(clip), start=0.92, duration=0.2) as src:
        times = []
        for f in src:
            times.append(round(f.time - base, 3))
            f.release()
    assert times and times[0] == pytest.approx(0.92, abs=1e-3), times


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_start_past_the_video_but_inside_the_audio_says_where_the_video_ends(tmp_path, ext):
    """video2 #3: 0.4 s of video over 6 s of audio, start=3: "past the end of FILE" (a file of
    6 s, `info` says), and a hint pointing at that duration."""
    clip = tmp_path / f"long.{ext}"
    with av.open(str(clip), "w") as c:
        v = c.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=8000, layout="mono")
        for i in range(10):
            vf = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 9 * i, np.uint8), format="rgb24")
            vf.pts = i
            for p in v.encode(vf):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        write_audio(c, a, 6.0)
    with pytest.raises(InvalidInputError, match=r"start=3 s is past the end of the video of .*: it ends at "
                                                r"0\.40 s \(the audio runs on to 6\.\d\d s\)") as e:
        open_source(str(clip), start=3.0)
    assert "before 0.40 s" in e.value.hint
    with pytest.raises(InvalidInputError, match=r"start=30 s is past the end of '"):  # past everything: as before
        open_source(str(clip), start=30.0)


def test_a_clock_stepping_back_less_than_a_join_says_how_many_frames_are_squeezed(tmp_path):
    """video2 #4: segments joined with a two-frame overlap (0.32, 0.36 | 0.32, 0.36, 0.40): the
    two frames at or before the one before them were shown for a tick each, unsaid (only the
    sink's "bumped by one tick")."""
    clip = tmp_path / "join.ts"
    clip.write_bytes(_sar_part(tmp_path / "a.ts", 64, 48, Fraction(1), 0, n=10)
                     + _sar_part(tmp_path / "b.ts", 64, 48, Fraction(1), 8, n=10))
    with open_source(str(clip)) as src:
        times = []
        for f in src:
            times.append(f.time)
            f.release()
    assert len(times) == 20
    notes = [m for m in src.fallbacks if "come at or before the frame before them" in m]
    assert len(notes) == 1 and notes[0].startswith(f"{clip}: 2 frame(s)"), src.fallbacks
    # they keep their times (in sync with the audio a join would leave behind)
    assert times[10] == times[8] and times[11] == times[9]
