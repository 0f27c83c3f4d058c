"""The scikit-learn handwritten digits, and the Stacked-MNIST protocol built on them.

``load_digits_dataset`` reads ``sklearn.datasets.load_digits`` (the UCI optical-recognition
digits shipped inside scikit-learn, so nothing is downloaded): 1,797 images of 8x8 pixels with
values 0..16 and labels 0..9. A pixel ``v`` maps to ``x = v / 16 * 2 - 1 ∈ [-1, 1]`` before any
resize.

``StackedDigits`` is the mode-counting benchmark of Metz et al. 2017 ("Unrolled GANs",
arXiv 1611.02163) and Srivastava et al. 2017 ("VEEGAN", arXiv 1705.07761), there built on
MNIST: a sample stacks three independently drawn digit images as its three colour channels.
With 10 digit classes that gives ``10³ = 1000`` modes, identified by the label
``100 * d0 + 10 * d1 + d2`` where ``d_k`` is the class of the digit in channel ``k``. The real
distribution puts mass ``p(d0) p(d1) p(d2)`` on each mode (almost uniform here), so a generator
that covers few of the 1,000 labels, or covers them unevenly, is mode-collapsed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wgan.data.images import (
    ImageDataset,
    check_count,
    check_resolution,
    draw_indices,
    resize_images,
)
from wgan.errors import ConfigError, WganError

__all__ = ["StackedDigits", "load_digits_dataset"]


def load_digits_dataset(resolution: int = 8) -> ImageDataset:
    """The 1,797 sklearn digits as a 1-channel :class:`ImageDataset` at ``resolution``.

    ``resolution`` is one of 8 (native), 16, 32, 64; larger sizes are bilinear upsamplings
    (``F.interpolate(..., antialias=True)``) of the ``[-1, 1]``-scaled 8x8 images.
    ``n_classes`` is 10 and ``source`` is ``'sklearn'``.
    """
    resolution = check_resolution(resolution)
    from sklearn.datasets import load_digits  # reads the CSV shipped with scikit-learn

    bunch = load_digits()
    pix = torch.from_numpy(bunch.images).to(torch.float32)  # (1797, 8, 8), values 0..16
    images = (pix / 16.0 * 2.0 - 1.0).unsqueeze(1)  # (1797, 1, 8, 8) in [-1, 1]
    images = resize_images(images, resolution)  # (1797, 1, R, R)
    labels = torch.from_numpy(bunch.target).to(torch.int64)  # (1797,)
    return ImageDataset(images, labels, 10, name="digits", source="sklearn")


class StackedDigits:
    """Three random 1-channel images stacked as the RGB channels: ``K³`` modes (``K = 10``).

    A *generative* dataset: each sample draws three independent indices ``i0, i1, i2``
    uniformly from the base images (with replacement) and returns
    ``concat(base[i0], base[i1], base[i2])`` along channels, shape ``(3, R, R)``, with label
    ``d0 * K² + d1 * K + d2`` (``= 100 d0 + 10 d1 + d2`` for digits).

    Attributes:
        base: the 1-channel labelled :class:`ImageDataset` the channels are drawn from.
        name, source: ``'stacked_digits'`` (or as given) and the base's source.
        n_classes: ``K³`` (1000 for digits).
        is_image: True.

    ``len(self)`` is the number of *base* images (the set of distinct samples is ``N³``).
    """

    is_image: bool = True

    def __init__(self, base: ImageDataset, name: str = "stacked_digits") -> None:
        if not isinstance(base, ImageDataset):
            raise WganError(f"StackedDigits needs an ImageDataset base, got {type(base)}")
        if base.channels != 1:
            raise ConfigError(
                f"StackedDigits needs a 1-channel base dataset, {base.name!r} has "
                f"{base.channels} channels"
            )
        if base.labels is None or base.n_classes <= 0:
            raise ConfigError(f"StackedDigits needs a labelled base dataset, {base.name!r} is not")
        self.base = base
        self.name = name
        self.source = base.source
        self.n_classes = base.n_classes**3

    @property
    def channels(self) -> int:
        return 3

    @property
    def resolution(self) -> int:
        return self.base.resolution

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.resolution, self.resolution)

    @property
    def dim(self) -> int:
        return 3 * self.resolution * self.resolution

    def __len__(self) -> int:
        return len(self.base)

    def __repr__(self) -> str:
        return (
            f"StackedDigits(name={self.name!r}, base={self.base.name!r} n={len(self.base)}, "
            f"shape={self.shape}, n_classes={self.n_classes})"
        )

    def _draw(
        self, n: int, generator: torch.Generator | None, device: torch.device | str | None
    ) -> tuple[Tensor, Tensor]:
        n = check_count(n)
        idx = draw_indices(len(self.base), (n, 3), generator)  # (n, 3): one index per channel
        idx = idx.to(self.base.pixels.device)
        stored = self.base.pixels[idx].squeeze(2)  # (n, 3, 1, H, W) -> (n, 3, H, W), as stored
        images = self.base.as_float(stored)  # (n, 3, R, R) float32, channel by channel
        assert self.base.labels is not None
        d = self.base.labels.to(idx.device)[idx]  # (n, 3) digit class per channel
        k = self.base.n_classes
        labels = d[:, 0] * (k * k) + d[:, 1] * k + d[:, 2]  # (n,)
        if device is not None:
            images, labels = images.to(device), labels.to(device)
        return images, labels

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """``n`` stacked samples ``(n, 3, R, R)``; indices by ``torch.randint`` on ``generator``."""
        return self._draw(n, generator, device)[0]

    def sample_with_labels(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Like :meth:`sample` (same draw) plus the ``(n,)`` int64 mode labels."""
        return self._draw(n, generator, device)

    def split(self, n_holdout: int, seed: int) -> tuple[StackedDigits, StackedDigits]:
        """Split the *base* images (:meth:`ImageDataset.split`) and stack each part."""
        train, hold = self.base.split(n_holdout, seed)
        return StackedDigits(train, self.name), StackedDigits(hold, self.name)

    def to(self, device: torch.device | str) -> StackedDigits:
        """A copy whose base images live on ``device``."""
        return StackedDigits(self.base.to(device), self.name)
