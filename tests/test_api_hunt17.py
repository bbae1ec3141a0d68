"""The Python API as an application uses it, hunt 17: threads sharing one Enhancer shared its
detector's dropped-detection state (a photo run counted a video run's implausible detections and
searched for turned faces at the video's boxes); numpy numbers as option values were refused with
messages that called an in-range value wrong; ``device="cpu:0"`` was an unknown device."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from stream_gpen import Enhancer
from stream_gpen.errors import InvalidInputError


def _upside_down(shared):
    im = Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB")
    im.thumbnail((320, 320))
    return np.ascontiguousarray(np.rot90(np.asarray(im), 2))


def test_the_detectors_dropped_detections_are_each_threads_own(shared, enh):
    det = enh.detector
    frame = torch.from_numpy(_upside_down(shared))
    seen = {}

    def other_thread():
        before = det.implausible
        det.detect([frame])
        seen["dropped"] = det.implausible - before
        seen["boxes"] = len(det.dropped_boxes)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert seen["dropped"] >= 1 and seen["boxes"] >= 1  # (the upside-down face's landmarks fit no face)
    assert det.implausible == 0 and len(det.dropped_boxes) == 0  # this thread's: none


def test_a_photo_run_beside_a_video_run_counts_its_own_detections(tmp_path, shared, enh, face):
    from _clips import write_video

    face.resize((288, 192)).save(tmp_path / "up.png")
    alone = enh.enhance_file(tmp_path / "up.png", tmp_path / "a.png")
    up = _upside_down(shared)
    frame = np.zeros((320, 320, 3), np.uint8)
    frame[: up.shape[0], : up.shape[1]] = up
    src = write_video(tmp_path / "upside.mp4", [frame] * 6)
    ran = threading.Event()
    stop = threading.Event()
    errors = []

    def video():  # keeps the shared detector's dropped state of its thread busy
        try:
            while not stop.is_set():
                enh.enhance_file(src, tmp_path / "v.mp4", overwrite=True, preset="ultrafast")
                ran.set()
        except Exception as e:  # noqa: BLE001
            errors.append(e)
            ran.set()

    t = threading.Thread(target=video)
    t.start()
    try:
        assert ran.wait(120) and not errors, errors
        for i in range(3):
            s = enh.enhance_file(tmp_path / "up.png", tmp_path / f"b{i}.png")
            assert (s.detector_calls, s.detections_implausible, s.faces_restored) == (
                alone.detector_calls, alone.detections_implausible, alone.faces_restored)
    finally:
        stop.set()
        t.join()
    assert not errors, errors


def test_numpy_numbers_are_taken_as_option_values(tmp_path, mobilenet_weights, face):
    from tests._doubles import IdentityRestorer

    enh = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False,
                   strength=np.float32(0.8), min_face=np.float32(10), batch_size=np.int64(4),
                   detect_every=np.int64(3), detect_size=np.int64(640), max_faces=np.int64(2),
                   smooth_lag=np.int32(2))
    assert (enh.strength, enh.batch_size, enh.detect_size, enh.smooth_lag) == (pytest.approx(0.8), 4, 640, 2)
    assert all(type(v) in (int, float) for v in (enh.strength, enh.batch_size, enh.detect_size, enh.smooth_lag))
    from _clips import write_video

    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)])
    s = enh.enhance_file(src, tmp_path / "o.mp4", start=np.float32(0.04), duration=np.float64(0.08),
                         preset="ultrafast")
    assert s.frames_out == 2
    # still refused where the value is wrong, and a bool is no number
    for kw in ({"strength": np.float32(1.5)}, {"batch_size": np.int64(0)}, {"min_face": np.bool_(True)},
               {"detect_every": np.float32(2.0)}, {"max_faces": True}):
        with pytest.raises(InvalidInputError):
            Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False, **kw)


def test_cpu_0_is_the_cpu():
    from stream_gpen.runtime import select_device

    assert select_device("cpu:0")[0] == torch.device("cpu")
    assert select_device(torch.device("cpu", 0))[0] == torch.device("cpu")
    with pytest.raises(InvalidInputError, match="unknown device"):
        select_device("cpu:1")
