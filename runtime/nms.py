"""Hard non-maximum suppression in NumPy (no torch): the reference the runtime and evaluation use.

Semantics match `torchvision.ops.nms` / `batched_nms`: boxes are (x1, y1, x2, y2); a box is suppressed
when its IoU with an already kept, higher-scoring box is strictly greater than `iou_threshold`.

Tie rule: boxes are visited in order of decreasing score with a *stable* sort, so among equal scores
the lower input index is visited (and kept) first.

`plus_one=True` uses the legacy "+1 pixel" convention (width = x2 - x1 + 1), which TinyBenchmark's
merge NMS uses; with it two boxes that only touch along an edge overlap by one pixel row.
"""

from __future__ import annotations

import numpy as np


def _check_boxes_scores(boxes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.asarray(boxes, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes: expected shape [N, 4], got {list(boxes.shape)}")
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"scores: expected shape [{boxes.shape[0]}], got {list(scores.shape)}")
    return boxes, scores


def box_iou_one_to_many(box: np.ndarray, others: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """IoU of one box [4] with many boxes [M, 4] -> [M] (float64). Degenerate boxes have area 0."""
    offset = 1.0 if plus_one else 0.0
    inter_w = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]) + offset
    inter_h = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]) + offset
    inter = np.clip(inter_w, 0.0, None) * np.clip(inter_h, 0.0, None)
    area = max(box[2] - box[0] + offset, 0.0) * max(box[3] - box[1] + offset, 0.0)
    areas = np.clip(others[:, 2] - others[:, 0] + offset, 0.0, None) * np.clip(
        others[:, 3] - others[:, 1] + offset, 0.0, None
    )
    union = area + areas - inter
    # union 0 only for two empty boxes: define their IoU as 0 (torchvision gives NaN, never > threshold)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes, scores, iou_threshold: float, plus_one: bool = False) -> np.ndarray:
    """Greedy hard NMS.

    Args:
        boxes: [N, 4] x1, y1, x2, y2.
        scores: [N].
        iou_threshold: suppress boxes whose IoU with a kept box is > this value.
        plus_one: legacy "+1 pixel" box width/height convention.

    Returns:
        int64 [K] indices of kept boxes, in decreasing score order (ties: lower index first).
    """
    boxes, scores = _check_boxes_scores(boxes, scores)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        ious = box_iou_one_to_many(boxes[best], boxes[rest], plus_one)
        order = rest[ious <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes, scores, labels, iou_threshold: float, plus_one: bool = False) -> np.ndarray:
    """Class-aware hard NMS: boxes only suppress boxes of the same label.

    Args:
        boxes: [N, 4]; scores: [N]; labels: [N] integers.

    Returns:
        int64 [K] kept indices sorted by decreasing score (stable: ties keep input order).
    """
    boxes, scores = _check_boxes_scores(boxes, scores)
    labels = np.asarray(labels)
    if labels.shape != scores.shape:
        raise ValueError(f"labels: expected shape [{scores.shape[0]}], got {list(labels.shape)}")
    kept = [
        np.flatnonzero(labels == label)[nms(boxes[labels == label], scores[labels == label], iou_threshold, plus_one)]
        for label in np.unique(labels)
    ]
    keep = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    # final order: decreasing score, ties by lower original index
    order = np.lexsort((keep, -scores[keep]))
    return keep[order].astype(np.int64)
