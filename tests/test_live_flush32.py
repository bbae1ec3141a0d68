"""A live source's recording on the disk as it is made (hunt 32): a camera's ``-o rec.mkv`` killed
with ``kill -9`` after 47 s left a 0-byte file, as FFmpeg held everything in its 256 KB write
buffer (and Matroska each 5 s cluster in memory). README: record into ``.mkv`` to keep what a
``kill -9`` or a power cut leaves. Now each packet is written out and a cluster ends every second."""
from __future__ import annotations

import shutil
import time

import av
import numpy as np
import pytest

from _clips import write_video
from stream_gpen.io import FileSink, open_source
from stream_gpen.io._source import VideoSource


def _frames_on_disk(path, into) -> int:
    """The frames a copy of ``path`` as it is now (what a ``kill -9`` would leave) decodes to."""
    shutil.copyfile(path, into)
    try:
        with av.open(str(into)) as c:
            return sum(1 for _ in c.decode(video=0))
    except av.error.FFmpegError:
        return 0


@pytest.mark.parametrize("name", ["rec.mkv", "rec.ts"])
def test_a_live_recording_is_on_the_disk_before_it_is_finished(tmp_path, name):
    # 4 s of frames at 10 fps, handed out at once (not paced: no wall time in the test)
    with VideoSource("lavfi:testsrc2=size=64x48:rate=10", pace=False) as s:
        assert s.live
        with FileSink(tmp_path / name, source=s, preset="ultrafast", audio="none") as sink:
            for i, f in enumerate(s):
                sink.write(f)
                if i == 39:
                    break
            for _ in range(3000):  # (the writer thread muxes them: up to 30 s on a loaded machine)
                if sink.packets_muxed >= 30:
                    break
                time.sleep(0.01)
            assert sink.packets_muxed >= 30
            # (3 s muxed: the clusters of the first 2 s have ended, and reached the disk)
            assert _frames_on_disk(sink._path, tmp_path / f"copy{name[3:]}") >= 20


def test_a_recording_of_a_file_is_left_to_the_write_buffer(tmp_path):
    src = write_video(tmp_path / "in.mp4", [np.zeros((48, 64, 3), np.uint8)] * 3)
    with open_source(src) as s:
        sink = FileSink(tmp_path / "o.mkv", source=s, preset="ultrafast", audio="none")
        try:
            assert "flush_packets" not in sink._out.options  # (read again from the file if it fails)
        finally:
            sink._discard()


def test_live_flush_options():
    from stream_gpen.io._sink import LIVE_FLUSH_MS, _live_flush

    assert _live_flush("matroska") == {"flush_packets": "1", "cluster_time_limit": str(LIVE_FLUSH_MS)}
    assert _live_flush("webm")["cluster_time_limit"] == "1000"
    assert _live_flush("mpegts") == {"flush_packets": "1"}  # (no option a muxer would leave unused)
