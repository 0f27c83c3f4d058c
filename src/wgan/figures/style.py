"""One look for every figure of samples: training plots, ``wgan sample`` and ``wgan interpolate``.

* Real data in orange, generated samples in blue, modes as black crosses: the same colours in
  every figure, and none of them reused for anything else.
* Generated samples are drawn first and real points on top of them, translucent, so neither
  hides the other: a generator that matches the data covers the real points exactly where they
  are, and drawn the other way round (as before) the real points disappeared under it.
  :func:`wgan.figures.checks.visible_share` measures how much of each layer a figure still shows.
* Lines in a legend (latent paths) get colours that differ from each other and from the points:
  :func:`path_colours` gives each pair of rows (a straight and a spherical path between the same
  endpoints) a dark and a light shade of one hue, so a pair reads as a pair and every row has its
  own colour (Tableau's 20-colour palette, without its blue and orange pairs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "GENERATED",
    "MODES",
    "REAL",
    "draw_samples",
    "path_colours",
]

REAL = {"c": "tab:orange", "s": 2, "alpha": 0.7, "linewidths": 0, "zorder": 3}
"""Real points: orange, translucent, above the generated ones."""
GENERATED = {"c": "tab:blue", "s": 8, "alpha": 0.6, "linewidths": 0, "zorder": 2}
"""Generated points: blue, below the real ones."""
MODES = {"c": "black", "s": 24, "marker": "x", "linewidths": 1.0, "zorder": 4}
"""The modes of a mixture: black crosses over both."""


def draw_samples(
    ax: Any,
    real: np.ndarray | None,
    fake: np.ndarray | None,
    modes: np.ndarray | None = None,
    fake_label: str = "generated",
    **fake_style: Any,
) -> None:
    """Scatter ``fake`` (M, 2) in :data:`GENERATED`'s style, then ``real`` (N, 2) above it and
    ``modes`` (K, 2) above both, labelled ``real``, ``fake_label`` and ``modes``; ``fake_style``
    overrides the generated style (e.g. a fainter cloud under latent paths)."""
    if fake is not None:
        style = {**GENERATED, **fake_style}
        ax.scatter(fake[:, 0], fake[:, 1], label=fake_label, **style)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], label="real", **REAL)
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], label="modes", **MODES)


#: Tableau 20 as (dark, light) pairs of one hue, without blue and orange (:data:`GENERATED`,
#: :data:`REAL`) and grey (whose light shade is close to the light purple): green, red, purple,
#: brown, pink, olive, cyan. Every two of these and blue and orange are at least 0.19 apart in
#: RGB.
_PAIRS = [
    ("#2ca02c", "#98df8a"),
    ("#d62728", "#ff9896"),
    ("#9467bd", "#c5b0d5"),
    ("#8c564b", "#c49c94"),
    ("#e377c2", "#f7b6d2"),
    ("#bcbd22", "#dbdb8d"),
    ("#17becf", "#9edae5"),
]
#: Hues (HSV) of :data:`REAL` and :data:`GENERATED`, kept clear of when more hues are needed.
_TAKEN_HUES = (0.08, 0.58)


def path_colours(groups: list[int]) -> list[str]:
    """One colour per row, for rows numbered by ``groups`` (rows of one group, e.g. the straight
    and the spherical path between the same endpoints, share a hue in a dark then a light shade).

    Up to 7 groups the hues are Tableau's, all told apart; beyond that they are spread evenly
    around the HSV circle, clear of the real and generated colours, as far apart as their
    number allows (more than about a dozen can no longer all be told apart).
    """
    from matplotlib.colors import hsv_to_rgb, to_hex

    n = max(groups, default=-1) + 1
    if n <= len(_PAIRS):
        pairs = _PAIRS
    else:
        circle = np.linspace(0.0, 1.0, 720, endpoint=False)
        gap = np.min([np.abs((circle - h + 0.5) % 1.0 - 0.5) for h in _TAKEN_HUES], axis=0)
        free = circle[gap > 0.06]
        hues = free[np.linspace(0, len(free), n, endpoint=False).astype(int)]
        dark = [to_hex(hsv_to_rgb((h, 0.85, 0.7))) for h in hues]
        light = [to_hex(hsv_to_rgb((h, 0.35, 1.0))) for h in hues]
        pairs = list(zip(dark, light, strict=True))
    seen: dict[int, int] = {}
    out = []
    for g in groups:
        k = seen.get(g, 0)
        seen[g] = k + 1
        out.append(pairs[g][0] if k % 2 == 0 else pairs[g][1])
    return out
