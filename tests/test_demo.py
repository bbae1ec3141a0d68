"""`make demo`'s offline path: no GPEN weights, network unreachable -> classic fallback, finishes.

`make demo` runs ``samples/make_samples.py`` then ``samples/demo.py``; so does this test, with both
scripts copied unchanged into a ``samples/`` folder of its own (the demo reads its inputs next to
itself), where the clip is made 1 s long by make_samples' own generator (the shipped one is 4 s:
100 frames through the classic restorer cost ~30 s of CPU and check nothing more). The photo is
made by the copied make_samples.py itself. The repository's samples/ is left as it is."""
from __future__ import annotations

import filecmp
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av

REPO = Path(__file__).resolve().parents[1]


def test_demo_falls_back_to_classic_offline(tmp_path, shared):
    samples = tmp_path / "samples"
    samples.mkdir()
    for name in ("make_samples.py", "demo.py"):
        shutil.copy(REPO / "samples" / name, samples / name)
    spec = importlib.util.spec_from_file_location("make_samples", REPO / "samples/make_samples.py")
    make_samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_samples)
    make_samples.make_clip(samples / "astronaut_clip.mp4", seconds=1.0)  # 25 frames, same pan/zoom/degrade/tone

    env = dict(os.environ)
    env.update(
        STREAM_GPEN_HOME=str(tmp_path / "empty-cache"),  # no GPEN weights anywhere
        STREAM_GPEN_SHARED=str(shared),  # the detector comes from ../shared, as in a checkout
        # Every download goes to a closed port on this machine: "the network is unreachable".
        https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", no_proxy="", NO_PROXY="",
    )
    r = subprocess.run([sys.executable, str(samples / "make_samples.py")], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "made samples/astronaut_degraded.jpg" in r.stdout and "kept samples/astronaut_clip.mp4" in r.stdout
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(samples / "demo.py"), "--device", "cpu", "--out", str(out)],
                       env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    err = " ".join(r.stderr.split())
    assert "GPEN weights are not available here" in err
    assert "GPEN-BFR-256.pth" in err and "https://public-vigen-video" in err
    assert str(tmp_path / "empty-cache") in err  # where to put the file
    assert "falls back to the 'classic' enhancer" in err
    assert "model: classic" in err
    assert "photo: 1 face(s) restored" in err and "faces restored 25 in 25 frames" in err
    clip = out / "astronaut_clip_enhanced.mp4"
    with av.open(str(clip)) as c:
        assert sorted(s.type for s in c.streams) == ["audio", "video"]
        assert sum(1 for _ in c.decode(video=0)) == 25
    assert (out / "astronaut_degraded_enhanced.jpg").stat().st_size > 1000
    assert (out / "astronaut_side_by_side.jpg").stat().st_size > 1000
    # the copies that ran are the repository's scripts, byte for byte
    for name in ("make_samples.py", "demo.py"):
        assert filecmp.cmp(REPO / "samples" / name, samples / name, shallow=False)
