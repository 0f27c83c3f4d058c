"""The "improved techniques" of Salimans et al. (2016) and instance noise that are loss terms
or schedules; their layers (minibatch discrimination, virtual batch norm) are in
:mod:`wgan.nets.tricks`.

* Feature matching: the generator matches the mean of an intermediate critic layer,
  L_G = || E_x d(x) - E_z d(G(z)) ||_2^2 (:func:`feature_matching_loss`).
* Historical averaging: lambda_h || theta - (1/t) sum_{i<t} theta_i ||^2 for each player
  (:func:`historical_penalty`, :func:`update_historical_mean_`).
* One-sided label smoothing: real targets 1 - alpha (in :mod:`wgan.objectives.standard`).
* Instance noise (Arjovsky & Bottou 2017; Sønderby et al. 2016): N(0, sigma_t^2) added to every
  critic input, sigma_t annealed to 0 (:func:`instance_noise_std`).

:mod:`wgan.gan.step` and :mod:`wgan.gan.players` plug them into the one training step (config
section ``tricks``, :class:`wgan.config.TricksConfig`), so single runs, sweeps, data-parallel and
compiled runs all get them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from wgan.errors import ConfigError, WganError

# ---------------------------------------------------------------------------------------------
# Feature matching
# ---------------------------------------------------------------------------------------------


def feature_matching_loss(
    real_features: Tensor,
    fake_features: Tensor,
    real_labels: Tensor | None = None,
    fake_labels: Tensor | None = None,
    n_classes: int = 0,
) -> Tensor:
    """|| E d(x) - E d(G(z)) ||_2^2 over features (B, F) (Salimans et al. 2016, sec. 3.1).

    With labels (a conditional critic), the means are matched per class and the squared gaps
    averaged over the classes present in both batches: sum_c w_c || E[d(x) | c] - E[d(G) | c] ||^2
    with w_c the fraction of generated samples of class c. With attribute vectors (B, k) float
    (0/1) the same is done per attribute: E[d(x) | attribute j] over the samples that have it.
    The features of real samples carry no gradient (the critic is fixed in the generator's step).
    """
    if real_features.ndim != 2 or fake_features.ndim != 2:
        raise WganError("feature matching needs (B, F) features")
    real_features = real_features.detach()
    vectors = real_labels is not None and real_labels.is_floating_point()
    if real_labels is None or fake_labels is None or (n_classes < 1 and not vectors):
        gap = real_features.float().mean(0) - fake_features.float().mean(0)  # (F,)
        return gap.square().sum()
    if vectors:  # attribute vectors: each attribute's members, (B, k)
        one_real, one_fake = real_labels.float(), fake_labels.float()
    else:
        one_real = nn.functional.one_hot(real_labels, n_classes).float()  # (B, K)
        one_fake = nn.functional.one_hot(fake_labels, n_classes).float()  # (B, K)
    n_real, n_fake = one_real.sum(0), one_fake.sum(0)  # (K,)
    mean_real = one_real.T @ real_features.float() / n_real.clamp_min(1).unsqueeze(1)  # (K, F)
    mean_fake = one_fake.T @ fake_features.float() / n_fake.clamp_min(1).unsqueeze(1)  # (K, F)
    present = ((n_real > 0) & (n_fake > 0)).float()  # (K,): classes seen in both batches
    weight = present * n_fake / (present * n_fake).sum().clamp_min(1)  # (K,)
    return (weight * (mean_real - mean_fake).square().sum(1)).sum()


# ---------------------------------------------------------------------------------------------
# Historical averaging
# ---------------------------------------------------------------------------------------------


def historical_penalty(params: list[Tensor], means: list[Tensor], weight: float | Tensor) -> Tensor:
    """lambda_h sum_p || theta_p - mean_p ||^2 (Salimans et al. 2016, sec. 3.3)."""
    total = sum((p.float() - m.float()).square().sum() for p, m in zip(params, means, strict=True))
    return weight * total


@torch.no_grad()
def update_historical_mean_(means: list[Tensor], params: list[Tensor], count: Tensor) -> None:
    """mean <- mean + (theta - mean) / (count + 1); count += 1 (in place).

    After t updates, mean = (1/t) sum_{i<t} theta_i: the average of the parameters taken after
    each of the player's optimiser steps so far.
    """
    count.add_(1)
    for m, p in zip(means, params, strict=True):
        m.add_((p - m) / count)


# ---------------------------------------------------------------------------------------------
# Instance noise
# ---------------------------------------------------------------------------------------------


def instance_noise_std(
    step: int | Tensor, sigma: float, anneal_steps: int, schedule: str = "linear"
) -> float | Tensor:
    """sigma_t of the instance noise after ``step`` generator iterations; 0 from ``anneal_steps``.

    ``linear``: sigma (1 - t/T). ``exponential``: sigma (e^{-5 t/T} - e^{-5}) / (1 - e^{-5}), a
    fast early decay that still ends at exactly 0 at T (Sønderby et al. 2016 anneal the noise to
    zero; Arjovsky & Bottou 2017 motivate it: noise makes the two distributions' supports
    overlap, so the discriminator's gradients stay informative).
    """
    if schedule not in ("linear", "exponential"):
        raise ConfigError(f"unknown instance-noise schedule {schedule!r} (linear, exponential)")
    if anneal_steps < 1:
        raise ConfigError("tricks.instance_noise_steps must be >= 1")
    frac = step / anneal_steps
    if isinstance(frac, Tensor):
        frac = frac.clamp(0.0, 1.0)
        if schedule == "linear":
            return sigma * (1.0 - frac)
        return sigma * (torch.exp(-5.0 * frac) - math.exp(-5.0)) / (1.0 - math.exp(-5.0))
    frac = min(max(frac, 0.0), 1.0)
    if schedule == "linear":
        return sigma * (1.0 - frac)
    return sigma * (math.exp(-5.0 * frac) - math.exp(-5.0)) / (1.0 - math.exp(-5.0))
