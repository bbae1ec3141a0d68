"""The ``stream-gpen`` command.

Usage: ``stream-gpen [--version] [--debug] COMMAND ...`` (also ``python -m stream_gpen``).

Exit codes (each :class:`~stream_gpen.errors.StreamGpenError` class carries its own):

====  ==========================================================================================
 0    success
 1    an internal error (a bug: rerun with --debug and report it), or a stream-gpen error with no
      code of its own
 2    bad command line, invalid input or option value, missing input, device not available
 3    weights: not found, download failed, size/checksum mismatch, checkpoint does not fit
 4    decoding, encoding or a live source failed while running, memory ran out (GPU or host), or
      the file system refused the output (its folder read-only or not ours, a full disk, a file
      over the file-size limit)
 5    a folder was processed, but some of its files could not be read or failed (skipped and listed)
130   interrupted (Ctrl-C); SIGTERM (``kill``, ``timeout``, ``docker stop``) and SIGHUP (the
      terminal closed) are handled the same way and exit with 143 and 129 (128 + the signal)
====  ==========================================================================================

Adding a sub-command: write ``_add_X(subparsers)`` that creates its parser and calls
``parser.set_defaults(run=_run_X)`` where ``_run_X(args) -> int``, then append ``_add_X`` to
``_SUBCOMMANDS``. Import heavy modules (torch, av, the pipeline) inside ``_run_X`` so that
``--help`` and ``weights`` stay fast. Raise :class:`StreamGpenError` subclasses for anything the
user can fix: ``main`` turns them into one ``stream-gpen: error: ...`` line (plus ``hint: ...``)
and the class's exit code.
"""
from __future__ import annotations

import argparse
import contextvars
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from stream_gpen import __version__
from stream_gpen.errors import FILE_SYSTEM_HINT, Interrupted, StreamGpenError, in_command_line_words

if TYPE_CHECKING:
    from stream_gpen.weights import WeightFile

PROG = "stream-gpen"


# --- weights ----------------------------------------------------------------------------------
def _fmt_size(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _where(wf: WeightFile, copies: list[Path]) -> str:
    """The copy a run uses (the first good one, as ``find_weights`` picks), then the bad copies it
    skips; with no good copy, the first one and what is wrong with it."""
    if not copies:
        from stream_gpen.weights import not_files

        strays = not_files(wf)  # (a dangling link, a folder: not "missing" without a word)
        return "missing" + (f"  ({'; '.join(strays)})" if strays else "")
    # Checked as a run checks them (size, then sha256 where published, else every member of the
    # checkpoint archive against its CRC-32), with the same remembered verdict: a copy of the
    # right size with a wrong sha256 or a flipped byte is ignored by every run, and was listed as
    # the one used. (A copy not checked before costs what a run's first check does: about a
    # second per GPEN-512 checkpoint.)
    from stream_gpen.weights import checked

    def problem(path: Path) -> str | None:
        status = checked(wf, path).status
        return {"size mismatch": "wrong size"}.get(status, status) if status not in ("ok", "unverified") else None

    problems = {path: problem(path) for path in copies}
    used = next((path for path, bad in problems.items() if bad is None), None)
    if used is None:
        return f"{copies[0]}  ({problems[copies[0]]}: run `stream-gpen weights verify`)"
    ignored = [f"{path} ({bad})" for path, bad in problems.items() if bad is not None]
    return str(used) + (f"  (ignored: {', '.join(ignored)})" if ignored else "")


def _run_weights_list(args: argparse.Namespace) -> int:
    from stream_gpen import weights

    dirs = weights.search_dirs()
    print(f"search order: {' -> '.join(str(d) for d in dirs)} (downloads go to {dirs[0]})")
    if weights.offline():
        print(f"downloads disabled: {weights.OFFLINE_ENV} is set")
    rows = [("NAME", "FILE", "SIZE", "SHA256", "ON DISK")]
    for wf in weights.all_weight_files().values():
        copies = weights.candidates(wf)
        rows.append((
            wf.name,
            wf.filename,
            _fmt_size(wf.size),
            "published" if wf.sha256 else "not published",
            _where(wf, copies),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    print("`stream-gpen weights verify` checks sizes and checksums; "
          "`stream-gpen weights download NAME` fetches a file.")
    return 0


def _run_weights_download(args: argparse.Namespace) -> int:
    from stream_gpen import weights

    specs = [weights.get_weight_file(n) for n in args.names]  # fail on a typo before any download
    for wf in specs:
        found = weights.find_weights(wf)
        if found is not None:
            print(f"{wf.name}: already present at {found}")
            continue
        path = weights.download(wf, progress=not args.no_progress)
        print(f"{wf.name}: {path}")
    return 0


def _run_weights_verify(args: argparse.Namespace) -> int:
    from stream_gpen import weights
    from stream_gpen.errors import ChecksumError

    bad, missing = 0, []
    for r in weights.verify(args.names or None):
        where = str(r.path) if r.path is not None else "-"
        print(f"{r.status.upper():<18} {r.file.name:<26} {where}  ({r.detail})")
        bad += not r.good and r.status != "missing"
        if r.status == "missing" and args.names:
            # a file named on the command line counts when it is missing (a setup script's
            # `weights verify gpen-bfr-512 && ...` went on without it); unnamed ones are optional
            missing.append(r.file.name)
    if bad:
        print(f"{PROG}: {bad} file(s) failed verification: delete them and download again",
              file=sys.stderr)
    if missing:
        print(f"{PROG}: {', '.join(missing)} not on disk: `{PROG} weights download {' '.join(missing)}`",
              file=sys.stderr)
    return ChecksumError.exit_code if bad or missing else 0


def _run_weights_path(args: argparse.Namespace) -> int:
    from stream_gpen import weights

    print(weights.ensure_weights(args.name, download=False))
    return 0


def _add_weights(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "weights",
        help="list, download, verify or locate model weights",
        description="Manage model weights. Files are looked for in $STREAM_GPEN_HOME "
        "(default ~/.cache/stream-gpen, also where downloads go), then, when run from a source "
        "checkout, in its weights/ folder. STREAM_GPEN_OFFLINE=1 forbids downloads.",
        parents=[_common_options()],
    )
    sub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)

    sub.add_parser("list", help="every managed file, its size, checksum and the copy on disk a run uses",
                   parents=[_common_options()]).set_defaults(run=_run_weights_list)

    d = sub.add_parser("download", help="download files (skips those already present and valid)",
                       parents=[_common_options()])
    d.add_argument("names", nargs="+", metavar="NAME",
                   help="registry name in any case (gpen-bfr-512), file name, "
                   "or a --detector value (mobilenet0.25)")
    d.add_argument("--no-progress", action="store_true",
                   help="no progress bar (piped or logged: no progress line every 30 s)")
    d.set_defaults(run=_run_weights_download)

    v = sub.add_parser("verify", help="check size and sha256 of every copy on disk (exit 3 on a bad one, or "
                                      "on a NAME given that is missing)",
                       parents=[_common_options()])
    v.add_argument("names", nargs="*", metavar="NAME", help="only these (default: all)")
    v.set_defaults(run=_run_weights_verify)

    pa = sub.add_parser("path", help="print the path of a file on disk (exit 3 if missing)",
                        parents=[_common_options()])
    pa.add_argument("name", metavar="NAME")
    pa.set_defaults(run=_run_weights_path)


# --- the parser -------------------------------------------------------------------------------
#: the command line being parsed (for a sub-command parser's error, which argparse gives no argv)
_ARGV: contextvars.ContextVar[list[str]] = contextvars.ContextVar("stream_gpen_argv", default=[])


class _Parser(argparse.ArgumentParser):
    # No abbreviated long options: `--detector` must not silently mean `--detector-weights`, and
    # a later option must not change what an abbreviation a user's script relies on expands to.
    # Sub-parsers are made with the class of the parser that makes them, so this covers them all.
    def __init__(self, *args, allow_abbrev: bool = False, **kwargs) -> None:
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        # argparse reports a sub-command's unknown options with the top-level usage and no hint:
        # say them with the sub-command's usage, and name the option that was probably meant.
        token = _ARGV.set(list(sys.argv[1:] if args is None else args))
        try:
            parsed, extras = self.parse_known_args(args, namespace)
        finally:
            _ARGV.reset(token)
        if extras:
            (self._command_parser(parsed) or self).error(_unknown_arguments(
                extras, self._command_parser(parsed) or self, root=self))
        return parsed

    def error(self, message: str):  # type: ignore[override]
        # `enhance -dash.jpg`: the file's name was taken for an option, and argparse said only
        # that INPUT was missing
        if message.startswith("the following arguments are required"):
            known = {o for a in self._actions for o in a.option_strings}
            named = [a for a in _ARGV.get() if a.startswith("-") and a != "-" and not a.startswith("--")
                     and a.split("=", 1)[0] not in known and os.path.exists(a)]
            if named:
                message += (f" ({named[0]} is a file, but a name starting with '-' is taken for an option: "
                            f"write ./{named[0]} or -- {named[0]})")
        message += _closest_choice(message)
        # one line and a hint, as every other error (docs/reference.md, "Exit codes"): argparse's own
        # printed the whole usage block (25 lines for enhance) above the one line that mattered
        self.exit(2, f"{PROG}: error: {message}\nhint: {self.prog} --help\n")

    def _command_parser(self, parsed: argparse.Namespace) -> argparse.ArgumentParser | None:
        # the innermost sub-command parser the command line chose (`weights verify`, `enhance`)
        parser: argparse.ArgumentParser = self
        while True:
            subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            chosen = getattr(parsed, subs[0].dest, None) if subs and subs[0].dest else None
            if chosen is None or chosen not in subs[0].choices:
                return None if parser is self else parser
            parser = subs[0].choices[chosen]


def _closest_choice(message: str) -> str:
    """``"; did you mean enhance?"`` for argparse's "invalid choice: 'enhanse' (choose from ...)"
    (a sub-command's or an option's), as an unknown option gets one; else ``""``."""
    import difflib
    import re

    m = re.search(r"invalid choice: (['\"]?)(.*?)\1 \(choose from (.*)\)$", message)
    if m is None:
        return ""
    given = m.group(2)
    choices = [c.strip().strip("'\"") for c in m.group(3).split(",")]
    lowered = {c.lower(): c for c in choices}
    close = ([lowered[given.lower()]] if given.lower() in lowered
             else difflib.get_close_matches(given, choices, n=1, cutoff=0.6))
    return f"; did you mean {close[0]}?" if close else ""


def _unknown_arguments(extras: list[str], parser: argparse.ArgumentParser,
                       root: argparse.ArgumentParser | None = None) -> str:
    import difflib

    known = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
    bare = {o[2:]: o for o in known}
    hints = []
    for extra in extras:
        if extra.startswith("--"):
            name = extra.split("=", 1)[0]
            if name in known:
                # (left over only after "--", which makes all that follows an input: "did you
                # mean --model?" of --model itself)
                hints.append(f"{name} is an option: put it before '--'")
                continue
            elsewhere = [] if name in known else _commands_taking(root, name, parser)
            # (without the shared "--": it alone made --model "close" to --help)
            close = difflib.get_close_matches(name[2:], list(bare), n=1, cutoff=0.6)
            prefixed = [o for o in known if o.startswith(name)]
            guess = [bare[c] for c in close] or prefixed[:1]
            said = []
            if elsewhere:  # (enhance's --model given to info)
                said.append(f"{name} is an option of {', '.join(elsewhere)}")
            if guess:
                said.append(f"did you mean {guess[0]}?" if elsewhere else f"{name}: did you mean {guess[0]}?")
            if said:
                hints.append("; ".join(said))
    message = f"unrecognized arguments: {' '.join(extras)}"
    return message + (f" ({'; '.join(hints)})" if hints else "")


def _commands_taking(root: argparse.ArgumentParser | None, option: str, besides) -> list[str]:
    """The sub-commands (``weights verify`` by its full name) other than ``besides`` that take ``option``."""
    found: list[str] = []

    def walk(parser, prefix):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    if sub is not besides and any(option in b.option_strings for b in sub._actions):
                        found.append(f"{prefix}{name}")
                    walk(sub, f"{prefix}{name} ")

    if root is not None:
        walk(root, "")
    return found


def _common_options() -> argparse.ArgumentParser:
    # Accepted before or after the sub-command. SUPPRESS keeps a sub-parser from resetting a
    # value given earlier on the command line to its default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="debug logging, and a full traceback on errors")
    return common


def _add_enhance(subparsers: argparse._SubParsersAction) -> None:
    from stream_gpen.commands import add_enhance

    add_enhance(subparsers, parents=[_common_options()])


def _add_camera(subparsers: argparse._SubParsersAction) -> None:
    from stream_gpen.commands import add_camera

    add_camera(subparsers, parents=[_common_options()])


def _add_info(subparsers: argparse._SubParsersAction) -> None:
    from stream_gpen.commands import add_info

    add_info(subparsers, parents=[_common_options()])


def _add_serve(subparsers: argparse._SubParsersAction) -> None:
    from stream_gpen.server.cli import add_serve

    add_serve(subparsers, parents=[_common_options()])


_SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_enhance, _add_camera, _add_info, _add_serve, _add_weights,
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Restore faces in videos, live cameras and photos with GPEN.",
        epilog="exit codes: 0 ok, 1 internal error (a bug), 2 bad input/usage, 3 weights, 4 decode/encode/"
        "live source failed, an output or --report that cannot be written, or out of memory, 5 folder done with files skipped (unreadable, failed, or "
        "--start past a video's end), "
        "130 interrupted (143 SIGTERM, 129 SIGHUP), 141 the reader of the output closed the pipe (an error "
        "keeps its own code)",
        parents=[_common_options()],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(subparsers)
    def epilogs(p) -> None:  # (every command's help lists them, `weights verify`'s too)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    if sub.epilog is None:
                        sub.epilog = parser.epilog
                    epilogs(sub)

    epilogs(parser)
    return parser


def _gone(stream) -> None:
    """``stream`` (stderr, stdout) pointed at /dev/null once its reader has gone: what is still
    buffered or said later goes nowhere, and Python's flush at exit does not fail again (which
    made the exit code 120)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    except (OSError, ValueError, AttributeError):  # (not a file: a test's capture, a host's stream)
        pass


def _say(*lines: str) -> None:
    """``lines`` on stderr, where the command's errors and notes go. A reader that has gone
    (``stream-gpen enhance x 2>&1 | head -1``) is no failure of the command: what was to be said
    is lost, the exit code stays the command's own (an error's 2 came out as 1, "internal error",
    for the BrokenPipeError raised while saying it)."""
    try:
        for line in lines:
            print(line, file=sys.stderr)
        sys.stderr.flush()
    except BrokenPipeError:
        _gone(sys.stderr)


class _StderrHandler(logging.StreamHandler):
    # Looks sys.stderr up on every record, so redirection (tests, tqdm) is respected.
    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass

    def handleError(self, record: logging.LogRecord) -> None:
        # stderr's reader has gone (see _say): quietly, not logging's "--- Logging error ---"
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            _gone(sys.stderr)
            return
        super().handleError(record)


class _UserFormatter(logging.Formatter):
    # "stream-gpen: downloading ..." / "stream-gpen: warning: ignoring ...": progress notes read
    # like the tool talking, problems say what they are; the API's notes in the command line's
    # words (``min_face=30.0 (--min-face)`` -> ``--min-face 30.0``), as its errors are.
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
        return f"{PROG}: {level}{in_command_line_words(record.getMessage())}"


class _DebugFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(name)s %(levelname)s: %(message)s")


class _Signals:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP while a command runs: the first one raises
    KeyboardInterrupt in the main thread, so a video run finalizes what it encoded into its
    ``.partial`` file and removes its temp file instead of dying with them on disk. The exit code
    is then 128 + the signal's number, as shells report a death by that signal. Later signals
    are ignored while the partial file is written (a second Ctrl-C or ``kill`` must not cut that
    short: it landed in the sink's clean-up, which deleted everything encoded, and the camera took
    it for a stop before the session and said "stopped", exit 0, with no recording; ``kill -9``
    still ends it). Only in the main thread (Python allows handlers only there).

    The stop is also a flag the run polls between frames (``_finishing.ask_stop``): Python
    swallows an exception raised inside a finalizer or weakref callback ("Exception ignored in"),
    and a SIGTERM that landed there was lost (the run went on to the end, exit 0, and took every
    later signal for a stop under way). Such a swallowed raise is seen by ``sys.unraisablehook``:
    the run stops at its next frame all the same, and a later signal raises again."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._said = False
        self._old: dict = {}
        self._raised: BaseException | None = None  # the KeyboardInterrupt raised for the stop
        self._swallowed = False  # ... and Python swallowed it (a finalizer): no stop under way
        self._old_hook = None

    def __enter__(self) -> "_Signals":
        import signal
        import threading

        from stream_gpen._finishing import clear_stop

        if threading.current_thread() is threading.main_thread():
            clear_stop()
            # (SIGBREAK: Windows' Ctrl-Break and console window closed; SIGHUP does not exist there)
            for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK"):
                sig = getattr(signal, name, None)
                # a signal the process was started with ignored stays ignored (nohup: SIGHUP; a
                # script's `cmd &`: SIGINT): a `nohup stream-gpen enhance ... &` stopped at logout
                if sig is not None and signal.getsignal(sig) != signal.SIG_IGN:
                    self._old[sig] = signal.signal(sig, self._handle)
            self._old_hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def _unraisable(self, unraisable) -> None:
        if self._raised is not None and unraisable.exc_value is self._raised:
            # our stop, raised inside a finalizer and swallowed there: the polled flag stops the
            # run at its next frame (no traceback for it), and a next signal raises again
            self._raised, self._swallowed = None, True
            return
        (self._old_hook or sys.__unraisablehook__)(unraisable)

    def _handle(self, signum, frame) -> None:
        import signal

        from stream_gpen._finishing import ask_stop, defer, is_finishing

        # (polled between frames: taken even where the raise below is swallowed)
        ask_stop("Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name)
        if self.received is None and is_finishing():
            # the run is done but for writing its output (flushing, renaming): an interrupt there
            # made the sink discard the whole file; the stop is taken once the output is whole
            self.received = signum
            self._said = True
            _say(f"{PROG}: stopping once the output is written")
            defer()
            return
        if self.received is not None and not (self._swallowed and not is_finishing()):
            if not self._said:
                self._said = True
                _say(f"{PROG}: stopping: finishing what was written (kill -9 abandons it)")
            return
        self.received, self._swallowed = signum, False
        # (SIGINT as Python's own handler: "Ctrl-C" in messages)
        self._raised = KeyboardInterrupt() if signum == signal.SIGINT else KeyboardInterrupt(
            f"{signal.Signals(signum).name} received")
        raise self._raised

    def exit_code(self, code: int) -> int:
        return 128 + self.received if self.received is not None and code == 130 else code

    def __exit__(self, *exc) -> None:
        import signal

        from stream_gpen._finishing import clear_stop

        for sig, old in self._old.items():
            signal.signal(sig, old)
        if self._old_hook is not None:
            sys.unraisablehook, self._old_hook = self._old_hook, None
        if self._old:
            clear_stop()
        self._raised = None  # (its traceback holds the frames it was raised in)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit code. The caller's
    process is left as it was (signal handlers, logging), so a program can call it and go on."""
    return _main(argv, exiting=False)


def run() -> int:
    """The ``stream-gpen`` program (``python -m stream_gpen``): :func:`main` on ``sys.argv``, for a
    process that exits with its result."""
    # What is printed on stdout (info, weights list) names files: under Windows a redirected
    # stdout is the ANSI code page with strict errors, and a CJK file name crashed `info > out.txt`
    # half-way (stderr already replaces what it cannot encode)
    try:
        sys.stdout.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError):  # (not a text stream we can change: leave it)
        pass
    return _main(None, exiting=True)


def _main(argv: list[str] | None, *, exiting: bool) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (argparse exits with 2)
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    debug = getattr(args, "debug", False)

    pkg_logger = logging.getLogger("stream_gpen")
    handler = _StderrHandler()
    handler.setFormatter(_DebugFormatter() if debug else _UserFormatter())
    old_level, old_propagate = pkg_logger.level, pkg_logger.propagate
    pkg_logger.addHandler(handler)
    # our handler says each line on stderr; a host's own root handlers (logging.basicConfig) would
    # say it again, and below the host's level too
    pkg_logger.propagate = False
    # --quiet: warnings and errors only (no progress, summary or info lines such as the precision pick)
    quiet = getattr(args, "quiet", False)
    pkg_logger.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    signals = _Signals()
    try:
        if getattr(args, "own_signals", False):  # (serve: uvicorn's graceful shutdown)
            return int(args.run(args) or 0)
        with signals:
            return int(args.run(args) or 0)
    except (StreamGpenError, Interrupted) as exc:
        # Interrupted (Ctrl-C mid-run: a KeyboardInterrupt carrying its message, hint and exit
        # code 130 as an error does) lands here too
        if debug:
            _say(traceback.format_exc().rstrip())
        # (the API's messages name its keywords, skip_existing=True; said here as the flags, --skip-existing)
        message = in_command_line_words(" ".join(str(exc).split()) or type(exc).__name__)
        _say(f"{PROG}: error: {message}", *([f"hint: {in_command_line_words(exc.hint)}"] if exc.hint else []))
        return signals.exit_code(exc.exit_code)
    except KeyboardInterrupt:
        _say(f"{PROG}: interrupted")
        return signals.exit_code(130)
    except BrokenPipeError:
        # `stream-gpen info x | head`: the reader has what it wanted. Quiet, like other tools;
        # stdout (and stderr, where it was the one that closed) is pointed at /dev/null so that
        # Python's exit flush does not fail again. (An error said to a reader that has gone
        # keeps its own code: see _say.)
        _gone(sys.stdout)
        try:
            sys.stderr.flush()
        except BrokenPipeError:
            _gone(sys.stderr)
        except (OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE, as a shell reports a command a pipe closed on
    except OSError as exc:
        # the file system refused (read-only, full, no permission): the machine's state, not a bug
        if debug:
            _say(traceback.format_exc().rstrip())
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        _say(f"{PROG}: error: cannot write or read a file ({exc.strerror or exc}){where}", f"hint: {FILE_SYSTEM_HINT}")
        return signals.exit_code(4)
    except Exception as exc:  # a bug: say so in one line unless asked for the traceback
        if debug:
            _say(traceback.format_exc().rstrip())
        if _out_of_memory(exc):  # the machine's limit (a GPU shared with others, a huge batch), not a bug
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if "cpu" in first.lower() or isinstance(exc, MemoryError):  # the host's memory, not the GPU's
                hint = ("hint: close what else uses the memory, lower --batch-size (default 8), or restore a smaller "
                        "copy of the input (8K video holds ~100 MB per buffered frame, 3x at 10 bits)")
            else:
                hint = ("hint: lower --batch-size (default 8), choose a smaller --model, close what else uses the "
                        "GPU, or run with --device cpu")
            _say(f"{PROG}: error: out of memory: {first}", hint)
            return signals.exit_code(4)
        _say(f"{PROG}: internal error: {type(exc).__name__}: {exc}",
             "hint: rerun with --debug for the traceback, and please report it")
        return 1
    finally:
        pkg_logger.removeHandler(handler)
        pkg_logger.setLevel(old_level)
        pkg_logger.propagate = old_propagate
        if exiting and not getattr(args, "own_signals", False):
            # the program itself (not a caller's main()): it exits now, and a Ctrl-C during
            # Python's shutdown (torch's exit handlers, ~0.5 s) printed a traceback after "wrote"
            # and ended the process by the signal instead of with its exit code
            _ignore_sigint_now()


def _ignore_sigint_now() -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)



def _out_of_memory(exc: BaseException) -> bool:
    """torch's (CUDA or CPU) out-of-memory error, or Python's MemoryError; by name, so that this
    module does not import torch."""
    text = str(exc).lower()
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            # (torch's CPU allocator: "DefaultCPUAllocator: can't allocate memory: you tried to allocate...")
            or (isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)))


if __name__ == "__main__":  # (last: everything main() calls is defined by now)
    sys.exit(run())
