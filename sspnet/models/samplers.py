"""Samplers that pick positive / negative candidates for a loss (RPN, RoI head, ICNeg: docs/model.md).

Both samplers draw with torch's global RNG, so `torch.manual_seed` makes them reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sspnet.models.assigners import AssignResult
from sspnet.models.box_ops import pairwise_iof


@dataclass
class SamplingResult:
    """Indices into the candidate list (GT rows first when GT were added as proposals).

    boxes [K', 4]: the candidates the indices refer to; pos_gt_inds [P]: 0-based GT index of each
    positive; pos_labels [P]: its class.
    """

    pos_inds: Tensor
    neg_inds: Tensor
    boxes: Tensor
    pos_gt_inds: Tensor
    pos_labels: Tensor

    @property
    def pos_boxes(self) -> Tensor:
        return self.boxes[self.pos_inds]

    @property
    def neg_boxes(self) -> Tensor:
        return self.boxes[self.neg_inds]


def random_choice(indices: Tensor, num: int) -> Tensor:
    """Up to `num` elements of `indices`, uniformly without replacement."""
    if indices.numel() <= num:
        return indices
    return indices[torch.randperm(indices.numel(), device=indices.device)[:num]]


def _result(assign: AssignResult, boxes: Tensor, pos_inds: Tensor, neg_inds: Tensor) -> SamplingResult:
    return SamplingResult(
        pos_inds=pos_inds,
        neg_inds=neg_inds,
        boxes=boxes,
        pos_gt_inds=assign.gt_inds[pos_inds] - 1,
        pos_labels=assign.labels[pos_inds],
    )


class RandomSampler:
    """`num` candidates, at most `num * pos_fraction` positives, negatives fill the rest.

    add_gt_as_proposals: the GT boxes are prepended to the candidates as positives matched to
    themselves (only when there is at least one GT).
    """

    def __init__(self, num: int, pos_fraction: float, add_gt_as_proposals: bool):
        self.num = int(num)
        self.pos_fraction = float(pos_fraction)
        self.add_gt_as_proposals = bool(add_gt_as_proposals)

    def sample(self, assign: AssignResult, boxes: Tensor, gt_boxes: Tensor, gt_labels: Tensor) -> SamplingResult:
        """assign over boxes [K, 4] -> SamplingResult (the AssignResult is updated in place when GT are added)."""
        boxes = boxes[:, :4]
        if self.add_gt_as_proposals and gt_boxes.shape[0] > 0:
            boxes = torch.cat([gt_boxes.to(boxes.dtype), boxes])
            assign.add_gt_(gt_labels)
        pos_inds = random_choice(torch.nonzero(assign.gt_inds > 0).flatten(), int(self.num * self.pos_fraction))
        neg_pool = torch.nonzero(assign.gt_inds == 0).flatten()
        neg_inds = random_choice(neg_pool, self.num - pos_inds.numel())
        return _result(assign, boxes, pos_inds, neg_inds)


def icneg_weights(boxes: Tensor, gt_boxes: Tensor, iod_weight: float = 0.6) -> Tensor:
    """Sampling weights of ICNegSampler: exp(lambda * iod + (1 - lambda) * conf), [K].

    iod_k = max_g |B_k n G_g| / |G_g| (the fraction of a GT covered by the candidate; mmdet "iof"
    with the GT first). conf_k = 5th column of boxes if present, else 0. Without GT, iod = 0.
    """
    conf = boxes[:, 4].float() if boxes.shape[1] > 4 else boxes.new_zeros(boxes.shape[0], dtype=torch.float32)
    if gt_boxes.shape[0] == 0:
        iod = torch.zeros_like(conf)
    else:
        iod = pairwise_iof(gt_boxes.float(), boxes[:, :4].float()).max(dim=0).values
    return torch.exp(iod_weight * iod + (1.0 - iod_weight) * conf)


class ICNegSampler:
    """The RPN sampler of SSPNet (ICNeg, docs/model.md): uniform positives, weighted negatives.

    Negatives are drawn without replacement with probability proportional to `icneg_weights`,
    which favours background anchors that cover part of a person (hard negatives). When the pool is
    not larger than the number needed, all of them are taken.
    """

    def __init__(self, num: int, pos_fraction: float, iod_weight: float = 0.6):
        self.num = int(num)
        self.pos_fraction = float(pos_fraction)
        self.iod_weight = float(iod_weight)

    def sample(self, assign: AssignResult, boxes: Tensor, gt_boxes: Tensor, gt_labels: Tensor) -> SamplingResult:
        pos_inds = random_choice(torch.nonzero(assign.gt_inds > 0).flatten(), int(self.num * self.pos_fraction))
        neg_pool = torch.nonzero(assign.gt_inds == 0).flatten()
        num_neg = self.num - pos_inds.numel()
        if neg_pool.numel() <= num_neg:
            neg_inds = neg_pool
        else:
            weights = icneg_weights(boxes[neg_pool], gt_boxes, self.iod_weight)
            neg_inds = neg_pool[torch.multinomial(weights, num_neg, replacement=False)]
        return _result(assign, boxes[:, :4], pos_inds, neg_inds)
