"""Named training recipes: a preset plus everything else a reproducible run fixes.

A preset describes the model as published; a recipe adds the model overrides and optimisation
settings of one training situation. `sspnet train --recipe NAME`, `sspnet demo` and
benchmarks/train_synthetic.py all read the recipe from here, so they train the same thing.

synthetic-cpu: FoveaBox + SSPNet (ResNet-18) from scratch on a 2-core CPU, on the synthetic
tiny-person set of 256 x 256 images. No ImageNet weights can be downloaded, so
  - every backbone stage trains and its BatchNorms normalise in train mode (running statistics
    start at 0 / 1, a frozen pretrained-style backbone would not learn);
  - a 64-channel neck and head (2 convs): the 256-channel published head costs several times the time;
  - batch 2, lr 0.02, gradient L2 norm clipped at 5 (batch 2 learned more per image and per second
    than batch 4; lr 0.01 and 0.03 did worse in the pilot runs);
  - FoveaBox sigma 1.0 instead of 0.4 and the box-centre cell always positive: with the published
    0.4 a person under ~8 px covers no cell centre of the stride-8 level and is never learned;
  - no augmentation: the published pipeline rescales to 640-960 px, far above these images, and
    the model does not overfit within a 10-minute budget (train and val AP agree);
  - 200 detections per image, as the TinyPerson protocol scores;
  - 1600 iterations (`iterations`), the fixed length `sspnet demo` trains: a length at which every
    measured run on the synthetic set (two training seeds, and the demo) passed the AP50-tiny 60 %
    target (the runs and their times: benchmarks/results/ablation_ssfpn*.json, demo_summary.json; docs
    page results/demo_summary.md).

synthetic-cpu-faster-rcnn: the same situation for Faster R-CNN + SSPNet (ResNet-18), the variant
with a RoIAlign (benchmarks/trt_fp16_rois.py measures a trained one). Same choices: whole backbone
trained with train-mode BatchNorm, 64-channel neck, batch 2, lr 0.02, clip 5, no augmentation, 200
detections per image. Anchors, RPN and RoI head stay as the small preset has them: anchor scales
1.5-8 of stride 4 give 6-32 px anchors at P2 (12-64 px at P3) for the 2-77 px people of the
synthetic set; a person's best anchor is positive from IoU 0.3 (rpn_min_pos_iou), which people
under about 4 px never reach (hence the lower AP of tiny1, 2-8 px). 2000 iterations (`iterations`)
train it well past the 60 % AP50-tiny target on the synthetic set (the run, its time and its score:
benchmarks/results/trt_fp16_rois_trained.json, "training").
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    """A complete training configuration apart from the data, the length and the output folder."""

    name: str
    description: str
    preset: str
    overrides: dict = field(default_factory=dict)  # model settings on top of the preset
    batch_size: int = 1
    lr: float = 0.002
    clip_grad: float | None = None
    augment: str = "full"
    image_size: tuple[int, int] = (256, 256)  # (W, H) of the images it was tuned on
    iterations: int | None = None  # the measured length that reaches the recipe's target (None: no fixed length)

    def train_config(
        self,
        data,
        out,
        *,
        max_iters: int,
        seed: int = 0,
        device: str = "cpu",
        eval_every: int = 10**6,
        log_every: int = 20,
        **extra,
    ):
        """A validated TrainConfig of this recipe on `data` (a synth folder or dataset YAML).

        eval_every defaults to "once, at the end of the run"; `extra` sets further TrainConfig fields.
        """
        from sspnet.engine.config import TrainConfig, resolve_data, validate

        config = TrainConfig(
            preset=self.preset,
            data=resolve_data(data),
            out=str(out),
            model_overrides=dict(self.overrides),
            max_iters=max_iters,
            batch_size=self.batch_size,
            lr=self.lr,
            clip_grad=self.clip_grad,
            augment=self.augment,
            workers=0,
            device=device,
            seed=seed,
            eval_every=eval_every,
            log_every=log_every,
            **extra,
        )
        validate(config)
        return config

    def training_step(self, size: tuple[int, int] | None = None):
        """A function running one training step of this recipe (forward, backward, SGD update) on
        fixed random images of `size` (W, H; default image_size) with 30 people each, on the CPU
        with the current torch thread count. The model and data are built once, here."""
        import torch

        from sspnet.models import build_model

        torch.manual_seed(0)
        model = build_model(self.preset, **self.overrides).train()
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)
        width, height = size or self.image_size
        images = torch.randint(
            0, 256, (self.batch_size, 3, -(-height // 32) * 32, -(-width // 32) * 32), dtype=torch.uint8
        )
        corners = torch.rand(30, 2) * max(1, min(width, height) - 30)
        boxes = torch.cat([corners, corners + 3 + 25 * torch.rand(30, 2)], dim=1)  # 3-28 px people
        targets = [{"boxes": boxes, "labels": torch.zeros(30, dtype=torch.int64)}] * self.batch_size

        def step() -> None:
            losses = model(images, targets)
            loss = sum(value for key, value in losses.items() if "loss" in key)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        return step

    def seconds_per_iteration(self, steps: int = 4, size: tuple[int, int] | None = None) -> float:
        """Median wall time of one training step (see `training_step`) on this machine, after one
        untimed step that warms up allocators and kernels."""
        step = self.training_step(size)
        step()
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def with_overrides(self, name: str, **overrides) -> Recipe:
        """A copy with more model overrides (the ablations change only the neck / attention loss)."""
        return Recipe(
            name=name,
            description=f"{self.name} with {overrides}",
            preset=self.preset,
            overrides={**self.overrides, **overrides},
            batch_size=self.batch_size,
            lr=self.lr,
            clip_grad=self.clip_grad,
            augment=self.augment,
            image_size=self.image_size,
            iterations=self.iterations,
        )


# What both synthetic-set recipes share: from scratch (no frozen stages, BatchNorm trained), a
# 64-channel neck, and the optimiser settings measured on a 2-core CPU.
_FROM_SCRATCH = {"frozen_stages": -1, "norm_eval": False, "neck_channels": 64}
_CPU_SCHEDULE = dict(batch_size=2, lr=0.02, clip_grad=5.0, augment="none", image_size=(256, 256))

SYNTHETIC_CPU = Recipe(
    name="synthetic-cpu",
    description="FoveaBox + SSPNet R18 from scratch on the synthetic set, 2-core CPU",
    preset="fovea_r18_sspnet_small",
    overrides={
        **_FROM_SCRATCH,
        "fovea_feat_channels": 64,
        "fovea_stacked_convs": 2,
        "fovea_sigma": 1.0,
        "fovea_centre_positive": True,
        "fovea_nms_pre": 300,
        "max_detections": 200,
    },
    **_CPU_SCHEDULE,
    iterations=1600,
)

SYNTHETIC_CPU_FASTER_RCNN = Recipe(
    name="synthetic-cpu-faster-rcnn",
    description="Faster R-CNN + SSPNet R18 from scratch on the synthetic set, 2-core CPU",
    preset="faster_rcnn_r18_sspnet_small",
    overrides={**_FROM_SCRATCH, "max_detections": 200},
    **_CPU_SCHEDULE,
    iterations=2000,
)

RECIPES = {recipe.name: recipe for recipe in (SYNTHETIC_CPU, SYNTHETIC_CPU_FASTER_RCNN)}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"training recipe {name!r} unknown; choose from {sorted(RECIPES)}") from None


def iterations_for_budget(sec_per_iter: float, budget_s: float, margin: float = 0.9, minimum: int = 10) -> int:
    """Iterations that fit `budget_s` at the calibrated `sec_per_iter`, keeping (1 - margin) of the
    time for what the calibration does not see (data loading, logging, checkpoints)."""
    if sec_per_iter <= 0 or budget_s <= 0:
        raise ValueError(f"need a positive time per iteration and budget, got {sec_per_iter} s and {budget_s} s")
    return max(minimum, int(margin * budget_s / sec_per_iter))
