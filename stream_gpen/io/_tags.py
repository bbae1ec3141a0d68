"""Container and stream metadata carried from the input to the output (tags, chapters, attachments).

What a phone or camera writes next to the pictures -- creation time, GPS location, make/model,
title, the timecode, per-track language and title, chapters, MKV font attachments -- is not
needed to decode the video, so FFmpeg/PyAV writers leave it out unless told. Losing it silently
breaks photo libraries (clips sorted by date, shown on a map) and subtitle styling (ASS fonts).

Kept: every global and per-stream tag except those the muxer or encoder regenerates (brands,
``encoder``, mkvmerge's statistics, ...); chapters where the container has them (mp4, mov, mkv,
webm); attachments into Matroska; the QuickTime ``tmcd`` timecode track (or the file's own
timecode: MXF, a Matroska's global ``TIMECODE``) as the video stream's ``timecode`` tag, from which the mov/mp4 muxer writes a new ``tmcd`` track (and mkv a TIMECODE
tag). Apple's ``com.apple.quicktime.*`` keys (make, model, ISO 6709 location) need QuickTime
``mdta`` metadata, switched on for mp4/mov output when the input has such keys. What a container
cannot hold is reported (container tags into avi/ts/HLS/DASH, and those the mov muxer has no atom for;
chapters into avi/ts; attachments outside Matroska). A Matroska ``DATE_RECORDED`` or
``DESCRIPTION`` an .mp4/.mov has no atom for fills its empty ``date`` / ``comment`` slot.
"""
from __future__ import annotations

import functools
import logging

log = logging.getLogger(__name__)

# Written by the muxer/encoder itself, or describing the *input* file (mkvmerge statistics, which
# would be wrong for the new stream): never copied. Compared lower-case, language suffix removed.
_REGENERATED = {
    "major_brand", "minor_version", "compatible_brands", "encoder", "encoding_tool", "vendor_id",
    "duration", "number_of_frames", "number_of_bytes", "bps", "_statistics_writing_app",
    "_statistics_writing_date_utc", "_statistics_tags",
    # the program that wrote the input (an AVI's ISFT, which FFmpeg reads as "software"): the AVI
    # muxer writes its own over it, and it is not true of the new file in any container
    "software",
    # an MXF's structural identifiers and its Identification set (the package and generation IDs of
    # the input file, the operational pattern, the company/product/version of the program that
    # wrote it): the MXF muxer writes new ones, and in any other container they are noise that
    # claims to identify the input (an mkv's tags, "container tags dropped" for mp4)
    "uid", "generation_uid", "material_package_umid", "file_package_umid", "operational_pattern_ul",
    "company_name", "product_name", "product_uid", "product_version", "product_version_num",
    "toolkit_version_num", "application_platform",
}
_MOV = {"mov", "mp4", "ipod"}
_AVI_INFO = {"artist", "comment", "copyright", "date", "genre", "language", "title", "album", "track", "subject",
             "encoder", "timecode", "encoded_by"}
_CHAPTER_FORMATS = ("mp4", "mov", "ipod", "matroska", "webm")


def _fmts(container) -> set[str]:
    return set(container.format.name.split(","))


def _hls_fmp4(container) -> bool:
    """An HLS output whose segments are fragmented MP4 (HEVC: see ``segment_names`` in
    ``_sink``), not MPEG-TS: its init segment (``NAME_init.mp4``) is written by the mp4 muxer and
    keeps the container tags and track titles an .mp4 keeps (measured: a TS segment keeps none,
    so every HLS was said to drop them where an HEVC one had them). Its tracks' marks it loses
    all the same (the HLS muxer hands its mp4 muxer no dispositions)."""
    return "hls" in _fmts(container) and (getattr(container, "options", None) or {}).get("hls_segment_type") == "fmp4"


def _base(key: str) -> str:
    k = key.lower()
    if len(k) > 4 and k[-4] == "-" and k[-3:].isalpha():  # "location-eng": a language variant
        return k[:-4]
    return k


def clean_tags(tags: dict, *, extra_skip: tuple[str, ...] = (), for_mov: bool = False) -> dict:
    """``tags`` without the keys the writer regenerates (and a ``key-eng`` duplicate of ``key``).

    ``for_mov``: keys as QuickTime readers expect them. FFmpeg reads Matroska tags upper-case
    (``COM.APPLE.QUICKTIME.MAKE``) and the mov muxer writes ``mdta`` keys verbatim, while Apple
    Photos looks for ``com.apple.quicktime.location.ISO6709`` exactly."""
    lower = {k.lower(): v for k, v in tags.items()}
    out = {}
    for k, v in tags.items():
        b = _base(k)
        if b in _REGENERATED or b in extra_skip or v is None:
            continue
        if b != k.lower() and lower.get(b) == v:
            continue  # "location-eng" next to an equal "location"
        if for_mov:
            k = k.lower().replace(".iso6709", ".ISO6709")
        out[k] = str(v)
    return out


def copy_container_tags(inp, out, window: tuple[float, float | None] | None = None) -> list[str]:
    """Global tags and chapters of ``inp`` into ``out`` (before its header is written).

    ``window``: the (start, end) seconds of the input the output holds (a trimmed output starts
    at ``start``): chapters are moved by ``-start`` and cut to the window; those outside it go.
    Returns what could not be carried (human-readable, for the run summary)."""
    lost: list[str] = []
    fmts = _fmts(out)
    # (the timecode is the video's, moved by a --start cut and written once by the sink from
    # timecode_of: copied here too, the mov muxer wrote the unmoved global one over it and
    # Matroska held both)
    tags = clean_tags(dict(inp.metadata), extra_skip=("timecode",), for_mov=bool(fmts & _MOV))
    if fmts & _MOV and any(k.lower().startswith("com.apple.quicktime.") for k in tags):
        # make/model/ISO 6709 location of iPhone clips exist only as QuickTime mdta keys
        flags = out.options.get("movflags", "")
        out.options["movflags"] = (flags + "+use_metadata_tags") if flags else "use_metadata_tags"
    advice = "write .mkv, .mp4 or .mov to keep them"
    fmp4 = _hls_fmp4(out)
    if fmts & {"mpegts", "hls"} and not fmp4:  # a transport stream (an HLS playlist's segments too) names a service/provider only
        cannot = sorted(tags)
    elif "dash" in fmts:  # the MPD holds the title alone (its ProgramInformation), its fMP4 segments none
        cannot = sorted(k for k in tags if _base(k) != "title")
    elif "avi" in fmts:  # RIFF INFO chunks (FFmpeg's ff_riff_info_conv) hold a fixed set of keys
        cannot = sorted(k for k in tags if _base(k) not in _AVI_INFO)
    elif fmts & _MOV_MUXER or fmp4:
        # the mov muxer writes a fixed set of iTunes (mp4) / QuickTime udta (mov) atoms and drops
        # every other key (unless in mdta mode, above): a Matroska's DATE_RECORDED, DESCRIPTION...
        # (of the movflags only this one changes what is written; faststart cannot be measured in memory)
        flags = "use_metadata_tags" if "use_metadata_tags" in out.options.get("movflags", "") else ""
        fmt = "mp4" if fmp4 else sorted(fmts & _MOV_MUXER)[0]
        tags = _fill_mov_slots(tags, fmt, flags)
        cannot = sorted(mov_tags_dropped(fmt, flags, tuple(tags.items())))
        advice = ".mkv keeps them"
    else:
        cannot = []
    out.metadata.update(tags)
    if cannot:
        spelt = {k.lower(): k for k in inp.metadata}  # (named as the input spells them)
        cannot = [spelt.get(k.lower(), k) for k in cannot]
        lost.append(f"container tags dropped: the {out.format.name} container cannot hold {', '.join(cannot)} "
                    f"({advice})")
    try:
        chapters = inp.chapters()
    except (AttributeError, ValueError):
        chapters = []
    if chapters and window is not None:
        chapters = _window_chapters(chapters, *window)
    if chapters:
        if fmts & set(_CHAPTER_FORMATS):
            out.set_chapters(chapters)
        else:
            lost.append(chapters_refused(out.format.name, len(chapters)))
    return lost


def chapters_refused(fmt: str, n: int) -> str | None:
    """The note for ``n`` chapters an output of muxer ``fmt`` cannot hold, or None where it holds
    them (the sink's, and ``info``'s plan for the default output)."""
    if set(fmt.split(",")) & set(_CHAPTER_FORMATS):
        return None
    return f"{n} chapter(s) dropped: the {fmt} container cannot hold chapters (write .mkv, .mp4 or .mov to keep them)"


def cover_refused(fmt: str, index: int, codec: str) -> str | None:
    """The note for cover art stream ``index`` (``codec``) an output of muxer ``fmt`` has no place
    for, or None where it keeps it (an attached picture in mp4, an attachment in Matroska)."""
    if set(fmt.split(",")) & (COVER_MUXERS | {"matroska"}):
        return None
    return f"cover art (stream #{index}, {codec}) dropped: the {fmt} container cannot hold it"


#: the formats FFmpeg's mov muxer (movenc) writes, whose tags it keeps from a fixed list (not 3GP:
#: its 3GPP udta tags are written but FFmpeg's own reader does not read them back, so they cannot be
#: measured here)
_MOV_MUXER = {"mov", "mp4", "ipod", "psp", "ismv", "f4v"}
#: a key the mov muxer drops -> the key of the standard slot it may fill where that slot is empty
#: (Matroska's recording date becomes the date QuickTime/iTunes readers show; a .mov's ``comment``
#: is written as both its QuickTime description and comment)
_MOV_SLOTS = {"date_recorded": "date", "description": "comment"}


def _fill_mov_slots(tags: dict, fmt: str, flags: str) -> dict:
    """``tags`` with each key the muxer drops moved to the empty standard slot that means the same
    (see :data:`_MOV_SLOTS`) where the muxer keeps that slot."""
    dropped = mov_tags_dropped(fmt, flags, tuple(tags.items()))
    present = {_base(k) for k in tags}
    out = dict(tags)
    for k in sorted(dropped):
        slot = _MOV_SLOTS.get(_base(k))
        if slot is None or slot in present:
            continue
        if slot in mov_tags_dropped(fmt, flags, ((slot, tags[k]),)):
            continue
        out[slot] = out.pop(k)
        present.add(slot)
        log.info("container tag %s written as %s (the %s muxer has no place for %s)", k, slot, fmt, k)
    return out


@functools.lru_cache(maxsize=64)
def mov_tags_dropped(fmt: str, flags: str, items: tuple[tuple[str, str], ...]) -> frozenset[str]:
    """The keys of ``items`` the mov muxer for ``fmt`` (with ``movflags`` ``flags``: "" or
    "use_metadata_tags") does not write:
    a tiny file written in memory with these tags and read back (keys compared case-insensitively,
    as FFmpeg's dictionary does). Measured rather than listed: which keys each mode writes (mp4's
    iTunes list, mov's udta list, 3GP's) changes with the FFmpeg version."""
    import io

    import av
    import numpy as np

    buf = io.BytesIO()
    try:
        with av.open(buf, "w", format=fmt, options={"movflags": flags} if flags else {}) as c:
            c.metadata.update(dict(items))
            s = c.add_stream("aac", rate=8000, layout="mono")
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 8000, 0
            for p in [*s.encode(f), *s.encode(None)]:
                c.mux(p)
        buf.seek(0)
        with av.open(buf, format=fmt) as c:
            back = {_base(k) for k in c.metadata}
    except (av.error.FFmpegError, ValueError, OSError):
        return frozenset()  # (no better answer: say nothing, as before)
    return frozenset(k for k, _ in items if _base(k) not in back)


def _window_chapters(chapters: list[dict], start: float, end: float | None) -> list[dict]:
    out = []
    for ch in chapters:
        tb = ch["time_base"]
        s, e = float(ch["start"] * tb) - start, float(ch["end"] * tb) - start
        if e <= 0 or (end is not None and s >= end - start):
            continue
        s, e = max(s, 0.0), e if end is None else min(e, end - start)
        out.append({**ch, "start": round(s / tb), "end": round(e / tb)})
    return out


#: ISO 639-2's twenty languages with two codes (bibliographic / terminology)
_TWINS = {"alb": "sqi", "arm": "hye", "baq": "eus", "bur": "mya", "chi": "zho", "cze": "ces", "dut": "nld",
          "fre": "fra", "geo": "kat", "ger": "deu", "gre": "ell", "ice": "isl", "mac": "mkd", "mao": "mri",
          "may": "msa", "per": "fas", "rum": "ron", "slo": "slk", "tib": "bod", "wel": "cym"}
_TWINS.update({t: b for b, t in list(_TWINS.items())})


def language_for(out_container, code: str) -> str:
    """The language ``code`` as the output's muxer keeps it. FFmpeg's QuickTime (.mov) muxer
    writes only the codes of the old Macintosh table, which has one code of each twin ("fra" but
    "ger", "chi", "dut"): "fre", "deu", "zho" (what mkvmerge and phones write) vanished without a
    note. There the twin it keeps is used; other muxers keep either."""
    if "mov" not in _fmts(out_container) or _mov_keeps(code):
        return code
    twin = _TWINS.get(code.lower())
    return twin if twin is not None and _mov_keeps(twin) else code


@functools.lru_cache(maxsize=None)
def _mov_keeps(code: str) -> bool:
    """Whether the mov muxer keeps language ``code`` (a tiny file written in memory and read back)."""
    import io

    import av
    import numpy as np

    buf = io.BytesIO()
    try:
        with av.open(buf, "w", format="mov") as c:
            s = c.add_stream("pcm_s16le", rate=8000, layout="mono")
            s.metadata["language"] = code
            f = av.AudioFrame.from_ndarray(np.zeros((1, 8), np.int16), format="s16", layout="mono")
            f.sample_rate, f.pts = 8000, 0
            for p in [*s.encode(f), *s.encode(None)]:
                c.mux(p)
        buf.seek(0)
        with av.open(buf, format="mov") as c:
            return c.streams[0].metadata.get("language") == code
    except (av.error.FFmpegError, ValueError, IndexError):
        return True  # (no better answer: keep the code as it is)


#: The marks of a track a viewer's player acts on (which subtitles show by themselves, which audio
#: is the description for the blind, the commentary...), in the words a note uses
_MARKS = {"forced": "forced", "hearing_impaired": "hearing impaired", "visual_impaired": "audio description",
          "comment": "commentary", "original": "original language", "dub": "dub", "captions": "captions",
          "descriptions": "descriptions"}
#: Of those, the ones each FFmpeg muxer writes and reads back (measured with FFmpeg 8 on every
#: flag alone; a container not listed is not judged). WebM keeps only default/forced, QuickTime
#: (.mov/.m4a/.3gp) only the track's enabled flag, MPEG-TS the ISO 639 descriptor's audio type.
_KEPT_MARKS = {
    "matroska": {"forced", "hearing_impaired", "visual_impaired", "comment", "original", "dub"},
    "webm": {"forced"},
    "mp4": {"forced", "hearing_impaired", "visual_impaired", "comment", "dub", "captions", "descriptions"},
    "mov": set(), "ipod": set(), "3gp": set(),
    "mpegts": {"hearing_impaired", "visual_impaired"},
    # (its muxer gives its segments no marks, MPEG-TS or fMP4: a flag kept in .ts or .mp4 is lost in .m3u8)
    "hls": set(),
    "dash": set(),  # (its MPD has no Role/Accessibility for them, its fMP4 segments no kind boxes)
    "avi": set(), "flv": set(), "ogg": set(),
}


#: containers whose muxer writes no per-stream language (measured with FFmpeg 8: AVI's ``strn``
#: chunk holds the title only, FLV has no per-track tags)
_NO_LANGUAGE = {"avi", "flv"}
#: formats whose muxers write no per-stream title (an audio track's "Commentary", "Surround"; a
#: DASH MPD has no Label for it; HLS only in MPEG-TS segments: see :func:`_hls_fmp4`)
_NO_TITLE = {"mpegts", "hls", "dash", "flv"}


def marks_lost(container, index: int, disposition: int, *, language: str | None = None,
               title: str | None = None) -> str | None:
    """A note naming the marks (:data:`_MARKS`) of input stream ``index`` that ``container``'s
    format cannot hold, or None. A hearing-impaired or commentary flag that vanishes turns SDH
    subtitles into ordinary ones and a commentary into a second main track in every player.
    ``language``: the stream's language code, named too where the container drops it (a player
    then no longer picks the viewer's language, and an English and a French track look alike).
    ``title``: the stream's title, named likewise where the container writes none (MPEG-TS:
    "Main", "Commentary" and "Surround" all read "Audio 1/2/3")."""
    names = _fmts(container)
    lang = (f"language '{language}'" if language and language.lower() not in ("und", "")
            and names & _NO_LANGUAGE else None)
    if title and title.strip() and names & _NO_TITLE and not _hls_fmp4(container):
        lang = " and its ".join(w for w in (lang, f"title {title.strip()!r}") if w)
    kept = next((_KEPT_MARKS[n] for n in names if n in _KEPT_MARKS), None)
    lost, flags = [], []
    if kept is not None and disposition:
        import av

        D = av.stream.Disposition
        flags = [flag for flag in _MARKS if flag not in kept and int(disposition) & int(getattr(D, flag, 0) or 0)]
        lost = [_MARKS[flag] for flag in flags]
    if not lost and lang is None:
        return None
    what = f"{', '.join(lost)} mark{'s' if len(lost) > 1 else ''}" if lost else ""
    what = " and its ".join(w for w in (lang, what) if w)
    it = "them" if len(lost) + (lang is not None) + (lang is not None and " and its " in lang) > 1 else "it"
    # (advice only where another container keeps them all: "the matroska container has no place for
    # it (.mkv keeps it)" for a captions mark into .mkv)
    where = next((ext for ext, fmt in ((".mkv", "matroska"), (".mp4", "mp4"))
                  if fmt not in names and set(flags) <= _KEPT_MARKS[fmt]), None)
    return (f"stream #{index}: its {what} dropped: the {'/'.join(sorted(names))} container has no place for {it}"
            + (f" ({where} keeps {it})" if where else ""))


def copy_stream_tags(ins, outs, *, encoded: bool = False) -> str | None:
    """Per-stream tags (language, title, timecode, creation time, ...) and disposition (default,
    forced, hearing impaired, ...) from input stream ``ins`` to output stream ``outs``.

    ``encoded``: the stream was re-encoded, so tags about its old encoding are not carried.
    Returns a note when the output's container cannot hold some of its marks or its language
    (see :func:`marks_lost`), else None."""
    # A WebM's VP8/VP9 alpha flag (Matroska's AlphaMode element, read as the tag "alpha_mode"):
    # re-encoded, the encoder's own output decides it (the muxer writes it for alpha it is given);
    # copied as a tag it read back upper-case (ALPHA_MODE) and claimed alpha for a stream written
    # without it. A stream copied as it is keeps it, in the muxer's spelling.
    tags = clean_tags(dict(ins.metadata), extra_skip=("handler_name", "alpha_mode") if encoded else (),
                      for_mov=bool(_fmts(outs.container) & _MOV))
    for k in [k for k in tags if k.lower() == "alpha_mode" and k != "alpha_mode"]:
        tags["alpha_mode"] = tags.pop(k)
    if "name" in tags and "title" not in tags:
        # the mov demuxer reads a track's title as "name"; every muxer writes it from "title"
        tags["title"] = tags.pop("name")
    if tags.get("language"):
        tags["language"] = language_for(outs.container, tags["language"])
    for k, v in tags.items():
        outs.metadata[k] = v
    if ins.type == "video":  # the muxer's default flag is right (one video track); no viewer picks its language
        return marks_lost(outs.container, ins.index, 0, title=tags.get("title"))
    try:
        disp = int(ins.disposition)
        if disp:
            outs.disposition = disp
    except (AttributeError, ValueError, TypeError):
        disp = 0
    return marks_lost(outs.container, ins.index, disp, language=tags.get("language"), title=tags.get("title"))


def timecode_of(container, video_stream) -> str | None:
    """The start timecode of the video (its own tag, a ``tmcd`` track's, or the file's: an MXF
    holds it at the file level only, a Matroska may as a global ``TIMECODE``), or None."""
    tc = _timecode_tag(video_stream.metadata)
    if tc:
        return tc
    for s in container.streams:
        if s.type == "data" and s.metadata.get("timecode"):
            return s.metadata["timecode"]
    return _timecode_tag(container.metadata)


def _timecode_tag(tags) -> str | None:
    return next((v for k, v in tags.items() if k.lower() == "timecode" and v), None)


def is_chapter_track(stream) -> bool:
    """A QuickTime chapter text track: FFmpeg reads it into chapters and discards its packets.

    Also one FFmpeg did not take for one: an mp4/mov with a timecode track, as FFmpeg's own muxer
    writes it, refers to its chapter track from no track (the video's one track reference names
    the ``tmcd`` track), so the demuxer reads the chapters from the Nero ``chpl`` list and leaves
    the text track as an ordinary subtitle track. It is known by its cues: one a chapter, from the
    first chapter's start to the last one's end (copied, the output held the chapter titles twice,
    and ``--audio none`` said it was dropped where the output has it as its chapters)."""
    try:
        if stream.type not in ("data", "subtitle"):
            return False
        if int(stream.discard) >= 48:  # AVDISCARD_ALL
            return True
        c = stream.container
        if "mov" not in _fmts(c) or stream.time_base is None or not stream.frames:
            return False
        if getattr(stream.codec_context, "name", None) not in (None, "mov_text", "text", "bin_data"):
            return False
        if not any(is_timecode_track(o) for o in c.streams):
            return False  # (the case above only: a subtitle track of one cue a chapter stays a track, review24)
        chapters = c.chapters()
        if len(chapters) != stream.frames or stream.start_time is None or not stream.duration:
            return False
        tb = stream.time_base
        start, end = float(stream.start_time * tb), float((stream.start_time + stream.duration) * tb)
        first, last = chapters[0], chapters[-1]
        return (abs(start - float(first["start"] * first["time_base"])) < 0.002
                and abs(end - float(last["end"] * last["time_base"])) < 0.002)
    except (AttributeError, TypeError, ValueError, KeyError, IndexError):
        return False


def is_timecode_track(stream) -> bool:
    return stream.type == "data" and bool(stream.metadata.get("timecode"))


def carried_otherwise(stream) -> str | None:
    """What input track ``stream`` is carried as instead of being copied as a stream: "timecode"
    (a QuickTime ``tmcd`` track: the video's timecode tag, from which the mov/mp4 muxer writes a
    new one, see :func:`timecode_of`), "chapters" (a chapter text track, read into chapters), or
    None (an ordinary track). Neither is copied, nor dropped with the audio (``--audio none``):
    the output has them from the tags and chapters."""
    if is_timecode_track(stream):
        return "timecode"
    if is_chapter_track(stream):
        return "chapters"
    return None


def attachment(stream) -> tuple[str, str, bytes] | None:
    """(file name, mime type, bytes) of an attachment stream (MKV fonts, cover images), or None."""
    if stream.type != "attachment":
        return None
    name = getattr(stream, "name", None) or stream.metadata.get("filename")
    mime = getattr(stream, "mimetype", None) or stream.metadata.get("mimetype")
    data = getattr(stream, "data", None)
    if not name or not mime or data is None:
        return None
    return str(name), str(mime), bytes(data)


#: output muxers that store cover art as an attached picture (an MP4 ``covr`` atom; .m4v's ipod
#: muxer takes only some codecs and says so). FFmpeg's QuickTime (.mov) muxer writes no ``covr``:
#: a cover stream given to it vanished without a word. Matroska keeps covers as attachments.
COVER_MUXERS = frozenset({"mp4", "ipod"})


def is_cover(stream) -> bool:
    """An attached picture (album art, a phone's thumbnail, a Matroska cover read back)."""
    import av

    return stream.type == "video" and bool(int(stream.disposition) & int(av.stream.Disposition.attached_pic))


def other_video_dropped(index: int, codec: str) -> str:
    """The note for video stream ``index`` (``codec``) besides the restored one that is not cover
    art (a second angle): dropped under every ``--audio`` (the sink's, ``info``'s plan)."""
    return f"video stream #{index} ({codec}) dropped: only the main video stream is restored"


def cover_attachment(path, stream) -> tuple[str, str, bytes] | None:
    """(file name, mime type, bytes) to store cover art ``stream`` of the file ``path`` as a
    Matroska attachment (what FFmpeg reads back as an attached picture), or None when it is not a
    picture or cannot be read. A muxer writes attachments in its header, before any packet, so
    the picture is read from the file itself: its stream's first packet. Any ``image/*`` type the
    stream states is kept (an .mkv's GIF or TIFF cover comes back as a cover); without one, the
    codec names it."""
    import av

    name = getattr(stream.codec_context, "name", None)
    mime = str(stream.metadata.get("mimetype") or _COVER_MIME.get(name, ""))
    if not mime.startswith("image/"):
        return None
    try:
        from stream_gpen.io._meta import ffmpeg_local

        with av.open(ffmpeg_local(path)) as c:
            data = next((bytes(p) for p in c.demux(c.streams[stream.index]) if p.size), None)
    except (av.error.FFmpegError, OSError, IndexError):
        return None
    if data is None:
        return None
    ext = {"image/jpeg": "jpg", "image/svg+xml": "svg"}.get(mime, mime.split("/", 1)[1])
    return stream.metadata.get("filename") or f"cover.{ext}", mime, data


_COVER_MIME = {"mjpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "tiff": "image/tiff",
               "bmp": "image/bmp", "webp": "image/webp"}


def accepts_attachments(out) -> bool:
    return "matroska" in _fmts(out)


def attachment_refused(fmt: str, name: str, mime: str) -> str:
    """The note for attachment ``name`` (``mime``) left out of an output of muxer ``fmt``, one
    that has no place for attachments (the sink's, and ``info``'s plan for the default output)."""
    return f"attachment {name} ({mime}) dropped: the {fmt} container cannot hold attachments (write .mkv to keep it)"
