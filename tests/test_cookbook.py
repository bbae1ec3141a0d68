"""docs/cookbook.md, command by command, on shared media with the offline `classic` model (the
clip/time arguments shortened to fit the test clips). Keeps the cookbook true to the code."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import av
import pytest
import torch

from stream_gpen.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path, monkeypatch, mobilenet_weights):
    """A weights cache with the real MobileNet detector, a random-weight ParseNet, no downloads."""
    from tests.test_faces_parse import _random_parsenet

    h = tmp_path / "home"
    h.mkdir()
    os.symlink(mobilenet_weights, h / mobilenet_weights.name)
    torch.save(_random_parsenet().state_dict(), h / "ParseNet-latest.pth")
    monkeypatch.setenv("STREAM_GPEN_HOME", str(h))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    return h


def run(*args) -> int:
    return main([str(a) for a in args] + ["--model", "classic", "--device", "cpu", "--quiet"])


def frames(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_every_cookbook_command_is_tested_here():
    text = (REPO / "docs" / "cookbook.md").read_text()
    commands = re.findall(r"^stream-gpen (\w+)", text, flags=re.M)
    assert commands == ["info", "enhance", "enhance", "enhance", "enhance", "enhance", "enhance", "enhance",
                        "enhance", "enhance", "enhance", "enhance", "camera", "serve"]  # the server is tested in test_server.py


def test_look_before_a_long_run(tmp_path, shared, home, capsys):
    clip = tmp_path / "holiday.mp4"
    shutil.copy(shared / "data/videos/retalking_face2_frontal_talking_head.mp4", clip)
    assert main(["info", str(clip), "--faces", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["faces"]["per_frame"] == [1] * 8
    # 0.2 s (5 frames at 25 fps) from 0:02: the trial span, side by side, with its sound
    assert run("enhance", clip, "-o", tmp_path / "try.mp4", "--start", "0:02", "--duration", "0.2", "--compare") == 0
    with av.open(str(tmp_path / "try.mp4")) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert c.streams.video[0].codec_context.width == 2 * 844
    assert frames(tmp_path / "try.mp4") == 5


def test_a_folder_of_home_media(tmp_path, shared, home):
    album = tmp_path / "1998"
    (album / "tapes").mkdir(parents=True)
    shutil.copy(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg", album / "party.jpg")
    shutil.copy(shared / "data/videos/keep_real4_old_tv_lowres.mp4", album / "tapes" / "tv.mp4")
    out = tmp_path / "1998_restored"
    assert run("enhance", album, "-o", out, "--duration", "0.25") == 0  # 5 frames of the 20 fps tape
    assert (out / "party.jpg").is_file() and frames(out / "tapes" / "tv.mp4") == 5
    (out / "tapes" / "tv.mp4").unlink()  # as if Ctrl-C had stopped the run there
    before = (out / "party.jpg").stat().st_mtime_ns
    assert run("enhance", album, "-o", out, "--duration", "0.25", "--skip-existing") == 0
    assert (out / "party.jpg").stat().st_mtime_ns == before and frames(out / "tapes" / "tv.mp4") == 5


def test_gentler_restoration(tmp_path, shared, home):
    import cv2

    clip = shared / "data/videos/hamilton_stage_lowlight_multiface.mp4"
    report = tmp_path / "r.json"
    # 0.2 s = 6 frames of the 29.97 fps stage clip, two faces in each
    assert run("enhance", clip, "-o", tmp_path / "i.mp4", "--strength", "0.7", "--duration", "0.2",
               "--report", report) == 0
    r = json.loads(report.read_text())
    assert r["frames_out"] == 6 and r["faces_restored"] > 0
    assert run("enhance", clip, "-o", tmp_path / "c.mp4", "--max-faces", "3", "--min-face", "40",
               "--duration", "0.2", "--report", report) == 0
    r = json.loads(report.read_text())
    assert r["frames_out"] == 6 and 0 < r["faces_restored"] <= 3 * 6
    # a portrait: one face of the two in the shared picture (ParseNet costs seconds per face on a CPU)
    photo = tmp_path / "portrait.jpg"
    cv2.imwrite(str(photo), cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))[:, 350:])
    assert run("enhance", photo, "-o", tmp_path / "p.jpg", "--mask", "parse", "--report", report) == 0
    r = json.loads(report.read_text())
    assert r["mask"] == "parse" and r["faces_parsed"] == r["faces_restored"] == 1


def test_phone_videos(tmp_path, home):
    from tests.test_high_bit_depth import _X265_LOSSLESS, _PQ, make_clip

    src = tmp_path / "IMG_0042.MOV"
    make_clip(src, frames=3, options=_X265_LOSSLESS, tags=_PQ)
    assert run("enhance", src) == 0
    with av.open(str(tmp_path / "IMG_0042_enhanced.MOV")) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "hevc" and s.codec_tag == "hvc1"
        assert next(c.decode(video=0)).format.name == "yuv420p10le"
    assert run("enhance", src, "-o", tmp_path / "eight.mov", "--bit-depth", "8") == 0
    with av.open(str(tmp_path / "eight.mov")) as c:
        assert next(c.decode(video=0)).format.name == "yuv420p"


def test_archive_scans_and_keyed_footage(tmp_path, shared, home):
    import cv2
    import numpy as np

    from tests.test_video_alpha import _clip, _decoded_alpha

    scans = tmp_path / "scans"
    scans.mkdir()
    bgr = cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))
    cv2.imwrite(str(scans / "grandma.tif"), bgr.astype(np.uint16) * 257 + 100)
    assert run("enhance", scans, "-o", tmp_path / "scans_restored") == 0
    out = cv2.imread(str(tmp_path / "scans_restored" / "grandma.tif"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == bgr.shape
    _clip(tmp_path / "presenter_keyed.mov", "prores_ks", "yuva444p10le", {"profile": "4"})
    assert run("enhance", tmp_path / "presenter_keyed.mov") == 0
    codec, alphas, _ = _decoded_alpha(tmp_path / "presenter_keyed_enhanced.mov")
    assert codec == "prores" and len(alphas) == 3 and all(a is not None for a in alphas)


def test_face_crops_from_datasets_or_other_tools(tmp_path, shared, home):
    import cv2

    crops = tmp_path / "cropped_faces"
    crops.mkdir()
    shutil.copy(shared / "data/faces/aligned/codeformer_crop_0240.png", crops / "0240.png")
    report = tmp_path / "r.json"
    assert run("enhance", crops, "-o", tmp_path / "restored_faces", "--aligned", "--report", report) == 0
    assert json.loads(report.read_text())["detector_calls"] == 0
    assert cv2.imread(str(tmp_path / "restored_faces" / "0240.png")).shape == (512, 512, 3)


def test_a_live_camera_restored_recorded_and_streamed(tmp_path, home):
    """(A lavfi graph for the camera, a UDP port here for the viewer, 5 s.) The stream and the
    recording have a keyframe every 2 s."""
    import socket
    import threading

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.5)
    data, done = bytearray(), threading.Event()

    def receive():
        while not done.is_set():
            try:
                data.extend(rx.recv(65536))
            except socket.timeout:
                pass

    t = threading.Thread(target=receive, daemon=True)
    t.start()
    rec = tmp_path / "rec.mp4"
    try:
        assert run("camera", "lavfi:testsrc2=size=160x120:rate=25", "-o", rec,
                   "--stream", f"udp://127.0.0.1:{rx.getsockname()[1]}", "--seconds", 5) == 0
    finally:
        done.set()
        t.join()
        rx.close()
    import io

    for src in (str(rec), io.BytesIO(bytes(data))):
        with av.open(src) as c:
            ps = [p for p in c.demux(video=0) if p.size and p.pts is not None]
        assert ps[0].is_keyframe
        key, since = None, []  # each frame's time since the last keyframe (the frames run at the restoring rate)
        for p in sorted(ps, key=lambda p: p.pts):
            t = float(p.pts * p.time_base)
            key = t if p.is_keyframe else key
            since.append(t - key)
        # (how many frames 5 s gives depends on the machine's speed, 9 on a loaded 2-core one: what
        # counts is that they span more than one 2 s keyframe interval)
        span = float((max(p.pts for p in ps) - min(p.pts for p in ps)) * ps[0].time_base)
        assert len(ps) >= 4 and span > 2.5 and max(since) < 2.0 + 1e-3, (len(ps), span, max(since))
