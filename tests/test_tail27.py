"""A face turning away, hunt quality27: its flow tail re-detected before it is dropped.

The walking man of the crowd clip is found on frames 0-4 by a per-frame detector (0.99-0.94 at the
video's detection size) and turns away at 5 (0.31). The periodic detection at 5 missed him, the
re-detect at 6 too, and the look-ahead smoother dropped every flow frame since his last detection
(frames 1-4, the rule for a face lost behind an occluder): he was restored on frame 0 alone, a
one-frame flash (``smooth_lag=0`` and ``detect_every=1`` restore 0-4). Now the smoother asks a
detector about the tail's frames before the first missed detection (newest first, then by
bisection: ``FixedLagSmoother.push(confirm=)``; the pipeline detects a region around the track's
box, ``FaceStage._tail_found``) and keeps them up to the newest one where the face is still found;
a face covered on the tail's later frames still loses those."""
from __future__ import annotations

from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch
from PIL import Image

from stream_gpen.faces import FixedLagSmoother, Track
from stream_gpen.faces._tracker import _REF

_FACE = "data/faces/aligned/gfpgan_crop_Julia_Roberts.png"
_CROWD = "data/videos/facenet_crowd_1080p_multiface.mp4"


def _track(tid: int, cx: float, *, detected: bool, misses: int = 0) -> Track:
    p = (_REF - _REF.mean(0)) * 0.5 + np.array([cx, 100.0])
    box = np.concatenate([p.min(0) - 20, p.max(0) + 20])
    return Track(id=tid, landmarks=torch.from_numpy(p.astype(np.float32)), box=torch.from_numpy(box.astype(np.float32)),
                 score=0.99, detected=detected, misses=misses)


def _ended_after_a_miss(n: int = 12) -> list[list[Track]]:
    """Track 0 found at frame 0, carried by flow on 1-4, missed by the detection at 5 and gone
    at 6 (the re-detect ended it); track 1 found throughout."""
    frames = []
    for i in range(n):
        ts = [_track(1, 300 + i, detected=True)]
        if i <= 5:
            ts.append(_track(0, 100 + 2 * i, detected=i == 0, misses=int(i == 5)))
        frames.append(ts)
    return frames


def _smooth(frames, confirm=None) -> list[int]:
    sm = FixedLagSmoother(lag=5)
    out = []
    for i, ts in enumerate(frames):
        out += sm.push(i, ts, **({} if confirm is None else {"confirm": confirm}))
    out += sm.flush()
    assert [i for i, _ in out] == list(range(len(frames)))
    assert all(any(t.id == 1 for t in ts) for _, ts in out)  # (the other track is left alone)
    return [i for i, ts in out if any(t.id == 0 for t in ts)]


@pytest.mark.parametrize("seen_up_to, kept, asked", [
    (4, [0, 1, 2, 3, 4], [4]),  # still there on the newest flow frame: one call
    (2, [0, 1, 2], [4, 2, 3]),  # hidden from frame 3 on: newest first, then bisection
    (0, [0], [4, 2, 1]),  # gone right after its detection: the tail goes, as before
])
def test_the_flow_tail_is_kept_up_to_the_newest_frame_where_a_detector_still_finds_the_face(seen_up_to, kept, asked):
    calls = []

    def confirm(index, track, tracks):
        calls.append(index)
        assert track.id == 0 and not track.detected and track.misses == 0
        assert sorted(t.id for t in tracks) == [0, 1]  # (that frame's tracks, to match as the tracker does)
        return index <= seen_up_to

    assert _smooth(_ended_after_a_miss(), confirm) == kept
    # frame 5, where the periodic detection missed it, is not asked about (and never kept)
    assert calls == asked


def test_without_a_detector_to_ask_the_whole_flow_tail_goes():
    assert _smooth(_ended_after_a_miss()) == [0]


def test_a_twice_missed_track_is_asked_about_once_for_its_frames_before_the_first_miss():
    """Missed at 5 and at the re-detect at 6, the track goes on (``Track.misses == 2``): its frames
    since its last detection are dropped at 6, but for those before 5 where the face is found;
    its frames after the second miss are not asked about when it ends at 10."""
    frames = []
    for i in range(14):
        ts = [_track(1, 300 + i, detected=True)]
        if i <= 9:
            ts.append(_track(0, 100 + 2 * i, detected=i == 0, misses=0 if i < 5 else 1 if i == 5 else 2))
        frames.append(ts)
    calls = []
    assert _smooth(frames, lambda index, track, tracks: calls.append(index) or True) == [0, 1, 2, 3, 4]
    assert calls == [4]


def _clip(shared, hidden_from: int, n: int = 12, size: int = 110) -> list[np.ndarray]:
    """A face moving right 6 px a frame over a smooth random background, its face turned into a
    coarse mosaic (the flow still follows the patch, the detector finds no face) from frame
    ``hidden_from`` on."""
    rng = np.random.default_rng(0)
    bg = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    bg = np.asarray(bg.resize((320, 240), Image.BICUBIC))
    face = Image.open(shared / _FACE).convert("RGB").resize((size, size), Image.BILINEAR)
    mosaic = np.asarray(face.resize((12, 12), Image.BILINEAR).resize((size, size), Image.NEAREST))
    out = []
    for i in range(n):
        img = bg.copy()
        img[60:60 + size, 40 + 6 * i:40 + 6 * i + size] = np.asarray(face) if i < hidden_from else mosaic
        out.append(img)
    return out


def _pasted(mobilenet_weights, frames, planned=False, **kw):
    """The frames the pipeline pastes a face on (its plan, a SolidRestorer's size), and the stage;
    ``planned``: with the centres (frame px) of their faces' crops."""
    from _doubles import SolidRestorer

    from stream_gpen import Enhancer
    from stream_gpen.api import video_detect_size

    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=str(mobilenet_weights), progress=False, **kw)
    stage = enh._stage(lag=enh._file_lag())
    h, w = frames[0].shape[:2]
    stage.video_detect_size = video_detect_size(SimpleNamespace(width=w, height=h))  # (as a file's run sets it)
    out = {}
    for i, a in enumerate(frames):
        out.update(stage.plan_frames(i, torch.from_numpy(a)))
    out.update(stage.plan_flush())
    if planned:
        return {i: [_centre(a, stage.size) for a in out[i]] for i in sorted(out) if len(out[i])}, stage
    return [i for i in sorted(out) if len(out[i])], stage


def _centre(affine: torch.Tensor, size: int) -> tuple[float, float]:
    """Where the centre of a face's crop (``affine``: frame -> crop) lies in the frame."""
    a = affine.double()
    x = torch.linalg.solve(a[:, :2], torch.tensor([size / 2, size / 2], dtype=torch.float64) - a[:, 2])
    return float(x[0]), float(x[1])


@pytest.mark.parametrize("hidden_from, pasted, checks", [
    (5, [0, 1, 2, 3, 4], 1),  # turned away at 5: restored through 4, as without the look-ahead
    (3, [0, 1, 2], 3),  # hidden on the tail's last two flow frames: those stay raw
])
def test_a_face_hidden_after_its_last_detection_is_restored_up_to_the_frame_before(
        shared, mobilenet_weights, hidden_from, pasted, checks):
    frames = _clip(shared, hidden_from)
    got, stage = _pasted(mobilenet_weights, frames)
    assert got == pasted
    # the checks are region detections, counted with the detector calls
    assert stage.detector_tail_checks == checks
    # without the look-ahead (no tail dropped, none checked) the frames before 5 are pasted too, and
    # the tracker asks for the same detections
    lag0, plain = _pasted(mobilenet_weights, frames, smooth_lag=0)
    assert set(range(5)) <= set(lag0) and plain.detector_tail_checks == 0
    assert stage.detector_calls == plain.detector_calls + checks


def test_the_walking_man_of_the_crowd_clip_is_restored_until_he_turns_away(shared, mobilenet_weights):
    """The hunt's frames: the first 8 of the 1080p crowd clip (detection at 960, the video's size)."""
    path = shared / _CROWD
    if not path.exists():
        pytest.skip(f"{path} not there")
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(8), c.decode(video=0))]
    got, stage = _pasted(mobilenet_weights, frames, planned=True)
    # the frames a face is pasted at his place (his head: x 1446-1716, y 493-651 over frames 0-5)
    man = [i for i, centres in got.items() if any(1400 <= x <= 1750 and 450 <= y <= 700 for x, y in centres)]
    assert man == [0, 1, 2, 3, 4]  # (was [0])
    assert stage.detector_tail_checks == 1
