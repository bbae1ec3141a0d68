"""``aligned``: inputs that are aligned face crops already (GFPGAN's / CodeFormer's
``cropped_faces``, face datasets): the whole picture goes through the model, as GPEN's own
aligned mode does; no detection, no paste mask."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from tests._doubles import FineRestorer, IdentityRestorer, SolidRestorer


@pytest.fixture(scope="module")
def crop(shared) -> np.ndarray:
    bgr = cv2.imread(str(shared / "data/faces/aligned/codeformer_crop_0143.png"))
    return np.ascontiguousarray(bgr[..., ::-1])


def _enh(restorer, mobilenet_weights, **kw):
    from stream_gpen import Enhancer

    return Enhancer(restorer, device="cpu", detector_weights=mobilenet_weights, aligned=True, **kw)


def test_whole_crop_is_the_models_output(crop, mobilenet_weights):
    assert np.array_equal(_enh(IdentityRestorer(512), mobilenet_weights).enhance_image(crop), crop)
    out = _enh(SolidRestorer(256), mobilenet_weights).enhance_image(crop)
    assert (out == 255).all()  # the edges too: no feathered border keeps the original


def test_a_model_of_another_size_sees_the_resized_crop(crop, mobilenet_weights):
    """GPEN-64 on a 512 crop: the model gets the crop shrunk to 64 (area), its output is grown
    back to 512 (bilinear); no detector runs."""
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator
    from stream_gpen.runtime import FaceRunner

    runner = FaceRunner(random_generator(TINY_CONFIG, seed=2), size=64, device="cpu", precision="fp32")
    enh = _enh(runner, mobilenet_weights)
    out = enh.enhance_image(crop)
    small = torch.nn.functional.interpolate(torch.from_numpy(crop).permute(2, 0, 1)[None].float(), size=(64, 64),
                                            mode="area")
    small = small.add(0.5).floor().clamp(0, 255).to(torch.uint8)
    want = runner(small).float()
    want = torch.nn.functional.interpolate(want, size=(512, 512), mode="bilinear", align_corners=False)
    want = want.add(0.5).floor().clamp(0, 255)[0].permute(1, 2, 0).to(torch.uint8).numpy()
    assert out.shape == crop.shape and np.abs(out.astype(int) - want).max() <= 1
    assert np.abs(out.astype(int) - crop).mean() > 10  # the random model did change it


def test_strength_and_16_bits(crop, mobilenet_weights):
    half = _enh(SolidRestorer(512), mobilenet_weights, strength=0.5).enhance_image(crop)
    assert np.abs(half.astype(float) - (0.5 * 255 + 0.5 * crop)).max() <= 1.0
    deep = crop.astype(np.uint16) * 257 + 99
    out = _enh(FineRestorer(512), mobilenet_weights).enhance_image(deep)
    assert out.dtype == np.uint16 and (np.abs(out.astype(int) - round(100.4 * 257)) <= 1).all()


def test_cli_aligned_folder_runs_no_detector(tmp_path, shared, det_home):
    from stream_gpen.cli import main

    src = tmp_path / "cropped_faces"
    src.mkdir()
    names = ["codeformer_crop_0143.png", "codeformer_crop_0240.png"]
    for n in names:
        shutil.copy(shared / "data/faces/aligned" / n, src / n)
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(tmp_path / "out"), "--aligned", "--model", "classic",
                 "--device", "cpu", "--quiet", "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["detector_calls"] == 0 and data["faces_restored"] == 2
    for n in names:
        a, b = cv2.imread(str(src / n)), cv2.imread(str(tmp_path / "out" / n))
        assert b.shape == a.shape and np.abs(b.astype(int) - a).mean() > 0.5  # restored, edges included


def test_aligned_video_frames(tmp_path, mobilenet_weights):
    import av

    from tests._clips import write_video

    src = tmp_path / "faces.mp4"
    write_video(src, [np.full((96, 96, 3), 60, np.uint8)] * 4)
    dst = tmp_path / "o.mp4"
    summary = _enh(SolidRestorer(64), mobilenet_weights).enhance_file(src, dst, crf=0, preset="ultrafast")
    assert summary.frames_out == 4 and summary.detector_calls == 0 and summary.faces_restored == 4
    with av.open(str(dst)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 4 and all(f.min() >= 250 for f in frames)


def test_parse_mask_with_aligned_is_said_to_be_unused(mobilenet_weights):
    enh = _enh(IdentityRestorer(64), mobilenet_weights, mask="parse")  # no ParseNet is loaded for it
    assert enh.parser is None
    assert any("mask='parse' (--mask parse) is not used with aligned=True" in f for f in enh.fallbacks)
