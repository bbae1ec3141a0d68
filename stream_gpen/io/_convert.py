"""Pixel conversions between PyAV frames and RGB torch tensors (CPU swscale, CUDA NV12/P010).

Two RGB precisions: ``uint8`` (rgb24, what detection and GPEN see) and, for sources with more
than 8 bits per component (10/12-bit HEVC, ProRes, AV1, VP9, HDR), ``uint16`` on the full 16-bit
scale (rgb48: 0..65535, so 8-bit value ``v`` is ``v * 257``), which keeps the source's precision
for everything outside the pasted faces. :func:`rgb8_from_rgb16` derives the 8-bit picture.
"""
from __future__ import annotations

import mmap
import re
import threading
from typing import NamedTuple

import av
import numpy as np
import torch
from av.video.reformatter import ColorRange, Colorspace, Interpolation, VideoReformatter

# Encode side only: swscale's fast RGB->YUV path rounds full-range grey chroma to 127 (a visible
# tint after a round trip); on the decode side the accurate path alone maps Y=235 to 253. Chroma
# is box-averaged (area), as on the >8-bit path: the decode repeats each chroma sample over its
# block, so an untouched pixel's chroma comes back the same sample; bilinear averaging blurred
# every chroma edge by about a sample per pass (a flat corner of a test clip lost 2.2 levels
# through a lossless re-encode).
_INTERP = Interpolation.AREA | Interpolation.ACCURATE_RND
# 8-bit decode: swscale's generic path maps limited white 235 to 253 (nv12, yuyv422, 10/12-bit at
# --bit-depth 8, ...); with accurate rounding *and* full chroma interpolation every grey code
# lands on round((Y - 16) * 255 / 219). Chroma is repeated (point), as on the >8-bit path, so the
# encoder's 2x2 average gives back the same chroma samples.
_EXACT8 = Interpolation.POINT | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
# yuv420p/yuv422p would take swscale's SIMD converters, which truncate: 89 of 220 grey codes came
# back one low, real BT.709 footage 1.1-1.5 RGB levels dark, so every pass darkened the untouched
# picture by about a Y code. They, and all YUV but a few rare packed layouts, go through _EXACT8
# (see _yuv_to_rgb8).
_LOCAL = threading.local()  # one swscale context per thread (set-up: 0.4 ms a 640x360 frame)

# swscale knows these matrices; anything else (unspecified, rgb, ...) uses its BT.601 default, which is
# also what every FFmpeg-based player assumes for untagged SD content.
_SWS_SPACE = {1: Colorspace.ITU709, 4: Colorspace.FCC, 5: Colorspace.ITU601, 6: Colorspace.ITU601,
              7: Colorspace.SMPTE240M, 9: Colorspace.BT2020, 10: Colorspace.BT2020}


def sws_colorspace(value: int | None):
    return _SWS_SPACE.get(int(value)) if value is not None else None


def decode_colorspace(colorspace: int | None, width: int, height: int) -> int:
    """The YUV matrix (H.273 id) to decode these pixels with: the stream's tag, else what players
    assume for untagged video -- BT.709 for HD (width >= 1280 or height > 576), BT.601
    (smpte170m) for SD (mpv's and VLC's rule; browsers agree for SD).

    swscale alone would use BT.601 for everything untagged: an untagged 1080p clip, encoded by
    its camera/editor with BT.709, then decodes with saturated colours clipped (up to ~17 levels
    off after a round trip, measured on colour bars) and the model sees skewed skin tones. Sinks
    write the matrix used as an explicit tag, so no reader has to guess again."""
    cs = int(colorspace) if colorspace is not None else 2
    if cs in _SWS_SPACE:
        return cs
    return 1 if (width >= 1280 or height > 576) else 6


def decode_range(pix_fmt: str, color_range: int | None) -> int:
    """2 (full) for ``yuvj*``, a full-range tag or untagged grey (see :func:`is_full_range`), else 1
    (limited: what untagged video means)."""
    return 2 if is_full_range(pix_fmt, color_range) else 1


def sws_range(value: int | None):
    return ColorRange.JPEG if value == 2 else ColorRange.MPEG


def is_full_range(pix_fmt: str, color_range: int | None) -> bool:
    """Full range for ``yuvj*``, a full-range tag, and untagged grey (``gray``, ``gray10le``, ...):
    FFmpeg makes and reads grey as full range (swscale's ``format=gray``), so an untagged grey clip
    is decoded as full range and written back tagged so."""
    if pix_fmt.startswith("yuvj") or color_range == 2:
        return True
    return pix_fmt in _GREY and color_range != 1


# Grey formats as decoders give them (native, little-endian). swscale takes every grey format as
# full range whatever range it is told, so limited grey (HEVC 4:0:0, FFV1 ``gray`` tagged tv)
# decoded directly came back with black lifted (Y 16 -> RGB 16 -> Y 30): it goes through a table.
_GREY = frozenset({"gray", "gray9le", "gray10le", "gray12le", "gray14le", "gray16le"})
_GREY_LUT: dict[tuple[int, bool], np.ndarray] = {}


def _limited_grey_to_rgb(frame: "av.VideoFrame", high: bool) -> np.ndarray:
    """Limited-range grey -> RGB (rgb24, or rgb48 on the full 16-bit scale when ``high``):
    ``round((Y - 16) * 255 / 219)`` (scaled to the depth), clipped, what the YUV paths give for
    neutral chroma; a table lookup costs about what swscale's grey path did (it ignores the range)."""
    import cv2

    bits = bits_per_component(frame.format.name)
    key = (bits, high)
    if key not in _GREY_LUT:
        s, top = 1 << (bits - 8), 65535 if high else 255
        codes = np.arange(1 << bits, dtype=np.float64)
        _GREY_LUT[key] = np.clip(np.floor((codes - 16 * s) * top / (219 * s) + 0.5), 0, top).astype(
            np.uint16 if high else np.uint8)
    y = frame.to_ndarray()
    v = cv2.LUT(y, _GREY_LUT[key]) if bits == 8 else np.take(_GREY_LUT[key], y)
    return cv2.merge((v, v, v))


def plane_arrays(vf) -> list[np.ndarray]:
    """The planes of a planar ``av.VideoFrame`` as ``[rows, samples]`` arrays (views of its memory,
    line padding left out; 16-bit samples for formats above 8 bits)."""
    deep = any(c.bits > 8 for c in vf.format.components)
    dt = np.dtype("<u2") if deep else np.uint8
    out = []
    for p in vf.planes:
        rows = np.frombuffer(memoryview(p), np.uint8).reshape(p.height, p.line_size)
        out.append(rows.view(dt)[:, :p.width])
    return out


def bits_per_component(pix_fmt: str | None) -> int:
    """Bits of the deepest component of ``pix_fmt`` (8 for yuv420p, 10 for yuv420p10le / p010le,
    12 for yuv422p12le, 16 for rgb48le); 8 for names FFmpeg does not know (nothing to keep)."""
    if not pix_fmt:
        return 8
    try:
        return max((c.bits for c in av.VideoFormat(pix_fmt).components), default=8)
    except (ValueError, av.error.FFmpegError):
        return 8


def chroma_of(pix_fmt: str) -> str:
    """``"420"``, ``"422"`` or ``"444"``: the chroma subsampling of ``pix_fmt`` (RGB and 4:4:0
    count as 444; grey, whose chroma is neutral anyway, and 4:1:1 / 4:1:0 as 420: the nearest
    layout every encoder takes)."""
    try:
        fmt = av.VideoFormat(pix_fmt, 64, 64)  # a size, so the components report theirs
    except (ValueError, av.error.FFmpegError):
        return "420"
    if fmt.is_rgb:
        return "444"
    if len([c for c in fmt.components if not c.is_alpha]) < 3:  # grey
        return "420"
    cw, ch = fmt.chroma_width(64), fmt.chroma_height(64)
    if cw == 64:
        return "444"
    return "422" if ch == 64 and cw == 32 else "420"


# The >8-bit path (rgb48, see the module docstring) works around two swscale habits:
# * Scale: swscale reads and writes rgb48 as 8.8 fixed point: on the encode side 255 << 8 = 65280
#   is white, on the decode side white comes out as 65283 (limited range) or as the code shifted
#   up (full range: 1023 << 6 = 65472 at 10 bits), so its rgb48 is ~0.4% darker than full scale
#   and, in full range, does not even convert back to the same codes (3 codes off at 10 bits,
#   15 at 12). ``hi`` is kept at the true full scale (white = 65535, so 8-bit v = v * 257, what
#   paste-back and the 8-bit picture assume); the two rescalings below undo swscale's scale
#   exactly enough that every 10/12-bit code converts back to itself.
# * Chroma: bilinear chroma upsampling on decode and 2x2 averaging on encode blur every chroma
#   edge by about a sample per generation (bar means of a colour-bar clip moved 8 levels). Point
#   upsampling (each chroma sample repeated over its 2x2 / 2x1 block) followed by area
#   downsampling gives back the same chroma samples for untouched pixels; a pasted face is
#   averaged properly. Detection and GPEN do not notice half-resolution chroma detail.
_HI_DECODE = Interpolation.POINT
_HI_ENCODE = Interpolation.AREA | Interpolation.ACCURATE_RND
_SWS_RGB48_WHITE_IN = 65280.0  # encode side: what swscale takes as white in rgb48
_WHITE_OUT: dict[tuple[str, bool], float] = {}


def _sws_src(frame: "av.VideoFrame") -> dict:
    """``reformat`` arguments that decode ``frame`` to full-range RGB with its own matrix and range
    (untagged: see :func:`decode_colorspace`)."""
    space = sws_colorspace(decode_colorspace(frame.colorspace, frame.width, frame.height))
    if frame.format.name.startswith("yuvj"):
        # yuvj* already means full range to swscale; passing a range again would be redundant.
        return {"src_colorspace": space}
    return {"src_colorspace": space, "src_color_range": sws_range(frame.color_range),
            "dst_color_range": ColorRange.JPEG}


def _to_rgb(frame: "av.VideoFrame", dst: str, interpolation=None) -> np.ndarray:
    return frame.reformat(format=dst, interpolation=interpolation, **_sws_src(frame)).to_ndarray()


def _rows(plane) -> np.ndarray:
    """A plane's bytes as ``[height, line_size]`` (padding included), writable, no copy."""
    return np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)


def _samples(plane, dt) -> np.ndarray:
    """A plane's samples as ``[height, line_size / itemsize]`` (padding included), writable, no copy."""
    return np.frombuffer(memoryview(plane), dt).reshape(plane.height, -1)


class _Layout(NamedTuple):
    """How :func:`_yuv_to_rgb8` reads a YUV format's samples into planes."""

    twin: str | None  # the planar format with the same samples (None: the frame's own)
    sub: tuple[int, int]  # the chroma subsampling (sx, sy)
    shift: int  # the right shift that makes MSB-aligned samples codes
    where: tuple[tuple[int, int, int], ...]  # for Y, Cb, Cr: (plane, first sample, step) along a row


_PLANAR = ((0, 0, 1), (1, 0, 1), (2, 0, 1))
_UV, _VU = ((0, 0, 1), (1, 0, 2), (1, 1, 2)), ((0, 0, 1), (1, 1, 2), (1, 0, 2))
# Semi-planar and packed YUV as hardware decoders' downloads (NV12/P010), webcams (YUYV) and raw
# video give them: swscale's exact path on these frames as they are took the next chroma sample on
# odd columns (the decoder's "left" siting: up to 250 levels off at colour edges) and wrapped blue
# past white to 0, so their samples are copied into the planar twin like planar YUV's. (Rarer
# packed layouts, vuyx, xv30le, ..., are left to swscale.)
_INTERLEAVED: dict[str, _Layout] = {k: _Layout(*v) for k, v in {
    "nv12": ("yuv420p", (2, 2), 0, _UV), "nv21": ("yuv420p", (2, 2), 0, _VU),
    "nv16": ("yuv422p", (2, 1), 0, _UV), "nv24": ("yuv444p", (1, 1), 0, _UV), "nv42": ("yuv444p", (1, 1), 0, _VU),
    "nv20le": ("yuv422p10le", (2, 1), 0, _UV),
    "p010le": ("yuv420p10le", (2, 2), 6, _UV), "p012le": ("yuv420p12le", (2, 2), 4, _UV),
    "p016le": ("yuv420p16le", (2, 2), 0, _UV), "p210le": ("yuv422p10le", (2, 1), 6, _UV),
    "p212le": ("yuv422p12le", (2, 1), 4, _UV), "p216le": ("yuv422p16le", (2, 1), 0, _UV),
    "p410le": ("yuv444p10le", (1, 1), 6, _UV), "p412le": ("yuv444p12le", (1, 1), 4, _UV),
    "p416le": ("yuv444p16le", (1, 1), 0, _UV),
    "yuyv422": ("yuv422p", (2, 1), 0, ((0, 0, 2), (0, 1, 4), (0, 3, 4))),
    "yvyu422": ("yuv422p", (2, 1), 0, ((0, 0, 2), (0, 3, 4), (0, 1, 4))),
    "uyvy422": ("yuv422p", (2, 1), 0, ((0, 1, 2), (0, 0, 4), (0, 2, 4))),
    "y210le": ("yuv422p10le", (2, 1), 6, ((0, 0, 2), (0, 1, 4), (0, 3, 4))),
    "y212le": ("yuv422p12le", (2, 1), 4, ((0, 0, 2), (0, 1, 4), (0, 3, 4))),
}.items()}
_LAYOUT: dict[str, _Layout | None] = {}


def _yuv_layout(pix_fmt: str) -> _Layout | None:
    """How :func:`_yuv_to_rgb8` reads ``pix_fmt``: planar little-endian YUV with one component per
    plane (yuv420p, yuvj422p, yuv420p10le, yuva444p12le, ...) or one of ``_INTERLEAVED``; None for
    anything else."""
    if pix_fmt not in _LAYOUT:
        layout = _INTERLEAVED.get(pix_fmt)
        try:
            fmt = av.VideoFormat(pix_fmt, 64, 64)
            if layout is None and (
                    fmt.is_planar and not fmt.is_rgb and not fmt.is_big_endian and not fmt.has_palette
                    and len([c for c in fmt.components if not c.is_alpha]) == 3
                    and len({c.plane for c in fmt.components}) == len(fmt.components)):
                layout = _Layout(None, (64 // fmt.chroma_width(64), 64 // fmt.chroma_height(64)), 0, _PLANAR)
        except (ValueError, av.error.FFmpegError):
            layout = None
        _LAYOUT[pix_fmt] = layout
    return _LAYOUT[pix_fmt]


def _reformatter() -> VideoReformatter:
    rf = getattr(_LOCAL, "reformatter", None)
    if rf is None:
        rf = _LOCAL.reformatter = VideoReformatter()
    return rf


def _planar_twin(frame: "av.VideoFrame", layout: _Layout, twin: str,
                 luts: tuple[np.ndarray, np.ndarray] | None = None) -> "av.VideoFrame":
    """``frame``'s samples (see :func:`_yuv_layout`) copied into a new ``twin`` frame, which states no
    chroma location, with sides rounded up to a multiple of the chroma subsampling (the padding
    repeats the last row; crop the conversion to ``frame``'s size): swscale samples chroma at the
    stated location (decoders state "left": odd columns took the next sample), and at sides that
    are not a multiple of the subsampling its chroma step is not exactly 2 and drifts by a sample
    from the middle on. Interleaved chroma is taken apart, MSB-aligned samples shifted down;
    ``luts``: (luma, chroma) tables applied to the codes on the way (see :class:`_Limited16`)."""
    _, (sx, sy), shift, where = layout
    w, h = frame.width, frame.height
    dt = np.uint16 if bits_per_component(layout.twin or frame.format.name) > 8 else np.uint8
    # One twin per thread, size and format, written over for every frame (a video's frames): a
    # new 1080p frame each time cost ~0.75 ms of the ~7 ms conversion here in allocation and
    # first touch. Every sample the conversion keeps is written below; it never leaves the caller.
    key = (-(-w // sx) * sx, -(-h // sy) * sy, twin)
    twins = getattr(_LOCAL, "twins", None)
    if twins is None or key not in twins:
        twins = _LOCAL.twins = {key: av.VideoFrame(*key)}  # (the last size only: bounded)
    plain = twins[key]
    dt_out = np.uint16 if bits_per_component(twin) > 8 else np.uint8
    for k, (plane, first, step) in enumerate(where):
        s = _samples(frame.planes[plane], dt)[:, first::step][:, : -(-w // sx) if k else w]
        d = _samples(plain.planes[k], dt_out)
        n, m = s.shape
        if luts is not None:
            np.take(luts[k > 0], s >> shift if shift else s, out=d[:n, :m], mode="clip")
        elif shift:
            np.right_shift(s, shift, out=d[:n, :m])
        else:
            d[:n, :m] = s
        d[n:] = d[n - 1]  # the padding rows (cropped away) repeat the last
    return plain


def _yuv_to_rgb8(frame: "av.VideoFrame", layout: _Layout, dst: np.ndarray | None = None) -> np.ndarray:
    """YUV (see :func:`_yuv_layout`) -> rgb24, exact: ``round()`` of the float conversion with
    each chroma sample repeated over its block (2x2 for 4:2:0), as swscale's SIMD yuv420p
    converters repeat it.

    _EXACT8 on the decoded frame itself samples chroma at the frame's chroma location: decoders
    state "left" for H.264/HEVC, so odd columns took the next sample (up to 60 levels off at a
    chroma edge in planar YUV, 240 in NV12; PyAV cannot unset it). The samples are therefore
    copied into a planar frame that states none (:func:`_planar_twin`), and swscale writes planar
    gbrp, for which it has SIMD output, interleaved by cv2. Per 1080p 4:2:0 frame here about 5 ms against the SIMD converters'
    0.8; NV12 costs about the same (bench/bench_decode_convert.py).

    ``dst``: interleaved straight into it (see :func:`av_to_rgb_numpy`'s ``out``)."""
    import cv2

    twin = layout.twin or frame.format.name
    sx, sy = layout.sub
    w, h = frame.width, frame.height
    bits = bits_per_component(twin)
    sws = _sws_src(frame)
    full = is_full_range(frame.format.name, frame.color_range)
    luts = _LIMITED16[twin, True] if full and bits > 8 else None
    if luts is not None:
        # swscale decodes >8-bit full range as if white were 2^bits (up to 1.5 levels bright):
        # the codes go over to 16-bit limited range, which it decodes exactly
        twin, luts = luts
        sws["src_color_range"], full = ColorRange.MPEG, False
    plain = _planar_twin(frame, layout, twin, luts)
    out = _reformatter().reformat(plain, format="gbrp", interpolation=_EXACT8, **sws)
    g, b, r = (_rows(p)[:h, :w] for p in out.planes)
    rgb = cv2.merge((r, g, b)) if dst is None else cv2.merge((r, g, b), dst)
    if dst is not None and rgb is not dst:  # (cv2 gives a new array where ``dst`` does not fit)
        np.copyto(dst, rgb)
        rgb = dst
    if not full:
        _fix_blue_overflow(rgb, plain, decode_colorspace(frame.colorspace, w, h), sx, sy)
    return rgb


class _Limited16(dict):
    """(planar twin, full range) -> (its 16-bit twin, (luma, chroma) tables taking each code to the
    16-bit limited-range code of the same value), made on first use; None where FFmpeg has no
    16-bit twin (yuv440p10le, yuv410p, ...: left to swscale)."""

    def __missing__(self, key: tuple[str, bool]):
        twin, full = key
        name = re.sub(r"p\d+le$", "p16le", twin) if twin.endswith("le") else re.sub("^yuvj", "yuv", twin) + "16le"
        value = None
        try:
            av.VideoFormat(name)
            bits = bits_per_component(twin)
            c = np.arange(1 << bits, dtype=np.float64)
            if full:
                top = (1 << bits) - 1
                luma = np.floor(16 * 256 + c * (219 * 256 / top) + 0.5)
                chroma = np.floor(128 * 256 + (c - (1 << (bits - 1))) * (224 * 256 / top) + 0.5)
            else:
                luma = chroma = c * (1 << (16 - bits))
            value = (name, (luma.astype(np.uint16), np.clip(chroma, 0, 65535).astype(np.uint16)))
        except (ValueError, av.error.FFmpegError):
            pass
        self[key] = value
        return value


_LIMITED16 = _Limited16()


def _fix_blue_overflow(rgb: np.ndarray, plain: "av.VideoFrame", colorspace: int, sx: int, sy: int) -> None:
    """Blue 255 where the limited-range planar ``plain`` (cropped to ``rgb``) is bluer than white:
    swscale's accurate path overflows past about twice white (8 bits: Y >= 222 with Cb >= 237 in
    BT.2020, far outside the gamut) and writes 0. Such blue needs Cb >= 230 (8 bits) in every
    matrix here, which real video rarely has, so this looks at the few chroma samples that high."""
    h, w = rgb.shape[:2]
    bits = bits_per_component(plain.format.name)
    dt, s = (np.uint16, 1 << (bits - 8)) if bits > 8 else (np.uint8, 1)
    cb = _samples(plain.planes[1], dt)[: -(-h // sy), : -(-w // sx)]
    if int(cb.max()) < 230 * s:
        return
    y = _samples(plain.planes[0], dt)
    kb = _KRKB.get(colorspace, _BT601)[1]
    cy, cx = np.nonzero(cb >= 230 * s)
    for dy in range(sy):
        for dx in range(sx):
            yy, xx = cy * sy + dy, cx * sx + dx
            keep = (yy < h) & (xx < w)
            yy, xx = yy[keep], xx[keep]
            blue = (y[yy, xx] - 16.0 * s) / (219.0 * s) + 2.0 * (1.0 - kb) * (cb[cy[keep], cx[keep]] - 128.0 * s) / (224.0 * s)
            hot = blue * 255.0 >= 254.5
            rgb[yy[hot], xx[hot], 2] = 255


def _rgb48_white_out(pix_fmt: str, full_range: bool) -> float:
    """The rgb48 value swscale decodes white of ``pix_fmt`` (in this range) to, measured once on
    a 16x16 white frame for planar formats (every format decoders give on the CPU but a few),
    else swscale's rule (limited range: 65283; full range: the top code shifted up to 16 bits)."""
    key = (pix_fmt, bool(full_range))
    if key in _WHITE_OUT:
        return _WHITE_OUT[key]
    full = full_range or pix_fmt.startswith("yuvj")
    try:
        fmt = av.VideoFormat(pix_fmt, 16, 16)
        bits = bits_per_component(pix_fmt)
        full = full or fmt.is_rgb
        # one component per plane, LSB-aligned samples (not p010's interleaved, MSB-aligned ones)
        planar = (fmt.is_planar and not fmt.is_big_endian and not fmt.has_palette
                  and len({c.plane for c in fmt.components}) == len(fmt.components))
    except (ValueError, av.error.FFmpegError):
        fmt, bits, planar = None, 8, False
    top = (1 << bits) - 1 if full else 235 << (bits - 8)
    white = float(65283.0 if not full else top << (16 - bits))
    if planar:
        vf = av.VideoFrame(16, 16, pix_fmt)
        dt = np.uint16 if bits > 8 else np.uint8
        for c in fmt.components:
            chroma = not fmt.is_rgb and c.index in (1, 2)
            p = vf.planes[c.plane]
            a = np.frombuffer(p, dt).reshape(-1, p.line_size // dt().itemsize)
            a[...] = 1 << (bits - 1) if chroma else ((1 << bits) - 1 if c.is_alpha else top)
        vf.color_range = 2 if full else 1
        white = float(_to_rgb(vf, "rgb48le", _HI_DECODE)[..., 1].mean())
    _WHITE_OUT[key] = white
    return white


def _rescale16(a: np.ndarray, k: float, offset=None, *, out: np.ndarray | None = None) -> np.ndarray:
    """``round(a * k + offset)`` clipped to uint16 (float32 holds every 16-bit value exactly);
    ``offset``: one value per channel, or none; written into ``out`` (``uint16``, ``a``'s shape)
    when given."""
    tmp = np.multiply(a, np.float32(k), dtype=np.float32)
    tmp += np.float32(0.5) if offset is None else np.asarray(offset, np.float32) + np.float32(0.5)
    np.clip(tmp, np.float32(0.0), np.float32(65535.0), out=tmp)
    if out is None:
        return tmp.astype(np.uint16)
    np.copyto(out, tmp, casting="unsafe")  # (truncated, as astype)
    return out


def _full_range_chroma_nudge(pix_fmt: str, colorspace: int | None) -> np.ndarray | None:
    """The RGB offset (swscale's rgb48 scale) that moves Cb and Cr up by half a code and leaves Y
    as it is, for full-range YUV ``pix_fmt`` written from rgb48: swscale's full-range encode
    truncates chroma (mean -0.5 code, so 90-100% of the chroma of a decoded 10-bit full-range
    frame came back one code low); limited range and luma round correctly."""
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.error.FFmpegError):
        return None
    if fmt.is_rgb or len([c for c in fmt.components if not c.is_alpha]) < 3:
        return None
    kr, kb = _KRKB.get(int(colorspace) if colorspace is not None else 2, _BT601)
    kg = 1.0 - kr - kb
    half = 0.5 / ((1 << bits_per_component(pix_fmt)) - 1) * _SWS_RGB48_WHITE_IN
    r, b = 2.0 * (1.0 - kr) * half, 2.0 * (1.0 - kb) * half
    return np.array([r, -(kr * r + kb * b) / kg, b], np.float32)


def av_to_rgb_numpy(frame: "av.VideoFrame", *, high: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Decode-side conversion to ``uint8 [H, W, 3]`` RGB using the frame's own matrix and range
    (untagged: see :func:`decode_colorspace`).

    ``out``: a C-contiguous ``uint8 [H, W, 3]`` array (``uint16`` with ``high``) the picture is
    written into and returned as (a ring slot, or the pinned staging buffer of a CUDA ring: see
    :meth:`FrameRing.host_slot`, :meth:`FrameRing.hi_host_slot`). YUV is interleaved (rgb48
    rescaled) straight into it: a new picture copied into the slot cost a full-frame copy per
    frame (8-bit: 1080p 8.5 -> 7.8 ms, 4K 26.5 -> 22.7 ms).

    ``high``: ``uint16 [H, W, 3]`` rgb48 instead, on the full 16-bit scale, with the same matrix
    and range handling, for sources with more than 8 bits per component. Together with
    :func:`rgb_to_av` an untouched pixel converts back to the same 10/12-bit codes (luma and
    chroma, for colours inside the RGB gamut); see the notes above on swscale's scale and chroma."""
    fmt = frame.format.name
    if out is not None and high:
        layout = _yuv_layout(fmt)
        if layout is not None and not (fmt in _GREY and not is_full_range(fmt, frame.color_range)):
            if _yuv_to_rgb16(frame, layout, out) is not None:
                return out
        np.copyto(out, av_to_rgb_numpy(frame, high=True))
        return out
    if out is not None:
        layout = _yuv_layout(fmt)  # (None for grey and RGB)
        if layout is not None:
            return _yuv_to_rgb8(frame, layout, out)
        np.copyto(out, av_to_rgb_numpy(frame))
        return out
    if fmt in _GREY and not is_full_range(fmt, frame.color_range):
        return _limited_grey_to_rgb(frame, high)  # (see _GREY; full-range grey converts right as it is)
    if not high:
        if fmt == "rgb24":
            return frame.to_ndarray()
        layout = _yuv_layout(fmt)
        if layout is not None:
            return _yuv_to_rgb8(frame, layout)
        return _to_rgb(frame, "rgb24", _EXACT8)
    if fmt == "rgb48le":
        return frame.to_ndarray()
    layout = _yuv_layout(fmt)
    rgb = _yuv_to_rgb16(frame, layout) if layout is not None else None
    if rgb is not None:
        return rgb
    raw = _to_rgb(frame, "rgb48le", _HI_DECODE)
    white = _rgb48_white_out(fmt, is_full_range(fmt, frame.color_range))
    return _rescale16(raw, 65535.0 / white)


def _yuv_to_rgb16(frame: "av.VideoFrame", layout: _Layout, out: np.ndarray | None = None) -> np.ndarray | None:
    """YUV (see :func:`_yuv_layout`) -> rgb48 on the full 16-bit scale: swscale with the >8-bit
    path's flags and white rescale (see the notes above), on the planar twin as on the 8-bit path
    (:func:`_planar_twin`): on an odd-sized frame itself swscale drifted chroma by a sample from
    the middle down (10-bit 640x267: 18% of pixels off, up to 205 levels). 8-bit codes go over to
    16-bit limited range (swscale's 8-bit planar -> rgb48 converters are up to 2.7 levels off);
    None for the few 8-bit formats without a 16-bit twin (yuv410p, yuv440p, ...: left to swscale)."""
    twin = layout.twin or frame.format.name
    full = is_full_range(frame.format.name, frame.color_range)
    sws = _sws_src(frame)
    luts = None
    sx, sy = layout.sub
    if layout.twin is None and bits_per_component(twin) > 8 and not (frame.width % sx or frame.height % sy):
        # planar at whole blocks: _HI_DECODE takes the frame as it is (a copy saved: 1-4 ms at 1080p)
        raw = _reformatter().reformat(frame, format="rgb48le", interpolation=_HI_DECODE, **sws).to_ndarray()
        return _rescale16(raw, 65535.0 / _rgb48_white_out(twin, full), out=out)
    if bits_per_component(twin) == 8:
        if _LIMITED16[twin, full] is None:
            return None
        (twin, luts), full = _LIMITED16[twin, full], False
        sws.update(src_color_range=ColorRange.MPEG, dst_color_range=ColorRange.JPEG)
    plain = _planar_twin(frame, layout, twin, luts)
    raw = _reformatter().reformat(plain, format="rgb48le", interpolation=_HI_DECODE, **sws).to_ndarray()
    return _rescale16(raw[: frame.height, : frame.width], 65535.0 / _rgb48_white_out(twin, full), out=out)


def u8_from_u16(a: np.ndarray) -> np.ndarray:
    """``round(v / 257)`` of a uint16 numpy array (any shape), in integers: the 8-bit twin of a
    16-bit picture or alpha plane (half up; ``v / 257`` is never exactly a half for 16-bit ``v``)."""
    return ((a.astype(np.uint32) * 2 + 257) // 514).astype(np.uint8)


def rgb8_from_rgb16(hi: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``uint8`` RGB from ``uint16`` rgb48: ``round(v / 257)``, written into ``out`` when given:
    the 8-bit picture that agrees with the 16-bit one.

    float32 ``v / 257 + 0.5`` truncated is exact for every 16-bit ``v`` (no ``v / 257`` lies
    within float32 error of a half; pinned by the tests). On the CPU it runs in numpy, ~8x faster
    than torch's uint16 kernels (4.6 vs 36 ms per 1080p frame here)."""
    if out is None:
        out = torch.empty(hi.shape, dtype=torch.uint8, device=hi.device)
    if hi.device.type == "cpu":
        tmp = np.multiply(hi.numpy(), np.float32(1.0 / 257.0), dtype=np.float32)
        tmp += np.float32(0.5)
        np.copyto(out.numpy(), tmp, casting="unsafe")
    else:
        out.copy_(hi.to(torch.float32).mul_(1.0 / 257.0).add_(0.5))
    return out


#: bytes past an input picture's end that swscale's SIMD may read (FFmpeg pads its own buffers by 64)
_SWS_OVERREAD = 1024


def _padded(a: np.ndarray) -> np.ndarray:
    """A contiguous copy of ``a`` followed, in the same allocation, by :data:`_SWS_OVERREAD` bytes."""
    buf = np.empty(a.nbytes + _SWS_OVERREAD, np.uint8)
    out = buf[:a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def rgb_to_av(rgb: np.ndarray, *, pix_fmt: str, colorspace: int | None, color_range: int | None) -> "av.VideoFrame":
    """Encode-side conversion: RGB ``[H, W, 3]`` -> ``pix_fmt`` with the *same* matrix/range the
    decoder used, so an unprocessed round trip is colour-exact up to rounding.

    ``rgb`` is ``uint8`` (rgb24) or ``uint16`` (rgb48, full 16-bit scale: the >8-bit path).

    Sides that are not a multiple of ``pix_fmt``'s chroma subsampling (427x239 in 4:2:0) are
    converted edge-padded up to one, and the planes copied into a frame of the true size: swscale's
    chroma step at such sides is not exactly 2, so chroma drifted by a sample from the middle on
    (4-7x more chroma samples off after a round trip than at the padded size)."""
    high = rgb.dtype == np.uint16
    src = "rgb48le" if high else "rgb24"
    if high and pix_fmt != src:
        nudge = _full_range_chroma_nudge(pix_fmt, colorspace) if color_range == 2 else None
        rgb = _rescale16(rgb, _SWS_RGB48_WHITE_IN / 65535.0, nudge)  # swscale's rgb48 scale (see above)
    h, w = rgb.shape[:2]
    layout = _yuv_layout(pix_fmt) if pix_fmt != src else None
    sx, sy = layout.sub if layout is not None else (1, 1)
    if w % sx or h % sy:
        rgb = np.pad(rgb, ((0, -h % sy), (0, -w % sx), (0, 0)), mode="edge")
    rgb = np.ascontiguousarray(rgb)
    if pix_fmt == src:
        # a frame of its own: the encoder may hold it after this call, and ``rgb`` is often a
        # ring slot's picture, reused once the frame is released
        return av.VideoFrame.from_ndarray(rgb, format=src)
    # swscale reads ``rgb`` in place (reformat below is done with it before this returns): a
    # copy first cost 6-7 ms per 1080p frame on a loaded 2-core CPU, with the GIL held. Its SIMD
    # reads a little past the last row, as FFmpeg's own buffers allow for: an array ending at the
    # end of a page of memory (the next one unmapped) crashed the process (a 100x98 region,
    # session 21), so such an array alone is copied into a padded buffer first.
    if -(rgb.ctypes.data + rgb.nbytes) % mmap.PAGESIZE < _SWS_OVERREAD:
        rgb = _padded(rgb)
    vf = av.VideoFrame.from_numpy_buffer(rgb, format=src)
    out = vf.reformat(
        format=pix_fmt,
        dst_colorspace=sws_colorspace(colorspace),
        src_color_range=ColorRange.JPEG,
        dst_color_range=sws_range(color_range),
        interpolation=_HI_ENCODE if high else _INTERP,
    )
    if (not high and (color_range == 2 or pix_fmt.startswith("yuvj")) and layout is not None
            and layout.where in (_PLANAR, _UV, _VU) and bits_per_component(pix_fmt) == 8):
        _round_full_range_chroma(out, rgb, layout.sub, colorspace, layout.where)  # (nv12: NVENC's)
    if (out.width, out.height) != (w, h):
        out = _cropped(out, w, h)
    # Tag the frame so the encoder writes the VUI the pixels were made with.
    if color_range in (1, 2):
        out.color_range = color_range
    if colorspace is not None and colorspace != 2:
        out.colorspace = colorspace
    return out


def _round_full_range_chroma(out: "av.VideoFrame", rgb: np.ndarray, sub: tuple[int, int],
                             colorspace: int | None, where=_PLANAR) -> None:
    """Write ``out``'s (8-bit, full-range, planar) Cb and Cr planes again, rounded: swscale's
    full-range encode truncates chroma (every flag tried; 0.5 code low on average, so every pass
    of a webcam's MJPEG or an Android phone's video lost half a level of colour outside the
    faces). A chroma sample is the box average of its ``sx x sy`` block (what swscale's area
    averaging gives the limited-range path), and that of a linear function is the function of the
    averaged RGB: the blocks' integer sums, then one matrix product at chroma resolution. Luma
    rounds right in swscale and is left as it is; ``where`` says where Cb and Cr lie (planar, or
    NV12/NV21's interleaved plane). (Through rgb48 with a half-code nudge, as the
    >8-bit path does, cost 17x the conversion; this ~1x.)"""
    sx, sy = sub
    h, w = rgb.shape[:2]
    if h % sy or w % sx:
        return
    sums = rgb
    for axis, step in ((0, sy), (1, sx)):  # (strided adds: ~20x faster than a sum over a 5-D reshape)
        if step > 1:
            take = (lambda k: sums[k::step]) if axis == 0 else (lambda k: sums[:, k::step])
            acc = np.add(take(0), take(1), dtype=np.uint16)
            for k in range(2, step):
                acc += take(k)
            sums = acc
    kr, kb = _KRKB.get(int(colorspace) if colorspace is not None else 2, _BT601)
    kg = 1.0 - kr - kb
    n = float(sx * sy)
    # Cb = 128 + (B - Y) / (2 (1 - kb)), Cr = 128 + (R - Y) / (2 (1 - kr)), on the block's mean
    cb = np.array([-kr, -kg, 1.0 - kb], np.float32) / np.float32(2.0 * (1.0 - kb) * n)
    cr = np.array([1.0 - kr, -kg, -kb], np.float32) / np.float32(2.0 * (1.0 - kr) * n)
    chroma = np.matmul(sums, np.stack([cb, cr], axis=1), dtype=np.float32)
    chroma += np.float32(128.5)
    np.clip(chroma, 0.0, 255.0, out=chroma)
    ch, cw = chroma.shape[:2]
    for k in (1, 2):  # Cb, Cr: (plane, first sample, step) along a row (nv12 interleaves them)
        plane, first, step = where[k]
        if plane >= len(out.planes):
            return
        p = out.planes[plane]
        rows = np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)
        dst = rows[:, first: first + step * cw: step]
        if dst.shape != (ch, cw):
            return
        np.copyto(dst, chroma[..., k - 1], casting="unsafe")


def _cropped(frame: "av.VideoFrame", w: int, h: int) -> "av.VideoFrame":
    """The top-left ``w x h`` of ``frame`` (same format) as a new frame: each plane's rows copied as
    bytes, so a chroma plane keeps the samples it has (the last one covers a half block at odd sides)."""
    out = av.VideoFrame(w, h, frame.format.name)
    for s, d in zip(frame.planes, out.planes):
        n = min(s.line_size, d.line_size)
        _rows(d)[:, :n] = _rows(s)[: d.height, :n]
    return out


# Kr, Kb of the luma equation per colourspace (H.273)
_KRKB = {1: (0.2126, 0.0722), 9: (0.2627, 0.0593), 10: (0.2627, 0.0593), 7: (0.212, 0.087), 4: (0.30, 0.11)}
_BT601 = (0.299, 0.114)


def nv12_to_rgb(y: torch.Tensor, uv: torch.Tensor, out: torch.Tensor, *, colorspace: int | None, full_range: bool,
                bits: int = 8) -> None:
    """NV12 (or P010/P016) planes on the GPU -> RGB ``out [H, W, 3]`` (same matrix rule as the CPU path).

    ``y`` is ``[H, W]`` (or padded larger), ``uv`` interleaved ``[H/2, W/2, 2]`` (or ``[H/2, W]``).
    ``uint8`` planes are NV12; ``uint16`` planes are P010/P012/P016 (``bits`` significant bits,
    stored in the high bits of each sample, as NVDEC writes them). ``out`` is ``uint8`` (rgb24) or
    ``uint16`` (rgb48, full 16-bit scale: the >8-bit path).
    Each chroma sample is repeated over its 2x2 block and the float result rounded, as the CPU
    paths do (:func:`av_to_rgb_numpy`: 8-bit within a level of it, 0 for most pixels), so a GPU
    and a CPU run write the same untouched pixels and the encoder's 2x2 average gives back the
    same chroma. (Bilinear chroma, as before, put 12% of the values of a real 640x360 frame off
    the CPU path's, up to 22 levels at colour edges, and blurred the edges a little every pass.)
    """
    h, w = out.shape[0], out.shape[1]
    if y.ndim == 3:
        y = y[..., 0]
    wide = y.dtype != torch.uint8
    if wide:
        # MSB-aligned samples: the code is the top ``bits`` bits
        shift = 16 - bits
        y, uv = torch.bitwise_right_shift(y.to(torch.int32), shift), torch.bitwise_right_shift(uv.to(torch.int32), shift)
    y = y[:h, :w].float()
    if uv.ndim == 2:
        uv = uv.reshape(uv.shape[0], uv.shape[1] // 2, 2)
    ch, cw = (h + 1) // 2, (w + 1) // 2
    # each chroma sample repeated over its 2x2 block (one copy), as on the CPU (_EXACT8, _HI_DECODE)
    uv = uv[:ch, :cw].float().permute(2, 0, 1)[:, :, None, :, None].expand(2, ch, 2, cw, 2)
    uv = uv.reshape(2, 2 * ch, 2 * cw)[:, :h, :w]
    kr, kb = _KRKB.get(int(colorspace) if colorspace is not None else 2, _BT601)
    kg = 1.0 - kr - kb
    top = 65535.0 if out.dtype == torch.uint16 else 255.0
    if not wide:
        if full_range:
            yf = y
            cb, cr = uv[0] - 128.0, uv[1] - 128.0
        else:
            yf = (y - 16.0) * (255.0 / 219.0)
            cb, cr = (uv[0] - 128.0) * (255.0 / 224.0), (uv[1] - 128.0) * (255.0 / 224.0)
        if top != 255.0:
            yf, cb, cr = yf * (top / 255.0), cb * (top / 255.0), cr * (top / 255.0)
    else:
        s = float(1 << (bits - 8))
        if full_range:
            k = top / ((1 << bits) - 1)
            yf = y * k
            cb, cr = (uv[0] - 128.0 * s) * k, (uv[1] - 128.0 * s) * k
        else:
            yf = (y - 16.0 * s) * (top / (219.0 * s))
            cb, cr = (uv[0] - 128.0 * s) * (top / (224.0 * s)), (uv[1] - 128.0 * s) * (top / (224.0 * s))
    r = yf + 2.0 * (1.0 - kr) * cr
    b = yf + 2.0 * (1.0 - kb) * cb
    g = yf - (2.0 * kb * (1.0 - kb) / kg) * cb - (2.0 * kr * (1.0 - kr) / kg) * cr
    out.copy_(torch.stack((r, g, b), dim=-1).round_().clamp_(0, top).to(out.dtype))


def alpha_twin(pix_fmt: str) -> str | None:
    """The format with an alpha plane that ``pix_fmt`` (planar YUV) becomes, e.g. ``yuv444p10le``
    -> ``yuva444p10le``; ``None`` if FFmpeg has none."""
    if not pix_fmt.startswith("yuv") or pix_fmt.startswith("yuva"):
        return None
    name = "yuva" + pix_fmt[3:]
    try:
        av.VideoFormat(name)
    except (ValueError, TypeError):
        return None
    return name


def add_alpha(vf: "av.VideoFrame", alpha: np.ndarray) -> "av.VideoFrame":
    """``vf`` (planar YUV, as :func:`rgb_to_av` made it) with an alpha plane: its ``yuva`` twin.

    ``alpha`` is ``[H, W]`` ``uint8`` or ``uint16`` on the full 16-bit scale; it is scaled to the
    format's depth with rounding (8 -> 10 bits: ``round(a * 1023 / 255)``). The colour planes are
    copied as they are, so the colour is exactly what the opaque path writes."""
    name = alpha_twin(vf.format.name)
    if name is None:
        raise ValueError(f"{vf.format.name} has no alpha twin")
    out = av.VideoFrame(vf.width, vf.height, name)
    wide = bits_per_component(name) > 8
    size = 2 if wide else 1
    for src, dst in zip(vf.planes, out.planes):
        s = np.frombuffer(memoryview(src), np.uint8).reshape(src.height, src.line_size)
        d = np.frombuffer(memoryview(dst), np.uint8).reshape(dst.height, dst.line_size)
        n = src.width * size
        d[:, :n] = s[:, :n]
    top = (1 << bits_per_component(name)) - 1
    a = np.asarray(alpha)[: vf.height, : vf.width]
    full = 65535 if a.dtype == np.uint16 else 255
    # round(a * top / full) in integers: a * top + full // 2 <= 65535 * 65535 + 32767 fits uint32
    # (6.5x faster than the same in float64 on a 1080p plane)
    codes = a if full == top else (a.astype(np.uint32) * top + full // 2) // full
    plane = out.planes[3]
    d = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
    d[:, : plane.width * size] = codes.astype("<u2" if wide else np.uint8).view(np.uint8).reshape(plane.height, -1)
    out.colorspace, out.color_range = vf.colorspace, vf.color_range
    return out
