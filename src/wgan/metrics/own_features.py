"""A small feature network trained on a run's own real images: a feature space for a Fréchet
distance and precision / recall on any image data, with nothing to download.

Inception-v3 features (FID, Heusel et al. 2017, arXiv 1706.08500) need a weights file and mean
little on small, simple or grayscale images; the digits have their own classifier
(:mod:`wgan.metrics.classifier`). For any other image data this module trains, once per dataset
and cached like that classifier, a small CNN on the data's own training images:

* with classes (an image folder's sub-folders, MNIST, CIFAR labels): a classifier, trained with
  cross-entropy; its features are the penultimate layer (as the digits classifier's);
* without classes: an autoencoder (Hinton & Salakhutdinov 2006, "Reducing the Dimensionality of
  Data with Neural Networks", Science 313), trained to reconstruct its input under mean squared
  error; its features are the code.

Its features are not Inception's: Fréchet distances in this space compare runs on the same data
only, never with published FIDs.

Data: the images are split deterministically (:func:`heldout_split`) into a training part, on
which the network trains, and a held-out part, which it never sees and which gives the metrics'
real-vs-real floor (:mod:`wgan.metrics.own_metrics`).

Training is deterministic (seeded, one CPU thread, inside ``torch.random.fork_rng`` so that the
caller's RNG is untouched) and takes seconds at 32x32. The weights are cached as safetensors
under ``<cache>/wgan/features-{kind}-r{R}c{C}-{digest}-v{V}.safetensors``, where the digest is a
SHA-256 of the images, their labels and the split (:func:`data_digest`).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wgan.errors import WganError
from wgan.metrics.classifier import cache_root, save_module_atomic

__all__ = [
    "FEATURES_VERSION",
    "HOLDOUT_SEED",
    "MIN_IMAGES",
    "OwnFeatureNet",
    "data_digest",
    "feature_cache_path",
    "features",
    "get_feature_net",
    "heldout_split",
    "train_feature_net",
]

FEATURES_VERSION = 1
"""Bumped whenever the architecture, the recipe or the split changes (part of the file name)."""

HOLDOUT_SEED = 20250425
"""Seed of the permutation that splits a dataset into training and held-out images."""

MIN_IMAGES = 50
"""The fewest images a dataset needs for a feature network and a held-out floor (25 held out)."""

MAX_HOLDOUT = 2000
"""The most images held out (:func:`heldout_split`)."""

FEATURE_DIM = 32
_WIDTHS = (16, 32)  # the conv3x3 stages at 16x16 and below (as the digits classifier's)
_BATCH = 64
_LR = 2e-3
_SLOPE = 0.2  # LeakyReLU: a plain ReLU autoencoder here can die into a constant output
_SEED = 0


def heldout_split(n: int) -> tuple[Tensor, Tensor]:
    """Deterministic ``(train, held_out)`` index sets of a dataset of ``n`` images, chosen by
    ``torch.randperm`` on a private generator seeded with :data:`HOLDOUT_SEED`; both in a random
    order of their own (so that any prefix of either is a uniform sample, whatever the order of
    the files).

    Held out: a fifth of the images, but half of a small dataset, up to 500 (the floor's sets
    are then not too small for a Fréchet distance), and at most :data:`MAX_HOLDOUT`:
    ``min(MAX_HOLDOUT, max(n // 5, min(n // 2, 500)))`` (60 images: 30; 600: 300; 5,000: 1,000;
    50,000: 2,000).
    """
    if n < MIN_IMAGES:
        raise WganError(f"a held-out split needs at least {MIN_IMAGES} images, got {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(HOLDOUT_SEED))
    n_hold = min(MAX_HOLDOUT, max(n // 5, min(n // 2, 500)))
    return perm[n_hold:], perm[:n_hold]


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


class OwnFeatureNet(nn.Module):
    """A small CNN on ``(B, C, R, R)`` images in [-1, 1] (R in 8, 16, 32, 64; C in 1, 3).

    Encoder: for R > 16 stride-2 ``conv4x4(16) -> LReLU`` down to 16x16; then ``conv3x3 ->
    max-pool 2x2 -> LReLU`` stages (widths 16, 32) down to 4x4 (R = 8: the second conv at 4x4,
    unpooled); then ``Linear(32 * 16, 32)``; LReLU is LeakyReLU(0.2). With ``n_classes`` >= 2
    it is a classifier: the 32-d features are that layer after a ReLU and
    ``Linear(32, n_classes)`` gives logits. Without, it is an autoencoder: the features are the
    linear 32-d code, and the decoder is ``Linear(32, 32 * 16) -> LReLU`` and transposed
    convolutions (4x4, stride 2; 16 channels and LReLU, the last to C channels, linear) up to R.

    Attributes:
        channels, resolution, n_classes: the shape it takes and its classes (0: autoencoder).
        quality: its held-out accuracy (classifier) or reconstruction RMSE (autoencoder), set
            at training time.
    """

    feature_dim = FEATURE_DIM

    def __init__(self, channels: int, resolution: int, n_classes: int = 0) -> None:
        super().__init__()
        if channels not in (1, 3) or resolution not in (8, 16, 32, 64):
            raise WganError(
                f"OwnFeatureNet takes C in (1, 3), R in (8..64); got {channels}, {resolution}"
            )
        self.channels, self.resolution = int(channels), int(resolution)
        self.n_classes = int(n_classes) if n_classes >= 2 else 0
        self.quality: float | None = None
        stem: list[nn.Module] = []
        c_in, size = self.channels, self.resolution
        while size > 16:
            stem += [nn.Conv2d(c_in, _WIDTHS[0], 4, stride=2, padding=1), nn.LeakyReLU(_SLOPE)]
            c_in, size = _WIDTHS[0], size // 2
        self.stem = nn.Sequential(*stem)
        self.convs = nn.ModuleList()
        self._pool: list[bool] = []
        for w in _WIDTHS:
            self.convs.append(nn.Conv2d(c_in, w, 3, padding=1))
            self._pool.append(size > 4)
            size, c_in = (size // 2 if size > 4 else size), w
        self.fc = nn.Linear(c_in * size * size, FEATURE_DIM)
        if self.n_classes:
            self.head: nn.Module = nn.Linear(FEATURE_DIM, self.n_classes)
        else:
            up: list[nn.Module] = [nn.Linear(FEATURE_DIM, c_in * 16), nn.LeakyReLU(_SLOPE)]
            self.decode_in = nn.Sequential(*up)
            layers: list[nn.Module] = []
            size, width = 4, c_in
            while size < self.resolution:  # R >= 8: at least one
                last = 2 * size >= self.resolution
                out = self.channels if last else 16
                layers.append(nn.ConvTranspose2d(width, out, 4, stride=2, padding=1))
                if not last:  # a linear output: a tanh saturates at the white background
                    layers.append(nn.LeakyReLU(_SLOPE))
                size, width = 2 * size, out
            self.head = nn.Sequential(*layers)

    @property
    def kind(self) -> str:
        return "classifier" if self.n_classes else "autoencoder"

    def _check(self, x: Tensor) -> None:
        c, r = self.channels, self.resolution
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, r, r):
            raise WganError(f"the feature network takes (B, {c}, {r}, {r}), got {tuple(x.shape)}")

    def features(self, x: Tensor) -> Tensor:
        """``(B, C, R, R) -> (B, 32)``: the penultimate layer (classifier) or the code."""
        self._check(x)
        h = self.stem(x)
        for conv, pool in zip(self.convs, self._pool, strict=True):
            h = conv(h)
            h = F.leaky_relu(F.max_pool2d(h, 2) if pool else h, _SLOPE)
        code = self.fc(h.flatten(1))
        return F.relu(code) if self.n_classes else code

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, K)`` (classifier) or the reconstruction ``(B, C, R, R)``."""
        f = self.features(x)
        if self.n_classes:
            return self.head(f)
        h = self.decode_in(f).reshape(len(f), -1, 4, 4)
        return self.head(h)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _as_float(dataset: Any, idx: Tensor) -> Tensor:
    """The images at ``idx`` as float32 in [-1, 1] at the dataset's resolution, on the CPU."""
    pixels = dataset.pixels
    return dataset.as_float(pixels[idx.to(pixels.device)]).float().cpu()


def _shift(x: Tensor, s: int, gen: torch.Generator) -> Tensor:
    """Translate each image by an integer offset in [-s, s]^2, repeating the edge pixels."""
    b, _, r, _ = x.shape
    padded = F.pad(x, (s, s, s, s), mode="replicate")  # (B, C, R+2s, R+2s)
    dy = torch.randint(0, 2 * s + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * s + 1, (b,), generator=gen)
    ar = torch.arange(r)
    rows = (dy[:, None] + ar[None, :])[:, None, :, None]  # (B, 1, R, 1)
    cols = (dx[:, None] + ar[None, :])[:, None, None, :]  # (B, 1, 1, R)
    idx_b = torch.arange(b)[:, None, None, None]
    idx_c = torch.arange(x.shape[1])[None, :, None, None]
    return padded[idx_b, idx_c, rows, cols]  # (B, C, R, R)


def train_steps(n_train: int) -> int:
    """Optimiser steps of the recipe: 15 epochs of batches of 64, at least 300, at most 1,000."""
    return min(1000, max(300, 15 * math.ceil(n_train / _BATCH)))


@torch.no_grad()
def _quality(net: OwnFeatureNet, dataset: Any, idx: Tensor) -> float:
    """Held-out accuracy (classifier) or reconstruction RMSE in [-1, 1] units (autoencoder)."""
    hits, sq, count = 0.0, 0.0, 0
    for part in idx.split(512):
        x = _as_float(dataset, part)
        if net.n_classes:
            hits += float((net(x).argmax(1) == dataset.labels[part].cpu()).sum())
        else:
            sq += float(((net(x) - x) ** 2).sum())
        count += len(part)
    if net.n_classes:
        return hits / count
    return math.sqrt(sq / (count * net.channels * net.resolution**2))


def train_feature_net(dataset: Any) -> OwnFeatureNet:
    """Train an :class:`OwnFeatureNet` on the training part of :func:`heldout_split`.

    ``dataset``: an image dataset (``pixels``, ``as_float``, ``labels``, ``n_classes``,
    ``channels``, ``resolution``; :class:`wgan.data.images.ImageDataset`). A classifier when it
    has two classes or more, else an autoencoder. Recipe (version :data:`FEATURES_VERSION`):
    seed 0 inside ``torch.random.fork_rng``, one CPU thread, Adam (lr 2e-3, cosine decay to 0)
    for :func:`train_steps` steps of 64 images drawn with replacement, each translated by up to
    R/8 pixels (edges repeated). Returns the network in eval mode, ``quality`` set from the
    held-out images.
    """
    train_idx, hold_idx = heldout_split(len(dataset))
    n_classes = int(getattr(dataset, "n_classes", 0) or 0) if dataset.labels is not None else 0
    steps = train_steps(len(train_idx))
    with _one_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        gen = torch.Generator().manual_seed(_SEED)
        net = OwnFeatureNet(int(dataset.channels), int(dataset.resolution), n_classes)
        opt = torch.optim.Adam(net.parameters(), lr=_LR)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        s = max(1, net.resolution // 8)
        net.train()
        for _ in range(steps):
            j = train_idx[torch.randint(len(train_idx), (_BATCH,), generator=gen)]
            x = _shift(_as_float(dataset, j), s, gen)
            if net.n_classes:
                loss = F.cross_entropy(net(x), dataset.labels[j].cpu())
            else:
                loss = F.mse_loss(net(x), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        net.quality = _quality(net, dataset, hold_idx)
    return net


@torch.inference_mode()
def features(net: OwnFeatureNet, x: Tensor, batch_size: int = 1024) -> Tensor:
    """``net.features`` of ``(N, C, R, R)`` images in batches, float32 on the CPU."""
    was = net.training
    net.eval()
    try:
        return torch.cat(
            [net.features(x[i : i + batch_size].float()) for i in range(0, len(x), batch_size)]
        )
    finally:
        net.train(was)


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def data_digest(dataset: Any) -> str:
    """SHA-256 (hex) of what the network is trained on: the stored images, their labels, the
    resolution and channels they are read at, the split (seed and size) and the recipe's
    version."""
    h = hashlib.sha256()
    n_hold = len(heldout_split(len(dataset))[1]) if len(dataset) >= MIN_IMAGES else 0
    head = (
        f"v{FEATURES_VERSION} seed{HOLDOUT_SEED} hold{n_hold} r{int(dataset.resolution)} "
        f"c{int(dataset.channels)} {tuple(dataset.pixels.shape)} {dataset.pixels.dtype}"
    )
    h.update(head.encode())
    h.update(memoryview(np.ascontiguousarray(dataset.pixels.cpu().numpy())).cast("B"))
    if dataset.labels is not None:
        h.update(np.ascontiguousarray(dataset.labels.cpu().numpy().astype(np.int64)).tobytes())
    return h.hexdigest()


def feature_cache_path(
    dataset: Any, cache_dir: str | Path | None = None, digest: str | None = None
) -> Path:
    """``<cache>/wgan/features-{kind}-r{R}c{C}-{digest[:16]}-v{V}.safetensors``."""
    kind = "classifier" if dataset.labels is not None and dataset.n_classes >= 2 else "autoencoder"
    digest = digest or data_digest(dataset)
    name = f"features-{kind}-r{int(dataset.resolution)}c{int(dataset.channels)}-{digest[:16]}"
    return cache_root(cache_dir) / "wgan" / f"{name}-v{FEATURES_VERSION}.safetensors"


def _load(path: Path, dataset: Any, digest: str) -> OwnFeatureNet:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("digest") != digest or meta.get("version") != str(FEATURES_VERSION):
        raise ValueError("its metadata does not match this dataset")
    n_classes = int(meta.get("n_classes", "0"))
    net = OwnFeatureNet(int(dataset.channels), int(dataset.resolution), n_classes)
    net.load_state_dict(load_file(str(path)), strict=True)
    net.quality = float(meta["quality"])
    return net.eval()


def _save_atomic(net: OwnFeatureNet, path: Path, digest: str, seconds: float) -> None:

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "digest": digest,
        "version": str(FEATURES_VERSION),
        "n_classes": str(net.n_classes),
        "quality": repr(net.quality),
        "train_seconds": f"{seconds:.2f}",
        "torch_version": torch.__version__,
    }
    save_module_atomic(net, path, meta)


def get_feature_net(
    dataset: Any, cache_dir: str | Path | None = None, digest: str | None = None
) -> OwnFeatureNet:
    """The cached feature network of ``dataset`` (CPU, eval mode), trained if needed.

    The cache is :func:`feature_cache_path` (``cache_dir`` or ``$WGAN_CACHE_DIR`` or
    ``$XDG_CACHE_HOME`` or ``~/.cache``, as the digits classifier's). An absent file is trained
    (:func:`train_feature_net`) and saved atomically; an unreadable one (corrupt, foreign, of
    other data) is retrained and overwritten with a warning; a cache that cannot be written
    leaves the trained network in use, with a warning.
    """
    digest = digest or data_digest(dataset)
    path = feature_cache_path(dataset, cache_dir, digest)
    if path.exists():
        try:
            return _load(path, dataset, digest)
        except Exception as e:  # noqa: BLE001 - any unreadable cache file means: retrain it
            warnings.warn(
                f"feature network cache {path} is unreadable ({type(e).__name__}: {e}); "
                "retraining it",
                stacklevel=2,
            )
    t0 = time.perf_counter()
    net = train_feature_net(dataset)
    try:
        _save_atomic(net, path, digest, time.perf_counter() - t0)
    except OSError as e:
        warnings.warn(f"could not write the feature network cache {path}: {e}", stacklevel=2)
    return net
