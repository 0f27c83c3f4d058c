"""Sample-quality metrics: plain functions returning plain (JSON-serialisable) dicts.

Every metric is exported here under its own name. Which of them a run reports is chosen by the
evaluator registry of :mod:`wgan.training.evaluation` (per kind of data). Inputs may be torch
tensors or numpy arrays.
"""

from __future__ import annotations

from typing import Any

import torch

from wgan.errors import WganError
from wgan.metrics.classifier import (
    DIGITS_HOLDOUT_SEED,
    DigitClassifier,
    classifier_accuracy,
    digits_split,
    get_digit_classifier,
)
from wgan.metrics.digit_inception import digit_inception_score
from wgan.metrics.frechet import (
    feature_statistics,
    frechet_distance,
    frechet_distance_features,
    inception_score,
    kernel_inception_distance,
)
from wgan.metrics.images import (
    class_metrics,
    conditional_accuracy,
    digits_metrics,
    inception_metrics,
    stacked_digits_metrics,
)
from wgan.metrics.inception import InceptionExtractor, load_inception
from wgan.metrics.modes import mode_metrics
from wgan.metrics.ngram import js_strings, ngram_js, ngram_metrics
from wgan.metrics.precision_recall import precision_recall
from wgan.metrics.wasserstein import as_points, check_int, exact_w1, sliced_w1, wasserstein_1d

__all__ = [
    "DIGITS_HOLDOUT_SEED",
    "DigitClassifier",
    "InceptionExtractor",
    "as_points",
    "class_metrics",
    "classifier_accuracy",
    "conditional_accuracy",
    "digit_inception_score",
    "digits_metrics",
    "digits_split",
    "exact_w1",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_features",
    "get_digit_classifier",
    "inception_metrics",
    "inception_score",
    "kernel_inception_distance",
    "load_inception",
    "js_strings",
    "mode_metrics",
    "ngram_js",
    "ngram_metrics",
    "precision_recall",
    "sliced_w1",
    "stacked_digits_metrics",
    "toy_metrics",
    "wasserstein_1d",
]

TOY_METRICS_SEED = 0
"""Seed of the generator used for the real samples of :func:`toy_metrics` by default."""


def toy_metrics(
    samples: Any,
    dataset: Any,
    n_real: int = 2500,
    generator: torch.Generator | None = None,
    max_points: int = 5000,
) -> dict:
    """All metrics of generated 2-D samples against a toy dataset.

    * Mode metrics (:func:`~wgan.metrics.modes.mode_metrics`, VEEGAN / PacGAN protocol,
      threshold 3σ) when ``dataset.modes`` is not ``None``.
    * W1 (:func:`~wgan.metrics.wasserstein.exact_w1`) between ``samples`` and ``n_real`` fresh
      real samples ``dataset.sample(n_real, generator)``; the generator defaults to a new
      ``torch.Generator`` seeded with ``TOY_METRICS_SEED`` (0), so the reference set and the
      value are deterministic. Two independent 2,500-sample sets of the same distribution are
      not at W1 = 0: this finite-sample floor (≈ 0.05 for eight_gaussians, 0.03-0.09 across
      seeds, mostly from the multinomial imbalance of the mode counts) is the best value a
      perfect generator can reach.

    Args:
        samples: ``(N, 2)`` generated points (torch tensor or numpy array).
        dataset: a :class:`wgan.data.ToyDataset` (``sample``, ``modes``, ``sigma``).
        n_real: number of real samples to compare with.
        generator: torch generator for the real samples (default: seeded with 0).
        max_points: above this set size W1 falls back to sliced W1 (see ``exact_w1``).

    Returns:
        ``{"n_samples", "n_real", "w1", "w1_method"}`` plus ``"w1_note"`` when there is one,
        plus ``"modes_captured", "n_modes", "high_quality_fraction", "kl_to_uniform"`` for
        datasets with modes.

    Raises:
        WganError: no samples, non-finite samples, ``n_real`` or ``max_points`` < 1, or a
            ``dataset`` without ``sample``.
    """
    n_real = check_int("n_real", n_real, 1)
    max_points = check_int("max_points", max_points, 1)
    if not callable(getattr(dataset, "sample", None)):
        raise WganError(
            f"toy_metrics needs a toy dataset (with sample, modes, sigma), got "
            f"{type(dataset).__name__}"
        )
    if generator is None:
        generator = torch.Generator().manual_seed(TOY_METRICS_SEED)
    elif not isinstance(generator, torch.Generator):
        raise WganError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    x = as_points(samples, "samples")  # (N, d)
    if x.shape[0] == 0:
        raise WganError("toy_metrics needs at least one sample, got 0")
    real = dataset.sample(n_real, generator=generator)  # (n_real, 2)
    out: dict = {"n_samples": int(x.shape[0]), "n_real": int(n_real)}
    if getattr(dataset, "modes", None) is not None and getattr(dataset, "sigma", None):
        out.update(mode_metrics(x, dataset.modes, float(dataset.sigma)))
    w = exact_w1(x, real, max_points=max_points)
    out["w1"] = w["w1"]
    out["w1_method"] = w["method"]
    if "note" in w:
        out["w1_note"] = w["note"]
    return out
