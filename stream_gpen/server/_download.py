"""A finished video job's result as an HTTP answer, sent from a file opened before the answer starts.

Starlette's ``FileResponse`` takes a path: it stats the file, sends the status line and headers, and
only then opens it. A DELETE of the job (or its ``--job-ttl`` expiry) between the two removed the
file, and the client got a 200 with a Content-Length and no body (the server: "Too little data for
declared Content-Length"). Here the file is opened first, and its size, Last-Modified and ETag
come from the open file: the answer is built only once the file is held, and an open file stays
readable after its folder is removed (POSIX), so a download that started is sent whole.

Range (one range or several, as ``multipart/byteranges``), If-Range, HEAD and the ETag are kept as
Starlette's ``FileResponse`` answers them (the same ETag, so a client's saved one still matches); the
conditional headers are read in RFC 9110 13.2.2's order: If-Match (strong comparison, ``*``: any),
else If-Unmodified-Since, failing: 412; then If-None-Match (weak comparison), else
If-Modified-Since, an unchanged result: 304; then If-Range (the ETag, strong, or the Last-Modified
date exactly). An HTTP date without a zone (or ``-0000``) is GMT, as HTTP dates are.

A Range's empty list elements (``bytes=0-1,,4-5``) are skipped; a last byte past the end is clamped to
it and a number too long for any file is past its end (never a 4300-digit ``int()``: that raised, a
500); ranges that overlap or touch are sent as one part, and the parts of ``multipart/byteranges`` in
the order they were asked for (RFC 9110 14.6), a coalesced one where the first of them was.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from datetime import timezone
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response, StreamingResponse

CHUNK = 256 * 1024
MAX_RANGES = 100  # more in one request: the whole file (a client asking for 1000 pieces gets one)
_SPEC = re.compile(r"^[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*$")  # (ASCII digits only: RFC 9110's DIGIT)
_TAG = re.compile(r'(W/)?("[^"]*")')  # an entity tag in If-Match / If-None-Match: W/ when weak


def open_result(path: Path):
    """``path`` opened for reading, with its ``os.stat_result``; FileNotFoundError if it is gone."""
    f = open(path, "rb")  # noqa: SIM115 (the answer owns it and closes it when sent)
    try:
        return f, os.fstat(f.fileno())
    except BaseException:
        f.close()
        raise


def _number(digits: str, size: int) -> int:
    """A Range's ``digits`` (leading zeros and all) as a number; one with more digits than ``size``
    as ``size + 1``: past the end of the file whatever it is (no ``int()`` of thousands of digits,
    which Python refuses, and which only ever means "past the end")."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= len(str(size)) else size + 1


def _ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The ``Range`` header's byte ranges as [start, end) pairs within ``size``: those that overlap or
    touch merged into one, in the order the client asked for them (a merged one where its first
    was: RFC 9110 14.6). None for "send the whole file" (no header, a malformed one: RFC 9110 says it
    is ignored, or too many ranges); [] when none of them is satisfiable (416)."""
    if header is None:
        return None
    text = header.strip()
    if text[:6].lower() != "bytes=":
        return None
    # (a list's empty elements, "bytes=0-1,,4-5", are allowed and skipped: RFC 9110 5.6.1)
    specs = [spec for spec in text[6:].split(",") if spec.strip(" \t")]
    if not specs or len(specs) > MAX_RANGES:
        return None
    asked = []
    for spec in specs:
        m = _SPEC.match(spec)
        if m is None or not (m.group(1) or m.group(2)):
            return None
        first, last = m.group(1).lstrip("0") or "0", m.group(2).lstrip("0") or "0"
        if m.group(1):
            if m.group(2) and (len(last), last) < (len(first), first):  # (compared as digits: any length)
                return None
            start = _number(first, size)
            end = min(_number(last, size) + 1, size) if m.group(2) else size  # (a last past the end: the end)
        else:
            start, end = max(size - _number(last, size), 0), size
        if start < end:  # (a range starting past the end, or a zero suffix: not satisfiable)
            asked.append((start, end))
    merged: list[list[int]] = []  # [start, end, the index of its first range in the header]
    for i in sorted(range(len(asked)), key=asked.__getitem__):
        start, end = asked[i]
        if merged and start <= merged[-1][1]:
            merged[-1][1], merged[-1][2] = max(merged[-1][1], end), min(merged[-1][2], i)
        else:
            merged.append([start, end, i])
    return [(start, end) for start, end, _ in sorted(merged, key=lambda part: part[2])]


def _date(value: str) -> float | None:
    """The HTTP date ``value`` as a Unix time: one without a zone (or with ``-0000``, which
    ``parsedate_to_datetime`` gives as a naive datetime) is GMT, as every HTTP date is, not the
    server's local time; None for what is not a date (the field is then ignored: RFC 9110 13.1)."""
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _names(value: str, etag: str, *, weak: bool) -> bool:
    """Whether an If-Match / If-None-Match ``value`` (``*`` or a list of entity tags) names ``etag``:
    weak comparison (If-None-Match) reads past ``W/``; strong (If-Match) never matches a weak tag."""
    if "*" in [t.strip() for t in value.split(",")]:
        return True  # (the result exists)
    return any(tag == etag and (weak or not w) for w, tag in _TAG.findall(value))


def _precondition_failed(headers, etag: str, mtime: float) -> str | None:
    """RFC 9110 13.2.2 steps 1-2: what a failing If-Match (or, without one, If-Unmodified-Since)
    does not hold, for the 412; None when neither is sent or it holds."""
    if_match = headers.get("if-match")
    if if_match is not None:
        if _names(if_match, etag, weak=False):
            return None
        return f"If-Match {if_match.strip()} does not name the result's ETag {etag}"
    since = headers.get("if-unmodified-since")
    when = None if since is None else _date(since)
    if when is None or int(mtime) <= when:
        return None  # (not sent, or not a date: ignored)
    return f"the result was modified at {formatdate(mtime, usegmt=True)}, after If-Unmodified-Since {since.strip()}"


def _not_modified(headers, etag: str, mtime: float) -> bool:
    """RFC 9110 13.2.2: If-None-Match (weak comparison) decides when sent; else If-Modified-Since."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return _names(if_none_match, etag, weak=True)
    since = headers.get("if-modified-since")
    when = None if since is None else _date(since)
    return when is not None and int(mtime) <= when  # (not a date: ignored)


def result_response(f: BinaryIO, st: os.stat_result, request, *, media_type: str, filename: str):
    """The answer to GET/HEAD ``request`` for the open file ``f`` (``st``: its fstat); the answer
    owns ``f`` and closes it once sent (or cut off), and at once when it sends no body from it (304,
    412, 416) or this raises."""
    try:
        return _answer(f, st, request, media_type=media_type, filename=filename)
    except BaseException:
        f.close()
        raise


def _answer(f: BinaryIO, st: os.stat_result, request, *, media_type: str, filename: str):
    from stream_gpen.server._app import PreconditionFailedError

    size = st.st_size
    modified = formatdate(st.st_mtime, usegmt=True)
    # (Starlette's FileResponse ETag, kept: a client's saved one still matches)
    etag = '"' + hashlib.md5(f"{st.st_mtime}-{size}".encode(), usedforsecurity=False).hexdigest() + '"'
    headers = {"accept-ranges": "bytes", "content-disposition": f'attachment; filename="{filename}"',
               "last-modified": modified, "etag": etag}
    asked = Headers(scope=request.scope)
    head = request.method == "HEAD"

    failed = _precondition_failed(asked, etag, st.st_mtime)
    if failed is not None:
        raise PreconditionFailedError(failed, hint=f"GET the result without the condition to have it as it is now "
                                                   f"(ETag {etag}, Last-Modified {modified})")
    if _not_modified(asked, etag, st.st_mtime):
        f.close()
        return Response(status_code=304, headers={"etag": etag})
    if_range = asked.get("if-range")
    ranges = None
    # (If-Range: the ETag by strong comparison, or the Last-Modified date exactly: RFC 9110 13.1.5)
    if if_range is None or (not if_range.strip().startswith("W/") and if_range.strip() in (etag, modified)):
        ranges = _ranges(asked.get("range"), size)
    if ranges == []:
        f.close()
        return JSONResponse({"detail": f"the range asked for is not in the result ({size} bytes)",
                             "error": "RangeNotSatisfiableError"},
                            status_code=416, headers={"content-range": f"bytes */{size}"})

    status, length, boundary, part_head = 200, size, "", {}
    if ranges is not None and len(ranges) == 1:
        (start, end), status = ranges[0], 206
        headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
        length = end - start
    elif ranges is not None:
        status, boundary = 206, secrets.token_hex(13)
        part_head = {(start, end): (f"--{boundary}\r\nContent-Type: {media_type}\r\n"
                                    f"Content-Range: bytes {start}-{end - 1}/{size}\r\n\r\n").encode("latin-1")
                     for start, end in ranges}
        length = sum(len(head) + end - start + 2 for (start, end), head in part_head.items()) + len(boundary) + 4
        media_type = f"multipart/byteranges; boundary={boundary}"
    headers["content-length"] = str(length)

    def read(start: int, n: int) -> bytes:
        f.seek(start)
        return f.read(n)

    async def body() -> AsyncIterator[bytes]:
        from anyio import to_thread

        for start, end in ranges or [(0, size)]:
            if boundary:
                yield part_head[start, end]
            while start < end:
                chunk = await to_thread.run_sync(read, start, min(CHUNK, end - start))
                if not chunk:
                    raise RuntimeError(f"the result {filename} became shorter while it was sent")
                start += len(chunk)
                yield chunk
            if boundary:
                yield b"\r\n"
        if boundary:
            yield f"--{boundary}--".encode("latin-1")

    return _FileAnswer(f, _nothing() if head else body(), status_code=status, headers=headers,
                       media_type=media_type)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield


class _FileAnswer(StreamingResponse):
    """A streamed answer that closes its open file when it has been sent (or cut off)."""

    def __init__(self, f: BinaryIO, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self._file = f

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._file.close()
