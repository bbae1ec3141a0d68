"""Session 23 (api23): the Python API as a library user drives it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def test_enhance_images_from_a_generator_that_refills_one_buffer(enh):
    """A generator that fills one array in place and yields it each time (a video reader's
    buffer) got the last picture's result for every picture: the iterable was listed first and
    the pictures copied afterwards. Each is now copied as it is pulled."""
    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(3)]
    buf = np.empty_like(pictures[0])

    def reader():
        for p in pictures:
            buf[...] = p
            yield buf

    got = enh.enhance_images(reader())
    assert [np.array_equal(g, p) for g, p in zip(got, pictures)] == [True, True, True]


def test_a_grey_picture_comes_back_writeable(enh):
    """A grey uint8 picture came back as a view of Pillow's read-only buffer: `out[0, 0] = 0`
    raised "assignment destination is read-only" (RGB, RGBA and 16-bit came back writeable)."""
    for grey in (np.full((32, 40), 90, np.uint8), np.full((32, 40, 1), 90, np.uint8)):
        out = enh.enhance_image(grey)
        assert out.shape == grey.shape and out.flags.writeable
        out[0, 0] = 0


def test_a_float64_default_dtype_set_before_the_enhancer(mobilenet_weights, shared):
    """`torch.set_default_dtype(torch.float64)` at program start (before the Enhancer) made the
    detector's network double: every detection failed with "Input type (float) and bias type
    (double) should be the same". The network is float32 whatever the default."""
    photo = shared / "data" / "faces" / "whole" / "codeformer_whole_00.jpg"
    code = f"""
import cv2, torch
torch.set_default_dtype(torch.float64)
from stream_gpen import Enhancer
enh = Enhancer("classic", device="cpu", detector_weights={str(mobilenet_weights)!r}, progress=False)
rgb = cv2.imread({str(photo)!r})[:, :, ::-1].copy()
out = enh.enhance_image(rgb)
print(out.shape == rgb.shape, bool((out != rgb).any()))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True"]
