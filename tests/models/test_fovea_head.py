"""FoveaBox targets, losses and decoding against hand cases, a loop reference and torchvision."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from sspnet.models.fovea import FoveaHead
from sspnet.models.losses import sigmoid_focal_loss_sum, smooth_l1_sum

STRIDES = (4, 8, 16, 32, 64)
EDGES = (8, 16, 32, 64, 128)
RANGES = ((1, 32), (8, 64), (16, 128), (32, 256), (64, 512))


def make_head(num_classes=1, centre_positive=False):
    return FoveaHead(num_classes, 8, 8, 1, STRIDES, EDGES, RANGES, sigma=0.4, centre_positive=centre_positive)


def sizes_for(height, width):
    return [(math.ceil(height / s), math.ceil(width / s)) for s in STRIDES]


def reference_targets(boxes, labels, feature_sizes, num_classes, sigma=0.4, centre_positive=False):
    """mmdet FoveaHead._get_target_single, written per box (largest painted first); with
    centre_positive the fovea is widened to include the cell holding the box centre."""
    out_labels, out_targets = [], []
    areas = [math.sqrt((b[2] - b[0]) * (b[3] - b[1])) for b in boxes]
    for (h, w), stride, edge, (low, high) in zip(feature_sizes, STRIDES, EDGES, RANGES):
        lab = np.full((h, w), num_classes)
        tgt = np.ones((h, w, 4))
        hits = [i for i, a in enumerate(areas) if low <= a <= high]
        hits.sort(key=lambda i: -areas[i])  # stable: equal sizes keep annotation order
        for i in hits:
            x1, y1, x2, y2 = (v / stride for v in boxes[i])
            hw, hh = 0.5 * (x2 - x1), 0.5 * (y2 - y1)
            left = min(max(math.ceil(x1 + (1 - sigma) * hw - 0.5), 0), w - 1)
            right = min(max(math.floor(x1 + (1 + sigma) * hw - 0.5), 0), w - 1)
            top = min(max(math.ceil(y1 + (1 - sigma) * hh - 0.5), 0), h - 1)
            down = min(max(math.floor(y1 + (1 + sigma) * hh - 0.5), 0), h - 1)
            if centre_positive:
                col = min(max(math.floor((x1 + x2) / 2), 0), w - 1)
                row = min(max(math.floor((y1 + y2) / 2), 0), h - 1)
                left, right, top, down = min(left, col), max(right, col), min(top, row), max(down, row)
            for r in range(top, down + 1):
                for c in range(left, right + 1):
                    x, y = (c + 0.5) * stride, (r + 0.5) * stride
                    lab[r, c] = labels[i]
                    gx1, gy1, gx2, gy2 = boxes[i]
                    tgt[r, c] = [(x - gx1) / edge, (y - gy1) / edge, (gx2 - x) / edge, (gy2 - y) / edge]
        out_labels.append(lab.reshape(-1))
        out_targets.append(np.log(np.clip(tgt, 1 / 16, 16)).reshape(-1, 4))
    return np.concatenate(out_labels), np.concatenate(out_targets)


def test_targets_hand_case():
    head = make_head()
    box = torch.tensor([[8.0, 8.0, 24.0, 24.0]])  # s = 16 -> levels 0, 1, 2; fovea only at level 0
    labels, targets = head.targets(sizes_for(64, 64), [box], [torch.tensor([0])])
    level0 = labels[0, : 16 * 16].reshape(16, 16)
    expected = torch.ones(16, 16, dtype=torch.long)
    expected[3:5, 3:5] = 0  # columns ceil(2 + 1.2 - 0.5) = 3 .. floor(2 + 2.8 - 0.5) = 4
    assert torch.equal(level0, expected)
    assert (labels[0, 16 * 16 :] == 1).all()  # empty fovea at levels 1 and 2, no hit at 3, 4
    point = targets[0, 3 * 16 + 3]  # cell (3, 3): centre (14, 14)
    assert point.tolist() == pytest.approx([math.log(0.75), math.log(0.75), math.log(1.25), math.log(1.25)])
    assert (targets[0, labels[0] == 1] == 0).all()  # log(1) elsewhere


def test_smaller_boxes_overwrite_larger_ones():
    head = make_head()
    big = [0.0, 0.0, 28.0, 28.0]  # s = 28, level 0 fovea columns 2..4
    small = [12.0, 12.0, 24.0, 24.0]  # s = 12, level 0 fovea column 4
    labels, _ = head.targets(sizes_for(64, 64), [torch.tensor([small, big])], [torch.tensor([1, 0])])
    level0 = labels[0, :256].reshape(16, 16)
    assert level0[4, 4] == 1 and level0[2, 2] == 0  # small (class 1) wins where both cover


def test_centre_positive_gives_every_tiny_box_a_point():
    box = torch.tensor([[9.0, 9.0, 12.0, 13.0]])  # 3 x 4 px: its sigma-0.4 fovea holds no stride-4 cell centre
    plain, _ = make_head().targets(sizes_for(32, 32), [box], [torch.tensor([0])])
    widened, _ = make_head(centre_positive=True).targets(sizes_for(32, 32), [box], [torch.tensor([0])])
    assert (plain[0] == 1).all()
    level0 = widened[0, :64].reshape(8, 8)
    expected = torch.ones(8, 8, dtype=torch.long)
    expected[2, 2] = 0  # centre (10.5, 11) lies in cell (row 2, col 2) of stride 4
    assert torch.equal(level0, expected) and (widened[0, 64:] == 1).all()


@pytest.mark.parametrize("centre_positive", [False, True])
def test_targets_match_loop_reference_on_random_boxes(centre_positive):
    rng = np.random.default_rng(0)
    head = make_head(num_classes=2, centre_positive=centre_positive)
    height, width = 96, 128
    batch_boxes, batch_labels = [], []
    for count in (0, 1, 6, 15, 4):
        xy = rng.uniform(0, 100, (count, 2))
        wh = rng.uniform(1, 90, (count, 2)) ** rng.uniform(0.3, 1)  # many tiny boxes too
        batch_boxes.append(np.concatenate([xy, xy + wh], 1).astype(np.float32))
        batch_labels.append(rng.integers(0, 2, count))
    batch_boxes[3][1] = batch_boxes[3][0]  # an exact duplicate: annotation order decides
    batch_labels[3][1] = 1 - batch_labels[3][0]
    labels, targets = head.targets(
        sizes_for(height, width),
        [torch.from_numpy(b) for b in batch_boxes],
        [torch.from_numpy(l) for l in batch_labels],
    )
    for i, (b, l) in enumerate(zip(batch_boxes, batch_labels)):
        ref_labels, ref_targets = reference_targets(
            b.tolist(), l.tolist(), sizes_for(height, width), 2, centre_positive=centre_positive
        )
        assert np.array_equal(labels[i].numpy(), ref_labels), i
        np.testing.assert_allclose(targets[i].numpy(), ref_targets, atol=1e-5)


def test_focal_loss_matches_torchvision():
    torch.manual_seed(0)
    logits = torch.randn(50, 3)
    labels = torch.randint(0, 4, (50,))  # 3 = background
    one_hot = F.one_hot(labels, 4)[:, :3].float()
    expected = torchvision.ops.sigmoid_focal_loss(logits, one_hot, alpha=0.4, gamma=1.5, reduction="sum")
    assert sigmoid_focal_loss_sum(logits, labels, 3, gamma=1.5, alpha=0.4).item() == pytest.approx(
        expected.item(), rel=1e-5
    )


def test_smooth_l1_matches_torch():
    torch.manual_seed(0)
    pred, target = torch.randn(40, 4) * 0.3, torch.randn(40, 4) * 0.3
    expected = F.smooth_l1_loss(pred, target, beta=0.11, reduction="sum")
    assert smooth_l1_sum(pred, target, 0.11).item() == pytest.approx(expected.item(), rel=1e-6)


def test_loss_normalisation():
    torch.manual_seed(0)
    head = make_head()
    sizes = sizes_for(64, 64)
    cls = [torch.randn(2, 1, h, w, requires_grad=True) for h, w in sizes]
    box = [torch.randn(2, 4, h, w, requires_grad=True) for h, w in sizes]
    gt_boxes = [torch.tensor([[8.0, 8.0, 24.0, 24.0]]), torch.zeros(0, 4)]
    gt_labels = [torch.tensor([0]), torch.zeros(0, dtype=torch.long)]
    losses = head.loss(cls, box, gt_boxes, gt_labels)
    labels, targets = head.targets(sizes, gt_boxes, gt_labels)
    flat_cls, flat_box = head.flatten(cls, box)
    pos = labels.reshape(-1) == 0
    one_hot = (labels.reshape(-1, 1) == 0).float()
    focal = torchvision.ops.sigmoid_focal_loss(flat_cls.reshape(-1, 1), one_hot, alpha=0.4, gamma=1.5, reduction="sum")
    smooth = F.smooth_l1_loss(flat_box.reshape(-1, 4)[pos], targets.reshape(-1, 4)[pos], beta=0.11, reduction="sum")
    assert pos.sum() == 4
    assert losses["loss_cls"].item() == pytest.approx(focal.item() / (4 + 2), rel=1e-5)
    assert losses["loss_bbox"].item() == pytest.approx(smooth.item() / 4, rel=1e-5)


def test_loss_without_any_object_is_finite_and_differentiable():
    head = make_head()
    sizes = sizes_for(64, 64)
    cls = [torch.randn(1, 1, h, w, requires_grad=True) for h, w in sizes]
    box = [torch.randn(1, 4, h, w, requires_grad=True) for h, w in sizes]
    losses = head.loss(cls, box, [torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)])
    assert losses["loss_bbox"].item() == 0.0
    (losses["loss_cls"] + losses["loss_bbox"]).backward()
    assert cls[0].grad is not None


def test_decode_hand_case():
    head = make_head()
    sizes = sizes_for(64, 64)
    cls = [torch.full((1, 1, h, w), -10.0) for h, w in sizes]
    cls[0][0, 0, 5, 7] = 3.0  # the best point: level 0, row 5, column 7 -> centre (30, 22)
    box = [torch.zeros(1, 4, h, w) for h, w in sizes]  # exp(0) = 1 base edge on every side
    box[0][0, :, 5, 7] = torch.tensor([0.0, math.log(2.0), 0.0, math.log(100.0)])
    boxes, scores, labels = head.detect(cls, box, (64, 64), nms_pre=3)
    assert boxes.shape == (1, 3 * 4 + 1, 4)  # top 3 per level, P6 has 1 point and scores.shape == boxes.shape[:2]
    best = scores[0].argmax()
    assert scores[0, best].item() == pytest.approx(torch.sigmoid(torch.tensor(3.0)).item())
    # x1 = 30 - 8, y1 = 22 - 16, x2 = 30 + 8, y2 = clip(22 + 800, max=63)
    assert boxes[0, best].tolist() == pytest.approx([22.0, 6.0, 38.0, 63.0])
    assert labels.dtype == torch.int64 and (labels == 0).all()


def test_head_init_biases_conv_cls_to_prior():
    head = make_head()
    assert head.conv_cls.bias.item() == pytest.approx(-math.log(99), rel=1e-6)
