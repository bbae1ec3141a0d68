"""Session 24 review fixes: max_pixels over every page, the turned-video share counts frames with
faces, a token last sample, error order in enhance_file."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from stream_gpen.errors import PayloadTooLargeError


def test_max_pixels_checks_every_tiff_page(enh, tmp_path):
    """review24: the photo limit read page 0 only, so a 16x16 first page let a 400x300 second page
    be decoded under max_pixels=1000."""
    src = tmp_path / "two.tif"
    small = Image.fromarray(np.zeros((16, 16, 3), np.uint8))
    big = Image.fromarray(np.zeros((300, 400, 3), np.uint8))
    small.save(src, save_all=True, append_images=[big])
    for untrusted in (False, True):
        with pytest.raises(PayloadTooLargeError, match="400x300 = 120000 pixels, over the limit of 1000"):
            enh.enhance_file(src, tmp_path / "out.tif", untrusted=untrusted, max_pixels=1000)
    enh.enhance_file(src, tmp_path / "out.tif", max_pixels=120000)
    assert Image.open(tmp_path / "out.tif").n_frames == 2


def test_a_token_last_sample_does_not_make_the_last_frame_vanish(tmp_path):
    from stream_gpen.io import open_source

    from test_streams24 import vfr_bframes_mp4

    src = vfr_bframes_mp4(tmp_path / "tok.mp4", last_sample=1)
    with open_source(str(src)) as s:
        durs = []
        for f in s:
            durs.append((f.time, f.duration))
            f.release()
    assert abs(durs[-1][0] - 1.4) < 1e-3
    assert durs[-1][1] > 0.01, durs[-3:]  # (not the 1 ms token: the decoder's step, as before)


def test_turned_share_counts_detections_with_faces(shared, mobilenet_weights, tmp_path):
    """review24: a turned clip (lost rotation tag) that opens on frames without faces was said as
    'part of the video (50%)... lying down?': detections that found no face counted under the
    upright turn. Only detections with faces count now."""
    from _clips import write_video
    from _doubles import IdentityRestorer
    from test_faces23fix import _TALKING_HEAD

    from stream_gpen import Enhancer

    frames = []
    with av.open(str(shared / _TALKING_HEAD)) as c:
        for f in c.decode(video=0):
            frames.append(np.array(Image.fromarray(f.to_ndarray(format="rgb24")).resize((360, 360))))
            if len(frames) == 12:
                break
    plain = [np.full((360, 360, 3), 128, np.uint8)] * 12
    clip = write_video(tmp_path / "t.mp4", plain + [np.ascontiguousarray(np.rot90(a, -1)) for a in frames],
                       options={"crf": "12"})
    enh = Enhancer(IdentityRestorer(), device="cpu", detector_weights=str(mobilenet_weights), progress=False)
    summary = enh.enhance_file(clip, tmp_path / "out.mp4")
    said = [f for f in summary.fallbacks if "upright with the picture turned" in f]
    assert len(said) == 1 and "rotation tag" in said[0], summary.fallbacks


def test_enhance_file_says_a_missing_input_before_a_missing_output_folder(enh, tmp_path):
    from stream_gpen.errors import MediaNotFoundError

    with pytest.raises(MediaNotFoundError):
        enh.enhance_file(tmp_path / "missing.mp4", str(tmp_path / "newdir") + "/")


def test_a_subtitle_track_of_one_cue_a_chapter_stays_a_track():
    """review24: the chapter-track test took any mov_text track whose cues match the chapters'
    count and span for the chapter track, and it was neither copied nor said dropped. It is the
    chapter track only beside a timecode track (the case FFmpeg misreads)."""
    from types import SimpleNamespace as NS

    from stream_gpen.io._tags import is_chapter_track

    tb = Fraction(1, 1000)
    chapters = [{"start": 0, "end": 1000, "time_base": tb}, {"start": 1000, "end": 2000, "time_base": tb}]
    subs = NS(type="subtitle", discard=0, time_base=tb, frames=2, start_time=0, duration=2000,
              codec_context=NS(name="mov_text"), metadata={})
    video = NS(type="video", metadata={})
    tmcd = NS(type="data", metadata={"timecode": "01:00:00:00"})
    for streams, want in (([video, subs], False), ([video, subs, tmcd], True)):
        subs.container = NS(format=NS(name="mov,mp4,m4a,3gp,3g2,mj2"), chapters=lambda: chapters, streams=streams)
        assert is_chapter_track(subs) is want, streams
