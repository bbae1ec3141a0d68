"""A face shrinking under ``min_face`` (hunt quality26, someone walking away from the camera).

The detector dropped faces under ``min_face`` before the tracker saw them, so the first detection
that found the face under the limit was a miss, the re-detect missed too, and the look-ahead
smoother dropped the track's frames since its last detection as those of a face that was gone:
the face was left unrestored 4 frames early (75 px under a limit of 60 on the hunt's clip). With
``smooth_lag=0`` it was pasted one frame past that detection, and a face that shrank and grew
back was pasted on frames far under the limit (41 px under 56) while its track waited out its
misses. Now the video detector also returns faces down to half the limit (``small_faces``), and a
track that a detection finds only that small ends there (``FaceTracker.shrunk_ids``), keeping its
frames up to it, in both paths; such detections never start a track. A first reading just under
the limit only asks for a re-detect on the next frame (a face hovering around the limit ended as
shrunk and came back as a new track, review26); the track ends if that one reads it small too."""
from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from PIL import Image

_TALKING_HEAD = "data/videos/retalking_face2_frontal_talking_head.mp4"
MIN_FACE = 56.0


def _clip(shared, exponents):
    """The talking head at 300 px times ``0.94 ** e`` per frame, centred on a fixed 320 px background."""
    return _clip_px(shared, [int(round(300 * 0.94**e)) for e in exponents])


def _clip_px(shared, sizes):
    """The talking head scaled to ``s`` px square per frame, centred on a fixed 320 px background."""
    rng = np.random.default_rng(0)
    bg = np.asarray(Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).resize((320, 320), Image.BICUBIC))
    out = []
    with av.open(str(shared / _TALKING_HEAD)) as c:
        for s, f in zip(sizes, c.decode(video=0)):
            img = bg.copy()
            o = (320 - s) // 2
            img[o:o + s, o:o + s] = np.asarray(Image.fromarray(f.to_ndarray(format="rgb24")).resize((s, s), Image.BILINEAR))
            out.append(img)
    return out


def _sides(mobilenet_weights, frames):
    """The face's box side (shorter) in each frame, by a per-frame detection."""
    from stream_gpen.faces import FaceDetector

    det = FaceDetector(weights=mobilenet_weights, device="cpu", long_side=640, progress=False, download=False)
    out = []
    for d in det.detect([torch.from_numpy(a) for a in frames]):
        b = d.boxes[d.scores.argmax()]
        out.append(float(min(b[2] - b[0], b[3] - b[1])))
    return out


def _pasted(mobilenet_weights, frames, smooth_lag):
    """The frames whose face the pipeline restores (a SolidRestorer's plan), with its track ids."""
    from _doubles import SolidRestorer

    from stream_gpen import Enhancer

    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=str(mobilenet_weights), progress=False,
                   min_face=MIN_FACE, smooth_lag=smooth_lag)
    stage = enh._stage(lag=enh._file_lag())
    out = {}
    for i, a in enumerate(frames):
        out.update(stage.plan_frames(i, torch.from_numpy(a)))
    out.update(stage.plan_flush())
    return {i: stage._plan_ids[i] for i in sorted(out) if len(out[i])}


@pytest.fixture(scope="module")
def shrinking(shared, mobilenet_weights):
    frames = _clip(shared, range(25))  # 6% smaller each frame: 109 px -> 26
    return frames, _sides(mobilenet_weights, frames)


@pytest.mark.parametrize("smooth_lag", [None, 0])
def test_a_face_shrinking_under_min_face_keeps_its_frames_up_to_the_detection_that_finds_it_so(
        mobilenet_weights, shrinking, smooth_lag):
    frames, sides = shrinking
    assert sides[10] > MIN_FACE > sides[11] and sides[15] < MIN_FACE  # (the clip: under the limit from 11)
    pasted = _pasted(mobilenet_weights, frames, smooth_lag)
    end = len(pasted)
    # restored on every frame up to the detection that finds it under the limit (a probe's or the
    # periodic one at 15), not after; was through 10 with the look-ahead (its flow frames since the
    # detection at 10 dropped as a lost face's), through 15 without
    assert list(pasted) == list(range(end)) and 11 < end <= 15, (smooth_lag, list(pasted))
    assert sides[end] < MIN_FACE
    assert {i for ids in pasted.values() for i in ids} == {0}


@pytest.mark.parametrize("smooth_lag", [None, 0])
def test_a_face_dipping_under_min_face_is_left_while_detections_find_it_small(shared, mobilenet_weights, smooth_lag):
    """Down to 41 px at frame 15, back over 56 from frame 20: the track ends where a detection finds
    the face small, and a new one starts at the first that finds it at the limit again. The track
    used to wait out its misses: pasted at 41-46 px (13-15) without the look-ahead, 48-54 px (17-19)
    with it."""
    frames = _clip(shared, [max(min(i, 30 - i), 0) for i in range(30)])
    sides = _sides(mobilenet_weights, frames)
    pasted = _pasted(mobilenet_weights, frames, smooth_lag)
    small = [i for i in pasted if sides[i] < 0.9 * MIN_FACE]
    assert small == [], (smooth_lag, small, [round(sides[i], 1) for i in small])
    assert all(i in pasted for i, s in enumerate(sides) if s >= 1.1 * MIN_FACE), (smooth_lag, list(pasted))
    assert len({i for ids in pasted.values() for i in ids}) == 2  # before the dip and after it


#: a head whose face wobbles around the limit at random, 55.5-61 px (review26's hover clip; its
#: head's picture in px): it ended as "shrunk" at the first detection that read it under 56 px
_HOVER_PX = [158, 166, 165, 160, 162, 162, 164, 166, 158, 157, 166, 162, 165, 157, 162, 165, 159, 167, 167, 157,
             157, 163, 167, 161, 159, 162, 157, 159, 162, 162, 159, 159, 159, 162, 160, 157, 166, 163, 164, 159,
             168, 166, 158, 160, 165, 165, 167, 162, 166, 164, 160, 163, 167, 166, 162, 163, 157, 160, 166, 161]


@pytest.mark.parametrize("smooth_lag", [None, 0])
@pytest.mark.parametrize("hover", ["sine", "random"])
def test_a_face_hovering_around_min_face_stays_one_track(shared, mobilenet_weights, hover, smooth_lag):
    """A talking head whose face wobbles around the limit (55.6-61.7 px on a sine, 55.5-61 at random,
    under 56): a detection that reads it just under the limit only asks for a re-detect on the next
    frame, which finds it over the limit again, and the face stays restored, one track. It used to
    end there as shrunk and come back as a new track at the next detection: the sine left frames
    25-29 raw (55.8 px at the detection of 25, then 56.4-58.5 px; 35 of 40 pasted), the random one
    frames 20-21, in both paths."""
    if hover == "sine":
        frames = _clip(shared, [10 + 0.6 * np.sin(i / 3.0) for i in range(40)])
    else:
        frames = _clip_px(shared, _HOVER_PX)
    pasted = _pasted(mobilenet_weights, frames, smooth_lag)
    left = [i for i in range(len(frames)) if i not in pasted]
    assert left == [], (hover, smooth_lag, left)
    assert {i for ids in pasted.values() for i in ids} == {0}


def test_a_first_reading_just_under_min_face_re_detects_on_the_next_frame():
    """Found at 48 px under a limit of 50 at the periodic detection of frame 5: the track goes on
    (output, no miss counted) and the next frame is detected; found over the limit there, it goes on
    as before. At 10 and 11 both detections read it under the limit: it ends at 11 (shrunk_ids),
    and the look-ahead smoother keeps its frames through 10. A reading far under the limit (under
    ``SHRUNK_AT_ONCE`` of it) ends the track at once."""
    from stream_gpen.faces import FaceTracker, FixedLagSmoother
    from stream_gpen.faces._smoother import TRACKER_OPTIONS

    tr = FaceTracker(min_face=50, **TRACKER_OPTIONS)
    sm = FixedLagSmoother(lag=5)
    out, asked = {}, []
    sizes = {0: 60, 5: 48, 6: 58, 10: 48, 11: 47}
    for i in range(14):
        det = None
        if tr.needs_detection(i):
            asked.append(i)
            det = _box_dets(sizes.get(i, 60))
        tracks = tr.update(i, det)
        if i in (5, 6, 10):
            assert [t.id for t in tracks] == [0] and tracks[0].misses == 0 and tr.shrunk_ids() == set(), i
        if i == 11:
            assert tracks == [] and tr.shrunk_ids() == {0}
        out.update(sm.push(i, tracks, alive=tr.alive_ids(), shrunk=tr.shrunk_ids()))
    out.update(sm.flush())
    assert asked[:5] == [0, 5, 6, 10, 11]
    assert [i for i in sorted(out) if out[i]] == list(range(11))

    tr = FaceTracker(min_face=50)
    tr.update(0, _box_dets(60))
    assert FaceTracker.SHRUNK_AT_ONCE * 50 > 44
    assert tr.update(1, _box_dets(44)) == [] and tr.shrunk_ids() == {0}


def _box_dets(side, score=0.99, x=100.0, y=80.0):
    from stream_gpen.faces import Detections

    box = torch.tensor([[x, y, x + side, y + side]])
    lm = torch.tensor([[0.3, 0.4], [0.7, 0.4], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]]) * side + torch.tensor([x, y])
    return Detections(box, lm[None], torch.tensor([score]))


def test_a_track_found_small_at_the_re_detect_after_a_miss_keeps_its_frames():
    """Missed at a periodic detection (a score dip), then found under min_face by the re-detect on
    the next frame: the detection shows the face where the track was, so its frames since its last
    detection stay (they were dropped as a lost face's); the small face starts no track."""
    from stream_gpen.faces import Detections, FaceTracker, FixedLagSmoother
    from stream_gpen.faces._smoother import TRACKER_OPTIONS

    tr = FaceTracker(min_face=50, **TRACKER_OPTIONS)
    sm = FixedLagSmoother(lag=5)
    out, asked = {}, []
    for i in range(12):
        det = None
        if tr.needs_detection(i):
            asked.append(i)
            det = (_box_dets(60) if i < 5 else Detections.empty() if i == 5 else _box_dets(45))
        tracks = tr.update(i, det)
        if i == 6:
            assert tracks == [] and tr.shrunk_ids() == {0}
        out.update(sm.push(i, tracks, alive=tr.alive_ids(), shrunk=tr.shrunk_ids()))
    out.update(sm.flush())
    assert asked[:3] == [0, 5, 6] and 10 in asked  # (the re-detect at 6)
    assert [i for i in sorted(out) if out[i]] == [0, 1, 2, 3, 4, 5]
    assert tr.tracks == []  # the small faces at 10 start nothing


def test_a_full_size_detection_keeps_the_track_a_small_one_would_end():
    """Two overlapping detections of one face, one over the limit and one under (a detector's
    double): the full-size one corrects the track, which goes on."""
    from stream_gpen.faces import Detections, FaceTracker

    tr = FaceTracker(min_face=50)
    tr.update(0, _box_dets(60))
    a, b = _box_dets(58), _box_dets(45, x=104, y=84)
    both = Detections(torch.cat([b.boxes, a.boxes]), torch.cat([b.landmarks, a.landmarks]), torch.tensor([0.99, 0.9]))
    ts = tr.update(1, both)
    assert [t.id for t in ts] == [0] and ts[0].detected and tr.shrunk_ids() == set()


def test_the_detector_returns_small_faces_unchecked_and_uncounted(shared, mobilenet_weights):
    """``small_faces``: faces from there up to ``min_face`` come back without the landmark check
    (no cost, not counted as implausible): upside down, both of this photo's faces fail it."""
    from stream_gpen.faces import FaceDetector

    a = np.asarray(Image.open(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg").convert("RGB"))
    upside_down = torch.from_numpy(np.ascontiguousarray(a[::-1, ::-1]))  # faces 169 and 174 px

    def run(**kw):
        det = FaceDetector(weights=mobilenet_weights, device="cpu", progress=False, download=False, **kw)
        return len(det.detect(upside_down)[0]), det.implausible

    assert run() == (0, 2)
    assert run(min_face=200) == (0, 0)
    assert run(min_face=200, small_faces=100) == (2, 0)
    assert run(min_face=170, small_faces=100) == (1, 1)  # (the 174 px one checked and dropped)
