"""Stream copy: every stream of the input (of the main video's program) into a new container, packets untouched."""
from __future__ import annotations

import logging
import os
import re
from fractions import Fraction
from pathlib import Path

import av

from stream_gpen.errors import EncodeError
from stream_gpen.io._meta import audio_params_unknown, ffmpeg_local

log = logging.getLogger(__name__)


def remux(src: str | os.PathLike, dst: str | os.PathLike, *, said=(), turned: str | None = None,
          joins_said: bool = False) -> int:
    """Copy all streams of ``src`` into ``dst`` (container from the extension), bit-exact packets.
    An input of several programs (a DVB multiplex's channels: see
    :func:`~stream_gpen.io._meta.stream_programs`) gives the main video's program only, as the
    encoding sink keeps it: its video, audio and subtitles; the other programs' streams are left
    out, each logged (unless ``said``). So is every video stream but the main one (a second
    angle; not cover art), which the sink does not restore.

    Written to a temporary file next to ``dst`` and renamed on success. Text subtitles the output
    container cannot copy are converted cue by cue as the encoding sink does (SubRip/ASS/WebVTT
    -> mov_text for .mp4/.mov, mov_text -> SubRip/WebVTT for .mkv/.webm; logged); subtitles it
    can neither copy nor convert (bitmap subtitles, text into .ts) are dropped, and audio it
    cannot copy (Opus into .mov), or whose copy would come out wrong (a pause in it closed up in
    AVI, ADTS AAC that changes its channels or rate: :func:`~stream_gpen.io._sink.audio_copy_hazards`),
    is transcoded to the codec the sink would choose, as the re-encode does (logged, in the
    sink's words, unless ``said``). Other streams the output
    container cannot hold (checked up front with the same rules the encoding sink uses, and
    again by FFmpeg while muxing) raise :class:`EncodeError`; nothing is then left
    under ``dst`` (an existing ``dst`` stays as it was). Into AVI, which stores no start times,
    every stream is written from the first video packet on, as the sink does (audio packets
    before it, e.g. AAC priming, are left out), so audio and video stay in sync; a copied packet
    whose time, after the one before it, rounds onto the same tick of the output's clock (AAC's
    21.3 ms frames in AVI) goes a tick on, as the sink moves it. Elsewhere every
    stream moves by the input's start, as the sink's ``_choose_shift`` does (a .ts at 10 h gives
    an mp4 that starts at 0, not an edit list of 10 hours), keeping their offsets; into mp4/mov,
    a video that starts before 0 (a wrapped MPEG-TS clock) moves every stream so that it starts
    at 0, as the sink's ``_rebase_negative`` does (the edit list would hide its first frames).
    Recordings joined end to end (``cat a.ts b.ts``, whose clock jumps back: the muxers refused
    that with "Invalid argument") are put on one clock as the source puts them
    (:func:`~stream_gpen.io._source.on_one_clock`, one warning per join): each later one runs on
    from the end of the one before, every stream moved alike, so audio stays in sync. Other
    timestamps are copied as they are (but for a packet's, far off its neighbours', that the same
    join logic retimes): the other repairs the source makes (a damaged presentation time, frames
    without one: see ``VideoSource.timestamp_repairs``) are not, and the caller keeps the re-encode
    then. Packets an
    mp4/mov's edit list hides (a clip cut in an editor or with ``ffmpeg -ss -c copy``) stay hidden
    in mp4/mov; elsewhere (no edit lists) hidden audio/subtitle packets are left out, and hidden
    video frames (the cut's keyframe: the frames shown need them to decode) raise
    :class:`EncodeError`, as they would play.
    ``said``: notes already warned of (by the re-encode of ``--copy-if-no-faces``), not said again
    (nor the same loss of the same stream in the copy's words: those go to the debug log).
    ``joins_said``: the input's joins were warned of already (by the re-encode, whose read met
    them): the copy logs them at debug only.
    ``turned``: the video's display rotation or mirror, said as in "its video has {turned}" (a
    phone's 90 degrees): only mp4/mov and Matroska store it, so a copy into another container
    (.ts, .avi...) raises :class:`EncodeError` (it would play turned; the re-encode is upright).
    Returns the number of video packets copied.
    """
    from stream_gpen.io._sink import (
        _MOV_FAMILY,
        _NO_START_TIMES,
        _TS_DATA,
        _audio_fallback_codec,
        adts_to_asc,
        audio_copy_hazards,
        avi_frame_grid,
        can_copy,
        clamp_to_origin,
        copy_refusal,
        follow_on,
        gopro_telemetry,
        needs_adtstoasc,
        other_programs,
        set_container_sar,
        stores_no_pts,
        subtitle_refusal,
        to_avi_grid,
        transcoded_note,
    )
    from stream_gpen.io._meta import stream_programs
    from stream_gpen.io._source import (
        _NO_TIMESTAMPS,
        _fraction,
        _Joins,
        _sample_aspect_ratio,
        join_step,
        main_video_stream,
        on_one_clock,
    )
    from stream_gpen.io._tags import (
        COVER_MUXERS,
        accepts_attachments,
        attachment,
        attachment_refused,
        carried_otherwise,
        copy_container_tags,
        copy_stream_tags,
        cover_attachment,
        is_cover,
        marks_lost,
        timecode_of,
    )
    from stream_gpen.io._subtitles import SubtitleConverter, text_target

    dst = Path(dst)
    tmp = dst.with_name(f".{dst.stem}.remux{dst.suffix}")
    n_video = 0
    try:
        with av.open(ffmpeg_local(src)) as inp, av.open(ffmpeg_local(tmp), "w", format=_format_for(dst)) as out:
            mapping = {}
            bsfs: dict = {}
            converters: dict[int, SubtitleConverter | _AudioTranscoder] = {}
            grids: dict[int, Fraction] = {}  # AVI video: its frame grid, and the last slot written
            slots: dict[int, int] = {}
            fmt = out.format.name
            avi = bool(set(fmt.split(",")) & set(_NO_START_TIMES))
            if turned and not set(fmt.split(",")) & (set(_MOV_FAMILY) | {"matroska"}):
                raise EncodeError(f"cannot stream-copy {src} into {dst.suffix}: its video has {turned}, which the "
                                  f"{fmt} container cannot store (the copy would not play the way the original does)")
            main = main_video_stream(inp)
            foreign = {} if main is None else other_programs(
                stream_programs(inp), main.index,
                [(s.index, s.type, getattr(s.codec_context, "name", None)) for s in inp.streams if s.index != main.index],
                video="the video copied", target=dst)
            shift = None if avi else _start_of(inp, leave_out=foreign)
            if shift is None and not avi and set(fmt.split(",")) & _MOV_FAMILY and main is not None:
                shift = _negative_start(main)
                if shift is not None:
                    # (as the encoding sink's _rebase_negative: the mp4 muxer's edit list would hide
                    # the frames before 0, and players would start a wrapped .ts's copy 0.5 s in)
                    log.info("remux: the input's video starts at %.3f s (negative timestamps: a wrapped MPEG-TS "
                             "clock?): copied from its first frame at 0 so that %s players show every frame",
                             float(shift), fmt)
            # global tags and chapters (moved with the streams)
            lost = copy_container_tags(inp, out, window=(float(shift), None) if shift else None)
            # copied audio that would come out wrong (a pause closed up in AVI, ADTS AAC changing
            # its channels or rate): transcoded, as the encoding sink transcodes it; all its tracks
            # judged in one read of the file
            hazards = audio_copy_hazards(src, [
                s for s in inp.streams.audio if s.index not in foreign and not carried_otherwise(s)
                and can_copy(fmt, _codec_names(s)[1], out.supported_codecs) and not audio_params_unknown(s)], fmt)
            for s in inp.streams:
                if carried_otherwise(s):
                    continue  # carried as chapters / the video's timecode tag
                if s.index in foreign:  # (another channel of a multiplex: not what the re-encode kept)
                    if not _said_dropped(said, s):
                        lost.append(f"{s.type} stream #{s.index} ({getattr(s.codec_context, 'name', None) or s.type}) "
                                    f"dropped: {foreign[s.index]}")
                    continue
                if s.type == "video" and main is not None and s.index != main.index and not is_cover(s):
                    # (a second angle, a preview track: the re-encode restores the main video alone)
                    if not _said_dropped(said, s):
                        lost.append(f"video stream #{s.index} ({getattr(s.codec_context, 'name', None) or 'video'}) "
                                    "dropped: only the main video stream is copied, as it alone is restored")
                    continue
                if s.type == "attachment":
                    att = attachment(s)
                    if att is not None and accepts_attachments(out):
                        out.add_attachment(*att)
                    elif att is not None:  # (in the encoding sink's words)
                        lost.append(attachment_refused(fmt, att[0], att[1]))
                    else:
                        lost.append(f"attachment stream #{s.index} dropped: {dst.suffix} cannot hold attachments")
                    continue
                gopro = gopro_telemetry(s, inp.format.name)
                # (a drone's KLV telemetry: copied into MPEG-TS as the encoding sink copies it)
                ts_data = s.type == "data" and getattr(s, "name", None) in _TS_DATA
                if s.type not in ("video", "audio", "subtitle") and not (gopro or ts_data):
                    lost.append(f"{s.type} stream #{s.index} dropped: not copied")
                    continue
                if is_cover(s) and not set(fmt.split(",")) & COVER_MUXERS:
                    # as the encoding sink does: Matroska keeps covers as attachments; elsewhere a
                    # cover would become a one-frame video track
                    att = cover_attachment(src, s) if accepts_attachments(out) else None
                    if att is not None:
                        out.add_attachment(*att)
                    else:
                        lost.append(f"cover art (stream #{s.index}) dropped: the {fmt} container cannot hold it"
                                    + (" (it could not be read as an attachment)" if accepts_attachments(out) else ""))
                    continue
                name, canonical = _codec_names(s)
                if gopro:  # (GPS/gyro telemetry, copied as the encoding sink copies it: mp4/mov only)
                    name = canonical = "bin_data"
                elif ts_data:
                    name = canonical = s.name
                copyable = s.type == "video" or can_copy(fmt, canonical, out.supported_codecs)
                hazard = hazards.get(s.index) if copyable else None
                if not copyable or hazard:
                    if gopro or ts_data:
                        what = s.metadata.get("handler_name") or ("GoPro MET" if gopro else s.name)
                        lost.append(f"data stream #{s.index} ({what}) "
                                    f"dropped: {copy_refusal(fmt, canonical, out.supported_codecs)}")
                        continue
                    target = text_target(fmt, canonical) if s.type == "subtitle" else None
                    if s.type == "subtitle" and target is None:
                        # dropped, as the re-encode drops them (bitmap subtitles, or text into .ts)
                        lost.append(f"subtitle stream #{s.index} ({canonical}) dropped: "
                                    f"{subtitle_refusal(fmt, canonical, out.supported_codecs)}")
                        continue
                    if s.type == "audio" and not audio_params_unknown(s):
                        # transcoded, as the re-encode transcodes it (Opus into .mov: AAC)
                        try:
                            conv = _AudioTranscoder(s, out, _audio_fallback_codec(fmt))
                        except (ValueError, av.FFmpegError) as exc:
                            raise EncodeError(f"cannot transcode audio stream #{s.index} ({canonical}) for "
                                              f"{dst.suffix}: {exc}") from exc
                        converters[s.index] = conv
                        mapping[s.index] = conv.stream
                        lost.append(transcoded_note(s.index, canonical, conv.codec, conv.words,
                                                    hazard or copy_refusal(fmt, canonical, out.supported_codecs)))
                        note = copy_stream_tags(s, conv.stream, encoded=True)
                        if note:
                            lost.append(note)
                        continue
                    if target is None:
                        raise EncodeError(f"cannot stream-copy {s.type} stream #{s.index} ({canonical}) into "
                                          f"{dst.suffix}: {copy_refusal(fmt, canonical, out.supported_codecs)}")
                    try:
                        conv = SubtitleConverter(s, out, target)
                    except (ValueError, av.FFmpegError) as exc:
                        raise EncodeError(f"cannot convert subtitle stream #{s.index} ({canonical}) to {target} "
                                          f"for {dst.suffix}: {exc}") from exc
                    converters[s.index] = conv
                    mapping[s.index] = conv.stream
                    note = marks_lost(out, s.index, int(s.disposition))
                    if note:
                        lost.append(note)
                    msg = f"subtitle stream #{s.index} ({canonical}) converted to {target}: {fmt} does not accept it"
                    log.log(logging.DEBUG if _said_before(said, msg) else logging.INFO, "remux: %s", msg)
                    continue
                if audio_params_unknown(s):  # (the muxer refused its header at the end: "Invalid argument")
                    raise EncodeError(f"cannot stream-copy audio stream #{s.index} ({name}) into {dst.suffix}: its "
                                      "sample rate and channels are not known where the input begins")
                try:
                    mapping[s.index] = out.add_stream_from_template(s)
                except (ValueError, av.FFmpegError) as exc:
                    raise EncodeError(f"cannot stream-copy {s.type} stream #{s.index} ({name}) "
                                      f"into {dst.suffix}: {exc}") from exc
                if needs_adtstoasc(fmt, s):  # ADTS AAC (MPEG-TS) into AVI, which takes it only with its config
                    adts = adts_to_asc(src, s)
                    if adts is None:
                        raise EncodeError(f"cannot stream-copy audio stream #{s.index} (ADTS AAC) into {dst.suffix}: "
                                          "its AudioSpecificConfig could not be read")
                    bsfs[s.index] = adts[0]
                    mapping[s.index].codec_context.extradata = adts[1]
                if s.type == "video" and stores_no_pts(fmt) and (s.codec_context.has_b_frames or 0) > 0:
                    # the sink encodes AVI and ASF without B-frames for this reason (see _NO_PTS)
                    raise EncodeError(f"cannot stream-copy video stream #{s.index} ({name}) into {dst.suffix}: it has "
                                      f"B-frames, whose display order the {fmt} container cannot store")
                if s.type == "video" and avi:
                    grid = avi_frame_grid(_fraction(s.guessed_rate), Fraction(s.time_base), _fraction(s.average_rate))
                    if grid != Fraction(s.time_base):
                        mapping[s.index].time_base = grid  # one chunk a frame (see avi_frame_grid)
                        grids[s.index] = grid
                if s.type == "video" and _needs_annexb(s, fmt):
                    # AVI and ASF hold H.264/HEVC as Annex B start codes, MP4/MKV as length-prefixed
                    # NAL units + avcC/hvcC extradata: FFmpeg's avi muxer does not convert (it refused
                    # every mp4 -> avi stream copy with "Invalid data"), its asf muxer writes them as
                    # they are (the .wmv read back as broken frames).
                    name2 = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}[name]
                    bsfs[s.index] = av.bitstream.BitStreamFilterContext(name2, s, mapping[s.index])
                if s.type == "video":
                    # The template copies the codec's SAR, not the container's (mkv/webm display
                    # size, which is all a VP9/AV1 track has): carry the one players use.
                    tc = timecode_of(inp, s)
                    if tc and set(fmt.split(",")) & {"mov", "mp4", "ipod", "matroska"}:
                        mapping[s.index].metadata["timecode"] = tc
                    sar = _sample_aspect_ratio(s)
                    if sar is not None and sar != 1:
                        mapping[s.index].codec_context.sample_aspect_ratio = sar
                        if set(fmt.split(",")) & {"matroska", "webm"}:
                            set_container_sar(mapping[s.index], sar)
                note = copy_stream_tags(s, mapping[s.index])
                if note:
                    lost.append(note)
                if is_cover(s):
                    # cover art stays cover art (copy_stream_tags leaves a video's disposition to the
                    # muxer, which would make it a one-frame video track), as the sink keeps it
                    mapping[s.index].disposition = int(s.disposition)
            origin = _first_video_time(src) if avi else None
            left_out = 0
            edit_lists = bool(set(fmt.split(",")) & _MOV_FAMILY)  # they can hide packets again
            hidden = 0
            last: dict[int, Fraction] = {}  # copied audio/subtitle/data: output stream index -> last dts muxed (s)
            rounded = 0
            stamped: dict[int, int] = {}  # bare video streams (no timestamps): input stream index -> frames
            # (a bare input: its demuxer reads no timestamps; into a bare output, which stores none, as they are)
            bare_in = bool(inp.format.flags & _NO_TIMESTAMPS) and not out.format.flags & _NO_TIMESTAMPS
            # recordings joined end to end (cat a.ts b.ts): each later one moved to run on, audio
            # in sync, as the read moves them for the re-encode; the muxers refused the clock's
            # step back ("Invalid argument")
            joins = _Joins(join_step(main), str(src), quiet=joins_said)
            try:
                for pkt in on_one_clock(inp, inp.demux(list(s for s in inp.streams if s.index in mapping)), joins):
                    if pkt.dts is None and pkt.size == 0:  # demuxer flush packet
                        continue
                    if pkt.is_discard and not edit_lists:
                        if pkt.stream.type == "video":
                            raise EncodeError(f"cannot stream-copy {src} into {dst.suffix}: its edit list hides video "
                                              f"frames before its start (a cut clip), which the {fmt} container "
                                              "would show; copy it into .mp4 or .mov, or let it be re-encoded")
                        t = pkt.pts if pkt.pts is not None else pkt.dts
                        if t is not None and (t + (pkt.duration or 0)) * pkt.time_base < 0:
                            hidden += 1  # cut-away audio/subtitles (the priming packet ending at 0 is kept)
                            continue
                    conv = converters.get(pkt.stream.index)
                    if conv is not None:
                        for q in conv.convert(pkt):
                            _moved(q, shift)
                            if origin is not None and not clamp_to_origin(q, round(origin / (q.time_base or q.stream.time_base))):
                                left_out += 1
                                continue
                            out.mux(q)
                        continue
                    if bare_in and pkt.pts is None and pkt.dts is None and pkt.stream.type == "video":
                        _stamp(pkt, stamped, src, dst)
                    _moved(pkt, shift)
                    if origin is not None and not clamp_to_origin(pkt, round(origin / pkt.time_base)):
                        left_out += 1
                        continue
                    ostream = mapping[pkt.stream.index]
                    bsf = bsfs.get(pkt.stream.index)
                    for q in (bsf.filter(pkt) if bsf is not None else [pkt]):
                        if ostream.type == "video":
                            n_video += 1
                            grid = grids.get(pkt.stream.index)
                            if grid is not None:
                                slots[pkt.stream.index] = to_avi_grid(q, grid, slots.get(pkt.stream.index))
                        q.stream = ostream
                        if ostream.type != "video" and q.dts is not None and q.time_base:
                            # packets whose times go forward but round onto one tick of the output's
                            # clock (AAC in AVI: 21.3 ms) go a tick on, as the sink moves them; the
                            # muxer refused the second ("Invalid argument") and the copy failed. (A join's
                            # step back is gone already: on_one_clock above.)
                            prev = last.get(ostream.index)
                            if prev is not None and Fraction(q.dts) * q.time_base > prev and follow_on(q, prev):
                                rounded += 1
                        out.mux(q)
                        if ostream.type != "video" and q.dts is not None and q.time_base:
                            last[ostream.index] = Fraction(q.dts) * q.time_base
                for conv in converters.values():
                    for q in conv.flush():
                        _moved(q, shift)
                        if origin is not None and not clamp_to_origin(q, round(origin / (q.time_base or q.stream.time_base))):
                            continue
                        out.mux(q)
            except (ValueError, av.FFmpegError) as exc:
                raise EncodeError(f"stream-copying {src} into {dst.suffix} failed: {_why(exc)}") from exc
            for msg in lost:
                # (the re-encode that came first warned of it already, in its words: its summary
                # lists it; the copy's own words go to the debug log)
                log.log(logging.DEBUG if _said_before(said, msg) else logging.WARNING, "remux: %s", msg)
            if hidden:
                log.info("remux into %s: %d packet(s) the input's edit list hides left out (no edit lists there)",
                         fmt, hidden)
            if rounded:
                log.info("remux into %s: %d packet(s) that fell on the same tick of the output's coarser clock moved a "
                         "tick later", fmt, rounded)
            if left_out:
                log.info("remux into %s: %d packet(s) before the first video frame left out (no start times there)",
                         fmt, left_out)
        os.replace(tmp, dst)
    except (ValueError, av.FFmpegError) as exc:  # the header or trailer (on close) was refused
        raise EncodeError(f"stream-copying {src} into {dst.suffix} failed: {_why(exc)}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return n_video


class _AudioTranscoder:
    """An audio stream the output cannot take as it is, decoded and encoded again for it, as the
    encoding sink does (the same codec, rate and layout: :func:`~stream_gpen.io._sink.transcode_plan`),
    packet by packet as the copy reads them (the subtitle converters' interface: ``stream``,
    ``convert``, ``flush``). The samples follow on from the first decoded one's time; a gap in
    them (a dropout, a paused recording) is filled with silence, and a change of channels or rate
    mid-stream (TV recordings switching between 2.0 and 5.1) is resampled to the same output, as
    the sink does (:func:`~stream_gpen.io._sink.silence`,
    :func:`~stream_gpen.io._sink.resample_changing`). Packets an edit list hides (priming, a
    cut's lead-in) are not decoded."""

    def __init__(self, ins, out, codec: str) -> None:
        from stream_gpen.io._sink import transcode_plan

        cc = ins.codec_context
        self.codec = codec
        rate, layout, self.words = transcode_plan(codec, ins, cc.sample_rate or None,
                                                  len(cc.layout.channels) if cc.layout else None)
        self.stream = out.add_stream(codec, rate=rate)
        self.stream.layout = layout
        self._rate = rate
        self._resampler = av.AudioResampler(format=self.stream.codec_context.codec.audio_formats[0].name,
                                            layout=layout, rate=rate)
        self._decoder = cc
        self._next: int | None = None  # the next sample's time, in 1/rate

    def _encode(self, frames) -> list:
        from stream_gpen.io._sink import _AUDIO_GAP_S, resample_changing, silence

        out = []
        for fr in frames:
            t = round(fr.time * self._rate) if fr.time is not None else None
            if self._next is None:
                self._next = t or 0
            elif t is not None and t - self._next > self._rate * _AUDIO_GAP_S:
                # the encoder numbers samples back to back: without it, all after the gap plays early
                r = self._resampler
                for sf in silence(r.format.name, r.layout.name, self._rate, self._next, t - self._next):
                    self._next += sf.samples
                    out += self.stream.encode(sf)
            self._resampler, frames_out = resample_changing(self._resampler, fr)
            out += self._put(frames_out)
        return out

    def _put(self, frames) -> list:
        out = []
        for rf in frames:
            rf.pts, rf.time_base = self._next, Fraction(1, self._rate)
            self._next += rf.samples
            out += self.stream.encode(rf)
        return out

    def convert(self, pkt) -> list:
        if pkt.is_discard or not pkt.size:
            return []
        try:
            return self._encode(self._decoder.decode(pkt))
        except av.error.InvalidDataError:
            return []  # (a damaged packet: a short gap, as the sink's decoder leaves one)

    def flush(self) -> list:
        out = self._encode(self._decoder.decode(None))
        if self._next is not None:
            out += self._put(self._resampler.resample(None))
        return out + self.stream.encode(None)


def _stamp(pkt, stamped: dict[int, int], src, dst: Path) -> None:
    """Time a video packet of a bare elementary stream (.hevc/.h264 from a camera or DVR, which
    carry no timestamps; muxers other than the raw ones refuse such packets with "Invalid
    argument") by its index: frame k at k frame durations. Only right without B-frames, whose
    display order is not the stored one: those raise :class:`EncodeError`."""
    k = stamped.get(pkt.stream.index, 0)
    if (pkt.stream.codec_context.has_b_frames or 0) > 0 or not pkt.duration:
        raise EncodeError(f"cannot stream-copy {src} into {dst.suffix}: its video is a bare stream without "
                          "timestamps" + (" and with B-frames, whose display order cannot be told from it"
                                          if pkt.duration else "") + "; let it be re-encoded")
    pkt.pts = pkt.dts = k * pkt.duration
    stamped[pkt.stream.index] = k + 1


_STREAM_REF = re.compile(r"stream #(\d+)\b")
#: what a note says befell a stream (a note on the same stream and of the same fate is the same news)
_FATES = (" dropped", " converted to ", " transcoded")


def _note_key(msg: str) -> tuple[int, str] | None:
    ref = _STREAM_REF.search(msg)
    fate = next((f for f in _FATES if f in msg), None)
    return None if ref is None or fate is None else (int(ref.group(1)), fate)


def _said_before(said, msg: str) -> bool:
    """Whether ``said`` (the re-encode's notes) reports what ``msg`` does, perhaps in other words:
    the same note, or one on the same input stream and of the same fate (dropped, converted,
    transcoded). ``--copy-if-no-faces`` logged each such loss twice, differently worded."""
    key = _note_key(msg)
    return msg in said or (key is not None and any(_note_key(n) == key for n in said))


def _said_dropped(said, s) -> bool:
    """Whether ``said`` (the re-encode's notes) has stream ``s`` dropped already (for its own
    words: "only the main video stream is restored", "the restored video"): not said again."""
    head = f"{s.type} stream #{s.index} ("
    return any(n.startswith(head) and " dropped: " in n for n in said)


def _start_of(inp, leave_out=()) -> Fraction | None:
    """The earliest start (s) of the streams copied (video, audio, subtitles; not cover art, nor
    those of ``leave_out``: another program's, whose clock may be hours away), or ``None`` when it
    is under ``SHIFT_MIN_S`` (nothing to move: the encoders' delay; negative times are the
    muxer's edit list, or for mp4/mov moved by :func:`_negative_start`)."""
    from stream_gpen.io._sink import SHIFT_MIN_S
    from stream_gpen.io._tags import is_cover

    starts = [Fraction(s.start_time) * Fraction(s.time_base) for s in inp.streams
              if s.type in ("video", "audio", "subtitle") and s.start_time is not None and s.time_base
              and not is_cover(s) and s.index not in leave_out]
    return min(starts) if starts and min(starts) > SHIFT_MIN_S else None


def _negative_start(video) -> Fraction | None:
    """The start (s) of ``video`` where it is before 0 (an MPEG-TS whose 33-bit clock wrapped:
    FFmpeg gives the times before the wrap as negative), else ``None``."""
    if video.start_time is None or not video.time_base or video.start_time >= 0:
        return None
    return Fraction(video.start_time) * Fraction(video.time_base)


def _moved(pkt, shift: Fraction | None):
    """``pkt`` moved ``shift`` seconds earlier (in its own time base)."""
    from stream_gpen.io._sink import move_packet

    if shift:
        move_packet(pkt, -round(shift / (pkt.time_base or pkt.stream.time_base)))
    return pkt


def _first_video_time(src) -> Fraction:
    """Time (s) of the first video packet in decode order (its dts: AVI's chunk timeline), 0 if none."""
    from stream_gpen.io._source import main_video_stream

    with av.open(ffmpeg_local(src)) as c:
        vs = main_video_stream(c)
        if vs is None:
            return Fraction(0)
        for p in c.demux(vs):
            t = p.dts if p.dts is not None else p.pts
            if p.size and t is not None:
                return Fraction(t) * p.time_base
    return Fraction(0)


def _needs_annexb(stream, fmt: str) -> bool:
    """H.264/HEVC with MP4-style extradata (avcC/hvcC: first byte 1) going into AVI or ASF."""
    from stream_gpen.io._sink import stores_no_pts

    cc = stream.codec_context
    if not stores_no_pts(fmt) or cc is None or cc.name not in ("h264", "hevc"):
        return False
    extra = cc.extradata or b""
    return len(extra) > 0 and extra[0] == 1


def _format_for(path: Path) -> str | None:
    ext = path.suffix.lower()
    return {".mkv": "matroska", ".ts": "mpegts", ".m4v": "mp4"}.get(ext)


def _why(exc: Exception) -> str:
    """FFmpeg's reason without the file name it names (our hidden temporary file, not the user's)."""
    return str(getattr(exc, "strerror", None) or exc)


def _codec_names(s) -> tuple[str | None, str | None]:
    """(codec name, its canonical name) of input stream ``s``, either None where it has none."""
    name = s.codec_context.name if s.codec_context is not None else None
    return name, getattr(getattr(s.codec_context, "codec", None), "canonical_name", None) or name
