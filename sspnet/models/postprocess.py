"""The fixed-size detection output of the ONNX contract (runtime/contract.py), built with sspnet.ops."""

from __future__ import annotations

import torch
from torch import Tensor


def select_detections(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    *,
    score_thr: float,
    nms_method: str,
    iou_thr: float,
    sigma: float,
    min_score: float,
    max_detections: int,
) -> dict[str, Tensor]:
    """Class-aware NMS (hard or soft) with a fixed-size output.

    boxes [N, M, 4], scores [N, M], labels [N, M] int64 (candidate class; scores <= score_thr are
    never kept). Returns {"num_dets": int32 [N, 1], "boxes": float32 [N, K, 4], "scores": float32
    [N, K] (decayed scores for soft-NMS), "labels": int32 [N, K]} with K = max_detections, rows in
    descending score order; rows past num_dets hold boxes 0, scores 0, labels -1.
    """
    from sspnet.ops import batched_nms

    keep, kept_scores, num_valid = batched_nms(
        boxes,
        scores,
        labels,
        iou_threshold=iou_thr,
        method=nms_method,
        sigma=sigma,
        score_threshold=score_thr,
        min_score=min_score,
        max_output=max_detections,
    )
    valid = keep >= 0
    index = keep.clamp(min=0)
    det_boxes = boxes.gather(1, index[..., None].expand(-1, -1, 4))
    det_boxes = torch.where(valid[..., None], det_boxes, torch.zeros_like(det_boxes))
    det_scores = torch.where(valid, kept_scores, torch.zeros_like(kept_scores))
    det_labels = torch.where(valid, labels.gather(1, index), torch.full_like(index, -1))
    return {
        "num_dets": num_valid.to(torch.int32).reshape(-1, 1),
        "boxes": det_boxes.to(torch.float32),
        "scores": det_scores.to(torch.float32),
        "labels": det_labels.to(torch.int32),
    }
