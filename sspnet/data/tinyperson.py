"""Load TinyPerson / COCO annotation files into plain per-image records (NumPy, no torch).

Supported JSON (one loader for both):

* plain COCO detection JSON: `images`, `annotations` (`bbox` = x, y, w, h), `categories`;
* TinyPerson JSON: the same plus per-box flags `ignore`, `uncertain`, `in_dense_image` (and `logo`),
  categories `sea_person` / `earth_person`, merged here into one class `person` (TinyPerson task "all");
* TinyBenchmark "corner" JSON: image records repeat the original `file_name` and add
  `corner` = [x1, y1, x2, y2]; the record is the crop of the original image at that corner, and its
  boxes are in crop coordinates. The whole images are listed under `old_images`.

Two readings of one file:

* training (default): loading never crashes on one bad record and never drops anything silently:
  every problem is counted in a `LoadReport` (which prints as one line) together with the first
  example of each kind. Boxes crossing the image border are clipped, boxes left without area dropped.
* evaluation (`evaluation=True`): the file is ground truth, so nothing may be left out: the first bad
  record raises `sspnet.errors.InputError` naming the file and the field (e.g.
  `annotations[3].bbox`). Boxes are kept exactly as the official TinyPerson evaluation reads them:
  not clipped (a box crossing the border keeps its full extent and its `area`), zero-size boxes kept,
  float64. Boxes with a negative width/height, or lying wholly outside their image, are refused.

Every record carries `raw_boxes` (float64, as in the file) besides `boxes` (float32, clipped, what
training uses); the evaluation always scores `raw_boxes`.
A file that cannot be parsed, or holds no images, is an error in both readings.
"""

from __future__ import annotations

import errno
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sspnet.errors import InputError

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
        boxes: float32 [G, 4] x1, y1, x2, y2 in (sub-)image pixels, clipped to the image (training).
        raw_boxes: float64 [G, 4] x, y, x + w, y + h exactly as in the file, not clipped (evaluation).
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
    raw_boxes: np.ndarray
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
    """A loaded annotation file: class names, the category-id mapping, records and the report.

    `old_images`: the whole-image records of a corner file ({id, file_name, width, height} dicts as in
    its `old_images` list), empty for other files. `evaluation`: loaded in the evaluation reading."""

    source: str
    classes: list[str]
    category_to_label: dict[int, int]
    records: list[ImageRecord]
    report: LoadReport
    old_images: list[dict] = field(default_factory=list)
    evaluation: bool = False

    def __len__(self) -> int:
        return len(self.records)

    def by_image_id(self) -> dict[int, ImageRecord]:
        return {record.image_id: record for record in self.records}

    @property
    def is_corner_file(self) -> bool:
        """True when the records are sub-images (TinyBenchmark corner file)."""
        return any(record.corner is not None for record in self.records)


class _Problem(Exception):
    """One bad record: `field` is relative to the record (e.g. 'bbox'); kind names the report count."""

    def __init__(self, kind: str, field: str, message: str, expected=None, got=None):
        super().__init__(message)
        self.kind, self.field, self.message, self.expected, self.got = kind, field, message, expected, got


def _short(value, limit: int = 60) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list, str, int, float, bool, type(None))) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_json_file(source, what: str = "annotation file"):
    """Parse a JSON file; every way it can be unusable is an InputError naming it (missing: OSError)."""
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, f"{what} not found", str(path))
    if path.is_dir():
        raise InputError(f"{what} is a folder, expected a JSON file", path=path)
    raw = path.read_bytes()
    if not raw.strip():
        raise InputError(f"{what} is empty", path=path, expected="JSON")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{what} is not JSON text (not UTF-8)", path=path) from None
    except json.JSONDecodeError as err:
        raise InputError(
            f"{what} is not valid JSON: {err.msg}", path=path, field=f"line {err.lineno} column {err.colno}"
        ) from None


def _read_json(source) -> tuple[dict, str]:
    if isinstance(source, dict):
        return source, "<dict>"
    return read_json_file(source), str(source)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _flag(annotation: dict, key: str) -> bool:
    """A 0/1/bool flag; anything else is a bad annotation."""
    value = annotation.get(key, False)
    if isinstance(value, bool) or (_is_int(value) and value in (0, 1)):
        return bool(value)
    raise _Problem("bad annotation", key, f"bad {key!r} flag", expected="true/false or 0/1", got=_short(value))


def _categories(data: dict, source: str, merge_person: bool) -> tuple[list[str], dict[int, int]]:
    categories = data.get("categories")
    if not isinstance(categories, list) or not categories:
        raise InputError(
            "no categories", path=source, field="categories", expected="a non-empty list", got=_short(categories)
        )
    ids, names = [], []
    for k, category in enumerate(categories):
        if (
            not isinstance(category, dict)
            or not _is_int(category.get("id"))
            or not isinstance(category.get("name"), str)
        ):
            raise InputError(
                "bad category",
                path=source,
                field=f"categories[{k}]",
                expected="an object with an int 'id' and a str 'name'",
                got=_short(category),
            )
        ids.append(int(category["id"]))
        names.append(category["name"])
    order = np.argsort(ids, kind="stable")
    if merge_person and all(names[i] in PERSON_CATEGORY_NAMES for i in order):
        return ["person"], {ids[i]: 0 for i in order}
    return [names[i] for i in order], {ids[i]: label for label, i in enumerate(order)}


def _parse_corner(value) -> tuple[int, int, int, int]:
    if not (isinstance(value, (list, tuple)) and len(value) == 4 and all(_is_number(v) for v in value)):
        raise _Problem(
            "bad image record", "corner", "bad corner", expected="[x1, y1, x2, y2] numbers", got=_short(value)
        )
    x1, y1, x2, y2 = (int(round(v)) for v in value)
    if x1 < 0 or y1 < 0 or x2 <= x1 or y2 <= y1:
        raise _Problem(
            "bad image record", "corner", "bad corner", expected="0 <= x1 < x2 and 0 <= y1 < y2", got=_short(value)
        )
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
    evaluation: bool = False,
) -> AnnotationSet:
    """Load a TinyPerson / COCO / corner JSON.

    Args:
        source: path to the JSON file, or the already parsed dict.
        image_root: folder the `file_name`s are relative to; None skips all image-file checks
            (enough for evaluating a results file).
        merge_person: map sea_person / earth_person / person to one class "person".
        check_images: with an image root, open each file's header: missing or unreadable images
            drop their records (counted; an InputError in the evaluation reading); the real size
            replaces a wrong width/height.
        evaluation: the evaluation reading (module docstring): refuse any bad record, keep boxes as
            the official evaluation reads them.

    Returns:
        AnnotationSet with records in the JSON's image order.

    Raises:
        FileNotFoundError (with the path) for a missing file; InputError for an unusable one (and,
        with `evaluation`, for the first bad record).
    """
    data, source_name = _read_json(source)
    if not isinstance(data, dict):
        raise InputError(
            "not an annotation file",
            path=source_name,
            expected="a JSON object with 'images', 'annotations' and 'categories'",
            got=f"a JSON {type(data).__name__}",
        )
    images, annotations = data.get("images"), data.get("annotations")
    for key, value in (("images", images), ("annotations", annotations)):
        if not isinstance(value, list):
            raise InputError(
                f"no {key!r} list",
                path=source_name,
                field=key,
                expected="a list",
                got="nothing" if value is None else _short(value),
            )
    if not images:
        raise InputError(
            "the annotation file holds no images",
            path=source_name,
            field="images",
            expected="at least one image record",
            got="[]",
        )
    classes, category_to_label = _categories(data, source_name, merge_person)
    report = LoadReport(source=Path(source_name).name)
    root = Path(image_root) if image_root is not None else None

    def problem(where: str, issue: _Problem) -> None:
        """A bad record: an error in the evaluation reading, a counted problem otherwise."""
        where = f"{where}.{issue.field}" if issue.field else where
        if evaluation:
            raise InputError(issue.message, path=source_name, field=where, expected=issue.expected, got=issue.got)
        detail = f" ({issue.got})" if issue.got is not None else ""
        report.add(issue.kind, f"{where}: {issue.message}{detail}")

    # 1. image records
    headers: dict[int, dict] = {}
    for k, image in enumerate(images):
        try:
            header = _parse_image(image, root, check_images)
            if header["image_id"] in headers:
                raise _Problem(
                    "duplicate image id", "id", "image id repeats", expected="unique ids", got=header["image_id"]
                )
        except _Problem as issue:
            problem(f"images[{k}]", issue)
            continue
        if header.pop("size_mismatch", False):
            report.add("image size fixed", f"images[{k}] ({header['file_name']}): width/height differ from the file")
        headers[header["image_id"]] = header

    # 2. boxes, grouped by image
    per_image: dict[int, list] = {image_id: [] for image_id in headers}
    for k, annotation in enumerate(annotations):
        try:
            parsed = _parse_annotation(annotation, category_to_label)
            if parsed["image_id"] not in per_image:
                raise _Problem(
                    "unknown image id",
                    "image_id",
                    "annotation of an unknown image",
                    expected="an id among the images",
                    got=parsed["image_id"],
                )
            header = headers[parsed["image_id"]]
            x1, y1, x2, y2 = parsed["box"]
            width, height = float(header["width"]), float(header["height"])
            if x1 >= width or y1 >= height or x2 <= 0 or y2 <= 0:
                raise _Problem(
                    "box outside the image",
                    "bbox",
                    "box lies wholly outside its image",
                    expected=f"overlap with the {header['width']}x{header['height']} image",
                    got=_short(annotation.get("bbox")),
                )
        except _Problem as issue:
            problem(f"annotations[{k}]", issue)
            continue
        clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, width), min(y2, height))
        if clipped != (x1, y1, x2, y2):
            what = "kept as is for evaluation" if evaluation else "clipped for training"
            report.add(
                "clipped box" if not evaluation else "box crossing the border",
                f"annotations[{k}]: {list(parsed['box'])} crosses the {header['width']}x{header['height']} "
                f"border ({what})",
            )
        if not evaluation and (clipped[2] - clipped[0] <= 0 or clipped[3] - clipped[1] <= 0):
            report.add("zero-area box dropped", f"annotations[{k}]: bbox {annotation.get('bbox')}")
            continue
        parsed["clipped"] = clipped
        per_image[parsed["image_id"]].append(parsed)

    records = [_make_record(headers[image_id], per_image[image_id]) for image_id in headers]
    if not records:
        raise InputError(
            "no usable image record",
            path=source_name,
            field="images",
            expected="at least one",
            got=f"0 of {len(images)} ({report})",
        )
    report.images = len(records)
    report.boxes = sum(len(r.boxes) for r in records)
    report.ignore_boxes = int(sum(r.ignore_mask.sum() for r in records))
    old_images = data.get("old_images") if isinstance(data.get("old_images"), list) else []
    return AnnotationSet(source_name, classes, category_to_label, records, report, old_images, evaluation)


def _parse_image(image, root: Path | None, check_images: bool) -> dict:
    if not isinstance(image, dict):
        raise _Problem("bad image record", "", "bad image record", expected="an object", got=_short(image))
    image_id, file_name = image.get("id"), image.get("file_name")
    if not _is_int(image_id):
        raise _Problem("bad image record", "id", "bad image id", expected="an int", got=_short(image_id))
    if not isinstance(file_name, str) or not file_name:
        raise _Problem(
            "bad image record", "file_name", "bad file name", expected="a non-empty string", got=_short(file_name)
        )
    corner = _parse_corner(image["corner"]) if image.get("corner") is not None else None
    width, height = image.get("width"), image.get("height")
    path = root / file_name if root is not None else None
    size_mismatch = False
    if path is not None and check_images:
        if not path.is_file():
            raise _Problem("missing image", "file_name", "image file not found", got=str(path))
        try:
            file_w, file_h = _image_size_on_disk(path)
        except Exception as err:  # PIL raises several types for corrupt files
            raise _Problem("unreadable image", "file_name", f"cannot read the image ({err})", got=str(path)) from None
        if corner is not None:
            if corner[2] > file_w or corner[3] > file_h:
                raise _Problem(
                    "bad image record",
                    "corner",
                    "corner exceeds the image",
                    expected=f"inside {file_w}x{file_h} ({path})",
                    got=list(corner),
                )
        elif (width, height) != (file_w, file_h):
            size_mismatch = width is not None or height is not None
            width, height = file_w, file_h
    if corner is not None:
        width, height = corner[2] - corner[0], corner[3] - corner[1]
    if not (_is_int(width) and _is_int(height) and width > 0 and height > 0):
        raise _Problem(
            "bad image record",
            "width",
            "bad image size",
            expected="positive int width and height",
            got=f"{_short(width)} x {_short(height)}",
        )
    return dict(
        image_id=int(image_id),
        file_name=file_name,
        path=path,
        width=int(width),
        height=int(height),
        corner=corner,
        size_mismatch=size_mismatch,
    )


def _parse_annotation(annotation, category_to_label: dict[int, int]) -> dict:
    if not isinstance(annotation, dict):
        raise _Problem("bad annotation", "", "bad annotation", expected="an object", got=_short(annotation))
    image_id, bbox, category = annotation.get("image_id"), annotation.get("bbox"), annotation.get("category_id")
    if not _is_int(image_id):
        raise _Problem("bad annotation", "image_id", "bad image_id", expected="an int", got=_short(image_id))
    if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        raise _Problem("bad annotation", "bbox", "bad bbox", expected="[x, y, w, h] finite numbers", got=_short(bbox))
    if not _is_int(category) or category not in category_to_label:
        raise _Problem(
            "bad annotation",
            "category_id",
            "unknown category",
            expected=f"one of {sorted(category_to_label)}",
            got=_short(category),
        )
    x, y, w, h = (float(v) for v in bbox)
    if w < 0 or h < 0:
        raise _Problem(
            "negative box size", "bbox", "negative box width or height", expected="w >= 0 and h >= 0", got=_short(bbox)
        )
    area = annotation.get("area")
    if area is None:
        area = w * h
    elif not (_is_number(area) and area >= 0):
        raise _Problem("bad annotation", "area", "bad area", expected="a finite number >= 0", got=_short(area))
    annotation_id = annotation.get("id", -1)
    return dict(
        image_id=int(image_id),
        box=(x, y, x + w, y + h),  # xywh -> xyxy without the legacy -1, as pycocotools
        label=category_to_label[category],
        area=float(area),
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
        boxes=np.array([b["clipped"] for b in boxes], dtype=np.float32).reshape(-1, 4),
        raw_boxes=np.array([b["box"] for b in boxes], dtype=np.float64).reshape(-1, 4),
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
    DIR/annotations/<split>.json and DIR/images/. A folder without it is an InputError."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(errno.ENOENT, "data folder not found", str(data_dir))
    json_path = data_dir / "annotations" / f"{split}.json"
    if not json_path.is_file():
        found = sorted(p.stem for p in (data_dir / "annotations").glob("*.json"))
        raise InputError(
            f"no annotations for split {split!r} in the data folder",
            path=data_dir,
            field=f"annotations/{split}.json",
            expected="DIR/annotations/<split>.json and DIR/images/ (as `sspnet synth` writes)",
            got=f"splits {found}" if found else "no annotations/*.json",
        )
    return json_path, data_dir / "images"
