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


class FineRestorer:
    """Every restored crop is one grey level between two 8-bit codes (``value``, e.g. 100.4): the
    uint8 output is its floor, :meth:`restore_fine` also gives the value itself, as a restorer
    whose output is finer than 8 bits does (``FaceRunner.restore_fine``)."""

    name = "fine"
    fallbacks: list = []

    def __init__(self, size: int = 64, value: float = 100.4) -> None:
        self.size = size
        self.value = value
        self.device = torch.device("cpu")

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        return self.restore_fine(crops)[0]

    def restore_fine(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fine = torch.full(crops.shape, self.value, dtype=torch.float32)
        return fine.to(torch.uint8), fine


def damaged_weights(path, kind: str, good) -> str:
    """Write a weights file damaged as users get them at ``path`` (``kind``: "truncated", a cut
    copy of the ``good`` file; "empty"; "lfs", a Git LFS pointer; "list", a pickled non-dict;
    "torchscript", a compiled model) and return the regex tail its one-line error must match."""
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[:1_000_000])
        return r"could not be read as a PyTorch checkpoint.*damaged, truncated"
    if kind == "empty":
        path.write_bytes(b"")
        return r"is empty \(0 bytes\)"
    if kind == "lfs":
        path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1789735\n")
        return r"is a Git LFS pointer"
    if kind == "list":
        torch.save([1, 2], path)
        return r"does not hold a state dict \(found list\)"
    if kind == "torchscript":
        torch.jit.script(torch.nn.Linear(2, 2)).save(str(path))
        return r"is a TorchScript archive"
    raise ValueError(kind)


def served_enhancer(monkeypatch, argv: list[str]):
    """The Enhancer ``stream-gpen serve ARGV`` builds, the app and the port left out (the app's
    factory stands in, raising once it has it)."""
    import pytest

    from stream_gpen.cli import main
    from stream_gpen.server import _app
    from stream_gpen.server import cli as server_cli

    built = {}

    class Built(BaseException):
        pass

    def made(enh, config=None):
        built["enh"] = enh
        raise Built

    monkeypatch.setattr(_app, "create_app", made)
    monkeypatch.setattr(server_cli, "_check_port", lambda *a: None)
    with pytest.raises(Built):
        main(["serve", *argv])
    return built["enh"]
