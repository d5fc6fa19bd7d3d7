"""Data-parallel training under ``torchrun``: process group, rank, and agreeing on a run id.

With no ``WORLD_SIZE`` in the environment (or 1) everything here is a no-op, so the
single-process path and the torchrun path run the same loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_world(*, gpus: bool = False) -> World:
    """Join the process group torchrun describes, if any: NCCL between GPUs, gloo on CPU."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if gpus else "gloo")
    return World(rank=dist.get_rank(), size=dist.get_world_size())


def local_rank() -> int:
    """This process's index on its host (torchrun's ``LOCAL_RANK``): which GPU it takes."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def broadcast_text(value: str, world: World) -> str:
    """Rank 0's ``value`` on every rank (the run id, for example)."""
    if not world.distributed:
        return value
    box: list[object] = [value if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return str(box[0])


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
