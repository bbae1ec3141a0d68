"""Command-line, server and URL-source cases a new user met (hunt 13). Each once went wrong."""
from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pytest

from _clips import write_video
from stream_gpen.cli import main
from stream_gpen.errors import InvalidInputError
from stream_gpen.io._source import VideoSource


class _Quiet(http.server.SimpleHTTPRequestHandler):
    """``python -m http.server``'s handler: no Range support (it answers 200 with the whole file)."""

    def log_message(self, *a):
        pass


class _Ranged(_Quiet):
    """The same, answering ``Range: bytes=A-B`` with 206 and that part, as most web servers do."""

    def send_head(self):
        rng = self.headers.get("Range", "")
        path = self.translate_path(self.path)
        if not rng.startswith("bytes=") or "," in rng:
            return super().send_head()
        data = open(path, "rb").read()
        a, _, b = rng[6:].partition("-")
        a, b = int(a), min(int(b) if b else len(data) - 1, len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
        self.send_header("Content-Length", str(b - a + 1))
        self.end_headers()
        import io

        return io.BytesIO(data[a:b + 1])


def _serve(handler, directory):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


@pytest.fixture
def moov_at_end(tmp_path):
    """A 10-frame .mp4 as PyAV writes it: its index (moov) after the media data, which (noise)
    is larger than FFmpeg's read buffer, so that the index cannot be reached without seeking."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (120, 160, 3), np.uint8) for _ in range(10)]
    (tmp_path / "www").mkdir()
    path = write_video(tmp_path / "www" / "clip.mp4", frames)
    data = path.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat") > 0 and len(data) > 64_000
    return path


def test_http_mp4_with_index_at_end_from_a_server_without_ranges_fails_at_once(moov_at_end, capsys):
    """It was taken for a network drop: five reconnects over ~20 s, then exit 4 "dropped and did
    not come back". Now: at once, exit 2, with the faststart hint. A server that answers ranges
    still plays the same file."""
    srv, base = _serve(_Quiet, moov_at_end.parent)
    try:
        with pytest.raises(InvalidInputError, match=r"index \(moov\) at the end.*no Range support") as ei:
            with VideoSource(f"{base}/clip.mp4", reconnect=1, reconnect_delay_s=0.1) as src:
                list(src)
        assert "+faststart" in ei.value.hint and ei.value.exit_code == 2
        assert main(["info", f"{base}/clip.mp4"]) == 2
        err = capsys.readouterr().err
        assert "no Range support" in err and "hint:" in err and "reconnecting" not in err
    finally:
        srv.shutdown()
        srv.server_close()
    srv, base = _serve(_Ranged, moov_at_end.parent)
    try:
        with VideoSource(f"{base}/clip.mp4", reconnect=0) as src:
            n = 0
            for f in src:
                f.release()
                n += 1
        assert n == 10
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "abc"])
def test_camera_seconds_must_be_a_positive_finite_number(seconds, monkeypatch, capsys):
    """``--seconds 0``/``-1`` loaded the model and ended with exit 4 "no frames were written";
    ``nan`` never stopped. Now a usage error, exit 2, before anything loads."""
    import stream_gpen.commands as commands

    monkeypatch.setattr(commands, "_make_enhancer", lambda *a, **k: pytest.fail("the model was loaded"))
    assert main(["camera", "lavfi:testsrc2", "--seconds", seconds]) == 2
    assert "--seconds: expected a positive number of seconds" in capsys.readouterr().err


def test_folder_run_that_left_every_file_as_it_was_does_not_say_wrote(tmp_path, shared, cli_env, capsys):
    """A second ``--skip-existing`` run over a folder wrote nothing but still ended "wrote FOLDER"."""
    from PIL import Image

    (tmp_path / "pics").mkdir()
    face = Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB").resize((96, 64))
    for name in ("a.jpg", "b.jpg"):
        face.save(tmp_path / "pics" / name)
    opts = [o for o in cli_env if o != "--quiet"]
    out = tmp_path / "done"
    assert main(["enhance", str(tmp_path / "pics"), "-o", str(out), *opts]) == 0
    assert f"wrote {out}" in capsys.readouterr().err
    assert main(["enhance", str(tmp_path / "pics"), "-o", str(out), "--skip-existing", *opts]) == 0
    err = capsys.readouterr().err
    assert "left as they are" in err and "wrote" not in err, err


def test_server_refuses_unknown_query_parameters(tmp_path):
    """FastAPI drops undeclared query parameters: ``?strenght=0`` restored at full strength, 200.
    Now 422 naming it and the close match, on each route that takes options (live: a policy close)."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect
    from test_server import FakeEnhancer, encode

    from stream_gpen.server import ServerConfig, create_app

    png = encode(np.zeros((8, 8, 3), np.uint8), "PNG")
    with TestClient(create_app(FakeEnhancer(), config=ServerConfig(work_dir=tmp_path))) as c:
        r = c.post("/v1/images:enhance?strenght=0", content=png, headers={"Content-Type": "image/png"})
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == "unknown query parameter 'strenght' (did you mean 'strength'?)"
        r = c.post("/v1/images:enhance?foo=1", content=png, headers={"Content-Type": "image/png"})
        assert r.status_code == 422 and "unknown query parameter 'foo'; this endpoint takes model, faces" in r.text
        ok = c.post("/v1/images:enhance?strength=0&format=png", content=png, headers={"Content-Type": "image/png"})
        assert ok.status_code == 200 and ok.headers["X-Strength"] == "0"
        r = c.post("/v1/videos?duratoin=2", content=b"x", headers={"Content-Type": "video/mp4"})
        assert r.status_code == 422 and "'duratoin' (did you mean 'duration'?)" in r.json()["detail"]
        with pytest.raises(WebSocketDisconnect) as e:
            with c.websocket_connect("/v1/live?strenght=0") as ws:
                ws.receive_text()
        assert e.value.code == 1008 and "did you mean 'strength'?" in e.value.reason


@pytest.fixture
def photo(tmp_path, shared):
    from PIL import Image

    path = tmp_path / "photo.jpg"
    Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB").resize((96, 64)).save(path)
    return path


def test_video_options_on_a_photo_are_checked_then_said_to_be_unused(photo, tmp_path, cli_env, capsys):
    """``--crf 99 --preset bogus`` on a photo passed without a word (on a video: exit 2)."""
    out = tmp_path / "o.jpg"
    assert main(["enhance", str(photo), "-o", str(out), "--crf", "99", *cli_env]) == 2
    err = capsys.readouterr().err
    # (--codec auto, as in an .mp4: no "--codec h264" the user did not give, session 27)
    assert "--crf 99 for --codec auto (h264, as in an .mp4)" in err and "hint: --crf: h264/hevc 0-51" in err
    assert not out.exists()
    assert main(["enhance", str(photo), "-o", str(out), "--preset", "bogus", *cli_env]) == 2
    assert "--preset bogus" in capsys.readouterr().err
    assert main(["enhance", str(photo), "-o", str(out), "--crf", "20", "--codec", "h264", "--audio", "none",
                 *cli_env]) == 0
    said = [ln for ln in capsys.readouterr().err.splitlines() if "apply to videos" in ln]
    assert said == [f"stream-gpen: warning: --codec/--crf/--audio apply to videos; {photo} is written as a photo"], said
    assert out.exists()


def test_output_under_a_file_and_unknown_extension_say_so_with_a_hint(photo, tmp_path, cli_env, capsys):
    """``-o photo.jpg/x.mp4`` said "output folder does not exist: photo.jpg" (it exists: a file);
    ``-o x.xyz`` and ``--crf 99``/``--preset bogus`` on a video gave no ``hint:`` line."""
    clip = write_video(tmp_path / "clip.mp4", [np.zeros((48, 64, 3), np.uint8)] * 3)
    assert main(["enhance", str(clip), "-o", str(photo / "x.mp4"), *cli_env]) == 2
    err = capsys.readouterr().err
    assert f"{photo} is a file, not a folder" in err and "hint:" in err, err
    assert main(["enhance", str(clip), "-o", str(tmp_path / "e.xyz"), *cli_env]) == 2
    err = capsys.readouterr().err
    assert "no video container is known for the output name" in err and "hint: name a .mp4" in err, err
    for bad in (["--crf", "99"], ["--preset", "bogus"]):
        assert main(["enhance", str(clip), "-o", str(tmp_path / "e.mp4"), *bad, *cli_env]) == 2
        assert "hint: --crf: h264/hevc 0-51" in capsys.readouterr().err
