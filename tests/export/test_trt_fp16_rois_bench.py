"""benchmarks/trt_fp16_rois.py's trained mode: the layouts that reach large RoI coordinates from small
dataset images (upscaling, mosaics) and the mapping of detections back to each image's own pixels."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "trt_fp16_rois.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("trt_fp16_rois_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def contract(per_image, capacity=4):
    """[(boxes [d, 4], scores [d])] -> padded contract outputs (label 0)."""
    n = len(per_image)
    out = {
        "num_dets": np.zeros((n, 1), np.int32),
        "boxes": np.zeros((n, capacity, 4), np.float32),
        "scores": np.zeros((n, capacity), np.float32),
        "labels": np.full((n, capacity), -1, np.int32),
    }
    for i, (boxes, scores) in enumerate(per_image):
        d = len(scores)
        out["num_dets"][i, 0] = d
        out["boxes"][i, :d], out["scores"][i, :d], out["labels"][i, :d] = boxes, scores, 0
    return out


def test_upscale_and_scale_outputs_round_trip(bench):
    images = np.arange(2 * 3 * 4 * 6, dtype=np.uint8).reshape(2, 3, 4, 6)
    assert bench.upscale(images, 1) is images
    big = bench.upscale(images, 4)
    assert big.shape == (2, 3, 16, 24) and big.dtype == np.uint8
    outputs = contract([(np.array([[4.0, 8.0, 20.0, 16.0]]), np.array([0.9]))])
    back = bench.scale_outputs(outputs, 1 / 4)
    np.testing.assert_allclose(back["boxes"][0, 0], [1.0, 2.0, 5.0, 4.0])
    assert outputs["boxes"][0, 0, 0] == 4.0  # the input is untouched
    np.testing.assert_array_equal(back["scores"], outputs["scores"])


def test_mosaic_layout_row_major_with_black_padding(bench):
    images = np.stack([np.full((3, 2, 3), k + 1, np.uint8) for k in range(5)])  # 5 images, H 2, W 3
    frames = bench.mosaic(images, 2)
    assert frames.shape == (2, 3, 4, 6)
    assert frames[0, 0, 0, 0] == 1 and frames[0, 0, 0, 3] == 2 and frames[0, 0, 2, 0] == 3 and frames[0, 0, 2, 3] == 4
    assert frames[1, 0, 0, 0] == 5 and not frames[1, :, :, 3:].any() and not frames[1, :, 2:].any()


def test_split_mosaic_assigns_by_centre_shifts_clips_and_drops_blank_tiles(bench):
    tile = (100, 200)  # H, W
    frame0 = (
        np.array(
            [
                [10, 10, 30, 40],  # image 0
                [250, 20, 260, 30],  # image 1 (col 1)
                [190, 150, 230, 170],  # centre x 210 -> image 3 (row 1, col 1), clipped at x 0
                [20, 120, 40, 140],
            ]
        ),  # image 2 (row 1, col 0)
        np.array([0.9, 0.8, 0.7, 0.6]),
    )
    frame1 = (np.array([[5, 5, 15, 15], [300, 150, 320, 170]]), np.array([0.5, 0.4]))  # image 4; blank tile
    outputs = contract([frame0, frame1])
    split = bench.split_mosaic(outputs, 2, tile, num_images=5)
    assert split["num_dets"][:, 0].tolist() == [1, 1, 1, 1, 1]
    np.testing.assert_allclose(split["boxes"][0, 0], [10, 10, 30, 40])
    np.testing.assert_allclose(split["boxes"][1, 0], [50, 20, 60, 30])
    np.testing.assert_allclose(split["boxes"][2, 0], [20, 20, 40, 40])
    np.testing.assert_allclose(split["boxes"][3, 0], [0, 50, 30, 70])
    np.testing.assert_allclose(split["boxes"][4, 0], [5, 5, 15, 15])
    np.testing.assert_allclose(split["scores"][:, 0], [0.9, 0.8, 0.6, 0.7, 0.5])
    assert (split["labels"][:, 0] == 0).all()


def test_mosaic_round_trip_keeps_ground_truth_ap(bench, tmp_path):
    """Ground truth as detections, placed in mosaics and split back: AP50 100 on the real protocol."""
    from sspnet.export.parity import dataset_images

    from sspnet.data.synth import write_dataset

    write_dataset(tmp_path / "data", 6, seed=1, val_fraction=0.5, size=(128, 96), progress=False)
    images, annotations = dataset_images(tmp_path / "data", "val")
    height, width = images.shape[2:]
    grid, per_frame = 2, 4
    frames = []
    for start in range(0, len(annotations.records), per_frame):
        boxes, scores = [], []
        for cell, record in enumerate(annotations.records[start : start + per_frame]):
            row, col = divmod(cell, grid)
            keep = record.boxes[~(record.ignore | record.uncertain)]
            boxes.append(keep + [col * width, row * height] * 2)
            scores.append(np.linspace(0.9, 0.5, len(keep)))
        frames.append((np.concatenate(boxes), np.concatenate(scores)))
    outputs = contract(frames, capacity=max(len(s) for _, s in frames))
    split = bench.split_mosaic(outputs, grid, (height, width), len(images))
    ap = bench.ground_truth_ap(annotations, split)
    assert ap["AP50_all"] == pytest.approx(100.0)
