"""Faces behind an occluder, hunt 17 (tracker17): a black bar sweeping over the talking head. When
the face came out again, it stayed unrestored until the next periodic detection (3 frames at
scores 0.94-1.0): the watch ignored the bar's change (one elongated blob with the face it
uncovered). (The flow frames of the track lost behind the bar are still pasted over it: a known
limit, see docs/tracking.md.)"""
from __future__ import annotations

import av
import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from _clips import write_video


def _bar_clip(path, shared, n=40):
    frames = []
    with av.open(str(shared / "data/videos/retalking_face2_frontal_talking_head.mp4")) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= n:
                break
            a = np.asarray(Image.fromarray(f.to_ndarray(format="rgb24")).resize((360, 360), Image.BILINEAR)).copy()
            if i >= 10:  # an 80 px bar sweeping left to right from frame 10
                x = int((i - 10) / 40 * 440) - 80
                a[:, max(0, x):max(0, x + 80)] = 0
            frames.append(a)
    write_video(path, frames, options={"crf": "12"})
    return frames


def _frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_a_face_behind_a_sweeping_bar_is_neither_pasted_over_it_nor_left_when_it_comes_out(
        tmp_path, shared, mobilenet_weights):
    from stream_gpen import Enhancer
    from stream_gpen.faces import FaceDetector
    from tests._doubles import SolidRestorer

    src = tmp_path / "bar.mp4"
    _bar_clip(src, shared)
    enh = Enhancer(SolidRestorer(64), device="cpu", detector_weights=mobilenet_weights, progress=False)
    enh.enhance_file(src, tmp_path / "o.mp4", preset="ultrafast", crf=12)
    ins, outs = _frames(src), _frames(tmp_path / "o.mp4")
    det = FaceDetector(weights=mobilenet_weights, device="cpu", progress=False, download=False)
    dets = det.detect([torch.from_numpy(a) for a in ins])
    missed, ghosts, sure = [], [], []
    for i, (a, b, d) in enumerate(zip(ins, outs, dets)):
        white = (b.astype(int).min(-1) > 235) & (a.astype(int).min(-1) < 200)  # pasted
        blobs = [(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in ndimage.find_objects(ndimage.label(white)[0])
                 if (s[0].stop - s[0].start) * (s[1].stop - s[1].start) >= 100]
        faces = [(d.boxes[k].tolist(), float(d.scores[k])) for k in range(len(d))]

        def inside(bl, fb):
            cx, cy = (bl[0] + bl[2]) / 2, (bl[1] + bl[3]) / 2
            return fb[0] - 10 <= cx <= fb[2] + 10 and fb[1] - 10 <= cy <= fb[3] + 10

        # Not counted: a face going behind the bar (the bar over its left edge), whose last frames
        # before its track ends at a missed detection are not pasted (the flow-only tail is
        # dropped: docs/tracking.md, measured 1 frame here; a grey level of noise on the clip
        # makes it 0-1), and faces scored near the tracker's min_score (0.9): the pipeline's own
        # detection of its own decode of the frame starts a track there or not by a thousandth.
        bar = int((i - 10) / 40 * 440) - 80 if i >= 10 else None
        going_in = [bar is not None and bar <= fb[0] < bar + 80 for fb, _ in faces]
        missed += [i for (fb, s), gone in zip(faces, going_in)
                   if s >= 0.95 and not gone and not any(inside(bl, fb) for bl in blobs)]
        ghosts += [i for bl in blobs if not any(inside(bl, fb) for fb, _ in faces)]
        sure += [i for fb, s in faces if s >= 0.95]
    # the face coming out from behind the bar is restored from its first frames (was 31-33 unrestored)
    assert missed == [], missed
    assert {31, 32, 33} & set(sure) and set(range(10)) <= set(sure), sure  # (the measure sees the face)
    # known limit (docs/tracking.md): the flow frames of the track lost behind the bar, since its
    # last detection, are pasted where the flow took them, over the bar; dropping them left real
    # faces raw on the shared clips (a turning profile the flow was still on)
    assert len(ghosts) <= 4 and all(27 <= i <= 30 for i in ghosts), ghosts
