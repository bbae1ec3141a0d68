"""Which ``NAME.partial.EXT`` files this tool wrote for interrupted runs.

A finished run removes the partial outputs its earlier, interrupted runs left beside its output.
By name alone that also removed files that only happen to be called so: a folder run restored
``a.partial.webm`` into ``out/a.partial.webm``, then, writing ``out/a.webm``, removed that finished
output as "left by an interrupted earlier run" (hunt 17). So each partial output is recorded when
it is written (its path, size and modification time, in ``partials.json`` of the cache directory,
``$STREAM_GPEN_HOME``), and only a file recorded so, and unchanged since, is removed. Where the
record cannot be written (no cache directory), nothing is removed: a partial output too many is
kept, never a file too many deleted.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("stream_gpen")

_LOCK = threading.Lock()
_MOST = 1000  # entries kept (the oldest go first): a record, not an archive


def _record_file() -> Path | None:
    try:
        from stream_gpen.weights import home_dir

        return home_dir() / "partials.json"
    except Exception:  # noqa: BLE001 - no cache directory (no $HOME): nothing is recorded
        return None


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _key(path) -> str:
    return os.path.abspath(os.fspath(path))


def _stamp(path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _write(record: Path, data: dict) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(f".{record.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, record)


@contextlib.contextmanager
def _locked(record: Path):
    """The record's read-modify-write under a lock shared with other processes (two runs recording
    at once lost entries: 108 of 160 kept), where the system has ``fcntl``; the thread lock always."""
    with _LOCK:
        try:
            import fcntl
        except ImportError:  # (Windows: the thread lock alone)
            yield
            return
        record.parent.mkdir(parents=True, exist_ok=True)
        with open(record.with_name(record.name + ".lock"), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def remember_partial(path) -> None:
    """Record ``path`` (just written) as an interrupted run's partial output."""
    record, stamp = _record_file(), _stamp(path)
    if record is None or stamp is None:
        return
    try:
        with _locked(record):
            data = {k: v for k, v in _read(record).items() if os.path.exists(k)}
            data[_key(path)] = stamp
            if len(data) > _MOST:
                data = dict(list(data.items())[-_MOST:])
            _write(record, data)
    except OSError as e:  # (a read-only cache: the partial output is kept for good, said here)
        log.info("could not record %s as a partial output (%s): a finished run will leave it", path, e)


def is_partial(path) -> bool:
    """Whether ``path`` is a partial output this tool recorded, unchanged since (same size and
    modification time)."""
    if ".partial" not in os.path.basename(os.fspath(path)):
        return False  # (only such names are ever recorded: no read of the record for the others)
    record = _record_file()
    if record is None:
        return False
    stamp = _read(record).get(_key(path))
    return stamp is not None and stamp == _stamp(path)


def forget_partial(path) -> None:
    """Drop ``path`` from the record (removed, or replaced by a whole output)."""
    record = _record_file()
    if record is None:
        return
    try:
        with _locked(record):
            data = _read(record)
            if data.pop(_key(path), None) is not None:
                _write(record, data)
    except OSError:
        pass
