"""Stream copy: every stream of the input into a new container, packets untouched."""
from __future__ import annotations

import os
from pathlib import Path

import av

from stream_gpen.errors import EncodeError


def remux(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Copy all streams of ``src`` into ``dst`` (container from the extension), bit-exact packets.

    Written to a temporary file next to ``dst`` and renamed on success. Streams the output
    container cannot hold (checked up front with the same rules the encoding sink uses, and again
    by FFmpeg while muxing) raise :class:`EncodeError`; nothing is then left under ``dst`` (an
    existing ``dst`` stays as it was).
    Returns the number of video packets copied.
    """
    from stream_gpen.io._sink import can_copy

    dst = Path(dst)
    tmp = dst.with_name(f".{dst.stem}.remux{dst.suffix}")
    n_video = 0
    try:
        with av.open(str(src)) as inp, av.open(str(tmp), "w", format=_format_for(dst)) as out:
            mapping = {}
            for s in inp.streams:
                if s.type not in ("video", "audio", "subtitle"):
                    continue
                name = s.codec_context.name if s.codec_context is not None else None
                canonical = getattr(getattr(s.codec_context, "codec", None), "canonical_name", None) or name
                if s.type != "video" and not can_copy(out.format.name, canonical, out.supported_codecs):
                    raise EncodeError(f"cannot stream-copy {s.type} stream #{s.index} ({canonical}) into "
                                      f"{dst.suffix}: the {out.format.name} container does not take it")
                try:
                    mapping[s.index] = out.add_stream_from_template(s)
                except (ValueError, av.FFmpegError) as exc:
                    raise EncodeError(f"cannot stream-copy {s.type} stream #{s.index} ({name}) "
                                      f"into {dst.suffix}: {exc}") from exc
            try:
                for pkt in inp.demux(list(s for s in inp.streams if s.index in mapping)):
                    if pkt.dts is None and pkt.size == 0:  # demuxer flush packet
                        continue
                    ostream = mapping[pkt.stream.index]
                    if ostream.type == "video":
                        n_video += 1
                    pkt.stream = ostream
                    out.mux(pkt)
            except (ValueError, av.FFmpegError) as exc:
                raise EncodeError(f"stream-copying {src} into {dst.suffix} failed: {exc}") from exc
        os.replace(tmp, dst)
    except (ValueError, av.FFmpegError) as exc:  # the header or trailer (on close) was refused
        raise EncodeError(f"stream-copying {src} into {dst.suffix} failed: {exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return n_video


def _format_for(path: Path) -> str | None:
    ext = path.suffix.lower()
    return {".mkv": "matroska", ".ts": "mpegts", ".m4v": "mp4"}.get(ext)
