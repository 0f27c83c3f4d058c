"""Wasserstein-1 distances between empirical distributions (exact and sliced).

For two point clouds ``x = {x_i}_{i<n}`` and ``y = {y_j}_{j<m}`` with uniform weights, the
Wasserstein-1 (earth mover's) distance is the optimal-transport cost

    W1(x, y) = min_{π ∈ Π(1/n, 1/m)} Σ_ij π_ij ‖x_i − y_j‖₂,

with Π the couplings whose row sums are 1/n and column sums 1/m (Villani 2009, "Optimal
Transport: Old and New", Def. 6.1; Peyré & Cuturi 2019, "Computational Optimal Transport",
arXiv 1803.00567, §2-3). It is computed exactly by POT's network-simplex solver ``ot.emd2``
(Flamary et al. 2021, "POT: Python Optimal Transport", JMLR 22(78)).

The sliced Wasserstein-1 distance (Rabin et al. 2011; Bonneel et al. 2015, "Sliced and Radon
Wasserstein Barycenters of Measures") averages the 1-D distance between projections on unit
directions θ:

    SW1(x, y) = E_θ W1(⟨θ, x⟩, ⟨θ, y⟩),   θ ~ U(S^{d-1}),

estimated with ``n_projections`` random directions. In 1-D, W1 is exact and cheap from the
quantile functions: W1(u, v) = ∫₀¹ |F_u⁻¹(q) − F_v⁻¹(q)| dq.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from wgan.errors import WganError

__all__ = ["as_float_array", "as_points", "check_int", "exact_w1", "sliced_w1", "wasserstein_1d"]


#: Most random directions :func:`sliced_w1` takes (its default is 256; the error of the
#: estimate shrinks as 1/sqrt(P), and each direction costs a sort of both sets).
MAX_PROJECTIONS = 1_000_000


def as_float_array(a: Any, name: str) -> np.ndarray:
    """``a`` (torch tensor, numpy array, nested list) as a float64 numpy array, or WganError."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # torch.Tensor, without importing torch
        if a.is_complex():
            raise WganError(f"{name} must be real, got a complex tensor")
        a = a.detach().cpu().double().numpy()
    if np.iscomplexobj(a):
        raise WganError(f"{name} must be real, got complex values")
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        kind = type(a).__name__
        raise WganError(f"{name} must be an array of numbers, got {kind}: {exc}") from exc


def check_int(name: str, value: Any, low: int) -> int:
    """``value`` as an int ``>= low`` (bools and floats refused), or WganError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise WganError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def as_points(a: Any, name: str = "points") -> np.ndarray:
    """Convert a torch tensor / numpy array / nested list to a float64 ``(n, d)`` numpy array.

    A 1-D input of shape ``(n,)`` becomes ``(n, 1)``. Raises WganError for other ranks, points
    without coordinates (``d = 0``), non-numeric or complex input and non-finite values.
    """
    arr = as_float_array(a, name)
    if arr.ndim == 1:
        arr = arr[:, None]  # (n,) -> (n, 1)
    if arr.ndim != 2:
        raise WganError(f"{name} must have shape (n,) or (n, d), got shape {tuple(arr.shape)}")
    if arr.shape[1] == 0:
        raise WganError(f"{name} must have at least one coordinate, got shape {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise WganError(f"{name} contains non-finite values (nan or inf)")
    return arr


def _check_pair(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[0] == 0 or y.shape[0] == 0:
        raise WganError(f"W1 needs non-empty point sets, got n_x={x.shape[0]}, n_y={y.shape[0]}")
    if x.shape[1] != y.shape[1]:
        raise WganError(f"point sets differ in dimension: {x.shape[1]} vs {y.shape[1]}")


def _w1_sorted(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Exact 1-D W1 between rows of sorted samples: ``u`` (P, n), ``v`` (P, m) -> (P,).

    Integrates |F_u⁻¹(q) − F_v⁻¹(q)| over q ∈ [0, 1]. Both quantile functions are step
    functions, constant between consecutive levels of ``{i/n} ∪ {j/m}``; to keep these levels
    exact they are handled as integers on the scale n·m (level q ↔ Q = q·n·m), where
    ``F_u⁻¹`` on (Q_{k-1}, Q_k] is u[ceil(Q_k / m) − 1] and ``F_v⁻¹`` is v[ceil(Q_k / n) − 1].
    """
    n, m = u.shape[1], v.shape[1]
    levels = np.union1d(
        np.arange(1, n + 1, dtype=np.int64) * m, np.arange(1, m + 1, dtype=np.int64) * n
    )  # (K,), ends at n·m
    widths = np.diff(levels, prepend=0).astype(np.float64) / (n * m)  # (K,), sums to 1
    iu = (levels + m - 1) // m - 1  # (K,) index into u
    iv = (levels + n - 1) // n - 1  # (K,) index into v
    return np.abs(u[:, iu] - v[:, iv]) @ widths  # (P,)


def wasserstein_1d(u: Any, v: Any) -> float:
    """Exact W1 between two 1-D empirical distributions (uniform weights, any sizes)."""
    a = as_points(u, "u")
    b = as_points(v, "v")
    _check_pair(a, b)
    if a.shape[1] != 1:
        raise WganError(f"wasserstein_1d needs 1-D samples, got dimension {a.shape[1]}")
    return float(_w1_sorted(np.sort(a[:, 0])[None, :], np.sort(b[:, 0])[None, :])[0])


def sliced_w1(x: Any, y: Any, n_projections: int = 256, seed: int = 0) -> dict:
    """Sliced Wasserstein-1 distance between two empirical distributions.

    ``SW1 = (1/P) Σ_p W1(x·θ_p, y·θ_p)`` with ``θ_p`` i.i.d. uniform on the unit sphere (drawn
    from ``numpy.random.default_rng(seed)``, so the value is deterministic), each 1-D W1 being
    exact (quantile integration, correct for unequal sizes). For 1-D inputs (shape ``(n,)`` or
    ``(n, 1)``) no projection is needed and the exact 1-D W1 is returned.

    Args:
        x: ``(n, d)`` or ``(n,)`` samples (torch tensor or numpy array).
        y: ``(m, d)`` or ``(m,)`` samples.
        n_projections: number of random directions P, 1 to :data:`MAX_PROJECTIONS` (ignored
            in 1-D).
        seed: seed of the directions.

    Returns:
        ``{"w1": float, "method": "sliced", "n_projections": int, "n_x": int, "n_y": int}``
        (``n_projections`` is 1 for 1-D inputs, where the value is exact).
    """
    n_projections = check_int("n_projections", n_projections, 1)
    if n_projections > MAX_PROJECTIONS:
        raise WganError(f"n_projections must be <= {MAX_PROJECTIONS}, got {n_projections}")
    seed = check_int("seed", seed, 0)
    xa = as_points(x, "x")  # (n, d)
    ya = as_points(y, "y")  # (m, d)
    _check_pair(xa, ya)
    n, d = xa.shape
    m = ya.shape[0]
    if d == 1:
        w1 = float(_w1_sorted(np.sort(xa[:, 0])[None, :], np.sort(ya[:, 0])[None, :])[0])
        return {"w1": w1, "method": "sliced", "n_projections": 1, "n_x": n, "n_y": m}

    rng = np.random.default_rng(seed)
    # Draw and process directions in blocks so that memory stays ~ (n + m) * block floats
    # whatever P is; consecutive draws continue one stream, so the directions are those of a
    # single (P, d) draw.
    block = max(1, min(n_projections, 20_000_000 // (n + m)))
    total = 0.0
    for start in range(0, n_projections, block):
        th = rng.standard_normal((min(block, n_projections - start), d))  # (B, d)
        th /= np.linalg.norm(th, axis=1, keepdims=True)
        u = np.sort(th @ xa.T, axis=1)  # (B, n)
        v = np.sort(th @ ya.T, axis=1)  # (B, m)
        total += float(_w1_sorted(u, v).sum())
    return {
        "w1": total / n_projections,
        "method": "sliced",
        "n_projections": n_projections,
        "n_x": n,
        "n_y": m,
    }


def exact_w1(x: Any, y: Any, max_points: int = 5000) -> dict:
    """Exact Wasserstein-1 between two empirical distributions (uniform weights, L2 cost).

    Solves the optimal-transport linear programme with POT's exact solver
    (``ot.emd2(a, b, ot.dist(x, y, metric="euclidean"))``, a = 1/n, b = 1/m) in float64.
    The cost matrix holds n·m floats and the network simplex grows faster than that, so when
    either set has more than ``max_points`` points the exact solver is not attempted: the
    sliced W1 (:func:`sliced_w1`, 256 projections, seed 0) is returned instead, with a
    ``note`` and a ``warnings.warn``. Sliced W1 is a lower bound of W1, not an estimate of it.

    Args:
        x: ``(n, d)`` or ``(n,)`` samples (torch tensor or numpy array).
        y: ``(m, d)`` or ``(m,)`` samples.
        max_points: largest set size given to the exact solver.

    Returns:
        ``{"w1": float, "method": "exact", "n_x": int, "n_y": int}``, or, on fallback,
        ``{"w1": float, "method": "sliced", "n_x", "n_y", "n_projections", "note": str}``.
        When the exact solver stops before optimality a ``note`` is added to the exact result.
    """
    import ot  # POT; imported lazily since it is slow to import

    max_points = check_int("max_points", max_points, 1)
    xa = as_points(x, "x")  # (n, d)
    ya = as_points(y, "y")  # (m, d)
    _check_pair(xa, ya)
    n, m = xa.shape[0], ya.shape[0]
    if n > max_points or m > max_points:
        note = (
            f"The point sets were too large for the exact W1 solver (n_x={n}, n_y={m}, "
            f"max_points={max_points}), so the sliced Wasserstein-1 distance was computed "
            f"instead."
        )
        warnings.warn(note, stacklevel=2)
        out = sliced_w1(xa, ya)
        out["note"] = note
        return out

    cost = ot.dist(xa, ya, metric="euclidean")  # (n, m) float64
    a = np.full(n, 1.0 / n)
    b = np.full(m, 1.0 / m)
    w1, log = ot.emd2(a, b, cost, numItermax=max(100_000, 50 * n * m), log=True)
    out: dict = {"w1": float(w1), "method": "exact", "n_x": n, "n_y": m}
    if log.get("warning"):
        out["note"] = f"exact solver did not report optimality: {log['warning']}"
    return out
