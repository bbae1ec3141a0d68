"""10/12-bit (and HDR) video keeps its precision outside the pasted faces.

Clips are made here with PyAV: smooth gradients coded losslessly at 10/12 bits (x265
lossless=1, x264 qp=0), so the decoded input's codes are known exactly. They go source -> paste
(a synthetic face crop) -> sink, and the output's codes are compared with the input's.
"""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from stream_gpen.errors import InvalidInputError
from stream_gpen.faces import paste_faces
from stream_gpen.io import Frame, FrameRing, FrameReleasedError, open_sink, open_source
from stream_gpen.io._convert import (
    av_to_rgb_numpy,
    bits_per_component,
    chroma_of,
    is_full_range,
    nv12_to_rgb,
    rgb8_from_rgb16,
)
from stream_gpen.io._sink import choose_high_pix_fmt

H, W = 64, 96
# bframes=0: libx265 through PyAV's raw encode/mux now and then gives a 1-2 frame clip's packets a
# garbage dts (seen in ~1 of 4 such clips here; the muxer then refuses them): no B-frames, dts = pts
_X265_LOSSLESS = {"x265-params": "lossless=1:bframes=0:log-level=error"}
_X264_LOSSLESS = {"qp": "0"}
_PQ = {"colorspace": 9, "color_primaries": 9, "color_trc": 16, "color_range": 1}  # BT.2020nc / PQ, limited


def _planes(vf: "av.VideoFrame") -> list[np.ndarray]:
    """The frame's planes as arrays of their sample type, padding cut off."""
    fmt = av.VideoFormat(vf.format.name, vf.width, vf.height)
    dt = np.uint16 if bits_per_component(vf.format.name) > 8 else np.uint8
    out = []
    for i, p in enumerate(vf.planes):
        comp = next(c for c in fmt.components if c.plane == i)
        a = np.frombuffer(p, dt).reshape(-1, p.line_size // dt().itemsize)
        out.append(a[: comp.height, : comp.width])
    return out


def _gradient_planes(pix_fmt: str, i: int) -> list[np.ndarray]:
    """A smooth picture (limited range) at the format's depth: a diagonal luma ramp that 8 bits
    would band, gentle chroma ramps (kept inside the RGB gamut so RGB round trips are exact)."""
    bits = bits_per_component(pix_fmt)
    s = 1 << (bits - 8)
    f = av.VideoFormat(pix_fmt, W, H)
    cw, ch = f.components[1].width, f.components[1].height
    y = (50 * s + np.add.outer(np.arange(H) * 0.9, np.arange(W) * 1.3) * s / 4 + i).round()
    u = (128 * s + np.add.outer(np.zeros(ch), np.linspace(-6, 6, cw)) * s).round()
    v = (128 * s + np.add.outer(np.linspace(-5, 5, ch), np.zeros(cw)) * s).round()
    return [a.astype(np.uint16 if bits > 8 else np.uint8) for a in (y, u, v)]


def make_clip(path, *, codec: str = "libx265", pix_fmt: str = "yuv420p10le", frames: int = 3,
              options: dict | None = None, tags: dict | None = None, rotation: int | None = None
              ) -> list[list[np.ndarray]]:
    """Write a gradient clip; return each frame's planes (the codes a decoder gives back)."""
    truth = []
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = W, H, pix_fmt
        if rotation is not None:
            s.set_display_rotation(rotation)
        s.codec_context.options = dict(options or {})
        for k, v in (tags or {}).items():
            setattr(s.codec_context, k, v)
        for i in range(frames):
            vf = av.VideoFrame(W, H, pix_fmt)
            planes = _gradient_planes(pix_fmt, i)
            for dst, a in zip(_planes(vf), planes):
                dst[...] = a
            for k in ("colorspace", "color_range"):
                if tags and k in tags:
                    setattr(vf, k, tags[k])
            vf.pts, vf.time_base = i, Fraction(1, 25)
            truth.append(planes)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return truth


def decode_planes(path) -> tuple[list[list[np.ndarray]], "av.VideoStream"]:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        frames = [_planes(f) for f in c.decode(vs)]
        cc = vs.codec_context
        info = dict(pix_fmt=cc.pix_fmt, colorspace=int(cc.colorspace), color_primaries=int(cc.color_primaries),
                    color_trc=int(cc.color_trc), color_range=int(cc.color_range))
    return frames, info


# A synthetic "face": a 32 px crop mapped onto frame pixels [40, 72) x [16, 48) (scale 1).
_FACE_AFF = torch.tensor([[[1.0, 0.0, -40.0], [0.0, 1.0, -16.0]]])
_FACE_BOX = (16, 48, 40, 72)  # y0, y1, x0, x1 in the frame


def _outside_face(shape_hw, margin: int) -> np.ndarray:
    keep = np.ones(shape_hw, bool)
    y0, y1, x0, x1 = _FACE_BOX
    keep[max(0, y0 - margin): y1 + margin, max(0, x0 - margin): x1 + margin] = False
    return keep


def _run(src_path, dst_path, *, codec="hevc", crf=0, high_bit_depth=True, paste=True, sink_source=True):
    """source -> paste a grey-orange face crop into image and hi (as the pipeline does) -> sink."""
    crop = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    crop[0, 0], crop[0, 1], crop[0, 2] = 200, 120, 60
    seen = []
    with open_source(src_path, high_bit_depth=high_bit_depth) as src:
        with open_sink(dst_path, source=src if sink_source else None, codec=codec, crf=crf) as sink:
            for f in src:
                seen.append((f.hi is not None, src.high_bit_depth))
                if paste:
                    paste_faces(f.image, crop, _FACE_AFF)
                    if f.hi is not None:
                        paste_faces(f.hi, crop, _FACE_AFF)
                sink.write(f)
    return seen, sink


# --- pixel format rules ------------------------------------------------------------------
def test_bits_and_chroma_of_pixel_formats():
    table = {"yuv420p": (8, "420"), "yuvj422p": (8, "422"), "yuv420p10le": (10, "420"), "p010le": (10, "420"),
             "yuv422p10le": (10, "422"), "yuv444p12le": (12, "444"), "gbrp10le": (10, "444"),
             "gray10le": (10, "420"), "rgb48le": (16, "444"), "not-a-format": (8, "420")}
    assert {p: (bits_per_component(p), chroma_of(p)) for p in table} == table


X264 = {"yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le"}
X265 = X264 | {"yuv420p12le", "yuv422p12le", "yuv444p12le"}
SVT = {"yuv420p", "yuv420p10le"}


@pytest.mark.parametrize("src, supported, want", [
    ("yuv420p10le", X265, "yuv420p10le"),
    ("yuv422p10le", X264, "yuv422p10le"),  # chroma kept
    ("yuv420p12le", X265, "yuv420p12le"),  # depth kept
    ("yuv420p12le", X264, "yuv420p10le"),  # 12 -> 10 where the encoder stops at 10
    ("yuv444p12le", SVT, "yuv420p10le"),  # chroma traded before depth
    ("gray10le", X265, "yuv420p10le"),
    ("yuv420p16le", X265, "yuv420p12le"),
    ("yuv420p10le", {"yuv420p", "yuv444p"}, None),  # no >8-bit format: the caller falls back
])
def test_choose_high_pix_fmt(src, supported, want):
    assert choose_high_pix_fmt(src, supported) == want


# --- value types -----------------------------------------------------------------------------
def test_frame_hi_is_checked_derived_and_released():
    hi = torch.arange(4 * 6 * 3, dtype=torch.int32).reshape(4, 6, 3).mul(900).to(torch.uint16)
    f = Frame.from_tensor(None, hi=hi)
    assert f.hi is hi and f.image.dtype == torch.uint8
    assert torch.equal(f.image, (hi.to(torch.float64) / 257).round().to(torch.uint8))
    assert Frame.from_tensor(torch.zeros(4, 6, 3, dtype=torch.uint8)).hi is None
    with pytest.raises(ValueError, match=r"frame hi must be uint16 \[H, W, 3\] like its image"):
        Frame.from_tensor(torch.zeros(4, 6, 3, dtype=torch.uint8), hi=torch.zeros(4, 6, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"like its image \(4, 6, 3\)"):
        Frame.from_tensor(torch.zeros(4, 6, 3, dtype=torch.uint8), hi=torch.zeros(4, 5, 3, dtype=torch.uint16))
    f.release()
    with pytest.raises(FrameReleasedError):
        f.hi


def test_rgb8_from_rgb16_rounds_to_nearest():
    v = torch.arange(65536, dtype=torch.int32).to(torch.uint16)
    assert torch.equal(rgb8_from_rgb16(v), (v.to(torch.float64) / 257).round().to(torch.uint8))


def test_ring_hi_slots_are_fixed_and_only_when_asked():
    plain = FrameRing(2, 4, 6)
    assert plain.hi_slots is None
    with pytest.raises(ValueError, match="no high-bit-depth slots"):
        plain.write_hi_slot(0, torch.zeros(4, 6, 3, dtype=torch.uint16))
    ring = FrameRing(3, 4, 6, high_bit_depth=True)
    assert ring.hi_slots.shape == (3, 4, 6, 3) and ring.hi_slots.dtype == torch.uint16
    rgb16 = torch.full((4, 6, 3), 257 * 200 + 100, dtype=torch.uint16)
    img, hi = ring.write_hi_slot(1, rgb16)
    assert hi.data_ptr() == ring.hi_slots[1].data_ptr() and img.data_ptr() == ring.slots[1].data_ptr()
    assert torch.equal(hi, rgb16) and int(img.min()) == int(img.max()) == 200
    with pytest.raises(ValueError, match="frame size changed mid-stream"):
        ring.write_hi_slot(0, torch.zeros(4, 7, 3, dtype=torch.uint16))


# --- paste into a 16-bit frame ------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["torch", "cv2"])
def test_paste_into_uint16_frame_matches_uint8_paste_and_keeps_the_rest(backend):
    g = torch.Generator().manual_seed(0)
    hi = torch.randint(0, 65536, (80, 96, 3), generator=g, dtype=torch.int32).to(torch.uint16)
    lo = rgb8_from_rgb16(hi)
    crops = torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8)
    # one face at scale 1, one smaller (antialiased) and rotated
    c, s = np.cos(0.3) * 2.0, np.sin(0.3) * 2.0
    aff = torch.tensor([[[1.0, 0.0, -8.0], [0.0, 1.0, -10.0]], [[c, -s, -100.0], [s, c, -120.0]]], dtype=torch.float32)
    hi_before, lo_before = hi.clone(), lo.clone()
    paste_faces(hi, crops, aff, backend=backend)
    paste_faces(lo, crops, aff, backend=backend)
    changed = (hi != hi_before).any(-1)
    assert changed.any()
    # pixels outside every mask keep their exact 16-bit values; the 8-bit paste agrees
    assert torch.equal(hi[~changed], hi_before[~changed])
    assert not (lo != lo_before).any(-1)[~changed].any()
    d = (rgb8_from_rgb16(hi).int() - lo.int()).abs()
    assert int(d.max()) <= 1, "the 16-bit paste must show the same face as the 8-bit one"
    # a fully masked pixel is the crop value x257 (face 0 at scale 1: frame (x, y) = crop (x-8, y-10))
    assert torch.equal(hi[30, 25].long(), crops[0, :, 20, 17].long() * 257)


def test_paste_rejects_other_frame_dtypes():
    with pytest.raises(InvalidInputError, match=r"frame must be uint8 \(or uint16 rgb48\) \[H,W,3\], got torch.float32"):
        paste_faces(torch.zeros(8, 8, 3), torch.zeros(1, 3, 4, 4, dtype=torch.uint8), torch.zeros(1, 2, 3))


# --- conversions: swscale's rgb48 scale and chroma filters worked around -----------------------
def _bars_frame(pix_fmt: str, rng: int, cs: int) -> "av.VideoFrame":
    """Saturated colour bars over a grey ramp (sharp chroma edges: what blurs first)."""
    from av.video.reformatter import ColorRange, Colorspace

    x = np.arange(W)
    bars = np.array([[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16], [235, 16, 235],
                     [235, 16, 16], [16, 16, 235], [16, 16, 16]], np.uint8)[(x * 8) // W]
    img = np.concatenate([np.broadcast_to(bars, (H // 2, W, 3)),
                          np.broadcast_to(np.linspace(0, 255, W).astype(np.uint8)[None, :, None], (H // 2, W, 3))])
    vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24").reformat(
        format=pix_fmt, dst_colorspace=Colorspace.ITU709 if cs == 1 else Colorspace.BT2020,
        src_color_range=ColorRange.JPEG, dst_color_range=ColorRange.MPEG if rng == 1 else ColorRange.JPEG)
    vf.color_range, vf.colorspace = rng, cs
    return vf


@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv422p10le", "yuv444p10le", "yuv420p12le"])
@pytest.mark.parametrize("rng, cs", [(1, 1), (1, 9), (2, 1)])
def test_rgb48_round_trip_gives_back_the_codes(pix_fmt, rng, cs):
    """Decode to rgb48 and encode again, no codec: limited range gives back every code (also at
    sharp chroma edges: swscale's bilinear chroma would blur them each generation); full range
    luma exactly, chroma within a code (swscale's own full-range chroma rounding). White is
    65535 (swscale's rgb48 stops ~0.4% short), so 8-bit v is v * 257 as paste-back assumes."""
    from stream_gpen.io._convert import rgb_to_av

    vf = _bars_frame(pix_fmt, rng, cs)
    hi = av_to_rgb_numpy(vf, high=True)
    back = rgb_to_av(hi, pix_fmt=pix_fmt, colorspace=cs, color_range=rng)
    for k, (a, b) in enumerate(zip(_planes(vf), _planes(back))):
        assert int(np.abs(a.astype(int) - b).max()) <= (0 if rng == 1 or k == 0 else 1), f"plane {k}"
    white = rgb_to_av(np.full((H, W, 3), 65535, np.uint16), pix_fmt=pix_fmt, colorspace=cs, color_range=rng)
    bits = bits_per_component(pix_fmt)
    assert int(_planes(white)[0].max()) == ((235 << (bits - 8)) if rng == 1 else (1 << bits) - 1)
    # a grey ramp over every code (neutral chroma written as such): hi is the code on the full
    # 16-bit scale
    lo, top = (16 << (bits - 8), 235 << (bits - 8)) if rng == 1 else (0, (1 << bits) - 1)
    g = av.VideoFrame(W, H, pix_fmt)
    ramp = np.linspace(lo, top, H * W).round().reshape(H, W)
    for k, p in enumerate(_planes(g)):
        p[...] = ramp if k == 0 else 1 << (bits - 1)
    g.color_range, g.colorspace = rng, cs
    ideal = (ramp - lo) / (top - lo) * 65535
    hi_g = av_to_rgb_numpy(g, high=True)
    for c in range(3):
        assert np.abs(hi_g[..., c] - ideal).max() <= 2


# --- P010 (NVDEC 10-bit surfaces) maths, on CPU tensors through DLPack -------------------------
def test_p010_torch_conversion_matches_swscale(tmp_path):
    """NVDEC hands 10-bit video over as P010 surfaces: the torch maths that turns them into
    ``hi`` on the GPU agrees with the CPU path (exposed through DLPack as on the GPU)."""
    truth = make_clip(tmp_path / "g.mkv", frames=1, options=_X265_LOSSLESS, tags={"colorspace": 1, "color_range": 1})
    with av.open(str(tmp_path / "g.mkv")) as c:
        f = next(c.decode(video=0))
    assert np.array_equal(_planes(f)[0], truth[0][0])
    p010 = f.reformat(format="p010le")
    y, uv = torch.from_dlpack(p010.planes[0]), torch.from_dlpack(p010.planes[1])
    assert y.dtype == torch.uint16
    out16 = torch.empty((H, W, 3), dtype=torch.uint16)
    nv12_to_rgb(y, uv, out16, colorspace=1, full_range=is_full_range(f.format.name, f.color_range), bits=10)
    ref = av_to_rgb_numpy(f, high=True).astype(np.int64)
    d = np.abs(out16.numpy().astype(np.int64) - ref)
    assert d.max() <= 2  # the same maths as the CPU path (repeated chroma, full 16-bit scale)
    out8 = torch.empty((H, W, 3), dtype=torch.uint8)
    nv12_to_rgb(y, uv, out8, colorspace=1, full_range=False, bits=10)
    assert int((out8.int() - rgb8_from_rgb16(out16).int()).abs().max()) <= 1


# --- source -> paste -> sink --------------------------------------------------------------------
@pytest.mark.parametrize("codec, options", [("libx265", _X265_LOSSLESS), ("libx264", _X264_LOSSLESS)])
def test_10bit_source_frames_carry_hi_at_source_precision(tmp_path, codec, options):
    path = tmp_path / "in.mkv"
    make_clip(path, codec=codec, options=options)
    with av.open(str(path)) as c:
        ref = [av_to_rgb_numpy(f, high=True) for f in c.decode(video=0)]
    with open_source(path) as src:
        assert src.high_bit_depth and src.source_bits == 10 and src.metadata.extra["bits_per_component"] == 10
        assert src.ring.hi_slots is not None
        got = []
        for f in src:
            assert f.hi.dtype == torch.uint16 and f.hi.shape == (H, W, 3)
            assert torch.equal(f.image, rgb8_from_rgb16(f.hi))
            got.append(f.hi.numpy().copy())
            f.release()
    assert len(got) == len(ref) == 3
    assert all(np.array_equal(a, b) for a, b in zip(got, ref))
    assert len(np.unique(got[0][..., 1])) > 300  # the ramp really has more than 8 bits


def test_autorotate_turns_hi_with_the_image(tmp_path):
    path = tmp_path / "phone.mp4"
    make_clip(path, codec="libx264", frames=1, options=_X264_LOSSLESS, rotation=90)
    with av.open(str(path)) as c:
        ref = av_to_rgb_numpy(next(c.decode(video=0)), high=True)
    with open_source(path, autorotate=True) as src:
        assert (src.metadata.width, src.metadata.height) == (H, W)
        f = next(src)
        assert f.hi.shape == (W, H, 3) and torch.equal(f.image, rgb8_from_rgb16(f.hi))
        assert np.array_equal(f.hi.numpy(), np.rot90(ref, 1, (0, 1)))
        f.release()


def test_10bit_round_trip_keeps_precision_outside_the_face(tmp_path):
    src = tmp_path / "in.mkv"
    truth = make_clip(src, options=_X265_LOSSLESS)
    seen, sink = _run(src, tmp_path / "out10.mkv")
    assert seen == [(True, True)] * 3 and sink.fallbacks == []
    out, info = decode_planes(tmp_path / "out10.mkv")
    assert info["pix_fmt"] == "yuv420p10le" and len(out) == 3
    keep = _outside_face((H, W), margin=2)
    keep_c = keep[::2, ::2] & keep[1::2, 1::2]
    for t, o in zip(truth, out):
        assert np.abs(o[0].astype(int) - t[0])[keep].max() <= 2  # x265 at crf 0: near lossless
        for k in (1, 2):
            assert np.abs(o[k].astype(int) - t[k])[keep_c].max() <= 2
        # the face is there, at full strength in its middle: RGB (200, 120, 60) in BT.601 limited
        y_face = 16 + (65.481 * 200 + 128.553 * 120 + 24.966 * 60) / 255
        assert abs(float(o[0][28:36, 52:60].mean()) - y_face * 4) < 6
    # the same clip through the 8-bit path (today's behaviour): bands and loses ~2 bits
    seen8, _ = _run(src, tmp_path / "out8.mkv", high_bit_depth=False)
    assert seen8 == [(False, False)] * 3
    out8, info8 = decode_planes(tmp_path / "out8.mkv")
    assert info8["pix_fmt"] == "yuv420p"
    y10, y8 = out[0][0][keep].astype(int), out8[0][0][keep].astype(int) * 4
    err10, err8 = np.abs(y10 - truth[0][0][keep]).max(), np.abs(y8 - truth[0][0][keep]).max()
    assert err8 >= 2 * err10 and err8 >= 4  # 8 bits: 10-bit rounding plus x265's loss
    assert len(np.unique(y10)) > 2 * len(np.unique(y8))


@pytest.mark.parametrize("src_pix, codec, want", [
    ("yuv422p10le", "hevc", "yuv422p10le"),
    ("yuv420p12le", "hevc", "yuv420p12le"),
    ("yuv420p12le", "h264", "yuv420p10le"),
    ("yuv420p10le", "av1", "yuv420p10le"),
])
def test_hdr_tags_depth_and_chroma_are_kept(tmp_path, src_pix, codec, want):
    src = tmp_path / "pq.mkv"
    truth = make_clip(src, pix_fmt=src_pix, frames=2, options=_X265_LOSSLESS, tags=_PQ)
    out = tmp_path / ("out.mkv" if codec != "av1" else "out.mp4")
    _run(src, out, codec=codec, crf=0 if codec != "av1" else 1, paste=False)
    planes, info = decode_planes(out)
    assert info == dict(pix_fmt=want, colorspace=9, color_primaries=9, color_trc=16, color_range=1)
    s_in, s_out = 1 << (bits_per_component(src_pix) - 8), 1 << (bits_per_component(want) - 8)
    d = np.abs(planes[0][0].astype(np.float64) / s_out - truth[0][0] / s_in)
    # in 8-bit steps: 8-bit values (even when written into a 10-bit stream) are off by 0.25 on average
    assert d.mean() < 0.1 and d.max() <= 0.5


def test_8bit_source_is_unchanged(tmp_path):
    src = tmp_path / "in8.mkv"
    make_clip(src, pix_fmt="yuv420p", options=_X265_LOSSLESS)
    with open_source(src) as s:
        assert not s.high_bit_depth and s.ring.hi_slots is None and s.source_bits == 8
    seen, sink = _run(src, tmp_path / "out.mkv", codec="h264")
    assert seen == [(False, False)] * 3 and sink.fallbacks == []
    assert decode_planes(tmp_path / "out.mkv")[1]["pix_fmt"] == "yuv420p"


def test_high_bit_depth_false_is_the_8bit_path(tmp_path):
    src = tmp_path / "in.mkv"
    make_clip(src, options=_X265_LOSSLESS)
    with av.open(str(src)) as c:
        ref = [av_to_rgb_numpy(f) for f in c.decode(video=0)]
    with open_source(src, high_bit_depth=False) as s:
        assert not s.high_bit_depth and s.ring.hi_slots is None and s.source_bits == 10
        got = []
        for f in s:
            assert f.hi is None
            got.append(f.image.numpy().copy())
            f.release()
    assert all(np.array_equal(a, b) for a, b in zip(got, ref))
    with pytest.raises(InvalidInputError, match="high_bit_depth must be True or False, got 'yes'"):
        open_source(src, high_bit_depth="yes")


def test_encoder_without_10bit_format_falls_back_visibly(tmp_path, monkeypatch):
    from stream_gpen.io import _sink

    src = tmp_path / "in.mkv"
    make_clip(src, frames=2, options=_X265_LOSSLESS)
    real = _sink._video_formats
    monkeypatch.setattr(_sink, "_video_formats", lambda enc: {"yuv420p"} if enc == "libx265" else real(enc))
    _, sink = _run(src, tmp_path / "out.mkv", codec="hevc", paste=False)
    assert len(sink.fallbacks) == 1
    assert sink.fallbacks[0].startswith("libx265 (codec='hevc') has no pixel format above 8 bits in this FFmpeg build: "
                                        "the 10-bit source (yuv420p10le) is written as 8-bit 4:2:0")
    assert "--codec h264 / av1 keep its precision" in sink.fallbacks[0]
    assert decode_planes(tmp_path / "out.mkv")[1]["pix_fmt"] == "yuv420p"


def test_vp9_writes_what_this_build_can(tmp_path):
    """libvpx-vp9 is often built 8-bit only: then the output is 8-bit and says so, else 10-bit."""
    src = tmp_path / "in.mkv"
    make_clip(src, frames=2, options=_X265_LOSSLESS)
    formats = {f.name for f in av.codec.Codec("libvpx-vp9", "w").video_formats}
    want = choose_high_pix_fmt("yuv420p10le", formats)
    _, sink = _run(src, tmp_path / "out.webm", codec="vp9", crf=10, paste=False)
    assert decode_planes(tmp_path / "out.webm")[1]["pix_fmt"] == (want or "yuv420p")
    assert any("no pixel format above 8 bits" in m for m in sink.fallbacks) == (want is None)


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_stream_url_h264_goes_8bit_visibly(codec):
    """Ingest servers refuse H.264 High 10: a stream URL gets 8-bit H.264 (said so), HEVC 10-bit."""
    spec = "lavfi:testsrc2=size=64x48:rate=25:duration=0.2,format=yuv420p10le"
    with open_source(spec, live=False) as src:
        assert src.high_bit_depth
        with open_sink("udp://127.0.0.1:45998?pkt_size=1316", source=src, codec=codec, preset="ultrafast") as sink:
            for f in src:
                sink.write(f)
    assert sink.frames_written == 5
    assert sink._pix == ("yuv420p" if codec == "h264" else "yuv420p10le")
    assert [m for m in sink.fallbacks if "streamed as 8-bit" in m] == (
        ["stream output with codec='h264': the 10-bit source (yuv420p10le) is streamed as 8-bit 4:2:0, the only "
         "H.264 that ingest servers and players take (codec='hevc' keeps its precision)"] if codec == "h264" else [])


def test_sink_without_source_metadata_still_writes_10bit(tmp_path):
    src = tmp_path / "in.mkv"
    make_clip(src, frames=2, options=_X265_LOSSLESS)
    _, sink = _run(src, tmp_path / "out.mkv", sink_source=False, paste=False)
    assert decode_planes(tmp_path / "out.mkv")[1]["pix_fmt"] == "yuv420p10le"


# --- end to end through the API -----------------------------------------------------------------
@pytest.fixture(scope="module")
def face_clip_10bit(shared, tmp_path_factory):
    """Six frames of the talking head at 256x256, coded losslessly as 10-bit 4:2:0."""
    path = tmp_path_factory.mktemp("hb") / "face10.mkv"
    with av.open(str(shared / "data" / "videos" / "retalking_face2_frontal_talking_head.mp4")) as c, \
            av.open(str(path), "w") as o:
        s = o.add_stream("libx265", rate=25)
        s.width, s.height, s.pix_fmt = 256, 256, "yuv420p10le"
        s.codec_context.options = dict(_X265_LOSSLESS)
        for i, f in enumerate(c.decode(video=0)):
            if i == 6:
                break
            g = f.reformat(width=256, height=256, format="yuv420p10le", interpolation="AREA")
            g.pts, g.time_base = i, Fraction(1, 25)
            for p in s.encode(g):
                o.mux(p)
        for p in s.encode(None):
            o.mux(p)
    return path


def test_enhance_file_writes_10bit_with_faces_pasted(face_clip_10bit, tmp_path, mobilenet_weights):
    from stream_gpen import Enhancer
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator

    from tests._doubles import IdentityRestorer

    truth, _ = decode_planes(face_clip_10bit)
    assert len(np.unique(truth[0][0])) > 256
    # identity restorer: the picture survives, the face region only through 8-bit crops
    out = tmp_path / "id.mkv"
    summary = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights).enhance_file(
        face_clip_10bit, out, codec="hevc", crf=0)
    assert summary.frames_out == 6 and summary.faces_restored > 0
    planes, info = decode_planes(out)
    assert info["pix_fmt"] == "yuv420p10le" and len(planes) == 6
    d = np.abs(planes[0][0].astype(int) - truth[0][0])
    assert np.percentile(d, 50) <= 1  # most of the frame: the input's 10-bit codes
    assert len(np.unique(planes[0][0])) > 256
    # a random tiny GPEN changes the face: the change is in the 10-bit output too
    out2 = tmp_path / "gpen.mkv"
    enh = Enhancer(random_generator(TINY_CONFIG, seed=0), device="cpu", detector_weights=mobilenet_weights)
    summary2 = enh.enhance_file(face_clip_10bit, out2, codec="hevc", crf=0)
    assert summary2.faces_restored > 0 and not any("8 bits" in m for m in summary2.fallbacks)
    planes2, info2 = decode_planes(out2)
    assert info2["pix_fmt"] == "yuv420p10le"
    d2 = np.abs(planes2[0][0].astype(int) - truth[0][0])
    changed = d2 > 40
    assert changed.any(), "the restored face must reach the 10-bit output"
    ys, xs = np.nonzero(changed)
    assert xs.max() - xs.min() < 200 and ys.max() - ys.min() < 220  # the face, not the frame
    assert np.median(d2[~changed]) <= 1


def test_auto_codec_is_hevc_main10_with_apple_tag_and_bit_depth_option(face_clip_10bit, tmp_path, mobilenet_weights):
    """codec="auto" for a 10-bit source: HEVC Main 10 (H.264 High 10 plays almost nowhere), tagged
    'hvc1' in mp4 (Apple's players refuse 'hev1'); ``high_bit_depth=False`` / ``--bit-depth 8``
    decode and write 8-bit H.264 as before."""
    from stream_gpen import Enhancer
    from stream_gpen.cli import main

    from tests._doubles import IdentityRestorer

    enh = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    out = tmp_path / "auto.mp4"
    enh.enhance_file(face_clip_10bit, out, preset="ultrafast")
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "hevc" and s.codec_tag == "hvc1"
        assert next(c.decode(video=0)).format.name == "yuv420p10le"
    out8 = tmp_path / "eight.mp4"
    Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights,
             high_bit_depth=False).enhance_file(face_clip_10bit, out8, preset="ultrafast")
    with av.open(str(out8)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert next(c.decode(video=0)).format.name == "yuv420p"
    cli8 = tmp_path / "cli8.mkv"
    assert main(["enhance", str(face_clip_10bit), "-o", str(cli8), "--model", "classic", "--device", "cpu",
                 "--quiet", "--preset", "ultrafast", "--bit-depth", "8",
                 "--detector-weights", str(mobilenet_weights)]) == 0
    with av.open(str(cli8)) as c:
        assert next(c.decode(video=0)).format.name == "yuv420p"


@pytest.mark.parametrize("frames", [1, 2])
def test_one_or_two_frame_hevc_always_muxes(tmp_path, frames):
    """libx265 gives 1-2 frame clips a garbage dts about one time in three (the mp4 muxer then
    fails with "patches welcome"); the sink repairs it. Ten tries each make a miss unlikely
    (a per-try failure rate of 1/3 passes ten times with probability 2e-2 without the fix)."""
    src = tmp_path / "in.mkv"
    make_clip(src, frames=frames, options=_X265_LOSSLESS)
    for k in range(10):
        dst = tmp_path / f"o{k}.mp4"
        with open_source(src) as s, open_sink(dst, source=s, codec="hevc") as sink:
            for f in s:
                sink.write(f)
        with av.open(str(dst)) as c:
            assert sum(1 for _ in c.decode(video=0)) == frames


def test_stream_api_gives_the_16bit_picture_too(face_clip_10bit, mobilenet_weights):
    from stream_gpen import Enhancer

    from tests._doubles import IdentityRestorer

    enh = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    frames = list(enh.stream(face_clip_10bit))
    assert len(frames) == 6
    f = frames[0]
    assert f.hi is not None and f.hi.dtype == np.uint16 and f.hi.shape == f.image.shape
    # the two agree: to rounding, and within a level where faces were pasted into both
    assert np.abs(f.hi.astype(np.int32) / 257 - f.image).max() <= 1.0
    assert len(np.unique(f.hi[..., 1])) > 2 * len(np.unique(f.image[..., 1]))  # and it is finer


def test_max_pixels_budget_counts_the_16bit_copy(tmp_path):
    """The server's --max-pixels budgets 8-bit frames: a 10-bit upload whose 16-bit copy would
    triple that is decoded at 8 bits (said in fallbacks), not refused and not over budget."""
    src = tmp_path / "in.mkv"
    make_clip(src, frames=2, options=_X265_LOSSLESS)
    with av.open(str(src)) as c:
        w, h = c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height
    with open_source(src, max_pixels=3 * w * h) as s:  # room for the copy
        assert s.high_bit_depth and next(s).hi is not None
    with open_source(src, max_pixels=3 * w * h - 1) as s:
        assert not s.high_bit_depth and next(s).hi is None
        assert any("3x the memory" in m and "8 bits" in m for m in s.fallbacks)


def _interior_mode(values: np.ndarray) -> int:
    vals, counts = np.unique(values, return_counts=True)
    return int(vals[np.argmax(counts)])


def test_faces_in_the_16bit_picture_keep_the_models_precision(face_clip_10bit, mobilenet_weights):
    """A restorer whose output lies between 8-bit codes (100.4) reaches the 16-bit picture as
    100.4 * 257, not as the 8-bit 100 * 257; ``strength`` blends against the 16-bit input."""
    from stream_gpen import Enhancer

    from tests._doubles import FineRestorer

    kw = dict(device="cpu", detector_weights=mobilenet_weights, faces="largest")
    frames = list(Enhancer(FineRestorer(64), **kw).stream(face_clip_10bit))
    f = frames[0]
    solid = f.image[..., 1] == 100  # the face's interior (and any background pixel that happens to be 100)
    assert solid.sum() > 1000
    assert abs(_interior_mode(f.hi[..., 1][solid]) - round(100.4 * 257)) <= 1
    # strength 0.5: the blend with the input is made at 16 bits too, and agrees with the 8-bit one
    half = list(Enhancer(FineRestorer(64), strength=0.5, **kw).stream(face_clip_10bit))[0]
    core = solid & (np.abs(f.hi[..., 1].astype(np.int64) - round(100.4 * 257)) <= 1)
    h16 = half.hi[..., 1][core].astype(np.int64)
    d = np.abs(h16 / 257 - half.image[..., 1][core])  # the 8-bit path rounds three times on the way
    assert d.max() <= 1.5 and d.mean() <= 0.5
    assert np.mean(h16 % 257 == 0) < 0.05  # not 8-bit codes scaled up


def test_hdr_faces_in_the_16bit_picture_keep_the_models_precision(face_clip_10bit, tmp_path, mobilenet_weights):
    """The same through the HDR mapping (an HLG-tagged copy of the clip): the model's change is
    mapped back at full precision, not as G of an 8-bit code: a face made 100.4 differs from one
    made 100.0 by G(100.4) - G(100), where the uint8 outputs (both 100) are the same."""
    from stream_gpen import Enhancer
    from stream_gpen.faces._hdr import HdrColour

    from tests._doubles import FineRestorer

    hlg = tmp_path / "hlg.mkv"
    with av.open(str(face_clip_10bit)) as c, av.open(str(hlg), "w") as o:
        s = o.add_stream("libx265", rate=25)
        s.width, s.height, s.pix_fmt = 256, 256, "yuv420p10le"
        s.codec_context.options = dict(_X265_LOSSLESS)
        cc = s.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace = 9, 18, 9
        for i, fr in enumerate(c.decode(video=0)):
            fr.pts, fr.time_base = i, Fraction(1, 25)
            for p in s.encode(fr):
                o.mux(p)
        for p in s.encode(None):
            o.mux(p)
    f, f0 = (list(Enhancer(FineRestorer(64, value), device="cpu", detector_weights=mobilenet_weights,
                           faces="largest").stream(hlg))[0] for value in (100.4, 100.0))
    colour = HdrColour("hlg")
    want = float(colour._g(torch.full((1, 3, 1, 1), 100.4 / 255.0))[0, 1, 0, 0]
                 - colour._g(torch.full((1, 3, 1, 1), 100 / 255.0))[0, 1, 0, 0]) * 65535
    assert want > 30  # the test can tell the two apart
    d = f.hi[..., 1].astype(np.float64) - f0.hi[..., 1].astype(np.float64)
    near = np.abs(d - want) <= 2
    assert near.sum() > 1000  # the face's interior carries the 0.4 of an SDR code, to 16-bit rounding
    assert (np.abs(d) <= 2).sum() > 0.5 * d.size  # (outside the face: the same picture)


_HDR10_X265 = "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50):max-cll=1000,400"


@pytest.mark.parametrize("codec, name", [("auto", "o.mp4"), ("av1", "o.mkv")])
def test_hdr10_mastering_display_and_light_level_are_kept(tmp_path, codec, name):
    """HDR10 static metadata (the grading display and the content's peaks) reaches the output's
    bitstream (x265 SEI / AV1 metadata OBUs), so TVs tone-map as the grade intended."""
    from stream_gpen.io._meta import hdr_static_metadata

    src = tmp_path / "hdr10.mkv"
    make_clip(src, frames=2, options={"x265-params": f"log-level=error:lossless=1:{_HDR10_X265}"}, tags=_PQ)
    with open_source(src) as s:
        want = {k: s.metadata.extra[k] for k in ("mastering_display", "content_light")}
        assert want["content_light"] == (1000, 400) and want["mastering_display"]["max_nits"] == 1000
        assert want["mastering_display"]["g"] == (0.265, 0.69) and want["mastering_display"]["min_nits"] == 0.005
        with open_sink(tmp_path / name, source=s, codec=codec, **({"preset": "12"} if codec == "av1" else {})) as sink:
            for f in s:
                sink.write(f)
    assert not any("HDR10" in f for f in sink.fallbacks)
    with av.open(str(tmp_path / name)) as c:
        got = hdr_static_metadata(next(c.decode(video=0)))
    assert got["content_light"] == (1000, 400)
    for k in ("r", "g", "b", "white"):
        assert np.allclose(got["mastering_display"][k], want["mastering_display"][k], atol=1e-4)
    assert got["mastering_display"]["max_nits"] == pytest.approx(1000, rel=1e-3)
    assert got["mastering_display"]["min_nits"] == pytest.approx(0.005, rel=0.05)


def test_hdr10_metadata_an_encoder_cannot_take_is_reported(tmp_path):
    src = tmp_path / "hdr10.mkv"
    make_clip(src, frames=2, options={"x265-params": f"log-level=error:{_HDR10_X265}"}, tags=_PQ)
    with open_source(src) as s, open_sink(tmp_path / "o.mp4", source=s, codec="h264") as sink:
        for f in s:
            sink.write(f)
    assert any(f.startswith("HDR10 metadata (mastering display / content light level) dropped: libx264")
               for f in sink.fallbacks)
