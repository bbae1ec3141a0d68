"""Hunt 33, against the official GPEN pipeline (``shared/fixtures/gpen/FACTS.md`` §7)."""

from __future__ import annotations

import numpy as np
import torch


def _py_cpu_nms(dets: np.ndarray, thresh: float) -> list[int]:
    """GPEN's RetinaFace NMS (``py_cpu_nms``), pixel-inclusive boxes: the reference."""
    x1, y1, x2, y2, scores = dets.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort(kind="stable")[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]) + 1)
        inter = w * h
        ovr = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[np.where(ovr <= thresh)[0] + 1]
    return keep


def test_nms_suppresses_a_small_duplicate_face_as_gpen():
    """Was: NMS areas without GPEN's "+1": two 20 px boxes 8.3 px apart had IoU 0.392 (0.413 in
    GPEN), both were kept and the one small face was restored twice."""
    from stream_gpen.faces._detector import nms

    boxes = torch.tensor([[10.0, 10.0, 29.0, 29.0], [18.3, 10.0, 37.3, 29.0]])
    scores = torch.tensor([0.99, 0.95])
    assert nms(boxes, scores, 0.4).tolist() == [0] == _py_cpu_nms(np.c_[boxes.numpy(), scores.numpy()], 0.4)


def test_nms_keeps_what_gpens_keeps_on_small_boxes():
    from stream_gpen.faces._detector import nms

    g = torch.Generator().manual_seed(33)
    xy = torch.rand(400, 2, generator=g) * 120
    boxes = torch.cat([xy, xy + torch.rand(400, 2, generator=g) * 25 + 4], 1).double()
    scores = torch.rand(400, generator=g).double()  # (distinct: the reference orders ties otherwise)
    for thr in (0.3, 0.4, 0.5):
        assert nms(boxes, scores, thr).tolist() == _py_cpu_nms(np.c_[boxes.numpy(), scores.numpy()], thr)

