"""Element-wise detection losses (summed; callers divide by the original heads' normalisers)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sigmoid_focal_loss_sum(logits: Tensor, labels: Tensor, num_classes: int, gamma: float, alpha: float) -> Tensor:
    """Sigmoid focal loss summed over all elements (mmdet / mmcv convention).

    logits [M, C]; labels [M] with values in [0, C) for objects and C for background (all-zero
    one-hot). loss = -alpha (1-p)^gamma log p for targets 1 and -(1-alpha) p^gamma log(1-p) for 0:
    the same alpha convention as torchvision.ops.sigmoid_focal_loss (alpha weighs the positives).
    """
    one_hot = F.one_hot(labels.long(), num_classes + 1)[:, :num_classes].to(logits.dtype)
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, one_hot, reduction="none")
    p_t = prob * one_hot + (1 - prob) * (1 - one_hot)
    alpha_t = alpha * one_hot + (1 - alpha) * (1 - one_hot)
    return (alpha_t * (1 - p_t) ** gamma * ce).sum()


def smooth_l1_sum(pred: Tensor, target: Tensor, beta: float) -> Tensor:
    """sum of 0.5 d^2 / beta where d < beta, else d - 0.5 beta (d = |pred - target|)."""
    diff = (pred - target).abs()
    return torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta).sum()


def l1_sum(pred: Tensor, target: Tensor) -> Tensor:
    """sum |pred - target|."""
    return (pred - target).abs().sum()
