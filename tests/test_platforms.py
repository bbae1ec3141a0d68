"""What differs on macOS and Windows, simulated here (Linux): case-insensitive disks, a stdout in
the ANSI code page, no /proc for the CPU's bf16 instructions, Ctrl-Break, a file another program
holds open."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stream_gpen.cli import main


@pytest.fixture
def case_folding(tmp_path, monkeypatch):
    """``trip`` as a second name of ``Trip`` (a link standing in for the disk's case folding),
    with ``resolve()`` keeping the name as typed, as macOS's realpath does."""
    (tmp_path / "Trip").mkdir()
    os.symlink(tmp_path / "Trip", tmp_path / "trip")
    monkeypatch.setattr(Path, "resolve", lambda self, strict=False: Path(os.path.abspath(self)))
    return tmp_path


def _photo(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (40, 32), (120, 90, 60)).save(path)
    return path


def test_a_folder_run_into_its_own_folder_by_another_case_is_refused(case_folding, cli_env, capsys):
    """`enhance Trip -o trip --overwrite` on macOS replaced the original photos: the guard compared
    resolved paths, which keep the case typed there."""
    photo = _photo(case_folding / "Trip" / "photo.jpg")
    data = photo.read_bytes()
    assert main(["enhance", str(case_folding / "Trip"), "-o", str(case_folding / "trip"), "--overwrite", *cli_env]) == 2
    assert "is the input folder" in capsys.readouterr().err
    assert photo.read_bytes() == data


def test_a_photo_into_its_own_folder_by_another_case_gets_its_default_name(case_folding, cli_env):
    photo = _photo(case_folding / "Trip" / "photo.jpg")
    data = photo.read_bytes()
    assert main(["enhance", str(photo), "-o", str(case_folding / "trip"), "--overwrite", *cli_env]) == 0
    assert photo.read_bytes() == data and (case_folding / "Trip" / "photo_enhanced.jpg").is_file()


def test_an_output_folder_inside_the_input_is_left_out_by_another_case(case_folding):
    from stream_gpen.io._image import folder_media

    _photo(case_folding / "Trip" / "a.jpg")
    (case_folding / "Trip" / "out").mkdir()
    _photo(case_folding / "Trip" / "out" / "a.jpg")  # an earlier run's output
    images, _, _ = folder_media(case_folding / "Trip", case_folding / "trip" / "out")
    assert [q.name for q in images] == ["a.jpg"] and "out" not in images[0].parts


def test_info_into_a_file_under_the_ansi_code_page_does_not_crash(tmp_path):
    """Windows: a redirected stdout is cp1252 with strict errors; `info 東京.png > out.txt` crashed
    half-way ("internal error: UnicodeEncodeError")."""
    photo = _photo(tmp_path / "東京.png")
    env = dict(os.environ, PYTHONIOENCODING="cp1252")
    r = subprocess.run([sys.executable, "-m", "stream_gpen", "info", str(photo)], capture_output=True, env=env,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert b"\\u6771\\u4eac.png" in r.stdout and b"format" in r.stdout


def test_bf16_is_found_without_proc_cpuinfo(monkeypatch):
    """Windows/macOS have no /proc/cpuinfo: a Zen 4 or Sapphire Rapids kept fp32 there, its
    summary saying the CPU had no native bf16. torch's own CPU probe says it."""
    import torch

    from stream_gpen.runtime import _device

    if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        pytest.skip("this torch's oneDNN has no bf16")

    class NoProc(type(Path())):
        def read_text(self, *a, **k):
            raise FileNotFoundError(2, "No such file or directory", str(self))

    monkeypatch.setattr(_device, "Path", NoProc)
    try:
        for amx, avx, want in ((False, True, "avx512_bf16"), (True, True, "amx_bf16"), (False, False, None)):
            monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
            monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx: v, raising=False)
            _device.cpu_bf16_feature.cache_clear()
            assert _device.cpu_bf16_feature() == want
    finally:
        _device.cpu_bf16_feature.cache_clear()


def test_ctrl_break_is_taken_as_an_interrupt_where_it_exists(monkeypatch):
    """Windows has no SIGHUP: Ctrl-Break and closing the console window come as SIGBREAK, which
    ended the run without finishing its output."""
    from stream_gpen.cli import _Signals

    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR1, raising=False)
    old = signal.getsignal(signal.SIGUSR1)
    with _Signals() as s:
        assert signal.getsignal(signal.SIGUSR1) == s._handle
    assert signal.getsignal(signal.SIGUSR1) == old


def test_an_earlier_partial_held_open_does_not_fail_a_finished_run(tmp_path, monkeypatch, mobilenet_weights):
    """Windows: removing an earlier run's `.partial` that a player holds open raised
    PermissionError after the output was written (exit 4); it is said, and the run succeeds."""
    import av
    import numpy as np

    from stream_gpen import Enhancer

    src = tmp_path / "a.mp4"
    with av.open(str(src), "w") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            for p in st.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    from stream_gpen.io._partials import remember_partial

    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    partial = tmp_path / "o.partial.mp4"
    partial.write_bytes(b"an interrupted run's output")
    remember_partial(partial)  # (as the interrupted run that wrote it records it)
    real = Path.unlink

    def unlink(self, missing_ok=False):
        if self.name == partial.name:
            raise PermissionError(13, "Access is denied", str(self))
        return real(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    enh = Enhancer(model="classic", device="cpu", detector_weights=mobilenet_weights)
    summary = enh.enhance_file(src, tmp_path / "o.mp4")
    assert (tmp_path / "o.mp4").is_file() and partial.is_file()
    assert any("could not be removed (Access is denied)" in f for f in summary.fallbacks)
