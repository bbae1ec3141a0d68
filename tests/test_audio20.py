"""Hunt 20 (audio20): the sound of a cut part transcoded into Matroska/WebM starts at the part's
first sample (the encoder's priming packet was left out while the track still declared its codec
delay: the reader skipped the part's first 1024 real samples), and a lost disposition mark's note
does not advise the container it is written to."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

RATE = 48000


def _clip_with_click(path, *, acodec="pcm_s16le", click_s=1.0, seconds=2.0):
    """25 fps frames, the one at ``click_s`` white, and mono audio silent but for a 5 ms click there."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream(acodec, rate=RATE, layout="mono")
        for i in range(int(seconds * 25)):
            img = np.full((48, 64, 3), 255 if i == round(click_s * 25) else 40, np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        x = np.zeros(int(seconds * RATE), np.int16)
        k = int(click_s * RATE)
        x[k:k + RATE // 200] = 20000
        for t in range(0, len(x), 1024):
            af = av.AudioFrame.from_ndarray(x[None, t:t + 1024], format="s16", layout="mono")
            af.sample_rate, af.pts = RATE, t
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    return path


def _sound(path):
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        first, chunks = None, []
        for f in c.decode(s):
            if first is None:
                first = float(f.pts * f.time_base)
            chunks.append(f.to_ndarray().reshape(-1) if f.format.is_planar else f.to_ndarray()[0])
    return first, np.concatenate(chunks)


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_a_cut_transcoded_into_matroska_keeps_its_first_samples(tmp_path, enh, ext):
    src = _clip_with_click(tmp_path / "c.mov")
    out = tmp_path / f"o{ext}"
    enh.enhance_file(src, out, audio="aac", start=0.5, duration=1.0)
    first, x = _sound(out)
    assert first == pytest.approx(0.0, abs=1e-4)  # (0.021 s in .mkv: the first 1024 samples lost)
    click = int(np.argmax(np.abs(x) > 0.2)) / RATE
    with av.open(str(out)) as c:
        white = next(float(f.pts * f.time_base) for f in c.decode(video=0) if f.to_ndarray(format="gray").mean() > 200)
    assert white == pytest.approx(0.48, abs=0.005)  # (the part starts at the first frame from 0.5 s: 0.52)
    assert click == pytest.approx(white, abs=0.002)  # in sync with the white frame


def test_a_lost_mark_is_not_said_kept_by_the_container_it_is_written_to(tmp_path):
    from stream_gpen.io._tags import marks_lost

    D = av.stream.Disposition
    with av.open(str(tmp_path / "o.mkv"), "w") as mkv:
        note = marks_lost(mkv, 1, int(D.captions))
        assert "captions mark dropped" in note and ".mkv keeps" not in note and "(.mp4 keeps it)" in note, note
        assert marks_lost(mkv, 1, int(D.comment)) is None
    with av.open(str(tmp_path / "o.mov"), "w") as mov:
        assert marks_lost(mov, 1, int(D.comment)).endswith("(.mkv keeps it)")
        both = marks_lost(mov, 1, int(D.comment) | int(D.original))
        assert both.endswith("(.mkv keeps them)"), both  # (.mp4 drops 'original')
        neither = marks_lost(mov, 1, int(D.original) | int(D.captions))
        assert "keeps" not in neither, neither  # (no container keeps both)
