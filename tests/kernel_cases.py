"""Named kernel test cases shared by the CPU execution layer (tests/cuda_on_cpu) and the real-GPU
tests (tests/ops/test_kernel_cases_cuda.py, run by scripts/gpu_check.sh): the same inputs run in
both places. Plain NumPy, deterministic (seeded); every case a dict.

NMS case:     boxes [N, M, 4], scores [N, M], labels [N, M] int32 or None, and the kernel's
              parameters (method, iou_threshold, sigma, score_threshold, min_score, max_output).
RoIAlign case: features (list of [N, C, H, W], one per level), scales, rois [R, 5], output_size,
              sampling_ratio, aligned, finest_scale, grad_output [R, C, oh, ow], roi_dtype.
"""

from __future__ import annotations

import numpy as np

STRIDES = (4, 8, 16, 32)


def random_boxes(rng, batch, num, extent=200.0, max_size=60.0):
    xy = rng.uniform(0, extent, (batch, num, 2))
    wh = rng.uniform(1, max_size, (batch, num, 2))
    return np.concatenate([xy, xy + wh], -1)


def nms_case(
    name,
    boxes,
    scores,
    labels=None,
    method="hard",
    iou_threshold=0.5,
    sigma=0.5,
    score_threshold=0.0,
    min_score=0.0,
    max_output=50,
    dtype=np.float32,
):
    return dict(
        name=name,
        boxes=np.asarray(boxes, dtype),
        scores=np.asarray(scores, dtype),
        labels=None if labels is None else np.asarray(labels, np.int32),
        method=method,
        iou_threshold=iou_threshold,
        sigma=sigma,
        score_threshold=score_threshold,
        min_score=min_score,
        max_output=max_output,
    )


def nms_cases() -> list[dict]:
    rng = np.random.default_rng(17)
    cases = []
    for method in ("hard", "linear", "gaussian"):
        for class_aware in (False, True):
            for dtype in (np.float32, np.float64, np.float16):
                boxes = random_boxes(rng, 2, 70)
                labels = rng.integers(0, 3, (2, 70)) if class_aware else None
                # scores on a coarse grid: many exact ties (lower index first on both sides)
                scores = rng.integers(0, 9, (2, 70)) / 8.0
                cases.append(
                    nms_case(
                        f"{method}-{'aware' if class_aware else 'agnostic'}-{np.dtype(dtype).name}",
                        boxes,
                        scores,
                        labels,
                        method,
                        iou_threshold=0.4,
                        min_score=0.05,
                        max_output=12 if method != "hard" else 60,
                        dtype=dtype,
                    )
                )
    # more boxes than one block (256 threads) and several 64-box mask tiles
    boxes = random_boxes(rng, 1, 600, extent=400.0)
    cases.append(nms_case("hard-600-boxes", boxes, rng.uniform(0, 1, (1, 600)), max_output=700))
    cases.append(nms_case("linear-600-boxes", boxes, rng.uniform(0, 1, (1, 600)), method="linear", max_output=8))
    # max_output smaller than the kept count, and larger
    boxes = random_boxes(rng, 1, 40, extent=1000.0, max_size=10.0)  # barely overlapping: all kept
    scores = rng.uniform(0.1, 1, (1, 40))
    cases.append(nms_case("max-output-smaller", boxes, scores, max_output=5))
    cases.append(nms_case("max-output-larger", boxes, scores, max_output=64))
    # every box but the best suppressed: 30 copies of one box
    same = np.tile([[[10.0, 10.0, 50.0, 50.0]]], (1, 30, 1))
    cases.append(nms_case("all-suppressed", same, rng.uniform(0, 1, (1, 30)), max_output=10))
    cases.append(nms_case("all-below-threshold", same, np.full((1, 30), 0.2), score_threshold=0.5))
    cases.append(nms_case("all-equal-scores", random_boxes(rng, 1, 90), np.full((1, 90), 0.5), max_output=90))
    # NaN scores are never candidates; boxes with a NaN coordinate neither suppress nor get suppressed
    boxes, scores = random_boxes(rng, 1, 50, extent=80.0), rng.integers(0, 9, (1, 50)) / 8.0
    scores[0, ::7] = np.nan
    boxes[0, 3::9, rng.integers(0, 4)] = np.nan
    for method in ("hard", "linear", "gaussian"):
        cases.append(nms_case(f"nan-{method}", boxes, scores, method=method, max_output=15))
    cases.append(nms_case("empty", np.zeros((3, 0, 4)), np.zeros((3, 0)), max_output=4))
    cases.append(nms_case("empty-soft", np.zeros((2, 0, 4)), np.zeros((2, 0)), method="gaussian", max_output=4))
    return cases


def _pyramid(rng, batch, channels, size, levels, dtype):
    return [rng.standard_normal((batch, channels, size // s, size // s)).astype(dtype) for s in STRIDES[:levels]]


def roi_case(
    name, features, rois, output_size=(7, 7), sampling_ratio=0, aligned=True, finest_scale=56.0, roi_dtype=None, seed=0
):
    dtype = features[0].dtype
    rois = np.asarray(rois, roi_dtype or dtype)
    grad = np.random.default_rng(seed).standard_normal((rois.shape[0], features[0].shape[1], *output_size))
    return dict(
        name=name,
        features=features,
        scales=[1.0 / s for s in STRIDES[: len(features)]],
        rois=rois,
        output_size=output_size,
        sampling_ratio=sampling_ratio,
        aligned=aligned,
        finest_scale=finest_scale,
        grad_output=grad.astype(dtype),
    )


def level_edge_rois(batch, finest_scale=56.0):
    """RoIs whose sqrt(area) sits on and around every level boundary (finest_scale * 2^k)."""
    rois = []
    for k in range(5):
        side = finest_scale * 2**k
        for s in (side * (1 - 1e-3), side, side * (1 + 1e-3)):
            rois.append([k % batch, 3.0, 5.0, 3.0 + s, 5.0 + s])
    rois.append([0, 20.0, 20.0, 20.0, 20.0])  # zero area -> level 0
    rois.append([0, 30.0, 30.0, 10.0, 10.0])  # negative size
    return rois


def roi_cases() -> list[dict]:
    rng = np.random.default_rng(23)
    cases = []
    for dtype in (np.float32, np.float64, np.float16):
        features = _pyramid(rng, 2, 3, 256, 4, dtype)
        for aligned in (True, False):
            for sampling in (0, 2):
                rois = level_edge_rois(2)
                rois += [
                    [1, -40.0, -30.0, 90.0, 100.0],  # partly outside the map
                    [0, 300.0, 310.0, 420.0, 500.0],  # entirely outside
                    [1.7, 10.0, 12.0, 180.0, 150.0],
                ]  # fractional batch index: truncated
                cases.append(
                    roi_case(
                        f"{np.dtype(dtype).name}-{'aligned' if aligned else 'legacy'}-s{sampling}",
                        features,
                        rois,
                        sampling_ratio=sampling,
                        aligned=aligned,
                        seed=len(cases),
                    )
                )
    # non-finite coordinates: level 0 and an all-zero row, never a crash
    features = _pyramid(rng, 2, 2, 128, 3, np.float32)
    rois = [
        [0, np.nan, 1.0, 50.0, 60.0],
        [1, 2.0, np.inf, 40.0, 40.0],
        [0, -np.inf, 0.0, 10.0, 10.0],
        [np.nan, 1.0, 1.0, 30.0, 30.0],
        [1, 5.0, 5.0, 70.0, 90.0],
    ]
    cases.append(roi_case("non-finite-rois", features, rois, output_size=(3, 3)))
    features16 = _pyramid(rng, 2, 2, 128, 3, np.float16)
    rois = [[0, 10.0, 10.0, 60.0, 70.0], [1, 0.5, 1.5, 127.0, 120.0], [1, 33.3, 12.1, 35.0, 90.0]]
    cases.append(roi_case("float16-features-float32-rois", features16, rois, roi_dtype=np.float32))
    # more output elements than one grid of the lowered block cap: grid-stride second iterations
    features = _pyramid(rng, 1, 4, 64, 2, np.float32)
    rois = rng.uniform(0, 60, (40, 4))
    rois = np.concatenate(
        [np.zeros((40, 1)), np.minimum(rois[:, :2], rois[:, 2:]), np.maximum(rois[:, :2], rois[:, 2:])], 1
    )
    cases.append(roi_case("many-rois", features, rois, output_size=(5, 4), seed=99))
    return cases
