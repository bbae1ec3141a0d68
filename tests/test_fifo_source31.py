"""A named pipe as camera's source, and a stop while a source is opening (hunt 31)."""

import os
import stat

import pytest

from stream_gpen import commands

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "feed"
    os.mkfifo(path)
    # held open for reading and writing here (Linux): the check's own open never waits for a writer
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    yield path, fd
    os.close(fd)


def test_camera_fifo_source_is_not_read_before_ffmpeg_opens_it(fifo):
    path, fd = fifo
    # (what a photo's first bytes would say; over the 4096 bytes the old check read, so that it
    # did not wait for more from the writer, which stays)
    head = b"\x89PNG\r\n\x1a\n" + b"\0" * 8184
    os.write(fd, head)
    commands._refuse_still_source(str(path))  # not taken for a photo: its bytes are the stream's
    assert stat.S_ISFIFO(os.stat(path).st_mode)
    assert os.read(fd, 16384) == head  # nothing was taken out of the pipe
