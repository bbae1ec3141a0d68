"""flicker25: a frame repeated in lossy video (a re-encoded pulldown, a frame shown twice, a
frozen picture) is never bit-exact: codec noise of 0.05-0.22 grey levels on average (single
pixels up to 46 at edges) made it a frame of its own, tracked, and its paste moved 0.4-2 px
over the still picture (4 px without the look-ahead): the face redrawn at each position."""
from __future__ import annotations

import av
import numpy as np
import pytest

from test_repeats20 import _lossless, _talking_head


def _noisy(frame: np.ndarray, seed: int, off: float = 0.16) -> np.ndarray:
    """``frame`` as a lossy codec gives it again: most pixels the same, ``off`` of them 1 off, a
    few far off."""
    rng = np.random.default_rng(seed)
    noise = rng.choice([-1, 0, 1], size=frame.shape, p=[off / 2, 1 - off, off / 2])
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


def test_a_face_appearing_in_a_still_noisy_picture_is_restored(tmp_path, shared, solid):
    """review25: a still picture is never bit-exact either: every frame was taken for a repeat of
    the last one tracked, the tracking (and its periodic detection) stopped, and a face that
    came into a still webcam picture was never restored (0 of 20 frames live)."""
    from PIL import Image, ImageFilter

    from _clips import write_video

    with av.open(str(shared / "data/videos/facenet_crowd_1080p_multiface.mp4")) as c:
        bg = next(iter(c.decode(video=0))).to_ndarray(format="rgb24")
    im = Image.open(sorted((shared / "data/faces/aligned").glob("*.png"))[1]).convert("RGB").resize((100, 100))
    sharp, blur = np.asarray(im).astype(float), np.asarray(im.filter(ImageFilter.GaussianBlur(16))).astype(float)
    frames = []
    for i in range(28):
        a = min(1.0, max(0.0, (i - 4) / 8))  # (it comes into view over 8 frames: someone turning to the camera)
        f = bg.copy()
        f[80:180, 1500:1600] = (blur * (1 - a) + sharp * a).round().astype(np.uint8)
        frames.append(f)
    clip = write_video(tmp_path / "still.mp4", frames, codec="libx264", options={"crf": "20"})
    out = [f.image for f in solid(smooth_lag=0).stream(str(clip))]
    pasted = [bool(np.all(o[80:180, 1500:1600] == 255, axis=2).mean() > 0.2) for o in out]
    assert all(pasted[16:]), pasted
