"""Model-based evaluation (tiles, scales, batching) with a fake detector obeying the model contract,
and the `sspnet val` command."""

import json
import sys
import types

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from sspnet.cli import main as sspnet_main
from sspnet.data.tinyperson import load_annotations
from sspnet.evaluation import evaluate
from sspnet.evaluation.inference import PAPER_TTA_SCALES, _unpack, detect_dataset, detect_image, run_model

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
    gt = {
        "images": [],
        "annotations": [],
        "categories": [{"id": 1, "name": "sea_person"}, {"id": 2, "name": "earth_person"}],
    }
    for image_id, (x1, y1, x2, y2) in squares.items():
        Image.fromarray(image_with_square(480, 640, x1, y1, x2, y2)).save(images_dir / f"{image_id}.png")
        gt["images"].append({"id": image_id, "file_name": f"{image_id}.png", "width": 640, "height": 480})
        gt["annotations"].append(
            {
                "id": image_id,
                "image_id": image_id,
                "category_id": 2,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": (x2 - x1) * (y2 - y1),
                "iscrowd": 0,
                "ignore": False,
                "uncertain": False,
            }
        )
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
    results = [
        {"image_id": i, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": 0.8, "category_id": 1}
        for i, (x1, y1, x2, y2) in squares.items()
    ]
    results_path, metrics_path = tmp_path / "results.json", tmp_path / "metrics.json"
    results_path.write_text(json.dumps(results))
    code = sspnet_main(
        [
            "val",
            "--results",
            str(results_path),
            "--annotations",
            str(data_dir / "annotations" / "val.json"),
            "--json",
            str(metrics_path),
        ]
    )
    assert code == 0
    metrics = json.loads(metrics_path.read_text())
    assert metrics["AP50_all"] == pytest.approx(100.0)
    assert metrics["AP50_tiny1"] is None  # no GT in range -> null in JSON
    assert "AP50_tiny" in capsys.readouterr().out
    assert sspnet_main(["val", "--annotations", str(data_dir / "annotations" / "val.json")]) == 2


def test_val_command_leaves_dense_images_out_unless_asked(square_dataset, tmp_path, capsys):
    data_dir, squares = square_dataset
    gt_path = data_dir / "annotations" / "val.json"
    gt = json.loads(gt_path.read_text())
    gt["annotations"][2]["in_dense_image"] = True  # image 3 is dense, and left undetected below
    gt_path.write_text(json.dumps(gt))
    results = [
        {"image_id": i, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": 0.8, "category_id": 1}
        for i, (x1, y1, x2, y2) in squares.items()
        if i != 3
    ]
    results_path, metrics_path = tmp_path / "results.json", tmp_path / "metrics.json"
    results_path.write_text(json.dumps(results))
    args = ["val", "--results", str(results_path), "--annotations", str(gt_path), "--json", str(metrics_path)]
    assert sspnet_main(args) == 0
    assert json.loads(metrics_path.read_text())["AP50_all"] == pytest.approx(100.0)
    assert "2 images, 1 dense images left out" in capsys.readouterr().out
    assert sspnet_main(args + ["--keep-dense"]) == 0
    assert json.loads(metrics_path.read_text())["AP50_all"] == pytest.approx(100 * 67 / 101)  # recall 2/3


def test_val_command_with_checkpoint(square_dataset, tmp_path, monkeypatch):
    data_dir, _ = square_dataset
    fake = types.ModuleType("sspnet.checkpoint")
    detector = RedSquareDetector()
    detector.config = types.SimpleNamespace(
        nms_method="linear", nms_iou_thr=0.3, nms_min_score=0.05, score_thr=0.05, max_detections=500
    )
    fake.load_model = lambda path, preset=None, **overrides: detector
    monkeypatch.setitem(sys.modules, "sspnet.checkpoint", fake)
    metrics_path, saved = tmp_path / "metrics.json", tmp_path / "dets.json"
    (tmp_path / "fake.ckpt").write_bytes(b"")  # val checks that the file exists; the fake loader ignores it
    code = sspnet_main(
        [
            "val",
            "--checkpoint",
            str(tmp_path / "fake.ckpt"),
            "--data",
            str(data_dir),
            "--tile",
            "256",
            "320",
            "--json",
            str(metrics_path),
            "--save-results",
            str(saved),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    assert json.loads(metrics_path.read_text())["AP50_all"] == pytest.approx(100.0)
    # the saved detections are a COCO results file that evaluates the same
    assert evaluate(data_dir / "annotations" / "val.json", saved)["AP50_all"] == pytest.approx(100.0)


# ---- multi-scale inside an SSPNet model (the original's aug test) -------------------------------


def _tiny_model(preset, **overrides):
    from sspnet.models import build_model

    torch.manual_seed(0)
    # a low score threshold so an untrained model still returns many detections to compare
    return build_model(preset, neck_channels=16, score_thr=0.001, nms_min_score=0.001, **overrides).eval()


def _random_scene(height=64, width=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "preset,extra",
    [
        ("fovea_r18_sspnet_small", {"fovea_feat_channels": 16}),
        ("faster_rcnn_r18_sspnet_small", {"roi_fc_channels": 32}),
    ],
)
def test_multiscale_of_one_scale_at_twice_the_size_is_the_native_detection(preset, extra):
    # An image upsampled 2x (nearest) and seen at factor 0.5 (linear) is exactly the original image,
    # so the in-model multi-scale path must return its native-size result at twice the coordinates.
    model = _tiny_model(preset, **extra)
    image = _random_scene()
    big = image.repeat(2, axis=0).repeat(2, axis=1)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None]
    (native,) = _unpack(model.detect_multiscale([tensor], [1.0]), 1)
    if preset.startswith("fovea"):  # one scale through the aug path = the plain forward
        (plain,) = run_model(model, [image])
        for got, want in zip(native, plain):
            np.testing.assert_array_equal(got, want)
    boxes, scores, labels = detect_image(model, big, scales=[(96, 64)], max_detections=None)
    assert len(native[1]) > 10
    np.testing.assert_allclose(boxes, 2 * native[0], atol=1e-3)
    np.testing.assert_allclose(scores, native[1], atol=1e-6)
    np.testing.assert_array_equal(labels, native[2])


def test_fovea_multiscale_concatenates_candidates_before_nms():
    model = _tiny_model("fovea_r18_sspnet_small", fovea_feat_channels=16, nms_method="hard", nms_iou_thr=0.5)
    image = torch.from_numpy(_random_scene()).permute(2, 0, 1)[None]
    up = torch.nn.functional.interpolate(image.float(), scale_factor=2, mode="nearest").to(torch.uint8)
    result = model.detect_multiscale([image, up], [1.0, 2.0])
    # Reference: both scales' candidates in original pixels, one class-aware NMS (torchvision).
    boxes, scores = [], []
    with torch.no_grad():
        for batch, factor in ((image, 1.0), (up, 2.0)):
            features, _ = model.extract_features(batch)
            cls, reg = model.bbox_head(features)
            b, s, _ = model.bbox_head.detect(cls, reg, tuple(batch.shape[-2:]), model.config.fovea_nms_pre)
            boxes.append(b[0] / factor)
            scores.append(s[0])
    boxes, scores = torch.cat(boxes), torch.cat(scores)
    boxes, scores = boxes[scores > 0.001], scores[scores > 0.001]
    keep = torchvision.ops.nms(boxes, scores, 0.5)[: model.config.max_detections]
    n = int(result["num_dets"][0, 0])
    assert n == len(keep)
    np.testing.assert_allclose(result["scores"][0, :n].numpy(), scores[keep].numpy(), atol=1e-6)
    np.testing.assert_allclose(result["boxes"][0, :n].numpy(), boxes[keep].numpy(), atol=1e-4)


def test_faster_multiscale_averages_the_same_proposals_over_scales():
    # Two identical scales: the concatenated proposals collapse under the NMS to one scale's set and
    # the averages equal that scale's values, so the result equals a single scale through the
    # same (aug-test) path; and scores are averaged, never summed (all <= 1).
    model = _tiny_model("faster_rcnn_r18_sspnet_small", roi_fc_channels=32)
    image = torch.from_numpy(_random_scene()).permute(2, 0, 1)[None]
    once = model.detect_multiscale([image], [1.0])
    twice = model.detect_multiscale([image, image], [1.0, 1.0])
    assert int(once["num_dets"]) > 0
    for key in ("num_dets", "labels"):
        assert torch.equal(once[key], twice[key])
    for key in ("boxes", "scores"):
        torch.testing.assert_close(once[key], twice[key], atol=1e-5, rtol=0)
    assert float(twice["scores"].max()) <= 1.0


def test_multiscale_rejects_mismatched_inputs():
    model = _tiny_model("fovea_r18_sspnet_small", fovea_feat_channels=16)
    image = torch.zeros(1, 3, 64, 64, dtype=torch.uint8)
    with pytest.raises(ValueError, match="one scale factor per image batch"):
        model.detect_multiscale([image, image], [1.0])
    with pytest.raises(ValueError, match="same images"):
        model.detect_multiscale([image, torch.zeros(2, 3, 64, 64, dtype=torch.uint8)], [1.0, 1.0])
    with pytest.raises(RuntimeError, match="eval"):
        model.train().detect_multiscale([image], [1.0])
