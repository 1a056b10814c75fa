"""RoI head of the Faster R-CNN variant (mmdetection StandardRoIHead + Shared2FCBBoxHead)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sspnet.models.assigners import MaxIoUAssigner
from sspnet.models.box_coder import DeltaXYWHCoder
from sspnet.models.losses import l1_sum
from sspnet.models.samplers import RandomSampler


class Shared2FCBBoxHead(nn.Module):
    """flatten [R, C, S, S] -> fc -> ReLU -> fc -> ReLU -> fc_cls [R, num_classes + 1], fc_reg [R, 4 num_classes].

    Class index 0..num_classes-1 are objects (0 = person), the last index is background;
    regression is class-specific.
    """

    def __init__(self, in_channels: int, roi_size: int, fc_channels: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.shared_fcs = nn.ModuleList(
            [nn.Linear(in_channels * roi_size * roi_size, fc_channels), nn.Linear(fc_channels, fc_channels)]
        )
        self.fc_cls = nn.Linear(fc_channels, num_classes + 1)
        self.fc_reg = nn.Linear(fc_channels, 4 * num_classes)
        for fc in self.shared_fcs:
            nn.init.xavier_normal_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.fc_cls.weight, std=0.01)
        nn.init.zeros_(self.fc_cls.bias)
        nn.init.normal_(self.fc_reg.weight, std=0.001)
        nn.init.zeros_(self.fc_reg.bias)

    def forward(self, roi_features: Tensor) -> tuple[Tensor, Tensor]:
        x = roi_features.flatten(1)
        for fc in self.shared_fcs:
            x = F.relu(fc(x))
        return self.fc_cls(x), self.fc_reg(x)


class RoIHead(nn.Module):
    """Pools each RoI from one of P2..P5 (sspnet.ops.multi_level_roi_align) and classifies / refines it.

    Training: proposals are assigned (MaxIoU 0.5) and sampled (RandomSampler, GT added as
    proposals); loss_cls = softmax CE averaged over the sampled RoIs, loss_bbox = L1 on positive
    deltas divided by the number of sampled RoIs, acc = classification accuracy in %.
    """

    def __init__(
        self,
        bbox_head: Shared2FCBBoxHead,
        strides: Sequence[int],
        output_size: int,
        sampling_ratio: int,
        finest_scale: float,
        assigner: MaxIoUAssigner,
        sampler: RandomSampler,
        bbox_stds: Sequence[float],
    ):
        super().__init__()
        self.bbox_head = bbox_head
        self.strides = tuple(int(s) for s in strides)
        self.output_size = int(output_size)
        self.sampling_ratio = int(sampling_ratio)
        self.finest_scale = float(finest_scale)
        self.assigner = assigner
        self.sampler = sampler
        self.coder = DeltaXYWHCoder(stds=bbox_stds)

    @property
    def num_classes(self) -> int:
        return self.bbox_head.num_classes

    def pool(self, features: Sequence[Tensor], rois: Tensor) -> Tensor:
        """features: the pyramid (only the first len(strides) levels are used); rois [R, 5] -> [R, C, S, S]."""
        from sspnet.ops import multi_level_roi_align

        return multi_level_roi_align(
            list(features[: len(self.strides)]),
            rois,
            self.strides,
            (self.output_size, self.output_size),
            sampling_ratio=self.sampling_ratio,
            aligned=True,
            finest_scale=self.finest_scale,
        )

    def loss(
        self,
        features: Sequence[Tensor],
        proposals: Sequence[Tensor],
        gt_boxes: Sequence[Tensor],
        gt_labels: Sequence[Tensor],
    ) -> dict[str, Tensor]:
        """proposals: per image [P_i, 4] (detached), gt_boxes [G_i, 4], gt_labels [G_i]."""
        rois, labels, target_deltas, positive = [], [], [], []
        for i, (props, boxes, gt_cls) in enumerate(zip(proposals, gt_boxes, gt_labels)):
            assign = self.assigner.assign(props, boxes, gt_cls)
            sample = self.sampler.sample(assign, props, boxes, gt_cls)
            sampled = torch.cat([sample.pos_boxes, sample.neg_boxes])
            rois.append(torch.cat([sampled.new_full((len(sampled), 1), i), sampled], dim=1))
            num_pos, num_neg = sample.pos_inds.numel(), sample.neg_inds.numel()
            labels.append(torch.cat([sample.pos_labels, sample.pos_labels.new_full((num_neg,), self.num_classes)]))
            deltas = self.coder.encode(sample.pos_boxes, boxes[sample.pos_gt_inds])
            target_deltas.append(torch.cat([deltas, deltas.new_zeros(num_neg, 4)]))
            positive.append(torch.arange(num_pos + num_neg, device=sampled.device) < num_pos)
        rois = torch.cat(rois)
        labels = torch.cat(labels)
        target_deltas = torch.cat(target_deltas)
        positive = torch.cat(positive)

        cls_logits, reg = self.bbox_head(self.pool(features, rois))
        num_rois = max(len(rois), 1)
        loss_cls = F.cross_entropy(cls_logits, labels, reduction="sum") / num_rois
        pos_labels = labels[positive]
        pos_reg = reg.reshape(len(reg), -1, 4)[positive.nonzero().flatten(), pos_labels]
        loss_bbox = l1_sum(pos_reg, target_deltas[positive]) / num_rois
        acc = (cls_logits.argmax(dim=1) == labels).float().mean() * 100 if len(labels) else cls_logits.new_zeros(())
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox, "acc": acc.detach()}

    def detect(
        self, features: Sequence[Tensor], proposals: Tensor, valid: Tensor, image_size: tuple[int, int]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Fixed-size scoring of every proposal slot.

        proposals [N, P, 4], valid [N, P] bool (padding slots are scored 0) -> candidates for NMS:
        boxes [N, P*C, 4] (decoded per class, clipped to the image), scores [N, P*C] (softmax),
        labels [N, P*C] int64, C = num_classes.
        """
        n, p = proposals.shape[:2]
        batch_index = torch.arange(n, device=proposals.device, dtype=proposals.dtype)
        batch_index = batch_index[:, None, None].expand(n, p, 1)
        rois = torch.cat([batch_index, proposals], dim=2).reshape(n * p, 5)
        cls_logits, reg = self.bbox_head(self.pool(features, rois))
        c = self.num_classes
        scores = F.softmax(cls_logits, dim=1)[:, :c].reshape(n, p, c)
        scores = torch.where(valid[..., None], scores, torch.zeros_like(scores)).reshape(n, p * c)
        boxes = self.coder.decode(
            proposals[:, :, None, :].expand(n, p, c, 4), reg.reshape(n, p, c, 4), image_size
        ).reshape(n, p * c, 4)
        labels = torch.arange(c, device=proposals.device).repeat(n, p)
        return boxes, scores, labels
