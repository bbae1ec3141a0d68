"""Hunt 33 (devices): the preview window and real capture devices (V4L2, DirectShow), with
OpenCV's window functions and FFmpeg's device opens stood in for (no display, no camera here)."""
from __future__ import annotations

import sys

import pytest

from stream_gpen.cli import main


class _FakeGui:
    """OpenCV's HighGUI as far as the preview uses it: a window exists once ``imshow`` made it,
    ``destroyWindow`` of one that does not fails as Qt's does ("NULL guiReceiver"), ``keys`` are
    the keys pressed (one per ``waitKey``/``pollKey``), ``closed`` the user's closing the window."""

    def __init__(self) -> None:
        import cv2

        self.error = cv2.error
        self.windows: set[str] = set()
        self.keys: list[int] = []
        self.closed = False
        self.calls: list[str] = []

    def imshow(self, title, img) -> None:
        self.calls.append("imshow")
        self.windows.add(title)

    def _key(self) -> int:
        return self.keys.pop(0) if self.keys else -1

    def waitKey(self, ms=0) -> int:  # noqa: N802
        self.calls.append("waitKey")
        return self._key()

    def pollKey(self) -> int:  # noqa: N802
        self.calls.append("pollKey")
        return self._key()

    def getWindowProperty(self, title, prop) -> float:  # noqa: N802
        if title not in self.windows:
            raise self.error("NULL window")
        return 0.0 if self.closed else 1.0

    def destroyWindow(self, title) -> None:  # noqa: N802
        if title not in self.windows:
            raise self.error("OpenCV(4.10.0) window_QT.cpp:523: error: (-27:Null pointer) NULL guiReceiver "
                             "(please create a window) in function 'cvDestroyWindow'")
        self.windows.discard(title)


@pytest.fixture
def fake_cv2(monkeypatch):
    """The real cv2 (the classic enhancer uses it) with its window functions stood in for."""
    import cv2

    gui = _FakeGui()
    for name in ("imshow", "waitKey", "pollKey", "getWindowProperty", "destroyWindow"):
        monkeypatch.setattr(cv2, name, lambda *a, _name=name: getattr(gui, _name)(*a), raising=False)
    return gui


def _frame(n: int = 0):
    import torch

    from stream_gpen.io import Frame
    from fractions import Fraction

    return Frame(n, n, Fraction(1, 25), n / 25, torch.zeros(8, 8, 3, dtype=torch.uint8))


def test_a_preview_closed_before_its_first_frame_has_no_window_to_destroy(fake_cv2):
    from stream_gpen.io import PreviewSink

    sink = PreviewSink()
    sink.close()  # (destroyWindow raised "NULL guiReceiver")
    assert "imshow" not in fake_cv2.calls
    sink = PreviewSink()
    sink.write(_frame())
    sink.close()
    assert not fake_cv2.windows


def test_a_preview_whose_window_went_away_closes_quietly(fake_cv2):
    from stream_gpen.io import PreviewSink

    sink = PreviewSink()
    sink.write(_frame())
    fake_cv2.windows.clear()  # (the GUI gone under it)
    sink.close()


@pytest.mark.parametrize("record", [False, True])
def test_camera_preview_stopped_before_the_first_frame_is_not_an_error(tmp_path, cli_env, capsys, monkeypatch,
                                                                         fake_cv2, record):
    """q + Enter before the first frame with --preview: "error: OpenCV ... NULL guiReceiver",
    exit 1, or with -o, "error: no frames were written ...; nothing to save", exit 4."""
    import stream_gpen.commands as commands

    monkeypatch.setattr(commands, "_display_problem", lambda: None)
    monkeypatch.setattr(commands, "_stdin_quit_watcher", lambda stop: stop.set())  # q + Enter at once
    out = tmp_path / "rec.mkv"
    rec = ["-o", str(out)] if record else []
    assert main(["camera", "lavfi:testsrc=size=96x64:rate=1", "--preview", *rec,
                 *[o for o in cli_env if o != "--quiet"]]) == 0
    err = capsys.readouterr().err
    assert "nothing was recorded" in err or not record, err
    assert "error" not in err.lower(), err
    assert not out.exists()


def test_the_preview_reads_q_and_its_close_button_between_frames(fake_cv2):
    """poll() (the live loop's idle tick): q was read only at the next frame's write, and the
    window's close button never."""
    from stream_gpen.io import PreviewSink

    sink = PreviewSink()
    assert not sink.poll() and not fake_cv2.calls  # (no window yet: nothing to ask)
    sink.write(_frame())
    assert not sink.poll() and not sink.closed_by_user
    fake_cv2.keys = [ord("q")]
    assert sink.poll() and sink.closed_by_user

    sink = PreviewSink()
    sink.write(_frame())
    fake_cv2.closed = True  # (the title bar's close button)
    assert sink.poll()


def test_a_gui_that_cannot_tell_visibility_does_not_close_the_preview(fake_cv2, monkeypatch):
    from stream_gpen.io import PreviewSink

    monkeypatch.setattr(fake_cv2, "getWindowProperty", lambda title, prop: -1.0, raising=False)
    sink = PreviewSink()
    sink.write(_frame())
    assert not sink.poll() and not sink.poll()


@pytest.mark.parametrize("how", ["q", "close button"])
def test_camera_preview_closed_while_waiting_for_the_next_frame_ends_the_session(tmp_path, cli_env, monkeypatch,
                                                                                 fake_cv2, how):
    """The window closed (q, or its close button) between two frames of a 1 fps camera ended the
    session; only the frame's own waitKey read it: a close button never, q at the next frame."""
    import json

    import stream_gpen.commands as commands

    monkeypatch.setattr(commands, "_display_problem", lambda: None)
    real_poll = fake_cv2.pollKey

    def poll_key():  # the user acts once the first frame is up, before the next one comes
        if how == "q":
            fake_cv2.keys = [ord("q")]
        else:
            fake_cv2.closed = True
        return real_poll()

    monkeypatch.setattr(fake_cv2, "pollKey", poll_key, raising=False)
    rep = tmp_path / "r.json"
    assert main(["camera", "lavfi:testsrc=size=96x64:rate=1", "--preview", "--frames", "3", "--report", str(rep),
                 *cli_env]) == 0
    r = json.loads(rep.read_text())
    assert r["frames_out"] == 1, r


# --- capture devices: FFmpeg's v4l2/dshow opens stood in for -------------------------------------
def _device_open_fails(monkeypatch, fmt: str, code: int, *logged: str) -> list:
    """``av.open`` of the ``fmt`` demuxer fails as FFmpeg's does with ``AVERROR(code)``, logging
    ``logged`` at error level first (into PyAV's log capture, where FFmpeg's lines go); the opens
    are recorded as (target, kwargs)."""
    import av
    import av.logging

    real_open = av.open
    calls, current = [], []

    class _Capture:
        def __init__(self, local=True):
            pass

        def __enter__(self):
            current.append([])
            return current[-1]

        def __exit__(self, *exc):
            current.pop()

    def fake_open(target, mode="r", **kw):
        if kw.get("format") != fmt:
            return real_open(target, mode, **kw)
        calls.append((target, kw))
        for line in logged:
            if current:
                current[-1].append((16, fmt, line + "\n"))
        av.error.err_check(-code, target)

    monkeypatch.setattr(av, "open", fake_open)
    monkeypatch.setattr(av.logging, "Capture", _Capture)
    return calls


@pytest.mark.parametrize("platform, fmt, spec", [("linux", "v4l2", "/dev/video7"),
                                                 ("win32", "dshow", "video=Integrated Camera")])
def test_a_device_that_refuses_the_open_with_einval_is_not_a_missing_camera_input(monkeypatch, platform, fmt, spec):
    """EINVAL (av.error.ArgumentError, a ValueError too) was taken for PyAV's "no container
    format 'v4l2'": "this FFmpeg cannot open cameras: it has no 'v4l2' input"."""
    import errno

    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io._source import VideoSource

    monkeypatch.setattr(sys, "platform", platform)
    _device_open_fails(monkeypatch, fmt, errno.EINVAL)
    with pytest.raises(InvalidInputError, match="is not available: not a capture device") as e:
        VideoSource(spec)
    assert "cannot open cameras" not in str(e.value)


def test_a_v4l2_metadata_node_is_said_to_be_one(monkeypatch):
    """ENODEV with "Not a video capture device." (a UVC camera's second /dev/videoN) said "not
    found", and FFmpeg's logged reason was not read for a v4l2 open at all."""
    import errno

    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io._source import VideoSource

    monkeypatch.setattr(sys, "platform", "linux")
    _device_open_fails(monkeypatch, "v4l2", errno.ENODEV, "Not a video capture device.")
    with pytest.raises(InvalidInputError, match=r"not a capture device \(a camera's metadata node: try the next "
                                                r"/dev/videoN\).*Not a video capture device\.") as e:
        VideoSource("/dev/video1")
    assert "not found" not in str(e.value)


def test_a_v4l2_node_gone_is_not_found(monkeypatch):
    import errno

    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io._source import VideoSource

    monkeypatch.setattr(sys, "platform", "linux")
    _device_open_fails(monkeypatch, "v4l2", errno.ENODEV, "Cannot open video device /dev/video0: No such device")
    with pytest.raises(InvalidInputError, match="is not available: not found"):
        VideoSource("/dev/video0")


def test_a_busy_directshow_camera_says_ffmpegs_reason(monkeypatch):
    """dshow.c logs why the open failed and returns EIO: it said only "Input/output error"."""
    import errno

    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io import _source
    from stream_gpen.io._source import VideoSource

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(_source, "dshow_cameras", lambda: ["Integrated Camera"])
    why = "Could not run graph (sometimes caused by a device already in use by other application)"
    _device_open_fails(monkeypatch, "dshow", errno.EIO, why)
    with pytest.raises(InvalidInputError, match=r"Input/output error.*" + why.replace("(", r"\(").replace(")", r"\)")):
        VideoSource("0")


def test_camera_list_says_which_nodes_are_metadata(tmp_path):
    from stream_gpen import commands

    (tmp_path / "dev").mkdir()
    for n in (0, 1):
        (tmp_path / "dev" / f"video{n}").touch()
        d = tmp_path / "sys/class/video4linux" / f"video{n}"
        d.mkdir(parents=True)
        (d / "name").write_text("HD Pro Webcam C920\n")
        (d / "index").write_text(f"{n}\n")
    listed = dict(commands.list_video_devices(str(tmp_path)))
    assert listed["/dev/video0"] == "HD Pro Webcam C920"
    assert "metadata, not a camera" in listed["/dev/video1"]


def test_a_camera_unplugged_mid_run_says_so_without_the_errno_tag(monkeypatch, tmp_path):
    """The reader's error said "device source '/dev/video7' failed: [Errno 19] No such device: '/dev/video7'"."""
    import errno
    import os

    import av

    from stream_gpen.errors import SourceClosedError
    from stream_gpen.io._source import VideoSource

    real_open = av.open

    class _Unplugged:
        def __init__(self, c):
            self._c = c

        def __getattr__(self, k):
            return getattr(self._c, k)

        def demux(self, *a, **k):
            for n, p in enumerate(self._c.demux(*a, **k)):
                if n == 3:
                    raise av.error.OSError(errno.ENODEV, os.strerror(errno.ENODEV), "/dev/video7")
                yield p

    def fake_open(target, mode="r", **kw):
        if kw.get("format") != "v4l2":
            return real_open(target, mode, **kw)
        return _Unplugged(real_open("testsrc2=size=96x64:rate=30:duration=1", "r", format="lavfi"))

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(av, "open", fake_open)
    with pytest.raises(SourceClosedError) as e:
        with VideoSource("/dev/video7", reconnect=0) as src:
            for _ in src:
                pass
    assert "No such device (unplugged?)" in str(e.value) and "Errno" not in str(e.value), e.value


def test_a_camera_number_on_linux_is_checked_before_the_model_loads(tmp_path, monkeypatch, capsys):
    """`camera 7` (README: a number on Linux is /dev/videoN) went on to load, or download, the
    model before its open said the device was missing; /dev/video7 said so at once."""
    from stream_gpen import commands

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(commands, "list_video_devices", lambda root="/": [])
    number = next(str(n) for n in range(97, 1000) if not commands.Path(f"/dev/video{n}").exists())
    assert main(["camera", number, "--model", "gpen-bfr-512", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"no such capture device: /dev/video{number}" in err and "weights" not in err.lower(), err


def test_udevs_stable_camera_names_are_opened_as_cameras(monkeypatch):
    """/dev/v4l/by-id/... and /dev/v4l/by-path/... (links to /dev/videoN, a character device of
    major 81) were opened as plain files."""
    import errno
    import os
    import stat
    import types

    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io import _source
    from stream_gpen.io._source import VideoSource, _classify

    links = ("/dev/v4l/by-id/usb-Cam-video-index0", "/dev/v4l/by-path/pci-0000:00:14.0-usb-0:1:1.0-video-index0")
    real_stat = os.stat

    def fake_stat(path, *a, **k):
        if path in links:
            return types.SimpleNamespace(st_mode=stat.S_IFCHR | 0o660, st_rdev=os.makedev(81, 0))
        return real_stat(path, *a, **k)

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(_source.os, "stat", fake_stat)
    for link in links:
        assert _classify(link) == ("device", link, "v4l2", {})
    assert _classify("/dev/null")[0] == "file"  # (a character device, not V4L2's)
    calls = _device_open_fails(monkeypatch, "v4l2", errno.EBUSY)
    with pytest.raises(InvalidInputError, match="is not available: busy"):
        VideoSource(links[0])
    assert calls[0][0] == links[0]


# --- the capture mode: --video-size, --framerate, --input-format ------------------------------------
def _device_opens(monkeypatch, fmt: str) -> list:
    """``av.open`` of the ``fmt`` demuxer opens a small test pattern where FFmpeg would open the
    camera; the options it was given are recorded."""
    import av

    real_open = av.open
    calls = []

    def fake_open(target, mode="r", **kw):
        if kw.get("format") != fmt:
            return real_open(target, mode, **kw)
        calls.append((target, dict(kw.get("options") or {})))
        return real_open("testsrc2=size=96x64:rate=30:duration=0.1", "r", format="lavfi")

    monkeypatch.setattr(av, "open", fake_open)
    return calls


@pytest.mark.parametrize("platform, fmt, spec, want", [
    ("linux", "v4l2", "/dev/video7",
     {"video_size": "1280x720", "framerate": "30000/1001", "input_format": "mjpeg"}),
    ("win32", "dshow", "video=Integrated Camera",
     {"video_size": "1280x720", "framerate": "30000/1001", "vcodec": "mjpeg"}),
])
def test_the_capture_mode_reaches_ffmpegs_camera_input(monkeypatch, platform, fmt, spec, want):
    from stream_gpen.io import CaptureMode
    from stream_gpen.io._source import VideoSource

    monkeypatch.setattr(sys, "platform", platform)
    calls = _device_opens(monkeypatch, fmt)
    mode = CaptureMode.parse(size="1280x720", rate="29.97", input_format="MJPEG")
    with VideoSource(spec, capture=mode) as src:
        assert list(src)
    assert calls[0] == (spec, want)
    calls.clear()
    with VideoSource(spec, capture=CaptureMode.parse(input_format="yuyv422")):
        pass
    assert calls[0][1] == ({"input_format": "yuyv422"} if fmt == "v4l2" else {"pixel_format": "yuyv422"})


def test_a_mac_camera_is_asked_for_the_given_rate_only(monkeypatch):
    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io import CaptureMode
    from stream_gpen.io._source import VideoSource

    monkeypatch.setattr(sys, "platform", "darwin")
    calls = _device_opens(monkeypatch, "avfoundation")
    with VideoSource("0", capture=CaptureMode.parse(size="640x480", rate="15", input_format="nv12")):
        pass
    assert calls == [("0", {"video_size": "640x480", "framerate": "15", "pixel_format": "nv12"})]
    with pytest.raises(InvalidInputError, match="AVFoundation .macOS. delivers raw pictures only, not 'mjpeg'"):
        VideoSource("0", capture=CaptureMode.parse(input_format="mjpeg"))


@pytest.mark.parametrize("kw, said", [
    (dict(size="1280"), "a capture size is WIDTHxHEIGHT, got '1280'"),
    (dict(size="0x720"), "each 1 to 16384 pixels"),
    (dict(rate="fast"), "a capture frame rate is a number of frames a second, got 'fast'"),
    (dict(rate="0"), "a capture frame rate is a Fraction above 0"),
    (dict(input_format="mjpg"), "unknown capture input format 'mjpg'"),
])
def test_bad_capture_modes_are_refused(kw, said):
    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io import CaptureMode

    with pytest.raises(InvalidInputError, match=said):
        CaptureMode.parse(**kw)


def test_a_capture_mode_is_refused_for_a_source_that_is_no_camera(tmp_path):
    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io import CaptureMode, open_source

    mode = CaptureMode.parse(input_format="mjpeg")
    photo = tmp_path / "a.png"
    photo.write_bytes(b"")
    for spec, what in (("lavfi:testsrc2", "a lavfi graph"), ("rtsp://127.0.0.1:9/x", "a network stream"),
                       (str(photo), "a file")):
        with pytest.raises(InvalidInputError, match=f"is for capture devices; .* is {what}"):
            open_source(spec, capture=mode)


@pytest.mark.parametrize("extra, said", [
    (["lavfi:testsrc=size=96x64", "--input-format", "mjpeg"], "is for capture devices; 'lavfi:testsrc=size=96x64' "
                                                              "is a lavfi graph"),
    (["--video-size", "big"], "a capture size is WIDTHxHEIGHT, got 'big'"),
    (["--framerate", "-5"], "a capture frame rate is a Fraction above 0"),
])
def test_camera_capture_options_are_checked_before_the_model_loads(tmp_path, monkeypatch, capsys, extra, said):
    import stream_gpen.commands as commands

    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(commands, "_default_camera", lambda: "0")  # (no /dev/video0 here)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert main(["camera", *extra, "--model", "gpen-bfr-512", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert said in err and "weights" not in err.lower(), err


def test_run_camera_asks_the_camera_for_the_capture_mode(monkeypatch, mobilenet_weights):
    from stream_gpen.api import Enhancer
    from stream_gpen.commands import run_camera
    from stream_gpen.io import CaptureMode

    monkeypatch.setattr(sys, "platform", "linux")
    calls = _device_opens(monkeypatch, "v4l2")
    enh = Enhancer("classic", device="cpu", progress=False, detect_size=96, detector_weights=str(mobilenet_weights))
    s = run_camera(enh, "/dev/video7", outputs=["null"], frames=2, quiet=True,
                   capture=CaptureMode.parse(size="640x480", input_format="mjpeg"))
    assert s.frames_out >= 1
    assert calls[0] == ("/dev/video7", {"video_size": "640x480", "input_format": "mjpeg"})
