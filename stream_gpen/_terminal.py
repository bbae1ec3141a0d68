"""Where progress goes: a bar on a terminal that has a size, a plain line now and then elsewhere.

Piped or logged (stderr not a TTY: a container's log, ``2>&1 | tee``, a cron job, CI) a bar's
carriage returns are noise, and silence until the end looks like a hang; a terminal of 0 columns
or 0 rows (a pty made without a size: ``script``, some CI runners) shows no bar at all (tqdm hides
a bar below the screen's last row). Both get a plain line every :data:`PIPED_EVERY_S` seconds
instead: an enhance run's frames, a download's megabytes."""
from __future__ import annotations

import os

# How often a piped (or unsized terminal's) progress line is said: often enough that a long run
# is seen to move, seldom enough that a day's log is not all progress lines.
PIPED_EVERY_S = 30.0


def terminal_size(stream) -> os.terminal_size | None:
    """The size of the terminal ``stream`` is, or None where it does not say."""
    try:
        return os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None


def draws_bars(stream) -> bool:
    """Whether a progress bar can be seen on ``stream``: a terminal, and not one of 0 columns or
    0 rows (one that does not say its size gets the bar)."""
    if not stream.isatty():
        return False
    size = terminal_size(stream)
    return size is None or (size.columns != 0 and size.lines != 0)
