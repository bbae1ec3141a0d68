"""Hunt 34 (api): a wrong-type weights path was pathlib's bare TypeError, and enhance_file's
wrong-type message said "src is a int" / "src is a NoneType"."""
from __future__ import annotations

import pytest

from stream_gpen import Enhancer, InvalidInputError


@pytest.mark.parametrize("kw", [dict(model="tiny64.pth", weights=5), dict(model="auto", weights=5.0),
                                dict(model="classic", detector_weights=5),
                                dict(model="classic", mask="parse", parser_weights=[1])])
def test_a_weights_keyword_that_is_no_path_is_refused_by_name(kw):
    name = next(k for k in kw if k.endswith("weights"))
    with pytest.raises(InvalidInputError, match=rf"^{name} must be a path or None, got "):
        Enhancer(device="cpu", **kw)


def test_a_detector_path_given_as_bytes_is_read_as_a_name(tmp_path):
    missing = tmp_path / "x.pth"
    with pytest.raises(Exception) as info:
        Enhancer(model="classic", device="cpu", detector_weights=bytes(missing))
    # (the file is missing: the message names it as text, not pathlib's "argument should be a str")
    assert not isinstance(info.value, TypeError)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("src, said", [(5, "src is an int:"), (None, "src is None:"), ([1], "src is a list:")])
def test_enhance_file_says_the_wrong_type_in_good_english(src, said):
    enh = Enhancer.__new__(Enhancer)  # (the check comes before any use of the model)
    with pytest.raises(InvalidInputError) as info:
        Enhancer.enhance_file(enh, src, "out.mp4")
    assert said in str(info.value)
