"""Data-parallel training with ``torch.distributed`` (launched by ``torchrun``).

Every process holds the same G and D (same seed, then a broadcast from rank 0), draws its own
shard of B / N real samples and noise from a per-rank random stream, and computes its losses on
that shard. After each backward pass the gradients are averaged over the processes with one
all-reduce of a flat buffer, so each optimiser step sees the gradient of the loss on the whole
batch of B.

Why this is exact for WGAN-GP: every loss term (the objective's means over real and generated
samples, and the gradient penalty lambda * E[(||grad_x D(x_hat)||_2 - 1)^2]) is a mean over
samples of a per-sample quantity, and the penalty's input gradient of sample i depends only on
sample i (no batch norm in the critic). The mean over B is the average over N shards of the means
over B / N, and the gradient is linear, so averaging the shards' gradients gives the gradient of
the full-batch loss. (Batch norm in G makes each shard normalise with its own statistics, as in
DistributedDataParallel without SyncBatchNorm.)

Logging, evaluation and checkpoints happen on rank 0. Statistics are averaged over processes
when they are read back (every ``log_every`` steps), so every process sees the same values and a
non-finite value stops every process together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from wgan.errors import ConfigError


@dataclass
class DistContext:
    """Where this process sits in a data-parallel job (a single process by default)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistContext:
        """The context ``torchrun`` describes in RANK / WORLD_SIZE / LOCAL_RANK (or a single one).

        Initialises the default process group (NCCL on CUDA, gloo on the CPU) when the world
        has more than one process and no group exists yet.
        """
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend=backend)
        return cls(rank, world, local)

    def device(self, name: str) -> str:
        """``cuda`` becomes this process's GPU (``cuda:LOCAL_RANK``) in a multi-process job."""
        if self.enabled and name in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return name

    def shard(self, batch_size: int) -> int:
        """Each process's share of the global batch; the batch must divide evenly."""
        if batch_size % self.world_size:
            raise ConfigError(
                f"data.batch_size={batch_size} does not divide among {self.world_size} processes"
            )
        return batch_size // self.world_size

    def seed(self, seed: int) -> int:
        """The seed of this process's data/noise stream (rank 0 keeps ``seed`` itself)."""
        return seed + 1_000_003 * self.rank

    # -- collectives (no-ops for a single process) -------------------------------------------

    def average_tensors(self, tensors: list[Tensor]) -> list[Tensor]:
        """Each tensor's mean over processes, with one all-reduce of a flat buffer (gradients)."""
        if not self.enabled or not tensors:
            return tensors
        flat = _flatten_dense_tensors(tensors)
        dist.all_reduce(flat)
        flat /= self.world_size
        return list(_unflatten_dense_tensors(flat, tensors))

    def average(self, values: Tensor) -> Tensor:
        """The mean over processes of a tensor (used for logged statistics)."""
        if not self.enabled:
            return values
        values = values.clone()
        dist.all_reduce(values)
        return values / self.world_size

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every process."""
        if not self.enabled:
            return
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every process (e.g. the run directory's path)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        """Destroy the default process group (after the last collective of a run)."""
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
