"""The lr schedule against hand-computed values of the original recipe."""

import math

import pytest
import torch

from sspnet.engine.schedule import WarmupStepSchedule, milestones_for_run, set_lr, warmup_iters_for_run


def test_spec_recipe_values_by_hand():
    # 12 epochs of 1000 iterations: milestones after epochs 8 and 11 = iterations 8000 and 11000.
    schedule = WarmupStepSchedule(base_lr=0.002, milestones=(8000, 11000), warmup_iters=500, warmup_ratio=0.001)
    # warm-up: lr = 0.002 * (1 - (1 - i/500) * 0.999)
    assert schedule.lr_at(0) == pytest.approx(0.002 * 0.001, rel=1e-12)
    assert schedule.lr_at(250) == pytest.approx(0.002 * (1 - 0.5 * 0.999), rel=1e-12)  # 0.001001
    assert schedule.lr_at(250) == pytest.approx(0.001001, rel=1e-12)
    assert schedule.lr_at(499) == pytest.approx(0.002 * (1 - 0.002 * 0.999), rel=1e-12)
    assert schedule.lr_at(500) == 0.002
    assert schedule.lr_at(7999) == 0.002
    assert schedule.lr_at(8000) == pytest.approx(0.0002, rel=1e-12)
    assert schedule.lr_at(10999) == pytest.approx(0.0002, rel=1e-12)
    assert schedule.lr_at(11000) == pytest.approx(0.00002, rel=1e-12)
    assert schedule.lr_at(11999) == pytest.approx(0.00002, rel=1e-12)


def test_warmup_multiplies_the_decayed_lr():
    # mmcv applies the warm-up factor to the already step-decayed lr
    schedule = WarmupStepSchedule(base_lr=1.0, milestones=(2,), warmup_iters=10, warmup_ratio=0.1)
    assert schedule.lr_at(4) == pytest.approx(0.1 * (1 - (1 - 4 / 10) * 0.9))


def test_warmup_is_linear_between_ratio_and_one():
    schedule = WarmupStepSchedule(base_lr=0.5, milestones=(), warmup_iters=100, warmup_ratio=0.01)
    values = [schedule.lr_at(i) for i in range(101)]
    steps = [b - a for a, b in zip(values, values[1:100])]
    assert all(math.isclose(s, 0.5 * 0.99 / 100, rel_tol=1e-9) for s in steps)
    assert values[100] == 0.5


def test_milestones_epoch_based_reproduce_epochs_8_and_11():
    assert milestones_for_run(12 * 397, iters_per_epoch=397) == (8 * 397, 11 * 397)
    # 24 epochs -> 16 and 22; 6 epochs -> 4 and 5.5 rounded half up to 6 (= the end: no second decay)
    assert milestones_for_run(24 * 10, iters_per_epoch=10) == (160, 220)
    assert milestones_for_run(6 * 10, iters_per_epoch=10) == (40, 60)
    # 3 epochs -> 2 and 2.75 -> 3
    assert milestones_for_run(30, iters_per_epoch=10) == (20, 30)


def test_milestones_iteration_based():
    assert milestones_for_run(1200) == (800, 1100)
    assert milestones_for_run(100) == (67, 92)  # 66.67 -> 67, 91.67 -> 92
    assert milestones_for_run(6) == (4, 6)  # 4, 5.5 -> 6 (half up)


def test_warmup_length_is_min_500_and_10_percent():
    assert warmup_iters_for_run(100000) == 500
    assert warmup_iters_for_run(5000) == 500
    assert warmup_iters_for_run(1000) == 100
    assert warmup_iters_for_run(7) == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(base_lr=0.0, milestones=()), "base_lr"),
        (dict(base_lr=1.0, milestones=(5, 3)), "milestones"),
        (dict(base_lr=1.0, milestones=(), warmup_iters=-1), "warmup_iters"),
        (dict(base_lr=1.0, milestones=(), warmup_ratio=0.0), "warmup_ratio"),
    ],
)
def test_bad_schedule_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WarmupStepSchedule(**kwargs)


def test_bad_run_lengths():
    with pytest.raises(ValueError, match="total_iters"):
        milestones_for_run(0)
    with pytest.raises(ValueError, match="multiple"):
        milestones_for_run(25, iters_per_epoch=10)


def test_set_lr_reaches_every_group():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [a]}, {"params": [b]}], lr=1.0)
    set_lr(optimizer, 0.25)
    assert [g["lr"] for g in optimizer.param_groups] == [0.25, 0.25]
