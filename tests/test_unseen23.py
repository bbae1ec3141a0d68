"""Hunt 23 (unseen inputs): MPEG-TS KLV telemetry named and copied, a trimmed track left empty
said, and the field order of --deinterlace off into .mkv."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests._clips import copy_through


# --- KLV / timed ID3 in MPEG-TS -------------------------------------------------------------------
def _ts_with_data(path: Path, codec: str = "klv", n: int = 25) -> Path:
    """A drone-like .ts: 25 fps H.264 and a ``codec`` data stream, a packet a frame (pts i*3600
    at 1/90000), each a 16-byte key, a length and ``frameNNN``."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        ds = c.add_data_stream(codec)
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 9 * i % 250, np.uint8), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in vs.encode(f):
                c.mux(p)
            val = b"frame%03d" % i
            if codec == "timed_id3":
                body = b"TXXX" + (len(val) + 2).to_bytes(4, "big") + b"\0\0\0" + val + b"\0"
                payload = b"ID3\x04\x00\x00" + bytes([0, 0, 0, len(body)]) + body
            else:
                payload = bytes(range(16)) + bytes([len(val)]) + val
            d = av.Packet(payload)
            d.stream, d.pts, d.dts, d.time_base = ds, i * 3600, i * 3600, Fraction(1, 90000)
            c.mux(d)
        for p in vs.encode(None):
            c.mux(p)
    return path


def _data_packets(path: Path) -> tuple[str | None, list[tuple[int, bytes]]]:
    with av.open(str(path)) as c:
        ds = c.streams.data
        assert len(ds) == 1
        tb = ds[0].time_base
        return ds[0].name, [(round(p.pts * tb * 1000), bytes(p)[-3:]) for p in c.demux(ds[0]) if p.size]


@pytest.mark.parametrize("codec", ["klv", "timed_id3"])
def test_ts_metadata_tracks_are_copied_into_ts(tmp_path, codec):
    """Was: MISB KLV telemetry of a drone's .ts read as "unknown codec" (PyAV gives a data stream
    no codec context; FFmpeg names it klv) and "dropped: its format is unknown" from every
    output, though FFmpeg's mpegts muxer copies all of it back (timed ID3 too)."""
    src = _ts_with_data(tmp_path / "uas.ts", codec)
    out = tmp_path / "o.ts"
    sink = copy_through(src, out)
    assert not [m for m in sink.dropped + sink.fallbacks if "data stream" in m]
    name, packets = _data_packets(out)
    t0 = packets[0][0]
    assert name == codec
    tail = "%03d" if codec == "klv" else "%02d\0"  # (the last bytes of each packet: its number)
    assert [(t - t0, v) for t, v in packets] == [(40 * i, tail.encode() % i) for i in range(25)]


def test_klv_is_cut_with_the_video(tmp_path):
    """--start/--duration cut the KLV track like other data tracks (GoPro's gpmd)."""
    src = _ts_with_data(tmp_path / "uas.ts")
    copy_through(src, tmp_path / "o.ts", source_kw={"start": 0.4, "duration": 0.4})
    _, packets = _data_packets(tmp_path / "o.ts")
    t0 = packets[0][0]
    assert [(t - t0, v) for t, v in packets] == [(40 * k, b"%03d" % (10 + k)) for k in range(10)]


@pytest.mark.parametrize("ext", [".mkv", ".mp4", ".mov"])
def test_klv_dropped_elsewhere_says_where_it_is_kept(tmp_path, ext):
    """Was: "data stream #1 (unknown codec) dropped: its format is unknown (FFmpeg names no codec
    for it)". Matroska and mp4 refuse klv packets, mov writes a track read back with no codec."""
    src = _ts_with_data(tmp_path / "uas.ts", n=5)
    sink = copy_through(src, tmp_path / f"o{ext}")
    assert [m for m in sink.dropped if "data stream" in m] == [
        "data stream #1 (klv) dropped: KLV metadata (MISB drone/UAS telemetry) is copied into MPEG-TS (.ts) only "
        "(write .ts to keep it)"]


def test_info_names_klv(tmp_path):
    """Was: `info` said "data stream 1, name unknown codec" for a drone's KLV track."""
    from stream_gpen.commands import describe_input

    info = describe_input(str(_ts_with_data(tmp_path / "uas.ts", n=5)))
    assert info["data"] == [{"stream": 1, "name": "klv", "codec": "klv"}]
    assert not [line for line in info["plan"] if "data stream" in line]  # (.ts keeps it)


def test_klv_is_kept_by_the_no_face_stream_copy(tmp_path, caplog):
    """--copy-if-no-faces (the remux; a drone's footage mostly has no faces) dropped the KLV track
    "data stream #1 dropped: not copied" where the encoding sink keeps it."""
    from stream_gpen.io._remux import remux

    src = _ts_with_data(tmp_path / "uas.ts")
    assert remux(src, tmp_path / "o.ts") == 25
    name, packets = _data_packets(tmp_path / "o.ts")
    assert name == "klv" and [v for _, v in packets] == [b"%03d" % i for i in range(25)]
    with caplog.at_level("INFO", logger="stream_gpen"):
        remux(src, tmp_path / "o.mkv")
    assert "data stream #1 (klv) dropped: KLV metadata (MISB drone/UAS telemetry) is copied into MPEG-TS" in caplog.text


# --- a part with no audio -------------------------------------------------------------------------
def _late_audio(path: Path) -> Path:
    """25 frames at 25 fps from 0, AAC (8 kHz mono) from 0.5 s to 1 s."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=8000, layout="mono")
        for i in range(25):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 9 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        for t in range(4000, 8000, 1024):
            af = av.AudioFrame.from_ndarray(np.full((1, 1024), 0.1, np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 8000, t, Fraction(1, 8000)
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    return path


@pytest.mark.parametrize("audio", ["copy", "aac"])
def test_a_part_with_no_audio_says_its_track_is_left_out(tmp_path, audio):
    """Was: --duration 0.3 of a clip whose audio starts at 0.5 s gave an .mp4 with no audio track
    (FFmpeg's mp4 muxer writes no track without samples) and not a word about it."""
    src = _late_audio(tmp_path / "late.mp4")
    sink = copy_through(src, tmp_path / "o.mp4", source_kw={"duration": 0.3}, audio=audio)
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert not c.streams.audio
    assert [m for m in sink.dropped if "stream #1" in m] == [
        "audio stream #1 (aac) had no packets in the chosen part (--start/--duration): left out (the mp4 container "
        "writes no empty audio track)"]
    sink = copy_through(src, tmp_path / "whole.mp4", source_kw={"duration": 0.8}, audio=audio)
    assert not [m for m in sink.dropped if "stream #1" in m]
