"""HDR highlights (hunt 32): light above the knee is squeezed into SDR's last few codes, so the way
back must neither turn the model's input rounding into a change nor blow one SDR code up into
thousands of cd/m²."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from stream_gpen.faces._hdr import HdrColour


def _grey_ramp(colour: HdrColour, top: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grey source pixels from skin up to ``top`` (PQ 0.95: ~5900 cd/m²; HLG 1.0: its peak), at 16
    bits, their 8-bit crop, and the SDR crop the model is given."""
    codes = torch.linspace(0.3, top, 256).view(1, 1, 1, -1).expand(1, 3, 1, 256)
    x_hi = (codes * 65535).round().to(torch.int32).to(torch.uint16)
    x8 = (x_hi.int() // 257).to(torch.uint8)
    return x_hi, x8, colour.to_sdr(x8)


def _shoulder(colour: HdrColour, given: torch.Tensor) -> torch.Tensor:
    return given.float() > 255 * colour.knee ** (1 / colour.gamma)


@pytest.mark.parametrize("transfer, top", [("pq", 0.95), ("hlg", 1.0)])
def test_a_pixel_the_model_left_alone_comes_back_exactly_highlights_too(transfer, top):
    colour = HdrColour(transfer)
    x_hi, x8, given = _grey_ramp(colour, top)
    assert _shoulder(colour, given).sum() > 50  # the ramp reaches well into the shoulder
    # the model's unquantised output is what it was given: the 16-bit codes come back
    back = colour.from_sdr_fine(given.float(), x_hi, given)
    assert float((back * 257 - x_hi.float()).abs().max()) < 0.05
    assert torch.equal(colour.from_sdr(given, x8, given), x8)


@pytest.mark.parametrize("transfer, top, codes10", [("pq", 0.95, 2.5), ("hlg", 1.0, 4.0)])
@pytest.mark.parametrize("step", [-2, -1, 1, 2])
def test_a_small_sdr_change_moves_a_highlight_by_as_little(transfer, top, codes10, step):
    """Bound: a change of ``step`` SDR codes on a shoulder pixel ``f`` changes its light by the
    factor ``((f + step) / f) ** 2.4`` (2 codes: at most 2.2 %), within 1 % of light: at most
    ``codes10`` 10-bit codes. (It was: 1 code took 500 cd/m² to ~700, 2 took 800 to 10000.)"""
    colour = HdrColour(transfer)
    x_hi, x8, given = _grey_ramp(colour, top)
    y = (given.float() + step).clamp(0, 255)
    sh = _shoulder(colour, given)[0, 1, 0]
    # the 8-bit path: a 10-bit step is a quarter of an 8-bit code
    out8 = colour.from_sdr(y.round().to(torch.uint8), x8, given)
    assert int((out8.int() - x8.int()).abs()[0, 1, 0][sh].max()) <= 1
    out = colour.from_sdr_fine(y, x_hi, given)
    d10 = (out / 255 - x_hi.float() / 65535)[0, 1, 0] * 1023
    assert float(d10[sh].abs().max()) <= codes10
    light_in = colour._to_light(x_hi.float() / 65535)[0, 1, 0]
    light_out = colour._to_light(out / 255)[0, 1, 0]
    want = (y / given.float())[0, 1, 0] ** colour.gamma
    ends = out[0, 1, 0] >= 254.99  # (HLG's peak code cannot go brighter)
    ratio = (light_out / light_in)[sh & ~ends]
    assert float((ratio - want[sh & ~ends]).abs().max()) < 0.01


@pytest.mark.parametrize("transfer, top", [("pq", 0.95), ("hlg", 1.0)])
def test_a_gans_real_change_of_a_highlight_comes_back_as_the_same_ratio_of_light(transfer, top):
    """GPEN may take tens of SDR codes off a shiny forehead: the highlight is darkened by the same
    factor of light as the model darkened its SDR picture, not left alone and not sent to black."""
    colour = HdrColour(transfer)
    x_hi, _, given = _grey_ramp(colour, top)
    y = given.float() - 40
    out = colour.from_sdr_fine(y, x_hi, given)
    sh = _shoulder(colour, given)[0, 1, 0]
    ratio = (colour._to_light(out / 255) / colour._to_light(x_hi.float() / 65535))[0, 1, 0][sh]
    want = ((y / given.float())[0, 1, 0] ** colour.gamma)[sh]
    assert float((ratio - want).abs().max()) < 0.02
    assert float(ratio.max()) < 0.7


class _FineIdentity:
    """Gives back what it was given, as a restorer whose output is finer than 8 bits does."""

    name = "identity"
    fallbacks: list = []

    def __init__(self, size: int) -> None:
        self.size, self.device = size, torch.device("cpu")

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        return crops.clone()

    def restore_fine(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return crops.clone(), crops.float()


def _bright_face_clip(shared, path, trc: int):
    """One 10-bit frame of the talking head with its codes lifted to 0.72..1 (HLG: the face lies in
    the shoulder), tagged ``trc`` (18 HLG, 14 SDR BT.2020)."""
    with av.open(str(shared / "data" / "videos" / "retalking_face2_frontal_talking_head.mp4")) as c, \
            av.open(str(path), "w") as o:
        s = o.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 256, 256, "yuv420p10le"
        s.codec_context.color_primaries, s.codec_context.color_trc, s.codec_context.colorspace = 9, trc, 9
        f = next(c.decode(video=0)).reformat(width=256, height=256, format="rgb48le", interpolation="AREA")
        rgb = ((0.72 + 0.28 * f.to_ndarray().astype(np.float64) / 65535) * 65535).round().astype(np.uint16)
        g = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(format="yuv420p10le", dst_colorspace=9)
        g.pts, g.time_base = 0, Fraction(1, 25)
        for p in [*s.encode(g), *s.encode(None)]:
            o.mux(p)
    return path


def test_a_bright_hlg_face_a_model_leaves_alone_changes_as_little_as_its_sdr_twin(shared, tmp_path,
                                                                                 mobilenet_weights):
    """End to end (10-bit HLG, the 16-bit path): what is left is the warp's round trip, as for the
    same codes tagged SDR, not the SDR rounding the model never saw (it was: thousands of pixels
    off by more than 8 10-bit codes, where the SDR twin has a few dozen)."""
    from stream_gpen import Enhancer
    from stream_gpen.io import open_source

    far = {}
    for trc in (18, 14):
        clip = _bright_face_clip(shared, tmp_path / f"{trc}.mkv", trc)
        out = list(Enhancer(_FineIdentity(512), device="cpu", detector_weights=mobilenet_weights,
                            faces="largest").stream(clip))[0]
        with open_source(clip) as s:
            ref = np.asarray(next(iter(s)).hi)
        d = np.abs(out.hi.astype(np.float64) - ref.astype(np.float64)) / 64
        assert (d > 0.5).sum() > 10000  # the face went through the pipeline
        far[trc] = int((d > 8).sum())
    assert far[18] <= 2 * far[14] + 50, far
