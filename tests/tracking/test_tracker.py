"""Tracker wiring (sspnet.tracking.tracker) on synthetic sequences, scored by the maintained evaluator."""

import numpy as np
import pytest

from sspnet.data.synth_video import SequenceGenerator, find_sequences, write_sequences
from sspnet.errors import UsageError
from sspnet.tracking.evaluate import evaluate_rows
from sspnet.tracking.mot import MotRows, read_mot
from sspnet.tracking.tracker import FrameTracker, MotionEstimator, TrackerSettings

FRAMES = 40


@pytest.fixture(scope="module")
def hover(tmp_path_factory):
    out = tmp_path_factory.mktemp("seq")
    write_sequences(out, 1, frames=FRAMES, size=(640, 480), seed=1, progress=False)
    info = find_sequences(out)[0]
    return info, read_mot(info.gt, "gt", info.frames)


def track_gt(gt, settings, jitter=0.3, seed=0, shuffle_ids=False):
    """Feed the considered gt boxes (jittered) as detections; return the tracker's MotRows."""
    rng = np.random.default_rng(seed)
    tracker = FrameTracker(settings)
    out = []
    for frame in range(1, FRAMES + 1):
        mask = (gt.frame == frame) & (gt.score == 1)
        boxes = gt.box[mask] + np.c_[rng.normal(0, jitter, (mask.sum(), 2)), np.zeros((mask.sum(), 2))]
        xyxy = np.c_[boxes[:, :2], boxes[:, :2] + boxes[:, 2:]]
        ids = tracker.update(xyxy, np.full(mask.sum(), 0.9), frame - 1)
        if shuffle_ids:  # the planted bug: ids handed out in the wrong order
            ids = rng.permutation(ids)
        keep = ids > 0
        out.append((np.full(keep.sum(), frame), ids[keep], boxes[keep]))
    frame, ids, boxes = (np.concatenate(x) for x in zip(*out))
    return MotRows(frame, ids, boxes, np.ones(len(frame)), np.ones(len(frame), int), np.ones(len(frame)))


@pytest.mark.parametrize("name", ["bytetrack", "botsort", "sort", "cbiou"])
def test_ids_are_stable_on_an_easy_sequence(hover, name):
    info, gt = hover
    settings = TrackerSettings(tracker=name, association="biou", cmc="none", min_hits=1)
    metrics, _ = evaluate_rows(gt, track_gt(gt, settings), info.frames)
    assert metrics["IDF1"] > 90 and metrics["HOTA"] > 70
    assert metrics["IDSW"] <= 0.02 * metrics["gt_ids"] * FRAMES / 10


def test_the_metric_catches_scrambled_ids(hover):
    info, gt = hover
    settings = TrackerSettings(tracker="bytetrack", association="biou", cmc="none", min_hits=1)
    good, _ = evaluate_rows(gt, track_gt(gt, settings), info.frames)
    bad, _ = evaluate_rows(gt, track_gt(gt, settings, shuffle_ids=True), info.frames)
    assert bad["IDF1"] < 40 < good["IDF1"] and bad["IDSW"] > 10 * max(good["IDSW"], 1)


def run_with_gap(frame_numbers):
    """A 4x8 px person walking 2 px/frame, seen on frames 0-9 and again on frame 18 (a link gap):
    the id it gets on frame 18 when the tracker is told `frame_numbers` for those 11 observations."""
    tracker = FrameTracker(TrackerSettings(cmc="none"))
    seen = list(range(10)) + [18]
    ids = None
    for true_frame, told in zip(seen, frame_numbers):
        box = np.array([[10.0 + 2 * true_frame, 10.0, 14.0 + 2 * true_frame, 18.0]])
        ids = tracker.update(box, [0.9], told)
    return ids[0]


def test_a_frame_gap_is_predicted_across():
    assert run_with_gap(list(range(10)) + [18]) == 1  # the Kalman filter predicts 9 steps: same track
    # the same observations without the gap (what ignoring frame numbers would do): 16 px off, track lost
    assert run_with_gap(list(range(11))) != 1
    tracker = FrameTracker(TrackerSettings(cmc="none"))
    tracker.update(np.zeros((0, 4)), [], 5)
    with pytest.raises(ValueError, match="in order"):
        tracker.update(np.zeros((0, 4)), [], 5)


def test_bad_settings_name_the_option():
    with pytest.raises(UsageError, match="--tracker"):
        TrackerSettings(tracker="deepsort").check()
    with pytest.raises(UsageError, match="--cmc"):
        TrackerSettings(tracker="ocsort", association="iou", cmc="orb").check()
    with pytest.raises(UsageError, match="--buffer-ratio"):
        TrackerSettings(buffer_ratio=float("nan")).check()


@pytest.mark.parametrize("mode", ["pan", "rotate", "zoom"])
def test_camera_motion_estimate_matches_the_generators_camera(mode):
    generator = SequenceGenerator(np.random.default_rng(2), mode, 7, 1280, 720)
    estimator = MotionEstimator("sparseOptFlow", downscale=4)
    corners = np.array([[0, 0, 1], [1280, 0, 1], [0, 720, 1], [1280, 720, 1]], float).T
    errors, uncompensated = [], []
    for k in range(7):
        estimate = estimator.estimate(generator.frame(k)[0])
        if k == 0:
            continue
        # truth: previous frame -> current frame = M_k o M_(k-1)^-1 (the generator's world -> frame affines)
        previous, current = (np.vstack([generator.transforms[j], [0, 0, 1]]) for j in (k - 1, k))
        truth = (current @ np.linalg.inv(previous))[:2]
        errors.append(np.abs(estimate @ corners - truth @ corners).max())  # px, worst frame corner
        uncompensated.append(np.abs(corners[:2] - truth @ corners).max())
    assert np.median(errors) < 1.0 and np.median(errors) < 0.4 * np.median(uncompensated)
