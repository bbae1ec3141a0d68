"""Levels through the source's decode (``av_to_rgb_numpy``) and the sink's encode (``rgb_to_av``):
every limited-range grey code comes back to itself, black and white land on RGB 0 and full scale."""
from __future__ import annotations

import av
import numpy as np
import pytest

from stream_gpen.io._convert import av_to_rgb_numpy, decode_range, rgb_to_av

# Kr, Kb per H.273 matrix (2: untagged, decoded as BT.601 below 1280x576)
KRKB = {1: (0.2126, 0.0722), 2: (0.299, 0.114), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114),
        7: (0.212, 0.087), 9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}
# swscale's fixed-point coefficients put a few pixels just past the half level
EXACT = 0.52

CODES8 = np.arange(16, 236)
RGB8 = np.round((CODES8 - 16) * 255 / 219).astype(int)  # the exact decode of each code


def _plane(p, dt):
    return np.frombuffer(memoryview(p), dt).reshape(p.height, -1)[:, : p.width]


def grey_frame(pix_fmt: str, codes: np.ndarray, *, color_range: int | None = 1, colorspace: int = 1) -> av.VideoFrame:
    """One grey code per pair of rows (neutral chroma), in ``pix_fmt`` (made as planar, converted
    without any level change)."""
    bits = av.VideoFormat(pix_fmt).components[0].bits
    dt = np.uint8 if bits == 8 else np.uint16
    grey = pix_fmt.startswith("gray")
    planar = pix_fmt if grey or pix_fmt.startswith("yuv") else "yuv420p"
    f = av.VideoFrame(16, len(codes) * 2, planar)
    for k, p in enumerate(f.planes):
        np.frombuffer(memoryview(p), dt)[:] = 1 << (bits - 1)
        if k == 0:
            _plane(p, dt)[:] = np.repeat(codes, 2)[:, None]
    if planar != pix_fmt:
        f = f.reformat(format=pix_fmt)
    if color_range is not None:
        f.color_range = color_range
    f.colorspace = colorspace
    return f


def luma(vf: av.VideoFrame) -> np.ndarray:
    dt = np.uint16 if vf.format.components[0].bits > 8 else np.uint8
    return _plane(vf.planes[0], dt)[::2, 0].astype(int)


@pytest.mark.parametrize("pix_fmt, out_fmt", [
    ("yuv444p", "yuv444p"),
    ("nv12", "yuv420p"), ("nv21", "yuv420p"), ("yuyv422", "yuv422p"), ("uyvy422", "yuv422p"),  # were 235 -> 253
    ("gray", "yuv420p"),  # was 16 -> RGB 16 -> Y 30
    ("yuv420p", "yuv420p"), ("yuv422p", "yuv422p"),  # swscale's SIMD converters: 89 of 220 codes one low
])
def test_every_limited_grey_code_round_trips_8bit(pix_fmt, out_fmt):
    f = grey_frame(pix_fmt, CODES8)
    rgb = av_to_rgb_numpy(f)
    assert rgb[::2, 0].astype(int).tolist() == np.repeat(RGB8[:, None], 3, 1).tolist()
    rng = decode_range(pix_fmt, int(f.color_range))
    assert rng == 1
    back = rgb_to_av(rgb, pix_fmt=out_fmt, colorspace=1, color_range=rng)
    assert luma(back).tolist() == CODES8.tolist()


@pytest.mark.parametrize("pix_fmt, out_fmt", [("yuv420p10le", "yuv420p10le"), ("gray10le", "yuv420p10le"),
                                              ("yuv422p12le", "yuv422p12le")])
def test_every_limited_grey_code_round_trips_high(pix_fmt, out_fmt):
    """The >8-bit path (rgb48): black 0, white 65535, each code back to itself; and the 8-bit
    decode of the same frame (``--bit-depth 8``) is exact (it gave white 253)."""
    s = 4 if "10" in pix_fmt else 16
    codes = np.arange(16 * s, 235 * s + 1, s // 4 if s > 4 else 1)
    f = grey_frame(pix_fmt, codes)
    hi = av_to_rgb_numpy(f, high=True)
    assert hi[0, 0].tolist() == [0, 0, 0] and hi[-1, 0].tolist() == [65535] * 3
    back = rgb_to_av(hi, pix_fmt=out_fmt, colorspace=1, color_range=decode_range(pix_fmt, int(f.color_range)))
    assert luma(back).tolist() == codes.tolist()
    low = av_to_rgb_numpy(grey_frame(pix_fmt, CODES8 * s))[::2, 0, 1].astype(int)
    assert low.tolist() == RGB8.tolist()


def test_untagged_grey_is_full_range_both_ways():
    """Untagged grey is full range (as FFmpeg makes it), on the decode *and* the encode side."""
    codes = np.arange(0, 256)
    f = grey_frame("gray", codes, color_range=None)
    assert int(f.color_range) == 0
    rng = decode_range("gray", int(f.color_range))
    assert rng == 2
    rgb = av_to_rgb_numpy(f)
    assert rgb[::2, 0, 0].astype(int).tolist() == codes.tolist()
    assert luma(rgb_to_av(rgb, pix_fmt="yuv420p", colorspace=1, color_range=rng)).tolist() == codes.tolist()
    # a full-range tag says the same; a limited one expands
    assert av_to_rgb_numpy(grey_frame("gray", codes, color_range=2))[::2, 0, 0].tolist() == codes.tolist()
    assert av_to_rgb_numpy(grey_frame("gray", CODES8, color_range=1))[[0, -1], 0, 0].tolist() == [0, 255]


@pytest.mark.parametrize("color_range", [1, 2])
@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv444p12le"])
def test_high_bit_depth_chroma_round_trips_in_both_ranges(pix_fmt, color_range):
    """Random in-gamut 10/12-bit frames: every plane comes back unchanged on average (full-range
    chroma came back a code low in 90-100% of samples)."""
    g = np.random.default_rng(0)
    s = 4 if "10" in pix_fmt else 16
    f = av.VideoFrame(32, 32, pix_fmt)
    src = []
    for k, p in enumerate(f.planes):
        lo, hi = (75, 175) if k == 0 else (112, 144)  # in gamut
        v = g.integers(lo * s, hi * s, (p.height, p.width))
        _plane(p, np.uint16)[:] = v
        src.append(v)
    f.color_range, f.colorspace = color_range, 1
    back = rgb_to_av(av_to_rgb_numpy(f, high=True), pix_fmt=pix_fmt, colorspace=1, color_range=color_range)
    for k, p in enumerate(back.planes):
        d = _plane(p, np.uint16).astype(int) - src[k]
        assert abs(d.mean()) < 0.1 and np.count_nonzero(d) <= 0.1 * d.size, (k, d.mean(), np.count_nonzero(d))


def float_rgb(f: av.VideoFrame, colorspace: int) -> np.ndarray:
    """The float decode of a planar YUV frame to 8-bit RGB, each chroma sample repeated over its
    block (2x2 for 4:2:0), clipped to 0..255."""
    bits = f.format.components[0].bits
    dt, s = (np.uint8, 1) if bits == 8 else (np.uint16, 1 << (bits - 8))
    y = _plane(f.planes[0], dt).astype(float)
    h, w = y.shape
    sy, sx = -(-h // f.planes[1].height), -(-w // f.planes[1].width)
    cb, cr = (np.repeat(np.repeat(_plane(f.planes[k], dt).astype(float), sy, 0), sx, 1)[:h, :w] for k in (1, 2))
    if f.format.name.startswith("yuvj") or f.color_range == 2:
        top = (1 << bits) - 1
        y, cb, cr = y / top, (cb - 128 * s) / top, (cr - 128 * s) / top
    else:
        y, cb, cr = (y - 16 * s) / (219 * s), (cb - 128 * s) / (224 * s), (cr - 128 * s) / (224 * s)
    kr, kb = KRKB[colorspace]
    r, b = y + 2 * (1 - kr) * cr, y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(np.stack([r, g, b], -1) * 255, 0, 255)


@pytest.mark.parametrize("size", [(64, 32), (33, 17), (34, 9)])  # odd sides; padded planes (line size > width)
@pytest.mark.parametrize("pix_fmt, color_range", [("yuv420p", 1), ("yuv420p", 2), ("yuv422p", 1),
                                                  ("yuvj420p", 2), ("yuvj422p", 2), ("yuv444p", 1),
                                                  ("yuv420p10le", 1), ("yuv422p12le", 1)])
def test_8bit_decode_of_planar_yuv_is_exact_in_every_matrix(pix_fmt, color_range, size):
    """Random codes (all of them, sub-black and super-white too): each pixel within half a level
    of the float decode with repeated chroma, no bias. swscale's SIMD yuv420p/yuv422p converters
    were up to 3 levels off (-0.5 on average), its exact path sampled chroma off by one at odd
    sides and wrote blue 0 for limited-range blue past twice white."""
    g = np.random.default_rng(0)
    bits = av.VideoFormat(pix_fmt).components[0].bits
    dt = np.uint8 if bits == 8 else np.uint16
    for colorspace in KRKB:
        f = av.VideoFrame(*size, pix_fmt)
        assert f.planes[0].line_size > f.planes[0].width * dt().itemsize or size == (64, 32)
        for p in f.planes:
            _plane(p, dt)[:] = g.integers(0, 1 << bits, (p.height, p.width))
        f.colorspace, f.color_range = colorspace, color_range
        d = av_to_rgb_numpy(f).astype(float) - float_rgb(f, colorspace)
        assert np.abs(d).max() <= EXACT and abs(d.mean()) < 0.05, (colorspace, np.abs(d).max(), d.mean())


def test_8bit_decode_of_a_real_clip_is_exact(shared):
    """A decoded H.264 frame states its chroma location ("left"): chroma is still repeated over
    each 2x2 block (not taken from the next sample at odd columns), and the picture keeps its
    level (swscale's SIMD converter: -1.1, -1.5, -1.1 RGB levels on this frame)."""
    with av.open(str(shared / "data/videos/hamilton_stage_lowlight_multiface.mp4")) as c:
        f = next(c.decode(video=0))
    assert f.format.name == "yuv420p" and f.colorspace == 1
    d = av_to_rgb_numpy(f).astype(float) - float_rgb(f, 1)
    assert np.abs(d).max() <= EXACT
    assert np.abs(d.mean((0, 1))).max() < 0.1, d.mean((0, 1))


def test_8bit_decode_of_a_10bit_hevc_frame_repeats_chroma(tmp_path):
    """``--bit-depth 8`` of a decoded 10-bit HEVC frame (chroma location "left"): chroma repeated
    over each 2x2 block, not taken from the next sample at odd columns (51 levels off before)."""
    g = np.random.default_rng(2)
    rgb = np.repeat(np.repeat(g.integers(0, 256, (16, 16, 3), dtype=np.uint8), 4, 0), 4, 1)
    path = tmp_path / "ten.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx265", rate=25, options={"x265-params": "log-level=error"})
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p10le"
        vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p10le")
        for p in [*s.encode(vf), *s.encode(None)]:
            c.mux(p)
    with av.open(str(path)) as c:
        f = next(c.decode(video=0))
    assert f.format.name == "yuv420p10le" and int(f.colorspace) == 2  # untagged SD: BT.601
    d = av_to_rgb_numpy(f).astype(float) - float_rgb(f, 6)
    assert np.abs(d).max() <= EXACT
