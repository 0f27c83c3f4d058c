r"""Jensen-Shannon and KL divergences between generated 2-D samples and a *known* density.

The toy Gaussian mixtures (:mod:`wgan.data.toy`) have a closed-form density, so instead of
comparing two sample sets we can compare the generator's samples with the data distribution
itself, after discretising the plane.

Discretisation
--------------
A box ``[x_min, x_max] × [y_min, y_max]`` (default: ``dataset.bounds()``) is cut into
``bins × bins`` equal cells, plus one *overflow* cell for everything outside the box, so that
both histograms are distributions over the same ``bins² + 1`` outcomes and mass thrown far away
by the generator is counted, not dropped.

* Data histogram :math:`p_i = P_{\text{data}}(\text{cell}_i)`: the density integrated over each
  cell. For the isotropic Gaussian mixtures this is *exact*: a Gaussian with covariance
  :math:`\sigma^2 I` factorises over the axes, so the mass of a cell is a product of two 1-D
  normal-CDF differences, averaged over the modes (:meth:`wgan.data.GaussianMixture.cell_masses`).
  A dataset with ``has_density`` but no ``cell_masses`` method is integrated by the midpoint
  rule on a ``quadrature × quadrature`` sub-grid per cell (an approximation; the output's
  ``data_mass_method`` says which was used). The overflow cell gets ``1 - Σ_i p_i``.
* Model histogram :math:`q_i`: the fraction of samples in each cell (``numpy.histogram2d``;
  samples outside the box go to the overflow cell).

Smoothing (additive / Laplace-style)
------------------------------------
A sample histogram has empty cells where the data has mass, and the exact data masses underflow
to 0 far from the modes, so both KL directions could be infinite. The same additive constant
``ε = smoothing`` is added to every cell of *both* histograms, which are then renormalised:
:math:`\tilde p_i = (p_i + ε) / (1 + Kε)`, :math:`\tilde q_i = (q_i + ε) / (1 + Kε)` with
``K = bins² + 1``. With ``ε > 0`` every KL is finite; the KL values then depend on ε through the
cells one histogram misses (about ``mass · log(mass / ε)``), which is the honest reading of
"the model misses that mass entirely". ``ε = 0`` disables smoothing (a KL may be ``inf``;
JS is always finite).

Divergences (natural logarithm)
-------------------------------
.. math::

    \mathrm{KL}(p\,\|\,q) = \sum_i p_i \log\frac{p_i}{q_i}, \qquad
    \mathrm{JS}(p, q) = \tfrac12 \mathrm{KL}(p\,\|\,m) + \tfrac12 \mathrm{KL}(q\,\|\,m),
    \quad m = \tfrac12 (p + q),

so :math:`0 \le \mathrm{JS} \le \log 2` (Lin 1991, "Divergence measures based on the Shannon
entropy", IEEE Trans. Inf. Theory 37(1)). This JS is the quantity the minimax GAN's optimal
discriminator measures (Goodfellow et al. 2014, Thm. 1: :math:`V = 2\,\mathrm{JS} - 2\log 2`).

Bias
----
These are *estimates*, biased in two opposite ways:

* binning: a divergence between the distributions of a cell index is at most the divergence
  between the continuous distributions (data-processing inequality), so coarse bins bias it
  **down** (structure finer than a cell is invisible);
* sample size: the empirical histogram of ``N`` samples from ``p`` itself is not ``p``; with
  ``K`` occupied cells the plug-in KL/JS is biased **up** by about ``(K - 1) / (2N)`` and
  ``(K - 1) / (8N)`` respectively (Miller-Madow-type bias; Paninski 2003, "Estimation of
  entropy and mutual information", Neural Computation 15(6)). A perfect generator therefore
  scores > 0, and the floor shrinks as ``N`` grows.

Smoothing adds a further (small for small ε) bias. Compare runs with the same ``bins``,
``bounds``, ``smoothing`` and sample size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from wgan.errors import WganError
from wgan.metrics.wasserstein import as_points

__all__ = ["data_cell_masses", "grid_divergences"]

_LOG2 = math.log(2.0)


#: Most cells per axis: 2048² ≈ 4.2M cells, a few float64 arrays of 34 MB each.
MAX_BINS = 2048


def _check_bins(bins: Any) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)):
        raise WganError(f"bins must be an integer, got {bins!r}")
    if bins < 1:
        raise WganError(f"bins must be >= 1, got {bins}")
    if bins > MAX_BINS:
        raise WganError(f"bins must be <= {MAX_BINS} (bins² cells are held in memory), got {bins}")
    return int(bins)


def _check_bounds(bounds: Any) -> tuple[float, float, float, float]:
    try:
        vals = tuple(float(v) for v in bounds)
    except (TypeError, ValueError) as exc:
        raise WganError(f"bounds must be (xmin, xmax, ymin, ymax), got {bounds!r}") from exc
    if len(vals) != 4:
        raise WganError(f"bounds must have 4 numbers (xmin, xmax, ymin, ymax), got {bounds!r}")
    if not all(math.isfinite(v) for v in vals):
        raise WganError(f"bounds must be finite, got {bounds!r}")
    xmin, xmax, ymin, ymax = vals
    if not (xmin < xmax and ymin < ymax):
        raise WganError(f"bounds need xmin < xmax and ymin < ymax, got {bounds!r}")
    return vals  # type: ignore[return-value]


def _require_density(dataset: Any) -> None:
    if not getattr(dataset, "has_density", False):
        name = getattr(dataset, "name", type(dataset).__name__)
        raise WganError(
            f"grid divergences need a dataset with a known density; {name!r} has none "
            "(has_density is False). Use a Gaussian mixture: eight_gaussians, "
            "twentyfive_gaussians, ring or grid."
        )


def data_cell_masses(
    dataset: Any, x_edges: np.ndarray, y_edges: np.ndarray, quadrature: int = 8
) -> tuple[np.ndarray, str]:
    """Probability of each grid cell under the dataset's density, ``(nx, ny)``, and the method.

    Exact for datasets with ``cell_masses`` (the Gaussian mixtures: products of normal-CDF
    differences); otherwise the midpoint rule on ``quadrature²`` points per cell applied to
    ``exp(dataset.log_density)`` (an approximation whose error shrinks as ``quadrature`` grows).

    Raises:
        WganError: the dataset has no density (``has_density`` missing or False).
    """
    _require_density(dataset)
    if hasattr(dataset, "cell_masses"):
        masses = dataset.cell_masses(torch.as_tensor(x_edges), torch.as_tensor(y_edges))
        return masses.detach().cpu().double().numpy(), "exact (Gaussian CDF products per cell)"
    if isinstance(quadrature, bool) or not isinstance(quadrature, int) or quadrature < 1:
        raise WganError(f"quadrature must be a positive integer, got {quadrature!r}")
    x_edges, y_edges = np.asarray(x_edges, float), np.asarray(y_edges, float)
    frac = (np.arange(quadrature) + 0.5) / quadrature  # midpoints of the sub-cells in [0, 1]
    dx, dy = np.diff(x_edges), np.diff(y_edges)  # (nx,), (ny,)
    xs = (x_edges[:-1, None] + dx[:, None] * frac[None, :]).reshape(-1)  # (nx*Q,)
    ys = (y_edges[:-1, None] + dy[:, None] * frac[None, :]).reshape(-1)  # (ny*Q,)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    pts = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1))  # (nx*Q*ny*Q, 2)
    dens = torch.exp(dataset.log_density(pts).double()).numpy()
    nx, ny = dx.size, dy.size
    dens = dens.reshape(nx, quadrature, ny, quadrature).mean(axis=(1, 3))  # (nx, ny)
    return dens * dx[:, None] * dy[None, :], f"midpoint quadrature ({quadrature}x{quadrature})"


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """Σ p log(p/q) with 0 log 0 = 0; inf if some p_i > 0 has q_i = 0."""
    mask = p > 0
    if np.any(q[mask] <= 0):
        return math.inf
    return float(max(np.sum(p[mask] * (np.log(p[mask]) - np.log(q[mask]))), 0.0))


def grid_divergences(
    samples: Any,
    dataset: Any,
    bins: int = 64,
    bounds: Sequence[float] | None = None,
    smoothing: float = 1e-6,
) -> dict[str, Any]:
    r"""JS and both KL divergences between ``samples`` and the dataset's density on a grid.

    See the module docstring for the maths, the smoothing scheme and the biases. ``p`` is the
    data (exact cell masses), ``q`` the model (sample histogram); logs are natural.

    Args:
        samples: ``(N, 2)`` generated points (torch tensor, numpy array or nested list).
        dataset: a toy dataset with ``has_density`` True (eight_gaussians,
            twentyfive_gaussians, ring, grid).
        bins: cells per axis (``bins × bins`` cells plus one overflow cell outside the box).
        bounds: ``(xmin, xmax, ymin, ymax)`` of the box; default ``dataset.bounds()``.
        smoothing: additive constant ε put into every cell of both histograms before
            renormalising (``>= 0``; 0 disables it, and a KL may then be ``inf``).

    Returns:
        A JSON-serialisable dict: ``js`` (in ``[0, log 2]``), ``kl_data_to_model``
        (KL(p‖q)), ``kl_model_to_data`` (KL(q‖p)), ``bins``, ``bounds`` (list of 4),
        ``smoothing`` (ε), ``smoothing_scheme`` (a sentence), ``mass_outside``
        (``{"data", "model"}``: the unsmoothed mass of each in the overflow cell),
        ``n_samples``, ``n_cells`` (``bins² + 1``) and ``data_mass_method``.

    Raises:
        WganError: samples that are not a non-empty finite ``(N, 2)`` set, a dataset without a
            density, ``bins`` outside ``[1, MAX_BINS]``, invalid bounds or a negative /
            non-finite smoothing.
    """
    x = as_points(samples, "samples")  # (N, d) float64
    if x.shape[1] != 2:
        raise WganError(f"samples must have shape (N, 2), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise WganError("grid divergences need at least one sample")
    bins = _check_bins(bins)
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)):
        raise WganError(f"smoothing must be a number, got {smoothing!r}")
    smoothing = float(smoothing)
    if not math.isfinite(smoothing) or smoothing < 0:
        raise WganError(f"smoothing must be a finite number >= 0, got {smoothing!r}")
    _require_density(dataset)
    box = _check_bounds(dataset.bounds() if bounds is None else bounds)
    xmin, xmax, ymin, ymax = box

    x_edges = np.linspace(xmin, xmax, bins + 1)
    y_edges = np.linspace(ymin, ymax, bins + 1)
    p_cells, method = data_cell_masses(dataset, x_edges, y_edges)  # (bins, bins)
    p_out = max(0.0, 1.0 - float(p_cells.sum()))
    p = np.append(p_cells.ravel(), p_out)  # (K,)
    p = np.clip(p, 0.0, None)
    p = p / p.sum()

    # histogram2d puts points on the right edge into the last bin; we call a point inside the
    # box when it lies in the closed box, so the overflow count is the rest.
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[x_edges, y_edges])
    n = x.shape[0]
    q_out = (n - counts.sum()) / n
    q = np.append(counts.ravel() / n, q_out)  # (K,)

    k = p.size
    p_s = (p + smoothing) / (1.0 + k * smoothing)
    q_s = (q + smoothing) / (1.0 + k * smoothing)
    m = 0.5 * (p_s + q_s)
    js = 0.5 * _kl(p_s, m) + 0.5 * _kl(q_s, m)
    return {
        "js": float(min(max(js, 0.0), _LOG2)),
        "kl_data_to_model": _kl(p_s, q_s),
        "kl_model_to_data": _kl(q_s, p_s),
        "bins": bins,
        "bounds": [float(v) for v in box],
        "smoothing": smoothing,
        "smoothing_scheme": (
            f"additive: eps={smoothing:g} added to each of the {k} cells (bins^2 + 1 overflow) "
            "of both histograms, then renormalised, so KL is finite when eps > 0"
        ),
        "mass_outside": {"data": float(p_out), "model": float(q_out)},
        "n_samples": int(n),
        "n_cells": int(k),
        "data_mass_method": method,
    }
