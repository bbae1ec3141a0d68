"""Face-parsing paste masks: GPEN's own paste-back, as an alternative to the feathered square.

GPEN's ``face_enhancement.py`` does not paste the whole restored crop: it runs a face-parsing
network (PSFRGAN's ParseNet, 19 CelebAMask-HQ classes) on the *restored* face and pastes only
what it labels as face, hair, ears or neck -- so the background GPEN re-synthesised inside the
crop, a hat and clothes keep their original pixels. The conventions (``../shared`` FACTS.md §7):

* the restored crop is resized to 512 (bilinear), RGB scaled to [-1, 1];
* arg-max over the 19 classes; every class but background (0), hat (14) and cloth (18) -> 1;
* a 26-px border (at 512) is zeroed, then a Gaussian blur (101x101 kernel, sigma 4) is applied
  **twice** (reflect-101 borders, as cv2.GaussianBlur), then the mask is resized to the crop size.

The network is facexlib's ``ParseNet`` class (the same module names as GPEN's copy, so both
``ParseNet-latest.pth`` from GPEN and facexlib's ``parsing_parsenet.pth`` load strictly); we run
our own forward (the image head the mask does not need is skipped) with the BatchNorms folded into
the convolutions. Cost: ParseNet at 512 is 468 GFLOP per face (torch's FLOP counter), 1.7x
GPEN-512 (276) and 27x GPEN-256 (17.4): about 3.5 s per face on a 2-core CPU, so it is opt-in.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from stream_gpen.errors import CheckpointError, InvalidInputError

PARSE_SIZE = 512
#: CelebAMask-HQ labels pasted (1) or kept from the frame (0): 0 background, 1 skin, 2 nose,
#: 3 glasses, 4/5 eyes, 6/7 brows, 8/9 ears, 10 mouth, 11/12 lips, 13 hair, 14 hat, 15 earring,
#: 16 necklace, 17 neck, 18 cloth.
PASTE_CLASSES = (0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0)
BORDER_PX = 26  # zeroed at 512 before the blur
BLUR_SIGMA = 4.0  # px at 512, per pass
BLUR_RADIUS = 50  # the 101-tap kernel
BLUR_PASSES = 2


def build_parsenet() -> torch.nn.Module:
    """An untrained ParseNet in GPEN's configuration (in/out 512, min feature 32, 64 base channels,
    19 classes, BatchNorm, LeakyReLU, channels clipped to [32, 256])."""
    from facexlib.parsing.parsenet import ParseNet

    return ParseNet(in_size=PARSE_SIZE, out_size=PARSE_SIZE, min_feat_size=32, base_ch=64, parsing_ch=19,
                    res_depth=10, relu_type="LeakyReLU", norm_type="bn", ch_range=[32, 256])


def _fold_batchnorms(net: torch.nn.Module) -> int:
    """Fold each ConvLayer's BatchNorm into its conv (eval mode: a fixed per-channel affine map).
    ParseNet spends a full pass over every 512^2 feature map on BN otherwise."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    n = 0
    for layer in net.modules():
        norm = getattr(getattr(layer, "norm", None), "norm", None)
        conv = getattr(layer, "conv2d", None)
        if isinstance(conv, torch.nn.Conv2d) and isinstance(norm, torch.nn.BatchNorm2d) and norm.running_mean is not None:
            layer.conv2d = fuse_conv_bn_eval(conv, norm)
            layer.norm.norm = torch.nn.Identity()
            n += 1
    return n


def _gaussian_taps(sigma: float, radius: int) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(x * x) / (2 * sigma * sigma))
    return (k / k.sum()).to(torch.float32)


def postprocess_labels(labels: torch.Tensor, size: int) -> torch.Tensor:
    """Class map ``[n,512,512]`` (int) -> paste mask ``[n,size,size]`` float32 in [0, 1]: the
    keep table, the zeroed border, two Gaussian passes, the resize to the crop size."""
    keep = torch.tensor(PASTE_CLASSES, dtype=torch.float32, device=labels.device)
    m = keep[labels.long()]
    b = BORDER_PX
    m[:, :b, :] = 0
    m[:, -b:, :] = 0
    m[:, :, :b] = 0
    m[:, :, -b:] = 0
    taps = _gaussian_taps(BLUR_SIGMA, BLUR_RADIUS).to(labels.device)
    m = m[:, None]
    for _ in range(BLUR_PASSES):
        # separable; "reflect" is reflect-101 (cv2's default border)
        m = F.conv2d(F.pad(m, (BLUR_RADIUS, BLUR_RADIUS, 0, 0), mode="reflect"), taps.view(1, 1, 1, -1))
        m = F.conv2d(F.pad(m, (0, 0, BLUR_RADIUS, BLUR_RADIUS), mode="reflect"), taps.view(1, 1, -1, 1))
    if size != m.shape[-1]:
        m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)
    return m[:, 0].clamp_(0.0, 1.0)


class FaceParser:
    """Paste masks from ParseNet: ``parser(crops uint8 [n,3,S,S]) -> float32 [n,S,S]`` in [0,1].

    * ``weights``: a ParseNet checkpoint (GPEN's ``ParseNet-latest.pth`` or facexlib's
      ``parsing_parsenet.pth``), or a folder holding one under either name; ``None`` fetches
      the ``parsenet`` entry of the weights manager.
      ``state_dict`` instead passes the tensors directly (tests, random weights).
    * ``precision``: ``"auto"`` = fp16 on CUDA (a label map is robust to half-precision
      rounding, and it halves the cost), fp32 on CPU.
    * ``batch_size``: crops per network call (each is a 512^2 U-Net pass: larger batches use
      more memory, ~70 MB of activations per crop in fp32, for little speed on CPU).
    """

    name = "parsenet"

    def __init__(self, *, weights: str | Path | None = None, state_dict: dict | None = None,
                 device: str | torch.device = "cpu", precision: str = "auto", batch_size: int = 4) -> None:
        if precision not in ("auto", "fp32", "fp16", "bf16"):
            raise InvalidInputError(f"precision must be one of ('auto', 'fp32', 'fp16', 'bf16'), got {precision!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.device = torch.device(device)
        if precision == "auto":
            precision = "fp16" if self.device.type == "cuda" else "fp32"
        self.precision = precision
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        self.batch_size = batch_size
        self.fallbacks: list[str] = []
        self.weights: Path | None = None
        if state_dict is None:
            from stream_gpen.models.loading import read_state_dict
            from stream_gpen.weights import ensure_weights

            # a folder is searched for the accepted file names; a damaged or foreign file is one
            # CheckpointError line (exit 3), as for GPEN checkpoints
            self.weights = ensure_weights("parsenet", path=weights, what="face-parsing weights")
        try:
            if state_dict is None:
                state_dict = read_state_dict(self.weights, what="face-parsing weights", wrappers=("state_dict",))
            self.net = self._build(state_dict, str(self.weights) if self.weights else "state_dict")
        except CheckpointError as exc:
            # the copy the search found (the caller named no file, or named that one): its hint
            # said to pass a file, as if one had been given
            from stream_gpen.weights import managed_copy_hint

            hint = managed_copy_hint("parsenet", self.weights) if self.weights is not None else None
            if hint is None:
                raise
            exc.hint = hint
            raise exc from None

    def _build(self, state: dict, where: str) -> torch.nn.Module:
        from stream_gpen.models.loading import describe_mismatch, refuse_nonfinite

        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise CheckpointError(f"{where} does not hold a state dict (got {type(state).__name__})")
        state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
        net = build_parsenet()
        problem = describe_mismatch(state, net.state_dict())
        if problem:
            raise CheckpointError(
                f"{where} is not a ParseNet checkpoint: {problem}",
                hint="pass GPEN's ParseNet-latest.pth or facexlib's parsing_parsenet.pth",
            )
        refuse_nonfinite(state.items(), where, "face-parsing weights")
        net.load_state_dict(state, strict=True)
        net = net.eval()
        _fold_batchnorms(net)
        del net.out_img_conv  # the restored-image head: not needed for a mask
        net = net.to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)
        return net

    @torch.inference_mode()
    def labels(self, crops: torch.Tensor) -> torch.Tensor:
        """Crops uint8 ``[n,3,S,S]`` RGB -> class map ``[n,512,512]`` (uint8)."""
        _check_crops(crops)
        out = []
        for chunk in crops.split(self.batch_size):
            x = chunk.to(self.device, non_blocking=True).float()
            if x.shape[-1] != PARSE_SIZE:
                x = F.interpolate(x, size=(PARSE_SIZE, PARSE_SIZE), mode="bilinear", align_corners=False)
            x = (x * (2.0 / 255.0) - 1.0).to(self.dtype).contiguous(memory_format=torch.channels_last)
            feat = self.net.encoder(x)
            y = self.net.decoder(feat + self.net.body(feat))
            out.append(self.net.out_mask_conv(y).argmax(dim=1).to(torch.uint8))
        return torch.cat(out) if out else torch.zeros(0, PARSE_SIZE, PARSE_SIZE, dtype=torch.uint8, device=self.device)

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        """Paste masks ``[n,S,S]`` float32 in [0, 1] for restored crops ``[n,3,S,S]`` uint8."""
        _check_crops(crops)
        if len(crops) == 0:
            return torch.zeros(0, crops.shape[-1], crops.shape[-1], dtype=torch.float32, device=self.device)
        return postprocess_labels(self.labels(crops), crops.shape[-1])


def _check_crops(crops: torch.Tensor) -> None:
    if (not isinstance(crops, torch.Tensor) or crops.dtype != torch.uint8 or crops.ndim != 4
            or crops.shape[1] != 3 or crops.shape[2] != crops.shape[3]):
        got = f"{crops.dtype} {tuple(crops.shape)}" if isinstance(crops, torch.Tensor) else type(crops).__name__
        raise InvalidInputError(f"crops must be uint8 [n,3,S,S], got {got}")


__all__ = ["FaceParser", "PASTE_CLASSES", "PARSE_SIZE", "build_parsenet", "postprocess_labels"]
