"""Model-based evaluation (tiles, scales, batching) with a fake detector obeying the model contract,
and the `sspnet val` command."""

import json
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from sspnet.cli import main as sspnet_main
from sspnet.data.tinyperson import load_annotations
from sspnet.evaluation import evaluate
from sspnet.evaluation.inference import PAPER_TTA_SCALES, detect_dataset, detect_image

RED = np.array([255, 0, 0], np.uint8)


class RedSquareDetector:
    """Contract: uint8 [N, 3, H, W] -> num_dets [N, 1], boxes [N, K, 4], scores [N, K], labels [N, K].
    Detects the bounding box of the red pixels of each input (or nothing)."""

    max_detections = 5

    def __init__(self):
        self.calls = []

    def to(self, device):
        return self

    def __call__(self, images):
        assert images.dtype == torch.uint8 and images.shape[2] % 32 == 0 and images.shape[3] % 32 == 0
        self.calls.append(tuple(images.shape))
        n = images.shape[0]
        out = {
            "num_dets": torch.zeros((n, 1), dtype=torch.int32),
            "boxes": torch.zeros((n, self.max_detections, 4)),
            "scores": torch.zeros((n, self.max_detections)),
            "labels": torch.zeros((n, self.max_detections), dtype=torch.int32),
        }
        for k in range(n):
            red = (images[k, 0] > 200) & (images[k, 1] < 60) & (images[k, 2] < 60)
            ys, xs = torch.nonzero(red, as_tuple=True)
            if len(xs):
                out["num_dets"][k, 0] = 1
                out["boxes"][k, 0] = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
                out["scores"][k, 0] = 0.9
        return out


def image_with_square(height, width, x1, y1, x2, y2):
    image = np.full((height, width, 3), 90, np.uint8)
    image[y1:y2, x1:x2] = RED
    return image


def test_tiles_merge_a_square_seen_by_four_tiles():
    image = image_with_square(700, 1000, 600, 300, 620, 340)  # inside the overlap of all four tiles
    model = RedSquareDetector()
    boxes, scores, labels = detect_image(model, image, tile=(400, 640), overlap=100, batch_size=3)
    np.testing.assert_allclose(boxes, [[600, 300, 620, 340]])
    assert scores.tolist() == pytest.approx([0.9]) and labels.tolist() == [0]
    assert [c[0] for c in model.calls] == [3, 1]  # 4 tiles in batches of 3
    assert all(c[2:] == (416, 640) for c in model.calls)  # 400 padded to a multiple of 32


def test_whole_image_and_scales():
    image = image_with_square(300, 500, 100, 50, 120, 90)
    boxes, _, _ = detect_image(RedSquareDetector(), image)
    np.testing.assert_allclose(boxes, [[100, 50, 120, 90]])
    # keep-ratio factor min(1000/500, 600/300) = 2: boxes come back divided by 2
    boxes, _, _ = detect_image(RedSquareDetector(), image, scales=[(1000, 600)])
    np.testing.assert_allclose(boxes, [[100, 50, 120, 90]], atol=1.0)
    # both paper scales detect the square; the merge keeps one box
    boxes, _, _ = detect_image(RedSquareDetector(), image, scales=PAPER_TTA_SCALES)
    assert boxes.shape == (1, 4)
    np.testing.assert_allclose(boxes[0], [100, 50, 120, 90], atol=1.0)


@pytest.fixture
def square_dataset(tmp_path):
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    squares = {1: (40, 60, 52, 84), 2: (300, 200, 310, 215), 3: (500, 400, 530, 430)}
    gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "sea_person"}, {"id": 2, "name": "earth_person"}]}
    for image_id, (x1, y1, x2, y2) in squares.items():
        Image.fromarray(image_with_square(480, 640, x1, y1, x2, y2)).save(images_dir / f"{image_id}.png")
        gt["images"].append({"id": image_id, "file_name": f"{image_id}.png", "width": 640, "height": 480})
        gt["annotations"].append({"id": image_id, "image_id": image_id, "category_id": 2, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                  "area": (x2 - x1) * (y2 - y1), "iscrowd": 0, "ignore": False, "uncertain": False})
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "val.json").write_text(json.dumps(gt))
    return tmp_path, squares


def test_detect_dataset_then_evaluate(square_dataset):
    data_dir, squares = square_dataset
    annotations = load_annotations(data_dir / "annotations" / "val.json", image_root=data_dir / "images")
    model = RedSquareDetector()
    detections = detect_dataset(model, annotations, batch_size=2, progress=False)
    assert [c[0] for c in model.calls] == [2, 1]  # whole images batched
    for image_id, (x1, y1, x2, y2) in squares.items():
        np.testing.assert_allclose(detections[image_id]["boxes"], [[x1, y1, x2, y2]])
    tiled = detect_dataset(RedSquareDetector(), annotations, tile=(256, 320), overlap=32, progress=False)
    for image_id in squares:
        np.testing.assert_allclose(tiled[image_id]["boxes"], detections[image_id]["boxes"])
    assert evaluate(annotations, tiled)["AP50_all"] == pytest.approx(100.0)


def test_val_command_with_results_file(square_dataset, tmp_path, capsys):
    data_dir, squares = square_dataset
    results = [{"image_id": i, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": 0.8, "category_id": 1}
               for i, (x1, y1, x2, y2) in squares.items()]
    results_path, metrics_path = tmp_path / "results.json", tmp_path / "metrics.json"
    results_path.write_text(json.dumps(results))
    code = sspnet_main(["val", "--results", str(results_path), "--annotations", str(data_dir / "annotations" / "val.json"),
                        "--json", str(metrics_path)])
    assert code == 0
    metrics = json.loads(metrics_path.read_text())
    assert metrics["AP50_all"] == pytest.approx(100.0)
    assert metrics["AP50_tiny1"] is None  # no GT in range -> null in JSON
    assert "AP50_tiny" in capsys.readouterr().out
    assert sspnet_main(["val", "--annotations", str(data_dir / "annotations" / "val.json")]) == 2


def test_val_command_with_checkpoint(square_dataset, tmp_path, monkeypatch):
    data_dir, _ = square_dataset
    fake = types.ModuleType("sspnet.checkpoint")
    fake.load_model = lambda path, preset=None, **overrides: RedSquareDetector()
    monkeypatch.setitem(sys.modules, "sspnet.checkpoint", fake)
    metrics_path, saved = tmp_path / "metrics.json", tmp_path / "dets.json"
    code = sspnet_main(["val", "--checkpoint", "fake.ckpt", "--data", str(data_dir), "--tile", "256", "320",
                        "--json", str(metrics_path), "--save-results", str(saved), "--device", "cpu"])
    assert code == 0
    assert json.loads(metrics_path.read_text())["AP50_all"] == pytest.approx(100.0)
    # the saved detections are a COCO results file that evaluates the same
    assert evaluate(data_dir / "annotations" / "val.json", saved)["AP50_all"] == pytest.approx(100.0)
