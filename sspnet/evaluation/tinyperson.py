"""TinyPerson evaluation (docs/evaluation.md): AP and MR over the TinyPerson size ranges, in NumPy.

AP (TinyBenchmark's modified COCOeval, identical in the SSPNet code):
  * IoU thresholds 0.25 / 0.5 / 0.75, 101 recall points, at most 200 detections per image and class
    (highest scores, stable order).
  * A GT box is ignored when flagged `ignore` or `iscrowd`, or `uncertain` (ignore_uncertain=True),
    or when its `area` field lies outside the range (bounds inclusive).
  * Greedy matching by decreasing score: a detection takes the unmatched regular GT with the highest
    IoU >= t (ties: the later GT, as pycocotools); only if there is none may it fall on an ignored GT
    (IoU >= t; crowd GTs use intersection / detection area and can take many detections).
  * IoD rule (use_iod_for_ignore=True): a detection still unmatched is ignored when its intersection
    over its own area with some ignored GT is >= t; several detections may fall into one ignore region.
  * Unmatched detections whose area (w*h) lies outside the range are ignored.
  * precision envelope, mean precision at recall 0, 0.01, ..., 1 (pycocotools' accumulate).

MR (TinyBenchmark's CityPersons-style code):
  * ranges on size = sqrt(area): tiny1 [2, 8], tiny2 [8, 12], tiny3 [12, 20], tiny [2, 20],
    small [20, 32], all [-1, 1e10]; at most 1000 detections per image, then only detections with
    size in [lo / 1.25, hi * 1.25) take part.
  * ignored GTs (flags or size outside the range) are matched by intersection over detection area
    (IoD >= t) and absorb any number of detections; regular GTs by IoU >= t, one detection each.
  * FPPI = false positives / number of images; miss rate = 1 - recall read at 9 FPPI values
    log-spaced in [1e-2, 1] (the last point at or below each value; 0 recall before the first
    detection); MR = exp(mean(log(miss rate))).

  Two MR modes (`mr_mode`):
    "exact" (default): the computation above.
    "official": the official TinyBenchmark MR script, quirks included, so that our MR can be put
      next to a published table. (1) A detection that matched nothing gets a second pass against the
      ignored GTs: the script converts their overlap, already an IoD, once more as if it were an IoU,
      IoD' = x / (1 + x) * (1 + area_gt / area_det), and ignores the detection when the largest
      IoD' > 0.5, a fixed threshold at every t. (2) An FPPI reference below the first false positive
      reads recall[-1] (Python's last element: the final recall) instead of 0; this happens whenever
      the top-scored detection is a false positive and there are fewer than 100 images (1 / images
      > 0.01). (3) The 9 FPPI references come from np.arange (last bits differ from linspace).
    Size of the difference: (1) can only turn false positives near ignore regions into ignored
    detections, so the official MR is never higher; an outside comparison found it about 1.4 points
    lower on TinyPerson-scale sets (100+ images); on our synthetic set it reads lower too, most in
    the narrow sub-ranges (tiny2, tiny3): benchmarks/results/mr_official_vs_exact.json, docs page
    results/mr_official_vs_exact.md.
    (2) can make MR of a small set arbitrarily optimistic (one false positive at the top of 20
    images turns the first three FPPI references into the final recall).

Results are percentages; a metric without any regular GT in its range is NaN.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sspnet.data.tinyperson import AnnotationSet, load_annotations
from sspnet.errors import InputError
from sspnet.evaluation.results import check_detection_arrays, load_corner_file, merge_corner_results, read_results

IOU_THRESHOLDS = (0.25, 0.5, 0.75)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
FPPI_POINTS = np.exp(np.linspace(np.log(1e-2), np.log(1.0), 9))
# TinyBenchmark's get_fppi(0.01, 1.0, 9): the same points through np.arange
OFFICIAL_FPPI_POINTS = np.exp(np.arange(np.log(1e-2), np.log(1.0) + 1e-10, np.log(1.0 / 1e-2) / 8))
MR_MODES = ("exact", "official")
OFFICIAL_IGNORE_IOD = 0.5  # the official script's fixed threshold of its second IoD pass

# label -> (lo, hi) on size = sqrt(area); AP compares area with lo**2 and hi**2 (inclusive)
AP_RANGES = {
    "all": (1.0, 1e5),
    "tiny": (1.0, 20.0),
    "tiny1": (1.0, 8.0),
    "tiny2": (8.0, 12.0),
    "tiny3": (12.0, 20.0),
    "small": (20.0, 32.0),
    "reasonable": (32.0, 1e5),
}
MR_RANGES = {
    "all": (-1.0, 1e10),
    "tiny": (2.0, 20.0),
    "tiny1": (2.0, 8.0),
    "tiny2": (8.0, 12.0),
    "tiny3": (12.0, 20.0),
    "small": (20.0, 32.0),
}
MR_SIZE_EXPAND = 1.25


@dataclass
class ImageClassData:
    """GT and detections of one image and one class. G GTs, D detections (sorted by score)."""

    gt_boxes: np.ndarray  # float64 [G, 4] xyxy
    gt_areas: np.ndarray  # float64 [G] annotation area
    gt_flag_ignore: np.ndarray  # bool [G] ignore | crowd | (uncertain if ignore_uncertain)
    gt_crowd: np.ndarray  # bool [G]
    det_boxes: np.ndarray  # float64 [D, 4] xyxy, decreasing score
    det_scores: np.ndarray  # float64 [D]
    det_areas: np.ndarray  # float64 [D] w * h as given (COCO results: bbox[2] * bbox[3])


# --------------------------------------------------------------------------------------- geometry


def intersections(dets: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """Intersection areas [D, G] of xyxy boxes."""
    w = np.minimum(dets[:, None, 2], gts[None, :, 2]) - np.maximum(dets[:, None, 0], gts[None, :, 0])
    h = np.minimum(dets[:, None, 3], gts[None, :, 3]) - np.maximum(dets[:, None, 1], gts[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def box_areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def iou_and_iod(dets: np.ndarray, gts: np.ndarray, crowd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(IoU, IoD) [D, G]; IoD = intersection / detection area. Crowd columns of the IoU are IoD (COCO)."""
    inter = intersections(dets, gts)
    det_area = box_areas(dets)[:, None]
    union = det_area + box_areas(gts)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
        iod = np.where(det_area > 0, inter / det_area, 0.0)
    iou[:, crowd] = iod[:, crowd]
    return iou, iod


def greedy_match(overlaps: np.ndarray, gt_ignore: np.ndarray, reusable: np.ndarray, threshold: float) -> np.ndarray:
    """pycocotools' matching for one image: detections (rows, by decreasing score) in turn take the
    best available GT with overlap >= threshold, regular GTs before ignored ones.

    Args:
        overlaps: [D, G]; gt_ignore: bool [G]; reusable: bool [G] GTs that may take many detections.

    Returns:
        int64 [D] matched GT index or -1. Ties in overlap go to the later GT (pycocotools' `<` test).
    """
    num_dets, num_gts = overlaps.shape
    matched = [-1] * num_dets
    if num_dets and num_gts:
        # only (detection, GT) pairs above the threshold matter; walk them row by row in plain
        # Python (a detection rarely has more than a couple), which is much faster than per-row NumPy
        rows, cols = np.nonzero(overlaps >= min(threshold, 1 - 1e-10))
        values = overlaps[rows, cols].tolist()
        rows, cols = rows.tolist(), cols.tolist()
        ignore, reuse = gt_ignore.tolist(), reusable.tolist()
        taken = [False] * num_gts
        k = 0
        while k < len(rows):
            d = rows[k]
            best_regular = best_ignored = -1
            value_regular = value_ignored = -1.0
            while k < len(rows) and rows[k] == d:
                g, value = cols[k], values[k]
                k += 1
                if taken[g] and not reuse[g]:
                    continue
                if ignore[g]:
                    if value >= value_ignored:  # >=: the later of equal maxima, as pycocotools
                        best_ignored, value_ignored = g, value
                elif value >= value_regular:
                    best_regular, value_regular = g, value
            best = best_regular if best_regular >= 0 else best_ignored
            if best >= 0:
                matched[d] = best
                taken[best] = True
    return np.asarray(matched, dtype=np.int64)


def _hits(matched: np.ndarray, gt_ignore: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(matched to any GT, matched to a regular GT) as bool [D]."""
    hit = matched >= 0
    tp = hit.copy()
    tp[hit] = ~gt_ignore[matched[hit]]
    return hit, tp


# ------------------------------------------------------------------------------------------ inputs


def _load_gt(gt) -> AnnotationSet:
    if isinstance(gt, AnnotationSet):
        return gt
    if isinstance(gt, (str, Path, dict)):
        return load_annotations(gt, image_root=None, evaluation=True)
    raise TypeError(f"gt: expected a JSON path, a parsed dict or an AnnotationSet, got {type(gt).__name__}")


def _detections_by_image(detections, gt: AnnotationSet, corners=None) -> dict[int, tuple]:
    """-> {image_id: (boxes float64 [D, 4] xyxy, scores [D], labels int64 [D], areas [D])}, checked
    (sspnet.evaluation.results). Areas are kept as w * h of the input (COCO results) so that range
    tests agree with pycocotools bit for bit (x + w - x can differ from w in the last bit)."""
    if corners is not None:
        if isinstance(detections, dict):
            raise TypeError("corners: give the sub-image results as a COCO results path or list")
        return merge_corner_results(detections, load_corner_file(corners), gt)
    if isinstance(detections, (str, Path, list)):
        return read_results(detections, gt)
    if isinstance(detections, dict):
        return check_detection_arrays(detections, gt)
    raise TypeError(
        "detections: expected a COCO results JSON path, a list of COCO result dicts, or "
        f"{{image_id: {{'boxes', 'scores', 'labels'}}}}, got {type(detections).__name__}"
    )


def prepare(gt: AnnotationSet, detections: dict, ignore_uncertain: bool = True) -> list[list[ImageClassData]]:
    """Per class, per image (by increasing image id): GT and score-sorted detections."""
    per_class = []
    records = sorted(gt.records, key=lambda r: r.image_id)
    for label in range(len(gt.classes)):
        images = []
        for record in records:
            in_class = record.labels == label
            flags = record.ignore | record.iscrowd | (record.uncertain if ignore_uncertain else False)
            boxes, scores, labels, areas = detections.get(
                record.image_id, (np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), np.zeros(0))
            )
            mine = labels == label
            order = np.argsort(-scores[mine], kind="mergesort")
            images.append(
                ImageClassData(
                    gt_boxes=record.raw_boxes[in_class],
                    gt_areas=record.areas[in_class],
                    gt_flag_ignore=flags[in_class],
                    gt_crowd=record.iscrowd[in_class],
                    det_boxes=boxes[mine][order],
                    det_scores=scores[mine][order],
                    det_areas=areas[mine][order],
                )
            )
        per_class.append(images)
    return per_class


# ---------------------------------------------------------------------------------------------- AP


def _average_precision(scores: np.ndarray, tp: np.ndarray, ignored: np.ndarray, num_regular: int) -> float:
    """pycocotools' accumulate for one class / range / threshold -> AP in [0, 1] (NaN: no regular GT)."""
    if num_regular == 0:
        return math.nan
    order = np.argsort(-scores, kind="mergesort")
    tp, ignored = tp[order], ignored[order]
    tp_sum = np.cumsum(tp & ~ignored).astype(np.float64)
    fp_sum = np.cumsum(~tp & ~ignored).astype(np.float64)
    if len(tp_sum) == 0:
        return 0.0
    recall = tp_sum / num_regular
    precision = tp_sum / (tp_sum + fp_sum + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone envelope from the right
    index = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(index < len(precision), precision[np.minimum(index, len(precision) - 1)], 0.0)
    return float(sampled.mean())


def average_precisions(
    per_class: list[list[ImageClassData]],
    ranges: dict = AP_RANGES,
    thresholds=IOU_THRESHOLDS,
    max_detections: int = 200,
    use_iod_for_ignore: bool = True,
) -> dict[tuple[str, float], float]:
    """{(range label, threshold): AP in [0, 1] averaged over classes that have regular GT}."""
    per_class_ap: dict[tuple[str, float], list[float]] = {(r, t): [] for r in ranges for t in thresholds}
    for images in per_class:
        # per image: overlaps once, then each range and threshold
        collected = {(r, t): ([], [], [], 0) for r in ranges for t in thresholds}
        for data in images:
            dets, scores = data.det_boxes[:max_detections], data.det_scores[:max_detections]
            iou, iod = iou_and_iod(dets, data.gt_boxes, data.gt_crowd)
            det_areas = data.det_areas[:max_detections]
            for r, (lo, hi) in ranges.items():
                gt_ignore = data.gt_flag_ignore | (data.gt_areas < lo**2) | (data.gt_areas > hi**2)
                det_outside = (det_areas < lo**2) | (det_areas > hi**2)
                num_regular = int((~gt_ignore).sum())
                for t in thresholds:
                    matched = greedy_match(iou, gt_ignore, data.gt_crowd, t)
                    hit, tp = _hits(matched, gt_ignore)
                    ignored = hit & ~tp
                    if use_iod_for_ignore and gt_ignore.any() and len(dets):
                        ignored |= ~tp & (iod[:, gt_ignore].max(axis=1) >= min(t, 1 - 1e-10))
                    ignored |= ~hit & det_outside
                    s, tps, igs, n = collected[(r, t)]
                    s.append(scores)
                    tps.append(tp)
                    igs.append(ignored)
                    collected[(r, t)] = (s, tps, igs, n + num_regular)
        for key, (s, tps, igs, n) in collected.items():
            ap = _average_precision(
                np.concatenate(s) if s else np.zeros(0),
                np.concatenate(tps) if tps else np.zeros(0, bool),
                np.concatenate(igs) if igs else np.zeros(0, bool),
                n,
            )
            if not math.isnan(ap):
                per_class_ap[key].append(ap)
    return {key: (float(np.mean(v)) if v else math.nan) for key, v in per_class_ap.items()}


# ---------------------------------------------------------------------------------------------- MR


def _log_average_miss_rate(scores, tp, fp, num_regular: int, num_images: int, official: bool = False) -> float:
    if num_regular == 0:
        return math.nan
    order = np.argsort(-scores, kind="mergesort")
    recall = np.cumsum(tp[order]) / num_regular
    fppi = np.cumsum(fp[order]) / num_images
    points = OFFICIAL_FPPI_POINTS if official else FPPI_POINTS
    index = np.searchsorted(fppi, points, side="right") - 1  # last point with fppi <= reference
    if len(recall) == 0:
        recall_at = np.zeros(len(points))
    elif official:
        recall_at = recall[index]  # index -1 reads the final recall, as the official script
    else:
        recall_at = np.where(index >= 0, recall[np.maximum(index, 0)], 0.0)
    with np.errstate(divide="ignore"):
        return float(np.exp(np.mean(np.log(1.0 - recall_at))))


def _official_second_iod_pass(
    iod_ignored: np.ndarray, ignored_gt_areas: np.ndarray, det_areas: np.ndarray
) -> np.ndarray:
    """bool [D]: detections the official MR script ignores after they matched nothing (module
    docstring, MR mode "official" (1)). iod_ignored: [D, I] IoD with the ignored GTs."""
    with np.errstate(divide="ignore", invalid="ignore"):
        converted = iod_ignored / (1.0 + iod_ignored) * (1.0 + ignored_gt_areas[None, :] / det_areas[:, None])
        return converted.max(axis=1) > OFFICIAL_IGNORE_IOD  # NaN (zero-area detection) never counts


def miss_rates(
    per_class: list[list[ImageClassData]],
    ranges: dict = MR_RANGES,
    thresholds=IOU_THRESHOLDS,
    max_detections: int = 1000,
    mode: str = "exact",
) -> dict[tuple[str, float], float]:
    """{(range label, threshold): log-average miss rate in [0, 1] averaged over classes with GT}.
    mode: "exact" or "official" (module docstring)."""
    if mode not in MR_MODES:
        raise ValueError(f"mode: expected one of {MR_MODES}, got {mode!r}")
    official = mode == "official"
    per_class_mr: dict[tuple[str, float], list[float]] = {(r, t): [] for r in ranges for t in thresholds}
    for images in per_class:
        num_images = len(images)
        collected = {(r, t): ([], [], [], 0) for r in ranges for t in thresholds}
        for data in images:
            dets, scores = data.det_boxes[:max_detections], data.det_scores[:max_detections]
            det_areas = data.det_areas[:max_detections]
            iou, iod = iou_and_iod(dets, data.gt_boxes, data.gt_crowd)
            det_sizes = np.sqrt(np.clip(det_areas, 0, None))
            gt_sizes = np.sqrt(data.gt_areas)
            for r, (lo, hi) in ranges.items():
                keep = (det_sizes >= lo / MR_SIZE_EXPAND) & (det_sizes < hi * MR_SIZE_EXPAND)
                gt_ignore = data.gt_flag_ignore | (gt_sizes < lo) | (gt_sizes > hi)
                overlaps = np.where(gt_ignore[None, :], iod, iou)[keep]  # ignored GTs: IoD
                num_regular = int((~gt_ignore).sum())
                for t in thresholds:
                    matched = greedy_match(overlaps, gt_ignore, gt_ignore, t)
                    hit, tp = _hits(matched, gt_ignore)
                    fp = ~hit
                    if official and gt_ignore.any() and fp.any():
                        fp &= ~_official_second_iod_pass(
                            overlaps[:, gt_ignore], data.gt_areas[gt_ignore], det_areas[keep]
                        )
                    s, tps, fps, n = collected[(r, t)]
                    s.append(scores[keep])
                    tps.append(tp)
                    fps.append(fp)
                    collected[(r, t)] = (s, tps, fps, n + num_regular)
        for key, (s, tps, fps, n) in collected.items():
            mr = _log_average_miss_rate(
                np.concatenate(s), np.concatenate(tps), np.concatenate(fps), n, num_images, official
            )
            if not math.isnan(mr):
                per_class_mr[key].append(mr)
    return {key: (float(np.mean(v)) if v else math.nan) for key, v in per_class_mr.items()}


# ------------------------------------------------------------------------------------------ public


def metric_key(metric: str, threshold: float, range_label: str) -> str:
    """e.g. ("AP", 0.5, "tiny") -> "AP50_tiny"."""
    return f"{metric}{int(round(threshold * 100))}_{range_label}"


def dense_image_ids(gt: AnnotationSet) -> set[int]:
    """Images the protocol leaves out: those whose boxes carry TinyPerson's `in_dense_image` flag
    (crowds of 200+ people that were not annotated one by one)."""
    return {record.image_id for record in gt.records if record.in_dense_image.any()}


def evaluate(
    gt,
    detections,
    ignore_uncertain: bool = True,
    use_iod_for_ignore: bool = True,
    max_detections_ap: int = 200,
    max_detections_mr: int = 1000,
    compute_mr: bool = True,
    exclude_dense_images: bool = True,
    corners=None,
    mr_mode: str = "exact",
) -> dict[str, float]:
    """TinyPerson AP and MR of detections against ground truth.

    Args:
        gt: GT JSON path, parsed JSON dict or AnnotationSet (TinyPerson, corner or plain COCO JSON),
            read as the official evaluation reads it (boxes as in the file, float64).
        detections: COCO results (JSON path or list of {image_id, bbox [x, y, w, h], score,
            category_id}) or {image_id: {"boxes": [D, 4] xyxy, "scores": [D], "labels": [D]}}.
            With a single GT class (sea/earth person merged) category ids are not checked.
            Bad records are refused (InputError), see sspnet.evaluation.results.
        exclude_dense_images: leave out dense images (`dense_image_ids`) and their detections, as
            the protocol does.
        corners: the corner (sub-image) annotation file the detections refer to: they are merged
            into the whole images of `gt` first (sspnet.evaluation.results.merge_corner_results).
        mr_mode: "exact" or "official" (module docstring).

    Returns:
        flat dict in percent: AP25_all, AP50_all, AP75_all, AP50_tiny, ..., AP75_reasonable and
        MR25_all, ..., MR75_small (NaN where a range has no regular GT).

    Raises:
        InputError when no image is left to evaluate (e.g. every image is dense).
    """
    if mr_mode not in MR_MODES:
        raise ValueError(f"mr_mode: expected one of {MR_MODES}, got {mr_mode!r}")
    gt = _load_gt(gt)
    detections = _detections_by_image(detections, gt, corners)
    if exclude_dense_images:
        dense = dense_image_ids(gt)
        if dense:
            if len(dense) == len(gt.records):
                raise InputError(
                    "no image to evaluate: every image is a dense image (boxes flagged "
                    "in_dense_image), which the protocol leaves out",
                    path=gt.source,
                    expected="at least one image that is not dense (or keep them: --keep-dense)",
                    got=f"{len(dense)} dense of {len(gt.records)}",
                )
            gt = dataclasses.replace(gt, records=[r for r in gt.records if r.image_id not in dense])
            detections = {image_id: d for image_id, d in detections.items() if image_id not in dense}
    per_class = prepare(gt, detections, ignore_uncertain)
    results = {}
    aps = average_precisions(per_class, max_detections=max_detections_ap, use_iod_for_ignore=use_iod_for_ignore)
    for (label, t), value in aps.items():
        results[metric_key("AP", t, label)] = 100.0 * value
    if compute_mr:
        for (label, t), value in miss_rates(per_class, max_detections=max_detections_mr, mode=mr_mode).items():
            results[metric_key("MR", t, label)] = 100.0 * value
    return dict(sorted(results.items(), key=lambda kv: _sort_key(kv[0])))


def _sort_key(key: str):
    metric, label = key.split("_", 1)
    return (metric[:2], list(AP_RANGES).index(label), metric)


def results_table_rows(results: dict) -> list[tuple]:
    """Rows (range, AP25, AP50, AP75, MR25, MR50, MR75) formatted to 2 decimals, '-' where missing."""
    rows = []
    for label in AP_RANGES:
        row = [label]
        for metric in ("AP", "MR"):
            for t in IOU_THRESHOLDS:
                value = results.get(metric_key(metric, t, label))
                row.append("-" if value is None or math.isnan(value) else f"{value:.2f}")
        rows.append(tuple(row))
    return rows


TABLE_HEADERS = ("range", "AP25", "AP50", "AP75", "MR25", "MR50", "MR75")


def print_results_table(results: dict) -> None:
    """Print the results as a table (rows: size ranges) with sspnet.io.table."""
    from sspnet.io.table import print_table

    print_table(results_table_rows(results), headers=TABLE_HEADERS)


def detections_to_coco_results(detections: dict, gt: AnnotationSet) -> list[dict]:
    """{image_id: {"boxes" xyxy, "scores", "labels"}} -> COCO results list; a class maps to the smallest
    category id that maps to it (e.g. merged person -> sea_person's id)."""
    label_to_category = {}
    for category_id, label in sorted(gt.category_to_label.items()):
        label_to_category.setdefault(label, category_id)
    results = []
    for image_id, det in detections.items():
        boxes = np.asarray(det["boxes"], dtype=np.float64).reshape(-1, 4)
        for (x1, y1, x2, y2), score, label in zip(
            boxes, np.asarray(det["scores"]).reshape(-1), np.asarray(det["labels"]).reshape(-1)
        ):
            results.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(label_to_category[int(label)]),
                    "bbox": [
                        round(float(x1), 3),
                        round(float(y1), 3),
                        round(float(x2 - x1), 3),
                        round(float(y2 - y1), 3),
                    ],
                    "score": round(float(score), 5),
                }
            )
    return results
