"""Torch dataset, collate and augmentation."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from sspnet.data.dataset import TinyPersonDataset, collate
from sspnet.data.tinyperson import load_annotations
from sspnet.data.transforms import (
    AugmentConfig,
    RandomResizeRange,
    apply_seeded,
    build_train_transforms,
    resolve_config,
)


@pytest.fixture
def pattern_set(tmp_path):
    """A 200x150 image with a known pattern; one whole-image record and one corner record."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(150, 200, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "p.png")
    data = {
        "images": [
            {"id": 1, "file_name": "p.png", "width": 200, "height": 150},
            {"id": 2, "file_name": "p.png", "width": 80, "height": 60, "corner": [100, 50, 180, 110]},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "bbox": [10, 20, 8, 16], "category_id": 1, "ignore": False, "uncertain": False},
            {"id": 2, "image_id": 1, "bbox": [50, 60, 30, 20], "category_id": 1, "ignore": True, "uncertain": False},
            {"id": 3, "image_id": 1, "bbox": [120, 30, 6, 12], "category_id": 2, "ignore": False, "uncertain": True},
            {"id": 4, "image_id": 2, "bbox": [5, 6, 10, 20], "category_id": 2, "ignore": False, "uncertain": False},
        ],
        "categories": [{"id": 1, "name": "sea_person"}, {"id": 2, "name": "earth_person"}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(data))
    return load_annotations(tmp_path / "gt.json", image_root=tmp_path), pixels


def test_sample_format_and_corner_crop(pattern_set):
    annotations, pixels = pattern_set
    dataset = TinyPersonDataset(annotations)
    image, target = dataset[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 150, 200)
    np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), pixels)
    assert target["boxes"].dtype == torch.float32 and target["labels"].dtype == torch.int64
    assert target["boxes"].tolist() == [[10, 20, 18, 36]]
    assert target["ignore_boxes"].tolist() == [[50, 60, 80, 80], [120, 30, 126, 42]]
    assert target["labels"].tolist() == [0] and target["image_id"] == 1
    image, target = dataset[1]
    np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), pixels[50:110, 100:180])
    assert target["boxes"].tolist() == [[5, 6, 15, 26]] and target["ignore_boxes"].shape == (0, 4)


def test_erase_ignore_paints_mean_colour(pattern_set):
    annotations, pixels = pattern_set
    image, _ = TinyPersonDataset(annotations, erase_ignore=True)[0]
    image = image.permute(1, 2, 0).numpy()
    mean = pixels.reshape(-1, 3).mean(axis=0).round()
    assert (image[60:80, 50:80] == mean).all() and (image[30:42, 120:126] == mean).all()
    np.testing.assert_array_equal(image[20:36, 10:18], pixels[20:36, 10:18])  # regular box untouched


def test_skip_empty(pattern_set):
    annotations, _ = pattern_set
    annotations.records[0].ignore[:] = True  # record 1 now only has ignore boxes
    assert len(TinyPersonDataset(annotations, skip_empty=True)) == 1


def test_corrupt_image_names_the_file(tmp_path, pattern_set):
    annotations, _ = pattern_set
    (tmp_path / "p.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="p.png"):
        TinyPersonDataset(annotations)[0]


def test_collate_pads_to_multiple_of_32():
    a = torch.full((3, 50, 70), 7, dtype=torch.uint8)
    b = torch.full((3, 64, 33), 9, dtype=torch.uint8)
    target = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64)}
    images, targets = collate([(a, dict(target)), (b, dict(target))])
    assert images.shape == (2, 3, 64, 96) and images.dtype == torch.uint8
    assert (images[0, :, :50, :70] == 7).all() and images[0, :, 50:].sum() == 0 and images[0, :, :, 70:].sum() == 0
    assert (images[1, :, :64, :33] == 9).all() and images[1, :, :, 33:].sum() == 0
    assert targets[0]["image_size"].tolist() == [50, 70] and targets[1]["image_size"].tolist() == [64, 33]


def sample(height=512, width=640, boxes=((100, 100, 110, 120), (630, 500, 639, 511))):
    image = tv_tensors.Image(torch.randint(0, 256, (3, height, width), dtype=torch.uint8))
    target = {
        "boxes": tv_tensors.BoundingBoxes(
            torch.tensor(boxes, dtype=torch.float32), format="XYXY", canvas_size=(height, width)
        ),
        "labels": torch.arange(len(boxes)),
    }
    return image, target


def test_resize_range_follows_the_mmdet_rule():
    transform = RandomResizeRange((640, 960), (512, 768))
    for seed in range(30):
        image, target = apply_seeded(transform, *sample(), seed)
        height, width = image.shape[1:]
        factor = width / 640
        assert 1.0 - 1e-9 <= factor <= 1.5 + 1e-9
        assert abs(height - 512 * factor) <= 1  # keep-ratio
        np.testing.assert_allclose(
            target["boxes"][0].numpy(), np.array([100, 100, 110, 120]) * ([width / 640, height / 512] * 2), rtol=1e-5
        )
    # a fixed target: factor min(1280 / 640, 1536 / 512) = 2
    image, target = RandomResizeRange((1280, 1280), (1536, 1536))(*sample())
    assert image.shape[1:] == (1024, 1280)
    assert target["boxes"][0].tolist() == [200, 200, 220, 240]


def test_horizontal_flip_moves_boxes():
    config = AugmentConfig(
        scale_long=None,
        affine_p=0,
        brightness_contrast_p=0,
        colour_p=0,
        jpeg_p=0,
        channel_shuffle_p=0,
        blur_p=0,
        hflip_p=1.0,
    )
    image, target = sample()
    flipped, out = build_train_transforms(config)(image, target)
    assert torch.equal(flipped, image.flip(-1))
    assert out["boxes"][0].tolist() == [640 - 110, 100, 640 - 100, 120]


@pytest.mark.parametrize("preset", ["paper", "light", "none"])
def test_presets_keep_boxes_valid_and_aligned(preset):
    transform = build_train_transforms(preset)
    for seed in range(12):
        image, target = apply_seeded(transform, *sample(), seed)
        boxes, labels = target["boxes"], target["labels"]
        assert image.dtype == torch.uint8 and len(boxes) == len(labels)
        height, width = image.shape[1:]
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
        assert ((boxes[:, 2] - boxes[:, 0]) >= 1).all() and ((boxes[:, 3] - boxes[:, 1]) >= 1).all()


def test_boxes_that_leave_the_image_are_dropped():
    # translate far to the right: the box at the right edge leaves, its label goes with it
    from torchvision.transforms import v2

    transform = v2.Compose(
        [
            v2.RandomAffine(degrees=0, translate=(0.5, 0)),
            v2.ClampBoundingBoxes(),
            v2.SanitizeBoundingBoxes(min_size=1.0),
        ]
    )
    dropped = 0
    for seed in range(20):
        _, target = apply_seeded(transform, *sample(64, 80, boxes=((10, 10, 20, 20), (70, 50, 79, 63))), seed)
        assert len(target["boxes"]) == len(target["labels"])
        dropped += 2 - len(target["labels"])
    assert dropped > 0


def test_seeded_augmentation_is_deterministic_and_isolated(pattern_set):
    annotations, _ = pattern_set
    dataset = TinyPersonDataset(annotations, transforms=build_train_transforms("paper"), seed=3)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = [dataset[0] for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is untouched
    assert torch.equal(first[0][0], first[1][0]) and torch.equal(first[0][1]["boxes"], first[1][1]["boxes"])
    draws = set()
    for epoch in range(6):
        dataset.set_epoch(epoch)
        draws.add(tuple(dataset[0][0].shape))
    assert len(draws) > 1  # the multiscale resize differs between epochs


def test_config_errors_and_overrides():
    assert resolve_config({"preset": "light", "hflip_p": 0.0}).hflip_p == 0.0
    assert resolve_config({"scale_long": [700, 800]}).scale_long == (700, 800)
    with pytest.raises(ValueError, match="unknown"):
        resolve_config("heavy")
    with pytest.raises(ValueError, match="unknown keys"):
        resolve_config({"flip": 0.5})
    with pytest.raises(TypeError):
        resolve_config(3)


def test_photometric_transforms_follow_their_formulas():
    from sspnet.data.transforms import RandomBrightnessContrast, RandomJPEG, RGBShift

    image, target = sample()
    out, out_target = RandomBrightnessContrast(brightness=(0.1, 0.1), contrast=(0.2, 0.2))(image, target)
    expected = (image.float() * 1.2 + 25.5).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(out, expected) and torch.equal(out_target["boxes"], target["boxes"])

    flat = tv_tensors.Image(torch.full((3, 8, 8), 100, dtype=torch.uint8))
    shifted, _ = apply_seeded(RGBShift(10.0), flat, dict(target), seed=5)
    offsets = shifted.reshape(3, -1).float() - 100
    assert (offsets == offsets[:, :1]).all() and (offsets.abs() <= 10).all() and offsets.abs().sum() > 0

    smooth = tv_tensors.Image(torch.linspace(0, 255, 64 * 64).reshape(1, 64, 64).repeat(3, 1, 1).to(torch.uint8))
    compressed, _ = RandomJPEG((90, 90))(smooth, dict(target))
    assert compressed.shape == smooth.shape and compressed.dtype == torch.uint8
    assert (compressed.float() - smooth.float()).abs().mean() < 3


def test_shift_rotate_boxes_enclose_the_moved_pixels():
    from sspnet.data.transforms import RandomShiftRotate

    rectangles = ((200, 160, 260, 190), (300, 200, 310, 260), (380, 300, 388, 330))
    image = torch.zeros((3, 512, 640), dtype=torch.uint8)
    for k, (x1, y1, x2, y2) in enumerate(rectangles):
        image[k, y1:y2, x1:x2] = 255  # one colour channel per rectangle
    target = {
        "boxes": tv_tensors.BoundingBoxes(
            torch.tensor(rectangles, dtype=torch.float32), format="XYXY", canvas_size=(512, 640)
        ),
        "labels": torch.arange(3),
    }
    for seed in range(8):
        out, out_target = apply_seeded(RandomShiftRotate(45, 0.0625), tv_tensors.Image(image), target, seed)
        for k, box in enumerate(out_target["boxes"].tolist()):
            ys, xs = torch.nonzero(out[k] > 127, as_tuple=True)
            pixels = [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
            np.testing.assert_allclose(box, pixels, atol=1.5)
    # no rotation, integer shift: exact
    shifted, shifted_target = apply_seeded(RandomShiftRotate(0, 0.0), tv_tensors.Image(image), target, 0)
    assert torch.equal(shifted, image) and torch.equal(shifted_target["boxes"], target["boxes"])
