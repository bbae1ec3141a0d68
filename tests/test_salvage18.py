"""Session 18: an error after frames were encoded keeps them as ``.partial`` (as a Ctrl-C does).

Before, any error mid-run (the restorer or the device failing at 1:50 of a two-hour video, the
encoder or the muxer refusing a packet, a camera recording's muxer failing at minute 58) deleted
everything encoded so far."""
from __future__ import annotations

import logging

import av
import numpy as np
import pytest
from PIL import Image

from _clips import write_video
from tests._doubles import IdentityRestorer


def _face_clip(tmp_path, shared, n=24):
    im = Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB")
    im.thumbnail((200, 200))
    base = np.asarray(im)
    return write_video(tmp_path / "in.mp4", [np.roll(base, i, axis=1) for i in range(n)])


def _frames(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


class _FailsLater(IdentityRestorer):
    """Restores the first ``ok`` calls, then fails as a device that fell off the bus would."""

    def __init__(self, ok: int) -> None:
        super().__init__()
        self.ok = ok

    def __call__(self, crops):
        if self.ok <= 0:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        self.ok -= 1
        return super().__call__(crops)


def test_a_restorer_failing_mid_run_keeps_the_frames_done(tmp_path, mobilenet_weights, shared, caplog):
    from stream_gpen import Enhancer

    src = _face_clip(tmp_path, shared)
    enh = Enhancer(_FailsLater(ok=2), device="cpu", detector_weights=mobilenet_weights, progress=False,
                   batch_size=4)
    with caplog.at_level(logging.WARNING, logger="stream_gpen"), pytest.raises(RuntimeError, match="illegal memory"):
        enh.enhance_file(src, tmp_path / "o.mp4", preset="ultrafast")
    assert not (tmp_path / "o.mp4").exists()
    part = tmp_path / "o.partial.mp4"
    assert part.exists() and 1 <= _frames(part) < 24
    assert any("encoded before the error were saved to" in r.getMessage() and "o.partial.mp4" in r.getMessage()
               for r in caplog.records)


def test_the_cli_says_where_the_frames_before_an_error_are(tmp_path, cli_env, monkeypatch, shared, capsys):
    import stream_gpen.api as api
    from stream_gpen.cli import main

    src = _face_clip(tmp_path, shared)
    orig_init = api.Enhancer.__init__

    def init(self, model=None, **kw):
        orig_init(self, _FailsLater(ok=2), **kw)

    monkeypatch.setattr(api.Enhancer, "__init__", init)
    rep = tmp_path / "run.json"
    rc = main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), "--batch-size", "4", "--preset", "ultrafast",
               "--report", str(rep), *cli_env])
    err = capsys.readouterr().err
    assert rc != 0
    assert "saved to" in err and "o.partial.mp4" in err, err
    part = tmp_path / "o.partial.mp4"
    assert part.exists() and not (tmp_path / "o.mp4").exists()
    import json

    r = json.loads(rep.read_text())
    assert "illegal memory" in r["error"] and r["partial_output"] == str(part)
    assert r["frames_out"] == _frames(part) and r["frames_in"] == r["frames_out"] + r["frames_dropped"]


def test_an_encoder_error_mid_run_keeps_what_was_muxed(tmp_path):
    from stream_gpen.errors import EncodeError
    from stream_gpen.io import open_sink, open_source
    from stream_gpen.io._sink import FileSink

    clip = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(30)])
    real = FileSink._encode
    count = {"n": 0}

    def encode(self, frame):
        count["n"] += 1
        if count["n"] == 20:
            raise av.error.OSError(28, "No space left on device")  # what a full disk says mid-run
        real(self, frame)

    target = tmp_path / "out.mkv"
    FileSink._encode = encode
    try:
        with pytest.raises(EncodeError, match="No space left"):
            with open_source(clip) as src:
                with open_sink(target, source=src, preset="ultrafast") as sink:
                    for f in src:
                        sink.write(f)
    finally:
        FileSink._encode = real
    assert not target.exists()
    part = tmp_path / "out.partial.mkv"
    # what the encoder had muxed before the failing frame (x264 holds a few frames back)
    assert part.exists() and 1 <= _frames(part) <= 19
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.partial.mkv"]


def test_a_failed_server_job_leaves_no_partial_in_its_folder(tmp_path):
    from types import SimpleNamespace

    from stream_gpen.io._partials import is_partial, remember_partial
    from stream_gpen.server._jobs import _drop_partials

    d = tmp_path / "job"
    d.mkdir()
    (d / "input.mp4").write_bytes(b"x")
    part = d / "output.partial.mp4"
    part.write_bytes(b"frames")
    remember_partial(part)
    _drop_partials(SimpleNamespace(dir=d, input_path=d / "input.mp4"))
    assert sorted(p.name for p in d.iterdir()) == ["input.mp4"] and not is_partial(part)
