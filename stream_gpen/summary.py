"""The run summary: what a run did, how fast, on what, and what fell back."""
from __future__ import annotations

import json
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path


#: what a folder run's ``skipped`` says of a file refused for an option that does not fit it
#: (``start`` past its end), after the option: ``"PATH: start= does not fit this file: REASON"``
MISFIT = " does not fit this file: "


def misfit_options(skipped: list[str]) -> list[str]:
    """The options (``"start="``; ``"--start"`` once said in the command line's words) that
    ``skipped`` names as not fitting a file (:data:`MISFIT`), each once, in order."""
    return list(dict.fromkeys(s.split(MISFIT, 1)[0].rsplit(" ", 1)[-1] for s in skipped if MISFIT in s))


def misfit_hint(options: list[str]) -> str:
    """What to do about a folder's videos that ``options`` (:func:`misfit_options`) did not fit."""
    named = " and ".join(options)
    how = (" (`stream-gpen info FILE` shows a video's duration)"
           if any(o.strip("-=") == "start" for o in options) else "")
    return (f"{named} applies to every video in the folder: restore the ones it does not fit on their own, "
            f"or give a value that fits them all{how}")


def json_text(value):
    """``value`` (a dict, list, str or path, and what they hold) with each string made text that
    every JSON reader takes. A file name whose bytes are not UTF-8 is held by Python as lone
    surrogates (``caf\\udce9.jpg``, ``surrogateescape``), which strict JSON parsers refuse and jq
    turns into U+FFFD: each such byte is written as ``\\xHH`` (``caf\\xe9.jpg``), any other
    lone surrogate (a Windows name's) as ``\\udHHH``; valid text is left as it is."""
    import os

    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            pass
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # (a surrogate no byte stands for)
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {json_text(k): json_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_text(v) for v in value]
    return value


def with_name_bytes(d: dict, keys) -> dict:
    """``d`` made :func:`json_text`, with ``KEY_bytes`` after each of ``keys`` whose value (a path)
    is not valid text: the name's exact bytes in hex (``os.fsencode``: ``"636166e92e6a7067"`` for
    ``caf\\xe9.jpg``), as ``\\xHH`` cannot be told from those four characters in a name."""
    import os

    out = {}
    for k, v in d.items():
        out[k] = json_text(v)
        if k in keys and isinstance(v, (str, os.PathLike)) and out[k] != os.fspath(v):
            try:
                out[f"{k}_bytes"] = os.fsencode(v).hex()
            except UnicodeEncodeError:
                pass
    return out


def skipped_entry(path, why) -> str:
    """``"PATH: REASON"``, a :class:`RunSummary`'s ``skipped`` line for ``path`` left out because of
    ``why`` (an exception or its message), the path once and first: the errors name the file where
    their sentence has it ("cannot read PATH as an image: cannot identify image file 'PATH'",
    "image is empty (0 bytes): PATH"), which listed a photo apart from a video ("PATH: FFmpeg
    cannot read 'PATH' as media") and said its path twice. The reason keeps its words, the file
    said as "it" ("the file" to begin with), a quoted path after what could not read it dropped."""
    import re

    p, text = str(path), str(why)
    name = Path(p).name
    if text.startswith(f"{p}: "):
        return text
    if name and text.startswith(f"{name}: "):  # (a few errors name the file alone)
        return f"{p}: {text[len(name) + 2:]}"
    q = re.escape(p)
    text = re.sub(rf" (['\"]){q}\1(?=$|[):;,])", "", text)  # Pillow's "cannot identify image file 'PATH'"
    text = re.sub(rf": {q}(?=$| \()", "", text)  # "image is empty (0 bytes): PATH"
    if text.startswith(f"{p} "):
        text = "the file" + text[len(p):]
    text = re.sub(rf"(?<= )(['\"]?){q}\1", "it", text)  # "cannot read PATH as an image", "of 'PATH'"
    return f"{p}: {text}"


class StageTimer:
    """Wall time spent per pipeline stage (seconds), summed over the run."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.totals[stage] += time.perf_counter() - t0


@dataclass
class RunSummary:
    """What a run did: returned by :meth:`Enhancer.enhance_file` (and ``camera``), written by
    ``--report`` (:meth:`to_dict`, with ``fps``), printed by :meth:`format`.

    * ``input``, ``output`` (None: nothing written, e.g. ``-o /dev/null``), ``model``, ``device``,
      ``precision`` (what ran at the end: fp32 after a visible fallback), ``strength``, ``mask`` (the
      one used: ``"feather"`` for ``aligned=True``, which parses nothing, even with ``mask="parse"``),
      ``encoder`` (the FFmpeg video encoder, ``"copy"`` where the video was copied as it was); the
      three None in the ``--report`` of a run stopped or failed before it began (nothing ran);
    * ``frames_in`` (decoded), ``frames_out`` (written; a folder: photos and video frames),
      ``frames_dropped`` (read and not written: a live source behind, a run stopped with frames
      read ahead; in = out + dropped), ``packets_corrupt`` (damaged packets the decoder skipped);
    * ``faces_restored``, ``frames_with_faces``, ``detector_calls`` (whole frames and regions),
      ``detector_probes`` (of those, the change watch's region probes), ``detections_implausible``
      (dropped: landmarks that fit no face), ``faces_parsed`` (``mask="parse"``);
    * ``seconds`` (wall), ``stage_seconds`` (per stage, summed over the run; stages run at once on
      their own threads, so they may add up to more than ``seconds``): ``decode`` (the decode
      thread's demuxing, decoding and converting into the frame ring, a live source's wait for its
      next packet included; not its waits for the pipeline, nor a live file's pacing), ``detect``,
      ``track``, ``align``, ``restore``, ``parse``, ``paste``, ``encode`` (the encoder threads'
      encoding and muxing, the last frames' flush and the container's finishing included; not a
      frame's wait in their queues; a window or a virtual camera: showing or sending the frame;
      photos: writing them), and ``warmup`` (the camera on CUDA: capturing the face model's graphs
      for every batch size before the source opens, once per Enhancer); a stage that did not run
      is left out. ``fps`` (a property: frames_out / seconds);
    * ``fallbacks``: everything that did not go as asked, one line each (a precision fallback, audio
      transcoded, a stream dropped, damaged packets copied); ``skipped``: a folder's inputs that
      could not be read or failed, ``"path: reason"``, and those an option did not fit,
      ``"path: start= does not fit this file: reason"`` (:data:`MISFIT`, :func:`misfit_options`);
      ``done_before``: a folder run's inputs whose outputs were already there and left as they are
      (``skip_existing``; also a line in ``fallbacks``);
    * ``interrupted`` (Ctrl-C, ``cancel``, SIGTERM, SIGHUP) and ``partial_output`` (the frames done so
      far, finalised as ``NAME.partial.EXT``; also kept after an error mid-run); ``stopped_by``:
      ``camera``, the signal that ended the session (``"Ctrl-C"``, ``"SIGTERM"``, ``"SIGHUP"``;
      ``interrupted`` then True): its outputs are finished under their own names all the same, and
      the command exits 0 (q, ``--seconds``, ``--frames`` and a closed window are planned ends: None,
      not interrupted); ``error``: why a run failed (in the summary an exception carries as
      ``.summary``, and in ``--report``);
    * ``mean_added_latency``: camera, seconds from a frame's decoding to its writing, on average.
    """

    input: str = ""
    output: str | None = None
    model: str = ""
    device: str | None = ""  # None (and precision, encoder): a run stopped or failed before it began
    precision: str | None = ""
    strength: float = 1.0  # blend of the restored faces with the original crops
    mask: str = "feather"  # paste mask: "feather" (soft square) or "parse" (face-parsing net)
    encoder: str | None = ""  # the FFmpeg video encoder that wrote the output ("libx264", "hevc_nvenc"...; "copy": stream-copied; folders: each one)
    frames_in: int = 0
    frames_out: int = 0
    frames_dropped: int = 0
    packets_corrupt: int = 0
    faces_restored: int = 0
    frames_with_faces: int = 0
    detector_calls: int = 0
    detector_probes: int = 0  # of detector_calls: change-watch probes (a region of the frame only)
    detections_implausible: int = 0  # detections dropped: landmarks that fit no face (sideways / upside down)
    faces_parsed: int = 0  # --mask parse: faces run through the parser (video reuses masks in between)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)
    interrupted: bool = False
    partial_output: str | None = None
    stopped_by: str | None = None  # camera: the signal that ended the session ("Ctrl-C", "SIGTERM", "SIGHUP")
    skipped: list[str] = field(default_factory=list)  # folder inputs: "path: reason" per file left out
    done_before: int = 0  # folder, skip_existing: inputs whose outputs were already there, left as they are
    error: str | None = None  # a run that failed after writing what it could: the error, one line
    mean_added_latency: float | None = None  # camera: seconds from a frame's decoding to its writing, on average

    @classmethod
    def before_start(cls, input: str, output: str | None, model: str, exc: BaseException) -> RunSummary | None:
        """The summary of a run stopped or failed before it had one of its own (while it started
        up or the model loaded, an input that is no media, a ``start`` past its end): zero counts,
        ``interrupted`` (a ``KeyboardInterrupt``: Ctrl-C, a cancel) or ``error`` (and ``skipped``:
        the files of a folder none of which could be read, the exception's); ``device``,
        ``precision`` and ``encoder`` None (nothing ran, nothing was encoded). What ``--report``
        writes then, and a failed server job's summary. None for an exception that says nothing
        of the run (a bug, ``SystemExit``)."""
        from stream_gpen.errors import StreamGpenError, WeightsError

        if not isinstance(exc, (KeyboardInterrupt, StreamGpenError, OSError, RuntimeError, ValueError)):
            return None
        s = cls(input=input, output=output, model=model, device=None, precision=None, encoder=None)
        if isinstance(exc, KeyboardInterrupt):
            s.interrupted = True
            s.fallbacks.append("stopped before the run began (while it started up or the model loaded): nothing was "
                               "written")
        else:
            s.error = " ".join(str(exc).split()) or type(exc).__name__
            # a folder none of whose photos could be read fails as it opens: each is listed all the
            # same (the report said "skipped": [] beside "none of the 3 images could be read")
            s.skipped = [str(x) for x in getattr(exc, "skipped", None) or []]
            if isinstance(exc, WeightsError):
                s.fallbacks.append("the model could not be loaded: nothing was written")
        return s

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fps"] = round(self.fps, 3)
        d["stage_seconds"] = {k: round(v, 4) for k, v in self.stage_seconds.items()}
        d["seconds"] = round(self.seconds, 4)
        if self.mean_added_latency is not None:
            d["mean_added_latency"] = round(self.mean_added_latency, 4)
        # (valid JSON text for any reader: a name that is not UTF-8 is written with \xHH, its bytes beside)
        return with_name_bytes(d, ("input", "output", "partial_output"))

    def write_json(self, path: str | Path) -> None:
        """Write the summary as JSON: whole or not at all (through a hidden file beside it, so a
        full disk leaves an earlier report as it was, not emptied), into a link's target (the
        link stays), keeping an earlier report's permission bits; a pipe or a device
        (``/dev/stdout``) is written as it is. An OSError names ``path``."""
        import os
        import shutil
        import uuid

        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path.exists() and not path.is_file():  # /dev/stdout, a named pipe
            try:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
            except OSError as e:
                raise OSError(e.errno, f"the report could not be written: {e.strerror or e}", str(path)) from e
            return
        real = path.resolve()  # (a link: its target is written, the link stays)
        tmp = real.with_name(f".{real.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            if real.exists():
                try:
                    shutil.copymode(real, tmp)
                except OSError:
                    pass
            os.replace(tmp, real)
        except OSError as e:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise OSError(e.errno, f"the report could not be written: {e.strerror or e}", str(path)) from e

    def format(self) -> str:
        lines = [
            f"model {self.model} on {self.device} ({self.precision})"
            + (f", {self.mask} paste mask ({self.faces_parsed} faces parsed)" if self.mask != "feather" else "")
            + (f", strength {self.strength:g}" if self.strength != 1.0 else ""),
            f"frames in {self.frames_in}, out {self.frames_out}, dropped {self.frames_dropped}, "
            f"corrupt packets skipped {self.packets_corrupt}",
            f"faces restored {self.faces_restored} in {self.frames_with_faces} frames, "
            f"detector calls {self.detector_calls}"
            + (f" ({self.detector_probes} of them region probes)" if self.detector_probes else "")
            + (f", {self.detections_implausible} detections with implausible landmarks left untouched"
               if self.detections_implausible else ""),
            f"{self.seconds:.2f} s, {self.fps:.2f} frames/s" + (
                ", video stream-copied" if self.encoder == "copy"
                else f", video encoded with {self.encoder}" if self.encoder else ""),
        ]
        if self.stage_seconds:
            lines.append(
                "stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in sorted(self.stage_seconds.items()))
            )
        if self.mean_added_latency is not None:
            lines.append(f"mean added latency {self.mean_added_latency * 1000:.0f} ms")
        for fb in self.fallbacks:
            lines.append(f"fallback: {fb}")
        for sk in self.skipped:
            lines.append(f"skipped: {sk}")
        if self.interrupted and self.stopped_by and not self.partial_output:
            lines.append(f"stopped by {self.stopped_by}: the outputs were finished under their own names")
        elif self.interrupted:
            lines.append(f"interrupted; partial output: {self.partial_output or 'none'}")
        return "\n".join(lines)
