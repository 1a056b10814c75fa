"""Frames of any size in, detections in frame pixels out, on any Backend.

    backend = load_backend("sspnet_640x512.onnx")
    detector = Detector(backend)                 # tiles frames into 640x512 pieces, 30 px overlap
    found = detector.detect(frame_hwc_uint8)     # Detections(boxes [D, 4], scores [D], labels [D])
    detector.timings                             # {"preprocess_ms": ..., "inference_ms": ..., ...}

fit="tile" (default) follows the architecture's data flow: a frame of the export size goes straight
through; a larger one (e.g. 3840x2160) is cut into tiles of the export size (runtime.tiling),
all tiles run as one batch, and the per-tile detections are shifted to frame pixels and merged
across tiles with class-aware NMS; a smaller frame is zero-padded. fit="letterbox" / "stretch"
instead resize the whole frame to the export size (faster, but tiny objects shrink further).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .backend import Backend
from .preprocess import FrameMapping, check_frame, letterbox, stretch, to_rgb
from .tiling import cut_tiles, merge_tile_detections, tile_grid

FITS = ("tile", "letterbox", "stretch")
DEFAULT_TILE_OVERLAP = 30  # px; TinyPerson's 640x512 pieces overlap by 30 px (spec 7.5)


@dataclass
class Detections:
    """Detections in one frame, in frame pixels, sorted by decreasing score.

    boxes float32 [D, 4] x1, y1, x2, y2; scores float32 [D]; labels int64 [D] (indices into
    the model's metadata.classes).
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class _FramePlan:
    """How one frame became model inputs: `inputs` rows from a tile grid or one resize mapping."""

    frame_size: tuple[int, int]  # (H, W)
    inputs: int
    grid: np.ndarray | None = None  # [T, 4] tiles, fit="tile"
    mapping: FrameMapping | None = None  # fit="letterbox" / "stretch"


class Detector:
    """Runs a backend on whole frames (HWC uint8, RGB or BGR).

    Args:
        backend: a loaded Backend (see runtime.backend.load_backend).
        fit: "tile", "letterbox" or "stretch" (see the module docstring).
        tile_overlap: overlap between neighbouring tiles in pixels.
        merge_iou: IoU threshold of the cross-tile NMS.
        merge_plus_one: TinyBenchmark's legacy "+1 pixel" IoU in the cross-tile NMS.
        score_threshold: drop detections below this score (on top of the model's own threshold).
        max_detections: keep at most this many per frame (None keeps all merged detections).
        color_order: "rgb" or "bgr" (OpenCV frames).
    """

    def __init__(
        self,
        backend: Backend,
        fit: str = "tile",
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        merge_iou: float = 0.5,
        merge_plus_one: bool = False,
        score_threshold: float | None = None,
        max_detections: int | None = None,
        color_order: str = "rgb",
    ):
        if fit not in FITS:
            raise ValueError(f"fit must be one of {list(FITS)}, got {fit!r}")
        tile_h, tile_w = backend.input_size
        if not isinstance(tile_overlap, int) or not 0 <= tile_overlap < min(tile_h, tile_w):
            raise ValueError(
                f"tile_overlap must be an int in [0, {min(tile_h, tile_w)}) for tiles of "
                f"{tile_h}x{tile_w} (HxW), got {tile_overlap!r}"
            )
        if not 0.0 <= merge_iou <= 1.0:
            raise ValueError(f"merge_iou must be in [0, 1], got {merge_iou}")
        if max_detections is not None and max_detections <= 0:
            raise ValueError(f"max_detections must be positive or None, got {max_detections}")
        to_rgb(np.zeros((1, 1, 3), np.uint8), color_order)  # validates color_order
        self.backend = backend
        self.fit = fit
        self.tile_overlap = tile_overlap
        self.merge_iou = merge_iou
        self.merge_plus_one = merge_plus_one
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        self.color_order = color_order
        self.timings: dict[str, float] = {}

    def detect(self, frame: np.ndarray) -> Detections:
        """One HWC uint8 frame -> its Detections."""
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Frames (each any size) -> one Detections per frame. All their inputs run as one batch
        (chunked by the backend when the model has a fixed batch).

        Records self.timings: preprocess_ms, inference_ms, postprocess_ms (shift + merge),
        frames, inputs (tiles or resized frames sent to the model).
        """
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            raise TypeError("detect_batch takes a list of frames; use detect() for a single frame")
        if len(frames) == 0:
            raise ValueError("detect_batch: got no frames")

        start = time.perf_counter()
        inputs, plans = [], []
        for index, frame in enumerate(frames):
            frame_inputs, plan = self._prepare(check_frame(frame, f"frames[{index}]"))
            inputs.append(frame_inputs)
            plans.append(plan)
        stacked = inputs[0] if len(inputs) == 1 else np.concatenate(inputs)
        batch = np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))  # NHWC -> NCHW
        prepared = time.perf_counter()

        outputs = self.backend.infer(batch)
        inferred = time.perf_counter()

        results, row = [], 0
        for plan in plans:
            rows = slice(row, row + plan.inputs)
            results.append(self._postprocess({k: v[rows] for k, v in outputs.items()}, plan))
            row += plan.inputs
        done = time.perf_counter()

        self.timings = {
            "preprocess_ms": 1e3 * (prepared - start),
            "inference_ms": 1e3 * (inferred - prepared),
            "postprocess_ms": 1e3 * (done - inferred),
            "frames": len(frames),
            "inputs": len(batch),
        }
        return results

    def _prepare(self, frame: np.ndarray) -> tuple[np.ndarray, _FramePlan]:
        """Frame -> model inputs as RGB NHWC uint8 [n, H, W, 3] and the plan to map results back."""
        rgb = to_rgb(frame, self.color_order)
        frame_size = frame.shape[:2]
        tile_h, tile_w = self.backend.input_size
        if self.fit == "tile":
            grid = tile_grid(frame_size[0], frame_size[1], tile_h, tile_w, self.tile_overlap)
            return cut_tiles(rgb, grid, tile_h, tile_w), _FramePlan(
                frame_size, len(grid), grid=grid
            )
        resize = letterbox if self.fit == "letterbox" else stretch
        image, mapping = resize(rgb, (tile_h, tile_w))
        return image[None], _FramePlan(frame_size, 1, mapping=mapping)

    def _postprocess(self, outputs: dict[str, np.ndarray], plan: _FramePlan) -> Detections:
        """One frame's rows of the contract outputs -> Detections in frame pixels."""
        counts = outputs["num_dets"][:, 0]
        boxes = [outputs["boxes"][i, :n] for i, n in enumerate(counts)]
        scores = [outputs["scores"][i, :n] for i, n in enumerate(counts)]
        labels = [outputs["labels"][i, :n] for i, n in enumerate(counts)]

        if plan.grid is not None and len(plan.grid) > 1:
            boxes, scores, labels = merge_tile_detections(
                boxes, scores, labels, plan.grid, self.merge_iou, plus_one=self.merge_plus_one
            )
        elif plan.grid is not None:  # one tile at the frame's origin (export size or padded)
            boxes, scores, labels = boxes[0], scores[0], labels[0]
        else:
            boxes, scores, labels = plan.mapping.boxes_to_frame(boxes[0]), scores[0], labels[0]

        boxes, scores, labels = _clip_to_frame(boxes, scores, labels, plan.frame_size)
        keep = np.argsort(-scores, kind="stable")
        if self.score_threshold is not None:
            keep = keep[scores[keep] >= self.score_threshold]
        if self.max_detections is not None:
            keep = keep[: self.max_detections]
        return Detections(
            boxes=boxes[keep].astype(np.float32),
            scores=scores[keep].astype(np.float32),
            labels=labels[keep].astype(np.int64),
        )


def _clip_to_frame(boxes, scores, labels, frame_size):
    """Clip boxes to the frame; drop boxes left with no area (they lay in the zero padding)."""
    height, width = frame_size
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep], np.asarray(scores)[keep], np.asarray(labels)[keep]
