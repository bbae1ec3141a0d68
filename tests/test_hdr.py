"""HDR video (PQ / HLG): GPEN gets SDR pictures of the faces, and its change is mapped back."""
from __future__ import annotations

from types import SimpleNamespace

import av
import cv2
import numpy as np
import pytest
import torch

from stream_gpen.errors import InvalidInputError
from stream_gpen.faces._hdr import (HdrColour, hlg_inverse_oetf, hlg_oetf, nits_to_pq, pq_to_nits,
                                    primaries_matrix)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(255.0**2 / ((a.float() - b.float()) ** 2).mean()))


def test_transfer_functions_and_primaries():
    # SMPTE ST 2084 reference points: 100 cd/m² -> 0.5081, 1000 -> 0.7518, 10000 -> 1
    pq = nits_to_pq(torch.tensor([0.0, 100.0, 1000.0, 10000.0], dtype=torch.float64))
    assert pq.tolist() == pytest.approx([7.3e-7, 0.5081, 0.7518, 1.0], abs=2e-4)
    x = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(nits_to_pq(pq_to_nits(x)), x, atol=1e-6)  # PQ(0 cd/m²) = c1^m2 = 7.3e-7
    # BT.2100 HLG: scene 1/12 -> 0.5, 1 -> 1.0, and the two halves meet continuously
    assert hlg_oetf(torch.tensor([1 / 12, 1.0], dtype=torch.float64)).tolist() == pytest.approx([0.5, 1.0], abs=1e-6)
    assert torch.allclose(hlg_oetf(hlg_inverse_oetf(x)), x, atol=1e-7)
    # BT.2020 -> BT.709, as published in ITU-R BT.2087 (computed here from the chromaticities)
    m = primaries_matrix("bt2020", "bt709")
    assert torch.allclose(m, torch.tensor([[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083],
                                           [-0.0182, -0.1006, 1.1187]], dtype=torch.float64), atol=1e-4)
    assert torch.allclose(m @ primaries_matrix("bt709", "bt2020"), torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(m.sum(dim=1), torch.ones(3, dtype=torch.float64), atol=1e-9)  # white stays white


def _sdr_face(size: int = 128) -> torch.Tensor:
    from tests.conftest import shared_dir

    bgr = cv2.imread(str(shared_dir() / "data/faces/aligned/gpen_ffhq_00000.png"))
    return torch.from_numpy(cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)[:, :, ::-1].copy()).permute(2, 0, 1)[None]


def _as_hdr(colour: HdrColour, sdr: torch.Tensor, exposure: float = 0.7) -> torch.Tensor:
    """The SDR picture as an HDR camera would store it: its light (BT.709, gamma 2.4) at
    ``exposure`` x reference white, in BT.2020 and the transfer's codes, 8-bit."""
    lin = (sdr.float() / 255) ** 2.4 * exposure
    codes = colour._from_light(colour._mat(colour._m_inv, lin))
    return (codes * 255).round().clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_model_sees_the_face_as_sdr_and_its_change_comes_back(transfer):
    colour = HdrColour(transfer)
    sdr = _sdr_face()
    hdr = _as_hdr(colour, sdr)
    given = colour.to_sdr(hdr)
    want = ((sdr.float() / 255) ** 2.4 * 0.7) ** (1 / 2.4) * 255  # the same light, SDR-coded
    assert _psnr(given, want) > 33  # what the model sees is the SDR picture (8-bit HDR codes limit it)
    assert _psnr(hdr, want) < 25  # ...which the raw HDR codes are not
    # a model that changes nothing changes nothing, exactly (no round trip through the gamut map)
    assert torch.equal(colour.from_sdr(given, hdr, given), hdr)
    # a model that brightens the face by 12 SDR codes: seen again as SDR, the result is 12 brighter
    brighter = (given.int() + 12).clamp(0, 255).to(torch.uint8)
    back = colour.from_sdr(brighter, hdr, given)
    inside = (given > 20) & (given < 200)  # away from clipping at either end
    delta = colour.to_sdr(back).float() - given.float()
    assert abs(float(delta[inside].mean()) - 12) < 1.5
    assert float(back.float().mean()) > float(hdr.float().mean())


def test_for_video_reads_the_tags():
    md = SimpleNamespace(color_trc="smpte2084", color_primaries="bt2020")
    c = HdrColour.for_video(md)
    assert c.transfer == "pq" and c.primaries == "bt2020" and "PQ" in c.describe()
    assert HdrColour.for_video(SimpleNamespace(color_trc="arib-std-b67", color_primaries="unspecified")).primaries == "bt2020"
    assert HdrColour.for_video(SimpleNamespace(color_trc="arib-std-b67", color_primaries="bt709")).transfer == "hlg"
    for trc in ("bt709", "unspecified", "iec61966-2-1"):
        assert HdrColour.for_video(SimpleNamespace(color_trc=trc, color_primaries="bt2020")) is None
    assert HdrColour.for_video(None) is None
    with pytest.raises(InvalidInputError, match="transfer must be 'pq' or 'hlg'"):
        HdrColour("gamma22")


class _Recorder:
    name = "recorder"
    fallbacks: list = []

    def __init__(self, size=64):
        self.size = size
        self.device = torch.device("cpu")
        self.means: list[float] = []

    def __call__(self, crops):
        self.means.append(float(crops.float().mean()))
        return crops.clone()


def test_pq_clip_goes_through_the_model_as_sdr(tmp_path, shared, mobilenet_weights, monkeypatch):
    """End to end on a PQ-tagged clip of a real face: the model's crops are SDR-bright, and with a
    model that changes nothing the output is the input (the mapping is exact where nothing changed)."""
    from stream_gpen import Enhancer

    colour = HdrColour("pq")
    bgr = cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))
    sdr = torch.from_numpy(cv2.resize(bgr, (320, 240))[:, :, ::-1].copy()).permute(2, 0, 1)[None]
    hdr = _as_hdr(colour, sdr)[0].permute(1, 2, 0).numpy()
    src = tmp_path / "pq.mp4"
    with av.open(str(src), "w") as c:
        vs = c.add_stream("libx264", rate=25, options={"crf": "4", "preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = 320, 240, "yuv444p"
        cc = vs.codec_context
        cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = 9, 1, 9, 16
        for i in range(4):
            f = av.VideoFrame.from_ndarray(hdr, format="rgb24").reformat(format="yuv444p", dst_colorspace=9)
            f.pts = i
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    rec = _Recorder()
    enh = Enhancer(rec, device="cpu", detector_weights=mobilenet_weights, faces="largest")
    out = tmp_path / "o.mp4"
    summary = enh.enhance_file(src, out, crf=4, preset="ultrafast")
    assert summary.faces_restored == 4 and len(rec.means) >= 1
    with av.open(str(out)) as c:
        fr = next(c.decode(video=0))
        assert int(fr.color_trc) == 16 and int(fr.color_primaries) == 9
    # the model saw SDR-coded faces: near the SDR picture's brightness, unlike the PQ codes
    sdr_mean, pq_mean = float(sdr.float().mean()), float(hdr.mean())
    assert abs(np.mean(rec.means) - sdr_mean) < 0.5 * abs(pq_mean - sdr_mean)
    # with a model that changes nothing, the output is exactly what it is without the mapping
    plain = tmp_path / "plain.mp4"
    rec2 = _Recorder()
    enh2 = Enhancer(rec2, device="cpu", detector_weights=mobilenet_weights, faces="largest")
    monkeypatch.setattr(HdrColour, "for_video", classmethod(lambda cls, md: None))
    enh2.enhance_file(src, plain, crf=4, preset="ultrafast")
    assert np.mean(rec2.means) < np.mean(rec.means) - 5  # without it, the model got the darker PQ codes
    with av.open(str(out)) as a, av.open(str(plain)) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0)):
            assert np.array_equal(fa.to_ndarray(format="yuv444p"), fb.to_ndarray(format="yuv444p"))


def test_pq_heif_photo_goes_through_the_model_as_sdr(tmp_path, shared, mobilenet_weights):
    """A camera's HDR HEIF (PQ, BT.2020 in its nclx colour description) is restored as an SDR
    picture, as HDR video is; its nclx is written back."""
    pytest.importorskip("pillow_heif")
    import pillow_heif
    from PIL import Image

    from stream_gpen import Enhancer

    colour = HdrColour("pq")
    bgr = cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))
    sdr = torch.from_numpy(cv2.resize(bgr, (320, 240))[:, :, ::-1].copy()).permute(2, 0, 1)[None]
    hdr = _as_hdr(colour, sdr)[0].permute(1, 2, 0).numpy()
    pillow_heif.register_heif_opener()
    src = tmp_path / "IMG_HDR.HEIC"
    nclx = {"color_primaries": 9, "transfer_characteristics": 16, "matrix_coefficients": 9, "full_range_flag": 1}
    Image.fromarray(hdr).save(src, format="HEIF", quality=95, nclx_profile=nclx)
    assert HdrColour.for_image({"nclx_profile": nclx}).transfer == "pq"
    assert HdrColour.for_image({"nclx_profile": {"transfer_characteristics": 13}}) is None
    rec = _Recorder()
    Enhancer(rec, device="cpu", detector_weights=mobilenet_weights, faces="largest").enhance_file(
        src, tmp_path / "out.heic")
    assert len(rec.means) == 1
    sdr_mean, pq_mean = float(sdr.float().mean()), float(hdr.mean())
    assert abs(rec.means[0] - sdr_mean) < 0.5 * abs(pq_mean - sdr_mean)  # SDR-bright, not PQ-dark
    with Image.open(tmp_path / "out.heic") as im:
        assert im.info["nclx_profile"]["transfer_characteristics"] == 16


def _avif(path, rgb16: np.ndarray, *, trc: int, prim: int, mat: int) -> None:
    """A 10-bit AVIF still (FFmpeg's avif muxer, SVT-AV1) with the nclx colour description given."""
    import os

    os.environ.setdefault("SVT_LOG", "1")
    h, w = rgb16.shape[:2]
    with av.open(str(path), "w", format="avif") as c:
        s = c.add_stream("libsvtav1", rate=1)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p10le"
        cc = s.codec_context
        cc.color_trc, cc.color_primaries, cc.colorspace, cc.color_range = trc, prim, mat, 1
        cc.options = {"crf": "8"}
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb16), format="rgb48le")
        f = f.reformat(format="yuv420p10le", dst_colorspace=mat, dst_color_range=1)
        f.pts = 0
        for p in s.encode(f):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def test_pq_ten_bit_avif_photo_is_read_deep_and_as_hdr(tmp_path, shared, mobilenet_weights):
    """Phones' and cameras' HDR AVIFs: Pillow decodes them to 8 bits and gives no colour
    description, so their PQ codes went through the model as if SDR (dark, flat faces) and came
    back as an 8-bit AVIF tagged sRGB, without a word. The file's own boxes say 10 bits and PQ:
    the picture is read at 10 bits (FFmpeg), the face restored as SDR, and a .heic output keeps
    both; an .avif output says what it cannot hold."""
    from PIL import Image

    from stream_gpen import Enhancer
    from stream_gpen.io._image import _avif_properties, _load

    colour = HdrColour("pq")
    bgr = cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))
    sdr = torch.from_numpy(cv2.resize(bgr, (320, 240))[:, :, ::-1].copy()).permute(2, 0, 1)[None]
    hdr = _as_hdr(colour, sdr)[0].permute(1, 2, 0).numpy()
    src = tmp_path / "IMG_HDR.avif"
    _avif(src, hdr.astype(np.uint16) * 257, trc=16, prim=9, mat=9)
    nclx = {"color_primaries": 9, "transfer_characteristics": 16, "matrix_coefficients": 9, "full_range_flag": 0}
    assert _avif_properties(src) == (10, nclx)
    rgb, _, _, info, hi = _load(src, [])
    assert info["nclx_profile"] == nclx and info["bits"] == 10 and hi.dtype == np.uint16
    assert np.abs(hi / 257.0 - hdr).mean() < 3 and np.abs(rgb.astype(float) - hdr).mean() < 3
    rec = _Recorder()
    enh = Enhancer(rec, device="cpu", detector_weights=mobilenet_weights, faces="largest")
    enh.enhance_file(src, tmp_path / "out.heic")
    assert len(rec.means) == 1
    sdr_mean, pq_mean = float(sdr.float().mean()), float(hdr.mean())
    assert abs(rec.means[0] - sdr_mean) < 0.5 * abs(pq_mean - sdr_mean)  # SDR-bright, not PQ-dark
    import pillow_heif

    heif = pillow_heif.open_heif(str(tmp_path / "out.heic"), convert_hdr_to_8bit=False)
    assert heif.info["bit_depth"] == 10 and heif.info["nclx_profile"]["transfer_characteristics"] == 16
    summary = enh.enhance_file(src, tmp_path / "out.avif")
    said = " ".join(summary.fallbacks)
    assert "nclx: PQ HDR" in said and "washed out" in said and "written at 8 bits" in said, summary.fallbacks
    with Image.open(tmp_path / "out.avif") as im:
        assert im.size == (320, 240)
