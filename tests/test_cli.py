"""The ``stream-gpen`` command: parser, ``weights`` sub-commands, error lines and exit codes."""
from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stream_gpen import __version__, cli, errors, weights
from stream_gpen.cli import main
from stream_gpen.weights import WeightFile

# The local file server and the isolating fixtures live with the weights tests.
from test_weights import BODY, SHA, closed_port_url, dirs, server  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_registry(monkeypatch):
    """Two small entries in place of the real registry (names resolve through it)."""
    files: dict[str, WeightFile] = {}
    monkeypatch.setattr(weights, "all_weight_files", lambda: files)
    return files


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"stream-gpen {__version__}"


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err
    assert main(["weights", "frobnicate"]) == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_weights_list(dirs, capsys):
    dirs.home.mkdir()
    (dirs.home / "GPEN-BFR-512.pth").write_bytes(b"x")
    (dirs.home / "GPEN-BFR-1024.pt").write_bytes(b"PK\x03\x04 a download cut short")  # no size published
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert f"search order: {dirs.home} -> {dirs.repo} (downloads go to {dirs.home})" in out
    for name in weights.all_weight_files():
        assert name in out
    assert re.search(rf"gpen-bfr-512 +GPEN-BFR-512\.pth +270\.9 MiB +not published +{re.escape(str(dirs.home))}", out)
    assert re.search(r"retinaface-resnet50 +detection_Resnet50_Final\.pth +104\.4 MiB +published +missing", out)
    assert out.count("(wrong size: run `stream-gpen weights verify`)") == 1  # the 1-byte GPEN-BFR-512
    assert out.count("(damaged: run `stream-gpen weights verify`)") == 1  # the cut GPEN-BFR-1024


def test_weights_path_found(dirs, capsys):
    import torch

    from stream_gpen.models.gpen import FullGenerator
    from stream_gpen.models.registry import MODELS

    # size unknown: a whole archive of the network's names and shapes is taken (each tensor one
    # value, expanded: a few kB). (It was any zip archive until weights27: names and shapes are
    # checked now, as loading it would.)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in FullGenerator(MODELS["gpen-bfr-1024"].config).state_dict().items()}
    torch.save({k: torch.zeros(()).expand(shape) for k, shape in shapes.items()}, dirs.repo / "GPEN-BFR-1024.pt")
    assert main(["weights", "path", "gpen-bfr-1024"]) == 0
    assert capsys.readouterr().out == f"{dirs.repo / 'GPEN-BFR-1024.pt'}\n"


def test_weights_path_missing_is_one_error_line_plus_hint(dirs, capsys):
    assert main(["weights", "path", "gpen-bfr-512"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 2, captured.err
    assert lines[0].startswith("stream-gpen: error: weights gpen-bfr-512 (GPEN-BFR-512.pth) not found in ")
    assert f"save it as {dirs.home / 'GPEN-BFR-512.pth'} (284,085,738 bytes" in lines[0]
    assert lines[1].startswith("hint: or save it as ")
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("argv", [["--debug", "weights", "path", "gpen-bfr-512"],
                                  ["weights", "path", "gpen-bfr-512", "--debug"]])
def test_debug_shows_traceback(dirs, capsys, argv):
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "stream-gpen: error: weights gpen-bfr-512" in err


def test_unknown_name_exits_2(capsys):
    assert main(["weights", "path", "gpen-bfr-9"]) == 2
    assert capsys.readouterr().err.startswith("stream-gpen: error: unknown weights 'gpen-bfr-9'; known: ")


def test_weights_verify(dirs, capsys, fake_registry):
    fake_registry["good"] = WeightFile(name="good", filename="good.pth", urls=(), size=len(BODY), sha256=SHA)
    fake_registry["absent"] = WeightFile(name="absent", filename="absent.pth", urls=())
    (dirs.repo / "good.pth").write_bytes(BODY)
    assert main(["weights", "verify"]) == 0  # a missing file is not a failure
    out = capsys.readouterr().out
    assert re.search(r"^OK +good +.*good\.pth +\(size and sha256 match\)$", out, re.M)
    assert re.search(r"^MISSING +absent ", out, re.M)

    (dirs.repo / "good.pth").write_bytes(BODY[:1000])
    assert main(["weights", "verify", "good"]) == 3
    captured = capsys.readouterr()
    assert re.search(r"^SIZE MISMATCH +good .*\(1,000 bytes, expected 300,000", captured.out, re.M)
    assert "1 file(s) failed verification" in captured.err
    # a file named on the command line and missing fails too (hunt 17: exit 0 let a setup script go on)
    assert main(["weights", "verify", "absent"]) == 3
    captured = capsys.readouterr()
    assert re.search(r"^MISSING +absent ", captured.out, re.M)
    assert "absent not on disk: `stream-gpen weights download absent`" in captured.err


def test_weights_download(server, dirs, capsys, fake_registry):  # noqa: F811
    fake_registry["tiny"] = WeightFile(name="tiny", filename="tiny.pth", urls=(server.serve("/t.bin"),),
                                       size=len(BODY), sha256=SHA)
    dirs.home.mkdir()
    (dirs.home / "tiny.pth").write_bytes(b"truncated")
    assert main(["weights", "download", "tiny", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"tiny: {dirs.home / 'tiny.pth'}\n"
    assert f"stream-gpen: warning: ignoring {dirs.home / 'tiny.pth'}: size mismatch (9 bytes, " in captured.err
    assert f"stream-gpen: downloading tiny.pth from {server.url('/t.bin')}\n" in captured.err
    assert (dirs.home / "tiny.pth").read_bytes() == BODY
    assert main(["weights", "download", "tiny"]) == 0
    assert capsys.readouterr().out == f"tiny: already present at {dirs.home / 'tiny.pth'}\n"
    assert len(server.requests) == 1


def test_weights_download_failure(dirs, capsys, fake_registry):
    url = closed_port_url()
    fake_registry["tiny"] = WeightFile(name="tiny", filename="tiny.pth", urls=(url,))
    assert main(["weights", "download", "tiny", "--no-progress"]) == 3
    err = capsys.readouterr().err
    error_line = next(line for line in err.splitlines() if line.startswith("stream-gpen: error:"))
    assert f"{url} failed: cannot connect" in error_line
    assert f"save it as {dirs.home / 'tiny.pth'}" in error_line
    assert "hint: " in err and "Traceback" not in err


def test_weights_download_offline(dirs, capsys, monkeypatch):
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    assert main(["weights", "download", "gpen-bfr-256"]) == 3
    assert "downloads are disabled (STREAM_GPEN_OFFLINE=1)" in capsys.readouterr().err


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(weights, "verify", interrupted)
    assert main(["weights", "verify"]) == 130
    assert capsys.readouterr().err == "stream-gpen: interrupted\n"


def test_internal_error_is_one_line_without_debug(monkeypatch, capsys):
    def broken(*a, **k):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(weights, "verify", broken)
    assert main(["weights", "verify"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "stream-gpen: internal error: ZeroDivisionError: boom"
    assert "Traceback" not in err


def test_module_docstring_documents_every_exit_code():
    codes = {cls.exit_code for _, cls in inspect.getmembers(errors, inspect.isclass)
             if issubclass(cls, errors.StreamGpenError)}
    documented = {int(m) for m in re.findall(r"^ *(\d+) {2,}\S", cli.__doc__, re.M)}
    assert codes | {0} == documented


def test_console_script_and_module(tmp_path):
    script = Path(sys.executable).with_name("stream-gpen")
    if not script.exists():
        pytest.fail(f"{script} missing: run `{sys.executable} -m pip install -e .`")
    env = {**os.environ, "STREAM_GPEN_HOME": str(tmp_path)}
    res = subprocess.run([str(script), "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: stream-gpen ") and "weights" in res.stdout
    # `python -m stream_gpen` works too, and the command line does not import torch.
    code = ("import runpy, sys; sys.argv = ['stream-gpen', 'weights', 'list'];\n"
            "try: runpy.run_module('stream_gpen', run_name='__main__')\n"
            "except SystemExit as e: assert e.code == 0, e.code\n"
            "assert 'torch' not in sys.modules, 'the CLI must not import torch for weights list'")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert "gpen-bfr-512" in res.stdout


def test_output_piped_into_a_reader_that_stops_is_quiet(shared):
    """`stream-gpen info clip.mp4 | head -2`: no 'internal error: BrokenPipeError', exit 141."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "stream_gpen", "info",
                          str(shared / "data/videos/upscaleavideo_old_movie1_bw_noface.mp4")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # the reader goes away before anything is printed (Python takes a second to start)
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141 and "internal error" not in err, err


def test_a_file_system_refusal_is_an_error_not_a_bug(tmp_path, shared, monkeypatch, capsys):
    """A read-only file system (EROFS on the temporary output) is the machine's state: one error
    line and exit 4, not 'internal error ... please report it'."""
    import errno

    from stream_gpen.api import Enhancer

    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / ".x.tmp.png"))

    monkeypatch.setattr(Enhancer, "enhance_file", refuse)
    img = tmp_path / "x.png"
    img.write_bytes((shared / "data/faces/aligned/gpen_ffhq_00000.png").read_bytes())
    code = main(["enhance", str(img), "--model", "classic", "--device", "cpu",
                 "--detector-weights", str(shared / "weights/detection_mobilenet0.25_Final.pth")])
    err = capsys.readouterr().err
    assert code == 4 and "Read-only file system" in err and "internal error" not in err, err


def test_long_options_are_not_abbreviated_and_a_typo_is_named(capsys):
    # `info --detector W` used to be read as --detector-weights W without a word; abbreviations
    # are refused now, and an unknown option comes with the sub-command's usage and a hint
    assert main(["info", "--detector", "w.pth", "clip.mp4"]) == 2
    err = capsys.readouterr().err
    assert "hint: stream-gpen info --help" in err  # (one line and a hint since session 25, no usage block)
    assert "unrecognized arguments: --detector" in err and "did you mean --detector-weights?" in err
    assert main(["enhance", "in.mp4", "--overwite"]) == 2
    assert "did you mean --overwrite?" in capsys.readouterr().err
    assert main(["weights", "verify", "--hel"]) == 2
    err = capsys.readouterr().err
    assert "hint: stream-gpen weights verify --help" in err and "did you mean --help?" in err
    assert main(["enhance", "in.mp4", "--zzz-nothing-like-it"]) == 2
    assert "did you mean" not in capsys.readouterr().err


def test_info_does_not_say_the_sources_run_notes(tmp_path, capsys, mobilenet_weights, monkeypatch):
    # info on an interlaced clip printed "interlaced (tt): deinterlacing with bwdif" (and with
    # --faces, that and a seek note for every sampled frame): info deinterlaces nothing; its plan says it
    from tests.test_io_video import _interlaced_clip

    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    clip = tmp_path / "interlaced.mp4"
    _interlaced_clip(clip)
    assert main(["info", str(clip), "--faces", "--detector-weights", str(mobilenet_weights)]) == 0
    out, err = capsys.readouterr()
    assert "deinterlacing" not in err and "seek" not in err, err
    assert "deinterlaced with bwdif (--deinterlace off keeps the fields, and their order in the output)" in out
    assert re.search(r"interlaced +yes, bottom field first", out)


def test_info_on_a_still_gif_and_a_multi_page_tiff_says_what_enhance_does(tmp_path, capsys):
    # a still GIF is restored as a photo (PNG), every page of a TIFF album is restored: info described
    # the GIF as a video and said nothing of the pages
    from PIL import Image

    Image.new("RGB", (64, 48), (120, 80, 40)).save(tmp_path / "still.gif")
    pages = [Image.new("RGB", (64, 48), (k * 60, 80, 40)) for k in range(3)]
    pages[0].save(tmp_path / "album.tif", save_all=True, append_images=pages[1:])
    assert main(["info", str(tmp_path / "still.gif")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"kind +image", out) and "written as PNG by default" in out
    assert main(["info", str(tmp_path / "album.tif")]) == 0
    assert "each of its 3 pages restored and written back into one file" in capsys.readouterr().out
