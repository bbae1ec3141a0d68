"""Photo formats that are not read here, told by their bytes (and names): camera raw photos (DNG,
which phones write as "RAW" / ProRAW, and other cameras' raw files) and JPEG XL.

Neither can be restored as it is: a raw file holds the sensor's unprocessed data (a DNG stores a
small preview picture in its first IFD and the raw image in a SubIFD: read as a TIFF, only the
preview came back), and Pillow has no JPEG XL decoder here (FFmpeg found no decoder either). Each
is refused with what it is and how to convert it, never taken for a TIFF or a video.
"""
from __future__ import annotations

import struct
from pathlib import Path

#: camera raw photos' extensions: DNG (phones' RAW / ProRAW, Adobe's converter, many cameras) and
#: the makers' own (Canon, Nikon, Sony, Olympus, Panasonic, Fujifilm, Pentax, Samsung, ...)
RAW_EXTS = (".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf",
            ".pef", ".srw", ".3fr", ".iiq", ".x3f", ".erf", ".mrw", ".kdc", ".dcr", ".rwl")
#: JPEG XL's extension
JXL_EXTS = (".jxl",)
#: the TIFF tag that makes a TIFF a DNG (DNGVersion)
DNG_VERSION_TAG = 50706
#: JPEG XL: a bare codestream, and the ISO-BMFF container's signature box
_JXL_CODESTREAM = b"\xff\x0a"
_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
#: at most this many IFD0 entries are looked through (a damaged count is no DNG)
_MAX_ENTRIES = 4096

RAW_HINT = ("export a JPEG, TIFF or HEIC of it from the photo app or a raw developer (Lightroom, darktable, "
            "RawTherapee) and restore that")
JXL_HINT = ("convert it to JPEG, PNG or HEIC (libjxl's `djxl photo.jxl photo.png`, or export it from the photo "
            "app) and restore that")


def _ifd0_tags(head: bytes) -> set[int] | None:
    """The tags of a TIFF's (or BigTIFF's) first IFD, from the file's first bytes ``head``
    (None: not a TIFF, or its IFD0 lies beyond ``head``)."""
    if head[:2] == b"II":
        bo = "<"
    elif head[:2] == b"MM":
        bo = ">"
    else:
        return None
    try:
        magic = struct.unpack_from(bo + "H", head, 2)[0]
        if magic == 42:
            at = struct.unpack_from(bo + "I", head, 4)[0]
            count = struct.unpack_from(bo + "H", head, at)[0]
            size, first, fmt = 12, at + 2, "H"
        elif magic == 43:  # BigTIFF
            at = struct.unpack_from(bo + "Q", head, 8)[0]
            count = struct.unpack_from(bo + "Q", head, at)[0]
            size, first, fmt = 20, at + 8, "H"
        else:
            return None
        if count > _MAX_ENTRIES:
            return None
        return {struct.unpack_from(bo + fmt, head, first + k * size)[0] for k in range(count)
                if first + k * size + 2 <= len(head)}
    except struct.error:
        return None


def is_tiff(head: bytes) -> bool:
    """The bytes begin as a TIFF (or BigTIFF) does."""
    return head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


def unread_kind(head: bytes, name: str | None = None) -> str | None:
    """``"dng"`` (a TIFF with the DNGVersion tag), ``"raw"`` (another camera raw photo, by its
    name), ``"jxl"`` (JPEG XL by its signature, or by its name where the bytes are no other
    picture) or None, for a file whose first bytes are ``head`` (a few hundred KiB: enough for
    IFD0, which cameras and phones write near the start) and whose name is ``name``."""
    ext = Path(name).suffix.lower() if name else ""
    if head.startswith(_JXL_CODESTREAM) or head.startswith(_JXL_CONTAINER):
        return "jxl"
    if is_tiff(head):
        tags = _ifd0_tags(head)
        if tags is not None and DNG_VERSION_TAG in tags:
            return "dng"
    if ext == ".dng":
        return "dng"
    if ext in RAW_EXTS:
        return "raw"
    if ext in JXL_EXTS and not _picture_signature(head):
        return "jxl"
    return None


def _picture_signature(head: bytes) -> bool:
    """The bytes begin as a picture format read here does (a JPEG or PNG saved as .jxl is one)."""
    return (head.startswith((b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")) or is_tiff(head)
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP") or head[4:8] == b"ftyp")


#: how much of a file is read to tell what it is
HEAD_BYTES = 256 * 1024


def read_head(src) -> bytes:
    """The first :data:`HEAD_BYTES` of a path, bytes or a binary file object (its position kept)."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src[:HEAD_BYTES])
    if hasattr(src, "read"):
        at = src.tell()
        try:
            return _head_of(src)
        finally:
            src.seek(at)
    with open(src, "rb") as f:
        return _head_of(f)


def _head_of(f) -> bytes:
    """A file's first bytes: a few, or :data:`HEAD_BYTES` of a TIFF (whose IFD0 is looked through)."""
    head = f.read(16)
    return head + f.read(HEAD_BYTES - len(head)) if is_tiff(head) else head


def describe(kind: str, name: str | None = None) -> tuple[str, str]:
    """(what a file of ``kind`` (see :func:`unread_kind`) is, why it is not read), in words."""
    if kind == "jxl":
        return "a JPEG XL photo", "JPEG XL photos are not read (Pillow has no JPEG XL decoder here)"
    raw = "raw photos (the camera's unprocessed sensor data) are not read here"
    if kind == "dng":
        return "a raw DNG photo", raw + "; read as a TIFF, only the small preview stored beside the raw image would come out"
    ext = Path(name).suffix.upper().lstrip(".") if name else ""
    return f"a camera raw photo{f' ({ext})' if ext else ''}", raw


def unread_photo(src, name: str | None = None) -> tuple[str, str, str] | None:
    """``(kind, what it is and why it is not read, what to do)`` for a photo in a format not read
    here (see the module doc), or None. ``src``: a path (its name counts too), bytes or a binary
    file object; ``name``: the name to judge by where ``src`` has none (an upload's file name). A
    file that cannot be read is None (its reader says why)."""
    if name is None and isinstance(src, (str, Path)):
        name = str(src)
    try:
        head = read_head(src)
    except (OSError, ValueError):
        return None
    kind = unread_kind(head, name)
    if kind is None:
        return None
    what, why = describe(kind, name)
    return kind, f"{what}: {why}", JXL_HINT if kind == "jxl" else RAW_HINT


def unread_error(src, name: str | None = None, *, label: str | None = None):
    """The :class:`~stream_gpen.errors.NotMediaError` refusing a photo in a format not read here
    (named ``label``, else its path), or None (see :func:`unread_photo`)."""
    from stream_gpen.errors import NotMediaError

    found = unread_photo(src, name)
    if found is None:
        return None
    _, said, hint = found
    who = label if label is not None else str(src if isinstance(src, (str, Path)) else name or "the image")
    return NotMediaError(f"{who} is {said}", hint=hint)


def folder_kinds(paths) -> dict[str, list[Path]]:
    """The photos in formats not read here among a folder's other files, by their names (a folder
    walk judges by extension): ``{"raw DNG": [...], "JPEG XL": [...]}`` in that order, empty ones
    left out. (A .tif that is a DNG, or a .jpg that is a JPEG XL, is refused when read.)"""
    out: dict[str, list[Path]] = {}
    for q in paths:
        ext = Path(q).suffix.lower()
        key = ("raw DNG" if ext == ".dng" else "camera raw" if ext in RAW_EXTS
               else "JPEG XL" if ext in JXL_EXTS else None)
        if key is not None:
            out.setdefault(key, []).append(Path(q))
    return {k: out[k] for k in ("raw DNG", "camera raw", "JPEG XL") if k in out}


__all__ = ["RAW_EXTS", "JXL_EXTS", "unread_kind", "unread_photo", "unread_error", "folder_kinds", "is_tiff",
           "read_head"]
