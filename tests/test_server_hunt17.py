"""Server findings of hunt 17: form fields that are near misses of options or `enhance`-only
options were read past (``-F strenght=0`` restored at full strength, ``-F audio=none`` kept the
sound); a raw 4K RGBA live frame closed the connection (the WebSocket limit was the image upload
limit); a job summary advised outputs a job cannot choose; ``?start=1:30`` was refused; a video
refused for its Content-Type was an ``UnsupportedImageError``."""
from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")

from tests.test_server import KEY, FakeEnhancer, client_for  # noqa: E402

IMAGE = "/v1/images:enhance"


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("field, says", [
    ("strenght", "looks like the option 'strength' (?strength=... in the query)"),
    ("Strength", "options go in the query, as ?strength=..."),
    ("audio", "is an option of `stream-gpen enhance` that this route does not take"),
    ("codec", "is an option of `stream-gpen enhance` that this route does not take"),
    ("max-faces", "is an option of `stream-gpen enhance` that this route does not take"),
    ("max_face", "looks like the option 'max_faces'"),
])
def test_form_fields_that_look_like_options_are_refused(tmp_path, field, says):
    fake = FakeEnhancer()
    with client_for(fake, work_dir=tmp_path) as c:
        r = c.post(IMAGE, files={"file": ("a.png", _png(), "image/png")}, data={field: "0"}, headers=KEY)
        assert r.status_code == 422 and r.json()["error"] == "FormOptionError", r.text
        assert says in r.json()["detail"], r.json()["detail"]
        r = c.post("/v1/videos", files={"file": ("a.mp4", b"v", "video/mp4")}, data={field: "none"}, headers=KEY)
        assert r.status_code == 422 and r.json()["error"] == "FormOptionError", r.text
        assert list((tmp_path / "jobs").iterdir()) == []
        # a client's own fields are still read past
        for own in ("title", "name", "token", "user_id"):
            r = c.post(IMAGE, files={"file": ("a.png", _png(), "image/png")}, data={own: "x"}, headers=KEY)
            assert r.status_code == 200, (own, r.text)
    assert fake.batches == [1, 1, 1, 1]


def test_the_live_message_limit_takes_a_raw_4k_frame():
    from stream_gpen.server import ServerConfig
    from stream_gpen.server._config import MiB, live_message_limit

    raw4k = 12 + 3840 * 2160 * 4  # (33.2 MB: over the default 25 MB image limit)
    assert live_message_limit(ServerConfig()) >= raw4k
    assert live_message_limit(ServerConfig(max_upload_bytes=100 * MiB)) >= 100 * MiB  # a bigger JPEG limit wins
    small = ServerConfig(max_upload_bytes=MiB, max_pixels=1000 * 1000)
    assert 12 + 4 * 1000 * 1000 <= live_message_limit(small) < 5 * MiB  # no more than max_pixels allows


def test_a_job_summary_says_the_server_writes_mp4():
    from stream_gpen.server._jobs import _public_summary
    from stream_gpen.summary import RunSummary

    s = RunSummary(input="/srv/jobs/x/in.mov", output="/srv/jobs/x/result.mp4", fallbacks=[
        "the alpha channel (transparency) is dropped: libx265 in mp4 cannot hold it; write .mov or .mkv (ProRes 4444) "
        "or .webm (VP9) to keep it",
        "the subtitle stream is dropped (write .mkv or .mp4 to keep it)",
        "the input's audio was transcoded to AAC"])
    job = SimpleNamespace(input_path=Path("/srv/jobs/x/in.mov"), output_path=Path("/srv/jobs/x/result.mp4"),
                          dir=Path("/srv/jobs/x"))
    got = _public_summary(s, job)["fallbacks"]
    assert "this server writes every video job as MP4" in got[0] and "stream-gpen enhance" in got[0]
    assert "this server writes" in got[1]  # (.mkv named first)
    assert got[2] == "the input's audio was transcoded to AAC"


@pytest.mark.parametrize("start, seconds", [("1:30", 90.0), ("00:01:02.5", 62.5), ("2.5", 2.5)])
def test_a_job_takes_start_as_the_command_line_does(tmp_path, start, seconds):
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        r = c.post("/v1/videos", params={"start": start, "duration": "0:02"}, content=b"v" * 10,
                   headers={**KEY, "Content-Type": "video/mp4"})
        assert r.status_code == 202, r.text
        assert (r.json()["start"], r.json()["duration"]) == (seconds, 2.0)
        for bad in ({"start": "1:75"}, {"start": "-1"}, {"duration": "0:00"}, {"start": "soon"}):
            r = c.post("/v1/videos", params=bad, content=b"v" * 10, headers={**KEY, "Content-Type": "video/mp4"})
            assert r.status_code == 422 and next(iter(bad)) in r.json()["detail"], (bad, r.text)


def test_a_video_refused_for_its_content_type_is_no_image_error(tmp_path):
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        r = c.post("/v1/videos", content=b"v" * 10, headers={**KEY, "Content-Type": "audio/mp4"})
        assert r.status_code == 415 and r.json()["error"] == "UnsupportedMediaTypeError", r.text
        r = c.post(IMAGE, content=b"v" * 10, headers={**KEY, "Content-Type": "audio/mp4"})
        assert r.status_code == 415 and r.json()["error"] == "UnsupportedImageError", r.text


def test_starlettes_own_errors_have_the_documented_shape(tmp_path):
    with client_for(FakeEnhancer(), work_dir=tmp_path) as c:
        r = c.get("/v1/nothing-here", headers=KEY)
        assert r.status_code == 404 and r.json() == {"detail": "Not Found", "error": "NotFoundError"}
        r = c.put(IMAGE, headers=KEY)
        assert r.status_code == 405 and r.json()["error"] == "MethodNotAllowedError"
        assert "POST" in r.headers.get("allow", "")
        r = c.get("/v1/videos/0123456789abcdef", headers=KEY)  # (the app's own 404 keeps its name)
        assert r.status_code == 404 and r.json()["error"] == "JobNotFoundError", r.text


@pytest.mark.parametrize("field", ["csrf", "code", "mode", "face", "state", "device", "compare",
                                   "detector", "format_version", "strong"])
def test_an_apps_own_form_fields_are_read_past(tmp_path, field):
    # (hunt 17b: the near-miss test was too loose for short names: csrf -> crf, state -> start)
    fake = FakeEnhancer()
    with client_for(fake, work_dir=tmp_path) as c:
        r = c.post(IMAGE, files={"file": ("a.png", _png(), "image/png")}, data={field: "x"}, headers=KEY)
        assert r.status_code == 200, (field, r.text)


def test_a_jpeg_live_frame_is_held_to_the_upload_limit():
    from stream_gpen.errors import PayloadTooLargeError
    from stream_gpen.server._live import HEADER, KIND_JPEG, parse_frame

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buf, "JPEG")
    data = HEADER.pack(7, 0, 0, KIND_JPEG) + buf.getvalue()
    seq, kind, pixels = parse_frame(data, max_pixels=10**6, max_jpeg_bytes=len(buf.getvalue()))
    assert (seq, kind, pixels.shape) == (7, KIND_JPEG, (64, 64, 3))
    with pytest.raises(PayloadTooLargeError, match="over the limit"):
        parse_frame(data, max_pixels=10**6, max_jpeg_bytes=len(buf.getvalue()) - 1)
