"""Multi-process data-parallel plumbing (torchrun): process group, rank queries, reductions.

`torchrun --nproc_per_node K -m sspnet train ...` sets RANK / WORLD_SIZE / LOCAL_RANK; a plain
`sspnet train` has none of them and runs as a single process (world size 1), with every helper
below a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group started by torchrun (gloo on CPU, NCCL on GPU); else world size 1."""
    if not launched_by_torchrun():
        return DistInfo()
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def mean_over_processes(values: dict[str, float], info: DistInfo, device) -> dict[str, float]:
    """Average scalar log values over processes (every process gets the mean)."""
    if not info.distributed or not values:
        return values
    keys = sorted(values)
    packed = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(packed)
    packed /= info.world_size
    return dict(zip(keys, packed.tolist()))


def gather_objects(obj, info: DistInfo) -> list:
    """Every process's `obj`, in rank order (in-memory exchange between our own processes)."""
    if not info.distributed:
        return [obj]
    gathered = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj, info: DistInfo):
    """Rank 0's `obj` on every process."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
