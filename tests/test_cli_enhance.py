"""`stream-gpen enhance` / `camera`: outputs, errors and exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from stream_gpen.cli import main


def _run(*args) -> int:
    return main([str(a) for a in args])


def test_enhance_image_default_output_and_report(tmp_path, shared, tiny_ckpt, det_home, capsys):
    import shutil

    img = tmp_path / "face.jpg"
    shutil.copy(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg", img)
    report = tmp_path / "r.json"
    assert _run("enhance", img, "--model", tiny_ckpt, "--device", "cpu", "--report", report) == 0
    out = tmp_path / "face_enhanced.jpg"
    assert out.is_file()
    data = json.loads(report.read_text())
    assert data["faces_restored"] == 2 and data["frames_out"] == 1 and data["device"] == "cpu"
    # Refuses to clobber without --overwrite: exit code 2, one line, no traceback.
    assert _run("enhance", img, "--model", tiny_ckpt, "--device", "cpu") == 2
    err = capsys.readouterr().err
    assert "output exists" in err and "--overwrite" in err and "Traceback" not in err
    capsys.readouterr()
    assert _run("enhance", img, "--model", tiny_ckpt, "--device", "cpu", "--overwrite") == 0
    assert "inferred GPENConfig" in capsys.readouterr().err  # an info line, shown by default
    assert _run("enhance", img, "--model", tiny_ckpt, "--device", "cpu", "--overwrite", "--quiet") == 0
    assert "inferred GPENConfig" not in capsys.readouterr().err  # --quiet: warnings and errors only


def test_enhance_part_of_a_video(tmp_path, shared, tiny_ckpt, det_home):
    """--start/--duration: 1.5 s from 0:02 of the talking head, written from 0 with its audio."""
    src = shared / "data/videos/retalking_face2_frontal_talking_head.mp4"
    dst = tmp_path / "part.mp4"
    report = tmp_path / "r.json"
    assert _run("enhance", src, "-o", dst, "--model", tiny_ckpt, "--device", "cpu", "--quiet", "--preset",
                "ultrafast", "--start", "0:02", "--duration", "1.5", "--report", report) == 0
    assert json.loads(report.read_text())["frames_out"] == 38
    with av.open(str(dst)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 38
    with av.open(str(dst)) as c:
        audio = sum(float(p.duration * p.time_base) for p in c.demux(audio=0) if p.size)
    assert abs(audio - 1.5) < 0.05


def test_enhance_video_keeps_audio(tmp_path, shared, tiny_ckpt, det_home):
    src = shared / "data/videos/retalking_face2_frontal_talking_head.mp4"
    dst = tmp_path / "o.mp4"
    assert _run("enhance", src, "-o", dst, "--model", tiny_ckpt, "--device", "cpu", "--quiet",
                "--preset", "ultrafast", "--detect-every", "10") == 0
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert sum(1 for _ in c.decode(video=0)) == 125


@pytest.mark.parametrize(
    "args, code, text",
    [
        (["enhance", "/no/such/file.mp4"], 2, "input not found"),
        (["enhance", "{garbage}", "--device", "cpu", "--model", "classic"], 2, ""),
        (["enhance", "{img}", "--model", "gpen-bfr-9000", "--device", "cpu"], 2, "unknown model"),
        (["enhance", "{img}", "--model", "auto", "--device", "cpu"], 3, "GPEN-BFR-256.pth"),
        (["enhance", "{img}", "--device", "cuda:7"], 2, "CUDA"),
        (["enhance", "{img}", "--batch-size", "0"], 2, ""),
        # --mask parse needs the ParseNet file: offline and missing -> exit 3 naming the file
        (["enhance", "{img}", "--model", "classic", "--device", "cpu", "--mask", "parse"], 3, "ParseNet-latest.pth"),
        (["enhance", "{img}", "--model", "classic", "--device", "cpu", "--mask", "parse",
          "--parser-weights", "/no/such/parsenet.pth"], 3, "face-parsing weights not found"),
        (["enhance", "{img}", "--mask", "hull"], 2, "invalid choice"),
        (["enhance", "{img}", "--strength", "2"], 2, "must be a number in [0, 1]"),
        (["enhance", "{img}", "--min-score", "1"], 2, "must be a number in [0.01, 0.99]"),
        (["enhance", "{img}", "--start", "1:75"], 2, "expected seconds or [HH:]MM:SS[.ms]"),
        (["enhance", "{img}", "--model", "classic", "--device", "cpu", "--start", "2"], 2,
         "--start/--duration cut videos"),
    ],
)
def test_enhance_errors_and_exit_codes(tmp_path, shared, det_home, capsys, args, code, text):
    import shutil

    if torch.cuda.is_available() and "cuda:7" in args:
        pytest.skip("a machine with CUDA may have this device")
    img = tmp_path / "x.png"
    shutil.copy(shared / "data/faces/aligned/gpen_ffhq_00000.png", img)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(4096))
    args = [a.replace("{img}", str(img)).replace("{garbage}", str(garbage)) for a in args]
    assert main(args) == code
    err = capsys.readouterr().err
    assert text in err
    assert "Traceback" not in err


def test_auto_without_weights_message(tmp_path, shared, det_home, capsys):
    """--model auto never downgrades silently: exit 3 with where to put the file."""
    img = tmp_path / "x.png"
    img.write_bytes((shared / "data/faces/aligned/gpen_ffhq_00000.png").read_bytes())
    assert main(["enhance", str(img), "--device", "cpu"]) == 3
    err = capsys.readouterr().err
    assert "gpen-bfr-256" in err.lower() and str(det_home) in err


def test_camera_lavfi_fixed_frames(tmp_path, tiny_ckpt, det_home):
    out = tmp_path / "cam.mp4"
    report = tmp_path / "cam.json"
    code = _run("camera", "lavfi:testsrc2=size=320x240:rate=25", "-o", out, "--frames", "20",
                "--model", tiny_ckpt, "--device", "cpu", "--quiet", "--report", report)
    assert code == 0
    data = json.loads(report.read_text())
    assert data["frames_out"] == 20
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 20


def test_console_script_enhance_help():
    exe = Path(sys.executable).with_name("stream-gpen")
    if not exe.exists():
        pytest.fail(f"console script not installed next to {sys.executable}")
    r = subprocess.run([str(exe), "enhance", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--detect-every" in r.stdout


def test_info_says_which_audio_enhance_transcodes(tmp_path, capsys):
    """`info` said "audio copied" for a DV's PCM (written as .mp4, which does not take PCM)."""
    from stream_gpen.cli import main
    from tests._clips import write_pcm_clip

    mkv = write_pcm_clip(tmp_path / "pcm.mkv", range(5), range(5))
    mpg = tmp_path / "pcm.mpg"  # -> pcm_enhanced.mp4 by default
    with av.open(str(mkv)) as i, av.open(str(mpg), "w") as o:
        vs = o.add_stream("mpeg2video", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = o.add_stream("mp2", rate=48000)
        a.layout = "mono"
        for f in i.decode(video=0):
            f.pict_type = av.video.frame.PictureType.NONE
            o.mux(vs.encode(f))
        o.mux(vs.encode(None))
        for k in range(0, 9600, 1152):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.int16), format="s16", layout="mono")
            af.sample_rate, af.pts = 48000, k
            o.mux(a.encode(af))
        o.mux(a.encode(None))
    for clip, want in ((mkv, "into .mkv by default (--codec, -o), audio copied"),
                       (mpg, "into .mp4 by default (--codec, -o), audio mp2 transcoded to aac")):
        assert main(["info", str(clip), "--json"]) == 0
        plan = " | ".join(json.loads(capsys.readouterr().out)["plan"])
        assert want in plan, plan


def test_info_describes_inputs_and_the_plan(tmp_path, shared, capsys):
    from stream_gpen.cli import main

    clip = shared / "data/videos/retalking_face2_frontal_talking_head.mp4"
    assert main(["info", str(clip), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["codec"] == "h264" and info["size"] == [844, 844] and info["bits"] == 8
    assert len(info["audio"]) == 1 and info["frames_header"] == 125
    assert any("written as h264" in p for p in info["plan"])
    assert main(["info", str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg")]) == 0
    out = capsys.readouterr().out
    assert "JPEG" in out and "\nplan " in out
    album = tmp_path / "a"
    album.mkdir()
    (album / "x.jpg").write_bytes((shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg").read_bytes())
    (album / "notes.txt").write_text("x")
    assert main(["info", str(album), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["images"], info["videos"], info["other_files"]) == (1, 0, 1)
    assert main(["info", str(tmp_path / "nope.mp4")]) == 2
    assert "input not found" in capsys.readouterr().err
    # --faces: the detector on frames spread over the video (the talking head: one face in each)
    assert main(["info", str(clip), "--json", "--faces", "--detector-weights",
                 str(shared / "weights/detection_mobilenet0.25_Final.pth")]) == 0
    faces = json.loads(capsys.readouterr().out)["faces"]
    assert faces["frames_sampled"] == 8 and faces["per_frame"] == [1] * 8 and faces["median_face_px"] > 150


def test_camera_list_devices(tmp_path, capsys, monkeypatch):
    from stream_gpen import commands

    (tmp_path / "dev").mkdir()
    for n in (0, 1, 10):
        (tmp_path / "dev" / f"video{n}").touch()
    for n, name in ((0, "HD Pro Webcam C920"), (1, "HD Pro Webcam C920")):
        d = tmp_path / "sys/class/video4linux" / f"video{n}"
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
    assert commands.list_video_devices(str(tmp_path)) == [
        ("/dev/video0", "HD Pro Webcam C920"), ("/dev/video1", "HD Pro Webcam C920"), ("/dev/video10", "?")]
    monkeypatch.setattr(commands, "video_devices", lambda root="/": [])
    assert main(["camera", "--list"]) == 0
    assert "no /dev/video* devices" in capsys.readouterr().err or sys.platform != "linux"


def test_photo_and_video_urls_are_named_after_their_file(tmp_path, shared, det_home, monkeypatch, capsys):
    """A photo URL is fetched and restored as a photo (JPEG out, EXIF and all), not as a one-frame
    video; URLs naming a file give NAME_enhanced.EXT in the working folder."""
    import functools
    import http.server
    import shutil
    import threading

    from PIL import Image

    from stream_gpen.api import default_output, is_image_url

    assert default_output("https://example.org/a/b/clip.mp4?sig=1") == "clip_enhanced.mp4"
    assert default_output("https://example.org/a/My%20Photo.JPG") == "My Photo_enhanced.JPG"
    assert default_output("rtsp://cam.local/stream") == "stream_enhanced.mp4"
    assert default_output("https://example.org/live/") == "stream_enhanced.mp4"
    assert is_image_url("https://x/y.heic") and not is_image_url("https://x/y.mp4") and not is_image_url("/x/y.jpg")
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg", www / "portrait.jpg")
    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www)))
    srv.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    try:
        report = tmp_path / "r.json"
        assert main(["enhance", f"{base}/portrait.jpg", "--model", "classic", "--device", "cpu", "--quiet",
                     "--report", str(report)]) == 0
        with Image.open(work / "portrait_enhanced.jpg") as im:
            assert im.format == "JPEG" and im.size == Image.open(www / "portrait.jpg").size
        data = json.loads(report.read_text())
        assert data["faces_restored"] >= 1 and data["input"] == f"{base}/portrait.jpg"
        from stream_gpen.commands import describe_input

        info = describe_input(f"{base}/portrait.jpg")
        assert info["kind"] == "image" and info["format"] == "JPEG" and info["path"] == f"{base}/portrait.jpg"
        assert main(["enhance", f"{base}/gone.jpg", "--model", "classic", "--device", "cpu", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "cannot fetch" in err and "hint: check the URL, and that it is public" in err
    finally:
        srv.shutdown()


def test_a_photo_into_its_own_folder_never_replaces_itself(tmp_path, shared, det_home, capsys):
    """`enhance photo.png -o .` (its own folder): the photo's own name there is the input; it gets
    its default name instead, so even --overwrite cannot destroy the original."""
    album = tmp_path / "album"
    album.mkdir()
    photo = album / "photo.png"
    photo.write_bytes((shared / "data/faces/aligned/gpen_ffhq_00000.png").read_bytes())
    before = photo.read_bytes()
    common = ["--model", "classic", "--device", "cpu", "--quiet"]
    assert main(["enhance", str(photo), "-o", str(album), *common]) == 0
    assert (album / "photo_enhanced.png").is_file() and photo.read_bytes() == before
    assert main(["enhance", str(photo), "-o", str(album), *common]) == 2  # exists: refused
    assert "photo_enhanced.png" in capsys.readouterr().err
    assert main(["enhance", str(photo), "-o", str(album), "--overwrite", *common]) == 0
    assert photo.read_bytes() == before
    # another existing folder: the photo's own name, and --skip-existing looks at that file
    out = tmp_path / "out"
    out.mkdir()
    assert main(["enhance", str(photo), "-o", str(out), "--skip-existing", *common]) == 0
    assert (out / "photo.png").is_file()


def test_image_format_applies_to_a_single_photo(tmp_path, shared, det_home, capsys):
    from PIL import Image

    photo = tmp_path / "IMG_1.png"
    photo.write_bytes((shared / "data/faces/aligned/gpen_ffhq_00000.png").read_bytes())
    common = ["--model", "classic", "--device", "cpu", "--quiet"]
    assert main(["enhance", str(photo), "--image-format", "JPG", *common]) == 0  # any case
    with Image.open(tmp_path / "IMG_1_enhanced.jpg") as im:
        assert im.format == "JPEG"
    out = tmp_path / "out"
    out.mkdir()
    assert main(["enhance", str(photo), "-o", str(out), "--image-format", "webp", *common]) == 0
    with Image.open(out / "IMG_1.webp") as im:
        assert im.format == "WEBP"
    assert main(["enhance", str(photo), "-o", str(tmp_path / "x.jpeg"), "--image-format", "jpg", *common]) == 0
    capsys.readouterr()
    assert main(["enhance", str(photo), "-o", str(tmp_path / "x.png"), "--image-format", "jpg", *common]) == 2
    assert "not a jpg file" in capsys.readouterr().err


def test_newcomer_mistakes_get_cli_words(tmp_path, shared, det_home, capsys):
    """Option errors name the option (not the Python argument), a model name's case does not
    matter and a near miss is suggested; serve takes --debug like every other command."""
    from stream_gpen.api import build_restorer
    from stream_gpen.cli import build_parser

    p = build_parser()
    for argv, text in ((["--detect-size", "10"], "--detect-size: must be an int in [32, 16384]"),
                       (["--min-face", "-1"], "--min-face: must be a number in [0, 100000]"),
                       (["--duration", "0"], "--duration: must be longer than 0")):
        with pytest.raises(SystemExit):
            p.parse_args(["enhance", "x.mp4", *argv])
        assert text in capsys.readouterr().err
    assert p.parse_args(["serve", "--debug"]).debug is True
    assert build_restorer("Classic", device=torch.device("cpu")).name == "classic"
    img = tmp_path / "x.png"
    img.write_bytes((shared / "data/faces/aligned/gpen_ffhq_00000.png").read_bytes())
    assert main(["enhance", str(img), "--model", "GPEN-BFR-265", "--device", "cpu"]) == 2
    assert "did you mean gpen-bfr-256?" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["enhance", str(empty), "--model", "classic", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "no images" in err and "no videos" in err and "hint:" in err


def test_skip_existing_and_own_folder_for_urls_and_links(tmp_path, shared, det_home, capsys, monkeypatch):
    """--skip-existing leaves an existing output of a photo URL alone (exit 0; it failed with a hint
    naming --skip-existing), and a symlinked photo sent into the folder of the link gets its
    default name there instead of replacing the link."""
    import functools
    import http.server
    import threading

    www = tmp_path / "www"
    www.mkdir()
    (www / "Photo.png").write_bytes((shared / "data/faces/aligned/gpen_ffhq_00000.png").read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        monkeypatch.chdir(tmp_path)
        url = f"http://127.0.0.1:{srv.server_address[1]}/Photo.png"
        common = ["--model", "classic", "--device", "cpu", "--quiet"]
        assert main(["enhance", url, *common]) == 0
        made = (tmp_path / "Photo_enhanced.png").stat().st_mtime_ns
        capsys.readouterr()
        assert main(["enhance", url, "--skip-existing", *common[:-1]]) == 0  # (not --quiet: what it says)
        assert (tmp_path / "Photo_enhanced.png").stat().st_mtime_ns == made
        err = capsys.readouterr().err
        assert "left as it is" in err and "wrote" not in err, err
    finally:
        srv.shutdown()
    album, orig = tmp_path / "album", tmp_path / "orig"
    album.mkdir()
    orig.mkdir()
    (orig / "p.png").write_bytes((shared / "data/faces/aligned/gpen_ffhq_00000.png").read_bytes())
    (album / "p.png").symlink_to(orig / "p.png")
    monkeypatch.chdir(album)
    assert main(["enhance", "p.png", "-o", ".", *common]) == 0
    assert (album / "p.png").is_symlink() and (album / "p_enhanced.png").is_file()


def test_overwrite_keeps_the_replaced_files_permissions(tmp_path, shared, det_home):
    """A private output (0600) replaced with --overwrite stays private (it became 0644 with the
    umask of the new temporary file): photos and videos."""
    import stat

    photo = tmp_path / "p.png"
    photo.write_bytes((shared / "data/faces/aligned/gpen_ffhq_00000.png").read_bytes())
    common = ["--model", "classic", "--device", "cpu", "--quiet", "--overwrite"]
    for src, dst in ((photo, tmp_path / "out.png"),
                     (shared / "data/videos/upscaleavideo_old_movie1_bw_noface.mp4", tmp_path / "out.mp4")):
        dst.write_bytes(b"old")
        dst.chmod(0o600)
        assert main(["enhance", str(src), "-o", str(dst), *common]) == 0
        assert stat.S_IMODE(dst.stat().st_mode) == 0o600 and dst.stat().st_size > 3


def test_a_report_that_cannot_be_written_is_found_before_the_run(tmp_path, capsys, monkeypatch):
    """An unwritable --report folder was found only after the whole run (exit 4, no "wrote"); a
    full disk emptied an earlier report."""
    import errno
    import tempfile

    from stream_gpen import commands
    from stream_gpen.errors import OutputNotWritableError
    from stream_gpen.summary import RunSummary

    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    with monkeypatch.context() as m:
        m.setattr(tempfile, "NamedTemporaryFile", refuse)
        with pytest.raises(OutputNotWritableError, match="cannot be written there: Read-only file system"):
            commands._check_report(str(tmp_path / "r.json"), [], overwrite=False)
    report = tmp_path / "r.json"
    RunSummary(frames_in=3, frames_out=3).write_json(report)
    before = report.read_text()
    real = Path.write_text

    def full(self, *a, **k):
        real(self, "{", encoding="utf-8")  # a start, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError) as info:
        RunSummary(frames_in=9, frames_out=9).write_json(report)
    assert info.value.filename == str(report) and "No space left" in info.value.strerror
    monkeypatch.undo()
    assert report.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_report_through_a_link_or_into_a_pipe(tmp_path):
    """The atomic report write replaced a link with a file (its target kept the old report), reset
    an earlier report's mode, and refused or replaced /dev/stdout."""
    import os
    import stat
    import threading

    from stream_gpen.commands import _check_report
    from stream_gpen.summary import RunSummary

    runs = tmp_path / "runs"
    runs.mkdir()
    target = runs / "r1.json"
    RunSummary(frames_in=1, frames_out=1).write_json(target)
    os.chmod(target, 0o600)
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    _check_report(str(link), [], overwrite=True)
    RunSummary(frames_in=7, frames_out=7).write_json(link)
    assert link.is_symlink() and json.loads(target.read_text())["frames_out"] == 7
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    _check_report(str(fifo), [], overwrite=False)  # (a pipe is not "an earlier report" to refuse)
    RunSummary(frames_in=3, frames_out=3).write_json(fifo)
    reader.join(10)
    assert json.loads(got[0])["frames_out"] == 3 and stat.S_ISFIFO(fifo.stat().st_mode)
