"""All tracks' Kalman predict and update at once, for `trackers`' ByteTrack and BoT-SORT.

Why it exists: `trackers` runs one small Kalman filter per track in Python, a few dozen numpy calls
per track and frame, which dominates a tracker step with hundreds of people in view
(benchmarks/bench_tracking.py --part cost). Here the same algebra runs as numpy over the stacked
states and covariances of all tracks:

- predict: the tracker's `_predict_tracklets` is replaced, on the one tracker object, by a batched
  step (constant-velocity F, the tracklet's one-frame Q, BoT-SORT's size-scaled Q and width/height
  clamp, the same miss clocks);
- update: each tracklet's `update` is replaced, on the object, by one that advances its counters at
  once (the tracker reads them for track ids) and queues the measurement; `flush` then runs every
  queued update together. The caller must flush before anything reads a filter state again
  (`FrameTracker.update` does it right after the tracker's update: between its updates and its
  return, ByteTrack and BoT-SORT read no state).

The library's own code is kept for anything else: other trackers, other state representations, a
gap between frames (the library scales Q for it) - those tracklets keep the per-track path. The
results equal the library's to float rounding (tests/tracking/test_fast_kalman.py runs both).

This leans on the library's internals, so `check_library` refuses (RuntimeError) a `trackers` whose
code of these steps differs from the version it was written against; FrameTracker then warns and keeps
the library's own per-track filters.
"""

from __future__ import annotations

import hashlib
import inspect

import numpy as np

# sha256 (first 16 hex digits) of the source of every library function whose work is redone here,
# as in trackers 2.6.1. Regenerate with `python -m sspnet.tracking.fast_kalman` after checking that
# the batched code below still does what the new source does.
EXPECTED_SOURCES = {
    "KalmanFilter.predict": "a27022763d5dfa39",
    "KalmanFilter.update": "1072c77616687e86",
    "BaseStateEstimator.predict": "044bc023e0a3fdc2",
    "XYXYStateEstimator.state_to_bbox": "6d44868c6e69e846",
    "XCYCWHStateEstimator.state_to_bbox": "98f13a324cba6743",
    "ScalableProcessNoise.build_Q": "afb6ebea353572e0",
    "BaseTracklet._advance_miss_clocks": "9d829431d2bb7ab0",
    "BaseTracker._predict_tracklets": "43d2c66e2565762f",
    "ByteTrackTracklet.predict": "246035ab8069392a",
    "ByteTrackTracklet.update": "9d50b50a35821402",
    "BoTSORTTracklet.predict": "973286904765d998",
    "BoTSORTTracklet.update": "c7bc766852eee7cd",
    "BoTSORTTracklet._build_process_noise": "85e7d3b2a07b3c9e",
    "BoTSORTTracklet._build_measurement_noise": "97248158c5b24ff5",
    "BoTSORTTracklet._current_wh": "2fae025e8e2e8208",
}
MIN_SIZE = 1e-3  # the library's floor on box width/height (BoTSORTTracklet._current_wh and clamps)


def _library():
    from trackers.core.base import BaseTracker
    from trackers.core.botsort.tracklet import BoTSORTTracklet
    from trackers.core.bytetrack.tracklet import ByteTrackTracklet
    from trackers.utils import motion_models
    from trackers.utils.base_tracklet import BaseTracklet
    from trackers.utils.kalman_filter import KalmanFilter
    from trackers.utils.state_representations import (
        BaseStateEstimator,
        XCYCWHStateEstimator,
        XYXYStateEstimator,
    )

    classes = {
        "KalmanFilter": KalmanFilter,
        "BaseStateEstimator": BaseStateEstimator,
        "XYXYStateEstimator": XYXYStateEstimator,
        "XCYCWHStateEstimator": XCYCWHStateEstimator,
        "ScalableProcessNoise": motion_models.ScalableProcessNoise,
        "BaseTracklet": BaseTracklet,
        "BaseTracker": BaseTracker,
        "ByteTrackTracklet": ByteTrackTracklet,
        "BoTSORTTracklet": BoTSORTTracklet,
    }
    return classes, motion_models


def source_digests() -> dict:
    """sha256 prefix of the installed library's source of each function named in EXPECTED_SOURCES."""
    classes, _ = _library()
    digests = {}
    for name in EXPECTED_SOURCES:
        owner, function = name.split(".")
        source = inspect.getsource(getattr(classes[owner], function))
        digests[name] = hashlib.sha256(source.encode()).hexdigest()[:16]
    return digests


def check_library() -> None:
    """RuntimeError naming each library function whose source is not the one this module mirrors."""
    changed = [name for name, digest in source_digests().items() if digest != EXPECTED_SOURCES[name]]
    if changed:
        raise RuntimeError(
            "sspnet.tracking.fast_kalman mirrors trackers 2.6.1's Kalman steps, but the installed trackers "
            f"changed {', '.join(changed)}; check the batched code against it, then update EXPECTED_SOURCES"
        )


class BatchedKalman:
    """Batched predict/update for one ByteTrack or BoT-SORT tracker object (see the module docstring)."""

    def __init__(self, tracker):
        check_library()
        classes, motion_models = _library()
        self.tracker = tracker
        if type(tracker).__name__ == "ByteTrackTracker":
            self.tracklet_class, self.estimator_class = classes["ByteTrackTracklet"], classes["XYXYStateEstimator"]
            self.scale_aware = False
        elif type(tracker).__name__ == "BoTSORTTracker":
            self.tracklet_class, self.estimator_class = classes["BoTSORTTracklet"], classes["XCYCWHStateEstimator"]
            self.scale_aware = True
        else:
            raise ValueError(f"no batched Kalman filter for {type(tracker).__name__}")
        self.pos_idx = self.estimator_class._POS_IDX
        self.vel_idx = self.estimator_class._VEL_IDX
        self.observation = np.eye(4, 8)
        self.transition_for = motion_models.constant_velocity_transition_matrix
        self.tolerance_seconds = motion_models._NOMINAL_FRAME_STEP_TOLERANCE_SECONDS
        self.tolerance_frames = motion_models._NOMINAL_FRAME_STEP_TOLERANCE
        self.library_predict = tracker._predict_tracklets
        self.pending: list = []  # (tracklet, bbox) updates queued since the last flush
        tracker._predict_tracklets = self.predict

    # ---- which tracklets take the batched path ----
    def _batchable(self, tracklet) -> bool:
        """Tracklets of the expected class and state layout, with H = [I 0]; queues their updates."""
        if "update" in tracklet.__dict__:
            return True
        kf = tracklet.state_estimator.kf
        if not (
            type(tracklet) is self.tracklet_class
            and type(tracklet.state_estimator) is self.estimator_class
            and kf.state.shape == (8, 1)
            and np.array_equal(kf.observation_mtx, self.observation)
        ):
            return False
        tracklet.update = lambda bbox, tracklet=tracklet: self._queue_update(tracklet, bbox)
        return True

    def _queue_update(self, tracklet, bbox) -> None:
        """The counter changes of the library's `update`, at once; the filter update waits for `flush`."""
        tracklet.time_since_update = 0
        tracklet.time_since_update_seconds = 0.0
        if self.scale_aware:
            tracklet.number_of_successful_updates += 1
        else:
            tracklet.number_of_successful_consecutive_updates += 1
        self.pending.append((tracklet, bbox))

    def _nominal(self, timing) -> bool:
        """Whether the library uses the one-frame Q for this step (ScalableProcessNoise.build_Q's band)."""
        rate = timing.frame_rate
        tolerance = self.tolerance_seconds * rate if rate is not None and rate > 0 else self.tolerance_frames
        return abs(timing.frame_step - 1.0) <= tolerance

    def _sizes(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Box width and height as BoTSORTTracklet._current_wh gets them (via xyxy, floored)."""
        centre, half = states[:, :2, 0], states[:, 2:4, 0] * 0.5
        size = (centre + half) - (centre - half)
        return np.maximum(size[:, 0], MIN_SIZE), np.maximum(size[:, 1], MIN_SIZE)

    # ---- predict ----
    def _process_noise(self, batch: list, states: np.ndarray) -> np.ndarray:
        """Each tracklet's one-frame Q: BoT-SORT's from the box size before the step
        (BoTSORTTracklet._build_process_noise), ByteTrack's as configured at the start."""
        if not self.scale_aware:
            return np.stack([t.state_estimator.motion.process_noise.baseline_Q for t in batch])
        w, h = self._sizes(states)
        sp, sv = self.tracklet_class._SIGMA_P, self.tracklet_class._SIGMA_V
        noise = np.zeros((len(batch), 8, 8))
        noise[:, np.arange(8), np.arange(8)] = (
            np.stack([sp * w, sp * h, sp * w, sp * h, sv * w, sv * h, sv * w, sv * h], 1) ** 2
        )
        return noise

    def predict(self, tracklets: list, timing) -> None:
        """The tracker's `_predict_tracklets`: one batched step for the batchable tracklets."""
        if timing.skip_predict:
            return
        batch = [t for t in tracklets if self._batchable(t)]
        if len(batch) < len(tracklets) or not self._nominal(timing):
            self.library_predict(tracklets, timing)  # a gap (scaled Q) or a foreign tracklet
            return
        if not batch:
            return
        filters = [t.state_estimator.kf for t in batch]
        states = np.stack([kf.state for kf in filters])
        covariances = np.stack([kf.state_covariance for kf in filters])
        noise = self._process_noise(batch, states)
        transition = self.transition_for(8, self.pos_idx, self.vel_idx, timing.frame_step)
        states = transition @ states
        covariances = transition @ covariances @ transition.T + noise
        if self.scale_aware:  # BoTSORTTracklet._clamp_xcycwh_state
            np.maximum(states[:, 2:4], MIN_SIZE, out=states[:, 2:4])
        for k, (tracklet, kf) in enumerate(zip(batch, filters)):
            kf.state = kf.state_prior = states[k]
            kf.state_covariance = kf.state_covariance_prior = covariances[k]
            kf.transition_mtx, kf.process_noise = transition, noise[k]
            if not self.scale_aware and tracklet.time_since_update > 0:
                tracklet.number_of_successful_consecutive_updates = 0
            tracklet._advance_miss_clocks(timing)

    # ---- update ----
    def flush(self) -> None:
        """Run the queued measurement updates (KalmanFilter.update's algebra, Joseph form) together."""
        if not self.pending:
            return
        tracklets = [t for t, _ in self.pending]
        boxes = np.array([bbox for _, bbox in self.pending], np.float64).reshape(-1, 4)
        self.pending = []
        filters = [t.state_estimator.kf for t in tracklets]
        states = np.stack([kf.state for kf in filters])
        covariances = np.stack([kf.state_covariance for kf in filters])
        if self.scale_aware:  # measurement in xywh; R from the predicted size (_build_measurement_noise)
            w, h = self._sizes(states)
            sm = self.tracklet_class._SIGMA_M
            measurement_noise = np.zeros((len(tracklets), 4, 4))
            measurement_noise[:, np.arange(4), np.arange(4)] = np.stack([sm * w, sm * h, sm * w, sm * h], 1) ** 2
            size = boxes[:, 2:] - boxes[:, :2]
            boxes = np.concatenate([boxes[:, :2] + size * 0.5, size], 1)
        else:
            measurement_noise = np.stack([kf.measurement_noise for kf in filters])
        H = self.observation
        innovation = boxes[:, :, None] - H @ states
        PHT = covariances @ H.T
        innovation_cov = H @ PHT + measurement_noise
        gain = PHT @ np.linalg.inv(innovation_cov)
        states = states + gain @ innovation
        I_KH = np.eye(8) - gain @ H
        covariances = I_KH @ covariances @ I_KH.transpose(0, 2, 1) + gain @ measurement_noise @ gain.transpose(0, 2, 1)
        if self.scale_aware:
            np.maximum(states[:, 2:4], MIN_SIZE, out=states[:, 2:4])
        for k, kf in enumerate(filters):
            kf.state = kf.state_post = states[k]
            kf.state_covariance = kf.state_covariance_post = covariances[k]
            kf.measurement_noise, kf.kalman_gain = measurement_noise[k], gain[k]
            kf.innovation, kf.innovation_cov = innovation[k], innovation_cov[k]


if __name__ == "__main__":
    for name, digest in source_digests().items():
        print(f'    "{name}": "{digest}",')
