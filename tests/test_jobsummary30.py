"""Session 30 (docs): a video job that failed before its run began (``?start=30`` on a 0.3 s clip, a
JPEG sent as application/octet-stream) had ``summary: null``, while the cookbook says a failed job's
summary is the run's up to the failure and the command line writes a ``--report`` in those same cases.
Such a job now has the summary that ``--report`` has then (RunSummary.before_start): zero counts,
``device``/``precision``/``encoder`` null, its ``error`` the job's."""
from __future__ import annotations

import io
import json

import pytest

pytest.importorskip("fastapi")

from tests.test_server import KEY, wait_job  # noqa: E402
from tests.test_srv29 import VIDEO, _Client, _clip, _serve  # noqa: E402


@pytest.fixture(scope="module")
def real_enh(mobilenet_weights):
    """The real pipeline (identity restorer, the real detector at a small size)."""
    from stream_gpen import Enhancer
    from tests._doubles import IdentityRestorer

    return Enhancer(IdentityRestorer(), device="cpu", detector_weights=mobilenet_weights, detect_size=160,
                    progress=False)


def _zero_run(s: dict) -> None:
    assert s["frames_in"] == s["frames_out"] == s["faces_restored"] == 0, s
    assert s["device"] is None and s["precision"] is None and s["encoder"] is None, s
    assert s["interrupted"] is False


def test_a_job_failing_before_its_run_has_the_reports_summary(real_enh, tmp_path, cli_env, face):
    from stream_gpen.cli import main

    clip = _clip(tmp_path / "in.mp4", "yuv420p", n=3)
    jpeg = io.BytesIO()
    face.save(jpeg, "JPEG")
    octet = {**KEY, "Content-Type": "application/octet-stream"}
    with _Client(_serve(real_enh, tmp_path)) as c:
        late = wait_job(c, c.post("/v1/videos", content=clip.read_bytes(), headers=VIDEO, params={"start": 30}).json()["id"])
        photo = wait_job(c, c.post("/v1/videos", content=jpeg.getvalue(), headers=octet).json()["id"])
    for failed in (late, photo):
        assert failed["state"] == "failed", failed
        s = failed["summary"]
        assert s is not None, failed
        assert s["error"] == failed["error"] and s["input"] == "the upload" and s["output"] is None, s
        _zero_run(s)
        assert str(tmp_path) not in json.dumps(s)
    assert "start" in late["error"]

    # the command line's --report of the same run: the same fields
    code = main(["enhance", str(clip), "-o", str(tmp_path / "o.mp4"), "--start", "30", "--report",
                 str(tmp_path / "r.json"), *cli_env])
    assert code == 2
    report = json.loads((tmp_path / "r.json").read_text())
    _zero_run(report)
    assert set(report) == set(late["summary"]), set(report) ^ set(late["summary"])


def test_before_start():
    from stream_gpen.errors import Interrupted, InvalidInputError, WeightsNotFoundError
    from stream_gpen.summary import RunSummary

    s = RunSummary.before_start("in.mp4", "o.mp4", "gpen-bfr-256", InvalidInputError("start=30 is past its end"))
    assert s.error == "start=30 is past its end" and s.device is None and not s.interrupted
    s = RunSummary.before_start("in.mp4", None, "m", Interrupted("cancelled"))
    assert s.interrupted and s.error is None and "stopped before the run began" in s.fallbacks[0]
    s = RunSummary.before_start("in.mp4", None, "m", WeightsNotFoundError("no weights"))
    assert any("model could not be loaded" in f for f in s.fallbacks)
    assert RunSummary.before_start("in.mp4", None, "m", ZeroDivisionError()) is None  # (a bug says nothing of the run)
