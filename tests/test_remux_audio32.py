"""Hunt 32 (audio, the stream copy of ``--copy-if-no-faces``): the re-encode moves copied packets
that round onto one AVI tick; the stream copy that replaces it when no face is found failed on
them ("Invalid argument": the re-encode kept). Inputs as in test_audio32, whose video (a flat
grey) has no face."""
from __future__ import annotations

from pathlib import Path

import av
from test_audio32 import _audio, _clip

COPIED = "no faces found: the input was stream-copied to the output (copy_if_no_faces=True)"


def _copied(enh, src: Path, dst: Path):
    summary = enh.enhance_file(src, dst, copy_if_no_faces=True)
    assert summary.faces_restored == 0
    assert summary.encoder == "copy" and COPIED in summary.fallbacks, summary.fallbacks
    return summary


def test_a_copy_into_avi_of_audio_whose_times_round_onto_one_tick(tmp_path, enh):
    # Matroska's 1 ms clock against AVI's 21.3 ms AAC frames: two packets round onto one tick; the
    # muxer refused the second ("Invalid argument") and the re-encode was kept instead of the copy
    _copied(enh, _clip(tmp_path / "early.mkv", vdur=2, adur=2.5, voff=0.48), tmp_path / "o.avi")
    n, rate, ts = _audio(tmp_path / "o.avi")
    assert rate == 48000 and n > 90000, n
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    with av.open(str(tmp_path / "o.avi")) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
