"""The two SSPNet detectors: Faster R-CNN and FoveaBox (docs/model.md), plain nn.Modules.

Both share the input contract:
- eval:  model(images) with images uint8 [N, 3, H, W] RGB, H and W multiples of 32 ->
         {"num_dets" int32 [N, 1], "boxes" float32 [N, K, 4], "scores" float32 [N, K],
          "labels" int32 [N, K]} (runtime/contract.py; K = max_detections). Fixed shapes, no
         data-dependent Python control flow: this is the graph the ONNX exporter traces.
- train: model(images, targets), targets = N dicts {"boxes": float [G, 4] xyxy, "labels": int64 [G]}
         (G may be 0) -> dict of scalar losses (keys containing "loss"; total = their sum) and
         "acc" (Faster R-CNN, logged only).
Normalisation (mean / std of ImageNet on 0-255 RGB) happens inside the model. The model sees only
the padded input, so boxes are clipped to the input size (the original clipped to the unpadded size).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sspnet.models.anchors import AnchorGenerator
from sspnet.models.assigners import MaxIoUAssigner
from sspnet.models.attention import AttentionSupervision
from sspnet.models.backbone import ResNetBackbone
from sspnet.models.config import ModelConfig
from sspnet.models.fovea import FoveaHead
from sspnet.models.neck import FPN, SSFPN, FPNWithCAM
from sspnet.models.postprocess import select_detections
from sspnet.models.roi_head import RoIHead, Shared2FCBBoxHead
from sspnet.models.rpn import RPNHead
from sspnet.models.samplers import ICNegSampler, RandomSampler

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
SIZE_DIVISOR = 32
PYRAMID_STRIDES = (4, 8, 16, 32, 64)  # P2..P6


class SSPNetDetector(nn.Module):
    """Backbone + neck + attention supervision shared by both variants; subclasses add the head."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.backbone = ResNetBackbone(config.depth, config.frozen_stages, config.norm_eval)
        if config.pretrained:
            self.backbone.load_imagenet_weights(config.pretrained)
        neck_class = {"ssfpn": SSFPN, "fpn": FPN, "fpn_cam": FPNWithCAM}[config.neck]
        self.neck = neck_class(self.backbone.out_channels, config.neck_channels)
        self.attention_supervision = (
            None
            if config.attention_loss == "none"
            else AttentionSupervision(config.attention_loss, lamda=config.attention_lambda)
        )
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False)

    # ---- input checks ----------------------------------------------------------------------
    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 [N, 3, H, W] RGB -> normalised float32 [N, 3, H, W]."""
        if not isinstance(images, Tensor):
            raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.dtype != torch.uint8:
            raise TypeError(f"images must be uint8 RGB in 0-255, got dtype {images.dtype}")
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape [N, 3, H, W], got {list(images.shape)}")
        height, width = images.shape[-2:]
        if height % SIZE_DIVISOR or width % SIZE_DIVISOR:
            raise ValueError(
                f"image height and width must be multiples of {SIZE_DIVISOR} (pad bottom / right "
                f"with zeros before calling the model), got H={height} W={width}"
            )
        return (images.float() - self.pixel_mean) / self.pixel_std

    def _check_targets(self, targets, batch: int) -> tuple[list[Tensor], list[Tensor]]:
        if targets is None:
            raise ValueError("in train mode the model needs targets: model(images, targets)")
        if not isinstance(targets, (list, tuple)) or len(targets) != batch:
            got = len(targets) if isinstance(targets, (list, tuple)) else type(targets).__name__
            raise ValueError(f"targets must be a list of {batch} dicts (one per image), got {got}")
        device = self.pixel_mean.device
        boxes, labels = [], []
        for i, target in enumerate(targets):
            if not isinstance(target, dict) or "boxes" not in target or "labels" not in target:
                raise ValueError(f"targets[{i}] must be a dict with 'boxes' and 'labels'")
            b = torch.as_tensor(target["boxes"], dtype=torch.float32, device=device)
            lab = torch.as_tensor(target["labels"], device=device)
            if b.numel() == 0:
                b = b.reshape(0, 4)
            if b.dim() != 2 or b.shape[1] != 4:
                raise ValueError(f"targets[{i}]['boxes'] must have shape [G, 4], got {list(b.shape)}")
            if lab.dim() != 1 or lab.shape[0] != b.shape[0] or lab.is_floating_point():
                raise ValueError(
                    f"targets[{i}]['labels'] must be an integer tensor of shape [{b.shape[0]}], "
                    f"got {lab.dtype} {list(lab.shape)}"
                )
            if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) >= self.config.num_classes):
                raise ValueError(
                    f"targets[{i}]['labels'] must lie in [0, {self.config.num_classes}), "
                    f"got {lab.min().item()}..{lab.max().item()}"
                )
            boxes.append(b)
            labels.append(lab.long())
        return boxes, labels

    # ---- shared pieces ---------------------------------------------------------------------
    def extract_features(self, images: Tensor) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        """uint8 images -> ((P2..P6), (A0..A3) or ())."""
        return self.neck(self.backbone(self.preprocess(images)))

    def attention_losses(self, attention: Sequence[Tensor], gt_boxes: Sequence[Tensor]) -> dict[str, Tensor]:
        if self.attention_supervision is None or not attention:
            return {}
        targets = self.attention_supervision.targets(attention, gt_boxes)
        return self.attention_supervision.losses(attention, targets)

    def _select(self, boxes: Tensor, scores: Tensor, labels: Tensor) -> dict[str, Tensor]:
        c = self.config
        return select_detections(
            boxes,
            scores,
            labels,
            score_thr=c.score_thr,
            nms_method=c.nms_method,
            iou_thr=c.nms_iou_thr,
            sigma=c.nms_sigma,
            min_score=c.nms_min_score,
            max_detections=c.max_detections,
        )

    def forward(self, images: Tensor, targets: list[dict] | None = None) -> dict[str, Tensor]:
        features, attention = self.extract_features(images)
        image_size = (int(images.shape[-2]), int(images.shape[-1]))
        if self.training:
            gt_boxes, gt_labels = self._check_targets(targets, images.shape[0])
            losses = self.attention_losses(attention, gt_boxes)
            losses.update(self.head_losses(features, gt_boxes, gt_labels, image_size))
            return losses
        if targets is not None:
            raise ValueError("targets are only used in train mode; call model.train() to get losses")
        return self.detect(features, image_size)

    def head_losses(self, features, gt_boxes, gt_labels, image_size) -> dict[str, Tensor]:
        raise NotImplementedError

    def detect(self, features, image_size) -> dict[str, Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def detect_multiscale(self, images: Sequence[Tensor], factors: Sequence[float]) -> dict[str, Tensor]:
        """The original's multi-scale test (docs/evaluation.md) of one batch seen at several scales.

        images[s]: uint8 [N, 3, H_s, W_s], the batch resized by factors[s] (then padded to /32).
        Returns the forward() dict with boxes in the unscaled images' pixels. The variants merge
        differently, as the original does: see merge_scales.
        """
        if self.training:
            raise RuntimeError("detect_multiscale is for inference: call model.eval() first")
        if not images or len(images) != len(factors):
            raise ValueError(
                f"need one scale factor per image batch, got {len(images)} batches, {len(factors)} factors"
            )
        if len({int(batch.shape[0]) for batch in images}) != 1:
            raise ValueError(f"every scale needs the same images, got batch sizes {[int(b.shape[0]) for b in images]}")
        scaled = []
        for batch, factor in zip(images, factors):
            if not factor > 0:
                raise ValueError(f"scale factors must be > 0, got {factor}")
            features, _ = self.extract_features(batch)
            scaled.append((features, (int(batch.shape[-2]), int(batch.shape[-1])), float(factor)))
        return self.merge_scales(scaled)

    def merge_scales(self, scaled) -> dict[str, Tensor]:
        """scaled: [(features, image_size, factor)] per scale -> detections in unscaled pixels."""
        raise NotImplementedError


class FasterSSPNet(SSPNetDetector):
    """SSPNet with an RPN + RoI head (module names = mmdetection checkpoint keys: rpn_head, roi_head.bbox_head)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = config
        if c.rpn_sampler == "icneg":
            rpn_sampler = ICNegSampler(c.rpn_num_samples, c.rpn_pos_fraction)
        else:
            rpn_sampler = RandomSampler(c.rpn_num_samples, c.rpn_pos_fraction, add_gt_as_proposals=False)
        self.rpn_head = RPNHead(
            c.neck_channels,
            AnchorGenerator(PYRAMID_STRIDES, c.anchor_scales, c.anchor_ratios),
            MaxIoUAssigner(c.rpn_pos_iou_thr, c.rpn_neg_iou_thr, c.rpn_min_pos_iou, match_low_quality=True),
            rpn_sampler,
            nms_iou_thr=c.rpn_nms_iou_thr,
        )
        self.roi_head = RoIHead(
            Shared2FCBBoxHead(c.neck_channels, c.roi_output_size, c.roi_fc_channels, c.num_classes),
            strides=PYRAMID_STRIDES[:4],
            output_size=c.roi_output_size,
            sampling_ratio=c.roi_sampling_ratio,
            finest_scale=c.roi_finest_scale,
            assigner=MaxIoUAssigner(c.roi_pos_iou_thr, c.roi_neg_iou_thr, c.roi_min_pos_iou, match_low_quality=False),
            sampler=RandomSampler(c.roi_num_samples, c.roi_pos_fraction, add_gt_as_proposals=True),
            bbox_stds=c.roi_bbox_stds,
        )

    def head_losses(self, features, gt_boxes, gt_labels, image_size):
        c = self.config
        objectness, deltas = self.rpn_head(features)
        anchors = self.rpn_head.anchors(features)
        losses = self.rpn_head.loss(objectness, deltas, anchors, gt_boxes, gt_labels)
        with torch.no_grad():
            proposals, _, num_valid = self.rpn_head.proposals(
                [o.detach() for o in objectness],
                [d.detach() for d in deltas],
                anchors,
                image_size,
                c.rpn_train_nms_pre,
                c.rpn_train_max_proposals,
            )
        per_image = [p[: int(n)] for p, n in zip(proposals, num_valid)]
        losses.update(self.roi_head.loss(features, per_image, gt_boxes, gt_labels))
        return losses

    def detect(self, features, image_size):
        c = self.config
        objectness, deltas = self.rpn_head(features)
        anchors = self.rpn_head.anchors(features)
        proposals, _, num_valid = self.rpn_head.proposals(
            objectness, deltas, anchors, image_size, c.rpn_test_nms_pre, c.rpn_test_max_proposals
        )
        valid = torch.arange(proposals.shape[1], device=proposals.device)[None, :] < num_valid[:, None]
        boxes, scores, labels = self.roi_head.detect(features, proposals, valid, image_size)
        return self._select(boxes, scores, labels)

    def merge_scales(self, scaled):
        """mmdet's two-stage aug test: RPN proposals of every scale mapped back, concatenated, one
        class-agnostic NMS (the RPN IoU) keeping the test number of proposals; every scale scores
        these same proposals; boxes and class scores averaged over the scales; then the usual
        score filter, (soft-)NMS and top max_detections."""
        from sspnet.ops import batched_nms

        c = self.config
        all_proposals, all_scores = [], []
        for features, image_size, factor in scaled:
            objectness, deltas = self.rpn_head(features)
            anchors = self.rpn_head.anchors(features)
            proposals, scores, _ = self.rpn_head.proposals(
                objectness, deltas, anchors, image_size, c.rpn_test_nms_pre, c.rpn_test_max_proposals
            )
            all_proposals.append(proposals / factor)
            all_scores.append(scores)  # padding rows score 0 and never survive the NMS below
        proposals = torch.cat(all_proposals, dim=1)
        keep, _, _ = batched_nms(
            proposals,
            torch.cat(all_scores, dim=1),
            torch.zeros_like(proposals[..., 0], dtype=torch.long),
            iou_threshold=c.rpn_nms_iou_thr,
            method="hard",
            score_threshold=0.0,
            max_output=c.rpn_test_max_proposals,
        )
        valid = keep >= 0
        proposals = proposals.gather(1, keep.clamp(min=0)[..., None].expand(-1, -1, 4))
        proposals = torch.where(valid[..., None], proposals, torch.zeros_like(proposals))
        mean_boxes, mean_scores = 0.0, 0.0
        for features, image_size, factor in scaled:
            boxes, scores, labels = self.roi_head.detect(features, proposals * factor, valid, image_size)
            mean_boxes = mean_boxes + boxes / factor / len(scaled)
            mean_scores = mean_scores + scores / len(scaled)
        return self._select(mean_boxes, mean_scores, labels)


class FoveaSSPNet(SSPNetDetector):
    """SSPNet with a FoveaBox head (module name = mmdetection checkpoint key: bbox_head)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = config
        self.bbox_head = FoveaHead(
            num_classes=c.num_classes,
            in_channels=c.neck_channels,
            feat_channels=c.fovea_feat_channels,
            stacked_convs=c.fovea_stacked_convs,
            strides=PYRAMID_STRIDES,
            base_edges=c.fovea_base_edges,
            scale_ranges=c.fovea_scale_ranges,
            sigma=c.fovea_sigma,
            focal_gamma=c.fovea_focal_gamma,
            focal_alpha=c.fovea_focal_alpha,
            smooth_l1_beta=c.fovea_smooth_l1_beta,
            centre_positive=c.fovea_centre_positive,
        )

    def head_losses(self, features, gt_boxes, gt_labels, image_size):
        cls_scores, box_preds = self.bbox_head(features)
        return self.bbox_head.loss(cls_scores, box_preds, gt_boxes, gt_labels)

    def detect(self, features, image_size):
        cls_scores, box_preds = self.bbox_head(features)
        boxes, scores, labels = self.bbox_head.detect(cls_scores, box_preds, image_size, self.config.fovea_nms_pre)
        return self._select(boxes, scores, labels)

    def merge_scales(self, scaled):
        """mmdet's single-stage aug test: every scale's candidates (before NMS) mapped back and
        concatenated, not averaged; then the usual score filter, (soft-)NMS and top max_detections."""
        all_boxes, all_scores, all_labels = [], [], []
        for features, image_size, factor in scaled:
            cls_scores, box_preds = self.bbox_head(features)
            boxes, scores, labels = self.bbox_head.detect(cls_scores, box_preds, image_size, self.config.fovea_nms_pre)
            all_boxes.append(boxes / factor)
            all_scores.append(scores)
            all_labels.append(labels)
        return self._select(torch.cat(all_boxes, dim=1), torch.cat(all_scores, dim=1), torch.cat(all_labels, dim=1))


def build_detector(config: ModelConfig) -> SSPNetDetector:
    """A detector for a validated config."""
    return FasterSSPNet(config) if config.variant == "faster_rcnn" else FoveaSSPNet(config)
