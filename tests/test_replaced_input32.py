"""Hunt 32: a local input written over by another process while it was read (``cp other.mp4 IN``,
``truncate``) was said to be "damaged" or to have "grown", and the run ended with exit 0 and an
output made of two files. The read now fails (DecodeError, exit 4); a file only appended to (a
recording still being written) is still said to have grown (tests/test_source_hunt14.py)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from stream_gpen.errors import DecodeError
from stream_gpen.io import open_source
from stream_gpen.io import _source
from tests._clips import fed_fifo, ts_clip, write_video


def _clip(path, n, seed):
    """A 96x64 H.264 mp4 of ``n`` noisy frames (some kilobytes each: the read takes many reads)."""
    rng = np.random.default_rng(seed)
    return write_video(path, (rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for _ in range(n)))


def _after_packets(monkeypatch, n, action):
    """Run ``action()`` once, in the decode thread, when the demuxer has given ``n`` packets: the
    other process's write lands at a known point of the read, whatever the timing."""
    count = [0]
    step = _source._Reads.__next__

    def counted(self):
        count[0] += 1
        if count[0] == n:
            action()
        return step(self)

    monkeypatch.setattr(_source._Reads, "__next__", counted)


def _read_all(path) -> int:
    n = 0
    with open_source(str(path)) as src:
        for f in src:
            f.release()
            n += 1
    return n


def test_an_input_overwritten_by_a_larger_file_fails_the_run(tmp_path, monkeypatch):
    """``cp bigger.mp4 IN`` mid-run (same inode, more bytes than before): was "grew by ... MB"."""
    inp, other = tmp_path / "in.mp4", _clip(tmp_path / "other.mp4", 120, 2)
    _clip(inp, 60, 1)
    assert other.stat().st_size > inp.stat().st_size
    _after_packets(monkeypatch, 10, lambda: inp.write_bytes(other.read_bytes()))
    with pytest.raises(DecodeError, match=r"'.*in\.mp4' was overwritten .* by another process during the run") as e:
        _read_all(inp)
    assert e.value.exit_code == 4


def test_an_input_truncated_mid_run_fails_the_run(tmp_path, monkeypatch):
    """``truncate -s 30000 IN`` mid-run: was "IN is damaged at about ... s", exit 0."""
    inp = _clip(tmp_path / "in.mp4", 60, 1)
    size = inp.stat().st_size
    _after_packets(monkeypatch, 10, lambda: os.truncate(inp, size // 3))
    with pytest.raises(DecodeError, match=rf"was truncated \(to {size // 3:,} of the {size:,} bytes .*\) by another "
                                          "process during the run"):
        _read_all(inp)


def test_an_input_replaced_by_another_file_fails_the_run(tmp_path, monkeypatch):
    """Another file moved over the input (a new inode at its path) mid-run."""
    inp, other = _clip(tmp_path / "in.mp4", 60, 1), _clip(tmp_path / "other.mp4", 60, 2)
    _after_packets(monkeypatch, 10, lambda: os.replace(other, inp))
    with pytest.raises(DecodeError, match="was replaced with another file by another process during the run"):
        _read_all(inp)


def test_an_input_appended_to_mid_run_still_reads_as_grown(tmp_path, monkeypatch):
    """A recording still being written (bytes only added at its end) is no replaced file: read to
    its end, no error (and said to have grown where the read missed the new part)."""
    rec = tmp_path / "rec.ts"
    rec.write_bytes(bytes(ts_clip(tmp_path / "a.ts", 50)))
    more = bytes(ts_clip(tmp_path / "b.ts", 25, t0=2.0))

    def append():
        with open(rec, "ab") as w:
            w.write(more)

    _after_packets(monkeypatch, 5, append)
    assert _read_all(rec) >= 50


def test_an_input_touched_mid_run_is_not_said_to_be_replaced(tmp_path, monkeypatch):
    """A new modification time alone (``touch``), the same bytes: not written over."""
    inp = _clip(tmp_path / "in.mp4", 30, 1)
    _after_packets(monkeypatch, 5, lambda: os.utime(inp, ns=(1, 1)))
    assert _read_all(inp) == 30


def test_a_fifo_input_is_not_sampled(tmp_path):
    """The bytes sampled at the open (to tell a file written over) are not taken from a FIFO: they
    would be the decoder's, lost (and the open would wait for a writer)."""
    fifo = tmp_path / "in.ts"
    writer = fed_fifo(fifo, bytes(ts_clip(tmp_path / "a.ts", 25)))
    try:
        assert _read_all(fifo) == 25
    finally:
        writer.join(5)
