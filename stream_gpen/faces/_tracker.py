"""Face tracker: detect every k frames, carry the 5 points in between, filter them.

Design (measured in ``bench/tracking.py``, see ``docs/tracking.md``):

* Between detections each track's points move with the face: sparse Lucas-Kanade optical flow on
  a grey, downscaled copy of the frame (the 5 landmarks plus a 5x5 grid over the inner 80% of the
  face box, forward-backward error < 0.5 px), reduced to one similarity by iteratively reweighted
  least squares; each landmark's own flow adds part (``landmark_flow``) of the non-rigid motion
  (head turns, expressions) that one similarity misses. Flow is cheap (a few ms per face on CPU)
  and needs no network call.
* A detection is requested every ``detect_every`` frames, and also when a track is lost (flow
  failed), when a track has no detection match for a while, and on a scene cut (mean absolute
  difference of a 32x32 thumbnail).
* Between those, a cheap change watch (``watch``) looks for new content outside the tracked faces:
  a small grey copy of the frame is compared with the one at the last detection, after removing
  the global shift (phase correlation) and brightness change. A changed blob the size of a small
  face requests a *probe* detection, which only starts tracks for new faces (and drops a track
  that was detected once and is gone), so a face that appears for a single frame between periodic
  detections is still found, and the tracked faces' filters are not disturbed. Picture that comes
  in through a frame border (a face sliding in from an edge, hunt 29) is probed on every frame it
  comes in further, until the detector finds it or it is all in.
* ``filter="kalman"`` (default, :class:`PoseKalman`): per face, a predict/correct filter on the
  pose (centroid, log-scale, angle) and the shape residual in template pixels. The flow is the
  prediction, detections are measurements whose noise is estimated online from the innovations;
  an innovation far outside its expected spread (a flow slip) is corrected at once. The output
  moves with the (smoothed) flow velocity and glides to each correction, so corrections do not
  show as steps. ``filter="one_euro"`` keeps the first design (partial snap + One-Euro) for
  comparison.
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
from stream_gpen.faces._detector import Detections, check_min_score

log = logging.getLogger(__name__)

Select = Literal["all", "largest", "center"]
Motion = Literal["flow", "none"]
Filter = Literal["kalman", "one_euro"]
Resize = Literal["auto", "float", "uint8"]

_REF = reference_points(256).numpy()  # template coordinates for smoothing / metrics (S = 256)

#: A detection scored under this marks its face as partly hidden (``Track.occluded``): a clear face
#: scores 0.99 or more, one half hidden behind another face about 0.9 (hunt 26: 0.924, 0.867)
OCCLUDED_SCORE = 0.95


@dataclass
class Track:
    """One tracked face in the current frame.

    ``landmarks`` ``[5,2]`` float32 and ``box`` ``[4]`` (x1,y1,x2,y2) float32, frame pixels, smoothed;
    ``score``: the last detector score; ``detected``: whether this frame had a matching detection;
    ``age``: frames since the track started; ``misses``: detections in a row without a match.
    ``occluded``: the face is partly hidden, by a face passing in front of it say: it missed its
    detection, or its box lies over a face matched to another track, or its detection scored under
    :data:`OCCLUDED_SCORE`, or its flow lost a quarter of its points (``FaceTracker.OCCLUDED_FLOW``);
    the look-ahead smoother also sets it when that is so a few frames on.
    Overlapping faces of about the same size are pasted with an occluded one underneath.
    ``flow``: the pose step ``[dcx, dcy, dlog s, dtheta]`` (frame px, log-scale, radians) the
    optical flow measured for this face from the previous frame to this one, before any detection
    correction; None where no flow carried it (its first frame, flow lost, ``motion="none"``).
    The look-ahead smoother keeps this motion (camera shake) and smooths only the rest.
    """

    id: int
    landmarks: torch.Tensor
    box: torch.Tensor
    score: float
    detected: bool = False
    age: int = 0
    misses: int = 0
    flow: tuple[float, float, float, float] | None = None
    occluded: bool = False

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


# ---------------------------------------------------------------------------------------------
# Centred pose parametrisation for the Kalman filter: the centroid of the 5 points (frame px),
# log-scale and angle of the template->points similarity, and the shape residual in template px.
# Using the centroid (not the crop origin) as "translation" decouples it from rotation/scale, so
# the components can be filtered independently.
_REF_C = _REF - _REF.mean(0)
_RHO = float(np.sqrt((_REF_C**2).sum(1).mean()))  # RMS radius: template px moved by a unit of log-scale / angle
#: inter-ocular distance of the template (S = 256), template px
_IOD = float(np.linalg.norm(_REF[0] - _REF[1]))


def _pose(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points [5,2] -> (q = [cx, cy, log s, theta], residual [10] in template px)."""
    c = points.mean(0)
    d = points - c
    cov = d.T @ _REF_C / len(d)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.array([1.0, -1.0 if np.linalg.det(cov) < 0 else 1.0])
    r = u @ np.diag(sign) @ vt
    s = max(float((sv * sign).sum() / ((_REF_C**2).sum() / len(d))), 1e-9)
    res = (d @ r) / s - _REF_C
    return np.array([c[0], c[1], math.log(s), math.atan2(r[1, 0], r[0, 0])]), res.reshape(-1)


def _compose(q: np.ndarray, res: np.ndarray) -> np.ndarray:
    s, th = math.exp(q[2]), q[3]
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    return q[:2] + s * (_REF_C + res.reshape(5, 2)) @ rot.T


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


class PoseKalman:
    """Predict/correct filter for one face (all units are template pixels, S = 256).

    * Predict (every frame): optical flow moves the estimate (``predict``); the flow's own error
      accumulates in the variance ``P`` as ``process_noise``^2 per frame (plus ``flow_rel`` of the
      motion, since flow errs more on fast motion).
    * Correct (at a detection): the detection is a noisy measurement with variance ``R``; the gain
      ``K = P / (P + R)`` weighs it against the prediction. ``R`` is *measured online* from the
      innovations (E[e^2] = P + R), starting from ``detection_noise``^2, so a blurry clip whose
      landmarks jump around gets a low gain and a sharp one a high gain. An innovation far outside
      its expected spread (gate, 3 sigma) means the prediction was wrong (flow slipped): ``P`` is
      raised to match, so such errors are corrected at once instead of slowly.
    * Output: follows the flow's (smoothed) velocity with no lag and converges to the estimate by
      ``settle`` of the gap per frame, so a correction becomes a short glide instead of a step
      (steps are what the jitter metric, and the eye, see). A detection far beyond both
      (``SNAP``, ``SNAP_NOISE``) is a jump, not drift: the filter restarts there (``snap``);
      not a detection cut by the frame border, whose landmarks are pulled in from the cut
      (``correct(clipped=)``: a noisier measurement, see ``_edge_clip``).

    The expression residual (shape relative to the template) has its own, much smaller process
    noise (``expression_noise``): expressions change slower than detector noise, so it is
    smoothed more strongly than the pose.
    """

    GATE = 3.0
    MEMORY = 20  # detections in the running noise estimate
    PRIOR = 3.0  # weight (in detections) of the initial ``detection_noise`` guess
    #: A detection this many inter-ocular distances from the estimate (pose change, in template
    #: px) ...
    SNAP = 0.3
    #: ... and this many times its expected spread (prediction + detector noise) is a jump (a cut
    #: within one set, a face found again after the flow lost it by far): the output snaps to it
    #: at once, as the look-ahead smoother does, instead of gliding there beside the real face.
    #: Smaller corrections (flow drift) still glide.
    SNAP_NOISE = 4.0

    def __init__(
        self, points: np.ndarray, *, process_noise: float, flow_rel: float, expression_noise: float,
        detection_noise: float, settle: float, velocity_smoothing: float,
    ) -> None:
        self.q, self.res = _pose(points)
        self.process_noise, self.flow_rel = process_noise, flow_rel
        self.expression_noise, self.settle, self.vs = expression_noise, settle, velocity_smoothing
        r0 = detection_noise**2
        self.P = np.full(4, r0)
        self.Pr = r0
        self.R = np.full(4, r0)  # per component: translation x/y, scale, rotation
        self.Rr = r0
        self.n = self.PRIOR
        self.v = np.zeros(4)
        self.yq, self.yres = self.q.copy(), self.res.copy()
        self.stepped = False

    def _units(self) -> np.ndarray:
        s = math.exp(self.q[2])
        return np.array([1.0 / s, 1.0 / s, _RHO, _RHO])

    def predict(self, moved: np.ndarray | None) -> None:
        """Advance one frame; ``moved`` is the estimate's points [5,2] carried by the flow to this
        frame, or None (no motion information: hold, let the variance grow)."""
        if moved is None:
            d = np.zeros(4)
        else:
            qf, rf = _pose(moved)
            d = qf - self.q
            d[3] = _wrap(d[3])
            self.res = rf
        dn = np.abs(d * self._units())
        self.q = self.q + d
        self.P = self.P + (self.process_noise + self.flow_rel * dn) ** 2
        self.Pr += self.expression_noise**2
        self.v = self.vs * d + (1 - self.vs) * self.v
        self.yq = self.yq + self.v
        self.stepped = True

    def correct(self, points: np.ndarray, *, clipped: float = 0.0) -> None:
        """Weigh a detection ``points`` [5,2] against the prediction. ``clipped`` (template px,
        see ``_edge_clip``): how far the predicted face reaches past a frame border that cuts the
        detection; such a detection's landmarks are pulled in from the cut by up to that much,
        so it is a measurement that much noisier (no snap, no gate), and it is left out of the
        detector-noise estimate."""
        qz, rz = _pose(points)
        u = self._units()
        e = qz - self.q
        e[3] = _wrap(e[3])
        en2 = (e * u) ** 2
        extra = float(clipped) ** 2
        R, Rr = self.R + extra, self.Rr + extra
        if en2.sum() > max((self.SNAP * _IOD) ** 2, self.SNAP_NOISE**2 * (self.P + R).sum()):
            self.snap(points)  # not noise: left out of the noise estimate
            return
        er = rz - self.res
        if not extra:
            # running detector-noise estimate from the innovations: E[e^2] = P + R
            w = 1.0 / min(self.n + 1.0, self.MEMORY)
            sample = np.maximum(en2 - self.P, 0.0)
            sample[:2] = sample[:2].mean()  # x and y share one translation noise
            # Outliers (flow slips) must not inflate the detector-noise estimate: clip the sample.
            self.R = self.R + w * (np.minimum(sample, 9 * self.R) - self.R)
            er2 = float((er**2).mean())
            self.Rr = self.Rr + w * (min(max(er2 - self.Pr, 0.0), 9 * self.Rr) - self.Rr)
            self.n += 1
            R, Rr = self.R, self.Rr
        P = np.where(en2 > self.GATE**2 * (self.P + R), np.maximum(self.P, en2 - R), self.P)
        k = P / (P + R)
        self.q = self.q + k * e
        self.P = (1 - k) * P
        kr = self.Pr / (self.Pr + Rr)
        self.res = self.res + kr * er
        self.Pr = (1 - kr) * self.Pr

    def output(self) -> np.ndarray:
        d = self.q - self.yq
        d[3] = _wrap(d[3])
        self.yq = self.yq + self.settle * d
        self.yres = self.yres + self.settle * (self.res - self.yres)
        self.stepped = False
        return _compose(self.yq, self.yres)

    def estimate(self) -> np.ndarray:
        return _compose(self.q, self.res)

    def snap(self, points: np.ndarray) -> None:
        """Restart at ``points`` (a lost track found again): no stale velocity or glide."""
        self.q, self.res = _pose(points)
        self.yq, self.yres = self.q.copy(), self.res.copy()
        self.v = np.zeros(4)
        self.P = self.R.copy()
        self.Pr = self.Rr


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
    filt: OneEuro | None
    kf: PoseKalman | None = None
    smooth: np.ndarray = field(default_factory=lambda: np.zeros((5, 2)))
    age: int = 0
    misses: int = 0
    detected: bool = False
    lost: bool = False
    hits: int = 1  # detections matched so far; a track with one is unconfirmed (may be a one-off)
    # flow points that agree with the track's motion: on the first flow frame after a detection
    # (reference) and on the latest one (``drop_unsure``)
    inliers_ref: int = 0
    inliers: int = 0
    covered: bool = False  # its box lies over a face a detection matched to another track
    missed_at: int = 0  # frame of the first miss of its current run of misses
    retried: bool = False  # the extra re-detect after its first miss did not find it either
    small_at: int | None = None  # frame of a detection that found it only under min_face, unconfirmed
    seen_box: np.ndarray | None = None  # [4] box of its last matched detection (the flow moves ``box``)
    flow_step: np.ndarray | None = None  # [4] pose step the flow measured this frame (``Track.flow``)


def _union(box: np.ndarray, other: np.ndarray | None) -> np.ndarray:
    """The smallest box holding ``box`` and ``other`` (``box`` alone when ``other`` is None)."""
    if other is None:
        return box.copy()
    return np.concatenate([np.minimum(box[:2], other[:2]), np.maximum(box[2:], other[2:])])


#: How far a face reaches beyond its 5 landmarks (inter-ocular distances): the part of it that a
#: frame border may cut (``_edge_clip``). The outer eye corners and cheeks lie about this far out.
EDGE_MARGIN = 0.5
#: A detection's box side within this many inter-ocular distances of a frame border touches it.
EDGE_TOUCH = 0.1


def _edge_clip(points: np.ndarray, box: np.ndarray, det_box: np.ndarray, frame_size: tuple[int, int] | None,
               agree: float) -> float:
    """How far (frame px) a tracked face, predicted at ``points`` [5,2] / ``box``, reaches past a
    frame border that cuts its detection ``det_box``; 0 where no border cuts it.

    The detector sees only the part of a face inside the frame: its landmarks are pulled in from
    the border and the face comes out too small, by up to the part cut off (hunt 24: a face
    leaving and coming back at the left edge of a fast pan, detected 0.53 inter-ocular distances
    inside and 30% small, where the flow had it right). A border cuts the detection when the
    detection's box reaches it, the predicted face (its points grown by ``EDGE_MARGIN``) reaches
    past it, and the detection's box side facing away from that border agrees with the predicted
    box's within ``agree`` px: the disagreement lies at the cut. A flow slip or a jump moves that
    far side too, and is not taken for a cut."""
    if frame_size is None:
        return 0.0
    h, w = frame_size
    iod = float(np.linalg.norm(points[0] - points[1]))
    lo = points.min(0) - EDGE_MARGIN * iod
    hi = points.max(0) + EDGE_MARGIN * iod
    tol = EDGE_TOUCH * iod
    out = 0.0
    for ax, size in ((0, w), (1, h)):
        at_lo, at_hi = det_box[ax] <= tol, det_box[ax + 2] >= size - tol
        if at_lo == at_hi:
            continue  # neither border cut, or both (a face larger than the frame): no far side
        if at_lo and abs(det_box[ax + 2] - box[ax + 2]) <= agree:
            out = max(out, -lo[ax])
        if at_hi and abs(det_box[ax] - box[ax]) <= agree:
            out = max(out, hi[ax] - size)
    return max(out, 0.0)


def _slip(points: np.ndarray, detected: np.ndarray) -> float:
    """Mean distance of a track's points from a detection's, in the face's inter-ocular distances
    (taken from its 5-point scale, so a profile's short eye distance does not inflate it)."""
    q, _ = _pose(detected)
    iod = _IOD * math.exp(q[2])
    return float(np.linalg.norm(points - detected, axis=1).mean() / max(iod, 1e-9))


class FaceTracker:
    """Keeps stable face tracks across frames with few detector calls.

    Use::

        if tracker.needs_detection(i, frame):
            if tracker.probe_region is not None:  # a probe: only this part of the frame changed
                d = detector.detect_region(frame, tracker.probe_region)
            else:
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
    * ``min_face``: ignore faces whose box's shorter side is below this (display px: as a player
      shows the frame, its pixels made square by ``pixel_aspect``, so anamorphic video keeps the
      faces its square-pixel copy keeps), judged on
      each detection's box, never on the flow-carried box (which would switch a face near the
      limit on and off between detections): a tracked face that shrinks below it (walking away)
      stays restored up to the detection that confirms it under the limit, where its track ends
      (:meth:`shrunk_ids`; not a miss: its frames up to there are kept, the look-ahead smoother's
      too). A first reading just under the limit (down to ``SHRUNK_AT_ONCE`` of it) is not
      enough: like a miss, it asks for a re-detect on the next frame (no miss counted), and the
      track ends there only if that one does not find it over the limit either, so a face
      hovering around the limit stays one track. Found over the limit again after it ended, it is
      a new track (``min_score``). Such a detection (the pipeline's detector returns faces down to
      half the limit, ``small_faces``) ends only a track it overlaps (``iou_match``) that no
      detection over the limit matched, and starts none.
    * ``pixel_aspect``: width over height on screen of a frame pixel (the video's sample aspect
      ratio; the pipeline sets its own), by which ``min_face`` measures boxes on screen (2 doubles
      widths, 0.5 heights). 1.0 (default): square pixels; a wrong value keeps or drops faces by a
      size they are not shown at.
    * ``min_score``: a detection starts a new track only at this detector score or above (GPEN's
      own script restores faces scored 0.9 and up; lower ones are mostly profiles and turned
      heads, which a frontal template restores badly). A face already tracked is kept by any
      detection the detector returns (its own threshold, e.g. 0.8), so a face whose score
      wavers around ``min_score`` as the head turns is not restored on some frames and left on
      others. 0 = every detection starts a track.
    * ``max_faces``: keep at most this many tracks (by the ``select`` order; for ``"all"`` the
      largest); ``None`` = all.
    * ``filter``: how flow and detections are combined and smoothed.
      ``"kalman"`` (default): a predict/correct filter per face (:class:`PoseKalman`): flow is the
      prediction, detections are noisy measurements whose noise is measured online, and the
      output glides to each correction. ``"one_euro"``: the earlier design (partial snap of the
      flow-carried points to each detection, then One-Euro smoothing), kept for comparison.
    * ``process_noise`` (kalman): how far (template px, S=256) the flow-carried pose may drift per
      frame. Higher trusts detections more (lower offset after flow errors, more detector noise
      in the output); lower trusts the flow more (steadier, slower to fix drift).
    * ``expression_noise`` (kalman): the same for the expression (shape) residual; small, because
      expressions change slowly relative to detector noise. Higher follows expressions faster
      and lets more landmark noise through.
    * ``detection_noise`` (kalman): initial guess of the detector's landmark noise (template px);
      the filter re-estimates it from the innovations within a few detections, so this only
      matters for the first ~second of a track.
    * ``settle`` (kalman): fraction of the gap between the output and the filter's estimate
      closed per frame. Higher = corrections show sooner (lower offset) but as sharper steps
      (more jitter); lower = smoother glide, more lag of corrections (not of motion: the output
      always moves with the flow).
    * ``velocity_smoothing`` (kalman): weight of the newest flow velocity in the output's motion
      (1 = raw flow). Lower removes flow noise (jitter) but lags when the head starts or stops.
    * ``landmark_flow``: how much of each landmark's own optical flow (beyond the face's overall
      similarity motion) is used to predict the 5-point shape between detections. Higher follows
      head turns and expressions between detections (lower offset) but adds the flow noise of
      single points on blurry footage (more jitter); 0 = rigid motion only.
    * ``smoothing`` (one_euro): One-Euro ``min_cutoff`` in cycles per frame (lower = steadier,
      more lag on slow motion); ``beta`` (one_euro): speed coefficient per template pixel of
      motion per frame (higher = less lag on fast motion, more jitter while moving).
      ``smoothing=None`` turns smoothing off for either filter (raw flow-carried points,
      corrected by ``correction`` at each detection).
    * ``correction`` (one_euro, and unsmoothed): at a detection, the fraction of (detection -
      flow-carried points) applied. 1 snaps to the detection (lowest offset); lower spreads the
      drift correction and the detector's own landmark noise over several detections (less
      jitter, slightly more offset).
    * ``max_misses``: periodic detections in a row a track may go unmatched (carried by flow)
      before it is dropped, i.e. it survives misses for ``max_misses * detect_every`` frames;
      guards against one missed detection (blur, turned head, a small face scored just under the
      detector's threshold) dropping a face. After a track's first miss one extra detection runs
      on the next frame; it does not spend the budget, but a track it misses too is not output
      under ``drop_unsure`` until found again (its flow frames are unconfirmed), and one whose
      flow is unsure (see ``drop_unsure``) is dropped there. Higher keeps wavering faces
      tracked through longer dips, at more flow-carried frames for a face that is really gone.
    * ``drop_unsure``: a track that missed a detection is not output (not pasted) while its flow
      is unsure: its box lies over a face that the detection matched to another track (the flow
      followed an occluder), or fewer than half its flow points agree with its motion compared
      with the frame after its last detection. It is still kept, and shown again when found.
      ``False`` keeps showing it up to ``max_misses`` (the look-ahead smoother sets this: it
      drops the flow-only tail of a track that is not found again itself).
    * ``scene_cut_threshold``: mean absolute grey difference (0-255) of consecutive 32x32
      thumbnails above which the frame is treated as a cut: detect and start new tracks. Only if
      the difference stays above it with the camera's shift between the two frames taken out (a
      fast pan over contrasty content moves the thumbnails as much as a cut). Lower catches soft
      cuts but fires on flashes.
    * ``flow_long_side``: the frame is downscaled to this for optical flow; lower is faster,
      less precise.
    * ``resize``: how each frame's small grey copy (flow, change watch, scene cuts) is made; both
      use torch's antialiased bilinear filter. ``"float"``: float grey of the whole frame, then
      resized, on the frame's device (any device: only the small image goes to the host).
      ``"uint8"`` (CPU frames only): OpenCV's SIMD grey conversion and torch's uint8 resize
      kernel: 10-30x cheaper per frame on CPU; the grey levels differ only by rounding (at
      most 1), which changes the flow by far less than the detector's own noise
      (``bench/tracking.py``: same metrics). ``"auto"`` = uint8 for CPU frames, float otherwise.
    * ``iou_match``: minimum IoU to match a detection to a track.
    * ``watch``: between periodic detections, compare a small grey copy of each frame with the one
      at the last detection (global shift and brightness removed, tracked faces masked out) and
      run a probe detection when a face-sized blob changed. Catches faces that appear between
      periodic detections, even for one frame, and drops a one-off track as soon as it is gone;
      the border strip a pan uncovered (new picture, nothing to compare) is probed once it is as
      wide as ``watch_area``'s side, so a face panned into view is found as it comes in; and
      content moving in through a border (a face sliding in from an edge, over a flat backdrop
      too) is probed on every frame it moved in further (``_ENTRY_MOVE``), even where a probe
      already looked (``reprobe``), so it is restored from the first frame the detector can find
      it. Costs extra detector calls on footage with much motion outside the faces, on fast pans
      and while things come in at the borders (measured in docs/tracking.md). ``False`` =
      periodic detections only.
    * ``watch_threshold``: grey-level change (0-255, on the small copy) that counts as changed; it is
      raised automatically on noisy footage (4x the robust noise level). Lower catches
      low-contrast faces, and fires more on noise and motion. A third of it counts too, in blobs
      6x ``watch_area`` (``_FAINT``), so a face fading in is probed from a few percent of its
      opacity, where the detector first finds it.
    * ``watch_area``: changed area, as a fraction of the frame, that requests a probe. Lower catches
      smaller faces, and fires more on small motion (hands, leaves).
    * ``reprobe``: let the watch probe again, before the next periodic detection, where a probe
      already looked since the last one. ``False`` (default): a changed blob that lies inside an
      area probed in this interval waits for the periodic detection, unless a face seen only once
      is there (it is still confirmed or dropped at once); busy footage (people moving in a
      crowd, a shaky film) otherwise asked for a probe on most frames, finding no new face
      (docs/tracking.md). A face that appears there waits at most ``detect_every - 1`` frames,
      as with ``watch=False`` (one coming in through a border does not: see ``watch``).
      ``True``: a probe on every frame with such a blob.
    """

    def __init__(
        self,
        *,
        detect_every: int = 5,
        motion: Motion = "flow",
        select: Select = "all",
        min_face: float = 0.0,
        max_faces: int | None = None,
        min_score: float = 0.0,
        filter: Filter = "kalman",
        process_noise: float = 0.5,
        expression_noise: float = 0.6,
        detection_noise: float = 0.5,
        settle: float = 0.3,
        velocity_smoothing: float = 0.5,
        landmark_flow: float = 0.5,
        smoothing: float | None = 0.02,
        beta: float = 0.1,
        correction: float = 0.5,
        max_misses: int = 1,
        drop_unsure: bool = True,
        scene_cut_threshold: float = 40.0,
        flow_long_side: int = 480,
        iou_match: float = 0.3,
        watch: bool = True,
        watch_threshold: float = 24.0,
        watch_area: float = 0.001,
        reprobe: bool = False,
        resize: Resize = "auto",
        pixel_aspect: float = 1.0,
    ) -> None:
        if not isinstance(detect_every, int) or detect_every < 1:
            raise InvalidInputError(f"detect_every must be an int >= 1, got {detect_every!r}")
        if motion not in get_args(Motion):
            raise InvalidInputError(f"motion must be one of {get_args(Motion)}, got {motion!r}")
        if select not in get_args(Select):
            raise InvalidInputError(f"select must be one of {get_args(Select)}, got {select!r}")
        if filter not in get_args(Filter):
            raise InvalidInputError(f"filter must be one of {get_args(Filter)}, got {filter!r}")
        if min_face < 0:
            raise InvalidInputError(f"min_face must be >= 0, got {min_face!r}")
        if isinstance(pixel_aspect, bool) or not (isinstance(pixel_aspect, (int, float)) and math.isfinite(pixel_aspect)
                                                  and pixel_aspect > 0):
            raise InvalidInputError(f"pixel_aspect must be a positive finite number, got {pixel_aspect!r}")
        if max_faces is not None and (not isinstance(max_faces, int) or max_faces < 1):
            raise InvalidInputError(f"max_faces must be None or an int >= 1, got {max_faces!r}")
        check_min_score(min_score)
        for name, v in (("process_noise", process_noise), ("expression_noise", expression_noise)):
            if not v >= 0:
                raise InvalidInputError(f"{name} must be >= 0, got {v!r}")
        if not detection_noise > 0:
            raise InvalidInputError(f"detection_noise must be > 0, got {detection_noise!r}")
        if not 0.0 <= landmark_flow <= 1.0:
            raise InvalidInputError(f"landmark_flow must be in [0, 1], got {landmark_flow!r}")
        for name, v in (("settle", settle), ("velocity_smoothing", velocity_smoothing)):
            if not 0.0 < v <= 1.0:
                raise InvalidInputError(f"{name} must be in (0, 1], got {v!r}")
        if smoothing is not None and smoothing <= 0:
            raise InvalidInputError(f"smoothing must be None or > 0, got {smoothing!r}")
        if not 0.0 < correction <= 1.0:
            raise InvalidInputError(f"correction must be in (0, 1], got {correction!r}")
        if not isinstance(max_misses, int) or max_misses < 0:
            raise InvalidInputError(f"max_misses must be an int >= 0, got {max_misses!r}")
        if not watch_threshold > 0:
            raise InvalidInputError(f"watch_threshold must be > 0, got {watch_threshold!r}")
        if not 0.0 < watch_area < 1.0:
            raise InvalidInputError(f"watch_area must be in (0, 1), got {watch_area!r}")
        if resize not in get_args(Resize):
            raise InvalidInputError(f"resize must be one of {get_args(Resize)}, got {resize!r}")
        self.resize = resize
        self.detect_every = detect_every
        self.motion = motion
        self.select = select
        self.min_face = float(min_face)
        self.pixel_aspect = float(pixel_aspect)
        self.max_faces = max_faces
        self.min_score = float(min_score)
        self.filter = filter
        self.process_noise = float(process_noise)
        self.expression_noise = float(expression_noise)
        self.detection_noise = float(detection_noise)
        self.settle = float(settle)
        self.velocity_smoothing = float(velocity_smoothing)
        self.landmark_flow = float(landmark_flow)
        self.flow_rel = 0.0
        self.smoothing = smoothing
        self.beta = float(beta)
        self.correction = float(correction)
        self.max_misses = max_misses
        self.drop_unsure = bool(drop_unsure)
        self.scene_cut_threshold = float(scene_cut_threshold)
        self.flow_long_side = int(flow_long_side)
        self.iou_match = float(iou_match)
        self.watch = bool(watch)
        self.watch_threshold = float(watch_threshold)
        self.watch_area = float(watch_area)
        self.reprobe = bool(reprobe)
        # flow internals (measured in docs/tracking.md): 5x5 grid over the inner 80% of the box plus
        # the 5 landmarks, forward-backward error < 0.5 px, IRLS similarity, 3 pyramid levels
        self._flow_cfg = (5, 0.5, "irls", 0.8, True, 3)
        self._flow_lm_w = self.landmark_flow
        self.fallbacks: list[str] = []
        self.reset()

    @property
    def _kalman(self) -> bool:
        return self.filter == "kalman" and self.smoothing is not None

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
        self._chosen: set[int] = set()  # track ids ``select``/``max_faces`` chose last (KEEP_CHOICE)
        self.scene_cuts = 0
        # change watch: small grey copy and track boxes at the last detection; frame of a pending probe
        self._watch_ref: np.ndarray | None = None
        self._watch_boxes: list[np.ndarray] = []
        self._probe_for: int | None = None
        self._retry_for: int | None = None  # frame of a pending re-detect after a first miss
        self._watch_cur: np.ndarray | None = None
        #: (x1, y1, x2, y2) frame px: where the pending probe should look (None: whole frame)
        self.probe_region: tuple[float, float, float, float] | None = None
        self.probes = 0
        self.probe_area = 0.0  # sum over probes of the region's fraction of the frame
        self._probed: list[tuple[float, float, float, float]] = []  # probe regions since the last detection
        # change watch: the border strips (left, right, top, bottom; watch px) that a pan uncovered
        # since the watch's reference and no detection has looked at yet: the part carried over
        # past a probe that did not reach that border, and this frame's total (``_changed``)
        self._edge_carry = np.zeros(4)
        self._edge_uncovered = np.zeros(4)
        self._lost_boxes: list[tuple[int, np.ndarray]] = []  # (frame, box) of confirmed tracks that ended lately
        self._shrunk: set[int] = set()  # ids the latest update ended at a detection under min_face
        self.probes_skipped = 0  # watch firings left to the periodic detection (``reprobe=False``)

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
            # a new picture size is a new scene (photos of a folder; a stream that switches
            # resolution): nothing to follow from the previous picture, whose flow and
            # change-watch maps would not even line up with this one
            resized = self._frame_size is not None and self._frame_size != (h, w)
            self._frame_size = (h, w)
            r = min(1.0, self.flow_long_side / max(h, w))
            fh, fw = max(int(round(h * r)), 1), max(int(round(w * r)), 1)
            if self.resize == "uint8" and frame.device.type != "cpu":
                raise InvalidInputError(f"resize='uint8' needs CPU frames, got a frame on {frame.device}")
            if self.resize == "uint8" or (self.resize == "auto" and frame.device.type == "cpu"):
                gray, thumb = _small_grey_uint8(frame, fh, fw)
            else:
                gray, thumb = _small_grey_float(frame, fh, fw)
            self._watch_cur = None  # made from `gray` on demand (only between detections)
            if resized:
                cut = True
            elif self._prev_thumb is not None:
                cut = float(np.abs(thumb - self._prev_thumb).mean()) > self.scene_cut_threshold
                if cut and self._prev_gray is not None and self._prev_gray.shape == gray.shape:
                    # A fast pan over contrasty content moves the thumbnail as much as a cut (4.5-5%
                    # of the frame per frame on a group photo, hunt recall27): a cut on every frame,
                    # new ids and no smoothing. The difference with the camera's shift taken out
                    # (the flow's median over the frame, as in the change watch) must be a cut's too.
                    moved = _shifted_difference(self._prev_gray, gray)
                    cut = moved is None or moved > self.scene_cut_threshold
        self._prepared = (frame_index, gray, thumb, cut)
        for t in self._tracks:
            t.flow_step = None  # set by `_flow` where the flow carries the track to this frame
        if self.motion == "flow" and gray is not None and self._prev_gray is not None and not cut:
            self._flow(gray)
        return self._prepared

    def _flow(self, gray: np.ndarray) -> None:
        import cv2

        h, w = self._frame_size  # type: ignore[misc]
        r = gray.shape[1] / w
        n, fb, est, shrink, use_lm, lvl = self._flow_cfg
        for t in self._tracks:
            x1, y1, x2, y2 = t.box * r
            cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2 * shrink, (y2 - y1) / 2 * shrink
            gx, gy = np.meshgrid(np.linspace(cx - hw, cx + hw, n + 2)[1:-1], np.linspace(cy - hh, cy + hh, n + 2)[1:-1])
            grid = np.stack([gx.ravel(), gy.ravel()], 1)
            pts = (np.concatenate([t.raw * r, grid]) if use_lm else grid).astype(np.float32)
            win = int(np.clip((x2 - x1) / 4, 9, 31)) | 1
            nxt, st, _ = cv2.calcOpticalFlowPyrLK(
                self._prev_gray, gray, pts[:, None], None, winSize=(win, win), maxLevel=lvl,
                criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.01),
            )
            if nxt is None:
                t.lost = True
                continue
            # forward-backward check rejects points on occlusions and textureless skin
            back, st2, _ = cv2.calcOpticalFlowPyrLK(gray, self._prev_gray, nxt, None, winSize=(win, win), maxLevel=lvl)
            ok = (st[:, 0] == 1) & (st2[:, 0] == 1) & (np.linalg.norm(back[:, 0] - pts, axis=1) < fb)
            if ok.sum() < 4:
                t.lost = True
                continue
            if est == "ransac":
                a, inl = cv2.estimateAffinePartial2D(pts[ok], nxt[ok, 0], method=cv2.RANSAC, ransacReprojThreshold=1.0)
            elif est == "lmeds":
                a, inl = cv2.estimateAffinePartial2D(pts[ok], nxt[ok, 0], method=cv2.LMEDS)
            else:
                a, inl = _robust_similarity(pts[ok].astype(np.float64), nxt[ok, 0].astype(np.float64))
            if a is None or inl is None or inl.sum() < 4:
                t.lost = True
                continue
            t.inliers = int(inl.sum())
            start = t.raw.copy()
            q_from = _pose(start)[0]
            if t.detected or not t.inliers_ref:
                t.inliers_ref = t.inliers
            a = a.astype(np.float64)
            a[:, 2] /= r
            moved = _apply(a, t.raw)
            if use_lm and self._flow_lm_w > 0:
                # Each landmark's own flow carries what one similarity cannot: head turns (yaw /
                # pitch change the 5-point shape) and expressions. Only points that passed the
                # forward-backward check contribute; the rest follow the similarity.
                dev = nxt[:5, 0].astype(np.float64) / r - moved
                moved = moved + self._flow_lm_w * np.where(ok[:5, None], dev, 0.0)
            if t.kf is not None:
                t.kf.predict(moved)
                t.raw = t.kf.estimate()
            else:
                t.raw = moved
            # the face's rigid motion (the similarity fitted to all its flow points): the single
            # landmarks' own flow is noisier and left to the smoother
            step = _pose(_apply(a, start))[0] - q_from
            step[3] = _wrap(step[3])
            t.flow_step = step
            # The box moves with the similarity's translation and scale about its centre. Its
            # rotation is ignored: mapping corners through it would turn the box's diagonal and
            # collapse an axis-aligned box towards a line as the face rotates, and the next
            # detection would then fail the IoU match and start a second track on the same face.
            s = float(np.sqrt(abs(np.linalg.det(a[:, :2]))))
            cx, cy = _apply(a, np.array([[(t.box[0] + t.box[2]) / 2, (t.box[1] + t.box[3]) / 2]]))[0]
            hw, hh = (t.box[2] - t.box[0]) / 2 * s, (t.box[3] - t.box[1]) / 2 * s
            t.box = np.array([cx - hw, cy - hh, cx + hw, cy + hh])

    def needs_detection(self, frame_index: int, frame: torch.Tensor | None = None) -> bool:
        """Whether the caller should run the detector on this frame before :meth:`update`.

        True on the first frame, every ``detect_every`` frames, when a track was lost by the flow,
        once on the frame after a track's first miss, and on a scene cut (needs ``frame``).
        """
        _, _, _, cut = self._prepare(frame_index, frame)
        self.probe_region = None
        self._retry_for = None
        if self._last_detect is None or cut:
            return True
        if frame_index - self._last_detect >= self.detect_every:
            return True
        if any(t.lost for t in self._tracks):
            return True
        if any((t.misses == 1 and t.missed_at == self._last_detect) or t.small_at is not None for t in self._tracks):
            # an extra look right after a miss, or after a first reading under min_face: it keeps
            # the periodic schedule (the next periodic detection, which counts against
            # max_misses, is still detect_every after the miss)
            self._retry_for = frame_index
            return True
        if self._changed(frame_index):
            self._probe_for = frame_index
            return True
        return False

    @property
    def shot_starts(self) -> bool:
        """Whether the frame :meth:`needs_detection` just looked at starts a new shot (a scene cut,
        which its :meth:`update` counts in ``scene_cuts``): known before its detection."""
        return bool(self._prepared is not None and self._prepared[3])

    @property
    def probing(self) -> bool:
        """Whether the detection :meth:`needs_detection` just asked for is a change-watch probe
        (look in :attr:`probe_region`, or the whole frame when that is None)."""
        return self._probe_for is not None

    # --- change watch ----------------------------------------------------------------------
    #: a probe detection corrects a confirmed track only when the track has slipped this far from
    #: it (mean landmark distance, inter-ocular distances): the flow following an object that
    #: passes in front of the face. Smaller differences are left to the periodic detections, so
    #: probes add no detector noise to a steady track.
    PROBE_SLIP = 0.35
    _WATCH_LONG_SIDE = 160  # px of the small grey copy: a 64 px face in 1080p is ~5 px wide here
    # Masked around each confirmed face, in face-box sizes (side, above, below): the head, hair,
    # neck and shoulders move with the face and are not new faces.
    _WATCH_MARGIN = (0.5, 0.5, 1.5)
    # A new face is a filled, roughly round blob of change; the edges of a moving body, object or
    # camera are thin lines. Blobs less filled or more elongated than this are ignored.
    _WATCH_MIN_FILL = 0.45
    _WATCH_MAX_ASPECT = 2.5

    def _watch_image(self) -> np.ndarray | None:
        """The current frame's small grey copy (float32), from the flow image of `_prepare`."""
        if self._prepared is None or self._prepared[1] is None:
            return None
        if self._watch_cur is None:
            import cv2

            gray = self._prepared[1]
            r = min(1.0, self._WATCH_LONG_SIDE / max(gray.shape))
            size = (max(int(round(gray.shape[1] * r)), 8), max(int(round(gray.shape[0] * r)), 8))
            self._watch_cur = cv2.resize(gray, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        return self._watch_cur

    def _changed(self, frame_index: int) -> bool:
        """Whether a face-sized region outside the confirmed tracks changed since the last detection."""
        if not self.watch or self._watch_ref is None:
            return False
        cur = self._watch_image()
        if cur is None or cur.shape != self._watch_ref.shape:
            return False
        import cv2

        ref = self._watch_ref
        h, w = cur.shape
        # Remove the global shift (pans, hand shake) before comparing; the border it uncovers is
        # not compared. The shift is the median optical flow of a coarse grid, which a new face
        # (a few grid points) cannot pull, unlike a phase correlation over the whole image.
        dx, dy = _median_shift(ref, cur)
        moved = cv2.warpAffine(ref, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REPLICATE)
        valid = np.zeros((h, w), bool)
        bx, by = int(math.ceil(abs(dx))) + 1, int(math.ceil(abs(dy))) + 1
        valid[by : h - by, bx : w - bx] = True
        # Confirmed faces move and talk: mask them where they are now and where they were at
        # the reference. Unconfirmed ones (one detection) stay visible, so a one-off face that
        # vanishes triggers the probe that drops its track.
        fh, fw = self._frame_size  # type: ignore[misc]
        sx, sy = w / fw, h / fh
        # The strips that the shift uncovered are new picture, never compared: a face coming in
        # from the border during a pan (hunt recall27: raw for up to 4 frames, then a pop).
        self._edge_uncovered = self._edge_carry + np.array([max(dx, 0.0), max(-dx, 0.0), max(dy, 0.0), max(-dy, 0.0)])
        edge = self._edge_region(w, h, sx, sy)
        boxes = [t.box for t in self._tracks if t.hits > 1 and not t.lost] + self._watch_boxes
        ms, ma, mb = self._WATCH_MARGIN
        for b in boxes:
            bw, bh = b[2] - b[0], b[3] - b[1]
            x1, x2 = int(max((b[0] - ms * bw) * sx, 0)), int(min(math.ceil((b[2] + ms * bw) * sx), w))
            y1, y2 = int(max((b[1] - ma * bh) * sy, 0)), int(min(math.ceil((b[3] + mb * bh) * sy), h))
            valid[y1:y2, x1:x2] = False
        if valid.sum() < 16:
            return self._probe(edge, frame_index) if edge is not None else False
        d = cur - moved
        d -= np.median(d[valid])  # global brightness change (flicker, exposure)
        a = np.abs(d)
        noise = 1.4826 * float(np.median(a[valid]))
        changed = ((a > max(self.watch_threshold, 4.0 * noise)) & valid).astype(np.float32)
        entry = self._entering(cur, moved, changed, bx, by, sx, sy)
        if entry is not None:  # new picture came in through a border: looked at like a pan's strip
            edge = entry if edge is None else _bbox(edge, entry)
        if self._lost_came_back(changed, sx, sy, frame_index, edge):
            return True
        min_area = max(self.watch_area * h * w, 4)
        keep = self._blobs(changed, min_area)
        if not keep:
            # A face fading in (a cross-dissolve, a fade from black) is found by the detector at
            # a tenth of its opacity or less, where it differs from the reference by 8-12 grey
            # levels: a fainter change, in larger blobs (hunt 31).
            faint = (a > max(self.watch_threshold * self._FAINT, 4.0 * noise)) & valid
            keep = self._blobs(faint.astype(np.float32), self._FAINT_AREA * min_area)
        if keep and not self.reprobe and self._probed:
            fresh = [st for st in keep if not self._probed_already(st, sx, sy)]
            if not fresh:
                if edge is not None:
                    return self._probe(edge, frame_index)
                self.probes_skipped += 1
                return False
            keep = fresh
        if not keep:
            return self._probe(edge, frame_index) if edge is not None else False
        # Probe where it changed (the blobs' bounding box, :meth:`_grown`; a region covering most
        # of the frame becomes the whole frame). The strips a pan uncovered are looked at too: the
        # probe makes this frame the watch's reference.
        k = np.array(keep)
        region = self._grown((k[:, 0].min() / sx, k[:, 1].min() / sy,
                              (k[:, 0] + k[:, 2]).max() / sx, (k[:, 1] + k[:, 3]).max() / sy))
        return self._probe(region if edge is None else _bbox(region, edge), frame_index)

    #: the watch's faint pass: change over this share of ``watch_threshold`` (or 4x the noise
    #: level) counts too, in blobs ``_FAINT_AREA`` times ``watch_area``, so a face fading in is
    #: probed on the first frames the detector can find it (8% opacity on the hunt's dissolve),
    #: not at the next periodic detection. Larger blobs only: a faint change the size of the
    #: smallest face probed is lighting, grain or a shadow more often than a face (the shaky film
    #: asked for 2 probes in 27 frames at 4x, none at 6x).
    _FAINT = 1.0 / 3.0
    _FAINT_AREA = 6.0

    def _blobs(self, changed: np.ndarray, min_area: float) -> list[np.ndarray]:
        """The candidate faces among the changed pixels (float32 0/1 map of the small copy): blobs,
        not scattered noise (most of each 3x3 neighbourhood changed), of at least ``min_area`` px,
        filled and not elongated. Connected-components stats rows (x, y, w, h, area)."""
        import cv2

        blob = (cv2.boxFilter(changed, -1, (3, 3), normalize=True) >= 5.0 / 9.0).astype(np.uint8)
        if int(blob.sum()) < min_area:
            return []
        _, _, stats, _ = cv2.connectedComponentsWithStats(blob, connectivity=8)
        return [
            st for st in stats[1:]
            if st[4] >= min_area and st[4] >= self._WATCH_MIN_FILL * st[2] * st[3]
            and 1 / self._WATCH_MAX_ASPECT <= st[2] / st[3] <= self._WATCH_MAX_ASPECT
        ]

    #: watch px (160 px copy) that the content at a border must have moved inward since the watch's
    #: reference, the camera's shift taken out, for :meth:`_entering` to count it as coming in: 1 px
    #: is 0.6% of the frame's long side (4 px at 640, 12 at 1920), under the flow's noise at 0.2 px
    _ENTRY_MOVE = 1.0

    def _entering(self, cur: np.ndarray, moved: np.ndarray, changed: np.ndarray, bx: int, by: int,
                  sx: float, sy: float) -> tuple[float, float, float, float] | None:
        """The region to probe for picture that came in through a frame border since the watch's
        reference (frame px), or None. A face sliding in from an edge over a flat backdrop is
        compared, after a probe too early for the detector (the reference is then that frame),
        with itself a few px further out: the change is its features' outlines, never a filled
        blob, and it waited for the next periodic detection while a per-frame detector already
        found it (hunt 29: one frame raw). So along each border, a run of changed pixels at least
        a ``watch_area`` side long, in the first compared px, whose content moved inward by
        :attr:`_ENTRY_MOVE` or more (Lucas-Kanade from this copy back to the reference moved by
        the camera's shift: local motion only, so a pan's strips are left to
        :meth:`_edge_region`) is something coming in. It is probed on every frame it comes in
        further, whatever was probed before, in the box of the change connected to the run, grown
        as a blob's. Content moving along a border, or out through it, asks for nothing, nor does a
        still scene (no change)."""
        import cv2

        h, w = changed.shape
        run_min = max(int(math.ceil(math.sqrt(self.watch_area * h * w))), 2)
        a = b = None  # the frames as uint8 for the flow: made once a run is long enough
        found = []
        for side in range(4):  # left, right, top, bottom
            m = bx if side < 2 else by
            n = w if side < 2 else h  # length across the border
            if n - 2 * m < 16:
                continue
            inner = [m, n - 1 - m][side % 2]  # the first compared row (column) at this border
            lines = [inner, inner + 1] if side % 2 == 0 else [inner, inner - 1]
            strip = (changed[:, lines] if side < 2 else changed[lines, :]).max(axis=1 if side < 2 else 0) > 0
            strip = cv2.dilate(strip.astype(np.uint8)[None], np.ones((1, 3), np.uint8))[0] > 0  # 1 px gaps
            edges = np.flatnonzero(np.diff(np.r_[0, strip.astype(np.int8), 0]))
            for r0, r1 in zip(edges[::2], edges[1::2]):
                if r1 - r0 < run_min:
                    continue
                along = np.arange(r0 + 0.5, r1, 2.0)
                # 6 px in: the flow's 9 px window still finds there, in the reference, content
                # that came in by up to ~2 px (nearer the border it reaches past it and slips)
                depth = float(inner + (6 if side % 2 == 0 else -6))
                pts = np.stack([np.full_like(along, depth), along], 1) if side < 2 else \
                    np.stack([along, np.full_like(along, depth)], 1)
                pts = pts.astype(np.float32)[:, None]
                if a is None:
                    a, b = np.clip(cur, 0, 255).astype(np.uint8), np.clip(moved, 0, 255).astype(np.uint8)
                nxt, st, _ = cv2.calcOpticalFlowPyrLK(a, b, pts, None, winSize=(9, 9), maxLevel=2)
                if nxt is None:
                    continue
                back, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, nxt, None, winSize=(9, 9), maxLevel=2)
                ok = (st[:, 0] == 1) & (st2[:, 0] == 1) & (np.linalg.norm(back[:, 0] - pts[:, 0], axis=1) < 0.5)
                if ok.sum() < max(3, len(pts) // 2):
                    continue
                # how far the content moved inward from the reference to this frame
                step = (pts[ok, 0] - nxt[ok, 0])[:, 0 if side < 2 else 1].astype(np.float64)
                inward = float(np.median(step if side % 2 == 0 else -step))
                if inward >= self._ENTRY_MOVE:
                    found.append((side, inner, r0, r1))
        if not found:
            return None
        # the whole thing coming in: the change connected to the runs (gaps of 2 px bridged: a
        # flat face's change is its features' outlines)
        near = cv2.dilate((changed > 0).astype(np.uint8), np.ones((5, 5), np.uint8))
        _, labels = cv2.connectedComponents(near, connectivity=8)
        ids = set()
        for side, inner, r0, r1 in found:
            seg = labels[r0:r1, inner] if side < 2 else labels[inner, r0:r1]
            ids.update(int(i) for i in np.unique(seg) if i)
        ys, xs = np.nonzero(np.isin(labels, list(ids)) & (changed > 0))
        if not len(xs):
            return None
        region = self._grown((xs.min() / sx, ys.min() / sy, (xs.max() + 1) / sx, (ys.max() + 1) / sy))
        # A probe reaching a border takes the strip a pan uncovered there as looked at
        # (``_watch_reset``): where one is pending, the probe runs all along that border.
        fh, fw = self._frame_size  # type: ignore[misc]
        for side, *_ in found:
            if self._edge_uncovered[side] > 0:
                region = _bbox(region, (region[0], 0.0, region[2], float(fh)) if side < 2
                               else (0.0, region[1], float(fw), region[3]))
        return region

    def _grown(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """A changed box (frame px) grown into the region a probe looks at: by half its size on
        each side (a face may be only partly inside the changed area) and to at least a quarter of
        the frame's long side, and out to a border it ends within 1/32 of the long side of (a face
        coming in there would be cut)."""
        fh, fw = self._frame_size  # type: ignore[misc]
        x1, y1, x2, y2 = box
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        side = max(fw, fh) / 4
        rw, rh = max((x2 - x1) * 2, side), max((y2 - y1) * 2, side)
        region = (max(cx - rw / 2, 0.0), max(cy - rh / 2, 0.0), min(cx + rw / 2, fw), min(cy + rh / 2, fh))
        snap = max(fw, fh) / 32
        return (0.0 if region[0] < snap else region[0], 0.0 if region[1] < snap else region[1],
                float(fw) if fw - region[2] < snap else region[2], float(fh) if fh - region[3] < snap else region[3])

    #: a border strip the pan uncovered is probed once it is this many ``watch_area`` sides wide
    #: (the side of the smallest blob the watch probes: 5 px of the 160 px copy, 2.5-3% of the
    #: frame), so a long pan costs one probe per such width of travel, not one per frame
    _EDGE_STRIP = 1.0

    def _edge_region(self, w: int, h: int, sx: float, sy: float) -> tuple[float, float, float, float] | None:
        """The region to probe for the border strips a pan uncovered (``_edge_uncovered``, watch px),
        or None while none is wide enough: from each such border inward by the strip's width twice,
        at least a quarter of the frame's long side and half its short side (a face coming in is cut
        by the border: what shows of it at the watch's reference was too little for the detector,
        and a region narrower than the face cut it again, hunt recall27), the other axis whole."""
        fh, fw = self._frame_size  # type: ignore[misc]
        need = max(self._EDGE_STRIP * math.sqrt(self.watch_area * h * w), 2.0)
        left, right, top, bottom = self._edge_uncovered
        depth = max(max(fw, fh) / 4, min(fw, fh) / 2)
        parts = []
        if left >= need:
            parts.append((0.0, 0.0, min(max(depth, 2 * left / sx), fw), float(fh)))
        if right >= need:
            parts.append((max(fw - max(depth, 2 * right / sx), 0.0), 0.0, float(fw), float(fh)))
        if top >= need:
            parts.append((0.0, 0.0, float(fw), min(max(depth, 2 * top / sy), fh)))
        if bottom >= need:
            parts.append((0.0, max(fh - max(depth, 2 * bottom / sy), 0.0), float(fw), float(fh)))
        if not parts:
            return None
        region = parts[0]
        for r in parts[1:]:
            region = _bbox(region, r)
        return region

    def _probe(self, region: tuple[float, float, float, float], frame_index: int) -> bool:
        """Ask for a probe of ``region`` (frame px), grown to take in whole the faces it cuts that
        were seen once or lost lately; a region covering most of the frame becomes the whole frame."""
        fh, fw = self._frame_size  # type: ignore[misc]
        # An unconfirmed face the region cuts (its mouth or head moved, not the whole face) is
        # taken in whole, with a quarter of its size around it: cut, the detector found part of
        # it (0.98 score, eyes 81 px apart instead of 135), and the probe aligned one frame on
        # that; or it did not find it, and dropped the track.
        # A face lost lately (behind an occluder, or turned away) that the region cuts is taken in
        # whole too: it comes back there, and a region cutting it did not find it (hunt 17).
        recent = [b for i, b in self._lost_boxes if frame_index - i < self.detect_every]
        for b in [t.box for t in self._tracks if t.hits == 1 and not t.lost] + recent:
            gx, gy = (b[2] - b[0]) / 4, (b[3] - b[1]) / 4
            g = (b[0] - gx, b[1] - gy, b[2] + gx, b[3] + gy)
            if g[0] < region[2] and g[2] > region[0] and g[1] < region[3] and g[3] > region[1]:
                region = (max(min(region[0], g[0]), 0.0), max(min(region[1], g[1]), 0.0),
                          min(max(region[2], g[2]), fw), min(max(region[3], g[3]), fh))
        area = (region[2] - region[0]) * (region[3] - region[1]) / (fw * fh)
        self.probe_region = None if area > 0.6 else region
        self.probe_area += 1.0 if area > 0.6 else area
        return True

    #: share of a lately lost face's box (grown by a quarter) that must have changed for the watch to
    #: look there again: the occluder moving off it (a bar's change is one elongated blob with the
    #: face it uncovers, which the blob test ignores)
    _LOST_CHANGE = 0.1

    def _lost_came_back(self, changed: np.ndarray, sx: float, sy: float, frame_index: int, edge=None) -> bool:
        """A probe of the boxes of confirmed faces lost in the last ``detect_every`` frames where
        their picture changed (hunt 17: a face coming out from behind a bar stayed unrestored until
        the next periodic detection, 3-4 frames)."""
        h, w = changed.shape
        fh, fw = self._frame_size  # type: ignore[misc]
        hit = []
        for i, q in self._lost_boxes:
            if frame_index - i >= self.detect_every:
                continue
            gx, gy = (q[2] - q[0]) / 4, (q[3] - q[1]) / 4
            g = (max(q[0] - gx, 0.0), max(q[1] - gy, 0.0), min(q[2] + gx, fw), min(q[3] + gy, fh))
            x1, y1 = int(g[0] * sx), int(g[1] * sy)
            x2, y2 = max(int(math.ceil(g[2] * sx)), x1 + 1), max(int(math.ceil(g[3] * sy)), y1 + 1)
            if float(changed[y1:y2, x1:x2].mean()) >= self._LOST_CHANGE:
                hit.append(g)
        if not hit:
            return False
        region = (min(g[0] for g in hit), min(g[1] for g in hit), max(g[2] for g in hit), max(g[3] for g in hit))
        if edge is not None:  # (and the border strips a pan uncovered: this frame becomes the reference)
            region = _bbox(region, edge)
        area = (region[2] - region[0]) * (region[3] - region[1]) / (fw * fh)
        self.probe_region = None if area > 0.6 else region
        self.probe_area += 1.0 if area > 0.6 else area
        return True

    def _probed_already(self, st, sx: float, sy: float) -> bool:
        """Whether blob ``st`` (a connected-components stats row on the small copy) lies inside a
        region probed since the last detection, with no face seen only once near it."""
        b = (st[0] / sx, st[1] / sy, (st[0] + st[2]) / sx, (st[1] + st[3]) / sy)
        if not any(r[0] <= b[0] and r[1] <= b[1] and b[2] <= r[2] and b[3] <= r[3] for r in self._probed):
            return False
        # a face seen once, or one lost lately, near it: probed again (confirmed or dropped, found
        # as it comes back out)
        near = [t.box for t in self._tracks if t.hits == 1 and not t.lost] + [q for _, q in self._lost_boxes]
        for q in near:
            gx, gy = (q[2] - q[0]) / 4, (q[3] - q[1]) / 4
            if q[0] - gx < b[2] and q[2] + gx > b[0] and q[1] - gy < b[3] and q[3] + gy > b[1]:
                return False
        return True

    def _watch_reset(self, probed=None) -> None:
        """A detection ran on the current frame: it becomes the watch's reference. ``probed``: the
        region of a probe (None: the whole frame); the border strips a pan uncovered that it did
        not reach are carried over to the new reference, still to be probed."""
        if probed is None:
            self._edge_carry = np.zeros(4)
        else:
            fh, fw = self._frame_size  # type: ignore[misc]
            reached = np.array([probed[0] <= 0.0, probed[2] >= fw, probed[1] <= 0.0, probed[3] >= fh])
            self._edge_carry = np.where(reached, 0.0, self._edge_uncovered)
        self._edge_uncovered = np.zeros(4)
        self._watch_ref = self._watch_image()
        self._watch_boxes = [t.box.copy() for t in self._tracks if t.hits > 1 and not t.lost]

    def update(self, frame_index: int, detections: Detections | None, *, frame: torch.Tensor | None = None) -> list[Track]:
        """Advance to ``frame_index`` with this frame's detections (``None`` if not detected).

        Returns the current tracks (smoothed points), ordered by ``select``.
        """
        _, gray, thumb, cut = self._prepare(frame_index, frame)
        self._shrunk = set()
        if cut:
            self.scene_cuts += 1
            self._tracks = []  # new shot: old identities and filter states are meaningless
            self._lost_boxes = []
        for t in self._tracks:
            t.age += 1
            t.detected = False
            if t.kf is not None and not t.kf.stepped:
                t.kf.predict(None)  # no flow for this frame (no frame given, motion="none", flow failed)
        probe = detections is not None and self._probe_for == frame_index and not cut
        retry = self._retry_for == frame_index and not cut
        self._probe_for = self._retry_for = None
        if probe:
            self.probes += 1
            self._match(frame_index, detections, cut, probe=True, region=self.probe_region)
            fh, fw = self._frame_size or (0, 0)
            self._probed.append(self.probe_region if self.probe_region is not None else (0.0, 0.0, float(fw), float(fh)))
        elif detections is not None:
            self._probed = []  # a detection of the whole frame: nothing probed since
            if not retry:
                self._last_detect = frame_index
            self._match(frame_index, detections, cut, retry=retry)
        if detections is not None:
            # confirmed faces that end here (hidden, turned away): the likeliest to come back in
            # that place, so the watch looks at their whole box for a while (see _near_lost)
            self._lost_boxes = [(i, b) for i, b in self._lost_boxes if frame_index - i < self.detect_every]
            # (where it was last seen and where the flow took it since: an occluder drags the flow)
            self._lost_boxes += [(frame_index, _union(t.box, t.seen_box)) for t in self._tracks if t.lost and t.hits > 1]
        self._tracks = [t for t in self._tracks if not (t.lost and detections is not None)]
        if self._lost_boxes and self._tracks:  # found again (a new track where it was): no longer lost
            now = np.stack([t.box for t in self._tracks])
            self._lost_boxes = [(i, q) for i, q in self._lost_boxes if not (_iou(q[None], now) >= self.iou_match).any()]
        if detections is not None and self.watch:
            self._watch_reset(self.probe_region if probe else None)
        dt = 1.0 if self._prev_index is None else max(frame_index - self._prev_index, 1)
        for t in self._tracks:
            if t.kf is not None:
                t.smooth = t.kf.output()
                t.raw = t.kf.estimate()
            elif self.smoothing is None:
                t.smooth = t.raw.copy()
            else:
                p = _params(t.raw)
                # translation is in frame px: divide by the face's scale to get template px
                sc = np.array([1.0 / math.exp(p[2]), 1.0 / math.exp(p[2]), 256, 256] + [1.0] * 10)
                t.smooth = _points(t.filt(p, dt, sc))
        self._prev_gray, self._prev_thumb, self._prev_index = gray, thumb, frame_index
        return self._output()

    # --- helpers ---------------------------------------------------------------------------
    def _new_state(self, lms: np.ndarray, box: np.ndarray, score: float) -> _State:
        if self._kalman:
            kf = PoseKalman(
                lms, process_noise=self.process_noise, flow_rel=self.flow_rel, expression_noise=self.expression_noise,
                detection_noise=self.detection_noise, settle=self.settle, velocity_smoothing=self.velocity_smoothing,
            )
            filt = None
        else:
            kf, filt = None, OneEuro(min_cutoff=self.smoothing or 1.0, beta=self.beta)
        st = _State(self._next_id, lms.copy(), box.copy(), score, filt, kf=kf, detected=True, seen_box=box.copy())
        self._next_id += 1
        return st

    def _match(self, frame_index: int, d: Detections, cut: bool, *, probe: bool = False, region=None,
               retry: bool = False) -> None:
        """Match detections to tracks (greedy IoU), correct matched tracks, age unmatched ones and
        start tracks for unmatched detections; a detection under ``min_face`` only ends a track it
        matches that no other matched (``shrunk_ids``), if it confirms an earlier reading under the
        limit (or a miss) or is under ``SHRUNK_AT_ONCE`` of it; else it asks for a re-detect. A
        ``probe`` (change-watch) detection leaves confirmed tracks to the flow and only starts new
        tracks, confirms young ones, and drops an unconfirmed track it does not find inside its
        ``region`` (None = whole frame). A ``retry`` (the re-detect after a first miss or a first
        reading under ``min_face``) spends no miss budget."""
        boxes = d.boxes.double().numpy()
        lms = d.landmarks.double().numpy()
        scores = d.scores.double().numpy()
        small = np.zeros((0, 4))
        if self.min_face > 0 and len(boxes):
            side = self._side(boxes)
            keep = side >= self.min_face
            small = boxes[~keep]
            boxes, lms, scores = boxes[keep], lms[keep], scores[keep]
        used: set[int] = set()
        matched_t: set[int] = set()
        if self._tracks and len(boxes):
            iou = _iou(np.stack([t.box for t in self._tracks]), boxes)
            pairs = sorted(((iou[i, j], i, j) for i in range(iou.shape[0]) for j in range(iou.shape[1])), reverse=True)
            for v, i, j in pairs:
                if v < self.iou_match or i in matched_t or j in used:
                    continue
                matched_t.add(i)
                used.add(j)
                t = self._tracks[i]
                if probe and t.hits > 1 and _slip(t.raw, lms[j]) < self.PROBE_SLIP:
                    continue  # a confirmed track: the probe only keeps it from being duplicated
                t.hits += 1
                if t.kf is not None:
                    # A lost track restarts at the detection; otherwise the filter weighs the
                    # detection against the flow prediction by their measured noise.
                    # A detection cut by the frame border is a noisier one (``_edge_clip``).
                    if t.lost:
                        t.kf.snap(lms[j])
                    else:
                        iod = _IOD * math.exp(t.kf.q[2])
                        cut_px = _edge_clip(t.raw, t.box, boxes[j], self._frame_size, PoseKalman.SNAP * iod)
                        t.kf.correct(lms[j], clipped=cut_px * _IOD / iod)
                    t.raw = t.kf.estimate()
                    t.box = boxes[j].copy()
                    t.seen_box = boxes[j].copy()
                else:
                    # Partial correction towards the detection spreads the flow-drift correction
                    # over a few detections instead of one visible snap; a lost track snaps.
                    g = 1.0 if t.lost else self.correction
                    t.raw = t.raw + g * (lms[j] - t.raw)
                    t.box = t.box + g * (boxes[j] - t.box)
                    t.seen_box = boxes[j].copy()
                t.score = float(scores[j])
                t.misses, t.lost, t.detected, t.covered, t.retried = 0, False, True, False, False
                t.small_at = None
        shrunk: set[int] = set()
        if self._tracks and len(small):
            # A face found only under min_face (walking away) ends at the detection that finds it
            # so a second time in a row (or after a miss, or far under the limit): the detection
            # confirms that the flow followed it, so its frames up to here stay (not a miss, whose
            # flow frames the look-ahead drops), and this one is not restored. A first reading
            # just under the limit only asks for a re-detect on the next frame, as a miss does
            # (no miss counted): a face hovering at the limit goes on, one track. (A probe's
            # region leaves out the faces it cuts: what it finds is the face's size.)
            iou = _iou(np.stack([t.box for t in self._tracks]), small)
            side = self._side(small)
            taken: set[int] = set()
            for v, i, j in sorted(((iou[i, j], i, j) for i in range(iou.shape[0]) for j in range(iou.shape[1])),
                                  reverse=True):
                if v >= self.iou_match and i not in matched_t and i not in shrunk and j not in taken:
                    shrunk.add(i)
                    taken.add(j)
                    t = self._tracks[i]
                    if t.small_at is None and t.misses == 0 and side[j] >= self.SHRUNK_AT_ONCE * self.min_face:
                        t.small_at = frame_index
                    else:
                        t.lost = True
                        self._shrunk.add(t.id)
        for i, t in enumerate(self._tracks):
            if i in matched_t or i in shrunk:
                continue
            if t.small_at is not None and not probe:
                # found under the limit, and now not at all: it shrank on (out of the detector's
                # reach) or turned away; its frames up to that detection were followed
                t.lost = True
                self._shrunk.add(t.id)
                continue
            if probe:
                inside = region is None or (
                    region[0] <= (t.box[0] + t.box[2]) / 2 <= region[2] and region[1] <= (t.box[1] + t.box[3]) / 2 <= region[3]
                )
                if t.hits == 1 and inside:
                    # Seen once, and its region changed so much that the watch fired, and the
                    # detector does not find it: a one-off face or a false detection. Dropping it
                    # now keeps a restored ghost from following the flow over the background.
                    t.lost = True
            else:
                t.misses += 1
                if t.misses == 1:
                    t.missed_at = frame_index
                t.retried = t.retried or retry
                # the flow may have followed a face passing in front of this one
                found = [self._tracks[k].box for k in matched_t]
                t.covered = bool(found) and bool((_iou(t.box[None], np.stack(found)) >= self.iou_match).any())
                # The budget is in periodic detections (frames since the first miss), so the quick
                # re-detect does not end a face whose score dips under the detector's threshold for
                # two frames (hunt 15: small crowd faces restored 3 frames, then dropped for 25). A
                # track whose flow is unsure is ending (covered, or followed something else) and
                # is dropped as soon as it misses more than max_misses detections of any kind.
                spent = frame_index - t.missed_at >= self.max_misses * self.detect_every
                if t.misses > self.max_misses and (spent or self._flow_unsure(t)):
                    t.lost = True
        for j in range(len(boxes)):
            if j not in used and scores[j] >= self.min_score:
                self._tracks.append(self._new_state(lms[j], boxes[j], float(scores[j])))

    #: A face chosen by ``select``/``max_faces`` stays chosen until another is this much larger
    #: (area) or nearer the centre (distance): two faces of about the same size would otherwise
    #: swap with every frame's box jitter, and each would blink restored/unrestored.
    KEEP_CHOICE = 1.3

    #: A tracked face that a detection finds under this fraction of ``min_face`` ends there; one
    #: found between it and the limit ends only if the re-detect on the next frame finds it under
    #: the limit too (a face hovering around the limit is not switched off and on as two tracks)
    SHRUNK_AT_ONCE = 0.9

    def _side(self, boxes: np.ndarray) -> np.ndarray:
        """Each box's shorter side on screen (display px at ``pixel_aspect``, as ``display_side``)."""
        a = self.pixel_aspect
        return np.minimum((boxes[:, 2] - boxes[:, 0]) * max(a, 1.0), (boxes[:, 3] - boxes[:, 1]) * max(1.0 / a, 1.0))

    def shrunk_ids(self) -> set[int]:
        """Ids of the tracks that the latest :meth:`update` ended because its detection found the
        face only below ``min_face``: the face was where the flow took it, so their frames up to
        this one are followed correctly (the look-ahead smoother keeps them)."""
        return set(self._shrunk)

    def alive_ids(self) -> set[int]:
        """Ids of the tracks still followed (not lost), whether or not ``select``/``max_faces``
        chose them for this frame's output: a track left out of the output is not over."""
        return {t.id for t in self._tracks if not t.lost}

    def _output(self) -> list[Track]:
        ts = [t for t in self._tracks if not t.lost and not (self.drop_unsure and self._unsure(t))]
        chosen = self._chosen
        bonus = {True: self.KEEP_CHOICE, False: 1.0}
        if self.select == "largest" or (self.select == "all" and self.max_faces is not None):
            # "all" capped at max_faces keeps the largest (usually nearest, most visible) ones
            ts.sort(key=lambda t: -(t.box[2] - t.box[0]) * (t.box[3] - t.box[1]) * bonus[t.id in chosen])
        elif self.select == "center" and self._frame_size is not None:
            h, w = self._frame_size
            ts.sort(key=lambda t: math.hypot((t.box[0] + t.box[2]) / 2 - w / 2, (t.box[1] + t.box[3]) / 2 - h / 2)
                    / bonus[t.id in chosen])
        limit = 1 if self.select in ("largest", "center") else None
        if self.max_faces is not None:
            limit = min(limit or self.max_faces, self.max_faces)
        if limit is not None:
            ts = ts[:limit]
            self._chosen = {t.id for t in ts}
        out = []
        for t in ts:
            sm = t.smooth
            shift = sm.mean(0) - t.raw.mean(0)
            box = t.box + np.concatenate([shift, shift])
            out.append(Track(
                id=t.id, landmarks=torch.from_numpy(sm.astype(np.float32)), box=torch.from_numpy(box.astype(np.float32)),
                score=t.score, detected=t.detected, age=t.age, misses=t.misses,
                flow=None if t.flow_step is None else tuple(float(v) for v in t.flow_step),
                occluded=self._occluded(t),
            ))
        return out

    @property
    def tracks(self) -> list[Track]:
        return self._output()

    def _unsure(self, t: _State) -> bool:
        """A track that missed a detection and whose flow can no longer be trusted to be on the
        face (``drop_unsure``): pasted, it would slide over the occluder or the background. One
        the re-detect after its first miss did not find either is held back too: live, its flow
        frames until it is found again are unconfirmed (a head turned away, a face gone)."""
        return t.misses > 0 and (t.retried or self._flow_unsure(t))

    #: A track whose flow keeps under this fraction of its reference inlier points is taken as
    #: partly hidden (``Track.occluded``): the points on the part covered stop following it (hunt
    #: 26: a face passing in front of another of its size, 12 of 20 two frames before its miss)
    OCCLUDED_FLOW = 0.75

    def _occluded(self, t: _State) -> bool:
        return (t.covered or t.misses > 0 or t.score < OCCLUDED_SCORE
                or 0 < t.inliers < self.OCCLUDED_FLOW * t.inliers_ref)

    @staticmethod
    def _flow_unsure(t: _State) -> bool:
        return t.covered or 0 < t.inliers * 2 < t.inliers_ref


def _small_grey_float(frame: torch.Tensor, fh: int, fw: int) -> tuple[np.ndarray, np.ndarray]:
    """``frame`` ``[H,W,3]`` uint8 RGB (any device) -> (grey ``[fh,fw]`` uint8, 32x32 float32 thumbnail).
    Downscaled and converted on the frame's device; only the small images go to the host."""
    g = frame.permute(2, 0, 1)[None].float()
    g = (g * torch.tensor([0.299, 0.587, 0.114], dtype=g.dtype, device=g.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    resize = (fh, fw) != tuple(frame.shape[:2])
    small = F.interpolate(g, size=(fh, fw), mode="bilinear", antialias=True, align_corners=False) if resize else g
    tb = F.adaptive_avg_pool2d(small, (32, 32))
    return small[0, 0].clamp(0, 255).round().to(torch.uint8).cpu().numpy(), tb[0, 0].cpu().numpy()


#: the downscale factor from which :func:`_small_grey_uint8` resizes the RGB picture first
_RGB_FIRST = 3.0


def _small_grey_uint8(frame: torch.Tensor, fh: int, fw: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_small_grey_float` for a CPU frame, without a float copy of the whole frame: OpenCV's
    fixed-point grey conversion and torch's uint8 antialiased bilinear kernel (the same filter).
    A few ms per 1080p frame instead of tens.

    From a ~3x downscale on, the RGB picture is resized first (torch's SIMD kernel for
    channels-last uint8 RGB; on a single grey channel it takes a slow path) and only the small
    picture made grey: 3840x2160 -> 480 wide 20-27 ms -> 6.3 ms, 1080p 6.6 -> 4.7 ms, within one
    grey level (mean 0.12). Below that, grey first stays cheaper (844 px square: 3.8 ms against 5.4)."""
    import cv2

    h, w = frame.shape[:2]
    if (fh, fw) != (h, w) and min(h / fh, w / fw) >= _RGB_FIRST:
        # (a channels-last view of the [H, W, 3] frame: no copy; the result is channels-last too)
        small = F.interpolate(frame.permute(2, 0, 1)[None], size=(fh, fw), mode="bilinear", antialias=True,
                              align_corners=False)
        small = cv2.cvtColor(np.ascontiguousarray(small[0].permute(1, 2, 0).numpy()), cv2.COLOR_RGB2GRAY)
        return small, _thumb32(small)
    g = torch.from_numpy(cv2.cvtColor(np.ascontiguousarray(frame.numpy()), cv2.COLOR_RGB2GRAY))[None, None]
    small = g
    if (fh, fw) != tuple(g.shape[-2:]):
        small = F.interpolate(g, size=(fh, fw), mode="bilinear", antialias=True, align_corners=False)
    small = np.ascontiguousarray(small[0, 0].numpy())
    return small, _thumb32(small)


def _thumb32(grey: np.ndarray, n: int = 32) -> np.ndarray:
    """``F.adaptive_avg_pool2d(grey, (n, n))`` of a uint8 picture (bins from floor(i*H/n) to
    ceil((i+1)*H/n)), from its integral image: torch's CPU kernel took ~11 ms for a 270x480 one
    on this 2-core machine, this ~0.5 ms; float32 of the exact means (torch's differ by <= 2e-5)."""
    import cv2

    h, w = grey.shape
    i = np.arange(n)
    y0, y1 = (i * h) // n, -((-(i + 1) * h) // n)
    x0, x1 = (i * w) // n, -((-(i + 1) * w) // n)
    c = cv2.integral(grey, sdepth=cv2.CV_64F)
    s = c[y1][:, x1] - c[y0][:, x1] - c[y1][:, x0] + c[y0][:, x0]
    return (s / ((y1 - y0)[:, None] * (x1 - x0)[None, :])).astype(np.float32)


def _shifted_difference(prev: np.ndarray, cur: np.ndarray) -> float | None:
    """The scene-cut measure (mean absolute difference of 32x32 thumbnails, 0-255) of two small
    grey pictures after ``prev`` is moved by the global shift between them (:func:`_median_shift`),
    over the part both show; None where no shift is found (or it leaves too little to compare)."""
    import cv2

    a, b = prev.astype(np.float32), cur.astype(np.float32)
    dx, dy = _median_shift(a, b)
    h, w = cur.shape
    bx, by = int(math.ceil(abs(dx))), int(math.ceil(abs(dy)))
    if (dx, dy) == (0.0, 0.0) or w - 2 * bx < 32 or h - 2 * by < 32:
        return None
    a = cv2.warpAffine(a, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REPLICATE)
    a, b = a[by : h - by, bx : w - bx], b[by : h - by, bx : w - bx]
    return float(np.abs(_thumb32(np.ascontiguousarray(a)) - _thumb32(np.ascontiguousarray(b))).mean())


def _median_shift(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Global translation ref -> cur (small grey float32 images): median LK flow of an 8x6 grid
    of points over the inner 80%; (0, 0) when under a quarter of them track (flat or replaced
    content)."""
    import cv2

    h, w = ref.shape
    gx, gy = np.meshgrid(np.linspace(0.1 * w, 0.9 * w, 8), np.linspace(0.1 * h, 0.9 * h, 6))
    pts = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)[:, None]
    a, b = np.clip(ref, 0, 255).astype(np.uint8), np.clip(cur, 0, 255).astype(np.uint8)
    nxt, st, _ = cv2.calcOpticalFlowPyrLK(a, b, pts, None, winSize=(15, 15), maxLevel=3)
    if nxt is None:
        return 0.0, 0.0
    ok = st[:, 0] == 1
    # A point on flat content (a plain wall, a sky) fails to track. With 6 of the 48 points
    # tracked, the median took the motion of a person walking in front of a plain wall as the
    # camera's: the reference was shifted 6-25 px (at 160 px) along with them and a border of as
    # much left out where their face came in (hunt faces23 #2). So under a quarter tracked is no
    # motion. (Counting the untracked points as still votes instead lost a pan over a sky: with
    # two thirds of the grid on it the pan read as 0 px, review23.)
    if ok.sum() < max(6, len(pts) // 4):
        return 0.0, 0.0
    d = (nxt[ok, 0] - pts[ok, 0]).astype(np.float64)
    dx, dy = float(np.median(d[:, 0])), float(np.median(d[:, 1]))
    if not (np.isfinite(dx) and np.isfinite(dy)) or abs(dx) > w / 4 or abs(dy) > h / 4:
        return 0.0, 0.0
    return dx, dy


def _robust_similarity(src: np.ndarray, dst: np.ndarray, iters: int = 3):
    """Similarity src -> dst by iteratively reweighted least squares (Huber-like): every good
    point contributes (no random subset), points far from the consensus are down-weighted."""
    w = np.ones(len(src))
    a = None
    for _ in range(iters):
        ms, md = (w[:, None] * src).sum(0) / w.sum(), (w[:, None] * dst).sum(0) / w.sum()
        sc, dc = src - ms, dst - md
        cov = (w[:, None] * dc).T @ sc / w.sum()
        var = (w * (sc**2).sum(1)).sum() / w.sum()
        u, sv, vt = np.linalg.svd(cov)
        d = np.array([1.0, -1.0 if np.linalg.det(cov) < 0 else 1.0])
        rot = u @ np.diag(d) @ vt
        k = (sv * d).sum() / max(var, 1e-12)
        a = np.zeros((2, 3))
        a[:, :2] = k * rot
        a[:, 2] = md - k * rot @ ms
        err = np.linalg.norm(src @ a[:, :2].T + a[:, 2] - dst, axis=1)
        scale = max(1.4826 * np.median(err), 0.1)
        w = np.minimum(1.0, 2.0 * scale / np.maximum(err, 1e-9))
    return a, w > 0.5


def _bbox(a, b) -> tuple[float, float, float, float]:
    """The bounding box of two (x1, y1, x2, y2) boxes."""
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)
