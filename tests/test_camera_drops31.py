"""A camera with two outputs says once that the source's audio is dropped (hunt 31)."""

from __future__ import annotations

import contextlib
import logging

import av
import numpy as np

from stream_gpen.errors import EncodeError
from stream_gpen.io import FileSink, open_source


def _clip_with_sound(path) -> None:
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = out.add_stream("aac", rate=48000)
        for i in range(5):
            img = np.full((48, 64, 3), 40 * i, np.uint8)
            out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        for i in range(5):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, i * 1024
            out.mux(aus.encode(af))
        out.mux(vs.encode())
        out.mux(aus.encode())


def test_dropped_audio_said_once_for_two_outputs(tmp_path, caplog):
    src = tmp_path / "in.mkv"
    _clip_with_sound(src)
    caplog.set_level(logging.INFO, logger="stream_gpen")
    with open_source(str(src)) as s:
        sinks = [FileSink(tmp_path / name, source=s, preset="ultrafast", audio="none",
                          no_audio_why="a camera records video only") for name in ("a.mkv", "b.mkv")]
        for sink in sinks:
            with contextlib.suppress(EncodeError):  # (no frame written: only the opening matters here)
                sink.close()
    said = [r.getMessage() for r in caplog.records
            if r.levelno >= logging.INFO and "dropped: no audio asked for" in r.getMessage()]
    assert said == ["audio stream #1 (aac) dropped: no audio asked for (a camera records video only)"]
    assert all(any("no audio asked for" in d for d in sink.dropped) for sink in sinks)  # (each summary lists it)
