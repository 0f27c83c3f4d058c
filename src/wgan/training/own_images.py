"""A run on image data of the user's own: its quality numbers and its figures of real images.

* :func:`own_metrics`: Fréchet distance, precision / recall and colour distance of the run's
  samples in the features of a network trained on the run's own real images
  (:mod:`wgan.metrics.own_metrics`), each beside its held-out real-vs-real baseline, and for a
  conditional run whose data has classes the conditional accuracy (does asking for class k give
  a k?) beside the feature classifier's accuracy on held-out real images. Registered for the
  image datasets other than the digits (which have their own classifier) in
  :data:`wgan.training.evaluation.EVALUATORS`.
* :func:`write_reals`: ``figures/reals.png``, a titled, upscaled grid of real images (one
  named row per class when the data has classes), written when an image run starts.
* :func:`write_real_vs_generated`: ``figures/real_vs_generated.png``, real images beside
  generated ones (for a conditional run, row k of both is class k, named).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "OWN_FEATURE_KINDS",
    "REALS",
    "REAL_VS_GENERATED",
    "class_rows",
    "own_metrics",
    "write_real_vs_generated",
    "write_reals",
]

OWN_FEATURE_KINDS = ("folder", "mnist", "fashion_mnist", "idx", "cifar10", "cifar100")
"""The image datasets measured in their own features (the digits have their classifier)."""

REALS = "reals.png"
REAL_VS_GENERATED = "real_vs_generated.png"
MAX_ROWS = 20  # one row per class up to this many classes; beyond, an 8x8 grid
PER_ROW = 10


def own_metrics(run: Any, fake: Tensor, n: int) -> dict[str, Any]:
    """The own-feature metrics of ``fake`` (``n`` samples of ``run``), see the module docstring."""
    from wgan.metrics.own_metrics import (
        needs_training,
        own_conditional_accuracy,
        own_feature_metrics,
        own_reference,
    )

    dataset = run.dataset
    if not hasattr(dataset, "pixels"):  # a dataset made in code (stacked MNIST): no file set
        return {}
    notify = getattr(run, "notify", None)
    if notify is not None and needs_training(dataset):
        notify("training a feature network on this data (once, cached)…")
    out = own_feature_metrics(fake, dataset)
    n_classes = int(getattr(run.sampler, "n_classes", 0) or 0)
    if "feature_samples" in out and n_classes >= 2:
        net = own_reference(dataset).net
        if net.n_classes == n_classes:
            labels = torch.arange(n_classes).repeat_interleave(max(1, n // n_classes))
            images = run.samples(labels.numel(), seed=54321, labels=labels)
            out["conditional_accuracy"] = own_conditional_accuracy(net, images, labels)
            out["conditional_accuracy_baseline"] = float(net.quality or 0.0)
    return out


def class_rows(run: Any) -> list[str] | None:
    """Row labels for a grid with one row per class: the class names, else ``class k``;
    None when the data has no classes or more than :data:`MAX_ROWS`."""
    k = int(getattr(run.dataset, "n_classes", 0) or 0)
    if not 2 <= k <= MAX_ROWS:
        return None
    names = run.cfg.data.classes
    return list(names) if names and len(names) == k else [f"class {i}" for i in range(k)]


def _real_rows(run: Any, seed: int = 3) -> tuple[Tensor, list[str] | None]:
    """Real images: :data:`PER_ROW` of each class (one row each), or 64 drawn uniformly."""
    dataset, g = run.dataset, torch.Generator().manual_seed(seed)
    rows = class_rows(run)
    labels = getattr(dataset, "labels", None)
    if rows is None or labels is None:
        return dataset.sample(64, generator=g), None
    picks = []
    for k in range(len(rows)):
        idx = (labels.cpu() == k).nonzero().flatten()
        if not len(idx):  # a class without images: no rows then
            return dataset.sample(64, generator=g), None
        chosen = idx[torch.randint(len(idx), (PER_ROW,), generator=g)]
        picks.append(dataset.as_float(dataset.pixels[chosen.to(dataset.pixels.device)]).cpu())
    return torch.cat(picks), rows


def _shape_text(run: Any) -> str:
    c, r, _ = run.dataset.shape
    colour = "RGB" if c == 3 else "grayscale" if c == 1 else f"{c} channels"
    return f"{r}x{r} {colour}"


def write_reals(run: Any) -> Path:
    """``figures/reals.png``: a titled grid of real images, upscaled (see the module docstring)."""
    from wgan.figures.labelled import labelled_grid, save_panels

    images, rows = _real_rows(run)
    nrow = PER_ROW if rows else 8
    panel = labelled_grid(images, nrow, rows)
    title = f"{run.display_name}: real images ({len(run.dataset):,} in all, {_shape_text(run)})"
    return save_panels([panel], run.run_dir / "figures" / REALS, title)


def write_real_vs_generated(run: Any) -> Path:
    """``figures/real_vs_generated.png``: real images (left) beside the run's samples (right)."""
    from wgan.figures.labelled import labelled_grid, save_panels

    real, rows = _real_rows(run)
    n_classes = int(getattr(run.sampler, "n_classes", 0) or 0)
    if rows is not None and n_classes == len(rows):
        labels = torch.arange(n_classes).repeat_interleave(PER_ROW)
        fake = run.samples(labels.numel(), seed=2, labels=labels)
        fake_rows: list[str] | None = rows
    else:
        fake, fake_rows = run.samples(len(real), seed=2), None
    nrow = PER_ROW if rows else 8
    panels = [
        labelled_grid(real, nrow, rows, header="real"),
        labelled_grid(fake, nrow, fake_rows, header=f"generated, step {run.step}"),
    ]
    title = f"{run.display_name}: real (left) and generated (right), {_shape_text(run)}"
    return save_panels(panels, run.run_dir / "figures" / REAL_VS_GENERATED, title)
