"""Option combinations that were refused late or ignored without a word (hunt 15). Each once went
wrong: a bad --crf in a folder restored every photo, then skipped every video; --max-faces with
--faces center restored one face; --aligned ignored --min-face; and so on."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import stream_gpen.commands as commands
from _clips import write_video
from stream_gpen.cli import build_parser, main
from stream_gpen.errors import WeightsError

#: what the stand-in for the model load raises: exit 3 says the run got that far
_MODEL = "the model would load here"


@pytest.fixture
def no_model(monkeypatch):
    """The model load raises (exit 3): a refusal (exit 2) came before it, a warning is said by then."""

    def load(*a, **k):
        raise WeightsError(_MODEL)

    monkeypatch.setattr(commands, "_make_enhancer", load)


@pytest.fixture
def clip(tmp_path):
    return write_video(tmp_path / "clip.mp4", [np.full((48, 64, 3), 100, np.uint8)] * 3)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "ph.png"
    Image.fromarray(np.full((48, 64, 3), 100, np.uint8)).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    """A folder of one photo and one video (written as .mp4 with h264)."""
    root = tmp_path / "fold"
    root.mkdir()
    Image.fromarray(np.full((48, 64, 3), 100, np.uint8)).save(root / "a.png")
    write_video(root / "b.mp4", [np.full((48, 64, 3), 100, np.uint8)] * 3)
    return root


# --- refused before the model loads ----------------------------------------------------------------
@pytest.mark.parametrize("opts, said", [  # (in the command line's words: session 25)
    (["--crf", "99"], "--crf 99 for --codec h264 must be within 0..51"),
    (["--crf", "60"], "--crf 60 for --codec h264"),  # (valid for vp9 only: the folder's .mp4 is h264)
    (["--preset", "7"], "--preset 7 for --codec h264"),
    (["--encoder", "auto", "--crf", "99"], "--crf 99"),
])
def test_folder_bad_encoder_option_is_refused_before_the_model_loads(folder, tmp_path, opts, said, no_model,
                                                                     capsys):
    """A folder's photos were restored, then every video skipped with exit 5; a single video
    refused the same value before the model loaded."""
    assert main(["enhance", str(folder), "-o", str(tmp_path / "out"), *opts, "--quiet"]) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_folder_of_webm_takes_vp9_crf(tmp_path, no_model, capsys):
    """The check is against what each video is written with: a .webm is VP9, whose crf goes to 63."""
    root = tmp_path / "fold"
    root.mkdir()
    write_video(root / "b.webm", [np.full((48, 64, 3), 100, np.uint8)] * 3, codec="libvpx-vp9", pix_fmt="yuv420p")
    assert main(["enhance", str(root), "-o", str(tmp_path / "out"), "--crf", "60", "--quiet"]) == 3
    assert _MODEL in capsys.readouterr().err


def test_folder_without_videos_says_video_options_are_unused(tmp_path, photo, no_model, capsys):
    root = tmp_path / "pics"
    root.mkdir()
    photo.rename(root / "a.png")
    assert main(["enhance", str(root), "-o", str(tmp_path / "out"), "--crf", "20", "--quiet"]) == 3
    assert f"--crf applies to videos; {root} holds no videos" in capsys.readouterr().err


@pytest.mark.parametrize("opts, said", [  # (in the command line's words: session 25)
    (["--encoder", "auto", "--crf", "99"], "--crf 99 for --codec h264"),
    (["--encoder", "auto", "--preset", "7"], "--preset 7"),
    (["--encoder", "auto", "--codec", "vp9", "--preset", "fast"], "--codec vp9 takes no preset"),
    # (ranges before the probe, as the sink: without a driver the probe's error hid the option's)
    (["--encoder", "nvenc", "--crf", "0"], "NVENC's cq 0 means 'automatic'"),
])
def test_encoder_auto_and_nvenc_options_are_refused_before_the_model_loads(clip, tmp_path, opts, said, no_model,
                                                                          capsys):
    """--encoder auto checked --crf/--preset only in the sink, after the model had loaded (the vp9
    case can never use NVENC). Whether auto picks NVENC here or not, these values fit neither."""
    assert main(["enhance", str(clip), "-o", str(tmp_path / "o.mp4"), *opts, "--quiet"]) == 2
    assert said in capsys.readouterr().err


def test_camera_encoder_auto_options_are_refused_before_the_model_loads(tmp_path, no_model, capsys):
    assert main(["camera", "lavfi:testsrc2", "-o", str(tmp_path / "r.mp4"), "--encoder", "auto", "--crf", "99",
                 "--quiet"]) == 2
    assert "--crf 99 for --codec h264" in capsys.readouterr().err


def test_encoder_auto_takes_a_preset_it_translates(clip, tmp_path, no_model, capsys):
    """p5 is an NVENC level: auto translates it to x264's slow when it falls back to software."""
    assert main(["enhance", str(clip), "-o", str(tmp_path / "o.mp4"), "--encoder", "auto", "--preset", "p5",
                 "--quiet"]) == 3
    assert _MODEL in capsys.readouterr().err


@pytest.mark.parametrize("faces", ["largest", "center"])
@pytest.mark.parametrize("command", ["enhance", "camera"])
def test_max_faces_with_one_face_choice_is_refused(clip, faces, command, no_model, capsys):
    """--faces center --max-faces 3 restored one face, without a word."""
    argv = ([command, str(clip)] if command == "enhance" else [command, "lavfi:testsrc2", "--frames", "1"])
    assert main([*argv, "--faces", faces, "--max-faces", "3", "--quiet"]) == 2
    assert f"--max-faces 3 does not combine with --faces {faces}" in capsys.readouterr().err


def test_overwrite_with_skip_existing_is_refused(clip, tmp_path, no_model, capsys):
    """Both given, --overwrite replaced the existing output without a word."""
    out = tmp_path / "o.mp4"
    out.write_bytes(b"earlier")
    assert main(["enhance", str(clip), "-o", str(out), "--overwrite", "--skip-existing", "--quiet"]) == 2
    assert "--overwrite and --skip-existing contradict each other" in capsys.readouterr().err
    assert out.read_bytes() == b"earlier"


# --- said to be unused -------------------------------------------------------------------------------
@pytest.mark.parametrize("opts, said", [
    (["--bit-depth", "8"], "--bit-depth applies to videos"),
    (["--deinterlace", "off"], "--deinterlace applies to videos"),
    (["--smooth-lag", "3"], "--smooth-lag applies to videos"),
    (["--detect-every", "2"], "--detect-every applies to videos"),
    (["--quality", "50"], "--quality applies to JPEG/WebP/HEIC/AVIF outputs; o.png is lossless"),
])
def test_video_options_and_quality_on_a_png_are_said_unused(photo, tmp_path, opts, said, no_model, capsys):
    assert main(["enhance", str(photo), "-o", str(tmp_path / "o.png"), *opts, "--quiet"]) == 3
    assert said in capsys.readouterr().err


def test_quality_on_a_video_is_said_unused_and_on_a_jpeg_not(clip, photo, tmp_path, no_model, capsys):
    assert main(["enhance", str(clip), "-o", str(tmp_path / "o.mp4"), "--quality", "50", "--quiet"]) == 3
    assert f"--quality applies to JPEG/WebP/HEIC/AVIF outputs; {clip} is written as a video" in capsys.readouterr().err
    assert main(["enhance", str(photo), "-o", str(tmp_path / "o.jpg"), "--quality", "50", "--quiet"]) == 3
    assert "--quality" not in capsys.readouterr().err


def test_defaults_say_nothing(photo, clip, tmp_path, no_model, capsys):
    """Only values the user gave are warned about."""
    assert main(["enhance", str(photo), "-o", str(tmp_path / "o.png"), "--quiet"]) == 3
    assert main(["enhance", str(clip), "-o", str(tmp_path / "o.mp4"), "--quiet"]) == 3
    assert "warning" not in capsys.readouterr().err


def test_camera_encoder_options_without_an_encoded_output_are_said_unused(no_model, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)  # (no window: the null output)
    assert main(["camera", "lavfi:testsrc2", "--frames", "3", "--crf", "20", "--preset", "slow", "--quiet"]) == 3
    assert "--crf/--preset apply to --output/--stream; nothing is encoded here" in capsys.readouterr().err


def test_camera_encoder_options_with_a_recording_say_nothing(tmp_path, no_model, capsys):
    assert main(["camera", "lavfi:testsrc2", "-o", str(tmp_path / "r.mp4"), "--crf", "20", "--quiet"]) == 3
    assert "nothing is encoded" not in capsys.readouterr().err


# --- the library: the Enhancer's fallbacks ---------------------------------------------------------
def _enhancer(**kw):
    from stream_gpen.api import Enhancer

    return Enhancer("classic", device="cpu", download=False, progress=False, **kw)


def test_aligned_says_which_detection_options_are_unused(caplog):
    """--aligned --min-face 500 restored every crop (no detection), without a word."""
    enh = _enhancer(aligned=True, min_face=500, faces="largest", detect_size=64, min_score=0.99, detect_every=3,
                    detector="resnet50", detector_weights="/nonexistent.pth")
    note = ("faces='largest' (--faces), min_face=500 (--min-face), min_score=0.99 (--min-score), detect_size=64 "
            "(--detect-size), detect_every=3 (--detect-every), detector='resnet50' (--detector), "
            "detector_weights='/nonexistent.pth' (--detector-weights) are not used with aligned=True (--aligned)")
    assert any(f.startswith(note) for f in enh.fallbacks)
    assert note in caplog.text
    assert not [f for f in _enhancer(aligned=True).fallbacks if "not used" in f]  # (defaults: nothing)


def test_camera_default_detect_size_is_not_warned_with_aligned(monkeypatch):
    """camera's own --detect-size default (640) is not the user's: nothing to warn about."""
    from stream_gpen.api import Enhancer

    made = {}
    monkeypatch.setattr(Enhancer, "__init__", lambda self, *a, **k: made.update(k))
    args = build_parser().parse_args(["camera", "--aligned"])
    commands._make_enhancer(args)
    assert made["detect_size"] is None and made["aligned"] is True
    commands._make_enhancer(build_parser().parse_args(["camera"]))
    assert made["detect_size"] == 640


def test_parser_weights_without_mask_parse_is_said_unused(tmp_path, mobilenet_weights):
    """A path (even one that does not exist) was ignored: the feather mask was used, without a word."""
    enh = _enhancer(aligned=True, parser_weights=tmp_path / "ParseNet.pth")
    assert any(f.startswith("parser_weights (--parser-weights) is not used without the parse mask") and
               "mask='parse' (--mask parse)" in f for f in enh.fallbacks)


def test_max_faces_with_one_face_choice_is_said_unused(mobilenet_weights):
    enh = _enhancer(faces="center", max_faces=3, detector_weights=mobilenet_weights)
    assert ("max_faces=3 (--max-faces) is not used with faces='center' (--faces center), which restores one face"
            in enh.fallbacks)
    assert not _enhancer(max_faces=3, detector_weights=mobilenet_weights).fallbacks


# --- hunt 15 newuser: the same rules everywhere ---------------------------------------------------
def test_serve_refuses_max_faces_with_one_face_choice(capsys):
    """enhance and camera refused --max-faces 2 --faces largest; serve started with a warning."""
    from stream_gpen.cli import main

    assert main(["serve", "--max-faces", "2", "--faces", "largest", "--port", "1"]) == 2
    assert "--max-faces 2 does not combine with --faces largest" in capsys.readouterr().err


def test_start_on_a_photo_is_refused_before_the_model_loads(tmp_path, shared, monkeypatch, capsys):
    """It was refused only once the model was built (or its weights downloaded)."""
    import shutil

    from stream_gpen.cli import main

    img = tmp_path / "x.png"
    shutil.copy(shared / "data/faces/aligned/gpen_ffhq_00000.png", img)
    monkeypatch.setattr(commands, "_make_enhancer", lambda args: pytest.fail("the model was built"))
    assert main(["enhance", str(img), "--model", "classic", "--device", "cpu", "--start", "2"]) == 2
    assert f"--start/--duration cut videos; {img} is a photo" in capsys.readouterr().err


def test_aligned_detect_every_on_a_photo_is_said_once(caplog):
    args = build_parser().parse_args(["enhance", "x.png", "--aligned", "--detect-every", "3"])
    commands._video_options_on_a_photo(args, "x.png")
    assert "--detect-every" not in caplog.text  # (the Enhancer says it, with --aligned)


def test_info_says_why_audio_is_transcoded_in_enhances_words(tmp_path):
    """info said ".mp4 does not take it" where enhance says mp2 "is not stream-copied into mp4 here"."""
    import av

    src = tmp_path / "dvd.mpg"
    with av.open(str(src), "w", format="mpeg") as c:
        vs = c.add_stream("mpeg2video", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("mp2", rate=48000)
        a.layout = "stereo"
        for i in range(5):
            for p in vs.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        for i in range(5):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 2 * 1152), np.int16), format="s16", layout="stereo")
            f.sample_rate, f.pts = 48000, i * 1152
            for p in a.encode(f):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    plan = " | ".join(commands.describe_input(str(src))["plan"])
    assert "audio mp2 transcoded to aac (mp2 is not stream-copied into mp4 here" in plan, plan


def test_camera_smooth_lag_is_said_unused(no_model, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["camera", "lavfi:testsrc2", "--frames", "3", "--smooth-lag", "3", "--quiet"]) == 3
    assert "--smooth-lag applies to files; a live source is not held back" in capsys.readouterr().err


def test_offline_missing_weights_do_not_advise_a_download_that_is_refused(tmp_path, monkeypatch):
    """Offline, the advice was `stream-gpen weights download ...`, which STREAM_GPEN_OFFLINE refuses."""
    from stream_gpen.errors import WeightsNotFoundError
    from stream_gpen.weights import ensure_weights

    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STREAM_GPEN_SHARED", str(tmp_path / "none"))
    monkeypatch.setattr("stream_gpen.weights._CHECKOUT", tmp_path)
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as e:
        ensure_weights("gpen-bfr-256", download=False, progress=False)
    assert "downloads are disabled (STREAM_GPEN_OFFLINE=1)" in str(e.value)
    assert "weights download gpen-bfr-256` fetches it" not in str(e.value)
    monkeypatch.delenv("STREAM_GPEN_OFFLINE")
    with pytest.raises(WeightsNotFoundError) as e:
        ensure_weights("gpen-bfr-256", download=False, progress=False)
    assert "`stream-gpen weights download gpen-bfr-256` fetches it" in str(e.value)
