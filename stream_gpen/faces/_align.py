"""Alignment: GPEN's 5-point template, batched Umeyama similarity, batched bilinear warps.

Everything here is a pure function of tensors and runs on whatever device its inputs live on
(the frames' device: CUDA in the pipeline, CPU in tests), without a round trip through numpy.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from stream_gpen.errors import InvalidInputError

# Facexlib / GPEN `REFERENCE_FACIAL_POINTS` for a 96x112 crop: left eye, right eye, nose,
# left mouth corner, right mouth corner (FACTS.md §7).
_TEMPLATE_96x112 = (
    (30.29459953, 51.69630051),
    (65.53179932, 51.50139999),
    (48.02519989, 71.73660278),
    (33.54930115, 92.3655014),
    (62.72990036, 92.20410156),
)


def reference_points(size: int, *, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """GPEN's 5-point template for an ``size x size`` crop, ``[5, 2]``.

    ``get_reference_facial_points((S, S), inner_padding_factor=0.25, outer_padding=(0, 0),
    default_square=True)``: the 96x112 template shifted by (+8, 0) to square it, by (+28, +28)
    for the inner padding (crop 168x168), then scaled by S/168.
    """
    if not isinstance(size, int) or size < 8:
        raise InvalidInputError(f"crop size must be an int >= 8, got {size!r}")
    t = torch.tensor(_TEMPLATE_96x112, dtype=torch.float64)
    ref = (t + torch.tensor([36.0, 28.0], dtype=torch.float64)) * (size / 168.0)
    return ref.to(dtype=dtype, device=device)


def _check_points(points: torch.Tensor) -> torch.Tensor:
    if not isinstance(points, torch.Tensor):
        points = torch.as_tensor(points, dtype=torch.float32)
    if points.ndim == 2:
        points = points[None]
    if points.ndim != 3 or points.shape[1:] != (5, 2):
        raise InvalidInputError(f"landmarks must be [n, 5, 2], got shape {tuple(points.shape)}")
    return points


def rotation_fit(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotation ``[n, 2, 2]`` (never a reflection) that best maps the centred source points
    onto the centred targets, from their cross-covariance ``cov`` ``[n, 2, 2]`` (targets x
    sources), and ``[n]`` the sum of the singular values signed as in it (the scale times the
    source variance). Umeyama's sign rule as skimage implements it: the second singular direction
    is flipped where det(cov) < 0; where cov has rank 1 (all points on one line) its determinant is
    0 and says nothing, and the rotation among U·Vᵀ and U·diag(1, -1)·Vᵀ is taken (either fits
    as well; the sign from det(cov) alone returned a mirrored face for half of such lines)."""
    u, sig, vh = torch.linalg.svd(cov)
    flip = torch.linalg.det(cov) < 0
    # rank 1 by numpy's matrix_rank tolerance (largest singular value x size x eps)
    flat = sig[:, 1] <= sig[:, 0] * 2 * torch.finfo(sig.dtype).eps
    rot_flip = torch.where(flat, torch.linalg.det(u) * torch.linalg.det(vh) < 0, flip)
    d = torch.ones_like(sig)
    d[:, 1] = torch.where(rot_flip, -1.0, 1.0)
    signs = torch.ones_like(sig)
    signs[:, 1] = torch.where(flip, -1.0, 1.0)
    return u @ torch.diag_embed(d) @ vh, (sig * signs).sum(dim=1)


def umeyama(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Batched least-squares similarity (rotation, uniform scale, translation) src -> dst.

    ``src``, ``dst``: ``[n, k, 2]``; returns ``[n, 2, 3]`` in float64 (Umeyama 1991, the same
    estimate as ``skimage.transform.SimilarityTransform`` that GPEN uses). Reflections are
    excluded, collinear points included (:func:`rotation_fit`).
    """
    src = src.to(torch.float64)
    dst = dst.to(torch.float64)
    n, k, _ = src.shape
    mu_s = src.mean(dim=1, keepdim=True)
    mu_d = dst.mean(dim=1, keepdim=True)
    sc = src - mu_s
    dc = dst - mu_d
    cov = dc.transpose(1, 2) @ sc / k  # [n, 2, 2]
    rot, signed = rotation_fit(cov)
    var_s = sc.pow(2).sum(dim=(1, 2)) / k
    # Degenerate input (all points equal) gives var 0: scale 0 rather than NaN.
    scale = signed / var_s.clamp_min(1e-12)
    lin = scale[:, None, None] * rot
    t = mu_d.transpose(1, 2) - lin @ mu_s.transpose(1, 2)
    return torch.cat([lin, t], dim=2)


def estimate_affines(points: torch.Tensor, *, size: int, pixel_aspect: float = 1.0) -> torch.Tensor:
    """Similarity transforms ``[n, 2, 3]`` float32 mapping frame pixels -> GPEN crop pixels.

    ``points``: ``[n, 5, 2]`` (or ``[5, 2]``) landmarks in frame pixel coordinates. Computed in
    float64 on the points' device; the result has the meaning of ``cv2.warpAffine``'s matrix.

    ``pixel_aspect``: the width of a frame pixel over its height on screen (the stream's sample
    aspect ratio: 1 for square pixels; e.g. 4/3 for HDV 1440x1080, 32/27 for a 16:9 NTSC DVD).
    The similarity is fitted in display geometry (x scaled by it), so GPEN gets the face as a
    viewer sees it rather than squeezed or stretched; the matrix then includes that scaling, and
    paste-back (which inverts any affine) puts the face back in stored pixels.
    """
    points = _check_points(points)
    if not (isinstance(pixel_aspect, (int, float)) and math.isfinite(pixel_aspect) and pixel_aspect > 0):
        raise InvalidInputError(f"pixel_aspect must be a positive finite number, got {pixel_aspect!r}")
    ref = reference_points(size, device=points.device)
    ref = ref.expand(points.shape[0], 5, 2)
    pts = points.to(torch.float32)
    if pixel_aspect == 1.0:
        return umeyama(pts, ref).to(torch.float32)
    par = float(pixel_aspect)
    scale = torch.tensor([par, 1.0], dtype=pts.dtype, device=pts.device)
    aff = umeyama(pts * scale, ref)  # display coordinates -> crop
    aff[:, :, 0] *= par  # frame pixel (x, y) is display (x·par, y)
    return aff.to(torch.float32)


def invert_affines(affines: torch.Tensor) -> torch.Tensor:
    """Inverse of ``[n, 2, 3]`` affines (crop -> frame), computed in float64.

    GPEN fits a second Umeyama for the inverse; it equals the exact matrix inverse to ~1e-5.
    """
    a = affines.to(torch.float64)
    lin = a[:, :, :2]
    inv_lin = torch.linalg.inv(lin)
    t = -(inv_lin @ a[:, :, 2:])
    return torch.cat([inv_lin, t], dim=2).to(affines.dtype)


def apply_affines(affines: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Map ``[n, k, 2]`` points through ``[n, 2, 3]`` affines."""
    return points @ affines[:, :, :2].transpose(1, 2) + affines[:, None, :, 2]


def _as_frame_batch(frames, stack: bool = True):
    """``frames`` checked, as one ``[B,H,W,3]`` tensor; with ``stack=False`` a list of frames
    stays a list (the OpenCV warp reads one frame per face: no copy of every frame)."""
    if isinstance(frames, torch.Tensor):
        if frames.ndim == 3:
            frames = frames[None]
        batch = frames
    elif isinstance(frames, Sequence) and len(frames) > 0:
        if not all(isinstance(f, torch.Tensor) for f in frames):
            raise InvalidInputError("frames must be a list of [H,W,3] tensors, got "
                                    f"{sorted({type(f).__name__ for f in frames})}")
        shapes = {tuple(f.shape) for f in frames}
        if len(shapes) != 1:
            raise InvalidInputError(f"frames must all have the same shape, got {sorted(shapes)}")
        kinds = {(f.dtype, f.device) for f in frames}
        if len(kinds) != 1:
            raise InvalidInputError(f"frames must all have one dtype and device, got {sorted(map(str, kinds))}")
        if not stack:
            f = frames[0]
            _check_batch(f.dtype, (len(frames), *f.shape))
            return list(frames)
        # One copy of the frames that have faces; a pipeline ring passes its [N,H,W,3] tensor instead.
        batch = torch.stack(list(frames))
    else:
        raise InvalidInputError("frames must be a [H,W,3] / [B,H,W,3] uint8 tensor or a non-empty list of [H,W,3]")
    _check_batch(batch.dtype, tuple(batch.shape))
    return batch


def _check_batch(dtype: torch.dtype, shape: tuple) -> None:
    if len(shape) != 4 or shape[-1] != 3 or dtype not in (torch.uint8, torch.uint16):
        raise InvalidInputError(f"frames must be uint8 RGB [B,H,W,3] (or uint16 rgb48), got {dtype} {shape}")


def bilinear_gather(images: torch.Tensor, index: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bilinear sample of HWC ``images[index]`` at float pixel coords ``x, y`` with a black border.

    ``images``: ``[B, H, W, C]`` (any dtype); ``index``, ``x``, ``y``: same shape ``P``. Returns
    ``P + [C]`` float32. Out-of-frame neighbours count as 0, as ``cv2.BORDER_CONSTANT`` does.
    Gathering only the needed texels keeps memory at O(output) instead of converting whole
    frames to float (a 1080p frame in float is 25 MB).
    """
    b, h, w, c = images.shape
    flat = images.reshape(b * h * w, c)
    unsigned16 = flat.dtype == torch.uint16
    if unsigned16:  # torch builds few kernels for uint16 (indexing not on every device): gather the bits as int16
        flat = flat.view(torch.int16)
    x0f = torch.floor(x)
    y0f = torch.floor(y)
    fx = (x - x0f).unsqueeze(-1)
    fy = (y - y0f).unsqueeze(-1)
    x0 = x0f.to(torch.int64)
    y0 = y0f.to(torch.int64)
    base = index.to(torch.int64) * (h * w)
    out = None
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi = x0 + dx
            yi = y0 + dy
            valid = ((xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)).unsqueeze(-1)
            lin = base + yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)
            v = flat[lin.reshape(-1)].reshape(*lin.shape, c)
            v = (v.to(torch.int32).bitwise_and_(0xFFFF) if unsigned16 else v).to(torch.float32)
            term = torch.where(valid, v, 0.0) * (wx * wy)
            out = term if out is None else out + term
    return out


#: sub-samples a side of an anti-aliased crop pixel (:func:`warp_faces`): 16 bilinear reads of
#: every shrunk face, whatever its scale (a count that grew with the scale stepped the crop where a
#: zoom crossed 2x or 3x, and made a face's crop depend on the faces batched with it: up to 11
#: grey levels)
AA_SAMPLES = 4


def face_scale(affines: torch.Tensor) -> torch.Tensor:
    """Crop pixels per frame pixel for each ``[n,2,3]`` similarity (>1: face smaller than S;
    below 1: the crop shrinks the face, each crop pixel spanning ``1 / face_scale`` frame pixels)."""
    return torch.linalg.det(torch.as_tensor(affines, dtype=torch.float64)[:, :, :2]).abs().sqrt()


def _aa_offsets(scale: torch.Tensor, k: int) -> torch.Tensor:
    """``[n, k*k, 2]`` crop-pixel offsets of each face's sub-samples: a ``k`` x ``k`` grid filling
    a box ``min(1, s - 1)`` crop pixels wide (``s`` frame px per crop px), so the filter grows
    from nothing at ``s`` = 1 (plain bilinear) to the whole crop pixel at ``s`` >= 2, with no step
    a zoom through any scale could show (``k`` is the same for every scale)."""
    w = (scale - 1.0).clamp(0.0, 1.0)
    g = (torch.arange(k, dtype=torch.float64) + 0.5) / k - 0.5
    gy, gx = torch.meshgrid(g, g, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # [k*k, 2] (x, y)
    return w[:, None, None] * grid[None]


def warp_faces(frames, frame_ids, affines: torch.Tensor, *, size: int, backend: str = "auto",
               antialias: bool = False) -> torch.Tensor:
    """Warp many faces from many frames into one ``[n, 3, S, S]`` uint8 batch.

    ``frames``: a ``[B,H,W,3]`` uint8 tensor (e.g. the frame ring) or a list of ``[H,W,3]``;
    uint16 frames (a >8-bit source's rgb48 ``hi`` copy) give uint16 crops, on the 16-bit scale;
    ``frame_ids``: ``[n]`` index of each face's frame; ``affines``: ``[n,2,3]`` frame -> crop.
    Bilinear, like ``cv2.warpAffine(..., flags=INTER_LINEAR)`` (GPEN's flags=3), on the frames'
    device. Returns an empty ``[0,3,S,S]`` batch for no faces.

    Where a face runs off the picture the crop repeats the picture's edge pixels
    (``BORDER_REPLICATE``), where GPEN's script fills black: a black fill is blended into the
    crop's pixels next to the edge and pasted back as a dark line along the picture's edge (up to
    ~90 grey levels in row 0 of a face cut by the top of the frame), and FFHQ, which GPEN learned
    from, pads its crops with the picture's own edge content, never black. Inside the picture the
    crop is the same as GPEN's.

    ``backend``: ``"torch"`` (one batched gather on any device), ``"cv2"`` (OpenCV per face; CPU
    frames only: its fixed-point SIMD warp is 4-20x faster than the gather on CPU, within one grey
    level of it), ``"auto"`` = cv2 for CPU frames, torch otherwise.

    ``antialias``: a face the crop shrinks (more than one frame pixel a crop pixel: a 4K selfie, a
    1080p close-up into GPEN-256) is averaged over each crop pixel's footprint
    (:data:`AA_SAMPLES` squared bilinear sub-samples, see :func:`_aa_offsets`) instead of read
    at its centre only: a bilinear read there skips frame pixels, so fine detail and sensor noise
    alias into grain that shimmers as the face moves (a 4K selfie panned by fractions of a pixel:
    0.27 grey levels of change a frame in a crop that should not change, 0.14 averaged; GPEN's
    script asks OpenCV for INTER_AREA, which ``warpAffine`` reads as bilinear). Faces the crop
    does not shrink are warped as without it.
    """
    batch = _as_frame_batch(frames, stack=False)
    head = batch[0] if isinstance(batch, list) else batch
    dev, dtype, count = head.device, head.dtype, len(batch)
    affines = torch.as_tensor(affines)
    if affines.ndim == 2:
        affines = affines[None]
    if affines.ndim != 3 or affines.shape[1:] != (2, 3):
        raise InvalidInputError(f"affines must be [n, 2, 3], got shape {tuple(affines.shape)}")
    n = affines.shape[0]
    ids = torch.as_tensor(frame_ids, dtype=torch.int64, device=dev).reshape(-1)
    if ids.numel() != n:
        raise InvalidInputError(f"got {ids.numel()} frame ids for {n} affines")
    if n == 0:
        return torch.empty(0, 3, size, size, dtype=dtype, device=dev)
    if int(ids.min()) < 0 or int(ids.max()) >= count:
        raise InvalidInputError(f"frame ids must lie in [0, {count}), got {ids.tolist()}")
    offsets = None
    if antialias:
        scale = face_scale(affines.cpu()).clamp_min(1e-12).reciprocal()  # frame px per crop px
        shrunk = scale > 1.0 + 1e-6
        if bool(shrunk.any()):
            offsets = _aa_offsets(scale, AA_SAMPLES)  # [n, k*k, 2]
            offsets[~shrunk] = 0.0
    if use_cv2(backend, dev):
        return _warp_cv2(batch, ids, affines, size, offsets)
    if isinstance(batch, list):
        batch = torch.stack(batch)  # the gather indexes one [B,H,W,3] tensor
    inv = invert_affines(affines.to(device=dev, dtype=torch.float64))
    g = torch.arange(size, dtype=torch.float64, device=dev)
    gy, gx = torch.meshgrid(g, g, indexing="ij")
    x0 = inv[:, 0, 0, None, None] * gx + inv[:, 0, 1, None, None] * gy + inv[:, 0, 2, None, None]
    y0 = inv[:, 1, 0, None, None] * gx + inv[:, 1, 1, None, None] * gy + inv[:, 1, 2, None, None]
    # (a sub-sample grid is the crop's moved by a constant: inv_lin @ offset in frame pixels)
    shifts = None if offsets is None else offsets.to(dev) @ inv[:, :, :2].transpose(1, 2)  # [n, k*k, 2]
    idx = ids[:, None, None].expand(n, size, size)
    out = None
    for j in range(1 if shifts is None else shifts.shape[1]):
        x, y = (x0, y0) if shifts is None else (x0 + shifts[:, j, 0, None, None], y0 + shifts[:, j, 1, None, None])
        # clamped coordinates: bilinear sampling with the edge replicated, as cv2.BORDER_REPLICATE
        x = x.clamp_(0, batch.shape[2] - 1)
        y = y.clamp_(0, batch.shape[1] - 1)
        v = bilinear_gather(batch, idx, x.to(torch.float32), y.to(torch.float32))
        out = v if out is None else out.add_(v)
    if offsets is not None:
        out.div_(offsets.shape[1])
    top = 255 if batch.dtype == torch.uint8 else 65535
    return out.add_(0.5).floor_().clamp_(0, top).to(batch.dtype).permute(0, 3, 1, 2).contiguous()


def use_cv2(backend: str, device: torch.device) -> bool:
    """Resolve a warp/paste ``backend`` (``"auto"``, ``"torch"``, ``"cv2"``) for frames on ``device``:
    OpenCV for CPU frames under ``"auto"``; ``"cv2"`` on another device is an error."""
    if backend not in ("auto", "torch", "cv2"):
        raise InvalidInputError(f"backend must be one of ('auto', 'torch', 'cv2'), got {backend!r}")
    if backend == "cv2" and device.type != "cpu":
        raise InvalidInputError(f"backend='cv2' needs a CPU frame, got a frame on {device}")
    return backend == "cv2" or (backend == "auto" and device.type == "cpu")


def _warp_cv2(batch, ids: torch.Tensor, affines: torch.Tensor, size: int,
              offsets: torch.Tensor | None = None) -> torch.Tensor:
    """``batch``: a ``[B,H,W,3]`` CPU tensor or a list of ``[H,W,3]`` ones; ``offsets``: each
    face's anti-aliasing sub-sample offsets in crop pixels (:func:`_aa_offsets`), or None."""
    import cv2

    out = torch.empty(len(ids), size, size, 3, dtype=batch[0].dtype)
    a64 = affines.to(torch.float64).cpu().numpy()
    for i, fi in enumerate(ids.tolist()):
        src = np.ascontiguousarray(batch[fi].numpy())
        shifts = None if offsets is None else offsets[i].numpy()
        if shifts is None or not shifts.any():
            cv2.warpAffine(src, a64[i], (size, size), dst=out[i].numpy(), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
            continue
        # each sub-sample grid is a warp whose crop is shifted by the offset (crop = A·x - o); the
        # rounded warps are summed exactly (uint8: 16 x 255 fits int32) and the sum rounded once
        acc = np.zeros((size, size, 3), np.int32)
        one = np.empty((size, size, 3), src.dtype)
        for ox, oy in shifts:
            a = a64[i].copy()
            a[:, 2] -= (ox, oy)
            cv2.warpAffine(src, a, (size, size), dst=one, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            acc += one
        m = len(shifts)
        out[i].numpy()[...] = (acc + m // 2) // m
    return out.permute(0, 3, 1, 2).contiguous()
