"""Session 31: a pipe or stdin as the input (``cat clip.mp4 | enhance /dev/fd/0``) got its default
output beside it, ``/dev/fd/0_enhanced.mp4``: every frame was restored, then nothing could be
saved (as root, ``/dev/stdin_enhanced.mp4`` went into the container's /dev); the start's check
of the output folder let /proc/self/fd pass (os.access says yes to root). Such an input is
written as ``stream_enhanced.mp4`` in the working folder, as default_output said of devices, and
a kernel folder is refused before any work."""
from __future__ import annotations

import os
import sys

import pytest

from stream_gpen.api import default_output
from stream_gpen.errors import OutputNotWritableError
from stream_gpen.io._sink import check_output_writable

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/dev/fd and /proc are Linux's")


@pytest.mark.parametrize("src", ["/dev/fd/0", "/dev/stdin", "/proc/self/fd/0", "/dev/null"])
def test_a_pipe_stdin_or_device_input_is_written_in_the_working_folder(src):
    assert default_output(src) == "stream_enhanced.mp4"


def test_a_fifo_or_file_in_a_folder_of_files_keeps_its_output_beside_it(tmp_path):
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    assert default_output(str(fifo)) == str(tmp_path / "feed_enhanced.mp4")
    clip = tmp_path / "clip.mkv"
    clip.write_bytes(b"")
    assert default_output(str(clip)) == str(tmp_path / "clip_enhanced.mkv")


def test_a_kernel_folder_is_refused_as_not_writable():
    for folder in ("/proc/self/fd", "/dev/fd", "/proc"):
        with pytest.raises(OutputNotWritableError, match=r"cannot write into the output folder .*: it is the "
                                                         r"kernel's \(/proc, /sys\), which takes no files"):
            check_output_writable(folder)
