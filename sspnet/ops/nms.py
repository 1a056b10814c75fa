"""Batched non-maximum suppression with a fixed-size output: hard, soft-linear, soft-gaussian.

`batched_nms` wraps the compiled op `torch.ops.sspnet.batched_nms` (csrc/torch/nms_op.cpp, kernels
in csrc/kernels/batched_nms_*.{cpp,cu}). The outputs have a fixed shape, padded past the number of
kept boxes, so the op traces, exports and runs inside CUDA graphs / TensorRT engines.
"""

from __future__ import annotations

import operator

import torch

from sspnet.ops import extension

METHODS = {"hard": 0, "linear": 1, "gaussian": 2}

try:
    extension.load()
    _LOAD_ERROR: ImportError | None = None
except ImportError as error:  # raised again on the first call, so `import sspnet.ops` still works
    _LOAD_ERROR = error

if _LOAD_ERROR is None:

    @torch.library.register_fake("sspnet::batched_nms")
    def _batched_nms_fake(boxes, scores, labels, iou_threshold, method, sigma, score_threshold, min_score, max_output):
        """Shapes only: keep int64 [N, K], scores [N, K], num_valid int64 [N], K = max_output."""
        batch = boxes.shape[0]
        keep = boxes.new_empty((batch, max_output), dtype=torch.int64)
        kept_scores = scores.new_empty((batch, max_output))
        num_valid = boxes.new_empty((batch,), dtype=torch.int64)
        return keep, kept_scores, num_valid


def batched_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor | None = None,
    iou_threshold: float = 0.5,
    method: str = "hard",
    sigma: float = 0.5,
    score_threshold: float = 0.0,
    min_score: float = 0.0,
    max_output: int = 1000,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image NMS (hard or soft) with a fixed-size, padded output.

    Args:
        boxes: [N, M, 4] or [M, 4] float (x1, y1, x2, y2). float32 and float16 are computed in
            fp32 (on the CPU float16 is converted to fp32 first), bfloat16 goes through fp32,
            float64 is computed in fp64. M may be tens of thousands (no 4096 cap).
        scores: [N, M] or [M], same dtype and device as boxes.
        labels: [N, M] or [M] integer class ids (converted to int32), or None. With labels the NMS
            is class-aware: boxes of different classes never suppress or decay each other.
        iou_threshold: in [0, 1]. Hard: a kept box removes later boxes with IoU > iou_threshold.
            Linear: scores of boxes with IoU > iou_threshold are multiplied by (1 - IoU).
        method: "hard", "linear" (soft-NMS) or "gaussian" (soft-NMS, weight exp(-IoU^2 / sigma)
            for every remaining box).
        sigma: > 0, gaussian only.
        score_threshold: only boxes with score > score_threshold (strict) take part; NaN scores
            never do.
        min_score: soft methods only: boxes whose (decayed) score falls below min_score are
            dropped and never kept.
        max_output: >= 1, the fixed number K of output rows per image.

    The scalar options reach the kernel as float32 (as in the TensorRT plugin), so for exact
    threshold comparisons use values that float32 represents exactly (0.5, 0.25, ...).

    Returns:
        keep: int64 [N, K] (or [K]): indices into M of the kept boxes in selection order, -1 pads.
        scores_after: [N, K] (or [K]), dtype of scores: score of each kept box (the decayed score
            for soft-NMS), 0 pads.
        num_valid: int64 [N] (or 0-d): number of valid rows per image.

    Semantics (identical on CPU and CUDA):
        - order: descending score, equal scores -> lower index first. Soft-NMS keeps, at every
          step, the box with the highest current score (ties -> lower index), so the kept scores
          are non-increasing (for non-negative scores).
        - IoU has no +1; areas are max(x2 - x1, 0) * max(y2 - y1, 0); IoU is 0 when the union is
          not positive. Boxes with a NaN coordinate have IoU 0 with every box.
        - unlike mmcv's soft_nms, a box whose initial score is below min_score is never kept (mmcv
          could keep such a box as its very first pick).
    """
    if _LOAD_ERROR is not None:
        raise _LOAD_ERROR
    single = _check_inputs(boxes, scores, labels)
    method_id = _check_options(iou_threshold, method, sigma, score_threshold, min_score, max_output)
    if labels is not None and labels.dtype != torch.int32:
        labels = labels.to(torch.int32)
    if single:
        boxes, scores = boxes.unsqueeze(0), scores.unsqueeze(0)
        labels = None if labels is None else labels.unsqueeze(0)
    keep, scores_after, num_valid = torch.ops.sspnet.batched_nms(
        boxes,
        scores,
        labels,
        float(iou_threshold),
        method_id,
        float(sigma),
        float(score_threshold),
        float(min_score),
        int(max_output),
    )
    if single:
        return keep[0], scores_after[0], num_valid[0]
    return keep, scores_after, num_valid


def _check_inputs(boxes, scores, labels) -> bool:
    """Validates tensors; returns True for the single-image form ([M, 4] boxes)."""
    for name, value in (("boxes", boxes), ("scores", scores)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"batched_nms: {name} must be a torch.Tensor, got {type(value).__name__}")
    if boxes.dim() not in (2, 3):
        raise ValueError(
            f"batched_nms: boxes must have shape [N, M, 4] or [M, 4], got rank {boxes.dim()} "
            f"(shape {tuple(boxes.shape)})"
        )
    if boxes.shape[-1] != 4:
        raise ValueError(
            f"batched_nms: boxes must have a last dimension of 4 (x1, y1, x2, y2), got shape {tuple(boxes.shape)}"
        )
    expected = tuple(boxes.shape[:-1])
    if tuple(scores.shape) != expected:
        raise ValueError(
            f"batched_nms: scores must have shape {list(expected)} to match boxes "
            f"{tuple(boxes.shape)}, got {tuple(scores.shape)}"
        )
    if not boxes.dtype.is_floating_point:
        raise TypeError(f"batched_nms: boxes must be a floating-point tensor, got {boxes.dtype}")
    if scores.dtype != boxes.dtype:
        raise TypeError(f"batched_nms: scores must have the dtype of boxes ({boxes.dtype}), got {scores.dtype}")
    if scores.device != boxes.device:
        raise ValueError(f"batched_nms: scores must be on the device of boxes ({boxes.device}), got {scores.device}")
    if labels is not None:
        if not isinstance(labels, torch.Tensor):
            raise TypeError(f"batched_nms: labels must be a torch.Tensor or None, got {type(labels).__name__}")
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise TypeError(f"batched_nms: labels must be an integer tensor, got {labels.dtype}")
        if tuple(labels.shape) != expected:
            raise ValueError(
                f"batched_nms: labels must have shape {list(expected)} to match boxes "
                f"{tuple(boxes.shape)}, got {tuple(labels.shape)}"
            )
        if labels.device != boxes.device:
            raise ValueError(
                f"batched_nms: labels must be on the device of boxes ({boxes.device}), got {labels.device}"
            )
    return boxes.dim() == 2


def _check_options(iou_threshold, method, sigma, score_threshold, min_score, max_output) -> int:
    """Validates the scalar options; returns the kernel's method id."""
    if method not in METHODS:
        raise ValueError(f"batched_nms: method must be one of {sorted(METHODS)}, got {method!r}")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"batched_nms: iou_threshold must be in [0, 1], got {iou_threshold}")
    if not float(sigma) > 0.0 or float(sigma) == float("inf"):
        raise ValueError(f"batched_nms: sigma must be a finite number > 0, got {sigma}")
    for name, value in (("score_threshold", score_threshold), ("min_score", min_score)):
        if float(value) != float(value):
            raise ValueError(f"batched_nms: {name} must not be NaN")
    try:
        if isinstance(max_output, bool):
            raise TypeError
        max_output = operator.index(max_output)  # int, numpy integer, ... but not 2.0
    except TypeError:
        raise TypeError(f"batched_nms: max_output must be an int, got {type(max_output).__name__}") from None
    if not 1 <= max_output <= 2**31 - 1:
        raise ValueError(f"batched_nms: max_output must be in [1, 2^31 - 1], got {max_output}")
    return METHODS[method]
