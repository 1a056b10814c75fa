"""The official TinyPerson download (tiny_set.zip) -> the files `sspnet train` / `sspnet val` take.

The release, unpacked (TinyBenchmark's dataset README):

    tiny_set/
      annotations/tiny_set_train.json            whole training images, dense images left out
      annotations/tiny_set_test.json             whole test images (the evaluation ground truth)
      annotations/tiny_set_train_with_dense.json optional: with the dense (> 200 boxes) images
      train/labeled_images/*.jpg                 `file_name` in the JSON is relative to train/ or test/
      test/labeled_images/*.jpg
      erase_with_uncertain_dataset/train/...     optional: ignore/uncertain regions erased (what
      erase_with_uncertain_dataset/test/...      TinyBenchmark and SSPNet train on)

`check_release` reads both JSON files and checks that every listed image is on disk; it counts images,
boxes, ignore / uncertain boxes and dense images. `prepare_release` then writes

    OUT/annotations/tiny_set_train_sw640_sh512_overlap30.json   the training images cut into 640x512 pieces
                                                                with 30 px overlap (TinyBenchmark "corner"
                                                                JSON: sspnet.data.cutting; a box stays in a
                                                                piece when >= 0.7 of its size is inside;
                                                                pieces without boxes are left out)
    OUT/tinyperson.yaml                                         train: the pieces; val: the whole test images

which is the training data of the original configs (train_overlap30.json: 640x512 pieces, 30 px overlap,
images without annotations filtered), read by the same corner loader the original used (a piece is cropped
from its image when loaded; no image is copied).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sspnet.data.cutting import cut_annotations
from sspnet.errors import InputError
from sspnet.io.atomic import atomic_write_json, atomic_write_text
from sspnet.io.outputs import OutputGuard

# What the original configs train on: 640x512 pieces, 30 px overlap (TinyBenchmark's cutting tool keeps a
# box in a piece when sqrt(clipped area / area) >= 0.7), pieces without any box filtered.
PIECE_SIZE = (640, 512)  # (width, height)
PIECE_OVERLAP = 30
KEEP_RATIO = 0.7
DENSE_BOXES = 200  # TinyBenchmark calls an image with more boxes "dense" (its JSON flags in_dense_image)

TRAIN_JSON = "annotations/tiny_set_train.json"
TRAIN_DENSE_JSON = "annotations/tiny_set_train_with_dense.json"
TEST_JSON = "annotations/tiny_set_test.json"
ERASED = "erase_with_uncertain_dataset"
CUT_NAME = f"tiny_set_train_sw{PIECE_SIZE[0]}_sh{PIECE_SIZE[1]}_overlap{PIECE_OVERLAP}.json"
YAML_NAME = "tinyperson.yaml"


@dataclass
class SplitSummary:
    """What one annotation file of the release holds."""

    annotations: Path
    images_dir: Path
    data: dict = field(repr=False)
    images: int = 0
    boxes: int = 0  # boxes that count (neither ignore nor uncertain)
    ignore: int = 0
    uncertain: int = 0
    tiny: int = 0  # counted boxes with sqrt(w * h) < 20 px (the "tiny" range of the protocol)
    dense_images: int = 0

    def row(self, name: str) -> tuple:
        return (
            name,
            self.annotations.name,
            self.images,
            self.boxes,
            self.tiny,
            self.ignore,
            self.uncertain,
            self.dense_images,
        )


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError("not a JSON annotation file", path=path, got=" ".join(str(error).split())) from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise InputError(
                "not a TinyPerson annotation file",
                path=path,
                field=key,
                expected="a list (COCO layout with TinyPerson's flags)",
            )
    if not data["images"]:
        raise InputError("the annotation file lists no images", path=path, field="images")
    return data


def _summarise(annotations: Path, images_dir: Path) -> SplitSummary:
    """Read one annotation file, check its images are on disk, count what it holds."""
    data = _read_json(annotations)
    summary = SplitSummary(annotations, images_dir, data, images=len(data["images"]))
    missing = []
    for index, image in enumerate(data["images"]):
        for key in ("id", "file_name", "width", "height"):
            if key not in image:
                raise InputError("an image record lacks a field", path=annotations, field=f"images[{index}].{key}")
        if not (images_dir / image["file_name"]).is_file():
            missing.append(image["file_name"])
    if missing:
        raise InputError(
            f"{len(missing)} of {len(data['images'])} images it lists are not in {images_dir}",
            path=annotations,
            field="images[].file_name",
            got=f"{missing[0]!r} missing",
        )
    per_image = Counter()
    for index, box in enumerate(data["annotations"]):
        bbox = box.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            raise InputError(
                "a box is not [x, y, w, h]", path=annotations, field=f"annotations[{index}].bbox", got=repr(bbox)
            )
        per_image[box.get("image_id")] += 1
        if box.get("ignore"):
            summary.ignore += 1
        elif box.get("uncertain"):
            summary.uncertain += 1
        else:
            summary.boxes += 1
            summary.tiny += (bbox[2] * bbox[3]) ** 0.5 < 20
    summary.dense_images = sum(1 for count in per_image.values() if count > DENSE_BOXES)
    return summary


@dataclass
class Release:
    """A checked TinyPerson download: the training and test splits and which images training reads."""

    root: Path
    train: SplitSummary
    test: SplitSummary
    erased: bool  # training reads erase_with_uncertain_dataset/train


def check_release(root: str | Path, *, with_dense: bool = False, erased: bool | None = None) -> Release:
    """Check a TinyPerson download (see the module docstring). with_dense: train on
    tiny_set_train_with_dense.json. erased: train on the erased images (default: when the release has them)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("not a folder (expected the unpacked tiny_set/ of the TinyPerson download)", path=root)
    train_json = TRAIN_DENSE_JSON if with_dense else TRAIN_JSON
    erased_dir = root / ERASED / "train"
    if erased is None:
        erased = erased_dir.is_dir()
    train_dir = erased_dir if erased else root / "train"
    expected = [train_json, TEST_JSON, str(train_dir.relative_to(root)) + "/", "test/"]
    missing = [name for name in expected if not (root / name).exists()]
    if missing:
        raise InputError(
            "this is not the unpacked TinyPerson download (tiny_set/)",
            path=root,
            expected=", ".join(expected),
            got=f"no {', '.join(missing)}",
        )
    return Release(root, _summarise(root / train_json, train_dir), _summarise(root / TEST_JSON, root / "test"), erased)


def prepare_release(release: Release, out: str | Path, *, guard: OutputGuard | None = None) -> dict:
    """Write the cut training annotations and the dataset YAML under `out` (see the module docstring);
    -> {"yaml", "train_annotations": paths; "pieces", "piece_boxes": counts}. Nothing is written in the release."""
    out = Path(out)
    guard = guard or OutputGuard(inputs=[release.root], verb="data tinyperson")
    guard.check_dir(out)
    cut_path = guard.check_file(out / "annotations" / CUT_NAME, "coco-annotations")
    yaml_path = guard.check_file(out / YAML_NAME, "yaml")
    pieces = cut_annotations(
        release.train.data, tile_size=PIECE_SIZE, overlap=PIECE_OVERLAP, keep_ratio=KEEP_RATIO, drop_empty=True
    )
    cut_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cut_path, pieces, indent=None, separators=(",", ":"))
    atomic_write_text(
        yaml_path,
        (
            "# Written by `sspnet data tinyperson`: TinyPerson as the original SSPNet configs train on it.\n"
            f"# train: {'erased' if release.erased else 'original'} training images cut into {PIECE_SIZE[0]}x"
            f"{PIECE_SIZE[1]} pieces, {PIECE_OVERLAP} px overlap; val: the whole test images.\n"
            "train:\n"
            f"  images: {json.dumps(str(release.train.images_dir.resolve()))}\n"
            f"  annotations: {json.dumps(str(Path('annotations') / CUT_NAME))}\n"
            "val:\n"
            f"  images: {json.dumps(str(release.test.images_dir.resolve()))}\n"
            f"  annotations: {json.dumps(str(release.test.annotations.resolve()))}\n"
        ),
    )
    return {
        "yaml": yaml_path,
        "train_annotations": cut_path,
        "pieces": len(pieces["images"]),
        "piece_boxes": len(pieces["annotations"]),
    }


__all__ = ["KEEP_RATIO", "PIECE_OVERLAP", "PIECE_SIZE", "Release", "check_release", "prepare_release"]
