"""Registry of GPEN generators: constructor config, input convention, weights file, licence."""
from __future__ import annotations

from dataclasses import dataclass

from stream_gpen.errors import InvalidInputError
from stream_gpen.weights import WeightFile

_OSS = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models/"
_MODELSCOPE = (
    "https://modelscope.cn/api/v1/models/damo/cv_gpen_image-portrait-enhancement-hires/repo"
    "?Revision=master&FilePath="
)
_GPEN_LICENCE = (
    "GPEN (yangxy/GPEN, Alibaba): no LICENSE file; README until 2026-03 said academic / "
    "non-commercial use only. Treat the weights as not openly licensed."
)


@dataclass(frozen=True)
class GPENConfig:
    """Constructor arguments of GPEN's FullGenerator (FACTS.md section 2)."""

    size: int
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    narrow: float = 1.0
    lr_mlp: float = 0.01

    def __post_init__(self) -> None:
        if self.size < 8 or self.size & (self.size - 1):
            raise InvalidInputError(f"GPEN size must be a power of two >= 8, got {self.size}")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config: GPENConfig
    weights: WeightFile
    licence: str = _GPEN_LICENCE
    # Input convention (FACTS.md section 6): aligned RGB crop, [-1, 1], output clamped.
    mean: float = 0.5
    std: float = 0.5

    @property
    def input_size(self) -> int:
        return self.config.size


MODELS: dict[str, ModelSpec] = {
    "gpen-bfr-256": ModelSpec(
        name="gpen-bfr-256",
        config=GPENConfig(256, channel_multiplier=1, narrow=0.5),
        weights=WeightFile(
            name="gpen-bfr-256",
            filename="GPEN-BFR-256.pth",
            urls=(_OSS + "GPEN-BFR-256.pth",),
            size=75_573_183,
            sha256=None,
            licence=_GPEN_LICENCE,
            note="size from GPEN's notebook download log; no sha256 has been published",
        ),
    ),
    "gpen-bfr-512": ModelSpec(
        name="gpen-bfr-512",
        config=GPENConfig(512, channel_multiplier=2, narrow=1.0),
        weights=WeightFile(
            name="gpen-bfr-512",
            filename="GPEN-BFR-512.pth",
            urls=(_OSS + "GPEN-BFR-512.pth",),
            size=284_085_738,
            sha256=None,
            licence=_GPEN_LICENCE,
            note="size from GPEN's notebook download log; no sha256 has been published",
        ),
    ),
    "gpen-bfr-1024": ModelSpec(
        name="gpen-bfr-1024",
        config=GPENConfig(1024, channel_multiplier=2, narrow=1.0),
        weights=WeightFile(
            name="gpen-bfr-1024",
            filename="GPEN-BFR-1024.pt",
            urls=(_MODELSCOPE + "pytorch_model.pt",),
            size=None,
            sha256=None,
            licence=_GPEN_LICENCE,
            note="only on ModelScope (damo/cv_gpen_image-portrait-enhancement-hires, pytorch_model.pt); "
            "size and sha256 unknown",
            aliases=("pytorch_model.pt",),
        ),
    ),
    "gpen-bfr-2048": ModelSpec(
        name="gpen-bfr-2048",
        config=GPENConfig(2048, channel_multiplier=2, narrow=1.0),
        weights=WeightFile(
            name="gpen-bfr-2048",
            filename="GPEN-BFR-2048.pt",
            urls=(_MODELSCOPE + "pytorch_model-2048.pt",),
            size=None,
            sha256=None,
            licence=_GPEN_LICENCE,
            note="only on ModelScope (same model id, pytorch_model-2048.pt); size and sha256 unknown",
            aliases=("pytorch_model-2048.pt",),
        ),
    ),
}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise InvalidInputError(
            f"unknown model {name!r}; known models: {', '.join(MODELS)} (or pass a checkpoint path)"
        ) from None
