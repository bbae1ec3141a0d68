"""Pixel conversions between PyAV frames and RGB torch tensors (CPU swscale, CUDA NV12)."""
from __future__ import annotations

import av
import numpy as np
import torch
from av.video.reformatter import ColorRange, Colorspace, Interpolation

# Encode side only: swscale's fast RGB->YUV path rounds full-range grey chroma to 127 (a visible
# tint after a round trip); on the decode side the accurate path maps Y=235 to 253, so it stays off.
_INTERP = Interpolation.BILINEAR | Interpolation.ACCURATE_RND

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
    """2 (full) for ``yuvj*`` or a full-range tag, else 1 (limited: what untagged video means)."""
    return 2 if is_full_range(pix_fmt, color_range) else 1


def sws_range(value: int | None):
    return ColorRange.JPEG if value == 2 else ColorRange.MPEG


def is_full_range(pix_fmt: str, color_range: int | None) -> bool:
    return pix_fmt.startswith("yuvj") or color_range == 2


def av_to_rgb_numpy(frame: "av.VideoFrame") -> np.ndarray:
    """Decode-side conversion to ``uint8 [H, W, 3]`` RGB using the frame's own matrix and range
    (untagged: see :func:`decode_colorspace`)."""
    fmt = frame.format.name
    if fmt == "rgb24":
        return frame.to_ndarray()
    space = sws_colorspace(decode_colorspace(frame.colorspace, frame.width, frame.height))
    if fmt.startswith("yuvj"):
        # yuvj* already means full range to swscale; passing a range again would be redundant.
        return frame.reformat(format="rgb24", src_colorspace=space).to_ndarray()
    return frame.reformat(
        format="rgb24",
        src_colorspace=space,
        src_color_range=sws_range(frame.color_range),
        dst_color_range=ColorRange.JPEG,
    ).to_ndarray()


def rgb_to_av(rgb: np.ndarray, *, pix_fmt: str, colorspace: int | None, color_range: int | None) -> "av.VideoFrame":
    """Encode-side conversion: RGB ``[H, W, 3]`` -> ``pix_fmt`` with the *same* matrix/range the
    decoder used, so an unprocessed round trip is colour-exact up to rounding."""
    vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    if pix_fmt == "rgb24":
        return vf
    out = vf.reformat(
        format=pix_fmt,
        dst_colorspace=sws_colorspace(colorspace),
        src_color_range=ColorRange.JPEG,
        dst_color_range=sws_range(color_range),
        interpolation=_INTERP,
    )
    # Tag the frame so the encoder writes the VUI the pixels were made with.
    if color_range in (1, 2):
        out.color_range = color_range
    if colorspace is not None and colorspace != 2:
        out.colorspace = colorspace
    return out


# Kr, Kb of the luma equation per colourspace (H.273)
_KRKB = {1: (0.2126, 0.0722), 9: (0.2627, 0.0593), 10: (0.2627, 0.0593), 7: (0.212, 0.087), 4: (0.30, 0.11)}
_BT601 = (0.299, 0.114)


def nv12_to_rgb(y: torch.Tensor, uv: torch.Tensor, out: torch.Tensor, *, colorspace: int | None, full_range: bool) -> None:
    """NV12 planes on the GPU -> RGB uint8 ``out [H, W, 3]`` (same matrix rule as the CPU path).

    ``y`` is ``[H, W]`` (or padded larger), ``uv`` interleaved ``[H/2, W/2, 2]`` (or ``[H/2, W]``).
    Chroma is upsampled bilinearly (centre-sited), which matches swscale's default within a few
    levels; the GPU check measures the difference.
    """
    h, w = out.shape[0], out.shape[1]
    if y.ndim == 3:
        y = y[..., 0]
    y = y[:h, :w].float()
    if uv.ndim == 2:
        uv = uv.reshape(uv.shape[0], uv.shape[1] // 2, 2)
    uv = uv[: (h + 1) // 2, : (w + 1) // 2].float().permute(2, 0, 1).unsqueeze(0)
    uv = torch.nn.functional.interpolate(uv, scale_factor=2.0, mode="bilinear", align_corners=False)[0, :, :h, :w]
    kr, kb = _KRKB.get(int(colorspace) if colorspace is not None else 2, _BT601)
    kg = 1.0 - kr - kb
    if full_range:
        yf = y
        cb, cr = uv[0] - 128.0, uv[1] - 128.0
    else:
        yf = (y - 16.0) * (255.0 / 219.0)
        cb, cr = (uv[0] - 128.0) * (255.0 / 224.0), (uv[1] - 128.0) * (255.0 / 224.0)
    r = yf + 2.0 * (1.0 - kr) * cr
    b = yf + 2.0 * (1.0 - kb) * cb
    g = yf - (2.0 * kb * (1.0 - kb) / kg) * cb - (2.0 * kr * (1.0 - kr) / kg) * cr
    out.copy_(torch.stack((r, g, b), dim=-1).round_().clamp_(0, 255).to(torch.uint8))
