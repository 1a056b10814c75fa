"""Tiling geometry shared by onboard inference, evaluation and dataset cutting (NumPy only, no torch).

The grid follows TinyBenchmark's cutting tool ("fix size" mode), per axis with image length L, tile
length S and overlap o:

    step   = S - o
    pieces = max(1, ceil((L - o) / (S - o)))
    start_k = k * step, and a tile that would overflow the right/bottom edge is shifted back inside
              (start = L - S); only the last tile can overflow, so no two tiles coincide.

Neighbouring tiles overlap by exactly `o` pixels, the shifted last tile by at least `o`.
An image shorter than the tile along an axis gets one tile starting at 0 that is longer than the
image (`cut_tiles` zero-pads it), so every tile has the same shape and tiles batch together.
"""

from __future__ import annotations

import math

import numpy as np

from .nms import batched_nms


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name}: expected a positive size, got {value}")
    return int(value)


def axis_starts(length: int, tile: int, overlap: int) -> np.ndarray:
    """Tile start offsets along one axis -> int64 [pieces] (see the module docstring)."""
    if length <= tile:
        return np.zeros(1, dtype=np.int64)
    step = tile - overlap
    pieces = max(1, math.ceil((length - overlap) / step))
    starts = np.arange(pieces, dtype=np.int64) * step
    return np.minimum(starts, length - tile)  # "fix size": shift the overflowing tile back inside


def tile_grid(image_h: int, image_w: int, tile_h: int, tile_w: int, overlap: int) -> np.ndarray:
    """Tiles covering an image.

    Args:
        image_h, image_w: image size in pixels.
        tile_h, tile_w: tile size in pixels.
        overlap: overlap between neighbouring tiles in pixels (same on both axes), 0 <= overlap < tile.

    Returns:
        int64 [T, 4] tile corners (x1, y1, x2, y2), row-major (top row first, left to right);
        every tile is exactly tile_w x tile_h (x2/y2 exceed the image only when the image is smaller
        than the tile along that axis).
    """
    image_h = _check_positive_int("image_h", image_h)
    image_w = _check_positive_int("image_w", image_w)
    tile_h = _check_positive_int("tile_h", tile_h)
    tile_w = _check_positive_int("tile_w", tile_w)
    if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)):
        raise TypeError(f"overlap: expected an int, got {type(overlap).__name__} {overlap!r}")
    if overlap < 0 or overlap >= min(tile_h, tile_w):
        raise ValueError(f"overlap: expected 0 <= overlap < min(tile_h, tile_w) = {min(tile_h, tile_w)}, got {overlap}")
    ys = axis_starts(image_h, tile_h, int(overlap))
    xs = axis_starts(image_w, tile_w, int(overlap))
    y1, x1 = np.meshgrid(ys, xs, indexing="ij")
    x1, y1 = x1.ravel(), y1.ravel()
    return np.stack([x1, y1, x1 + tile_w, y1 + tile_h], axis=1).astype(np.int64)


def _check_grid(grid) -> np.ndarray:
    grid = np.asarray(grid)
    if grid.ndim != 2 or grid.shape[1] != 4:
        raise ValueError(f"grid: expected shape [T, 4] (x1, y1, x2, y2), got {list(grid.shape)}")
    return grid.astype(np.int64)


def cut_tiles(image_hwc: np.ndarray, grid, tile_h: int, tile_w: int) -> np.ndarray:
    """Cut tiles out of an image, zero-padding where a tile reaches past the image.

    Args:
        image_hwc: [H, W, C] image (any dtype, typically uint8).
        grid: [T, 4] tile corners from `tile_grid`.
        tile_h, tile_w: tile size (every grid row must be this size).

    Returns:
        [T, tile_h, tile_w, C] array of the image's dtype.
    """
    image_hwc = np.asarray(image_hwc)
    if image_hwc.ndim != 3:
        raise ValueError(f"image_hwc: expected shape [H, W, C], got {list(image_hwc.shape)}")
    grid = _check_grid(grid)
    tile_h = _check_positive_int("tile_h", tile_h)
    tile_w = _check_positive_int("tile_w", tile_w)
    sizes = np.stack([grid[:, 2] - grid[:, 0], grid[:, 3] - grid[:, 1]], axis=1)
    if not (sizes == (tile_w, tile_h)).all():
        raise ValueError(f"grid: every tile must be {tile_w}x{tile_h} (w x h), got sizes {sizes.tolist()}")
    if (grid[:, :2] < 0).any():
        raise ValueError("grid: tile corners must be >= 0")
    height, width, channels = image_hwc.shape
    tiles = np.zeros((len(grid), tile_h, tile_w, channels), dtype=image_hwc.dtype)
    for k, (x1, y1, x2, y2) in enumerate(grid):
        crop = image_hwc[y1 : min(y2, height), x1 : min(x2, width)]
        tiles[k, : crop.shape[0], : crop.shape[1]] = crop
    return tiles


def merge_tile_detections(
    boxes_list,
    scores_list,
    labels_list,
    grid,
    iou_threshold: float = 0.5,
    max_detections: int | None = None,
    plus_one: bool = False,
    return_indices: bool = False,
):
    """Shift per-tile detections to frame coordinates and merge them with class-aware hard NMS.

    Args:
        boxes_list: T arrays [K_t, 4] x1, y1, x2, y2 in tile pixels.
        scores_list: T arrays [K_t].
        labels_list: T integer arrays [K_t].
        grid: [T, 4] tile corners (x1, y1, x2, y2) in frame pixels.
        iou_threshold: NMS IoU threshold across tiles.
        max_detections: keep at most this many (highest scores); None keeps all.
        plus_one: TinyBenchmark's legacy "+1 pixel" NMS (used by the evaluation's merge step).
        return_indices: also return the kept detections' indices into the tiles' detections
            concatenated in tile order (the evaluation's corner merge keeps the original float64 scores).

    Returns:
        boxes float32 [D, 4] in frame pixels, scores float32 [D], labels int64 [D], sorted by
        decreasing score (and int64 [D] indices with return_indices). Scores are unchanged by the merge.
    """
    grid = _check_grid(grid)
    if not len(boxes_list) == len(scores_list) == len(labels_list) == len(grid):
        raise ValueError(
            "boxes_list, scores_list, labels_list and grid must have one entry per tile, got lengths "
            f"{len(boxes_list)}, {len(scores_list)}, {len(labels_list)}, {len(grid)}"
        )
    shifted, all_scores, all_labels = [], [], []
    for tile, (boxes, scores, labels) in enumerate(zip(boxes_list, scores_list, labels_list)):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        labels = np.asarray(labels).reshape(-1)
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(
                f"tile {tile}: boxes, scores and labels differ in length ({len(boxes)}, {len(scores)}, {len(labels)})"
            )
        corner = grid[tile, [0, 1, 0, 1]].astype(np.float64)
        shifted.append(boxes + corner)
        all_scores.append(scores)
        all_labels.append(labels.astype(np.int64))
    boxes = np.concatenate(shifted) if shifted else np.zeros((0, 4))
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    labels = np.concatenate(all_labels) if all_labels else np.zeros(0, dtype=np.int64)
    keep = batched_nms(boxes, scores, labels, iou_threshold, plus_one=plus_one)
    if max_detections is not None:
        keep = keep[:max_detections]
    merged = boxes[keep].astype(np.float32), scores[keep].astype(np.float32), labels[keep]
    return (*merged, keep) if return_indices else merged
