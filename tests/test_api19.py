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


def test_paths_given_as_bytes_are_file_names(tmp_path, enh):
    src = _noise_clip(tmp_path / "n.mp4", n=3)
    s = enh.enhance_file(bytes(src), bytes(tmp_path / "o.mp4"))  # was "input not found: b'...n.mp4'"
    assert s.frames_out == 3 and (tmp_path / "o.mp4").exists()
    assert len(list(enh.stream(bytes(src)))) == 3  # (hunt 20: stream() takes them too, as enhance_file does)


class _Stop:
    def __init__(self, at):
        self.at = at

    def __call__(self, done, total, faces):
        from stream_gpen import Cancelled

        if done == self.at:
            raise Cancelled("stop please")


def test_a_cancelled_raised_by_the_progress_callback_is_a_cancel_not_an_error(tmp_path, enh):
    from stream_gpen import Cancelled

    src = _noise_clip(tmp_path / "n.mp4", n=20)
    with pytest.raises(Cancelled) as info:
        enh.enhance_file(src, tmp_path / "o.mp4", on_progress=_Stop(3))
    s = info.value.summary
    assert s.interrupted and s.error is None and s.frames_out == 3
    assert s.partial_output and str(info.value).startswith("cancelled")
    # in a folder too: the run stops there (a cancel was counted as one video's failure: skipped, on)
    (tmp_path / "in").mkdir()
    for k in range(2):
        _noise_clip(tmp_path / "in" / f"v{k}.mp4", n=10)
    with pytest.raises(Cancelled) as info:
        enh.enhance_file(tmp_path / "in", tmp_path / "out", on_progress=_Stop(3))
    s = info.value.summary
    assert s.interrupted and s.skipped == [] and s.frames_out == 3


def test_a_restorer_object_is_named_by_its_class(mobilenet_weights):
    from stream_gpen import Enhancer

    class Plain:
        size = 64

        def __call__(self, crops):
            return crops

    e = Enhancer(Plain(), device="cpu", detector_weights=mobilenet_weights, progress=False)
    assert e.model_name == "Plain"  # was "<...Plain object at 0x7f...>" in every summary and report


class _Red:
    name = "red"
    fallbacks: list = []

    def __init__(self, size=64):
        import torch

        self.size, self.device = size, torch.device("cpu")

    def __call__(self, crops):
        out = crops.clone()
        out[:, 0], out[:, 1:] = 250, 10
        return out


def test_a_grey_photo_comes_back_the_same_from_enhance_image_and_enhance_file(tmp_path, shared, mobilenet_weights):
    from PIL import Image

    from stream_gpen import Enhancer

    e = Enhancer(_Red(), device="cpu", detector_weights=mobilenet_weights, progress=False)
    grey = Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("L")
    grey.thumbnail((256, 256))
    grey.save(tmp_path / "g.png")
    s = e.enhance_file(tmp_path / "g.png", tmp_path / "o.png")
    assert s.faces_restored == 1
    written = np.asarray(Image.open(tmp_path / "o.png"))
    got = e.enhance_image(np.asarray(grey))
    assert written.shape == got.shape and np.array_equal(got, written)  # (the mean made the face 26 levels lighter)
    hi = e.enhance_image(np.asarray(grey).astype(np.uint16) * 257)
    assert hi.dtype == np.uint16 and np.abs(hi.astype(int) // 257 - written).max() <= 1


def test_a_single_photo_written_before_a_callback_cancels_is_returned(tmp_path, shared, mobilenet_weights):
    # as with the cancel event: a photo whose restoring has begun is finished and returned
    from PIL import Image

    from stream_gpen import Enhancer
    from tests._doubles import SolidRestorer

    e = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, progress=False)
    Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB").save(tmp_path / "p.png")

    def stop(done, total, faces):
        from stream_gpen import Cancelled

        if done:
            raise Cancelled("stop please")

    s = e.enhance_file(tmp_path / "p.png", tmp_path / "o.png", on_progress=stop)
    assert not s.interrupted and s.frames_out == 1 and (tmp_path / "o.png").exists()
