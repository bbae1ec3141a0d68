"""Runtime: fixed-shape face batches through GPEN (buckets, static buffers, CUDA graphs, precision).

Public API::

    from stream_gpen.runtime import FaceRunner, select_device
    runner = FaceRunner(model, size=512, device="auto", precision="auto")
    restored = runner(crops_uint8)  # [n,3,S,S] uint8 RGB -> same, on runner.device

Importing this package imports torch (the runner needs it); ``stream_gpen`` itself stays light.
"""
from stream_gpen.runtime._device import select_device
from stream_gpen.runtime._plan import Chunk, plan_batches
from stream_gpen.runtime._runner import DEFAULT_BUCKETS, Fallback, FaceRunner

__all__ = ["FaceRunner", "Fallback", "select_device", "plan_batches", "Chunk", "DEFAULT_BUCKETS"]
