"""The RetinaFace network (Deng et al. 2019) as the released detectors were trained: a MobileNet-0.25
or ResNet-50 body, a three-level feature pyramid, an SSH context module per level and 1x1 heads
scoring two anchors per cell.

Our own module, not facexlib's: facexlib builds its body with torchvision
(``IntermediateLayerGetter``, ``models.resnet50``), and importing ``torchvision.models`` pulls in
``torch._dynamo`` through ``torchvision.ops``: measured, +1.9-2.2 s of CPU (5.0 of 5.8 s of
``-X importtime`` under load) and +165 MiB peak memory at every start, the classic model included.
Module names follow the released checkpoints (``detection_mobilenet0.25_Final.pth``,
``detection_Resnet50_Final.pth``) so they load with strict keys; the outputs equal facexlib's
network's (``tests/test_detnet23.py``). Inference only: the class scores come out softmaxed.

Every conv that a BatchNorm follows sits with it in a ``Sequential`` (as in the checkpoints' key
names), which is where :func:`~stream_gpen.faces._detector._fuse_conv_bn` folds them; the
ResNet bottlenecks' norms are named beside their convs (``conv1``/``bn1``): their modules list
the pairs in ``conv_bn_pairs``, which it folds too (each norm is applied to its conv's output
alone).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

RetinaBackbone = Literal["mobilenet0.25", "resnet50"]

#: anchors per feature-map cell (sizes (16, 32), (64, 128), (256, 512) px at strides 8, 16, 32)
ANCHORS_PER_CELL = 2


def _conv_norm(cin: int, cout: int, kernel: int, stride: int = 1, *, groups: int = 1,
               slope: float | None = None) -> list[nn.Module]:
    """conv (no bias, "same" padding) + BatchNorm [+ LeakyReLU(slope)], as a list of layers."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if slope is not None:
        layers.append(nn.LeakyReLU(slope, inplace=True))
    return layers


def _block(cin: int, cout: int, kernel: int, stride: int = 1, *, slope: float | None = None) -> nn.Sequential:
    return nn.Sequential(*_conv_norm(cin, cout, kernel, stride, slope=slope))


def _separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    """MobileNetV1's depthwise 3x3 + pointwise 1x1 pair (keys ``.0/.1`` and ``.3/.4``)."""
    return nn.Sequential(*_conv_norm(cin, cin, 3, stride, groups=cin, slope=0.1),
                         *_conv_norm(cin, cout, 1, slope=0.1))


class MobileNetBody(nn.Module):
    """MobileNetV1 at width 0.25 (8 channels in the stem), cut into three stages whose outputs
    (strides 8, 16, 32; 64, 128, 256 channels) feed the pyramid. LeakyReLU 0.1 throughout."""

    channels = (64, 128, 256)

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            _block(3, 8, 3, 2, slope=0.1),
            _separable(8, 16, 1),
            _separable(16, 32, 2),
            _separable(32, 32, 1),
            _separable(32, 64, 2),
            _separable(64, 64, 1),
        )
        self.stage2 = nn.Sequential(_separable(64, 128, 2), *(_separable(128, 128, 1) for _ in range(5)))
        self.stage3 = nn.Sequential(_separable(128, 256, 2), _separable(256, 256, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c3 = self.stage1(x)
        c4 = self.stage2(c3)
        return [c3, c4, self.stage3(c4)]


class Bottleneck(nn.Module):
    """ResNet-50's residual block (v1.5: the stride on the 3x3 conv), torchvision's layout."""

    expansion = 4
    #: (conv, norm) attribute pairs whose norm takes that conv's output and nothing else
    #: (foldable: :func:`~stream_gpen.faces._detector._fuse_conv_bn`)
    conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = _block(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = F.relu(self.bn2(self.conv2(y)), inplace=True)
        y = self.bn3(self.conv3(y))
        y += x if self.downsample is None else self.downsample(x)
        return F.relu(y, inplace=True)


class ResNetBody(nn.Module):
    """ResNet-50 (3, 4, 6, 3 bottlenecks) without its classifier; ``layer2``-``layer4`` (strides
    8, 16, 32; 512, 1024, 2048 channels) feed the pyramid."""

    channels = (512, 1024, 2048)
    conv_bn_pairs = (("conv1", "bn1"),)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 1):
            layer = [Bottleneck(cin, width, stride)]
            cin = width * Bottleneck.expansion
            layer += [Bottleneck(cin, width, 1) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layer))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        x = self.layer1(F.max_pool2d(x, 3, 2, 1))
        c3 = self.layer2(x)
        c4 = self.layer3(c3)
        return [c3, c4, self.layer4(c4)]


def _slope(channels: int) -> float:
    # the released nets use LeakyReLU 0.1 in the narrow (64-channel) MobileNet head, plain ReLU
    # (slope 0) in the ResNet one
    return 0.1 if channels <= 64 else 0.0


class FeaturePyramid(nn.Module):
    """1x1 lateral convs to ``width`` channels; each coarser level, upsampled (nearest), is added
    to the next finer one, which a 3x3 conv then smooths (the coarsest is used as it is)."""

    def __init__(self, channels: tuple[int, int, int], width: int) -> None:
        super().__init__()
        s = _slope(width)
        self.output1, self.output2, self.output3 = (_block(c, width, 1, slope=s) for c in channels)
        self.merge1 = _block(width, width, 3, slope=s)
        self.merge2 = _block(width, width, 3, slope=s)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        p4 = self.merge2(p4 + F.interpolate(p5, size=p4.shape[-2:], mode="nearest"))
        p3 = self.merge1(p3 + F.interpolate(p4, size=p3.shape[-2:], mode="nearest"))
        return [p3, p4, p5]


class ContextModule(nn.Module):
    """SSH's context module: 3x3, 5x5 and 7x7 receptive fields (the larger ones as stacked 3x3
    convs sharing the first), concatenated as 1/2 + 1/4 + 1/4 of ``width`` channels, then ReLU.
    (The attribute names, with their mixed ``X``/``x``, are the checkpoints'.)"""

    def __init__(self, width: int) -> None:
        super().__init__()
        s = _slope(width)
        self.conv3X3 = _block(width, width // 2, 3)
        self.conv5X5_1 = _block(width, width // 4, 3, slope=s)
        self.conv5X5_2 = _block(width // 4, width // 4, 3)
        self.conv7X7_2 = _block(width // 4, width // 4, 3, slope=s)
        self.conv7x7_3 = _block(width // 4, width // 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.conv5X5_1(x)
        wide = self.conv7x7_3(self.conv7X7_2(mid))
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(mid), wide], dim=1))


class _Head(nn.Module):
    """A 1x1 conv giving ``values`` numbers per anchor, flattened to ``[B, H*W*anchors, values]``
    (row, column, anchor order: the detector's priors')."""

    def __init__(self, width: int, values: int) -> None:
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(width, ANCHORS_PER_CELL * values, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1x1(x).permute(0, 2, 3, 1)
        return y.reshape(y.shape[0], -1, self.values)


class RetinaFace(nn.Module):
    """RetinaFace for inference. ``forward(x)``: ``x`` ``[B,3,H,W]`` float, BGR minus the training
    mean (104, 117, 123), unscaled. Returns ``(loc [B,A,4], conf [B,A,2], landmarks [B,A,10])``
    over the ``A`` anchors of the three levels (finest first): box and landmark offsets to decode
    against the anchors, and softmaxed (background, face) scores."""

    def __init__(self, backbone: RetinaBackbone) -> None:
        super().__init__()
        if backbone == "mobilenet0.25":
            self.body: nn.Module = MobileNetBody()
            width = 64
        elif backbone == "resnet50":
            self.body = ResNetBody()
            width = 256
        else:
            raise ValueError(f"backbone must be 'mobilenet0.25' or 'resnet50', got {backbone!r}")
        self.fpn = FeaturePyramid(self.body.channels, width)
        self.ssh1, self.ssh2, self.ssh3 = (ContextModule(width) for _ in range(3))
        self.ClassHead = nn.ModuleList(_Head(width, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_Head(width, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_Head(width, 10) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        levels = self.fpn(self.body(x))
        feats = [ssh(f) for ssh, f in zip((self.ssh1, self.ssh2, self.ssh3), levels)]

        def heads(modules: nn.ModuleList) -> torch.Tensor:
            return torch.cat([m(f) for m, f in zip(modules, feats)], dim=1)

        return heads(self.BboxHead), F.softmax(heads(self.ClassHead), dim=-1), heads(self.LandmarkHead)
