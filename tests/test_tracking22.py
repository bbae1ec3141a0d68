"""Hunt 22 (tracking): the look-ahead smoother must follow camera shake that the flow measured,
and still smooth the detector's noise on a steady face (flicker)."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from stream_gpen.faces import FaceDetector, FaceTracker, FixedLagSmoother, Track
from stream_gpen.faces._smoother import TRACKER_OPTIONS
from stream_gpen.faces._tracker import _IOD, _REF

SCALE = 0.5  # the synthetic face's scale: IOD = _IOD * SCALE px


def _face(cx: float, cy: float) -> np.ndarray:
    return (_REF - _REF.mean(0)) * SCALE + np.array([cx, cy])


def _track(p: np.ndarray, *, detected: bool, flow: tuple | None) -> Track:
    box = np.concatenate([p.min(0) - 20, p.max(0) + 20])
    return Track(id=0, landmarks=torch.from_numpy(p.astype(np.float32)), box=torch.from_numpy(box.astype(np.float32)),
                 score=0.99, detected=detected, flow=flow)


def _smooth(frames: list[Track], **kw) -> np.ndarray:
    sm = FixedLagSmoother(**kw)
    out = [r for i, t in enumerate(frames) for r in sm.push(i, [t])] + sm.flush()
    assert [i for i, _ in out] == list(range(len(frames)))
    return np.stack([ts[0].landmarks.numpy().astype(np.float64) for _, ts in out])


def test_smoother_keeps_the_shake_the_flow_measured_and_smooths_detector_noise():
    """tracking22 #1 at the smoother: a face shaken i.i.d. N(0, 6 px) per frame (camera shake),
    followed exactly by the flow between detections (every 5th frame, landmark noise 1 px). The
    output must stay on the face (the old fit of the absolute pose pasted it up to 0.4 IOD beside
    it); on a steady face the detector's noise must still be smoothed."""
    r = np.random.default_rng(0)
    n = 40
    shake = r.normal(0, 6, (n, 2))
    truth = np.stack([_face(200 + dx, 150 + dy) for dx, dy in shake])
    noise = r.normal(0, 1.0, (n, 5, 2))
    frames, cur = [], None
    for i in range(n):
        det = i % 5 == 0
        if det:
            cur = truth[i] + noise[i]  # the tracker's settle=1 output snaps to a detection
            step = None if i == 0 else tuple(shake[i] - shake[i - 1]) + (0.0, 0.0)
        else:
            step = tuple(shake[i] - shake[i - 1]) + (0.0, 0.0)
            cur = cur + (shake[i] - shake[i - 1])  # carried by the flow, exactly
        frames.append(_track(cur, detected=det, flow=step))
    iod = _IOD * SCALE
    err = np.linalg.norm(_smooth(frames) - truth, axis=2).mean(1) / iod
    assert err.max() < 0.1, err.max()  # the detector noise left (1 px a point, ~0.04 IOD)
    # without the flow's motion the fit averages the shake away (the bug)
    old = np.linalg.norm(_smooth(frames, follow=False) - truth, axis=2).mean(1) / iod
    assert old.max() > 0.2

    # steady face: detections with noise, the flow measures no motion (tiny flow noise)
    still = _face(200, 150)
    frames, cur = [], None
    for i in range(n):
        det = i % 5 == 0
        fl = r.normal(0, 0.05, 2)
        cur = still + noise[i] if det else cur + fl
        frames.append(_track(cur, detected=det, flow=None if i == 0 else tuple(fl) + (0.0, 0.0)))
    raw = np.stack([t.landmarks.numpy() for t in frames]).astype(np.float64)
    out = _smooth(frames)
    jit = lambda p: float(np.linalg.norm(np.diff(p, axis=0), axis=2).mean())  # noqa: E731
    old = _smooth(frames, follow=False)
    assert jit(out) < 0.75 * jit(raw), (jit(out), jit(raw))  # measured 0.26 vs 0.38
    assert jit(out) < 1.05 * jit(old) and np.allclose(out, old, atol=0.25)  # as smooth as before


def _shaken_clip(shared, n: int, sigma: float) -> tuple[list[torch.Tensor], np.ndarray]:
    """A real aligned face photo (160 px) on a textured background, the whole picture shaken by
    i.i.d. N(0, sigma) whole-pixel shifts (handheld camera), 320x240."""
    face = np.asarray(Image.open(shared / "data" / "faces" / "aligned" / "gpen_ffhq_00000.png").convert("RGB")
                      .resize((160, 160), Image.BILINEAR))
    r = np.random.default_rng(1)
    big = r.normal(120, 30, (60, 80, 3)).clip(0, 255).astype(np.uint8)
    big = np.asarray(Image.fromarray(big).resize((400, 320), Image.BILINEAR))  # smooth texture, flow-friendly
    big = big.copy()
    big[80:240, 120:280] = face
    shifts = np.rint(r.normal(0, sigma, (n, 2))).clip(-30, 30).astype(int)
    shifts[0] = 0
    frames = [torch.from_numpy(np.ascontiguousarray(big[40 - dy:280 - dy, 40 - dx:360 - dx])) for dx, dy in shifts]
    return frames, shifts


def test_shaken_clip_paste_stays_on_the_face(shared, mobilenet_weights):
    """tracking22 #1 on a real face: camera shake N(0, 6 px) per frame. The tracker's flow
    measures it; the look-ahead smoother must keep it, so the landmarks follow the face (before:
    0.07 IOD off, the shake averaged away; less than the hunter's 0.4 only because on this small
    face the largest shake steps pass the jump guard). Truth: the first frame's detection, shifted."""
    det = FaceDetector(backbone="mobilenet0.25", device="cpu", weights=str(mobilenet_weights))
    frames, shifts = _shaken_clip(shared, 24, 6.0)
    tr, sm = FaceTracker(**TRACKER_OPTIONS), FixedLagSmoother()
    out = []
    for i, f in enumerate(frames):
        d = None
        if tr.needs_detection(i, f):
            d = det.detect_region(f, tr.probe_region) if tr.probe_region is not None else det.detect([f])[0]
        out += sm.push(i, tr.update(i, d, frame=f))
    out += sm.flush()
    assert [i for i, ts in out if len(ts) == 1] == list(range(len(frames)))
    ref = det.detect([frames[0]])[0].landmarks[0].numpy().astype(np.float64)
    iod = float(np.linalg.norm(ref[0] - ref[1]))
    err = np.stack([ts[0].landmarks.numpy() - (ref + shifts[i]) for i, ts in out])  # [n, 5, 2]
    err = err - err.mean(0)  # the detector's constant bias is not at issue
    off = np.linalg.norm(err, axis=2).mean(1) / iod
    assert off.max() < 0.04, (off.max(), int(off.argmax()))  # measured 0.021 (before the fix 0.069)
