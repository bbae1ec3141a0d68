"""Hunt 33: no live path warmed the face model up, so on CUDA each face count first seen in a
camera or live stream (1, 2, 3-4, 5-8) captured its graph mid-stream, a 0.5-2 s stall each
(session 16), though FaceRunner.warmup() says to call it before a live stream starts. The live
paths now warm up the buckets up to batch_size where the runner captures graphs (CUDA) and do
nothing on the CPU, where warming up would be seconds of eager passes at start-up."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from stream_gpen import Enhancer
from stream_gpen.commands import run_camera

LAVFI = "lavfi:testsrc2=size=96x64:rate=25"


class _GraphRunner:
    """A restorer double that replays CUDA graphs as a FaceRunner on CUDA does (``cuda_graphs``):
    it records its warm-ups and calls in ``events``."""

    name, fallbacks, size, buckets = "graphs", [], 64, (1, 2, 4, 8)

    def __init__(self, events: list, *, cuda_graphs: bool = True) -> None:
        self.device = torch.device("cpu")
        self.cuda_graphs = cuda_graphs
        self.events = events
        self._captured: set[int] = set()

    @property
    def captured_buckets(self) -> tuple[int, ...]:
        return tuple(sorted(self._captured))

    def warmup(self, buckets=None) -> None:
        self.events.append(("warmup", tuple(buckets)))
        self._captured.update(buckets)

    def __call__(self, crops):
        self.events.append("restore")
        return crops.clone()


def _enhancer(restorer, mobilenet_weights) -> Enhancer:
    enh = Enhancer(restorer, device="cpu", detector_weights=mobilenet_weights, batch_size=4, detect_size=96,
                   progress=False)
    events = getattr(restorer, "events", None)
    if events is not None:  # (the source's opening, in the same list: the warm-up must come first)
        opened = enh._open
        enh._open = lambda *a, **k: (events.append("open"), opened(*a, **k))[1]
    return enh


def test_the_camera_warms_graphs_up_once_before_its_source_opens(tmp_path, mobilenet_weights):
    events: list = []
    enh = _enhancer(_GraphRunner(events), mobilenet_weights)
    summary = run_camera(enh, LAVFI, outputs=[str(tmp_path / "rec.mkv")], frames=2, quiet=True)
    assert summary.frames_out == 2
    assert events == [("warmup", (1, 2, 4)), "open"], events  # (buckets up to batch_size 4)
    assert "warmup" in summary.stage_seconds, summary.stage_seconds
    run_camera(enh, LAVFI, outputs=[str(tmp_path / "rec2.mkv")], frames=2, quiet=True, overwrite=True)
    assert events.count(("warmup", (1, 2, 4))) == 1, events  # (captured: kept for the next session)


def test_stream_and_stream_frames_warm_up_for_a_live_source(mobilenet_weights):
    events: list = []
    enh = _enhancer(_GraphRunner(events), mobilenet_weights)
    frames = enh.stream(LAVFI)  # (a lavfi graph says it is live)
    list(itertools.islice(frames, 2))
    frames.close()
    assert events == ["open", ("warmup", (1, 2, 4))], events

    events2: list = []
    enh2 = _enhancer(_GraphRunner(events2), mobilenet_weights)
    list(enh2.stream_frames([np.zeros((64, 96, 3), np.uint8)] * 2))
    assert events2 == [("warmup", (1, 2, 4))], events2


def test_the_server_warms_up_at_start(mobilenet_weights):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from stream_gpen.server import ServerConfig, create_app

    events: list = []
    enh = _enhancer(_GraphRunner(events), mobilenet_weights)
    with TestClient(create_app(enh, config=ServerConfig())):
        assert events == [("warmup", (1, 2, 4))], events


def test_without_graphs_nothing_is_warmed_up(tmp_path, mobilenet_weights, monkeypatch):
    """The CPU (a real FaceRunner there, or any restorer that captures no graphs): warming up
    would be warmup_iters + 1 eager passes per bucket before the first frame, for nothing."""
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator
    from stream_gpen.runtime import FaceRunner

    def refuse(self, buckets=None):
        raise AssertionError("warmup() called on the CPU")

    monkeypatch.setattr(FaceRunner, "warmup", refuse)
    enh = Enhancer(random_generator(TINY_CONFIG), device="cpu", detector_weights=mobilenet_weights, batch_size=4,
                   detect_size=96, progress=False)
    assert isinstance(enh.restorer, FaceRunner) and not enh.restorer.cuda_graphs
    summary = run_camera(enh, LAVFI, outputs=[str(tmp_path / "rec.mkv")], frames=2, quiet=True)
    assert summary.frames_out == 2 and "warmup" not in summary.stage_seconds

    events: list = []
    enh = _enhancer(_GraphRunner(events, cuda_graphs=False), mobilenet_weights)
    run_camera(enh, LAVFI, outputs=[str(tmp_path / "rec2.mkv")], frames=2, quiet=True)
    assert events == ["open"], events
