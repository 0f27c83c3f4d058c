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
from wgan.data.attribute_files import load_attribute_folder, load_celeba
from wgan.data.batches import SampledBatches, TensorBatches
from wgan.data.cifar import load_cifar
from wgan.data.digits import StackedDigits, load_digits_dataset
from wgan.data.idx import load_idx, load_mnist_dir
from wgan.data.image_files import load_image_folder
from wgan.data.images import IMAGE_DATASETS, RESOLUTIONS, ImageDataset, check_resolution
from wgan.data.shapes import make_shapes
from wgan.data.text import is_text_dataset, make_text_dataset
from wgan.data.toy import ALIASES, DATASETS, make_dataset, resolve_dataset_name
from wgan.errors import ConfigError, DataError

__all__ = [
    "IMAGE_DATASETS",
    "TEXT_DATASETS",
    "build_batches",
    "build_dataset",
    "held_out",
    "is_image_dataset",
    "is_text_dataset",
    "make_image_dataset",
    "reads_n_train",
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

    Attribute data (``shapes``, ``celeba``, a ``folder`` with ``data.attribute_file``) comes
    without the images that match any of ``data.holdout_combos`` (:func:`held_out`).
    """
    _check_attribute_keys(cfg)
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
        dataset = make_image_dataset(
            cfg.name,
            path=cfg.path,
            resolution=cfg.resolution,
            channels=cfg.channels,
            split=cfg.split,
            n=cfg.n_train if reads_n_train(cfg) else None,
            crop=cfg.crop,
            seed=cfg.seed,
            attribute_file=cfg.attribute_file,
        )
        return _without_combos(dataset, cfg.holdout_combos)
    return make_dataset(cfg.name, **cfg.dataset_params())


def _check_attribute_keys(cfg: DataConfig) -> None:
    """Refuse the attribute-data keys on data that does not read them."""
    if cfg.crop is not None and cfg.name != "celeba":
        raise ConfigError(f"data.crop is for data.name=celeba, not '{cfg.name}'")
    if cfg.attribute_file is not None and cfg.name != "folder":
        raise ConfigError(f"data.attribute_file is for data.name=folder, not '{cfg.name}'")
    if cfg.holdout_combos and cfg.name not in ("shapes", "celeba", "folder"):
        raise ConfigError(
            "data.holdout_combos is for attribute data (shapes, celeba, a folder with "
            f"data.attribute_file), not '{cfg.name}'"
        )


def reads_n_train(cfg: DataConfig) -> bool:
    """Whether the loader itself takes ``data.n_train``: the number of shapes drawn, or the
    first rows of an attribute file (celeba, a folder with ``data.attribute_file``)."""
    return cfg.name in ("shapes", "celeba") or (cfg.name == "folder" and bool(cfg.attribute_file))


def held_out(dataset: ImageDataset, combos: tuple[str, ...] | list[str] | None) -> torch.Tensor:
    """(N,) bool: the images of attribute data that match any of ``combos`` (requests such as
    ``"green,triangle"``, :meth:`wgan.data.attributes.AttributeSchema.parse`)."""
    schema = getattr(dataset, "attribute_schema", None)
    if schema is None:
        raise ConfigError(
            f"data.holdout_combos is for attribute data (shapes, celeba, a folder with "
            f"data.attribute_file); '{getattr(dataset, 'name', '?')}' has none"
        )
    attrs = dataset.attributes.cpu()  # (N, k)
    out = torch.zeros(attrs.shape[0], dtype=torch.bool)
    for combo in combos or ():
        try:
            request = schema.parse(combo)
        except ConfigError as err:
            raise ConfigError(f"data.holdout_combos '{combo}': {err}") from None
        out |= schema.matches(attrs, request)
    return out


def _without_combos(dataset, combos: tuple[str, ...] | None):
    """``dataset`` less every image :func:`held_out` names (compositional generalisation: a
    combination never seen in training can still be asked for)."""
    if not combos:
        return dataset
    drop = held_out(dataset, combos)
    if bool(drop.all()):
        raise ConfigError(
            f"data.holdout_combos {', '.join(combos)} removes every one of the {len(dataset):,} "
            "images; hold out fewer combinations"
        )
    kept = dataset.subset((~drop).nonzero().squeeze(1)) if bool(drop.any()) else dataset
    kept.held_out = (int(drop.sum()), tuple(combos))  # (images removed, the requests): a summary
    return kept


def build_batches(dataset, batch_size: int, generator: torch.Generator, device):
    """A batch source: fixed images (resident on ``device`` as stored, bytes for files; each
    batch converted to float32) or fresh samples."""
    if isinstance(dataset, ImageDataset):
        return TensorBatches(
            dataset.pixels, batch_size, generator, device, dataset.conditions, dataset.as_float
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
    "shapes": 16,
    "celeba": 64,
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
    "celeba": "the CelebA directory holding img_align_celeba/ and list_attr_celeba.txt",
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
    "shapes": 3,
    "celeba": 3,
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
    n: int | None = None,
    crop: int | None = None,
    seed: int = 0,
    attribute_file: str | Path | None = None,
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
    * ``folder``: ``path`` is a directory of images (sub-folders = classes); with
      ``attribute_file``, a CSV ``filename,attr1,...`` of 0/1 attributes of images under it
      (:func:`wgan.data.attribute_files.load_attribute_folder`).
    * ``shapes``: the embedded coloured shapes with 9 attributes (:mod:`wgan.data.shapes`):
      ``n`` images (default 12,000) drawn from ``seed``; no path.
    * ``celeba``: ``path`` is the CelebA directory (Liu et al. 2015): the first ``n`` faces
      with their 40 attributes, centre crop ``crop`` (default 140), RGB
      (:func:`wgan.data.attribute_files.load_celeba`).

    ``resolution`` defaults to 16 for the digits and shapes, 32 for MNIST/CIFAR, 64 for CelebA,
    for ``idx`` the smallest of :data:`RESOLUTIONS` at least the native size, and for a folder
    to what its files say (the most common side, rounded to a supported power of two).
    ``channels`` may only restate the dataset's own channel count, except for ``folder`` (1 =
    grayscale, 3 = RGB; default: RGB if any file is stored in colour, else grayscale).
    ``split`` is ``'train'`` or ``'test'`` (file-based datasets with a test set).

    Raises:
        ConfigError: unknown name, bad resolution/channels/split, or ``data.path`` unset.
        DataError: a missing, corrupt or malformed data file (the message names it).
    """
    key = _canonical_name(name)
    if split not in ("train", "test"):
        raise ConfigError(f"data split must be 'train' or 'test', got {split!r}")
    if crop is not None and key != "celeba":
        raise ConfigError(f"data.crop is for data.name=celeba, not {key!r}")
    if attribute_file is not None and key != "folder":
        raise ConfigError(f"data.attribute_file is for data.name=folder, not {key!r}")

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

    if key in ("digits", "stacked_digits", "shapes"):
        if path is not None:
            where = "is drawn in code" if key == "shapes" else "ships with scikit-learn"
            raise ConfigError(
                f"dataset {key!r} {where}; data.path must not be set (got {str(path)!r})"
            )
        if split != "train":
            raise ConfigError(
                f"dataset {key!r} has no separate test split (use ImageDataset.split for "
                f"held-out data); data.split must be 'train'"
            )
        assert res is not None
        if key == "shapes":
            return make_shapes(n, seed, res)
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
    if split != "train":
        raise ConfigError(f"dataset {key!r} has no test split; data.split must be 'train'")
    if key == "celeba":
        return load_celeba(path, res, crop, n)
    if attribute_file is not None:
        return load_attribute_folder(path, attribute_file, res, channels, n)
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
