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


def _skimage_umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``skimage.transform._geometric._umeyama`` with scale (what GPEN's alignment calls), 2-D."""
    src, dst = src.astype(np.float64), dst.astype(np.float64)
    sd, dd = src - src.mean(0), dst - dst.mean(0)
    a = dd.T @ sd / len(src)
    d = np.ones(2)
    if np.linalg.det(a) < 0:
        d[1] = -1
    u, s, v = np.linalg.svd(a)
    if np.linalg.matrix_rank(a) == 1:
        r = u @ v if np.linalg.det(u) * np.linalg.det(v) > 0 else u @ np.diag([1.0, -1.0]) @ v
    else:
        r = u @ np.diag(d) @ v
    scale = (s @ d) / sd.var(0).sum()
    return np.c_[scale * r, dst.mean(0) - scale * r @ src.mean(0)]


def test_collinear_landmarks_align_without_mirroring_the_face():
    """Was: with all five landmarks on one line the covariance has determinant 0, the rotation's
    sign came from that alone, and about half of such lines gave a reflection (det < 0): the
    face went into GPEN mirrored. skimage's rank-1 branch picks the rotation."""
    from stream_gpen.faces._align import estimate_affines, reference_points

    ref = reference_points(512).numpy()
    rng = np.random.default_rng(33)
    for _ in range(40):
        p = (rng.random((5, 2)) * 500).astype(np.float32)
        p[:, rng.integers(2)] = p[0, 0]  # a vertical or horizontal line, exactly
        got = estimate_affines(torch.from_numpy(p), size=512)[0].double().numpy()
        assert np.linalg.det(got[:, :2]) > 0
        np.testing.assert_allclose(got, _skimage_umeyama(p, ref), rtol=1e-5, atol=1e-4)
    t = np.arange(5, dtype=np.float32)[rng.permutation(5)]
    for p in (np.c_[3 * t + 100, 2 * t + 50], np.c_[3 * t + 100, -2 * t + 50]):  # slanted lines
        got = estimate_affines(torch.from_numpy(p.astype(np.float32)), size=512)[0].double().numpy()
        assert np.linalg.det(got[:, :2]) > 0


def test_landmarks_off_a_line_align_as_before():
    from stream_gpen.faces._align import estimate_affines, reference_points

    ref = reference_points(512).numpy()
    p = (np.random.default_rng(7).random((64, 5, 2)) * 500).astype(np.float32)
    got = estimate_affines(torch.from_numpy(p), size=512).double().numpy()
    for g, q in zip(got, p):
        np.testing.assert_allclose(g, _skimage_umeyama(q, ref), rtol=1e-5, atol=1e-4)
