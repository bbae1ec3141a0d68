"""Session 24's video-handling fixes: container tags an .mp4/.mov cannot hold, the ``--audio none``
note on a timecode/chapter track, the last frame's duration of a VFR clip with B-frames, Dolby
Vision, and ``--copy-if-no-faces`` with side streams the re-encode drops or converts too."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from _clips import copy_through

FR = [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)]


def tagged_mkv(path: Path, tags: dict) -> Path:
    with av.open(str(path), "w") as c:
        c.metadata.update(tags)
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for i, img in enumerate(FR):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    return path


def _tags_note(sink) -> str:
    return " ".join(d for d in sink.dropped if "container tags" in d)


@pytest.mark.parametrize("ext, lost", [("mp4", {"DATE_RECORDED"}), ("mov", {"DATE_RECORDED", "DESCRIPTION", "KEYWORDS"})])
def test_mov_tags_it_cannot_hold_are_said(tmp_path, ext, lost):
    # the mov muxer writes a fixed list of atoms: a Matroska's DATE_RECORDED (and in .mov its
    # DESCRIPTION, KEYWORDS) vanished without a note, where .avi/.ts named theirs
    src = tagged_mkv(tmp_path / "in.mkv", {"title": "T", "date": "2020", "comment": "C", "DATE_RECORDED": "2020-01-02",
                                           "DESCRIPTION": "D", "KEYWORDS": "kw"})
    sink = copy_through(src, tmp_path / f"out.{ext}")
    with av.open(str(tmp_path / f"out.{ext}")) as c:
        back = {k.lower() for k in c.metadata}
    note = _tags_note(sink)
    assert {k for k in ("title", "date", "comment", "date_recorded", "description", "keywords")
            if k not in back} == {k.lower() for k in lost}
    for k in lost:
        assert k in note, (k, sink.dropped)
    assert "title" not in note and "comment" not in note.replace("(", "")


def test_mov_tags_fill_empty_standard_slots(tmp_path):
    # with no date/comment of its own, the recording date and description land where QuickTime
    # and iTunes readers look for them; nothing is then lost (and nothing said)
    src = tagged_mkv(tmp_path / "in.mkv", {"DATE_RECORDED": "2020-01-02", "DESCRIPTION": "D"})
    for ext in ("mov", "mp4"):
        sink = copy_through(src, tmp_path / f"out.{ext}")
        with av.open(str(tmp_path / f"out.{ext}")) as c:
            meta = {k.lower(): v for k, v in c.metadata.items()}
        assert meta.get("date") == "2020-01-02", (ext, meta)
        assert "D" in (meta.get("description"), meta.get("comment")), (ext, meta)
        assert not _tags_note(sink), sink.dropped


def test_mdta_mov_keeps_every_tag_without_a_note(tmp_path):
    # an iPhone's com.apple.quicktime keys switch the muxer to mdta keys, which hold any key
    src = tagged_mkv(tmp_path / "in.mkv", {"com.apple.quicktime.make": "Apple", "DATE_RECORDED": "2020-01-02"})
    sink = copy_through(src, tmp_path / "out.mov")
    with av.open(str(tmp_path / "out.mov")) as c:
        back = {k.lower() for k in c.metadata}
    assert {"com.apple.quicktime.make", "date_recorded"} <= back
    assert not _tags_note(sink), sink.dropped
