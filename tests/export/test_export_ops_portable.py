"""The portable translations of the sspnet ops, run in ONNX Runtime, against torchvision (an
independent implementation) and against the sspnet torch ops themselves."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torchvision
from export_graphs import (
    BATCH,
    IMAGE_HW,
    ROI_INPUTS,
    SPATIAL_SCALES,
    nms_graph,
    pyramid,
    requires_ops,
    roi_align_graph,
    run_ort,
)
from hypothesis import given
from hypothesis import strategies as st

pytestmark = requires_ops


# ---- multi-level RoIAlign --------------------------------------------------------------------


def spec_levels(rois: np.ndarray, finest_scale: float = 56.0, num_levels: int = 4) -> np.ndarray:
    """mmdetection's level rule, in float64: level = clamp(floor(log2(sqrt(w * h) / finest_scale + 1e-6)), 0, L - 1)."""
    w = rois[:, 3].astype(np.float64) - rois[:, 1]
    h = rois[:, 4].astype(np.float64) - rois[:, 2]
    s = np.sqrt(np.clip(w * h, 0, None))
    return np.clip(np.floor(np.log2(s / finest_scale + 1e-6)), 0, num_levels - 1).astype(np.int64)


def near_level_boundary(rois: np.ndarray, finest_scale: float = 56.0) -> np.ndarray:
    """RoIs whose scale is within 1e-4 (relative) of a level boundary: float32 vs float64 may differ."""
    w = rois[:, 3].astype(np.float64) - rois[:, 1]
    h = rois[:, 4].astype(np.float64) - rois[:, 2]
    x = np.sqrt(np.clip(w * h, 0, None)) / finest_scale + 1e-6
    boundaries = np.array([2.0, 4.0, 8.0])
    return (np.abs(x[:, None] / boundaries - 1.0) < 1e-4).any(axis=1)


def torchvision_multi_level(features, rois: np.ndarray, output_size, sampling_ratio, aligned) -> np.ndarray:
    """Each RoI pooled by torchvision.ops.roi_align from the level mmdetection's rule picks."""
    levels = spec_levels(rois)
    rois_t = torch.from_numpy(rois)
    out = np.zeros((len(rois), features[0].shape[1], output_size, output_size), np.float32)
    for level, (feature, scale) in enumerate(zip(features, SPATIAL_SCALES)):
        pooled = torchvision.ops.roi_align(feature, rois_t, output_size, scale, sampling_ratio, aligned).numpy()
        out[levels == level] = pooled[levels == level]
    return out


@st.composite
def roi_sets(draw):
    """1-12 RoIs in and around a 256x320 image, scales from ~0 up to ~700 px (all four levels)."""
    count = draw(st.integers(1, 12))
    height, width = IMAGE_HW
    rows = []
    for _ in range(count):
        batch = draw(st.integers(0, BATCH - 1))
        x1 = draw(st.floats(-20, width, width=32))
        y1 = draw(st.floats(-20, height, width=32))
        w = draw(st.floats(0, 700, width=32))
        h = draw(st.floats(0, 700, width=32))
        rows.append([batch, x1, y1, x1 + w, y1 + h])
    return np.array(rows, np.float32)


ROI_CONFIGS = [
    dict(output_size=7, sampling_ratio=0, aligned=True),  # the model's setting (adaptive sampling)
    dict(output_size=7, sampling_ratio=2, aligned=True),
    dict(output_size=5, sampling_ratio=0, aligned=False),
]


@pytest.mark.parametrize("config", ROI_CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
@given(rois=roi_sets())
def test_portable_roi_align_matches_torchvision_and_sspnet_op(config, rois):
    module, model = roi_align_graph("portable", **config)
    features = pyramid()
    rois = rois[~near_level_boundary(rois)]
    if len(rois) == 0:
        return
    feeds = dict(zip(ROI_INPUTS, [f.numpy() for f in features] + [rois]))
    (pooled,) = run_ort(model, feeds)
    expected = torchvision_multi_level(
        features, rois, config["output_size"], config["sampling_ratio"], config["aligned"]
    )
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-5)
    op_output = module(*features, torch.from_numpy(rois)).numpy()
    np.testing.assert_allclose(pooled, op_output, rtol=1e-5, atol=1e-5)


def test_portable_roi_align_level_boundaries():
    """Scales exactly at and just below 112 / 224 / 448 px go to the levels the rule says."""
    _, model = roi_align_graph("portable")
    features = pyramid(seed=1)
    sizes = [111.0, 112.0, 223.0, 224.0, 447.0, 448.0, 1000.0, 0.0]
    rois = np.array([[0, 3.0, 5.0, 3.0 + s, 5.0 + s] for s in sizes], np.float32)
    assert spec_levels(rois).tolist() == [0, 1, 1, 2, 2, 3, 3, 0]
    (pooled,) = run_ort(model, dict(zip(ROI_INPUTS, [f.numpy() for f in features] + [rois])))
    expected = torchvision_multi_level(features, rois, 7, 0, True)
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-5)


def test_portable_roi_align_uses_only_standard_ops():
    _, model = roi_align_graph("portable")
    onnx.checker.check_model(model)
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    assert sum(node.op_type == "RoiAlign" for node in model.graph.node) == len(SPATIAL_SCALES)


# ---- batched NMS -----------------------------------------------------------------------------


NMS_CONFIGS = [
    # max_output larger than M: the padding path
    dict(iou_threshold=0.5, score_threshold=0.0, max_output=64, class_aware=False),
    # class-aware with a score threshold and truncation to the top 5
    dict(iou_threshold=0.3, score_threshold=0.2, max_output=5, class_aware=True),
    dict(iou_threshold=0.7, score_threshold=0.05, max_output=20, class_aware=True),
]


def torchvision_nms(boxes, scores, labels, iou_threshold, score_threshold, max_output):
    """Kept indices (best first) of one image with torchvision.ops.batched_nms."""
    candidates = np.flatnonzero(scores > score_threshold)
    if labels is None:
        labels = np.zeros_like(scores, dtype=np.int64)
    kept = torchvision.ops.batched_nms(
        torch.from_numpy(boxes[candidates]),
        torch.from_numpy(scores[candidates]),
        torch.from_numpy(labels[candidates]),
        iou_threshold,
    ).numpy()
    return candidates[kept][:max_output]


def random_detections(seed: int, n: int, m: int, num_classes: int = 3):
    """Clustered boxes (so NMS has work) with distinct scores."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(10, 90, size=(n, max(1, m // 4), 2))
    pick = rng.integers(0, centres.shape[1], size=(n, m))
    xy = np.take_along_axis(centres, pick[..., None], axis=1) + rng.normal(0, 3, size=(n, m, 2))
    wh = rng.uniform(4, 20, size=(n, m, 2))
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=2).astype(np.float32)
    scores = np.stack([rng.permutation(m) for _ in range(n)]).astype(np.float32) / m + 0.5 / m
    labels = rng.integers(0, num_classes, size=(n, m)).astype(np.int64)
    return boxes, scores, labels


def check_nms_outputs(outputs, boxes, scores, labels, config):
    keep, keep_scores, num_valid = outputs
    n = boxes.shape[0]
    assert keep.dtype == np.int64 and num_valid.dtype == np.int64
    assert keep.shape == (n, config["max_output"]) and keep_scores.shape == (n, config["max_output"])
    assert num_valid.shape == (n,)
    for i in range(n):
        expected = torchvision_nms(
            boxes[i],
            scores[i],
            labels[i] if config["class_aware"] else None,
            config["iou_threshold"],
            config["score_threshold"],
            config["max_output"],
        )
        count = int(num_valid[i])
        assert count == len(expected)
        assert keep[i, :count].tolist() == expected.tolist()
        np.testing.assert_array_equal(keep_scores[i, :count], scores[i, expected])
        assert (keep[i, count:] == -1).all() and (keep_scores[i, count:] == 0).all()


@pytest.mark.parametrize("config", NMS_CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 2), m=st.integers(2, 48))
def test_portable_nms_matches_torchvision_and_sspnet_op(config, seed, n, m):
    module, model = nms_graph("portable", **config)
    boxes, scores, labels = random_detections(seed, n, m)
    outputs = run_ort(model, dict(boxes=boxes, scores=scores, labels=labels))
    check_nms_outputs(outputs, boxes, scores, labels, config)
    op_outputs = module(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels))
    for got, want in zip(outputs, op_outputs):
        np.testing.assert_array_equal(got, want.numpy())


def test_portable_nms_hand_cases():
    """Identical boxes and equal scores keep the lower index; other classes are untouched; an
    inverted box has zero area (suppresses nothing), as in the sspnet kernel."""
    config = NMS_CONFIGS[2]  # class-aware, iou 0.7, score > 0.05, top 20
    module, model = nms_graph("portable", **config)
    boxes = np.array(
        [[[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10], [10, 10, 0, 0], [50, 50, 60, 60]]], np.float32
    )
    scores = np.array([[0.5, 0.5, 0.9, 0.8, 0.95, 0.05]], np.float32)  # the last is not > 0.05
    labels = np.array([[0, 0, 1, 0, 0, 0]], np.int64)
    keep, keep_scores, num_valid = run_ort(model, dict(boxes=boxes, scores=scores, labels=labels))
    # 4 (inverted, zero area) kept and suppresses nothing; 2 is class 1; 3 (0.8) suppresses 0 and 1
    # (IoU 0.81 > 0.7); 5 is below the threshold.
    assert num_valid.tolist() == [3]
    assert keep[0, :4].tolist() == [4, 2, 3, -1]
    np.testing.assert_allclose(keep_scores[0, :4], [0.95, 0.9, 0.8, 0.0])
    op_keep, _, op_num_valid = module(*(torch.from_numpy(a) for a in (boxes, scores, labels)))
    assert op_keep.tolist() == keep.tolist() and op_num_valid.tolist() == num_valid.tolist()
    # equal scores, identical boxes: the lower index wins
    scores_tied = np.array([[0.5, 0.5, 0.0, 0.0, 0.0, 0.0]], np.float32)
    keep, _, num_valid = run_ort(model, dict(boxes=boxes, scores=scores_tied, labels=labels))
    assert num_valid.tolist() == [1] and keep[0, 0] == 0


def test_portable_nms_no_candidates():
    config = NMS_CONFIGS[1]
    _, model = nms_graph("portable", **config)
    boxes, scores, labels = random_detections(3, 2, 10)
    keep, keep_scores, num_valid = run_ort(model, dict(boxes=boxes, scores=scores * 0.1, labels=labels))
    assert num_valid.tolist() == [0, 0]
    assert (keep == -1).all() and (keep_scores == 0).all()


def test_portable_nms_soft_method_is_exported_as_hard_with_a_warning():
    with pytest.warns(UserWarning, match="exported as hard NMS"):
        _, model = nms_graph.__wrapped__("portable", iou_threshold=0.3, method=1, min_score=0.05, max_output=10)
    boxes, scores, labels = random_detections(5, 1, 30)
    outputs = run_ort(model, dict(boxes=boxes, scores=scores, labels=labels))
    config = dict(iou_threshold=0.3, score_threshold=0.0, max_output=10, class_aware=True)
    check_nms_outputs(outputs, boxes, scores, labels, config)
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
