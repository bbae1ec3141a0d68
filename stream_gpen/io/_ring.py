"""Frames and the bounded frame ring that hands them from the decode thread to the caller.

Slot life cycle (the one rule to remember)::

    FREE --decoder acquires--> FILLING --published--> READY --caller takes (next(src))--> HELD
      ^                                                  |                                  |
      |  live mode: a stale frame dropped (no free slot, |                                  |
      |  or the caller took a newer one) ----------------+                                  |
      +---------------------- frame.release() / sink.write(frame) --------------------------+

A slot is recycled **only** when the frame that holds it is released, either explicitly with
``frame.release()`` (or ``with frame:``) or by ``sink.write(frame)`` once the sink has encoded it.
After release, ``frame.image`` raises instead of silently showing a newer picture. If the caller
holds every slot and asks for another frame, the ring raises :class:`RingExhaustedError` instead of
deadlocking (raise ``ring_size`` if the pipeline really needs more frames in flight).

Live mode (the producer acquires with ``drop_stale``: a camera, a stream, a file read as one): the
caller always gets the newest READY frame, and the older READY ones are dropped then (counted in
``dropped``). A live consumer that falls behind works on what the camera shows now, not on a queue
of frames from seconds ago; a file (not live) gives every frame, in order.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import torch

from stream_gpen.errors import RingExhaustedError

log = logging.getLogger(__name__)

_FREE, _FILLING, _READY, _HELD = range(4)
_POLL_S = 0.1  # waits wake this often to notice stop/close/errors: nothing blocks forever


class FrameReleasedError(RuntimeError):
    """Raised when a released frame's pixels are accessed (the slot may hold another frame)."""


class _RingClosed(Exception):
    """Internal: the ring was closed while the producer waited for a slot."""


@dataclass(eq=False)
class Frame:
    """One decoded picture plus its timing.

    ``image`` is an RGB ``torch.uint8`` tensor ``[H, W, 3]`` on the source's device. For ring-backed
    frames it is a view of a ring slot: modify it in place (paste-back) and hand the frame to
    ``sink.write``, which encodes from the same slot and then releases it.

    ``hi``: for a source with more than 8 bits per component (10/12-bit video, HDR), the same
    picture as an RGB ``torch.uint16`` tensor ``[H, W, 3]`` on the full 16-bit scale (rgb48:
    8-bit value ``v`` is ``v * 257``), on the same device; ``image`` is derived from it
    (``round(hi / 257)``), so both agree. Detection and GPEN read ``image``; faces are pasted into
    both, and sinks encode from ``hi`` so the picture outside the faces keeps its precision.
    ``None`` for 8-bit sources (no extra memory or time). Ring-backed like ``image``.

    ``pts`` is in ``time_base`` units, exactly as the decoder gave it (``None`` when the input has
    no timestamps); ``time`` is seconds (from pts, else ``index / frame_rate``).

    ``duration``: seconds until the next frame (see the field), ``None`` when unknown.

    ``published``: ``time.perf_counter()`` when the decoder handed the frame to the ring (``None``
    for frames that never went through one): a live frame's latency counts from there, including
    the time it waited in the ring for the pipeline to take it.
    """

    index: int
    pts: int | None
    time_base: Fraction
    time: float
    _image: torch.Tensor | None = field(repr=False)
    _ring: "FrameRing | None" = field(default=None, repr=False)
    slot: int | None = None
    rel_path: str | None = None  # folder/image sources: path relative to the input root
    alpha: torch.Tensor | None = field(default=None, repr=False)  # uint8 [H, W], kept aside
    corrupt: bool = False  # decoder flagged the picture as damaged (concealed), still usable
    grey: bool = False  # image sources: the file was greyscale (image sinks write it back as grey)
    # image sources: what the file carries besides pixels (ICC profile, EXIF, DPI, PNG chunks,
    # JPEG subsampling...; see io._image.read_image_info), written back by image sinks
    image_info: dict | None = field(default=None, repr=False)
    _released: bool = field(default=False, repr=False)
    _hi: torch.Tensor | None = field(default=None, repr=False)  # see ``hi``
    published: float | None = field(default=None, repr=False)
    #: image sources: the faces restored in this picture, as the run counted them (0: the sink
    #: copies the input file as it is, see ImageSink); None: not counted
    faces: int | None = field(default=None, repr=False)
    # seconds the picture stays on screen (until the next frame; the last frame of a window: until
    # the window's end), None when the input does not say: a sink gives the last frame this length
    # instead of repeating the interval before it (a still held at the end would vanish)
    duration: float | None = None
    #: the decoded YUV picture this frame was converted from (an ``av.VideoFrame``), kept where a
    #: sink may write its untouched parts as they were (video sources decoding planar YUV on the
    #: CPU, the picture neither turned nor resized): RGB is clipped to its range, so super-white
    #: and super-black codes outside the faces were lost in the round trip. None elsewhere.
    yuv: Any = field(default=None, repr=False)
    #: the frame's areas the faces were pasted into, ``[(x0, y0, x1, y1), ...]`` (pixels outside
    #: them are the decoded ones, exactly); None: not known (a sink then encodes the whole picture)
    pasted: list | None = field(default=None, repr=False)
    #: ``[(box, rgb), ...]``: the picture in each of :attr:`pasted`'s areas (widened to whole
    #: chroma blocks) as decoded, copied before the faces went in (``hi``'s where the frame has
    #: one; on the frame's device), so a sink adding the faces' changes to :attr:`yuv` need not
    #: decode those areas again; freed once the frame is encoded. None: not kept
    unpasted: list | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.time_base, Fraction):
            raise TypeError(f"time_base must be a Fraction, got {type(self.time_base).__name__}")
        img = self._image
        if img is not None and (img.dtype != torch.uint8 or img.ndim != 3 or img.shape[2] != 3):
            raise ValueError(f"frame image must be uint8 [H, W, 3], got {img.dtype} {tuple(img.shape)}")
        if self.alpha is not None and tuple(self.alpha.shape) != tuple(img.shape[:2]):
            raise ValueError(f"alpha must be [H, W] = {tuple(img.shape[:2])}, got {tuple(self.alpha.shape)}")
        hi = self._hi
        if hi is not None:
            if hi.dtype != torch.uint16 or img is None or tuple(hi.shape) != tuple(img.shape):
                raise ValueError(f"frame hi must be uint16 [H, W, 3] like its image "
                                 f"{tuple(img.shape) if img is not None else None}, got {hi.dtype} {tuple(hi.shape)}")
            if hi.device != img.device:
                raise ValueError(f"frame hi is on {hi.device}, its image on {img.device}: they must share a device")

    @classmethod
    def from_tensor(cls, image: torch.Tensor | None, *, index: int = 0, pts: int | None = None,
                    time_base: Fraction = Fraction(1, 25), alpha: torch.Tensor | None = None,
                    hi: torch.Tensor | None = None) -> "Frame":
        """A frame that owns its tensor (no ring): for tests and callers that make their own pictures.

        ``hi`` (optional): the same picture as ``uint16`` rgb48 (see the class docstring); pass
        ``image=None`` to derive the 8-bit picture from it."""
        if image is None:
            if hi is None:
                raise ValueError("Frame.from_tensor needs an image or a hi tensor")
            from stream_gpen.io._convert import rgb8_from_rgb16

            image = rgb8_from_rgb16(hi)
        t = float(pts * time_base) if pts is not None else float(index * time_base)
        return cls(index=index, pts=pts if pts is not None else index, time_base=time_base, time=t,
                   _image=image, alpha=alpha, _hi=hi)

    @property
    def image(self) -> torch.Tensor:
        if self._released:
            raise FrameReleasedError(
                f"frame {self.index} was released; its ring slot may now hold another frame. "
                "Use the image before sink.write(frame)/frame.release(), or clone() it."
            )
        assert self._image is not None
        return self._image

    @property
    def hi(self) -> torch.Tensor | None:
        """The >8-bit copy of the picture (``uint16 [H, W, 3]``), or ``None`` for 8-bit sources."""
        if self._released:
            raise FrameReleasedError(f"frame {self.index} was released; its ring slot may now hold another frame")
        return self._hi

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        """Give the slot back to the ring (idempotent). The image is unusable afterwards."""
        if self._released:
            return
        self._released = True
        if self._ring is not None and self.slot is not None:
            self._ring._release(self.slot)
        self._image = None
        self._hi = None
        self.alpha = None
        self.yuv = None
        self.unpasted = None

    def __enter__(self) -> "Frame":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class FrameRing:
    """``size`` preallocated ``[H, W, 3]`` uint8 slots shared by one producer and any consumers.

    Memory is fixed at construction: ``size * H * W * 3`` bytes on ``device`` (plus one pinned host
    staging buffer when the device is CUDA, so uploads are DMA copies). More slots let decoding run
    further ahead of a bursty consumer; fewer slots cost less memory and latency.

    ``high_bit_depth``: each slot also gets a ``uint16`` rgb48 twin in ``hi_slots`` (the frames'
    ``hi``, for >8-bit sources): three times the memory (``size * H * W * 9`` bytes in all), still
    fixed, released with the slot.
    """

    def __init__(self, size: int, height: int, width: int, *, device: torch.device | str = "cpu",
                 high_bit_depth: bool = False) -> None:
        if size < 2:
            raise ValueError(f"ring size must be >= 2 (one slot decoding, one in use), got {size}")
        if height <= 0 or width <= 0:
            raise ValueError(f"ring frame size must be positive, got {width}x{height}")
        self.size = size
        self.height = height
        self.width = width
        self.device = torch.device(device)
        self.slots = torch.empty((size, height, width, 3), dtype=torch.uint8, device=self.device)
        self.staging: torch.Tensor | None = None
        self.hi_slots: torch.Tensor | None = None
        self.hi_staging: torch.Tensor | None = None
        if high_bit_depth:
            self.hi_slots = torch.empty((size, height, width, 3), dtype=torch.uint16, device=self.device)
        self._copy_stream = None
        if self.device.type == "cuda":
            self.staging = torch.empty((height, width, 3), dtype=torch.uint8, pin_memory=True)
            if high_bit_depth:
                self.hi_staging = torch.empty((height, width, 3), dtype=torch.uint16, pin_memory=True)
            self._copy_stream = torch.cuda.Stream(device=self.device)
        self._cond = threading.Condition()
        self._state = [_FREE] * size
        self._free = collections.deque(range(size))
        self._ready: collections.deque[Frame] = collections.deque()
        self._finished = False
        self._closed = False
        self._error: BaseException | None = None
        self.dropped = 0  # live mode: stale frames dropped so the newest is processed next
        self.live = False  # set by the first ``acquire(drop_stale=True)``: see the module docstring

    # --- producer side ------------------------------------------------------------------
    def acquire(self, *, drop_stale: bool = False) -> int | None:
        """Block until a slot is free; return its index.

        With ``drop_stale`` (live sources) never block on a slow consumer: reclaim the oldest
        READY frame (counted in ``dropped``) or return ``None`` so the caller drops the new one.
        It also puts the ring in live mode: :meth:`get` gives the newest frame.
        """
        with self._cond:
            if drop_stale:
                self.live = True  # (before this slot's frame can be READY: get() sees it first)
            while True:
                if self._closed:
                    raise _RingClosed
                if self._free:
                    slot = self._free.popleft()
                    self._state[slot] = _FILLING
                    return slot
                if drop_stale:
                    self.dropped += 1
                    if self._ready:
                        stale = self._ready.popleft()
                        stale._released = True  # nobody saw it; make any stray reference fail loudly
                        slot = stale.slot
                        assert slot is not None
                        self._state[slot] = _FILLING
                        return slot
                    return None
                self._cond.wait(_POLL_S)

    def _upload(self, dst: torch.Tensor, src: torch.Tensor, staging: torch.Tensor | None, then=None) -> None:
        """Copy ``src`` into the slot tensor ``dst`` (through the pinned ``staging`` buffer for a
        host tensor into a CUDA ring), run ``then()`` on the same stream, and finish before
        returning: the consumer may read on another stream."""
        if tuple(src.shape) != tuple(dst.shape):
            raise ValueError(
                f"frame size changed mid-stream: ring is {self.width}x{self.height}, "
                f"frame is {src.shape[1]}x{src.shape[0]}"
            )
        if self.device.type == "cuda" and src.device.type == "cpu":
            assert staging is not None and self._copy_stream is not None
            if src.data_ptr() != staging.data_ptr():  # (else written there already: see host_slot)
                staging.copy_(src)
            with torch.cuda.stream(self._copy_stream):
                dst.copy_(staging, non_blocking=True)
                if then is not None:
                    then()
            self._copy_stream.synchronize()
        else:
            if src.data_ptr() != dst.data_ptr():  # (else written there already: see host_slot)
                dst.copy_(src)
            if then is not None:
                then()

    def host_slot(self, slot: int) -> torch.Tensor:
        """Where a host picture for ``slot`` may be made in place, then handed to
        :meth:`write_slot` with no copy: the slot itself on the CPU, the pinned staging buffer
        (uploaded by write_slot) for a CUDA ring. A decoder converting into it saves a full-frame
        copy per frame (see :func:`av_to_rgb_numpy`'s ``out``)."""
        return self.staging if self.staging is not None else self.slots[slot]

    def hi_host_slot(self, slot: int) -> torch.Tensor:
        """:meth:`host_slot` for the rgb48 twin: the hi slot itself on the CPU, the pinned hi
        staging buffer for a CUDA ring (handed to :meth:`write_hi_slot` with no copy)."""
        if self.hi_slots is None:
            raise ValueError("this ring has no high-bit-depth slots (FrameRing(high_bit_depth=True))")
        return self.hi_staging if self.hi_staging is not None else self.hi_slots[slot]

    def write_slot(self, slot: int, rgb: "torch.Tensor") -> torch.Tensor:
        """Copy an RGB host (or device) tensor ``[H, W, 3]`` into ``slot``; return the slot view."""
        self._upload(self.slots[slot], rgb, self.staging)
        return self.slots[slot]

    def write_hi_slot(self, slot: int, rgb16: "torch.Tensor") -> tuple[torch.Tensor, torch.Tensor]:
        """Copy an rgb48 ``uint16 [H, W, 3]`` host (or device) tensor into ``slot``'s hi twin and
        derive the slot's 8-bit picture from it on the device; return ``(image, hi)`` views."""
        from stream_gpen.io._convert import rgb8_from_rgb16

        if self.hi_slots is None:
            raise ValueError("this ring has no high-bit-depth slots (FrameRing(high_bit_depth=True))")
        dst = self.hi_slots[slot]
        self._upload(dst, rgb16, self.hi_staging, then=lambda: rgb8_from_rgb16(dst, out=self.slots[slot]))
        return self.slots[slot], dst

    def publish(self, frame: Frame) -> None:
        with self._cond:
            assert frame.slot is not None
            frame.published = time.perf_counter()
            self._state[frame.slot] = _READY
            self._ready.append(frame)
            self._cond.notify_all()

    def unfill(self, slot: int) -> None:
        """Return a slot the producer acquired but did not publish (e.g. a failed conversion)."""
        with self._cond:
            self._state[slot] = _FREE
            self._free.append(slot)
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = error
            self._cond.notify_all()

    # --- consumer side ------------------------------------------------------------------
    def get(self) -> Frame:
        """Next READY frame (now HELD by the caller). Raises StopIteration at the end of input,
        the producer's exception if it failed, RingExhaustedError if the caller holds every slot.

        Live mode: the newest READY frame; the older ones are dropped (freed, counted in
        ``dropped``). Taking them oldest first, a consumer that fell behind kept working through a
        full ring of frames seconds old (3-4x its processing time late, in bursts of consecutive
        frames between freezes)."""
        with self._cond:
            while True:
                if self._ready:
                    frame = self._ready.pop() if self.live else self._ready.popleft()
                    while self.live and self._ready:  # stale: nobody saw them
                        stale = self._ready.popleft()
                        stale._released = True  # a stray reference fails loudly
                        self._state[stale.slot] = _FREE
                        self._free.append(stale.slot)
                        self.dropped += 1
                        self._cond.notify_all()
                    assert frame.slot is not None
                    self._state[frame.slot] = _HELD
                    return frame
                if self._error is not None:
                    raise self._error
                if self._finished or self._closed:
                    raise StopIteration
                if all(s == _HELD for s in self._state):
                    raise RingExhaustedError(
                        f"all {self.size} frame-ring slots are held by frames that were never released; "
                        "call sink.write(frame) or frame.release() for each frame you are done with, "
                        "or open the source with a larger ring_size"
                    )
                self._cond.wait(_POLL_S)

    def wait_ready(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for :meth:`get` to have an answer (a READY frame, the
        end of input, an error); ``False`` if it has none yet. A live consumer waits this way so a
        slow or stalled source cannot keep it from acting on time (flushing a batch whose latency
        budget ran out, noticing a stop). In live mode the producer may reclaim the READY frame
        before :meth:`get` takes it; ``get`` then waits for the frame being decoded into its slot."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (self._ready or self._error is not None or self._finished or self._closed
                       or all(s == _HELD for s in self._state)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _release(self, slot: int) -> None:
        with self._cond:
            if self._state[slot] == _HELD:
                self._state[slot] = _FREE
                self._free.append(slot)
                self._cond.notify_all()

    def close(self) -> None:
        """Wake and stop the producer; frames still READY are discarded."""
        with self._cond:
            self._closed = True
            while self._ready:
                f = self._ready.popleft()
                f._released = True
            self._cond.notify_all()

    @property
    def held(self) -> int:
        with self._cond:
            return sum(s == _HELD for s in self._state)
