"""Text subtitles between containers: SubRip/ASS/WebVTT <-> mov_text (tx3g), cue by cue.

MP4/MOV hold text subtitles only as ``mov_text``; Matroska takes SubRip/ASS/WebVTT but not
``mov_text``; WebM takes only WebVTT. A text stream the output cannot copy is decoded with FFmpeg's
own subtitle decoder (every text decoder yields ASS events, so one path serves all inputs) and
encoded with FFmpeg's encoder for the codec the container does hold. The encoders keep what the
target can express (mov_text: bold/italic/underline/colour as style boxes; SubRip/WebVTT:
``<i>``/``<b>``/``<u>``) and drop the rest (positioning, karaoke, drawing tags); ``\\N`` becomes a
newline. Cue times are the input packets' own, in the input time base; the muxer rescales them.

Bitmap subtitles (DVD, PGS, DVB) carry pictures, not text: there is nothing to convert them to
for a container that cannot copy them, so the sink drops them and says so.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from fractions import Fraction

import av
from av.subtitles.subtitle import SubtitleSet

from stream_gpen.io._tags import language_for

log = logging.getLogger(__name__)

# Which text codec each muxer holds, checked in this order against the muxer's names.
_TEXT_TARGETS = (("webm", "webvtt"), ("matroska", "subrip"), ("mp4", "mov_text"), ("mov", "mov_text"),
                 ("ipod", "mov_text"), ("3gp", "mov_text"), ("3g2", "mov_text"))
# Text by FFmpeg's descriptor, but not cue text: the CEA-608 decoder emits roll-up/paint-on
# screen states (timed by the caption clock, not by packet durations), which would become a
# flicker of fragments; such streams stay dropped-and-reported.
_NOT_CONVERTED = ("eia_608",)
# Used when a decoder offers no ASS header (FFmpeg's text decoders all do; this is a safety net:
# the mov_text/SubRip/WebVTT encoders refuse to open without one).
_DEFAULT_ASS_HEADER = (
    "[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
    "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, "
    "Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
    "Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
    "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
).encode()
# An ASS event of unknown length (no packet duration, no end time from the decoder) lasts until
# the next cue; the last one gets this long, like a player would show it.
_OPEN_CUE_S = Fraction(5)


def is_text_subtitle(codec: str | None) -> bool:
    """True for a subtitle codec whose cues are text FFmpeg can decode (SubRip, ASS, WebVTT, ...)."""
    if not codec or codec in _NOT_CONVERTED:
        return False
    try:
        c = av.Codec(codec, "r")
    except (av.error.FFmpegError, ValueError):  # unknown name / no decoder in this build
        return False
    return c.type == "subtitle" and bool(c.properties & av.codec.codec.Properties.TEXT_SUB.value)


def text_target(fmt_name: str, codec: str | None) -> str | None:
    """The text codec to convert ``codec`` into for the muxer ``fmt_name``, or None (no way)."""
    if not is_text_subtitle(codec):
        return None
    names = fmt_name.split(",")
    for key, target in _TEXT_TARGETS:
        if key in names:
            return target if target in av.codecs_available else None
    return None


_ASS_OVERRIDE = re.compile(r"\{\\[^}]*\}")
_MARKUP = re.compile(r"</?[a-zA-Z][^<>]*>")


def _style(fields: bytes) -> bytes:
    """The Style of an ASS event's fields (Layer, Style, Name, MarginL, MarginR, MarginV, Effect)."""
    parts = fields.split(b",")
    return parts[1] if len(parts) > 1 else b"Default"


def plain_text(text: str) -> str:
    """A cue's text without markup: ASS override blocks ``{\\...}`` and SubRip/WebVTT tags
    (``<i>``, ``<font ...>``, ``<c.x>``) removed, ``\\N``/``\\n`` as newlines, ``\\h`` (ASS hard space)
    as a no-break space."""
    text = _ASS_OVERRIDE.sub("", text)
    text = text.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", "\u00a0")
    return _MARKUP.sub("", text)


@dataclass
class _Cue:
    start: int  # input time-base ticks
    end: int | None  # None: lasts until the next cue
    fields: bytes  # ASS event fields before the text: Layer,Style,Name,MarginL,MarginR,MarginV,Effect
    text: bytes  # ASS text (override tags, \N)


class SubtitleConverter:
    """Re-encode the packets of one text subtitle stream as ``codec`` into a new output stream.

    ``convert(packet)`` returns the packets to mux (in the input stream's time base); ``flush()``
    returns the rest at the end. mov_text (tx3g) shows one sample at a time and its muxer needs
    strictly increasing times, while ASS scripts overlap events freely (a sign and a line of
    dialogue, two speakers): for mov_text the cues are cut into non-overlapping samples, each
    holding the text of every cue visible then (one line each). That costs one cue of delay: a
    sample is final only once the next cue's start is known. SubRip/WebVTT in Matroska/WebM may
    overlap, so those are converted one packet per cue, with no delay.

    ``skipped`` counts cues that could not be converted (undecodable, no time, or cut to nothing
    by an earlier overlapping cue arriving late); the sink reports them.
    """

    def __init__(self, in_stream, out_container, codec: str) -> None:
        cc = in_stream.codec_context
        self.codec = codec
        self.time_base = Fraction(in_stream.time_base.numerator, in_stream.time_base.denominator)
        self._dec = av.CodecContext.create(cc.name, "r")
        if cc.extradata:  # ASS: the script header (styles); mov_text: the tx3g sample description
            self._dec.extradata = cc.extradata
        self._dec.open(strict=False)
        self.stream = out_container.add_stream(codec)
        self.stream.codec_context.subtitle_header = self._dec.subtitle_header or _DEFAULT_ASS_HEADER
        md = in_stream.metadata
        if md.get("language"):
            self.stream.metadata["language"] = language_for(out_container, md["language"])
        # MP4/MOV keep a track title in the udta 'name' box: FFmpeg writes it from 'title' but
        # reads it back as 'name'.
        title = md.get("title") or md.get("name")
        if title:
            self.stream.metadata["title"] = title
        try:
            self.stream.disposition = in_stream.disposition  # default / forced / hearing impaired
        except (AttributeError, TypeError, ValueError):  # pragma: no cover - older PyAV: not settable
            pass
        self.skipped = 0
        self.cues = 0
        self._segment = codec == "mov_text"
        self._pending: list[_Cue] = []
        self._t: int | None = None  # mov_text: samples are final (emitted) up to this tick
        self._order = 0

    # --- decoding --------------------------------------------------------------------------
    def _skip(self, why: str) -> None:
        self.skipped += 1
        if self.skipped == 1:
            log.warning("subtitle cue left out while converting to %s: %s", self.codec, why)

    def _decode(self, packet):
        """packet -> (start, end|None, decoded SubtitleSet) or None (an empty/clearing cue)."""
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None:
            self._skip("a packet without a time")
            return None
        try:
            sset = self._dec.decode2(packet)
        except (av.error.FFmpegError, ValueError) as e:
            self._skip(f"undecodable packet at {float(pts * self.time_base):.3f} s ({e})")
            return None
        if sset is None or not [r for r in sset if getattr(r, "type", None) in (b"ass", b"text")]:
            return None  # mov_text's empty samples (gaps), or a cue with no text
        ms = Fraction(1, 1000) / self.time_base
        start = pts + round(sset.start_display_time * ms)
        if packet.duration:
            end = pts + packet.duration
        elif sset.end_display_time > sset.start_display_time:
            end = pts + round(sset.end_display_time * ms)
        else:
            end = None
        return start, end, sset

    def _packet(self, payload, start: int, end: int | None):
        p = self.stream.codec_context.encode_subtitle(payload)
        p.pts = p.dts = start
        p.duration = max(end - start, 0) if end is not None else 0
        p.time_base = self.time_base
        p.stream = self.stream
        return p

    def convert(self, packet) -> list:
        """Packets of ``codec`` for one input packet (none, one, or -- mov_text -- the samples
        that became final)."""
        got = self._decode(packet)
        if got is None:
            return []
        start, end, sset = got
        self.cues += 1
        if not self._segment:
            try:
                return [self._packet(sset, start, end)]
            except (av.error.FFmpegError, ValueError) as e:
                self._skip(f"cue at {float(start * self.time_base):.3f} s: {e}")
                return []
        out = []
        for r in sset:
            if getattr(r, "type", None) not in (b"ass", b"text"):
                continue
            line = r.ass if r.type == b"ass" else b"0,0,Default,,0,0,0,," + r.text.replace(b"\n", b"\\N")
            parts = line.split(b",", 8)
            if len(parts) < 9:  # pragma: no cover - FFmpeg's decoders always write the 9 fields
                self._skip(f"malformed ASS event {line[:40]!r}")
                continue
            out += self._add(_Cue(start, end, b",".join(parts[1:8]), parts[8]))
        return out

    def flush(self) -> list:
        """The samples still held back (mov_text), at the end of the input."""
        if not self._segment:
            return []
        for c in self._pending:
            if c.end is None:
                c.end = c.start + max(1, round(_OPEN_CUE_S / self.time_base))
        return self._emit_until(None)

    # --- mov_text: non-overlapping samples -------------------------------------------------
    def _add(self, cue: _Cue) -> list:
        for c in self._pending:  # a cue of unknown length ends where the next one starts
            if c.end is None and cue.start > c.start:
                c.end = cue.start
        out = self._emit_until(cue.start)
        was = float(cue.start * self.time_base)
        if self._t is not None and cue.start < self._t:
            # Arrived after samples up to _t were written (the input's cues were not in start
            # order): mov_text cannot go back, so the cue shows from _t on.
            cue.start = self._t
        if cue.end is not None and cue.end <= cue.start:
            self._skip(f"cue at {was:.3f} s arrived after the samples up to its end were written")
            return out
        self._pending.append(cue)
        return out

    def _emit_until(self, limit: int | None) -> list:
        """Write samples covering the pending cues up to ``limit`` (None: all of them)."""
        out = []
        pend = self._pending
        cur = self._t if self._t is not None else (min(c.start for c in pend) if pend else None)
        while pend and cur is not None and (limit is None or cur < limit):
            bounds = [c.start for c in pend if c.start > cur]
            bounds += [c.end for c in pend if c.end is not None and c.end > cur]
            if limit is not None:
                bounds.append(limit)
            if not bounds:  # only open-ended cues (flush gives them an end first): nothing to cut at
                break
            nxt = min(bounds)
            shown = [c for c in pend if c.start <= cur and (c.end is None or c.end > cur)]
            if shown:
                # one sample for all the cues on screen, under the first one's event fields: each
                # later line starts with {\r<its style>} (mov_text's encoder reads it), or it took
                # the first cue's style (a sign's yellow bold over the dialogue below it)
                text = b"\\N".join(c.text if i == 0 else b"{\\r%s}%s" % (_style(c.fields), c.text)
                                    for i, c in enumerate(shown))
                line = b"%d,%s,%s" % (self._order, shown[0].fields, text)
                self._order += 1
                try:
                    out.append(self._packet(SubtitleSet.create(line, 0, 0, cur), cur, nxt))
                except (av.error.FFmpegError, ValueError) as e:
                    self._skip(f"sample at {float(cur * self.time_base):.3f} s: {e}")
            cur = nxt
            self._t = cur
            pend[:] = [c for c in pend if c.end is None or c.end > cur]
        return out
