"""The dataset a :class:`wgan.config.DataConfig` names: a toy 2-D mixture or an image set."""

from __future__ import annotations

import difflib

import torch

from wgan.config import DataConfig
from wgan.data.batches import SampledBatches, TensorBatches
from wgan.data.images import IMAGE_DATASETS, ImageDataset, make_image_dataset
from wgan.data.toy import ALIASES, DATASETS, make_dataset, resolve_dataset_name
from wgan.errors import ConfigError


def is_image_dataset(dataset) -> bool:
    """True for image datasets (``(N, C, H, W)`` samples), False for vector ones."""
    return bool(getattr(dataset, "is_image", False))


def build_dataset(cfg: DataConfig):
    """Toy datasets are generated in code; image datasets load from the package or files."""
    if cfg.name == "digits" and cfg.path is None and cfg.split == "train":
        # Train on the 1,500 digits the metrics' classifier also trains on, so the 297 held-out
        # digits it compares against were never seen by the GAN.
        from wgan.metrics.classifier import digits_split

        x_train, y_train, _, _ = digits_split(cfg.resolution or 16)
        return ImageDataset(x_train, y_train, n_classes=10, name="digits", source="sklearn")
    if cfg.name not in IMAGE_DATASETS:
        try:
            resolve_dataset_name(cfg.name)
        except ConfigError:
            known = sorted(IMAGE_DATASETS) + sorted(DATASETS) + sorted(ALIASES)
            close = difflib.get_close_matches(cfg.name.lower(), known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"unknown dataset '{cfg.name}'{hint} (images: {', '.join(IMAGE_DATASETS)}; "
                f"toy: {', '.join(sorted(DATASETS))})"
            ) from None
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
