"""The array form of ByteTrack and BoT-SORT (sspnet.tracking.array_tracker) against the library's own
tracker, run side by side: the same ids on every frame and the same Kalman states and covariances."""

import numpy as np
import pytest
import supervision as sv
from trackers.utils.iou import BIoU

from sspnet.data.synth_video import find_sequences, write_sequences
from sspnet.tracking import array_tracker
from sspnet.tracking.mot import read_mot
from sspnet.tracking.tracker import FrameTracker, TrackerSettings

FRAMES = 30
SETTINGS = [
    TrackerSettings(),  # sspnet track's default: BoT-SORT + buffered IoU + camera motion
    TrackerSettings(tracker="botsort", association="iou", cmc="none", min_hits=3),
    TrackerSettings(tracker="bytetrack", association="iou", cmc="none"),
    TrackerSettings(tracker="bytetrack", association="biou", cmc="sparseOptFlow", buffer_ratio=0.3),
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


def crowd(people=300, frames=40, seed=0):
    """Many tiny people walking 0-3 px/frame on a 1920x1080 frame, crossing one another."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform([20, 20], [1900, 1060], (people, 2))
    velocity = rng.uniform(-3, 3, (people, 2)) / np.sqrt(2)
    size = rng.uniform(4, 14, people)[:, None] * [0.6, 1.6]
    result = []
    for _ in range(frames):
        centre = centre + velocity + rng.normal(0, 0.2, (people, 2))
        result.append(np.c_[centre - size / 2, centre + size / 2])
    return result


def detections(frames, seed):
    """Jittered boxes, some dropped (lost tracks), scores spread over every confidence pass (also under
    BoT-SORT's 0.1 floor), a two-frame gap (the library's time-gap Q), a frame without detections, a
    duplicate-free crowd and a small camera motion with rotation."""
    rng = np.random.default_rng(seed)
    for k, boxes in enumerate(frames):
        if k in (12, 13):
            continue
        keep = rng.random(len(boxes)) > (1.0 if k == 20 else 0.1)
        boxes = boxes[keep] + rng.normal(0, 0.4, (keep.sum(), 4))
        motion = np.array([[1, 0.002, 0], [-0.002, 1, 0]]) + np.c_[np.zeros((2, 2)), rng.normal(0, 1, 2)]
        yield k, boxes, rng.uniform(0.05, 1.0, len(boxes)), motion


def library_states(tracker: FrameTracker) -> tuple[np.ndarray, np.ndarray]:
    filters = [t.state_estimator.kf for t in tracker.tracker.tracks]
    return (
        np.array([kf.state for kf in filters]).reshape(-1, 8),
        np.array([kf.state_covariance for kf in filters]).reshape(-1, 64),
    )


def largest_difference(settings, frames, seed=0) -> float:
    """Runs the library's tracker and the array form side by side; asserts equal ids on every frame
    and returns the largest difference of any state or covariance entry (relative to its size)."""
    library, array = FrameTracker(settings, array_form=False), FrameTracker(settings)
    assert library.array is None and array.array is not None
    worst, confirmed = 0.0, 0
    for k, boxes, scores, motion in detections(frames, seed):
        ids = [tracker.update(boxes, scores, k, motion=motion) for tracker in (library, array)]
        np.testing.assert_array_equal(ids[0], ids[1], err_msg=f"frame {k}")
        confirmed += int((ids[0] > 0).sum())
        states = (array.array.mean, array.array.cov.reshape(-1, 64))
        for a, b in zip(library_states(library), states):
            assert a.shape == b.shape, f"frame {k}: track count"
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(1, np.abs(a)), initial=0)))
        np.testing.assert_array_equal([t.tracker_id for t in library.tracker.tracks], array.array.ids)
    assert confirmed > 0  # the sequences reach confirmed tracks
    return worst


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: s.label())
def test_array_form_equals_the_library(sequences, settings):
    for frames in sequences:
        assert largest_difference(settings, frames) <= 1e-6


@pytest.mark.parametrize("settings", SETTINGS[:3], ids=lambda s: s.label())
def test_array_form_equals_the_library_in_a_crowd(settings):
    assert largest_difference(settings, crowd()) <= 1e-6


def test_overlap_pairs_equal_the_dense_biou_matrix():
    rng = np.random.default_rng(1)
    for ratio in (0.0, 0.5):
        tracks = np.concatenate([crowd(200, 1, seed=2)[0], [[5, 5, 5, 9], [0, 0, 1900, 1000]]])  # empty, huge
        detections = np.concatenate([tracks[:150] + rng.normal(0, 2, (150, 4)), crowd(60, 1, seed=4)[0]])
        dense = BIoU(ratio).compute(tracks, detections) if ratio else sv.box_iou_batch(tracks, detections)
        rows, cols, values = array_tracker.overlap_pairs(tracks, detections, ratio)
        sparse = np.zeros_like(dense)
        sparse[rows, cols] = values
        np.testing.assert_array_equal(sparse, dense)  # bit for bit, zeros included
        assert values.dtype == dense.dtype == np.float32 and (dense > 0).sum() > 150


def test_assignment_equals_the_library_on_the_whole_matrix():
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(5)
    for _ in range(50):
        dense = np.where(rng.random((40, 35)) < 0.08, rng.random((40, 35)), 0).astype(np.float32)
        r, c = linear_sum_assignment(dense, maximize=True)
        keep = dense[r, c] >= 0.3
        rows, cols = np.nonzero(dense)
        got = array_tracker.assign(rows, cols, dense[rows, cols], 40, 35, 0.3, np.float32)
        np.testing.assert_array_equal(np.stack(got, 1), np.c_[r[keep], c[keep]])


def test_equality_check_catches_a_dropped_process_noise(sequences, monkeypatch):
    monkeypatch.setattr(array_tracker.ArrayTracker, "_predict", lambda self, step, elapsed: None)
    with pytest.raises(AssertionError):
        largest_difference(SETTINGS[0], sequences[0])


def test_equality_check_catches_an_assignment_of_lone_pairs_only(monkeypatch):
    """Planted: the competing tracks and detections never go through the optimal assignment."""

    def lone_only(rows, cols, values, n_rows, n_cols, threshold, dtype):
        positive = values > 0
        rows, cols, values = rows[positive], cols[positive], values[positive]
        alone = (np.bincount(rows, minlength=n_rows)[rows] == 1) & (np.bincount(cols, minlength=n_cols)[cols] == 1)
        keep = alone & (values >= threshold)
        order = np.argsort(rows[keep], kind="stable")
        return rows[keep][order], cols[keep][order]

    monkeypatch.setattr(array_tracker, "assign", lone_only)
    with pytest.raises(AssertionError):
        largest_difference(SETTINGS[2], crowd())


def test_a_changed_library_is_refused_and_tracking_falls_back_to_it(monkeypatch):
    array_tracker.check_library()  # the installed trackers is the one the array form mirrors
    assert FrameTracker(TrackerSettings()).array is not None
    name = "trackers.utils.kalman_filter:KalmanFilter.update"
    monkeypatch.setitem(array_tracker.EXPECTED_SOURCES, name, "0" * 16)
    with pytest.raises(RuntimeError, match="KalmanFilter.update"):
        array_tracker.check_library()
    with pytest.warns(UserWarning, match="KalmanFilter.update.*library's own tracker"):
        tracker = FrameTracker(TrackerSettings())
    assert tracker.array is None
    assert tracker.update(np.array([[10.0, 10, 14, 20]]), np.array([0.9]), 0).shape == (1,)


def test_other_trackers_and_associations_run_the_library():
    for settings in (TrackerSettings(tracker="sort", cmc="none"), TrackerSettings(association="diou")):
        assert FrameTracker(settings).array is None
