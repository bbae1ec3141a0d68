"""Shared test fixtures: where ../shared lives, CUDA marker handling."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``../shared`` beside the repo, or ``$STREAM_GPEN_SHARED``."""
    return Path(os.environ.get("STREAM_GPEN_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not path.is_dir():
        # CI has ../shared: a missing folder is a set-up error, not a reason to skip.
        pytest.fail(f"shared assets not found at {path}; set STREAM_GPEN_SHARED")
    return path


@pytest.fixture(autouse=True)
def _signals_heard():
    """The signal tests send the process SIGINT/SIGTERM/SIGHUP and expect the command line's
    handler (``cli._Signals``) to take it; that handler leaves alone a signal the process was
    started with ignored (``nohup``, a script's ``cmd &``), as it should for the real program.
    A suite started that way failed them (the first Ctrl-C "did not stop the run", a SIGHUP
    never reached the server), so a test starts with such a signal at its default."""
    import signal

    ignored = [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None))
               if s is not None and signal.getsignal(s) == signal.SIG_IGN]
    for s in ignored:
        signal.signal(s, signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL)
    yield
    for s in ignored:
        signal.signal(s, signal.SIG_IGN)


@pytest.fixture(autouse=True)
def _grad_mode_kept():
    """The bench scripts' main() turns autograd off for the thread that calls it (a script's
    whole life); the tests that run one in-process left it off for every later test of the
    suite (test_gpen_model's autograd-form tests, test_host_program's training step failed)."""
    import torch

    was = torch.is_grad_enabled()
    yield
    torch.set_grad_enabled(was)


@pytest.fixture(autouse=True)
def _photos_encoded(monkeypatch):
    """The suite's photos are mostly noise without faces, which a run copies as they are
    (``ImageSink.copy_unchanged``): here every photo goes through the writer, whose paths those
    tests check; the copy's own tests turn it back on."""
    from stream_gpen.io._image import ImageSink

    monkeypatch.setattr(ImageSink, "copy_unchanged", False)


@pytest.fixture(scope="session")
def gpen_fixtures(shared: Path) -> Path:
    return shared / "fixtures" / "gpen"


@pytest.fixture(scope="session")
def tiny_sd(gpen_fixtures: Path):
    """The tiny 64-px GPEN's golden state dict (random weights, the official implementation's)."""
    import torch

    return torch.load(gpen_fixtures / "gpen_tiny64_state_dict.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="session")
def tiny_io(gpen_fixtures: Path):
    """The tiny 64-px GPEN's golden (input, output)."""
    import torch

    load = lambda n: torch.load(gpen_fixtures / n, map_location="cpu", weights_only=True)  # noqa: E731
    return load("gpen_tiny64_input.pt"), load("gpen_tiny64_output.pt")


@pytest.fixture(scope="session")
def mobilenet_weights(shared: Path) -> Path:
    return shared / "weights" / "detection_mobilenet0.25_Final.pth"


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    """A checkpoint file of the tiny random-weight GPEN (what ``--model PATH`` takes)."""
    import torch

    from stream_gpen.models.gpen import TINY_CONFIG, random_generator

    path = tmp_path_factory.mktemp("ckpt") / "tiny64.pth"
    torch.save(random_generator(TINY_CONFIG, seed=1).state_dict(), path)
    return path


@pytest.fixture
def det_home(tmp_path, monkeypatch, mobilenet_weights):
    """A weights cache holding the real MobileNet detector and nothing else; downloads off."""
    home = tmp_path / "home"
    home.mkdir()
    os.symlink(mobilenet_weights, home / mobilenet_weights.name)
    monkeypatch.setenv("STREAM_GPEN_HOME", str(home))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    return home


@pytest.fixture
def cli_env(tmp_path, monkeypatch, mobilenet_weights):
    """Command-line options for a quick offline run: the classic enhancer on the CPU, the real
    detector, a weights cache of the test's own, downloads off, no progress."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("STREAM_GPEN_HOME", str(home))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    return ["--model", "classic", "--device", "cpu", "--detector-weights", str(mobilenet_weights), "--quiet"]


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_runtest_setup(item):
    if item.get_closest_marker("cuda") is None or _cuda_available():
        return
    if os.environ.get("STREAM_GPEN_REQUIRE_CUDA") == "1":
        pytest.fail("CUDA required (STREAM_GPEN_REQUIRE_CUDA=1) but torch sees no CUDA device")
    pytest.skip("needs CUDA")


@pytest.fixture
def made_sinks(monkeypatch):
    """The file/stream sinks a run opens (``open_sink``), kept for inspection."""
    from stream_gpen.io import FileSink, _open

    made = []

    class Recording(FileSink):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

    monkeypatch.setattr(_open, "FileSink", Recording)
    return made


@pytest.fixture(scope="module")
def enh(mobilenet_weights):
    """An Enhancer with the identity restorer and the real detector (the photo tests'; a module
    that needs another defines its own ``enh``)."""
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    return Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False)


@pytest.fixture
def face(shared):
    """A real face photo, small (96x64 RGB Pillow image)."""
    from PIL import Image

    return Image.open(shared / "data/faces/whole/codeformer_whole_04.jpg").convert("RGB").resize((96, 64))
