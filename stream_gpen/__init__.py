"""stream-gpen: GPEN face restoration for videos, live cameras and photos."""
import typing

from stream_gpen.errors import Cancelled, Interrupted, InvalidInputError, StreamGpenError

if typing.TYPE_CHECKING:  # what checkers and IDEs see; at run time these load on first use (__getattr__)
    from stream_gpen.api import EnhancedFrame, Enhancer
    from stream_gpen.summary import RunSummary

__version__ = "0.1.0"
__all__ = ["StreamGpenError", "InvalidInputError", "Interrupted", "Cancelled", "Enhancer", "EnhancedFrame", "RunSummary", "__version__"]

# Lazy so that `import stream_gpen` stays cheap (no torch/av import at package import).
_LAZY = {"Enhancer": "stream_gpen.api", "EnhancedFrame": "stream_gpen.api", "RunSummary": "stream_gpen.summary"}


#: submodules a user reaches as attributes (``stream_gpen.cli.main([...])`` after ``import stream_gpen``)
_SUBMODULES = ("api", "cli", "weights", "errors", "summary", "pipeline", "io", "faces", "models", "runtime")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"stream_gpen.{name}")
    raise AttributeError(f"module 'stream_gpen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted((set(globals()) - {"typing"}) | set(_LAZY))
