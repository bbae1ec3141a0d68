"""Session 29 (texts): words a user meets that were wrong or missing.

Server: the image endpoint's ``?format=jpg`` / ``?format=PNG`` were 422; ``?start=1`` there was
"did you mean 'strength'?"; a video job's summary lacked --report's input/output/partial_output.
Camera: an input without a scheme was "not found" in other words than enhance's, after the model
loaded; ``-o recdir/`` "has no extension"; ``-o rec.jpg`` refused once the source had opened;
``--stream`` help named three of its seven schemes; the ranges' hint said "the codec's default"
preset (veryfast there). Small texts: no did-you-mean for a sub-command or ``--model gpen256``;
"this GPU/driver has no NVENC" on a machine with no NVIDIA driver; ``--min-face 30`` said back as
``30.0``; ``info``'s "enhance will  turned upright (EXIF orientation)"; a resumed folder run's
report prefixed its photos' notes with "images: " where the first run's did not.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stream_gpen import commands
from stream_gpen.cli import main

ROOT = Path(__file__).resolve().parents[1]
COOKBOOK = (ROOT / "docs" / "cookbook.md").read_text(encoding="utf-8")


def _png(size=(32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 120, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


# --- server ------------------------------------------------------------------------------------------
@pytest.fixture
def client(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from stream_gpen.server import ServerConfig, create_app
    from tests.test_server import FakeEnhancer

    app = create_app(FakeEnhancer(), config=ServerConfig(api_key="k3y", work_dir=tmp_path))
    with TestClient(app) as c:
        yield c


KEY = {"X-API-Key": "k3y"}
PNG_IN = {**KEY, "Content-Type": "image/png"}


@pytest.mark.parametrize("given, media", [("jpg", "image/jpeg"), ("JPG", "image/jpeg"), ("Jpeg", "image/jpeg"),
                                          ("PNG", "image/png"), ("WebP", "image/webp")])
def test_the_image_format_is_taken_in_its_common_spellings(client, given, media):
    r = client.post("/v1/images:enhance", content=_png(), params={"format": given}, headers=PNG_IN)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == media
    assert Image.open(io.BytesIO(r.content)).format == {"image/jpeg": "JPEG", "image/png": "PNG",
                                                         "image/webp": "WEBP"}[media]


def test_an_unknown_image_format_names_the_ones_taken(client):
    r = client.post("/v1/images:enhance", content=_png(), params={"format": "gif"}, headers=PNG_IN)
    assert r.status_code == 422
    assert r.json()["error"] == "OptionValueError"
    assert r.json()["detail"] == "format: 'gif' is not an answer format; give jpeg (or jpg), png, webp or avif"
    # (and the cookbook's server section says what format and quality take)
    assert "`format`, the answer's format (`jpeg` or `jpg`, `png`, `webp`," in COOKBOOK
    assert "`quality`, 1-100" in COOKBOOK


def test_a_video_option_on_the_image_endpoint_is_said_to_be_the_video_routes(client):
    r = client.post("/v1/images:enhance", content=_png(), params={"start": "1"}, headers=PNG_IN)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail.startswith("query parameter 'start' is an option of /v1/videos (video jobs), not of this endpoint")
    assert "strength?" not in detail and "did you mean" not in detail
    # ... and the image endpoint's options on /v1/videos
    r = client.post("/v1/videos", content=b"x", params={"format": "png"}, headers={**KEY, "Content-Type": "video/mp4"})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("query parameter 'format' is an option of /v1/images:enhance")
    # a typo is still a did-you-mean
    r = client.post("/v1/images:enhance", content=_png(), params={"strenght": "1"}, headers=PNG_IN)
    assert r.json()["detail"] == "unknown query parameter 'strenght' (did you mean 'strength'?)"


def test_a_video_jobs_summary_has_the_reports_fields_in_a_clients_words(client):
    from dataclasses import fields

    from stream_gpen.summary import RunSummary
    from tests.test_server import wait_job

    job = client.post("/v1/videos", content=b"clip", headers={**KEY, "Content-Type": "video/mp4"}).json()
    info = wait_job(client, job["id"])
    assert info["state"] == "done"
    summary = info["summary"]
    assert {f.name for f in fields(RunSummary)} <= set(summary)  # as --report writes it
    assert summary["input"] == "the upload"
    assert summary["output"] == info["result"] == f"/v1/videos/{job['id']}/result"
    assert summary["partial_output"] is None
    assert "`input` \"the upload\"" in COOKBOOK


# --- camera ------------------------------------------------------------------------------------------
@pytest.fixture
def no_model(monkeypatch):
    """The model must not load: what is refused is refused before it."""
    def refuse(args):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(commands, "_make_enhancer", refuse)


def test_camera_input_without_a_scheme_is_said_as_enhance_says_it(tmp_path, cli_env, no_model, capsys):
    assert main(["camera", "example.com/live.m3u8", "-o", str(tmp_path / "r.mp4"), "--frames", "1", *cli_env]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["stream-gpen: error: input not found: example.com/live.m3u8",
                   "hint: check the path; URLs need a scheme like rtsp://"]


def test_camera_output_naming_a_folder_or_a_photo_is_refused_up_front(tmp_path, cli_env, no_model, capsys,
                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["camera", "lavfi:testsrc2", "-o", "recdir/", "--frames", "1", *cli_env]) == 2
    err = capsys.readouterr().err
    assert "error: output recdir/ is a folder; name a file in it, e.g. recdir/recording.mp4" in err, err
    assert "no extension" not in err
    assert main(["camera", "lavfi:testsrc2", "-o", "rec.jpg", "--frames", "1", *cli_env]) == 2
    err = capsys.readouterr().err
    assert "error: output rec.jpg is an image name; the camera records a video: use a video extension" in err, err
    assert not (tmp_path / "rec.jpg").exists() and not (tmp_path / "recdir").exists()


def test_camera_stream_help_and_docs_name_every_scheme_it_takes(capsys):
    from stream_gpen.io._sink import _STREAM_FORMATS

    assert main(["camera", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    help_ = text.split("--stream URL", 2)[2]
    for scheme in _STREAM_FORMATS:
        assert f"{scheme}://" in help_.split("--virtual-camera")[0], scheme
        assert f"`{scheme}://`" in COOKBOOK, scheme


def test_camera_ranges_hint_says_the_live_preset_default(tmp_path, cli_env, no_model, capsys):
    assert main(["camera", "lavfi:testsrc2", "-o", str(tmp_path / "r.mp4"), "--preset", "fastest", *cli_env]) == 2
    hint = capsys.readouterr().err.splitlines()[-1]
    assert hint.startswith("hint: --crf: h264/hevc 0-51, vp9 0-63, av1 1-63; --preset: h264/hevc ultrafast..veryslow")
    assert "--preset for veryfast" in hint and "leave either out for the codec's default" not in hint


# --- small texts ---------------------------------------------------------------------------------------
def test_a_subcommand_typo_gets_a_did_you_mean(capsys):
    assert main(["enhanse", "x.mp4"]) == 2
    assert capsys.readouterr().err.splitlines()[0].endswith("; did you mean enhance?")
    assert main(["weights", "verfy"]) == 2
    assert capsys.readouterr().err.splitlines()[0].endswith("; did you mean verify?")
    assert main(["xyzzy"]) == 2  # (nothing near: no guess)
    assert "did you mean" not in capsys.readouterr().err


@pytest.mark.parametrize("given, meant", [("gpen256", "gpen-bfr-256"), ("GPEN_512", "gpen-bfr-512")])
def test_a_model_name_without_its_dashes_gets_a_did_you_mean(tmp_path, cli_env, capsys, given, meant):
    photo = tmp_path / "p.png"
    photo.write_bytes(_png())
    assert main(["enhance", str(photo), "-o", str(tmp_path / "o.png"), *cli_env, "--model", given]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"stream-gpen: error: unknown model '{given}'")
    assert err[1] == f"hint: did you mean {meant}?"


def test_nvenc_on_a_machine_without_an_nvidia_driver_says_so(tmp_path, monkeypatch, capsys):
    from stream_gpen.io import _sink

    libcuda = "h264_nvenc did not open: Cannot load libcuda.so.1; no NVIDIA driver (libcuda) on this machine"
    monkeypatch.setattr(_sink, "nvenc_available", lambda codec: libcuda)
    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    clip = "lavfi:testsrc2=size=64x48:rate=5:duration=0.2"
    assert main(["enhance", clip, "-o", str(tmp_path / "o.mp4"), "--encoder", "nvenc", "--device", "cpu"]) == 2
    hint = capsys.readouterr().err.splitlines()[-1]
    assert hint.startswith("hint: no NVIDIA GPU/driver was found here") and "this GPU/driver" not in hint
    # a GPU whose driver is there but has no NVENC (an H200) keeps its own words
    monkeypatch.setattr(_sink, "nvenc_available", lambda codec: "h264_nvenc did not open: x; this GPU has no NVENC")
    assert main(["enhance", clip, "-o", str(tmp_path / "o.mp4"), "--encoder", "nvenc", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("hint: this GPU/driver has no NVENC")


def test_min_face_is_said_back_as_a_clean_number(tmp_path, cli_env, capsys):
    clip = "lavfi:testsrc=size=64x48:rate=5:duration=0.2"
    assert main(["enhance", clip, "-o", "/dev/null", "--aligned", "--min-face", "30.0", "--min-score", "0.5",
                 *cli_env[:4]]) == 0
    err = capsys.readouterr().err
    assert "warning: --min-face 30, --min-score 0.5 are not used with --aligned" in err, err
    assert "30.0" not in err


def test_info_says_an_exif_turn_in_a_sentence(tmp_path, capsys):
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = tmp_path / "turned.jpg"
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(photo, exif=exif)
    assert main(["info", str(photo)]) == 0
    out = capsys.readouterr().out
    assert "enhance will" not in out
    assert "plan                 turned upright, as its EXIF orientation (6) says, and written upright" in out, out


def test_a_resumed_folder_runs_report_says_its_photos_notes_as_the_first_run_did(tmp_path, cli_env, capsys):
    folder = tmp_path / "album"
    folder.mkdir()
    picture = Image.fromarray(np.full((24, 32, 3), 90, np.uint8))
    picture.save(folder / "a.gif")  # (a still GIF is written as PNG: a note in the report)
    picture.save(folder / "b.png")
    first, resumed = tmp_path / "first.json", tmp_path / "resumed.json"
    assert main(["enhance", str(folder), "-o", str(tmp_path / "one"), "--report", str(first), *cli_env]) == 0
    assert main(["enhance", str(folder), "-o", str(tmp_path / "two"), "--skip-existing", "--report", str(resumed),
                 *cli_env]) == 0
    said = json.loads(first.read_text())["fallbacks"]
    assert any("still GIFs are written as PNG" in f for f in said), said
    assert json.loads(resumed.read_text())["fallbacks"] == said
