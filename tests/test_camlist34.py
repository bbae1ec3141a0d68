"""Hunt 34 (camera --list): a Linux node's driver asked what it is (VIDIOC_QUERYCAP) and what it
offers (VIDIOC_ENUM_FMT / ENUM_FRAMESIZES), with the ioctl stood in for (no camera here): the
structs are built by hand, byte by byte, as linux/videodev2.h lays them out."""
from __future__ import annotations

import errno
import sys

import pytest

from stream_gpen.cli import main


def _u32(*values: int) -> bytes:
    return b"".join(v.to_bytes(4, sys.byteorder) for v in values)


def _text(s: str, n: int) -> bytes:
    return s.encode().ljust(n, b"\0")


def _capability(card: str, caps: int, device_caps: int = 0) -> bytes:
    """struct v4l2_capability: driver[16], card[32], bus_info[32], version, capabilities,
    device_caps, reserved[3] (104 bytes)."""
    return (_text("uvcvideo", 16) + _text(card, 32) + _text("usb-0000:00:14.0-1", 32)
            + _u32(0x060800, caps, device_caps, 0, 0, 0))


def _fourcc(s: str) -> int:
    return int.from_bytes(s.encode(), "little")


class _FakeV4l2:
    """``fcntl.ioctl`` of a UVC camera's node: QUERYCAP says ``capability``; ENUM_FMT and
    ENUM_FRAMESIZES answer from ``formats`` (fourcc -> (compressed, sizes: (w, h) or a stepwise
    (min_w, max_w, step_w, min_h, max_h, step_h))), then EINVAL past the last, as a driver does."""

    def __init__(self, capability: bytes, formats=None, fail=None) -> None:
        self.capability, self.formats, self.fail = capability, dict(formats or {}), fail
        self.calls: list[int] = []

    def __call__(self, fd, request, buf):
        self.calls.append(request)
        if self.fail is not None:
            raise OSError(self.fail, "stood in")
        if request == 0x80685600:  # VIDIOC_QUERYCAP
            buf[:] = self.capability
        elif request == 0xC0405602:  # VIDIOC_ENUM_FMT: index, type, flags, description[32], pixelformat, ...
            index = int.from_bytes(buf[0:4], sys.byteorder)
            assert int.from_bytes(buf[4:8], sys.byteorder) == 1 and len(buf) == 64  # (V4L2_BUF_TYPE_VIDEO_CAPTURE)
            if index >= len(self.formats):
                raise OSError(errno.EINVAL, "Invalid argument")
            name, (compressed, _) = list(self.formats.items())[index]
            buf[:] = _u32(index, 1, int(compressed)) + _text(name, 32) + _u32(_fourcc(name), 0, 0, 0, 0)
        elif request == 0xC02C564A:  # VIDIOC_ENUM_FRAMESIZES: index, pixel_format, type, union[6], reserved[2]
            assert len(buf) == 44
            index, code = (int.from_bytes(buf[i:i + 4], sys.byteorder) for i in (0, 4))
            sizes = next(s for n, (_, s) in self.formats.items() if _fourcc(n) == code)
            if index >= len(sizes):
                raise OSError(errno.EINVAL, "Invalid argument")
            size = sizes[index]
            kind, union = (1, (*size, 0, 0, 0, 0)) if len(size) == 2 else (3, size)
            buf[:] = _u32(index, code, kind, *union, 0, 0)
        else:
            raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")
        return 0


def test_querycap_is_read_from_the_node_s_own_caps():
    """device_caps (the node's) where the driver sets V4L2_CAP_DEVICE_CAPS, else capabilities
    (the whole device's: on a UVC camera it says "video capture" for its metadata node too)."""
    from stream_gpen.io._capture import parse_capability

    camera = parse_capability(_capability("HD Pro Webcam C920", 0x84A00001, 0x04200001))
    assert (camera.driver, camera.card, camera.bus_info, camera.kind) == (
        "uvcvideo", "HD Pro Webcam C920", "usb-0000:00:14.0-1", "camera")
    assert parse_capability(_capability("HD Pro Webcam C920", 0x84A00001, 0x04A00000)).kind == "metadata"
    assert parse_capability(_capability("old driver", 0x05000001, 0x00800000)).kind == "camera"  # (no DEVICE_CAPS)
    assert parse_capability(_capability("ISP", 0x80001000 | 0x80000000, 0x00001000)).kind == "multiplanar"
    assert parse_capability(_capability("m2m codec", 0x80008000, 0x00008000)).kind == "other"


def test_probe_lists_a_camera_s_formats_and_sizes(tmp_path):
    from stream_gpen.io._capture import V4l2Format, probe_v4l2

    node = tmp_path / "video0"
    node.touch()
    fake = _FakeV4l2(_capability("HD Pro Webcam C920", 0x84A00001, 0x04200001),
                     {"MJPG": (True, [(1920, 1080), (1280, 720)]), "YUYV": (False, [(16, 1920, 2, 16, 1080, 2)]),
                      "S5C1": (False, [(640, 480)])})
    probed = probe_v4l2(str(node), ioctl=fake)
    assert probed.kind == "camera" and probed.card == "HD Pro Webcam C920"
    assert probed.formats == (V4l2Format("mjpeg", True, ("1920x1080", "1280x720")),
                              V4l2Format("yuyv422", False, ("16x16-1920x1080",)),
                              V4l2Format("'S5C1'", False, ("640x480",)))
    # a metadata node is asked nothing more
    meta = _FakeV4l2(_capability("HD Pro Webcam C920", 0x84A00001, 0x04A00000))
    assert probe_v4l2(str(node), ioctl=meta).formats == () and meta.calls == [0x80685600]


@pytest.mark.parametrize("fail", [errno.ENOTTY, errno.EACCES], ids=["ENOTTY", "EACCES"])
def test_a_node_that_cannot_be_asked_is_none(tmp_path, fail):
    from stream_gpen.io._capture import probe_v4l2

    node = tmp_path / "video0"
    node.touch()
    assert probe_v4l2(str(node), ioctl=_FakeV4l2(b"", fail=fail)) is None
    assert probe_v4l2(str(tmp_path / "gone")) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fcntl.ioctl on Linux's device files")
def test_a_file_that_is_no_v4l2_device_falls_back_with_the_real_ioctl(tmp_path):
    """The real fcntl.ioctl: /dev/null and a regular file answer ENOTTY, a folder too."""
    from stream_gpen.io._capture import probe_v4l2

    (tmp_path / "video0").write_bytes(b"x" * 200)
    for path in ("/dev/null", str(tmp_path / "video0"), str(tmp_path)):
        assert probe_v4l2(path) is None, path


def test_camera_list_names_nodes_by_their_driver_and_sysfs_as_a_fallback(tmp_path, monkeypatch, capsys):
    """camera --list marked a metadata node by its sysfs index only, and showed no modes; the
    driver's own word now decides, sysfs where the node cannot be asked."""
    from stream_gpen import commands
    from stream_gpen.io._capture import parse_capability, probe_v4l2

    monkeypatch.setattr(sys, "platform", "linux")
    (tmp_path / "dev").mkdir()
    for n in (0, 1, 2, 3):
        (tmp_path / "dev" / f"video{n}").touch()
        d = tmp_path / "sys/class/video4linux" / f"video{n}"
        d.mkdir(parents=True)
        (d / "name").write_text("Webcam C920\n" if n < 2 else "Capture card\n")
        (d / "index").write_text(f"{n % 2}\n")
    answers = {"video0": _FakeV4l2(_capability("HD Pro Webcam C920", 0x84A00001, 0x04200001),
                                   {"MJPG": (True, [(1280, 720)])}),
               # (a driver that puts its camera on node index 1: the sysfs guess would call it metadata)
               "video1": _FakeV4l2(_capability("Capture card", 0x84A00001, 0x04200001), {"YUYV": (False, [(720, 576)])}),
               "video2": _FakeV4l2(_capability("HD Pro Webcam C920", 0x84A00001, 0x04A00000)),
               "video3": _FakeV4l2(b"", fail=errno.EACCES)}

    def probe(path):
        return probe_v4l2(path, ioctl=answers[path.rsplit("/", 1)[1]])

    listed = commands.video_devices(str(tmp_path), probe=probe)
    assert [(dev, name) for dev, name, _ in listed] == [
        ("/dev/video0", "HD Pro Webcam C920"), ("/dev/video1", "Capture card"),
        ("/dev/video2", "HD Pro Webcam C920 (metadata node: not a camera)"),
        ("/dev/video3", "Capture card (node 1 of this device: most likely its metadata, not a camera)")]
    assert commands.list_video_devices(str(tmp_path)) == [  # (the real ioctl: plain files, sysfs only)
        ("/dev/video0", "Webcam C920"),
        ("/dev/video1", "Webcam C920 (node 1 of this device: most likely its metadata, not a camera)"),
        ("/dev/video2", "Capture card"),
        ("/dev/video3", "Capture card (node 1 of this device: most likely its metadata, not a camera)")]
    assert parse_capability(answers["video2"].capability).kind == "metadata"

    monkeypatch.setattr(commands, "video_devices", lambda root="/": listed)
    assert main(["camera", "--list"]) == 0
    out = capsys.readouterr()
    assert "/dev/video0    HD Pro Webcam C920\n" in out.out and "mjpeg (compressed): 1280x720" in out.out
    assert "yuyv422: 720x576" in out.out and out.err == ""


def test_capture_options_given_with_list_are_said_to_be_ignored(monkeypatch, capsys):
    """`camera --list --video-size 1280x720` ignored the size without a word."""
    from stream_gpen import commands

    monkeypatch.setattr(commands, "video_devices", lambda root="/": [("/dev/video0", "Webcam", ())])
    monkeypatch.setattr(commands, "list_video_devices", lambda root="/": [("/dev/video0", "Webcam")])
    assert main(["camera", "--list", "--video-size", "1280x720", "--input-format", "mjpeg"]) == 0
    out = capsys.readouterr()
    assert "/dev/video0" in out.out
    assert "--video-size and --input-format are for a camera run, ignored here" in out.err, out.err
    assert main(["camera", "--list", "/dev/video2"]) == 0
    assert "the source /dev/video2 is for a camera run, ignored here" in capsys.readouterr().err
    assert main(["camera", "--list"]) == 0
    assert "ignored" not in capsys.readouterr().err
