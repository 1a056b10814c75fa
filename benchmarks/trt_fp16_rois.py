"""fp16 vs fp32 RoI coordinates in the RoIAlign plugin, emulated with the CPU kernels.

In an fp16 TensorRT engine whose RoIAlign plugin takes fp16 RoIs, every RoI coordinate is rounded
to fp16 (0.5 px steps from 512 px, 1 px from 1024 px) before pooling. This runs the PyTorch
detector on the CPU twice on the same images: once as is (fp32 RoIs, the reference) and once with
the RoIs rounded to fp16 and back right before the RoIAlign op (everything else fp32), and reports:

- RoI level: how many proposals move, by how much, how many change pyramid level, and the change
  of the pooled features;
- detection level: detections matched to the reference (same label, IoU >= 0.99, score within
  1e-3; sspnet.export.parity.compare_detections), the largest box-coordinate change among
  detections paired at IoU >= 0.5, and AP50 of the fp16-RoI detections scored against the
  reference detections (score >= 0.05) taken as ground truth (100 = identical).

Weights: there is no trained Faster R-CNN checkpoint (the synthetic-cpu recipe trains FoveaBox,
which has no RoIAlign), so the model has RANDOM weights (seed 0) with score threshold 0 and 100
detections per image; the numbers say how sensitive this head is to RoI rounding, not what a
trained model loses.

    python benchmarks/trt_fp16_rois.py [--images 12] [--out benchmarks/results/trt_fp16_rois.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time

import numpy as np
import torch

PRESET = "faster_rcnn_r18_sspnet_small"
OVERRIDES = dict(score_thr=0.0, nms_min_score=0.0, max_detections=100)
SIZES = [(512, 640), (1024, 1280)]


@contextlib.contextmanager
def rois_through(transform, record=None):
    """Route the RoIs of every RoIAlign call through `transform` (and record the calls)."""
    import sspnet.ops

    original = sspnet.ops.multi_level_roi_align

    def patched(features, rois, *args, **kwargs):
        if record is not None:
            record.append((list(features), rois.clone(), args, kwargs))
        return original(features, transform(rois), *args, **kwargs)

    sspnet.ops.multi_level_roi_align = patched
    try:
        yield original
    finally:
        sspnet.ops.multi_level_roi_align = original


def to_fp16(rois: torch.Tensor) -> torch.Tensor:
    return rois.half().float()


def levels(rois: torch.Tensor, finest_scale: float, num_levels: int) -> torch.Tensor:
    """The pyramid level of each RoI (csrc/kernels/multi_level_roi_align.h's rule)."""
    width = (rois[:, 3] - rois[:, 1]).clamp(min=0)
    height = (rois[:, 4] - rois[:, 2]).clamp(min=0)
    scale = torch.sqrt(width * height)
    return torch.floor(torch.log2(scale / finest_scale + 1e-6)).clamp(0, num_levels - 1)


def roi_stats(calls, original) -> dict:
    moved, max_move, flips, total, max_pooled, rel_pooled = 0, 0.0, 0, 0, 0.0, []
    for features, rois, args, kwargs in calls:
        rounded = to_fp16(rois)
        delta = (rounded[:, 1:] - rois[:, 1:]).abs()
        moved += int((delta.max(dim=1).values > 0).sum())
        max_move = max(max_move, float(delta.max()) if len(rois) else 0.0)
        finest = kwargs.get("finest_scale", 56.0)
        flips += int((levels(rois, finest, len(features)) != levels(rounded, finest, len(features))).sum())
        total += len(rois)
        reference = original(features, rois, *args, **kwargs)
        emulated = original(features, rounded, *args, **kwargs)
        difference = (emulated - reference).abs()
        max_pooled = max(max_pooled, float(difference.max()) if difference.numel() else 0.0)
        rel_pooled.append(float(difference.norm() / reference.norm().clamp(min=1e-12)))
    return dict(rois=total, rois_moved=moved, rois_moved_pct=100.0 * moved / max(total, 1),
                max_coordinate_change_px=max_move, level_changes=flips,
                pooled_max_abs_diff=max_pooled, pooled_relative_l2_diff=float(np.mean(rel_pooled)))


def count(outputs: dict, index: int) -> int:
    return int(np.asarray(outputs["num_dets"][index]).reshape(-1)[0])


def average_precision_50(reference: dict, candidate: dict, score_min: float = 0.05) -> float:
    """AP50 (all-point) of `candidate` detections against `reference` detections as ground truth."""
    from sspnet.export.parity import box_iou

    records, positives = [], 0
    for index in range(len(reference["num_dets"])):
        n_ref, n_out = count(reference, index), count(candidate, index)
        keep = reference["scores"][index][:n_ref] >= score_min
        gt_boxes, gt_labels = reference["boxes"][index][:n_ref][keep], reference["labels"][index][:n_ref][keep]
        positives += len(gt_boxes)
        boxes, scores = candidate["boxes"][index][:n_out], candidate["scores"][index][:n_out]
        labels = candidate["labels"][index][:n_out]
        iou = box_iou(boxes, gt_boxes) if len(boxes) and len(gt_boxes) else np.zeros((len(boxes), 0))
        used = np.zeros(len(gt_boxes), bool)
        for i in np.argsort(-scores, kind="stable"):
            ok = ~used & (gt_labels == labels[i]) & (iou[i] >= 0.5) if iou.shape[1] else np.zeros(0, bool)
            hit = bool(ok.any())
            if hit:
                used[int(np.argmax(np.where(ok, iou[i], -1.0)))] = True
            records.append((float(scores[i]), hit))
    if positives == 0:
        return 100.0
    records.sort(key=lambda r: -r[0])
    hits = np.array([r[1] for r in records], float)
    tp, fp = np.cumsum(hits), np.cumsum(1 - hits)
    recall, precision = tp / positives, tp / np.maximum(tp + fp, 1e-12)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    recall = np.concatenate([[0.0], recall])
    return float(100.0 * np.sum((recall[1:] - recall[:-1]) * precision))


def max_box_change(reference: dict, candidate: dict) -> float:
    from sspnet.export.parity import box_iou

    worst = 0.0
    for index in range(len(reference["num_dets"])):
        a = reference["boxes"][index][: count(reference, index)]
        b = candidate["boxes"][index][: count(candidate, index)]
        if len(a) and len(b):
            iou = box_iou(a, b)
            rows = np.where(iou.max(axis=1) >= 0.5)[0]
            for i in rows:
                worst = max(worst, float(np.abs(a[i] - b[int(iou[i].argmax())]).max()))
    return worst


def measure(model, imgsz, count) -> dict:
    from sspnet.export.parity import compare_detections, run_pytorch, synthetic_images

    images = synthetic_images(count, imgsz, seed=0)
    calls = []
    start = time.perf_counter()
    with rois_through(lambda r: r, record=calls) as original:
        reference = run_pytorch(model, images, batch_size=2)
    with rois_through(to_fp16):
        emulated = run_pytorch(model, images, batch_size=2)
    stats = dict(imgsz=list(imgsz), images=count)
    stats["roi"] = roi_stats(calls, original)
    stats["detections"] = compare_detections(reference, emulated)
    stats["detections"]["max_box_change_px_iou50"] = max_box_change(reference, emulated)
    stats["detections"]["ap50_vs_fp32_reference"] = average_precision_50(reference, emulated)
    stats["seconds"] = round(time.perf_counter() - start, 1)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12, help="images per size (default 12)")
    parser.add_argument("--out", default="benchmarks/results/trt_fp16_rois.json")
    args = parser.parse_args()

    from sspnet.io.atomic import atomic_write_json
    from sspnet.models import build_model

    torch.manual_seed(0)
    model = build_model(PRESET, **OVERRIDES).eval()
    results = dict(
        benchmark="trt_fp16_rois",
        command="python benchmarks/trt_fp16_rois.py",
        weights=f"RANDOM (seed 0): no trained {PRESET} checkpoint exists; overrides {OVERRIDES}",
        emulation="CPU kernels, fp32 everywhere; RoIs rounded to fp16 and back before RoIAlign",
        versions=dict(torch=torch.__version__, python=platform.python_version()),
        machine=platform.machine(),
        sizes=[measure(model, imgsz, args.images if imgsz[0] <= 512 else max(args.images // 3, 2)) for imgsz in SIZES],
    )
    atomic_write_json(args.out, results)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
