"""Session 21: frames from stream() over photos say which file they came from (a folder's photos
come in name order, so the index alone did not say; a photo URL names the URL, not the fetched
copy's temporary name); video frames say None."""
from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pytest
from PIL import Image

from _clips import write_video
from stream_gpen.errors import InvalidInputError


def _photo(path, seed):
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(path)
    return path


def test_stream_of_a_folder_names_each_photo(tmp_path, enh):
    album = tmp_path / "album"
    (album / "sub").mkdir(parents=True)
    made = [_photo(album / "b.png", 1), _photo(album / "a.jpg", 2), _photo(album / "sub" / "c.png", 3)]
    frames = list(enh.stream(album))
    assert sorted(f.path for f in frames) == sorted(str(p) for p in made)
    for f in frames:  # each frame is the picture of the file it names
        with Image.open(f.path) as im:
            assert f.image.shape[:2] == (im.height, im.width)
    one = list(enh.stream(made[0]))
    assert [f.path for f in one] == [str(made[0])]
    video = write_video(tmp_path / "v.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)])
    assert [f.path for f in enh.stream(video)] == [None, None, None]


def test_stream_of_a_photo_url_names_the_url(tmp_path, enh):
    www = tmp_path / "www"
    www.mkdir()
    _photo(www / "p.png", 4)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/p.png"
        frames = list(enh.stream(url))
    finally:
        srv.shutdown()
    assert [f.path for f in frames] == [url] and frames[0].image.shape == (40, 56, 3)


@pytest.mark.parametrize("call", ["enhance_file_src", "enhance_file_dst", "stream"])
def test_an_empty_path_is_refused(tmp_path, enh, monkeypatch, call):
    """api21: enhance_file("") restored the whole working folder into a new folder beside it
    (Path("") is "."); the command line refuses an empty input."""
    _photo(tmp_path / "a.png", 5)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError, match="is empty"):
        if call == "enhance_file_src":
            enh.enhance_file("")
        elif call == "enhance_file_dst":
            enh.enhance_file(tmp_path / "a.png", b"")
        else:
            next(enh.stream(" "))
    assert sorted(p.name for p in tmp_path.parent.iterdir() if p.name.startswith(tmp_path.name)) == [tmp_path.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@pytest.mark.parametrize("kw", ["model", "weights", "detector_weights", "parser_weights"])
def test_an_empty_model_or_weights_path_is_refused(kw, mobilenet_weights):
    from stream_gpen import Enhancer

    with pytest.raises(InvalidInputError, match=f"{kw} is empty"):
        Enhancer(**{"model": "classic", "device": "cpu", "detector_weights": mobilenet_weights, kw: ""})


def test_a_home_path_is_expanded(tmp_path, enh, monkeypatch):
    """api21: "~/face.png" was "not found" (model and weights paths expanded ~, src and dst did
    not), and an output "~/r/o.png" made a folder named "~" in the working folder."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    (home / "r").mkdir(parents=True)  # (an output's folder must exist: api26)
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    _photo(home / "p.png", 6)
    s = enh.enhance_file("~/p.png", "~/r/o.png")
    assert s.frames_out == 1 and (home / "r" / "o.png").is_file() and not (work / "~").exists()
    from pathlib import Path

    assert [f.path for f in enh.stream(Path("~/p.png"))] == [str(home / "p.png")]


def test_a_device_index_may_be_a_numpy_integer_and_not_negative(enh):
    with pytest.raises(InvalidInputError, match="a capture device index is 0 or more"):
        next(enh.stream(-1))
    with pytest.raises(Exception) as e:  # (no camera here: the index is taken, the device is not there)
        next(enh.stream(np.int64(7)))
    assert "not int64" not in str(e.value)


def test_weights_that_are_not_used_are_in_the_fallbacks(tmp_path, mobilenet_weights):
    """api21: said in the log only; a program reading the run summary did not learn it."""
    from stream_gpen import Enhancer

    e = Enhancer("classic", device="cpu", detector_weights=mobilenet_weights, weights="x.pth", progress=False)
    assert any("the classic model has no weights: x.pth is not used" in f for f in e.fallbacks)
    s = e.enhance_file(_photo(tmp_path / "p.png", 7), tmp_path / "o.png")
    assert any("x.pth is not used" in f for f in s.fallbacks)
