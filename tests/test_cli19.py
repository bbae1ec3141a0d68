"""The command line on folders, hunt 19 (cli19): empty paths, --report naming a folder, an existing
video output in a folder, the message of a folder stopped in one of its videos."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from _clips import write_video


def _folder(root, videos=("v.mp4",), photos=("p.png",)):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(4)
    for name in videos:
        write_video(root / name, [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(8)])
    for name in photos:
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / name)
    return root


@pytest.mark.parametrize("argv", [["enhance", ""], ["info", ""], ["enhance", "IN", "-o", ""],
                                  ["enhance", "IN", "--report", ""], ["camera", ""], ["enhance", "IN", "--weights", ""]])
def test_an_empty_path_is_refused(tmp_path, cli_env, capsys, monkeypatch, argv):
    # `enhance "$IN"` with IN unset: Path("") is the working folder, all of which was restored
    # into ../<folder>_enhanced; -o '' and --report '' were ignored without a word
    from stream_gpen.cli import main

    monkeypatch.chdir(_folder(tmp_path / "cwd"))
    argv = [a if a != "IN" else "v.mp4" for a in argv]
    assert main(argv + (cli_env if argv[0] == "enhance" else [])) == 2
    assert "is empty" in capsys.readouterr().err
    assert not (tmp_path / "cwd_enhanced").exists() and not (tmp_path / "cwd" / "v_enhanced.mp4").exists()


def test_a_report_naming_a_folder_is_refused_before_the_run(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    src = _folder(tmp_path / "in", videos=(), photos=("p.png",)) / "p.png"
    (tmp_path / "rep").mkdir()
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.png"), "--report", str(tmp_path / "rep"), *cli_env]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()  # (the run went through, then exit 4 and no summary)


def test_an_existing_video_output_in_a_folder_stops_the_run_before_any_work(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    src = _folder(tmp_path / "in")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "v.mp4").write_bytes(b"an earlier run's video")
    assert main(["enhance", str(src), "-o", str(tmp_path / "out"), *cli_env]) == 2
    err = capsys.readouterr().err
    assert "output exists" in err and "--skip-existing" in err and "unreadable or failed" not in err, err
    assert not (tmp_path / "out" / "p.png").exists()  # nothing restored first
    assert main(["enhance", str(src), "-o", str(tmp_path / "out"), "--skip-existing", *cli_env]) == 0
    assert (tmp_path / "out" / "p.png").exists()


def test_a_folder_stopped_in_one_of_its_videos_says_what_was_written_and_how_to_resume(tmp_path, enh):
    from stream_gpen.errors import Interrupted

    src = _folder(tmp_path / "in", videos=("v.mp4",), photos=("a.png", "b.png"))

    def stop(done, total, faces):
        if done == 5:  # two photos, then the third frame of the video
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as info:
        enh.enhance_file(src, tmp_path / "out", on_progress=stop)
    said = str(info.value)
    assert "v.mp4" in said and "skip_existing=True resumes" in said and "nothing had been encoded" not in said, said
    assert (tmp_path / "out" / "a.png").exists() and info.value.summary.interrupted


def test_a_folder_of_videos_says_what_it_left_out(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    src = _folder(tmp_path / "in", photos=())
    (src / "notes.txt").write_text("not media")
    assert main(["enhance", str(src), "-o", str(tmp_path / "out"), "--report", str(tmp_path / "r.json"), *cli_env]) == 0
    import json

    fallbacks = json.loads((tmp_path / "r.json").read_text())["fallbacks"]
    assert any("neither images nor videos" in f and "1 .txt" in f for f in fallbacks), fallbacks
    assert "neither images nor videos" in capsys.readouterr().err
    # with a photo too, said once (the photos' job says it)
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(src / "p.png")
    assert main(["enhance", str(src), "-o", str(tmp_path / "out2"), *cli_env]) == 0
    assert capsys.readouterr().err.count("neither images nor videos") == 1


def test_a_folder_into_an_existing_file_is_told_it_needs_a_folder(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    src = _folder(tmp_path / "in")
    (tmp_path / "afile.txt").write_text("x")
    assert main(["enhance", str(src), "-o", str(tmp_path / "afile.txt"), *cli_env]) == 2
    err = capsys.readouterr().err
    assert "needs an output folder" in err and "--overwrite" not in err, err


def test_a_file_that_is_not_media_is_refused_for_what_it_is_not_its_output_name(tmp_path, cli_env, capsys,
                                                                                  monkeypatch):
    from stream_gpen.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("hello\n")
    assert main(["enhance", "notes.txt", *cli_env]) == 2
    err = capsys.readouterr().err
    assert "as media" in err and "output name" not in err, err
    assert not list(tmp_path.glob("notes_enhanced*"))


def test_a_folders_broken_link_is_in_the_report_too(tmp_path, cli_env, capsys):
    import json

    from stream_gpen.cli import main

    src = _folder(tmp_path / "in", videos=())
    (src / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    assert main(["enhance", str(src), "-o", str(tmp_path / "out"), "--report", str(tmp_path / "r.json"), *cli_env]) == 0
    fallbacks = json.loads((tmp_path / "r.json").read_text())["fallbacks"]
    assert any("gone.jpg: a broken link, left out" in f for f in fallbacks), fallbacks  # (stderr only before)
    assert capsys.readouterr().err.count("a broken link") == 1
