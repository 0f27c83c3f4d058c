"""Checks of a drawn figure beyond those of :mod:`wgan.figures.plotting` (a legend over data,
a missing axis label): whether a layer of points can still be seen, whether a legend's entries
can be told apart by colour, and whether a legend stands clear of every axes.

Both work on the rendered pixels or the legend's own artists, so they judge what a reader sees,
whatever drew the figure.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["legend_colour_clashes", "legends_over_axes", "visibility"]


def _pixels(fig: Figure) -> np.ndarray:
    """The figure rendered by Agg: ``(H, W, 3)`` float RGB."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # a bare Figure: attach a PNG canvas to render it
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float)


def legends_over_axes(fig: Figure) -> list[str]:
    """Legends whose box meets the area of an axes (colorbars excepted), one description each:
    stricter than :func:`~wgan.figures.plotting.legend_covers_data`, which allows a legend in
    an empty corner; a figure of samples keeps its legend beside the axes, wherever the samples
    fall."""
    _pixels(fig)  # lay the figure out
    renderer = fig.canvas.get_renderer()
    legends = [(ax.get_title(), ax.get_legend()) for ax in fig.axes if ax.get_legend()]
    legends += [("figure", legend) for legend in fig.legends]
    return [
        f"the legend of '{owner}' is over axes '{ax.get_title()}'"
        for owner, legend in legends
        for ax in fig.axes
        if ax.get_label() != "<colorbar>"
        and legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
    ]


def _points(fig: Figure) -> list[Any]:
    """The visible scatters and lines of every axes (contours and images are background)."""
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D

    return [
        a
        for ax in fig.axes
        for a in ax.get_children()
        if isinstance(a, (PathCollection, Line2D)) and a.get_visible()
    ]


def _change(fig: Figure, layer: list[Any]) -> float:
    """Total colour change (sum of |RGB| differences) that drawing ``layer`` makes."""
    shown = _pixels(fig)
    for a in layer:
        a.set_visible(False)
    try:
        hidden = _pixels(fig)
    finally:
        for a in layer:
            a.set_visible(True)
    return float(np.abs(shown - hidden).sum())


def visibility(fig: Figure, label: str) -> float:
    """How much of the points labelled ``label`` a reader sees: the colour change they make in
    the figure, over the change they make with every other scatter and line hidden.

    1 for a layer that nothing covers, 0 for one hidden under opaque points; a layer under
    translucent points counts in proportion to what shows through (it may exceed 1 where what
    lies beneath makes it stand out more than the background does). ValueError when no
    visible artist has that label.
    """
    data = _points(fig)
    layer = [a for a in data if a.get_label() == label]
    if not layer:
        raise ValueError(f"no visible scatter or line is labelled {label!r}")
    others = [a for a in data if a.get_label() != label]
    in_figure = _change(fig, layer)
    for a in others:
        a.set_visible(False)
    try:
        alone = _change(fig, layer)
    finally:
        for a in others:
            a.set_visible(True)
    return in_figure / alone if alone else 0.0


def _colour(handle: Any) -> np.ndarray | None:
    """The RGB colour a legend entry shows: a line's colour, a scatter's first face colour."""
    from matplotlib.colors import to_rgb

    if hasattr(handle, "get_color") and not hasattr(handle, "get_facecolor"):
        return np.array(to_rgb(handle.get_color()))
    if hasattr(handle, "get_facecolor"):
        faces = np.atleast_2d(handle.get_facecolor())
        if len(faces) and faces[0][3] > 0:
            return np.array(faces[0][:3])
        edges = np.atleast_2d(handle.get_edgecolor()) if hasattr(handle, "get_edgecolor") else []
        return np.array(edges[0][:3]) if len(edges) else None
    return None


def legend_colour_clashes(fig: Figure, min_distance: float = 0.15) -> list[str]:
    """Pairs of entries of one legend whose colours are closer than ``min_distance`` (Euclidean
    distance in RGB, each channel in [0, 1]; the 10 Tableau colours are at least 0.26 apart):
    one description per pair; an empty list when every entry has a colour of its own."""
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    legends += list(fig.legends)
    found = []
    for legend in legends:
        entries = [
            (text.get_text(), _colour(h))
            for h, text in zip(legend.legend_handles, legend.get_texts(), strict=False)
        ]
        entries = [(name, c) for name, c in entries if c is not None]
        for (a, ca), (b, cb) in itertools.combinations(entries, 2):
            distance = float(np.linalg.norm(ca - cb))
            if distance < min_distance:
                found.append(f"'{a}' and '{b}' have nearly the same colour ({distance:.2f})")
    return found
