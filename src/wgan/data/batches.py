"""Batch sources: the training loop asks for ``next_batch()`` and gets a (B, ...) tensor.

Two kinds: a generative toy dataset sampled afresh at every step, and a fixed finite tensor of
examples (a training subset, or image data later) drawn by random indices. Both draw only from
the torch.Generator they are handed, so a run is reproducible and resumes exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wgan.errors import WganError


class SampledBatches:
    """Fresh samples of a generative dataset for every batch (infinite data)."""

    def __init__(self, dataset, batch_size: int, generator: torch.Generator, device) -> None:
        self.dataset, self.batch_size, self.generator, self.device = (
            dataset,
            batch_size,
            generator,
            device,
        )

    def next_batch(self) -> Tensor:
        return self.dataset.sample(self.batch_size, generator=self.generator, device=self.device)


class TensorBatches:
    """Random batches (with replacement across batches) from a fixed tensor of examples (N, ...).

    The examples stay resident on ``device``; a batch is an index gather, no host round trip.
    """

    def __init__(
        self, examples: Tensor, batch_size: int, generator: torch.Generator, device
    ) -> None:
        if examples.shape[0] == 0:
            raise WganError("the training set is empty")
        self.examples = examples.to(device)
        self.batch_size, self.generator = batch_size, generator

    def next_batch(self) -> Tensor:
        n = self.examples.shape[0]
        idx = torch.randint(
            n, (self.batch_size,), generator=self.generator, device=self.examples.device
        )
        return self.examples[idx]
