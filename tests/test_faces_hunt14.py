"""Hunt 14 (faces): ghost pastes of occluded faces, the turned-photo search, host torch settings."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from stream_gpen.api import Enhancer

from stream_gpen.faces import Detections, FaceDetector, FaceTracker, FixedLagSmoother, Track
from stream_gpen.faces._smoother import TRACKER_OPTIONS
from stream_gpen.faces._tracker import _REF


def _face(cx: float, cy: float, scale: float = 0.5) -> np.ndarray:
    return (_REF - _REF.mean(0)) * scale + np.array([cx, cy])


def _track(tid: int, cx: float, *, detected: bool, misses: int = 0) -> Track:
    p = _face(cx, 100.0)
    box = np.concatenate([p.min(0) - 20, p.max(0) + 20])
    return Track(id=tid, landmarks=torch.from_numpy(p.astype(np.float32)), box=torch.from_numpy(box.astype(np.float32)),
                 score=0.99, detected=detected, misses=misses)


@pytest.mark.parametrize("found_again", [False, True])
def test_smoother_drops_the_flow_tail_of_a_track_that_ends_unfound(found_again):
    """faces2 #1: a face detected at frames 0 and 5, then carried by flow alone, missing the
    detection at 10 and gone at 11 (lost), must not be pasted after frame 5: the flow followed
    whatever passed over it. Found again at 11, its flow frames stay (continuous track)."""
    frames = []
    for i in range(16):
        ts = [_track(1, 300 - 3 * i, detected=i % 5 == 0)]  # the other face, always found
        if i <= 10 or found_again:
            ts.append(_track(0, 100 + 3 * i, detected=i in (0, 5) or (found_again and i >= 11), misses=int(i == 10)))
        frames.append(ts)
    sm = FixedLagSmoother(lag=5)
    out = [r for i, ts in enumerate(frames) for r in sm.push(i, ts)] + sm.flush()
    has0 = [i for i, ts in out if any(t.id == 0 for t in ts)]
    assert [i for i, _ in out] == list(range(16))
    assert has0 == (list(range(16)) if found_again else list(range(6)))
    assert all(any(t.id == 1 for t in ts) for _, ts in out)


def _box_det(xs: list[float]) -> Detections:
    pts = [_face(x + 70, 170.0) for x in xs]
    boxes = [[x, 100.0, x + 140, 240.0] for x in xs]
    return Detections(torch.tensor(boxes, dtype=torch.float32), torch.tensor(np.stack(pts), dtype=torch.float32),
                      torch.full((len(xs),), 0.99))


@pytest.mark.parametrize("drop_unsure", [True, False])
def test_live_track_under_a_found_face_after_a_miss_is_not_shown(drop_unsure):
    """faces2 #1, live: face B passes in front of face A; the detection finds only B, over A's
    box. A (missed once, its box over a face found for another track) is not pasted any more;
    it stays tracked until ``max_misses``. ``drop_unsure=False`` (the smoother's option) keeps it."""
    tr = FaceTracker(detect_every=1, motion="none", watch=False, max_misses=3, drop_unsure=drop_unsure)
    ids = [[t.id for t in tr.update(0, _box_det([100, 300]))]]
    for i, xb in enumerate((240, 180, 150), 1):
        ids.append(sorted(t.id for t in tr.update(i, _box_det([xb]))))
    assert ids[0] == ids[1] == ids[2] == [0, 1]  # A missed, B not over it yet: still shown
    assert ids[3] == ([1] if drop_unsure else [0, 1])
    assert TRACKER_OPTIONS["drop_unsure"] is False


def _crossing(shared, n: int) -> list[torch.Tensor]:
    """Two real faces (aligned photos, 140 px) crossing on a noise background, 10 px a frame:
    B passes in front of A from about frame 16 (the hunter's exp_cross_vis.py)."""
    al = shared / "data" / "faces" / "aligned"
    fa, fb = (np.asarray(Image.open(al / n_).convert("RGB").resize((140, 140), Image.BILINEAR))
              for n_ in ("gfpgan_crop_Adele.png", "gfpgan_crop_Justin_Timberlake.png"))
    bg = np.random.default_rng(0).normal(110, 8, (360, 640, 3)).clip(0, 255).astype(np.uint8)
    frames = []
    for i in range(n):
        f = bg.copy()
        f[110:250, 40 + 10 * i:180 + 10 * i] = fa
        f[110:250, 460 - 10 * i:600 - 10 * i] = fb
        frames.append(torch.from_numpy(f))
    return frames


def test_crossing_faces_offline_no_paste_of_the_hidden_face(shared, mobilenet_weights):
    """faces2 #1 on real faces: A is last found at frame 15, then B covers it; its flow follows B
    leftwards. The file path (tracker + look-ahead smoother) must not paste A after that."""
    det = FaceDetector(backbone="mobilenet0.25", device="cpu", weights=str(mobilenet_weights))
    tr, sm = FaceTracker(**TRACKER_OPTIONS), FixedLagSmoother(lag=5)
    out, last_found = [], -1
    for i, f in enumerate(_crossing(shared, 23)):
        d = None
        if tr.needs_detection(i, f):
            d = det.detect_region(f, tr.probe_region) if tr.probing and tr.probe_region is not None else det.detect([f])[0]
        ts = tr.update(i, d, frame=f)
        last_found = max([last_found] + [i for t in ts if t.id == 0 and t.detected])
        out += sm.push(i, ts)
    out += sm.flush()
    a = [i for i, ts in out if any(t.id == 0 for t in ts)]
    assert 10 <= last_found < 20 and a == list(range(last_found + 1))
    # B, the occluder, is pasted on every frame
    assert all(len(ts) >= 1 for _, ts in out)


def _photo(shared, name: str, side: int) -> np.ndarray:
    im = Image.open(shared / "data" / "faces" / "whole" / name).convert("RGB")
    s = side / max(im.size)
    return np.asarray(im.resize((round(im.width * s), round(im.height * s)), Image.BILINEAR))


@pytest.fixture(scope="module")
def stage(mobilenet_weights):
    from _doubles import IdentityRestorer

    return Enhancer(IdentityRestorer(), device="cpu", detector_weights=str(mobilenet_weights), progress=False)._stage()


def _plan(stage, image: np.ndarray) -> torch.Tensor:
    stage.detections_implausible = 0
    return stage.plan_still(torch.from_numpy(np.array(image)))


def test_turned_search_keeps_an_upright_find_over_a_poor_plain_detection(shared, stage):
    """late13 #3: two children turned 180 degrees. The plain pass keeps one face upside down at
    0.88 (dropped later by min_score 0.9) and drops the other; the turned search finds both
    upright (0.997, 0.994). The 0.997 find overlaps only the poor detection: it must be kept,
    so both faces are restored, as in the upright photo."""
    im = _photo(shared, "gfpgan_whole_00.jpg", 512)
    assert len(_plan(stage, im)) == 2
    assert len(_plan(stage, np.rot90(im, 2))) == 2
    assert stage.detections_implausible == 0  # the dropped face was found after all, counted once


def test_turned_search_looks_only_around_the_dropped_face(shared, stage, monkeypatch):
    """late13 #6: an upside-down face in a large photo is searched in padded regions around its
    dropped detection, not in three full passes of the turned photo (network pixels), and is
    restored all the same."""
    face = np.rot90(_photo(shared, "gpen_selfie_2020-12-10_175750.jpg", 400), 2)
    photo = np.full((1200, 1600, 3), 120, np.uint8)
    photo[700:700 + face.shape[0], 1100:1100 + face.shape[1]] = face
    det = stage.detector
    pixels = []
    batch = type(det)._detect_batch

    def counted(self, frames, h, w, size=None, *rest, **kw):
        sh, sw = size if size is not None else self.scaled_size(h, w)
        pixels.append(sh * sw * len(frames))
        return batch(self, frames, h, w, size, *rest, **kw)

    monkeypatch.setattr(type(det), "_detect_batch", counted)
    stage._detect(torch.from_numpy(photo), stage.still_detect_size)
    full = sum(pixels)  # one full pass (the plain one)
    aff = _plan(stage, photo)
    assert len(aff) == 1 and stage.detections_implausible == 0
    # the search's passes cost under half of one full pass (the turned photo's three passes were 3)
    assert sum(pixels) - 2 * full < full / 2, (pixels, full)


@pytest.fixture(scope="module")
def classic(mobilenet_weights):
    return Enhancer(model="classic", device="cpu", detector_weights=str(mobilenet_weights), progress=False)


@pytest.fixture(scope="module")
def host_photo(shared):
    return np.ascontiguousarray(_photo(shared, "gfpgan_whole_Blake_Lively.jpg", 350))


def test_host_default_dtype_float64_changes_nothing(classic, host_photo):
    """api #3: a host that set ``torch.set_default_dtype(torch.float64)`` got a RuntimeError from
    every enhance (dtype-less tensors met float32 weights); photos and video come out the same."""
    ref = classic.enhance_image(host_photo)
    frames = [np.roll(host_photo, 3 * i, axis=1) for i in range(4)]
    ref_v = [f.image for f in classic.stream_frames(frames, fps=25, live=False)]
    torch.set_default_dtype(torch.float64)
    try:
        got = classic.enhance_image(host_photo)
        got_v = [f.image for f in classic.stream_frames(frames, fps=25, live=False)]
    finally:
        torch.set_default_dtype(torch.float32)
    assert np.array_equal(got, ref)
    assert all(np.array_equal(a, b) for a, b in zip(got_v, ref_v)) and len(got_v) == 4


def test_host_autocast_changes_nothing(classic, host_photo):
    """api #2: inside a host's ``torch.autocast`` block the detector ran in bf16 (landmarks
    rounded) and the classic restorer too: the output differed by up to 37 levels."""
    ref = classic.enhance_image(host_photo)
    t = torch.from_numpy(host_photo.copy())
    lm = classic.detector.detect([t])[0].landmarks
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = classic.enhance_image(host_photo)
        lm_ac = classic.detector.detect([t])[0].landmarks
        assert torch.is_autocast_enabled("cpu")  # the host's block is left as it was
    assert len(lm) and torch.equal(lm_ac, lm)
    assert np.array_equal(got, ref)


def test_runner_fp32_ignores_a_host_autocast():
    from stream_gpen.runtime import FaceRunner

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.Tanh())
    runner = FaceRunner(model, device="cpu", precision="fp32", size=32)
    crops = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    ref = runner(crops)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = runner(crops)
    assert torch.equal(got, ref)


def _held(tid, cx, detected, misses=0):
    p = (_REF - _REF.mean(0)) * 0.5 + np.array([cx, 100.0])
    box = np.concatenate([p.min(0) - 20, p.max(0) + 20])
    return Track(id=tid, landmarks=torch.from_numpy(p.astype(np.float32)),
                 box=torch.from_numpy(box.astype(np.float32)), score=0.99, detected=detected, misses=misses)


@pytest.mark.parametrize("a_alive", [True, False])
def test_smoother_keeps_the_tail_of_a_track_only_left_unchosen(a_alive):
    """--faces largest: face A (chosen, one detection missed) loses the choice to a larger B but is
    still followed; the tail drop took A's absence from the output for its end and left frames 7-11
    with no face restored at all. Only a track the tracker no longer follows has its tail dropped."""
    frames = [[_held(0, 100 + i, detected=i in (0, 5), misses=int(i >= 10))] if i < 12
              else [_held(1, 300, detected=i == 15)] for i in range(20)]
    sm = FixedLagSmoother(lag=5)
    out = [r for i, ts in enumerate(frames)
           for r in sm.push(i, ts, alive={0, 1} if a_alive else {1})] + sm.flush()
    empty = [i for i, ts in out if not ts]
    assert empty == ([] if a_alive else [7, 8, 9, 10, 11]), empty  # (6 was out already)


def test_tracker_alive_ids_include_unchosen_tracks():
    """alive_ids(): every track followed, chosen for the output or not."""
    tr = FaceTracker(select="largest", detect_every=1)
    big, small = (_held(0, 200, True), _held(1, 400, True))
    lms = torch.stack([big.landmarks, small.landmarks])
    boxes = torch.stack([big.box, torch.tensor([380.0, 80.0, 420.0, 120.0])])
    out = tr.update(0, Detections(boxes, lms, torch.tensor([0.99, 0.99])))
    assert len(out) == 1 and tr.alive_ids() == {t.id for t in tr._tracks} and len(tr.alive_ids()) == 2
