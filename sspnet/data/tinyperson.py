"""Load TinyPerson / COCO annotation files into plain per-image records (NumPy, no torch).

Supported JSON (one loader for both):

* plain COCO detection JSON: `images`, `annotations` (`bbox` = x, y, w, h), `categories`;
* TinyPerson JSON: the same plus per-box flags `ignore`, `uncertain`, `in_dense_image` (and `logo`),
  categories `sea_person` / `earth_person`, merged here into one class `person` (TinyPerson task "all");
* TinyBenchmark "corner" JSON: image records repeat the original `file_name` and add
  `corner` = [x1, y1, x2, y2]; the record is the crop of the original image at that corner, and its
  boxes are in crop coordinates.

Loading never crashes on one bad record and never drops anything silently: every problem is counted
in a `LoadReport` (which prints as one line) together with the first example of each kind.
A file that cannot be parsed, or holds no images, is an error.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PERSON_CATEGORY_NAMES = ("person", "sea_person", "earth_person")


@dataclass
class ImageRecord:
    """One (sub-)image and its boxes. G = number of boxes, all arrays aligned.

    Attributes:
        image_id: the JSON image id.
        file_name: as written in the JSON (relative to the image root).
        path: resolved image file, or None when the loader was given no image root.
        width, height: size of the (sub-)image in pixels (the corner's size for corner records).
        corner: (x1, y1, x2, y2) crop of the file, or None for a whole image.
        boxes: float32 [G, 4] x1, y1, x2, y2 in (sub-)image pixels, clipped to the image.
        labels: int64 [G] contiguous class index (0-based, see AnnotationSet.classes).
        areas: float64 [G] the annotation's `area` field (w*h when absent); the evaluation's size
            ranges use it, as TinyBenchmark does.
        ignore, uncertain, iscrowd, in_dense_image: bool [G] per-box flags from the JSON.
        annotation_ids: int64 [G] the JSON annotation ids.
    """

    image_id: int
    file_name: str
    path: Path | None
    width: int
    height: int
    corner: tuple[int, int, int, int] | None
    boxes: np.ndarray
    labels: np.ndarray
    areas: np.ndarray
    ignore: np.ndarray
    uncertain: np.ndarray
    iscrowd: np.ndarray
    in_dense_image: np.ndarray
    annotation_ids: np.ndarray

    @property
    def ignore_mask(self) -> np.ndarray:
        """bool [G]: boxes that are not training/evaluation targets (ignore, uncertain or crowd)."""
        return self.ignore | self.uncertain | self.iscrowd


@dataclass
class LoadReport:
    """What the loader kept, fixed and dropped. `str(report)` is one line."""

    source: str
    images: int = 0
    boxes: int = 0
    ignore_boxes: int = 0
    counts: Counter = field(default_factory=Counter)  # problem kind -> count
    examples: dict = field(default_factory=dict)  # problem kind -> first message

    def add(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        self.examples.setdefault(kind, message)

    @property
    def ok(self) -> bool:
        return not self.counts

    def __str__(self) -> str:
        line = f"{self.source}: {self.images} images, {self.boxes} boxes ({self.ignore_boxes} ignore/uncertain)"
        if self.counts:
            problems = ", ".join(f"{kind} {n}" for kind, n in sorted(self.counts.items()))
            first = "; ".join(f"{kind}: {msg}" for kind, msg in sorted(self.examples.items()))
            line += f"; {problems} (first: {first})"
        return line


@dataclass
class AnnotationSet:
    """A loaded annotation file: class names, the category-id mapping, records and the report."""

    source: str
    classes: list[str]
    category_to_label: dict[int, int]
    records: list[ImageRecord]
    report: LoadReport

    def __len__(self) -> int:
        return len(self.records)

    def by_image_id(self) -> dict[int, ImageRecord]:
        return {record.image_id: record for record in self.records}


def _read_json(source) -> tuple[dict, str]:
    if isinstance(source, dict):
        return source, "<dict>"
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"{path}: the annotation file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    return data, str(path)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and math.isfinite(value)


def _flag(annotation: dict, key: str) -> bool:
    """A 0/1/bool flag; anything else raises (the caller counts it as a bad annotation)."""
    value = annotation.get(key, False)
    if isinstance(value, bool) or (_is_int(value) and value in (0, 1)):
        return bool(value)
    raise ValueError(f"{key!r} must be a bool or 0/1, got {value!r}")


def _categories(data: dict, source: str, merge_person: bool) -> tuple[list[str], dict[int, int]]:
    categories = data.get("categories")
    if not isinstance(categories, list) or not categories:
        raise ValueError(f"{source}: 'categories' must be a non-empty list")
    ids, names = [], []
    for k, category in enumerate(categories):
        if not isinstance(category, dict) or not _is_int(category.get("id")) or not isinstance(category.get("name"), str):
            raise ValueError(f"{source}: categories[{k}] must have an int 'id' and a str 'name', got {category!r}")
        ids.append(int(category["id"]))
        names.append(category["name"])
    order = np.argsort(ids, kind="stable")
    if merge_person and all(names[i] in PERSON_CATEGORY_NAMES for i in order):
        return ["person"], {ids[i]: 0 for i in order}
    return [names[i] for i in order], {ids[i]: label for label, i in enumerate(order)}


def _parse_corner(value) -> tuple[int, int, int, int]:
    if not (isinstance(value, (list, tuple)) and len(value) == 4 and all(_is_number(v) for v in value)):
        raise ValueError(f"'corner' must be [x1, y1, x2, y2] numbers, got {value!r}")
    x1, y1, x2, y2 = (int(round(v)) for v in value)
    if x1 < 0 or y1 < 0 or x2 <= x1 or y2 <= y1:
        raise ValueError(f"'corner' must satisfy 0 <= x1 < x2 and 0 <= y1 < y2, got {value!r}")
    return x1, y1, x2, y2


def _image_size_on_disk(path: Path) -> tuple[int, int]:
    """(width, height) from the file header; raises OSError for unreadable files."""
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def load_annotations(
    source,
    image_root=None,
    merge_person: bool = True,
    check_images: bool = True,
) -> AnnotationSet:
    """Load a TinyPerson / COCO / corner JSON.

    Args:
        source: path to the JSON file, or the already parsed dict.
        image_root: folder the `file_name`s are relative to; None skips all image-file checks
            (enough for evaluation).
        merge_person: map sea_person / earth_person / person to one class "person".
        check_images: with an image root, open each file's header: missing or unreadable images
            drop their records (counted); the real size replaces a wrong width/height.

    Returns:
        AnnotationSet with records in the JSON's image order.
    """
    data, source_name = _read_json(source)
    if not isinstance(data, dict):
        raise ValueError(f"{source_name}: expected a JSON object with 'images' and 'annotations', got {type(data).__name__}")
    images, annotations = data.get("images"), data.get("annotations", [])
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise ValueError(f"{source_name}: 'images' and 'annotations' must be lists")
    if not images:
        raise ValueError(f"{source_name}: the annotation file holds no images")
    classes, category_to_label = _categories(data, source_name, merge_person)
    report = LoadReport(source=Path(source_name).name)
    root = Path(image_root) if image_root is not None else None

    # 1. image records
    headers: dict[int, dict] = {}
    for k, image in enumerate(images):
        try:
            headers_entry = _parse_image(image, root, check_images)
        except (ValueError, OSError) as err:
            kind = "missing image" if isinstance(err, FileNotFoundError) else (
                "unreadable image" if isinstance(err, OSError) else "bad image record")
            report.add(kind, f"images[{k}]: {err}")
            continue
        if headers_entry.pop("size_mismatch", False):
            report.add("image size fixed", f"images[{k}] ({headers_entry['file_name']}): width/height differ from the file")
        if headers_entry["image_id"] in headers:
            report.add("duplicate image id", f"images[{k}]: id {headers_entry['image_id']} repeats")
            continue
        headers[headers_entry["image_id"]] = headers_entry

    # 2. boxes, grouped by image
    per_image: dict[int, list] = {image_id: [] for image_id in headers}
    for k, annotation in enumerate(annotations):
        try:
            parsed = _parse_annotation(annotation, category_to_label)
        except ValueError as err:
            report.add("bad annotation", f"annotations[{k}]: {err}")
            continue
        if parsed is None:
            continue
        if parsed["image_id"] not in per_image:
            report.add("unknown image id", f"annotations[{k}]: image_id {parsed['image_id']} is not among the images")
            continue
        header = headers[parsed["image_id"]]
        x1, y1, x2, y2 = parsed["box"]
        clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(header["width"])), min(y2, float(header["height"])))
        if clipped != (x1, y1, x2, y2):
            report.add("clipped box", f"annotations[{k}]: {parsed['box']} outside {header['width']}x{header['height']}")
        if clipped[2] - clipped[0] <= 0 or clipped[3] - clipped[1] <= 0:
            report.add("zero-area box dropped", f"annotations[{k}]: bbox {annotation.get('bbox')}")
            continue
        parsed["box"] = clipped
        per_image[parsed["image_id"]].append(parsed)

    records = [_make_record(headers[image_id], per_image[image_id]) for image_id in headers]
    report.images = len(records)
    report.boxes = sum(len(r.boxes) for r in records)
    report.ignore_boxes = int(sum(r.ignore_mask.sum() for r in records))
    return AnnotationSet(source_name, classes, category_to_label, records, report)


def _parse_image(image, root: Path | None, check_images: bool) -> dict:
    if not isinstance(image, dict):
        raise ValueError(f"expected an object, got {type(image).__name__}")
    image_id, file_name = image.get("id"), image.get("file_name")
    if not _is_int(image_id):
        raise ValueError(f"'id' must be an int, got {image_id!r}")
    if not isinstance(file_name, str) or not file_name:
        raise ValueError(f"'file_name' must be a non-empty string, got {file_name!r}")
    corner = _parse_corner(image["corner"]) if image.get("corner") is not None else None
    width, height = image.get("width"), image.get("height")
    path = root / file_name if root is not None else None
    size_mismatch = False
    if path is not None and check_images:
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        try:
            file_w, file_h = _image_size_on_disk(path)
        except Exception as err:  # PIL raises several types for corrupt files
            raise OSError(f"{path}: cannot read the image ({err})") from None
        if corner is not None:
            if corner[2] > file_w or corner[3] > file_h:
                raise ValueError(f"corner {list(corner)} exceeds the image size {file_w}x{file_h} of {path}")
        elif (width, height) != (file_w, file_h):
            size_mismatch = width is not None or height is not None
            width, height = file_w, file_h
    if corner is not None:
        width, height = corner[2] - corner[0], corner[3] - corner[1]
    if not (_is_int(width) and _is_int(height) and width > 0 and height > 0):
        raise ValueError(f"'width'/'height' must be positive ints, got {width!r}/{height!r}")
    return dict(image_id=int(image_id), file_name=file_name, path=path, width=int(width), height=int(height),
                corner=corner, size_mismatch=size_mismatch)


def _parse_annotation(annotation, category_to_label: dict[int, int]) -> dict | None:
    if not isinstance(annotation, dict):
        raise ValueError(f"expected an object, got {type(annotation).__name__}")
    image_id, bbox, category = annotation.get("image_id"), annotation.get("bbox"), annotation.get("category_id")
    if not _is_int(image_id):
        raise ValueError(f"'image_id' must be an int, got {image_id!r}")
    if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        raise ValueError(f"'bbox' must be [x, y, w, h] finite numbers, got {bbox!r}")
    if not _is_int(category) or category not in category_to_label:
        raise ValueError(f"'category_id' {category!r} is not among the categories")
    x, y, w, h = (float(v) for v in bbox)
    area = annotation.get("area")
    area = float(area) if _is_number(area) and area > 0 else w * h
    annotation_id = annotation.get("id", -1)
    return dict(
        image_id=int(image_id),
        box=(x, y, x + w, y + h),  # xywh -> xyxy without the legacy -1
        label=category_to_label[category],
        area=area,
        ignore=_flag(annotation, "ignore"),
        uncertain=_flag(annotation, "uncertain"),
        iscrowd=_flag(annotation, "iscrowd"),
        in_dense_image=_flag(annotation, "in_dense_image"),
        annotation_id=int(annotation_id) if _is_int(annotation_id) else -1,
    )


def _make_record(header: dict, boxes: list[dict]) -> ImageRecord:
    def column(key, dtype):
        return np.array([b[key] for b in boxes], dtype=dtype)

    return ImageRecord(
        image_id=header["image_id"],
        file_name=header["file_name"],
        path=header["path"],
        width=header["width"],
        height=header["height"],
        corner=header["corner"],
        boxes=np.array([b["box"] for b in boxes], dtype=np.float32).reshape(-1, 4),
        labels=column("label", np.int64),
        areas=column("area", np.float64),
        ignore=column("ignore", bool),
        uncertain=column("uncertain", bool),
        iscrowd=column("iscrowd", bool),
        in_dense_image=column("in_dense_image", bool),
        annotation_ids=column("annotation_id", np.int64),
    )


def dataset_paths(data_dir, split: str) -> tuple[Path, Path]:
    """(annotation JSON, image root) of a dataset folder laid out as `sspnet synth` writes it:
    DIR/annotations/<split>.json and DIR/images/."""
    data_dir = Path(data_dir)
    json_path = data_dir / "annotations" / f"{split}.json"
    if not json_path.is_file():
        raise FileNotFoundError(f"{json_path} not found (expected DIR/annotations/{split}.json)")
    return json_path, data_dir / "images"
