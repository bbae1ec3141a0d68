"""What the docs, help and messages said against what the program did (docs33): HLS fMP4
outputs said to drop the tags their init segment keeps, a camera told to cut a part it cannot
cut, a second video track said to go with --audio none though it goes under every --audio, a photo's
refused crf said to have "used libx264", an offline server told to run a download that fails offline."""
from __future__ import annotations

import av
import numpy as np
import pytest

from tests._clips import copy_through, encode_frames, two_angles, write_audio

W, H = 64, 48


def _tagged_clip(path, *, title: str, track_title: str, disposition: int = 0):
    """An .mkv with a container title and comment, and an audio track with a title, a language
    and ``disposition``."""
    with av.open(str(path), "w") as c:
        c.metadata.update({"title": title, "COMMENT": "hello"})
        v = c.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        v.codec_context.options = {"preset": "ultrafast", "bf": "0"}
        a = c.add_stream("aac", rate=48000)
        a.metadata.update({"title": track_title, "language": "fra"})
        if disposition:
            a.disposition = disposition
        encode_frames(c, v, (np.full((H, W, 3), 9 * i, np.uint8) for i in range(10)))
        write_audio(c, a, 1.0)
    return path


def test_hevc_hls_keeps_the_tags_and_titles_its_init_segment_holds(tmp_path):
    """Was: an HEVC .m3u8 (fMP4 segments) said "container tags dropped: the hls container cannot
    hold COMMENT, title" and "its title ... dropped", as for MPEG-TS segments, while its init
    segment had them all. Its marks it does lose, and says so."""
    D = av.stream.Disposition
    src = _tagged_clip(tmp_path / "in.mkv", title="Holiday", track_title="Director commentary",
                       disposition=D.comment)
    sink = copy_through(src, tmp_path / "o.m3u8", codec="hevc")
    said = " ".join([*sink.dropped, *sink.fallbacks])
    assert "container tags dropped" not in said, said
    assert "its title" not in said, said
    assert "stream #1: its commentary mark dropped" in said, said
    with av.open(str(tmp_path / "o_init.mp4")) as c:
        assert c.metadata.get("title") == "Holiday" and c.metadata.get("comment") == "hello"
        a = c.streams.audio[0]
        assert a.metadata.get("name") == "Director commentary" and a.metadata.get("language") == "fra"
        assert not int(a.disposition) & int(D.comment)


@pytest.mark.parametrize("limit", [150 * 1024, None])
def test_a_live_recordings_file_size_hint_names_no_part_to_cut(monkeypatch, limit):
    """Was: a camera recording stopped by ulimit -f (or a FAT32 drive) was told to make the file
    smaller with "a part: --start and --duration", options camera does not have. A file's
    enhance is still told so."""
    import errno

    from stream_gpen.io import _sink

    monkeypatch.setattr(_sink, "_file_size_limit", lambda: limit)
    err = OSError(errno.EFBIG, "File too large")
    live, whole = _sink._encode_hint(err, live=True), _sink._encode_hint(err)
    assert "a higher crf=" in live and "start=" not in live and "duration=" not in live, live
    assert "a part: start= and duration=" in whole, whole


@pytest.mark.parametrize("audio", ["copy", "none"])
def test_a_second_video_track_is_dropped_for_its_own_reason_and_info_says_so(tmp_path, capsys, audio):
    """Was: with --audio none a second angle was "dropped: left out with the audio (--audio none)",
    as if the default kept it (it drops it: "only the main video stream is restored"), and
    ``info``'s plan did not name it."""
    from stream_gpen.cli import main

    src = two_angles(tmp_path / "two.mp4")
    sink = copy_through(src, tmp_path / "o.mkv", audio=audio)
    said = " ".join(sink.dropped)
    assert "video stream #1 (h264) dropped: only the main video stream is restored" in said, said
    assert "left out with the audio" not in said, said
    if audio == "copy":
        assert main(["info", str(src)]) == 0
        assert "video stream #1 (h264) dropped: only the main video stream is restored" in capsys.readouterr().out


def test_a_photos_encoder_auto_check_says_no_encoder_was_used(monkeypatch, caplog):
    """Was: ``enhance photo.jpg --encoder auto --crf 60`` said "--encoder auto used libx264, not
    NVENC" before refusing the crf, though a photo encodes nothing. A video still says it."""
    import logging

    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io import _sink

    monkeypatch.setattr(_sink, "_auto_logged", set())
    monkeypatch.setattr(_sink, "nvenc_available", lambda codec: "no NVIDIA driver here")
    with caplog.at_level(logging.INFO, logger="stream_gpen"):
        with pytest.raises(InvalidInputError, match="crf"):
            _sink.check_photo_encoder_options("auto", "auto", 60, None)
        assert "not NVENC" not in caplog.text, caplog.text
        _sink.check_encoder_options("auto", "h264", None, None)
    assert "encoder='auto' used libx264, not NVENC: no NVIDIA driver here" in caplog.text


@pytest.mark.parametrize("offline", [True, False])
def test_serve_aligned_says_how_to_get_the_detector_where_it_may_not_download(
        tmp_path, monkeypatch, caplog, offline):
    """Was: ``serve --aligned`` offline said ?aligned=false requests wait until `stream-gpen
    weights download retinaface-mobilenet0.25` puts the weights in place, a command that fails
    offline (exit 3). Offline it now names the file's path (and URL) to put it there by hand;
    with --no-download alone the command still works and is still named."""
    import logging
    from types import SimpleNamespace

    import torch

    from stream_gpen.server import cli as server_cli

    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path))
    if offline:
        monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    else:
        monkeypatch.delenv("STREAM_GPEN_OFFLINE", raising=False)
    with caplog.at_level(logging.WARNING):
        server_cli._say_detector_later(SimpleNamespace(device=torch.device("cpu")), download=False)
    said = caplog.text
    assert "--detector-weights PATH" in said, said
    if offline:
        assert "weights download" not in said, said
        assert f"save it as {tmp_path / 'detection_mobilenet0.25_Final.pth'}" in said, said
    else:
        assert "`stream-gpen weights download retinaface-mobilenet0.25` puts them in the cache" in said, said
