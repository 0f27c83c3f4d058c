"""Tests of the metrics (wgan.metrics): mode coverage, exact and sliced W1."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance

from wgan.data import make_dataset
from wgan.errors import WganError
from wgan.metrics import exact_w1, mode_metrics, sliced_w1, toy_metrics


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- mode metrics


def test_samples_at_three_of_eight_modes():
    ds = make_dataset("eight_gaussians")
    samples = ds.modes[[0, 1, 2]].repeat(10, 1)  # (30, 2), 10 at each of 3 modes
    out = mode_metrics(samples, ds.modes, ds.sigma)
    assert out["modes_captured"] == 3
    assert out["n_modes"] == 8
    assert out["high_quality_fraction"] == 1.0
    assert out["kl_to_uniform"] == pytest.approx(math.log(8 / 3), abs=1e-12)
    json.dumps(out)


def test_one_mode_and_numpy_input_and_partial_quality():
    ds = make_dataset("eight_gaussians")
    modes = ds.modes.numpy()
    far = np.array([[10.0, 10.0], [0.0, 0.0]])
    samples = np.concatenate([np.repeat(modes[[4]], 6, axis=0), far])  # (8, 2)
    out = mode_metrics(samples, modes, ds.sigma)
    assert out["modes_captured"] == 1
    assert out["high_quality_fraction"] == pytest.approx(6 / 8)
    assert out["kl_to_uniform"] == pytest.approx(math.log(8), abs=1e-12)
    # The threshold is in units of sigma: a point at 2.9 sigma is HQ, one at 3.1 sigma is not.
    s = ds.sigma
    near = modes[[0]] + np.array([[2.9 * s, 0.0]])
    beyond = modes[[1]] + np.array([[0.0, 3.1 * s]])
    out = mode_metrics(np.concatenate([near, beyond]), modes, s)
    assert out["modes_captured"] == 1 and out["high_quality_fraction"] == 0.5
    assert mode_metrics(beyond, modes, s, threshold=3.2)["modes_captured"] == 1


def test_samples_far_from_modes():
    ds = make_dataset("grid")
    samples = torch.full((100, 2), 50.0)
    out = mode_metrics(samples, ds.modes, ds.sigma)
    assert out == {
        "modes_captured": 0,
        "n_modes": 25,
        "high_quality_fraction": 0.0,
        "kl_to_uniform": None,
    }
    json.dumps(out)


@pytest.mark.parametrize("name", ["eight_gaussians", "twentyfive_gaussians", "ring", "grid"])
def test_real_samples_capture_all_modes(name):
    ds = make_dataset(name)
    out = mode_metrics(ds.sample(2500, gen(0)), ds.modes, ds.sigma)
    assert out["modes_captured"] == out["n_modes"] == ds.modes.shape[0]
    assert out["high_quality_fraction"] > 0.95
    assert 0.0 <= out["kl_to_uniform"] < 0.02


def test_mode_metrics_bad_input():
    modes = torch.zeros(3, 2)
    with pytest.raises(WganError):
        mode_metrics(torch.zeros(4, 2), modes, sigma=0.0)
    with pytest.raises(WganError):
        mode_metrics(torch.zeros(4, 3), modes, sigma=0.1)
    with pytest.raises(WganError):
        mode_metrics(torch.zeros(4, 2, 2), modes, sigma=0.1)


# ----------------------------------------------------------------------------- exact W1


def _assignment_w1(x: np.ndarray, y: np.ndarray) -> float:
    cost = cdist(x, y)
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_w1_equals_assignment(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 2))
    y = rng.normal(size=(40, 2)) * 1.5 + 0.3
    out = exact_w1(x, y)
    assert out["method"] == "exact" and out["n_x"] == 40 and out["n_y"] == 40
    assert "note" not in out
    assert out["w1"] == pytest.approx(_assignment_w1(x, y), abs=1e-9)
    # torch input and float32 give the same value as the float64 numpy cast of it.
    xt = torch.from_numpy(x).float()
    assert exact_w1(xt, y)["w1"] == pytest.approx(_assignment_w1(xt.double().numpy(), y), abs=1e-9)
    json.dumps(out)


def test_exact_w1_unequal_sizes_in_1d():
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=37), rng.exponential(size=23)
    assert exact_w1(u, v)["w1"] == pytest.approx(wasserstein_distance(u, v), abs=1e-9)
    assert exact_w1(u[:, None], v[:, None])["w1"] == pytest.approx(
        wasserstein_distance(u, v), abs=1e-9
    )


def test_exact_w1_falls_back_to_sliced():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 2)), rng.normal(size=(40, 2))
    with pytest.warns(UserWarning, match="too large for the exact W1 solver"):
        out = exact_w1(x, y, max_points=50)
    assert out["method"] == "sliced"
    assert "max_points=50" in out["note"] and "sliced" in out["note"]
    assert out["w1"] == pytest.approx(sliced_w1(x, y)["w1"], abs=1e-12)
    json.dumps(out)
    # No warning when both sets fit.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert exact_w1(x, y, max_points=60)["method"] == "exact"


def test_two_real_eight_gaussian_sets_are_close():
    ds = make_dataset("8gaussians")
    out = exact_w1(ds.sample(2500, gen(1)), ds.sample(2500, gen(2)))
    assert out["method"] == "exact"
    assert 0.0 < out["w1"] < 0.08


def test_exact_w1_bad_input():
    with pytest.raises(WganError):
        exact_w1(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(WganError):
        exact_w1(np.zeros((0, 2)), np.zeros((3, 2)))
    with pytest.raises(WganError):
        exact_w1(np.array([[np.nan, 0.0]]), np.zeros((3, 2)))


# ----------------------------------------------------------------------------- sliced W1


@pytest.mark.parametrize(("n", "m"), [(50, 50), (37, 23), (1, 9), (100, 7)])
def test_sliced_w1_is_exact_in_1d(n, m):
    rng = np.random.default_rng(n * 1000 + m)
    u, v = rng.normal(size=n), rng.standard_t(3, size=m) + 0.5
    expect = wasserstein_distance(u, v)
    out = sliced_w1(u, v)
    assert out["w1"] == pytest.approx(expect, abs=1e-9)
    assert sliced_w1(u[:, None], torch.from_numpy(v)[:, None])["w1"] == pytest.approx(
        expect, abs=1e-9
    )
    assert out["method"] == "sliced" and out["n_x"] == n and out["n_y"] == m


def test_sliced_w1_properties_in_2d():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    y = rng.normal(size=(200, 2)) * 0.5 + 1.0
    a = sliced_w1(x, y, n_projections=128, seed=5)
    assert a == sliced_w1(x, y, n_projections=128, seed=5)  # deterministic
    assert a["n_projections"] == 128
    # Sliced W1 is a lower bound of W1 (projections are 1-Lipschitz).
    assert a["w1"] <= exact_w1(x, y)["w1"] + 1e-12
    assert sliced_w1(x, x)["w1"] == pytest.approx(0.0, abs=1e-12)
    # A translation by t gives SW1 = E|<theta, t>| = |t| * 2/pi in 2-D.
    t = np.array([0.3, -0.4])
    shifted = sliced_w1(x, x + t, n_projections=4096)["w1"]
    assert shifted == pytest.approx(0.5 * 2 / math.pi, rel=0.03)
    with pytest.raises(WganError):
        sliced_w1(x, y, n_projections=0)


# ----------------------------------------------------------------------------- toy metrics


def test_toy_metrics_with_modes():
    ds = make_dataset("eight_gaussians")
    fake = ds.sample(2500, gen(42))
    out = toy_metrics(fake, ds)
    assert out == toy_metrics(fake, ds)  # deterministic default generator
    assert out["modes_captured"] == 8 and out["n_modes"] == 8
    assert out["high_quality_fraction"] > 0.95
    assert out["w1_method"] == "exact" and out["w1"] < 0.08
    assert out["n_samples"] == 2500 and out["n_real"] == 2500
    json.dumps(out)
    collapsed = toy_metrics(ds.modes[[0]].repeat(500, 1), ds, n_real=500)
    assert collapsed["modes_captured"] == 1
    assert collapsed["w1"] > 0.5


def test_toy_metrics_without_modes_and_fallback():
    ds = make_dataset("swiss_roll")
    out = toy_metrics(ds.sample(300, gen(1)), ds, n_real=300, generator=gen(9))
    assert "modes_captured" not in out
    assert set(out) == {"n_samples", "n_real", "w1", "w1_method"}
    with pytest.warns(UserWarning):
        out = toy_metrics(ds.sample(300, gen(1)), ds, n_real=300, max_points=100)
    assert out["w1_method"] == "sliced" and "w1_note" in out


def test_exported_metrics():
    """``wgan.metrics`` exports each metric under its name, as the implementation in its
    defining module (not a stale re-export or wrapper), and each answers a case whose result
    is known, as a JSON-serialisable dict."""
    import importlib

    import wgan.metrics as m

    homes = {
        "mode_metrics": "wgan.metrics.modes",
        "exact_w1": "wgan.metrics.wasserstein",
        "sliced_w1": "wgan.metrics.wasserstein",
        "toy_metrics": "wgan.metrics",  # defined in wgan/metrics/__init__.py
        "class_metrics": "wgan.metrics.images",
        "digits_metrics": "wgan.metrics.images",
        "stacked_digits_metrics": "wgan.metrics.images",
        "inception_metrics": "wgan.metrics.images",
        "precision_recall": "wgan.metrics.precision_recall",
        "kernel_inception_distance": "wgan.metrics.frechet",
        "inception_score": "wgan.metrics.frechet",
    }
    assert set(m.__all__) >= set(homes)
    for name in homes:
        fn = getattr(m, name)
        assert callable(fn) and fn.__name__ == name, name
        assert getattr(importlib.import_module(fn.__module__), name) is fn, name
        assert getattr(m, name) is fn and name in m.__all__, name  # re-exported as itself
        if name in homes:
            assert fn.__module__ == homes[name], (name, fn.__module__)
    ds = make_dataset("eight_gaussians")
    at_modes = ds.modes.repeat(5, 1)  # (40, 2): 5 samples at each of the 8 modes
    shift = torch.tensor([0.3, -0.4])  # |shift| = 0.5
    feats = torch.randn(60, 4, generator=gen(0))
    one_hot = torch.eye(10).repeat(3, 1)  # 30 confident predictions, 3 per class
    calls = {
        "mode_metrics": ((at_modes, ds.modes, ds.sigma), {"modes_captured": 8}),
        "exact_w1": ((at_modes, at_modes + shift), {"w1": 0.5}),  # a translation moves 0.5
        "toy_metrics": ((at_modes, ds), {"modes_captured": 8, "high_quality_fraction": 1.0}),
        "class_metrics": ((torch.tensor([0, 1, 1, 3]), 10), {"classes_covered": 3}),
        "precision_recall": ((feats, feats), {"precision": 1.0, "recall": 1.0}),
        "inception_score": ((one_hot, 1), {"is_mean": 10.0}),  # uniform over 10 sure classes
    }
    for name, (args, expected) in calls.items():
        out = getattr(m, name)(*args)
        json.dumps(out)
        for key, value in expected.items():
            assert out[key] == pytest.approx(value, rel=1e-6), (name, key, out)
    # sliced W1 of a translation: the mean over directions theta of |<shift, theta>| <= 0.5
    sliced = m.sliced_w1(at_modes, at_modes + shift)
    assert 0.2 < sliced["w1"] < 0.5 and sliced["method"] == "sliced"
    kid = m.kernel_inception_distance
    same = kid(feats, feats, subsets=4, subset_size=30)["kid_mean"]  # unbiased: about 0
    moved = kid(feats, feats + 2.0, subsets=4, subset_size=30)["kid_mean"]  # measured 151
    assert moved > 100 * abs(same) and moved > 50
