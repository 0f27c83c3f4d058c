"""The figure of the parallel-lines experiment (Arjovsky et al. 2017, Example 1): estimates,
generator gradients and critic profiles against theta."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from wgan.figures.plotting import legend_beside, save_figure, subplots

LOG2 = math.log(2.0)


# ------------------------------------------------------------------------------------------
# Figure
# ------------------------------------------------------------------------------------------


def plot_results(
    thetas: list[float],
    per: dict[str, list[dict[str, float]]],
    k_hat: float,
    profile: dict[str, Any],
    path: Path,
) -> Path:
    th = np.array(thetas)
    fine = np.linspace(th.min(), th.max(), 401)
    fig, axes = subplots(1, 3, figsize=(17, 5))

    # (1) estimates vs theta, closed forms overlaid.
    ax = axes[0]
    ax.plot(fine, np.abs(fine), "k-", lw=1.2, label="closed form W1 = |theta|")
    ax.plot(
        fine[fine < 0],
        np.full((fine < 0).sum(), LOG2),
        "k--",
        lw=1.2,
        label="closed form JS = log 2 (0 at theta = 0)",
    )
    ax.plot(fine[fine > 0], np.full((fine > 0).sum(), LOG2), "k--", lw=1.2)
    ax.plot([0], [LOG2], "o", mfc="white", mec="k", ms=6)
    ax.plot([0], [0], "ko", ms=5)
    gp_est = [r["estimate"] for r in per["gp"]]
    js_est = [r["estimate"] for r in per["minimax"]]
    clip_norm = [r["estimate"] / k_hat for r in per["clip"]]
    ax.plot(th, js_est, "o", color="tab:red", label="minimax critic: JS estimate")
    ax.plot(th, gp_est, "s", color="tab:blue", label="WGAN-GP critic: W1 estimate")
    ax.plot(
        th,
        clip_norm,
        "^",
        color="tab:green",
        mfc="none",
        label=f"clipped critic: estimate / K_hat (K_hat = {k_hat:.3g})",
    )
    ax.plot([], [], " ", label="KL = +inf for every theta != 0 (off the chart)")
    top = 1.75 * max(float(np.max(np.abs(th))), LOG2)
    ax.set_ylim(-0.05, top)
    ax.set_xlabel("theta (model line at x1 = theta)")
    ax.set_ylabel("divergence / distance estimate")
    ax.set_title("Estimates of trained critics vs closed forms")
    legend_beside(ax)
    ax.grid(alpha=0.3)

    # (2) generator gradient vs theta.
    ax = axes[1]
    ax.plot(fine, np.sign(fine), "k-", lw=1.2, label="d|theta|/dtheta = sign(theta)")
    ax.axhline(0.0, color="k", ls="--", lw=1.0, label="dJS/dtheta = 0")
    ax.plot(
        th,
        [r["grad"] for r in per["minimax"]],
        "o",
        color="tab:red",
        label="minimax, log(1-D) (saturating)",
    )
    ax.plot(
        th,
        [r["grad_nonsaturating"] for r in per["minimax"]],
        "x",
        color="tab:orange",
        label="minimax, -log D (non-saturating)",
    )
    ax.plot(th, [r["grad"] for r in per["gp"]], "s", color="tab:blue", label="WGAN-GP, -E f")
    ax.plot(
        th,
        [r["grad"] / k_hat for r in per["clip"]],
        "^",
        color="tab:green",
        mfc="none",
        label="WGAN clipped, -E f, / K_hat",
    )
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("theta")
    ax.set_ylabel("dL_G / dtheta (symlog scale)")
    ax.set_title("Gradient each critic gives the generator")
    legend_beside(ax)
    ax.grid(alpha=0.3)

    # (3) critic profiles along x1 at one theta.
    ax = axes[2]
    xs, t0 = profile["xs"], profile["theta"]
    ax.plot(xs, profile["minimax"], color="tab:red", label="minimax: D = sigmoid(logit)")
    ax.set_ylabel("minimax discriminator D(x1, 0.5)")
    ax.set_ylim(-0.05, 1.05)
    ax2 = ax.twinx()
    ax2.plot(xs, profile["gp"], color="tab:blue", label="WGAN-GP: f - f(0, 0.5)")
    ax2.plot(
        xs, profile["clip"], color="tab:green", ls="--", label="clipped: (f - f(0, 0.5)) / K_hat"
    )
    ax2.set_ylabel("WGAN critic value, shifted")
    for x in (0.0, t0):
        ax.axvline(x, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("x1 (real line at 0, model line at theta)")
    ax.set_title(f"Critics along x1 at theta = {t0:g}")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    legend_beside(ax, handles, labels)
    fig.suptitle(
        "Parallel lines (Arjovsky et al. 2017, Example 1): P0 = (0, Z), P_theta = (theta, Z)"
    )
    fig.tight_layout()
    return save_figure(fig, path)
