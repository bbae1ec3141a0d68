"""HTTP API and live web page: ``stream-gpen serve`` (needs the ``server`` extra: FastAPI, uvicorn).

::

    from stream_gpen import Enhancer
    from stream_gpen.server import ServerConfig, create_app
    app = create_app(Enhancer("gpen-bfr-256"), config=ServerConfig(api_key="s3cret"))
    # uvicorn.run(app, host="127.0.0.1", port=8000)

Layout: ``_config`` (limits), ``_imaging`` (decode with pixel limits, encode), ``_scheduler``
(one lock per device, shared by image batches and video jobs), ``_batcher`` (dynamic batching of
image requests), ``_jobs`` (video job queue, expiry), ``_download`` (a job's result sent from
the open file: Range, conditional GET), ``_metrics`` (Prometheus text), ``_live``
(WebSocket protocol), ``_app`` (routes), ``cli`` (``add_serve``). Importing this package imports
nothing heavy; FastAPI and torch load when :func:`create_app` is called.
"""
from __future__ import annotations

__all__ = ["ServerConfig", "create_app"]


def __getattr__(name: str):
    if name == "ServerConfig":
        from stream_gpen.server._config import ServerConfig

        return ServerConfig
    if name == "create_app":
        from stream_gpen.server._app import create_app

        return create_app
    raise AttributeError(f"module 'stream_gpen.server' has no attribute {name!r}")
