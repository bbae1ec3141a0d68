"""Hunt 31 (temporal): a face fading in between periodic detections was restored late.

The change watch counts a pixel of its 160 px grey copy as changed when it differs from the
watch's reference (the frame of the last detection) by more than ``watch_threshold`` (24 grey
levels). A face fading in over a dozen frames changes the picture by a fraction of its contrast:
the detector finds it at a tenth of its opacity or so, 8-12 grey levels from the reference, so
no probe ran and the face waited for the next periodic detection (2 frames on the hunt's
cross-dissolve with ``--detect-every 5``, more with a longer interval). Now a second, fainter
pass of the watch (a third of the threshold, in blobs six times the smallest) catches it.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tests.test_edge27 import _plan  # (each frame's pasted track ids, the pipeline's plan)
from tests.test_edge27 import _watch_run
from tests.test_slide29 import H, W, _encoded, _noisy_wall, _stage

_FACE = "data/faces/aligned/gfpgan_crop_Julia_Roberts.png"
SIZE, X, Y = 160, 300, 100  # the face photo's side and top-left corner (frame px)
STEPS = 12  # frames of the fade


def _fade(shared, n: int, *, bg: int = 96) -> list[np.ndarray]:
    """``n`` frames of flat grey on which the face photo fades in over ``STEPS`` frames from frame 3."""
    face = cv2.imread(str(shared / _FACE), cv2.IMREAD_COLOR)[:, :, ::-1]
    face = cv2.resize(face, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
    out = []
    for i in range(n):
        alpha = min(max(i - 2, 0) / STEPS, 1.0)
        f = np.full((H, W, 3), float(bg), np.float32)
        f[Y : Y + SIZE, X : X + SIZE] = (1 - alpha) * bg + alpha * face
        out.append(np.clip(f.round(), 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def clip(shared, tmp_path_factory) -> list[np.ndarray]:
    return _encoded(tmp_path_factory.mktemp("fade"), _fade(shared, 16))


@pytest.fixture(scope="module")
def found_from(clip, mobilenet_weights) -> int:
    """The first frame on which a per-frame detector (the pipeline's, at its video size) finds the
    face at 0.9 or more (the pipeline's ``min_score``)."""
    stage = _stage(mobilenet_weights)
    for i, f in enumerate(clip):
        d = stage._detect(torch.from_numpy(f), stage.video_detect_size)
        if len(d) and float(d.scores.max()) >= 0.9:
            assert 3 <= i < 2 + STEPS // 2  # (found while still faint)
            return i
    raise AssertionError("the per-frame detector never found the face")


@pytest.mark.parametrize("still", [0, 1, 3])
def test_a_face_fading_in_is_restored_from_the_first_frame_a_per_frame_detector_finds_it(
        clip, mobilenet_weights, found_from, still):
    """``still`` grey frames first move the fade against the periodic detections (every 5)."""
    frames = [clip[0]] * still + clip[: found_from + 2]
    stage = _stage(mobilenet_weights)
    ids = _plan(stage, frames)
    restored = [i for i in sorted(ids) if ids[i]]
    assert restored and restored[0] == found_from + still, (restored, found_from + still)
    assert len({t for v in ids.values() for t in v}) == 1  # one face, one track


def test_the_faint_pass_leaves_a_still_noisy_wall_and_a_slow_brightness_drift_alone():
    """No probe where nothing appears: grain on a textured wall, and the whole picture brightening
    slowly (exposure: the change is proportional to each pixel's level, not one offset)."""
    wall = _noisy_wall(12)
    tr, asked, _ = _watch_run(wall)
    assert asked == [0, 5, 10] and tr.probes == 0, asked
    drift = [np.clip(f.astype(np.float32) * (1 + 0.01 * i), 0, 255).astype(np.uint8) for i, f in enumerate(wall)]
    tr, asked, _ = _watch_run(drift)
    assert asked == [0, 5, 10] and tr.probes == 0, asked
