r"""Parallel lines: JS saturates, W1 does not (Arjovsky, Chintala & Bottou 2017, Example 1).

Real data is :math:`\mathbb{P}_0`, the law of :math:`(0, Z)`, the model is
:math:`\mathbb{P}_\theta`, the law of :math:`(\theta, Z)`, with :math:`Z \sim U[0, 1]`. The two
distributions live on parallel segments, so for :math:`\theta \neq 0` their supports are disjoint
and (Arjovsky et al. 2017, Example 1)

.. math::

    W_1(\mathbb{P}_0, \mathbb{P}_\theta) = |\theta|, \qquad
    JS(\mathbb{P}_0, \mathbb{P}_\theta) = \log 2, \qquad
    KL(\mathbb{P}_0 \| \mathbb{P}_\theta) = +\infty,

and all three are 0 at :math:`\theta = 0`. Only :math:`W_1` is continuous in :math:`\theta`, and
only it has a useful gradient: :math:`\partial_\theta W_1 = \operatorname{sign}\theta`, while JS
is flat (gradient 0) away from 0.

The experiment checks this with *trained* critics instead of closed forms. For every
:math:`\theta` on a grid, with the generator held fixed, it trains to near-optimality

* (a) the minimax-GAN discriminator (Goodfellow et al. 2014): at the optimum
  :math:`D^* = p_0/(p_0 + p_\theta)` and :math:`V(D^*) = 2\,JS - 2\log 2` (their Proposition 1
  and Theorem 1), so the objective's ``estimate`` :math:`\log 2 - \text{loss}/2` estimates JS;
* (b) a WGAN critic with weight clipping (Arjovsky et al. 2017, Algorithm 1): the clipped
  family is K-Lipschitz for an unknown K (Arjovsky et al. 2017, Section 3: the maximum over
  the box is at most :math:`K\,W_1`), so its gap :math:`E_{P_0} f - E_{P_\theta} f` estimates
  :math:`K\,W_1`; we report it raw and normalised by :math:`\hat K` = its value at
  :math:`|\theta| = \theta_{max}` divided by :math:`\theta_{max}` (with the default grid,
  its value at :math:`|\theta| = 1`);
* (c) a WGAN-GP critic (Gulrajani et al. 2017, :math:`\lambda = 10`): about 1-Lipschitz, with
  slope 1 between the lines at the optimum, so its gap estimates :math:`W_1 = |\theta|`.

Each critic is then frozen and asked for the gradient it would hand the generator: with
:math:`\theta` a leaf tensor, fake samples :math:`(\theta, Z)` and the objective's generator
loss :math:`L_G`, we compute :math:`dL_G/d\theta` by autograd. For the minimax GAN the
saturating loss :math:`E \log(1 - D(\theta, Z))` gives ~0 (the discriminator is saturated),
which is the point of the example; the non-saturating :math:`-E \log D(\theta, Z)` is reported
too. For the WGAN critics :math:`L_G = -E f(\theta, Z)` and
:math:`dL_G/d\theta \approx \operatorname{sign}\theta = d|\theta|/d\theta` (Arjovsky et al.
2017, Theorem 3: :math:`\nabla_\theta W = -E_z \nabla_\theta f(G_\theta(z))`).

Optimiser: Adam (lr ``lr``, betas (0.5, 0.9)) for all three critics, so that only the
objective and the constraint differ (the WGAN paper used RMSProp for the clipped critic).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from wgan.config import OptimConfig
from wgan.constraints import make_constraints
from wgan.data import make_dataset
from wgan.experiments.claims import parallel_lines_verdicts
from wgan.experiments.common import (
    ExperimentResult,
    check_settings,
    experiment_entry,
    fit_critic,
    format_table,
    progress,
    write_results,
)
from wgan.experiments.parallel_lines_figures import LOG2, plot_results
from wgan.gan.loss import GANLoss
from wgan.nets import MLP
from wgan.objectives import (
    make_objective,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    wasserstein_generator_loss,
)

NAME = "parallel-lines"
DESCRIPTION = (
    "Arjovsky et al. Example 1: trained JS / clipped-WGAN / WGAN-GP critics on two parallel "
    "lines; JS saturates at log 2 with ~0 gradient, W1 tracks |theta| with gradient sign(theta)"
)
METHODS = ("minimax", "clip", "gp")
METHOD_LABELS = {
    "minimax": "minimax GAN (JS)",
    "clip": "WGAN, weight clipping",
    "gp": "WGAN-GP (lambda=10)",
}


@dataclass
class ParallelLinesSettings:
    """Settings of the parallel-lines experiment (defaults: ~1-2 minutes on 2 CPU cores)."""

    n_theta: int = 11  # grid of theta: linspace(-theta_max, theta_max, n_theta)
    theta_max: float = 1.0  # largest |theta| of the grid
    hidden: int = 64  # critic MLP width
    depth: int = 2  # critic MLP hidden layers (ReLU)
    steps: int = 1500  # critic optimiser steps per theta and method (generator fixed)
    batch_size: int = 256  # samples per critic step
    lr: float = 1e-3  # Adam, betas (0.5, 0.9), for all three critics
    clip: float = 0.01  # weight-clipping bound c (WGAN default)
    gp_weight: float = 10.0  # lambda of WGAN-GP
    eval_samples: int = 10000  # fresh samples per distribution for the estimates and gradients
    accept_min_theta: float = 0.2  # summary errors are taken over |theta| >= this
    seed: int = 0  # seed of data, initial weights and evaluation samples
    threads: int = 1  # torch CPU threads while running (restored after); 0: leave as is

    def validate(self) -> None:
        checks = [
            (self.n_theta >= 2, "n_theta must be >= 2"),
            (self.theta_max > 0, "theta_max must be > 0"),
            (self.hidden >= 1, "hidden must be >= 1"),
            (self.depth >= 1, "depth must be >= 1"),
            (self.steps >= 1, "steps must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.clip > 0, "clip must be > 0"),
            (self.gp_weight >= 0, "gp_weight must be >= 0"),
            (self.eval_samples >= 1, "eval_samples must be >= 1"),
            (self.accept_min_theta >= 0, "accept_min_theta must be >= 0"),
            (self.threads >= 0, "threads must be >= 0"),
        ]
        check_settings(checks)


SETTINGS = ParallelLinesSettings

#: ``wgan experiment all --quick``: 5 thetas, 500 critic steps (the least at which the
#: verdicts are judged).
QUICK: dict[str, Any] = {"n_theta": 5, "steps": 500, "eval_samples": 2000}


# ------------------------------------------------------------------------------------------
# Closed forms
# ------------------------------------------------------------------------------------------


def closed_forms(theta: float) -> dict[str, float]:
    """W1 = |theta|, JS = log 2, KL = inf (all 0 at theta = 0); Arjovsky et al. 2017, Example 1."""
    if theta == 0.0:
        return {"w1": 0.0, "js": 0.0, "kl": 0.0}
    return {"w1": abs(theta), "js": LOG2, "kl": math.inf}


def theta_grid(settings: ParallelLinesSettings) -> list[float]:
    """The theta values (rounded so that 0.2 prints as 0.2)."""
    grid = np.linspace(-settings.theta_max, settings.theta_max, settings.n_theta)
    return [round(float(t), 10) + 0.0 for t in grid]  # + 0.0 turns -0.0 into 0.0


# ------------------------------------------------------------------------------------------
# Critics
# ------------------------------------------------------------------------------------------


def _objective_name(method: str) -> str:
    return "minimax" if method == "minimax" else "wasserstein"


def train_critic(
    method: str,
    theta: float,
    settings: ParallelLinesSettings,
    seed: int,
    init_seed: int | None = None,
) -> nn.Module:
    """Train one critic against the fixed model (theta, Z); returns it in eval mode.

    ``method``: ``"minimax"`` (GAN discriminator, logit output), ``"clip"`` (WGAN critic with
    weights clipped to [-c, c] after every step) or ``"gp"`` (WGAN critic + two-sided gradient
    penalty lambda * E(||grad D(x_hat)|| - 1)^2). ``seed`` drives the data, ``init_seed``
    (default ``seed``) the initial weights.
    """
    torch.manual_seed(seed if init_seed is None else init_seed)
    critic = MLP(2, 1, settings.hidden, settings.depth, "relu")
    objective = make_objective(_objective_name(method))
    constraints = make_constraints(
        clip=settings.clip if method == "clip" else 0.0,
        penalty="two_sided" if method == "gp" else "none",
        penalty_weight=settings.gp_weight,
    )
    constraints.project(critic)  # the clipped family starts inside the box
    optimiser = OptimConfig("adam", settings.lr, (0.5, 0.9))
    real_ds = make_dataset("parallel_lines", theta=0.0)
    fake_ds = make_dataset("parallel_lines", theta=theta)
    g = torch.Generator().manual_seed(seed)
    # real (0, z) and fake (theta, z), each (B, 2)
    loss = GANLoss(objective, constraints)
    return fit_critic(
        critic, loss, real_ds, fake_ds, settings.steps, settings.batch_size, optimiser, g
    )


def fake_at(theta: Tensor, z: Tensor) -> Tensor:
    """Generated samples (theta, z): theta a 0-d tensor, z (n,) -> (n, 2), differentiable in
    theta."""
    return torch.stack([theta.expand_as(z), z], dim=1)  # (n, 2)


def generator_gradient(critic: nn.Module, theta: float, z: Tensor, loss_fn) -> float:
    """d/dtheta of ``loss_fn(critic((theta, z)))['loss']`` with the critic frozen."""
    t = torch.tensor(theta, dtype=torch.float32, requires_grad=True)  # 0-d leaf
    out = critic(fake_at(t, z))  # (n, 1)
    (grad,) = torch.autograd.grad(loss_fn(out)["loss"], t)
    return float(grad)


@torch.no_grad()
def critic_estimate(critic: nn.Module, method: str, real: Tensor, fake: Tensor) -> float:
    """The objective's estimate on large sample sets real (n, 2) and fake (n, 2)."""
    objective = make_objective(_objective_name(method))
    return float(objective.critic_loss(critic(real), critic(fake))["estimate"])


def measure(critic: nn.Module, method: str, theta: float, n: int, seed: int) -> dict[str, float]:
    """Estimate and generator gradient(s) of one trained critic on ``n`` fresh samples."""
    g = torch.Generator().manual_seed(seed)
    real = make_dataset("parallel_lines", theta=0.0).sample(n, generator=g)  # (n, 2)
    z = torch.rand(n, generator=g)  # (n,)
    fake = fake_at(torch.tensor(theta), z)  # (n, 2)
    out = {"estimate": critic_estimate(critic, method, real, fake)}
    if method == "minimax":
        out["grad"] = generator_gradient(critic, theta, z, minimax_generator_loss)
        out["grad_nonsaturating"] = generator_gradient(
            critic, theta, z, nonsaturating_generator_loss
        )
    else:
        out["grad"] = generator_gradient(critic, theta, z, wasserstein_generator_loss)
    return out


@torch.no_grad()
def critic_profile(critic: nn.Module, xs: np.ndarray) -> np.ndarray:
    """Critic values along the x1 axis at z = 0.5: (len(xs),)."""
    pts = torch.tensor(np.stack([xs, np.full_like(xs, 0.5)], 1), dtype=torch.float32)
    return critic(pts).reshape(-1).numpy()


# ------------------------------------------------------------------------------------------
# Run
# ------------------------------------------------------------------------------------------


@experiment_entry
def run(settings: ParallelLinesSettings, run_dir: Path) -> ExperimentResult:
    """Train the three critics at every theta, measure, plot, write results.json."""
    start = time.time()
    thetas = theta_grid(settings)
    profile_theta = min((t for t in thetas if t > 0), key=lambda t: abs(t - 0.6))
    xs = np.linspace(-0.5, max(profile_theta, 0.0) + 0.5, 301)

    per: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    profile: dict[str, Any] = {"theta": profile_theta, "xs": xs}
    with progress(len(thetas) * len(METHODS), NAME) as bar:
        for i, theta in enumerate(thetas):
            for j, method in enumerate(METHODS):
                # Same initial weights for every theta (per method), fresh data per theta.
                seed = settings.seed + 1000 * (i + 1) + j
                bar.set_postfix_str(f"theta {theta:+.2f} {method}")
                critic = train_critic(method, theta, settings, seed, init_seed=settings.seed + j)
                bar.update(1)
                per[method].append(
                    measure(critic, method, theta, settings.eval_samples, seed + 500)
                )
                if theta == profile_theta:
                    values = critic_profile(critic, xs)
                    if method == "minimax":
                        profile[method] = 1.0 / (1.0 + np.exp(-values))
                    else:
                        base = float(critic_profile(critic, np.array([0.0]))[0])
                        profile[method] = values - base

    # K_hat: the clipped family's scale, from its estimates at |theta| = theta_max.
    ends = [
        r["estimate"]
        for t, r in zip(thetas, per["clip"], strict=True)
        if abs(abs(t) - settings.theta_max) < 1e-9
    ]
    k_hat = float(np.mean(ends)) / settings.theta_max
    if not (math.isfinite(k_hat) and k_hat > 0):
        k_hat = math.nan
    profile["clip"] = profile["clip"] / k_hat

    rows_out = []
    for i, theta in enumerate(thetas):
        cf = closed_forms(theta)
        rows_out.append(
            {
                "theta": theta,
                "closed_w1": cf["w1"],
                "closed_js": cf["js"],
                "closed_kl": cf["kl"],
                "minimax_js_estimate": per["minimax"][i]["estimate"],
                "minimax_grad_saturating": per["minimax"][i]["grad"],
                "minimax_grad_nonsaturating": per["minimax"][i]["grad_nonsaturating"],
                "gp_w1_estimate": per["gp"][i]["estimate"],
                "gp_grad": per["gp"][i]["grad"],
                "clip_estimate_raw": per["clip"][i]["estimate"],
                "clip_estimate_normalised": per["clip"][i]["estimate"] / k_hat,
                "clip_grad_raw": per["clip"][i]["grad"],
                "clip_grad_normalised": per["clip"][i]["grad"] / k_hat,
            }
        )

    far = [
        r
        for r in rows_out
        if abs(r["theta"]) >= settings.accept_min_theta - 1e-9 and r["theta"] != 0.0
    ]

    def max_rel(key: str, ref) -> float:
        if not far:
            return math.nan
        return max(abs(r[key] - ref(r)) / ref(r) for r in far)

    summary = {
        "gp_w1_max_rel_error": max_rel("gp_w1_estimate", lambda r: abs(r["theta"])),
        "minimax_js_max_rel_error": max_rel("minimax_js_estimate", lambda r: LOG2),
        "clip_normalised_max_rel_error": max_rel(
            "clip_estimate_normalised", lambda r: abs(r["theta"])
        ),
        "clip_k_hat": k_hat,
        "minimax_max_abs_grad_saturating": max(
            (abs(r["minimax_grad_saturating"]) for r in far), default=math.nan
        ),
        "gp_grad_max_abs_error_vs_sign": max(
            (abs(r["gp_grad"] - math.copysign(1.0, r["theta"])) for r in far), default=math.nan
        ),
        "accept_min_theta": settings.accept_min_theta,
        "seconds": time.time() - start,
    }
    numbers = {
        "per_theta": rows_out,
        "summary": summary,
        "normalisation": (
            "clip_*_normalised = raw / K_hat, K_hat = mean clipped estimate at |theta| = theta_max "
            "divided by theta_max (the clipped family estimates K * W1 for an unknown K)"
        ),
    }
    write_results(run_dir, NAME, settings, numbers)
    verdicts = parallel_lines_verdicts(numbers, settings)
    figure = plot_results(thetas, per, k_hat, profile, run_dir / "parallel_lines.png")

    headers = [
        "theta",
        "W1",
        "JS",
        "JS est",
        "dG sat",
        "dG ns",
        "GP est",
        "dG GP",
        "clip raw",
        "clip/K",
        "dG clip/K",
    ]
    rows = [
        [
            r["theta"],
            r["closed_w1"],
            r["closed_js"],
            r["minimax_js_estimate"],
            r["minimax_grad_saturating"],
            r["minimax_grad_nonsaturating"],
            r["gp_w1_estimate"],
            r["gp_grad"],
            r["clip_estimate_raw"],
            r["clip_estimate_normalised"],
            r["clip_grad_normalised"],
        ]
        for r in rows_out
    ]
    table = "\n".join(
        [
            format_table(headers, rows),
            "",
            f"KL = inf for theta != 0. dG = dL_G/dtheta (sat: log(1-D), ns: -log D). "
            f"K_hat (clipped family scale) = {k_hat:.4g}",
            f"over |theta| >= {settings.accept_min_theta:g}: max rel. error WGAN-GP vs |theta| = "
            f"{summary['gp_w1_max_rel_error']:.3g}, minimax JS vs log 2 = "
            f"{summary['minimax_js_max_rel_error']:.3g}, max |dG sat| = "
            f"{summary['minimax_max_abs_grad_saturating']:.3g}",
        ]
    )
    return ExperimentResult(NAME, run_dir, numbers, table, [figure], verdicts)
