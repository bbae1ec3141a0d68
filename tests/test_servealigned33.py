"""Hunt 33 (serve --aligned): a server for aligned crops starts without the face detector's
weights; its requests with ``?aligned=false`` load the detector on first use, and are answered
503 with how to get its weights while it is not there."""
from __future__ import annotations

import io
import re
import shutil

import numpy as np
import pytest

from _doubles import served_enhancer
from stream_gpen.cli import main


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _faces_restored(client) -> int:
    text = client.get("/metrics").text
    return int(re.search(r"^stream_gpen_faces_restored_total (\d+)", text, re.M).group(1))


def test_serve_aligned_starts_without_the_detector(tmp_path, monkeypatch, tiny_ckpt, mobilenet_weights, shared, capsys):
    """hunt 33: ``serve --aligned`` offline with no detector weights in the cache failed to start
    (its Enhancer was built unaligned, the detector loaded at start-up; on CUDA it downloaded
    ResNet-50's 104 MB an aligned-only server never uses). Now it starts, says once that
    ?aligned=false requests need the detector's weights, answers those 503 with how to get them,
    and loads the detector on the first such request once the weights are there."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from PIL import Image

    from stream_gpen.server import ServerConfig, create_app

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("STREAM_GPEN_HOME", str(home))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    enh = served_enhancer(monkeypatch, ["--model", str(tiny_ckpt), "--device", "cpu", "--aligned"])
    assert enh.aligned and enh._detector_box[0] is None
    said = [line for line in capsys.readouterr().err.splitlines() if "?aligned=false" in line]
    assert len(said) == 1 and f"save it as {home / mobilenet_weights.name}" in said[0], said

    face = np.asarray(Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB"))
    with TestClient(create_app(enh, config=ServerConfig(batch_wait_ms=0))) as c:
        assert c.get("/v1/models").json()["models"][0]["aligned"] is True
        r = c.post("/v1/images:enhance", content=_png(np.full((64, 64, 3), 128, np.uint8)),
                   headers={"Content-Type": "image/png"})
        assert r.status_code == 200 and r.headers["x-aligned"] == "true", r.text

        r = c.post("/v1/images:enhance", content=_png(face), params={"aligned": "false"},
                   headers={"Content-Type": "image/png"})
        assert r.status_code == 503 and r.json()["error"] == "WeightsNotFoundError", r.text
        assert "retinaface-mobilenet0.25" in r.json()["detail"] + r.json().get("hint", ""), r.text

        shutil.copy(mobilenet_weights, home / mobilenet_weights.name)  # (no restart needed)
        before = _faces_restored(c)
        r = c.post("/v1/images:enhance", content=_png(face), params={"aligned": "false"},
                   headers={"Content-Type": "image/png"})
        assert r.status_code == 200 and r.headers["x-aligned"] == "false", r.text
        assert _faces_restored(c) > before
        assert enh._detector_box[0] is not None


def test_serve_aligned_with_detection_options_loads_the_detector_at_start(tmp_path, monkeypatch, tiny_ckpt, capsys):
    """Given a detection option (or --mask parse) the ?aligned=false requests are meant: the
    detector is loaded at start-up, and its weights missing offline are said before the port is
    bound, as before."""
    from stream_gpen.server import _app
    from stream_gpen.server import cli as server_cli

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("STREAM_GPEN_HOME", str(home))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    monkeypatch.setattr(_app, "create_app", lambda *a, **k: pytest.fail("the server was built"))
    monkeypatch.setattr(server_cli, "_check_port", lambda *a: None)
    assert main(["serve", "--model", str(tiny_ckpt), "--device", "cpu", "--aligned", "--faces", "largest"]) == 3
    assert "retinaface-mobilenet0.25" in capsys.readouterr().err
