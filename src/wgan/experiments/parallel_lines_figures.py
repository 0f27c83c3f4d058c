"""The figure of the parallel-lines experiment (Arjovsky et al. 2017, Example 1): estimates,
generator gradients and critic profiles against theta."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from wgan.figures.plotting import legend_beside, save_figure, subplots

LOG2 = math.log(2.0)


def _series(ax: Any, th: np.ndarray, series: list[tuple[list[float], str, str, str]]) -> None:
    """Markers over theta: each ``(values, marker, colour, label)``; triangles are hollow."""
    for values, marker, colour, label in series:
        face = "none" if marker == "^" else colour
        ax.plot(th, values, marker, color=colour, mfc=face, label=label)


def _finish(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    legend_beside(ax)
    ax.grid(alpha=0.3)


def plot_results(
    thetas: list[float],
    per: dict[str, list[dict[str, float]]],
    k_hat: float,
    profile: dict[str, Any],
    path: Path,
) -> Path:
    """Three panels: the critics' estimates against the closed forms, the gradient each gives
    the generator, and the critics' profiles along x1 at ``profile["theta"]``."""
    th = np.array(thetas)
    fine = np.linspace(th.min(), th.max(), 401)
    left, right = fine[fine < 0], fine[fine > 0]
    fig, axes = subplots(1, 3, figsize=(17, 5))

    # (1) estimates vs theta, closed forms overlaid.
    ax = axes[0]
    ax.plot(fine, np.abs(fine), "k-", lw=1.2, label="closed form W1 = |theta|")
    label = "closed form JS = log 2 (0 at theta = 0)"
    ax.plot(left, np.full(left.size, LOG2), "k--", lw=1.2, label=label)
    ax.plot(right, np.full(right.size, LOG2), "k--", lw=1.2)
    ax.plot([0], [LOG2], "o", mfc="white", mec="k", ms=6)
    ax.plot([0], [0], "ko", ms=5)
    clip_label = f"clipped critic: estimate / K_hat (K_hat = {k_hat:.3g})"
    estimates = [
        ([r["estimate"] for r in per["minimax"]], "o", "tab:red", "minimax critic: JS estimate"),
        ([r["estimate"] for r in per["gp"]], "s", "tab:blue", "WGAN-GP critic: W1 estimate"),
        ([r["estimate"] / k_hat for r in per["clip"]], "^", "tab:green", clip_label),
    ]
    _series(ax, th, estimates)
    ax.plot([], [], " ", label="KL = +inf for every theta != 0 (off the chart)")
    ax.set_ylim(-0.05, 1.75 * max(float(np.max(np.abs(th))), LOG2))
    title = "Estimates of trained critics vs closed forms"
    _finish(ax, "theta (model line at x1 = theta)", "divergence / distance estimate", title)

    # (2) generator gradient vs theta.
    ax = axes[1]
    ax.plot(fine, np.sign(fine), "k-", lw=1.2, label="d|theta|/dtheta = sign(theta)")
    ax.axhline(0.0, color="k", ls="--", lw=1.0, label="dJS/dtheta = 0")
    gradients = [
        ([r["grad"] for r in per["minimax"]], "o", "tab:red", "minimax, log(1-D) (saturating)"),
        (
            [r["grad_nonsaturating"] for r in per["minimax"]],
            "x",
            "tab:orange",
            "minimax, -log D (non-saturating)",
        ),
        ([r["grad"] for r in per["gp"]], "s", "tab:blue", "WGAN-GP, -E f"),
        ([r["grad"] / k_hat for r in per["clip"]], "^", "tab:green", "WGAN clipped, -E f, / K_hat"),
    ]
    _series(ax, th, gradients)
    ax.set_yscale("symlog", linthresh=1.0)
    _finish(ax, "theta", "dL_G / dtheta (symlog scale)", "Gradient each critic gives the generator")

    # (3) critic profiles along x1 at one theta.
    ax = axes[2]
    xs, t0 = profile["xs"], profile["theta"]
    ax.plot(xs, profile["minimax"], color="tab:red", label="minimax: D = sigmoid(logit)")
    ax.set(ylabel="minimax discriminator D(x1, 0.5)", ylim=(-0.05, 1.05))
    ax.set(
        xlabel="x1 (real line at 0, model line at theta)",
        title=f"Critics along x1 at theta = {t0:g}",
    )
    ax2 = ax.twinx()
    ax2.plot(xs, profile["gp"], color="tab:blue", label="WGAN-GP: f - f(0, 0.5)")
    label = "clipped: (f - f(0, 0.5)) / K_hat"
    ax2.plot(xs, profile["clip"], color="tab:green", ls="--", label=label)
    ax2.set_ylabel("WGAN critic value, shifted")
    for x in (0.0, t0):
        ax.axvline(x, color="grey", lw=0.8, ls=":")
    (h1, l1), (h2, l2) = ax.get_legend_handles_labels(), ax2.get_legend_handles_labels()
    legend_beside(ax, h1 + h2, l1 + l2)
    fig.suptitle(
        "Parallel lines (Arjovsky et al. 2017, Example 1): P0 = (0, Z), P_theta = (theta, Z)"
    )
    fig.tight_layout()
    return save_figure(fig, path)
