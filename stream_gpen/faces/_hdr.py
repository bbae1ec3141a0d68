"""HDR video (PQ / HLG): GPEN sees the face as an SDR picture, and its change is mapped back.

GPEN was trained on SDR photos (BT.709/sRGB primaries, a display gamma, skin near the middle of
the code range). HDR video stores light very differently: PQ (HDR10, SMPTE ST 2084) puts a face
at ~100-200 nits around code 0.5-0.58 with flat contrast; HLG (BT.2100, phones' default) is
closer to SDR but, like PQ, in BT.2020 primaries, where skin looks desaturated when read as
BT.709. A crop in those codes is an out-of-distribution input: the model "restores" contrast and
colour toward its SDR prior, and the pasted face no longer matches its surroundings.

:class:`HdrColour` maps each crop to SDR before the model and the model's *change* back:

* to SDR (``to_sdr``): decode the transfer function to linear light relative to the HDR reference
  white (203 cd/m², ITU-R BT.2408; HLG through its inverse OETF and the BT.2100 OOTF for a
  1000 cd/m² display), convert the primaries to BT.709 (matrices from the primaries'
  chromaticities), compress highlights above ``knee`` with a smooth shoulder into [0, 1), encode
  with the BT.1886 gamma 2.4.
* back (``from_sdr``): ``x + G(y) - G(f)``, where ``G`` inverts the SDR mapping, ``f`` is the
  uint8 crop the model was given and ``y`` what it returned. Pixels the model left alone come back
  exactly (no round-trip error from rounding, clipping or gamut mapping), and what it changed is
  changed by the same amount in light, in the source's own codes. In the shoulder (light above
  ``knee``, squeezed into SDR's last codes, where ``G``'s slope grows without bound: one SDR code
  at the top spans thousands of cd/m²) the change is applied as a ratio of light instead: a pixel
  the model made 10 % darker or brighter in SDR light is made 10 % darker or brighter in the
  source's light. So a highlight moves by at most 1/knee (+33 %) of its own light, and a GAN's
  real change of a highlight (tens of SDR codes) still reads as the same relative change.

Both are per-crop element-wise maps (plus a 3x3 matrix): a small cost next to the model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from stream_gpen.errors import InvalidInputError

# --- transfer functions --------------------------------------------------------------------
REFERENCE_WHITE = 203.0  # cd/m², ITU-R BT.2408 HDR reference (graphics) white
_PQ_M1, _PQ_M2 = 2610 / 16384, 2523 / 4096 * 128
_PQ_C1, _PQ_C2, _PQ_C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
_HLG_A = 0.17883277
_HLG_B = 1 - 4 * _HLG_A
_HLG_C = 0.5 - _HLG_A * math.log(4 * _HLG_A)
HLG_PEAK = 1000.0  # cd/m², the nominal display of BT.2100's HLG reference OOTF
HLG_GAMMA = 1.2  # system gamma at 1000 cd/m²


def pq_to_nits(e: torch.Tensor) -> torch.Tensor:
    """SMPTE ST 2084 EOTF: code in [0, 1] -> cd/m²."""
    p = e.clamp(0, 1) ** (1 / _PQ_M2)
    return 10000.0 * ((p - _PQ_C1).clamp(min=0) / (_PQ_C2 - _PQ_C3 * p)) ** (1 / _PQ_M1)


def nits_to_pq(nits: torch.Tensor) -> torch.Tensor:
    y = (nits / 10000.0).clamp(0, 1) ** _PQ_M1
    return ((_PQ_C1 + _PQ_C2 * y) / (1 + _PQ_C3 * y)) ** _PQ_M2


def hlg_inverse_oetf(e: torch.Tensor) -> torch.Tensor:
    """BT.2100 HLG: code in [0, 1] -> scene linear in [0, 1]."""
    e = e.clamp(0, 1)
    low = e * e / 3
    high = (torch.exp((e - _HLG_C) / _HLG_A) + _HLG_B) / 12
    return torch.where(e <= 0.5, low, high)


def hlg_oetf(s: torch.Tensor) -> torch.Tensor:
    s = s.clamp(0, 1)
    low = torch.sqrt(3 * s)
    high = _HLG_A * torch.log((12 * s - _HLG_B).clamp(min=1e-12)) + _HLG_C
    return torch.where(s <= 1 / 12, low, high)


# --- primaries -----------------------------------------------------------------------------
_PRIMARIES = {  # CIE xy of R, G, B; all with the D65 white point
    "bt709": ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)),
    "bt2020": ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
    "smpte432": ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)),  # Display P3
}
_D65 = (0.3127, 0.3290)
_LUMA = {"bt709": (0.2126, 0.7152, 0.0722), "bt2020": (0.2627, 0.6780, 0.0593),
         "smpte432": (0.2290, 0.6917, 0.0793)}


def rgb_to_xyz(primaries: str) -> torch.Tensor:
    """The linear RGB -> CIE XYZ matrix (float64) of a set of primaries, white = D65 at Y = 1."""
    def xyz(x, y):
        return torch.tensor([x / y, 1.0, (1 - x - y) / y], dtype=torch.float64)

    p = torch.stack([xyz(*c) for c in _PRIMARIES[primaries]], dim=1)  # columns R, G, B
    s = torch.linalg.solve(p, xyz(*_D65))
    return p * s[None, :]


def primaries_matrix(src: str, dst: str) -> torch.Tensor:
    """Linear RGB in ``src`` primaries -> linear RGB in ``dst`` primaries (float64 [3, 3])."""
    return torch.linalg.solve(rgb_to_xyz(dst), rgb_to_xyz(src))


# --- the adapter ---------------------------------------------------------------------------
TRANSFERS = {"smpte2084": "pq", "arib-std-b67": "hlg"}


@dataclass
class HdrColour:
    """SDR view of HDR crops for the model, and the model's change mapped back (module doc).

    ``transfer``: ``"pq"`` or ``"hlg"``; ``primaries``: ``"bt2020"`` (HDR's usual),
    ``"smpte432"`` (P3) or ``"bt709"``. ``knee``: relative light (1.0 = reference white) above which
    highlights are compressed into SDR's range; a face lit below it maps linearly, and the
    model's change to light above it comes back as a ratio (module doc). Raising it gives more SDR
    codes to the face's brightest skin and fewer to highlights.
    """

    transfer: str
    primaries: str = "bt2020"
    knee: float = 0.75
    gamma: float = 2.4

    def __post_init__(self) -> None:
        if self.transfer not in ("pq", "hlg"):
            raise InvalidInputError(f"transfer must be 'pq' or 'hlg', got {self.transfer!r}")
        if self.primaries not in _PRIMARIES:
            raise InvalidInputError(f"primaries must be one of {tuple(_PRIMARIES)}, got {self.primaries!r}")
        if not 0.1 <= self.knee < 1.0:
            raise InvalidInputError(f"knee must be in [0.1, 1), got {self.knee!r}")
        self._m = primaries_matrix(self.primaries, "bt709").to(torch.float32)
        self._m_inv = primaries_matrix("bt709", self.primaries).to(torch.float32)
        self._luma = torch.tensor(_LUMA[self.primaries], dtype=torch.float32)
        # the most light a code can hold (relative to reference white): the shoulder's inverse is
        # capped there, so an SDR 255 (any light above ~14x reference white) keeps a finite gain
        self._peak = (10000.0 if self.transfer == "pq" else HLG_PEAK) / REFERENCE_WHITE

    @classmethod
    def for_video(cls, metadata) -> "HdrColour | None":
        """The adapter a video's colour tags call for, or ``None`` for SDR (and untagged) video."""
        transfer = TRANSFERS.get(str(getattr(metadata, "color_trc", "") or ""))
        if transfer is None:
            return None
        prim = str(getattr(metadata, "color_primaries", "") or "")
        return cls(transfer, prim if prim in _PRIMARIES else "bt2020")

    @classmethod
    def for_image(cls, image_info: dict | None) -> "HdrColour | None":
        """The adapter an HDR photo calls for (a HEIF/AVIF whose nclx colour description says PQ
        or HLG: cameras' HDR HEIF modes), or ``None``. nclx codes (H.273): transfer 16 = PQ,
        18 = HLG; primaries 1 = BT.709, 9 = BT.2020, 12 = Display P3."""
        nclx = (image_info or {}).get("nclx_profile") or {}
        transfer = {16: "pq", 18: "hlg"}.get(nclx.get("transfer_characteristics"))
        if transfer is None:
            return None
        return cls(transfer, {1: "bt709", 9: "bt2020", 12: "smpte432"}.get(nclx.get("color_primaries"), "bt2020"))

    def describe(self) -> str:
        return (f"HDR ({self.transfer.upper()}, {self.primaries}): faces are restored as SDR BT.709 pictures "
                f"(reference white {REFERENCE_WHITE:g} cd/m²) and the model's change is mapped back")

    # light <-> codes --------------------------------------------------------------------------
    def _to_light(self, x: torch.Tensor) -> torch.Tensor:
        """Codes [n,3,h,w] in [0,1] -> linear light relative to reference white, source primaries."""
        if self.transfer == "pq":
            return pq_to_nits(x) / REFERENCE_WHITE
        s = hlg_inverse_oetf(x)
        ys = torch.einsum("nchw,c->nhw", s, self._luma.to(s.device))[:, None].clamp(min=1e-9)
        return HLG_PEAK * ys ** (HLG_GAMMA - 1) * s / REFERENCE_WHITE

    def _from_light(self, light: torch.Tensor) -> torch.Tensor:
        if self.transfer == "pq":
            return nits_to_pq(light * REFERENCE_WHITE)
        d = (light * REFERENCE_WHITE / HLG_PEAK).clamp(min=0)
        # invert the OOTF: display luminance Yd = Ys ** gamma (both relative to the peak)
        yd = torch.einsum("nchw,c->nhw", d, self._luma.to(d.device))[:, None].clamp(min=1e-12)
        ys = yd ** (1 / HLG_GAMMA)
        return hlg_oetf(d * ys / yd)

    def _shoulder(self, v: torch.Tensor) -> torch.Tensor:
        """[0, inf) -> [0, 1): identity up to ``knee``, then k + (1-k)·u/(1+u), u = (v-k)/(1-k)."""
        k = self.knee
        u = ((v - k) / (1 - k)).clamp(min=0)
        return torch.where(v <= k, v, k + (1 - k) * u / (1 + u))

    def _unshoulder(self, t: torch.Tensor) -> torch.Tensor:
        k = self.knee
        r = ((t - k) / (1 - k)).clamp(0, 1 - 1e-4)
        return torch.where(t <= k, t, k + (1 - k) * r / (1 - r))

    def _mat(self, m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,njhw->nihw", m.to(x.device), x)

    def sdr_float(self, crops: torch.Tensor) -> torch.Tensor:
        """Source-coded uint8 crops -> SDR BT.709 gamma-coded float in [0, 1] (``F``)."""
        return self._f(crops.to(torch.float32) / 255.0)

    def _f(self, codes: torch.Tensor) -> torch.Tensor:
        """``F`` on source codes in [0, 1] (float): SDR BT.709 gamma-coded float in [0, 1]."""
        light = self._mat(self._m, self._to_light(codes))
        return self._shoulder(light.clamp(min=0)) ** (1 / self.gamma)

    def _g(self, sdr: torch.Tensor) -> torch.Tensor:
        """SDR gamma-coded [0, 1] -> source codes [0, 1] (``G``, inverse of ``F`` on its range)."""
        light = self._unshoulder(sdr.clamp(0, 1) ** self.gamma)
        return self._from_light(self._mat(self._m_inv, light).clamp(min=0))

    # the restorer's view ----------------------------------------------------------------------
    def to_sdr(self, crops: torch.Tensor) -> torch.Tensor:
        """uint8 source crops ``[n,3,S,S]`` -> uint8 SDR crops for the model."""
        return (self.sdr_float(crops) * 255.0).round_().clamp_(0, 255).to(torch.uint8)

    def _change(self, y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """The model's change from the SDR ``f`` it was given to its ``y`` (both gamma-coded [0, 1])
        in source codes [0, 1]: ``G(y) - G(f)`` where ``f`` lies below the knee; in the shoulder,
        its change of SDR light scaled by the pixel's own compression ``U(t_f) / t_f`` (``U`` the
        shoulder's inverse), i.e. the light multiplied by ``t_y / t_f``. Zero where ``y == f``."""
        tf, ty = f.clamp(0, 1) ** self.gamma, y.clamp(0, 1) ** self.gamma
        lf = self._unshoulder(tf).clamp(max=self._peak)
        gain = torch.where(tf > self.knee, lf / tf.clamp(min=self.knee), torch.ones_like(tf))
        ly = (lf + gain * (ty - tf)).clamp(min=0)
        return self._from_light(self._mat(self._m_inv, ly).clamp(min=0)) - self._from_light(
            self._mat(self._m_inv, lf).clamp(min=0))

    def from_sdr(self, restored_sdr: torch.Tensor, crops: torch.Tensor, given_sdr: torch.Tensor) -> torch.Tensor:
        """The model's output (SDR uint8) -> source-coded uint8: ``x`` plus the model's change from
        ``given_sdr`` (what :meth:`to_sdr` handed it) mapped back (module doc)."""
        y = restored_sdr.to(torch.float32) / 255.0
        f = given_sdr.to(device=y.device, dtype=torch.float32) / 255.0
        x = crops.to(device=y.device, dtype=torch.float32)
        out = x + 255.0 * self._change(y, f)
        return out.round_().clamp_(0, 255).to(torch.uint8)

    def from_sdr_fine(self, restored_fine: torch.Tensor, crops_hi: torch.Tensor,
                      given_sdr: torch.Tensor) -> torch.Tensor:
        """``from_sdr`` at full precision, for 10/12-bit video: the model's unquantised output
        (float32, 0..255 SDR scale), the source crops at 16 bits (uint16 rgb48) and the uint8 SDR
        crops the model was given -> source codes as float32 on the 0..255 scale. The change is
        measured against what the model was given, so a pixel it left alone keeps its 16-bit
        code exactly (measured against the unrounded ``F(x)``, the half SDR code the model never
        saw came back as a change: tens of 10-bit codes in highlights)."""
        y = restored_fine.to(torch.float32) / 255.0
        f = given_sdr.to(device=y.device, dtype=torch.float32) / 255.0
        x = crops_hi.to(device=y.device, dtype=torch.float32) / 65535.0
        out = x + self._change(y, f)
        return out.mul_(255.0).clamp_(0, 255)

__all__ = ["HdrColour", "REFERENCE_WHITE", "hlg_inverse_oetf", "hlg_oetf", "nits_to_pq", "pq_to_nits",
           "primaries_matrix"]
