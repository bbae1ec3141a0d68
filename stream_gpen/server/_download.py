"""A finished video job's result as an HTTP answer, sent from a file opened before the answer starts.

Starlette's ``FileResponse`` takes a path: it stats the file, sends the status line and headers, and
only then opens it. A DELETE of the job (or its ``--job-ttl`` expiry) between the two removed the
file, and the client got a 200 with a Content-Length and no body (the server: "Too little data for
declared Content-Length"). Here the file is opened first, and its size, Last-Modified and ETag
come from the open file: the answer is built only once the file is held, and an open file stays
readable after its folder is removed (POSIX), so a download that started is sent whole.

Range (one range or several, as ``multipart/byteranges``), If-Range, HEAD and the ETag are kept as
Starlette's ``FileResponse`` answers them (the same ETag, so a client's saved one still matches); a
conditional GET (If-None-Match, If-Modified-Since) of an unchanged result is a 304.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response, StreamingResponse

CHUNK = 256 * 1024
MAX_RANGES = 100  # more in one request: the whole file (a client asking for 1000 pieces gets one)
_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def open_result(path: Path):
    """``path`` opened for reading, with its ``os.stat_result``; FileNotFoundError if it is gone."""
    f = open(path, "rb")  # noqa: SIM115 (the answer owns it and closes it when sent)
    try:
        return f, os.fstat(f.fileno())
    except BaseException:
        f.close()
        raise


def _ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The ``Range`` header's byte ranges as sorted, merged [start, end) pairs within ``size``;
    None for "send the whole file" (no header, a malformed one: RFC 9110 says it is ignored, or too
    many ranges); [] when none of them is satisfiable (416)."""
    if header is None:
        return None
    text = header.strip()
    if not text.lower().startswith("bytes="):
        return None
    specs = text[6:].split(",")
    if len(specs) > MAX_RANGES:
        return None
    out = []
    for spec in specs:
        m = _SPEC.match(spec)
        if m is None or not (m.group(1) or m.group(2)):
            return None
        first, last = m.group(1), m.group(2)
        if first:
            start, end = int(first), (int(last) + 1 if last else size)
            if last and int(last) < start:
                return None
        else:
            start, end = max(size - int(last), 0), size
        end = min(end, size)
        if start < end:  # (a range starting past the end, or a zero suffix: not satisfiable)
            out.append((start, end))
    out.sort()
    merged: list[tuple[int, int]] = []
    for start, end in out:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _not_modified(headers, etag: str, mtime: float) -> bool:
    """RFC 9110 13.2.2: If-None-Match (weak comparison) decides when sent; else If-Modified-Since."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = [t.strip() for t in if_none_match.split(",")]
        return "*" in tags or etag in [t.removeprefix("W/") for t in tags]
    since = headers.get("if-modified-since")
    if since is None:
        return False
    try:
        return int(mtime) <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False  # not a date: ignored


def result_response(f: BinaryIO, st: os.stat_result, request, *, media_type: str, filename: str):
    """The answer to GET/HEAD ``request`` for the open file ``f`` (``st``: its fstat); the answer
    owns ``f`` and closes it once sent (or at once when it sends no body from it)."""
    size = st.st_size
    modified = formatdate(st.st_mtime, usegmt=True)
    # (Starlette's FileResponse ETag, kept: a client's saved one still matches)
    etag = '"' + hashlib.md5(f"{st.st_mtime}-{size}".encode(), usedforsecurity=False).hexdigest() + '"'
    headers = {"accept-ranges": "bytes", "content-disposition": f'attachment; filename="{filename}"',
               "last-modified": modified, "etag": etag}
    asked = Headers(scope=request.scope)
    head = request.method == "HEAD"

    if _not_modified(asked, etag, st.st_mtime):
        f.close()
        return Response(status_code=304, headers={"etag": etag})
    if_range = asked.get("if-range")
    ranges = None
    if if_range is None or (not if_range.startswith("W/") and if_range in (etag, modified)):
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
