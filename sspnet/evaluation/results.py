"""Detections to be scored: reading COCO results files, checking them, and merging sub-image
("corner") results back into whole images.

Policy for bad results (one rule for the whole toolkit): a results file is refused as a whole, with
an InputError naming the file and the first bad record (e.g. `[12].score: expected a finite
number, got NaN; 3 records have non-finite values`), never partly scored. This covers records that
are not objects, missing or ill-typed `image_id` / `bbox` / `score`, NaN / inf (or null) in a score
or box, negative box width/height, image ids the ground truth does not have, and (with several GT
classes) unknown category ids. Dropping records would change AP without the user noticing; a
detector that emits NaN is broken, and the number it would get is not its number.

Corner results (TinyBenchmark / SSPNet `merge_evaluate`): a detector run on the sub-images of a
corner annotation file reports boxes per sub-image. `merge_corner_results` shifts each box by its
sub-image's corner, concatenates the sub-images of each whole image and merges them with NMS IoU 0.5
in the legacy "+1 pixel" convention, scores unchanged (the same function as tiled inference,
`sspnet.runtime.tiling.merge_tile_detections`). As in TinyBenchmark the merged boxes are float32
and their width/height are float32 differences; the NMS itself runs in float64 (TinyBenchmark:
float32), which can only matter for a pair whose IoU is within ~1e-7 of 0.5.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sspnet.data.tinyperson import AnnotationSet, load_annotations, read_json_file
from sspnet.errors import InputError

MERGE_IOU = 0.5  # TinyBenchmark's merge NMS threshold (legacy +1-pixel boxes)

# parsed detections of one image: (boxes float64 [D, 4] xyxy, scores float64 [D], labels int64 [D],
# areas float64 [D] = w * h of the input)
Detections = tuple


def _empty() -> Detections:
    return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), np.zeros(0)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _show(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return {math.inf: "Infinity", -math.inf: "-Infinity"}.get(value, "NaN")
    if value is None:
        return "null"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _non_finite(record) -> str | None:
    """The field of a result record that holds NaN / inf / null where a number belongs, else None."""
    score = record.get("score")
    if score is None or (_is_number(score) and not math.isfinite(score)):
        return "score"
    bbox = record.get("bbox")
    if isinstance(bbox, list) and any(v is None or (_is_number(v) and not math.isfinite(v)) for v in bbox):
        return "bbox"
    return None


def read_results(source, gt: AnnotationSet, corners: AnnotationSet | None = None) -> dict[int, Detections]:
    """Check and parse COCO results into {image_id: Detections} (see the module docstring).

    Args:
        source: a results JSON path, or an already parsed list of {image_id, bbox [x, y, w, h],
            score, category_id} dicts.
        gt: the ground truth; its classes map category ids (one class: category ids not checked).
        corners: the corner file whose sub-images the results refer to (default: gt's images).
    """
    path = str(source) if isinstance(source, (str, Path)) else "results"
    records = read_json_file(source, what="results file") if isinstance(source, (str, Path)) else source
    if not isinstance(records, list):
        looks_like = " (this is an annotation file)" if isinstance(records, dict) and "images" in records else ""
        raise InputError(
            f"not a COCO results file{looks_like}",
            path=path,
            expected="a JSON list of {image_id, bbox, score, category_id} records",
            got=f"a JSON {type(records).__name__}",
        )
    images_of = corners if corners is not None else gt
    known = {record.image_id for record in images_of.records}
    single_class = len(gt.classes) == 1
    rows: dict[int, list] = {}
    unknown_ids: dict[int, int] = {}  # unknown image id -> first record index
    for k, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(
                "bad result record",
                path=path,
                field=f"[{k}]",
                expected="an object {image_id, bbox, score, category_id}",
                got=_show(record),
            )
        bad = _non_finite(record)
        if bad is not None:
            count = sum(1 for r in records if isinstance(r, dict) and _non_finite(r) is not None)
            raise InputError(
                f"result record with a non-finite value: {count} of {len(records)} records hold NaN, "
                "inf or null, and such a file is refused, not partly scored",
                path=path,
                field=f"[{k}].{bad}",
                expected="finite numbers",
                got=_show(record.get(bad)),
            )
        image_id, bbox, score = record.get("image_id"), record.get("bbox"), record.get("score")
        if not isinstance(image_id, int) or isinstance(image_id, bool):
            raise InputError(
                "bad image_id",
                path=path,
                field=f"[{k}].image_id",
                expected="an int",
                got="nothing" if "image_id" not in record else _show(image_id),
            )
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            raise InputError(
                "bad bbox",
                path=path,
                field=f"[{k}].bbox",
                expected="[x, y, w, h] numbers",
                got="nothing" if "bbox" not in record else _show(bbox),
            )
        if not _is_number(score):
            raise InputError(
                "bad score",
                path=path,
                field=f"[{k}].score",
                expected="a number",
                got="nothing" if "score" not in record else _show(score),
            )
        x, y, w, h = (float(v) for v in bbox)
        if w < 0 or h < 0:
            raise InputError(
                "negative box size", path=path, field=f"[{k}].bbox", expected="w >= 0 and h >= 0", got=_show(bbox)
            )
        if single_class:
            label = 0
        elif record.get("category_id") in gt.category_to_label and not isinstance(record.get("category_id"), bool):
            label = gt.category_to_label[record["category_id"]]
        else:
            raise InputError(
                "unknown category",
                path=path,
                field=f"[{k}].category_id",
                expected=f"one of {sorted(gt.category_to_label)}",
                got=_show(record.get("category_id")),
            )
        if image_id not in known:
            unknown_ids.setdefault(image_id, k)
            continue
        rows.setdefault(image_id, []).append((x, y, x + w, y + h, float(score), label, w * h))
    if unknown_ids:
        image_id, k = next(iter(unknown_ids.items()))
        hint = "" if images_of.is_corner_file else "; results of sub-images need their corner file (val --corners)"
        raise InputError(
            f"result for an image that {Path(images_of.source).name} does not have: "
            f"{len(unknown_ids)} unknown image ids{hint}",
            path=path,
            field=f"[{k}].image_id",
            expected=f"an image id of {Path(images_of.source).name}",
            got=image_id,
        )
    out = {}
    for image_id, r in rows.items():
        r = np.array(r, dtype=np.float64)
        out[image_id] = (r[:, :4], r[:, 4], r[:, 5].astype(np.int64), r[:, 6])
    return out


def check_detection_arrays(detections: dict, gt: AnnotationSet) -> dict[int, Detections]:
    """{image_id: {"boxes" xyxy, "scores", "labels"}} (the in-memory form) -> {image_id: Detections},
    with the same refusals as a results file."""
    known = {record.image_id for record in gt.records}
    single_class = len(gt.classes) == 1
    out = {}
    for image_id, found in detections.items():
        where = f"detections[{image_id}]"
        boxes = np.asarray(found["boxes"], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(found["scores"], dtype=np.float64).reshape(-1)
        labels = np.asarray(found.get("labels", np.zeros(len(scores))), dtype=np.int64).reshape(-1)
        if not len(boxes) == len(scores) == len(labels):
            raise InputError(
                "boxes, scores and labels differ in length",
                field=where,
                got=f"{len(boxes)}, {len(scores)}, {len(labels)}",
            )
        for name, values in (("scores", scores), ("boxes", boxes)):
            if not np.isfinite(values).all():
                raise InputError(
                    "non-finite detections are refused",
                    field=f"{where}.{name}",
                    expected="finite numbers",
                    got=f"{int((~np.isfinite(values)).sum())} NaN/inf",
                )
        if int(image_id) not in known:
            raise InputError(
                "detections for an image the ground truth does not have",
                field=where,
                expected=f"an image id of {Path(gt.source).name}",
                got=image_id,
            )
        widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        if (widths < 0).any() or (heights < 0).any():
            raise InputError("boxes with x2 < x1 or y2 < y1", field=f"{where}.boxes", expected="x1 <= x2, y1 <= y2")
        out[int(image_id)] = (boxes, scores, np.zeros_like(labels) if single_class else labels, widths * heights)
    return out


def load_corner_file(source) -> AnnotationSet:
    """A TinyBenchmark corner annotation file (every image record has a `corner`), checked."""
    corners = source if isinstance(source, AnnotationSet) else load_annotations(source, evaluation=True)
    whole = [k for k, record in enumerate(corners.records) if record.corner is None]
    if whole:
        raise InputError(
            "not a corner (sub-image) annotation file",
            path=corners.source,
            field=f"images[{whole[0]}].corner",
            expected="[x1, y1, x2, y2] on every image record",
            got="nothing",
        )
    return corners


def merge_corner_results(results, corners: AnnotationSet, gt: AnnotationSet) -> dict[int, Detections]:
    """Sub-image results of `corners` -> whole-image detections of `gt` (see the module docstring).

    Sub-images belong to the whole image with the same `file_name`. Every sub-image must belong to an
    image of `gt` and every image of `gt` must have sub-images (otherwise the two files do not
    describe the same set, and the numbers would be silently wrong).
    """
    from sspnet.runtime.tiling import merge_tile_detections

    by_file = {record.file_name: record.image_id for record in gt.records}
    pieces: dict[int, list] = {record.image_id: [] for record in gt.records}
    for k, piece in enumerate(corners.records):
        if piece.file_name not in by_file:
            raise InputError(
                "sub-image of an image the ground truth does not have",
                path=corners.source,
                field=f"images[{k}].file_name",
                expected=f"a file_name of {Path(gt.source).name}",
                got=piece.file_name,
            )
        pieces[by_file[piece.file_name]].append(piece)
    without = [image_id for image_id, found in pieces.items() if not found]
    if without:
        record = gt.by_image_id()[without[0]]
        raise InputError(
            f"{len(without)} images of the ground truth have no sub-image in the corner file",
            path=corners.source,
            field="images",
            expected=f"sub-images of every image of {Path(gt.source).name}",
            got=f"none for {record.file_name!r} (id {record.image_id})",
        )

    per_piece = results if isinstance(results, dict) else read_results(results, gt, corners=corners)
    merged = {}
    for image_id, image_pieces in pieces.items():
        parts = [per_piece.get(piece.image_id, _empty()) for piece in image_pieces]
        if not any(len(part[1]) for part in parts):
            continue
        grid = np.array([piece.corner for piece in image_pieces], np.int64)
        boxes, _, labels, keep = merge_tile_detections(
            [part[0] for part in parts],
            [part[1] for part in parts],
            [part[2] for part in parts],
            grid,
            iou_threshold=MERGE_IOU,
            plus_one=True,
            return_indices=True,
        )
        scores = np.concatenate([part[1] for part in parts])[keep]  # the file's scores, not float32
        widths = (boxes[:, 2] - boxes[:, 0]).astype(np.float64)  # float32 differences, as TinyBenchmark
        heights = (boxes[:, 3] - boxes[:, 1]).astype(np.float64)
        x1, y1 = boxes[:, 0].astype(np.float64), boxes[:, 1].astype(np.float64)
        xyxy = np.stack([x1, y1, x1 + widths, y1 + heights], axis=1)  # as a COCO result [x, y, w, h] reads
        merged[image_id] = (xyxy, scores, labels.astype(np.int64), widths * heights)
    return merged
