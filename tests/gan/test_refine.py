"""Critic-guided refinement (wgan.gan.refine): each method against a closed form on a critic with
a known potential, and Run.samples(refine=...) on real runs (labels kept, critic untouched)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import tiny
from scipy import stats

from wgan.config import resolve
from wgan.errors import ConfigError, WganError
from wgan.gan import refine as R
from wgan.training.run import Run

# DOT's Adam (lr 0.01, beta2 0.9) moves a coordinate by at most lr |g_t| / sqrt(v_t) <=
# lr / sqrt(1 - beta2) per step; at a kink of the objective it oscillates within one step, a
# distance of at most STEP in 2-D.
STEP = 0.01 * math.sqrt(2 / (1 - 0.9))


def cone(c: torch.Tensor, k: float):
    """D(x) = -k ||x - c||: k-Lipschitz, its potential peaks at c."""
    return lambda x: -k * torch.linalg.vector_norm(x - c, dim=1)


def linear(a: torch.Tensor):
    """D(x) = a . x (Lipschitz constant ||a||)."""
    return lambda x: x.flatten(1) @ a


def _start(n: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


# -- DOT ----------------------------------------------------------------------------------------


def test_dot_moves_every_sample_to_the_peak_when_the_critic_outweighs_the_cost():
    # ||x - y|| + (K / K_eff) ||x - c|| >= ||y - c|| + (K / K_eff - 1) ||x - c||: with K_eff < K
    # the unique minimiser is c, whatever y is.
    c = torch.tensor([1.5, -0.5])
    y = _start()
    assert (y - c).norm(dim=1).min() > 0.3  # every sample starts away from c
    x = R.refine("dot", cone(c, 2.0), y, steps=600, k_eff=1.0)
    assert (x - c).norm(dim=1).max() < STEP


def test_dot_leaves_samples_where_the_cost_outweighs_the_critic():
    # K_eff > K: ||x - y|| + (K / K_eff) ||x - c|| >= (K / K_eff) ||y - c|| ... minimised at x = y.
    c = torch.tensor([1.5, -0.5])
    y = _start()
    x = R.refine("dot", cone(c, 2.0), y, steps=300, k_eff=4.0)
    assert (x - y).norm(dim=1).max() < STEP
    assert not torch.equal(x, y)  # it did take Adam steps (and came back)


def test_dot_in_latent_space_moves_the_noise_to_the_preimage_of_the_peak():
    # G(z) = s z + b: D(G(z)) = -K s ||z - (c - b) / s||, a cone in z of slope K s > K_eff = 1.
    s, b, c = 2.0, torch.tensor([0.5, 0.5]), torch.tensor([1.5, -0.5])
    z0 = _start()
    z = R.refine("dot", cone(c, 1.0), z0, generator=lambda v: s * v + b, steps=600, k_eff=1.0)
    assert (z - (c - b) / s).norm(dim=1).max() < STEP


def test_dot_measures_k_eff_when_none_is_given():
    # On the cone the measured K_eff is just below K, so K / K_eff = 1 + delta: the objective is
    # ||y - c|| + delta ||x - c|| on the segment [y, c] and larger off it. DOT then moves each
    # sample onto the segment, towards c (slowly: the slope along it is only delta).
    c = torch.tensor([1.5, -0.5])
    y = _start()
    k_eff = R.effective_lipschitz(cone(c, 2.0), y)
    assert 1.99 < k_eff < 2.0
    x = R.refine("dot", cone(c, 2.0), y, steps=600)
    assert torch.equal(x, R.refine("dot", cone(c, 2.0), y, steps=600, k_eff=k_eff))
    off_segment = (x - y).norm(dim=1) + (x - c).norm(dim=1) - (y - c).norm(dim=1)
    assert off_segment.max() < STEP
    assert ((x - c).norm(dim=1) < (y - c).norm(dim=1) - 0.1).all()


# -- K_eff --------------------------------------------------------------------------------------


def test_k_eff_of_a_linear_critic_on_pairs_along_it_is_its_norm():
    a = torch.tensor([3.0, -4.0])
    y = torch.linspace(-2, 2, 50)[:, None] * a / a.norm() + torch.tensor([0.3, 0.1])
    assert R.effective_lipschitz(linear(a), y) == pytest.approx(5.0, rel=1e-6)


def test_k_eff_of_a_linear_critic_on_random_pairs_reaches_its_norm():
    # |a . (x1 - x2)| / ||x1 - x2|| = ||a|| |cos theta|, theta uniform for isotropic pairs. Of
    # n/2 = 2048 distinct pairs, P(none within t = 0.01 rad of +-a) = (1 - 2t/pi)^2048 < 2e-6,
    # and within t, 1 - |cos theta| <= t^2 / 2 = 5e-5.
    a = torch.tensor([3.0, -4.0])
    k = R.effective_lipschitz(linear(a), _start(4096))
    assert 5.0 * (1 - 5e-5) <= k <= 5.0 * (1 + 1e-6)


def test_k_eff_in_latent_space_is_measured_through_the_generator():
    # D(G(z)) = a . B z = (B^T a) . z: along B^T a the quotient is ||B^T a|| (not ||a|| = 5).
    a, mat = torch.tensor([3.0, -4.0]), torch.tensor([[2.0, 0.0], [1.0, 0.5]])
    u = mat.T @ a
    z = torch.linspace(-1, 1, 20)[:, None] * u / u.norm()
    k = R.effective_lipschitz(linear(a), z, generator=lambda v: v @ mat.T)
    assert k == pytest.approx(float(u.norm()), rel=1e-6)


# -- DDLS ---------------------------------------------------------------------------------------


def _ar1_variance(eps: float, steps: int) -> float:
    """Var z_T of z <- (1 - eps/2) z + sqrt(eps) xi from Var z_0 = 1 (exact)."""
    a2 = (1 - eps / 2) ** 2
    return a2**steps + eps * (1 - a2**steps) / (1 - a2)


def test_ddls_with_a_zero_critic_leaves_the_prior_invariant():
    # E(z) = ||z||^2 / 2: each coordinate is an AR(1) chain whose variance stays at 1 up to the
    # discretisation (1.0025 at eps = 0.01: far inside the sampling error checked here).
    n, steps, eps = 20000, 400, 0.01
    z0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
    zero = lambda x: 0.0 * x.sum(1)  # noqa: E731
    rng = torch.Generator().manual_seed(2)
    z = R.refine("ddls", zero, z0, generator=lambda v: v, steps=steps, rng=rng, eps=eps)
    var = _ar1_variance(eps, steps)
    assert abs(var - 1) < 0.003
    se_mean, se_var = math.sqrt(var / n), var * math.sqrt(2 / n)
    assert z.mean(0).abs().max() < 4 * se_mean
    cov = torch.cov(z.T)
    assert (cov.diagonal() - var).abs().max() < 4 * se_var
    assert cov[0, 1].abs() < 4 * var / math.sqrt(n)
    for j in range(2):  # and each coordinate is N(0, 1) as a whole (Kolmogorov-Smirnov)
        assert stats.kstest(z[:, j].numpy(), "norm").pvalue > 1e-4
    assert (z - z0).norm(dim=1).mean() > 0.5  # the chain moved: invariant, not stuck


def test_ddls_with_a_linear_critic_drifts_to_its_tilted_prior():
    # d(x) = a . x: E(z) = ||z||^2/2 - a . z, target N(a, I); the chain's mean after T steps is
    # a (1 - (1 - eps/2)^T) exactly, its spread as with a zero critic.
    n, steps, eps = 20000, 400, 0.01
    a = torch.tensor([1.0, -0.5])
    z0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
    rng = torch.Generator().manual_seed(2)
    z = R.refine("ddls", linear(a), z0, generator=lambda v: v, steps=steps, rng=rng, eps=eps)
    mean = a * (1 - (1 - eps / 2) ** steps)
    se = math.sqrt(_ar1_variance(eps, steps) / n)
    assert (z.mean(0) - mean).abs().max() < 4 * se


def test_ddls_needs_a_generator():
    with pytest.raises(WganError, match="latent space"):
        R.refine("ddls", linear(torch.ones(2)), _start())


# -- gradient flow ------------------------------------------------------------------------------


def test_flow_climbs_a_linear_critic_by_the_expected_amount():
    a = torch.tensor([3.0, -4.0])
    y = _start()
    x = R.refine("flow", linear(a), y, steps=50, eta=0.01)
    torch.testing.assert_close(x, y + 0.5 * a)  # steps x eta x a
    rise = linear(a)(x) - linear(a)(y)
    torch.testing.assert_close(rise, torch.full((64,), 0.5 * 25.0))  # steps x eta x ||a||^2


def test_flow_in_latent_space_follows_the_gradient_through_the_generator():
    a, mat = torch.tensor([3.0, -4.0]), torch.tensor([[2.0, 0.0], [1.0, 0.5]])
    z0 = _start()
    z = R.refine("flow", linear(a), z0, generator=lambda v: v @ mat.T, steps=20, eta=0.01)
    torch.testing.assert_close(z, z0 + 0.2 * (mat.T @ a))


def test_noisy_flow_adds_the_entropy_terms_spread():
    # x_T = x_0 + T eta a + sqrt(2 gamma eta) sum xi: mean shift T eta a, variance 2 gamma eta T.
    n, steps, eta, gamma = 20000, 50, 0.01, 0.5
    a = torch.tensor([1.0, 2.0])
    x = R.refine(
        "flow",
        linear(a),
        torch.zeros(n, 2),
        steps=steps,
        eta=eta,
        gamma=gamma,
        rng=torch.Generator().manual_seed(3),
    )
    var = 2 * gamma * eta * steps
    assert (x.mean(0) - steps * eta * a).abs().max() < 4 * math.sqrt(var / n)
    assert (x.var(0) - var).abs().max() < 4 * var * math.sqrt(2 / n)


# -- the entry point's checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"method": "sharpen"}, "refine must be one of dot, ddls, flow"),
        ({"steps": -1}, "steps must be >= 0"),
        ({"steps": 2.5}, "must be an integer"),
        ({"lr": 0.0}, "lr must be a finite number > 0"),
        ({"eta": 0.1}, "dot takes the options"),
        ({"k_eff": float("nan")}, "k_eff must be a finite number > 0"),
        ({"k_eff": 0.0}, "k_eff must be a finite number > 0"),
        ({"betas": (0.9, 1.0)}, "betas must lie in"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, match):
    args = {"method": "dot", **kwargs}
    with pytest.raises(ConfigError, match=match):
        R.refine(args.pop("method"), linear(torch.ones(2)), _start(), **args)


def test_zero_steps_return_the_start():
    y = _start()
    assert torch.equal(R.refine("flow", linear(torch.ones(2)), y, steps=0), y)


# -- Run.samples(refine=...) --------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    cfg = resolve("toy-wgan-sn", tiny(hidden=16, steps=2))
    return Run(cfg, tmp_path_factory.mktemp("toy") / "run")


def test_samples_without_refine_are_the_generators_draws(toy_run):
    gen = toy_run.sampler
    gen.eval()
    expected = gen.sample(300, torch.Generator().manual_seed(7))
    gen.train()
    assert torch.equal(toy_run.samples(300, seed=7), expected)
    assert torch.equal(toy_run.samples(300, seed=7, refine=None), expected)
    # zero refinement steps draw the same noise in the same order: the very same samples
    assert torch.equal(toy_run.samples(300, seed=7, refine="dot", refine_steps=0), expected)


@pytest.mark.parametrize("method", R.METHODS)
def test_refinement_moves_the_samples_and_leaves_the_critic_alone(toy_run, method):
    critic = toy_run.critic
    critic.train()  # as during training: spectral norm's power iteration would update u, v
    before = {k: v.clone() for k, v in critic.state_dict().items()}
    modes: list[bool] = []
    hook = critic.register_forward_pre_hook(lambda m, args: modes.append(m.training))
    try:
        x = toy_run.samples(200, refine=method, refine_steps=5)
    finally:
        hook.remove()
    assert modes and not any(modes)  # every critic call in eval mode
    assert critic.training  # and the mode is restored
    after = critic.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in critic.parameters())
    assert not torch.equal(x, toy_run.samples(200))  # it did refine


def test_evaluate_with_refine_measures_the_refined_samples(toy_run):
    plain = toy_run.evaluate(200)
    refined = toy_run.evaluate(200, refine="flow", refine_steps=20)
    assert refined["w1"] != plain["w1"]
    assert toy_run.sample_refine is None  # only during that call
    assert toy_run.evaluate(200) == plain


def test_refine_steps_without_refine_is_an_error(toy_run):
    with pytest.raises(WganError, match="refine_steps needs refine"):
        toy_run.samples(5, refine_steps=3)
    with pytest.raises(ConfigError, match="refine must be one of"):
        toy_run.samples(5, refine="sharpen")


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    cfg = resolve("digits-cgan", tiny(width=8, batch=8))
    return Run(cfg, tmp_path_factory.mktemp("cgan") / "run")


@pytest.mark.parametrize("labels", [3, None])
@pytest.mark.parametrize("method", R.METHODS)
def test_a_conditional_run_refines_the_noise_and_keeps_each_label(conditional_run, method, labels):
    gen, critic = conditional_run.sampler, conditional_run.critic
    calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    scored: list[torch.Tensor] = []
    h1 = gen.register_forward_hook(lambda m, args, out: calls.append((args[0], args[1], out)))
    h2 = critic.register_forward_pre_hook(lambda m, args: scored.append(args[1]))
    try:
        x = conditional_run.samples(6, labels=labels, refine=method, refine_steps=3)
    finally:
        h1.remove()
        h2.remove()
    (z0, first, x0), (z1, _, x1) = calls[0], calls[-1]
    if labels is not None:
        assert (first == labels).all()
    assert all(torch.equal(c[1], first) for c in calls)  # G only ever saw the drawn labels
    assert all(torch.equal(s, first) for s in scored)  # and D scored at them
    assert not torch.equal(z1, z0)  # refinement moved the noise ...
    assert torch.equal(x, x1.float().cpu())  # ... and the samples are G(z', c) at the same c
    assert not torch.equal(x, x0.float().cpu())
    assert torch.equal(x0.float().cpu(), conditional_run.samples(6, labels=labels))
