"""Video sources: files, URLs, capture devices and lavfi graphs, decoded in their own thread.

Audio/subtitle/data handling: the decode thread demuxes *all* streams of the one input and hands
every non-video packet, untouched, to the sink through :class:`AuxChannel`. One demuxer means
live inputs (a URL cannot be opened twice) keep their audio too, and packet times are exactly the
input's. Packets are collected only while a sink subscribes; if none does within the first frames
the channel stops collecting (logged), so an audio track can never pile up in memory. A sink that
does subscribe takes them as its frames reach their times; what the demuxer reads ahead of that
(audio that runs on long after the video) is kept in memory up to ``AUX_MEMORY_BUDGET`` bytes
and in a temporary file beyond it.
"""
from __future__ import annotations

import collections
import dataclasses
import errno
import functools
import heapq
import itertools
import logging
import math
import numbers
import os
import re
import stat
import struct
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Literal

import av
import av.packet as ap
import numpy as np
import torch

from stream_gpen.errors import PATH_HINT
from stream_gpen.errors import (
    DecodeError,
    EmptyMediaError,
    InvalidInputError,
    MediaNotFoundError,
    NotMediaError,
    NoVideoStreamError,
    SourceClosedError,
    StreamGpenError,
    UnsupportedCodecError,
)
from stream_gpen.io._convert import (
    av_to_rgb_numpy,
    bits_per_component,
    decode_colorspace,
    decode_range,
    is_full_range,
    nv12_to_rgb,
    plane_arrays,
    rgb8_from_rgb16,
)
from stream_gpen.io._meta import (
    COLOR_PRIMARIES,
    COLOR_RANGES,
    COLOR_SPACES,
    COLOR_TRCS,
    AuxStreamInfo,
    StreamMetadata,
    dolby_vision,
    ffmpeg_local,
    frame_side_data,
    hdr_static_metadata,
    stream_programs,
)
from stream_gpen.io._capture import CaptureMode  # noqa: F401 (re-exported: stream_gpen.io.CaptureMode)
from stream_gpen.io._ring import Frame, FrameRing, _RingClosed

log = logging.getLogger(__name__)

DecodeMode = Literal["auto", "cpu", "nvdec"]
_DECODE_MODES = ("auto", "cpu", "nvdec")
URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp", "rtp", "hls")
#: pixel formats a sink may write a frame's untouched parts from as decoded (Frame.yuv)
_AS_DECODED = frozenset(f"yuv{c}p{b}" for c in ("420", "422", "444") for b in ("", "10le", "12le")) | {
    "yuvj420p", "yuvj422p", "yuvj444p"}
#: URL schemes that carry live streams only (http(s) and hls may be files)
_LIVE_ONLY_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "tcp", "rtp")


def _rate_of(vs, options: dict) -> Fraction | None:
    """The video stream's frame rate: FFmpeg's guess, else the mean; for a live stream opened
    without the rate probe (``fpsprobesize=0``) the codec's own first (the guess is then the
    field rate of an H.264 stream, twice the frame rate)."""
    if options.get("fpsprobesize") == "0":
        own = _fraction(vs.codec_context.framerate)
        if own:
            return own
        # no rate in the bitstream (many IP cameras' H.264/HEVC): the guess is then the time base
        # (90000 fps from an MPEG-TS); unknown rather than that
        guess = _fraction(vs.average_rate) or _fraction(vs.guessed_rate)
        return guess if guess and guess <= _MAX_LIVE_RATE else None
    return _fraction(vs.guessed_rate) or _fraction(vs.average_rate)


#: the highest frame rate a live stream is believed to have (a guess above it is its time base)
_MAX_LIVE_RATE = 1000
#: photo names; .jfif/.jpe are JPEGs (browsers save .jfif), .hif is the HEIF that Fujifilm and
#: Canon cameras write
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif",
              ".jfif", ".jpe", ".hif", ".apng")
_NVDEC_CODECS = {"h264": "h264_cuvid", "hevc": "hevc_cuvid", "av1": "av1_cuvid", "vp9": "vp9_cuvid",
                 "vp8": "vp8_cuvid", "mpeg2video": "mpeg2_cuvid", "mpeg4": "mpeg4_cuvid"}
#: past a window's end, how far (seconds of the file) audio stored after the video is still read
_AUX_TAIL_S = 3.0
#: before a part (``--start``), how far back (seconds) subtitle cues still on screen at its start are looked for
_CUE_LOOKBACK_S = 30.0
#: a stream's dts falling back by more than this (or a frame interval, if longer) is a join of two
#: recordings (see _Joins); smaller steps back are a muxer's jitter, which the sink's clamp absorbs
_JOIN_MIN_S = Fraction(1, 4)
#: at most this many packets in a row far off their stream's timeline are taken for damaged
#: timestamps when the next one is back on it (see _Joins); a longer run is footage (a pause, a join)
_OUTLIER_RUN = 3
#: a run of a stream's last packets held as a leap when the input ends is taken for damaged
#: timestamps only this far (seconds) past every other stream's end (see _Joins._trailing): a
#: flipped high bit of a PES timestamp moves it by hours; a slideshow's frames 10 s apart after its
#: music ended, or a still held at the end, are footage
_TRAILING_MIN_S = Fraction(600)
#: at most this many packets of streams met for the first time are held to see whether a join
#: precedes them (see _Joins._sift)
_FRESH_MAX = 64
#: a live source's clock that leaps forward so far ahead of the wall clock since the session began
#: (seconds) has jumped (an encoder restarted with a new clock, a camera's clock set): no live
#: stream delivers a minute ahead of real time; pauses and lost data keep it behind (see _Joins)
_LIVE_AHEAD_S = Fraction(30)
_AUX_GRACE_FRAMES = 64  # frames emitted without a subscribing sink before audio collection stops
#: a step between two frames' timestamps longer than this (or one backwards) is a clock jump (a
#: wrapped or restarted timeline, concatenated recordings), not footage: pacing restarts its clock
#: there instead of holding the next frame back for the length of the jump
_PACE_MAX_GAP_S = 10.0

#: a live http(s) source whose frames run this many seconds ahead of the wall clock since it was
#: opened (and at twice its rate) is a file served without a length: a live stream cannot send
#: what has not happened yet, beyond a server's short start-up burst (see VideoSource._run)
_AHEAD_S = 2.0
#: a pipe, FIFO or character device whose open has waited this many seconds (no writer yet, or
#: one that has not written the stream's header) is said to be waited for (see _waiting_note)
_PIPE_WAIT_NOTE_S = 3.0
#: libavformat's AVFMT_NOTIMESTAMPS: the demuxer stores no times (raw .h264/.hevc/.mjpeg streams)
_NO_TIMESTAMPS = 0x0080
#: frames without a pts in a container that has times (an MPEG-TS joined before its first PES
#: with a PTS, a PES that lost it) are held, at most this many seconds of them (and at most
#: ``_UNTIMED_HOLD_MAX`` frames), for the next timed frame to place them (see
#: VideoSource._untimed_placed). MPEG-TS carries a PTS at least every 0.7 s.
_UNTIMED_HOLD_S = 1
_UNTIMED_HOLD_MAX = 64
#: A part of joined recordings read from the top (see VideoSource._set_window): video packets
#: more than _SKIP_MARGIN_S before it are not decoded, only those since the last keyframe are
#: kept (up to _SKIP_GOP_MAX; past that, or that many without a keyframe, all are decoded)
_SKIP_MARGIN_S = Fraction(2)
_SKIP_GOP_MAX = 600


def _fraction(x) -> Fraction | None:
    return Fraction(x.numerator, x.denominator) if x is not None and x.denominator else None


class _Untimed:
    """The frames of a source (a :class:`VideoSource`: its frame interval, ``live``, ``spec`` and
    ``stats``) without a pts, given one on the timeline of the timed frames around them, frame by
    frame as they come (see :meth:`VideoSource._untimed_placed`): :meth:`push` gives back the
    frames ready (none while one without a time waits for the next timed one), :meth:`end` the
    ones still held at the end."""

    def __init__(self, source) -> None:
        self._source = source
        self._step = source._hold_gap()
        self._most = min(_UNTIMED_HOLD_MAX, max(2, math.ceil(_UNTIMED_HOLD_S / self._step)))
        self._tb = _fraction(source._vstream.time_base)
        self._held: list = []
        self._last: Fraction | None = None  # the time of the last frame given out with one
        self._placed = 0
        self._untimed = False  # the stream's leading frames had no times: it has none (index times)

    def _put(self, f, t: Fraction) -> None:
        tb = _fraction(f.time_base) or self._tb or Fraction(1, 90000)
        f.time_base = tb
        f.pts = round(t / tb)

    def _note(self, n: int, how: str) -> None:
        self._placed += n
        self._source.stats["untimed_frames"] = self._placed
        if self._placed == n:
            log.info("%s: %d frame(s) without a timestamp %s", self._source.spec, n, how)

    def _after_last(self, frames: list, how: str) -> list:
        for h in frames:
            self._last += self._step
            self._put(h, self._last)
        self._note(len(frames), how)
        return frames

    def push(self, f) -> list:
        t = _seconds(f)
        if t is None and self._untimed:
            return [f]
        if t is None and self._last is not None and self._source.live:
            return self._after_last([f], "timed one frame interval after the frame before")
        held = self._held
        if t is None:
            held.append(f)
            if len(held) <= self._most:
                return []
            self._held = []
            if self._last is None:  # no times in sight: the index over the rate, as before
                self._untimed = True
                return held
            return self._after_last(held, "timed one frame interval apart after the frame before")
        if held:
            k, step, last = len(held), self._step, self._last
            if last is None:
                for i, h in enumerate(held):
                    self._put(h, t - (k - i) * step)
                self._note(k, f"before the first timed one ({float(t):.3f} s) placed one frame interval apart "
                              "before it")
            else:
                gap = (t - last) / (k + 1) if t > last else step
                for i, h in enumerate(held):
                    self._put(h, last + (i + 1) * min(step, gap))
                self._note(k, "placed between the timed frames around them")
            self._held = []
        self._last = t if self._last is None else max(self._last, t)
        return [*held, f]

    def end(self) -> list:
        held, self._held = self._held, []
        if held and self._last is not None and not self._untimed:
            self._after_last(held, "at the end timed one frame interval apart after the frame before")
        return held


class _Stuck:
    """Frames whose clock does not advance from the first frame on (an MPEG-TS written with its
    pts never set: every frame at 0) given times one frame interval apart at the stream's rate,
    as frames without a pts are (:class:`_Untimed`), frame by frame as they come (see
    :meth:`VideoSource._decoded`). Left, they kept the one time: each was shown for a tick, a
    10-frame clip became a 0.04 s one, said as segments joined with an overlap. The frames at
    the first frame's time are held (at most ``_UNTIMED_HOLD_S`` of them) until a later time
    shows where the clock goes, then placed between, evenly where they do not fit one interval
    apart; past that many, at the end, or live (no latency), one interval apart after the frame
    before, and so are later ones that stay at that time. Once the clock has moved on, nothing
    here changes: a frame at or before the one before is a join's overlap (:class:`_Joins`,
    ``_check_squeezed``). :meth:`push` gives back the frames ready, :meth:`end` the ones held."""

    def __init__(self, source) -> None:
        self._source = source
        self._step = source._hold_gap()
        self._most = min(_UNTIMED_HOLD_MAX, max(2, math.ceil(_UNTIMED_HOLD_S / self._step)))
        self._tb = _fraction(source._vstream.time_base)
        self._first: Fraction | None = None  # the first frame's time
        self._last: Fraction | None = None  # the time of the last frame given out
        self._held: list = []
        self._stuck = False  # more than _most frames at the first time: placed as they come
        self._done = False  # the clock moved on: frames go through as they are
        self._placed = 0

    def push(self, f) -> list:
        if self._done:
            return [f]
        t = _seconds(f)
        if self._first is None:
            if t is not None:
                self._first = self._last = t
            return [f]
        if t is not None and t != self._first:
            self._done = True
            return [*self._place(t if t > self._last else None), f]
        if t is None and not self._held:
            return [f]  # (no time: _untimed_placed's)
        if self._stuck or self._source.live:
            return self._place(None, [f])
        self._held.append(f)
        if len(self._held) <= self._most:
            return []
        self._stuck = True
        return self._place(None)

    def end(self) -> list:
        return self._place(None)

    def _place(self, t: Fraction | None, frames: list | None = None) -> list:
        """The held ``frames`` placed between the last time and ``t`` (None: one interval apart after it)."""
        if frames is None:
            frames, self._held = self._held, []
        if not frames:
            return frames
        gap = (t - self._last) / (len(frames) + 1) if t is not None else self._step
        for h in frames:
            self._last += min(self._step, gap)
            tb = _fraction(h.time_base) or self._tb or Fraction(1, 90000)
            h.time_base, h.pts = tb, round(self._last / tb)
        self._placed += len(frames)
        self._source.stats["stuck_frames"] = self._placed
        if self._placed == len(frames):
            rate = 1 / self._step
            self._source._fallback(
                f"{self._source.spec}: the video's frames do not advance from the first one on (all at "
                f"{float(self._first):.3f} s: a stream written without its times?); they are placed one frame interval "
                f"apart at its rate ({float(rate):g} fps), so the output's frames stay a frame apart")
        return frames


class _Leaps:
    """Damaged presentation times (see :meth:`VideoSource._mend_leap`) mended as the frames come,
    before anything judges their times (a ``start``/``duration`` window, the count of frames
    that step back): :meth:`push` gives back the frames ready, :meth:`end` the one still held.
    Only a frame that leaps ahead of the one before by more than a join's step is held, until
    the next one shows whether it was damaged; every other frame goes straight on."""

    def __init__(self, source) -> None:
        self._source = source
        self._min = source._leap_min()
        self._last = None  # the last frame given out
        self._held = None  # a frame that leapt ahead of it, waiting for the next one

    def push(self, f) -> list:
        out = []
        if self._held is not None:
            b, self._held = self._held, None
            self._source._mend_leap(self._last, b, f)
            out.append(b)
            self._last = b
        ta, t = (_seconds(self._last) if self._last is not None else None), _seconds(f)
        if ta is not None and t is not None and t - ta > self._min:
            self._held = f
            return out
        self._last = f
        out.append(f)
        return out

    def end(self) -> list:
        held, self._held = self._held, None
        if held is not None:
            self._last = held
            return [held]
        return []


#: containers with a pixel shape of their own, over the bitstream's (FFmpeg's demuxer names)
_CONTAINER_SAR = frozenset({"mov", "mp4", "matroska", "webm", "avi", "mxf", "nut"})


def _sample_aspect_ratio(vs) -> Fraction | None:
    """The pixel shape players use: the container's SAR (mp4 ``pasp``, mkv display size) when it
    has one, else the bitstream's (H.264/HEVC VUI, MPEG-2 sequence header); ``None`` if neither
    says (square pixels). 0:1 means "unknown" in FFmpeg and is treated as unset."""
    for sar in (vs.sample_aspect_ratio, getattr(vs.codec_context, "sample_aspect_ratio", None)):
        f = _fraction(sar)
        if f is not None and f > 0:
            return f
    return None


#: Bytes of audio/subtitle packets an :class:`AuxChannel` keeps in memory. Packets beyond it
#: wait, in order, in an anonymous temporary file: a file whose audio runs on long after its
#: video (a title clip over a 40-minute recording) is demuxed far ahead of the frames the sink
#: writes, and would otherwise sit in RAM whole. Higher: fewer file round trips for audio-first
#: muxing; lower: less memory. Tests lower it to make the channel spill.
AUX_MEMORY_BUDGET = 32 << 20
#: what one packet costs besides its payload (the AVPacket and its Python object), so that many
#: tiny packets (subtitles, data streams) count too
_AUX_PACKET_OVERHEAD = 256
_NOPTS = -(1 << 63)  # FFmpeg's AV_NOPTS_VALUE: "no time" in a spilled record
# spilled record: stream index, pts, dts, duration, time base num/den, flags, side data count,
# payload size; then the payload, then per side data: (type, size) and its bytes
_SPILL_HEAD = struct.Struct("<iqqqqqIII")
_SPILL_SIDE = struct.Struct("<iI")
_SPILL_FLAGS = ("is_keyframe", "is_corrupt", "is_discard", "is_disposable", "is_trusted")


class AuxChannel:
    """Non-video packets from the decode thread to at most one sink (see module docstring).

    The demuxer is never blocked here: the sink waits for video frames that a blocked demuxer
    would never read (and muxers may put audio far ahead of the video). Instead, past
    :data:`AUX_MEMORY_BUDGET` bytes the packets go, in demux order, to an anonymous temporary
    file and are read back one at a time as :meth:`take_until` reaches them: the same bytes,
    times, time base, flags, side data and ``stream`` object, so copying and transcoding cannot
    tell them apart."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._packets: collections.deque = collections.deque()
        self._subscribed = False
        self._declined = False
        self._collecting = True
        self.discarded = 0
        #: bytes of the packets held in memory (payload + per-packet overhead), and its peak
        self.memory_bytes = 0
        self.peak_memory_bytes = 0
        #: packets that went through the temporary file
        self.spilled = 0
        self._streams: dict[int, object] = {}
        self._spill = None            # the temporary file, made at the first spill
        self._spill_read = 0          # offset of the next record to read back
        self._spill_end = 0           # offset where the next record is written
        self._spill_count = 0         # records written and not read back yet
        self._spill_failed = False
        #: inputs a reconnect replaced, each with how many packets queued ahead of its end are
        #: still to be taken: their packets' ``stream`` points into them (see :meth:`retire`)
        self._retired: list[list] = []
        self._end: float | None = None  # packets from here on (seconds) are dropped (see end_at)

    def subscribe(self) -> None:
        with self._lock:
            if not self._collecting:
                raise InvalidInputError(
                    "the sink was opened too late to receive the source's audio packets (they were "
                    f"discarded after {_AUX_GRACE_FRAMES} frames); open the sink before reading frames, "
                    "or pass audio='none'"
                )
            self._subscribed = True

    def decline(self) -> None:
        """A sink that takes none of the packets by choice (``audio='none'``, every camera
        recording): when no other sink subscribes, they are discarded as usual after the first
        frames, said as information rather than as a warning (the user asked for it)."""
        with self._lock:
            self._declined = True

    def put(self, packet, frames_emitted: int) -> None:
        with self._lock:
            if not self._collecting:
                self.discarded += 1
                return
            if not self._subscribed and frames_emitted > _AUX_GRACE_FRAMES:
                self._collecting = False
                self.discarded += len(self._packets) + self._spill_count + 1
                self._clear()
                if self._declined:
                    # (the sink has said it, stream by stream)
                    log.debug("the source's audio/subtitle packets are discarded: the sink takes none (audio='none')")
                else:
                    # only a hand-made pipeline reads frames with no sink and leaves the channel
                    # open (Enhancer.stream closes it): its audio is going nowhere, say so
                    log.warning("no sink consumes the source's audio/subtitle packets; they are discarded")
                return
            cost = packet.size + _AUX_PACKET_OVERHEAD
            # once anything waits in the file, everything after it does too (demux order)
            if (self._spill_count or self.memory_bytes + cost > AUX_MEMORY_BUDGET) and self._spill_packet(packet):
                return
            self._packets.append(packet)
            self.memory_bytes += cost
            self.peak_memory_bytes = max(self.peak_memory_bytes, self.memory_bytes)

    def take_until(self, t: float | None) -> Iterator:
        """Packets whose time is <= ``t`` seconds (all when ``t`` is None), in demux order.

        An iterator that takes one packet at a time as it is consumed, so that a long spilled
        tail (``t=None`` at the end of a file) is never read back into memory all at once."""
        while True:
            with self._lock:
                p = self._take_one(t)
            if p is None:
                return
            yield p

    def end_at(self, t: float) -> None:
        """Packets from ``t`` seconds on are dropped instead of taken: a trim window's end, known
        only once its first frame comes (``duration`` counts from there), when what the demuxer
        read before that frame is already queued here. An Ogg file stores its audio about 1 s
        ahead of the video: a 0.4 s part kept all of it, 0.58 s of audio running on past the
        picture (the sink cuts only subtitles at the window's end)."""
        with self._lock:
            self._end = t

    def close(self) -> None:
        """Drop what is left (the source is closed: its streams cannot be decoded or copied any
        more) and delete the temporary file."""
        with self._lock:
            self._collecting = False
            self._clear()

    def retire(self, container) -> None:
        """Close ``container`` (an input a reconnect replaces) once the packets of it that are
        queued here have been taken. Closing it frees its streams, and a queued packet's
        ``stream`` would then point at freed memory: the sink would read a garbage index and
        lose the packet (or decode with a freed codec context). Until then it stays open.
        Packets no sink takes (only declined, as by every camera recording) are dropped first,
        as they would be after the first frames: held, they kept the input open, and a UDP
        source's port could not be bound again for the reconnect ("Address already in use")."""
        with self._lock:
            if self._declined and not self._subscribed and self._collecting:
                self._collecting = False
                self.discarded += len(self._packets) + self._spill_count
                self._clear()
            queued = len(self._packets) + self._spill_count
            if queued:
                self._retired.append([container, queued])
                return
        _close_quietly(container)

    # --- internals (under self._lock) ----------------------------------------------------
    def _take_one(self, t: float | None):
        while True:
            p = self._take_any(t)
            if p is None or self._end is None or not self._past_end(p):
                return p

    def _past_end(self, p) -> bool:
        """Whether packet ``p`` starts at or after the end set by :meth:`end_at` (as the source's
        ``_in_window`` says 'after')."""
        pt = p.pts if p.pts is not None else p.dts
        return pt is not None and bool(p.time_base) and float(pt * p.time_base) >= self._end - 1e-6

    def _take_any(self, t: float | None):
        # a retired input whose last packet the sink took (and has handled: it asks for the next
        # one only then) can go
        while self._retired and self._retired[0][1] <= 0:
            _close_quietly(self._retired.pop(0)[0])
        if self._packets:
            p = self._packets[0]
            pt = p.pts if p.pts is not None else p.dts
            if t is not None and pt is not None and float(pt * p.time_base) > t:
                return None
            self.memory_bytes -= p.size + _AUX_PACKET_OVERHEAD
            p = self._packets.popleft()
        elif not self._spill_count:
            return None
        else:
            p = self._unspill(t)
        if p is not None:
            for r in self._retired:
                r[1] -= 1
        return p

    def _spill_packet(self, packet) -> bool:
        """Append ``packet`` to the temporary file; False (kept in memory) if there is no file."""
        if self._spill is None:
            if self._spill_failed:
                return False
            try:
                self._spill = tempfile.TemporaryFile(prefix="stream-gpen-aux-")
            except OSError as e:
                self._spill_failed = True
                log.warning("audio/subtitle packets ahead of the video are kept in memory: no temporary file (%s)", e)
                return False
            log.info("more than %d MiB of audio/subtitle packets ahead of the video: the rest wait in a "
                     "temporary file", AUX_MEMORY_BUDGET >> 20)
        tb = packet.time_base
        sides = [(ap.packet_sidedata_type_from_literal(sd.data_type), bytes(sd)) for sd in packet.iter_sidedata()]
        flags = sum(1 << i for i, name in enumerate(_SPILL_FLAGS) if getattr(packet, name))
        payload = bytes(packet)
        parts = [_SPILL_HEAD.pack(
            packet.stream.index,
            _NOPTS if packet.pts is None else packet.pts,
            _NOPTS if packet.dts is None else packet.dts,
            packet.duration or 0,
            tb.numerator if tb else 0, tb.denominator if tb else 0,
            flags, len(sides), len(payload)), payload]
        for kind, data in sides:
            parts += [_SPILL_SIDE.pack(kind, len(data)), data]
        try:
            self._spill.seek(self._spill_end)
            self._spill.write(b"".join(parts))
            self._spill.flush()
        except OSError as e:  # no room in the temporary folder
            if self._spill_count:  # the packets before this one are in the file: no way to keep order
                raise DecodeError(
                    f"no room for the audio/subtitle packets ahead of the video in the temporary folder ({e})",
                    hint="free some space there, or point TMPDIR at a folder with room") from e
            log.warning("audio/subtitle packets ahead of the video are kept in memory: the temporary file "
                        "cannot be written (%s)", e)
            self._spill_failed = True
            self._spill.close()
            self._spill = None
            return False
        # the newest input's stream (a reconnect's): an older one is closed once its packets
        # are taken (retire), and a record read back after that must not point into it
        self._streams[packet.stream.index] = packet.stream
        self._spill_end = self._spill.tell()
        self._spill_count += 1
        self.spilled += 1
        return True

    def _unspill(self, t: float | None):
        f = self._spill
        f.seek(self._spill_read)
        index, pts, dts, duration, num, den, flags, n_side, size = _SPILL_HEAD.unpack(f.read(_SPILL_HEAD.size))
        pt = pts if pts != _NOPTS else dts
        if t is not None and pt != _NOPTS and den and float(Fraction(pt * num, den)) > t:
            return None
        p = av.Packet(f.read(size))
        for _ in range(n_side):
            kind, n = _SPILL_SIDE.unpack(f.read(_SPILL_SIDE.size))
            sd = ap.PacketSideData(kind, n)
            memoryview(sd)[:] = f.read(n)
            p.set_sidedata(sd, move=True)
        p.stream = self._streams[index]
        if den:
            p.time_base = Fraction(num, den)
        if pts != _NOPTS:
            p.pts = pts
        if dts != _NOPTS:
            p.dts = dts
        p.duration = duration
        for i, name in enumerate(_SPILL_FLAGS):
            if flags >> i & 1:
                setattr(p, name, True)
        self._spill_read = f.tell()
        self._spill_count -= 1
        if not self._spill_count:  # all read back: start the file over
            f.seek(0)
            f.truncate()
            self._spill_read = self._spill_end = 0
        return p

    def _clear(self) -> None:
        for container, _ in self._retired:
            _close_quietly(container)
        self._retired.clear()
        self._packets.clear()
        self.memory_bytes = 0
        self._spill_count = 0
        self._spill_read = self._spill_end = 0
        if self._spill is not None:
            self._spill.close()
            self._spill = None


def _close_quietly(container) -> None:
    try:
        container.close()
    except Exception:  # an input a drop replaced: its connection is already broken, nothing to save
        pass


def paced_by_default(kind: str, live: bool, *, pipe: bool = False) -> bool:
    """Whether a source is paced when ``pace=None``: a live lavfi graph or file (they decode far
    faster than real time), not a device or network stream (those deliver in real time by
    themselves; waiting on their timestamps would only add latency) and never an offline read.
    A live http(s) URL that turns out to serve a file is paced too (see :func:`_served_as_file`),
    known only once it is open. A file that is a pipe, FIFO or character device (``pipe``) is a
    live producer's output as often as a dumped file: it starts unpaced and is paced once its
    frames run ahead of the wall clock (see ``VideoSource._check_ahead``)."""
    return bool(live) and kind in ("lavfi", "file") and not pipe


def _download_size(url: str, container) -> int | None:
    """The length the http(s) server of ``url`` gave its answer (``Content-Length``, FFmpeg's
    ``avio_size``), None without one. A file is served with its length; a live MPEG-TS/MJPEG
    feed over http without (chunked, or until the connection closes). FFmpeg reports a transfer
    that stops short of the length as an I/O error, so a clean end of such an answer is the
    file's end. HLS is left out: its demuxer's size is the playlist's."""
    if not url.lower().startswith(("http://", "https://")) or _is_hls(container):
        return None
    try:
        size = container.size
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    return size if size and size > 0 else None


def _served_as_file(url: str, container) -> bool:
    """A live http(s)/HLS URL that gives a file: served with a length (:func:`_download_size`)
    or declaring a duration (mp4, mkv, VOD HLS). It downloads as fast as the network allows,
    so read live it is paced at its own rate like a local file (see :func:`paced_by_default`)."""
    if not url.lower().startswith(("http://", "https://", "hls")):
        return False
    return _header_span(container) is not None or _download_size(url, container) is not None


class _Pacer:
    """Holds each frame back until its timestamp is due on the wall clock, counted from the first
    frame (FFmpeg's ``-re``), so a synthetic or file source read as live arrives at its own rate.
    ``wait(seconds)`` sleeps and returns True when the source is being stopped; ``clock`` gives
    seconds (both injectable so the tests need no real time)."""

    #: a forward step counts as a clock jump only beyond this many frame intervals (the nominal
    #: one, else the previous step) as well as ``max_gap_s``: a time-lapse or slideshow source at
    #: one frame per 20 s is a rate, not a jump at every frame
    JUMP_STEPS = 4.0
    SLOWEST_STEP_S = 60.0

    def __init__(self, wait, *, clock=time.monotonic, max_gap_s: float = _PACE_MAX_GAP_S, name: str = "",
                 interval: float | None = None) -> None:
        self._wait = wait
        self._clock = clock
        self._max_gap = max_gap_s
        self._name = name
        self._interval = interval if interval and interval > 0 and math.isfinite(interval) else None
        self._anchor: tuple[float, float] | None = None  # (wall clock, frame time) of the reference frame
        self._last: float | None = None
        self._step: float | None = None  # the previous forward step (at most SLOWEST_STEP_S)
        #: times the clock was restarted at a timestamp jump
        self.resyncs = 0

    def __call__(self, t: float) -> bool:
        """Wait until frame time ``t`` (seconds) is due; False when stopped while waiting."""
        now = self._clock()
        last, self._last = self._last, t
        limit = max(self._max_gap, self.JUMP_STEPS * (self._interval or self._step or 0.0))
        jump = self._anchor is None or t < last or t - last > limit
        # the step the next one is measured against; a jump forwards counts as at most a minute,
        # so that a slow source's first step teaches its rate and a later hour's jump still shows
        self._step = min(t - last, self.SLOWEST_STEP_S) if last is not None and t >= last else None
        if jump:
            if self._anchor is not None:
                self.resyncs += 1
                if self.resyncs == 1:
                    log.info("%s: timestamps jump from %.3f s to %.3f s: pacing restarts its clock there",
                             self._name, last, t)
            self._anchor = (now, t)
            return True
        # behind (the decoder or the machine was slow): no wait, and no new reference either, so
        # the source catches up with its rate instead of drifting late for good
        delay = self._anchor[0] + (t - self._anchor[1]) - now
        return delay <= 0 or not self._wait(delay)


#: a reopened session's first frame this close to the time the session before began with is a
#: replay of it (see VideoSource._decoded); its end this close to that one's end, the same file
_REPLAY_TOL_S = 0.002

#: audio/subtitle packets of a reconnected live session held until its first video frame says
#: how far the session is moved (see _Timeline); beyond this many they are dropped (a session
#: whose video does not decode)
_REBASE_HOLD = 1024


#: the packets a demuxer gives at most at a read error, after a wait, that held each stream's last
#: packet (MPEG-TS gives a PES packet once the next one begins, and the rest at the end of input)
_FLUSHED_MAX = 16
#: ... within this many seconds of that wait's end (decoding the flushed frames takes that long at most)
_FLUSH_WINDOW_S = 1.0


class _Reads:
    """A demuxer's packets (``packets``, an iterator), with when its reads waited. For
    :class:`_Timeline`: when the data of a live session's last frame arrived.

    "Arrived" is not when its packet came out of the demuxer, nor when its frame came out of the
    decoder: MPEG-TS (udp, srt, tcp) gives a frame's packet once the next one's data begins, so
    the last frame before an outage sits in the demuxer until the read fails (the no-data timeout,
    10 s) and the demuxer hands over what it held. Stamped then, the outage was measured from the
    timeout, 10 s short. A read that waits (FFmpeg's read timer is per packet read) began when the
    data stopped coming; the packets given just before the read error that followed such a wait
    were held ones. :meth:`quiet_since` says when that wait began: the real arrival of the last
    frame's data (to the moment the packet before it was read, a frame interval at most)."""

    def __init__(self, packets, *, wait_s: float, clock=time.monotonic) -> None:
        self._it = iter(packets)
        self._wait_s = wait_s
        self._clock = clock
        self._waited: tuple[float, float] | None = None  # (start, end) of the last read that waited
        self._after = 0  # packets given after it
        self._failed_at: float | None = None

    def __iter__(self):
        return self

    def __next__(self):
        t0 = self._clock()
        try:
            p = next(self._it)
        except StopIteration:
            raise
        except BaseException:
            self._note(t0, self._clock(), failed=True)
            raise
        self._note(t0, self._clock())
        return p

    def _note(self, t0: float, t1: float, failed: bool = False) -> None:
        if t1 - t0 >= self._wait_s:
            self._waited, self._after = (t0, t1), 0
        elif self._waited is not None and not failed:
            self._after += 1
        if failed:
            self._failed_at = t1

    def quiet_since(self) -> float | None:
        """When the data stopped, for a read that failed after a wait (clock time), or None: the
        start of the wait, where the read failed within :data:`_FLUSH_WINDOW_S` of its end with
        no more than the demuxer's held packets (:data:`_FLUSHED_MAX`) given between (the wait
        itself failing: none)."""
        if self._waited is None or self._failed_at is None:
            return None
        if self._after > _FLUSHED_MAX or self._failed_at - self._waited[1] > _FLUSH_WINDOW_S:
            return None
        return self._waited[0]


def _header_span(container) -> tuple[float, float] | None:
    """Where the input starts and ends, in seconds, by its header (None: no duration given).
    FFmpeg's ``duration`` is the span from ``start_time`` (mp4/mov after their edit lists, MPEG-TS,
    flv), except for Matroska/WebM, where it is the segment's Duration, which FFmpeg's own muxer
    writes as the last timestamp (the end: a file whose streams start at 3 s and hold 1.2 s says
    4.2 s) and mkvmerge as the span. There a Duration past the start is read as the end, the
    shorter reading: a whole file is never taken for a cut one."""
    if not container.duration:
        return None
    s0 = container.start_time / 1e6 if container.start_time is not None else 0.0
    d = container.duration / 1e6
    if "matroska" in (container.format.name or "").split(",") and 0 < s0 < d:
        return s0, d
    return s0, s0 + d


def _stream_end(stream) -> float | None:
    """Where ``stream`` ends, in seconds, by its header: its duration (mp4, mov), or the
    ``DURATION`` tag FFmpeg's Matroska muxer writes per track (its end, as for the segment's, see
    _header_span; a span where that is before the start); None where neither says."""
    tb = _fraction(stream.time_base)
    start = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
    if stream.duration and tb:
        return start + float(stream.duration * tb)
    tag = (stream.metadata or {}).get("DURATION")
    try:
        h, m, sec = tag.split(":")
        d = int(h) * 3600 + int(m) * 60 + float(sec)
    except (AttributeError, ValueError):
        return None
    return d if d > start else start + d


def _seek_target(t, tb) -> int:
    """``t`` seconds in ticks of ``tb`` for ``container.seek``, which takes an int64: a time
    past its range (no real input is that long) is OverflowError, not an internal error."""
    ticks = t / tb
    if not -(1 << 63) < ticks < (1 << 63):
        raise OverflowError(f"{float(t):g} s is beyond any seekable time")
    return int(ticks)


class _Timeline:
    """The source's timeline across reconnects. A reopened network input starts its own clock
    again (an http(s) file at 0, an RTSP camera's new session wherever its clock is): used as
    they are, its timestamps would go backwards, and a recording would squeeze the rest of the
    session into a tick each after the drop.

    * live: each new session is moved so that its first frame comes after the last frame given
      out by the outage's length on the wall clock (at least one frame). A recording keeps real
      time (the outage shows as the last picture held for as long as it lasted, and what follows
      stays at its time of day); a frame duration alone would cut the outage out and put every
      later moment early. The session's audio/subtitle packets move by the same amount: they
      are held until its first frame sets it, and those that would overlap the packets already
      given out (muxers need increasing times per stream) are dropped.
    * not live (an http(s) file read offline): the file's own timeline is the timeline. The
      reopened file starts again at its top (seeked back near the drop where it can be), and
      the frames and packets up to the last ones given out are dropped: the output continues
      where the drop cut it, with nothing repeated.

    Moved frames carry the first session's video time base (a new session may use another)."""

    def __init__(self, time_base: Fraction | None, *, live: bool, name: str = "", clock=time.monotonic) -> None:
        self._tb = time_base
        self._live = live
        self._name = name
        self._clock = clock
        self._offset = Fraction(0)              # seconds added to this session's times
        self._pending = False                   # live: the next frame sets the session's offset
        self._resume: Fraction | None = None    # not live: frames up to this time were given out
        self._held: list = []
        self._last: Fraction | None = None      # the last frame given out (output seconds)
        self._last_wall: float | None = None
        self._step: Fraction | None = None      # the last step between two frames given out
        self._aux_last: dict[int, Fraction] = {}  # stream index -> latest packet time given out
        #: sessions opened (1 + successful reopens)
        self.sessions = 1
        #: audio/subtitle packets dropped at reconnects (overlapping, or not placeable)
        self.dropped_packets = 0

    def as_file(self) -> None:
        """The live source turned out to be a file (it ran ahead of its clock): a reopened session
        resumes after the last frame given out, as an offline file does, instead of running on
        (a replay of the file would go into the output). Only while no session was moved."""
        if not self._offset:
            self._live = False

    def reopened(self) -> Fraction | None:
        """A new session starts; returns the time to resume a non-live input at (None: no seek)."""
        self.sessions += 1
        if self._held:  # a live session that dropped before its first frame: nothing places them
            self._drop(len(self._held))
            self._held.clear()
        if self._last is None:  # nothing given out yet: the new session's times are the only ones
            return None
        if self._live:
            self._pending = True
            return None
        self._resume = self._last
        return self._last

    def frame(self, f, step: Fraction | None) -> list | None:
        """Move decoded frame ``f`` onto the timeline (in place). Returns the held packets that
        are now placed, or None when the frame was given out before (a resumed file)."""
        if f.pts is None or not f.time_base:
            return []
        t = f.pts * Fraction(f.time_base)
        if self._resume is not None:
            if t <= self._resume:
                return None
            self._resume = None
        ready: list = []
        if self._pending:
            self._pending = False
            gap = step or self._step or Fraction(1, 25)
            wall = Fraction(max(0.0, self._clock() - self._last_wall)) if self._last_wall is not None else Fraction(0)
            off = self._last + max(gap, wall) - t
            tb = self._tb or Fraction(f.time_base)
            self._offset = round(off / tb) * tb
            log.info("%s: the reconnected stream's clock restarts at %.3f s: its frames and audio are moved by "
                     "%+.3f s to run on from %.3f s (the outage: %.3f s)", self._name, float(t),
                     float(self._offset), float(self._last), float(max(gap, wall)))
            held, self._held = self._held, []
            ready = [p for p in held if self._place(p)]
        if self._offset:
            tb = self._tb or Fraction(f.time_base)
            f.pts = round((t + self._offset) / tb)
            f.time_base = tb
        return ready

    def emitted(self, f) -> None:
        """Frame ``f`` (as :meth:`frame` left it) is given out."""
        if f.pts is None or not f.time_base:
            return
        t = f.pts * Fraction(f.time_base)
        if self._last is not None and t > self._last:
            self._step = t - self._last
        self._last = t if self._last is None else max(self._last, t)
        self._last_wall = self._clock()

    def quiet_since(self, wall: float | None) -> None:
        """The session's data stopped coming at ``wall`` (clock time; see :class:`_Reads`): the
        outage runs from there, not from when the frames the demuxer held until its read failed
        were given out (10 s later, at a no-data timeout). None: nothing known."""
        if wall is not None and self._last_wall is not None and wall < self._last_wall:
            self._last_wall = wall

    def aux(self, packet) -> list:
        """Audio/subtitle ``packet`` moved like the frames of its session: ``[packet]`` to give
        out, or ``[]`` (held for now, or dropped)."""
        if self._pending:
            if len(self._held) < _REBASE_HOLD:
                self._held.append(packet)
            else:
                self._drop(1)
            return []
        return [packet] if self._place(packet) else []

    def _place(self, p) -> bool:
        tb = p.time_base
        if self._offset and tb:
            ticks = round(self._offset / Fraction(tb))
            if p.pts is not None:
                p.pts += ticks
            if p.dts is not None:
                p.dts += ticks
        t = p.dts if p.dts is not None else p.pts
        if t is None or not tb:
            return True
        ts = t * Fraction(tb)
        last = self._aux_last.get(p.stream.index)
        if self.sessions > 1 and last is not None and ts <= last:
            self._drop(1)
            return False
        self._aux_last[p.stream.index] = ts if last is None else max(last, ts)
        return True

    def _drop(self, n: int) -> None:
        if not self.dropped_packets:
            log.info("%s: audio/subtitle packets that overlap the ones before a reconnect are dropped", self._name)
        self.dropped_packets += n


def _unwrap_33(packets, seen: dict | None = None):
    """MPEG-TS packets with FFmpeg's 33-bit "wrap" undone where it cannot be one: a joined file
    whose second recording's clock is behind the first's (``cat a.ts b.ts``, a UDP encoder that
    restarts) is read by FFmpeg as the clock having wrapped, and its later packets come hours on
    (+2^33 ticks, 26.5 h: a 4 s file was written as a 26 h one, or refused by the mp4 muxer). A
    step of more than half the clock's range (13 h) within a stream is taken back by 2^33 ticks: a
    step back, which :class:`_Joins` (files) joins on, and a real wrap (a small step) is untouched."""
    corr: dict[int, int] = {}  # stream index -> ticks taken off
    last: dict[int, int] = {}  # stream index -> its latest dts (corrected)
    wraps: dict[int, int] = {}  # stream index -> 2^33 ticks of 90 kHz in its time base (once per stream)
    for p in packets:
        i = p.stream.index
        if p.dts is not None and p.time_base:
            wrap = wraps.get(i)
            if wrap is None:
                wrap = wraps[i] = round((1 << 33) * Fraction(1, 90000) / Fraction(p.time_base))
            d = p.dts - corr.get(i, 0)
            if i in last and abs(d - last[i]) > wrap // 2:
                corr[i] = corr.get(i, 0) + (wrap if d > last[i] else -wrap)
                d = p.dts - corr[i]
                if seen is not None:
                    seen["unwrapped"] = True  # (the header's duration counts the false wrap)
            last[i] = d
        c = corr.get(i, 0)
        if c:
            p.dts = None if p.dts is None else p.dts - c
            p.pts = None if p.pts is None else p.pts - c
        yield p


def join_step(vs, options: dict | None = None) -> Fraction:
    """The least step back (s) of a stream's dts that :class:`_Joins` takes for a join of
    recordings: one frame interval of video ``vs`` (0.1 s when its rate is unknown), at least
    ``_JOIN_MIN_S``. The read and the stream copy (:func:`~stream_gpen.io._remux.remux`) judge a
    file by the same step, so that the copy joins it where the re-encode does."""
    rate = _rate_of(vs, options or {}) if vs is not None else None
    return max(1 / rate if rate else Fraction(1, 10), _JOIN_MIN_S)


def on_one_clock(container, packets, joins: "_Joins", seen: dict | None = None):
    """A demuxer's ``packets`` on one clock: an MPEG-TS's false 33-bit wraps undone
    (:func:`_unwrap_33`), then each moved past the joins of recordings its stream has passed
    (``joins``, see :class:`_Joins`: the later recording runs on from the earlier one's end, audio
    in sync). The read (``VideoSource``) and the stream copy (:func:`~stream_gpen.io._remux.remux`)
    both go through it: a copy of ``cat a.ts b.ts`` gave the mp4/mkv/mov muxers its clock's step
    back ("Invalid argument")."""
    if "mpegts" in (container.format.name or "").split(","):
        packets = _unwrap_33(packets, seen)
    return joins.packets(packets)


class _Joins:
    """Timestamps that jump back inside one file: recordings joined end to end (``cat a.ts b.ts``,
    AVCHD ``.MTS`` segments), each with its own clock. Used as they are, the later segment's
    frames would be squeezed into a tick each after the earlier one's last frame, and its copied
    audio would go backwards, which muxers refuse.

    A stream whose dts falls back by more than ``step`` (a frame interval, at least
    ``_JOIN_MIN_S``) has passed a join: it and
    everything after it in that stream is moved by the join's offset, so the later segment runs on
    from the end of what came before (the latest packet end of any stream), as FFmpeg's
    "Non-monotonic DTS" fix-up and :class:`_Timeline` do for reconnects. Every stream passing its
    k-th join takes the k-th offset, set by the first stream there: video and audio of a segment
    keep their sync. Packets without a dts are moved but never taken for a join (Matroska gives
    B-frames pts only, which go back by design).

    One damaged timestamp (a flipped bit in a PES header: one packet hours off, the next back
    where the stream was) is neither a join nor a pause: taken for a leap and a join back, it
    moved all that followed by hours, and video and audio apart (each stream's outlier its own
    "join"). :meth:`packets` therefore holds a video/audio packet whose dts leaps forward more
    than ``step`` from its stream's, with the next ones while they are off too (flipped bits often
    damage a few headers in a row), up to ``_OUTLIER_RUN``: a packet back within ``step`` of
    where the stream was shows that those held were outliers, retimed between their neighbours;
    past ``_OUTLIER_RUN`` (time went on from the leap: a pause, a join) they are passed on as
    before. Where no neighbour is on one side, the stream's first packet is held until its second
    (see :meth:`_sift_timed`), a run still held at the end is judged by the other streams' ends
    (:meth:`_trailing`). (A pts damaged over an intact dts is not judged: after a pause in
    B-frame video, x264's pts runs seconds ahead of its dts for a few frames by design, and a
    bound on their difference moved the rest of such a file seconds late.)"""

    def __init__(self, step: float, name: str = "", *, live: bool = False, clock=time.monotonic,
                 quiet: bool = False) -> None:
        self._step = Fraction(step)
        self._name = name
        self._quiet = quiet  # (joins logged at debug only: a stream copy whose re-encode warned of them)
        self._live = live
        self._clock = clock
        self._anchor: tuple[Fraction, float] | None = None  # live: (first dts, wall clock then)
        self._arrived: float | None = None  # live: when the last packet came (wall clock)
        self._pause = 0.0  # live: the last pause between two packets longer than ``step`` (seconds)
        self._since_pause = 0  # live: packets since it
        self._offsets: list[Fraction] = []  # seconds added after the k-th join
        self._passed: dict[int, int] = {}  # stream index -> joins passed
        self._last: dict[int, Fraction] = {}  # stream index -> latest dts (moved seconds)
        self._last_end: dict[int, Fraction] = {}  # stream index -> that packet's end (a step without a duration)
        self._end: Fraction | None = None  # latest packet end of any stream (moved seconds)
        self._held: dict[int, tuple] = {}  # stream index -> (packets that leapt, the stream's dts before them)
        self._fresh: list = []  # packets of streams met for the first time, held (see _sift)
        self._fresh_ids: set[int] = set()
        self._fresh_joins = 0  # joins met when the first of them was held
        self._first: dict[int, object] = {}  # stream index -> its first timed packet, held until its second
        #: packets whose damaged timestamp was retimed (between their neighbours, before their
        #: stream's second packet, or after its last one)
        self.retimed = 0

    def packets(self, packets):
        """``packets`` (a demuxer's), each moved (see :meth:`move`), in the same order but for a
        leaping packet held back until its stream's next one shows what it was (see the class)."""
        try:
            for p in packets:
                yield from self._sift(p)
        except (av.error.FFmpegError, OSError):
            yield from self._release()  # (what was read before a damaged part is still used)
            raise
        yield from self._release()

    def _sift(self, p):
        i = p.stream.index
        if self._live:  # (the wall-clock pause before a join, see move)
            now = self._clock()
            if self._arrived is not None and now - self._arrived > float(self._step):
                # the part of the quiet time the media had not already covered: a feed that comes
                # in bursts (HLS segments) is ahead of the wall clock by a burst at each gap
                ahead = 0.0
                if self._anchor is not None and self._end is not None:
                    ahead = float(self._end - self._anchor[0]) - (self._arrived - self._anchor[1])
                self._pause, self._since_pause = max(0.0, now - self._arrived - max(0.0, ahead)), 0
            else:
                self._since_pause += 1
            self._arrived = now
        if i in self._fresh_ids or (
                i not in self._passed and self._end is not None and p.dts is not None and p.size and p.time_base
                and p.stream.type in ("video", "audio")
                and p.dts * Fraction(p.time_base) + (self._offsets[-1] if self._offsets else 0) < self._end - self._step):
            # A stream met for the first time, behind the others' time: held until a join shows
            # up in another stream (or it is clear none does). In ``cat video_only.ts
            # with_audio.ts`` the second part's audio comes before its first video packet in
            # the file: it took no join, and played 2 s before its video.
            if not self._fresh:
                self._fresh_joins = len(self._offsets)
            self._fresh_ids.add(i)
            self._fresh.append(p)
            if len(self._fresh) >= _FRESH_MAX:  # (no join came: a stream that starts late, interleaved late)
                yield from self._release_fresh()
            return
        for h in self._sift_timed(p):
            yield h
        if self._fresh and len(self._offsets) > self._fresh_joins:
            yield from self._release_fresh()

    def _release_fresh(self):
        fresh, self._fresh, self._fresh_ids = self._fresh, [], set()
        for h in fresh:
            self.move(h)  # (its stream takes the joins met so far: see _joins_passed)
            yield h

    def _sift_timed(self, p):
        i = p.stream.index
        t = self._dts(p)
        first = self._first.pop(i, None)
        if first is not None:
            # The stream's first packet, held until now: far ahead of this one (more than a
            # join's step), it had a damaged timestamp. Taken for the stream's start, it made this
            # packet a jump back, a "join", and the rest of the stream was moved as far (an hour
            # past its audio).
            t0 = self._dts(first)
            if t is not None and t0 - t > self._step:
                tb, d = Fraction(first.time_base), first.duration or p.duration
                self._retime(first, t - (d * tb if d else self._step), f"the next one ({float(t):.3f} s)")
            self.move(first)
            yield first
        elif t is not None and i not in self._last and p.stream.type in ("video", "audio"):
            self._first[i] = p
            return
        if i in self._held:
            run, before = self._held[i]
            if t is not None and abs(t - before) <= self._step:
                # back where the stream was: each packet held was a damaged timestamp
                for j, h in enumerate(run, 1):
                    self._retime(h, before + (t - before) * j / (len(run) + 1),
                                 f"the ones around it ({float(before):.3f} s, {float(t):.3f} s)")
            elif t is not None and len(run) < _OUTLIER_RUN:
                run.append(p)  # still off: a further damaged one, or footage (a pause, a join)?
                return
            elif not p.size:  # (PyAV's flush packet: the input has ended)
                self._trailing(i, run)
            del self._held[i]
            for h in run:
                self.move(h)
                yield h
            t = self._dts(p)  # (past a join now, maybe)
        before = self._last.get(i)
        if (t is not None and before is not None and t - before > self._step
                and p.stream.type in ("video", "audio")  # (subtitle cues are seconds apart by nature)
                and (not self._live or self._ahead(t))):  # (live: a pause, lost data: real time, passed on)
            # (only a leap forward: held back, the first packets of a joined recording would let
            # a later stream's set the join's offset, and an earlier-starting one overlap)
            self._held[i] = ([p], before)
            return
        self.move(p)
        yield p

    def _release(self):
        first, self._first = self._first, {}
        for h in first.values():  # (a stream of one packet)
            self.move(h)
            yield h
        held, self._held = self._held, {}
        for i, (run, _) in held.items():
            self._trailing(i, run)
            for h in run:
                self.move(h)
                yield h
        yield from self._release_fresh()

    def _trailing(self, i: int, run: list) -> None:
        """Stream ``i``'s last packets, ``run``, held as a leap when the input ended: with no next
        packet to show what they were, a run that leapt more than ``_TRAILING_MIN_S`` past every
        other stream's end is taken for damaged timestamps (the file obviously ends before them)
        and retimed to follow its stream, one packet's duration after another. A shorter leap is
        kept: a slideshow's last frames 10 s apart after its music ended (closed up, a 30 s
        slideshow came out 0.16 s long), a still held at the end. So are a run with another stream
        running on past it (the sound over a still picture) and one with no other stream to judge
        by (a file of video only). A real pause of ten minutes before the last ``_OUTLIER_RUN``
        packets of a stream that outlasts all the others is closed up too."""
        others = [e for j, e in self._last_end.items() if j != i]
        t0 = self._dts(run[0])
        if not others or t0 is None or t0 - max(others) <= max(self._step, _TRAILING_MIN_S):
            return
        tb = Fraction(run[0].time_base)
        to, gap = self._last_end[i], self._last_end[i] - self._last[i]
        for h in run:
            self._retime(h, to, f"the end of the other streams ({float(max(others)):.3f} s)")
            to += h.duration * tb if h.duration else gap

    def _dts(self, p) -> Fraction | None:
        """Packet ``p``'s dts in seconds on its stream's moved timeline (``None``: none to judge by)."""
        if p.dts is None or not p.time_base or not p.size:
            return None
        k = self._joins_passed(p.stream.index)
        return p.dts * Fraction(p.time_base) + (self._offsets[k - 1] if k else 0)

    def _joins_passed(self, i: int) -> int:
        """The joins stream ``i`` has passed. A stream first met after a join belongs to the
        recording that follows it (``cat video_only.ts with_audio.ts``: the audio of the second
        part ran on its own clock, 2 s before its video)."""
        return self._passed.setdefault(i, len(self._offsets))

    def _retime(self, p, to: Fraction, near: str) -> None:
        """Move outlier ``p``'s dts to ``to`` seconds, by its stream's packets (``near`` says
        which, for the message); its pts moves with it where it was as far off (the bits flipped
        in both)."""
        tb = Fraction(p.time_base)
        was = self._dts(p)
        dts = p.dts + round((to - was) / tb)
        if p.pts is not None:
            if abs(p.pts - p.dts) < abs(p.pts - dts):
                p.pts += dts - p.dts
            dts = min(dts, p.pts)
        p.dts = dts
        self._said("%s: one %s packet's timestamp (%.3f s) is far off %s: a damaged timestamp, retimed to %.3f s",
                   self._name, p.stream.type, float(was), near, float(self._dts(p)))

    def _said(self, msg: str, *args) -> None:
        """Count a retimed packet and say so: the first as a warning, the rest at info."""
        self.retimed += 1
        (log.warning if self.retimed == 1 else log.info)(msg, *args)

    def move(self, p) -> None:
        """Move packet ``p`` (in place) past the joins its stream has passed."""
        tb = p.time_base
        if not tb or not p.size:
            return
        tb = Fraction(tb)
        i = p.stream.index
        k = self._joins_passed(i)
        if p.dts is not None:
            raw = p.dts * tb
            last = self._last.get(i)
            at = raw + (self._offsets[k - 1] if k else 0)
            back = last is not None and at < last - self._step
            # live: a leap far ahead of the wall clock is the source's clock jumping, not a pause
            leap = (self._live and last is not None and at - last > self._step and p.stream.type in ("video", "audio")
                    and self._ahead(at))
            if back or leap:
                k += 1
                self._passed[i] = k
                if len(self._offsets) < k:
                    off = max(self._end if self._end is not None else last, self._last_end[i]) - raw
                    recent = self._since_pause <= 2 * (_OUTLIER_RUN + 1) * max(1, len(self._last))
                    if self._live and self._pause and recent:
                        # a live feed that went quiet and came back on a new clock: the recording
                        # keeps the pause as long as it lasted (as a reconnect's, _Timeline)
                        off += Fraction(self._pause)
                        self._pause = 0.0
                    self._offsets.append(round(off / tb) * tb)
                    if back:
                        (log.debug if self._quiet else log.warning)("%s: timestamps jump back to %.3f s after %.3f s (recordings joined into one "
                                    "file?): what follows is moved by %+.3f s to run on", self._name, float(raw),
                                    float(last), float(self._offsets[-1]))
                    else:
                        log.warning("%s: the live stream's clock jumps from %.3f s to %.3f s, %.0f s ahead of the "
                                    "time it has run (its encoder restarted?): what follows is moved by %+.3f s to "
                                    "run on", self._name, float(last), float(raw), float(at - last),
                                    float(self._offsets[-1]))
        if k:
            ticks = round(self._offsets[k - 1] / tb)
            if p.pts is not None:
                p.pts += ticks
            if p.dts is not None:
                p.dts += ticks
        if p.dts is not None:
            t = p.dts * tb
            if self._anchor is None and self._live:
                self._anchor = (t, self._clock())
            if i not in self._last or t >= self._last[i]:
                self._last[i] = t
                self._last_end[i] = t + (p.duration * tb if p.duration else self._step)
        t0 = p.pts if p.pts is not None else p.dts
        if t0 is not None:
            # (a subtitle cue's duration is how long it shows, not where the stream's data has got
            # to: counted, one track's 0.1-0.9 s cue put the next track's 0.1 s cue "behind")
            end = (t0 + (p.duration or 0 if p.stream.type in ("video", "audio") else 0)) * tb
            self._end = end if self._end is None else max(self._end, end)

    def _ahead(self, t: Fraction) -> bool:
        """Live: whether time ``t`` (moved seconds) is more than ``_LIVE_AHEAD_S`` ahead of the
        wall clock since the session's first packet."""
        if self._anchor is None:
            return False
        t0, w0 = self._anchor
        return t - t0 - Fraction(max(0.0, self._clock() - w0)) > _LIVE_AHEAD_S

    def as_file(self) -> None:
        """The live source turned out to be a file read ahead of real time: no wall-clock test."""
        self._live = False

    @property
    def joins(self) -> int:
        return len(self._offsets)


#: Demuxers an untrusted upload may be read with (``VideoSource(untrusted=True)``, the server's
#: video jobs): real media containers and raw video streams. Not allowed: playlists and scripts
#: that make FFmpeg open *other* files or URLs (hls, dash, concat, ffconcat, image2 patterns,
#: sdp/rtp, tee, ...): a crafted upload could otherwise pull server-side files into its output.
UNTRUSTED_DEMUXERS = (
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "mpegts", "mpeg", "mpegvideo",
    "flv", "asf", "h264", "hevc", "m4v", "mjpeg", "gif", "ogg", "dv", "mxf", "nut", "ivf", "yuv4mpegpipe",
    "obu", "av1", "vc1", "rm", "wtv",
    # raw H.263 and Flash (SWF: its video tags, zlib-inflated where compressed; it names no other file)
    "h263", "swf",
    # audio files (no video: refused as such, "no video stream", not as a playlist or script)
    "mp3", "wav", "flac", "aac", "aiff", "caf", "ac3", "eac3", "amr", "w64",
)

#: demuxers that make FFmpeg open other files or URLs (playlists, manifests, scripts, session
#: descriptions, pattern readers): the ones an untrusted upload's refusal says it is one of
_REFERENCING_DEMUXERS = frozenset({"hls", "applehttp", "dash", "concat", "imf", "image2", "sdp", "rtp", "rtsp",
                                   "avisynth", "vapoursynth"})


def _refused_demuxer(target: str, options: dict) -> str | None:
    """The demuxer FFmpeg picked for ``target`` that ``options``' ``format_whitelist`` refused,
    read from its log ("[swf] Format not on whitelist ..."): the open is made again under a log
    capture (it fails the same way: nothing beyond the probe is read). None where it cannot be
    told."""
    for name, message in _reopen_errors(target, options):
        if name and "not on whitelist" in message:
            return str(name)
    return None


def _reopen_errors(target: str, options: dict, format: str | None = None) -> list[tuple[str, str]]:
    """FFmpeg's logged errors, ``(component, message)``, of opening ``target`` again under a log
    capture (it fails the same way: nothing beyond the probe is read; PyAV's exception keeps only
    the error code, "Operation not permitted"). Empty where it opens this time."""
    from stream_gpen.io._meta import _log_lock
    from stream_gpen.io._sink import _capture_errors

    records: list[tuple[str, str]] = []
    with _log_lock, _capture_errors(records):
        try:
            av.open(target, "r", format=format or None, options=dict(options)).close()
        except (av.error.FFmpegError, OSError, ValueError):
            pass
        else:
            return []
    return records


def _open_failure(target: str, options: dict, format: str | None) -> tuple[str | None, str | None]:
    """FFmpeg's own words for why the local file ``target`` did not open (its first logged lines),
    and a hint where it is a playlist or concat script that refers to an entry FFmpeg's safety
    rules refuse (left as they are: the refusal keeps a downloaded script from reading any file or
    URL): ``(None, None)`` where the log says nothing."""
    try:
        if not stat.S_ISREG(os.stat(target).st_mode):
            # (a FIFO or device: opening it again waits for a writer, or reads what the run should)
            return None, None
        errors = _reopen_errors(target, options, format)
        with open(target, "rb") as f:
            head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except Exception:  # only an explanation: never let it hide the real error
        return None, None
    # (hls's own line goes on about patching hls.c: its first clause is the reason)
    lines = [m.strip().split(", consider updating")[0] for _, m in errors if m.strip()]
    detail = "; ".join(dict.fromkeys(lines[:2])) or None
    first = lines[0] if lines else None  # (of a script, what follows is the fallback probe's: "moov atom not found")
    if head.startswith(b"ffconcat") or any(name == "concat" for name, _ in errors):
        return first, ("absolute paths and URLs in a concat script are refused (FFmpeg's safe mode): "
                        "use paths relative to the script, in its folder or below")
    if head.startswith(b"#EXTM3U"):
        return first, ("the playlist refers to a segment FFmpeg will not open (a URL in a local playlist, "
                        "or a file whose extension is not a media segment's): put the segments beside the "
                        "playlist and name them relative to it, or open the playlist by its http(s) URL")
    return detail, None


def _untrusted_refusal(spec: str, target: str, options: dict, e: BaseException) -> NotMediaError:
    """Why an untrusted file was not opened: a playlist or script (a demuxer that opens other
    files) is said as one; another format FFmpeg reads but the upload list leaves out is named as
    that, not as a playlist; anything else (FFmpeg found no format) as not a media file."""
    name = _refused_demuxer(target, options)
    if name is not None and name not in _REFERENCING_DEMUXERS:
        try:
            what = f"{name} ({av.ContainerFormat(name, 'r').long_name})"
        except (ValueError, av.error.FFmpegError):
            what = name
        return NotMediaError(
            f"{spec!r} is {what}, which is not among the formats an untrusted file (an upload) is read with "
            "(stream_gpen.io._source.UNTRUSTED_DEMUXERS)",
            hint="convert it to a common container (mp4, mkv, mov, webm, ...) and upload that; "
                 "`stream-gpen enhance` reads it as it is")
    said = f" (FFmpeg reads it as {name})" if name is not None else ""
    return NotMediaError(
        f"{spec!r} is not a media file this input accepts{said}: an untrusted upload is read with media "
        f"containers only, never as a playlist, concat script or other reference to further files ({e})",
        hint="upload the video file itself (mp4, mkv, mov, webm, avi, ts, ...)")


def is_device_number(spec: str, *, files: bool = True) -> bool:
    """Whether ``spec`` names a capture device by its number (``0``: the first camera): ASCII
    digits only (``str.isdigit`` takes ``²`` and Arabic-Indic digits too, which no device is
    called), and no file or folder of that name is here: a file named ``20240101`` is read as that
    file (``enhance 20240101`` said "capture device '20240101' is not available"), as a file
    named ``-`` is. An ``int`` (``stream(0)``) is a device's number whatever files there are, and
    so is ``spec`` with ``files=False`` (``camera``'s default, which no one typed)."""
    return spec.isascii() and spec.isdigit() and not (files and os.path.exists(spec))


def _classify(spec) -> tuple[str, str, str | None, dict]:
    """spec -> (kind, target for av.open, forced format, options)."""
    if isinstance(spec, Path):
        spec = str(spec)
    number = isinstance(spec, int) and not isinstance(spec, bool) and spec >= 0  # (an index: a device's)
    if number:
        spec = str(spec)
    if not isinstance(spec, str) or not spec:
        raise InvalidInputError(f"source must be a non-empty path/URL/device string, got {spec!r}")
    if spec.startswith("lavfi:"):
        return "lavfi", spec[len("lavfi:"):], "lavfi", {}
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if scheme in URL_SCHEMES:
        opts = {"rtsp_transport": "tcp"} if scheme.startswith("rtsp") else {}
        if scheme in _LIVE_ONLY_SCHEMES:
            # FFmpeg reads ~20 frames to guess the frame rate before the open returns: they then came
            # as one burst, of which live reading keeps the newest (8 s of a 2 fps camera lost, its
            # first frame frozen that long); the rate is the codec's own (_rate_of)
            opts["fpsprobesize"] = "0"
        # (FFmpeg names its protocols in lower case: RTSP://... was "Protocol not found")
        return "url", scheme + "://" + spec.split("://", 1)[1], None, opts
    number = number or is_device_number(spec)
    if number or names_a_device(spec):
        if sys.platform.startswith("linux"):
            return "device", spec if spec.startswith("/dev/") else f"/dev/video{spec}", "v4l2", {}
        if sys.platform == "darwin":
            return "device", spec, "avfoundation", {}  # the frame rate is chosen on open: _open_avfoundation
        if sys.platform == "win32":
            if number:
                return "device", *_dshow_camera(int(spec))
            if not spec.startswith("video="):
                raise InvalidInputError(
                    f"capture device {spec!r}: on Windows give the camera's number from `stream-gpen camera --list` "
                    "(0 = the first) or name the DirectShow device, e.g. 'video=Integrated Camera'"
                )
            return "device", spec, "dshow", {}
        raise InvalidInputError(f"capture devices are not supported on {sys.platform!r}")
    return "file", ffmpeg_local(spec), None, {}


def names_a_device(spec: str) -> bool:
    """Whether the string ``spec`` names a capture device (see :func:`_classify`): its number,
    /dev/videoN, another name of a V4L2 device, or a DirectShow ``video=NAME``."""
    return is_device_number(spec) or spec.startswith(("/dev/video", "video=")) or _is_v4l2_node(spec)


def live_by_name(spec: str) -> bool:
    """Whether the string ``spec`` names a source that is live by itself, judged from its name
    alone as a source opened with ``live=None`` judges it: a capture device, or a URL of a scheme
    that carries live streams only (rtsp, rtmp, srt, udp...). Not http(s)/hls URLs (usually files
    on a server: the open says) nor ``lavfi:`` graphs (read live or not as the caller asks)."""
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    return scheme in _LIVE_ONLY_SCHEMES if scheme else names_a_device(spec)


#: the character devices' major number of Video4Linux (Linux's Documentation/admin-guide/devices.txt)
V4L2_MAJOR = 81


def _is_v4l2_node(spec: str) -> bool:
    """Whether ``spec`` is a Linux V4L2 device by another name than /dev/videoN: udev's stable
    links (``/dev/v4l/by-id/usb-...-video-index0``, ``/dev/v4l/by-path/...``), which name the same
    camera whatever order it was plugged in; read as a plain file, they said "cannot open"."""
    if not (sys.platform.startswith("linux") and spec.startswith("/dev/")):
        return False
    try:
        st = os.stat(spec)  # (the link followed)
    except (OSError, ValueError):
        return False
    return stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == V4L2_MAJOR


def _listed_devices(fmt: str, target: str) -> list[str]:
    """The lines of FFmpeg's device list for the capture demuxer ``fmt`` (its ``list_devices``
    option): the demuxer only logs the list (at INFO) and then fails the open, so the log is
    captured."""
    import av.logging

    from stream_gpen.io._meta import _log_lock

    with _log_lock:  # the log level is process-wide (see _sink._ffmpeg_errors)
        old, skip = av.logging.get_level(), av.logging.get_skip_repeated()
        av.logging.set_level(av.logging.INFO)
        av.logging.set_skip_repeated(False)  # two cameras of one model log the same line twice
        try:
            with av.logging.Capture(local=True) as logs:
                try:
                    av.open(target, "r", format=fmt, options={"list_devices": "true"}).close()
                except (av.error.FFmpegError, OSError):  # the listing ends the open
                    pass
                except ValueError as e:  # "no container format 'dshow'": not in this FFmpeg build
                    raise _no_camera_input(fmt, e) from e
        finally:
            av.logging.set_skip_repeated(skip)
            av.logging.set_level(old)
    # one line may come in several messages (dshow logs a name, then its media types)
    return "".join(str(m[2]) for m in logs).splitlines()


def _no_camera_input(fmt: str, e: ValueError) -> InvalidInputError:
    return InvalidInputError(
        f"this FFmpeg (the one PyAV {av.__version__} brings) cannot open cameras: it has no '{fmt}' input ({e})",
        hint="install a PyAV build whose FFmpeg has it; or give a lavfi:, file or URL source")


def _listed_by_section(fmt: str, target: str, family: str):
    """``(line, under the video devices' heading)`` of FFmpeg's device list for ``fmt``; the
    headings themselves (``"<family> video devices"``, ``"... audio devices"``) left out."""
    video = False
    for line in _listed_devices(fmt, target):
        if f"{family} video devices" in line:
            video = True
        elif f"{family} audio devices" in line:
            video = False
        else:
            yield line, video


def avfoundation_cameras() -> list[tuple[str, str]]:
    """``(index, name)`` of the macOS video capture devices, as AVFoundation numbers them
    (``[0] FaceTime HD Camera``; screens come after the cameras)."""
    import re

    return [(m[1], m[2]) for line, video in _listed_by_section("avfoundation", "", "AVFoundation")
            if video and (m := re.match(r"\s*\[(\d+)\]\s+(.+?)\s*$", line))]


def dshow_cameras() -> list[str]:
    """The names of the Windows DirectShow video capture devices, in DirectShow's order
    (FFmpeg logs ``"Integrated Camera" (video)``; an older FFmpeg lists the names under a
    "DirectShow video devices" heading, without the types)."""
    import re

    out = []
    for line, video in _listed_by_section("dshow", "dummy", "DirectShow"):
        m = re.match(r'\s*"(.+)"\s*(?:\(([^)]*)\))?\s*$', line)
        if m and ((m[2] is not None and "video" in m[2]) or (m[2] is None and video)):
            out.append(m[1])
    return out


def _dshow_camera(n: int) -> tuple[str, str, dict]:
    """``(target, format, options)`` of the ``n``-th DirectShow camera (0 = the first), so that an
    index means the same camera on every system. DirectShow itself opens cameras by name only;
    a second camera of the same name is picked with its ``video_device_number``."""
    names = dshow_cameras()
    if not names:
        raise InvalidInputError(
            f"capture device {str(n)!r}: DirectShow lists no camera on this computer",
            hint="check that the camera is connected, enabled and not blocked in Settings > Privacy > Camera; "
                 "or name the DirectShow device, e.g. 'video=Integrated Camera'")
    if n >= len(names):
        listed = ", ".join(f"{i} {name}" for i, name in enumerate(names))
        raise InvalidInputError(f"capture device {str(n)!r}: there are only {len(names)} cameras here ({listed})",
                                hint="list the capture devices with `stream-gpen camera --list`")
    name = names[n]
    same = names[:n].count(name)
    return f"video={name}", "dshow", ({"video_device_number": str(same)} if same else {})


#: Frame rates asked of an AVFoundation camera, in turn (``None``: FFmpeg's own default, ntsc).
#: FFmpeg's default alone, 29.97 fps, is refused by a camera whose fastest mode is exactly 30
#: fps (MacBook FaceTime cameras): AVFoundation takes only a rate within 0.01 of a mode's
#: maximum, and FFmpeg does not fall back. The pixel format stays FFmpeg's choice.
AVFOUNDATION_RATES = ("30", "30000/1001", "25", "15", "60", None)


def _open_device(target: str, fmt: str, kwargs: dict):
    """``av.open`` of a capture device with the demuxer ``fmt``; an error carries FFmpeg's logged
    lines as ``ffmpeg_log``: the exception says only "Input/output error" or "No such device",
    the log why (dshow: "Could not run graph (sometimes caused by a device already in use by
    other application)"; v4l2: "Not a video capture device."; avfoundation: "Video device not
    found")."""
    from stream_gpen.io._sink import _ffmpeg_errors

    with _ffmpeg_errors() as lines:
        try:
            return av.open(target, "r", **kwargs)
        except (av.error.FFmpegError, OSError) as e:  # (ArgumentError, a ValueError too, included)
            err = e
        except ValueError as e:  # "no container format 'dshow'": not in this build
            raise _no_camera_input(fmt, e) from e
    err.ffmpeg_log = [ln.strip() for ln in lines if ln.strip()]
    raise err


def _open_avfoundation(target: str, kwargs: dict):
    """``av.open`` of a macOS camera at the first of :data:`AVFOUNDATION_RATES` it accepts. An
    open that fails for another reason (FFmpeg's log names it: "Video device not found") is not
    tried again. When every rate is refused, the last error carries ``rates_tried``."""
    tried = []
    given = (kwargs.get("options") or {}).get("framerate")  # (a CaptureMode's: that rate only)
    for rate in (given,) if given else AVFOUNDATION_RATES:
        options = dict(kwargs.get("options") or {})
        if rate is not None:
            options["framerate"] = rate
        try:
            return _open_device(target, "avfoundation", {**kwargs, "options": options})
        except (av.error.FFmpegError, OSError) as e:
            err = e
        if err.ffmpeg_log and not any("framerate" in ln.lower() for ln in err.ffmpeg_log):
            raise err
        tried.append(rate)
    err.rates_tried = tried
    raise err


#: which field FFmpeg's field orders show first ("tb": top coded first, bottom shown first)
_SHOWN_FIRST = {"tt": "t", "bb": "b", "tb": "b", "bt": "t"}


def _data_codec(stream) -> str | None:
    """The codec of a stream PyAV gives no codec context (a data track): FFmpeg's descriptor name
    (MISB KLV telemetry in MPEG-TS is ``klv``: read as "unknown codec", it was dropped from every
    output), or ``None`` for ``bin_data``, FFmpeg's name for bytes of no known format (GoPro's gpmd
    is told by its demuxer, see :func:`stream_gpen.io._sink.aux_codec`)."""
    name = getattr(stream, "name", None)
    return None if name in (None, "bin_data") else name


def _shown_field_first(frame) -> str | None:
    """``"t"`` or ``"b"``: which field an interlaced decoded ``frame`` is flagged to show first
    (PyAV has no accessor for the flag: FFmpeg's ``fieldorder=tff`` filter moves a bottom-first
    picture down a line and passes a top-first one through), or None where that cannot tell (a
    hardware frame, a picture that looks the same a line down: a black lead-in)."""
    if frame.format.name == "cuda" or len(frame.planes) < 3:  # (planar YUV: a packed one's rows are not lines)
        return None
    try:
        graph = av.filter.Graph()
        src = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                               time_base=Fraction(1, 25))
        order = graph.add("fieldorder", "tff")
        same = graph.add("format", frame.format.name)  # (else the graph picks a packed format of its own)
        src.link_to(order)
        order.link_to(same)
        same.link_to(graph.add("buffersink"))
        graph.configure()
        graph.push(frame)
        out = graph.pull()
        a, b = plane_arrays(frame)[0], plane_arrays(out)[0]
    except Exception:  # noqa: BLE001 - a format the filter does not take: the stream's word stands
        return None
    if not np.array_equal(a, b):
        return "b"
    return None if np.array_equal(a[2:], a[:-2]) else "t"


def _has_alpha(stream, sw_format: str) -> bool:
    """The video carries transparency: an alpha plane in the decoded format, or VP8/VP9 alpha in a
    WebM (its own side stream, ``alpha_mode=1``, which FFmpeg's native decoders skip)."""
    try:
        if any(c.is_alpha for c in av.VideoFormat(sw_format).components):
            return True
    except (ValueError, TypeError):
        pass
    return _alpha_mode(stream)


def _alpha_mode(stream) -> bool:
    """The stream's ``alpha_mode`` tag is 1, whatever its case (FFmpeg's own dictionary lookups
    ignore case; a tag copied by a tool that also writes the AlphaMode element reads back as
    ``ALPHA_MODE``, and over the element's own key)."""
    md = getattr(stream, "metadata", None) or {}
    return any(k.lower() == "alpha_mode" and str(v).strip() == "1" for k, v in md.items())


def display_matrix(frame) -> tuple[int, ...] | None:
    """The frame's display matrix (FFmpeg's ``AV_FRAME_DATA_DISPLAYMATRIX``: 9 int32, a/b/c/d/x/y
    in 16.16, u/v/w in 2.30), or ``None`` when it has none."""
    for sd in frame_side_data(frame):
        if "DISPLAYMATRIX" in str(sd.type):
            raw = bytes(sd)
            if len(raw) >= 36:
                return struct.unpack("=9i", raw[:36])
    return None


def display_orientation(rotation: float | None, matrix) -> tuple[int, bool]:
    """How players show a picture whose display matrix is ``matrix`` (``rotation`` is PyAV's
    ``frame.rotation``, the matrix's counter-clockwise angle): ``(degrees, mirrored)`` meaning
    *mirror left-right first (when mirrored), then turn counter-clockwise by degrees*.

    A mirror is not a rotation: a pure h-flip matrix reads as 180 degrees, so the angle alone
    would turn a selfie clip upside down. This follows FFmpeg's own autorotation (``ffmpeg``'s
    ``hflip``/``vflip``/``transpose`` choice from the matrix), which players agree with; an angle
    that is not a quarter turn is rounded down to one, as before."""
    r = float(rotation or 0.0)
    if r != r:  # NaN: a degenerate matrix (zero scale)
        return 0, False
    ccw = int(round(r)) % 360
    if matrix is None:
        return (ccw // 90) * 90 % 360, False
    m = matrix
    theta = (-int(round(r))) % 360  # clockwise, as FFmpeg's get_rotation
    if abs(theta - 90) < 1:
        return (90, True) if m[3] > 0 else (270, False)      # transpose=cclock_flip / clock
    if abs(theta - 270) < 1:
        return (270, True) if m[3] < 0 else (90, False)      # transpose=clock_flip / cclock
    if abs(theta - 180) < 1:
        h, v = m[0] < 0, m[4] < 0
        if h and v or not (h or v):
            return 180, False
        return (0, True) if h else (180, True)               # hflip / vflip (= mirror + half turn)
    if theta < 1 or theta > 359:
        return (180, True) if m[4] < 0 else (0, False)       # vflip
    return (ccw // 90) * 90 % 360, False


def orient(t: torch.Tensor, k: int, mirror: bool) -> torch.Tensor:
    """``t`` ([H, W, ...]) mirrored left-right when ``mirror``, then turned ``k`` quarter turns
    counter-clockwise: the stored picture as its display matrix shows it."""
    if mirror:
        t = torch.flip(t, (1,))
    return torch.rot90(t, k, (0, 1)) if k else t


#: how many frames an alpha-bearing RGB-family stream is looked at before it is called opaque
_ALPHA_PEEK = 8


def _declared_alpha(sw_format: str) -> bool:
    """An alpha plane that only exists because the stream signals one (ProRes 4444 / HEVC / FFV1
    with transparency: planar yuva*/gbrap*). Packed RGBA-family formats are what GIF, PNG, APNG,
    WebP and QuickTime Animation decode to whether or not a single pixel is transparent."""
    return sw_format.startswith(("yuva", "gbrap"))


def _transparent(frame) -> bool:
    """Any pixel of this decoded frame less than fully opaque."""
    if frame.format.name == "cuda" or not any(c.is_alpha for c in frame.format.components):
        return False
    if bits_per_component(frame.format.name) > 8:
        return bool((frame.to_ndarray(format="rgba64le")[..., 3] < 65535).any())
    return bool((frame.to_ndarray(format="rgba")[..., 3] < 255).any())


def _vpx_alpha(stream) -> bool:
    """A WebM/Matroska VP8/VP9 stream with an alpha side stream (``alpha_mode=1``)."""
    return stream.codec_context.name in ("vp8", "vp9") and _alpha_mode(stream)


@functools.lru_cache(maxsize=None)
def protocol_missing(scheme: str) -> bool:
    """Whether this FFmpeg (PyAV's wheel) has no ``scheme://`` protocol at all (its SRT, SFTP and
    SMB are left out): asked of FFmpeg with an empty address, which fails at once either way."""
    try:
        av.open(f"{scheme}://", timeout=0.05).close()
    except av.error.ProtocolNotFoundError:
        return True
    except Exception:  # noqa: BLE001 - any other failure: the protocol is there, the address is not
        return False
    return False


def _check_file(path: str) -> None:
    p = Path(path)
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", path)
    if not p.exists() and m and len(m.group(1)) > 1:
        scheme = m.group(1).lower()
        # (an ftp:// input was "not found: check the path")
        why = ("give a local file by its path, not as a file:// URL" if scheme == "file"
               else f"this FFmpeg (PyAV's) has no {scheme}:// protocol" if protocol_missing(scheme)
               else f"{scheme}:// inputs are not read here")
        raise InvalidInputError(f"cannot read {path}: {why}",
                                hint=f"it reads files, devices and {', '.join(s + '://' for s in URL_SCHEMES)} URLs; "
                                     "download the file first")
    if not p.exists():
        raise MediaNotFoundError(f"input not found: {str(path)!r}", hint=PATH_HINT)
    if p.is_file() and p.stat().st_size == 0:
        raise EmptyMediaError(f"input is empty (0 bytes): {path}", hint="the file was probably not fully written or copied")
    if p.is_file():
        # a raw DNG (its IFD0 is a small preview: FFmpeg read it as a TIFF still, "rename it to .tif")
        # or a JPEG XL ("no decoder for the video codec"): said what it is and how to convert it
        from stream_gpen.io._unread import unread_error

        err = unread_error(path)
        if err is not None:
            raise err


def _is_hls(container) -> bool:
    return "hls" in (container.format.name or "").split(",")


def _hls_ended(url: str) -> bool:
    """The HLS playlist at ``url`` (or, for a master playlist, one of its first variants) has
    ``#EXT-X-ENDLIST``: a live event that is over. False when it cannot be told (not http(s), the
    server gone): a drop, reconnected to."""
    import http.client
    import urllib.parse
    import urllib.request

    def text(u: str) -> str:
        with urllib.request.build_opener().open(u, timeout=5) as r:  # (fresh: today's proxies)
            return r.read(1 << 20).decode("utf-8", "replace")

    if not url.lower().startswith(("http://", "https://")):
        return False
    try:
        body = text(url)
        if "#EXT-X-ENDLIST" in body:
            return True
        if "#EXT-X-STREAM-INF" not in body:
            return False
        lines = [ln.strip() for ln in body.splitlines()]
        variants = [lines[i + 1] for i, ln in enumerate(lines[:-1]) if ln.startswith("#EXT-X-STREAM-INF")]
        return any("#EXT-X-ENDLIST" in text(urllib.parse.urljoin(url, v)) for v in variants[:3] if v)
    except (OSError, ValueError, http.client.HTTPException):
        # (HTTPException: InvalidURL, of a proxy setting or of the URL's user:password@, which it
        # quoted; it ended the run as an internal error, the password in its message)
        return False


def _is_mov(container) -> bool:
    return "mov" in container.format.name.split(",")


def _raise_if_stopped(err: BaseException) -> None:
    """A stop signal (Ctrl-C, SIGTERM) came while the input was opening (a FIFO or a device waiting
    for data): the open's failure is that stop, raised as the command line's handler raises it. Its
    own KeyboardInterrupt is lost there (PyAV's interrupt callback takes it and the open fails with
    EINTR or ExitError), and the failure read as an input FFmpeg cannot open (exit 2, nothing said
    of the stop) where a stop while opening is an interrupted start (exit 130/143)."""
    from stream_gpen._finishing import stop_asked, stop_signal

    if stop_asked():
        what = stop_signal()
        raise (KeyboardInterrupt() if what in (None, "Ctrl-C") else KeyboardInterrupt(f"{what} received")) from err


def _index_at_end_in_a_pipe(container, path: str) -> bool:
    """``container`` is an mp4/mov read from a pipe, FIFO or character device (``cat a.mp4 |
    stream-gpen enhance /dev/stdin``). Such a file whose index (moov) follows its media data
    opens (FFmpeg reads on to the index) but gives no packet: the data lies behind, and a pipe
    cannot seek back. Its first read failing is that, not damage."""
    return _is_mov(container) and _is_pipe(path)


def _is_pipe(path: str) -> bool:
    """``path`` is a pipe, FIFO or character device (``/dev/stdin`` of ``cat a.ts | ...``, a
    ``mkfifo``): its bytes come as its writer gives them, not as fast as a disk reads."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _served_without_ranges(url: str, options: dict, timeout_s: float | None) -> bool:
    """The http(s) server of ``url`` answers a byte-range request with the whole file (200, not
    206), as ``python -m http.server`` does: FFmpeg cannot seek in what it serves, so an mp4/mov
    whose index (moov) is at the end opens but gives no packet, exactly as from a pipe (see
    _index_at_end_in_a_pipe), and reconnecting cannot help. Asked only to explain a failed first
    read; a question that itself fails is "don't know" (False: the reconnect loop goes on)."""
    import http.client
    import urllib.request

    if not url.lower().startswith(("http://", "https://")):
        return False
    headers = {"Range": "bytes=0-0"}
    for line in str(options.get("headers", "")).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            headers[key.strip()] = value.strip()
    if options.get("user_agent"):
        headers["User-Agent"] = str(options["user_agent"])
    try:
        opener = urllib.request.build_opener()  # (not urlopen's, built once a process with the proxies of then)
        with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout_s or 10) as r:
            return r.status == 200 and not r.headers.get("Content-Range")
    except (OSError, ValueError, http.client.HTTPException):  # (urllib's errors are OSErrors; see _hls_ended)
        return False


def _ffmpeg_reason(e: BaseException) -> str:
    """An FFmpeg error in its own words (PyAV's ``strerror``), without the ``[Errno N]`` tag."""
    return getattr(e, "strerror", None) or str(e)


def _lavfi_detail(graph: str) -> str | None:
    """FFmpeg's logged reason a lavfi graph does not open ("No such filter: 'x'", "Unable to parse
    option value ..."): the exception alone says only "Invalid argument". The graph is opened
    again with FFmpeg's error log captured (cheap: nothing is decoded)."""
    from stream_gpen.io._sink import _ffmpeg_errors

    try:
        with _ffmpeg_errors() as lines:
            try:
                av.open(graph, "r", format="lavfi").close()
            except (av.error.FFmpegError, OSError):
                pass
    except Exception:  # only an explanation: never let it hide the real error
        return None
    # "Error processing filtergraph: <the exception's own words>" adds nothing
    lines = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("Error processing filtergraph")]
    return "; ".join(dict.fromkeys(lines[:2])) or None


def _unknown_host(url: str) -> bool:
    """The URL's host name does not resolve (FFmpeg reports that only as an I/O error). A
    resolver that cannot be reached (no network: ``EAI_AGAIN``) is not "unknown"."""
    import socket
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as e:
        return e.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
    except OSError:
        return False
    return False



def _step(frame) -> Fraction | None:
    """How long ``frame`` lasts (seconds), from its ``duration`` in its time base; None unknown."""
    d, tb = getattr(frame, "duration", None), getattr(frame, "time_base", None)
    return d * Fraction(tb) if d and tb else None


def _shorter(a: Fraction | None, b: Fraction | None) -> Fraction | None:
    return b if a is None else a if b is None else min(a, b)


def check_window(start, duration) -> tuple[float, float | None]:
    """``start`` / ``duration`` (seconds) as floats, or :class:`InvalidInputError` naming the
    keyword. One rule for a video's source and for ``enhance_file``'s check before any work (a
    folder's photos were restored and then each video refused, "skipped", the run returning
    normally). Numbers only, numpy's too; ``"1:30"`` is the command line's spelling, parsed
    there (``--start 1:30``): here it is refused, not guessed at."""
    def bad(name: str, rule: str, value) -> InvalidInputError:
        text = f" (give seconds as a number, {name}=90.5, not text such as {name}='1:30.5')" if isinstance(value, (str, bytes)) else ""
        return InvalidInputError(f"{name} must be {rule}, got {value!r}{text}")

    # (numpy numbers too: an app's np.float32 was refused as "not a number of seconds")
    if isinstance(start, (bool, np.bool_)) or not isinstance(start, numbers.Real) or not 0 <= start < float("inf"):
        raise bad("start", "a number of seconds >= 0", start)
    if duration is not None and (isinstance(duration, (bool, np.bool_)) or not isinstance(duration, numbers.Real)
                                 or not 0 < duration < float("inf")):
        raise bad("duration", "None or a number of seconds > 0", duration)
    return float(start), None if duration is None else float(duration)


class VideoSource:
    """A decoded video stream. Use as a context manager; iterate for :class:`Frame` objects.

    Options (keyword-only, validated here):

    * ``device``: where ring slots live. CUDA keeps frames on the GPU (one H2D copy per frame, or
      none with NVDEC); CPU is for tests and small jobs.
    * ``live``: drop stale frames instead of blocking the decoder when the consumer falls behind
      (latency stays one ring deep; drops are counted in ``stats``), and treat the end of a
      network stream as a drop to reconnect. ``None`` = on for rtsp/rtmp/srt/udp URLs, devices
      and lavfi, off for files and http(s) (where every frame must be processed). A live lavfi
      graph or file is paced at its own rate (see ``pace``).
    * ``decode``: ``"nvdec"`` decodes on the GPU (less CPU, no upload), ``"cpu"`` uses FFmpeg's
      threaded software decoders, ``"auto"`` tries NVDEC when ``device`` is CUDA and falls back to
      CPU visibly (logged, listed in ``fallbacks``).
    * ``ring_size``: slots in the frame ring; more absorb bursts (memory = ring_size * H * W * 3).
    * ``count_frames``: demux the whole file once up front to fill ``metadata.frame_count``
      (exact, costs one extra read of the file); otherwise only the header's hint is given.
    * ``reconnect``: how many times a network source is reopened (exponential back-off from
      ``reconnect_delay_s``) after it drops; more rides out longer outages, fewer fail faster.
      A reopened live stream's frames and audio run on after the last frame given out, by the
      outage's wall-clock length (its own clock restarts); a file read offline over http(s)
      resumes after its last frame. A "live" http(s) URL that is a file ends at its end instead
      of being replayed: its server gave it with a length (``Content-Length``) and it was read
      to the end, or it declares a duration and reached it. A reopened session that only
      replays what the one before gave (the same first frame time) does not renew the
      ``reconnect`` budget until it runs past where that one ended, and one that ends where that
      one ended is a file served again: the source ends there. A source found to be a file by
      running ahead of its clock (see ``pace``) resumes after its last frame given out when
      reopened, like a file read offline: its replay is not given out again.
    * ``autorotate``: apply the display-matrix rotation to the pixels (frames upright, as players
      show them; ``metadata.rotation`` becomes 0, the applied angle is in ``metadata.extra``).
      Face detectors need upright faces, so phone videos want this; it costs one extra copy per
      frame and the output is then stored upright (it displays the same). A mirrored matrix
      (selfie cameras, ``-display_hflip``) is applied as players do: mirror left-right, then turn
      (``metadata.extra["applied_mirror"]``). Off: pixels as stored, rotation kept as metadata
      (a mirror as ``extra["mirror"]`` and the raw ``extra["display_matrix"]``) and written back
      by the sink.
    * ``timeout_s``: open/read timeout for network and device inputs, so a dead peer cannot hang.
    * ``capture``: a capture device's :class:`CaptureMode` (size, frame rate, input format, e.g.
      MJPEG for a webcam's full rate); ``None``: the device's own. Refused for other sources.
    * ``deinterlace``: ``"auto"`` (default) runs interlaced video (a field order in the stream, or
      frames flagged interlaced: VHS/DV/broadcast captures) through FFmpeg's ``bwdif``, one
      progressive frame per input frame, same timestamps, so the detector and GPEN see whole faces
      instead of combed fields; frames flagged progressive pass untouched. It costs a filter pass
      per frame and one frame of delay. ``"off"``: pixels as decoded (``metadata.interlaced``
      tells the field order). NVDEC frames are not deinterlaced (reported in ``fallbacks``).
    * ``untrusted``: the file comes from someone else (the server's uploads): it is read only with
      the media demuxers in ``UNTRUSTED_DEMUXERS`` and the ``file`` protocol, so a playlist or
      concat script disguised as a video cannot make FFmpeg read other files or URLs.
    * ``max_pixels``: refuse video whose frames have more pixels than this (the server passes its
      ``--max-pixels``: a 16k x 16k upload would otherwise fill memory with a ring of 800 MB frames),
      on the header's size before any frame is decoded, then on each frame's as it is decoded;
      a >8-bit source whose frames have more than a third of it is decoded at 8 bits (its 16-bit
      copy triples the memory per frame), with a note in ``fallbacks``.
    * ``high_bit_depth``: for a source with more than 8 bits per component (HEVC Main10 from a
      phone, ProRes, 10-bit AV1/VP9, HDR PQ/HLG), frames also carry ``frame.hi``, the picture as
      ``uint16`` rgb48 at the source's precision (``frame.image`` is derived from it), and file
      sinks encode 10/12-bit from it: no banding in skies and walls, everything outside the faces
      kept at full precision. It costs three times the ring memory (``ring_size * H * W * 9``)
      and a 16-bit colour conversion per frame. ``False``: 8-bit only, as for 8-bit sources
      (smaller, faster; the output is 8-bit). 8-bit sources are unaffected either way
      (``frame.hi`` is ``None``). ``self.high_bit_depth`` says whether frames carry ``hi``.
    * ``start`` / ``duration`` (seconds): only the frames from ``start`` (on the file's timeline,
      as players show it and FFmpeg's ``-ss`` counts) for ``duration`` seconds from the first
      frame kept (``None``: to the end; shorter than a frame: that one frame), and the
      audio/subtitle packets of that window. A video
      that starts before 0 (a wrapped MPEG-TS clock) counts from its first frame instead, and is
      read from the top rather than seeked (FFmpeg cannot seek across the wrap). The file is seeked to the keyframe before ``start`` (files and http(s) only, not
      live sources); frames keep their pts and the sink writes them from 0
      (``trim_start`` > 0 tells it to). Try settings on a short part of a long video this way.
      A ``start`` inside a pause of the video (no frame for longer than a frame interval after
      it: screen recordings, a still held at the end) opens on the frame on screen then, moved to
      ``start``. Audio the file stores after the window's last frame (phones' chunked
      interleave) is still read, up to ``_AUX_TAIL_S`` of the file past the window's end.
    * ``pace``: hand frames out at their own timestamps against the wall clock, like FFmpeg's
      ``-re``: the decode thread waits until a frame's time (counted from the first frame) has
      come. A lavfi graph or a file read as ``live`` decodes far faster than real time; unpaced,
      the live ring would keep only the newest of thousands of frames a second and a recording of
      it would be a gappy slideshow. Paced, the ring drops frames only when processing is really
      slower than the source's rate. ``None`` (default): on for live lavfi graphs and files, and
      for live http(s) URLs that serve a file (a ``Content-Length`` or a declared duration: they
      download as fast as the network goes; without either, from the moment its frames run more
      than ``_AHEAD_S`` ahead of the wall clock since the open, which no live stream can: the
      frames before that came in a burst), off for devices and network streams (real time by
      themselves: waiting would only add latency), for a live pipe, FIFO or character device
      until its frames run ``_AHEAD_S`` ahead of the clock in the same way (a whole file written
      into it; a live producer's frames come as it writes them), and for every offline read (as fast as it
      decodes). ``True`` paces any source (a file read offline then takes its own duration, every
      frame kept); ``False`` never (a live lavfi graph then drops most frames). ``self.paced``
      says which applies.
    """

    def __init__(
        self,
        spec,
        *,
        device: torch.device | str = "cpu",
        live: bool | None = None,
        decode: DecodeMode = "auto",
        ring_size: int = 8,
        count_frames: bool = False,
        reconnect: int = 5,
        reconnect_delay_s: float = 0.5,
        timeout_s: float = 10.0,
        decoder_threads: int = 0,
        autorotate: bool = False,
        deinterlace: str = "auto",
        untrusted: bool = False,
        max_pixels: int | None = None,
        high_bit_depth: bool = True,
        start: float = 0.0,
        duration: float | None = None,
        pace: bool | None = None,
        capture: CaptureMode | None = None,
    ) -> None:
        if capture is not None and not isinstance(capture, CaptureMode):
            raise InvalidInputError(f"capture must be a CaptureMode or None, got {type(capture).__name__}")
        if pace is not None and not isinstance(pace, bool):
            raise InvalidInputError(f"pace must be one of (None, True, False), got {pace!r}")
        start, duration = check_window(start, duration)
        if not isinstance(high_bit_depth, bool):
            raise InvalidInputError(f"high_bit_depth must be True or False, got {high_bit_depth!r}")
        if deinterlace not in ("auto", "off"):
            raise InvalidInputError(f"deinterlace must be one of ('auto', 'off'), got {deinterlace!r}")
        if decode not in _DECODE_MODES:
            raise InvalidInputError(f"decode={decode!r} is not one of {_DECODE_MODES}")
        if ring_size < 2:
            raise InvalidInputError(f"ring_size={ring_size} must be >= 2")
        if reconnect < 0:
            raise InvalidInputError(f"reconnect={reconnect} must be >= 0")
        self.spec = str(spec)
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            from stream_gpen.errors import DeviceError

            raise DeviceError(f"device={str(device)!r} requested but torch sees no CUDA device",
                              hint="use device='cpu', or install a CUDA build of torch")
        self.kind, self._target, self._format, self._options = _classify(spec)
        if untrusted:
            if self.kind != "file":
                raise InvalidInputError(f"an untrusted source must be a local file, got {self.kind} {self.spec!r}")
            # Only media demuxers, and only the file itself: no playlist/concat/URL indirection.
            self._options.update(format_whitelist=",".join(UNTRUSTED_DEMUXERS), protocol_whitelist="file")
        if capture is not None:
            if self.kind != "device":
                raise capture.refusal(self.spec, self.kind)
            self._options.update(capture.options(self._format, self.spec))
        # http(s)/hls are usually files on a server: read every frame unless told the stream is live
        self.live = live if live is not None else (
            self.kind in ("device", "lavfi") or (self.kind == "url" and not self.spec.lower().startswith(("http", "hls")))
        )
        #: the file is a pipe, FIFO or character device (``camera /dev/stdin``, a ``mkfifo``)
        self._pipe = self.kind == "file" and _is_pipe(self._target)
        #: frames are handed out at their own timestamps (see ``pace``)
        self.paced = paced_by_default(self.kind, self.live, pipe=self._pipe) if pace is None else pace
        if self._pipe and self.live:
            # as for a live URL (see _classify): the ~20 frames FFmpeg reads at the open to guess
            # the rate came as one burst, and a live producer's frames that much late for good
            self._options.setdefault("fpsprobesize", "0")
        self._joins: _Joins | None = None  # the reading session's (see _decoded)
        self._ahead = False  # a live http(s) source or pipe that ran ahead: a file (see _check_ahead)
        self._max_pixels: int | None = None  # (set at the open, see below)
        self._pacer: _Pacer | None = None
        if start and self.live:
            raise InvalidInputError(f"start={start:g} s needs a file or an http(s) video to seek in; "
                                    f"{self.spec!r} is a live source (duration= still limits it)")
        #: seconds cut off the front (0: none); the sink then writes the output from 0
        self.trim_start = float(start)
        self.trim_duration = float(duration) if duration is not None else None
        self._window: tuple[float, float | None] | None = None  # absolute (start, end) seconds
        self._anchor_end = False
        self._seeked = False  # the window's seek succeeded (see _set_window)
        self._cut_before_first: tuple[float, float] | None = None  # (see _check_truncated)
        #: a part of a file whose clock jumps back (see _set_window): the end (s, on the timeline
        #: its joins make) of what was read from its top; None elsewhere
        self._joined_end: float | None = None
        self._decode_req = decode
        self._reconnect = reconnect
        self._reconnect_delay = reconnect_delay_s
        self._timeout = timeout_s
        self._threads = decoder_threads
        self._rot_k = 0
        self._mirror = False  # display matrix mirrors left-right (applied before the turn)
        self.fallbacks: list[str] = []
        self._fitted: set[tuple[int, int, Fraction]] = set()  # mid-stream sizes and SARs already reported
        self.stats = {"decoded": 0, "corrupt_packets": 0, "corrupt_frames": 0, "dropped": 0, "reconnects": 0}
        #: seconds spent reading frames: demuxing and decoding (a live source's wait for its next
        #: packet included), filtering and converting each into its ring slot, summed; not the
        #: waits for a free slot (the consumer behind), for a paced frame's time, nor a
        #: reconnect's back-off. The run summary's ``decode`` stage.
        self.decode_seconds = 0.0
        self.aux = AuxChannel()
        #: the programs each stream belongs to, where the input has several (a DVB multiplex's
        #: channels, an HLS master's variants; see :func:`stream_programs`): the sink keeps the
        #: audio and subtitles of the restored video's program only. ``{}``: one or none. Read
        #: when the input is first opened.
        self.programs: dict[int, frozenset[int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._exit_lock = threading.Lock()
        self._thread_done = False
        self._left_behind = False  # close() returned without waiting for the decode thread
        self._started = False
        self._closed = False

        self._size_at_open: int | None = None  # a local file's size, to tell one still being written
        # ... and its identity, and some of its bytes, to tell one written over by another process
        # meanwhile (see _check_replaced)
        self._stat_at_open: os.stat_result | None = None
        self._sample_at_open: tuple[int, bytes] | None = None
        if self.kind == "file":
            _check_file(self._target)
            try:
                st = os.stat(self._target)
                self._size_at_open = st.st_size
                if stat.S_ISREG(st.st_mode):  # (a FIFO's bytes read here would be the decoder's lost)
                    self._stat_at_open = st
                    self._sample_at_open = _sample(self._target, st.st_size // 2)
            except OSError:
                pass
        self._use_nvdec = self._want_nvdec()
        self._container = self._open_container(self._use_nvdec)
        if live is None and self.kind == "url" and "mpjpeg" in (self._container.format.name or "").split(","):
            # multipart MJPEG over http is an IP camera's feed, never a file: read live (timed by its
            # frames' arrival, see _by_arrival), as rtsp:// is, whether or not the command said so
            self.live = True
            log.info("%s is an MJPEG camera feed: read live", self.spec)
        self._alpha_decoder = None
        if _vpx_alpha(self._vstream):
            # VP8/VP9 alpha (WebM's side stream): only libvpx's decoders read it, on the CPU
            if self._use_nvdec:
                self._fallback("VP8/VP9 video with alpha is decoded on the CPU (libvpx) to keep its transparency")
                self._container.close()
                self._use_nvdec = False
                self._container = self._open_container(False)
            name = "libvpx-vp9" if self._vstream.codec_context.name == "vp9" else "libvpx"
            try:
                self._alpha_decoder = av.CodecContext.create(name, "r")
            except (av.error.FFmpegError, ValueError) as e:
                self._fallback(f"{name} cannot decode here ({e}): the video's transparency is not read")
        self._captions = False  # closed captions seen in a frame (_captions_noted)
        self._max_pixels = max_pixels  # (frames checked again as they come: a stream may change size)
        cc = self._vstream.codec_context
        # the header's size, before any decode: one 16000x16000 MJPEG frame (a 14 MB upload)
        # cost the server 1.5 GB to decode only to be refused (a header that says nothing, 0x0,
        # or lies is caught by the first frame's check below and each frame's in the decode loop)
        self._refuse_over_max_pixels(cc.width, cc.height)
        self._frames = self._decode_frames()
        first = self._first_frame()
        src_bits = bits_per_component(_sw_format(first))
        if high_bit_depth and src_bits > 8 and first.format.name == "cuda" and not _p01x(first):
            # NVDEC's surface layouts other than P010/P016 (none known today) would need maths we
            # have not checked: decode this >8-bit stream on the CPU instead, visibly.
            self._fallback(f"NVDEC gives {_sw_format(first)} surfaces for this {src_bits}-bit stream; "
                           "decoding on the CPU to keep its precision")
            self._container.close()
            self._use_nvdec = False
            self._container = self._open_container(False)
            self._frames = self._decode_frames()
            first = self._first_frame()
        self.metadata = self._build_metadata(first, count_frames)
        #: a live stream whose container carries no times (an IP camera's MJPEG over http, raw
        #: H.264 over tcp): FFmpeg numbers its frames at a guessed rate (25 fps: a 10 fps camera's
        #: 8 s were recorded as 3.2 s), so each frame is timed by its arrival instead (_emit)
        # (raw H.264/HEVC whose bitstream gives its rate is numbered right by FFmpeg: timed by
        # arrival, the frames its open held back came as one burst, 2 s squeezed into 0.2 s)
        self._by_arrival = bool(self.live and self.kind in ("url", "device")
                                and self._container.format.flags & _NO_TIMESTAMPS
                                and not _fraction(self._vstream.codec_context.framerate))
        self._arrival_last: int | None = None
        self._arrival0: float | None = None
        if self._by_arrival:
            log.info("%s carries no timestamps: frames are timed by their arrival", self.spec)
        if pace is None and self.live and self.kind == "url" and _is_hls(self._container):
            # live HLS comes a whole segment (2-10 s of frames) at a time, faster than real time:
            # read live, each burst kept its newest frame (1-3 of 30 a segment); paced, it plays
            self.paced = True
        if pace is None and self.live and self.kind == "url" and _served_as_file(self._target, self._container):
            # an http(s) file read as live downloads far faster than its rate: 78 fps from a
            # 25 fps clip, most of it dropped by the ring; paced, it plays like a local file
            self.paced = True
            if self._joins is not None:
                self._joins.as_file()
        #: a live http(s) URL not known to be a file is watched for frames running ahead of the
        #: wall clock (a file served without a length, see _AHEAD_S): then paced, and not replayed
        #: ... as is a live pipe or FIFO (a whole file written into it: ``cat a.mp4 > fifo``)
        self._watch_ahead = (pace is None and not self.paced and self.live
                             and (self._pipe or self.kind == "url"
                                  and self.spec.lower().startswith(("http://", "https://"))
                                  and "hls" not in (self._container.format.name or "").split(",")))
        if self._watch_ahead and self._pipe:
            log.info("%s is a pipe read live: frames handed on as they come, unpaced (paced at their own "
                     "timestamps if they run ahead of the wall clock: a whole file written into it)", self.spec)
        self._ahead_from: tuple[float, float] | None = None  # (wall clock at open, first frame's time)
        self._opened_wall = time.monotonic()
        self._refuse_over_max_pixels(self.metadata.width, self.metadata.height)
        if autorotate and (self.metadata.rotation or self.metadata.extra.get("mirror")):
            m = self.metadata
            self._rot_k = (m.rotation // 90) % 4
            self._mirror = bool(m.extra.get("mirror"))
            w, h = (m.height, m.width) if self._rot_k % 2 else (m.width, m.height)
            # A quarter turn swaps what a pixel's width and height are: the SAR inverts with it.
            sar = m.sample_aspect_ratio
            if sar and self._rot_k % 2:
                sar = 1 / sar
            extra = {k: v for k, v in m.extra.items() if k not in ("mirror", "display_matrix")}
            extra["applied_rotation"] = m.rotation
            if self._mirror:
                extra["applied_mirror"] = "horizontal"
            self.metadata = dataclasses.replace(m, width=w, height=h, rotation=0, sample_aspect_ratio=sar,
                                                extra=extra)
        #: the video carries transparency (keyed footage: ProRes 4444, PNG/QuickTime Animation in
        #: .mov, VP9 with alpha in .webm): frames then carry ``alpha`` (``[H, W]``, uint8, or
        #: uint16 on the full 16-bit scale for a >8-bit source), for sinks that can write it
        self.has_alpha = _has_alpha(self._vstream, _sw_format(first))
        #: an animated GIF decided opaque from its first frames: later frames are watched, and
        #: transparency that appears there is said to be dropped (once)
        self._watch_alpha = False
        if self.has_alpha and self._vstream.codec_context.name == "gif":
            # FFmpeg's GIF decoder gives bgra whether or not a pixel is transparent; PNG / QuickTime
            # Animation in .mov declare rgba/argb only when written with alpha: trusted as declared
            self.has_alpha = self._peek_transparency(first)
            self._watch_alpha = not self.has_alpha
        #: bits per component of the source (the metadata's pix_fmt) and whether frames carry ``hi``
        self.source_bits = src_bits
        self.high_bit_depth = bool(high_bit_depth and src_bits > 8)
        px = self.metadata.width * self.metadata.height
        if self.high_bit_depth and max_pixels is not None and 3 * px > max_pixels:
            # max_pixels budgets memory for 8-bit frames (the server's limit); a 16-bit copy
            # triples each ring slot, so big frames of a 10-bit upload are decoded at 8 bits.
            self.high_bit_depth = False
            self._fallback(f"{src_bits}-bit frames of {self.metadata.width}x{self.metadata.height} would take 3x the "
                           f"memory max_pixels={max_pixels} allows for: decoded and written at 8 bits")
        if self.high_bit_depth:
            log.info("%s: %d-bit source (%s): frames carry a 16-bit copy for the encoder",
                     self.spec, src_bits, self.metadata.pix_fmt)
        self.ring = FrameRing(ring_size, self.metadata.height, self.metadata.width, device=self.device,
                              high_bit_depth=self.high_bit_depth)
        self._pending = first
        if deinterlace == "auto" and (self.metadata.interlaced in ("tt", "bb", "tb", "bt") or first.interlaced_frame):
            self._start_deinterlace(first)

    def _peek_transparency(self, first) -> bool:
        """For a stream whose decoder always gives an alpha plane (GIF's bgra): whether any of
        its first ``_ALPHA_PEEK`` frames has a
        pixel that is not fully opaque. An opaque GIF is not keyed footage: calling it transparent
        would pick ProRes 4444 (~60x the bytes) and warn about transparency it does not have.
        The frames looked at are decoded once and kept for the decode thread."""
        seen = [first]
        transparent = _transparent(first)
        while not transparent and len(seen) < _ALPHA_PEEK:
            f = next(self._frames, None)
            if f is None:
                break
            seen.append(f)
            transparent = _transparent(f)
        if len(seen) > 1:
            self._frames = itertools.chain(seen[1:], self._frames)
        if not transparent:
            log.info("%s: %s frames, but the first %d are fully opaque: treated as opaque video",
                     self.spec, _sw_format(first), len(seen))
        return transparent

    def _start_deinterlace(self, first) -> None:
        """Put ``bwdif`` between the decoder and the ring (see ``deinterlace``)."""
        if first.format.name == "cuda":
            self._fallback("interlaced video decoded by NVDEC is not deinterlaced")
            return
        try:
            graph = av.filter.Graph()
            src = graph.add_buffer(width=first.width, height=first.height, format=first.format.name,
                                   time_base=self._vstream.time_base or Fraction(1, 1000))
            # send_frame: one output per input; parity from each frame's flags; deint=interlaced:
            # frames flagged progressive (mixed content) pass through.
            bw = graph.add("bwdif", "mode=send_frame:parity=auto:deint=interlaced")
            sink = graph.add("buffersink")
            src.link_to(bw)
            bw.link_to(sink)
            graph.configure()
        except (av.error.FFmpegError, ValueError) as e:
            self._fallback(f"interlaced video left as is: the deinterlace filter could not start ({e})")
            return
        log.info("%s: interlaced (%s): deinterlacing with bwdif", self.spec, self.metadata.interlaced)
        self.metadata = dataclasses.replace(self.metadata, interlaced="progressive",
                                            extra={**self.metadata.extra, "deinterlaced_from": self.metadata.interlaced})
        self._pending = None
        self._frames = _deinterlaced(graph, itertools.chain([first], self._frames),
                                     (first.format.name, first.width, first.height))

    # --- opening -----------------------------------------------------------------------
    def _want_nvdec(self) -> bool:
        if self._decode_req == "cpu" or (self._decode_req == "auto" and self.device.type != "cuda"):
            return False
        reason = None
        if self.device.type != "cuda":
            reason = f"decode='nvdec' needs a CUDA device, got device={str(self.device)!r}"
        elif "cuda" not in av.codec.hwaccel.hwdevices_available():
            reason = "this FFmpeg build has no CUDA hwdevice"
        if reason:
            self._fallback(f"NVDEC unavailable ({reason}); decoding on the CPU")
            return False
        return True

    def _judged_live(self) -> bool:
        """Whether the clock of what is read is judged against the wall clock (see _Joins): a live
        source that delivers in real time by itself (a device, a network stream). A file or lavfi
        graph paced as a camera keeps its own timeline, pauses of any length included, as offline."""
        return self.live and not self.paced and not self._ahead

    def _note_headless(self, head: Fraction, first: float) -> None:
        """Say that the first picture comes ``first - head`` seconds after the video's first packet:
        a recording cut (or started) mid-GOP, whose packets before its first keyframe decode to
        nothing (FFmpeg drops them too). Not said for a decoder's usual delay (a frame or two)."""
        step = float(self._frame_step() or Fraction(1, 25))
        lost = first - float(head)
        if lost > max(2.5 * step, 0.1):
            self._fallback(f"{self.spec}: the video's first {lost:.2f} s cannot be decoded (the recording starts "
                           f"mid-GOP, before its first keyframe); the output begins with the first picture, at "
                           f"{first:.3f} s of the input")

    def _fallback(self, msg: str) -> None:
        if msg not in self.fallbacks:
            self.fallbacks.append(msg)
            log.warning(msg)

    def _refuse_over_max_pixels(self, w: int, h: int) -> None:
        """Close the input and raise :class:`PayloadTooLargeError` if ``w`` x ``h`` frames are over
        ``max_pixels`` (checked on the header's size before any decode, then on the first frame's)."""
        if self._max_pixels is not None and w * h > self._max_pixels:
            from stream_gpen.errors import PayloadTooLargeError

            self._container.close()
            raise PayloadTooLargeError(f"video frames are {w}x{h} = {w * h} pixels, over the limit of {self._max_pixels}")

    def _open_container(self, nvdec: bool, *, reopen: bool = False):
        """Open the input (``reopen``: again, after a live stream dropped). A first open that
        fails for good (no such device, a bad lavfi graph, HTTP 4xx, an unknown host, a refused
        connection) is the input's fault: :class:`InvalidInputError` (exit 2). A reopen's failure
        stays :class:`SourceClosedError`, so the reconnect loop retries it and an outage in the
        middle of a live stream ends as a stream that failed while running (exit 4)."""
        kwargs: dict = {"options": dict(self._options)}
        if self._format:
            kwargs["format"] = self._format
        if self.kind in ("url", "device"):
            kwargs["timeout"] = (self._timeout, self._timeout)
        if nvdec:
            from av.codec.hwaccel import HWAccel

            idx = self.device.index if self.device.index is not None else torch.cuda.current_device()
            kwargs["hwaccel"] = HWAccel("cuda", device=str(idx), allow_software_fallback=True, is_hw_owned=True)
        note = self._waiting_note() if self._pipe and not reopen else None
        try:
            container = self._open_av(kwargs)
        except (av.error.FFmpegError, OSError) as e:
            if not nvdec or isinstance(e, FileNotFoundError):
                container = None
                err = e
            else:
                # Seen on a lent H200 VM: creating the CUDA hwdevice fails with EOPNOTSUPP (no
                # video engine exposed). Decode on the CPU instead, visibly.
                self._fallback(f"NVDEC failed to open ({e}); decoding on the CPU")
                self._use_nvdec = False
                if note is not None:
                    note.cancel()
                return self._open_container(False, reopen=reopen)
        else:
            err = None
        finally:
            if note is not None:
                note.cancel()
        try:
            if err is not None:
                if not reopen:
                    _raise_if_stopped(err)
                raise err
        except FileNotFoundError as e:
            if self.kind == "file":
                raise MediaNotFoundError(f"input not found: {str(self.spec)!r}",
                                         hint=PATH_HINT) from e
            raise self._open_error(e, reopen) from e
        except av.error.InvalidDataError as e:
            detail, hint = (_open_failure(self._target, self._options, self._format) if self.kind == "file"
                            else (None, None))
            if hint is not None:
                raise NotMediaError(f"FFmpeg cannot read {self.spec!r}: {detail or _ffmpeg_reason(e)}", hint=hint) from e
            raise NotMediaError(
                f"FFmpeg cannot read {self.spec!r} as media (not a video file, or truncated/corrupt header"
                + (f": {detail})" if detail else ")"),
                hint="check that the file plays in a media player; a file cut off while being written may lack its index",
            ) from e
        except av.error.EOFError as e:
            if self.kind == "file":
                raise NotMediaError(f"{self.spec!r} ends before any picture (an empty or cut-off recording)",
                                    hint="check that the file plays in a media player") from e
            raise SourceClosedError(f"cannot open {self.kind} {self.spec!r}: {_ffmpeg_reason(e)}") from e
        except (av.error.FFmpegError, OSError) as e:
            if self.kind == "file" and "format_whitelist" in self._options:
                raise _untrusted_refusal(self.spec, self._target, self._options, e) from e
            if self.kind == "file":
                detail, hint = _open_failure(self._target, self._options, self._format)
                raise NotMediaError(f"FFmpeg cannot open {self.spec!r}: {detail or _ffmpeg_reason(e)}", hint=hint) from e
            raise self._open_error(e, reopen) from e
        try:
            vs = main_video_stream(container)
            photo = _photo_extension(container, self._target) if self.kind == "file" and not reopen else None
            named = Path(self.spec).suffix.lower()
            if photo is not None and named not in IMAGE_EXTS and not (named == ".gif" == photo):
                # a photo under another name (a browser's `download`, `photo.jpg_large`, a JPEG saved
                # as .mp4, an iPhone's `IMG_1234` copied off without its .HEIC): it was encoded as a
                # one-frame H.264 video, its format and EXIF lost; an animated PNG (as clip.bin, or a
                # PNG named .gif) as an H.264 video, where under .png/.apng it is written back as one
                own = Path(self.spec)
                what = ("an animated PNG (APNG)" if (container.format.name or "").startswith("apng")
                        else f"{'an' if photo == '.avif' else 'a'} {photo[1:].upper()} picture")
                raise NotMediaError(
                    f"{self.spec} is {what}, not a video (its name has "
                    + (f"the extension {own.suffix}" if own.suffix else "no extension")
                    + "): photos are told by their extension",
                    hint=f"rename it to {own.with_suffix(photo).name if own.suffix else own.name + photo} "
                         "and run again")
            others = [s for s in _pictures(container) if vs is not None and s.index != vs.index]
            if not reopen:  # (a reconnect's stream has the same programs: not read again)
                self.programs = stream_programs(container)

            def prog(s) -> str:
                ps = self.programs.get(s.index)
                return f", program {'/'.join(map(str, sorted(ps)))}" if ps else ""

            if others:
                self._fallback(
                    f"{self.spec}: {len(others) + 1} video streams; restoring #{vs.index} "
                    f"({vs.codec_context.width}x{vs.codec_context.height}, the largest"
                    f"{' moving one' if any(_pixels(s) > _pixels(vs) for s in others) else ''}{prog(vs)}); "
                    "not restored: "
                    + ", ".join(f"#{s.index} ({s.codec_context.width}x{s.codec_context.height}"
                                f"{', a one-frame still' if s.frames == 1 else ''}{prog(s)})" for s in others))
            if vs is None:
                kinds = sorted({s.type for s in container.streams})
                cover = " besides cover art" if container.streams.video else ""
                if not kinds:  # (an mp4 cut inside its header: FFmpeg opened it, found nothing)
                    raise NoVideoStreamError(f"{self.spec!r} has no video stream (no stream at all)",
                                             hint="an empty recording, or a file cut off or damaged inside its "
                                             "header; check it plays")
                raise NoVideoStreamError(
                    f"{self.spec!r} has no video stream{cover} (streams: {', '.join(kinds)})",
                    hint="stream-gpen restores faces in pictures; give it a video or image file",
                )
            name = vs.codec_context.name if vs.codec_context is not None else None
            if name is None or not vs.codec_context.is_decoder:
                raise UnsupportedCodecError(f"no decoder for the video codec of {self.spec!r}")
            # frame + slice threads: decoding keeps up on many cores. Frame threads hold a frame
            # back per thread, though: a live feed (a network camera, a device) decodes with slice
            # threads, else it showed each picture threads-1 frames late, and the last ones
            # before a stall only once the read timed out (camera18: a 13 s outage recorded as 4.5 s)
            vs.thread_type = "SLICE" if self._judged_live() else "AUTO"
            vs.thread_count = self._threads
            self._vstream = vs
            return container
        except BaseException:
            container.close()
            raise

    def _waiting_note(self) -> threading.Timer:
        """A timer, started, that says once (after ``_PIPE_WAIT_NOTE_S``) that the open of this
        pipe, FIFO or character device is still waiting: FFmpeg's open blocks, with nothing said,
        until a writer opens a FIFO and has written the stream's header (``mkfifo f; stream-gpen
        camera f`` was silent until Ctrl-C). The open goes on waiting; cancel the timer once it
        returns."""
        try:
            what = "a pipe or FIFO" if stat.S_ISFIFO(os.stat(self._target).st_mode) else "a character device"
        except OSError:
            what = "a pipe"
        note = threading.Timer(_PIPE_WAIT_NOTE_S, log.warning, (
            "%s: no stream yet after %g s: waiting for a writer, or for the stream's header (%s: is its writer "
            "running?)", self.spec, _PIPE_WAIT_NOTE_S, what))
        note.daemon = True
        note.start()
        return note

    #: a URL whose header does not parse, or whose connection broke while it was read, is
    #: fetched again this many times before it counts as "not media" or failed: a connection cut
    #: while the header (an mp4's index, megabytes for a phone video) was read looks the same to
    #: FFmpeg as a page that is not a video
    URL_HEADER_RETRIES = 2

    def _open_av(self, kwargs: dict):
        if self._format == "avfoundation":
            return _open_avfoundation(self._target, kwargs)
        if self.kind == "device":
            return _open_device(self._target, self._format, kwargs)
        for attempt in range(self.URL_HEADER_RETRIES + 1):
            try:
                return av.open(self._target, "r", **kwargs)
            except (av.error.InvalidDataError, OSError) as e:
                cut = isinstance(e, av.error.InvalidDataError) or getattr(e, "errno", None) in (
                    errno.EIO, errno.ECONNRESET, errno.EPIPE)
                if self.kind != "url" or not cut or attempt == self.URL_HEADER_RETRIES:
                    raise
                log.info("%s: its header did not parse (%s); fetching it again", self.spec, _ffmpeg_reason(e))
                time.sleep(0.5 * (attempt + 1))

    def _open_error(self, e: BaseException, reopen: bool) -> StreamGpenError:
        """The error for a device, lavfi graph or URL that FFmpeg could not open (see
        :meth:`_open_container`): FFmpeg's own words, without PyAV's ``[Errno N]`` (for FFmpeg's
        own error codes N is a tag such as 1279870712, meaningless to a user)."""
        reason = _ffmpeg_reason(e)
        if isinstance(e, av.error.ExitError) and self.kind in ("url", "device"):
            # (PyAV's open timeout ends the open as FFmpeg's "Immediate exit requested")
            reason = f"no data for {self._timeout:g} s"
        if reopen:
            return SourceClosedError(f"cannot reopen {self.kind} {self.spec!r}: {reason}")
        code = getattr(e, "errno", None)
        if self.kind == "lavfi":
            detail = _lavfi_detail(self._target)
            return InvalidInputError(
                f"cannot open the lavfi graph {self._target!r}: {reason}" + (f" ({detail})" if detail else ""),
                hint="lavfi: takes an FFmpeg filter graph, e.g. lavfi:testsrc2=size=640x480:rate=25; check the "
                     "filter names and their options")
        if self.kind == "device":
            # FFmpeg's logged reason (avfoundation: "Video device not found", or the modes a
            # camera offers when it refused the rate); the exception says only "Input/output error"
            detail = "; ".join(ln for ln in getattr(e, "ffmpeg_log", None) or [] if "Selected framerate" not in ln)
            rates = getattr(e, "rates_tried", None)
            if rates:
                asked = ", ".join(r if r != "30000/1001" else "29.97" for r in rates if r) + " fps"
                asked += " and FFmpeg's default" if None in rates else ""
                return InvalidInputError(
                    f"capture device {self.spec!r} refused every frame rate tried ({asked}): {reason}"
                    + (f" ({detail})" if detail else ""),
                    hint="the camera offers none of these rates; list the capture devices with "
                         "`stream-gpen camera --list` and try another one")
            # (V4L2 answers ENODEV for a node that is no capture device, "Not a video capture
            # device.": a UVC camera's second /dev/videoN carries its metadata; the node's own
            # open fails with it, "Cannot open video device", for a camera unplugged meanwhile)
            nodev = ("not a capture device (a camera's metadata node: try the next /dev/videoN)"
                     if self._format == "v4l2" and "cannot open video device" not in detail.lower() else "not found")
            what = {errno.ENOENT: "not found", errno.ENODEV: nodev, errno.ENXIO: "not found",
                    errno.EBUSY: "busy (another program is using it)", errno.EACCES: "not allowed (permission denied)",
                    errno.EPERM: "not allowed (permission denied)",
                    errno.ENOTTY: "not a capture device", errno.EINVAL: "not a capture device"}.get(code)
            hint = ("add your user to the 'video' group (then log in again)" if code in (errno.EACCES, errno.EPERM)
                    else "list the capture devices with `stream-gpen camera --list`")
            return InvalidInputError(f"capture device {self.spec!r} is not available: {what or reason}"
                                     + (f" ({reason})" if what and what != "not found" else "")
                                     + (f" ({detail})" if detail else ""), hint=hint)
        # a URL: refused at once or unknown is the address's fault; a timeout, a server error
        # (5xx) or an I/O error may pass, so it stays "failed" (exit 4) and a retry may work
        if isinstance(e, av.error.HTTPClientError):
            return InvalidInputError(f"cannot open {self.spec!r}: {reason}",
                                     hint="check the URL (the server refused it)")
        if code == errno.ECONNREFUSED:
            return InvalidInputError(f"cannot open {self.spec!r}: {reason}",
                                     hint="check the host and port, and that the stream is being served")
        if isinstance(e, av.error.ProtocolNotFoundError):
            scheme = self.spec.split("://", 1)[0].lower()
            return InvalidInputError(f"cannot open {self.spec!r}: this FFmpeg (PyAV's) has no {scheme}:// protocol",
                                     hint="send the stream over another protocol (rtmp://, udp://, rtsp://, http://)")
        if isinstance(e, FileNotFoundError):
            return InvalidInputError(f"cannot open {self.spec!r}: {reason}", hint="check the URL")
        if code == errno.EIO and _unknown_host(self.spec):
            return InvalidInputError(f"cannot open {self.spec!r}: unknown host", hint="check the host name in the URL")
        return SourceClosedError(f"cannot open {self.kind} {self.spec!r}: {reason}",
                                 hint="the source did not answer or failed; try again later")

    # --- decode generator (runs first in __init__, then in the decode thread) ------------
    def _set_window(self, container) -> None:
        """The trim window in the stream's own seconds, and a seek to the keyframe before it."""
        self._seeked = False  # (frames without times are timed by their index from the top only)
        if not self.trim_start and self.trim_duration is None:
            return
        vs = container.streams[self._vstream.index]
        tb = _fraction(vs.time_base)
        # Relative to the file's start (its earliest stream), as players show time and FFmpeg's -ss
        # counts: a video that starts 0.85 s after its audio has its frame "at 8.5 s" at 8.5 s.
        s0 = container.start_time / 1e6 if container.start_time is not None else (
            float(vs.start_time * tb) if vs.start_time is not None and tb else 0.0)
        negative = vs.start_time is not None and bool(tb) and vs.start_time < 0
        if negative:
            # A file that starts before 0 (an MPEG-TS whose 33-bit clock wrapped: FFmpeg gives the
            # times before the wrap as negative) is written from its first frame (the sink
            # rebases it), so the window counts from that frame too.
            s0 = float(vs.start_time * tb)
        start = s0 + self.trim_start
        end = start + self.trim_duration if self.trim_duration is not None else None
        self._window = (start, end)
        # ``duration`` counts from the first frame kept: a video that starts later than its file
        # (0.85 s after the audio, say) still gives ``duration`` seconds of video
        self._anchor_end = self.trim_duration is not None
        if self.trim_start and tb and negative:
            # FFmpeg's seek cannot search across a wrapped clock (it lands at the end or nowhere):
            # decode from the top and drop what comes before the window (slower, same frames)
            self._fallback(f"{self.spec}: timestamps start at {s0:.3f} s (a wrapped clock?): reading from the "
                           f"start up to {self.trim_start:g} s instead of seeking")
        elif self.trim_start and tb and self._clock_steps_back(container):
            # Recordings joined end to end (``cat a.ts b.ts``), each on its own clock: the times a
            # seek searches for are found in each of them (10-13 s, then 10-12 s again), FFmpeg's
            # binary search lands in the wrong one or past the end ("past the end of the data",
            # "looks cut off"), and where each recording lies on the run's timeline (:class:`_Joins`
            # runs each on from the end of the one before) is known only by reading from the top.
            # So the part is read from the first byte, as the whole file is, and cut from that
            # timeline (slower: demuxed from the top, decoded from the GOP before the part, see
            # skip_to in _decoded; the whole run's frames); the header's duration (the first
            # recording's, or its last minus its first time) says nothing of where it ends.
            self._joined_end = 0.0
            self._fallback(f"{self.spec}: its clock jumps back (recordings joined into one file?), so a seek cannot "
                           f"find start={self.trim_start:g} s: reading from the start up to it instead, through "
                           "the joins as the whole file is read")
        elif self.trim_start and tb:
            if container.duration and start >= (container.start_time or 0) / 1e6 + container.duration / 1e6:
                raise self._past_end()  # (a seek there would find nothing, or overflow FFmpeg's int64)
            try:
                target = _seek_target(start, tb)
            except OverflowError:
                raise self._past_end() from None  # billions of years in: no input is that long
            try:
                container.seek(target, stream=vs, backward=True, any_frame=False)
                self._back_to_a_keyframe(container, vs, start, s0)
            except (av.error.FFmpegError, OSError) as e:
                # no index / not seekable (a pipe, some hand-made files): decode from the top and
                # drop what comes before the window (slower, same frames)
                self._fallback(f"{self.spec}: cannot seek ({e}); reading from the start up to {self.trim_start:g} s")
                if container.format.flags & _NO_TIMESTAMPS:
                    self._rewind(container, e)
            else:
                self._seeked = True

    def _clock_steps_back(self, container) -> bool:
        """Whether this source is a local MPEG-TS/PS file whose clock jumps back (see
        :func:`clock_steps_back`)."""
        names = set((container.format.name or "").split(","))
        return (self.kind == "file" and bool(names & {"mpegts", "mpeg"}) and os.path.isfile(self._target)
                and clock_steps_back(self._target, fmt=(container.format.name or "").split(",")[0],
                                     step=self._leap_min()))

    def _rewind(self, container, e: BaseException) -> None:
        """Back to the top of a raw elementary stream (.h264, .hevc: no timestamps) after its seek
        failed: FFmpeg's seek there reads the whole stream looking for times and leaves the read
        at its end, so "reading from the start" found no frame ("past the end"). Such a stream
        has no header: its first byte is its first frame's."""
        try:
            container.seek(0, unsupported_byte_offset=True)
        except (av.error.FFmpegError, OSError) as e2:
            raise InvalidInputError(
                f"start={self.trim_start:g} s cannot be honoured: {self.spec!r} has no timestamps, cannot seek "
                f"({e}) and cannot be read again from its start ({e2})",
                hint="cut the part out first (ffmpeg -ss START -i INPUT ...) or leave out start",
                option="start") from e2

    def _back_to_a_keyframe(self, container, vs, t: float, s0: float) -> None:
        """After a seek to ``t`` seconds, seek again 1, 2, 4... s further back until the first
        keyframe read lies at or before ``t`` (by its presentation time), down to the file's start
        (a single keyframe), so the frames from ``t`` on are all decoded. FFmpeg's MPEG-TS/PS seek
        (and raw MPEG video's) is a binary search on timestamps that ignores keyframes: it lands
        mid-GOP, and the decoder drops every frame up to the next keyframe, after ``t``. mp4, mov
        and mkv land on the keyframe before ``t`` by its index time, its decode time: an open-GOP
        keyframe (HEVC CRA, x265's default) shown after ``t`` has its leading pictures, shown before
        it, in the GOP before, and the decoder drops them. Each try reads only up to ``t``; an
        ordinary seek costs one packet read and the same seek again. AVI keeps its one seek: it
        has no presentation times to judge by, and its frames are timed by the chunks read after
        the seek (see _decoded)."""
        if "avi" in (container.format.name or "").split(","):
            return
        tb = _fraction(vs.time_base)
        back = 1.0
        target = t
        top = False
        while not self._keyframe_by(container, vs, t, tb):
            if target < s0:
                top = True
                break  # no keyframe flagged before t: decode from the top, as the decoder can
            # (down to 1 s before the start: with B-frames the first packet's dts precedes it)
            target = max(t - back, s0 - 1.0)
            back *= 2
            container.seek(_seek_target(target, tb), stream=vs, backward=True, any_frame=False)
        if target != t:
            # (in --start's terms: t and s0 are on the file's clock, which may start at 10 h)
            log.info("%s: the seek to %.3f s landed past the keyframe before it; decoding from %.3f s",
                     self.spec, t - s0, max(target, s0) - s0)
        names = set((container.format.name or "").split(","))
        if top and names & {"mpegts", "mpeg"}:
            # the top by its first byte: a seek by time lands on the first packet with one, past
            # leading ones without a PTS (a capture joined mid-PES) and the keyframe among them,
            # and the decoder dropped every frame up to the next keyframe (a GOP of the part lost)
            try:
                container.seek(0, unsupported_byte_offset=True)
                return
            except (av.error.FFmpegError, OSError):
                pass
        if "matroska" in names:
            target = self._back_for_audio(container, vs, t, target, s0, tb)
        container.seek(_seek_target(target, tb), stream=vs, backward=True, any_frame=False)

    @staticmethod
    def _back_for_audio(container, vs, t: float, target: float, s0: float, tb: Fraction) -> float:
        """Where to seek in a Matroska file so that the audio packet playing at ``t`` is read too.
        FFmpeg's Matroska seek skips every track's blocks that start before the video keyframe it
        lands on: with a keyframe every 0.2 s and 0.5 s PCM packets (a camera, a DVR) the packet
        straddling ``t`` was never read, and the part's first 0.22 s had no sound. So seek 1, 2,
        4 s further back until the first audio packet read starts at or before ``t`` (the sink
        leaves out what comes before the part); audio that starts after ``t`` needs nothing."""
        starts = [float(st.start_time * st.time_base) for st in container.streams.audio
                  if st.start_time is not None and st.time_base]
        if not starts or min(starts) > t:
            return target
        back = 1.0
        for _ in range(4):
            container.seek(_seek_target(target, tb), stream=vs, backward=True, any_frame=False)
            first = None
            for packet in container.demux():
                st = packet.stream
                if not packet.size or not st.time_base:
                    continue
                when = packet.pts if packet.pts is not None else packet.dts
                if when is None:
                    continue
                if st.type == "audio":
                    first = float(when * st.time_base)
                    break
                if float(when * st.time_base) > t + 2.0:
                    break  # no audio near the cut: nothing to fetch
            if first is None or first <= t + 1e-6 or target <= s0:
                return target
            target = max(target - back, s0)
            back *= 2
        return target

    @staticmethod
    def _keyframe_by(container, vs, t: float, tb: Fraction) -> bool:
        """Whether the first video keyframe read from here lies at or before ``t`` seconds (reads
        no further than ``t``: a packet decoded after ``t`` means its keyframe is later still)."""
        for packet in container.demux(vs):
            if not packet.size:
                continue
            pts = packet.pts if packet.pts is not None else packet.dts
            if packet.is_keyframe and pts is not None:
                return float(pts * tb) <= t + 1e-6
            if packet.dts is not None and float(packet.dts * tb) > t + 1e-6:
                return False
        return False

    def _past_end(self) -> InvalidInputError:
        """``start`` found no frame: past the file's end, or past its video's where the file's
        other streams run on (0.4 s of video over 3 minutes of audio), said as such."""
        c = self._container
        if self._joined_end is not None:
            end = max(0.0, self._joined_end - (self._window[0] - self.trim_start))  # (from the file's start)
            return InvalidInputError(
                f"start={self.trim_start:g} s is past the end of {self.spec!r}: read through, the recordings "
                f"joined in it (its clock jumps back) end at {end:.2f} s, one after another",
                hint=f"give a start before {end:.2f} s (its header's duration is one recording's)", option="start")
        video = None
        try:
            span = _header_span(c)
            video = _stream_end(c.streams[self._vstream.index])
            s0 = c.start_time / 1e6 if c.start_time is not None else 0.0
        except (AttributeError, IndexError, ValueError, av.error.FFmpegError):
            span = None
        if span is not None and video is not None and span[1] - video > 0.5 and self.trim_start < span[1] - s0:
            audio = any(st.type == "audio" for st in c.streams)
            other = f"the {'audio' if audio else 'other streams'} run{'s' if audio else ''} on to {span[1] - s0:.2f} s"
            return InvalidInputError(
                f"start={self.trim_start:g} s is past the end of the video of {self.spec!r}: it ends at "
                f"{video - s0:.2f} s ({other})", hint=f"give a start before {video - s0:.2f} s", option="start")
        return InvalidInputError(f"start={self.trim_start:g} s is past the end of {self.spec!r}",
                                 hint="`stream-gpen info INPUT` shows the video's duration", option="start")

    def _in_window(self, t: float | None, dur: float = 0.0) -> int:
        """-1 before the trim window, 0 inside (or no window / no time), 1 after it."""
        if self._window is None or t is None:
            return 0
        start, end = self._window
        # (the slack absorbs float noise; a duration under it kept no frame at all: "the video
        # stream contains no frames", or "start=0.04 s is past the end" of a 0.12 s clip)
        slack = 1e-6 if self.trim_duration is None else min(1e-6, self.trim_duration / 2)
        if end is not None and t >= end - slack:
            return 1
        # a packet wholly before the start is out; a frame (no duration) from the start on is in
        before = t + dur <= start + 1e-6 if dur > 0 else t < start - 1e-6
        return -1 if before else 0

    def _decode_frames(self) -> Iterator["av.VideoFrame"]:
        """The decoded frames, each with its ``duration`` (ticks of its time base) until the next
        one: decoders give the packet's, which with B-frames belongs to another frame (an mp4's
        pause shows up on the wrong one). The last frame keeps the decoder's (an mp4/mov with
        B-frames: the track's last sample's, see ``_last_sample``), and the last one of a window
        lasts until the window's end. Two frames of look-ahead (one to time a frame,
        one to tell a damaged presentation time: :meth:`_mend_leap`); live sources, where they
        would add latency, keep the decoder's durations."""
        frames = self._untimed_placed(self._tagged(self._captions_noted(self._decoded())))
        if self.live:
            yield from frames
            return
        held: list = []  # frames not yet handed on: at most two
        step = None  # the shortest step timed between two frames (s)
        for f in frames:
            held.append(f)
            if len(held) < 3:
                continue
            a, b, c = held
            self._mend_leap(a, b, c)
            self._time_to(a, b)
            step = _shorter(step, _step(a))
            yield self._clip_to_window(a)
            held = [b, c]
        if len(held) == 2:
            self._time_to(held[0], held[1])
            step = _shorter(step, _step(held[0]))
            yield self._clip_to_window(held.pop(0))
        if held:
            prev = held[0]
            t0 = _seconds(prev)
            if self._cut_at is not None and t0 is not None and self._cut_at > t0:
                prev.duration = round((self._cut_at - t0) / Fraction(prev.time_base))  # to the window's end
            elif self._cut_at is None and getattr(self, "_last_sample", None) is not None and prev.time_base:
                # an mp4/mov with B-frames: the decoder gave the last frame its own sample's
                # duration, the step to the next sample in decode order, which is another frame's
                # (a VFR clip's last frame lasted 0.25 s where the file says 1/30 s: the video ran
                # past its audio). The track's last sample holds the duration the writer gave the end,
                # unless it is a token one (a writer's 1-tick end: under half the shortest step
                # between frames), which would make the last frame vanish (review24)
                if step is None or self._last_sample >= step / 2:
                    prev.duration = max(1, round(self._last_sample / Fraction(prev.time_base)))
            yield self._clip_to_window(prev)

    def _untimed_placed(self, frames) -> Iterator["av.VideoFrame"]:
        """Frames without a pts given one on the timeline of the timed frames around them.

        Left alone, such a frame was timed by its index over the frame rate (as a raw .h264's
        are): an MPEG-TS whose first PES carry no PTS had its leading frames at 0 s, 0.04 s, ...
        before timed frames 10 h on (hours of gap in the output) or close to them (frames pushed
        one tick apart, or onto another's time). Now the frames without one are held until the
        next timed frame and placed one frame interval apart before it (the leading ones) or
        between it and the frame before, evenly where they do not fit one interval apart. A
        live source holds only the leading ones (no latency mid-stream: a frame interval after
        the frame before). More than ``_UNTIMED_HOLD_S`` of them: the leading ones stay timed
        by index (the stream has no times), later ones go on one interval apart. A container
        without times at all (raw .h264/.hevc, see ``_NO_TIMESTAMPS``) is left as it was. With a
        window (``start``/``duration``) they are placed in :meth:`_decoded`, before the window
        judges them, by the same rule (:class:`_Untimed`); here they then all have times."""
        if self._container is not None and self._container.format.flags & _NO_TIMESTAMPS:
            yield from frames
            return
        placer = _Untimed(self)
        for f in frames:
            yield from placer.push(f)
        yield from placer.end()

    @staticmethod
    def _time_to(prev, f) -> None:
        """``prev`` lasts until ``f``."""
        t0, t1 = _seconds(prev), _seconds(f)
        if t0 is not None and t1 is not None and t1 > t0:
            prev.duration = round((t1 - t0) / Fraction(prev.time_base))

    def _mend_leap(self, a, b, c) -> None:
        """``b``'s presentation time leapt far ahead of ``a``'s and ``c`` is back where the picture
        was: a damaged pts over an intact dts (a flipped bit in a .ts), which :class:`_Joins`
        (packets, by their dts) cannot see. Left, every later frame was pinned one tick after it
        (an hour on) and ``a`` lasted the hour; retimed between its neighbours. (A pause, B-frames
        or not, goes on from its new time: ``c`` after ``b``.)"""
        ta, tb, tc = _seconds(a), _seconds(b), _seconds(c)
        if ta is None or tb is None or tc is None or not (ta <= tc < tb) or tb - ta <= self._leap_min():
            return
        mid = ta + (tc - ta) / 2
        b.pts = round(mid / Fraction(b.time_base))
        self.stats["retimed_frames"] = self.stats.get("retimed_frames", 0) + 1
        (log.warning if self.stats["retimed_frames"] == 1 else log.info)(
            "%s: a frame's presentation time (%.3f s) is far off the ones around it (%.3f s, %.3f s): a damaged "
            "timestamp, retimed to %.3f s", self.spec, float(tb), float(ta), float(tc), float(mid))

    def _leap_min(self) -> Fraction:
        """The least leap ahead (s) that :meth:`_mend_leap` takes for a damaged time: a join's step."""
        return join_step(self._vstream, self._options)

    def _captions_noted(self, frames) -> Iterator["av.VideoFrame"]:
        """``frames``, with :data:`CAPTIONS_NOTE` given when one first carries A53 captions (a
        broadcast's captions often start after its first frame: looking at that one alone lost
        them silently). Each frame's side data is looked at only until they are found."""
        for f in frames:
            if not self._captions and any("A53_CC" in str(getattr(sd, "type", "")) for sd in frame_side_data(f)):
                self._captions = True
                self._fallback(f"{self.spec}: {CAPTIONS_NOTE}")
            yield f

    def _tagged(self, frames) -> Iterator["av.VideoFrame"]:
        """Frames whose own colour tags say unspecified (2) take the stream's (codec parameters:
        the container's or the header's) where those are specified: some decoders leave frames
        untagged that their mov/mkv says are PQ/BT.2020 (ProRes from encoders that tag only the
        container). The conversion to RGB then uses the stream's matrix, and the metadata and
        the sink's tags say what the file says."""
        cc = self._vstream.codec_context
        tags = {k: int(getattr(cc, k) or 2) for k in ("colorspace", "color_primaries", "color_trc")} if cc else {}
        tags = {k: v for k, v in tags.items() if v != 2}
        for f in frames:
            for k, v in tags.items():
                if int(getattr(f, k)) == 2:
                    setattr(f, k, v)
            yield f

    def _clip_to_window(self, f):
        """``f`` with its duration cut at the window's end (a still held past it)."""
        end = self._window[1] if self._window is not None else None
        t0 = _seconds(f)
        if end is not None and t0 is not None and f.duration and t0 + f.duration * Fraction(f.time_base) > end:
            f.duration = max(1, round((Fraction(end) - t0) / Fraction(f.time_base)))
        return f

    def _cues_at_start(self) -> list | None:
        """The subtitle packets of a part's file (``--start``, local files) that start before the
        part and are still on screen at its start, read from up to ``_CUE_LOOKBACK_S`` before it
        in a second opening of the file (the main read starts at the keyframe before the part,
        after which such a cue is never seen: a line on screen at the cut was lost). ``None``:
        nothing was looked up (no part, no subtitles, or the file could not be read again)."""
        c0 = self._container
        if not self.trim_start or self._window is None or c0 is None or self.kind != "file":
            return None
        if self._joined_end is not None:
            return None  # (read from the top: every cue is seen, on the joins' timeline; a seek would find raw times)
        subs = {s.index for s in c0.streams if s.type == "subtitle"}
        if not subs:
            return None
        start = Fraction(self._window[0])
        found = []
        try:
            with av.open(ffmpeg_local(self.spec), format=(c0.format.name or "").split(",")[0]) as c:
                c.seek(max(0, int((float(start) - _CUE_LOOKBACK_S) * 1e6)), backward=True)
                for p in c.demux():
                    t = p.pts if p.pts is not None else p.dts
                    if t is None or not p.time_base:
                        continue
                    at = t * Fraction(p.time_base)
                    if at > start + 1:
                        break  # (past the part's start in every stream, near enough)
                    if p.stream.index in subs and p.size and at < start < at + (p.duration or 0) * Fraction(p.time_base):
                        p.stream = c0.streams[p.stream.index]  # (this opening closes; the packet stays)
                        found.append(p)
        except (av.error.FFmpegError, OSError, ValueError):
            return None
        return found

    def _avi_decoder_delay(self) -> int:
        """Chunks an AVI's video decoder takes before its first frame comes out, from the top of
        the file (where no frame is dropped): its reordering delay plus its frame threads'. Read
        once, from a second opening of the file with the same threads (a few packets)."""
        if getattr(self, "_avi_delay", None) is None:
            sent = 0
            try:
                with av.open(ffmpeg_local(self.spec), format="avi") as c:  # (known to be AVI: no other demuxer is tried)
                    vs = c.streams[self._vstream.index]
                    # the same threads as the real decoder: frame threads add to its delay
                    vs.thread_type, vs.thread_count = self._vstream.thread_type, self._vstream.thread_count
                    for packet in c.demux(vs):
                        frames = packet.decode()
                        if packet.size:
                            sent += 1
                        if frames or sent > 64:
                            break
            except (av.error.FFmpegError, OSError, IndexError):
                sent = 1
            self._avi_delay = max(0, sent - 1)
        return self._avi_delay

    def _hold_gap(self) -> Fraction:
        """One nominal frame interval of the video (0.1 s when its rate is unknown)."""
        rate = _rate_of(self._vstream, self._options)
        return 1 / rate if rate else Fraction(1, 10)

    def _decoded(self) -> Iterator["av.VideoFrame"]:
        attempts = 0
        err: BaseException | None = None
        self._cut_at = None  # the window's end, once a frame past it ended the video
        # mp4/mov: the duration (s) of the last video sample in decode order, once the samples
        # came out of order (B-frames), for the last frame (_decode_frames); None elsewhere
        self._last_sample: Fraction | None = None
        # the pixel shape FFmpeg's probe left in the codec parameters (before this decoder ran)
        # and the first frame's, for _stream_sar
        self._sar_probed = _fraction(self._vstream.codec_context.sample_aspect_ratio)
        self._sar_first: tuple[Fraction | None] | None = None
        mov_order = self.kind == "file" and self._container is not None and _is_mov(self._container)
        top_pts = None  # the latest video pts sent to the decoder (mov_order)
        reordered = False
        if self._container is not None:
            self._set_window(self._container)
        # AVI stores no presentation times: chunk k of the video is frame k (its dts), and
        # FFmpeg's H.264 parser guesses each pts one frame after that (k+1), so the video would
        # start a frame late against the audio. For AVI the decoded pts are moved back by the
        # first frame's pts minus the first packet's dts (relative times, B-frame order included,
        # are unchanged).
        avi = self.kind == "file" and "avi" in (self._container.format.name or "").split(",")
        first_dts: int | None = None
        # the earliest video packet time before the first picture (watched until it comes): a
        # recording that starts mid-GOP has packets no picture comes from
        watch_head, head = not self.trim_start and not self.live, None
        shift: int | None = None if avi else 0
        # ... which holds without B-frames only. With them (x264's default, ``ffmpeg -c:v libx264
        # out.avi``) FFmpeg's guesses follow decode order (0.033, 0.100, 0.133, 0.067, ...): the
        # picture ran a frame behind its audio, its first frame held twice. AVI is fixed-rate and
        # its chunks hold every frame, so the frames leaving the decoder (display order) take the
        # chunks' times in increasing order: a heap of the dts of the chunks sent to the decoder.
        # After a seek the decoder drops the leading B-frames it cannot decode (they show before
        # the keyframe): at the first frame out, the chunks sent beyond the decoder's own delay
        # (measured from the top of the file, see _avi_decoder_delay) were those, and their
        # times, the earliest, are let go.
        avi_dts: list[int] | None = [] if avi else None
        avi_sent = 0  # chunks sent to the decoder before the first frame came out (None after)
        # The bitstream's pixel shape (H.264 VUI, MPEG-2 sequence header) as it was at the first
        # frame; a frame decoded after it changed (a DVB channel switching 4:3 <-> 16:9, with or
        # without a new size) carries the new one in ``opaque``, for _fit.
        sar0: list = []
        # what was really there, for _check_truncated: the end of the last packet of any stream,
        # the first frame's time and the frames given out
        seen = {"end": None, "first": None, "frames": 0, "last": None, "squeezed": 0, "squeezed_at": None}
        # a reconnected session's timestamps are its own (see _Timeline)
        timeline = _Timeline(_fraction(self._vstream.time_base), live=self.live, name=self.spec)
        # a clock that jumps back (joined recordings), or a live one that leaps ahead of real time,
        # within a session (see _Joins); across reconnects: _Timeline
        joins = self._joins = _Joins(join_step(self._vstream, self._options), self.spec, live=self._judged_live())
        session_end: float | None = None  # this session's last packet end, for _ended_like_a_file
        # A reopened session whose first frame has the time the one before began with only
        # replays it (an http file served without a length, given again from its top): it renews
        # the reconnect budget only once it runs past where that one ended, else such a file was
        # replayed for ever (each replay's frames reset the count), and if it ends where that one
        # ended it is that file again: the source ends (see the end of input below).
        # (http(s) only: an RTSP camera whose clock restarts at 0 in each session is live all the same)
        http = self.kind == "url" and self.spec.lower().startswith(("http://", "https://"))
        session_first: float | None = None  # this session's first frame time (its own clock)
        before: tuple[float | None, float | None] | None = None  # (first, end) of the session before
        replay = False
        untimed = 0  # frames out of the decoder since the top (the index of one without a time)
        # The frame on screen at the window's start: the last one before it, kept aside until the
        # next frame shows whether it matters. It opens the window (moved to the start, so the
        # output and its audio begin there) when the next frame comes more than a nominal frame
        # interval after the start: a pause (screen recordings, phones send no frame while the
        # picture is still) or a still held at the end. Otherwise (constant-rate video, a start
        # between two frames) the window opens frame-exact on the next frame, as before.
        held = None
        # Past the window's end: the audio the file stores after the window's last video frame
        # (phones and cameras interleave in 0.5-1 s chunks, video first) is still read, without
        # decoding video, until each audio stream has passed the end, for at most _AUX_TAIL_S of
        # the file past it (an audio stream that ends early or a file of all video, then all audio).
        tail: set | None = None
        aux_last: dict[int, float] = {}  # audio stream index -> latest packet time
        # Subtitle cues on screen at the part's start that began before the keyframe the seek
        # landed on are never read after it: they are looked up on their own (_cues_at_start) and
        # the main read then skips every cue that starts before the part (those, or ones over).
        early = self._cues_at_start()
        # A part of joined recordings, read from the top through the joins (see _set_window): the
        # video up to _SKIP_MARGIN_S before it is not decoded, but for the packets since the last
        # keyframe (gop), decoded when the read gets there. (The whole file decoded took as long
        # as a whole run for a part at its end.)
        skip_to = (Fraction(self._window[0]) - _SKIP_MARGIN_S
                   if self._joined_end is not None and self._window is not None else None)
        gop: list = []
        unkeyed = 0  # packets met before the first keyframe while skipping

        def replayed_whole() -> bool:
            """This session replayed the one before and ended where it did: a file served again."""
            if not (replay and session_end is not None and before[1] is not None
                    and abs(session_end - before[1]) < _REPLAY_TOL_S):
                return False
            log.info("%s gave the same %.2f s again after it was reconnected to: a file rather than a live "
                     "stream, so it ends here", self.spec, session_end - (session_first or 0.0))
            return True

        def put_aux(packet) -> None:
            if self._window is not None:
                t = packet.pts if packet.pts is not None else packet.dts
                tb = packet.time_base
                where = self._in_window(float(t * tb), float((packet.duration or 0) * tb)) if t is not None and tb else 0
                if where < 0 and not self.trim_start:
                    pass  # no cut at the head: an AAC track's priming packet (pts -1024) is the file's, kept as a whole run keeps it
                elif where < 0 or (where > 0 and not self._anchor_end):  # (the end waits for the first frame)
                    return  # audio / subtitles outside the trim window
            self.aux.put(packet, self.stats["decoded"])

        def keep(f, t: float | None) -> bool:
            """Window bookkeeping for frame ``f`` at ``t`` seconds; False: past the window's end."""
            if self._window is not None and t is not None:
                if self._anchor_end and t >= self._window[0] - 1e-6:
                    # the first frame kept sets the end, even where the video
                    # starts later than the file by more than ``duration``
                    self._anchor_end = False
                    self._window = (self._window[0], t + self.trim_duration)
                    self.aux.end_at(self._window[1])  # (packets queued past it while it waited)
                if self._in_window(t) > 0:
                    self._cut_at = Fraction(self._window[1])
                    return False
            if seen["first"] is None and t is not None:
                seen["first"] = t
            if t is not None:
                # A clock that steps back by less than a join (_Joins: more than a frame interval
                # and _JOIN_MIN_S), e.g. two segments cut with an overlap of a frame or two and
                # joined: these frames keep their times, so the video stays in sync with the audio
                # (moving the rest on, as a join does, would put it late by the overlap where the
                # audio does not step back with it), and the sink shows each for a tick: said
                # here with their number (see _check_squeezed), not lost unsaid.
                if seen["last"] is not None and t <= seen["last"]:
                    seen["squeezed"] += 1
                    if seen["squeezed_at"] is None:
                        seen["squeezed_at"] = (seen["last"], t)
                seen["last"] = t if seen["last"] is None else max(seen["last"], t)
            seen["frames"] += 1
            timeline.emitted(f)
            return True

        def opening(h):
            """Held frame ``h`` moved to the window's start (its duration shortened to match)."""
            tb = Fraction(h.time_base)
            pts = math.ceil(Fraction(self._window[0]) / tb)
            if h.duration:
                h.duration = max(1, h.duration - (pts - h.pts))
            log.info("%s: the frame on screen at start=%g s (from %.3f s) opens the window", self.spec,
                     self.trim_start, float(h.pts * tb))
            h.pts = pts
            return h

        def on_screen_at_end(h) -> bool:
            """Whether held frame ``h``, the file's last, still shows at the window's start."""
            if h is None or seen["frames"]:
                return False
            t = _seconds(h)
            if h.duration:
                end = t + h.duration * Fraction(h.time_base)
            else:
                span = _header_span(self._container)
                end = Fraction(span[1]) if span else None
            return end is not None and end > Fraction(self._window[0]) + Fraction(1, 1000000)

        for p in early or ():
            put_aux(p)
        while True:
            container = self._container
            if container is not None:
                vs = container.streams[self._vstream.index]
                # a window's frames without a pts are placed here, before it judges them (elsewhere
                # in _decode_frames: _untimed_placed)
                placer = (_Untimed(self) if self._window is not None and not self.live
                          and not container.format.flags & _NO_TIMESTAMPS else None)
                # a damaged presentation time is mended here too, before the window and the count
                # of frames that step back judge it (_decode_frames mends what is left after
                # _untimed_placed); judged on the raw 1011 s, a part stopped at that frame, and the
                # frames after it were said to step back
                leaps = _Leaps(self) if not self.live else None
                # a clock that does not advance from the first frame on is given one (see _Stuck),
                # before anything judges the frames' times
                stuck = _Stuck(self) if not container.format.flags & _NO_TIMESTAMPS else None
                reads = None
                try:
                    # (when the reads waited: see _Reads; FFmpeg's read timeout is the longest wait)
                    reads = packets = _Reads(container.demux(list(container.streams)),
                                             wait_s=0.5 * self._timeout if self._timeout else 5.0)
                    for packet in on_one_clock(container, packets, joins, seen):
                        if self._stop.is_set():
                            return
                        pt = packet.pts if packet.pts is not None else packet.dts
                        if packet.size and packet.pos is not None and packet.pos >= 0:
                            seen["bytes"] = max(seen.get("bytes", 0), packet.pos + packet.size)
                        if pt is not None and packet.time_base and packet.size:
                            end = float((pt + (packet.duration or 0)) * packet.time_base)
                            seen["end"] = end if seen["end"] is None else max(seen["end"], end)
                            session_end = end if session_end is None else max(session_end, end)
                            if self._joined_end is not None:  # (the joins' timeline: see _past_end)
                                self._joined_end = max(self._joined_end, end)
                            if packet.stream.type == "audio":
                                at = float(pt * packet.time_base)
                                aux_last[packet.stream.index] = max(aux_last.get(packet.stream.index, at), at)
                        if tail is not None:
                            if packet.stream.index != vs.index and (packet.size or packet.pts is not None):
                                for p in timeline.aux(packet):
                                    put_aux(p)
                            cut = float(self._cut_at)
                            tail -= {i for i in tail if aux_last.get(i, -math.inf) >= cut - 1e-6}
                            if not tail or (pt is not None and packet.time_base and packet.size
                                            and float(pt * packet.time_base) > cut + _AUX_TAIL_S):
                                return
                            continue
                        if packet.stream.index != vs.index:
                            if (early is not None and packet.stream.type == "subtitle" and pt is not None
                                    and packet.time_base and pt * packet.time_base < Fraction(self._window[0])):
                                continue  # (see _cues_at_start)
                            if packet.size or packet.pts is not None:  # skip the empty flush packets
                                for p in timeline.aux(packet):
                                    put_aux(p)
                            continue
                        if first_dts is None and packet.size:
                            first_dts = packet.dts
                        if mov_order and packet.size and packet.pts is not None:
                            reordered = reordered or (top_pts is not None and packet.pts < top_pts)
                            top_pts = packet.pts if top_pts is None else max(top_pts, packet.pts)
                            self._last_sample = (packet.duration * Fraction(packet.time_base)
                                                 if reordered and packet.duration and packet.time_base else None)
                        if (watch_head and packet.size and packet.pts is not None and packet.time_base
                                and not packet.is_discard):  # (an edit list's hidden lead-in: not lost, not shown)
                            pt0 = packet.pts * Fraction(packet.time_base)
                            head = pt0 if head is None else min(head, pt0)
                        ahead: list = []  # the held packets of the GOP that reaches skip_to
                        if skip_to is not None:
                            if (packet.size and packet.dts is not None and packet.time_base
                                    and packet.dts * Fraction(packet.time_base) < skip_to):
                                if packet.is_keyframe:
                                    gop = [packet]
                                elif gop:
                                    gop.append(packet)
                                else:
                                    unkeyed += 1
                                if len(gop) <= _SKIP_GOP_MAX and unkeyed <= _SKIP_GOP_MAX:
                                    continue
                            ahead, gop, skip_to = [q for q in gop if q is not packet], [], None
                        try:
                            frames = []
                            for q in ahead:
                                try:
                                    frames += (self._alpha_decoder.decode(q) if self._alpha_decoder is not None
                                               else q.decode())
                                except av.error.InvalidDataError:
                                    self.stats["corrupt_packets"] += 1
                            if self._alpha_decoder is not None:  # an empty packet flushes
                                frames += self._alpha_decoder.decode(packet if packet.size else None)
                            else:
                                frames += packet.decode()
                        except av.error.InvalidDataError as e:
                            # (another file's bytes read where the input was written over: the run fails)
                            self._check_replaced(seen)
                            self.stats["corrupt_packets"] += 1
                            if self.stats["corrupt_packets"] == 1:
                                log.warning("%s: skipping corrupt video packet (pts=%s): %s", self.spec, packet.pts, e)
                            continue
                        if avi_dts is not None and packet.size and packet.dts is not None:
                            heapq.heappush(avi_dts, packet.dts)
                            if avi_sent is not None:
                                avi_sent += 1
                        if frames:
                            sar = _fraction(vs.codec_context.sample_aspect_ratio)
                            sar = sar if sar is not None and sar > 0 else None  # (0:1: unknown, square)
                            if not sar0:
                                sar0.append(sar)
                                self._sar_first = (sar,)
                            elif sar != sar0[0]:
                                for f in frames:
                                    f.opaque = sar or Fraction(1)
                        timed = []  # the frames of this packet (with those held for it), on the file's clock
                        for f in frames:
                            if shift is None:
                                late = f.pts - first_dts if f.pts is not None and first_dts is not None else 0
                                shift = late if late > 0 else 0
                            b_frames = bool(vs.codec_context.has_b_frames)
                            if avi_sent is not None and avi_dts is not None:
                                if b_frames and self.trim_start:
                                    for _ in range(max(0, avi_sent - 1 - self._avi_decoder_delay())):
                                        heapq.heappop(avi_dts)  # leading B-frames the decoder dropped
                                avi_sent = None
                            slot = heapq.heappop(avi_dts) if avi_dts else None
                            if slot is not None and f.pts is not None and b_frames:
                                f.pts = slot
                            elif shift and f.pts is not None:
                                f.pts -= shift
                            while avi_dts is not None and len(avi_dts) > 32:  # chunks that gave no frame
                                heapq.heappop(avi_dts)
                            timed.append(f)
                        if stuck is not None:
                            timed = [g for f in timed for g in stuck.push(f)] + (stuck.end() if not packet.size else [])
                        if placer is not None:
                            # (placed before the window judges them: timed by their index over the
                            # rate, the leading ones fell before it, hours before a clock at 10 h)
                            timed = [g for f in timed for g in placer.push(f)] + (placer.end() if not packet.size else [])
                        if leaps is not None:
                            timed = [g for f in timed for g in leaps.push(f)] + (leaps.end() if not packet.size else [])
                        for f in timed:
                            if f.pts is None and self._window is not None and not self._seeked:
                                # a raw .h264/.hevc stream has no times (nor a stream of a timed
                                # container that has none, see _Untimed): the window goes by the
                                # time the frames are given (_frame_time), their index over the rate
                                self._time_by_index(f, vs, untimed)
                            untimed += 1
                            t_own = _seconds_or_none(f)
                            if session_first is None and t_own is not None:
                                session_first = t_own
                                if watch_head and head is not None:
                                    self._note_headless(head, t_own)
                                watch_head = False
                                # (a stream timed by arrival has no clock of its own to compare:
                                # FFmpeg numbers every session's frames from 0 at a guessed rate, so
                                # a camera's sessions of one length all looked like one file again)
                                replay = (http and not getattr(self, "_by_arrival", False) and before is not None
                                          and before[0] is not None and abs(t_own - before[0]) < _REPLAY_TOL_S)
                            if replay and (t_own is None or before[1] is None or t_own > before[1] + _REPLAY_TOL_S):
                                replay = False  # past the end of the session before: new frames
                            if not replay:
                                attempts = 0
                            ready = timeline.frame(f, self._frame_step())
                            if ready is None:
                                continue  # a resumed file's frames already given out
                            for p in ready:
                                put_aux(p)
                            t = _seconds(f) if self._window is not None else None
                            if t is not None:
                                start = Fraction(self._window[0])
                                if t < start - Fraction(1, 1000000):
                                    held = f  # decoded from the keyframe before the window
                                    continue
                                if held is not None:
                                    h, held = held, None
                                    if t - start > self._hold_gap():
                                        h = opening(h)
                                        if not keep(h, _seconds(h)):
                                            tail = set()
                                            break
                                        yield h
                            if not keep(f, float(t) if t is not None else _seconds_or_none(f)):
                                tail = {s.index for s in container.streams if s.type == "audio"}
                                break  # past the window: read the audio stored after it, then done
                            yield f
                        if tail is not None:
                            tail -= {i for i in tail if aux_last.get(i, -math.inf) >= float(self._cut_at) - 1e-6}
                            if not tail:
                                return
                    if on_screen_at_end(held):
                        h, held = held, None
                        h = opening(h)
                        if keep(h, _seconds(h)):
                            yield h
                    if tail is not None:
                        return  # (the file ended within the tail)
                    if self.kind != "url" or not self.live:
                        self._ended(container, seen, retimed=bool(joins.retimed))
                        return  # clean end of input (an http(s) file ends like a local one)
                    if self._ended_like_a_file(container, session_end):
                        return
                    if _is_hls(container) and _hls_ended(self._target):
                        # the event is over (#EXT-X-ENDLIST): reconnected to, the playlist, now a
                        # file, was read again from its first segment and its end recorded twice
                        log.info("%s ended: its playlist says so (#EXT-X-ENDLIST), so it is not reconnected to",
                                 self.spec)
                        return
                    if replayed_whole():
                        return
                    err = EOFError("live stream ended")
                except (av.error.FFmpegError, OSError) as e:
                    if self._stop.is_set():
                        return
                    if _out_of_memory(e):  # (a frame too large for this process: not a damaged file, nor a drop)
                        raise self._memory_error(e) from e
                    if reads is not None:  # (the frames held until the read failed: the outage began before)
                        timeline.quiet_since(reads.quiet_since())
                    if self.kind == "file":
                        if seen["end"] is None and _index_at_end_in_a_pipe(container, self._target):
                            raise InvalidInputError(
                                f"{self.spec!r} is an .mp4/.mov with its index (moov) at the end: such a file "
                                "cannot be read from a pipe or FIFO",
                                hint="give the file itself, or a streamable copy made with "
                                     "'ffmpeg -i IN -c copy -movflags +faststart OUT.mp4'",
                            ) from e
                        self._check_replaced(seen)  # (cut or written over meanwhile: not a damaged file)
                        # A read error mid-file (truncated / damaged container): keep what we have.
                        self.stats["corrupt_packets"] += 1
                        log.warning("%s: stopped reading at a damaged part of the file: %s", self.spec, e)
                        self._ended(container, seen, retimed=bool(joins.retimed))
                        return
                    if self.kind != "url":
                        # (FFmpeg's words without PyAV's "[Errno 19]"; ENODEV: a camera unplugged)
                        raise SourceClosedError(f"{self.kind} source {self.spec!r} failed: {_ffmpeg_reason(e)}"
                                                + (" (unplugged?)" if getattr(e, "errno", None) == errno.ENODEV
                                                   and self.kind == "device" else "")) from e
                    if (seen["end"] is None and _is_mov(container)
                            and _served_without_ranges(self._target, self._options, self._timeout)):
                        raise InvalidInputError(
                            f"{self.spec!r} is an .mp4/.mov with its index (moov) at the end, and its server "
                            "cannot seek (no Range support)",
                            hint="download it first, or serve a streamable copy made with "
                                 "'ffmpeg -i IN -c copy -movflags +faststart OUT.mp4'",
                        ) from e
                    if replayed_whole():  # (FFmpeg ends an http answer without a length as an I/O error)
                        return
                    err = e
            # network drop: reconnect with exponential back-off, a bounded number of times
            if isinstance(err, av.error.ExitError):
                # (PyAV's read timeout ends the read as FFmpeg's "Immediate exit requested")
                err = f"no data for {self._timeout:g} s"
            if attempts >= self._reconnect:
                raise SourceClosedError(
                    f"{self.spec!r} dropped and did not come back after {self._reconnect} reconnect attempts: {err}"
                )
            delay = self._reconnect_delay * (2**attempts)
            # a reopened live session may start with a burst of its own: ahead of the clock
            # since the first open by the sum of them, never itself. Only the first is judged.
            self._watch_ahead = False
            attempts += 1
            self.stats["reconnects"] += 1
            if self._ahead:
                # (FFmpeg ends such an answer as an I/O error: its end and a drop look the same)
                log.info("%s: the file served without a length ended (%s); opening it again to tell its end from a "
                         "drop (attempt %d/%d)", self.spec, err, attempts, self._reconnect)
            else:
                log.warning("%s dropped (%s); reconnecting in %.1f s (attempt %d/%d)", self.spec, err, delay, attempts,
                            self._reconnect)
            t0 = time.perf_counter()
            stopped = self._stop.wait(delay)
            self.decode_seconds -= time.perf_counter() - t0  # (see _run: a wait, no decoding)
            if stopped:
                return
            if self._container is not None:
                self.aux.retire(self._container)  # closed once the sink took its queued packets
                self._container = None
            try:
                self._container = self._open_container(self._use_nvdec, reopen=True)
            except SourceClosedError as e2:
                err = e2
                self._container = None
            else:
                before = (session_first, session_end) if session_first is not None else before
                session_end = session_first = None
                replay = False
                # the reopened session's clock starts again
                joins = self._joins = _Joins(join_step(self._vstream, self._options), self.spec,
                                             live=self._judged_live())
                if self._ahead:
                    timeline.as_file()
                resume = timeline.reopened()
                if resume is not None and not self._ahead:  # (a server without a length: no Range either)
                    self._seek_to(self._container, resume)

    @staticmethod
    def _time_by_index(f, vs, index: int) -> None:
        """Give frame ``f``, the ``index``-th from the top of a stream without timestamps, a pts as
        :meth:`_frame_time` times such frames: ``index`` over the frame rate (1 s a frame without one)."""
        tb = _fraction(f.time_base) or _fraction(vs.time_base) or Fraction(1, 90000)
        rate = _fraction(vs.guessed_rate) or _fraction(vs.average_rate)
        f.pts = round(index / (rate or 1) / tb)
        f.time_base = tb

    def _frame_step(self) -> Fraction | None:
        """One frame's duration in seconds, from the stream's rate (None if unknown)."""
        m = getattr(self, "metadata", None)
        rate = m.frame_rate if m is not None else None
        return 1 / rate if rate else None

    def _seek_to(self, container, t: Fraction) -> None:
        """Seek a reopened (non-live) input back to the keyframe before ``t`` seconds, so that a
        resumed http(s) file is not read again from its top (the frames up to ``t`` are dropped
        anyway: this only saves the download)."""
        vs = container.streams[self._vstream.index]
        tb = _fraction(vs.time_base)
        if not tb:
            return
        try:
            container.seek(_seek_target(t, tb), stream=vs, backward=True, any_frame=False)
            s0 = container.start_time / 1e6 if container.start_time is not None else 0.0
            self._back_to_a_keyframe(container, vs, float(t), s0)  # (MPEG-TS lands past the keyframe)
        except (av.error.FFmpegError, OSError, OverflowError) as e:
            log.info("%s: cannot seek the reopened input (%s); reading it from the start up to %.3f s",
                     self.spec, e, float(t))

    def _ended_like_a_file(self, container, session_end: float | None) -> bool:
        """A "live" http(s) URL that turns out to be a file has ended, not dropped: reconnecting
        would only replay it from its start, several times over, into the recording. A file
        declares a duration (its data ran up to it; one that ended well short of it was cut off:
        a drop) or, without one (MPEG-TS), was served with a length and read to its end. A live
        stream (rtsp/rtmp/srt/udp, live HLS, an MPEG-TS or MJPEG feed over http) has neither."""
        span = _header_span(container)
        if span is None:
            size = _download_size(self._target, container)
            if size is None:
                return False
            log.info("%s ended: its server gave it as a file (%d bytes), so it is not reconnected to", self.spec, size)
            return True
        if session_end is None:
            return False
        s0 = span[0]
        want, got = span[1] - s0, session_end - s0
        if want - got > 1.0 and got < 0.9 * want:  # ended well short of it: a real drop
            return False
        log.info("%s ended at its declared duration (%.2f s): a file rather than a live stream, so it is not "
                 "reconnected to", self.spec, want)
        return True

    def _ended(self, container, seen: dict, *, retimed: bool) -> None:
        """What a file's end (clean, or at a damaged part) says about what was read: written over
        by another process meanwhile (the run fails), cut short of its header's duration, grown
        while read, frames squeezed by a clock stepping back."""
        self._check_replaced(seen)
        self._check_truncated(container, seen, retimed=retimed)
        self._check_grown(seen)
        self._check_squeezed(seen)

    def _target_ends_short_of(self, last: bytes) -> bool:
        """Whether the local input file does not end with the bytes ``last`` (False if unreadable)."""
        try:
            with open(self._target, "rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() < len(last):
                    return True
                f.seek(-len(last), os.SEEK_END)
                return f.read(len(last)) != last
        except OSError:
            return False

    def _check_truncated(self, container, seen: dict, *, retimed: bool = False) -> None:
        """The input ended well before the duration its header promised (a download or copy cut
        off, a recording whose writer died: a streamable mkv/ts still plays up to the cut): said
        in ``fallbacks``, so a run summary does not pass off a part as the whole. "Well before":
        over 1 s and over 10% short. Measured on every stream's packets, so a video that simply
        ends before its audio (the header's duration is the longest stream's) is not flagged.
        Not judged where a damaged timestamp was ``retimed`` (see _Joins): the header's duration
        (FFmpeg's estimate from the timestamps, for MPEG-TS) came from that very timestamp, and
        the retiming was said already. An animated GIF has no duration in its header: one that
        lacks its trailer byte (``;``) was cut off, and is said so."""
        if (self.kind == "file" and seen["frames"] and "gif" in (container.format.name or "").split(",")
                and self._target_ends_short_of(b";")):
            self._fallback(f"{self.spec} looks cut off (its GIF trailer is missing): {seen['frames']} frames read; "
                           "the output is only those")
        span = _header_span(container)
        if not seen["frames"] and self.kind in ("file", "url") and not self.live and span is not None:
            # not one picture: the run fails (see _first_frame), and says so where the data ends
            # well short of the header (a download cut off inside its first frames), rather than
            # calling it an empty video (a video track with no frames beside a whole audio track)
            s0, header_end = span
            got = seen["end"] - s0 if seen["end"] is not None else 0.0
            if got < 0.9 * (header_end - s0):
                self._cut_before_first = (max(got, 0.0), header_end - s0)
            return
        if (self.kind not in ("file", "url") or self.live or span is None or seen["end"] is None or retimed
                or seen.get("unwrapped")):  # (a false 33-bit wrap undone: the header counts it, see _unwrap_33)
            return
        s0, header_end = span
        if self._window is not None and self._window[1] is not None:
            header_end = min(header_end, self._window[1])
        first = seen["first"] if seen["first"] is not None else s0
        want, got = header_end - first, seen["end"] - first
        if want - got <= 1.0 or got >= 0.9 * want:
            return
        rate = self.metadata.frame_rate if getattr(self, "metadata", None) is not None else None
        expected = f", about {round(want * float(rate))} expected" if rate else ""
        read, size = seen.get("bytes"), self._size_at_open
        if self.kind == "file" and read and size and read < 0.9 * size and size - read > 4096:
            # the reading stopped well before the file's last bytes: a whole file, damaged there
            # (FFmpeg's Matroska reader does not find its way past a broken cluster), not one cut off
            self._fallback(f"{self.spec} is damaged at about {got:.2f} s: FFmpeg cannot read past it (it read "
                           f"{read:,} of the file's {size:,} bytes; {seen['frames']} frames decoded{expected}); "
                           "the output is only that part")
            return
        self._fallback(f"{self.spec} looks truncated: its data ends at {got:.2f} s of the {want:.2f} s its header "
                       f"promises ({seen['frames']} frames decoded{expected}); the output is only that part")

    def _memory_error(self, e: BaseException) -> DecodeError:
        """The decoder could not allocate a frame (FFmpeg's ENOMEM): the machine's limit, said as
        such with the frame's size and this process's address-space limit (``ulimit -v``), where
        one is set. Counted as a corrupt packet, a valid 8K clip was refused as "damaged or
        truncated" under a limit that plain FFmpeg decoded it within (this process holds torch's
        and the models' memory besides)."""
        cc = self._vstream.codec_context
        size = f"a {cc.width}x{cc.height} frame" if cc.width and cc.height else "a frame"
        limit = _address_space_limit()
        within = (f"; this process's address space is limited to {limit / 2**30:.1f} GiB (ulimit -v)"
                  if limit is not None else "")
        return DecodeError(f"out of memory decoding {self.spec!r}: the decoder could not allocate {size} "
                           f"({_ffmpeg_reason(e)}){within}",
                           hint=("raise the limit (ulimit -v), " if limit is not None else "")
                           + "close what else uses the memory, or restore a smaller copy of the input")

    def _check_replaced(self, seen: dict) -> None:
        """Fail (DecodeError, exit 4) where another process replaced, truncated or wrote over the
        local input file while it was read (``cp other.mp4 INPUT`` mid-run): the read went on into
        the other file's bytes, or ended at the new, shorter end, and the run was said to be whole
        with a "damaged" or "grown" input (exit 0), its output half of one video and half garbage.
        Judged at the read's end, and at each packet the decoder refuses (the sooner the better),
        against the file as it was opened: another file at its path (a new inode), fewer bytes
        than then, or other bytes where a sample was taken (the middle of the file as it was: a
        writer that only appends, a recording still going, never changes them, so "grew" stays
        for that, see _check_grown). A file removed meanwhile is not said: the open file is read
        whole all the same. (A rewrite in place that happens to keep the sampled bytes cannot be
        told from an append without reading the file again: not tried.)"""
        how = self._replaced_how()
        if how is None:
            return
        raise DecodeError(f"{self.spec!r} {how} by another process during the run ({seen['frames']} frames read "
                          "before it was noticed); the output would mix two files, or end where it was cut",
                          hint="let the other process finish (or give a copy of the file that nothing writes to), "
                               "then run again")

    def _replaced_how(self) -> str | None:
        """How the local input differs from the file opened (see _check_replaced), or None."""
        was = self._stat_at_open
        if self.kind != "file" or was is None:
            return None
        try:
            now = os.stat(self._target)
        except OSError:
            return None
        if (now.st_dev, now.st_ino) != (was.st_dev, was.st_ino):
            return "was replaced with another file"
        if now.st_size == was.st_size and now.st_mtime_ns == was.st_mtime_ns:
            return None  # (untouched: the bytes are not read again)
        if now.st_size < was.st_size:
            return f"was truncated (to {now.st_size:,} of the {was.st_size:,} bytes it had when the run opened it)"
        if self._sample_at_open is not None:
            at, data = self._sample_at_open
            try:
                again = _sample(self._target, at, len(data))
            except OSError:
                return None
            if again[1] != data:
                return "was overwritten (its bytes changed where they had been read)"
        return None

    def _check_squeezed(self, seen: dict) -> None:
        """Frames whose time is not after the frame before them (see ``keep`` in _decoded): each
        is shown for a tick in the output, so they are as good as lost: said with their number."""
        if not seen["squeezed"]:
            return
        last, t = seen["squeezed_at"]
        self._fallback(f"{self.spec}: {seen['squeezed']} frame(s) come at or before the frame before them (the clock "
                       f"steps back from {last:.3f} s to {t:.3f} s, less than a join: segments joined with an "
                       "overlap?); they keep their times, in sync with the audio, and show for a tick each")

    def _check_grown(self, seen: dict) -> None:
        """A local file that grew while it was read (a recording, download or copy still being
        written: an MPEG-TS has no duration to fall short of) was read only up to where it was when
        the read reached its end: said in ``fallbacks``, so a run does not pass that part off as
        the whole."""
        if self.kind != "file" or self._size_at_open is None:
            return
        try:
            size = os.stat(self._target).st_size
        except OSError:
            return
        if size <= self._size_at_open:
            return
        if not self._unread_after(seen):
            # the writer finished before the read reached the end: its last packets were read
            # (a 20 s recording restored whole was said to be cut, "restore it again")
            log.info("%s grew by %.2f MB while it was read; the read went on to its end", self.spec,
                     (size - self._size_at_open) / 1e6)
            return
        first = seen["first"]
        upto = (f"its first {seen['end'] - first:.2f} s" if first is not None and seen["end"] is not None
                else "its first part")
        self._fallback(f"{self.spec} grew by {(size - self._size_at_open) / 1e6:.2f} MB while it was read (still being "
                       f"written?): the output covers only {upto}, as far as it was when the read reached its end; "
                       "restore it again once it is finished")

    def _unread_after(self, seen: dict) -> bool:
        """Whether the grown file holds packets past the last one read (by byte position): the
        file opened again near the end of what was read. True where it cannot tell."""
        read, end = seen.get("bytes"), seen.get("end")
        if read is None or end is None:
            return True
        try:
            with av.open(self._target) as c:
                vs = c.streams.video[0] if c.streams.video else None
                if vs is not None and vs.time_base:
                    try:
                        c.seek(max(0, int((end - 2.0) / vs.time_base)), stream=vs, backward=True)
                    except (av.error.FFmpegError, OverflowError):
                        pass  # (read from the top: still finds what lies past ``read``)
                for packet in c.demux():
                    if packet.size and packet.pos is not None and packet.pos >= read:
                        return True
        except (av.error.FFmpegError, OSError, ValueError):
            return True
        return False

    def _close_container(self) -> None:
        """Close the input if it is open (a network source's reconnect loop leaves none after a
        failed reopen: a drop before the first frame ended in an AttributeError, exit 1)."""
        c, self._container = self._container, None
        if c is not None:
            c.close()

    def _first_frame(self):
        t0 = time.perf_counter()
        try:
            first = next(self._frames)
        except StopIteration:
            past_end = self._past_end() if self.trim_start else None  # (reads the header: before the close)
            cut = self._cut_before_first
            self._close_container()
            if self.stats["corrupt_packets"]:
                raise DecodeError(
                    f"{self.spec!r}: no decodable video frame ({self.stats['corrupt_packets']} corrupt packets)",
                    hint="the video data is damaged or truncated",
                ) from None
            if past_end is not None:
                if cut is not None and self.trim_start < cut[1]:
                    # past where the data ends, not past the end the header (and `info`) gives
                    raise InvalidInputError(
                        f"start={self.trim_start:g} s is past the end of the data in {self.spec!r}: it ends at {cut[0]:.2f} s "
                        f"of the {cut[1]:.2f} s its header promises",
                        hint=f"the file looks cut off or damaged; give a start before {cut[0]:.2f} s, or get it "
                        "again", option="start") from None
                raise past_end from None
            # an empty video track is the input's fault (exit 2), not a decoder's failure
            if cut is not None:
                # a download cut off (or damaged) before its first picture: not an empty video
                raise InvalidInputError(
                    f"{self.spec!r}: no frame could be read: its data ends at {cut[0]:.2f} s of the {cut[1]:.2f} s "
                    "its header promises", hint="the file looks cut off or damaged before its first picture; "
                    "get it again") from None
            raise InvalidInputError(f"{self.spec!r}: the video stream contains no frames",
                                    hint="the file has no pictures to restore; check it plays as a video") from None
        except BaseException:
            self._close_container()
            raise
        self.decode_seconds += time.perf_counter() - t0  # (a source that opens: see _run)
        if self._use_nvdec and first.format.name != "cuda":
            self._fallback(f"NVDEC could not decode {self._vstream.codec_context.name}; FFmpeg decoded on the CPU")
        return first

    def _stream_sar(self) -> Fraction | None:
        """The stream's pixel shape: the container's where it has one of its own, else the first
        frame's, else :func:`_sample_aspect_ratio`. FFmpeg's probe reads ahead (~0.3 s of a TS)
        and keeps the last shape it decoded: a broadcast that went from HD (1024x576, square
        pixels) to PAL 16:9 (720x576 at 64:45) within it had the whole video, its first part's
        size, taken at 64:45 (the first part written stretched 1.42x). A first frame whose
        decoder says no shape (0:1) has square pixels, as the frames after it are measured
        against in _decoded (a decoder that never says one keeps the probe's). A container's own
        (mp4 ``pasp``, mkv display size, AVI ``vprp``) stays over the pictures', as in players:
        it is told by differing from the probe's, or by a container that has the field (where
        the two agree, it may be the container's)."""
        vs = self._vstream
        sar = _sample_aspect_ratio(vs)
        if self._sar_first is None or self._sar_first[0] == sar:
            return sar
        guess = _fraction(vs.sample_aspect_ratio)
        if guess is not None and guess > 0 and (
                guess != self._sar_probed or set(self._container.format.name.split(",")) & _CONTAINER_SAR):
            return guess
        return self._sar_first[0]

    def _build_metadata(self, first, count_frames: bool) -> StreamMetadata:
        c = self._container
        vs = self._vstream
        cc = vs.codec_context
        pix_fmt = first.sw_format.name if first.format.name == "cuda" and first.sw_format else first.format.name
        field_order = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}.get(cc.field_order, "unknown")
        if field_order == "unknown" and not first.interlaced_frame:
            field_order = "progressive"
        shown = _shown_field_first(first) if first.interlaced_frame else None
        if shown is not None and field_order in ("unknown", "tt", "bb", "tb", "bt") and (
                field_order == "unknown" or _SHOWN_FIRST[field_order] != shown):
            # the pictures' own flag is what players and bwdif go by: H.264 in MPEG-TS (no pic_struct)
            # had the parser's guess "tt" over bottom-first frames, and --deinterlace off wrote them
            # top first (every field pair played in the wrong order)
            if field_order != "unknown":
                log.info("%s: the stream says %s field first, its pictures %s: their order is kept", self.spec,
                         "top" if _SHOWN_FIRST[field_order] == "t" else "bottom", "top" if shown == "t" else "bottom")
            field_order = "tt" if shown == "t" else "bb"

        def info(s) -> AuxStreamInfo:
            cc2 = s.codec_context
            return AuxStreamInfo(
                # canonical (descriptor) name, e.g. "subrip" not the decoder's "srt": muxers list these
                index=s.index, kind=s.type,
                codec=(getattr(cc2.codec, "canonical_name", None) or cc2.name) if cc2 is not None else _data_codec(s),
                time_base=_fraction(s.time_base),
                sample_rate=getattr(cc2, "sample_rate", None) if s.type == "audio" else None,
                channels=getattr(cc2, "channels", None) if s.type == "audio" else None,
                language=s.metadata.get("language"),
            )

        frame_count = None
        if count_frames and self.kind == "file":
            frame_count = count_video_packets(self._target, options=self._options)
        rate = _rate_of(vs, self._options)
        matrix = display_matrix(first)
        orientation = display_orientation(first.rotation, matrix)
        # a mirrored display (selfie cameras, ``-display_hflip``): ``rotation`` is only the turn
        # that follows the mirror; the raw matrix goes with it so a sink can write it back as is
        mirror = {"mirror": "horizontal", "display_matrix": tuple(matrix)} if orientation[1] else {}
        span = _header_span(c)
        try:
            vend = _stream_end(vs)
        except (AttributeError, ValueError, TypeError):
            vend = None
        video_span = round(vend - span[0], 6) if span and vend is not None and vend > span[0] else None
        return StreamMetadata(
            width=first.width,
            height=first.height,
            pix_fmt=pix_fmt,
            codec=cc.name,
            time_base=_fraction(vs.time_base) or (1 / rate if rate else Fraction(1, 1000)),
            frame_rate=rate,
            duration_s=round(span[1] - span[0], 6) if span else None,  # (microseconds, as FFmpeg gives them)
            video_duration_s=video_span,
            frame_count=frame_count,
            frame_count_header=vs.frames or None,
            rotation=orientation[0],
            color_range=COLOR_RANGES.get(int(first.color_range), "unspecified") if not pix_fmt.startswith("yuvj") else "full",
            color_space=COLOR_SPACES.get(int(first.colorspace), "unspecified"),
            color_primaries=COLOR_PRIMARIES.get(int(first.color_primaries), "unspecified"),
            color_trc=COLOR_TRCS.get(int(first.color_trc), "unspecified"),
            interlaced=field_order,
            sample_aspect_ratio=self._stream_sar(),
            container=c.format.name,
            kind=self.kind,
            live=self.live,
            start_time_s=float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else None,
            audio=tuple(info(s) for s in c.streams if s.type == "audio"),
            subtitles=tuple(info(s) for s in c.streams if s.type == "subtitle"),
            data=tuple(info(s) for s in c.streams if s.type not in ("audio", "subtitle", "video")),
            extra={"colorspace_id": int(first.colorspace), "color_range_id": int(first.color_range),
                   "color_primaries_id": int(first.color_primaries), "color_trc_id": int(first.color_trc),
                   # what the frames were really converted with (untagged: the players' guess);
                   # sinks encode with these and tag them
                   "matrix_id": decode_colorspace(first.colorspace, first.width, first.height),
                   "range_id": decode_range(pix_fmt, int(first.color_range)),
                   "bits_per_component": bits_per_component(pix_fmt),
                   # where the chroma samples sit (FFmpeg's names), for the sink to tag; None: not
                   # known. PyAV 18 exposes no chroma location (frame or codec context), so only
                   # what the codec fixes is known: JPEG's centred chroma (JFIF). An H.264/HEVC VUI
                   # value (HDR10's "topleft") would need the bitstream read, and is not.
                   "chroma_location": "center" if cc.name in ("mjpeg", "mjpegb") else None,
                   # the mean rate over the file (frame_rate is FFmpeg's guess: a VFR Matroska
                   # file's is its 1000 ticks a second), for an AVI's frame grid (avi_frame_grid)
                   "average_rate": _fraction(vs.average_rate),
                   # HDR10's mastering display and content light level, when the stream has them
                   **hdr_static_metadata(first), **mirror,
                   # Dolby Vision's configuration record (not kept: the sink and info say so)
                   **({"dolby_vision": dv} if (dv := dolby_vision(c, vs)) else {})},
        )

    # --- thread ------------------------------------------------------------------------
    def __enter__(self) -> "VideoSource":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        if self._closed:
            raise InvalidInputError("source is closed; open a new one")
        if self._started:
            return
        self._started = True
        self._thread = threading.Thread(target=self._run, name=f"decode:{Path(self.spec).name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        ring = self.ring
        index = 0
        try:
            frames = self._frames
            pending = self._pending
            self._pending = None
            while True:
                if pending is not None:
                    f, pending = pending, None
                else:
                    t0 = time.perf_counter()
                    f = next(frames, None)
                    self.decode_seconds += time.perf_counter() - t0  # (less a reconnect's back-off: _decoded)
                    if f is None:
                        break
                if self._stop.is_set():
                    break
                if self._watch_ahead:
                    self._check_ahead(self._frame_time(f, index))
                if self.paced:
                    if self._pacer is None:
                        rate = self.metadata.frame_rate
                        self._pacer = _Pacer(self._stop.wait, name=self.spec,
                                             interval=1.0 / float(rate) if rate else None)
                        log.info("%s: a %s source read live: frames paced at their own timestamps (like ffmpeg -re)",
                                 self.spec, self.kind)
                    if not self._pacer(self._frame_time(f, index)):
                        break
                if self._max_pixels is not None and f.width * f.height > self._max_pixels:
                    # a joined file or an adaptive stream that switches to huge frames mid-way: the
                    # header's size was checked at the open, each frame's is here (the server's
                    # memory budget: a 7000x7000 part was restored at ~1 GB a frame)
                    from stream_gpen.errors import PayloadTooLargeError

                    raise PayloadTooLargeError(f"video frame {index} is {f.width}x{f.height} = {f.width * f.height} "
                                               f"pixels, over the limit of {self._max_pixels}")
                t0 = time.perf_counter()
                self._emit(f, index)
                self.decode_seconds += time.perf_counter() - t0  # (less the wait for a slot: _emit)
                index += 1
            ring.finish()
        except _RingClosed:
            ring.finish()
        except BaseException as e:  # hand everything (incl. MemoryError) to the caller
            ring.fail(e)
        finally:
            with self._exit_lock:
                self._thread_done = True
                left_behind = self._left_behind
            if left_behind:  # close() did not wait for this thread (see STOP_WAIT_S): the input is ours
                self.aux.close()
                self._close_input()

    def _check_ahead(self, t: float) -> None:
        """Whether the live http(s) source or pipe, at frame time ``t``, has run ahead of the wall
        clock since it was opened by over ``_AHEAD_S`` and at twice its rate: a file served without
        a length (chunked, or until the connection closes), which arrives in one burst, or a whole
        file written into a pipe or FIFO (``cat a.mp4 > fifo``: as fast as the reader takes it,
        where a live producer writes in real time). Measured from
        the open, not the first frame read here: a live stream's frames buffered while the models
        loaded are behind that clock, never ahead of it. Such a source is paced from here on (else
        the ring keeps one frame per burst) and, reopened after its end, resumes after the last
        frame given out like an offline file (else its replay went into the output). Judged in
        the first session only (see the reconnect in _decoded)."""
        if self._ahead_from is None:
            self._ahead_from = (self._opened_wall, t)
            return
        w0, t0 = self._ahead_from
        span, wall = t - t0, time.monotonic() - w0
        if span - wall > _AHEAD_S and span > 2 * wall:
            self._watch_ahead = False
            self._ahead = self.paced = True
            if self._joins is not None:
                self._joins.as_file()  # (its pauses are the file's, however far ahead of the clock)
            what = "a whole file written into the pipe" if self._pipe else "a file served without a length"
            log.info("%s: %.1f s of video arrived in %.1f s: %s rather than a live stream; paced at its own rate "
                     "from here on", self.spec, span, wall, what)

    def _frame_time(self, f, index: int) -> float:
        """Seconds on the source's timeline: the pts, else the index over the frame rate."""
        tb = _fraction(f.time_base) or self.metadata.time_base
        if f.pts is not None:
            return float(f.pts * tb)
        if self.metadata.frame_rate:
            return float(index / self.metadata.frame_rate)
        return float(index)

    def _emit(self, f, index: int) -> None:
        ring = self.ring
        if getattr(self, "_by_arrival", False):
            now = time.monotonic()
            if self._arrival0 is None:
                self._arrival0 = now
            pts = round((now - self._arrival0) * 90000)
            if self._arrival_last is not None and pts <= self._arrival_last:
                pts = self._arrival_last + 90  # (a burst: a millisecond apart, in order)
            self._arrival_last = pts
            f.pts, f.time_base, f.duration = pts, Fraction(1, 90000), 0
        t = self._frame_time(f, index)
        t0 = time.perf_counter()
        slot = ring.acquire(drop_stale=self.live)
        self.decode_seconds -= time.perf_counter() - t0  # (waiting for the consumer is no decoding)
        self.stats["dropped"] = ring.dropped
        self.stats["decoded"] += 1
        if slot is None:
            return
        hi = None
        yuv = None
        try:
            if f.format.name == "cuda":
                y = torch.from_dlpack(f.planes[0])
                uv = torch.from_dlpack(f.planes[1])
                sw = _sw_format(f)
                if bits_per_component(sw) > 8 and y.dtype == torch.uint8:
                    # P010/P016 planes exported as bytes: two per sample, little-endian
                    y, uv = (t.squeeze(-1) if t.ndim == 3 and t.shape[-1] == 1 else t for t in (y, uv))
                    y, uv = y.view(torch.uint16), uv.view(torch.uint16)
                # the decoder recycles its surfaces: convert into our slot at once
                with torch.cuda.device(ring.device):
                    k = self._rot_k
                    hi_out = ring.hi_slots is not None
                    shape = (f.width, f.height) if k % 2 else (f.height, f.width)  # after rotation
                    sar = self._frame_sar(f)
                    direct = not k and not self._mirror and shape == (ring.height, ring.width) and sar is None
                    if hi_out:
                        dst = ring.hi_slots[slot] if direct else torch.empty(
                            (f.height, f.width, 3), dtype=torch.uint16, device=ring.device)
                    else:
                        dst = ring.slots[slot] if direct else torch.empty(
                            (f.height, f.width, 3), dtype=torch.uint8, device=ring.device)
                    nv12_to_rgb(y, uv, dst, colorspace=decode_colorspace(f.colorspace, f.width, f.height),
                                full_range=is_full_range(sw, f.color_range), bits=bits_per_component(sw))
                    target = ring.hi_slots if hi_out else ring.slots
                    if not direct:
                        target[slot].copy_(self._fit(orient(dst, k, self._mirror), index, sar))
                    if hi_out:
                        hi = ring.hi_slots[slot]
                        rgb8_from_rgb16(hi, out=ring.slots[slot])
                    torch.cuda.current_stream(ring.device).synchronize()
                img = ring.slots[slot]
            elif ring.hi_slots is not None:
                # every frame of the stream goes through rgb48 (a rare 8-bit frame mid-stream too)
                if not self._rot_k and not self._mirror and (f.height, f.width) == (ring.height, ring.width) \
                        and self._frame_sar(f) is None:
                    # rescaled where the slot's picture goes (as the 8-bit path below)
                    av_to_rgb_numpy(f, high=True, out=ring.hi_host_slot(slot).numpy())
                    img, hi = ring.write_hi_slot(slot, ring.hi_host_slot(slot))
                else:
                    rgb16 = torch.from_numpy(av_to_rgb_numpy(f, high=True))
                    if self._rot_k or self._mirror:
                        rgb16 = orient(rgb16, self._rot_k, self._mirror)
                    img, hi = ring.write_hi_slot(slot, self._fit(rgb16, index, self._frame_sar(f)))
                yuv = self._as_decoded(f)
            elif not self._rot_k and not self._mirror and (f.height, f.width) == (ring.height, ring.width) \
                    and self._frame_sar(f) is None:
                # converted where the slot's picture goes (the slot, or a CUDA ring's staging buffer)
                av_to_rgb_numpy(f, out=ring.host_slot(slot).numpy())
                img = ring.write_slot(slot, ring.host_slot(slot))
                yuv = self._as_decoded(f)
            else:
                rgb = torch.from_numpy(av_to_rgb_numpy(f))
                if self._rot_k or self._mirror:  # mirror, then counter-clockwise, as the display matrix says
                    rgb = orient(rgb, self._rot_k, self._mirror)
                img = ring.write_slot(slot, self._fit(rgb, index, self._frame_sar(f)))
                yuv = self._as_decoded(f)
            alpha = self._alpha(f, index, high=hi is not None) if self.has_alpha else None
            if self._watch_alpha and _transparent(f):
                self._watch_alpha = False
                self._fallback(f"{self.spec}: frame {index} has transparent pixels, but the first {_ALPHA_PEEK} were "
                               "opaque and the output was set up without transparency: it is dropped")
        except BaseException:
            ring.unfill(slot)
            raise
        corrupt = bool(getattr(f, "is_corrupt", False))
        if corrupt:
            self.stats["corrupt_frames"] += 1
        tb = _fraction(f.time_base) or self.metadata.time_base
        ring.publish(Frame(index=index, pts=f.pts, time_base=tb, time=t, _image=img, _ring=ring, slot=slot, corrupt=corrupt,
                             _hi=hi, alpha=alpha, duration=float(f.duration * tb) if f.duration else None, yuv=yuv))

    def _as_decoded(self, f):
        """``f`` itself, for :attr:`Frame.yuv`, where its picture is the frame's as decoded: planar
        YUV (8 to 12 bits), neither turned nor mirrored, nor fitted into another size or pixel
        shape, and not transparent; else None."""
        if (f.format.name not in _AS_DECODED or self._rot_k or self._mirror or self.has_alpha
                or (f.height, f.width) != (self.ring.height, self.ring.width) or self._frame_sar(f) is not None):
            return None
        return f

    def _alpha(self, f, index: int, *, high: bool) -> torch.Tensor:
        """The frame's alpha plane, upright and fitted like its picture, on the CPU (sinks read it
        there; it never goes through the model)."""
        if f.format.name == "cuda" or not any(c.is_alpha for c in f.format.components):
            a = torch.full((f.height, f.width), 65535 if high else 255,  # opaque (a frame without one)
                           dtype=torch.uint16 if high else torch.uint8)
        else:
            a = torch.from_numpy(np.ascontiguousarray(f.to_ndarray(format="rgba64le" if high else "rgba")[..., 3]))
        if self._rot_k or self._mirror:
            a = orient(a, self._rot_k, self._mirror)
        return self._fit(a[..., None].expand(*a.shape, 3), index, self._frame_sar(f))[..., 0].contiguous()

    def _frame_sar(self, f) -> Fraction | None:
        """The pixel shape of frame ``f`` where the bitstream's changed since the first frame
        (see _decoded), as the frame is turned; None: the stream's."""
        sar = f.opaque if isinstance(f.opaque, Fraction) else None
        return 1 / sar if sar is not None and self._rot_k % 2 else sar

    def _fit(self, rgb: torch.Tensor, index: int, sar: Fraction | None = None) -> torch.Tensor:
        """A picture whose size or pixel shape (``sar``; None: the stream's) differs from the
        stream's (a resolution or 4:3 <-> 16:9 change mid-stream: TV and IPTV recordings,
        concatenated clips, adaptive streams) scaled to fit the ring's size with its display
        aspect kept, centred on black, like a player letterboxes or pillarboxes it: the output
        keeps one size and pixel shape, every frame is kept, and faces are not squashed. Said once
        per new size and pixel shape."""
        H, W = self.ring.height, self.ring.width
        h, w = int(rgb.shape[0]), int(rgb.shape[1])
        S = self.metadata.sample_aspect_ratio or Fraction(1)
        sar = sar or S
        if (h, w) == (H, W) and sar == S:
            return rgb
        # in display units (a stored pixel is SAR wide): the frame's picture into the stream's
        s = min(W * S / (w * sar), Fraction(H, h))
        nw, nh = max(1, min(W, round(w * sar * s / S))), max(1, min(H, round(h * s)))
        if (w, h, sar) not in self._fitted:
            self._fitted.add((w, h, sar))
            if sar == S:
                self._fallback(f"frame size changed mid-stream at frame {index}: {w}x{h} pictures are scaled to "
                               f"{nw}x{nh} and letterboxed into the stream's {W}x{H} (aspect ratio kept)")
            else:
                self._fallback(f"picture shape changed mid-stream at frame {index}: {w}x{h} pictures of pixel aspect "
                               f"{sar} are scaled to {nw}x{nh} and centred on black in the stream's {W}x{H} of pixel "
                               f"aspect {S} (display aspect kept: {float(w * sar / h):.2f}:1)")
        x = rgb.permute(2, 0, 1)[None].to(torch.float32)
        x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False,
                                            antialias=nh < h or nw < w)
        top = 65535 if rgb.dtype == torch.uint16 else 255
        out = torch.zeros((H, W, 3), dtype=rgb.dtype, device=rgb.device)
        y0, x0 = (H - nh) // 2, (W - nw) // 2
        out[y0 : y0 + nh, x0 : x0 + nw] = x[0].permute(1, 2, 0).round_().clamp_(0, top).to(rgb.dtype)
        return out

    def __iter__(self) -> "VideoSource":
        return self

    def __next__(self) -> Frame:
        if not self._started:
            raise InvalidInputError("use the source inside `with source:` (which starts the decode thread)")
        frame = self.ring.get()
        self.stats["dropped"] = self.ring.dropped
        return frame

    def timestamp_repairs(self, *, joins: bool = True) -> list[str]:
        """The repairs the read made to the input's timestamps, in words (empty: none): recordings
        joined (the clock jumping back; left out with ``joins=False``), damaged timestamps
        retimed, frames without one placed. The output has the repaired times; a stream copy of
        the input (``--copy-if-no-faces``) would have the damaged ones, so the re-encode is kept
        where this is not empty. The joins the copy makes itself, as the read does
        (:func:`on_one_clock`): the caller asks without them."""
        stats = self.stats
        said = []
        if joins and self._joins is not None and self._joins.joins:
            said.append(f"{joins.joins} jump(s) back of the clock, as in recordings joined into one file")
        retimed = (self._joins.retimed if self._joins is not None else 0) + stats.get("retimed_frames", 0)
        if retimed:
            said.append(f"{retimed} damaged timestamp(s) retimed")
        if stats.get("untimed_frames"):
            said.append(f"{stats['untimed_frames']} frame(s) without a timestamp placed")
        return said

    def release_input(self) -> bool:
        """Close the input file now, once it has been read to its end (the decode thread is
        done): on Windows a file still open cannot be replaced, and an in-place run
        (``enhance clip.mp4 -o clip.mp4 --overwrite``) renames its output over its own input.
        False (nothing done) while the thread still runs."""
        if self._thread is not None and self._thread.is_alive():
            return False
        c, self._container = self._container, None
        if c is not None:
            try:
                c.close()
            except Exception as e:  # noqa: BLE001 - as close() says it
                log.warning("closing %s: %s", self.spec, e)
        return True

    #: seconds close() waits for the decode thread of a network or device input before leaving
    #: it behind: a stalled peer holds it in a read for up to ``timeout_s`` (10 s), which FFmpeg
    #: cannot be made to give up from here (PyAV's interrupt callback only knows that timeout);
    #: the stop of a recording (Ctrl-C, ``--seconds``) would wait that long to finish its outputs
    STOP_WAIT_S = 0.5

    def close(self) -> None:
        """Stop the decode thread and close the input. A file's thread is waited for; one reading
        a network or device input stuck on a stalled peer is left behind after
        :attr:`STOP_WAIT_S`: it ends, and closes the input itself, when its read times out."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self.ring.close()
        if self._thread is not None:
            wait = 30.0 if self.kind in ("file", "lavfi") else self.STOP_WAIT_S
            self._thread.join(timeout=wait)
            with self._exit_lock:
                # (the lock: the thread either sees the flag and closes the input, or has finished)
                self._left_behind = not self._thread_done
            if self._left_behind:
                if self.kind in ("file", "lavfi"):
                    log.warning("decode thread for %s did not stop within %g s", self.spec, wait)
                else:
                    log.info("%s: its read is stuck on a stalled peer; not waiting for its %g s timeout",
                             self.spec, self._timeout)
                return
        self.aux.close()
        self._close_input()

    def _close_input(self) -> None:
        try:
            if self._container is not None:
                self._container.close()
        except Exception as e:  # closing a broken network input can itself fail; report, go on
            log.warning("closing %s: %s", self.spec, e)
        if self.stats["corrupt_packets"] or self.stats["corrupt_frames"]:
            log.warning("%s: %d corrupt packets skipped, %d damaged frames concealed",
                        self.spec, self.stats["corrupt_packets"], self.stats["corrupt_frames"])


#: the note on closed captions in the video (said once, when the first frame carrying them is
#: decoded): the sink's restored frames are new pictures, and PyAV cannot attach side data to them
#: (a stream copy, ``--copy-if-no-faces``, keeps them: the note is withdrawn then)
CAPTIONS_NOTE = ("closed captions carried in the video (CEA-608/708) are not kept in the output; "
                 "extract them first (e.g. ccextractor) to keep them as subtitles")


def _out_of_memory(e: BaseException) -> bool:
    """Whether FFmpeg's (PyAV's) error ``e`` is an allocation failure (ENOMEM: ``av.error.MemoryError``)."""
    return isinstance(e, MemoryError) or getattr(e, "errno", None) == errno.ENOMEM


def _address_space_limit() -> int | None:
    """This process's address-space limit in bytes (RLIMIT_AS, ``ulimit -v``), or None where there
    is none (or no such limit on this system)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, AttributeError, OSError, ValueError):  # (Windows)
        return None
    return None if soft == resource.RLIM_INFINITY or soft < 0 else int(soft)


def _sample(path: str, at: int, size: int = 4096) -> tuple[int, bytes]:
    """``(at, the up to size bytes of the file at path from at)``."""
    with open(path, "rb") as f:
        f.seek(at)
        return at, f.read(size)


def _seconds(f) -> Fraction | None:
    """A decoded frame's time in seconds (exact), None without a pts or time base."""
    return f.pts * Fraction(f.time_base) if f.pts is not None and f.time_base else None


def _seconds_or_none(f) -> float | None:
    t = _seconds(f)
    return float(t) if t is not None else None


def _sw_format(f) -> str:
    """The pixel format of a decoded frame's data (for NVDEC frames: of the surface, e.g. p010le)."""
    if f.format.name == "cuda":
        return f.sw_format.name if f.sw_format else "nv12"
    return f.format.name


def _p01x(f) -> bool:
    """An NVDEC surface layout :func:`nv12_to_rgb` converts: NV12 or P010/P012/P016 (MSB-aligned)."""
    return _sw_format(f) in ("nv12", "p010le", "p012le", "p016le")


def _deinterlaced(graph, frames, shape: tuple[str, int, int]) -> Iterator["av.VideoFrame"]:
    """Frames through a configured one-in-one-out filter graph for frames of ``shape`` (pixel
    format, width, height), with their own timestamps (the filter doubles the time base for field
    rate; each output takes its input's pts back)."""
    times: collections.deque = collections.deque()

    def drain():
        while True:
            try:
                out = graph.vpull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            pts, tb, dur = times.popleft() if times else (None, None, 0)
            out.pts = pts
            if tb is not None:
                out.time_base = tb
                out.duration = dur
            yield out

    for f in frames:
        if (f.format.name, f.width, f.height) != shape:
            # a mid-stream format change (rare: a resolution switch): pass through as decoded
            yield from drain()
            yield f
            continue
        times.append((f.pts, f.time_base, f.duration))
        graph.vpush(f)
        yield from drain()
    graph.vpush(None)
    yield from drain()


def _pixels(stream) -> int:
    cc = stream.codec_context
    return int(getattr(cc, "width", 0) or 0) * int(getattr(cc, "height", 0) or 0) if cc is not None else 0


def _pictures(container) -> list:
    """The video streams that are not cover art (an attached picture)."""
    return [s for s in container.streams.video if not int(s.disposition) & int(av.stream.Disposition.attached_pic)]


_PICTURE_DEMUXERS = {"jpeg_pipe": ".jpg", "png_pipe": ".png", "webp_pipe": ".webp", "bmp_pipe": ".bmp",
                     "tiff_pipe": ".tif"}
#: the major brands of a HEIF (HEIC) or AVIF picture file: FFmpeg's mov demuxer reads its image
#: items (and an animated AVIF's track) as video streams. A sequence-only HEIF ("msf1", "hevc")
#: holds no picture Pillow reads and stays a video.
_HEIF_BRANDS = {"heic", "heix", "heim", "heis", "mif1", "mif2", "avif", "avis", "avio"}


def _photo_extension(container, path: str) -> str | None:
    """The photo extension of a file FFmpeg reads as a picture of a format restored as a photo, or
    None: a still picture (its ``*_pipe`` demuxers), a HEIC or AVIF (an animated AVIF too: named
    ``.avif`` its frames are restored as a photo's), an animated PNG (named ``.png`` or ``.apng``,
    likewise), a GIF of one frame (an animated GIF is a video, under any name)."""
    demuxer = (container.format.name or "").split(",")[0]
    if demuxer in _PICTURE_DEMUXERS:
        return _PICTURE_DEMUXERS[demuxer]
    if demuxer == "apng":
        return ".png"
    if demuxer == "mov":
        meta = container.metadata or {}
        major = str(meta.get("major_brand", "")).strip().lower()
        if major not in _HEIF_BRANDS:
            return None
        brands = str(meta.get("compatible_brands", "")).lower()
        return ".avif" if major.startswith("avi") or "avif" in brands else ".heic"
    if demuxer == "gif":
        from PIL import Image

        try:
            with Image.open(path) as im:
                return ".gif" if im.format == "GIF" and not getattr(im, "is_animated", False) else None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            return None  # (read as a video, which says what is wrong with it)
    return None


def main_video_stream(container):
    """The largest video stream (by pixel count; the first of equals) that is not cover art, or
    None. A file with several (a dashcam's front and rear camera, a small preview track before the
    main picture) is restored in its main picture, as FFmpeg and players choose it, not in
    whichever track happens to come first. A stream whose header counts one frame (a still in a
    track of its own, not marked as cover art) yields to any moving one, however large it is."""
    streams = _pictures(container)
    return max(streams, key=lambda s: (s.frames != 1, _pixels(s))) if streams else None


def clock_steps_back(path: str, *, fmt: str | None = None, step: Fraction = _JOIN_MIN_S, samples: int = 24,
                     limit: int = 400) -> bool:
    """Whether the video timestamps of the MPEG-TS/PS file at ``path`` go back by more than
    ``step`` seconds somewhere: recordings joined end to end (``cat a.ts b.ts``, AVCHD ``.MTS``
    segments), each on its own clock, where a seek by time lands in the wrong recording and the
    header's duration measures none of it. Found without reading the file through: the first
    video dts after each of ``samples`` byte positions spread over it (up to ``limit`` packets
    each), one going back behind an earlier one. False where it cannot tell (a join between two
    samples whose clocks do not overlap them is not seen: it does not mislead a seek either)."""
    try:
        size = os.path.getsize(path)
        with av.open(ffmpeg_local(path), format=fmt) as c:
            vs = main_video_stream(c)
            if vs is None or not vs.time_base or size <= 0:
                return False
            tb = Fraction(vs.time_base)
            top = None
            for k in range(samples):
                c.seek(k * size // samples, unsupported_byte_offset=True)
                t = None
                for n, p in enumerate(c.demux(vs)):
                    if p.size and p.dts is not None:
                        t = p.dts * tb
                        break
                    if n >= limit:
                        break
                if t is None:
                    continue
                if top is not None and t < top - step:
                    return True
                top = t if top is None else max(top, t)
    except (av.error.FFmpegError, OSError, ValueError):
        return False
    return False


def data_ends_short(path: str, *, limit: int = 3000) -> tuple[float | None, float, float] | None:
    """A local file whose data ends well short of the duration its header promises (a download or
    copy cut off: a faststart mp4, an mkv or WebM keep their whole header), found without reading
    it through: one seek to the last point where data must be for a run not to call the file
    truncated (as ``_check_truncated`` judges it: over 1 s and over 10% short), and the packets of
    every stream there (a video that ends before its audio is not short). ``(data_end, probe,
    header_span)`` in seconds from the start (``data_end`` None where not one packet was left at
    the probe), or None: whole, no duration in its header, or not known within ``limit`` packets."""
    with av.open(ffmpeg_local(path)) as c:
        span = _header_span(c)
        if span is None:
            return None
        s0, end = span
        want = end - s0
        if want <= 1.0:
            return None
        probe = s0 + min(want - 1.0, 0.9 * want)
        try:
            c.seek(int(probe * 1e6), backward=True, any_frame=True)
        except av.FFmpegError:
            return None
        seen, last = 0, None
        try:
            for p in c.demux():
                tb = p.stream.time_base
                if p.pts is None or not tb:
                    continue
                t = float((p.pts + (p.duration or 0)) * tb)
                if t >= probe:
                    return None
                last = t if last is None else max(last, t)
                seen += 1
                if seen >= limit:
                    return None
        except av.FFmpegError:  # (the data stops inside a packet)
            pass
        return (None if last is None else max(last - s0, 0.0)), probe - s0, want


def count_video_packets(path: str, options: dict | None = None) -> int:
    """Exact frame count by demuxing (no decoding): one packet per frame for every codec we meet."""
    with av.open(ffmpeg_local(path) if "://" not in str(path) else path, options=dict(options or {})) as c:
        vs = main_video_stream(c) or c.streams.video[0]
        return sum(1 for p in c.demux(vs) if p.size)
