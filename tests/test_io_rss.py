"""The frame ring bounds memory: re-encoding a 3-minute 720p clip peaks no higher than 1 minute.

Budget (stated): between the peak RSS after 1 minute of video and after 3 minutes, growth stays
under ``GROWTH_BUDGET_MIB``; and the whole transcode peaks under ``TOTAL_BUDGET_MIB`` above the
process's RSS after warm-up (the first 10 frames: encoder, decoder and ring allocated).
The clip is made in one subprocess and transcoded in another, so the peak (VmHWM) belongs to the
transcode alone.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GROWTH_BUDGET_MIB = 24
TOTAL_BUDGET_MIB = 400
FPS, MINUTES = 6, 3  # 1080 frames of 720p: >= 3 minutes, cheap on a 2-core CI box

GEN = textwrap.dedent(
    """
    import sys
    from stream_gpen.io import open_source, open_sink

    clip, fps, minutes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    # the synthetic 720p clip, made with the same sink (cheap: lavfi testsrc2, low fps, ultrafast)
    with open_source(f"lavfi:testsrc2=size=1280x720:rate={fps}:duration={60 * minutes}", live=False) as src:
        with open_sink(clip, source=src, preset="ultrafast", crf=30) as sink:
            for f in src:
                sink.write(f)
    print(sink.frames_written)
    """
)

# A fresh process for the measured transcode, so the clip generation's memory does not mask it.
SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import psutil
    from stream_gpen.io import open_source, open_sink

    clip, out, fps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child forked from a big pytest process
    # starts with the parent's peak (seen: +1.1 GiB "spikes" only when run inside the full suite).
    def peak():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # MiB
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    proc = psutil.Process()
    marks, rss_max = {}, 0.0
    with open_source(clip, ring_size=8) as src:
        with open_sink(out, source=src, preset="ultrafast", crf=30) as sink:
            for f in src:
                i = f.index
                sink.write(f)
                rss_max = max(rss_max, proc.memory_info().rss / 2**20)
                if i == 10:
                    marks["warm_rss"] = rss_max
                if i == 60 * fps:
                    marks["peak_1min"], marks["rss_1min"] = peak(), rss_max
    marks["peak_3min"], marks["rss_3min"] = peak(), rss_max
    marks["frames"] = sink.frames_written
    print(json.dumps(marks))
    """
)


@pytest.mark.slow
def test_ring_memory_does_not_grow_with_clip_length(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    clip = tmp_path / "clip.mp4"
    g = subprocess.run([sys.executable, "-c", GEN, str(clip), str(FPS), str(MINUTES)],
                       capture_output=True, text=True, timeout=900, cwd=repo)
    assert g.returncode == 0, g.stderr[-3000:]
    assert int(g.stdout.split()[-1]) == FPS * 60 * MINUTES
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(clip), str(tmp_path / "out.mp4"), str(FPS)],
                       capture_output=True, text=True, timeout=900, cwd=repo)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["frames"] == FPS * 60 * MINUTES
    growth = m["peak_3min"] - m["peak_1min"]
    print(f"RSS after warm-up {m['warm_rss']:.0f} MiB; peak at 1 min {m['peak_1min']:.0f} MiB, at 3 min "
          f"{m['peak_3min']:.0f} MiB (growth {growth:.1f} MiB, budget {GROWTH_BUDGET_MIB}); sampled max "
          f"{m['rss_1min']:.0f} -> {m['rss_3min']:.0f} MiB")
    assert growth < GROWTH_BUDGET_MIB
    assert m["rss_3min"] - m["rss_1min"] < GROWTH_BUDGET_MIB
    assert m["peak_3min"] - m["warm_rss"] < TOTAL_BUDGET_MIB
