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


def test_a_stalled_network_source_is_said_as_no_data_for_its_timeout(tmp_path, caplog):
    """A live source whose data stops: the read timeout ended it as FFmpeg's "Immediate exit
    requested", which the reconnect warning passed on."""
    import http.server
    import threading
    import time

    from _clips import ts_clip
    from stream_gpen.io import open_source

    # each connection a later part of a live feed (the same bytes again would be a file replayed)
    parts = [bytes(ts_clip(tmp_path / f"c{k}.ts", n=50, t0=10.0 * k)) for k in range(3)]
    release = threading.Event()
    served = []

    class Stalls(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = parts[min(len(served), 2)]
            served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            release.wait(10)  # (the feed stalls, the connection stays open)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalls)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/live.ts"
    try:
        caplog.set_level("WARNING", logger="stream_gpen")
        try:
            with open_source(url, live=True, reconnect=1, reconnect_delay_s=0.01, timeout_s=0.5) as src:
                for f in src:
                    f.release()
                    if len(served) > 1:
                        break
        except SourceClosedError as e:
            assert "Immediate exit" not in str(e)
        said = caplog.text
        assert "dropped (no data for 0.5 s); reconnecting" in said and "Immediate exit" not in said, said
    finally:
        release.set()
        srv.shutdown()
        time.sleep(0.05)


def test_a_stop_in_the_cameras_first_moments_writes_its_report(tmp_path, cli_env, monkeypatch):
    import json

    import stream_gpen.commands as commands
    from stream_gpen.cli import main

    report = tmp_path / "r.json"
    report.write_text(json.dumps({"frames_out": 3, "interrupted": False}))  # an earlier run's: "succeeded"

    def stopped(args):
        raise KeyboardInterrupt("SIGTERM received")

    monkeypatch.setattr(commands, "_check_camera_encoding", stopped)
    code = main(["camera", "lavfi:testsrc2=size=64x48:rate=5", "-o", str(tmp_path / "rec.mp4"), "--overwrite",
                 "--report", str(report), *cli_env])
    assert code == 130
    assert json.loads(report.read_text())["interrupted"] is True


def test_a_stop_while_a_finished_session_prints_keeps_its_report(tmp_path, cli_env, monkeypatch):
    import json

    from stream_gpen.cli import main
    from stream_gpen.summary import RunSummary

    def printing(self):
        raise KeyboardInterrupt  # (Ctrl-C as the summary is printed)

    monkeypatch.setattr(RunSummary, "format", printing)
    report = tmp_path / "r.json"
    cli = [a for a in cli_env if a != "--quiet"]
    code = main(["camera", "lavfi:testsrc2=size=64x48:rate=5", "-o", str(tmp_path / "rec.mp4"), "--frames", "3",
                 "--report", str(report), *cli])
    assert code == 130
    r = json.loads(report.read_text())
    assert r["frames_out"] == 3 and not r["interrupted"]  # (it said: stopped before the run began)
    assert (tmp_path / "rec.mp4").exists()


def test_stream_frames_repeats_with_a_look_ahead_take_their_pictures_faces(shared, mobilenet_weights):
    import av
    import numpy as np

    from stream_gpen import Enhancer
    from tests._doubles import SolidRestorer

    pics = []
    with av.open(str(shared / "data/videos/retalking_face2_frontal_talking_head.mp4")) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % 2 == 0:
                pics.append(np.asarray(f.to_image().resize((192, 192))))
            if len(pics) == 5:
                break
    enh = Enhancer(SolidRestorer(256), device="cpu", detector_weights=mobilenet_weights, progress=False)
    out = [f.image for f in enh.stream_frames([p for p in pics for _ in range(2)], fps=25, live=False)]
    assert len(out) == 10  # (5 repeats may wait with a look-ahead of 5: its repeats_held stayed 4, the 5th was tracked)
    for k in range(5):
        assert np.array_equal(out[2 * k], out[2 * k + 1]), k
