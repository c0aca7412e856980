"""Data-parallel training across processes and machines, launched by torchrun.

``torchrun --nproc-per-node N -m moodlens train face --config ...`` starts N
copies of the same command with RANK / WORLD_SIZE / MASTER_ADDR set; the
Trainer notices (``current()``), wraps its net in DistributedDataParallel and
trains each rank on its own shard of every epoch. Nothing else changes: one
process (rank 0) writes checkpoints, logs and curves, and what it saves is the
plain net, the same as a single-process run.

The backend is gloo: moodlens trains on the CPU (bf16 autocast, channels_last),
and gloo is PyTorch's CPU backend on one machine and across several.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from ..errors import DataError


@dataclass(frozen=True)
class World:
    rank: int = 0  # this process's index among all processes
    size: int = 1  # processes in all (nodes x processes per node)
    local_size: int = 1  # processes on this machine

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def current() -> World:
    """This process's place; joins the process group on first use under torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_WORLD_SIZE", size)))


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def default_threads(world: World) -> int:
    """Cores per process: N processes on one machine share its cores."""
    return max(1, (os.cpu_count() or 1) // world.local_size)


def check_shardable(n_items: int, world: World) -> None:
    if n_items < world.size:
        raise DataError(f"{n_items} training items cannot be shared by {world.size} processes "
                        f"(--nproc-per-node x --nnodes); use fewer processes or more data")


def epoch_order(n_items: int, epoch: int, seed: int, world: World) -> torch.Tensor:
    """This rank's item indices for one epoch, shuffled.

    DistributedSampler draws one permutation from (seed, epoch), the same on
    every rank, and deals it out: rank r gets positions r, r + W, r + 2W, ...
    So batch i of the W ranks together is exactly batch i of a one-process
    run with W times the batch size. With W = 1 it is the whole permutation.
    """
    sampler = DistributedSampler(range(n_items), num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler), dtype=torch.int64)


def sum_over_ranks(values: list[float], world: World) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (identity without torchrun)."""
    if not world.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()
