"""IPTC and the other Photoshop image resources of a JPEG (its APP13 "Photoshop 3.0" segments).

News and archive photos carry their caption, credit, copyright, keywords and byline as an IPTC-NAA
record inside Photoshop's image resource blocks (IRBs: ``8BIM``, a 16-bit id, a Pascal name padded
to an even length, a 32-bit size, the data padded to an even length), in one or more APP13 segments
(a long one is split across several, each starting ``Photoshop 3.0\\0``). Pillow reads them but
writes none back: they are read here from the file's bytes and written into a JPEG output again.

Kept: every resource but those that describe the unrestored picture and would go stale beside the
restored one (:data:`_STALE`: its thumbnails, copies of EXIF/XMP/ICC that the output carries on its
own, channel and layer data, the old encoding's JPEG quality), and, where the picture is written
turned upright (its EXIF orientation), those drawn on the picture as stored (:data:`_DRAWN`: paths,
slices, guides...). The IPTC record is kept byte for byte, so the IPTC digest beside it (0x0425, the
MD5 of the record editors compare to tell whether another program changed it) stays true.
Resource data that does not parse is not carried at all (a reader would misread what follows the
damage), and the run says so. TIFF output gets the IPTC record alone (tag 33723); other formats
have no place for it (see ``ImageSink._save_options``).

A TIFF's IPTC record (its tag 33723, where Photoshop and ExifTool write it) is read as one
resource of its own (:func:`tiff_iptc_resources`), so it goes where the output keeps IPTC: a JPEG's
APP13 segment (it rode inside the EXIF block as tag 33723, where no photo app looks), a TIFF's tag
33723, and is said to be dropped elsewhere, as a JPEG's is.
"""
from __future__ import annotations

import struct

#: what starts each APP13 segment's payload (the older "Adobe_Photoshop2.5:" is not read)
HEADER = b"Photoshop 3.0\x00"
#: IRB signatures: Photoshop's, and those other writers use (ImageReady, PhotoDeluxe, ...)
_SIGNATURES = (b"8BIM", b"MeSa", b"PHUT", b"AgHg", b"DCSR")
IPTC_NAA = 0x0404
#: resources that describe the unrestored picture: channel counts and names, alpha/mask/layer
#: data, an indexed palette, the old JPEG quality, the thumbnails, an ICC profile and its
#: "untagged" flag (the output's own profile says that), and copies of the EXIF and XMP blocks
#: (written on their own, orientation reset: a copy saying 6 turned the upright picture again)
_STALE = frozenset({
    0x03E8,  # channels, rows, columns, depth, mode (Photoshop 2.0)
    0x03EB,  # indexed colour table (Photoshop 2.0)
    0x03EE,  # alpha channel names
    0x03EF,  # display info (obsolete: channels)
    0x03FE,  # quick mask channel
    0x0400,  # layer state
    0x0402,  # layer groups
    0x0406,  # JPEG quality (of the old encoding)
    0x0409,  # thumbnail (Photoshop 4.0, BGR)
    0x040C,  # thumbnail (Photoshop 5.0+)
    0x040F,  # ICC profile
    0x0411,  # ICC untagged flag
    0x0415,  # alpha channel names (Unicode)
    0x0416,  # indexed colour count
    0x0417,  # transparency index
    0x041D,  # alpha identifiers
    0x0422,  # EXIF data 1
    0x0423,  # EXIF data 3
    0x0424,  # XMP
    0x0429,  # layer comps
    0x042D,  # layer selection ids
    0x0430,  # layer groups enabled
    0x0435,  # channel display info
})
#: resources drawn on the picture as stored (positions or shape): wrong once it is turned upright
_DRAWN = frozenset({
    0x0401,  # working path
    0x0408,  # grid and guides
    0x040E,  # colour samplers
    0x041A,  # slices
    0x0428,  # pixel aspect ratio
    0x0431,  # colour samplers (CS3)
    0x0440,  # path selection state
    0x0BB7,  # clipping path name
    0x0BB8,  # origin path info
    *range(0x07D0, 0x0BB7),  # saved paths
})
#: of those, what a user drew (saved and clipping paths), said when left out; the rest (guides,
#: slices, samplers: Photoshop writes its defaults into every file) goes without a word
_PATHS = frozenset(range(0x07D0, 0x0BB8))
#: the IRB data one APP13 segment holds: its 16-bit length counts itself (2) and the header
APP13_CHUNK = 0xFFFF - 2 - len(HEADER)


def jpeg_app13(data: bytes) -> bytes | None:
    """The IRB data of a JPEG file's ``Photoshop 3.0`` APP13 segments, joined in their order (a
    long one is split across several), from those before its first scan; ``None``: it has none."""
    parts: list[bytes] = []
    i = 2
    if data[:2] != b"\xff\xd8":
        return None
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break
        m = data[i + 1]
        if m == 0xFF:  # fill byte
            i += 1
            continue
        if m in (0xDA, 0xD9):  # the scan (metadata comes before it), or the end
            break
        if m == 0x01 or 0xD0 <= m <= 0xD7:
            i += 2
            continue
        n = int.from_bytes(data[i + 2 : i + 4], "big")
        if n < 2:
            break
        seg = data[i + 4 : i + 2 + n]
        if m == 0xED and seg.startswith(HEADER):
            parts.append(seg[len(HEADER):])
        i += 2 + n
    return b"".join(parts) if parts else None


def blocks(irb: bytes) -> list[tuple[bytes, int, bytes, bytes]] | None:
    """``irb`` as ``(signature, id, name, data)`` blocks (``name``: the Pascal string's bytes, its
    length byte included, without its padding); ``None`` when it does not parse (a block cut short,
    an unknown signature): nothing of it is to be trusted then. Zero bytes after the last block
    (padding some writers leave) are allowed."""
    out = []
    i = 0
    while i < len(irb):
        if irb[i : i + 4] not in _SIGNATURES or i + 7 > len(irb):
            if not irb[i:].strip(b"\x00"):
                break  # (trailing padding)
            return None
        rid = int.from_bytes(irb[i + 4 : i + 6], "big")
        name_len = irb[i + 6]
        name = irb[i + 6 : i + 7 + name_len]
        j = i + 6 + name_len + 1
        j += (name_len + 1) & 1  # (the name, with its length byte, padded to an even length)
        if len(name) != name_len + 1 or j + 4 > len(irb):
            return None
        size = int.from_bytes(irb[j : j + 4], "big")
        j += 4
        if j + size > len(irb):
            return None
        out.append((irb[i : i + 4], rid, name, irb[j : j + size]))
        i = j + size + (size & 1)
    return out


def _pack(sig: bytes, rid: int, name: bytes, data: bytes) -> bytes:
    pad_name = b"\x00" if len(name) & 1 else b""
    return (sig + struct.pack(">H", rid) + name + pad_name + struct.pack(">I", len(data)) + data
            + (b"\x00" if len(data) & 1 else b""))


def kept_resources(irb: bytes | None, orientation: int = 1) -> tuple[bytes | None, str | None]:
    """The image resources ``irb`` (:func:`jpeg_app13`'s) to write with the restored picture, as
    one IRB stream (``None``: nothing to write), and what was left out that is worth saying
    (``None``: nothing; ``"damaged"``: it does not parse, nothing is kept; ``"paths"``: the picture
    is turned upright from EXIF ``orientation`` and its paths were left out). Thumbnails and other
    :data:`_STALE` resources go without a word: the restored picture replaces what they describe."""
    if not irb:
        return None, None
    parsed = blocks(irb)
    if parsed is None:
        return None, "damaged"
    turned = int(orientation or 1) != 1
    keep = [b for b in parsed if b[1] not in _STALE and not (turned and b[1] in _DRAWN)]
    paths = turned and any(b[1] in _PATHS for b in parsed)
    out = b"".join(_pack(*b) for b in keep)
    return out or None, "paths" if paths else None


#: resources a TIFF output carries otherwise: the IPTC record (tag 33723), its digest (true of the
#: record kept), the print resolution (the TIFF's resolution tags)
_IN_TIFF = frozenset({IPTC_NAA, 0x0425, 0x03ED})


def beyond_tiff(irb: bytes | None) -> bool:
    """``irb`` holds resources a TIFF output does not carry (see :data:`_IN_TIFF`)."""
    return any(rid not in _IN_TIFF for _, rid, _, _ in blocks(irb or b"") or [])


def iptc_record(irb: bytes | None) -> bytes | None:
    """The IPTC-NAA record (resource 0x0404) of an IRB stream, or ``None``."""
    for _, rid, _, data in blocks(irb or b"") or []:
        if rid == IPTC_NAA and data:
            return data
    return None


def iim_record(raw) -> bytes | None:
    """``raw`` (a TIFF tag 33723's bytes) as an IPTC-NAA record: its datasets (``0x1C``, record,
    dataset, a 16-bit size or an extended one, the data), without the zero bytes that pad it to
    the 4-byte LONGs Photoshop stores it as; ``None`` where it is not one."""
    data = bytes(raw or b"")
    i = 0
    while i + 5 <= len(data) and data[i] == 0x1C:
        size = int.from_bytes(data[i + 3 : i + 5], "big")
        head = 5
        if size & 0x8000:  # an extended dataset: its size in the next (size & 0x7FFF) bytes
            n = size & 0x7FFF
            if not 1 <= n <= 4 or i + 5 + n > len(data):
                return None
            size, head = int.from_bytes(data[i + 5 : i + 5 + n], "big"), 5 + n
        if i + head + size > len(data):
            return None
        i += head + size
    if not i or data[i:].strip(b"\x00"):
        return None
    return data[:i]


def tiff_iptc_resources(raw) -> bytes | None:
    """A TIFF's IPTC record (tag 33723's bytes) as an image resource stream holding it alone
    (resource 0x0404, as a JPEG's APP13 holds it), or ``None`` where it is not an IPTC record."""
    record = iim_record(raw)
    return _pack(b"8BIM", IPTC_NAA, b"\x00", record) if record else None


def app13_segments(irb: bytes) -> bytes:
    """``irb`` as APP13 segments (marker, length, ``Photoshop 3.0\\0``, up to :data:`APP13_CHUNK`
    bytes): whole blocks are kept together in one segment where they fit (readers that parse each
    segment on its own, as Pillow does, then read them all); a block over one segment's room is
    split across segments, which readers join, as Photoshop writes a long one."""
    chunks: list[bytes] = []
    cur = b""
    for blk in [_pack(*b) for b in blocks(irb) or []]:
        if len(cur) + len(blk) <= APP13_CHUNK:
            cur += blk
            continue
        if cur:
            chunks.append(cur)
            cur = b""
        while len(blk) > APP13_CHUNK:
            chunks.append(blk[:APP13_CHUNK])
            blk = blk[APP13_CHUNK:]
        cur = blk
    if cur:
        chunks.append(cur)
    return b"".join(b"\xff\xed" + struct.pack(">H", 2 + len(HEADER) + len(c)) + HEADER + c for c in chunks)


def with_app13(jpeg: bytes, irb: bytes | None) -> bytes:
    """The JPEG ``jpeg`` (as Pillow wrote it) with ``irb`` in APP13 segments after its APPn
    segments (JFIF, EXIF, ICC, XMP), before its tables; unchanged for no ``irb``."""
    if not irb:
        return jpeg
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF and (0xE0 <= jpeg[pos + 1] <= 0xEF or jpeg[pos + 1] == 0xFE):
        pos += 2 + int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
    return jpeg[:pos] + app13_segments(irb) + jpeg[pos:]
