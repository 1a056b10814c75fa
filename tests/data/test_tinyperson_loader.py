"""Loading TinyPerson / corner / COCO JSON: records, flags, and the load report."""

import json

import numpy as np
import pytest
from PIL import Image

from sspnet.data.tinyperson import dataset_paths, load_annotations
from sspnet.errors import InputError

TINYPERSON_CATEGORIES = [{"id": 1, "name": "sea_person"}, {"id": 2, "name": "earth_person"}]


def annotation(k, image_id, bbox, category_id=1, **flags):
    a = {
        "id": k,
        "image_id": image_id,
        "bbox": bbox,
        "category_id": category_id,
        "iscrowd": 0,
        "area": bbox[2] * bbox[3] if all(isinstance(v, (int, float)) for v in bbox) else 0,
    }
    a.update(flags)
    return a


def write_image(path, width, height, value=100):
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)


def test_tinyperson_flags_and_merged_categories():
    data = {
        "images": [{"id": 7, "file_name": "a.jpg", "width": 100, "height": 80}],
        "annotations": [
            annotation(1, 7, [10, 20, 5, 10], 1, ignore=False, uncertain=False, in_dense_image=True),
            annotation(2, 7, [30, 20, 6, 12], 2, ignore=True, uncertain=False),
            annotation(3, 7, [50, 20, 4, 8], 2, ignore=False, uncertain=True),
        ],
        "categories": TINYPERSON_CATEGORIES,
    }
    loaded = load_annotations(data)
    assert loaded.classes == ["person"] and loaded.category_to_label == {1: 0, 2: 0}
    (record,) = loaded.records
    assert record.image_id == 7 and record.path is None and record.corner is None
    np.testing.assert_array_equal(record.boxes, [[10, 20, 15, 30], [30, 20, 36, 32], [50, 20, 54, 28]])
    assert record.boxes.dtype == np.float32 and record.labels.dtype == np.int64
    assert record.labels.tolist() == [0, 0, 0]
    assert record.ignore_mask.tolist() == [False, True, True]
    assert record.in_dense_image.tolist() == [True, False, False]
    assert loaded.report.ok and str(loaded.report) == "<dict>: 1 images, 3 boxes (2 ignore/uncertain)"


def test_plain_coco_keeps_categories_in_id_order():
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
        "annotations": [annotation(1, 1, [1, 1, 5, 5], 9), annotation(2, 1, [1, 1, 5, 5], 3)],
        "categories": [{"id": 9, "name": "car"}, {"id": 3, "name": "person"}],
    }
    loaded = load_annotations(data)
    assert loaded.classes == ["person", "car"]
    assert loaded.records[0].labels.tolist() == [1, 0]
    assert loaded.records[0].ignore_mask.tolist() == [False, False]


def test_corner_records(tmp_path):
    write_image(tmp_path / "big.jpg", 300, 200)
    data = {
        "images": [{"id": 1, "file_name": "big.jpg", "width": 64, "height": 48, "corner": [100, 50, 164, 98]}],
        "annotations": [annotation(1, 1, [60, 40, 10, 10], 2)],  # reaches past the piece: clipped
        "categories": TINYPERSON_CATEGORIES,
    }
    loaded = load_annotations(data, image_root=tmp_path)
    (record,) = loaded.records
    assert record.corner == (100, 50, 164, 98) and (record.width, record.height) == (64, 48)
    np.testing.assert_array_equal(record.boxes, [[60, 40, 64, 48]])
    assert loaded.report.counts == {"clipped box": 1}


def test_report_counts_every_problem(tmp_path):
    write_image(tmp_path / "ok.jpg", 100, 80)
    write_image(tmp_path / "size.jpg", 90, 70)
    (tmp_path / "corrupt.jpg").write_bytes(b"not a jpeg at all")
    data = {
        "images": [
            {"id": 1, "file_name": "ok.jpg", "width": 100, "height": 80},
            {"id": 2, "file_name": "missing.jpg", "width": 100, "height": 80},
            {"id": 3, "file_name": "corrupt.jpg", "width": 100, "height": 80},
            {"id": "4", "file_name": "ok.jpg", "width": 100, "height": 80},
            {"id": 5, "file_name": "size.jpg", "width": 100, "height": 80},
        ],
        "annotations": [
            annotation(1, 1, [10, 10, 5, 5]),
            annotation(2, 1, [95, 70, 20, 20]),  # clipped to 100x80
            annotation(3, 1, [10, 10, 0, 5]),  # zero area: dropped
            annotation(4, 1, [10, 10, "5", 5]),  # wrong type
            annotation(5, 1, [10, 10, 5, 5], 42),  # unknown category
            annotation(6, 99, [10, 10, 5, 5]),  # unknown image
            annotation(7, 1, [10, 10, 5, 5], ignore="yes"),  # bad flag
            annotation(8, 2, [10, 10, 5, 5]),  # its image is missing
            annotation(9, 5, [85, 10, 10, 5]),  # image is really 90 wide: clipped
            annotation(10, 1, [200, 10, 5, 5]),  # wholly outside the image: dropped
        ],
        "categories": TINYPERSON_CATEGORIES,
    }
    path = tmp_path / "train.json"
    path.write_text(json.dumps(data))
    loaded = load_annotations(path, image_root=tmp_path)
    report = loaded.report
    assert [r.image_id for r in loaded.records] == [1, 5]
    assert (loaded.records[1].width, loaded.records[1].height) == (90, 70)
    assert dict(report.counts) == {
        "missing image": 1,
        "unreadable image": 1,
        "bad image record": 1,
        "image size fixed": 1,
        "clipped box": 2,
        "zero-area box dropped": 1,
        "box outside the image": 1,
        "bad annotation": 3,
        "unknown image id": 2,
    }
    assert report.images == 2 and report.boxes == 3
    line = str(report)
    assert "\n" not in line and line.startswith("train.json: 2 images, 3 boxes")
    assert "missing.jpg" in line and "corrupt.jpg" in line


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty"),
        ('{"images": [', "not valid JSON.*line 1 column"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"images": [], "annotations": [], "categories": TINYPERSON_CATEGORIES}), "no images"),
        (json.dumps({"images": [{"id": 1}], "annotations": []}), "categories"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "gt.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        load_annotations(path)
    assert "gt.json" in str(info.value)


def test_missing_file_and_dataset_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        load_annotations(tmp_path / "nothing.json")
    with pytest.raises(InputError, match="annotations/val.json"):
        dataset_paths(tmp_path, "val")
    with pytest.raises(FileNotFoundError, match="data folder not found"):
        dataset_paths(tmp_path / "nowhere", "val")
