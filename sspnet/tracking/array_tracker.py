"""`trackers`' ByteTrack and BoT-SORT update, run on arrays that hold every track at once.

Why it exists: `trackers` keeps each track as a Python object with its own small Kalman filter, and
its update walks them one by one, so with hundreds of people in view its cost grows far past what
onboard tracking can spend per frame (benchmarks/bench_tracking.py --part cost measures both). This
module takes the same steps, in the same order, with the same constants, on arrays of all tracks:

- Kalman predict and update as batched numpy: the library's F, Q (BoT-SORT's size-scaled Q, its
  time-gap form, the width/height clamp) and Joseph-form update;
- association: the library's IoU / buffered IoU (its float64 formula, float32 result) computed only
  for pairs of boxes whose x-extents overlap: every other entry of the library's dense matrix is 0.
  The optimal assignment (scipy's linear_sum_assignment, as in the library) is solved only for tracks
  and detections that compete; a track and a detection that overlap only each other are matched
  directly. An optimal assignment of the whole matrix is the union of these, since zero entries add
  nothing, so the matches are the library's unless two assignments tie exactly;
- confidence passes, id allocation order, miss clocks, lost-track budgets and pruning as the
  library's `update`.

It is not a tracker of sspnet's own design: tests/tracking/test_array_tracker.py runs the library's
tracker beside it (hovering and panning cameras, gaps, people lost and found again, both confidence
passes, camera motion) and requires the same ids on every frame and the same filter states within
1e-6. `check_library` hashes every library function mirrored here; a `trackers` release that
changes any of them makes FrameTracker warn and use the library's own tracker.

    tracker = ArrayTracker(build_tracker(settings))     # settings are read from the library object
    # NoArrayForm: SORT, OC-SORT, C-BIoU or a DIoU / GIoU association (the library runs those)
    ids = tracker.update(boxes_xyxy, scores, timestamp)  # int [N]: 0-based track id or -1
"""

from __future__ import annotations

import hashlib
import inspect

import numpy as np

# sha256 (first 16 hex digits) of the source of each library function whose work is redone here, as
# in trackers 2.6.1 / supervision 0.31. Regenerate with `python -m sspnet.tracking.array_tracker`
# after checking that the code below still does what the new source does.
EXPECTED_SOURCES = {
    "trackers.core.bytetrack.tracker:ByteTrackTracker.update": "a3f9ff1a55e20a24",
    "trackers.core.bytetrack.tracker:ByteTrackTracker._get_associated_indices": "dfeb6c7e8baa331b",
    "trackers.core.bytetrack.tracker:ByteTrackTracker._spawn_new_tracks": "0eadc56172f11f1c",
    "trackers.core.bytetrack.utils:_get_alive_tracklets": "345242f72dc5fb43",
    "trackers.core.bytetrack.tracklet:ByteTrackTracklet.__init__": "7f0a54656a95708a",
    "trackers.core.bytetrack.tracklet:ByteTrackTracklet._configure_noise": "e8401fbec0fdc969",
    "trackers.core.bytetrack.tracklet:ByteTrackTracklet.update": "9d50b50a35821402",
    "trackers.core.bytetrack.tracklet:ByteTrackTracklet.predict": "246035ab8069392a",
    "trackers.core.botsort.tracker:BoTSORTTracker.update": "266c03104d0a3ffb",
    "trackers.core.botsort.tracker:BoTSORTTracker._get_associated_indices": "a0fd3337353387f1",
    "trackers.core.botsort.tracker:BoTSORTTracker._spawn_new_tracks": "bd182b5ccc8e2f14",
    "trackers.core.botsort.utils:get_alive_tracklets": "078f3b3a2094a7cb",
    "trackers.core.botsort.utils:_fuse_score": "7f21d30b57e69e5d",
    "trackers.core.botsort.tracklet:BoTSORTTracklet._set_scale_aware_noise": "e3c643b30b075f76",
    "trackers.core.botsort.tracklet:BoTSORTTracklet._build_process_noise": "85e7d3b2a07b3c9e",
    "trackers.core.botsort.tracklet:BoTSORTTracklet._build_measurement_noise": "97248158c5b24ff5",
    "trackers.core.botsort.tracklet:BoTSORTTracklet._current_wh": "2fae025e8e2e8208",
    "trackers.core.botsort.tracklet:BoTSORTTracklet.update": "c7bc766852eee7cd",
    "trackers.core.botsort.tracklet:BoTSORTTracklet.predict": "973286904765d998",
    "trackers.core.base:BaseTracker._predict_timing": "7dbfef05debad970",
    "trackers.core.base:BaseTracker._prune_lost_tracks": "1a2c1a64c56a2f22",
    "trackers.core.base:BaseTracker._allocate_tracker_id": "60fd69fa9cedfb9a",
    "trackers.utils.base_tracklet:BaseTracklet.__init__": "09346194d8ef3260",
    "trackers.utils.base_tracklet:BaseTracklet._advance_miss_clocks": "9d829431d2bb7ab0",
    "trackers.utils.base_tracklet:BaseTracklet.within_lost_track_budget": "8cb4aabdc48ecda6",
    "trackers.utils.kalman_filter:KalmanFilter.predict": "a27022763d5dfa39",
    "trackers.utils.kalman_filter:KalmanFilter.update": "1072c77616687e86",
    "trackers.utils.motion_models:ScalableProcessNoise.build_Q": "afb6ebea353572e0",
    "trackers.utils.motion_models:ScalableProcessNoise._dwna": "09c4f874162d0f0c",
    "trackers.utils.motion_models:KalmanMotionModel.apply": "fbf5c1c120025a3f",
    "trackers.utils.motion_models:init_constant_velocity_filter": "27fb9b1ab6bace7d",
    "trackers.utils.state_representations:BaseStateEstimator.predict": "044bc023e0a3fdc2",
    "trackers.utils.state_representations:XCYCWHStateEstimator.state_to_bbox": "98f13a324cba6743",
    "trackers.utils.state_representations:XYXYStateEstimator.state_to_bbox": "6d44868c6e69e846",
    "trackers.utils.converters:xyxy_to_xywh": "3de2595884bc4f8f",
    "trackers.utils.converters:xywh_to_xyxy": "e4a2244ff8455af8",
    "trackers.utils.iou:BaseIoU.compute": "e7d7de78643ed864",
    "trackers.utils.iou:BIoU._compute": "dac911faad95f90f",
    "trackers.utils.iou:IoU._compute": "ee325116e5532972",
    "trackers.utils.cmc:CMC.apply_batch": "5c3c516dfefbd62f",
    "supervision.detection.utils.iou_and_nms:box_iou_batch": "b94e7d6202b9aa75",
}
MIN_SIZE = 1e-3  # the library's floor on a BoT-SORT box's width and height
LOW_SCORE_FLOOR = 0.1  # BoT-SORT drops detections at or below it (its second pass starts above)


class NoArrayForm(ValueError):
    """The library tracker's configuration has no array form here (FrameTracker then runs the library's)."""


def _resolve(name: str):
    import importlib

    module, _, qualname = name.partition(":")
    value = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def source_digests() -> dict:
    """sha256 prefix of the installed library's source of each function named in EXPECTED_SOURCES."""
    return {
        name: hashlib.sha256(inspect.getsource(_resolve(name)).encode()).hexdigest()[:16] for name in EXPECTED_SOURCES
    }


def check_library() -> None:
    """RuntimeError naming each library function whose source is not the one this module mirrors."""
    changed = [name.partition(":")[2] for name, digest in source_digests().items() if digest != EXPECTED_SOURCES[name]]
    if changed:
        raise RuntimeError(
            "sspnet.tracking.array_tracker mirrors trackers 2.6.1, but the installed trackers changed "
            f"{', '.join(changed)}; check the array code against it, then update EXPECTED_SOURCES"
        )


# ---- association ----
def overlap_pairs(tracks: np.ndarray, detections: np.ndarray, buffer_ratio: float) -> tuple:
    """The non-zero entries of the library's (buffered) IoU matrix between `tracks` [T, 4] and
    `detections` [D, 4] (xyxy): (rows, cols, values float32), values exactly as BIoU._compute and
    supervision's box_iou_batch give them. Candidates come from a sweep over the detections sorted
    by left edge, so the cost follows the number of overlapping pairs, not T x D."""
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))
    if len(tracks) == 0 or len(detections) == 0:
        return empty
    a, b = tracks.astype(np.float64, copy=True), detections.astype(np.float64, copy=True)
    if buffer_ratio != 0:  # BIoU: each box grown by buffer_ratio of its own width / height per side
        for boxes in (a, b):
            w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            boxes[:, 0] -= buffer_ratio * w
            boxes[:, 1] -= buffer_ratio * h
            boxes[:, 2] += buffer_ratio * w
            boxes[:, 3] += buffer_ratio * h
    order = np.argsort(b[:, 0], kind="stable")
    left = b[order, 0]
    widest = float(np.max(b[:, 2] - b[:, 0]))
    if not np.isfinite(widest) or not np.all(np.isfinite(a)):  # let the exact test below sort it out
        first, last = np.zeros(len(a), np.int64), np.full(len(a), len(b))
    else:
        # a detection can overlap track t only if its left edge lies in (t.x1 - widest, t.x2)
        # (1 px of slack: the widths above carry rounding; extra candidates only cost time)
        first = np.searchsorted(left, a[:, 0] - max(widest, 0.0) - 1.0, "left")
        last = np.searchsorted(left, a[:, 2], "right")
    counts = np.maximum(last - first, 0)
    rows = np.repeat(np.arange(len(a)), counts)
    starts = np.repeat(first - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    cols = order[starts + np.arange(len(rows))]
    ta, db = a[rows], b[cols]
    inter_w = np.minimum(ta[:, 2], db[:, 2]) - np.maximum(ta[:, 0], db[:, 0])
    inter_h = np.minimum(ta[:, 3], db[:, 3]) - np.maximum(ta[:, 1], db[:, 1])
    hit = (inter_w > 0) & (inter_h > 0)
    rows, cols, ta, db = rows[hit], cols[hit], ta[hit], db[hit]
    inter = inter_w[hit] * inter_h[hit]
    union = (ta[:, 2] - ta[:, 0]) * (ta[:, 3] - ta[:, 1]) + (db[:, 2] - db[:, 0]) * (db[:, 3] - db[:, 1]) - inter
    values = np.zeros(len(inter), np.float32)
    np.divide(inter, union, out=values, where=union > 0)
    return rows, cols, values


def assign(rows, cols, values, n_rows: int, n_cols: int, threshold: float, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The library's `_get_associated_indices` on the sparse matrix (rows, cols, values) of shape
    [n_rows, n_cols] and `dtype`: the matched (row, col) pairs, ordered by row, whose similarity is at
    least `threshold`."""
    from scipy.optimize import linear_sum_assignment

    positive = values > 0
    rows, cols, values = rows[positive], cols[positive], values[positive].astype(dtype)
    alone = (np.bincount(rows, minlength=n_rows)[rows] == 1) & (np.bincount(cols, minlength=n_cols)[cols] == 1)
    match_rows, match_cols, match_values = [rows[alone]], [cols[alone]], [values[alone]]
    if not alone.all():
        busy_rows, row_at = np.unique(rows[~alone], return_inverse=True)
        busy_cols, col_at = np.unique(cols[~alone], return_inverse=True)
        block = np.zeros((len(busy_rows), len(busy_cols)), dtype)
        block[row_at, col_at] = values[~alone]
        r, c = linear_sum_assignment(block, maximize=True)
        match_rows.append(busy_rows[r])
        match_cols.append(busy_cols[c])
        match_values.append(block[r, c])
    rows, cols, values = (np.concatenate(parts) for parts in (match_rows, match_cols, match_values))
    keep = values >= threshold
    order = np.argsort(rows[keep], kind="stable")
    return rows[keep][order], cols[keep][order]


def _unmatched(matched: np.ndarray, count: int) -> np.ndarray:
    mask = np.ones(count, bool)
    mask[matched] = False
    return np.flatnonzero(mask)


class ArrayTracker:
    """One ByteTrack or BoT-SORT tracker of `trackers`, with its tracks held in arrays.

    mean [T, 8] and cov [T, 8, 8]: the Kalman states (BoT-SORT: xc, yc, w, h and velocities;
    ByteTrack: x1, y1, x2, y2 and velocities); ids [T] (-1 until confirmed); misses [T] and
    miss_seconds [T]: the library's time_since_update clocks; hits [T]: BoT-SORT's successful
    updates, ByteTrack's consecutive ones. Rows are in the library's track order."""

    def __init__(self, tracker):
        """tracker: a configured trackers.ByteTrackTracker or BoTSORTTracker (build_tracker); its
        settings are read from it, so both run the same configuration. Raises NoArrayForm for any
        other configuration, RuntimeError (check_library) for a trackers release not mirrored here."""
        from trackers.utils.iou import BIoU, IoU

        kind = type(tracker).__name__
        if kind not in ("ByteTrackTracker", "BoTSORTTracker"):
            raise NoArrayForm(f"no array form of {kind}")
        if type(tracker.iou) is BIoU:
            self.buffer_ratio = float(tracker.iou.buffer_ratio)
        elif type(tracker.iou) is IoU:
            self.buffer_ratio = 0.0
        else:
            raise NoArrayForm(f"no array form of the {type(tracker.iou).__name__} association")
        self.botsort = kind == "BoTSORTTracker"
        self.frame_rate = float(tracker._frame_rate)
        self.max_seconds = tracker.maximum_time_without_update
        self.min_hits = tracker.minimum_consecutive_frames
        self.activation = tracker.track_activation_threshold
        self.high = tracker.high_conf_det_threshold
        if self.botsort:
            self.thresholds = (
                tracker.minimum_iou_threshold_first_assoc,
                tracker.minimum_iou_threshold_second_assoc,
                tracker.minimum_iou_threshold_unconfirmed_assoc,
            )
            self.instant_first = tracker.instant_first_frame_activation
            from trackers.core.botsort.tracklet import BoTSORTTracklet as tracklet
            from trackers.utils.state_representations import XCYCWHStateEstimator as estimator

            self.sigma_p, self.sigma_v, self.sigma_m = tracklet._SIGMA_P, tracklet._SIGMA_V, tracklet._SIGMA_M
        else:
            self.thresholds = (tracker.minimum_iou_threshold,) * 2
            from trackers.utils.state_representations import XYXYStateEstimator as estimator
        if min(self.thresholds) <= 0:  # the library would then also match pairs that do not overlap
            raise NoArrayForm(f"no array form of {kind} with an association threshold <= 0")
        if tracker.state_estimator_class is not estimator:
            raise NoArrayForm(f"no array form of {kind} with {tracker.state_estimator_class.__name__} states")
        check_library()
        self.pos_idx, self.vel_idx = estimator._POS_IDX, estimator._VEL_IDX
        self.reset()

    def reset(self) -> None:
        self.mean, self.cov = np.zeros((0, 8)), np.zeros((0, 8, 8))
        self.ids = np.zeros(0, np.int64)
        self.misses, self.hits = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self.miss_seconds = np.zeros(0)
        self.next_id, self.frame_id, self.last_timestamp = 0, 0, None

    def __len__(self) -> int:
        return len(self.ids)

    # ---- the tracks' boxes and sizes ----
    def boxes(self) -> np.ndarray:
        """[T, 4] xyxy of every track's state (the library's state_to_bbox)."""
        if not self.botsort:
            return self.mean[:, :4].copy()
        half = self.mean[:, 2:4] * 0.5
        return np.concatenate([self.mean[:, :2] - half, self.mean[:, :2] + half], 1)

    @staticmethod
    def _sizes(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Width and height of xyxy `boxes` as BoTSORTTracklet._current_wh gets them (floored)."""
        return np.maximum(boxes[:, 2] - boxes[:, 0], MIN_SIZE), np.maximum(boxes[:, 3] - boxes[:, 1], MIN_SIZE)

    def _select(self, keep: np.ndarray) -> None:
        for name in ("mean", "cov", "ids", "misses", "hits", "miss_seconds"):
            setattr(self, name, getattr(self, name)[keep])

    # ---- camera motion (trackers.CMC.apply_batch) ----
    def apply_motion(self, affine: np.ndarray) -> None:
        """Warp every track's state and covariance by the 2x3 previous -> current frame affine."""
        from trackers.utils.cmc import CMC

        if affine is None or len(self) == 0:
            return
        rotation, shift = affine[:2, :2].astype(np.float64), affine[:2, 2].astype(np.float64)
        mean = self.mean.copy()
        block = np.eye(8)
        if self.botsort:
            mean[:, 0:2] = mean[:, 0:2] @ rotation.T + shift
            mean[:, 4:6] = mean[:, 4:6] @ rotation.T
            block[0:2, 0:2] = block[4:6, 4:6] = rotation
        else:
            mean[:, 0], mean[:, 1], mean[:, 2], mean[:, 3] = CMC.warp_xyxy_corners(
                mean[:, 0], mean[:, 1], mean[:, 2], mean[:, 3], rotation, shift
            )
            mean[:, 4], mean[:, 5], mean[:, 6], mean[:, 7] = CMC.warp_xyxy_corners(
                mean[:, 4], mean[:, 5], mean[:, 6], mean[:, 7], rotation
            )
            if np.isclose(rotation[0, 1], 0.0, atol=1e-6) and np.isclose(rotation[1, 0], 0.0, atol=1e-6):
                for k in range(4):
                    block[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = rotation
            else:
                block = None  # the library leaves the covariance as it is
        self.mean = mean
        if block is not None:
            self.cov = block @ self.cov @ block.T

    # ---- Kalman filter ----
    def _predict(self, step: float, elapsed: float) -> None:
        """Every track's predict (the tracklets' `predict`, the library's Q and its time-gap form)."""
        from trackers.utils import motion_models

        count = len(self)
        tolerance = motion_models._NOMINAL_FRAME_STEP_TOLERANCE_SECONDS * self.frame_rate
        nominal = abs(step - 1.0) <= tolerance
        if self.botsort:  # Q from the box size before the step (BoTSORTTracklet._build_process_noise)
            w, h = self._sizes(self.boxes())
            sp, sv = self.sigma_p, self.sigma_v
            position = np.stack([(sp * w) ** 2, (sp * h) ** 2, (sp * w) ** 2, (sp * h) ** 2], 1)
            velocity = np.stack([(sv * w) ** 2, (sv * h) ** 2, (sv * w) ** 2, (sv * h) ** 2], 1)
        else:  # ByteTrack: the filter's identity Q times 0.01 (ByteTrackTracklet._configure_noise)
            position = velocity = np.full((count, 4), 0.01)
        noise = np.zeros((count, 8, 8))
        p, v = self.pos_idx, self.vel_idx
        if nominal:
            noise[:, p, p], noise[:, v, v] = position, velocity
        else:  # ScalableProcessNoise._dwna, with sigma_a^2 = the velocity entries of Q
            dt2 = step * step
            dt3, dt4 = dt2 * step, dt2 * dt2
            noise[:, p, p] = velocity * dt4 / 4.0
            noise[:, p, v] = noise[:, v, p] = velocity * dt3 / 2.0
            noise[:, v, v] = velocity * dt2
        transition = motion_models.constant_velocity_transition_matrix(8, p, v, step)
        self.mean = (transition @ self.mean[:, :, None])[:, :, 0]
        self.cov = transition @ self.cov @ transition.T + noise
        if self.botsort:
            np.maximum(self.mean[:, 2:4], MIN_SIZE, out=self.mean[:, 2:4])
        else:
            self.hits[self.misses > 0] = 0  # ByteTrack counts consecutive updates
        self.misses += 1
        self.miss_seconds += elapsed

    def _correct(self, tracks: np.ndarray, boxes: np.ndarray, predicted: np.ndarray) -> None:
        """The Kalman update of `tracks` with their matched boxes (xyxy), KalmanFilter.update's algebra;
        predicted: the tracks' predicted boxes (xyxy), which size BoT-SORT's measurement noise."""
        if len(tracks) == 0:
            return
        mean, cov = self.mean[tracks], self.cov[tracks]
        boxes = boxes.astype(np.float64)
        if self.botsort:  # measurement xywh; R from the predicted size (_build_measurement_noise)
            (w, h), sm = self._sizes(predicted), self.sigma_m
            noise = np.zeros((len(tracks), 4, 4))
            diagonal = [(sm * w) ** 2, (sm * h) ** 2, (sm * w) ** 2, (sm * h) ** 2]
            noise[:, np.arange(4), np.arange(4)] = np.stack(diagonal, 1)
            size = boxes[:, 2:] - boxes[:, :2]
            boxes = np.concatenate([boxes[:, :2] + size * 0.5, size], 1)
        else:  # ByteTrack: the filter's identity R times 0.1
            noise = np.broadcast_to(np.eye(4) * 0.1, (len(tracks), 4, 4))
        H = np.eye(4, 8)
        innovation = boxes[:, :, None] - H @ mean[:, :, None]
        PHT = cov @ H.T
        gain = PHT @ np.linalg.inv(H @ PHT + noise)
        mean = mean + (gain @ innovation)[:, :, 0]
        I_KH = np.eye(8) - gain @ H
        cov = I_KH @ cov @ I_KH.transpose(0, 2, 1) + gain @ noise @ gain.transpose(0, 2, 1)
        if self.botsort:
            np.maximum(mean[:, 2:4], MIN_SIZE, out=mean[:, 2:4])
        self.mean[tracks], self.cov[tracks] = mean, cov

    def _new_tracks(self, boxes: np.ndarray) -> None:
        """Append tracks started from `boxes` [K, 4] xyxy (the tracklets' __init__)."""
        boxes = boxes.astype(np.float64)
        count = len(boxes)
        mean, cov = np.zeros((count, 8)), np.zeros((count, 8, 8))
        if self.botsort:
            w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            mean[:, :4] = np.stack([boxes[:, 0] + w * 0.5, boxes[:, 1] + h * 0.5, w, h], 1)
            sp, sv = self.sigma_p, self.sigma_v
            position, velocity = [2 * sp * w, 2 * sp * h] * 2, [10 * sv * w, 10 * sv * h] * 2
            cov[:, np.arange(8), np.arange(8)] = np.stack(position + velocity, 1) ** 2
        else:
            mean[:, :4] = boxes
            cov[:] = np.eye(8)
        self.mean, self.cov = np.concatenate([self.mean, mean]), np.concatenate([self.cov, cov])
        self.ids = np.concatenate([self.ids, np.full(count, -1)])
        self.misses = np.concatenate([self.misses, np.zeros(count, np.int64)])
        self.hits = np.concatenate([self.hits, np.ones(count, np.int64)])
        self.miss_seconds = np.concatenate([self.miss_seconds, np.zeros(count)])

    # ---- one frame ----
    def _matched(self, tracks: np.ndarray, out: np.ndarray, detections: np.ndarray) -> None:
        """Counters of matched tracks (the tracklets' `update`), ids for those now confirmed, in order."""
        self.misses[tracks] = 0
        self.miss_seconds[tracks] = 0.0
        self.hits[tracks] += 1
        confirm = tracks[(self.hits[tracks] >= self.min_hits) & (self.ids[tracks] == -1)]
        self.ids[confirm] = self.next_id + np.arange(len(confirm))
        self.next_id += len(confirm)
        out[detections] = self.ids[tracks]

    def _associate(self, tracks, boxes_of_tracks, detections, boxes, scores, threshold, fuse: bool):
        """Match `tracks` (rows) to `detections` (cols): (matched tracks, matched detection positions)."""
        rows, cols, values = overlap_pairs(boxes_of_tracks[tracks], boxes[detections], self.buffer_ratio)
        if fuse:  # BoT-SORT's _fuse_score: the float32 IoU times the detection's score
            values = values.astype(np.float64) * scores[detections][cols]
        dtype = np.float64 if fuse else np.float32
        matched_rows, matched_cols = assign(rows, cols, values, len(tracks), len(detections), threshold, dtype)
        return matched_rows, matched_cols

    def update(self, boxes: np.ndarray, scores: np.ndarray, timestamp: float) -> np.ndarray:
        """Track one frame: boxes [N, 4] xyxy, scores [N], timestamp in seconds (increasing).
        Returns int [N]: each detection's 0-based track id, or -1 (unconfirmed, unmatched, dropped)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        if self.last_timestamp is None:  # BaseTracker._predict_timing's bootstrap: one nominal frame
            elapsed = 1.0 / self.frame_rate
        elif timestamp > self.last_timestamp:
            elapsed = timestamp - self.last_timestamp
        else:
            raise ValueError(f"timestamps must increase: {timestamp} after {self.last_timestamp}")
        self.last_timestamp = timestamp
        self.frame_id += 1
        out = np.full(len(scores), -1, np.int64)
        if len(self) == 0 and len(scores) == 0:
            return out
        self._predict(elapsed * self.frame_rate, elapsed)
        self._select(self.miss_seconds <= self.max_seconds)  # _prune_lost_tracks (timestamped budget)
        predicted = self.boxes()
        high = np.flatnonzero(scores >= self.high)
        if self.botsort:
            low = np.flatnonzero((scores > LOW_SCORE_FLOOR) & (scores < self.high))
        else:
            low = np.flatnonzero(scores < self.high)
        confirmed = (self.misses <= 1) & ((self.ids != -1) | (self.hits >= self.min_hits))
        if self.botsort:  # confirmed and lost tracks first, unconfirmed ones only in the third pass
            pool = np.concatenate([np.flatnonzero(confirmed), np.flatnonzero(self.misses > 1)])
            unconfirmed = np.flatnonzero(~confirmed & (self.misses <= 1))
        else:
            pool, unconfirmed = np.arange(len(self)), np.zeros(0, np.int64)
        corrections = []

        # 1: high-score detections with the pool (BoT-SORT: IoU weighted by score)
        rows, cols = self._associate(pool, predicted, high, boxes, scores, self.thresholds[0], fuse=self.botsort)
        self._matched(pool[rows], out, high[cols])
        corrections.append((pool[rows], high[cols]))
        rest = pool[_unmatched(rows, len(pool))]
        unmatched_high = _unmatched(cols, len(high))

        # 2: low-score detections with the pool's unmatched tracks (BoT-SORT: only those seen last frame)
        if self.botsort:
            rest = rest[self.misses[rest] == 1]
        rows, cols = self._associate(rest, predicted, low, boxes, scores, self.thresholds[1], fuse=False)
        self._matched(rest[rows], out, low[cols])
        corrections.append((rest[rows], low[cols]))

        # 3 (BoT-SORT): unconfirmed tracks with the high-score detections left; the rest are dropped
        drop = unconfirmed
        if len(unconfirmed) and len(unmatched_high):
            left = high[unmatched_high]
            rows, cols = self._associate(unconfirmed, predicted, left, boxes, scores, self.thresholds[2], fuse=True)
            self._matched(unconfirmed[rows], out, left[cols])
            corrections.append((unconfirmed[rows], left[cols]))
            drop = unconfirmed[_unmatched(rows, len(unconfirmed))]
            unmatched_high = unmatched_high[_unmatched(cols, len(left))]
        tracks = np.concatenate([c[0] for c in corrections])
        self._correct(tracks, boxes[np.concatenate([c[1] for c in corrections])], predicted[tracks])
        keep = np.ones(len(self), bool)
        keep[drop] = False
        self._select(keep)

        # new tracks from the high-score detections nobody took
        spawn = high[unmatched_high]
        spawn = spawn[scores[spawn] >= self.activation]
        first = len(self)
        self._new_tracks(boxes[spawn])
        if self.botsort and self.frame_id == 1 and self.instant_first:
            self.ids[first:] = self.next_id + np.arange(len(spawn))
            self.next_id += len(spawn)
            out[spawn] = self.ids[first:]

        # the lifecycle prune (get_alive_tracklets)
        mature = (self.ids != -1) | (self.hits >= self.min_hits)
        self._select((self.miss_seconds <= self.max_seconds) & (mature | (self.misses == 0)))
        return out


if __name__ == "__main__":
    for name, digest in source_digests().items():
        print(f'    "{name}": "{digest}",')
