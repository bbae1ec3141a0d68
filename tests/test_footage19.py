"""Real-footage output, hunt 19 (footage19): a sideways phone video stream-copied into a container
that cannot store its rotation; full-range 8-bit chroma; chapters after --start."""
from __future__ import annotations

import numpy as np
import pytest

from _clips import write_video


def _sideways(path, n=6, bf=0):
    # an upright 64x48 picture stored as 48x64 with a 90 degree display rotation (a phone's)
    rng = np.random.default_rng(1)
    pics = [np.ascontiguousarray(np.rot90(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), -1)) for _ in range(n)]
    return write_video(path, pics, options={"bf": str(bf)}, setup=lambda s: s.set_display_rotation(90))


def _shown(path):
    import av

    with av.open(str(path)) as c:
        f = next(c.decode(video=0))
        return (f.height, f.width) if round(f.rotation) % 180 else (f.width, f.height)


@pytest.mark.parametrize("ext", [".ts", ".avi", ".mp4", ".mkv"])
def test_a_sideways_phone_video_without_faces_is_copied_only_where_its_rotation_is_kept(tmp_path, enh, ext):
    src = _sideways(tmp_path / "phone.mp4")
    assert _shown(src) == (64, 48)
    s = enh.enhance_file(src, tmp_path / f"o{ext}", copy_if_no_faces=True)
    assert _shown(tmp_path / f"o{ext}") == (64, 48)  # .ts / .avi copies played sideways
    if ext in (".ts", ".avi"):
        assert s.encoder != "copy" and any("90 degree display rotation" in f for f in s.fallbacks), s.fallbacks
    else:
        assert s.encoder == "copy"
