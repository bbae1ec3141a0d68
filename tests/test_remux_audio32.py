"""Hunt 32 (audio, the stream copy of ``--copy-if-no-faces``): the re-encode transcodes copied
audio that would come out wrong (a pause in it into AVI, ADTS AAC changing its channels or rate
into mp4/mkv/avi) and moves packets that round onto one AVI tick; the stream copy that replaces
it when no face is found copied such audio as it was (undecodable, fast, its pause closed up) or
failed on the tick ("Invalid argument": the re-encode kept). Inputs as in test_audio32, whose
video (a flat grey) has no face."""
from __future__ import annotations

from pathlib import Path

import av
import pytest
from test_audio32 import _audio, _clip

COPIED = "no faces found: the input was stream-copied to the output (copy_if_no_faces=True)"


def _copied(enh, src: Path, dst: Path):
    summary = enh.enhance_file(src, dst, copy_if_no_faces=True)
    assert summary.faces_restored == 0
    assert summary.encoder == "copy" and COPIED in summary.fallbacks, summary.fallbacks
    return summary


def _switching(tmp_path: Path, rate: int, layout: str, codec: str = "aac") -> Path:
    """A .ts joined from a second of stereo 48 kHz ``codec`` and a second of ``layout`` at ``rate``
    (``cat a.ts b.ts``; the second part's sound starts 30 ms after the first's ends, so that no
    packet time repeats at the join, which the copy, taking times as they are, would refuse)."""
    a = _clip(tmp_path / "a.ts", codec, 48000, "stereo", vdur=1, adur=1.024)
    b = _clip(tmp_path / "b.ts", codec, rate, layout, vdur=1, adur=1, voff=1, aoff=1.0753333)
    dst = tmp_path / "switch.ts"
    dst.write_bytes(a.read_bytes() + b.read_bytes())
    return dst


@pytest.mark.parametrize("rate,layout,ext,codec", [(48000, "5.1", "mp4", "aac"), (48000, "5.1", "avi", "aac"),
                                                   (44100, "stereo", "mkv", "opus")])
def test_a_copy_transcodes_adts_aac_that_changes_its_channels_or_rate(tmp_path, enh, rate, layout, ext, codec):
    # copied, the track kept the first packet's configuration: the 5.1 half failed to decode
    # ("Invalid data"), the 44.1 kHz half played at 48 kHz, unsaid, while the summary said the
    # re-encode's "transcoded"; and the transcoder passed the 5.1 frames on to a stereo encoder
    _copied(enh, _switching(tmp_path, rate, layout), tmp_path / f"o.{ext}")
    n, out_rate, _ = _audio(tmp_path / f"o.{ext}")  # (raises on a packet it cannot decode)
    assert abs(n / out_rate - 2.05) < 0.1, n / out_rate
    with av.open(str(tmp_path / f"o.{ext}")) as c:
        assert c.streams.audio[0].codec_context.name == codec
        assert c.streams.video[0].codec_context.name == "h264"


def test_a_copy_into_ts_still_copies_adts_aac_that_changes(tmp_path, enh):
    _copied(enh, _switching(tmp_path, 48000, "5.1"), tmp_path / "o.ts")
    with av.open(str(tmp_path / "o.ts")) as c:
        assert {f.layout.name for f in c.decode(c.streams.audio[0])} == {"stereo", "5.1"}


@pytest.mark.parametrize("name,codec", [("gap.ts", "mp2"), ("gap.mkv", "ac3")])
def test_a_copy_into_avi_keeps_a_gap_in_the_audio(tmp_path, enh, name, codec):
    # no sound from 0.5 to 1.2 s: the copy into AVI closed the pause up (0-1.3 s, all after it
    # 0.7 s early), while the summary still said the re-encode's "the pause is filled with silence"
    src = _clip(tmp_path / name, codec, vdur=2, adur=2, gap=(0.5, 1.2))
    _copied(enh, src, tmp_path / "o.avi")
    n, rate, _ = _audio(tmp_path / "o.avi")
    assert abs(n / rate - 2.0) < 0.1, n / rate


def test_a_copy_into_avi_without_a_gap_copies_the_audio(tmp_path, enh):
    _copied(enh, _clip(tmp_path / "plain.mkv", "ac3", vdur=2, adur=2), tmp_path / "o.avi")
    with av.open(str(tmp_path / "o.avi")) as c:
        assert c.streams.audio[0].codec_context.name == "ac3"


def test_a_copy_into_avi_of_audio_whose_times_round_onto_one_tick(tmp_path, enh):
    # Matroska's 1 ms clock against AVI's 21.3 ms AAC frames: two packets round onto one tick; the
    # muxer refused the second ("Invalid argument") and the re-encode was kept instead of the copy
    _copied(enh, _clip(tmp_path / "early.mkv", vdur=2, adur=2.5, voff=0.48), tmp_path / "o.avi")
    n, rate, ts = _audio(tmp_path / "o.avi")
    assert rate == 48000 and n > 90000, n
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    with av.open(str(tmp_path / "o.avi")) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
