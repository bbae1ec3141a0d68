"""Two faces of one size crossing (hunt cross26): the hidden face's paste went on top.

Faces within ``SAME_SIZE`` were stacked by track id only, the older track on top. Where the older
track is the face passing behind, its crop is mostly the front person's pixels aligned on the
hidden face's landmarks, and GPEN paints a face there over the front face's eyes and mouth: on
the hunt's clips the hidden face's paste covered 7-10% of the front face's core (eyes to mouth)
on average, up to 100% in places (default look-ahead), and 18-27% with ``smooth_lag=0``. Now a
track that is partly hidden (``Track.occluded``: missed, covered, a low detection score, or its
flow losing points; the look-ahead smoother also flags it a few frames before) is pasted under
the faces of about its size."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from stream_gpen.faces import FixedLagSmoother, Track, estimate_affines, invert_affines, reference_points
from stream_gpen.faces._paste import _steady_order, paste_faces

_FACES = ("gpen_ffhq_00000.png", "gpen_ffhq_00001.png")


def _clip(shared, scene, n=32, w=320, h=240):
    """Frames and per frame (behind, front) truth (cx, cy, size, visible alpha) of two faces
    composited with a soft ellipse on a plain gradient, the second one in front."""
    faces = [cv2.cvtColor(cv2.imread(str(shared / "data/faces/aligned" / f)), cv2.COLOR_BGR2RGB) for f in _FACES]
    yy, xx = np.mgrid[0:h, 0:w]
    frames, truth = [], []
    for i in range(n):
        t = i / (n - 1)
        rng = np.random.default_rng(i)
        img = np.stack([60 + 40 * xx / w, 80 + 30 * yy / h, 70 + 20 * (xx + yy) / (w + h)], -1)
        img = img + rng.normal(0, 3, (h, w, 3))
        if scene == "cross_slow":  # a slow partial cross, 60% overlap in the middle
            layers = [(1, 200 - 60 * t, 120, 100), (0, 120 + 60 * t, 120, 100)]
        else:  # "cross": one passes right in front of the other
            layers = [(1, 250 - 180 * t, 120, 96), (0, 70 + 180 * t, 122, 96)]
        cur = []
        for k, cx, cy, s in layers:
            f = cv2.resize(faces[k], (s, s), interpolation=cv2.INTER_AREA).astype(np.float64)
            v, u = np.mgrid[0:s, 0:s]
            r = ((u - s / 2 + .5) / (s * 0.47)) ** 2 + ((v - s / 2 + .5) / (s * 0.5)) ** 2
            a = np.clip((1.0 - r) / 0.15, 0, 1)
            x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
            full = np.zeros((h, w))
            full[y0:y0 + s, x0:x0 + s] = a
            img[y0:y0 + s, x0:x0 + s] = img[y0:y0 + s, x0:x0 + s] * (1 - a[..., None]) + f * a[..., None]
            for d in cur:
                d[3] = d[3] * (1 - full)
            cur.append([cx, cy, s, full])
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
        truth.append(cur)
    return frames, truth


def _behind_over_front(monkeypatch, mobilenet_weights, shared, scene, lag):
    """Per frame with both faces pasted: the mean final weight of the behind face's paste over the
    front face's visible core (eyes to mouth), read from a second paste of crops coloured by face."""
    import stream_gpen.pipeline as P
    from _doubles import SolidRestorer

    from stream_gpen import Enhancer

    frames, truth = _clip(shared, scene)
    keys = {f.tobytes(): i for i, f in enumerate(frames)}
    h, w = frames[0].shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    paste, got = P.paste_faces, {}

    def probe(img, crops, aff, **kw):
        i = keys.get(img.cpu().numpy().tobytes())
        if i is not None and len(crops) == 2:
            size = crops.shape[-1]
            inv = invert_affines(aff.double()).numpy()
            colour = torch.zeros_like(crops)
            for j in range(2):  # red: the crop on the face behind; green: the one in front
                c = inv[j] @ np.array([size / 2, size * 0.56, 1.0])
                colour[j, int(np.argmin([np.hypot(c[0] - t[0], c[1] - t[1]) for t in truth[i]]))] = 255
            out = paste(torch.zeros_like(img), colour, aff, **kw).numpy()
            cx, cy, s, alpha = truth[i][1]
            core = (abs(xx - cx) < 0.22 * s) & (yy - cy > -0.15 * s) & (yy - cy < 0.25 * s) & (alpha > 0.95)
            got[i] = float(out[..., 0][core].mean()) / 255
        return paste(img, crops, aff, **kw)

    monkeypatch.setattr(P, "paste_faces", probe)
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, smooth_lag=lag, batch_size=4)
    for _ in enh.stream_frames(frames, fps=25, live=False):
        pass
    return got


@pytest.mark.parametrize("scene, lag", [("cross_slow", None), ("cross", 0)])
def test_the_face_behind_is_pasted_under_the_face_in_front(monkeypatch, mobilenet_weights, shared, scene, lag):
    got = _behind_over_front(monkeypatch, mobilenet_weights, shared, scene, lag)
    assert len(got) >= 8  # the crossing frames, both faces pasted
    # (before: 0.07 and 0.10 on frames 9-10 of cross_slow, 0.18 and 0.27 on frames 12-13 of cross)
    assert max(got.values()) < 0.05, {i: round(v, 3) for i, v in got.items() if v >= 0.01}


def test_steady_order_puts_an_occluded_face_under():
    # two faces of one size: the lowest id on top (pasted last)...
    assert _steady_order([0, 1], [200.0, 205.0], [0, 1]) == [1, 0]
    # ...unless it is occluded now: then it goes under, whatever its id
    assert _steady_order([0, 1], [200.0, 205.0], [0, 1], [True, False]) == [0, 1]
    assert _steady_order([0, 1], [200.0, 205.0], [0, 1], [False, True]) == [1, 0]
    # both occluded (or neither): by id again, steady
    assert _steady_order([0, 1], [200.0, 205.0], [0, 1], [True, True]) == [1, 0]
    # an occluded face measured a little larger than the face in front (242 vs 218 px, cross26)
    assert _steady_order([1, 0], [242.0, 218.0], [0, 1], [True, False]) == [0, 1]
    # a clearly larger face stays on top of a small one even when occluded (a hand over a selfie)
    assert _steady_order([1, 0], [400.0, 200.0], [0, 1], [True, False]) == [1, 0]
    # flags alone (no ids) order a same-size run too
    frame = torch.zeros((240, 320, 3), dtype=torch.uint8)
    ref = reference_points(128)
    aff = torch.cat([estimate_affines((ref - 64 + torch.tensor([cx, 120.0]))[None].float(), size=128)
                     for cx in (140.0, 175.0)])
    crops = torch.stack([torch.full((3, 128, 128), v, dtype=torch.uint8) for v in (30, 220)])
    mid = (157, 125)
    assert int(paste_faces(frame.clone(), crops, aff, ids=[0, 1])[mid[1], mid[0], 0]) == 30
    assert int(paste_faces(frame.clone(), crops, aff, ids=[0, 1], under=[True, False])[mid[1], mid[0], 0]) == 220
    assert int(paste_faces(frame.clone(), crops, aff, under=[False, True])[mid[1], mid[0], 0]) == 30


def test_smoother_flags_a_face_occluded_later_in_its_window():
    """The look-ahead sees the face behind lose its detection score a few frames before the
    frame that shows it: it is stacked under from the frames before."""
    ref = reference_points(128).numpy()

    def track(tid, i, occluded=False):
        p = ref + np.array([100.0 + tid * 50 + i, 100.0])
        box = np.concatenate([p.min(0) - 20, p.max(0) + 20])
        return Track(id=tid, landmarks=torch.from_numpy(p.astype(np.float32)),
                     box=torch.from_numpy(box.astype(np.float32)), score=0.9 if occluded else 0.99, detected=True,
                     occluded=occluded)

    sm = FixedLagSmoother(lag=3)
    out = {}
    for i in range(10):
        for j, ts in sm.push(i, [track(0, i, occluded=i == 6), track(1, i)]):
            out[j] = {t.id: t.occluded for t in ts}
    for j, ts in sm.flush():
        out[j] = {t.id: t.occluded for t in ts}
    assert [out[j][0] for j in range(10)] == [False, False, False, True, True, True, True, False, False, False]
    assert not any(out[j][1] for j in range(10))
