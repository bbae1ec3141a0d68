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


def _folder_of_videos(tmp_path, photo=False):
    from _clips import write_video

    root = tmp_path / "in"
    root.mkdir()
    write_video(root / "a.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(2)])
    if photo:
        _photo(root / "p.png")
    return root


@pytest.mark.parametrize(("kw", "match"), [
    (dict(codec="x264"), r"codec='x264' is not one of \('auto', 'h264'"),
    (dict(audio="drop"), r"audio='drop' is not one of \('copy', 'aac', 'none'\)"),
    (dict(crf=99), r"crf=99 for codec='h264' must be within 0\.\.51"),
    (dict(preset="fastest"), r"preset='fastest' for codec='h264' is not one of"),
])
def test_a_folder_with_a_bad_video_option_is_refused_before_anything_runs(tmp_path, enh, kw, match):
    root = _folder_of_videos(tmp_path, photo=True)
    calls = []
    with pytest.raises(InvalidInputError, match=match):
        enh.enhance_file(root, tmp_path / "out", on_progress=lambda *a: calls.append(a), **kw)
    assert calls == [] and not (tmp_path / "out").exists()  # (the photo was restored, every video skipped)


@pytest.mark.parametrize(("kw", "match"), [
    (dict(codec="x264"), r"codec='x264' is not one of"),
    (dict(audio="drop"), r"audio='drop' is not one of"),
    # (no codec given: named as codec='auto', not as an h264 asked for: session 27)
    (dict(crf=100), r"crf=100 for codec='auto' \(h264, as in an \.mp4\) must be within 0\.\.51"),
    (dict(crf=-1), r"crf=-1 for codec='auto' \(h264, as in an \.mp4\) must be within 0\.\.51"),
    (dict(preset="fastest"), r"preset='fastest' for codec='auto' \(h264, as in an \.mp4\) is not one of"),
])
def test_a_photo_with_a_bad_video_option_is_refused_as_a_video_is(tmp_path, enh, kw, match):
    with pytest.raises(InvalidInputError, match=match):
        enh.enhance_file(_photo(tmp_path / "a.png"), tmp_path / "b.png", **kw)
    assert not (tmp_path / "b.png").exists()


def test_video_options_on_a_photo_are_said_unused(tmp_path, enh, caplog):
    with caplog.at_level("WARNING", logger="stream_gpen.api"):
        enh.enhance_file(_photo(tmp_path / "a.png"), tmp_path / "b.png", codec="hevc", crf=20)
    assert f"codec/crf apply to videos; {tmp_path / 'a.png'} is written as a photo" in caplog.text
    assert (tmp_path / "b.png").is_file()


def test_the_command_line_says_unused_video_options_once(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main

    photo = _photo(tmp_path / "a.png")
    assert main(["enhance", str(photo), "-o", str(tmp_path / "b.png"), "--crf", "20", *cli_env[:-1]]) == 0
    said = [ln for ln in capsys.readouterr().err.splitlines() if "applies to videos" in ln]
    assert said == [f"stream-gpen: warning: --crf applies to videos; {photo} is written as a photo"], said


@pytest.mark.parametrize("make", [
    lambda p: np.zeros((8, 8, 3), np.uint8), lambda p: Image.open(p), lambda p: __import__("io").BytesIO(p.read_bytes()),
    lambda p: open(p, "rb"), lambda p: None, lambda p: 5.0,
])
def test_enhance_file_refuses_what_is_not_a_name(tmp_path, enh, make):
    src = make(_photo(tmp_path / "a.png"))
    with pytest.raises(InvalidInputError, match=r"enhance_file\(\) reads and writes files, URLs or folders by name; "
                       r"src is (an? \w+|None): .*use enhance_image\(\); for an open file, pass its path"):
        enh.enhance_file(src, tmp_path / "b.png")
    if hasattr(src, "close"):
        src.close()


def test_input_not_found_quotes_the_name(tmp_path, enh):
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"input not found: '.*a\.png '"):
        enh.enhance_file(str(tmp_path / "a.png "))  # (a trailing space, unseen unquoted)
    with pytest.raises(FileNotFoundError, match=r"input not found: '.*b\.png'"):
        enh.enhance_file(str(tmp_path / "b.png"))


def test_the_public_attributes_and_enhance_file_keep_their_types():
    """Type checkers saw ``enhance_file`` (wrapped by an untyped decorator) as ``Any``, and
    ``device``/``model_name``/``strength`` as of no known type."""
    import typing

    from stream_gpen import api

    hints = typing.get_type_hints(api.Enhancer)
    assert (hints["model_name"], hints["strength"]) == (str, float) and "device" in hints
    assert api._cancel_is_not_ctrl_c.__annotations__ == {"method": "_Method", "return": "_Method"}


def test_an_untrusted_photo_is_read_with_pillow_and_an_eps_named_png_is_not(tmp_path, enh, shared):
    """api22 #3: enhance_file(photo, untrusted=True) refused every photo ("not a media file this input
    accepts"); a photo upload is read with Pillow limited to the plain picture formats (no EPS,
    whose decoder runs Ghostscript)."""
    from PIL import Image

    from stream_gpen.errors import NotMediaError

    src = tmp_path / "u.png"
    Image.open(shared / "data/faces/whole/codeformer_whole_00.jpg").save(src)
    assert enh.enhance_file(src, tmp_path / "o.png", untrusted=True).frames_out == 1
    eps = tmp_path / "e.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    with pytest.raises(NotMediaError):
        enh.enhance_file(eps, tmp_path / "e_out.png", untrusted=True)


def test_untrusted_photos_and_the_servers_image_uploads_read_the_same_formats():
    from stream_gpen.io._open import UNTRUSTED_PICTURES
    from stream_gpen.server._imaging import _READABLE

    assert set(UNTRUSTED_PICTURES) == set(_READABLE)
