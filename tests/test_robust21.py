"""Session 21 (robust21): a run whose finished video was kept under another name (its target
appeared meanwhile: a second run into the same -o) reports that file as its output, with its
frames and encoder (the report said frames_out 0, every frame dropped, output the other run's)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _clips import write_video
from stream_gpen.errors import EncodeError
from test_longrun_hunt17 import _appear_at_the_end


def test_the_report_of_a_video_kept_beside_names_it(tmp_path, enh, monkeypatch):
    import stream_gpen.io._sink as sink_mod

    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(5)])
    dst = tmp_path / "o.mp4"
    _appear_at_the_end(monkeypatch, sink_mod, dst, b"the other run's video")
    with pytest.raises(EncodeError, match="appeared during the run") as e:
        enh.enhance_file(src, dst, preset="ultrafast")
    s = e.value.summary
    kept = tmp_path / "o.restored.mp4"
    assert s.output == str(kept) and kept.exists()
    assert (s.frames_in, s.frames_out, s.frames_dropped) == (5, 5, 0)
    assert s.encoder == "libx264" and s.partial_output is None and "appeared during the run" in s.error
    d = json.loads(json.dumps(s.to_dict()))
    assert d["output"] == str(kept) and d["frames_out"] == 5


def test_the_cli_report_of_a_video_kept_beside_names_it(tmp_path, cli_env, monkeypatch):
    import stream_gpen.io._sink as sink_mod
    from stream_gpen.cli import main

    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(4)])
    dst = tmp_path / "o.mp4"
    _appear_at_the_end(monkeypatch, sink_mod, dst, b"the other run's video")
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(dst), "--report", str(report), *cli_env]) == 4
    d = json.loads(report.read_text())
    assert d["output"] == str(tmp_path / "o.restored.mp4") and d["frames_out"] == 4 and d["frames_dropped"] == 0
    assert dst.read_bytes() == b"the other run's video"


def test_a_file_size_limit_of_the_process_is_named(tmp_path):
    """robust21: "File too large" under `ulimit -f` blamed FAT32's 4 GiB on a 45 KB file."""
    import subprocess
    import sys

    code = ("import errno, resource\n"
            "from stream_gpen.io._sink import _encode_hint\n"
            "print(_encode_hint(OSError(errno.EFBIG, 'File too large')))\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (20480, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
            "print(_encode_hint(OSError(errno.EFBIG, 'File too large')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert "FAT32" in out[0]
    assert "at most 20480 bytes" in out[1] and "ulimit -f" in out[1] and "FAT32" not in out[1]


def test_a_dash_input_points_to_dev_stdin(tmp_path, cli_env, capsys, monkeypatch):
    from stream_gpen.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["enhance", "-", "-o", "o.mp4", *cli_env]) == 2
    err = capsys.readouterr().err
    assert "standard input is read as /dev/stdin" in err and "URLs need a scheme" not in err


def _unreadable(monkeypatch, folder):
    """``folder`` cannot be listed (as a folder of mode 000 for a user who is not root)."""
    import os

    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(folder):
            raise PermissionError(13, "Permission denied", str(folder))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_an_unreadable_subfolder_counts_as_skipped(tmp_path, cli_env, capsys, monkeypatch):
    from PIL import Image

    from stream_gpen.cli import main

    album = tmp_path / "album"
    (album / "ok").mkdir(parents=True)
    (album / "locked").mkdir()
    for p in (album / "ok" / "a.png", album / "locked" / "b.png"):
        Image.fromarray(np.full((40, 48, 3), 90, np.uint8)).save(p)
    _unreadable(monkeypatch, album / "locked")
    report = tmp_path / "r.json"
    assert main(["enhance", str(album), "-o", str(tmp_path / "out"), "--report", str(report), *cli_env]) == 5
    err = capsys.readouterr().err
    assert "1 folder(s) skipped" in err and "locked: folder left out: Permission denied" in err
    d = json.loads(report.read_text())
    assert d["frames_out"] == 1 and d["skipped"] == [f"{album / 'locked'}: folder left out: Permission denied"]
