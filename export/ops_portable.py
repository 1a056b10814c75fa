"""The `portable` flavour: sspnet's two custom torch ops written with standard ONNX ops only.

Each function here is an onnxscript translation: the ONNX exporter calls it with the arguments of
the torch op (graph values for tensors, Python numbers and lists for the rest) and it returns
graph values that compute the same thing. The result runs on any ONNX runtime (ONNX Runtime,
TensorRT's own RoiAlign / NMS layers, OpenVINO ...), with every tensor shape fixed by the input
shape: no data-dependent output shapes leave these subgraphs.

- `multi_level_roi_align`: per pyramid level one standard `RoiAlign` (opset >= 16), each RoI
  pooled only from its own level (selected with `Where`). RoIs of other levels are replaced by an
  all-zero box before pooling, which makes their samples nearly free.
- `batched_nms`: `NonMaxSuppression` (hard NMS only), whose data-dependent [S, 3] selection is
  turned into the op's fixed-size padded outputs with a scatter and a `TopK`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import onnx_ir as ir
from onnxscript import opset18 as op

# Method codes of torch.ops.sspnet.batched_nms (and of the TensorRT plugin's `method` field).
NMS_METHODS = {0: "hard", 1: "linear", 2: "gaussian"}


def _const(array) -> ir.Value:
    """A Constant node holding a NumPy array (dtype kept exactly)."""
    return op.Constant(value=ir.tensor(np.asarray(array)))


def _int64s(*values: int) -> ir.Value:
    return _const(np.array(values, dtype=np.int64))


def _float32s(*values: float) -> ir.Value:
    return _const(np.array(values, dtype=np.float32))


# ---------------------------------------------------------------------------------------------
# Multi-level RoIAlign
# ---------------------------------------------------------------------------------------------


def roi_level_thresholds(num_levels: int) -> list[float]:
    """Level k >= 1 starts where s / finest_scale + 1e-6 >= 2**k (mmdetection's floor(log2(.)) rule)."""
    return [float(2**k) for k in range(1, num_levels)]


def roi_levels_onnx(rois: ir.Value, num_levels: int, finest_scale: float) -> ir.Value:
    """Pyramid level of each RoI, int64 [R].

    The rule (mmdetection's SingleRoIExtractor, sspnet.ops.roi_levels): s = sqrt(max((x2 - x1) * (y2 - y1), 0)),
    level = clamp(floor(log2(s / finest_scale + 1e-6)), 0, L - 1). floor(log2(x)) >= k exactly when
    x >= 2**k, so the level is counted with comparisons (ONNX has no Log2; Log / ln 2 + Floor would
    round differently). The only possible difference from a float32 log2 is an x within one float
    ulp below a power of two, which a rounded log2 may already call 2**k (a RoI scale a few
    micro-pixels under 112 / 224 / 448 px). A NaN or negative area gives level 0, as in the kernel.

    rois: float [R, 5] = (batch_index, x1, y1, x2, y2) in input pixels.
    """
    x1 = op.Slice(rois, _int64s(1), _int64s(2), _int64s(1))
    y1 = op.Slice(rois, _int64s(2), _int64s(3), _int64s(1))
    x2 = op.Slice(rois, _int64s(3), _int64s(4), _int64s(1))
    y2 = op.Slice(rois, _int64s(4), _int64s(5), _int64s(1))
    area = op.Mul(op.Sub(x2, x1), op.Sub(y2, y1))
    area = op.Max(area, op.CastLike(_float32s(0.0), area))
    scale = op.Add(
        op.Div(op.Sqrt(area), op.CastLike(_float32s(finest_scale), area)),
        op.CastLike(_float32s(1e-6), area),
    )  # [R, 1]
    if num_levels == 1:
        return op.ConstantOfShape(op.Shape(rois, start=0, end=1), value=ir.tensor(np.array([0], np.int64)))
    thresholds = op.CastLike(_const(np.array(roi_level_thresholds(num_levels), np.float32)), area)
    reached = op.Cast(op.GreaterOrEqual(scale, thresholds), to=ir.DataType.INT64)  # [R, L - 1]
    return op.ReduceSum(reached, _int64s(1), keepdims=0)


def multi_level_roi_align(
    features,
    rois,
    spatial_scales,
    output_height: int,
    output_width: int,
    sampling_ratio: int,
    aligned: bool,
    finest_scale: float,
):
    """torch.ops.sspnet.multi_level_roi_align as standard ONNX ops.

    features: L values [N, C, H_l, W_l], finest first; rois: [R, 5] (batch_index, x1, y1, x2, y2).
    Returns [R, C, output_height, output_width].

    ONNX RoiAlign with mode "avg" follows torchvision's roi_align (and so the sspnet kernel):
    the same bilinear sampling, `sampling_ratio` 0 meaning ceil(roi_size / output_size) samples,
    coordinate_transformation_mode "half_pixel" = aligned=True and "output_half_pixel" = aligned=False
    (including the clamp of a misaligned RoI's size to >= 1).
    """
    features = list(features)
    if len(features) != len(spatial_scales):
        raise ValueError(
            f"multi_level_roi_align: {len(features)} feature levels but {len(spatial_scales)} spatial_scales"
        )
    levels = roi_levels_onnx(rois, len(features), finest_scale)  # [R]
    batch_column = op.Slice(rois, _int64s(0), _int64s(1), _int64s(1))
    batch_indices = op.Cast(op.Squeeze(batch_column, _int64s(1)), to=ir.DataType.INT64)  # [R]
    boxes = op.Slice(rois, _int64s(1), _int64s(5), _int64s(1))  # [R, 4]
    zero_boxes = op.Mul(boxes, op.CastLike(_float32s(0.0), boxes))
    mode = "half_pixel" if aligned else "output_half_pixel"
    pooled = None
    for level, (feature, scale) in enumerate(zip(features, spatial_scales)):
        on_level = op.Equal(levels, _int64s(level))  # [R]
        level_boxes = op.Where(op.Unsqueeze(on_level, _int64s(1)), boxes, zero_boxes)
        level_pooled = op.RoiAlign(
            feature,
            level_boxes,
            batch_indices,
            coordinate_transformation_mode=mode,
            mode="avg",
            output_height=int(output_height),
            output_width=int(output_width),
            sampling_ratio=int(sampling_ratio),
            spatial_scale=float(scale),
        )
        if pooled is None:
            pooled = level_pooled  # rows of other levels are overwritten below
        else:
            pooled = op.Where(op.Unsqueeze(on_level, _int64s(1, 2, 3)), level_pooled, pooled)
    return pooled


# ---------------------------------------------------------------------------------------------
# Batched NMS
# ---------------------------------------------------------------------------------------------


def batched_nms(
    boxes,
    scores,
    labels,
    iou_threshold: float,
    method: int,
    sigma: float,
    score_threshold: float,
    min_score: float,
    max_output: int,
):
    """torch.ops.sspnet.batched_nms (hard NMS) as standard ONNX ops.

    boxes [N, M, 4] (x1, y1, x2, y2), scores [N, M], labels [N, M] integer or None.
    Returns keep int64 [N, max_output] (indices into M, best first, -1 pads), kept scores
    [N, max_output] (0 pads) and num_valid int64 [N].

    ONNX NonMaxSuppression has no soft-NMS: a soft method is exported as hard NMS with the same
    IoU threshold, with a warning (the exporter also records the method in the metadata).
    Semantics kept identical to the sspnet kernel: candidates have score > score_threshold
    (strict, as ONNX's), a kept box removes boxes with IoU > iou_threshold, equal scores keep the
    lower index first (as ONNX Runtime and TopK do). Class-aware NMS uses NonMaxSuppression's class
    axis (one row of scores per label value, -inf elsewhere), so IoUs are computed on the real
    coordinates (no torchvision-style coordinate offsets that would round them).
    """
    if method != 0:
        warnings.warn(
            f"portable ONNX: NMS method {NMS_METHODS.get(method, method)!r} is exported as hard NMS "
            f"(iou_threshold {iou_threshold}); standard ONNX has no soft-NMS. Use the tensorrt "
            "flavour for soft-NMS.",
            stacklevel=2,
        )
    max_output = int(max_output)
    if max_output < 1:
        raise ValueError(f"batched_nms: max_output must be >= 1, got {max_output}")

    # The kernel gives an inverted box zero area; ONNX would re-order its corners instead.
    x1y1 = op.Slice(boxes, _int64s(0), _int64s(2), _int64s(2))
    x2y2 = op.Max(op.Slice(boxes, _int64s(2), _int64s(4), _int64s(2)), x1y1)
    nms_boxes = op.Concat(x1y1, x2y2, axis=2)

    minus_inf = op.CastLike(_float32s(-math.inf), scores)
    if labels is None:
        class_scores = op.Unsqueeze(scores, _int64s(1))  # [N, 1, M]
    else:
        labels = op.Cast(labels, to=ir.DataType.INT64)
        num_classes = op.Add(op.ReduceMax(labels, keepdims=0), _const(np.int64(1)))
        class_ids = op.Range(_const(np.int64(0)), num_classes, _const(np.int64(1)))  # [C]
        member = op.Equal(op.Unsqueeze(labels, _int64s(1)), op.Unsqueeze(class_ids, _int64s(0, 2)))
        class_scores = op.Where(member, op.Unsqueeze(scores, _int64s(1)), minus_inf)  # [N, C, M]

    selected = op.NonMaxSuppression(
        nms_boxes,
        op.Cast(class_scores, to=ir.DataType.FLOAT),
        _int64s(max_output),
        _float32s(iou_threshold),
        _float32s(score_threshold),
        center_point_box=0,
    )  # [S, 3] = (batch, class, box)

    # Mark the selected boxes in a fixed-size [N, M] grid (ScatterND with S = 0 is a no-op).
    batch_and_box = op.Gather(selected, _int64s(0, 2), axis=1)  # [S, 2]
    kept = op.ScatterND(
        op.ConstantOfShape(op.Shape(scores), value=ir.tensor(np.array([0], np.int64))),
        batch_and_box,
        op.Expand(_int64s(1), op.Shape(batch_and_box, start=0, end=1)),
    )
    kept_scores = op.Where(op.Cast(kept, to=ir.DataType.BOOL), scores, minus_inf)

    # Best first, ties -> lower index first (TopK's rule, and the kernel's).
    num_boxes = op.Shape(scores, start=1, end=2)
    k = op.Min(num_boxes, _int64s(max_output))
    top_scores, top_index = op.TopK(kept_scores, k, axis=1, largest=1, sorted=1)
    valid = op.Greater(top_scores, minus_inf)
    keep = op.Where(valid, top_index, _int64s(-1))
    keep_scores = op.Where(valid, top_scores, op.CastLike(_float32s(0.0), scores))
    num_valid = op.ReduceSum(op.Cast(valid, to=ir.DataType.INT64), _int64s(1), keepdims=0)

    # Fewer boxes than max_output: pad the columns up to the fixed size.
    pads = op.Concat(_int64s(0, 0, 0), op.Sub(_int64s(max_output), k), axis=0)
    keep = op.Pad(keep, pads, _const(np.int64(-1)))
    keep_scores = op.Pad(keep_scores, pads, op.CastLike(_const(np.float32(0.0)), scores))
    return keep, keep_scores, num_valid
