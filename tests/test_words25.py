"""Session 25, a new user's walk through the README: the command line said the API's keywords
(``crf=60 for codec='h264'``), refused the ``auto`` its README table gives as the default of
--crf/--preset/--quality, printed a 25-line usage block for a bad option value, the README's
``InvalidInputError`` could not be imported from the package, ``quality=0`` was taken until the
photo was written, and the docs disagreed with the code (classic's noise_sigma range and guided
speed-up, ``make test``'s extras)."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CLIP = "lavfi:testsrc=size=64x48:rate=5:duration=0.4"


# --- 1. the command line says the API's keywords as its flags ----------------------------------
@pytest.mark.parametrize("api, cli", [
    ("crf=60 for codec='h264' must be within 0..51", "--crf 60 for --codec h264 must be within 0..51"),
    ("crf=0 with encoder='nvenc': give a crf within 1..51 (or encoder='software' for lossless x264/x265)",
     "--crf 0 with --encoder nvenc: give a crf within 1..51 (or --encoder software for lossless x264/x265)"),
    ("preset='auto' for codec='h264' is not one of ('ultrafast', 'medium')",
     "--preset auto for --codec h264 is not one of ('ultrafast', 'medium')"),
    # a message that names both says the flag once
    ("min_face=30.0 (--min-face) is not used with aligned=True (--aligned): no faces are detected",
     "--min-face 30.0 is not used with --aligned: no faces are detected"),
    ("codec='prores' (--codec prores) cannot go into .mp4", "--codec prores cannot go into .mp4"),
    ("parser_weights (--parser-weights) is not used", "--parser-weights is not used"),
    ("high_bit_depth=False (--bit-depth 8) (it would keep", "--bit-depth 8 (it would keep"),
    ("max_faces=3 (--max-faces) is not used with faces='largest' (--faces largest)",
     "--max-faces 3 is not used with --faces largest"),
    # the Python spelling beside a flag is left out
    ("use --device cpu or auto (device='cpu' in Python), or install", "use --device cpu or auto, or install"),
    ("pick the matching backbone (--detector resnet50, detector='resnet50' in Python)",
     "pick the matching backbone (--detector resnet50)"),
    ("drop --weights (weights=) to use the managed copy", "drop --weights to use the managed copy"),
    # the phrases of session 24 as they were
    ("interrupted after 1 of 3 photos; skip_existing=True resumes", "interrupted after 1 of 3 photos; --skip-existing resumes"),
    ('name a regular file as dst (dst="null" restores without writing anything)',
     "name a regular file with -o (-o /dev/null restores without writing anything)"),
    ("model='my model.pt' is", "--model 'my model.pt' is"),
    ("check_landmarks=False restores it", "--no-landmark-check restores it"),
    # not rewritten: a call as Python writes it, a path, a keyword that is no option
    ("FrameRing(high_bit_depth=True) has none", "FrameRing(high_bit_depth=True) has none"),
    ("Enhancer(model='classic', device='cpu')", "Enhancer(model='classic', device='cpu')"),
    ("wrote /tmp/crf=5.mp4", "wrote /tmp/crf=5.mp4"),
    ("lavfi:testsrc=rate=5:duration=0.4: read live", "lavfi:testsrc=rate=5:duration=0.4: read live"),
    ("http://h/v.mp4?start=10&duration=5 failed", "http://h/v.mp4?start=10&duration=5 failed"),
    ("decode='nvdec' needs CUDA", "decode='nvdec' needs CUDA"),
])
def test_api_words_in_flags(api, cli):
    from stream_gpen.errors import in_command_line_words

    assert in_command_line_words(api) == cli
    assert in_command_line_words(cli) == cli  # (said twice, the same: not ----crf)


def test_every_keyword_is_a_flag_of_the_command_line():
    from stream_gpen.cli import build_parser
    from stream_gpen.errors import KEYWORD_FLAGS

    parser = build_parser()
    subs = next(a for a in parser._actions if a.dest == "command").choices
    flags = {o for name in ("enhance", "camera", "serve") for a in subs[name]._actions for o in a.option_strings}
    assert set(KEYWORD_FLAGS.values()) <= flags, set(KEYWORD_FLAGS.values()) - flags


@pytest.mark.parametrize("options, said", [
    (["--crf", "60"], "error: --crf 60 for --codec h264 must be within 0..51"),
    (["--codec", "vp9", "--preset", "fast"], "error: --codec vp9 takes no preset"),
    (["--preset", "quick"], "error: --preset quick for --codec h264 is not one of ("),
    (["--codec", "av1", "--crf", "0"], "error: --crf 0 for --codec av1 must be within 1..63"),
])
def test_the_command_line_says_encoder_errors_in_flags(tmp_path, cli_env, capsys, options, said):
    from stream_gpen.cli import main

    assert main(["enhance", CLIP, "-o", str(tmp_path / "o.mp4"), *cli_env, *options]) == 2
    err = capsys.readouterr().err
    assert said in err and not re.search(r"\b(crf|codec|preset)=", err), err


def test_the_python_api_keeps_its_keywords(tmp_path):
    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io._sink import check_crf_preset, check_nvenc_crf

    with pytest.raises(InvalidInputError, match=r"^crf=60 for codec='h264' must be within 0\.\.51$"):
        check_crf_preset("h264", 60, None)
    with pytest.raises(InvalidInputError, match=r"\(or encoder='software' for lossless"):
        check_nvenc_crf("h264", 0)
    with pytest.raises(InvalidInputError, match=r"^codec='vp9' takes no preset \(libvpx speed is fixed here\): leave it out$"):
        check_crf_preset("vp9", None, "fast")


def test_warnings_are_said_in_flags():
    from stream_gpen.cli import _UserFormatter

    record = logging.LogRecord("stream_gpen.api", logging.WARNING, __file__, 1,
                               "%s is not used with aligned=True (--aligned)", ("min_face=30.0 (--min-face)",), None)
    assert _UserFormatter().format(record) == "stream-gpen: warning: --min-face 30.0 is not used with --aligned"


def test_an_aligned_run_warns_in_flags(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    clip = "lavfi:testsrc=size=64x48:rate=5:duration=0.2"  # (one frame; an aligned run detects nothing)
    assert main(["enhance", clip, "-o", "/dev/null", "--aligned", "--min-face", "30", *cli_env[:4]]) == 0
    err = capsys.readouterr().err
    assert "warning: --min-face 30 is not used with --aligned: no faces" in err and "min_face=" not in err, err
    # (the graph's own duration=0.2 is never said as a flag; enhance reads a graph unpaced since
    # timing29, so no "read live" line names it here: test_api_words_in_flags has that phrase)
    assert "fallback: --min-face 30 is not used with --aligned" in err and "--duration 0.2" not in err


# --- 2. auto, as the README's table gives the defaults ----------------------------------------
def test_auto_is_the_default_of_crf_preset_quality():
    from stream_gpen.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["enhance", "x.mp4", "--crf", "auto", "--preset", "AUTO", "--quality", "auto"])
    assert (args.crf, args.preset, args.quality) == (None, None, None)
    args = parser.parse_args(["enhance", "x.mp4", "--crf", "20", "--preset", "slow", "--quality", "80"])
    assert (args.crf, args.preset, args.quality) == (20, "slow", 80)
    args = parser.parse_args(["camera", "0", "--crf", "auto", "--preset", "auto"])
    assert (args.crf, args.preset) == (None, None)
    subs = next(a for a in parser._actions if a.dest == "command").choices
    helps = {o: a.help for a in subs["enhance"]._actions for o in a.option_strings}
    assert all(re.search(r"auto \(default\)|default auto", helps[o]) for o in ("--crf", "--preset", "--quality"))


def test_crf_not_a_number_is_still_said_so(capsys):
    from stream_gpen.cli import main

    assert main(["enhance", "x.mp4", "--crf", "abc"]) == 2
    assert "argument --crf: invalid int value: 'abc'" in capsys.readouterr().err


# --- 3. a bad option value is one line and a hint ----------------------------------------------
def test_a_bad_option_value_is_one_line_and_a_hint(capsys):
    from stream_gpen.cli import main

    assert main(["enhance", "x.mp4", "--strength", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err == ("stream-gpen: error: argument --strength: must be a number in [0, 1], got '1.5'\n"
                   "hint: stream-gpen enhance --help\n")
    assert main(["weights", "verify", "--frobnicate"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "stream-gpen: error: unrecognized arguments: --frobnicate", "hint: stream-gpen weights verify --help"]
    assert main([]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "stream-gpen: error: the following arguments are required: COMMAND", "hint: stream-gpen --help"]


# --- 5. the README's InvalidInputError is the package's ----------------------------------------
def test_invalid_input_error_is_exported():
    import stream_gpen
    from stream_gpen import InvalidInputError
    from stream_gpen.errors import InvalidInputError as Same

    assert InvalidInputError is Same and "InvalidInputError" in stream_gpen.__all__
    assert "InvalidInputError" in dir(stream_gpen)


# --- 6. quality is checked before any work ------------------------------------------------------
@pytest.mark.parametrize("quality", [0, 101, -5])
def test_quality_out_of_range_is_refused_up_front(tmp_path, monkeypatch, quality):
    from stream_gpen import Enhancer, InvalidInputError

    photo = tmp_path / "p.jpg"
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(photo)
    enh = Enhancer("classic", device="cpu", aligned=True, progress=False)

    def no_work(*a, **k):
        raise AssertionError("the run began")

    monkeypatch.setattr(Enhancer, "_enhance_one", no_work)
    for dst in (tmp_path / "o.jpg", "null"):
        with pytest.raises(InvalidInputError, match=rf"^quality={quality} must be within 1\.\.100"):
            enh.enhance_file(photo, dst, quality=quality)


# --- 4, 7. the docs say what the code does --------------------------------------------------------
def test_classic_docs_agree_with_the_code():
    from stream_gpen.models.classic import ClassicRestorer

    doc = (ROOT / "docs/classic.md").read_text()
    assert "fixed 0..255" not in " ".join(doc.split())
    assert "0..100 in 0..255 units" in " ".join(doc.split())
    with pytest.raises(ValueError):
        ClassicRestorer(device="cpu", noise_sigma=101)
    faster = re.search(r"`guided` is (\d+(?:\.\d+)?)× faster", doc).group(1)
    assert f"({faster}x in docs/classic.md)" in " ".join(ClassicRestorer.__doc__.split())


def test_make_test_installs_what_the_readme_says():
    readme, makefile = (ROOT / "README.md").read_text(), (ROOT / "Makefile").read_text()
    assert "pip install -e '.[dev]'" in makefile
    line = next(x for x in readme.splitlines() if x.startswith("make test"))
    assert "dev extras" in line and "test extras" not in line


def test_a_file_named_like_an_option_is_left_as_it_is():
    """review25: ``crf=18.mp4`` (a common name for a test encode) was said as ``--crf 18.mp4``:
    'input not found: --crf 18.mp4', and a report whose error disagreed with its input."""
    from stream_gpen.errors import in_command_line_words as words

    for text in ("input not found: crf=18.mp4", "output exists: 'crf=18.mp4'",
                 "--start 99 s is past the end of 'start=2.mp4'", r"no such file: C:\clips\start=3.mp4",
                 'cannot read "quality=90.jpg"', "skipped quality=90.jpg, start=2,5.mp4"):
        assert words(text) == text, text
    # (a value at the end of a sentence is still a keyword)
    assert words("use crf=18.") == "use --crf 18."
    assert words("quality=0 must be within 1..100.") == "--quality 0 must be within 1..100."
    assert words("start=2.5, duration=3 s") == "--start 2.5, --duration 3 s"
