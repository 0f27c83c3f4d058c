"""Datasets by name: the registry above the loaders, and what the rest of the package uses.

:func:`build_dataset` turns a :class:`wgan.config.DataConfig` into a toy 2-D mixture
(:func:`wgan.data.toy.make_dataset`) or an image set (:func:`make_image_dataset`, which maps each
of :data:`IMAGE_DATASETS` to its loader in :mod:`wgan.data.digits` or
:mod:`wgan.data.image_files`); :func:`build_batches` draws training batches from either.

Imports run one way: this module imports the loaders, each loader imports only the base
:mod:`wgan.data.images`, and neither the base nor a loader imports this module.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch

from wgan.config import DataConfig
from wgan.data.batches import SampledBatches, TensorBatches
from wgan.data.cifar import load_cifar
from wgan.data.digits import StackedDigits, load_digits_dataset
from wgan.data.idx import load_idx, load_mnist_dir
from wgan.data.image_files import load_image_folder
from wgan.data.images import IMAGE_DATASETS, RESOLUTIONS, ImageDataset, check_resolution
from wgan.data.text import is_text_dataset, make_text_dataset
from wgan.data.toy import ALIASES, DATASETS, make_dataset, resolve_dataset_name
from wgan.errors import ConfigError, DataError

__all__ = [
    "IMAGE_DATASETS",
    "TEXT_DATASETS",
    "build_batches",
    "build_dataset",
    "is_image_dataset",
    "is_text_dataset",
    "make_image_dataset",
]

TEXT_DATASETS = ("text", "markov_text")  # wgan.data.text: a UTF-8 file, the embedded corpus


def is_image_dataset(dataset) -> bool:
    """True for image datasets (``(N, C, H, W)`` samples), False for vector ones."""
    return bool(getattr(dataset, "is_image", False))


def build_dataset(cfg: DataConfig, allow_missing_text: bool = False):
    """Toy datasets are generated in code; image datasets load from the package or files;
    text comes from a file (``text``) or code (``markov_text``), see :mod:`wgan.data.text`.

    ``allow_missing_text``: a finished text run whose file is gone still loads, holding only its
    stored vocabulary (for sampling).
    """
    if cfg.name in TEXT_DATASETS:
        return make_text_dataset(cfg, allow_missing=allow_missing_text)
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
            known = sorted(IMAGE_DATASETS) + sorted(DATASETS) + sorted(ALIASES) + [*TEXT_DATASETS]
            close = difflib.get_close_matches(cfg.name.lower(), known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"unknown dataset '{cfg.name}'{hint} (images: {', '.join(IMAGE_DATASETS)}; "
                f"toy: {', '.join(sorted(DATASETS))}; text: {', '.join(TEXT_DATASETS)})"
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
    """A batch source: fixed images (resident on ``device`` as stored, bytes for files; each
    batch converted to float32) or fresh samples."""
    if isinstance(dataset, ImageDataset):
        return TensorBatches(
            dataset.pixels, batch_size, generator, device, dataset.labels, dataset.as_float
        )
    images = getattr(dataset, "images", None)
    if images is not None:
        return TensorBatches(images, batch_size, generator, device, dataset.labels)
    return SampledBatches(dataset, batch_size, generator, device)


# ------------------------------------------------------------------- image datasets by name

_DEFAULT_RESOLUTION = {
    "digits": 16,
    "stacked_digits": 16,
    "mnist": 32,
    "fashion_mnist": 32,
    "stacked_mnist": 32,
    "cifar10": 32,
    "cifar100": 32,
}  # folder: from its files (wgan.data.image_files.scan_image_folder)

_NEEDS_PATH = {
    "mnist": "a directory holding train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]",
    "fashion_mnist": "a directory holding train-images-idx3-ubyte[.gz] and "
    "train-labels-idx1-ubyte[.gz]",
    "stacked_mnist": "an MNIST directory holding train-images-idx3-ubyte[.gz] and "
    "train-labels-idx1-ubyte[.gz]",
    "idx": "an IDX images file (e.g. train-images-idx3-ubyte.gz)",
    "cifar10": "the extracted 'cifar-10-batches-py' directory",
    "cifar100": "the extracted 'cifar-100-python' directory",
    "folder": "a directory of PNG/JPEG images (one sub-folder per class, or none)",
}

_CHANNELS = {
    "digits": 1,
    "stacked_digits": 3,
    "mnist": 1,
    "fashion_mnist": 1,
    "stacked_mnist": 3,
    "idx": 1,
    "cifar10": 3,
    "cifar100": 3,
}


def _canonical_name(name: object) -> str:
    if not isinstance(name, str):
        raise ConfigError(f"image dataset name must be a string, got {name!r}")
    key = name.strip().lower().replace("-", "_")
    key = {"fashionmnist": "fashion_mnist", "cifar_10": "cifar10", "cifar_100": "cifar100"}.get(
        key, key
    )
    if key not in IMAGE_DATASETS:
        close = difflib.get_close_matches(key, IMAGE_DATASETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown image dataset {name!r}{hint}; known: {', '.join(IMAGE_DATASETS)}"
        )
    return key


def _default_resolution(native: int) -> int:
    """The smallest allowed resolution >= ``native`` (64 when larger)."""
    for r in RESOLUTIONS:
        if r >= native:
            return r
    return RESOLUTIONS[-1]


def make_image_dataset(
    name: str,
    path: str | Path | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    split: str = "train",
) -> ImageDataset | StackedDigits:
    """Load the image dataset ``name`` (one of :data:`IMAGE_DATASETS`).

    * ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes); no path.
    * ``stacked_digits``: three random digits as the RGB channels, 1,000 modes (Stacked MNIST
      protocol of VEEGAN, Srivastava et al. 2017, on the sklearn digits); no path.
    * ``mnist`` / ``fashion_mnist``: ``path`` is a directory with ``train-images-idx3-ubyte``
      and ``train-labels-idx1-ubyte`` (``t10k-*`` for ``split='test'``), raw or gzipped.
    * ``stacked_mnist``: Stacked MNIST proper (Metz et al. 2017 / VEEGAN) on an MNIST dir.
    * ``idx``: ``path`` is an IDX images file; a labels file beside it named like MNIST's
      (``...-images-idx3-ubyte`` -> ``...-labels-idx1-ubyte``) is used if present.
    * ``cifar10`` / ``cifar100``: ``path`` is the extracted python-pickle directory.
    * ``folder``: ``path`` is a directory of images (sub-folders = classes).

    ``resolution`` defaults to 16 for the digits, 32 for MNIST/CIFAR, for ``idx`` the smallest
    of :data:`RESOLUTIONS` at least the native size, and for a folder to what its files say
    (the most common side, rounded to a supported power of two). ``channels`` may only restate
    the dataset's own channel count, except for ``folder`` (1 = grayscale, 3 = RGB; default: RGB
    if any file is stored in colour, else grayscale). ``split`` is ``'train'`` or ``'test'``
    (file-based datasets with a test set).

    Raises:
        ConfigError: unknown name, bad resolution/channels/split, or ``data.path`` unset.
        DataError: a missing, corrupt or malformed data file (the message names it).
    """
    key = _canonical_name(name)
    if split not in ("train", "test"):
        raise ConfigError(f"data split must be 'train' or 'test', got {split!r}")

    if resolution is None:
        res: int | None = _DEFAULT_RESOLUTION.get(key)
    else:
        res = check_resolution(resolution, "data.resolution")

    if channels is not None:
        if isinstance(channels, bool) or not isinstance(channels, int):
            raise ConfigError(f"data.channels must be 1 or 3, got {channels!r}")
        expected = _CHANNELS.get(key)
        if expected is not None and channels != expected:
            raise ConfigError(
                f"dataset {key!r} has {expected} channel(s); data.channels={channels} "
                f"is not supported for it"
            )
        if key == "folder" and channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3 for 'folder', got {channels}")

    if key in ("digits", "stacked_digits"):
        if path is not None:
            raise ConfigError(
                f"dataset {key!r} ships with scikit-learn; data.path must not be set "
                f"(got {str(path)!r})"
            )
        if split != "train":
            raise ConfigError(
                f"dataset {key!r} has no separate test split (use ImageDataset.split for "
                f"held-out data); data.split must be 'train'"
            )
        assert res is not None
        base = load_digits_dataset(res)
        return base if key == "digits" else StackedDigits(base)

    if path is None or str(path).strip() == "":
        raise ConfigError(
            f"dataset {key!r} is read from local files: data.path must be set to {_NEEDS_PATH[key]}"
        )
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or directory (data.path for dataset {key!r})")

    if key in ("mnist", "fashion_mnist", "stacked_mnist"):
        assert res is not None
        ds = load_mnist_dir(path, split=split, resolution=res)
        ds.name = key
        if key == "stacked_mnist":
            return StackedDigits(ds, name="stacked_mnist")
        return ds
    if key == "idx":
        ds = load_idx(path, labels_path=_idx_labels_beside(path), resolution=None)
        return ds.resized(res if res is not None else _default_resolution(ds.resolution))
    if key in ("cifar10", "cifar100"):
        ds = load_cifar(path, resolution=res, split=split)
        want = 10 if key == "cifar10" else 100
        if ds.n_classes != want:
            raise DataError(f"{path}: holds CIFAR-{ds.n_classes} data but the dataset is {key!r}")
        ds.name = key
        return ds
    # folder
    if split != "train":
        raise ConfigError("dataset 'folder' has no test split; data.split must be 'train'")
    return load_image_folder(path, res, channels)


def _idx_labels_beside(images_path: Path) -> Path | None:
    """The labels file next to an MNIST-style images file, if one exists."""
    name = images_path.name
    for a, b in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1")):
        if a in name:
            stem = name.replace(a, b)
            base = stem[:-3] if stem.endswith(".gz") else stem
            for cand in (stem, base, base + ".gz"):
                p = images_path.with_name(cand)
                if p.is_file():
                    return p
    return None
