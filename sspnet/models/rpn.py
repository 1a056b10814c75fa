"""Region proposal network of the Faster R-CNN variant (mmdetection 2.19 RPNHead, as the original config sets it)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sspnet.models.anchors import AnchorGenerator
from sspnet.models.assigners import MaxIoUAssigner
from sspnet.models.box_coder import DeltaXYWHCoder
from sspnet.models.losses import l1_sum


class RPNHead(nn.Module):
    """Shared over P2..P6: rpn_conv (3x3 + ReLU) -> rpn_cls (A objectness logits), rpn_reg (4A deltas).

    Proposals: per level the top `nms_pre` anchors by score are decoded (clipped to the image),
    boxes with zero width / height are dropped, hard NMS runs independently per level (batched NMS
    keyed by level) and the global top `max_proposals` by score are kept.
    """

    def __init__(
        self,
        in_channels: int,
        anchor_generator: AnchorGenerator,
        assigner: MaxIoUAssigner,
        sampler,
        nms_iou_thr: float = 0.7,
    ):
        super().__init__()
        num_anchors = anchor_generator.num_anchors
        self.rpn_conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(in_channels, num_anchors, 1)
        self.rpn_reg = nn.Conv2d(in_channels, num_anchors * 4, 1)
        self.anchor_generator = anchor_generator
        self.assigner = assigner
        self.sampler = sampler
        self.coder = DeltaXYWHCoder()
        self.nms_iou_thr = float(nms_iou_thr)
        for conv in (self.rpn_conv, self.rpn_cls, self.rpn_reg):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, features: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """features (P2..P6) -> objectness logits per level [N, H*W*A] and deltas [N, H*W*A, 4].

        Flattened in anchor order ((y * W + x) * A + a), see AnchorGenerator.
        """
        objectness, deltas = [], []
        for x in features:
            x = F.relu(self.rpn_conv(x))
            n = x.shape[0]
            objectness.append(self.rpn_cls(x).permute(0, 2, 3, 1).reshape(n, -1))
            deltas.append(self.rpn_reg(x).permute(0, 2, 3, 1).reshape(n, -1, 4))
        return objectness, deltas

    def anchors(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Per level [H*W*A, 4] anchors for these feature maps."""
        return self.anchor_generator.grid_anchors([tuple(f.shape[-2:]) for f in features], device=features[0].device)

    def loss(
        self,
        objectness: Sequence[Tensor],
        deltas: Sequence[Tensor],
        anchors: Sequence[Tensor],
        gt_boxes: Sequence[Tensor],
        gt_labels: Sequence[Tensor],
    ) -> dict[str, Tensor]:
        """Sigmoid BCE over sampled anchors and L1 on positive deltas, both divided by the number of
        sampled anchors (per image max(pos, 1) + max(neg, 1), summed over the batch, as mmdet)."""
        all_anchors = torch.cat(list(anchors))
        all_objectness = torch.cat(list(objectness), dim=1)
        all_deltas = torch.cat(list(deltas), dim=1)
        logits, logit_targets, pred_deltas, target_deltas = [], [], [], []
        num_samples = 0
        for i, (boxes, labels) in enumerate(zip(gt_boxes, gt_labels)):
            assign = self.assigner.assign(all_anchors, boxes, labels)
            sample = self.sampler.sample(assign, all_anchors, boxes, labels)
            pos, neg = sample.pos_inds, sample.neg_inds
            num_samples += max(pos.numel(), 1) + max(neg.numel(), 1)
            logits += [all_objectness[i, pos], all_objectness[i, neg]]
            logit_targets += [all_objectness.new_ones(pos.numel()), all_objectness.new_zeros(neg.numel())]
            pred_deltas.append(all_deltas[i, pos])
            target_deltas.append(self.coder.encode(all_anchors[pos], boxes[sample.pos_gt_inds]))
        loss_cls = F.binary_cross_entropy_with_logits(torch.cat(logits), torch.cat(logit_targets), reduction="sum")
        loss_bbox = l1_sum(torch.cat(pred_deltas), torch.cat(target_deltas))
        return {"loss_rpn_cls": loss_cls / num_samples, "loss_rpn_bbox": loss_bbox / num_samples}

    def proposals(
        self,
        objectness: Sequence[Tensor],
        deltas: Sequence[Tensor],
        anchors: Sequence[Tensor],
        image_size: tuple[int, int],
        nms_pre: int,
        max_proposals: int,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """-> (boxes [N, P, 4], scores [N, P], num_valid int64 [N]) with P = max_proposals.

        Fixed shapes throughout (exportable): rows past num_valid are zero boxes with score 0.
        """
        from sspnet.ops import batched_nms

        level_boxes, level_scores, level_ids = [], [], []
        for level, (logits, level_deltas, level_anchors) in enumerate(zip(objectness, deltas, anchors)):
            k = min(nms_pre, logits.shape[1])
            scores, index = logits.sigmoid().topk(k, dim=1)
            picked_deltas = level_deltas.gather(1, index[..., None].expand(-1, -1, 4))
            boxes = self.coder.decode(level_anchors[index], picked_deltas, image_size)
            level_boxes.append(boxes)
            level_scores.append(scores)
            level_ids.append(torch.full_like(index, level))
        boxes = torch.cat(level_boxes, dim=1)
        scores = torch.cat(level_scores, dim=1)
        # min_bbox_size 0: boxes without area never become proposals (score 0 fails the strict > 0).
        has_area = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
        scores = torch.where(has_area, scores, torch.zeros_like(scores))
        keep, kept_scores, num_valid = batched_nms(
            boxes,
            scores,
            torch.cat(level_ids, dim=1),
            iou_threshold=self.nms_iou_thr,
            method="hard",
            score_threshold=0.0,
            max_output=max_proposals,
        )
        valid = keep >= 0
        proposals = boxes.gather(1, keep.clamp(min=0)[..., None].expand(-1, -1, 4))
        proposals = torch.where(valid[..., None], proposals, torch.zeros_like(proposals))
        kept_scores = torch.where(valid, kept_scores, torch.zeros_like(kept_scores))
        return proposals, kept_scores, num_valid
