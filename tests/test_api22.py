"""Session 22: the Python API's enhance_file checks what it is given as the constructor and the
command line do: yes/no options are True or False (``overwrite="no"`` wrote over the output)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stream_gpen.errors import InvalidInputError


def _photo(path, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("name", ["overwrite", "copy_if_no_faces", "untrusted", "skip_existing", "compare"])
@pytest.mark.parametrize("value", ["no", "False", 0, None])
def test_enhance_file_flags_are_true_or_false(tmp_path, enh, name, value):
    src, dst = _photo(tmp_path / "a.png"), _photo(tmp_path / "keep.png", seed=1)
    before = dst.read_bytes()
    with pytest.raises(InvalidInputError, match=rf"^{name} must be True or False, got {value!r}$"):
        enh.enhance_file(src, dst, **{name: value})
    assert dst.read_bytes() == before  # (overwrite="no" wrote over it)


def test_enhance_file_takes_numpy_bools(tmp_path, enh):
    src, dst = _photo(tmp_path / "a.png"), _photo(tmp_path / "keep.png", seed=1)
    summary = enh.enhance_file(src, dst, overwrite=np.bool_(True), compare=np.bool_(False))
    assert summary.frames_out == 1
    with Image.open(dst) as im:
        assert im.size == (56, 40)


@pytest.mark.parametrize(("name", "value"), [("check_landmarks", "no"), ("compile", "yes"), ("compile", 1)])
def test_constructor_checks_check_landmarks_and_compile(mobilenet_weights, name, value):
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    with pytest.raises(InvalidInputError, match=rf"^{name} must be True or False, got {value!r}$"):
        Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False,
                 **{name: value})
