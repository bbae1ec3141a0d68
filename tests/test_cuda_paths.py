"""CUDA checks of device paths the CPU suite cannot run (skipped without CUDA; gpu_check.sh runs them):
10-bit P010 conversion on the device, the face parser in fp16, the HDR mapping on the device, faces finer than 8 bits."""
from __future__ import annotations

import av
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.cuda


def test_p010_conversion_on_the_gpu_matches_the_cpu(tmp_path):
    from stream_gpen.io._convert import is_full_range, nv12_to_rgb
    from tests.test_high_bit_depth import H, W, _X265_LOSSLESS, make_clip

    make_clip(tmp_path / "g.mkv", frames=1, options=_X265_LOSSLESS, tags={"colorspace": 1, "color_range": 1})
    with av.open(str(tmp_path / "g.mkv")) as c:
        f = next(c.decode(video=0))
    p010 = f.reformat(format="p010le")
    y, uv = torch.from_dlpack(p010.planes[0]), torch.from_dlpack(p010.planes[1])
    outs = {}
    for dev in ("cpu", "cuda"):
        o = torch.empty((H, W, 3), dtype=torch.uint16, device=dev)
        nv12_to_rgb(y.to(dev), uv.to(dev), o, colorspace=1, full_range=is_full_range(f.format.name, f.color_range), bits=10)
        outs[dev] = o.cpu().numpy().astype(np.int64)
    assert np.abs(outs["cpu"] - outs["cuda"]).max() <= 1


def test_parser_fp16_on_the_gpu_agrees_with_fp32_on_the_cpu():
    from stream_gpen.faces import FaceParser
    from tests.test_faces_parse import _random_parsenet

    state = _random_parsenet().state_dict()
    x = torch.randint(0, 256, (2, 3, 512, 512), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    cpu = FaceParser(state_dict=state, device="cpu").labels(x)
    gpu = FaceParser(state_dict=state, device="cuda").labels(x.cuda())  # fp16 by default
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() == cpu).float().mean().item() > 0.99
    masks = FaceParser(state_dict=state, device="cuda")(x.cuda())
    assert torch.isfinite(masks).all() and masks.shape == (2, 512, 512)


def test_hdr_mapping_on_the_gpu_matches_the_cpu():
    from stream_gpen.faces._hdr import HdrColour

    x = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for transfer in ("pq", "hlg"):
        c = HdrColour(transfer)
        a, b = c.to_sdr(x), c.to_sdr(x.cuda())
        assert int((a.int() - b.cpu().int()).abs().max()) <= 1
        assert torch.equal(c.from_sdr(b, x.cuda(), b).cpu(), x)


def test_fine_faces_on_the_gpu_graphs_16bit_warp_and_paste():
    """The runner's unquantised output through captured graphs, and the 16-bit warp and paste on
    the device (torch builds few uint16 kernels: the warp gathers the bits as int16)."""
    from stream_gpen.faces import paste_faces, warp_faces
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator
    from stream_gpen.runtime import FaceRunner

    crops = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(5)).cuda()
    # True fp32, and the eager run on the algorithms cuDNN autotuned for the capture: on an H200
    # (session 16) TF32 and other algorithms put the two 0.014 of a level apart.
    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    try:
        graphed = FaceRunner(random_generator(TINY_CONFIG, seed=1), size=64, device="cuda", precision="fp32")
        eager = FaceRunner(random_generator(TINY_CONFIG, seed=1), size=64, device="cuda", precision="fp32",
                           cuda_graphs=False)
        u8, fine = graphed.restore_fine(crops)
        e8, efine = eager.restore_fine(crops)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark = old
    assert not graphed.fallbacks and torch.equal(u8, fine.to(torch.uint8))
    assert float((fine - efine).abs().max()) < 5e-3 and float((u8.int() - e8.int()).abs().max()) <= 1
    hi = torch.randint(0, 65536, (90, 120, 3), dtype=torch.int32, generator=torch.Generator().manual_seed(6)).to(torch.uint16)
    aff = torch.tensor([[[0.8, 0.15, -10.0], [-0.15, 0.8, 4.0]]])
    ids = torch.zeros(1, dtype=torch.long)
    w_gpu = warp_faces(hi.cuda(), ids.cuda(), aff.cuda(), size=48)
    w_cpu = warp_faces(hi, ids, aff, size=48, backend="torch")
    assert w_gpu.dtype == torch.uint16 and int((w_gpu.cpu().int() - w_cpu.int()).abs().max()) <= 1
    frames = {dev: hi.clone().to(dev) for dev in ("cpu", "cuda")}
    for dev, fr in frames.items():
        paste_faces(fr, fine[:1].to(dev), aff.to(dev), backend="torch")
    assert int((frames["cuda"].cpu().int() - frames["cpu"].int()).abs().max()) <= 1
