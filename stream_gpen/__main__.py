"""``python -m stream_gpen``: the same as the ``stream-gpen`` command."""
import sys

from stream_gpen.cli import run

if __name__ == "__main__":
    sys.exit(run())
