"""NVENC hardware encoding (``encoder="software" | "nvenc" | "auto"``).

Without a GPU the encoder can only fail to open, so these tests pin what does not need one: the
option mapping (pure functions, exact), the probe (a reason here, cached), the errors and exit
codes, and the ``auto`` fallback to software (written files decoded back). Where the probe is
faked to say "usable", the real encoder still cannot open here: that exercises the second check
(the file's own settings) and its fallback. The ``cuda`` test at the end encodes with NVENC on a
GPU that has it, and skips with the probe's reason on one that has none (A100/H100/H200).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from tests._clips import write_video
from stream_gpen.cli import main
from stream_gpen.errors import DeviceError, EncodeError, HardwareEncoderError, InvalidInputError
from stream_gpen.io import _sink, open_sink, open_source
from stream_gpen.io._convert import rgb_to_av
from stream_gpen.io._sink import (
    NVENC_PRESETS,
    FileSink,
    auto_preset,
    explain_nvenc_error,
    nvenc_available,
    nvenc_options,
    nvenc_pix_fmt,
    nvenc_preset,
)

CLIP = "lavfi:testsrc2=size=64x48:rate=25:duration=0.2"  # 5 frames
CLIP10 = CLIP + ",format=yuv420p10le"
LIBCUDA = "h264_nvenc did not open: Cannot load libcuda.so.1; no NVIDIA driver (libcuda) on this machine"


def _nvenc_here() -> bool:
    """Whether this machine can really encode with h264_nvenc (the cached probe)."""
    return _sink._probe("h264") is None


needs_no_nvenc = pytest.mark.skipif("_nvenc_here()", reason="this machine has NVENC")


@pytest.fixture
def count_opens(monkeypatch):
    """The encoders the probe / the sink try to open (real opens still happen)."""
    real, calls = _sink._try_open, []

    def counting(encoder, **kw):
        calls.append(encoder)
        return real(encoder, **kw)

    _sink._probe.cache_clear()
    monkeypatch.setattr(_sink, "_try_open", counting)
    yield calls
    _sink._probe.cache_clear()  # the next user probes again, with the real _try_open


@pytest.fixture
def probe_says_usable(monkeypatch):
    """NVENC "works" as on an RTX machine; the encoder itself still cannot open here."""
    if _nvenc_here():
        pytest.skip("this machine has NVENC: the real encoder would open")
    monkeypatch.setattr(_sink, "nvenc_available", lambda codec: None)


def _write(spec, target, **kw):
    with open_source(spec, live=False) as src:
        with open_sink(target, source=src, overwrite=True, **kw) as sink:
            times = []
            for f in src:
                times.append(f.time)
                sink.write(f)
    return sink, times


def _decoded(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = list(c.decode(s))
        return s.codec_context.name, frames[0].format.name, [float(f.time) for f in frames]


# --- the option mapping (pure) --------------------------------------------------------------------
def test_x264_preset_names_map_onto_nvenc_levels():
    assert NVENC_PRESETS == {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p3",
                             "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7", "placebo": "p7"}
    assert [nvenc_preset(f"p{i}") for i in range(1, 8)] == [f"p{i}" for i in range(1, 8)]
    assert nvenc_preset(None) == "p4" and nvenc_preset("veryfast") == "p2"
    for bad in ("p8", "8", "hq", "fastest"):
        with pytest.raises(InvalidInputError, match=rf"preset='{bad}' for encoder='nvenc' is not one of \('p1'"):
            nvenc_preset(bad)


def test_nvenc_options_exact():
    # a file: high quality tuning, constant quality with no bitrate cap, H.264 High
    assert nvenc_options("h264", crf=20, preset="slow") == {
        "preset": "p5", "tune": "hq", "rc": "vbr", "cq": "20", "b": "0", "profile": "high"}
    # live (stream URL, camera): low latency, no B-frames, packets out at once; 10-bit HEVC is Main 10
    assert nvenc_options("hevc", live=True, pix_fmt="p010le") == {
        "preset": "p4", "tune": "ll", "rc": "vbr", "cq": "28", "b": "0", "bf": "0", "delay": "0", "forced-idr": "1",
        "profile": "main10"}
    assert nvenc_options("av1", crf=40, preset="p7") == {"preset": "p7", "tune": "hq", "rc": "vbr", "cq": "40", "b": "0"}
    assert nvenc_options("av1") ["cq"] == "35"
    # AVI (no presentation times): no B-frames; 4:4:4 profiles
    assert nvenc_options("h264", pix_fmt="yuv444p", no_bframes=True) == {
        "preset": "p4", "tune": "hq", "rc": "vbr", "cq": "23", "b": "0", "bf": "0", "profile": "high444p"}
    assert nvenc_options("hevc", pix_fmt="yuv444p16le")["profile"] == "rext"
    assert nvenc_options("hevc", pix_fmt="nv12")["profile"] == "main"
    with pytest.raises(InvalidInputError, match=r"codec='vp9' has no NVENC encoder"):
        nvenc_options("vp9")


@pytest.mark.parametrize("codec, crf, message", [
    ("h264", 0, r"crf=0 with encoder='nvenc': NVENC's cq 0 means 'automatic', not lossless; give a crf within 1..51"),
    ("h264", 52, r"crf=52 for codec='h264' with encoder='nvenc' must be within 1..51"),
    ("av1", 64, r"crf=64 for codec='av1' with encoder='nvenc' must be within 1..63"),
])
def test_crf_range_under_nvenc(codec, crf, message):
    with pytest.raises(InvalidInputError, match=message):
        nvenc_options(codec, crf=crf)
    assert nvenc_options("av1", crf=63)["cq"] == "63"


@pytest.mark.parametrize("codec, src, high, want", [
    ("h264", "yuv420p", False, "nv12"),
    ("h264", "yuv444p", False, "yuv444p"),
    ("hevc", "yuvj444p", False, "yuv444p"),  # full-range 4:4:4 (OBS "I444 full") stays 4:4:4, as in software
    ("hevc", "yuv422p", False, "nv12"),   # NVENC 4:2:2 needs an RTX 50
    ("av1", "yuv444p", False, "nv12"),    # AV1 NVENC is 4:2:0 only
    ("h264", "yuv420p10le", True, None),  # no H.264 10-bit: the sink writes 8-bit and says so
    ("hevc", "yuv420p10le", True, "p010le"),
    ("hevc", "yuv422p10le", True, "p010le"),
    ("hevc", "yuv444p12le", True, "yuv444p16le"),
    ("hevc", "gbrp10le", True, "yuv444p16le"),
    ("hevc", "yuv444p10le", True, "yuv444p10msble"),  # where the encoder lists it (FFmpeg 8)
    ("av1", "yuv444p10le", True, "p010le"),
])
def test_nvenc_pixel_formats(codec, src, high, want):
    supported = {"yuv444p10msble"} if want == "yuv444p10msble" else set()
    assert nvenc_pix_fmt(codec, src, high=high, supported=supported) == want


@pytest.mark.parametrize("codec, preset, hardware, want", [
    ("h264", "p3", False, "faster"),
    ("h264", "slow", True, "p5"),
    ("h264", "veryslow", False, "veryslow"),
    ("av1", "8", True, "p3"),
    ("av1", "medium", False, "6"),
    ("av1", "p1", False, "12"),
    ("h264", "bogus", True, "bogus"),  # left for the chosen encoder's check to refuse
    ("hevc", None, True, None),
])
def test_auto_translates_the_preset_to_the_encoder_it_chose(codec, preset, hardware, want):
    assert auto_preset(codec, preset, hardware=hardware) == want


def test_nv12_and_p010_carry_the_software_paths_codes():
    """The sink hands NVENC nv12 / p010le made by the same conversion as yuv420p / yuv420p10le."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    a = rgb_to_av(rgb, pix_fmt="yuv420p", colorspace=1, color_range=1)
    b = rgb_to_av(rgb, pix_fmt="nv12", colorspace=1, color_range=1).reformat(format="yuv420p")
    for pa, pb in zip(a.planes, b.planes):
        assert bytes(pa) == bytes(pb)
    hi = rng.integers(0, 65536, (48, 64, 3), dtype=np.uint16)
    ref = rgb_to_av(hi, pix_fmt="yuv420p10le", colorspace=9, color_range=1)
    p010 = rgb_to_av(hi, pix_fmt="p010le", colorspace=9, color_range=1)

    def plane(f, i, h, w):
        return np.frombuffer(f.planes[i], np.uint16).reshape(h, -1)[:, :w]

    assert np.array_equal(plane(p010, 0, 48, 64), plane(ref, 0, 48, 64) << 6)  # MSB-aligned 10-bit codes
    uv = plane(p010, 1, 24, 64)
    assert np.array_equal(uv[:, 0::2], plane(ref, 1, 24, 32) << 6)
    assert np.array_equal(uv[:, 1::2], plane(ref, 2, 24, 32) << 6)
    # 10-bit 4:4:4: yuv444p10msble holds the codes in its top bits exactly (yuv444p16le, whose top
    # 10 bits NVENC would keep, can be one code lower)
    if "yuv444p10msble" in {f.name for f in av.codec.Codec("hevc_nvenc", "w").video_formats}:
        ref = rgb_to_av(hi, pix_fmt="yuv444p10le", colorspace=9, color_range=1)
        msb = rgb_to_av(hi, pix_fmt="yuv444p10msble", colorspace=9, color_range=1)
        for i in range(3):
            assert np.array_equal(plane(msb, i, 48, 64), plane(ref, i, 48, 64) << 6)


def test_ffmpeg_reasons_are_explained():
    assert explain_nvenc_error("h264_nvenc", ["Cannot load libcuda.so.1\n"]) == LIBCUDA
    why = explain_nvenc_error("hevc_nvenc", ["Cannot load libnvidia-encode.so.1\n", "\n"])
    assert why.startswith("hevc_nvenc did not open: Cannot load libnvidia-encode.so.1; the NVIDIA driver has no NVENC")
    assert "NVIDIA_DRIVER_CAPABILITIES must include 'video'" in why
    assert "session limit" in explain_nvenc_error("h264_nvenc", ["OpenEncodeSessionEx failed: out of memory (10)"])
    assert explain_nvenc_error("av1_nvenc", [], OSError("Operation not permitted; more")) == (
        "av1_nvenc did not open: Operation not permitted")
    assert explain_nvenc_error("h264_nvenc", ["something new"]) == "h264_nvenc did not open: something new"


# --- the probe --------------------------------------------------------------------------------------
def test_probe_opens_each_encoder_once_and_gives_a_reason_without_a_gpu(count_opens):
    reasons = [nvenc_available("h264") for _ in range(3)]
    assert count_opens == ["h264_nvenc"]  # cached: once per process per codec
    nvenc_available("hevc")
    nvenc_available("h264")
    assert count_opens == ["h264_nvenc", "hevc_nvenc"]
    assert len(set(reasons)) == 1
    if not torch.cuda.is_available():
        assert reasons[0] == LIBCUDA
    with pytest.raises(InvalidInputError, match=r"codec='vp9' has no NVENC encoder; NVENC takes codec \('h264', 'hevc', 'av1'\)"):
        nvenc_available("vp9")


# --- FileSink / open_sink ----------------------------------------------------------------------------
def test_encoder_option_is_validated(tmp_path, count_opens):
    with pytest.raises(InvalidInputError, match=r"encoder='gpu' is not one of \('software', 'nvenc', 'auto'\)"):
        open_sink(tmp_path / "o.mp4", encoder="gpu")
    with pytest.raises(InvalidInputError, match=r"encoder='GPU' is not one of"):
        FileSink(tmp_path / "o.mp4", encoder="GPU")
    # vp9 (the default for .webm) has no NVENC; crf/preset errors come before the probe
    with pytest.raises(InvalidInputError, match=r"codec='vp9' has no NVENC encoder: encoder='nvenc' takes codec "
                                                r"\('h264', 'hevc', 'av1'\)"):
        open_sink(tmp_path / "o.webm", encoder="nvenc")
    with pytest.raises(InvalidInputError, match="NVENC's cq 0 means 'automatic'"):
        FileSink(tmp_path / "o.mp4", encoder="nvenc", crf=0)
    with pytest.raises(InvalidInputError, match=r"preset='6' for encoder='nvenc'"):
        FileSink(tmp_path / "o.mp4", encoder="nvenc", codec="av1", preset="6")
    assert count_opens == []
    assert list(tmp_path.iterdir()) == []


@needs_no_nvenc
def test_nvenc_without_nvenc_is_a_device_error(tmp_path):
    with pytest.raises(HardwareEncoderError, match=r"^encoder='nvenc' cannot be used: h264_nvenc did not open: ") as e:
        FileSink(tmp_path / "o.mp4", encoder="nvenc")
    assert isinstance(e.value, DeviceError) and isinstance(e.value, RuntimeError) and e.value.exit_code == 2
    # (no NVIDIA driver at all, a CPU machine: said so; a GPU without NVENC: that it has none)
    assert e.value.hint.startswith("no NVIDIA GPU/driver was found here" if "libcuda" in str(e.value) else
                                   "this GPU/driver has no NVENC (data-centre GPUs such as A100/H100/H200 have none)")
    assert "--encoder software" in e.value.hint
    assert list(tmp_path.iterdir()) == []


@needs_no_nvenc
def test_auto_writes_software_here_and_says_why_logged_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(_sink, "_auto_logged", set())
    with caplog.at_level(logging.INFO, logger="stream_gpen.io._sink"):
        sink, times = _write(CLIP, tmp_path / "a.mp4", encoder="auto")
        sink2, _ = _write(CLIP, tmp_path / "b.mkv", encoder="auto", preset="p1")  # an NVENC preset, translated
    assert (sink.encoder, sink.encoder_mode, sink2.encoder, sink2.preset) == ("libx264", "auto", "libx264", "ultrafast")
    note = "encoder='auto' used libx264, not NVENC: " + (LIBCUDA if not torch.cuda.is_available() else "")
    assert sink.fallbacks[0].startswith(note) and sink.encoder_note == sink.fallbacks[0]
    assert len([r for r in caplog.records if "encoder='auto' used libx264" in r.getMessage()]) == 1
    codec, pix, decoded = _decoded(tmp_path / "a.mp4")
    assert (codec, pix) == ("h264", "yuv420p") and decoded == pytest.approx(times, abs=1e-3)
    assert _decoded(tmp_path / "b.mkv")[0] == "h264"
    # the software default is untouched: no probe, no note
    sink3, _ = _write(CLIP, tmp_path / "c.mp4")
    assert (sink3.encoder, sink3.encoder_mode, sink3.fallbacks) == ("libx264", "software", [])


def test_auto_falls_back_when_the_files_own_encoder_will_not_open(tmp_path, probe_says_usable):
    """The probe passed, but this video's encoder does not open (a session limit, a size or format
    the GPU lacks): auto goes to software at the first frame, with the preset translated."""
    sink, times = _write(CLIP, tmp_path / "a.mp4", encoder="auto", preset="p2")
    assert (sink.encoder, sink.preset) == ("libx264", "veryfast")
    assert sink.fallbacks == [f"encoder='auto' used libx264, not NVENC (64x48 nv12): {LIBCUDA}"]
    assert _decoded(tmp_path / "a.mp4")[2] == pytest.approx(times, abs=1e-3)
    # 10-bit H.264: NVENC would have gone 8-bit (a note); libx264 keeps 10-bit, so that note goes
    sink, _ = _write(CLIP10, tmp_path / "b.mkv", encoder="auto", codec="h264")
    assert sink.encoder == "libx264" and sink._pix == "yuv420p10le"
    assert len(sink.fallbacks) == 1 and sink.fallbacks[0].startswith("encoder='auto' used libx264, not NVENC (64x48 nv12)")
    assert _decoded(tmp_path / "b.mkv")[1] == "yuv420p10le"


def test_explicit_nvenc_that_will_not_open_fails_cleanly(tmp_path, probe_says_usable):
    with pytest.raises(EncodeError, match=r"encoder='nvenc' could not open for 64x48 nv12: h264_nvenc did not open") as e:
        _write(CLIP, tmp_path / "a.mp4", encoder="nvenc")
    assert "encode sessions" in e.value.hint and "--encoder auto falls back to software" in e.value.hint
    assert list(tmp_path.iterdir()) == []  # nothing left under any name


@pytest.mark.parametrize("spec, target, kw, want_enc, want_pix, want", [
    (CLIP, "a.mp4", {"crf": 30, "preset": "fast"}, "h264_nvenc", "nv12", nvenc_options("h264", crf=30, preset="fast")),
    (CLIP, "a.mkv", {"live": True}, "h264_nvenc", "nv12", nvenc_options("h264", live=True)),
    (CLIP, "a.avi", {}, "h264_nvenc", "nv12", nvenc_options("h264", no_bframes=True)),
    (CLIP10, "a.mp4", {"codec": "hevc"}, "hevc_nvenc", "p010le", nvenc_options("hevc", pix_fmt="p010le")),
    (CLIP10, "a.mp4", {}, "hevc_nvenc", "p010le", nvenc_options("hevc", pix_fmt="p010le")),  # auto: hevc for 10-bit
    (CLIP10, "a.mkv", {"codec": "av1", "preset": "slower"}, "av1_nvenc", "p010le", nvenc_options("av1", preset="slower")),
    (CLIP10, "a.mkv", {"codec": "h264"}, "h264_nvenc", "nv12", nvenc_options("h264")),  # 8-bit, with a note
])
def test_what_the_sink_hands_nvenc(tmp_path, probe_says_usable, monkeypatch, spec, target, kw, want_enc, want_pix,
                                   want):
    """The settings the sink opens NVENC with (recorded at its check before the stream is
    added; the real encoder then cannot open here, so the write fails)."""
    seen = []

    def record(encoder, **kw):
        seen.append((encoder, kw))
        return None

    monkeypatch.setattr(_sink, "_try_open", record)
    with pytest.raises(EncodeError):
        _write(spec, tmp_path / target, encoder="nvenc", **kw)
    assert len(seen) == 1
    encoder, opened = seen[0]
    assert encoder == want_enc
    assert (opened["width"], opened["height"], opened["pix_fmt"]) == (64, 48, want_pix)
    assert opened["options"] == want


@pytest.mark.parametrize("fmt, codec, note", [
    ("yuv422p", "h264", "h264_nvenc: the yuv422p source is written as nv12, without its 4:2:2 chroma (NVENC: "
                        "4:2:2 only on RTX 50-series GPUs, no 12-bit, AV1 4:2:0 only); encoder='software' keeps yuv422p"),
    ("yuv422p12le", "hevc", "hevc_nvenc: the yuv422p12le source is written as p010le, without its 4:2:2 chroma and "
                            "12-bit depth (NVENC: 4:2:2 only on RTX 50-series GPUs, no 12-bit, AV1 4:2:0 only); "
                            "encoder='software' keeps yuv422p12le"),
    ("yuv444p10le", "av1", None),  # SVT-AV1 writes 10-bit 4:2:0 too: nothing kept less of
    ("yuv444p10le", "hevc", None),  # Main 4:4:4 10 on NVENC as well
    ("yuv420p", "hevc", None),
])
def test_what_nvenc_keeps_less_of_is_said(tmp_path, probe_says_usable, monkeypatch, fmt, codec, note):
    monkeypatch.setattr(_sink, "_try_open", lambda encoder, **kw: None)
    with open_source(f"lavfi:testsrc2=size=64x48:rate=25:duration=0.08,format={fmt}", live=False) as src:
        sink = open_sink(tmp_path / "a.mkv", source=src, codec=codec, encoder="nvenc")
        with pytest.raises(EncodeError):
            with sink:
                for f in src:
                    sink.write(f)
    assert sink.fallbacks == ([note] if note else [])


# --- Enhancer.enhance_file ----------------------------------------------------------------------------
@pytest.fixture
def enhancer(mobilenet_weights):
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    return Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights)


@pytest.fixture
def clip(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    return write_video(tmp_path / "in.mp4", [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(6)])


@needs_no_nvenc
def test_enhance_file_encoder(enhancer, clip, tmp_path):
    with pytest.raises(InvalidInputError, match=r"encoder='hw' is not one of \('software', 'nvenc', 'auto'\)"):
        enhancer.enhance_file(clip, tmp_path / "x.mp4", encoder="hw")
    s = enhancer.enhance_file(clip, tmp_path / "a.mp4", encoder="auto")
    assert s.frames_out == 6 and _decoded(tmp_path / "a.mp4")[0] == "h264"
    assert [f for f in s.fallbacks if f.startswith("encoder='auto' used libx264, not NVENC: h264_nvenc did not open")]
    # a folder: no NVENC is the machine's problem, not each video's (not skipped one by one: raised)
    folder = tmp_path / "videos"
    folder.mkdir()
    clip.rename(folder / "in.mp4")
    with pytest.raises(HardwareEncoderError, match="encoder='nvenc' cannot be used"):
        enhancer.enhance_file(folder, tmp_path / "out", encoder="nvenc")
    assert not list((tmp_path / "out").rglob("*.mp4"))


# --- command line ----------------------------------------------------------------------------------
@needs_no_nvenc
def test_cli_encoder_nvenc_exits_2_with_one_line_before_loading_a_model(clip, tmp_path, monkeypatch, capsys):
    # offline with no weights: were the model loaded first, this would be exit 3 (weights)
    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    assert main(["enhance", str(clip), "--encoder", "nvenc", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [ln for ln in err if ln.startswith("stream-gpen:")] == [  # (the command line's words: session 25)
        "stream-gpen: error: --encoder nvenc cannot be used: h264_nvenc did not open: "
        + (LIBCUDA.split(": ", 1)[1] if not torch.cuda.is_available() else err[0].split("did not open: ", 1)[1])]
    assert err[-1] == ("hint: no NVIDIA GPU/driver was found here: NVENC needs an NVIDIA GPU that has it (GeForce/RTX, "
                       "L4, L40S, A10...; not A100/H100/H200) and its driver — use --encoder software" if "libcuda" in err[0] else
                       "hint: this GPU/driver has no NVENC (data-centre GPUs such as A100/H100/H200 have none) "
                       "— use --encoder software")
    assert not (tmp_path / "in_enhanced.mp4").exists()
    assert main(["enhance", str(clip), "--encoder", "gpu"]) == 2
    assert "invalid choice: 'gpu'" in capsys.readouterr().err
    # camera: the same, before the model (a recording or stream is encoded with h264)
    assert main(["camera", "lavfi:testsrc2=size=64x48:rate=25", "-o", str(tmp_path / "cam.mp4"), "--frames", "2",
                 "--encoder", "nvenc", "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "stream-gpen: error: --encoder nvenc cannot be used: h264_nvenc did not open" in err
    assert "A100/H100/H200" in err and not (tmp_path / "cam.mp4").exists()


@needs_no_nvenc
def test_cli_encoder_auto_writes_x264_and_the_report_says_why(clip, tmp_path, tiny_ckpt, det_home):
    report = tmp_path / "r.json"
    out = tmp_path / "out.mp4"
    assert main(["enhance", str(clip), "-o", str(out), "--encoder", "auto", "--model", str(tiny_ckpt),
                 "--device", "cpu", "--quiet", "--preset", "p1", "--report", str(report)]) == 0
    codec, pix, times = _decoded(out)
    assert (codec, pix, len(times)) == ("h264", "yuv420p", 6)
    data = json.loads(report.read_text())
    assert data["frames_out"] == 6
    notes = [f for f in data["fallbacks"] if f.startswith("--encoder auto used libx264, not NVENC: ")]  # (session 25)
    assert len(notes) == 1 and "h264_nvenc did not open" in notes[0]
    assert data["encoder"] == "libx264"


@needs_no_nvenc
def test_camera_encoder_option_makes_live_sinks(tmp_path, tiny_ckpt, det_home, made_sinks):
    made = made_sinks
    out, report = tmp_path / "cam.mp4", tmp_path / "cam.json"
    assert main(["camera", "lavfi:testsrc2=size=96x64:rate=25", "-o", str(out), "--frames", "3", "--encoder", "auto",
                 "--model", str(tiny_ckpt), "--device", "cpu", "--quiet", "--report", str(report)]) == 0
    assert [(s.live, s.encoder_mode, s.encoder) for s in made] == [(True, "auto", "libx264")]
    assert any(f.startswith("--encoder auto used libx264") for f in json.loads(report.read_text())["fallbacks"])
    assert len(_decoded(out)[2]) == 3


def test_info_says_what_auto_would_use(shared, capsys):
    clip = shared / "data/videos/retalking_face2_frontal_talking_head.mp4"
    assert main(["info", str(clip), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    why = nvenc_available("h264")
    assert info["nvenc"] == (why or "available")
    want = ("--encoder auto would encode with h264_nvenc (NVENC)" if why is None
            else "--encoder auto would encode with libx264 (no usable NVENC: see nvenc)")
    assert want in info["plan"]


# --- on a GPU with NVENC ---------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("codec, fmt, live, want_pix", [
    ("h264", "yuv420p", False, "yuv420p"),
    ("h264", "yuv420p", True, "yuv420p"),
    ("hevc", "yuv420p10le", False, "yuv420p10le"),
    ("av1", "yuv420p", False, "yuv420p"),
])
def test_nvenc_encodes_a_clip(tmp_path, codec, fmt, live, want_pix):
    why = nvenc_available(codec)
    if why is not None:
        # CUDA without NVENC (A100/H100/H200) is a normal GPU machine, not a failure; set
        # STREAM_GPEN_REQUIRE_NVENC=1 on a machine that must have it (an RTX/L4 runner)
        if os.environ.get("STREAM_GPEN_REQUIRE_NVENC") == "1":
            pytest.fail(f"STREAM_GPEN_REQUIRE_NVENC=1 but {why}")
        pytest.skip(f"CUDA but no usable {codec} NVENC here (data-centre GPUs such as H100/H200 have none): {why}")
    spec = f"lavfi:testsrc2=size=320x240:rate=30000/1001:duration=1,format={fmt}"
    out = tmp_path / f"o_{codec}.mp4"
    sink, times = _write(spec, out, encoder="nvenc", codec=codec, crf=23, live=live)
    assert sink.encoder == f"{codec}_nvenc" and sink.fallbacks == []
    name, pix, decoded = _decoded(out)
    assert name in (codec, "libdav1d") and pix == want_pix
    assert len(decoded) == len(times) == 30 and decoded == pytest.approx(times, abs=1e-3)
    # the picture survived: 8-bit decode of input and output, mean PSNR
    with open_source(spec, live=False) as a, open_source(str(out), live=False) as b:
        psnr = []
        for fa, fb in zip(a, b):
            d = fa.image.float() - fb.image.float()
            psnr.append(10 * np.log10(255 ** 2 / max(float((d * d).mean()), 1e-6)))
            fa.release()
            fb.release()
    assert np.mean(psnr) > 30, psnr


@needs_no_nvenc
def test_serve_encoder_nvenc_exits_2_before_loading_a_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    assert main(["serve", "--encoder", "nvenc", "--device", "cpu", "--port", "1"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("stream-gpen:")]
    assert len(err) == 1 and "--encoder nvenc cannot be used" in err[0]
