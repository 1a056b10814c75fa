"""sspnet.ops.batched_nms against independent references.

- hard NMS: torchvision.ops.nms / batched_nms (distinct scores, so ties cannot matter), and the
  plain NumPy reference (tests/ops/nms_reference.py) for the tie rule and for degenerate boxes
  (where the documented semantics differ from torchvision: clamped areas, NaN coordinates);
- soft-NMS (linear, gaussian): the NumPy reference, written from the paper's formulas;
- hand-computed cases for thresholds, min_score, padding and empty inputs;
- hypothesis properties on random inputs;
- CUDA against CPU when a GPU is present.

torchvision always runs on the CPU here: its CUDA kernel may fuse multiply-adds, which can move an
IoU by one rounding step across the threshold; its CPU kernel does the same operations as ours.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision
from devices import CUDA_AVAILABLE, DEVICES
from hypothesis import given
from hypothesis import strategies as st
from ops import nms_reference as ref

from sspnet.ops import batched_nms


def random_boxes(num, seed, dtype=torch.float32, extent=200.0, max_size=40.0):
    """[num, 4] valid boxes (x2 > x1, y2 > y1) and [num] distinct scores in (0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=gen, dtype=torch.float64) * extent
    wh = torch.rand(num, 2, generator=gen, dtype=torch.float64) * max_size + 1.0
    boxes = torch.cat([xy, xy + wh], dim=1).to(dtype)
    scores = (torch.randperm(num, generator=gen).to(torch.float64) + 1.0) / (num + 1.0)
    return boxes, scores.to(dtype)


def valid_part(keep, scores_after, num_valid):
    count = int(num_valid)
    return keep[:count], scores_after[:count]


def assert_padding(keep, scores_after, num_valid):
    count = int(num_valid)
    assert torch.all(keep[count:] == -1)
    assert torch.all(scores_after[count:] == 0)
    assert torch.all(keep[:count] >= 0)


# ---------------------------------------------------------------- hard NMS vs torchvision


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("iou_threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_hard_matches_torchvision_nms(device, iou_threshold):
    boxes, scores = random_boxes(600, seed=1)
    keep, kept_scores, num_valid = batched_nms(
        boxes.to(device), scores.to(device), iou_threshold=iou_threshold, max_output=600
    )
    expected = torchvision.ops.nms(boxes, scores, iou_threshold)
    keep, kept_scores = valid_part(keep, kept_scores, num_valid)
    assert torch.equal(keep.cpu(), expected)  # same set, same order
    assert torch.equal(kept_scores.cpu(), scores[expected])
    assert keep.dtype == torch.int64 and num_valid.dtype == torch.int64


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("label_dtype", [torch.int64, torch.int32, torch.int16, torch.uint8])
def test_hard_class_aware_matches_torchvision_batched_nms(device, label_dtype):
    boxes, scores = random_boxes(800, seed=2)
    labels = torch.randint(0, 7, (800,), generator=torch.Generator().manual_seed(3))
    keep, kept_scores, num_valid = batched_nms(
        boxes.to(device),
        scores.to(device),
        labels.to(label_dtype).to(device),
        iou_threshold=0.4,
        max_output=800,
    )
    expected = torchvision.ops.batched_nms(boxes, scores, labels, 0.4)
    keep, _ = valid_part(keep, kept_scores, num_valid)
    assert torch.equal(keep.cpu(), expected)
    # class-agnostic keeps fewer: different classes do suppress each other there
    agnostic = batched_nms(boxes.to(device), scores.to(device), None, iou_threshold=0.4, max_output=800)[2]
    assert int(agnostic) == len(torchvision.ops.nms(boxes, scores, 0.4)) < len(expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("score_threshold", [0.25, 0.5, 0.9])
def test_hard_score_threshold_matches_torchvision_on_filtered_boxes(device, score_threshold):
    boxes, scores = random_boxes(500, seed=4)
    labels = torch.randint(0, 3, (500,), generator=torch.Generator().manual_seed(5))
    mask = scores > score_threshold
    subset = torch.nonzero(mask).flatten()
    expected = subset[torchvision.ops.batched_nms(boxes[mask], scores[mask], labels[mask], 0.5)]
    keep, kept_scores, num_valid = batched_nms(
        boxes.to(device),
        scores.to(device),
        labels.to(device),
        iou_threshold=0.5,
        score_threshold=score_threshold,
        max_output=500,
    )
    assert torch.equal(valid_part(keep, kept_scores, num_valid)[0].cpu(), expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("orientation", ["wide", "tall"])
@pytest.mark.parametrize("method", ["hard", "linear"])
def test_elongated_boxes(device, orientation, method):
    """Wide boxes stacked vertically (and tall ones side by side): the CPU kernel then searches
    overlaps along the other axis; the result must not change."""
    gen = torch.Generator().manual_seed(30)
    num = 400
    along = torch.arange(num, dtype=torch.float32) * 2.0 + torch.rand(num, generator=gen)
    across = torch.rand(num, generator=gen) * 20.0
    long_side = 300.0 + torch.rand(num, generator=gen) * 50.0
    boxes = torch.stack([across, along, across + long_side, along + 5.0], dim=1)
    if orientation == "tall":
        boxes = boxes[:, [1, 0, 3, 2]]
    _, scores = random_boxes(num, seed=31)
    keep, kept_scores, num_valid = batched_nms(
        boxes.to(device), scores.to(device), iou_threshold=0.3, method=method, max_output=num
    )
    keep, kept_scores = valid_part(keep, kept_scores, num_valid)
    if method == "hard":
        assert torch.equal(keep.cpu(), torchvision.ops.nms(boxes, scores, 0.3))
    else:
        ref_keep, ref_scores = ref.soft_nms(boxes.numpy(), scores.numpy(), 0.3, "linear")
        np.testing.assert_array_equal(keep.cpu().numpy(), ref_keep)
        np.testing.assert_allclose(kept_scores.cpu().numpy(), ref_scores, atol=1e-5)


def test_hard_float64_matches_torchvision():
    boxes, scores = random_boxes(700, seed=6, dtype=torch.float64)
    keep, kept_scores, num_valid = batched_nms(boxes, scores, iou_threshold=0.5, max_output=700)
    assert kept_scores.dtype == torch.float64
    expected = torchvision.ops.nms(boxes, scores, 0.5)
    assert torch.equal(valid_part(keep, kept_scores, num_valid)[0], expected)


def test_hard_20000_boxes_smoke():
    """Many boxes, no 4096 cap: same kept boxes as torchvision (in well under a second)."""
    boxes, scores = random_boxes(20_000, seed=7, extent=2000.0)
    labels = torch.randint(0, 3, (20_000,), generator=torch.Generator().manual_seed(8))
    keep, _, num_valid = batched_nms(boxes, scores, labels, iou_threshold=0.5, max_output=20_000)
    expected = torchvision.ops.batched_nms(boxes, scores, labels, 0.5)
    assert int(num_valid) == len(expected) > 4096
    assert torch.equal(keep[: int(num_valid)], expected)


def test_hard_equal_scores_keep_lower_index_first():
    """The tie rule: equal scores -> lower index first; checked against the NumPy reference."""
    boxes, _ = random_boxes(300, seed=9)
    scores = torch.tensor([0.5, 0.25, 0.75])[torch.arange(300) % 3]  # three-way ties everywhere
    keep, kept_scores, num_valid = batched_nms(boxes, scores, iou_threshold=0.3, max_output=300)
    ref_keep, ref_scores = ref.hard_nms(boxes.numpy(), scores.numpy(), 0.3)
    keep, kept_scores = valid_part(keep, kept_scores, num_valid)
    np.testing.assert_array_equal(keep.numpy(), ref_keep)
    # hand case: two identical boxes with the same score -> the lower index survives
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 2)
    keep, _, num_valid = batched_nms(box, torch.tensor([0.6, 0.6]), max_output=3)
    assert keep.tolist() == [0, -1, -1] and int(num_valid) == 1


# ---------------------------------------------------------------- soft-NMS vs NumPy reference


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["linear", "gaussian"])
@pytest.mark.parametrize("class_aware", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_soft_matches_numpy_reference(device, method, class_aware, dtype):
    boxes, scores = random_boxes(400, seed=10, dtype=dtype, extent=150.0)
    labels = torch.randint(0, 4, (400,), generator=torch.Generator().manual_seed(11))
    labels = labels if class_aware else None
    keep, kept_scores, num_valid = batched_nms(
        boxes.to(device),
        scores.to(device),
        None if labels is None else labels.to(device),
        iou_threshold=0.3,
        method=method,
        sigma=0.5,
        min_score=0.05,
        max_output=400,
    )
    ref_keep, ref_scores = ref.soft_nms(
        boxes.double().numpy(),
        scores.double().numpy(),
        0.3,
        method,
        sigma=0.5,
        min_score=0.05,
        labels=None if labels is None else labels.numpy(),
    )
    keep, kept_scores = valid_part(keep, kept_scores, num_valid)
    assert kept_scores.dtype == dtype
    np.testing.assert_array_equal(keep.cpu().numpy(), ref_keep)
    np.testing.assert_allclose(kept_scores.cpu().double().numpy(), ref_scores, rtol=0, atol=1e-5)
    assert 0 < len(ref_keep) < 400  # min_score dropped some boxes, soft-NMS kept many


def test_soft_linear_hand_case():
    """Two boxes with IoU 1/3 > 0.3 and a far box: closed-form decayed scores."""
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [50.0, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.8, 0.6])
    keep, kept_scores, num_valid = batched_nms(boxes, scores, iou_threshold=0.3, method="linear", max_output=4)
    # IoU(0, 1) = 50 / 150 = 1/3 -> 0.8 * (1 - 1/3) = 0.5333 < 0.6; box 2 untouched
    assert keep.tolist() == [0, 2, 1, -1] and int(num_valid) == 3
    torch.testing.assert_close(kept_scores, torch.tensor([0.9, 0.6, 0.8 * 2 / 3, 0.0]))
    # min_score above the decayed score drops box 1, but not box 2 (never decayed)
    keep, kept_scores, num_valid = batched_nms(
        boxes, scores, iou_threshold=0.3, method="linear", min_score=0.55, max_output=4
    )
    assert keep.tolist() == [0, 2, -1, -1]
    # iou_threshold 0.5 > 1/3: linear leaves box 1 alone
    keep, kept_scores, _ = batched_nms(boxes, scores, iou_threshold=0.5, method="linear")
    assert keep[:3].tolist() == [0, 1, 2]
    assert kept_scores[:3].tolist() == pytest.approx([0.9, 0.8, 0.6])


def test_soft_gaussian_hand_case():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0]], dtype=torch.float64)
    scores = torch.tensor([0.9, 0.8], dtype=torch.float64)
    _, kept_scores, num_valid = batched_nms(boxes, scores, method="gaussian", sigma=0.5)
    expected = 0.8 * math.exp(-((1 / 3) ** 2) / 0.5)
    assert int(num_valid) == 2
    assert kept_scores[:2].tolist() == pytest.approx([0.9, expected], abs=1e-12)


def test_soft_selection_follows_decayed_scores():
    """After decay, a lower original score can be picked before a decayed one."""
    boxes = torch.tensor([[0.0, 0, 10, 10], [1.0, 0, 11, 10], [40.0, 0, 50, 10]])
    scores = torch.tensor([0.9, 0.85, 0.5])
    keep, kept_scores, _ = batched_nms(boxes, scores, iou_threshold=0.3, method="linear")
    # IoU(0, 1) = 90 / 110 -> 0.85 * 20 / 110 = 0.1545 < 0.5
    assert keep[:3].tolist() == [0, 2, 1]
    assert kept_scores[2].item() == pytest.approx(0.85 * 20 / 110, rel=1e-6)


# ---------------------------------------------------------------- thresholds, padding, batches


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["hard", "linear", "gaussian"])
def test_score_threshold_is_strict(device, method):
    boxes = torch.tensor([[0.0, 0, 1, 1], [10.0, 0, 11, 1], [20.0, 0, 21, 1]], device=device)
    scores = torch.tensor([0.5, 0.25, 0.75], device=device)
    keep, kept_scores, num_valid = batched_nms(boxes, scores, method=method, score_threshold=0.5, max_output=3)
    assert keep.tolist() == [2, -1, -1] and int(num_valid) == 1  # 0.5 itself is not > 0.5
    assert kept_scores.tolist() == [0.75, 0.0, 0.0]


@pytest.mark.parametrize("device", DEVICES)
def test_max_output_truncates_and_pads(device):
    boxes, scores = random_boxes(300, seed=12)
    full = torchvision.ops.nms(boxes, scores, 0.5)
    for max_output in (1, 5, len(full), len(full) + 17):
        keep, kept_scores, num_valid = batched_nms(boxes.to(device), scores.to(device), max_output=max_output)
        assert keep.shape == (max_output,) and kept_scores.shape == (max_output,)
        assert num_valid.shape == () and int(num_valid) == min(max_output, len(full))
        assert torch.equal(keep[: int(num_valid)].cpu(), full[:max_output])
        assert_padding(keep, kept_scores, num_valid)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["hard", "linear"])
def test_batch_images_are_independent(device, method):
    """N=3 images with different numbers of kept boxes: each row = that image on its own."""
    images = [random_boxes(200, seed=20 + i, extent=60.0 + 100.0 * i) for i in range(3)]
    boxes = torch.stack([b for b, _ in images])
    scores = torch.stack([s for _, s in images])
    scores[2, :150] = 0.0  # below the threshold
    keep, kept_scores, num_valid = batched_nms(
        boxes.to(device), scores.to(device), method=method, iou_threshold=0.4, max_output=150
    )
    assert keep.shape == (3, 150) and num_valid.shape == (3,)
    if method == "hard":
        assert len(set(num_valid.tolist())) == 3
    else:  # min_score 0: soft-NMS keeps every candidate, up to max_output
        assert num_valid.tolist() == [150, 150, 50]
    for i in range(3):
        single = batched_nms(boxes[i], scores[i], method=method, iou_threshold=0.4, max_output=150)
        assert torch.equal(keep[i].cpu(), single[0])
        assert torch.equal(kept_scores[i].cpu(), single[1])
        assert int(num_valid[i]) == int(single[2])
        assert_padding(keep[i], kept_scores[i], num_valid[i])
    if method == "hard":
        for i in range(3):
            candidates = torch.nonzero(scores[i] > 0).flatten()  # default score_threshold 0
            kept = torchvision.ops.nms(boxes[i, candidates], scores[i, candidates], 0.4)
            expected = candidates[kept]
            expected = expected[:150]
            assert torch.equal(keep[i, : int(num_valid[i])].cpu(), expected)


@pytest.mark.parametrize("device", DEVICES)
def test_empty_inputs(device):
    keep, kept_scores, num_valid = batched_nms(
        torch.zeros(0, 5, 4, device=device), torch.zeros(0, 5, device=device), max_output=4
    )
    assert keep.shape == (0, 4) and kept_scores.shape == (0, 4) and num_valid.shape == (0,)
    keep, kept_scores, num_valid = batched_nms(
        torch.zeros(2, 0, 4, device=device), torch.zeros(2, 0, device=device), max_output=4
    )
    assert keep.shape == (2, 4) and torch.all(keep == -1) and torch.all(kept_scores == 0)
    assert num_valid.tolist() == [0, 0]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["hard", "linear", "gaussian"])
def test_all_below_threshold(device, method):
    boxes, scores = random_boxes(50, seed=13)
    keep, kept_scores, num_valid = batched_nms(
        boxes.to(device), scores.to(device), method=method, score_threshold=1.0, max_output=8
    )
    assert int(num_valid) == 0 and torch.all(keep == -1) and torch.all(kept_scores == 0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["hard", "linear", "gaussian"])
def test_nan_scores_and_boxes(device, method):
    """NaN scores are never candidates; NaN boxes neither suppress nor get suppressed."""
    nan = float("nan")
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # 0: NaN score
            [0.0, 0.0, 10.0, 10.0],  # 1
            [nan, 0.0, 10.0, 10.0],  # 2: NaN coordinate, best score
            [0.0, 0.0, 10.0, 10.0],  # 3: duplicate of 1
            [nan, nan, nan, nan],  # 4
        ],
        device=device,
    )
    scores = torch.tensor([nan, 0.8, 0.9, 0.7, 0.6], device=device)
    keep, kept_scores, num_valid = batched_nms(
        boxes, scores, method=method, iou_threshold=0.5, min_score=0.01, max_output=5
    )
    ref_fn = ref.hard_nms if method == "hard" else ref.soft_nms
    kwargs = {} if method == "hard" else {"method": method, "min_score": 0.01}
    ref_keep, ref_scores = ref_fn(boxes.cpu().numpy(), scores.cpu().numpy(), 0.5, **kwargs)
    keep, kept_scores = valid_part(keep, kept_scores, num_valid)
    np.testing.assert_array_equal(keep.cpu().numpy(), ref_keep)
    np.testing.assert_allclose(kept_scores.cpu().numpy(), ref_scores, atol=1e-6)
    assert keep[:2].tolist() == [2, 1]  # NaN box first by score, and it did not suppress box 1
    assert 0 not in keep.tolist() and 4 in keep.tolist()
    if method == "hard":
        assert keep.tolist() == [2, 1, 4]  # 3 is suppressed by its duplicate 1


@pytest.mark.parametrize("device", DEVICES)
def test_zero_and_negative_size_boxes_never_overlap(device):
    """Areas are clamped at 0, so such boxes have IoU 0 with everything (torchvision differs)."""
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],
            [0.0, 0.0, 10.0, 0.0],  # zero height
            [10.0, 10.0, 0.0, 0.0],  # negative size, same corners as box 0
            [5.0, 5.0, 5.0, 5.0],  # a point
            [0.0, 0.0, 10.0, 10.0],  # duplicate of 0
        ],
        device=device,
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5], device=device)
    keep, kept_scores, num_valid = batched_nms(boxes, scores, iou_threshold=0.0, max_output=5)
    assert keep.tolist() == [0, 1, 2, 3, -1]
    ref_keep, _ = ref.hard_nms(boxes.cpu().numpy(), scores.cpu().numpy(), 0.0)
    np.testing.assert_array_equal(keep[: int(num_valid)].cpu().numpy(), ref_keep)


@pytest.mark.parametrize("device", DEVICES)
def test_duplicate_boxes(device):
    boxes = torch.tensor([[1.0, 2.0, 30.0, 40.0]] * 4, device=device)
    scores = torch.tensor([0.3, 0.9, 0.5, 0.7], device=device)
    keep, _, num_valid = batched_nms(boxes, scores, iou_threshold=0.99, max_output=4)
    assert keep.tolist() == [1, -1, -1, -1]
    keep, _, num_valid = batched_nms(boxes, scores, iou_threshold=1.0, max_output=4)
    assert keep.tolist() == [1, 3, 2, 0]  # IoU 1 is not > 1
    # linear soft-NMS: weight 1 - IoU = 0 -> decayed to 0, dropped by any positive min_score
    keep, kept_scores, num_valid = batched_nms(
        boxes, scores, iou_threshold=0.5, method="linear", min_score=1e-6, max_output=4
    )
    assert keep.tolist() == [1, -1, -1, -1]


def test_half_and_bfloat16_on_cpu_run_in_float32():
    boxes, scores = random_boxes(200, seed=14)
    boxes16, scores16 = boxes.half(), scores.half()
    keep, kept_scores, num_valid = batched_nms(boxes16, scores16, max_output=200)
    assert kept_scores.dtype == torch.float16
    expected = torchvision.ops.nms(boxes16.float(), scores16.float(), 0.5)
    assert torch.equal(keep[: int(num_valid)], expected)
    keep_bf, kept_bf, _ = batched_nms(boxes.bfloat16(), scores.bfloat16(), max_output=200)
    assert kept_bf.dtype == torch.bfloat16


# ---------------------------------------------------------------- hypothesis properties

coordinate = st.integers(min_value=0, max_value=30)
extent = st.integers(min_value=-3, max_value=15)  # includes zero and negative sizes
box_strategy = st.tuples(coordinate, coordinate, extent, extent).map(lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3]))
score_strategy = st.sampled_from([0.0, 0.125, 0.25, 0.5, 0.625, 0.75, 0.875, 1.0])
threshold_strategy = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])


@st.composite
def detections(draw, max_boxes=40):
    num = draw(st.integers(min_value=0, max_value=max_boxes))
    boxes = draw(st.lists(box_strategy, min_size=num, max_size=num))
    scores = draw(st.lists(score_strategy, min_size=num, max_size=num))  # many exact ties
    labels = draw(st.one_of(st.none(), st.lists(st.integers(0, 2), min_size=num, max_size=num)))
    boxes = np.array(boxes, dtype=np.float64).reshape(num, 4)
    scores = np.array(scores, dtype=np.float64)
    return boxes, scores, None if labels is None else np.array(labels, dtype=np.int64)


def run_ours(boxes, scores, labels, dtype=torch.float64, **kwargs):
    keep, kept_scores, num_valid = batched_nms(
        torch.from_numpy(boxes).to(dtype),
        torch.from_numpy(scores).to(dtype),
        None if labels is None else torch.from_numpy(labels),
        **kwargs,
    )
    assert_padding(keep, kept_scores, num_valid)
    keep, kept_scores = valid_part(keep, kept_scores, num_valid)
    return keep.numpy(), kept_scores.double().numpy()


@given(
    data=detections(),
    iou_threshold=threshold_strategy,
    score_threshold=st.sampled_from([-1.0, 0.0, 0.5]),
    max_output=st.integers(1, 50),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_hard_equals_reference_property(data, iou_threshold, score_threshold, max_output, dtype):
    boxes, scores, labels = data
    keep, kept_scores = run_ours(
        boxes,
        scores,
        labels,
        dtype,
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
        max_output=max_output,
    )
    ref_keep, ref_scores = ref.hard_nms(boxes, scores, iou_threshold, labels, score_threshold, max_output)
    np.testing.assert_array_equal(keep, ref_keep)
    np.testing.assert_array_equal(kept_scores, ref_scores)
    # properties: scores non-increasing; kept boxes of one class overlap by at most the threshold
    assert np.all(np.diff(kept_scores) <= 0)
    same_labels = labels if labels is not None else np.zeros(len(scores), dtype=np.int64)
    for position, i in enumerate(keep):
        others = [k for k in keep[position + 1 :] if same_labels[k] == same_labels[i]]
        if others:
            assert ref.iou_one_to_many(boxes[i], boxes[others]).max() <= iou_threshold


@given(
    data=detections(),
    iou_threshold=threshold_strategy,
    min_score=st.sampled_from([0.0, 0.1, 0.3]),
    max_output=st.integers(1, 50),
)
def test_soft_linear_equals_reference_property(data, iou_threshold, min_score, max_output):
    boxes, scores, labels = data
    keep, kept_scores = run_ours(
        boxes,
        scores,
        labels,
        iou_threshold=iou_threshold,
        method="linear",
        min_score=min_score,
        max_output=max_output,
    )
    ref_keep, ref_scores = ref.soft_nms(
        boxes, scores, iou_threshold, "linear", 0.5, min_score, labels, max_output=max_output
    )
    np.testing.assert_array_equal(keep, ref_keep)
    np.testing.assert_allclose(kept_scores, ref_scores, rtol=0, atol=1e-12)
    assert np.all(np.diff(kept_scores) <= 0)  # decay only lowers scores
    assert np.all(kept_scores >= min_score)


@given(data=detections(), sigma=st.sampled_from([0.125, 0.5, 2.0]))  # exact in float32
def test_soft_gaussian_properties(data, sigma):
    boxes, scores, labels = data
    keep, kept_scores = run_ours(boxes, scores, labels, method="gaussian", sigma=sigma, min_score=0.05, max_output=50)
    ref_keep, ref_scores = ref.soft_nms(boxes, scores, 0.5, "gaussian", sigma, 0.05, labels)
    assert len(keep) == len(ref_keep)
    np.testing.assert_allclose(kept_scores, ref_scores, rtol=0, atol=1e-9)
    assert np.all(np.diff(kept_scores) <= 0)
    assert len(set(keep.tolist())) == len(keep)


# ---------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"boxes": torch.zeros(2, 3, 4, 4)}, ValueError, "rank 4"),
        ({"boxes": torch.zeros(5, 3), "scores": torch.zeros(5)}, ValueError, "last dimension"),
        ({"scores": torch.zeros(6)}, ValueError, r"scores must have shape \[5\]"),
        ({"labels": torch.zeros(4, dtype=torch.int64)}, ValueError, "labels must have shape"),
        ({"labels": torch.zeros(5)}, TypeError, "labels must be an integer"),
        ({"scores": torch.zeros(5, dtype=torch.float64)}, TypeError, "dtype of boxes"),
        (
            {"boxes": torch.zeros(5, 4, dtype=torch.int32), "scores": torch.zeros(5)},
            TypeError,
            "floating-point",
        ),
        ({"boxes": [[0, 0, 1, 1]]}, TypeError, "boxes must be a torch.Tensor"),
        ({"method": "soft"}, ValueError, "method must be one of"),
        ({"iou_threshold": 1.5}, ValueError, "iou_threshold must be in"),
        ({"iou_threshold": -0.1}, ValueError, "iou_threshold must be in"),
        ({"sigma": 0.0}, ValueError, "sigma must be"),
        ({"max_output": 0}, ValueError, "max_output must be in"),
        ({"max_output": 2.5}, TypeError, "max_output must be an int"),
        ({"min_score": float("nan")}, ValueError, "min_score must not be NaN"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    arguments = {"boxes": torch.zeros(5, 4), "scores": torch.zeros(5)}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        batched_nms(**arguments)


@pytest.mark.skipif(not CUDA_AVAILABLE, reason="no CUDA device on this machine")
def test_device_mismatch_raises():
    with pytest.raises(ValueError, match="device of boxes"):
        batched_nms(torch.zeros(5, 4), torch.zeros(5, device="cuda"))


# ---------------------------------------------------------------- tracing / export


class TinyPostprocess(torch.nn.Module):
    def forward(self, boxes, scores, labels):
        keep, kept_scores, num_valid = batched_nms(
            boxes, scores, labels, iou_threshold=0.5, method="linear", max_output=7
        )
        return keep, kept_scores, num_valid


def test_torch_export_gives_fixed_output_shapes():
    boxes, scores = random_boxes(30, seed=15)
    labels = torch.randint(0, 2, (30,), generator=torch.Generator().manual_seed(16))
    args = (boxes.expand(2, 30, 4).clone(), scores.expand(2, 30).clone(), labels.expand(2, 30))
    num_boxes = torch.export.Dim("num_boxes", min=2, max=100_000)
    exported = torch.export.export(
        TinyPostprocess(),
        args,
        dynamic_shapes=({1: num_boxes}, {1: num_boxes}, {1: num_boxes}),
    )
    placeholders = [n for n in exported.graph.nodes if n.op == "output"][0].args[0]
    shapes = [tuple(node.meta["val"].shape) for node in placeholders]
    assert shapes == [(2, 7), (2, 7), (2,)]  # independent of the number of boxes
    other = random_boxes(50, seed=17)
    other_args = (other[0][None], other[1][None], torch.zeros(1, 50, dtype=torch.int64))
    other_args = tuple(t.expand(2, *t.shape[1:]).contiguous() for t in other_args)
    for got, want in zip(exported.module()(*other_args), TinyPostprocess()(*other_args)):
        assert torch.equal(got, want)


def test_opcheck_fake_kernel_and_schema():
    boxes, scores = random_boxes(20, seed=18)
    args = (boxes[None], scores[None], None, 0.5, 0, 0.5, 0.0, 0.0, 10)
    torch.library.opcheck(torch.ops.sspnet.batched_nms.default, args)


# ---------------------------------------------------------------- CUDA against CPU


@pytest.mark.skipif(not CUDA_AVAILABLE, reason="no CUDA device on this machine")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("class_aware", [False, True])
def test_cuda_hard_equals_cpu(dtype, class_aware):
    boxes, scores = random_boxes(5000, seed=19, dtype=dtype, extent=800.0)
    boxes, scores = boxes.expand(3, -1, -1).clone(), scores.expand(3, -1).clone()
    scores[1] = scores[1].flip(0)
    scores[2, ::2] = 0.0
    labels = torch.randint(0, 5, (3, 5000), generator=torch.Generator().manual_seed(20))
    labels = labels if class_aware else None
    cuda = batched_nms(boxes.cuda(), scores.cuda(), None if labels is None else labels.cuda(), max_output=3000)
    cpu = batched_nms(
        boxes.float() if dtype == torch.float16 else boxes,
        scores.float() if dtype == torch.float16 else scores,
        labels,
        max_output=3000,
    )
    assert torch.equal(cuda[0].cpu(), cpu[0])
    assert torch.equal(cuda[1].cpu().to(cpu[1].dtype), cpu[1])
    assert torch.equal(cuda[2].cpu(), cpu[2])


@pytest.mark.skipif(not CUDA_AVAILABLE, reason="no CUDA device on this machine")
@pytest.mark.parametrize("method", ["linear", "gaussian"])
@pytest.mark.parametrize("class_aware", [False, True])
def test_cuda_soft_equals_cpu(method, class_aware):
    boxes, scores = random_boxes(3000, seed=21, dtype=torch.float64, extent=600.0)
    boxes, scores = boxes.expand(2, -1, -1).clone(), scores.expand(2, -1).clone()
    scores[1] = scores[1].flip(0)
    labels = torch.randint(0, 3, (2, 3000), generator=torch.Generator().manual_seed(22))
    labels = labels if class_aware else None
    kwargs = dict(iou_threshold=0.3, method=method, min_score=0.05, max_output=2000)
    cuda = batched_nms(boxes.cuda(), scores.cuda(), None if labels is None else labels.cuda(), **kwargs)
    cpu = batched_nms(boxes, scores, labels, **kwargs)
    assert torch.equal(cuda[0].cpu(), cpu[0])
    torch.testing.assert_close(cuda[1].cpu(), cpu[1], rtol=0, atol=1e-9)
    assert torch.equal(cuda[2].cpu(), cpu[2])
    # float32: same up to rounding of the decayed scores
    cuda32 = batched_nms(
        boxes.float().cuda(), scores.float().cuda(), None if labels is None else labels.cuda(), **kwargs
    )
    assert torch.equal(cuda32[2].cpu(), cpu[2])
    torch.testing.assert_close(cuda32[1].cpu().double(), cpu[1], rtol=0, atol=1e-5)


@pytest.mark.skipif(not CUDA_AVAILABLE, reason="no CUDA device on this machine")
def test_cuda_large_hard_matches_torchvision():
    boxes, scores = random_boxes(30_000, seed=23, extent=3000.0)
    keep, _, num_valid = batched_nms(boxes.cuda(), scores.cuda(), max_output=30_000)
    expected = torchvision.ops.nms(boxes, scores, 0.5)
    assert torch.equal(keep[: int(num_valid)].cpu(), expected)
