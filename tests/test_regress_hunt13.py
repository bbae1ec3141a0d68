"""Regressions of hunt 13's photo, folder and CLI changes: a still GIF named ``x.jpg``, re-runs into
an output folder inside the input, keyed footage with crf/preset, a file read through a full ring,
a multi-page picture with a bad page in a folder run, the still-GIF note. Each case once failed."""
from __future__ import annotations

import logging
import time

import av
import numpy as np
import pytest
from PIL import Image

from _clips import write_video
from stream_gpen.api import resolve_output
from stream_gpen.errors import InvalidInputError
from stream_gpen.io._source import VideoSource


def test_a_still_gif_named_as_another_format_is_written_in_it(tmp_path, enh, face, caplog):
    """``enhance still.gif -o g.jpg`` failed with an internal error (AttributeError: the forced
    ``.png`` was taken for an ``image_format`` that asked for it). The name decides the format;
    "still GIFs are written as PNG" is said only where PNG was defaulted."""
    gif = tmp_path / "still.gif"
    face.save(gif)
    assert resolve_output(str(gif), str(tmp_path / "x.jpg")) == str(tmp_path / "x.jpg")
    assert resolve_output(str(gif)).endswith("still_enhanced.png")
    with caplog.at_level(logging.WARNING):
        for name, fmt in (("g.jpg", "JPEG"), ("g.webp", "WEBP"), ("g.png", "PNG")):
            s = enh.enhance_file(gif, tmp_path / name)
            assert Image.open(tmp_path / name).format == fmt and s.frames_out == 1
            assert not [f for f in s.fallbacks if "GIF" in f]
    assert "GIF" not in caplog.text
    out = tmp_path / "o"
    out.mkdir()
    s = enh.enhance_file(gif, out)  # defaulted: said
    assert (out / "still.png").is_file()
    assert [f for f in s.fallbacks if "still GIFs are written as PNG" in f]


def test_reruns_into_an_output_folder_inside_the_input_are_not_refused(tmp_path, enh, face, caplog):
    """A re-run into ``lib/out`` was refused ("holds 1 photo(s) that no run on lib wrote") when it
    held ``a_png.jpg`` (a clash renamed by a run with another image_format) or the output of an
    original since renamed. Only a file this run would overwrite that is not its input's earlier
    output (another size: an original) is refused; other files are left as they are, said."""
    lib = tmp_path / "lib"
    lib.mkdir()
    face.save(lib / "a.jpg")
    face.save(lib / "a.png")
    face.resize((64, 48)).save(lib / "b.jpg")
    enh.enhance_file(lib, lib / "out", image_format="jpg")
    assert sorted(p.name for p in (lib / "out").iterdir()) == ["a.jpg", "a_png.jpg", "b.jpg"]
    s = enh.enhance_file(lib, lib / "out", skip_existing=True)  # own formats: a.png -> a.png
    assert (lib / "out" / "a.png").is_file() and not s.skipped
    (lib / "b.jpg").rename(lib / "b_renamed.jpg")
    with caplog.at_level(logging.WARNING):
        enh.enhance_file(lib, lib / "out", skip_existing=True)
    assert (lib / "out" / "b_renamed.jpg").is_file()
    assert "1 photo(s) or video(s) that no input of this run maps to (first: b.jpg)" in caplog.text
    # an original this run would overwrite is still refused, with or without overwrite
    face.resize((40, 30)).save(lib / "out" / "a.png")
    for overwrite in (False, True):
        with pytest.raises(InvalidInputError, match=r"would overwrite .*first: \S*/out/a\.png, another size than the input \S*/a\.png"):
            enh.enhance_file(lib, lib / "out", overwrite=overwrite, skip_existing=not overwrite)
    assert Image.open(lib / "out" / "a.png").size == (40, 30)


def test_keyed_footage_with_crf_or_preset_and_an_auto_codec_is_written_as_prores(tmp_path, enh):
    """Alpha footage with ``--crf``/``--preset`` and codec auto was refused after the model loaded
    ("codec='prores' takes no crf"), naming a codec the user never chose. Auto picks ProRes 4444
    for the transparency and says so; crf/preset are unused."""
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[..., :3], rgba[8:40, 16:48, 3] = 128, 255
    clip = write_video(tmp_path / "key.mov", [rgba] * 3, codec="png", pix_fmt="rgba")
    for name, kw in (("a.mov", {"crf": 18}), ("a.mkv", {"preset": "slow"})):
        s = enh.enhance_file(clip, tmp_path / name, **kw)
        with av.open(str(tmp_path / name)) as c:
            v = c.streams.video[0].codec_context
            assert v.name == "prores" and "a" in v.pix_fmt.split("p")[0]  # yuva444p...
        assert [f for f in s.fallbacks if "ProRes 4444 was chosen to keep the source's transparency" in f]
    with pytest.raises(InvalidInputError, match="codec='prores' takes no crf"):  # asked for: still refused
        enh.enhance_file(clip, tmp_path / "b.mov", codec="prores", crf=18)


def test_a_file_read_through_a_full_ring_with_a_slow_consumer_keeps_every_frame(tmp_path):
    """A work-in-progress FrameRing.get dropped "stale" frames of files too (live rings only may):
    25 frames in, 3 out. A file read through a 3-slot ring by a slow consumer gives every frame,
    in order."""
    frames = [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(20)]
    clip = write_video(tmp_path / "ramp.mp4", frames, options={"crf": "0"})
    got = []
    with VideoSource(str(clip), device="cpu", ring_size=3) as src:
        for f in src:
            got.append((f.pts, int(f.image.float().mean().round())))
            f.release()
            time.sleep(0.02)  # (the decoder fills the whole ring meanwhile; no timing is asserted)
    assert [p for p, _ in got] == sorted(p for p, _ in got) and len(got) == 20
    assert [abs(v - 8 * i) <= 2 for i, (_, v) in enumerate(got)] == [True] * 20


def test_a_multi_page_picture_with_a_bad_page_in_a_folder_run_counts_no_pages(tmp_path, enh, face):
    """A 3-page TIFF whose page 3 is cut short is skipped in a folder run, but its two held pages
    were counted as written ("4 frames/images written", 2 files there). Pages count when their
    file is written."""
    lib = tmp_path / "lib"
    lib.mkdir()
    face.save(lib / "0.jpg")
    face.save(lib / "z.jpg")
    pages = [face, face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), face.convert("L").convert("RGB")]
    pages[0].save(tmp_path / "album.tif", save_all=True, append_images=pages[1:])
    whole = (tmp_path / "album.tif").read_bytes()
    (lib / "m.tif").write_bytes(whole[:len(whole) - 9000])  # page 3's pixels cut short
    with Image.open(lib / "m.tif") as im:
        assert im.n_frames == 3
    s = enh.enhance_file(lib, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.jpg", "z.jpg"]
    assert s.frames_out == 2 and len(s.skipped) == 1
    pages[0].save(lib / "m.tif", save_all=True, append_images=pages[1:])  # whole: its 3 pages count
    s = enh.enhance_file(lib, tmp_path / "out2")
    assert s.frames_out == 5
