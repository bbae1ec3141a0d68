"""``--copy-if-no-faces`` and the timestamp repairs the re-encode makes (hunt 30). The copy took
the input's timestamps as they were: a .ts whose 33-bit clock wrapped 0.2 s in (FFmpeg gives the
times before the wrap as negative) was copied into an .mp4 whose edit list hid its first frames
(the summary said "written from its first frame at 0", from the re-encode it replaced); a damaged
presentation time (1000 s ahead) stayed in a .mkv copy (a 3 s video of 16 minutes); recordings
joined end to end kept their clock's jump back. Now the copy into mp4/mov of a video that starts
before 0 is written from its first frame at 0, as the re-encode is, and where the read had to
repair the input's timestamps (a damaged time) the re-encode is kept, with a note that
says why (a join, since hunt 34, is copied on one clock: see test_join34). A second video track (another angle), which the re-encode does not restore and says
it dropped, is left out of the copy too."""
from __future__ import annotations

import av
import numpy as np
import pytest
from _clips import damage_pes, ts_clip, two_angles

from stream_gpen.io import remux

COPIED = "no faces found: the input was stream-copied to the output (copy_if_no_faces=True)"


def _times(path) -> list[float]:
    with av.open(str(path)) as c:
        return [round(float(f.time), 3) for f in c.decode(c.streams.video[0])]


@pytest.fixture
def wrapped(tmp_path):
    path = tmp_path / "wrap.ts"
    ts_clip(path, n=25, t0=2**33 / 90000 - 0.2)  # (the clock wraps 0.2 s in: the first 5 frames before 0)
    with av.open(str(path)) as c:
        assert c.streams.video[0].start_time < 0
    return path


@pytest.mark.parametrize("ext", [".mp4", ".mov"])
def test_a_copy_of_a_wrapped_ts_shows_every_frame(wrapped, tmp_path, ext):
    assert remux(wrapped, tmp_path / f"o{ext}") == 25
    times = _times(tmp_path / f"o{ext}")
    assert len(times) == 25 and times[0] == pytest.approx(0, abs=1e-3), times


def test_copy_if_no_faces_of_a_wrapped_ts_is_the_re_encodes_length(wrapped, tmp_path, enh):
    re = enh.enhance_file(wrapped, tmp_path / "re.mp4")
    copied = enh.enhance_file(wrapped, tmp_path / "copy.mp4", copy_if_no_faces=True)
    assert copied.encoder == "copy" and COPIED in copied.fallbacks
    assert any("written from its first frame at 0" in n for n in re.fallbacks), re.fallbacks
    assert _times(tmp_path / "copy.mp4") == pytest.approx(_times(tmp_path / "re.mp4"), abs=2e-3)


def test_copy_if_no_faces_keeps_the_re_encode_of_a_damaged_timestamp(tmp_path, enh):
    data = ts_clip(tmp_path / "a.ts", n=25, bf=2)
    damage_pes(data, "video", 10, 1000.0, dts_too=False)
    src = tmp_path / "bad.ts"
    src.write_bytes(bytes(data))
    s = enh.enhance_file(src, tmp_path / "o.mkv", copy_if_no_faces=True)
    assert s.encoder != "copy" and COPIED not in s.fallbacks
    assert ("no faces found; stream copy impossible (the input's timestamps needed repairs a copy would not make: "
            "1 damaged timestamp(s) retimed): the re-encoded output was kept") in s.fallbacks, s.fallbacks
    times = _times(tmp_path / "o.mkv")
    assert len(times) == 25 and max(times) < 1.5, times
    with av.open(str(tmp_path / "o.mkv")) as c:
        assert c.duration / 1e6 < 1.5


def test_copy_if_no_faces_copies_joined_recordings_on_one_clock(tmp_path, enh):
    """(Hunt 34: the copy joins them as the read does, where the re-encode was kept: see test_join34.)"""
    src = tmp_path / "joined.ts"
    src.write_bytes(bytes(ts_clip(tmp_path / "a.ts", n=25, t0=10.0)) + bytes(ts_clip(tmp_path / "b.ts", n=25, t0=10.0)))
    s = enh.enhance_file(src, tmp_path / "o.mkv", copy_if_no_faces=True)
    assert s.encoder == "copy" and COPIED in s.fallbacks, s.fallbacks
    times = _times(tmp_path / "o.mkv")
    assert len(times) == 50 and np.diff(times).min() > 0.039, times


def test_a_copy_leaves_out_the_video_tracks_the_re_encode_drops(tmp_path, enh):
    src = two_angles(tmp_path / "two.mp4")
    re = enh.enhance_file(src, tmp_path / "re.mp4")
    copied = enh.enhance_file(src, tmp_path / "copy.mp4", copy_if_no_faces=True)
    assert copied.encoder == "copy" and COPIED in copied.fallbacks
    for notes in (re.fallbacks, copied.fallbacks):
        assert any(n.startswith("video stream #1 (h264) dropped") for n in notes), notes
    for name in ("re.mp4", "copy.mp4"):
        with av.open(str(tmp_path / name)) as c:
            assert [(s.type, s.codec_context.width) for s in c.streams] == [("video", 64)]


def test_remux_says_the_video_track_it_leaves_out(tmp_path, caplog):
    src = two_angles(tmp_path / "two.mp4")
    with caplog.at_level("WARNING", logger="stream_gpen"):
        assert remux(src, tmp_path / "o.mkv") == 25
    assert ("remux: video stream #1 (h264) dropped: only the main video stream is copied, as it alone is restored"
            in caplog.text), caplog.text
