"""flicker25: a frame repeated in lossy video (a re-encoded pulldown, a frame shown twice, a
frozen picture) is never bit-exact: codec noise of 0.05-0.22 grey levels on average (single
pixels up to 46 at edges) made it a frame of its own, tracked, and its paste moved 0.4-2 px
over the still picture (4 px without the look-ahead): the face redrawn at each position."""
from __future__ import annotations

import numpy as np
import pytest

from test_repeats20 import _lossless, _talking_head


def _noisy(frame: np.ndarray, seed: int) -> np.ndarray:
    """``frame`` as a lossy codec gives it again: most pixels the same, some 1 off, a few far off."""
    rng = np.random.default_rng(seed)
    noise = rng.choice([-1, 0, 1], size=frame.shape, p=[0.08, 0.84, 0.08])
    spikes = rng.random(frame.shape[:2]) < 0.0005
    noise[spikes] = rng.choice([-30, 30], size=(int(spikes.sum()), frame.shape[2]))
    return np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _pastes(out: list[np.ndarray]) -> list[np.ndarray]:
    return [np.all(o == 255, axis=2) for o in out]


@pytest.fixture(scope="module")
def solid(mobilenet_weights):
    from stream_gpen import Enhancer
    from tests._doubles import SolidRestorer

    def make(**kw):
        return Enhancer(SolidRestorer(256), device="cpu", detector_weights=mobilenet_weights, progress=False, **kw)
    return make


@pytest.mark.parametrize("kw", [{}, {"smooth_lag": 0}])
def test_a_noisy_repeat_keeps_its_frames_paste(tmp_path, shared, solid, kw):
    distinct = _talking_head(shared)
    frames = [g for i, f in enumerate(distinct) for g in (f, _noisy(f, i))]
    assert np.abs(frames[1].astype(int) - frames[0]).mean() < 0.3  # (noise level, as measured on real clips)
    enh = solid(**kw)
    out = [f.image for f in enh.stream(str(_lossless(tmp_path / "twice.mkv", frames)))]
    assert len(out) == len(frames)
    pastes = _pastes(out)
    assert all(p.sum() > 1000 for p in pastes)
    for i in range(0, len(out), 2):
        moved = int((pastes[i] ^ pastes[i + 1]).sum())  # (a paste moved by 1 px: its whole outline)
        assert moved < 20, f"frames {i} and {i + 1}: the noisy repeat's paste moved ({moved} px changed)"
        # its own pixels, not its frame's, outside the paste
        assert not np.array_equal(out[i], out[i + 1])
    assert not np.array_equal(pastes[0], pastes[-1])  # the distinct frames still follow the face


@pytest.mark.parametrize("contrast", [1.0, 0.25])
def test_a_face_that_moved_a_pixel_is_not_a_repeat(tmp_path, shared, solid, contrast):
    """The whole frame nearly the same (a small face on a still background), the face moved by
    one pixel: tracked as a frame of its own, its paste follows; a dim, flat face too (moved a
    pixel, it differs by about one grey level, within the noise bound of a bright face)."""
    face = _talking_head(shared, n=1, size=96)[0]
    face = np.clip(120 + (face.astype(np.float64) - 120) * contrast, 0, 255).astype(np.uint8)
    frames = []
    for dx in (0, 0, 1, 1, 2):
        f = np.full((360, 640, 3), 120, np.uint8)
        f[120:216, 270 + dx:366 + dx] = face
        frames.append(f)
    full = [np.abs(a.astype(int) - b).mean() for a, b in zip(frames, frames[1:])]
    assert max(full) < 0.5  # (the frame as a whole is within the noise bound)
    out = [f.image for f in solid(smooth_lag=0, detect_every=1).stream(str(_lossless(tmp_path / "m.mkv", frames)))]
    pastes = _pastes(out)
    assert int((pastes[1] ^ pastes[2]).sum()) > 20, "the moved face's paste did not follow it"
