"""Session 23 (perffix23): CPU-side costs per frame that did work twice.

* The sink decoded each pasted face area a second time (to RGB) to learn the picture before the
  faces, and added the faces' changes in int32 with temporaries: ~60 ms of the encoder thread a 4K
  frame with one 750 px face. The picture before the faces is now copied from the frame before the
  paste (:attr:`Frame.unpasted`) and the arithmetic runs in int16, in place.
* The tracker's grey copy of a big frame made the whole frame grey and resized that one channel
  on torch's slow single-channel path (20-27 ms a 4K frame): from a 3x downscale on, the RGB
  picture is resized first.
* The source converted each decoded frame into a new array and copied it into its ring slot:
  it now converts into the slot (or a CUDA ring's pinned staging buffer).
"""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch


def _planes(vf) -> list[np.ndarray]:
    from stream_gpen.io._convert import plane_arrays

    return [p.copy() for p in plane_arrays(vf)]


def _yuv_frame(rng, w: int, h: int, pix_fmt: str):
    """A random ``pix_fmt`` frame (BT.709, limited range) whose codes reach both ends of the
    format's scale (super-whites and super-blacks: the paste must keep their excess)."""
    from stream_gpen.io._convert import plane_arrays

    vf = av.VideoFrame(w, h, pix_fmt)
    top = 1023 if pix_fmt.endswith("10le") else 255
    for p in plane_arrays(vf):
        p[...] = rng.integers(0, top + 1, p.shape)
        p[:4] = top
        p[-4:] = 0
    vf.colorspace, vf.color_range = 1, 1
    return vf


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv420p10le"])
def test_yuv_paste_uses_the_kept_picture_and_matches_the_wide_arithmetic(monkeypatch, pix_fmt):
    """The sink's _yuv_paste decoded each face area of the YUV picture again to learn its RGB
    before the faces (12-14 ms a 4K frame), though the frame held exactly that before the paste,
    and added the change in int32 with three temporaries (12-15 ms). Given the kept picture
    (``unpasted``) it decodes nothing, and its int16 in-place sum is the int32 one, clipped at both
    ends (codes at 0 and at the top of the scale under the face)."""
    import stream_gpen.io._sink as sk
    from stream_gpen.io._convert import av_to_rgb_numpy, plane_arrays, rgb_to_av

    rng = np.random.default_rng(23)
    w, h = 96, 64
    src = _yuv_frame(rng, w, h, pix_fmt)
    high = pix_fmt.endswith("10le")
    before = av_to_rgb_numpy(src, high=high)
    after = before.copy()
    after[10:50, 20:70] = rng.integers(0, 65536 if high else 256, (40, 50, 3)).astype(before.dtype)
    areas = [(17, 7, 71, 53), (60, 40, 90, 63)]  # (odd edges; the two merge into one box)
    top = 1023 if high else 255

    # the reference: main's arithmetic (int32) on a second decode of each box
    ref = sk._yuv_copy(src, pix_fmt, 1, 1)
    for x0, y0, x1, y1 in sk._whole_boxes(areas, w, h):
        decoded = av_to_rgb_numpy(sk._yuv_region(src, (x0, y0, x1, y1), 1), high=high)
        was = plane_arrays(rgb_to_av(decoded, pix_fmt=pix_fmt, colorspace=1, color_range=1))
        now = plane_arrays(rgb_to_av(np.ascontiguousarray(after[y0:y1, x0:x1]), pix_fmt=pix_fmt, colorspace=1,
                                      color_range=1))
        for p, a, b in zip(plane_arrays(ref), was, now):
            sx, sy = sk._subsampling(p, w, h)
            part = p[y0 // sy:y0 // sy + a.shape[0], x0 // sx:x0 // sx + a.shape[1]]
            part[...] = np.clip(part.astype(np.int32) + b.astype(np.int32) - a.astype(np.int32), 0, top)

    kept = [(b, torch.from_numpy(before)[b[1]:b[3], b[0]:b[2]].clone()) for b in sk._whole_boxes(areas, w, h)]

    def no_decode(*a, **k):
        raise AssertionError("a kept area was decoded again")

    monkeypatch.setattr(sk, "_yuv_region", no_decode)
    vf = sk._yuv_copy(src, pix_fmt, 1, 1)
    sk._yuv_paste(vf, src, after, areas, pix_fmt, 1, 1, unpasted=kept)
    for a, b in zip(_planes(ref), _planes(vf)):
        assert np.array_equal(a, b)
    assert max(int(p.max()) for p in _planes(vf)) == top and min(int(p.min()) for p in _planes(vf)) == 0


class _Dimmer:
    """A restorer that visibly changes each face (half its brightness, lifted)."""

    name = "dimmer"
    fallbacks: list = []

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.device = torch.device("cpu")

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        return crops // 2 + 60


def _face_clip(path, shared, pix_fmt: str = "yuv420p") -> None:
    """Two lossless frames of a small face photo on grey, with a super-white bar across the
    face's area (its excess must survive the paste)."""
    from PIL import Image

    from stream_gpen.io._convert import plane_arrays

    im = Image.open(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg").convert("RGB")
    picture = np.full((400, 640, 3), 120, np.uint8)
    picture[140:260, 240:400] = np.asarray(im.resize((160, 120)))
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"qp": "0", "preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 640, 400, pix_fmt
        for i in range(2):
            vf = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace=av.video.reformatter.Colorspace.ITU709,
                dst_color_range=av.video.reformatter.ColorRange.MPEG)
            plane_arrays(vf)[0][:, 236:244] = 250
            vf.pts, vf.time_base, vf.colorspace, vf.color_range = i, Fraction(1, 25), 1, 1
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_a_videos_face_areas_are_not_decoded_twice(tmp_path, shared, mobilenet_weights, monkeypatch):
    """A video frame's faces went into the picture, and the sink then decoded each face's area of
    the kept YUV picture again to learn what was there before them. The pipeline now copies each
    area before the paste (Frame.unpasted): the sink decodes nothing again, and the file is the
    same, sample for sample, as with the second decode."""
    import stream_gpen.io._sink as sk
    import stream_gpen.pipeline as pl
    from stream_gpen import Enhancer

    src = tmp_path / "face.mkv"
    _face_clip(src, shared)
    enh = Enhancer(_Dimmer(), device="cpu", detector_weights=mobilenet_weights, progress=False)
    real_region, note = sk._yuv_region, pl._note_pasted
    decodes = []

    def counted(*a, **k):
        decodes.append(a[1])
        return real_region(*a, **k)

    monkeypatch.setattr(sk, "_yuv_region", counted)
    s = enh.enhance_file(src, tmp_path / "kept.mkv", crf=0)
    assert s.faces_restored >= 2
    assert decodes == []

    def forgetful(frame, *a, **k):  # the areas known, their picture not kept: decoded again
        note(frame, *a, **k)
        frame.unpasted = None

    monkeypatch.setattr(pl, "_note_pasted", forgetful)
    enh.enhance_file(src, tmp_path / "again.mkv", crf=0)
    assert len(decodes) >= 2
    with av.open(str(tmp_path / "kept.mkv")) as a, av.open(str(tmp_path / "again.mkv")) as b:
        pairs = list(zip(a.decode(video=0), b.decode(video=0)))
    assert len(pairs) == 2
    for fa, fb in pairs:
        for pa, pb in zip(_planes(fa), _planes(fb)):
            assert np.array_equal(pa, pb)
    with av.open(str(src)) as c:
        y_in = _planes(next(c.decode(video=0)))[0]
    y_out = _planes(pairs[0][0])[0]
    assert not np.array_equal(y_in, y_out)  # (the face did change)
    assert (y_out[150:230, 237:243] >= 248).mean() > 0.97  # (the bar's excess kept under the face)


def test_tracker_grey_copy_of_a_big_frame_resizes_rgb_first(monkeypatch):
    """The tracker's grey copy (flow, change watch, scene-cut thumbnail) converted the whole frame
    to grey and then resized the one channel, on torch's slow single-channel uint8 path: 20-27 ms a
    4K frame. From a 3x downscale on it resizes the RGB picture (the SIMD channels-last path) and
    makes only the small one grey (~6 ms), within a grey level of the other order and of the float
    path; at smaller factors grey first stays (it is cheaper there)."""
    import cv2

    from stream_gpen.faces._tracker import _small_grey_float, _small_grey_uint8

    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (45, 80, 3), dtype=np.uint8)
    big = torch.from_numpy(cv2.resize(base, (960, 540), interpolation=cv2.INTER_CUBIC))  # smooth, like video
    seen = []
    real = cv2.cvtColor

    def spy(img, code, *a, **k):
        seen.append(img.shape[:2])
        return real(img, code, *a, **k)

    monkeypatch.setattr(cv2, "cvtColor", spy)
    g, t = _small_grey_uint8(big, 135, 240)  # 4x
    assert seen == [(135, 240)]
    g0, t0 = _small_grey_float(big, 135, 240)
    d = np.abs(g.astype(int) - g0.astype(int))
    assert g.shape == (135, 240) and g.dtype == np.uint8 and g.flags.c_contiguous
    assert d.max() <= 1 and d.mean() < 0.3 and np.abs(t - t0).max() < 0.5
    seen.clear()
    _small_grey_uint8(big, 270, 480)  # 2x: grey first
    assert seen == [(540, 960)]


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "nv12", "yuvj422p", "rgb24", "gray"])
def test_decode_converts_into_the_given_array(pix_fmt):
    """A decoded frame was converted into a new RGB array and then copied into its ring slot: a
    full-frame copy per frame (1080p 8.5 -> 7.8 ms, 4K 26.5 -> 22.7 ms). ``out=`` writes the
    same picture into the slot itself."""
    from stream_gpen.io._convert import av_to_rgb_numpy

    rng = np.random.default_rng(7)
    vf = av.VideoFrame.from_ndarray(rng.integers(0, 256, (36, 50, 3), dtype=np.uint8), format="rgb24")
    vf = vf.reformat(format=pix_fmt) if pix_fmt != "rgb24" else vf
    slot = torch.full((36, 50, 3), 7, dtype=torch.uint8)
    got = av_to_rgb_numpy(vf, out=slot.numpy())
    assert np.shares_memory(got, slot.numpy())
    assert np.array_equal(slot.numpy(), av_to_rgb_numpy(vf))


def test_video_frames_are_converted_in_their_ring_slots(tmp_path, monkeypatch):
    """The source converted each frame into a fresh array and copied it into the ring slot; it now
    converts into the slot (a CPU ring; a CUDA ring's pinned staging buffer), with the same
    pictures."""
    import stream_gpen.io._source as so
    from stream_gpen.io import open_source
    from stream_gpen.io._convert import av_to_rgb_numpy

    path = tmp_path / "c.mkv"
    rng = np.random.default_rng(3)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"qp": "0", "preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            vf = av.VideoFrame.from_ndarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), format="rgb24")
            vf = vf.reformat(format="yuv420p")
            vf.pts = i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with av.open(str(path)) as c:
        want = [av_to_rgb_numpy(f) for f in c.decode(video=0)]
    outs = []

    def spy(f, **k):
        outs.append(k.get("out"))
        return av_to_rgb_numpy(f, **k)

    monkeypatch.setattr(so, "av_to_rgb_numpy", spy)
    got = []
    with open_source(str(path)) as src:
        slots = src.ring.slots
        for f in src:
            got.append(f.image.numpy().copy())
            f.release()
    assert len(got) == 3 and all(np.array_equal(a, b) for a, b in zip(want, got))
    assert all(o is not None and np.shares_memory(o, slots.numpy()) for o in outs)
