"""A small replica of the TinyPerson download (tiny_set/) with the release's folder and file names and
annotation fields, for the `sspnet data tinyperson` tests and the bad-input matrix.

Layout and fields as in the release: annotations/tiny_set_{train,test}.json (+ _with_dense), images under
train/labeled_images, test/labeled_images and erase_with_uncertain_dataset/{train,test}/labeled_images;
`file_name` relative to train/ or test/; categories sea_person / earth_person; per box `bbox` [x, y, w, h],
`area`, `iscrowd`, `ignore`, `uncertain`, `logo`, `in_dense_image`, `segmentation`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

CATEGORIES = [
    {"id": 1, "name": "sea_person", "supercategory": "person"},
    {"id": 2, "name": "earth_person", "supercategory": "person"},
]

# (file name, width, height, boxes: (x, y, w, h, category, ignore, uncertain))
TRAIN = [
    (
        "labeled_images/bb_V0005_I0000000.jpg",
        1000,
        700,
        [
            (700, 100, 10, 10, 1, False, False),  # only in the right-hand pieces
            (620, 50, 40, 20, 2, False, False),  # crosses x = 640: half its width in the left pieces (sqrt .5 >= .7)
            (630, 300, 40, 20, 1, False, False),  # a quarter of its width in the left pieces (sqrt .25 < .7)
            (20, 600, 30, 40, 1, True, False),  # an ignore region, bottom-left
            (100, 100, 6, 12, 2, False, True),  # uncertain
        ],
    ),
    (
        "labeled_images/bb_V0012_I0000140.jpg",
        600,
        400,
        [  # smaller than a piece: one piece, the whole image
            (10, 10, 25, 25, 1, False, False),
        ],
    ),
]
TEST = [
    (
        "labeled_images/bb_V0032_I0001640.jpg",
        800,
        600,
        [
            (50, 60, 8, 16, 1, False, False),
            (300, 200, 12, 30, 2, False, False),
            (500, 500, 40, 40, 1, True, False),
        ],
    ),
]


def coco(images) -> dict:
    records, annotations = [], []
    for image_id, (file_name, width, height, boxes) in enumerate(images):
        records.append({"file_name": file_name, "height": height, "width": width, "id": image_id})
        for x, y, w, h, category, ignore, uncertain in boxes:
            annotations.append(
                {
                    "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                    "bbox": [x, y, w, h],
                    "category_id": category,
                    "area": w * h,
                    "iscrowd": 0,
                    "image_id": image_id,
                    "id": len(annotations),
                    "ignore": ignore,
                    "uncertain": uncertain,
                    "logo": False,
                    "in_dense_image": False,
                }
            )
    return {"type": "instance", "annotations": annotations, "images": records, "categories": CATEGORIES}


def write_replica(root: Path) -> Path:
    """Write the replica under root (= tiny_set/); -> root."""
    rng = np.random.default_rng(7)
    annotations = root / "annotations"
    annotations.mkdir(parents=True)
    (annotations / "tiny_set_train.json").write_text(json.dumps(coco(TRAIN)))
    (annotations / "tiny_set_train_with_dense.json").write_text(json.dumps(coco(TRAIN)))
    (annotations / "tiny_set_test.json").write_text(json.dumps(coco(TEST)))
    for folder, images in (
        ("train", TRAIN),
        ("test", TEST),
        ("erase_with_uncertain_dataset/train", TRAIN),
        ("erase_with_uncertain_dataset/test", TEST),
    ):
        for file_name, width, height, _ in images:
            path = root / folder / file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path, quality=90)
    return root
