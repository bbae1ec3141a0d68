"""Session 31: a camera recording killed with ``kill -9`` left its hidden temporary output, the only
copy of footage that cannot be recorded again, and the next run writing the same ``-o`` deleted it
as a killed run's leftover. A live source's recording is marked ``.live.tmp`` now, and such a
leftover that plays (Matroska/WebM, MPEG-TS, FLV) is kept as ``NAME.partial.EXT``, said; one that
does not (an mp4 has no index until finished) and a file's run's leftovers are removed as before."""
from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np

from _clips import write_video
from stream_gpen.io import FileSink, open_source
from stream_gpen.io._meta import hidden_temp
from stream_gpen.io._partials import is_partial
from stream_gpen.io._sink import _machine_tag


def _dead_pid() -> str:
    return subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()


def _cut(path, into, keep: float = 0.6) -> None:
    """What ``kill -9`` leaves of a recording: the first part of its bytes, no trailer."""
    data = path.read_bytes()
    into.write_bytes(data[: int(len(data) * keep)])


def _frames() -> list:
    rng = np.random.default_rng(0)  # (noise: frames of some size, a cut falls between them)
    return [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(30)]


def _record(src, target) -> FileSink:
    with open_source(src) as s, FileSink(target, source=s, preset="ultrafast", audio="none") as sink:
        for f in s:
            sink.write(f)
    return sink


def test_a_killed_live_recording_that_plays_is_kept_as_partial(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    whole = write_video(tmp_path / "whole.mkv", _frames(), fmt="matroska")
    src = write_video(tmp_path / "in.mp4", _frames()[:3])
    target = tmp_path / "rec.mkv"
    gone, here = _dead_pid(), _machine_tag()
    live = hidden_temp(target, f".{here}-{gone}-0123abcd.live.tmp")
    other = hidden_temp(target, f".{here}-{gone}-4567abcd.tmp")  # a file's run: nothing lost
    _cut(whole, live)
    _cut(whole, other)
    with caplog.at_level(logging.WARNING, logger="stream_gpen"):
        sink = _record(src, target)
    kept = tmp_path / "rec.partial.mkv"
    assert kept.is_file() and not live.exists() and not other.exists() and target.is_file()
    with open(kept, "rb") as f:
        assert f.read() == whole.read_bytes()[: int(whole.stat().st_size * 0.6)]
    said = f"kept {kept.name}: the recording of a live source by a run that was killed"
    assert any(said in f for f in sink.fallbacks) and said in caplog.text
    assert any(f"removed {other.name}" in f for f in sink.fallbacks)
    assert not is_partial(kept)  # (not a stopped run's part: no finished run removes it)
    # an earlier part of that name is never replaced; the next goes beside it
    _cut(whole, live)
    _record(src, tmp_path / "rec2.mkv")  # (another output's run leaves it alone)
    assert live.exists()
    os.remove(target)
    _record(src, target)
    assert (tmp_path / "rec.partial-1.mkv").is_file() and kept.is_file() and not live.exists()


def test_a_killed_live_mp4_recording_is_removed_as_it_does_not_play(tmp_path):
    whole = write_video(tmp_path / "whole.mp4", _frames())
    src = write_video(tmp_path / "in.mp4", _frames()[:3])
    target = tmp_path / "rec.mp4"
    live = hidden_temp(target, f".{_machine_tag()}-{_dead_pid()}-0123abcd.live.tmp")
    _cut(whole, live, 0.9)  # (its index, the moov box, is written last)
    sink = _record(src, target)
    assert not live.exists() and not (tmp_path / "rec.partial.mp4").exists()
    assert any(f"removed {live.name}" in f for f in sink.fallbacks), sink.fallbacks


def test_a_live_sources_recording_is_marked(tmp_path):
    with open_source("lavfi:testsrc2=size=64x48:rate=5") as s:
        assert s.live
        sink = FileSink(tmp_path / "rec.mkv", source=s, preset="ultrafast", audio="none")
        try:
            assert sink._path.endswith(".live.tmp.mkv")
        finally:
            sink._discard()
    with open_source(write_video(tmp_path / "in.mp4", _frames()[:3])) as s:
        sink = FileSink(tmp_path / "o.mkv", source=s, preset="ultrafast", audio="none")
        try:
            assert sink._path.endswith(".tmp.mkv") and ".live." not in sink._path
        finally:
            sink._discard()
