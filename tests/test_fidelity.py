"""What a demanding user would lose *silently* in outputs that otherwise look fine.

Pixel shape (anamorphic SAR), colour matrix/range (decode, encode and tags agree), HDR tags,
container metadata (tags, chapters, timecode, attachments) and photo metadata (ICC, EXIF, DPI,
PNG chunks, JPEG subsampling) survive ``enhance``. Inputs are tiny synthetic clips and photos;
an identity restorer keeps the pixels, so every difference is the I/O's.
"""
from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace
from PIL import Image, ImageCms, JpegImagePlugin, PngImagePlugin

from _doubles import IdentityRestorer
from stream_gpen import Enhancer
from stream_gpen.cli import main
from stream_gpen.errors import EncodeError
from stream_gpen.io import open_source, remux
from stream_gpen.io._sink import set_container_sar



@pytest.fixture(scope="module")
def enh(mobilenet_weights):
    return Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, batch_size=2, progress=False)


@pytest.fixture
def cli_env(tmp_path, monkeypatch, mobilenet_weights):
    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    return ["--model", "classic", "--device", "cpu", "--detector-weights", str(mobilenet_weights), "--quiet"]


_FAST = {"libx264": {"preset": "ultrafast", "qp": "0"},
         "libx265": {"preset": "ultrafast", "x265-params": "lossless=1:log-level=error"},
         "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "lossless": "1"}}
_SPACE = {1: Colorspace.ITU709, 5: Colorspace.ITU601, 6: Colorspace.ITU601, 9: Colorspace.BT2020}


def bars(w: int, h: int) -> np.ndarray:
    """Saturated colour bars on top (where a wrong matrix shows most), a grey ramp below."""
    cols = np.array([[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
                     [235, 16, 235], [235, 16, 16], [16, 16, 235], [16, 16, 16]], np.uint8)
    img = np.repeat(np.repeat(cols, (w + 7) // 8, axis=0)[:w][None], h, axis=0).copy()
    img[h // 2:] = np.linspace(0, 255, w).round().astype(np.uint8)[None, :, None]
    return img


def player_matrix(cs: int, w: int, h: int):
    """What a player decodes with: the tag, else BT.709 for HD and BT.601 for SD (mpv, VLC)."""
    return _SPACE.get(cs) or (Colorspace.ITU709 if (w >= 1280 or h > 576) else Colorspace.ITU601)


def make_clip(path: Path, *, w: int = 72, h: int = 48, n: int = 3, codec: str = "libx264", pix: str = "yuv420p",
              sar: Fraction | None = None, rotation: int | None = None, cs: int | None = None, rng: int | None = None,
              prim: int | None = None, trc: int | None = None, img: np.ndarray | None = None,
              options: dict | None = None, tags: dict | None = None, vtags: dict | None = None,
              chapters: list | None = None, audio: bool = False, attach: tuple | None = None) -> Path:
    img = bars(w, h) if img is None else img
    with av.open(str(path), "w", options=options or {}) as c:
        c.metadata.update(tags or {})
        vs = c.add_stream(codec, rate=25)
        vs.width, vs.height, vs.pix_fmt = w, h, pix
        cc = vs.codec_context
        cc.options = _FAST.get(codec, {})
        for attr, v in (("colorspace", cs), ("color_range", rng), ("color_primaries", prim), ("color_trc", trc)):
            if v is not None:
                setattr(cc, attr, v)
        if sar is not None:
            cc.sample_aspect_ratio = sar
            set_container_sar(vs, sar)  # mkv/webm read it from the stream, which PyAV does not set
        if rotation is not None:
            vs.set_display_rotation(rotation)
        vs.metadata.update(vtags or {})
        a = None
        if audio:
            a = c.add_stream("aac", rate=48000)
            a.layout = "stereo"
            a.metadata.update({"language": "jpn", "title": "commentary"})
        if chapters:
            c.set_chapters(chapters)
        if attach:
            c.add_attachment(*attach)
        space = player_matrix(cs or 2, w, h)
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(
                format=pix, dst_colorspace=space, src_color_range=ColorRange.JPEG,
                dst_color_range=ColorRange.JPEG if rng == 2 else ColorRange.MPEG)
            for p in vs.encode(vf):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        if a is not None:
            from tests._clips import write_audio

            write_audio(c, a, n / 25, tone_hz=None)
    return path


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        f = next(c.decode(vs))
        rgb = f.reformat(format="rgb24", src_colorspace=player_matrix(int(f.colorspace), f.width, f.height),
                         src_color_range=ColorRange.JPEG if (int(f.color_range) == 2 or f.format.name.startswith("yuvj"))
                         else ColorRange.MPEG, dst_color_range=ColorRange.JPEG).to_ndarray()
        sar = vs.sample_aspect_ratio
        return {"size": (f.width, f.height), "sar": Fraction(sar) if sar else Fraction(1), "rgb": rgb,
                "pix": f.format.name, "cs": int(f.colorspace), "range": int(f.color_range),
                "prim": int(f.color_primaries), "trc": int(f.color_trc), "tags": dict(c.metadata),
                "streams": [(s.type, dict(s.metadata)) for s in c.streams], "chapters": c.chapters()}


# --- 1. non-square pixels ----------------------------------------------------------------------
SAR_CASES = [
    # (input name, input codec, SAR, output name, output codec)
    ("dvd.mp4", "libx264", Fraction(32, 27), "o.mp4", "auto"),      # 16:9 NTSC DVD
    ("dv.mkv", "libx264", Fraction(10, 11), "o.mkv", "auto"),       # 4:3 NTSC DV
    ("pal.mov", "libx264", Fraction(64, 45), "o.mov", "auto"),      # 16:9 PAL DVD
    ("hdv.mp4", "libx264", Fraction(4, 3), "o.avi", "auto"),        # HDV 1440x1080
    ("dvd.mp4", "libx264", Fraction(8, 9), "o.ts", "auto"),
    ("dvd.webm", "libvpx-vp9", Fraction(32, 27), "o.webm", "auto"),  # VP9: only the container has it
    ("dvd.mkv", "libx264", Fraction(40, 33), "o.mkv", "av1"),       # AV1: no SAR in the bitstream either
    ("dvd.mkv", "libx264", Fraction(16, 15), "o.mp4", "hevc"),
]


@pytest.mark.parametrize("src_name, codec, sar, dst_name, out_codec", SAR_CASES,
                         ids=[f"{c[0]}-{c[2]}-{c[3]}-{c[4]}" for c in SAR_CASES])
def test_sample_aspect_ratio_kept(tmp_path, enh, src_name, codec, sar, dst_name, out_codec):
    """Before: no output carried the SAR, so a 16:9 DVD played squeezed to 3:2."""
    src = make_clip(tmp_path / src_name, codec=codec, sar=sar, n=10 if src_name.endswith(".ts") else 3)
    a = probe(src)
    # the input really is anamorphic (WebM stores an integer display width: 72 * 32/27 -> 85)
    assert abs(a["sar"] - sar) <= (Fraction(1, 72) if src_name.endswith(".webm") else 0)
    summary = enh.enhance_file(src, tmp_path / dst_name, codec=out_codec)
    b = probe(tmp_path / dst_name)
    assert b["size"] == a["size"]
    assert b["sar"] == a["sar"]
    assert not [f for f in summary.fallbacks if "aspect" in f]


def test_sample_aspect_ratio_rotated_and_odd(tmp_path, enh):
    """A quarter turn inverts the pixel shape; padding to even sizes keeps it."""
    src = make_clip(tmp_path / "r.mov", sar=Fraction(32, 27), rotation=90)
    with open_source(src, autorotate=True) as s:
        assert (s.metadata.width, s.metadata.height, s.metadata.sample_aspect_ratio) == (48, 72, Fraction(27, 32))
    enh.enhance_file(src, tmp_path / "r.mp4")
    b = probe(tmp_path / "r.mp4")
    assert b["size"] == (48, 72) and b["sar"] == Fraction(27, 32)
    # display aspect upright = 1 / (72 * 32/27 / 48)
    assert Fraction(48) * b["sar"] / 72 == 1 / (Fraction(72) * Fraction(32, 27) / 48)
    src = make_clip(tmp_path / "odd.mkv", codec="ffv1", w=71, h=47, sar=Fraction(10, 11))
    enh.enhance_file(src, tmp_path / "odd.mp4")
    b = probe(tmp_path / "odd.mp4")
    assert b["size"] == (72, 48) and b["sar"] == Fraction(10, 11)


@pytest.mark.parametrize("src_name, codec, dst_name", [("a.webm", "libvpx-vp9", "c.mkv"), ("a.mkv", "libx264", "c.mp4"),
                                                       ("a.mp4", "libx264", "c.avi")])
def test_sample_aspect_ratio_stream_copy(tmp_path, src_name, codec, dst_name):
    """The remux path (--copy-if-no-faces) copies the container's SAR, not only the codec's."""
    src = make_clip(tmp_path / src_name, codec=codec, sar=Fraction(32, 27))
    remux(src, tmp_path / dst_name)
    assert abs(probe(tmp_path / dst_name)["sar"] - Fraction(32, 27)) <= Fraction(1, 72)


def test_stream_copy_into_avi_refuses_b_frames(tmp_path):
    """MP4 H.264 into AVI now copies (Annex B conversion); B-frames, whose order AVI cannot
    store, are refused up front (the API then keeps the re-encoded output) and nothing is left."""
    with av.open(str(tmp_path / "b.mp4"), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.codec_context.options = {"preset": "veryfast", "bf": "2"}
        for i in range(8):
            img = np.full((48, 64, 3), 20 * i, np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    with pytest.raises(EncodeError, match="has B-frames, whose display order the avi container cannot store"):
        remux(tmp_path / "b.mp4", tmp_path / "b.avi")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.mp4"]


# --- 2./3. colour matrix, range, bit depth, HDR tags -------------------------------------------
COLOUR_CASES = {
    # name: (make_clip kwargs, expected output tags (matrix, range, primaries, transfer))
    "bt601 limited": (dict(cs=6, rng=1, prim=6, trc=6), (6, 1, 6, 6)),
    "bt709 limited": (dict(cs=1, rng=1, prim=1, trc=1), (1, 1, 1, 1)),
    "bt2020nc limited": (dict(cs=9, rng=1, prim=9, trc=14), (9, 1, 9, 14)),
    "bt601 full": (dict(cs=6, rng=2), (6, 2, 2, 2)),
    "bt709 full": (dict(cs=1, rng=2), (1, 2, 2, 2)),
    "untagged SD": (dict(), (6, 1, 2, 2)),  # the matrix used is written as a tag
    "untagged HD": (dict(w=1280, h=720, n=1), (1, 1, 2, 2)),  # was decoded as BT.601: ~17 levels off
    "bt709 10-bit": (dict(pix="yuv420p10le", cs=1, rng=1, prim=1, trc=1), (1, 1, 1, 1)),
    "PQ 10-bit": (dict(pix="yuv420p10le", codec="libx265", cs=9, rng=1, prim=9, trc=16), (9, 1, 9, 16)),
    "HLG 10-bit": (dict(pix="yuv420p10le", codec="libx265", cs=9, rng=1, prim=9, trc=18), (9, 1, 9, 18)),
}


def _bar_means(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    bw = (w + 7) // 8
    return np.array([a[2:h // 2 - 2, i * bw + 2:(i + 1) * bw - 2].reshape(-1, 3).mean(0) for i in range(8)])


@pytest.mark.parametrize("case", list(COLOUR_CASES))
def test_colour_round_trip(tmp_path, enh, case):
    """Decoded as a player would (honouring the tags), output = input up to rounding; the tags
    describe the pixels. 10-bit / HDR: 10-bit output that keeps the PQ/HLG code values and says so."""
    kw, want = COLOUR_CASES[case]
    src = make_clip(tmp_path / "c.mkv", **{"n": 2, **kw})
    enh.enhance_file(src, tmp_path / "o.mp4", crf=0)  # lossless encode: only conversions differ
    a, b = probe(src), probe(tmp_path / "o.mp4")
    assert (b["cs"], b["range"], b["prim"], b["trc"]) == want
    assert b["pix"].replace("yuvj", "yuv") == ("yuv420p10le" if "10-bit" in case else "yuv420p")
    x, y = a["rgb"].astype(float), b["rgb"].astype(float)
    # a matrix mix-up shifts saturated bars by 10-30 levels, a range mix-up ~15-20
    assert np.abs(_bar_means(x) - _bar_means(y)).max() < 3.5
    assert np.abs(x - y)[x.shape[0] // 2 + 2:].mean() < 1.5  # the grey ramp


# --- 4. container metadata ----------------------------------------------------------------------
PHONE_TAGS = {"creation_time": "2024-05-06T07:08:09.000000Z", "location": "+48.8584+002.2945/",
              "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/",
              "com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "iPhone 15 Pro",
              "title": "Birthday", "comment": "grandma's 90th"}
CHAPTERS = [{"id": 1, "start": 0, "end": 1, "time_base": Fraction(1, 25), "metadata": {"title": "Intro"}},
            {"id": 2, "start": 1, "end": 3, "time_base": Fraction(1, 25), "metadata": {"title": "Cake"}}]


def _lower(d: dict) -> dict:
    return {k.lower(): v for k, v in d.items()}


def phone_clip(path: Path) -> Path:
    return make_clip(path, n=3, options={"movflags": "use_metadata_tags"}, tags=PHONE_TAGS, chapters=CHAPTERS,
                     vtags={"timecode": "01:02:03:04", "language": "fra", "title": "main camera"}, audio=True)


@pytest.mark.parametrize("dst_name", ["o.mp4", "o.mov", "o.mkv"])
def test_phone_metadata_kept(tmp_path, cli_env, dst_name):
    """Before: every tag, the chapters, the timecode and track languages/titles were dropped."""
    src = phone_clip(tmp_path / "phone.mov")
    assert main(["enhance", str(src), "-o", str(tmp_path / dst_name), *cli_env]) == 0
    b = probe(tmp_path / dst_name)
    tags = _lower(b["tags"])
    for k, v in PHONE_TAGS.items():
        assert tags.get(k.lower()) == v, (k, tags)
    assert [c["metadata"]["title"] for c in b["chapters"]] == ["Intro", "Cake"]
    assert [float(c["start"] * c["time_base"]) for c in b["chapters"]] == [0.0, 0.04]
    (_, video), (_, audio) = b["streams"][:2]
    video, audio = _lower(video), _lower(audio)
    assert video.get("timecode") == "01:02:03:04"  # mov/mp4: a new tmcd track; mkv: a tag
    assert video.get("language") == "fra" and (video.get("title") or video.get("name")) == "main camera"
    assert (audio.get("title") or audio.get("name")) == "commentary"
    assert audio.get("language") == "jpn"
    if dst_name != "o.mkv":
        assert any(s[0] == "data" and "timecode" in s[1] for s in b["streams"])  # the tmcd track


def test_metadata_a_container_cannot_hold_is_reported(tmp_path, enh):
    src = phone_clip(tmp_path / "phone.mov")
    s = enh.enhance_file(src, tmp_path / "o.avi")
    assert any("2 chapter(s) dropped" in f for f in s.fallbacks), s.fallbacks
    assert any("timecode 01:02:03:04 dropped" in f for f in s.fallbacks), s.fallbacks
    assert any("container tags dropped: the avi container cannot hold com.apple.quicktime.location.ISO6709" in f
               for f in s.fallbacks), s.fallbacks
    assert _lower(probe(tmp_path / "o.avi")["tags"]).get("title") == "Birthday"  # avi INFO tags


def test_mkv_attachments_and_stream_copy_metadata(tmp_path, enh):
    font = ("DejaVuSans.ttf", "application/x-truetype-font", b"\x00\x01\x00\x00fake font")
    src = make_clip(tmp_path / "a.mkv", tags={"title": "Film"}, chapters=CHAPTERS, attach=font)
    enh.enhance_file(src, tmp_path / "o.mkv")
    with av.open(str(tmp_path / "o.mkv")) as c:
        att = [s for s in c.streams if s.type == "attachment"]
        assert [(s.name, s.mimetype, bytes(s.data)) for s in att] == [font]
    s = enh.enhance_file(src, tmp_path / "o.mp4")
    assert any("attachment DejaVuSans.ttf" in f and "dropped" in f for f in s.fallbacks), s.fallbacks
    remux(src, tmp_path / "r.mkv")  # the stream-copy path keeps them too
    b = probe(tmp_path / "r.mkv")
    assert b["tags"]["title"] == "Film" and len(b["chapters"]) == 2
    assert [t for t, _ in b["streams"]] == ["video", "attachment"]


def test_cover_art_kept(tmp_path, enh):
    """An attached picture (phone/album cover) was silently left out of every output."""
    import io

    make_clip(tmp_path / "v.mp4")
    jpg = io.BytesIO()
    Image.new("RGB", (16, 16), (255, 0, 0)).save(jpg, "JPEG")
    with av.open(str(tmp_path / "v.mp4")) as i, av.open(str(tmp_path / "c.mp4"), "w") as o:
        m = {s.index: o.add_stream_from_template(s) for s in i.streams}
        cover = o.add_stream("mjpeg")
        cover.width = cover.height = 16
        cover.pix_fmt = "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        for p in i.demux():
            if p.dts is not None:
                p.stream = m[p.stream.index]
                o.mux(p)
        pk = av.Packet(jpg.getvalue())
        pk.stream, pk.pts, pk.dts = cover, 0, 0
        o.mux(pk)
    pic = int(av.stream.Disposition.attached_pic)
    for src, dst in (("c.mp4", "o.mkv"), ("o.mkv", "o.mp4")):  # mkv holds it as an attachment
        enh.enhance_file(tmp_path / src, tmp_path / dst)
        with av.open(str(tmp_path / dst)) as c:
            covers = [s for s in c.streams.video if int(s.disposition) & pic]
            assert len(covers) == 1 and bytes(next(c.demux(covers[0]))) == jpg.getvalue()
    # QuickTime .mov: FFmpeg's mov muxer writes no cover atom, so the cover vanished without a
    # word; it is now dropped with a note, as for other containers without covers
    summary = enh.enhance_file(tmp_path / "c.mp4", tmp_path / "o.mov")
    assert any("cover art" in f and "cannot hold it" in f for f in summary.fallbacks), summary.fallbacks


def test_gif_cover_of_an_mkv_is_kept(tmp_path, enh):
    """An .mkv's GIF cover (an attachment FFmpeg reads back as a cover) was dropped as "could not
    be read" once covers went through the JPEG/PNG-only cover_attachment(), by the encoding sink
    and by the stream copy alike."""
    import io

    gif = io.BytesIO()
    Image.new("P", (8, 8), 3).save(gif, "GIF")
    make_clip(tmp_path / "v.mkv", attach=("cover.gif", "image/gif", gif.getvalue()))
    pic = int(av.stream.Disposition.attached_pic)
    with av.open(str(tmp_path / "v.mkv")) as c:
        assert [int(s.disposition) & pic for s in c.streams.video] == [0, pic]
    enh.enhance_file(tmp_path / "v.mkv", tmp_path / "o.mkv")
    remux(tmp_path / "v.mkv", tmp_path / "r.mkv")
    for out in ("o.mkv", "r.mkv"):
        with av.open(str(tmp_path / out)) as c:
            covers = [s for s in c.streams.video if int(s.disposition) & pic]
            assert len(covers) == 1 and covers[0].metadata.get("mimetype") == "image/gif", out
            assert bytes(next(c.demux(covers[0]))) == gif.getvalue()


# --- 5. photos ---------------------------------------------------------------------------------
_PROFILE: list[bytes] = []


def _p3_like_profile() -> bytes:
    """A real RGB ICC profile (made once: it carries its creation time)."""
    if not _PROFILE:
        _PROFILE.append(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    return _PROFILE[0]


def _photo(w: int = 48, h: int = 32) -> Image.Image:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    a[:, : w // 2] = (200, 60, 40)
    return Image.fromarray(a)


def _exif(orientation: int = 6) -> Image.Exif:
    ex = Image.Exif()
    ex[0x010F], ex[0x0110], ex[0x0112] = "Apple", "iPhone 15 Pro", orientation
    ex.get_ifd(0x8825)[2] = (48.0, 51.0, 30.0)  # GPS latitude
    return ex


def test_jpeg_keeps_profile_exif_dpi_and_subsampling(tmp_path, cli_env):
    """Before: ICC, EXIF, DPI and the comment were dropped and 4:4:4 came back 4:2:0."""
    icc = _p3_like_profile()
    _photo().save(tmp_path / "p.jpg", quality=98, subsampling=0, icc_profile=icc, exif=_exif().tobytes(),
                  dpi=(300, 300), comment=b"grandma", progressive=True)
    assert main(["enhance", str(tmp_path / "p.jpg"), "-o", str(tmp_path / "o.jpg"), *cli_env]) == 0
    with Image.open(tmp_path / "o.jpg") as b:
        assert b.size == (32, 48)  # written upright...
        ex = b.getexif()
        assert ex[0x0112] == 1 and ex[0x010F] == "Apple"  # ...so Orientation says 1; the rest is kept
        assert ex.get_ifd(0x8825)[2] == (48.0, 51.0, 30.0)
        assert b.info["icc_profile"] == icc and b.info["dpi"] == (300, 300)
        assert JpegImagePlugin.get_sampling(b) == 0 and b.info.get("progressive") and b.info["comment"] == b"grandma"


def test_png_webp_tiff_keep_what_they_carry(tmp_path, enh):
    icc = _p3_like_profile()
    im = _photo()
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("Title", "Grandma")
    chunks.add_itxt("Description", "Großmutter", "de", "Beschreibung")
    chunks.add(b"gAMA", struct.pack(">I", 45455))
    im.save(tmp_path / "p.png", pnginfo=chunks, icc_profile=icc, dpi=(150, 150), exif=_exif(1).tobytes())
    im.save(tmp_path / "p.webp", lossless=True, icc_profile=icc, exif=_exif(1).tobytes())
    im.save(tmp_path / "p.tif", compression="tiff_lzw", icc_profile=icc, dpi=(600, 600))
    for name in ("p.png", "p.webp", "p.tif"):
        s = enh.enhance_file(tmp_path / name, tmp_path / f"o{Path(name).suffix}")
        assert s.fallbacks == [] or not any("dropped" in f for f in s.fallbacks), s.fallbacks
    with Image.open(tmp_path / "o.png") as b:
        assert b.info["icc_profile"] == icc and round(b.info["dpi"][0]) == 150 and b.info["gamma"] == 0.45455
        assert b.text == {"Title": "Grandma", "Description": "Großmutter"}
        assert b.getexif()[0x010F] == "Apple"
    with Image.open(tmp_path / "o.webp") as b:
        assert b.info["icc_profile"] == icc and b.getexif()[0x0110] == "iPhone 15 Pro"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.webp").convert("RGB")), np.asarray(im))  # lossless
    with Image.open(tmp_path / "o.tif") as b:
        assert b.info["icc_profile"] == icc and b.info["dpi"] == (600, 600) and b.info["compression"] == "tiff_lzw"


def test_photo_profile_that_does_not_fit_is_dropped_and_reported(tmp_path, enh):
    """A CMYK JPEG is written as RGB: its CMYK profile would describe the wrong pixels."""
    cmyk_icc = bytearray(_p3_like_profile())
    cmyk_icc[16:20] = b"CMYK"  # the header's colour space is all a reader checks first
    Image.new("CMYK", (16, 16), (0, 80, 120, 10)).save(tmp_path / "c.jpg", icc_profile=bytes(cmyk_icc))
    s = enh.enhance_file(tmp_path / "c.jpg", tmp_path / "o.jpg")
    with Image.open(tmp_path / "o.jpg") as b:
        assert b.mode == "RGB" and "icc_profile" not in b.info
    assert any("CMYK ICC profile was dropped" in f for f in s.fallbacks), s.fallbacks
    # and across formats: a PNG's profile and EXIF go into the JPEG written from it
    _photo().save(tmp_path / "x.png", icc_profile=_p3_like_profile(), exif=_exif(1).tobytes())
    enh.enhance_file(tmp_path / "x.png", tmp_path / "x.jpg")
    with Image.open(tmp_path / "x.jpg") as b:
        assert b.info["icc_profile"] == _p3_like_profile() and b.getexif()[0x010F] == "Apple"
