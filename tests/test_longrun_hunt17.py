"""Long runs and the disk, hunt 17: a run re-restoring an interrupted run's ``NAME.partial.EXT`` into
``NAME.EXT`` deleted its own input when it finished; a file written at the output during a run (a
second run into the same name) was replaced at the end without ``overwrite``, both runs saying
they wrote it."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from _clips import write_video
from stream_gpen.errors import EncodeError, OutputExistsError


def _video(path):
    return write_video(path, [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)])


@pytest.mark.parametrize("name", ["v.partial.mp4", "v.partial-1.mp4"])
def test_a_finished_run_keeps_its_input_named_like_a_partial_output(tmp_path, enh, name, monkeypatch):
    from stream_gpen.io._partials import remember_partial

    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    src = _video(tmp_path / name)
    remember_partial(src)  # (even one an interrupted run wrote is kept while it is the input)
    before = src.read_bytes()
    other = tmp_path / ("v.partial-2.mp4" if name == "v.partial.mp4" else "v.partial.mp4")
    other.write_bytes(b"x")  # an interrupted run's leftover: still removed
    remember_partial(other)
    s = enh.enhance_file(src, tmp_path / "v.mp4", preset="ultrafast")
    assert src.exists() and src.read_bytes() == before  # (was deleted)
    assert not other.exists()
    assert any(f"{name} is this run's input: kept" in f for f in s.fallbacks), s.fallbacks


def _appear_at_the_end(monkeypatch, module, target, data: bytes):
    """Write ``data`` at ``target`` just before the run moves its finished output there (what a
    second run into the same name does while this one works)."""
    real = module.keep_mode

    def keep_mode(old, new):
        if str(old) == str(target):
            target.write_bytes(data)
        return real(old, new)

    monkeypatch.setattr(module, "keep_mode", keep_mode)


def test_a_video_written_meanwhile_at_the_output_is_not_replaced(tmp_path, enh, monkeypatch):
    import stream_gpen.io._sink as sink_mod

    src = _video(tmp_path / "in.mp4")
    dst = tmp_path / "o.mp4"
    _appear_at_the_end(monkeypatch, sink_mod, dst, b"the other run's video")
    with pytest.raises(EncodeError, match="appeared during the run") as e:
        enh.enhance_file(src, dst, preset="ultrafast")
    assert dst.read_bytes() == b"the other run's video"  # (was replaced, exit 0)
    kept = tmp_path / "o.restored.mp4"
    assert kept.exists() and str(kept) in str(e.value)
    assert "overwrite=True" in e.value.hint  # (the API names its keyword; the command line says --overwrite)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no hidden leftover
    # with overwrite, the run replaces it as asked
    enh.enhance_file(src, dst, preset="ultrafast", overwrite=True)
    assert dst.read_bytes() != b"the other run's video"


def test_a_photo_written_meanwhile_at_the_output_is_not_replaced(tmp_path, enh, monkeypatch):
    import stream_gpen.io._image as image_mod

    src = tmp_path / "in.png"
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(src)
    dst = tmp_path / "o.png"
    _appear_at_the_end(monkeypatch, image_mod, dst, b"the other run's photo")
    with pytest.raises(OutputExistsError, match="written during this run"):
        enh.enhance_file(src, dst)
    assert dst.read_bytes() == b"the other run's photo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "o.png"]


def test_place_new_never_replaces_and_falls_back_without_hard_links(tmp_path, monkeypatch):
    import os

    from stream_gpen.io._sink import place_new

    tmp, target = tmp_path / ".t.tmp", tmp_path / "t.mp4"
    tmp.write_bytes(b"new")
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        place_new(tmp, target)
    assert target.read_bytes() == b"old" and tmp.exists()
    target.unlink()
    place_new(tmp, target)
    assert target.read_bytes() == b"new" and not tmp.exists()

    def no_links(a, b):  # a FAT/exFAT drive
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    tmp.write_bytes(b"newer")
    with pytest.raises(FileExistsError):
        place_new(tmp, target)
    target.unlink()
    place_new(tmp, target)
    assert target.read_bytes() == b"newer" and not tmp.exists()


def test_a_file_size_limit_says_what_it_is(tmp_path, mobilenet_weights):
    """A FAT32 drive's 4 GiB limit (EFBIG) ended an hour's run with a bare "[Errno 27] File too
    large" and no hint; here the same error from a process file-size limit (Python ignores SIGXFSZ)."""
    import os
    import resource
    import subprocess
    import sys

    rng = np.random.default_rng(1)
    src = write_video(tmp_path / "in.mp4", [rng.integers(0, 255, (240, 320, 3), np.uint8) for _ in range(30)])

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))

    env = {**os.environ, "STREAM_GPEN_HOME": str(tmp_path / "home"), "STREAM_GPEN_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "stream_gpen", "enhance", str(src), "-o", str(tmp_path / "o.mp4"),
                        "--model", "classic", "--device", "cpu", "--detector-weights", str(mobilenet_weights),
                        "--quiet", "--preset", "ultrafast", "--crf", "0"],
                       capture_output=True, text=True, env=env, preexec_fn=limit, timeout=300)
    assert r.returncode == 4, r.stderr
    # (the process's own limit is named as such: session 21; the FAT32 hint where there is none)
    assert "File too large" in r.stderr and "at most 65536 bytes" in r.stderr and "FAT32" not in r.stderr, r.stderr
    assert not (tmp_path / "o.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], list(tmp_path.iterdir())


def test_a_videos_progress_counts_the_faces_of_the_frames_written(tmp_path, mobilenet_weights, shared):
    """The progress line of a one-face clip said "265/1500 frames, 272 faces": its face count took
    in a batch restored ahead of the frames written."""
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    im = Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB")
    im.thumbnail((200, 200))
    base = np.asarray(im)
    src = write_video(tmp_path / "in.mp4", [np.roll(base, i, axis=1) for i in range(24)])
    enh = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False,
                   batch_size=8)
    seen = []
    s = enh.enhance_file(src, tmp_path / "o.mp4", preset="ultrafast",
                         on_progress=lambda done, total, faces: seen.append((done, faces)))
    assert s.faces_restored == 24 and s.frames_out == 24  # one face a frame
    assert seen[-1] == (24, 24)
    assert all(faces <= done for done, faces in seen), seen  # (faces ran up to a batch ahead)


@pytest.mark.parametrize("where", ["start-up", "checks"])
def test_a_ctrl_c_in_the_first_seconds_writes_the_report(tmp_path, cli_env, monkeypatch, where):
    """A Ctrl-C while torch imported and the options were checked (the first 1.5-5 s) wrote no
    --report: an earlier run's report under that name still said it had succeeded."""
    import json

    import stream_gpen.api as api
    import stream_gpen.commands as commands
    from stream_gpen.cli import main

    src = _video(tmp_path / "in.mp4")
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"frames_in": 3, "frames_out": 3, "error": None}))  # an earlier run's

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(api if where == "start-up" else commands, "resolve_output" if where == "start-up"
                        else "_check_before_the_model", stop)
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), "--report", str(report), *cli_env]) == 130
    got = json.loads(report.read_text())
    assert got["interrupted"] is True and got["frames_out"] == 0, got
    assert any("stopped before the run began" in f for f in got["fallbacks"])
    assert not (tmp_path / "o.mp4").exists()


def test_a_ctrl_c_at_start_up_leaves_a_report_that_is_not_one_alone(tmp_path, cli_env, monkeypatch):
    # a --report naming something that is not a report (or the output) is never written over
    import stream_gpen.api as api
    from stream_gpen.cli import main

    src = _video(tmp_path / "in.mp4")
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}')

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "resolve_output", stop)
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), "--report", str(notes), *cli_env]) == 130
    assert notes.read_text() == '{"mine": 1}'


def test_an_output_name_that_is_a_dangling_symlink_is_written(tmp_path, enh):
    # (hunt 17b: the start's check follows links, the hard link did not: the run did its work,
    # then failed, "another run wrote it")
    src = _video(tmp_path / "in.mp4")
    dst = tmp_path / "o.mp4"
    dst.symlink_to(tmp_path / "gone.mp4")
    s = enh.enhance_file(src, dst, preset="ultrafast")
    assert s.frames_out == 3 and dst.is_file() and not dst.is_symlink()
    photo = tmp_path / "in.png"
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(photo)
    (tmp_path / "p.png").symlink_to(tmp_path / "gone.png")
    enh.enhance_file(photo, tmp_path / "p.png")
    assert (tmp_path / "p.png").is_file() and not (tmp_path / "p.png").is_symlink()


def test_only_partial_outputs_this_tool_recorded_are_removed(tmp_path, enh, monkeypatch):
    """hunt 17b: a folder run restored an input called a.partial.webm into out/a.partial.webm, then,
    writing out/a.webm, removed that finished output as "left by an interrupted earlier run"."""
    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.partial.webm", "a.webm"):  # (restored in this order: "a.p" sorts before "a.w")
        write_video(src / name, [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)], codec="libvpx-vp9")
    s = enh.enhance_file(src, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.partial.webm", "a.webm"], s.skipped
    assert any("a.partial.webm was kept: it is not recorded" in f for f in s.fallbacks), s.fallbacks
    # a real interrupted run's part is recorded, and removed by the finished run; changed since, it is kept
    from stream_gpen.io._partials import is_partial, remember_partial

    part = tmp_path / "o.partial.mp4"
    _video(part)
    remember_partial(part)
    assert is_partial(part)
    enh.enhance_file(_video(tmp_path / "b.mp4"), tmp_path / "o.mp4", preset="ultrafast")
    assert not part.exists() and not is_partial(part)
    _video(part)
    remember_partial(part)
    with open(part, "ab") as f:
        f.write(b"edited")  # the user's since
    enh.enhance_file(tmp_path / "b.mp4", tmp_path / "o.mp4", preset="ultrafast", overwrite=True)
    assert part.exists()


def test_an_interrupted_run_records_its_partial_output(tmp_path, mobilenet_weights, monkeypatch):
    import threading

    from stream_gpen import Enhancer
    from stream_gpen.errors import Cancelled
    from stream_gpen.io._partials import is_partial
    from tests._doubles import IdentityRestorer

    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 5 * i, np.uint8) for i in range(40)])
    enh = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False)
    stop = threading.Event()
    with pytest.raises(Cancelled) as e:
        enh.enhance_file(src, tmp_path / "o.mp4", preset="ultrafast", cancel=stop,
                         on_progress=lambda done, total, faces: stop.set() if done >= 10 else None)
    part = e.value.summary.partial_output
    assert part and is_partial(part)
    s = enh.enhance_file(src, tmp_path / "o.mp4", preset="ultrafast")
    assert not (tmp_path / "o.partial.mp4").exists()
    assert any("left by an interrupted earlier run" in f for f in s.fallbacks)


def test_two_processes_recording_partials_at_once_keep_every_entry(tmp_path):
    import os
    import subprocess
    import sys

    from stream_gpen.io._partials import is_partial

    home = tmp_path / "home"
    files = [tmp_path / f"v{k}.partial.mp4" for k in range(40)]
    for f in files:
        f.write_bytes(b"x")
    code = ("import sys; from stream_gpen.io._partials import remember_partial\n"
            "for f in sys.argv[1:]: remember_partial(f)")
    env = {**os.environ, "STREAM_GPEN_HOME": str(home)}
    procs = [subprocess.Popen([sys.executable, "-c", code, *map(str, files[k::2])], env=env) for k in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    os.environ["STREAM_GPEN_HOME"] = str(home)
    try:
        assert all(is_partial(f) for f in files)  # (entries were lost to the other process's write)
    finally:
        del os.environ["STREAM_GPEN_HOME"]


def test_a_resumed_folder_run_restores_an_input_named_like_an_interrupted_part(tmp_path, enh, monkeypatch):
    # (regress17c: out/a.partial.mp4, a.mp4's recorded part, was taken for the input a.partial.mp4's
    # finished output and skipped; then removed as a.mp4's part)
    from stream_gpen.io._partials import remember_partial

    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    src = tmp_path / "src"
    src.mkdir()
    _video(src / "a.mp4")
    _video(src / "a.partial.mp4")
    out = tmp_path / "out"
    out.mkdir()
    _video(out / "a.partial.mp4")
    remember_partial(out / "a.partial.mp4")  # what an interrupted run of a.mp4 left
    enh.enhance_file(src, out, skip_existing=True, preset="ultrafast")
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "a.partial.mp4"]
    from stream_gpen.io._partials import is_partial

    assert not is_partial(out / "a.partial.mp4")  # the restored input's output, not a part


def test_a_dangling_symlink_output_without_hard_links(tmp_path, monkeypatch):
    import os

    from stream_gpen.io._sink import place_new

    def no_links(a, b):  # a FAT/exFAT drive
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    tmp, target = tmp_path / ".t.tmp", tmp_path / "t.mp4"
    tmp.write_bytes(b"new")
    target.symlink_to(tmp_path / "gone.mp4")
    place_new(tmp, target)
    assert target.read_bytes() == b"new" and not target.is_symlink()


def test_a_resumed_folder_run_restores_an_input_named_like_a_part_that_sorts_first(tmp_path, enh, monkeypatch):
    # (regress17d: x.partial.webm sorts before x.webm; its output name held x.webm's recorded part,
    # which was skipped as "written meanwhile", then removed: x.partial.webm had no output, exit 0)
    from stream_gpen.io._partials import is_partial, remember_partial

    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    src = tmp_path / "src"
    src.mkdir()
    for name in ("x.partial.webm", "x.webm"):
        write_video(src / name, [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)], codec="libvpx-vp9")
    out = tmp_path / "out"
    out.mkdir()
    write_video(out / "x.partial.webm", [np.full((48, 64, 3), 9, np.uint8)] * 2, codec="libvpx-vp9")
    remember_partial(out / "x.partial.webm")  # what an interrupted run of x.webm left
    s = enh.enhance_file(src, out, skip_existing=True)
    assert sorted(p.name for p in out.iterdir()) == ["x.partial.webm", "x.webm"], s.skipped
    assert not is_partial(out / "x.partial.webm") and not s.skipped
