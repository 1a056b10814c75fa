"""The [track] extra keeps ONE OpenCV: `trackers` is installed with --no-deps, because its opencv-python
requirement would install a second cv2 over opencv-python-headless (or over JetPack's GStreamer build)."""

import sys
from importlib.metadata import distributions

import numpy as np


def opencv_distributions():
    names = {(d.metadata["Name"] or "").lower() for d in distributions()}
    return sorted(name for name in names if name.startswith("opencv"))


def test_exactly_one_opencv_distribution_and_it_works():
    import cv2
    import trackers  # noqa: F401  (installed: scripts/env.sh)

    found = opencv_distributions()
    assert len(found) == 1, f"several OpenCV distributions share the cv2 folder: {found}"
    ok, encoded = cv2.imencode(".png", np.arange(12, dtype=np.uint8).reshape(2, 2, 3))
    assert ok and (cv2.imdecode(encoded, cv2.IMREAD_COLOR) == np.arange(12).reshape(2, 2, 3)).all()


def test_the_check_sees_a_second_opencv(monkeypatch):
    # plant the mistake (opencv-python beside the headless build) and see the check report it
    class Fake:
        def __init__(self, name):
            self.metadata = {"Name": name}

    planted = [Fake("opencv-python-headless"), Fake("opencv-python"), Fake("numpy")]
    monkeypatch.setattr(sys.modules[__name__], "distributions", lambda: planted)
    assert opencv_distributions() == ["opencv-python", "opencv-python-headless"]
