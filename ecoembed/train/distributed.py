"""Data-parallel training across processes (torch DistributedDataParallel under torchrun).

``torchrun --nproc-per-node N ...`` starts N copies of a training script with
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` set. Each copy holds the same examples and
draws the same random streams; every global batch is cut into N contiguous shards, each
rank runs the model on its own shard, and DDP averages the gradients. The local losses are
scaled (:func:`shard_scale`) so that the averaged gradient is the gradient of the loss of
the whole batch: N processes then take the same optimiser steps as one process, up to
floating-point rounding. Only rank 0 logs and writes files.

Without ``WORLD_SIZE`` > 1 nothing here touches ``torch.distributed``, and training is
the plain single-process loop.
"""

from __future__ import annotations

import atexit
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ecoembed.train.device import training_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the only one that logs and writes checkpoints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def shard(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` rows (sizes differ by at most one, as
        ``numpy.array_split``; a rank may get none when ``n`` < world size)."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def batch_part(self, n: int) -> tuple[slice, int]:
        """The rows of a batch of ``n`` this rank runs, and how many of them count. A rank
        left without rows (``n`` < world size) runs the batch's first row and counts none:
        every rank must take part in each step's gradient reduction."""
        part = self.shard(n)
        if part.stop > part.start:
            return part, part.stop - part.start
        return slice(0, 1), 0

    def all_sum(self, value: float) -> float:
        """The sum over ranks of a number (the number itself in one process)."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item())

    def wrap(self, module: nn.Module, *, find_unused_parameters: bool = False) -> nn.Module:
        """The module under DDP (gradients averaged over ranks), or itself in one process."""
        if not self.active:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(
            module, device_ids=ids, find_unused_parameters=find_unused_parameters
        )

    def info(self, logger: logging.Logger, msg: str, *args: object) -> None:
        """Log at INFO level from rank 0 only (N copies of every line help nobody)."""
        if self.is_main:
            logger.info(msg, *args)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard_scale(local: float, total: float, world_size: int) -> float:
    """Factor turning a rank's mean loss over its ``local`` items into its part of the mean
    over all ``total`` items of the batch, pre-multiplied by the world size because DDP
    averages (not sums) gradients. Exactly 1.0 in one process (``local == total``)."""
    return (local / total) * world_size if total > 0 else 0.0


def distributed() -> Distributed:
    """Join the process group torchrun describes (gloo on CPU, nccl on CUDA), or return a
    one-process view when not launched by torchrun.

    The group is created once per process and kept until the process exits: one process
    may train both stages, and a group re-created on the same rendezvous address after
    ``destroy_process_group`` can hang.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(0, 1, training_device())
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = training_device(announce=rank == 0)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_leave)
    ctx = Distributed(dist.get_rank(), dist.get_world_size(), device)
    if ctx.rank != rank or ctx.world_size != world:
        raise RuntimeError(f"process group is rank {ctx.rank}/{ctx.world_size}, env {rank}/{world}")
    ctx.info(log, "data-parallel training on %d processes (%s)", world, dist.get_backend())
    return ctx
