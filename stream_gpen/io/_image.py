"""Single images and folders of images as sources and sinks (Pillow).

EXIF orientation is applied on load (frames are upright; the written EXIF says Orientation 1); an
alpha channel is split off into ``frame.alpha`` and re-attached by the sink when the output format
can store it (png/webp/tiff), otherwise dropped with a warning.

What a photo carries besides pixels travels with the frame (``frame.image_info``) and is written
back where the output format can hold it: the ICC profile (phone photos are Display P3: without
it colour-managed viewers show them desaturated), EXIF (date, camera, GPS), XMP, DPI, PNG gamma /
chromaticities / sRGB intent / text chunks, a JPEG's chroma subsampling (4:4:4 stays 4:4:4),
progressive flag and comment, a TIFF's compression, a lossless WebP stays lossless. A profile
that does not describe the written pixels (CMYK, which Pillow converts to RGB naively) is
dropped and reported; so is anything the output format cannot hold.
"""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from stream_gpen.errors import EmptyMediaError, InvalidInputError, MediaNotFoundError, NotMediaError, OutputExistsError
from stream_gpen.io._meta import StreamMetadata
from stream_gpen.io._ring import Frame
from stream_gpen.io._sink import _Sink
from stream_gpen.io._source import IMAGE_EXTS

log = logging.getLogger(__name__)
_ALPHA_EXTS = (".png", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif")
_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
            ".bmp": "BMP", ".heic": "HEIF", ".heif": "HEIF", ".avif": "AVIF"}
_HEIF_EXTS = (".heic", ".heif")
_heif_registered = False


def _heif_plugin(path: Path) -> None:
    """HEIC/HEIF (iPhones' default photo format) through pillow-heif, registered with Pillow on
    first use (libheif: libde265 to decode, x265 to encode). AVIF is Pillow's own (>= 11.2)."""
    global _heif_registered
    if _heif_registered or path.suffix.lower() not in _HEIF_EXTS:
        return
    try:
        import pillow_heif
    except ImportError as e:
        raise InvalidInputError(f"{path.name}: HEIC/HEIF images need pillow-heif ({e})",
                                hint="pip install pillow-heif") from None
    pillow_heif.register_heif_opener()
    _heif_registered = True
# lossless TIFF compressions Pillow writes (JPEG-in-TIFF would need a quality; it is left to Pillow)
_TIFF_COMPRESSIONS = ("raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits")
# TIFF tags that describe the file's own layout (sizes, strips/tiles, samples, compression,
# colour map, ICC, XMP): never copied from one file into another
_TIFF_LAYOUT_TAGS = {254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 280, 281, 284, 296, 282, 283, 317,
                     320, 322, 323, 324, 325, 338, 339, 340, 341, 530, 531, 532, 700, 34675}
# what a folder's videos may be called: phones, web, camcorders (AVCHD .mts, MiniDV .dv, JVC .mod/
# .tod, DVD .vob), broadcast (.mxf) and animated GIFs (written as .mp4, see Enhancer._FOLDER_KEEP)
_VIDEO_EXTS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mts", ".m2ts", ".ts", ".mpg", ".mpeg", ".wmv",
               ".flv", ".3gp", ".vob", ".dv", ".mod", ".tod", ".mxf", ".ogv", ".gif")


def folder_media(root: Path, exclude: Path | None = None) -> tuple[list[Path], list[Path], list[Path]]:
    """The images, the videos and the other files under ``root`` (one recursive walk, sorted,
    hidden files left out), by extension. ``exclude``: a folder inside ``root`` to leave out (the
    output of an earlier run written into the input folder, which would otherwise be restored
    again, and nested deeper each time)."""
    files = sorted(q for q in root.rglob("*") if q.is_file() and not q.name.startswith("."))
    if exclude is not None:
        ex = exclude.resolve()
        files = [q for q in files if not q.resolve().is_relative_to(ex)]
    images = [q for q in files if q.suffix.lower() in IMAGE_EXTS]
    videos = [q for q in files if q.suffix.lower() in _VIDEO_EXTS]
    other = [q for q in files if q.suffix.lower() not in IMAGE_EXTS and q.suffix.lower() not in _VIDEO_EXTS]
    return images, videos, other


def load_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """-> (RGB uint8 [H, W, 3], alpha uint8 [H, W] or None), EXIF orientation applied."""
    rgb, alpha, _, _ = _load(path)
    return rgb, alpha


def read_image_info(im, path: Path) -> dict:
    """What the file says besides its pixels, as far as Pillow can write it back (see module doc).

    Read from the image as opened (before EXIF transposing, which may drop the EXIF block)."""
    info = im.info
    out: dict = {"format": im.format, "mode": im.mode}
    for key in ("icc_profile", "dpi", "xmp", "gamma", "chromaticity", "srgb", "comment", "progressive",
                "compression"):
        v = info.get(key)
        if v not in (None, b"", ""):
            out[key] = v
    nclx = info.get("nclx_profile")
    if isinstance(nclx, dict) and "color_primaries" in nclx:
        # HEIF's colour description without an ICC profile (iPhones: Display P3 as nclx)
        out["nclx_profile"] = {k: int(nclx[k]) for k in ("color_primaries", "transfer_characteristics",
                                                          "matrix_coefficients", "full_range_flag") if k in nclx}
    if im.format == "PNG":
        text = getattr(im, "text", None) or {}
        if text:
            out["text"] = dict(text)
    if im.format == "JPEG":
        from PIL import JpegImagePlugin

        sampling = JpegImagePlugin.get_sampling(im)
        if sampling in (0, 1, 2):
            out["subsampling"] = sampling
    if im.format == "WEBP":
        out["lossless"] = _webp_is_lossless(path)
    try:
        # a copy: the image's own Exif object is what exif_transpose reads next
        exif = None
        own = im.getexif()
        if own:
            from PIL import Image

            exif = Image.Exif()
            exif.load(own.tobytes())
    except (OSError, ValueError, SyntaxError, KeyError, TypeError) as e:
        log.warning("%s: its EXIF block could not be read and is not carried over: %s", path, e)
        exif = None
    if exif and im.format == "TIFF":
        # A TIFF's "EXIF" is its whole first IFD: strip layout, compression, ICC (written anew from
        # the pixels and icc_profile); only the descriptive tags are carried.
        for tag in [t for t in exif if t in _TIFF_LAYOUT_TAGS]:
            del exif[tag]
    if exif:
        if 0x0112 in exif:
            exif[0x0112] = 1  # pixels are written upright (the orientation was applied on load)
        try:
            out["exif"] = exif.tobytes()
        except (OSError, ValueError, TypeError, KeyError) as e:  # a malformed maker note, say
            log.warning("%s: its EXIF block could not be re-encoded and is not carried over: %s", path, e)
    return out


def _webp_is_lossless(path: Path) -> bool:
    """True if the WebP's image chunk is VP8L (lossless); Pillow does not say."""
    try:
        with open(path, "rb") as f:
            if f.read(12)[8:12] != b"WEBP":
                return False
            while True:  # RIFF chunks: fourcc, little-endian size, payload padded to even
                head = f.read(8)
                if len(head) < 8:
                    return False
                if head[:4] in (b"VP8L", b"VP8 "):
                    return head[:4] == b"VP8L"
                size = int.from_bytes(head[4:], "little")
                f.seek(size + (size & 1), 1)
    except OSError:
        return False


def _load(path: Path, notes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray | None, bool, dict]:
    """-> (RGB uint8 [H, W, 3], alpha or None, the file was greyscale, image info); ``notes``
    collects what was not carried over (for the run summary)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not path.exists():
        raise MediaNotFoundError(f"image not found: {path}")
    if path.stat().st_size == 0:
        raise EmptyMediaError(f"image is empty (0 bytes): {path}")
    _heif_plugin(path)
    try:
        with Image.open(path) as im:
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                # Animated PNG/WebP (or a multi-page TIFF): Pillow shows the first frame only.
                msg = (f"{path} has {frames} frames (animation or pages): only the first is restored; "
                       "convert it to a video (e.g. .mp4) to restore every frame")
                log.warning(msg)
                if notes is not None:
                    notes.append(msg)
            image_info = read_image_info(im, path)
            im = ImageOps.exif_transpose(im)
            grey = im.mode in ("1", "L", "LA", "La", "I", "F") or im.mode.startswith("I;16")
            alpha = None
            if im.mode in ("I", "F") or im.mode.startswith("I;16"):
                # 16-bit / 32-bit grey: Pillow's convert("RGB") clips at 255 (a white picture)
                im = Image.fromarray(_to_uint8(np.asarray(im)), "L")
            if im.mode in ("RGBA", "LA", "La", "PA", "RGBa") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                alpha = np.asarray(im)[:, :, 3].copy()
            rgb = np.asarray(im.convert("RGB")).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise NotMediaError(f"cannot read {path} as an image: {e}") from e
    except Image.DecompressionBombError as e:
        raise InvalidInputError(f"{path} is too large to load safely: {e}") from e
    return rgb, alpha, grey, image_info


def _png_chunks(info: dict):
    """PNG ancillary chunks of the input (gamma, chromaticities, sRGB intent, text incl. XMP)."""
    import struct

    from PIL import PngImagePlugin

    chunks = PngImagePlugin.PngInfo()
    if info.get("gamma"):
        chunks.add(b"gAMA", struct.pack(">I", round(float(info["gamma"]) * 100000)))
    if info.get("chromaticity") and len(info["chromaticity"]) == 8:
        chunks.add(b"cHRM", struct.pack(">8I", *(round(float(v) * 100000) for v in info["chromaticity"])))
    if info.get("srgb") is not None and "icc_profile" not in info:  # PNG: sRGB and iCCP exclude each other
        chunks.add(b"sRGB", bytes([int(info["srgb"])]))
    for k, v in (info.get("text") or {}).items():
        if isinstance(v, PngImagePlugin.iTXt) or not str(v).isascii():
            chunks.add_itxt(k, str(v), getattr(v, "lang", None) or "", getattr(v, "tkey", None) or "")
        else:
            chunks.add_text(k, str(v))
    return chunks


def _to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        a = a * 255.0 if a.size and float(np.nanmax(a)) <= 1.0 else a
        return np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)
    # integer grey: 16-bit files come as uint16 or int32 (0..65535); 8-bit values in an "I" image stay
    top = 65535 if a.size and int(a.max()) > 255 else 255
    return (np.clip(a.astype(np.float64), 0, top) * (255.0 / top)).round().astype(np.uint8)


class ImageSource:
    """One image or every image under a folder (sorted, recursive), one :class:`Frame` each.

    Frames own their tensors (images differ in size, so there is no shared ring); ``rel_path`` is
    the path relative to the folder (the file name for a single image) so sinks can mirror the tree.
    """

    def __init__(self, spec, *, device: torch.device | str = "cpu", exclude: Path | None = None,
                 skip=None) -> None:
        p = Path(spec)
        if not p.exists():
            raise MediaNotFoundError(f"input not found: {p}")
        if p.is_dir():
            self.root = p
            self.paths, videos, others = folder_media(p, exclude)
            if skip is not None:
                self.paths = [q for q in self.paths if not skip(q)]
            if not self.paths:
                raise NotMediaError(
                    f"folder {p} contains no images ({', '.join(IMAGE_EXTS)})"
                    + (f"; its {len(videos)} video file(s) are for Enhancer.enhance_file / `stream-gpen enhance`, "
                       "which restore a folder's videos too" if videos else ""))
            kind = "folder"
        else:
            self.root = p.parent
            self.paths = [p]
            kind = "image"
        self.kind = kind
        self.device = torch.device(device)
        self.fallbacks: list[str] = []
        if kind == "folder":
            # Files that are neither images nor videos (which Enhancer.enhance_file restores on its
            # own) are left alone, but said so: a user must not believe they were restored.
            other: dict[str, int] = {}
            for q in others:
                ext = q.suffix.lower() or "(no extension)"
                other[ext] = other.get(ext, 0) + 1
            if other:
                kinds = ", ".join(f"{n} {ext}" for ext, n in sorted(other.items(), key=lambda kv: (-kv[1], kv[0])))
                msg = f"{sum(other.values())} file(s) in {p} are neither images nor videos and were left out ({kinds})"
                self.fallbacks.append(msg)
                log.warning(msg)
        # Folder inputs: one unreadable file must not cost the others. It is logged, listed here
        # (the error message, which names the file) and skipped; a single image input raises instead.
        self.skipped: list[str] = []
        self.stats = {"decoded": 0, "corrupt_packets": 0, "corrupt_frames": 0, "dropped": 0, "reconnects": 0}
        self.aux = None
        self.live = False
        self._i = 0
        first = self._next_readable()
        if first is None:
            raise NotMediaError(f"none of the {len(self.paths)} images in {p} could be read "
                                f"(first: {self.skipped[0]})")
        self._pending = first
        rgb = first[1]
        self.metadata = StreamMetadata(
            width=rgb.shape[1], height=rgb.shape[0], pix_fmt="rgb24", codec="image", time_base=Fraction(1),
            frame_rate=None, frame_count=len(self.paths), kind=kind, color_range="full",
        )

    def _next_readable(self):
        """(index, rgb, alpha, grey) of the next image that loads, or None at the end."""
        while self._i < len(self.paths):
            i = self._i
            self._i += 1
            try:
                rgb, alpha, grey, info = _load(self.paths[i], self.fallbacks)
            except InvalidInputError as e:
                if self.kind != "folder":
                    raise
                self.skipped.append(str(e))  # the message names the file
                log.warning("skipped: %s", e)
                continue
            return i, rgb, alpha, grey, info
        return None

    def __enter__(self) -> "ImageSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._i = len(self.paths)
        self._pending = None

    def __iter__(self) -> "ImageSource":
        return self

    def __next__(self) -> Frame:
        item, self._pending = (self._pending, None) if self._pending is not None else (self._next_readable(), None)
        if item is None:
            raise StopIteration
        i, rgb, alpha, grey, info = item
        path = self.paths[i]
        self.stats["decoded"] += 1
        img = torch.from_numpy(rgb).to(self.device)
        a = torch.from_numpy(alpha).to(self.device) if alpha is not None else None
        return Frame(index=i, pts=i, time_base=Fraction(1), time=float(i), _image=img,
                     rel_path=path.relative_to(self.root).as_posix(), alpha=a, grey=grey, image_info=info)


class ImageSink(_Sink):
    """Writes each frame as an image.

    ``target`` is a file (single image) or a folder: ``folder/<rel_path>`` keeps the input tree,
    with the extension replaced by ``format`` when given (``None`` keeps the input's format).
    ``quality`` (1-100) applies to jpeg/webp: higher is bigger and closer to the original. A JPEG
    written from a JPEG keeps its chroma subsampling (Pillow's default would halve a 4:4:4
    photo's colour resolution), a lossless WebP stays lossless; profile, EXIF, DPI and the rest
    of ``frame.image_info`` are written where the format holds them (module doc), and what is
    not is listed once per kind in ``fallbacks``.
    """

    def __init__(self, target, *, format: str | None = None, quality: int = 95, overwrite: bool = False) -> None:
        if not 1 <= quality <= 100:
            raise InvalidInputError(f"quality={quality} must be within 1..100")
        if format is not None and "." + format.lower().lstrip(".") not in IMAGE_EXTS:
            raise InvalidInputError(f"image format={format!r} is not one of {tuple(e[1:] for e in IMAGE_EXTS)}")
        self.target = Path(target)
        self.is_folder = self.target.suffix.lower() not in IMAGE_EXTS or self.target.is_dir()
        self.format = format
        self.quality = quality
        self.overwrite = overwrite
        self.frames_written = 0
        self.fallbacks: list[str] = []
        self.written: list[Path] = []
        self._noted: set[str] = set()

    def _note(self, what: str, path: Path) -> None:
        """Report a kind of loss once (a folder of 1000 phone photos gives one line, not 1000)."""
        if what in self._noted:
            return
        self._noted.add(what)
        msg = f"{what} (first: {path.name})"
        self.fallbacks.append(msg)
        log.warning(msg)

    def _save_options(self, path: Path, im, info: dict) -> dict:
        """Pillow save arguments that carry ``info`` (see the module doc) into ``path``'s format."""
        fmt = _FORMATS.get(path.suffix.lower(), "")
        kw: dict = {}
        if fmt in ("JPEG", "WEBP", "HEIF", "AVIF"):
            kw["quality"] = self.quality
        icc = info.get("icc_profile")
        if icc:
            space = bytes(icc[16:20])
            want = b"GRAY" if im.mode in ("L", "LA") else b"RGB "
            if space != want:
                self._note(f"a {space.decode('ascii', 'replace').strip()} ICC profile was dropped: it does not "
                           f"describe the {im.mode} pixels written", path)
            elif fmt == "BMP":
                self._note("the ICC profile was dropped: BMP output cannot hold it (write .png/.jpg/.webp/.tif)", path)
            else:
                kw["icc_profile"] = icc
        if info.get("exif"):
            if fmt in ("JPEG", "PNG", "WEBP", "TIFF", "HEIF", "AVIF"):
                kw["exif"] = info["exif"]
            else:
                self._note("EXIF was dropped: BMP output cannot hold it", path)
        if info.get("xmp"):
            if fmt in ("JPEG", "WEBP", "HEIF", "AVIF"):
                kw["xmp"] = info["xmp"]
            elif fmt != "PNG" or "XML:com.adobe.xmp" not in info.get("text", {}):  # PNG: a text chunk
                self._note(f"XMP was dropped: Pillow does not write it to {fmt or path.suffix}", path)
        nclx = info.get("nclx_profile")
        if nclx:
            if fmt == "HEIF":
                kw["nclx_profile"] = dict(nclx)
            elif nclx.get("color_primaries") not in (1, 2) and "icc_profile" not in kw:
                # P3 / BT.2020 pixels written without any colour description look desaturated
                self._note(f"the HEIF colour description (nclx, primaries {nclx.get('color_primaries')}) was dropped: "
                           f"{fmt or path.suffix} output cannot hold it, so wide-gamut colours will show less "
                           "saturated (write .heic to keep it)", path)
        if info.get("dpi") and fmt in ("JPEG", "PNG", "TIFF"):
            kw["dpi"] = tuple(round(float(d), 4) for d in info["dpi"])
        same = info.get("format") == fmt
        if fmt == "PNG":
            kw["pnginfo"] = _png_chunks(info)
        elif fmt == "JPEG" and same:
            # 4:4:4 stays 4:4:4 (Pillow's default is 4:2:0: halved colour resolution)
            if "subsampling" in info:
                kw["subsampling"] = info["subsampling"]
            if info.get("progressive"):
                kw["progressive"] = True
            if info.get("comment"):
                kw["comment"] = info["comment"]
        elif fmt == "WEBP" and same and info.get("lossless"):
            kw["lossless"] = True
        elif fmt == "TIFF" and same and info.get("compression") in _TIFF_COMPRESSIONS:
            kw["compression"] = info["compression"]
        return kw

    def _path_for(self, frame: Frame) -> Path:
        if not self.is_folder:
            return self.target
        rel = Path(frame.rel_path or f"{frame.index:06d}.png")
        if self.format:
            rel = rel.with_suffix("." + self.format.lower().lstrip("."))
        return self.target / rel

    def write(self, frame: Frame) -> None:
        from PIL import Image

        path = self._path_for(frame)
        if path.exists() and not self.overwrite:
            raise OutputExistsError(f"output exists: {path}", hint="--overwrite redoes it, --skip-existing resumes a folder run (overwrite= / skip_existing= in Python)")
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = frame.image.cpu().numpy()
        im = Image.fromarray(rgb, "RGB")
        if frame.grey:
            # A grey photo stays grey (and 3x smaller); the restorer may tint faces slightly.
            im = im.convert("L")
        if frame.alpha is not None:
            if path.suffix.lower() in _ALPHA_EXTS:
                im.putalpha(Image.fromarray(frame.alpha.cpu().numpy(), "L"))
            else:
                msg = f"{path.name}: {path.suffix} cannot store alpha; transparency dropped"
                self.fallbacks.append(msg)
                log.warning(msg)
        if im.mode == "LA" and path.suffix.lower() not in (".png", ".tif", ".tiff"):
            im = im.convert("RGBA")  # webp has no grey+alpha mode
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        _heif_plugin(path)
        kwargs = self._save_options(path, im, frame.image_info or {})
        try:
            im.save(tmp, **kwargs)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.written.append(path)
        self.frames_written += 1
        frame.release()

    def close(self) -> None:
        pass
