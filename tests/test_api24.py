"""Session 24 (api24): the Python API's messages, parameters, repr and docs as a program meets them."""
from __future__ import annotations

import copy
import inspect
import re
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _clips import write_video
from stream_gpen import Enhancer, Interrupted
from stream_gpen.errors import DeviceError, InvalidInputError, OutputExistsError

REPO = Path(__file__).resolve().parents[1]


def _photos(root: Path, names=("a.jpg", "b.jpg", "c.jpg"), size=(64, 48)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(24)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(root / name)
    return root


# --- 1. messages name the API's keywords; the command line says its flags ----------------------

def test_a_stopped_photo_folder_says_the_keyword_that_resumes_it(tmp_path, enh):
    """Interrupted (Ctrl-C) while enhancing a folder through the API said "--skip-existing resumes":
    a flag the program has no use for."""
    lib = _photos(tmp_path / "lib")

    def stop(done, total, faces):
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as e:
        enh.enhance_file(lib, tmp_path / "out", on_progress=stop)
    assert str(e.value) == "interrupted after 1 of 3 photos; skip_existing=True resumes"
    assert "--" not in str(e.value)


def test_a_folder_stopped_in_a_video_says_the_keyword(tmp_path, enh):
    lib = _photos(tmp_path / "lib", names=("a.png",))
    write_video(lib / "v.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(6)])

    def stop(done, total, faces):
        if done == 3:  # the photo, then the second frame of the video
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as e:
        enh.enhance_file(lib, tmp_path / "out", on_progress=stop)
    said = str(e.value)
    assert said.endswith("skip_existing=True resumes") and "--skip-existing" not in said, said


def test_an_existing_output_in_a_folder_names_the_keywords(tmp_path, enh):
    lib = _photos(tmp_path / "lib")
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.jpg").write_bytes(b"an earlier run's")
    with pytest.raises(OutputExistsError) as e:
        enh.enhance_file(lib, out)
    assert e.value.hint == "overwrite=True redoes it, skip_existing=True resumes a folder run"
    # an output folder that is the input folder: "name another with -o"
    with pytest.raises(InvalidInputError) as e:
        enh.enhance_file(lib, lib, overwrite=True)
    assert str(e.value).endswith("name another as dst") and "with -o" not in str(e.value)
    # the encoder's ranges (a photo given crf=99: checked as for a video, then said to be unused)
    with pytest.raises(InvalidInputError, match="crf=99") as e:
        enh.enhance_file(lib / "a.jpg", tmp_path / "o.jpg", crf=99)
    assert e.value.hint.startswith("crf: h264/hevc 0-51") and "--" not in e.value.hint


def test_the_sinks_hints_name_the_keywords(tmp_path):
    from stream_gpen.io import FileSink

    (tmp_path / "o.mp4").write_bytes(b"x")
    with pytest.raises(OutputExistsError) as e:
        FileSink(tmp_path / "o.mp4")
    assert e.value.hint == "pass overwrite=True or choose another dst"
    with pytest.raises(InvalidInputError) as e:
        FileSink(tmp_path / "missing" / "o.mp4")
    assert e.value.hint == "create it, or choose another dst"


def test_the_command_line_says_the_api_messages_with_its_flags(tmp_path, cli_env, capsys):
    from stream_gpen.cli import main
    from stream_gpen.errors import in_command_line_words

    assert in_command_line_words("interrupted after 1 of 3 photos; skip_existing=True resumes") == \
        "interrupted after 1 of 3 photos; --skip-existing resumes"
    assert in_command_line_words("pass overwrite=True or choose another dst") == "pass --overwrite or choose another -o"
    assert in_command_line_words('name a regular file as dst (dst="null" restores without writing anything)') == \
        "name a regular file with -o (-o /dev/null restores without writing anything)"
    assert in_command_line_words(None) is None

    lib = _photos(tmp_path / "lib")
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.jpg").write_bytes(b"an earlier run's")
    assert main(["enhance", str(lib), "-o", str(out), *cli_env]) == 2
    err = capsys.readouterr().err
    assert "hint: --overwrite redoes it, --skip-existing resumes a folder run" in err, err
    assert "skip_existing" not in err and "overwrite=" not in err, err
    assert main(["enhance", str(lib), "-o", str(lib), "--overwrite", *cli_env]) == 2
    err = capsys.readouterr().err
    assert "name another with -o" in err and " dst" not in err, err
    assert main(["enhance", str(lib / "a.jpg"), "-o", str(tmp_path / "o.jpg"), *cli_env, "--crf", "99"]) == 2
    assert "hint: --crf: h264/hevc 0-51" in capsys.readouterr().err


# --- 2. a photo written whole, then stopped ------------------------------------------------------

def test_a_photo_written_whole_before_a_stop_is_not_said_to_be_cut_short(tmp_path, enh):
    """A Ctrl-C that came once the photo was written said "interrupted after 1 frames", as of a
    video stopped mid-way (and in broken English)."""
    src = _photos(tmp_path, names=("a.jpg",)) / "a.jpg"
    dst = tmp_path / "o.jpg"

    def stop(done, total, faces):
        raise KeyboardInterrupt

    with pytest.raises(Interrupted) as e:
        enh.enhance_file(src, dst, on_progress=stop)
    said = str(e.value)
    assert said == f"stopped after {dst} was written whole", said
    assert "frames" not in said and "interrupted" not in said
    assert dst.is_file() and e.value.summary.frames_out == 1 and e.value.summary.partial_output is None


def test_a_video_stopped_after_one_frame_says_frame(tmp_path, enh):
    src = write_video(tmp_path / "v.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(6)])

    def stop(done, total, faces):
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as e:
        enh.enhance_file(src, tmp_path / "o.mp4", on_progress=stop)
    said = str(e.value)
    assert "1 frames" not in said, said
    assert "1 frame " in said or said.endswith("1 frame"), said


# --- 3. dst a folder --------------------------------------------------------------------------

def test_dst_naming_a_folder_is_a_folder(tmp_path, enh):
    """``enhance_file(src, "out/")`` with no such folder was taken for a file without an
    extension ("an image input needs an image output ... got out/"); the command line's -o
    refused it as a folder that is not there, and now both do (one rule: resolve_output)."""
    from stream_gpen.api import resolve_output

    src = _photos(tmp_path / "in", names=("a.jpg",)) / "a.jpg"
    with pytest.raises(InvalidInputError, match=r"output folder does not exist: .*missing/$") as e:
        enh.enhance_file(src, str(tmp_path / "missing") + "/")
    assert e.value.hint == "create it, or name the output file (e.g. photo_enhanced.jpg)"
    assert not (tmp_path / "missing").exists()
    (tmp_path / "out").mkdir()
    for dst in (str(tmp_path / "out") + "/", str(tmp_path / "out"), tmp_path / "out"):
        assert enh.enhance_file(src, dst, overwrite=True).output == str(tmp_path / "out" / "a.jpg")
    assert resolve_output(str(tmp_path / "v.mp4"), str(tmp_path / "out") + "/") == str(tmp_path / "out" / "v_enhanced.mp4")
    with pytest.raises(InvalidInputError, match="output folder does not exist"):
        resolve_output(str(tmp_path / "v.mp4"), str(tmp_path / "missing") + "/")


# --- 4. repr -----------------------------------------------------------------------------------

def test_an_enhancer_says_what_it_is(enh, mobilenet_weights):
    assert repr(enh) == "Enhancer(model='identity', device='cpu', precision='fp32')"
    assert repr(copy.copy(enh)) == repr(enh)
    from tests._doubles import IdentityRestorer

    aligned = Enhancer(IdentityRestorer(), device="cpu", aligned=True, progress=False)
    assert repr(aligned) == "Enhancer(model='identity', device='cpu', precision='fp32', aligned=True)"


# --- 5. device: a torch.device ---------------------------------------------------------------

def test_device_takes_a_torch_device(mobilenet_weights):
    hints = typing.get_type_hints(Enhancer.__init__)
    assert torch.device in typing.get_args(hints["device"]), hints["device"]
    from tests._doubles import IdentityRestorer

    for device in (torch.device("cpu"), torch.device("cpu", 0)):
        e = Enhancer(IdentityRestorer(), device=device, detector_weights=mobilenet_weights, progress=False)
        assert e.device == torch.device("cpu") and repr(e).endswith("device='cpu', precision='fp32')")
        img = np.zeros((40, 48, 3), np.uint8)
        assert e.enhance_image(img).shape == img.shape
    if not torch.cuda.is_available():
        # said by its name, not "device device(type='cuda') requested"
        with pytest.raises(DeviceError, match=r"^device 'cuda' requested but torch sees no CUDA device"):
            Enhancer(IdentityRestorer(), device=torch.device("cuda"), detector_weights=mobilenet_weights)
    with pytest.raises(InvalidInputError, match=r"^unknown device 'meta'"):
        Enhancer(IdentityRestorer(), device=torch.device("meta"), detector_weights=mobilenet_weights)


# --- 6. nonsense numbers ------------------------------------------------------------------------

@pytest.mark.parametrize("value", [-5, 0, float("nan"), True, 2.5, "1000"])
def test_max_pixels_must_be_a_pixel_count(tmp_path, enh, value):
    """``max_pixels=-5`` (0, NaN, True...) was taken without a word."""
    src = _photos(tmp_path, names=("a.jpg",)) / "a.jpg"
    with pytest.raises(InvalidInputError, match=r"^max_pixels must be None \(no limit\) or a whole number"):
        enh.enhance_file(src, tmp_path / "o.jpg", max_pixels=value)
    assert not (tmp_path / "o.jpg").exists()


def test_max_pixels_still_takes_a_count(tmp_path, enh):
    src = _photos(tmp_path, names=("a.jpg",)) / "a.jpg"
    for value in (1_000_000, np.int64(40_000_000), None):
        assert enh.enhance_file(src, tmp_path / "o.jpg", max_pixels=value, overwrite=True).frames_out == 1


def test_pictures_that_are_no_sequence_name_the_parameter(enh):
    """``enhance_images(None)``, ``stream_frames(5)``: Python's "'NoneType' object is not iterable"."""
    with pytest.raises(InvalidInputError, match=r"enhance_images\(\) takes an iterable of pictures .* as images, got NoneType"):
        enh.enhance_images(None)
    with pytest.raises(InvalidInputError, match=r"stream_frames\(\) takes an iterable of pictures .* as frames, got int"):
        list(enh.stream_frames(5))


# --- 7. which picture was bad ------------------------------------------------------------------

def test_enhance_images_names_the_bad_pictures_index(enh):
    good = np.zeros((32, 40, 3), np.uint8)
    with pytest.raises(InvalidInputError, match=r"^enhance_images\(\): picture 1: image must be a numpy array, got NoneType"):
        enh.enhance_images([good, None])
    with pytest.raises(InvalidInputError, match=r"^enhance_images\(\): picture 2: image must be HxW"):
        enh.enhance_images([good, good, np.zeros(3, np.uint8)])
    with pytest.raises(InvalidInputError, match=r"^image must be a numpy array, got NoneType"):  # one picture: no index
        enh.enhance_image(None)


# --- 8. docs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["__init__", "enhance_image", "enhance_images", "enhance_file", "stream",
                                    "stream_frames"])
def test_every_public_parameter_is_documented(method):
    """``live``, ``latency_budget_s``, ``audio``, ``crf``, ``preset``... were not in the docstrings."""
    f = getattr(Enhancer, method)
    doc = (Enhancer.__doc__ if method == "__init__" else f.__doc__) or ""
    missing = [p for p in inspect.signature(f).parameters if p != "self" and not re.search(rf"``{p}[`=]", doc)]
    assert not missing, (method, missing)


def test_the_readmes_api_section_names_every_keyword_of_enhance_file():
    readme = (REPO / "README.md").read_text()
    api = readme[readme.index("## Python API"):readme.index("## Weights")]
    said = set(re.findall(r"`(\w+)`", api)) | set(re.findall(r"(\w+)=", api))
    missing = [p for p in inspect.signature(Enhancer.enhance_file).parameters
               if p not in ("self", "src") and p not in said]
    assert not missing, missing
    for words in ("live=None", "latency_budget_s", "torch.device", "Enhancer(model="):
        assert words in api, words
