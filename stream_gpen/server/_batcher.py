"""Dynamic batching: concurrent image requests share one ``enhance_images`` call.

A request waits at most ``wait_s`` (counted from when *it* was queued) for others to join it, up
to ``max_batch`` images; under load the queue is already full when the worker comes back, so
batches form without any added wait. All faces of a batch go through the model together.

Only images of the same shape (and model and options) share a call: ``Enhancer.enhance_images``
stacks its frames for the warp. API clients that send fixed-size images (and aligned live
frames) batch fully; a mix of photo sizes is split into per-shape calls of one wake-up.

A live connection's frames carry its :class:`LiveFaces` instead: they go through the same queue,
scheduler and metrics, but each through the connection's own face tracker (video's rule, not a
photo's), so they are not batched with other requests.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from stream_gpen.errors import QueueFullError, ShuttingDownError

log = logging.getLogger(__name__)


class LiveFaces:
    """One live connection's faces, tracked from frame to frame as ``camera`` and
    ``Enhancer.stream_frames(live=True)`` track them: a face already restored is kept down to a
    score of 0.8 (a new one needs ``min_score``) so it does not blink, and the detector runs every
    ``detect_every`` frames with optical flow between. The face stage is built from the
    connection's model view and rebuilt when its options or the frame size change.

    Used by the batcher's worker only, one frame at a time (a connection has at most one in flight).
    """

    def __init__(self) -> None:
        self._stage = None
        self._built: tuple | None = None  # (options key, frame shape) the stage was built for
        self._index = 0

    def enhance(self, view, key: tuple, pixels: np.ndarray) -> np.ndarray:
        """The next frame of the connection, restored (a new array; ``pixels`` is left untouched)."""
        if not hasattr(view, "_picture_stage"):  # a model without a face stage: each frame as a photo
            return view.enhance_images([pixels])[0]
        try:
            if self._built != (key, pixels.shape):
                self._stage = view._picture_stage(pixels.shape[1], pixels.shape[0])
                self._built, self._index = (key, pixels.shape), 0
            self._index += 1
            return view._restore_tracked(self._stage, self._index - 1, pixels)
        except BaseException:
            self._built = None  # a tracker left half-updated: start afresh on the next frame
            raise


@dataclass
class _Request:
    pixels: np.ndarray
    key: tuple[str, str, float, bool]  # (model, faces, strength, aligned)
    live: LiveFaces | None = None  # a live connection's tracker: the frame goes through it, alone
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)


class ImageBatcher:
    """One worker thread feeding the models; ``submit`` never blocks (full queue -> QueueFullError).

    Use as a context manager (or ``start``/``close``): closing fails every still-queued request
    with :class:`ShuttingDownError` instead of leaving its caller waiting; ``stop_accepting``
    (shutdown has begun) does that at once and refuses new ones, while the batch being run
    finishes. A caller that gives up cancels its future: a request not yet started then leaves the
    queue (its place is free for the next), one running is finished and its answer dropped.
    """

    def __init__(self, models, schedulers: dict, metrics, *, max_batch: int, wait_s: float, max_queue: int) -> None:
        self.models = models
        self.schedulers = schedulers
        self.metrics = metrics
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.max_queue = max_queue
        self._queue: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self.batches = 0

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "ImageBatcher":
        self._thread = threading.Thread(target=self._run, name="stream-gpen-batcher", daemon=True)
        self._thread.start()
        return self

    def stop_accepting(self) -> None:
        """Shutdown has begun (a signal; open requests still drain): refuse new requests and fail
        the queued ones with :class:`ShuttingDownError` now (HTTP 503 with Retry-After), rather
        than run them while the graceful shutdown's time runs out and then cut their connections
        without an answer. The batch being run finishes and is answered.

        Takes the queue's lock: call it from the event loop (``serve`` does, from the server's
        ``shutdown``), not from inside a signal handler."""
        with self._cond:
            self._closing = True
            pending = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        self._fail(pending)

    @property
    def closing(self) -> bool:
        """Shutdown has begun (see :meth:`stop_accepting`)."""
        return self._closing

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._stop = self._closing = True
            pending = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        self._fail(pending)
        if self._thread is not None:
            self._thread.join(timeout)

    @staticmethod
    def _fail(pending: list[_Request]) -> None:
        for r in pending:
            if r.future.set_running_or_notify_cancel():  # (False: its caller has given up already)
                r.future.set_exception(ShuttingDownError())

    def __enter__(self) -> "ImageBatcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- API ---------------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self._queue)

    def submit(self, pixels: np.ndarray, *, model: str | None = None, faces: str | None = None,
               strength: float | None = None, aligned: bool | None = None, live: LiveFaces | None = None) -> Future:
        """Queue one image; the future gets the enhanced array (or the exception). Only requests
        with the same options share a model call. ``live``: the image is the next frame of that
        connection, whose faces are tracked (see :class:`LiveFaces`)."""
        key = self.models.resolve(model, faces, strength, aligned)
        req = _Request(pixels, key, live)
        with self._cond:
            if self._closing:
                raise ShuttingDownError()
            if len(self._queue) >= self.max_queue:
                raise QueueFullError(
                    f"image queue full ({self.max_queue} waiting); retry later",
                    retry_after_s=1, hint="raise --max-queue or add a device")
            self._queue.append(req)
            self._cond.notify_all()
        # A caller that gives up (its client hung up, its timeout) cancels the future: it leaves the
        # queue then, not when the worker comes to it (16 abandoned requests held their places,
        # --max-queue refused the next client with 429, and each was still run: 12.7 s for the
        # next one instead of 1.0 s).
        # (the callback holds the future, not the request: no cycle keeps the pixels alive)
        req.future.add_done_callback(self._withdraw)
        return req.future

    def _withdraw(self, future: Future) -> None:
        if not future.cancelled():
            return
        with self._cond:  # (not found: the worker took it already, and skips it)
            for i, r in enumerate(self._queue):
                if r.future is future:
                    del self._queue[i]
                    break

    # --- worker ------------------------------------------------------------------------------------
    def _take_batch(self) -> list[_Request] | None:
        with self._cond:
            while not self._queue and not self._stop:
                self._cond.wait()
            if self._stop:
                return None
            deadline = self._queue[0].queued_at + self.wait_s
            while len(self._queue) < self.max_batch and not self._stop:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            n = min(self.max_batch, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            # A caller that timed out cancelled its future: skip its work.
            batch = [r for r in batch if r.future.set_running_or_notify_cancel()]
            # Enhancer.enhance_images needs one image shape per call (its warp stacks the frames),
            # so requests batch with others of the same model, options and shape; a live frame goes
            # through its connection's tracker.
            groups: dict[tuple, list[_Request]] = {}
            for r in batch:
                groups.setdefault((r.key, r.pixels.shape, id(r.live)), []).append(r)
            for (key, _shape, _live), reqs in groups.items():
                try:
                    self._run_group(key, reqs)
                except BaseException as exc:  # never leave a caller waiting, even on Ctrl-C
                    for r in reqs:
                        if not r.future.done():
                            r.future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise

    def _run_group(self, key: tuple[str, str, float, bool], reqs: list[_Request]) -> None:
        view = self.models.view(*key)
        counter = view.restorer
        sched = self.schedulers[str(view.device)]
        try:
            with sched.short():
                before = counter.faces
                if reqs[0].live is not None:
                    outs = [r.live.enhance(view, key, r.pixels) for r in reqs]
                else:
                    outs = view.enhance_images([r.pixels for r in reqs])
                faces = counter.faces - before
        except Exception as exc:
            if len(reqs) == 1:
                raise
            # One bad input must not fail the requests batched with it: retry them one by one.
            log.warning("batch of %d failed (%s: %s); retrying one by one", len(reqs), type(exc).__name__, exc)
            for r in reqs:
                try:
                    self._run_group(key, [r])
                except Exception as one:
                    r.future.set_exception(one)
            return
        self.batches += 1
        self.metrics.batch(len(reqs), faces)
        for r, out in zip(reqs, outs):
            r.future.set_result(out)
