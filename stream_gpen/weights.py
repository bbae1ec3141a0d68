"""Weights manager: where checkpoints live, how they are fetched and verified.

Every downloadable file is described by a :class:`WeightFile`. GPEN generators are listed in
:mod:`stream_gpen.models.registry`; the RetinaFace detectors are listed here.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class WeightFile:
    """One downloadable weights file.

    ``size`` and ``sha256`` are ``None`` where nobody has published them (we say so rather than
    guess); a file is then accepted after download on size alone, or unchecked, and ``verify``
    reports it as "unverified".
    """

    name: str  # registry name, e.g. "gpen-bfr-512" or "retinaface-mobilenet0.25"
    filename: str  # file name on disk
    urls: tuple[str, ...]  # tried in order
    size: int | None = None  # bytes, where known
    sha256: str | None = None  # hex digest, where known
    licence: str = ""
    note: str = ""  # provenance of size/sha256, caveats
    aliases: tuple[str, ...] = field(default_factory=tuple)  # other file names accepted on disk


DETECTOR_FILES: dict[str, WeightFile] = {
    "retinaface-resnet50": WeightFile(
        name="retinaface-resnet50",
        filename="detection_Resnet50_Final.pth",
        urls=("https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",),
        size=109_497_761,
        sha256="6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d",
        licence="MIT (biubug6/Pytorch_Retinaface)",
        note="sha256 as pinned by the AUR python-facexlib PKGBUILD; not checked by us (no network here)",
        aliases=("Resnet50_Final.pth", "RetinaFace-R50.pth"),
    ),
    "retinaface-mobilenet0.25": WeightFile(
        name="retinaface-mobilenet0.25",
        filename="detection_mobilenet0.25_Final.pth",
        urls=("https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_mobilenet0.25_Final.pth",),
        size=1_789_735,
        sha256="2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220",
        licence="MIT (biubug6/Pytorch_Retinaface)",
        note="sha256 checked on a byte-identical copy",
        aliases=("mobilenet0.25_Final.pth",),
    ),
}
