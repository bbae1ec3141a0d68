"""Faces: RetinaFace detection, tracking between detections, batched alignment and paste-back.

Public API (re-exported from private modules)::

    FaceDetector, Detections            # _detector.py
    FaceTracker, Track                  # _tracker.py
    FixedLagSmoother                    # _smoother.py (look-ahead smoothing for offline video)
    reference_points, estimate_affines, invert_affines, warp_faces   # _align.py
    paste_faces                         # _paste.py
    FaceParser                          # _parse.py (face-parsing paste masks, GPEN's paste-back)
"""
from __future__ import annotations

from stream_gpen.faces._align import estimate_affines, invert_affines, reference_points, warp_faces
from stream_gpen.faces._detector import Detections, FaceDetector
from stream_gpen.faces._parse import FaceParser
from stream_gpen.faces._paste import paste_faces
from stream_gpen.faces._smoother import FixedLagSmoother
from stream_gpen.faces._tracker import FaceTracker, Track

__all__ = [
    "Detections",
    "FaceDetector",
    "FaceParser",
    "FaceTracker",
    "FixedLagSmoother",
    "Track",
    "estimate_affines",
    "invert_affines",
    "paste_faces",
    "reference_points",
    "warp_faces",
]
