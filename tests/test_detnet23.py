"""Our RetinaFace network and NMS (perf23 #4): the detector imported facexlib's RetinaFace, whose
torchvision body (and ``torchvision.ops.nms``) imports ``torch._dynamo`` at every start (+2 s CPU,
+165 MiB peak). These pin that ours computes what facexlib's and torchvision's did."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings

import cv2
import pytest
import torch

from tests.conftest import REPO


def _facexlib_net(name: str):
    from facexlib.detection.retinaface import RetinaFace

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's "pretrained" deprecation (resnet50)
        return RetinaFace(network_name=name, half=False, phase="test", device="cpu").eval()


def _input(shared, h: int, w: int) -> torch.Tensor:
    bgr = cv2.imread(str(shared / "data" / "faces" / "whole" / "gpen_Solvay_conference_1927.png"))
    x = torch.from_numpy(bgr[:h, :w].copy()).permute(2, 0, 1)[None].float()
    return x - torch.tensor([104.0, 117.0, 123.0]).view(1, 3, 1, 1)


def _same_layout(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    assert [tuple(v.shape) for v in a.values()] == [tuple(v.shape) for v in b.values()]


def test_mobilenet_network_equals_facexlibs_on_the_released_weights(shared, mobilenet_weights):
    """Was: the detector's network was facexlib's RetinaFace (importing torchvision and
    torch._dynamo). Ours has the checkpoint's keys and shapes and gives the same outputs, bit for
    bit, on the real MobileNet-0.25 weights and a real photo."""
    from stream_gpen.faces._retinaface import RetinaFace

    ref = _facexlib_net("mobile0.25")
    ours = RetinaFace("mobilenet0.25").eval()
    _same_layout(ours, ref)
    state = torch.load(mobilenet_weights, map_location="cpu", weights_only=True)
    ref.load_state_dict(state, strict=True)
    ours.load_state_dict(state, strict=True)
    x = _input(shared, 330, 490)  # not multiples of 32: the pyramid's upsampling sizes
    with torch.no_grad():
        got, want = ours(x), ref(x)
    anchors = 2 * sum(-(-330 // s) * -(-490 // s) for s in (8, 16, 32))
    assert [tuple(t.shape) for t in got] == [(1, anchors, 4), (1, anchors, 2), (1, anchors, 10)]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert got[1].max() > 0.99  # faces found, so the comparison means something


def test_resnet50_network_equals_facexlibs_on_random_weights(shared):
    """Was: as above, for the ResNet-50 body (torchvision's resnet50 layers via
    IntermediateLayerGetter in facexlib). Random weights and BatchNorm statistics, loaded into
    both with strict keys; same outputs."""
    from stream_gpen.faces._retinaface import RetinaFace

    torch.manual_seed(0)
    ref = _facexlib_net("resnet50")
    state = ref.state_dict()
    for k, v in state.items():
        if k.endswith("running_var"):
            v.uniform_(0.5, 2.0)
        elif k.endswith("running_mean"):
            v.normal_(0.0, 0.1)
    ours = RetinaFace("resnet50").eval()
    _same_layout(ours, ref)
    ours.load_state_dict(state, strict=True)
    x = _input(shared, 128, 160)
    with torch.no_grad():
        for a, b in zip(ours(x), ref(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert "body.layer1.0.downsample.0.weight" in state and "body.layer4.2.bn3.running_var" in state


def _boxes(g: torch.Generator, n: int, spread: float) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * spread
    return torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 60 + 1], 1)


@pytest.mark.parametrize("n,spread", [(0, 10), (1, 10), (40, 60), (300, 200), (3000, 1500)])
def test_nms_equals_torchvisions(n, spread):
    """Was: torchvision.ops.nms (importing torch._dynamo). Ours keeps the same boxes in the same
    order: ties in score (index order), repeated boxes, empty boxes, thousands of boxes."""
    from torchvision.ops import nms as reference

    from stream_gpen.faces._detector import nms

    g = torch.Generator().manual_seed(n)
    boxes = _boxes(g, n, spread)
    scores = (torch.rand(n, generator=g) * 10).round() / 10  # many equal scores
    if n >= 40:
        boxes[5:10] = boxes[0]  # repeats
        boxes[10:12, 2:] = boxes[10:12, :2]  # empty boxes (their IoU is NaN with each other)
        boxes[11] = boxes[10]
    for thr in (0.3, 0.4, 0.5, 0.7, 1.0):
        torch.testing.assert_close(nms(boxes, scores, thr), reference(_inclusive(boxes), scores, thr), rtol=0, atol=0)


def _inclusive(boxes: torch.Tensor) -> torch.Tensor:
    """``boxes`` with x2, y2 one pixel out: torchvision's NMS of these is GPEN's "+1" NMS (hunt 33)."""
    return boxes + torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=boxes.dtype)


def test_nms_at_the_threshold_compares_as_torchvision():
    """Was: (the risk in a copy) torchvision compares its float32 IoU with the threshold as a
    double: an IoU of exactly 0.5 is not over 0.5, and 40/100 in float32 (0.4000000060) is over
    0.4, so the box goes."""
    from torchvision.ops import nms as reference

    from stream_gpen.faces._detector import nms

    # (pixel-inclusive: [0, 0, 9, 9] is 10 x 10 px)
    a, half, four_tenths = [0.0, 0.0, 9.0, 9.0], [0.0, 0.0, 9.0, 4.0], [0.0, 0.0, 9.0, 3.0]
    scores = torch.tensor([0.9, 0.8])
    for other, thr, kept in ((half, 0.5, [0, 1]), (four_tenths, 0.4, [0]), (four_tenths, 0.41, [0, 1])):
        boxes = torch.tensor([a, other])
        assert nms(boxes, scores, thr).tolist() == reference(_inclusive(boxes), scores, thr).tolist() == kept


def test_detecting_imports_neither_torchvision_nor_dynamo(shared, mobilenet_weights):
    """Was: importing the detector's network (facexlib -> torchvision.models -> torchvision.ops)
    imported torch._dynamo at every start, the classic model included: +1.9-2.2 s CPU and
    +165 MiB peak memory. Importing stream_gpen, building the classic model's Enhancer and
    detecting faces in a real photo now leaves both out of sys.modules."""
    photo = shared / "data" / "faces" / "whole" / "gpen_Solvay_conference_1927.png"
    code = f"""
import sys, cv2, torch
import stream_gpen, stream_gpen.cli
from stream_gpen import Enhancer
from stream_gpen.faces import FaceDetector
Enhancer("classic", device="cpu", detector_weights={str(mobilenet_weights)!r}, progress=False)
det = FaceDetector(backbone="mobilenet0.25", device="cpu", weights={str(mobilenet_weights)!r})
rgb = cv2.imread({str(photo)!r})[:, :, ::-1].copy()
print(len(det.detect(torch.from_numpy(rgb))[0]))
print(sorted(m for m in sys.modules if m.split(".")[0] == "torchvision" or m.startswith("torch._dynamo"))[:3])
"""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    faces, loaded = out.stdout.split("\n")[:2]
    assert int(faces) >= 15
    assert loaded == "[]"


def test_a_gpen_checkpoint_run_imports_no_dynamo(tmp_path, tiny_ckpt, shared, mobilenet_weights):
    """A GPEN checkpoint's model is built on the meta device (its weights assigned after): two ops
    there (the blur kernel's normalisation, EqualLinear's weight / lr_mul) imported torch._dynamo
    through torch's meta decompositions, ~3 s of CPU at every GPEN start. Loading a checkpoint and
    restoring a photo now leaves it out of sys.modules."""
    photo = shared / "data" / "faces" / "whole" / "codeformer_whole_00.jpg"
    code = f"""
import sys
from stream_gpen import Enhancer
enh = Enhancer({str(tiny_ckpt)!r}, device="cpu", detector_weights={str(mobilenet_weights)!r}, progress=False)
s = enh.enhance_file({str(photo)!r}, {str(tmp_path / "out.jpg")!r})
print(s.faces_restored if hasattr(s, "faces_restored") else s)
print(sorted(m for m in sys.modules if m.split(".")[0] == "torchvision" or m.startswith("torch._dynamo"))[:3])
"""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "out.jpg").stat().st_size > 0
    assert out.stdout.strip().split("\n")[-1] == "[]", out.stdout
