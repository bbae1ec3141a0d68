"""Folder runs' reports and messages (session 31): what a folder run lists as skipped, says when
stopped, and leaves behind."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest


def test_a_folder_none_of_whose_photos_can_be_read_lists_them_in_its_report(tmp_path, cli_env):
    from stream_gpen.cli import main

    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "r.json"
    src.mkdir()
    (src / "x.jpg").write_bytes(b"x\n")
    (src / "y.png").write_bytes(b"not a picture " * 10)
    assert main(["enhance", str(src), "-o", str(out), "--report", str(report), *cli_env]) == 2
    r = json.loads(report.read_text())
    assert "none of the 2 images" in r["error"], r
    assert len(r["skipped"]) == 2 and str(src / "x.jpg") in r["skipped"][0] and str(src / "y.png") in r["skipped"][1], r
    assert not out.exists()


def _photo(path, shade=90):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((48, 64, 3), shade, np.uint8)).save(path)
    return path


def test_skipped_photos_and_videos_are_listed_as_path_then_reason(tmp_path, enh):
    src = tmp_path / "in"
    _photo(src / "good.jpg")
    (src / "bad.jpg").write_bytes(b"random bytes, no picture " * 8)
    (src / "empty.png").write_bytes(b"")
    (src / "sub").mkdir()
    (src / "sub" / "trunc.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    s = enh.enhance_file(src, tmp_path / "out")
    assert s.frames_out == 1 and len(s.skipped) == 3, s.skipped
    for path, entry in zip((src / "bad.jpg", src / "empty.png", src / "sub" / "trunc.mp4"), s.skipped):
        assert entry.startswith(f"{path}: ") and entry.count(str(path)) == 1, entry
    assert s.skipped[0] == f"{src / 'bad.jpg'}: cannot read it as an image: cannot identify image file", s.skipped


def test_a_resumed_folder_run_says_once_what_it_leaves_out(tmp_path, enh, caplog):
    src, out = tmp_path / "in", tmp_path / "out"
    _photo(src / "a.jpg")
    (src / "bad.jpg").write_bytes(b"x\n")
    (src / "notes.txt").write_text("hi")
    enh.enhance_file(src, out)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stream_gpen"):
        s = enh.enhance_file(src, out, skip_existing=True)
    said = [r.getMessage() for r in caplog.records if "neither images nor videos" in r.getMessage()]
    assert len(said) == 1, said
    assert s.done_before == 1 and len(s.skipped) == 1
    assert sum("neither images nor videos" in f for f in s.fallbacks) == 1, s.fallbacks


def _clip(path, n=3):
    from tests._clips import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, [np.full((48, 64, 3), 40 + 3 * i, np.uint8) for i in range(n)])


def test_a_folder_stopped_in_its_photos_names_the_videos_not_started(tmp_path, enh):
    import threading

    from stream_gpen.errors import Cancelled

    src, out = tmp_path / "in", tmp_path / "out"
    _photo(src / "a.jpg")
    _photo(src / "b.jpg", 120)
    _clip(src / "v.mp4")
    _clip(src / "w" / "x.mp4")
    stop = threading.Event()
    with pytest.raises(Cancelled, match=r"after 1 of 2 photos; 2 video\(s\) not started: v\.mp4, w/x\.mp4; "
                                        r"skip_existing=True resumes") as info:
        enh.enhance_file(src, out, cancel=stop, on_progress=lambda *a: stop.set())
    s = info.value.summary
    assert s.interrupted and s.frames_out == 1
    assert any(f.startswith("2 video(s) not started: v.mp4, w/x.mp4") for f in s.fallbacks), s.fallbacks
    assert not (out / "v.mp4").exists()


def test_an_unreadable_video_leaves_no_empty_folder_in_the_mirror(tmp_path, enh):
    src, out = tmp_path / "in", tmp_path / "out"
    _photo(src / "a.jpg")
    good = _clip(src / "sub" / "ok.mp4")
    (src / "sub" / "deep" / "more").mkdir(parents=True)
    (src / "sub" / "deep" / "more" / "trunc.mp4").write_bytes(good.read_bytes()[:600])
    (src / "bad").mkdir()
    (src / "bad" / "trunc.mp4").write_bytes(good.read_bytes()[:600])
    (out / "bad").mkdir(parents=True)  # (there before the run: left as it is)
    s = enh.enhance_file(src, out)
    assert len(s.skipped) == 2, s.skipped
    assert (out / "sub" / "ok.mp4").is_file() and not (out / "sub" / "deep").exists()
    assert (out / "bad").is_dir()


def test_folder_progress_does_not_count_unreadable_photos_as_done(tmp_path, enh):
    src = tmp_path / "in"
    for k in range(5):
        _photo(src / f"p{k}.jpg", 60 + 20 * k)
    (src / "p2b.jpg").write_bytes((src / "p2.jpg").read_bytes()[:200])  # cut short
    (src / "zz.jpg").write_bytes(bytes(range(256)) * 4)  # random bytes
    calls = []
    s = enh.enhance_file(src, tmp_path / "out", on_progress=lambda d, t, f: calls.append((d, t)))
    assert s.frames_out == 5 and len(s.skipped) == 2
    assert calls[-1] == (5, 5) and max(d for d, _ in calls) == 5, calls  # (it said 7 of 7)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls), calls
    # with a video after the photos: the folder's count is the photos written and the video's frames
    _clip(src / "v.mp4", n=3)
    calls.clear()
    enh.enhance_file(src, tmp_path / "out2", on_progress=lambda d, t, f: calls.append((d, t)))
    assert calls[-1] == (8, 8) and max(d for d, _ in calls) == 8, calls
