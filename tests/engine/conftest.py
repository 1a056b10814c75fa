"""Tiny data sets for the trainer tests (128 x 128 images) and one torch thread per test."""

import json

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny convolutions on a shared 2-core machine run many times faster on one thread (the
    OpenMP workers otherwise wait on each other)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    """`sspnet synth`-style folder: 8 images of 128 x 128 (6 train, 2 val)."""
    from sspnet.data.synth import write_dataset

    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, 8, seed=3, val_fraction=0.25, size=(128, 128), progress=False)
    return out


@pytest.fixture(scope="session")
def same_boxes_data(tmp_path_factory):
    """4 train images of 128 x 128 with different random pixels but identical boxes.

    Every image then has the same number of positive points, so FoveaBox's batch-normalised
    losses equal the mean of per-image losses: the setting where 1 process x batch 2 and
    2 processes x batch 1 must give the same loss.
    """
    import cv2

    out = tmp_path_factory.mktemp("same_boxes")
    (out / "images").mkdir()
    (out / "annotations").mkdir()
    rng = np.random.default_rng(0)
    boxes = [[10, 12, 9, 14], [60, 40, 16, 20], [90, 90, 6, 7], [30, 80, 24, 30]]  # x, y, w, h
    images, annotations = [], []
    for k in range(4):
        pixels = rng.integers(0, 256, size=(128, 128, 3), dtype=np.uint8)
        cv2.imwrite(str(out / "images" / f"im{k}.png"), pixels)
        images.append({"id": k + 1, "file_name": f"im{k}.png", "width": 128, "height": 128})
        for j, (x, y, w, h) in enumerate(boxes):
            annotations.append(
                {
                    "id": 10 * k + j + 1,
                    "image_id": k + 1,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "category_id": 1,
                    "iscrowd": 0,
                }
            )
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    (out / "annotations" / "train.json").write_text(json.dumps(coco))
    (out / "annotations" / "val.json").write_text(json.dumps(coco))
    return out
