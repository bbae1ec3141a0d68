"""Unusual but legitimate inputs to `stream-gpen enhance` and the `Enhancer` API.

Each class of input either gives a correct output (frame count, timing, size, audio, colours,
image mode/alpha) or fails with one line and a documented exit code, leaving no file under the
output name. Frames are tiny and few; most clips have no face (the detector runs, nothing is
restored), so the file stays fast; one clip per class that matters carries a real face.
"""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from _clips import write_audio
from _doubles import IdentityRestorer
from stream_gpen import Enhancer, InvalidInputError
from stream_gpen.cli import build_parser, main
from stream_gpen.io import remux
from stream_gpen.io._convert import av_to_rgb_numpy
from stream_gpen.io._sink import can_copy

W, H = 64, 48
CORNERS = {"tl": (220, 40, 40), "tr": (40, 200, 40), "bl": (40, 40, 220), "br": (230, 230, 30)}



@pytest.fixture(scope="module")
def enh(mobilenet_weights):
    return Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, batch_size=2,
                    progress=False)


def picture(w: int = W, h: int = H, i: int = 0) -> np.ndarray:
    a = np.full((h, w, 3), 128, np.uint8)
    p = max(2, min(w, h) // 4)
    a[:p, :p], a[:p, -p:], a[-p:, :p], a[-p:, -p:] = (CORNERS[k] for k in ("tl", "tr", "bl", "br"))
    a[h // 2, (3 * i) % w] = 255  # frames differ
    return a


def corner_means(a: np.ndarray) -> dict:
    h, w = a.shape[:2]
    p = max(2, min(w, h) // 4)
    sl = {"tl": a[1:p - 1, 1:p - 1], "tr": a[1:p - 1, w - p + 1:w - 1], "bl": a[h - p + 1:h - 1, 1:p - 1],
          "br": a[h - p + 1:h - 1, w - p + 1:w - 1]}
    return {k: v.reshape(-1, 3).mean(0) for k, v in sl.items()}


def make_clip(path: Path, *, n: int = 5, w: int = W, h: int = H, codec: str = "libx264", pix_fmt: str = "yuv420p",
              rate=25, audio: str | None = None, audio_s: float | None = None, rotation: int | None = None,
              pts: list[int] | None = None, tb: Fraction | None = None, start: int = 0, fmt: str | None = None) -> Path:
    with av.open(str(path), "w", format=fmt) as c:
        vs = c.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if tb is not None:
            vs.time_base = vs.codec_context.time_base = tb
        vs.codec_context.options = {"libx264": {"preset": "ultrafast", "bf": "0"},
                                    "libx265": {"preset": "ultrafast", "x265-params": "log-level=error"},
                                    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"}}.get(codec, {})
        if rotation is not None:
            vs.set_display_rotation(rotation)
        a = None
        if audio:
            a = c.add_stream(audio, rate=48000 if audio == "libopus" else 44100)
            a.layout = "stereo"
        for i in range(n):
            src = picture(w, h, i)
            vf = av.VideoFrame.from_ndarray(src.mean(2).astype(np.uint8), format="gray") if pix_fmt == "gray" \
                else av.VideoFrame.from_ndarray(src, format="rgb24")
            vf = vf.reformat(format=pix_fmt)
            if pts is not None:
                vf.pts, vf.time_base = pts[i], tb
            elif start:
                vf.pts = start + i
            for p in vs.encode(vf):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        if a is not None:
            write_audio(c, a, audio_s if audio_s is not None else n / rate)
    return path


def video_info(path: Path) -> dict:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return {
            "n": len(frames),
            "size": (frames[0].width, frames[0].height),
            # raw elementary streams carry no pts: frame i is shown at i / 25 (make_clip's rate)
            "times": [round(float(f.pts * f.time_base), 3) if f.pts is not None else i / 25 for i, f in enumerate(frames)],
            # (decoded exactly: swscale's default drifts chroma by a sample at odd sizes, 2 levels here)
            "first": av_to_rgb_numpy(frames[0]),
            "streams": [s.type for s in c.streams],
            "audio": [s.codec_context.name for s in c.streams.audio],
            "video_codec": c.streams.video[0].codec_context.name,
        }


def no_leftovers(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if ".tmp" in p.name or ".remux" in p.name or ".partial" in p.name]


# --- videos: pixel formats, codecs, containers, timing, rotation, audio -------------------------
VIDEO_CASES = {
    # name: (input name, make_clip kwargs, output name, expected audio codec out or None)
    "yuv422 mkv": ("a.mkv", dict(pix_fmt="yuv422p", audio="flac"), "o.mkv", "flac"),
    "10-bit mkv": ("a.mkv", dict(pix_fmt="yuv420p10le"), "o.mp4", None),
    "full range yuvj": ("a.mp4", dict(pix_fmt="yuvj420p", audio="aac"), "o.mp4", "aac"),
    "grey ffv1": ("a.mkv", dict(codec="ffv1", pix_fmt="gray"), "o.mkv", None),
    "hevc": ("a.mp4", dict(codec="libx265"), "o.mp4", None),
    "vp9 webm, default codec": ("a.webm", dict(codec="libvpx-vp9", audio="libopus"), "o.webm", "opus"),
    "mjpeg avi to avi": ("a.avi", dict(codec="mjpeg", pix_fmt="yuvj420p"), "o.avi", None),
    "mp3 audio": ("a.mkv", dict(audio="libmp3lame"), "o.mp4", "mp3float"),
    "mpeg4 mkv to mov": ("a.mkv", dict(codec="mpeg4", audio="libopus"), "o.mov", "aac"),
    "pcm mkv to mp4": ("a.mkv", dict(audio="pcm_s16le"), "o.mp4", "aac"),
    "pcm mkv to mov": ("a.mkv", dict(audio="pcm_s16le"), "o.mov", "pcm_s16le"),
    "ntsc rate, mp4 to ts": ("a.mp4", dict(rate=Fraction(30000, 1001), audio="aac"), "o.ts", "aac"),
    "non-zero start": ("a.mp4", dict(start=50, audio="aac"), "o.mp4", "aac"),
    "vfr": ("a.mkv", dict(n=6, pts=[0, 40, 80, 200, 210, 400], tb=Fraction(1, 1000)), "o.mkv", None),
    "audio longer than video": ("a.mp4", dict(audio="aac", audio_s=1.0), "o.mp4", "aac"),
    "odd size": ("a.mkv", dict(codec="ffv1", pix_fmt="yuv420p", w=65, h=47), "o.mp4", None),
    "one frame": ("a.mp4", dict(n=1, audio="aac"), "o.mkv", "aac"),
    "raw h264, no timestamps": ("a.h264", dict(fmt="h264"), "o.mp4", None),
}


@pytest.mark.parametrize("case", list(VIDEO_CASES))
def test_video_inputs_round_trip(tmp_path, enh, case):
    src_name, kw, dst_name, audio_out = VIDEO_CASES[case]
    src = make_clip(tmp_path / src_name, **kw)
    dst = tmp_path / "out" / dst_name
    dst.parent.mkdir()
    summary = enh.enhance_file(src, dst)
    a, b = video_info(src), video_info(dst)
    assert b["n"] == a["n"] == summary.frames_out
    w, h = a["size"]
    assert b["size"] == (w + w % 2, h + h % 2)
    # timing: same spacing as the input (containers may shift the whole track by a constant)
    ta, tb = np.array(a["times"]), np.array(b["times"])
    assert np.allclose(np.diff(ta), np.diff(tb), atol=2e-3)
    if dst.suffix != ".ts":  # mpegts adds a constant mux delay to every stream
        assert abs(tb[0] - ta[0]) < 0.05  # mkv/avi may shift all tracks by the audio priming
    assert b["audio"] == ([audio_out] if audio_out else [])
    for k, want in corner_means(b["first"][:h, :w]).items():  # no colour shift, no range squeeze
        assert np.abs(want - corner_means(a["first"])[k]).max() < 8, (k, want)
    no_leftovers(dst.parent)


def test_avi_output_keeps_presentation_order(tmp_path, enh):
    """AVI stores no pts: B-frames there came back with shuffled timestamps."""
    src = make_clip(tmp_path / "a.mp4", n=8)
    enh.enhance_file(src, tmp_path / "o.avi")
    times = video_info(tmp_path / "o.avi")["times"]
    assert times == sorted(times) and len(set(times)) == 8


@pytest.mark.parametrize("src_pix, out_pix", [("yuvj422p", "yuv420p"), ("yuv422p", "yuv422p")])
def test_camera_mjpeg_becomes_playable_420(tmp_path, enh, src_pix, out_pix):
    """Webcam/photo-camera MJPEG is 4:2:2 by accident; H.264 4:2:2 does not play in browsers."""
    codec = "mjpeg" if src_pix.startswith("yuvj") else "libx264"
    src = make_clip(tmp_path / "cam.mkv", n=2, codec=codec, pix_fmt=src_pix)
    enh.enhance_file(src, tmp_path / "o.mp4")
    with av.open(str(tmp_path / "o.mp4")) as c:
        f = next(c.decode(video=0))
        assert f.format.name.replace("yuvj", "yuv") == out_pix  # full range kept: decodes as yuvj


def test_rotated_clip_written_upright(tmp_path, enh):
    src = make_clip(tmp_path / "r.mov", rotation=90, audio="aac")
    enh.enhance_file(src, tmp_path / "o.mp4")
    b = video_info(tmp_path / "o.mp4")
    assert b["size"] == (H, W)
    # 90 degrees counter-clockwise: the top-right patch is now top-left
    assert np.abs(corner_means(b["first"])["tl"] - CORNERS["tr"]).max() < 8


def test_two_audio_tracks_and_subtitles_kept(tmp_path, enh):
    src = make_clip(tmp_path / "v.mkv", audio="aac")
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,100\nhello\n")
    both = tmp_path / "both.mkv"
    with av.open(str(src)) as a, av.open(str(srt)) as s, av.open(str(both), "w") as o:
        m = {}
        for st in list(a.streams) + [a.streams.audio[0]]:
            m.setdefault(id(st), []).append(o.add_stream_from_template(st))
        sub = o.add_stream_from_template(s.streams[0])
        for p in a.demux():
            if p.dts is None:
                continue
            outs = m[id(p.stream)]
            for k, os_ in enumerate(outs):
                q = p if k == len(outs) - 1 else av.Packet(bytes(p))
                if q is not p:
                    q.pts, q.dts, q.time_base, q.duration = p.pts, p.dts, p.time_base, p.duration
                q.stream = os_
                o.mux(q)
        for p in s.demux():
            if p.dts is not None:
                p.stream = sub
                o.mux(p)
    summary = enh.enhance_file(both, tmp_path / "o.mkv")
    assert video_info(tmp_path / "o.mkv")["streams"] == ["video", "audio", "audio", "subtitle"]
    # mp4 cannot hold subrip: converted to mov_text, and said so
    summary = enh.enhance_file(both, tmp_path / "o.mp4")
    assert video_info(tmp_path / "o.mp4")["streams"] == ["video", "audio", "audio", "subtitle"]
    assert any("subtitle stream #3 (subrip) converted to mov_text" in f for f in summary.fallbacks), summary.fallbacks


def test_short_clip_with_long_look_ahead(tmp_path, mobilenet_weights, shared):
    face = np.asarray(Image.open(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg").convert("RGB").resize((160, 106)))
    src = tmp_path / "f.mp4"
    with av.open(str(src), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 160, 106, "yuv420p"
        vs.codec_context.options = {"preset": "ultrafast"}
        for _ in range(2):
            for p in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(face), format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    e = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, smooth_lag=64,
                 detect_every=100, batch_size=16)
    summary = e.enhance_file(src, tmp_path / "o.mp4")
    assert summary.frames_out == 2 and summary.faces_restored >= 2
    assert video_info(tmp_path / "o.mp4")["n"] == 2


# --- errors: one line, documented exit code, nothing left behind -------------------------------
def _zero_frames(p: Path) -> None:
    with av.open(str(p), "w") as c:
        vs = c.add_stream("mpeg4", rate=25)
        vs.width, vs.height = 64, 48
        c.start_encoding()


ERROR_CASES = [
    # (id, make input, output name, extra args, exit code, message)
    ("audio only", "a.m4a", "o.mp4", [], 2, "has no video stream"),
    ("song with cover art", "s.m4a", "o.mp4", [], 2, "no video stream besides cover art"),
    ("empty file", "e.mp4", "o.mp4", [], 2, "0 bytes"),
    ("not media", "n.mkv", "o.mkv", [], 2, "cannot read .* as media"),
    ("zero frames", "z.mp4", "o.mp4", [], 2, "no video stream|no frames|ends before"),
    ("cut-off header", "t.mkv", "o.mkv", [], 2, "cannot (open|read)|ends before"),
    ("gif output", "v.mp4", "o.gif", [], 2, "cannot hold h264 video"),
    ("unknown extension", "v.mp4", "o.xyz", [], 2, "no video container is known for the output name"),
    ("no extension", "v.mp4", "o", [], 2, "no extension"),
    ("missing out folder", "v.mp4", "missing/o.mp4", [], 2, "output folder does not exist"),
    ("missing folder with a slash", "v.mp4", "missing/", [], 2, "output folder does not exist: .*missing/"),
    ("video to image name", "v.mp4", "o.png", [], 2, "is an image name"),
    ("image to video name", "i.png", "o.mp4", [], 2, "image input needs an image output"),
    ("h264 into webm", "v.mp4", "o.webm", ["--codec", "h264"], 2, "cannot go into webm"),
    ("crf above x264's range", "v.mp4", "o.mp4", ["--crf", "60"], 2, "must be within 0..51"),
    ("report folder missing", "v.mp4", "o.mp4", ["--report", "/nonexistent/r.json"], 2, "--report folder does not exist"),
    ("truncated jpeg", "t.jpg", "o.jpg", [], 2, "cannot read .*: a JPEG that is cut off or damaged"),
    ("text with .png name", "x.png", "o.png", [], 2, "cannot read .* as an image"),
]


@pytest.mark.parametrize("name, src_name, dst_name, extra, code, text", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_inputs_fail_cleanly(tmp_path, cli_env, capsys, name, src_name, dst_name, extra, code, text):
    src = tmp_path / src_name
    if name == "audio only":
        with av.open(str(src), "w") as c:
            a = c.add_stream("aac", rate=44100)
            for i in range(3):
                af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts = 44100, i * 1024
                for p in a.encode(af):
                    c.mux(p)
    elif name == "song with cover art":  # what a music player shows is not a video to restore
        import io

        jpg = io.BytesIO()
        Image.fromarray(picture()).save(jpg, "JPEG")
        song = make_clip(tmp_path / "song.mp4", n=3, audio="aac")
        with av.open(str(song)) as i, av.open(str(src), "w", format="mp4") as o:
            a = o.add_stream_from_template(i.streams.audio[0])
            cover = o.add_stream("mjpeg", rate=1)
            cover.width, cover.height, cover.pix_fmt = W, H, "yuvj420p"
            cover.disposition = av.stream.Disposition.attached_pic
            pkt = av.Packet(jpg.getvalue())
            pkt.stream, pkt.pts, pkt.dts = cover, 0, 0
            o.mux(pkt)
            for pkt in i.demux(i.streams.audio[0]):
                if pkt.dts is not None:
                    pkt.stream = a
                    o.mux(pkt)
    elif name == "empty file":
        src.write_bytes(b"")
    elif name == "not media":
        src.write_text("not a video\n" * 100)
    elif name == "zero frames":
        _zero_frames(src)
    elif name == "cut-off header":
        src.write_bytes(make_clip(tmp_path / "full.mkv").read_bytes()[:300])
    elif name == "truncated jpeg":
        Image.fromarray(picture(200, 150)).save(tmp_path / "full.jpg")
        src.write_bytes((tmp_path / "full.jpg").read_bytes()[:600])
    elif name == "text with .png name":
        src.write_text("hello")
    elif src.suffix == ".png":
        Image.fromarray(picture()).save(src)
    else:
        make_clip(src, n=2)
    out = tmp_path / "out"
    out.mkdir()
    dst = str(out / dst_name) + ("/" if dst_name.endswith("/") else "")  # (Path drops a trailing slash)
    assert main(["enhance", str(src), "-o", dst, *cli_env, *extra]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("stream-gpen: error:")]
    assert len(lines) == 1 and __import__("re").search(text, lines[0]), err
    assert list(out.rglob("*")) == []  # nothing half-written


@pytest.mark.parametrize("extra, kept", [(["--audio", "none"], "--audio none"), (["--compare"], "--compare"),
                                         (["--codec", "hevc", "--crf", "30"], "--codec hevc, --crf 30")])
def test_copy_if_no_faces_keeps_what_was_asked(tmp_path, cli_env, extra, kept):
    """A stream copy cannot drop the audio, put the input beside itself or re-encode it: with those
    asked for, the re-encoded output stays (before, --audio none was said and the audio copied
    anyway, and an H.264 copy was written for --codec hevc)."""
    src = make_clip(tmp_path / "a.mp4", audio="aac")
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), *cli_env, "--copy-if-no-faces",
                 "--report", str(report), *extra]) == 0
    fb = json.loads(report.read_text())["fallbacks"]
    assert any(f"--copy-if-no-faces does not apply to {kept}" in f for f in fb), fb
    info = video_info(tmp_path / "o.mp4")
    assert info["audio"] == ([] if extra[0] == "--audio" else ["aac"])
    if extra[0] == "--codec":
        assert info["video_codec"] == "hevc" and json.loads(report.read_text())["encoder"] == "libx265"
    if extra == ["--compare"]:
        with av.open(str(tmp_path / "o.mp4")) as c, av.open(str(src)) as i:
            assert c.streams.video[0].width == 2 * i.streams.video[0].width


def test_report_never_replaces_media(tmp_path, cli_env, capsys):
    """--report naming the input, the output or another file that is not a report is refused
    before the run; an earlier report is replaced."""
    src = make_clip(tmp_path / "a.mp4")
    before = src.read_bytes()
    for report in (src, tmp_path / "o.mp4"):
        assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), *cli_env, "--report", str(report)]) == 2
        assert "is the run's own input or output" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("my notes")
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), *cli_env, "--report",
                 str(tmp_path / "notes.txt")]) == 2
    assert "exists and is not an earlier run's report" in capsys.readouterr().err
    (tmp_path / "settings.json").write_text('{"name": "my-app"}')  # JSON, but not a report
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), *cli_env, "--report",
                 str(tmp_path / "settings.json")]) == 2
    assert "exists and is not an earlier run's report" in capsys.readouterr().err
    # a file inside a folder input (one of its photos), even with --overwrite
    album = tmp_path / "album"
    album.mkdir()
    Image.fromarray(picture()).save(album / "b.jpg")
    photo = (album / "b.jpg").read_bytes()
    assert main(["enhance", str(album), "-o", str(tmp_path / "album_out"), *cli_env, "--overwrite",
                 "--report", str(album / "b.jpg")]) == 2
    assert "is the run's own input or output, or inside it" in capsys.readouterr().err
    # the camera's source file
    assert main(["camera", str(src), "-o", str(tmp_path / "rec.mp4"), *cli_env, "--overwrite", "--frames", "2",
                 "--report", str(src)]) == 2
    assert "is the run's own input or output" in capsys.readouterr().err
    assert src.read_bytes() == before and (tmp_path / "notes.txt").read_text() == "my notes"
    assert (album / "b.jpg").read_bytes() == photo and "my-app" in (tmp_path / "settings.json").read_text()
    (tmp_path / "r.json").write_text('{"frames_in": 1, "frames_out": 1}')  # an earlier report
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), *cli_env, "--report",
                 str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["frames_out"] > 0


def test_copy_compatibility_table():
    supported = {"pcm_s16le", "aac", "opus"}
    assert not can_copy("mp4", "pcm_s16le", supported)  # header fine, trailer refused
    assert not can_copy("mov", "opus", supported)
    assert not can_copy("flv", "pcm_s16le", supported)  # FFmpeg aborts the process on this one
    assert can_copy("mpegts", "aac", set())  # FFmpeg lists nothing for mpegts
    assert can_copy("matroska", "pcm_s16le", supported) and not can_copy("matroska", "vorbis", supported)


def test_copy_if_no_faces_when_the_container_cannot_take_the_audio(tmp_path, cli_env, capsys):
    # the copy transcodes the audio as the re-encode does (it used to keep the re-encode for it)
    src = make_clip(tmp_path / "a.mkv", audio="pcm_s16le")
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), *cli_env, "--copy-if-no-faces",
                 "--report", str(report)]) == 0
    fb = json.loads(report.read_text())["fallbacks"]
    assert any("stream-copied to the output" in f for f in fb), fb
    assert any("(pcm_s16le) transcoded to aac" in f for f in fb), fb
    assert video_info(tmp_path / "o.mp4")["audio"] == ["aac"]
    remux(src, tmp_path / "r.mp4")
    assert video_info(tmp_path / "r.mp4")["audio"] == ["aac"]
    no_leftovers(tmp_path)


def test_paths_with_spaces_unicode_and_output_folder(tmp_path, cli_env):
    d = tmp_path / "dír with spaces 日本"
    d.mkdir()
    src = make_clip(d / "клип ü.mp4", n=2, audio="aac")
    assert main(["enhance", str(src), *cli_env]) == 0
    assert video_info(d / "клип ü_enhanced.mp4")["n"] == 2
    out = tmp_path / "existing folder"
    out.mkdir()
    assert main(["enhance", str(src), "-o", str(out), *cli_env]) == 0  # a folder: default name inside
    assert video_info(out / "клип ü_enhanced.mp4")["audio"] == ["aac"]
    # input == output: refused without --overwrite, replaced atomically with it
    assert main(["enhance", str(src), "-o", str(src), *cli_env]) == 2
    assert main(["enhance", str(src), "-o", str(src), *cli_env, "--overwrite"]) == 0
    assert video_info(src)["n"] == 2
    no_leftovers(d)


# --- images ------------------------------------------------------------------------------------
def _img(mode: str) -> Image.Image:
    rgb = Image.fromarray(picture(40, 30))
    if mode == "I;16":
        return Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 257)
    if mode == "PT":
        p = rgb.convert("P")
        p.info["transparency"] = p.getpixel((0, 0))  # the top-left patch's colour is see-through
        return p
    if mode in ("RGBA", "LA"):
        im = rgb.convert(mode)
        a = np.asarray(im).copy()
        a[:5, :5, -1] = 0
        return Image.fromarray(a, mode)
    return rgb.convert(mode)


IMAGE_CASES = [
    # (mode, name, expected output mode)
    ("L", "g.jpg", "L"),
    ("LA", "ga.png", "LA"),
    ("P", "p.png", "RGB"),
    ("PT", "pt.png", "RGBA"),
    ("I;16", "g16.png", "I;16"),  # 16-bit grey stays 16-bit grey (was written as 8-bit L)
    ("RGBA", "a.webp", "RGBA"),
    ("RGBA", "a.tiff", "RGBA"),
    ("CMYK", "c.jpg", "RGB"),
    ("RGB", "x.bmp", "RGB"),
]


@pytest.mark.parametrize("mode, name, out_mode", IMAGE_CASES, ids=[f"{c[0]}-{c[1]}" for c in IMAGE_CASES])
def test_image_modes(tmp_path, enh, mode, name, out_mode):
    src = tmp_path / name
    im = _img(mode)
    im.save(src, **({"transparency": im.info["transparency"]} if mode == "PT" else {}))
    enh.enhance_file(src, tmp_path / f"o{src.suffix}")
    with Image.open(src) as a, Image.open(tmp_path / f"o{src.suffix}") as b:
        assert b.mode == out_mode and b.size == a.size
        ref = np.asarray(a.convert("RGB")) if mode != "I;16" else np.asarray(a).astype(np.float64) / 257
        got = (np.asarray(b.convert("RGB")) if mode != "I;16" else np.asarray(b) / 257).astype(np.float64)
        tol = 12 if src.suffix in (".jpg", ".webp") else 1
        assert np.abs(got - ref).mean() < tol  # right brightness (16-bit was a white picture)
        if "A" in out_mode:  # transparency kept pixel for pixel
            alpha = np.asarray(a.convert("RGBA"))[:, :, 3]
            assert 0 < (alpha == 0).sum() < alpha.size and (np.asarray(b)[:, :, -1] == alpha).all()


def test_exif_rotation_one_pixel_and_huge_images(tmp_path, enh):
    im = Image.fromarray(picture(40, 30))
    exif = im.getexif()
    exif[274] = 6  # rotate 90 CW to display
    im.save(tmp_path / "e.jpg", exif=exif.tobytes())
    enh.enhance_file(tmp_path / "e.jpg", tmp_path / "eo.jpg")
    with Image.open(tmp_path / "eo.jpg") as b:
        # pixels written upright; the EXIF is kept with Orientation 1 (was: dropped)
        assert b.size == (30, 40) and b.getexif().get(274, 1) == 1
    Image.new("RGB", (1, 1), (10, 200, 30)).save(tmp_path / "1.png")
    enh.enhance_file(tmp_path / "1.png", tmp_path / "1o.png")
    assert np.asarray(Image.open(tmp_path / "1o.png")).tolist() == [[[10, 200, 30]]]
    Image.new("RGB", (6000, 4000), (90, 90, 90)).save(tmp_path / "big.png", compress_level=1)
    enh.enhance_file(tmp_path / "big.png", tmp_path / "bigo.png")
    assert Image.open(tmp_path / "bigo.png").size == (6000, 4000)


def test_animated_images(tmp_path, enh, cli_env):
    frames = [Image.fromarray(picture(i=i)) for i in range(3)]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:], duration=100)
    summary = enh.enhance_file(tmp_path / "a.png", tmp_path / "o.png")
    assert summary.frames_out == 3  # every frame restored and written back (only the first was)
    with Image.open(tmp_path / "o.png") as out:
        assert out.n_frames == 3
    # an animated GIF is a video: every frame with its own duration; written as mp4 by default
    frames[0].save(tmp_path / "g.gif", save_all=True, append_images=frames[1:], duration=[100, 300, 100])
    assert main(["enhance", str(tmp_path / "g.gif"), *cli_env]) == 0
    assert video_info(tmp_path / "g_enhanced.mp4")["times"] == [0.0, 0.1, 0.4]


def test_folder_with_bad_files_writes_the_good_ones(tmp_path, cli_env, capsys):
    src = tmp_path / "photos"
    (src / "a" / "b").mkdir(parents=True)
    Image.fromarray(picture()).save(src / "0_bad_first.jpg.png")  # fine, odd name
    (src / "1_bad.jpg").write_text("not a jpeg")
    Image.fromarray(picture()).save(src / "a" / "good.png")
    (src / "a" / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 20)
    Image.fromarray(picture()).convert("L").save(src / "a" / "b" / "grey.jpg")
    (src / "notes.txt").write_text("ignored: not an image extension")
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), *cli_env, "--report", str(report)]) == 5
    out = tmp_path / "photos_enhanced"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "0_bad_first.jpg.png", "a/b/grey.jpg", "a/good.png"]
    err = capsys.readouterr().err
    assert "1_bad.jpg" in err and "cut.jpg" in err and "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("stream-gpen: error:")][0].startswith(
        "stream-gpen: error: 3 frames/images written")
    skipped = json.loads(report.read_text())["skipped"]
    assert len(skipped) == 2 and any("1_bad.jpg" in s for s in skipped)
    # every file unreadable: exit 2, nothing written
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_text("x")
    assert main(["enhance", str(bad), *cli_env]) == 2
    assert not (tmp_path / "bad_enhanced").exists()


# --- the command line's documentation ----------------------------------------------------------
def test_readme_documents_every_enhance_option_and_exit_code():
    """README's table gives every enhance option a line, and docs/reference.md its full text
    (session 34: the README's rows had grown to 3900 characters; the long form moved there)."""
    import re

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    reference = (root / "docs" / "reference.md").read_text(encoding="utf-8")
    enhance = build_parser()._subparsers._group_actions[0].choices["enhance"]
    flags = {s for a in enhance._actions for s in a.option_strings}
    long_flags = {f for f in flags if f.startswith("--")} - {"--help"}
    for name, text, start, end in (("README's table", readme, "### `enhance` options", "### Exit codes"),
                                   ("docs/reference.md", reference, "## `enhance` options", "\n## ")):
        table = text[text.index(start):text.index(end, text.index(start) + len(start))]
        documented = set(re.findall(r"`(--[a-z-]+)", table))
        assert documented and documented <= flags, (name, documented - flags)
        assert long_flags <= documented, f"enhance options missing from {name}: {sorted(long_flags - documented)}"
    assert "5 folder" in enhance.epilog
    for text in (readme, reference):
        codes = text[text.index("# Exit codes"):]
        assert all(f"| {c} |" in codes for c in (0, 1, 2, 3, 4, 5, 130))


# --- interlaced input -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["auto", "off"])
def test_cli_deinterlaces_interlaced_video(tmp_path, cli_env, mode):
    """An interlaced capture comes out progressive (no combs) with every frame and timestamp;
    --deinterlace off keeps the fields as decoded."""
    from test_io_video import _combing, _interlaced_clip

    src, dst = tmp_path / "vhs.mkv", tmp_path / "out.mp4"
    _interlaced_clip(src)
    assert main(["enhance", str(src), "-o", str(dst), *cli_env, "--deinterlace", mode]) == 0
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        fa, fb = list(a.decode(video=0)), list(b.decode(video=0))
        ta = [float(f.pts * f.time_base) for f in fa]
        tb = [float(f.pts * f.time_base) for f in fb]
        comb_in = np.mean([_combing(f.to_ndarray(format="rgb24")) for f in fa])
        comb_out = np.mean([_combing(f.to_ndarray(format="rgb24")) for f in fb])
    assert len(fb) == len(fa) == 8 and max(abs(x - y) for x, y in zip(ta, tb)) < 1e-3
    assert (comb_out < 0.3 * comb_in) if mode == "auto" else (comb_out > 0.7 * comb_in)


def test_dvd_and_vhs_captures_default_to_mp4(tmp_path, cli_env, capsys):
    """An MPEG-PS capture (.mpg/.vob: MPEG-2 + AC-3, as DVD recorders and VHS capture boxes
    write them) cannot hold H.264: the default output is NAME_enhanced.mp4, audio copied; asking
    for a .mpg output is a clear error, not FFmpeg's "Invalid argument"."""
    from stream_gpen.api import default_output

    assert [Path(default_output(f"/x/a{e}")).name for e in (".mpg", ".VOB", ".dv", ".gif", ".mkv")] == [
        "a_enhanced.mp4", "a_enhanced.mp4", "a_enhanced.mp4", "a_enhanced.mp4", "a_enhanced.mkv"]
    src = tmp_path / "tape.mpg"
    with av.open(str(src), "w", format="vob") as c:
        vs = c.add_stream("mpeg2video", rate=25)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        a = c.add_stream("ac3", rate=48000)
        a.layout = "stereo"
        for i in range(10):
            vf = av.VideoFrame.from_ndarray(picture(), format="rgb24")
            vf.pts = i
            for p in vs.encode(vf):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        write_audio(c, a, 10 / 25, tone_hz=None)
    assert main(["enhance", str(src), *cli_env]) == 0
    out = tmp_path / "tape_enhanced.mp4"
    with av.open(str(out)) as c:
        assert [(s.type, s.codec_context.name) for s in c.streams] == [("video", "h264"), ("audio", "ac3")]
        assert sum(1 for _ in c.decode(video=0)) == 10
    capsys.readouterr()
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mpg"), *cli_env]) == 2
    assert "container (.mpg) cannot hold h264 video" in capsys.readouterr().err


def test_copy_refused_names_no_temporary_file(tmp_path, cli_env):
    """An MPEG-PS .mpg whose frames carry no timestamps of their own cannot be stream-copied into
    .mp4: the kept re-encode is said with FFmpeg's reason, not the hidden temporary file's name."""
    src = tmp_path / "dvd.mpg"
    with av.open("testsrc2=size=160x120:rate=10:duration=2", format="lavfi") as pattern, \
            av.open(str(src), "w") as out:
        s = out.add_stream("mpeg2video", rate=10)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        for f in pattern.decode(video=0):
            f = f.reformat(format="yuv420p")
            f.pts = None  # the muxer's own timing, as some capture tools write it
            out.mux(s.encode(f))
        out.mux(s.encode())
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), *cli_env, "--copy-if-no-faces",
                 "--report", str(report)]) == 0
    fb = [f for f in json.loads(report.read_text())["fallbacks"] if "stream copy impossible" in f]
    assert len(fb) == 1 and ".remux" not in fb[0] and "o.mp4" not in fb[0].split("(", 1)[1], fb
    assert video_info(tmp_path / "o.mp4")["n"] == 20


def test_codec_or_audio_the_container_cannot_hold_is_refused_before_the_model(tmp_path, cli_env, capsys,
                                                                              monkeypatch):
    """--codec prores -o x.mp4, --codec vp9 -o x.ts, --audio aac -o x.webm: exit 2 in the
    option's words before the model loads (they failed mid-run with exit 4 and FFmpeg's words,
    or, into .ts, wrote a file with no readable video and exit 0); a folder's videos go into a
    container that holds the codec (with --codec prores every .mp4 was skipped as unreadable)."""
    from stream_gpen import commands

    src = make_clip(tmp_path / "a.mp4", audio="aac")
    loaded = []
    real = commands._make_enhancer
    monkeypatch.setattr(commands, "_make_enhancer", lambda args: loaded.append(1) or real(args))
    for extra, name, words in ((["--codec", "prores"], "x.mp4", "ProRes goes into .mov or .mkv"),
                               (["--codec", "vp9"], "x.ts", "VP9/AV1 go into .mp4, .mkv or .webm"),
                               (["--audio", "aac"], "x.webm", "--audio aac")):
        assert main(["enhance", str(src), "-o", str(tmp_path / name), *cli_env, *extra]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, err
    assert not loaded and not list(tmp_path.glob("x*")) and not list(tmp_path.glob(".x*"))
    folder = tmp_path / "f"
    folder.mkdir()
    make_clip(folder / "b.mp4")
    assert main(["enhance", str(folder), "-o", str(tmp_path / "f_out"), *cli_env, "--codec", "prores"]) == 0
    assert [p.name for p in (tmp_path / "f_out").iterdir()] == ["b.mov"]
    assert video_info(tmp_path / "f_out" / "b.mov")["video_codec"] == "prores"


def test_out_of_memory_is_exit_4_with_a_hint_not_an_internal_error(tmp_path, cli_env, capsys, monkeypatch):
    """A CUDA out-of-memory (a GPU shared with other jobs) was 'internal error ... please report
    it', exit 1: it is the machine's limit, said so with what to lower."""
    import torch

    from stream_gpen import commands

    def oom(args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore details")

    monkeypatch.setattr(commands, "_make_enhancer", oom)
    src = make_clip(tmp_path / "a.mp4")
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), *cli_env]) == 4
    err = capsys.readouterr().err
    assert "error: out of memory: CUDA out of memory. Tried to allocate 2.00 GiB\n" in err
    assert "--batch-size" in err and "internal error" not in err


def test_host_memory_running_out_in_torch_is_exit_4(tmp_path, cli_env, capsys, monkeypatch):
    """torch's CPU allocator says "can't allocate memory" (an 8K frame buffer on a small machine):
    that was 'internal error ... please report it', exit 1."""
    from stream_gpen import commands

    def oom(args):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 2388787200 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(commands, "_make_enhancer", oom)
    src = make_clip(tmp_path / "a.mp4")
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), *cli_env]) == 4
    err = capsys.readouterr().err
    assert "error: out of memory:" in err and "internal error" not in err and "--device cpu" not in err


def test_a_second_ctrl_c_does_not_cut_the_finishing_short(capsys):
    """The first Ctrl-C stops the run; a second one, while the partial output is finalised, landed
    in the sink's clean-up (which deleted everything encoded) or made the camera say "stopped",
    exit 0, with no recording. It is ignored now, as a second SIGTERM already was."""
    import os
    import signal
    import time

    from stream_gpen.cli import _Signals

    finished = False
    with _Signals() as sig:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # (its handler runs in this thread soon after)
            # (a thousand bytecodes were not always enough on a loaded machine: the signal may
            # reach another thread first, and the main thread runs the handler when it next looks)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.001)
            raise AssertionError("the first Ctrl-C did not stop the run")
        except KeyboardInterrupt:
            os.kill(os.getpid(), signal.SIGINT)  # while "finalising"
            time.sleep(0.2)  # (its handler runs in this sleep: ignored, the sleep goes on)
            finished = True
    assert finished and sig.exit_code(130) == 130
    assert "finishing what was written" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored afterwards


def test_a_ctrl_c_while_the_finished_output_is_written_keeps_it(tmp_path, cli_env, capsys, monkeypatch):
    """One Ctrl-C at 100%, while the encoders were flushed and the file renamed: the sink's
    clean-up deleted the whole encoded video (no output, no .partial; the camera said "stopped",
    exit 0, with no recording). The stop now waits for the output to be whole."""
    import os
    import signal

    from stream_gpen.io import _sink

    real = _sink.FileSink._finish_container

    def finish(self, *a, **k):
        import time

        from stream_gpen._finishing import stop_asked

        os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C now
        # (the handler runs in the main thread when it next looks: a thousand bytecodes here were
        # not always enough on a loaded machine, and the run then finished before it, exit 0)
        deadline = time.monotonic() + 10
        while not stop_asked() and time.monotonic() < deadline:
            time.sleep(0.001)
        return real(self, *a, **k)

    monkeypatch.setattr(_sink.FileSink, "_finish_container", finish)
    src = make_clip(tmp_path / "a.mp4")
    out = tmp_path / "o.mp4"
    (tmp_path / "o.partial.mp4").write_bytes(b"an earlier run's partial")  # superseded: removed
    from stream_gpen.io._partials import remember_partial

    remember_partial(tmp_path / "o.partial.mp4")  # (as the interrupted run that wrote it records it)
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(out), "--report", str(report), *cli_env]) == 130
    assert f"stopped: {out} was written whole first" in capsys.readouterr().err
    assert video_info(out)["n"] == video_info(src)["n"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["a.mp4", "o.mp4", "r.json"]
    import json

    r = json.loads(report.read_text())
    assert r["partial_output"] is None and any("was written whole first" in f for f in r["fallbacks"])


def test_the_program_ignores_ctrl_c_while_it_exits(monkeypatch, capsys):
    """A Ctrl-C just after "wrote", during Python's shutdown (torch's exit handlers), printed a
    traceback and ended the process by the signal: the program (cli.run(), the console script and
    ``python -m stream_gpen``) leaves SIGINT ignored as it returns; a caller's main([...]) and
    main() reading sys.argv (a launcher that goes on) get their own handler back."""
    import signal
    import sys

    from stream_gpen.cli import run

    old = signal.getsignal(signal.SIGINT)
    try:
        assert main(["weights", "list"]) == 0 and signal.getsignal(signal.SIGINT) is old
        monkeypatch.setattr(sys, "argv", ["stream-gpen", "weights", "list"])
        assert main() == 0 and signal.getsignal(signal.SIGINT) is old
        assert run() == 0 and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)


def test_a_folder_output_that_cannot_be_made_fails_before_any_restoration(tmp_path, enh, monkeypatch):
    # the first photo was restored (model work wasted), then "skipped: could not be written", and
    # the run failed at the end with no file written
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(picture()).save(src / "a.png")
    (tmp_path / "afile").write_text("x")
    calls = []
    monkeypatch.setattr(type(enh), "_enhance_one", lambda self, *a, **k: calls.append(a))
    # (said as such before the folder is made, api26: it was the OSError of the mkdir)
    with pytest.raises(InvalidInputError, match="afile is a file, not a folder"):
        enh.enhance_file(src, tmp_path / "afile" / "out")
    assert calls == []
