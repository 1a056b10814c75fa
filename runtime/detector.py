"""Frames of any size in, detections in frame pixels out, on any Backend.

    backend = load_backend("sspnet_640x512.onnx")
    detector = Detector(backend)                 # tiles frames into 640x512 pieces, 30 px overlap
    detector = Detector("sspnet_640x512.onnx")   # the same: a model path is opened with load_backend
    detector = Detector("runs/a/best.safetensors")  # a checkpoint too (the torch backend; needs torch)
    found = detector.detect(frame_hwc_uint8)     # Detections(boxes [D, 4], scores [D], labels [D])
    detector.timings                             # {"preprocess_ms": ..., "inference_ms": ..., ...}

    # the same in three steps, for a pipeline that runs them on different threads:
    prepared = detector.prepare(frame)           # tiles cut into model batches (decoder thread)
    outputs = detector.infer(prepared)           # the model (inference thread)
    found = detector.finish(prepared, outputs)   # shift + cross-tile merge (writer thread)

fit="tile" (default) follows the architecture's data flow: a frame of the export size goes straight
through; a larger one (e.g. 3840x2160) is cut into tiles of the export size (runtime.tiling), the
tiles run through the model, and the per-tile detections are shifted to frame pixels and merged
across tiles with class-aware NMS; a smaller frame is zero-padded. fit="letterbox" / "stretch"
instead resize the whole frame to the export size (faster, but tiny objects shrink further).

Bounded memory: tiles reach the model in batches of at most `max_tiles_per_batch` inputs, each
batch cut from the frame only when the model asks for it, so memory does not grow with the frame
size beyond the frame itself (a 10000x10000 frame has 357 tiles of 640x512; what one batch of them
costs against batches of 4: benchmarks/results/tile_memory.json). Results do not depend on the batch
size: every tile is inferred on its own and the merge sees all tiles of the frame.

The default, DEFAULT_MAX_TILES_PER_BATCH = 4, is sized for an 8 GB Jetson (CPU and GPU share
those 8 GB), from measurements (benchmarks/bench_tile_memory.py, results in benchmarks/results/):
    - per tile in flight: an exported faster_rcnn_r50_sspnet (fp32, ONNX Runtime) needs ~0.63 GB
      per 640x512 tile (benchmarks/results/tile_memory_r50_random_4k.json); a TensorRT fp16
      engine should need less (half-size activations; not measured here);
    - the rest of the device: OS and desktop ~1.5 GB, CUDA / cuDNN / TensorRT context ~1 GB,
      weights and engine ~0.4 GB, decoded frames (4 x 25 MB for 4K) ~0.1 GB, and headroom for
      the caller's own application: that leaves ~2.5 GB for the tile batch, i.e. 4 tiles;
    - speed: a 4K frame (35 tiles) runs as 9 calls; on a Jetson's GPU a batch of 4 tiles of
      640x512 already keeps it busy, so larger batches gain little there.
Boards with 16 GB or more (Orin NX 16 GB, AGX Orin) can take 8-16: `--max-tiles-per-batch N`.
A model exported with a fixed batch B runs batches of a multiple of B (at least B), so no batch is
padded needlessly.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from sspnet.errors import UsageError

from .backend import Backend, load_backend
from .preprocess import FrameMapping, check_frame, letterbox, stretch, to_rgb
from .tiling import cut_tiles, merge_tile_detections, tile_grid

FITS = ("tile", "letterbox", "stretch")
DEFAULT_TILE_OVERLAP = 30  # px; TinyPerson's 640x512 pieces overlap by 30 px (TinyBenchmark's cutting)
DEFAULT_MAX_TILES_PER_BATCH = 4  # inputs per model call; sized for an 8 GB Jetson (module docstring)


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
    """How one frame becomes model inputs: `inputs` rows from a tile grid or one resize mapping.
    `rgb` is the frame in RGB order (a view of the caller's frame); inputs are cut from it lazily."""

    rgb: np.ndarray
    frame_size: tuple[int, int]  # (H, W)
    inputs: int
    grid: np.ndarray | None = None  # [T, 4] tiles, fit="tile"
    mapping: FrameMapping | None = None  # fit="letterbox" / "stretch", set when the input is made


@dataclass
class PreparedFrame:
    """One frame cut into its model batches (Detector.prepare), with the time each step took (ms)."""

    plan: _FramePlan
    batches: list[np.ndarray]
    timings: dict


@dataclass
class _CallStats:
    """Time spent cutting inputs and model calls made, for one detect call."""

    preprocess_s: float = 0.0
    batches: int = 0


def _check_unit_interval(name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UsageError(f"{name} must be a number in [0, 1]", got=repr(value))
    if math.isnan(value) or not 0.0 <= float(value) <= 1.0:
        raise UsageError(f"{name} must be in [0, 1]", got=value)
    return float(value)


class Detector:
    """Runs a backend on whole frames (HWC uint8, RGB or BGR).

    Args:
        backend: a loaded Backend, or the path of any model file `sspnet predict --model` takes
            (.onnx, .engine / .plan, or a .safetensors / .pth checkpoint, which needs torch), opened
            with sspnet.runtime.load_backend(path).
        fit: "tile", "letterbox" or "stretch" (see the module docstring).
        tile_overlap: overlap between neighbouring tiles in pixels.
        merge_iou: IoU threshold of the cross-tile NMS.
        merge_plus_one: TinyBenchmark's legacy "+1 pixel" IoU in the cross-tile NMS.
        score_threshold: drop detections below this score, in [0, 1] (on top of the model's own
            threshold); None keeps all.
        max_detections: keep at most this many per frame (None keeps all merged detections).
        color_order: "rgb" or "bgr" (OpenCV frames).
        max_tiles_per_batch: model inputs (tiles, or resized frames) per model call; bounds the
            memory a frame of any size needs (see the module docstring). None sends all inputs of a
            detect call as one batch (unbounded memory; for comparisons only).

    Wrong option values, frames and model files raise sspnet.errors.UsageError (or the error types of
    sspnet.errors), as `sspnet predict` reports them.

    Threads: a Detector keeps no per-call state, so several threads may call one instance; `timings`
    then holds the last finished call's. The backend runs one call at a time (Backend.infer_chunks
    holds its lock), so threads sharing a Detector overlap only their tiling and merging: for parallel
    inference give each thread its own backend.
    """

    def __init__(
        self,
        backend: Backend | str | os.PathLike,
        fit: str = "tile",
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        merge_iou: float = 0.5,
        merge_plus_one: bool = False,
        score_threshold: float | None = None,
        max_detections: int | None = None,
        color_order: str = "rgb",
        max_tiles_per_batch: int | None = DEFAULT_MAX_TILES_PER_BATCH,
    ):
        if isinstance(backend, (str, os.PathLike)):
            backend = load_backend(backend)
        if not isinstance(backend, Backend):
            raise UsageError(
                "Detector needs a Backend (sspnet.runtime.load_backend(path)) or a model file path",
                got=type(backend).__name__,
            )
        if fit not in FITS:
            raise UsageError(f"fit must be one of {list(FITS)}, got {fit!r}")
        tile_h, tile_w = backend.input_size
        if (
            isinstance(tile_overlap, bool)
            or not isinstance(tile_overlap, int)
            or not 0 <= tile_overlap < min(tile_h, tile_w)
        ):
            raise UsageError(
                f"tile_overlap must be an int in [0, {min(tile_h, tile_w)}) for tiles of "
                f"{tile_h}x{tile_w} (HxW), got {tile_overlap!r}"
            )
        merge_iou = _check_unit_interval("merge_iou", merge_iou)
        score_threshold = _check_unit_interval("score_threshold", score_threshold, allow_none=True)
        if max_detections is not None and (
            isinstance(max_detections, bool) or not isinstance(max_detections, int) or max_detections <= 0
        ):
            raise UsageError(f"max_detections must be a positive int or None, got {max_detections!r}")
        if max_tiles_per_batch is not None and (
            isinstance(max_tiles_per_batch, bool)
            or not isinstance(max_tiles_per_batch, int)
            or max_tiles_per_batch <= 0
        ):
            raise UsageError(f"max_tiles_per_batch must be a positive int or None, got {max_tiles_per_batch!r}")
        to_rgb(np.zeros((1, 1, 3), np.uint8), color_order)  # UsageError for an unknown color order
        self.backend = backend
        self.fit = fit
        self.tile_overlap = tile_overlap
        self.merge_iou = merge_iou
        self.merge_plus_one = merge_plus_one
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        self.color_order = color_order
        self.max_tiles_per_batch = max_tiles_per_batch
        self.timings: dict[str, float] = {}  # the last finished call's (see detect_batch)

    @property
    def batch_limit(self) -> int | None:
        """Inputs per model call: max_tiles_per_batch, rounded down to a multiple of a fixed-batch
        model's batch (at least one such batch); None when unbounded."""
        fixed = self.backend.fixed_batch
        if self.max_tiles_per_batch is None:
            return None
        if fixed:
            return max(fixed, self.max_tiles_per_batch // fixed * fixed)
        return self.max_tiles_per_batch

    def detect(self, frame: np.ndarray) -> Detections:
        """One HWC uint8 frame -> its Detections."""
        return self._detect([frame], ["frame"])[0]

    def prepare(self, frame: np.ndarray) -> PreparedFrame:
        """Step 1 of 3: check one HWC uint8 frame and cut it into its model batches (all at once:
        memory is the frame's tiles, about the frame's size; the batches stay within batch_limit)."""
        start = time.perf_counter()
        plan = self._plan(check_frame(frame, "frame"))
        batches = list(self._batches_of([plan], self.batch_limit or plan.inputs, _CallStats()))
        return PreparedFrame(
            plan,
            batches,
            {"preprocess_ms": 1e3 * (time.perf_counter() - start), "inputs": plan.inputs, "batches": len(batches)},
        )

    def infer(self, prepared: PreparedFrame) -> dict[str, np.ndarray]:
        """Step 2 of 3: the model on a prepared frame's batches -> the contract outputs of its inputs."""
        start = time.perf_counter()
        outputs = self.backend.infer_chunks(iter(prepared.batches))
        prepared.timings["inference_ms"] = 1e3 * (time.perf_counter() - start)
        prepared.batches = []  # the tiles are no longer needed
        return outputs

    def finish(self, prepared: PreparedFrame, outputs: dict[str, np.ndarray]) -> Detections:
        """Step 3 of 3: outputs -> Detections in frame pixels (shift + cross-tile merge)."""
        start = time.perf_counter()
        found = self._postprocess(outputs, prepared.plan)
        prepared.timings["postprocess_ms"] = 1e3 * (time.perf_counter() - start)
        return found

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Frames (each any size) -> one Detections per frame. Their inputs reach the model in
        batches of at most `batch_limit` (a batch may hold the inputs of several small frames).

        Records self.timings: preprocess_ms (tiling / resizing), inference_ms, postprocess_ms
        (shift + merge), frames, inputs (tiles or resized frames sent to the model), batches.
        """
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            raise UsageError("detect_batch takes a list of frames; use detect() for a single frame")
        if len(frames) == 0:
            raise UsageError("detect_batch: got no frames")
        return self._detect(frames, [f"frames[{index}]" for index in range(len(frames))])

    def _detect(self, frames: Sequence[np.ndarray], names: list[str]) -> list[Detections]:
        start = time.perf_counter()
        plans = [self._plan(check_frame(frame, name)) for frame, name in zip(frames, names)]
        total = sum(plan.inputs for plan in plans)
        stats = _CallStats(preprocess_s=time.perf_counter() - start)  # this call's own: threads may share self

        outputs = self.backend.infer_chunks(self._batches_of(plans, self.batch_limit or total, stats))
        inferred = time.perf_counter()

        results, row = [], 0
        for plan in plans:
            rows = slice(row, row + plan.inputs)
            results.append(self._postprocess({k: v[rows] for k, v in outputs.items()}, plan))
            row += plan.inputs
        done = time.perf_counter()

        self.timings = {  # one assignment: a reader sees one whole call's timings
            "preprocess_ms": 1e3 * stats.preprocess_s,
            "inference_ms": 1e3 * (inferred - start - stats.preprocess_s),
            "postprocess_ms": 1e3 * (done - inferred),
            "frames": len(frames),
            "inputs": total,
            "batches": stats.batches,
        }
        return results

    def _plan(self, frame: np.ndarray) -> _FramePlan:
        rgb = to_rgb(frame, self.color_order)
        frame_size = frame.shape[:2]
        if self.fit == "tile":
            tile_h, tile_w = self.backend.input_size
            grid = tile_grid(frame_size[0], frame_size[1], tile_h, tile_w, self.tile_overlap)
            return _FramePlan(rgb, frame_size, len(grid), grid=grid)
        return _FramePlan(rgb, frame_size, 1)

    def _inputs(self, plan: _FramePlan, start: int, stop: int) -> np.ndarray:
        """Inputs start:stop of one frame as RGB NHWC uint8 [stop - start, H, W, 3]."""
        tile_h, tile_w = self.backend.input_size
        if plan.grid is not None:
            return cut_tiles(plan.rgb, plan.grid[start:stop], tile_h, tile_w)
        resize = letterbox if self.fit == "letterbox" else stretch
        image, plan.mapping = resize(plan.rgb, (tile_h, tile_w))
        return image[None]

    def _batches_of(self, plans: list[_FramePlan], limit: int, stats: _CallStats) -> Iterator[np.ndarray]:
        """NCHW uint8 batches of at most `limit` inputs, in frame order, each cut when it is asked
        for (time spent here counts as preprocessing)."""
        parts, size = [], 0
        for plan in plans:
            done = 0
            while done < plan.inputs:
                tic = time.perf_counter()
                take = min(limit - size, plan.inputs - done)
                parts.append(self._inputs(plan, done, done + take))
                size, done = size + take, done + take
                batch = None
                if size == limit:
                    batch, parts, size = _to_nchw(parts), [], 0
                stats.preprocess_s += time.perf_counter() - tic
                if batch is not None:
                    stats.batches += 1
                    yield batch
        if parts:
            tic = time.perf_counter()
            batch = _to_nchw(parts)
            stats.preprocess_s += time.perf_counter() - tic
            stats.batches += 1
            yield batch

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


def _to_nchw(parts: list[np.ndarray]) -> np.ndarray:
    """RGB NHWC pieces -> one C-contiguous uint8 [N, 3, H, W] batch."""
    stacked = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))


def _clip_to_frame(boxes, scores, labels, frame_size):
    """Clip boxes to the frame; drop boxes left with no area (they lay in the zero padding)."""
    height, width = frame_size
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep], np.asarray(scores)[keep], np.asarray(labels)[keep]
