"""A folder run takes the .h263 and .swf videos the README lists as inputs (``enhance x.h263``
restored them; a folder run passed them by as "other" files, and the server's upload list had
to add them by hand)."""
from __future__ import annotations

import av

from tests._doubles import IdentityRestorer
from tests.test_srv29 import _clip as _srv_clip


def _clip(path, fmt, codec):
    return _srv_clip(path, "yuv420p", n=3, fmt=fmt, codec=codec, size=(128, 96))


def test_a_folder_run_restores_h263_and_swf_videos(tmp_path, mobilenet_weights):
    from stream_gpen import Enhancer
    from stream_gpen.io._image import folder_media

    album = tmp_path / "album"
    album.mkdir()
    _clip(album / "old.h263", "h263", "h263")
    _clip(album / "web.swf", "swf", "flv")
    images, videos, other = folder_media(album)[:3]
    assert sorted(p.name for p in videos) == ["old.h263", "web.swf"] and not other
    enh = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, detect_size=160,
                   progress=False)
    out = tmp_path / "out"
    summary = enh.enhance_file(album, out)
    assert summary.frames_out == 6 and not summary.skipped, summary
    made = sorted(p.name for p in out.iterdir())
    assert len(made) == 2 and all(p.endswith(".mp4") for p in made), made
    for name in made:
        with av.open(str(out / name)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 3
