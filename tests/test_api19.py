"""Library API, hunt 19 (api19): progress totals of a cut video, a cancel that does not wait for
the look-ahead and the first batch, bytes paths, a Cancelled raised from a callback, a restorer
object's name, grey pictures made grey the way the photo writer does."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from _clips import write_video


def _noise_clip(path, n=40, size=(64, 48)):
    rng = np.random.default_rng(0)
    return write_video(path, [rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8) for _ in range(n)])


@pytest.mark.parametrize("start,duration,frames", [(0.13, None, 36), (0.0, 0.1, 3), (0.0, 0.5, 13), (0.02, None, 39),
                                                   (0.2, 0.4, 10)])
def test_a_cut_videos_progress_total_is_the_frames_it_writes(tmp_path, enh, start, duration, frames):
    # frames whose time falls in the window: --duration 0.1 at 25 fps keeps 0.00, 0.04, 0.08 (the
    # total said 2, the bar went to 150%); --start 0.13 skips 0.00-0.12 (4, the total said 37 of 36)
    src = _noise_clip(tmp_path / "n.mp4")
    seen = []
    s = enh.enhance_file(src, tmp_path / "o.mp4", start=start, duration=duration,
                         on_progress=lambda *a: seen.append(a[:2]))
    assert s.frames_out == frames
    assert seen[-1] == (frames, frames) and {t for _, t in seen} == {frames}


def test_a_cancel_stops_taking_frames_before_the_first_batch_is_restored(tmp_path, mobilenet_weights, shared,
                                                                         monkeypatch):
    # 12 frames fit in the look-ahead and the first batch: the cancel was looked at only once a
    # frame was written, so a cancelled short clip (or a long one's first batch on a CPU) ran on
    import av
    from PIL import Image

    from stream_gpen import Cancelled, Enhancer
    from stream_gpen.pipeline import FaceStage
    from tests._doubles import SolidRestorer

    with av.open(str(shared / "data/videos/retalking_face2_frontal_talking_head.mp4")) as c:
        pics = [np.asarray(Image.fromarray(f.to_ndarray(format="rgb24")).resize((160, 160)))
                for f, _ in zip(c.decode(video=0), range(12))]
    src = write_video(tmp_path / "face.mp4", pics)
    restorer = SolidRestorer(64)
    enh = Enhancer(restorer, device="cpu", detector_weights=mobilenet_weights, progress=False)
    cancel = threading.Event()
    plan = FaceStage.plan_frames

    def planning(self, index, image):
        if index == 2:
            cancel.set()  # the user presses Cancel while the third frame is being looked at
        return plan(self, index, image)

    monkeypatch.setattr(FaceStage, "plan_frames", planning)
    with pytest.raises(Cancelled) as info:
        enh.enhance_file(src, tmp_path / "o.mp4", cancel=cancel)
    s = info.value.summary
    assert restorer.calls == []  # nothing restored after the cancel
    assert s.interrupted and s.frames_out == 0 and s.frames_dropped == s.frames_in
    assert not (tmp_path / "o.mp4").exists()
