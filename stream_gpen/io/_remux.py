"""Stream copy: every stream of the input into a new container, packets untouched."""
from __future__ import annotations

import os
from pathlib import Path

import av

from stream_gpen.errors import EncodeError


def remux(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Copy all streams of ``src`` into ``dst`` (container from the extension), bit-exact packets.

    Written to a temporary file next to ``dst`` and renamed on success. Streams the output
    container cannot hold raise :class:`EncodeError` (nothing is left under ``dst``).
    Returns the number of video packets copied.
    """
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.stem}.remux{dst.suffix}")
    n_video = 0
    try:
        with av.open(str(src)) as inp, av.open(str(tmp), "w", format=_format_for(dst)) as out:
            mapping = {}
            for s in inp.streams:
                if s.type not in ("video", "audio", "subtitle"):
                    continue
                try:
                    mapping[s.index] = out.add_stream_from_template(s)
                except (ValueError, av.FFmpegError) as exc:
                    raise EncodeError(f"cannot stream-copy {s.type} stream #{s.index} ({s.codec_context.name}) "
                                      f"into {dst.suffix}: {exc}") from exc
            for pkt in inp.demux(list(s for s in inp.streams if s.index in mapping)):
                if pkt.dts is None and pkt.size == 0:  # demuxer flush packet
                    continue
                ostream = mapping[pkt.stream.index]
                if ostream.type == "video":
                    n_video += 1
                pkt.stream = ostream
                out.mux(pkt)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n_video


def _format_for(path: Path) -> str | None:
    ext = path.suffix.lower()
    return {".mkv": "matroska", ".ts": "mpegts", ".m4v": "mp4"}.get(ext)
