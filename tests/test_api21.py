"""Session 21: frames from stream() over photos say which file they came from (a folder's photos
come in name order, so the index alone did not say; a photo URL names the URL, not the fetched
copy's temporary name); video frames say None."""
from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
from PIL import Image

from _clips import write_video


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
