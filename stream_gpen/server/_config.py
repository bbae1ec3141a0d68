"""Server limits and knobs, validated once at construction."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from stream_gpen.errors import InvalidInputError

MiB = 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``stream-gpen serve`` can be told, with the trade-off of each knob.

    * ``api_key``: when set, every ``/v1`` route and ``/metrics`` need it (``X-API-Key`` header or
      ``Authorization: Bearer``; on the WebSocket, which browsers cannot give headers, also the
      subprotocol ``key.<base64url of the key>``, or ``?key=``, which access logs record).
      ``None`` leaves the API open: fine on 127.0.0.1, not on a shared network.
    * ``max_upload_bytes``: largest image request body (and JPEG live frame; a raw RGBA one may be
      as large as a 4K frame, see :func:`live_message_limit`). Bigger allows larger photos but lets
      one client hold more memory. Of a multipart form, the limit is its file's, the body may be
      64 KiB larger (the form's boundaries, headers and fields).
    * ``max_video_bytes``: largest video upload (of a form, its file's, as above); it is streamed
      to disk, so this bounds disk use.
    * ``max_pixels``: images (and live frames) above this many pixels are refused *before*
      decoding, so a small file that decompresses to gigabytes (a "decompression bomb") costs nothing;
      video jobs whose frames are larger fail at open with the same limit, on the size their header
      gives, before any frame is decoded (each frame's size is checked again as it is decoded).
    * ``max_batch``: most image requests run through the model in one call. Higher uses the
      device better under load; each request then waits for the whole batch.
    * ``batch_wait_ms``: how long the batcher waits for more requests after the first one
      arrives. Higher makes fuller batches (throughput) at the price of that much latency on an
      idle server; 0 turns dynamic batching off (batches only form from requests already queued).
    * ``max_queue``: image requests waiting for the model beyond this are refused with 429 and
      ``Retry-After``: a burst gets a fast, clean "later" instead of an ever longer wait. Image
      requests in flight (bodies being read, decoding, queued or in the model) are at most
      ``max_batch + max_queue``: one more gets its 429 before its body is read. That bounds their
      memory: one image costs about 12 bytes a pixel while it is decoded and restored (~0.5 GB
      at the default ``max_pixels``), so the most is about ``(max_batch + max_queue) * 12 *
      max_pixels`` bytes; lower ``max_queue`` or ``max_pixels`` on a small machine.
    * ``max_jobs``: video jobs queued or running beyond this are refused with 429.
    * ``request_timeout_s``: an image request not answered in this time gets 503 (and is dropped
      from the queue if it has not started); also the idle limit while an upload is being read,
      and the time an image body (held in memory) has to arrive whole (408 after it; a video
      upload, streamed to disk, has ``min_upload_bytes_per_s`` instead), and the grace an upload
      has before that rate is held to.
    * ``min_upload_bytes_per_s``: past its first ``request_timeout_s``, an upload must have
      arrived at this average rate at least (``bytes >= rate * (elapsed - request_timeout_s)``;
      408 once it falls behind): a video upload holds a ``max_jobs`` place while it arrives, and
      one sent a byte every few seconds, never idle long enough for the idle limit, held it for
      ever, so a few such clients (slowloris) starved everyone. Higher frees places sooner from
      slow clients and refuses uploads over poor links (the default 10 KiB/s is a 100 MB video in
      under 3 hours); 0 turns it off (a proxy that buffers request bodies, nginx's default, takes
      slow uploads off the server anyway). The place is held while the body arrives, not taken
      once it is whole, because ``max_jobs`` also bounds the disk uploads fill.
    * ``job_ttl_s``: finished video results (and failed/cancelled records) are deleted this long
      after they finish. Longer gives clients more time to fetch them, and holds more disk.
    * ``work_dir``: where uploads and results live (one sub-folder per job, named by the job id,
      never by a client-given name). ``None``: a fresh temporary folder removed at shutdown.
    * ``host``: informational here (the CLI binds it); anything but loopback without an
      ``api_key`` is logged as a warning.
    * ``allowed_hosts``: the names a request's ``Host`` header may give (``localhost``, an address);
      any other gets 403, so a web page whose own name was made to resolve to this machine (DNS
      rebinding) cannot use the API. ``None``: any (what ``serve`` gives a server bound to every
      interface or a public address: clients then use whatever name reaches it). ``serve`` on
      loopback allows the loopback names and ``--allow-host``'s.
    * ``allowed_origins``: web origins (``https://app.example``, or ``*``) besides the server's own
      whose pages may POST, DELETE and open ``/v1/live``, with CORS answers for them. A browser
      request whose ``Origin`` is another site's gets 403 (WebSockets and form posts are not held
      back by the same-origin policy: any page could use the camera socket and queue jobs).
      Clients that send no ``Origin`` (curl, scripts) are not affected.
    * ``encoder``: what encodes video job results: ``"software"`` (the CPU encoders), ``"nvenc"``
      (NVIDIA's hardware encoder: on GPUs that have one, e.g. L4, L40S, RTX, it frees the CPU
      for decoding and the rest; data-centre A100/H100/H200 have none) or ``"auto"`` (NVENC where
      it works, else software, said in each job's summary). See ``FileSink``.
    """

    api_key: str | None = None
    max_upload_bytes: int = 25 * MiB
    max_video_bytes: int = 2048 * MiB
    max_pixels: int = 40_000_000
    max_batch: int = 8
    batch_wait_ms: float = 5.0
    max_queue: int = 64
    max_jobs: int = 8
    request_timeout_s: float = 120.0
    min_upload_bytes_per_s: float = 10 * 1024
    job_ttl_s: float = 3600.0
    work_dir: Path | None = None
    host: str = "127.0.0.1"
    encoder: str = "software"
    allowed_hosts: tuple[str, ...] | None = None
    allowed_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        def positive(name: str, kind=int, zero_ok: bool = False) -> None:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or (kind is int and not isinstance(value, int)):
                raise InvalidInputError(f"{name} must be {'an int' if kind is int else 'a number'}, got {value!r}")
            if value != value or value == float("inf"):
                # (batch_wait_ms=inf killed the batcher thread, nan made it spin)
                raise InvalidInputError(f"{name} must be a finite number, got {value!r}")
            if value < 0 or (value == 0 and not zero_ok):
                raise InvalidInputError(f"{name} must be {'>= 0' if zero_ok else '> 0'}, got {value!r}")

        for name in ("max_upload_bytes", "max_video_bytes", "max_pixels", "max_batch", "max_queue", "max_jobs"):
            positive(name)
        if self.max_pixels > pillow_pixel_limit():
            # (Pillow refuses larger images whatever this says: a 400 MP upload under a 500e6 limit
            # got 413 naming Pillow's limit, server23)
            raise InvalidInputError(
                f"max_pixels (--max-pixels) must be at most {pillow_pixel_limit()}, got {self.max_pixels!r}: "
                "Pillow, which decodes the images, refuses larger ones as decompression bombs")
        positive("batch_wait_ms", float, zero_ok=True)
        if self.batch_wait_ms > 60_000:  # (1e13 overflowed the batcher's wait: every image request 503)
            raise InvalidInputError(f"batch_wait_ms must be at most 60000 (a minute), got {self.batch_wait_ms!r}")
        positive("request_timeout_s", float)
        positive("min_upload_bytes_per_s", float, zero_ok=True)
        positive("job_ttl_s", float)
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key.strip()):
            raise InvalidInputError("api_key must be a non-empty string or None")
        if self.work_dir is not None:
            object.__setattr__(self, "work_dir", Path(self.work_dir))
        if self.allowed_hosts is not None:
            # (a name with a port, "gpen.example:8443", is its name: Host is checked by name only;
            # kept whole it never matched, every request 403 listing that very name as allowed)
            object.__setattr__(self, "allowed_hosts", None if "*" in self.allowed_hosts else tuple(
                (split_host(h) or (_host_name(h), None))[0] for h in self.allowed_hosts))  # ("*": any)
        origins = tuple(o if o == "*" else normal_origin(o) for o in self.allowed_origins)
        if None in origins:
            bad = [o for o, n in zip(self.allowed_origins, origins) if n is None]
            raise InvalidInputError(f"allowed origin {bad[0]!r} is not an origin such as https://app.example:8443 "
                                    f"(a scheme, a host name and an optional port, no path) or *")
        object.__setattr__(self, "allowed_origins", origins)
        from stream_gpen.io._sink import ENCODER_MODES

        if self.encoder not in ENCODER_MODES:
            raise InvalidInputError(f"encoder={self.encoder!r} is not one of {ENCODER_MODES}")

    @property
    def loopback(self) -> bool:
        """True when ``host`` only accepts connections from this machine."""
        if self.host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


#: the names a server bound to loopback answers to (see ``ServerConfig.allowed_hosts``)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _host_name(host: str) -> str:
    """A host name as compared: lower case, no trailing dot, no IPv6 brackets."""
    return host.strip().lower().rstrip(".").strip("[]")


def split_host(value: str) -> tuple[str, int | None] | None:
    """A ``Host`` header (``name``, ``name:port``, ``[::1]:8000``) as (name, port or None); None if
    it is malformed."""
    value = value.strip()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None if not rest else "x"
    elif value.count(":") == 1:
        name, port = value.split(":")
    else:
        name, port = value, None
    if not name or (port is not None and not port.isdigit()):
        return None
    return _host_name(name), int(port) if port is not None else None


def normal_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` as compared (lower case, the scheme's default port left out); None for
    what is no origin (``null``, a path, a missing host)."""
    from urllib.parse import urlsplit

    try:
        u = urlsplit(origin.strip())
        port = u.port
    except ValueError:
        return None
    if u.scheme not in _DEFAULT_PORTS or not u.hostname or u.path not in ("", "/") or u.query or u.fragment:
        return None
    name = _host_name(u.hostname)
    return f"{u.scheme}://{f'[{name}]' if ':' in name else name}" + (
        f":{port}" if port is not None and port != _DEFAULT_PORTS[u.scheme] else "")


def same_origin(origin: str, host: str) -> bool:
    """Whether a browser's ``Origin`` names the site the request's ``Host`` header names (the
    server's own pages: the live page, /docs). A ``Host`` without a port matches the origin's host
    on any port: nginx's ``$host`` leaves the port out, and a page at https://host:8443 behind it had
    its own requests refused as another site's (a page on another host name is still refused)."""
    from urllib.parse import urlsplit

    h = split_host(host)
    try:
        u = urlsplit(origin.strip())
        port = u.port
    except ValueError:
        return False
    if h is None or u.scheme not in _DEFAULT_PORTS or not u.hostname:
        return False
    port = port if port is not None else _DEFAULT_PORTS[u.scheme]
    return _host_name(u.hostname) == h[0] and (h[1] is None or h[1] == port)


#: the raw RGBA live frame every server takes whatever ``max_upload_bytes`` says: 4K (3840x2160)
LIVE_RAW_PIXELS = 3840 * 2160


def pillow_pixel_limit() -> int:
    """The most pixels Pillow opens (twice ``Image.MAX_IMAGE_PIXELS``: over it, ``Image.open`` raises
    ``DecompressionBombError``; ``None`` there: no limit)."""
    from PIL import Image

    m = Image.MAX_IMAGE_PIXELS
    return 2 * int(m) if m else 1 << 62


def live_message_limit(config: ServerConfig) -> int:
    """Largest WebSocket message ``/v1/live`` takes (the server closes the connection with 1009
    beyond it, before the frame can be read): a JPEG frame up to ``max_upload_bytes``, a raw RGBA
    frame (12-byte header, 4 bytes a pixel) up to 4K or ``max_pixels`` if smaller. (It was
    ``max_upload_bytes`` alone: a 4K RGBA frame, 33 MB, closed the connection at the default 25 MB.)"""
    raw = 12 + 4 * min(config.max_pixels, LIVE_RAW_PIXELS)
    return max(config.max_upload_bytes, raw) + 64

