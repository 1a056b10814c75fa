"""Tracking inside `predict`'s loop: the frame hook that `sspnet track` installs.

    hook = TrackingHook(TrackerSettings(), fps=source.fps)
    summary = predict(detector, source, PredictOptions(out="runs/track", frame_hook=hook))

For every processed frame (in order, on predict's writer thread) the detections go through a
FrameTracker; each detection row gets "track_id" (an int from 1, or null while the detection is
not part of a confirmed track) before predict writes detections.jsonl, and the annotated frame
shows the tracked boxes in one colour per id with the id and a short trail of recent centres.

Outputs in the run folder, beside predict's:
    tracks.txt          MOTChallenge rows frame,id,x,y,w,h,score,-1,-1,-1 (frames from 1 = the
                        source frame number, so skipped or dropped frames leave gaps), confirmed
                        tracks only. Streamed to a temporary file and renamed into place at the end
                        (sspnet.io.atomic): a crash leaves no partial tracks.txt; the ids are in
                        detections.jsonl, flushed per frame.
    track_summary.json  the tracker settings and the counts printed in the summary table.
"""

from __future__ import annotations

import contextlib
from collections import deque
from pathlib import Path

import numpy as np

from sspnet.inference.draw import draw_tracks
from sspnet.io.atomic import atomic_output, atomic_write_json
from sspnet.tracking.mot import format_track_row
from sspnet.tracking.tracker import FrameTracker, TrackerSettings

TRACKS_NAME = "tracks.txt"
SUMMARY_NAME = "track_summary.json"
TRAIL_FRAMES = 20  # centres kept per track for the drawn trail


class TrackingHook:
    """predict's frame hook (see sspnet.inference.predict) that tracks, draws and writes tracks.txt."""

    def __init__(self, settings: TrackerSettings, show_labels: bool = True):
        self.settings = settings.check()
        self.tracker = FrameTracker(settings)
        self.show_labels = show_labels
        self.tracks_path: Path | None = None
        self.summary_path: Path | None = None
        self._stack = contextlib.ExitStack()
        self._file = None
        self._trails: dict[int, deque] = {}
        self._last_seen: dict[int, int] = {}  # id -> last frame index it was reported
        self._first_seen: dict[int, int] = {}
        self._length: dict[int, int] = {}  # id -> frames it was reported in
        self._drawn_ids = np.zeros(0, np.int64)
        self._drawn_boxes = np.zeros((0, 4))
        self.lost_frames = 0  # source frames with no image (unreadable, link gaps)
        self.last_index = -1

    # ---- predict's hook interface -----------------------------------------------------------------
    def plan(self, guard, folder) -> None:
        if folder is None:
            return
        self.tracks_path = guard.check_file(Path(folder) / TRACKS_NAME, "text")
        self.summary_path = guard.check_file(Path(folder) / SUMMARY_NAME, "json")

    def on_gap(self, frame) -> None:
        if frame.link is None or frame.link == "back":
            self.lost_frames += frame.lost

    def on_frame(self, frame, found, rows: list[dict]) -> list[dict]:
        boxes = np.array([row["bbox"] for row in rows], np.float64).reshape(-1, 4)
        scores = np.array([row["score"] for row in rows], np.float64)
        xyxy = np.c_[boxes[:, :2], boxes[:, :2] + boxes[:, 2:]]
        ids = self.tracker.update(xyxy, scores, frame.index, frame.image)
        for row, track_id in zip(rows, ids):
            row["track_id"] = int(track_id) if track_id > 0 else None
        tracked = ids > 0
        self._record(frame.index, ids[tracked], boxes[tracked], scores[tracked])
        self._drawn_ids, self._drawn_boxes = ids, xyxy
        self.last_index = frame.index
        return rows

    def draw(self, image: np.ndarray, frame) -> np.ndarray:
        trails = {
            track_id: list(points)
            for track_id, points in self._trails.items()
            if self._last_seen[track_id] == frame.index
        }
        return draw_tracks(image, self._drawn_boxes, self._drawn_ids, trails, show_labels=self.show_labels)

    def finish(self, summary) -> None:
        self._stack.close()  # renames the streamed tracks.txt into place
        counts = self.counts()
        summary.extra_rows += [
            ("tracker", self.settings.label()),
            ("tracks started", str(counts["tracks_started"])),
            ("tracks ended before the last frame", str(counts["tracks_ended"])),
            ("mean track length (frames)", f"{counts['mean_track_length']:.1f}"),
            ("frames lost (unreadable / link gaps)", str(self.lost_frames)),
        ]
        if self.tracks_path is not None:
            if self._file is None:  # no frame processed or nothing tracked: an empty tracks.txt
                with atomic_output(self.tracks_path) as temporary:
                    temporary.write_text("")
            summary.outputs["tracks (MOTChallenge)"] = self.tracks_path
            counts.update(frames=summary.frames, dropped_frames=summary.dropped, settings=self.settings.as_dict())
            summary.outputs["track summary"] = atomic_write_json(self.summary_path, counts)

    # ---- bookkeeping ------------------------------------------------------------------------------
    def _record(self, index: int, ids: np.ndarray, boxes_xywh: np.ndarray, scores: np.ndarray) -> None:
        for track_id, box in zip(ids.tolist(), boxes_xywh):
            self._first_seen.setdefault(track_id, index)
            self._last_seen[track_id] = index
            self._length[track_id] = self._length.get(track_id, 0) + 1
            self._trails.setdefault(track_id, deque(maxlen=TRAIL_FRAMES)).append(
                (box[0] + box[2] / 2, box[1] + box[3] / 2)
            )
        for track_id in [t for t, last in self._last_seen.items() if index - last > TRAIL_FRAMES and t in self._trails]:
            del self._trails[track_id]  # bounded memory on long runs: no trail for long-gone tracks
        if self.tracks_path is None or not len(ids):
            return
        if self._file is None:
            temporary = self._stack.enter_context(atomic_output(self.tracks_path))
            self._file = self._stack.enter_context(open(temporary, "w", encoding="utf-8"))
        self._file.write(
            "".join(
                format_track_row(index + 1, track_id, box, score) + "\n"
                for track_id, box, score in zip(ids.tolist(), boxes_xywh, scores)
            )
        )

    def counts(self) -> dict:
        lengths = list(self._length.values())
        ended = sum(1 for last in self._last_seen.values() if last < self.last_index)
        return {
            "tracks_started": len(self._length),
            "tracks_ended": ended,
            "tracks_active_at_end": len(self._length) - ended,
            "mean_track_length": float(np.mean(lengths)) if lengths else 0.0,
            "frames_lost": self.lost_frames,
        }


__all__ = ["TrackingHook", "TRACKS_NAME", "SUMMARY_NAME"]
