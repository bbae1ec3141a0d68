"""`stream-gpen camera` on macOS and Windows, simulated: ``sys.platform`` is patched and ``av.open``
of the capture demuxer (avfoundation, dshow) is a fake that follows FFmpeg's own rules
(libavdevice/avfoundation.m, dshow.c): it logs what FFmpeg logs, fails as FFmpeg fails, and opens
a small lavfi test pattern where FFmpeg would open the camera.

1. macOS: AVFoundation's default rate (ntsc, 29.97) is refused by a camera whose fastest mode is
   exactly 30 fps (MacBook FaceTime); the camera is opened at a rate it offers, and
   ``camera --list`` lists the cameras through FFmpeg;
2. Windows: a number (the default 0) means the N-th DirectShow camera that ``camera --list``
   shows, and the help says so.
"""
from __future__ import annotations

import errno
import sys
from fractions import Fraction

import av
import av.logging
import pytest

from stream_gpen import commands
from stream_gpen.cli import main
from stream_gpen.errors import InvalidInputError
from stream_gpen.io._source import VideoSource, _classify

_real_open = av.open
_EXIT = -1414092869  # AVERROR_EXIT: how a device demuxer ends an open that only listed the devices


class _FFmpegLog:
    """FFmpeg's log as PyAV's ``Capture`` sees it: the fakes below log into it, as FFmpeg does
    (a line may come in several messages, each keeping its newline)."""

    def __init__(self) -> None:
        self.current: list | None = None

    def Capture(self, local: bool = True):  # noqa: N802 (PyAV's name)
        log = self

        class _Capture:
            def __enter__(self):
                log.current = []
                return log.current

            def __exit__(self, *exc):
                log.current = None

        return _Capture()

    def __call__(self, level: int, name: str, *parts: str) -> None:
        if self.current is not None:
            self.current.extend((level, name, p) for p in parts)


def _fail(code: int, target: str):
    av.error.err_check(code, target)


def _camera():
    """Where FFmpeg would open the camera: 3 frames of a small test pattern at 30 fps."""
    return _real_open("testsrc2=size=96x64:rate=30:duration=0.1", "r", format="lavfi")


@pytest.fixture
def ffmpeg_log(monkeypatch):
    log = _FFmpegLog()
    monkeypatch.setattr(av.logging, "Capture", log.Capture)
    return log


# --- 1. macOS: AVFoundation -----------------------------------------------------------------------
def _mac(monkeypatch, log: _FFmpegLog, max_rate: float = 30.0) -> list:
    """macOS with one camera whose modes are 1280x720@[1 max_rate]fps; the avfoundation opens
    are recorded as (target, options)."""
    calls = []

    def fake_open(target, mode="r", **kw):
        if kw.get("format") != "avfoundation":
            return _real_open(target, mode, **kw)
        opts = dict(kw.get("options") or {})
        calls.append((target, opts))
        if opts.get("list_devices") == "true":
            log(32, "AVFoundation indev", "AVFoundation video devices:\n", "[0] FaceTime HD Camera\n",
                "[1] Capture screen 0\n", "AVFoundation audio devices:\n", "[0] MacBook Pro Microphone\n")
            _fail(-errno.EIO, target)  # avf_read_header: "goto fail" after the list
        if target not in ("0", "FaceTime HD Camera"):
            log(16, "AVFoundation indev", "Invalid device index\n")
            _fail(-errno.EIO, target)
        rate = opts.get("framerate", "ntsc")  # FFmpeg's default
        rate = Fraction(30000, 1001) if rate == "ntsc" else Fraction(rate)
        if abs(float(rate) - max_rate) >= 0.01:  # configure_video_device
            log(16, "AVFoundation indev", f"Selected framerate ({float(rate):f}) is not supported by the device\n",
                "Supported modes:\n", f"  1280x720@[1.000000 {max_rate:f}]fps\n")
            _fail(-errno.EIO, target)  # add_video_device failed: "goto fail"
        return _camera()

    monkeypatch.setattr(av, "open", fake_open)
    monkeypatch.setattr(sys, "platform", "darwin")
    return calls


def test_mac_camera_opens_at_a_rate_it_offers(monkeypatch, ffmpeg_log):
    calls = _mac(monkeypatch, ffmpeg_log)
    assert commands._default_camera() == "0"
    with VideoSource(commands._default_camera()) as src:
        frames = [f for f in src]
    assert len(frames) == 3
    assert calls == [("0", {"framerate": "30"})]  # not FFmpeg's ntsc default, which this camera refuses


def test_mac_camera_tries_the_common_rates_in_turn(monkeypatch, ffmpeg_log):
    calls = _mac(monkeypatch, ffmpeg_log, max_rate=15.0)
    with VideoSource("0") as src:
        assert 1 <= len(list(src)) <= 3  # (live: a reader behind the burst gets its newest frames)
    assert [o.get("framerate") for _, o in calls] == ["30", "30000/1001", "25", "15"]


def test_mac_camera_that_refuses_every_rate_says_so(monkeypatch, ffmpeg_log):
    calls = _mac(monkeypatch, ffmpeg_log, max_rate=7.5)
    with pytest.raises(InvalidInputError,
                       match=r"capture device '0' refused every frame rate tried \(30, 29.97, 25, 15, 60 fps and "
                             r"FFmpeg's default\).*1280x720@\[1.000000 7.500000\]fps") as e:
        VideoSource("0")
    assert "not a capture device" not in str(e.value)
    assert [o.get("framerate") for _, o in calls] == ["30", "30000/1001", "25", "15", "60", None]


def test_mac_missing_camera_is_not_retried(monkeypatch, ffmpeg_log):
    calls = _mac(monkeypatch, ffmpeg_log)
    with pytest.raises(InvalidInputError, match=r"capture device '3' is not available: .*Invalid device index") as e:
        VideoSource("3")
    assert "camera --list" in e.value.hint
    assert len(calls) == 1  # FFmpeg said why: not the rate


def test_mac_camera_list(monkeypatch, ffmpeg_log, capsys):
    calls = _mac(monkeypatch, ffmpeg_log)
    assert main(["camera", "--list"]) == 0
    out, err = capsys.readouterr()
    assert [ln.split(None, 1) for ln in out.splitlines()] == [["0", "FaceTime HD Camera"], ["1", "Capture screen 0"]]
    assert "Linux-only" not in err
    assert calls == [("", {"list_devices": "true"})]
    assert av.logging.get_level() is None  # the log level is put back


# --- 2. Windows: DirectShow ------------------------------------------------------------------------
def _windows(monkeypatch, log: _FFmpegLog, cameras=("Integrated Camera", "OBS Virtual Camera")) -> list:
    """Windows with these DirectShow cameras (and a microphone); the dshow opens are recorded."""
    calls = []

    def fake_open(target, mode="r", **kw):
        if kw.get("format") != "dshow":
            return _real_open(target, mode, **kw)
        opts = dict(kw.get("options") or {})
        calls.append((target, opts))
        if opts.get("list_devices") == "true":
            for i, name in enumerate(cameras):  # dshow_cycle_devices: name, media types, newline
                log(32, "dshow", f'"{name}"', " (video", ")", "\n",
                    f'  Alternative name "@device_pnp_\\\\?\\usb#vid_{i:04x}"\n')
            log(32, "dshow", '"Microphone Array (Realtek)"', " (audio", ")", "\n")
            _fail(_EXIT, target)
        name = target.removeprefix("video=")
        number = int(opts.get("video_device_number", 0))
        if not target.startswith("video=") or list(cameras).count(name) <= number:
            log(16, "dshow", f"Could not find video device with name [{name}] among source devices of type video.\n")
            _fail(-errno.EIO, target)
        return _camera()

    monkeypatch.setattr(av, "open", fake_open)
    monkeypatch.setattr(sys, "platform", "win32")
    return calls


def test_windows_default_camera_is_the_first_listed(monkeypatch, ffmpeg_log):
    calls = _windows(monkeypatch, ffmpeg_log)
    assert commands._default_camera() == "0"
    with VideoSource(commands._default_camera()) as src:
        assert 1 <= len(list(src)) <= 3  # (live: a reader behind the burst gets its newest frames)
    assert calls[-1] == ("video=Integrated Camera", {})
    assert _classify("1") == ("device", "video=OBS Virtual Camera", "dshow", {})
    assert _classify("video=OBS Virtual Camera") == ("device", "video=OBS Virtual Camera", "dshow", {})


def test_windows_second_camera_of_the_same_name(monkeypatch, ffmpeg_log):
    _windows(monkeypatch, ffmpeg_log, cameras=("USB Camera", "USB Camera"))
    assert _classify("1") == ("device", "video=USB Camera", "dshow", {"video_device_number": "1"})
    with VideoSource("1") as src:
        assert 1 <= len(list(src)) <= 3  # (live: a reader behind the burst gets its newest frames)


def test_windows_camera_number_beyond_the_list(monkeypatch, ffmpeg_log):
    _windows(monkeypatch, ffmpeg_log)
    with pytest.raises(InvalidInputError, match=r"'2': there are only 2 cameras here \(0 Integrated Camera, "
                                                r"1 OBS Virtual Camera\)") as e:
        VideoSource("2")
    assert "camera --list" in e.value.hint


def test_windows_without_cameras(monkeypatch, ffmpeg_log, capsys):
    _windows(monkeypatch, ffmpeg_log, cameras=())
    with pytest.raises(InvalidInputError, match="DirectShow lists no camera") as e:
        VideoSource("0")
    assert "video=Integrated Camera" in e.value.hint
    assert main(["camera", "--list"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "no cameras found by DirectShow" in err and "video=NAME" in err


def test_windows_camera_list(monkeypatch, ffmpeg_log, capsys):
    calls = _windows(monkeypatch, ffmpeg_log)
    assert main(["camera", "--list"]) == 0
    out, err = capsys.readouterr()
    assert [ln.split(None, 1) for ln in out.splitlines()] == [["0", "Integrated Camera"], ["1", "OBS Virtual Camera"]]
    assert calls == [("dummy", {"list_devices": "true"})]


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_an_ffmpeg_without_the_camera_input_says_so(monkeypatch, capsys, platform):
    monkeypatch.setattr(sys, "platform", platform)  # the real av.open: this Linux FFmpeg has neither input
    assert main(["camera", "--list"]) == 2
    err = capsys.readouterr().err
    assert "cannot open cameras: it has no" in err and "install a PyAV build" in err
    with pytest.raises(InvalidInputError, match="cannot open cameras: it has no"):
        VideoSource("0")


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_camera_help_names_the_default_and_the_list(monkeypatch, capsys, platform):
    monkeypatch.setattr(sys, "platform", platform)
    assert main(["camera", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "default 0, the first camera (camera --list shows them)" in text
    assert "the camera's number from camera --list, 0 = the first, or on Windows video=NAME" in text


def test_a_named_directshow_camera_on_an_ffmpeg_without_dshow_says_so(monkeypatch):
    """`camera "video=NAME"` skips the listing: the open itself met "no container format 'dshow'"
    (a ValueError), which was an internal error."""
    monkeypatch.setattr(sys, "platform", "win32")  # the real av.open: this Linux FFmpeg has no dshow
    with pytest.raises(InvalidInputError, match="cannot open cameras: it has no 'dshow' input"):
        VideoSource("video=Integrated Camera")
