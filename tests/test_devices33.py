"""Hunt 33 (devices): the preview window and real capture devices (V4L2, DirectShow), with
OpenCV's window functions and FFmpeg's device opens stood in for (no display, no camera here)."""
from __future__ import annotations

import sys
import types

import pytest

from stream_gpen.cli import main


class _FakeCv2(types.ModuleType):
    """OpenCV's HighGUI as far as the preview uses it: a window exists once ``imshow`` made it,
    ``destroyWindow`` of one that does not fails as Qt's does ("NULL guiReceiver"), ``keys`` are
    the keys pressed (one per ``waitKey``/``pollKey``), ``closed`` the user's closing the window."""

    WND_PROP_VISIBLE = 4

    class error(Exception):  # noqa: N801 (cv2.error)
        pass

    def __init__(self) -> None:
        super().__init__("cv2")
        self.windows: set[str] = set()
        self.keys: list[int] = []
        self.closed = False
        self.calls: list[str] = []

    def imshow(self, title, img) -> None:
        self.calls.append("imshow")
        self.windows.add(title)

    def _key(self) -> int:
        return self.keys.pop(0) if self.keys else -1

    def waitKey(self, ms=0) -> int:  # noqa: N802
        self.calls.append("waitKey")
        return self._key()

    def pollKey(self) -> int:  # noqa: N802
        self.calls.append("pollKey")
        return self._key()

    def getWindowProperty(self, title, prop) -> float:  # noqa: N802
        if title not in self.windows:
            raise self.error("NULL window")
        return 0.0 if self.closed else 1.0

    def destroyWindow(self, title) -> None:  # noqa: N802
        if title not in self.windows:
            raise self.error("OpenCV(4.10.0) window_QT.cpp:523: error: (-27:Null pointer) NULL guiReceiver "
                             "(please create a window) in function 'cvDestroyWindow'")
        self.windows.discard(title)


@pytest.fixture
def fake_cv2(monkeypatch):
    cv2 = _FakeCv2()
    monkeypatch.setitem(sys.modules, "cv2", cv2)
    return cv2


def _frame(n: int = 0):
    import torch

    from stream_gpen.io import Frame
    from fractions import Fraction

    return Frame(n, n, Fraction(1, 25), n / 25, torch.zeros(8, 8, 3, dtype=torch.uint8))


def test_a_preview_closed_before_its_first_frame_has_no_window_to_destroy(fake_cv2):
    from stream_gpen.io import PreviewSink

    sink = PreviewSink()
    sink.close()  # (destroyWindow raised "NULL guiReceiver")
    assert "imshow" not in fake_cv2.calls
    sink = PreviewSink()
    sink.write(_frame())
    sink.close()
    assert not fake_cv2.windows


def test_a_preview_whose_window_went_away_closes_quietly(fake_cv2):
    from stream_gpen.io import PreviewSink

    sink = PreviewSink()
    sink.write(_frame())
    fake_cv2.windows.clear()  # (the GUI gone under it)
    sink.close()


@pytest.mark.parametrize("record", [False, True])
def test_camera_preview_stopped_before_the_first_frame_is_not_an_error(tmp_path, cli_env, capsys, monkeypatch,
                                                                         fake_cv2, record):
    """q + Enter before the first frame with --preview: "error: OpenCV ... NULL guiReceiver",
    exit 1, or with -o, "error: no frames were written ...; nothing to save", exit 4."""
    import stream_gpen.commands as commands

    monkeypatch.setattr(commands, "_display_problem", lambda: None)
    monkeypatch.setattr(commands, "_stdin_quit_watcher", lambda stop: stop.set())  # q + Enter at once
    out = tmp_path / "rec.mkv"
    rec = ["-o", str(out)] if record else []
    assert main(["camera", "lavfi:testsrc=size=96x64:rate=1", "--preview", *rec,
                 *[o for o in cli_env if o != "--quiet"]]) == 0
    err = capsys.readouterr().err
    assert "nothing was recorded" in err or not record, err
    assert "error" not in err.lower(), err
    assert not out.exists()
