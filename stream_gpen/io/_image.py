"""Single images and folders of images as sources and sinks (Pillow).

EXIF orientation is applied on load (frames are upright; the written EXIF says Orientation 1); an
alpha channel is split off into ``frame.alpha`` and re-attached by the sink when the output format
can store it (png/webp/tiff), otherwise dropped with a warning.

What a photo carries besides pixels travels with the frame (``frame.image_info``) and is written
back where the output format can hold it: the ICC profile (phone photos are Display P3: without
it colour-managed viewers show them desaturated), EXIF (date, camera, GPS; its stated picture size
set to the written one), XMP (its stated size too; into PNG as an iTXt chunk, into TIFF as tag 700), DPI, PNG gamma /
chromaticities / sRGB intent / text chunks / cICP, mDCv, cLLI (HDR: its faces are restored as SDR codes,
said), a JPEG's IPTC and other Photoshop image resources (APP13, into JPEG output; the IPTC record alone
into TIFF as tag 33723; thumbnails and what else describes the old pixels left out, see ``_iptc``) and
a TIFF's IPTC record (its tag 33723: into TIFF output as such, into JPEG output as APP13),
a JPEG's (and a camera MPO's) chroma subsampling (4:4:4
stays 4:4:4), progressive flag and comment, a TIFF's compression (one Pillow does not write, JPEG or
CCITT fax, becomes deflate) and its reduced-resolution previews (made again from the restored
picture; they are not pages), a lossless WebP stays lossless. A profile
that does not describe the written pixels (CMYK, which Pillow converts to RGB naively) is
dropped and reported; so is anything the output format cannot hold.

Phones' Ultra HDR JPEGs keep their HDR gain map in JPEG output (see ``_with_gain_map``), and what a
JPEG holds after its picture (a motion photo's video, camera data) is written after it again.

16-bit PNGs and TIFFs (scans, raw developers' exports; every page of a multi-page TIFF, written back
as one 16-bit TIFF) keep their 16 bits, and 10/12-bit HEIF
(cameras' HIF) its 10/12 bits (decoded by pillow-heif at its depth, written back by its writer): OpenCV decodes them
(Pillow opens 16-bit RGB as 8-bit), the frame carries them as ``hi`` (faces are restored into it at
the restorer's own precision), and the sink writes 16 bits back with the same metadata (PNG:
OpenCV's pixels with the ancillary chunks Pillow writes; TIFF: tifffile with the profile, DPI and
text tags, IPTC). An output format that holds 8 bits (JPEG, WebP...) gets 8 and the summary says so, as
does a multi-page PNG or HEIC output (the deep writers here make one picture); an animation's or a
HEIF burst's deep frames are read at 8 bits (said).
"""
from __future__ import annotations

import contextlib
import errno
import functools
import io
import logging
import shutil
import struct
import threading
import time
import uuid
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from stream_gpen._warnings import warnings_of
from stream_gpen.errors import PATH_HINT
from stream_gpen.errors import (
    DiskFullError,
    EmptyMediaError,
    EncodeError,
    FileTooLargeError,
    InvalidInputError,
    MediaNotFoundError,
    NotMediaError,
    OutputExistsError,
    OutputNotWritableError,
)
from stream_gpen.io._convert import u8_from_u16
from stream_gpen.io._iptc import beyond_tiff, iptc_record, jpeg_app13, kept_resources, tiff_iptc_resources, with_app13
from stream_gpen.io._meta import StreamMetadata, fit_name, hidden_temp
from stream_gpen.io._ring import Frame
from stream_gpen.io._sink import (
    FULL_ERRNOS,
    REFUSED_ERRNOS,
    _file_size_limit,
    _Sink,
    check_output_folder,
    keep_beside,
    keep_mode,
    not_writable,
    place_new,
    refused_in,
)
from stream_gpen.io._source import _HEIF_BRANDS, IMAGE_EXTS
from stream_gpen.io._unread import folder_kinds, unread_error
from stream_gpen.summary import skipped_entry

log = logging.getLogger(__name__)
_ALPHA_EXTS = (".png", ".apng", ".webp", ".tif", ".tiff", ".heic", ".heif", ".hif", ".avif")
# (.jfif/.jpe: JPEGs under the names browsers and old Windows tools save; .hif: the HEIF
# Fujifilm and Canon cameras write; .apng: an animated PNG; each is written back in its own format)
_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".jfif": "JPEG", ".jpe": "JPEG", ".png": "PNG", ".webp": "WEBP",
            ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".heic": "HEIF", ".heif": "HEIF", ".hif": "HEIF",
            ".avif": "AVIF", ".apng": "PNG"}
#: photo formats ``quality`` applies to (the others are lossless)
QUALITY_FORMATS = ("JPEG", "WEBP", "HEIF", "AVIF")
_HEIF_EXTS = (".heic", ".heif", ".hif")
_heif_registered = False


#: what to do with a picture over Pillow's decompression-bomb limit (2 x ~89.5 MP, ~179 MP: a
#: 200 MP phone photo is over it): the limit guards against crafted files, and is not lifted here
_BOMB_HINT = ("pictures over ~179 megapixels are refused (Pillow's guard against crafted files); save a "
              "smaller copy (e.g. half the width and height) and restore that")


def _opaque(alpha) -> bool:
    """Whether an alpha plane (a tensor or array, 8 or 16 bits) is at full everywhere."""
    a = alpha.cpu().numpy() if hasattr(alpha, "cpu") else np.asarray(alpha)
    return bool(a.size) and int(a.min()) == (65535 if a.dtype == np.uint16 else 255)


def _heif_plugin(path: Path) -> None:
    """HEIC/HEIF (iPhones' default photo format) through pillow-heif, registered with Pillow on
    the first picture read, whatever its name (libheif: libde265 to decode, x265 to encode): a
    HEIC saved as ``.jpg`` (a phone's export, a renamed file) was refused unless a ``.heic`` had
    been read before in the same run. AVIF is Pillow's own (>= 11.2)."""
    global _heif_registered
    if _heif_registered:
        return
    try:
        import pillow_heif
    except ImportError as e:
        if path.suffix.lower() not in _HEIF_EXTS:
            return  # (the other formats do not need it)
        raise InvalidInputError(f"{path.name}: HEIC/HEIF images need pillow-heif ({e})",
                                hint="pip install pillow-heif") from None
    pillow_heif.register_heif_opener()
    _heif_registered = True
# lossless TIFF compressions Pillow writes (JPEG-in-TIFF would need a quality; it is left to Pillow)
_TIFF_COMPRESSIONS = ("raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits")
#: the quality a lossy photo is written at where none is asked for and a JPEG source's own tables
#: are not kept (another format, a format change)
_DEFAULT_QUALITY = 95
#: a JPEG source's own tables are kept from this quality up (IJG scale, estimated from its luma
#: table); a coarser one is written at this quality: restored faces written at a web JPEG's q70
#: lost their detail (face PSNR 34-35 dB from the restored pixels, vs 40-42 at q90; real photos,
#: classic model), at 1.5-2x the size its own tables give
_JPEG_FLOOR = 90
# IJG's (libjpeg's) standard luminance table, which its quality setting scales
_IJG_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
             14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
             49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
# TIFF compressions a horizontal predictor (tag 317 = 2) goes with (zstd is written as deflate)
# the input's TIFF compression (Pillow's name) as the 16-bit writer (tifffile) names it; other
# compressed inputs are written as deflate. Without imagecodecs tifffile writes only deflate
# (and LZMA) of these: see _tifffile_writes
_TIFF16_COMPRESSIONS = {"tiff_adobe_deflate": "zlib", "tiff_deflate": "zlib", "tiff_lzw": "lzw",
                        "packbits": "packbits", "zstd": "zstd", "lzma": "lzma"}
_PREDICTED = ("tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "zstd")
# the format a file Pillow reports as this one is written back in
_AS_WRITTEN = {"MPO": "JPEG"}
# formats that hold several pages or frames (Pillow's save_all): a multi-page TIFF, an animation,
# a HEIF's pictures (pillow-heif: a burst, an edit beside its original)
_MULTI_PAGE = ("TIFF", "WEBP", "PNG", "HEIF", "AVIF")
# TIFF tags that describe the file's own layout (sizes, strips/tiles, samples, compression, SubIFD offsets,
# colour map, ICC, XMP): never copied from one file into another
_TIFF_LAYOUT_TAGS = {254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 280, 281, 284, 296, 282, 283, 317,
                     320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 530, 531, 532, 700, 34675}
# Tags that hold another copy of the picture, which would go stale beside the restored one:
# Photoshop's layers (37724 ImageSourceData: Photoshop opens a TIFF from them, unrestored) and
# image resources (34377: a thumbnail, and layer data too).
_STALE_TAGS = {37724, 34377}
# An APP1 segment's length field is 16 bits: 65535 - 2 (length) - 6 ("Exif\0\0", counted in the block)
_JPEG_EXIF_MAX = 65533
#: the XMP a JPEG APP1 segment holds after its namespace header (Pillow's own limit)
_JPEG_XMP_MAX = 65502
# what a folder's videos may be called: phones, web, camcorders (AVCHD .mts, MiniDV .dv, JVC .mod/
# .tod, DVD .vob), broadcast (.mxf), animated GIFs, and the raw streams that drones, DVRs and
# encoders leave (.h264/.hevc/.y4m/.ivf/.mjpeg...: each written as .mp4, see Enhancer._FOLDER_KEEP)
_VIDEO_EXTS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mts", ".m2ts", ".m2t", ".ts", ".mpg", ".mpeg",
               ".m2v", ".wmv", ".asf", ".flv", ".f4v", ".3gp", ".3g2", ".vob", ".dv", ".mod", ".tod", ".mxf", ".ogv",
               ".gif", ".nut", ".rm", ".rmvb", ".y4m", ".h264", ".264", ".hevc", ".h265", ".265", ".ivf", ".obu",
               ".mjpeg", ".mjpg", ".h263", ".swf")


# Folders of thumbnails and deleted files that file managers, NASes and archivers leave in photo
# folders (besides hidden ".name" ones): their pictures are copies, not the user's photos.
_JUNK_DIRS = frozenset({"@eadir", "$recycle.bin", "system volume information", "__macosx", "#recycle"})


def _listed(rel: Path) -> bool:
    """A file (path relative to the walked folder) a folder run takes: no part of it hidden
    (``.thumbnails/``, ``.git/``, ``.Trash-1000/``, ``._IMG.jpg``) or a thumbnail/trash folder."""
    return not any(part.startswith(".") or part.lower() in _JUNK_DIRS for part in rel.parts)


def _walk(root: Path, say: bool = True, skip: tuple[int, int] | None = None,
          notes: list[str] | None = None) -> list[Path]:
    """Every file under ``root``, following links to folders (a photo library's year folders
    linked in from another disk; each real folder once, so a link loop ends; a link to a folder
    of the tree itself is left to that folder's own path, one to a folder above it, which holds the
    tree, is left out and said: it would restore everything above the input). ``rglob`` left
    linked folders, unreadable folders and broken links out without a word: those last two are
    said here (a warning each, as the files behind them are not restored). ``skip``: the
    (device, inode) of a folder not to walk (by identity: on a case-insensitive disk, macOS's or a
    FAT/exFAT card's, ``trip/`` and ``Trip/`` are one folder with two paths)."""
    import os

    files: list[Path] = []
    seen: set[str] = set()
    top = os.path.realpath(root)

    def walked_anyway(d: str) -> bool:
        # a link to a folder of this tree that is walked under its own path: followed, the folder
        # was mirrored under whichever of its two paths the disk listed first (1998/ went to
        # "Photos/link_1998/", and a resume on another disk restored it again under the other)
        if not os.path.islink(d):
            return False
        target = os.path.realpath(d)
        if target != top and not target.startswith(top.rstrip(os.sep) + os.sep):
            return False
        return target != top and _listed(Path(os.path.relpath(target, top)))

    def above(d: str, here: str) -> bool:
        # a link to a folder outside this tree that holds it (``up -> ..``, ``all -> /``), or that
        # holds the folder being walked (a linked-in folder's link back to its own parent): followed,
        # everything above the input folder was restored into the mirror (the whole disk, for /)
        if not os.path.islink(d):
            return False
        target = os.path.realpath(d)
        if target == top:  # (a link back to the input folder itself, from anywhere in it: a loop)
            if say:
                note(f"{d}: a link to {root} itself (a loop), left out")
            return True
        if target.startswith(top.rstrip(os.sep) + os.sep):
            return False  # (inside the tree: walked under its own path, or once: see walked_anyway)
        base = target.rstrip(os.sep) + os.sep
        if not any(p == target or p.startswith(base) for p in (top, here)):
            return False
        if say:
            note(f"{d}: a link to a folder above {root} ({target}: a loop), left out")
        return True

    def said(e: OSError) -> None:
        if say:
            note(f"{e.filename}: folder left out: {e.strerror}")

    def note(msg: str) -> None:  # (said on stderr, and in the run's summary where it keeps notes)
        log.warning("%s", msg)
        if notes is not None:
            notes.append(msg)

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=said):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        if skip is not None:
            try:
                st = os.stat(dirpath)
            except OSError:
                st = None
            if st is not None and (st.st_dev, st.st_ino) == skip:
                dirnames[:] = []
                continue
        # (hidden/thumbnail/trash: not walked; sorted: the same walk whatever order the disk lists)
        dirnames[:] = sorted(d for d in dirnames if _listed(Path(d)) and not walked_anyway(os.path.join(dirpath, d))
                             and not above(os.path.join(dirpath, d), real))
        for name in filenames:
            q = Path(dirpath) / name
            if q.is_file():
                files.append(q)
            elif say and q.is_symlink() and _listed(Path(name)):
                note(f"{q}: a broken link, left out")
    return files


def file_in_the_way(folder, top) -> Path | None:
    """The file (not a folder) on the path of ``folder`` at or under ``top`` that keeps a folder
    run's mirror subfolder from being made (``out/a`` a file where the input has ``a/x/``), or
    None. Such a file fails the files under it, not the run."""
    import os

    f, top = Path(folder), Path(top)
    try:
        rel = f.relative_to(top)
    except ValueError:
        return None
    here = top
    for part in rel.parts:
        here = here / part
        if os.path.lexists(here) and not here.is_dir():
            return here
    return None


def disk_full(path, err: OSError) -> DiskFullError:
    """The error of a photo's output ``path`` that ``err`` (``ENOSPC``, ``EDQUOT``) refused room."""
    quota = err.errno == getattr(errno, "EDQUOT", None) and err.errno != errno.ENOSPC
    e = DiskFullError(f"cannot write {path}: " + ("this user's disk quota on its drive is spent" if quota
                                                  else "its drive is full") + f" ({err.strerror or err})",
                      hint="make room on that drive, or choose another dst on a drive with room")
    # (as the OSError it stands for: a folder run stops at it, the server says its strerror)
    e.errno, e.strerror, e.filename = err.errno, err.strerror, str(path)
    return e


def file_too_large(path, err: OSError) -> FileTooLargeError:
    """The error of a photo's output ``path`` that ``err`` (``EFBIG``) refused as too large: this
    process's file-size limit where it has one, else its drive's largest file."""
    limit = _file_size_limit()
    smaller = ("a lower quality=, say quality=80" if Path(path).suffix.lower() in (".jpg", ".jpeg", ".webp")
               else "image_format='jpg'")
    if limit is not None:
        why = f"it is larger than this process may write (its file-size limit: {limit} bytes)"
        hint = (f"raise that limit (ulimit -f unlimited; systemd's LimitFSIZE, or the container's), "
                f"or write a smaller file ({smaller})")
    else:  # (FAT32: the limit a drive's format sets per file; a photo of 4 GiB is rare but a TIFF may be)
        why = "it is larger than its drive holds in one file (FAT32, on most USB sticks and SD cards: 4 GiB)"
        hint = f"write to an exFAT, NTFS, APFS or ext4 drive, or write a smaller file ({smaller})"
    e = FileTooLargeError(f"cannot write {path}: {why} ({err.strerror or err})", hint=hint)
    e.errno, e.strerror, e.filename = err.errno, err.strerror, str(path)
    return e


def make_mirror_folder(folder, top) -> list[Path]:
    """``folder.mkdir(parents=True, exist_ok=True)``; where a file of the mirror ``top`` is in
    the way, a ``NotADirectoryError`` that says so, with ``in_the_way`` naming it. Returns the
    folders it made, deepest first (:func:`remove_empty_folders` takes them away again where the
    file they were made for was not written)."""
    made = []
    for q in (Path(folder), *Path(folder).parents):
        if q.exists() or q.is_symlink():
            break
        made.append(q)
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return made
    except (NotADirectoryError, FileExistsError) as e:
        blocked = file_in_the_way(folder, top)
        if blocked is None:
            raise
        err = NotADirectoryError(e.errno, f"{blocked} is a file, not a folder", str(folder))
        err.in_the_way = blocked
        raise err from e
    except OSError as e:
        if e.errno in FULL_ERRNOS:
            raise disk_full(folder, e) from e
        if e.errno not in REFUSED_ERRNOS:
            raise
        # (a bare PermissionError: the folder it was to be made in is said, as the project's error)
        raise not_writable(folder, e) from e


def remove_empty_folders(made: list[Path]) -> None:
    """Removes the folders of ``made`` (:func:`make_mirror_folder`'s, deepest first) that are
    empty: only those a run made itself, never one that was there before it."""
    for q in made:
        try:
            q.rmdir()  # (only if empty)
        except OSError:
            return  # (not empty: nor are the ones above it)


def still_gif(path) -> bool:
    """A GIF of one frame: a photo (an old scan, a web portrait), restored and written as a picture
    (PNG by default: there is no GIF writer here), not as a 0.1 s video padded to an even size."""
    p = Path(path)
    if p.suffix.lower() != ".gif" or not p.is_file():
        return False
    from PIL import Image

    try:
        with Image.open(p) as im:
            return im.format == "GIF" and getattr(im, "n_frames", 1) == 1
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False  # (read as a video, which says what is wrong with it)


def photo_signature(head: bytes) -> str | None:
    """The photo extension (``.jpg``, ``.png``, ``.webp``, ``.bmp``, ``.tif``, ``.heic``,
    ``.avif``) that the first bytes of a file, ``head`` (a few KiB), begin as; None for anything
    else: a video, a GIF (one frame or many: its frames decide), a camera raw DNG (a TIFF that is
    none of ours), JPEG XL. For bytes with no name to tell (a photo URL that names no file)."""
    from stream_gpen.io._unread import is_tiff, unread_kind

    if head[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"  # (an animated one too: a .png is read as an APNG)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):
        return ".bmp"  # (by its DIB header's size: "BM" alone begins many files)
    if is_tiff(head):
        return ".tif" if unread_kind(head) is None else None
    if head[4:8] == b"ftyp" and head[8:12].decode("latin-1").strip().lower() in _HEIF_BRANDS:
        brands = head[8:max(8, min(int.from_bytes(head[:4], "big"), len(head)))]
        return ".avif" if brands[:3] == b"avi" or b"avif" in brands[8:] else ".heic"
    return None


def folder_media(root: Path, exclude: Path | None = None, *, say: bool = True,
                 notes: list[str] | None = None) -> tuple[list[Path], list[Path], list[Path]]:
    """The images, the videos and the other files under ``root`` (one recursive walk, sorted,
    hidden files and folders, thumbnail and trash folders left out), by extension. ``exclude``: a
    folder inside ``root`` to leave out (the output of an earlier run written into the input
    folder, which would otherwise be restored again, and nested deeper each time). ``say``: warn
    about unreadable folders and broken links (once per run: the first walk says it), and add
    those lines to ``notes`` (a run summary's fallbacks) when given. A still GIF
    (:func:`still_gif`) is an image, an animated one a video."""
    skip = None
    if exclude is not None:
        try:
            st = exclude.stat()
            skip = (st.st_dev, st.st_ino)
        except OSError:
            pass
    files = sorted(q for q in _walk(root, say, skip, notes) if _listed(q.relative_to(root)))
    if exclude is not None and not Path(root).resolve().is_relative_to(exclude.resolve()):
        # (only an output folder inside the input: one that holds the input, ``-o .`` for
        # ``photos``, held every file, and the folder read as "contains no images")
        ex = exclude.resolve()
        files = [q for q in files if not q.resolve().is_relative_to(ex)]
    gifs = {q for q in files if q.suffix.lower() == ".gif" and still_gif(q)}
    images = [q for q in files if q.suffix.lower() in IMAGE_EXTS or q in gifs]
    videos = [q for q in files if q.suffix.lower() in _VIDEO_EXTS and q not in gifs]
    other = [q for q in files if q.suffix.lower() not in IMAGE_EXTS and q.suffix.lower() not in _VIDEO_EXTS]
    return images, videos, other


def unread_note(root: Path, others: list[Path]) -> tuple[str, str] | None:
    """(what a folder run says of its photos in formats not read here: raw DNG and other camera
    raw files, JPEG XL; how to convert them), or None (see :mod:`stream_gpen.io._unread`)."""
    unread = folder_kinds(others)
    if not unread:
        return None
    n = sum(len(qs) for qs in unread.values())
    kinds = ", ".join(f"{len(qs)} {kind}" + ("" if kind != "camera raw" else
                                             f" ({', '.join(sorted({q.suffix.lower() for q in qs}))})")
                      for kind, qs in unread.items())
    todo = []
    if "raw DNG" in unread or "camera raw" in unread:
        todo.append("export raw photos as JPEG, TIFF or HEIC from the photo app or a raw developer")
    if "JPEG XL" in unread:
        todo.append("convert JPEG XL photos to JPEG, PNG or HEIC (libjxl's djxl)")
    return (f"{n} photo(s) in {root} are in formats not read here and were left out ({kinds})",
            " and ".join(todo) + " to restore them")


def others_note(root: Path, others: list[Path]) -> str | None:
    """What a folder run says of its files that are neither images nor videos (left out), and of
    its photos in formats not read here (raw DNG, JPEG XL: with how to convert them), or None."""
    unread = unread_note(root, others)
    odd = {q for qs in folder_kinds(others).values() for q in qs}
    other: dict[str, int] = {}
    for q in others:
        if q in odd:
            continue
        ext = q.suffix.lower() or "(no extension)"
        other[ext] = other.get(ext, 0) + 1
    parts = [f"{unread[0]}: {unread[1]}"] if unread else []
    if other:
        kinds = ", ".join(f"{n} {ext}" for ext, n in sorted(other.items(), key=lambda kv: (-kv[1], kv[0])))
        parts.append(f"{sum(other.values())} file(s) in {root} are neither images nor videos and were left out "
                     f"({kinds})")
    return "; ".join(parts) or None


def folder_outputs(root: Path, dst: Path, files: list[Path],
                   suffix_of) -> tuple[dict[Path, Path], list[str], set[Path]]:
    """Where each of a folder's ``files`` goes in its mirror ``dst``: ``suffix_of(path)`` is the
    output's extension (``--image-format``, or ``.mp4`` for a container the sink does not write).
    Two inputs that would land on one output (``a.jpg`` and ``a.png`` with ``image_format="jpg"``,
    iPhone exports' ``IMG_1.HEIC`` and ``IMG_1.JPG``; ``clip.gif`` and ``clip.mp4``) must not
    overwrite each other: the one already named so keeps the name (``a.jpg`` beside ``a.JPG``),
    else one in the output's format (else the first in sorted order), and the others take their
    own extension into it (``a_png.jpg``, ``a_jpg.JPG``). Names are
    compared ignoring case, as macOS and Windows file systems do. -> (input -> output, notes,
    the inputs of clashing groups: which of them an existing output came from cannot be told)."""
    plan: dict[Path, Path] = {}
    groups: dict[str, list[Path]] = {}
    for q in files:
        # (fitted: a longer extension, or the renames below, may pass the file system's 255 bytes)
        out = fit_name((dst / q.relative_to(root)).with_suffix(suffix_of(q)))
        plan[q] = out
        groups.setdefault(str(out).lower(), []).append(q)
    taken = {str(o).lower() for o in plan.values()}
    notes: list[str] = []
    clashing: set[Path] = set()
    for key, qs in groups.items():
        if len(qs) < 2:
            continue
        clashing.update(qs)
        # The name goes to the file already called so, case included (a.jpg's, not a.JPG's, with
        # image_format="jpg"), else to one in the output's format; between two files that both
        # keep their own names (a.jpg, a.JPG), to the extension spelt as the format's name is
        # (lowercase: what image_format and the renamed files' tags write); else sorted order.
        keep = min(qs, key=lambda q: (plan[q].name != q.name, q.suffix.lower() != plan[q].suffix.lower(),
                                      q.suffix != q.suffix.lower()))
        for q in qs:
            if q is keep:
                continue
            # renamed from its own path: ``photos/a.jpg`` beside ``Photos/a.jpg`` stays in photos/
            # on a case-sensitive disk (it went into Photos/, named after the other file)
            own = plan[q]
            stem = f"{own.stem}_{q.suffix.lstrip('.').lower() or 'file'}"
            new, n = fit_name(own.with_name(stem + own.suffix)), 2
            while str(new).lower() in taken:
                new, n = fit_name(own.with_name(f"{stem}_{n}{own.suffix}")), n + 1
            taken.add(str(new).lower())
            plan[q] = new
            notes.append(f"{q.relative_to(root)} written as {new.relative_to(dst)}: "
                         f"{keep.relative_to(root)} takes {plan[keep].relative_to(dst)}")
    # An output named as a folder the mirror makes (clip.ts -> clip.mp4 beside a subfolder clip.mp4/)
    # cannot be written there: it takes its own extension into its name as a clash does.
    folders = {str(d).lower() for o in plan.values() for d in o.parents if d != dst and d.is_relative_to(dst)}
    for q, own in plan.items():
        if str(own).lower() not in folders:
            continue
        stem = f"{own.stem}_{q.suffix.lstrip('.').lower() or 'file'}"
        new, n = fit_name(own.with_name(stem + own.suffix)), 2
        while str(new).lower() in taken or str(new).lower() in folders:
            new, n = fit_name(own.with_name(f"{stem}_{n}{own.suffix}")), n + 1
        taken.add(str(new).lower())
        plan[q] = new
        notes.append(f"{q.relative_to(root)} written as {new.relative_to(dst)}: {own.relative_to(dst)} is the "
                     f"mirrored subfolder of that name")
    return plan, notes, clashing


def load_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """-> (RGB uint8 [H, W, 3], alpha uint8 [H, W] or None), EXIF orientation applied."""
    rgb, alpha, _, _, _ = _load(path)
    return rgb, alpha


def _bits_per_sample(im, path: Path) -> int:
    """Bits per colour sample the file stores. Pillow opens 16-bit RGB PNGs and TIFFs as 8-bit
    RGB, so for those two the file's own header says (PNG: IHDR; TIFF: BitsPerSample)."""
    if im.mode.startswith("I;16"):
        return 16
    if im.format == "PNG":
        with open(path, "rb") as f:
            head = f.read(26)
        return head[24] if head[12:16] == b"IHDR" else 8
    if im.format == "TIFF":
        bps = getattr(im, "tag_v2", {}).get(258, 8)
        return int(max(bps) if isinstance(bps, tuple) else bps)
    return 8


# EXIF orientation -> numpy steps on [H, W, ...] that turn the stored pixels upright (as Pillow's
# exif_transpose does: 6 = turn 90 degrees clockwise, 8 = counter-clockwise, 5/7 = mirrored ones)
_ORIENT = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def _avif_properties(path: Path) -> tuple[int, dict | None]:
    """(bits per sample, nclx colour description or None) of an AVIF's primary picture, read from
    its item properties (``meta/iprp/ipco``: ``pixi``, ``av1C``, ``colr``). Pillow's AVIF plugin
    gives neither: it decodes 10/12-bit AVIFs (phones' and cameras' HDR photos) to 8 bits and
    says nothing of their transfer (PQ/HLG) or primaries. The first of each box is taken (libavif
    and the phones write the primary picture's first); (8, None) when the file says nothing."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)  # the meta box comes first in AVIFs written for the web and by phones
    except OSError:
        return 8, None

    def boxes(buf: bytes, start: int, end: int):
        i = start
        while i + 8 <= end:
            size, kind = struct.unpack(">I4s", buf[i:i + 8])
            head = 8
            if size == 1 and i + 16 <= end:
                size, head = struct.unpack(">Q", buf[i + 8:i + 16])[0], 16
            elif size == 0:
                size = end - i
            if size < head or i + size > end:
                return
            yield kind, i + head, i + size
            i += size

    bits, nclx = 8, None
    try:
        meta = next(((a, b) for k, a, b in boxes(data, 0, len(data)) if k == b"meta"), None)
        if meta is None:
            return 8, None
        iprp = next(((a, b) for k, a, b in boxes(data, meta[0] + 4, meta[1]) if k == b"iprp"), None)
        ipco = iprp and next(((a, b) for k, a, b in boxes(data, *iprp) if k == b"ipco"), None)
        if not ipco:
            return 8, None
        depth = None
        for kind, a, b in boxes(data, *ipco):
            if kind == b"pixi" and depth is None and b - a >= 6:
                depth = max(data[a + 5:a + 5 + data[a + 4]] or b"\x08")
            elif kind == b"av1C" and depth is None and b - a >= 3:
                high, twelve = (data[a + 2] >> 6) & 1, (data[a + 2] >> 5) & 1
                depth = 12 if high and twelve else 10 if high else 8
            elif kind == b"colr" and nclx is None and data[a:a + 4] == b"nclx" and b - a >= 11:
                prim, trc, mat = struct.unpack(">HHH", data[a + 4:a + 10])
                nclx = {"color_primaries": prim, "transfer_characteristics": trc, "matrix_coefficients": mat,
                        "full_range_flag": data[a + 10] >> 7}
        bits = int(depth or 8)
    except (struct.error, IndexError, ValueError, TypeError):
        return 8, None
    return bits, nclx


def _avif16(path: Path) -> tuple[np.ndarray | None, str | None]:
    """A 10/12-bit AVIF's picture as RGB uint16 on the full 16-bit scale, decoded by FFmpeg
    (its AVIF reader and dav1d keep the depth), or (None, why not)."""
    import av

    from stream_gpen.io._convert import av_to_rgb_numpy
    from stream_gpen.io._meta import ffmpeg_local

    try:
        with av.open(ffmpeg_local(str(path))) as c:
            frame = next(c.decode(video=0))
            return np.ascontiguousarray(av_to_rgb_numpy(frame, high=True)), None
    except (av.FFmpegError, StopIteration, ValueError, IndexError) as e:
        return None, f"FFmpeg could not decode it above 8 bits ({e})"


def _load16(path: Path, fmt: str, orientation: int, upright8: np.ndarray,
            ifd: int = 0, cache: dict | None = None) -> tuple[np.ndarray | None, str | None]:
    """The picture at more than 8 bits as RGB uint16 on the full 16-bit scale ``[H, W, 3]``,
    upright (RGBA ``[H, W, 4]`` when it has an alpha channel), or (None, why not).

    OpenCV decodes 16-bit PNG and TIFF (Pillow cannot hold 16-bit RGB); pillow-heif decodes
    10/12-bit HEIF when asked to keep its depth (codes in the top bits, rescaled here so that
    8-bit ``v`` is ``v * 257`` as everywhere). Whether the decoder has applied the orientation
    itself depends on the format and its version, so the result is compared with the 8-bit
    picture Pillow made upright (``upright8``), as decoded and turned; an odd file (CMYK, a
    palette) that matches neither falls back to 8 bits with a reason. ``ifd``: a multi-page TIFF's
    page (its IFD), read by OpenCV's multi-page decoder; ``cache``: where the file's bytes are kept
    for its other pages (:class:`ImageSource`: read once, not again for every page)."""
    if fmt == "HEIF":
        try:
            import pillow_heif

            hf = pillow_heif.open_heif(str(path), convert_hdr_to_8bit=False)
            bits = int(hf.info.get("bit_depth", 8))
            raw = np.asarray(hf)
        except Exception as e:  # libheif raises its own errors: any of them means "not at 16 bits"
            return None, f"pillow-heif could not decode it above 8 bits ({e})"
        if raw.dtype != np.uint16 or bits <= 8:
            return None, "pillow-heif did not decode it above 8 bits"
        top = (1 << bits) - 1
        codes = raw.astype(np.uint32) >> (16 - bits)
        a = ((codes * 65535 + top // 2) // top).astype(np.uint16)
        rgb = np.repeat(a, 3, axis=2) if a.ndim == 3 and a.shape[2] == 1 else a
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        who = "pillow-heif"
    elif fmt == "AVIF":
        rgb, why = _avif16(path)
        if rgb is None:
            return None, why
        if rgb.dtype != np.uint16:
            return None, "FFmpeg did not decode it above 8 bits"
        who = "FFmpeg"
    else:
        import cv2

        logs = getattr(getattr(cv2, "utils", None), "logging", None)
        before = logs.getLogLevel() if logs is not None else None
        try:
            if logs is not None:  # (a TIFF it cannot take printed OpenCV's own [ERROR] lines, under --quiet)
                logs.setLogLevel(logs.LOG_LEVEL_SILENT)
            data = cache.get("data") if cache is not None else None
            if data is None:
                data = np.fromfile(str(path), dtype=np.uint8)  # imdecode: any path (imread mangles some)
                if cache is not None:
                    cache["data"] = data
            if ifd:
                ok, got = cv2.imdecodemulti(data, cv2.IMREAD_UNCHANGED, range=(ifd, ifd + 1))
                a = got[0] if ok and len(got) == 1 else None
            else:
                a = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        except (cv2.error, OSError, ValueError) as e:
            return None, f"OpenCV could not decode it ({e})"
        finally:
            if logs is not None:
                logs.setLogLevel(before)
        if a is None or a.dtype != np.uint16:
            return None, "OpenCV did not decode it at 16 bits"
        if a.ndim == 2:
            rgb = np.repeat(a[:, :, None], 3, axis=2)
        elif a.ndim == 3 and a.shape[2] in (3, 4):
            rgb = a[..., [2, 1, 0, 3][: a.shape[2]]]  # BGR(A) -> RGB(A)
        else:
            return None, f"OpenCV gave an unexpected layout {a.shape}"
        who = "OpenCV"
    want = upright8[::7, ::7].astype(np.float32)
    for cand in (rgb, _ORIENT.get(orientation, lambda x: x)(rgb)):
        if cand.shape[:2] == upright8.shape[:2] and float(np.abs(cand[::7, ::7, :3] / 257.0 - want).mean()) < 2.0:
            return np.ascontiguousarray(cand), None
    return None, f"its deep pixels as {who} decodes them do not match the picture Pillow sees"


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
    if im.format == "TIFF" and 282 not in getattr(im, "tag_v2", {}):
        # Pillow reports (1, 1) for a TIFF without resolution tags: written back, a 2000-px photo
        # would be 2000 inches wide in layout and print programs. No tag in, none out.
        out.pop("dpi", None)
    if im.format == "TIFF" and getattr(im, "tag_v2", {}).get(317) == 2:
        # horizontal differencing (scanners', Photoshop's "LZW, predictor horizontal"): without
        # it the lossless output came back 1.3-1.5x bigger
        out["predictor"] = 2
    if im.format == "TIFF" and 330 in getattr(im, "tag_v2", {}):
        # (previews, pyramid levels or a full-resolution image kept beside the picture: not
        # written, said as what they are)
        out["subifds"] = _subifd_kinds(path, im.tell(), (int(im.tag_v2.get(256, im.width)),
                                                         int(im.tag_v2.get(257, im.height))))
    nclx = info.get("nclx_profile")  # (an AVIF's: from its own boxes, see _load_checked)
    if isinstance(nclx, dict) and "color_primaries" in nclx:
        # HEIF's colour description without an ICC profile (iPhones: Display P3 as nclx)
        out["nclx_profile"] = {k: int(nclx[k]) for k in ("color_primaries", "transfer_characteristics",
                                                          "matrix_coefficients", "full_range_flag") if k in nclx}
    if im.format == "PNG":
        text = getattr(im, "text", None) or {}
        if text:
            out["text"] = dict(text)
        colour = _png_colour_chunks(path)
        if colour:
            out["png_colour"] = colour
    if im.format in ("JPEG", "MPO"):  # (MPO: a camera JPEG with an MPF preview, Ultra HDR: a JPEG)
        from PIL import JpegImagePlugin

        sampling = JpegImagePlugin.get_sampling(im)
        if sampling in (0, 1, 2):
            out["subsampling"] = sampling
        tables = getattr(im, "quantization", None)
        if tables:  # (kept where no quality is asked for: see ImageSink._jpeg_tables)
            out["qtables"] = [list(tables[k]) for k in sorted(tables)]
    if im.format in ("JPEG", "MPO"):
        try:
            data = path.read_bytes()  # once, for IPTC, the gain map and the trailer
        except OSError:
            data = b""
        irb = jpeg_app13(data)  # (APP13: IPTC captions, keywords, copyright; Pillow writes none back)
        if irb is not None:
            out["photoshop_irb"] = irb
        if im.format == "MPO" or (im.format == "JPEG" and im.info.get("mp")):
            # (Pillow opens an Ultra HDR JPEG whose XMP says hdrgm:Version as a plain JPEG, not as
            # an MPO: a phone's real one; its MPF index is read here then)
            out.update(_read_gain_map(im, data))
        if im.format == "JPEG" or "gain_map" in out:
            trailer = _jpeg_trailer(data, out.get("gain_map_end"))
            if trailer:
                out["trailer"] = trailer
        out.pop("gain_map_end", None)
    if im.format == "HEIF" and _heif_gain_map(info):
        out["heif_gain_map"] = True
    if im.format == "WEBP":
        out["lossless"] = _webp_is_lossless(path)
    exif, stale = carried_exif(im, path)
    irb = tiff_iptc_resources(_tiff_tag_bytes(im, 33723)) if im.format == "TIFF" else None
    if irb is not None:
        # a TIFF's IPTC (tag 33723) goes where the output keeps IPTC (a JPEG's APP13, a TIFF's
        # 33723), as a JPEG's does: carried in the EXIF block, a JPEG had it there alone, where
        # photo apps do not look, and other formats lost it unsaid
        out["photoshop_irb"] = irb
        exif = _without_tag(exif, 33723)
    if exif is not None:
        out["exif"] = exif
    if stale:
        out["stale_tags"] = stale
    return out


def _subifd_kinds(path, page: int, size: tuple[int, int]) -> dict:
    """What the SubIFDs of a TIFF's IFD ``page`` (whose picture, as stored, is ``size``) hold:
    ``{"previews": n, "smaller": n, "full": [(w, h), ...]}``: reduced-resolution previews
    (NewSubfileType bit 0, smaller than the picture), other smaller images, and images at least
    as large as the picture (the raw image of a DNG-like file whose IFD0 is its preview: not a
    preview of anything). ``{}`` where they cannot be read (said as SubIFDs, nothing more)."""
    try:
        import tifffile

        with _tifffile_hushed(), tifffile.TiffFile(path if hasattr(path, "read") else str(path)) as t:
            subs = [(int(q.imagewidth), int(q.imagelength), int(q.subfiletype or 0) & 1)
                    for q in t.pages[page].pages]
    except Exception:  # noqa: BLE001 - tifffile's own errors: the SubIFDs are then only said to be there
        return {}
    kinds: dict = {"previews": 0, "smaller": 0, "full": []}
    for w, h, reduced in subs:
        if w * h >= size[0] * size[1]:
            kinds["full"].append((w, h))
        elif reduced:
            kinds["previews"] += 1
        else:
            kinds["smaller"] += 1
    return kinds


def _subifd_note(kinds) -> str:
    """The sink's note for a TIFF's SubIFDs it does not write (see :func:`_subifd_kinds`)."""
    if not isinstance(kinds, dict) or not kinds:
        return "the input's TIFF SubIFDs (further images kept beside the picture) were dropped: the TIFF writer here makes none"
    held = []
    if kinds.get("full"):
        held.append("full-resolution images, not restored")
    if kinds.get("previews"):
        held.append("reduced-resolution previews")
    if kinds.get("smaller"):
        held.append("smaller images")
    return (f"the input's TIFF SubIFDs ({' and '.join(held) or 'empty'} kept beside the picture) were dropped: the TIFF "
            "writer here makes none")


def icc_space(icc: bytes) -> str:
    """The colour space an ICC profile describes ("RGB", "GRAY", "CMYK"...: its header's field)."""
    return bytes(icc[16:20]).decode("ascii", "replace").strip()


def icc_describes(icc: bytes, *, grey: bool) -> bool:
    """The profile describes the pixels written: RGB ones, or grey ones (a CMYK JPEG's profile
    would mis-colour the RGB picture it is decoded to)."""
    return icc_space(icc) == ("GRAY" if grey else "RGB")


_EXIF_ERRORS = (OSError, ValueError, SyntaxError, KeyError, TypeError, struct.error)


def carried_exif(im, path) -> tuple[bytes | None, list[int]]:
    """The EXIF block written with the restored picture, read from ``im`` as opened (before it
    is turned upright): orientation set to 1 (the pixels are upright), a TIFF's layout tags left
    out (its "EXIF" is its whole first IFD; layout, compression and profile are written anew), and
    the tags that hold a copy of the original picture (:data:`_STALE_TAGS`) left out.
    -> (the block or ``None``, the stale tags left out). A block Pillow cannot read or re-encode
    (a malformed maker note, a tag of the wrong type) is not carried, with a warning."""
    try:
        own = im.getexif()  # (copied: the image's own Exif object is what exif_transpose reads next)
        if not own:
            return None, []
        from PIL import Image

        exif = Image.Exif()
        # (a BigTIFF's: Pillow serialises it behind a BigTIFF header that its own reader cannot
        # parse, "unpack requires a buffer of 8 bytes", and Artist, Copyright, DateTime,
        # ImageDescription and Software were lost; the block written is a classic one anyway)
        big, own.bigtiff = own.bigtiff, False
        try:
            exif.load(own.tobytes())
        finally:
            own.bigtiff = big
    except _EXIF_ERRORS as e:
        log.warning("%s: its EXIF block could not be read and is not carried over: %s", path, e)
        return None, []
    stale = sorted(t for t in exif if t in _STALE_TAGS)
    if not stale and im.format != "TIFF":
        # only the orientation to reset: patched in the file's own bytes, which keep each
        # entry's type and the MakerNote where it was (see _patched_exif)
        patched = _patched_exif(im.info.get("exif"), {0x0112: 1} if exif.get(0x0112, 1) != 1 else {}, {},
                                tags=len(exif))
        if patched is not None:
            return patched, stale
    for tag in [t for t in exif if t in _STALE_TAGS or (im.format == "TIFF" and t in _TIFF_LAYOUT_TAGS)]:
        del exif[tag]
    if not exif:
        return None, stale
    if 0x0112 in exif:
        exif[0x0112] = 1
    try:
        return exif.tobytes(), stale
    except _EXIF_ERRORS as e:
        log.warning("%s: its EXIF block could not be re-encoded and is not carried over: %s", path, e)
        return None, stale


# --- Ultra HDR / gain-map JPEGs --------------------------------------------------------------
# Phones (Android's Ultra HDR, Adobe's gain map spec) store an HDR photo as an ordinary JPEG plus a
# small "gain map" JPEG behind it, indexed by an MPF (CIPA DC-007) segment of the first: HDR
# screens brighten the picture by the map, SDR screens show the first JPEG. The map is carried
# over byte for byte (its own XMP holds the gain parameters, and the primary's XMP its length), the
# restored primary gets a new MPF segment pointing at it. The map was made for the original
# picture: a restored face is brightened as the original face was.
_ISO_GAIN_MAP = b"urn:iso:std:iso:ts:21496:-1\x00"


def _heif_gain_map(info: dict) -> bool:
    """An iPhone HDR photo: its HEIC holds an HDR gain map as an auxiliary image (pillow-heif lists
    auxiliary images by type in ``info["aux"]``). pillow-heif cannot write one back."""
    return any("hdrgainmap" in str(kind).lower() for kind in (info.get("aux") or {}))


def _jpeg_segments(data: bytes):
    """(offset, marker, whole segment) of the APPn/COM segments after SOI, up to the first other."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF and (0xE0 <= data[i + 1] <= 0xEF or data[i + 1] == 0xFE):
        n = int.from_bytes(data[i + 2 : i + 4], "big")
        yield i, data[i + 1], data[i : i + 2 + n]
        i += 2 + n


def _read_gain_map(im, data: bytes) -> dict:
    """``{"gain_map": bytes, "gain_map_iso": APP2 segment}`` of an MPO JPEG whose primary XMP names
    an HDR gain map (``hdrgm``); ``{}`` for other MPOs (stereo pairs) or anything unexpected."""
    xmp = im.info.get("xmp") or b""
    if (b"hdrgm" if isinstance(xmp, bytes) else "hdrgm") not in xmp:
        return {}
    try:
        mpinfo = getattr(im, "mpinfo", None)
        if mpinfo is None:
            mpinfo = im._getmp()  # (a JpegImageFile: Pillow's own MPF reader, as it reads an MPO's)
        entries = mpinfo[0xB002]
        mpf = next(off for off, marker, seg in _jpeg_segments(data) if marker == 0xE2 and seg[4:8] == b"MPF\x00")
        tiff = mpf + 8
        start, size = tiff + int(entries[1]["DataOffset"]), int(entries[1]["Size"])
    except (AttributeError, KeyError, IndexError, TypeError, ValueError, StopIteration):
        return {}
    gain = data[start : start + size]
    if len(gain) != size or gain[:2] != b"\xff\xd8":
        return {}
    out = {"gain_map": gain, "gain_map_end": start + size}
    iso = next((seg for _, marker, seg in _jpeg_segments(data) if marker == 0xE2 and seg[4:4 + len(_ISO_GAIN_MAP)]
                == _ISO_GAIN_MAP), None)
    if iso is not None:
        out["gain_map_iso"] = iso
    return out


def _jpeg_end(data: bytes) -> int | None:
    """Offset just past the EOI of the JPEG at the start of ``data`` (markers and their lengths,
    entropy-coded data after each SOS up to the next marker), or ``None`` if it is malformed."""
    i = 2
    while i + 2 <= len(data):
        if data[i] != 0xFF:
            return None
        m = data[i + 1]
        if m == 0xFF:  # fill byte
            i += 1
            continue
        if m == 0xD9:
            return i + 2
        if m == 0x01 or 0xD0 <= m <= 0xD7:
            i += 2
            continue
        if i + 4 > len(data):
            return None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if m == 0xDA:  # scan data: up to the next marker that is not a stuffed 0xFF00 or a restart
            while True:
                j = data.find(b"\xff", i)
                if j < 0 or j + 1 >= len(data):
                    return None
                nxt = data[j + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    i = j + 1 if nxt == 0xFF else j + 2
                    continue
                i = j
                break
    return None


def _jpeg_trailer(data: bytes, after: int | None = None) -> bytes:
    """What a JPEG file holds after its picture(s): the video of a phone's motion photo (Pixel's
    MotionPhoto / MicroVideo, Samsung's trailer), camera or drone data. ``after``: where the last
    picture ends when an MPF index says (the gain map's end), else the primary's EOI. These
    formats find their part from the end of the file, so it is written back the same way."""
    end = after if after is not None else _jpeg_end(data)
    if end is None or end >= len(data):
        return b""
    tail = data[end:]
    return tail if tail.strip(b"\x00\xff") else b""  # padding alone is not worth keeping


def _with_gain_map(primary: bytes, gain: bytes, iso: bytes | None) -> bytes:
    """``primary`` (a JPEG) + an MPF segment (and the ISO 21496-1 version segment) after its APPn
    segments + ``gain`` after its end: a two-picture MPO as Ultra HDR writes it."""
    import struct

    pos = 2
    for off, _, seg in _jpeg_segments(primary):
        pos = off + len(seg)
    iso = iso or b""
    n_ifd = 3
    entries_at = 8 + 2 + 12 * n_ifd + 4
    mpf_len = 2 + 2 + 4 + entries_at + 32  # marker, length, "MPF\0", TIFF header + IFD, 2 entries
    total = len(primary) + len(iso) + mpf_len
    tiff_at = pos + len(iso) + 8  # where the MPF offsets count from
    body = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", n_ifd)
    body += struct.pack("<HHI4s", 0xB000, 7, 4, b"0100")
    body += struct.pack("<HHII", 0xB001, 4, 1, 2)
    body += struct.pack("<HHII", 0xB002, 7, 32, entries_at)
    body += struct.pack("<I", 0)
    body += struct.pack("<IIIHH", 0x20030000, total, 0, 0, 0)  # representative, baseline MP primary
    body += struct.pack("<IIIHH", 0, len(gain), total - tiff_at, 0, 0)
    seg = b"\xff\xe2" + struct.pack(">H", 2 + 4 + len(body)) + b"MPF\x00" + body
    assert len(seg) == mpf_len
    return primary[:pos] + iso + seg + primary[pos:] + gain


_TURNS = {2: ["FLIP_LEFT_RIGHT"], 3: ["ROTATE_180"], 4: ["FLIP_TOP_BOTTOM"], 5: ["TRANSPOSE"], 6: ["ROTATE_270"],
          7: ["TRANSVERSE"], 8: ["ROTATE_90"]}


def _turned_gain_map(gain: bytes, orientation: int) -> bytes:
    """The gain-map JPEG turned as its photo is turned upright (EXIF ``orientation``): the map is
    applied over the primary's stored pixel grid, and a primary written upright with the map left
    sideways had its HDR brightening land on the wrong pixels. Its pixels are encoded again (q95,
    as smooth as a gain map is); its own APPn segments (hdrgm XMP, the ISO 21496-1 metadata, ICC)
    are carried over as they were. Unreadable: given back as it is."""
    import io

    from PIL import Image

    if orientation not in _TURNS:
        return gain
    try:
        with Image.open(io.BytesIO(gain)) as g:
            g.load()
            turned = g
            for step in _TURNS[orientation]:
                turned = turned.transpose(getattr(Image.Transpose, step))
            buf = io.BytesIO()
            turned.save(buf, format="JPEG", quality=95)
    except Exception:  # noqa: BLE001 - a map Pillow cannot read: kept as it was
        log.debug("gain map not turned: unreadable", exc_info=True)
        return gain
    new = buf.getvalue()
    own = b"".join(seg for _, marker, seg in _jpeg_segments(gain) if marker != 0xE0)
    pos = 2
    for off, _, seg in _jpeg_segments(new):
        pos = off + len(seg)  # (after Pillow's JFIF APP0)
    return new[:pos] + own + new[pos:]


def _webp_is_lossless(path) -> bool:
    """True if the WebP's pictures (a file's, or ``bytes``) are VP8L (lossless); Pillow does not say. An animation keeps
    each frame's bitstream inside its ANMF chunk (after the frame's 16-byte header and any ALPH
    chunk), not at the top level: a lossless 2-frame animation read as lossy was rewritten lossy
    (105 KB -> 34 KB). An animation is lossless when every frame is (a mixed one, gif2webp's
    ``-mixed``, is written lossy as before)."""
    try:
        with _opened(bytes(path) if isinstance(path, bytearray) else path) as f:
            if f.read(12)[8:12] != b"WEBP":
                return False
            frames = 0
            while True:  # RIFF chunks: fourcc, little-endian size, payload padded to even
                head = f.read(8)
                if len(head) < 8:
                    return frames > 0
                size = int.from_bytes(head[4:], "little")
                if head[:4] in (b"VP8L", b"VP8 "):
                    return head[:4] == b"VP8L"
                if head[:4] == b"ANMF":
                    payload = f.read(size + (size & 1))
                    if _anmf_bitstream(payload) != b"VP8L":
                        return False
                    frames += 1
                    continue
                f.seek(size + (size & 1), 1)
    except OSError:
        return False


def _anmf_bitstream(payload: bytes) -> bytes | None:
    """The fourcc of the image bitstream (``VP8L`` or ``VP8 ``) in an ANMF chunk's payload: its
    sub-chunks follow the 16-byte frame header, an ALPH (a lossy frame's alpha) first if any."""
    i = 16
    while i + 8 <= len(payload):
        kind, size = payload[i : i + 4], int.from_bytes(payload[i + 4 : i + 8], "little")
        if kind in (b"VP8L", b"VP8 "):
            return kind
        i += 8 + size + (size & 1)
    return None


def frame_count(im) -> int:
    """Pillow's ``n_frames`` of an open picture (1 for a one-picture format). A multi-page file
    whose later IFD is cut off or damaged is a ``ValueError`` naming the page, as the other
    damaged files are: Pillow raised TypeError "Missing dimensions" for a 3-page LZW TIFF cut at
    80%, which ended the run as an internal error ("please report it", exit 1)."""
    try:
        return getattr(im, "n_frames", 1)
    except (TypeError, KeyError, EOFError, struct.error) as e:
        raise ValueError(f"page {im.tell() + 1} is damaged or cut off ({e}): the file was probably not copied "
                         "whole") from e


def tiff_pages(im) -> tuple[list[int], list[tuple[int, tuple[int, int], tuple[int, int]]]]:
    """(the IFDs of an open TIFF's full-resolution pages, its reduced-resolution previews as
    (page they follow, their size, that page's size, both as stored)); every frame a page, and no
    preview, for other formats.

    Scanners, cameras and editors store a small preview of the picture as a second IFD marked
    NewSubfileType bit 0 (OldSubfileType 2): it is the same picture again, not a page of its own,
    so it is neither counted nor restored as one. (Pillow does not follow SubIFDs, where
    pyramid writers keep theirs.) A file with no full-resolution IFD at all keeps every IFD a page."""
    n = frame_count(im)
    if im.format != "TIFF" or n == 1:
        return list(range(n)), []
    here = im.tell()
    pages: list[int] = []
    reduced: list[tuple[int, tuple[int, int]]] = []
    sizes: dict[int, tuple[int, int]] = {}
    try:
        for k in range(n):
            im.seek(k)
            tags = im.tag_v2
            # (as stored: Pillow's size is turned by the IFD's orientation, the pixels by _upright)
            sizes[k] = int(tags.get(256, im.width)), int(tags.get(257, im.height))
            if int(tags.get(254, 0) or 0) & 1 or tags.get(255) == 2:
                reduced.append((k, sizes[k]))
            else:
                pages.append(k)
    except (OSError, EOFError, ValueError, SyntaxError, TypeError):
        return list(range(n)), []  # (a damaged IFD: the pages are read, and complained of, as before)
    finally:
        im.seek(here)
    if not pages or not reduced:
        return list(range(n)), []
    previews = []
    for k, size in reduced:
        # (a preview follows the page it shows; one stored before every page goes with the first)
        after = max([pos for pos, ifd in enumerate(pages) if ifd < k], default=0)
        previews.append((after, size, sizes[pages[after]]))
    return pages, previews


def _load(path: Path, notes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray | None, bool, dict,
                                                              np.ndarray | None]:
    """-> (RGB uint8 [H, W, 3], alpha or None, the file was greyscale, image info, the picture
    at 16 bits or None); ``notes`` collects what was not carried over (for the run summary).

    A 16-bit PNG or TIFF (scans, raw developers' exports) also gives its pixels as RGB uint16
    (the frame's ``hi``): faces are restored into it and the sink writes 16 bits back, so the
    rest of the picture keeps every level. The 8-bit picture is then ``round(hi / 257)``."""
    if not path.exists():
        raise MediaNotFoundError(f"image not found: {path}",
                                 hint=PATH_HINT)
    if path.stat().st_size == 0:
        raise EmptyMediaError(f"image is empty (0 bytes): {path}", hint="the file was probably not fully written or copied")
    # a DNG named .tif (Pillow read its IFD0, the small preview, as the picture), a JPEG XL named .jpg
    unread = unread_error(path)
    if unread is not None:
        raise unread
    _heif_plugin(path)
    # Pillow says what it finds wrong in a file ("Corrupt EXIF data", a truncated chunk) through
    # Python's warnings, which print as a source line of Pillow's: say it as ours, naming the file.
    # (Only Pillow's: another thread's warnings, raised meanwhile, go back to the host.)
    said: list = []
    try:
        with warnings_of("PIL", "pillow_heif", into=said):
            return _load_checked(path, notes)
    finally:
        for w in dict.fromkeys(str(w.message).strip() for w in said):
            log.warning("%s: %s", path, w)


def _eoi_restored(path):
    """A JPEG (a file, or ``bytes``: an upload) that is whole but for its final EOI marker, as a
    file object with the marker put back; None for any other file (read as it is). Pillow refused one ("image file is truncated
    (1 bytes not processed)") that it decodes pixel for pixel as the original with the 2 bytes
    back. One whose scan data is cut short too stays refused: decoded with the marker right
    after its data and again with filler bytes before it, its last blocks differ (the filler is
    read as picture data), where a whole scan stops before the filler (libjpeg skips it)."""

    from PIL import Image

    try:
        with _opened(path) as f:
            if f.read(3) != b"\xff\xd8\xff":
                return None
            f.seek(-2, 2)
            if f.read(2) == b"\xff\xd9":
                return None
        data = path if isinstance(path, bytes) else path.read_bytes()
    except OSError:
        return None
    if _jpeg_end(data) is not None:  # (an EOI inside: a motion photo's video or camera data after it)
        return None
    pictures = []
    try:
        for filler in (b"", b"\xa5" * 16):
            with Image.open(io.BytesIO(data + filler + b"\xff\xd9")) as im:
                im.load()
                pictures.append(np.asarray(im))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    if not np.array_equal(*pictures):
        return None
    return io.BytesIO(data + b"\xff\xd9"), ("its JPEG end marker (the last 2 bytes) is missing; the picture before it "
                                             "is whole and is read")


# APNG's animation chunks are ancillary by name, but the frames are in them: never left out
_APNG_CHUNKS = (b"acTL", b"fcTL", b"fdAT")


def _opened(src):
    """``src`` (a path, or ``bytes``) as a binary file object."""
    return io.BytesIO(src) if isinstance(src, bytes) else open(src, "rb")


class _DamagedPNG(ValueError):
    """A PNG whose picture chunk (IHDR, PLTE, IDAT, IEND, an APNG's fcTL/fdAT...) fails its
    checksum; ``str``: which one, in words."""


def _png_repaired(path, *, critical: bool = True):
    """A PNG (a file, or ``bytes``) whose ancillary chunks (optional ones: text, time, colour...) fail their checksum,
    as a file object without them, and what was left out; None for any other file. Pillow
    refused the whole picture ("cannot identify image file") for a bad CRC on a tEXt chunk,
    which libpng reads past with a warning.

    ``critical``: the picture's own chunks (IHDR, PLTE, IDAT, IEND, APNG's acTL/fcTL/fdAT) are
    checked too, and one that fails raises :class:`_DamagedPNG`: Pillow checks no IDAT's CRC (nor
    fdAT's), so a copy with damaged picture data was restored and written without a word, a
    flipped bit that still inflates included (zlib's own check sum comes only at the stream's
    end, and a broken stream may stop before it). Read a chunk at a time; a chunk the file ends
    inside is left to :func:`_cut_short`."""
    import zlib

    bad: list[tuple[int, int, str]] = []
    try:
        with _opened(path) as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            while True:
                at, head = f.tell(), f.read(8)
                if len(head) < 8:
                    break
                n, kind = struct.unpack(">I4s", head)
                if not kind[0] & 0x20 or kind in _APNG_CHUNKS:
                    if critical:
                        crc, left = zlib.crc32(kind), n
                        while left:  # (in pieces: one IDAT may hold the whole picture)
                            piece = f.read(min(left, 1 << 22))
                            if not piece:
                                break
                            crc, left = zlib.crc32(piece, crc), left - len(piece)
                        tail = f.read(4)
                        if left or len(tail) < 4:
                            break  # (cut off: _cut_short says so)
                        if crc != int.from_bytes(tail, "big"):
                            name = kind.decode("latin-1")
                            what = ", the picture data," if kind in (b"IDAT", b"fdAT") else ""
                            raise _DamagedPNG(f"its {name} chunk{what} fails its checksum")
                    else:
                        f.seek(n + 4, 1)
                    if kind == b"IEND":
                        break
                    continue
                body = f.read(n + 4)
                if len(body) < n + 4:
                    break
                if zlib.crc32(kind + body[:n]) != int.from_bytes(body[n:], "big"):
                    bad.append((at, at + 12 + n, kind.decode("latin-1")))
        if not bad:
            return None
        data = path if isinstance(path, bytes) else path.read_bytes()
    except OSError:
        return None
    kept, pos = [], 0
    for start, end, _ in bad:
        kept.append(data[pos:start])
        pos = end
    kept.append(data[pos:])
    names = ", ".join(dict.fromkeys(kind for _, _, kind in bad))
    some = ("chunks failed their checksum (damaged) and were" if len(bad) > 1
            else "chunk failed its checksum (damaged) and was")
    return io.BytesIO(b"".join(kept)), f"its optional {names} {some} left out; the picture itself is read"


def _png_checked(path):
    """:func:`_png_repaired` for a file, its damaged picture chunk said as the run says a photo
    cut off or damaged (exit 2, with the hint to copy it again)."""
    try:
        return _png_repaired(path)
    except _DamagedPNG as e:
        raise NotMediaError(f"cannot read {path}: a PNG that is cut off or damaged ({e})", hint=_CUT_HINT) from None


def _load_checked(path: Path, notes: list[str] | None):
    from PIL import Image, UnidentifiedImageError

    # a JPEG without its end marker, a PNG with a damaged optional chunk: read repaired, said
    repaired = _eoi_restored(path) or _png_checked(path)
    if repaired is not None:
        msg = f"{path}: {repaired[1]}"
        log.warning(msg)
        if notes is not None:
            notes.append(msg)
    try:
        with Image.open(repaired[0] if repaired is not None else path) as im:
            ifds, previews = tiff_pages(im)
            frames = len(ifds)
            if im.format == "HEIF" and im.tell():
                # pillow-heif opens on the primary picture, which need not be the first (that came
                # twice, and the first never): it is read first, and stays the primary when written
                # (the one a one-picture format keeps), the others after it in their order
                ifds = [im.tell()] + [k for k in ifds if k != im.tell()]
            if ifds[0]:
                im.seek(ifds[0])  # (a preview stored first: the picture is the first full page)
            avif_bits = 8
            if im.format == "AVIF":  # Pillow's AVIF plugin gives neither depth nor colour description
                avif_bits, nclx = _avif_properties(path)
                if nclx and not im.info.get("nclx_profile"):
                    im.info["nclx_profile"] = nclx
            image_info = read_image_info(im, path)
            if repaired is not None:
                image_info["repaired"] = True  # (not copied as it is when no face is found: encoded whole)
            msg = None
            if frames > 1 and "gain_map" in image_info:
                # phones' Ultra HDR JPEG: the gain map goes back into JPEG output (the sink says
                # when another format drops it)
                log.info("%s: HDR gain-map JPEG: the main photo is restored, the gain map kept for JPEG output", path)
            elif frames > 1 and im.format == "MPO":
                # a camera's large preview, a stereo pair, or an HDR gain map that could not be
                # read: the main photo alone is restored; said by the sink where it is written
                # alone (a photo with no face, copied whole as JPEG, keeps them all)
                image_info["mpo_pictures"] = frames
            elif frames > 1:
                # Animated PNG/WebP/AVIF, a multi-page TIFF (a scanned album) or a HEIF's pictures:
                # every page is restored (ImageSource gives one frame each) and the sink writes them
                # all into one file
                im.load()  # (a WebP frame's duration is known once it is decoded)
                image_info.update(frames=frames, page=0, duration=im.info.get("duration"))
                if ifds != list(range(frames)):
                    image_info["ifds"] = ifds  # (the pages' IFDs, previews left out)
                if im.info.get("loop") is not None:
                    image_info["loop"] = im.info["loop"]
                if im.format == "PNG" and im.info.get("default_image"):
                    # an APNG whose first picture (IDAT before the first fcTL) is its cover, shown
                    # where animation is not, and no frame of the animation: restored as a page (it
                    # may hold faces) and written back as the cover (it came back as an extra frame)
                    image_info["default_image"] = True
                log.info("%s: %d %s, each restored", path, frames, "pages" if im.format == "TIFF" else "frames")
            if previews:
                # written again, from the restored pages, by a TIFF sink (see ImageSink.write)
                image_info["previews"] = previews
            larger = [wh for wh in (image_info.get("subifds") or {}).get("full", ())
                      if wh[0] * wh[1] > im.width * im.height]
            if larger and msg is None:
                # (a DNG-like layout: IFD0 a small preview, the picture in a SubIFD, which Pillow
                # does not follow; a DNG itself is refused before this, see _unread)
                msg = (f"{path}: only its {im.width}x{im.height} picture is restored: the larger {larger[0][0]}x"
                       f"{larger[0][1]} image kept in a TIFF SubIFD is not read here")
            if msg is not None:
                log.warning(msg)
                if notes is not None:
                    notes.append(msg)
            bits = (_bits_per_sample(im, path) if im.format in ("PNG", "TIFF")
                    else int(im.info.get("bit_depth", 8) or 8) if im.format == "HEIF"
                    else avif_bits)
            if im.mode == "CMYK":  # (written back as RGB: said, not silent)
                cmyk = f"{path}: a CMYK picture: restored and written as RGB (Pillow's conversion)"
                log.warning(cmyk)
                if notes is not None:
                    notes.append(cmyk)
            orientation = _orientation(im, path)
            image_info["orientation"] = orientation
            rgb, alpha, grey = _pixels(_upright(im, orientation, path), bits, signed=_signed(im))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise unreadable_image(path, e) from e
    except Image.DecompressionBombError as e:
        raise InvalidInputError(f"{path} is too large to load safely: {e}", hint=_BOMB_HINT) from e
    if bits > 8 and "frames" in image_info and image_info.get("format") != "TIFF":
        # (a multi-page TIFF's pages are read at 16 bits one by one: OpenCV or tifffile read any page)
        msg = (f"{path}: its {bits}-bit frames are restored and written at 8 bits (one at a time, as Pillow "
               "reads them; a multi-page TIFF's pages keep 16)")
        log.warning(msg)
        if notes is not None:
            notes.append(msg)
        return rgb, alpha, grey, image_info, None
    rgb, alpha, grey, hi = _deeper(path, image_info, bits, orientation, rgb, alpha, grey, notes,
                                   ifd=ifds[0] if image_info.get("format") == "TIFF" else 0)
    return rgb, alpha, grey, image_info, hi


def _deeper(path: Path, image_info: dict, bits: int, orientation: int, rgb: np.ndarray, alpha: np.ndarray | None,
            grey: bool, notes: list[str] | None, *, ifd: int = 0, page: int = 0, cache: dict | None = None):
    """-> (rgb, alpha, grey, the picture at 16 bits or None) of a picture of ``bits`` per sample whose
    8-bit ``rgb``, ``alpha`` and ``grey`` Pillow gave: its deep pixels read where there are any and
    they can be (``image_info`` gets its ``bits``, or ``deep32``), else what was given, said.
    ``ifd``: the TIFF page's IFD, ``page``: its number (a multi-page TIFF's later pages: :func:`_load_page`),
    ``cache``: :func:`_load16`'s."""
    if bits <= 8:
        return rgb, alpha, grey, None
    which = f"{path}: page {page + 1}" if page else f"{path}"
    odd = _odd_deep_tiff(path, orientation, ifd) if image_info.get("format") == "TIFF" else None
    if odd is not None:
        # a layout neither Pillow nor OpenCV decode right at 16 bits (hunt 17): tifffile's pixels
        # are the picture, at 8 bits too (Pillow's was scrambled, or a negative)
        hi, grey_odd = odd
        if hi.shape[2] == 4:
            alpha = u8_from_u16(hi[..., 3])
        image_info["bits"] = bits
        return u8_from_u16(hi[..., :3]), alpha, grey or grey_odd, hi
    if image_info.get("mode") == "CMYK":  # (said as such above; OpenCV's refusal named no reason)
        hi, why = None, "a CMYK picture is restored as RGB, from Pillow's 8-bit conversion"
    elif bits == 32 and image_info.get("mode") in ("I", "F"):
        # 32-bit grey (float: HDR/scientific exports; integer): 8 bits are all there is for it
        # (no 16-bit reading either). Said by the sink when it writes it: a photo without a
        # face is copied as it is, and was said to be "written at 8 bits" (the note blamed OpenCV)
        image_info["deep32"] = "floating-point" if image_info["mode"] == "F" else "integer"
        return rgb, alpha, grey, None
    else:
        hi, why = _load16(path, image_info.get("format") or "", orientation, rgb, ifd=ifd, cache=cache)
    if hi is None:
        msg = f"{which}: its {bits}-bit pixels are restored and written at 8 bits: {why}"
        log.warning(msg)
        if notes is not None:
            notes.append(msg)
        return rgb, alpha, grey, None
    if alpha is not None and hi.shape[2] == 3 and image_info.get("mode", "").startswith("I"):
        # a 16-bit grey PNG's colour key (OpenCV leaves it out): all or nothing, so exact at 16
        # bits too (the sink said an 8-bit alpha was "kept at 8 bits")
        hi = np.concatenate([hi, alpha.astype(np.uint16)[..., None] * 257], axis=2)
    image_info["bits"] = bits  # what a deep writer keeps (HEIF: 10 or 12)
    return u8_from_u16(hi[..., :3]), alpha, grey, hi


def _odd_deep_tiff(path: Path, orientation: int, ifd: int = 0) -> tuple[np.ndarray, bool] | None:
    """A deep (16-bit) TIFF's page (its IFD ``ifd``) as RGB(A) uint16, upright, read with tifffile, where its
    layout is one the other decoders get wrong, with whether it is grey; None for any other TIFF.
    Separate colour planes (PlanarConfiguration 2: scanner drivers, ImageMagick ``-interlace
    plane``): Pillow's raw decoder scrambled the picture (73 grey levels off) and OpenCV's too.
    WhiteIsZero grey (PhotometricInterpretation 0): neither inverts it above 8 bits, and a scan
    came out as a negative."""
    try:
        import tifffile

        with _tifffile_hushed(), tifffile.TiffFile(str(path)) as t:
            page = t.pages[ifd]
            planar = int(page.planarconfig) == 2 and int(page.samplesperpixel) > 1
            white_is_zero = int(page.photometric) == 0
            if not (planar or white_is_zero) or page.dtype != np.uint16 or int(page.photometric) not in (0, 1, 2):
                return None
            a = page.asarray()
    except Exception:  # noqa: BLE001 - tifffile's own errors: left to the usual decoders
        return None
    if a.ndim == 3 and planar and a.shape[0] == page.samplesperpixel:
        a = np.moveaxis(a, 0, -1)  # (planes first as stored)
    if a.ndim == 2:
        a = a[:, :, None]
    if white_is_zero:
        a = 65535 - a
    if a.shape[2] in (1, 2):  # grey (+ alpha)
        a = np.concatenate([np.repeat(a[..., :1], 3, axis=2), a[..., 1:]], axis=2)
    if a.shape[2] not in (3, 4):
        return None
    a = _ORIENT.get(orientation, lambda x: x)(a)
    return np.ascontiguousarray(a.astype(np.uint16)), int(page.photometric) in (0, 1)


def video_in_disguise(path) -> str | None:
    """A hint for a picture Pillow cannot identify that is a video under a picture's name (a clip a
    messenger or a phone's share sheet saved as .jpg): "it is an MP4 video: rename it to .mp4";
    None where FFmpeg does not find a video in it either, and for HEIF/AVIF (FFmpeg reads a damaged
    one as a QuickTime file with a video stream: it is a photo)."""
    import av

    if Path(path).suffix.lower() in (".heic", ".heif", ".hif", ".avif"):
        return None
    try:
        with av.open(str(path)) as c:
            name = c.format.name or ""
            if not c.streams.video or "image2" in name or name.endswith("_pipe") or name in ("gif", "webp", "apng"):
                return None
            exts = sorted(getattr(c.format, "extensions", None) or ())
            long = (c.format.long_name or name).split("/")[0].strip()
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return None
    ext = next((e for e in ("mp4", "mkv", "mov", "webm", "avi", "ts") if e in exts), exts[0] if exts else None)
    return f"it is a video ({long}) under a picture's name" + (f": rename it to .{ext}" if ext else "")


class _ThreadsHushed(logging.Filter):
    """Drops the records of the threads in :attr:`threads` (thread id -> how many hushes are open)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: dict[int, int] = {}
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in self.threads


_TIFFFILE_HUSHED = _ThreadsHushed()


@contextlib.contextmanager
def _tifffile_hushed():
    """tifffile's log records kept off stderr while this thread reads a file with it (which it does
    only to learn what Pillow did not say; its errors are caught and said in the run's words):
    with no handler of its own, Python's last resort printed them, "<tifffile.TiffPages @1055220>
    invalid offset to first page 1055220", even under --quiet. Other threads' records, and the
    logging set-up once it is done, are as they were."""
    logger, me, hush = logging.getLogger("tifffile"), threading.get_ident(), _TIFFFILE_HUSHED
    with hush.lock:
        hush.threads[me] = hush.threads.get(me, 0) + 1
        logger.addFilter(hush)  # (once: a filter already there is not added again)
    try:
        yield
    finally:
        with hush.lock:
            hush.threads[me] -= 1
            if not hush.threads[me]:
                del hush.threads[me]
            if not hush.threads:
                logger.removeFilter(hush)


def _tiff_header(path) -> bool:
    """``path`` (a path or a file object) begins as a TIFF or BigTIFF does."""
    try:
        if hasattr(path, "read"):
            at = path.tell()
            head = path.read(4)
            path.seek(at)
        else:
            with open(path, "rb") as f:
                head = f.read(4)
    except OSError:
        return False
    return head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


#: what a photo cut off (a copy or download stopped short) or damaged is told to do
_CUT_HINT = "the file was probably not copied or saved whole: copy it again from its source"


def unreadable_image(path: Path, e: BaseException) -> NotMediaError:
    """The error for a photo Pillow could not read (``e``, its complaint), in the run's words: a
    TIFF it cannot identify (:func:`unidentified_tiff`), a photo cut off (:func:`_cut_short`:
    Pillow's "image file is truncated (1 bytes not processed)", "could not create decoder object",
    "cannot identify image file" said nothing of it), or what Pillow said, with a hint where the
    file is a video under a picture's name."""
    from PIL import UnidentifiedImageError

    tiff = unidentified_tiff(path) if isinstance(e, UnidentifiedImageError) else None
    if tiff is not None:
        return tiff
    cut = _cut_short(path, e)
    if cut is not None:
        return NotMediaError(f"cannot read {path}: {_a(cut[0])} that is cut off or damaged ({cut[1]})", hint=_CUT_HINT)
    return NotMediaError(f"cannot read {path} as an image: {e}", hint=video_in_disguise(path))


def _a(fmt: str) -> str:
    """``fmt`` with its article: "a JPEG", "an AVIF"."""
    return ("an " if fmt[0] in "AEIOU" else "a ") + fmt


def _cut_short(path, e: BaseException) -> tuple[str, str] | None:
    """(its format, how it ends short) for a JPEG/PNG/GIF/WebP/BMP/HEIC/AVIF/TIFF file that ends
    before its own structure does (a chunk, box or RIFF size past the end, no end marker, a TIFF's
    strips or tiles past it), or whose picture data Pillow found cut short; None for any other (a
    TIFF Pillow cannot identify at all: :func:`unidentified_tiff`).
    Read by seeking: a few bytes per chunk or box, not the whole file."""
    try:
        with open(path, "rb") as f:
            return _cut_short_in(f, f.seek(0, 2), "truncated" in str(e).lower())
    except (OSError, TypeError, ValueError):
        return None


def _cut_short_in(f, size: int, said: bool) -> tuple[str, str] | None:
    def at(pos: int, n: int) -> bytes:
        f.seek(pos)
        return f.read(n)

    def holds(need: int) -> str:
        return f"it holds {size} of the {need} bytes its header gives"

    head, tail = at(0, 32), at(max(size - 2, 0), 2)
    stops = "its picture data stops short" if said else None
    if head[:3] == b"\xff\xd8\xff":
        return ("JPEG", "it ends inside its picture data: no end marker") if tail != b"\xff\xd9" else (
            ("JPEG", stops) if stops else None)
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        pos = 8
        while pos + 8 <= size:
            n, kind = struct.unpack(">I4s", at(pos, 8))
            if pos + 12 + n > size:
                return "PNG", f"it ends inside its {kind.decode('latin-1')} chunk"
            if kind == b"IEND":
                return ("PNG", stops) if stops else None
            pos += 12 + n
        return "PNG", "it ends before its IEND chunk"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ("GIF", "it ends inside its picture data: no trailer") if tail[-1:] != b";" else (
            ("GIF", stops) if stops else None)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        need = int.from_bytes(head[4:8], "little") + 8
        return ("WebP", holds(need)) if need > size else None
    if head[:2] == b"BM" and size >= 6:
        need = int.from_bytes(head[2:6], "little")
        return ("BMP", holds(need)) if need > size else (("BMP", stops) if stops else None)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        need, page = _tiff_end(at, size, head)
        if need > size:
            return "TIFF", (f"its page {page} ends past the file's end: " if page > 1 else "") + holds(need)
        return ("TIFF", stops) if stops else None
    if head[4:8] == b"ftyp" and head[8:12].decode("latin-1").lower() in _HEIF_BRANDS:
        # (an MP4 under a picture's name is no HEIC: video_in_disguise says what it is)
        brands = at(8, max(0, min(int.from_bytes(head[:4], "big"), 256) - 8))
        fmt = "AVIF" if brands[:4] in (b"avif", b"avis") or b"avif" in brands[8:] else "HEIC"
        pos = 0
        while pos + 8 <= size:
            box = at(pos, 16)
            n = int.from_bytes(box[:4], "big")
            if n == 1 and len(box) == 16:  # (a 64-bit size)
                n = int.from_bytes(box[8:16], "big")
            if n == 0:  # (to the end of the file)
                break
            if n < 8:
                return None  # (no box structure: damaged, not cut)
            if pos + n > size:
                return fmt, holds(pos + n)
            pos += n
        return (fmt, stops) if stops else None
    return None


def _tiff_end(at, size: int, head: bytes) -> tuple[int, int]:
    """(where a TIFF's pages' data end by its directories: the furthest strip or tile, offset +
    byte count, or a directory past the file's end; the page (1, 2, ...) that first reaches past
    ``size``, else the last), read with ``at(pos, n)``; (0, 0) where its directories say nothing
    of it, or make no sense (damaged, not cut)."""
    order = "<" if head[:2] == b"II" else ">"
    big = head[2:4] in (b"+\x00", b"\x00+")
    off_fmt, count_fmt, entry = ("Q", "Q", 20) if big else ("I", "H", 12)
    off_n, count_n = struct.calcsize(off_fmt), struct.calcsize(count_fmt)
    ifd = struct.unpack(order + off_fmt, head[8:16] if big else head[4:8])[0]
    end, seen = 0, set()
    while ifd and ifd not in seen and len(seen) < 4096:
        seen.add(ifd)
        raw = at(ifd, count_n)
        if len(raw) < count_n:
            return max(end, ifd + count_n), len(seen)  # (its directory is past the end)
        n = struct.unpack(order + count_fmt, raw)[0]
        body = at(ifd + count_n, n * entry + off_n)
        if len(body) < n * entry + off_n:
            return max(end, ifd + count_n + n * entry + off_n), len(seen)
        fields = {}
        for k in range(n):
            e = body[k * entry:(k + 1) * entry]
            tag, typ = struct.unpack(order + "HH", e[:4])
            if tag not in (273, 279, 324, 325) or typ not in (3, 4, 16):
                continue
            count = struct.unpack(order + off_fmt, e[4:4 + off_n])[0]
            width = {3: 2, 4: 4, 16: 8}[typ]
            inline = e[4 + off_n:]
            if count > 1 << 24:
                return 0, 0
            where = None if count * width <= len(inline) else struct.unpack(order + off_fmt, inline)[0]
            values = inline[:count * width] if where is None else at(where, count * width)
            if len(values) < count * width:  # (the list of offsets itself is past the end)
                return max(end, (where or 0) + count * width), len(seen)
            fields[tag] = struct.unpack(f"{order}{count}{'HIQ'[(3, 4, 16).index(typ)]}", values)
        for offsets, counts in ((273, 279), (324, 325)):
            if offsets in fields and counts in fields and len(fields[offsets]) == len(fields[counts]):
                end = max([end] + [o + c for o, c in zip(fields[offsets], fields[counts]) if c])
        if end > size:
            return end, len(seen)
        ifd = struct.unpack(order + off_fmt, body[n * entry:])[0]
    return end, len(seen)


def unidentified_tiff(path: Path) -> NotMediaError | None:
    """The error for a TIFF Pillow cannot identify ("cannot identify image file" said it was no
    picture at all): one Pillow has no mode for (32-bit float RGB...), named, or one whose header is
    a TIFF's but whose first page does not read (its first IFD is often written last, after the
    pictures: a copy cut short loses it); None for a file that is no TIFF."""
    kind = _tiff_kind(path)
    if kind is not None:
        return NotMediaError(f"cannot read {path}: a {kind} TIFF, which is not read here",
                             hint="save it as an 8- or 16-bit RGB (or grey) TIFF or PNG")
    if _tiff_header(path):
        return NotMediaError(f"cannot read {path}: a TIFF that is cut off or damaged (its header is there, but no "
                             "page can be read)",
                             hint=_CUT_HINT)
    return None


def _tiff_kind(path: Path) -> str | None:
    """What a TIFF that Pillow cannot identify holds, in words ("32-bit floating-point RGB",
    "16-bit grey + alpha"), or None when tifffile cannot read it either (not a TIFF, damaged)."""
    try:
        import tifffile

        src = path if hasattr(path, "read") else str(path)  # (or a file object)
        with _tifffile_hushed(), tifffile.TiffFile(src) as t:
            page = t.pages[0]
            bits = int(page.bitspersample)
            fmt = {1: "", 2: "signed ", 3: "floating-point "}.get(int(page.sampleformat), "")
            colour = {0: "grey", 1: "grey", 2: "RGB", 3: "palette", 5: "CMYK", 6: "YCbCr", 8: "CIELab"}.get(
                int(page.photometric), f"photometric {int(page.photometric)}")
            extra = len(page.extrasamples or ())
            alpha = " + alpha" if extra == 1 else f" + {extra} extra channels" if extra else ""
    except Exception:  # noqa: BLE001 - tifffile raises its own errors for files that are no TIFF
        return None
    return f"{bits}-bit {fmt}{colour}{alpha}"


def _signed(im) -> bool:
    """A TIFF whose samples are signed integers (SampleFormat 2), read before the picture is turned
    upright: the turned copy has no TIFF tags (a signed 32-bit picture was read as unsigned)."""
    return getattr(im, "tag_v2", {}).get(339) in (2, (2,))


def _pixels(im, bits: int | None, *, signed: bool = False) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(RGB uint8, alpha or None, greyscale) of an upright Pillow picture; ``bits``: see
    :func:`_to_uint8`; ``signed``: its integer samples are signed (:func:`_signed`)."""
    from PIL import Image

    grey = im.mode in ("1", "L", "LA", "La", "I", "F") or im.mode.startswith("I;16")
    alpha = None
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        arr = np.asarray(im)
        key = im.info.get("transparency")
        if isinstance(key, int):  # a 16-bit grey PNG's colour key, in its own codes (lost with the info below)
            alpha = np.where(arr == key, 0, 255).astype(np.uint8)
        # 16-bit / 32-bit grey: Pillow's convert("RGB") clips at 255 (a white picture)
        if im.mode == "I" and bits == 32 and not signed:
            arr = arr.view(np.uint32)  # (Pillow holds unsigned 32-bit grey as int32: the top half went negative)
        im = Image.fromarray(_to_uint8(arr, bits if bits in (8, 16, 32) else None), "L")
    # (a colour key, PNG's tRNS for RGB/grey pictures, is transparency too: it was lost)
    if im.mode in ("RGBA", "LA", "La", "PA", "RGBa") or (
            im.mode in ("P", "RGB", "L") and im.info.get("transparency") is not None):
        im = im.convert("RGBA")
        alpha = np.asarray(im)[:, :, 3].copy()
    return np.asarray(im.convert("RGB")).copy(), alpha, grey


def _load_page(path: Path, page: int, ifd: int | None = None, notes: list[str] | None = None,
               cache: dict | None = None) -> tuple[np.ndarray, np.ndarray | None, bool, dict, np.ndarray | None]:
    """Page or frame ``page`` (> 0) of a multi-page TIFF, an animated WebP/PNG/AVIF or a HEIF, as :func:`_load`
    gives the first: (RGB uint8, alpha or None, greyscale, {"page", "duration"}, the page at 16 bits
    or None). A TIFF's 16-bit page is read at 16 bits, as a one-page TIFF is; an animation's or a
    HEIF's frames at 8 (said with the first). ``ifd``: where the page is stored, when that is not
    ``page`` (a TIFF with previews, a HEIF whose primary picture is not its first); ``notes``: as
    :func:`_load`'s; ``cache``: one dict for all of a file's pages, which keeps what is read of the whole
    file for the next page (a 16-bit TIFF's bytes, for OpenCV: read once, not once a page)."""
    from PIL import Image, UnidentifiedImageError

    said: list = []
    # (an APNG's damaged optional chunk: left out again, said with the first page, whose reading
    # checked the picture chunks of every frame)
    repaired = _png_repaired(path, critical=False)
    try:
        with warnings_of("PIL", into=said), Image.open(repaired[0] if repaired is not None else path) as im:
            im.seek(page if ifd is None else ifd)
            im.load()  # (a WebP frame's duration is known once it is decoded)
            info = {"page": page, "duration": im.info.get("duration")}
            bits = 16 if im.mode.startswith("I;16") else (  # (a 32-bit grey TIFF's later pages too)
                32 if im.mode == "I" and im.format == "TIFF" and _bits_per_sample(im, path) == 32 else None)
            orientation = _orientation(im, path)
            rgb, alpha, grey = _pixels(_upright(im, orientation, path), bits, signed=_signed(im))
            tiff = im.format == "TIFF"
            if tiff:
                info.update(format="TIFF", mode=im.mode)  # (what _deeper asks of the page)
                deep_bits = _bits_per_sample(im, path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        cut = _cut_short(path, e)  # (an animation cut off after its first frames)
        if cut is not None:
            raise NotMediaError(f"cannot read page {page + 1} of {path}: {_a(cut[0])} that is cut off or damaged "
                                f"({cut[1]})", hint=_CUT_HINT) from e
        raise NotMediaError(f"cannot read page {page + 1} of {path}: {e}") from e
    except Image.DecompressionBombError as e:
        raise InvalidInputError(f"{path} is too large to load safely: {e}", hint=_BOMB_HINT) from e
    finally:
        for w in dict.fromkeys(str(w.message).strip() for w in said):
            log.warning("%s: %s", path, w)
    if not tiff:
        return rgb, alpha, grey, info, None
    rgb, alpha, grey, hi = _deeper(path, info, deep_bits, orientation, rgb, alpha, grey, notes,
                                   ifd=page if ifd is None else ifd, page=page, cache=cache)
    del info["format"], info["mode"]
    return rgb, alpha, grey, info, hi


def _orientation(im, path: Path) -> int:
    """The EXIF orientation 1..8 (1 when absent or unusable: text, a fraction, out of range, an
    unreadable block; cameras and editors write all of these)."""
    try:
        v = im.getexif().get(0x0112, 1)
        v = v[0] if isinstance(v, (tuple, list)) and v else v
        if isinstance(v, (str, bytes)):  # text: not an orientation Pillow (or a viewer) applies
            return 1
        v = int(v)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, struct.error, ZeroDivisionError):
        return 1
    if 1 <= v <= 8 or v == 0:  # 0: "unknown", written by some cameras; upright as stored
        return v or 1
    log.warning("%s: EXIF orientation %r is not one of 1..8: the picture is taken as stored", path, v)
    return 1


def _upright(im, orientation: int, path: Path):
    """``im`` turned upright. Pillow's ``exif_transpose`` also re-encodes the EXIF block and fails
    on a tag of the wrong type (an orientation stored as a fraction or text): then the turn is made
    here from ``orientation`` (the EXIF is carried, or not, by ``read_image_info``)."""
    from PIL import Image, ImageOps

    try:
        return ImageOps.exif_transpose(im)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, struct.error) as e:
        log.debug("%s: exif_transpose failed (%s); turning it by orientation %d", path, e, orientation)
    im.load()
    if im.format == "TIFF" and (0x0112 not in getattr(im, "tag_v2", {})
                                or orientation in (5, 6, 7, 8) and im.size != stored_size(im)):
        # Pillow turns a TIFF upright as it loads it (and drops its Orientation tag): turned
        # here again, a sideways scan came out on its other side
        return im
    for step in _TURNS.get(orientation, []):
        im = im.transpose(getattr(Image.Transpose, step))
    return im


def stored_size(im) -> tuple[int, int]:
    """(width, height) of an open picture as its file stores it, before any EXIF orientation: a
    TIFF's from its ImageWidth and ImageLength tags, since Pillow (13 here) reports a TIFF's size
    already turned by its Orientation tag, as it turns its pixels on loading, where it reports
    every other format's as stored."""
    if im.format == "TIFF":
        tags = getattr(im, "tag_v2", {})
        w, h = tags.get(256), tags.get(257)
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            return w, h
    return im.size


_XMP_ORIENTATION = (r'(tiff:Orientation\s*=\s*["\'])[2-8](["\'])', r'(<tiff:Orientation>\s*)[2-8](\s*</tiff:Orientation>)')


#: the picture size XMP states (as EXIF's ImageWidth/Length and PixelX/YDimension): (name, axis)
_XMP_SIZE = (("tiff:ImageWidth", 0), ("tiff:ImageLength", 1), ("exif:PixelXDimension", 0), ("exif:PixelYDimension", 1))


def upright_xmp(xmp, *, turned: bool = False, size: tuple[int, int] | None = None):
    """XMP (str or bytes) with its ``tiff:Orientation`` set to 1: the photo is written upright, and
    an XMP still saying 6 made XMP-first readers (photo libraries, some Adobe paths) turn it again,
    as EXIF's Orientation 6 would (that one is reset too). ``turned``: the picture was stored
    sideways (orientation 5-8), and its ``tiff:XResolution`` and ``tiff:YResolution`` trade places
    (see :func:`_turned_resolution`), as do the sizes it states (``tiff:ImageWidth`` and
    ``tiff:ImageLength``, ``exif:PixelXDimension`` and ``exif:PixelYDimension``: a photo written
    491x310 was still said 310x491); ``size``: the written picture's (width, height), which those
    are set to where they are there, as the EXIF's are (:func:`_sized_exif`). Attribute and
    element forms alike."""
    import re

    raw = isinstance(xmp, (bytes, bytearray))
    text = bytes(xmp).decode("utf-8", "surrogateescape") if raw else xmp
    for pat in _XMP_ORIENTATION:
        text = re.sub(pat, r"\g<1>1\g<2>", text)
    if turned:  # (the names swapped, attribute or element: each value goes with the other axis)
        text = re.sub(r"(tiff:)([XY])(Resolution\b)", lambda m: m[1] + "YX"[m[2] == "Y"] + m[3], text)
        text = re.sub(r"(tiff:Image)(Width|Length)\b", lambda m: m[1] + ("Length" if m[2] == "Width" else "Width"),
                      text)
        text = re.sub(r"(exif:Pixel)([XY])(Dimension\b)", lambda m: m[1] + "YX"[m[2] == "Y"] + m[3], text)
    for name, axis in _XMP_SIZE if size is not None else ():
        value = str(int(size[axis]))
        text = re.sub(rf"({name}\s*=\s*[\"'])\s*\d+\s*([\"'])", lambda m: m[1] + value + m[2], text)
        text = re.sub(rf"(<{name}>\s*)\d+(\s*</{name}>)", lambda m: m[1] + value + m[2], text)
    return text.encode("utf-8", "surrogateescape") if raw else text


def _as_bytes(xmp) -> bytes:
    return bytes(xmp) if isinstance(xmp, (bytes, bytearray)) else str(xmp).encode("utf-8", "surrogateescape")


def _with_tag(exif: bytes | None, tag: int, value) -> bytes:
    """The EXIF block ``exif`` (or a new one) with ``tag`` set to ``value``."""
    from PIL import Image

    out = Image.Exif()
    if exif:
        out.load(exif)
    out[tag] = value
    return out.tobytes()


def _without_tag(exif: bytes | None, tag: int) -> bytes | None:
    """The EXIF block ``exif`` without ``tag`` in its first IFD (``None``: nothing is left)."""
    if not exif:
        return None
    from PIL import Image

    out = Image.Exif()
    try:
        out.load(exif)
        if tag not in out:
            return exif
        del out[tag]
        return out.tobytes() if len(out) else None
    except _EXIF_ERRORS:  # (carried as it was: carried_exif re-encoded it once already)
        return exif


def _tiff_tag_bytes(im, tag: int) -> bytes | None:
    """The bytes of an open TIFF's ``tag`` as the file stores them (Photoshop stores its IPTC
    record as 4-byte LONGs: Pillow gives those as numbers), or ``None``."""
    tags = getattr(im, "tag_v2", None)
    if tags is None or tag not in tags:
        return None
    raw = getattr(tags, "_tagdata", {}).get(tag)  # (as Pillow's own IptcImagePlugin reads it)
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    try:
        value = tags[tag]
    except _EXIF_ERRORS:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    values = value if isinstance(value, tuple) else (value,)
    code = {1: "B", 3: "H", 4: "L", 7: "B"}.get(tags.tagtype.get(tag))
    if code is None or not all(isinstance(v, int) for v in values):
        return None
    try:
        return struct.pack(getattr(tags, "_endian", "<") + code * len(values), *values)
    except struct.error:
        return None


def _sub_ifds(exif: bytes | None) -> bool:
    """The EXIF block holds sub-directories (Exif IFD: camera settings, dates; GPS; Interop)."""
    if not exif:
        return False
    from PIL import Image

    try:
        e = Image.Exif()
        e.load(exif)
        return any(tag in e for tag in _SUB_IFDS)
    except _EXIF_ERRORS:
        return False


_EXIF_HEADER = b"Exif\x00\x00"


# bytes per value of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED,
# SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE, IFD)
_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
# the sub-IFDs an EXIF block's IFD0 points into: Exif, GPS, Interoperability (in the Exif IFD)
_SUB_IFDS = (0x8769, 0x8825, 0xA005)


def _ifd_end(tiff, bo: str, at: int, *, data_from: int | None = None) -> int | None:
    """The end of every byte the IFD at ``at`` and its sub-IFDs use (entries, values held outside
    them, a thumbnail's JPEG); None where it cannot be told. ``data_from``: instead, the lowest
    offset at or after which those bytes all lie, or None if one lies before it (a thumbnail
    sitting among the other data)."""
    end, low, todo, seen = 0, None, [at], set()
    while todo:
        ifd = todo.pop()
        if ifd in seen or ifd + 2 > len(tiff):
            return None
        seen.add(ifd)
        n = struct.unpack_from(bo + "H", tiff, ifd)[0]
        spans = [(ifd, ifd + 2 + 12 * n + 4)]
        thumb = {}
        for i in range(n):
            tag, kind, count, value = struct.unpack_from(bo + "HHII", tiff, ifd + 2 + 12 * i)
            size = _TIFF_TYPE_SIZES.get(kind, 1) * count
            if size > 4:
                spans.append((value, value + size))
            if tag in _SUB_IFDS and count == 1:
                todo.append(value)
            if tag in (0x0201, 0x0202):  # JPEGInterchangeFormat / its length: the thumbnail
                thumb[tag] = value
        if 0x0201 in thumb:
            spans.append((thumb[0x0201], thumb[0x0201] + thumb.get(0x0202, 0)))
        for a, b in spans:
            if b > len(tiff):
                return None
            end = max(end, b)
            low = a if low is None else min(low, a)
    if data_from is not None:
        return low if low is not None and low >= data_from else None
    return end


def _patched_exif(exif, ifd0: dict[int, int], exif_ifd: dict[int, int], *, tags: int | None = None) -> bytes | None:
    """The EXIF block ``exif`` (TIFF-structured, with or without its ``Exif\\0\\0`` header) with
    the one-number entries ``ifd0`` / ``exif_ifd`` (tag -> value; those absent are left absent)
    changed in place, as ``Exif\\0\\0`` + TIFF like Pillow's ``Exif.tobytes()``; None where it
    cannot be done so (no such block, an entry of another type or count, a value over a SHORT's
    range, a block that does not read back with ``tags`` entries in IFD0): then Pillow lays the
    block out again, which retypes entries (UNDEFINED -> BYTE, SRATIONAL -> RATIONAL) and moves
    the MakerNote, whose offsets are from the TIFF header in Canon/Pentax/Olympus files."""
    if not isinstance(exif, (bytes, bytearray)):
        return None
    tiff = bytearray(exif[6:] if exif.startswith(_EXIF_HEADER) else exif)
    if tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    bo = "<" if tiff[:2] == b"II" else ">"
    try:
        def patch(ifd_at: int, want: dict[int, int]) -> int | None:
            """The IFD at ``ifd_at`` patched; -> its Exif IFD pointer (0: none), None: not patchable."""
            pointer = 0
            for i in range(struct.unpack_from(bo + "H", tiff, ifd_at)[0]):
                at = ifd_at + 2 + 12 * i
                tag, kind, count = struct.unpack_from(bo + "HHI", tiff, at)
                if tag == 0x8769 and kind in (4, 13) and count == 1:
                    pointer = struct.unpack_from(bo + "I", tiff, at + 8)[0]
                if tag not in want:
                    continue
                if count != 1 or kind not in (3, 4) or (kind == 3 and not 0 <= want[tag] <= 0xFFFF):
                    return None
                struct.pack_into(bo + ("H" if kind == 3 else "I"), tiff, at + 8, want[tag])
            return pointer

        first = struct.unpack_from(bo + "I", tiff, 4)[0]
        pointer = patch(first, ifd0)
        if pointer is None or (exif_ifd and pointer and patch(pointer, exif_ifd) is None):
            return None
        # IFD1 (the camera's thumbnail: the picture before restoration, and stored the way the
        # sensor was turned, so sideways once the orientation says upright) is unlinked, as
        # Pillow's re-layout leaves it out; its bytes are cut off where they come after all the
        # rest (as cameras write it), else left, so nothing else moves
        link = first + 2 + 12 * struct.unpack_from(bo + "H", tiff, first)[0]
        ifd1 = struct.unpack_from(bo + "I", tiff, link)[0]
        struct.pack_into(bo + "I", tiff, link, 0)
        if ifd1:
            kept = _ifd_end(tiff, bo, first)
            if kept is not None and ifd1 >= kept and (_ifd_end(tiff, bo, ifd1, data_from=kept) or 0) >= kept:
                del tiff[kept:]
        out = _EXIF_HEADER + bytes(tiff)
        if tags is not None:
            from PIL import Image

            check = Image.Exif()
            check.load(out)
            if len(check) != tags:
                return None
        return out
    except _EXIF_ERRORS:
        return None


def _sized_exif(exif: bytes, size: tuple[int, int]) -> bytes:
    """The EXIF block with the picture size it states (the Exif IFD's PixelX/YDimension, IFD0's
    ImageWidth/Length, where present) set to ``size``, the written picture's: a phone photo turned
    upright, stored 4032x3024 before, still said 4032x3024 to catalogues and layout programs."""
    from PIL import Image

    patched = _patched_exif(exif, dict(zip((256, 257), size)), dict(zip((40962, 40963), size)))
    if patched is not None:
        return patched
    try:
        out = Image.Exif()
        out.load(exif)
        ifd = out.get_ifd(0x8769)
        changed = False
        for d, tags in ((ifd, (40962, 40963)), (out, (256, 257))):
            for tag, v in zip(tags, size):
                if tag in d and d[tag] != v:
                    d[tag] = v
                    changed = True
        return out.tobytes() if changed else exif
    except _EXIF_ERRORS:  # (carried as read: carried_exif re-encoded it once already)
        return exif


#: bytes per value of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL... DOUBLE)
_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


def _turned_resolution(exif: bytes) -> bytes:
    """The EXIF block with IFD0's XResolution and YResolution (282, 283) swapped in place, their
    values where the two entries are of one type and count (as cameras write them: equal ones leave
    every byte as it was), else the entries' type, count and value or offset: a picture stored
    sideways (orientation 5-8) is written upright, and its horizontal resolution is the one stored
    for its vertical axis (a 464x700 scan at 300 x 150 dpi kept 300 x 150 once upright, 700x464:
    printed 2.33 x 3.09 inches instead of 4.67 x 1.55). The block as it was where it has not both,
    or does not parse."""
    head = _EXIF_HEADER if exif.startswith(_EXIF_HEADER) else b""
    tiff = bytearray(exif[len(head):])
    if tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return exif
    bo = "<" if tiff[:2] == b"II" else ">"
    try:
        first = struct.unpack_from(bo + "I", tiff, 4)[0]
        at = {}
        for i in range(struct.unpack_from(bo + "H", tiff, first)[0]):
            tag = struct.unpack_from(bo + "H", tiff, first + 2 + 12 * i)[0]
            if tag in (282, 283):
                at[tag] = first + 2 + 12 * i
        if len(at) != 2:
            return exif
        (kind, count), other = (struct.unpack_from(bo + "HI", tiff, at[t] + 2) for t in (282, 283))
        n = _TIFF_TYPE_SIZES.get(kind, 0) * count
        if (kind, count) == other and n:
            x, y = (at[t] + 8 if n <= 4 else struct.unpack_from(bo + "I", tiff, at[t] + 8)[0] for t in (282, 283))
        else:  # (type, count and value or offset: each entry's data goes with it)
            x, y, n = at[282] + 2, at[283] + 2, 10
    except struct.error:
        return exif
    if max(x, y) + n > len(tiff) or abs(x - y) < n:  # (past the end, or one value shared: left)
        return exif
    tiff[x : x + n], tiff[y : y + n] = tiff[y : y + n], tiff[x : x + n]
    return head + bytes(tiff)


def _raw_profile(text: str, fix):
    """ImageMagick's "Raw profile type NAME" PNG text (``\nNAME\n   LENGTH\nHEX...``) with its
    payload passed through ``fix``, or ``None`` when it is not in that form."""
    import binascii

    parts = text.split("\n", 3)
    if len(parts) < 4:
        return None
    try:
        data = binascii.unhexlify("".join(parts[3].split()))
    except (binascii.Error, ValueError):
        return None
    data = fix(data)
    hexed = binascii.hexlify(data).decode("ascii")
    lines = "\n".join(hexed[i:i + 72] for i in range(0, len(hexed), 72))
    return f"\n{parts[1]}\n{len(data):8d}\n{lines}\n"


# ImageMagick's copies of the EXIF block as PNG text: stale beside the eXIf chunk written (their
# Orientation 6 turned the upright picture again in readers that take them)
_RAW_EXIF_TEXT = ("raw profile type exif", "raw profile type app1")


#: PNG (3rd edition) chunks that describe the colour of the pixels beside gAMA/cHRM/sRGB/iCCP,
#: which Pillow neither reads nor writes: coding-independent code points (primaries, transfer:
#: PQ/HLG HDR, BT.2020), mastering display colour volume, content light level
_PNG_COLOUR_CHUNKS = (b"cICP", b"mDCv", b"cLLI")


def _png_colour_chunks(path: Path) -> dict[bytes, bytes]:
    """The :data:`_PNG_COLOUR_CHUNKS` a PNG file holds before its pixels ({type: data}), read
    chunk by chunk from its head (Chrome/Android HDR screenshots, libavif/FFmpeg exports: dropped,
    a PQ picture was shown as washed-out sRGB by every reader)."""
    found: dict[bytes, bytes] = {}
    try:
        with open(path, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return found
            while True:
                head = f.read(8)
                if len(head) < 8 or head[4:] in (b"IDAT", b"IEND"):
                    return found
                n = int.from_bytes(head[:4], "big")
                if head[4:] in _PNG_COLOUR_CHUNKS and n <= 64:
                    found[bytes(head[4:])] = f.read(n)
                    f.seek(4, 1)  # (its CRC)
                else:
                    f.seek(n + 4, 1)
    except OSError:
        return found


def _png_with(data: bytes, colour: dict[bytes, bytes] | None) -> bytes:
    """A PNG file's bytes with the colour chunks ``colour`` ({type: data}) right after its IHDR
    (before any palette and the pixels, as the spec wants): Pillow writes cICP from a PngInfo but
    drops mDCv and cLLI (public chunks it does not know)."""
    import zlib

    if not colour:
        return data
    have = _png_chunk_list(data)
    add = b"".join(len(d).to_bytes(4, "big") + t + d + (zlib.crc32(t + d) & 0xFFFFFFFF).to_bytes(4, "big")
                   for t, d in colour.items() if t not in {k for k, _ in have})
    return b"\x89PNG\r\n\x1a\n" + have[0][1] + add + b"".join(c for _, c in have[1:])


def _png_chunks(info: dict, *, exif_written: bool = False, size: tuple[int, int] | None = None):
    """PNG ancillary chunks of the input (gamma, chromaticities, sRGB intent, text incl. XMP: the
    input's own XMP, from any format, as the iTXt chunk ``XML:com.adobe.xmp``). ``exif_written``:
    ImageMagick's text copies of the EXIF block are left out (the eXIf chunk says it); ``size``:
    the written picture's, which its XMP states (see :func:`upright_xmp`)."""
    import struct

    from PIL import PngImagePlugin

    chunks = PngImagePlugin.PngInfo()
    if info.get("gamma"):
        chunks.add(b"gAMA", struct.pack(">I", round(float(info["gamma"]) * 100000)))
    if info.get("chromaticity") and len(info["chromaticity"]) == 8:
        chunks.add(b"cHRM", struct.pack(">8I", *(round(float(v) * 100000) for v in info["chromaticity"])))
    if info.get("srgb") is not None and "icc_profile" not in info:  # PNG: sRGB and iCCP exclude each other
        chunks.add(b"sRGB", bytes([int(info["srgb"])]))
    text = dict(info.get("text") or {})
    turned = int(info.get("orientation") or 1) in (5, 6, 7, 8)
    if info.get("xmp") and "XML:com.adobe.xmp" not in text:
        text["XML:com.adobe.xmp"] = _as_bytes(info["xmp"]).decode("utf-8", "replace")
    for k, v in text.items():
        if k == "XML:com.adobe.xmp":
            v = upright_xmp(str(v), turned=turned, size=size)
        elif k.lower() in _RAW_EXIF_TEXT and exif_written:
            continue
        elif k.lower() == "raw profile type xmp":
            v = _raw_profile(str(v), lambda x: upright_xmp(x, turned=turned, size=size)) or v
        if k.lower().startswith("raw profile type "):
            chunks.add_text(k, str(v), zip=True)  # (zTXt, as ImageMagick writes them: hex is bulky)
        elif isinstance(v, PngImagePlugin.iTXt) or not str(v).isascii() or k == "XML:com.adobe.xmp":
            chunks.add_itxt(k, str(v), getattr(v, "lang", None) or "", getattr(v, "tkey", None) or "")
        else:
            chunks.add_text(k, str(v))
    return chunks


def _to_uint8(a: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Grey pixels of Pillow's "I"/"I;16"/"F" modes as 8-bit. ``bits``: what the file says it
    stores (16 for a 16-bit PNG/TIFF: its scale is 0..65535 however dark the picture is); without
    it, integer values over 255 mean a 16-bit scale. 32-bit integers are on their full scale
    (2^32-1 unsigned, 2^31-1 signed: clipped at 65535, such a picture was white), unless every
    value fits in 16 bits (scientific and imaging software store 16-bit data in 32-bit TIFFs: on
    the full scale it was black)."""
    if a.dtype.kind == "f":
        a = a * 255.0 if a.size and float(np.nanmax(a)) <= 1.0 else a
        return np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)
    # integer grey: 16-bit files come as uint16 or int32 (0..65535); 8-bit values in an "I" image stay
    if bits == 32 and a.dtype.itemsize == 4 and not (a.size and int(a.max()) <= 65535):
        top = 4294967295 if a.dtype.kind == "u" else 2147483647
    elif bits == 32:
        top = 65535
    else:
        top = 65535 if bits == 16 or (bits is None and a.size and int(a.max()) > 255) else 255
    return (np.clip(a.astype(np.float64), 0, top) * (255.0 / top)).round().astype(np.uint8)


class ImageSource:
    """One image or every image under a folder (sorted, recursive), one :class:`Frame` each (one
    per page of a multi-page TIFF, an animated WebP/PNG/AVIF, a HEIF of several pictures).

    Frames own their tensors (images differ in size, so there is no shared ring); ``rel_path`` is
    the path relative to the folder (the file name for a single image) so sinks can mirror the tree.
    A frame's ``index`` counts the frames given, from 0: one file's pages are 0, 1, 2... (an
    animation's ``time`` is its own, from its frames' durations, in 1/1000 s; pages with none, a
    TIFF's, are a second apart, ``pts`` = ``index``, as a folder's photos are); ``image_info``'s
    ``file_number`` is the file's place in ``paths``.
    """

    def __init__(self, spec, *, device: torch.device | str = "cpu", exclude: Path | None = None,
                 skip=None, max_pixels: int | None = None) -> None:
        p = Path(spec)
        #: photos with more pixels than this are refused before they are decoded (PayloadTooLargeError;
        #: in a folder, skipped as any unreadable file): an upload's limit, as for video frames
        self.max_pixels = max_pixels
        if not p.exists():
            raise MediaNotFoundError(f"input not found: {str(p)!r}",  # (quoted: a trailing space is seen)
                                     hint=PATH_HINT)
        if p.is_dir():
            self.root = p
            # (silent: enhance_file, stream() and info walk the folder first and say what is left out)
            self.paths, videos, others = folder_media(p, exclude, say=False)
            if skip is not None:
                self.paths = [q for q in self.paths if not skip(q)]
            if not self.paths:
                unread = unread_note(p, others)
                raise NotMediaError(
                    f"folder {p} contains no images ({', '.join(IMAGE_EXTS)})"
                    + (f"; its {len(videos)} video file(s) are for Enhancer.enhance_file / `stream-gpen enhance`, "
                       "which restore a folder's videos too" if videos else " and no videos")
                    + (f"; {unread[0].replace(f' in {p} ', ' ', 1)}" if unread else ""),
                    hint=unread[1] if unread else "hidden, thumbnail and trash folders are left out; "
                    "`stream-gpen info FOLDER` lists what is there")
            kind = "folder"
        else:
            self.root = p.parent
            self.paths = [p]
            kind = "image"
        # a resumed run (skip_existing) asks again before each photo: another run into the same
        # folder may have written its output meanwhile (each then does what the other left)
        self._skip = skip
        self.done_meanwhile = 0
        self.kind = kind
        self.device = torch.device(device)
        self.fallbacks: list[str] = []
        if kind == "folder":
            # Files that are neither images nor videos (which Enhancer.enhance_file restores on its
            # own) are left alone, but said so: a user must not believe they were restored.
            msg = others_note(p, others)
            if msg:
                self.fallbacks.append(msg)
                log.warning(msg)
        # Folder inputs: one unreadable file must not cost the others. It is logged, listed here
        # (the error message, which names the file) and skipped; a single image input raises instead.
        self.skipped: list[str] = []
        self.stats = {"decoded": 0, "corrupt_packets": 0, "corrupt_frames": 0, "dropped": 0, "reconnects": 0}
        #: seconds spent reading and decoding the photos, summed (the run summary's ``decode`` stage)
        self.decode_seconds = 0.0
        self.aux = None
        self.live = False
        self._i = 0
        self._given = 0  # frames given so far (a folder's index)
        self._clock_ms: int | None = None  # a timed animation's time so far (ms); None: pages not timed
        #: an APNG's cover (its default image, stored before the animation's first frame control:
        #: shown where animation is not, no frame of it) is given as a frame, page 0, which the sink
        #: writes back as the cover (a run restores its faces too); False leaves it out, and the
        #: animation's frames are numbered from 0 (:meth:`Enhancer.stream`: the frames a player shows)
        self.covers = True
        self._cover_left = False  # the file in hand's cover was left out
        # (path index, next page, pages, the pages' IFDs or None) of a multi-page file
        self._more: tuple[int, int, int, list[int] | None] | None = None
        # (what its later pages share of it: its bytes, read once for all of them; dropped with the last)
        self._pages_cache: dict = {}
        t0 = time.perf_counter()
        first = self._next_readable()
        self.decode_seconds += time.perf_counter() - t0
        if first is None:
            err = NotMediaError(f"none of the {len(self.paths)} images in {p} could be read "
                                f"(first: {self.skipped[0]})",
                                hint="check that the files were copied whole (`stream-gpen info FILE` says what "
                                "is wrong with one)")
            err.skipped = list(self.skipped)  # (a folder run with videos goes on with those: hunt 17)
            # (what was said of the folder, said once: a run that goes on lists it, and does not say it again)
            err.fallbacks = list(self.fallbacks)
            raise err
        self._pending = first
        #: a single photo's pictures (an animation's frames, a TIFF's pages, an APNG's cover too), each
        #: a frame of a run, known from its first read (a run's progress counts them); None for a folder
        self.pages = int(first[4].get("frames", 1)) if kind == "image" else None
        rgb = first[1]
        self.metadata = StreamMetadata(
            width=rgb.shape[1], height=rgb.shape[0], pix_fmt="rgb24", codec="image", time_base=Fraction(1),
            frame_rate=None, frame_count=len(self.paths), kind=kind, color_range="full",
        )

    def _next_readable(self):
        """(index, rgb, alpha, grey, info, hi) of the next image (or page) that loads, or None at
        the end. A multi-page TIFF or an animated WebP/PNG gives one per page, which the sink
        writes back into one file when the last arrives; a page that cannot be read ends it."""
        if self._more is not None:
            i, page, pages, ifds = self._more
            self._more = (i, page + 1, pages, ifds) if page + 1 < pages else None
            cache = self._pages_cache
            if self._more is None:
                self._pages_cache = {}
            try:
                rgb, alpha, grey, info, hi = _load_page(self.paths[i], page, ifds[page] if ifds else None,
                                                        self.fallbacks, cache)
            except InvalidInputError as e:
                if self.kind != "folder":
                    raise
                self._more, self._pages_cache = None, {}  # (the sink writes nothing of a file cut short)
                self.skipped.append(skipped_entry(self.paths[i], f"{e}: the file was not written"))
                log.warning("skipped %s", self.skipped[-1])
                return self._next_readable()
            return i, rgb, alpha, grey, {**info, "frames": pages}, hi
        while self._i < len(self.paths):
            i = self._i
            self._i += 1
            if self._skip is not None and i and self._skip(self.paths[i]):
                self.done_meanwhile += 1
                continue
            try:
                if self.max_pixels is not None:
                    _check_pixels(self.paths[i], self.max_pixels)
                rgb, alpha, grey, info, hi = _load(self.paths[i], self.fallbacks)
            except InvalidInputError as e:
                if self.kind != "folder":
                    raise
                # the message names the file; its hint ("it is a video under a picture's name: rename
                # it to .mp4", "save it as an 8-bit TIFF") is what to do about it
                why = f"{e} ({e.hint})" if getattr(e, "hint", None) else str(e)
                self.skipped.append(skipped_entry(self.paths[i], why))
                log.warning("skipped %s", self.skipped[-1])
                continue
            except Exception as e:  # noqa: BLE001 - one odd photo must not end a run over thousands
                if self.kind != "folder":
                    raise
                self.skipped.append(f"{self.paths[i]}: could not be read ({type(e).__name__}: {e})")
                log.warning("skipped %s: %s: %s (please report it with the file)", self.paths[i], type(e).__name__, e)
                log.debug("reading %s failed", self.paths[i], exc_info=True)
                continue
            if info.get("frames", 1) > 1:
                self._more = (i, 1, info["frames"], info.get("ifds"))
                self._pages_cache = {}
            return i, rgb, alpha, grey, info, hi
        return None

    def __enter__(self) -> "ImageSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._i = len(self.paths)
        self._pending = None
        self._pages_cache = {}

    def __iter__(self) -> "ImageSource":
        return self

    def __next__(self) -> Frame:
        t0 = time.perf_counter()
        try:
            return self._next_frame()
        finally:
            self.decode_seconds += time.perf_counter() - t0

    def _next_frame(self) -> Frame:
        item, self._pending = (self._pending, None) if self._pending is not None else (self._next_readable(), None)
        if item is None:
            raise StopIteration
        i, rgb, alpha, grey, info, hi = item
        path = self.paths[i]
        self.stats["decoded"] += 1
        page = int(info.get("page", 0))
        if page == 0:  # an animation is timed by its durations, in ms (every page came at 0 s)
            self._clock_ms = 0 if info.get("duration") is not None or info.get("default_image") else None
            self._cover_left = bool(info.get("default_image")) and not self.covers
            if self._cover_left:
                return self._next_frame()
        if hi is not None and hi.shape[2] == 4:  # a 16-bit alpha channel travels at 16 bits too
            hi, alpha = np.ascontiguousarray(hi[..., :3]), np.ascontiguousarray(hi[..., 3])
        img = torch.from_numpy(rgb).to(self.device)
        a = torch.from_numpy(alpha).to(self.device) if alpha is not None else None
        h16 = torch.from_numpy(hi).to(self.device) if hi is not None else None
        # (source_path: a photo in which no face is found is copied, ImageSink)
        info = {**info, "source_path": path, "file_number": i}
        index = self._given if self.kind == "folder" else page - self._cover_left
        self._given += 1
        if self.kind == "image" and self._clock_ms is not None:
            pts, tb = self._clock_ms, Fraction(1, 1000)
            self._clock_ms += int(round(info.get("duration") or 0))
        else:
            pts, tb = index, Fraction(1)
        return Frame(index=index, pts=pts, time_base=tb, time=float(pts * tb), _image=img, _hi=h16,
                     rel_path=path.relative_to(self.root).as_posix(), alpha=a, grey=grey, image_info=info)


def _check_pixels(path: Path, max_pixels: int) -> None:
    """PayloadTooLargeError where the photo at ``path`` has more than ``max_pixels`` pixels, read
    from its header (before any decoding); a file that does not open is left to the reader, which
    says why."""
    from PIL import Image

    from stream_gpen.errors import PayloadTooLargeError

    try:
        _heif_plugin(path)  # (HEIC opens only with the plugin registered)
    except InvalidInputError:
        pass
    try:
        with Image.open(path) as im:
            sizes = [im.size]
            if im.format in ("TIFF", "HEIF", "MPO"):
                # pages or pictures of their own size, each restored (a TIFF's page 0 may be a small
                # preview: review24 got a 400x300 second page past a 1000-pixel limit); seeking
                # these reads a header only (an animation's frames share its canvas: not seeked)
                for i in range(1, int(getattr(im, "n_frames", 1) or 1)):
                    im.seek(i)
                    sizes.append(im.size)
    except Image.DecompressionBombError as e:
        raise PayloadTooLargeError(f"{path} is over the limit of {max_pixels} pixels: {e}") from e
    except Exception:  # noqa: BLE001 - (unreadable: the reader says so, with its hint)
        return
    for w, h in sizes:
        if w * h > max_pixels:
            raise PayloadTooLargeError(f"{path}: the picture is {w}x{h} = {w * h} pixels, over the limit of "
                                       f"{max_pixels}")


def check_image_format(fmt, name: str = "image_format") -> None:
    """``fmt`` (``"jpg"``, ``".PNG"``...) is a photo format this writes, or None; else InvalidInputError."""
    if fmt is not None and (not isinstance(fmt, str) or "." + fmt.lower().lstrip(".") not in IMAGE_EXTS):
        raise InvalidInputError(f"{name}={fmt!r} is not a photo format: one of {', '.join(e[1:] for e in IMAGE_EXTS)}")


def jpeg_source_options(info: dict) -> dict:
    """Pillow's save options for a JPEG written from the JPEG ``info`` describes (its ``qtables``
    and ``orientation``) when no quality is asked for: its own tables from IJG quality
    ``_JPEG_FLOOR`` (90) up (see :meth:`ImageSink._jpeg_tables`), turned with a picture turned a
    quarter; quality ``_JPEG_FLOOR`` for a coarser one; nothing where its tables are unknown.
    ``enhance`` and the server's image answer both write by it."""
    tables = ImageSink._jpeg_tables(info)
    if tables is not None:
        if int(info.get("orientation") or 1) in (5, 6, 7, 8):
            # a picture turned a quarter: its horizontal frequencies were the vertical ones
            # (the tables are in natural order, row by row, and not symmetric)
            tables = [[t[8 * c + r] for r in range(8) for c in range(8)] for t in tables]
        return {"qtables": tables}
    if info.get("qtables") and jpeg_quality(info["qtables"][0]) < _JPEG_FLOOR:
        return {"quality": _JPEG_FLOOR}  # (a coarse source's, see _jpeg_tables)
    return {}


def jpeg_quality(luma_table) -> float:
    """The IJG quality (1-100) whose scaling of the standard luminance table gives ``luma_table``'s
    sum: the quality a JPEG was saved at, for libjpeg's and most cameras' and editors' tables
    (order-free, so zigzag or natural order alike)."""
    scale = 100.0 * sum(luma_table) / sum(_IJG_LUMA)
    return (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale


class ImageSink(_Sink):
    """Writes each frame as an image.

    ``target`` is a file (single image) or a folder: ``folder/<rel_path>`` keeps the input tree,
    with the extension replaced by ``format`` when given (``None`` keeps the input's format).
    ``quality`` (1-100) applies to jpeg/webp/heic/avif: higher is bigger and closer to the original.
    ``None`` (the default): a JPEG written from a JPEG of quality ``_JPEG_FLOOR`` (90) or more keeps
    its quantisation tables (its own quality and about its size, where q95 grew it, and a q100
    master is not quantised more coarsely); a coarser one is written at 90 (at its own quality the
    restored faces lost their detail); everything else is written at 95 (a WebP/HEIC/AVIF's
    quality cannot be read back from it: a low-quality one grows). A JPEG
    written from a JPEG keeps its chroma subsampling (Pillow's default would halve a 4:4:4
    photo's colour resolution), a lossless WebP stays lossless; profile, EXIF, DPI and the rest
    of ``frame.image_info`` are written where the format holds them (module doc), and what is
    not is listed once per kind in ``fallbacks``.
    """

    #: a photo in which the run found no face, written in its own format, is a byte-for-byte copy
    #: of its input (see :meth:`_unchanged`); False: every photo is encoded again
    copy_unchanged: bool = True

    def __init__(self, target, *, format: str | None = None, quality: int | None = None, overwrite: bool = False,
                 names: dict[str, Path] | None = None) -> None:
        if quality is not None and not 1 <= quality <= 100:
            raise InvalidInputError(f"quality={quality} must be within 1..100")
        check_image_format(format, "image format")
        self.target = Path(target)
        self.is_folder = self.target.suffix.lower() not in IMAGE_EXTS or self.target.is_dir()
        if not self.is_folder:  # (as a video's: a missing folder was made, a file above it failed once restored)
            check_output_folder(self.target)
        self.format = format
        self.quality = quality
        self.overwrite = overwrite
        #: a folder's output path for a frame's ``rel_path`` where the plain mirror would clash
        #: (:func:`folder_outputs`)
        self.names = dict(names or {})
        self.frames_written = 0
        self.fallbacks: list[str] = []
        self.written: list[Path] = []
        self._noted: set[str] = set()
        self._pages: dict[Path, list] = {}  # a multi-page picture's pages restored so far

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
        # stored sideways, written upright: what the file says of its x axis is the written y's
        turned = int(info.get("orientation") or 1) in (5, 6, 7, 8)
        if info.get("format") == "GIF" and self.is_folder and self.format is None:
            # (only where the format was defaulted: a named file or format is what the user asked for;
            # a single photo's default is said by enhance_file, which alone knows it was defaulted)
            self._note(f"still GIFs are written as {fmt or path.suffix} (there is no GIF writer here)", path)
        if fmt in QUALITY_FORMATS:
            kw["quality"] = _DEFAULT_QUALITY if self.quality is None else self.quality
        icc = info.get("icc_profile")
        if icc:
            # (WebP has no grey pictures: Pillow writes L as RGB, which a GRAY profile does not describe)
            written = "RGB" if fmt == "WEBP" and im.mode == "L" else "RGBA" if fmt == "WEBP" and im.mode == "LA" else im.mode
            if not icc_describes(icc, grey=written in ("L", "LA")):
                self._note(f"a {icc_space(icc)} ICC profile was dropped: it does not "
                           f"describe the {written} pixels written", path)
            elif fmt == "BMP":
                self._note("the ICC profile was dropped: BMP output cannot hold it (write .png/.jpg/.webp/.tif)", path)
            else:
                kw["icc_profile"] = icc
        if info.get("subifds") and fmt == "TIFF":
            # (SubIFD offsets copied as they were pointed into nothing: readers failed on the file)
            self._note(_subifd_note(info["subifds"]), path)
        if info.get("stale_tags"):
            self._note(f"TIFF tags {info['stale_tags']} (Photoshop layers / image resources) were dropped: they hold "
                       "the unrestored picture, which editors would show instead of the restored one", path)
        if info.get("exif"):
            if fmt == "JPEG" and len(info["exif"]) > _JPEG_EXIF_MAX:
                self._note(f"EXIF was dropped: {len(info['exif'])} bytes, over the {_JPEG_EXIF_MAX} a JPEG segment "
                           "holds (write .png/.tif/.webp to keep it)", path)
            elif fmt in ("JPEG", "PNG", "WEBP", "TIFF", "HEIF", "AVIF"):
                kw["exif"] = info["exif"]
            else:
                self._note("EXIF was dropped: BMP output cannot hold it", path)
        if info.get("xmp"):
            if fmt == "JPEG" and len(info["xmp"]) > _JPEG_XMP_MAX:
                # (Pillow refuses it: Lightroom/Photoshop edit histories run past 100 KB)
                self._note(f"XMP was dropped: {len(info['xmp'])} bytes, over the {_JPEG_XMP_MAX} a JPEG segment "
                           "holds (write .png/.tif/.webp to keep it)", path)
            elif fmt in ("JPEG", "WEBP", "HEIF", "AVIF"):
                kw["xmp"] = upright_xmp(info["xmp"], turned=turned, size=im.size)
            elif fmt == "TIFF":
                # (tag 700, written with the EXIF block's tags: Pillow's tiffinfo= would replace those)
                kw["exif"] = _with_tag(kw.get("exif"), 700, _as_bytes(upright_xmp(info["xmp"], turned=turned,
                                                                                  size=im.size)))
            elif fmt != "PNG":  # (PNG: an iTXt chunk, see _png_chunks)
                self._note(f"XMP was dropped: {fmt or path.suffix} output cannot hold it", path)
        nclx = info.get("nclx_profile")
        if nclx:
            if fmt == "HEIF":
                kw["nclx_profile"] = dict(nclx)
            elif "icc_profile" not in kw:
                src = info.get("format") or "input's"
                trc = {16: "PQ", 18: "HLG"}.get(nclx.get("transfer_characteristics"))
                if trc is not None:
                    # (Pillow writes AVIF as sRGB: HDR codes shown as SDR are flat and grey)
                    self._note(f"the {src} colour description (nclx: {trc} HDR, primaries "
                               f"{nclx.get('color_primaries')}) was dropped: {fmt or path.suffix} output cannot hold "
                               "it, so the HDR photo will show washed out, as SDR (write .heic to keep it)", path)
                elif nclx.get("color_primaries") not in (1, 2):
                    # P3 / BT.2020 pixels written without any colour description look desaturated
                    self._note(f"the {src} colour description (nclx, primaries {nclx.get('color_primaries')}) was "
                               f"dropped: {fmt or path.suffix} output cannot hold it, so wide-gamut colours will show "
                               "less saturated (write .heic to keep it)", path)
        cicp = (info.get("png_colour") or {}).get(b"cICP")
        if cicp and len(cicp) == 4:
            trc = {16: "PQ", 18: "HLG"}.get(cicp[1])
            if trc is not None:
                # (no HDR mapping for PNG, as there is for HEIC/AVIF: their codes went through as SDR)
                self._note(f"the faces of {trc} HDR PNGs (cICP) were restored as if their codes were SDR: they may "
                           "look off in brightness and colour next to the rest of the picture", path)
            if fmt != "PNG" and (trc or cicp[0] != 1):  # (sRGB said so: sRGB is what is assumed anyway)
                self._note(f"the PNG's colour description (cICP: primaries {cicp[0]}, transfer {cicp[1]}) was dropped: "
                           f"{fmt or path.suffix} output here cannot hold it, so "
                           + ("the HDR photo will show washed out, as SDR" if trc else "its colours may show wrong")
                           + " (write .png to keep it)", path)
        if info.get("dpi") and fmt in ("JPEG", "PNG", "TIFF", "BMP"):  # (a BMP was written at Pillow's 96)
            kw["dpi"] = tuple(round(float(d), 4) for d in info["dpi"])[:: -1 if turned else 1]
        # (an MPO, which Pillow reports for camera JPEGs with an MPF preview, is written as JPEG)
        same = _AS_WRITTEN.get(info.get("format"), info.get("format")) == fmt
        irb, why = kept_resources(info.get("photoshop_irb"), int(info.get("orientation") or 1))
        if why == "damaged":
            self._note("IPTC / Photoshop image resources (APP13: caption, keywords, copyright) that do not parse were "
                       "dropped: they are damaged"
                       + (" (the XMP, where editors keep the same fields too, is kept)" if "xmp" in kw else ""), path)
        iptc = iptc_record(irb)
        if irb and fmt == "JPEG":
            kw["photoshop_irb"] = irb  # (written by write(): APP13 segments, which Pillow does not write)
        elif iptc and fmt == "TIFF":
            # (tag 33723, the TIFF's own place for it, as a TIFF's IPTC is carried: with the EXIF block's tags)
            kw["exif"] = _with_tag(kw.get("exif"), 33723, iptc)
        if irb and fmt == "TIFF" and beyond_tiff(irb):
            self._note("the Photoshop image resources (APP13) other than IPTC were dropped: TIFF output here carries "
                       "the IPTC alone (write .jpg to keep them)", path)
        elif irb and fmt not in ("JPEG", "TIFF"):
            where = "TIFF tag 33723" if info.get("format") == "TIFF" else "Photoshop APP13"
            self._note((f"IPTC ({where}: caption, keywords, copyright) was" if iptc else
                        "the Photoshop image resources (APP13) were")
                       + f" dropped: {fmt or path.suffix} output cannot hold it (write .jpg or .tif to keep it)"
                       + (" (the XMP, where editors keep the same fields too, is kept)" if "xmp" in kw else ""), path)
        if why == "paths" and not (irb and fmt not in ("JPEG", "TIFF")):  # (else said with the rest, above)
            self._note("Photoshop paths (clipping paths; APP13) of photos turned upright by their EXIF orientation "
                       "were dropped: they were drawn on the picture as stored", path)
        text = {k for k in info.get("text") or {} if k != "XML:com.adobe.xmp"}  # (XMP: carried as such)
        lost = [what for what, there in (("text", bool(text)),
                                         ("gamma/chromaticities", bool(info.get("gamma") or info.get("chromaticity"))))
                if there and fmt != "PNG"]
        if info.get("comment") and not (fmt == "JPEG" and same):
            lost.append("comment")
        if lost:
            self._note(f"the input's {', '.join(lost)} ({info.get('format')}) was dropped: {fmt or path.suffix} output "
                       "does not carry it here", path)
        if fmt == "PNG":
            kw["pnginfo"] = _png_chunks(info, exif_written="exif" in kw, size=im.size)
        elif fmt == "JPEG" and same:
            # 4:4:4 stays 4:4:4 (Pillow's default is 4:2:0: halved colour resolution)
            if "subsampling" in info:
                kw["subsampling"] = info["subsampling"]
                if info["subsampling"] == 1 and turned:
                    # a camera's 4:2:2 turned a quarter is halved the other way: 4:2:2 again would
                    # halve its colour both ways (there is no 4:4:0 writer): 4:4:4 keeps what it had
                    kw["subsampling"] = 0
            if self.quality is None:
                kw.update(jpeg_source_options(info))
                if "qtables" in kw:
                    del kw["quality"]  # (a quality would scale the tables)
            if info.get("progressive"):
                kw["progressive"] = True
            if info.get("comment"):
                kw["comment"] = info["comment"]
        elif fmt == "WEBP" and same and info.get("lossless"):
            kw["lossless"] = True
        elif fmt == "TIFF" and same and info.get("compression") in _TIFF_COMPRESSIONS:
            kw["compression"] = info["compression"]
        elif fmt == "TIFF" and same and info.get("compression"):
            # JPEG-in-TIFF, CCITT fax (G3/G4)...: Pillow writes none of them from an RGB/grey picture;
            # left to its default the scan came back raw, 3-4x bigger
            kw["compression"] = "tiff_adobe_deflate"
            if not _sub_ifds(kw.get("exif")):  # (else written raw, said below)
                self._note(f"the input's TIFF compression ({info['compression']}) is not written here: written "
                           "losslessly as deflate instead", path)
        if kw.get("exif"):
            kw["exif"] = _sized_exif(kw["exif"], im.size)
            if turned:
                kw["exif"] = _turned_resolution(kw["exif"])
        if fmt == "TIFF" and kw.get("compression", "raw") != "raw" and _sub_ifds(kw.get("exif")):
            # libtiff, which Pillow compresses TIFFs with, refuses EXIF sub-directories (the run
            # failed with "Error setting from dictionary"): the metadata is worth more than the bytes
            self._note(f"TIFFs whose EXIF holds camera settings or GPS were written uncompressed (the input's "
                       f"{info.get('compression')}): Pillow's compressed TIFF writer cannot hold them", path)
            kw["compression"] = "raw"
        if (fmt == "TIFF" and same and info.get("predictor") == 2 and info.get("compression") in _PREDICTED
                and kw.get("compression") in _PREDICTED):
            # (into the EXIF block, which Pillow writes as the TIFF's own tags: tiffinfo= would
            # replace them; the 16-bit writer leaves it out and sets its own)
            kw["exif"] = _with_tag(kw.get("exif"), 317, 2)
        return kw

    @staticmethod
    def _jpeg_tables(info: dict) -> list | None:
        """The source JPEG's quantisation tables, where they are at least as fine as IJG's quality
        ``_JPEG_FLOOR`` and Pillow writes them back (None: written at a quality). Tried on an 8x8
        picture first: a source with tables Pillow refuses (over 4, cut short) fails there, not
        with the restored photo."""
        import io

        from PIL import Image

        tables = info.get("qtables")
        if not tables or jpeg_quality(tables[0]) < _JPEG_FLOOR:
            return None
        try:
            Image.new("RGB", (8, 8)).save(io.BytesIO(), format="JPEG", qtables=tables)
        except (ValueError, OSError, TypeError):
            return None
        return tables

    def _path_for(self, frame: Frame) -> Path:
        if not self.is_folder:
            return self.target
        if frame.rel_path in self.names:
            return self.names[frame.rel_path]
        rel = Path(frame.rel_path or f"{frame.index:06d}.png")
        if self.format:
            rel = rel.with_suffix("." + self.format.lower().lstrip("."))
        elif rel.suffix.lower() == ".gif":  # a still GIF (no GIF writer)
            rel = rel.with_suffix(".png")
        return self.target / rel

    def write(self, frame: Frame) -> None:
        try:
            self._write(frame)
        except (OutputNotWritableError, DiskFullError, FileTooLargeError):
            raise
        except OSError as e:
            path = self._path_for(frame)
            if e.errno in FULL_ERRNOS:
                # (a bare OSError, "No space left on device", naming no file)
                raise disk_full(path, e) from e
            if e.errno == errno.EFBIG:  # (as bare: "File too large", naming no file nor which limit)
                raise file_too_large(path, e) from e
            # the file system refused this photo's file in its folder (no permission, a read-only
            # drive: made so during the run, or not told by os.access before it): a bare
            # PermissionError, not the project's error, and every next photo there is refused too
            if not refused_in(path.parent, e):
                raise
            raise not_writable(path.parent, e) from e

    def _write(self, frame: Frame) -> None:
        from PIL import Image

        path = self._path_for(frame)
        info = frame.image_info or {}
        pages, page = info.get("frames", 1), info.get("page", 0)
        for other in [q for q in self._pages if q != path]:
            # pages come file by file: one whose later page could not be read is not written
            del self._pages[other]
        if page == 0 and path.exists() and not self.overwrite:
            raise OutputExistsError(f"output exists: {path}", hint="overwrite=True redoes it, skip_existing=True resumes a folder run")
        fmt = _FORMATS.get(path.suffix.lower(), "")
        if page and fmt not in _MULTI_PAGE:  # (noted with the first page; not written, so not counted)
            frame.release()
            return
        make_mirror_folder(path.parent, self.target)
        copy_from = self._unchanged(frame, info, path, fmt, pages)
        if copy_from is not None:
            try:
                itself = path.exists() and copy_from.samefile(path)  # (-o the input --overwrite: left as it is)
            except OSError:
                itself = False
            if not itself:
                self._place_copy(copy_from, path)
            self.written.append(path)
            self.frames_written += 1
            frame.release()
            return
        if info.get("mpo_pictures"):
            # (said here, not as it was read: a photo with no face in it was said to be "restored")
            self._note("the other pictures of multi-picture JPEGs (MPO: a camera's large preview, a stereo pair, "
                       "or an HDR gain map that could not be read) were dropped: the main photo is "
                       + ("restored and " if getattr(frame, "faces", None) != 0 else "(no face found) ")
                       + "written on its own", path)
        if info.get("deep32"):
            self._note(f"32-bit {info['deep32']} grey TIFFs were written as 8-bit grey (no writer here keeps 32-bit "
                       "samples)", path)
        rgb = frame.image.cpu().numpy()
        im = Image.fromarray(rgb, "RGB")
        if frame.grey:
            # A grey photo stays grey (and 3x smaller); the restorer may tint faces slightly.
            im = im.convert("L")
        if frame.alpha is not None:
            if path.suffix.lower() in _ALPHA_EXTS:
                a = frame.alpha.cpu().numpy()
                if a.dtype == np.uint16:  # a 16-bit picture's alpha (the deep writers take it as it is)
                    a = u8_from_u16(a)
                im.putalpha(Image.fromarray(a, "L"))
            elif not _opaque(frame.alpha):  # (an alpha channel at full everywhere holds no transparency)
                msg = f"{path.name}: {path.suffix} cannot store alpha; transparency dropped"
                self.fallbacks.append(msg)
                log.warning(msg)
        if im.mode == "LA" and fmt not in ("PNG", "TIFF"):
            im = im.convert("RGBA")  # webp has no grey+alpha mode
        held = None  # a multi-page file's pages, once the last one is here
        if pages > 1 and fmt not in _MULTI_PAGE:
            self._note(f"only the first page or frame of multi-page pictures was written: {fmt or path.suffix} holds "
                       "one (write .tif, .heic, .webp or .png to keep them all)", path)
        elif pages > 1:
            # every page is restored: held until the last one comes, then written as one file
            # (a multi-page TIFF written back with its first page alone lost the rest, exit 0)
            # (with whether it has 16-bit pixels, and those a TIFF writes: a multi-page 16-bit TIFF's)
            held = self._pages.setdefault(path, [])
            depth = (frame.hi is not None, self._deep(frame, im, path) if frame.hi is not None and fmt == "TIFF" else None)
            if page == 0:
                held[:] = [(im, info, depth)]
            else:
                held.append((im, info.get("duration"), depth))
            if page + 1 < pages:
                frame.release()  # (counted when the file is written: a later page may fail)
                return
            del self._pages[path]
            im, info, _ = held[0]
            rest = [p for p, _, _ in held[1:]]
            if fmt in ("WEBP", "AVIF") and len({p.size for p in [im] + rest}) > 1:
                # an animation has one size (the writer refused the file: the run failed)
                self._note(f"only the first of pages of different sizes was written: a {fmt} animation holds one "
                           "size (write .tif or .heic to keep them all)", path)
                held, rest, pages = held[:1], [], 1
            if fmt not in ("TIFF", "HEIF") and len({p.mode for p in [im] + rest}) > 1:  # (one mode per animation)
                mode = "RGBA" if any(p.mode in ("RGBA", "LA") for p in [im] + rest) else "RGB"
                im, rest = im.convert(mode), [p.convert(mode) for p in rest]
        # (a name of its own: two runs writing into one folder at once clobbered each other's)
        tmp = hidden_temp(path, f".{uuid.uuid4().hex[:8]}.tmp")
        _heif_plugin(path)
        kwargs = self._save_options(path, im, info)
        irb = kwargs.pop("photoshop_irb", None)  # (JPEG: APP13 segments, put in after Pillow wrote it)
        if pages > 1 and fmt in _MULTI_PAGE:
            kwargs.update(save_all=True, append_images=rest)
            if fmt not in ("TIFF", "HEIF"):  # an animation keeps each frame's time on screen and its loop count
                durations = [d or 100 for d in [info.get("duration")] + [d for _, d, _ in held[1:]]]
                if info.get("default_image") and rest:
                    # an APNG's cover picture: written as the cover again in PNG (the durations are
                    # the animation's frames'); WebP and AVIF have no place for one
                    durations = durations[1:]
                    if fmt == "PNG":
                        kwargs["default_image"] = True
                    else:
                        self._note(f"the cover picture of animated PNGs (shown where animation is not; no frame of "
                                   f"the animation) was left out: {fmt} has no place for it (write .png to keep "
                                   "it)", path)
                        im, rest, pages = rest[0], rest[1:], pages - 1
                        kwargs["append_images"] = rest
                kwargs["duration"] = durations
                if info.get("loop") is not None:
                    kwargs["loop"] = info["loop"]
        # the pages written, each with whether it has 16-bit pixels: one, or a multi-page file's
        depths = [d for _, _, d in held] if held is not None else [(frame.hi is not None, None)]
        deep_out = any(has for has, _ in depths)  # written by a deep writer
        src_bits = int(info.get("bits", 16))  # (a deep picture from the API: 16)
        if deep_out and fmt not in ("PNG", "TIFF", "HEIF"):
            self._note(f"{src_bits}-bit pictures were written at 8 bits: {fmt or path.suffix} holds 8 (write .png or "
                       ".tif to keep them, .heic for 10/12)", path)
            deep_out = False
        elif deep_out and len(depths) > 1 and fmt != "TIFF":
            # (the deep writers here make one picture: OpenCV's PNG, pillow-heif's HEIC)
            self._note(f"{src_bits}-bit multi-page pictures were written at 8 bits: a multi-page {fmt} is written "
                       "at 8 bits here (write .tif to keep them)", path)
            deep_out = False
        heif_bits = 12 if src_bits >= 12 else 10
        if deep_out and fmt == "HEIF" and src_bits > heif_bits:
            self._note(f"{src_bits}-bit pictures were written at {heif_bits} bits: HEIC holds 10 or 12 (write .png or "
                       ".tif to keep them)", path)
        previews = info.get("previews") if fmt == "TIFF" else None
        if previews and not deep_out:
            # the input's previews stay previews (NewSubfileType 1), made again from the restored
            # pages: a viewer showing a preview shows the restored picture (another format has none)
            ordered: list = []
            for pos, page_im in enumerate([im] + (rest if pages > 1 else [])):
                ordered += [page_im] + [_preview(page_im, size, stored) for after, size, stored in previews
                                        if after == pos]
            kwargs.update(save_all=True, append_images=ordered[1:])
        if info.get("heif_gain_map"):
            self._note("the HDR gain map of iPhone HDR photos was dropped (no writer here carries a HEIC gain map); "
                       "HDR screens show the photo as SDR", path)
        gain, trailer = info.get("gain_map"), info.get("trailer")
        if gain is not None and fmt != "JPEG":
            self._note(f"the HDR gain map was dropped: {fmt or path.suffix} output cannot hold it (write .jpg to keep "
                       "it); HDR screens show the photo as SDR", path)
            gain = None
        if trailer and fmt != "JPEG":
            self._note(f"what JPEGs held after the picture (a motion photo's video, camera data) was dropped: "
                       f"{fmt or path.suffix} output cannot carry it (write .jpg to keep it)", path)
            trailer = None
        try:
            if gain is not None or trailer or irb:
                import io

                buf = io.BytesIO()
                im.save(buf, format="JPEG", **kwargs)
                data = with_app13(buf.getvalue(), irb)  # (before the MPF segment, which counts the bytes)
                if gain is not None:
                    gain = _turned_gain_map(gain, int(info.get("orientation") or 1))
                    data = _with_gain_map(data, gain, info.get("gain_map_iso"))
                tmp.write_bytes(data + (trailer or b""))
            elif not deep_out and fmt:
                # encoded in memory, then written by Python, which raises on a short write: Pillow's
                # JPEG encoder ignores one, so a full disk left a cut JPEG under the final name
                # (exit 0, the original photo replaced by its first 8 KB)
                import io

                buf = io.BytesIO()
                im.save(buf, format=fmt, **kwargs)
                tmp.write_bytes(_png_with(buf.getvalue(), info.get("png_colour")) if fmt == "PNG"
                                else buf.getbuffer())
            elif not deep_out:
                im.save(tmp, **kwargs)
            elif held is not None:  # a multi-page TIFF: each page at its own depth (an 8-bit one as it is)
                self._write_tiff16(tmp, path, [np.asarray(p) if d is None else d for p, _, (_, d) in held],
                                   kwargs, info, previews)
            else:
                deep = self._deep(frame, im, path)
                if fmt == "PNG":
                    _write_png16(tmp, deep, im, kwargs, colour=info.get("png_colour"))
                elif fmt == "HEIF":
                    _write_heif_deep(tmp, deep, kwargs, bits=heif_bits)
                else:
                    self._write_tiff16(tmp, path, [deep], kwargs, info, previews)
            self._place(tmp, path)
        except BaseException as exc:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # (never made: a read-only file system says EROFS)
                pass
            if isinstance(exc, OSError) and exc.filename is not None and Path(exc.filename).name == tmp.name:
                # said as the output's (the hidden temporary name is nothing the user asked for)
                raise OSError(exc.errno, exc.strerror, str(path)) from exc
            raise
        self.written.append(path)
        self.frames_written += pages if pages > 1 and fmt in _MULTI_PAGE else 1
        frame.release()

    def _unchanged(self, frame: Frame, info: dict, path: Path, fmt: str, pages: int) -> Path | None:
        """The input file of a photo in which no face was found, written in its own format: it is
        copied as it is, byte for byte (re-encoded, a JPEG lost up to 8 levels for nothing, and a
        phone's q90 JPEG grew at q95; its metadata is whole too). One picture of one page, as
        counted by the run (``frame.faces``; None: not counted, written as usual)."""
        source, own = info.get("source_path"), info.get("format")
        # (a camera JPEG with an MPF preview, which Pillow calls MPO, is a JPEG: it was re-encoded,
        # 0.7 levels off on average, and its preview dropped)
        if (not self.copy_unchanged or getattr(frame, "faces", None) != 0 or pages != 1 or source is None or not fmt
                or _AS_WRITTEN.get(own, own) != fmt
                or frame.alpha is not None and path.suffix.lower() not in _ALPHA_EXTS):
            return None
        # written as the loader said it would be: upright (EXIF/XMP orientation applied), RGB from
        # CMYK, 8-bit where its deep pixels could not be read, repaired (a JPEG's missing end
        # marker put back, a PNG's damaged optional chunk left out); the copy would be none of those
        if (info.get("orientation", 1) != 1 or info.get("mode") == "CMYK" or info.get("repaired")
                or int(info.get("bits", 8)) > 8 and frame.hi is None):
            return None
        source = Path(source)
        try:
            if not source.is_file():
                return None
        except OSError:
            return None
        if "copied" not in self._noted:
            self._noted.add("copied")
            log.info("photos in which no face was found are written as copies of their input, byte for byte "
                     "(first: %s)", source.name)
        if self.quality is not None and fmt in QUALITY_FORMATS:
            # (a quality asked for and not applied is said, once, as any unused option is)
            self._note(f"quality={self.quality} (--quality) is not used for photos in which no face was found: "
                       "they are copied as they are, byte for byte", path)
        return source

    def _place(self, tmp: Path, path: Path) -> None:
        """The finished photo ``tmp`` (a hidden temporary file beside ``path``) moved to ``path``,
        with an existing output's permissions; without ``overwrite``, never over a file written
        meanwhile."""
        keep_mode(path, tmp)
        try:
            if self.overwrite:
                tmp.replace(path)
            else:
                try:
                    place_new(tmp, path)
                except FileExistsError:
                    # written since the check (another run into the same folder)
                    raise OutputExistsError(f"output exists: {path} (written during this run, by another run or "
                                            "program)", hint="overwrite=True redoes it, skip_existing=True resumes a "
                                            "folder run") from None
        except OutputExistsError:
            raise
        except OSError as e:  # Windows: the old photo is open in a viewer, or read-only
            kept = keep_beside(tmp, path)
            if kept is None:
                raise
            raise EncodeError(f"the photo is complete and was kept as {kept}; {path} could not be "
                              f"replaced ({e.strerror or e})",
                              hint=f"{path.name} is in use by another program (a viewer) or read-only: close it, "
                              f"then move {kept.name} over it") from e

    def _place_copy(self, source: Path, path: Path) -> None:
        """``source`` copied to ``path`` through a hidden temporary file, as a restored photo is written."""
        tmp = hidden_temp(path, f".{uuid.uuid4().hex[:8]}.tmp")
        try:
            shutil.copyfile(source, tmp)
            self._place(tmp, path)
        except BaseException:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise

    def _deep(self, frame: Frame, im, path: Path) -> np.ndarray:
        """The 16-bit pixels to write of ``frame`` (which has them), whose 8-bit picture is ``im``."""
        has_alpha = im.mode in ("LA", "RGBA")
        if has_alpha and frame.alpha.dtype != torch.uint16:
            self._note("the alpha channel of 16-bit pictures was kept at 8 bits", path)
        return _deep_pixels(frame.hi.cpu().numpy(), grey=im.mode in ("L", "LA"),
                            alpha=frame.alpha.cpu().numpy() if has_alpha else None)

    def _write_tiff16(self, tmp: Path, path: Path, pages: list[np.ndarray], kwargs: dict, info: dict,
                      previews: list | None = None) -> None:
        """A 16-bit TIFF at ``tmp``, the output ``path``'s temporary file (tifffile: Pillow writes no
        16-bit RGB), of ``pages`` (the pictures written: one, or a multi-page file's, each at its own
        depth, 8 or 16 bits) with what ``kwargs`` carries:
        ICC profile, DPI, the input's compression (with the horizontal predictor; deflate, said, for
        one tifffile does not write: LZW needs imagecodecs), the descriptive text tags of its EXIF and its IPTC;
        other tags are reported. ``previews``: the input's (see :func:`tiff_pages`), made again from
        the pages they follow."""
        import tifffile

        extratags, dropped, software = [], [], None
        if kwargs.get("exif"):
            from PIL import Image

            exif = Image.Exif()
            exif.load(kwargs["exif"])
            for tag, value in exif.items():
                if tag == 305 and isinstance(value, str):
                    software = value  # tifffile writes Software itself (an extratag 305 is refused)
                elif tag == 270 and isinstance(value, str) and value.lstrip().startswith('{"shape"'):
                    pass  # tifffile's own shape note: the input's, which a turn made wrong (it warned)
                elif tag in _TIFF_TEXT_TAGS and isinstance(value, str):
                    extratags.append((tag, "s", 0, value, True))
                elif tag == 700 and isinstance(value, bytes):  # XMP (see _save_options)
                    extratags.append((700, "B", len(value), value, True))
                elif tag == 33723 and isinstance(value, bytes):  # IPTC (see _save_options)
                    extratags.append((33723, 7, len(value), value, True))
                elif tag not in (0x0112, 317):  # orientation: written upright anyway; predictor: set below
                    dropped.append(tag)
        if dropped:
            self._note(f"TIFF tags {sorted(dropped)} were dropped: the 16-bit TIFF writer carries the text tags "
                       "(description, make, model, date, artist, copyright), IPTC, ICC profile and DPI", path)
        dpi = kwargs.get("dpi")
        given, compression = info.get("compression"), None
        if given not in (None, "raw"):
            compression = _TIFF16_COMPRESSIONS.get(given, "zlib")
            if not _tifffile_writes(compression):
                compression = "zlib"
            if compression == "zlib" and given not in ("tiff_adobe_deflate", "tiff_deflate"):
                # (an LZW scan came back 1.3x bigger as deflate, unsaid; the 8-bit writer says its changes)
                why = (" (tifffile writes it with the imagecodecs package installed: pip install imagecodecs)"
                       if given in _TIFF16_COMPRESSIONS else "")
                self._note(f"the input's TIFF compression ({given}) is not written by the 16-bit TIFF writer "
                           f"here{why}: written losslessly as deflate instead", path)

        def layout(a: np.ndarray) -> dict:
            return dict(
                photometric="minisblack" if a.ndim == 2 or a.shape[2] == 2 else "rgb",
                extrasamples=("unassalpha",) if a.ndim == 3 and a.shape[2] in (2, 4) else None,
                # with horizontal differencing, as scanners and editors write deflate/LZW: without it a
                # 16-bit scan came back twice the size (335 KB LZW+predictor in, 563 KB out)
                compression=compression, predictor=True if compression not in (None, "packbits") else None,
                iccprofile=kwargs.get("icc_profile"),
                resolution=(float(dpi[0]), float(dpi[1])) if dpi else None, resolutionunit="INCH" if dpi else None,
                metadata=None)

        with tifffile.TiffWriter(tmp) as tif:
            for pos, deep in enumerate(pages):
                # (the file's tags with its first page, as Pillow writes a multi-page TIFF's)
                tags = dict(software=software, extratags=extratags) if pos == 0 else {}
                tif.write(deep, **tags, **layout(deep))
                for after, size, stored in previews or ():
                    if after != pos:
                        continue
                    import cv2

                    w, h = _preview_size(deep.shape[1::-1], size, stored)
                    small = cv2.resize(deep, (w, h), interpolation=cv2.INTER_AREA)
                    tif.write(small, subfiletype=1, **layout(small))

    def close(self) -> None:
        pass


@functools.lru_cache(maxsize=None)
def _tifffile_writes(compression: str) -> bool:
    """Whether tifffile writes a 16-bit TIFF with ``compression`` here (LZW, PackBits and zstd need
    the optional imagecodecs package; tifffile raises only when it is asked to write one)."""
    import tifffile

    try:
        tifffile.imwrite(io.BytesIO(), np.zeros((2, 2), np.uint16), compression=compression)
    except (KeyError, ImportError, ValueError, RuntimeError):
        return False
    return True


def _preview_size(page_size: tuple[int, int], size: tuple[int, int], stored: tuple[int, int]) -> tuple[int, int]:
    """A preview's (width, height) for a restored page of ``page_size``: the input preview's
    ``size``, turned as the page was (``stored``: the page's size as stored, before EXIF turned it)."""
    if tuple(page_size) != tuple(stored) and tuple(page_size) == tuple(stored)[::-1]:
        return size[1], size[0]
    return size[0], size[1]


def _preview(page, size: tuple[int, int], stored: tuple[int, int]):
    """The restored Pillow ``page`` shrunk to a TIFF preview, written as one (NewSubfileType 1)."""
    from PIL import Image

    p = page.resize(_preview_size(page.size, size, stored), Image.Resampling.LANCZOS)
    # (its own tags: the page's EXIF and XMP are the page's; profile, DPI, compression are shared)
    p.encoderinfo = {"tiffinfo": {254: 1}}
    return p


# Descriptive TIFF text tags a 16-bit TIFF keeps: ImageDescription, Make, Model, Software, DateTime,
# Artist, HostComputer, Copyright
_TIFF_TEXT_TAGS = {270, 271, 272, 305, 306, 315, 316, 33432}
_PNG_DEPTH_CHUNKS = {b"IHDR", b"IDAT", b"IEND", b"sBIT", b"PLTE", b"tRNS", b"bKGD", b"hIST"}


def _deep_pixels(hi: np.ndarray, *, grey: bool, alpha: np.ndarray | None) -> np.ndarray:
    """The 16-bit array to write: RGB, or grey (the luma Pillow's ``convert("L")`` takes, at 16
    bits), with the alpha channel when there is one (an 8-bit one scaled to 16)."""
    out = hi
    if grey:
        luma = hi[..., 0] * 0.299 + hi[..., 1] * 0.587 + hi[..., 2] * 0.114
        out = np.clip(np.rint(luma), 0, 65535).astype(np.uint16)[..., None]
    if alpha is not None:
        a16 = alpha if alpha.dtype == np.uint16 else alpha.astype(np.uint16) * 257
        out = np.concatenate([out, a16[..., None]], axis=2)
    return out[..., 0] if out.shape[2] == 1 else np.ascontiguousarray(out)


def _write_heif_deep(tmp: Path, deep: np.ndarray, kwargs: dict, *, bits: int) -> None:
    """A 10/12-bit HEIF (cameras' HIF, HDR HEIF) from the 16-bit picture, with the quality, ICC,
    EXIF, XMP and nclx colour description ``kwargs`` carry (pillow-heif's own writer: Pillow's
    plugin writes 8 bits only). Codes go in the top bits, as pillow-heif expects them."""
    import pillow_heif

    top = (1 << bits) - 1
    codes = ((deep.astype(np.uint32) * top + 32767) // 65535).astype(np.uint16) << (16 - bits)
    if codes.ndim == 2:
        mode = "L;16"
    else:
        mode = {2: "LA;16", 3: "RGB;16", 4: "RGBA;16"}[codes.shape[2]]
    h, w = codes.shape[:2]
    pillow_heif.encode(mode, (w, h), np.ascontiguousarray(codes).tobytes(), str(tmp), bit_depth=bits,
                       **{k: v for k, v in kwargs.items() if k in ("quality", "icc_profile", "exif", "xmp", "nclx_profile")})


def _png_chunk_list(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole chunk bytes) of a PNG, in order."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    out, i = [], 8
    while i + 8 <= len(data):
        n = int.from_bytes(data[i : i + 4], "big")
        out.append((data[i + 4 : i + 8], data[i : i + 12 + n]))
        i += 12 + n
    return out


def _write_png16(tmp: Path, deep: np.ndarray, im, kwargs: dict, *, colour: dict | None = None) -> None:
    """A 16-bit PNG with the metadata an 8-bit save would carry: OpenCV encodes the 16-bit
    pixels (Pillow cannot hold 16-bit RGB), Pillow writes the 8-bit picture with every ancillary
    chunk (ICC, EXIF, DPI, text, gamma...), and the file is the former's header and image data
    with the latter's other chunks, and ``colour`` (see :func:`_png_with`)."""
    import io

    import cv2

    buf = io.BytesIO()
    im.save(buf, format="PNG", **kwargs)
    if deep.ndim == 3 and deep.shape[2] == 2:  # OpenCV writes no grey + alpha PNG: as RGBA
        deep = deep[..., [0, 0, 0, 1]]
    if deep.ndim == 3:
        deep = deep[..., [2, 1, 0, 3][: deep.shape[2]]]  # OpenCV's BGR(A) order
    ok, enc = cv2.imencode(".png", deep)
    if not ok:
        raise OSError(f"OpenCV could not encode a 16-bit PNG of shape {deep.shape}")
    deep_chunks = _png_chunk_list(enc.tobytes())
    meta = [c for t, c in _png_chunk_list(buf.getvalue()) if t not in _PNG_DEPTH_CHUNKS]
    ihdr = [c for t, c in deep_chunks if t == b"IHDR"]
    idat = [c for t, c in deep_chunks if t == b"IDAT"]
    tail = [c for t, c in deep_chunks if t == b"IEND"]
    tmp.write_bytes(_png_with(b"\x89PNG\r\n\x1a\n" + b"".join(ihdr + meta + idat + tail), colour))
