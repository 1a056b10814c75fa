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
  reference detections (score >= 0.05) taken as ground truth (100 = identical); in the trained
  mode also a looser match (IoU >= 0.9, score within 0.01) and the median / 99th percentile of the
  box change over the IoU >= 0.5 pairs.

Two modes:

Random weights (default): the model has RANDOM weights (seed 0) with score threshold 0 and 100
detections per image, on synthetic scenes of 512 x 640 and 1024 x 1280; the numbers say how
sensitive this head is to RoI rounding, not what a trained model loses
(benchmarks/results/trt_fp16_rois.json).

Trained (--checkpoint CKPT --data DIR): a trained Faster R-CNN (e.g. recipe
synthetic-cpu-faster-rcnn, sspnet/engine/recipes.py) on a data split, additionally scored against
the GROUND TRUTH with the TinyPerson protocol (sspnet.evaluation.evaluate: AP50/25/75-tiny,
AP50-all) for fp32 and fp16 RoIs. The synthetic images are 256 x 256, where fp16 rounding moves a
coordinate by at most 1/16 px, so the large coordinates an engine sees are reached two ways:

- upscaled x S (--scale, default 1 2 4): the images resized by S (x4: 1024 x 1024, coordinates
  past 512 px, where fp16 steps are 0.5 px). The people grow by S too, away from the sizes the model was trained on,
  so the fp32 AP drops with S; the fp16 rounding is also S times smaller relative to a person;
- mosaic G x G (--mosaic, default 2 4 5 6): G x G images at native size tiled into one frame
  (4 x 4: 1024 x 1024; 6 x 6: 1536 x 1536, coordinates past 1024 px where fp16 steps are 1 px), so
  tiny people sit at large coordinates, the deployment case (large engine input, tiny people);
  proposals and detections per frame are raised G^2 times to match per-image runs.

Detections are mapped back to each image's own pixels (boxes / S; mosaic: the tile holding the box
centre, shifted and clipped) before scoring, so the TinyPerson size ranges keep their meaning; RoI
and detection-level statistics are in frame pixels (what the engine sees). Both runs are
deterministic on the CPU (fp32 twice gives identical detections), so every difference is the
rounding's. Results: benchmarks/results/trt_fp16_rois.json (random weights) and
trt_fp16_rois_trained.json (a trained synthetic-cpu-faster-rcnn model); docs pages
results/trt_fp16_rois.md and results/trt_fp16_rois_trained.md.

    python benchmarks/trt_fp16_rois.py [--images 12] [--out benchmarks/results/trt_fp16_rois.json]
    python benchmarks/trt_fp16_rois.py --checkpoint CKPT --data DIR [--split val] [--scale 1 2 4]
        [--mosaic 2 4 5 6] [--limit N] [--out benchmarks/results/trt_fp16_rois_trained.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from pathlib import Path

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
    return dict(
        rois=total,
        rois_moved=moved,
        rois_moved_pct=100.0 * moved / max(total, 1),
        max_coordinate_change_px=max_move,
        level_changes=flips,
        pooled_max_abs_diff=max_pooled,
        pooled_relative_l2_diff=float(np.mean(rel_pooled)),
    )


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


def box_changes(reference: dict, candidate: dict) -> np.ndarray:
    """Per reference detection with a candidate at IoU >= 0.5: the largest coordinate change (px)
    to its best-IoU candidate."""
    from sspnet.export.parity import box_iou

    changes = []
    for index in range(len(reference["num_dets"])):
        a = reference["boxes"][index][: count(reference, index)]
        b = candidate["boxes"][index][: count(candidate, index)]
        if len(a) and len(b):
            iou = box_iou(a, b)
            rows = np.where(iou.max(axis=1) >= 0.5)[0]
            changes.extend(float(np.abs(a[i] - b[int(iou[i].argmax())]).max()) for i in rows)
    return np.asarray(changes, np.float64)


def max_box_change(reference: dict, candidate: dict) -> float:
    changes = box_changes(reference, candidate)
    return float(changes.max()) if len(changes) else 0.0


def measure(model, imgsz, count) -> dict:
    from sspnet.export.parity import synthetic_images

    stats = dict(imgsz=list(imgsz), images=count)
    stats.update(compare_runs(model, synthetic_images(count, imgsz, seed=0), random_weights=True))
    stats.pop("outputs")
    return stats


def compare_runs(model, frames: np.ndarray, batch_size: int = 2, random_weights: bool = False) -> dict:
    """Run `model` on uint8 [N, 3, H, W] `frames` with fp32 and with fp16-rounded RoIs: RoI and
    detection statistics (in the frames' pixels), plus both runs' contract outputs."""
    from sspnet.export.parity import compare_detections, run_pytorch

    calls = []
    start = time.perf_counter()
    with rois_through(lambda r: r, record=calls) as original:
        reference = run_pytorch(model, frames, batch_size=batch_size)
    with rois_through(to_fp16):
        emulated = run_pytorch(model, frames, batch_size=batch_size)
    stats = dict(roi=roi_stats(calls, original))
    del calls
    stats["detections"] = compare_detections(reference, emulated)
    stats["detections"]["max_box_change_px_iou50"] = max_box_change(reference, emulated)
    if not random_weights:
        loose = compare_detections(reference, emulated, iou_min=0.9, score_tol=0.01)
        stats["detections"]["matched_pct_iou90_score01"] = loose["matched_pct"]
        changes = box_changes(reference, emulated)
        if len(changes):
            stats["detections"].update(
                box_change_px_iou50_p50=float(np.percentile(changes, 50)),
                box_change_px_iou50_p99=float(np.percentile(changes, 99)),
                boxes_changed_over_1px_pct=float(100.0 * np.mean(changes > 1.0)),
            )
    stats["detections"]["ap50_vs_fp32_reference"] = average_precision_50(reference, emulated)
    stats["seconds"] = round(time.perf_counter() - start, 1)
    return dict(stats, outputs=(reference, emulated))


# ---- trained mode: larger coordinates from small dataset images ---------------------------------


def upscale(images: np.ndarray, scale: int) -> np.ndarray:
    """uint8 [N, 3, H, W] images resized (bilinear) to [N, 3, scale * H, scale * W]."""
    if scale == 1:
        return images
    import cv2

    height, width = images.shape[2:]
    out = [
        cv2.resize(
            np.ascontiguousarray(image.transpose(1, 2, 0)),
            (scale * width, scale * height),
            interpolation=cv2.INTER_LINEAR,
        )
        for image in images
    ]
    return np.stack(out).transpose(0, 3, 1, 2).copy()


def scale_outputs(outputs: dict, factor: float) -> dict:
    """Contract outputs with every box coordinate multiplied by `factor` (a copy)."""
    scaled = {name: np.array(value, copy=True) for name, value in outputs.items()}
    scaled["boxes"] = (scaled["boxes"] * np.float32(factor)).astype(scaled["boxes"].dtype)
    return scaled


def mosaic(images: np.ndarray, grid: int) -> np.ndarray:
    """uint8 [N, 3, H, W] images laid out `grid` x `grid` (row-major) into ceil(N / grid^2) frames
    [3, grid * H, grid * W]; tiles past the last image are black."""
    count, channels, height, width = images.shape
    per_frame = grid * grid
    frames = np.zeros((-(-count // per_frame), channels, grid * height, grid * width), images.dtype)
    for index in range(count):
        frame, cell = divmod(index, per_frame)
        row, col = divmod(cell, grid)
        frames[frame, :, row * height : (row + 1) * height, col * width : (col + 1) * width] = images[index]
    return frames


def split_mosaic(outputs: dict, grid: int, tile_hw: tuple[int, int], num_images: int) -> dict:
    """Contract outputs of mosaic frames (see `mosaic`) -> contract outputs of the `num_images` source
    images: each detection goes to the tile holding its box centre, is shifted into that image's
    coordinates and clipped to it (as the model clips to the image); detections on black tiles are
    dropped. Score order is kept."""
    height, width = tile_hw
    per_image = [[] for _ in range(num_images)]
    for frame in range(len(outputs["num_dets"])):
        n = count(outputs, frame)
        boxes = np.asarray(outputs["boxes"][frame][:n], np.float32)
        scores, labels = outputs["scores"][frame][:n], outputs["labels"][frame][:n]
        cols = np.clip(((boxes[:, 0] + boxes[:, 2]) / 2 // width).astype(int), 0, grid - 1)
        rows = np.clip(((boxes[:, 1] + boxes[:, 3]) / 2 // height).astype(int), 0, grid - 1)
        for box, score, label, row, col in zip(boxes, scores, labels, rows, cols):
            index = frame * grid * grid + row * grid + col
            if index < num_images:
                shifted = box - np.array([col * width, row * height] * 2, np.float32)
                shifted = np.clip(shifted, 0, [width, height, width, height]).astype(np.float32)
                per_image[index].append((shifted, score, label))
    capacity = max(1, max(len(d) for d in per_image))
    result = {
        "num_dets": np.zeros((num_images, 1), np.int32),
        "boxes": np.zeros((num_images, capacity, 4), np.float32),
        "scores": np.zeros((num_images, capacity), np.float32),
        "labels": np.full((num_images, capacity), -1, np.int32),
    }
    for index, dets in enumerate(per_image):
        result["num_dets"][index, 0] = len(dets)
        for k, (box, score, label) in enumerate(dets):
            result["boxes"][index, k], result["scores"][index, k], result["labels"][index, k] = box, score, label
    return result


GT_METRICS = ("AP50_tiny", "AP25_tiny", "AP75_tiny", "AP50_all")


def ground_truth_ap(annotations, outputs: dict) -> dict:
    """TinyPerson AP (sspnet.evaluation, percent) of contract outputs in the images' own pixels."""
    from sspnet.export.parity import outputs_to_detections

    from sspnet.evaluation import evaluate

    detections = outputs_to_detections(outputs, [record.image_id for record in annotations.records])
    results = evaluate(annotations, detections, compute_mr=False)
    return {key: float(results[key]) for key in GT_METRICS}


def measure_trained(model, images: np.ndarray, annotations, *, scale: int = 1, grid: int = 1) -> dict:
    """fp32 vs fp16 RoIs of a trained model on dataset images, upscaled by `scale` or laid out in
    `grid` x `grid` mosaics; AP against the ground truth after mapping the detections back to each
    image's own pixels (so the TinyPerson size ranges keep their meaning)."""
    height, width = images.shape[2:]
    frames = mosaic(images, grid) if grid > 1 else upscale(images, scale)
    stats = dict(
        layout=f"mosaic {grid}x{grid}" if grid > 1 else f"upscaled x{scale}",
        frame_hw=list(frames.shape[2:]),
        frames=len(frames),
        images=len(images),
    )
    stats.update(compare_runs(model, frames))
    reference, emulated = stats.pop("outputs")
    if grid > 1:
        back = [split_mosaic(out, grid, (height, width), len(images)) for out in (reference, emulated)]
    else:
        back = [scale_outputs(out, 1.0 / scale) for out in (reference, emulated)]
    fp32, fp16 = (ground_truth_ap(annotations, out) for out in back)
    stats["ground_truth"] = dict(
        fp32_rois=fp32, fp16_rois=fp16, difference={key: fp16[key] - fp32[key] for key in GT_METRICS}
    )
    print(
        f"{stats['layout']:>14} {stats['frame_hw']}: AP50-tiny fp32 {fp32['AP50_tiny']:.2f} "
        f"fp16-RoIs {fp16['AP50_tiny']:.2f} ({fp16['AP50_tiny'] - fp32['AP50_tiny']:+.2f}), matched "
        f"{stats['detections']['matched_pct']:.1f} % (loose {stats['detections']['matched_pct_iou90_score01']:.1f} %), "
        f"box change p50 {stats['detections'].get('box_change_px_iou50_p50', 0):.3f} max "
        f"{stats['detections']['max_box_change_px_iou50']:.3f} px, {stats['seconds']} s",
        flush=True,
    )
    return stats


def run_trained(args) -> dict:
    import shlex
    import sys

    from sspnet.export.parity import dataset_images

    from sspnet.checkpoint import load_model

    images, annotations = dataset_images(args.data, args.split, limit=args.limit)
    model = load_model(args.checkpoint)
    config = model.config
    if config.variant != "faster_rcnn":
        raise SystemExit(f"{args.checkpoint}: a {config.variant} model has no RoIAlign; need a Faster R-CNN")
    base = dict(
        rpn_test_nms_pre=config.rpn_test_nms_pre,
        rpn_test_max_proposals=config.rpn_test_max_proposals,
        max_detections=config.max_detections,
    )
    rows = [measure_trained(model, images, annotations, scale=scale) for scale in args.scale]
    for grid in args.mosaic:
        # grid^2 images per frame: grid^2 times the proposals and detections, as per image
        wide = load_model(args.checkpoint, **{key: value * grid * grid for key, value in base.items()})
        rows.append(measure_trained(wide, images, annotations, grid=grid))
    info = getattr(model, "checkpoint_info", {}) or {}
    training = dict(note=args.training, checkpoint_extra=info.get("extra"))
    run_config = Path(args.checkpoint).parent / "config.yaml"  # sspnet train's run folder
    if run_config.is_file():
        import yaml

        stored = yaml.safe_load(run_config.read_text(encoding="utf-8")) or {}
        training["run_config"] = {
            key: stored.get(key)
            for key in (
                "preset",
                "model_overrides",
                "max_iters",
                "batch_size",
                "lr",
                "clip_grad",
                "augment",
                "seed",
                "warmup_iters",
                "milestones",
            )
        }
    return dict(
        benchmark="trt_fp16_rois_trained",
        command=" ".join(shlex.quote(a) for a in ["python", "benchmarks/trt_fp16_rois.py", *sys.argv[1:]]),
        weights=dict(
            checkpoint=str(args.checkpoint),
            preset=info.get("preset"),
            overrides=info.get("overrides"),
            test_settings=dict(
                base, score_thr=config.score_thr, nms_method=config.nms_method, nms_iou_thr=config.nms_iou_thr
            ),
        ),
        training=training,
        data=dict(folder=str(args.data), split=args.split, images=len(images), image_hw=list(images.shape[2:])),
        emulation="CPU kernels, fp32 everywhere; RoIs rounded to fp16 and back before RoIAlign",
        evaluation=(
            "sspnet.evaluation.evaluate (TinyPerson protocol, 200 detections per image, no MR) against "
            "the ground truth, after mapping detections back to each image's own pixels (upscaled: "
            "boxes / scale; mosaic: the tile of the box centre, shifted and clipped); RoI and detection "
            "statistics (roi, detections) are in the frames' pixels, i.e. what the engine sees"
        ),
        versions=dict(torch=torch.__version__, python=platform.python_version()),
        machine=platform.machine(),
        layouts=rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12, help="random-weights mode: images per size (default 12)")
    parser.add_argument(
        "--out",
        help="result JSON (default benchmarks/results/trt_fp16_rois.json, "
        "with --checkpoint benchmarks/results/trt_fp16_rois_trained.json)",
    )
    parser.add_argument(
        "--checkpoint",
        help="a trained Faster R-CNN checkpoint: measure it on --data instead of random weights on synthetic scenes",
    )
    parser.add_argument("--data", help="with --checkpoint: data folder (DIR/annotations/<split>.json, DIR/images)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--training", help="with --checkpoint: how the checkpoint was trained (recorded as given)")
    parser.add_argument("--limit", type=int, help="with --checkpoint: at most this many images")
    parser.add_argument(
        "--scale",
        type=int,
        nargs="*",
        default=[1, 2, 4],
        help="with --checkpoint: upscale factors of the images (default 1 2 4)",
    )
    parser.add_argument(
        "--mosaic",
        type=int,
        nargs="*",
        default=[2, 4, 5, 6],
        help="with --checkpoint: also G x G mosaics of the images at native size (default 2 4 5 6)",
    )
    args = parser.parse_args()

    from sspnet.io.atomic import atomic_write_json

    torch.set_grad_enabled(False)
    if args.checkpoint:
        if not args.data:
            parser.error("--checkpoint needs --data")
        if any(s < 1 for s in args.scale) or any(g < 2 for g in args.mosaic):
            parser.error("--scale values must be >= 1 and --mosaic values >= 2")
        from sspnet.io.outputs import OutputGuard

        out = OutputGuard(inputs=[args.checkpoint, args.data], verb="trt_fp16_rois").check_file(
            args.out or "benchmarks/results/trt_fp16_rois_trained.json", kind="json"
        )  # before the long run
        results = run_trained(args)
        atomic_write_json(out, results)
        print(json.dumps({k: v for k, v in results.items() if k != "layouts"}, indent=1))
        return

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
    atomic_write_json(args.out or "benchmarks/results/trt_fp16_rois.json", results)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    from sspnet.errors import SSPNetError

    try:
        main()
    except SSPNetError as error:  # a user's mistake (e.g. --out naming an input): one line, exit 2
        print(f"trt_fp16_rois.py: {error}", file=__import__("sys").stderr)
        raise SystemExit(error.exit_code) from None
