"""Image datasets: a finite set of real images in ``[-1, 1]`` and the registry that loads them.

Every image dataset is a fixed tensor ``images`` of shape ``(N, C, H, W)`` (float32, square
``H == W``, values in ``[-1, 1]``, the usual range of a ``tanh`` generator output as in DCGAN,
Radford et al. 2016, arXiv 1511.06434) with optional integer ``labels``. Pixels stored as
bytes ``b ∈ {0, ..., 255}`` map to ``x = b / 127.5 - 1`` (so ``b = (x + 1) * 127.5`` recovers
them exactly).

Sampling follows the toy datasets' convention (:mod:`wgan.data.toy`): the random indices come
*only* from the ``torch.Generator`` passed in (torch's global generator when ``None``), drawn
with ``torch.randint`` on the generator's device, so a re-seeded generator replays the same
stream of real batches. Draws are i.i.d. uniform over the ``N`` stored images (with
replacement), i.e. samples of the empirical distribution ``(1/N) Σ_i δ_{x_i}``.

Nothing here downloads: the registry (:func:`make_image_dataset`) reads local files
(:mod:`wgan.data.image_files`) or data shipped inside scikit-learn (:mod:`wgan.data.digits`).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from wgan.errors import ConfigError, DataError, WganError

if TYPE_CHECKING:  # pragma: no cover - only for annotations
    from wgan.data.digits import StackedDigits

__all__ = [
    "IMAGE_DATASETS",
    "RESOLUTIONS",
    "ImageDataset",
    "check_resolution",
    "make_image_dataset",
    "resize_images",
]

#: Side lengths an image dataset may be resized to (powers of two the image nets handle).
RESOLUTIONS: tuple[int, ...] = (8, 16, 32, 64)

#: Names accepted by :func:`make_image_dataset`.
IMAGE_DATASETS: tuple[str, ...] = (
    "digits",
    "stacked_digits",
    "mnist",
    "fashion_mnist",
    "stacked_mnist",
    "idx",
    "cifar10",
    "cifar100",
    "folder",
)

# Rows per chunk when resizing, so a 60,000-image set never needs a second full-size copy of
# intermediate buffers at once.
_RESIZE_CHUNK = 4096


# ----------------------------------------------------------------------------- helpers


def check_resolution(resolution: object, what: str = "resolution") -> int:
    """Return ``resolution`` as an int in :data:`RESOLUTIONS` or raise ConfigError."""
    if isinstance(resolution, float) and resolution.is_integer():
        resolution = int(resolution)  # 32.0 from a YAML/JSON config
    if isinstance(resolution, bool) or not isinstance(resolution, int):
        raise ConfigError(f"{what} must be one of {list(RESOLUTIONS)}, got {resolution!r}")
    if resolution not in RESOLUTIONS:
        raise ConfigError(f"{what} must be one of {list(RESOLUTIONS)}, got {resolution}")
    return resolution


def _check_count(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"number of samples must be a non-negative integer, got {n!r}")
    return n


def resize_images(images: Tensor, resolution: int) -> Tensor:
    """Resize ``(N, C, H, W)`` images to ``(N, C, R, R)`` (bilinear, antialiased).

    Uses ``F.interpolate(mode='bilinear', antialias=True, align_corners=False)``: when
    shrinking, the triangle filter is widened by the scale factor so every source pixel
    contributes (no aliasing of MNIST strokes when going 28 -> 8). All weights are non-negative
    and sum to one, so values stay in ``[-1, 1]``; the final clamp only removes float round-off.
    A tensor already at the target size is returned unchanged (exact pixels).
    """
    if images.ndim != 4:
        raise WganError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    if images.shape[-2:] == (resolution, resolution):
        return images
    out = []
    for chunk in images.split(_RESIZE_CHUNK):  # (b, C, H, W)
        r = F.interpolate(
            chunk.float(),
            size=(resolution, resolution),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        out.append(r.clamp_(-1.0, 1.0))  # (b, C, R, R)
    if not out:  # N == 0
        return images.new_zeros((0, images.shape[1], resolution, resolution))
    return torch.cat(out)


def _draw_indices(n: int, size: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    """``torch.randint(n, size)`` on the generator's device (CPU for the global generator)."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(n, size, generator=generator, device=gen_device)


def _split_permutation(n_total: int, n_holdout: int, seed: int) -> tuple[Tensor, Tensor]:
    """Deterministic (train, holdout) index sets, each sorted so file order is preserved."""
    if isinstance(n_holdout, bool) or not isinstance(n_holdout, int):
        raise ConfigError(f"n_holdout must be an integer, got {n_holdout!r}")
    if not 0 < n_holdout < n_total:
        raise ConfigError(
            f"n_holdout must be between 1 and {n_total - 1} (the dataset has {n_total} "
            f"images), got {n_holdout}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"split seed must be an integer, got {seed!r}")
    # A private CPU generator: the split never touches (or depends on) any global RNG state.
    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))
    holdout = perm[:n_holdout].sort().values
    train = perm[n_holdout:].sort().values
    return train, holdout


# ----------------------------------------------------------------------------- the dataset


class ImageDataset:
    """A finite set of real images, sampled uniformly with replacement.

    Attributes:
        images: ``(N, C, H, W)`` float32 tensor in ``[-1, 1]`` with ``H == W``.
        labels: ``(N,)`` int64 tensor of class ids in ``[0, n_classes)``, or ``None``.
        n_classes: number of classes (0 when unlabeled).
        name: registry name (``'mnist'``, ``'cifar10'``, ...).
        source: where the pixels came from: a file/directory path, or ``'sklearn'``.
        class_names: for labelled image folders, the sub-folder name of each class; else None.
        is_image: always True (the toy 2-D datasets have no such attribute).
    """

    is_image: bool = True

    def __init__(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        n_classes: int = 0,
        name: str = "images",
        source: str = "",
        class_names: list[str] | None = None,
    ) -> None:
        if not isinstance(images, Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images)
            raise WganError(f"{name}: images must be a (N, C, H, W) tensor, got {shape}")
        n, c, h, w = images.shape
        if h != w:
            raise DataError(f"{name} ({source}): images must be square, got {h}x{w}")
        if n == 0:
            raise DataError(f"{name} ({source}): the dataset holds no images")
        if c < 1:
            raise WganError(f"{name}: images must have at least one channel")
        self.images = images.to(torch.float32)  # (N, C, H, W)
        if labels is not None:
            labels = torch.as_tensor(labels).to(torch.int64).reshape(-1)  # (N,)
            if labels.shape[0] != n:
                raise DataError(f"{name} ({source}): {labels.shape[0]} labels for {n} images")
            if n_classes <= 0:
                raise WganError(f"{name}: labelled data needs n_classes > 0, got {n_classes}")
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi >= n_classes:
                raise DataError(
                    f"{name} ({source}): labels must lie in [0, {n_classes - 1}], "
                    f"found [{lo}, {hi}]"
                )
        else:
            n_classes = 0
        self.labels = labels
        self.n_classes = int(n_classes)
        self.name = name
        self.source = str(source)
        self.class_names = list(class_names) if class_names is not None else None

    # -- shape -----------------------------------------------------------------------------

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return (self.channels, self.resolution, self.resolution)

    @property
    def dim(self) -> int:
        """``C * H * W``, the dimension of a flattened image."""
        return self.channels * self.resolution * self.resolution

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, n={len(self)}, shape={self.shape}, "
            f"n_classes={self.n_classes}, source={self.source!r})"
        )

    # -- sampling --------------------------------------------------------------------------

    def _gather(self, idx: Tensor, device: torch.device | str | None) -> Tensor:
        out = self.images[idx.to(self.images.device)]
        return out if device is None else out.to(device)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """``n`` images drawn uniformly with replacement, shape ``(n, C, H, W)``, float32.

        The indices are ``torch.randint(N, (n,), generator=generator)`` on the generator's
        device; the batch is then moved to ``device`` if given.
        """
        n = _check_count(n)
        idx = _draw_indices(len(self), (n,), generator)  # (n,)
        return self._gather(idx, device)

    def sample_with_labels(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Like :meth:`sample` (same index draw, same images) plus the ``(n,)`` int64 labels.

        For an unlabeled dataset the labels are ``None``.
        """
        n = _check_count(n)
        idx = _draw_indices(len(self), (n,), generator)  # (n,)
        images = self._gather(idx, device)
        if self.labels is None:
            return images, None
        labels = self.labels[idx.to(self.labels.device)]
        return images, labels if device is None else labels.to(device)

    # -- derived datasets ------------------------------------------------------------------

    def subset(self, indices: Tensor, name: str | None = None) -> ImageDataset:
        """The images (and labels) at ``indices``, as a new dataset."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return ImageDataset(
            self.images[idx.to(self.images.device)],
            None if self.labels is None else self.labels[idx.to(self.labels.device)],
            self.n_classes,
            name=name or self.name,
            source=self.source,
            class_names=self.class_names,
        )

    def split(self, n_holdout: int, seed: int) -> tuple[ImageDataset, ImageDataset]:
        """Deterministic split into ``(train, holdout)`` with ``len(holdout) == n_holdout``.

        The held-out images are a uniformly random subset chosen by ``torch.randperm`` on a
        private generator seeded with ``seed`` (the same seed always gives the same split,
        independent of any global RNG); both parts keep the original order of the images.
        Held-out real data is what sample-quality metrics compare against, so the generator
        never trains on it.
        """
        train_idx, hold_idx = _split_permutation(len(self), n_holdout, seed)
        return self.subset(train_idx), self.subset(hold_idx)

    def resized(self, resolution: int) -> ImageDataset:
        """A copy at ``resolution`` (see :func:`resize_images`); ``self`` if already there."""
        resolution = check_resolution(resolution)
        if resolution == self.resolution:
            return self
        return ImageDataset(
            resize_images(self.images, resolution),
            self.labels,
            self.n_classes,
            name=self.name,
            source=self.source,
            class_names=self.class_names,
        )

    def to(self, device: torch.device | str) -> ImageDataset:
        """A dataset whose images (and labels) live on ``device`` (batches then gather there)."""
        out = ImageDataset.__new__(ImageDataset)
        out.__dict__.update(self.__dict__)
        out.images = self.images.to(device)
        out.labels = None if self.labels is None else self.labels.to(device)
        return out


# ----------------------------------------------------------------------------- registry

_DEFAULT_RESOLUTION = {
    "digits": 16,
    "stacked_digits": 16,
    "mnist": 32,
    "fashion_mnist": 32,
    "stacked_mnist": 32,
    "cifar10": 32,
    "cifar100": 32,
    "folder": 64,
}

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

    ``resolution`` defaults to 16 for the digits, 32 for MNIST/CIFAR, 64 for folders, and for
    ``idx`` the smallest of :data:`RESOLUTIONS` at least the native size. ``channels`` may only
    restate the dataset's own channel count, except for ``folder`` (1 = grayscale, 3 = RGB,
    default 3). ``split`` is ``'train'`` or ``'test'`` (file-based datasets with a test set).

    Raises:
        ConfigError: unknown name, bad resolution/channels/split, or ``data.path`` unset.
        DataError: a missing, corrupt or malformed data file (the message names it).
    """
    from wgan.data.digits import StackedDigits, load_digits_dataset
    from wgan.data.image_files import load_cifar, load_idx, load_image_folder, load_mnist_dir

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
    assert res is not None
    return load_image_folder(path, res, channels if channels is not None else 3)


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
