"""Session 21 (server21): an API key read from a file (its newline) matched no request; an empty
X-API-Key beat a good Bearer token; a 405 said "Allow: HEAD" of GET routes; a compressed body was
"not an image" (or taken and failed later); the queue-full answer counts uploads too."""
from __future__ import annotations

import gzip
import logging

import numpy as np
import pytest

pytest.importorskip("fastapi")

from tests.test_server import KEY, FakeEnhancer, client_for, encode  # noqa: E402


def test_a_key_with_a_newline_at_its_end_is_trimmed(monkeypatch, caplog):
    from stream_gpen.cli import build_parser
    from stream_gpen.server.cli import API_KEY_ENV, config_from_args

    monkeypatch.setenv(API_KEY_ENV, "k3y\n")
    with caplog.at_level(logging.WARNING, logger="stream_gpen.cli"):
        config = config_from_args(build_parser().parse_args(["serve"]))
    assert config.api_key == "k3y" and "newline at its ends" in caplog.text and "k3y" not in caplog.text


def test_an_empty_x_api_key_does_not_hide_a_bearer_token(tmp_path):
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        _bearer(c)


def _bearer(c):
    assert c.get("/v1/models", headers={"X-API-Key": "", "Authorization": "Bearer k3y"}).status_code == 200
    assert c.get("/v1/models", headers={"X-API-Key": "", "Authorization": "Bearer nope"}).status_code == 401
    assert c.get("/v1/models", headers={"X-API-Key": "nope", "Authorization": "Bearer k3y"}).status_code == 401


@pytest.mark.parametrize("path, allow", [("/v1/models", "GET, HEAD"), ("/healthz", "GET, HEAD"),
                                         ("/v1/videos/abc", "GET, HEAD, DELETE"),
                                         ("/v1/images:enhance", "POST")])
def test_a_405_names_every_method_the_path_takes(tmp_path, path, allow):
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        r = c.put(path, headers=KEY, content=b"x")
    assert r.status_code == 405 and r.headers["allow"] == allow and r.json()["error"] == "MethodNotAllowedError"


def test_a_compressed_body_is_refused_as_such(tmp_path):
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        _compressed(c)


def _compressed(c):
    png = encode(np.full((32, 32, 3), 80, np.uint8), "PNG")
    for route, ctype in (("/v1/images:enhance", "image/png"), ("/v1/videos", "video/mp4")):
        r = c.post(route, content=gzip.compress(png),
                   headers={**KEY, "Content-Type": ctype, "Content-Encoding": "gzip"})
        assert r.status_code == 415 and "Content-Encoding gzip is not accepted" in r.json()["detail"], r.text
    r = c.post("/v1/images:enhance", content=png,
               headers={**KEY, "Content-Type": "image/png", "Content-Encoding": "identity"})
    assert r.status_code == 200


def test_the_video_job_answers_are_described_in_the_openapi_schema(tmp_path):
    """server21: the job's JSON was "any" in /openapi.json (a generated client had to guess)."""
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        schema = c.get("/openapi.json").json()
        job = c.post("/v1/videos", content=b"x" * 10, headers={**KEY, "Content-Type": "video/mp4"})
    ref = {"$ref": "#/components/schemas/VideoJob"}
    paths = schema["paths"]
    assert paths["/v1/videos"]["post"]["responses"]["202"]["content"]["application/json"]["schema"] == ref
    assert paths["/v1/videos/{job_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == ref
    described = schema["components"]["schemas"]["VideoJob"]["properties"]
    assert set(job.json()) == set(described), set(job.json()) ^ set(described)
