"""Figures: for 2-D data, real against generated samples over the critic's contour map.

This is the picture of the WGAN-GP toy figures (Gulrajani et al. 2017, Fig. 1, and their reference
script ``gan_toy.py``): the critic's value surface as filled contours, real samples in one colour,
generated in another.

Figures are bare :class:`matplotlib.figure.Figure` objects, not pyplot figures: building one
selects no backend and registers nothing with pyplot, and :func:`save_figure` writes PNG through
``Figure.savefig``, which uses a PNG (Agg) canvas for that call only. So importing or using this
package never changes the user's matplotlib backend, and works without a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn


@torch.no_grad()
def critic_grid(
    critic: nn.Module, bounds: tuple[float, float, float, float], resolution: int = 128
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Critic values on a regular grid: returns X, Y, Z each of shape (resolution, resolution)."""
    xmin, xmax, ymin, ymax = bounds
    xs = np.linspace(xmin, xmax, resolution)
    ys = np.linspace(ymin, ymax, resolution)
    X, Y = np.meshgrid(xs, ys)
    device = next(critic.parameters()).device
    points = torch.as_tensor(np.stack([X.ravel(), Y.ravel()], 1), dtype=torch.float32)
    Z = critic(points.to(device)).reshape(resolution, resolution).float().cpu().numpy()
    return X, Y, Z


def plot_toy(
    critic: nn.Module,
    real: np.ndarray,
    fake: np.ndarray,
    bounds: tuple[float, float, float, float],
    title: str = "",
) -> Figure:
    """A figure of the critic's contour map with real (N, 2) and generated (M, 2) samples."""
    was_training = critic.training
    critic.eval()
    X, Y, Z = critic_grid(critic, bounds)
    critic.train(was_training)
    fig, ax = subplots(figsize=(5.5, 5))
    cs = ax.contourf(X, Y, Z, levels=30, cmap="viridis", alpha=0.85)
    fig.colorbar(cs, ax=ax, label="critic value D(x)")
    ax.scatter(real[:, 0], real[:, 1], s=3, c="tab:orange", label="real", alpha=0.6)
    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="white", edgecolors="none", label="generated")
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def scatter_panel(
    ax,
    real: np.ndarray,
    fake: np.ndarray | None,
    modes: np.ndarray | None,
    bounds: tuple[float, float, float, float],
    title: str,
) -> None:
    """One panel: real (N, 2) in grey, generated (M, 2) in blue (if any), modes (K, 2) as red x."""
    ax.scatter(real[:, 0], real[:, 1], s=2, c="0.7", label="real")
    if fake is not None:
        ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:blue", alpha=0.6, label="generated")
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], s=20, marker="x", c="tab:red", label="modes")
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")


def subplots(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **kwargs: Any
) -> tuple[Figure, Any]:
    """``pyplot.subplots`` without pyplot: a bare :class:`~matplotlib.figure.Figure` and its axes.

    ``kwargs`` go to :meth:`Figure.subplots` (``squeeze``, ``sharex``, ``gridspec_kw``, ...).
    No backend is selected and no global state is touched; write the figure with
    :func:`save_figure`.
    """
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save_figure(fig: Figure, path: Path) -> Path:
    """Save ``fig`` as PNG (creating folders); a figure made with pyplot is also closed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    if getattr(fig.canvas, "manager", None) is not None:  # registered with pyplot: release it
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path
