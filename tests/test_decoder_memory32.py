"""Hunt 32: under an address-space limit (``ulimit -v``) a valid one-frame 7680x4320 H.264 clip
was refused as "no decodable video frame (1 corrupt packets) / the video data is damaged or
truncated": FFmpeg's ENOMEM (``av.error.MemoryError``, from ``avcodec_receive_frame()``) was counted
as a damaged part of the file. It is said as memory now (exit 4), with the frame's size and the limit."""
from __future__ import annotations

import errno
import resource

import av
import numpy as np
import pytest

from _clips import write_video
from stream_gpen.cli import main
from stream_gpen.errors import DecodeError
from stream_gpen.io import _source, open_source

LIMIT = 3_500_000 * 1024  # (ulimit -v 3500000: KiB)


class _NoRoom:
    """A video packet whose decoding fails as FFmpeg's does when it cannot allocate the frame."""

    def __init__(self, packet) -> None:
        self._packet = packet

    def __getattr__(self, name):
        return getattr(self._packet, name)

    def decode(self):
        av.error.err_check(-errno.ENOMEM, "avcodec_receive_frame()")  # (raises PyAV's own error for it)


@pytest.fixture
def no_room(monkeypatch):
    """Every video packet's decode runs out of memory, under an address-space limit of LIMIT."""
    packets = _source._Joins.packets

    def short_of_memory(self, stream):
        for p in packets(self, stream):
            yield _NoRoom(p) if p.stream.type == "video" and p.size else p

    monkeypatch.setattr(_source._Joins, "packets", short_of_memory)
    limits = resource.getrlimit
    monkeypatch.setattr(resource, "getrlimit",
                        lambda r: (LIMIT, resource.RLIM_INFINITY) if r == resource.RLIMIT_AS else limits(r))


def _clip(path):
    return write_video(path, [np.full((48, 64, 3), 128, np.uint8)] * 3)


def test_the_decoder_running_out_of_memory_is_said_as_memory_not_damage(tmp_path, no_room):
    clip = _clip(tmp_path / "in.mp4")
    with pytest.raises(DecodeError, match=r"out of memory decoding '.*in\.mp4': the decoder could not allocate a "
                                          r"64x48 frame \(Cannot allocate memory\); this process's address space is "
                                          r"limited to 3\.3 GiB \(ulimit -v\)") as e:
        open_source(str(clip), live=False)
    assert "damaged" not in str(e.value) and "ulimit -v" in e.value.hint
    assert e.value.exit_code == 4


def test_the_command_says_memory_and_exits_4(tmp_path, no_room, cli_env, capsys):
    """The command's probe before the model hid the decoder's message (its logger at ERROR)."""
    clip = _clip(tmp_path / "in.mp4")
    assert main(["enhance", str(clip), "-o", str(tmp_path / "out.mp4"), *cli_env]) == 4
    err = capsys.readouterr().err
    assert "out of memory decoding" in err and "64x48 frame" in err and "ulimit -v" in err, err
    assert "damaged" not in err and "corrupt" not in err, err
