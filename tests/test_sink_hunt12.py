"""FileSink: audio whose format is known only from its packets, long pauses in AVI, stale
temporary outputs of long names, and SVT-AV1's log level left in the host's environment."""
from __future__ import annotations

import os
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stream_gpen.errors import EncodeError
from stream_gpen.io import open_source
from stream_gpen.io._meta import audio_params_unknown, hidden_temp
from stream_gpen.io._sink import AVI_MAX_SKIP, to_avi_grid
from tests._clips import copy_through

W, H = 64, 48


def _ts(path: Path, n: int, *, audio: bool) -> Path:
    """An MPEG-TS of ``n`` 25 fps frames from 0, with AAC (ADTS) audio as long when ``audio``."""
    with av.open(str(path), "w", format="mpegts") as c:
        vs = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        aus = None
        if audio:
            aus = c.add_stream("aac", rate=48000)
            aus.layout = "stereo"
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((H, W, 3), 20 * i % 250, np.uint8), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        if aus is not None:
            for k in range(0, round(n / 25 * 48000), 1024):
                x = (0.2 * np.sin(np.arange(1024) / 10)).astype(np.float32)
                af = av.AudioFrame.from_ndarray(np.stack([x, x]), format="fltp", layout="stereo")
                af.sample_rate, af.pts = 48000, k
                for p in aus.encode(af):
                    c.mux(p)
            for p in aus.encode(None):
                c.mux(p)
    return path


def _joined(tmp_path: Path) -> Path:
    """``cat video_only.ts with_audio.ts``: FFmpeg meets the audio only after it stopped reading
    ahead, and knows neither its sample rate nor its channels."""
    v = _ts(tmp_path / "v.ts", 26, audio=False).read_bytes()
    a = _ts(tmp_path / "a.ts", 10, audio=True).read_bytes()
    (tmp_path / "j.ts").write_bytes(v + a)
    return tmp_path / "j.ts"


@pytest.mark.parametrize("name", ["o.mp4", "o.mkv"])
def test_audio_whose_format_is_unknown_at_the_start_is_transcoded(tmp_path, name):
    """Copied, such audio made the muxer refuse the header at the end of the run ("Invalid
    argument ... returned 22", exit 4); it is transcoded (its frames say what they are) and said."""
    src = _joined(tmp_path)
    with open_source(src) as s:
        assert audio_params_unknown(s.metadata.audio[0])
        assert audio_params_unknown(s._container.streams.audio[0])
        assert not audio_params_unknown(s._container.streams.video[0])
    sink = copy_through(src, tmp_path / name)
    assert any("sample rate and channels were not found" in m and "transcoded" in m for m in sink.fallbacks)
    with av.open(str(tmp_path / name)) as c:
        a = c.streams.audio[0]
        frames = list(c.decode(a))
    assert frames and frames[0].sample_rate == 48000 and frames[0].layout.name == "stereo"


def test_audio_whose_format_is_known_is_still_copied(tmp_path):
    src = _ts(tmp_path / "a.ts", 10, audio=True)
    with open_source(src) as s:
        assert not audio_params_unknown(s.metadata.audio[0])
    sink = copy_through(src, tmp_path / "o.mkv")
    assert not any("transcoded" in m for m in sink.fallbacks), sink.fallbacks


def test_a_pause_longer_than_avi_can_skip_holds_the_frame_again(tmp_path):
    """FFmpeg's AVI muxer writes at most 60000 empty chunks in a row: a longer pause (here 46 min
    at 25 fps) failed the run at its end. The frame before it is written again inside the pause."""
    gap = AVI_MAX_SKIP + 10000
    src = tmp_path / "gap.mkv"
    with av.open(str(src), "w") as c:
        vs = c.add_stream("libx264", rate=25, options={"preset": "ultrafast", "bf": "0"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.codec_context.time_base = Fraction(1, 25)
        for i, pts in enumerate((0, 1, gap)):
            f = av.VideoFrame.from_ndarray(np.full((H, W, 3), 80 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = pts, Fraction(1, 25)
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    copy_through(src, tmp_path / "o.avi")
    with av.open(str(tmp_path / "o.avi")) as c:
        v = c.streams.video[0]
        slots = [round(p.dts * p.time_base * 25) for p in c.demux(v) if p.size]  # (the chunks with a frame)
    assert slots == [0, 1, 1 + AVI_MAX_SKIP, gap]


def test_a_copied_avi_pause_too_long_is_refused_with_a_way_out():
    """A copied packet cannot be repeated (it may need the ones before it): a clear error."""
    p = av.Packet(b"\0" * 8)
    p.time_base = Fraction(1, 25)
    p.pts = p.dts = 1 + AVI_MAX_SKIP + 1
    with pytest.raises(EncodeError, match=r"longer than AVI can hold.*\.mkv or \.mp4"):
        to_avi_grid(p, Fraction(1, 25), 0)
    p.pts = p.dts = 1 + AVI_MAX_SKIP
    assert to_avi_grid(p, Fraction(1, 25), 0) == 1 + AVI_MAX_SKIP


def test_a_killed_runs_temporary_output_of_a_long_name_is_removed(tmp_path):
    """The temporary name shortens a long stem to fit 255 bytes with its tag: compared with the
    whole stem, such a leftover never matched and stayed for good."""
    import subprocess
    import sys
    import time

    from stream_gpen.io._sink import _machine_tag
    from tests._clips import write_video

    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)])
    target = tmp_path / ("L" * 240 + ".mp4")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = hidden_temp(target, f".{_machine_tag()}-{gone}-0123abcd.tmp")
    assert len(stale.stem) < len(target.stem) + 1 + len(f".{_machine_tag()}-{gone}-0123abcd.tmp")  # shortened
    other = hidden_temp(tmp_path / ("K" * 240 + ".mp4"), f".{_machine_tag()}-{gone}-4567abcd.tmp")  # another name
    for q in (stale, other):
        q.write_bytes(b"\0" * 1000)
        old = time.time() - 3600
        os.utime(q, (old, old))
    sink = copy_through(src, target)
    assert target.exists() and not stale.exists() and other.exists()
    assert any(f"removed {stale.name} (1,000 bytes)" in f for f in sink.fallbacks), sink.fallbacks


@pytest.mark.skipif("libsvtav1" not in av.codecs_available, reason="no SVT-AV1 in this FFmpeg build")
def test_svt_log_is_not_left_in_the_environment(tmp_path, capfd, monkeypatch):
    """SVT_LOG quiets SVT-AV1's banner while its encoder opens; it was left set for good, and every
    program the host started later inherited it. Two sinks opening at once both stay quiet."""
    from tests._clips import write_video

    monkeypatch.delenv("SVT_LOG", raising=False)
    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(2)])
    errors = []

    def run(i):
        try:
            copy_through(src, tmp_path / f"o{i}.mkv", codec="av1", preset="12")
        except BaseException as e:  # (handed to the test)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert "SVT_LOG" not in os.environ
    assert "Svt[info]" not in capfd.readouterr().err
    monkeypatch.setenv("SVT_LOG", "2")  # the user's own level is left as it is
    copy_through(src, tmp_path / "o2.mkv", codec="av1", preset="12")
    assert os.environ["SVT_LOG"] == "2"


def test_info_and_remux_do_not_promise_a_copy_of_such_audio(tmp_path):
    """`info` said "audio copied" for it, and a remux (copy_if_no_faces) failed at the end with
    "Invalid argument"; info names the transcode, the remux refuses in words (the caller keeps
    the re-encoded output)."""
    from stream_gpen.commands import _audio_plan
    from stream_gpen.io._remux import remux

    src = _joined(tmp_path)
    with open_source(src) as s:
        tracks = s.metadata.audio
    assert "transcoded to aac (its sample rate and channels are not known" in _audio_plan("o.mp4", tracks)
    with pytest.raises(EncodeError, match="sample rate and channels are not known"):
        remux(src, tmp_path / "r.mp4")
    with open_source(_ts(tmp_path / "a.ts", 10, audio=True)) as s:
        assert _audio_plan("o.mp4", s.metadata.audio) == "audio copied"


def test_a_damaged_audio_packet_the_muxer_refuses_is_left_out_not_the_run(tmp_path, caplog):
    """A copied ADTS packet with flipped header bits (a damaged .ts) made the mp4 muxer's
    aac_adtstoasc refuse it, and the whole run failed at that packet (exit 4); it is left out,
    said once and counted in the summary, and the rest of the audio is kept."""
    src = _ts(tmp_path / "a.ts", 25, audio=True)
    d = bytearray(src.read_bytes())
    heads = [i for i in range(len(d) - 7) if d[i] == 0xFF and d[i + 1] == 0xF1 and i % 188 + 7 < 188
             and (d[i + 2] >> 2) & 0xF == 3]  # ADTS headers (48 kHz) inside one TS packet
    i = heads[len(heads) // 2]
    d[i + 1] = 0xF0  # a CRC present...
    d[i + 6] = (d[i + 6] & 0xFC) | 1  # ...with two raw data blocks: "patches welcome"
    (tmp_path / "bad.ts").write_bytes(d)
    sink = copy_through(tmp_path / "bad.ts", tmp_path / "o.mp4")
    assert "output stream #1: 1 damaged packet(s) the muxer refused were left out" in sink.fallbacks
    with av.open(str(tmp_path / "o.mp4")) as c:
        n = sum(1 for _ in c.demux(c.streams.audio[0]) if _.size)
    with av.open(str(src)) as c:
        assert n == sum(1 for _ in c.demux(c.streams.audio[0]) if _.size) - 1


def test_the_audio_of_a_joined_files_second_part_plays_with_its_video(tmp_path):
    """`cat video_only.ts with_audio.ts`: the second part's audio comes before its first video
    packet in the file, so it met no join and ran on its own clock, ~1 s before its video; a
    stream first met behind the others' time waits to see whether a join precedes it."""
    copy_through(_joined(tmp_path), tmp_path / "o.mkv")
    with av.open(str(tmp_path / "o.mkv")) as c:
        video = [f.time for f in c.decode(c.streams.video[0])]
    with av.open(str(tmp_path / "o.mkv")) as c:
        audio = [f.time for f in c.decode(c.streams.audio[0])]
    assert len(video) == 36 and video[26] == pytest.approx(26 / 25, abs=0.05)
    assert audio[0] == pytest.approx(video[26], abs=0.05) and audio[-1] < video[-1] + 0.1
