"""Hunt 32: ``info`` said other than ``enhance`` does.

1. ``info --faces`` found 0 faces in a video whose picture is turned a quarter (its face
   sideways), where enhance finds the turn and restores the face in every frame: info ran one
   upright detection per sample, without enhance's turn search.
2. ``info --faces`` said 1 face in an upside-down photo where enhance restores 2: info ran no
   search of the photo turned (``plan_still``'s ``_turned_faces``) and no landmark-driven choice.
3. ``info FOLDER`` counted empty, cut-off and damaged files as photos and videos to restore, its
   plan saying all would be, where enhance skips them and ends with exit code 5.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _face_picture(shared, h=240, w=320, side=200):
    import cv2

    face = cv2.imread(str(shared / "data/faces/aligned/gpen_ffhq_00001.png"))[:, :, ::-1]
    img = np.full((h, w, 3), 80, np.uint8)
    y, x = (h - side) // 2, (w - side) // 2
    img[y:y + side, x:x + side] = cv2.resize(face, (side, side))
    return img


# --- 1. a video with its picture turned: info --faces counted no face --------------------------------

def test_info_faces_finds_the_faces_of_a_turned_video_as_enhance_does(tmp_path, shared, mobilenet_weights):
    import av

    from stream_gpen.commands import describe_input, sample_faces

    img = np.ascontiguousarray(np.rot90(_face_picture(shared), 1, (0, 1)))  # the face lies on its side
    path = tmp_path / "side.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = img.shape[1], img.shape[0], "yuv420p"
        for _ in range(4):
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(s.encode())
    r = sample_faces(str(path), describe_input(str(path)), weights=mobilenet_weights, n=2)
    assert r["per_frame"] and all(n == 1 for n in r["per_frame"]), r
    assert r["upright_turned"] == "90 degrees clockwise", r


# --- 2. an upside-down photo: info --faces undercounted ---------------------------------------------

def test_info_faces_counts_an_upside_down_photo_as_enhance_restores_it(tmp_path, shared, mobilenet_weights):
    from PIL import Image

    from stream_gpen.commands import describe_input, sample_faces

    im = Image.open(shared / "data/faces/whole/gfpgan_whole_00.jpg").convert("RGB").resize((648, 960))
    path = tmp_path / "upside.png"
    im.rotate(180).save(path)
    r = sample_faces(str(path), describe_input(str(path)), weights=mobilenet_weights)
    assert r["per_frame"] == [2], r  # (what `enhance --model classic` restores in it: 2 faces)
    assert r["upright_turned"] is None  # (a photo's faces are looked for turned face by face)


# --- 3. info FOLDER: unreadable files counted as photos and videos to restore -------------------------

def test_info_folder_says_which_files_enhance_will_skip_as_unreadable(tmp_path, capsys):
    import json

    import av
    from PIL import Image

    from stream_gpen.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    pic = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pic).save(folder / "good.jpg")
    whole = (folder / "good.jpg").read_bytes()
    (folder / "tail.jpg").write_bytes(whole + b"camera maker's trailer")  # (reads: bytes after its end marker)
    (folder / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "zero.mp4").write_bytes(b"")
    with av.open(str(folder / "good.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for _ in range(5):
            c.mux(s.encode(av.VideoFrame.from_ndarray(pic, format="rgb24")))
        c.mux(s.encode())
    whole = (folder / "good.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(whole[: len(whole) // 2])  # (its index, at the end, is gone)

    assert main(["info", "--json", str(folder)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["images"], info["videos"], info["unreadable"]) == (3, 3, 3), info
    names = sorted(Path(x.split(": ", 1)[0]).name for x in info["unreadable_files"])
    assert names == ["cut.jpg", "cut.mp4", "zero.mp4"], info
    assert any("0 bytes" in x for x in info["unreadable_files"])
    assert any("3 file(s) that cannot be read skipped" in x and "exit code 5" in x for x in info["plan"]), info
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "unreadable           3" in out and "cannot be read skipped" in out, out

    for q in list(folder.iterdir()):
        if q.name.startswith("good") or q.name.startswith("tail"):
            q.unlink()
    assert main(["info", "--json", str(folder)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["plan"][0].startswith("nothing restored"), info
