"""Fixed-lag (look-ahead) landmark smoother for offline video.

A causal tracker (:class:`~stream_gpen.faces.FaceTracker`) can only smooth with the past, so every
bit of jitter it removes costs lag behind real motion. When the input is a file, the pipeline can
afford to hold a few frames: the smoother releases frame ``i`` only once it has seen frame
``i + lag``, and fits each track's landmarks over a window that reaches ``lag`` frames into the
future as well as the past (``docs/tracking.md``: measured on the real clips).

The fit is a Gaussian-weighted local polynomial (degree 1 by default: a local line, i.e. a
Savitzky-Golay-style fit) of the track's pose (centroid, log-scale, angle) and its 10-value shape
residual in template pixels, evaluated at the output frame. A local line is unbiased on constant
velocity, even where the window is one-sided (a track's first/last frames), so smoothing adds no
lag to linear motion; only acceleration is rounded off, by an amount set by ``sigma``.

The window never crosses a track's start or end (a track id absent from a frame ends that
track's segment), a scene cut (``push(..., cut=True)``), a gap in the frame indices, or a jump of
the face: a step between two frames that departs from the face's motion by more than
``JUMP`` inter-ocular distances (a jump cut within one set, which the scene-cut test does not
see; a track lost and found again elsewhere). Spreading or smoothing such a step would paste the
face beside itself on the frames around it, before the jump as well as after.

A track that ends after missing a detection (``Track.misses``: occluded, turned away, gone) is
not pasted on its held frames since its last detection: the flow alone carried it there, and it
follows whatever moved over the face (an occluder, the background). A track found again keeps them,
as does one that ends because a detection found the face under the tracker's ``min_face``
(``push(..., shrunk=)``: it shrank, walking away, and was where the flow took it). Given a detector
to ask (``push(..., confirm=)``: the pipeline detects around the track's box on the held frame), the
frames before the missed detection on which the face is still found are kept too (a head
turning away is restored up to the frame before it turns, not on its last detected frame alone).
A track missed by two detections in a row (``Track.misses == 2``: the tracker's re-detect right
after a miss did not find it either) loses those frames the same way, since they leave the window
before the next periodic detection decides; the tracker still follows it, and if it is found again
its frames from then on are pasted (a face whose score dips under the detector's threshold).
A track whose whole first run is at most ``BLIP`` frames, its end in view, is not pasted at all,
unless one of its detections scored ``BLIP_SURE`` (a clear face on screen for a moment).

Before the fit, the flow drift is undone where the look-ahead shows it (``drift="spread"``): the
step a track takes at a detection, beyond its carried velocity, is ramped back over the frames
since its previous detection, and frames whose drift no detection has corrected yet weigh less.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable, Literal, get_args

import numpy as np
import torch

from stream_gpen.errors import InvalidInputError
from stream_gpen.faces._tracker import _IOD, _RHO, Track, _compose, _pose, _wrap

#: Default look-ahead for files (frames). Chosen on the six real clips (docs/tracking.md): with the
#: tracker's default ``detect_every=5``, 5 frames let every frame's window reach the next
#: detection; with ``sigma=1.5`` it meets issue 4's jitter and offset targets on the talking head,
#: selfie and old-TV clips with one setting. 5 frames = 200 ms at 25 fps, 5 more frames in the ring.
DEFAULT_LAG = 5

#: FaceTracker options to use under a smoother: the tracker's causal output glide (``settle``)
#: is a lagging smoother of its own; the look-ahead smoother replaces it, so the tracker hands
#: over its filter estimate (measured: old TV offset 4.16% with the glide vs 2.84% without).
#: The tracker's ``drop_unsure`` (hide a track that missed a detection and whose flow is unsure,
#: for live use) is off: the smoother sees whether the track is found again, and drops the whole
#: flow-only tail of one that is not (a hidden frame would also break a found track's window).
TRACKER_OPTIONS = {"settle": 1.0, "drop_unsure": False}

Drift = Literal["spread", "keep"]

#: ``confirm(frame_index, track, tracks)``: whether a detection on frame ``frame_index`` (as pushed)
#: finds the face of ``track`` (that frame's flow-carried track; ``tracks``: all of that frame's)
Confirm = Callable[[int, Track, list[Track]], bool]


@dataclass
class _Entry:
    index: int
    epoch: int  # bumped at a scene cut or an index gap: windows never cross an epoch boundary
    tracks: list[Track]
    params: dict[int, np.ndarray]  # track id -> [cx, cy, log s, theta, residual(10)]
    # track id -> frames since the track's last detection while that drift is not yet corrected
    # by a later detection (0 = anchored: a detection, or ramped by `_spread`)
    carried: dict[int, int]
    # track id -> piece of the track: bumped where the face jumps, windows never cross pieces
    piece: dict[int, int]
    alive: set[int] | None = None  # ids the tracker still follows (None: those in `tracks`)
    # track id -> pose step [dcx, dcy, dlog s, dtheta] the flow measured into this frame
    # (``Track.flow``; zeros where unknown): kept as it is, only the rest is smoothed
    flow: dict[int, np.ndarray] = field(default_factory=dict)
    cut: set[int] = field(default_factory=set)  # ids whose flow tail `_drop_tail` removed here


class FixedLagSmoother:
    """Smooth each track's 5 landmarks with ``lag`` frames of look-ahead (offline video only).

    Use::

        sm = FixedLagSmoother(lag=5)
        for i, frame in enumerate(frames):
            for j, tracks in sm.push(i, tracker.update(i, dets, frame=frame)):
                ...  # frame j's final tracks, j = i - lag
        for j, tracks in sm.flush():
            ...

    Every pushed frame comes out exactly once, in order: :meth:`push` returns the frames that have
    become final (at most one per call once the window is full), :meth:`flush` the rest.

    Options (keyword-only):

    * ``lag``: frames of look-ahead (and of delay). More = smoother landmarks and a window that
      sees both sides of each detection correction, at the cost of ``lag`` more frames held in
      memory and ``lag`` frames of added latency. ``0`` passes tracks through unchanged (live use).
    * ``sigma``: width of the Gaussian weights in frames (default 1.5; the window is cut at
      +-``lag``). Larger = less jitter but more rounding of real accelerations (offset grows);
      beyond about ``lag / 2`` the cut window, not ``sigma``, limits the smoothing.
    * ``degree``: degree of the local polynomial: ``1`` (a line: no lag on constant velocity, only
      acceleration is smoothed), ``2`` (a parabola: follows accelerations too, but removes much less
      jitter for the same window), ``0`` (a weighted mean: lags at the ends of a track).
    * ``drift``: ``"spread"`` (default): when a track is corrected by a detection (``Track.detected``),
      the correction (its step beyond the track's recent velocity) is the flow's drift since the
      previous detection, so it is spread back as a ramp over the frames since then that are still
      held. The carried points then meet each detection instead of jumping to it, which removes
      most of the offset of the flow-carried frames; it needs ``lag >= detect_every - 1`` to
      reach back to the previous detection (with less it spreads over the held frames only).
      ``"keep"``: smooth the tracker's points as they are.
    * ``follow``: ``True`` (default): the motion the optical flow measured from frame to frame
      (``Track.flow``: camera shake, a jolt) is kept; only what the flow did not carry
      (the detector's landmark noise at each detection, drift corrections) is smoothed; the flow's
      own small noise is smoothed too (``FLOW_NOISE``). ``False``: the tracker's points are
      smoothed as a whole, which averages high-frequency shake away (the paste lands beside the
      face).
    """

    #: carried frames after which an uncorrected frame counts half (drift ~ detector noise)
    DRIFT_FRAMES = 1.0
    #: a step between frames that departs from the face's motion (its velocity on the frame
    #: before) by more than this many inter-ocular distances is a jump, not drift or noise: flow
    #: drift corrected at a detection is a few hundredths of that on real footage
    #: (docs/tracking.md), a jump cut within one set or a face found again elsewhere 0.3 and up
    JUMP = 0.2
    #: ... and more than this many times the track's own RMS step departure (small and blurry
    #: faces, whose detections scatter by tenths of their size, would otherwise "jump" at
    #: every detection and lose their smoothing)
    JUMP_NOISE = 4.0
    #: a new track's RMS step departure before any is measured
    JUMP_START = 0.1
    #: a track that lives this many frames or fewer, start and end both within the look-ahead
    #: window, is not pasted: restored for 0.1 s, it is a visible pop (hunt 15: crowd faces
    #: found by a lucky detection or two), and a one-off false face
    BLIP = 3
    #: ... unless a detection in it scored at least this: a clear face on screen for a moment (a
    #: flash cut, a face passing the camera) is restored where it is; the blips seen were faces
    #: scored 0.84-0.93 (a crowd's small faces), a clear face scores 0.99 and more
    BLIP_SURE = 0.97
    #: the flow's high-frequency motion (its path's departure from its own line over the window,
    #: inter-ocular distances) kept as measured: a departure of ``n`` keeps the share
    #: n^2 / (n^2 + FLOW_NOISE^2); the rest is smoothed with the detector's noise. Camera shake
    #: of a few pixels on a face departs 0.05-0.3; the flow's own noise on a still face 0.0003
    #: (clean) to 0.007 (dark, noisy). Chosen on bench/tracking.py (docs/tracking.md): lower
    #: follows small shake more closely, and adds the real clips' small flow motions to the
    #: jitter metric (old TV ratio 0.40 at 0.01, 0.33 at 0.1)
    FLOW_NOISE = 0.05

    def __init__(
        self, *, lag: int = DEFAULT_LAG, sigma: float | None = None, degree: int = 1, drift: Drift = "spread",
        follow: bool = True,
    ) -> None:
        if not isinstance(lag, int) or isinstance(lag, bool) or not 0 <= lag <= 64:
            raise InvalidInputError(f"lag must be an int in [0, 64], got {lag!r}")
        if sigma is not None and not (isinstance(sigma, (int, float)) and sigma > 0):
            raise InvalidInputError(f"sigma must be a positive number or None, got {sigma!r}")
        if degree not in (0, 1, 2):
            raise InvalidInputError(f"degree must be one of (0, 1, 2), got {degree!r}")
        if drift not in get_args(Drift):
            raise InvalidInputError(f"drift must be one of {get_args(Drift)}, got {drift!r}")
        if not isinstance(follow, bool):
            raise InvalidInputError(f"follow must be a bool, got {follow!r}")
        self.lag = lag
        self.follow = follow
        self.drift = drift
        self.sigma = float(sigma) if sigma is not None else 1.5
        self.degree = degree
        self.reset()

    def reset(self) -> None:
        """Forget every buffered frame (call between unrelated clips; unreleased frames are lost)."""
        self._buf: deque[_Entry] = deque()
        self._next = 0  # position in _buf of the next frame to release
        self._epoch = 0
        self._last_index: int | None = None
        self._step_ms: dict[int, float] = {}  # track id -> running mean square of its step departures
        self._blips: dict[int, bool] = {}  # track id -> its current run is a blip (`_blip`)

    @property
    def held(self) -> int:
        """Frames pushed but not released yet (at most ``lag``)."""
        return len(self._buf) - self._next

    def push(self, frame_index: int, tracks: list[Track], *, cut: bool = False,
             alive: set[int] | None = None, shrunk: set[int] | None = None,
             confirm: Confirm | None = None) -> list[tuple[int, list[Track]]]:
        """Add one frame's tracks; returns the frames that became final as ``(index, tracks)``.

        ``frame_index`` must increase; a jump of more than one frame, or ``cut=True`` (a scene cut
        on this frame), starts a new segment that no window crosses. ``alive``: the ids the
        tracker still follows (:meth:`FaceTracker.alive_ids`); a track missing from ``tracks``
        but alive was only not chosen (``select``/``max_faces``) and has not ended: its flow tail
        is kept (dropping it left frames with no face restored at all). None: a track missing
        from ``tracks`` has ended. ``shrunk``: the ids whose track ended on this frame at a
        detection that found the face below the tracker's ``min_face``
        (:meth:`FaceTracker.shrunk_ids`): found where the flow took it, such a track keeps its
        frames, even after a missed detection. ``confirm``: asks a detector about a held frame
        (:data:`Confirm`) before a flow tail is dropped: its frames up to the newest one where the
        face is still found are kept (:meth:`_drop_tail`). None: the whole tail is dropped.
        """
        if self._last_index is not None and frame_index <= self._last_index:
            raise InvalidInputError(
                f"frame_index must increase: got {frame_index} after {self._last_index} (call reset() for a new clip)"
            )
        if cut or (self._last_index is not None and frame_index != self._last_index + 1):
            self._epoch += 1
        self._last_index = frame_index
        if self.lag == 0:
            return [(frame_index, list(tracks))]
        params, flow = {}, {}
        for t in tracks:
            q, res = _pose(t.landmarks.detach().cpu().double().numpy())
            params[t.id] = np.concatenate([q, res])
            if t.flow is not None and self.follow:
                flow[t.id] = np.asarray(t.flow, dtype=np.float64)
        carried, piece, jumped = {}, {}, set()
        prev = self._buf[-1] if self._buf and self._buf[-1].epoch == self._epoch else None
        if prev is not None:
            ids = {t.id for t in tracks}
            for t in prev.tracks:
                # ended (not only left unchosen) after a missed detection. A track that ends at the
                # detection its flow's loss asked for keeps its frames: dropping them (hunt 17, for
                # an occluder the flow slid onto) left visible faces raw for 3-4 frames on the
                # shared stage and crowd clips, turning profiles the flow was still on
                if (t.id not in ids and t.misses > 0 and (alive is None or t.id not in alive)
                        and (shrunk is None or t.id not in shrunk)):
                    self._drop_tail(t.id, confirm)
        before = self._buf[-2] if len(self._buf) > 1 and self._buf[-2].epoch == self._epoch else None
        for t in tracks:
            if prev is None or t.id not in prev.params:
                carried[t.id], piece[t.id] = 0, 0
                continue
            piece[t.id] = prev.piece[t.id]
            x1, x2 = prev.params[t.id], params[t.id]
            x0 = before.params.get(t.id) if before is not None and before.piece.get(t.id) == piece[t.id] else None
            # a track's first steps (no velocity known yet) are not judged; its noise starts
            # high and is learnt from its steps
            dev = _jump(x0, x1, x2) if x0 is not None else 0.0
            ms = self._step_ms.get(t.id, self.JUMP_START ** 2)
            if dev > max(self.JUMP, self.JUMP_NOISE * math.sqrt(ms)):
                piece[t.id] += 1
                jumped.add(t.id)
            else:
                self._step_ms[t.id] = ms + 0.1 * (dev * dev - ms)
            if t.detected or t.id in jumped:
                carried[t.id] = 0
            else:
                carried[t.id] = prev.carried[t.id] + 1
        for tid in jumped:
            flow.pop(tid, None)  # a new piece starts here: its step is not carried motion
        self._buf.append(_Entry(frame_index, self._epoch, list(tracks), params, carried, piece, alive, flow=flow))
        if prev is not None:
            missed_once = {t.id for t in prev.tracks if t.misses == 1}
            for t in tracks:
                if t.misses == 2 and t.id in missed_once:
                    self._drop_tail(t.id, confirm)
        if self.drift == "spread":
            for t in tracks:
                if t.detected and t.id not in jumped:
                    self._spread(t.id)
        out = []
        while len(self._buf) - 1 - self._next >= self.lag:
            out.append(self._release())
        return out

    def flush(self) -> list[tuple[int, list[Track]]]:
        """Release every frame still held (end of the clip), smoothed with what is left ahead.

        The smoother is then empty, as after :meth:`reset`: the next push starts a new clip."""
        out = []
        while self._next < len(self._buf):
            out.append(self._release())
        self.reset()
        return out

    # --- internals -----------------------------------------------------------------------------
    def _release(self) -> tuple[int, list[Track]]:
        p = self._next
        e = self._buf[p]
        tracks = []
        for t in e.tracks:
            # decided at a run's first frame for the whole run, so a run is pasted whole or not
            q = self._buf[p - 1] if p > 0 and self._buf[p - 1].epoch == e.epoch else None
            if q is None or all(x.id != t.id for x in q.tracks):
                self._blips[t.id] = self._blip(p, t.id)
            if not self._blips.get(t.id, False):
                tracks.append(self._smooth(p, t, self._occluded(p, t)))
        self._next += 1
        # keep `lag` released frames as the past of the next window
        while self._next > self.lag:
            self._buf.popleft()
            self._next -= 1
        return e.index, tracks

    def _occluded(self, p: int, track: Track) -> bool:
        """Whether the face of ``track`` (at position ``p``) is partly hidden now or later in the
        window (``Track.occluded``): a face passing in front of it is seen coming, so the paste
        stacks it underneath from before the frames where it scores low or is missed."""
        e = self._buf[p]
        for j in range(p, len(self._buf)):
            f = self._buf[j]
            if f.epoch != e.epoch:
                break
            t = next((t for t in f.tracks if t.id == track.id), None)
            if t is not None and t.occluded:
                return True
        return False

    def _blip(self, p: int, tid: int) -> bool:
        """Whether the run of track ``tid`` starting at position ``p`` is the track's first and
        ends within ``BLIP`` frames, in view (it ends or loses its flow tail, `_drop_tail`), with
        no detection scored ``BLIP_SURE``: pasted, a doubtful face would light up restored for a
        moment and go back."""
        if self.lag < self.BLIP:
            return False  # the window cannot show the end of a whole blip
        e = self._buf[p]
        if p > 0 and self._buf[p - 1].epoch == e.epoch:
            f = self._buf[p - 1]
            if tid in f.cut or (f.alive is not None and tid in f.alive):
                return False  # not the track's start: found again after a gap, or chosen again
        best = 0.0
        for j in range(p, min(p + self.BLIP + 1, len(self._buf))):
            f = self._buf[j]
            if f.epoch != e.epoch:
                return False
            t = next((t for t in f.tracks if t.id == tid), None)
            if t is None:
                if best >= self.BLIP_SURE:
                    return False  # a clear face seen briefly (a flash cut): restored where it is
                return tid in f.cut or f.alive is None or tid not in f.alive  # else only left unchosen
            if t.detected:
                best = max(best, float(t.score))
        return False

    def _drop_tail(self, tid: int, confirm: Confirm | None = None) -> None:
        """Track ``tid`` ended after missing a detection (occluded, turned away, gone): its held
        frames since its last detection were carried by flow alone, which follows whatever moved
        there (the occluder, the background), so they are not pasted. A track found again by a
        detection is not ended and keeps its flow frames.

        With ``confirm``, the face may still be there on the first of those frames (a head turning
        away, a face scored under the detector's threshold only at the missed detection): the
        frames before the first missed detection are asked about, the newest first (one call
        where the face is still there), then by bisection (the face seen up to a frame, then
        hidden), and those up to the newest one where it is found are kept. Frames from the
        missed detection on are dropped without asking: a detection did not find it there."""
        tail = []  # buffer positions, newest first
        r = len(self._buf) - 1
        while r >= self._next:
            t = next((t for t in self._buf[r].tracks if t.id == tid), None)
            if t is None or t.detected:
                break
            tail.append(r)
            r -= 1
        keep = 0  # the oldest `keep` frames of the tail stay
        if confirm is not None:
            ask = [r for r in reversed(tail) if self._track(r, tid).misses == 0]  # oldest first
            lo, hi = 0, len(ask)  # found on ask[:lo] (the detection before: lo = 0), not from ask[hi] on
            first = True
            while lo < hi:
                m = hi - 1 if first else (lo + hi - 1) // 2
                first = False
                f = self._buf[ask[m]]
                if confirm(f.index, self._track(ask[m], tid), list(f.tracks)):
                    lo = m + 1
                else:
                    hi = m
            keep = lo
        for r in tail[: len(tail) - keep]:
            f = self._buf[r]
            f.tracks = [x for x in f.tracks if x.id != tid]
            for d in (f.params, f.carried, f.piece, f.flow):
                d.pop(tid, None)
            f.cut.add(tid)

    def _track(self, p: int, tid: int) -> Track:
        return next(t for t in self._buf[p].tracks if t.id == tid)

    def _spread(self, tid: int) -> None:
        """Ramp the correction at the newest frame (a detection of ``tid``) back over the held
        frames since the track's previous detection (or its oldest held frame)."""
        b = len(self._buf) - 1
        epoch = self._buf[b].epoch
        piece = self._buf[b].piece[tid]
        r = b - 1
        while r >= self._next:  # walk back over unreleased frames of this track's segment
            f = self._buf[r]
            if f.epoch != epoch or tid not in f.params:
                return  # the track started after the last released frame: nothing carried yet
            if f.piece[tid] != piece:
                r += 1  # the frame the face jumped to is where the flow's drift started
                break
            if any(t.id == tid and t.detected for t in f.tracks):
                break
            r -= 1
        if b - r < 2 or r < 0:
            return
        prev = self._buf[r]
        if prev.epoch != epoch or tid not in prev.params or prev.piece[tid] != piece:
            return
        x = [self._buf[j].params.get(tid) if self._buf[j].epoch == epoch and self._buf[j].piece.get(tid) == piece
             else None for j in (b - 2, b - 1, b)]
        if x[1] is None:
            return
        # velocity of the carried (flow) motion just before the detection; its continuation is
        # real motion, the rest of the step is the correction
        v = x[1] - x[0] if x[0] is not None and b - 2 >= 0 else np.zeros_like(x[1])
        fb = self._buf[b].flow.get(tid)
        if fb is not None:
            # the flow measured the detection frame's own motion: camera shake is not velocity
            v[:4] = fb
        v[3] = _wrap(v[3])
        c = x[2] - x[1] - v
        c[3] = _wrap(c[3])
        for j in range(r + 1, b):
            self._buf[j].params[tid] = self._buf[j].params[tid] + c * (j - r) / (b - r)
            self._buf[j].carried[tid] = 0

    def _segment(self, p: int, tid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Offsets, parameters, carried frames and flow-carried pose (the flow's steps summed from
        position ``p``, zeros at ``p``) of track ``tid`` within ``lag`` of position ``p``,
        contiguous (same epoch, track present in every frame between)."""
        e = self._buf[p]
        zero = np.zeros(4)
        offs, rows, carried, moved = [0], [e.params[tid]], [e.carried[tid]], [zero]
        for step in (-1, 1):
            j = p + step
            m = zero
            while 0 <= j < len(self._buf) and abs(j - p) <= self.lag:
                f = self._buf[j]
                if f.epoch != e.epoch or tid not in f.params or f.piece[tid] != e.piece[tid]:
                    break
                # the step into the later of the two frames j, j -+ 1
                m = m + step * self._buf[max(j, j - step)].flow.get(tid, zero)
                offs.append(j - p)
                rows.append(f.params[tid])
                carried.append(f.carried[tid])
                moved.append(m)
                j += step
        return (np.asarray(offs, dtype=np.float64), np.stack(rows), np.asarray(carried, dtype=np.float64),
                np.stack(moved))

    def _smooth(self, p: int, track: Track, occluded: bool = False) -> Track:
        d, x, carried, moved = self._segment(p, track.id)
        if len(d) == 1:
            return replace(track, occluded=occluded)
        x = x.copy()
        x[:, 3] = x[0, 3] + np.array([_wrap(a - x[0, 3]) for a in x[:, 3]])  # angles near the output's
        # Motion the flow measured frame to frame (camera shake, a jolt) is real: the flow path's
        # departures from its own line over the window are taken out before the fit and put back
        # in the output, so they are not averaged away as noise; the line itself is fitted with
        # the rest. A departure well above FLOW_NOISE (shake) is kept whole, one near the flow's
        # noise level is mostly smoothed, like the detector's noise.
        w = np.exp(-0.5 * (d / self.sigma) ** 2)
        keep = np.zeros(4)
        if moved.any():
            a1 = np.vander(d, 2, increasing=True)
            aw1 = a1 * w[:, None]
            dep = moved - a1 @ np.linalg.solve(aw1.T @ a1 + 1e-9 * np.eye(2), aw1.T @ moved)
            iod = _IOD * np.exp(x[:, 2])
            n = np.hypot(dep[:, 0], dep[:, 1]) / iod + (np.abs(dep[:, 2]) + np.abs(dep[:, 3])) * _RHO / _IOD
            g = n * n / (n * n + self.FLOW_NOISE**2)
            k = dep * g[:, None]
            x[:, :4] -= k
            keep = k[0]
        if self.drift == "spread":
            # Frames carried by the flow since the last detection hold drift that no detection has
            # corrected yet; it grows with each frame, so trust them less (an RTS smoother would
            # weigh them by their growing variance the same way).
            w = w / (1.0 + (carried / self.DRIFT_FRAMES) ** 2)
        # Fewer distinct points than coefficients (a track's first frames): lower the degree.
        deg = min(self.degree, len(d) - 1)
        a = np.vander(d, deg + 1, increasing=True)  # [n, deg+1]: 1, d, d^2
        aw = a * w[:, None]
        coef = np.linalg.solve(aw.T @ a + 1e-9 * np.eye(deg + 1), aw.T @ x)
        y = coef[0]  # value at offset 0
        y[:4] += keep
        q0, q1 = x[0, :4], y[:4]
        pts = _compose(q1, y[4:])
        # box follows the smoothed pose: moved with the centroid, scaled with the face
        k = math.exp(q1[2] - q0[2])
        box = track.box.detach().cpu().double().numpy()
        c_old, c_new = q0[:2], q1[:2]
        box = np.concatenate([c_new + (box[:2] - c_old) * k, c_new + (box[2:] - c_old) * k])
        return replace(
            track,
            landmarks=torch.from_numpy(pts.astype(np.float32)).to(track.landmarks.device),
            box=torch.from_numpy(box.astype(np.float32)).to(track.box.device),
            occluded=occluded,
        )


def _jump(x0: np.ndarray | None, x1: np.ndarray, x2: np.ndarray) -> float:
    """How far (inter-ocular distances) the step ``x1 -> x2`` of a track's pose parameters departs
    from its step ``x0 -> x1`` (its motion; none known: still). Translation counts in face sizes,
    scale and rotation by how far they move the points (RMS radius), shape residual ignored."""
    d = x2[:4] - x1[:4]
    if x0 is not None:
        d = d - (x1[:4] - x0[:4])
    d[3] = _wrap(d[3])
    return float(math.hypot(d[0], d[1]) / (_IOD * math.exp(x1[2])) + (abs(d[2]) + abs(d[3])) * _RHO / _IOD)


__all__ = ["DEFAULT_LAG", "TRACKER_OPTIONS", "Confirm", "FixedLagSmoother"]
