"""Face stages, hunt 13: track boxes under rotation, implausible landmarks (sideways / upside-down
faces)."""
from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest
import torch

import stream_gpen.pipeline as P
from _clips import write_video
from _doubles import IdentityRestorer, SolidRestorer
from stream_gpen.api import Enhancer
from stream_gpen.faces._detector import landmark_misfit

SELFIE = "data/faces/whole/gpen_selfie_2020-12-10_175750.jpg"


def _rgb(path, side=None):
    im = cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]
    if side is not None:
        im = cv2.resize(im, (side, side), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(im)


def _record(monkeypatch):
    """Per frame index: the ids of the tracks planned, and the number of faces restored."""
    ids: dict[int, list[int]] = {}
    pasted: Counter = Counter()
    planned = P.FaceStage._planned
    restore = P.FaceStage.restore

    def _planned(self, index, tracks):
        ids[index] = [t.id for t in tracks]
        return planned(self, index, tracks)

    def _restore(self, images, affines, hi=None, indices=None):
        for i, a in zip(indices or [], affines):
            pasted[i] += len(a)
        return restore(self, images, affines, hi=hi, indices=indices)

    monkeypatch.setattr(P.FaceStage, "_planned", _planned)
    monkeypatch.setattr(P.FaceStage, "restore", _restore)
    return ids, pasted


def test_rotating_face_keeps_its_box_and_one_track(shared, mobilenet_weights, tmp_path, monkeypatch):
    """A face tilting 6 degrees a frame to 90 (a phone turned): the flow-carried box was the image
    of two opposite corners through the flow's similarity, so it collapsed towards a line as the
    face turned (216x272 -> 309x62 px); the detection at 90 degrees then missed it (IoU < 0.3),
    a second track started beside the coasting one and that frame's face was pasted twice."""
    im = _rgb(shared / SELFIE, 480)
    frames = [cv2.warpAffine(im, cv2.getRotationMatrix2D((240, 240), min(6.0 * t, 90.0), 1.0), (480, 480),
                             flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) for t in range(18)]
    src = write_video(tmp_path / "turn.mkv", frames, codec="ffv1", pix_fmt="yuv444p")
    ids, pasted = _record(monkeypatch)
    boxes = {}
    track = P.FaceStage._track

    def _track(self, index, image):
        out = track(self, index, image)
        boxes[index] = [t.box.numpy().copy() for t in out]
        return out

    monkeypatch.setattr(P.FaceStage, "_track", _track)
    # the landmark check off: the 90-degree detections must match the track by their box alone
    enh = Enhancer(IdentityRestorer(64), device="cpu", detector_weights=mobilenet_weights, progress=False)
    enh.detector.check_landmarks = False
    assert len(list(enh.stream(src))) == len(frames)
    assert max(pasted.values()) == 1, pasted
    assert {i for v in ids.values() for i in v} == {0}, ids
    w0, h0 = boxes[0][0][2:] - boxes[0][0][:2]
    for i, b in boxes.items():
        for x1, y1, x2, y2 in b:  # the box stays a face box: neither side collapses
            assert min(x2 - x1, y2 - y1) > 0.6 * min(w0, h0), (i, b)



def _enhancer(mobilenet_weights, check=True):
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, progress=False)
    enh.detector.check_landmarks = check
    return enh


@pytest.mark.parametrize("name", ["whole/gpen_selfie_2020-12-10_175750.jpg", "whole/codeformer_whole_04.jpg",
                                  "aligned/codeformer_crop_0412.png"])
def test_upside_down_real_face_is_found_turned_or_left_untouched(shared, mobilenet_weights, name):
    """A real face upside down (a phone photo without EXIF orientation, someone lying down):
    RetinaFace finds it at 0.96 but draws upright-looking landmarks with the eyes on the mouth,
    and the crop handed to the model was a zoomed upside-down face, pasted back over the real
    one. The detector drops such a detection (counted); a photo is then searched turned
    90/180/270 degrees, and a face found upright there is restored where the upright photo's face
    is (its paint turned with the picture); one found nowhere is left untouched."""
    upright = _rgb(shared / "data/faces" / name, 640)
    im = np.ascontiguousarray(np.rot90(upright, 2))
    enh = _enhancer(mobilenet_weights)
    t = torch.from_numpy(im)
    assert len(enh.detector.detect(t)[0]) == 0
    assert enh.detector.implausible >= 1
    out = enh.enhance_image(im)
    painted = (out == 255).all(axis=2)
    if painted.any():
        ref = np.rot90((enh.enhance_image(upright) == 255).all(axis=2), 2)
        assert (painted & ref).sum() / (painted | ref).sum() > 0.9
    else:
        assert np.array_equal(out, im)


def test_turned_face_is_restored_with_the_check_off(shared, mobilenet_weights):
    """``check_landmarks=False`` gives the old behaviour: the upside-down face is restored."""
    im = np.ascontiguousarray(np.rot90(_rgb(shared / SELFIE, 640), 2))
    enh = _enhancer(mobilenet_weights, check=False)
    out = enh.enhance_image(im)
    assert (out == 255).all(axis=2).sum() > 10_000
    assert enh.detector.implausible == 0


@pytest.mark.parametrize("name", ["whole/gpen_selfie_2020-12-10_175750.jpg", "whole/gfpgan_whole_Blake_Lively.jpg",
                                  "aligned/codeformer_gray_Einstein01.png"])
def test_upright_real_face_is_still_restored(shared, mobilenet_weights, name):
    im = _rgb(shared / "data/faces" / name)
    enh = _enhancer(mobilenet_weights)
    out = enh.enhance_image(im)
    assert (out == 255).all(axis=2).sum() > 1_000
    assert enh.detector.implausible == 0


def test_landmark_misfit_measures_the_fit_to_the_template():
    from stream_gpen.faces._align import reference_points

    ref = reference_points(256).float()
    turned = ref @ torch.tensor([[0.0, -1.0], [1.0, 0.0]]) * 0.5 + 300  # any similarity: still a face
    scrambled = ref[[3, 4, 2, 0, 1]]  # eyes and mouth corners swapped: a mirror, no rotation
    m = landmark_misfit(torch.stack([ref, turned, scrambled]))
    assert m[0] < 1e-5 and m[1] < 1e-5 and m[2] > 0.3, m


def test_summary_reports_the_dropped_detections():
    from stream_gpen.summary import RunSummary

    assert "implausible" not in RunSummary().format()
    assert "3 detections with implausible landmarks left untouched" in RunSummary(detections_implausible=3).format()
    assert RunSummary(detections_implausible=3).to_dict()["detections_implausible"] == 3


def test_cli_says_the_dropped_faces_and_no_landmark_check_restores_them(shared, tmp_path, cli_env, capsys):
    import json

    from PIL import Image

    from stream_gpen.cli import main

    Image.fromarray(np.ascontiguousarray(np.rot90(_rgb(shared / SELFIE, 640), 2))).save(tmp_path / "turned.png")
    args = ["enhance", str(tmp_path / "turned.png"), *cli_env, "--overwrite", "--report", str(tmp_path / "r.json")]
    assert main(args) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    # dropped upside down, then found in the photo turned (3 more detector passes): restored
    assert rep["detections_implausible"] == 0 and rep["faces_restored"] == 1 and rep["detector_calls"] == 4
    assert main([*args, "--no-landmark-check"]) == 0  # (GPEN's way: the misaligned detection is used)
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["detections_implausible"] == 0 and rep["faces_restored"] >= 1 and rep["detector_calls"] == 1


@pytest.mark.parametrize("name", ["whole/gpen_selfie_2020-12-10_175750.jpg", "whole/codeformer_whole_04.jpg"])
def test_an_upside_down_photo_face_is_restored_found_turned(shared, mobilenet_weights, name):
    """Upside down, these faces were left untouched (dropped, not restored): found upright in the
    photo turned 180 degrees, their landmarks mapped back, they are restored from an aligned crop."""
    upright = _rgb(shared / "data/faces" / name, 640)
    enh = _enhancer(mobilenet_weights)
    ref = np.rot90((enh.enhance_image(upright) == 255).all(axis=2), 2)
    stage = enh._stage()
    affines = stage.plan_still(torch.from_numpy(np.ascontiguousarray(np.rot90(upright, 2))))
    assert len(affines) == 1 and stage.detections_implausible == 0  # (found after all: not counted)
    painted = (enh.enhance_image(np.ascontiguousarray(np.rot90(upright, 2))) == 255).all(axis=2)
    # 0.98-0.99 here; a grey level of noise on the detector's input gave 0.854 once (hunt 19:
    # two detections of one face, each a little off); the misaligned paste this guards against
    # (GPEN's way, --no-landmark-check) gives 0.42-0.65
    assert (painted & ref).sum() / (painted | ref).sum() > 0.8


def test_unturn_maps_points_of_a_turned_picture_back():
    from stream_gpen.pipeline import _unturn

    img = torch.zeros(5, 8)
    img[1, 6] = 1  # the pixel whose centre is (6.5, 1.5)
    for k in (1, 2, 3):
        r, c = (torch.rot90(img, k, (0, 1)) == 1).nonzero()[0].tolist()
        assert _unturn(torch.tensor([[c + 0.5, r + 0.5]]), k, 5, 8).tolist() == [[6.5, 1.5]]
