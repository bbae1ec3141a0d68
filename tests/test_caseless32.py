"""Case-insensitive disks (macOS APFS/HFS+, a FAT/exFAT card) name one folder ``lib`` and ``LIB``,
and ``Path.resolve()`` keeps the case typed there. Simulated as the hunt did: a link ``LIB -> lib``
(so stat and ``samefile`` see one folder, as that disk does) and a ``resolve`` that keeps a path
through ``LIB`` as typed (as macOS's realpath does)."""
from __future__ import annotations

import hashlib
import os
import pathlib

import pytest

from stream_gpen.errors import InvalidInputError


@pytest.fixture
def caseless(tmp_path, monkeypatch):
    """``tmp_path/lib`` and ``tmp_path/LIB``: one folder, which ``resolve()`` does not say."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "LIB").symlink_to("lib", target_is_directory=True)
    real = pathlib.Path.resolve

    def resolve(self, strict=False):
        s = os.path.abspath(os.fspath(self))
        return type(self)(s) if f"{os.sep}LIB" in s else real(self, strict)

    monkeypatch.setattr(pathlib.Path, "resolve", resolve)
    return tmp_path


def test_an_output_folder_inside_the_input_named_in_another_case_is_refused(caseless, enh, face):
    """``enhance lib -o LIB/2019 --overwrite`` with originals in lib/2019 replaced them (exit 0): the
    check for an output folder inside the input compared resolved paths."""
    lib = caseless / "lib"
    (lib / "2019").mkdir()
    face.save(lib / "a.jpg")
    face.resize((48, 32)).save(lib / "2019" / "a.jpg")  # another photo under the same name
    before = hashlib.md5((lib / "2019" / "a.jpg").read_bytes()).hexdigest()
    with pytest.raises(InvalidInputError, match=r"inside the input folder and holds 1 photo"):
        enh.enhance_file(lib, caseless / "LIB" / "2019", overwrite=True)
    assert hashlib.md5((lib / "2019" / "a.jpg").read_bytes()).hexdigest() == before


def test_a_report_inside_the_output_folder_named_in_another_case_is_refused(caseless):
    """``--report OUT/run.json`` for the output folder ``out``: inside it, whatever the case."""
    from stream_gpen.commands import _check_report

    (caseless / "lib" / "out").mkdir()
    with pytest.raises(InvalidInputError, match="the run's own input or output, or inside it"):
        _check_report(str(caseless / "LIB" / "out" / "run.json"), ["in", str(caseless / "lib" / "out")],
                      overwrite=False)
    (caseless / "lib" / "out" / "run.json").write_text("{}")
    with pytest.raises(InvalidInputError, match="the run's own input or output, or inside it"):
        _check_report(str(caseless / "LIB" / "out" / "run.json"), [str(caseless / "lib" / "out" / "run.json")],
                      overwrite=True)
    _check_report(str(caseless / "LIB" / "run.json"), ["in", str(caseless / "lib" / "out")], overwrite=False)
