"""Session 33: a live source's recording into ``.mp4``/``.mov`` killed with ``kill -9`` (or a power
cut) was lost whole: an mp4 has no index until it is finished, so the next run removed its
``.live.tmp`` as unplayable (a ``.mkv``'s was kept as ``NAME.partial.mkv``). It is written
fragmented now (a ``moof`` each second), so what reached the disk plays and is kept the same way;
a recording that ends cleanly is made a regular mp4 in place (FFmpeg's ``hybrid_fragmented``)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from _clips import write_video
from stream_gpen.io import FileSink, open_source
from stream_gpen.io._source import VideoSource

_ROOT = Path(__file__).resolve().parents[1]

# records a live source (4 s at 10 fps, handed out at once: not paced, no wall time) until killed,
# saying "go" once the writer thread has muxed 3 s (the fragments of the first 2 s have ended)
_RECORD = """
import sys, time
from stream_gpen.io import FileSink
from stream_gpen.io._source import VideoSource
with VideoSource("lavfi:testsrc2=size=64x48:rate=10", pace=False) as s:
    sink = FileSink(sys.argv[1], source=s, preset="ultrafast", audio="none")
    for i, f in enumerate(s):
        sink.write(f)
        if i == 39:
            break
    while sink.packets_muxed < 30:
        time.sleep(0.01)
    print(sink._path, flush=True)
    time.sleep(600)
"""


def _boxes(path) -> list[str]:
    """The top-level box types of an mp4/mov file."""
    data, i, out = Path(path).read_bytes(), 0, []
    while i + 8 <= len(data):
        size, kind = int.from_bytes(data[i:i + 4], "big"), data[i + 4:i + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[i + 8:i + 16], "big")
        out.append(kind)
        i += size or len(data)
    return out


@pytest.mark.parametrize("name", ["rec.mp4", "rec.mov"])
def test_a_killed_live_mp4_recording_is_kept_as_partial(tmp_path, monkeypatch, name):
    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    target = tmp_path / name
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", _RECORD, str(target)], stdout=subprocess.PIPE, text=True,
                             env=env, cwd=tmp_path)
    try:
        temp = Path(child.stdout.readline().strip())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert temp.name.endswith(".live.tmp" + target.suffix) and temp.is_file()
    # the next run of that output keeps it, playable
    src = write_video(tmp_path / "in.mp4", [np.zeros((48, 64, 3), np.uint8)] * 3)
    with open_source(src) as s, FileSink(target, source=s, preset="ultrafast", audio="none") as sink:
        for f in s:
            sink.write(f)
    kept = tmp_path / f"rec.partial{target.suffix}"
    assert kept.is_file() and not temp.exists(), sink.fallbacks
    assert any(f"kept {kept.name}" in f for f in sink.fallbacks), sink.fallbacks
    with av.open(str(kept)) as c:
        times = [float(f.time) for f in c.decode(video=0)]
    assert len(times) >= 20 and times[0] == 0.0 and times == sorted(times)


def test_a_finished_live_mp4_recording_is_a_regular_mp4(tmp_path):
    with VideoSource("lavfi:testsrc2=size=64x48:rate=10", pace=False) as s:
        with FileSink(tmp_path / "rec.mp4", source=s, preset="ultrafast", audio="none") as sink:
            assert "hybrid_fragmented" in sink._out.options["movflags"]
            given = []
            for f in s:
                sink.write(f)
                given.append(round(float(f.time), 3))
                if len(given) == 25:
                    break
    boxes = _boxes(tmp_path / "rec.mp4")
    assert "moof" not in boxes and boxes[-1] == "moov", boxes  # (the index whole, after the samples)
    with av.open(str(tmp_path / "rec.mp4")) as c:
        v = c.streams.video[0]
        assert v.frames == 25  # (in its header, as a regular mp4's)
        times = [round(float(f.time), 3) for f in c.decode(video=0)]
    assert times == given and sink.frames_written == 25
