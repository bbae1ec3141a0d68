"""Hunt 33 (options): options that meet each other — a photo's encoder options checked for every
encoder, ..."""
from __future__ import annotations

import json
import re

import pytest

from stream_gpen import InvalidInputError
from stream_gpen.cli import main


# --- 1. a photo's --crf/--preset are checked for every --encoder, as a video's are ---------------

@pytest.mark.parametrize("encoder, crf, said", [
    ("auto", 60, "crf=60 for codec='h264'"),  # (software or NVENC here: both take at most 51)
    ("nvenc", 60, "crf=60 for codec='h264' with encoder='nvenc' must be within 1..51"),
    ("nvenc", 0, "crf=0 with encoder='nvenc'"),
])
def test_a_photo_crf_is_checked_for_every_encoder(tmp_path, enh, face, cli_env, capsys, encoder, crf, said):
    """hunt 33: ``enhance photo.jpg --crf 60 --encoder auto`` (or nvenc, or nvenc's --crf 0) only
    said the options were unused, exit 0, where the same command for a video is refused: only
    --encoder software's were checked; the API's enhance_file likewise."""
    photo = tmp_path / "a.jpg"
    face.save(photo)
    with pytest.raises(InvalidInputError, match=re.escape(said)):
        enh.enhance_file(photo, tmp_path / "b.jpg", encoder=encoder, crf=crf)
    assert main(["enhance", str(photo), "-o", str(tmp_path / "c.jpg"), "--encoder", encoder, "--crf", str(crf),
                 *cli_env]) == 2
    assert f"--crf {crf} " in capsys.readouterr().err
    assert not (tmp_path / "b.jpg").exists() and not (tmp_path / "c.jpg").exists()


# --- 2. --mask parse with --aligned: the mask used is said, not the one asked for ---------------

def test_aligned_runs_report_the_mask_they_use(tmp_path, face, cli_env, capsys, mobilenet_weights):
    """hunt 33: with --aligned --mask parse (parse is not used: each crop is restored whole, as a
    note says) the summary said "parse paste mask (0 faces parsed)", the report "mask": "parse",
    and camera warned that --mask parse on a CPU costs seconds per face."""
    import json
    import os

    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    enh = Enhancer(IdentityRestorer(), device="cpu", aligned=True, mask="parse", progress=False)
    assert enh.parser is None and enh.paste_mask == "feather"
    photo = tmp_path / "a.png"
    face.save(photo)
    s = enh.enhance_file(photo, tmp_path / "b.png")
    assert s.mask == "feather" and "paste mask" not in s.format()
    report = tmp_path / "r.json"
    assert main(["camera", "lavfi:testsrc2=size=64x64:rate=5", "-o", os.devnull, "--frames", "2", "--aligned",
                 "--mask", "parse", "--report", str(report), *cli_env]) == 0
    err = capsys.readouterr().err
    assert "--mask parse is not used with --aligned" in err and "costs seconds per face" not in err, err
    assert json.loads(report.read_text())["mask"] == "feather"


# --- 3. --copy-if-no-faces of an input that is no file: said, not tried -----------------------

def test_copy_if_no_faces_of_a_graph_or_a_pipe_keeps_the_re_encode_and_says_why(tmp_path, enh):
    """hunt 33: a lavfi: graph or a pipe (/dev/stdin, a FIFO) with copy_if_no_faces=True was
    reopened by name for the copy: "stream copy impossible (... No such file or directory)" or
    "Invalid data". Now the re-encode is kept with a note that says why no copy is made."""
    import os
    import threading

    import numpy as np
    from _clips import write_video

    s = enh.enhance_file("lavfi:testsrc2=size=64x64:rate=5:duration=1", tmp_path / "g.mp4", copy_if_no_faces=True)
    assert s.frames_out == 5 and s.encoder != "copy"
    assert any("stream copy impossible (a lavfi: graph is generated, there is no file to copy)" in f
               for f in s.fallbacks), s.fallbacks

    clip = write_video(tmp_path / "c.mkv", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(4)])
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as w:
            w.write(clip.read_bytes())

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    s = enh.enhance_file(fifo, tmp_path / "p.mkv", copy_if_no_faces=True)
    writer.join(10)
    assert s.frames_out == 4 and s.encoder != "copy"
    assert any(f"stream copy impossible ({fifo} is a pipe or device, read up by the run)" in f
               for f in s.fallbacks), s.fallbacks


# --- 4. a photo copied as it is (no face) says that its --quality was not used -----------------

def test_a_copied_photo_says_its_quality_was_unused(tmp_path, enh, cli_env, capsys, monkeypatch):
    """hunt 33: enhance noface.jpg --quality 30 copied the photo byte for byte, saying nothing of
    the quality asked for; the summary's fallbacks neither."""
    import numpy as np
    from PIL import Image

    from stream_gpen.io._image import ImageSink

    monkeypatch.setattr(ImageSink, "copy_unchanged", True)  # (the suite turns the copy off)

    src = tmp_path / "noface.jpg"
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(src, quality=92)
    s = enh.enhance_file(src, tmp_path / "a.jpg", quality=30)
    assert (tmp_path / "a.jpg").read_bytes() == src.read_bytes()
    said = "quality=30 (--quality) is not used for photos in which no face was found"
    assert sum(said in f for f in s.fallbacks) == 1, s.fallbacks
    assert main(["enhance", str(src), "-o", str(tmp_path / "b.jpg"), "--quality", "30", *cli_env]) == 0
    assert "--quality 30 is not used for photos in which no face was found" in capsys.readouterr().err
    assert (tmp_path / "b.jpg").read_bytes() == src.read_bytes()
    s = enh.enhance_file(src, tmp_path / "c.jpg")  # (none asked: nothing said)
    assert not any("quality" in f for f in s.fallbacks), s.fallbacks


# --- 5. serve --aligned: the requests' default, which each may turn off -------------------------

def test_serve_aligned_is_the_requests_default(tmp_path, monkeypatch, det_home, mobilenet_weights, tiny_ckpt, caplog):
    """hunt 33: ``serve --aligned`` was ignored by every request that did not say ?aligned=true
    (the query defaulted to false), GET /v1/models did not say it, start-up warned that --faces
    is not used with --aligned (requests turning it off use it), and with --mask parse a request
    with ?aligned=false was pasted with the feather mask: the parser had not been loaded."""
    import logging

    import numpy as np
    import torch

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from stream_gpen.faces._parse import build_parsenet
    from _doubles import served_enhancer
    from stream_gpen.server import ServerConfig, create_app
    from stream_gpen.server._models import ModelSet

    weights = tmp_path / "ParseNet-latest.pth"
    torch.save(build_parsenet().state_dict(), weights)
    with caplog.at_level(logging.WARNING):
        enh = served_enhancer(monkeypatch, [
            "--model", str(tiny_ckpt), "--device", "cpu", "--detector-weights", str(mobilenet_weights),
            "--aligned", "--faces", "largest", "--mask", "parse", "--parser-weights", str(weights)])
    assert enh.aligned and enh.parser is not None and "not used with" not in caplog.text, caplog.text
    models = ModelSet({"m": enh})
    assert models.view().aligned and models.view().paste_mask == "feather"
    assert not models.view(aligned=False).aligned and models.view(aligned=False).paste_mask == "parse"

    with TestClient(create_app(enh, config=ServerConfig(api_key="k3y", batch_wait_ms=20))) as c:
        assert c.get("/v1/models", headers={"X-API-Key": "k3y"}).json()["models"][0]["aligned"] is True
        png = _png(np.full((64, 64, 3), 128, np.uint8))
        for params, said in (({}, "true"), ({"aligned": "false"}, "false"), ({"aligned": "true"}, "true")):
            r = c.post("/v1/images:enhance", content=png, params=params,
                       headers={"X-API-Key": "k3y", "Content-Type": "image/png"})
            assert r.status_code == 200 and r.headers["x-aligned"] == said, (params, r.text)
        with c.websocket_connect("/v1/live?key=k3y") as ws:
            assert json.loads(ws.receive_text())["aligned"] is True


def _png(arr) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()
