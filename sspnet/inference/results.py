"""Detections as COCO results JSON (a list of {image_id, file_name, category_id, bbox, score}).

bbox is [x, y, w, h] in frame pixels (COCO's convention), category_id is the model's label + 1
(COCO ids start at 1) and `category` its class name. image_id counts frames from 1 in source
order; file_name is the image file (or '<video stem>_<frame>' for video frames).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sspnet.io.atomic import atomic_write


def coco_results(image_id: int, file_name: str, boxes, scores, labels, classes=None) -> list[dict]:
    """One frame's detections (boxes [D, 4] x1, y1, x2, y2) -> COCO result dicts."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if not len(boxes) == len(scores) == len(labels):
        raise ValueError(f"boxes, scores, labels differ in length: {len(boxes)}, {len(scores)}, {len(labels)}")
    rows = []
    for (x1, y1, x2, y2), score, label in zip(boxes, scores, labels):
        row = {
            "image_id": int(image_id),
            "file_name": str(file_name),
            "category_id": int(label) + 1,
            "bbox": [round(float(x1), 2), round(float(y1), 2), round(float(x2 - x1), 2), round(float(y2 - y1), 2)],
            "score": round(float(score), 5),
        }
        if classes is not None and 0 <= int(label) < len(classes):
            row["category"] = classes[int(label)]
        rows.append(row)
    return rows


def write_json(path: str | Path, rows: Iterable[dict]) -> Path:
    """COCO result rows as one JSON array, written atomically (sspnet.io.atomic) while `rows` is
    consumed, so a generator keeps memory bounded. Rows must hold finite numbers (strict JSON)."""

    def write(f) -> None:
        f.write(b"[")
        for k, row in enumerate(rows):
            f.write((b"," if k else b"") + json.dumps(row, separators=(",", ":"), allow_nan=False).encode())
        f.write(b"]\n")

    return atomic_write(path, write)


__all__ = ["coco_results", "write_json"]
