"""Training augmentation (the original pipeline's resize, photometric and flip steps), torchvision.transforms.v2.

Inputs are a `tv_tensors.Image` (uint8 [3, H, W] RGB) and a target dict whose `boxes` is a
`tv_tensors.BoundingBoxes` (XYXY) and `labels` an int64 tensor; v2 moves the boxes with the image and
`SanitizeBoundingBoxes` drops boxes that left the image together with their labels.

The original uses Albumentations; the mapping, and where it is approximate:

| original (p)                                             | here                                           |
|----------------------------------------------------------|------------------------------------------------|
| Resize keep-ratio, range [(640,512),(960,768)]           | `RandomResizeRange` (same rule)                |
| ShiftScaleRotate shift 0.0625, rotate ±45 (0.5)          | `RandomShiftRotate` (45, 0.0625), bilinear, border 0 (a) |
| RandomBrightnessContrast b [-0.1,0.3], c [0.1,0.3] (0.4) | `RandomBrightnessContrast` (same formula)      |
| OneOf[RGBShift ±10, HueSaturationValue(20,30,20)] (0.1)  | RandomChoice[`RGBShift`(10), ColorJitter] (b)  |
| JpegCompression 85-95 (0.2)                              | `RandomJPEG` (85, 95), OpenCV codec            |
| ChannelShuffle (0.1)                                     | v2.RandomChannelPermutation                    |
| OneOf[Blur 3, MedianBlur 3, MotionBlur 3] (0.1)          | GaussianBlur 3x3, sigma 0.1-1.0 (approximate)  |
| RandomFlip horizontal (0.5)                              | v2.RandomHorizontalFlip                        |

(a) the border is filled with 0; Albumentations reflects it, which mirrors people without labels.
(b) the HSV part is approximate.

Randomness comes from torch's global generator; `apply_seeded` runs a pipeline under a given seed
without disturbing the caller's generator, which makes augmentation reproducible per sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F


class RandomResizeRange(v2.Transform):
    """mmdet's keep-ratio multiscale "range" resize.

    Draws long_t uniformly from the integers in `long_range` and short_t from `short_range`, and scales
    the image by min(long_t / long_side, short_t / short_side); new size = int(size * factor + 0.5).
    """

    def __init__(self, long_range: tuple[int, int] = (640, 960), short_range: tuple[int, int] = (512, 768)):
        super().__init__()
        for name, (low, high) in (("long_range", long_range), ("short_range", short_range)):
            if not 0 < low <= high:
                raise ValueError(f"{name}: expected 0 < low <= high, got {(low, high)}")
        self.long_range, self.short_range = tuple(long_range), tuple(short_range)

    def make_params(self, flat_inputs):
        height, width = v2.query_size(flat_inputs)
        long_t = int(torch.randint(self.long_range[0], self.long_range[1] + 1, ()))
        short_t = int(torch.randint(self.short_range[0], self.short_range[1] + 1, ()))
        factor = min(long_t / max(height, width), short_t / min(height, width))
        return {"size": [int(height * factor + 0.5), int(width * factor + 0.5)]}

    def transform(self, inpt, params):
        return self._call_kernel(F.resize, inpt, size=params["size"], antialias=True)


class RandomShiftRotate(v2.Transform):
    """Albumentations' ShiftScaleRotate without scaling: rotate by a uniform angle in
    [-degrees, degrees] about the image centre, then shift by uniform fractions in [-shift, shift] of
    the width / height; bilinear, border filled with 0. Boxes become the enclosing box of their four
    transformed corners (as Albumentations' default). OpenCV warps the image (torchvision's affine is
    about 50x slower on CPU for a 640x512 image).
    """

    def __init__(self, degrees: float = 45.0, shift: float = 0.0625):
        super().__init__()
        self.degrees, self.shift = float(degrees), float(shift)

    def make_params(self, flat_inputs):
        height, width = v2.query_size(flat_inputs)
        angle = float(torch.empty(()).uniform_(-self.degrees, self.degrees))
        dx = float(torch.empty(()).uniform_(-self.shift, self.shift)) * width
        dy = float(torch.empty(()).uniform_(-self.shift, self.shift)) * height
        import cv2

        # pixel-index coordinates: the centre of a W-wide image is (W - 1) / 2
        matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, 1.0)
        matrix[:, 2] += (dx, dy)
        return {"matrix": matrix, "size": (height, width)}

    def transform(self, inpt, params):
        matrix = params["matrix"]
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            return self._transform_boxes(inpt, matrix)
        if isinstance(inpt, tv_tensors.Image):
            import cv2
            import numpy as np

            height, width = params["size"]
            hwc = inpt.as_subclass(torch.Tensor).permute(1, 2, 0).contiguous().cpu().numpy()
            warped = cv2.warpAffine(
                hwc, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
            )
            warped = warped.reshape(height, width, -1)
            return tv_tensors.wrap(torch.from_numpy(np.ascontiguousarray(warped)).permute(2, 0, 1), like=inpt)
        return inpt

    @staticmethod
    def _transform_boxes(boxes: tv_tensors.BoundingBoxes, matrix) -> tv_tensors.BoundingBoxes:
        xyxy = F.convert_bounding_box_format(boxes, new_format=tv_tensors.BoundingBoxFormat.XYXY)
        data = xyxy.as_subclass(torch.Tensor).double()
        x1, y1, x2, y2 = data.unbind(-1)
        corners = torch.stack(
            [
                torch.stack([x1, y1], -1),
                torch.stack([x2, y1], -1),
                torch.stack([x1, y2], -1),
                torch.stack([x2, y2], -1),
            ],
            dim=-2,
        )  # [G, 4, 2]
        m = torch.as_tensor(matrix, dtype=torch.float64)
        # continuous coordinates are pixel index + 0.5; the matrix acts on pixel indices
        moved = (corners - 0.5) @ m[:, :2].T + m[:, 2] + 0.5
        out = torch.cat([moved.min(dim=-2).values, moved.max(dim=-2).values], dim=-1).to(boxes.dtype)
        out = tv_tensors.wrap(out, like=xyxy)
        return F.convert_bounding_box_format(out, new_format=boxes.format)


class _ImageOnly(v2.Transform):
    """Base for photometric transforms: they change tv_tensors.Image and pass everything else through."""

    def transform(self, inpt, params):
        if not isinstance(inpt, tv_tensors.Image):
            return inpt
        out = self.apply_to_image(inpt.as_subclass(torch.Tensor).float(), params)
        return tv_tensors.wrap(out.round().clamp(0, 255).to(inpt.dtype), like=inpt)

    def apply_to_image(self, image: torch.Tensor, params) -> torch.Tensor:
        raise NotImplementedError


class RandomBrightnessContrast(_ImageOnly):
    """Albumentations' formula on 0-255 values: out = image * (1 + c) + b * 255, c and b uniform."""

    def __init__(self, brightness: tuple[float, float] = (-0.1, 0.3), contrast: tuple[float, float] = (0.1, 0.3)):
        super().__init__()
        self.brightness, self.contrast = tuple(brightness), tuple(contrast)

    def make_params(self, flat_inputs):
        b = float(torch.empty(()).uniform_(*self.brightness))
        c = float(torch.empty(()).uniform_(*self.contrast))
        return {"alpha": 1.0 + c, "beta": b * 255.0}

    def apply_to_image(self, image, params):
        return image * params["alpha"] + params["beta"]


class RGBShift(_ImageOnly):
    """Add an independent uniform offset in [-limit, limit] to each channel."""

    def __init__(self, limit: float = 10.0):
        super().__init__()
        self.limit = float(limit)

    def make_params(self, flat_inputs):
        return {"shift": torch.empty(3).uniform_(-self.limit, self.limit)}

    def apply_to_image(self, image, params):
        return image + params["shift"].view(-1, 1, 1)


class RandomJPEG(v2.Transform):
    """JPEG-compress the image at a uniform integer quality in [low, high] (OpenCV codec; torchvision's
    own JPEG codec is deprecated)."""

    def __init__(self, quality: tuple[int, int] = (85, 95)):
        super().__init__()
        low, high = quality
        if not 1 <= low <= high <= 100:
            raise ValueError(f"quality: expected 1 <= low <= high <= 100, got {quality}")
        self.quality = (int(low), int(high))

    def make_params(self, flat_inputs):
        return {"quality": int(torch.randint(self.quality[0], self.quality[1] + 1, ()))}

    def transform(self, inpt, params):
        if not isinstance(inpt, tv_tensors.Image):
            return inpt
        import cv2
        import numpy as np

        rgb = inpt.as_subclass(torch.Tensor).permute(1, 2, 0).contiguous().cpu().numpy()
        ok, encoded = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, params["quality"]])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
        out = torch.from_numpy(np.ascontiguousarray(decoded)).permute(2, 0, 1).to(inpt.device)
        return tv_tensors.wrap(out, like=inpt)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings; probabilities of 0 switch a step off. See PRESETS."""

    scale_long: tuple[int, int] | None = (640, 960)  # None: no resize
    scale_short: tuple[int, int] = (512, 768)
    affine_p: float = 0.5
    rotate_degrees: float = 45.0
    translate: float = 0.0625
    brightness_contrast_p: float = 0.4
    colour_p: float = 0.1
    jpeg_p: float = 0.2
    jpeg_quality: tuple[int, int] = (85, 95)
    channel_shuffle_p: float = 0.1
    blur_p: float = 0.1
    hflip_p: float = 0.5


PRESETS = {
    # the original recipe
    "paper": AugmentConfig(),
    # fast CPU training: flip and a mild (about 0.9-1.1x on a 640x512 piece) multiscale resize
    "light": AugmentConfig(
        scale_long=(576, 704),
        scale_short=(460, 563),
        affine_p=0.0,
        brightness_contrast_p=0.0,
        colour_p=0.0,
        jpeg_p=0.0,
        channel_shuffle_p=0.0,
        blur_p=0.0,
    ),
    # nothing random
    "none": AugmentConfig(
        scale_long=None,
        affine_p=0.0,
        brightness_contrast_p=0.0,
        colour_p=0.0,
        jpeg_p=0.0,
        channel_shuffle_p=0.0,
        blur_p=0.0,
        hflip_p=0.0,
    ),
}


def resolve_config(cfg) -> AugmentConfig:
    """A preset name, an AugmentConfig, or a dict {"preset": name, **field overrides}."""
    if cfg is None:
        return PRESETS["paper"]
    if isinstance(cfg, AugmentConfig):
        return cfg
    if isinstance(cfg, str):
        if cfg not in PRESETS:
            raise ValueError(f"augmentation preset {cfg!r} unknown; choose from {sorted(PRESETS)}")
        return PRESETS[cfg]
    if isinstance(cfg, dict):
        overrides = dict(cfg)
        base = resolve_config(overrides.pop("preset", "paper"))
        known = {f.name for f in fields(AugmentConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"augmentation config: unknown keys {unknown}; known: {sorted(known)}")
        tuples = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        return replace(base, **tuples)
    raise TypeError(f"augmentation config: expected a preset name, dict or AugmentConfig, got {type(cfg).__name__}")


def _maybe(transform, p: float):
    return [] if p <= 0 else [transform if p >= 1 else v2.RandomApply([transform], p=p)]


def build_train_transforms(cfg="paper") -> v2.Compose:
    """The training pipeline for `cfg` (preset name, dict or AugmentConfig); see the module table."""
    c = resolve_config(cfg)
    steps = []
    if c.scale_long is not None:
        steps.append(RandomResizeRange(c.scale_long, c.scale_short))
    steps += _maybe(RandomShiftRotate(c.rotate_degrees, c.translate), c.affine_p)
    steps += _maybe(RandomBrightnessContrast(), c.brightness_contrast_p)
    steps += _maybe(
        v2.RandomChoice([RGBShift(10.0), v2.ColorJitter(brightness=0.08, saturation=0.12, hue=0.11)]), c.colour_p
    )
    steps += _maybe(RandomJPEG(c.jpeg_quality), c.jpeg_p)
    steps += _maybe(v2.RandomChannelPermutation(), c.channel_shuffle_p)
    steps += _maybe(v2.GaussianBlur(kernel_size=3, sigma=(0.1, 1.0)), c.blur_p)
    steps += _maybe(v2.RandomHorizontalFlip(p=1.0), c.hflip_p)
    # boxes partly outside are clipped; boxes left with a side < 1 px (e.g. fully outside) are dropped
    steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=1.0, min_area=1.0)]
    return v2.Compose(steps)


def build_eval_transforms() -> v2.Transform:
    """Evaluation: no augmentation (resizing and tiling are the evaluator's job)."""
    return v2.Identity()


def apply_seeded(transform, image, target: dict, seed: int | None):
    """Run `transform(image, target)`; with a seed, under torch.manual_seed(seed) and without
    changing the caller's global generator state."""
    if seed is None:
        return transform(image, target)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transform(image, target)


def describe(cfg) -> dict:
    """The resolved settings as a plain dict (for logs and checkpoints)."""
    return asdict(resolve_config(cfg))
