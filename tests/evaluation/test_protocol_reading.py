"""Ground truth exactly as the official TinyPerson evaluation reads it: boxes as
in the file (not clipped to the image) and float64. Expected numbers are worked out in the comments."""

import json

import numpy as np
import pytest

from sspnet.data.tinyperson import load_annotations
from sspnet.evaluation.tinyperson import evaluate


def one_image_gt(bbox, area, width=100, height=100):
    return {
        "images": [{"id": 1, "file_name": "1.jpg", "width": width, "height": height}],
        "annotations": [{"id": 1, "image_id": 1, "bbox": bbox, "area": area, "category_id": 1, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "person"}],
    }


def test_a_box_crossing_the_border_is_scored_with_its_full_extent():
    # Image 100x100; the person's box [90, 10, 20, 20] runs from x 90 to 110, past the right edge;
    # area 400 (as annotated). The detection covers only the visible part, x 90..100:
    #   intersection = 10 * 20 = 200, union = 200 + 400 - 200 = 400  ->  IoU 0.5 with the raw box.
    # (With the box clipped to the image, x 90..100, the IoU would be 1.)
    # t = 0.25, 0.5: IoU >= t -> one TP, recall 1, precision 1 -> AP 100.
    # t = 0.75: no match -> one FP, recall 0 -> AP 0.
    gt = one_image_gt([90, 10, 20, 20], 400)
    dets = [{"image_id": 1, "bbox": [90, 10, 10, 20], "score": 0.9, "category_id": 1}]
    results = evaluate(gt, dets, compute_mr=False)
    assert (results["AP25_all"], results["AP50_all"], results["AP75_all"]) == pytest.approx((100.0, 100.0, 0.0))
    # area 400 = 20**2 lies in "tiny" (bounds inclusive): the same there
    assert (results["AP50_tiny"], results["AP75_tiny"]) == pytest.approx((100.0, 0.0))


def test_training_reading_clips_evaluation_reading_keeps_the_file(tmp_path):
    gt = one_image_gt([90, 10, 20, 20], 400)
    training = load_annotations(gt)
    evaluation = load_annotations(gt, evaluation=True)
    for loaded in (training, evaluation):
        (record,) = loaded.records
        np.testing.assert_array_equal(record.raw_boxes, [[90, 10, 110, 30]])
        np.testing.assert_array_equal(record.boxes, [[90, 10, 100, 30]])
        assert record.raw_boxes.dtype == np.float64 and record.areas.tolist() == [400.0]
    assert "clipped for training" in str(training.report)
    assert "kept as is for evaluation" in str(evaluation.report)


def test_ground_truth_is_evaluated_in_float64():
    # Detection [0, 0, 8, 8] (area 64); the person [0, 0, 8, h] with h = 6 - 2**-30, which float64
    # holds exactly and float32 rounds to 6.0 (float32 steps are 2**-21 near 6).
    # The person lies inside the detection: intersection = 8h, union = 64, IoU = h / 8
    #   float64: (6 - 2**-30) / 8 = 0.75 - 2**-33 < 0.75  -> no match at t = 0.75 -> AP75 = 0
    #   float32: 6 / 8 = 0.75 >= 0.75                     -> a match -> AP75 would be 100
    h = 6 - 2**-30
    assert np.float32(h) == 6.0 and h != 6.0
    gt = json.loads(json.dumps(one_image_gt([0, 0, 8, h], 8 * h)))  # through JSON text, as from a file
    dets = [{"image_id": 1, "bbox": [0, 0, 8, 8], "score": 0.9, "category_id": 1}]
    results = evaluate(gt, dets, compute_mr=False)
    assert results["AP50_all"] == pytest.approx(100.0)
    assert results["AP75_all"] == 0.0


def test_evaluation_reading_refuses_what_cannot_be_scored():
    from sspnet.errors import InputError

    with pytest.raises(InputError, match=r"<dict>: annotations\[0\]\.bbox: expected w >= 0 and h >= 0"):
        load_annotations(one_image_gt([10, 10, -2, 5], 10), evaluation=True)
    with pytest.raises(InputError, match=r"annotations\[0\]\.bbox: expected overlap with the 100x100 image"):
        load_annotations(one_image_gt([100, 10, 5, 5], 25), evaluation=True)
    # zero-size boxes are kept (the official evaluation keeps them; the size ranges ignore them)
    (record,) = load_annotations(one_image_gt([10, 10, 0, 5], 0), evaluation=True).records
    np.testing.assert_array_equal(record.raw_boxes, [[10, 10, 10, 15]])
