"""Measuring attribute-conditional generators: an attribute classifier and per-attribute accuracy.

A generator G(z, c) conditioned on an attribute vector c in {0, 1}^k (one-hot groups and flags,
:class:`wgan.data.attributes.AttributeSchema`; Mirza & Osindero 2014) is asked for c; what it
draws is read back by a classifier trained on the real images and their vectors, as AC-GAN reads
its samples' classes (Odena et al. 2017) and as the digits classifier does for class-conditional
runs (:mod:`wgan.metrics.classifier`).

The classifier (:class:`AttributeClassifier`) has one output per group: a softmax over the
columns of a one-hot group and a sigmoid per flag, trained with the sum over groups of

    L_g = -log softmax(l_g)[y_g]   (one-hot group g, y_g its value)
    L_f = BCE(sigmoid(l_f), c_f)    (flag f),

and reads an image as the vector with each group's argmax and each flag's ``l_f > 0``.

The accuracy of a sample asked for c is per group: a_g = 1[read(x)_g = c_g] (a group's value,
a flag's state); the report gives the mean of a_g over samples for every group, their mean over
groups (the "mean per-attribute accuracy") and the fraction of samples with every group right.

The classifier is trained once per dataset (deterministically: fixed seed, one CPU thread,
the caller's RNG untouched) and cached under ``<cache>/wgan/`` as safetensors, keyed by the
data's identity (:func:`data_fingerprint`: name, schema, image shape, count, and a hash of the
attribute table and of the pixels), so other data never reuses it. Its accuracy on a held-out
split of the real images (:data:`HELDOUT_SEED`) is recorded in the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wgan.errors import WganError
from wgan.metrics.classifier import _num_threads, cache_root, save_module_atomic

# A wgan.data.attributes.AttributeSchema (groups, columns(group), dim, to_spec()): not imported,
# since wgan.data imports wgan.metrics (the digits split) and imports flow one way.
AttributeSchema = Any

__all__ = [
    "ATTRIBUTE_CLASSIFIER_VERSION",
    "HELDOUT_SEED",
    "AttributeClassifier",
    "accuracy_report",
    "attribute_classifier_path",
    "attribute_loss",
    "data_fingerprint",
    "decode_logits",
    "get_attribute_classifier",
    "group_correct",
    "group_keys",
    "heldout_split",
    "predict_attributes",
    "train_attribute_classifier",
]

ATTRIBUTE_CLASSIFIER_VERSION = 1
"""Bumped whenever the architecture or the training recipe changes (part of the file name)."""

HELDOUT_SEED = 20250126
"""Seed of the permutation that holds real images out of the classifier's training."""

MAX_HELDOUT = 2000  # held-out images: a tenth of the data, at most this many
MAX_TRAIN = 50_000  # training images used (a fixed subset of larger sets such as CelebA)
_STEPS, _BATCH, _LR, _NOISE = 1500, 64, 2e-3, 0.1  # the recipe of version 1
_FINGERPRINT_IMAGES = 4096  # images hashed for the data's identity (evenly spaced)


# ----------------------------------------------------------------------------- the network


class AttributeClassifier(nn.Module):
    """A small CNN reading attribute vectors from ``(B, C, R, R)`` images in [-1, 1].

    Stride-2 ``conv4x4(32) -> ReLU`` down to 16x16 (for R > 16), stages of ``conv3x3 -> max-pool
    2x2 -> ReLU`` (widths 16, 32) down to 4x4, ``Linear(., 128) -> ReLU`` and ``Linear(128, k)``:
    one logit per column, read per group (:func:`decode_logits`).

    Attributes:
        schema: the vectors' layout.
        in_shape: (C, R, R).
        heldout_accuracy: {group name: accuracy on the held-out real images}, set when trained.
    """

    def __init__(self, schema: AttributeSchema, in_shape: tuple[int, int, int]) -> None:
        super().__init__()
        c, r, r2 = (int(v) for v in in_shape)
        if r != r2 or r < 4 or c < 1:
            raise WganError(
                f"AttributeClassifier: images must be (C, R, R), R >= 4; got {in_shape}"
            )
        self.schema, self.in_shape = schema, (c, r, r)
        self.heldout_accuracy: dict[str, float] | None = None
        layers: list[nn.Module] = []
        size = r
        while size > 16:
            layers += [nn.Conv2d(c, 32, 4, stride=2, padding=1), nn.ReLU()]
            c, size = 32, size // 2
        for width in (16, 32):
            layers.append(nn.Conv2d(c, width, 3, padding=1))
            if size > 4:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            layers.append(nn.ReLU())
            c = width
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * size * size, 128), nn.ReLU())
        self.head = nn.Linear(128, schema.dim)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, C, R, R) -> (B, k)``."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.in_shape:
            c, r, _ = self.in_shape
            raise WganError(
                f"the attribute classifier takes images of shape (B, {c}, {r}, {r}), "
                f"got {tuple(x.shape)}"
            )
        return self.head(self.body(x))


def attribute_loss(schema: AttributeSchema, logits: Tensor, c: Tensor) -> Tensor:
    """The sum over groups of the cross-entropy of a one-hot group and the BCE of a flag,
    averaged over the batch: logits and targets (B, k)."""
    total = logits.new_zeros(())
    for g in schema.groups:
        cols = schema.columns(g)
        if g.flag:
            total = total + F.binary_cross_entropy_with_logits(logits[:, cols], c[:, cols])
        else:
            total = total + F.cross_entropy(logits[:, cols], c[:, cols].argmax(1))
    return total


def decode_logits(schema: AttributeSchema, logits: Tensor) -> Tensor:
    """(B, k) logits -> (B, k) valid 0/1 vectors: each group's argmax, each flag's ``l > 0``."""
    out = torch.zeros_like(logits)
    for g in schema.groups:
        cols = schema.columns(g)
        if g.flag:
            out[:, cols] = (logits[:, cols] > 0).to(out.dtype)
        else:
            idx = logits[:, cols].argmax(1) + cols.start  # (B,)
            out[torch.arange(len(out)), idx] = 1.0
    return out


@torch.inference_mode()
def predict_attributes(clf: AttributeClassifier, images: Tensor, batch_size: int = 2048) -> Tensor:
    """The vectors ``clf`` reads off ``images`` (N, C, R, R): (N, k) float32 0/1, on the CPU."""
    was_training = clf.training
    clf.eval()
    try:
        dev = next(clf.parameters()).device
        parts = [
            decode_logits(clf.schema, clf(images[i : i + batch_size].to(dev, torch.float32))).cpu()
            for i in range(0, len(images), batch_size)
        ]
    finally:
        clf.train(was_training)
    return torch.cat(parts) if parts else torch.zeros(0, clf.schema.dim)


# ------------------------------------------------------------------------------ accuracy


def group_correct(schema: AttributeSchema, read: Tensor, asked: Tensor) -> Tensor:
    """(N, G) bool: whether each group of the vectors ``read`` (N, k) equals that of ``asked``
    (the same value of a one-hot group, the same state of a flag)."""
    if read.shape != asked.shape or read.ndim != 2 or read.shape[1] != schema.dim:
        raise WganError(
            f"read and asked vectors must both be (N, {schema.dim}); got {tuple(read.shape)} "
            f"and {tuple(asked.shape)}"
        )
    cols = []
    for g in schema.groups:
        s = schema.columns(g)
        if g.flag:
            cols.append((read[:, s.start] > 0.5) == (asked[:, s.start] > 0.5))
        else:
            cols.append(read[:, s].argmax(1) == asked[:, s].argmax(1))
    return torch.stack(cols, dim=1)  # (N, G)


def group_keys(schema: AttributeSchema) -> list[str]:
    """A metric-key-safe name per group (letters, digits and ``_``; names come from files)."""
    return [re.sub(r"[^0-9A-Za-z_]", "_", g.name)[:64] for g in schema.groups]


def accuracy_report(
    schema: AttributeSchema, read: Tensor, asked: Tensor, prefix: str = "attr"
) -> dict[str, float]:
    """Per-attribute accuracy of samples asked for ``asked`` and read as ``read`` (N, k):

    * ``{prefix}_accuracy_{group}``: the fraction of samples whose group is right;
    * ``{prefix}_accuracy``: the mean of those over groups (the mean per-attribute accuracy);
    * ``{prefix}_exact``: the fraction of samples with every group right.
    """
    correct = group_correct(schema, read, asked).double()  # (N, G)
    if correct.shape[0] == 0:
        raise WganError("no samples to measure")
    per_group = correct.mean(0)  # (G,)
    out = {f"{prefix}_accuracy": float(per_group.mean())}
    for key, acc in zip(group_keys(schema), per_group.tolist(), strict=True):
        out[f"{prefix}_accuracy_{key}"] = float(acc)
    out[f"{prefix}_exact"] = float(correct.all(1).double().mean())
    return out


# ----------------------------------------------------------------------------- the data


def data_fingerprint(name: str, schema: AttributeSchema, pixels: Tensor, attributes: Tensor) -> str:
    """A hex SHA-256 of the data's identity: its name, schema, stored image shape and count, the
    whole attribute table and up to 4,096 evenly spaced stored images (all of a small set)."""
    h = hashlib.sha256()
    h.update(json.dumps([name, list(schema.to_spec()), list(pixels.shape)]).encode())
    h.update(str(pixels.dtype).encode())
    h.update(attributes.detach().cpu().to(torch.uint8).contiguous().numpy().tobytes())
    n = int(pixels.shape[0])
    step = max(1, n // _FINGERPRINT_IMAGES)
    h.update(pixels[::step].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def heldout_split(n: int) -> tuple[Tensor, Tensor]:
    """(train indices, held-out indices) of ``n`` images: a permutation from
    :data:`HELDOUT_SEED`; a tenth (at most 2,000, at least 1) held out, at most 50,000 train."""
    if n < 2:
        raise WganError(f"an attribute classifier needs at least 2 images, got {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(HELDOUT_SEED))
    n_test = min(MAX_HELDOUT, max(1, n // 10))
    return perm[n_test : n_test + MAX_TRAIN], perm[:n_test]


def _images(dataset: Any, idx: Tensor) -> Tensor:
    """The dataset's images ``idx`` as float32 in [-1, 1] at its resolution, (b, C, R, R)."""
    return dataset.as_float(dataset.pixels[idx.to(dataset.pixels.device)]).cpu()


def train_attribute_classifier(dataset: Any, steps: int | None = None) -> AttributeClassifier:
    """Train an :class:`AttributeClassifier` on an attribute dataset (an
    :class:`~wgan.data.images.ImageDataset` with ``attributes`` and ``attribute_schema``).

    Recipe (version :data:`ATTRIBUTE_CLASSIFIER_VERSION`): seed 0 inside
    ``torch.random.fork_rng`` (the caller's RNG state is restored), one CPU thread, Adam
    (lr 2e-3, cosine decay to 0), ``steps`` (default 1,500) batches of 64 of the training split
    (:func:`heldout_split`), each image with N(0, 0.1^2) pixel noise added (generated images
    are not clean). Returns the model in eval mode with ``heldout_accuracy`` set per group.
    """
    schema, table = dataset.attribute_schema, dataset.attributes
    if schema is None or table is None:
        raise WganError(f"{dataset.name}: the data has no attributes to train a classifier on")
    table, steps = table.cpu(), _STEPS if steps is None else int(steps)
    tr, te = heldout_split(len(dataset))
    with _num_threads(1), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(0)
        clf = AttributeClassifier(schema, tuple(dataset.shape))
        opt = torch.optim.Adam(clf.parameters(), lr=_LR)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        clf.train()
        for _ in range(steps):
            j = tr[torch.randint(len(tr), (_BATCH,), generator=gen)]
            x = _images(dataset, j)
            x = x + _NOISE * torch.randn(x.shape, generator=gen)
            loss = attribute_loss(schema, clf(x), table[j])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        clf.eval()
        read = predict_attributes(clf, _images(dataset, te))
    acc = group_correct(schema, read, table[te]).double().mean(0)
    clf.heldout_accuracy = {g.name: float(a) for g, a in zip(schema.groups, acc, strict=True)}
    return clf


# ----------------------------------------------------------------------------- the cache


def attribute_classifier_path(
    name: str, fingerprint: str, cache_dir: str | Path | None = None
) -> Path:
    """``<cache>/wgan/attribute-classifier-{name}-{fingerprint[:16]}-v1.safetensors``."""
    safe = re.sub(r"[^0-9A-Za-z_.-]", "_", name)[:40]
    file = f"attribute-classifier-{safe}-{fingerprint[:16]}-v{ATTRIBUTE_CLASSIFIER_VERSION}"
    return cache_root(cache_dir) / "wgan" / f"{file}.safetensors"


def _load(path: Path, schema: AttributeSchema, shape: tuple[int, ...], fp: str) -> Any:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("fingerprint") != fp or meta.get("version") != str(ATTRIBUTE_CLASSIFIER_VERSION):
        raise ValueError("its data fingerprint or version is not this data's")
    clf = AttributeClassifier(schema, tuple(shape))
    clf.load_state_dict(load_file(str(path)), strict=True)
    clf.heldout_accuracy = {str(k): float(v) for k, v in json.loads(meta["heldout"]).items()}
    return clf.eval()


def get_attribute_classifier(
    dataset: Any, cache_dir: str | Path | None = None
) -> AttributeClassifier:
    """The attribute classifier of ``dataset`` (CPU, eval mode), trained once and cached.

    The file is :func:`attribute_classifier_path` of the data's :func:`data_fingerprint` (cache
    = ``cache_dir`` or ``$WGAN_CACHE_DIR`` or ``$XDG_CACHE_HOME`` or ``~/.cache``); absent, it is
    trained (:func:`train_attribute_classifier`) and saved atomically; unreadable or of other
    data, retrained with a warning; an unwritable cache only warns.
    """
    schema, table = dataset.attribute_schema, dataset.attributes
    if schema is None or table is None:
        raise WganError(f"{dataset.name}: the data has no attributes to train a classifier on")
    fp = data_fingerprint(dataset.name, schema, dataset.pixels, table)
    path = attribute_classifier_path(dataset.name, fp, cache_dir)
    if path.exists():
        try:
            return _load(path, schema, dataset.shape, fp)
        except Exception as e:  # noqa: BLE001 - any unreadable cache file means: retrain it
            warnings.warn(
                f"attribute classifier cache {path} is unreadable ({type(e).__name__}: {e}); "
                "retraining and overwriting it",
                stacklevel=2,
            )
    t0 = time.perf_counter()
    clf = train_attribute_classifier(dataset)
    meta = {
        "version": str(ATTRIBUTE_CLASSIFIER_VERSION),
        "fingerprint": fp,
        "attributes": json.dumps(list(schema.to_spec())),
        "shape": json.dumps(list(dataset.shape)),
        "heldout": json.dumps(clf.heldout_accuracy),
        "train_seconds": f"{time.perf_counter() - t0:.2f}",
        "torch_version": torch.__version__,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_module_atomic(clf, path, meta)
    except OSError as e:
        warnings.warn(f"could not write attribute classifier cache {path}: {e}", stacklevel=2)
    return clf


def classifier_accuracy(clf: AttributeClassifier) -> float:
    """The mean over groups of the classifier's held-out accuracy (NaN when not recorded)."""
    acc = clf.heldout_accuracy or {}
    return float(sum(acc.values()) / len(acc)) if acc else math.nan
