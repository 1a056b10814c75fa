"""Deterministic, resumable, rank-sharded batches.

Every epoch has one global order of the training images: a permutation drawn from a generator
seeded with ``seed + epoch`` (the same on every process), padded by wrapping around so that every
iteration sees a full global batch of ``world_size * batch_size`` images. Iteration ``k`` of an
epoch uses the slice ``[k*G, (k+1)*G)`` of that order (G = global batch); process ``r`` takes the
``r``-th chunk of ``batch_size`` images of the slice. So one process with batch 2 and two processes
with batch 1 see exactly the same images at every iteration, and resuming at iteration ``k``
only needs ``(epoch, k)``.

Augmentation randomness is tied to the image, not to the worker that loads it: the dataset
(`sspnet.data.dataset.TinyPersonDataset` with a seed) augments image ``index`` of epoch ``e`` under a
seed derived from ``(seed, e, index)``. A resumed run therefore loads bit-identical batches.
"""

from __future__ import annotations

import torch


class ResumableBatchSampler:
    """Yields, for one process, lists of dataset indices: one list per iteration.

    Args:
        dataset_size: number of training images.
        batch_size: images per process per iteration.
        seed: shared seed of the epoch orders.
        rank, world_size: this process and the number of processes.
    Call `set_epoch(epoch, start_iter)` before iterating; iteration starts at `start_iter`.
    """

    def __init__(self, dataset_size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if dataset_size <= 0:
            raise ValueError(f"the training set is empty (dataset_size={dataset_size})")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside [0, world_size={world_size})")
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_iter = 0

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    @property
    def iters_per_epoch(self) -> int:
        return -(-self.dataset_size // self.global_batch)  # ceil

    def set_epoch(self, epoch: int, start_iter: int = 0) -> None:
        if not 0 <= start_iter <= self.iters_per_epoch:
            raise ValueError(f"start_iter {start_iter} outside [0, {self.iters_per_epoch}]")
        self.epoch = epoch
        self.start_iter = start_iter

    def epoch_order(self, epoch: int) -> list[int]:
        """The global image order of `epoch`, padded to a multiple of the global batch."""
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(self.dataset_size, generator=generator).tolist()
        padded_length = self.iters_per_epoch * self.global_batch
        while len(order) < padded_length:  # wrap around (more than once for tiny sets)
            order += order[: padded_length - len(order)]
        return order

    def __iter__(self):
        order = self.epoch_order(self.epoch)
        for k in range(self.start_iter, self.iters_per_epoch):
            first = k * self.global_batch + self.rank * self.batch_size
            yield order[first : first + self.batch_size]

    def __len__(self) -> int:
        return self.iters_per_epoch - self.start_iter
