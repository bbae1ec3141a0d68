"""Hunt 20 (camera20): a network source that drops before its first frame is decoded ends as a
source that closed (exit 4), not an AttributeError (exit 1); `camera -o preview|virtualcam`
names a file (and is refused without an extension); `camera -o null` writes nothing and says so."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from stream_gpen.errors import SourceClosedError
from stream_gpen.io._source import VideoSource


def _source_whose_reconnects_ran_out(interrupt=False):
    src = SimpleNamespace(trim_start=0, _cut_before_first=None, stats={"corrupt_packets": 0}, _use_nvdec=False)
    src._container = SimpleNamespace(close=lambda: None)

    def frames():
        src._container = None  # (the reconnect loop retired it, and the last reopen failed)
        if interrupt:
            raise KeyboardInterrupt
        raise SourceClosedError("udp://127.0.0.1:1: no data for 10 s after 5 reconnects")
        yield

    src._frames = frames()
    src._close_container = lambda: VideoSource._close_container(src)
    return src


@pytest.mark.parametrize("interrupt, error", [(False, SourceClosedError), (True, KeyboardInterrupt)])
def test_a_drop_before_the_first_frame_is_the_sources_end_not_an_internal_error(interrupt, error):
    with pytest.raises(error):
        VideoSource._first_frame(_source_whose_reconnects_ran_out(interrupt))


@pytest.mark.parametrize("name", ["preview", "virtualcam", "rec"])
def test_camera_output_names_without_an_extension_are_refused_before_the_model_loads(tmp_path, cli_env, capsys,
                                                                                     monkeypatch, name):
    import stream_gpen.commands as commands
    from stream_gpen.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(commands, "_make_enhancer", lambda *a, **k: pytest.fail("the model loaded first"))
    assert main(["camera", "lavfi:testsrc2=size=64x48:rate=5", "-o", name, "--frames", "2", *cli_env]) == 2
    err = capsys.readouterr().err
    assert "has no extension" in err and f"{name}.mp4" in err, err
    assert not (tmp_path / name).exists()


def test_camera_o_null_writes_nothing_and_does_not_say_it_wrote(tmp_path, cli_env, capsys, monkeypatch):
    from stream_gpen.cli import main

    monkeypatch.chdir(tmp_path)
    cli = [a for a in cli_env if a != "--quiet"]
    assert main(["camera", "lavfi:testsrc2=size=64x48:rate=5", "-o", "null", "--frames", "2", *cli]) == 0
    assert "wrote null" not in capsys.readouterr().err
    assert not (tmp_path / "null").exists()


def test_a_stop_while_the_camera_opens_is_an_interrupted_start_with_its_report(tmp_path, cli_env, capsys, monkeypatch):
    import json

    from stream_gpen.api import Enhancer
    from stream_gpen.cli import main

    def opening(self, *a, **k):
        raise KeyboardInterrupt("SIGTERM received")

    monkeypatch.setattr(Enhancer, "_open", opening)
    report = tmp_path / "r.json"
    code = main(["camera", "lavfi:testsrc2=size=64x48:rate=5", "-o", str(tmp_path / "rec.mp4"),
                 "--report", str(report), *cli_env])
    assert code == 130  # (143 when the real signal handler saw SIGTERM; it said "stopped", exit 0)
    assert json.loads(report.read_text())["interrupted"] is True
    assert not (tmp_path / "rec.mp4").exists()
