"""Batch sources: the training loop asks for ``next_batch()`` and gets a (B, ...) tensor.

Two kinds: a generative toy dataset sampled afresh at every step, and a fixed finite tensor of
examples (a training subset, or image data later) drawn by random indices. Both draw only from
the torch.Generator they are handed, so a run is reproducible and resumes exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from wgan.errors import ConfigError, WganError


def _check_batch_size(batch_size: object) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch size must be an integer >= 1, got {batch_size!r}")


class SampledBatches:
    """Fresh samples of a generative dataset for every batch (infinite data)."""

    def __init__(self, dataset, batch_size: int, generator: torch.Generator, device) -> None:
        _check_batch_size(batch_size)
        self.dataset, self.batch_size, self.generator, self.device = (
            dataset,
            batch_size,
            generator,
            device,
        )

    def next_batch(self) -> Tensor:
        return self.dataset.sample(self.batch_size, generator=self.generator, device=self.device)

    def next_labelled(self) -> tuple[Tensor, Tensor]:
        """A batch and its labels, (B, ...) and (B,), for datasets that have labels."""
        return self.dataset.sample_with_labels(
            self.batch_size, generator=self.generator, device=self.device
        )


class TensorBatches:
    """Random batches (with replacement across batches) from a fixed tensor of examples (N, ...).

    The examples stay resident on ``device``; a batch is an index gather, no host round trip.
    ``convert`` (optional) maps each gathered batch to what the loop trains on: image datasets
    keep their examples as bytes and convert only the batch
    (:meth:`wgan.data.images.ImageDataset.as_float`).
    """

    def __init__(
        self,
        examples: Tensor,
        batch_size: int,
        generator: torch.Generator,
        device,
        labels: Tensor | None = None,
        convert: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        _check_batch_size(batch_size)
        if examples.shape[0] == 0:
            raise WganError("the training set is empty")
        if labels is not None and labels.shape[0] != examples.shape[0]:
            raise WganError(f"{labels.shape[0]} labels for {examples.shape[0]} examples")
        self.examples = examples.to(device)
        self.labels = labels.to(device) if labels is not None else None
        self.batch_size, self.generator = batch_size, generator
        self.convert = convert

    def _indices(self) -> Tensor:
        n = self.examples.shape[0]
        return torch.randint(
            n, (self.batch_size,), generator=self.generator, device=self.examples.device
        )

    def _gather(self, idx: Tensor) -> Tensor:
        batch = self.examples[idx]
        return batch if self.convert is None else self.convert(batch)

    def next_batch(self) -> Tensor:
        return self._gather(self._indices())

    def next_labelled(self) -> tuple[Tensor, Tensor]:
        """A batch and its labels, (B, ...) and (B,), drawn with the same indices."""
        if self.labels is None:
            raise WganError("this dataset has no labels (a conditional GAN needs them)")
        idx = self._indices()
        return self._gather(idx), self.labels[idx]
