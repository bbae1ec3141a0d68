"""Weights manager: where checkpoints live, how they are fetched and verified.

Every downloadable file is described by a :class:`WeightFile`. GPEN generators are listed in
:mod:`stream_gpen.models.registry`; the RetinaFace detectors are listed here.

Where files are looked for, in this order (the first good copy wins):

1. an explicit path (``path=`` / ``--weights PATH``): used as given, nothing else is searched,
   nothing is downloaded and the file is not checked against the registry (it may be a
   fine-tuned checkpoint of the same architecture on purpose), only its zip members against
   their CRC-32 (damaged bytes);
2. the cache directory ``$STREAM_GPEN_HOME`` (default ``~/.cache/stream-gpen``), which is also
   where downloads go;
3. the checkout's ``weights/`` folder (beside the ``stream_gpen`` package, only when running
   from a source checkout), where files can be dropped by hand.

In each directory a file is accepted under its ``filename`` or any of its ``aliases``. A found
file whose size or sha256 differs from the registry's, or (with no published sha256) that is not
a whole checkpoint archive whose members match their CRC-32 and whose tensor names and shapes are
the network's, is reported (logged) and skipped, never used; so is one the file system will not
read (no read permission), and the search goes on. That check reads the whole file, so it is done once per copy: its verdict is kept in
``verified.json`` beside the copy (where the folder is writable) and reused while the copy's size,
mtime, ctime and inode stay the same; ``weights verify`` always reads everything. A download that
replaces such a copy in the cache first moves it aside to ``<target>.ignored`` (a warning says
so): it may be the user's own file. ``STREAM_GPEN_OFFLINE=1`` forbids downloads.

Downloads stream into ``<target>.part`` (resumed with an HTTP ``Range`` request on the next try
from the same URL, which ``<target>.part.url`` records: a mirror's copy may be a different file,
so a part is never continued from another URL; with the server's ETag or Last-Modified, sent back
as ``If-Range``, so a file changed on the server since is sent whole, not spliced on). Each URL
has its own part (the second URL's is ``<target>.part-2``): on a connection that drops, a mirror tried after a cut must not start over
the first URL's part, or no run would ever finish. The part file is renamed to its final name
only after its size and sha256 check out (or, where no sha256 is published, every member of its
zip archive matches its CRC-32); a file that fails the check is deleted, so a corrupt download never sits under the
final name. A ``<target>.lock`` file beside it makes a second process wait for the first instead
of writing into the same part file (``flock``; on Windows ``msvcrt.locking``); it is removed when
the download ends (see :func:`_exclusive`).
"""
from __future__ import annotations

import contextlib
import difflib
import errno
import hashlib
import http.client
import json
import logging
import os
import shutil
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Literal, TypeVar

from stream_gpen import _terminal
from stream_gpen._places import file_size_limit
from stream_gpen._urls import masked as _masked, proxy_for, via_proxy as _via_proxy, without_passwords
from stream_gpen.errors import (
    CheckpointError,
    ChecksumError,
    DownloadError,
    InvalidInputError,
    WeightsError,
    WeightsNotFoundError,
)

if TYPE_CHECKING:
    from stream_gpen.models.registry import ModelSpec

logger = logging.getLogger(__name__)

HOME_ENV = "STREAM_GPEN_HOME"
OFFLINE_ENV = "STREAM_GPEN_OFFLINE"
DEFAULT_HOME = Path("~/.cache/stream-gpen")

# The source checkout root (parent of the package). Tests point this elsewhere.
_CHECKOUT = Path(__file__).resolve().parents[1]

# Socket timeout per blocking operation (connect, each read). Long enough for a slow mirror,
# short enough that a dead connection fails instead of hanging the command.
_TIMEOUT_S = 30.0
_CHUNK = 1 << 20  # 1 MiB: few syscalls, and a cut connection loses at most this much.
_USER_AGENT = "stream-gpen (weights manager; python-urllib)"
_NOT_WEIGHTS = {"text/html": "an HTML page", "application/json": "a JSON message", "text/plain": "a text message"}


@dataclass(frozen=True)
class WeightFile:
    """One downloadable weights file.

    ``size`` and ``sha256`` are ``None`` where nobody has published them (we say so rather than
    guess); a file is then accepted on its size where that is known and on being a whole
    checkpoint archive whose members match their CRC-32 and whose tensor names and shapes are the
    network's, and ``verify`` reports it as "unverified".
    """

    name: str  # registry name, e.g. "gpen-bfr-512" or "retinaface-mobilenet0.25"
    filename: str  # file name on disk
    urls: tuple[str, ...]  # tried in order
    size: int | None = None  # bytes, where known
    sha256: str | None = None  # hex digest, where known
    licence: str = ""
    note: str = ""  # provenance of size/sha256, caveats
    aliases: tuple[str, ...] = field(default_factory=tuple)  # other file names accepted on disk

    @property
    def names_on_disk(self) -> tuple[str, ...]:
        """``filename`` first, then the aliases: every name a copy on disk may have."""
        return (self.filename, *self.aliases)


DETECTOR_FILES: dict[str, WeightFile] = {
    "retinaface-resnet50": WeightFile(
        name="retinaface-resnet50",
        filename="detection_Resnet50_Final.pth",
        urls=("https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",),
        size=109_497_761,
        sha256="6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d",
        licence="MIT (biubug6/Pytorch_Retinaface)",
        note="sha256 as pinned by the AUR python-facexlib PKGBUILD; not checked by us (no network here)",
        aliases=("Resnet50_Final.pth", "RetinaFace-R50.pth"),
    ),
    "retinaface-mobilenet0.25": WeightFile(
        name="retinaface-mobilenet0.25",
        filename="detection_mobilenet0.25_Final.pth",
        urls=("https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_mobilenet0.25_Final.pth",),
        size=1_789_735,
        sha256="2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220",
        licence="MIT (biubug6/Pytorch_Retinaface)",
        note="sha256 checked on a byte-identical copy",
        aliases=("mobilenet0.25_Final.pth",),
    ),
}


PARSER_FILES: dict[str, WeightFile] = {
    "parsenet": WeightFile(
        name="parsenet",
        filename="ParseNet-latest.pth",
        urls=(
            "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models/ParseNet-latest.pth",
            "https://github.com/xinntao/facexlib/releases/download/v0.2.2/parsing_parsenet.pth",
        ),
        licence="PSFRGAN's ParseNet (chaofengc); GPEN release / facexlib release (MIT)",
        note=("face-parsing net for --mask parse. GPEN's ParseNet-latest.pth first; facexlib's "
              "parsing_parsenet.pth (the same PSFRGAN ParseNet architecture and 19 CelebAMask-HQ "
              "labels, loaded by the same code) is the mirror. Size and sha256 not published; "
              "not downloaded by us (no network here)"),
        aliases=("parsing_parsenet.pth",),
    ),
}

# --- where files live -----------------------------------------------------------------------
def home_dir() -> Path:
    """The cache directory: ``$STREAM_GPEN_HOME`` or ``~/.cache/stream-gpen`` (may not exist yet).

    Raises :class:`WeightsError` when there is no home directory to expand: ``$STREAM_GPEN_HOME``
    unset (or starting with ``~``) and no ``HOME`` and no passwd entry (a container run under an
    arbitrary user id with a cleared environment), or ``$STREAM_GPEN_HOME`` naming an unknown
    user's home (``~nosuchuser/weights``).
    """
    raw = os.environ.get(HOME_ENV, "").strip()
    try:
        # absolute: a relative $STREAM_GPEN_HOME named another folder from each working directory
        # (the weights downloaded again from each, and `weights path` printed a path a cd broke)
        return (Path(raw).expanduser() if raw else DEFAULT_HOME.expanduser()).absolute()
    except RuntimeError:  # Path.expanduser: "Could not determine home directory."
        hint = f"set {HOME_ENV} to a folder for the weights (it is created if missing)"
        first = Path(raw).parts[0] if raw else ""
        if first not in ("", "~"):  # ~user: a user this system does not know
            raise WeightsError(
                f"cannot tell where the weights cache is: {HOME_ENV}={raw} names the home folder of "
                f"{first}, and there is no user {first[1:]!r} here",
                hint=f"{hint}, as an absolute path or ~/...",
            ) from None
        why = f"{HOME_ENV}={raw} starts with ~, but HOME is not set" if raw else (
            f"{HOME_ENV} is not set, and neither is HOME")
        raise WeightsError(
            f"cannot tell where the weights cache is: {why} (user id "
            f"{os.getuid() if hasattr(os, 'getuid') else '?'} has no home directory)",
            hint=hint + (", as an absolute path" if raw else ""),
        ) from None


def repo_weights_dir() -> Path | None:
    """The checkout's ``weights/`` folder, or ``None`` when not running from a source checkout.

    Only a folder beside a ``pyproject.toml`` counts, so an installed package never picks up
    some unrelated ``site-packages/weights`` directory.
    """
    candidate = _CHECKOUT / "weights"
    if candidate.is_dir() and (_CHECKOUT / "pyproject.toml").is_file():
        return candidate
    return None


def search_dirs() -> list[Path]:
    """Directories searched for weights, in order (cache first, then the checkout's ``weights/``)."""
    dirs = [home_dir()]
    repo = repo_weights_dir()
    if repo is not None and repo.resolve() != dirs[0].resolve():
        dirs.append(repo)
    return dirs


_ONLINE = ("", "0", "false", "no", "off")


def offline() -> bool:
    """True when ``STREAM_GPEN_OFFLINE`` forbids downloads: any value but "", "0", "false", "no",
    "off" (an unknown value such as "yes" or "on" errs on the side of not downloading)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in _ONLINE


# --- registry access ------------------------------------------------------------------------
def all_weight_files() -> dict[str, WeightFile]:
    """Every managed file by registry name: the GPEN generators, the detectors, the face parser."""
    # Imported here: the registry imports WeightFile from this module.
    from stream_gpen.models.registry import MODELS

    files = {name: spec.weights for name, spec in MODELS.items()}
    files.update(DETECTOR_FILES)
    files.update(PARSER_FILES)
    return files


def get_weight_file(name_or_spec: str | WeightFile | ModelSpec) -> WeightFile:
    """Resolve a registry name, a file name (or alias), a :class:`WeightFile` or a ``ModelSpec``."""
    if isinstance(name_or_spec, WeightFile):
        return name_or_spec
    weights = getattr(name_or_spec, "weights", None)
    if isinstance(weights, WeightFile):  # a ModelSpec
        return weights
    if not isinstance(name_or_spec, str):
        raise InvalidInputError(
            f"expected a weights name, WeightFile or ModelSpec, got {type(name_or_spec).__name__}"
        )
    files = all_weight_files()
    # Any case (`--model GPEN-BFR-512` is accepted too), the file names ("GPEN-BFR-512.pth" and
    # friends), and the `--detector` values ("mobilenet0.25" for "retinaface-mobilenet0.25").
    spellings = {}
    for wf in files.values():
        for spelling in (wf.name, *wf.names_on_disk, wf.name.removeprefix("retinaface-")):
            spellings.setdefault(spelling.lower(), wf)
    wf = spellings.get(name_or_spec.strip().lower())
    if wf is not None:
        return wf
    close = difflib.get_close_matches(name_or_spec.strip().lower(), spellings, n=1, cutoff=0.6)
    hint = f"did you mean {spellings[close[0]].name!r}? " if close else ""
    raise InvalidInputError(
        f"unknown weights {name_or_spec!r}; known: {', '.join(files)}",
        hint=hint + "`stream-gpen weights list` shows every managed file",
    )


# --- checking -------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


Status = Literal["ok", "missing", "size mismatch", "checksum mismatch", "damaged", "wrong model", "unverified",
                 "unreadable"]

_ZIP_MAGIC = b"PK\x03\x04"
# torch.save's pre-1.6 format starts with this number, pickled (as 10 little-endian bytes).
_LEGACY_TORCH_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def _damage(path: Path, *, deep: bool = False) -> tuple[str, bool] | None:
    """Why ``path`` is not a whole checkpoint, as ``(detail, truncated)``; ``None`` if it looks whole.

    For files without a published sha256, the only check of their content. Cheap: it reads the
    first bytes and the zip directory at the end of the file, never the weights; ``deep`` also
    reads every member of a zip (torch.save's format) against its CRC-32, which catches flipped
    bytes and a resumed download spliced onto a changed file (done after a download and by
    ``weights verify``: it reads the whole file, as hashing it would). ``truncated``:
    the start of a checkpoint without its end (a cut download, which a resume can finish), as
    opposed to something else altogether (an error page, an empty file).
    """
    with open(path, "rb") as f:
        head = f.read(64)
        size = f.seek(0, os.SEEK_END)
    if head.startswith(_ZIP_MAGIC):  # torch.save since PyTorch 1.6; the GPEN releases
        try:
            archive = zipfile.ZipFile(path)  # reads the central directory at the end
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            return f"a zip archive without its end: truncated at {size:,} bytes", True
        with archive:
            if deep:
                try:
                    bad = archive.testzip()
                except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
                    return f"a checkpoint archive with unreadable contents ({type(exc).__name__}: {exc})", False
                if bad is not None:
                    return f"a checkpoint archive whose member {bad!r} fails its CRC-32 check (damaged bytes)", False
        return None
    if _LEGACY_TORCH_MAGIC in head[:32]:
        # The pre-1.6 format (the RetinaFace files, ParseNet) has no directory: walked instead
        return _legacy_damage(path, size)
    if len(head) >= 9 and head[8:9] == b"{":  # safetensors: header length, JSON header, data
        header_len = int.from_bytes(head[:8], "little")
        if 8 + header_len > size:
            return f"a safetensors file cut inside its header ({size:,} bytes)", True
        try:
            with open(path, "rb") as f:
                f.seek(8)
                header = json.loads(f.read(header_len))
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            return f"a safetensors file with an unreadable header ({exc})", False
        if 8 + header_len + end > size:
            return f"a safetensors file cut short ({size:,} of {8 + header_len + end:,} bytes)", True
        return None
    what = "an empty file" if not head else f"not a PyTorch checkpoint (it starts with {head[:16]!r})"
    return what, False


# torch.save's pre-1.6 storage classes, by their bytes per element
_LEGACY_STORAGES = {"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
                    "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
                    "BoolStorage": 1, "ComplexDoubleStorage": 16, "ComplexFloatStorage": 8,
                    "QInt32Storage": 4, "QInt8Storage": 1, "QUInt8Storage": 1, "QUInt4x2Storage": 1,
                    "QUInt2x4Storage": 1, "UntypedStorage": 1}


class _Anything:
    """Whatever a checkpoint's pickle builds (a tensor, an OrderedDict, a module): taken and
    dropped, so its structure can be walked without importing or running anything from it."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Anything()

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass


def _legacy_damage(path: Path, size: int) -> tuple[str, bool] | None:
    """Whether a pre-1.6 ``torch.save`` file is whole: its pickles (magic, protocol, system
    info, the object with its storages named by key, the list of keys) and then, per key, a
    count of elements and their bytes, which are skipped, not read. A cut download ends inside
    one of these; ``torch.load`` would report it only as a failed load, which "already present"
    and ``verify`` could not tell from a whole file (a stuck cache copy)."""
    import pickle

    storages: dict[str, int] = {}  # key -> bytes per element

    class Walk(pickle._Unpickler):  # (the Python one: its opcodes can be made lenient, below)
        dispatch = dict(pickle._Unpickler.dispatch)

        def find_class(self, module, name):
            if name in _LEGACY_STORAGES:
                return name
            return _Anything

        def persistent_load(self, pid):
            if isinstance(pid, tuple) and pid and pid[0] == "storage" and len(pid) >= 3:
                kind = pid[1] if isinstance(pid[1], str) else None
                # (the first use of a key is what torch.save wrote: a later one may name the
                # same bytes as another type)
                storages.setdefault(str(pid[2]), _LEGACY_STORAGES.get(kind, 0))
            return _Anything()

        def _new(self, kwargs: bool = False):
            # a whole pickled module (torch.save(model)): its classes come back as stand-ins,
            # built by anything that is not a class here ("NEWOBJ class argument must be a type")
            if kwargs:
                self.stack.pop()
            self.stack.pop()
            self.stack[-1] = _Anything()

        dispatch[pickle.NEWOBJ[0]] = lambda self: self._new()
        dispatch[pickle.NEWOBJ_EX[0]] = lambda self: self._new(kwargs=True)

    class Plain(pickle.Unpickler):  # numbers, strings and plain containers: no global is looked up
        def find_class(self, module, name):
            raise pickle.UnpicklingError(f"a global ({module}.{name}) where only plain data belongs")

    with open(path, "rb") as f:
        try:
            for _ in range(3):  # magic number, protocol version, system info
                Plain(f).load()
            Walk(f).load()
            keys = Plain(f).load()
        except (EOFError, pickle.UnpicklingError) as exc:
            if isinstance(exc, EOFError) or "truncated" in str(exc):
                return f"a PyTorch checkpoint (pre-1.6 format) cut inside its index at {size:,} bytes", True
            return f"a PyTorch checkpoint (pre-1.6 format) with an unreadable index ({exc})", False
        except Exception as exc:  # (a pickle of something else; nothing in it was run)
            return f"a PyTorch checkpoint (pre-1.6 format) with an unreadable index ({type(exc).__name__})", False
        if not isinstance(keys, list) or any(storages.get(str(k)) is None for k in keys):
            return "a PyTorch checkpoint (pre-1.6 format) whose storages do not match its index", False
        at = f.tell()
        for k in keys:
            element = storages[str(k)]
            f.seek(at)
            count = f.read(8)
            if len(count) < 8:
                return f"a PyTorch checkpoint (pre-1.6 format) cut short at {size:,} bytes", True
            at += 8 + int.from_bytes(count, "little") * max(element, 1)
            if at > size:
                return f"a PyTorch checkpoint (pre-1.6 format) cut short ({size:,} of at least {at:,} bytes)", True
    # torch.save writes nothing after the last storage: bytes there are another file's (a resume
    # spliced onto a file changed since, or a longer file's end), and torch.load, which never
    # looks, would read the wrong weights. (Only where every storage's element size is known:
    # a type missing from the table is counted as 1 byte an element, a lower bound.)
    if at != size and all(storages[str(k)] for k in keys):
        return (f"a PyTorch checkpoint (pre-1.6 format) with {size - at:,} bytes after its end at {at:,} "
                "(another file's bytes spliced on)"), False
    return None


@dataclass(frozen=True)
class VerifyResult:
    """The state of one copy of a weights file (or of its absence).

    ``status``: "ok" (size and sha256 match), "unverified" (no published sha256; the size
    matched where known, and the file is a whole checkpoint archive), "size mismatch",
    "checksum mismatch", "damaged" (no published sha256, and the file is cut short or is not a
    checkpoint), "wrong model" (no published sha256, and the checkpoint's names or shapes are
    not the network's, as loading it would find), "unreadable" (the file system refused to read
    it: no read permission, a disk error; ``detail`` says which), or "missing" (``path`` is None).
    """

    file: WeightFile
    status: Status
    path: Path | None = None
    detail: str = ""

    @property
    def good(self) -> bool:
        """True when the copy may be used ("ok" or "unverified")."""
        return self.status in ("ok", "unverified")


def check_file(wf: WeightFile, path: Path, *, deep: bool = False) -> VerifyResult:
    """Check one file on disk against ``wf``'s size, then sha256 (hashing only if the size fits);
    without a published sha256, check that it is a whole checkpoint archive instead (``deep``: and
    that every member of a zip archive matches its CRC-32; see :func:`_damage`). A file that
    cannot be read is "unreadable", not an error: the search goes on to the next copy."""
    try:
        return _check_file(wf, path, deep=deep)
    except OSError as exc:  # (chmod 000, a copy owned by another user, a disk error)
        return VerifyResult(wf, "unreadable", path, str(exc.strerror or exc))


def _check_file(wf: WeightFile, path: Path, *, deep: bool) -> VerifyResult:
    actual = path.stat().st_size
    if wf.size is not None and actual != wf.size:
        return VerifyResult(
            wf, "size mismatch", path, f"{actual:,} bytes, expected {wf.size:,} (truncated or a different file)"
        )
    if wf.sha256 is None:
        # Nothing to hash against: at least make sure it is a whole checkpoint archive, so a cut
        # download of a file of unknown size is not taken for the finished file.
        damage = _damage(path, deep=deep)
        if damage is not None:
            return VerifyResult(wf, "damaged", path, damage[0])
        wrong = _wrong_model(wf, path) if deep else None
        if wrong is not None:
            return VerifyResult(wf, wrong[0], path, wrong[1])
        crc = "; contents match their CRC-32" if deep and zipfile.is_zipfile(path) else ""
        return VerifyResult(wf, "unverified", path, "no published sha256" + (
            "; size matches" if wf.size is not None else "; size unknown too") + crc)
    digest = sha256_file(path)
    if digest != wf.sha256.lower():
        return VerifyResult(wf, "checksum mismatch", path, f"sha256 {digest}, expected {wf.sha256}")
    return VerifyResult(wf, "ok", path, "size and sha256 match")


def _wrong_model(wf: WeightFile, path: Path) -> tuple[Status, str] | None:
    """Why the checkpoint at ``path`` is not ``wf``'s network (a GPEN generator of the registry,
    or the face parser), as loading it would find, as ``(status, detail)``: "damaged" when it
    cannot be read as a checkpoint, "wrong model" when its names and shapes, read on the
    ``meta`` device (no weights are read; milliseconds), are not the network's. ``None`` when
    they fit, or for a file no network of ours is known for (the detectors have a published
    sha256).

    Without a sha256, a whole archive of another network (any state dict saved under
    GPEN-BFR-1024.pt) was taken as the file: `weights verify` said UNVERIFIED, `weights download`
    "already present", and every run stopped at the load."""
    from stream_gpen.models.registry import MODELS

    spec = next((s for s in MODELS.values() if s.weights.name == wf.name), None)
    if spec is None and wf.name not in PARSER_FILES:
        return None
    import torch

    from stream_gpen.errors import CheckpointError
    from stream_gpen.models.loading import describe_mismatch, read_state_dict, with_default_kernels

    # (imported first: a module's import-time tensors must not be made on the meta device)
    if spec is not None:  # (as load_generator reads and builds it)
        from stream_gpen.models.gpen import FullGenerator

        build, wrappers = (lambda: FullGenerator(spec.config)), ("g_ema",)
    else:  # (as FaceParser does)
        from stream_gpen.faces._parse import build_parsenet

        build, wrappers = build_parsenet, ("state_dict",)
    with torch.device("meta"):
        model = build()
    expected = model.state_dict()
    try:
        state = read_state_dict(path, wrappers=wrappers, map_location="meta")
    except CheckpointError as exc:
        return "damaged", str(exc)
    if spec is not None:  # (a generator saved without its constant blur kernels loads: they are rebuilt)
        state = with_default_kernels(state, model)
    problem = describe_mismatch(state, expected)
    return ("wrong model", f"not a {wf.name} checkpoint: {problem}") if problem else None


def managed_copy_hint(name_or_spec: str | WeightFile | ModelSpec, path: str | os.PathLike) -> str | None:
    """For a copy the search found (in the cache or the checkout's ``weights/``) that will not
    load: a hint that says so and how to replace it; ``None`` for a file found elsewhere (the
    user's own, whose error hints at the path they gave)."""
    wf = get_weight_file(name_or_spec)
    here = Path(path).expanduser().absolute()
    if not any(copy.absolute() == here for copy in candidates(wf)):
        return None
    where = "the weights cache" if here.parent == home_dir() else "the checkout's weights/ folder"
    return (f"{here} is the copy of {wf.name} in {where}, and not a good {wf.filename}: delete it (or "
            f"move it away), then `stream-gpen weights download {wf.name}` fetches it again (as a run "
            "does by itself, unless downloads are off)")


def candidates(wf: WeightFile) -> list[Path]:
    """Every existing copy of ``wf`` in the search directories, in search order."""
    found = []
    for directory in search_dirs():
        for name in wf.names_on_disk:
            path = directory / name
            if path.is_file():
                found.append(path)
    return found


def _not_a_file(path: Path) -> str | None:
    """What the entry at ``path`` is where it is not a file a search could take: "a link to
    TARGET, which does not exist" (a link to a drive not mounted), "a directory"; ``None`` where
    there is nothing there, or a file (or a link to one)."""
    if path.is_file() or not (path.exists() or path.is_symlink()):
        return None
    if path.is_symlink():
        try:
            to = os.readlink(path)
        except OSError:
            to = "?"
        return f"a link to {to}, " + ("which is a directory" if path.is_dir() else "which does not exist")
    return "a directory" if path.is_dir() else "not a regular file"


def not_files(wf: WeightFile) -> list[str]:
    """What stands under ``wf``'s names in the search directories and is no file, as "PATH is a
    link to TARGET, which does not exist" (see :func:`_not_a_file`). Without it a dangling link
    was "not downloaded ... save it as <the link's path>", as if nothing were there."""
    return [f"{d / name} is {what}" for d in search_dirs() for name in wf.names_on_disk
            if (what := _not_a_file(d / name)) is not None]


def verify(names: list[str] | None = None) -> list[VerifyResult]:
    """Check every copy on disk of the named files (default: all managed files).

    One result per copy found, or one "missing" result for a file with no copy. Hashes each
    file with a published sha256 (a few seconds for the large checkpoints).
    """
    files = [get_weight_file(n) for n in names] if names else list(all_weight_files().values())
    results = []
    for wf in files:
        copies = candidates(wf)
        if not copies:
            results.append(VerifyResult(wf, "missing", None, "; ".join(
                ["not in " + ", ".join(map(str, search_dirs())), *not_files(wf)])))
        for path in copies:
            # always read in full (bytes can rot on disk without changing the mtime), and the
            # verdict recorded: a copy found bad here is refused by the runs that follow too
            facts = _facts(wf, path)
            results.append(check_file(wf, path, deep=True))
            if _facts(wf, path) == facts:
                _remember(results[-1], facts)
    return results


def find_weights(name_or_spec: str | WeightFile | ModelSpec) -> Path | None:
    """The first good copy on disk in search order, or ``None``. Bad copies are logged and skipped.

    Each copy gets the whole check (:func:`checked`: its sha256, else every zip member's CRC-32)
    the first time it is looked at; later runs reuse that verdict while the file is unchanged."""
    return _find(get_weight_file(name_or_spec))[0]


def _find(wf: WeightFile) -> tuple[Path | None, list[VerifyResult]]:
    """``find_weights``, and the bad copies it skipped before the good one (so an error can say why)."""
    skipped = []
    for path in candidates(wf):
        result = checked(wf, path)
        if result.good:
            return path, skipped
        if result.status == "unreadable":  # (passing it by its path would not read it either)
            logger.warning("ignoring %s: cannot read it (%s); chmod a+r on it makes it usable", path, result.detail)
        else:
            logger.warning("ignoring %s: %s (%s); replace it, or pass it with %s to use it unchecked",
                           path, result.status, result.detail, _flag(wf))
        skipped.append(result)
    return None, skipped


# --- remembered verdicts --------------------------------------------------------------------
# A run used to check a copy only by its size (and the zip directory) where no sha256 is
# published: a flipped byte inside GPEN-BFR-256's weights loaded silently (torch.load does not
# check zip CRCs). The whole check reads the file (0.4 s for GPEN-BFR-256, a few seconds to hash
# a 300 MB file), so its verdict is remembered in STAMPS_FILE beside the copy, keyed by the
# copy's name, size, mtime, ctime and inode and by what the registry expects of it: a copy that
# was replaced, rewritten or touched is checked again. Bytes that rot on disk without any of
# those changing are caught by `weights verify`, which always reads everything (and updates the
# record).
STAMPS_FILE = "verified.json"
# raise when the check changes: older verdicts are then not trusted (2: a copy's names and shapes,
# and a pre-1.6 file's end exactly at its last storage)
_STAMP_VERSION = 2


def _facts(wf: WeightFile, path: Path) -> dict:
    """What a remembered verdict about ``path`` holds for: the file as it is, and what is expected of it."""
    st = path.stat()
    return {"check": _STAMP_VERSION, "name": wf.name, "expected_size": wf.size, "sha256": wf.sha256,
            # (ctime too: no tool sets it, so a copy put in place with `cp -p` or `touch -r` still
            # looks changed; a chmod or a rename costs one more check)
            "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "inode": st.st_ino}


def _read_stamps(folder: Path) -> dict[str, dict]:
    try:
        stamps = json.loads((folder / STAMPS_FILE).read_text())
    except (OSError, ValueError):  # none yet, unreadable, or cut short: nothing is remembered
        return {}
    return stamps if isinstance(stamps, dict) else {}


def _remember(result: VerifyResult, facts: dict) -> None:
    """Record ``result`` beside its copy, if that folder can be written and is not marked
    read-only (else nothing: the next run checks the copy again, which is slower but as safe).
    "unreadable" is never recorded: it is about who reads the copy (or a passing disk error), not
    about its bytes."""
    if result.status == "unreadable":
        return
    folder = result.path.parent
    try:
        # a folder made read-only (chmod a-w: a shared or mounted weights folder) is left alone
        # even by root, whom its mode does not stop
        if not folder.stat().st_mode & 0o222:
            return
    except OSError:
        return
    # (copies deleted since are dropped, so the record stays as small as the folder)
    stamps = {name: entry for name, entry in _read_stamps(folder).items() if (folder / name).is_file()}
    stamps[result.path.name] = {**facts, "status": result.status, "detail": result.detail}
    target = folder / STAMPS_FILE
    # (another process or thread may write it at the same time: the last whole one wins, and a
    # verdict lost that way only means one more check)
    tmp = folder / f"{STAMPS_FILE}.{os.getpid()}-{threading.get_ident()}.tmp"
    try:
        tmp.write_text(json.dumps(stamps, indent=1))
        os.replace(tmp, target)  # whole or not at all: a reader never sees half a record
    except OSError as exc:
        logger.debug("cannot record the check of %s in %s (%s); it is checked again next time",
                     result.path, target, exc.strerror or exc)
        with contextlib.suppress(OSError):
            tmp.unlink()


def checked(wf: WeightFile, path: Path) -> VerifyResult:
    """:func:`check_file` with ``deep=True`` (the sha256 where published, else every zip member's
    CRC-32), done once per copy: the verdict is remembered in ``verified.json`` beside the copy
    (where that folder can be written) and reused while the copy's size, mtime, ctime and inode
    (and the registry's size and sha256) are unchanged. What runs, ``weights path``/``list`` and
    ``ensure_weights`` go by."""
    facts = _facts(wf, path)
    entry = _read_stamps(path.parent).get(path.name)
    if isinstance(entry, dict) and all(entry.get(k) == v for k, v in facts.items()) and entry.get("status") in (
            "ok", "unverified", "size mismatch", "checksum mismatch", "damaged", "wrong model"):
        return VerifyResult(wf, entry["status"], path, str(entry.get("detail", "")))
    result = check_file(wf, path, deep=True)
    if _facts(wf, path) == facts:  # not changed while it was read: the verdict is about these bytes
        _remember(result, facts)
    return result


def _refuse_damaged(path: Path, what: str) -> None:
    """For a checkpoint given by its path, which the search did not find and so did not check:
    refuse a zip archive (torch.save's format) whose members fail their CRC-32 (a flipped byte in
    the weights, which ``torch.load`` loads silently), as a managed copy is refused. It reads the
    whole file, as the load does next (about 0.1 s for GPEN-BFR-256, 0.3 s for the 285 MB of
    GPEN-BFR-2048, from the page cache). Other damage (an empty, cut or foreign file) is left to
    the loader, which says it in its words; a pre-1.6 or safetensors file has no CRCs."""
    try:
        with open(path, "rb") as f:
            if f.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
                return
        damage = _damage(path, deep=True)
    except OSError as exc:
        raise _unreadable_error(path, what, exc) from None
    if damage is not None and not damage[1]:  # (not a cut archive: the loader says "truncated")
        raise CheckpointError(f"{what} {path} is damaged: {damage[0]}",
                              hint="copy or download the file again; its bytes are not the ones it was saved with")


def _readable_hint(path: Path) -> str:
    """What to do about a managed copy the file system refused to read."""
    return f"make {path} readable for this user (chmod a+r {path})"


def _unreadable_error(path: str | os.PathLike, what: str, exc: OSError) -> WeightsError:
    """The error for a weights file given by its path that cannot be read (no read permission, a
    disk error): a weights error (exit code 3) naming the file, not "the output folder"."""
    reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
    denied = isinstance(exc, PermissionError)
    return WeightsError(
        f"cannot read the {what} {path} ({reason})",
        hint=(f"make it readable for the user running stream-gpen (chmod a+r {path}), or copy it somewhere "
              "readable" if denied else "check the disk it is on, or copy the file somewhere else"),
    )


# --- the user-facing message ----------------------------------------------------------------
def _by_hand(wf: WeightFile, target: Path) -> str:
    facts = [f"{wf.size:,} bytes" if wf.size is not None else "size not published",
             f"sha256 {wf.sha256}" if wf.sha256 else "sha256 not published"]
    # Every URL: the one that just failed (a 404 here) may be the only one the reader sees first.
    get = f"download {' or '.join(wf.urls)} by hand and save it" if wf.urls else "put it by hand"
    return f"{get} as {target} ({', '.join(facts)})"


def by_hand(wf: WeightFile) -> str:
    """How to put ``wf`` into the cache by hand (its URL, the path it is looked for at, its size
    and sha256): the way to get it where downloads are forbidden (``STREAM_GPEN_OFFLINE``)."""
    return _by_hand(wf, home_dir() / wf.filename)


_E = TypeVar("_E", bound=WeightsError)


def _about(exc: _E, wf: WeightFile) -> _E:
    """Tag ``exc`` with the registry name it is about (``exc.weights_name``), so a caller can name
    that file in its own advice (``make demo``: which download to run) without parsing the text."""
    exc.weights_name = wf.name  # type: ignore[attr-defined]
    return exc


def _flag(wf: WeightFile) -> str:
    """The option (and the Enhancer keyword) that gives this file by its path."""
    if wf.name in DETECTOR_FILES:
        return "--detector-weights PATH (detector_weights= in Python)"
    if wf.name in PARSER_FILES:
        return "--parser-weights PATH (parser_weights= in Python)"
    return "--weights PATH (weights= in Python)"


def _hint(wf: WeightFile, *, detector_weights: str | os.PathLike | None = None, aligned: bool = False) -> str:
    """How to get ``wf``; a GPEN file's also names ``--model classic``, with what it still needs:
    the detector, unless the run's crops are ``aligned`` (nothing detected) or it was given its
    ``detector_weights`` (said missing only where that file is not there either)."""
    parts = [f"or save it as {d / wf.filename}" for d in search_dirs()[1:]]
    if wf.aliases:
        parts.append("accepted file names: " + ", ".join(wf.names_on_disk))
    flag = _flag(wf)
    commands = "enhance/camera/serve" + ("/info --faces" if wf.name in DETECTOR_FILES else "")
    parts.append(f"set {HOME_ENV} to use another cache directory, or give {commands} {flag} to use a "
                 "file anywhere")
    if wf.name not in DETECTOR_FILES and wf.name not in PARSER_FILES:
        # (a newcomer offline: the one model that needs no GPEN file, which only the demo named. It
        # still finds the faces with RetinaFace: "runs without any weights file" sent an offline
        # user without the detector into a second not-found error)
        classic = ("--model classic (model='classic' in Python), a simpler non-GPEN enhancer, needs no GPEN "
                   "weights file")
        detector = DETECTOR_FILES["retinaface-mobilenet0.25"]
        given = Path(detector_weights).expanduser() if detector_weights is not None else None
        if aligned:  # (aligned crops are restored whole: no detector is built)
            parts.append(f"{classic}, nor a detector on aligned crops (--aligned, aligned=True in Python)")
        elif given is not None and given.exists():
            # (the detector given by its path: "not here either" of the cache sent the user after a
            # download the run does not need)
            parts.append(f"{classic}; it finds the faces with the detector weights given ({given})")
        elif given is not None:
            parts.append(f"{classic}, but finds the faces with the RetinaFace detector, and the detector weights "
                         f"given (--detector-weights, detector_weights= in Python), {given}, are not there either: "
                         f"check that path, or leave it out and run stream-gpen weights download {detector.name}")
        else:
            absent = not any(candidates(d) for d in DETECTOR_FILES.values())
            parts.append(f"{classic}, but finds the faces with the RetinaFace detector as every model does (except "
                         "on --aligned crops)" + (", which is not here either" if absent else "")
                         + f": stream-gpen weights download {detector.name} (1.7 MB, the CPU's; retinaface-resnet50 "
                         f"on CUDA), or give {_flag(detector)}")
    return "; ".join(parts)


def restorer_hint(exc: WeightsError, *, detector_weights: str | os.PathLike | None = None,
                  aligned: bool = False) -> None:
    """The hint of ``exc`` (a GPEN model's weights not found or not downloaded: ``exc.weights_name``)
    said again for the run that asked: with the ``detector_weights`` it was given, or its
    ``aligned`` crops, the detector is not what is missing. Other errors are left as they are."""
    name = getattr(exc, "weights_name", None)
    if name is None or not exc.hint or (detector_weights is None and not aligned):
        return
    try:
        wf = get_weight_file(name)
    except InvalidInputError:  # (a name the registry does not know: the hint stays)
        return
    exc.hint = _hint(wf, detector_weights=detector_weights, aligned=aligned)


# --- downloading ----------------------------------------------------------------------------
class _Failure(Exception):
    """One URL failed; the message says why (collected, then raised as a DownloadError), with no
    proxy's password in it; ``hint``: what to do about it, where the weights' own hint misses it."""

    def __init__(self, reason: str, *, checksum: bool = False, hint: str | None = None) -> None:
        super().__init__(without_passwords(reason))
        self.checksum = checksum
        self.hint = hint


def _unusable_proxy(proxy: str) -> bool:
    """Whether urllib refuses the ``proxy`` setting itself: no ``//`` after its scheme
    (``http:/host``), or a port that is no number (or out of range)."""
    import urllib.parse

    try:
        # (urllib's own reading of a proxy setting: "HOST:PORT" with no scheme is one it takes)
        hostport = urllib.request._parse_proxy(proxy)[3]
        urllib.parse.urlsplit("//" + hostport).port
    except ValueError:
        return True
    return False


def _bad_proxy(url: str, exc: Exception) -> _Failure:
    """urllib refused the proxy setting itself (``http:/host``: ValueError; a port that is no
    number: InvalidURL): the proxy named (its password masked), not the weights server. Where the
    proxy is one urllib takes, ``exc`` is about the URL: said as any other failure."""
    found = proxy_for(url)
    if found is None or not _unusable_proxy(found[0]):
        # (not through a proxy, or through one urllib takes: the URL itself, say a mirror's with a
        # space in it, was refused. Said as any other error, not blamed on the proxy)
        return _Failure(f"{type(exc).__name__}: {exc}")
    proxy, var = found
    return _Failure(f"the proxy {_masked(proxy)} (from ${var}) is not a usable proxy URL ({exc})",
                    hint=f"correct ${var} (http://[USER:PASSWORD@]HOST:PORT), or unset it to connect directly")


class _DownloadProgress:
    """A download's progress: a tqdm bar on a terminal that has a size; elsewhere (a pipe, a log
    file, CI, ``script``'s unsized pty) an info line every :data:`_terminal.PIPED_EVERY_S` seconds
    ("12.0 of 284.1 MB (4%), 3.2 MB/s"): minutes of silence between "downloading" and "saved" for
    the 284 MB of GPEN-BFR-512 looked like a hang. Nothing when not ``enabled`` (``--no-progress``,
    ``--quiet``)."""

    def __init__(self, total: int | None, initial: int, desc: str, enabled: bool) -> None:
        self.total, self.done, self.desc = total, initial, desc
        self.bar = None
        self.piped = enabled and not _terminal.draws_bars(sys.stderr)
        if enabled and not self.piped:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                            unit_divisor=1024, file=sys.stderr, leave=False)
        # (the rate from the first request on: what was resumed came before it)
        self._start = self._said = time.monotonic()
        self._initial = initial

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if not self.piped:
            return
        now = time.monotonic()
        if now - self._said < _terminal.PIPED_EVERY_S:
            return
        self._said = now
        mb = self.done / 1e6
        rate = (self.done - self._initial) / 1e6 / max(now - self._start, 1e-9)
        of = (f"{mb:,.1f} of {self.total / 1e6:,.1f} MB ({100 * self.done // self.total}%)"
              if self.total else f"{mb:,.1f} MB")
        logger.info("%s: %s, %.1f MB/s", self.desc, of, rate)

    def __enter__(self) -> "_DownloadProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _redirected(url: str, final: str | None) -> str:
    """`` (redirected to https://HOST/PATH)`` where a reply came from ``final``, not ``url``
    (GitHub's release downloads answer from another host): the URL that said 404 is that one.
    Its query is left out: a signed, expiring token some hundreds of characters long."""
    if not final or final == url:
        return ""
    import urllib.parse

    parts = urllib.parse.urlsplit(final)
    return f" (redirected to {_masked(urllib.parse.urlunsplit(parts._replace(query='', fragment='')))})"


def _content_range_start(value: str | None) -> int | None:
    # "bytes 100-199/200" -> 100
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def _content_range_total(value: str | None) -> int | None:
    # "bytes */200" or "bytes 100-199/200" -> 200 ("*": unknown -> None)
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def _origin_file(part: Path) -> Path:
    """``<target>.part.url``: the URL whose bytes ``part`` holds (first line) and the validator
    its server sent them with (second line, if any: a strong ETag or a Last-Modified date)."""
    return part.with_name(part.name + ".url")


def _origin(part: Path) -> tuple[str | None, str | None]:
    """``(url, validator)`` from ``part``'s record; ``(None, None)`` without one."""
    try:
        lines = _origin_file(part).read_text().splitlines()
    except FileNotFoundError:
        return None, None
    url = lines[0].strip() if lines else ""
    validator = lines[1].strip() if len(lines) > 1 and lines[1].strip() else None
    return url, validator


def _validator(headers) -> str | None:
    """What ``If-Range`` may name for this reply: a strong ETag, else its Last-Modified date."""
    etag = (headers.get("ETag") or "").strip()
    if etag and not etag.startswith("W/"):
        return etag
    return (headers.get("Last-Modified") or "").strip() or None


def _parts(target: Path, wf: WeightFile) -> list[Path]:
    """The part file of each of ``wf.urls``, in order: ``<target>.part``, ``<target>.part-2``, ..."""
    return [target.with_name(target.name + (".part" if i == 1 else f".part-{i}"))
            for i in range(1, max(len(wf.urls), 1) + 1)]


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _origin_file(part).unlink(missing_ok=True)


def _resumable(part: Path, url: str, wf: WeightFile) -> int:
    """How many bytes of ``part`` a download from ``url`` may continue: 0 unless they came from it.

    A mirror may hold a different file under the same name (GPEN's and facexlib's ParseNet were
    saved separately): the rest of it after another file's first bytes is a splice that no check
    catches where no sha256 is published. A part with no record of its URL (left by an older
    version) is continued only where a sha256 catches a splice (which is then retried from zero).
    """
    if not part.is_file():
        return 0
    origin = _origin(part)[0]
    if origin == url or (origin is None and wf.sha256 is not None):
        return part.stat().st_size
    return 0


def _fetch(url: str, part: Path, wf: WeightFile, *, progress: bool) -> None:
    """Download ``url`` into ``part``, resuming what is there from ``url``. Raises :class:`_Failure`."""
    have = _resumable(part, url, wf)
    if wf.size is not None and have > wf.size:
        _discard(part)  # longer than the real file: cannot be a prefix of it
        have = 0
    if wf.size is not None and have == wf.size:
        return  # a complete part from an earlier run whose check was interrupted: check it now
    headers = {"User-Agent": _USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
        validator = _origin(part)[1]
        if validator:  # a server whose file changed since sends it whole (200), not the rest
            headers["If-Range"] = validator
    request = urllib.request.Request(url, headers=headers)
    try:
        # (a fresh opener: urlopen's is built once a process and keeps the proxies of that moment)
        response = urllib.request.build_opener().open(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        total = _content_range_total(exc.headers.get("Content-Range") if exc.headers is not None else None)
        exc.close()
        if exc.code == 416 and have:
            # Nothing past byte ``have``: the part may be the whole file (a run stopped between the
            # last byte and its check; only a file of unknown size gets here), checked next as any
            # finished download. Otherwise it is not a prefix the server can continue: started over.
            if total == have or (total is None and _damage(part) is None):
                return
            _discard(part)
            logger.info("%s cannot continue the partial %s at byte %s; downloading it from the start",
                        url, wf.filename, f"{have:,}")
            return _fetch(url, part, wf, progress=progress)  # (no Range now: no second 416)
        if 300 <= exc.code < 400:  # urllib gave up following them (its limit, or a loop)
            raise _Failure(f"HTTP {exc.code}: too many redirects (a redirect loop?){_via_proxy(url)}") from None
        raise _Failure(f"HTTP {exc.code} {' '.join(str(exc.reason).split())}{_redirected(url, exc.geturl())}"
                       f"{_via_proxy(url)}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, socket.timeout):
            raise _Failure(f"no answer within {_TIMEOUT_S:g} s{_via_proxy(url)}") from None
        raise _Failure(f"cannot connect{_via_proxy(url)} ({reason})") from None
    except (socket.timeout, TimeoutError):
        raise _Failure(f"no answer within {_TIMEOUT_S:g} s") from None
    except (ValueError, http.client.InvalidURL) as exc:
        raise _bad_proxy(url, exc) from None  # (a raw ValueError quoted the password, exit 1)
    except (OSError, http.client.HTTPException) as exc:
        raise _Failure(f"{type(exc).__name__}: {exc}") from None

    with response:
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            # (we ask for none, and urllib undoes none: the compressed bytes were saved and failed
            # as "size mismatch", or, of a file of unknown size, as "not a PyTorch checkpoint")
            raise _Failure(f"the server sent the file compressed (Content-Encoding: {encoding}), not as its own "
                           f"bytes{_redirected(url, response.geturl())}{_via_proxy(url)}")
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype in _NOT_WEIGHTS:
            # Login walls, captive portals, "file removed" pages and API errors (ModelScope
            # answers JSON) come with status 200: never save them as a checkpoint.
            raise _Failure(f"the server sent {_NOT_WEIGHTS[ctype]}, not the weights file{_via_proxy(url)}")
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if have and response.status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start == 0:  # the whole file after all, as a 200 would send it
                logger.info("%s sent %s from its start instead of from byte %s; downloading it from the start",
                            url, wf.filename, f"{have:,}")
                have, mode = 0, "wb"
            elif start != have:
                # (its bytes would be spliced at the wrong place: started over now, as a 416 is,
                # not left for another run, which the same server may answer the same way)
                response.close()
                _discard(part)
                at = f"byte {start:,}" if start is not None else "a byte it did not say (no Content-Range)"
                logger.info("%s resumed %s at %s instead of byte %s; downloading it from the start",
                            url, wf.filename, at, f"{have:,}")
                return _fetch(url, part, wf, progress=progress)  # (no Range now: no second wrong start)
            else:
                mode = "ab"
        else:
            if have:
                logger.info("%s ignored the resume request; downloading %s from the start", url, wf.filename)
            have, mode = 0, "wb"
        expected_total = have + length if length is not None else wf.size
        if wf.size is not None and expected_total != wf.size:
            # Fail before fetching hundreds of MB of the wrong file; a resumed part is suspect.
            if have:
                _discard(part)
            raise _Failure(f"size mismatch (the server has {expected_total:,} bytes, expected {wf.size:,})",
                           checksum=True)
        received = 0
        with open(part, mode) as out, _DownloadProgress(expected_total, have, wf.filename, progress) as bar:
            # Written after "wb" emptied the part, so the record never names another URL's bytes.
            validator = _validator(response.headers)
            _origin_file(part).write_text(url + (f"\n{validator}" if validator else ""))
            while True:
                try:
                    # read1: what has arrived, up to a chunk. read() waits for a whole chunk and
                    # loses what it holds when the connection stalls or breaks meanwhile.
                    chunk = response.read1(_CHUNK)
                except (socket.timeout, TimeoutError):
                    raise _Failure(
                        f"connection stalled after {have + received:,} bytes (no data for {_TIMEOUT_S:g} s); "
                        "run again to resume") from None
                except (OSError, http.client.HTTPException) as exc:
                    raise _Failure(
                        f"connection broke after {have + received:,} bytes ({type(exc).__name__}); "
                        "run again to resume") from None
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    # http.client returns b"" on a closed socket even when Content-Length was not reached, and a
    # chunked reply has no length at all: compare with what we expected. A short file stays as
    # the part for the next run to resume; it is not a checksum failure.
    short = (length is not None and received < length) or (
        wf.size is not None and have + received < wf.size)
    if short:
        total = f" of {expected_total:,}" if expected_total else ""
        raise _Failure(f"connection closed after {have + received:,}{total} bytes; run again to resume")
    if length is None and wf.size is None:
        # A reply without Content-Length ends where the server closes the connection: with no
        # size to compare, a cut one shows only as a checkpoint without its end. Kept, like a
        # short one, for the next run to resume.
        damage = _damage(part)
        if damage is not None and damage[1]:
            raise _Failure(f"connection closed after {have + received:,} bytes, before the end of the file "
                           f"({damage[0]}); run again to resume")


# How often a download waiting on Windows tries the lock again (msvcrt's own blocking mode gives
# up after 10 s, and a download takes minutes): a second at most lost after the first one ends.
_LOCK_POLL_S = 0.5
# msvcrt.locking's errno for a byte another handle has locked (EACCES), and LK_LOCK's after its tries
_LOCKED = (errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK))


@contextlib.contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    """Hold ``<target>.lock`` so two processes never append to the same ``.part`` file.

    The lock file is removed when the download ends, done or failed (it was left behind, an
    empty ``NAME.lock`` in the cache for each file ever fetched or tried). Removing a lock file
    others may hold is safe only with both halves of the usual protocol: the holder removes it
    while it still holds the lock, and a process that gets the lock checks that its file is still
    the one under that name; if not (it waited on a file the holder removed, and a third process
    may have made a new one), it closes it and locks the file there now. POSIX: ``flock``.
    Windows (no ``fcntl``): ``msvcrt.locking`` on its first byte, tried again every
    ``_LOCK_POLL_S`` while another process holds it (the lock goes with the handle, so a process
    that dies releases it); Windows deletes no file another handle has open, so the file is
    removed after it is closed, and only while nobody waits on it. Where neither exists there is
    no lock, said once in the debug log.
    """
    try:
        import fcntl
    except ImportError:
        fcntl = None
        try:
            import msvcrt
        except ImportError:
            logger.debug("no file locking here (neither fcntl nor msvcrt): %s is downloaded unlocked", target.name)
            yield
            return
    path = target.with_name(target.name + ".lock")
    while True:
        handle = open(path, "ab")
        try:
            if fcntl is None:
                _lock_msvcrt(handle, msvcrt, target.name)
            else:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    logger.info("another process is downloading %s; waiting for it", target.name)
                    fcntl.flock(handle, fcntl.LOCK_EX)
            if _still_named(handle, path):
                break
        except BaseException:
            handle.close()
            raise
        handle.close()  # (removed by the process it waited for: the lock is the file there now)
    try:
        yield
    finally:
        removed = _remove_lock(path)  # while held (on Windows this fails: the handle is open)
        try:
            if fcntl is None:
                handle.seek(0)  # (msvcrt locks and unlocks from the handle's position)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            handle.close()
        if not removed and fcntl is None:
            _remove_lock(path)  # (Windows refuses while another process has it open: it is waiting)


def _still_named(handle, path: Path) -> bool:
    """Whether the locked ``handle``'s file is still the one at ``path`` (not removed meanwhile)."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(handle.fileno())
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _remove_lock(path: Path) -> bool:
    try:
        path.unlink()
    except OSError:  # (Windows: open elsewhere; or the folder turned read-only: left, as before)
        return False
    return True


def _lock_msvcrt(handle, msvcrt, name: str) -> None:
    """Lock the first byte of ``handle``'s file (Windows), waiting while another process holds it."""
    waiting = False
    while True:
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return
        except OSError as exc:
            if exc.errno not in _LOCKED:  # (not a lock someone holds: a file system without locks)
                raise
        if not waiting:
            logger.info("another process is downloading %s; waiting for it", name)
            waiting = True
        time.sleep(_LOCK_POLL_S)


def _download(wf: WeightFile, target: Path, *, progress: bool) -> Path:
    """Create the directory, take the lock, and download (unless a waited-for process did)."""
    if target.parent.exists() and not target.parent.is_dir():
        raise DownloadError(
            f"cannot save {wf.filename} in {target.parent}: it is a file, not a folder",
            hint=f"set {HOME_ENV} to a folder (it is created if missing)",
        )
    # A good copy there already is returned before the lock is taken: a read-only cache (a shared
    # or mounted weights folder) cannot hold the lock file, and needs none to be read
    if target.is_file() and checked(wf, target).good:
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(target):
            if target.is_file() and checked(wf, target).good:
                return target  # another process finished it while we waited
            return _download_locked(wf, target, progress=progress)
    except WeightsError:
        raise  # DownloadError is a ConnectionError, hence an OSError: not a disk problem
    except OSError as exc:  # network errors are handled per URL; these are the local disk's
        kept = ""
        parts = [p for p in _parts(target, wf) if p.is_file()]
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)) and parts:
            # The part that filled the disk stays for a resume: say so, or the disk stays full
            # with nobody knowing why.
            listed = ", ".join(f"{p} ({p.stat().st_size:,} bytes)" for p in parts)
            kept = f"; the partial download {listed} is kept to resume it: delete it to free that space"
        if exc.errno == errno.EFBIG:
            raise _too_large(wf, target, exc, parts) from None
        raise DownloadError(
            f"cannot write {wf.filename} to {target.parent}: {exc.strerror or exc}{kept}",
            hint=f"set {HOME_ENV} to a writable directory with enough space",
        ) from None


def _too_large(wf: WeightFile, target: Path, exc: OSError, parts: list[Path]) -> DownloadError:
    """The error of a download that ``exc`` (``EFBIG``) stopped: the process's file-size limit
    (``ulimit -f``) where it has one, else the drive's largest file. It was told as a full or
    unwritable folder ("set STREAM_GPEN_HOME to a writable directory with enough space"), and
    each run resumed the kept part only to stop at the same byte."""
    limit = file_size_limit()
    if limit is not None:
        why = (f"the file is larger than this process may write (its file-size limit, ulimit -f: "
               f"{limit:,} bytes)")
        hint = ("raise that limit (ulimit -f unlimited; systemd's LimitFSIZE, or the container's) and run "
                "again to resume")
    else:  # (FAT32's 4 GiB: no weights file is that large, but a limit we cannot see may be)
        why = "the file is larger than its drive holds in one file (FAT32: 4 GiB)"
        hint = f"set {HOME_ENV} to a folder on an exFAT, NTFS, APFS or ext4 drive"
    listed = ", ".join(f"{p} ({p.stat().st_size:,} bytes)" for p in parts)
    kept = f"; the partial download {listed} is kept to resume it" if listed else ""
    return _about(DownloadError(
        f"cannot write {wf.filename} to {target.parent}: {why} ({exc.strerror or exc}){kept}", hint=hint), wf)


def _download_locked(wf: WeightFile, target: Path, *, progress: bool) -> Path:
    """Try each URL in order, each into its own part; rename the part that verifies to ``target``."""
    parts = _parts(target, wf)

    def need(part: Path) -> tuple[int, int]:
        """(bytes still to write into ``part``, bytes free): each URL's own part, measured when its
        turn comes (a mirror's part grows beside the first URL's, which stays for a resume)."""
        have = part.stat().st_size if part.is_file() else 0
        return (wf.size or 0) - have, shutil.disk_usage(target.parent).free

    if wf.size is not None:
        more, free = need(parts[0])
        if more > free:
            raise DownloadError(
                f"not enough disk space for {wf.filename} in {target.parent}: needs {more:,} bytes, "
                f"{free:,} free",
                hint=f"free some space or set {HOME_ENV} to a bigger disk",
            )
    failures: list[tuple[str, _Failure]] = []
    for url, part in zip(wf.urls, parts):
        if wf.size is not None and part is not parts[0]:
            more, free = need(part)
            if more > free:
                failures.append((url, _Failure(f"not enough disk space for its copy beside the partial download "
                                               f"of the URL before: needs {more:,} bytes, {free:,} free")))
                continue
        resumed_from = _resumable(part, url, wf)
        if resumed_from:
            how = f" (resuming at byte {resumed_from:,})"
        elif part.is_file() and part.stat().st_size:
            how = " (from the start: the partial file is not known to come from this URL)"
        else:
            how = ""
        logger.info("downloading %s from %s%s", wf.filename, url, how)
        for attempt in (1, 2):
            try:
                _fetch(url, part, wf, progress=progress)
                result = check_file(wf, part, deep=True)
                if not result.good:
                    _discard(part)  # never keep, never rename a file that failed its check
                    raise _Failure(f"downloaded file failed its check: {result.status} ({result.detail})",
                                   checksum=True)
                if target.exists() or target.is_symlink():
                    _move_aside(target, wf)
                os.replace(part, target)
                # (the checked bytes, renamed under our lock: a run that finds them skips the check)
                _remember(VerifyResult(wf, result.status, target, result.detail), _facts(wf, target))
                for other in parts:  # this one's record, and the other URLs' parts: done with
                    _discard(other)
                logger.info("saved %s (%s)", target, result.status)
                return target
            except _Failure as exc:
                # A bad check after a resume may come from a stale part: retry once from zero.
                if exc.checksum and resumed_from and attempt == 1:
                    logger.warning("%s: %s after resuming; retrying from the start", url, exc)
                    resumed_from = 0
                    continue
                if url != wf.urls[-1]:  # the last failure is told by the error itself
                    logger.warning("%s failed: %s; trying the next URL", url, exc)
                failures.append((url, exc))
                break
    reasons = "; ".join(f"{url} failed: {exc}" for url, exc in failures)
    cls = ChecksumError if all(exc.checksum for _, exc in failures) else DownloadError
    hints = dict.fromkeys(exc.hint for _, exc in failures if exc.hint)  # (a bad proxy: each URL's the same)
    raise _about(cls(f"cannot download {wf.name}: {reasons}; {_by_hand(wf, target)}",
                     hint="; ".join([*hints, _hint(wf)])), wf)


def _move_aside(target: Path, wf: WeightFile) -> None:
    """Rename the copy at ``target`` to a free ``<target>.ignored[-N]`` instead of overwriting it.

    That copy failed its check and was reported as ignored, but it may be the user's own file (an
    fp16 conversion saved under the official name, say): never destroy it without a word.
    """
    aside, n = target.with_name(target.name + ".ignored"), 1
    while aside.exists() or aside.is_symlink():
        n += 1
        aside = target.with_name(f"{target.name}.ignored-{n}")
    # (a dangling link or a folder there is no copy to pass with --weights: said as what it is)
    what = _not_a_file(target)
    os.replace(target, aside)
    if what is not None:
        logger.warning("moved %s (%s) aside to %s, to make room for the download; delete it if you do not "
                       "need it", target, what, aside)
        return
    logger.warning("moved the ignored copy %s aside to %s, to make room for the download; delete it if "
                   "you do not need it, or pass it with %s to use it", target, aside, _flag(wf))


def _not_found(wf: WeightFile, why: str, *, first: str = "") -> WeightsNotFoundError:
    """``first``: advice said before the hint's ways to get the file."""
    searched = " or ".join(str(d) for d in search_dirs())
    return _about(WeightsNotFoundError(
        f"weights {wf.name} ({wf.filename}) not found in {searched}; {why}; "
        f"{by_hand(wf)}",
        hint=first + _hint(wf),
    ), wf)


def download(name_or_spec: str | WeightFile | ModelSpec, *, dest_dir: str | os.PathLike | None = None,
             progress: bool = True) -> Path:
    """Download a file into ``dest_dir`` (default: the cache directory) without searching first.

    Moves a bad copy at the destination aside (to ``<file>.ignored``, with a warning) once the
    new one checks out; returns a good one there without a request. Use
    :func:`ensure_weights` for find-or-download. ``STREAM_GPEN_OFFLINE=1`` makes this fail.
    """
    wf = get_weight_file(name_or_spec)
    return _download_allowed(wf, Path(dest_dir or home_dir()).expanduser(), progress=progress)


def _download_allowed(wf: WeightFile, dest_dir: Path, *, progress: bool) -> Path:
    if offline():
        raise _not_found(wf, f"downloads are disabled ({OFFLINE_ENV}={os.environ.get(OFFLINE_ENV)})")
    if not wf.urls:
        raise _not_found(wf, "it has no download URL")
    return _download(wf, dest_dir / wf.filename, progress=progress)


def ensure_weights(name_or_spec: str | WeightFile | ModelSpec, *, path: str | os.PathLike | None = None,
                   download: bool = True, progress: bool = True, what: str | None = None) -> Path:
    """Return the path of a usable copy of the weights, downloading them if needed.

    ``path``: an explicit file (or a directory holding the file under one of its names); it
    overrides everything, is never downloaded to, and is not checked against the registry (a
    fine-tuned checkpoint may differ from it on purpose), but a zip checkpoint whose members fail
    their CRC-32 is refused with a :class:`CheckpointError` (damaged bytes), as a managed copy is.
    ``what`` names it in the not-found errors (``"detector weights"``: ``--detector-weights``).
    ``download=False`` (or ``STREAM_GPEN_OFFLINE=1``) turns a missing file into a
    :class:`WeightsNotFoundError` instead of a download. ``progress``: draw a progress bar
    on a terminal, or log a progress line every 30 s where stderr is none (a pipe, a log, CI).
    Raises :class:`DownloadError` / :class:`ChecksumError` when every URL failed; the message says which URL failed, why, and where to put the file by hand.
    """
    wf = get_weight_file(name_or_spec)
    if path is not None:
        explicit = Path(path).expanduser()
        names = " / ".join(wf.names_on_disk)
        if explicit.is_dir():
            for name in wf.names_on_disk:
                if (explicit / name).is_file():
                    _refuse_damaged(explicit / name, what or "checkpoint")
                    return explicit / name
            raise WeightsNotFoundError(
                f"{what} not found: no {names} in the folder {explicit}" if what
                else f"no {names} in the given weights directory {explicit}",
                hint="pass the checkpoint file itself, or a directory that holds it",
            )
        if not explicit.is_file():
            raise WeightsNotFoundError(
                f"{what} not found: {explicit}" if what
                else f"weights file {explicit} does not exist (given explicitly, so nothing else is searched)",
                hint="check the path" if what else f"drop --weights (weights=) to use the managed copy of {wf.name}",
            )
        _refuse_damaged(explicit, what or "checkpoint")
        return explicit

    found, skipped = _find(wf)
    if found is not None:
        return found
    strays = not_files(wf)
    why = (f"the copy at {skipped[0].path} was ignored ({skipped[0].status}: {skipped[0].detail})"
           if skipped else f"it has not been downloaded ({'; '.join(strays)})" if strays
           else "it has not been downloaded")
    # (a copy that is there but cannot be read: making it readable is the first fix, not a download)
    unreadable = next((r.path for r in skipped if r.status == "unreadable"), None)
    first = f"{_readable_hint(unreadable)}; " if unreadable is not None else ""
    if not download or (skipped and offline()):  # (a run offline names the copy it refused, and why)
        if offline():  # (the download command would be refused too: say why instead)
            raise _not_found(wf, f"{why}, and downloads are disabled ({OFFLINE_ENV}={os.environ.get(OFFLINE_ENV)})",
                             first=first)
        raise _not_found(wf, f"{why} (`stream-gpen weights download {wf.name}` fetches it)", first=first)
    return _download_allowed(wf, home_dir(), progress=progress)


__all__ = [
    "DETECTOR_FILES", "PARSER_FILES", "STAMPS_FILE", "VerifyResult", "WeightFile", "all_weight_files",
    "candidates", "check_file", "checked", "download", "ensure_weights", "find_weights", "get_weight_file",
    "home_dir", "managed_copy_hint", "not_files", "offline", "repo_weights_dir", "search_dirs", "sha256_file", "verify",
]
