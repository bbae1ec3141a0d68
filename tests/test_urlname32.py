"""The name a URL input's output (and its download) takes: the URL's file name, percent-decoded,
made portable: a NUL crashed the run ("internal error: ValueError: embedded null byte", exit 1),
and ``:``, ``?``, ``|``, ``"`` made names Windows refuses."""
from __future__ import annotations

import pathlib

import pytest

from stream_gpen import api


@pytest.mark.parametrize("path", [pathlib.Path, pathlib.PureWindowsPath])
def test_a_url_name_is_made_portable_on_every_system(monkeypatch, path):
    monkeypatch.setattr(api, "Path", path)  # (what Path is on Windows, for the name's own splitting)
    for url, name in [("https://cdn.example.com/talks/keynote%2010:30.mp4", "keynote 10_30.mp4"),
                      ("https://cdn.example.com/v/clip%3F1.mp4", "clip_1.mp4"),
                      ("https://cdn.example.com/v/a%7Cb.mp4", "a_b.mp4"),
                      ("https://cdn.example.com/v/a%22b%22%3C%3E%2A.mp4", "a_b____.mp4"),
                      ("https://cdn.example.com/v/a%2Fb%5Cc.mp4", "a_b_c.mp4"),  # (no folder: one name)
                      ("https://cdn.example.com/v/a%0D%0Ab%09.mp4", "a__b_.mp4"),
                      ("https://cdn.example.com/v/clip.mp4.%20.", "clip.mp4"),  # (Windows drops those)
                      ("https://cdn.example.com/v/CON.mp4", "CON_.mp4"),  # (the console, on Windows)
                      ("https://cdn.example.com/v/lpt1.tar.mp4", "lpt1_.tar.mp4"),
                      ("https://cdn.example.com/v/CONSOLE.mp4", "CONSOLE.mp4"),
                      ("https://cdn.example.com/v/caf%C3%A9.mp4?x=1", "café.mp4")]:
        assert api._url_file_name(url) == name, url


def test_a_url_naming_a_nul_gets_an_output_name_not_an_internal_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert api.resolve_output("http://127.0.0.1:9/a%00b.mp4") == "a_b_enhanced.mp4"
    assert api.default_output("http://127.0.0.1:9/%00.mp4") == "__enhanced.mp4"
    assert api._portable_name(". .") == ""  # (nothing left: the caller's default name)
    assert api._device_or_stream("a\0b.mp4") is False  # (an API caller's path: no file's name)
