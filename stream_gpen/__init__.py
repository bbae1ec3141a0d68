"""stream-gpen: GPEN face restoration for videos, live cameras and photos.

Importing the package sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already sets it
(yours wins). torch's CPU kernels run on OpenMP (GNU libgomp), whose threads by default spin at
each barrier waiting for the others; a stream-gpen run shares the cores with its own decoder and
encoder threads, so one OpenMP thread is often descheduled while the other spins, and on a loaded
2-core machine the detector took 10-20x longer (docs/benchmarks.md, "OpenMP wait policy").
libgomp reads the variable once, when torch loads it: a program that imported torch before
stream_gpen keeps the policy it started with (set the variable in its environment instead).
"""
import os
import sys
import typing

# (before anything of ours imports torch; see the module docstring)
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    if "torch" in sys.modules:
        import logging

        logging.getLogger(__name__).debug(
            "OMP_WAIT_POLICY=PASSIVE set after torch was imported: it applies to child processes only "
            "(set it in the environment to have this process's OpenMP threads sleep rather than spin)")

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
    return sorted((set(globals()) - {"os", "sys", "typing"}) | set(_LAZY))
