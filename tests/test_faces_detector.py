"""RetinaFace wrapper: real MobileNet weights, batching, downscale mapping, options, errors."""
from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np
import pytest
import torch

from stream_gpen.errors import CheckpointError, InvalidInputError
from stream_gpen.faces import Detections, FaceDetector


def _rgb(path):
    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return np.ascontiguousarray(bgr[:, :, ::-1])


@pytest.fixture(scope="module")
def det(mobilenet_weights):
    torch.manual_seed(0)
    return FaceDetector(backbone="mobilenet0.25", device="cpu", weights=mobilenet_weights, long_side=640)


@pytest.fixture(scope="module")
def solvay(shared):
    return _rgb(shared / "data" / "faces" / "whole" / "gpen_Solvay_conference_1927.png")


def test_matches_facexlib_per_image_path_at_full_size(det, solvay, mobilenet_weights):
    full = FaceDetector(backbone="mobilenet0.25", device="cpu", weights=mobilenet_weights, long_side=4096)
    d = full.detect(torch.from_numpy(solvay))[0]
    # 29 faces, as GPEN's own crops of this photo (weights/README.md)
    assert len(d) == 29
    with torch.no_grad():
        ref = full.net.detect_faces(np.ascontiguousarray(solvay[:, :, ::-1]), conf_threshold=0.8, nms_threshold=0.4,
                                    use_origin_size=True)
    ref = ref[np.argsort(-ref[:, 4])]
    np.testing.assert_allclose(d.boxes.numpy(), ref[:, :4], atol=1e-2)
    np.testing.assert_allclose(d.landmarks.numpy(), ref[:, 5:].reshape(-1, 5, 2), atol=1e-2)
    np.testing.assert_allclose(d.scores.numpy(), ref[:, 4], atol=1e-5)


def test_downscaled_detection_maps_back_to_frame_coords(det, shared):
    img = _rgb(shared / "data" / "faces" / "whole" / "codeformer_whole_00.jpg")
    small = det.detect(torch.from_numpy(img))[0]
    big_img = cv2.resize(img, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    big = det.detect(torch.from_numpy(big_img))[0]  # runs at 640 long side: 3x+ downscale
    assert len(small) >= 3 and len(big) == len(small)
    # same faces, in 3x coordinates: match by order of x
    s = small.landmarks[small.boxes[:, 0].argsort()] * 3
    b = big.landmarks[big.boxes[:, 0].argsort()]
    iod = (s[:, 0] - s[:, 1]).norm(dim=-1)
    # faces are ~40 px here: landmark noise is a few px; a wrong scale mapping would be 100s of px
    assert ((s - b).norm(dim=-1).mean(-1) / iod).max() < 0.25
    sb = small.boxes[small.boxes[:, 0].argsort()] * 3
    bb = big.boxes[big.boxes[:, 0].argsort()]
    assert ((sb - bb).abs().max(-1).values / (sb[:, 2] - sb[:, 0])).max() < 0.1


def test_batched_equals_single_and_mixed_sizes(det, shared):
    a = torch.from_numpy(_rgb(shared / "data" / "faces" / "whole" / "codeformer_whole_00.jpg"))
    b = torch.flip(a, dims=[1]).contiguous()
    c = torch.from_numpy(_rgb(shared / "data" / "faces" / "whole" / "gfpgan_whole_00.jpg"))
    calls = det.calls
    out = det.detect([a, c, b])
    assert det.calls == calls + 3
    for frame, got in zip([a, c, b], out):
        one = det.detect(frame)[0]
        assert len(one) == len(got) > 0
        torch.testing.assert_close(one.landmarks, got.landmarks, atol=0.05, rtol=0)
    # the mirrored image has mirrored faces
    w = a.shape[1]
    xa = torch.sort(out[0].boxes[:, 0]).values
    xb = torch.sort(w - out[2].boxes[:, 2]).values
    torch.testing.assert_close(xa, xb, atol=4.0, rtol=0)


def test_options_filter_faces(mobilenet_weights, solvay):
    frame = torch.from_numpy(solvay)
    few = FaceDetector(device="cpu", weights=mobilenet_weights, long_side=4096, max_faces=5)
    d = few.detect(frame)[0]
    assert len(d) == 5 and bool((d.scores[:-1] >= d.scores[1:]).all())
    big = FaceDetector(device="cpu", weights=mobilenet_weights, long_side=4096, min_face=40)
    d = big.detect(frame)[0]
    side = torch.minimum(d.boxes[:, 2] - d.boxes[:, 0], d.boxes[:, 3] - d.boxes[:, 1])
    assert 0 < len(d) < 29 and bool((side >= 40).all())


def test_region_detection_equals_whole_frame_detection(det, solvay):
    """A region is detected at the whole frame's scale: the faces inside it come out in frame
    coordinates, the same as a whole-frame detection finds them; faces outside are not seen."""
    frame = torch.from_numpy(solvay)
    full = det.detect(frame)[0]
    h, w = frame.shape[:2]
    region = (w * 0.3, h * 0.2, w * 0.7, h * 0.8)
    part = det.detect_region(frame, region)
    c = (full.boxes[:, :2] + full.boxes[:, 2:]) / 2
    inside = (c[:, 0] > region[0]) & (c[:, 0] < region[2]) & (c[:, 1] > region[1]) & (c[:, 1] < region[3])
    assert int(inside.sum()) >= 3 and 0 < len(part) < len(full)
    for box, lms in zip(full.boxes[inside], full.landmarks[inside]):
        k = int(((part.boxes - box).abs().sum(1)).argmin())
        # same scale, same anchor grid, context around: the same face to sub-pixel precision
        assert (part.landmarks[k] - lms).abs().max() < 1.0
        assert (part.boxes[k] - box).abs().max() < 1.0
    assert len(det.detect_region(frame, (10, 10, 11, 11))) == 0  # degenerate region: nothing, no error


def test_no_face_frame(det):
    frame = torch.full((240, 320, 3), 90, dtype=torch.uint8)
    d = det.detect([frame])[0]
    assert len(d) == 0 and d.landmarks.shape == (0, 5, 2)


def test_auto_backbone_and_bad_options(mobilenet_weights):
    d = FaceDetector(backbone="auto", device="cpu", weights=mobilenet_weights)
    assert d.backbone == "mobilenet0.25"
    with pytest.raises(InvalidInputError, match=r"backbone must be one of \('mobilenet0.25', 'resnet50', 'auto'\), got 'vgg'"):
        FaceDetector(backbone="vgg", weights=mobilenet_weights)
    with pytest.raises(InvalidInputError, match="score_threshold must be in"):
        FaceDetector(score_threshold=1.5, weights=mobilenet_weights)
    with pytest.raises(InvalidInputError, match="long_side must be an int >= 32, got 10"):
        FaceDetector(long_side=10, weights=mobilenet_weights)
    with pytest.raises(InvalidInputError, match="frame 0 must be a uint8 RGB"):
        d.detect([torch.zeros(10, 10, 3)])


def test_wrong_checkpoint_is_a_checkpoint_error(mobilenet_weights, tmp_path):
    state = torch.load(mobilenet_weights, map_location="cpu", weights_only=True)
    broken = OrderedDict((k, v) for k, v in state.items() if not k.startswith("LandmarkHead"))
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match="is not a RetinaFace mobilenet0.25 checkpoint"):
        FaceDetector(device="cpu", weights=path)
    # resnet50 layout refuses the MobileNet weights
    with pytest.raises(CheckpointError, match="is not a RetinaFace resnet50 checkpoint"):
        FaceDetector(backbone="resnet50", device="cpu", weights=mobilenet_weights)


def test_detections_validate_shapes():
    with pytest.raises(InvalidInputError, match=r"Detections need boxes \[n,4\]"):
        Detections(torch.zeros(2, 4), torch.zeros(1, 5, 2), torch.zeros(2))
    assert len(Detections.empty()) == 0


@pytest.mark.cuda
def test_cuda_matches_cpu(mobilenet_weights, solvay):
    cpu = FaceDetector(device="cpu", weights=mobilenet_weights).detect(torch.from_numpy(solvay))[0]
    gpu_det = FaceDetector(backbone="mobilenet0.25", device="cuda", weights=mobilenet_weights)
    gpu = gpu_det.detect(torch.from_numpy(solvay).cuda())[0]
    assert len(gpu) == len(cpu)
    torch.testing.assert_close(gpu.landmarks, cpu.landmarks, atol=0.5, rtol=0)
