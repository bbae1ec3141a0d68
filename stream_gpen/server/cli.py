"""``stream-gpen serve``: the HTTP API and live page (registered by :mod:`stream_gpen.cli`).

``add_serve(subparsers)`` creates the parser; ``_run_serve(args) -> int`` builds the model first
(so a missing checkpoint is the usual one-line error and exit code 3, not a traceback from a
server thread) and then runs uvicorn until Ctrl-C.
"""
from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import re

from stream_gpen.errors import InvalidInputError

log = logging.getLogger("stream_gpen.cli")

API_KEY_ENV = "STREAM_GPEN_API_KEY"


def _finite(text: str) -> float:
    # (nan and inf passed the range checks: --max-upload-mb nan was an internal error, and
    # --batch-wait-ms inf a server that never answered an image request)
    from stream_gpen.commands import _number

    try:
        v = _number(float, text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    v = _finite(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {v:g}")
    return v


def _nonneg_float(text: str) -> float:
    v = _finite(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {v:g}")
    return v


def _pixels(text: str) -> int:
    """A positive whole number of pixels, also written as ``40e6`` (as the help writes the default)."""
    from stream_gpen.commands import _number

    try:
        v = _number(float, text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels, got {text!r}") from None
    if not math.isfinite(v) or v < 1 or v != int(v):
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels >= 1, got {text!r}")
    return int(v)


def _root_path(text: str) -> str:
    """``--root-path``: the path a reverse proxy serves this server under (``/gpen``); "" for none.
    (uvicorn puts it in each request's path as ASCII: a non-ASCII one failed every request.)"""
    if text in ("", "/"):
        return ""
    if not re.fullmatch(r"(/[\w.~%+-]+)+", text, flags=re.ASCII):
        raise argparse.ArgumentTypeError(f"expected a path such as /gpen (a leading /, no trailing /, ASCII letters, "
                                         f"digits and . _ ~ % + -), got {text!r}")
    return text


def add_serve(subparsers, parents=()) -> None:
    from stream_gpen.commands import _in_range, _model_options, _named, _positive_int

    p = subparsers.add_parser(
        "serve", parents=list(parents),
        help="HTTP API and live web page",
        description="Serve the HTTP API (OpenAPI docs at /docs) and the live camera page at /. "
        "Binds 127.0.0.1 unless --host says otherwise.",
    )
    _model_options(p)
    s = p.add_argument_group("server")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 = every interface)")
    s.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests whose Host header names NAME (repeatable; * = any): a server on "
                   "127.0.0.1 answers to localhost, 127.0.0.1 and [::1] only, so a web page cannot reach it by a "
                   "name of its own (DNS rebinding); one bound to another address answers to any name unless "
                   "this is given")
    s.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="let pages of ORIGIN (https://app.example:8443; repeatable; * = any) POST, DELETE and "
                   "open /v1/live, with CORS answers for them; other sites' pages are refused (403), "
                   "clients that send no Origin (curl, scripts) never are")
    s.add_argument("--port", type=_in_range(int, 1, 65535), default=8000, help="TCP port (default 8000)")
    s.add_argument("--api-key", default=None,
                   help=f"require this key on /v1 and /metrics (default: ${API_KEY_ENV}, else none)")
    s.add_argument("--max-upload-mb", type=_positive_float, default=25.0,
                   help="largest image body and JPEG live frame (default 25; of a multipart form, its file; a raw "
                        "RGBA live frame may be as large as a 4K one, 33 MB, whatever this is)")
    s.add_argument("--max-video-mb", type=_positive_float, default=2048.0, help="largest video upload (default 2048)")
    s.add_argument("--max-pixels", type=_pixels, default=40_000_000,
                   help="refuse larger images before decoding them (default 40e6)")
    s.add_argument("--max-batch", type=_positive_int, default=8,
                   help="most image requests per model call (default 8; 1 = no batching; a /v1/live frame goes through "
                   "its connection's face tracker alone)")
    # (at most a minute: 1e13 killed the batcher thread, every image request 503)
    s.add_argument("--batch-wait-ms", type=_in_range(float, 0, 60_000), default=5.0,
                   help="how long a request waits for others to batch with (default 5; 0 = never wait)")
    s.add_argument("--max-queue", type=_positive_int, default=64,
                   help="image requests waiting beyond this get 429 (default 64); also bounds those in flight "
                   "(read, decoded, queued or run) to --max-batch + --max-queue, each up to ~12 bytes a pixel")
    s.add_argument("--max-jobs", type=_positive_int, default=8, help="video jobs uploading, queued or running at once (default 8)")
    s.add_argument("--request-timeout", type=_positive_float, default=120.0,
                   help="seconds before an image request gets 503 (default 120); also the most an upload may stall, "
                   "and the time an image body has to arrive whole (408)")
    s.add_argument("--min-upload-rate", type=_nonneg_float, default=10.0, metavar="KB_S",
                   help="past its first --request-timeout, an upload slower than this many KB/s on average gets "
                   "408 (default 10; 0 = no limit): a video upload holds a --max-jobs place while it arrives, and "
                   "one trickled a byte at a time held it for ever")
    s.add_argument("--job-ttl", type=_positive_float, default=3600.0,
                   help="seconds a finished video result is kept while the server runs (default 3600); "
                   "jobs live in its memory, so a restart ends them all")
    s.add_argument("--work-dir", default=None, type=_named,
                   help="where uploads and results live while the server runs (a fast disk with room for "
                   "--max-jobs uploads and results, and for every result finished within --job-ttl: those are not "
                   "counted in --max-jobs); its job folders are removed at exit (default: a temporary folder, "
                   "removed whole, or by the next server if this one is killed)")
    # explicit, never from X-Forwarded-Prefix: a header any client can send would point the
    # page's, /docs' and the job links wherever it names
    s.add_argument("--root-path", type=_root_path, default="", metavar="PREFIX",
                   help="the path a reverse proxy serves this server under, e.g. /gpen for https://host/gpen/ "
                   "(the proxy strips it before passing requests on): /docs, the live page and job links then "
                   "point under it (default: none)")
    s.add_argument("--encoder", default="software", choices=["software", "nvenc", "auto"],
                   help="what encodes video job results: software (CPU, default), nvenc (NVIDIA's hardware "
                   "encoder: L4/L40S/RTX; A100/H100/H200 have none) or auto (NVENC where it works)")
    # uvicorn stops gracefully on SIGTERM (a normal `docker stop`) and, through _server_class, on
    # SIGHUP (a closed terminal); it then re-raises
    # the signal, so the exit status is 143/129 as for other commands): the
    # CLI's turning them into an interrupt (for runs that finalise a .partial) is not for it
    p.set_defaults(run=_run_serve, own_signals=True)


def config_from_args(args: argparse.Namespace):
    from stream_gpen.server._config import MiB, ServerConfig

    # (an empty $STREAM_GPEN_API_KEY, `-e STREAM_GPEN_API_KEY=$KEY` with KEY unset, is refused as a
    # blank one is: it served an open API)
    key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV)
    if key is not None and not key.strip():
        # (the config's "api_key must be a non-empty string or None" named neither)
        if args.api_key is not None:
            raise InvalidInputError("--api-key is empty", hint="give a key, or leave --api-key out for an open API")
        raise InvalidInputError(f"${API_KEY_ENV} is set but blank", hint=f"unset {API_KEY_ENV} for no key, or set a key")
    if key is not None and key != key.strip():
        # a key read from a file (a Kubernetes or Docker secret, `echo key > f`) ends in a newline no
        # client can send (HTTP strips a header value's ends): every request was 401, said nowhere
        log.warning("the API key %s has spaces or a newline at its ends (read from a file?): they are left out",
                    "given" if args.api_key is not None else f"in ${API_KEY_ENV}")
        key = key.strip()
    return ServerConfig(
        api_key=key,
        max_upload_bytes=int(args.max_upload_mb * MiB),
        max_video_bytes=int(args.max_video_mb * MiB),
        max_pixels=args.max_pixels,
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
        max_queue=args.max_queue,
        max_jobs=args.max_jobs,
        request_timeout_s=args.request_timeout,
        min_upload_bytes_per_s=int(args.min_upload_rate * 1024),
        job_ttl_s=args.job_ttl,
        work_dir=args.work_dir,
        host=args.host,
        encoder=getattr(args, "encoder", "software"),
        allowed_hosts=_allowed_hosts(args.host, getattr(args, "allow_host", [])),
        allowed_origins=tuple(getattr(args, "allow_origin", [])),
    )


def _allowed_hosts(host: str, extra: list[str]) -> tuple[str, ...] | None:
    """The ``Host`` names ``serve --host HOST --allow-host ...`` answers to (None: any): on loopback
    the loopback names (a page of another name resolving to 127.0.0.1 used the whole API); bound
    elsewhere, any name unless ``--allow-host`` lists them."""
    from stream_gpen.server._config import LOOPBACK_NAMES, ServerConfig

    if "*" in extra or not (extra or ServerConfig(host=host).loopback):
        return None
    return tuple(dict.fromkeys([*LOOPBACK_NAMES, host, *extra]))


def _run_serve(args: argparse.Namespace) -> int:
    import importlib.util

    # (websockets: the live page's socket; python-multipart, module python_multipart, in older
    # ones multipart: without it the server started and answered every upload with a 500)
    for module, package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn"), ("websockets", "websockets"),
                            (("python_multipart", "multipart"), "python-multipart")):
        names = module if isinstance(module, tuple) else (module,)
        if not any(importlib.util.find_spec(n) for n in names):
            raise InvalidInputError(f"`serve` needs the server extra ({package} is missing)",
                                    hint="pip install -e '.[server]' in a checkout (make install does), or pip "
                                    "install fastapi uvicorn python-multipart websockets")
    import uvicorn

    from stream_gpen.commands import _check_face_options
    from stream_gpen.server._app import create_app
    from stream_gpen.server._config import live_message_limit

    _check_face_options(args)  # (refused as enhance and camera refuse it)
    config = config_from_args(args)
    _check_port(args.host, args.port)  # before the model loads: a busy port is said in one line
    if config.work_dir is not None:
        _check_work_dir(config.work_dir)
    if config.encoder == "nvenc":  # fail at start, not at the first video job
        from stream_gpen.io._sink import resolve_encoder

        resolve_encoder("nvenc", "h264")
    enh = _serve_enhancer(args)  # weights errors surface here, before the port is bound
    app = create_app(enh, config=config)
    host = f"[{args.host}]" if ":" in args.host else args.host  # (an IPv6 address, as a URL writes it)
    root = args.root_path
    log.info("serving %s on http://%s:%d (%sdocs at %s/docs, live page at %s/)", enh.model_name, host, args.port,
             f"behind a proxy at {root}: " if root else "", root, root)
    server = _server_class()(uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", root_path=root,
        ws_max_size=live_message_limit(config),
        # live frames are JPEG or raw pixels: deflating a 1080p RGBA answer took ~1 s on the event
        # loop, every request stalled meanwhile (server23), and a JPEG does not shrink
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=10,
    ))
    try:
        server.run()
    except SystemExit as e:  # uvicorn's bind failure (sys.exit(1)): say it as ours
        if e.code in (0, None):
            return 0
        started = False
    else:
        started = server.started
    if not started:  # (also a failed start-up: uvicorn has logged why)
        raise InvalidInputError(f"the server could not start on {args.host}:{args.port} (see the error above)",
                                hint="another program may hold the port: pick another --port")
    return 0


def _serve_enhancer(args: argparse.Namespace):
    """The served Enhancer. ``--aligned`` is the requests' default, which each may turn off
    (``?aligned=false``): given ``--mask parse`` or a detection option (``--faces``,
    ``--detector-weights``...), such requests are evidently meant, so the Enhancer is built for
    both (its detector and parser loaded, their weights errors said before the port is bound, the
    options used: they were said to be unused, and a request that turned aligned off pasted with
    the feather mask for want of a parser), then made aligned, as a server view of it with
    ``?aligned=true`` is. Without them it is built aligned, its detector loaded on the first
    request that turns aligned off: a server for aligned crops needs no detector weights offline,
    nor downloads ResNet-50's 104 MB on CUDA that it may never use (such a request without them is
    answered 503 with how to get them)."""
    from stream_gpen import commands
    from stream_gpen.api import detection_options_given

    aligned = bool(getattr(args, "aligned", False))
    eager = False
    if aligned:
        options = commands._enhancer_options(args)
        eager = options["mask"] == "parse" or bool(detection_options_given(**{k: options[k] for k in (
            "faces", "max_faces", "min_face", "min_score", "detect_size", "detect_every", "check_landmarks",
            "smooth_lag", "detector", "detector_weights")}))
    args.aligned = aligned and not eager
    enh = commands._make_enhancer(args)
    if eager:
        enh.aligned = True
    elif aligned:
        _say_detector_later(enh, download=not args.no_download)
    return enh


def _say_detector_later(enh, *, download: bool) -> None:
    """Say once, at start-up, what a request with ``?aligned=false`` to ``serve --aligned`` needs:
    the detector's weights, loaded (or downloaded) on the first such request; where they are not
    here and may not be downloaded, such requests are answered 503 until they are put there: by
    ``stream-gpen weights download`` (``--no-download``), or offline (``STREAM_GPEN_OFFLINE``,
    where that command fails too) by hand, at the path named."""
    from stream_gpen.faces._detector import weights_name
    from stream_gpen.weights import by_hand, candidates, get_weight_file, offline

    name = weights_name("auto", enh.device)
    wf = get_weight_file(name)
    if candidates(wf):
        log.info("requests with ?aligned=false load the face detector (%s) on first use", name)
    elif download and not offline():
        log.info("requests with ?aligned=false need the face detector's weights (%s): the first such request "
                 "downloads them", name)
    else:
        put = (f"the file is in place: {by_hand(wf)}" if offline()
               else f"`stream-gpen weights download {name}` puts them in the cache")
        log.warning("requests with ?aligned=false need the face detector's weights (%s), which are not here and may "
                    "not be downloaded: they are answered 503 until %s (or restart with --detector-weights PATH)",
                    name, put)


def _server_class():
    """``uvicorn.Server`` that tells the app's job manager and image batcher as soon as a stop
    signal arrives.

    uvicorn runs the app's shutdown only after open requests have drained (up to its graceful
    timeout); without this, an upload finishing in that window would get 202 for a job the exit
    then drops, and queued image requests were run until that timeout cancelled their handlers:
    no answer at all (40 requests, SIGTERM: 30 "Remote end closed connection without response"
    after 15.6 s). Now both get 503 "the server is shutting down" with Retry-After and can go
    elsewhere; the image batch being run finishes and is answered.
    """
    import contextlib
    import signal
    import threading

    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            # uvicorn catches SIGINT and SIGTERM only: SIGHUP (a closed terminal, a dropped SSH
            # session) kept its default action and killed the server at once, cutting requests
            # and leaving the job folders and the lock behind. It drains the same way now; the
            # handler is put back before uvicorn re-raises the signal, so the exit status is 129.
            hup = getattr(signal, "SIGHUP", None)  # (not on Windows)
            with super().capture_signals():
                # (nohup, or a shell's `&`, started it with SIGHUP ignored: so it stays, or a
                # `nohup stream-gpen serve &` stopped when its SSH session ended)
                if (hup is None or threading.current_thread() is not threading.main_thread()
                        or signal.getsignal(hup) == signal.SIG_IGN):
                    yield
                    return
                old = signal.signal(hup, self.handle_exit)
                try:
                    yield
                finally:
                    signal.signal(hup, old)

        def handle_exit(self, sig, frame) -> None:
            runtime = getattr(getattr(self.config.app, "state", None), "runtime", None) or {}
            jobs = runtime.get("jobs")
            if jobs is not None:
                jobs.stop_accepting()
            super().handle_exit(sig, frame)

        async def shutdown(self, sockets=None) -> None:
            # (here, on the event loop, not in handle_exit: the batcher takes its queue's lock and
            # answers futures, which the signal handler may have interrupted the main thread in the
            # middle of; uvicorn comes here within 0.1 s of the signal, before it waits for open
            # requests)
            runtime = getattr(getattr(self.config.app, "state", None), "runtime", None) or {}
            batcher = runtime.get("batcher")
            if batcher is not None:
                batcher.stop_accepting()
            await super().shutdown(sockets=sockets)

    return _Server


def _check_work_dir(path) -> None:
    """``--work-dir`` usable before the model loads: a file there, or a folder that cannot be
    made or written, failed inside uvicorn's start-up after "serving ... on http://..." with a
    traceback and a hint about the port."""
    import tempfile
    from pathlib import Path

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InvalidInputError(f"--work-dir {p} is a file, not a folder", hint="name a folder (it is created if missing)")
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".probe-"):
            pass
    except OSError as e:
        raise InvalidInputError(f"--work-dir {p} cannot be used: {e.strerror or e}",
                                hint="name a writable folder with room for uploads and results") from e


#: the hint of a --host this machine cannot listen on
_HOST_HINT = ("--host takes an address of this machine: 127.0.0.1 (this machine only, the default), 0.0.0.0 "
              "(every network interface) or one of its own addresses (ip addr, ifconfig or ipconfig list them)")


def _check_port(host: str, port: int) -> None:
    """Refuse a ``host:port`` this process cannot listen on (in use, not an address of this
    machine, a privileged port), with the reason, before minutes of model loading."""
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise InvalidInputError(f"--host {host}: not an address this machine has ({e.strerror})",
                                hint=_HOST_HINT) from None
    for family, kind, proto, _, addr in infos[:1]:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                sock.bind(addr)
            except OSError as e:
                raise InvalidInputError(f"cannot listen on {host}:{port}: {e.strerror}",
                                        hint="another program (or server) may hold the port: pick another "
                                        "--port" if e.errno == errno.EADDRINUSE
                                        else "ports below 1024 need root: pick --port 1024 or above (default 8000)"
                                        if e.errno == errno.EACCES and port < 1024
                                        else _HOST_HINT if e.errno == errno.EADDRNOTAVAIL
                                        else "pick another --host or --port") from None
