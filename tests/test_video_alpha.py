"""Video with transparency (keyed footage): what happens to its alpha channel is said, not hidden."""
from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from stream_gpen.io import open_source

from tests._clips import write_video


def _clip(path, codec: str, pix_fmt: str, options: dict | None = None, frames: int = 3,
          rotation: int | None = None) -> None:
    a = np.zeros((48, 64, 4), np.uint8)
    a[10:40, 16:48, 0] = 200  # the keyed subject is red, the transparent rest black
    a[10:40, 16:48, 3] = 255
    write_video(path, [a] * frames, codec=codec, pix_fmt=pix_fmt, options=options,
                setup=(lambda s: s.set_display_rotation(rotation)) if rotation is not None else None)


@pytest.mark.parametrize("name, codec, pix_fmt, options", [
    ("prores4444.mov", "prores_ks", "yuva444p10le", {"profile": "4"}),
    ("png.mov", "png", "rgba", None),
    ("qtrle.mov", "qtrle", "argb", None),
    ("vp9alpha.webm", "libvpx-vp9", "yuva420p", None),
])
def test_frames_carry_the_alpha_plane(tmp_path, name, codec, pix_fmt, options):
    _clip(tmp_path / name, codec, pix_fmt, options)
    with open_source(tmp_path / name) as src:
        assert src.has_alpha
        frames = []
        for f in src:
            frames.append((f.alpha.clone(), f.image.clone(), f.hi is not None))
            f.release()
    assert len(frames) == 3
    for alpha, image, high in frames:
        top = 65535 if high else 255
        assert alpha.dtype == (torch.uint16 if high else torch.uint8) and alpha.shape == (48, 64)
        want = np.zeros((48, 64))
        want[10:40, 16:48] = top
        assert np.abs(alpha.numpy().astype(float) - want).max() <= top * 0.01  # the key, not a blur of it
        assert abs(float(image[12:38, 18:46, 0].float().mean()) - 200) < 3  # the colour as before
        assert float(image[:8, :, 0].float().mean()) < 5


def test_interlaced_key_is_deinterlaced_with_its_picture(tmp_path):
    """Interlaced keyed footage (1080i broadcast graphics in ProRes 4444): ``bwdif`` filters the
    alpha plane with the picture, so the key is whole at the picture's edges, not combed."""
    from test_io_video import _combing

    h, w = 120, 160

    def frames():
        for i in range(6):  # a bar moving right, its two fields half a frame apart, keyed with it
            img = np.zeros((h, w, 4), np.uint8)
            for field, dt in ((0, 0.0), (1, 0.5)):
                x, rows = int(20 + 8 * (i + dt)), np.arange(field, h, 2)
                img[rows[(rows > 30) & (rows < 90)], x:x + 40] = (220, 220, 220, 255)
            yield img

    def interlaced(s):
        s.codec_context.flags |= av.codec.context.Flags.interlaced_dct

    write_video(tmp_path / "i.mov", frames(), codec="prores_ks", pix_fmt="yuva444p10le",
                options={"profile": "4"}, setup=interlaced)
    got = {}
    for mode in ("auto", "off"):
        with open_source(tmp_path / "i.mov", deinterlace=mode) as src:
            assert src.has_alpha and (src.metadata.interlaced != "progressive") == (mode == "off")
            rows = []
            for f in src:
                a = f.alpha.numpy().astype(np.float32) / 65535 * 255
                rows.append((_combing(f.image.numpy()), _combing(np.dstack([a] * 3))))
                f.release()
            got[mode] = np.array(rows)
    assert len(got["auto"]) == len(got["off"]) == 6
    # picture and key both lose their combs; the key is not left combed behind a whole picture
    assert got["auto"][:, 0].mean() < 0.2 * got["off"][:, 0].mean()
    assert got["auto"][:, 1].mean() < 0.2 * got["off"][:, 1].mean()


def test_opaque_video_has_no_alpha(tmp_path):
    _clip(tmp_path / "o.mov", "png", "rgb24")
    with open_source(tmp_path / "o.mov") as src:
        assert not src.has_alpha and next(iter(src)).alpha is None


def test_rotated_alpha_turns_with_the_picture(tmp_path):
    _clip(tmp_path / "r.mov", "png", "rgba", rotation=90)
    with open_source(tmp_path / "r.mov", autorotate=True) as src:
        f = next(iter(src))
        assert f.image.shape[:2] == f.alpha.shape == (64, 48)
        # the key turned with the picture: opaque where the picture is the keyed colour
        opaque = f.alpha.numpy() > 127
        assert 0.2 < opaque.mean() < 0.5 and f.image.numpy()[opaque][:, 0].min() > 150


# --- end to end: the sink writes the transparency where the output can hold it ----------------
def _decoded_alpha(path) -> tuple[str, list[np.ndarray], dict]:
    """(codec, alpha planes of every frame on the 0..1 scale, stream metadata), VP9 through libvpx."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        name, md = vs.codec_context.name, dict(vs.metadata)
        ctx = av.CodecContext.create("libvpx-vp9", "r") if name == "vp9" else None
        frames = []
        for p in c.demux(vs):
            for f in (ctx.decode(p if p.size else None) if ctx is not None else p.decode()):
                frames.append(f)
    out = []
    for f in frames:
        if not any(comp.is_alpha for comp in f.format.components):
            out.append(None)
            continue
        out.append(f.to_ndarray(format="rgba64le")[..., 3] / 65535.0)
    return name, out, md


def _want_alpha() -> np.ndarray:
    want = np.zeros((48, 64))
    want[10:40, 16:48] = 1.0
    return want


@pytest.mark.parametrize("name, codec, pix_fmt, options, out_codec", [
    ("prores4444.mov", "prores_ks", "yuva444p10le", {"profile": "4"}, "prores"),
    ("png.mov", "png", "rgba", None, "prores"),
    ("vp9alpha.webm", "libvpx-vp9", "yuva420p", None, "vp9"),
])
def test_transparency_is_kept_in_mov_and_webm(tmp_path, mobilenet_weights, name, codec, pix_fmt, options, out_codec):
    from stream_gpen import Enhancer

    from tests._doubles import IdentityRestorer

    _clip(tmp_path / name, codec, pix_fmt, options, frames=4)
    dst = tmp_path / f"out{(tmp_path / name).suffix}"
    summary = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights).enhance_file(
        tmp_path / name, dst)
    assert summary.frames_out == 4 and not any("alpha" in f or "transparen" in f for f in summary.fallbacks)
    # a 12-bit ProRes 4444 source (as FFmpeg decodes it) is written at ProRes's 10 bits, said so
    assert any("written at 10 bits" in f for f in summary.fallbacks) == (pix_fmt == "yuva444p10le")
    # (its hint names HEVC's cost: no key channel, the reason ProRes was chosen; it said only "keeps 12")
    assert all("keeps 12 bits but no key channel" in f for f in summary.fallbacks if "written at 10 bits" in f)
    got, alphas, _ = _decoded_alpha(dst)
    assert got == out_codec and len(alphas) == 4
    for a in alphas:  # ProRes keeps the key to 10+ bits; VP9 codes it lossily (a few levels at the edges)
        err = np.abs(a - _want_alpha())
        assert a is not None and err.max() < (0.05 if out_codec == "vp9" else 0.01) and err.mean() < 0.005


def test_transparency_in_mkv_is_prores_4444_and_vp9_on_request(tmp_path, mobilenet_weights):
    from stream_gpen import Enhancer

    from tests._doubles import IdentityRestorer

    _clip(tmp_path / "k.mov", "prores_ks", "yuva444p10le", {"profile": "4"})
    enh = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    enh.enhance_file(tmp_path / "k.mov", tmp_path / "k.mkv")
    got, alphas, _ = _decoded_alpha(tmp_path / "k.mkv")
    assert got == "prores" and all(a is not None and np.abs(a - _want_alpha()).max() < 0.01 for a in alphas)
    # VP9 asked for: its alpha (8-bit) is written, the 10-bit source goes to 8 bits for it, said so
    summary = enh.enhance_file(tmp_path / "k.mov", tmp_path / "v.mkv", codec="vp9")
    got, alphas, md = _decoded_alpha(tmp_path / "v.mkv")
    assert got == "vp9" and md.get("alpha_mode") == "1"
    assert all(a is not None and np.abs(a - _want_alpha()).mean() < 0.005 for a in alphas)
    assert any("transparency at 8 bits only" in f or "no pixel format above 8 bits" in f for f in summary.fallbacks)


@pytest.mark.parametrize("src, dst_name, codec, want", [
    (("png", "rgba", None), "o.mp4", "auto", "h264"),
    (("png", "rgba", None), "o.mov", "h264", "h264"),
    # a 10-bit keyed source into .mp4 goes HEVC: libx265 lists yuva420p, but this build cannot open it
    (("prores_ks", "yuva444p10le", {"profile": "4"}), "o.mp4", "auto", "hevc"),
])
def test_outputs_without_transparency_say_so(tmp_path, mobilenet_weights, src, dst_name, codec, want):
    from stream_gpen import Enhancer

    from tests._doubles import IdentityRestorer

    _clip(tmp_path / "k.mov", *src)
    summary = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights).enhance_file(
        tmp_path / "k.mov", tmp_path / dst_name, codec=codec)
    assert any("transparency" in f and ".mov" in f and ".webm" in f for f in summary.fallbacks), summary.fallbacks
    got, alphas, _ = _decoded_alpha(tmp_path / dst_name)
    assert got == want and alphas[0] is None and summary.frames_out == 3


def test_prores_without_alpha_is_422_hq_and_takes_no_crf(tmp_path):
    from stream_gpen.errors import InvalidInputError
    from stream_gpen.io import open_sink

    _clip(tmp_path / "o.mov", "libx264", "yuv420p")  # 4:2:0, no alpha: ProRes 422 HQ
    with pytest.raises(InvalidInputError, match="codec='prores' takes no crf or preset"):
        with open_source(tmp_path / "o.mov") as src:
            open_sink(tmp_path / "x.mov", source=src, codec="prores", crf=20)
    with open_source(tmp_path / "o.mov") as src, open_sink(tmp_path / "p.mov", source=src, codec="prores") as sink:
        for f in src:
            sink.write(f)
    with av.open(str(tmp_path / "p.mov")) as c:
        cc = c.streams.video[0].codec_context
        assert cc.name == "prores" and cc.pix_fmt == "yuv422p10le"
        assert sum(1 for _ in c.decode(video=0)) == 3


def test_info_says_whether_the_transparency_is_kept(tmp_path):
    from stream_gpen.commands import describe_input

    _clip(tmp_path / "k.mov", "png", "rgba")
    info = describe_input(str(tmp_path / "k.mov"))
    assert info["alpha"] and any("prores into .mov" in p for p in info["plan"])
    assert "transparency (alpha channel): kept" in info["plan"] and info["nvenc"] == "prores has no NVENC encoder"
    _clip(tmp_path / "k.mp4", "libx264", "yuv420p")
    assert not describe_input(str(tmp_path / "k.mp4"))["alpha"]


def test_compare_keeps_transparency_on_both_sides(tmp_path, mobilenet_weights):
    """--compare on keyed footage said "transparency kept" and wrote every pixel opaque; an RGBA
    photo came back RGB: the alpha is tiled like the picture."""
    from PIL import Image

    from stream_gpen import Enhancer

    from tests._doubles import IdentityRestorer

    enh = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    _clip(tmp_path / "k.mov", "prores_ks", "yuva444p10le", {"profile": "4"}, frames=2)
    enh.enhance_file(tmp_path / "k.mov", tmp_path / "cmp.mov", compare=True)
    _, alphas, _ = _decoded_alpha(tmp_path / "cmp.mov")
    want = np.concatenate([_want_alpha()] * 2, axis=1)
    assert len(alphas) == 2 and all(a is not None and np.abs(a - want).max() < 0.01 for a in alphas)
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[..., 1] = 120
    rgba[:, 20:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "p.png")
    enh.enhance_file(tmp_path / "p.png", tmp_path / "p_cmp.png", compare=True)
    with Image.open(tmp_path / "p_cmp.png") as im:
        assert im.mode == "RGBA" and im.size == (128, 48)
        a = np.asarray(im)[..., 3]
    assert np.array_equal(a, np.concatenate([rgba[..., 3]] * 2, axis=1))


def test_a_webm_whose_alpha_flag_reads_upper_case_keeps_its_alpha(tmp_path, mobilenet_weights):
    """formats21: a WebM written with its stream tags copied (FFmpeg, or this tool before) reads
    its AlphaMode back as ``ALPHA_MODE``; the flag was looked up in lower case only, so a second
    pass decoded it opaque and dropped the alpha with no word. The flag is not copied as a tag now
    (the writer sets it where it writes alpha)."""
    from stream_gpen import Enhancer

    from tests._doubles import IdentityRestorer

    a = np.zeros((48, 64, 4), np.uint8)
    a[10:40, 16:48] = (200, 0, 0, 255)
    src = write_video(tmp_path / "k.webm", [a] * 3, codec="libvpx-vp9", pix_fmt="yuva420p",
                      setup=lambda s: s.metadata.__setitem__("ALPHA_MODE", "1"))
    with av.open(str(src)) as c:
        assert "alpha_mode" not in c.streams.video[0].metadata  # (the case this is about)
    with open_source(src) as s:
        assert s.has_alpha
    enh = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights)
    enh.enhance_file(src, tmp_path / "o.webm")
    got, alphas, md = _decoded_alpha(tmp_path / "o.webm")
    assert got == "vp9" and [k for k in md if k.lower() == "alpha_mode"] == ["alpha_mode"]
    assert all(x is not None and np.abs(x - _want_alpha()).mean() < 0.005 for x in alphas)
    # copied as it is (no face found): the flag goes with the stream (the Matroska muxer writes it
    # as its AlphaMode element and again as a tag, which reads back upper-case: as FFmpeg copies it)
    s = enh.enhance_file(src, tmp_path / "c.webm", copy_if_no_faces=True)
    assert s.encoder == "copy"
    got, alphas, md = _decoded_alpha(tmp_path / "c.webm")
    assert got == "vp9" and any(k.lower() == "alpha_mode" and v == "1" for k, v in md.items())
    with open_source(tmp_path / "c.webm") as again:
        assert again.has_alpha
    assert all(x is not None and np.abs(x - _want_alpha()).mean() < 0.005 for x in alphas)
