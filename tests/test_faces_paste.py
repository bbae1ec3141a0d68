"""Paste-back: ROI-only, untouched outside pixels, no seam, overlap and small faces."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from stream_gpen.errors import InvalidInputError
from stream_gpen.faces import estimate_affines, paste_faces, reference_points, warp_faces
from stream_gpen.faces._align import apply_affines, invert_affines
from stream_gpen.faces._paste import feather_mask


@pytest.fixture(scope="module")
def photo(shared):
    bgr = cv2.imread(str(shared / "data" / "faces" / "whole" / "codeformer_whole_00.jpg"))
    return torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1]))


def _affine(size, scale, center, angle=0.0):
    ref = reference_points(size)
    r = torch.tensor([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=torch.float64)
    pts = (ref - size / 2) @ r.T * scale + torch.tensor(center, dtype=torch.float64)
    return estimate_affines(pts[None].float(), size=size)


def _support(frame_shape, affines, size, border, feather):
    """Boolean map of frame pixels where any face's mask is > 0."""
    h, w = frame_shape[:2]
    gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    sup = torch.zeros(h, w, dtype=torch.bool)
    for a in affines.double():
        cx = a[0, 0] * gx + a[0, 1] * gy + a[0, 2]
        cy = a[1, 0] * gx + a[1, 1] * gy + a[1, 2]
        sup |= feather_mask(cx, cy, size, border=border, feather=feather) > 0
    return sup


def test_outside_pixels_untouched_bit_for_bit(photo):
    frame = photo.clone()
    a = torch.cat([_affine(128, 0.8, (150, 120), 0.2), _affine(128, 1.1, (330, 200), -0.3)])
    crops = torch.randint(0, 256, (2, 3, 128, 128), dtype=torch.uint8)
    out = paste_faces(frame, crops, a)
    assert out is frame  # in place
    sup = _support(frame.shape, a, 128, 0.04, 0.12)
    changed = (frame != photo).any(-1)
    assert changed.any()
    assert not (changed & ~sup).any(), "pixels outside every mask changed"
    assert changed[sup].float().mean() > 0.5


def test_round_trip_restores_the_face(photo):
    frame = photo.clone()
    a = _affine(256, 0.7, (250, 180), 0.1)
    crops = warp_faces(frame, [0], a, size=256)
    paste_faces(frame, crops, a)
    diff = (frame.int() - photo.int()).abs()
    # warp -> inverse warp is two bilinear resamplings: a slight blur, not a shift
    assert diff.float().mean() < 1.0
    assert diff.max() < 60


@pytest.mark.parametrize("backend", ["torch", "cv2"])
def test_face_cut_by_the_frame_edge_leaves_no_dark_line(photo, backend):
    """A face running off the top of the picture: warp -> paste back leaves the picture's first
    rows as it leaves any other row (a bilinear blur), not darkened by a fill from outside it."""
    h, w = photo.shape[:2]
    a = _affine(256, 1.0, (w / 2, 40), 0.1)  # the face's top half lies above row 0
    frame = photo.clone()
    paste_faces(frame, warp_faces(frame, [0], a, size=256, backend=backend), a, backend=backend)
    d = frame.int() - photo.int()
    inside = _support(frame.shape, a, 256, 0.04, 0.12)[0]  # columns where row 0 is pasted
    assert inside.sum() > 100
    edge = d[0][inside].float().mean(1)  # per column, signed
    assert edge.mean() > -3 and (edge < -20).float().mean() < 0.05, (edge.mean(), (edge < -20).float().mean())


@pytest.mark.parametrize("feather", [0.12, 0.0])
def test_no_seam_at_mask_border(photo, feather):
    """A restored face that is 40 grey levels brighter must not leave a step at the mask edge.

    The brightening the paste adds (paste of the brighter crop minus paste of the unchanged crop)
    is compared with the image's own gradients: with feathering its steepest step is a few grey
    levels per pixel; a hard mask (feather=0) shows the full 40-level seam, so the test can fail."""
    a = _affine(256, 0.5, (260, 200), 0.15)
    crops = warp_faces(photo, [0], a, size=256) // 2  # no clipping at 255 after +40
    brighter = crops + 40
    frame = paste_faces(photo.clone(), brighter, a, feather=feather)
    plain = paste_faces(photo.clone(), crops, a, feather=feather)
    delta = frame.float() - plain.float()
    step = torch.maximum((delta[1:, :-1] - delta[:-1, :-1]).abs(), (delta[:-1, 1:] - delta[:-1, :-1]).abs()).amax(-1)
    img = photo.float()
    own = torch.maximum((img[1:, :-1] - img[:-1, :-1]).abs(), (img[:-1, 1:] - img[:-1, :-1]).abs()).amax(-1)
    # ramp of 0.12 * 256 crop px = ~15 frame px for 40 levels: <= ~4 levels/px (+1 rounding, + interp)
    if feather > 0:
        assert step.max() <= 8, step.max()
        assert step.max() < float(own.quantile(0.9))
    else:
        assert step.max() >= 30


def test_overlapping_faces_composite_without_seam(photo):
    photo = torch.full_like(photo, 128)
    frame = photo.clone()
    a = torch.cat([_affine(128, 0.9, (200, 200)), _affine(128, 1.3, (260, 210))])
    crops = torch.stack([torch.full((3, 128, 128), 30, dtype=torch.uint8), torch.full((3, 128, 128), 220, dtype=torch.uint8)])
    paste_faces(frame, crops, a)
    # the larger face (second) is on top at its centre
    c = apply_affines(invert_affines(a[1:].double()), torch.tensor([[[64.0, 64.0]]], dtype=torch.float64))[0, 0]
    assert frame[int(c[1]), int(c[0])].tolist() == [220, 220, 220]
    delta = frame.float() - photo.float()
    step = (delta[1:] - delta[:-1]).abs().max()
    # two flat faces 190 levels apart, each with a ~15 px ramp: no hard edge anywhere
    assert step < 40


def test_small_face_is_antialiased(photo):
    """A 512 crop pasted into a ~40 px face: a fine checkerboard must average out to grey
    (area downscale first), not alias into a coarse pattern."""
    frame = photo.clone()
    a = _affine(512, 0.15, (100, 100))
    yy, xx = torch.meshgrid(torch.arange(512), torch.arange(512), indexing="ij")
    checker = (((yy + xx) % 2) * 255).to(torch.uint8)[None].expand(3, 512, 512)[None].contiguous()
    paste_faces(frame, checker, a)
    centre = frame[95:106, 95:106].float()
    assert (centre - 127.5).abs().max() < 12
    frame2 = photo.clone()
    paste_faces(frame2, checker, a, antialias=False)
    assert (frame2[95:106, 95:106].float() - 127.5).abs().max() > 30


def test_face_outside_frame_and_no_faces(photo):
    frame = photo.clone()
    a = _affine(64, 1.0, (-500, -500))
    paste_faces(frame, torch.zeros(1, 3, 64, 64, dtype=torch.uint8), a)
    assert torch.equal(frame, photo)
    paste_faces(frame, torch.zeros(0, 3, 64, 64, dtype=torch.uint8), torch.zeros(0, 2, 3))
    assert torch.equal(frame, photo)


def test_custom_mask_restricts_the_paste(photo):
    frame = photo.clone()
    a = _affine(64, 1.0, (200, 200))
    paste_faces(frame, torch.full((1, 3, 64, 64), 255, dtype=torch.uint8), a, masks=torch.zeros(1, 64, 64))
    assert torch.equal(frame, photo)
    with pytest.raises(InvalidInputError, match=r"masks must be \[1,64,64\], got \(1, 32, 32\)"):
        paste_faces(frame, torch.zeros(1, 3, 64, 64, dtype=torch.uint8), a, masks=torch.zeros(1, 32, 32))
    with pytest.raises(InvalidInputError, match=r"affines must be \[2,2,3\] for 2 crops"):
        paste_faces(frame, torch.zeros(2, 3, 64, 64, dtype=torch.uint8), a)


@pytest.mark.cuda
def test_paste_on_cuda_matches_cpu(photo):
    a = _affine(128, 0.8, (150, 120), 0.2)
    crops = torch.randint(0, 256, (1, 3, 128, 128), dtype=torch.uint8)
    cpu = paste_faces(photo.clone(), crops, a, backend="torch")
    gpu = paste_faces(photo.clone().cuda(), crops.cuda(), a.cuda())
    assert (gpu.cpu().int() - cpu.int()).abs().max() <= 1
    with pytest.raises(InvalidInputError, match="backend='cv2' needs a CPU frame"):
        paste_faces(photo.clone().cuda(), crops.cuda(), a.cuda(), backend="cv2")


@pytest.mark.parametrize("case", ["plain", "small_face", "mask", "overlap_and_edge"])
def test_cv2_backend_matches_torch(photo, case):
    """The CPU fast path (OpenCV warps of the crop and of a mask image) gives the torch path's
    result to within a few grey levels at the worst pixel (OpenCV quantises sample positions to
    1/32 px), far less on average, and touches the same pixels."""
    torch.manual_seed(1)
    masks = None
    if case == "plain":
        a = _affine(256, 0.9, (250, 170), 0.3)
    elif case == "small_face":  # area-downscaled first
        a = _affine(512, 0.12, (120, 100), -0.2)
    elif case == "mask":
        a = _affine(128, 1.0, (200, 160), 0.1)
        masks = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 128, 128), 9, 1, 4)[0]  # a smooth, parsing-like mask
    else:  # two overlapping faces, one partly outside the frame
        a = torch.cat([_affine(128, 1.2, (20, 40), 0.2), _affine(128, 0.8, (60, 60), -0.1)])
    s = 512 if case == "small_face" else 256 if case == "plain" else 128
    # smooth crop content (a real face): bilinear differences stay small
    crops = warp_faces(photo, torch.zeros(len(a), dtype=torch.long), a, size=s, backend="torch")
    crops = (255 - crops).contiguous()
    ref = paste_faces(photo.clone(), crops, a, masks=masks, backend="torch")
    got = paste_faces(photo.clone(), crops, a, masks=masks, backend="cv2")
    diff = (got.int() - ref.int()).abs()
    assert diff.max() <= 6 and diff.float().mean() < 0.05, (diff.max(), diff.float().mean())
    changed_ref, changed_got = (ref != photo).any(-1), (got != photo).any(-1)
    assert (changed_ref ^ changed_got).float().mean() < 0.002
    with pytest.raises(InvalidInputError, match=r"backend must be one of \('auto', 'torch', 'cv2'\), got 'numpy'"):
        paste_faces(photo.clone(), crops, a, backend="numpy")


def test_cv2_blend_in_place_equals_the_masked_blend(photo):
    """The CPU paste blends straight into the frame's ROI view: that is the out-of-place blend
    copied in only where the mask is > 0, bit for bit, because the blend of a zero weight rounds
    back to the frame's own value for every pair of grey levels."""
    base = np.repeat(np.tile(np.arange(256, dtype=np.uint8), (256, 1))[..., None], 3, axis=2)
    face = np.ascontiguousarray(base.transpose(1, 0, 2))
    zero = np.zeros((256, 256), np.float32)
    assert np.array_equal(cv2.blendLinear(face, base, zero, 1.0 - zero), base)
    # the ROI view of a frame is written in place, nothing outside it
    rng = np.random.default_rng(0)
    frame = photo.numpy().copy()
    m = rng.random((100, 120), dtype=np.float32)
    m[:40] = 0.0
    src = rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)
    roi = frame[30:130, 50:170]
    expected = roi.copy()
    np.copyto(expected, cv2.blendLinear(src, roi.copy(), m, 1.0 - m), where=(m > 0)[..., None])
    out = cv2.blendLinear(src, roi, m, 1.0 - m, dst=roi)
    assert np.shares_memory(out, frame) and np.array_equal(frame[30:130, 50:170], expected)
    outside = np.ones(frame.shape[:2], bool)
    outside[30:130, 50:170] = False
    assert np.array_equal(frame[outside], photo.numpy()[outside])


@pytest.mark.parametrize("backend", ["cv2", "torch"])
def test_paste_keeps_the_detail_of_a_medium_face(photo, backend):
    """An 'identity' restorer (the crop cut from the frame, pasted back) on a face about 3x
    smaller than S: the paste's antialiasing must not blur away the frame's own detail.
    Area-downscaling to 1x the face's frame size before the bilinear warp kept about half of it
    (detail ratio ~0.5); at 2x it keeps most (GPEN's plain bilinear warp-back is the upper
    bound, and still aliases when the face is much smaller)."""
    size = 512
    a = _affine(size, 0.33, (300, 240))
    crops = warp_faces(photo[None], torch.zeros(1, dtype=torch.long), a, size=size, backend="cv2")
    c = apply_affines(invert_affines(a.double()), torch.tensor([[[size / 2, size / 2]]], dtype=torch.float64))[0, 0]
    cx, cy = int(c[0]), int(c[1])
    sl = (slice(cy - 40, cy + 40), slice(cx - 40, cx + 40))  # well inside the fully masked part

    def detail(img):
        g = cv2.cvtColor(np.ascontiguousarray(img[sl]), cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(np.sqrt((cv2.Laplacian(g, cv2.CV_32F) ** 2).mean()))

    out = paste_faces(photo.clone(), crops, a, backend=backend).numpy()
    plain = paste_faces(photo.clone(), crops, a, antialias=False, backend=backend).numpy()
    ref = detail(photo.numpy())
    assert detail(out) > 0.7 * detail(plain), (detail(out), detail(plain), ref)
    assert detail(out) > 0.62 * ref, (detail(out), detail(plain), ref)


def _centre(a, size, at=(0.5, 0.56)):
    """Frame pixel (x, y) of crop point ``at`` (fractions of S) of the face with affine ``a``."""
    p = torch.tensor([[[at[0] * (size - 1), at[1] * (size - 1)]]], dtype=torch.float64)
    c = apply_affines(invert_affines(a.double()), p)[0, 0]
    return int(round(float(c[0]))), int(round(float(c[1])))


@pytest.mark.parametrize("backend", ["torch", "cv2"])
@pytest.mark.parametrize("parse", [False, True])
def test_small_face_beside_a_big_one_keeps_its_own_restoration(photo, backend, parse):
    """A small face in the full-weight part of a big face's crop (a child by a parent's temple):
    each face's crop is one flat colour (a restorer that marks its faces), and each face shows
    its own colour over itself. Where the small face lies on the big face itself (one face in
    front of the other), the big one stays on top."""
    frame = torch.full((240, 320, 3), 128, dtype=torch.uint8)
    size = 128
    big = _affine(size, 2.0, (190, 130))
    crops = torch.stack([torch.full((3, size, size), 30, dtype=torch.uint8),
                         torch.full((3, size, size), 220, dtype=torch.uint8)])
    masks = torch.ones(2, size, size) if parse else None
    beside = torch.cat([_affine(size, 0.3, (112, 85)), big])
    out = paste_faces(frame.clone(), crops, beside, masks=masks, backend=backend)
    sx, sy = _centre(beside[:1], size)
    assert out[sy - 2 : sy + 3, sx - 2 : sx + 3].eq(30).all(), out[sy - 2 : sy + 3, sx - 2 : sx + 3, 0]
    bx, by = _centre(big, size)
    assert out[by, bx].tolist() == [220, 220, 220]
    # the big crop still covers the background around the small face as it would alone
    alone = paste_faces(frame.clone(), crops[1:], big, masks=None if masks is None else masks[1:], backend=backend)
    assert out[sy + 22, sx].tolist() == alone[sy + 22, sx].tolist() and alone[sy + 22, sx, 0] > 200
    # the small face on the big face's cheek: the big face wins there
    on_top = torch.cat([_affine(size, 0.3, (205, 125)), big])
    out = paste_faces(frame.clone(), crops, on_top, masks=masks, backend=backend)
    sx, sy = _centre(on_top[:1], size)
    assert out[sy, sx].tolist() == [220, 220, 220]


@pytest.mark.parametrize("backend", ["torch", "cv2"])
def test_faces_of_about_the_same_size_keep_their_stacking_order(photo, backend):
    """Two overlapping faces of about the same size (two heads side by side in a crowd): by size
    alone the one on top swaps whenever the boxes' jitter makes the other a pixel larger, and the
    shared region flickers between them. Given the track ids, the older track stays on top while
    the sizes are within SAME_SIZE; a clearly larger (nearer) face still goes on top."""
    frame = torch.full((240, 320, 3), 128, dtype=torch.uint8)
    size = 128
    crops = torch.stack([torch.full((3, size, size), 30, dtype=torch.uint8),
                         torch.full((3, size, size), 220, dtype=torch.uint8)])
    mid = _centre(torch.cat([_affine(size, 1.0, (140, 120)), _affine(size, 1.0, (180, 120))]).mean(0, keepdim=True), size)

    def top(scale_a, scale_b, ids):
        a = torch.cat([_affine(size, scale_a, (140, 120)), _affine(size, scale_b, (180, 120))])
        out = paste_faces(frame.clone(), crops, a, ids=ids, backend=backend)
        return int(out[mid[1], mid[0], 0])

    # by size alone: whichever is a little larger is on top
    assert (top(1.02, 1.0, None), top(1.0, 1.02, None)) == (30, 220)
    # with identities: track 3 (older than 7) on top either way, whichever is larger
    assert top(1.02, 1.0, [7, 3]) == top(1.0, 1.02, [7, 3]) == 220
    assert top(1.02, 1.0, [3, 7]) == top(1.0, 1.02, [3, 7]) == 30
    # a face clearly larger than the other is still on top
    assert top(1.3, 1.0, [7, 3]) == 30
    with pytest.raises(InvalidInputError, match="one identity per crop"):
        paste_faces(frame.clone(), crops, torch.cat([_affine(size, 1.0, (140, 120))] * 2), ids=[1])


@pytest.mark.parametrize("backend", ["torch", "cv2"])
@pytest.mark.parametrize("bits", [8, 16])
def test_strength_blends_in_frame_space(photo, backend, bits):
    """``strength`` scales the mask: 0 gives the frame back bit for bit (no crop round trip),
    1 is the plain paste, 0.5 is halfway between the frame and the plain paste."""
    frame = photo[:240, :320].contiguous()
    if bits == 16:
        frame = frame.to(torch.int32).mul(257).add(99).to(torch.uint16)
    a = torch.cat([_affine(128, 1.2, (160, 120), 0.1), _affine(128, 0.5, (60, 60))])
    crops = torch.randint(0, 256, (2, 3, 128, 128), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    zero = paste_faces(frame.clone(), crops, a, strength=0.0, backend=backend)
    assert torch.equal(zero, frame)
    full = paste_faces(frame.clone(), crops, a, backend=backend)
    assert torch.equal(paste_faces(frame.clone(), crops, a, strength=1.0, backend=backend), full)
    half = paste_faces(frame.clone(), crops, a, strength=0.5, backend=backend)
    want = (frame.double() + full.double()) / 2
    assert (half.double() - want).abs().max() <= (257 if bits == 16 else 1)
    assert not (half != frame).any(-1)[(full == frame).all(-1)].any()  # untouched stays untouched
    for bad in (1.5, -0.1, True):
        with pytest.raises(InvalidInputError, match=r"strength must be a number in \[0, 1\], got"):
            paste_faces(frame.clone(), crops, a, strength=bad)


@pytest.mark.parametrize("backend", ["torch", "cv2"])
def test_strength_keeps_its_share_where_faces_squares_overlap(photo, backend):
    """Two faces whose crop squares overlap (a group photo): each face's mask scaled by the
    strength blended the second face over the first one's blend, so the overlap kept only
    (1 - s)^2 of the original (25% at 0.5; GPEN-2048's default 0.8 kept 4% there, not 20%)."""
    frame = photo[:240, :320].contiguous()
    a = torch.cat([_affine(128, 0.9, (130, 120)), _affine(128, 0.8, (200, 125))])  # squares overlap
    crops = torch.full((2, 3, 128, 128), 255, dtype=torch.uint8)
    full = paste_faces(frame.clone(), crops, a, backend=backend)
    for s in (0.5, 0.8):
        got = paste_faces(frame.clone(), crops, a, strength=s, backend=backend)
        want = frame.double() + s * (full.double() - frame.double())
        assert (got.double() - want).abs().max() <= 1, s


def test_enhancer_strength_zero_gives_the_input_back(shared, mobilenet_weights):
    """Through the whole pipeline (photo, 8 and 16 bits, and the aligned-crop path): strength 0
    is the input bit for bit, even for a face larger than the 64-px crop (blending in crop space
    blurred it); 0.5 still changes the face."""
    from stream_gpen import Enhancer

    from tests._doubles import FineRestorer

    bgr = cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))
    rgb = np.ascontiguousarray(cv2.resize(bgr, (240, 320), interpolation=cv2.INTER_AREA)[:, :, ::-1])
    enh = Enhancer(FineRestorer(64), device="cpu", detector_weights=mobilenet_weights, faces="largest", strength=0.0)
    assert np.array_equal(enh.enhance_image(rgb), rgb)
    deep = rgb.astype(np.uint16) * 257 + 99
    assert np.array_equal(enh.enhance_image(deep), deep)  # the 16-bit paste of the unquantised faces
    enh.strength = 0.5  # as the server's per-request views set it
    assert (enh.enhance_image(rgb) != rgb).any(-1).sum() > 1000
    enh.strength, enh.aligned = 0.0, True
    crop = np.ascontiguousarray(rgb[:96, :96])
    assert np.array_equal(enh.enhance_image(crop), crop)
