"""Test doubles shared by several test files."""
from __future__ import annotations

import torch


class IdentityRestorer:
    """A restorer that returns the crops unchanged (so pixels must survive the whole pipeline)."""

    name = "identity"
    fallbacks: list = []

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.device = torch.device("cpu")

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        return crops.clone()


class SolidRestorer:
    """Every restored crop is solid white, so the changed pixels show the paste masks."""

    name = "solid"
    fallbacks: list = []

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.device = torch.device("cpu")
        self.calls: list[int] = []  # batch size of each call

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        self.calls.append(int(crops.shape[0]))
        return torch.full_like(crops, 255)
