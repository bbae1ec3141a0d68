"""Face-parsing paste masks (``--mask parse``): GPEN's own paste-back."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from stream_gpen import Enhancer
from stream_gpen.errors import CheckpointError, InvalidInputError, WeightsNotFoundError
from stream_gpen.faces import FaceParser, estimate_affines, invert_affines
from stream_gpen.faces._parse import PASTE_CLASSES, build_parsenet, postprocess_labels
from tests._doubles import SolidRestorer


def _random_parsenet(seed: int = 0) -> torch.nn.Module:
    """facexlib's ParseNet with random weights *and* random BatchNorm statistics (so folding the
    norms into the convs is exercised, not a no-op on fresh running stats)."""
    torch.manual_seed(seed)
    net = build_parsenet().eval()
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
    return net


@pytest.fixture(scope="module")
def parsenet_file(tmp_path_factory):
    net = _random_parsenet()
    path = tmp_path_factory.mktemp("parse") / "ParseNet-latest.pth"
    # DataParallel-style prefixes are accepted, as in the detector's loader
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)
    return path, net


def test_labels_match_facexlib_parsenet(parsenet_file, shared):
    """Our forward (BN folded, image head skipped, channels-last) gives facexlib's arg-max labels
    on a real aligned face, from a checkpoint file."""
    path, ref = parsenet_file
    bgr = cv2.imread(str(shared / "data/faces/aligned/gpen_ffhq_00000.png"))
    rgb = cv2.resize(bgr, (512, 512), interpolation=cv2.INTER_LINEAR)[:, :, ::-1].copy()
    crops = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    parser = FaceParser(weights=path, device="cpu")
    got = parser.labels(crops)
    with torch.inference_mode():
        want = ref(crops.float() / 255 * 2 - 1)[0].argmax(dim=1)
    assert got.shape == (1, 512, 512) and got.dtype == torch.uint8
    agree = (got.long() == want).float().mean().item()
    assert agree > 0.999, agree  # folding the norms only reorders float rounding
    assert len(torch.unique(want)) > 1  # a real test: more than one class on this input


def test_mask_postprocess_follows_gpen_recipe():
    """Keep table, 26-px border, Gaussian 101x101 sigma 4 twice (cv2, reflect-101), resize: the
    recipe of GPEN's face_enhancement.py written independently with OpenCV."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 19, size=(2, 16, 16))
    labels = np.stack([cv2.resize(c.astype(np.uint8), (512, 512), interpolation=cv2.INTER_NEAREST) for c in coarse])
    keep = np.array(PASTE_CLASSES, np.float32)
    for size in (512, 256):
        got = postprocess_labels(torch.from_numpy(labels), size).numpy()
        assert got.shape == (2, size, size)
        for lab, g in zip(labels, got):
            m = keep[lab]
            m[:26, :] = 0
            m[-26:, :] = 0
            m[:, :26] = 0
            m[:, -26:] = 0
            m = cv2.GaussianBlur(m, (101, 101), 4)
            m = cv2.GaussianBlur(m, (101, 101), 4)
            if size != 512:
                m = cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR)
            assert np.abs(g - m).max() < 2e-3
    # background, hat and cloth are never pasted; a face-only map is pasted in the middle
    assert [i for i, k in enumerate(PASTE_CLASSES) if k == 0] == [0, 14, 18]
    only_skin = postprocess_labels(torch.ones(1, 512, 512, dtype=torch.uint8), 512)[0]
    assert only_skin[256, 256] > 0.999 and only_skin[0, 0] < 1e-9 and only_skin[0, 256] < 1e-5


def test_parser_rejects_bad_input_and_checkpoints(tmp_path):
    with pytest.raises(InvalidInputError, match="precision must be one of"):
        FaceParser(state_dict={}, precision="int8")
    with pytest.raises(CheckpointError, match="not a ParseNet checkpoint"):
        FaceParser(state_dict={"conv.weight": torch.zeros(1)})
    bad = tmp_path / "x.pth"
    torch.save([1, 2, 3], bad)
    with pytest.raises(CheckpointError, match="does not hold a state dict"):
        FaceParser(weights=bad)
    p = FaceParser(state_dict={"state_dict": _random_parsenet(1).state_dict()})  # wrapped dicts load too
    with pytest.raises(InvalidInputError, match=r"crops must be uint8 \[n,3,S,S\]"):
        p(torch.zeros(1, 3, 64, 64))
    assert p(torch.zeros(0, 3, 64, 64, dtype=torch.uint8)).shape == (0, 64, 64)


class _DiscParser:
    """Paste mask double: 1 inside a disc of radius 0.25 S around the crop centre, 0 outside."""

    fallbacks: list = []

    def __init__(self):
        self.calls = 0

    def __call__(self, crops):
        self.calls += 1
        s = crops.shape[-1]
        g = torch.arange(s, dtype=torch.float32) - (s - 1) / 2
        disc = ((g[None] ** 2 + g[:, None] ** 2) <= (0.25 * s) ** 2).float()
        return disc.expand(len(crops), s, s).clone()


def test_parse_mask_decides_what_is_pasted(shared, mobilenet_weights):
    """With a parser, exactly the masked part of each crop is pasted (no feathered square): every
    changed pixel maps into the parser's disc, the disc's middle is the restored face, and the
    square's corners (pasted by the feather mask) are left alone."""
    bgr = cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    feather = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, faces="largest")
    out_f = feather.enhance_image(rgb)
    parse = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, faces="largest")
    parse.parser, parse.mask = _DiscParser(), "parse"
    out_p = parse.enhance_image(rgb)
    assert parse.parser.calls == 1
    det = feather.detector.detect([torch.from_numpy(rgb)])[0]
    big = int(torch.argmax((det.boxes[:, 2] - det.boxes[:, 0]) * (det.boxes[:, 3] - det.boxes[:, 1])))
    aff = estimate_affines(det.landmarks[big : big + 1].float(), size=64)[0].numpy().astype(np.float64)
    ys, xs = np.nonzero(np.any(out_p != rgb, axis=2))
    cx = aff[0, 0] * xs + aff[0, 1] * ys + aff[0, 2] - 31.5
    cy = aff[1, 0] * xs + aff[1, 1] * ys + aff[1, 2] - 31.5
    r = np.hypot(cx, cy)
    assert len(r) > 100 and r.max() <= 16 + 1.5  # disc radius 0.25 * 64 = 16 crop px (+ bilinear)
    inner = r < 12
    assert inner.sum() > 50 and np.all(out_p[ys[inner], xs[inner]] >= 250)
    # the feather mask pasted more: a crop-space point at radius ~22 px (inside the square's
    # ramp-free part) changed with the feather, not with the parse mask
    inv = invert_affines(torch.from_numpy(aff[None]))[0].numpy()
    px, py = inv @ np.array([31.5 + 20.0, 31.5, 1.0]), inv @ np.array([31.5, 31.5 + 20.0, 1.0])
    for x, y in (px, py):
        x, y = int(round(x)), int(round(y))
        assert np.any(out_f[y, x] != rgb[y, x]) and np.all(out_p[y, x] == rgb[y, x])


def test_enhancer_mask_option(parsenet_file, shared, mobilenet_weights, tmp_path, monkeypatch):
    path, _ = parsenet_file
    with pytest.raises(InvalidInputError, match=r"mask must be one of \('feather', 'parse'\), got 'hull'"):
        Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, mask="hull")
    # no file and no download: the error names the file, the URL and where to put it
    monkeypatch.setenv("STREAM_GPEN_HOME", str(tmp_path))
    monkeypatch.setenv("STREAM_GPEN_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="ParseNet-latest.pth") as e:
        Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, mask="parse", download=False)
    assert "oss-cn-shanghai" in str(e.value) + str(getattr(e.value, "hint", ""))
    # the real parser on a real photo, end to end through the image path and the run summary
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, faces="largest",
                   mask="parse", parser_weights=path)
    assert isinstance(enh.parser, FaceParser)
    src = tmp_path / "in.jpg"
    src.write_bytes((shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg").read_bytes())
    summary = enh.enhance_file(src, tmp_path / "out.png")
    assert summary.mask == "parse" and summary.faces_restored == 1
    assert "parse" in summary.stage_seconds and "parse paste mask" in summary.format()


def test_video_reuses_each_tracks_parse_mask(shared, mobilenet_weights, tmp_path):
    """In video a track's mask is parsed every ``parse_every`` frames and reused in between (the
    parser costs more than GPEN); the reused mask still decides what is pasted."""
    clip = shared / "data/videos/retalking_face2_frontal_talking_head.mp4"
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, batch_size=4)
    enh.parser, enh.mask = _DiscParser(), "parse"
    dst = tmp_path / "o.mp4"
    # the first 1.2 s: 30 frames (the whole 5 s clip, 125 frames, checks nothing more)
    summary = enh.enhance_file(clip, dst, preset="ultrafast", duration=1.2)
    assert summary.frames_out == 30 and summary.faces_restored == 30  # one face in every frame
    # one track: a fresh mask on frames 0, 5, 10, ... 25 (the batches of 4 do not line up with
    # that; no batch holds two of them)
    assert summary.faces_parsed == 6 and enh.parser.calls >= 6
    assert "6 faces parsed" in summary.format()
    # still images always get their own mask
    img = np.ascontiguousarray(cv2.imread(str(shared / "data/faces/whole/gfpgan_whole_Blake_Lively.jpg"))[:, :, ::-1])
    before = enh.parser.calls
    enh.enhance_image(img)
    enh.enhance_image(img)
    assert enh.parser.calls == before + 2


class _CountingParser:
    """The k-th crop ever parsed gets a mask filled with k (0, 1, 2, ...)."""

    def __init__(self):
        self.crops = 0

    def __call__(self, crops):
        n, s = len(crops), crops.shape[-1]
        v = torch.arange(self.crops, self.crops + n, dtype=torch.float32)
        self.crops += n
        return v.view(n, 1, 1).expand(n, s, s).clone()


@pytest.mark.parametrize("batch", [1, 4, 13])
def test_refreshed_masks_cross_fade(batch):
    """A track's mask is parsed on frames 0, 5, 10 and glides linearly to each fresh mask over
    the next 5 frames, whatever the batching; a second track starts on its own first mask."""
    from stream_gpen.pipeline import FaceStage

    stage = FaceStage(restorer=None, detector=None, tracker=None, parser=_CountingParser())
    crops = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    keys = [(i, 7) for i in range(13)]
    got = []
    for b in range(0, 13, batch):
        chunk = keys[b : b + batch]
        got += [float(m[0, 0]) for m in stage._parse_masks(crops.expand(len(chunk), 3, 8, 8), chunk)]
    want = [0.0] * 5 + [0.2, 0.4, 0.6, 0.8, 1.0] + [1.2, 1.4, 1.6]
    assert got == pytest.approx(want) and stage.parser_calls == 3
    m = stage._parse_masks(crops.expand(2, 3, 8, 8), [(13, 7), (13, 8)])  # track 8 is new
    assert float(m[0, 0, 0]) == pytest.approx(1.8) and float(m[1, 0, 0]) == 3.0
    assert stage._parse_masks(crops, None).shape == (1, 8, 8) and stage.parser_calls == 5  # stills: always
