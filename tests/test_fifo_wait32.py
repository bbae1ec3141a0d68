"""A FIFO with no writer yet: the open still waits, and says so once (hunt 32)."""

import logging
import os
import threading
import time

import pytest

from stream_gpen.io import _source
from stream_gpen.io._source import VideoSource

from test_fifo_pace32 import _ts

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")


def test_a_fifo_without_a_writer_is_said_to_be_waited_for(tmp_path, monkeypatch, caplog):
    data = _ts(tmp_path / "clip.ts", 0.4)
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    monkeypatch.setattr(_source, "_PIPE_WAIT_NOTE_S", 0.05)
    got: dict = {}

    def read():
        try:
            with VideoSource(str(fifo)) as s:
                got["frames"] = sum(1 for f in s if f.release() or True)
        except BaseException as e:  # (handed to the test)
            got["error"] = e

    def said() -> list:
        return [r for r in caplog.records if "waiting for a writer" in r.getMessage()]

    with caplog.at_level(logging.INFO, logger="stream_gpen"):
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for _ in range(400):  # the open blocks until a writer comes: the note comes first
            if said():
                break
            time.sleep(0.025)
        assert said(), "nothing said while the FIFO had no writer"
        assert reader.is_alive()  # still waiting, not failed
        with open(fifo, "wb") as w:  # the writer comes: the source opens and reads it all
            w.write(data)
        reader.join(20)
    assert "error" not in got and got["frames"] == 10
    (note,) = said()  # once
    assert note.levelno == logging.WARNING
    assert "a pipe or FIFO: is its writer running?" in note.getMessage()
    assert str(fifo) in note.getMessage()
