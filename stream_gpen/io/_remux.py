"""Stream copy: every stream of the input into a new container, packets untouched."""
from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av

from stream_gpen.errors import EncodeError

log = logging.getLogger(__name__)


def remux(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Copy all streams of ``src`` into ``dst`` (container from the extension), bit-exact packets.

    Written to a temporary file next to ``dst`` and renamed on success. Text subtitles the output
    container cannot copy are converted cue by cue as the encoding sink does (SubRip/ASS/WebVTT
    -> mov_text for .mp4/.mov, mov_text -> SubRip/WebVTT for .mkv/.webm; logged). Other streams
    the output container cannot hold (checked up front with the same rules the encoding sink
    uses, and again by FFmpeg while muxing) raise :class:`EncodeError`; nothing is then left
    under ``dst`` (an existing ``dst`` stays as it was). Into AVI, which stores no start times,
    every stream is written from the first video packet on, as the sink does (audio packets
    before it, e.g. AAC priming, are left out), so audio and video stay in sync.
    Returns the number of video packets copied.
    """
    from stream_gpen.io._sink import _NO_START_TIMES, can_copy, clamp_to_origin
    from stream_gpen.io._subtitles import SubtitleConverter, text_target

    dst = Path(dst)
    tmp = dst.with_name(f".{dst.stem}.remux{dst.suffix}")
    n_video = 0
    try:
        with av.open(str(src)) as inp, av.open(str(tmp), "w", format=_format_for(dst)) as out:
            mapping = {}
            converters: dict[int, SubtitleConverter] = {}
            fmt = out.format.name
            for s in inp.streams:
                if s.type not in ("video", "audio", "subtitle"):
                    continue
                name = s.codec_context.name if s.codec_context is not None else None
                canonical = getattr(getattr(s.codec_context, "codec", None), "canonical_name", None) or name
                if s.type != "video" and not can_copy(fmt, canonical, out.supported_codecs):
                    target = text_target(fmt, canonical) if s.type == "subtitle" else None
                    if target is None:
                        raise EncodeError(f"cannot stream-copy {s.type} stream #{s.index} ({canonical}) into "
                                          f"{dst.suffix}: the {fmt} container does not take it")
                    try:
                        conv = SubtitleConverter(s, out, target)
                    except (ValueError, av.FFmpegError) as exc:
                        raise EncodeError(f"cannot convert subtitle stream #{s.index} ({canonical}) to {target} "
                                          f"for {dst.suffix}: {exc}") from exc
                    converters[s.index] = conv
                    mapping[s.index] = conv.stream
                    log.info("remux: subtitle stream #%d (%s) converted to %s: %s does not accept it",
                             s.index, canonical, target, fmt)
                    continue
                try:
                    mapping[s.index] = out.add_stream_from_template(s)
                except (ValueError, av.FFmpegError) as exc:
                    raise EncodeError(f"cannot stream-copy {s.type} stream #{s.index} ({name}) "
                                      f"into {dst.suffix}: {exc}") from exc
            origin = _first_video_time(src) if set(fmt.split(",")) & set(_NO_START_TIMES) else None
            left_out = 0
            try:
                for pkt in inp.demux(list(s for s in inp.streams if s.index in mapping)):
                    if pkt.dts is None and pkt.size == 0:  # demuxer flush packet
                        continue
                    conv = converters.get(pkt.stream.index)
                    if conv is not None:
                        for q in conv.convert(pkt):
                            out.mux(q)
                        continue
                    if origin is not None and not clamp_to_origin(pkt, round(origin / pkt.time_base)):
                        left_out += 1
                        continue
                    ostream = mapping[pkt.stream.index]
                    if ostream.type == "video":
                        n_video += 1
                    pkt.stream = ostream
                    out.mux(pkt)
                for conv in converters.values():
                    for q in conv.flush():
                        out.mux(q)
            except (ValueError, av.FFmpegError) as exc:
                raise EncodeError(f"stream-copying {src} into {dst.suffix} failed: {exc}") from exc
            if left_out:
                log.info("remux into %s: %d packet(s) before the first video frame left out (no start times there)",
                         fmt, left_out)
        os.replace(tmp, dst)
    except (ValueError, av.FFmpegError) as exc:  # the header or trailer (on close) was refused
        raise EncodeError(f"stream-copying {src} into {dst.suffix} failed: {exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return n_video


def _first_video_time(src) -> Fraction:
    """Time (s) of the first video packet in decode order (its dts: AVI's chunk timeline), 0 if none."""
    from stream_gpen.io._source import main_video_stream

    with av.open(str(src)) as c:
        vs = main_video_stream(c)
        if vs is None:
            return Fraction(0)
        for p in c.demux(vs):
            t = p.dts if p.dts is not None else p.pts
            if p.size and t is not None:
                return Fraction(t) * p.time_base
    return Fraction(0)


def _format_for(path: Path) -> str | None:
    ext = path.suffix.lower()
    return {".mkv": "matroska", ".ts": "mpegts", ".m4v": "mp4"}.get(ext)
