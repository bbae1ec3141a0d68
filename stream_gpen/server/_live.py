"""``WS /v1/live``: camera frames in, enhanced frames out, always the newest frame.

Binary messages both ways carry a 12-byte little-endian header, then the payload::

    uint32 seq      client's frame number (echoed back)
    uint16 width    0 for JPEG; pixel width for raw RGBA
    uint16 height   0 for JPEG; pixel height for raw RGBA
    uint8  kind     0 = JPEG, 1 = raw RGBA (width*height*4 bytes)
    uint8[3]        reserved (0)

Each answer has the kind of its question. Text messages from the client are JSON objects of options,
``{"model": ..., "faces": ..., "strength": ..., "aligned": ...}`` (``aligned``: every frame is
an aligned face crop already, e.g. from a face-tracking front end; any other key is refused); from the
server, JSON events: ``{"type": "ready", ...}``,
``{"type": "frame", "seq", "server_ms"}`` (after each answer), ``{"type": "dropped", "seq"}`` (a
frame replaced by a newer one before it was started), ``{"type": "busy", "seq"}`` (the model queue
was full) and ``{"type": "error", "seq", "detail"}`` (a bad frame, or bad options with ``seq`` null; the
connection stays open).

Latency stays bounded because the server holds at most one waiting frame per connection: a frame
that arrives while another is waiting replaces it (the old one is reported ``dropped``).

Faces are tracked from frame to frame within a connection, as ``camera`` and
``Enhancer.stream_frames(live=True)`` track them (a face already restored is kept down to a score of
0.8, so it does not blink; see :class:`~stream_gpen.server._batcher.LiveFaces`); new options or a new
frame size start the tracking afresh. Aligned frames (``aligned``) are restored whole, as photos.
"""
from __future__ import annotations

import asyncio
import json
import logging
import struct
import time

import numpy as np

from stream_gpen.errors import InvalidInputError, PayloadTooLargeError, QueueFullError, StreamGpenError
from stream_gpen.server._batcher import LiveFaces

log = logging.getLogger(__name__)

HEADER = struct.Struct("<IHHB3x")
KIND_JPEG, KIND_RGBA = 0, 1


def parse_frame(data: bytes, *, max_pixels: int, max_jpeg_bytes: int | None = None) -> tuple[int, int, np.ndarray]:
    """-> (seq, kind, RGB(A) pixels). Raises InvalidInputError / PayloadTooLargeError.
    ``max_jpeg_bytes``: the largest JPEG frame (the image upload limit; the WebSocket's own limit
    is larger, for a raw 4K frame)."""
    from stream_gpen.server._imaging import decode_image

    if len(data) < HEADER.size:
        raise InvalidInputError(f"live frame shorter than its {HEADER.size}-byte header")
    seq, w, h, kind = HEADER.unpack_from(data)
    payload = memoryview(data)[HEADER.size:]
    if kind == KIND_JPEG and max_jpeg_bytes is not None and len(payload) > max_jpeg_bytes:
        raise PayloadTooLargeError(f"JPEG frame of {len(payload)} bytes, over the limit of {max_jpeg_bytes} "
                                   "(--max-upload-mb)")
    if kind == KIND_JPEG:
        return seq, kind, decode_image(bytes(payload), max_pixels=max_pixels).pixels
    if kind == KIND_RGBA:
        if w * h > max_pixels:
            raise PayloadTooLargeError(f"frame is {w}x{h} = {w * h} pixels, over the limit of {max_pixels} (--max-pixels)")
        if w == 0 or h == 0 or len(payload) != w * h * 4:
            raise InvalidInputError(f"raw frame {w}x{h} needs {w * h * 4} bytes, got {len(payload)}")
        return seq, kind, np.frombuffer(payload, dtype=np.uint8).reshape(h, w, 4).copy()
    raise InvalidInputError(f"unknown frame kind {kind}; allowed: 0 (JPEG), 1 (raw RGBA)")


def _shown(value) -> str:
    """A client's value as a message quotes it: a string as 'text' (as the other messages do),
    anything else as the JSON it came as, cut short."""
    return repr(value) if isinstance(value, str) else json.dumps(value)[:40]


def parse_options(text: str, *, aligned: bool) -> dict:
    """A text message's options -> ``{"model", "faces", "strength", "aligned"}`` (``aligned``: the
    value kept when the message does not say). Raises InvalidInputError in the client's terms
    (JSON and its types, not Python's)."""
    try:
        req = json.loads(text)
    except ValueError:
        req = None
    if not isinstance(req, dict):
        raise InvalidInputError('options must be a JSON object such as {"strength": 0.8}, '
                                f"not {text.strip()[:40]!r}")
    unknown = sorted(set(req) - {"model", "faces", "strength", "aligned"})
    if unknown:
        raise InvalidInputError(f"unknown option {unknown[0]!r}; allowed: model, faces, strength, aligned")
    for key in ("model", "faces"):
        if req.get(key) is not None and not isinstance(req[key], str):
            raise InvalidInputError(f"{key} must be a string, not {_shown(req[key])}")
    st = req.get("strength")
    if st == "":
        st = None
    elif st is not None:
        from stream_gpen.commands import _number

        try:
            if isinstance(st, bool) or not isinstance(st, (int, float, str)):
                raise ValueError
            # a string as the query's strength is read (float() also took "0.1_0" and "٠٫٥")
            st = _number(float, st) if isinstance(st, str) else float(st)
        except ValueError:
            raise InvalidInputError(f"strength must be a number in [0, 1], not {_shown(req['strength'])}") from None
    al = req.get("aligned", aligned)
    if not isinstance(al, bool):
        raise InvalidInputError(f"aligned must be true or false, not {_shown(al)}")
    return {"model": req.get("model") or None, "faces": req.get("faces") or None, "strength": st, "aligned": al}


def pack_frame(seq: int, kind: int, pixels: np.ndarray, *, quality: int = 80) -> bytes:
    from stream_gpen.server._imaging import encode_image

    if kind == KIND_RGBA:
        if pixels.ndim == 3 and pixels.shape[2] == 3:
            pixels = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 255, np.uint8)], axis=2)
        h, w = pixels.shape[:2]
        return HEADER.pack(seq, w, h, KIND_RGBA) + np.ascontiguousarray(pixels).tobytes()
    return HEADER.pack(seq, 0, 0, KIND_JPEG) + encode_image(pixels, "jpeg", quality=quality)


async def live_session(ws, *, batcher, metrics, max_pixels: int, timeout_s: float, model: str | None,
                       faces: str | None, strength: float | None = None, aligned: bool | None = None,
                       max_jpeg_bytes: int | None = None) -> None:
    """Serve one accepted WebSocket until the client goes away."""
    from starlette.concurrency import run_in_threadpool
    from starlette.websockets import WebSocketDisconnect

    # (validated before accept by the caller; cheap re-check, which also gives the server's aligned
    # where the query left it out: serve --aligned)
    aligned = batcher.models.resolve(model, faces, strength, aligned)[3]
    options = {"model": model, "faces": faces, "strength": strength, "aligned": aligned}
    tracked = LiveFaces()  # this connection's faces, from frame to frame
    send_lock = asyncio.Lock()
    latest: list[bytes | None] = [None]
    wake = asyncio.Event()
    closed = asyncio.Event()

    async def send_json(obj: dict) -> None:
        async with send_lock:
            await ws.send_text(json.dumps(obj))

    async def reader() -> None:
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                if msg.get("bytes") is not None:
                    old, latest[0] = latest[0], msg["bytes"]
                    if old is not None and len(old) >= HEADER.size:
                        metrics.live("dropped")
                        await send_json({"type": "dropped", "seq": HEADER.unpack_from(old)[0]})
                    elif old is not None:  # (not a frame: said as the worker says it, not dropped unseen)
                        metrics.live("error")
                        await send_json({"type": "error", "seq": None,
                                         "detail": f"live frame shorter than its {HEADER.size}-byte header"})
                    wake.set()
                elif msg.get("text") is not None:
                    try:
                        new = parse_options(msg["text"], aligned=options["aligned"])
                        batcher.models.resolve(new["model"], new["faces"], new["strength"], new["aligned"])
                        options.update(new)
                        await send_json({"type": "options", **options})
                    except InvalidInputError as e:
                        await send_json({"type": "error", "seq": None, "detail": f"bad options: {e}"})
        except WebSocketDisconnect:
            return
        finally:
            closed.set()
            wake.set()

    async def worker() -> None:
        while True:
            await wake.wait()
            wake.clear()
            if closed.is_set():
                return
            data, latest[0] = latest[0], None
            if data is None:
                continue
            t0 = time.perf_counter()
            seq = HEADER.unpack_from(data)[0] if len(data) >= HEADER.size else None
            try:
                seq, kind, pixels = await run_in_threadpool(parse_frame, data, max_pixels=max_pixels,
                                                            max_jpeg_bytes=max_jpeg_bytes)
                fut = batcher.submit(pixels, model=options["model"], faces=options["faces"],
                                     strength=options["strength"], aligned=options["aligned"],
                                     live=None if options["aligned"] else tracked)
                try:
                    out = await asyncio.wait_for(asyncio.wrap_future(fut), timeout_s)
                except asyncio.TimeoutError:
                    fut.cancel()
                    raise QueueFullError("frame not processed in time") from None
                payload = await run_in_threadpool(pack_frame, seq, kind, out)
            except QueueFullError:
                metrics.live("busy")
                await send_json({"type": "busy", "seq": seq})
                continue
            except StreamGpenError as e:
                metrics.live("error")
                await send_json({"type": "error", "seq": seq, "detail": str(e)})
                continue
            except Exception as e:  # the model failed on this frame (e.g. out of memory): say so, go on
                log.warning("live frame failed: %s: %s", type(e).__name__, e)
                metrics.live("error")
                await send_json({"type": "error", "seq": seq, "detail": f"{type(e).__name__}: {e}"})
                continue
            metrics.live("processed", "rgba" if kind == KIND_RGBA else "jpeg")
            async with send_lock:
                await ws.send_bytes(payload)
            await send_json({"type": "frame", "seq": seq, "server_ms": round((time.perf_counter() - t0) * 1e3, 2)})

    await send_json({"type": "ready", "models": batcher.models.names, **options})
    read_task = asyncio.create_task(reader())
    work_task = asyncio.create_task(worker())
    try:
        done, _ = await asyncio.wait({read_task, work_task}, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t.exception() is not None and not isinstance(t.exception(), WebSocketDisconnect):
                log.warning("live session ended: %r", t.exception())
    finally:
        closed.set()
        wake.set()
        for t in (read_task, work_task):
            t.cancel()
        await asyncio.gather(read_task, work_task, return_exceptions=True)
