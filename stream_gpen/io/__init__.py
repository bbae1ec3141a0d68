"""Video, camera and image I/O: sources decode into a bounded frame ring, sinks encode from it.

Public names are re-exported lazily so that ``import stream_gpen.io`` does not import torch/av.
"""
from __future__ import annotations

__all__ = [
    "open_source", "open_sink", "StreamMetadata", "AuxStreamInfo", "Frame", "FrameRing",
    "FrameReleasedError", "VideoSource", "ImageSource", "FileSink", "NullSink", "ImageSink",
    "PreviewSink", "VirtualCameraSink", "remux", "CaptureMode",
]

_WHERE = {
    "open_source": "stream_gpen.io._open",
    "open_sink": "stream_gpen.io._open",
    "StreamMetadata": "stream_gpen.io._meta",
    "AuxStreamInfo": "stream_gpen.io._meta",
    "Frame": "stream_gpen.io._ring",
    "FrameRing": "stream_gpen.io._ring",
    "FrameReleasedError": "stream_gpen.io._ring",
    "VideoSource": "stream_gpen.io._source",
    "CaptureMode": "stream_gpen.io._capture",
    "ImageSource": "stream_gpen.io._image",
    "ImageSink": "stream_gpen.io._image",
    "FileSink": "stream_gpen.io._sink",
    "NullSink": "stream_gpen.io._sink",
    "PreviewSink": "stream_gpen.io._sink",
    "VirtualCameraSink": "stream_gpen.io._sink",
    "remux": "stream_gpen.io._remux",
}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'stream_gpen.io' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
