"""The batched Kalman step (sspnet.tracking.fast_kalman) against the library's own per-track filters:
the same ids and the same filter states, frame by frame, on synthetic sequences."""

import numpy as np
import pytest

from sspnet.data.synth_video import find_sequences, write_sequences
from sspnet.tracking import fast_kalman
from sspnet.tracking.mot import read_mot
from sspnet.tracking.tracker import FrameTracker, TrackerSettings

FRAMES = 30
SETTINGS = [
    TrackerSettings(),  # sspnet track's default: BoT-SORT + buffered IoU + camera motion
    TrackerSettings(tracker="bytetrack", association="iou", cmc="none"),
    TrackerSettings(tracker="bytetrack", association="biou", cmc="sparseOptFlow"),
]


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    """A hovering and a panning camera's ground truth, as (frame, boxes xyxy) lists."""
    out = tmp_path_factory.mktemp("seq")
    write_sequences(out, 2, frames=FRAMES, size=(640, 480), seed=3, progress=False)
    result = []
    for info in find_sequences(out):
        gt = read_mot(info.gt, "gt", info.frames)
        frames = []
        for frame in range(1, FRAMES + 1):
            boxes = gt.box[(gt.frame == frame) & (gt.score == 1)]
            frames.append(np.c_[boxes[:, :2], boxes[:, :2] + boxes[:, 2:]])
        result.append(frames)
    return result


def detections(frames, seed):
    """Jittered boxes, some dropped (lost tracks), scores spread over both of ByteTrack's passes, a
    two-frame gap (the library's gap path), a frame without detections and a small camera motion."""
    rng = np.random.default_rng(seed)
    for k, boxes in enumerate(frames):
        if k in (12, 13):
            continue
        keep = rng.random(len(boxes)) > (1.0 if k == 20 else 0.1)
        boxes = boxes[keep] + rng.normal(0, 0.4, (keep.sum(), 4))
        motion = np.array([[1, 0.002, 0], [-0.002, 1, 0]]) + np.c_[np.zeros((2, 2)), rng.normal(0, 1, 2)]
        yield k, boxes, rng.uniform(0.2, 1.0, len(boxes)), motion


def filter_states(tracker: FrameTracker) -> tuple[np.ndarray, np.ndarray]:
    filters = [t.state_estimator.kf for t in tracker.tracker.tracks]
    return (
        np.array([kf.state for kf in filters]).reshape(-1, 8),
        np.array([kf.state_covariance for kf in filters]).reshape(-1, 64),
    )


def largest_difference(settings, frames, seed=0) -> float:
    """Runs the library's tracker and the batched one side by side; asserts equal ids on every frame
    and returns the largest difference of any state or covariance entry (relative to its size)."""
    library, batched = FrameTracker(settings, batched_kalman=False), FrameTracker(settings)
    assert library.batched is None and batched.batched is not None
    worst = 0.0
    for k, boxes, scores, motion in detections(frames, seed):
        ids = [tracker.update(boxes, scores, k, motion=motion) for tracker in (library, batched)]
        np.testing.assert_array_equal(ids[0], ids[1], err_msg=f"frame {k}")
        for a, b in zip(filter_states(library), filter_states(batched)):
            assert a.shape == b.shape, f"frame {k}: track count"
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(1, np.abs(a)), initial=0)))
    predicted = [t for t in batched.tracker.tracks if t.age > 0]  # (new tracks join at their first predict)
    assert predicted and all("update" in t.__dict__ for t in predicted)  # the batched path ran
    return worst


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: s.label())
def test_batched_filters_equal_the_library(sequences, settings):
    for frames in sequences:
        assert largest_difference(settings, frames) <= 1e-6


def test_equality_check_catches_a_dropped_process_noise(sequences, monkeypatch):
    monkeypatch.setattr(
        fast_kalman.BatchedKalman, "_process_noise", lambda self, batch, states: np.zeros((len(batch), 8, 8))
    )
    with pytest.raises(AssertionError):
        assert largest_difference(SETTINGS[0], sequences[0]) <= 1e-6


def test_equality_check_catches_a_lost_update(sequences, monkeypatch):
    monkeypatch.setattr(fast_kalman.BatchedKalman, "flush", lambda self: self.pending.clear())
    with pytest.raises(AssertionError):
        assert largest_difference(SETTINGS[1], sequences[0]) <= 1e-6


def test_a_changed_library_is_refused_and_tracking_falls_back_to_its_own_filters(monkeypatch):
    fast_kalman.check_library()  # the installed trackers is the one the batched code mirrors
    assert FrameTracker(TrackerSettings()).batched is not None
    monkeypatch.setitem(fast_kalman.EXPECTED_SOURCES, "KalmanFilter.update", "0" * 16)
    with pytest.raises(RuntimeError, match="KalmanFilter.update"):
        fast_kalman.check_library()
    with pytest.warns(UserWarning, match="KalmanFilter.update.*per-track Kalman filters"):
        tracker = FrameTracker(TrackerSettings())
    assert tracker.batched is None
