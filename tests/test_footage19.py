"""Real-footage output, hunt 19 (footage19): a sideways phone video stream-copied into a container
that cannot store its rotation; full-range 8-bit chroma; chapters after --start."""
from __future__ import annotations

import numpy as np
import pytest

from _clips import write_video


def _sideways(path, n=6, bf=0):
    # an upright 64x48 picture stored as 48x64 with a 90 degree display rotation (a phone's)
    rng = np.random.default_rng(1)
    pics = [np.ascontiguousarray(np.rot90(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), -1)) for _ in range(n)]
    return write_video(path, pics, options={"bf": str(bf)}, setup=lambda s: s.set_display_rotation(90))


def _shown(path):
    import av

    with av.open(str(path)) as c:
        f = next(c.decode(video=0))
        return (f.height, f.width) if round(f.rotation) % 180 else (f.width, f.height)


@pytest.mark.parametrize("ext", [".ts", ".avi", ".mp4", ".mkv"])
def test_a_sideways_phone_video_without_faces_is_copied_only_where_its_rotation_is_kept(tmp_path, enh, ext):
    src = _sideways(tmp_path / "phone.mp4")
    assert _shown(src) == (64, 48)
    s = enh.enhance_file(src, tmp_path / f"o{ext}", copy_if_no_faces=True)
    assert _shown(tmp_path / f"o{ext}") == (64, 48)  # .ts / .avi copies played sideways
    if ext in (".ts", ".avi"):
        assert s.encoder != "copy" and any("90 degree display rotation" in f for f in s.fallbacks), s.fallbacks
    else:
        assert s.encoder == "copy"


@pytest.mark.parametrize("pix_fmt,colorspace", [("yuvj420p", 5), ("yuv420p", 1), ("yuvj422p", 5), ("yuvj444p", 1), ("nv12", 1),
                                                ("yuv420p", 9)])
def test_untouched_full_range_8bit_chroma_survives_a_pass(pix_fmt, colorspace):
    """Full-range 8-bit video (webcam MJPEG, Android phones): swscale's encode truncates chroma,
    so each pass took half a level off Cb and Cr outside the faces (a flat red corner: U 87 -> 86,
    V 191 -> 190). Decode then encode now gives every sample back."""
    import av
    from av.video.reformatter import ColorRange

    from stream_gpen.io._convert import _KRKB, _BT601, av_to_rgb_numpy, rgb_to_av, sws_colorspace

    rng = np.random.default_rng(7)
    rgb = np.full((46, 64, 3), 128, np.uint8)
    for _ in range(12):  # colour blocks whose edges fall inside chroma blocks too
        y, x, hh, ww = rng.integers(0, 40), rng.integers(0, 58), rng.integers(3, 15), rng.integers(3, 15)
        rgb[y:y + hh, x:x + ww] = rng.integers(30, 225, 3)  # (in gamut after the chroma average)
    src = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format=pix_fmt, dst_colorspace=sws_colorspace(colorspace), src_color_range=ColorRange.JPEG,
        dst_color_range=ColorRange.JPEG)
    src.colorspace, src.color_range = colorspace, 2
    back = rgb_to_av(av_to_rgb_numpy(src), pix_fmt=pix_fmt, colorspace=colorspace, color_range=2)
    def planes(f):  # Y, Cb, Cr sample arrays (NV12: its interleaved plane split)
        rows = [np.frombuffer(p, np.uint8).reshape(p.height, -1).astype(int) for p in f.planes]
        if f.format.name == "nv12":
            w = f.width
            return rows[0][:, :w], rows[1][:, 0:w:2], rows[1][:, 1:w:2]
        return [r[:, :p.width] for r, p in zip(rows, f.planes)]

    for k, (a, b) in enumerate(zip(planes(src), planes(back))):
        assert np.abs(a - b).max() <= 1 and abs((b - a).mean()) < 0.05, (k, (b - a).mean())
    # and a flat colour's chroma is the rounded BT matrix value (swscale gave the floor)
    kr, kb = _KRKB.get(colorspace, _BT601)
    flat = np.zeros((16, 16, 3), np.uint8) + np.array([199, 80, 38], np.uint8)
    out = rgb_to_av(flat, pix_fmt=pix_fmt, colorspace=colorspace, color_range=2)
    r, g, b = 199.0, 80.0, 38.0
    yy = kr * r + (1 - kr - kb) * g + kb * b
    want = (round(128 + (b - yy) / (2 * (1 - kb))), round(128 + (r - yy) / (2 * (1 - kr))))
    assert tuple(int(planes(out)[k][0, 0]) for k in (1, 2)) == want


def test_chapters_of_a_cut_move_with_the_first_frame_kept(tmp_path):
    # --start 1.97 at 25 fps opens on the frame at 2.00, and audio and subtitles move by 2.00:
    # chapters moved by the 1.97 asked for (a 30 ms offset)
    from fractions import Fraction

    import av

    from stream_gpen.io import open_sink, open_source
    from tests.test_fidelity import make_clip

    ch = make_clip(tmp_path / "chapters.mkv", w=64, h=48, n=100, audio=True, chapters=[
        {"id": 1, "start": 0, "end": 2500, "time_base": Fraction(1, 1000), "metadata": {"title": "a"}},
        {"id": 2, "start": 2500, "end": 4000, "time_base": Fraction(1, 1000), "metadata": {"title": "b"}}])
    dst = tmp_path / "cut.mkv"
    with open_source(ch, start=1.97, duration=1.0) as s, open_sink(dst, source=s, preset="ultrafast") as k:
        times = []
        for f in s:
            times.append(f.time)
            k.write(f)
    assert times[0] == pytest.approx(2.0)
    with av.open(str(dst)) as c:
        chapters = c.chapters()
    got = [(c["metadata"]["title"], float(c["start"] * c["time_base"])) for c in chapters]
    assert [t for t, _ in got] == ["a", "b"] and got[1][1] == pytest.approx(0.5, abs=1e-3), got
