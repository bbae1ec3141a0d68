"""Hunt 20 (quality20): a frame identical to the one before it (a frozen picture, a video at twice
its frame rate, a capture's repeated frame) gets the faces of the frame it repeats, so its output
is that frame's too: tracked, the paste swam 1-3 px over the still picture."""
from __future__ import annotations

import av
import numpy as np
import pytest

from _clips import write_video


def _talking_head(shared, n=10, size=320):
    out = []
    with av.open(str(shared / "data/videos/retalking_face2_frontal_talking_head.mp4")) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % 2 == 0:  # (every other frame: more motion between the distinct ones)
                out.append(np.asarray(f.to_image().resize((size, size))))
            if len(out) == n:
                break
    return out


def _lossless(path, frames):
    # FFV1: every decoded frame is exactly what was written, so a repeat is a repeat
    return write_video(path, frames, codec="ffv1", pix_fmt="yuv444p")


@pytest.fixture(scope="module")
def solid(mobilenet_weights):
    from stream_gpen import Enhancer
    from tests._doubles import SolidRestorer

    def make(**kw):
        return Enhancer(SolidRestorer(256), device="cpu", detector_weights=mobilenet_weights, progress=False, **kw)
    return make


@pytest.mark.parametrize("kw", [{}, {"smooth_lag": 0}, {"detect_every": 1}])
def test_each_frame_shown_twice_gives_twice_the_same_output(tmp_path, shared, solid, kw):
    distinct = _talking_head(shared)
    clip = _lossless(tmp_path / "twice.mkv", [f for f in distinct for _ in range(2)])
    enh = solid(**kw)
    out = [f.image for f in enh.stream(str(clip))]
    assert len(out) == 2 * len(distinct)
    masks = [np.any(o != 0, axis=2) & np.all(o == 255, axis=2) for o in out]
    assert all(m.sum() > 1000 for m in masks)  # a face pasted on every frame
    for i in range(0, len(out), 2):
        assert np.array_equal(out[i], out[i + 1]), f"frames {i} and {i + 1}: the repeat's paste moved"
    # the distinct frames still follow the face (not one paste for all)
    assert not np.array_equal(masks[0], masks[-1])


def test_a_long_freeze_runs_through_in_order(tmp_path, shared, solid):
    # far more repeats than may wait with the look-ahead (and the ring holds): the rest are tracked
    distinct = _talking_head(shared, n=4, size=256)
    frames = distinct[:2] + [distinct[2]] * 30 + distinct[3:]
    clip = _lossless(tmp_path / "freeze.mkv", frames)
    enh = solid()
    s = enh.enhance_file(clip, tmp_path / "o.mkv", codec="h264", crf=0)
    assert s.frames_in == s.frames_out == len(frames)
    with av.open(str(tmp_path / "o.mkv")) as c:
        times = [f.pts for f in c.decode(video=0)]
    assert len(times) == len(frames) and times == sorted(times)


@pytest.mark.parametrize("lag", [0, 3])
def test_repeats_wait_within_their_bound(lag):
    """17 identical frames: at most ``repeats_held`` repeats wait with the look-ahead (the
    Enhancer's ring has that many more slots), and those going out with their frame fill the
    ring's room beside the batch, no more; the rest are tracked; every frame out, in order."""
    import torch

    from stream_gpen.faces import FaceTracker, FixedLagSmoother
    from stream_gpen.pipeline import FaceStage, run_stream
    from tests.test_faces_smoother import _Detector, _Frame, _White

    class Frozen:
        ring_size = 16

        def __init__(self, n):
            self.image = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (160, 200, 3), dtype=np.uint8))
            self.n, self.live, self.peak = n, set(), 0

        def __iter__(self):
            for i in range(self.n):
                self.peak = max(self.peak, len(self.live) + 1)
                yield _Frame(i, self.image.clone(), self.live)

    src = Frozen(17)
    stage = FaceStage(_White(), _Detector(), FaceTracker(detect_every=5),
                      smoother=FixedLagSmoother(lag=lag) if lag else None)
    stage.repeats_held = 2
    seen = []
    for frame in run_stream(src, stage, batch_faces=4, max_pending_frames=4):
        seen.append(frame.index)
        assert (frame.image == 255).any()
        frame.release()
    assert seen == list(range(17)) and stage.faces_restored == 17
    assert stage.repeats == 16 if not lag else 0 < stage.repeats < 16  # (with the look-ahead: at most 2 wait)
    assert src.peak <= Frozen.ring_size - 1  # (never more than the ring holds: the decoder never starves)


def test_the_smoother_still_smooths_footage_shown_twice(tmp_path, shared, solid):
    # repeats are left out of the smoother's timeline: their frames' numbers jumped by 2, which
    # it takes for a break, and footage shown twice was not smoothed at all (hunt 20b)
    distinct = _talking_head(shared, n=8, size=256)
    clip = _lossless(tmp_path / "twice.mkv", [f for f in distinct for _ in range(2)])
    enh = solid()
    src, stage = enh._open(str(clip))
    moved = []
    push = stage.smoother.push

    def watched(i, tracks, **kw):
        raw = {t.id: t.landmarks.clone() for t in tracks}
        out = push(i, tracks, **kw)
        moved.extend(float((t.landmarks - raw_at[j][t.id]).abs().max()) for j, ts in out for t in ts
                     if t.id in raw_at.get(j, {}))
        raw_at[i] = raw
        return out

    raw_at: dict = {}
    stage.smoother.push = watched
    with src:
        for frame in enh._frames(src, stage):
            frame.release()
    assert stage.repeats == len(distinct) and stage.smoother._epoch == 0
    assert moved and max(moved) > 0.05  # the look-ahead really moved landmarks


def test_a_repeat_in_its_frames_batch_is_not_restored_again(tmp_path, shared, mobilenet_weights):
    from stream_gpen import Enhancer
    from tests._doubles import SolidRestorer

    distinct = _talking_head(shared, n=10, size=256)
    clip = _lossless(tmp_path / "twice.mkv", [f for f in distinct for _ in range(2)])
    restorer = SolidRestorer(256)
    enh = Enhancer(restorer, device="cpu", detector_weights=mobilenet_weights, progress=False, batch_size=32)
    s = enh.enhance_file(clip, tmp_path / "o.mkv", codec="h264", crf=0)
    assert s.frames_out == 20 and s.faces_restored == 20 and s.frames_with_faces == 20  # (counted as restored)
    assert sum(restorer.calls) < 20  # (its frame's output copied: 10 crops restored, not 20)


def test_a_frame_differing_only_between_the_compared_rows_keeps_its_own_pixels(tmp_path, shared, mobilenet_weights):
    # found on every 4th row, its faces' alignment is taken over; its output is not its frame's
    # (a 3-row line drawn between the compared rows vanished from every such frame, hunt 20c)
    from stream_gpen import Enhancer
    from tests._doubles import SolidRestorer

    distinct = _talking_head(shared, n=6, size=256)
    frames = []
    for f in distinct:
        g = f.copy()
        g[1:4, :] = 255  # (rows 1-3: between rows 0 and 4)
        frames += [f, g]
    clip = _lossless(tmp_path / "rows.mkv", frames)
    enh = Enhancer(SolidRestorer(256), device="cpu", detector_weights=mobilenet_weights, progress=False, batch_size=32)
    src, stage = enh._open(str(clip))
    with src:
        out = []
        for frame in enh._frames(src, stage):
            out.append(frame.image.cpu().numpy().copy())
            frame.release()
    assert stage.repeats == len(distinct)  # (found as repeats: the faces' alignment taken over)
    for i in range(1, len(out), 2):
        assert (out[i][1:4] == 255).all(), f"frame {i}: its own line lost"
        assert not (out[i - 1][1:4] == 255).all()
    assert not stage._plan_ids and not stage._repeat_of  # (nothing kept of the frames gone out)


def test_copied_repeats_keep_nothing_behind(tmp_path, shared, solid):
    distinct = _talking_head(shared, n=4, size=256)
    clip = _lossless(tmp_path / "twice.mkv", [f for f in distinct for _ in range(3)])
    enh = solid()
    src, stage = enh._open(str(clip))
    with src:
        n = sum(1 for f in enh._frames(src, stage) if f.release() is None)
    assert n == 12 and stage.repeats >= 4  # (at most smooth_lag wait at a time: the rest are tracked)
    assert not stage._plan_ids and not stage._repeat_of and not stage._held


def test_the_live_socket_path_keeps_nothing_of_its_repeats(mobilenet_weights):
    from stream_gpen import Enhancer
    from tests._doubles import SolidRestorer

    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, progress=False)
    stage = enh._picture_stage(64, 48, live=True)
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    for i in range(50):  # (a still webcam: each frame a repeat of the first)
        enh._restore_tracked(stage, i, img)
    assert stage.repeats == 49 and not stage._repeat_of and not stage._plan_ids


def test_repeats_do_not_shrink_the_models_batches(tmp_path, shared, mobilenet_weights):
    # counted with the batch's frames, footage shown twice gave the model 4 crops a call, not 8
    from stream_gpen import Enhancer
    from tests._doubles import SolidRestorer

    distinct = _talking_head(shared, n=16, size=256)
    clip = _lossless(tmp_path / "twice.mkv", [f for f in distinct for _ in range(2)])
    restorer = SolidRestorer(256)
    enh = Enhancer(restorer, device="cpu", detector_weights=mobilenet_weights, progress=False, batch_size=8)
    enh.enhance_file(clip, tmp_path / "o.mkv", codec="h264", crf=0)
    # (16 crops; the ring's room beside the batch holds 6 waiting repeats: 7 frames and their
    # repeats a call, where 4 and 4 were; GPEN's bucket of 8 runs either)
    assert sum(restorer.calls) == 16 and max(restorer.calls) >= 6 and len(restorer.calls) <= 3, restorer.calls
