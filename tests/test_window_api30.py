"""Session 30 (api): a start/duration that cannot be meant is refused by enhance_file before any
work, for every kind of input (a folder's photos were restored first and each video "skipped")."""
from __future__ import annotations

import numpy as np
import pytest

from _clips import write_video
from stream_gpen import Enhancer
from stream_gpen.errors import InvalidInputError


@pytest.fixture
def no_work(monkeypatch):
    """Any input opened for restoring fails the test: a refusal must come before any work."""
    def opened(self, src, **kw):
        raise AssertionError(f"{src} was opened for restoring")

    monkeypatch.setattr(Enhancer, "_open", opened)


@pytest.fixture
def mixed(tmp_path, face):
    folder = tmp_path / "mixed"
    folder.mkdir()
    face.save(folder / "photo.jpg")
    write_video(folder / "clip.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)])
    return folder


BAD = [
    (dict(start=-1), r"^start must be a number of seconds >= 0, got -1$"),
    (dict(duration=0), r"^duration must be None or a number of seconds > 0, got 0$"),
    (dict(start=float("nan")), r"^start must be a number of seconds >= 0, got nan$"),
    (dict(start="0:01"), r"^start must be a number of seconds >= 0, got '0:01' \(give seconds as a number, "
                         r"start=90\.5, not text such as start='1:30\.5'\)$"),
    (dict(duration="5"), r"^duration must be None or a number of seconds > 0, got '5' \(give seconds"),
    (dict(start=True), r"^start must be a number of seconds >= 0, got True$"),
]


@pytest.mark.parametrize("kw,said", BAD)
def test_a_folder_refuses_a_bad_start_or_duration_before_its_photos(enh, mixed, tmp_path, no_work, kw, said):
    """api30: the folder's photo was restored, its video listed in summary.skipped, and the call
    returned normally; with on_progress, start="0:01" was a bare TypeError (seconds * rate)."""
    for progress in (None, lambda *a: None):
        with pytest.raises(InvalidInputError, match=said):
            enh.enhance_file(mixed, tmp_path / "out", on_progress=progress, **kw)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kw,said", BAD)
def test_a_photo_and_a_video_refuse_it_in_the_same_words(enh, mixed, tmp_path, no_work, kw, said):
    """A photo was told "start/duration cut videos" for start=-1 (and "0:01"): the value is what is wrong."""
    for src in ("photo.jpg", "clip.mp4"):
        with pytest.raises(InvalidInputError, match=said):
            enh.enhance_file(mixed / src, tmp_path / f"out_{src}", **kw)


def test_numbers_of_any_kind_still_cut_a_folders_videos(enh, mixed, tmp_path):
    """numpy numbers, ints and floats are seconds as before; the folder's video is cut."""
    s = enh.enhance_file(mixed, tmp_path / "out", start=np.float32(0.04), duration=np.int64(1))
    assert s.skipped == [] and s.frames_out == 1 + 2  # the photo, and the video from its 2nd frame
