"""Hunt 33 (server security): a video over --max-pixels is refused on its header's size before
any frame is decoded (a 14 MB 16000x16000 MJPEG upload cost 1.5 GB to decode, then was refused)."""
from __future__ import annotations

import pytest

from tests.test_io_video import make_clip


def test_a_video_over_max_pixels_is_refused_before_any_frame_is_decoded(tmp_path, monkeypatch):
    from stream_gpen.errors import PayloadTooLargeError
    from stream_gpen.io import open_source
    from stream_gpen.io._source import VideoSource

    clip = tmp_path / "c.ts"
    make_clip(clip, n=2)  # 64x48

    def no_decode(self):
        raise AssertionError("a frame was decoded before the size was checked")

    monkeypatch.setattr(VideoSource, "_decode_frames", no_decode)
    with pytest.raises(PayloadTooLargeError, match=r"video frames are 64x48 = 3072 pixels, over the limit of 3000"):
        open_source(clip, untrusted=True, max_pixels=3000)
