"""What the trainer builds from a TrainConfig: datasets, the model, and the val evaluation.

Thin glue over `sspnet.data`, `sspnet.models` and `sspnet.evaluation`, kept in one place so that
the training loop reads without their details.
"""

from __future__ import annotations

import dataclasses

from sspnet.engine.config import SplitConfig, TrainConfig
from sspnet.errors import InputError, SSPNetError

# `sspnet train --augment` names -> sspnet.data.transforms presets
AUGMENT_PRESETS = {"full": "paper", "light": "light", "none": "none"}


def build_train_dataset(config: TrainConfig):
    """The training TinyPersonDataset: seeded augmentation (per seed, epoch and image), images
    without any non-ignore box skipped (as the original pipeline does)."""
    from sspnet.data.dataset import TinyPersonDataset
    from sspnet.data.transforms import build_train_transforms

    split = config.data.train
    annotations = load_split(split)
    dataset = TinyPersonDataset(
        annotations,
        transforms=build_train_transforms(AUGMENT_PRESETS[config.augment]),
        erase_ignore=config.erase_ignore,
        skip_empty=True,
        seed=config.seed,
    )
    if len(dataset) == 0:
        raise InputError(
            f"--data: the training split {split.annotations} has no image with a (non-ignore) box "
            f"({annotations.report})"
        )
    return dataset


def load_val_annotations(config: TrainConfig):
    """The val split's AnnotationSet (images checked), or None without a val split."""
    if config.data.val is None:
        return None
    return load_split(config.data.val)


def load_split(split: SplitConfig):
    """A split's AnnotationSet, image files checked. The loader's ValueError / FileNotFoundError for
    an unusable annotation file (malformed JSON, no images) is the user's input problem: InputError."""
    from sspnet.data.tinyperson import load_annotations

    try:
        return load_annotations(split.annotations, image_root=split.images)
    except SSPNetError:
        raise
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(f"--data: {exc}") from None


def build_model_for(config: TrainConfig):
    from sspnet.models import build_model

    return build_model(config.preset, **config.model_overrides)


def evaluate_model(model, annotations, rank: int = 0, world_size: int = 1, gather=None) -> dict | None:
    """TinyPerson AP/MR (percent) of `model` on a val AnnotationSet, whole images at native size.

    With several processes each runs its share of the images; `gather(obj) -> list per rank`
    collects the detections and rank 0 computes the metrics (other ranks return None).
    """
    from sspnet.evaluation import evaluate
    from sspnet.evaluation.inference import detect_dataset

    shard = dataclasses.replace(annotations, records=annotations.records[rank::world_size])
    detections = detect_dataset(model, shard, batch_size=4, progress=False)
    if gather is not None:
        merged = {}
        for part in gather(detections):
            merged.update(part)
        detections = merged
    if rank != 0:
        return None
    return evaluate(annotations, detections)
