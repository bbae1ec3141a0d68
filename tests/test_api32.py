"""Enhancer.stream's type hint names every source form its docstring and code accept (hunt 32)."""
import typing

from stream_gpen.api import Enhancer


def test_stream_hint_takes_bytes_like_enhance_file():
    hinted = typing.get_args(typing.get_type_hints(Enhancer.stream)["source"])
    assert bytes in hinted and int in hinted and str in hinted
    assert bytes in typing.get_args(typing.get_type_hints(Enhancer.enhance_file)["src"])
