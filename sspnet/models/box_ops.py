"""Box geometry shared by the heads: pairwise IoU / IoF and clipping. Boxes are (x1, y1, x2, y2).

Widths are `x2 - x1` (no +1), as in mmdetection 2.x.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-6  # mmdetection's guard against a zero union / zero area


def box_area(boxes: Tensor) -> Tensor:
    """[..., 4] -> [...]; negative extents count as 0."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def pairwise_intersection(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """[A, 4], [B, 4] -> [A, B] intersection areas."""
    top_left = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    return wh[..., 0] * wh[..., 1]


def pairwise_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """[A, 4], [B, 4] -> [A, B] intersection over union (union clamped to >= 1e-6)."""
    inter = pairwise_intersection(boxes1, boxes2)
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    return inter / union.clamp(min=EPS)


def pairwise_iof(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """[A, 4], [B, 4] -> [A, B] intersection over the area of the FIRST argument (mmdet "iof")."""
    inter = pairwise_intersection(boxes1, boxes2)
    return inter / box_area(boxes1)[:, None].clamp(min=EPS)


def clip_boxes(boxes: Tensor, height: float, width: float) -> Tensor:
    """Clamp x to [0, width] and y to [0, height]; [..., 4] -> [..., 4]."""
    x1 = boxes[..., 0].clamp(min=0, max=width)
    y1 = boxes[..., 1].clamp(min=0, max=height)
    x2 = boxes[..., 2].clamp(min=0, max=width)
    y2 = boxes[..., 3].clamp(min=0, max=height)
    return torch.stack([x1, y1, x2, y2], dim=-1)
