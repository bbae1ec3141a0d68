"""Faces finer than 8 bits for 10/12-bit video: the restorers' unquantised output, warped and
pasted at 16-bit precision, through the HDR mapping and the strength blend."""
from __future__ import annotations

import pytest
import torch

from stream_gpen.faces import paste_faces, warp_faces
from stream_gpen.faces._hdr import HdrColour

from tests._doubles import FineRestorer, IdentityRestorer


def test_runner_fine_output_is_what_the_uint8_output_truncates():
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator
    from stream_gpen.runtime import FaceRunner

    runner = FaceRunner(random_generator(TINY_CONFIG, seed=3), size=64, device="cpu", precision="fp32")
    crops = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    u8, fine = runner.restore_fine(crops)
    assert fine.dtype == torch.float32 and fine.shape == crops.shape
    assert torch.equal(u8, runner(crops))
    assert torch.equal(u8, fine.to(torch.uint8))  # FACTS section 6: truncation of this very value
    assert float(fine.min()) >= 0.0 and float(fine.max()) <= 255.0
    frac = fine - fine.floor()
    assert float((frac > 0.01).float().mean()) > 0.9  # it does carry more than 8 bits
    e8, ef = runner.restore_fine(crops[:0])
    assert e8.shape == (0, 3, 64, 64) and ef.shape == (0, 3, 64, 64) and ef.dtype == torch.float32


def test_classic_fine_output_is_what_its_uint8_output_rounds():
    from stream_gpen.models.classic import ClassicRestorer

    r = ClassicRestorer(size=64, device="cpu")
    crops = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    u8, fine = r.restore_fine(crops)
    assert torch.equal(u8, r(crops)) and torch.equal(u8, fine.round().to(torch.uint8))
    assert fine.dtype == torch.float32 and float((fine - fine.round()).abs().max()) > 0.1


def test_server_counting_wrapper_counts_fine_calls_and_hides_what_is_missing():
    from stream_gpen.server._models import CountingRestorer

    c = CountingRestorer(FineRestorer(64))
    c.restore_fine(torch.zeros(3, 3, 64, 64, dtype=torch.uint8))
    c(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    assert c.faces == 5
    assert not hasattr(CountingRestorer(IdentityRestorer(64)), "restore_fine")


def test_warp_of_a_16bit_frame_is_16bit_and_agrees_across_backends_and_with_the_8bit_warp():
    g = torch.Generator().manual_seed(2)
    hi = torch.randint(0, 65536, (90, 120, 3), dtype=torch.int32, generator=g).to(torch.uint16)
    aff = torch.tensor([[[0.8, 0.15, -10.0], [-0.15, 0.8, 4.0]]])
    ids = torch.zeros(1, dtype=torch.long)
    t = warp_faces(hi, ids, aff, size=48, backend="torch")
    c = warp_faces(hi, ids, aff, size=48, backend="cv2")
    assert t.dtype == c.dtype == torch.uint16 and t.shape == (1, 3, 48, 48)
    assert int((t.int() - c.int()).abs().max()) <= 1
    lo = (hi.int() // 257).to(torch.uint8)  # the same picture at 8 bits (truncated, so within 1 level)
    w8 = warp_faces(lo, ids, aff, size=48, backend="torch")
    assert float((t.float() / 257 - w8.float()).abs().max()) <= 1.5
    assert warp_faces(hi, torch.zeros(0, dtype=torch.long), torch.zeros(0, 2, 3), size=48).dtype == torch.uint16


@pytest.mark.parametrize("backend", ["torch", "cv2"])
def test_float_crops_paste_at_16_bits_and_round_into_8_bits(backend):
    size = 64
    aff = torch.tensor([[[1.0, 0.0, -20.0], [0.0, 1.0, -10.0]]])  # crop = frame[10:74, 20:84]
    fine = torch.full((1, 3, size, size), 100.4)
    hi = torch.full((100, 120, 3), 1000, dtype=torch.uint16)
    paste_faces(hi, fine, aff, backend=backend)
    centre = hi[10 + 24 : 10 + 40, 20 + 24 : 20 + 40]
    assert int((centre.int() - round(100.4 * 257)).abs().max()) <= 1  # not 100 * 257 = 25700
    assert int(hi[0, 0, 0]) == 1000 and int(hi[99, 119, 2]) == 1000  # outside: untouched
    # into an 8-bit frame, float crops paste as their rounded uint8 values do
    a8 = torch.full((100, 120, 3), 7, dtype=torch.uint8)
    b8 = a8.clone()
    paste_faces(a8, torch.full((1, 3, size, size), 100.4), aff, backend=backend)
    paste_faces(b8, torch.full((1, 3, size, size), 100, dtype=torch.uint8), aff, backend=backend)
    assert int((a8.int() - b8.int()).abs().max()) <= 1 and int(a8[40, 50, 0]) == 100
    with pytest.raises(Exception, match="uint8 or float32"):
        paste_faces(a8, torch.zeros(1, 3, size, size, dtype=torch.float64), aff)


@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_hdr_fine_mapping_is_exact_where_the_model_changed_nothing(transfer):
    colour = HdrColour(transfer)
    g = torch.Generator().manual_seed(4)
    # skin-like HDR codes (kept below the shoulder, where the mapping round-trips)
    x_hi = (torch.rand(2, 3, 16, 16, generator=g) * 0.25 + 0.3).mul(65535).round().to(torch.int32).to(torch.uint16)
    x8 = (x_hi.int() // 257).to(torch.uint8)
    given = colour.to_sdr(x8)
    back = colour.from_sdr_fine(given.float(), x_hi, given)  # the model gave back exactly what it got
    assert float((back * 257 - x_hi.float()).abs().max()) < 0.5  # the 16-bit codes themselves
    # a brighter face comes back brighter, and within a level of the 8-bit mapping
    y = (given.float() + 20.3).clamp(0, 255)
    fine = colour.from_sdr_fine(y, x_hi, given)
    coarse = colour.from_sdr(y.to(torch.uint8), x8, given)
    assert float(fine.mean()) > float(x_hi.float().mean() / 257) + 5
    assert float((fine - coarse.float()).abs().mean()) < 1.0
