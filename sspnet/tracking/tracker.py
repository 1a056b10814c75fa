"""Multi-object tracking of detections, frame by frame, with Roboflow's `trackers` package.

    tracker = FrameTracker(TrackerSettings(tracker="bytetrack", association="biou", cmc="sparseOptFlow"))
    ids = tracker.update(boxes_xyxy, scores, frame_index, image)   # int [N]: track id (from 1) or 0

The tracking algorithms (SORT, ByteTrack, OC-SORT, BoT-SORT, C-BIoU), their Kalman filters, the
buffered / distance IoU variants and the camera-motion estimate are the maintained implementations
of `trackers` (Apache-2.0); this module only wires them to sspnet's detections and frame clock.
ByteTrack and BoT-SORT with IoU / buffered IoU run in their array form (array_tracker.py: the
library's update on arrays of all tracks, the same ids, checked against the library in the tests).

Tiny people: a 4 px person that moves 3 px between frames no longer overlaps its last box, so plain
IoU association loses it until the Kalman filter has learned its speed. Two remedies are offered:
`association="biou"` expands both boxes by `buffer_ratio` of their size before the IoU (C-BIoU's
buffered IoU; the `cbiou` tracker cascades two buffers), and "diou" / "giou" keep a signal for boxes
that do not overlap (centre distance over the enclosing box). Which works best on sspnet's synthetic
sequences is measured by benchmarks/bench_tracking.py (docs/tracking.md).

Camera motion: a drone that pans or turns moves every person in the image at once. With `cmc` set,
the global affine motion between consecutive frames is estimated on a frame downscaled by
`cmc_downscale` (trackers.utils.cmc: sparse optical flow, ORB, SIFT or ECC) and applied to every
track's Kalman state before association. It is applied here, outside the tracker, so that every
Kalman tracker gets it (the library wires it into BoT-SORT only) and so that a benchmark can reuse
one estimate per frame for all trackers (`update(..., motion=H)`).

Time: each update carries the frame's time (index / fps), so a frame dropped by a live source or
skipped by --vid-stride makes the Kalman filter predict across the gap instead of one step, and
`lost_track_buffer` frames (at the source's frame rate) is how long a lost track waits.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from sspnet.errors import MissingDependencyError, UsageError

TRACKERS = ("sort", "bytetrack", "ocsort", "botsort", "cbiou")
ASSOCIATIONS = ("iou", "biou", "diou", "giou")
CMC_METHODS = ("none", "sparseOptFlow", "orb", "sift", "ecc")
# `trackers` depends on opencv-python, which would shadow the OpenCV sspnet uses (headless, or the
# JetPack build with GStreamer): it is installed without its dependencies (docs/tracking.md).
INSTALL_HINT = (
    'pip install "sspnet[track]" && pip install --no-deps "trackers>=2.6.1,<3" '
    "(--no-deps keeps a second OpenCV out; docs/tracking.md)"
)


def import_trackers():
    """The `trackers` package, or MissingDependencyError with the install command."""
    try:
        import trackers
    except ImportError as error:
        raise MissingDependencyError(
            f"tracking needs the 'trackers' package ({error}); install it with: {INSTALL_HINT}"
        ) from None
    return trackers


@dataclass
class TrackerSettings:
    """One tracker configuration (defaults: docs/tracking.md, chosen on the synthetic sequences).

    high_threshold: detections at or above it start tracks and take part in the first association;
    the rest (down to the detector's --conf) can only continue a track (ByteTrack's second pass).
    min_hits: updates before a track gets an id (shorter-lived tracks are never reported).
    lost_track_buffer: frames (at `fps`) a lost track is kept to be picked up again.
    """

    tracker: str = "botsort"
    association: str = "biou"
    buffer_ratio: float = 0.5  # biou: box margin as a share of its size
    cmc: str = "sparseOptFlow"
    cmc_downscale: int = 4
    high_threshold: float = 0.5
    min_hits: int = 2
    lost_track_buffer: int = 30
    fps: float = 30.0

    def check(self) -> TrackerSettings:
        """UsageError naming the option for a setting the tracker cannot take; returns self."""
        if self.tracker not in TRACKERS:
            raise UsageError(
                "unknown tracker", field="--tracker", expected=f"one of {', '.join(TRACKERS)}", got=self.tracker
            )
        if self.association not in ASSOCIATIONS:
            raise UsageError(
                "unknown association",
                field="--association",
                expected=f"one of {', '.join(ASSOCIATIONS)}",
                got=self.association,
            )
        if self.cmc not in CMC_METHODS:
            raise UsageError(
                "unknown camera-motion method", field="--cmc", expected=f"one of {', '.join(CMC_METHODS)}", got=self.cmc
            )
        if self.tracker == "ocsort" and self.cmc != "none":
            raise UsageError(
                "OC-SORT keeps raw past observations that camera-motion compensation cannot warp",
                field="--cmc",
                expected="none with --tracker ocsort",
                got=self.cmc,
            )
        if self.tracker == "cbiou" and self.association != "biou":
            raise UsageError(
                "the cbiou tracker always cascades two buffered IoUs",
                field="--association",
                expected="biou with --tracker cbiou",
                got=self.association,
            )
        checks = (
            ("--buffer-ratio", self.buffer_ratio, 0.0, 5.0),
            ("--track-high", self.high_threshold, 0.0, 1.0),
            ("--min-hits", self.min_hits, 1, 1000),
            ("--lost-buffer", self.lost_track_buffer, 0, 100_000),
            ("--cmc-downscale", self.cmc_downscale, 1, 64),
        )
        for flag, value, low, high in checks:
            if not (low <= value <= high):  # also refuses nan
                raise UsageError("value out of range", field=flag, expected=f"{low}..{high}", got=value)
        if not (self.fps > 0 and np.isfinite(self.fps)):
            raise UsageError("bad frame rate", field="fps", expected="a positive number", got=self.fps)
        return self

    def label(self) -> str:
        cmc = "" if self.cmc == "none" else f"+cmc({self.cmc}/{self.cmc_downscale})"
        association = (
            "cbiou"
            if self.tracker == "cbiou"
            else (f"biou{self.buffer_ratio:g}" if self.association == "biou" else self.association)
        )
        return f"{self.tracker}/{association}{cmc}"

    def as_dict(self) -> dict:
        return asdict(self)


def _iou_metric(trackers, settings: TrackerSettings):
    if settings.association == "biou":
        return trackers.BIoU(buffer_ratio=settings.buffer_ratio)
    return {"iou": trackers.IoU, "diou": trackers.DIoU, "giou": trackers.GIoU}[settings.association]()


def build_tracker(settings: TrackerSettings):
    """The `trackers` tracker object for `settings` (checked)."""
    settings.check()
    trackers = import_trackers()
    common = {
        "lost_track_buffer": settings.lost_track_buffer,
        "frame_rate": settings.fps,
        "minimum_consecutive_frames": settings.min_hits,
    }
    high = settings.high_threshold
    if settings.tracker == "sort":
        return trackers.SORTTracker(track_activation_threshold=high, iou=_iou_metric(trackers, settings), **common)
    if settings.tracker == "bytetrack":
        return trackers.ByteTrackTracker(
            track_activation_threshold=high, high_conf_det_threshold=high, iou=_iou_metric(trackers, settings), **common
        )
    if settings.tracker == "ocsort":
        return trackers.OCSORTTracker(high_conf_det_threshold=high, iou=_iou_metric(trackers, settings), **common)
    if settings.tracker == "botsort":
        return trackers.BoTSORTTracker(
            track_activation_threshold=high,
            high_conf_det_threshold=high,
            enable_cmc=False,
            iou=_iou_metric(trackers, settings),
            **common,
        )
    return trackers.CBIoUTracker(
        track_activation_threshold=high,
        high_conf_det_threshold=high,
        buffer_ratio_first=settings.buffer_ratio / 2,
        buffer_ratio_second=settings.buffer_ratio,
        **common,
    )


class MotionEstimator:
    """Frame-to-frame camera motion (2x3 affine, previous -> current frame pixels), from trackers' CMC."""

    def __init__(self, method: str = "sparseOptFlow", downscale: int = 4):
        trackers = import_trackers()
        self.cmc = trackers.CMC(trackers.CMCConfig(method=method, downscale=downscale))

    def estimate(self, image: np.ndarray, boxes_xyxy: np.ndarray | None = None) -> np.ndarray:
        """`image`: BGR uint8 frame; `boxes_xyxy`: detections masked out of the feature search (ORB, SIFT)."""
        return self.cmc.estimate(image, boxes_xyxy if boxes_xyxy is not None and len(boxes_xyxy) else None)

    def reset(self) -> None:
        self.cmc.reset()


class FrameTracker:
    """Feeds one source's detections to a tracker in frame order; see the module docstring."""

    def __init__(self, settings: TrackerSettings, array_form: bool = True):
        """array_form: run ByteTrack and BoT-SORT with IoU / buffered IoU association on arrays of all
        tracks (sspnet/tracking/array_tracker.py: the library's steps, the same tracks, a fraction of
        the time with hundreds of people); False, or any other tracker, runs the library's own."""
        self.settings = settings.check()
        self.tracker = build_tracker(settings)
        self.array = None
        if array_form:
            from sspnet.tracking import array_tracker

            try:
                self.array = array_tracker.ArrayTracker(self.tracker)
            except array_tracker.NoArrayForm:
                pass  # SORT, OC-SORT, C-BIoU, DIoU / GIoU association: the library's own tracker
            except RuntimeError as changed:
                # Another trackers release: its own tracker gives the same tracks, only slower.
                warnings.warn(f"{changed}; using the library's own tracker", stacklevel=2)
        self.motion = MotionEstimator(settings.cmc, settings.cmc_downscale) if settings.cmc != "none" else None
        self._last_index: int | None = None

    def update(
        self,
        boxes_xyxy: np.ndarray,
        scores: np.ndarray,
        frame_index: int,
        image: np.ndarray | None = None,
        motion: np.ndarray | None = None,
    ) -> np.ndarray:
        """Track one frame's detections. Returns int [N]: each detection's track id (from 1), or 0 for a
        detection that is not part of a confirmed track (yet).

        frame_index: the source frame number (a time axis; gaps are allowed). image: the BGR frame,
        for camera-motion compensation (ignored when cmc is "none"). motion: a precomputed 2x3
        previous -> current affine, used instead of estimating one from `image`."""
        boxes_xyxy = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        if self._last_index is not None and frame_index <= self._last_index:
            raise ValueError(f"frames must come in order: frame {frame_index} after {self._last_index}")
        self._last_index = frame_index
        if self.settings.cmc != "none" and motion is None and image is not None:
            motion = self.motion.estimate(image, boxes_xyxy[scores >= self.settings.high_threshold])
        motion = None if self.settings.cmc == "none" or motion is None else np.asarray(motion, np.float64)
        timestamp = frame_index / self.settings.fps
        if self.array is not None:
            self.array.apply_motion(motion)
            tracker_ids = self.array.update(boxes_xyxy, scores, timestamp)
        else:
            tracker_ids = self._library_update(boxes_xyxy, scores, timestamp, motion)
        return np.where(tracker_ids >= 0, tracker_ids + 1, 0)  # MOT ids count from 1

    def _library_update(self, boxes_xyxy, scores, timestamp: float, motion) -> np.ndarray:
        """The library tracker's update; int [N]: each detection's 0-based track id or -1."""
        import supervision as sv

        trackers = import_trackers()
        if motion is not None:
            trackers.CMC.apply_batch(motion, self.tracker.tracks)
        detections = sv.Detections(
            xyxy=boxes_xyxy,
            confidence=scores,
            class_id=np.zeros(len(scores), int),
            data={"index": np.arange(len(scores))},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. "frame is unused" from trackers without CMC
            result = self.tracker.update(detections, timestamp=timestamp)
        tracker_ids = np.full(len(scores), -1, np.int64)
        if len(result):
            tracker_ids[result.data["index"]] = result.tracker_id
        return tracker_ids


__all__ = [
    "TrackerSettings",
    "FrameTracker",
    "MotionEstimator",
    "build_tracker",
    "import_trackers",
    "TRACKERS",
    "ASSOCIATIONS",
    "CMC_METHODS",
    "INSTALL_HINT",
]
