"""Session 31: a single photo's on_progress raising in its last call (the photo written whole by
then) raised with summary.error set and nothing saying the photo was there: a retry met
OutputExistsError. The summary names the kept photo now (``output``, ``frames_out``, a note)."""
from __future__ import annotations

import shutil

import pytest

from stream_gpen import Enhancer


class Boom(Exception):
    pass


def test_a_photo_written_before_its_callback_raised_is_said_as_kept(tmp_path, shared, det_home):
    src = tmp_path / "face.png"
    shutil.copy(shared / "data/faces/aligned/gpen_ffhq_00000.png", src)
    dst = tmp_path / "out.png"
    enh = Enhancer("classic", device="cpu")

    def boom(done, total, faces):
        raise Boom("callback failed")

    with pytest.raises(Boom) as info:
        enh.enhance_file(src, dst, on_progress=boom)
    s = info.value.summary
    assert dst.is_file() and s.error == "callback failed"
    assert s.output == str(dst) and s.frames_out == 1 and s.partial_output is None
    assert f"{dst} was written whole before the error: kept" in s.fallbacks
    # what the summary says is what is there: skip_existing takes it as done
    again = enh.enhance_file(src, dst, skip_existing=True)
    assert any("already exists" in f for f in again.fallbacks)
