"""A named pipe as camera's source, and a stop while a source is opening (hunt 31)."""

import errno
import os
import stat

import av
import pytest

from stream_gpen import _finishing, commands
from stream_gpen.io._source import VideoSource

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


@pytest.fixture
def stopped():
    _finishing.clear_stop()
    yield
    _finishing.clear_stop()


@pytest.mark.parametrize("signal_, message", [("Ctrl-C", ""), ("SIGTERM", "SIGTERM received")])
@pytest.mark.parametrize("failure", [OSError(errno.EINTR, "Interrupted system call"),
                                     av.error.ExitError(-1414092869, "Immediate exit requested")])
def test_stop_while_the_source_opens_is_a_stop(monkeypatch, fifo, stopped, signal_, message, failure):
    # a FIFO nobody writes to: the open blocks until the signal's handler has asked the stop,
    # and FFmpeg's open then fails with EINTR (or PyAV's interrupt callback's ExitError)
    src, _ = fifo

    def open_(*a, **k):
        _finishing.ask_stop(signal_)
        raise failure

    monkeypatch.setattr(av, "open", open_)
    with pytest.raises(KeyboardInterrupt) as info:
        VideoSource(str(src)).__enter__()
    assert str(info.value) == message


def test_open_failure_without_a_stop_is_still_the_input_s(monkeypatch, fifo, stopped):
    src, _ = fifo

    def open_(*a, **k):
        raise OSError(errno.EINTR, "Interrupted system call")

    monkeypatch.setattr(av, "open", open_)
    with pytest.raises(Exception, match="cannot open") as info:
        VideoSource(str(src)).__enter__()
    assert not isinstance(info.value, KeyboardInterrupt)
