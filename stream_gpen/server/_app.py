"""The FastAPI application: routes, limits, auth, error mapping, lifecycle."""
# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime, and
# Request/WebSocket are imported inside create_app (no FastAPI import at module import).

import asyncio
import base64
import functools
import hmac
import io
import logging
import os
import shutil
import time
from contextlib import asynccontextmanager, contextmanager
from importlib import resources
from typing import Annotated, Literal, Mapping

from stream_gpen.errors import (
    InvalidInputError,
    JobNotFoundError,
    PayloadTooLargeError,
    QueueFullError,
    ShuttingDownError,
    StreamGpenError,
    WeightsError,
)
from stream_gpen.server._config import ServerConfig
from stream_gpen.server._imaging import MEDIA_TYPES, UnsupportedImageError, UnsupportedMediaTypeError, curl_hint

log = logging.getLogger(__name__)

IMAGE_ROUTE = "/v1/images:enhance"
VIDEO_ROUTE = "/v1/videos"
_IMAGE_TYPES = ("image/", "application/octet-stream")
# (an animated GIF is a video: image/gif is what clients label one with)
_VIDEO_TYPES = ("video/", "image/gif", "application/octet-stream")
#: registered types of containers /v1/videos reads that are not video/*: MP4 (RFC 4337), Ogg (RFC
#: 5334), MXF (RFC 4539), ASF, RealMedia, Flash; with those mimetypes gives (see _video_media_types)
_VIDEO_CONTAINER_TYPES = ("application/mp4", "application/ogg", "application/mxf", "application/vnd.ms-asf",
                          "application/vnd.rn-realmedia", "application/vnd.rn-realmedia-vbr",
                          "application/x-shockwave-flash", "application/vnd.adobe.flash.movie")


@functools.lru_cache(maxsize=1)
def _video_media_types() -> frozenset[str]:
    """The exact content types /v1/videos takes besides :data:`_VIDEO_TYPES`' prefixes: the
    registered container types above, and whatever Python's ``mimetypes`` (its own table and the
    system's, which clients such as ``requests`` label files with) gives the video extensions the
    tool reads (``io._image._VIDEO_EXTS``, a folder run's), so the list follows them: ``.3gp`` is
    ``audio/3gpp``, ``.asf`` ``application/vnd.ms-asf``, ``.mxf`` ``application/mxf``. Types of
    pictures (other than GIF), text, models and XML are left out (``.ts`` is Qt's translation
    file, ``.mod`` an XML DTD, ``.mts`` a 3D model to some tables)."""
    import mimetypes

    from stream_gpen.io._image import _VIDEO_EXTS

    found = set(_VIDEO_CONTAINER_TYPES)
    for table in (mimetypes.MimeTypes(), mimetypes):  # (built in; the system's too)
        for ext in _VIDEO_EXTS:
            t = (table.guess_type("x" + ext, strict=False)[0] or "").lower()
            major, _, sub = t.partition("/")
            if major in ("video", "audio", "application") and not any(w in sub for w in ("xml", "json", "text")) \
                    or t == "image/gif":
                found.add(t)
    return frozenset(found)
_CHUNK = 1 << 16

#: the subprotocol /v1/live answers with when it is offered. Browsers cannot give a WebSocket
#: headers, and a key in its URL (?key=) lands in proxies' access logs: the page offers this and
#: "key.<base64url of the key>", read as the key and never echoed (a browser fails a connection
#: whose answer names none of the subprotocols it offered).
LIVE_PROTOCOL = "stream-gpen"
_KEY_PROTOCOL = "key."
# nginx's code for "client closed request": what /metrics counts an upload the client abandoned, and
# an image request whose client hung up before its answer was ready, as (not 500 or 200; no answer
# reaches that client anyway).
CLIENT_CLOSED = 499


class UnknownOptionError(InvalidInputError):
    """A query parameter the route does not take (422; FastAPI drops those silently)."""


class FormOptionError(UnknownOptionError):
    """A multipart form field named as one of the route's options: those are read from the query
    only, and one ignored (``strength=0`` restored at full strength) was a silent wrong answer (422)."""


class UploadTimeoutError(StreamGpenError, TimeoutError):
    """An upload whose client sent nothing for ``--request-timeout`` seconds, an image body not
    received whole within that time, or a video upload slower than ``--min-upload-rate`` past it
    (answered 408; the name is the ``error`` of that answer's body)."""

    exit_code = 1


class PreconditionFailedError(StreamGpenError):
    """A result download whose If-Match (or, without one, If-Unmodified-Since) does not hold:
    the result is not the one the client named (answered 412; RFC 9110 13.1.1, 13.1.4)."""


#: parts a multipart upload may have besides its file (form fields a client adds: a name, a token)
_MAX_PARTS = 9
#: what a multipart body may hold besides its file, over the route's limit (which is the file's: a
#: photo just under --max-upload-mb sent with ``curl -F file=@`` was refused 413 for the form's own
#: boundaries and headers, some 200 bytes): its part headers and those few fields
_FORM_HEADROOM = 64 * 1024


def _is_form(headers: Mapping[bytes, bytes]) -> bool:
    return headers.get(b"content-type", b"").split(b";")[0].strip().lower() == b"multipart/form-data"


#: ``stream-gpen enhance`` options no server route takes: a form field so named was read past, and
#: the client believed it applied (``audio=none`` kept the sound). Words an app's own form may use
#: for something else (device, quality, compare, detector) are left out.
_CLI_ONLY = ("audio", "batch_size", "bit_depth", "check_landmarks", "codec", "copy_if_no_faces", "crf",
             "deinterlace", "detect_every", "detect_size", "detector_weights", "encoder", "image_format", "mask",
             "max_faces", "min_face", "min_score", "parser_weights", "precision", "preset", "smooth_lag")
#: a near miss (``strenght``) is judged only for names this long, and this close: short words
#: (``csrf``, ``code``, ``mode``, ``face``, ``state``) are an app's own fields
_NEAR_MIN_LEN, _NEAR_CUTOFF = 6, 0.85


def _option_like(name: str, options: tuple[str, ...]) -> str | None:
    """Why a multipart form field ``name`` (not an option of the route) is refused: it names an
    ``enhance`` option no route takes, or it is a near miss of one the route takes
    (``strenght=0`` was read past, and the photo restored at full strength); None for any other
    field (a client's own: a name, a token)."""
    import difflib

    key = name.strip().lower().replace("-", "_")
    takes = ", ".join(options) if options else "none"
    if key in options and key != name:
        return f"form field {name!r}: options go in the query, as ?{key}=... (this route takes {takes})"
    if key in _CLI_ONLY:
        return (f"form field {name!r} is an option of `stream-gpen enhance` that this route does not take "
                f"(it takes {takes}, in the query); nothing was done with it")
    names = [o for o in list(options) + list(_CLI_ONLY) if len(o) >= _NEAR_MIN_LEN]
    close = difflib.get_close_matches(key, names, n=1, cutoff=_NEAR_CUTOFF) if len(key) >= _NEAR_MIN_LEN else []
    if close:
        where = f"?{close[0]}=... in the query" if close[0] in options else f"{close[0]!r}, which this route does not take"
        return f"form field {name!r} looks like the option {close[0]!r} ({where}); nothing was done with it"
    return None


async def _multipart_file(request, sink, options: tuple[str, ...] = (), limit: int | None = None) -> None:
    """Write the part named ``file`` of a ``multipart/form-data`` request into ``sink`` as it
    arrives. (Starlette's ``request.form()`` first spools each file into the system's temporary
    folder, outside the server's ``--work-dir``: a big video upload filled a small ``/tmp`` and was
    then copied once more.) Other parts are read past; a second ``file`` part, or one named as
    an ``options`` query parameter, is an error; a file of more than ``limit`` bytes is refused
    (the body limit allows :data:`_FORM_HEADROOM` more for the form around it)."""
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInputError("multipart body without a boundary in its Content-Type")
    st = {"field": b"", "value": b"", "headers": {}, "into": None, "found": 0, "parts": 0, "ended": False, "size": 0}

    def part_begin():
        st["headers"], st["into"] = {}, None
        st["parts"] += 1
        if st["parts"] > _MAX_PARTS:
            raise InvalidInputError(f"multipart body with more than {_MAX_PARTS} parts")

    def header_field(data, start, end):
        st["field"] += data[start:end]

    def header_value(data, start, end):
        st["value"] += data[start:end]

    def header_end():
        st["headers"][st["field"].lower()] = st["value"]
        st["field"], st["value"] = b"", b""

    def headers_finished():
        _, opts = parse_options_header(st["headers"].get(b"content-disposition", b""))
        name = opts.get(b"name", b"").decode("latin-1")
        if name in options:
            raise FormOptionError(f"form field {name!r} is not read: send {name} as a query parameter "
                                  f"(?{name}=...), and only the image or video as the form's 'file' part")
        why = _option_like(name, options) if name != "file" else None
        if why:
            raise FormOptionError(why)
        if opts.get(b"name") == b"file":
            st["found"] += 1
            if st["found"] > 1:
                raise InvalidInputError("multipart body with more than one part named 'file'")
            st["into"] = sink

    def part_data(data, start, end):
        if st["into"] is not None:
            st["size"] += end - start
            if limit is not None and st["size"] > limit:
                raise PayloadTooLargeError(f"the form's file is over the limit of {limit} bytes")
            st["into"].write(data[start:end])

    try:  # (the parser refuses some boundaries itself: one over 256 bytes was a 500 and a traceback)
        parser = MultipartParser(boundary, {
            "on_part_begin": part_begin, "on_header_field": header_field, "on_header_value": header_value,
            "on_header_end": header_end, "on_headers_finished": headers_finished, "on_part_data": part_data,
            "on_end": lambda: st.update(ended=True)})
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise InvalidInputError(f"malformed multipart body: {exc}") from None
    if st["found"] and not st["ended"]:
        raise InvalidInputError("multipart body ends before its closing boundary: the upload was cut short")
    if not st["found"]:
        raise InvalidInputError("multipart body needs a file part named 'file'")


class _ImageSlots:
    """The image requests in flight: bodies being read, decoding, waiting for or in the model; at
    most ``limit`` (``--max-batch`` + ``--max-queue``), one more is refused 429 before its body is
    read. (The batcher's queue counted only images decoded already: 6 concurrent 115 KB PNGs of
    6300x6300 each, with --max-queue 1, held 2.6 GB decoding at once, all answered 200.)"""

    def __init__(self, max_batch: int, max_queue: int) -> None:
        self.max_batch, self.max_queue = max_batch, max_queue
        self.limit = max_batch + max_queue
        self.held = 0  # (changed on the event loop only: no lock)

    @contextmanager
    def hold(self):
        if self.held >= self.limit:
            # (in the batcher's words: requests still being read or decoded are waiting too)
            raise QueueFullError(
                f"image queue full ({self.max_queue} waiting); retry later", retry_after_s=1,
                hint=f"raise --max-queue or add a device (image requests still being read or decoded count as "
                     f"waiting: {self.limit} in flight at most, --max-batch + --max-queue)")
        self.held += 1
        try:
            yield
        finally:
            self.held -= 1


class _ClientGone(Exception):
    """The client of a request closed its connection before the answer was ready."""


async def _result_while_connected(fut, receive, timeout_s: float):
    """The result of the batcher's ``fut``, awaited at most ``timeout_s`` (then
    ``asyncio.TimeoutError``) while the request's ``receive`` (its body read whole) is watched for
    the client hanging up (then :class:`_ClientGone`). Either way ``fut`` is cancelled."""
    async def hang_up() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    result = asyncio.wrap_future(fut)
    gone = asyncio.ensure_future(hang_up())
    try:
        done, _ = await asyncio.wait({result, gone}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (gone, result):
            t.cancel()  # (cancelling ``result`` cancels ``fut``: the batcher skips it)
        await asyncio.gather(gone, return_exceptions=True)
    if result in done:
        return result.result()
    if gone in done:
        gone.result()  # (an error of the receive itself, not a hang-up, goes on as it is)
        raise _ClientGone
    raise asyncio.TimeoutError


class _UnlessClosing:
    """The file an upload is written into, refusing the next chunk once the server shuts down
    (a signal): an upload still arriving gets its 503 "the server is shutting down" at once, not
    after its last byte (a multi-GB upload sent in full to be told to retry), nor a dropped
    connection when the graceful shutdown's time runs out."""

    def __init__(self, f, jobs) -> None:
        self._f, self._jobs = f, jobs

    def write(self, data) -> None:
        if self._jobs.closing:
            raise ShuttingDownError()
        self._f.write(data)


def _enhancer_of(obj):
    # A factory (no-arg callable that is not itself a restorer/Enhancer) is called at start-up.
    if callable(obj) and not hasattr(obj, "enhance_images"):
        return obj()
    return obj


def _limit_for(config: ServerConfig, path: str) -> int:
    """The largest upload (a raw body, or a form's file) the route at ``path`` takes, in bytes."""
    return config.max_video_bytes if path.rstrip("/") == VIDEO_ROUTE else config.max_upload_bytes


class _BodyLimit:
    """ASGI middleware: refuse bodies over the route's limit, early (Content-Length) or while read.

    Also turns a client that stops sending mid-upload (for ``--request-timeout``), or sends too
    slowly (an image body not whole within that time, a video upload under ``--min-upload-rate``
    past it), into a 408 instead of holding a worker, a temporary file and a place for ever.
    """

    def __init__(self, app, *, config: ServerConfig, metrics) -> None:
        self.app = app
        self.config = config
        self.metrics = metrics
        from starlette.requests import ClientDisconnect

        self._disconnect = ClientDisconnect

    def limit_for(self, path: str) -> int:
        return _limit_for(self.config, path)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = [500]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        path = _route_path(scope)
        limit = self.limit_for(path)
        headers = dict(scope.get("headers") or [])
        form = _is_form(headers)
        if form:  # (the file itself is held to the limit as the form is parsed: _multipart_file)
            limit += _FORM_HEADROOM
        try:
            declared = int(headers.get(b"content-length", b"-1"))
        except ValueError:
            declared = -1
        try:
            allowed = (f"{limit - _FORM_HEADROOM} bytes for the file and {_FORM_HEADROOM} for the form around it"
                       if form else f"{limit} bytes")
            if declared > limit:  # (refused before routing: the route label comes from the path)
                self.metrics.refuse("too_large")
                await _plain_error(send_wrapper, 413, f"request body of {declared} bytes is over the limit of {allowed}",
                                   error=PayloadTooLargeError.__name__)
                return
            seen = 0
            body_done = False
            idle = self.config.request_timeout_s
            video = path.rstrip("/") == VIDEO_ROUTE
            rate = self.config.min_upload_bytes_per_s

            def due() -> float | None:
                # When the body is late, besides the idle limit (a byte every few seconds never met
                # that): a body held in memory (an image's) must arrive whole within that time (1
                # byte every 2 s held a 24 MB body, and its place, for ever); a video upload, streamed
                # to disk, may take longer but must keep up --min-upload-rate past it (trickled, it
                # held a --max-jobs place for ever, and a few such clients starved everyone)
                if not video:
                    return t0 + idle
                return t0 + idle + seen / rate if rate else None

            def late() -> UploadTimeoutError:
                if not video:
                    return UploadTimeoutError(f"request body not received whole within {idle:g} s "
                                              "(--request-timeout); upload abandoned")
                return UploadTimeoutError(
                    f"upload slower than {rate / 1024:g} KB/s on average (--min-upload-rate) after its first "
                    f"{idle:g} s (--request-timeout): {seen} bytes in {time.perf_counter() - t0:.1f} s; upload abandoned",
                    hint="upload over a faster connection (the server's --min-upload-rate sets the least it takes)")

            async def limited_receive():
                nonlocal seen, body_done
                if body_done:
                    return await receive()
                end = due()
                wait = idle if end is None else min(idle, end - time.perf_counter())
                try:
                    message = await asyncio.wait_for(receive(), max(wait, 0.0))
                except asyncio.TimeoutError:
                    if wait < idle:
                        raise late() from None
                    raise UploadTimeoutError(f"no request data for {idle:g} s; upload abandoned") from None
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > limit:
                        raise PayloadTooLargeError(f"request body is over the limit of {allowed}")
                    body_done = not message.get("more_body", False)
                return message

            try:
                await self.app(scope, limited_receive, send_wrapper)
            except self._disconnect:  # (the app's handler answers it; this is the backstop)
                _log_disconnect(scope)
                status[0] = CLIENT_CLOSED
        finally:
            self.metrics.request(_route_label(scope), scope.get("method", ""), status[0], time.perf_counter() - t0)


def _route_path(scope) -> str:
    """The path the routes see: behind ``--root-path /gpen`` uvicorn hands ``/gpen/v1/...`` on, and
    Starlette routes it without the prefix (a check of ``/v1/`` on the whole path let every request
    past the API key)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root):len(root) + 1] in ("", "/"):
        return path[len(root):] or "/"
    return path


class ForbiddenRequestError(InvalidInputError):
    """A request from a web page this server does not serve: a ``Host`` it does not answer to (DNS
    rebinding), or another site's ``Origin`` on a state-changing request or ``/v1/live`` (403)."""


_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _foreign(scope, config: ServerConfig) -> ForbiddenRequestError | None:
    """Why a request (HTTP or WebSocket) is refused as coming from a page that is not this
    server's, or None. Clients that send no ``Origin`` (curl, scripts, apps) pass the second check."""
    from stream_gpen.server._config import normal_origin, same_origin, split_host

    headers = {k.lower(): v for k, v in scope.get("headers") or []}
    host = headers.get(b"host", b"").decode("latin-1")
    # no Host at all is an HTTP/1.0 client (a load balancer's health probe), never a browser: a
    # page a rebound name served always sends one (server23: HAProxy's probe got 403)
    if config.allowed_hosts is not None and b"host" in headers:
        name = split_host(host)
        if name is None or name[0] not in config.allowed_hosts:
            return ForbiddenRequestError(
                f"Host {host!r} is not a name this server answers to ({', '.join(config.allowed_hosts)})",
                hint="reach it by one of those names, or start it with --allow-host NAME (a reverse proxy "
                     "that passes on the public host name, a name of this machine)")
    origin = headers.get(b"origin")
    if origin is None or (scope["type"] == "http" and scope.get("method", "GET") in _SAFE_METHODS):
        return None
    origin = origin.decode("latin-1")
    if same_origin(origin, host) or "*" in config.allowed_origins or normal_origin(origin) in config.allowed_origins:
        return None
    return ForbiddenRequestError(
        f"a page of {origin} may not use this server (cross-site request)",
        hint="this server answers its own pages (/, /docs) and clients that send no Origin (curl, scripts); "
             "start it with --allow-origin ORIGIN for another web front end")


def _live_protocols(scope) -> tuple[str | None, bytes | None]:
    """The subprotocol to accept a ``/v1/live`` connection with (:data:`LIVE_PROTOCOL` if offered)
    and the key its subprotocol list carries, as bytes (b"" for one that is no base64url: wrong)."""
    offered = scope.get("subprotocols") or []
    key = None
    for p in offered:
        if p.startswith(_KEY_PROTOCOL):
            text = p[len(_KEY_PROTOCOL):]
            try:
                key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            except ValueError:  # (binascii.Error; a non-ASCII one)
                key = b""
            break
    return (LIVE_PROTOCOL if LIVE_PROTOCOL in offered else None), key


def _route_label(scope) -> str:
    """The route template for metrics (``/v1/videos/{job_id}``, not each id); also for requests
    answered before routing ran (an early 413): the app's route their path matches."""
    path = getattr(scope.get("route"), "path", None)
    if path:
        return path
    from starlette.routing import Match

    for route in getattr(scope.get("app"), "routes", ()):
        try:
            match, _ = route.matches(scope)
        except Exception:  # noqa: BLE001 - a label is not worth failing a request for
            continue
        if match is not Match.NONE and getattr(route, "path", None):
            return route.path
    return "other"


def _log_disconnect(scope) -> None:
    log.info("%s %s: the client closed the connection before its request was read", scope.get("method", ""),
             scope.get("path", ""))


async def _plain_error(send, status: int, detail: str, headers: dict | None = None, *, error: str) -> None:
    """An error answered below the app (no exception handler there), in the body every error has:
    ``detail`` (what happened) and ``error`` (a name a client can test for)."""
    import json

    body = json.dumps({"detail": detail, "error": error}).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


class OptionValueError(InvalidInputError):
    """A query option's value the route cannot take (422, as FastAPI's own for a malformed value)."""


def _query_number(kind: type, **limits):
    """The type of a numeric query option: ``kind`` (int or float) or None, within pydantic's
    ``limits`` (``ge``, ``le``, ``allow_inf_nan``; the schema's minimum/maximum), written as the command
    line takes numbers (:func:`stream_gpen.commands._number`: ASCII digits, a sign, a point, an
    exponent), else pydantic's own "unable to parse" error (422, as ``strength=abc`` gets). pydantic
    read ``strength=0.1_0`` as 0.1 and ``quality=9_0`` as 90, which ``--strength`` and ``--quality``
    refuse."""
    from pydantic import BeforeValidator, Field

    def check(value):
        # the text goes on to pydantic as it came (its errors show the client's "nan", not a float)
        if not isinstance(value, str):
            return value
        from stream_gpen.commands import _number

        try:
            _number(kind, value)
            return value
        except ValueError:
            from pydantic_core import PydanticCustomError

            if kind is int:
                raise PydanticCustomError(
                    "int_parsing", "Input should be a valid integer, unable to parse string as an integer") from None
            raise PydanticCustomError(
                "float_parsing", "Input should be a valid number, unable to parse string as a number") from None

    return Annotated[Annotated[kind, Field(**limits)] | None, BeforeValidator(check)]


def _query_time(name: str, text: str, *, positive: bool = False) -> float:
    """A ``start``/``duration`` query value in seconds: ``90``, ``90.5``, ``1:30`` or
    ``01:01:30.25``, as the command line takes them (``?start=1:30`` was refused as no number)."""
    import argparse

    from stream_gpen.commands import _timestamp

    try:
        v = _timestamp(text)
    except argparse.ArgumentTypeError as e:
        raise OptionValueError(f"{name}: {e}") from None
    if positive and v <= 0:
        raise OptionValueError(f"{name} must be longer than 0, got {text!r}")
    return v


#: the image endpoint's ``format`` as people spell it (any case): the name of an answer format
_FORMAT_SPELLINGS = {**{f: f for f in MEDIA_TYPES}, "jpg": "jpeg"}


def _answer_format(text: str) -> str:
    """The image endpoint's ``format`` (``jpg``, ``JPEG``, ``Png``...) -> a key of ``MEDIA_TYPES``
    (``?format=jpg`` and ``?format=PNG`` were refused, 422, as no format)."""
    fmt = _FORMAT_SPELLINGS.get(text.strip().lower())
    if fmt is None:
        raise OptionValueError(f"format: {text!r} is not an answer format; give jpeg (or jpg), png, webp or avif")
    return fmt


def _status_for(exc: Exception) -> tuple[int, dict]:
    if isinstance(exc, ShuttingDownError):
        return 503, {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, QueueFullError):
        return 429, {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, PayloadTooLargeError):
        return 413, {}
    if isinstance(exc, JobNotFoundError):
        return 404, {}
    if isinstance(exc, UnsupportedMediaTypeError):
        return 415, {}
    if isinstance(exc, (UnknownOptionError, OptionValueError)):
        return 422, {}
    if isinstance(exc, UploadTimeoutError):
        return 408, {}
    if isinstance(exc, PreconditionFailedError):
        return 412, {}
    if isinstance(exc, InvalidInputError):
        return 400, {}
    if isinstance(exc, WeightsError):
        return 503, {"Retry-After": "60"}
    return 500, {}


def _storage_refused(e: BaseException) -> bool:
    """The file system refused (full, read-only, gone...), not the client (a timeout, a hang-up)."""
    return (isinstance(e, OSError) and e.errno is not None and not isinstance(e, StreamGpenError)
            and not isinstance(e, (TimeoutError, ConnectionError)))


def _storage_error(e: OSError):
    """The server's work folder refused an upload (full, removed and not made again, read-only):
    507 with the reason, not Starlette's bare 500 page (the upload is discarded)."""
    from fastapi.responses import JSONResponse

    log.error("video upload refused: the work folder cannot store it: %s", e)
    return JSONResponse({"detail": f"the server cannot store the upload: {e.strerror or e}", "error": "StorageError",
                         "hint": "retry later or send a smaller file; the server's --work-dir needs room"},
                        status_code=507, headers={"Retry-After": "60"})


def create_app(
    enhancer,
    *,
    config: ServerConfig | None = None,
    models: Mapping[str, object] | None = None,
):
    """Build the FastAPI app around already-built Enhancer(s).

    ``enhancer``: an :class:`~stream_gpen.Enhancer` or a no-argument factory returning one (called
    once at start-up, so tests inject a tiny model and the CLI a real one). ``models``: extra
    named Enhancers (or factories) the ``model`` option may pick; the first model is the default.
    Each holds one model instance; nothing is ever built per request.
    """
    from fastapi import Depends, FastAPI, Query, Request, WebSocket
    from fastapi.exceptions import WebSocketRequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect
    from starlette.websockets import WebSocketDisconnect

    from stream_gpen import __version__
    from stream_gpen.io._sink import CHROMA_MODES  # (a video job's chroma: the command line's --chroma choices)
    from stream_gpen.server._batcher import ImageBatcher
    from stream_gpen.server._imaging import decode_image, encode_image
    from stream_gpen.server._jobs import JobManager, make_temp_work_dir, reclaim_temp_work_dirs

    # python-multipart logs each malformed body it refuses as a bare warning line: the client gets
    # that text in its 400 already, and a client could fill the server's log with them
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    from stream_gpen.server._live import live_session
    from stream_gpen.server._metrics import Metrics
    from stream_gpen.server._models import ModelSet
    from stream_gpen.server._scheduler import DeviceScheduler

    # the numeric query options, read as the command line reads them (see _query_number); declared
    # as Annotated[type, Query(...)] = default: behind "= Query(...)" FastAPI drops the type's validator
    strength_type = _query_number(float, ge=0.0, le=1.0, allow_inf_nan=False)

    config = config or ServerConfig()
    metrics = Metrics()
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app):
        if not config.loopback and config.api_key is None:
            log.warning("serving on %s without an API key: anyone who can reach it may use it", config.host)
        base = await run_in_threadpool(_enhancer_of, enhancer)
        named = {str(getattr(base, "model_name", "default")): base}
        for name, e in (models or {}).items():
            named[name] = await run_in_threadpool(_enhancer_of, e)
        for e in named.values():  # (CUDA: every bucket's graph now, not in a live session's frames)
            warm_up = getattr(e, "_warm_up_live", None)
            if warm_up is not None:
                await run_in_threadpool(warm_up)
        model_set = ModelSet(named)
        schedulers = {d: DeviceScheduler(d) for d in model_set.devices()}
        own_dir = config.work_dir is None
        own_lock = None
        if own_dir:  # (those of killed servers first: nothing else removes them)
            await run_in_threadpool(reclaim_temp_work_dirs)
            work_dir, own_lock = make_temp_work_dir()
        else:
            work_dir = config.work_dir
        batcher = ImageBatcher(model_set, schedulers, metrics, max_batch=config.max_batch,
                               wait_s=config.batch_wait_ms / 1000.0, max_queue=config.max_queue)
        jobs = JobManager(work_dir / "jobs" if not own_dir else work_dir, model_set, schedulers, metrics,
                          max_jobs=config.max_jobs, ttl_s=config.job_ttl_s, max_pixels=config.max_pixels,
                          encoder=config.encoder, lock_dir=None if own_dir else work_dir)
        state.update(models=model_set, batcher=batcher, jobs=jobs, schedulers=schedulers, started=time.time())
        _register_gauges(metrics, state)
        try:
            with batcher, jobs:
                yield
        finally:
            state.clear()
            if own_dir:
                shutil.rmtree(work_dir, ignore_errors=True)
                if own_lock is not None:
                    own_lock.close()

    app = FastAPI(
        title="stream-gpen",
        version=__version__,
        description="GPEN face restoration for images, videos and live camera frames.",
        lifespan=lifespan,
        # /docs' Swagger UI loads its script from cdn.jsdelivr.net (said in the cookbook: offline it is
        # a blank page; /openapi.json is served either way); ReDoc, which also loaded Google's fonts
        # and showed the same document, is left out
        redoc_url=None,
    )
    app.add_middleware(_BodyLimit, config=config, metrics=metrics)

    def openapi():
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            app.openapi_schema = _documented(
                get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes),
                keyed=config.api_key is not None)
        return app.openapi_schema

    app.openapi = openapi
    app.state.metrics = metrics
    app.state.config = config
    app.state.runtime = state
    images = _ImageSlots(config.max_batch, config.max_queue)
    app.state.images = images

    @app.exception_handler(StreamGpenError)
    async def _stream_gpen_error(request: Request, exc: StreamGpenError):
        status, headers = _status_for(exc)
        if status == 429:
            metrics.refuse("queue_full")
        elif isinstance(exc, ShuttingDownError):
            metrics.refuse("shutting_down")
        elif status == 413:
            metrics.refuse("too_large")
        body = {"detail": str(exc), "error": type(exc).__name__}
        if exc.hint:
            body["hint"] = exc.hint
        return JSONResponse(body, status_code=status, headers=headers)

    from starlette.exceptions import HTTPException as _HTTPException

    @app.exception_handler(_HTTPException)
    async def _http_error(request: Request, exc: _HTTPException):
        # Starlette's own (an unknown route, a method a route does not take): the documented
        # ``{detail, error}`` shape too, not ``{detail}`` alone
        name = {404: "NotFoundError", 405: "MethodNotAllowedError"}.get(exc.status_code, f"HTTP{exc.status_code}Error")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # every method the path takes (RFC 9110): Starlette names the first matching route's
            # alone, and a GET route's HEAD twin comes first (405s said "Allow: HEAD")
            headers["Allow"] = ", ".join(_methods_of(request.scope)) or headers.get("allow", "")
            headers.pop("allow", None)
        return JSONResponse({"detail": exc.detail, "error": name}, status_code=exc.status_code,
                            headers=headers or None)

    def _methods_of(scope) -> list[str]:
        from starlette.routing import Match

        methods: set[str] = set()
        for route in app.router.routes:
            match, _ = route.matches({**scope, "method": "GET"}) if hasattr(route, "matches") else (None, None)
            if match in (Match.FULL, Match.PARTIAL) and getattr(route, "methods", None):
                methods |= set(route.methods)
        order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return sorted(methods, key=lambda m: order.index(m) if m in order else len(order))

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect):
        # A cancelled upload (a closed tab, a lost phone signal) is routine, not a server error:
        # one info line, no traceback, counted as 499. The answer goes nowhere.
        _log_disconnect(request.scope)
        return Response(status_code=CLIENT_CLOSED)

    def check_key(presented: str | bytes | None) -> bool:
        if config.api_key is None:
            return True
        if isinstance(presented, str):
            presented = presented.encode()
        return presented is not None and hmac.compare_digest(presented, config.api_key.encode())

    def key_from_headers(headers) -> bytes | None:
        """The key a request's headers carry, as the bytes the client sent: Starlette reads header
        values as Latin-1, so a UTF-8 key ("pässwort", as curl sends it) re-encoded as UTF-8 never
        matched (every request 401; only the live page's ?key= worked)."""
        key = headers.get("x-api-key")
        auth = headers.get("authorization", "")
        if not (key or "").strip() and auth.lower().startswith("bearer "):  # (an empty X-API-Key beat a good token)
            key = auth[7:].strip()
        if key is None:
            return None
        try:
            return key.encode("latin-1")
        except UnicodeEncodeError:  # (not as read from the wire)
            return key.encode()

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        path = _route_path(request.scope)
        refused = _foreign(request.scope, config)
        if refused is not None:
            metrics.refuse("forbidden")
            metrics.request(_route_label(request.scope), request.method, 403, 0.0)
            return JSONResponse({"detail": str(refused), "error": type(refused).__name__, "hint": refused.hint},
                                status_code=403)
        if (path.startswith("/v1/") or path == "/metrics") and not check_key(key_from_headers(request.headers)):
            metrics.refuse("unauthorized")
            # answered before the body-limit layer (which counts requests) sees it: counted here
            metrics.request(_route_label(request.scope), request.method, 401, 0.0)
            return JSONResponse({"detail": "missing or wrong API key (X-API-Key or Authorization: Bearer)",
                                 "error": "UnauthorizedError"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if not state and path.startswith("/v1/"):
            metrics.request(_route_label(request.scope), request.method, 503, 0.0)
            return JSONResponse({"detail": "server not ready", "error": "NotReadyError"}, status_code=503, headers={"Retry-After": "5"})
        return await call_next(request)

    # --- page, health, metrics ---------------------------------------------------------------------
    def get_and_head(path: str, **kw):
        """``app.get`` that also answers HEAD (uptime probes, `curl -I`, a download manager asking a
        result's size: 405 before), the HEAD route left out of /docs (one operation id per route)."""
        def register(fn):
            app.add_api_route(path, fn, methods=["HEAD"], include_in_schema=False,
                              response_class=kw.get("response_class", JSONResponse))
            return app.get(path, **kw)(fn)
        return register

    @get_and_head("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        page = resources.files("stream_gpen.server").joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @get_and_head("/healthz", summary="Liveness and what this server runs")
    async def healthz():
        if not state:
            return JSONResponse({"status": "starting"}, status_code=503)
        return {"status": "ok", "version": __version__, "models": state["models"].names,
                "uptime_s": round(time.time() - state["started"], 1)}

    @get_and_head("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    async def metrics_route():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @get_and_head("/v1/models", summary="The models this server holds and the options they take")
    async def list_models():
        return {"default": state["models"].default, "models": state["models"].describe(),
                "faces": ["all", "largest", "center"], "strength": "a number in [0, 1]", "formats": list(MEDIA_TYPES)}

    # --- images ------------------------------------------------------------------------------------
    body_doc = {
        "requestBody": {
            "required": True,
            "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                **{t: {"schema": {"type": "string", "format": "binary"}} for t in (
                    "image/webp", "image/avif", "image/heic", "image/tiff", "image/bmp", "image/gif",
                    "application/octet-stream")},
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                               "required": ["file"]}},
            },
        }
    }

    async def known_query(request: Request) -> None:
        """Refuse (422) a query parameter the route does not take, before the body is read."""
        problem = _unknown_query([k for k, _ in request.query_params.multi_items()], request.scope.get("endpoint"),
                                 _upload_routes(request.app))
        if problem:
            raise UnknownOptionError(problem)

    def body_type(request: Request, allowed: tuple[str, ...], also: frozenset[str] = frozenset()) -> str:
        """The request's content type (lower case, no parameters), refused (415) if the route does
        not take it or the body is compressed: from the headers alone, before anything is reserved
        for the upload (a video job's slot: with all taken, a wrong type was told 429 "raise
        --max-jobs" and retried for ever)."""
        coding = request.headers.get("content-encoding", "").strip().lower()
        if coding not in ("", "identity"):
            # (a gzipped PNG was "not an image", a gzipped mp4 taken and failed later: RFC 9110 15.5.16)
            raise UnsupportedMediaTypeError(f"Content-Encoding {coding} is not accepted: send the file as it is",
                                            hint="media files are compressed already; turn off the client's request "
                                                 "compression for this upload")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            return ctype
        if ctype == "application/x-www-form-urlencoded" or not ctype:
            # what `curl --data @photo.jpg` sends (the file with its CR and LF bytes left out, so a
            # JPEG failed as "truncated" and a PNG as no image); and a body with no type at all
            raise (UnsupportedImageError if "image/" in allowed else UnsupportedMediaTypeError)(
                f"unsupported content type {ctype or '(none)'!r}: send the file's bytes with its type, or as a "
                f"multipart form", hint=curl_hint("image/jpeg" if "image/" in allowed else "video/mp4"))
        if not ctype.startswith(allowed) and ctype not in also:
            # (a video route's refusal named an image error)
            elsewhere = (" (a video: POST it to /v1/videos)" if "image/" in allowed and ctype.startswith("video/")
                         else " (a picture: POST it to /v1/images:enhance)"
                         if "image/" not in allowed and ctype.startswith("image/") else "")
            raise (UnsupportedImageError if "image/" in allowed else UnsupportedMediaTypeError)(
                f"unsupported content type {ctype or '(none)'!r}{elsewhere}; send "
                f"{', '.join(a + '*' if a.endswith('/') else a for a in allowed)}"
                f"{', a container type (application/mp4, application/mxf, ...)' if also else ''} or multipart/form-data")
        return ctype

    async def read_body(request: Request, allowed: tuple[str, ...], sink=None,
                        also: frozenset[str] = frozenset()) -> bytes | None:
        """Raw body (image/* etc.) or the ``file`` part of a multipart form; into ``sink`` if given.
        ``allowed``: the content types taken, as prefixes; ``also``: exact types taken too."""
        if body_type(request, allowed, also) == "multipart/form-data":
            options = tuple(_options_of(request.scope.get("endpoint")))
            limit = _limit_for(config, _route_path(request.scope))
            if sink is not None:
                await _multipart_file(request, sink, options, limit)
                return None
            buf = io.BytesIO()
            await _multipart_file(request, buf, options, limit)
            return buf.getvalue()
        if sink is None:
            return await request.body()
        async for chunk in request.stream():
            sink.write(chunk)
        return None

    @app.post(IMAGE_ROUTE, summary="Enhance the faces of one image", openapi_extra=body_doc,
              dependencies=[Depends(known_query)],
              response_class=Response, responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}})
    async def enhance_image(
        request: Request,
        model: str | None = Query(None, description="a model this server holds (GET /v1/models); default: the first"),
        faces: Literal["all", "largest", "center"] | None = Query(None, description="which faces to restore"),
        format: str | None = Query(None, description=(
            "answer format: jpeg (or jpg), png, webp or avif, in any case; default: the input's (HEIC: JPEG)")),
        quality: Annotated[_query_number(int, ge=1, le=100), Query(description=(
            "JPEG/WebP/AVIF quality of the answer; default: as `enhance` writes the photo (a JPEG's own "
            "quantisation from quality 90 up, else 90; a lossless WebP stays lossless; else 95)"))] = None,
        strength: Annotated[strength_type, Query(description=(
            "blend of each restored face with the original, 0-1 (1 = the model's output as it is; "
            "lower keeps more identity and skin texture); default: the model's"))] = None,
        aligned: bool | None = Query(None, description=(
            "the image is an aligned face crop already (FFHQ-style, like GFPGAN's/CodeFormer's cropped_faces): "
            "the whole picture goes through the model, no detection; default: the server's (serve --aligned)")),
    ):
        t0 = time.perf_counter()
        answer_format = None if format is None else _answer_format(format)
        state["models"].resolve(model, faces, strength, aligned)  # bad options fail before reading the body
        with images.hold():  # (before the body is read: a refused one costs nothing)
            data = await read_body(request, _IMAGE_TYPES)
            decoded = await run_in_threadpool(decode_image, data, max_pixels=config.max_pixels)
            fut = state["batcher"].submit(decoded.pixels, model=model, faces=faces, strength=strength,
                                          aligned=aligned)
            try:
                out = await _result_while_connected(fut, request.receive, config.request_timeout_s)
            except _ClientGone:
                # (its request was run all the same, and counted as 200: 16 abandoned ones held the
                # next client 12.7 s instead of 1.0 s, or got it a 429 from a queue of the departed)
                fut.cancel()  # not started: it leaves the queue; running: its answer is dropped
                log.info("POST %s: the client closed the connection before its image was ready; dropped",
                         request.scope.get("path", ""))
                return Response(status_code=CLIENT_CLOSED)
            except asyncio.TimeoutError:
                fut.cancel()  # if it has not started, the batcher skips it
                metrics.refuse("timeout")
                return JSONResponse({"detail": f"not processed within {config.request_timeout_s:g} s; retry later",
                                     "error": "ProcessingTimeoutError"},
                                    status_code=503, headers={"Retry-After": "5"})
            except StreamGpenError:
                raise
            except Exception as exc:  # model failure (e.g. device out of memory): this request only
                log.warning("image request failed: %s: %s", type(exc).__name__, exc)
                return JSONResponse({"detail": f"enhancement failed: {type(exc).__name__}: {exc}",
                                     "error": "EnhancementError"}, status_code=503, headers={"Retry-After": "5"})
            fmt = answer_format or decoded.format
            payload = await run_in_threadpool(encode_image, out, fmt, quality=quality,
                                              icc_profile=decoded.icc_profile, exif=decoded.exif, dpi=decoded.dpi, xmp=decoded.xmp,
                                              subsampling=decoded.subsampling, jpeg=decoded.jpeg,
                                              lossless=decoded.lossless, photoshop=decoded.photoshop)
        name = state["models"].resolve(model, faces, strength, aligned)
        return Response(payload, media_type=MEDIA_TYPES[fmt], headers={
            "X-Model": name[0], "X-Faces-Option": name[1], "X-Strength": f"{name[2]:g}", "X-Aligned": str(name[3]).lower(),
            "X-Processing-Ms": f"{(time.perf_counter() - t0) * 1e3:.1f}"})

    # --- videos ------------------------------------------------------------------------------------
    video_doc = {"requestBody": {"required": True, "content": {
        "video/mp4": {"schema": {"type": "string", "format": "binary"}},
        "image/gif": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}}, "required": ["file"]}}}}}

    @app.post(VIDEO_ROUTE, status_code=202, summary="Upload a video; returns a job id", openapi_extra=video_doc,
              dependencies=[Depends(known_query)])
    async def create_video_job(
        request: Request,
        model: str | None = Query(None, description="a model this server holds; default: the first"),
        faces: Literal["all", "largest", "center"] | None = Query(None, description="which faces to restore"),
        strength: Annotated[strength_type, Query(description=(
            "blend of each restored face with the original, 0-1 (1 = the model's output as it is; "
            "lower keeps more identity and skin texture); default: the model's"))] = None,
        # seconds or [HH:]MM:SS[.ms], as `enhance --start/--duration` take them; "inf", "nan" and
        # negative times are refused (422) before the upload is read
        start: str = Query("0", description="restore from this time on (the output starts at 0): seconds "
                           "(90.5) or [HH:]MM:SS[.ms] (1:30.5)"),
        duration: str | None = Query(None, description="restore only this long (seconds or [HH:]MM:SS[.ms]); "
                                     "default: to the end"),
        aligned: bool | None = Query(None, description="every frame is an aligned face crop already: the whole "
                                     "frame goes through the model, no detection; default: the server's "
                                     "(serve --aligned)"),
        chroma: str = Query("auto", description=(
            "as `enhance --chroma`: auto (default) keeps a 4:2:2 / 4:4:4 upload's chroma (ProRes, broadcast "
            "masters: an HEVC/H.264 4:2:2 or 4:4:4 result, which editors take and browsers, phones and TVs mostly "
            "do not play; the summary's fallbacks say so); 420 writes 4:2:0, which every player decodes"),
            json_schema_extra={"enum": list(CHROMA_MODES)}),
    ):
        start_s = _query_time("start", start)
        duration_s = None if duration is None else _query_time("duration", duration, positive=True)
        if chroma not in CHROMA_MODES:
            raise OptionValueError(f"chroma: {chroma!r} is not one of {', '.join(CHROMA_MODES)} (as --chroma)")
        body_type(request, _VIDEO_TYPES, _video_media_types())  # (a wrong type: 415 before a slot is taken)
        jobs = state["jobs"]
        try:
            job = jobs.new_job(model=model, faces=faces, strength=strength, start=start_s, duration=duration_s,
                               aligned=aligned, chroma=chroma)
        except OSError as e:
            if not _storage_refused(e):
                raise
            return _storage_error(e)
        try:
            with open(job.input_path, "wb") as f:
                await read_body(request, _VIDEO_TYPES, sink=_UnlessClosing(f, jobs), also=_video_media_types())
            if job.input_path.stat().st_size == 0:
                raise InvalidInputError("empty upload: send a video file")
            jobs.enqueue(job)
        except BaseException as e:
            # Too large, timed out, client gone, shutdown: nothing stays on disk.
            jobs.discard(job)
            if _storage_refused(e):
                return _storage_error(e)
            raise
        # (under the proxy's prefix, --root-path: "/v1/..." was the proxy's 404)
        root = request.scope.get("root_path", "").rstrip("/")
        return JSONResponse(jobs.snapshot(job, root_path=root), status_code=202,
                            headers={"Location": f"{root}{VIDEO_ROUTE}/{job.id}"})

    @get_and_head(VIDEO_ROUTE + "/{job_id}", summary="State, progress and summary of a video job")
    async def get_video_job(job_id: str, request: Request):
        jobs = state["jobs"]
        return jobs.snapshot(jobs.get(job_id), root_path=request.scope.get("root_path", "").rstrip("/"))

    @get_and_head(VIDEO_ROUTE + "/{job_id}/result", summary="The enhanced video (when the job is done)",
                  response_class=FileResponse)
    async def get_video_result(job_id: str, request: Request):
        from stream_gpen.server._download import open_result, result_response
        from stream_gpen.server._jobs import JobState

        jobs = state["jobs"]
        job = jobs.get(job_id)
        if job.state is not JobState.done:
            headers = {"Retry-After": "5"} if job.state in (JobState.queued, JobState.running) else {}
            return JSONResponse({"detail": f"job {job_id} is {job.state.value}, no result", "error": "JobNotDoneError",
                                 "state": job.state.value},
                                status_code=409, headers=headers)
        # Opened before the answer starts: a DELETE or the job's expiry removing the folder while
        # it is sent leaves the open file readable, and the download whole (FileResponse opened the
        # path after sending its Content-Length: a 200 with no body).
        try:
            f, st = await run_in_threadpool(open_result, job.output_path)
        except FileNotFoundError:
            jobs.get(job_id)  # deleted or expired since: its 404 (a result removed under the server: that 404)
            raise JobNotFoundError(f"no video job {job_id!r} (unknown, expired or deleted)") from None
        return result_response(f, st, request, media_type="video/mp4", filename=f"{job_id}.mp4")

    @app.delete(VIDEO_ROUTE + "/{job_id}", summary="Cancel a job (or delete its result) and its files")
    async def delete_video_job(job_id: str):
        job = state["jobs"].delete(job_id)
        return {"id": job.id, "state": "cancelled" if job.state.value in ("queued", "running", "uploading", "cancelled")
                else job.state.value, "deleted": True}

    # --- live --------------------------------------------------------------------------------------
    async def refuse_live(ws, code: int, reason: str) -> None:
        # Accepted, then closed: a close before accept reaches a client through uvicorn as a bare
        # HTTP 403, without the code or the reason (a browser shows "closed 1006", whatever was wrong).
        # (A close frame's reason holds 123 bytes.)
        await ws.accept(subprotocol=_live_protocols(ws.scope)[0])
        await ws.close(code=code, reason=reason.encode()[:123].decode("utf-8", "ignore"))

    @app.exception_handler(WebSocketRequestValidationError)
    async def _live_bad_query(ws: WebSocket, exc: WebSocketRequestValidationError):
        # FastAPI's own refusal of a malformed query (?aligned=maybe) closes before accept too
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0].get("loc", ())[1:]) if errors else ""
        await refuse_live(ws, 1008, f"{where}: {errors[0].get('msg', 'invalid')}" if errors else "invalid query")

    @app.websocket("/v1/live")
    async def live(ws: WebSocket, model: str | None = None, faces: str | None = None, key: str | None = None,
                   strength: _query_number(float) = None, aligned: bool | None = None):
        protocol, offered_key = _live_protocols(ws.scope)
        refused = _foreign(ws.scope, config)
        if refused is not None:  # (another site's page: WebSockets are not held back by browsers)
            metrics.refuse("forbidden")
            await refuse_live(ws, 1008, str(refused))
            return
        if not check_key(key or offered_key or key_from_headers(ws.headers)):
            metrics.refuse("unauthorized")
            await refuse_live(ws, 1008, "missing or wrong API key (subprotocol key.<base64url>, X-API-Key or ?key=)")
            return
        if not state:
            await refuse_live(ws, 1013, "server not ready")
            return
        problem = _unknown_query([k for k, _ in ws.query_params.multi_items()], live)
        if problem:
            await refuse_live(ws, 1008, problem)
            return
        try:
            state["models"].resolve(model, faces, strength, aligned)
        except InvalidInputError as e:
            await refuse_live(ws, 1008, str(e))
            return
        await ws.accept(subprotocol=protocol)
        try:
            await live_session(ws, batcher=state["batcher"], metrics=metrics, max_pixels=config.max_pixels,
                               max_jpeg_bytes=config.max_upload_bytes,
                               timeout_s=config.request_timeout_s, model=model, faces=faces, strength=strength,
                               aligned=aligned)
        except WebSocketDisconnect:
            pass

    if config.allowed_origins:
        # (added last: outermost, so it answers the browsers' preflight OPTIONS, which carry no key)
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.allowed_origins), allow_methods=["*"],
                           allow_headers=["*"], expose_headers=list(_EXPOSED_HEADERS))
    return app


#: the answer headers a page of an --allow-origin origin may read (CORS hides all but a few from its
#: script): the job's Location, a refusal's Retry-After, the image answer's X- headers, and a
#: result's ETag (for If-Match / If-None-Match / If-Range), Content-Range of a 206 (which part, of
#: what size), Content-Disposition (its file name), Accept-Ranges; Content-Length and Last-Modified
#: are readable anyway (CORS-safelisted), named for older browsers
_EXPOSED_HEADERS = ("Location", "Retry-After", "X-Model", "X-Faces-Option", "X-Strength", "X-Aligned",
                    "X-Processing-Ms", "ETag", "Content-Range", "Content-Disposition", "Accept-Ranges",
                    "Content-Length", "Last-Modified")


#: the error answers each operation may give besides 401 (with a key) and 503 "not ready" (all of /v1)
_ERRORS = {
    ("post", IMAGE_ROUTE): {400: "bad option or undecodable image", 408: "upload stalled",
                            413: "body or pixels over the limit", 415: "unsupported content or image type",
                            422: "bad query or form field",
                            429: "too many requests waiting",
                            503: "not processed in time, model failure or the server shutting down; retry"},
    ("post", VIDEO_ROUTE): {400: "bad option or empty upload", 408: "upload stalled or too slow (--min-upload-rate)", 413: "upload over --max-video-mb",
                            415: "unsupported content type", 422: "bad query or form field",
                            429: "too many jobs", 503: "server not ready or shutting down; retry",
                            507: "the server cannot store the upload; retry later"},
    ("get", VIDEO_ROUTE + "/{job_id}"): {404: "no such job (or expired)"},
    ("get", VIDEO_ROUTE + "/{job_id}/result"): {404: "no such job (or expired)", 409: "the job has no result (yet)",
                                               412: "If-Match or If-Unmodified-Since does not hold"},
    ("delete", VIDEO_ROUTE + "/{job_id}"): {404: "no such job (or expired)"},
}


_NUM_OR_NULL = {"type": ["number", "null"]}
_VIDEO_JOB_SCHEMA = {
    "type": "object",
    "required": ["id", "state", "progress", "result"],
    "properties": {
        "id": {"type": "string"},
        "state": {"type": "string", "enum": ["uploading", "queued", "running", "done", "failed", "cancelled"]},
        "model": {"type": "string"},
        "faces": {"type": "string"},
        "strength": _NUM_OR_NULL,
        "start": {"type": "number", "description": "seconds"},
        "duration": {**_NUM_OR_NULL, "description": "seconds; null: to the end"},
        "aligned": {"type": "boolean"},
        "chroma": {"type": "string", "description": (  # (its enum: CHROMA_MODES, see _documented)
            "auto: a 4:2:2 / 4:4:4 upload's chroma kept (editors take it, most players do not); 420: written 4:2:0")},
        "created": {**_NUM_OR_NULL, "description": "Unix time"},
        "started": {**_NUM_OR_NULL, "description": "Unix time; null until it runs"},
        "finished": {**_NUM_OR_NULL, "description": "Unix time; null until it ends"},
        "expires": {**_NUM_OR_NULL, "description": "Unix time its result is removed (--job-ttl); null until it ends"},
        "frames_done": {"type": "integer"},
        "frames_total": {"type": ["integer", "null"], "description": "the header's count or estimate; null: unknown"},
        "faces_restored": {"type": "integer"},
        "progress": {**_NUM_OR_NULL, "description": "0 to 1 (not a percentage); null until frames_total is known"},
        "summary": {"type": ["object", "null"], "description": (
            "the run's summary once the job ends, as --report writes it (a failed job's: the run up to the failure, "
            "its error the job's; one that failed before its run began: zero counts, device, precision and encoder "
            "null); its input is \"the upload\", its output the result's path (null unless done), "
            "its partial_output null")},
        "error": {"type": ["string", "null"], "description": "why it failed"},
        "result": {"type": ["string", "null"], "description": "the path to GET once state is done"},
    },
}


def _documented(schema: dict, *, keyed: bool) -> dict:
    """The OpenAPI ``schema`` with what FastAPI cannot see: the error answers (a JSON ``Error``:
    ``detail``, ``error``, ``hint``) and, with ``--api-key``, the key as security schemes (the
    middleware checks it; without them /docs' "Try it out" had no way to send it and got 401)."""
    comps = schema.setdefault("components", {})
    comps.setdefault("schemas", {})["Error"] = {"type": "object", "required": ["detail", "error"], "properties": {
        "detail": {"type": "string", "description": "what went wrong"},
        "error": {"type": "string", "description": "a name to test for, e.g. PayloadTooLargeError"},
        "hint": {"type": "string", "description": "how to fix it, where known"}}}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    # a video job's state (the 202 of an upload, each poll): the handlers return plain dicts, which
    # FastAPI describes as "any" (a generated client typed them so)
    from stream_gpen.io._sink import CHROMA_MODES

    comps["schemas"]["VideoJob"] = _VIDEO_JOB_SCHEMA
    _VIDEO_JOB_SCHEMA["properties"]["chroma"]["enum"] = list(CHROMA_MODES)
    comps["schemas"]["VideoJobDeleted"] = {"type": "object", "required": ["id", "state", "deleted"], "properties": {
        "id": {"type": "string"}, "state": {"type": "string", "description": "cancelled, done or failed"},
        "deleted": {"type": "boolean"}}}
    for (method, path, code), name in (((
            "post", VIDEO_ROUTE, "202"), "VideoJob"), (("get", VIDEO_ROUTE + "/{job_id}", "200"), "VideoJob"),
            (("delete", VIDEO_ROUTE + "/{job_id}", "200"), "VideoJobDeleted")):
        op = schema.get("paths", {}).get(path, {}).get(method)
        if op is not None and code in op.get("responses", {}):
            op["responses"][code]["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
    # binary answers: the restored image, the result video (whole, or the part a Range asked for);
    # without a schema generated clients typed them as JSON objects or nothing
    binary = {"schema": {"type": "string", "format": "binary"}}
    image_ok = schema.get("paths", {}).get(IMAGE_ROUTE, {}).get("post", {}).get("responses", {}).get("200")
    if image_ok is not None:
        image_ok["content"] = {media: binary for media in image_ok.get("content") or {"application/octet-stream": {}}}
    for method in ("get", "head"):
        result = schema.get("paths", {}).get(VIDEO_ROUTE + "/{job_id}/result", {}).get(method)
        if result is not None:
            answers = result.setdefault("responses", {})
            answers.setdefault("200", {"description": "the enhanced video"})["content"] = {"video/*": binary}
            answers["206"] = {"description": "the part of the video a Range header asked for",
                              "content": {"video/*": binary}}
            answers["416"] = {"description": "the Range asked for lies past the end of the video"}
            answers["304"] = {"description": "not modified: the result is the one the request's If-None-Match "
                                             "(or, without one, If-Modified-Since) names; no body"}
    health = schema.get("paths", {}).get("/healthz", {}).get("get")
    if health is not None:  # (answered before the models are loaded: a probe waits for 200)
        health.setdefault("responses", {})["503"] = {
            "description": "starting: the models are still being loaded; retry",
            "content": {"application/json": {"schema": {"type": "object", "required": ["status"], "properties": {
                "status": {"type": "string", "enum": ["starting"]}}}}}}
    if keyed:
        comps["securitySchemes"] = {"APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                                    "Bearer": {"type": "http", "scheme": "bearer"}}
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            said = dict(_ERRORS.get((method, path), {}))
            if path.startswith("/v1/"):
                said[503] = said.get(503, "server not ready; retry")
            if keyed and (path.startswith("/v1/") or path == "/metrics"):
                op["security"] = [{"APIKeyHeader": []}, {"Bearer": []}]
                said[401] = "missing or wrong API key"
            # every request passes the Host check (DNS rebinding), a POST or DELETE the Origin one too
            said[403] = ("ForbiddenRequestError: a Host this server does not answer to (--allow-host)"
                         + (", or a page of another site (its Origin; --allow-origin)"
                            if method.upper() not in _SAFE_METHODS else ""))
            if "{job_id}" in path:
                op["responses"].pop("422", None)  # (a job id is any string: an unknown one is 404)
            fastapi_422 = op["responses"].pop("422", None)
            if 422 in said and fastapi_422 is not None:
                # the server's own 422s (an unknown, repeated or malformed option: UnknownOptionError,
                # FormOptionError, OptionValueError) are an Error; FastAPI's, for a value of the
                # wrong type (strength=abc, faces=some), its list of validation errors
                op["responses"]["422"] = {
                    "description": (f"{said.pop(422)}: an Error (an unknown, repeated or malformed option), or "
                                    "FastAPI's validation errors, detail a list (a value of the wrong type)"),
                    "content": {"application/json": {"schema": {"oneOf": [
                        {"$ref": "#/components/schemas/Error"},
                        fastapi_422.get("content", {}).get("application/json", {}).get(
                            "schema", {"$ref": "#/components/schemas/HTTPValidationError"})]}}}}
            elif fastapi_422 is not None:
                op["responses"]["422"] = fastapi_422
            for code, what in sorted(said.items()):
                op["responses"].setdefault(str(code), {"description": what, "content": error})
    return schema


def _options_of(endpoint) -> list[str]:
    """The query options a route's function takes (its parameters, less the request and path ones)."""
    import inspect

    if endpoint is None:
        return []
    return [n for n in inspect.signature(endpoint).parameters if n not in ("request", "ws", "job_id")]


def _upload_routes(app) -> dict[str, object]:
    """The path and function of each POST route (the image endpoint, ``/v1/videos``)."""
    return {r.path: r.endpoint for r in getattr(app, "routes", ()) if "POST" in (getattr(r, "methods", None) or ())}


def _unknown_query(given, endpoint, others: Mapping[str, object] | None = None) -> str | None:
    """What is wrong with query parameters ``given`` to a route whose function is ``endpoint``:
    one it does not take (FastAPI drops those silently, so ``?strenght=0`` restored at full
    strength), said as an option of the route of ``others`` (path -> function) that takes it
    (``?start=1`` on the image endpoint: a video job's), else with the closest name it does take,
    as the CLI says "did you mean"; or one given twice (``?strength=0.3&strength=0.9`` used the
    last one without a word)."""
    import difflib

    if endpoint is None:
        return None
    takes = _options_of(endpoint)
    given = list(given)
    for name in given:
        if given.count(name) > 1 and name in takes:  # (only the last was used, without a word)
            return f"query parameter {name!r} given {given.count(name)} times; give it once"
        elsewhere = [path for path, fn in (others or {}).items() if fn is not endpoint and name in _options_of(fn)]
        if name not in takes and elsewhere:  # (its did-you-mean named another option of this route: 'strength')
            what = {VIDEO_ROUTE: " (video jobs)", IMAGE_ROUTE: " (single pictures)"}.get(elsewhere[0], "")
            return (f"query parameter {name!r} is an option of {elsewhere[0]}{what}, not of this endpoint; "
                    f"this endpoint takes {', '.join(takes)}")
        if name not in takes:
            close = difflib.get_close_matches(name, takes, n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else f"; this endpoint takes {', '.join(takes)}"
            return f"unknown query parameter {name!r}{guess}"
    return None


def _register_gauges(metrics, state: dict) -> None:
    def queue():
        b = state.get("batcher")
        return [((), float(b.depth))] if b else []

    def jobs():
        j = state.get("jobs")
        return [((("state", k),), float(v)) for k, v in sorted(j.counts().items())] if j else []

    def memory():
        out = []
        try:
            import psutil

            out.append(((("device", "host"), ("kind", "rss")), float(psutil.Process(os.getpid()).memory_info().rss)))
        except ImportError:
            pass
        models = state.get("models")
        import torch

        for dev in (models.devices() if models else []):
            if dev.startswith("cuda") and torch.cuda.is_available():
                out.append(((("device", dev), ("kind", "allocated")), float(torch.cuda.memory_allocated(dev))))
                out.append(((("device", dev), ("kind", "reserved")), float(torch.cuda.memory_reserved(dev))))
        return out

    def waiting():
        return [((("device", d),), float(s.waiting)) for d, s in sorted((state.get("schedulers") or {}).items())]

    metrics.gauge("stream_gpen_image_queue_depth", "image requests waiting for the model", queue)
    metrics.gauge("stream_gpen_video_jobs", "video jobs by state", jobs)
    metrics.gauge("stream_gpen_memory_bytes", "process RSS and device memory", memory)
    metrics.gauge("stream_gpen_device_waiters", "image batches waiting for the device lock", waiting)
