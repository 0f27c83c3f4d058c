"""Tests of the toy densities (wgan.data) and grid JS/KL against a known density."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from wgan.data import make_dataset
from wgan.errors import WganError
from wgan.metrics.grid import data_cell_masses, grid_divergences

MIXTURES = ["eight_gaussians", "twentyfive_gaussians", "ring", "grid"]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- densities


@pytest.mark.parametrize("name", MIXTURES)
def test_log_density_matches_scipy_mixture(name):
    ds = make_dataset(name)
    assert ds.has_density
    x = ds.sample(50, gen(0)).double()
    x = torch.cat([x, torch.tensor([[0.3, -0.2], [0.0, 0.0]], dtype=torch.float64)])
    modes = ds.modes.double().numpy()
    comps = [multivariate_normal(m, ds.sigma**2).logpdf(x.numpy()) for m in modes]
    ref = logsumexp(np.stack(comps), axis=0) - np.log(len(modes))
    got = ds.log_density(x)
    assert got.shape == (52,) and got.dtype == torch.float64
    # ds.modes is float32; log_density uses the float64 modes: agreement to ~1e-6.
    assert np.allclose(got.numpy(), ref, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(ds.log_density(torch.tensor([[50.0, 50.0]]))).all()
    assert ds.log_density(x.float()).dtype == torch.float32


def test_log_density_integrates_to_one():
    ds = make_dataset("ring", n_modes=3, radius=1.0, sigma=0.3)
    t = torch.linspace(-3.5, 3.5, 561, dtype=torch.float64)
    gx, gy = torch.meshgrid(t, t, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    total = ds.log_density(pts).exp().sum() * (t[1] - t[0]) ** 2
    assert float(total) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("name", ["swiss_roll", "parallel_lines"])
def test_no_density(name):
    ds = make_dataset(name)
    assert ds.has_density is False
    with pytest.raises(WganError, match="no log_density"):
        ds.log_density(torch.zeros(3, 2))
    with pytest.raises(WganError, match="known density"):
        grid_divergences(torch.zeros(10, 2), ds)


def test_log_density_bad_points():
    ds = make_dataset("8gaussians")
    for bad in (torch.zeros(3), torch.zeros(3, 3), np.zeros((3, 2))):
        with pytest.raises(WganError):
            ds.log_density(bad)


def test_cell_masses_exact_and_quadrature_agree():
    ds = make_dataset("ring", n_modes=4, radius=1.0, sigma=0.2)
    edges = np.linspace(-1.5, 1.5, 13)
    exact = ds.cell_masses(torch.from_numpy(edges), torch.from_numpy(edges)).numpy()
    # Mass in the box = product of the per-axis masses, per mode.
    assert exact.sum() < 1.0 and exact.sum() > 0.98

    class DensityOnly:  # no cell_masses: forces the quadrature path
        name = "density_only"
        has_density = True
        log_density = staticmethod(ds.log_density)

    approx, method = data_cell_masses(DensityOnly(), edges, edges, quadrature=16)
    assert "quadrature" in method
    assert np.abs(approx - exact).max() < 1e-4
    # Upper-tail cells keep their relative precision (no 1 - 1 cancellation).
    far = ds.cell_masses(torch.tensor([1.0 + 8 * 0.2, 1.0 + 9 * 0.2]), torch.tensor([-1.0, 1.0]))
    assert 0 < float(far[0, 0]) < 1e-14
    with pytest.raises(WganError):
        ds.cell_masses(torch.tensor([0.0, 0.0]), torch.tensor([0.0, 1.0]))


# ---------------------------------------------------------------------------- grid divergences


def test_samples_from_the_data_score_low_and_improve_with_n():
    ds = make_dataset("eight_gaussians")
    small = grid_divergences(ds.sample(2000, gen(1)), ds)
    big = grid_divergences(ds.sample(20000, gen(2)), ds)
    assert big["js"] < 0.05
    assert big["js"] < small["js"]
    assert big["kl_model_to_data"] < small["kl_model_to_data"]
    assert set(big) >= {
        "js",
        "kl_data_to_model",
        "kl_model_to_data",
        "bins",
        "bounds",
        "smoothing",
        "smoothing_scheme",
        "mass_outside",
        "n_samples",
    }
    assert big["bins"] == 64 and big["n_samples"] == 20000 and big["n_cells"] == 64 * 64 + 1
    assert big["bounds"] == pytest.approx(list(ds.bounds()))
    assert "exact" in big["data_mass_method"]
    assert "additive" in big["smoothing_scheme"]


def test_collapse_onto_one_mode():
    ds = make_dataset("eight_gaussians")
    n = 20000
    one = ds.modes[0] + ds.sigma * torch.randn(n, 2, generator=gen(3))
    r = grid_divergences(one, ds)
    # q = one component, p = mixture of 8: KL(q || p) = log 8 (exactly, up to binning/noise).
    assert r["kl_model_to_data"] == pytest.approx(math.log(8), abs=0.1)
    # KL(p || q) is infinite without smoothing; with eps it is large and grows as eps shrinks.
    assert r["kl_data_to_model"] > math.log(8)
    finer = grid_divergences(one, ds, smoothing=1e-9)
    assert finer["kl_data_to_model"] > r["kl_data_to_model"]
    assert grid_divergences(one, ds, smoothing=0.0)["kl_data_to_model"] == math.inf
    # JS(one component, mixture) = 0.497 analytically; far above a good generator's value.
    assert 0.4 < r["js"] <= math.log(2)


def test_js_bounded_and_outside_mass():
    ds = make_dataset("eight_gaussians")
    far = torch.full((500, 2), 100.0)  # all samples outside the box
    r = grid_divergences(far, ds)
    assert r["mass_outside"] == {"data": pytest.approx(0.0, abs=1e-12), "model": 1.0}
    assert r["js"] == pytest.approx(math.log(2), abs=0.01)  # eps moves a little mass
    assert r["js"] <= math.log(2)
    mixed = torch.cat([ds.sample(500, gen(0)), far])
    assert grid_divergences(mixed, ds)["mass_outside"]["model"] == pytest.approx(0.5)


def test_options_and_numpy_input():
    ds = make_dataset("ring", n_modes=5)
    x = ds.sample(3000, gen(4)).numpy()
    r = grid_divergences(x, ds, bins=16, bounds=(-2, 2, -2, 2), smoothing=1e-4)
    assert r["bins"] == 16 and r["bounds"] == [-2.0, 2.0, -2.0, 2.0] and r["smoothing"] == 1e-4
    assert 0 <= r["js"] < 0.05
    # Coarser bins hide structure: the estimate drops (data-processing inequality).
    shifted = x + np.array([0.05, 0.0])
    fine = grid_divergences(shifted, ds, bins=64)["js"]
    coarse = grid_divergences(shifted, ds, bins=4)["js"]
    assert coarse < fine


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"samples": torch.zeros(0, 2)}, "at least one"),
        ({"samples": torch.zeros(5, 3)}, r"\(N, 2\)"),
        ({"samples": torch.full((5, 2), float("nan"))}, "non-finite"),
        ({"bins": 0}, "bins"),
        ({"bins": 2.5}, "bins"),
        ({"bins": True}, "bins"),
        ({"bounds": (1, 0, 0, 1)}, "xmin < xmax"),
        ({"bounds": (0, 1, 0)}, "4 numbers"),
        ({"bounds": (0, float("inf"), 0, 1)}, "finite"),
        ({"bounds": "abcd"}, "bounds"),
        ({"smoothing": -1e-3}, "smoothing"),
        ({"smoothing": float("nan")}, "smoothing"),
        ({"smoothing": "x"}, "smoothing"),
    ],
)
def test_invalid_inputs(kwargs, match):
    ds = make_dataset("eight_gaussians")
    args = {"samples": ds.sample(10, gen(0)), "dataset": ds, **kwargs}
    with pytest.raises(WganError, match=match):
        grid_divergences(**args)
