"""RetinaFace detector (our own network module, batched torch pre/post-processing and NMS)."""
from __future__ import annotations

import contextlib
import logging
import math
import numbers
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from stream_gpen.errors import CheckpointError, InvalidInputError
from stream_gpen.runtime._runner import no_autocast

log = logging.getLogger(__name__)

Backbone = Literal["mobilenet0.25", "resnet50", "auto"]
Resize = Literal["auto", "float", "uint8"]
_WEIGHTS = {"mobilenet0.25": "retinaface-mobilenet0.25", "resnet50": "retinaface-resnet50"}
_FIRST_KEY = {"mobilenet0.25": "body.stage1.0.0.weight", "resnet50": "body.conv1.weight"}
# facexlib cfg_mnet / cfg_re50 (identical for both backbones)
_MIN_SIZES = ((16, 32), (64, 128), (256, 512))
_STEPS = (8, 16, 32)
_VARIANCE = (0.1, 0.2)
_MEAN_BGR = (104.0, 117.0, 123.0)
#: network input sizes whose anchors are kept (least recently used dropped first)
PRIOR_CACHE_SIZE = 32


@dataclass(frozen=True)
class Detections:
    """Faces found in one frame, in frame pixel coordinates, sorted by score (descending).

    ``boxes`` ``[n,4]`` float32 (x1, y1, x2, y2); ``landmarks`` ``[n,5,2]`` float32 (left eye,
    right eye, nose, left / right mouth corner); ``scores`` ``[n]`` float32. Small CPU tensors:
    the tracker's per-face bookkeeping is Python-side, so one transfer per detector call is cheaper
    than many small device ops.
    """

    boxes: torch.Tensor
    landmarks: torch.Tensor
    scores: torch.Tensor

    def __post_init__(self) -> None:
        n = self.scores.shape[0] if self.scores.ndim == 1 else -1
        if n < 0 or tuple(self.boxes.shape) != (n, 4) or tuple(self.landmarks.shape) != (n, 5, 2):
            raise InvalidInputError(
                "Detections need boxes [n,4], landmarks [n,5,2], scores [n]; got "
                f"{tuple(self.boxes.shape)}, {tuple(self.landmarks.shape)}, {tuple(self.scores.shape)}"
            )

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @staticmethod
    def empty() -> "Detections":
        f = torch.float32  # (not the default dtype: a host may have set float64)
        return Detections(torch.zeros(0, 4, dtype=f), torch.zeros(0, 5, 2, dtype=f), torch.zeros(0, dtype=f))

    def select(self, index) -> "Detections":
        return Detections(self.boxes[index], self.landmarks[index], self.scores[index])


def default_backbone(device: torch.device) -> str:
    """The backbone ``"auto"`` picks without a weights file: ResNet-50 on CUDA (104 MB, more
    accurate on small and profile faces), MobileNet-0.25 elsewhere (1.7 MB, ~10x less compute)."""
    return "resnet50" if device.type == "cuda" else "mobilenet0.25"


def weights_name(backbone: Backbone, device: torch.device) -> str:
    """The registry name of the weights a detector of ``backbone`` on ``device`` loads without a file given."""
    return _WEIGHTS[default_backbone(device) if backbone == "auto" else backbone]


def _priors(h: int, w: int, device) -> torch.Tensor:
    """Anchor boxes (cx, cy, w, h) in pixels, facexlib's PriorBox order (row, col, size)."""
    out = []
    for step, sizes in zip(_STEPS, _MIN_SIZES):
        fh, fw = math.ceil(h / step), math.ceil(w / step)
        ys = (torch.arange(fh, dtype=torch.float32, device=device) + 0.5) * step
        xs = (torch.arange(fw, dtype=torch.float32, device=device) + 0.5) * step
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        k = len(sizes)
        cx = cx[..., None].expand(fh, fw, k)
        cy = cy[..., None].expand(fh, fw, k)
        s = torch.tensor(sizes, dtype=torch.float32, device=device).expand(fh, fw, k)
        out.append(torch.stack([cx, cy, s, s], dim=-1).reshape(-1, 4))
    return torch.cat(out)


def _read_detector_state(path: Path) -> dict:
    from stream_gpen.models.loading import read_state_dict

    # a damaged or foreign file is one CheckpointError line (exit 3), as for GPEN checkpoints
    state = read_state_dict(path, what="detector weights", wrappers=("state_dict",))
    return {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}


class FaceDetector:
    """RetinaFace on a downscaled copy of each frame, batched over frames of equal size.

    Options (keyword-only):

    * ``backbone``: ``"resnet50"`` is more accurate on small/profile faces but ~10x the compute;
      ``"mobilenet0.25"`` (1.8 MB) is the CPU choice. ``"auto"`` follows a ``weights`` file (the
      backbone it was trained for); without one it picks ResNet-50 on CUDA and MobileNet-0.25 on
      CPU.
    * ``long_side``: the frame is downscaled so its longer side is at most this (never upscaled).
      Lower is faster (cost ~ pixels) but faces below ~16 px at that scale are missed: a face of
      ``f`` px in a frame whose long side is ``L`` is ``f * long_side / L`` px to the network.
    * ``score_threshold``: higher drops false positives but loses blurry / profile faces.
    * ``min_face``: drop faces whose box's shorter side (display px: as a player shows the frame,
      its pixels made square by the call's ``pixel_aspect``, so anamorphic video keeps the faces
      its square-pixel copy keeps: :func:`display_side`) is smaller; small faces gain
      little from restoration and cost as much as big ones. (Video: judged at each detection;
      see :class:`~stream_gpen.faces.FaceTracker`.)
    * ``small_faces``: also return the faces from this shorter side (display px) up to ``min_face``,
      unchecked (``check_landmarks`` looks only at faces of ``min_face`` and more, and
      ``max_faces`` counts only those): a video's tracker ends the track of a face found only that
      small (walking away) where it is, instead of counting a miss. Callers drop them by
      ``min_face``, as the pipeline does. 0 (default) = none.
    * ``max_faces``: keep at most this many (highest score); ``None`` keeps all.
    * ``check_landmarks``: drop a detection whose five landmarks fit no face the right way up:
      their shape does not fit the alignment template (:func:`landmark_misfit` over
      :attr:`MAX_LANDMARK_MISFIT`), or the crop aligned on them looks more like a face turned
      (:meth:`turn_margin` over :attr:`MAX_TURN_MARGIN`), or it is zoomed far into the face's
      box (:func:`box_zoom` over :attr:`MAX_BOX_ZOOM`). RetinaFace finds sideways and
      upside-down faces at high scores but misplaces their landmarks, and the crop aligned on
      them is a zoomed, turned face that would be restored and pasted over the real one. A
      dropped face is left untouched, as if not detected; :attr:`implausible` counts them. Costs
      one network call on four 128 px crops per face found. ``False`` keeps every detection.
    * ``batch_size``: frames per network call; larger batches amortise launch cost on GPU.
    * ``resize``: how frames are downscaled for the network; both use torch's antialiased bilinear
      filter. ``"float"``: on float copies of the frames (any device; the exact input).
      ``"uint8"`` (CPU detector only): on the uint8 frames with torch's SIMD integer kernel, then
      one pass into the float input: 10-50x cheaper per frame on CPU (no full-size float copy),
      and the input differs only by rounding to whole grey levels (mean 0.25), which moves
      boxes and landmarks by well under a frame pixel on real footage
      (``tests/test_faces_detector.py``). ``"auto"`` = uint8 on CPU, float otherwise.
    * ``fixed_shapes``: run the network on few input shapes: a region (:meth:`detect_region`)
      is looked for in a detection of the whole frame, and the :meth:`turn_margin` crops go in
      batches padded to a power of two. ``None`` (default) = on for CUDA, off on the CPU. On a
      GPU every new input shape pays setup (cuDNN picks and builds its kernels per shape): on
      an H200 the first pass over a 1080p crowd clip took 45 s against 4 s for the second
      (session 16), and 60 of its frames fed the network 39 shapes (region windows of 30 sizes,
      check batches of 8), against 2 full-frame shapes and 4 check batches with this on. The
      whole frame costs the GPU little; on the CPU a window is much cheaper than the frame.
    * ``weights``: the RetinaFace file for ``backbone``, or a folder holding it under one of the
      names the weights manager accepts; ``None`` uses the managed copy, downloading it (with a
      progress bar unless ``progress=False``) unless ``download=False`` (then a missing copy is a
      :class:`WeightsNotFoundError`).
    """

    def __init__(
        self,
        *,
        backbone: Backbone = "auto",
        device: str | torch.device | None = None,
        weights: str | Path | None = None,
        long_side: int = 640,
        score_threshold: float = 0.8,
        nms_threshold: float = 0.4,
        min_face: float = 0.0,
        small_faces: float = 0.0,
        max_faces: int | None = None,
        check_landmarks: bool = True,
        batch_size: int = 8,
        resize: Resize = "auto",
        fixed_shapes: bool | None = None,
        download: bool = True,
        progress: bool = True,
    ) -> None:
        if backbone not in get_args(Backbone):
            raise InvalidInputError(f"backbone must be one of {get_args(Backbone)}, got {backbone!r}")
        if not isinstance(long_side, int) or long_side < 32:
            raise InvalidInputError(f"long_side must be an int >= 32, got {long_side!r}")
        if not 0.0 < score_threshold < 1.0:
            raise InvalidInputError(f"score_threshold must be in (0, 1), got {score_threshold!r}")
        if not 0.0 < nms_threshold <= 1.0:
            raise InvalidInputError(f"nms_threshold must be in (0, 1], got {nms_threshold!r}")
        if min_face < 0:
            raise InvalidInputError(f"min_face must be >= 0, got {min_face!r}")
        if not small_faces >= 0:
            raise InvalidInputError(f"small_faces must be >= 0, got {small_faces!r}")
        if max_faces is not None and (not isinstance(max_faces, int) or max_faces < 1):
            raise InvalidInputError(f"max_faces must be None or an int >= 1, got {max_faces!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if resize not in get_args(Resize):
            raise InvalidInputError(f"resize must be one of {get_args(Resize)}, got {resize!r}")
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu"
        )
        if resize == "uint8" and self.device.type != "cpu":
            raise InvalidInputError(f"resize='uint8' needs a CPU detector, got device {self.device}")
        self.resize: str = resize
        #: see ``fixed_shapes`` above
        self.fixed_shapes: bool = self.device.type == "cuda" if fixed_shapes is None else bool(fixed_shapes)
        #: whether frames are resized as uint8 (the CPU fast path) rather than as float
        self.resize_uint8 = resize == "uint8" or (resize == "auto" and self.device.type == "cpu")
        state = None
        if backbone == "auto" and weights is not None and Path(weights).is_file():
            # a file given is used as it is: its own backbone, not the device's default (a
            # ResNet-50 file on the CPU was refused as "not a MobileNet checkpoint")
            state = _read_detector_state(Path(weights))
            backbone = next((b for b, key in _FIRST_KEY.items() if key in state), "auto")
        if backbone == "auto":
            backbone = default_backbone(self.device)
        self.backbone: str = backbone
        self.long_side = long_side
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.min_face = float(min_face)
        self.small_faces = float(small_faces)
        self.max_faces = max_faces
        self.check_landmarks = bool(check_landmarks)
        self.batch_size = batch_size
        # ``implausible`` and ``dropped_boxes`` are kept per thread: runs of one Enhancer on
        # several threads share its detector, and a photo run read a video run's dropped boxes
        # and counts (its turned-face search then looked at another picture's places)
        self._per_thread = threading.local()
        self.calls = 0  # frames run through the network (for benchmarks and run summaries)
        self.fallbacks: list[str] = []
        from stream_gpen.weights import ensure_weights

        # the managed copy, or the file given (a folder is searched for the accepted names, as
        # --weights DIR is)
        self.weights = ensure_weights(_WEIGHTS[backbone], path=weights, download=download, progress=progress,
                                      what="detector weights")
        self.net = self._load(self.weights, state)
        # anchors per network input size, most recent last: bounded, as a service sees photos of
        # every size and the change-watch probes regions of many sizes (each 640-px entry ~1 MB)
        self._prior_cache: OrderedDict[tuple[int, int], torch.Tensor] = OrderedDict()
        # float32 whatever the host's default dtype (torch.set_default_dtype): the weights are float32
        self._mean = torch.tensor(_MEAN_BGR, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def _load(self, path: Path, state: dict | None = None) -> torch.nn.Module:
        from stream_gpen.faces._retinaface import RetinaFace
        from stream_gpen.models.loading import describe_mismatch, refuse_nonfinite
        from stream_gpen.weights import get_weight_file

        if state is None:
            state = _read_detector_state(path)
        net = RetinaFace(self.backbone)
        problem = describe_mismatch(state, net.state_dict())
        if problem:
            # the backbones' first layers tell a file for the other backbone apart
            other = next((b for b, key in _FIRST_KEY.items() if b != self.backbone and key in state), None)
            raise CheckpointError(
                f"{path} is not a RetinaFace {self.backbone} checkpoint: "
                + (f"it is the {other} detector's file; " if other else "") + problem,
                hint=(f"pick the matching backbone (--detector {other}, detector={other!r} in Python)"
                      if other else f"pass the {_WEIGHTS[self.backbone]} weights "
                      f"({get_weight_file(_WEIGHTS[self.backbone]).filename}) or pick the matching backbone"),
            )
        refuse_nonfinite(state.items(), str(path), "detector weights")
        net.load_state_dict(state, strict=True)
        net = net.eval()
        self.fused_batchnorms = _fuse_conv_bn(net)
        # float32 whatever the host's default dtype: built under torch.set_default_dtype(float64)
        # the network's biases were double and every detection failed (api23)
        net = net.to(self.device, dtype=torch.float32)
        if self.device.type == "cpu":
            # oneDNN's CPU convolutions (MobileNet's depthwise ones above all) run ~25% faster on
            # channels-last tensors; the outputs differ by float reassociation only (~1e-5).
            net = net.to(memory_format=torch.channels_last)
        return net

    def _priors(self, h: int, w: int) -> torch.Tensor:
        key = (h, w)
        cache = self._prior_cache
        # (a detector shared by threads must not fail here: another may drop the same entry)
        p = cache.get(key)
        if p is not None:
            with contextlib.suppress(KeyError):
                cache.move_to_end(key)
            return p
        cache[key] = p = _priors(h, w, self.device)
        while len(cache) > PRIOR_CACHE_SIZE:
            try:
                cache.popitem(last=False)
            except KeyError:
                break
        return p

    def scaled_size(self, h: int, w: int, pixel_aspect: float = 1.0, long_side: int | None = None) -> tuple[int, int]:
        """The network input size for an ``h x w`` frame: its display geometry (width scaled by
        ``pixel_aspect``, the sample aspect ratio), downscaled so the longer side is at most
        ``long_side`` (default: the detector's). Non-square pixels are thus resampled to square
        ones, as the network was trained on; boxes and landmarks come back in stored frame pixels."""
        dw = w * pixel_aspect
        r = min(1.0, (long_side or self.long_side) / max(h, dw))
        return max(int(round(h * r)), 1), max(int(round(dw * r)), 1)

    @torch.inference_mode()
    def detect(self, frames, *, pixel_aspect: float = 1.0, long_side: int | None = None) -> list[Detections]:
        """Detect faces in ``frames`` (one ``[H,W,3]`` uint8 RGB tensor, a ``[B,H,W,3]`` batch or a
        list of them). Returns one :class:`Detections` per frame, in frame pixel coordinates.
        ``pixel_aspect``: the frames' sample aspect ratio; ``long_side``: this call's instead of
        the detector's (a photo is worth a larger one than a video frame; see :meth:`scaled_size`)."""
        return self._detect(frames, pixel_aspect, long_side, final=True)

    def _detect(self, frames, pixel_aspect, long_side, *, final: bool) -> list[Detections]:
        # final=False: no landmark check and no max_faces cut (detect_pyramid does both once, on
        # the faces its scales keep)
        pixel_aspect = _check_aspect(pixel_aspect)
        if long_side is not None and (not isinstance(long_side, int) or long_side < 32):
            raise InvalidInputError(f"long_side must be an int >= 32, got {long_side!r}")
        if isinstance(frames, torch.Tensor):
            frames = [frames] if frames.ndim == 3 else list(frames)
        out: list[Detections | None] = [None] * len(frames)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, f in enumerate(frames):
            if not isinstance(f, torch.Tensor) or f.ndim != 3 or f.shape[-1] != 3 or f.dtype != torch.uint8:
                raise InvalidInputError(
                    f"frame {i} must be a uint8 RGB [H,W,3] tensor, got "
                    f"{getattr(f, 'dtype', type(f).__name__)} {tuple(getattr(f, 'shape', ()))}"
                )
            groups.setdefault((f.shape[0], f.shape[1]), []).append(i)
        for (h, w), idx in groups.items():
            for s in range(0, len(idx), self.batch_size):
                chunk = idx[s : s + self.batch_size]
                size = self.scaled_size(h, w, pixel_aspect, long_side)
                for i, d in zip(chunk, self._detect_batch([frames[i] for i in chunk], h, w, size, pixel_aspect)):
                    out[i] = self._finish(frames[i], d, pixel_aspect) if final else d
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def detect_region(self, frame: torch.Tensor, region, *, pixel_aspect: float = 1.0,
                      long_side: int | None = None) -> Detections:
        """Detect faces in the ``region`` ``(x1, y1, x2, y2)`` (frame px) of one frame, for the cost of
        the region's pixels (plus a context margin) only. The region is snapped to the network's
        coarsest stride (32 px) at the scale :meth:`detect` uses for the whole frame, so the network
        sees the same pixels on the same anchor grid: faces inside it come out as a whole-frame
        detection finds them.
        Returns frame pixel coordinates."""
        return self._detect_region(frame, region, pixel_aspect, long_side, final=True)

    @property
    def implausible(self) -> int:
        """Detections dropped for implausible landmarks (``check_landmarks``) by this thread's
        calls, for run summaries (a running count: callers take differences)."""
        return getattr(self._per_thread, "implausible", 0)

    @implausible.setter
    def implausible(self, value: int) -> None:
        self._per_thread.implausible = value

    @property
    def dropped_boxes(self) -> deque[torch.Tensor]:
        """Boxes ``[n,4]`` (frame px) of the detections ``check_landmarks`` dropped in this
        thread's calls, one entry per picture that had any, newest last (bounded); a caller clears
        it to see one picture's (the turned-photo search looks again around them)."""
        d = getattr(self._per_thread, "dropped", None)
        if d is None:
            d = self._per_thread.dropped = deque(maxlen=16)
        return d

    def _detect_region(self, frame, region, pixel_aspect, long_side, *, final: bool) -> Detections:
        if not isinstance(frame, torch.Tensor) or frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != torch.uint8:
            raise InvalidInputError(f"frame must be a uint8 RGB [H,W,3] tensor, got {getattr(frame, 'dtype', None)}")
        h, w = frame.shape[:2]
        sh, sw = self.scaled_size(h, w, _check_aspect(pixel_aspect), long_side)
        fx, fy = w / sw, h / sh
        # RetinaFace's coarsest feature stride, and a context margin of two of them: the network's
        # receptive field is wide, so the zero padding at a crop border changes scores nearby.
        g, m = 32, 64
        nx1 = max(int(math.floor((region[0] / fx - m) / g)) * g, 0)
        ny1 = max(int(math.floor((region[1] / fy - m) / g)) * g, 0)
        nx2 = min(int(math.ceil((region[2] / fx + m) / g)) * g, sw)
        ny2 = min(int(math.ceil((region[3] / fy + m) / g)) * g, sh)
        if nx2 - nx1 < 2 or ny2 - ny1 < 2:
            return Detections.empty()
        x1, y1 = int(round(nx1 * fx)), int(round(ny1 * fy))
        x2, y2 = min(int(round(nx2 * fx)), w), min(int(round(ny2 * fy)), h)
        if self.fixed_shapes:
            # the whole frame at the same scale (one input shape for every region), then the faces
            # the window would have held whole: what the window finds, as the window's anchors are
            # the frame's
            d = self._detect_batch([frame], h, w, (sh, sw), pixel_aspect)[0]
            d = d.select(~_cut(d.boxes, (x1, y1, x2, y2), (w, h), 8 * max(fx, fy)))
            return self._finish(frame, d, pixel_aspect) if final else d
        last = self.dropped_boxes[-1] if self.dropped_boxes else None
        d = self._detect_batch([frame[y1:y2, x1:x2]], y2 - y1, x2 - x1, (ny2 - ny1, nx2 - nx1), pixel_aspect)[0]
        if final:
            d = self._finish(frame[y1:y2, x1:x2], d, pixel_aspect)
        off = torch.tensor([float(x1), float(y1)], dtype=torch.float32)
        if self.dropped_boxes and self.dropped_boxes[-1] is not last:  # the window's pixels -> the frame's
            self.dropped_boxes[-1] = self.dropped_boxes[-1] + off.repeat(2)
        boxes = d.boxes + off.repeat(2)
        # A face the window cuts is found in part (a box reaching past the cut, landmarks of half
        # a face): left out. Edges that are the frame's own are no cut.
        keep = ~_cut(boxes, (x1, y1, x2, y2), (w, h), 8 * max(fx, fy))
        return Detections(boxes[keep], (d.landmarks + off)[keep], d.scores[keep])

    def _detect_batch(self, frames: list[torch.Tensor], h: int, w: int, size=None,
                      pixel_aspect: float = 1.0) -> list[Detections]:
        """The network's faces of ``frames`` (scored, NMS, ``min_face`` in display px at
        ``pixel_aspect``: :func:`display_side`), before ``check_landmarks`` and ``max_faces`` (:meth:`_finish`)."""
        sh, sw = size if size is not None else self.scaled_size(h, w)
        if self.resize_uint8:
            x = _input_uint8(frames, sh, sw)
        else:
            x = torch.stack([f.to(self.device, non_blocking=True) for f in frames]).permute(0, 3, 1, 2).float()
            if (sh, sw) != (h, w):
                x = F.interpolate(x, size=(sh, sw), mode="bilinear", align_corners=False, antialias=True)
            x = x.flip(1) - self._mean  # RGB -> BGR, minus the training mean (no /255)
        with no_autocast():  # float32 landmarks, whatever autocast a host has on (bf16 rounds them)
            loc, conf, ldm = self.net(x)
        self.calls += len(frames)
        pri = self._priors(sh, sw)
        v0, v1 = _VARIANCE
        centers = pri[None, :, :2] + loc[..., :2] * v0 * pri[None, :, 2:]
        sizes = pri[None, :, 2:] * torch.exp(loc[..., 2:] * v1)
        boxes = torch.cat([centers - sizes / 2, centers + sizes / 2], dim=-1)
        lms = pri[None, :, None, :2] + ldm.view(ldm.shape[0], -1, 5, 2) * v0 * pri[None, :, None, 2:]
        # back to frame pixels (separate x/y factors: rounding of the scaled size)
        fx, fy = w / sw, h / sh
        fac = torch.tensor([fx, fy], dtype=torch.float32, device=self.device)
        boxes = boxes * fac.repeat(2)
        lms = lms * fac
        scores = conf[..., 1]
        results = []
        for b in range(len(frames)):
            keep = scores[b] > self.score_threshold
            bx, lm, sc = boxes[b][keep], lms[b][keep], scores[b][keep]
            if sc.numel() > 5000:
                top = sc.topk(5000).indices
                bx, lm, sc = bx[top], lm[top], sc[top]
            # NMS on the CPU, where the candidates go anyway: its loop over the faces it keeps
            # would wait for the GPU at every step
            bx, lm, sc = bx.float().cpu(), lm.float().cpu(), sc.float().cpu()
            k = nms(bx, sc, self.nms_threshold)[:750]
            bx, lm, sc = bx[k], lm[k], sc[k]
            if self.min_face > 0:
                ok = display_side(bx, pixel_aspect) >= min(self.min_face, self.small_faces or self.min_face)
                bx, lm, sc = bx[ok], lm[ok], sc[ok]
            results.append(Detections(bx, lm, sc))
        return results

    def _finish(self, frame: torch.Tensor, d: Detections, pixel_aspect: float = 1.0) -> Detections:
        """One picture's faces after ``check_landmarks`` (counted, their boxes recorded) and
        ``max_faces``; ``small_faces`` ones pass unchecked and uncounted, after the others."""
        big = self._big(d, pixel_aspect)
        if self.check_landmarks and big.any():
            ok = big.clone()
            ok[big] = self._plausible(frame, d.landmarks[big], d.boxes[big])
            self._count_dropped(d.boxes[big & ~ok])
            d, big = d.select(ok | ~big), big[ok | ~big]
        if self.max_faces is None:
            return d
        keep = big.nonzero().flatten()[: self.max_faces]
        return d.select(torch.cat([keep, (~big).nonzero().flatten()]))

    def _big(self, d: Detections, pixel_aspect: float = 1.0) -> torch.Tensor:
        """``[n]`` bool: which of ``d`` are faces of ``min_face`` or more (not ``small_faces`` only;
        display px, as :meth:`_detect_batch` measures them)."""
        if not self.small_faces or not len(d):
            return torch.ones(len(d), dtype=torch.bool)
        return (display_side(d.boxes, pixel_aspect) >= self.min_face).cpu()

    def _plausible(self, frame: torch.Tensor, landmarks: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """``[n]`` bool: which faces pass ``check_landmarks`` (their landmarks fit the template,
        the crop aligned on them is not zoomed into the box, and it looks no more face-like turned)."""
        ok = (landmark_misfit(landmarks) <= self.MAX_LANDMARK_MISFIT) & (box_zoom(landmarks, boxes) <= self.MAX_BOX_ZOOM)
        return ok & (self.turn_margin(frame, landmarks) <= self.MAX_TURN_MARGIN)

    def _count_dropped(self, boxes: torch.Tensor) -> None:
        self.implausible += len(boxes)
        if len(boxes):
            self.dropped_boxes.append(boxes.float().cpu())

    #: Largest :func:`landmark_misfit` of a kept detection (``check_landmarks``). Calibrated with
    #: MobileNet-0.25 on the shared face photos and clips (docs/tracking.md, "Implausible
    #: landmarks"): upright faces reach 0.57 (small and profile faces in the crowd and stage
    #: clips), scrambled sideways ones up to 6. Lowering it drops more scrambled faces and risks
    #: small and profile ones.
    MAX_LANDMARK_MISFIT = 0.8

    #: Largest :meth:`turn_margin` of a kept detection (``check_landmarks``), face logits. On the
    #: same data upright real faces reach 0.47, misaligned upside-down ones median 4.1; lowering
    #: it drops more misaligned faces and comes closer to dropping real ones.
    MAX_TURN_MARGIN = 2.5
    #: Largest :func:`box_zoom` of a kept detection (``check_landmarks``). Upright real faces
    #: reach 0.63 on the shared photos and clips (0.52-0.59 on photos); landmarks misplaced on
    #: an upside-down or sideways face that pass the other two tests give 0.76-1.57 (the crop
    #: shows half the face, zoomed ~2x). Lowering it drops more of those and comes closer to
    #: dropping real faces with unusual boxes.
    MAX_BOX_ZOOM = 0.74
    #: side of the crops :meth:`turn_margin` scores (px): the face's template spans ~60 px of it
    TURN_CROP = 128

    @torch.inference_mode()
    def turn_margin(self, frame: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """How much more face-like each face's aligned crop looks turned than as aligned: the best
        face logit (over all anchors) of the crop turned 90, 180 or 270 degrees, minus that of the
        crop itself. ``frame`` ``[H,W,3]`` uint8, ``landmarks`` ``[n,5,2]`` in its pixels; ``[n]``.

        The landmarks RetinaFace gives a face lying sideways or upside down often still look like
        an upright face's (it draws the eyes on the mouth of an upside-down face), so their shape
        cannot tell; the crop aligned on them shows the face sideways or upside down, and the
        network itself scores that crop turned upright higher. One extra network call on ``4n``
        small crops."""
        from stream_gpen.faces._align import estimate_affines, warp_faces

        n, s = len(landmarks), self.TURN_CROP
        if n == 0:
            return torch.zeros(0)
        aff = estimate_affines(landmarks.float().cpu(), size=s)
        crops = warp_faces([frame], torch.zeros(n, dtype=torch.long), aff.to(frame.device), size=s)
        x = crops.to(self.device).float()
        x = torch.cat([torch.rot90(x, k, (2, 3)) for k in range(4)])
        x = x.flip(1) - self._mean  # RGB -> BGR, minus the training mean, as the frames
        if self.fixed_shapes and (pad := (1 << (4 * n - 1).bit_length()) - 4 * n):
            x = torch.cat([x, x.new_zeros((pad, *x.shape[1:]))])  # each crop is scored on its own
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        with no_autocast():
            _, conf, _ = self.net(x)
        p = conf[: 4 * n, :, 1].clamp(1e-7, 1 - 1e-7)
        logit = (p.log() - (1 - p).log()).amax(1).view(4, n).cpu()
        return logit[1:].amax(0) - logit[0]

    # --- several scales -------------------------------------------------------------------
    #: Network pixels (shorter box side) under which a face is left to the next finer scale.
    #: RetinaFace's smallest anchors are 16 px: a face near that size is found unreliably, with
    #: noisy landmarks, so a coarse scale answers only for faces of at least this many pixels there.
    PYRAMID_MIN_PX = 40.0
    #: Network pixels (shorter box side) over which a face is left to the next coarser scale.
    #: A face much larger than the anchors' 512 px is missed whole and its parts (an eye and a
    #: cheek, a mouth) come out as faces instead: on the shared selfies and on selfie crops of
    #: 900-2400 px whose face fills 60-120 % of the frame, every such part is 387 px or more at
    #: 2560, while faces up to this size are found whole. Raising it lets parts of big faces
    #: through; lowering it narrows the band of sizes that two scales both answer for (from
    #: :attr:`PYRAMID_MIN_PX` at the coarser to this at the finer), where a face one scale
    #: misses or scores low is kept from the other.
    PYRAMID_MAX_PX = 256.0
    #: Two scales whose long sides are within this ratio are one: the finer is kept.
    PYRAMID_CLOSE = 1.25
    #: Score margin by which a finer scale's copy of a face wins the merge over a coarser copy:
    #: both near 1 for a clear face, the finer one's landmarks are measured on more pixels.
    PYRAMID_FINER_MARGIN = 0.01

    @torch.inference_mode()
    def detect_pyramid(self, frames, long_sides, *, pixel_aspect: float = 1.0, region=None) -> list[Detections]:
        """Detect at each long side of ``long_sides`` and keep, per face, what the scales that see
        it at a good size found: small faces of a big picture (a group photo at 2560, where 640
        finds 17 of the Solvay photo's 29 at the default min_score) without losing the big ones (a selfie's face at 2560 is
        over the anchors' 512: its eyes and mouth were "found" instead). A scale drops a face only
        when it is too small there (:attr:`PYRAMID_MIN_PX`, not the finest scale) or too large
        there (:attr:`PYRAMID_MAX_PX`, not the coarsest scale), and only if the neighbouring scale
        keeps a face of that box's size. Sizes between the two limits are answered by both scales,
        so a face measured on either side of one limit, or missed or scored low by one scale
        (a sideways head, a crowd tile), is still kept from the other; the copies of a face found
        at two scales are merged by NMS, which keeps the higher score (the finer scale's copy where
        the two are within :attr:`PYRAMID_FINER_MARGIN`). Scales within :attr:`PYRAMID_CLOSE` of
        each other are one (the finer). One size = :meth:`detect`.
        ``region``: as :meth:`detect_region` (one frame), at each scale.

        ``check_landmarks`` and ``max_faces`` apply once, to the merged faces: each face is checked
        once (not once per scale that sees it, nor where the merge drops it), with the same result
        as checking every scale's faces before the merge."""
        pixel_aspect = _check_aspect(pixel_aspect)
        if isinstance(frames, torch.Tensor):
            frames = [frames] if frames.ndim == 3 else list(frames)
        sizes = sorted({int(x) for x in long_sides})
        for x in sizes:
            if x < 32:
                raise InvalidInputError(f"long sides must be >= 32, got {long_sides!r}")

        def run(size, final):
            if region is not None:
                return [self._detect_region(frames[0], region, pixel_aspect, size, final=final)]
            return self._detect(frames, pixel_aspect, size, final=final)

        # sizes past the frame are the frame itself: one pass for those (a webcam frame of 640 px
        # at (640, 2560) is detected once)
        shapes = {(int(f.shape[0]), int(f.shape[1])) for f in frames}
        if len(shapes) == 1:
            h, w = shapes.pop()
            full = max(h, w * pixel_aspect)
            if sizes[0] >= full:
                sizes = sizes[:1]
            else:
                sizes = [x for x in sizes if x < full] + [x for x in sizes if x >= full][:1]
            # a scale within PYRAMID_CLOSE of the next finer one sees the same faces at nearly the
            # same size, only coarser (a 700 px photo at 640 and 700): the finer answers alone
            # (baseline23: the 640 pass won NMS on near-tied scores, its landmarks 3.9 px off)
            eff = [min(x, full) for x in sizes]
            sizes = [x for i, x in enumerate(sizes)
                     if i == len(sizes) - 1 or eff[i + 1] >= self.PYRAMID_CLOSE * eff[i]]
        out: list[Detections] = []
        # one scale: plain detect (or detect_region); several: checked once merged
        single = len(sizes) == 1
        per = {x: run(x, single) for x in sizes}
        for i, f in enumerate(frames):
            h, w = int(f.shape[0]), int(f.shape[1])
            full = max(h, w * pixel_aspect)
            scales = []  # (network px per frame px, detections), coarse to fine, distinct scales
            for x in sizes:
                r = min(1.0, x / full)
                if not scales or r > scales[-1][0] + 1e-9:
                    scales.append((r, per[x][i]))
            if len(scales) == 1:
                out.append(scales[0][1] if single else self._finish(f, scales[0][1], pixel_aspect))
                continue
            parts = []
            for k, (r, d) in enumerate(scales):
                if not len(d):
                    continue
                side = torch.minimum(d.boxes[:, 2] - d.boxes[:, 0], d.boxes[:, 3] - d.boxes[:, 1])
                keep = torch.ones(len(d), dtype=torch.bool)
                # Each limit is checked against the neighbour's limit on the same box, so no size
                # falls between two scales (a face of 39.8 px at 640 is 159 at 2560: kept there).
                if k < len(scales) - 1:  # too small here: the finer scale answers for it
                    keep &= (side * r >= self.PYRAMID_MIN_PX) | (side * scales[k + 1][0] > self.PYRAMID_MAX_PX)
                if k > 0:  # too large here (parts of a face): the coarser scale answers for it
                    keep &= (side * r <= self.PYRAMID_MAX_PX) | (side * scales[k - 1][0] < self.PYRAMID_MIN_PX)
                parts.append(d.select(keep))
            out.append(self._merged(f, parts, pixel_aspect))
        return out

    def _merged(self, frame: torch.Tensor, parts: list[Detections], pixel_aspect: float = 1.0) -> Detections:
        """The scales' faces ``parts`` of ``frame`` merged by NMS, then ``check_landmarks`` and
        ``max_faces``, as :meth:`_finish` does for one scale. Only the faces NMS keeps are checked:
        one that fails is dropped and NMS runs again without it, checking any face it had hidden,
        which gives what NMS over only the faces that pass gives (greedy NMS: a face it drops never
        hides another), one check per face instead of one per scale and per face the merge drops."""
        if not parts:
            return Detections.empty()
        d = Detections(torch.cat([p.boxes for p in parts]), torch.cat([p.landmarks for p in parts]),
                       torch.cat([p.scores for p in parts]))
        # parts run coarse to fine: of two near-tied copies of a face the finer one is kept
        rank = d.scores + torch.cat([torch.full((len(p),), i * self.PYRAMID_FINER_MARGIN, dtype=d.scores.dtype,
                                                device=d.scores.device) for i, p in enumerate(parts)])
        live = torch.arange(len(d))
        checked = ~self._big(d, pixel_aspect)  # small_faces ones pass unchecked
        bad = torch.zeros(len(d), dtype=torch.bool)
        while True:
            k = live[nms(d.boxes[live], rank[live], self.nms_threshold)]
            new = k[~checked[k]]
            if not (self.check_landmarks and len(new)):
                break
            checked[new] = True
            failed = new[~self._plausible(frame, d.landmarks[new], d.boxes[new])]
            if not len(failed):
                break
            bad[failed] = True
            live = (~bad).nonzero().flatten()
        self._count_dropped(d.boxes[bad])
        if self.max_faces is not None:
            big = self._big(d, pixel_aspect)[k]
            k = torch.cat([k[big][: self.max_faces], k[~big]])
        return d.select(k)

    def __repr__(self) -> str:
        return (
            f"FaceDetector(backbone={self.backbone!r}, device={str(self.device)!r}, long_side={self.long_side}, "
            f"score_threshold={self.score_threshold})"
        )


def _fuse_conv_bn(net: torch.nn.Module) -> int:
    """Fold every BatchNorm that directly follows a conv in a ``Sequential`` into that conv (eval
    mode: the norm is a fixed per-channel affine map), replacing it with ``Identity``. RetinaFace's
    MobileNet and FPN/SSH blocks are all ``Sequential(conv, bn[, act])``: a BN pass over every
    feature map per call goes (on the talking head, 0.22 s of batch norm in 26 detector calls);
    outputs change by float rounding only. Modules that keep a conv and its norm as attributes
    (the ResNet-50 bottlenecks) name them in ``conv_bn_pairs``, and those are folded too.
    Returns how many were folded."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    n = 0
    for seq in [m for m in net.modules() if isinstance(m, torch.nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if (isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d)
                    and bn.track_running_stats and bn.running_mean is not None):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = torch.nn.Identity()
                n += 1
    for m in list(net.modules()):
        for a, b in getattr(m, "conv_bn_pairs", ()):
            conv, bn = m._modules.get(a), m._modules.get(b)
            if (isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d)
                    and bn.track_running_stats and bn.running_mean is not None):
                m._modules[a] = fuse_conv_bn_eval(conv, bn)
                m._modules[b] = torch.nn.Identity()
                n += 1
    return n


#: boxes per step of :func:`nms` (its IoU matrix is this many rows by the boxes left)
NMS_BLOCK = 256


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression, as GPEN's RetinaFace (``py_cpu_nms``): the indices (int64,
    by descending score; equal scores in index order) of the ``boxes`` ``[n,4]`` (x1, y1, x2, y2)
    kept when each kept box suppresses every lower one whose IoU with it is over ``iou_threshold``.
    Boxes are pixel-inclusive: widths, heights and overlaps all carry the "+1" (areas
    ``(x2 - x1 + 1) * (y2 - y1 + 1)``), so small faces overlap more than without it (two 20 px
    boxes 8.3 px apart: IoU 0.413, one suppressed at 0.4; 0.392 without, the face restored twice).
    This is ``torchvision.ops.nms`` of the boxes with x2 and y2 moved out by one pixel.

    Ours, not torchvision's: importing ``torchvision.ops`` imports ``torch._dynamo`` (seconds of
    CPU and ~165 MiB at every start). The boxes, by score, go in blocks of :data:`NMS_BLOCK`: the
    IoU of a block's live boxes with every live box from there on (no ``n x n`` matrix: the
    detector passes up to 5000 candidates), greedy order within the block, then what its kept
    boxes suppress further down. (A loop step per kept box took seconds for thousands.)"""
    n = int(scores.shape[0])
    if boxes.dtype in (torch.float16, torch.bfloat16):
        boxes = boxes.float()  # (areas over 65504 were inf in half: IoU NaN, nothing suppressed; review23)
    order = scores.argsort(descending=True, stable=True)
    x1, y1, x2, y2 = (c.contiguous() for c in boxes[order].unbind(1))
    x2, y2 = x2 + 1, y2 + 1  # (the "+1": every width, height and overlap below gains it)
    area = (x2 - x1) * (y2 - y1)
    # torchvision compares its float IoU with the double threshold: "> threshold" is "> the
    # largest value of the boxes' dtype not above it" (one compare in that dtype, no double copy
    # of the matrix). A NaN IoU (two boxes of no pixels: x2 = x1 - 1) suppresses nothing, there as here.
    t = torch.tensor(iou_threshold, dtype=boxes.dtype)
    if t.item() > iou_threshold:
        t = torch.nextafter(t, torch.full_like(t, -math.inf))
    limit = t.item()
    alive = torch.ones(n, dtype=torch.bool, device=boxes.device)  # not suppressed (by position in order)
    for s in range(0, n, NMS_BLOCK):
        cols = s + alive[s:].nonzero().flatten()  # live boxes from this block on, the block's own first
        rows = cols[: int(alive[s : s + NMS_BLOCK].sum())]
        if not len(rows):
            continue

        def pair(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return v[cols, None], v[None, rows]

        # [live box, block box]: reductions over the block run along contiguous rows
        (ax1, bx1), (ay1, by1), (ax2, bx2), (ay2, by2), (aa, ba) = map(pair, (x1, y1, x2, y2, area))
        inter = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp_min_(0)
        inter *= (torch.minimum(ay2, by2) - torch.maximum(ay1, by1)).clamp_min_(0)
        hit = (inter / (ba + aa - inter) > limit) & (cols[:, None] > rows[None, :])
        # greedy within the block: a box stays if no box kept before it overlaps it. Iterated
        # from "all stay" this settles in at most len(rows) rounds (position k is right from
        # round k on), and the greedy answer is its only fixed point
        inner = hit[: len(rows)]
        keep = torch.ones(len(rows), dtype=torch.bool, device=boxes.device)
        while not torch.equal(nxt := ~(inner & keep).any(1), keep):
            keep = nxt
        alive[cols[(hit & keep).any(1)]] = False
    return order[alive.nonzero().flatten()]


def _cut(boxes: torch.Tensor, window, frame_size, tol: float) -> torch.Tensor:
    """``[n]`` bool: which ``boxes`` (frame px) the ``window`` ``(x1, y1, x2, y2)`` does not hold
    whole, ``tol`` px inside its edges; an edge that is the frame's own (``frame_size`` ``(w, h)``)
    cuts nothing."""
    x1, y1, x2, y2 = window
    w, h = frame_size
    cut = torch.zeros(len(boxes), dtype=torch.bool)
    if len(boxes):
        if x1 > 0:
            cut |= boxes[:, 0] < x1 + tol
        if y1 > 0:
            cut |= boxes[:, 1] < y1 + tol
        if x2 < w:
            cut |= boxes[:, 2] > x2 - tol
        if y2 < h:
            cut |= boxes[:, 3] > y2 - tol
    return cut


def landmark_misfit(landmarks: torch.Tensor) -> torch.Tensor:
    """How badly each face's five landmarks ``[n,5,2]`` fit the alignment template: the RMS
    distance between the points and the template placed on them by the best similarity (Umeyama,
    no reflection), in inter-ocular distances of that fitted template. ``[n]`` float32.

    Real upright faces measure 0.07 (median) and up to 0.57 (small and profile faces); the
    landmarks RetinaFace gives some sideways faces are collapsed or relabelled into shapes no
    rotation of the template matches (up to 6). Upside-down faces often get a plausible upright
    shape in the wrong place, which only :meth:`FaceDetector.turn_margin` catches."""
    from stream_gpen.faces._align import reference_points, rotation_fit

    p = landmarks.double()
    ref = reference_points(256)
    rc = ref - ref.mean(0)
    pc = p - p.mean(1, keepdim=True)
    # the similarity template -> points: rotation from the SVD of the cross-covariance, then scale
    cov = pc.transpose(1, 2) @ rc / 5
    r, signed = rotation_fit(cov)
    k = signed / (rc**2).sum(1).mean()
    fit = k[:, None, None] * (rc @ r.transpose(1, 2))
    rms = ((fit - pc) ** 2).sum(2).mean(1).sqrt()
    iod = k * torch.linalg.norm(ref[0] - ref[1])
    return (rms / iod.clamp_min(1e-9)).float()


def box_zoom(landmarks: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """How far the crop aligned on each face's landmarks ``[n,5,2]`` zooms into its box ``[n,4]``
    (both in frame pixels): the box's side (square root of its area) in crop pixels over the crop's
    side. ``[n]`` float32, independent of the crop size.

    Real upright faces measure 0.44-0.63 (the template frames the whole face with a margin). The
    landmarks RetinaFace misplaces on an upside-down or sideways face can have a plausible shape
    that the crop, turned, scores no more face-like (:meth:`FaceDetector.turn_margin`), yet sit
    close together inside the box: the crop then shows half the face, zoomed (0.76-1.57)."""
    from stream_gpen.faces._align import estimate_affines

    s = 256
    scale = torch.linalg.det(estimate_affines(landmarks.float().cpu(), size=s)[:, :, :2].double()).abs().sqrt()
    b = boxes.double().cpu()
    side = ((b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)).sqrt()
    return (side * scale / s).float()


#: the detector's own score threshold (facexlib's): faces above it are found and tracked
DETECT_SCORE = 0.8
#: the score a face needs to be restored when first seen (GPEN's ``face_enhancement.py``; GFPGAN
#: and CodeFormer, through facexlib's helper, ask 0.97)
DEFAULT_MIN_SCORE = 0.9
#: the video pipeline's detector returns faces down to this fraction of ``min_face`` as well
#: (``small_faces``): a tracked face found that small at a detection ends there (it shrank under
#: the limit; just under it, once the re-detect on the next frame confirms it) instead of missing
#: it. A face shrinking 13% a frame is still at half the limit at the
#: detection after the one that last found it over it (``detect_every`` 5)
SMALL_FACES = 0.5


def check_min_score(min_score) -> float:
    if isinstance(min_score, bool) or not isinstance(min_score, numbers.Real) or not 0.0 <= min_score < 1.0:
        raise InvalidInputError(f"min_score must be a number in [0, 1), got {min_score!r}")
    return float(min_score)


def display_side(boxes: torch.Tensor, pixel_aspect: float = 1.0) -> torch.Tensor:
    """``[n]``: the shorter side of each box ``[n,4]`` (frame px) in display px, as a player shows
    the frame: each pixel stretched along its shorter side to a square (``pixel_aspect``, its width
    over its height: 2 doubles widths, 0.5 heights; HDV's 1440x1080 at 4:3 is 1920x1080 on screen).
    ``min_face`` is a size on screen, so an anamorphic frame (DV, HDV, a TV capture: SAR 2:1 stores
    a face half as wide) keeps the faces its square-pixel copy keeps. A frame turned a quarter turn
    has the inverse aspect."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.minimum(w * max(pixel_aspect, 1.0), h * max(1.0 / pixel_aspect, 1.0))


def _check_aspect(pixel_aspect) -> float:
    if not (isinstance(pixel_aspect, (int, float)) and math.isfinite(pixel_aspect) and pixel_aspect > 0):
        raise InvalidInputError(f"pixel_aspect must be a positive finite number, got {pixel_aspect!r}")
    return float(pixel_aspect)


def _input_uint8(frames: list[torch.Tensor], sh: int, sw: int) -> torch.Tensor:
    """The network input ``[B,3,sh,sw]`` float32 (channels-last) for CPU frames: each uint8
    ``[H,W,3]`` RGB frame (or row-strided region view) resized while still uint8 by torch's
    antialiased bilinear kernel (the same filter as the float path, in fixed point and SIMD on
    the channels-last layout a HWC frame already has), then flipped to BGR minus the training
    mean into the batch."""
    # channels-last like the CPU network (and like the resized HWC frames: a plain copy per frame)
    x = torch.empty(len(frames), sh, sw, 3, dtype=torch.float32).permute(0, 3, 1, 2)
    mean = torch.tensor(_MEAN_BGR, dtype=torch.float32).view(3, 1, 1)
    for i, f in enumerate(frames):
        t = f.cpu().permute(2, 0, 1)[None]
        if not t.is_contiguous(memory_format=torch.channels_last):
            t = t.contiguous(memory_format=torch.channels_last)  # a region view: one small copy
        if tuple(t.shape[-2:]) != (sh, sw):
            t = F.interpolate(t, size=(sh, sw), mode="bilinear", align_corners=False, antialias=True)
        torch.sub(t[0].flip(0), mean, out=x[i])
    return x
