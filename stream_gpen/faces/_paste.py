"""Paste-back: inverse-warp restored crops into the frame over each face's ROI only."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from stream_gpen.errors import InvalidInputError
from stream_gpen.faces._align import apply_affines, face_scale, invert_affines, use_cv2


def feather_mask(coords_x: torch.Tensor, coords_y: torch.Tensor, size: int, *, border: float, feather: float) -> torch.Tensor:
    """Soft mask in crop coordinates: 0 within ``border*S`` of the crop edge, rising to 1 over
    ``feather*S`` with a smoothstep (C1-continuous, so no visible edge at either end of the ramp).

    Computed analytically at the sample positions instead of warping a mask image: no extra
    interpolation and no memory for an ``S x S`` mask per face.
    """
    edge = torch.minimum(
        torch.minimum(coords_x, (size - 1) - coords_x), torch.minimum(coords_y, (size - 1) - coords_y)
    )
    t = ((edge - border * size) / max(feather * size, 1e-6)).clamp_(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


# The face itself inside GPEN's crop (in units of S): an ellipse around the aligned template's
# landmarks (eyes at y 0.47, mouth at 0.72, x 0.39..0.61) wide enough for forehead, cheeks and
# chin, which the detector's box spans. Full weight out to 0.9 of the ellipse, smoothstep to 0 at
# 1.25: the ramp keeps the hand-over between two faces' renderings as soft as the feather.
#: Faces whose crop squares differ by less than this factor in size are stacked by identity
#: when :func:`paste_faces` is given ``ids``: a box jitters by a few percent from frame to frame,
#: and under 10% size says little about which face is nearer.
SAME_SIZE = 1.1
#: A face :func:`paste_faces` is told is partly hidden (``under``) is stacked as if this much
#: smaller: two faces of one size measure up to 10-15% apart from their landmarks (hunt 26: 242
#: vs 218 px as one crossed the other), and the hidden one goes under the face in front of it.
UNDER_SIZE = 1.25

_CORE_CENTRE = (0.5, 0.56)
_CORE_AXES = (0.23, 0.30)
_CORE_RAMP = (0.9, 1.25)


def face_core(coords_x: torch.Tensor, coords_y: torch.Tensor, size: int) -> torch.Tensor:
    """Soft weight of the face itself (not the background around it) at crop coordinates: 1 over
    the face, 0 outside :data:`_CORE_RAMP`'s outer ellipse."""
    dx = (coords_x - _CORE_CENTRE[0] * (size - 1)) / (_CORE_AXES[0] * size)
    dy = (coords_y - _CORE_CENTRE[1] * (size - 1)) / (_CORE_AXES[1] * size)
    r = torch.sqrt(dx * dx + dy * dy)
    t = ((_CORE_RAMP[1] - r) / (_CORE_RAMP[1] - _CORE_RAMP[0])).clamp_(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _crop_extents(affines: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(inverse affines, lo, hi)``: each ``size`` crop's bounding box in the frame (float64
    ``affines`` frame -> crop; ``lo``/``hi`` ``[n, 2]`` floored / ceiled corners, on the CPU)."""
    inv = invert_affines(affines)
    corners = torch.tensor([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], dtype=torch.float64,
                           device=affines.device)
    fc = apply_affines(inv, corners.expand(len(affines), 4, 2))  # [n,4,2] crop corners in the frame
    return inv, fc.amin(dim=1).floor().cpu(), fc.amax(dim=1).ceil().cpu()


def paste_areas(affines: torch.Tensor, size: int, height: int, width: int, *, margin: int = 2) -> list[tuple]:
    """The frame areas ``[(x0, y0, x1, y1), ...]`` (ends exclusive, within the frame) that
    :func:`paste_faces` may write for faces cut with ``affines`` (frame -> crop, ``[n,2,3]``) at
    crop size ``size``: each crop's bounding box in the frame, as paste_faces reads and writes it,
    ``margin`` pixels wider. Every pixel outside them keeps its exact value."""
    affines = torch.as_tensor(affines, dtype=torch.float64).cpu()
    if affines.numel() == 0:
        return []
    _, lo, hi = _crop_extents(affines, size)
    out = []
    for (ax, ay), (bx, by) in zip(lo.tolist(), hi.tolist()):
        x0, y0 = max(int(ax) - margin, 0), max(int(ay) - margin, 0)
        x1, y1 = min(int(bx) + 1 + margin, width), min(int(by) + 1 + margin, height)
        if x0 < x1 and y0 < y1:
            out.append((x0, y0, x1, y1))
    return out


def paste_faces(
    frame: torch.Tensor,
    crops: torch.Tensor,
    affines: torch.Tensor,
    *,
    masks: torch.Tensor | None = None,
    border: float = 0.04,
    feather: float = 0.12,
    antialias: bool = True,
    backend: str = "auto",
    strength: float = 1.0,
    ids: list[int] | None = None,
    under: list[bool] | None = None,
    originals: torch.Tensor | None = None,
    fine_shrink: float = 0.0,
    fine_sigma: torch.Tensor | list[float] | None = None,
) -> torch.Tensor:
    """Blend restored ``crops`` ``[n,3,S,S]`` uint8 into ``frame`` ``[H,W,3]`` uint8, in place.

    ``frame`` may also be ``uint16`` on the full 16-bit scale (a >8-bit source's ``frame.hi``,
    rgb48): the crops are scaled by 257 (8-bit ``v`` -> ``v * 257``) and blended at 16-bit
    precision with the same masks, so the face matches the 8-bit paste and the rest of the frame
    keeps its exact values. ``crops`` may be float32 on the same 0..255 scale (a restorer's output
    before quantisation, :meth:`FaceRunner.restore_fine`): a uint16 frame then gets the face at
    16-bit precision instead of 8-bit steps.

    * ``affines`` ``[n,2,3]`` map frame -> crop (the ones used to cut the crops).
    * Only each face's ROI (the bounding box of its crop in the frame) is read and written;
      pixels where every mask is 0 keep their exact values.
    * ``border`` / ``feather`` (fractions of S): the mask is 0 on the outer ``border`` and ramps
      to 1 over ``feather``. A wider feather hides colour differences between the restored face
      and the frame better but blends more of the original (unrestored) face back in at the edge;
      ``border`` must cover the black fill a crop gets where it sticks out of the frame.
    * ``masks`` ``[n,S,S]`` float in [0,1] (e.g. a face-parsing mask) multiply the feather mask.
    * ``antialias``: a face more than twice smaller in the frame than S is first downscaled with
      an area filter to twice its frame size (:func:`prefilter_size`), so the bilinear inverse
      warp does not alias the model's fine texture into moire and shimmer. This is the job GPEN's
      3x3 blur for faces under 100 px does, scaled to the actual ratio. Twice, not once: a box
      of one frame pixel followed by the bilinear warp's own two-pixel tent blurs away about
      half the restored detail (measured on real photos with an identity model: detail 11.7 vs
      GPEN's 20.2 on 120-140 px faces at S=512); at twice the frame size the two filters
      together span about one frame pixel, which keeps GPEN's detail on medium faces.
    * Overlapping faces are composited in order of increasing size, each over the result so far
      with its own soft mask, and the larger (usually nearer) face is on top where the faces
      themselves overlap. A crop is about twice its face, though, so a smaller face beside a
      larger one (a child by a parent's temple, a background person next to a selfie) lies in the
      larger crop's full-weight area: there the larger face's mask is lowered over the smaller
      face itself (:func:`face_core`, times the smaller face's own mask) wherever that lies
      outside the larger face itself, so every face keeps its own restoration (GPEN's
      face-parsing paste-back gets the same from its "larger mask wins" merge). Every transition
      stays soft.
    * ``ids``: a steady identity per face (video: the track ids). Faces whose sizes are within
      :data:`SAME_SIZE` of each other are then stacked by identity (the older track on top)
      instead of by size: two faces of about the same size swap places with every frame's box
      jitter otherwise, and where they really overlap the shared region flickers between them.
    * ``under``: per face, whether it is partly hidden now (video: ``Track.occluded``, a face
      passing in front of it). It is stacked as if :data:`UNDER_SIZE` times smaller, so under the
      faces of about its size whatever its identity: its crop is mostly the face in front aligned
      on the hidden face's points, and a restorer paints a face there, over the front face's eyes
      and mouth.
    * ``strength`` in [0, 1]: the frame keeps ``1 - strength`` of its own pixels
      (``out = frame + strength * (paste - frame)``, ``paste`` the plain paste of all the faces;
      one face: its mask scaled), so 0 gives the frame back exactly and 1 is the plain paste, also
      where faces' squares overlap. Blending here, not in crop space, keeps the original share
      free of the crop's round trip (which would blur a face larger than S).
    * ``backend``: ``"torch"`` samples the crop and the analytic mask with ``grid_sample`` (any
      device); ``"cv2"`` (CPU frames only) warps the crop and a precomputed mask image with
      OpenCV's SIMD ``warpAffine``, several times faster on CPU and within a grey level of the
      torch result; ``"auto"`` = cv2 for CPU frames, torch otherwise.
    * ``originals``: the crops as they were cut (what the restorer was given, ``[n,3,S,S]``, uint8
      or float32 on the 0..255 scale), for a restorer that filters a face rather than repaints it
      (``residual = True``: classic). The face pasted is the restored crop warped back plus the
      frame's own band that the round trip through the crop loses (the frame minus its crop
      warped back), i.e. the frame plus the restorer's change warped: a pixel it left alone keeps
      the frame's value and detail. The warp into the crop and back costs a face about half its
      fine detail by itself (Laplacian variance, a restorer that changes nothing: 44% kept on
      512 px faces tilted 7 degrees), which a repainting model (GPEN) does not mind, as it draws
      the detail anew, and a filter cannot give back. Blended with the same masks, order and
      ``strength``; where faces' squares overlap, each face's band is the original frame's.
    * ``fine_shrink`` (with ``originals``): that band is soft-thresholded at this many times the
      face's noise, ``fine_sigma``. 0 keeps it whole; a restorer that removes noise needs it, or
      the noise finer than the round trip passes (classic on noise sigma 12: +2.1 dB at 0, +7.8 dB
      with the plain paste). Raising it thins noise and fine texture alike.
    * ``fine_sigma`` ``[n]`` (with ``fine_shrink``): each face's noise std on the 0..255 scale,
      where the restorer was told it (classic's fixed ``noise_sigma``: 0 keeps the band whole,
      as classic keeps its crop's); ``None`` estimates it from the frame around each face, over
      at most the central 1024 px square of its ROI
      (:func:`stream_gpen.models.classic.estimate_noise_hwc`, OpenCV on the CPU). Not from the
      crop: its resampling hides the frame's finest noise, the very band thinned here (noise
      std 12 measured 7.9 in the frame, 3.0 in a crop turned 7 degrees).

    Returns ``frame``.
    """
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype not in (torch.uint8, torch.uint16):
        raise InvalidInputError(f"frame must be uint8 (or uint16 rgb48) [H,W,3], got {frame.dtype} {tuple(frame.shape)}")
    if crops.ndim != 4 or crops.shape[1] != 3 or crops.shape[2] != crops.shape[3]:
        raise InvalidInputError(f"crops must be [n,3,S,S], got {tuple(crops.shape)}")
    if crops.dtype not in (torch.uint8, torch.float32):
        raise InvalidInputError(f"crops must be uint8 or float32 (0..255), got {crops.dtype}")
    n, _, size, _ = crops.shape
    affines = torch.as_tensor(affines)
    if affines.shape != (n, 2, 3):
        raise InvalidInputError(f"affines must be [{n},2,3] for {n} crops, got {tuple(affines.shape)}")
    if ids is not None and len(ids) != n:
        raise InvalidInputError(f"ids must give one identity per crop ({n}), got {len(ids)}")
    if under is not None and len(under) != n:
        raise InvalidInputError(f"under must give one flag per crop ({n}), got {len(under)}")
    if masks is not None and tuple(masks.shape) != (n, size, size):
        raise InvalidInputError(f"masks must be [{n},{size},{size}], got {tuple(masks.shape)}")
    if originals is not None and tuple(originals.shape) != tuple(crops.shape):
        raise InvalidInputError(f"originals must be the crops as cut, {tuple(crops.shape)}, got {tuple(originals.shape)}")
    if isinstance(fine_shrink, bool) or not isinstance(fine_shrink, (int, float)) or not 0.0 <= fine_shrink <= 100.0:
        raise InvalidInputError(f"fine_shrink must be a number in [0, 100], got {fine_shrink!r}")
    if fine_sigma is not None and tuple(torch.as_tensor(fine_sigma).shape) != (n,):
        raise InvalidInputError(f"fine_sigma must give one noise level per crop ({n}), "
                                f"got shape {tuple(torch.as_tensor(fine_sigma).shape)}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise InvalidInputError(f"strength must be a number in [0, 1], got {strength!r}")
    cv2_path = use_cv2(backend, frame.device)
    if n == 0 or strength == 0:
        return frame
    sigmas = None
    if fine_sigma is not None:
        sigmas = torch.as_tensor(fine_sigma, dtype=torch.float64).cpu()
        if not bool(torch.isfinite(sigmas).all()) or bool((sigmas < 0).any()):
            raise InvalidInputError(f"fine_sigma must be noise levels >= 0 (0..255 scale), got {sigmas.tolist()}")
        sigmas = sigmas.tolist()
    dev = frame.device
    h, w, _ = frame.shape
    affines = affines.to(device=dev, dtype=torch.float64)
    inv, lo, hi = _crop_extents(affines, size)
    # crop px per frame px, from the linear part's determinant (similarity: uniform scale)
    scale = face_scale(affines).cpu()
    extent = hi[:, 0] - lo[:, 0] + hi[:, 1] - lo[:, 1]
    order = torch.argsort(extent).tolist()
    if ids is not None or under is not None:
        order = _steady_order(order, extent.tolist(), [int(x) for x in ids] if ids is not None else [0] * n,
                              [bool(x) for x in under] if under is not None else None)
    cores = _core_boxes(inv, size)
    # Several faces at a strength under 1: composite them at full strength, then blend the whole
    # with the original once. Scaling each face's mask instead would blend a face over the
    # previous ones' blend where their squares overlap, leaving (1 - s)^2 of the original there.
    whole = strength != 1 and n > 1
    s_mask = 1.0 if whole else float(strength)
    span = [w, h, 0, 0] if whole else None
    # (a residual paste of several faces adds each face's change to the frame as it was, not to
    # the faces pasted before it: where their squares overlap, a change is not applied twice)
    original = frame.clone() if whole or (originals is not None and n > 1) else None
    for done, i in enumerate(order):
        x0, y0 = max(int(lo[i, 0]), 0), max(int(lo[i, 1]), 0)
        x1, y1 = min(int(hi[i, 0]) + 1, w), min(int(hi[i, 1]) + 1, h)
        if x0 >= x1 or y0 >= y1:
            continue
        if span is not None:
            span[:] = [min(span[0], x0), min(span[1], y0), max(span[2], x1), max(span[3], y1)]
        a = affines[i]
        k = float(scale[i])
        keep = _keep_smaller_faces(i, order[:done], affines, masks, (x0, y0, x1, y1), cores, size, border, feather)
        if s_mask != 1:
            keep = keep * s_mask if keep is not None else s_mask
        # a residual paste: the frame's own pixels under the face, before any face (0..255 scale)
        own = tau = None
        if originals is not None:
            own = (original if original is not None else frame)[y0:y1, x0:x1]
            tau = _fine_tau(own, float(fine_shrink), sigmas[i] if sigmas is not None else None)
        if cv2_path:
            if isinstance(keep, torch.Tensor):
                keep = keep.numpy()
            _paste_one_cv2(frame[y0:y1, x0:x1], crops[i], masks[i] if masks is not None else None, a, x0, y0,
                           size, border, feather, k if antialias else 1.0, keep,
                           fine=(originals[i], own, tau) if own is not None else None)
            continue
        fine = None
        if own is not None:
            own = own.float()
            fine = (own.div_(257.0) if frame.dtype == torch.uint16 else own, tau)
        crop = crops[i : i + 1] if fine is None else torch.cat([crops[i : i + 1].float(), originals[i : i + 1].float()])
        eff = prefilter_size(size, k) if antialias else size
        if eff != size:
            crop = F.interpolate(crop.float(), size=(eff, eff), mode="area")
        # float32 sampling grid (exact enough: < 1e-3 px even in 4K frames) and grid_sample's
        # vectorised bilinear kernel; this is the hot loop of paste-back.
        af = a.to(torch.float32)
        ys = torch.arange(y0, y1, dtype=torch.float32, device=dev).view(-1, 1)
        xs = torch.arange(x0, x1, dtype=torch.float32, device=dev).view(1, -1)
        cx = af[0, 0] * xs + af[0, 1] * ys + af[0, 2]
        cy = af[1, 0] * xs + af[1, 1] * ys + af[1, 2]
        m = feather_mask(cx, cy, size, border=border, feather=feather)
        if masks is not None:
            mi = masks[i].to(device=dev, dtype=torch.float32)[None, None]
            m = m * _sample(mi, cx, cy, size)[0, 0]
        if keep is not None:
            m = m * keep
        if eff != size:
            # pixel-centre convention: q' = (q + 0.5) * eff/S - 0.5
            r = eff / size
            sx, sy = (cx + 0.5) * r - 0.5, (cy + 0.5) * r - 0.5
        else:
            sx, sy = cx, cy
        face = _sample(crop.float(), sx, sy, eff).permute(0, 2, 3, 1)  # [1 or 2,h,w,3]
        face = face[0] if fine is None else _with_fine(face[0], face[1], *fine)
        _blend(frame[y0:y1, x0:x1], face, m)
    if span is not None and span[0] < span[2] and span[1] < span[3]:
        x0, y0, x1, y1 = span
        roi, base = frame[y0:y1, x0:x1], original[y0:y1, x0:x1].float()
        top = 65535.0 if frame.dtype == torch.uint16 else 255.0
        # exact where no face changed a pixel (float32 holds every 8/16-bit value)
        roi.copy_((base + (roi.float() - base) * float(strength)).add_(0.5).floor_().clamp_(0, top))
    return frame


def _steady_order(order: list[int], extent: list[float], ids: list[int], under: list[bool] | None = None) -> list[int]:
    """``order`` (faces by increasing size) with each run of faces within :data:`SAME_SIZE` of the
    run's smallest face re-ordered by identity, the lowest id last (pasted last: on top), the faces
    flagged ``under`` (occluded now) first (pasted first: underneath). A face flagged ``under``
    counts :data:`UNDER_SIZE` times smaller."""
    flag = under if under is not None else [False] * len(ids)
    extent = [e / UNDER_SIZE if f else e for e, f in zip(extent, flag)]
    order = sorted(order, key=lambda j: extent[j])
    out: list[int] = []
    run: list[int] = []
    for i in order + [None]:
        if i is None or (run and extent[i] > extent[run[0]] * SAME_SIZE):
            out += sorted(run, key=lambda j: (not flag[j], -ids[j]))
            run = []
        if i is not None:
            run.append(i)
    return out


def _core_boxes(inv: torch.Tensor, size: int) -> list[tuple[int, int, int, int]]:
    """Frame bounding box ``(x0, y0, x1, y1)`` (end exclusive) of each face's :func:`face_core`."""
    (cx, cy), (ax, ay), r = _CORE_CENTRE, _CORE_AXES, _CORE_RAMP[1]
    x_lo, x_hi = cx * (size - 1) - r * ax * size, cx * (size - 1) + r * ax * size
    y_lo, y_hi = cy * (size - 1) - r * ay * size, cy * (size - 1) + r * ay * size
    box = torch.tensor([[x_lo, y_lo], [x_hi, y_lo], [x_lo, y_hi], [x_hi, y_hi]], dtype=torch.float64, device=inv.device)
    fc = apply_affines(inv, box.expand(len(inv), 4, 2))
    lo, hi = fc.amin(dim=1).floor().long().tolist(), fc.amax(dim=1).ceil().long().tolist()
    return [(a[0], a[1], b[0] + 1, b[1] + 1) for a, b in zip(lo, hi)]


def _keep_smaller_faces(i, pasted, affines, masks, roi, cores, size, border, feather):
    """Factor ``[h,w]`` (float32, on the frame's device) for face ``i``'s mask over its ROI that
    keeps the faces already ``pasted`` (smaller ones) where they lie outside face ``i`` itself:
    ``prod_j (1 - core_j * m_j * (1 - core_i))``; ``None`` where no smaller face is in the ROI.

    Computed with the analytic masks (both backends), only over each smaller face's core box."""
    x0, y0, x1, y1 = roi
    dev = affines.device
    keep = None
    for j in pasted:
        bx0, by0 = max(cores[j][0], x0), max(cores[j][1], y0)
        bx1, by1 = min(cores[j][2], x1), min(cores[j][3], y1)
        if bx0 >= bx1 or by0 >= by1:
            continue
        ys = torch.arange(by0, by1, dtype=torch.float32, device=dev).view(-1, 1)
        xs = torch.arange(bx0, bx1, dtype=torch.float32, device=dev).view(1, -1)
        aj, ai = affines[j].to(torch.float32), affines[i].to(torch.float32)
        cx = aj[0, 0] * xs + aj[0, 1] * ys + aj[0, 2]
        cy = aj[1, 0] * xs + aj[1, 1] * ys + aj[1, 2]
        protect = face_core(cx, cy, size) * feather_mask(cx, cy, size, border=border, feather=feather)
        if masks is not None:
            protect = protect * _sample(masks[j].to(device=dev, dtype=torch.float32)[None, None], cx, cy, size)[0, 0]
        own = face_core(ai[0, 0] * xs + ai[0, 1] * ys + ai[0, 2], ai[1, 0] * xs + ai[1, 1] * ys + ai[1, 2], size)
        if keep is None:
            keep = torch.ones(y1 - y0, x1 - x0, dtype=torch.float32, device=dev)
        keep[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0] *= 1.0 - protect * (1.0 - own)
    return keep


#: The side of the square at the centre of a face's ROI that its noise is estimated over (the
#: face itself; a 2300 px ROI's 5 Mpx cost more than the rest of the paste, for no better median).
_NOISE_WINDOW = 1024


def _fine_tau(own: torch.Tensor, shrink: float, sigma: float | None):
    """The threshold (0..255 scale) of a residual paste's band over ``own`` (the frame's ROI,
    uint8 or uint16): ``shrink`` times the face's noise, ``sigma`` where given, else estimated
    from ``own`` (on the CPU with OpenCV, :func:`estimate_noise_hwc`; on a GPU with torch, a 0-dim
    tensor: no device sync per face). 0 where the ROI is under 3 px in a dimension."""
    if shrink <= 0:
        return 0.0
    if sigma is not None:
        return shrink * sigma
    from stream_gpen.models.classic import estimate_noise, estimate_noise_hwc

    unit = 257.0 if own.dtype == torch.uint16 else 1.0
    h, w = own.shape[0], own.shape[1]
    cy, cx = max(h // 2 - _NOISE_WINDOW // 2, 0), max(w // 2 - _NOISE_WINDOW // 2, 0)
    own = own[cy : cy + _NOISE_WINDOW, cx : cx + _NOISE_WINDOW]
    if own.device.type == "cpu":
        return shrink * estimate_noise_hwc(own.numpy()) / unit
    if own.shape[0] < 3 or own.shape[1] < 3:
        return 0.0
    return estimate_noise(own.permute(2, 0, 1)[None].float())[0] * (shrink / unit)


def _with_fine(face, cut, own, tau):
    """A residual paste's face (``[h,w,3]`` float32, 0..255 scale; torch tensors or numpy arrays):
    the restored crop warped back (``face``) plus the frame's band its crop's round trip lost
    (``own``, the frame's pixels, minus ``cut``, the crop as cut warped back), soft-thresholded at
    ``tau`` (:func:`_fine_tau`; a float, or a 0-dim tensor on a GPU). In place: ``face`` is returned, ``cut`` overwritten (a few
    element-wise passes, no full-size temporaries but one where ``tau > 0``)."""
    cut -= own  # (minus the band)
    if not isinstance(tau, float) or tau > 0:
        cut -= cut.clip(-tau, tau)  # soft threshold: sign(b) * max(|b| - tau, 0)
    face -= cut
    return face


def _blend(roi: torch.Tensor, face: torch.Tensor, m: torch.Tensor) -> None:
    """``roi`` (uint8 [h,w,3], in place) = round(roi + (face - roi) * m) where m > 0.

    A uint16 ``roi`` (rgb48) takes ``face`` (0..255) scaled by 257; float32 holds every 16-bit
    value exactly, so unmasked and fully masked pixels come out exact."""
    base = roi.float()
    m3 = m.unsqueeze(-1)
    top = 255.0
    if roi.dtype == torch.uint16:
        face = face * 257.0
        top = 65535.0
    # where m == 0, base + 0 rounds back to base exactly (float32 holds every 8/16-bit value), so
    # the whole ROI is written without a masked select (which torch does not build for uint16 on
    # every device)
    out = (base + (face - base) * m3).add_(0.5).floor_().clamp_(0, top)
    roi.copy_(out)


_MASK_CACHE: dict[tuple[int, float, float], np.ndarray] = {}


def _mask_image(size: int, border: float, feather: float):
    """The feather mask at every crop pixel, ``[S,S]`` float32 (cached: one per setting)."""
    key = (size, float(border), float(feather))
    if key not in _MASK_CACHE:
        g = torch.arange(size, dtype=torch.float32)
        gy, gx = torch.meshgrid(g, g, indexing="ij")
        _MASK_CACHE[key] = feather_mask(gx, gy, size, border=border, feather=feather).numpy()
    return _MASK_CACHE[key]


def _paste_one_cv2(roi, crop, mask, a, x0, y0, size, border, feather, k, keep=None, *, fine=None) -> None:
    """Paste one face into ``roi`` (a CPU uint8 view of the frame, in place) with OpenCV: the crop
    (area-downscaled first for a face much smaller than S, as in the torch path) and the mask
    image are warped with the frame -> crop affine, offset to the ROI, as an inverse map; the
    blend is one SIMD pass (``blendLinear``) into the ROI, exact where the mask is 0. ``keep``
    (``[h,w]`` array or a number) multiplies the warped mask. ``fine``: ``(cut, own, tau)`` for a
    residual paste (:func:`paste_faces`' ``originals``; :func:`_with_fine`), ``own`` the frame's
    ROI before any face."""
    import cv2

    a64 = a.to(torch.float64).cpu().numpy()
    m_roi = a64.copy()
    m_roi[:, 2] += a64[:, 0] * x0 + a64[:, 1] * y0  # ROI pixel -> crop pixel
    dsize = (roi.shape[1], roi.shape[0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    img = np.ascontiguousarray(crop.permute(1, 2, 0).cpu().numpy()) if fine is None else None
    mimg = _mask_image(size, border, feather)
    if mask is not None:
        mimg = mimg * mask.to(torch.float32).cpu().numpy()
    m = cv2.warpAffine(mimg, m_roi, dsize, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if keep is not None:
        m = (m * keep).astype(np.float32, copy=False)
    mf = m_roi
    eff = prefilter_size(size, k)
    if eff != size:
        r = eff / size  # pixel-centre convention: q' = (q + 0.5) * r - 0.5
        mf = m_roi * r
        mf[:, 2] += 0.5 * r - 0.5

    def warped(crop_img):
        if eff != size:
            crop_img = cv2.resize(crop_img, (eff, eff), interpolation=cv2.INTER_AREA)
        return cv2.warpAffine(crop_img, mf, dsize, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))

    base = roi.numpy()
    if fine is not None:
        # a residual paste: both crops warped at float precision (8-bit warps would round the
        # band to whole codes, which a threshold under a code then barely thins; OpenCV's float
        # warp costs about what its 8-bit one does), the band added in place (:func:`_with_fine`)
        cut, own, tau = fine
        face = warped(_hwc_float32(crop))
        cut_w = warped(_hwc_float32(cut))
        own = own.numpy()
        face = _with_fine(face, cut_w, own / np.float32(257.0) if own.dtype == np.uint16 else own, tau)
    if base.dtype == np.uint16:
        # rgb48 frame (a >8-bit source's ``hi``): warp the crop at float precision on the 16-bit
        # scale and blend in float32 (exact for every 16-bit value); pixels with m == 0 are kept.
        face = (warped(img.astype(np.float32)) if fine is None else face) * np.float32(257.0)
        b = base.astype(np.float32)
        m3 = m[..., None]
        out = np.floor(b + (face - b) * m3 + 0.5).clip(0, 65535).astype(np.uint16)
        np.copyto(base, out, where=m3 > 0)
        return
    if fine is not None:
        # float32 blend (a SIMD pass, cheaper than the 8-bit one), then rounded and saturated into
        # the ROI: where m == 0, (base * 1) / (1 + 1e-5) rounds back to base exactly; the clamp at
        # 0 keeps convertScaleAbs's absolute value out of it
        out = cv2.blendLinear(face, base.astype(np.float32), m, 1.0 - m)
        face = cv2.convertScaleAbs(cv2.max(out, 0.0, dst=out), dst=base)
    else:
        if img.dtype != np.uint8:  # float crops into an 8-bit frame: 8-bit is all it can hold
            img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        # Blended straight into the frame's ROI view (an element-wise op, so in place is safe):
        # where m == 0, blendLinear's (face*0 + base*1) / (1 + 1e-5) rounds back to base exactly
        # (pinned by the tests), so no masked copy is needed; that copy cost more than the blend.
        face = cv2.blendLinear(warped(img), base, m, 1.0 - m, dst=base)
    if not np.shares_memory(face, base):  # OpenCV had to allocate (it does not for ROI views)
        np.copyto(base, face)


def _hwc_float32(crop: torch.Tensor) -> np.ndarray:
    """``crop`` ``[3,S,S]`` as a contiguous float32 ``[S,S,3]`` array: interleaved by OpenCV's
    SIMD ``merge`` in the crop's own dtype, then converted (3x faster than numpy's transposed
    copy into float32 for a 2048 crop)."""
    import cv2

    return cv2.merge(list(np.ascontiguousarray(crop.cpu().numpy()))).astype(np.float32, copy=False)


def _sample(img: torch.Tensor, x: torch.Tensor, y: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear samples of ``img`` ``[b,C,size,size]`` at pixel coords ``x, y`` ``[h,w]``; zeros
    outside (like ``cv2.warpAffine``'s black border). Returns ``[b,C,h,w]``."""
    scale = 2.0 / (size - 1) if size > 1 else 0.0
    grid = torch.stack([x * scale - 1.0, y * scale - 1.0], dim=-1)[None].expand(img.shape[0], -1, -1, -1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def prefilter_size(size: int, k: float) -> int:
    """The side an ``S x S`` crop is area-downscaled to before it is warped into a face ``k``
    times smaller (crop px per frame px): twice the face's frame size when that is below S,
    else S (no prefilter)."""
    if k <= 2.0:
        return size
    return min(size, max(int(round(2.0 * size / k)), 4))


__all__ = ["paste_faces", "feather_mask", "face_core", "face_scale"]
