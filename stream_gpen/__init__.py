"""stream-gpen: GPEN face restoration for videos, live cameras and photos."""
from stream_gpen.errors import Interrupted, StreamGpenError

__version__ = "0.1.0"
__all__ = ["StreamGpenError", "Interrupted", "Enhancer", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import stream_gpen` stays cheap (no torch/av import at package import).
    if name == "Enhancer":
        from stream_gpen.api import Enhancer

        return Enhancer
    raise AttributeError(f"module 'stream_gpen' has no attribute {name!r}")
