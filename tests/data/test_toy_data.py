"""Tests of the embedded toy 2-D datasets (wgan.data)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_swiss_roll

from wgan.data import ALIASES, DATASETS, ToyDataset, make_dataset, resolve_dataset_name
from wgan.errors import ConfigError
from wgan.metrics import exact_w1

ALL_NAMES = sorted(DATASETS)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_shape_dtype_and_bounds(name):
    ds = make_dataset(name)
    assert isinstance(ds, ToyDataset)
    assert ds.name == name and ds.dim == 2
    x = ds.sample(1000, gen(0))
    assert x.shape == (1000, 2) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert ds.sample(0, gen(0)).shape == (0, 2)
    xmin, xmax, ymin, ymax = ds.bounds()
    assert xmin < x[:, 0].min() and x[:, 0].max() < xmax
    assert ymin < x[:, 1].min() and x[:, 1].max() < ymax
    if ds.modes is not None:
        assert ds.modes.ndim == 2 and ds.modes.shape[1] == 2 and ds.sigma > 0
    else:
        assert ds.sigma is None
    # Parameters round-trip through make_dataset.
    again = make_dataset(name, **ds.params)
    assert torch.equal(again.sample(50, gen(3)), ds.sample(50, gen(3)))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_determinism_and_only_the_given_generator(name):
    ds = make_dataset(name)
    torch.manual_seed(1234)
    np.random.seed(1234)
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()

    a = ds.sample(500, gen(7))
    b = ds.sample(500, gen(7))
    c = ds.sample(500, gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # The global RNGs were not touched.
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)

    # Resumable: restoring the generator state replays the stream.
    g = gen(11)
    ds.sample(100, g)
    state = g.get_state()
    first = ds.sample(100, g)
    g2 = torch.Generator()
    g2.set_state(state)
    assert torch.equal(ds.sample(100, g2), first)
    # device argument moves the result, the values depend only on the generator.
    assert torch.equal(ds.sample(20, gen(5), device="cpu"), ds.sample(20, gen(5)))


def _check_mixture(ds, n, modes_expected, sigma_expected):
    modes = ds.modes.double()
    assert torch.allclose(modes, modes_expected.double(), atol=1e-6)
    assert ds.sigma == pytest.approx(sigma_expected)
    x = ds.sample(n, gen(0)).double()
    d = torch.cdist(x, modes)  # (n, M)
    dmin, k = d.min(dim=1)
    assert (dmin < 5 * ds.sigma).all()  # every sample within 5 sigma of a mode
    m = modes.shape[0]
    freq = torch.bincount(k, minlength=m).double() / n
    assert torch.allclose(
        freq,
        torch.full((m,), 1.0 / m, dtype=torch.float64),
        atol=4 * math.sqrt((1 / m) * (1 - 1 / m) / n),
    )
    resid = x - modes[k]  # (n, 2)
    assert resid.mean(dim=0).abs().max() < 4 * ds.sigma / math.sqrt(n)
    assert resid.std(dim=0).numpy() == pytest.approx([ds.sigma, ds.sigma], rel=0.05)


def test_eight_gaussians_protocol():
    r = 1 / math.sqrt(2)
    centres = 2 * torch.tensor(
        [(1, 0), (-1, 0), (0, 1), (0, -1), (r, r), (r, -r), (-r, r), (-r, -r)],
        dtype=torch.float64,
    )
    ds = make_dataset("eight_gaussians")
    _check_mixture(ds, 16000, centres / 1.414, 0.02 / 1.414)


def test_twentyfive_gaussians_protocol():
    centres = torch.tensor(
        [(2 * i, 2 * j) for i in range(-2, 3) for j in range(-2, 3)], dtype=torch.float64
    )
    ds = make_dataset("25gaussians")
    _check_mixture(ds, 25000, centres / 2.828, 0.05 / 2.828)


def test_ring_and_grid():
    ds = make_dataset("ring", n_modes=6, radius=2.0, sigma=0.05)
    ang = 2 * math.pi * torch.arange(6, dtype=torch.float64) / 6
    _check_mixture(ds, 12000, 2.0 * torch.stack([ang.cos(), ang.sin()], 1), 0.05)
    assert make_dataset("ring").modes.shape == (8, 2)

    ds = make_dataset("grid", n_per_side=3, spacing=0.5, sigma=0.01)
    expect = torch.tensor(
        [(i, j) for i in (-0.5, 0, 0.5) for j in (-0.5, 0, 0.5)], dtype=torch.float64
    )
    _check_mixture(ds, 9000, expect, 0.01)
    default = make_dataset("grid")
    assert default.modes.shape == (25, 2)
    assert torch.allclose(default.modes.mean(0), torch.zeros(2), atol=1e-6)
    assert default.modes.max().item() == pytest.approx(2.0)


def test_swiss_roll_matches_sklearn():
    ds = make_dataset("swissroll")
    assert ds.modes is None
    ours = ds.sample(2000, gen(0)).numpy()

    def sk(seed):
        return make_swiss_roll(2000, noise=0.25, random_state=seed)[0][:, [0, 2]] / 7.5

    base = exact_w1(sk(1), sk(2))["w1"]
    ours_vs_sk = exact_w1(ours, sk(3))["w1"]
    assert ours_vs_sk < 1.5 * base + 0.01
    # Sanity: a visibly different distribution (no noise, shifted) is far away.
    shifted = make_dataset("swiss_roll", noise=0.0).sample(2000, gen(1)).numpy() + 0.3
    assert exact_w1(shifted, sk(3))["w1"] > 3 * base


def test_parallel_lines():
    x = make_dataset("parallel_lines").sample(20000, gen(0))
    assert (x[:, 0] == 0).all()
    assert x[:, 1].min() >= 0 and x[:, 1].max() <= 1
    assert x[:, 1].double().mean().item() == pytest.approx(0.5, abs=0.01)
    assert x[:, 1].double().var().item() == pytest.approx(1 / 12, abs=0.003)
    y = make_dataset("parallel_lines", theta=0.7).sample(100, gen(0))
    assert torch.allclose(y[:, 0], torch.full((100,), 0.7))
    # Same generator -> same Z: P_theta is P_0 shifted by theta.
    assert torch.equal(y[:, 1], make_dataset("parallel_lines").sample(100, gen(0))[:, 1])


def test_aliases():
    for alias, canonical in ALIASES.items():
        assert resolve_dataset_name(alias) == canonical
        assert type(make_dataset(alias)) is DATASETS[canonical]
    assert resolve_dataset_name("Swiss-Roll") == "swiss_roll"
    assert set(ALIASES) == {"8gaussians", "25gaussians", "swissroll"}


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("nope", {}, "Valid choices"),
        ("8gausians", {}, "8gaussians"),
        (3, {}, "string"),
        ("ring", {"n_mode": 8}, "n_modes"),
        ("eight_gaussians", {"sigma": 0.1}, "Accepted parameters: none"),
        ("ring", {"sigma": 0.0}, "sigma"),
        ("ring", {"sigma": -1.0}, "sigma"),
        ("ring", {"n_modes": 0}, "n_modes"),
        ("ring", {"n_modes": 2.5}, "n_modes"),
        ("ring", {"n_modes": True}, "n_modes"),
        ("ring", {"radius": float("nan")}, "radius"),
        ("grid", {"n_per_side": 0}, "n_per_side"),
        ("grid", {"spacing": -0.1}, "spacing"),
        ("grid", {"sigma": "big"}, "sigma"),
        ("swiss_roll", {"noise": -0.1}, "noise"),
        ("parallel_lines", {"theta": "x"}, "theta"),
    ],
)
def test_bad_names_and_params(name, params, match):
    with pytest.raises(ConfigError, match=match):
        make_dataset(name, **params)


def test_config_error_is_value_error_and_bad_n():
    assert issubclass(ConfigError, ValueError)
    with pytest.raises(ConfigError):
        make_dataset("ring").sample(-1, gen(0))
