"""Video jobs: uploaded to disk, run one at a time per server in arrival order, expired after a TTL.

Each job owns ``<work_dir>/<job id>/`` (``upload.bin`` in, ``result.mp4`` out). Ids are 128-bit
random (``secrets``), so they cannot be guessed, and they are the only names used on disk: nothing
a client sends ever becomes part of a path. The folder is removed when the job fails, is cancelled,
is deleted, expires, or the server shuts down. An upload is opened as untrusted
(``Enhancer.enhance_file(untrusted=True)``): media demuxers and the ``file`` protocol only, so a
playlist or concat script posing as a video cannot make FFmpeg read other files on the server.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from stream_gpen.errors import (Cancelled, Interrupted, JobNotFoundError, PayloadTooLargeError, QueueFullError,
                                 ShuttingDownError)

log = logging.getLogger(__name__)

JOB_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
INPUT_NAME = "upload.bin"  # no client extension: FFmpeg probes the content
OUTPUT_NAME = "result.mp4"
OWNER_NAME = "owner"  # "<machine tag> <pid> <lock file>" of the server whose job the folder is (see _reclaim)

#: a server's own temporary work folder (no ``--work-dir``) in the system's temporary folder, and
#: the lock file it holds in it (see :func:`make_temp_work_dir`)
TEMP_PREFIX = "stream-gpen-serve-"
TEMP_LOCK_NAME = ".stream-gpen-serve.lock"


def make_temp_work_dir() -> tuple[Path, object | None]:
    """A fresh temporary work folder and the open lock file held in it (an exclusive ``flock``,
    which the kernel releases however the process ends: a next server tells this folder's server
    is gone by taking it, see :func:`reclaim_temp_work_dirs`); None for the file where locks are
    not available (Windows, a file system without them): such a folder is never reclaimed.

    The lock file gets its name only once held, so no other server can take it in between."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    try:
        import fcntl
    except ImportError:
        return d, None
    new = d / (TEMP_LOCK_NAME + ".new")
    f = None
    try:
        f = open(new, "w")
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(new, d / TEMP_LOCK_NAME)
    except OSError:
        if f is not None:
            f.close()
        new.unlink(missing_ok=True)
        return d, None
    return d, f


def reclaim_temp_work_dirs() -> None:
    """Remove the temporary work folders (with users' uploads and results) that servers killed
    with ``kill -9``, by the OOM killer or a lost terminal left in the system's temporary folder:
    nothing else ever removed them. Only this user's ``stream-gpen-serve-*`` folders whose lock
    file (:func:`make_temp_work_dir`) can be taken, so whose server has ended; a live server's
    folder, one without the lock file (a server starting, or an older version's) and anything
    else there are left alone."""
    import tempfile

    try:
        import fcntl
    except ImportError:
        return
    base = Path(tempfile.gettempdir())
    removed, size = 0, 0
    try:
        folders = [d for d in base.glob(TEMP_PREFIX + "*") if not d.is_symlink() and d.is_dir()]
    except OSError:
        return
    for d in folders:
        try:
            if hasattr(os, "getuid") and d.stat().st_uid != os.getuid():
                continue
            with open(d / TEMP_LOCK_NAME, "r+") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its server runs
                size += sum(p.stat().st_size for p in d.rglob("*") if p.is_file() and not p.is_symlink())
                shutil.rmtree(d, ignore_errors=True)
                removed += not d.exists()
        except OSError:  # (no lock file: see above)
            continue
    if removed:
        log.info("removed %d temporary work folder(s) (%s bytes) left in %s by a server that was killed",
                 removed, f"{size:,}", base)


def _drop_partials(job) -> None:
    """A failed or cancelled job's frames kept as ``.partial`` (what a command-line run keeps for
    its user): nobody can fetch them from the server, so they are not left in the job folder."""
    from stream_gpen.io._partials import forget_partial

    for p in job.dir.glob("*.partial*"):
        if p != job.input_path:
            forget_partial(p)
            p.unlink(missing_ok=True)

class JobState(str, Enum):
    uploading = "uploading"
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


FINAL = (JobState.done, JobState.failed, JobState.cancelled)


@dataclass
class Job:
    id: str
    dir: Path
    model: str
    faces: str
    strength: float = 1.0
    start: float = 0.0  # seconds: restore only a window of the upload
    duration: float | None = None
    aligned: bool = False  # every frame is an aligned face crop (Enhancer(aligned=True))
    chroma: str = "auto"  # enhance_file's: "420" writes a 4:2:2 / 4:4:4 upload as 4:2:0, which every player plays
    state: JobState = JobState.uploading
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    frames_done: int = 0
    frames_total: int | None = None
    faces_restored: int = 0
    summary: dict | None = None
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def window(self) -> dict:
        """``start``/``duration`` for ``enhance_file``, only when set (enhancers without them work)."""
        return {**({"start": self.start} if self.start else {}),
                **({"duration": self.duration} if self.duration is not None else {})}

    @property
    def input_path(self) -> Path:
        return self.dir / INPUT_NAME

    @property
    def output_path(self) -> Path:
        return self.dir / OUTPUT_NAME

    def to_dict(self, ttl_s: float, *, root_path: str = "") -> dict:
        progress = None
        if self.state is JobState.done:  # (the total was the header's estimate: VFR, a cut-off file)
            progress = 1.0
        elif self.frames_total:
            progress = round(min(1.0, self.frames_done / self.frames_total), 4)
        result = f"{root_path}/v1/videos/{self.id}/result" if self.state is JobState.done else None
        return {
            "id": self.id,
            "state": self.state.value,
            "model": self.model,
            "faces": self.faces,
            "strength": self.strength,
            "start": self.start,
            "duration": self.duration,
            "aligned": self.aligned,
            "chroma": self.chroma,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "expires": (self.finished + ttl_s) if self.finished else None,
            "frames_done": self.frames_done,
            "frames_total": self.frames_total,
            "faces_restored": self.faces_restored,
            "progress": progress,
            # (its output: where the result is, as a --report's names the file written)
            "summary": None if self.summary is None else {**self.summary, "output": result},
            "error": self.error,
            "result": result,
        }


def _scrub(text: str, job) -> str:
    """``text`` with the server's own paths (the upload's, the result's, the job folder's) replaced
    by what they are to the client: "the upload", "the result", "the job folder"."""
    for path, name in ((job.input_path, "the upload"), (job.output_path, "the result"), (job.dir, "the job folder")):
        for form in (repr(str(path)), str(path)):
            text = text.replace(form, name)
    return text


def _scrubbed(value, job):
    if isinstance(value, str):
        return _scrub(value, job)
    if isinstance(value, dict):
        return {k: _scrubbed(v, job) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrubbed(v, job) for v in value]
    return value


def _public_summary(summary, job) -> dict:
    d = summary.to_dict()
    # Server paths are nobody's business; the client knows its own file. The fields that name them
    # (a --report's input, output and partial_output) say what they are to a client instead (the
    # output: the result's path, filled in by Job.to_dict; a job keeps no partial file), and where
    # a message names them they are replaced (fallbacks such as "<path> looks truncated").
    d.update(input="the upload", output=None, partial_output=None)
    for k in ("input_bytes", "output_bytes", "partial_output_bytes"):  # (a name's bytes: as much the server's)
        d.pop(k, None)
    # The pipeline's advice names outputs a job cannot choose ("write .mov or .mkv (ProRes 4444)
    # or .webm (VP9) to keep it"): said as what it is for a client of the server
    d["fallbacks"] = [f + _SERVER_WRITES_MP4 if _OTHER_OUTPUT.search(f) else f for f in d.get("fallbacks") or []]
    return _scrubbed(d, job)


def _before_start(view, exc: BaseException):
    """The summary of a job whose run failed or was cancelled before it began:
    :meth:`RunSummary.before_start`'s, with the model's name, strength and mask."""
    from stream_gpen.summary import RunSummary

    s = RunSummary.before_start("the upload", None, str(getattr(view, "model_name", "") or ""), exc)
    if s is not None:
        s.strength = float(getattr(view, "strength", 1.0))
        s.mask = str(getattr(view, "paste_mask", "feather"))
    return s


def _kept_chroma_note(job) -> str | None:
    """A note for a done job whose result kept the upload's 4:2:2 / 4:4:4 chroma (``chroma`` auto,
    as ``enhance --chroma auto``): H.264/HEVC 4:2:2 and 4:4:4 are for editors, and browsers, phones
    and TVs mostly do not play them; ``?chroma=420`` makes a result they play. Read from the
    result itself; None for a 4:2:0 one (or one that cannot be read)."""
    if job.chroma != "auto":
        return None
    import av

    from stream_gpen.io._convert import chroma_of

    try:
        with av.open(str(job.output_path)) as c:
            ctx = c.streams.video[0].codec_context
            codec, pix = ctx.name, ctx.pix_fmt
    except Exception:  # noqa: BLE001 - no note is better than a failed job for want of one
        return None
    kept = chroma_of(pix) if pix else "420"
    if kept == "420":
        return None
    said = {"h264": "H.264", "hevc": "HEVC", "av1": "AV1", "vp9": "VP9"}.get(codec, codec)
    return (f"the result is {said} {kept[0]}:{kept[1]}:{kept[2]} ({pix}), the upload's chroma kept: video editors take "
            f"it, but browsers, phones and TVs mostly do not play it; upload it with ?chroma=420 for a 4:2:0 result "
            f"that every player decodes")


_OTHER_OUTPUT = re.compile(r"\bwrite (?:\.(?!mp4\b)[a-z0-9]+|one of those)")
_SERVER_WRITES_MP4 = (" [this server writes every video job as MP4 (H.264/HEVC): `stream-gpen enhance` with such an "
                      "output keeps it]")


#: the server's disk refused (full, file too large for its limits, read-only, over quota)
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT})


def _storage_failure(exc: BaseException) -> OSError | None:
    """The OSError of the server's own storage behind ``exc`` (itself, or what it was raised from:
    the sink's EncodeError wraps it), or ``None``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


class _JobNamed(logging.Filter):
    """Prefixes ``video job <id>:`` to what the running job's pipeline logs (its own thread, and the
    decode and encode threads it starts; one job runs at a time): an operator could not tell which
    upload a warning such as "audio stream #1 transcoded to aac" was about."""

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.prefix = f"video job {job_id}: "

    def filter(self, record: logging.LogRecord) -> bool:
        thread = record.threadName or ""
        if (thread == "stream-gpen-jobs" or thread.startswith(("decode:", "encode:"))) and \
                not str(record.msg).startswith(("video job ", self.prefix)):
            try:
                record.msg, record.args = self.prefix + record.getMessage(), ()
            except Exception:  # noqa: BLE001 - a malformed log call is the handler's to report, as it was
                pass
        return True


def _public_error(exc: Exception, job) -> str:
    """A failed job's error for its client: the server's own paths (the upload's, the job
    folder's) become "the upload" / "the job folder"; a picture sent as a video is pointed to the
    image endpoint; the server's full (or read-only) disk is a StorageError to retry later, not a
    fault of the upload (nor a name of the pipeline's temporary files)."""
    full = _storage_failure(exc)
    if full is not None:
        return (f"StorageError: the server could not store the result ({full.strerror or 'storage error'}); "
                "retry later")
    msg = _scrub(str(exc), job)
    from stream_gpen.io._unread import unread_photo

    unread = unread_photo(job.input_path)
    if unread is not None:
        # a raw DNG or a JPEG XL: neither endpoint reads it (a DNG opened as a TIFF still, its small
        # preview, and was pointed to the image endpoint, which refuses it)
        return (f"{type(exc).__name__}: the upload is {unread[1]}, and no endpoint reads it: "
                f"{unread[2].replace(' and restore that', ', and send that')}")
    try:
        from PIL import Image

        from stream_gpen.io._image import tiff_pages

        with Image.open(job.input_path) as im:  # (still there: removed after this)
            pages = len(tiff_pages(im)[0])  # (a TIFF's preview is not a second page)
            if pages == 1 or im.format == "MPO":  # (a phone's JPEG with its depth or preview image)
                msg = f"the upload is a still {im.format} picture, not a video: send it to /v1/images:enhance"
            elif im.format in ("PNG", "WEBP", "TIFF"):  # (an animated GIF is read as a video: its error stands)
                # an animated PNG/WebP or a multi-page TIFF: FFmpeg's refusal of its demuxer read as
                # one of a playlist ("... the upload returned 22")
                what = "multi-page" if im.format == "TIFF" else "animated"
                msg = (f"the upload is {'a' if what == 'multi-page' else 'an'} {what} {im.format} picture ({pages} {'pages' if what == 'multi-page' else 'frames'}), "
                       "which this endpoint does not read: it takes video files and GIF animations; `stream-gpen "
                       "enhance` restores it as it is, or send it as a video or GIF")
    except Exception:  # noqa: BLE001 - not a picture either: the pipeline's message stands
        pass
    return f"{type(exc).__name__}: {msg}"


class JobManager:
    """Queue and run video jobs in a worker thread; expire finished ones.

    ``max_jobs`` bounds uploading + queued + running jobs (more -> QueueFullError, HTTP 429).
    """

    def __init__(self, work_dir: Path, models, schedulers: dict, metrics, *, max_jobs: int, ttl_s: float,
                 max_pixels: int | None = None, encoder: str = "software", lock_dir: Path | None = None) -> None:
        self.work_dir = Path(work_dir)
        #: where the server's lock file is held (see _hold_lock): the user's --work-dir, beside the
        #: job folders; None (a temporary work folder of its own, removed whole): no lock
        self.lock_dir = Path(lock_dir) if lock_dir is not None else None
        self.models = models
        self.schedulers = schedulers
        self.metrics = metrics
        self.max_jobs = max_jobs
        self.ttl_s = ttl_s
        self.max_pixels = max_pixels  # per video frame, as --max-pixels is per image
        self.encoder = encoder  # software / nvenc / auto, for every job (ServerConfig.encoder)
        self._jobs: dict[str, Job] = {}
        self._queue: deque[str] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._closing = False  # shutdown has begun: no new uploads, no new job starts
        self._thread: threading.Thread | None = None
        self._expirer: threading.Thread | None = None  # removes results past the TTL (see _expire_loop)
        self._lock_file = None  # held while the server runs (see _hold_lock)

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "JobManager":
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._reclaim()
        self._hold_lock()
        self._thread = threading.Thread(target=self._run, name="stream-gpen-jobs", daemon=True)
        self._thread.start()
        self._expirer = threading.Thread(target=self._expire_loop, name="stream-gpen-expiry", daemon=True)
        self._expirer.start()
        return self

    def _hold_lock(self) -> None:
        """Hold ``.stream-gpen-server-<random>.lock`` in ``lock_dir`` for the server's life (an exclusive
        ``flock``, released by the kernel however the process ends): the job folders name it, and
        a next server tells a dead owner from a live one by whether it can take the lock, across
        container restarts (a new process namespace: its process ids mean nothing there)."""
        self._lock_file = None
        if self.lock_dir is None:
            return
        try:
            import fcntl
        except ImportError:  # (Windows: the process check alone, see _reclaim)
            return
        path = self.lock_dir / f".stream-gpen-server-{secrets.token_hex(8)}.lock"
        try:
            f = open(path, "w")
        except OSError:
            return
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # (a file system without locks: the process check alone)
            f.close()
            path.unlink(missing_ok=True)
            return
        self._lock_file = f

    def _release_lock(self) -> None:
        f, self._lock_file = self._lock_file, None
        if f is not None:
            try:
                Path(f.name).unlink(missing_ok=True)
            except OSError:
                pass
            f.close()

    def _owner_gone(self, lock: str) -> bool | None:
        """Whether the server that held work-folder lock file ``lock`` has ended (its lock can be
        taken); None where it cannot be told: no ``fcntl``, or the file is gone (a tmp cleaner may
        have removed a live server's: the process check decides then)."""
        if self.lock_dir is None:
            return None
        try:
            import fcntl
        except ImportError:
            return None
        path = self.lock_dir / Path(lock).name
        try:
            with open(path, "r+") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
                path.unlink(missing_ok=True)  # (its server is gone: the stale lock file too)
                return True
        except OSError:
            return None

    def _reclaim(self) -> None:
        """Remove the job folders (users' uploads and results) that a server killed with
        ``kill -9`` or by the OOM killer left in the work folder: nothing else ever removes them,
        and each crash left up to ``max_jobs`` uploads. A folder is its server's while that
        server holds the lock file its owner file names (see _hold_lock: a server sharing the
        work folder keeps its jobs, also across a container restart); where locks are not
        available, while its process is alive (this machine and process namespace only, as the
        sink judges its temporary outputs). A folder of an older version, without the file, is
        left alone."""
        from stream_gpen.io._sink import _machine_tag, _pid_alive, _pids_comparable

        here, removed, size = _machine_tag(), 0, 0
        try:
            folders = [d for d in self.work_dir.iterdir() if JOB_ID_RE.match(d.name) and d.is_dir()]
        except OSError:
            return
        for d in folders:
            try:
                tag, pid, *lock = (d / OWNER_NAME).read_text().split()
                pid = int(pid)
            except (OSError, ValueError):
                continue
            gone = self._owner_gone(lock[0]) if lock else None
            if gone is False or gone is None and (tag != here or pid == os.getpid() or _pid_alive(pid)
                                                   or not _pids_comparable()):
                continue
            size += sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
            shutil.rmtree(d, ignore_errors=True)
            removed += not d.exists()
        if removed:
            log.info("removed %d video job folder(s) (%s bytes) left in %s by a server that was killed",
                     removed, f"{size:,}", self.work_dir)
        if self.lock_dir is not None:  # the lock files of killed servers that had no jobs
            try:
                stale = list(self.lock_dir.glob(".stream-gpen-server-*.lock"))
            except OSError:
                stale = []
            for lock in stale:
                self._owner_gone(lock.name)  # (removes it where its server is gone)

    def stop_accepting(self) -> None:
        """Shutdown has begun (a signal; the server still drains open requests): refuse new uploads
        and uploads that finish now (503 "the server is shutting down"), and start no queued job,
        rather than answer 202 for a job that the exit is about to drop.

        Called from a signal handler: one attribute write, no lock (the handler may interrupt a
        thread holding it). The worker, if waiting, only waits while there is nothing to start.
        """
        self._closing = True

    @property
    def closing(self) -> bool:
        """Shutdown has begun (see :meth:`stop_accepting`)."""
        return self._closing

    def close(self, timeout: float = 30.0) -> None:
        """Cancel everything, wait for the running job to stop, remove every job folder."""
        with self._cond:
            self._stop = self._closing = True
            for job in self._jobs.values():
                job.cancel.set()
            self._cond.notify_all()
        for t in (self._thread, self._expirer):
            if t is not None:
                t.join(timeout)
        with self._cond:
            for job in list(self._jobs.values()):
                self._remove_files(job)
            self._jobs.clear()
            self._queue.clear()
        self._release_lock()

    def __enter__(self) -> "JobManager":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- API ---------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self._cond:
            out = {s.value: 0 for s in JobState}
            for j in self._jobs.values():
                out[j.state.value] += 1
            return out

    def new_job(self, *, model: str | None, faces: str | None, strength: float | None = None,
                start: float = 0.0, duration: float | None = None, aligned: bool | None = None,
                chroma: str = "auto") -> Job:
        """Reserve a slot and a folder for an upload (state ``uploading``)."""
        name, sel, st, al = self.models.resolve(model, faces, strength, aligned)
        with self._cond:
            if self._closing:
                raise ShuttingDownError()
            active = sum(1 for j in self._jobs.values() if j.state not in FINAL)
            if active >= self.max_jobs:
                raise QueueFullError(f"video queue full ({self.max_jobs} jobs uploading, queued or running); retry later",
                                     retry_after_s=30, hint="raise --max-jobs")
            job_id = secrets.token_urlsafe(16)
            job = Job(job_id, self.work_dir / job_id, name, sel, st, float(start), duration, al, chroma)
            # (parents: a tmp cleaner may have removed the work folder of a server idle for days)
            job.dir.mkdir(mode=0o700, parents=True)
            try:
                lock = self._lock_file
                from stream_gpen.io._sink import _machine_tag

                (job.dir / OWNER_NAME).write_text(f"{_machine_tag()} {os.getpid()}"
                                                  + (f" {Path(lock.name).name}" if lock is not None else "") + "\n")
            except OSError:
                shutil.rmtree(job.dir, ignore_errors=True)
                raise
            self._jobs[job_id] = job
        return job

    def discard(self, job: Job) -> None:
        """Upload failed: forget the job and its files."""
        with self._cond:
            self._jobs.pop(job.id, None)
        self._remove_files(job)

    def enqueue(self, job: Job) -> None:
        with self._cond:
            if job.id not in self._jobs or self._closing:  # shut down meanwhile
                self._jobs.pop(job.id, None)
                self._remove_files(job)
                raise ShuttingDownError()
            job.state = JobState.queued
            self._queue.append(job.id)
            self._cond.notify_all()

    def get(self, job_id: str) -> Job:
        with self._cond:
            self._expire_locked()
            job = self._jobs.get(job_id) if JOB_ID_RE.match(job_id or "") else None
            if job is not None and job.state is JobState.done and not job.output_path.exists():
                # its result removed under the server (a tmp cleaner): gone, as an expired job is,
                # not "done" with a result link that answers "not done"
                self._jobs.pop(job.id, None)
                self._remove_files(job)
                log.warning("video job %s: its result was removed from the work folder; the job is dropped", job.id)
                raise JobNotFoundError(f"video job {job_id!r}: its result is no longer on the server (the file was "
                                       "removed); upload the video again")
        if job is None:
            raise JobNotFoundError(f"no video job {job_id!r} (unknown, expired or deleted)")
        return job

    def delete(self, job_id: str) -> Job:
        """Cancel a queued or running job, or delete a finished one; files go in every case.

        A running job is told to stop; its folder is removed by the worker when it has stopped
        (within one frame). Returns the job (state ``cancelled`` unless it had already finished).
        """
        job = self.get(job_id)
        with self._cond:
            if job.state is JobState.running:
                job.cancel.set()
                job.error = "cancelled by DELETE"
                # The record goes now; the worker removes the files when the pipeline has stopped.
                self._jobs.pop(job.id, None)
                return job
            if job.state in (JobState.queued, JobState.uploading):
                try:
                    self._queue.remove(job.id)
                except ValueError:
                    pass
                job.state = JobState.cancelled
                job.cancel.set()
            self._jobs.pop(job.id, None)
        self._remove_files(job)
        return job

    def snapshot(self, job: Job, *, root_path: str = "") -> dict:
        """``job``'s state as the API answers it; ``root_path`` prefixes its ``result`` link."""
        with self._cond:
            return job.to_dict(self.ttl_s, root_path=root_path)

    # --- worker ------------------------------------------------------------------------------------
    def _remove_files(self, job: Job) -> None:
        shutil.rmtree(job.dir, ignore_errors=True)

    def _expire_locked(self) -> float | None:
        """Drop finished jobs older than the TTL; returns seconds until the next one expires."""
        now = time.time()
        nxt = None
        for job in list(self._jobs.values()):
            if job.finished is None:
                continue
            left = job.finished + self.ttl_s - now
            if left <= 0:
                self._jobs.pop(job.id, None)
                self._remove_files(job)
                log.info("video job %s expired", job.id)
            else:
                nxt = left if nxt is None else min(nxt, left)
        return nxt

    def _expire_loop(self) -> None:
        """Remove each finished job when its TTL is up, whatever the worker is doing: expiry was
        done by the worker between jobs (and by requests), so a long job kept every result that
        expired meanwhile on disk, beyond what ``--work-dir`` was sized for. Woken when a job
        ends (its expiry may be the next one) and at shutdown."""
        with self._cond:
            while not self._stop:
                nxt = self._expire_locked()
                self._cond.wait(timeout=nxt if nxt is not None else 60.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop:
                    if self._queue and not self._closing:
                        break
                    self._cond.wait()  # (enqueue and close notify)
                if self._stop:
                    return
                job = self._jobs.get(self._queue.popleft())
                if job is None or job.state is not JobState.queued:
                    continue
                job.state = JobState.running
                job.started = time.time()
            self._run_job(job)

    def _run_job(self, job: Job) -> None:
        view = self.models.view(job.model, job.faces, job.strength, job.aligned)
        sched = self.schedulers[str(view.device)]
        counted = 0

        def on_progress(done: int, total: int | None, faces: int) -> None:
            nonlocal counted
            job.frames_done, job.frames_total, job.faces_restored = done, total, faces
            self.metrics.add_faces(faces - counted)
            counted = faces
            # Between frames the pipeline is not using the model: let waiting image batches in.
            sched.yield_to_waiters()

        state, summary, error = JobState.failed, None, None
        named = _JobNamed(job.id)
        handlers = logging.getLogger("stream_gpen").handlers + logging.getLogger().handlers
        for h in handlers:
            h.addFilter(named)
        try:
            with sched.long():
                if job.cancel.is_set():
                    raise Interrupted("cancelled before start")
                summary = view.enhance_file(job.input_path, job.output_path, overwrite=True,
                                            on_progress=on_progress, cancel=job.cancel, untrusted=True,
                                            max_pixels=self.max_pixels, **job.window(),
                                            **({"encoder": self.encoder} if self.encoder != "software" else {}),
                                            **({"chroma": job.chroma} if job.chroma != "auto" else {}))
            state = JobState.done
        except (Interrupted, Cancelled) as exc:
            state = JobState.cancelled
            summary = getattr(exc, "summary", None) or _before_start(  # (the run so far: interrupted)
                view, exc if isinstance(exc, KeyboardInterrupt) else Interrupted(str(exc)))
        except Exception as exc:  # the job fails; the server and the next job go on
            error = _public_error(exc, job)
            if isinstance(exc, PayloadTooLargeError) and self.max_pixels is not None \
                    and error.endswith(f"over the limit of {self.max_pixels}"):
                # the source's words name no option (a Python caller's limit is its max_pixels=);
                # this one is the server's, as the image endpoint's 413 says
                error += " (the server's --max-pixels)"
            # the run's summary up to the failure (a --report's for a failed run: its frames, faces,
            # stages and error), which the pipeline attaches to its exception; for a failure before
            # the run began (an upload that is no video, a start past its end), the zero-count one
            # a --report has then
            summary = getattr(exc, "summary", None) or _before_start(view, exc)
            log.warning("video job %s failed: %s", job.id, f"{type(exc).__name__}: {exc}")
        finally:
            for h in handlers:
                h.removeFilter(named)
            # Also on BaseException: the uploaded input is never left behind.
            job.input_path.unlink(missing_ok=True)
            if state is not JobState.done:
                _drop_partials(job)
        from stream_gpen.summary import RunSummary

        public = None
        if isinstance(summary, RunSummary):
            public = _public_summary(summary, job)
            note = _kept_chroma_note(job) if state is JobState.done else None
            if note is not None:
                public["fallbacks"].append(note)
            if state is JobState.failed:
                public["error"] = error  # (said as the job's error is: no server paths, storage as such)
        with self._cond:
            job.state = state
            job.finished = time.time()
            job.error = error if state is JobState.failed else job.error
            if public is not None:
                job.summary = public
                if state is JobState.done:
                    job.frames_done = summary.frames_out
                    job.frames_total = summary.frames_out  # what there was, not the header's guess
                    job.faces_restored = summary.faces_restored
            gone = job.id not in self._jobs  # deleted while running
            self._cond.notify_all()  # (the expiry thread: this job's TTL has begun)
        if state is not JobState.done or gone:
            self._remove_files(job)
