r"""Discrete optimal transport as a pair of linear programs (primal and dual).

This module makes the Kantorovich-Rubinstein step behind the WGAN critic (Arjovsky et al.
2017, Sec. 3) executable on finite point clouds.  Two histograms
:math:`p \in \mathbb{R}^n_{\ge 0}` and :math:`q \in \mathbb{R}^m_{\ge 0}` with equal total mass
live on points :math:`x_1, \dots, x_n` and :math:`y_1, \dots, y_m`; the ground cost is a matrix
:math:`D_{ij} = d(x_i, y_j)` (Euclidean distance by default).

**Primal (Kantorovich) problem.**  With :math:`\Gamma \in \mathbb{R}^{n \times m}` flattened
row-major into :math:`\operatorname{vec}(\Gamma)`,

.. math::

    \min_{\Gamma \ge 0} \langle \Gamma, D \rangle
    \quad \text{s.t.} \quad A \operatorname{vec}(\Gamma) = b,
    \qquad A = \begin{pmatrix} I_n \otimes \mathbf{1}_m^\top \\
                               \mathbf{1}_n^\top \otimes I_m \end{pmatrix},
    \qquad b = \begin{pmatrix} p \\ q \end{pmatrix},

i.e. the row sums of :math:`\Gamma` are :math:`p` and its column sums are :math:`q`.

**Dual problem.**  With a free vector :math:`F = (f, g) \in \mathbb{R}^{n + m}`,

.. math::

    \max_F \langle b, F \rangle = \sum_i p_i f_i + \sum_j q_j g_j
    \quad \text{s.t.} \quad A^\top F \le \operatorname{vec}(D)
    \iff f_i + g_j \le D_{ij} \ \ \forall i, j.

Both are solved with SciPy's HiGHS (``scipy.optimize.linprog(method="highs")``).  LP strong
duality says the optimal values coincide (the primal is feasible and bounded when the masses
are equal); :meth:`OTSolution.check` verifies this together with primal feasibility, dual
feasibility and complementary slackness.

**Non-uniqueness of the dual.**  The dual objective and constraints are invariant under
:math:`(f, g) \mapsto (f + c, g - c)` because :math:`\sum_i p_i = \sum_j q_j`, and degenerate
problems admit even more optimal potentials.  :func:`solve_ot_lp` returns the solver's
solution as is (no normalisation); :func:`kantorovich_potential_check` shows how to pick a
particular, more structured optimal pair.

Sources: L. Kantorovich, *On the translocation of masses* (1942); C. Villani, *Optimal
Transport, Old and New* (2008), Ch. 5 (Kantorovich duality) and Ch. 6
(Kantorovich-Rubinstein duality); G. Peyré and M. Cuturi, *Computational Optimal Transport*
(2019), Ch. 2-3 (the LP, its dual, c-transforms); M. Arjovsky, S. Chintala and L. Bottou,
*Wasserstein GAN* (2017), Sec. 3; Q. Huangfu and J. Hall, *Parallelizing the dual revised
simplex method* (2018) (HiGHS).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from wgan.errors import WganError

__all__ = [
    "OTSolution",
    "euclidean_cost",
    "kantorovich_potential_check",
    "solve_ot_lp",
]

#: Two histograms count as having "the same total mass" when the sums differ by at most
#: ``MASS_TOL * max(1, mass)``.
MASS_TOL = 1e-9

# HiGHS feasibility tolerances (defaults are 1e-7); the tests ask for 1e-8 agreement.
_HIGHS_OPTIONS: dict[str, Any] = {
    "primal_feasibility_tolerance": 1e-10,
    "dual_feasibility_tolerance": 1e-10,
}


@dataclass(frozen=True, eq=False)
class OTSolution:
    r"""Result of :func:`solve_ot_lp`: an optimal plan and optimal dual potentials.

    Attributes:
        plan: optimal transport plan :math:`\Gamma^\star` of shape ``(n, m)``; its row sums are
            ``p`` and its column sums are ``q`` (up to solver tolerance).
        f: dual potential on the source points, shape ``(n,)``.
        g: dual potential on the target points, shape ``(m,)``.  ``(f, g)`` is one optimal
            solution of the dual LP: any ``(f + c, g - c)`` is optimal too.
        primal_value: :math:`\langle \Gamma^\star, D \rangle` (the optimal transport cost,
            i.e. :math:`W_1` when ``D`` is a distance matrix and masses sum to one).
        dual_value: :math:`\langle p, f \rangle + \langle q, g \rangle`.
        cost: the cost matrix ``D`` of shape ``(n, m)``.
        p: the source histogram used (``None`` if not recorded).
        q: the target histogram used (``None`` if not recorded).

    All arrays are read-only ``float64`` numpy arrays.
    """

    plan: np.ndarray
    f: np.ndarray
    g: np.ndarray
    primal_value: float
    dual_value: float
    cost: np.ndarray
    p: np.ndarray | None = None
    q: np.ndarray | None = None

    @property
    def duality_gap(self) -> float:
        """``primal_value - dual_value``; zero (to solver tolerance) by LP strong duality."""
        return float(self.primal_value - self.dual_value)

    def check(self) -> dict[str, float]:
        r"""Optimality certificate of the pair (plan, potentials).

        Returns a dict with

        * ``"duality_gap"``: :math:`\langle \Gamma, D\rangle - \langle p, f\rangle -
          \langle q, g\rangle`;
        * ``"primal_infeasibility"``: max over the marginal constraints of
          :math:`|\Gamma \mathbf{1} - p|` and :math:`|\Gamma^\top \mathbf{1} - q|`, together
          with :math:`\max(0, -\min \Gamma)` (``nan`` if ``p``/``q`` were not recorded);
        * ``"dual_infeasibility"``: :math:`\max(0, \max_{ij} f_i + g_j - D_{ij})`;
        * ``"complementary_slackness"``: :math:`\sum_{ij} \Gamma_{ij}(D_{ij} - f_i - g_j)`,
          which equals the duality gap for a primal-feasible plan.

        A pair is optimal iff it is primal and dual feasible and the gap is zero (weak
        duality + strong duality; Peyré & Cuturi 2019, Ch. 2-3).
        """
        slack = self.cost - self.f[:, None] - self.g[None, :]
        if self.p is not None and self.q is not None:
            primal_inf = max(
                float(np.max(np.abs(self.plan.sum(axis=1) - self.p))),
                float(np.max(np.abs(self.plan.sum(axis=0) - self.q))),
                float(max(0.0, -np.min(self.plan))),
            )
        else:
            primal_inf = float("nan")
        return {
            "duality_gap": self.duality_gap,
            "primal_infeasibility": primal_inf,
            "dual_infeasibility": float(max(0.0, -np.min(slack))),
            "complementary_slackness": float(np.sum(self.plan * slack)),
        }

    def strong_duality_holds(self, tol: float = 1e-8) -> bool:
        """True when ``|primal_value - dual_value| <= tol * max(1, |primal_value|)``.

        This is the numerical statement of LP strong duality for this instance.
        """
        return abs(self.duality_gap) <= tol * max(1.0, abs(self.primal_value))


def euclidean_cost(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    r"""Pairwise Euclidean distances :math:`D_{ij} = \lVert x_i - y_j \rVert_2`.

    ``X`` has shape ``(n, d)`` or ``(n,)`` (1-D points), ``Y`` has shape ``(m, d)`` or
    ``(m,)``.  Computed from explicit differences (not the ``|x|^2 + |y|^2 - 2 x.y``
    expansion), so ``d(x, x) = 0`` exactly.
    """
    Xa = _as_points(X, "X")
    Ya = _as_points(Y, "Y")
    if Xa.shape[1] != Ya.shape[1]:
        raise WganError(
            f"X and Y must have the same point dimension, got {Xa.shape[1]} and {Ya.shape[1]}"
        )
    diff = Xa[:, None, :] - Ya[None, :, :]
    return np.sqrt(np.sum(diff * diff, axis=-1))


def _as_points(X: Any, name: str) -> np.ndarray:
    try:
        a = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise WganError(f"{name} must be a numeric array of points: {exc}") from exc
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0:
        raise WganError(f"{name} must have shape (n, d) or (n,) with n >= 1, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise WganError(f"{name} contains non-finite values")
    return a


def _as_histogram(p: Any, name: str) -> np.ndarray:
    try:
        a = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise WganError(f"histogram {name} must be a numeric 1-D array: {exc}") from exc
    if a.ndim != 1 or a.shape[0] == 0:
        raise WganError(f"histogram {name} must be a non-empty 1-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise WganError(f"histogram {name} contains non-finite values")
    if np.any(a < 0):
        i = int(np.argmin(a))
        raise WganError(f"histogram {name} must be non-negative, but {name}[{i}] = {a[i]:.6g} < 0")
    if a.sum() <= 0:
        raise WganError(f"histogram {name} must have positive total mass, got {a.sum():.6g}")
    return a


def _check_masses(p: np.ndarray, q: np.ndarray) -> None:
    mp, mq = float(p.sum()), float(q.sum())
    if abs(mp - mq) > MASS_TOL * max(1.0, mp, mq):
        raise WganError(
            f"p and q must have the same total mass (to {MASS_TOL:g} relative): "
            f"sum(p) = {mp:.12g}, sum(q) = {mq:.12g}. Balanced optimal transport is only "
            "defined between measures of equal mass; the masses are not normalised for you, "
            "divide each histogram by its sum if probability measures are meant."
        )


def _resolve_cost(
    n: int,
    m: int,
    X: Any,
    Y: Any,
    cost: np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
) -> np.ndarray:
    if cost is None or callable(cost):
        if X is None:
            raise WganError("give either the support points X (and optionally Y) or a cost matrix")
        Xa = _as_points(X, "X")
        Ya = Xa if Y is None else _as_points(Y, "Y")
        if Xa.shape[0] != n:
            raise WganError(f"X has {Xa.shape[0]} points but p has {n} entries")
        if Ya.shape[0] != m:
            name = "X (used as Y)" if Y is None else "Y"
            raise WganError(f"{name} has {Ya.shape[0]} points but q has {m} entries")
        if Xa.shape[1] != Ya.shape[1]:
            raise WganError(
                f"X and Y must have the same point dimension, got {Xa.shape[1]} and {Ya.shape[1]}"
            )
        D = euclidean_cost(Xa, Ya) if cost is None else cost(Xa, Ya)
    else:
        if X is not None or Y is not None:
            raise WganError("give either support points (X, Y) or a cost matrix, not both")
        D = cost
    try:
        D = np.asarray(D, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise WganError(f"cost must be a numeric (n, m) matrix: {exc}") from exc
    if D.shape != (n, m):
        raise WganError(f"cost matrix must have shape (len(p), len(q)) = {(n, m)}, got {D.shape}")
    if not np.all(np.isfinite(D)):
        raise WganError("cost matrix contains non-finite values")
    return D


def _constraint_matrix(n: int, m: int) -> sp.csr_matrix:
    """``A = [I_n kron 1_m^T ; 1_n^T kron I_m]`` acting on row-major ``vec(Gamma)``."""
    rows = sp.kron(sp.identity(n, format="csr"), np.ones((1, m)), format="csr")
    cols = sp.kron(np.ones((1, n)), sp.identity(m, format="csr"), format="csr")
    return sp.vstack([rows, cols], format="csr")


def solve_ot_lp(
    p: Any,
    q: Any,
    X: Any = None,
    Y: Any = None,
    cost: np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> OTSolution:
    r"""Solve discrete optimal transport between ``p`` and ``q`` as primal and dual LPs.

    Primal: :math:`\min_{\Gamma \ge 0} \langle \Gamma, D\rangle` subject to
    :math:`A\operatorname{vec}(\Gamma) = b`, :math:`b = (p, q)` (row sums ``p``, column sums
    ``q``).  Dual: :math:`\max_F \langle b, F\rangle` subject to
    :math:`A^\top F \le \operatorname{vec}(D)`, :math:`F = (f, g)` free, i.e.
    :math:`f_i + g_j \le D_{ij}`.  Both LPs are solved separately with HiGHS
    (``scipy.optimize.linprog(method="highs")``), so the returned potentials are a genuine
    solution of the dual LP, not just the primal's multipliers.

    Args:
        p: source histogram, shape ``(n,)``, non-negative.
        q: target histogram, shape ``(m,)``, non-negative, with ``sum(q) == sum(p)`` up to
            ``1e-9`` (relative to ``max(1, mass)``).  Masses are *not* normalised: unequal
            masses raise :class:`~wgan.errors.WganError`.  Within the tolerance ``q`` is
            rescaled by ``sum(p) / sum(q)`` so that the LP is exactly balanced (as POT does).
        X: source points, shape ``(n, d)`` or ``(n,)``; used with the Euclidean cost (or the
            callable ``cost``).
        Y: target points, shape ``(m, d)`` or ``(m,)``; defaults to ``X`` (shared support).
        cost: either a cost matrix ``D`` of shape ``(n, m)`` (then ``X`` and ``Y`` must be
            omitted), a callable ``cost(X, Y) -> D``, or ``None`` for
            :math:`D_{ij} = \lVert x_i - y_j\rVert_2`.

    Returns:
        :class:`OTSolution` with ``plan`` (n, m), ``f`` (n,), ``g`` (m,), ``primal_value``,
        ``dual_value``, ``cost`` and the histograms ``p``, ``q`` actually used.  The dual
        potentials are only determined up to :math:`(f + c, g - c)` (and more on degenerate
        instances); the solver's choice is returned unchanged.

    Raises:
        WganError: negative/non-finite mass, zero or unequal total masses, inconsistent shapes,
            or if HiGHS does not report an optimal solution.

    Example:
        >>> sol = solve_ot_lp([0.5, 0.5], [0.5, 0.5], X=[0.0, 1.0], Y=[1.0, 2.0])
        >>> round(sol.primal_value, 12), sol.strong_duality_holds()
        (1.0, True)
    """
    pa = _as_histogram(p, "p")
    qa = _as_histogram(q, "q")
    _check_masses(pa, qa)
    n, m = pa.shape[0], qa.shape[0]
    D = _resolve_cost(n, m, X, Y, cost)
    qa = qa * (pa.sum() / qa.sum())

    A = _constraint_matrix(n, m)
    b = np.concatenate([pa, qa])
    c = D.reshape(-1)

    primal = linprog(c, A_eq=A, b_eq=b, bounds=(0, None), method="highs", options=_HIGHS_OPTIONS)
    if primal.status != 0:
        raise WganError(f"HiGHS failed on the primal OT problem: {primal.message}")
    dual = linprog(
        -b,
        A_ub=A.T.tocsr(),
        b_ub=c,
        bounds=(None, None),
        method="highs",
        options=_HIGHS_OPTIONS,
    )
    if dual.status != 0:
        raise WganError(f"HiGHS failed on the dual OT problem: {dual.message}")

    plan = np.maximum(primal.x.reshape(n, m), 0.0)
    F = np.asarray(dual.x, dtype=np.float64)
    f, g = F[:n].copy(), F[n:].copy()
    for arr in (plan, f, g, D, pa, qa):
        arr.setflags(write=False)
    return OTSolution(
        plan=plan,
        f=f,
        g=g,
        primal_value=float(np.sum(plan * D)),
        dual_value=float(pa @ f + qa @ g),
        cost=D,
        p=pa,
        q=qa,
    )


def _potential_with_g_eq_minus_f(D: np.ndarray, g0: np.ndarray) -> np.ndarray:
    """c-transform ``f_i = min_j (D_ij - g0_j)``; with a metric ``D`` the pair ``(f, -f)`` is
    dual-optimal whenever some ``(f0, g0)`` is (see :func:`kantorovich_potential_check`)."""
    return np.min(D - g0[None, :], axis=1)


def kantorovich_potential_check(
    X: Any,
    p: Any,
    q: Any,
    cost: np.ndarray | None = None,
) -> dict[str, Any]:
    r"""The Kantorovich-Rubinstein step (``g = -f``), checked on a shared finite support.

    Both histograms live on the same points :math:`x_1, \dots, x_n` and the cost is a metric,
    :math:`D_{ij} = d(x_i, x_j)` (Euclidean by default), so :math:`d(x, x) = 0`.

    **The derivation** (Villani 2008, Ch. 5-6).  A dual-feasible pair satisfies
    :math:`f(x) + g(y) \le d(x, y)` for all :math:`x, y`.  Taking :math:`y = x` gives
    :math:`f(x) + g(x) \le d(x, x) = 0`, i.e. :math:`g \le -f`.  Since :math:`q \ge 0`,
    raising :math:`g` to :math:`-f` can only increase the dual objective, provided
    :math:`(f, -f)` is still feasible:
    :math:`f(x) - f(y) \le d(x, y)`, i.e. :math:`f` is 1-Lipschitz.  Hence

    .. math::

        W_1(p, q) = \max_{f \ \text{1-Lipschitz}}
        \mathbb{E}_{x \sim p} f(x) - \mathbb{E}_{y \sim q} f(y),

    the Kantorovich-Rubinstein formula that the WGAN critic approximates.

    **Constructing such a pair from the LP.**  The LP dual is not unique, so the solver's
    :math:`(f_0, g_0)` need not satisfy :math:`g_0 = -f_0`.  We take the c-transform

    .. math::  f(x_i) = g_0^c(x_i) = \min_j \bigl(d(x_i, x_j) - g_0(x_j)\bigr).

    Feasibility of :math:`(f_0, g_0)` gives :math:`f \ge f_0`, so :math:`(f, g_0)` is still
    feasible and optimal; :math:`f` is a minimum of 1-Lipschitz functions
    :math:`d(\cdot, x_j) - g_0(x_j)`, hence 1-Lipschitz (triangle inequality); its own
    c-transform is :math:`f^c = -f` (the minimum of :math:`d(x_i, x_j) - f(x_i)` over
    :math:`i` is attained at :math:`i = j`), and :math:`g_0 \le f^c = -f`.  So
    :math:`g := -f` is feasible and its dual value is at least that of the optimal
    :math:`(f, g_0)`: it is optimal.  This function performs the construction and reports
    the numerical checks (the argument needs ``d`` to be a metric: zero diagonal, symmetric,
    triangle inequality; a user-supplied ``cost`` is checked for the first two).

    Args:
        X: the shared support, shape ``(n, d)`` or ``(n,)``.
        p: first histogram on ``X``, shape ``(n,)``.
        q: second histogram on ``X``, same total mass as ``p``.
        cost: optional ``(n, n)`` metric matrix replacing the Euclidean distances of ``X``.

    Returns:
        dict with keys

        * ``"f"``: the constructed potential (n,), with ``g = -f``;
        * ``"g"``: ``-f``;
        * ``"max_abs_f_plus_g"``: :math:`\max_i |f_i + g_i|` for the constructed pair (0);
        * ``"lp_max_abs_f_plus_g"``: the same quantity for the raw LP potentials (usually
          not 0: the dual is not unique);
        * ``"lipschitz_constant"``: :math:`\max_{i \ne j,\ d_{ij} > 0} |f_i - f_j| / d_{ij}`
          (``0.0`` if there is no such pair);
        * ``"dual_feasibility_violation"``: :math:`\max(0, \max_{ij} f_i - f_j - d_{ij})`;
        * ``"dual_value_with_g_eq_minus_f"``: :math:`\sum_i (p_i - q_i) f_i`;
        * ``"lp_dual_value"``: the LP dual value of the raw potentials;
        * ``"primal_value"``: the optimal transport cost :math:`W_1(p, q)`;
        * ``"solution"``: the underlying :class:`OTSolution`.

    Raises:
        WganError: invalid histograms (see :func:`solve_ot_lp`) or a cost that is not a
            square, symmetric, non-negative matrix with zero diagonal.
    """
    Xa = _as_points(X, "X")
    n = Xa.shape[0]
    if cost is None:
        D = euclidean_cost(Xa, Xa)
    else:
        D = np.asarray(cost, dtype=np.float64)
        if D.shape != (n, n):
            raise WganError(
                f"cost must be a square ({n}, {n}) matrix on the support, got {D.shape}"
            )
        if not np.all(np.isfinite(D)) or np.any(D < 0):
            raise WganError("cost must be a finite, non-negative metric matrix")
        if np.any(np.diag(D) != 0) or not np.allclose(D, D.T, rtol=0, atol=1e-12):
            raise WganError(
                "cost must be a metric on the shared support: zero diagonal (d(x, x) = 0) "
                "and symmetric"
            )
    sol = solve_ot_lp(p, q, cost=D)
    f0, g0 = sol.f, sol.g
    assert sol.p is not None and sol.q is not None
    pa, qa = sol.p, sol.q

    f = _potential_with_g_eq_minus_f(D, g0)
    g = -f

    diff = np.abs(f[:, None] - f[None, :])
    off = ~np.eye(n, dtype=bool) & (D > 0)
    lip = float(np.max(diff[off] / D[off])) if np.any(off) else 0.0
    violation = float(max(0.0, np.max(f[:, None] + g[None, :] - D)))
    return {
        "f": f,
        "g": g,
        "max_abs_f_plus_g": float(np.max(np.abs(f + g))),
        "lp_max_abs_f_plus_g": float(np.max(np.abs(f0 + g0))),
        "lipschitz_constant": lip,
        "dual_feasibility_violation": violation,
        "dual_value_with_g_eq_minus_f": float(pa @ f + qa @ g),
        "lp_dual_value": sol.dual_value,
        "primal_value": sol.primal_value,
        "solution": sol,
    }
