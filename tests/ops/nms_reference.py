"""Plain NumPy NMS written from the formulas, float64: the reference for tests and benchmarks.

Independent of the compiled kernels on purpose: simple loops that follow the definitions in
csrc/kernels/batched_nms.h and the Soft-NMS paper (Bodla et al. 2017, "Soft-NMS - Improving
Object Detection With One Line of Code"), as implemented by mmcv:
    linear:   s_i <- s_i * (1 - IoU(M, b_i))  if IoU(M, b_i) > iou_threshold, else unchanged
    gaussian: s_i <- s_i * exp(-IoU(M, b_i)^2 / sigma)   for every remaining box
Each returns (keep, scores) for ONE image: int64 indices into the input in selection order and the
(decayed) score of each kept box, at most max_output of them.
"""

from __future__ import annotations

import numpy as np


def areas(boxes: np.ndarray) -> np.ndarray:
    """[K, 4] -> [K]: max(x2 - x1, 0) * max(y2 - y1, 0); NaN coordinates give NaN."""
    width = np.maximum(boxes[:, 2] - boxes[:, 0], 0.0)  # np.maximum propagates NaN
    height = np.maximum(boxes[:, 3] - boxes[:, 1], 0.0)
    return width * height


def iou_one_to_many(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one [4] box with [K, 4] boxes, no +1; 0 where the union is not > 0 (or is NaN)."""
    left = np.maximum(box[0], others[:, 0])
    top = np.maximum(box[1], others[:, 1])
    right = np.minimum(box[2], others[:, 2])
    bottom = np.minimum(box[3], others[:, 3])
    inter = np.maximum(right - left, 0.0) * np.maximum(bottom - top, 0.0)
    union = areas(box[None, :])[0] + areas(others) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    return np.where(union > 0, iou, 0.0)


def _candidates(scores, labels, score_threshold):
    """Indices with score > score_threshold (NaN never), and the label of every box."""
    scores = np.asarray(scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        candidates = np.flatnonzero(scores > score_threshold)
    labels = np.zeros(len(scores), dtype=np.int64) if labels is None else np.asarray(labels)
    return candidates, labels


def hard_nms(boxes, scores, iou_threshold, labels=None, score_threshold=0.0, max_output=None):
    """Greedy NMS: walk boxes by descending score (ties: lower index first); keep a box unless a
    kept box of the same label overlaps it with IoU > iou_threshold."""
    boxes = np.asarray(boxes, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    candidates, labels = _candidates(scores, labels, score_threshold)
    # lexsort: the last key is the primary one -> descending score, then ascending index
    order = candidates[np.lexsort((candidates, -scores[candidates]))]
    keep = []
    for i in order:
        if max_output is not None and len(keep) == max_output:
            break
        same_label = [k for k in keep if labels[k] == labels[i]]
        if same_label and iou_one_to_many(boxes[i], boxes[same_label]).max() > iou_threshold:
            continue
        keep.append(int(i))
    return np.array(keep, dtype=np.int64), scores[keep]


def soft_nms(
    boxes,
    scores,
    iou_threshold=0.3,
    method="linear",
    sigma=0.5,
    min_score=0.0,
    labels=None,
    score_threshold=0.0,
    max_output=None,
):
    """Soft-NMS: repeatedly keep the box with the highest current score (ties: lower index),
    decay the scores of the remaining boxes of its label, drop boxes whose score < min_score."""
    boxes = np.asarray(boxes, dtype=np.float64)
    current = np.asarray(scores, dtype=np.float64).copy()
    candidates, labels = _candidates(current, labels, score_threshold)
    remaining = candidates[current[candidates] >= min_score]  # ascending index
    keep, kept_scores = [], []
    while remaining.size and (max_output is None or len(keep) < max_output):
        position = int(np.argmax(current[remaining]))  # the first (lowest index) maximum
        best = int(remaining[position])
        keep.append(best)
        kept_scores.append(current[best])
        remaining = np.delete(remaining, position)
        iou = iou_one_to_many(boxes[best], boxes[remaining])
        if method == "linear":
            weight = np.where(iou > iou_threshold, 1.0 - iou, 1.0)
        elif method == "gaussian":
            weight = np.exp(-(iou * iou) / sigma)
        else:
            raise ValueError(f"unknown soft-NMS method {method!r}")
        weight = np.where(labels[remaining] == labels[best], weight, 1.0)
        with np.errstate(invalid="ignore"):  # inf * 0 -> NaN: dropped below
            current[remaining] = current[remaining] * weight
            remaining = remaining[current[remaining] >= min_score]
    return np.array(keep, dtype=np.int64), np.array(kept_scores, dtype=np.float64)
