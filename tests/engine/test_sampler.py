"""Batches: epoch permutations, rank sharding equal to one big batch, resuming mid-epoch."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sspnet.engine.sampler import ResumableBatchSampler


@given(n=st.integers(1, 40), batch=st.integers(1, 4), world=st.integers(1, 3), epoch=st.integers(0, 5))
def test_ranks_together_see_the_single_process_global_batch(n, batch, world, epoch):
    single = ResumableBatchSampler(n, batch * world, seed=7)
    single.set_epoch(epoch)
    ranks = [ResumableBatchSampler(n, batch, seed=7, rank=r, world_size=world) for r in range(world)]
    for sampler in ranks:
        sampler.set_epoch(epoch)
    per_rank = [list(s) for s in ranks]
    big = list(single)
    assert len(big) == -(-n // (batch * world))
    for k, global_batch in enumerate(big):
        assert sum((per_rank[r][k] for r in range(world)), []) == global_batch


@given(n=st.integers(1, 30), batch=st.integers(1, 5), epoch=st.integers(0, 3))
def test_every_image_once_per_epoch_then_wrap_padding(n, batch, epoch):
    sampler = ResumableBatchSampler(n, batch, seed=0)
    sampler.set_epoch(epoch)
    indices = [i for b in sampler for i in b]
    assert sorted(indices[:n]) == list(range(n))  # a permutation first
    assert len(indices) == -(-n // batch) * batch  # padded to full batches
    assert indices[n:] == (indices[:n] * batch)[: len(indices) - n]  # by wrapping around


def test_orders_differ_between_epochs_and_seeds():
    a = ResumableBatchSampler(50, 1, seed=0)
    assert a.epoch_order(0) != a.epoch_order(1)
    assert a.epoch_order(0) != ResumableBatchSampler(50, 1, seed=1).epoch_order(0)


def test_start_iter_yields_the_tail_of_the_epoch():
    sampler = ResumableBatchSampler(23, 3, seed=4)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_epoch(2, start_iter=5)
    assert list(sampler) == full[5:]
    assert len(sampler) == len(full) - 5
    with pytest.raises(ValueError, match="start_iter"):
        sampler.set_epoch(2, start_iter=len(full) + 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(dataset_size=0, batch_size=1, seed=0), "empty"),
        (dict(dataset_size=3, batch_size=0, seed=0), "batch_size"),
        (dict(dataset_size=3, batch_size=1, seed=0, rank=2, world_size=2), "rank"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ResumableBatchSampler(**kwargs)
