"""FoveaBox head of the FoveaBox variant (mmdetection 2.19 FoveaHead with the SSPNet settings)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sspnet.models.attention import pad_boxes
from sspnet.models.losses import sigmoid_focal_loss_sum, smooth_l1_sum
from sspnet.models.neck import ConvModule

# Regression targets are distances / base edge, clamped to this range before the log.
TARGET_MIN, TARGET_MAX = 1.0 / 16, 16.0


def cell_centres(height: int, width: int, stride: int, device=None) -> tuple[Tensor, Tensor]:
    """Point coordinates ((j + 0.5) * stride, (i + 0.5) * stride) of a level: x [H, W], y [H, W]."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * stride
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return x, y


class FoveaHead(nn.Module):
    """Shared over P2..P6: cls branch (stacked 3x3 conv + ReLU -> conv_cls, C logits) and reg branch
    (stacked 3x3 conv + ReLU -> conv_reg, 4 log-distances l, t, r, b in units of the base edge)."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int,
        stacked_convs: int,
        strides: Sequence[int],
        base_edges: Sequence[float],
        scale_ranges: Sequence[Sequence[float]],
        sigma: float = 0.4,
        focal_gamma: float = 1.5,
        focal_alpha: float = 0.4,
        smooth_l1_beta: float = 0.11,
        centre_positive: bool = False,
    ):
        super().__init__()
        if not len(strides) == len(base_edges) == len(scale_ranges):
            raise ValueError(
                f"strides, base_edges and scale_ranges need one entry per level, got "
                f"{len(strides)}, {len(base_edges)}, {len(scale_ranges)}"
            )
        self.num_classes = num_classes
        self.strides = tuple(int(s) for s in strides)
        self.base_edges = tuple(float(e) for e in base_edges)
        self.scale_ranges = tuple((float(lo), float(hi)) for lo, hi in scale_ranges)
        self.sigma = float(sigma)
        self.focal_gamma = float(focal_gamma)
        self.focal_alpha = float(focal_alpha)
        self.smooth_l1_beta = float(smooth_l1_beta)
        self.centre_positive = bool(centre_positive)
        channels = [in_channels] + [feat_channels] * stacked_convs
        self.cls_convs = nn.ModuleList(
            [ConvModule(channels[i], feat_channels, 3, padding=1, relu=True) for i in range(stacked_convs)]
        )
        self.reg_convs = nn.ModuleList(
            [ConvModule(channels[i], feat_channels, 3, padding=1, relu=True) for i in range(stacked_convs)]
        )
        self.conv_cls = nn.Conv2d(channels[-1], num_classes, 3, padding=1)
        self.conv_reg = nn.Conv2d(channels[-1], 4, 3, padding=1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)
        nn.init.constant_(self.conv_cls.bias, -math.log((1 - 0.01) / 0.01))

    def forward(self, features: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """features (P2..P6) -> class logits per level [N, C, H, W] and log box distances [N, 4, H, W]."""
        cls_scores, box_preds = [], []
        for x in features:
            cls_feat, reg_feat = x, x
            for conv in self.cls_convs:
                cls_feat = conv(cls_feat)
            for conv in self.reg_convs:
                reg_feat = conv(reg_feat)
            cls_scores.append(self.conv_cls(cls_feat))
            box_preds.append(self.conv_reg(reg_feat))
        return cls_scores, box_preds

    # ---- training targets ------------------------------------------------------------------
    def targets(
        self, feature_sizes: Sequence[tuple[int, int]], gt_boxes: Sequence[Tensor], gt_labels: Sequence[Tensor]
    ) -> tuple[Tensor, Tensor]:
        """Per point class labels [N, M] (num_classes = background) and regression targets [N, M, 4].

        M = sum_l H_l W_l, levels concatenated, each level flattened row-major. An object of size
        s = sqrt(w h) goes to every level with low <= s <= high; its positive points are the
        central "fovea" (sigma) of the box; smaller objects overwrite larger ones. With
        `centre_positive`, the cell holding the box centre is always positive too: a 4 px person on
        the stride-8 level otherwise covers no cell centre three times in four and is never learned.
        """
        device = gt_boxes[0].device if len(gt_boxes) else None
        boxes, valid = pad_boxes(gt_boxes, device)
        labels = torch.full(valid.shape, self.num_classes, dtype=torch.long, device=boxes.device)
        for i, lab in enumerate(gt_labels):
            labels[i, : len(lab)] = lab.to(boxes.device).long()
        sizes = torch.sqrt((boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]))
        # Paint order: largest first (stable), so the last painter = the smallest box wins a point.
        paint_rank = torch.empty_like(labels)
        order = torch.sort(-sizes, dim=1, stable=True).indices
        paint_rank.scatter_(1, order, torch.arange(sizes.shape[1], device=boxes.device).expand_as(order))

        level_labels, level_targets = [], []
        for (height, width), stride, edge, (low, high) in zip(
            feature_sizes, self.strides, self.base_edges, self.scale_ranges
        ):
            hit = valid & (sizes >= low) & (sizes <= high)  # [N, G]
            scaled = boxes / stride
            half_w = 0.5 * (scaled[..., 2] - scaled[..., 0])
            half_h = 0.5 * (scaled[..., 3] - scaled[..., 1])
            left = torch.ceil(scaled[..., 0] + (1 - self.sigma) * half_w - 0.5).long().clamp(0, width - 1)
            right = torch.floor(scaled[..., 0] + (1 + self.sigma) * half_w - 0.5).long().clamp(0, width - 1)
            top = torch.ceil(scaled[..., 1] + (1 - self.sigma) * half_h - 0.5).long().clamp(0, height - 1)
            bottom = torch.floor(scaled[..., 1] + (1 + self.sigma) * half_h - 0.5).long().clamp(0, height - 1)
            if self.centre_positive:
                centre_col = torch.floor(scaled[..., 0] + half_w).long().clamp(0, width - 1)
                centre_row = torch.floor(scaled[..., 1] + half_h).long().clamp(0, height - 1)
                left, right = torch.minimum(left, centre_col), torch.maximum(right, centre_col)
                top, bottom = torch.minimum(top, centre_row), torch.maximum(bottom, centre_row)
            cols = torch.arange(width, device=boxes.device)
            rows = torch.arange(height, device=boxes.device)
            in_cols = (cols >= left[..., None]) & (cols <= right[..., None])  # [N, G, W]
            in_rows = (rows >= top[..., None]) & (rows <= bottom[..., None]) & hit[..., None]  # [N, G, H]
            covers = in_rows[..., :, None] & in_cols[..., None, :]  # [N, G, H, W]
            rank = torch.where(covers, paint_rank[..., None, None].int(), -1)
            best_rank, winner = rank.max(dim=1)  # [N, H, W]
            positive = best_rank >= 0
            n = boxes.shape[0]
            winner = winner.reshape(n, -1)
            point_labels = labels.gather(1, winner)
            point_labels = torch.where(
                positive.reshape(n, -1), point_labels, torch.full_like(point_labels, self.num_classes)
            )
            x, y = cell_centres(height, width, stride, boxes.device)
            x, y = x.reshape(1, -1), y.reshape(1, -1)
            box = boxes.gather(1, winner[..., None].expand(-1, -1, 4))  # [N, H*W, 4]
            distances = torch.stack([x - box[..., 0], y - box[..., 1], box[..., 2] - x, box[..., 3] - y], dim=-1) / edge
            distances = torch.where(positive.reshape(n, -1, 1), distances, torch.ones_like(distances))
            level_labels.append(point_labels)
            level_targets.append(torch.log(distances.clamp(min=TARGET_MIN, max=TARGET_MAX)))
        return torch.cat(level_labels, dim=1), torch.cat(level_targets, dim=1)

    @staticmethod
    def flatten(cls_scores: Sequence[Tensor], box_preds: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Per-level [N, C, H, W] / [N, 4, H, W] -> [N, M, C] / [N, M, 4] in the targets' point order."""
        n = cls_scores[0].shape[0]
        cls = torch.cat([c.permute(0, 2, 3, 1).reshape(n, -1, c.shape[1]) for c in cls_scores], dim=1)
        box = torch.cat([b.permute(0, 2, 3, 1).reshape(n, -1, 4) for b in box_preds], dim=1)
        return cls, box

    def loss(
        self,
        cls_scores: Sequence[Tensor],
        box_preds: Sequence[Tensor],
        gt_boxes: Sequence[Tensor],
        gt_labels: Sequence[Tensor],
    ) -> dict[str, Tensor]:
        """loss_cls = focal loss summed over all points / (num_pos + num_images);
        loss_bbox = smooth-L1 over positive points / num_pos (0 without positives)."""
        sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        labels, targets = self.targets(sizes, gt_boxes, gt_labels)
        cls, box = self.flatten(cls_scores, box_preds)
        labels = labels.to(cls.device).reshape(-1)
        targets = targets.to(box.device).reshape(-1, 4)
        cls = cls.reshape(-1, self.num_classes)
        box = box.reshape(-1, 4)
        positive = labels < self.num_classes
        num_pos = int(positive.sum())
        num_images = cls_scores[0].shape[0]
        loss_cls = sigmoid_focal_loss_sum(cls, labels, self.num_classes, self.focal_gamma, self.focal_alpha)
        loss_bbox = smooth_l1_sum(box[positive], targets[positive], self.smooth_l1_beta) / max(num_pos, 1)
        return {"loss_cls": loss_cls / (num_pos + num_images), "loss_bbox": loss_bbox}

    # ---- inference -------------------------------------------------------------------------
    def detect(
        self, cls_scores: Sequence[Tensor], box_preds: Sequence[Tensor], image_size: tuple[int, int], nms_pre: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Fixed-size candidates for NMS: boxes [N, M*C, 4], scores [N, M*C], labels [N, M*C] int64.

        Per level the top `nms_pre` points by best class score; box = point -/+ base_edge * exp(pred),
        clipped to [0, W-1] x [0, H-1].
        """
        height, width = image_size
        all_boxes, all_scores = [], []
        for cls, pred, stride, edge in zip(cls_scores, box_preds, self.strides, self.base_edges):
            n, c, h, w = cls.shape
            scores = cls.permute(0, 2, 3, 1).reshape(n, h * w, c).sigmoid()
            pred = pred.permute(0, 2, 3, 1).reshape(n, h * w, 4)
            x, y = cell_centres(h, w, stride, cls.device)
            x, y = x.reshape(1, -1).expand(n, -1), y.reshape(1, -1).expand(n, -1)
            k = min(nms_pre, h * w)
            index = scores.max(dim=2).values.topk(k, dim=1).indices  # [N, k]
            scores = scores.gather(1, index[..., None].expand(-1, -1, c))
            dist = pred.gather(1, index[..., None].expand(-1, -1, 4)).exp() * edge
            x, y = x.gather(1, index), y.gather(1, index)
            boxes = torch.stack(
                [
                    (x - dist[..., 0]).clamp(min=0, max=width - 1),
                    (y - dist[..., 1]).clamp(min=0, max=height - 1),
                    (x + dist[..., 2]).clamp(min=0, max=width - 1),
                    (y + dist[..., 3]).clamp(min=0, max=height - 1),
                ],
                dim=-1,
            )
            all_boxes.append(boxes[:, :, None, :].expand(n, k, c, 4).reshape(n, k * c, 4))
            all_scores.append(scores.reshape(n, k * c))
        boxes = torch.cat(all_boxes, dim=1)
        scores = torch.cat(all_scores, dim=1)
        num_classes = cls_scores[0].shape[1]
        labels = torch.arange(num_classes, device=boxes.device).repeat(boxes.shape[0], boxes.shape[1] // num_classes)
        return boxes, scores, labels
