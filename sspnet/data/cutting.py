"""Cut whole-image annotations into TinyBenchmark "corner" sub-image annotations (docs/evaluation.md#sub-image-results).

Pieces come from `sspnet.runtime.tiling.tile_grid` (the same geometry onboard inference uses), by
default 640x512 with 30 px overlap. A box is kept in a piece when
sqrt(area clipped to the piece) / sqrt(original area) >= keep_ratio (0.7), clipped and shifted into
piece coordinates. Every flag of the annotation (ignore, uncertain, ...) is kept.

Output: the input JSON with `images` replaced by one record per piece (original `file_name`, new `id`,
`corner` [x1, y1, x2, y2], piece `width`/`height`), `annotations` in piece coordinates (new ids), and
the original image list under `old_images`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from sspnet.errors import InputError, UsageError
from sspnet.io.atomic import atomic_write_json
from sspnet.io.outputs import OutputGuard
from sspnet.runtime.tiling import tile_grid


def _boxes_xyxy(annotations: list[dict]) -> np.ndarray:
    boxes = np.array([a["bbox"] for a in annotations], dtype=np.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def cut_annotations(
    data: dict,
    tile_size: tuple[int, int] = (640, 512),
    overlap: int = 30,
    keep_ratio: float = 0.7,
    drop_empty: bool = False,
) -> dict:
    """Cut a COCO/TinyPerson JSON dict of whole images into pieces.

    Args:
        data: parsed JSON with `images` (id, file_name, width, height) and `annotations`.
        tile_size: piece (width, height).
        overlap: overlap between neighbouring pieces in pixels.
        keep_ratio: keep a box in a piece when sqrt(clipped area / area) >= keep_ratio.
        drop_empty: leave out pieces without any annotation.

    Returns:
        a new JSON dict (the input is not modified).
    """
    tile_w, tile_h = tile_size
    if not 0 < keep_ratio <= 1:
        raise UsageError(f"keep_ratio: expected a value in (0, 1], got {keep_ratio}")
    by_image: dict = {}
    for annotation in data.get("annotations", []):
        by_image.setdefault(annotation["image_id"], []).append(annotation)

    pieces, piece_annotations = [], []
    for image in data["images"]:
        if image.get("corner") is not None:
            raise InputError(f"image {image.get('id')}: already a corner piece; cut whole-image annotations only")
        width, height = image.get("width"), image.get("height")
        if not (isinstance(width, int) and isinstance(height, int)):
            raise InputError(f"image {image.get('id')}: 'width' and 'height' must be ints, got {width!r}, {height!r}")
        annotations = by_image.get(image["id"], [])
        boxes = _boxes_xyxy(annotations)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        for x1, y1, x2, y2 in tile_grid(height, width, tile_h, tile_w, overlap).tolist():
            x2, y2 = min(x2, width), min(y2, height)  # a small image is one smaller piece
            clipped = boxes.copy()
            clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(x1, x2)
            clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(y1, y2)
            clipped_areas = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
            with np.errstate(divide="ignore", invalid="ignore"):
                keep = (areas > 0) & (np.sqrt(clipped_areas / areas) >= keep_ratio)
            if drop_empty and not keep.any():
                continue
            piece_id = len(pieces) + 1
            piece = copy.deepcopy(image)
            piece.update(id=piece_id, width=x2 - x1, height=y2 - y1, corner=[x1, y1, x2, y2])
            pieces.append(piece)
            for k in np.flatnonzero(keep):
                bx1, by1, bx2, by2 = (clipped[k] - [x1, y1, x1, y1]).tolist()
                annotation = copy.deepcopy(annotations[k])
                annotation.update(
                    id=len(piece_annotations) + 1,
                    image_id=piece_id,
                    bbox=[bx1, by1, bx2 - bx1, by2 - by1],
                    area=(bx2 - bx1) * (by2 - by1),
                    segmentation=[[bx1, by1, bx1, by2, bx2, by2, bx2, by1]],
                )
                piece_annotations.append(annotation)

    out = {k: v for k, v in data.items() if k not in ("images", "annotations")}
    out.update(images=pieces, annotations=piece_annotations, old_images=copy.deepcopy(data["images"]))
    return out


def cut_annotation_file(src, dst, **kwargs) -> dict:
    """Read a JSON file, cut it (see `cut_annotations`), write `dst` atomically; returns the new dict.

    `dst` must not be `src` (the whole-image annotations would be lost) nor an existing file of
    another kind than COCO annotations: OutputConflictError, checked before reading `src`."""
    OutputGuard(inputs=[src], verb="cut").check_file(dst, "coco-annotations")
    try:
        data = json.loads(Path(src).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{src}: not a JSON annotation file ({exc})") from None
    out = cut_annotations(data, **kwargs)
    atomic_write_json(dst, out, indent=None, separators=(",", ":"))
    return out
