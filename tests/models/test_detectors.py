"""Both detectors end to end on small presets: output contract, input checks, gradients, determinism."""

import pytest
import torch
from sspnet.runtime.contract import DEFAULT_MAX_DETECTIONS, OUTPUT_NAMES

from sspnet.errors import InputError
from sspnet.models import build_model, describe_model
from sspnet.models.presets import count_macs

SMALL = ["faster_rcnn_r18_sspnet_small", "fovea_r18_sspnet_small"]


def synthetic_batch(batch, size=64, seed=0):
    """Noise images with bright rectangles (persons) and matching targets; image 1 has no objects."""
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(batch, 3, size, size, generator=g) * 60).to(torch.uint8)
    targets = []
    for i in range(batch):
        if i == 1:
            targets.append({"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)})
            continue
        count = 1 + i % 3
        xy = torch.rand(count, 2, generator=g) * (size - 24)
        wh = 4 + torch.rand(count, 2, generator=g) * 16
        boxes = torch.cat([xy, xy + wh], 1).round()
        for x1, y1, x2, y2 in boxes.long().tolist():
            images[i, :, y1:y2, x1:x2] = 230
        targets.append({"boxes": boxes, "labels": torch.zeros(count, dtype=torch.int64)})
    return images, targets


def total_loss(losses):
    return sum(v for k, v in losses.items() if "loss" in k)


@pytest.mark.parametrize("preset", SMALL)
def test_eval_output_contract(preset):
    torch.manual_seed(0)
    model = build_model(preset, score_thr=0.001, nms_min_score=0.001, max_detections=40).eval()
    images, _ = synthetic_batch(2)
    with torch.no_grad():
        out = model(images)
    assert tuple(out) == OUTPUT_NAMES
    assert out["num_dets"].dtype == torch.int32 and out["num_dets"].shape == (2, 1)
    assert out["boxes"].dtype == torch.float32 and out["boxes"].shape == (2, 40, 4)
    assert out["scores"].dtype == torch.float32 and out["scores"].shape == (2, 40)
    assert out["labels"].dtype == torch.int32 and out["labels"].shape == (2, 40)
    for i in range(2):
        n = int(out["num_dets"][i, 0])
        assert 0 < n <= 40
        scores = out["scores"][i, :n]
        assert (scores > 0.001).all() and (scores[:-1] >= scores[1:]).all()
        assert (out["labels"][i, :n] == 0).all()
        boxes = out["boxes"][i, :n]
        assert (boxes >= 0).all() and (boxes <= 64).all()
        assert (out["boxes"][i, n:] == 0).all() and (out["scores"][i, n:] == 0).all()
        assert (out["labels"][i, n:] == -1).all()


def test_default_detection_count_is_the_contract_default():
    model = build_model("fovea_r18_sspnet_small").eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    assert out["boxes"].shape == (1, DEFAULT_MAX_DETECTIONS, 4)
    assert int(out["num_dets"][0, 0]) == 0  # the focal prior (0.01) is below score_thr 0.05


def test_input_errors_are_clear():
    model = build_model("fovea_r18_sspnet_small").eval()
    with pytest.raises(TypeError, match="uint8"):
        model(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="multiples of 32.*H=64 W=70"):
        model(torch.zeros(1, 3, 64, 70, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        model(torch.zeros(1, 1, 64, 64, dtype=torch.uint8))
    images, targets = synthetic_batch(2)
    with pytest.raises(ValueError, match="only used in train mode"):
        model(images, targets)
    model.train()
    with pytest.raises(ValueError, match="needs targets"):
        model(images)
    with pytest.raises(ValueError, match="list of 2 dicts"):
        model(images, targets[:1])
    with pytest.raises(ValueError, match=r"targets\[0\]\['boxes'\] must have shape \[G, 4\]"):
        model(images, [{"boxes": torch.zeros(3, 5), "labels": torch.zeros(3, dtype=torch.int64)}, targets[1]])
    with pytest.raises(ValueError, match=r"targets\[0\]\['labels'\] must lie in \[0, 1\)"):
        model(images, [{"boxes": torch.ones(1, 4), "labels": torch.ones(1, dtype=torch.int64)}, targets[1]])


@pytest.mark.parametrize("preset", SMALL)
def test_gradients_reach_every_trainable_parameter_and_no_frozen_one(preset):
    torch.manual_seed(0)
    model = build_model(preset)
    images, targets = synthetic_batch(2)
    losses = model(images, targets)
    expected = {"loss_reg", "loss_seg", "loss_cls", "loss_bbox"}
    if preset.startswith("faster"):
        expected |= {"loss_rpn_cls", "loss_rpn_bbox"}
        assert "acc" in losses and not losses["acc"].requires_grad
    assert expected <= set(losses)
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    total_loss(losses).backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
            assert param.grad.abs().sum() > 0, name
        else:
            assert param.grad is None, name
            assert name.startswith(("backbone.conv1", "backbone.bn1", "backbone.layer1.")), name


@pytest.mark.parametrize("preset", SMALL)
def test_batch_of_six_with_empty_images_trains(preset):
    torch.manual_seed(0)
    model = build_model(preset)
    images, targets = synthetic_batch(6)
    targets[4] = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    losses = model(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    total_loss(losses).backward()


def test_all_images_without_objects_train_without_crash():
    torch.manual_seed(0)
    for preset in SMALL:
        model = build_model(preset)
        images, _ = synthetic_batch(2)
        empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * 2
        losses = model(images, empty)
        assert all(torch.isfinite(v) for v in losses.values())
        total_loss(losses).backward()


@pytest.mark.parametrize("preset", SMALL)
def test_same_seed_gives_same_outputs(preset):
    images, targets = synthetic_batch(2)

    def run():
        torch.manual_seed(123)
        model = build_model(preset)
        losses = {k: v.item() for k, v in model(images, targets).items()}
        model.eval()
        with torch.no_grad():
            out = model(images)
        return losses, out

    losses_a, out_a = run()
    losses_b, out_b = run()
    assert losses_a == losses_b
    for key in out_a:
        assert torch.equal(out_a[key], out_b[key]), key


def test_plain_fpn_ablation_has_no_attention_losses():
    torch.manual_seed(0)
    model = build_model("faster_rcnn_r18_sspnet_small", neck="fpn", attention_loss="none")
    images, targets = synthetic_batch(2)
    losses = model(images, targets)
    assert "loss_reg" not in losses and "loss_seg" not in losses
    assert {"loss_rpn_cls", "loss_cls"} <= set(losses)


def test_fpn_cam_ablation_has_attention_losses_and_needs_them():
    torch.manual_seed(0)
    model = build_model("fovea_r18_sspnet_small", neck="fpn_cam", neck_channels=16, fovea_feat_channels=16)
    images, targets = synthetic_batch(2)
    losses = model(images, targets)
    assert {"loss_reg", "loss_seg", "loss_cls", "loss_bbox"} <= set(losses)
    with pytest.raises(ValueError, match="fpn_cam"):
        build_model("fovea_r18_sspnet_small", neck="fpn_cam", attention_loss="none")


def test_attention_generation_is_selectable():
    assert build_model("fovea_r18_sspnet_small").attention_supervision.lamda == 1e-4
    v1 = build_model("fovea_r18_sspnet_small", attention_loss="v1")
    assert (v1.attention_supervision.version, v1.attention_supervision.lamda) == ("v1", 0.01)
    assert build_model("faster_rcnn_r18_sspnet_small").attention_supervision.version == "v1"
    assert build_model("fovea_r18_sspnet_small", attention_lambda=0.5).attention_supervision.lamda == 0.5


def test_mac_counter_agrees_with_torch_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model("faster_rcnn_r18_sspnet_small").eval()
    images = torch.zeros(1, 3, 64, 96, dtype=torch.uint8)

    class Dense(torch.nn.Module):  # backbone + neck + a linear layer: only ops FlopCounterMode knows
        def __init__(self):
            super().__init__()
            self.detector = model
            self.fc = torch.nn.Linear(128, 10)

        def forward(self, x):
            features, _ = self.detector.extract_features(x)
            return self.fc(features[0].mean((2, 3)))

    dense = Dense()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        dense(images)
    assert 2 * count_macs(dense, images) == counter.get_total_flops()


def test_describe_model_rows():
    rows = dict(describe_model("fovea_r18_sspnet_small", (64, 64)))
    assert rows["variant"] == "fovea" and rows["input (H x W)"] == "64 x 64"
    model = build_model("fovea_r18_sspnet_small")
    assert rows["parameters"] == f"{sum(p.numel() for p in model.parameters()):,}"
    assert float(rows["GFLOPs (2 x GMACs)"]) == pytest.approx(2 * float(rows["GMACs (conv + linear)"]), abs=0.011)


@pytest.mark.parametrize("preset", SMALL)
def test_eval_forward_exports_with_a_dynamic_batch(preset):
    """No data-dependent shapes or Python branches on tensor values: torch.export traces it."""
    torch.manual_seed(0)
    model = build_model(preset, score_thr=0.001, nms_min_score=0.001, max_detections=30).eval()
    batch = torch.export.Dim("batch", min=1, max=8)
    exported = torch.export.export(
        model, (torch.zeros(2, 3, 64, 64, dtype=torch.uint8),), dynamic_shapes=({0: batch},), strict=False
    )
    images, _ = synthetic_batch(3, seed=4)
    with torch.no_grad():
        traced, eager = exported.module()(images), model(images)
    for key in eager:
        assert torch.equal(traced[key], eager[key]), key


def test_pretrained_backbone_weights_come_from_a_local_file(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(reference.state_dict(), path)
    model = build_model("fovea_r18_sspnet_small", pretrained=str(path))
    assert torch.equal(model.backbone.layer3[0].conv1.weight, reference.layer3[0].conv1.weight)
    with pytest.raises(InputError, match="nowhere.pth"):
        build_model("fovea_r18_sspnet_small", pretrained=str(tmp_path / "nowhere.pth"))
