"""Hunt 15 (phone files, --aligned): a GoPro telemetry track copied into .mp4, odd-sized VP9
kept odd, --aligned without the detector's weights, and `info` naming data tracks and the way a
rotated clip is turned."""
from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stream_gpen.cli import main
from tests._clips import copy_through, write_video


# --- --aligned needs no detector -----------------------------------------------------------------
def test_aligned_runs_offline_without_detector_weights(tmp_path, monkeypatch, shared):
    """Was: exit 3 "weights retinaface-mobilenet0.25 ... not found" offline (and the 104 MB
    ResNet-50 fetched on CUDA), though an aligned crop is never detected on: a photo, a folder
    and a video of crops, with an empty weights cache."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("STREAM_GPEN_HOME", str(home))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    from stream_gpen import weights

    monkeypatch.setattr(weights, "_CHECKOUT", tmp_path / "no-checkout")  # (nor a checkout's weights/)
    crop = shared / "data/faces/aligned/codeformer_crop_0143.png"
    crops = tmp_path / "crops"
    crops.mkdir()
    shutil.copy(crop, crops / "a.png")
    import cv2

    small = cv2.imread(str(crop))[::8, ::8][..., ::-1]
    clip = write_video(tmp_path / "crops.mp4", [small] * 3)
    opts = ["--model", "classic", "--device", "cpu", "--aligned", "--quiet"]
    assert main(["enhance", str(crop), "-o", str(tmp_path / "a.png"), *opts]) == 0
    assert main(["enhance", str(crops), "-o", str(tmp_path / "out"), *opts]) == 0
    assert main(["enhance", str(clip), "-o", str(tmp_path / "crops_out.mp4"), *opts]) == 0
    assert (tmp_path / "a.png").is_file() and (tmp_path / "out" / "a.png").is_file()
    assert (tmp_path / "crops_out.mp4").is_file()
    assert not any(home.iterdir())


def test_an_aligned_enhancer_builds_its_detector_only_when_a_view_detects(mobilenet_weights):
    """A server view of an aligned Enhancer with aligned=False builds the detector on first use,
    once for all views."""
    import copy

    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    enh = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, aligned=True)
    assert enh._detector_box[0] is None
    enh.enhance_image(np.zeros((64, 64, 3), np.uint8))
    assert enh._detector_box[0] is None
    view = copy.copy(enh)
    view.aligned = False
    assert view.enhance_image(np.zeros((64, 64, 3), np.uint8)).shape == (64, 64, 3)
    assert enh._detector_box[0] is not None and enh.detector is view.detector


# --- GoPro telemetry ------------------------------------------------------------------------------
def _gopro(path: Path, *, n: int = 25, meta: int = 10, handler: str | None = "GoPro MET") -> Path:
    """A GoPro-like .mp4: 25 fps H.264 and a 'GoPro MET' gpmd track, a packet each 0.1 s (in
    another container, or without the handler: a data track of unknown format)."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        ds = c.add_data_stream("bin_data")
        if handler:
            ds.metadata["handler_name"] = handler
        ds.time_base = Fraction(1, 1000)
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * i % 250, np.uint8), format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        for i in range(meta):
            d = av.Packet(b"DEVC\x00\x00\x00\x08GPS5" + bytes([i]) * 4)
            d.pts = d.dts = 100 * i
            d.duration, d.time_base, d.stream = 100, Fraction(1, 1000), ds
            c.mux(d)
    return path


def _telemetry(path: Path) -> list[tuple[int, bytes]]:
    with av.open(str(path)) as c:
        ds = [s for s in c.streams if s.type == "data"]
        assert len(ds) == 1 and ds[0].name == "bin_data" and ds[0].metadata.get("handler_name") == "GoPro MET"
        tb = ds[0].time_base
        return [(round(p.pts * tb * 1000), bytes(p)[-1:]) for p in c.demux(ds[0]) if p.size]


@pytest.mark.parametrize("ext", [".mp4", ".mov"])
def test_gopro_telemetry_is_copied_into_mp4_and_mov(tmp_path, ext):
    """Was: "data stream #1 (GoPro MET) dropped: mp4 does not accept timed metadata without a codec
    FFmpeg can copy", though FFmpeg's mp4/mov muxers write it back as a gpmd track."""
    src = _gopro(tmp_path / "GX010001.MP4")
    out = tmp_path / f"o{ext}"
    sink = copy_through(src, out)
    assert not [m for m in sink.dropped + sink.fallbacks if "data stream" in m]
    assert _telemetry(out) == [(100 * i, bytes([i])) for i in range(10)]
    assert b"gpmd" in out.read_bytes()  # (its sample entry, as GoPro's tools look for it)


def test_gopro_telemetry_is_cut_with_the_video(tmp_path):
    src = _gopro(tmp_path / "GX010001.MP4")
    copy_through(src, tmp_path / "o.mp4", source_kw={"start": 0.4, "duration": 0.4})
    # (0.4 s in, for 0.4 s: the samples at 0.4 .. 0.7 s, from 0)
    assert _telemetry(tmp_path / "o.mp4") == [(0, b"\x04"), (100, b"\x05"), (200, b"\x06"), (300, b"\x07")]


def test_gopro_telemetry_dropped_from_mkv_says_where_it_is_kept(tmp_path):
    src = _gopro(tmp_path / "GX010001.MP4")
    sink = copy_through(src, tmp_path / "o.mkv")
    assert [m for m in sink.dropped if "data stream" in m] == [
        "data stream #1 (GoPro MET) dropped: GoPro telemetry (gpmd) is copied into .mp4 and .mov only (write one "
        "of those to keep it)"]


def test_data_tracks_are_kept_under_audio_aac(tmp_path):
    """--audio aac is about the audio: a data track was "dropped: as asked (--audio aac)"."""
    src = _gopro(tmp_path / "GX010001.MP4")
    copy_through(src, tmp_path / "o.mp4", audio="aac")
    assert len(_telemetry(tmp_path / "o.mp4")) == 10


# --- odd sizes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("codec, ext, expect, note", [
    ("vp9", ".webm", (53, 39), None),   # libvpx-vp9 encodes odd 4:2:0 sizes: nothing padded
    ("av1", ".mkv", (53, 39), None),    # SVT-AV1 too
    ("h264", ".mp4", (54, 40), "libx264 encodes yuv420p at an even width and height only: its chroma has half "
                               "the width and height"),
])
def test_an_odd_420_size_is_padded_only_for_encoders_that_need_it(tmp_path, codec, ext, expect, note):
    """Was: an odd 427x239 VP9 .webm came back 428x240 ("yuv420p halves the chroma's width and
    height, which must then be even"), its edge row and column repeated."""
    rng = np.random.default_rng(0)
    src = write_video(tmp_path / "odd.mkv", [rng.integers(0, 255, (39, 53, 3), np.uint8) for _ in range(3)],
                      codec="ffv1", pix_fmt="yuv420p")
    sink = copy_through(src, tmp_path / f"o{ext}", codec=codec, preset=None)
    with av.open(str(tmp_path / f"o{ext}")) as c:
        f = next(c.decode(video=0))
        assert (f.width, f.height) == expect and f.format.name == "yuv420p"
    said = [m for m in sink.fallbacks if "odd frame size" in m]
    assert said == ([] if note is None else [f"odd frame size 53x39: pad to 54x40 ({note})"])


# --- info -----------------------------------------------------------------------------------------
def test_info_lists_data_tracks_and_says_which_the_output_drops(tmp_path):
    """Was: no data tracks in `info`, and nothing in its plan about the telemetry that `enhance`
    then dropped."""
    from stream_gpen.commands import describe_input

    info = describe_input(str(_gopro(tmp_path / "GX010001.MP4")))
    assert info["data"] == [{"stream": 1, "name": "GoPro MET", "codec": "bin_data"}]
    assert not [line for line in info["plan"] if "data stream" in line]  # (.mp4 keeps it)
    ts = _gopro(tmp_path / "klv.ts", n=5, meta=1, handler=None)  # a private data stream of MPEG-TS: of unknown format
    info = describe_input(str(ts))
    assert [t["codec"] for t in info["data"]] == [None]
    said = [line for line in info["plan"] if "data stream" in line]
    assert said == ["data stream #1 (unknown codec) dropped: its format is unknown (FFmpeg names no codec for it), "
                    "so it is not copied"]
    sink = copy_through(ts, tmp_path / "o.ts")  # (the same words as enhance)
    assert [m for m in sink.dropped if "data stream" in m] == said


@pytest.mark.parametrize("display, corner, words", [
    (-90, "tr", "90 degrees clockwise"),          # an iPhone portrait clip (ffprobe's rotate=90)
    (90, "bl", "90 degrees counter-clockwise"),   # rotate=270
    (180, "br", "180 degrees"),
])
def test_info_says_which_way_a_clip_is_turned(tmp_path, capsys, display, corner, words):
    """Was: "turned upright (270 degrees)" for an iPhone portrait clip, the way ffprobe's rotate tag
    says 90, and no direction. The words match what the frames get: the stored top-left corner
    lands top right for a clockwise quarter turn."""
    from stream_gpen.commands import describe_input
    from stream_gpen.io import open_source

    img = np.full((48, 64, 3), 90, np.uint8)
    img[:12, :16] = (255, 0, 0)
    clip = write_video(tmp_path / "r.mp4", [img] * 2, setup=lambda s: s.set_display_rotation(display))
    with open_source(clip, autorotate=True) as src:
        f = next(src)
        out = f.image.numpy().copy()
        f.release()
    h, w = out.shape[:2]
    spots = {"tl": out[2, 2], "tr": out[2, w - 3], "bl": out[h - 3, 2], "br": out[h - 3, w - 3]}
    assert max(spots, key=lambda k: int(spots[k][0]) - int(spots[k][1])) == corner
    info = describe_input(str(clip))
    assert f"turned upright: {words}, as its display matrix says, and written upright" in info["plan"]
    assert main(["info", str(clip)]) == 0
    assert f"rotation_applied     {words}\n" in capsys.readouterr().out


def test_gopro_telemetry_is_kept_by_the_no_face_stream_copy(tmp_path, caplog):
    """--copy-if-no-faces (the remux) dropped the gpmd track "not copied" where the encoding sink keeps it."""
    from stream_gpen.io._remux import remux

    src = _gopro(tmp_path / "GX010001.MP4")
    for ext in (".mp4", ".mov"):
        assert remux(src, tmp_path / f"o{ext}") == 25
        assert _telemetry(tmp_path / f"o{ext}") == [(100 * i, bytes([i])) for i in range(10)]
    with caplog.at_level("INFO", logger="stream_gpen"):
        remux(src, tmp_path / "o.mkv")
    assert "data stream #1 (GoPro MET) dropped: GoPro telemetry (gpmd) is copied into .mp4 and .mov only" in caplog.text


def test_a_dropped_track_is_warned_once_with_copy_if_no_faces(tmp_path, mobilenet_weights, caplog):
    """--copy-if-no-faces into .mkv warned of the dropped GoPro track twice: the re-encode, then the remux."""
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    src = _gopro(tmp_path / "GX010001.MP4")
    enh = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False)
    with caplog.at_level("WARNING", logger="stream_gpen"):
        s = enh.enhance_file(src, tmp_path / "o.mkv", copy_if_no_faces=True)
    assert s.encoder == "copy"
    said = [r.getMessage() for r in caplog.records if "GoPro MET" in r.getMessage()]
    assert len(said) == 1, said
