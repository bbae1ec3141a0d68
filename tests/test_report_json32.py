"""A file name whose bytes are not UTF-8 (``caf\\xe9.jpg``, held as ``caf\\udce9.jpg``) came out in
``--report``'s JSON (and ``info --json``) as a lone surrogate, ``"caf\\udce9.jpg"``, which strict
JSON parsers refuse and jq turns into U+FFFD. Each such byte is now ``\\xHH``, the exact name's
bytes beside it in hex."""
from __future__ import annotations

import json
import os
import shutil

from stream_gpen.cli import main
from stream_gpen.summary import RunSummary

NAME = os.fsdecode(b"caf\xe9.jpg")  # (as Python holds it: surrogateescape)


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def _strict(text: str):
    """The JSON as a strict reader takes it: every string valid Unicode (no lone surrogate)."""
    d = json.loads(text)
    for s in _strings(d):
        s.encode("utf-8")  # (raises on a lone surrogate)
    return d


def test_a_report_names_a_file_that_is_not_utf8_in_valid_text_with_its_bytes(tmp_path):
    s = RunSummary(input=NAME, output="out/" + NAME, model="classic", device="cpu", precision="fp32", encoder="")
    s.skipped.append(f"{NAME}: cannot read it")
    s.fallbacks.append("a\ud800b")  # (a lone surrogate no byte stands for: a Windows name's)
    s.write_json(tmp_path / "r.json")
    d = _strict((tmp_path / "r.json").read_bytes().decode("utf-8"))
    assert d["input"] == "caf\\xe9.jpg" and bytes.fromhex(d["input_bytes"]) == b"caf\xe9.jpg"
    assert d["output"] == "out/caf\\xe9.jpg" and bytes.fromhex(d["output_bytes"]) == b"out/caf\xe9.jpg"
    assert d["skipped"] == ["caf\\xe9.jpg: cannot read it"] and d["fallbacks"] == ["a\\ud800b"]
    assert "partial_output_bytes" not in d
    # a name that is valid text is written as it is, with no bytes beside it
    d = RunSummary(input="café.jpg", output=None, model="classic", device="cpu", precision="fp32",
                   encoder="").to_dict()
    assert d["input"] == "café.jpg" and not any(k.endswith("_bytes") for k in d)


def test_info_json_names_a_file_that_is_not_utf8_in_valid_text(tmp_path, monkeypatch, capsys, shared):
    monkeypatch.chdir(tmp_path)
    shutil.copy(shared / "data/faces/whole/codeformer_whole_04.jpg", NAME)
    assert main(["info", "--json", NAME]) == 0
    d = _strict(capsys.readouterr().out)
    assert d["path"] == "caf\\xe9.jpg" and bytes.fromhex(d["path_bytes"]) == b"caf\xe9.jpg"
