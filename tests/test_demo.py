"""`make demo`'s offline path: no GPEN weights, network unreachable -> classic fallback, finishes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av

REPO = Path(__file__).resolve().parents[1]


def test_demo_falls_back_to_classic_offline(tmp_path, shared):
    env = dict(os.environ)
    env.update(
        STREAM_GPEN_HOME=str(tmp_path / "empty-cache"),  # no GPEN weights anywhere
        STREAM_GPEN_SHARED=str(shared),  # the detector comes from ../shared, as in a checkout
        # Every download goes to a closed port on this machine: "the network is unreachable".
        https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", no_proxy="", NO_PROXY="",
    )
    r = subprocess.run([sys.executable, str(REPO / "samples/make_samples.py")], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(REPO / "samples/demo.py"), "--device", "cpu", "--out", str(out)],
                       env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    err = " ".join(r.stderr.split())
    assert "GPEN weights are not available here" in err
    assert "GPEN-BFR-256.pth" in err and "https://public-vigen-video" in err
    assert str(tmp_path / "empty-cache") in err  # where to put the file
    assert "falls back to the 'classic' enhancer" in err
    assert "model: classic" in err
    clip = out / "astronaut_clip_enhanced.mp4"
    with av.open(str(clip)) as c:
        assert sorted(s.type for s in c.streams) == ["audio", "video"]
        assert sum(1 for _ in c.decode(video=0)) == 100
    assert (out / "astronaut_degraded_enhanced.jpg").stat().st_size > 1000
    assert (out / "astronaut_side_by_side.jpg").stat().st_size > 1000
