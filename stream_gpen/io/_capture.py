"""The mode a capture device is asked for (:class:`CaptureMode`): apart from the sources so that
``stream_gpen.api`` can name it in its public annotations without importing PyAV; and what a
Linux camera node says of itself (:func:`probe_v4l2`: its name, whether it is a camera, the modes
it offers), which ``camera --list`` shows without PyAV either."""
from __future__ import annotations

import dataclasses
import os
import re
import struct
from fractions import Fraction
from typing import Literal

from stream_gpen.errors import InvalidInputError


@dataclasses.dataclass(frozen=True)
class CaptureMode:
    """The mode a capture device is asked for (``None``: the device's or FFmpeg's choice), as
    FFmpeg's camera inputs take it (v4l2, dshow, avfoundation). A camera offers each size at some
    rates only, in some formats only; one it does not offer fails the open with FFmpeg's reason
    (``camera --list`` shows a Linux camera's formats and sizes).

    ``size``: ``(width, height)``: larger shows more detail on faces far from the camera, costs
    USB bandwidth (and, uncompressed, frame rate).
    ``rate``: frames a second (a ``Fraction``: 30000/1001 is 29.97): more is smoother, and more
    work for the restorer, which drops what it cannot keep up with.
    ``input_format``: what the camera sends, by FFmpeg's name: a codec (``mjpeg``, ``h264``) or a
    raw pixel format (``yuyv422``, ``nv12``). A USB webcam left in raw YUYV at 1080p sends 5-10
    fps (USB 2 carries no more); ``mjpeg`` gives it its full rate for a little decoding work.
    macOS (AVFoundation) takes raw pixel formats only."""

    size: tuple[int, int] | None = None
    rate: Fraction | None = None
    input_format: str | None = None

    def __post_init__(self) -> None:
        if self.size is not None and not (
                isinstance(self.size, tuple) and len(self.size) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 16384 for v in self.size)):
            raise InvalidInputError(f"a capture size is (width, height), each 1 to 16384 pixels, got {self.size!r}",
                                    hint="e.g. 1280x720")
        if self.rate is not None:
            if not isinstance(self.rate, Fraction) or not 0 < self.rate <= 1000:
                raise InvalidInputError(f"a capture frame rate is a Fraction above 0 and at most 1000, got "
                                        f"{self.rate!r}", hint="e.g. 30, 29.97 or 30000/1001")
        if self.input_format is not None and self._kind() is None:
            raise InvalidInputError(
                f"unknown capture input format {self.input_format!r}: not a pixel format or decoder FFmpeg knows",
                hint="e.g. mjpeg (compressed, full rate over USB 2), h264, yuyv422 (raw) or nv12; "
                     "stream-gpen camera --list lists a Linux camera's")

    @classmethod
    def parse(cls, *, size: str | None = None, rate: str | None = None,
              input_format: str | None = None) -> CaptureMode:
        """A mode from the words a user types: ``size`` ``"1280x720"``, ``rate`` ``"30"``,
        ``"29.97"`` or ``"30000/1001"``."""
        wh = None
        if size is not None:
            m = re.fullmatch(r"\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*", size)
            if m is None:
                raise InvalidInputError(f"a capture size is WIDTHxHEIGHT, got {size!r}", hint="e.g. 1280x720")
            wh = (int(m[1]), int(m[2]))
        fr = None
        if rate is not None:
            try:
                fr = Fraction(rate.strip()).limit_denominator(1001)
            except (ValueError, ZeroDivisionError):
                raise InvalidInputError(f"a capture frame rate is a number of frames a second, got {rate!r}",
                                        hint="e.g. 30, 29.97 or 30000/1001") from None
            if fr == Fraction(2997, 100):
                fr = Fraction(30000, 1001)  # (29.97 means NTSC's rate, as FFmpeg reads "29.97")
        return cls(wh, fr, input_format.strip().lower() if input_format is not None else None)

    def _kind(self) -> Literal["codec", "pixels"] | None:
        """Whether :attr:`input_format` names a decoder (compressed) or a pixel format (raw)."""
        try:
            import av  # (here only: api.py imports this module, which leaves PyAV to the sources)

            av.VideoFormat(self.input_format)
            return "pixels"
        except ValueError:
            pass
        try:
            av.Codec(self.input_format, "r")
            return "codec"
        except ValueError:  # (UnknownCodecError)
            return None

    @staticmethod
    def refusal(spec: str, kind: str) -> InvalidInputError:
        """The error for a mode given with ``spec``, a source of ``kind`` that is no capture device."""
        what = {"url": "a network stream", "lavfi": "a lavfi graph"}.get(kind, "a file")
        return InvalidInputError(
            f"a capture mode (video size, frame rate, input format) is for capture devices; {spec!r} is {what}, "
            "read as it comes", hint="leave out --video-size, --framerate and --input-format, or give a camera "
            "(camera --list names them)")

    def options(self, fmt: str, spec: str) -> dict[str, str]:
        """The demuxer options of FFmpeg's ``fmt`` input (v4l2, dshow, avfoundation) for this mode."""
        opts = {}
        if self.size is not None:
            opts["video_size"] = f"{self.size[0]}x{self.size[1]}"
        if self.rate is not None:
            opts["framerate"] = str(self.rate)
        if self.input_format is not None:
            kind = self._kind()
            if fmt == "v4l2":
                opts["input_format"] = self.input_format
            elif fmt == "dshow":  # (a compressed format is DirectShow's vcodec, a raw one its pixel_format)
                opts["vcodec" if kind == "codec" else "pixel_format"] = self.input_format
            elif kind == "codec":
                raise InvalidInputError(
                    f"capture device {spec!r}: AVFoundation (macOS) delivers raw pictures only, not "
                    f"{self.input_format!r}", hint="give a raw pixel format (uyvy422, yuyv422, nv12) or leave out "
                    "the input format")
            else:
                opts["pixel_format"] = self.input_format
        return opts


# --- what a Linux camera node says of itself (camera --list) -----------------------------------
# The ioctl numbers and struct layouts of linux/videodev2.h (checked against the header: sizeof
# v4l2_capability 104, v4l2_fmtdesc 64, v4l2_frmsizeenum 44); "=": native byte order, no padding,
# as the kernel lays these all-u32 structs out.
VIDIOC_QUERYCAP = 0x80685600  # _IOR('V', 0, struct v4l2_capability)
VIDIOC_ENUM_FMT = 0xC0405602  # _IOWR('V', 2, struct v4l2_fmtdesc)
VIDIOC_ENUM_FRAMESIZES = 0xC02C564A  # _IOWR('V', 74, struct v4l2_frmsizeenum)
_CAPABILITY = struct.Struct("=16s32s32sIII12x")  # driver, card, bus_info, version, capabilities, device_caps
_FMTDESC = struct.Struct("=III32sII12x")  # index, type, flags, description, pixelformat, mbus_code
_FRMSIZE = struct.Struct("=III6I8x")  # index, pixel_format, type, the discrete/stepwise union
V4L2_CAP_VIDEO_CAPTURE = 0x00000001
V4L2_CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
V4L2_CAP_META_CAPTURE = 0x00800000
V4L2_CAP_DEVICE_CAPS = 0x80000000
_BUF_TYPE_VIDEO_CAPTURE = 1
_FMT_FLAG_COMPRESSED = 0x0001
_FRMSIZE_DISCRETE = 1
#: a driver that never answers EINVAL is not asked forever
_MAX_ENUM = 64

#: FFmpeg's names (what --input-format takes) of the V4L2 formats webcams send; another is shown
#: by its fourcc, which ``ffmpeg -f v4l2 -list_formats all -i /dev/videoN`` names where FFmpeg
#: reads it
FOURCC_NAMES = {"MJPG": "mjpeg", "JPEG": "mjpeg", "H264": "h264", "HEVC": "hevc", "YUYV": "yuyv422",
                "UYVY": "uyvy422", "NV12": "nv12", "YU12": "yuv420p", "GREY": "gray", "RGB3": "rgb24",
                "BGR3": "bgr24"}


@dataclasses.dataclass(frozen=True)
class V4l2Format:
    """One format a capture node offers: ``name`` as --input-format takes it (FFmpeg's), or
    ``'FOURCC'`` where FFmpeg's name is not known here; ``sizes`` as --video-size takes them
    (``"640x480"``), or a range (``"16x16-1920x1080"``) where the driver scales freely."""

    name: str
    compressed: bool
    sizes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class V4l2Node:
    """What a /dev/videoN node's driver says of it (VIDIOC_QUERYCAP): ``caps`` are the node's
    own (``device_caps``) where the driver gives them, else the whole device's, which on a camera
    with a metadata node say "video capture" for that node too."""

    driver: str
    card: str
    bus_info: str
    caps: int
    formats: tuple[V4l2Format, ...] = ()

    @property
    def kind(self) -> Literal["camera", "multiplanar", "metadata", "other"]:
        """``camera``: a node FFmpeg's v4l2 input reads (single-planar video capture);
        ``multiplanar``: video capture FFmpeg refuses ("Not a video capture device."), as it takes
        single-planar buffers only; ``metadata``: a UVC camera's second node, its frames' metadata."""
        if self.caps & V4L2_CAP_VIDEO_CAPTURE:
            return "camera"
        if self.caps & V4L2_CAP_VIDEO_CAPTURE_MPLANE:
            return "multiplanar"
        return "metadata" if self.caps & V4L2_CAP_META_CAPTURE else "other"


def _c_string(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


def fourcc(code: int) -> str:
    """The four letters of a V4L2 pixel format code (bit 31: the big-endian variant's flag)."""
    return (code & 0x7FFFFFFF).to_bytes(4, "little").decode("ascii", "replace").rstrip()


def parse_capability(buf: bytes) -> V4l2Node:
    """A ``struct v4l2_capability`` as VIDIOC_QUERYCAP filled it in."""
    driver, card, bus, _version, caps, device_caps = _CAPABILITY.unpack(bytes(buf))
    own = device_caps if caps & V4L2_CAP_DEVICE_CAPS else caps
    return V4l2Node(_c_string(driver), _c_string(card), _c_string(bus), own)


def parse_fmtdesc(buf: bytes) -> tuple[int, str, bool]:
    """``(pixel format code, --input-format name, compressed)`` of a filled ``struct v4l2_fmtdesc``."""
    _index, _type, flags, _description, code, _mbus = _FMTDESC.unpack(bytes(buf))
    name = fourcc(code)
    return code, FOURCC_NAMES.get(name, f"'{name}'"), bool(flags & _FMT_FLAG_COMPRESSED)


def parse_frmsize(buf: bytes) -> str:
    """A filled ``struct v4l2_frmsizeenum`` as --video-size takes it: ``WxH``, or
    ``MINxMIN-MAXxMAX`` for a continuous or stepwise range (its first entry, the only one)."""
    _index, _code, kind, a, b, _c, d, e, _f = _FRMSIZE.unpack(bytes(buf))
    if kind == _FRMSIZE_DISCRETE:
        return f"{a}x{b}"  # (discrete: width, height)
    return f"{a}x{d}-{b}x{e}"  # (stepwise: min_width, max_width, step_width, min_height, max_height, ...)


def _enumerate(ioctl, fd: int, request: int, pack):
    """The buffers ``request`` fills for index 0, 1, ... until the driver says EINVAL (the end)."""
    for index in range(_MAX_ENUM):
        buf = bytearray(pack(index))
        try:
            ioctl(fd, request, buf)
        except OSError:  # (EINVAL: past the last; anything else: no more to learn)
            return
        yield bytes(buf)


def probe_v4l2(path: str, *, ioctl=None) -> V4l2Node | None:
    """What the node at ``path`` says of itself, and for a camera the formats and sizes it offers;
    ``None`` where it cannot be asked: not allowed (the 'video' group), no V4L2 device (ENOTTY), a
    node gone meanwhile. ``ioctl``: ``fcntl.ioctl``'s stand-in for tests (it fills the buffer
    it is given, or raises OSError). The node is opened non-blocking and only queried: a camera
    another program streams from answers as well."""
    if ioctl is None:
        import fcntl

        ioctl = fcntl.ioctl
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        buf = bytearray(_CAPABILITY.size)
        try:
            ioctl(fd, VIDIOC_QUERYCAP, buf)
        except OSError:
            return None
        node = parse_capability(buf)
        if node.kind != "camera":
            return node
        formats = []
        for desc in _enumerate(ioctl, fd, VIDIOC_ENUM_FMT,
                               lambda i: _FMTDESC.pack(i, _BUF_TYPE_VIDEO_CAPTURE, 0, b"", 0, 0)):
            code, name, compressed = parse_fmtdesc(desc)
            sizes = []
            for size in _enumerate(ioctl, fd, VIDIOC_ENUM_FRAMESIZES,
                                   lambda i, code=code: _FRMSIZE.pack(i, code, 0, *(0,) * 6)):
                sizes.append(parse_frmsize(size))
                if "-" in sizes[-1]:
                    break  # (a range is the only entry)
            formats.append(V4l2Format(name, compressed, tuple(sizes)))
        return dataclasses.replace(node, formats=tuple(formats))
    finally:
        os.close(fd)
