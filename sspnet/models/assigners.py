"""MaxIoUAssigner (mmdetection 2.19 semantics), vectorised, safe with zero boxes or zero GT."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sspnet.models.box_ops import pairwise_iou


@dataclass
class AssignResult:
    """Assignment of K candidate boxes to G ground-truth boxes.

    gt_inds [K] int64: -1 ignore, 0 background, i + 1 = matched to GT i.
    max_overlaps [K] float: best IoU of each candidate with any GT (0 without GT).
    labels [K] int64: class of the matched GT, -1 where not positive.
    """

    gt_inds: Tensor
    max_overlaps: Tensor
    labels: Tensor

    def add_gt_(self, gt_labels: Tensor) -> None:
        """Prepend the GT boxes themselves as positive candidates (GT i matched to itself)."""
        self_inds = torch.arange(1, len(gt_labels) + 1, dtype=torch.long, device=gt_labels.device)
        self.gt_inds = torch.cat([self_inds, self.gt_inds])
        self.max_overlaps = torch.cat([self.max_overlaps.new_ones(len(gt_labels)), self.max_overlaps])
        self.labels = torch.cat([gt_labels.long(), self.labels])


class MaxIoUAssigner:
    """Assign each candidate to the GT it overlaps most.

    - negative (0): max IoU in [0, neg_iou_thr)
    - positive (i+1): max IoU >= pos_iou_thr
    - in between: ignore (-1)
    - match_low_quality: afterwards every GT with best IoU >= min_pos_iou also claims every
      candidate whose IoU with it equals that best IoU (gt_max_assign_all); later GTs win ties.
    """

    def __init__(self, pos_iou_thr: float, neg_iou_thr: float, min_pos_iou: float, match_low_quality: bool):
        self.pos_iou_thr = float(pos_iou_thr)
        self.neg_iou_thr = float(neg_iou_thr)
        self.min_pos_iou = float(min_pos_iou)
        self.match_low_quality = bool(match_low_quality)

    def assign(self, boxes: Tensor, gt_boxes: Tensor, gt_labels: Tensor) -> AssignResult:
        """boxes [K, 4], gt_boxes [G, 4], gt_labels [G] -> AssignResult over the K boxes."""
        num_boxes, num_gts = boxes.shape[0], gt_boxes.shape[0]
        device = boxes.device
        if num_gts == 0 or num_boxes == 0:
            # Without GT everything is background; without candidates there is nothing to assign.
            return AssignResult(
                gt_inds=torch.zeros(num_boxes, dtype=torch.long, device=device),
                max_overlaps=boxes.new_zeros(num_boxes),
                labels=torch.full((num_boxes,), -1, dtype=torch.long, device=device),
            )
        overlaps = pairwise_iou(gt_boxes.float(), boxes.float())  # [G, K]
        max_overlaps, argmax_overlaps = overlaps.max(dim=0)
        gt_inds = torch.full((num_boxes,), -1, dtype=torch.long, device=device)
        gt_inds[(max_overlaps >= 0) & (max_overlaps < self.neg_iou_thr)] = 0
        positive = max_overlaps >= self.pos_iou_thr
        gt_inds[positive] = argmax_overlaps[positive] + 1

        if self.match_low_quality:
            gt_max_overlaps = overlaps.max(dim=1).values  # [G]
            claims = (overlaps == gt_max_overlaps[:, None]) & (gt_max_overlaps[:, None] >= self.min_pos_iou)
            # The last GT that claims a box wins (mmdet loops over GTs in order and overwrites).
            gt_numbers = torch.arange(1, num_gts + 1, device=device)[:, None]
            last_claim = torch.where(claims, gt_numbers, torch.zeros_like(gt_numbers)).max(dim=0).values
            gt_inds = torch.where(last_claim > 0, last_claim, gt_inds)

        labels = torch.full((num_boxes,), -1, dtype=torch.long, device=device)
        matched = gt_inds > 0
        labels[matched] = gt_labels.long()[gt_inds[matched] - 1]
        return AssignResult(gt_inds=gt_inds, max_overlaps=max_overlaps, labels=labels)
