"""Shared test fixtures: where ../shared lives, CUDA marker handling."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``../shared`` beside the repo, or ``$STREAM_GPEN_SHARED``."""
    return Path(os.environ.get("STREAM_GPEN_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not path.is_dir():
        # CI has ../shared: a missing folder is a set-up error, not a reason to skip.
        pytest.fail(f"shared assets not found at {path}; set STREAM_GPEN_SHARED")
    return path


@pytest.fixture(scope="session")
def gpen_fixtures(shared: Path) -> Path:
    return shared / "fixtures" / "gpen"


@pytest.fixture(scope="session")
def mobilenet_weights(shared: Path) -> Path:
    return shared / "weights" / "detection_mobilenet0.25_Final.pth"


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_runtest_setup(item):
    if item.get_closest_marker("cuda") is None or _cuda_available():
        return
    if os.environ.get("STREAM_GPEN_REQUIRE_CUDA") == "1":
        pytest.fail("CUDA required (STREAM_GPEN_REQUIRE_CUDA=1) but torch sees no CUDA device")
    pytest.skip("needs CUDA")
