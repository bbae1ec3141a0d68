"""The streaming pipeline: io -> faces -> runtime -> faces -> io.

::

    source (decode thread, frame ring)
      -> FaceStage.plan_frames  detect every k frames / track in between; for files, a fixed-lag
                             smoother releases frame i - lag with look-ahead-smoothed landmarks
                             -> affines per released frame (frames wait, in order, until released)
      -> pending frames      crops of several frames packed into one batch (bounded: batch size,
                             ring size, and for live sources a latency budget)
      -> FaceStage.restore   one batched warp -> restorer (fixed-shape buckets) -> paste in place
      -> sink (encode thread; audio packets copied by the sink)

Frames leave in the order and with the timestamps they came in with: the pipeline never reorders
and never touches ``pts``. Memory is bounded by the ring: a frame keeps its ring slot from decode
until the sink has encoded it, so a slow stage blocks the decoder instead of buffering. With a
smoother of lag L, L more frames are held (waiting for their look-ahead): size the ring for it.
"""
from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from stream_gpen.faces import FaceDetector, FaceTracker, FixedLagSmoother, estimate_affines, paste_faces, warp_faces
from stream_gpen.faces._detector import display_side
from stream_gpen.errors import InvalidInputError
from stream_gpen.summary import RunSummary, StageTimer

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    frame: object  # stream_gpen.io.Frame
    affines: torch.Tensor  # [k,2,3]
    #: frames identical to ``frame`` right after it (FaceStage.repeat_of): given its restored
    #: pixels, not restored again
    repeats: list = field(default_factory=list)

    @property
    def frames(self) -> int:
        return 1 + len(self.repeats)


def _library_dtypes(method):
    """Run ``method`` without a host's autocast (``torch.autocast`` around the call): detection,
    alignment and pasting compute in float32 as calibrated; a restorer's own fp16/bf16 autocast
    is entered inside (``FaceRunner``)."""
    import functools

    from stream_gpen.runtime._runner import no_autocast

    @functools.wraps(method)
    def run(*args, **kwargs):
        with no_autocast():
            return method(*args, **kwargs)

    return run


#: a face crop whose colour differences (R-G, G-B) stray from a tone curve in its brightness by at
#: most this many levels (standard deviation over its pixels) is monochrome: grey (the curve is 0),
#: sepia or toned (a tint that grows with brightness, as a sepia print's does), with JPEG's colour
#: noise. The shared photos' faces (tests/test_sepia30.py): colour 11.8-40, grey 0, the same made
#: sepia 0.5-0.8: hair, lips, eyes
#: and background are not one tint of one brightness. (A crop, not the picture: a coloured face on
#: a grey wall moves a whole picture's spread by a few levels only.)
_MONO_SPREAD = 3.0
_LUMA = (0.299, 0.587, 0.114)  # BT.601


def _tone_fit(crops: torch.Tensor):
    """Per face crop (``uint8 [n,3,S,S]``), its tone curve: the colour differences (R-G, G-B) fitted
    as a quadratic in luma (0..1) over the pixels no channel of which is clipped (a clipped channel
    bends the tint). Returns the coefficients ``[n,2,3]`` (1, y, y^2), the strays' standard
    deviation ``[n,2]`` and the fitted luma range ``[n,2]`` (the curve is not extrapolated)."""
    c = crops[:, :, ::4, ::4].float().flatten(2)
    w = torch.tensor(_LUMA, dtype=torch.float32, device=c.device).view(1, 3, 1)
    y = (c * w).sum(1) / 255.0
    d = torch.stack([c[:, 0] - c[:, 1], c[:, 1] - c[:, 2]], 1)
    m = ((c.amin(1) > 2) & (c.amax(1) < 253)).float()
    few = m.sum(1, keepdim=True) < 32  # (a nearly black or white crop: fitted over all its pixels)
    m = torch.where(few, torch.ones_like(m), m)
    x = torch.stack([torch.ones_like(y), y, y * y], 2)  # [n,P,3]
    a = x.transpose(1, 2) @ (x * m[..., None]) + 1e-4 * torch.eye(3, dtype=c.dtype, device=c.device)
    b = x.transpose(1, 2) @ (d * m[:, None]).transpose(1, 2)  # [n,3,2]
    coef = torch.linalg.solve(a, b).transpose(1, 2)  # [n,2,3]
    resid = d - coef @ x.transpose(1, 2)
    n = m.sum(1).clamp(min=1)[:, None]
    mean = (resid * m[:, None]).sum(2) / n
    spread = (((resid - mean[..., None]) ** 2 * m[:, None]).sum(2) / n).sqrt()
    big = torch.finfo(y.dtype).max
    lo = torch.where(m > 0, y, torch.full_like(y, big)).amin(1)
    hi = torch.where(m > 0, y, torch.full_like(y, -big)).amax(1)
    return coef, spread, torch.stack([lo, hi], 1)


def _tone(coef: torch.Tensor, span: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The tone curve (``_tone_fit``) at luma ``y`` (``[n,H,W]``, 0..1): R-G and G-B, ``[n,2,H,W]``."""
    y = torch.minimum(torch.maximum(y, span[:, 0, None, None]), span[:, 1, None, None])[:, None]
    return coef[..., 0, None, None] + coef[..., 1, None, None] * y + coef[..., 2, None, None] * y * y


def _monochrome(crops: torch.Tensor) -> torch.Tensor:
    """Per face crop (``uint8 [n,3,S,S]``), whether it is monochrome (see ``_MONO_SPREAD``): black-
    and-white photos and films are mostly stored as RGB, and the model painted such faces in its
    own colours (a mode-L photo stayed grey, the same picture as RGB did not)."""
    return (_tone_fit(crops)[1] <= _MONO_SPREAD).all(dim=1)


def _luma_only(restored: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
    """The input crops (``uint8 [n,3,S,S]``) with the restored crops' brightness (BT.601 luma) and
    the photo's own tone at that brightness: each pixel keeps its colour differences (R-G, G-B),
    moved along the crop's tone curve (:func:`_tone_fit`) by its change in luma, so grey stays
    grey and a sepia face darkened or lightened takes the print's tint at its new brightness."""
    coef, _, span = _tone_fit(crops)
    x = crops.float()
    w = torch.tensor(_LUMA, dtype=torch.float32, device=crops.device).view(1, 3, 1, 1)
    y0 = (x * w).sum(1)
    y1 = y0 + ((restored.float() - x) * w).sum(1)
    d = torch.stack([x[:, 0] - x[:, 1], x[:, 1] - x[:, 2]], 1)
    d = d + _tone(coef, span, y1 / 255.0) - _tone(coef, span, y0 / 255.0)
    g = y1 - _LUMA[0] * d[:, 0] + _LUMA[2] * d[:, 1]  # (luma = G + 0.299 (R-G) - 0.114 (G-B))
    out = torch.stack([g + d[:, 0], g, g - d[:, 1]], 1)
    return out.round().clamp(0, 255).to(torch.uint8)


@dataclass
class FaceStage:
    """Detect/track faces, cut aligned crops in batches, restore them and paste them back.

    ``restorer``: ``crops uint8 [n,3,S,S] -> same`` (GPEN runner or classic enhancer).
    ``detector`` / ``tracker``: see :mod:`stream_gpen.faces`.
    ``smoother``: a :class:`~stream_gpen.faces.FixedLagSmoother` for offline sources (landmarks
    smoothed with look-ahead; frames are released ``smoother.lag`` frames late), or ``None``
    (live: no added delay).
    """

    restorer: Callable
    detector: FaceDetector
    tracker: FaceTracker
    timer: StageTimer = field(default_factory=StageTimer)
    smoother: FixedLagSmoother | None = None
    #: Width over height of a frame pixel on screen (the video's sample aspect ratio, after any
    #: rotation): detection and alignment work in display geometry, so anamorphic footage (DV,
    #: DVD, HDV) gives GPEN undistorted faces. 1.0 for square pixels.
    pixel_aspect: float = 1.0
    #: Paste masks from the restored crops (``crops uint8 [n,3,S,S] -> float [n,S,S]``, e.g. a
    #: :class:`~stream_gpen.faces.FaceParser`: GPEN's own face-parsing paste-back), or ``None``
    #: for the feathered square. With a parser the mask is used as it is (it has its own zeroed
    #: border and blur), without the feather.
    parser: Callable | None = None
    #: Video: a track's parse mask (in crop coordinates, which follow the face) is recomputed
    #: every ``parse_every`` frames and cross-faded from the previous one over the next
    #: ``parse_every`` frames. The parser costs more than GPEN itself, and a per-frame arg-max
    #: label map would flicker where hair meets background. Still images get a fresh mask.
    parse_every: int = 5
    #: Blend of the restored face with the original (GPEN's ``alpha``): 1.0 = the model's output
    #: as it is; lower keeps more of the original (identity, texture) at the cost of less
    #: restoration; 0 gives the input back. Blended in the frame (the paste mask times
    #: ``strength``), so the original share is the frame's own pixels, not a copy that went
    #: through the S x S crop and back (GPEN blends the crops: its 0 blurs a face larger than S).
    strength: float = 1.0
    #: A face larger than the crop (more frame pixels than crop pixels: a 4K selfie into GPEN-512,
    #: a 1080p close-up into GPEN-256) is cut averaged over each crop pixel's footprint
    #: (:func:`~stream_gpen.faces.warp_faces` ``antialias``), not read at one point: GPEN gets the
    #: face as its training resized FFHQ, without aliased grain that shimmers as the face moves.
    #: ``False`` = GPEN's script (bilinear).
    antialias: bool = True
    #: HDR video (PQ/HLG): the model gets each crop as an SDR picture and its change is mapped
    #: back into the source's codes (:class:`~stream_gpen.faces._hdr.HdrColour`); ``None`` = SDR.
    colour: object | None = None
    #: The pictures are aligned face crops already (FFHQ-style, as GFPGAN's / CodeFormer's
    #: ``cropped_faces`` and face datasets are): each whole picture is resized to the model's size
    #: (see :meth:`_restore_aligned`; classic takes it at its own size), restored, and resized back;
    #: no detection, no mask.
    aligned: bool = False
    #: Long side the detector sees for a still photo (:meth:`plan_still`); ``None`` = the
    #: detector's own (video's). One detection per photo: a larger one finds the small faces of a
    #: group photo at little cost, where video pays it every few frames. Larger than the
    #: detector's own, both are run (:meth:`_detect`): big faces need the small one.
    still_detect_size: int | None = None
    #: Long side the detector sees for video frames (and its region probes); ``None`` = the
    #: detector's own. The Enhancer scales it with the video (``video_detect_size``).
    video_detect_size: int | None = None
    #: ``on_faces(k)`` after each model batch of a :meth:`restore` call that takes several (a
    #: group photo on a CPU: minutes), with ``k`` faces of that call done: progress while a
    #: single picture is being restored. ``None``: one call, no reports.
    on_faces: Callable[[int], None] | None = None
    #: Video: a frame identical to the one before it (a frozen picture, a pulldown's or a
    #: capture's repeated frame) is not tracked: it gets the faces of the frame it repeats, so its
    #: output is that frame's too (tracked, the paste swam 1-3 px over the still picture: the
    #: smoother spreads motion over the repeats, the tracker's glide goes on). At most this many
    #: repeats wait for their frame's look-ahead at once (each holds a ring slot: the Enhancer
    #: sets it to the look-ahead, and its ring has room for them); more are tracked as frames of
    #: their own. Without a look-ahead none waits.
    repeats_held: int = 4
    #: Ring slots the frames :func:`run_stream` handed on may still hold (a sink's queue and the
    #: frame its encoder works on): left out of the room the batch's repeats may take. The
    #: Enhancer sets it; 0: each frame is released before the next is asked for.
    held_downstream: int = 0
    #: frames restored as repeats of the frame before them (see ``repeats_held``)
    repeats: int = 0
    detector_calls: int = 0
    detector_probes: int = 0  # of detector_calls: the tracker's change-watch probes (a region only)
    #: of detector_calls: the look-ahead's checks of an ended track's flow tail (a region only,
    #: :meth:`_tail_found`)
    detector_tail_checks: int = 0
    #: detections the detector dropped for landmarks that fit no face (``check_landmarks``):
    #: sideways / upside-down faces, left untouched
    detections_implausible: int = 0
    #: Video: the turn (``torch.rot90`` k, 0-3) of the frames the detector sees, chosen per shot
    #: where their faces come out upright (:meth:`_video_detect`; a clip whose rotation tag was
    #: lost); boxes and landmarks are mapped back into the frame
    turn: int = 0
    #: of ``detector_calls``: the detections of turned frames that chose ``turn``
    turn_calls: int = 0
    #: the turns (k) a video's faces were found upright in, other than 0: said once each in the
    #: run (a warning, and the summary's fallbacks: :func:`turned_note`)
    turns_used: list = field(default_factory=list)
    #: whole-frame detections of a video that found faces, made in each turn (k -> count): how
    #: much of the video :meth:`turned_notes` speaks of
    turn_detections: dict = field(default_factory=dict)
    faces_restored: int = 0
    frames_with_faces: int = 0
    #: live streams: frames taken from the source but never handed on (see :func:`run_stream`)
    frames_discarded: int = 0
    #: faces of the frames :func:`run_stream` has handed on so far (``faces_restored`` also
    #: counts a restored batch still on its way out, which a stop may discard)
    faces_out: int = 0

    @property
    def size(self) -> int:
        return int(self.restorer.size)

    _cuts_seen: int = 0
    _plan_ids: dict = field(default_factory=dict)  # frame index -> track ids of its planned faces
    _plan_under: dict = field(default_factory=dict)  # frame index -> its faces' Track.occluded (paste order)
    _masks: dict = field(default_factory=dict)  # track id -> (frame parsed, mask before, parsed mask)
    parser_calls: int = 0  # faces run through the parser
    _last_seen: torch.Tensor | None = None  # every 4th row of the previous video frame, as it came (a copy)
    _last_key: int | None = None  # the frame repeats attach to (the last one tracked)
    _key_boxes: list = field(default_factory=list)  # its faces' boxes (x1, y1, x2, y2), frame px
    _near_run: int = 0  # frames taken as its repeats within noise (not bit-exact) since it
    _held: dict = field(default_factory=dict)  # frame index -> its repeats, waiting for its release
    _last_planned: tuple | None = None  # (index, affines, track ids, occluded flags) of the last frame released
    _repeat_of: dict = field(default_factory=dict)  # repeat's index -> the index of the frame it repeats
    _smooth_ix: dict = field(default_factory=dict)  # the smoother's frame number -> the frame's index
    _smooth_images: dict = field(default_factory=dict)  # the smoother's frame number -> its picture, while held
    _turn_wait: int = 0  # whole-frame detections before the orientation may be checked again (see _video_detect)

    @property
    def lag(self) -> int:
        """Frames a frame waits for its look-ahead before it can be restored (0 without smoother)."""
        return self.smoother.lag if self.smoother is not None else 0

    def reset(self) -> None:
        self.tracker.reset()
        if self.smoother is not None:
            self.smoother.reset()
        self._cuts_seen = 0
        self._plan_ids.clear()
        self._plan_under.clear()
        self._masks.clear()
        self._last_seen = self._last_key = self._last_planned = None
        self._key_boxes, self._near_run = [], 0
        self._held.clear()
        self._repeat_of.clear()
        self._smooth_ix.clear()
        self._smooth_images.clear()
        self.turn, self._turn_wait = 0, 0

    def forget(self, index: int) -> None:
        """Frame ``index`` will not be restored (a repeat given its frame's output): its planned
        track ids are dropped (they were kept for a restore, and piled up)."""
        self._plan_ids.pop(index, None)
        self._plan_under.pop(index, None)

    def repeat_of(self, index: int) -> int | None:
        """The frame that released frame ``index`` repeats (its pixels, and so its output), or
        None; asked once per frame, by :func:`run_stream`."""
        return self._repeat_of.pop(index, None)

    def _repeat(self, index: int, image: torch.Tensor) -> bool:
        """Whether frame ``index`` is the frame before it again, pixel for pixel or but for codec
        noise (:attr:`REPEAT_NOISE`), and can go as its repeat: at once where that frame is out already (no look-ahead), else waiting with it (at
        most ``repeats_held`` at a time). Compared on every 4th row (a copy of whole rows costs
        0.05 ms for 1080p on a CPU, of the whole frame 10 ms): a frame that differs between
        those rows alone has not moved its faces, so their alignment is taken over; its output is
        its frame's only where :func:`run_stream` finds every pixel the same (else its own pixels
        are restored). A sparse grid is compared first."""
        last, self._last_seen = self._last_seen, None
        rows = image[::4]
        near = False
        same = (last is not None and last.shape == rows.shape and self._last_key is not None
                and torch.equal(last[::4, ::16], rows[::4, ::16]) and torch.equal(last, rows))
        if not same and last is not None and last.shape == rows.shape and self._last_key is not None \
                and self._near_run < self.REPEAT_NEAR_RUN:
            same = near = self._noise_apart(last, rows)
        out = self._last_planned is not None and self._last_planned[0] >= self._last_key if same else False
        if same and not out and sum(len(v) for v in self._held.values()) >= self.repeats_held:
            same = False  # (tracked as a frame of its own: the ring has no room for more to wait)
        self._last_seen = last if same else rows.clone()
        if same:
            self._near_run += near
        else:
            self._last_key, self._near_run = index, 0
        return same

    #: mean grey-level difference (every 4th row) under which a frame is the one before it again
    #: as a lossy codec stored it twice (a re-encoded pulldown or doubled frame: 0.05-0.28 on the
    #: stage clip, with single pixels up to 46 off at edges), and the bound inside each face's box,
    #: where the noise is higher (0.36-0.95 there; the face moving between its real frames: 18-32,
    #: by one pixel: several levels). Such a frame keeps its frame's faces (its own pixels are
    #: restored): tracked, the paste swam 0.4-2 px (4 px without the look-ahead) over the still
    #: picture, and a model redraws the face at each position.
    REPEAT_NOISE = 0.5
    REPEAT_FACE_NOISE = 1.5
    #: at most this many such frames in a row (a frame shown twice): then one is tracked. A still
    #: scene is never bit-exact either, and a chain of them stopped the tracking, the periodic
    #: detection with it: a face appearing in a still webcam picture was never restored (0 of 20
    #: frames; review25), and a slow face was held and then jumped
    REPEAT_NEAR_RUN = 1
    #: ... and at most what a shift by this many pixels gives there (the box's mean difference
    #: between neighbouring pixels, times this): a dim, flat face moved by a pixel differs by
    #: about one level, inside the noise bound; it is taken for a repeat only if it moved less
    #: than a fifth of a pixel (the stage clip's repeats: 0.06-0.15 px worth of noise, its dark
    #: close-up 5.8-7.8 levels between neighbours)
    REPEAT_FACE_SHIFT = 0.2

    def _noise_apart(self, last: torch.Tensor, rows: torch.Tensor) -> bool:
        """Whether ``rows`` (every 4th row of a frame) differ from ``last`` (the frame it follows)
        by codec noise only: :attr:`REPEAT_NOISE` on a sparse grid first (most frames end
        there), then on all the rows, then inside each face's box of that frame
        (:attr:`REPEAT_FACE_NOISE`, :attr:`REPEAT_FACE_SHIFT`)."""
        def mean(a: torch.Tensor, b: torch.Tensor) -> float:
            return float((a.to(torch.int16) - b.to(torch.int16)).abs_().float().mean()) if a.numel() else 0.0

        if mean(last[::4, ::16], rows[::4, ::16]) >= self.REPEAT_NOISE or mean(last, rows) >= self.REPEAT_NOISE:
            return False
        h, w = rows.shape[:2]
        for x1, y1, x2, y2 in self._key_boxes:
            ys = slice(max(0, int(y1) // 4), min(h, int(y2) // 4 + 1))
            xs = slice(max(0, int(x1)), min(w, int(x2) + 1))
            box = last[ys, xs]
            bound = min(self.REPEAT_FACE_NOISE, self.REPEAT_FACE_SHIFT * mean(box[:, 1:], box[:, :-1]))
            if mean(box, rows[ys, xs]) >= bound:
                return False
        return True

    def _released(self, planned: list[tuple[int, torch.Tensor]]) -> list[tuple[int, torch.Tensor]]:
        """``planned`` with the repeats of each frame right after it, with its faces."""
        out = []
        for index, aff in planned:
            out.append((index, aff))
            for r in self._held.pop(index, ()):
                self._plan_ids[r] = list(self._plan_ids.get(index, ()))
                self._plan_under[r] = list(self._plan_under.get(index, ()))
                out.append((r, aff.clone()))
        if out:  # (its ids kept here too: restore() takes a frame's ids out of _plan_ids)
            index, aff = out[-1]
            ids, under = self._plan_ids.get(index, ()), self._plan_under.get(index, ())
            self._last_planned = (index, aff, list(ids), list(under))
        return out

    def _track(self, index: int, image: torch.Tensor) -> list:
        with self.timer("detect"):
            dets = None
            if self.tracker.needs_detection(index, image):
                region = self.tracker.probe_region  # a change-watch probe looks only where it changed
                dets = self._video_detect(image, region)
                self.detector_calls += 1
                self.detector_probes += int(self.tracker.probing)
        with self.timer("track"):
            # the tracker judges min_face on screen as the detector does (set here: the source,
            # and so the aspect, is known only once the stage is built)
            self.tracker.pixel_aspect = self.pixel_aspect
            return self.tracker.update(index, dets, frame=image)

    #: a face whose eye line is turned further than this (degrees) from level is not upright
    #: (:meth:`_video_detect`). Upright faces of the shared clips: within 12 (the talking head's
    #: tilt); found in a picture turned 90 degrees, 71-92; turned 180, 163-177
    TURN_ROLL = 45.0
    #: a face this far from level (degrees) or more makes the frame look turned, worth a check:
    #: the turned bands (71-92, 163-177 on the shared clips), not a head resting at 45-60
    TURN_LOOK = 65.0
    #: whole-frame detections after a check before another may run in the same shot: a head
    #: that lies down and sits up again (or a wrong choice) is checked again, at most every
    #: this many detections (3 detector calls each; 50 frames at the default --detect-every)
    TURN_RECHECK = 10

    def _video_detect(self, image: torch.Tensor, region=None):
        """A video frame's faces (in ``region`` only: a change-watch probe), detected in the frame
        turned by :attr:`turn` and mapped back into it.

        A video whose picture is turned (a phone clip that lost its rotation tag, a scan) shows
        its faces sideways or upside down, and RetinaFace finds them at high scores with landmarks
        misplaced: the crops were pasted from them (hunt faces23: a still head turned 90 degrees
        got crops of 252-356 px where upright gives 261, landmarks 0.17-0.35 inter-ocular
        distances off; turned 180, 0.11-0.23 off, and frames dropped as implausible left raw
        mid-shot). So the first whole-frame detection of a shot whose faces look turned (one
        kept with its eye line :attr:`TURN_LOOK` or more from level, or one dropped as implausible)
        runs the detector on the frame turned the three other ways (``torch.rot90``), and the
        turn that finds more upright faces (within :attr:`TURN_ROLL` of level) than the current one is kept: the shot's detections
        (and the next shots', until one checks otherwise) are made in the frame turned so. One
        check at a shot's start, then at most every :attr:`TURN_RECHECK` whole-frame detections
        while faces still look turned (3 detector calls each, counted in :attr:`turn_calls`): a
        head that rested sideways for a moment in an upright shot is checked again once it is
        upright in the frame and sideways in the turned one. Upright video whose faces are level
        (within :attr:`TURN_LOOK`) and all plausible pays nothing."""
        if getattr(self.tracker, "shot_starts", False):
            self._turn_wait = 0  # a new shot: its faces may be turned otherwise
        (seen, dets), dropped = self._dropping(self._detect_turned, image, self.turn, region)
        self.detections_implausible += dropped
        if region is not None:
            return dets
        dets = self._checked_turn(image, seen, dets, dropped)
        # (frames without faces say nothing of the picture's turn: review24; nor with small_faces only)
        if len(dets) and self._sized(dets).any():
            self.turn_detections[self.turn] = self.turn_detections.get(self.turn, 0) + 1
        return dets

    def _checked_turn(self, image: torch.Tensor, seen, dets, dropped: int):
        """``dets`` (a whole-frame detection in the current turn, ``seen`` as found there, with
        ``dropped`` implausible ones), or those of another turn where a check finds more faces
        upright there (:meth:`_video_detect`)."""
        if self._turn_wait > 0:
            self._turn_wait -= 1
            return dets
        if not (dropped or self._off_level(seen, self.turn)):
            return dets
        self._turn_wait = self.TURN_RECHECK
        best, upright, best_dropped = self.turn, self._upright(seen, self.turn), dropped
        for k in range(4):
            if k == self.turn:
                continue
            # (a turn not taken: its drops are no faces left, so the detector's count is undone)
            (turned_seen, turned), k_dropped = self._dropping(self._detect_turned, image, k, undo=True)
            self.detector_calls += 1
            self.turn_calls += 1
            if self._upright(turned_seen, k) > upright:
                best, upright, dets, best_dropped = k, self._upright(turned_seen, k), turned, k_dropped
        if best != self.turn:
            # the faces left untouched are the chosen turn's (review23: they went uncounted)
            self.detections_implausible += best_dropped - dropped
            self.turn = best
            if best and best not in self.turns_used:
                self.turns_used.append(best)
                log.warning("%s", turned_note(best, None))
        return dets

    def turned_notes(self) -> list[str]:
        """What the run says at its end of the turns its faces were found upright in
        (:func:`turned_note`, with the share of the whole-frame detections made in each)."""
        total = sum(self.turn_detections.values())
        return [turned_note(k, self.turn_detections.get(k, 0) / total if total else 1.0) for k in self.turns_used]

    def _detect_turned(self, image: torch.Tensor, k: int, region=None, *, size: int | None | str = "video",
                       turned: torch.Tensor | None = None):
        """The faces of ``image`` (in ``region``, frame px) found in it turned by ``torch.rot90``
        ``k``: ``(as found there, mapped back into the frame)``. ``size``: the detection size
        (:attr:`video_detect_size` unless given); ``turned``: the picture turned so already
        (a photo searched in several regions turns it once)."""
        from stream_gpen.faces import Detections

        size = self.video_detect_size if size == "video" else size
        if k == 0:
            dets = self._detect(image, size, region)
            return dets, dets
        h, w = image.shape[:2]
        if turned is None:
            turned = torch.rot90(image, k, (0, 1)).contiguous()
        if region is not None:  # the region in the turned frame (turned 4 - k more times, the frame)
            c = _unturn(torch.tensor(region, dtype=torch.float32).view(2, 2), 4 - k, *turned.shape[:2])
            region = tuple(float(v) for v in torch.cat([c.amin(0), c.amax(0)]))
        seen = self._detect(turned, size, region, turned=k % 2 == 1)
        corners = _unturn(seen.boxes.view(-1, 2, 2), k, h, w)
        return seen, Detections(torch.cat([corners.amin(1), corners.amax(1)], 1), _unturn(seen.landmarks, k, h, w),
                                seen.scores.clone())

    def _kept(self, dets, k: int = 0) -> torch.Tensor:
        """Which of ``dets`` the tracker would restore when first seen (score and size; ``k``: as
        :meth:`_sized`)."""
        return self._sized(dets, k) & (dets.scores >= getattr(self.tracker, "min_score", 0.0))

    def _sized(self, dets, k: int = 0) -> torch.Tensor:
        """Which of ``dets`` are of the tracker's ``min_face`` or more: the detector returns faces
        down to half of it too (``small_faces``), on which the tracker ends a track that shrank.
        Measured on screen (display px, as the tracker and detector do: an anamorphic video keeps
        the faces its square-pixel copy keeps); ``k``: ``dets`` are of the frame turned by
        ``torch.rot90`` ``k`` times (a quarter turn swaps the pixel's sides)."""
        aspect = self.pixel_aspect if k % 2 == 0 else 1.0 / self.pixel_aspect
        return display_side(dets.boxes, aspect).clamp(min=0) >= getattr(self.tracker, "min_face", 0.0)

    def _roll(self, dets) -> torch.Tensor:
        """Each face's eye line's angle from level, degrees (0-180)."""
        eyes = dets.landmarks[:, 1] - dets.landmarks[:, 0]
        return torch.rad2deg(torch.atan2(eyes[:, 1], eyes[:, 0])).abs()

    def _upright(self, dets, k: int = 0) -> int:
        return int((self._kept(dets, k) & (self._roll(dets) <= self.TURN_ROLL)).sum()) if len(dets) else 0

    def _off_level(self, dets, k: int = 0) -> bool:
        return bool((self._kept(dets, k) & (self._roll(dets) >= self.TURN_LOOK)).any()) if len(dets) else False

    def _dropping(self, detect, *args, undo: bool = False, **kw):
        """``(detect(*args, **kw), the detections it dropped as implausible)``: the detector's
        running count (a detector may be shared by several stages, runs) before and after;
        ``undo``: the count is set back (detections not kept)."""
        before = getattr(self.detector, "implausible", 0)
        out = detect(*args, **kw)
        dropped = getattr(self.detector, "implausible", 0) - before
        if undo and hasattr(self.detector, "implausible"):
            self.detector.implausible = before
        return out, dropped

    def _counted_detect(self, image: torch.Tensor, size: int | None, region=None):
        dets, dropped = self._dropping(self._detect, image, size, region)
        self.detections_implausible += dropped
        return dets

    def _detect(self, image: torch.Tensor, size: int | None, region=None, *, turned: bool = False):
        """Faces of one picture (or of a ``region`` of it): at the detector's own long side, or,
        for a larger ``size``, at both (``detect_pyramid``: small faces from the larger, big
        faces from the smaller, which a single large size would lose). ``turned``: the picture
        is the frame turned 90 degrees (its pixels' aspect inverted)."""
        kw = self._aspect_kw(turned)
        base = getattr(self.detector, "long_side", None)
        if size is not None and base is not None and size > base and hasattr(self.detector, "detect_pyramid"):
            return self.detector.detect_pyramid([image], (base, size), region=region, **kw)[0]
        return (self.detector.detect([image], **kw)[0] if region is None
                else self.detector.detect_region(image, region, **kw))

    def _aspect_kw(self, turned: bool = False) -> dict:
        # Only non-square pixels are passed on: detectors written for square ones keep working.
        return {} if self.pixel_aspect == 1.0 else {"pixel_aspect": 1.0 / self.pixel_aspect if turned else self.pixel_aspect}

    def _planned(self, index: int, tracks: list) -> tuple[int, torch.Tensor]:
        self._plan_ids[index] = [t.id for t in tracks]  # parse masks and paste order follow the tracks
        self._plan_under[index] = [t.occluded for t in tracks]
        return index, self._affines(tracks)

    def _affines(self, tracks: list) -> torch.Tensor:
        if not tracks:
            return torch.zeros(0, 2, 3, dtype=torch.float32)
        points = torch.stack([torch.as_tensor(t.landmarks, dtype=torch.float32) for t in tracks])
        return estimate_affines(points, size=self.size, pixel_aspect=self.pixel_aspect)

    @_library_dtypes
    def plan_frames(self, index: int, image: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        """Track frame ``index`` and return ``(index, affines)`` of the frames whose faces are now
        final: this frame without a smoother, else frame ``index - lag`` (none while the first
        ``lag`` frames fill the window). Every frame comes out exactly once, in order; call
        :meth:`plan_flush` at the end of the stream for the last ``lag`` frames."""
        if self.aligned:
            return [(index, self._whole(image))]
        with self.timer("track"):
            repeat = self._repeat(index, image)
        if repeat:
            self.repeats += 1
            self._repeat_of[index] = self._last_key
            if self._last_planned is not None and self._last_planned[0] >= self._last_key:
                # its frame is out already (no look-ahead): it goes now, with the same faces
                _, aff, ids, under = self._last_planned
                self._plan_ids[index], self._plan_under[index] = list(ids), list(under)
                self._last_planned = (index, aff, ids, under)
                return [(index, aff.clone())]
            self._held.setdefault(self._last_key, []).append(index)  # out right after its frame
            return []
        tracks = self._track(index, image)
        self._key_boxes = [[float(v) for v in t.box] for t in tracks]
        with self.timer("track"):
            if self.smoother is None:
                return self._released([self._planned(index, tracks)])
            # A scene cut starts new track ids anyway; passing it on also breaks the window for
            # any id that survives (belt and braces: never smooth across a cut).
            cut = self.tracker.scene_cuts > self._cuts_seen
            self._cuts_seen = self.tracker.scene_cuts
            # repeats are left out of the smoother's timeline: its frame numbers count the frames
            # tracked (a gap in them is a break it smooths across no window of: each frame shown
            # twice was one)
            number = index - self.repeats
            self._smooth_ix[number] = index
            self._smooth_images[number] = image  # (held in the ring until released: no copy)
            return self._released([self._planned(self._smooth_ix.pop(i), t) for i, t in self._final(self.smoother.push(
                number, tracks, cut=cut, alive=self.tracker.alive_ids(), shrunk=self.tracker.shrunk_ids(),
                confirm=self._tail_found))])

    def _final(self, released: list[tuple[int, list]]) -> list[tuple[int, list]]:
        """``released`` (the smoother's final frames), their pictures no longer kept for it."""
        for i, _ in released:
            self._smooth_images.pop(i, None)
        return released

    def _tail_found(self, number: int, track, tracks: list) -> bool:
        """Whether the face of ``track``, carried by flow alone onto held frame ``number`` (the
        smoother's) since its last detection, is still there: the look-ahead asks before it drops
        the flow tail of a track that ends after a missed detection
        (:meth:`FixedLagSmoother._drop_tail`; a face turning away is restored up to the frame
        before it turns, not only on its last detected frame). A region around its box is detected
        as a change-watch probe is (the shot's turn, the video detection size), and the face is
        found where a detection that would start a track (``min_face``, ``min_score``,
        ``check_landmarks``) matches its box as the tracker matches (greedy IoU of at least
        ``iou_match`` over that frame's tracks: a face passing in front of it is the other
        track's)."""
        from stream_gpen.faces._tracker import _iou

        image = self._smooth_images.get(number)
        if image is None or not hasattr(self.detector, "detect_region"):
            return False  # (a detector of whole pictures only: the tail goes, as before)
        h, w = image.shape[:2]
        b = [float(v) for v in track.box]
        pw, ph = (b[2] - b[0]) / 4, (b[3] - b[1]) / 4  # (drift; detect_region adds the network's margin)
        region = (max(b[0] - pw, 0.0), max(b[1] - ph, 0.0), min(b[2] + pw, float(w)), min(b[3] + ph, float(h)))
        if region[2] <= region[0] or region[3] <= region[1]:
            return False
        # (its time counts in the "track" stage, whose smoother asks: stage timers do not nest)
        (_, dets), _ = self._dropping(self._detect_turned, image, self.turn, region, undo=True)
        self.detector_calls += 1
        self.detector_tail_checks += 1
        dets = dets.select(self._kept(dets))
        if len(dets) == 0:
            return False
        boxes = torch.stack([torch.as_tensor(t.box, dtype=torch.float32).cpu() for t in tracks]).double().numpy()
        iou = _iou(boxes, dets.boxes.double().cpu().numpy())
        me = next((k for k, t in enumerate(tracks) if t.id == track.id), None)
        taken_t, taken_d = set(), set()
        for v, i, j in sorted(((iou[i, j], i, j) for i in range(iou.shape[0]) for j in range(iou.shape[1])),
                              reverse=True):
            if v < getattr(self.tracker, "iou_match", 0.3):
                break
            if i in taken_t or j in taken_d:
                continue
            if i == me:
                return True
            taken_t.add(i)
            taken_d.add(j)
        return False

    @_library_dtypes
    def plan_flush(self) -> list[tuple[int, torch.Tensor]]:
        """End of stream: ``(index, affines)`` of every frame the smoother still holds."""
        if self.smoother is None:
            return []
        with self.timer("track"):
            return self._released([self._planned(self._smooth_ix.pop(i), t)
                                   for i, t in self._final(self.smoother.flush())])

    @_library_dtypes
    def plan_still(self, image: torch.Tensor) -> torch.Tensor:
        """Affines for a single image: always detect, no temporal smoothing."""
        if self.aligned:
            return self._whole(image)
        dets = self.still_faces(image)
        if len(dets) == 0:
            return torch.zeros(0, 2, 3, dtype=torch.float32)
        return estimate_affines(dets.landmarks.to(torch.float32), size=self.size, pixel_aspect=self.pixel_aspect)

    @_library_dtypes
    def still_faces(self, image: torch.Tensor):
        """The faces :meth:`plan_still` restores in a single image (``Detections``, image px):
        detected, looked for turned where they look sideways or upside down, and selected."""
        with self.timer("detect"):
            dropped = self.detections_implausible
            boxes = getattr(self.detector, "dropped_boxes", None)
            if boxes is not None:
                boxes.clear()
            dets = self._counted_detect(image, self.still_detect_size)
            dets = dets.select(self._sized(dets))  # (the detector's small_faces end video tracks only)
            self.detector_calls += 1
            # a face dropped as sideways or upside down, or one kept with its eye line far from
            # level (a photo stored turned: found at a high score, landmarks misplaced), is looked
            # for in the photo turned, as video checks its frames' turn (:meth:`_video_detect`)
            gone = torch.cat(list(boxes)) if self.detections_implausible > dropped and boxes else None
            if gone is not None or self._off_level(dets):
                dets = self._turned_faces(image, dets, gone if gone is not None else torch.zeros(0, 4, dtype=torch.float32))
        return select_faces(dets, self.tracker.select, self.tracker.min_face, self.tracker.max_faces, image.shape,
                            self.tracker.min_score, pixel_aspect=self.pixel_aspect)

    @_library_dtypes
    def sample_faces(self, image: torch.Tensor):
        """The faces a video frame's whole-frame detection at the start of a shot finds
        (``Detections``, frame px), selected as a new track would be: its turn checked where they
        look sideways or upside down (:meth:`_video_detect`). For frames sampled far apart
        (``info --faces``), each seen as a shot of its own; the turn found is kept for the next."""
        self._turn_wait = 0
        with self.timer("detect"):
            dets = self._video_detect(image)
            self.detector_calls += 1
        return select_faces(dets, self.tracker.select, self.tracker.min_face, self.tracker.max_faces, image.shape,
                            self.tracker.min_score, pixel_aspect=self.pixel_aspect)

    def _turned_faces(self, image: torch.Tensor, dets, dropped: torch.Tensor):
        """``dets`` of a photo, with the faces found upright in it turned 90, 180 or 270 degrees
        around the ``dropped`` boxes (``[n,4]``: detections ``check_landmarks`` dropped as
        sideways or upside down), around the detections ``min_score`` will drop (an
        upside-down face often comes out as a poor detection that passes the check) and around
        those kept with their eye line :attr:`TURN_LOOK` or more from level (a photo stored turned:
        RetinaFace finds its faces at high scores, landmarks misplaced). Found upright (within
        :attr:`TURN_ROLL`) in a turned copy, a face's landmarks are right; mapped back, its crop is
        aligned (the alignment's similarity takes any angle) and it is restored from there, not
        from the misread crop nor left untouched. Where one overlaps a level detection
        ``select_faces`` keeps, the higher score stays; an off-level one is replaced. Only
        padded regions around those boxes are searched (``detect_region``: a fraction of a full
        pass), so no face elsewhere in the photo is added. Photos only; video turns whole frames
        per shot (:meth:`_video_detect`)."""
        from stream_gpen.faces import Detections
        from stream_gpen.faces._tracker import _iou

        h, w = image.shape[:2]
        passing = self._kept(dets)
        off = passing & (self._roll(dets) >= self.TURN_LOOK) if len(dets) else passing
        areas = torch.cat([dropped.float().view(-1, 4), dets.boxes[~passing | off].float()])
        regions: list[list[float]] = []
        for b in areas.tolist():
            # a misread face's box may sit off the face (on its chin, a cheek): a quarter of its
            # size around it (detect_region adds the network's context margin)
            pw, ph = (b[2] - b[0]) / 4, (b[3] - b[1]) / 4
            r = [max(b[0] - pw, 0.0), max(b[1] - ph, 0.0), min(b[2] + pw, w), min(b[3] + ph, h)]
            # overlapping regions (one face's boxes from two scales, neighbours) are searched once
            for o in [o for o in regions if o[0] < r[2] and r[0] < o[2] and o[1] < r[3] and r[1] < o[3]]:
                regions.remove(o)
                r = [min(r[0], o[0]), min(r[1], o[1]), max(r[2], o[2]), max(r[3], o[3])]
            regions.append(r)
        found = []
        for k in (1, 2, 3):
            turned = torch.rot90(image, k, (0, 1)).contiguous()
            for r in regions:
                seen, t = self._detect_turned(image, k, tuple(r), size=self.still_detect_size, turned=turned)
                # (small_faces: for video tracks only; a face still sideways there is misread too)
                t = t.select(self._sized(t) & (self._roll(seen) <= self.TURN_ROLL))
                self.detector_calls += 1
                found += list(zip(t.boxes, t.landmarks, t.scores))
        keep = passing.clone()
        added = []
        for box, lm, sc in sorted(found, key=lambda t: -float(t[2])):
            if added and (_iou(box[None].numpy(), torch.stack([a[0] for a in added]).numpy()) >= 0.3).any():
                continue  # the same face from another region or turn, at a lower score
            over = torch.from_numpy(_iou(box[None].numpy(), dets.boxes.numpy())[0] >= 0.3) if len(dets) else None
            if over is not None and (over & keep & ~off & (dets.scores >= sc)).any():
                continue  # already kept, at least as well placed
            if over is not None:
                keep &= ~over  # the face, misread (upside down) or poorly scored: replaced
            added.append((box, lm, sc))
        if not added:
            return dets
        # Found the right way up after all: no longer counted as dropped (each dropped box once).
        if len(dropped):
            hit = _iou(dropped.numpy(), torch.stack([a[0] for a in added]).numpy()) >= 0.3
            self.detections_implausible -= min(int(hit.any(1).sum()), len(dropped))
        boxes = torch.cat([dets.boxes[keep], torch.stack([a[0] for a in added])])
        lms = torch.cat([dets.landmarks[keep], torch.stack([a[1] for a in added])])
        scores = torch.cat([dets.scores[keep], torch.stack([a[2] for a in added])])
        order = scores.argsort(descending=True)
        return Detections(boxes[order].float(), lms[order].float(), scores[order].float())

    @_library_dtypes
    def restore(self, images: list[torch.Tensor], affines: list[torch.Tensor],
                hi: list[torch.Tensor | None] | None = None, indices: list[int] | None = None) -> int:
        """Restore every planned face of ``images`` (in place). Returns the number of faces.

        ``hi``: per image, the same picture at more than 8 bits (``uint16 [H,W,3]``, the frame's
        ``hi`` copy from a 10/12-bit source) or ``None``; faces are pasted into it too, so the
        sink can encode the untouched background at its original precision.
        ``indices``: the frame indices the affines were planned for (video), so parse masks can
        follow their tracks (:attr:`parse_every`); ``None`` for still images."""
        if self.aligned:
            return self._restore_aligned(images, hi)
        keys, tracks, under = None, [None] * len(images), [None] * len(images)
        if indices is not None:
            tracks = [self._plan_ids.pop(i, None) for i in indices]
            tracks = [x if x is not None and len(x) == len(a) else None for x, a in zip(tracks, affines)]
            under = [self._plan_under.pop(i, None) for i in indices]
            under = [x if x is not None and len(x) == len(a) else None for x, a in zip(under, affines)]
            if all(x is not None for x in tracks):
                keys = [(i, t) for i, x in zip(indices, tracks) for t in x]
        ids = [torch.full((len(a),), i, dtype=torch.long) for i, a in enumerate(affines)]
        counts = [len(a) for a in affines]
        n = sum(counts)
        if n == 0:
            return 0
        device = images[0].device
        all_aff = torch.cat([a.to(device) for a in affines])
        frame_ids = torch.cat(ids).to(device)
        size, restorer = self.size, self.restorer
        if indices is None and self.parser is None:
            size, restorer, all_aff = self._still_size(all_aff)
            affines = list(all_aff.split(counts))
        with self.timer("align"):
            if all(img.shape == images[0].shape for img in images):
                crops = warp_faces(images, frame_ids, all_aff, size=size, antialias=self.antialias)
            else:  # still images of different sizes: one warp per image, one restore for all
                crops = torch.cat([
                    warp_faces([img], torch.zeros(len(a), dtype=torch.long, device=device), a.to(device), size=size,
                               antialias=self.antialias)
                    for img, a in zip(images, affines) if len(a)
                ])
        # A 10/12-bit source's faces go into its 16-bit picture at the model's own precision (its
        # output before quantisation) where the restorer offers it, instead of 8-bit steps.
        fine = (hi is not None and all(h is not None for h in hi)
                and callable(getattr(restorer, "restore_fine", None)))
        with self.timer("restore"):
            given = self.colour.to_sdr(crops) if self.colour is not None else crops
            if fine:
                out, out_f = self._run_restorer(given, fine=True, restorer=restorer)
                out, out_f = out.to(device), out_f.to(device)
            else:
                out = self._run_restorer(given, restorer=restorer).to(device)
            restored = self.colour.from_sdr(out, crops, given) if self.colour is not None else out
            if fine:
                restored_hi, cut_hi = self._restored_hi(out_f, hi, counts, all_aff, size, given)
            mono_t = _monochrome(crops)
            mono = mono_t.tolist()  # (one device sync a batch, not one a frame)
            if any(mono):
                # a black-and-white (or sepia) face keeps its own colour: only the restored
                # brightness is taken (a model paints its colours into a grey face)
                restored = torch.where(mono_t[:, None, None, None], _luma_only(restored, crops), restored)
        masks, paste_kw = None, {"strength": self.strength}  # blended with the frame, in the frame
        if self.parser is not None:
            with self.timer("parse"):
                # the parser, like the model, reads faces as SDR pictures
                masks = self._parse_masks(out, keys).to(device)
            paste_kw.update(border=0.0, feather=0.0)
        # A filter (``residual``: classic) changes the face a little where GPEN repaints it: the
        # frame keeps its own band that the round trip through the crop would blur, thinned at the
        # filter's noise threshold (paste_faces' ``originals``, ``fine_shrink``) at the noise level
        # the filter was told (classic's ``noise_sigma``; else estimated around each face), so
        # what is warped back is the filter's change. It is measured against the crops as cut, as
        # HdrColour.from_sdr measures it: applied once, in the source's codes.
        residual = bool(getattr(restorer, "residual", False))
        sigma = None
        if residual:
            paste_kw["fine_shrink"] = float(getattr(restorer, "fine_shrink", 0.0))
            sigma = getattr(restorer, "noise_sigma", None)
        with self.timer("paste"):
            start = 0
            for j, (img, k) in enumerate(zip(images, counts)):
                if k:
                    faces, aff = restored[start : start + k], all_aff[start : start + k]
                    m = masks[start : start + k] if masks is not None else None
                    cut = crops[start : start + k] if residual else None
                    if sigma is not None:
                        paste_kw["fine_sigma"] = [float(sigma)] * k
                    paste_faces(img, faces, aff, masks=m, ids=tracks[j], under=under[j], originals=cut, **paste_kw)
                    if hi is not None and hi[j] is not None:
                        if fine and not any(mono[start : start + k]):
                            faces_hi = restored_hi[start : start + k]
                            if residual and cut_hi is not None:
                                cut = cut_hi[start : start + k]
                        else:
                            faces_hi = faces
                        paste_faces(hi[j], faces_hi, aff, masks=m, ids=tracks[j], under=under[j], originals=cut,
                                    **paste_kw)
                    self.frames_with_faces += 1
                start += k
        self.faces_restored += n
        return n

    def _still_size(self, affines: torch.Tensor) -> tuple[int, object, torch.Tensor]:
        """A photo's crop size: ``(side, restorer, affines)``. A restorer that works at any crop
        size (``with_size``: classic) gets its faces at their own size when one is larger than
        S (a selfie's face cut at 512 came out blurred), up to 2048; the affines are
        scaled to that side. Others, and faces within S, keep S. Not for video, whose faces keep
        one crop size from frame to frame."""
        with_size = getattr(self.restorer, "with_size", None)
        if not callable(with_size) or not len(affines):
            return self.size, self.restorer, affines
        scale = float(torch.linalg.det(affines[:, :, :2].double()).abs().sqrt().min())  # crop px per frame px
        if not 0 < scale < 1:
            return self.size, self.restorer, affines
        side = min(2048, int(math.ceil(self.size / scale / 16)) * 16)
        k = side / self.size
        scaled = affines * k
        scaled[:, :, 2] = (affines[:, :, 2] + 0.5) * k - 0.5  # pixel centres, as the crop's own
        return side, with_size(side), scaled

    def _run_restorer(self, crops: torch.Tensor, *, fine: bool = False, restorer=None):
        """The restorer on ``crops`` (``restore_fine`` with ``fine``) in batches of at most its
        largest bucket (what GPEN's runner splits into anyway; a restorer without buckets, such as
        ``classic``, would otherwise take a crowd's hundreds of faces in one call: ~22 MiB of working
        memory per 512 px face), reporting each batch to :attr:`on_faces`."""
        restorer = self.restorer if restorer is None else restorer
        run = restorer.restore_fine if fine else restorer
        chunk = int(getattr(restorer, "max_batch", 0) or 8)
        if len(crops) <= chunk:
            return self._checked(run(crops), crops, fine)
        parts = []
        for start in range(0, len(crops), chunk):
            parts.append(self._checked(run(crops[start : start + chunk]), crops[start : start + chunk], fine))
            if self.on_faces is not None:
                self.on_faces(min(start + chunk, len(crops)))
        if fine:
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        return torch.cat(parts)

    def _checked(self, out, crops: torch.Tensor, fine: bool):
        """The restorer's answer, if it keeps the contract (``uint8 [n,3,S,S]`` for ``crops``; with
        ``fine``, that and its float32 twin): a custom restorer's float or resized output would
        otherwise be pasted as a garbled face."""
        name = getattr(self.restorer, "name", type(self.restorer).__name__)
        for o, dtype in ((out[0], torch.uint8), (out[1], torch.float32)) if fine else ((out, torch.uint8),):
            if not isinstance(o, torch.Tensor) or o.dtype != dtype or tuple(o.shape) != tuple(crops.shape):
                got = f"{o.dtype} {tuple(o.shape)}" if isinstance(o, torch.Tensor) else type(o).__name__
                raise InvalidInputError(f"the restorer {name!r} returned {got} for crops {crops.dtype} "
                                        f"{tuple(crops.shape)}; it must return {dtype} of the same shape")
        return out

    def _whole(self, image: torch.Tensor) -> torch.Tensor:
        """``aligned``: the picture -> S x S scaling, as a ``[1,2,3]`` affine (pixel centres)."""
        h, w = int(image.shape[0]), int(image.shape[1])
        sx, sy = self.size / w, self.size / h
        return torch.tensor([[[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]]], dtype=torch.float32)

    def _restore_aligned(self, images: list[torch.Tensor], hi: list[torch.Tensor | None] | None) -> int:
        """``aligned``: every picture is one face crop. Resized to S x S (a no-op at S; bilinear
        when growing, as GPEN's ``cv2.resize``; area when shrinking, where bilinear would alias, e.g.
        a 512 crop for GPEN-256), restored, resized back to its own size the same way and written
        over the whole picture (blended by ``strength`` with the picture itself), and over its
        16-bit copy from the restorer's unquantised output where there is one. A restorer that
        works at any crop size (``with_size(side)``: classic) gets square pictures of one size as
        they are."""
        if not images:
            return 0
        size, restorer = self.size, self.restorer
        sides = {(int(img.shape[0]), int(img.shape[1])) for img in images}
        with_size = getattr(restorer, "with_size", None)
        if callable(with_size) and len(sides) == 1:
            h, w = sides.pop()
            if h == w and 16 <= h <= 4096 and h != size:
                # the picture as it is: the round trip through S x S would blur a crop larger
                # than S (a 1024 px one at 512), and what a filter cannot add it only loses
                size, restorer = h, with_size(h)
        deep = hi is not None and any(h is not None for h in hi)
        with self.timer("align"):
            crops = torch.stack([_resize(img.permute(2, 0, 1), size, size) for img in images])
        with self.timer("restore"):
            # as :meth:`restore` does for each face: an HDR picture goes to the model as SDR and its
            # change is mapped back; a black-and-white or sepia crop takes only the brightness
            given = self.colour.to_sdr(crops) if self.colour is not None else crops
            fine = deep and callable(getattr(restorer, "restore_fine", None))
            if fine:
                out, out_f = restorer.restore_fine(given)
            else:
                out = restorer(given)
            out = out.to(images[0].device)
            restored = self.colour.from_sdr(out, crops, given) if self.colour is not None else out
            if fine and self.colour is not None:
                crops_hi = torch.stack([_resize(h.permute(2, 0, 1), size, size, top=65535) if h is not None
                                        else crops[j].to(torch.int32).mul(257).to(torch.uint16)
                                        for j, h in enumerate(hi)])
                out_f = self.colour.from_sdr_fine(out_f.to(crops_hi.device), crops_hi, given)
            mono_t = _monochrome(crops)
            mono = mono_t.tolist()
            if any(mono):
                restored = torch.where(mono_t[:, None, None, None], _luma_only(restored, crops), restored)
            if deep and not fine:
                out_f = restored.float()
            elif deep:  # (a monochrome crop's 16-bit face is its 8-bit one: the model's colours are gone)
                out_f = torch.where(mono_t[:, None, None, None].to(out_f.device), restored.float().to(out_f.device),
                                    out_f)
        out = restored
        s = float(self.strength)
        with self.timer("paste"):
            for j, img in enumerate(images):
                h, w = int(img.shape[0]), int(img.shape[1])
                face = _resize(out[j], h, w)
                if s < 1.0:  # against the picture itself, not its S x S copy (0: the input back)
                    face = blend_crops(face, img.permute(2, 0, 1), s)
                img.copy_(face.permute(1, 2, 0))
                if deep and hi[j] is not None:
                    face = _resize(out_f[j].to(hi[j].device) * 257.0, h, w, top=65535)
                    if s < 1.0:
                        own = hi[j].permute(2, 0, 1).float()
                        face = (face.float() * s + own * (1.0 - s)).add_(0.5).floor_().clamp_(0, 65535).to(torch.uint16)
                    hi[j].copy_(face.permute(1, 2, 0))
        self.faces_restored += len(images)
        self.frames_with_faces += len(images)
        return len(images)

    def _restored_hi(self, out_f: torch.Tensor, hi: list[torch.Tensor], counts: list[int],
                     affines: torch.Tensor, size: int, given: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(faces, cut)``: the faces for the 16-bit pictures, float32 on the 0..255 scale: the
        model's unquantised output, or (HDR) its change from ``given`` (the SDR crops it was
        handed) mapped back onto the crops cut from the 16-bit pictures themselves, so no step of
        it is limited to 8 bits (``strength`` is the paste's); ``cut``: those 16-bit crops on the
        same scale (HDR: what the faces are a change of, for a residual paste), ``None`` where
        the faces are a change of the 8-bit crops."""
        crops_hi = None
        if self.colour is not None:
            parts, start = [], 0
            for h, k in zip(hi, counts):  # one picture at a time: stacking would copy 16-bit frames
                if k:
                    ids = torch.zeros(k, dtype=torch.long, device=h.device)
                    parts.append(warp_faces(h, ids, affines[start : start + k].to(h.device), size=size,
                                            antialias=self.antialias))
                start += k
            crops_hi = torch.cat(parts).to(out_f.device)
        if self.colour is None:
            return out_f, None
        return self.colour.from_sdr_fine(out_f, crops_hi, given.to(out_f.device)), crops_hi.float().div_(257.0)

    def _parse_masks(self, restored: torch.Tensor, keys: list[tuple[int, int]] | None) -> torch.Tensor:
        """Paste masks for ``restored`` crops: fresh for stills. For video, per track, the parser
        runs every ``parse_every`` frames, and the mask in use glides from the previous one to the
        fresh one over the next ``parse_every`` frames (linear cross-fade), so a refresh never
        steps: the mask changes continuously, by at most 1/``parse_every`` of a refresh per frame."""
        if keys is None:
            self.parser_calls += len(restored)
            return self.parser(restored)
        # Decide in frame order which faces get a fresh mask (a track's first face in this batch
        # may refresh it for the later frames of the same batch), then run the parser once.
        last = {t: e[0] for t, e in self._masks.items()}
        fresh = []
        for j, (index, tid) in enumerate(keys):
            if tid not in last or not 0 <= index - last[tid] < self.parse_every:
                fresh.append(j)
                last[tid] = index
        new = self.parser(restored[fresh]) if fresh else None
        self.parser_calls += len(fresh)
        out, k = [], 0
        for j, (index, tid) in enumerate(keys):
            if k < len(fresh) and fresh[k] == j:
                target = new[k]
                k += 1
                old = self._masks.get(tid)
                if old is not None and 0 < index - old[0] <= 2 * self.parse_every:
                    begin = self._mask_at(old, index - 1).to(target.device)
                else:  # a new track (or one not seen for a while): its first mask as it is
                    begin = target
                self._masks[tid] = (index, begin, target)
            out.append(self._mask_at(self._masks[tid], index))
        # forget tracks not refreshed for a while (ended, or lost at a cut)
        newest = max(i for i, _ in keys)
        for tid in [t for t, e in self._masks.items() if newest - e[0] > 2 * self.parse_every]:
            del self._masks[tid]
        return torch.stack(out)

    def _mask_at(self, entry: tuple, index: int) -> torch.Tensor:
        """A cached ``(refreshed at, begin, target)`` mask evaluated at frame ``index``."""
        at, begin, target = entry
        w = min(max((index - at + 1) / self.parse_every, 0.0), 1.0)
        return target if begin is target or w >= 1.0 else torch.lerp(begin, target, w)


def _resize(chw: torch.Tensor, h: int, w: int, *, top: int = 255) -> torch.Tensor:
    """``[C,H,W]`` uint8 / uint16 / float -> ``[C,h,w]`` in the integer type (uint8, or uint16 for
    ``top=65535``; float input rounds to it): bilinear (half-pixel centres, like ``cv2.resize``'s
    default) when growing or unchanged in size, area averaging when shrinking (no aliasing)."""
    dtype = torch.uint8 if top == 255 else torch.uint16
    if tuple(chw.shape[1:]) == (h, w) and chw.dtype == dtype:
        return chw.clone()
    x = chw.to(torch.float32)[None]
    if (h, w) != tuple(chw.shape[1:]):
        mode = "area" if h < chw.shape[1] and w < chw.shape[2] else "bilinear"
        x = F.interpolate(x, size=(h, w), mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    return x[0].add_(0.5).floor_().clamp_(0, top).to(dtype)


def blend_crops(restored: torch.Tensor, crops: torch.Tensor, strength: float) -> torch.Tensor:
    """``round(strength * restored + (1 - strength) * crops)`` as uint8 (``cv2.addWeighted``'s
    arithmetic: float32, rounded half to even, saturated)."""
    s = float(strength)
    out = restored.to(torch.float32) * s + crops.to(device=restored.device, dtype=torch.float32) * (1.0 - s)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def select_faces(dets, select: str, min_face: float, max_faces: int | None, shape, min_score: float = 0.0, *,
                 pixel_aspect: float = 1.0) -> object:
    """Apply the face-selection options to one frame's detections (still images; ``min_face``
    in display px at ``pixel_aspect``: :func:`~stream_gpen.faces._detector.display_side`)."""
    if len(dets) == 0:
        return dets
    boxes = dets.boxes
    keep = torch.nonzero((display_side(boxes, pixel_aspect).clamp(min=0) >= min_face)
                         & (dets.scores >= min_score)).flatten()
    dets = dets.select(keep)
    if len(dets) == 0:
        return dets
    boxes = dets.boxes
    if select == "largest" or (select == "all" and max_faces is not None):
        # "all" capped at max_faces keeps the largest, as the tracker does for video
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        order = torch.argsort(area, descending=True)[: 1 if select == "largest" else None]
    elif select == "center":
        h, w = shape[0], shape[1]
        c = (boxes[:, :2] + boxes[:, 2:]) / 2
        d = ((c[:, 0] - w / 2) ** 2 + (c[:, 1] - h / 2) ** 2)
        order = torch.argsort(d)[:1]
    else:
        order = torch.arange(len(dets))
    if max_faces is not None:
        order = order[:max_faces]
    return dets.select(order)


def run_stream(
    source,
    stage: FaceStage,
    *,
    batch_faces: int = 8,
    max_pending_frames: int | None = None,
    latency_budget_s: float | None = None,
    on_frame: Callable[[object], None] | None = None,
    stop: Callable[[], bool] | None = None,
    max_frames: int | None = None,
) -> Iterator[object]:
    """Yield the frames of ``source`` with their faces restored, in input order.

    Faces of several frames are collected until ``batch_faces`` crops are pending, the
    pending frames reach ``max_pending_frames`` (keep it below the ring size so the decoder
    never starves), or — for live sources — the oldest pending frame has waited
    ``latency_budget_s`` since the source published it (time in the ring included), whether or
    not another frame has come (a 2 fps camera does not hold a frame for a whole frame interval,
    nor a stalled one its last frames). A live frame taken after the source dropped older ones
    (the ring's ``dropped`` grew: processing is behind) is restored at once, without waiting for
    another: batching it with the next frame would make the output come in bursts of consecutive
    frames, each burst later. With a smoother (``stage.lag`` > 0) each frame first waits for its
    look-ahead, so up to ``max_pending_frames + stage.lag`` frames are held: the ring must have
    room for both. Each
    yielded frame still owns its ring slot: hand it to a sink (which releases it) or call
    ``frame.release()``.

    ``stop()``: asked while waiting for the source (at least every 0.1 s, so a stop, or a time
    limit, is noticed even when no frame comes); ``True`` ends the stream there. Frames taken
    from the source and not handed on (a stop, or the caller closing the generator early) are
    counted in ``stage.frames_discarded``, and their faces are taken back out of the stage's
    counts: those count the frames handed on. ``stage.faces_out`` counts the faces of the frames
    handed on so far (a live status line: ``faces_restored`` includes a batch not yet handed on).

    ``max_frames``: take at most this many frames from the source (``camera --frames``), so
    none is taken only to be discarded.
    """
    pending: list[_Pending] = []
    waiting: deque = deque()  # frames tracked but not yet released by the smoother (<= stage.lag)
    restored: deque = deque()  # restored frames of the last batch not yet handed on
    pending_faces = 0
    oldest = 0.0
    ring = getattr(source, "ring_size", None) or getattr(getattr(source, "ring", None), "size", None) or 8
    if max_pending_frames is None:
        max_pending_frames = max(1, ring - 2 - stage.lag)
    # repeats that go out with their frame (see _Pending.repeats) hold ring slots too, beyond the
    # batch's frames: as many as the ring has room for besides the rest (counted with the frames,
    # a clip shown twice gave the model 4 crops a call instead of 8). When a frame is asked for,
    # the slots held are at most: the look-ahead's frames and the repeats waiting there, the
    # batch's frames less one (it is restored at max_pending_frames), its repeats, and those of
    # the frames handed on (a sink's queue and the frame it encodes; left out, the repeats took
    # them and a still shot ran the ring out whenever the encoder was behind: hunt 32). The
    # frame asked for and one for the decoder to work ahead in take the last two.
    repeat_room = max(0, ring - 1 - stage.lag - getattr(stage, "repeats_held", 0) - max_pending_frames
                      - getattr(stage, "held_downstream", 0))
    # Live: wait for the source in slices (to the budget's end, or a poll), never unboundedly.
    frames_ring = getattr(source, "ring", None)
    timed = (latency_budget_s is not None or stop is not None) and callable(getattr(frames_ring, "wait_ready", None))

    def flush():
        nonlocal pending, pending_faces
        if pending:
            for p in pending:  # (before the faces go in: see _note_pasted)
                for f in (p.frame, *p.repeats):
                    _note_pasted(f, p.affines, stage)
            # a repeat whose picture is its frame's, every pixel (it was found on every 4th row),
            # takes its frame's output; one that differs between those rows is restored itself
            own = [_Pending(r, p.affines.clone()) for p in pending for r in p.repeats if not _same_picture(p.frame, r)]
            todo = pending + own
            stage.restore([p.frame.image for p in todo], [p.affines for p in todo],
                          [getattr(p.frame, "hi", None) for p in todo], [p.frame.index for p in todo])
            restored_own = {id(o.frame) for o in own}
            for p in pending:  # a repeat's output is its frame's: copied, not restored again
                for r in p.repeats:
                    if id(r) in restored_own:
                        continue
                    _copy_restored(p.frame, r)
                    stage.forget(r.index)
                    stage.faces_restored += len(p.affines)
                    stage.frames_with_faces += int(len(p.affines) > 0)
        restored.extend(_Pending(f, p.affines) for p in pending for f in [p.frame, *p.repeats])
        pending, pending_faces = [], 0
        while restored:
            p = restored.popleft()  # (out of ``restored`` first: a caller that stops here saw it)
            stage.faces_out = getattr(stage, "faces_out", 0) + len(p.affines)
            yield p.frame

    def admit(released, late: bool = False):
        nonlocal pending_faces, oldest
        for index, aff in released:
            frame = waiting.popleft()
            if frame.index != index:  # the smoother releases in push order; anything else is a bug
                raise RuntimeError(f"face planning released frame {index}, expected {frame.index}")
            of = repeat_of(index)
            if of is not None and pending and pending[-1].frame.index == of:
                pending[-1].repeats.append(frame)  # (it goes out with its frame, as its frame comes out)
            else:
                if not pending:
                    # a live frame's budget started when the source published it, not when it was taken
                    published = getattr(frame, "published", None) if latency_budget_s is not None else None
                    oldest = published if published is not None else time.perf_counter()
                pending.append(_Pending(frame, aff))
                pending_faces += len(aff)
            if (
                pending_faces >= batch_faces
                or len(pending) >= max_pending_frames
                or sum(len(p.repeats) for p in pending) > repeat_room
                or (latency_budget_s is not None and (late or time.perf_counter() - oldest >= latency_budget_s))
            ):
                yield from flush()

    def ready():
        """Wait until the source has an answer (``True``) or ``stop()`` says so (``False``),
        flushing the pending batch when its latency budget runs out meanwhile."""
        while True:
            if stop is not None and stop():
                return False
            wait = _POLL_S
            if pending and latency_budget_s is not None:
                left = oldest + latency_budget_s - time.perf_counter()
                if left <= 0:
                    yield from flush()
                    continue
                wait = min(wait, left)
            if frames_ring.wait_ready(wait):
                return True

    repeat_of = getattr(stage, "repeat_of", lambda index: None)
    frames = iter(source)
    taken = 0
    try:
        while max_frames is None or taken < max_frames:
            if timed and not (yield from ready()):
                return
            dropped = getattr(frames_ring, "dropped", 0)
            try:
                frame = next(frames)
            except StopIteration:
                break
            taken += 1
            # live: the ring dropped stale frames for this one, so processing is behind the source
            late = getattr(frames_ring, "dropped", 0) > dropped
            if on_frame is not None:
                on_frame(frame)
            waiting.append(frame)
            yield from admit(stage.plan_frames(frame.index, frame.image), late)
        yield from admit(stage.plan_flush())
        yield from flush()
    finally:
        # stopped, or closed by the caller: what was taken in and never handed on
        stage.frames_discarded += len(waiting) + sum(p.frames for p in pending) + len(restored)
        for p in restored:  # restored, but never seen: out of the counts of faces handed on
            k = len(p.affines)  # (aligned pictures: one "face" each, as restore counted them)
            stage.faces_restored -= k
            stage.frames_with_faces -= int(k > 0)


_POLL_S = 0.1  # a live wait for the source wakes this often to ask ``stop()``


def _same_picture(frame, repeat) -> bool:
    """Whether ``repeat`` is ``frame``'s picture, every pixel (and of its >8-bit twin), both as
    they came (asked before either is restored)."""
    if not torch.equal(frame.image, repeat.image):
        return False
    hi, rhi = getattr(frame, "hi", None), getattr(repeat, "hi", None)
    return (hi is None) == (rhi is None) and (hi is None or torch.equal(hi, rhi))


def _note_pasted(frame, affines, stage) -> None:
    """Where the faces go in ``frame`` (:attr:`Frame.pasted`), for a sink that keeps the decoded
    picture elsewhere (a frame with its ``yuv``; an aligned crop is restored whole), and the
    picture there before they do (:attr:`Frame.unpasted`): called before the faces are pasted.
    The sink adds the faces' changes to the decoded YUV; it decoded each area a second time for
    the picture before them (12-14 ms of the encoder thread's 62 ms a 4K frame with one 750 px
    face; a copy here: ~2 ms, on the device for a CUDA ring: no transfer unless it is used)."""
    size = getattr(stage, "size", None)
    if getattr(frame, "yuv", None) is None or not size:
        return
    h, w = frame.image.shape[:2]
    if getattr(stage, "aligned", False):
        frame.pasted = [(0, 0, w, h)]
    else:
        from stream_gpen.faces._paste import paste_areas

        frame.pasted = paste_areas(affines, size, h, w)
    from stream_gpen.io._sink import _whole_boxes

    hi = getattr(frame, "hi", None)
    picture = hi if hi is not None else frame.image
    frame.unpasted = [((x0, y0, x1, y1), picture[y0:y1, x0:x1].clone())
                      for x0, y0, x1, y1 in _whole_boxes(frame.pasted, w, h)]


def _copy_restored(frame, repeat) -> None:
    """``repeat`` (a frame identical to ``frame``) given ``frame``'s restored pixels: its picture,
    and its >8-bit twin where both have one."""
    repeat.image.copy_(frame.image)
    hi, rhi = getattr(frame, "hi", None), getattr(repeat, "hi", None)
    if hi is not None and rhi is not None:
        rhi.copy_(hi)


#: a turn that held for this share of a video's whole-frame detections or more is the video's
#: own (a lost rotation tag); under it, faces lay down in part of the video (:func:`turned_note`)
TURNED_VIDEO_SHARE = 0.8


def turned_note(k: int, share: float | None = 1.0) -> str:
    """What to say of a video whose faces were found upright in its frames turned by
    ``torch.rot90`` ``k`` (:attr:`FaceStage.turn`), for ``share`` of its whole-frame
    detections (``None``: said as it happens, the share not known yet). Only a turn that held
    for most of the video suggests a lost rotation tag: a person lying down in some shots of an
    upright video is found upright turned too (review: the note asked for the tag there)."""
    way, fix = {1: ("90° counterclockwise", "transpose=cclock"), 2: ("180°", "hflip,vflip"),
                3: ("90° clockwise", "transpose=clock")}[k]
    if share is None:
        return f"faces are upright with the picture turned {way}: they are detected turned from here"
    if share >= TURNED_VIDEO_SHARE:
        return (f"faces are upright with the picture turned {way} (is the video's rotation tag missing?): they "
                f"were detected turned and restored; the picture is written as it is (to turn it: ffmpeg -vf {fix})")
    return (f"faces in part of the video ({share:.0%} of its detections) are upright with the picture turned {way} "
            "(lying down?): they were detected turned there and restored")


__all__ = ["FaceStage", "run_stream", "select_faces", "RunSummary"]


def _unturn(points: torch.Tensor, k: int, h: int, w: int) -> torch.Tensor:
    """Points ``[..., 2]`` (x, y in pixels, continuous) of a picture ``h`` x ``w`` turned by
    ``torch.rot90(picture, k, (0, 1))``, mapped back into the picture itself."""
    p = points.float()
    for step in range(k, 0, -1):
        # the picture after step-1 turns, whose turn by one more gave the current points
        ph, pw = (h, w) if (step - 1) % 2 == 0 else (w, h)
        # rot90(k=1) of a ph x pw picture: (x, y) -> (y, pw - x); back: (x', y') -> (pw - y', x')
        p = torch.stack([pw - p[..., 1], p[..., 0]], -1)
    return p

