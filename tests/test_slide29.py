"""Hunt 29 (slide): a face sliding into the frame from an edge over a flat backdrop was restored a
frame late.

The change watch compares each frame with the one at its last detection (periodic or probe). A
face coming up from the bottom edge over plain grey is first probed while too little of it shows
for the detector; that frame becomes the reference, and on the next frames the change against it is
the face's own features a few px further up: outlines, never the *filled* blob the watch asks for.
So the frame where a per-frame detector first finds the face went out raw, and the face popped in
on the next detection. Now content that came in through a border (a run of change along it whose
picture moved inward, the camera's shift taken out) is probed on every frame it comes in further.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from _clips import write_video

from stream_gpen.faces import FaceTracker
from tests.test_edge27 import _plan  # (each frame's pasted track ids, the pipeline's plan)
from tests.test_edge27 import _watch_run as _edge_watch_run

_FACE = "data/faces/aligned/gfpgan_crop_Julia_Roberts.png"
W, H = 640, 360
SIZE, X = 160, 240  # the face photo's side and left edge (frame px)
SPEED = 8  # px a frame, up from the bottom edge


def _face(shared) -> np.ndarray:
    face = cv2.imread(str(shared / _FACE), cv2.IMREAD_COLOR)[:, :, ::-1]
    return cv2.resize(face, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def _top(step: int) -> int:
    """The face's top row after ``step`` steps of the slide (it starts 8 px under the frame)."""
    return H + 8 - SPEED * step


def _slide(face: np.ndarray, steps, *, bg: int = 128) -> list[np.ndarray]:
    """Frames of the face photo at ``steps`` of its slide up over flat grey."""
    out = []
    for k in steps:
        f = np.full((H, W, 3), bg, np.uint8)
        top = _top(k)
        if top < H:
            y0, y1 = max(top, 0), min(top + SIZE, H)
            f[y0:y1, X : X + SIZE] = face[y0 - top : y1 - top]
        out.append(f)
    return out


def _encoded(tmp_path, frames) -> list[np.ndarray]:
    """The frames through an H.264 file and back (PyAV), as footage comes: codec noise on the grey."""
    import av

    path = write_video(tmp_path / "slide.mp4", frames, rate=25)
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _watch_run(frames, **kw):
    """A tracker whose detector never finds a face (test_edge27's): the frames it asked for a
    detection, the probe regions (None: the whole frame), and the tracker."""
    tr, asked, regions = _edge_watch_run(frames, **kw)
    return asked, regions, tr


def test_a_face_sliding_in_over_flat_grey_is_looked_at_on_every_frame_it_comes_in_further(
        shared, tmp_path, monkeypatch):
    face = _face(shared)
    frames = _encoded(tmp_path, _slide(face, range(26)) + _slide(face, [25] * 10))
    asked, regions, tr = _watch_run(frames)
    # From the first frames it shows (a strip of hair) until it is all in (step 21), every frame
    # is looked at (before: the probes at 3, 7 and 11 found nothing, and 4, 6, 8-9, 12 and 14
    # waited for the periodic detections), each time around the part of it that shows.
    for i in range(4, 21):
        assert i in asked, (i, asked)
        r = regions[asked.index(i)]
        if r is not None:
            assert r[0] <= X and r[2] >= X + SIZE and r[1] <= max(_top(i), 0) and r[3] == H, (i, r)
    # standing still in the frame (steps 26-35): the periodic detections only
    assert [i for i in asked if i >= 27] == [30, 35], asked

    # Leaving through the border, or moving along it, is nothing coming in: the same looks as
    # with the entry rule off (the watch's filled blobs only).
    out = _encoded(tmp_path, _slide(face, range(25, 4, -1)))
    along = []
    for k in range(20):
        f = np.full((H, W, 3), 128, np.uint8)
        f[H - 80 :, 40 + 8 * k : 200 + 8 * k] = face[:80]
        along.append(f)
    along = _encoded(tmp_path, along)
    seen = {name: _watch_run(clip)[0] for name, clip in (("out", out), ("along", along))}
    monkeypatch.setattr(FaceTracker, "_ENTRY_MOVE", math.inf)
    for name, clip in (("out", out), ("along", along)):
        assert seen[name] == _watch_run(clip)[0], name


def _noisy_wall(n: int, seed: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.uniform(0, 255, (H, W, 3)).astype(np.float32), (0, 0), 3.0)
    wall = (t - t.mean()) / t.std() * 40 + 128
    return [np.clip(wall + rng.normal(0, 4, wall.shape), 0, 255).astype(np.uint8) for _ in range(n)]


def test_a_face_sliding_in_over_a_still_noisy_wall_is_looked_at_but_the_still_wall_is_not(shared):
    """The rule looks at what changed only: a textured, noisy still scene asks for the periodic
    detections alone, and a face sliding in over it is followed in as over grey."""
    wall = _noisy_wall(30)
    asked, _, tr = _watch_run(wall)
    assert asked == [0, 5, 10, 15, 20, 25] and tr.probes == 0, asked
    face = _face(shared)
    frames = []
    for k, f in enumerate(wall[:22]):
        f = f.copy()
        top = _top(k)
        if top < H:
            f[max(top, 0) :, X : X + SIZE] = face[max(top, 0) - top : H - top]
        frames.append(f)
    asked, _, _ = _watch_run(frames)
    assert all(i in asked for i in range(4, 21)), asked


# --- the pipeline, with the real detector -----------------------------------------------------

def _stage(weights):
    from _doubles import SolidRestorer

    from stream_gpen import Enhancer
    from stream_gpen.api import video_detect_size

    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=str(weights), progress=False)
    stage = enh._stage(lag=enh._file_lag())
    stage.video_detect_size = video_detect_size(SimpleNamespace(width=W, height=H))  # (as a file's run sets it)
    return stage


@pytest.fixture(scope="module")
def clip(shared, tmp_path_factory) -> list[np.ndarray]:
    """The hunt's clip: 25 fps H.264, the face coming up 8 px a frame from the bottom edge."""
    return _encoded(tmp_path_factory.mktemp("slide"), _slide(_face(shared), range(24)))


@pytest.fixture(scope="module")
def found_from(clip, mobilenet_weights) -> int:
    """The first frame on which a per-frame detector (the pipeline's, at its video size) finds the
    face at 0.9 or more (the pipeline's ``min_score``)."""
    stage = _stage(mobilenet_weights)
    for i, f in enumerate(clip):
        d = stage._detect(torch.from_numpy(f), stage.video_detect_size)
        if len(d) and float(d.scores.max()) >= 0.9:
            assert i >= 6  # (it slides in: not found while little of it shows)
            return i
    raise AssertionError("the per-frame detector never found the face")


@pytest.mark.parametrize("still", [0, 1, 2])
def test_a_face_sliding_in_is_restored_from_the_first_frame_a_per_frame_detector_finds_it(
        clip, mobilenet_weights, found_from, still):
    """``still`` grey frames first move the slide against the periodic detections (every 5)."""
    frames = [clip[0]] * still + clip[: found_from + 2]
    stage = _stage(mobilenet_weights)
    ids = _plan(stage, frames)
    restored = [i for i in sorted(ids) if ids[i]]
    assert restored and restored[0] == found_from + still, (restored, found_from + still)
    assert len({t for v in ids.values() for t in v}) == 1  # one face, one track
    assert stage.detector_calls <= len(frames)  # at most one look a frame
