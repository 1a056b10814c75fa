"""Torch dataset over loaded TinyPerson / COCO records, and the batch collate function.

A sample is `(image, target)`:
    image   uint8 [3, H, W] RGB tensor (the record's corner crop, augmented)
    target  {"boxes": float32 [G, 4] x1, y1, x2, y2, "labels": int64 [G],
             "ignore_boxes": float32 [I, 4] (ignore / uncertain / crowd regions), "image_id": int}

`collate` pads a list of samples bottom/right with zeros to a common size that is a multiple of 32:
    images uint8 [N, 3, H, W], targets list of N dicts (each gains "image_size" = int64 [2] (h, w)
    of its unpadded image).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors

from .images import read_image
from .tinyperson import AnnotationSet, load_annotations
from .transforms import apply_seeded, build_eval_transforms

PAD_MULTIPLE = 32
_IGNORE_LABEL = -1  # marks ignore boxes while they travel through the transforms with the real ones


def erase_regions(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Fill boxes (float [K, 4] xyxy, rounded outwards) with the image's mean colour (TinyBenchmark's
    "erase" data set). Returns a new array."""
    out = image.copy()
    mean = image.reshape(-1, image.shape[-1]).mean(axis=0).round().astype(image.dtype)
    height, width = image.shape[:2]
    for x1, y1, x2, y2 in boxes:
        x1, y1 = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
        x2, y2 = min(int(np.ceil(x2)), width), min(int(np.ceil(y2)), height)
        out[y1:y2, x1:x2] = mean
    return out


class TinyPersonDataset(torch.utils.data.Dataset):
    """Training / evaluation samples from an AnnotationSet (or a JSON path plus image root).

    Args:
        annotations: an AnnotationSet from `load_annotations`, or a path to the JSON file.
        image_root: folder of the images (needed when `annotations` is a path).
        transforms: a v2 pipeline called as transform(image, target); None = no augmentation.
        erase_ignore: paint ignore/uncertain regions with the image mean colour (default off, as in
            the original training).
        skip_empty: drop images without any (non-ignore) box, as the original data set does.
        seed: when set, sample k of epoch e is augmented under seed hash(seed, e, k): reproducible
            regardless of worker count. When None, torch's global generator is used.
    """

    def __init__(
        self,
        annotations,
        image_root=None,
        transforms=None,
        erase_ignore: bool = False,
        skip_empty: bool = False,
        seed: int | None = None,
    ):
        if not isinstance(annotations, AnnotationSet):
            if image_root is None:
                raise ValueError("image_root: required when annotations is a path")
            annotations = load_annotations(annotations, image_root=image_root)
        self.annotations = annotations
        self.classes = annotations.classes
        records = annotations.records
        if skip_empty:
            records = [r for r in records if (~r.ignore_mask).any()]
        self.records = records
        self.transforms = transforms if transforms is not None else build_eval_transforms()
        self.erase_ignore = erase_ignore
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw of a seeded dataset (call once per epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def sample_seed(self, index: int) -> int | None:
        if self.seed is None:
            return None
        return int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0])

    def __getitem__(self, index: int):
        record = self.records[index]
        image = read_image(record)
        ignore = record.ignore_mask
        if self.erase_ignore and ignore.any():
            image = erase_regions(image, record.boxes[ignore])
        # ignore boxes ride along with label -1 so that geometric transforms move them too
        labels = np.where(ignore, _IGNORE_LABEL, record.labels)
        height, width = image.shape[:2]
        image_tv = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1).contiguous())
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.from_numpy(record.boxes.copy()), format="XYXY", canvas_size=(height, width)
            ),
            "labels": torch.from_numpy(labels.astype(np.int64)),
        }
        image_tv, target = apply_seeded(self.transforms, image_tv, target, self.sample_seed(index))
        boxes = target["boxes"].as_subclass(torch.Tensor).float()
        labels = target["labels"]
        is_ignore = labels == _IGNORE_LABEL
        return image_tv.as_subclass(torch.Tensor), {
            "boxes": boxes[~is_ignore].reshape(-1, 4),
            "labels": labels[~is_ignore],
            "ignore_boxes": boxes[is_ignore].reshape(-1, 4),
            "image_id": record.image_id,
        }


def collate(batch):
    """[(image uint8 [3, h, w], target)] -> (uint8 [N, 3, H, W] zero-padded bottom/right to a multiple
    of 32, list of targets with "image_size" = int64 [2] (h, w))."""
    if not batch:
        raise ValueError("collate: empty batch")
    heights = [image.shape[1] for image, _ in batch]
    widths = [image.shape[2] for image, _ in batch]
    pad_h = -(-max(heights) // PAD_MULTIPLE) * PAD_MULTIPLE
    pad_w = -(-max(widths) // PAD_MULTIPLE) * PAD_MULTIPLE
    images = torch.zeros((len(batch), 3, pad_h, pad_w), dtype=torch.uint8)
    targets = []
    for k, (image, target) in enumerate(batch):
        images[k, :, : image.shape[1], : image.shape[2]] = image
        targets.append({**target, "image_size": torch.tensor([image.shape[1], image.shape[2]], dtype=torch.int64)})
    return images, targets


def make_dataset(data_dir, split: str, augment="none", seed: int | None = None, **kwargs) -> TinyPersonDataset:
    """Dataset for DIR/annotations/<split>.json with images in DIR/images (the `sspnet synth` layout)."""
    from .tinyperson import dataset_paths
    from .transforms import build_train_transforms

    json_path, image_root = dataset_paths(Path(data_dir), split)
    annotations = load_annotations(json_path, image_root=image_root)
    return TinyPersonDataset(annotations, transforms=build_train_transforms(augment), seed=seed, **kwargs)
