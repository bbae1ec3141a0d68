"""Recordings joined end to end (``cat a.ts b.ts``: two clips encoded apart, each clock from the
same start) and the stream copy (hunt 34). ``remux`` gave the mp4/mkv/mov muxers the clock's step
back at the join, which they refuse ("Invalid argument"), and ``--copy-if-no-faces`` kept the
re-encode of such a file with a note where it could copy it. Now the copy puts the recordings on
one clock as the read does for the re-encode (``on_one_clock``): the later one runs on from the
earlier one's end, its audio tracks moved with its video."""
from __future__ import annotations

import av
import numpy as np
import pytest
from _clips import encode_frames, write_audio

from stream_gpen.io import remux

COPIED = "no faces found: the input was stream-copied to the output (copy_if_no_faces=True)"


def _part(path, grey: int, tracks: int) -> bytes:
    """A 1 s MPEG-TS clip: 25 flat frames (``grey`` and on) and ``tracks`` AAC tracks of a tone."""
    with av.open(str(path), "w", format="mpegts") as c:
        v = c.add_stream("libx264", rate=25, options={"bf": "0", "g": "25"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        audio = [c.add_stream("aac", rate=8000, layout="stereo") for _ in range(tracks)]
        encode_frames(c, v, [np.full((48, 64, 3), grey + i, np.uint8) for i in range(25)])
        for a in audio:
            write_audio(c, a, 1.0)
    return path.read_bytes()


@pytest.fixture
def joined(tmp_path):
    path = tmp_path / "joined.ts"
    path.write_bytes(_part(tmp_path / "a.ts", 20, 2) + _part(tmp_path / "b.ts", 150, 2))
    return path


def _streams(path) -> dict[int, list[float]]:
    """Each stream's packet times (dts, s) in file order."""
    with av.open(str(path)) as c:
        out: dict[int, list[float]] = {s.index: [] for s in c.streams}
        for p in c.demux():
            if p.size and p.dts is not None:
                out[p.stream.index].append(float(p.dts * p.time_base))
    return out


def _check_joined(path):
    """Both recordings, in order, each stream's times going forward, the second recording's
    audio starting with its video (not 1 s before it, on its own clock)."""
    with av.open(str(path)) as c:
        frames = [(float(f.time), int(f.to_ndarray()[0, 0])) for f in c.decode(c.streams.video[0])]
        assert len(c.streams.audio) == 2
    times, greys = zip(*frames)
    assert len(frames) == 50 and np.diff(times).min() > 0.035 and np.diff(times).max() < 0.3, times  # (the join: up to an AAC frame more)
    assert greys[0] < 60 and greys[25] > 130, greys  # (the first recording first)
    streams = _streams(path)
    for i, ts in streams.items():
        assert ts and all(b > a for a, b in zip(ts, ts[1:])), (i, ts)
    join = times[25]
    for i, ts in streams.items():
        if i:  # each audio track: as long as both recordings, its second half starting at the join
            assert ts[-1] > join + 0.8 and any(abs(t - join) < 0.2 for t in ts), (i, join, ts)


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov"])
def test_a_joined_ts_with_two_audio_tracks_is_copied(joined, tmp_path, ext):
    assert remux(joined, tmp_path / f"o{ext}") == 50
    _check_joined(tmp_path / f"o{ext}")


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov"])
def test_copy_if_no_faces_copies_joined_recordings(joined, tmp_path, enh, ext):
    """The copy is on the re-encode's timeline: its frames at the re-encode's times."""
    s = enh.enhance_file(joined, tmp_path / f"o{ext}", copy_if_no_faces=True)
    assert s.encoder == "copy" and COPIED in s.fallbacks, s.fallbacks
    _check_joined(tmp_path / f"o{ext}")
    enh.enhance_file(joined, tmp_path / f"re{ext}")
    assert _frame_times(tmp_path / f"o{ext}") == pytest.approx(_frame_times(tmp_path / f"re{ext}"), abs=2e-3)


def _frame_times(path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.time) for f in c.decode(c.streams.video[0])]
