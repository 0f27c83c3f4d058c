"""Measurements the claim experiments share on 2-D toy data (``momentum``, ``generator-only``,
``mode-hopping``): the record steps and training up to them, a held set, the mode histogram, the
spread of samples, a generator trained alone against a frozen critic, the argmax of a critic on a
grid, the roughness of a curve.

Everything here is a plain function of a :class:`wgan.training.trainer.Trainer` (its public models,
loss and random stream) or of arrays; nothing writes files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from wgan.data import make_dataset
from wgan.errors import WganError
from wgan.experiments.common import fit_critic
from wgan.metrics.wasserstein import as_points
from wgan.training.trainer import Trainer

Box = tuple[float, float, float, float]  # a box of the plane: xmin, xmax, ymin, ymax


def record_steps(steps: int, n_records: int) -> list[int]:
    """Step 0 and ``n_records`` evenly spaced steps up to ``steps``."""
    return sorted({0, *np.linspace(0, steps, n_records + 1).round().astype(int).tolist()})


def advance_to(trainer: Trainer, target: int, bar: Any) -> bool:
    """Train on to generator iteration ``target``, advancing the progress ``bar`` by the
    iterations taken; whether the running statistics stayed finite."""
    n = target - trainer.step
    running = trainer.advance(n)
    bar.update(n)
    return all(math.isfinite(v) for v in running.values())


def modeless(datasets: list[str]) -> list[str]:
    """The datasets among ``datasets`` that have no modes to count (ConfigError for an unknown
    name)."""
    return [d for d in datasets if make_dataset(d).modes is None]


def held_real(dataset: Any, n: int, seed: int) -> Tensor:
    """``n`` real samples (n, dim) from their own seed: a held set never seen in training."""
    return dataset.sample(n, generator=torch.Generator().manual_seed(seed))


def mode_histogram(samples: Any, modes: Any, sigma: float, threshold: float = 3.0) -> np.ndarray:
    """Counts ``c_k`` of high-quality samples per mode, shape (M,).

    The protocol of :func:`wgan.metrics.mode_metrics` (VEEGAN, Srivastava et al. 2017; PacGAN,
    Lin et al. 2018): sample i belongs to its nearest mode ``k_i = argmin_k ‖s_i − μ_k‖`` and
    is high quality iff ``‖s_i − μ_{k_i}‖ ≤ threshold · σ``; ``c_k = #{i HQ : k_i = k}``. That
    function reports ``#{k : c_k ≥ 1}`` and the HQ fraction ``Σ c_k / N``; this one keeps the
    histogram itself, whose movement over training shows mode hopping.
    """
    s = as_points(samples, "samples")  # (N, d)
    mu = as_points(modes, "modes")  # (M, d)
    if s.shape[1] != mu.shape[1]:
        raise WganError(f"samples have dimension {s.shape[1]} but modes have {mu.shape[1]}")
    d = np.linalg.norm(s[:, None, :] - mu[None, :, :], axis=2)  # (N, M)
    nearest = d.argmin(axis=1)  # (N,)
    hq = d[np.arange(len(s)), nearest] <= threshold * float(sigma)  # (N,)
    return np.bincount(nearest[hq], minlength=len(mu))


def spread(samples: Any) -> float:
    """Mean distance of the samples (N, d) to their centroid: 0 when all are one point."""
    x = as_points(samples, "samples")
    return float(np.linalg.norm(x - x.mean(axis=0), axis=1).mean())


#: The roughness of a curve that went non-finite (a diverged run): the supremum of
#: :func:`roughness`, so that divergence counts as the least stable outcome, not as a missing value.
DIVERGED_ROUGHNESS = 1.0


def roughness(values: Sequence[float], start: int = 0) -> float:
    """How non-stationary a curve is: ``std(Δv) / (max v − min v)``.

    ``Δv`` are the changes between consecutive records from record ``start`` on (the second
    half of training, say); the range ``max v − min v`` is taken over every record.

    Why the range of the whole curve: the curve of interest is a critic's estimate
    ``Ŵ = E D(real) − E D(fake)``, which for a ``K``-Lipschitz critic is ``K`` times a lower
    bound of W1 (Arjovsky et al. 2017, §3) and falls towards 0 as the generator fits the data.
    A normaliser taken from the late records (their mean ``|v|``) falls with it, so a better
    fit with the same sampling jitter reads as a rougher curve; the whole run's range is at
    least the estimate's largest excursion (reached early, while G is far from the data), does
    not shrink as ``Ŵ → 0``, and is still in the critic's own units, so the unknown ``K`` of a
    clipped critic cancels. It is also unchanged by adding a constant (a mean ``|v|`` blows up
    when the curve crosses 0). A single early record (the initial magnitude) would do the same
    job less well: one record is as noisy as any jitter it is meant to scale.

    Bounds: every ``|Δv| ≤ max v − min v``, so ``0 ≤ roughness ≤ 1``, with 1 approached by a
    curve jumping across its whole range at every record. About 0.3 for independent noise
    around a constant over 50 records (the range of such noise is a few of its std); about the
    step size over the range for a smooth curve. 0 for a flat curve; NaN with fewer than 3
    records from ``start`` on; :data:`DIVERGED_ROUGHNESS` (the bound, 1) when any value is not
    finite: a diverged curve is the roughest possible, not missing.
    """
    v = np.asarray(values, dtype=float)
    if not np.isfinite(v).all():
        return DIVERGED_ROUGHNESS
    late = v[start:]
    if late.size < 3:
        return float("nan")
    scale = float(v.max() - v.min())
    return float(np.diff(late).std() / scale) if scale > 0 else 0.0


@torch.no_grad()
def critic_argmax(trainer: Trainer, bounds: Box, resolution: int = 101) -> tuple[np.ndarray, float]:
    """The point of a ``resolution`` x ``resolution`` grid over ``bounds`` where the critic is
    highest, and its value there: the single sample that "fools the discriminator the most"
    inside the box."""
    xs = torch.linspace(bounds[0], bounds[1], resolution)
    ys = torch.linspace(bounds[2], bounds[3], resolution)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)  # (R², 2)
    values = trainer.critic_fn()(grid.to(trainer.device)).reshape(-1).float().cpu()  # (R²,)
    best = int(values.argmax())
    return grid[best].numpy(), float(values[best])


def clamp_box(x: Tensor, bounds: Box) -> Tensor:
    """``x`` (B, 2) clamped into the box ``bounds``: a bounded sample space, as pixels are."""
    lo = torch.tensor([bounds[0], bounds[2]], dtype=x.dtype, device=x.device)
    hi = torch.tensor([bounds[1], bounds[3]], dtype=x.dtype, device=x.device)
    return torch.maximum(torch.minimum(x, hi), lo)


def generator_optimiser(trainer: Trainer) -> torch.optim.Optimizer:
    """A torch optimiser for G with the run's generator settings (name, lr, betas)."""
    o = trainer.cfg.g_optim
    params = list(trainer.gen.parameters())
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=tuple(o.betas))
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=o.lr)
    return torch.optim.SGD(params, lr=o.lr)


def generator_alone(
    trainer: Trainer,
    steps: int,
    bounds: Box,
    optimiser: torch.optim.Optimizer,
    objective: Any = None,
) -> float:
    """Train G alone for ``steps`` updates against the critic as it is (not updated).

    Each update minimises ``objective``'s generator loss (default: the run's) on
    ``D(clamp(G(z)))`` for a batch of noise from the run's random stream. The clamp into
    ``bounds`` gives the samples a bounded space (as images have), so that the critic has a
    maximiser over it: a ReLU critic grows without bound along some direction, and on the open
    plane "the point that fools D most" would lie at infinity. The clamp's gradient is passed
    straight through (the gradient of D at the clamped point reaches G's raw output), so a point
    pushed against the box by D stays on its edge and one pulled inwards comes back. Returns the
    last generator loss.
    """
    frozen = {p: p.requires_grad for p in trainer.critic.parameters()}
    trainer.critic.requires_grad_(False)
    trainer.gen.train()
    loss = torch.tensor(float("nan"))
    objective = objective if objective is not None else trainer.loss.objective
    try:
        for _ in range(steps):
            z = trainer.gen.noise(trainer.batch_size, trainer.rng, trainer.device)  # (B, latent)
            raw = trainer.gen(z)  # (B, 2)
            fake = raw + (clamp_box(raw, bounds) - raw).detach()  # clamped, straight-through
            loss = objective.generator_loss(trainer.critic(fake))["loss"]
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    finally:
        for p, flag in frozen.items():
            p.requires_grad_(flag)
    return float(loss.detach())


class BoxedGenerator:
    """The run's generator as a fixed sample source whose samples are clamped into a box
    (``sample(n, generator)`` -> (n, 2)), for :func:`wgan.experiments.common.fit_critic`."""

    def __init__(self, trainer: Trainer, bounds: Box) -> None:
        self.trainer, self.bounds = trainer, bounds

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        gen = self.trainer.gen
        return clamp_box(gen(gen.noise(n, generator, self.trainer.device)), self.bounds)


def fit_critic_to_box(trainer: Trainer, steps: int, bounds: Box) -> None:
    """``steps`` critic updates of the run's critic (its loss, penalty, optimiser settings, a
    fresh optimiser state) against the generator's clamped samples, toward optimality."""
    fit_critic(
        trainer.critic,
        trainer.loss,
        trainer.dataset,
        BoxedGenerator(trainer, bounds),
        steps,
        trainer.batch_size,
        trainer.cfg.d_optim,
        trainer.rng,
    )


@torch.no_grad()
def box_samples(trainer: Trainer, n: int, seed: int, bounds: Box) -> Tensor:
    """``n`` generated samples (n, 2) from a fixed noise seed, clamped into ``bounds``."""
    return clamp_box(trainer.samples(n, seed=seed), bounds)
