"""Learning-rate schedule of the original recipe: linear warm-up, then step decay (the original configs' schedule).

The original (mmcv 1.3.18) schedule for 12 epochs is
  * step decay x0.1 after epochs 8 and 11 (epoch-based: epochs 0-7 use lr, 8-10 lr*0.1, 11 lr*0.01);
  * linear warm-up over the first 500 iterations starting at factor 0.001:
    ``factor = 1 - (1 - i / warmup_iters) * (1 - warmup_ratio)`` for iteration ``i < warmup_iters``,
    multiplied onto the step-decayed lr (mmcv's ``LrUpdaterHook`` with ``warmup='linear'``).

Here every position is counted in iterations, so the same code serves epoch-based and
iteration-based runs: ``milestones_for_run`` places the milestones at 8/12 and 11/12 of the run
(on epoch boundaries for epoch-based runs, which reproduces 8 and 11 for a 12-epoch run).

The schedule is a pure function of the global iteration, so resuming needs no scheduler state
beyond the iteration counter.
"""

from __future__ import annotations

from dataclasses import dataclass

# Twelfths of the run after which the lr is multiplied by `gamma` (epochs 8 and 11 of 12).
MILESTONE_TWELFTHS = (8, 11)


@dataclass(frozen=True)
class WarmupStepSchedule:
    """lr(iteration) = base_lr * gamma^(#milestones <= iteration) * warm-up factor.

    Args:
        base_lr: the lr after warm-up and before the first milestone.
        milestones: iterations (0-based) from which one more factor `gamma` applies; increasing.
        gamma: decay factor per milestone.
        warmup_iters: number of warm-up iterations (0 disables warm-up).
        warmup_ratio: warm-up start factor (lr at iteration 0 = base_lr * warmup_ratio).
    """

    base_lr: float
    milestones: tuple[int, ...]
    gamma: float = 0.1
    warmup_iters: int = 500
    warmup_ratio: float = 0.001

    def __post_init__(self):
        if self.base_lr <= 0:
            raise ValueError(f"base_lr must be > 0, got {self.base_lr}")
        if any(b < a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"milestones must be non-decreasing, got {self.milestones}")
        if self.warmup_iters < 0:
            raise ValueError(f"warmup_iters must be >= 0, got {self.warmup_iters}")
        if not 0 < self.warmup_ratio <= 1:
            raise ValueError(f"warmup_ratio must be in (0, 1], got {self.warmup_ratio}")

    def lr_at(self, iteration: int) -> float:
        """The lr used by the optimizer step of 0-based global iteration `iteration`."""
        decays = sum(1 for m in self.milestones if iteration >= m)
        lr = self.base_lr * self.gamma**decays
        if iteration < self.warmup_iters:
            k = (1 - iteration / self.warmup_iters) * (1 - self.warmup_ratio)
            lr *= 1 - k
        return lr


def milestones_for_run(total_iters: int, iters_per_epoch: int | None = None) -> tuple[int, ...]:
    """Milestone iterations at 8/12 and 11/12 of a run of `total_iters` iterations.

    For an epoch-based run (`iters_per_epoch` given) the milestones fall on epoch boundaries:
    epoch round(E*8/12) and round(E*11/12) for E = total_iters / iters_per_epoch epochs.
    Rounding is half-up, in integer arithmetic.
    """
    if total_iters <= 0:
        raise ValueError(f"total_iters must be > 0, got {total_iters}")
    if iters_per_epoch is None:
        return tuple(_round_twelfths(total_iters, t) for t in MILESTONE_TWELFTHS)
    if iters_per_epoch <= 0 or total_iters % iters_per_epoch:
        raise ValueError(
            f"total_iters ({total_iters}) must be a positive multiple of iters_per_epoch ({iters_per_epoch})"
        )
    epochs = total_iters // iters_per_epoch
    return tuple(_round_twelfths(epochs, t) * iters_per_epoch for t in MILESTONE_TWELFTHS)


def _round_twelfths(n: int, twelfths: int) -> int:
    """round(n * twelfths / 12), halves rounded up."""
    return (2 * n * twelfths + 12) // 24


def warmup_iters_for_run(total_iters: int, max_warmup: int = 500) -> int:
    """Warm-up length: the original recipe's 500 iterations, but at most 10 % of a short run."""
    return min(max_warmup, int(0.1 * total_iters))


def set_lr(optimizer, lr: float) -> None:
    """Write `lr` into every parameter group of `optimizer`."""
    for group in optimizer.param_groups:
        group["lr"] = lr
