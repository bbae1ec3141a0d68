"""Image and folder sources/sinks: EXIF orientation, alpha kept aside and restored, tree mirrored."""
from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from stream_gpen.errors import EmptyMediaError, InvalidInputError, MediaNotFoundError, NotMediaError, OutputExistsError
from stream_gpen.io import ImageSource, open_sink, open_source


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = 255  # white band on the left as stored
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "o.jpg", exif=exif, quality=95)
    with open_source(tmp_path / "o.jpg") as src:
        assert isinstance(src, ImageSource) and src.metadata.kind == "image"
        f = next(src)
    assert tuple(f.image.shape) == (40, 20, 3)  # upright: portrait now
    assert f.image[:10, :, 0].float().mean() > 200  # the left band is now at the top
    assert f.rel_path == "o.jpg"


def test_alpha_kept_aside_and_restored(tmp_path):
    rgba = np.dstack([_rgb(16, 24), np.tile(np.arange(24, dtype=np.uint8) * 10, (16, 1))])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    with open_source(tmp_path / "a.png") as src:
        f = next(src)
        assert f.alpha is not None and f.alpha.dtype == torch.uint8 and tuple(f.alpha.shape) == (16, 24)
        f.image[:] = 255 - f.image  # in-place edit, as paste-back does
        with open_sink(tmp_path / "out.png", source=src) as sink:
            sink.write(f)
    back = np.asarray(Image.open(tmp_path / "out.png"))
    assert back.shape == (16, 24, 4)
    assert np.array_equal(back[:, :, 3], rgba[:, :, 3]) and np.array_equal(back[:, :, :3], 255 - rgba[:, :, :3])
    # jpeg cannot store alpha: written, and said so
    with open_source(tmp_path / "a.png") as src:
        with open_sink(tmp_path / "out.jpg", source=src) as sink:
            for f in src:
                sink.write(f)
    assert any("cannot store alpha" in m for m in sink.fallbacks)


def test_folder_tree_mirrored(tmp_path):
    root = tmp_path / "in"
    (root / "b" / "c").mkdir(parents=True)
    Image.fromarray(_rgb(8, 12, 1)).save(root / "a.png")
    Image.fromarray(_rgb(10, 6, 2)).save(root / "b" / "c" / "y.png")
    (root / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    with open_source(root) as src:
        assert src.metadata.kind == "folder" and src.metadata.frame_count == 2
        with open_sink(out, source=src, image_format="webp", quality=100) as sink:
            rels = []
            for f in src:
                rels.append(f.rel_path)
                sink.write(f)
    assert rels == ["a.png", "b/c/y.png"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a.webp", "b/c/y.webp"]
    assert Image.open(out / "b" / "c" / "y.webp").size == (6, 10)
    with open_source(root) as src, pytest.raises(OutputExistsError, match="output exists"):
        with open_sink(out, source=src, image_format="webp") as sink:
            for f in src:
                sink.write(f)


def test_png_roundtrip_is_exact(tmp_path):
    arr = _rgb(9, 7, 3)
    Image.fromarray(arr).save(tmp_path / "x.png")
    with open_source(tmp_path / "x.png") as src:
        with open_sink(tmp_path / "y.png", source=src) as sink:
            for f in src:
                sink.write(f)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "y.png")), arr)


def test_image_errors(tmp_path):
    with pytest.raises(MediaNotFoundError, match="not found"):
        open_source(tmp_path / "none.png")
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(EmptyMediaError, match="0 bytes"):
        open_source(tmp_path / "e.png")
    (tmp_path / "g.jpg").write_bytes(b"definitely not a jpeg" * 10)
    with pytest.raises(NotMediaError, match="cannot read .* as an image"):
        open_source(tmp_path / "g.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotMediaError, match="contains no images"):
        open_source(tmp_path / "empty")
    with pytest.raises(InvalidInputError, match="quality=0 must be within 1..100"):
        open_sink(tmp_path / "q.jpg", quality=0)


@pytest.mark.parametrize("ext, fmt", [(".heic", "HEIF"), (".avif", "AVIF")])
def test_phone_photo_formats_round_trip(tmp_path, shared, mobilenet_weights, ext, fmt):
    """HEIC (iPhones' default) and AVIF photos: read upright (stored sideways + EXIF orientation 6
    as phones write them), restored, written back in the same format next to the input, EXIF
    (camera, Orientation 1), ICC profile and transparency kept; a folder of them works too."""
    from PIL import ImageCms

    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    import stream_gpen.io._image as image_mod

    image_mod._heif_plugin(Path("x.heic"))  # so this test can write HEIC with Pillow too
    # (at half size, 350 x 232: the HEIC/AVIF encodes of the full 700 x 464 photo were most of this test's time)
    upright = Image.open(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg").convert("RGB").reduce(2)
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # EXIF 6 = turn 90 CW to display
    exif = Image.Exif()
    exif[0x0112], exif[0x010F], exif[0x0110] = 6, "Apple", "iPhone 15"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / f"IMG_0001{ext}"
    sideways.save(src, quality=95, exif=exif.tobytes(), icc_profile=icc)
    enh = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    summary = enh.enhance_file(src)
    dst = tmp_path / f"IMG_0001_enhanced{ext}"
    assert summary.faces_restored >= 1 and dst.is_file()
    with Image.open(dst) as out:
        assert out.format == fmt and out.size == upright.size
        assert out.getexif().get(0x010F) == "Apple" and out.getexif().get(0x0112, 1) == 1
        assert out.info.get("icc_profile") == icc
        got = np.asarray(out.convert("RGB"), dtype=np.float64)
    enh.enhance_file(src, tmp_path / "lossless.png")  # the same restoration, written losslessly
    want = np.asarray(Image.open(tmp_path / "lossless.png").convert("RGB"), dtype=np.float64)
    psnr = 10 * np.log10(255**2 / np.mean((got - want) ** 2))
    assert psnr > 36, psnr  # only the lossy encode at quality 95 between them
    # transparency survives (both formats hold alpha)
    rgba = upright.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.full(upright.size[::-1], 200, np.uint8)))
    folder = tmp_path / "album"
    folder.mkdir()
    rgba.save(folder / f"a{ext}", quality=95)
    upright.save(folder / "b.jpg", quality=95)
    (folder / "notes.txt").write_text("hello")
    (folder / "raw.dng").write_bytes(b"not an image we read")
    summary = enh.enhance_file(folder, tmp_path / "album_out")
    # what is neither an image nor a video is left alone, and said so (a raw photo as one not read here)
    assert any("1 file(s)" in f and "neither images nor videos" in f and "(1 .txt)" in f
               and "1 photo(s)" in f and "formats not read here" in f and "(1 raw DNG)" in f
               for f in summary.fallbacks), summary.fallbacks
    assert not (tmp_path / "album_out" / "notes.txt").exists()
    with Image.open(tmp_path / "album_out" / f"a{ext}") as a:
        assert a.format == fmt and a.mode == "RGBA"
        assert abs(int(np.asarray(a)[..., 3].mean()) - 200) <= 2
    assert (tmp_path / "album_out" / "b.jpg").is_file()


def test_heic_wide_gamut_colour_description_is_kept_or_reported(tmp_path, mobilenet_weights):
    """iPhones describe Display P3 in HEIC with an nclx box, not an ICC profile: a .heic output
    keeps it; a .jpg output cannot, and says so instead of silently desaturating the photo."""
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    import stream_gpen.io._image as image_mod

    image_mod._heif_plugin(Path("x.heic"))
    p3 = {"color_primaries": 12, "transfer_characteristics": 13, "matrix_coefficients": 6, "full_range_flag": 1}
    src = tmp_path / "p3.heic"
    Image.fromarray(_rgb(48, 64)).save(src, quality=90, nclx_profile=p3)
    enh = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    enh.enhance_file(src)
    with Image.open(tmp_path / "p3_enhanced.heic") as out:
        assert {k: out.info["nclx_profile"][k] for k in p3} == p3
    summary = enh.enhance_file(src, tmp_path / "p3.jpg")
    assert any("nclx, primaries 12" in f and "less saturated" in f for f in summary.fallbacks), summary.fallbacks


def test_folder_photos_converted_to_one_format(tmp_path, shared, mobilenet_weights):
    """--image-format jpg: a folder of iPhone HEICs (and a PNG) comes out as JPEGs, EXIF kept;
    --skip-existing then knows the converted names."""
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    import stream_gpen.io._image as image_mod

    image_mod._heif_plugin(Path("x.heic"))
    album = tmp_path / "album"
    album.mkdir()
    photo = Image.open(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg").convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    photo.save(album / "IMG_1.heic", quality=90, exif=exif.tobytes())
    photo.save(album / "scan.png")
    enh = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    out = tmp_path / "out"
    enh.enhance_file(album, out, image_format="jpg")
    assert sorted(p.name for p in out.iterdir()) == ["IMG_1.jpg", "scan.jpg"]
    with Image.open(out / "IMG_1.jpg") as im:
        assert im.format == "JPEG" and im.getexif().get(0x010F) == "Apple"
    again = enh.enhance_file(album, out, image_format="jpg", skip_existing=True)
    assert again.frames_out == 0


def test_folder_inputs_never_share_an_output(tmp_path, mobilenet_weights):
    """Two inputs that would land on one output name (``a.jpg`` and ``a.png`` as JPEGs; ``clip.gif``
    and ``clip.mp4``, both written as .mp4) each get their own: the one already in the output's
    format keeps the name, the other takes its extension into it; the summary says so, and a
    resumed run knows the new names. Thumbnail, trash and hidden folders are left out."""
    from stream_gpen import Enhancer
    from tests._clips import write_video
    from tests._doubles import IdentityRestorer

    album = tmp_path / "album"
    for d in ("", ".thumbnails", "@eaDir/a.jpg", ".Trash-1000/files"):
        (album / d).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(album / "a.jpg")
    Image.fromarray(rng.integers(0, 255, (30, 20, 3), dtype=np.uint8)).save(album / "a.png")
    for d in (".thumbnails", "@eaDir/a.jpg", ".Trash-1000/files"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(album / d / "thumb.jpg")
    write_video(album / "clip.gif", [np.full((32, 48, 3), 40 * i, np.uint8) for i in range(3)],
                codec="gif", pix_fmt="rgb8", rate=5)
    write_video(album / "clip.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)], rate=5)
    enh = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    out = tmp_path / "out"
    summary = enh.enhance_file(album, out, image_format="jpg")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "a.jpg", "a_png.jpg", "clip.mp4", "clip_gif.mp4"]
    with Image.open(out / "a.jpg") as a, Image.open(out / "a_png.jpg") as b:
        assert a.size == (50, 40) and b.size == (20, 30)
    for name, n, size in (("clip.mp4", 5, (64, 48)), ("clip_gif.mp4", 3, (48, 32))):
        with av.open(str(out / name)) as c:
            s = c.streams.video[0]
            assert (sum(1 for _ in c.decode(s)), s.width, s.height) == (n, *size), name
    assert "a.png written as a_png.jpg: a.jpg takes a.jpg" in summary.fallbacks
    assert "clip.gif written as clip_gif.mp4: clip.mp4 takes clip.mp4" in summary.fallbacks
    assert summary.frames_out == 2 + 5 + 3 and not summary.skipped
    again = enh.enhance_file(album, out, image_format="jpg", skip_existing=True)
    assert again.frames_out == 2 + 5 + 3 and not again.skipped  # the clashing ones are redone
    assert any("whose names clash were redone" in f for f in again.fallbacks)


def test_a_resumed_run_leaves_what_another_run_writes_meanwhile(tmp_path, mobilenet_weights):
    """Two --skip-existing runs into one folder at once: the list of what is done was made at the
    start, so the second stopped ("output exists") at the first photo the other had written since,
    and would have redone its videos. Each output is looked for again when its turn comes."""
    from stream_gpen import Enhancer
    from tests._clips import write_video
    from tests._doubles import IdentityRestorer

    album, out = tmp_path / "album", tmp_path / "out"
    album.mkdir()
    for name, colour in (("a", (200, 0, 0)), ("b", (0, 200, 0)), ("c", (0, 0, 200))):
        Image.new("RGB", (40, 30), colour).save(album / f"{name}.png")
    write_video(album / "clip.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)], rate=5)
    others = {out / "b.jpg": b"the other run's b", out / "c.jpg": b"the other run's c",
              out / "clip.mp4": b"the other run's clip"}

    def other_run(done, total, faces):  # after this run's first photo, the other writes the rest
        if done == 1:
            for path, data in others.items():
                if not path.exists():
                    path.write_bytes(data)

    enh = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    summary = enh.enhance_file(album, out, image_format="jpg", skip_existing=True, on_progress=other_run)
    assert {p: p.read_bytes() for p in others} == others
    with Image.open(out / "a.jpg") as a:
        assert a.getpixel((5, 5))[0] > 150
    assert summary.frames_out == 1 and not summary.skipped
    assert any("2 photo(s) whose output another run wrote meanwhile" in f for f in summary.fallbacks), summary.fallbacks
    assert any("clip.mp4 was written meanwhile" in f for f in summary.fallbacks), summary.fallbacks


def test_a_folders_raw_video_streams_are_mirrored(tmp_path, mobilenet_weights):
    """A drone's .h264/.hevc or an encoder's .y4m beside the photos: read alone, they work; in a
    folder they were not taken for videos at all ("contains no images ... and no videos")."""
    from stream_gpen import Enhancer
    from tests._clips import write_video
    from tests._doubles import IdentityRestorer

    album, out = tmp_path / "album", tmp_path / "out"
    album.mkdir()
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)]
    write_video(album / "talk.y4m", frames, codec="rawvideo", pix_fmt="yuv420p", fmt="yuv4mpegpipe")
    write_video(album / "drone.h264", frames, fmt="h264")
    write_video(album / "cam.mjpeg", frames, codec="mjpeg", pix_fmt="yuvj420p", fmt="mjpeg")
    enh = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    summary = enh.enhance_file(album, out)
    assert sorted(p.name for p in out.iterdir()) == ["cam.mp4", "drone.mp4", "talk.mp4"]
    assert summary.frames_out == 9 and not summary.skipped


def test_a_jpeg_cut_short_by_a_full_disk_is_not_kept(tmp_path, shared, mobilenet_weights):
    """Pillow's JPEG encoder does not notice a short write: on a full disk (here a file-size
    limit of 8 KiB) an in-place run replaced the photo with its first 8 KiB and exited 0."""
    import resource
    import shutil
    import subprocess
    import sys

    photo = tmp_path / "mine.jpg"
    shutil.copy(shared / "data/faces/whole/codeformer_whole_00.jpg", photo)
    before = photo.read_bytes()
    assert len(before) > 16384

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    exe = [sys.executable, "-m", "stream_gpen", "enhance", str(photo), "-o", str(photo), "--overwrite",
           "--model", "classic", "--device", "cpu", "--quiet", "--detector-weights", str(mobilenet_weights)]
    r = subprocess.run(exe, preexec_fn=small_disk, capture_output=True, text=True, timeout=300)
    assert r.returncode == 4, (r.returncode, r.stderr)
    assert photo.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.jpg"]  # no temporary file left


def test_resume_after_a_clashing_file_was_added(tmp_path, mobilenet_weights):
    """Run 1 has only a.png (-> a.jpg); a.jpg is added; the resumed run must restore it into
    a.jpg, not keep a.png's picture there as "done" and never restore the new photo."""
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    album, out = tmp_path / "album", tmp_path / "out"
    album.mkdir()
    Image.new("RGB", (40, 30), (200, 0, 0)).save(album / "a.png")
    enh = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    enh.enhance_file(album, out, image_format="jpg", skip_existing=True)
    Image.new("RGB", (40, 30), (0, 0, 200)).save(album / "a.jpg")
    enh.enhance_file(album, out, image_format="jpg", skip_existing=True)
    with Image.open(out / "a.jpg") as blue, Image.open(out / "a_png.jpg") as red:
        assert blue.getpixel((5, 5))[2] > 150 and red.getpixel((5, 5))[0] > 150


def test_folder_outputs_names_clashes_ignoring_case(tmp_path):
    from stream_gpen.io._image import folder_outputs

    root, dst = tmp_path / "in", tmp_path / "out"
    files = [root / "IMG_1.HEIC", root / "IMG_1.JPG", root / "IMG_1.jpeg", root / "IMG_1_heic.jpg", root / "x/b.png"]
    plan, notes, clashing = folder_outputs(root, dst, files, lambda q: ".jpg")
    assert {str(k.relative_to(root)): str(v.relative_to(dst)) for k, v in plan.items()} == {
        "IMG_1.HEIC": "IMG_1_heic_2.jpg",  # IMG_1_heic.jpg is another input's output
        "IMG_1.JPG": "IMG_1.jpg", "IMG_1.jpeg": "IMG_1_jpeg.jpg", "IMG_1_heic.jpg": "IMG_1_heic.jpg", "x/b.png": "x/b.jpg"}
    assert len(notes) == 2 and clashing == set(files[:3])
    # two folders named apart only by case: each file stays in its own mirrored folder, renamed
    # from its own name (photos/a.jpg went into Photos/, named after the other file)
    files = [root / "Photos/a.jpg", root / "photos/a.jpg", root / "Case.jpg", root / "case.jpg"]
    plan, notes, _ = folder_outputs(root, dst, files, lambda q: q.suffix)
    assert {str(k.relative_to(root)): str(v.relative_to(dst)) for k, v in plan.items()} == {
        "Photos/a.jpg": "Photos/a.jpg", "photos/a.jpg": "photos/a_jpg.jpg", "Case.jpg": "Case.jpg",
        "case.jpg": "case_jpg.jpg"}


def test_photo_loads_in_two_threads_leave_the_warning_filters_alone(tmp_path, monkeypatch):
    """Each photo load records Pillow's warnings with ``warnings.catch_warnings``, which swaps the
    process-wide filters: two loads overlapping in two threads (two Enhancers, a server's jobs)
    left an "always" filter in the host program for good. The loads now take turns there."""
    import threading
    import warnings

    from stream_gpen.io import _image

    Image.new("RGB", (16, 16), (90, 90, 90)).save(tmp_path / "a.png")
    real = _image._load_checked
    inside_b, done_a = threading.Event(), threading.Event()

    def slow(path, notes):
        if threading.current_thread().name == "A":
            inside_b.wait(1.5)  # without turns, B enters meanwhile and leaves last
        else:
            inside_b.set()
            done_a.wait(1.5)
        return real(path, notes)

    monkeypatch.setattr(_image, "_load_checked", slow)
    before = list(warnings.filters)

    def a():
        _image._load(tmp_path / "a.png")
        done_a.set()

    ta = threading.Thread(target=a, name="A")
    tb = threading.Thread(target=lambda: _image._load(tmp_path / "a.png"), name="B")
    ta.start()
    time.sleep(0.2)  # (ordering for the old race only; the assertion holds for any interleaving)
    tb.start()
    ta.join(10)
    tb.join(10)
    try:
        assert warnings.filters == before
    finally:
        warnings.filters[:] = before


def test_folder_walk_follows_linked_folders_and_says_what_it_leaves_out(tmp_path, caplog):
    """A photo library's year folder linked in from elsewhere was left out without a word (Python
    3.11's rglob does not enter linked folders); broken links too. Linked folders are walked
    (each real folder once: a link loop ends), broken links said."""
    import logging

    from stream_gpen.io._image import folder_media

    album, elsewhere = tmp_path / "album", tmp_path / "elsewhere" / "2019"
    album.mkdir()
    elsewhere.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(album / "home.jpg")
    Image.new("RGB", (8, 8)).save(elsewhere / "beach.jpg")
    (album / "2019").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(album, target_is_directory=True)
    (album / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    with caplog.at_level(logging.WARNING, logger="stream_gpen"):
        images, videos, others = folder_media(album)
    assert [p.relative_to(album).as_posix() for p in images] == ["2019/beach.jpg", "home.jpg"]
    assert "gone.jpg: a broken link, left out" in caplog.text


def test_photo_temporary_names_are_their_own(tmp_path, monkeypatch):
    """Two runs writing one folder at once used the same hidden ``.a.tmp.jpg`` for a photo and
    could clobber each other's half-written file: each write now has a name of its own."""
    from stream_gpen.io import _image

    seen = []
    real = _image.hidden_temp
    monkeypatch.setattr(_image, "hidden_temp", lambda path, tag, **kw: seen.append(tag) or real(path, tag, **kw))
    Image.new("RGB", (16, 16), (90, 90, 90)).save(tmp_path / "a.png")
    for out in ("b.png", "c.png"):
        with open_source(tmp_path / "a.png") as src, open_sink(tmp_path / out, source=src) as sink:
            for f in src:
                sink.write(f)
    assert len(seen) == 2 and seen[0] != seen[1] and all(t.endswith(".tmp") for t in seen), seen
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "c.png"]
