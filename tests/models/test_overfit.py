"""A small preset learns one synthetic image, and once trained to a stated loss it finds every object.

Float results differ between CPUs (vector width, FMA, the thread count change the order of
reductions), so these tests assert only what training guarantees on any x86-64 CPU: the loss
reaches a stated level within a generous step budget, and a model at that loss detects what such a
loss implies. They never check one trajectory (e.g. "after N steps the top-1 box is X": that
failed on an AMD EPYC). Checked with seeds 0-2, one and two threads, and two kernel
sets that round differently: ATen's AVX2 kernels with oneDNN at full ISA, and ATen's scalar
kernels (ATEN_CPU_CAPABILITY=default) with oneDNN limited to SSE4.1 (ONEDNN_MAX_CPU_ISA=SSE41).
"""

import pytest
import torch
import torchvision

from sspnet.models import build_model

SMALL = ["faster_rcnn_r18_sspnet_small", "fovea_r18_sspnet_small"]

# Three person-like rectangles (x1, y1, x2, y2) of 10 x 20 px, each covering positive FoveaBox points
# (a box whose central "fovea" holds no cell centre is taught as background and can never be found:
# test_every_object_is_a_foveabox_training_target). Smaller boxes would make IoU >= 0.5 a question of
# one-pixel regression accuracy, which a sampled Faster R-CNN loss does not pin down.
OBJECTS = [[8.0, 8.0, 18.0, 28.0], [38.0, 10.0, 48.0, 30.0], [16.0, 40.0, 36.0, 50.0]]

LR = 2e-4
MAX_STEPS = 400  # the stated losses below are reached after ~40-90 steps
SETTLE_STEPS, MAX_SETTLE_STEPS = 20, 200  # then at LR / 10 (train_until_stated_loss)
TOP_K = 15  # each object must be among the 15 best detections
# Faster R-CNN: no closed form (its losses are over sampled anchors and RoIs); bounds well below the
# losses at which the proposals and RoI scores have separated the objects from the background.
FASTER_STATED_LOSS = {"loss_rpn_cls": 0.005, "loss_cls": 0.005}


def fovea_stated_loss(num_positive: int) -> dict[str, float]:
    """FoveaBox losses that imply every object is detected, for an image with `num_positive` points.

    - loss_cls = focal sum / (P + 1). A sum below the loss of one point at p = 0.5 (positive:
      0.4 * 0.5^1.5 * ln 2 = 0.098; negative: 0.6 * 0.5^1.5 * ln 2 = 0.147) means every positive
      point scores > 0.5 and every other point < 0.5: the P positives are the top detections.
    - loss_bbox = smooth-L1 sum / P. Each positive point's terms then sum to <= 0.14, so each of its
      log-distance errors is < 0.14 + beta / 2 = 0.195: every distance from the point to a box edge
      is within a factor e^0.2 of the target's, an IoU of about 0.67 at worst.
    """
    return {"loss_cls": 0.098 / (num_positive + 1), "loss_bbox": 0.14 / num_positive}


def stated_loss(preset, model, targets, image_size):
    if preset.startswith("fovea"):
        return fovea_stated_loss(fovea_positive_points(model.bbox_head, targets, image_size))
    return FASTER_STATED_LOSS


def fovea_positive_points(head, targets, image_size, boxes=None) -> int:
    boxes = targets[0]["boxes"] if boxes is None else boxes
    sizes = [(image_size[0] // s, image_size[1] // s) for s in head.strides]
    labels, _ = head.targets(sizes, [boxes], [torch.zeros(len(boxes), dtype=torch.int64)])
    return int((labels < head.num_classes).sum())


def synthetic_image(size=64):
    """Dark noise with three bright person-like rectangles."""
    g = torch.Generator().manual_seed(0)
    image = (torch.rand(1, 3, size, size, generator=g) * 60).to(torch.uint8)
    boxes = torch.tensor(OBJECTS)
    for x1, y1, x2, y2 in boxes.long().tolist():
        image[0, :, y1:y2, x1:x2] = 230
    return image, [{"boxes": boxes, "labels": torch.zeros(len(boxes), dtype=torch.int64)}]


def adam(model, lr=LR):
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)


def total_loss(losses):
    return sum(v for k, v in losses.items() if "loss" in k)


def train_until_fraction(model, image, targets, fraction, max_steps=200):
    """Adam steps until the total loss is <= fraction x the first one; -> (first, last, steps)."""
    optimizer = adam(model)
    first = None
    for step in range(max_steps):  # noqa: B007 (the count is returned)
        total = total_loss(model(image, targets))
        first = total.item() if first is None else first
        if total.item() <= fraction * first:
            break
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    return first, total.item(), step


def train_until_stated_loss(model, image, targets, bounds):
    """Train to the stated loss, then settle at a tenth of the learning rate; -> (losses, steps).

    Phase 1: Adam at LR until every loss in `bounds` is at or below its bound. Phase 2: Adam at
    LR / 10 for at least SETTLE_STEPS steps, until the bounds hold again. Near a minimum, Adam at
    the full rate keeps jumping: measured on Faster R-CNN, ~15 % of the states in the 40 steps after
    the stated loss missed an object; none did at LR / 10 (the step decay real schedules end with).
    Each phase stops before its optimiser step, so the model is the one whose losses were measured.
    """
    optimizer = adam(model)
    steps = 0
    for lr, min_steps, max_steps in ((LR, 0, MAX_STEPS), (LR / 10, SETTLE_STEPS, MAX_SETTLE_STEPS)):
        for group in optimizer.param_groups:
            group["lr"] = lr
        for step in range(max_steps + 1):
            losses = model(image, targets)
            values = {k: losses[k].item() for k in bounds}
            if step >= min_steps and all(values[k] <= bound for k, bound in bounds.items()):
                break
            if step == max_steps:
                return values, None
            optimizer.zero_grad()
            total_loss(losses).backward()
            optimizer.step()
            steps += 1
    return values, steps


@pytest.mark.parametrize("preset", SMALL)
def test_small_preset_overfits_one_image(preset):
    torch.manual_seed(0)
    image, targets = synthetic_image()
    first, last, steps = train_until_fraction(build_model(preset).train(), image, targets, fraction=0.1)
    assert last <= 0.1 * first, f"loss {first:.3f} -> {last:.3f} after {steps + 1} steps"


def test_every_object_is_a_foveabox_training_target():
    """The premise of fovea_stated_loss: each object owns positive points (so it can be learned)."""
    head = build_model("fovea_r18_sspnet_small").bbox_head
    image, targets = synthetic_image()
    per_object = [fovea_positive_points(head, targets, image.shape[-2:], box[None]) for box in targets[0]["boxes"]]
    assert min(per_object) >= 1, per_object
    assert fovea_positive_points(head, targets, image.shape[-2:]) == sum(per_object) <= TOP_K


def settle_batch_norm(model, image, targets):
    """Make eval mode compute what training measured.

    A BatchNorm that trains (the neck's; the backbone's are frozen by norm_eval) normalises with the
    batch's statistics in training but with its running averages in eval, which lag behind by an
    amount that depends on the trajectory. One forward with momentum 1 sets them to this image's."""
    trained_norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training]
    for norm in trained_norms:
        norm.momentum = 1.0
    with torch.no_grad():
        model(image, targets)


@pytest.mark.slow
@pytest.mark.parametrize("preset", SMALL)
def test_model_trained_to_the_stated_loss_finds_every_object(preset):
    torch.manual_seed(0)
    model = build_model(preset).train()  # train() applies norm_eval, as the trainer does
    image, targets = synthetic_image()
    bounds = stated_loss(preset, model, targets, image.shape[-2:])
    losses, steps = train_until_stated_loss(model, image, targets, bounds)
    assert steps is not None, f"stated loss {bounds} not reached: {losses}"
    settle_batch_norm(model, image, targets)
    model.eval()
    with torch.no_grad():
        out = model(image)
    found = int(out["num_dets"][0, 0])
    top = out["boxes"][0, : min(found, TOP_K)]  # rows are sorted by score
    best_iou = torchvision.ops.box_iou(top, targets[0]["boxes"]).max(dim=0).values if found else torch.zeros(3)
    assert (best_iou >= 0.5).all(), (
        f"after {steps} steps (losses {losses}) the best IoU of each object with the top {TOP_K} "
        f"of {found} detections is {best_iou.tolist()}"
    )
