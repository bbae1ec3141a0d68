"""End to end: the streaming pipeline and the Python API, on real clips with the real detector."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from stream_gpen import Enhancer
from stream_gpen.errors import InvalidInputError
from stream_gpen.models.gpen import TINY_CONFIG, random_generator
from tests._clips import write_pcm_clip, write_video
from tests._doubles import SolidRestorer

VIDEOS = "data/videos"


@pytest.fixture(scope="module")
def tiny_enhancer(mobilenet_weights):
    return Enhancer(random_generator(TINY_CONFIG, seed=0), device="cpu", detector_weights=mobilenet_weights,
                    batch_size=4)


def _packets(path, kind):
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        if not streams:
            return []
        return [(p.pts, p.dts, p.duration) for p in c.demux(streams[0]) if p.size]


def _video_pts(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [f.pts for f in c.decode(s)], s.time_base


@pytest.mark.parametrize(
    "clip",
    [
        "retalking_face2_frontal_talking_head.mp4",  # audio, one face
        "hamilton_stage_lowlight_multiface.mp4",  # 2997/100 fps, audio, several faces
        "upscaleavideo_old_movie1_bw_noface.mp4",  # no face: pass-through
    ],
)
def test_video_keeps_frames_timing_and_audio(tiny_enhancer, shared, tmp_path, clip):
    src = shared / VIDEOS / clip
    dst = tmp_path / "out.mp4"
    # (veryfast: B-frames and their reordering as the default preset has them, at a third of
    # x264's time)
    summary = tiny_enhancer.enhance_file(src, dst, preset="veryfast")
    in_pts, in_tb = _video_pts(src)
    out_pts, out_tb = _video_pts(dst)
    assert summary.frames_out == len(in_pts) == len(out_pts)
    # Same presentation times (output time base may differ: compare in seconds).
    in_t = sorted(Fraction(p) * in_tb for p in in_pts)
    out_t = sorted(Fraction(p) * out_tb for p in out_pts)
    assert max(abs(a - b) for a, b in zip(in_t, out_t)) < Fraction(1, 1000)
    # Audio copied packet for packet.
    assert _packets(src, "audio") == _packets(dst, "audio")
    if "noface" in clip:
        assert summary.faces_restored == 0
    else:
        assert summary.faces_restored > 0
        assert summary.detector_calls < summary.frames_out  # tracking between detections


def test_stream_changes_faces_only(shared, mobilenet_weights):
    """Pixels outside every paste mask are bit-identical to the decoded input."""
    from stream_gpen.io import open_source

    clip = shared / VIDEOS / "retalking_face2_frontal_talking_head.mp4"
    solid = SolidRestorer(64)
    enh = Enhancer(solid, device="cpu", detector_weights=mobilenet_weights, batch_size=4)
    ref = []
    with open_source(clip) as src:
        for i, f in enumerate(src):
            if i < 12:
                ref.append(f.image.clone().numpy())
            f.release()
    got = []
    for i, f in enumerate(enh.stream(clip)):
        if i >= 12:
            break
        got.append(f)
    assert [f.index for f in got] == list(range(12))
    assert solid.calls and max(solid.calls) <= 4
    # Where a face may be pasted: the crop square mapped back into the frame (from an independent
    # detection on frame 0; the tracker's smoothing may move it by a few pixels).
    from stream_gpen.faces import FaceDetector, estimate_affines, invert_affines

    det = FaceDetector(backbone="mobilenet0.25", device="cpu", weights=mobilenet_weights)
    d = det.detect([torch.from_numpy(ref[0])])[0]
    inv = invert_affines(estimate_affines(d.landmarks[:1], size=64))[0].numpy()
    corners = np.array([[0, 0, 1], [64, 0, 1], [0, 64, 1], [64, 64, 1]], np.float64) @ inv.T
    x0, y0 = corners.min(axis=0) - 12
    x1, y1 = corners.max(axis=0) + 12
    for r, g in zip(ref[:3], got[:3]):
        changed = np.any(r != g.image, axis=2)
        assert changed.any(), "the face was not pasted"
        ys, xs = np.nonzero(changed)
        assert xs.min() >= x0 and xs.max() <= x1 and ys.min() >= y0 and ys.max() <= y1
        outside = np.ones_like(changed)
        outside[max(0, int(y0)) : int(y1) + 1, max(0, int(x0)) : int(x1) + 1] = False
        assert outside.any() and not changed[outside].any()
    for r, g in zip(ref, got):
        assert np.any(r != g.image)


def test_enhance_image_and_alpha(tiny_enhancer, shared):
    import cv2

    bgr = cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    out = tiny_enhancer.enhance_image(rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.any(out != rgb)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 77, np.uint8)], axis=2)
    out4 = tiny_enhancer.enhance_image(rgba)
    assert out4.shape == rgba.shape and np.all(out4[:, :, 3] == 77)
    grey = rgb[:, :, 1].copy()
    assert tiny_enhancer.enhance_image(grey).shape == grey.shape
    with pytest.raises(InvalidInputError, match="uint8"):
        tiny_enhancer.enhance_image(rgb.astype(np.float32))


def test_enhance_images_batches_faces_across_images(shared, mobilenet_weights):
    import cv2

    solid = SolidRestorer(64)
    enh = Enhancer(solid, device="cpu", detector_weights=mobilenet_weights, batch_size=8)
    imgs = [cv2.imread(str(shared / "data/faces/whole" / n))[:, :, ::-1].copy()
            for n in ("gfpgan_whole_Blake_Lively.jpg", "codeformer_whole_00.jpg")]
    outs = enh.enhance_images(imgs)
    assert len(outs) == 2
    assert len(solid.calls) == 1  # one restorer call for both images' faces
    assert all(np.any(o != i) for o, i in zip(outs, imgs))


def test_folder_mode_mirrors_tree(tiny_enhancer, shared, tmp_path):
    import shutil

    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    shutil.copy(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg", src / "a.jpg")
    shutil.copy(shared / "data/faces/aligned/gpen_ffhq_00000.png", src / "sub" / "b.png")
    dst = tmp_path / "out"
    summary = tiny_enhancer.enhance_file(src, dst)
    assert (dst / "a.jpg").is_file() and (dst / "sub" / "b.png").is_file()
    assert summary.frames_out == 2 and summary.faces_restored >= 2


def test_face_selection_largest(shared, mobilenet_weights):
    import cv2

    solid = SolidRestorer(64)
    enh = Enhancer(solid, device="cpu", detector_weights=mobilenet_weights, faces="largest")
    img = cv2.imread(str(shared / "data/faces/whole/codeformer_whole_00.jpg"))[:, :, ::-1].copy()
    enh.enhance_image(img)
    assert solid.calls == [1]


def test_single_frame_face_and_4k(tmp_path, mobilenet_weights, shared):
    """A face present in one frame only, between two periodic detections, in a 4K clip, is
    restored there and nowhere else (the change watch asks for a probe detection)."""
    import cv2

    face = cv2.imread(str(shared / "data/faces/aligned/gpen_ffhq_00000.png"))[:, :, ::-1]
    face = cv2.resize(face, (600, 600))
    path = tmp_path / "4k.mp4"

    def frames():
        for i in range(4):
            img = np.full((2160, 3840, 3), 90, np.uint8)
            if i == 2:
                img[800:1400, 1600:2200] = face
            yield img

    write_video(path, frames(), rate=10, options={"preset": "ultrafast", "crf": "18"})
    with av.open(str(path)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    for live in (False, True):  # with the file look-ahead smoother, and without (live)
        solid = SolidRestorer(64)
        enh = Enhancer(solid, device="cpu", detector_weights=mobilenet_weights)  # detect_every=5
        # live: the frames are handed in by the caller, so none is dropped however slow this
        # machine is (a file read live is paced at its own rate and drops what comes late)
        frames = list(enh.stream(path, live=False) if not live else enh.stream_frames(decoded, fps=10, live=True))
        assert len(frames) == 4 and [f.image.shape for f in frames] == [(2160, 3840, 3)] * 4
        assert sum(solid.calls) == 1
        white = [int((f.image == 255).all(axis=2).sum()) for f in frames]
        assert white[2] > 10_000 and white[0] == 0 and white[1] == 0 and white[3] == 0, (live, white)


def _film_with_face(shared, frames_with_face, size=150, at=(60, 250)):
    """The real no-face film clip (grain, flicker, motion) with an aligned face pasted into the
    given frames, as RGB uint8 arrays."""
    import cv2

    face = cv2.imread(str(shared / "data/faces/aligned/gpen_ffhq_00000.png"))[:, :, ::-1]
    face = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    out = []
    with av.open(str(shared / VIDEOS / "upscaleavideo_old_movie1_bw_noface.mp4")) as c:
        for i, f in enumerate(c.decode(video=0)):
            img = f.to_ndarray(format="rgb24").copy()
            if i in frames_with_face:
                y, x = at
                img[y : y + size, x : x + size] = face
            out.append(img)
    return out


@pytest.mark.parametrize("live", [False, True])
@pytest.mark.parametrize("case", ["one_frame", "one_frame_at_detection", "enters"])
def test_faces_between_periodic_detections_on_real_footage(shared, mobilenet_weights, case, live):
    """On real film footage: a face shown for one frame between periodic detections (frame 7;
    detections at 0, 5, 10, ...) or on a periodic detection (frame 5) is restored in that frame
    only, with no ghost following the flow after it; a face that appears at frame 7 and stays is
    restored from frame 7 on, not from the next periodic detection."""
    from stream_gpen.faces import FaceDetector, FaceTracker, FixedLagSmoother
    from stream_gpen.pipeline import FaceStage

    present = {"one_frame": {7}, "one_frame_at_detection": {5}, "enters": set(range(7, 27))}[case]
    imgs = _film_with_face(shared, present)
    det = FaceDetector(backbone="mobilenet0.25", device="cpu", weights=mobilenet_weights)
    stage = FaceStage(SolidRestorer(64), det, FaceTracker(detect_every=5),
                      smoother=None if live else FixedLagSmoother(lag=5))
    planned = {}
    for i, img in enumerate(imgs):
        planned.update(stage.plan_frames(i, torch.from_numpy(img)))
    planned.update(stage.plan_flush())
    faces = [len(planned[i]) for i in range(len(imgs))]
    assert faces == [int(i in present) for i in range(len(imgs))], faces
    assert stage.tracker.probes >= 1 and stage.detector_probes == stage.tracker.probes
    if case == "one_frame_at_detection":
        return
    # Without the watch, only periodic detections run: the one-frame face is missed and the
    # entering face waits for frame 10 (this is what the watch fixes).
    stage = FaceStage(SolidRestorer(64), det, FaceTracker(detect_every=5, watch=False))
    faces = [len(stage.plan_frames(i, torch.from_numpy(img))[0][1]) for i, img in enumerate(imgs)]
    assert faces[7] == 0 and faces[8] == 0


def test_paste_stacks_tracked_faces_by_their_track_ids(monkeypatch):
    """Video: each frame's faces reach the paste with their track ids, so two overlapping faces of
    about the same size keep their stacking order when the boxes' jitter swaps which is larger
    (``paste_faces(ids=...)``); still pictures have no ids."""
    from stream_gpen import pipeline
    from stream_gpen.faces import Detections, FaceTracker, reference_points

    def face(cx, scale):
        pts = (reference_points(64) - 32) * scale + torch.tensor([cx, 60.0])
        return pts, torch.tensor([cx - 40 * scale, 20.0, cx + 40 * scale, 110.0])

    class TwoHeads:  # side by side, every other frame the other one a little larger
        def detect(self, images, **kw):
            out = []
            for _ in images:
                k = len(self.seen) % 2
                self.seen.append(k)
                (pa, ba), (pb, bb) = face(70, 1.0 + 0.02 * k), face(110, 1.02 - 0.02 * k)
                out.append(Detections(torch.stack([ba, bb]), torch.stack([pa, pb]).float(), torch.tensor([0.99, 0.98])))
            return out

    det = TwoHeads()
    det.seen = []
    pasted = []
    real = pipeline.paste_faces
    monkeypatch.setattr(pipeline, "paste_faces", lambda *a, ids=None, **kw: (pasted.append(ids), real(*a, ids=ids, **kw))[1])
    stage = pipeline.FaceStage(SolidRestorer(64), det, FaceTracker(detect_every=1, watch=False))
    images = [torch.full((120, 180, 3), 90, dtype=torch.uint8) for _ in range(6)]
    for i, img in enumerate(images):
        (index, aff), = stage.plan_frames(i, img)
        stage.restore([img], [aff], indices=[index])
    assert len(pasted) == 6 and all(ids is not None and len(ids) == 2 for ids in pasted), pasted
    assert all(sorted(ids) == sorted(pasted[0]) for ids in pasted), pasted  # the same two tracks throughout
    pasted.clear()
    stage.restore([images[0]], [stage.plan_still(images[0])])
    assert pasted == [None]


def test_stream_over_a_folder_restores_each_photo_on_its_own(tiny_enhancer, shared, tmp_path):
    """``stream()`` on a folder of photos of different sizes (a phone's portrait and landscape
    shots) crashed in the tracker's optical flow between two pictures of different sizes (a raw
    OpenCV assertion); photos of one size were tracked from one to the next as frames of a
    scene. Each photo is now restored on its own, as enhance_image() does; and the tracker takes
    a new picture size as a new scene (a stream that switches resolution)."""
    from PIL import Image

    from stream_gpen.faces import FaceTracker

    photo = Image.open(shared / "data/faces/aligned/gpen_ffhq_00000.png").convert("RGB").resize((200, 200))
    folder = tmp_path / "shots"
    folder.mkdir()
    photo.save(folder / "a.png")
    photo.resize((148, 148)).save(folder / "b.png")
    got = list(tiny_enhancer.stream(folder))
    assert [f.image.shape for f in got] == [(200, 200, 3), (148, 148, 3)]
    for f, name in zip(got, ("a.png", "b.png")):
        original = np.asarray(Image.open(folder / name))
        want = tiny_enhancer.enhance_image(original)
        assert np.array_equal(f.image, want) and not np.array_equal(want, original), name  # (a face was restored)
    tracker = FaceTracker(detect_every=5)
    assert tracker.needs_detection(0, torch.zeros(64, 64, 3, dtype=torch.uint8))
    tracker.update(0, None, frame=torch.zeros(64, 64, 3, dtype=torch.uint8))
    assert tracker.needs_detection(1, torch.zeros(48, 80, 3, dtype=torch.uint8)) and tracker.scene_cuts == 0
    tracker.update(1, None, frame=torch.zeros(48, 80, 3, dtype=torch.uint8))
    assert tracker.scene_cuts == 1


def test_stream_of_a_photo_url_and_of_a_folder_with_videos(tiny_enhancer, shared, tmp_path, caplog):
    """A photo URL given to stream() is the photo, as enhance_file() reads it (it was decoded as a
    one-frame video: other pixels, and a phone JPEG's EXIF crashed it); a folder's videos, which
    stream() leaves out, are said to be left out."""
    import functools
    import http.server
    import logging
    import threading

    from PIL import Image

    photo = Image.open(shared / "data/faces/aligned/gpen_ffhq_00000.png").convert("RGB").resize((160, 160))
    exif = Image.Exif()
    exif[0x0110] = "Phone"
    www = tmp_path / "www"
    www.mkdir()
    photo.save(www / "face.jpg", exif=exif, quality=92)
    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        by_url = [f.image for f in tiny_enhancer.stream(f"http://127.0.0.1:{srv.server_port}/face.jpg")]
    finally:
        srv.shutdown()
        srv.server_close()
    by_path = [f.image for f in tiny_enhancer.stream(www / "face.jpg")]
    assert len(by_url) == 1 and np.array_equal(by_url[0], by_path[0])
    write_video(www / "clip.mp4", [np.zeros((32, 32, 3), np.uint8)] * 2)
    with caplog.at_level(logging.WARNING, logger="stream_gpen"):
        assert len(list(tiny_enhancer.stream(www))) == 1
    assert "1 video file(s)" in caplog.text and "clip.mp4" in caplog.text


def test_cancel_on_photos(tiny_enhancer, shared, tmp_path):
    """``cancel`` on photos: set before the start, nothing runs and nothing is written; set while
    a single photo is restored, that photo is finished and returned as done (it raised
    Interrupted although the whole photo was written under its name); a folder stops after the
    photo in hand."""
    import threading

    from PIL import Image

    from stream_gpen.errors import Cancelled

    photo = Image.open(shared / "data/faces/aligned/gpen_ffhq_00000.png").convert("RGB").resize((160, 160))
    photo.save(tmp_path / "a.png")
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled, match="before the photo was written"):
        tiny_enhancer.enhance_file(tmp_path / "a.png", tmp_path / "early.png", cancel=stop)
    assert not (tmp_path / "early.png").exists()
    stop.clear()
    summary = tiny_enhancer.enhance_file(tmp_path / "a.png", tmp_path / "late.png", cancel=stop,
                                         on_progress=lambda *a: stop.set())
    assert summary.frames_out == 1 and not summary.interrupted and (tmp_path / "late.png").is_file()
    folder = tmp_path / "shots"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        photo.save(folder / name)
    stop.clear()
    with pytest.raises(Cancelled, match=r"cancelled after 1 of 3 photos; skip_existing=True resumes"):
        tiny_enhancer.enhance_file(folder, tmp_path / "out", cancel=stop, on_progress=lambda *a: stop.set())
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]


def test_a_cancelled_video_run_describes_its_partial_output(tiny_enhancer, tmp_path):
    """The summary an interrupted run carries (and --report writes) named no encoder and left out
    the output's notes (audio transcoded...), which a finished run lists."""
    import threading

    from stream_gpen.errors import Cancelled
    from tests._clips import write_pcm_clip

    src = write_pcm_clip(tmp_path / "in.mkv", range(20), range(20))
    stop = threading.Event()
    with pytest.raises(Cancelled) as info:
        tiny_enhancer.enhance_file(src, tmp_path / "o.webm", cancel=stop, on_progress=lambda *a: stop.set())
    summary = info.value.summary
    assert summary.interrupted and summary.partial_output and Path(summary.partial_output).is_file()
    assert summary.encoder == "libvpx-vp9", summary.encoder
    assert any("transcoded" in f and "libopus" in f for f in summary.fallbacks), summary.fallbacks


def test_model_auto_without_weights_fails_clearly(tmp_path, monkeypatch, mobilenet_weights):
    from stream_gpen.errors import WeightsError

    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    with pytest.raises(WeightsError, match="GPEN-BFR-256.pth"):
        Enhancer("auto", device="cpu", detector_weights=mobilenet_weights)


def test_checkpoint_path_model(tmp_path, mobilenet_weights):
    gen = random_generator(TINY_CONFIG, seed=3)
    ckpt = tmp_path / "mine.pth"
    torch.save(gen.state_dict(), ckpt)
    enh = Enhancer(str(ckpt), device="cpu", detector_weights=mobilenet_weights)
    assert enh.restorer.size == 64


def test_bad_options():
    with pytest.raises(InvalidInputError, match="faces must be one of"):
        Enhancer(SolidRestorer(), faces="biggest")
    with pytest.raises(InvalidInputError, match="unknown model"):
        Enhancer("gpen-bfr-9999", device="cpu")


def test_wrong_kinds_of_arguments_are_said_in_the_api_s_words(tmp_path, mobilenet_weights):
    """Was: ``enhance_file(photo, quality="95")`` -> a bare TypeError from a comparison deep in the
    writer; ``stream(frame for ...)`` -> 'input not found: <generator object ...>'."""
    enh = Enhancer(SolidRestorer(), device="cpu", detector_weights=mobilenet_weights)
    photo = tmp_path / "a.png"
    photo.write_bytes(b"")
    for kw, word in (({"quality": "95"}, "quality"), ({"crf": 20.5}, "crf"), ({"crf": True}, "crf"),
                     ({"preset": 3}, "preset")):
        with pytest.raises(InvalidInputError, match=word):
            enh.enhance_file(photo, tmp_path / "b.png", **kw)
    with pytest.raises(InvalidInputError, match="use stream_frames"):
        next(enh.stream(np.zeros((64, 64, 3), np.uint8) for _ in range(2)))


def test_stream_frames_tracks_the_caller_s_own_pictures(shared, mobilenet_weights, monkeypatch):
    """An OpenCV-style loop's numpy frames through stream_frames(): restored in order, one out per
    picture, faces tracked (fewer detector calls than frames), and the same result as streaming
    the file those frames came from with the same planning (live: no look-ahead; else the
    file's look-ahead smoother)."""
    from stream_gpen.io import open_source
    from stream_gpen.pipeline import FaceStage

    calls = []
    real_detect = FaceStage._detect
    monkeypatch.setattr(FaceStage, "_detect", lambda self, *a, **k: calls.append(1) or real_detect(self, *a, **k))
    clip = shared / VIDEOS / "retalking_face2_frontal_talking_head.mp4"
    pictures = []
    with open_source(clip) as src:
        for f in src:
            if len(pictures) < 12:
                pictures.append(f.image.clone().numpy())
            f.release()
    before = [p.copy() for p in pictures]
    for live in (True, False):
        calls.clear()
        enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, batch_size=4)
        got = list(enh.stream_frames(iter(pictures), fps=25, live=live))  # a generator: no len()
        assert [f.index for f in got] == list(range(12)) and got[3].time == pytest.approx(3 / 25)
        assert all(np.array_equal(a, b) for a, b in zip(pictures, before))  # the caller's arrays untouched
        assert all((f.image != p).any() for f, p in zip(got, pictures))  # a face restored on every frame
        assert 1 <= len(calls) < 12  # tracked between detections
        # the file, planned alike (smooth_lag=0 is the live planning; a file read live would be
        # paced and could drop frames)
        ref = []
        for i, f in enumerate(Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights,
                                       batch_size=4, smooth_lag=0 if live else None).stream(clip, live=False)):
            if i >= 12:
                break
            ref.append(f.image)
        n = 12 if live else 7  # the file's 5-frame look-ahead sees past frame 12 from frame 7 on
        assert all(np.array_equal(a.image, b) for a, b in zip(got[:n], ref[:n]))
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    assert list(enh.stream_frames([])) == []
    with pytest.raises(InvalidInputError, match="enhance_image"):
        next(enh.stream_frames(pictures[0]))
    with pytest.raises(InvalidInputError, match="numpy"):
        next(enh.stream_frames(torch.zeros(2, 8, 8, 3, dtype=torch.uint8)))
    # a failing sequence: the frames taken before the failure are restored and handed out first
    # (the live and look-ahead batches were dropped with the error), then the error is raised
    def camera(fail):
        yield from pictures[:10]
        if fail == "raise":
            raise OSError("camera unplugged")
        yield pictures[0][:100] if fail == "size" else None  # a smaller picture; OpenCV's failed read

    for live in (True, False):
        for fail, err, words in (("raise", OSError, "unplugged"), ("size", InvalidInputError, "one size"),
                                 ("none", InvalidInputError, "picture 10: image must be a numpy array")):
            got = []
            with pytest.raises(err, match=words):
                for f in enh.stream_frames(camera(fail), live=live):
                    got.append(f.index)
            assert got == list(range(10)), (live, fail)
    with pytest.raises(InvalidInputError, match="picture 0"):  # None first was an empty, silent run
        list(enh.stream_frames([None, pictures[0]]))


def test_no_face_video_stream_copied_on_request(tiny_enhancer, shared, tmp_path):
    src = shared / VIDEOS / "upscaleavideo_old_movie1_bw_noface.mp4"
    dst = tmp_path / "copy.mp4"
    s = tiny_enhancer.enhance_file(src, dst, copy_if_no_faces=True)
    assert s.faces_restored == 0 and any("stream-copied" in f for f in s.fallbacks)
    assert s.encoder == "copy" and "video stream-copied" in s.format()  # (it named the discarded re-encode's encoder)
    assert _packets(src, "video") == _packets(dst, "video")
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        pa = [bytes(p) for p in a.demux(video=0) if p.size]
        pb = [bytes(p) for p in b.demux(video=0) if p.size]
    assert pa == pb


def _still_clip(path, frame, n, *, crf, pix_fmt="yuv420p", rotation=None, sar=None) -> None:
    """``n`` copies of an RGB ``frame`` as H.264 at 10 fps, with a display rotation / SAR if given."""
    def setup(s):
        if rotation:
            s.set_display_rotation(rotation)
        if sar is not None:
            s.codec_context.sample_aspect_ratio = sar

    write_video(path, [frame] * n, rate=10, pix_fmt=pix_fmt, options={"preset": "ultrafast", "crf": str(crf)},
                setup=setup)


def test_phone_video_with_display_rotation_is_restored_upright(tmp_path, shared, mobilenet_weights):
    """Sideways pixels + a 90-degree display rotation (how phones record): faces are found on the
    upright picture and the output is written upright, without the rotation flag."""
    import cv2

    face = cv2.imread(str(shared / "data/faces/aligned/gpen_ffhq_00001.png"))[:, :, ::-1]
    upright = np.full((480, 360, 3), 80, np.uint8)
    upright[100:340, 60:300] = cv2.resize(face, (240, 240))
    stored = np.ascontiguousarray(np.rot90(upright, -1, (0, 1)))  # players rotate it back (CCW)

    rotated = tmp_path / "phone.mp4"
    _still_clip(rotated, stored, 3, crf=12, rotation=90)
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    summary = enh.enhance_file(rotated, tmp_path / "out.mp4")
    assert summary.faces_restored == 3
    from stream_gpen.io import open_source

    with open_source(tmp_path / "out.mp4") as src:
        assert src.metadata.rotation == 0 and (src.metadata.width, src.metadata.height) == (360, 480)
        img = next(src).image.numpy()
    # Upright: the white (restored) face sits where the upright picture has it.
    white = (img > 240).all(axis=2)
    ys, xs = np.nonzero(white)
    assert 80 <= ys.mean() <= 360 and 40 <= xs.mean() <= 320


class RecordingRestorer(SolidRestorer):
    """Keeps the crops it is given (and returns them unchanged)."""

    def __init__(self, size: int = 128) -> None:
        super().__init__(size)
        self.crops: list[torch.Tensor] = []

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        self.crops.append(crops.clone())
        return crops.clone()


def test_anamorphic_video_gives_gpen_undistorted_faces(tmp_path, shared, mobilenet_weights):
    """A 16:9 picture stored 4:3-wide with 4:3 pixels (HDV-style SAR 4:3): the stage reads the
    sample aspect ratio and the crops match those of the same picture stored with square pixels."""
    import cv2

    img = cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))[:, :, ::-1]
    square = np.ascontiguousarray(cv2.resize(img, (640, 360), interpolation=cv2.INTER_AREA))
    stored = np.ascontiguousarray(cv2.resize(img, (480, 360), interpolation=cv2.INTER_AREA))

    crops = {}
    for name, frame, sar in (("square", square, Fraction(1, 1)), ("anamorphic", stored, Fraction(4, 3))):
        _still_clip(tmp_path / f"{name}.mkv", frame, 2, crf=10, pix_fmt="yuv444p", sar=sar)
        rec = RecordingRestorer(128)
        enh = Enhancer(rec, device="cpu", detector_weights=mobilenet_weights, faces="largest")
        summary = enh.enhance_file(tmp_path / f"{name}.mkv", tmp_path / f"{name}_out.mkv")
        assert summary.faces_restored == 2
        crops[name] = torch.cat(rec.crops).float()
    mse = ((crops["anamorphic"] - crops["square"]) ** 2).mean()
    assert 10 * torch.log10(255.0**2 / mse) > 25.0


def test_pixel_aspect_from_metadata():
    from types import SimpleNamespace

    from stream_gpen.api import pixel_aspect

    def meta(sar):
        return SimpleNamespace(sample_aspect_ratio=sar)

    assert pixel_aspect(meta(None)) == 1.0 and pixel_aspect(meta(Fraction(0, 1))) == 1.0
    assert pixel_aspect(meta(Fraction(32, 27))) == pytest.approx(32 / 27)
    assert pixel_aspect(meta(Fraction(100, 1))) == 1.0  # a broken header, not a real aspect
    assert pixel_aspect(meta(Fraction(389, 388))) == 1.0  # under 1% from square
    assert pixel_aspect(meta(Fraction(16, 15))) == pytest.approx(16 / 15)  # PAL 4:3
    assert pixel_aspect(None) == 1.0


def test_blend_crops_is_cv2_add_weighted():
    import cv2

    from stream_gpen.pipeline import blend_crops

    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8, generator=g)
    b = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8, generator=g)
    for s in (0.0, 0.25, 0.8, 1.0):
        want = cv2.addWeighted(a.numpy(), s, b.numpy(), 1.0 - s, 0.0)
        assert np.array_equal(blend_crops(a, b, s).numpy(), want)


def test_strength_blends_restored_faces_with_the_original(shared, mobilenet_weights):
    """strength 0.5: the pasted face is half the (white) restoration, half the original picture;
    strength 0: the face comes back exactly as it was (it came back through the 64-px crop,
    blurred, when the blend was in crop space)."""
    import cv2

    from stream_gpen.models.registry import MODELS

    assert MODELS["gpen-bfr-2048"].strength == 0.8 and MODELS["gpen-bfr-512"].strength == 1.0
    with pytest.raises(InvalidInputError, match=r"strength must be None .* in \[0, 1\], got 1.5"):
        Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, strength=1.5)
    rgb = np.ascontiguousarray(cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))[:, :, ::-1])
    outs = {}
    for s in (1.0, 0.5, 0.0):
        enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, faces="largest", strength=s)
        assert enh.strength == s
        outs[s] = enh.enhance_image(rgb).astype(np.int32)
    # where the white face was pasted at full weight over a not-white original
    core = np.all(outs[1.0] == 255, axis=2) & np.all(rgb < 200, axis=2)
    assert core.sum() > 500
    assert np.array_equal(outs[0.0], rgb)
    # strength 0.5 blends the picture itself with the white face (within 1 grey level)
    half = outs[0.5][core]
    assert np.abs(half - (rgb.astype(np.int32)[core] + 255) / 2).max() <= 1.0
    assert np.abs(half - rgb.astype(np.int32)[core]).mean() > 20
    assert Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights).strength == 1.0


def test_folder_with_photos_and_videos(tmp_path, shared, mobilenet_weights):
    """A folder of home media: photos and videos are all restored into the mirror (videos keep
    their frames and audio; a container we do not write becomes .mp4), a broken video is listed
    and the rest goes on, and the summary adds everything up."""
    import shutil

    from stream_gpen.api import default_output
    from stream_gpen.cli import main

    album = tmp_path / "album"
    (album / "2019").mkdir(parents=True)
    shutil.copy(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg", album / "photo.jpg")
    clip = shared / VIDEOS / "retalking_face2_frontal_talking_head.mp4"
    # 8 frames with audio, as .mp4 and as .mts (a camcorder container the sink does not write)
    for name, fmt in (("party.mp4", None), ("camcorder.mts", "mpegts")):
        with av.open(str(clip)) as c, av.open(str(album / "2019" / name), "w", format=fmt) as o:
            vs = o.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
            vs.width, vs.height, vs.pix_fmt = 422, 422, "yuv420p"
            for i, f in enumerate(c.decode(video=0)):
                if i == 8:
                    break
                g = f.reformat(width=422, height=422, format="yuv420p")
                g.pts, g.time_base = i, Fraction(1, 25)
                for p in vs.encode(g):
                    o.mux(p)
            for p in vs.encode():
                o.mux(p)
    (album / "2019" / "broken.mp4").write_bytes(b"\x00" * 5000)
    from PIL import Image

    still = Image.open(album / "photo.jpg").convert("RGB").resize((200, 150))
    still.save(album / "wave.gif", save_all=True, append_images=[still.rotate(3), still.rotate(6)], duration=100)
    solid = SolidRestorer(64)
    enh = Enhancer(solid, device="cpu", detector_weights=mobilenet_weights, batch_size=4)
    seen = []
    summary = enh.enhance_file(album, on_progress=lambda d, t, f: seen.append((d, t)))
    out = Path(default_output(str(album)))
    assert out == tmp_path / "album_enhanced" and (out / "photo.jpg").is_file()
    for name in ("party.mp4", "camcorder.mp4"):
        with av.open(str(out / "2019" / name)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 8
    with av.open(str(out / "wave.mp4")) as c:  # an animated GIF becomes a video
        assert sum(1 for _ in c.decode(video=0)) == 3
    assert summary.frames_out == 1 + 8 + 8 + 3 and summary.faces_restored >= 1 + 16
    assert len(summary.skipped) == 1 and "broken.mp4" in summary.skipped[0]
    # counts go on across files, against the folder's total (the broken file's header says nothing,
    # so no total then); the same folder without it has one: 1 photo + 8 + 8 + 3 frames
    assert seen[-1][0] == 20 and all(t is None for _, t in seen)
    assert "restore" in summary.stage_seconds and summary.seconds > 0
    # the command line: the same, and exit code 5 because one file could not be read
    assert main(["enhance", str(album), "-o", str(tmp_path / "cli_out"), "--model", "classic", "--device", "cpu",
                 "--quiet", "--preset", "ultrafast", "--detector-weights", str(mobilenet_weights)]) == 5
    assert (tmp_path / "cli_out" / "2019" / "party.mp4").is_file()
    (album / "2019" / "broken.mp4").unlink()
    seen.clear()
    enh.enhance_file(album, tmp_path / "again", on_progress=lambda d, t, f: seen.append((d, t)))
    assert seen[-1] == (20, 20)


def test_output_folder_inside_the_input_is_left_out(tmp_path, shared, mobilenet_weights):
    """`enhance album -o album/enhanced`, run twice: the second run does not restore the first
    run's outputs again (nor nest album/enhanced/enhanced/...)."""
    import shutil

    album = tmp_path / "album"
    album.mkdir()
    shutil.copy(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg", album / "photo.jpg")
    (album / "notes.txt").write_text("x")
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    for _ in range(2):
        summary = enh.enhance_file(album, album / "enhanced", overwrite=True)
        assert summary.frames_out == 1
    assert sorted(p.relative_to(album).as_posix() for p in album.rglob("*") if p.is_file()) == [
        "enhanced/photo.jpg", "notes.txt", "photo.jpg"]


def test_skip_existing_resumes_a_folder_run(tmp_path, shared, mobilenet_weights):
    """An interrupted folder run is resumed: outputs that exist are left as they are (not even
    decoded), the rest are done; a single input whose output exists is a no-op."""
    import shutil

    from stream_gpen.cli import main

    album = tmp_path / "album"
    album.mkdir()
    for n in ("a", "b", "c"):
        shutil.copy(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg", album / f"{n}.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.jpg").write_bytes(b"done before")  # what the interrupted run wrote
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    from stream_gpen.errors import OutputExistsError

    with pytest.raises(OutputExistsError, match="output exists") as e:
        enh.enhance_file(album, out)
    # (refused before any photo is done: it wrote a.jpg, then stopped at b.jpg, before api29)
    assert "skip_existing=True resumes" in e.value.hint and not (out / "a.jpg").exists()
    summary = enh.enhance_file(album, out, skip_existing=True)
    assert summary.frames_out == 2 and (out / "b.jpg").read_bytes() == b"done before" and (out / "c.jpg").is_file()
    assert any("1 file(s) already in" in f for f in summary.fallbacks), summary.fallbacks
    again = enh.enhance_file(album, out, skip_existing=True)
    assert again.frames_out == 0 and any("3 file(s) already in" in f for f in again.fallbacks)
    one = enh.enhance_file(album / "a.jpg", out / "a.jpg", skip_existing=True)
    assert one.frames_out == 0 and "left as it is" in one.fallbacks[-1]
    det = ["--detector-weights", str(mobilenet_weights), "--model", "classic", "--device", "cpu", "--quiet"]
    assert main(["enhance", str(album / "a.jpg"), "-o", str(out / "a.jpg"), "--skip-existing", *det]) == 0
    assert main(["enhance", str(album / "a.jpg"), "-o", str(out / "a.jpg"), *det]) == 2  # exists, no flag


def test_max_faces_keeps_the_largest(shared, mobilenet_weights):
    """--max-faces N: at most N faces per picture, the largest ones (photos and video alike)."""
    import cv2

    rgb = np.ascontiguousarray(cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))[:, :, ::-1])
    det = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights).detector.detect(
        [torch.from_numpy(rgb)])[0]
    assert len(det) >= 2
    areas = ((det.boxes[:, 2] - det.boxes[:, 0]) * (det.boxes[:, 3] - det.boxes[:, 1])).tolist()
    solid = SolidRestorer(64)
    enh = Enhancer(solid, device="cpu", detector_weights=mobilenet_weights, max_faces=1)
    out = enh.enhance_image(rgb)
    assert solid.calls == [1]
    big = det.boxes[int(np.argmax(areas))].int().tolist()
    cx, cy = (big[0] + big[2]) // 2, (big[1] + big[3]) // 2
    assert np.all(out[cy, cx] == 255)  # the largest face is the one restored


def test_compare_writes_input_and_result_side_by_side(tmp_path, shared, mobilenet_weights):
    """--compare: twice the width, input on the left, the restored result on the right, every
    frame and the audio kept; photos too."""
    clip = shared / VIDEOS / "retalking_face2_frontal_talking_head.mp4"
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, batch_size=4)
    dst = tmp_path / "cmp.mp4"
    summary = enh.enhance_file(clip, dst, compare=True, duration=1.0, crf=0, preset="ultrafast")
    assert summary.frames_out == 25
    with av.open(str(clip)) as c:
        src0 = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        frames = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    assert len(frames) == 25 and frames[0].shape == (844, 1688, 3)
    left, right = frames[0][:, :844], frames[0][:, 844:]
    assert np.abs(left - src0).mean() < 1.5  # the input, untouched (lossless encode)
    assert (right == 255).all(axis=2).sum() > 1000 and (left == 255).all(axis=2).sum() < 100  # the white paste
    import cv2

    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg")))
    enh.enhance_file(photo, tmp_path / "p_cmp.png", compare=True)
    a = cv2.imread(str(photo))
    b = cv2.imread(str(tmp_path / "p_cmp.png"))
    assert b.shape == (a.shape[0], 2 * a.shape[1], 3) and np.array_equal(b[:, : a.shape[1]], a)


def test_video_detect_size_follows_the_frame():
    """Default detector size for video: half the display long side, within 640..1280."""
    from types import SimpleNamespace as M

    from stream_gpen.api import video_detect_size

    assert video_detect_size(M(width=640, height=360)) == 640
    assert video_detect_size(M(width=1280, height=720)) == 640
    assert video_detect_size(M(width=1920, height=1080)) == 960
    assert video_detect_size(M(width=1080, height=1920)) == 960  # portrait: its long side
    assert video_detect_size(M(width=3840, height=2160)) == 1280
    assert video_detect_size(M(width=1440, height=1080), 4 / 3) == 960  # HDV: 1920 wide on screen


def test_crowd_1080p_video_finds_the_faces_a_third_scale_missed(tmp_path, shared, mobilenet_weights):
    """The 1080p crowd clip's walkers (faces ~40-140 px): at the default (960 for 1080p) more
    faces are restored than at 640, where a 50-px face is 17 px to the network."""
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    clip = shared / "data/videos/facenet_crowd_1080p_multiface.mp4"
    got = {}
    for size in (None, 640):
        enh = Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, progress=False,
                       detect_size=size)
        # (ultrafast: the encoder's own work on 25 1080p frames was most of this test's time, and
        # it plays no part in which faces are found)
        got[size] = enh.enhance_file(clip, tmp_path / f"o{size}.mp4", duration=1.0, preset="ultrafast").faces_restored
    assert got[None] > got[640] * 1.1, got


def test_min_score_leaves_unsure_faces_of_a_photo(shared, mobilenet_weights, monkeypatch):
    """A photo's face the detector scores under ``min_score`` (default 0.9, GPEN's threshold) is
    left as it is; the detector itself still finds down to 0.8 (kept video tracks use those)."""
    import cv2

    rgb = np.ascontiguousarray(cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))[:, :, ::-1])
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, progress=False)
    assert enh.min_score == 0.9 and enh.detector.score_threshold == 0.8
    real = enh.detector.detect_pyramid([torch.from_numpy(rgb)], (640, 2560))[0]
    assert len(real) >= 2
    # the detector says it is less sure of the first face
    scores = torch.full((len(real),), 0.99)
    scores[0] = 0.85
    unsure = type(real)(real.boxes, real.landmarks, scores)
    for min_score, restored in ((0.9, len(real) - 1), (0.8, len(real))):
        solid = SolidRestorer(64)
        e = Enhancer(solid, device="cpu", detector_weights=mobilenet_weights, progress=False, min_score=min_score)
        monkeypatch.setattr(e.detector, "detect_pyramid", lambda *a, **k: [unsure])
        out = e.enhance_image(rgb)
        assert solid.calls == [restored]
        x0, y0, x1, y1 = real.boxes[0].int().tolist()
        centre = out[(y0 + y1) // 2, (x0 + x1) // 2]
        assert np.all(centre == 255) == (min_score < 0.85)
    assert Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights,
                    min_score=0.5).detector.score_threshold == 0.5
    for bad in (0, 1.0, -0.1, "0.9", True):
        with pytest.raises(InvalidInputError):
            Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, min_score=bad)


def test_min_score_flag_reaches_the_tracker(mobilenet_weights):
    from stream_gpen.cli import build_parser
    from stream_gpen.commands import _make_enhancer

    p = build_parser()
    for argv, want in ((["enhance", "in.mp4"], 0.9), (["enhance", "in.mp4", "--min-score", "0.6"], 0.6),
                       (["camera", "lavfi:testsrc2", "--min-score", "0.7"], 0.7)):
        args = p.parse_args(argv + ["--model", "classic", "--device", "cpu", "--detector-weights", str(mobilenet_weights)])
        enh = _make_enhancer(args)
        assert enh.min_score == want and enh._stage().tracker.min_score == want
        assert enh.detector.score_threshold == min(0.8, want)


def test_a_restorer_without_buckets_gets_bounded_batches(mobilenet_weights):
    """A crowd's faces reach a restorer with no buckets of its own (``classic``, a test double) in
    batches of at most 8, not in one call (its working memory grows with the batch: ~22 MiB per
    512 px face for classic)."""
    solid = SolidRestorer(64)
    stage = Enhancer(solid, device="cpu", detector_weights=mobilenet_weights, progress=False)._stage()
    out = stage._run_restorer(torch.zeros(20, 3, 64, 64, dtype=torch.uint8))
    assert solid.calls == [8, 8, 4] and out.shape == (20, 3, 64, 64) and bool((out == 255).all())


def test_library_use_contracts(shared, mobilenet_weights, tmp_path):
    """As a library: enhance_images takes any iterable (a generator gave [] after doing the work);
    a custom restorer's wrong output is refused naming it; constructor options are checked up
    front; cpu_memory='system' leaves the allocator alone."""
    import cv2

    rgb = np.ascontiguousarray(cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))[:, :, ::-1])
    solid = SolidRestorer(64)
    enh = Enhancer(solid, device="cpu", detector_weights=mobilenet_weights, progress=False)
    outs = enh.enhance_images(im for im in (rgb, rgb[::2, ::2]))
    assert [o.shape for o in outs] == [rgb.shape, rgb[::2, ::2].shape]

    class Float(SolidRestorer):
        def __call__(self, crops):
            return crops.float() / 255

    with pytest.raises(InvalidInputError, match="returned torch.float32 .* must return torch.uint8"):
        Enhancer(Float(64), device="cpu", detector_weights=mobilenet_weights, progress=False).enhance_image(rgb)
    for kw in ({"max_faces": 0}, {"max_faces": 1.5}, {"min_face": float("nan")}, {"min_face": "10"},
               {"aligned": "no"}, {"high_bit_depth": "no"}, {"cpu_memory": "free"}):
        with pytest.raises(InvalidInputError):
            Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, **kw)
    gen = random_generator(TINY_CONFIG, seed=0)
    from stream_gpen.runtime._cpu_memory import freed_memory_kept

    runner = Enhancer(gen, device="cpu", detector_weights=mobilenet_weights, cpu_memory="system").restorer
    assert runner.cpu_memory == ("keep" if freed_memory_kept() else "system")  # what is in effect


def test_copy_if_no_faces_in_place_keeps_the_original(shared, mobilenet_weights, tmp_path, capsys):
    """The output replacing the input with copy_if_no_faces: the restored file replaced the input
    before the no-face copy ran, which then copied the re-encode while saying 'stream-copied'."""
    import shutil

    from stream_gpen.cli import main

    src = tmp_path / "nf.mp4"
    shutil.copy(shared / VIDEOS / "upscaleavideo_old_movie1_bw_noface.mp4", src)
    before = src.read_bytes()
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, progress=False)
    s = enh.enhance_file(src, src, overwrite=True, copy_if_no_faces=True)
    assert src.read_bytes() == before and any("left as it was" in f for f in s.fallbacks)
    assert [p.name for p in tmp_path.iterdir()] == ["nf.mp4"]  # no hidden copy left
    assert main(["enhance", str(src), "-o", str(src), "--model", "classic", "--device", "cpu",
                 "--detector-weights", str(mobilenet_weights)]) == 2
    assert "the output is the input itself" in capsys.readouterr().err


def test_stream_takes_no_audio_and_says_nothing_about_it(tmp_path, mobilenet_weights, caplog):
    """stream() yields pictures only: a file's audio is not collected, and no warning is logged
    about it (one came from the decode thread mid-loop on every clip with sound)."""
    import logging

    path = write_pcm_clip(tmp_path / "av.mkv", range(80), range(80))
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, progress=False)
    with caplog.at_level(logging.WARNING, logger="stream_gpen"):
        n = sum(1 for _ in enh.stream(str(path)))
    assert n == 80
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]


def test_progress_total_prefers_the_header_count():
    from types import SimpleNamespace

    from stream_gpen.api import _expected_frames

    # an AAC tail makes the container's duration longer than the video's 125 frames
    meta = SimpleNamespace(frame_count=None, frame_count_header=125, duration_s=5.023, frame_rate=Fraction(25))
    assert _expected_frames(meta) == 125
    assert _expected_frames(SimpleNamespace(frame_count=None, frame_count_header=None, duration_s=2.0,
                                            frame_rate=Fraction(25))) == 50
