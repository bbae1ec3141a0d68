"""Hunt 18 (server18): the server's API key in UTF-8."""
from __future__ import annotations

import numpy as np

from test_server import FakeEnhancer, client_for, post_image


def test_a_non_ascii_api_key_works_in_headers_and_the_live_query():
    """A key such as "pässwort" was accepted at start-up, then every header request got 401: curl
    sends it as UTF-8, Starlette reads header values as Latin-1, and the check re-encoded that."""
    img = np.zeros((4, 4, 3), np.uint8)
    key = "pässwort"
    with client_for(FakeEnhancer(), api_key=key) as c:
        raw = key.encode()  # what curl -H 'X-API-Key: pässwort' puts on the wire
        for headers in ({"X-API-Key": raw}, {"Authorization": b"Bearer " + raw}):
            assert post_image(c, img, headers=headers).status_code == 200
        assert post_image(c, img, headers={"X-API-Key": "passwort"}).status_code == 401
        with c.websocket_connect(f"/v1/live?key={key}") as ws:  # (the page's query, URL-encoded UTF-8)
            ws.close()


def test_an_audio_file_uploaded_as_a_video_is_said_to_have_no_video(tmp_path):
    """An MP3/WAV/FLAC sent to /v1/videos failed as "not a media file ... playlist, concat script"
    (their demuxers were not on the upload list); an .m4a already said "no video stream"."""
    import av
    import pytest

    from _clips import write_audio
    from stream_gpen.errors import NoVideoStreamError
    from stream_gpen.io._source import VideoSource

    for ext, codec in (("mp3", "mp3"), ("wav", "pcm_s16le"), ("flac", "flac")):
        path = tmp_path / f"a.{ext}"
        with av.open(str(path), "w") as c:
            write_audio(c, c.add_stream(codec, rate=44100, layout="stereo"), 0.5)
        with pytest.raises(NoVideoStreamError, match="no video stream"):
            VideoSource(path, untrusted=True)
