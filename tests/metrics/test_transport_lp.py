"""Tests for wgan.metrics.transport_lp: OT as primal/dual LPs, checked against POT."""

from __future__ import annotations

import dataclasses

import numpy as np
import ot
import pytest
from scipy.stats import wasserstein_distance

from wgan.errors import WganError
from wgan.metrics.transport_lp import (
    OTSolution,
    _potential_with_g_eq_minus_f,
    euclidean_cost,
    kantorovich_potential_check,
    solve_ot_lp,
)

TOL = 1e-8


def _hist(rng: np.random.Generator, n: int, sparsity: float = 0.0) -> np.ndarray:
    h = rng.random(n)
    if sparsity:
        h = h * (rng.random(n) >= sparsity)
        if h.sum() == 0:
            h[0] = 1.0
    return h / h.sum()


SIZES = [(1, 1, 1), (1, 4, 2), (3, 5, 1), (8, 8, 2), (15, 10, 2), (12, 20, 1), (25, 30, 3)]


@pytest.mark.parametrize("n,m,d", SIZES)
@pytest.mark.parametrize("seed", [0, 1])
def test_primal_dual_pot_and_marginals(n: int, m: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed * 100 + n + m + d)
    X, Y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) + 0.5
    p, q = _hist(rng, n), _hist(rng, m)
    sol = solve_ot_lp(p, q, X, Y)

    assert isinstance(sol, OTSolution)
    assert sol.plan.shape == (n, m) and sol.f.shape == (n,) and sol.g.shape == (m,)
    assert abs(sol.primal_value - sol.dual_value) <= TOL
    assert sol.strong_duality_holds(TOL)
    D = ot.dist(X, Y, metric="euclidean")
    np.testing.assert_allclose(sol.cost, D, atol=1e-12)
    assert abs(sol.primal_value - ot.emd2(p, q, D)) <= TOL
    np.testing.assert_allclose(sol.plan.sum(axis=1), p, atol=TOL)
    np.testing.assert_allclose(sol.plan.sum(axis=0), q, atol=TOL)
    assert sol.plan.min() >= 0
    cert = sol.check()
    assert abs(cert["duality_gap"]) <= TOL
    assert cert["primal_infeasibility"] <= TOL
    assert cert["dual_infeasibility"] <= TOL
    assert abs(cert["complementary_slackness"]) <= TOL


def test_sparse_histograms_and_1d_w1_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    for _ in range(5):
        x, y = rng.normal(size=9), rng.normal(size=11) * 2
        p, q = _hist(rng, 9, 0.4), _hist(rng, 11, 0.4)
        sol = solve_ot_lp(p, q, x, y)
        assert abs(sol.primal_value - wasserstein_distance(x, y, p, q)) <= TOL
        assert abs(sol.primal_value - sol.dual_value) <= TOL


def test_cost_matrix_callable_cost_and_default_y() -> None:
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(7, 2))
    p, q = _hist(rng, 6), _hist(rng, 7)
    by_points = solve_ot_lp(p, q, X, Y)
    by_matrix = solve_ot_lp(p, q, cost=euclidean_cost(X, Y))
    assert abs(by_points.primal_value - by_matrix.primal_value) <= 1e-12

    def sq(A: np.ndarray, B: np.ndarray) -> np.ndarray:
        return ot.dist(A, B)  # squared Euclidean

    sol = solve_ot_lp(p, q, X, Y, cost=sq)
    assert abs(sol.primal_value - ot.emd2(p, q, ot.dist(X, Y))) <= TOL

    q6 = _hist(rng, 6)
    shared = solve_ot_lp(p, q6, X)  # Y defaults to X
    assert np.all(np.diag(shared.cost) == 0)


def test_masses_other_than_one() -> None:
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(5, 2)), rng.normal(size=(4, 2))
    p, q = 3.0 * _hist(rng, 5), 3.0 * _hist(rng, 4)
    sol = solve_ot_lp(p, q, X, Y)
    assert abs(sol.primal_value - sol.dual_value) <= TOL
    assert abs(sol.primal_value - 3.0 * ot.emd2(p / 3, q / 3, euclidean_cost(X, Y))) <= TOL


def test_solution_is_frozen_and_read_only() -> None:
    sol = solve_ot_lp([0.5, 0.5], [1.0], X=[0.0, 2.0], Y=[1.0])
    assert abs(sol.primal_value - 1.0) <= TOL
    with pytest.raises(dataclasses.FrozenInstanceError):
        sol.primal_value = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        sol.plan[0, 0] = 1.0


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_shared_support_kantorovich_rubinstein(d: int, seed: int) -> None:
    rng = np.random.default_rng(seed + 10 * d)
    n = 10 + seed
    X = rng.normal(size=(n, d)) if d > 1 else rng.normal(size=n)
    sparsity = 0.5 if seed % 2 else 0.0
    p, q = _hist(rng, n, sparsity), _hist(rng, n, sparsity)
    res = kantorovich_potential_check(X, p, q)

    f, g = res["f"], res["g"]
    np.testing.assert_array_equal(g, -f)
    assert res["max_abs_f_plus_g"] <= 1e-12
    assert res["lipschitz_constant"] <= 1 + 1e-9
    assert res["dual_feasibility_violation"] <= 1e-9
    D = euclidean_cost(X, X)
    assert np.all(f[:, None] - f[None, :] <= D + 1e-9)
    assert abs(res["dual_value_with_g_eq_minus_f"] - res["primal_value"]) <= TOL
    assert abs(res["primal_value"] - ot.emd2(p, q, D)) <= TOL
    # The KR form: E_p f - E_q f with a 1-Lipschitz f.
    assert abs(p @ f - q @ f - res["primal_value"]) <= TOL


def test_construction_repairs_other_optimal_potentials() -> None:
    """The LP dual is not unique; the c-transform turns any optimal pair into g = -f.

    Besides the gauge (f + c, g - c), potentials can be lowered freely where the mass is 0:
    the objective does not change and f_i + g_j <= D_ij still holds.
    """
    rng = np.random.default_rng(5)
    n = 12
    X = rng.normal(size=(n, 2))
    p, q = _hist(rng, n), _hist(rng, n)
    p[:4], q[4:8] = 0.0, 0.0
    p, q = p / p.sum(), q / q.sum()
    sol = solve_ot_lp(p, q, X)
    D = sol.cost
    for c in (-2.0, 0.7, 5.0):
        f0 = sol.f + c - 3.0 * (p == 0)
        g0 = sol.g - c - 1.5 * (q == 0)
        assert abs(p @ f0 + q @ g0 - sol.primal_value) <= TOL  # still optimal ...
        assert np.max(f0[:, None] + g0[None, :] - D) <= 1e-9  # ... and feasible
        assert np.max(np.abs(f0 + g0)) > 1.0  # but far from g = -f
        f = _potential_with_g_eq_minus_f(D, g0)
        assert np.all(f >= f0 - 1e-12)
        assert np.max(f[:, None] - f[None, :] - D) <= 1e-9  # (f, -f) feasible: 1-Lipschitz
        assert abs((p - q) @ f - sol.primal_value) <= TOL  # and optimal


def test_kantorovich_check_with_metric_matrix() -> None:
    rng = np.random.default_rng(6)
    X = rng.normal(size=(7, 3))
    D = np.abs(X[:, None, :] - X[None, :, :]).sum(-1)  # L1 metric
    p, q = _hist(rng, 7), _hist(rng, 7)
    res = kantorovich_potential_check(X, p, q, cost=D)
    assert res["lipschitz_constant"] <= 1 + 1e-9
    assert abs(res["dual_value_with_g_eq_minus_f"] - ot.emd2(p, q, D)) <= TOL
    bad = D.copy()
    bad[0, 0] = 1.0
    with pytest.raises(WganError, match="metric"):
        kantorovich_potential_check(X, p, q, cost=bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(p=[0.5, -0.1, 0.6], q=[0.5, 0.5], X=[0, 1, 2], Y=[0, 1]), "non-negative"),
        (dict(p=[0.5, 0.5], q=[0.5, 0.6], X=[0, 1], Y=[0, 1]), "same total mass"),
        (dict(p=[0.5, 0.5], q=[1.0, 1.0], X=[0, 1], Y=[0, 1]), "same total mass"),
        (dict(p=[0.5, 0.5], q=[0.5, 0.5], X=[0, 1, 2], Y=[0, 1]), "X has 3 points"),
        (dict(p=[0.5, 0.5], q=[0.5, 0.5], X=[0, 1], Y=[0, 1, 3]), "Y has 3 points"),
        (dict(p=[0.5, 0.5], q=[0.5, 0.5], X=[[0, 0], [1, 1]], Y=[0, 1]), "dimension"),
        (dict(p=[0.5, 0.5], q=[0.5, 0.5], cost=np.zeros((2, 3))), "shape"),
        (dict(p=[0.5, 0.5], q=[0.5, 0.5], X=[0, 1], cost=np.zeros((2, 2))), "not both"),
        (dict(p=[0.5, 0.5], q=[0.5, 0.5]), "support points"),
        (dict(p=[[0.5, 0.5]], q=[0.5, 0.5], X=[0, 1]), "1-D"),
        (dict(p=[0.5, np.nan], q=[0.5, 0.5], X=[0, 1]), "non-finite"),
        (dict(p=[0.0, 0.0], q=[0.0, 0.0], X=[0, 1]), "positive total mass"),
        (dict(p=[0.5, 0.5], q=[0.5, 0.5], cost=np.array([[0, np.inf], [1, 0]])), "non-finite"),
    ],
)
def test_bad_inputs_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(WganError, match=match):
        solve_ot_lp(**kwargs)


def test_wgan_error_is_value_error_and_masses_not_normalised() -> None:
    with pytest.raises(ValueError, match="not normalised"):
        solve_ot_lp([1.0, 1.0], [0.5, 0.5], X=[0.0, 1.0])
    # Within 1e-9 the masses count as equal.
    sol = solve_ot_lp([0.5, 0.5], [0.5, 0.5 + 5e-10], X=[0.0, 1.0])
    assert abs(sol.primal_value) <= TOL
