"""Session 24: the turned-video note speaks of the share of the video it held for."""
from __future__ import annotations

import numpy as np

from test_faces23fix import talking_head  # noqa: F401  (the module-scoped fixture)


def test_turned_note_wording():
    """Only a turn that held for most of a video suggests a lost rotation tag."""
    from stream_gpen.pipeline import TURNED_VIDEO_SHARE, turned_note

    whole = turned_note(3, 1.0)
    assert "rotation tag" in whole and "transpose=clock" in whole
    part = turned_note(3, TURNED_VIDEO_SHARE - 0.05)
    assert "rotation tag" not in part and "part of the video" in part and "turned 90° clockwise" in part
    assert "rotation tag" not in turned_note(1, None) and "turned 90° counterclockwise" in turned_note(1, None)


def test_lying_shot_is_not_called_a_lost_tag(shared, mobilenet_weights, talking_head, tmp_path, caplog):  # noqa: F811
    """An upright video with one shot whose person lies down (the talking head turned 90° after a
    cut) is detected turned in that shot, which suits its face; the run's note then asked whether
    the video's rotation tag was missing (session 23's known gap). The note now says it held for
    part of the video and the share."""
    from _clips import write_video
    from _doubles import IdentityRestorer

    from stream_gpen import Enhancer

    upright = [np.ascontiguousarray(a) for a in talking_head] * 3
    lying = [np.ascontiguousarray(np.rot90(a, -1)) for a in talking_head]
    clip = write_video(tmp_path / "lying.mp4", upright + lying, options={"crf": "12"})
    enh = Enhancer(IdentityRestorer(), device="cpu", detector_weights=str(mobilenet_weights), progress=False)
    with caplog.at_level("WARNING", logger="stream_gpen.pipeline"):
        summary = enh.enhance_file(clip, tmp_path / "out.mp4")
    said = [f for f in summary.fallbacks if "upright with the picture turned" in f]
    assert len(said) == 1, summary.fallbacks
    assert "rotation tag" not in said[0] and "part of the video" in said[0], said[0]
    assert summary.faces_restored == len(upright) + len(lying)
    assert not any("rotation tag" in r.getMessage() for r in caplog.records)
