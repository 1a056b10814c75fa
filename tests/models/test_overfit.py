"""A small preset learns one synthetic image: the total loss falls by >= 90 % within 200 CPU steps;
trained further, the model finds the objects in eval mode (training and inference agree)."""

import pytest
import torch
import torchvision

from sspnet.models import build_model

SMALL = ["faster_rcnn_r18_sspnet_small", "fovea_r18_sspnet_small"]


def synthetic_image(size=64):
    """Dark noise with three bright person-like rectangles."""
    g = torch.Generator().manual_seed(0)
    image = (torch.rand(1, 3, size, size, generator=g) * 60).to(torch.uint8)
    boxes = torch.tensor([[10.0, 15.0, 16.0, 27.0], [35.0, 20.0, 40.0, 28.0], [20.0, 45.0, 32.0, 50.0]])
    for x1, y1, x2, y2 in boxes.long().tolist():
        image[0, :, y1:y2, x1:x2] = 230
    return image, [{"boxes": boxes, "labels": torch.zeros(3, dtype=torch.int64)}]


def train_until(model, image, targets, fraction, max_steps=200):
    """Adam steps until the total loss is <= fraction x the first one; -> (first, last, steps)."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    first = None
    for step in range(max_steps):
        losses = model(image, targets)
        total = sum(v for k, v in losses.items() if "loss" in k)
        first = total.item() if first is None else first
        if total.item() <= fraction * first:
            break
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    return first, total.item(), step


@pytest.mark.parametrize("preset", SMALL)
def test_small_preset_overfits_one_image(preset):
    torch.manual_seed(0)
    image, targets = synthetic_image()
    first, last, steps = train_until(build_model(preset), image, targets, fraction=0.1)
    assert last <= 0.1 * first, f"loss {first:.3f} -> {last:.3f} after {steps + 1} steps"


@pytest.mark.slow
@pytest.mark.parametrize("preset", SMALL)
def test_overfitted_model_finds_the_objects(preset):
    torch.manual_seed(0)
    model = build_model(preset)
    image, targets = synthetic_image()
    train_until(model, image, targets, fraction=0.03)
    model.eval()
    with torch.no_grad():
        out = model(image)
    assert int(out["num_dets"][0, 0]) >= 1
    best = out["boxes"][0, :1]  # rows are sorted by score
    assert torchvision.ops.box_iou(best, targets[0]["boxes"]).max() >= 0.5
