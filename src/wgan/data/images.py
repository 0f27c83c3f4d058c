"""Image datasets: a finite set of real images in ``[-1, 1]``, and the helpers its loaders share.

Every image dataset is a fixed set of ``N`` square images with optional integer ``labels``;
what the rest of the package sees are ``(n, C, R, R)`` float32 batches with values in
``[-1, 1]`` (the usual range of a ``tanh`` generator output as in DCGAN, Radford et al. 2016,
arXiv 1511.06434). Images read from files stay in memory as the bytes they are (``pixels``,
uint8, at the file's own size: one byte per value instead of four): a byte
``b ∈ {0, ..., 255}`` becomes ``x = b / 127.5 - 1`` (so ``b = (x + 1) * 127.5`` recovers it
exactly), and the resize to the dataset's resolution, batch by batch, only for the images
drawn (:meth:`ImageDataset.as_float`). Both are computed image by image, so a batch holds the
same floats as converting and resizing the whole set at once would give. Images made in code
(the scikit-learn digits) are stored as float32 already at their resolution.

Sampling follows the toy datasets' convention (:mod:`wgan.data.toy`): the random indices come
*only* from the ``torch.Generator`` passed in (torch's global generator when ``None``), drawn
with ``torch.randint`` on the generator's device, so a re-seeded generator replays the same
stream of real batches. Draws are i.i.d. uniform over the ``N`` stored images (with
replacement), i.e. samples of the empirical distribution ``(1/N) Σ_i δ_{x_i}``.

This module is the base of the image datasets and imports none of their loaders: those
(:mod:`wgan.data.image_files` for local files, :mod:`wgan.data.digits` for the data shipped
inside scikit-learn; nothing is downloaded) build on it, and the registry above them,
:func:`wgan.data.build.make_image_dataset`, maps each of :data:`IMAGE_DATASETS` to a loader.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import Tensor

from wgan.data.attributes import AttributeSchema
from wgan.errors import ConfigError, DataError, WganError

__all__ = [
    "IMAGE_DATASETS",
    "RESOLUTIONS",
    "ImageDataset",
    "check_count",
    "check_resolution",
    "draw_indices",
    "resize_images",
]

#: Side lengths an image dataset may be resized to (powers of two the image nets handle).
RESOLUTIONS: tuple[int, ...] = (8, 16, 32, 64)

#: Names of the image datasets: what :func:`wgan.data.build.make_image_dataset` accepts.
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
    "shapes",
    "celeba",
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


def check_count(n: object) -> int:
    """Return ``n`` when it is a valid number of samples (an int >= 0), else raise ConfigError."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ConfigError(f"number of samples must be a non-negative integer, got {n!r}")
    return int(n)  # numpy integers too


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
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ConfigError(f"resolution must be a positive integer, got {resolution!r}")
    if images.shape[-2:] == (resolution, resolution):
        return images
    if images.shape[-1] == 0 or images.shape[-2] == 0:
        raise WganError(f"cannot resize empty images ({images.shape[-2]}x{images.shape[-1]})")
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


def draw_indices(n: int, size: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    """``torch.randint(n, size)`` on the generator's device (CPU for the global generator)."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise WganError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
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

    ``images`` (``(N, C, H, W)``, square) is either uint8 bytes, kept as they are and converted
    per batch (see the module docstring), or a floating tensor in ``[-1, 1]``, stored as
    float32. ``resolution`` (bytes only; default ``H``) is the side length batches are resized
    to (:func:`resize_images`).

    Attributes:
        pixels: the images as stored, ``(N, C, H, W)``: uint8 bytes or float32 in ``[-1, 1]``.
        images: every image as one ``(N, C, R, R)`` float32 tensor in ``[-1, 1]`` (a property:
            for bytes, a float copy built on each access; batches use :meth:`as_float`).
        labels: ``(N,)`` int64 tensor of class ids in ``[0, n_classes)``, or ``None``.
        n_classes: number of classes (0 when unlabeled).
        name: registry name (``'mnist'``, ``'cifar10'``, ...).
        source: where the pixels came from: a file/directory path, or ``'sklearn'``.
        class_names: for labelled image folders, the sub-folder name of each class; else None.
        attributes: ``(N, k)`` float32 attribute vectors in {0, 1} (one-hot groups and flags,
            :class:`wgan.data.attributes.AttributeSchema`), or ``None``.
        attribute_schema: the layout of ``attributes``, or ``None``.
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
        resolution: int | None = None,
        attributes: Tensor | None = None,
        attribute_schema: AttributeSchema | None = None,
    ) -> None:
        if not isinstance(images, Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images)
            raise WganError(f"{name}: images must be a (N, C, H, W) tensor, got {shape}")
        n, c, h, w = images.shape
        if h != w:
            raise DataError(f"{name} ({source}): images must be square, got {h}x{w}")
        if n == 0:
            raise DataError(f"{name} ({source}): the dataset holds no images")
        if h == 0:
            raise DataError(f"{name} ({source}): the images are empty (0x0 pixels)")
        if c < 1:
            raise WganError(f"{name}: images must have at least one channel")
        if isinstance(n_classes, bool) or not isinstance(n_classes, int):
            raise WganError(f"{name}: n_classes must be an integer, got {n_classes!r}")
        # (N, C, H, W): bytes as they are (converted per batch), anything else as float32
        self.pixels = images if images.dtype == torch.uint8 else images.to(torch.float32)
        if resolution is None:
            resolution = h
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
            raise ConfigError(f"{name}: resolution must be a positive integer, got {resolution!r}")
        if resolution != h and images.dtype != torch.uint8:
            raise WganError(
                f"{name}: float images are stored at their resolution ({h}), got resolution="
                f"{resolution} (resize them first, or pass uint8 bytes)"
            )
        self._resolution = int(resolution)
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
        self.attributes, self.attribute_schema = _checked_attributes(
            attributes, attribute_schema, n, labels is not None, f"{name} ({source})"
        )

    @property
    def conditions(self) -> Tensor | None:
        """What a conditional GAN conditions on: the (N, k) attribute vectors when the data has
        them, else the (N,) class labels, else None."""
        return self.attributes if self.attributes is not None else self.labels

    # -- shape -----------------------------------------------------------------------------

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def resolution(self) -> int:
        return self._resolution

    @property
    def images(self) -> Tensor:
        """Every image, ``(N, C, R, R)`` float32 in ``[-1, 1]``.

        Stored bytes are converted chunk by chunk into a new float tensor (4 bytes per value) at
        every access; training and sampling never call this, they convert only the images they
        draw (:meth:`as_float`).
        """
        if self.pixels.dtype != torch.uint8:
            return self.pixels
        return torch.cat([self.as_float(part) for part in self.pixels.split(_RESIZE_CHUNK)])

    def as_float(self, pixels: Tensor) -> Tensor:
        """Stored images ``(n, C', H, W)`` (e.g. ``pixels[idx]``) as float32 in ``[-1, 1]`` at
        the dataset's resolution, ``(n, C', R, R)``, on the device they are on.

        Bytes become ``b / 127.5 - 1`` and are then resized when ``H != R``
        (:func:`resize_images`); float images are returned as they are.
        """
        if pixels.dtype != torch.uint8:
            return pixels
        x = pixels.to(torch.float32).div_(127.5).sub_(1.0)  # the formula of bytes_to_unit
        return resize_images(x, self._resolution)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return (self.channels, self.resolution, self.resolution)

    @property
    def dim(self) -> int:
        """``C * H * W``, the dimension of a flattened image."""
        return self.channels * self.resolution * self.resolution

    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, n={len(self)}, shape={self.shape}, "
            f"n_classes={self.n_classes}, source={self.source!r})"
        )

    # -- sampling --------------------------------------------------------------------------

    def _gather(self, idx: Tensor, device: torch.device | str | None) -> Tensor:
        out = self.as_float(self.pixels[idx.to(self.pixels.device)])
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
        n = check_count(n)
        idx = draw_indices(len(self), (n,), generator)  # (n,)
        return self._gather(idx, device)

    def sample_with_labels(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Like :meth:`sample` (same index draw, same images) plus their :attr:`conditions`:
        the ``(n,)`` int64 labels, or the ``(n, k)`` attribute vectors of attribute data.

        For an unlabeled dataset the labels are ``None``.
        """
        n = check_count(n)
        idx = draw_indices(len(self), (n,), generator)  # (n,)
        images = self._gather(idx, device)
        cond = self.conditions
        if cond is None:
            return images, None
        labels = cond[idx.to(cond.device)]
        return images, labels if device is None else labels.to(device)

    # -- derived datasets ------------------------------------------------------------------

    def subset(self, indices: Tensor, name: str | None = None) -> ImageDataset:
        """The images (and labels) at ``indices``, as a new dataset."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return ImageDataset(
            self.pixels[idx.to(self.pixels.device)],
            None if self.labels is None else self.labels[idx.to(self.labels.device)],
            self.n_classes,
            name=name or self.name,
            source=self.source,
            class_names=self.class_names,
            resolution=self._resolution,
            attributes=None if self.attributes is None else self.attributes[idx],
            attribute_schema=self.attribute_schema,
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
        """A copy at ``resolution`` (see :func:`resize_images`); ``self`` if already there.

        Stored bytes are shared, not copied: the copy resizes each batch it draws.
        """
        resolution = check_resolution(resolution)
        if resolution == self.resolution:
            return self
        if self.pixels.dtype == torch.uint8:
            out = ImageDataset.__new__(ImageDataset)
            out.__dict__.update(self.__dict__)
            out._resolution = resolution
            return out
        return ImageDataset(
            resize_images(self.pixels, resolution),
            self.labels,
            self.n_classes,
            name=self.name,
            source=self.source,
            class_names=self.class_names,
            attributes=self.attributes,
            attribute_schema=self.attribute_schema,
        )

    def to(self, device: torch.device | str) -> ImageDataset:
        """A dataset whose images (and labels) live on ``device`` (batches then gather there)."""
        out = ImageDataset.__new__(ImageDataset)
        out.__dict__.update(self.__dict__)
        out.pixels = self.pixels.to(device)
        out.labels = None if self.labels is None else self.labels.to(device)
        out.attributes = None if self.attributes is None else self.attributes.to(device)
        return out


def _checked_attributes(
    attributes: Tensor | None,
    schema: AttributeSchema | None,
    n: int,
    has_labels: bool,
    where: str,
) -> tuple[Tensor | None, AttributeSchema | None]:
    """(N, k) float32 attribute vectors checked against their schema, or (None, None)."""
    if attributes is None:
        if schema is not None:
            raise WganError(f"{where}: an attribute schema without attribute vectors")
        return None, None
    if schema is None:
        raise WganError(f"{where}: attribute vectors need their schema")
    if has_labels:
        raise WganError(f"{where}: a dataset holds class labels or attribute vectors, not both")
    attributes = torch.as_tensor(attributes).to(torch.float32)
    if attributes.ndim != 2 or attributes.shape[0] != n:
        raise DataError(f"{where}: {tuple(attributes.shape)} attribute vectors for {n} images")
    try:
        schema.check(attributes.cpu(), what=f"{where} attributes")
    except ConfigError as e:
        raise DataError(str(e)) from None
    return attributes, schema
