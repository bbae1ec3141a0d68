"""Streams and metadata beside the pictures, found by hunt 33: a container-level timecode, closed
captions that start late, DASH's tags and marks. Every input is built here, tiny."""
from __future__ import annotations

import av
import numpy as np
import pytest

from _clips import write_video
from stream_gpen.io import open_sink, open_source

W, H = 64, 48


def _frames(n: int) -> list[np.ndarray]:
    return [np.full((H, W, 3), (40 + 9 * i) % 240, np.uint8) for i in range(n)]


def _copy(src_path, dst, *, source_kw=None, **sink_kw):
    """Decode ``src_path`` and write every frame to ``dst``; the sink."""
    with open_source(src_path, **(source_kw or {})) as src:
        sink_kw.setdefault("preset", "ultrafast")
        with open_sink(dst, source=src, **sink_kw) as sink:
            for f in src:
                sink.write(f)
    return sink


# --- 1. a container-level timecode ----------------------------------------------------------------
@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_container_timecode_is_moved_by_start_and_written_once(tmp_path, ext):
    # (an MXF keeps its timecode at the file level only; a Matroska written so is the small stand-in)
    clip = write_video(tmp_path / "tc.mkv", _frames(20),
                       setup=lambda s: s.container.metadata.__setitem__("timecode", "10:00:00:00"))
    with av.open(str(clip)) as c:
        assert not any("timecode" in k.lower() for k in c.streams.video[0].metadata)
    out = tmp_path / f"o.{ext}"
    sink = _copy(clip, out, source_kw={"start": 0.4})
    assert not any("timecode" in m.lower() for m in sink.dropped), sink.dropped
    with av.open(str(out)) as c:
        found = [v for s in (c, *c.streams) for k, v in s.metadata.items() if k.lower() == "timecode"]
    # 0.4 s = 10 frames at 25 fps; never the input's unmoved one beside it (mov's muxer prefers a
    # global timecode to the stream's, Matroska wrote both)
    assert found and set(found) == {"10:00:00:10"}, found

