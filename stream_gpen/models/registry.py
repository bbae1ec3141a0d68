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


# Base channel counts per resolution before channel_multiplier / narrow (FACTS.md section 2).
_BASE_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32,
                  1024: 16, 2048: 8}
_CM_SCALED = frozenset((64, 128, 256, 512, 1024, 2048))  # resolutions scaled by channel_multiplier


@dataclass(frozen=True)
class GPENConfig:
    """Constructor arguments of GPEN's FullGenerator (FACTS.md section 2).

    The released BFR models all use style_dim 512, n_mlp 8, lr_mlp 0.01 and blur kernel
    [1,3,3,1] (fixed in the implementation); only size / channel_multiplier / narrow differ.
    """

    size: int
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    narrow: float = 1.0
    lr_mlp: float = 0.01

    def __post_init__(self) -> None:
        if (
            not isinstance(self.size, int)
            or self.size not in _BASE_CHANNELS
            or self.size < 8
        ):
            allowed = ", ".join(str(r) for r in _BASE_CHANNELS if r >= 8)
            raise InvalidInputError(f"GPEN size must be one of {allowed}, got {self.size!r}")
        if not isinstance(self.style_dim, int) or self.style_dim < 1:
            raise InvalidInputError(f"style_dim must be a positive int, got {self.style_dim!r}")
        if not isinstance(self.n_mlp, int) or self.n_mlp < 1:
            raise InvalidInputError(f"n_mlp must be a positive int, got {self.n_mlp!r}")
        if not isinstance(self.channel_multiplier, int) or self.channel_multiplier < 1:
            raise InvalidInputError(
                f"channel_multiplier must be a positive int, got {self.channel_multiplier!r}"
            )
        if not self.narrow > 0:
            raise InvalidInputError(f"narrow must be > 0, got {self.narrow!r}")
        if not self.lr_mlp > 0:
            raise InvalidInputError(f"lr_mlp must be > 0, got {self.lr_mlp!r}")
        for r, c in self.channels.items():
            if c < 1:
                raise InvalidInputError(
                    f"narrow={self.narrow!r} with channel_multiplier={self.channel_multiplier} "
                    f"leaves {c} channels at resolution {r}; raise narrow"
                )

    @property
    def log_size(self) -> int:
        return self.size.bit_length() - 1

    @property
    def channels(self) -> dict[int, int]:
        """``C[r]`` for r = 4 … size: int() truncation of base · (cm) · narrow, as GPEN does."""
        return {
            r: int(base * (self.channel_multiplier if r in _CM_SCALED else 1) * self.narrow)
            for r, base in _BASE_CHANNELS.items()
            if r <= self.size
        }


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config: GPENConfig
    weights: WeightFile
    licence: str = _GPEN_LICENCE
    # Input convention (FACTS.md section 6): aligned RGB crop, [-1, 1], output clamped.
    mean: float = 0.5
    std: float = 0.5
    #: The default blend of the restored face with the aligned input crop (GPEN's ``--alpha``,
    #: ``cv2.addWeighted(enhanced, a, crop, 1 - a)``): GPEN's run.sh uses 0.8 for the 2048 model,
    #: whose full-strength output looks over-smoothed on real photos; 1.0 for the others.
    strength: float = 1.0

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
        strength=0.8,
    ),
}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise InvalidInputError(
            f"unknown model {name!r}; known models: {', '.join(MODELS)} (or pass a checkpoint path)"
        ) from None
