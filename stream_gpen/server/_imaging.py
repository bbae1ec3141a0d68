"""Image bytes <-> RGB(A) arrays for the API, with the pixel limit checked before decoding."""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from stream_gpen.errors import InvalidInputError, PayloadTooLargeError

log = logging.getLogger(__name__)
ImageFormat = Literal["jpeg", "png", "webp", "avif"]
# Pillow format name -> ours. BMP/TIFF inputs are answered as PNG (lossless, and browsers show it);
# HEIC (iPhone photos) as JPEG, since browsers do not show HEIC; a still GIF as PNG, as ``enhance``
# writes one (there is no GIF writer).
_READABLE = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "BMP": "png", "TIFF": "png", "MPO": "jpeg",
             "HEIF": "jpeg", "AVIF": "avif", "GIF": "png"}
# Formats whose extra frames are pictures of their own (animation frames, scanned pages). An MPO's
# are a camera's preview or gain map, and a HEIC's main picture is the one shown: both restore as one.
_MULTI_FRAME = ("PNG", "WEBP", "TIFF", "GIF", "AVIF")
MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}


class UnsupportedMediaTypeError(InvalidInputError):
    """A request body of a Content-Type the route does not take (HTTP 415)."""


class UnsupportedImageError(UnsupportedMediaTypeError):
    """Decodable, but not a format the API accepts (HTTP 415)."""


@dataclass(frozen=True)
class DecodedImage:
    """``pixels``: uint8 ``[H,W,3]`` RGB, ``[H,W,4]`` RGBA or ``[H,W]`` grey; ``format``: the answer's default."""

    pixels: np.ndarray
    format: ImageFormat
    #: what the answer carries over (as the CLI does): the colour profile where it describes the
    #: pixels (RGB, or grey for grey ones), and the EXIF block with its orientation reset (the
    #: pixels are upright); ``None`` where the upload had none or it did not fit
    icc_profile: bytes | None = None
    exif: bytes | None = None
    #: the print resolution (JPEG/PNG/TIFF with one; across and down as the upright pixels are),
    #: the XMP packet (its orientation reset, its resolutions as the dpi), and a
    #: JPEG's chroma subsampling (0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0; kept for a JPEG answer)
    dpi: tuple[float, float] | None = None
    xmp: bytes | None = None
    subsampling: int | None = None
    #: how a JPEG answer is written where no quality is asked for, as ``enhance`` writes a JPEG
    #: from this upload (``jpeg_source_options``: a JPEG's own tables from quality 90 up), and
    #: whether a WebP upload was lossless (its WebP answer is then lossless too)
    jpeg: dict | None = None
    lossless: bool = False
    #: a JPEG upload's IPTC and other Photoshop image resources (APP13), as ``enhance`` keeps them
    #: (:func:`stream_gpen.io._iptc.kept_resources`: thumbnails left out), or a TIFF upload's IPTC
    #: (tag 33723), for a JPEG answer
    photoshop: bytes | None = None

    def __post_init__(self) -> None:
        p = self.pixels
        if p.dtype != np.uint8 or not (p.ndim == 2 or (p.ndim == 3 and p.shape[2] in (3, 4))):
            raise ValueError(f"pixels must be uint8 HxW, HxWx3 or HxWx4, got {p.dtype} {p.shape}")


def decode_image(data: bytes, *, max_pixels: int) -> DecodedImage:
    """Decode JPEG/PNG/WebP/BMP/TIFF/HEIC/AVIF bytes; EXIF orientation applied.

    The header is read first and the pixel count checked against ``max_pixels`` before any pixel
    is decoded (Pillow's own bomb check is global state and only warns below 2x its limit).
    Pillow's complaints ("Corrupt EXIF data") are logged as one line each, as ``enhance`` says
    them (they printed as Pillow's own two-line source warning on the server's stderr).
    """
    from stream_gpen._warnings import warnings_of

    said: list = []
    try:
        with warnings_of("PIL", "pillow_heif", into=said):
            return _decode_image(data, max_pixels=max_pixels)
    finally:
        for m in dict.fromkeys(str(w.message).strip() for w in said):
            log.warning("uploaded image: %s", m)


def curl_hint(media: str | None = None) -> str:
    """How to send a file with curl (``media``: the Content-Type to name): ``curl --data`` leaves out
    the file's CR and LF bytes (a JPEG then fails as "truncated") and labels it a form."""
    typed = f" -H 'Content-Type: {media}'" if media else ""
    return (f"send it with curl --data-binary @FILE{typed}, or curl -F file=@FILE; curl --data leaves out the "
            "file's newline bytes and labels it a form")


def _cut_hint() -> str:
    """The hint for an image whose data does not decode: cut short, or sent with ``curl --data``."""
    return "was the file copied whole? " + curl_hint()


def _unidentified(data: bytes) -> str:
    """Why a body Pillow cannot identify is refused, naming what it is where that can be told (as
    ``enhance`` does for a file): a TIFF Pillow has no mode for ("a 32-bit floating-point RGB
    TIFF": the generic answer said "send ... TIFF"), or a video, which goes to /v1/videos."""
    from stream_gpen.io._image import _tiff_kind

    if data[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        kind = _tiff_kind(io.BytesIO(data))
        if kind is not None:
            return (f"the body is a {kind} TIFF, which is not read here: send an 8- or 16-bit RGB (or grey) "
                    "TIFF, or a PNG")
    video = _video_kind(data)
    if video is not None:
        return f"the body is a video ({video}), not an image: POST it to /v1/videos"
    if data.startswith(b"\x89PNG\x1a"):  # (the signature's \r\n left out: `curl --data`)
        return ("the body is a PNG whose newline bytes were left out (curl --data does that): send it with "
                "curl --data-binary @FILE or -F file=@FILE")
    return "cannot decode the body as an image; send JPEG, PNG, WebP, AVIF, HEIC, TIFF, BMP or GIF"


def _video_kind(data: bytes) -> str | None:
    """The container's name of a body FFmpeg reads as a video, with the media demuxers an
    untrusted upload is read with (never a playlist or script), or None."""
    import av

    from stream_gpen.io._source import UNTRUSTED_DEMUXERS

    try:
        with av.open(io.BytesIO(data), options={"format_whitelist": ",".join(UNTRUSTED_DEMUXERS)}) as c:
            name = c.format.name or ""
            if not c.streams.video or name in ("gif", "mjpeg") or name.endswith("_pipe"):
                return None
            return (c.format.long_name or name).split("/")[0].strip()
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return None


def _decode_image(data: bytes, *, max_pixels: int) -> DecodedImage:
    from PIL import Image, UnidentifiedImageError

    from stream_gpen.io._image import (
        _orientation,
        _turned_resolution,
        _upright,
        frame_count,
        icc_describes,
        tiff_pages,
    )

    if not data:
        raise InvalidInputError("empty request body: send an image (JPEG, PNG, WebP, AVIF, HEIC, TIFF, BMP or GIF)")
    from stream_gpen.io._image import _heif_plugin

    try:
        _heif_plugin(Path("upload.heic"))  # HEIC uploads (iPhones) open like the others
    except InvalidInputError:
        pass  # pillow-heif missing: HEIC is then refused as an unknown image
    from stream_gpen.io._image import _DamagedPNG, _eoi_restored, _png_repaired

    # a PNG with a damaged optional chunk: read without it, as enhance does; one whose picture
    # chunk fails its checksum is refused as enhance refuses it (a JPEG without its end marker is
    # tried below, once its size passed)
    try:
        repaired = _png_repaired(data)
    except _DamagedPNG as e:
        raise InvalidInputError(f"cannot decode the PNG image: it is damaged ({e})", hint=_cut_hint()) from None
    if repaired is not None:
        log.warning("uploaded image: %s", repaired[1])
        data = repaired[0].getvalue()
    from stream_gpen.io._unread import unread_photo

    unread = unread_photo(data)
    if unread is not None:
        # a raw DNG (Pillow read its small preview as the picture, answered as a 256 px PNG) or a
        # JPEG XL ("cannot decode the body"): refused as enhance refuses them, saying how to convert
        raise UnsupportedImageError(f"the body is {unread[1]}", hint=unread[2])
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InvalidInputError(_unidentified(data)) from None
    except Image.DecompressionBombError:  # header claims > 2x Pillow's global limit
        from stream_gpen.server._config import pillow_pixel_limit

        raise PayloadTooLargeError(f"image refused before decoding: over the {pillow_pixel_limit()} "
                                   f"pixels Pillow opens, and this server's limit of {max_pixels} (--max-pixels)") from None
    except (OSError, SyntaxError, ValueError) as e:  # a recognised but truncated/corrupt header
        raise InvalidInputError(f"cannot decode the image: {e}", hint=_cut_hint()) from None
    with im:
        fmt = _READABLE.get(str(im.format))
        if fmt is None:
            raise UnsupportedImageError(
                f"unsupported image type {im.format!r}; allowed: {', '.join(sorted(set(_READABLE) - {'MPO'}))}")
        try:
            frames = frame_count(im) if im.format in _MULTI_FRAME else 1
        except ValueError as e:  # (a damaged later page: the same as damaged pixels)
            raise InvalidInputError(f"cannot decode the {im.format} image: {e}", hint=_cut_hint()) from None
        if frames > 1 and im.format == "TIFF":
            # a TIFF's reduced-resolution previews (scanners, cameras, editors) are not pages
            pages, _ = tiff_pages(im)
            frames = len(pages)
            if frames == 1 and pages[0]:
                im.seek(pages[0])  # (a preview stored first: the picture is the full-resolution IFD)
        if frames > 1:
            # One picture in, one out: frames 2..N were dropped without a word.
            other = "POST it to /v1/videos as a video job, or use" if im.format == "GIF" else "use"
            raise UnsupportedImageError(
                f"animated or multi-page {im.format} ({frames} frames): this endpoint restores one picture; "
                f"{other} `stream-gpen enhance`, which restores every frame into one file")
        w, h = im.size
        if w * h > max_pixels:
            raise PayloadTooLargeError(f"image is {w}x{h} = {w * h} pixels, over the limit of {max_pixels} (--max-pixels)")
        if im.format == "JPEG" and not data.endswith(b"\xff\xd9"):
            # a JPEG whole but for its end marker: read with it put back, as enhance does (tried
            # only now: the trial decodes it twice, which a 169 MP upload under the limit of
            # Pillow's bomb check would have cost before --max-pixels refused it, review23)
            repaired = _eoi_restored(data)
            if repaired is not None:
                log.warning("uploaded image: %s", repaired[1])
                data = repaired[0].getvalue()
                im = Image.open(io.BytesIO(data))
        try:
            icc, exif = _carried(im)
            orientation = _orientation(im, Path("upload"))
            if exif is not None and orientation in (5, 6, 7, 8):  # (stored sideways: x and y trade places)
                exif = _turned_resolution(exif)
            kept = _kept(im, data, orientation)
            im = _upright(im, orientation, Path("upload"))
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                pixels = np.array(im.convert("RGBA"))
            elif im.mode in ("I", "F") or im.mode.startswith("I;16"):
                # 16-bit / 32-bit grey: Pillow's convert("L") clips at 255 (a white picture)
                from stream_gpen.io._image import _to_uint8

                pixels = _to_uint8(np.asarray(im), 16 if im.mode.startswith("I;16") else None)
            elif im.mode == "L":
                pixels = np.array(im)
            else:
                pixels = np.array(im.convert("RGB"))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            # Truncated or corrupt data: the header was fine, the pixels are not.
            raise InvalidInputError(f"cannot decode the {im.format} image: {e}", hint=_cut_hint()) from None
    grey = pixels.ndim == 2
    if icc is not None and not icc_describes(icc, grey=grey):
        icc = None  # a CMYK profile of a CMYK JPEG would mis-describe the RGB answer
    return DecodedImage(np.ascontiguousarray(pixels), fmt, icc, exif, **kept)  # type: ignore[arg-type]


def _carried(im) -> tuple[bytes | None, bytes | None]:
    """The upload's ICC profile and EXIF block (as the CLI carries them: ``carried_exif``),
    read before the picture is turned upright; ``None`` for what is missing or unreadable."""
    from stream_gpen.io._image import carried_exif

    return im.info.get("icc_profile") or None, carried_exif(im, "upload")[0]


def _kept(im, data: bytes, orientation: int) -> dict:
    """``DecodedImage``'s ``dpi``, ``xmp``, ``subsampling``, ``jpeg``, ``lossless`` and ``photoshop`` as
    ``enhance`` keeps them (``read_image_info``), read before the picture is turned upright."""
    from PIL import JpegImagePlugin

    from stream_gpen.io._image import (
        _as_bytes,
        _tiff_tag_bytes,
        _webp_is_lossless,
        jpeg_source_options,
        stored_size,
        upright_xmp,
    )
    from stream_gpen.io._iptc import jpeg_app13, kept_resources, tiff_iptc_resources

    out: dict = {}
    dpi = im.info.get("dpi")
    # (Pillow reports (1, 1) for a TIFF without resolution tags: no tag in, none out)
    turned = orientation in (5, 6, 7, 8)  # stored sideways, answered upright: x and y trade places
    if dpi and not (im.format == "TIFF" and 282 not in getattr(im, "tag_v2", {})):
        try:
            out["dpi"] = (round(float(dpi[0]), 4), round(float(dpi[1]), 4))[:: -1 if turned else 1]
        except (TypeError, ValueError, IndexError):
            pass
    if im.info.get("xmp"):
        size = stored_size(im)[:: -1 if turned else 1]  # (the answer's: upright)
        out["xmp"] = _as_bytes(upright_xmp(im.info["xmp"], turned=turned, size=size))
    if im.format in ("JPEG", "MPO") and JpegImagePlugin.get_sampling(im) in (0, 1, 2):
        out["subsampling"] = JpegImagePlugin.get_sampling(im)
    tables = getattr(im, "quantization", None) if im.format in ("JPEG", "MPO") else None
    if tables:
        # (server23: every JPEG answer was written at quality 92: a q95 upload's tables coarsened,
        # pixels up to 26 levels off enhance's answer for the same photo)
        out["jpeg"] = jpeg_source_options({"qtables": [list(tables[k]) for k in sorted(tables)],
                                           "orientation": orientation})
    if im.format == "WEBP":
        out["lossless"] = _webp_is_lossless(data)
    if im.format in ("JPEG", "MPO"):
        irb, why = kept_resources(jpeg_app13(data), orientation)
        if why == "damaged":
            log.warning("uploaded image: its IPTC / Photoshop image resources (APP13) do not parse: not kept")
        if irb:
            out["photoshop"] = irb
    elif im.format == "TIFF":
        # its IPTC record (tag 33723, also in the EXIF block): into a JPEG answer's APP13, where
        # photo apps read it (see encode_image)
        irb = tiff_iptc_resources(_tiff_tag_bytes(im, 33723))
        if irb:
            out["photoshop"] = irb
    return out


def encode_image(pixels: np.ndarray, fmt: ImageFormat, *, quality: int | None = None, icc_profile: bytes | None = None,
                 exif: bytes | None = None, dpi: tuple[float, float] | None = None, xmp: bytes | None = None,
                 subsampling: int | None = None, jpeg: dict | None = None, lossless: bool = False,
                 photoshop: bytes | None = None) -> bytes:
    """RGB/RGBA/grey uint8 -> image bytes, with ``icc_profile``, ``exif``, ``dpi`` (JPEG/PNG),
    ``xmp``, ``subsampling`` and ``photoshop`` (JPEG: IPTC and Photoshop image resources, in APP13
    segments) where given (an EXIF or XMP block over a JPEG segment's 64 KB is left out). JPEG has
    no alpha: it is dropped there. ``quality`` None: as ``enhance`` writes a photo, ``jpeg`` (a JPEG upload's :func:`jpeg_source_options`) for a JPEG, a lossless
    WebP for a ``lossless`` WebP upload, else 95."""
    from PIL import Image

    from stream_gpen.io._image import _DEFAULT_QUALITY, _JPEG_EXIF_MAX, _JPEG_XMP_MAX, _png_chunks

    if fmt not in get_args(ImageFormat):
        raise InvalidInputError(f"format must be one of {get_args(ImageFormat)}, got {fmt!r}")
    im = Image.fromarray(pixels)
    if fmt == "jpeg" and im.mode == "RGBA":
        im = im.convert("RGB")
    kw: dict = {}
    if icc_profile:
        kw["icc_profile"] = icc_profile
    if exif and fmt == "jpeg" and photoshop:
        from stream_gpen.io._image import _without_tag

        exif = _without_tag(exif, 33723)  # (a TIFF upload's IPTC: in the APP13 segment below, not twice)
    if exif and not (fmt == "jpeg" and len(exif) > _JPEG_EXIF_MAX):
        kw["exif"] = exif
    if dpi and fmt in ("jpeg", "png"):
        kw["dpi"] = dpi
    if xmp and fmt in ("webp", "avif"):
        kw["xmp"] = xmp
    buf = io.BytesIO()
    if fmt == "jpeg":
        if xmp and len(xmp) <= _JPEG_XMP_MAX:
            kw["xmp"] = xmp
        if subsampling is not None:
            kw["subsampling"] = subsampling  # (Pillow's default, 4:2:0, halves a 4:4:4 upload's colour)
        if quality is None and jpeg and "qtables" in jpeg:
            kw["qtables"] = jpeg["qtables"]
        else:
            kw["quality"] = quality or (jpeg or {}).get("quality", _DEFAULT_QUALITY)
        im.save(buf, "JPEG", **kw)
        if photoshop:
            from stream_gpen.io._iptc import with_app13

            return with_app13(buf.getvalue(), photoshop)
    elif fmt == "webp":
        if quality is None and lossless:
            kw["lossless"] = True
        else:
            kw["quality"] = quality or _DEFAULT_QUALITY
        im.save(buf, "WEBP", **kw)
    elif fmt == "avif":
        im.save(buf, "AVIF", quality=quality or _DEFAULT_QUALITY, **kw)
    else:
        # Fast zlib level: the PNG answer is on the request's critical path.
        if xmp:
            kw["pnginfo"] = _png_chunks({"xmp": xmp})  # (as an iTXt chunk, as enhance writes it)
        im.save(buf, "PNG", compress_level=1, **kw)
    return buf.getvalue()
