"""Parity helpers: matching exported detections to PyTorch's, and scoring them on a data split."""

import numpy as np
import pytest
from sspnet.export.parity import compare_detections, dataset_images, outputs_to_detections

from sspnet.evaluation import evaluate


def contract(per_image, capacity=6):
    """[(boxes [d, 4], scores [d], labels [d])] -> padded contract outputs."""
    n = len(per_image)
    out = {
        "num_dets": np.zeros((n, 1), np.int32),
        "boxes": np.zeros((n, capacity, 4), np.float32),
        "scores": np.zeros((n, capacity), np.float32),
        "labels": np.full((n, capacity), -1, np.int32),
    }
    for i, (boxes, scores, labels) in enumerate(per_image):
        d = len(scores)
        out["num_dets"][i, 0] = d
        out["boxes"][i, :d], out["scores"][i, :d], out["labels"][i, :d] = boxes, scores, labels
    return out


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from sspnet.data.synth import write_dataset

    folder = tmp_path_factory.mktemp("synth")
    write_dataset(folder, 6, seed=1, val_fraction=0.5, size=(128, 96), progress=False)
    return folder


def test_dataset_images_follow_the_annotation_order(synth):
    images, annotations = dataset_images(synth, "val")
    assert images.dtype == np.uint8 and images.shape == (len(annotations.records), 3, 96, 128)
    limited, subset = dataset_images(synth, "val", limit=2)
    assert len(limited) == len(subset.records) == 2
    np.testing.assert_array_equal(limited, images[:2])


def test_ground_truth_as_outputs_scores_perfect_ap(synth):
    _, annotations = dataset_images(synth, "val")
    per_image = []
    for record in annotations.records:
        boxes = record.boxes[~(record.ignore | record.uncertain)]
        per_image.append((boxes, np.linspace(0.9, 0.5, len(boxes)), np.zeros(len(boxes))))
    assert sum(len(p[0]) for p in per_image) > 0
    outputs = contract(per_image, capacity=max(len(p[0]) for p in per_image))
    detections = outputs_to_detections(outputs, [r.image_id for r in annotations.records])
    assert evaluate(annotations, detections, compute_mr=False)["AP50_all"] == pytest.approx(100.0)
    # half of each image's people missed: recall at most ~1/2
    halves = contract([(b[::2], s[::2], l[::2]) for b, s, l in per_image], capacity=outputs["boxes"].shape[1])
    partial = evaluate(
        annotations, outputs_to_detections(halves, [r.image_id for r in annotations.records]), compute_mr=False
    )["AP50_all"]
    assert 30.0 < partial < 70.0


def test_compare_detections_tolerances():
    boxes = np.array([[10, 10, 20, 30], [50, 50, 60, 70]], np.float32)
    reference = contract([(boxes, np.array([0.9, 0.04]), np.zeros(2))])
    shifted = contract([(boxes + [0, 0, 0, 0.05], np.array([0.9005, 0.04]), np.zeros(2))])
    stats = compare_detections(reference, shifted)
    assert (stats["reference"], stats["matched"], stats["matched_pct"]) == (1, 1, 100.0)  # 0.04 < score_min
    off = contract([(boxes, np.array([0.902, 0.04]), np.zeros(2))])  # score 2e-3 away
    assert compare_detections(reference, off)["matched"] == 0
