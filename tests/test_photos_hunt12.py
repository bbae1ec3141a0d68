"""Photos under the other names cameras and browsers give them (.jfif, .jpe, Fujifilm/Canon .HIF),
and the host's warnings while the library reads a photo or loads a model. Each case once failed."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch
from PIL import Image, JpegImagePlugin



def _exif(description: str) -> bytes:
    exif = Image.Exif()
    exif[270] = description
    return exif.tobytes()


def test_jfif_and_jpe_photos_are_restored_and_written_back_as_jpeg(tmp_path, enh, face):
    """Browsers save JPEGs as .jfif (old Windows tools as .jpe): both were taken for videos
    ("Could not determine output format"), left out of folder runs as "neither images nor videos",
    and refused with ``-o x.jpg`` ("the input is a video"). Each is a photo, written back as a JPEG
    under its own name, with what a .jpg keeps (4:4:4 sampling, EXIF)."""
    for name in ("a.jfif", "b.JPE"):
        face.save(tmp_path / name, "JPEG", quality=95, subsampling=0, exif=_exif("family, 1962"))
        s = enh.enhance_file(tmp_path / name)
        out = tmp_path / f"{name.split('.')[0]}_enhanced.{name.split('.')[1]}"
        assert s.output == str(out) and out.exists(), s.output
        with Image.open(out) as im:
            assert im.format == "JPEG" and im.size == (96, 64)
            assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4 kept, as for .jpg
            assert im.getexif().get(270) == "family, 1962"
    enh.enhance_file(tmp_path / "a.jfif", tmp_path / "x.jpg")
    with Image.open(tmp_path / "x.jpg") as im:
        assert im.format == "JPEG"
    (tmp_path / "album").mkdir()
    for name in ("a.jfif", "b.jpe", "c.jpg"):
        face.save(tmp_path / "album" / name, "JPEG", quality=95)
    s = enh.enhance_file(tmp_path / "album", tmp_path / "done")
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["a.jfif", "b.jpe", "c.jpg"]
    assert s.frames_out == 3
    for p in (tmp_path / "done").iterdir():
        with Image.open(p) as im:
            assert im.format == "JPEG"


def test_fujifilm_hif_photo_is_restored_and_written_back_as_heif(tmp_path, enh, face):
    """Fujifilm and Canon cameras write HEIF as .HIF, often at 10 bits: it was taken for a video
    (and a folder of them "contains no images"). It is read through pillow-heif and written back
    as HEIF, its 10 bits kept as for .heic."""
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    face.save(tmp_path / "DSCF0001.HIF", format="HEIF", quality=90)
    s = enh.enhance_file(tmp_path / "DSCF0001.HIF")
    assert s.output == str(tmp_path / "DSCF0001_enhanced.HIF")
    with Image.open(s.output) as im:
        assert im.format == "HEIF" and im.size == (96, 64)
    # a 10-bit one keeps its 10 bits
    rgb16 = (np.asarray(face, dtype=np.uint16) * 257)
    codes = (rgb16 >> 6) << 6
    pillow_heif.encode("RGB;16", (96, 64), np.ascontiguousarray(codes).tobytes(), str(tmp_path / "deep.hif"),
                       bit_depth=10, quality=-1)
    s = enh.enhance_file(tmp_path / "deep.hif", tmp_path / "deep_out.hif")
    assert pillow_heif.open_heif(str(tmp_path / "deep_out.hif"), convert_hdr_to_8bit=False).info["bit_depth"] == 10
    (tmp_path / "cam").mkdir()
    (tmp_path / "DSCF0001.HIF").rename(tmp_path / "cam" / "DSCF0001.HIF")
    s = enh.enhance_file(tmp_path / "cam", tmp_path / "cam_out")
    assert [p.name for p in (tmp_path / "cam_out").iterdir()] == ["DSCF0001.HIF"]


def _host_warns(text: str, category=RuntimeWarning) -> None:
    """A warning raised by the host's code (this test file, not Pillow or torch), as another thread
    of the host raises one while the library is inside its warnings block."""
    warnings.warn(text, category)


class _HostWarnings:
    """The host's warning state: every warning shown (filter "always"), to its own showwarning."""

    def __enter__(self):
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("always")
        self.seen: list[str] = []
        warnings.showwarning = lambda message, *a, **k: self.seen.append(str(message))
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)


def test_a_photo_read_logs_pillow_warnings_only_and_hands_the_host_its_own(tmp_path, monkeypatch, caplog):
    """Python's warnings state is the whole process's (before 3.14): while a photo was read, every
    warning the host's other threads raised was recorded, lost to the host and logged as a warning
    about the photo. Only Pillow's are the photo's now; the host's reach the host."""
    from stream_gpen.io import _image

    Image.new("RGB", (16, 16), (90, 90, 90)).save(tmp_path / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200)  # 256 px: Pillow's DecompressionBombWarning
    real = _image._load_checked

    def load_while_host_warns(path, notes):
        _host_warns("host warning 1")
        return real(path, notes)

    monkeypatch.setattr(_image, "_load_checked", load_while_host_warns)
    with _HostWarnings() as host, caplog.at_level(logging.WARNING, logger="stream_gpen"):
        _image._load(tmp_path / "a.png")
    assert host.seen == ["host warning 1"]
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "host warning" in m], said
    assert [m for m in said if m.startswith(f"{tmp_path / 'a.png'}: Image size (256 pixels)")], said


def test_model_loads_ignore_torchs_warnings_only(tmp_path, monkeypatch, mobilenet_weights):
    """Reading a checkpoint ignored every warning of the process while torch.load ran (and building
    the detector, the host's UserWarnings naming "pretrained"): the host's other threads' warnings
    were dropped. Only torch's (and torchvision's) are ignored now."""
    import stream_gpen.faces._retinaface as retinaface
    from stream_gpen.faces import FaceDetector
    from stream_gpen.models.loading import read_state_dict

    torch.save({"w": torch.zeros(2)}, tmp_path / "w.pth")
    real_load = torch.load

    def load(*a, **k):
        _host_warns("host warning 2")
        warnings.warn_explicit("torch's own", UserWarning, torch.serialization.__file__, 1,
                               module="torch.serialization")
        return real_load(*a, **k)

    monkeypatch.setattr(torch, "load", load)
    with _HostWarnings() as host:
        assert list(read_state_dict(tmp_path / "w.pth", wrappers=())) == ["w"]
    assert host.seen == ["host warning 2"]

    real_backbone = retinaface.MobileNetBody

    def backbone(*a, **k):  # (while the detector's network is built)
        _host_warns("host: the pretrained cache is stale", UserWarning)
        return real_backbone(*a, **k)

    monkeypatch.setattr(retinaface, "MobileNetBody", backbone)
    with _HostWarnings() as host:
        FaceDetector(backbone="mobilenet0.25", device="cpu", weights=mobilenet_weights)
    assert "host: the pretrained cache is stale" in host.seen, host.seen
