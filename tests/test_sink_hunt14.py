"""Output, interruption and report: the output folder gone at the end, a killed run's fresh
temporary output, a pipe or /dev/null as the output, --report of a run stopped while the model
loads, a second interrupted run, the --audio none notes, and damaged audio copied through."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stream_gpen.cli import main
from stream_gpen.errors import EncodeError, InvalidInputError
from stream_gpen.io import open_source
from stream_gpen.io._meta import hidden_temp
from stream_gpen.io._sink import FileSink, _machine_tag
from tests._clips import copy_through, write_audio, write_video

W, H = 64, 48


def _clip(path: Path, n: int = 10) -> Path:
    return write_video(path, [np.full((H, W, 3), 20 * i, np.uint8) for i in range(n)])


def _sink_with_frames(src: Path, target: Path, **kw) -> FileSink:
    """A sink into ``target`` given every frame of ``src``, not yet closed."""
    with open_source(src) as s:
        sink = FileSink(target, source=s, preset="ultrafast", **kw)
        for f in s:
            sink.write(f)
    return sink


# --- 1. the output folder gone at the end --------------------------------------------------------
def test_an_output_folder_removed_during_the_run_says_nothing_was_saved(tmp_path):
    """Was: "the restored video is complete and is under the hidden name gone/.h...tmp.mp4: move
    it now", and a hint to close a player: neither the folder nor that file existed."""
    src = _clip(tmp_path / "in.mp4")
    (tmp_path / "gone").mkdir()
    sink = _sink_with_frames(src, tmp_path / "gone" / "h.mp4")
    shutil.rmtree(tmp_path / "gone")  # (the encoder goes on writing into the unlinked file)
    with pytest.raises(EncodeError, match=r"the output folder .*gone disappeared during the run .*nothing was "
                                          r"saved") as ei:
        sink.close()
    assert "hidden name" not in str(ei.value) and "move" not in (ei.value.hint or "")
    assert ei.value.exit_code == 4


def test_a_temporary_output_deleted_during_the_run_says_so(tmp_path):
    src = _clip(tmp_path / "in.mp4")
    sink = _sink_with_frames(src, tmp_path / "h.mp4")
    os.unlink(sink._path)
    with pytest.raises(EncodeError, match=r"the temporary output \.h\..*was deleted during the run.*nothing was saved"):
        sink.close()
    assert not (tmp_path / "h.mp4").exists()


# --- 2. a killed run's temporary output, however fresh ------------------------------------------
def test_a_fresh_temporary_output_of_a_killed_run_is_removed(tmp_path):
    """`kill -9`, then the same command again within a minute: the dead run's file was always
    fresh (it was writing until it died), so the 60 s guard kept it for good."""
    src = _clip(tmp_path / "in.mp4", 3)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    target = tmp_path / "h.mp4"
    fresh = hidden_temp(target, f".{_machine_tag()}-{gone}-abcdef12.tmp")
    alive = hidden_temp(target, f".{_machine_tag()}-{os.getppid()}-abcdef13.tmp")
    for q in (fresh, alive):
        q.write_bytes(b"\0" * 1000)  # (written just now)
    sink = copy_through(src, target)
    assert not fresh.exists() and alive.exists() and target.is_file()
    assert any(f"removed {fresh.name} (1,000 bytes)" in f for f in sink.fallbacks), sink.fallbacks


# --- 3. a pipe or a device as the output ---------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_as_the_output_is_refused_not_replaced(tmp_path):
    """The temporary file was renamed over the pipe: its reader waited for ever."""
    src = _clip(tmp_path / "in.mp4", 3)
    fifo = tmp_path / "out.mkv"
    os.mkfifo(fifo)
    with open_source(src) as s, pytest.raises(InvalidInputError, match=r"out\.mkv is a named pipe \(FIFO\)"):
        FileSink(fifo, source=s, overwrite=True)
    assert fifo.is_fifo()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_as_the_output_is_refused_before_the_model_loads(tmp_path, cli_env, monkeypatch, capsys):
    from stream_gpen import commands

    src = _clip(tmp_path / "in.mp4", 3)
    fifo = tmp_path / "out.mkv"
    os.mkfifo(fifo)
    monkeypatch.setattr(commands, "_make_enhancer", lambda *a, **k: pytest.fail("the model was loaded"))
    assert main(["enhance", str(src), "-o", str(fifo), "--overwrite", *cli_env]) == 2
    err = capsys.readouterr().err
    assert "is a named pipe (FIFO)" in err and "-o /dev/null" in err and "exists" not in err
    assert fifo.is_fifo()


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_output_dev_null_restores_and_writes_nothing(tmp_path, cli_env, capsys):
    """Was: "output exists: /dev/null", then with --overwrite "has no extension; name the
    container, e.g. null.mp4"."""
    src = _clip(tmp_path / "in.mp4", 4)
    report = tmp_path / "r.json"
    opts = [o for o in cli_env if o != "--quiet"]
    assert main(["enhance", str(src), "-o", os.devnull, "--report", str(report), *opts]) == 0
    err = capsys.readouterr().err
    assert "wrote nothing (-o /dev/null)" in err and "exists" not in err, err
    r = json.loads(report.read_text())
    assert r["frames_out"] == 4 and r["output"] is None  # (hunt 18: it said "null", the API's name for it)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "in.mp4", "r.json"]  # (nothing else)


# --- 4. --report of a run stopped while the model loads -----------------------------------------
@pytest.mark.parametrize("stop", ["interrupt", "error"])
def test_a_run_stopped_while_the_model_loads_writes_its_report(tmp_path, cli_env, monkeypatch, stop):
    """No report was written, and an earlier run's, saying it succeeded, stayed."""
    from stream_gpen import commands
    from stream_gpen.errors import WeightsNotFoundError

    src = _clip(tmp_path / "in.mp4", 3)
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"frames_in": 3, "frames_out": 3, "interrupted": False, "error": None}))

    def load(*a, **k):
        if stop == "interrupt":
            raise KeyboardInterrupt
        raise WeightsNotFoundError("weights not found: gpen.pth")

    monkeypatch.setattr(commands, "_make_enhancer", load)
    rc = main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), "--report", str(report), "--overwrite", *cli_env])
    assert rc == (130 if stop == "interrupt" else 3)
    r = json.loads(report.read_text())
    assert r["frames_in"] == r["frames_out"] == 0
    if stop == "interrupt":
        assert r["interrupted"] is True and r["error"] is None
    else:
        assert r["interrupted"] is False and "weights not found" in r["error"]
    assert not (tmp_path / "o.mp4").exists()


# --- 5. a second interrupted run -----------------------------------------------------------------
def test_a_second_interrupted_run_keeps_the_first_runs_partial_output(tmp_path):
    """The 90 % part of a first run was replaced by the 2 % part of the rerun, silently."""
    src = _clip(tmp_path / "in.mp4", 6)
    target = tmp_path / "o.mp4"
    first = _sink_with_frames(src, target).interrupt()
    assert first == tmp_path / "o.partial.mp4"
    before = first.read_bytes()
    sink = _sink_with_frames(src, target, overwrite=True)
    second = sink.interrupt()
    assert second == tmp_path / "o.partial-1.mp4" and second.is_file()
    assert first.read_bytes() == before
    assert "an earlier stopped run's o.partial.mp4 was kept as it was; this run's part is o.partial-1.mp4" \
        in sink.fallbacks


# --- 6. the --audio none notes --------------------------------------------------------------------
def _with_audio_and_subtitles(tmp_path: Path) -> Path:
    from tests.test_io_subtitles import with_subtitles

    subs = with_subtitles(tmp_path, "srt", "subs.mkv")
    dst = tmp_path / "av.mkv"
    with av.open(str(subs)) as i, av.open(str(dst), "w") as c:
        v = c.add_stream_from_template(i.streams.video[0])
        s = c.add_stream_from_template(i.streams.subtitles[0])
        a = c.add_stream("aac", rate=48000, layout="stereo")
        for p in i.demux():
            if p.size:
                p.stream = v if p.stream.type == "video" else s
                c.mux(p)
        write_audio(c, a, 0.5)
    return dst


@pytest.mark.parametrize("why", [None, "a camera records video only"])
def test_audio_none_notes_name_the_callers_reason(tmp_path, why):
    """Every run said "(--audio none; a camera records video only)", and subtitles were dropped
    because "no audio [was] asked for"."""
    src = _with_audio_and_subtitles(tmp_path)
    kw = {"no_audio_why": why} if why else {}
    with open_source(src) as s:
        with FileSink(tmp_path / "o.mp4", source=s, preset="ultrafast", audio="none", **kw) as sink:
            for f in s:
                sink.write(f)
    reason = why or "--audio none"
    assert sorted(d.split(" stream")[0] for d in sink.dropped) == ["audio", "subtitle"], sink.dropped
    for d in sink.dropped:
        assert d.endswith(f"({reason})") and ";" not in d, d
        if d.startswith("audio"):
            assert "dropped: no audio asked for" in d
        else:
            assert "(subrip) dropped: left out with the audio" in d


def test_camera_from_a_file_with_audio_says_a_camera_records_video_only(tmp_path, det_home, capsys):
    """camera passes its own reason to the sink: it said "(--audio none)", an option camera lacks."""
    src = _with_audio_and_subtitles(tmp_path)
    assert main(["camera", str(src), "--model", "classic", "--detect-size", "96", "-o",
                 str(tmp_path / "rec.mp4"), "--frames", "3"]) == 0
    notes = [n for n in capsys.readouterr().err.splitlines() if "dropped:" in n]
    assert any("no audio asked for (a camera records video only)" in n for n in notes), notes
    assert not any("--audio none" in n for n in notes), notes


# --- 7. damaged audio copied through ---------------------------------------------------------------
def _damaged_audio(path: Path, every: int = 5) -> int:
    """A 2 s mp4 with AAC whose every ``every``-th audio packet is zeroed in the file (the video
    untouched); the number zeroed."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        a = c.add_stream("aac", rate=48000, layout="stereo")
        for i in range(50):
            f = av.VideoFrame.from_ndarray(np.full((H, W, 3), 5 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        write_audio(c, a, 2.0)
    with av.open(str(path)) as c:
        spots = [(p.pos, p.size) for p in c.demux(c.streams.audio[0]) if p.size]
    data = bytearray(path.read_bytes())
    hit = spots[2::every]
    for pos, size in hit:
        data[pos:pos + size] = bytes(size)
    path.write_bytes(bytes(data))
    return len(hit)


def _undecodable(path: Path) -> int:
    with av.open(str(path)) as c:
        s, bad = c.streams.audio[0], 0
        for p in c.demux(s):
            if p.size:
                try:
                    s.codec_context.decode(p)
                except av.error.FFmpegError:
                    bad += 1
        return bad


def test_damaged_audio_packets_copied_through_are_counted(tmp_path):
    """They were copied as they were and nothing said so: players click or go silent there."""
    src = tmp_path / "d.mp4"
    _damaged_audio(src)
    bad = _undecodable(src)
    assert bad > 0
    sink = copy_through(src, tmp_path / "o.mkv")
    assert _undecodable(tmp_path / "o.mkv") == bad  # (copied, as before)
    assert f"audio stream #1: {bad} damaged packet(s) copied as they were (the decoder cannot read them: players " \
           "may click or go silent there)" in sink.fallbacks, sink.fallbacks


def test_clean_audio_copied_through_says_nothing(tmp_path):
    src = tmp_path / "c.mp4"
    with av.open(str(src), "w") as c:
        a = c.add_stream("aac", rate=48000, layout="stereo")
        v = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        for i in range(25):
            f = av.VideoFrame.from_ndarray(np.zeros((H, W, 3), np.uint8), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        write_audio(c, a, 1.0)
    sink = copy_through(src, tmp_path / "o.mp4")
    assert not [f for f in sink.fallbacks if "damaged" in f], sink.fallbacks


def test_a_folder_with_dev_null_is_told_it_needs_an_output_folder(tmp_path, capsys):
    """A folder input with -o /dev/null was refused as "a device", with a hint offering -o /dev/null."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "a.jpg").write_bytes(b"x")
    assert main(["enhance", str(lib), "-o", os.devnull, "--model", "classic", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"a folder input needs an output folder: -o {os.devnull} (write nothing) takes one file" in err, err
    assert "is a device" not in err


def test_option_and_input_errors_write_a_report_that_says_why(tmp_path, capsys, cli_env):
    """An exit-2 error after the command line parsed (a mistyped --model, --crf 99, an input not
    found, a part past the end) writes a report with ``error`` and zero counts. Session 14 made them
    all write none (a mistyped --model wrote one, --crf 99 none); an earlier run's report under that
    name then still said it had succeeded (hunt 18)."""
    import json

    src = _clip(tmp_path / "in.mp4", 3)
    report = tmp_path / "r.json"
    assert main(["enhance", str(src), "-o", str(tmp_path / "ok.mp4"), *cli_env, "--report", str(report)]) == 0
    assert json.loads(report.read_text())["error"] is None
    for extra, said in ((["--model", "gpen-bfr-51"], "unknown model"), (["--crf", "99"], "crf"),
                        (["--start", "100"], "past the end")):
        assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), *cli_env, *extra, "--report", str(report)]) == 2
        assert said in capsys.readouterr().err.lower()
        r = json.loads(report.read_text())
        assert said in r["error"].lower() and r["frames_out"] == 0, (extra, r)
    assert main(["enhance", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o.mp4"), "--report", str(report)]) == 2
    assert "input not found" in json.loads(report.read_text())["error"]
    # a report path that is no earlier report is still refused, and left as it was
    other = tmp_path / "notes.json"
    other.write_text("[1, 2]")
    assert main(["enhance", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o.mp4"), "--report", str(other)]) == 2
    assert other.read_text() == "[1, 2]"


def test_dash_o_null_on_the_command_line_is_a_path(tmp_path, monkeypatch, face, det_home):
    """The API's "null" output leaked to the command line: `-o null` wrote nothing and said
    "wrote null", and a folder run into a folder named null was refused. Only -o /dev/null is
    the null output there."""
    lib = tmp_path / "lib"
    lib.mkdir()
    face.save(lib / "a.jpg")
    monkeypatch.chdir(tmp_path)
    assert main(["enhance", "lib", "-o", "null", "--model", "classic", "--device", "cpu", "--quiet",
                 "--detect-size", "96"]) == 0
    assert (tmp_path / "null" / "a.jpg").is_file()


def test_a_dry_run_checks_the_video_options(tmp_path, capsys):
    """-o /dev/null passed --crf 99 that the real run refuses."""
    src = _clip(tmp_path / "in.mp4", 3)
    assert main(["enhance", str(src), "-o", os.devnull, "--crf", "99", "--model", "classic", "--device", "cpu"]) == 2
    assert "crf" in capsys.readouterr().err


def test_camera_dev_null_is_the_null_output(tmp_path, det_home, capsys):
    """camera -o /dev/null was refused after the model loaded, its hint offering -o /dev/null."""
    assert main(["camera", "lavfi:testsrc2=size=64x48:rate=25", "--model", "classic", "--detect-size", "96",
                 "-o", os.devnull, "--frames", "2"]) == 0
    assert "is a device" not in capsys.readouterr().err


def test_camera_writes_its_report_when_the_model_fails_to_load(tmp_path, det_home):
    """camera --report was not written when the model failed to load: an earlier success stayed."""
    report = tmp_path / "r.json"
    report.write_text('{"old": "success"}')
    rc = main(["camera", "lavfi:testsrc2=size=64x48:rate=25", "--model", "gpen-bfr-256", "--device", "cpu",
               "-o", os.devnull, "--frames", "2", "--report", str(report), "--overwrite"])
    assert rc != 0
    r = json.loads(report.read_text())
    assert "old" not in r and r["error"], r
