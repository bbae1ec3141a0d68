"""The library inside someone else's program, and the command line run as a fresh user would:
what a host's objects, logging and signals look like afterwards; long names; a camera pointed at
its own recording; ``info`` on a photo whose header claims a huge size."""
from __future__ import annotations

import copy
import logging
import pickle
import shutil
import signal
import struct
import zlib
from pathlib import Path

import pytest
import torch

from stream_gpen.cli import main


def _clip(path: Path, frames: int = 6) -> Path:
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            img = np.full((48, 64, 3), 20 * i, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def test_a_module_given_as_the_model_is_left_as_the_caller_had_it(mobilenet_weights):
    """Enhancer(model=<nn.Module>) put the caller's module in eval mode, turned its gradients off
    and made its weights channels-last (on a GPU at fp32 it would have moved it): a host previewing
    a checkpoint mid fine-tuning found its next training step failing. A copy runs now."""
    from stream_gpen import Enhancer
    from stream_gpen.models.gpen import TINY_CONFIG, random_generator

    gen = random_generator(TINY_CONFIG, seed=3).train().requires_grad_(True)
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    enh = Enhancer(model=gen, precision="fp32", device="cpu", detector_weights=mobilenet_weights)
    enh.enhance_image(torch.zeros(64, 64, 3, dtype=torch.uint8).numpy())
    assert gen.training and all(p.requires_grad for p in gen.parameters())
    assert not any(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                   for p in gen.parameters() if p.dim() == 4)
    assert all(torch.equal(v, gen.state_dict()[k]) for k, v in before.items())
    out = gen(torch.zeros(1, 3, TINY_CONFIG.size, TINY_CONFIG.size))  # the host trains on
    (out[0] if isinstance(out, tuple) else out).mean().backward()
    assert next(gen.parameters()).grad is not None


def test_an_enhancer_says_it_cannot_be_pickled_and_still_copies(mobilenet_weights):
    """pickle said "cannot pickle '_thread.lock' object", naming neither the Enhancer nor a way
    out; a shallow copy (the server's per-request views) still shares the model and the lock."""
    from stream_gpen import Enhancer

    enh = Enhancer(model="classic", device="cpu", detector_weights=mobilenet_weights)
    with pytest.raises(TypeError, match="create one in each process"):
        pickle.dumps(enh)
    view = copy.copy(enh)
    assert view.restorer is enh.restorer and view._lock is enh._lock


def test_main_says_each_line_once_in_a_host_that_set_up_logging(tmp_path, cli_env, capsys):
    """A host with logging.basicConfig got every library line twice (its root handler repeated
    ours), and INFO lines below its own WARNING level; its logger is as it was afterwards."""
    said: list[str] = []

    class Host(logging.Handler):
        def emit(self, record):
            said.append(record.getMessage())

    root, host = logging.getLogger(), Host()
    root.addHandler(host)
    pkg = logging.getLogger("stream_gpen")
    propagate = pkg.propagate
    try:
        src = _clip(tmp_path / "a.mp4")
        env = [a for a in cli_env if a != "--quiet"]
        assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), *env, "--weights", "x.pth"]) == 0
    finally:
        root.removeHandler(host)
    err = capsys.readouterr().err
    assert "x.pth is not used" in err and not [m for m in said if "stream_gpen" in m or "x.pth" in m]
    assert pkg.propagate == propagate


@pytest.mark.filterwarnings("ignore:'stream_gpen.cli' found in sys.modules")
def test_python_m_stream_gpen_cli_reports_an_unexpected_error_in_one_line(monkeypatch, capsys):
    """`python -m stream_gpen.cli`: main() ran before the helpers below the __main__ block were
    defined, so an unexpected error became a NameError traceback instead of one line."""
    import runpy
    import sys

    import stream_gpen.commands as commands

    def boom(args):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(commands, "_run_info", boom)
    monkeypatch.setattr(sys, "argv", ["stream-gpen", "info", "x.mp4"])
    old = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as e:
            runpy.run_module("stream_gpen.cli", run_name="__main__")
    finally:
        signal.signal(signal.SIGINT, old)
    assert e.value.code == 1
    assert "internal error: RuntimeError: simulated failure" in capsys.readouterr().err


def _png_header(path: Path, w: int, h: int) -> Path:
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    body = zlib.compress(b"\x00" + bytes(w * 3)) if w < 10000 else zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_info_on_a_photo_claiming_a_huge_size_is_one_line_as_enhance_says_it(tmp_path, capsys):
    """`info` on a PNG whose header says 100000x100000 (3 KB) was an "internal error ... please
    report it", exit 1; enhance said "too large to load safely", exit 2."""
    bomb = _png_header(tmp_path / "bomb.png", 100000, 100000)
    assert main(["info", str(bomb)]) == 2
    err = capsys.readouterr().err
    assert "too large to load safely" in err and "internal error" not in err


def test_a_long_name_gets_a_default_output_that_fits(tmp_path):
    """A 245-character title's `_enhanced` name passed the file system's 255 bytes: the run
    failed at its end with "File name too long" and a hint about the folder."""
    from stream_gpen.api import default_output, resolve_output

    for name in ("a" * 245 + ".mp4", "日" * 82 + ".jpg", "b" * 250):
        out = Path(default_output(str(tmp_path / name)))
        assert len(out.name.encode()) <= 255 and out.stem.endswith("_enhanced")
        assert out.suffix == (Path(name).suffix or ".mp4") and out.parent == tmp_path  # (no extension: .mp4)
    out = Path(resolve_output(str(tmp_path / ("c" * 245 + ".png")), None, "jpeg"))
    assert len(out.name.encode()) <= 255 and out.name.endswith("_enhanced.jpeg")
    assert default_output("clip.mp4") == "clip_enhanced.mp4"  # short names as before
    folder = tmp_path / ("d" * 250)
    folder.mkdir()
    assert len(Path(default_output(str(folder))).name.encode()) <= 255


def test_a_long_photo_name_is_restored_beside_it(tmp_path, cli_env, shared):
    photo = tmp_path / ("e" * 245 + ".jpg")
    shutil.copy(shared / "data" / "faces" / "aligned" / sorted(p.name for p in (shared / "data" / "faces" / "aligned").iterdir()
                                                               if p.suffix == ".png")[0], tmp_path / "x.png")
    from PIL import Image

    Image.open(tmp_path / "x.png").convert("RGB").resize((96, 96)).save(photo)
    assert main(["enhance", str(photo), *cli_env]) == 0
    assert [p for p in tmp_path.iterdir() if p.name.endswith("_enhanced.jpg")]


def test_camera_refuses_to_record_over_its_own_source(tmp_path, cli_env, capsys):
    """`camera in.mp4 -o in.mp4 --overwrite` replaced the file with the frames camera kept up with,
    and no sound; it is refused before the model loads, with or without --overwrite."""
    src = _clip(tmp_path / "in.mp4")
    data = src.read_bytes()
    for extra in ([], ["--overwrite"]):
        assert main(["camera", str(src), "-o", str(src), "--frames", "3", *cli_env, *extra]) == 2
        err = capsys.readouterr().err
        assert "the output is the camera's source itself" in err and "stream-gpen enhance" in err
    assert src.read_bytes() == data


def test_a_photo_to_a_missing_folder_hints_a_photo_name(tmp_path, cli_env, shared, capsys):
    photo = tmp_path / "p.jpg"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(photo)
    assert main(["enhance", str(photo), "-o", str(tmp_path / "nope") + "/", *cli_env]) == 2
    err = capsys.readouterr().err
    assert "photo_enhanced.jpg" in err and "clip.mp4" not in err


def test_two_long_names_cut_alike_get_outputs_of_their_own(tmp_path, cli_env):
    """Shortened from their end, `C*250 + "1.jpg"` and `C*250 + "2.jpg"` shared one default output:
    the second run said "output exists", and with --overwrite replaced the first one's result."""
    from PIL import Image

    from stream_gpen.api import default_output

    a, b = tmp_path / ("C" * 250 + "1.jpg"), tmp_path / ("C" * 250 + "2.jpg")
    Image.new("RGB", (40, 32), (10, 20, 30)).save(a)
    Image.new("RGB", (40, 32), (200, 100, 50)).save(b)
    assert default_output(str(a)) != default_output(str(b))
    assert main(["enhance", str(a), *cli_env]) == 0 and main(["enhance", str(b), *cli_env]) == 0
    outs = [p for p in tmp_path.iterdir() if p.name.endswith("_enhanced.jpg")]
    assert len(outs) == 2 and all(len(p.name.encode()) <= 255 for p in outs)


def test_a_long_photo_name_into_a_folder_with_a_longer_extension_fits(tmp_path, cli_env):
    """`-o DIR/ --image-format webp` and a folder run with --image-format kept the input's name
    with the longer extension: 256 bytes, "File name too long" after the photo was restored."""
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    photo = src / ("A" * 251 + ".jpg")
    Image.new("RGB", (40, 32), (90, 60, 30)).save(photo)
    (tmp_path / "od").mkdir()
    assert main(["enhance", str(photo), "-o", str(tmp_path / "od"), "--image-format", "webp", *cli_env]) == 0
    assert main(["enhance", str(src), "-o", str(tmp_path / "mirror"), "--image-format", "webp", *cli_env]) == 0
    for d in ("od", "mirror"):
        (out,) = list((tmp_path / d).iterdir())
        assert out.suffix == ".webp" and len(out.name.encode()) <= 255 and out.name.startswith("A" * 200)


def test_info_says_what_pillow_warns_of(tmp_path, capsys, monkeypatch):
    """`info` swallowed Pillow's complaints (a very large picture, corrupt EXIF): the plan says them."""
    from PIL import Image

    photo = tmp_path / "big.png"
    Image.new("L", (60, 60)).save(photo)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 3600 pixels: over the limit, under twice it
    assert main(["info", str(photo)]) == 0
    out = capsys.readouterr().out
    assert "Pillow warns: Image size (3600 pixels) exceeds limit" in out


def test_an_enhancer_is_not_deep_copied(mobilenet_weights):
    from stream_gpen import Enhancer

    enh = Enhancer(model="classic", device="cpu", detector_weights=mobilenet_weights)
    with pytest.raises(TypeError, match="not deep-copied: copy.copy"):
        copy.deepcopy(enh)


def test_the_server_says_pillows_complaints_in_one_line(caplog):
    import io

    import warnings

    from PIL import Image

    from stream_gpen.server._imaging import decode_image

    buf = io.BytesIO()
    Image.new("RGB", (60, 60)).save(buf, format="PNG")
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 2000
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # none escapes as Pillow's own
            decode_image(buf.getvalue(), max_pixels=10**6)
    finally:
        Image.MAX_IMAGE_PIXELS = old
    assert any(r.getMessage().startswith("uploaded image: Image size (3600 pixels)") for r in caplog.records)
