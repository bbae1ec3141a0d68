"""The mode a capture device is asked for (:class:`CaptureMode`): apart from the sources so that
``stream_gpen.api`` can name it in its public annotations without importing PyAV."""
from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from typing import Literal

from stream_gpen.errors import InvalidInputError


@dataclasses.dataclass(frozen=True)
class CaptureMode:
    """The mode a capture device is asked for (``None``: the device's or FFmpeg's choice), as
    FFmpeg's camera inputs take it (v4l2, dshow, avfoundation). A camera offers each size at some
    rates only, in some formats only; one it does not offer fails the open with FFmpeg's reason
    (``camera --list``'s device, then ``ffmpeg -f v4l2 -list_formats all -i /dev/video0`` shows
    the modes).

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
                     "ffmpeg -f v4l2 -list_formats all -i /dev/video0 lists a Linux camera's")

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
