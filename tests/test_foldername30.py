"""A folder run where a video's output is named as a subfolder the mirror makes (hunt 30):
``fold/clip.ts`` (written as ``clip.mp4``) beside a subfolder ``fold/clip.mp4/`` holding a photo was
skipped ("output fold_enhanced/clip.mp4 is a folder; name a file in it, e.g. .../recording.mp4",
camera's wording), exit 5. Now it takes its own extension into its name, as two inputs landing on
one output do (``clip_ts.mp4``), and the summary says so."""
from __future__ import annotations

import numpy as np
from _clips import write_video
from PIL import Image

from stream_gpen.cli import main
from stream_gpen.io._image import folder_outputs


def test_the_plan_renames_an_output_named_as_a_mirrored_folder(tmp_path):
    root, dst = tmp_path / "fold", tmp_path / "out"
    files = [root / "clip.ts", root / "clip.mp4" / "p.jpg", root / "a.jpg"]
    plan, notes, _ = folder_outputs(root, dst, files, lambda q: ".mp4" if q.suffix == ".ts" else q.suffix)
    assert plan[root / "clip.ts"] == dst / "clip_ts.mp4"
    assert plan[root / "clip.mp4" / "p.jpg"] == dst / "clip.mp4" / "p.jpg" and plan[root / "a.jpg"] == dst / "a.jpg"
    assert any("clip.ts written as clip_ts.mp4" in n for n in notes), notes


def test_the_folder_run_writes_both(tmp_path, cli_env, capsys):
    root = tmp_path / "fold"
    (root / "clip.mp4").mkdir(parents=True)
    write_video(root / "clip.ts", [np.full((48, 64, 3), v, np.uint8) for v in range(0, 200, 40)], fmt="mpegts")
    Image.fromarray(np.full((48, 64, 3), 100, np.uint8)).save(root / "clip.mp4" / "p.jpg")
    out = tmp_path / "out"
    rc = main(["enhance", str(root), "-o", str(out), *cli_env])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert (out / "clip_ts.mp4").is_file() and (out / "clip.mp4" / "p.jpg").is_file()

