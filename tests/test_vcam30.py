"""``--virtual-camera`` where pyvirtualcam is installed but no virtual camera driver is (hunt 30):
pyvirtualcam's ``Camera`` raises a RuntimeError ("'v4l2loopback' backend: No v4l2 loopback device
found"), which came out as "internal error: RuntimeError ... please report it", exit 1. Now it is a
DeviceError (exit 2) saying there is no virtual camera, with how to get one."""
from __future__ import annotations

import sys
import types

import pytest

from stream_gpen.cli import main
from stream_gpen.errors import DeviceError
from stream_gpen.io._sink import VirtualCameraSink


@pytest.fixture
def no_driver(monkeypatch):
    fake = types.ModuleType("pyvirtualcam")

    class Camera:
        def __init__(self, **kw):
            raise RuntimeError("'v4l2loopback' backend: No v4l2 loopback device found at /dev/video[0-99]. "
                               "Did you run 'modprobe v4l2loopback'?")

    fake.Camera = Camera
    fake.PixelFormat = types.SimpleNamespace(RGB="RGB")
    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake)
    return fake


def test_the_sink_says_there_is_no_virtual_camera(no_driver):
    with pytest.raises(DeviceError) as e:
        VirtualCameraSink(width=64, height=48, fps=25.0)
    assert "no virtual camera to send to" in str(e.value) and "v4l2loopback" in str(e.value)
    assert "modprobe v4l2loopback" in e.value.hint


def test_the_camera_command_exits_2_with_the_hint_not_an_internal_error(no_driver, tmp_path, cli_env, capsys,
                                                                        monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "pyvirtualcam" else real(name, *a))
    rc = main(["camera", "lavfi:testsrc=size=96x64:rate=5", "--virtual-camera", "--seconds", "1",
               *[o for o in cli_env if o != "--quiet"]])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "internal error" not in err and "no virtual camera to send to" in err and "modprobe" in err
