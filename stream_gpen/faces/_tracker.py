"""Face tracker: detect every k frames, carry the 5 points in between, smooth them.

Design (measured in ``bench/tracking.py``, see ``docs/tracking.md``):

* Between detections each track's points move with the face: sparse Lucas-Kanade optical flow on
  a grey, downscaled copy of the frame (the 5 landmarks plus a grid of points inside the face
  box), reduced to one similarity transform with RANSAC. Flow is cheap (~1 ms per face on CPU),
  needs no network call, and follows real motion; its drift is reset at every detection.
* A detection is requested every ``detect_every`` frames, and also when a track is lost (flow
  failed), when a track has no detection match for a while, and on a scene cut (mean absolute
  difference of a 32x32 thumbnail).
* The raw points are smoothed with a One-Euro filter on the similarity parameters (translation,
  log-scale, rotation) relative to GPEN's template, and on the residual (expression) points in
  template coordinates. One-Euro lowers its cutoff when the face is still (kills jitter) and
  raises it with speed (no lag on real motion).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F

from stream_gpen.errors import InvalidInputError
from stream_gpen.faces._align import reference_points
from stream_gpen.faces._detector import Detections

log = logging.getLogger(__name__)

Select = Literal["all", "largest", "center"]
Motion = Literal["flow", "none"]

_REF = reference_points(256).numpy()  # template coordinates for smoothing / metrics (S = 256)


@dataclass
class Track:
    """One tracked face in the current frame.

    ``landmarks`` ``[5,2]`` float32 and ``box`` ``[4]`` (x1,y1,x2,y2) float32, frame pixels, smoothed;
    ``score``: the last detector score; ``detected``: whether this frame had a matching detection;
    ``age``: frames since the track started; ``misses``: detections in a row without a match.
    """

    id: int
    landmarks: torch.Tensor
    box: torch.Tensor
    score: float
    detected: bool = False
    age: int = 0
    misses: int = 0

    def __post_init__(self) -> None:
        if tuple(self.landmarks.shape) != (5, 2) or tuple(self.box.shape) != (4,):
            raise InvalidInputError(
                f"Track needs landmarks [5,2] and box [4], got {tuple(self.landmarks.shape)}, {tuple(self.box.shape)}"
            )


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Umeyama similarity src -> dst as a 2x3 matrix (numpy, small k)."""
    ms, md = src.mean(0), dst.mean(0)
    sc, dc = src - ms, dst - md
    cov = dc.T @ sc / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.array([1.0, -1.0 if np.linalg.det(cov) < 0 else 1.0])
    r = u @ np.diag(d) @ vt
    var = (sc**2).sum() / len(src)
    k = (s * d).sum() / max(var, 1e-12)
    a = np.zeros((2, 3))
    a[:, :2] = k * r
    a[:, 2] = md - k * r @ ms
    return a


def _apply(a: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ a[:, :2].T + a[:, 2]


def _params(points: np.ndarray) -> np.ndarray:
    """Points -> [tx, ty, log s, theta, residual(10)]: the template->points similarity and the
    points' deviation from the template in template coordinates."""
    a = _similarity(_REF, points)
    s = math.hypot(a[0, 0], a[1, 0])
    th = math.atan2(a[1, 0], a[0, 0])
    inv = np.linalg.inv(np.vstack([a, [0, 0, 1]]))[:2]
    res = (_apply(inv, points) - _REF).reshape(-1)
    return np.concatenate([[a[0, 2], a[1, 2], math.log(max(s, 1e-9)), th], res])


def _points(p: np.ndarray) -> np.ndarray:
    s, th = math.exp(p[2]), p[3]
    c, si = s * math.cos(th), s * math.sin(th)
    a = np.array([[c, -si, p[0]], [si, c, p[1]]])
    return _apply(a, _REF + p[4:].reshape(5, 2))


class OneEuro:
    """One-Euro filter (Casiez et al. 2012) over a vector, time in frames.

    ``min_cutoff`` (Hz at 1 frame/s): lower removes more jitter on a still face but lags more on
    slow motion. ``beta``: higher reduces lag on fast motion (the cutoff grows with speed) but lets
    more jitter through while moving. ``scale`` converts each component into "template pixels" so
    one beta fits translation, scale and rotation alike.
    """

    def __init__(self, *, min_cutoff: float, beta: float, d_cutoff: float = 0.1, scale: np.ndarray | None = None):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.scale = scale
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    @staticmethod
    def _alpha(cutoff, dt=1.0):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, dt: float = 1.0, scale: np.ndarray | None = None) -> np.ndarray:
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self.x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        scale = scale if scale is not None else self.scale
        # One speed for the whole face (max over components): all parameters switch between
        # "still" and "moving" together, so the shape does not wobble while the pose follows.
        speed = float(np.max(np.abs(self.dx) * (scale if scale is not None else 1.0)))
        cutoff = self.min_cutoff + self.beta * speed
        a = self._alpha(cutoff, dt)
        self.x = a * x + (1 - a) * self.x
        return self.x.copy()

    def reset_to(self, x: np.ndarray) -> None:
        self.x, self.dx = x.copy(), np.zeros_like(x)


@dataclass
class _State:
    id: int
    raw: np.ndarray  # [5,2] float64 raw points (detection or flow-carried)
    box: np.ndarray  # [4] raw box
    score: float
    filt: OneEuro
    smooth: np.ndarray = field(default_factory=lambda: np.zeros((5, 2)))
    age: int = 0
    misses: int = 0
    detected: bool = False
    lost: bool = False


class FaceTracker:
    """Keeps stable face tracks across frames with few detector calls.

    Use::

        if tracker.needs_detection(i, frame):
            d = detector.detect([frame])[0]
        else:
            d = None
        tracks = tracker.update(i, d, frame=frame)

    Options (keyword-only):

    * ``detect_every``: frames between periodic detections. Higher = fewer detector calls, but new
      faces appear later (up to k-1 frames) and flow drift grows between corrections.
    * ``motion``: ``"flow"`` carries points with optical flow between detections; ``"none"`` holds
      them (only for a static camera and subject; it lags any motion by up to k frames).
    * ``select``: ``"all"`` faces, the ``"largest"`` one, or the one nearest the ``"center"``.
    * ``min_face``: ignore faces whose box's shorter side is below this (frame px).
    * ``max_faces``: keep at most this many tracks (by the ``select`` order); ``None`` = all.
    * ``smoothing``: One-Euro ``min_cutoff`` in cycles per frame (lower = steadier, more lag on
      slow motion); ``beta``: One-Euro speed coefficient per template pixel of motion per frame
      (higher = less lag on fast motion, more jitter while moving). ``smoothing=None`` turns
      smoothing off.
    * ``correction``: at a detection, the fraction of (detection - flow-carried points) applied.
      1 snaps to the detection (lowest offset); lower spreads the drift correction and the
      detector's own landmark noise over several detections (less jitter, slightly more offset).
    * ``max_misses``: periodic detections in a row a track may go unmatched (carried by flow)
      before it is dropped; guards against one missed detection (blur, turned head) dropping a face.
    * ``scene_cut_threshold``: mean absolute grey difference (0-255) of consecutive 32x32
      thumbnails above which the frame is treated as a cut: detect and start new tracks.
      Lower catches soft cuts but fires on flashes and fast pans.
    * ``flow_long_side``: the frame is downscaled to this for optical flow; lower is faster,
      less precise.
    * ``iou_match``: minimum IoU to match a detection to a track.
    """

    def __init__(
        self,
        *,
        detect_every: int = 5,
        motion: Motion = "flow",
        select: Select = "all",
        min_face: float = 0.0,
        max_faces: int | None = None,
        smoothing: float | None = 0.02,
        beta: float = 0.1,
        correction: float = 0.5,
        max_misses: int = 1,
        scene_cut_threshold: float = 40.0,
        flow_long_side: int = 480,
        iou_match: float = 0.3,
    ) -> None:
        if not isinstance(detect_every, int) or detect_every < 1:
            raise InvalidInputError(f"detect_every must be an int >= 1, got {detect_every!r}")
        if motion not in get_args(Motion):
            raise InvalidInputError(f"motion must be one of {get_args(Motion)}, got {motion!r}")
        if select not in get_args(Select):
            raise InvalidInputError(f"select must be one of {get_args(Select)}, got {select!r}")
        if min_face < 0:
            raise InvalidInputError(f"min_face must be >= 0, got {min_face!r}")
        if max_faces is not None and (not isinstance(max_faces, int) or max_faces < 1):
            raise InvalidInputError(f"max_faces must be None or an int >= 1, got {max_faces!r}")
        if smoothing is not None and smoothing <= 0:
            raise InvalidInputError(f"smoothing must be None or > 0, got {smoothing!r}")
        if not 0.0 < correction <= 1.0:
            raise InvalidInputError(f"correction must be in (0, 1], got {correction!r}")
        if not isinstance(max_misses, int) or max_misses < 0:
            raise InvalidInputError(f"max_misses must be an int >= 0, got {max_misses!r}")
        self.detect_every = detect_every
        self.motion = motion
        self.select = select
        self.min_face = float(min_face)
        self.max_faces = max_faces
        self.smoothing = smoothing
        self.beta = float(beta)
        self.correction = float(correction)
        self.max_misses = max_misses
        self.scene_cut_threshold = float(scene_cut_threshold)
        self.flow_long_side = int(flow_long_side)
        self.iou_match = float(iou_match)
        self.fallbacks: list[str] = []
        self.reset()

    # --- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all tracks and the previous frame (call between unrelated clips)."""
        self._tracks: list[_State] = []
        self._next_id = 0
        self._last_detect: int | None = None
        self._prev_gray: np.ndarray | None = None
        self._prev_thumb: np.ndarray | None = None
        self._prev_index: int | None = None
        self._prepared: tuple[int, np.ndarray | None, np.ndarray | None, bool] | None = None
        self._frame_size: tuple[int, int] | None = None
        self.scene_cuts = 0

    # --- per-frame -------------------------------------------------------------------------
    def _prepare(self, frame_index: int, frame: torch.Tensor | None):
        if self._prepared is not None and self._prepared[0] == frame_index:
            return self._prepared
        gray = thumb = None
        cut = False
        if frame is not None:
            if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != torch.uint8:
                raise InvalidInputError(f"frame must be uint8 RGB [H,W,3], got {frame.dtype} {tuple(frame.shape)}")
            h, w = frame.shape[:2]
            self._frame_size = (h, w)
            r = min(1.0, self.flow_long_side / max(h, w))
            fh, fw = max(int(round(h * r)), 1), max(int(round(w * r)), 1)
            # Downscale and convert on the frame's device; only the small grey image goes to host.
            g = frame.permute(2, 0, 1)[None].float()
            g = (g * torch.tensor([0.299, 0.587, 0.114], device=g.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
            small = F.interpolate(g, size=(fh, fw), mode="bilinear", antialias=True, align_corners=False) if r < 1 else g
            tb = F.adaptive_avg_pool2d(small, (32, 32))
            gray = small[0, 0].clamp(0, 255).round().to(torch.uint8).cpu().numpy()
            thumb = tb[0, 0].cpu().numpy()
            if self._prev_thumb is not None:
                cut = float(np.abs(thumb - self._prev_thumb).mean()) > self.scene_cut_threshold
        self._prepared = (frame_index, gray, thumb, cut)
        if self.motion == "flow" and gray is not None and self._prev_gray is not None and not cut:
            self._flow(gray)
        return self._prepared

    def _flow(self, gray: np.ndarray) -> None:
        import cv2

        h, w = self._frame_size  # type: ignore[misc]
        r = gray.shape[1] / w
        for t in self._tracks:
            x1, y1, x2, y2 = t.box * r
            gx, gy = np.meshgrid(np.linspace(x1, x2, 5)[1:-1], np.linspace(y1, y2, 5)[1:-1])
            pts = np.concatenate([t.raw * r, np.stack([gx.ravel(), gy.ravel()], 1)]).astype(np.float32)
            win = int(np.clip((x2 - x1) / 4, 9, 31)) | 1
            nxt, st, _ = cv2.calcOpticalFlowPyrLK(
                self._prev_gray, gray, pts[:, None], None, winSize=(win, win), maxLevel=3,
                criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.01),
            )
            if nxt is None:
                t.lost = True
                continue
            # forward-backward check rejects points on occlusions and textureless skin
            back, st2, _ = cv2.calcOpticalFlowPyrLK(gray, self._prev_gray, nxt, None, winSize=(win, win), maxLevel=3)
            ok = (st[:, 0] == 1) & (st2[:, 0] == 1) & (np.linalg.norm(back[:, 0] - pts, axis=1) < 1.0)
            if ok.sum() < 4:
                t.lost = True
                continue
            a, inl = cv2.estimateAffinePartial2D(pts[ok], nxt[ok, 0], method=cv2.RANSAC, ransacReprojThreshold=1.0)
            if a is None or inl is None or inl.sum() < 4:
                t.lost = True
                continue
            a = a.astype(np.float64)
            a[:, 2] /= r
            t.raw = _apply(a, t.raw)
            c = np.array([[t.box[0], t.box[1]], [t.box[2], t.box[3]]])
            c = _apply(a, c)
            t.box = np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()])

    def needs_detection(self, frame_index: int, frame: torch.Tensor | None = None) -> bool:
        """Whether the caller should run the detector on this frame before :meth:`update`.

        True on the first frame, every ``detect_every`` frames, when a track was lost by the flow,
        when a track missed its last detection, and on a scene cut (needs ``frame``).
        """
        _, _, _, cut = self._prepare(frame_index, frame)
        if self._last_detect is None or cut:
            return True
        if frame_index - self._last_detect >= self.detect_every:
            return True
        return any(t.lost or t.misses > 0 for t in self._tracks)

    def update(self, frame_index: int, detections: Detections | None, *, frame: torch.Tensor | None = None) -> list[Track]:
        """Advance to ``frame_index`` with this frame's detections (``None`` if not detected).

        Returns the current tracks (smoothed points), ordered by ``select``.
        """
        _, gray, thumb, cut = self._prepare(frame_index, frame)
        if cut:
            self.scene_cuts += 1
            self._tracks = []  # new shot: old identities and filter states are meaningless
        for t in self._tracks:
            t.age += 1
            t.detected = False
        if detections is not None:
            self._last_detect = frame_index
            self._match(detections, cut)
        self._tracks = [t for t in self._tracks if not (t.lost and detections is not None)]
        dt = 1.0 if self._prev_index is None else max(frame_index - self._prev_index, 1)
        for t in self._tracks:
            if self.smoothing is None:
                t.smooth = t.raw.copy()
            else:
                p = _params(t.raw)
                # translation is in frame px: divide by the face's scale to get template px
                sc = np.array([1.0 / math.exp(p[2]), 1.0 / math.exp(p[2]), 256, 256] + [1.0] * 10)
                t.smooth = _points(t.filt(p, dt, sc))
        self._prev_gray, self._prev_thumb, self._prev_index = gray, thumb, frame_index
        return self._output()

    # --- helpers ---------------------------------------------------------------------------
    def _match(self, d: Detections, cut: bool) -> None:
        boxes = d.boxes.double().numpy()
        lms = d.landmarks.double().numpy()
        scores = d.scores.double().numpy()
        if self.min_face > 0 and len(boxes):
            side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            keep = side >= self.min_face
            boxes, lms, scores = boxes[keep], lms[keep], scores[keep]
        used: set[int] = set()
        if self._tracks and len(boxes):
            iou = _iou(np.stack([t.box for t in self._tracks]), boxes)
            pairs = sorted(((iou[i, j], i, j) for i in range(iou.shape[0]) for j in range(iou.shape[1])), reverse=True)
            matched_t: set[int] = set()
            for v, i, j in pairs:
                if v < self.iou_match or i in matched_t or j in used:
                    continue
                matched_t.add(i)
                used.add(j)
                t = self._tracks[i]
                # Partial correction towards the detection spreads the flow-drift correction over
                # a few detections instead of one visible snap; a lost track snaps.
                g = 1.0 if t.lost else self.correction
                t.raw = t.raw + g * (lms[j] - t.raw)
                t.box = t.box + g * (boxes[j] - t.box)
                t.score = float(scores[j])
                t.misses, t.lost, t.detected = 0, False, True
        for i, t in enumerate(self._tracks):
            if not t.detected:
                t.misses += 1
                if t.misses > self.max_misses:
                    t.lost = True
        for j in range(len(boxes)):
            if j in used:
                continue
            filt = OneEuro(min_cutoff=self.smoothing or 1.0, beta=self.beta)
            self._tracks.append(_State(self._next_id, lms[j].copy(), boxes[j].copy(), float(scores[j]), filt, detected=True))
            self._next_id += 1

    def _output(self) -> list[Track]:
        ts = [t for t in self._tracks if not t.lost]
        if self.select == "largest":
            ts.sort(key=lambda t: -(t.box[2] - t.box[0]) * (t.box[3] - t.box[1]))
        elif self.select == "center" and self._frame_size is not None:
            h, w = self._frame_size
            ts.sort(key=lambda t: math.hypot((t.box[0] + t.box[2]) / 2 - w / 2, (t.box[1] + t.box[3]) / 2 - h / 2))
        limit = 1 if self.select in ("largest", "center") else None
        if self.max_faces is not None:
            limit = min(limit or self.max_faces, self.max_faces)
        if limit is not None:
            ts = ts[:limit]
        out = []
        for t in ts:
            sm = t.smooth
            shift = sm.mean(0) - t.raw.mean(0)
            box = t.box + np.concatenate([shift, shift])
            out.append(Track(
                id=t.id, landmarks=torch.from_numpy(sm.astype(np.float32)), box=torch.from_numpy(box.astype(np.float32)),
                score=t.score, detected=t.detected, age=t.age, misses=t.misses,
            ))
        return out

    @property
    def tracks(self) -> list[Track]:
        return self._output()


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)
