"""Review of hunt 29 (edge29b): a two-program MPEG-TS with no audio (two videos, one a program)
named no programs in the several-videos warning: its programs were read only for an input with
more than two streams."""
from __future__ import annotations

import logging

from _clips import copy_through

from tests.test_edge29 import _multiplex, _program


def test_two_programs_of_video_only_are_named(tmp_path, caplog):
    a = _program(tmp_path / "p1.ts", 1, 0x1000, 0x100, (64, 48), None)
    b = _program(tmp_path / "p2.ts", 2, 0x1100, 0x200, (96, 64), None)
    src = _multiplex(tmp_path / "two.ts", a, b, [(1, 0x1000), (2, 0x1100)])
    caplog.set_level(logging.INFO, logger="stream_gpen")
    copy_through(src, tmp_path / "o.mp4")
    assert "restoring #1 (96x64, the largest, program 2); not restored: #0 (64x48, program 1)" in caplog.text, \
        caplog.text
