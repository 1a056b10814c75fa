"""Anchors, the delta coder, MaxIoUAssigner and the samplers against the original settings and hand cases."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sspnet.models.anchors import AnchorGenerator
from sspnet.models.assigners import MaxIoUAssigner
from sspnet.models.box_coder import DeltaXYWHCoder
from sspnet.models.samplers import ICNegSampler, RandomSampler, icneg_weights

SPEC_GENERATOR = AnchorGenerator([4, 8, 16, 32, 64], [1.5, 2.5, 3.7, 8], [0.4, 0.8, 1.4])

# The original config's stride-4 anchors (w x h), ratio-major.
SPEC_STRIDE4_WH = [
    (9.5, 3.8),
    (15.8, 6.3),
    (23.4, 9.4),
    (50.6, 20.2),
    (6.7, 5.4),
    (11.2, 8.9),
    (16.5, 13.2),
    (35.8, 28.6),
    (5.1, 7.1),
    (8.5, 11.8),
    (12.5, 17.5),
    (27.0, 37.9),
]


# ---- anchors -------------------------------------------------------------------------------
def test_stride4_anchor_sizes_match_the_spec_table():
    base = SPEC_GENERATOR.base_anchors(4)
    wh = torch.stack([base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]], 1)
    assert np.allclose(wh.numpy(), SPEC_STRIDE4_WH, atol=0.051)
    sqrt_area = torch.sqrt(wh[:, 0] * wh[:, 1]).reshape(3, 4)
    assert torch.allclose(sqrt_area, torch.tensor([6.0, 10.0, 14.8, 32.0]).expand(3, 4), atol=1e-4)
    assert torch.allclose(base[:, :2], -base[:, 2:])  # centred on the cell corner (offset 0)


def test_grid_order_is_location_major_then_anchor():
    anchors = SPEC_GENERATOR.grid_anchors([(3, 5), (2, 3), (1, 2), (1, 1), (1, 1)])
    assert [a.shape[0] for a in anchors] == [3 * 5 * 12, 2 * 3 * 12, 2 * 12, 12, 12]
    level = anchors[0].reshape(3, 5, 12, 4)
    base = SPEC_GENERATOR.base_anchors(4)
    y, x, a = 2, 3, 7
    centre = torch.tensor([x * 4.0, y * 4.0, x * 4.0, y * 4.0])
    assert torch.allclose(level[y, x, a], base[a] + centre)
    assert torch.allclose(
        anchors[1].reshape(2, 3, 12, 4)[1, 2, 0], SPEC_GENERATOR.base_anchors(8)[0] + torch.tensor([16.0, 8, 16, 8])
    )


def test_grid_needs_one_size_per_stride():
    with pytest.raises(ValueError, match="5 anchor strides"):
        SPEC_GENERATOR.grid_anchors([(2, 2)])


# ---- delta coder --------------------------------------------------------------------------
box_strategy = st.tuples(st.floats(0, 500), st.floats(0, 500), st.floats(1, 300), st.floats(1, 300)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]]
)


@given(reference=box_strategy, target=box_strategy)
def test_coder_round_trip(reference, target):
    coder = DeltaXYWHCoder(stds=(0.1, 0.1, 0.2, 0.2))
    ref, tgt = torch.tensor([reference], dtype=torch.float64), torch.tensor([target], dtype=torch.float64)
    deltas = coder.encode(ref, tgt)
    if deltas[:, 2:].abs().max() * 0.2 < coder.max_ratio:  # within the clamp
        assert torch.allclose(coder.decode(ref.float(), deltas.float()), tgt.float(), rtol=1e-4, atol=1e-3)


def test_coder_encode_matches_the_formula():
    coder = DeltaXYWHCoder(stds=(0.1, 0.1, 0.2, 0.2))
    deltas = coder.encode(torch.tensor([[0.0, 0.0, 10.0, 20.0]]), torch.tensor([[2.0, 4.0, 22.0, 14.0]]))
    expected = [(12 - 5) / 10 / 0.1, (9 - 10) / 20 / 0.1, math.log(20 / 10) / 0.2, math.log(10 / 20) / 0.2]
    assert deltas[0].tolist() == pytest.approx(expected, rel=1e-6)


def test_coder_clamps_log_scale_and_clips_to_the_image():
    coder = DeltaXYWHCoder()
    box = torch.tensor([[40.0, 40.0, 50.0, 50.0]])
    decoded = coder.decode(box, torch.tensor([[0.0, 0.0, 10.0, -10.0]]))
    max_ratio = abs(math.log(16 / 1000))
    assert (decoded[0, 2] - decoded[0, 0]).item() == pytest.approx(10 * math.exp(max_ratio), rel=1e-5)
    assert (decoded[0, 3] - decoded[0, 1]).item() == pytest.approx(10 * math.exp(-max_ratio), abs=1e-4)
    clipped = coder.decode(box, torch.tensor([[0.0, 0.0, 10.0, 0.0]]), image_size=(60, 100))
    assert clipped[0].tolist() == pytest.approx([0.0, 40.0, 100.0, 50.0])


# ---- MaxIoUAssigner -----------------------------------------------------------------------
def reference_assign(boxes, gts, pos, neg, min_pos, low_quality):
    """mmdet 2.19 MaxIoUAssigner written as loops (gt_max_assign_all=True)."""

    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / max(union, 1e-6)

    if not gts:
        return [0] * len(boxes)
    overlaps = [[iou(g, b) for b in boxes] for g in gts]
    result = []
    for k in range(len(boxes)):
        column = [overlaps[g][k] for g in range(len(gts))]
        best = max(column)
        result.append(column.index(best) + 1 if best >= pos else (0 if best < neg else -1))
    if low_quality:
        for g in range(len(gts)):
            gt_best = max(overlaps[g])
            if gt_best >= min_pos:
                for k in range(len(boxes)):
                    if overlaps[g][k] == gt_best:
                        result[k] = g + 1
    return result


def test_assigner_hand_case():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # IoU 1 -> positive
            [0.0, 0.0, 10.0, 5.0],  # IoU 0.5 -> ignore
            [0.0, 0.0, 10.0, 2.0],  # IoU 0.2 -> negative
            [20.0, 20.0, 30.0, 30.0],  # IoU 0 -> negative
        ]
    )
    result = MaxIoUAssigner(0.7, 0.3, 0.3, match_low_quality=True).assign(boxes, gt, torch.tensor([0]))
    assert result.gt_inds.tolist() == [1, -1, 0, 0]
    assert result.labels.tolist() == [0, -1, -1, -1]
    assert result.max_overlaps.tolist() == pytest.approx([1.0, 0.5, 0.2, 0.0])


def test_low_quality_matches_claim_every_tied_best_box_and_later_gts_win():
    gts = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 110.0, 110.0]])
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 5.0],  # IoU 0.5 with GT 0 and GT 1 (tie) -> claimed by the later GT 1
            [0.0, 5.0, 10.0, 10.0],  # also IoU 0.5 -> claimed too (gt_max_assign_all)
            [100.0, 100.0, 110.0, 101.0],  # IoU 0.1 with GT 2 < min_pos_iou -> stays negative
        ]
    )
    labels = torch.tensor([0, 0, 0])
    result = MaxIoUAssigner(0.7, 0.3, 0.3, match_low_quality=True).assign(boxes, gts, labels)
    assert result.gt_inds.tolist() == [2, 2, 0]
    without = MaxIoUAssigner(0.7, 0.3, 0.3, match_low_quality=False).assign(boxes, gts, labels)
    assert without.gt_inds.tolist() == [-1, -1, 0]


@given(
    boxes=st.lists(box_strategy, min_size=1, max_size=12),
    gts=st.lists(box_strategy.map(lambda b: [round(v) for v in b]), min_size=0, max_size=5),
    low_quality=st.booleans(),
)
def test_assigner_matches_loop_reference(boxes, gts, low_quality):
    boxes = [[round(v) for v in b] for b in boxes]  # integer boxes make IoU ties exact
    result = MaxIoUAssigner(0.5, 0.4, 0.3, low_quality).assign(
        torch.tensor(boxes, dtype=torch.float64),
        torch.tensor(gts, dtype=torch.float64).reshape(-1, 4),
        torch.zeros(len(gts), dtype=torch.long),
    )
    assert result.gt_inds.tolist() == reference_assign(boxes, gts, 0.5, 0.4, 0.3, low_quality)


def test_assigner_without_gt_or_boxes():
    assigner = MaxIoUAssigner(0.7, 0.3, 0.3, True)
    result = assigner.assign(torch.rand(5, 4), torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert result.gt_inds.tolist() == [0] * 5
    empty = assigner.assign(torch.zeros(0, 4), torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([0]))
    assert empty.gt_inds.numel() == 0


# ---- samplers ------------------------------------------------------------------------------
def grid_boxes(n, size=10.0):
    xs = torch.arange(n, dtype=torch.float32) * size
    return torch.stack([xs, torch.zeros(n), xs + size, torch.full((n,), size)], 1)


def test_random_sampler_fractions_and_gt_as_proposals():
    torch.manual_seed(0)
    boxes = grid_boxes(300)
    gts = boxes[[5, 50, 100]].clone()
    assign = MaxIoUAssigner(0.5, 0.5, 0.5, False).assign(boxes, gts, torch.zeros(3, dtype=torch.long))
    sample = RandomSampler(num=64, pos_fraction=0.25, add_gt_as_proposals=True).sample(
        assign, boxes, gts, torch.zeros(3, dtype=torch.long)
    )
    assert sample.boxes.shape[0] == 303  # GT prepended
    assert sorted(sample.pos_inds.tolist()) == [0, 1, 2, 8, 53, 103]  # GT rows + the 3 matching boxes
    assert torch.equal(sample.pos_boxes[sample.pos_inds < 3], gts[sample.pos_gt_inds[sample.pos_inds < 3]])
    assert sample.neg_inds.numel() == 64 - 6 and len(set(sample.neg_inds.tolist())) == 58
    assert not set(sample.neg_inds.tolist()) & set(sample.pos_inds.tolist())


def test_random_sampler_caps_positives():
    boxes = grid_boxes(10)
    assign = MaxIoUAssigner(0.5, 0.5, 0.5, False).assign(boxes, boxes.clone(), torch.zeros(10, dtype=torch.long))
    sample = RandomSampler(num=8, pos_fraction=0.25, add_gt_as_proposals=False).sample(
        assign, boxes, boxes, torch.zeros(10, dtype=torch.long)
    )
    assert sample.pos_inds.numel() == 2 and sample.neg_inds.numel() == 0


def test_icneg_weights_hand_case():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    boxes = torch.tensor([[0.0, 0.0, 5.0, 10.0], [0.0, 0.0, 100.0, 100.0], [50.0, 50.0, 60.0, 60.0]])
    # iod = intersection / GT area: 0.5, 1.0 (anchor covers the whole GT), 0
    assert icneg_weights(boxes, gt).tolist() == pytest.approx([math.exp(0.3), math.exp(0.6), 1.0], rel=1e-6)
    with_conf = torch.cat([boxes, torch.tensor([[1.0], [0.0], [0.5]])], 1)
    assert icneg_weights(with_conf, gt).tolist() == pytest.approx(
        [math.exp(0.3 + 0.4), math.exp(0.6), math.exp(0.2)], rel=1e-6
    )
    assert icneg_weights(boxes, torch.zeros(0, 4)).tolist() == [1.0, 1.0, 1.0]


def test_icneg_sampler_prefers_negatives_that_cover_a_person():
    torch.manual_seed(0)
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    # 50 negatives covering the whole GT (iod 1, IoU 0.01) and 50 far away (iod 0)
    covering = torch.tensor([[0.0, 0.0, 100.0, 100.0]]).repeat(50, 1)
    far = torch.tensor([[500.0, 500.0, 510.0, 510.0]]).repeat(50, 1)
    boxes = torch.cat([covering, far])
    labels = torch.zeros(1, dtype=torch.long)
    sampler = ICNegSampler(num=1, pos_fraction=0.5)
    assign = MaxIoUAssigner(0.7, 0.3, 0.3, False).assign(boxes, gt, labels)
    assert (assign.gt_inds == 0).all()
    hits = 0
    for _ in range(400):
        sample = sampler.sample(assign, boxes, gt, labels)
        hits += int(sample.neg_inds[0] < 50)
    expected = math.exp(0.6) / (math.exp(0.6) + 1)  # 0.646 for one draw
    assert abs(hits / 400 - expected) < 0.08


def test_icneg_sampler_takes_the_whole_small_pool_and_survives_zero_gt():
    boxes = grid_boxes(20)
    assign = MaxIoUAssigner(0.7, 0.3, 0.3, True).assign(boxes, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    sample = ICNegSampler(num=256, pos_fraction=0.5).sample(
        assign, boxes, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)
    )
    assert sample.pos_inds.numel() == 0 and sorted(sample.neg_inds.tolist()) == list(range(20))
    big = grid_boxes(1000)
    assign = MaxIoUAssigner(0.7, 0.3, 0.3, True).assign(big, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    sample = ICNegSampler(num=256, pos_fraction=0.5).sample(
        assign, big, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)
    )
    assert sample.neg_inds.numel() == 256 and len(set(sample.neg_inds.tolist())) == 256
