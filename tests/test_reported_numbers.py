"""What a run reports about itself, checked against what it did: interrupted runs' counts, a
failed run's report, damaged frames, the progress bar's end, camera latency in the report."""
from __future__ import annotations

import json
import threading

import av
import numpy as np
import pytest

import stream_gpen
from stream_gpen.cli import main
from tests._doubles import SolidRestorer


def _video(shared):
    return str(shared / "data/videos/retalking_face2_frontal_talking_head.mp4")


def test_an_interrupted_run_counts_what_its_partial_output_holds(shared, mobilenet_weights, tmp_path):
    """Cancelled after 5 frames, the summary counted the faces of frames restored but never
    written (32 faces for 26 in the partial output), and the frames read ahead as neither
    written nor dropped."""
    from stream_gpen import Enhancer

    enh = Enhancer(model=SolidRestorer(), device="cpu", detector_weights=mobilenet_weights, batch_size=8)
    stop = threading.Event()

    def progress(done, total, faces):
        if done >= 5:
            stop.set()

    with pytest.raises(stream_gpen.Cancelled) as e:
        enh.enhance_file(_video(shared), tmp_path / "o.mp4", duration=1.0, cancel=stop, on_progress=progress)
    s = e.value.summary
    with av.open(s.partial_output) as c:
        written = sum(1 for _ in c.decode(video=0))
    assert s.frames_out == written and s.frames_in == s.frames_out + s.frames_dropped
    assert s.faces_restored == s.frames_with_faces == written  # one face a frame, in the partial output


def test_a_failed_run_writes_its_report_with_the_error(tmp_path, cli_env, monkeypatch, capsys):
    """An encode that fails (exit 4) wrote no report, and left an earlier run's, which said it had
    succeeded, under the name asked for."""
    from tests._clips import write_video

    src = write_video(tmp_path / "a.mp4", [np.full((48, 64, 3), 9 * i, np.uint8) for i in range(6)])
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), "--report", str(report), *cli_env]) == 0
    assert json.loads(report.read_text())["error"] is None
    from stream_gpen.io import _sink

    def refuse(self, *a, **k):
        raise OSError(27, "File too large")

    monkeypatch.setattr(_sink.FileSink, "_finish_container", refuse)
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), "--report", str(report), "--overwrite",
                 *cli_env]) == 4
    r = json.loads(report.read_text())
    assert r["error"] and "File too large" in r["error"] and r["input"] == str(src)
    # what it did, counted as an interrupted run's are: nothing was written, nothing is "out"
    assert r["frames_out"] == 0 and r["frames_in"] == r["frames_dropped"] == 6 and r["detector_calls"] > 0
    # an error found before the run (an input that does not open) writes one with zero counts
    # (session 18: it wrote none, and an earlier run's report under that name still said it had succeeded)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    assert main(["enhance", str(tmp_path / "bad.mp4"), "-o", str(tmp_path / "o2.mp4"), "--report", str(report),
                 *cli_env]) == 2
    r = json.loads(report.read_text())
    assert r["error"] and r["input"] == str(tmp_path / "bad.mp4") and r["frames_in"] == r["frames_out"] == 0


def test_concealed_frames_are_in_the_summary(tmp_path, cli_env):
    """Frames FFmpeg concealed (damaged, shown patched) were said only as a stderr warning: the
    summary and --report said 0 corrupt and no word of damage."""
    from tests._clips import ts_clip

    data = ts_clip(tmp_path / "a.ts", 25)
    rng = np.random.default_rng(1)
    vids = [i for i in range(0, len(data), 188) if data[i] == 0x47 and (data[i + 1] & 0x1F, data[i + 2]) == (0x01, 0x00)]
    for i in vids[3::2]:  # payload bytes of half the video TS packets, headers intact
        for k in rng.integers(i + 20, i + 188, 6):
            data[int(k)] ^= 0xFF
    (tmp_path / "bad.ts").write_bytes(bytes(data))
    report = tmp_path / "r.json"
    main(["enhance", str(tmp_path / "bad.ts"), "-o", str(tmp_path / "o.mp4"), "--report", str(report), *cli_env])
    r = json.loads(report.read_text())
    assert any("damaged frame(s) concealed" in f for f in r["fallbacks"]), r["fallbacks"]


def test_camera_latency_is_its_own_field_not_a_stage(tmp_path, cli_env):
    report = tmp_path / "r.json"
    assert main(["camera", "lavfi:testsrc2=size=64x48:rate=25", "--frames", "10", "-o", str(tmp_path / "c.mp4"),
                 "--report", str(report), *cli_env]) == 0
    r = json.loads(report.read_text())
    assert "mean_added_latency" not in r["stage_seconds"]
    assert isinstance(r["mean_added_latency"], float) and r["mean_added_latency"] >= 0


def test_a_finished_runs_progress_bar_ends_at_its_count():
    """The total is an estimate (a Matroska duration with an audio tail: 100 for 25 frames):
    a finished run's bar ended at 25%."""
    from stream_gpen.commands import _Progress

    p = _Progress(True, "x")
    p.enabled = True  # (stderr is not a terminal here)
    p(25, 100, 3)
    bar = p.bar
    p.close(finished=True)
    assert (bar.n, bar.total) == (25, 25)


def test_info_faces_samples_distinct_frames_of_the_video_itself(tmp_path, mobilenet_weights):
    """`info --faces` spread its 8 samples over the container's duration: with 1 s of video in
    4 s of sound, six fell after the video and were dropped unsaid; a 3-frame clip counted the
    same frames again and again. A folder says it is not sampled."""
    from stream_gpen.commands import describe_input, sample_faces
    from tests._clips import ts_clip

    def clip(path, n_video, audio_s):
        ts_clip(path, n_video, audio_s=audio_s)
        return str(path)

    for name in ("tail.mp4", "tail.mkv"):  # (Matroska gives no frame count to go by)
        long_tail = clip(tmp_path / name, 25, 4.0)
        r = sample_faces(long_tail, describe_input(long_tail), weights=mobilenet_weights)
        assert r["frames_sampled"] == 8 and len(r["per_frame"]) == 8, name
    short = clip(tmp_path / "short.mp4", 3, 0.12)
    r = sample_faces(short, describe_input(short), weights=mobilenet_weights)
    assert 1 <= r["frames_sampled"] <= 3 and len(r["per_frame"]) == r["frames_sampled"]
    (tmp_path / "f").mkdir()
    r = sample_faces(str(tmp_path / "f"), {"kind": "folder"}, weights=mobilenet_weights)
    assert r["frames_sampled"] == 0 and "one video or photo" in r["note"]


def test_a_damaged_cached_detector_names_its_own_option(tmp_path, monkeypatch, caplog):
    """The warning for a damaged detector file in the cache said to pass it with "--weights /
    path=", which loads a GPEN checkpoint (and path= is no Enhancer keyword)."""
    from stream_gpen.weights import find_weights

    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path))
    (tmp_path / "detection_mobilenet0.25_Final.pth").write_bytes(b"x" * 1000)
    assert find_weights("retinaface-mobilenet0.25") is None
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "--detector-weights PATH (detector_weights= in Python)" in said and "path=" not in said.replace(
        "detector_weights=", "")


def test_a_mistyped_stream_url_scheme_is_said_as_such(tmp_path, cli_env, capsys):
    """`--stream rmtp://host/live/key` was taken for a local file ("has no extension; name the
    container, e.g. key.mp4"); `-o rmtp://...` for a missing folder."""
    assert main(["camera", "lavfi:testsrc2=size=64x48:rate=25", "--frames", "3", "--stream",
                 "rmtp://127.0.0.1/live/key", *cli_env]) == 2
    assert "stream URL scheme 'rmtp' is not one of" in capsys.readouterr().err
    assert not any(p.name.startswith("rmtp") for p in tmp_path.iterdir())


def test_a_photo_url_that_fails_on_the_server_side_is_exit_4(tmp_path, cli_env, capsys):
    """A photo URL answered 503 exited 2 ("not found") with no hint; a video URL's 5xx is 4, as
    the README says for a server error (a retry may work)."""
    import http.server

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(503)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/photo.jpg"
        assert main(["enhance", url, "-o", str(tmp_path / "o.jpg"), *cli_env]) == 4
        assert "try again later" in capsys.readouterr().err
    finally:
        srv.shutdown()


def test_a_photo_the_disk_refuses_is_said_under_its_own_name(tmp_path, cli_env, capsys, monkeypatch):
    from PIL import Image

    photo = tmp_path / "p.jpg"
    Image.new("RGB", (40, 32)).save(photo)
    from pathlib import Path

    real = Path.write_bytes

    def refuse(self, data):
        if ".tmp." in self.name:
            raise OSError(30, "Read-only file system", str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", refuse)
    assert main(["enhance", str(photo), "-o", str(tmp_path / "o.jpg"), *cli_env]) == 4
    err = capsys.readouterr().err
    # (api29: the project's error, naming the output's folder: a bare OSError before)
    assert f"error: cannot write into the output folder {tmp_path}: it is on a read-only drive" in err, err
    assert ".tmp." not in err


def test_camera_says_the_output_exists_before_the_model_loads(tmp_path, cli_env, capsys, monkeypatch):
    from stream_gpen import commands

    (tmp_path / "c.mp4").write_bytes(b"an earlier recording")
    monkeypatch.setattr(commands, "_make_enhancer", lambda args: pytest.fail("the model was loaded"))
    assert main(["camera", "lavfi:testsrc2=size=64x48:rate=25", "--frames", "3", "-o", str(tmp_path / "c.mp4"),
                 *cli_env]) == 2
    err = capsys.readouterr().err
    assert "output exists" in err and "pass --overwrite or choose another -o" in err
