"""Video edge cases found by a user-style bug hunt: mirrored display matrices, opaque pictures in
alpha-bearing formats, wrapped/negative timestamps, signals, timecodes, several video tracks and
truncated files. Every input is built here, tiny."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from _clips import write_video
from stream_gpen.io import open_sink, open_source

W, H = 64, 48


def _marked(n: int = 3, w: int = W, h: int = H) -> list[np.ndarray]:
    """Grey frames with a red block in the stored top-left corner (shows any turn or mirror)."""
    out = []
    for i in range(n):
        img = np.full((h, w, 3), (60 + 30 * i) % 240, np.uint8)
        img[:12, :16] = (255, 0, 0)
        out.append(img)
    return out


def _red_corner(img: np.ndarray) -> str:
    """Which corner of an RGB picture holds the red block: 'tl', 'tr', 'bl' or 'br'."""
    h, w = img.shape[:2]
    corners = {"tl": img[2, 2], "tr": img[2, w - 3], "bl": img[h - 3, 2], "br": img[h - 3, w - 3]}
    return max(corners, key=lambda k: int(corners[k][0]) - int(corners[k][1]))


def _first_image(path, **kw) -> tuple[np.ndarray, object]:
    with open_source(path, **kw) as src:
        f = next(src)
        img = f.image.numpy().copy()
        f.release()
        return img, src.metadata


def _copy(src_path, dst, *, source_kw=None, **sink_kw):
    """Decode ``src_path`` and write every frame to ``dst`` (pixels as decoded); the sink."""
    with open_source(src_path, **(source_kw or {})) as src:
        if sink_kw.get("codec") != "auto" or not src.has_alpha:
            sink_kw.setdefault("preset", "ultrafast")
        with open_sink(dst, source=src, **sink_kw) as sink:
            for f in src:
                sink.write(f)
    return sink


# --- 1. mirrored display matrices -------------------------------------------------------------
ONE = 1 << 16
HFLIP = [-ONE, 0, 0, 0, ONE, 0, W * ONE, 0, 1 << 30]      # x' = -x + w: a selfie mirror
VFLIP = [ONE, 0, 0, 0, -ONE, 0, 0, H * ONE, 1 << 30]      # y' = -y + h
TRANSPOSE = [0, ONE, 0, ONE, 0, 0, 0, 0, 1 << 30]          # x' = y, y' = x: mirror + quarter turn


@pytest.mark.parametrize("matrix, corner, size, turn", [
    (HFLIP, "tr", (W, H), 0),       # mirrored left-right, not turned upside down
    (VFLIP, "bl", (W, H), 180),     # mirror + half turn
    (TRANSPOSE, "tl", (H, W), 90),  # ffmpeg's transpose=cclock_flip
])
def test_mirrored_display_matrix_is_mirrored_not_turned(tmp_path, matrix, corner, size, turn):
    clip = write_video(tmp_path / "m.mp4", _marked(), codec="libx264", options={"crf": "5"},
                       setup=lambda s: s.set_display_matrix(matrix))
    img, m = _first_image(clip, autorotate=True)
    assert (img.shape[1], img.shape[0]) == size
    assert _red_corner(img) == corner
    assert m.rotation == 0 and m.extra["applied_rotation"] == turn
    assert m.extra["applied_mirror"] == "horizontal"
    if matrix is TRANSPOSE:  # the whole picture, not just the marker: exactly the transpose
        assert np.abs(img.astype(int) - _marked()[0].transpose(1, 0, 2)).mean() < 3
    # without autorotate: pixels as stored, the mirror kept as metadata and written back as is
    img, m = _first_image(clip)
    assert _red_corner(img) == "tl" and m.extra["mirror"] == "horizontal" and m.rotation == turn
    out = tmp_path / "o.mp4"
    _copy(clip, out)
    img, m = _first_image(out, autorotate=True)
    assert _red_corner(img) == corner and m.extra["applied_mirror"] == "horizontal"
    from stream_gpen.commands import describe_input  # `info` says so

    info = describe_input(str(clip))
    assert info["mirror_applied"] is True and info["rotation_applied"] == turn
    assert "mirrored left-right, as its display matrix says, and written that way" in info["plan"]


def test_plain_rotation_is_not_a_mirror(tmp_path):
    clip = write_video(tmp_path / "r.mp4", _marked(), setup=lambda s: s.set_display_rotation(180))
    img, m = _first_image(clip, autorotate=True)
    assert _red_corner(img) == "br" and m.extra["applied_rotation"] == 180 and "applied_mirror" not in m.extra


# --- 2. opaque pictures in alpha-bearing formats -----------------------------------------------
def _rgba(n: int, transparent_at: int | None = None) -> list[np.ndarray]:
    out = []
    for i, img in enumerate(_marked(n)):
        a = np.full((H, W, 1), 255, np.uint8)
        if i == transparent_at:
            a[20:30, 20:40] = 0
        out.append(np.concatenate([img, a], axis=2))
    return out


@pytest.mark.parametrize("name, codec, pix_fmt, frames, alpha", [
    ("anim.gif", "gif", "rgb8", _marked(4), False),         # FFmpeg's gif decoder always gives bgra
    # PNG / QuickTime Animation in .mov say rgba / argb only when written with alpha: as declared
    # (a title that fades out after its opaque start stays keyed)
    ("png.mov", "png", "rgba", _rgba(4), True),
    ("qtrle.mov", "qtrle", "argb", _rgba(4), True),
    ("keyed.mov", "prores_ks", "yuva444p10le", _rgba(2), True),      # declared by the stream: kept
])
def test_gif_counts_as_transparent_only_with_a_transparent_pixel(tmp_path, name, codec, pix_fmt,
                                                                 frames, alpha):
    clip = write_video(tmp_path / name, frames, codec=codec, pix_fmt=pix_fmt)
    with open_source(clip) as src:
        assert src.has_alpha is alpha
        got = []
        for f in src:  # the frames looked at up front still come out, in order, once each
            got.append((f.index, round(float(f.image[30:, :, 1].float().mean()))))
            assert (f.alpha is not None) is alpha
            f.release()
    assert [i for i, _ in got] == list(range(len(frames)))
    want = [float(fr[30:, :, 1].mean()) for fr in frames]
    assert all(abs(g - w) < 8 for (_, g), w in zip(got, want))  # each frame once, in order (gif: 8-bit palette)
    out = tmp_path / "o.mkv"
    sink = _copy(clip, out, codec="auto")
    assert sink.codec == ("prores" if alpha else "h264")
    assert not any("transparen" in m or "alpha" in m for m in sink.fallbacks + sink.dropped)


def _gif(path, n: int, holes_from: int):
    """An animated GIF (Pillow's writer: FFmpeg's cannot write transparency) whose frames from
    ``holes_from`` on have transparent holes the background shows through (disposal 2)."""
    from PIL import Image

    frames = []
    for i in range(n):
        a = np.full((H, W), 1, np.uint8)
        a[:, : 10 + i] = 2
        if i >= holes_from:
            a[20:30, 20:40] = 0
        im = Image.fromarray(a, "P")
        im.putpalette([0, 0, 0, 200, 50, 50, 50, 200, 50] + [0] * (253 * 3))
        frames.append(im)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, disposal=2, loop=0,
                   transparency=0, optimize=False)
    return path


def test_gif_transparency_is_seen_or_said_to_be_dropped(tmp_path):
    with open_source(_gif(tmp_path / "keyed.gif", 4, holes_from=1)) as src:  # within the first frames: kept
        assert src.has_alpha
        lows = []
        for f in src:
            lows.append(float(f.alpha.float().min()))
            f.release()
        assert lows == [255.0, 0.0, 0.0, 0.0]
    with open_source(_gif(tmp_path / "late.gif", 12, holes_from=10)) as src:  # past them: said, not hidden
        assert not src.has_alpha
        for f in src:
            f.release()
    assert any("frame 10 has transparent pixels" in m and "dropped" in m for m in src.fallbacks), src.fallbacks


# --- 3. wrapped / negative timestamps ----------------------------------------------------------
WRAP_FRAME = int(2**33 / 90000 * 25)  # the frame (at 25 fps) where MPEG-TS's 33-bit clock wraps


def _wrapped_ts(path: Path, n: int = 20, before: int = 8) -> Path:
    """An MPEG-TS whose clock wraps ``before`` frames in, frame i grey 20 + 10*i, with mp2 audio
    over the same span (the times before the wrap read back negative)."""
    start = WRAP_FRAME - before
    with av.open(str(path), "w", format="mpegts") as c:
        vs = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        aus = c.add_stream("mp2", rate=48000)
        aus.layout = "stereo"
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((H, W, 3), (20 + 10 * i) % 250, np.uint8), format="rgb24")
            f.pts, f.time_base = start + i, Fraction(1, 25)
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        fs, a0 = 1152, (start * 48000) // 25
        for k in range(n * 48000 // 25 // fs):
            x = (0.2 * np.sin(np.arange(fs) / 10)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(np.stack([x, x]), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, a0 + k * fs
            for p in aus.encode(af):
                c.mux(p)
        for p in aus.encode(None):
            c.mux(p)
    return path


def _video_times_and_greys(path) -> tuple[list[float], list[int]]:
    with av.open(str(path)) as c:
        fs = list(c.decode(video=0))
    return [float(f.pts * f.time_base) for f in fs], [int(f.to_ndarray(format="rgb24")[..., 1].mean()) for f in fs]


def _audio_span(path) -> tuple[float, float]:
    with av.open(str(path)) as c:
        fs = list(c.decode(audio=0))
    return float(fs[0].pts * fs[0].time_base), float(fs[-1].pts * fs[-1].time_base) + fs[-1].samples / fs[-1].sample_rate


def test_wrapped_ts_to_mp4_plays_every_frame_from_zero(tmp_path):
    ts = _wrapped_ts(tmp_path / "wrap.ts")
    with open_source(ts) as src:
        assert src.metadata.start_time_s < 0  # what FFmpeg makes of the wrap
    for name in ("o.mp4", "o.mov"):
        sink = _copy(ts, tmp_path / name)
        times, greys = _video_times_and_greys(tmp_path / name)
        assert len(times) == 20 and times[0] == 0  # not an edit list hiding the first 8 frames
        assert abs(greys[0] - 20) < 4 and abs(greys[-1] - 210) < 4
        a0, a1 = _audio_span(tmp_path / name)
        assert abs(a0) < 0.03 and abs(a1 - 0.8) < 0.05  # the same offset: audio still with its frames
        assert any("negative timestamps" in m for m in sink.fallbacks)


def test_window_of_a_wrapped_ts_counts_from_its_first_frame(tmp_path):
    ts = _wrapped_ts(tmp_path / "wrap.ts")
    out = tmp_path / "cut.mp4"
    _copy(ts, out, source_kw={"start": 0.2, "duration": 0.4})
    times, greys = _video_times_and_greys(out)
    assert len(times) == 10 and times[0] == 0
    assert abs(greys[0] - (20 + 10 * 5)) < 4  # frame 5 = 0.2 s after the first


# --- 4. SIGTERM / SIGHUP like Ctrl-C ------------------------------------------------------------
@pytest.mark.parametrize("signame, code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_leave_a_partial_file_not_a_temp_file(tmp_path, det_home, signame, code, capsys,
                                                                  monkeypatch):
    import os
    import signal
    import threading

    from stream_gpen import cli
    from stream_gpen.io._sink import FileSink

    sig = getattr(signal, signame)
    absorbed = []
    # Without the CLI's own handler the signal would end pytest: this one absorbs it instead
    # (and the run then goes on to its end, 10 min of frames at ~1000 fps here: exit 0, the test
    # fails, it does not hang).
    old = signal.signal(sig, lambda *a: absorbed.append(a))
    out = tmp_path / "live.mkv"

    # The signal goes once the sink has taken 5 frames (mid-run: the graph gives 600,000). (It
    # waited for 4000 bytes in the temporary file, which FFmpeg's write buffer keeps empty until
    # 256 KiB: ~800 of these small frames, 20 s alone, and its whole 60 s wait in a loaded suite.
    # Then for 50 frames: each is a detector pass of ~100 small multi-threaded ops, 30 ms alone but
    # 0.2-0.5 s on a 2-core machine busy with other work (35-52 s in a loaded suite).)
    written = threading.Event()
    real_write = FileSink.write

    def write(self, frame, *a, **k):
        out = real_write(self, frame, *a, **k)
        if self.frames_written >= 5:
            written.set()
        return out

    monkeypatch.setattr(FileSink, "write", write)

    def send():
        written.wait(60)
        os.kill(os.getpid(), sig)

    killer = threading.Thread(target=send, daemon=True)
    killer.start()
    try:
        # a live test pattern: the signal always lands mid-run
        rc = cli.main(["enhance", "lavfi:testsrc2=size=160x120:rate=1000", "-o", str(out), "--model", "classic",
                       "--quiet", "--duration", "600"])
    finally:
        killer.join()
        signal.signal(sig, old)
    err = capsys.readouterr().err
    assert rc == code and not absorbed, err
    assert "interrupted" in err and "live.partial.mkv" in err
    assert not list(tmp_path.glob(".live.*"))  # no hidden temp file left behind
    with av.open(str(tmp_path / "live.partial.mkv")) as c:
        assert sum(1 for _ in c.decode(video=0)) > 0


# --- 5. the partial file of an interrupted run ends with its picture -----------------------------
def test_interrupted_partial_has_no_audio_past_its_last_frame(tmp_path):
    from _clips import write_audio

    clip = tmp_path / "a.mp4"
    with av.open(str(clip), "w") as c:
        vs = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        aus = c.add_stream("aac", rate=48000)
        for i in range(50):
            f = av.VideoFrame.from_ndarray(np.full((H, W, 3), 100, np.uint8), format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        write_audio(c, aus, 2.0)
    out = tmp_path / "o.mp4"
    with open_source(clip) as src:
        with pytest.raises(KeyboardInterrupt, match="20 frames were saved"):
            with open_sink(out, source=src, preset="ultrafast") as sink:
                for f in src:
                    sink.write(f)
                    if f.index == 19:  # frames queued so far are encoded by the interrupt
                        raise KeyboardInterrupt
    partial = tmp_path / "o.partial.mp4"
    times, _ = _video_times_and_greys(partial)
    assert len(times) == 20
    a0, a1 = _audio_span(partial)
    assert a1 <= times[-1] + 0.04 + 1024 / 48000 + 1e-3  # at most the packet under the last frame
    assert a1 > times[-1]  # and the audio is there up to it


# --- 6. --start moves the timecode on -----------------------------------------------------------
@pytest.mark.parametrize("name", ["tc.mov", "tc.mkv"])
def test_start_moves_the_timecode_on_by_the_cut(tmp_path, name):
    def tag(s):
        s.metadata["timecode"] = "01:00:00:00"

    clip = write_video(tmp_path / "tc.mov", _marked(20), setup=tag)

    def timecode(path) -> str:
        with av.open(str(path)) as c:  # mov: a tmcd track and the video's tag; mkv: TIMECODE
            md = c.streams.video[0].metadata
            return md.get("timecode") or md.get("TIMECODE")

    out = tmp_path / f"o_{name}"
    _copy(clip, out, source_kw={"start": 0.4})
    assert timecode(out) == "01:00:00:10"  # 0.4 s = 10 frames at 25 fps: the label of the first frame kept
    _copy(clip, tmp_path / f"whole_{name}")  # no cut: unchanged
    assert timecode(tmp_path / f"whole_{name}") == "01:00:00:00"


def test_timecode_arithmetic_drop_frame_and_wrap():
    from stream_gpen.io._sink import advance_timecode

    ntsc = Fraction(30000, 1001)
    assert advance_timecode("00:00:59;29", 1, ntsc) == "00:01:00;02"  # frames 00 and 01 are skipped
    assert advance_timecode("00:09:59;29", 1, ntsc) == "00:10:00;00"  # ... except every tenth minute
    assert advance_timecode("01:00:00;00", 107892, ntsc) == "02:00:00;00"  # one hour of 29.97 fps
    assert advance_timecode("23:59:59:24", 2, Fraction(25)) == "00:00:00:01"
    assert advance_timecode("00:00:00;00", 5, Fraction(25)) is None  # drop-frame at 25 fps: not a thing
    assert advance_timecode("garbage", 5, Fraction(25)) is None


# --- 7. several video tracks: the largest is the main one --------------------------------------
def test_the_largest_video_track_is_restored_not_the_first(tmp_path):
    clip = tmp_path / "two.mkv"
    with av.open(str(clip), "w") as c:
        small = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        big = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        small.width, small.height, big.width, big.height = 32, 24, W, H
        for s in (small, big):
            s.pix_fmt = "yuv420p"
        for i in range(5):
            for s, (w, h) in ((small, (32, 24)), (big, (W, H))):
                f = av.VideoFrame.from_ndarray(np.full((h, w, 3), 100, np.uint8), format="rgb24")
                f.pts = i
                for p in s.encode(f):
                    c.mux(p)
        for s in (small, big):
            for p in s.encode(None):
                c.mux(p)
    with open_source(clip) as src:
        assert (src.metadata.width, src.metadata.height) == (W, H) and src._vstream.index == 1
        assert any("restoring #1 (64x48, the largest)" in m and "#0 (32x24)" in m for m in src.fallbacks)
        assert sum(1 for f in src if f.release() is None) == 5
    out = tmp_path / "o.mp4"
    sink = _copy(clip, out)
    assert any("video stream #0" in d for d in sink.dropped)
    with av.open(str(out)) as c:
        assert [(s.codec_context.width, s.codec_context.height) for s in c.streams.video] == [(W, H)]


# --- 8. a truncated file says so --------------------------------------------------------------
def _av_mkv(path: Path, video_s: float, audio_s: float) -> Path:
    from _clips import write_audio

    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        aus = c.add_stream("aac", rate=16000)
        rng = np.random.default_rng(0)
        for i in range(int(video_s * 25)):
            f = av.VideoFrame.from_ndarray(rng.integers(0, 255, (H, W, 3), np.uint8), format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        write_audio(c, aus, audio_s)
    return path


def _read_all(path) -> tuple[int, list[str]]:
    with open_source(path) as src:
        n = sum(1 for f in src if f.release() is None)
        return n, list(src.fallbacks)


def test_a_truncated_file_is_reported(tmp_path):
    clip = _av_mkv(tmp_path / "whole.mkv", 4.0, 4.0)
    n, notes = _read_all(clip)
    assert n == 100 and not any("truncated" in m for m in notes)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # a download cut off halfway
    n, notes = _read_all(cut)
    assert 20 < n < 80
    import re

    said = [re.search(r"looks truncated: .*\((\d+) frames decoded, about (\d+) expected\)", m) for m in notes]
    said = [m for m in said if m]
    assert said and int(said[0][1]) == n and 95 <= int(said[0][2]) <= 105, notes  # 100 (+ the audio's padding)


def test_video_ending_before_its_audio_is_not_truncation(tmp_path):
    clip = _av_mkv(tmp_path / "short_video.mkv", 1.0, 4.0)  # the header says 4 s: the audio's
    n, notes = _read_all(clip)
    assert n == 25 and not any("truncated" in m for m in notes)


def test_a_finished_run_removes_the_partial_of_an_interrupted_one(tmp_path, mobilenet_weights):
    """Ctrl-C left ``o.partial.mp4``; the rerun writes ``o.mp4`` whole: the part is superseded
    (a folder resumed with --skip-existing would otherwise keep both)."""
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    from stream_gpen.io._partials import remember_partial

    clip = write_video(tmp_path / "a.mp4", _marked(3))
    (tmp_path / "o.partial.mp4").write_bytes(b"part")
    (tmp_path / "p.partial.mp4").write_bytes(b"another output's part")
    remember_partial(tmp_path / "o.partial.mp4")  # (as the interrupted run that wrote it records it)
    remember_partial(tmp_path / "p.partial.mp4")
    enh = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False)
    s = enh.enhance_file(clip, tmp_path / "o.mp4")
    assert not (tmp_path / "o.partial.mp4").exists() and (tmp_path / "p.partial.mp4").exists()
    assert "removed o.partial.mp4, left by an interrupted earlier run" in s.fallbacks


def test_mjpeg_frames_with_exif_are_read(tmp_path):
    """Compact cameras' MJPEG clips carry an EXIF block in every JPEG frame, which FFmpeg 8 hands
    over as frame side data of a type PyAV 18 has no name for: reading the frame's side data
    raised ValueError, and info/enhance/serve failed as an internal error (exit 1)."""
    import io

    from PIL import Image

    exif = Image.Exif()
    exif[0x0110] = "DSC-TEST"
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 80, 40)).save(buf, "JPEG", exif=exif, quality=90)
    path = tmp_path / "camera.avi"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mjpeg", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuvj420p"
        for i in range(4):
            p = av.Packet(buf.getvalue())
            p.stream, p.pts, p.dts, p.time_base, p.is_keyframe = s, i, i, Fraction(1, 10), True
            c.mux(p)
    with av.open(str(path)) as c:  # (the condition: PyAV cannot list this frame's side data)
        f = next(c.decode(video=0))
        with pytest.raises(ValueError):
            list(f.side_data)
    frames = []
    with open_source(path) as src:
        for fr in src:
            frames.append(fr.image.numpy().mean(axis=(0, 1)))
            fr.release()
    assert src.metadata.width == 64 and len(frames) == 4
    assert np.abs(frames[0] - (120, 80, 40)).max() < 4


@pytest.mark.parametrize("codec, options", [("libx264", {"bf": "2", "g": "15", "preset": "ultrafast"}),
                                            ("libx264", {"bf": "2", "g": "15", "preset": "ultrafast",
                                                         "x264-params": "open-gop=1"}),
                                            ("mpeg4", {"bf": "1", "g": "15", "qmax": "3"})])
def test_avi_with_b_frames_keeps_each_frame_at_its_time(tmp_path, codec, options):
    """H.264 with B-frames in AVI (``ffmpeg -c:v libx264 out.avi``): FFmpeg guesses each frame's
    time in decode order, so frames came out at 0, 0.08, 0.12, 0.04, ...: the picture ran a frame
    behind its audio and its first frame was held twice. Frame k is at k/25, also for MPEG-4
    (Xvid), and also in a part (``start``): after the seek the decoder drops the B-frames before
    the keyframe it cannot decode (as FFmpeg does), and every later frame used to come out a
    frame early (MPEG-4) or was held a frame late (open-GOP H.264)."""
    frames = [np.full((48, 64, 3), 6 * k, np.uint8) for k in range(40)]
    path = write_video(tmp_path / "cam.avi", frames, codec=codec, options=options)

    def read(**window):
        got = []
        with open_source(path, **window) as src:
            for f in src:
                got.append((round(float(f.image.float().mean()) / 6), round(f.time, 4)))
                f.release()
        return got

    assert read() == [(k, round(k / 25, 4)) for k in range(40)]
    for start in (0.6, 1.0):
        got = read(start=start, duration=0.32)
        assert got and all(t == round(k / 25, 4) for k, t in got), (start, got)  # each frame at its own time
        first = round(start * 25)
        ks = [k for k, _ in got]
        assert first <= ks[0] <= first + 2 and ks == list(range(ks[0], ks[0] + len(ks))) and len(ks) >= 7, got


def test_closed_captions_in_the_video_are_said_to_be_lost(tmp_path, monkeypatch):
    """CEA-608/708 captions ride in the video's own frames (A/53 side data, US TV recordings);
    the output's frames are new pictures, so they are lost: that was silent. (A frame with
    caption side data is simulated: building an H.264 stream with A/53 SEI needs a bitstream
    writer.)"""
    from types import SimpleNamespace

    from stream_gpen.io import _source

    path = write_video(tmp_path / "tv.mp4", [np.zeros((48, 64, 3), np.uint8)] * 3)
    with open_source(path) as src:
        assert not any("closed captions" in m for m in src.fallbacks)
    monkeypatch.setattr(_source, "frame_side_data", lambda f: [SimpleNamespace(type="Type.A53_CC")])
    with open_source(path) as src:
        assert any("closed captions carried in the video" in m for m in src.fallbacks), src.fallbacks


def test_relative_names_with_a_colon_are_files_not_protocols(tmp_path, monkeypatch):
    """FFmpeg reads a leading ``word:`` as a protocol: ``10:30.mp4`` (a time in a file name) or
    ``Party:2019/clip.mp4`` failed with "Protocol not found", as input, as output (through its
    temporary name) and in a stream copy."""
    from stream_gpen.io import remux

    monkeypatch.chdir(tmp_path)
    (tmp_path / "Party:2019").mkdir()
    write_video(tmp_path / "Party:2019" / "10:30.mp4", [np.full((48, 64, 3), 40 * k, np.uint8) for k in range(3)])
    with open_source("Party:2019/10:30.mp4") as src, open_sink("11:00.mkv", source=src, preset="ultrafast") as sink:
        for f in src:
            sink.write(f)
    assert remux("Party:2019/10:30.mp4", "12:00.mkv") == 3
    for name in ("11:00.mkv", "12:00.mkv"):
        with av.open(str(tmp_path / name)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 3


@pytest.mark.parametrize("ext", ["mkv", "ts"])
def test_a_recording_that_starts_mid_gop_says_its_head_cannot_be_decoded(tmp_path, ext):
    """Hunt 18: packets before the first keyframe (a recording cut mid-GOP) decode to nothing, as
    in FFmpeg; the run said nothing of the 0.32 s it could not show."""
    from _clips import write_video
    from stream_gpen.io import open_source

    src = write_video(tmp_path / "g.mkv", [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(30)],
                      options={"g": "12", "bf": "2"})
    cut = tmp_path / f"midgop.{ext}"
    with av.open(str(src)) as i, av.open(str(cut), "w") as o:
        ov = o.add_stream_from_template(i.streams.video[0])
        for p in [p for p in i.demux(i.streams.video[0]) if p.size][5:]:
            p.stream = ov
            o.mux(p)
    with open_source(cut) as s:
        n = sum(1 for f in s if f.release() or True)
    assert n == 18
    said = [m for m in s.fallbacks if "cannot be decoded" in m]
    assert len(said) == 1 and "first 0.32 s" in said[0] and "mid-GOP" in said[0], s.fallbacks
    # a whole file (its decoder's usual delay, B-frames) says nothing
    with open_source(src) as s:
        assert sum(1 for f in s if f.release() or True) == 30
    assert not [m for m in s.fallbacks if "cannot be decoded" in m]


def test_an_edit_list_trimmed_mp4_is_not_taken_for_a_mid_gop_start(tmp_path):
    """regress18: `ffmpeg -ss 0.48 -i src.mp4 -c copy out.mp4` starts mid-GOP behind an edit list
    (the packets before are flagged discard; players start at the cut): the new mid-GOP note said
    "the video's first 0.48 s cannot be decoded" for it, though nothing is lost."""
    from _clips import write_video
    from stream_gpen.io import open_source

    src = write_video(tmp_path / "src.mp4", [np.full((48, 64, 3), 4 * i, np.uint8) for i in range(60)],
                      options={"g": "30", "bf": "0"})
    cut = tmp_path / "edit.mp4"
    with av.open(str(src)) as i, av.open(str(cut), "w") as o:
        vi = i.streams.video[0]
        vo = o.add_stream_from_template(vi)
        step = round(1 / (25 * vi.time_base))
        for p in i.demux(vi):
            if p.dts is None:
                continue
            p.pts -= 12 * step
            p.dts -= 12 * step
            p.stream = vo
            o.mux(p)
    with av.open(str(cut)) as c:
        assert any(p.is_discard for p in c.demux(video=0))  # (the edit list hides the lead-in)
    with open_source(cut) as s:
        n = sum(1 for f in s if f.release() or True)
    assert n >= 48
    assert not [m for m in s.fallbacks if "cannot be decoded" in m], s.fallbacks


def test_a_larger_one_frame_still_track_does_not_replace_the_moving_picture(tmp_path):
    """An mp4 with a 640x480 one-frame MJPEG track (a still, not flagged as cover art) beside a
    320x240 30-frame video: the still was chosen for being larger, and the output was one frame."""
    clip = tmp_path / "still.mp4"
    with av.open(str(clip), "w") as c:
        a = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        a.width, a.height, a.pix_fmt = 32, 24, "yuv420p"
        b = c.add_stream("mjpeg", rate=25)
        b.width, b.height, b.pix_fmt = W, H, "yuvj420p"
        for i in range(12):
            f = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 10 * i, np.uint8), format="rgb24")
            f.pts = i
            for p in a.encode(f):
                c.mux(p)
            if i == 0:
                g = av.VideoFrame.from_ndarray(np.full((H, W, 3), 200, np.uint8), format="rgb24")
                g = g.reformat(format="yuvj420p")
                g.pts = 0
                for p in [*b.encode(g), *b.encode(None)]:
                    c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    with open_source(clip) as src:
        assert (src.metadata.width, src.metadata.height) == (32, 24) and src._vstream.index == 0
        assert any("restoring #0 (32x24, the largest moving one)" in m and f"#1 ({W}x{H}, a one-frame still)" in m
                   for m in src.fallbacks), src.fallbacks
        assert sum(1 for f in src if f.release() is None) == 12
