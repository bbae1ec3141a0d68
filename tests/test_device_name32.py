"""A source named by ASCII digits is a capture device's number only where no file or folder of that
name is here: ``enhance 20240101`` of a video named so said "capture device '20240101' is not
available" (exit 2); and ``²`` or Arabic-Indic digits (``str.isdigit``) were taken for a number."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from _clips import write_video
from stream_gpen.cli import main
from stream_gpen.io._source import _classify


def test_a_file_named_by_digits_is_that_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "platform", "linux")
    assert _classify("20240101")[:3] == ("device", "/dev/video20240101", "v4l2")
    (tmp_path / "20240101").write_bytes(b"x")
    assert _classify("20240101")[0] == "file"
    (tmp_path / "7").mkdir()
    assert _classify("7")[0] == "file"
    for name in ("²", "٣", "０"):  # (no device is called so: a file's name, found or not)
        assert _classify(name)[0] == "file"
    (tmp_path / "0").write_bytes(b"x")
    assert _classify(0)[0] == "device"  # (an index, stream(0): a device's number whatever is here)


@pytest.mark.parametrize("platform, want", [("linux", ("device", "/dev/video0", "v4l2")),
                                            ("darwin", ("device", "0", "avfoundation"))])
def test_camera_0_is_the_first_camera_where_no_file_is_named_so(tmp_path, monkeypatch, platform, want):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "platform", platform)
    assert _classify("0")[:3] == want
    from stream_gpen.commands import _refuse_still_source

    _refuse_still_source("0")  # (a device: not sniffed as a photo or folder)
    (tmp_path / "0").mkdir()
    with pytest.raises(Exception, match="the camera's source is a folder"):
        _refuse_still_source("0")


def test_enhance_reads_a_video_named_by_digits(tmp_path, monkeypatch, cli_env):
    monkeypatch.chdir(tmp_path)
    write_video(tmp_path / "v.mp4", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)])
    (tmp_path / "v.mp4").rename(tmp_path / "20240101")
    assert main(["enhance", "20240101", "-o", "out.mp4", *cli_env]) == 0
    assert (tmp_path / "out.mp4").stat().st_size > 0


def test_camera_with_no_source_opens_the_first_camera_whatever_file_is_named_0(tmp_path, monkeypatch, cli_env):
    """On macOS and Windows camera's default is "0": a file or folder named so in the working folder
    is not it (camera 0, typed, reads such a file, as enhance does)."""
    import stream_gpen.commands as commands
    from stream_gpen.errors import InvalidInputError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "platform", "darwin")
    (tmp_path / "0").mkdir()
    opened = []

    def run_camera(enh, source, **kw):
        opened.append(source)
        raise InvalidInputError("no capture device here")  # (the device layer, mocked)

    monkeypatch.setattr(commands, "run_camera", run_camera)
    assert main(["camera", "--frames", "1", "-o", "/dev/null", *cli_env]) == 2
    assert opened == [0]
