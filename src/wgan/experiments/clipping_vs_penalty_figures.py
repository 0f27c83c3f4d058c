"""The figures of the clipping-vs-penalty experiment (Gulrajani et al. 2017, Fig. 1): critic
surfaces, gradient norms per layer, and the weight histograms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from wgan.figures.plotting import (
    legend_beside,
    legend_right_of_figure,
    save_figure,
    subplots,
)


def fraction_at_bound(weights: np.ndarray, clip: float, tol: float = 0.01) -> float:
    """Fraction of weights within ``tol * c`` of +-c (i.e. ``|w| >= (1 - tol) c``)."""
    return float(np.mean(np.abs(weights) >= (1.0 - tol) * clip))


# ------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------


def surfaces_figure(
    surfaces: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]],
    samples: dict[str, tuple[np.ndarray, np.ndarray]],
    datasets: list[str],
    methods: list[str],
    settings: Any,
    path: Path,
) -> Path:
    r = settings.plot_range
    fig, axes = subplots(
        len(datasets),
        len(methods),
        figsize=(3.3 * len(methods), 3.3 * len(datasets)),
        squeeze=False,
    )
    for i, ds in enumerate(datasets):
        real, fake = samples[ds]
        for j, method in enumerate(methods):
            ax = axes[i][j]
            X, Y, Z = surfaces[(ds, method)]
            ax.contourf(X, Y, Z, levels=20, cmap="viridis")
            ax.contour(X, Y, Z, levels=10, colors="k", linewidths=0.3)
            ax.scatter(
                fake[:, 0],
                fake[:, 1],
                s=2,
                c="tab:green",
                alpha=0.4,
                label=f"fixed generator (real + N(0, {settings.noise_std:g}^2))",
            )
            ax.scatter(real[:, 0], real[:, 1], s=2, c="tab:orange", label="real")
            ax.set_xlim(-r, r)
            ax.set_ylim(-r, r)
            ax.set_aspect("equal")
            ax.set_title(f"{ds}: {method}", fontsize=9)
            ax.set_xlabel("x1", fontsize=8)
            ax.set_ylabel("x2", fontsize=8)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(
        "Critic value surfaces (filled contours of f): weight clipping (RMSProp 5e-5) vs "
        f"gradient penalty (lambda={settings.gp_weight:g}, Adam 1e-4)"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    # beyond the right edge: the contour maps fill every panel
    legend_right_of_figure(fig, handles, labels, markerscale=5, fontsize=9)
    return save_figure(fig, path)


def gradients_figure(deep: dict[str, dict[str, Any]], settings: Any, path: Path) -> Path:
    fig, ax = subplots(figsize=(6.5, 4.5))
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (method, rec) in enumerate(deep.items()):
        norms = np.array(rec["layers"], dtype=float)
        norms = np.where(norms > 0, norms, np.nan)  # a dead layer has no point on a log scale
        layers = np.arange(1, len(norms) + 1)
        style = "-o" if method == "GP" else "--s"
        ax.plot(layers, norms, style, color=colours[k % len(colours)], ms=4, label=method)
    ax.set_yscale("log")
    ax.set_xlabel("critic layer l (1 = next to the input)")
    ax.set_ylabel("mean ||df/dh_l|| over a batch (log scale)")
    ax.set_title(
        f"Gradient norms through a {settings.deep_depth}-layer ReLU critic "
        f"(width {settings.deep_hidden}, {settings.focus_dataset})",
        fontsize=10,
    )
    legend_beside(ax, fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return save_figure(fig, path)


def histogram_figure(
    weights: dict[str, np.ndarray], clips: dict[str, float], where: str, path: Path
) -> Path:
    methods = list(weights)
    fig, axes = subplots(1, len(methods), figsize=(3.6 * len(methods), 3.4), squeeze=False)
    for ax, method in zip(axes[0], methods, strict=True):
        w = weights[method]
        if method in clips:
            c = clips[method]
            ax.hist(
                w / c,
                bins=60,
                range=(-1.05, 1.05),
                color="tab:red",
                label=f"weights / c ({fraction_at_bound(w, c):.0%} at +-c)",
            )
            ax.set_xlabel("weight / c")
        else:
            q = float(np.percentile(np.abs(w), 99.5))
            ax.hist(
                w,
                bins=60,
                range=(-q, q),
                color="tab:blue",
                label="weights (unconstrained; central 99.5%)",
            )
            ax.set_xlabel("weight")
        ax.set_ylabel("count")
        ax.set_title(method, fontsize=10)
        legend_beside(ax)
    fig.suptitle(f"Critic weight histograms ({where}): clipping piles weights at +-c")
    fig.tight_layout()
    return save_figure(fig, path)
