"""Session 33 (audioscan): the look-ahead over copied audio (audio_copy_hazards) reads the input
once for all its audio tracks, not once per track (a TV recording's three tracks into .mp4 were
read three times over before the run began), and still judges each track by itself."""
from __future__ import annotations

import av
import pytest

from stream_gpen.io import _sink, open_sink, open_source
from stream_gpen.io._remux import remux

from test_audio32 import _audio, _clip, _switching


def _opens(monkeypatch, path) -> list:
    """The calls of av.open for ``path`` from now on (to read, not to write)."""
    seen, real = [], av.open

    def counted(file, *a, **k):
        if str(file) == str(path) and (a[:1] or [k.get("mode", "r")])[0] == "r":
            seen.append(file)
        return real(file, *a, **k)

    monkeypatch.setattr(av, "open", counted)
    return seen


@pytest.mark.parametrize("part", [None, 1.2])
def test_three_adts_tracks_copied_into_mp4_are_read_once(tmp_path, monkeypatch, part):
    # a TV recording's three ADTS AAC tracks, all turning 5.1 at 1 s: one read judges them all,
    # the whole file, or a part wholly after the change (read from a seek: nothing to transcode)
    src = _switching(tmp_path, 48000, ("5.1", "5.1", "5.1"))
    with av.open(str(src)) as c:
        streams = list(c.streams.audio)
        t0 = float(streams[0].start_time * streams[0].time_base)
        opens = _opens(monkeypatch, src)
        found = _sink.audio_copy_hazards(src, streams, "mov,mp4,m4a,3gp,3g2,mj2",
                                         None if part is None else (t0 + part, None))
        indices = [s.index for s in streams]
    assert len(opens) == 1, opens
    assert sorted(found) == indices, found
    if part is None:
        assert all("changes from 2 channel(s)" in found[i] for i in indices), found
    else:
        assert not any(found.values()), found


def test_the_sink_reads_the_input_once_for_three_copied_tracks(tmp_path, monkeypatch):
    src = _switching(tmp_path, 48000, ("stereo", "stereo", "stereo"))
    with open_source(src) as source:
        opens = _opens(monkeypatch, src)
        with open_sink(tmp_path / "o.mp4", source=source, preset="ultrafast") as sink:
            for f in source:
                sink.write(f)
    assert len(opens) == 1, opens  # (the look-ahead's one read)
    assert not any("transcoded" in f for f in sink.fallbacks), sink.fallbacks
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"] * 3


def test_only_the_track_that_changes_is_transcoded(tmp_path):
    # two tracks, the second alone turning 5.1 at 1 s: the first is copied, the second transcoded
    src = _switching(tmp_path, 48000, ("stereo", "5.1"))
    with av.open(str(src)) as c:
        first, second = (s.index for s in c.streams.audio)
        found = _sink.audio_copy_hazards(src, list(c.streams.audio), "mp4")
    assert found[first] is None, found
    assert "changes from 2 channel(s) at 48000 Hz to 6 channel(s)" in found[second], found
    with open_source(src) as source, open_sink(tmp_path / "o.mkv", source=source, preset="ultrafast") as sink:
        for f in source:
            sink.write(f)
    said = [f for f in sink.fallbacks if "transcoded" in f]
    assert len(said) == 1 and f"#{second} " in said[0] and "ADTS AAC changes" in said[0], sink.fallbacks
    n, rate, _ = _audio(tmp_path / "o.mkv")  # (the copied first track: decodes whole)
    assert abs(n / rate - 2.0) < 0.12, n / rate


def test_the_copy_if_no_faces_remux_reads_the_input_once(tmp_path, monkeypatch):
    src = _clip(tmp_path / "three.ts", "aac", layout=("stereo", "mono", "stereo"), vdur=2, adur=2)
    opens = _opens(monkeypatch, src)
    remux(src, tmp_path / "o.mp4")
    assert len(opens) == 2, opens  # (the copy's own read, and the look-ahead's)
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert [s.codec_context.layout.name for s in c.streams.audio] == ["stereo", "mono", "stereo"]
