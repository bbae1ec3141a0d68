"""Stream metadata: what the input says about itself, and where each value comes from."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from fractions import Fraction

# FFmpeg's log level and PyAV's repeat filter are process-wide: two sinks checking their
# encoders at once (camera: file + stream), or a source reading FFmpeg's description of a file
# (dolby_vision), take turns, so neither restores the other's settings. Here, not in _sink: a
# program that only reads (Enhancer.stream) need not import the sink for it.
_log_lock = threading.Lock()

# FFmpeg enum values -> names (AVColorRange / AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic)
COLOR_RANGES = {0: "unspecified", 1: "limited", 2: "full"}
COLOR_SPACES = {0: "rgb", 1: "bt709", 2: "unspecified", 4: "fcc", 5: "bt470bg", 6: "smpte170m",
                7: "smpte240m", 8: "ycgco", 9: "bt2020nc", 10: "bt2020c"}
# (every value H.273 defines and FFmpeg names: a tag outside these tables was dropped on output
# and shown as "unspecified")
COLOR_PRIMARIES = {1: "bt709", 2: "unspecified", 4: "bt470m", 5: "bt470bg", 6: "smpte170m",
                   7: "smpte240m", 8: "film", 9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432",
                   22: "ebu3213"}
COLOR_TRCS = {1: "bt709", 2: "unspecified", 4: "gamma22", 5: "gamma28", 6: "smpte170m",
              7: "smpte240m", 8: "linear", 9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e",
              13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428",
              18: "arib-std-b67"}


@dataclass(frozen=True)
class AuxStreamInfo:
    """A non-video stream of the input (audio, subtitle, data); copied or transcoded by sinks."""

    index: int
    kind: str  # "audio" | "subtitle" | "data" | "attachment"
    codec: str | None
    time_base: Fraction | None
    sample_rate: int | None = None
    channels: int | None = None
    language: str | None = None


@dataclass(frozen=True)
class StreamMetadata:
    """The video stream as the source reports it.

    Sources of each value: ``width``/``height``/``pix_fmt``/colour fields come from the decoder
    (the first decoded frame for files, so they describe real content); ``frame_rate`` is FFmpeg's
    guessed rate (a *hint*: frames carry their own pts, variable frame rate is kept);
    ``duration_s`` and ``frame_count_header`` come from the container header and are **not
    trusted** (progress bars only); ``frame_count`` is set only when it was counted (demuxing the
    whole file with ``count_frames=True``, or the number of images in a folder), else ``None``.
    """

    width: int
    height: int
    pix_fmt: str
    codec: str
    time_base: Fraction
    frame_rate: Fraction | None
    duration_s: float | None = None
    #: where the video stream itself ends by its header (mp4/mov duration, Matroska's per-track
    #: DURATION tag), from the container's start; None where unknown. Shorter than ``duration_s``
    #: where audio runs on past the pictures (progress counts frames by it)
    video_duration_s: float | None = None
    frame_count: int | None = None
    frame_count_header: int | None = None
    rotation: int = 0  # display-matrix rotation, counter-clockwise degrees; pixels are NOT rotated
    color_range: str = "unspecified"
    color_space: str = "unspecified"
    color_primaries: str = "unspecified"
    color_trc: str = "unspecified"
    interlaced: str = "progressive"  # field order: progressive | tt | bb | tb | bt | unknown
    # Pixel width / height (anamorphic DV/DVD/HDV: 10:11, 32:27, 4:3...) from the container, else the
    # bitstream; None = square or unknown. Display aspect = width * SAR / height. With autorotate it
    # describes the rotated pixels (a quarter turn inverts it). Sinks write it back.
    sample_aspect_ratio: Fraction | None = None
    container: str | None = None
    kind: str = "file"  # file | url | device | lavfi | image | folder
    live: bool = False
    start_time_s: float | None = None
    audio: tuple[AuxStreamInfo, ...] = ()
    subtitles: tuple[AuxStreamInfo, ...] = ()
    data: tuple[AuxStreamInfo, ...] = ()
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"frame size must be positive, got {self.width}x{self.height}")
        if not isinstance(self.time_base, Fraction):
            raise TypeError(f"time_base must be a Fraction, got {type(self.time_base).__name__}")
        if self.frame_rate is not None and not isinstance(self.frame_rate, Fraction):
            raise TypeError(f"frame_rate must be a Fraction or None, got {type(self.frame_rate).__name__}")
        if self.rotation % 90 != 0:
            raise ValueError(f"rotation must be a multiple of 90 degrees, got {self.rotation}")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as stored (before applying ``rotation``)."""
        return (self.width, self.height)


def audio_params_unknown(stream) -> bool:
    """True for an audio stream (an :class:`AuxStreamInfo` or a PyAV stream) whose sample rate or
    channel count FFmpeg did not learn while opening the input: its first packet came after the
    seconds it reads ahead (a TV recording whose audio starts late), or only a later part of a
    joined recording has audio (``cat video_only.ts with_audio.ts``). Such a stream cannot be
    copied (the muxer refuses its header: "Invalid argument" at the end of the run); sinks
    transcode it, its decoded frames saying what they are."""
    kind = getattr(stream, "kind", None) or getattr(stream, "type", None)
    if kind != "audio":
        return False
    src = stream if isinstance(stream, AuxStreamInfo) else getattr(stream, "codec_context", None)
    return not getattr(src, "sample_rate", None) or not getattr(src, "channels", None)


def fit_name(p, keep: int = 0, *, folder: bool = False):
    """``p`` (a Path) as it is where its name fits the file system's 255 bytes; else with its stem
    shortened before its last ``keep`` characters (``_enhanced``) and marked with a short hash of
    the whole stem, so that two long names that differ only where they are cut (``... part
    1.mp4``, ``... part 2.mp4``) still get outputs of their own. A 245-character title's
    ``_enhanced`` name failed the write after the whole run ("File name too long"). ``folder``:
    the whole name is the stem."""
    import hashlib

    stem, suffix = (p.name, "") if folder else (p.stem, p.suffix)
    if len((stem + suffix).encode("utf-8", "surrogateescape")) <= 255:
        return p
    head, tail = (stem[:-keep], stem[-keep:]) if keep else (stem, "")
    mark = "~" + hashlib.sha1(stem.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return p.with_name(_fitted(head, f"{mark}{tail}{suffix}") + f"{mark}{tail}{suffix}")


def _fitted(head: str, rest: str) -> str:
    """``head`` shortened (whole characters off its end) so that ``head + rest`` fits the file
    system's 255 bytes."""
    while head and len((head + rest).encode("utf-8", "surrogateescape")) > 255:
        head = head[:-1]
    return head


def hidden_temp(target, tag: str, *, hidden: bool = True):
    """``target``'s twin in its own folder, ``.<stem><tag><suffix>`` (``<stem><tag><suffix>``
    when not ``hidden``: the ``.partial`` of an interrupted run), its stem shortened where the name
    would pass the file system's 255 bytes (a CJK title of 83 characters is 253 bytes: its output
    fits, and the longer temporary name failed the write)."""
    from pathlib import Path

    t = Path(target)
    dot = "." if hidden else ""
    stem = _fitted(t.stem, f"{dot}{tag}{t.suffix}")  # (the byte count is the same in any order)
    return t.with_name(f"{dot}{stem}{tag}{t.suffix}")


def ffmpeg_local(path) -> str:
    """A local file's path as FFmpeg must be given it: FFmpeg reads a leading ``word:`` as a
    protocol, so a relative name like ``10:30.mp4`` or ``Party:2019/clip.mp4`` failed with
    "Protocol not found" (on input, and on output through the temporary name). Such a path is
    made absolute; any other is returned as it is."""
    s = str(path)
    head = s.split("/", 1)[0]
    if ":" in head and "://" not in s:
        import os

        return os.path.abspath(s)
    return s


def frame_side_data(frame) -> list:
    """A decoded frame's side data, or ``[]`` when PyAV cannot list it: FFmpeg 8 attaches EXIF
    (JPEG APP1 blocks: cameras' MJPEG clips, photos read as video) as a side data type PyAV 18
    has no name for, and reading ``frame.side_data`` then raises ``ValueError`` (every such clip
    failed as an internal error). Read through a container of its own, not ``frame.side_data``:
    that one is kept on the frame and points back at it, a cycle only a full garbage collection
    frees, so looking at every frame's (closed captions that start late) held each decoded frame
    for good (+146 MB over 3 minutes of 720p, tests/test_io_rss.py)."""
    try:
        from av.frame import Frame
        from av.sidedata.sidedata import SideDataContainer
    except ImportError:  # (another PyAV's layout: its own property, cycle or not)
        Frame = SideDataContainer = None
    try:
        if SideDataContainer is not None and isinstance(frame, Frame):
            return list(SideDataContainer(frame))
        return list(getattr(frame, "side_data", None) or ())
    except ValueError:
        return []


def hdr_static_metadata(frame) -> dict:
    """HDR10 static metadata a decoded frame carries (FFmpeg's frame side data), for the sink to
    write again: ``{"mastering_display": {"r", "g", "b", "white": (x, y) CIE 1931, "max_nits",
    "min_nits"}, "content_light": (MaxCLL, MaxFALL)}``, each key only when present.

    Without it an HDR10 (PQ) output still plays, but TVs tone-map it for a guessed mastering
    display and peak instead of the one the video was graded on."""
    import struct

    out: dict = {}
    for sd in frame_side_data(frame):
        kind = str(getattr(sd, "type", "")).rsplit(".", 1)[-1]
        raw = bytes(sd)
        if kind == "MASTERING_DISPLAY_METADATA" and len(raw) >= 88:
            # AVMasteringDisplayMetadata: display_primaries[3][2] (r, g, b), white_point[2],
            # min_luminance, max_luminance (AVRational: int num, int den), has_primaries, has_luminance
            v = struct.unpack_from("<20i2i", raw)
            q = [v[i] / v[i + 1] if v[i + 1] else 0.0 for i in range(0, 20, 2)]
            if v[20]:
                out["mastering_display"] = {"r": (q[0], q[1]), "g": (q[2], q[3]), "b": (q[4], q[5]),
                                            "white": (q[6], q[7]), "min_nits": q[8], "max_nits": q[9]}
                if not v[21]:
                    out["mastering_display"].update(min_nits=None, max_nits=None)
        elif kind == "CONTENT_LIGHT_LEVEL" and len(raw) >= 8:
            cll, fall = struct.unpack_from("<2I", raw)
            out["content_light"] = (int(cll), int(fall))
    return out


_DOVI_RECORD = re.compile(r"DOVI configuration record: version: \d+\.\d+, profile: (\d+), level: (\d+), "
                          r"rpu flag: (\d), el flag: (\d), bl flag: (\d), compatibility id: (\d+)")


def _format_dump(container) -> str | None:
    """FFmpeg's own description of an open ``container`` (``av_dump_format``), captured: that
    needs the log level at INFO for a moment, under ``_log_lock``. None where it cannot be had."""
    import av.logging

    with _log_lock:
        old = av.logging.get_level()
        if old is None or old < av.logging.INFO:
            av.logging.set_level(av.logging.INFO)
        try:
            return container.dumps_format()
        except (AttributeError, av.error.FFmpegError, ValueError):
            return None
        finally:
            if old is None or old < av.logging.INFO:
                av.logging.set_level(old)


_PROGRAM_HEAD = re.compile(r"\s*Program (\d+)\b")
_NO_PROGRAM = re.compile(r"\s*No Program\s*$")
_STREAM_HEAD = re.compile(r"\s*Stream #\d+:(\d+)")


def stream_programs(container) -> dict[int, frozenset[int]]:
    """The programs each stream of ``container`` belongs to (stream index -> program ids), where
    it has more than one program: an MPEG-TS of a DVB multiplex (several channels, each a video
    and its audio), an HLS master playlist read whole (a program per variant; an audio rendition
    may be in several). ``{}`` with one program or none: every stream goes with the video. A
    stream in no program is left out (nothing says where it belongs). PyAV has no program
    API: read from FFmpeg's own description of the file (see :func:`_format_dump`)."""
    text = _format_dump(container)
    if not text:
        return {}
    found: dict[int, set[int]] = {}
    programs: set[int] = set()
    current: int | None = None
    for line in text.splitlines():
        m = _PROGRAM_HEAD.match(line)
        if m:
            current = int(m.group(1))
            programs.add(current)
            continue
        if _NO_PROGRAM.match(line):
            current = None
            continue
        m = _STREAM_HEAD.match(line)
        if m and current is not None:
            found.setdefault(int(m.group(1)), set()).add(current)
    if len(programs) < 2:
        return {}
    return {i: frozenset(p) for i, p in found.items()}


def dolby_vision(container, stream) -> dict | None:
    """The Dolby Vision configuration record of video ``stream`` (an mp4/mov ``dvcC``/``dvvC``
    box, a Matroska block addition mapping, an MPEG-TS DOVI descriptor), as FFmpeg reads it:
    ``{"profile", "level", "compat_id", "rpu", "el", "bl"}``, or None. PyAV has no stream side
    data, so the record is read from FFmpeg's own description of the file (``av_dump_format``,
    captured: that needs the log level at INFO for a moment, under ``_log_lock``)."""
    if getattr(getattr(stream, "codec_context", None), "name", None) not in ("hevc", "av1", "h264"):
        return None  # (the codecs Dolby Vision profiles are defined for)
    text = _format_dump(container)
    if text is None:
        return None
    mine = False
    for line in text.splitlines():
        head = re.match(r"\s*Stream #\d+:(\d+)", line)
        if head:
            mine = int(head.group(1)) == stream.index
            continue
        m = _DOVI_RECORD.search(line) if mine else None
        if m:
            p, level, rpu, el, bl, compat = (int(x) for x in m.groups())
            return {"profile": p, "level": level, "compat_id": compat, "rpu": bool(rpu), "el": bool(el),
                    "bl": bool(bl)}
    return None


#: a Dolby Vision base layer's signal, by its compatibility id (ETSI / Dolby's profile table)
_DOVI_BASE = {1: "HDR10", 2: "SDR", 4: "HLG", 6: "HDR10"}


def dolby_vision_note(dv: dict) -> str:
    """What becomes of Dolby Vision ``dv`` (:func:`dolby_vision`) in a re-encoded output: FFmpeg
    writes no Dolby Vision (its RPU, the per-scene dynamic metadata, and an enhancement layer are
    not made again), so the output is the base layer, which players show as they show that base
    layer (an iPhone's 8.4 as HLG). Profile 5 (and 10.0) has no such base layer: its pictures are
    coded in Dolby's own IPTPQc2 colour space, which only a Dolby Vision decoder turns into
    colours; decoded without one, as here, every colour is wrong (greenish, purple)."""
    p, compat = dv.get("profile"), dv.get("compat_id")
    name = f"Dolby Vision profile {p}" + (f".{compat}" if p in (8, 9, 10) else "")
    base = _DOVI_BASE.get(compat) if dv.get("bl", True) else None
    if base is None:
        return (f"{name}: this video has no base layer a player can show without Dolby Vision processing (its "
                "pictures are in Dolby's IPTPQc2 colour space): decoded here without it, its colours are wrong "
                "(greenish/purple), and the output is written with those wrong colours and no Dolby Vision")
    return (f"{name} dropped: the output is its {base} base layer (FFmpeg writes no Dolby Vision), which "
            f"players show as {base}" + (", without the enhancement layer" if dv.get("el") else "")
            + "; Dolby Vision screens lose its per-scene tone mapping")
