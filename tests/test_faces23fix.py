"""Regressions of hunt faces23: the change watch's global shift on a plain background, and video
whose picture is turned (no rotation tag)."""
from __future__ import annotations

import numpy as np


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 1.5) * 1.5 - 60


def test_median_shift_plain_background_is_still():
    """The change watch's global shift is the median LK flow of a 48-point grid. It was taken over
    the points LK could follow only: in front of a plain wall those are the moving person's (6 of
    48 in hunt faces23's walk-in clip), so their motion (6.3 / 12.5 / 18.7 / 25 px at the watch's
    160 px) became the camera's, the reference was shifted along with them and a border of as much
    left out where their face came in. A point on flat content now votes for no motion."""
    from stream_gpen.faces._tracker import _median_shift

    h, w = 90, 160
    person = _texture(80, 40, 0)
    ref = np.full((h, w), 90, np.float32)
    cur = ref.copy()
    ref[5:85, 2:42] = person
    cur[5:85, 14:54] = person  # 12 px to the right; the wall stays where it was
    dx, dy = _median_shift(ref, cur)
    assert abs(dx) < 0.5 and abs(dy) < 0.5, (dx, dy)


def test_median_shift_pan_still_found():
    """A pan over textured content is still the global shift (most of the grid tracks)."""
    from stream_gpen.faces._tracker import _median_shift

    scene = _texture(120, 200, 1)
    ref = np.ascontiguousarray(scene[10:100, 10:170])
    cur = np.ascontiguousarray(scene[10:100, 4:164])  # the camera pans left: content moves +6 px
    dx, dy = _median_shift(ref, cur)
    assert abs(dx - 6) < 0.5 and abs(dy) < 0.5, (dx, dy)
