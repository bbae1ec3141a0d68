"""``open_source`` / ``open_sink``: pick the right source or sink for a path, URL or name."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from stream_gpen.io._source import IMAGE_EXTS, URL_SCHEMES, VideoSource
from stream_gpen.io._sink import (
    _STREAM_FORMATS,
    AudioMode,
    Encoder,
    FileSink,
    NullSink,
    OddSize,
    PreviewSink,
    VideoCodec,
    VirtualCameraSink,
)


def open_source(
    spec,
    *,
    device: torch.device | str = "cpu",
    live: bool | None = None,
    decode: Literal["auto", "cpu", "nvdec"] = "auto",
    ring_size: int = 8,
    count_frames: bool = False,
    reconnect: int = 5,
    reconnect_delay_s: float = 0.5,
    timeout_s: float = 10.0,
    autorotate: bool = False,
    deinterlace: Literal["auto", "off"] = "auto",
    untrusted: bool = False,
    max_pixels: int | None = None,
    high_bit_depth: bool = True,
    start: float = 0.0,
    duration: float | None = None,
    exclude=None,
    skip=None,
    capture=None,
):
    """Open a video file, URL, capture device, ``lavfi:<graph>``, image file or image folder.

    Returns a :class:`VideoSource` (videos, streams, devices) or :class:`ImageSource` (images,
    folders); both are context managers yielding :class:`Frame` objects with ``.metadata``.
    See :class:`VideoSource` for what each option trades off. ``untrusted`` (uploads): no folder, no
    dispatch by name alone: a photo's name must hold one of :data:`UNTRUSTED_PICTURES` (by its
    bytes) to be read as a photo; anything else is read as a video with media demuxers only. ``high_bit_depth`` (video
    only): frames of a 10/12-bit source also carry ``frame.hi`` (uint16 rgb48) and file sinks
    encode 10/12-bit from it; ``False`` = 8-bit only. ``start`` / ``duration`` (video only):
    a time window of the video, in seconds (see :class:`VideoSource`). ``exclude`` (folders): a
    subfolder to leave out (the output folder, when it lies inside the input); ``max_pixels``: video
    frames, or photos (from their header, before decoding), with more pixels are refused
    (``PayloadTooLargeError``; a folder's photo is skipped); ``skip``
    (folders): ``skip(path) -> True`` leaves that image out (resuming: its output exists).
    ``capture``: a capture device's :class:`~stream_gpen.io.CaptureMode` (size, frame
    rate, input format); any other source is then refused.
    """
    s = str(spec)
    index = isinstance(spec, int) and not isinstance(spec, bool)  # (a capture device's: no file of that name)
    # (a capture mode: VideoSource refuses every source that is no device, a photo or folder too)
    if capture is None and not untrusted and not index and "://" not in s and not s.startswith("lavfi:"):
        p = Path(s)
        if p.is_dir() or p.suffix.lower() in IMAGE_EXTS:
            from stream_gpen.io._image import ImageSource

            return ImageSource(p, device=device, exclude=Path(exclude) if exclude is not None else None, skip=skip,
                               max_pixels=max_pixels)
    if capture is None and untrusted and not index and "://" not in s and Path(s).is_file() and Path(s).suffix.lower() in IMAGE_EXTS \
            and _plain_picture(Path(s)):
        from stream_gpen.io._image import ImageSource

        return ImageSource(Path(s), device=device, max_pixels=max_pixels)
    return VideoSource(spec, device=device, live=live, decode=decode, ring_size=ring_size, count_frames=count_frames,
                       reconnect=reconnect, reconnect_delay_s=reconnect_delay_s, timeout_s=timeout_s,
                       autorotate=autorotate, deinterlace=deinterlace, untrusted=untrusted,
                       max_pixels=max_pixels, high_bit_depth=high_bit_depth, start=start, duration=duration,
                       capture=capture)


#: the picture formats an untrusted photo may be (Pillow's names): decoders that open no other file and
#: run no other program (Pillow's EPS runs Ghostscript); the server's image endpoint reads these too
#: (its answer format for each: ``server._imaging._READABLE``)
UNTRUSTED_PICTURES = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO", "HEIF", "AVIF", "GIF")


def _plain_picture(path: Path) -> bool:
    """Whether an untrusted file named as a photo is one of :data:`UNTRUSTED_PICTURES` by its bytes
    (read with Pillow then, as any photo: ``enhance_file(photo, untrusted=True)`` refused every
    photo, "not a media file this input accepts"); else it is read as a video, untrusted."""
    from PIL import Image

    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io._image import _heif_plugin

    try:
        _heif_plugin(path)
    except InvalidInputError:
        pass  # (pillow-heif missing: HEIC is then no picture here)
    Image.init()
    try:  # (an MPO opens through the JPEG reader; HEIF only with pillow-heif: the registered ones)
        with Image.open(path, formats=[f for f in UNTRUSTED_PICTURES if f in Image.OPEN]):
            return True
    except Image.DecompressionBombError:
        return True  # (a picture all the same: refused by the photo reader, with its hint)
    except (OSError, SyntaxError, ValueError, EOFError):  # (UnidentifiedImageError is an OSError)
        return False


def open_sink(
    target,
    *,
    source=None,
    codec: VideoCodec = "auto",
    crf: int | None = None,
    preset: str | None = None,
    audio: AudioMode = "copy",
    overwrite: bool = False,
    odd_size: OddSize = "pad",
    image_format: str | None = None,
    quality: int | None = None,
    queue_size: int = 4,
    encoder: Encoder = "software",
    live: bool | None = None,
    image_names: dict | None = None,
    no_audio_why: str = "--audio none",
    chroma: str = "auto",
):
    """Open a sink: ``"null"``, ``"preview"``, ``"virtualcam"``, a stream URL (rtmp/srt/udp/...),
    an image file or folder (when ``source`` is an image source, or the name ends in an image
    extension), or a video file (container from the extension). ``encoder`` (software / nvenc /
    auto) and ``live`` apply to video files and stream URLs (see :class:`FileSink`).
    ``image_names``: a folder's photos whose output is not the plain mirror (``rel_path`` ->
    path; :func:`~stream_gpen.io._image.folder_outputs`). ``no_audio_why``: under ``audio="none"``,
    why, in the caller's terms, for the notes on the streams left out (:class:`FileSink`)."""
    from stream_gpen.io._sink import ENCODER_MODES

    if encoder not in ENCODER_MODES:
        from stream_gpen.errors import InvalidInputError

        raise InvalidInputError(f"encoder={encoder!r} is not one of {ENCODER_MODES}")
    t = str(target)
    if t == "null":
        return NullSink()
    if t == "preview":
        return PreviewSink()
    if t == "virtualcam":
        m = source.metadata
        fps = float(m.frame_rate) if m.frame_rate else 30.0
        return VirtualCameraSink(width=m.width, height=m.height, fps=fps)
    if "://" in t:
        scheme = t.split("://", 1)[0].lower()
        if scheme in _STREAM_FORMATS or scheme in URL_SCHEMES:
            return FileSink(t, source=source, codec=codec, crf=crf, preset=preset, audio=audio,
                            queue_size=queue_size, odd_size=odd_size, is_url=True, encoder=encoder, live=live,
                            no_audio_why=no_audio_why, chroma=chroma)
        if scheme.isalnum():  # (`rmtp://` mistyped: it was taken for a folder "rmtp:" and a file name)
            from stream_gpen.errors import InvalidInputError

            raise InvalidInputError(f"stream URL scheme {scheme!r} is not one of {tuple(_STREAM_FORMATS)}",
                                    hint="check the URL's scheme (rtmp://, srt://, udp://...)")
    from stream_gpen.io._image import ImageSink, ImageSource

    from stream_gpen.errors import InvalidInputError

    p = Path(t)
    is_image_name = p.suffix.lower() in IMAGE_EXTS
    if isinstance(source, ImageSource):
        kind = source.metadata.kind
        if kind == "folder" and is_image_name:
            raise InvalidInputError(f"a folder of images needs a folder as output, got the file name {t}")
        if kind == "image" and not is_image_name and not p.is_dir():
            # Else the photo would land in a new folder named like a video file.
            raise InvalidInputError(
                f"an image input needs an image output ({', '.join(IMAGE_EXTS)}) or an existing folder, got {t}")
    elif source is not None and is_image_name:
        raise InvalidInputError(
            f"the input is a video but the output {t} is an image name; use a video extension (.mp4, .mkv, .mov, .webm)")
    if isinstance(source, ImageSource) or is_image_name:
        return ImageSink(p, format=image_format, quality=quality, overwrite=overwrite, names=image_names)
    return FileSink(p, source=source, codec=codec, crf=crf, preset=preset, audio=audio, overwrite=overwrite,
                    odd_size=odd_size, queue_size=queue_size, encoder=encoder, live=live, no_audio_why=no_audio_why,
                    chroma=chroma)
