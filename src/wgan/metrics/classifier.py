"""A small, deterministic CNN digit classifier for sample-quality metrics on the sklearn digits.

The classifier plays the role that Inception-v3 plays for natural images (Salimans et al. 2016,
"Improved Techniques for Training GANs", arXiv 1606.03498; Heusel et al. 2017, "GANs Trained
by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", arXiv 1706.08500): its
predicted labels measure class coverage (mode collapse) and its penultimate features give a
Fréchet distance and precision / recall on a domain where Inception features mean little.

Data: the 1,797 8×8 handwritten digits of the UCI "Optical Recognition of Handwritten Digits"
set as shipped by scikit-learn (``sklearn.datasets.load_digits``, embedded in the package, no
download). Pixel values 0..16 are mapped to [-1, 1] by ``v / 16 · 2 − 1`` and resized to the
requested resolution R with antialiased bilinear interpolation. A fixed permutation
(:data:`DIGITS_HOLDOUT_SEED`) splits them into 1,500 training and 297 held-out digits; the
held-out digits are the "real" reference of the metrics.

Training is deterministic (seeded, one CPU thread, run inside ``torch.random.fork_rng`` so the
caller's global RNG is untouched) and takes a few seconds; the weights are cached as
safetensors under ``<cache>/wgan/digits-classifier-r{R}-v1.safetensors`` with the held-out
accuracy in the file's metadata.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wgan.errors import WganError

__all__ = [
    "CLASSIFIER_VERSION",
    "DIGITS_HOLDOUT_SEED",
    "DIGITS_N_TRAIN",
    "DigitClassifier",
    "cache_root",
    "classifier_accuracy",
    "classifier_cache_path",
    "digits_split",
    "get_digit_classifier",
    "load_digits_images",
    "train_digit_classifier",
]

DIGITS_HOLDOUT_SEED = 20240917
"""Seed of the fixed permutation that splits the 1,797 digits into train / held-out."""

DIGITS_N_TRAIN = 1500
"""Number of training digits; the remaining 297 are the held-out (test) split."""

CLASSIFIER_VERSION = 1
"""Bumped whenever the architecture or the training recipe changes (part of the file name)."""

SUPPORTED_RESOLUTIONS = (8, 16, 32, 64)

# Training recipe (fixed: part of version 1).
_TRAIN_SEED = 0
_EPOCHS = 30
_BATCH = 50
_LR = 2e-3


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def _check_resolution(resolution: int) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        raise WganError(f"digit resolution must be an int, got {resolution!r}")
    if int(resolution) not in SUPPORTED_RESOLUTIONS:
        raise WganError(
            f"digit resolution must be one of {list(SUPPORTED_RESOLUTIONS)}, got {resolution}"
        )
    return int(resolution)


@functools.lru_cache(maxsize=8)
def _digits_cached(resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits  # lazy: sklearn is slow to import

    d = load_digits()
    x = torch.from_numpy(np.asarray(d.images, dtype=np.float32))  # (1797, 8, 8), values 0..16
    x = (x / 16.0 * 2.0 - 1.0).unsqueeze(1)  # (1797, 1, 8, 8) in [-1, 1]
    if resolution != 8:
        x = F.interpolate(
            x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
        )
        x = x.clamp_(-1.0, 1.0)  # (1797, 1, R, R)
    y = torch.from_numpy(np.asarray(d.target, dtype=np.int64))  # (1797,)
    return x.contiguous(), y


def load_digits_images(resolution: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 sklearn digits as ``(images (N, 1, R, R) float32 in [-1, 1], labels (N,))``.

    Pixels ``v ∈ {0..16}`` become ``v / 16 · 2 − 1``; for R ≠ 8 the images are resized with
    ``F.interpolate(mode="bilinear", antialias=True, align_corners=False)``.
    """
    x, y = _digits_cached(_check_resolution(resolution))
    return x.clone(), y.clone()


def digits_split(
    resolution: int = 16,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed train / held-out split of the sklearn digits at resolution R.

    A permutation drawn with ``numpy.random.default_rng(DIGITS_HOLDOUT_SEED)`` puts the first
    :data:`DIGITS_N_TRAIN` (1,500) digits in the training split and the other 297 in the
    held-out split; the held-out digits are the "real" reference of the digit metrics.

    Returns:
        ``(x_train (1500, 1, R, R), y_train (1500,), x_test (297, 1, R, R), y_test (297,))``,
        images float32 in [-1, 1], labels int64.
    """
    x, y = load_digits_images(resolution)
    perm = torch.from_numpy(np.random.default_rng(DIGITS_HOLDOUT_SEED).permutation(x.shape[0]))
    tr, te = perm[:DIGITS_N_TRAIN], perm[DIGITS_N_TRAIN:]
    return x[tr], y[tr], x[te], y[te]


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


def _stage_widths(resolution: int) -> list[int]:
    # Widths of the conv3×3 stages that run at 16×16 and below (one stage per halving down to
    # 4×4; R = 8 gets a second conv at 4×4). Narrow at 16×16, where the cost is: the metrics
    # classify tens of thousands of images (26,000 × 3 for stacked digits) on the CPU.
    return [32, 64] if resolution == 8 else [16, 32]


def _max_pool2(x: torch.Tensor) -> torch.Tensor:
    # 2×2 max-pool. Without autograd, the max of four strided views: the same values as
    # F.max_pool2d but ~2× faster on the CPU for large inference batches of these small maps;
    # with autograd F.max_pool2d, whose backward is the faster one.
    if x.requires_grad:
        return F.max_pool2d(x, 2)
    return torch.maximum(
        torch.maximum(x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]),
        torch.maximum(x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]),
    )


class DigitClassifier(nn.Module):
    """Small CNN for ``(B, 1, R, R)`` digit images in [-1, 1] (R ∈ {8, 16, 32, 64}).

    Architecture: for R > 16 a stem of stride-2 ``conv4×4(16) → ReLU`` down to 16×16; then
    stages of ``conv3×3 → max-pool 2×2 → ReLU`` down to 4×4 (widths 16, 32; for R = 8 widths
    32, 64 with the second conv at 4×4 without pooling); then ``flatten → Linear(·, 64) →
    ReLU`` (the 64-d :meth:`features` used for Fréchet distance and precision / recall) and
    ``Linear(64, 10)`` logits.

    Attributes:
        resolution: R.
        feature_dim: F = 64.
        heldout_accuracy: accuracy on the held-out split recorded at training time (or None).
    """

    feature_dim = 64

    def __init__(self, resolution: int = 16) -> None:
        super().__init__()
        self.resolution = _check_resolution(resolution)
        self.heldout_accuracy: float | None = None
        stem: list[nn.Module] = []
        c_in, size = 1, self.resolution
        while size > 16:
            # Stride-2 stem down to 16×16 (R = 32: one, R = 64: two): the digits carry little
            # detail above 16 px and full-width 3×3 convs at 32×32 would triple training time.
            stem += [nn.Conv2d(c_in, 16, 4, stride=2, padding=1), nn.ReLU()]
            c_in, size = 16, size // 2
        self.stem = nn.Sequential(*stem)
        self.convs = nn.ModuleList()
        self._pool: list[bool] = []
        for w in _stage_widths(self.resolution):
            self.convs.append(nn.Conv2d(c_in, w, 3, padding=1))
            self._pool.append(size > 4)
            size = size // 2 if size > 4 else size
            c_in = w
        self.fc = nn.Linear(c_in * size * size, self.feature_dim)
        self.head = nn.Linear(self.feature_dim, 10)

    def _check(self, x: torch.Tensor) -> None:
        r = self.resolution
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, r, r):
            raise WganError(
                f"DigitClassifier(resolution={r}) expects images of shape (B, 1, {r}, {r}), "
                f"got {tuple(x.shape)}"
            )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(B, 1, R, R) -> (B, 64)`` (after the ReLU)."""
        self._check(x)
        h = self.stem(x)  # (B, C, min(R, 16), min(R, 16))
        for conv, pool in zip(self.convs, self._pool, strict=True):
            h = conv(h)
            h = F.relu(_max_pool2(h) if pool else h)
        return F.relu(self.fc(h.flatten(1)))  # (B, C·4·4) -> (B, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 1, R, R) -> (B, 10)``."""
        return self.head(self.features(x))


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _num_threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _max_shift(resolution: int) -> int:
    # ±1 px at R = 8, ±R/8 px above: generated digits are often off-centre by a pixel or two.
    return 1 if resolution <= 8 else resolution // 8


def _random_shift(x: torch.Tensor, s: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by an integer offset in [-s, s]², filling with background (-1)."""
    b, _, r, _ = x.shape
    padded = F.pad(x, (s, s, s, s), value=-1.0)  # (B, 1, R+2s, R+2s)
    dy = torch.randint(0, 2 * s + 1, (b,), generator=gen)  # (B,)
    dx = torch.randint(0, 2 * s + 1, (b,), generator=gen)  # (B,)
    ar = torch.arange(r)
    rows = (dy[:, None] + ar[None, :])[:, :, None]  # (B, R, 1)
    cols = (dx[:, None] + ar[None, :])[:, None, :]  # (B, 1, R)
    idx = torch.arange(b)[:, None, None]  # (B, 1, 1)
    return padded[idx, 0, rows, cols].unsqueeze(1)  # (B, 1, R, R)


@torch.inference_mode()
def _predict(clf: DigitClassifier, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    return torch.cat([clf(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def train_digit_classifier(resolution: int = 16) -> DigitClassifier:
    """Train a :class:`DigitClassifier` deterministically on the 1,500 training digits.

    Recipe (version :data:`CLASSIFIER_VERSION`): ``torch.manual_seed(0)`` inside
    ``torch.random.fork_rng`` (the caller's RNG state is restored), one CPU thread, Adam
    (lr 2e-3, cosine decay to 0) for 30 epochs of batches of 50, each batch translated by a
    random integer shift of up to ±1 px (R = 8) or ±R/8 px (R > 8). Returns the model in eval
    mode with ``heldout_accuracy`` set from the 297 held-out digits.
    """
    resolution = _check_resolution(resolution)
    x_tr, y_tr, x_te, y_te = digits_split(resolution)
    with _num_threads(1), torch.random.fork_rng(devices=[]):
        torch.manual_seed(_TRAIN_SEED)
        gen = torch.Generator().manual_seed(_TRAIN_SEED)
        clf = DigitClassifier(resolution)
        opt = torch.optim.Adam(clf.parameters(), lr=_LR)
        steps_per_epoch = math.ceil(len(x_tr) / _BATCH)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=_EPOCHS * steps_per_epoch)
        s = _max_shift(resolution)
        clf.train()
        for _ in range(_EPOCHS):
            perm = torch.randperm(len(x_tr), generator=gen)
            for i in range(0, len(x_tr), _BATCH):
                j = perm[i : i + _BATCH]
                xb = _random_shift(x_tr[j], s, gen)  # (B, 1, R, R)
                loss = F.cross_entropy(clf(xb), y_tr[j])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        clf.eval()
        clf.heldout_accuracy = float((_predict(clf, x_te) == y_te).double().mean())
    return clf


def classifier_accuracy(clf: DigitClassifier) -> float:
    """Accuracy of ``clf`` on the 297 held-out digits of :func:`digits_split` at its resolution."""
    _, _, x_te, y_te = digits_split(clf.resolution)
    was_training = clf.training
    clf.eval()
    try:
        return float((_predict(clf, x_te) == y_te).double().mean())
    finally:
        clf.train(was_training)


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` or ``$WGAN_CACHE_DIR`` or ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    for var in ("WGAN_CACHE_DIR", "XDG_CACHE_HOME"):
        v = os.environ.get(var)
        if v:
            return Path(v).expanduser()
    return Path.home() / ".cache"


def classifier_cache_path(resolution: int = 16, cache_dir: str | Path | None = None) -> Path:
    """``<cache>/wgan/digits-classifier-r{R}-v{CLASSIFIER_VERSION}.safetensors``."""
    r = _check_resolution(resolution)
    return (
        cache_root(cache_dir) / "wgan" / f"digits-classifier-r{r}-v{CLASSIFIER_VERSION}.safetensors"
    )


def _load_cached(path: Path, resolution: int) -> DigitClassifier:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("resolution") != str(resolution) or meta.get("version") != str(CLASSIFIER_VERSION):
        raise ValueError(f"metadata {meta} does not match resolution {resolution}")
    clf = DigitClassifier(resolution)
    clf.load_state_dict(load_file(str(path)), strict=True)
    acc = meta.get("heldout_accuracy")
    clf.heldout_accuracy = float(acc) if acc is not None else None
    return clf.eval()


def _save_atomic(clf: DigitClassifier, path: Path, train_seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "resolution": str(clf.resolution),
        "version": str(CLASSIFIER_VERSION),
        "heldout_accuracy": repr(clf.heldout_accuracy),
        "n_train": str(DIGITS_N_TRAIN),
        "holdout_seed": str(DIGITS_HOLDOUT_SEED),
        "train_seconds": f"{train_seconds:.2f}",
        "torch_version": torch.__version__,
    }
    save_module_atomic(clf, path, meta)


def save_module_atomic(module: nn.Module, path: Path, meta: dict[str, str]) -> None:
    """Save ``module``'s state dict to ``path`` as safetensors with ``meta``, atomically.

    A temporary file in the same directory, then a rename: readers never see half a file, and
    two processes training the same cached network at once both replace it with whole files.
    """
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(state, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def get_digit_classifier(
    resolution: int = 16, cache_dir: str | Path | None = None
) -> DigitClassifier:
    """The cached digit classifier at resolution R (CPU, eval mode), training it if needed.

    The weights live at :func:`classifier_cache_path` (``<cache>/wgan/digits-classifier-
    r{R}-v1.safetensors``, cache = ``cache_dir`` or ``$WGAN_CACHE_DIR`` or ``$XDG_CACHE_HOME``
    or ``~/.cache``). When the file is absent it is trained with
    :func:`train_digit_classifier` (a few seconds) and saved atomically; when it cannot be read
    (corrupt, truncated, wrong shapes or metadata) a warning is issued and it is retrained and
    overwritten. If the cache directory is not writable the trained model is returned anyway
    (with a warning).
    """
    resolution = _check_resolution(resolution)
    path = classifier_cache_path(resolution, cache_dir)
    if path.exists():
        try:
            return _load_cached(path, resolution)
        except Exception as e:  # noqa: BLE001 - any unreadable cache file means: retrain it
            warnings.warn(
                f"digit classifier cache {path} is unreadable ({type(e).__name__}: {e}); "
                "retraining and overwriting it",
                stacklevel=2,
            )
    t0 = time.perf_counter()
    clf = train_digit_classifier(resolution)
    try:
        _save_atomic(clf, path, time.perf_counter() - t0)
    except OSError as e:
        warnings.warn(f"could not write digit classifier cache {path}: {e}", stacklevel=2)
    return clf
