"""A photo's output over the file-size limit (hunt 30): ``EFBIG`` (this process's RLIMIT_FSIZE,
``ulimit -f``; a FAT32 drive's 4 GiB) was a bare OSError naming no file ("cannot write or read a
file (File too large)", with the hint of a full or read-only folder); now a FileTooLargeError naming
the file and which limit, exit 4, and in a folder run that photo is skipped while the rest are
written. A video's (already an EncodeError with the limit's hint) is pinned beside it."""
from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stream_gpen import StreamGpenError
from stream_gpen import errors
from tests._clips import write_video

ROOT = Path(__file__).resolve().parents[1]


def _too_large(monkeypatch, *, limit: int | None, first_only: bool = False):
    from stream_gpen.io import _image

    tried = []
    own = _image.ImageSink._write

    def too_large(self, frame):
        tried.append(frame.rel_path)
        if first_only and len(tried) > 1:
            return own(self, frame)
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(_image.ImageSink, "_write", too_large)
    monkeypatch.setattr(_image, "_file_size_limit", lambda: limit)
    return tried


def test_a_photo_over_the_process_limit_is_a_stream_gpen_error_naming_the_file(tmp_path, enh, face, monkeypatch):
    _too_large(monkeypatch, limit=8192)
    face.save(tmp_path / "a.jpg")
    out = tmp_path / "out.jpg"
    with pytest.raises(errors.FileTooLargeError, match=rf"cannot write {out}: it is larger than this process may "
                       r"write \(its file-size limit: 8192 bytes\) \(File too large\)") as e:
        enh.enhance_file(tmp_path / "a.jpg", out)
    assert isinstance(e.value, StreamGpenError) and isinstance(e.value, OSError)
    assert not isinstance(e.value, errors.DiskFullError)  # (the drive may have room)
    assert e.value.errno == errno.EFBIG and e.value.exit_code == 4 and e.value.filename == str(out)
    assert "ulimit -f unlimited" in e.value.hint and "quality=80" in e.value.hint, e.value.hint


def test_a_photo_over_its_drive_s_largest_file_says_so(tmp_path, enh, face, monkeypatch):
    _too_large(monkeypatch, limit=None)
    face.save(tmp_path / "a.jpg")
    out = tmp_path / "out.tif"
    with pytest.raises(errors.FileTooLargeError, match=rf"cannot write {out}: it is larger than its drive holds "
                       r"in one file \(FAT32.*4 GiB\)") as e:
        enh.enhance_file(tmp_path / "a.jpg", out)
    assert "exFAT" in e.value.hint and "image_format='jpg'" in e.value.hint, e.value.hint


def test_a_folder_run_skips_the_photo_over_the_limit_and_writes_the_rest(tmp_path, enh, face, monkeypatch):
    tried = _too_large(monkeypatch, limit=8192, first_only=True)
    album = tmp_path / "album"
    album.mkdir()
    for n in ("a.jpg", "b.jpg"):
        face.save(album / n)
    summary = enh.enhance_file(album, tmp_path / "out")  # (the command's exit 5: a file of it failed)
    assert tried == ["a.jpg", "b.jpg"]
    assert (tmp_path / "out" / "b.jpg").is_file() and not (tmp_path / "out" / "a.jpg").exists()
    skipped = summary.skipped
    assert len(skipped) == 1 and skipped[0].startswith("a.jpg: could not be written (FileTooLargeError: cannot write "
                                                       f"{tmp_path / 'out' / 'a.jpg'}: it is larger than"), skipped


def _run_limited(args, limit: int, cwd) -> subprocess.CompletedProcess:
    def small_files():  # (Python ignores SIGXFSZ: the write fails with EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "stream_gpen", "enhance", *args], preexec_fn=small_files, cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)


def test_the_cli_says_a_photo_over_ulimit_f_with_its_name(tmp_path, cli_env, face):
    face.resize((192, 128)).save(tmp_path / "a.png")  # (a PNG of some 40 kB)
    r = _run_limited(["a.png", "-o", "out.png", *cli_env], 8192, tmp_path)
    assert r.returncode == 4, r.stderr
    assert "error: cannot write out.png: it is larger than this process may write (its file-size limit: " \
           "8192 bytes)" in r.stderr, r.stderr
    assert "hint: raise that limit (ulimit -f unlimited" in r.stderr and "--image-format jpg" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["a.png"]  # (no temporary file left)


def test_the_cli_says_a_video_over_ulimit_f_with_its_name(tmp_path, cli_env):
    rng = np.random.default_rng(0)
    write_video(tmp_path / "v.mp4", [rng.integers(0, 255, (64, 96, 3), dtype=np.uint8) for _ in range(10)])
    r = _run_limited(["v.mp4", "-o", "out.mp4", *cli_env], 8192, tmp_path)
    assert r.returncode == 4, r.stderr
    assert "error: finishing out.mp4 failed: File too large" in r.stderr, r.stderr
    assert "hint: this process may write files of at most 8192 bytes" in r.stderr, r.stderr
    assert not (tmp_path / "out.mp4").exists()
