"""Session 21 (quality21): a video's picture outside the pasted faces is written as it was
decoded, out-of-range codes and all. Every frame went YUV -> RGB (clipped to its range) -> YUV:
super-white highlights (camcorders, broadcast: 0.3-10% of real clips' samples above 235) came back
at 235 and shadows below 16 at 16, in frames with no face at all. Now the decoded planes are kept
outside the faces' areas (Frame.yuv, Frame.pasted); a frame with no face is not converted at all."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image



def _planes(vf) -> list[np.ndarray]:
    from stream_gpen.io._convert import plane_arrays

    return [p.copy() for p in plane_arrays(vf)]


def _yuv_clip(path, pictures: list[np.ndarray], pix_fmt: str, *, superwhite=True) -> list[list[np.ndarray]]:
    """Lossless H.264 (or HEVC for >8 bits) of ``pictures`` converted to ``pix_fmt`` (BT.709,
    limited range), with a super-white bar (Y above white) and a super-black one (below black)
    along the top and bottom edges; returns each frame's planes as written. (x265 without
    B-frames or frame threads: one loaded CI run had the Matroska muxer refuse a packet, EINVAL,
    from the reordered, threaded default.)"""
    deep = pix_fmt.endswith("10le")
    top = 1023 if deep else 255
    written = []
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx265" if deep else "libx264", rate=25,
                         options={"x265-params": "lossless=1:log-level=error:bframes=0:frame-threads=1"} if deep else {"qp": "0",
                                                                                            "preset": "ultrafast"})
        h, w = pictures[0].shape[:2]
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        s.codec_context.colorspace, s.codec_context.color_range = 1, 1
        for i, rgb in enumerate(pictures):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace=av.video.reformatter.Colorspace.ITU709,
                dst_color_range=av.video.reformatter.ColorRange.MPEG)
            y = _planes(vf)[0]
            if superwhite:
                y[:6] = top - 3 * (top // 255)  # 252 (1011): above white (235 / 940)
                y[-6:] = 2 * (top // 255)  # 2 (8): below black (16 / 64)
            out = av.VideoFrame(w, h, pix_fmt)
            from stream_gpen.io._convert import plane_arrays

            dst = plane_arrays(out)
            dst[0][...] = y
            for d, src in zip(dst[1:], _planes(vf)[1:]):
                d[...] = src
            out.colorspace, out.color_range = 1, 1
            out.pts, out.time_base = i, Fraction(1, 25)
            written.append(_planes(out))
            for p in s.encode(out):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return written


def _decoded(path) -> list[list[np.ndarray]]:
    with av.open(str(path)) as c:
        return [_planes(f) for f in c.decode(video=0)]


def _face_picture(shared) -> np.ndarray:
    """A 640x400 frame: a small photo of a face (its crop well inside the frame) on grey."""
    im = Image.open(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg").convert("RGB")
    out = np.full((400, 640, 3), 120, np.uint8)
    out[140:260, 240:400] = np.asarray(im.resize((160, 120)))
    return out


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv420p10le"])
def test_a_frame_without_faces_comes_back_as_decoded(tmp_path, enh, pix_fmt):
    rng = np.random.default_rng(4)
    pictures = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(4)]
    src = tmp_path / "in.mkv"
    written = _yuv_clip(src, pictures, pix_fmt)
    deep = pix_fmt.endswith("10le")
    s = enh.enhance_file(src, tmp_path / "o.mkv", **({"codec": "hevc"} if deep else {"crf": 0}))
    assert s.faces_restored == 0
    got = _decoded(tmp_path / "o.mkv")
    assert len(got) == 4
    if deep:  # (x265's crf 0 is not lossless: the levels, not every sample)
        assert got[0][0].max() >= 1000 and got[0][0].min() <= 16
        return
    for a, b in zip(written, got):
        for pa, pb in zip(a, b):
            assert np.array_equal(pa, pb)


def test_outside_the_faces_the_decoded_picture_is_kept(tmp_path, shared, enh):
    src = tmp_path / "face.mkv"
    written = _yuv_clip(src, [_face_picture(shared)] * 3, "yuv420p")
    s = enh.enhance_file(src, tmp_path / "o.mkv", crf=0)
    assert s.faces_restored >= 3
    got = _decoded(tmp_path / "o.mkv")
    y_in, y_out = written[0][0], got[0][0]
    assert y_out[:6].min() == 252 and y_out[-6:].max() == 2  # the bars, whole (the face's area too)
    changed = np.argwhere(y_in != y_out)
    assert len(changed) > 0  # the face's area went through RGB (identity restorer: its rounding)
    ys, xs = changed[:, 0], changed[:, 1]
    # only inside the face's area: a box around it, not the frame (the bars lie outside it)
    assert ys.min() > 6 and ys.max() < 400 - 6 and (xs.max() - xs.min()) < 400


def test_the_hi_bit_bars_outside_faces_are_kept(tmp_path, shared, enh):
    src = tmp_path / "face10.mkv"
    _yuv_clip(src, [_face_picture(shared)] * 2, "yuv420p10le")
    enh.enhance_file(src, tmp_path / "o.mkv", codec="hevc")
    got = _decoded(tmp_path / "o.mkv")
    # (HEVC's default crf rings at the bars' edges; clipped, they were 940 and 64)
    assert np.median(got[0][0][:6]) > 990 and np.median(got[0][0][-6:]) < 30


def test_super_whites_beside_a_face_are_kept_in_its_area(tmp_path, shared, enh):
    """tracking21: the faces' areas (each crop's bounding box, about twice the face) were taken
    whole from the RGB, clipped: a super-white bar crossing one showed a 15-level step along the
    box's edge once graded. The faces' changes are added to the decoded samples instead."""
    import av as _av

    picture = _face_picture(shared)
    src = tmp_path / "bar.mkv"
    with _av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"qp": "0", "preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 640, 400, "yuv420p"
        for i in range(3):
            vf = _av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(
                format="yuv420p", dst_colorspace=_av.video.reformatter.Colorspace.ITU709,
                dst_color_range=_av.video.reformatter.ColorRange.MPEG)
            from stream_gpen.io._convert import plane_arrays

            plane_arrays(vf)[0][:, 236:244] = 250  # a lit edge beside a face, inside its crop's box (x 234-327)
            vf.pts, vf.colorspace, vf.color_range = i, 1, 1
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    s = enh.enhance_file(src, tmp_path / "o.mkv", crf=0)
    assert s.faces_restored >= 3
    y = _decoded(tmp_path / "o.mkv")[0][0]
    bar = y[150:230, 237:243]
    assert (bar >= 248).mean() > 0.97, np.unique(bar, return_counts=True)  # (clipped whole: 235 along the box)


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="mprotect through libc: Linux")
def test_rgb_ending_at_a_page_boundary_does_not_crash_the_conversion(tmp_path):
    """Fresh-clone CI, session 21: swscale's SIMD reads a little past an input picture's last row;
    a face area's RGB (a small array) ending at the end of a page of memory, the next one unmapped,
    crashed the process (segmentation fault). Checked in a child process, behind a guard page."""
    import subprocess
    import sys

    code = '''
import ctypes, mmap, numpy as np
from stream_gpen.io._convert import rgb_to_av
PAGE = mmap.PAGESIZE
libc = ctypes.CDLL(None)
for shape in [(100, 98, 3), (38, 30, 3), (240, 322, 3), (64, 64, 3)]:
    n = int(np.prod(shape))
    pages = -(-n // PAGE) + 1
    m = mmap.mmap(-1, pages * PAGE)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    assert libc.mprotect(ctypes.c_void_p(addr + (pages - 1) * PAGE), PAGE, 0) == 0
    a = np.frombuffer(m, np.uint8, count=n, offset=(pages - 1) * PAGE - n).reshape(shape)
    a[...] = 128
    for pix in ("yuv420p", "yuv444p"):
        rgb_to_av(a, pix_fmt=pix, colorspace=1, color_range=1)
print("ok")
'''
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])
