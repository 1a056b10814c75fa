"""Attention supervision (v1 / v2) against hand computations and a loop-and-cv2 reference."""

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from sspnet.models.attention import (
    AttentionSupervision,
    box_pixel_rects,
    dice_loss,
    downsample_bilinear,
    last_covering_box,
    level_membership,
    weighted_bce,
)


# ---- an independent reference: the original algorithm, per box, on a NumPy canvas, cv2 resize ----
def reference_targets(boxes, height, width, version):
    """Per level (0..3) the target map, painted box by box on a float64 canvas as the original Heatmap module does."""
    maps = []
    for level in range(4):
        canvas = np.zeros((height, width), np.float64)
        for x1, y1, x2, y2 in boxes:
            left, top = int(x1), int(y1)
            right = int(np.clip(math.ceil(x2), 0, width - 1))
            bottom = int(np.clip(math.ceil(y2), 0, height - 1))
            area = (right - left) * (bottom - top)
            size = math.sqrt(area) if area >= 0 else float("nan")
            low, high = 2 ** (level + 2), 2 ** (level + 5)
            positive = low < size < high or (level == 0 and size < low) or (level == 3 and size > low)
            if version == "v1":
                canvas[top:bottom, left:right] = 1.0 if positive else -1.0
            elif positive:
                for row in range(top, bottom):
                    for col in range(left, right):
                        lx, rx = col + 1 - left, right - (col + 1)
                        ty, by = row + 1 - top, bottom - (row + 1)
                        canvas[row, col] = math.sqrt(min(lx, rx) / max(lx, rx) * min(ty, by) / max(ty, by))
        size = (width // 2 ** (level + 2), height // 2 ** (level + 2))
        maps.append(cv2.resize(canvas, size, interpolation=cv2.INTER_LINEAR))
    return maps


def attention_maps(batch, height, width, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(batch, 1, height // 2 ** (l + 2), width // 2 ** (l + 2), generator=g) for l in range(4)]


def random_boxes(rng, count, height, width):
    x1 = rng.uniform(0, width - 2, count)
    y1 = rng.uniform(0, height - 2, count)
    w = rng.uniform(0.5, 120, count)
    h = rng.uniform(0.5, 120, count)
    return np.stack([x1, y1, np.minimum(x1 + w, width + 5), np.minimum(y1 + h, height + 5)], 1).astype(np.float32)


# ---- resize ------------------------------------------------------------------------------------
@given(
    factor=st.sampled_from([4, 8, 16, 32]),
    out_h=st.integers(1, 5),
    out_w=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_interpolate_matches_cv2_inter_linear_for_integer_downscale(factor, out_h, out_w, seed):
    rng = np.random.default_rng(seed)
    canvas = rng.choice([-1.0, 0.0, 1.0, 0.37], size=(out_h * factor, out_w * factor)).astype(np.float32)
    expected = cv2.resize(canvas, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    got = downsample_bilinear(torch.from_numpy(canvas)[None], (out_h, out_w))[0, 0].numpy()
    np.testing.assert_allclose(got, expected.reshape(out_h, out_w), atol=1e-6)


# ---- level rule and rectangles ------------------------------------------------------------
def test_level_membership_quirks():
    sizes = torch.tensor([3.0, 4.0, 5.0, 8.0, 32.0, 33.0, 300.0, 5000.0])
    member = level_membership(sizes)
    expected = [
        [True, False, False, False],  # s < 4 -> level 0
        [False, False, False, False],  # s == 4 exactly: -1 at level 0 (and nowhere else)
        [True, False, False, False],
        [True, False, False, False],  # 8: not > 8 for level 1
        [False, True, True, False],  # 32: not < 32 (level 0), not > 32 (level 3)
        [False, True, True, True],
        [False, False, False, True],  # 300 > 256: level 3 has no upper bound
        [False, False, False, True],
    ]
    assert member.tolist() == expected
    assert not level_membership(torch.tensor([float("nan")])).any()


def test_pixel_rects_truncate_ceil_and_clip_to_last_pixel():
    rects = box_pixel_rects(torch.tensor([[1.7, 2.2, 5.1, 6.0], [10.0, 0.0, 64.0, 40.0]]), height=32, width=64)
    assert rects.tolist() == [[1, 2, 6, 6], [10, 0, 63, 31]]


def test_later_boxes_overwrite_earlier_ones():
    rects = torch.tensor([[[0, 0, 4, 4], [2, 2, 6, 6], [0, 0, 1, 1]]])
    winner = last_covering_box(rects, torch.ones(1, 3, dtype=torch.bool), 8, 8)[0]
    expected = torch.full((8, 8), -1)
    expected[0:4, 0:4] = 0
    expected[2:6, 2:6] = 1
    expected[0:1, 0:1] = 2
    assert torch.equal(winner, expected)
    # an ineligible box paints nothing and so does not overwrite
    eligible = torch.tensor([[True, False, True]])
    winner = last_covering_box(rects, eligible, 8, 8)[0]
    assert winner[3, 3] == 0 and winner[5, 5] == -1


# ---- targets: hand cases -------------------------------------------------------------------
def test_v1_targets_hand_case_aligned_box():
    # 32x32 input, box s = 8: level 0 object; -1 ("another scale") at levels 1-3.
    att = attention_maps(1, 32, 32)
    targets = AttentionSupervision("v1").targets(att, [torch.tensor([[8.0, 8.0, 16.0, 16.0]])])
    level0 = torch.zeros(8, 8)
    level0[2:4, 2:4] = 1.0  # output pixel i samples canvas rows 4i+1, 4i+2
    assert torch.equal(targets[0][0, 0], level0)
    level1 = torch.zeros(4, 4)
    level1[1, 1] = -1.0  # rows 11, 12 inside the box
    assert torch.equal(targets[1][0, 0], level1)
    level2 = torch.zeros(2, 2)
    level2[0, 0] = -0.25  # rows 7, 8 / cols 7, 8: one of four samples inside
    assert torch.allclose(targets[2][0, 0], level2)
    assert torch.allclose(targets[3][0, 0], torch.tensor([[-0.25]]))  # rows 15, 16


def test_size_exactly_four_is_negative_at_level_zero():
    att = attention_maps(1, 32, 32)
    targets = AttentionSupervision("v1").targets(att, [torch.tensor([[4.0, 4.0, 8.0, 8.0]])])
    assert targets[0][0, 0, 1, 1] == -1.0  # samples rows/cols 5, 6 inside the box


def test_v2_centerness_hand_case():
    # box 0..5 x 0..5 (s = 5) in a 32x32 canvas: per column c, L = c + 1, R = 4 - c.
    supervision = AttentionSupervision("v2")
    att = attention_maps(1, 32, 32)
    targets = supervision.targets(att, [torch.tensor([[0.0, 0.0, 5.0, 5.0]])])
    ratio = [1 / 4, 2 / 3, 2 / 3, 1 / 4, 0.0]
    # level 0 pixel (0, 0) averages canvas rows/cols 1, 2
    expected = np.mean([math.sqrt(ratio[r] * ratio[c]) for r in (1, 2) for c in (1, 2)])
    assert targets[0][0, 0, 0, 0].item() == pytest.approx(expected, abs=1e-6)
    assert (targets[0] >= 0).all() and (targets[1] == 0).all()  # v2: no -1, not a level-1 object


def test_v2_does_not_paint_other_scale_objects_over_this_scale():
    att = attention_maps(1, 64, 64)
    big_then_small = [torch.tensor([[0.0, 0.0, 40.0, 40.0], [8.0, 8.0, 16.0, 16.0]])]
    v1 = AttentionSupervision("v1").targets(att, big_then_small)
    v2 = AttentionSupervision("v2").targets(att, big_then_small)
    # level 1: the big box (s = 40) is positive; v1 overwrites it with the small box's -1, v2 does not
    assert v1[1][0, 0, 1, 1] < 0
    assert v2[1][0, 0, 1, 1] > 0


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_targets_match_reference_for_a_batch_of_six(version):
    rng = np.random.default_rng(3)
    height, width = 96, 128
    counts = [0, 1, 3, 7, 12, 2]
    boxes = [random_boxes(rng, n, height, width) for n in counts]
    boxes[5][0] = [10.0, 10.0, 10.0, 30.0]  # zero width
    boxes[4][0] = [20.0, 20.0, 5.0, 40.0]  # inverted
    att = attention_maps(len(counts), height, width)
    targets = AttentionSupervision(version).targets(att, [torch.from_numpy(b) for b in boxes])
    for level, target in enumerate(targets):
        assert target.shape == att[level].shape and target.dtype == torch.float32
        for i, b in enumerate(boxes):
            expected = reference_targets(b.tolist(), height, width, version)[level]
            np.testing.assert_allclose(target[i, 0].numpy(), expected, atol=1e-5, err_msg=f"level {level} image {i}")


def test_targets_with_no_boxes_are_zero():
    att = attention_maps(2, 64, 64)
    for version in ("v1", "v2"):
        targets = AttentionSupervision(version).targets(att, [torch.zeros(0, 4), torch.zeros(0, 4)])
        assert all((t == 0).all() for t in targets)


def test_targets_reject_wrong_number_of_box_lists():
    with pytest.raises(ValueError, match="box lists"):
        AttentionSupervision("v1").targets(attention_maps(2, 32, 32), [torch.zeros(0, 4)])


def test_unknown_version_is_rejected():
    with pytest.raises(ValueError, match="v3"):
        AttentionSupervision("v3")


# ---- pixel selection ---------------------------------------------------------------------
def test_selection_with_positives_keeps_three_hard_negatives_per_positive():
    gt = torch.tensor([[1.0, -1.0, 0, 0, 0, 0, 0, 0]])
    pred = torch.tensor([[0.1, 0.2, 0.9, 0.3, 0.8, 0.7, 0.05, 0.6]])
    weights = AttentionSupervision("v1").pixel_weights(pred, gt)
    # k = min(3 * 1, 6) = 3 -> background preds 0.9, 0.8, 0.7; the negative weighs 3
    assert weights.tolist() == [[1, 3, 1, 0, 1, 1, 0, 0]]


def test_selection_without_positives_keeps_five_percent():
    gt = torch.zeros(1, 40)
    gt[0, 0] = -0.5
    pred = torch.arange(40, dtype=torch.float32)[None] / 40
    weights = AttentionSupervision("v1").pixel_weights(pred, gt)
    expected = torch.zeros(1, 40)
    expected[0, 38:] = 1  # int(0.05 * 40) = 2 highest background scores
    expected[0, 0] = 3
    assert torch.equal(weights, expected)


def test_selection_tiny_map_rounds_to_zero_and_selects_everything():
    gt = torch.zeros(1, 16)  # int(0.05 * 16) = 0 -> threshold falls to the minimum (original quirk)
    pred = torch.rand(1, 16)
    assert torch.equal(AttentionSupervision("v1").pixel_weights(pred, gt), torch.ones(1, 16))


def test_selection_ties_at_threshold_are_all_kept():
    gt = torch.tensor([[1.0, 0, 0, 0, 0, 0, 0, 0]])
    pred = torch.tensor([[0.0, 0.5, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1]])
    weights = AttentionSupervision("v1").pixel_weights(pred, gt)
    assert weights.tolist() == [[1, 1, 1, 1, 1, 0, 0, 0]]


def test_selection_without_background_pixels_does_not_crash():
    supervision = AttentionSupervision("v1")
    gt = torch.tensor([[1.0, 0.5, -1.0, -1.0], [-1.0, -1.0, -1.0, -1.0]])
    weights = supervision.pixel_weights(torch.rand(2, 4), gt)
    assert weights.tolist() == [[1, 1, 3, 3], [3, 3, 3, 3]]


# ---- losses ------------------------------------------------------------------------------
def test_weighted_bce_matches_hand_computation():
    pred = torch.tensor([[0.9, 0.2, 0.6], [0.3, 0.5, 0.99]])
    target = torch.tensor([[1.0, 0.0, 0.5], [0.0, 0.0, 1.0]])
    weights = torch.tensor([[1.0, 3.0, 0.0], [1.0, 0.0, 1.0]])
    terms = [
        1 * -math.log(0.9),
        3 * -math.log(0.8),
        1 * -math.log(0.7),
        1 * -math.log(0.99),
    ]
    assert weighted_bce(pred, target, weights).item() == pytest.approx(sum(terms) / 4, rel=1e-5)


def test_weighted_bce_empty_selection_is_zero():
    assert weighted_bce(torch.rand(1, 5), torch.rand(1, 5), torch.zeros(1, 5)).item() == 0.0


def test_dice_matches_hand_computation():
    pred = torch.tensor([[0.5, 0.25, 0.9, 0.1], [0.3, 0.3, 0.3, 0.3]])
    gt = torch.tensor([[1.0, 0.4, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0]])
    # image 0: positives are pixels 0, 1 -> a = 0.75 + 1, b = 0.25 + 0.0625 + 1, c = 2 + 1
    first = 1 - 2 * 1.75 / (1.3125 + 3)
    # image 1: no positives -> a = b = c = 1 -> 1 - 2 / 2 = 0
    assert dice_loss(pred, gt).tolist() == pytest.approx([first, 0.0], rel=1e-6)


@pytest.mark.parametrize("version,lamda", [("v1", 0.01), ("v2", 1e-4)])
def test_losses_combine_levels_as_the_original(version, lamda):
    supervision = AttentionSupervision(version)
    assert supervision.lamda == lamda
    att = [a.requires_grad_() for a in attention_maps(5, 64, 64, seed=1)]
    boxes = [
        torch.tensor([[4.0, 4.0, 20.0, 28.0]]),
        torch.zeros(0, 4),
        torch.tensor([[30.0, 2.0, 33.0, 6.0]]),
        torch.tensor([[0.0, 0.0, 63.0, 63.0]]),
        torch.tensor([[10.0, 10.0, 50.0, 12.0]]),
    ]
    targets = supervision.targets(att, boxes)
    losses = supervision.losses(att, targets)
    expected_reg, expected_seg = 0.0, 0.0
    for a, t in zip(att, targets):
        pred, gt = a.detach().flatten(1), t.flatten(1)
        w = supervision.pixel_weights(pred, gt)
        m = (w > 0).float()
        bce = F.binary_cross_entropy(pred * m, gt.clamp(min=0) * m, reduction="none")
        expected_reg += lamda * float((w * bce).sum() / m.sum())
        expected_seg += float(dice_loss(pred, gt).mean())
    assert losses["loss_reg"].item() == pytest.approx(expected_reg, rel=1e-5)
    assert losses["loss_seg"].item() == pytest.approx(expected_seg, rel=1e-5)
    (losses["loss_reg"] + losses["loss_seg"]).backward()
    assert all(a.grad is not None and torch.isfinite(a.grad).all() for a in att)
