"""Random stand-in data of :mod:`wgan.scale.bench`: images shaped like a file-based dataset.

Image datasets read from the user's files (MNIST, CIFAR, folders) are replaced, when no
``data.path`` is set (or with ``random_data=True``), by 1,024 random images of the right shape in
``[-1, 1]`` (with labels when the dataset has classes): throughput does not depend on the pixels.
"""

from __future__ import annotations

import torch

from wgan.config import Config
from wgan.errors import ConfigError

__all__ = ["RANDOM_IMAGES", "RANDOM_N", "needs_random_data", "random_images"]

#: Image datasets read from user files -> (channels, classes, default resolution). With no
#: ``data.path`` the benchmark replaces them by random images of this shape.
RANDOM_IMAGES: dict[str, tuple[int, int, int]] = {
    "mnist": (1, 10, 32),
    "fashion_mnist": (1, 10, 32),
    "stacked_mnist": (3, 1000, 32),
    "idx": (1, 0, 32),
    "cifar10": (3, 10, 32),
    "cifar100": (3, 100, 32),
    "folder": (3, 0, 64),
}

#: Number of random images that stand in for a file-based dataset.
RANDOM_N = 1024


def needs_random_data(cfg: Config, random_data: bool | None) -> bool:
    """Whether to replace the dataset: ``None`` = only when it needs files and has no path."""
    if random_data is None:
        return cfg.data.name in RANDOM_IMAGES and not cfg.data.path
    return bool(random_data)


def random_images(cfg: Config, n: int = RANDOM_N):
    """An ImageDataset of ``n`` uniform images in [-1, 1] shaped like ``cfg.data``'s dataset."""
    from wgan.data.images import ImageDataset

    name = cfg.data.name
    if name in RANDOM_IMAGES:
        channels, n_classes, resolution = RANDOM_IMAGES[name]
    elif name in ("digits", "stacked_digits"):
        channels, n_classes, resolution = (1, 10, 16) if name == "digits" else (3, 1000, 16)
    else:
        raise ConfigError(
            f"random data stands in for image datasets; data.name={name!r} is toy data that "
            "is generated anyway (drop --random-data)"
        )
    if cfg.data.channels is not None:
        channels = cfg.data.channels
    if cfg.data.resolution is not None:
        resolution = cfg.data.resolution
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, channels, resolution, resolution, generator=g) * 2 - 1  # (N, C, R, R)
    labels = torch.randint(n_classes, (n,), generator=g) if n_classes else None  # (N,)
    return ImageDataset(images, labels, n_classes, name=f"random-{name}", source="random")
