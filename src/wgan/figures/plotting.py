"""Figures: for 2-D data, real against generated samples over the critic's contour map.

This is the picture of the WGAN-GP toy figures (Gulrajani et al. 2017, Fig. 1, and their reference
script ``gan_toy.py``): the critic's value surface as filled contours, real samples in one colour,
generated in another.

Figures are bare :class:`matplotlib.figure.Figure` objects, not pyplot figures: building one
selects no backend and registers nothing with pyplot, and :func:`save_figure` writes PNG through
``Figure.savefig``, which uses a PNG (Agg) canvas for that call only. So importing or using this
package never changes the user's matplotlib backend, and works without a display.

Legends stand beside the axes (:func:`legend_beside`), never over the data; every axes names
what its axes measure. :func:`legend_covers_data` and :func:`missing_axis_labels` check a drawn
figure for both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from wgan.figures.style import REAL, draw_samples, path_colours

#: The colour map of the critic's value surface: grey, so that the sample colours stay distinct.
CRITIC_CMAP = "Greys"


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
    # A grey map under the points: the sample colours (wgan.figures.style) stay distinct on it.
    cs = ax.contourf(X, Y, Z, levels=30, cmap=CRITIC_CMAP, alpha=0.9, zorder=1)
    fig.colorbar(cs, ax=ax, label="critic value D(x)")
    draw_samples(ax, real, fake)
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_aspect("equal")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    # Beside the colorbar, outside the figure's right edge (save_figure keeps it): the contours
    # fill the axes, so any legend inside would cover data.
    handles, labels = ax.get_legend_handles_labels()
    legend_right_of_figure(fig, handles, labels, markerscale=4)
    return fig


def scatter_panel(
    ax,
    real: np.ndarray,
    fake: np.ndarray | None,
    modes: np.ndarray | None,
    bounds: tuple[float, float, float, float],
    title: str,
) -> None:
    """One panel: generated (M, 2) samples (if any), the real (N, 2) points over them and the
    modes (K, 2) over both, in the style of every sample figure (:mod:`wgan.figures.style`)."""
    draw_samples(ax, real, fake, modes)
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
    """Save ``fig`` as PNG (creating folders); a figure made with pyplot is also closed.

    The saved area is the figure's tight bounding box, so a legend placed beside the axes or
    outside the figure's edge (:func:`legend_beside`) is kept whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.1)
    if getattr(fig.canvas, "manager", None) is not None:  # registered with pyplot: release it
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path


# ------------------------------------------------------------------------------------ legends


def legend_beside(ax, handles: list | None = None, labels: list | None = None, **kwargs: Any):
    """A legend outside ``ax``, to the right of its top edge, so it covers none of its data.

    ``handles`` / ``labels`` default to the axes' own labelled artists. When ``ax`` has a twin
    with its own y axis on the right (``twinx``), the legend starts beyond that axis's tick
    labels and label. ``tight_layout`` makes room for it; :func:`save_figure` keeps it in the
    saved area.
    """
    from matplotlib.transforms import ScaledTranslation

    kwargs.setdefault("fontsize", 7)
    kwargs = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0, **kwargs}
    twins = [a for a in ax.get_shared_x_axes().get_siblings(ax) if a is not ax]
    if twins:
        # Measure how far the twins' right-hand ticks and labels stick out (in inches, which
        # a later tight_layout does not change) and start the legend there.
        fig = ax.get_figure()
        renderer = _renderer(fig)
        out = max(t.get_tightbbox(renderer).x1 - t.get_window_extent(renderer).x1 for t in twins)
        shift = ScaledTranslation(max(0.0, out) / fig.dpi, 0.0, fig.dpi_scale_trans)
        kwargs.setdefault("bbox_transform", ax.transAxes + shift)
    if handles is None:
        return _opaque(ax.legend(**kwargs))
    return _opaque(ax.legend(handles, labels, **kwargs))


def legend_right_of_figure(fig: Figure, handles: list, labels: list, **kwargs: Any):
    """A figure legend beyond the figure's right edge (kept by :func:`save_figure`): for axes
    whose right side is taken by a colorbar and whose area is filled by a contour map."""
    kwargs = {"loc": "upper left", "bbox_to_anchor": (1.0, 0.95), "fontsize": 8, **kwargs}
    return _opaque(fig.legend(handles, labels, **kwargs))


def _opaque(legend):  # noqa: ANN001, ANN202 - a matplotlib Legend
    """``legend`` with its samples drawn opaque: translucent points (drawn so that layers show
    through each other) would be faint in the legend."""
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)
    return legend


def _renderer(fig: Figure):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)  # a bare Figure: attach a PNG canvas to measure it
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    return renderer


def _display_points(artist, ax) -> np.ndarray:
    """The data of a line or scatter in display pixels, ``(N, 2)`` (segments densified)."""
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D

    if isinstance(artist, Line2D):
        xy = np.asarray(artist.get_xydata(), dtype=float)  # (N, 2) data coordinates
        pts = artist.get_transform().transform(xy) if len(xy) else np.zeros((0, 2))
        if len(pts) > 1 and artist.get_linestyle() not in ("None", "none", "", " "):
            # 20 points per segment, so a line crossing the legend counts even between vertices
            w = np.linspace(0.0, 1.0, 20)[None, :, None]
            pts = (pts[:-1, None] * (1 - w) + pts[1:, None] * w).reshape(-1, 2)
        return pts
    if isinstance(artist, PathCollection):
        offsets = np.asarray(artist.get_offsets(), dtype=float)
        if not len(offsets):
            return np.zeros((0, 2))
        return artist.get_offset_transform().transform(offsets)
    return np.zeros((0, 2))


def _inside(box, pts: np.ndarray) -> np.ndarray:
    """Which display points ``(N, 2)`` lie in the box: ``(N,)`` bools."""
    x, y = pts[:, 0], pts[:, 1]
    return (x >= box.x0) & (x <= box.x1) & (y >= box.y0) & (y <= box.y1)


def legend_covers_data(fig: Figure) -> list[str]:
    """Where a legend of ``fig`` covers data: one description per (legend, axes) overlap.

    A legend covers an axes' data when a point of a line (densified along its segments) or a
    scatter, inside the axes' area, falls in the legend's box, or when the box meets the area of
    an axes that shows a filled image, mesh or contour map. An empty list means no legend
    covers data.
    """
    from matplotlib.collections import PathCollection, QuadMesh
    from matplotlib.contour import ContourSet
    from matplotlib.image import AxesImage
    from matplotlib.lines import Line2D

    renderer = _renderer(fig)
    legends = [(ax, ax.get_legend()) for ax in fig.axes if ax.get_legend() is not None]
    legends += [(None, leg) for leg in fig.legends]
    found = []
    for owner, legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            area = ax.get_window_extent(renderer)
            if ax.get_label() == "<colorbar>" or not box.overlaps(area):
                continue
            where = f"legend of axes '{owner.get_title() if owner else 'figure'}'"
            if any(isinstance(a, (AxesImage, QuadMesh, ContourSet)) for a in ax.get_children()):
                found.append(f"{where} covers the image of axes '{ax.get_title()}'")
                continue
            for patch in ax.patches:  # bars, histograms, shaded areas
                ext = patch.get_window_extent(renderer)
                if patch.get_visible() and ext.overlaps(box) and ext.overlaps(area):
                    found.append(f"{where} covers a bar or patch of '{ax.get_title()}'")
                    break
            for artist in ax.get_children():
                if not artist.get_visible() or not isinstance(artist, (PathCollection, Line2D)):
                    continue
                pts = _display_points(artist, ax)
                if np.any(_inside(area, pts) & _inside(box, pts)):
                    found.append(f"{where} covers '{artist.get_label()}' of '{ax.get_title()}'")
    return found


def missing_axis_labels(fig: Figure) -> list[str]:
    """Axes of ``fig`` that show an x or y axis without a label (colorbars excepted).

    An axis counts as labelled when it, or an axes sharing it (``twinx``, ``sharex``), has a
    label; an axis that is switched off needs none.
    """
    missing = []
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>" or not ax.axison:
            continue
        for name in ("x", "y"):
            axis = getattr(ax, f"{name}axis")
            if not axis.get_visible():
                continue
            group = getattr(ax, f"get_shared_{name}_axes")().get_siblings(ax)
            if not any(getattr(a, f"get_{name}label")() for a in group):
                missing.append(f"axes '{ax.get_title()}' has no {name} label")
    return missing


# ------------------------------------------------------------------------ latent-space figures


def plot_image_grid(
    images: Tensor,
    row_names: list[str],
    col_names: list[str],
    title: str,
    xlabel: str = "column",
    ylabel: str = "row",
    tile_inches: float = 0.7,
) -> Figure:
    """A ``(R, S, C, H, W)`` grid of images in ``[-1, 1]`` with rows and columns named.

    Pixels are drawn as blocks (nearest-neighbour upscaling), ``tile_inches`` per image, so
    8x8 digits are as legible as 64x64 ones; the ticks sit at the tile centres.
    """
    from wgan.figures.images import image_grid

    rows, cols = images.shape[:2]
    h, w = images.shape[-2:]
    pad = 2
    grid = image_grid(images.flatten(0, 1), nrow=cols, padding=pad)  # (C, H', W') in [0, 1]
    arr = grid.permute(1, 2, 0).numpy()  # (H', W', C)
    label_room = 0.12 * max((len(n) for n in row_names), default=0) + 0.6
    fig = Figure(figsize=(cols * tile_inches + label_room + 0.4, rows * tile_inches + 1.2))
    ax = fig.subplots()
    if arr.shape[2] == 1:
        ax.imshow(arr[:, :, 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(arr, interpolation="nearest")
    ax.set_xticks([pad + j * (w + pad) + (w - 1) / 2 for j in range(cols)], col_names)
    ax.set_yticks([pad + i * (h + pad) + (h - 1) / 2 for i in range(rows)], row_names)
    ax.tick_params(labelsize=7, length=0)
    if max((len(n) for n in col_names), default=0) > 6:
        ax.tick_params(axis="x", labelrotation=30)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_latent_paths(
    real: np.ndarray,
    cloud: np.ndarray,
    paths: np.ndarray,
    names: list[str],
    kinds: list[str],
    bounds: tuple[float, float, float, float],
    title: str,
) -> Figure:
    """Latent paths mapped to the plane: ``paths`` ``(R, S, 2)`` are ``G(z_t)`` along each path.

    The generated cloud (M, 2) and the real data (N, 2) over it, faint, in the colours of every
    sample figure (:mod:`wgan.figures.style`); then one colour per path
    (:func:`~wgan.figures.style.path_colours`: the straight and the spherical path between the
    same endpoints in a dark and a light shade of one hue), straight paths solid, spherical ones
    dashed, a circle at ``t = 0`` and a square at ``t = 1``. The legend stands beside the axes.
    """
    fig, ax = subplots(figsize=(7.5, 5))
    draw_samples(ax, None, cloud, alpha=0.25, zorder=1)
    ax.scatter(real[:, 0], real[:, 1], label="real", **{**REAL, "alpha": 0.35, "zorder": 1.5})
    groups, pair = [], -1
    for r, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        same_ends = r and kinds[r - 1] != kind and name.split()[-1] == names[r - 1].split()[-1]
        pair += 0 if same_ends else 1  # the slerp row of the same endpoints: the same hue
        groups.append(pair)
    colours = path_colours(groups)
    for r, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        colour = colours[r]
        style = "--" if kind == "slerp" else "-"
        ax.plot(paths[r, :, 0], paths[r, :, 1], style, c=colour, marker=".", ms=4, label=name)
        ax.plot(*paths[r, 0], "o", c=colour, ms=6)
        ax.plot(*paths[r, -1], "s", c=colour, ms=6)
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_aspect("equal")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title + "\n(circle: t = 0, square: t = 1)", fontsize=9)
    legend_beside(ax, markerscale=2)
    fig.tight_layout()
    return fig
