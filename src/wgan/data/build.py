"""The dataset a :class:`wgan.config.DataConfig` names: a toy 2-D mixture or an image set."""

from __future__ import annotations

import torch

from wgan.config import DataConfig
from wgan.data.batches import SampledBatches, TensorBatches
from wgan.data.images import IMAGE_DATASETS, make_image_dataset
from wgan.data.toy import make_dataset


def is_image_dataset(dataset) -> bool:
    """True for image datasets (``(N, C, H, W)`` samples), False for vector ones."""
    return bool(getattr(dataset, "is_image", False))


def build_dataset(cfg: DataConfig):
    """Toy datasets are generated in code; image datasets load from the package or files."""
    if cfg.name in IMAGE_DATASETS:
        return make_image_dataset(
            cfg.name,
            path=cfg.path,
            resolution=cfg.resolution,
            channels=cfg.channels,
            split=cfg.split,
        )
    return make_dataset(cfg.name, **cfg.dataset_params())


def build_batches(dataset, batch_size: int, generator: torch.Generator, device):
    """A batch source: fixed image tensors (resident on ``device``) or fresh samples."""
    images = getattr(dataset, "images", None)
    if images is not None:
        return TensorBatches(images, batch_size, generator, device, dataset.labels)
    return SampledBatches(dataset, batch_size, generator, device)
