"""RPN proposals / loss, RoI head loss / decoding and the fixed-size detection output, on hand cases."""

import math

import pytest
import torch
import torch.nn.functional as F

from sspnet.models.anchors import AnchorGenerator
from sspnet.models.assigners import MaxIoUAssigner
from sspnet.models.postprocess import select_detections
from sspnet.models.roi_head import RoIHead, Shared2FCBBoxHead
from sspnet.models.rpn import RPNHead
from sspnet.models.samplers import ICNegSampler, RandomSampler


def make_rpn(num_samples=1000):
    return RPNHead(
        4,
        AnchorGenerator([4, 8], [2.0], [1.0]),
        MaxIoUAssigner(0.7, 0.3, 0.3, match_low_quality=True),
        ICNegSampler(num_samples, 0.5),
        nms_iou_thr=0.7,
    )


def test_proposals_top_k_per_level_drop_empty_boxes_and_nms_per_level():
    rpn = make_rpn()
    anchors = [
        torch.tensor([[0.0, 0, 10, 10], [0.5, 0.5, 10.5, 10.5], [50, 50, 60, 60], [5, 5, 5, 20]]),
        torch.tensor([[0.0, 0, 10, 10]]),
    ]
    objectness = [torch.tensor([[3.0, 2.0, 1.0, 4.0]]), torch.tensor([[0.5]])]
    deltas = [torch.zeros(1, 4, 4), torch.zeros(1, 1, 4)]
    boxes, scores, num_valid = rpn.proposals(objectness, deltas, anchors, (100, 100), nms_pre=3, max_proposals=4)
    # level 0 keeps its top 3 (4.0, 3.0, 2.0): the zero-width box is dropped, anchor 1 overlaps anchor 0
    # with IoU 0.82 > 0.7; the identical level-1 box survives because NMS runs per level.
    assert num_valid.tolist() == [2]
    assert boxes[0].tolist() == [[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert scores[0].tolist() == pytest.approx(
        [torch.sigmoid(torch.tensor(3.0)).item(), torch.sigmoid(torch.tensor(0.5)).item(), 0, 0]
    )


def test_proposals_are_decoded_and_clipped():
    rpn = make_rpn()
    anchors = [torch.tensor([[10.0, 10, 30, 30]]), torch.zeros(0, 4)]
    deltas = [torch.tensor([[[0.5, 0.0, math.log(3.0), 0.0]]]), torch.zeros(1, 0, 4)]
    boxes, _, num_valid = rpn.proposals([torch.ones(1, 1), torch.ones(1, 0)], deltas, anchors, (40, 45), 10, 2)
    # centre x 20 + 0.5 * 20 = 30, width 60 -> [0, 60] clipped to the image width 45
    assert num_valid.tolist() == [1] and boxes[0, 0].tolist() == pytest.approx([0.0, 10.0, 45.0, 30.0])


def test_rpn_loss_normalisation():
    rpn = make_rpn()
    anchors = [torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 2], [20, 20, 30, 30]]), torch.zeros(0, 4)]
    objectness = [torch.tensor([[0.3, -1.0, 2.0, -0.5], [1.0, 0.0, -2.0, 0.7]]), torch.zeros(2, 0)]
    deltas = [torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(0)), torch.zeros(2, 0, 4)]
    gt_boxes = [torch.tensor([[0.0, 0, 10, 10]]), torch.zeros(0, 4)]
    gt_labels = [torch.tensor([0]), torch.zeros(0, dtype=torch.long)]
    losses = rpn.loss(objectness, deltas, anchors, gt_boxes, gt_labels)
    # image 0: anchor 0 positive (IoU 1), 1 ignored (IoU 0.5), 2 and 3 negative; image 1: all negative.
    # normaliser: (max(1, 1) + max(2, 1)) + (max(0, 1) + max(4, 1)) = 8
    logits = torch.tensor([0.3, 2.0, -0.5, 1.0, 0.0, -2.0, 0.7])
    targets = torch.tensor([1.0, 0, 0, 0, 0, 0, 0])
    expected_cls = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / 8
    expected_bbox = deltas[0][0, 0].abs().sum() / 8  # the positive anchor equals its GT: target deltas 0
    assert losses["loss_rpn_cls"].item() == pytest.approx(expected_cls.item(), rel=1e-6)
    assert losses["loss_rpn_bbox"].item() == pytest.approx(expected_bbox.item(), rel=1e-6)


class FixedBoxHead(torch.nn.Module):
    """Stands in for Shared2FCBBoxHead: the same logits / deltas for every RoI."""

    num_classes = 2

    def __init__(self, logits, deltas):
        super().__init__()
        self.logits, self.deltas = torch.tensor(logits), torch.tensor(deltas)

    def forward(self, roi_features):
        r = roi_features.shape[0]
        return self.logits.expand(r, -1) + 0 * roi_features.sum(), self.deltas.expand(r, -1)


def make_roi_head(bbox_head, num_samples=512):
    return RoIHead(
        bbox_head,
        strides=(4, 8, 16, 32),
        output_size=7,
        sampling_ratio=0,
        finest_scale=56,
        assigner=MaxIoUAssigner(0.5, 0.5, 0.5, match_low_quality=False),
        sampler=RandomSampler(num_samples, 0.25, add_gt_as_proposals=True),
        bbox_stds=(0.1, 0.1, 0.2, 0.2),
    )


def pyramid(batch=1, channels=4, size=64):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(batch, channels, size // s, size // s, generator=g) for s in (4, 8, 16, 32, 64)]


def test_roi_head_detect_decodes_per_class_and_masks_padding():
    # class 0 / class 1 / background logits and class-specific deltas
    head = make_roi_head(FixedBoxHead([1.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]))
    proposals = torch.tensor([[[10.0, 10, 20, 30], [0, 0, 0, 0]]])
    valid = torch.tensor([[True, False]])
    boxes, scores, labels = head.detect(pyramid(), proposals, valid, (64, 64))
    softmax = torch.softmax(torch.tensor([1.0, 0.0, -1.0]), 0)
    assert scores[0].tolist() == pytest.approx([softmax[0].item(), softmax[1].item(), 0.0, 0.0])
    assert labels[0].tolist() == [0, 1, 0, 1]
    assert boxes[0, 0].tolist() == pytest.approx([10.0, 10.0, 20.0, 30.0])
    assert boxes[0, 1].tolist() == pytest.approx([11.0, 10.0, 21.0, 30.0])  # dx = 1 * 0.1 * width 10


def test_roi_head_loss_normalisation():
    torch.manual_seed(0)
    bbox_head = Shared2FCBBoxHead(4, 7, 16, num_classes=1)
    head = make_roi_head(bbox_head)
    features = pyramid()
    gt = torch.tensor([[10.0, 10.0, 30.0, 30.0]])
    proposals = torch.tensor([[10.0, 10, 30, 30], [10, 10, 30, 25], [10, 10, 30, 14], [40, 40, 60, 60]])
    losses = head.loss(features, [proposals], [gt], [torch.tensor([0])])
    # sampled: GT (prepended), proposal 0 (IoU 1), proposal 1 (IoU 0.75) positive; 2, 3 negative
    rois = torch.cat([torch.zeros(5, 1), torch.cat([gt, proposals[[0, 1, 2, 3]]])], 1)
    from sspnet.ops import multi_level_roi_align

    logits, deltas = bbox_head(multi_level_roi_align(features[:4], rois, (4, 8, 16, 32), 7))
    labels = torch.tensor([0, 0, 0, 1, 1])
    expected_cls = F.cross_entropy(logits, labels)
    # regression targets of the positives: GT and proposal 0 -> 0;
    # proposal 1: dy = 2.5 / 15 / 0.1, dh = ln(20 / 15) / 0.2
    targets = torch.tensor([[0.0, 0, 0, 0], [0, 0, 0, 0], [0, (2.5 / 15) / 0.1, 0, math.log(20 / 15) / 0.2]])
    expected_bbox = (deltas[:3] - targets).abs().sum() / 5
    assert losses["loss_cls"].item() == pytest.approx(expected_cls.item(), rel=1e-5)
    assert losses["loss_bbox"].item() == pytest.approx(expected_bbox.item(), rel=1e-5)
    expected_acc = (logits.argmax(1) == labels).float().mean().item() * 100
    assert losses["acc"].item() == pytest.approx(expected_acc)


def test_select_detections_fixed_size_soft_nms():
    boxes = torch.tensor([[[0.0, 0, 10, 10], [0, 0, 10, 20], [0, 0, 10, 20], [50, 50, 60, 60]]])
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.04]])
    labels = torch.tensor([[0, 0, 1, 0]])
    out = select_detections(
        boxes,
        scores,
        labels,
        score_thr=0.05,
        nms_method="linear",
        iou_thr=0.3,
        sigma=0.5,
        min_score=0.05,
        max_detections=5,
    )
    # box 1 overlaps box 0 (same class) with IoU 0.5 -> 0.8 * 0.5; box 2 has another class; box 3 is below 0.05
    assert out["num_dets"].tolist() == [[3]]
    assert out["scores"][0].tolist() == pytest.approx([0.9, 0.7, 0.4, 0.0, 0.0])
    assert out["labels"][0].tolist() == [0, 1, 0, -1, -1]
    assert out["boxes"][0, 2].tolist() == [0, 0, 10, 20] and (out["boxes"][0, 3:] == 0).all()
