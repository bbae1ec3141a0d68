"""GPEN generator, model registry and checkpoint loading.

Importing this package is cheap: the registry is plain dataclasses, and the torch-based parts
(:class:`FullGenerator`, :func:`load_generator`, …) are imported on first attribute access.
"""
from __future__ import annotations

from stream_gpen.models.registry import MODELS, GPENConfig, ModelSpec, get_spec

__all__ = [
    "MODELS",
    "GPENConfig",
    "ModelSpec",
    "get_spec",
    "FullGenerator",
    "random_generator",
    "TINY_CONFIG",
    "TINY256_CONFIG",
    "read_state_dict",
    "infer_config",
    "load_generator",
]

_LAZY = {
    "FullGenerator": "stream_gpen.models.gpen",
    "random_generator": "stream_gpen.models.gpen",
    "TINY_CONFIG": "stream_gpen.models.gpen",
    "TINY256_CONFIG": "stream_gpen.models.gpen",
    "read_state_dict": "stream_gpen.models.loading",
    "infer_config": "stream_gpen.models.loading",
    "load_generator": "stream_gpen.models.loading",
}


def __getattr__(name: str):
    # Lazy so that `import stream_gpen.models` does not import torch.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'stream_gpen.models' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
