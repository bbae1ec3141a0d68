"""The library and folder runs (hunt 14): an output folder inside the input holding originals that
share a plain background or are videos, the refusal's wording, an interrupted folder's message,
``stream(0)``, ``enhance_images`` given one array, and what the package shows to type checkers.
Each case once failed."""
from __future__ import annotations

import ast
import hashlib
import inspect
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

import stream_gpen
from _clips import write_video
from _doubles import SolidRestorer
from stream_gpen import Cancelled, Enhancer
from stream_gpen.api import _looks_alike, _not_earlier_output
from stream_gpen.errors import InvalidInputError


def _md5(p) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def _scan(photo: Path, dst: Path) -> None:
    """A scanned print: the photo on a white page of the scanner's fixed size."""
    page = Image.new("RGB", (170, 220), (250, 250, 250))
    im = Image.open(photo).convert("RGB")
    im.thumbnail((120, 120))
    page.paste(im, (12, 12))
    page.save(dst, quality=92)


def _crop43(photo: Path, scale: float = 1.0) -> Image.Image:
    """A photo cut to 4:3 and brought to 160x120, its brightness times ``scale``."""
    im = Image.open(photo).convert("RGB")
    w, h = im.size
    t = min(w / 4, h / 3)
    cw, ch = int(4 * t), int(3 * t)
    im = im.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)).resize((160, 120))
    return ImageEnhance.Brightness(im).enhance(scale) if scale != 1.0 else im


def test_different_scans_on_one_page_are_not_taken_for_an_earlier_output(tmp_path, enh, shared):
    """Scanner software numbers each session's files from Scan0001 again, on one page size:
    ``lib/Scan0001.jpg`` and ``lib/1985/Scan0001.jpg`` are two prints. The thumbnails' least-changed
    quarter was the white page margin, alike in any two scans: ``enhance lib -o lib/1985
    --overwrite`` replaced the 1985 original (exit 0). Only cells with texture count now."""
    whole = shared / "data/faces/whole"
    lib = tmp_path / "lib"
    (lib / "1985").mkdir(parents=True)
    _scan(whole / "codeformer_whole_03.jpg", lib / "Scan0001.jpg")
    _scan(whole / "gfpgan_whole_Blake_Lively.jpg", lib / "1985" / "Scan0001.jpg")
    before = _md5(lib / "1985" / "Scan0001.jpg")
    with pytest.raises(InvalidInputError, match=r"first: \S*/1985/Scan0001\.jpg, the size of the input \S*/lib/Scan0001\.jpg but another "
                                                r"picture at a glance\): originals, it seems"):
        enh.enhance_file(lib, lib / "1985", overwrite=True)
    assert _md5(lib / "1985" / "Scan0001.jpg") == before
    # every pair of the shared photos as scans, and dimmed (an evening's dark backgrounds): none alike
    photos = sorted(p for p in whole.iterdir() if p.suffix in (".jpg", ".png"))[:5]
    scans, dim = [], []
    for i, p in enumerate(photos):
        scans.append(tmp_path / f"scan{i}.jpg")
        _scan(p, scans[-1])
        dim.append(tmp_path / f"dim{i}.jpg")
        _crop43(p, 0.35).save(dim[-1])
    dim.append(tmp_path / "dim_solvay.jpg")  # (with codeformer_whole_00: the closest pair measured)
    _crop43(whole / "gpen_Solvay_conference_1927.png", 0.35).save(dim[-1])
    for group in (scans, dim):
        alike = [(a.name, b.name) for a in group for b in group if a != b and _looks_alike(a, b)]
        assert alike == []


def test_an_earlier_output_is_still_recognised_whatever_its_faces_became(tmp_path, mobilenet_weights, shared):
    """The other side: a close-up selfie whose face, most of the frame, was painted over by the
    restorer, written as JPEG, is still its input's earlier output (a re-run is not refused)."""
    src = tmp_path / "selfie.jpg"
    im = Image.open(shared / "data/faces/whole/gpen_selfie_20200320.101220.jpg")
    im = ImageOps.exif_transpose(im).convert("RGB")
    im.thumbnail((240, 240))
    im.save(src, quality=90)
    solid = Enhancer(SolidRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False)
    out = tmp_path / "out.jpg"
    assert solid.enhance_file(src, out).faces_restored >= 1
    assert not np.array_equal(np.asarray(Image.open(src)), np.asarray(Image.open(out)))
    assert _not_earlier_output(src, out, "selfie.jpg") is None


def _photo_frames(photo: Path, n: int = 4) -> list[np.ndarray]:
    base = np.asarray(_crop43(photo))
    return [np.ascontiguousarray(np.roll(base, 2 * k, axis=1)) for k in range(n)]


def test_a_reused_video_name_of_one_size_is_not_taken_for_an_earlier_output(tmp_path, enh, shared):
    """A phone's VID_0001 restarts and all its clips share one size: Pillow cannot thumbnail a
    video, and the doubt it was given let ``--overwrite`` replace ``lib/2019/VID_0001.mp4`` by the
    other clip's result. Its first decoded frame is compared now; the run's own output still passes."""
    whole = shared / "data/faces/whole"
    lib = tmp_path / "lib"
    (lib / "2019").mkdir(parents=True)
    write_video(lib / "VID_0001.mp4", _photo_frames(whole / "gfpgan_whole_Blake_Lively.jpg"))
    write_video(lib / "2019" / "VID_0001.mp4", _photo_frames(whole / "codeformer_whole_00.jpg"))
    before = _md5(lib / "2019" / "VID_0001.mp4")
    with pytest.raises(InvalidInputError, match=r"first: \S*/2019/VID_0001\.mp4, the size of the input \S*/lib/VID_0001\.mp4 but another"):
        enh.enhance_file(lib, lib / "2019", overwrite=True)
    assert _md5(lib / "2019" / "VID_0001.mp4") == before
    (lib / "2019" / "VID_0001.mp4").unlink()
    enh.enhance_file(lib, lib / "out")
    assert enh.enhance_file(lib, lib / "out", overwrite=True).frames_out == 4


def test_a_cut_videos_rerun_is_compared_from_its_start(tmp_path, enh, shared):
    """A try of settings on a part of a video (``start``) begins there: its re-run with the same
    cut is its own earlier output, not an original (the input's first frame is another scene)."""
    whole = shared / "data/faces/whole"
    lib = tmp_path / "lib"
    lib.mkdir()
    write_video(lib / "clip.mp4", _photo_frames(whole / "codeformer_whole_00.jpg", 8)
                + _photo_frames(whole / "gfpgan_whole_Blake_Lively.jpg", 8))
    enh.enhance_file(lib, lib / "try", start=0.32)
    assert enh.enhance_file(lib, lib / "try", start=0.32, overwrite=True).frames_out == 8


def test_the_refusal_says_which_test_failed_and_leaves_an_inputs_other_formats_alone(tmp_path, enh, face):
    """An earlier output the user brightened (same size) was refused as of "another size"; an
    earlier ``image_format`` run's ``a.png`` was listed as a file "no input maps to"."""
    lib = tmp_path / "lib"
    lib.mkdir()
    face.save(lib / "a.jpg", quality=95)
    enh.enhance_file(lib, lib / "out")
    enh.enhance_file(lib, lib / "out", image_format="png")
    out = lib / "out" / "a.jpg"
    ImageEnhance.Brightness(Image.open(out)).enhance(1.4).save(out, quality=95)
    with pytest.raises(InvalidInputError) as e:
        enh.enhance_file(lib, lib / "out", overwrite=True)
    said = str(e.value)
    assert f"(first: {out}, the size of the input {lib / 'a.jpg'} but another picture at a glance)" in said, said
    assert "no input maps to" not in said and "another size" not in said, said
    face.resize((48, 32)).save(out)
    with pytest.raises(InvalidInputError, match=r"\(first: \S*/out/a\.jpg, another size than the input \S*/lib/a\.jpg: 48x32, not 96x64\)"):
        enh.enhance_file(lib, lib / "out", overwrite=True)
    face.resize((48, 32)).save(lib / "out" / "mine.jpg")  # (a file of the user's own is still listed)
    with pytest.raises(InvalidInputError, match=r"and 1 more that no input maps to \(first: mine\.jpg\)"):
        enh.enhance_file(lib, lib / "out", overwrite=True)


def test_an_interrupted_folder_says_photos_and_how_to_resume(tmp_path, enh, face):
    """A stopped photo folder said "interrupted after 1 frames", and not how to go on."""
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        face.save(lib / name)
    stop = threading.Event()
    with pytest.raises(Cancelled) as e:
        enh.enhance_file(lib, tmp_path / "out", cancel=stop, on_progress=lambda *_: stop.set())
    assert str(e.value) == "cancelled after 1 of 3 photos; skip_existing=True resumes"
    assert e.value.summary.frames_out == 1


def test_stream_takes_a_capture_device_index(enh, monkeypatch):
    """``stream(0)`` (a camera by its index, as documented) raised a TypeError from the still-GIF
    check (``Path(0)``) before the source was opened."""
    import stream_gpen.io

    opened = []

    def open_source(spec, **kw):
        opened.append(spec)
        raise InvalidInputError("no capture device here")  # (the device layer, mocked)

    monkeypatch.setattr(stream_gpen.io, "open_source", open_source)
    for index in (0, 1):
        with pytest.raises(InvalidInputError, match="no capture device here"):
            next(enh.stream(index))
    assert opened == [0, 1]  # (an index stays one: a file named "0" here is no camera)


def test_enhance_images_refuses_one_picture(enh):
    """``enhance_images(array)`` (plural name, one picture) restored each row as a grey picture,
    slowly and without a word."""
    one = np.zeros((24, 32, 3), np.uint8)
    with pytest.raises(InvalidInputError, match=r"takes a list of pictures, not one ndarray \(shape \(24, 32, 3\)\); "
                                                r"for one picture use enhance_image\(\)"):
        enh.enhance_images(one)
    with pytest.raises(InvalidInputError, match=r"not one Tensor .*use enhance_image\(\)"):
        enh.enhance_images(torch.zeros(2, 24, 32, 3, dtype=torch.uint8))
    outs = enh.enhance_images(np.zeros((2, 24, 32, 3), np.uint8))  # a stack of pictures is a sequence
    assert [o.shape for o in outs] == [(24, 32, 3)] * 2


def test_the_package_shows_its_public_types_to_checkers():
    """``from stream_gpen import Enhancer`` was ``Any`` to type checkers (a module ``__getattr__``
    only), ``dir()`` did not list it, and the types public methods return were not exported."""
    for name in ("Enhancer", "EnhancedFrame", "RunSummary"):
        assert name in dir(stream_gpen) and name in stream_gpen.__all__
        assert getattr(stream_gpen, name).__name__ == name
    tree = ast.parse(Path(stream_gpen.__file__).read_text())
    typed = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.If)
             and (getattr(node.test, "id", "") or getattr(node.test, "attr", "")) == "TYPE_CHECKING"
             for imp in node.body if isinstance(imp, ast.ImportFrom) for a in imp.names}
    assert typed == {"Enhancer", "EnhancedFrame", "RunSummary"}
    assert not {"TYPE_CHECKING", "typing"} & set(dir(stream_gpen))  # (no helper names in completions)
    params = inspect.signature(Enhancer).parameters
    assert "Module" in params["model"].annotation
    assert inspect.signature(Enhancer.enhance_images).parameters["images"].annotation.startswith("Iterable[")
    assert "int" in inspect.signature(Enhancer.stream).parameters["source"].annotation


def test_a_finished_run_removes_every_earlier_partial_output(tmp_path, enh, monkeypatch):
    """A second interrupted run now writes NAME.partial-1.EXT beside the first's NAME.partial.EXT:
    a finished run removed the first alone, and the others stayed for good."""
    from stream_gpen.io._partials import remember_partial

    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)])
    left = [tmp_path / n for n in ("o.partial.mp4", "o.partial-1.mp4", "o.partial-12.mp4")]
    keep = [tmp_path / n for n in ("o.partial-x.mp4", "oo.partial-1.mp4")]  # (not this output's)
    for p in left + keep:
        p.write_bytes(b"x")
        remember_partial(p)  # (as an interrupted run records them)
    s = enh.enhance_file(src, tmp_path / "o.mp4", preset="ultrafast")
    assert not any(p.exists() for p in left) and all(p.exists() for p in keep)
    assert sum("left by an interrupted earlier run" in f for f in s.fallbacks) == 3, s.fallbacks


def test_null_output_in_the_api_is_the_null_sink_whatever_the_folder_holds(tmp_path, enh, monkeypatch):
    """dst="null" (the CLI's -o /dev/null) is the null sink: a folder named null in the working
    folder took the video as null/in_enhanced.mp4, and a file named null made skip_existing skip."""
    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "null").mkdir()
    s = enh.enhance_file(src, "null")
    assert s.frames_out == 3 and not any((tmp_path / "null").iterdir())
    (tmp_path / "null").rmdir()
    (tmp_path / "null").write_bytes(b"x")
    s = enh.enhance_file(src, "null", skip_existing=True)
    assert s.frames_out == 3 and (tmp_path / "null").read_bytes() == b"x"


def test_sixteen_bit_grey_originals_are_told_apart(tmp_path, enh, shared):
    """16-bit grey scans (mode I;16): Pillow's convert clipped them to one flat white thumbnail, so
    any two of one size were "alike" and --overwrite replaced an original. Their 8-bit output (or
    a 16-bit one) is still their earlier output."""
    aligned = sorted((shared / "data/faces/aligned").glob("*.png"))
    scans = []
    for i, p in enumerate(aligned[:2]):
        g = np.asarray(Image.open(p).convert("L").resize((96, 96)), np.uint16) * 257
        scans.append(tmp_path / f"scan{i}.png")
        Image.fromarray(g).save(scans[-1])  # (a 16-bit grey PNG)
    assert Image.open(scans[0]).mode.startswith("I")
    assert _not_earlier_output(scans[0], scans[1], "scan0.png") == "the size of scan0.png but another picture at a glance"
    as8 = tmp_path / "out8.jpg"
    Image.open(scans[0]).convert("I").point(lambda v: v / 257).convert("L").save(as8, quality=90)
    assert _not_earlier_output(scans[0], as8, "scan0.png") is None
    lib = tmp_path / "lib"
    (lib / "out").mkdir(parents=True)
    scans[0].rename(lib / "scan.png")
    scans[1].rename(lib / "out" / "scan.png")
    before = _md5(lib / "out" / "scan.png")
    with pytest.raises(InvalidInputError, match="another picture at a glance"):
        enh.enhance_file(lib, lib / "out", overwrite=True)
    assert _md5(lib / "out" / "scan.png") == before
    (lib / "out" / "scan.png").unlink()
    enh.enhance_file(lib, lib / "out")
    assert enh.enhance_file(lib, lib / "out", overwrite=True).frames_out == 1  # (its own output: accepted)


def test_dark_photos_are_told_apart_and_a_dark_photos_output_is_recognised(tmp_path, shared):
    """Underexposed photos of one size: their differences fell under the grey-level limits (at
    0.15x, 89 of 378 pairs of the shared aligned faces were "alike"); the pair is stretched to an
    ordinary photo's contrast first. A dark photo's own restored copy still passes."""
    aligned = sorted((shared / "data/faces/aligned").glob("*.png"))[:8]
    paths = []
    for i, p in enumerate(aligned):
        a = np.asarray(Image.open(p).convert("RGB").resize((160, 160)), np.float32) * 0.15
        paths.append(tmp_path / f"d{i}.jpg")
        Image.fromarray(a.astype(np.uint8)).save(paths[-1], quality=90)
    alike = [(a.name, b.name) for a in paths for b in paths if a != b and _looks_alike(a, b)]
    assert alike == []
    # its restored copy: the face region repainted, the rest re-encoded
    a = np.asarray(Image.open(paths[0])).copy()
    a[40:120, 40:120] = np.clip(a[40:120, 40:120].astype(int) + 12, 0, 255)
    out = tmp_path / "d0_out.jpg"
    Image.fromarray(a).save(out, quality=95)
    assert _looks_alike(paths[0], out)


def test_the_null_output_takes_one_file_not_a_folder(tmp_path, enh, face, caplog):
    """enhance_file(folder, "null") made a real ./null folder of outputs; a photo with
    image_format and the null output was said to be "written as video"."""
    import logging

    lib = tmp_path / "lib"
    lib.mkdir()
    face.save(lib / "a.jpg")
    with pytest.raises(InvalidInputError, match=r'needs an output folder: the output "null" \(write nothing\) takes one file'):
        enh.enhance_file(lib, "null")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib"]
    with caplog.at_level(logging.WARNING, logger="stream_gpen"):
        s = enh.enhance_file(lib / "a.jpg", "null", image_format="png")
    # ("applies to photos": the warning's words since session 27, "... is written as a video")
    assert s.frames_out == 1 and not any("applies to photos" in r.getMessage() for r in caplog.records)


def test_an_interrupted_runs_partial_n_output_is_not_a_stranger(tmp_path, enh, caplog):
    """A NAME.partial-1.EXT left in an output folder inside the input was warned about as a file
    "no input of this run maps to" (only NAME.partial.EXT was known)."""
    import logging

    lib = tmp_path / "lib"
    lib.mkdir()
    write_video(lib / "clip.mp4", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(3)])
    enh.enhance_file(lib, lib / "out")
    (lib / "out" / "clip.partial-1.mp4").write_bytes((lib / "out" / "clip.mp4").read_bytes())
    with caplog.at_level(logging.WARNING, logger="stream_gpen"):
        enh.enhance_file(lib, lib / "out", skip_existing=True)
    assert not any("no input of this run maps to" in r.getMessage() for r in caplog.records), caplog.records


def test_thumbnails_decode_a_jpeg_at_a_reduced_scale_and_each_file_once(tmp_path, monkeypatch, shared):
    """A resumed folder run thumbnails every input and its earlier output before the first photo:
    each was decoded at full size (a 12 MP photo 0.28 s) and an output twice (whole, then its left
    half). A JPEG is decoded at a reduced scale now, each file once; the answer is the same."""
    import PIL.Image
    import PIL.ImageOps

    src = tmp_path / "a.jpg"
    im = Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB").resize((2048, 1536))
    im.save(src, quality=90)
    out = tmp_path / "b.jpg"
    im.save(out, quality=80)
    sizes, opened = [], []
    real_transpose, real_open = PIL.ImageOps.exif_transpose, PIL.Image.open
    monkeypatch.setattr(PIL.ImageOps, "exif_transpose", lambda x, **k: sizes.append(x.size) or real_transpose(x, **k))
    monkeypatch.setattr(PIL.Image, "open", lambda fp, *a, **k: opened.append(str(fp)) or real_open(fp, *a, **k))
    assert _looks_alike(src, out)
    assert sizes and all(w <= 512 for w, _ in sizes), sizes
    assert opened.count(str(out)) == 1, opened


def test_an_interrupted_folder_reports_its_clash_renames(tmp_path, enh, face):
    """a.jpg and a.png both write a .jpg under --image-format jpg: one is renamed a_png.jpg and
    the report says why; an interrupted run's report left that out (the file was there all the same)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("a.jpg", "a.png", "c.jpg"):
        face.save(lib / name)
    stop = threading.Event()
    with pytest.raises(Cancelled) as e:
        enh.enhance_file(lib, tmp_path / "out", image_format="jpg", cancel=stop, on_progress=lambda *_: stop.set())
    assert any("a_png.jpg" in f for f in e.value.summary.fallbacks), e.value.summary.fallbacks
