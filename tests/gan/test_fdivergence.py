"""Tests for the f-divergence table, the f-GAN objective and the Lambert W helper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import torch
from scipy.spatial.distance import jensenshannon

from wgan.errors import ConfigError
from wgan.objectives import (
    DIVERGENCES,
    FDivergence,
    lambertw_exp,
    make_objective,
    minimax_critic_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    variational_bound,
    weighted_jensen_shannon,
)
from wgan.objectives.fdivergence import get_divergence

# Every row of the table, plus a non-default weight for the weighted JS divergence.
ALL: dict[str, FDivergence] = dict(DIVERGENCES)
ALL["weighted_jensen_shannon_pi0.3"] = weighted_jensen_shannon(0.3)
IDS = list(ALL)


@pytest.fixture(scope="module")
def pq():
    rng = np.random.default_rng(1234)
    p = rng.dirichlet(np.ones(5)) * 0.9 + 0.02  # strictly positive, sums to 1
    q = rng.dirichlet(np.ones(5)) * 0.9 + 0.02
    return torch.tensor(p), torch.tensor(q)


# ------------------------------------------------------------------------------------------
# closed forms, checked against independent references
# ------------------------------------------------------------------------------------------


def test_closed_forms_against_references(pq):
    p, q = pq
    pn, qn = p.numpy(), q.numpy()
    kl = scipy.special.rel_entr(pn, qn).sum()
    rkl = scipy.special.rel_entr(qn, pn).sum()
    jsd = jensenshannon(pn, qn) ** 2  # natural log: JSD in [0, log 2]
    d = {k: float(v.closed_form(p, q)) for k, v in DIVERGENCES.items()}
    assert d["kl"] == pytest.approx(kl, rel=1e-12)
    assert d["reverse_kl"] == pytest.approx(rkl, rel=1e-12)
    assert d["jeffrey"] == pytest.approx(kl + rkl, rel=1e-12)
    assert d["jensen_shannon"] == pytest.approx(2 * jsd, rel=1e-10)  # the table's f gives 2 JSD
    assert d["weighted_jensen_shannon"] == pytest.approx(jsd, rel=1e-10)  # pi = 1/2: JSD
    assert d["gan"] == pytest.approx(2 * jsd - math.log(4), rel=1e-10)
    assert d["total_variation"] == pytest.approx(0.5 * np.abs(pn - qn).sum(), rel=1e-12)
    assert d["pearson"] == pytest.approx(((pn - qn) ** 2 / qn).sum(), rel=1e-12)
    assert d["neyman"] == pytest.approx(((pn - qn) ** 2 / pn).sum(), rel=1e-12)
    hel = ((np.sqrt(pn) - np.sqrt(qn)) ** 2).sum()
    assert d["squared_hellinger"] == pytest.approx(hel, rel=1e-12)


def _jeffrey_conjugate(t):
    w = torch.from_numpy(scipy.special.lambertw(np.exp(1 - t.numpy())).real)
    return w + 1 / w + t - 2


# Nowozin, Cseke & Tomioka 2016 (arXiv 1606.00709): the generator f (Table 1), the output
# activation g_f and the conjugate f* (Table 2), typed in here from the paper, not taken from
# wgan's table, so that the table the library uses is checked against the published one.
PAPER = {
    "total_variation": (
        lambda u: 0.5 * (u - 1).abs(),
        lambda v: 0.5 * torch.tanh(v),
        lambda t: t,
    ),
    "kl": (lambda u: u * u.log(), lambda v: v, lambda t: torch.exp(t - 1)),
    "reverse_kl": (lambda u: -u.log(), lambda v: -torch.exp(-v), lambda t: -1 - torch.log(-t)),
    "pearson": (lambda u: (u - 1) ** 2, lambda v: v, lambda t: t**2 / 4 + t),
    "neyman": (
        lambda u: (1 - u) ** 2 / u,
        lambda v: 1 - torch.exp(-v),
        lambda t: 2 - 2 * torch.sqrt(1 - t),
    ),
    "squared_hellinger": (
        lambda u: (u.sqrt() - 1) ** 2,
        lambda v: 1 - torch.exp(-v),
        lambda t: t / (1 - t),
    ),
    "jeffrey": (lambda u: (u - 1) * u.log(), lambda v: v, _jeffrey_conjugate),
    "jensen_shannon": (
        lambda u: -(u + 1) * ((1 + u) / 2).log() + u * u.log(),
        lambda v: math.log(2) - torch.log1p(torch.exp(-v)),
        lambda t: -torch.log(2 - torch.exp(t)),
    ),
    "gan": (
        lambda u: u * u.log() - (u + 1) * (u + 1).log(),
        lambda v: -torch.log1p(torch.exp(-v)),
        lambda t: -torch.log(1 - torch.exp(t)),
    ),
}


def test_table_matches_the_published_tables():
    """Every row but the weighted JS (this package's addition) is the paper's f, g_f and f*."""
    assert set(DIVERGENCES) == {*PAPER, "weighted_jensen_shannon"}
    u = torch.logspace(-3, 2, 101, dtype=torch.float64)
    v = torch.linspace(-4, 4, 81, dtype=torch.float64)
    for name, (f, g, f_star) in PAPER.items():
        div = DIVERGENCES[name]
        torch.testing.assert_close(div.f(u), f(u), rtol=1e-10, atol=1e-12, msg=name)
        torch.testing.assert_close(div.activation(v), g(v), rtol=1e-10, atol=1e-12, msg=name)
        t = g(v)  # f* on the range of g_f, where the f-GAN evaluates it
        torch.testing.assert_close(div.f_star(t), f_star(t), rtol=1e-9, atol=1e-10, msg=name)
        torch.testing.assert_close(
            div.f_star_of_activation(v), f_star(t), rtol=1e-8, atol=1e-10, msg=name
        )


@pytest.mark.parametrize("name", IDS)
def test_closed_form_equals_integral_of_f(name, pq):
    div = ALL[name]
    p, q = pq
    assert float(div.closed_form(p, q)) == pytest.approx(
        float((q * div.f(p / q)).sum()), rel=1e-10, abs=1e-12
    )


@pytest.mark.parametrize("name", IDS)
def test_numpy_inputs_accepted(name, pq):
    div = ALL[name]
    p, q = pq
    out = div.closed_form(p.numpy(), q.numpy())
    assert isinstance(out, np.floating)
    assert out == pytest.approx(float(div.closed_form(p, q)), rel=1e-12)
    assert isinstance(div.f(np.array([0.5, 2.0])), np.ndarray)


# ------------------------------------------------------------------------------------------
# (1) the bound is tight at T* = f'(p/q); (2) it is a lower bound for any other T
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", IDS)
def test_bound_is_tight_at_optimal_critic(name, pq):
    div = ALL[name]
    p, q = pq
    t_star = div.f_prime(p / q)
    bound = variational_bound(t_star, div.f_star(t_star), p, q)
    assert bound.item() == pytest.approx(float(div.closed_form(p, q)), abs=1e-4)
    assert bound.item() == pytest.approx(float(div.closed_form(p, q)), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", IDS)
def test_bound_is_lower_bound_for_random_critics(name, pq):
    div = ALL[name]
    p, q = pq
    gen = torch.Generator().manual_seed(0)
    v = 2.0 * torch.randn(2000, 5, generator=gen, dtype=torch.float64)
    t = div.activation(v)
    assert (t <= div.t_sup).all()  # g maps into dom f*
    bounds = variational_bound(t, div.f_star_of_activation(v), p, q)  # one bound per row
    divergence = float(div.closed_form(p, q))
    assert bounds.shape == (2000,)
    assert (bounds <= divergence + 1e-9).all()
    # and near-optimal critics get close to it: v* = g^{-1}(T*) perturbed slightly
    t_star = div.f_prime(p / q)
    near = t_star + 1e-3 * torch.randn(50, 5, generator=gen, dtype=torch.float64)
    if name == "total_variation":
        near = near.clamp(-0.5, 0.5)
    near_bounds = variational_bound(near, div.f_star(near), p, q)
    assert (near_bounds <= divergence + 1e-9).all()
    assert near_bounds.max().item() > divergence - 1e-3


@pytest.mark.parametrize("name", IDS)
def test_maximising_bound_recovers_divergence(name, pq):
    """Gradient ascent on the bound over raw outputs v (one per atom) reaches D_f."""
    div = ALL[name]
    p, q = pq
    v = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([v], lr=0.1)
    for _ in range(400):
        opt.zero_grad()
        loss = -variational_bound(div.activation(v), div.f_star_of_activation(v), p, q)
        loss.backward()
        opt.step()
    bound = -loss.item()
    assert bound == pytest.approx(float(div.closed_form(p, q)), abs=2e-3)


# ------------------------------------------------------------------------------------------
# (3) f(1) = 0 (gan: -log 4) and f convex
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", IDS)
def test_f_at_one_and_convexity(name, pq):
    div = ALL[name]
    p, _ = pq
    f1 = float(div.f(torch.tensor(1.0, dtype=torch.float64)))
    expected = -math.log(4.0) if name == "gan" else 0.0  # the "gan" f is shifted by -log 4
    assert f1 == pytest.approx(expected, abs=1e-15)
    assert f1 == pytest.approx(float(div.closed_form(p, p)), abs=1e-12)  # D_f(P||P) = f(1)

    u = torch.logspace(-3, 2, 400, dtype=torch.float64)
    fu = div.f(u)
    assert torch.isfinite(fu).all()
    gen = torch.Generator().manual_seed(1)
    a = torch.exp(torch.empty(5000, dtype=torch.float64).uniform_(-6, 4, generator=gen))
    b = torch.exp(torch.empty(5000, dtype=torch.float64).uniform_(-6, 4, generator=gen))
    lam = torch.rand(5000, dtype=torch.float64, generator=gen)
    lhs = div.f(lam * a + (1 - lam) * b)
    rhs = lam * div.f(a) + (1 - lam) * div.f(b)
    assert (lhs <= rhs + 1e-10 * (1 + rhs.abs())).all()
    # f' is the derivative of f (central differences), away from the TV kink at u = 1
    u = torch.linspace(0.2, 5.0, 97, dtype=torch.float64)
    u = u[(u - 1).abs() > 1e-3]
    h = 1e-6
    fd = (div.f(u + h) - div.f(u - h)) / (2 * h)
    assert torch.allclose(div.f_prime(u), fd, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------------------
# (4) f*(g(v)) computed directly == the stable f_star_of_activation(v)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", IDS)
def test_f_star_of_activation_matches_direct(name):
    div = ALL[name]
    v = torch.linspace(-8, 8, 161, dtype=torch.float64)
    direct = div.f_star(div.activation(v))
    stable = div.f_star_of_activation(v)
    assert torch.allclose(stable, direct, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_f_star_of_activation_finite_with_gradients(name, dtype):
    div = ALL[name]
    v = torch.linspace(-30, 30, 121, dtype=dtype).requires_grad_()
    t = div.activation(v)
    fs = div.f_star_of_activation(v)
    assert torch.isfinite(t).all() and torch.isfinite(fs).all()
    (t.sum() - fs.sum()).backward()
    assert torch.isfinite(v.grad).all()


def test_f_star_is_the_conjugate_numerically():
    """f*(t) = sup_u t u - f(u), by brute force over a grid of u, at a few interior t."""
    u = torch.cat([torch.logspace(-4, 3, 50001, dtype=torch.float64), torch.ones(1).double()])
    for name, div in ALL.items():
        v = torch.tensor([-1.0, 0.0, 0.7], dtype=torch.float64)
        t = div.activation(v)
        brute = (t[:, None] * u[None, :] - div.f(u)[None, :]).max(dim=1).values
        exact = div.f_star(t)
        if name == "pearson":  # table f* = conjugate over all real u; equal where t >= -2
            assert (t >= -2).all()
        assert torch.allclose(brute, exact, rtol=1e-5, atol=1e-6), name


def test_jeffrey_conjugate_against_scipy_lambertw():
    div = DIVERGENCES["jeffrey"]
    t = np.linspace(-20, 20, 81)
    w = scipy.special.lambertw(np.exp(1 - t)).real
    ref = w + 1 / w + t - 2
    got = div.f_star(torch.tensor(t)).numpy()
    assert np.allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_get_divergence():
    assert get_divergence("kl") is DIVERGENCES["kl"]
    assert get_divergence("weighted_jensen_shannon", pi=0.25).pi == 0.25
    assert DIVERGENCES["weighted_jensen_shannon"].pi == 0.5
    assert DIVERGENCES["kl"].pi is None
    with pytest.raises(ConfigError, match="jensen_shannon"):
        get_divergence("js")
    with pytest.raises(ConfigError):
        weighted_jensen_shannon(1.0)


# ------------------------------------------------------------------------------------------
# (5) the f-GAN objective through make_objective
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DIVERGENCES))
@pytest.mark.parametrize("mode", ["saddle", "alternative"])
def test_fgan_objective_finite_and_backprops(name, mode):
    obj = make_objective("fgan", divergence=name, pi=0.3, generator_loss=mode)
    gen = torch.Generator().manual_seed(2)
    real = (torch.randn(16, 1, generator=gen) + 1.0).requires_grad_()
    fake = (torch.randn(16, 1, generator=gen) - 1.0).requires_grad_()
    out = obj.critic_loss(real, fake)
    assert {"loss", "estimate"} <= set(out)
    for val in out.values():
        assert val.dim() == 0 and torch.isfinite(val)
    assert torch.allclose(out["loss"], -out["estimate"])
    out["loss"].backward()
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()
    assert real.grad.abs().sum() > 0 and fake.grad.abs().sum() > 0

    fake2 = fake.detach().clone().requires_grad_()
    g = obj.generator_loss(fake2)
    assert g["loss"].dim() == 0 and torch.isfinite(g["loss"])
    g["loss"].backward()
    assert torch.isfinite(fake2.grad).all() and fake2.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(DIVERGENCES))
def test_fgan_estimate_matches_variational_bound(name):
    obj = make_objective("fgan", divergence=name)
    div = obj.divergence
    v_real = torch.linspace(-2, 3, 7, dtype=torch.float64)
    v_fake = torch.linspace(-3, 1, 5, dtype=torch.float64)
    out = obj.critic_loss(v_real, v_fake)
    expected = variational_bound(div.activation(v_real), div.f_star(div.activation(v_fake)))
    assert out["estimate"].item() == pytest.approx(expected.item(), rel=1e-10, abs=1e-12)
    saddle = obj.generator_loss(v_fake)["loss"]
    assert saddle.item() == pytest.approx(-div.f_star_of_activation(v_fake).mean().item())
    alt = make_objective("fgan", divergence=name, generator_loss="alternative")
    assert alt.generator_loss(v_fake)["loss"].item() == pytest.approx(
        -div.activation(v_fake).mean().item()
    )


def test_fgan_gan_is_the_minimax_gan():
    real = torch.tensor([0.0, 1.0, -3.0], dtype=torch.float64)
    fake = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    fgan = make_objective("fgan", divergence="gan").critic_loss(real, fake)
    mm = minimax_critic_loss(real, fake)
    assert fgan["loss"].item() == pytest.approx(mm["loss"].item(), rel=1e-12)
    assert fgan["estimate"].item() == pytest.approx(mm["value"].item(), rel=1e-12)  # 2JS-log4
    saddle = make_objective("fgan", divergence="gan").generator_loss(fake)["loss"]
    alt = make_objective("fgan", divergence="gan", generator_loss="alternative")
    assert saddle.item() == pytest.approx(minimax_generator_loss(fake)["loss"].item())
    assert alt.generator_loss(fake)["loss"].item() == pytest.approx(
        nonsaturating_generator_loss(fake)["loss"].item()
    )


# ------------------------------------------------------------------------------------------
# Lambert W of exp(a)
# ------------------------------------------------------------------------------------------


def test_lambertw_exp_float64_against_scipy():
    a = np.linspace(-30, 700, 20001)
    ref = scipy.special.lambertw(np.exp(a)).real
    got = lambertw_exp(torch.tensor(a)).numpy()
    assert np.max(np.abs(got - ref) / ref) < 1e-12


def test_lambertw_exp_float32_against_scipy():
    a32 = torch.linspace(-30, 700, 20001, dtype=torch.float32)
    ref = scipy.special.lambertw(np.exp(a32.double().numpy())).real  # same (rounded) inputs
    got = lambertw_exp(a32)
    assert got.dtype == torch.float32
    assert np.max(np.abs(got.double().numpy() - ref) / ref) < 1e-5


def test_lambertw_exp_identity_beyond_scipy_range():
    a = torch.tensor([-700.0, -300.0, -60.0, 709.0, 1e3, 1e5, 1e10, 1e100], dtype=torch.float64)
    w = lambertw_exp(a)
    assert torch.isfinite(w).all() and (w > 0).all()
    residual = (w + torch.log(w) - a) / a.abs()  # w + log w = a
    assert residual.abs().max().item() < 1e-14


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lambertw_exp_no_nan_or_inf(dtype):
    big = 1e30 if dtype == torch.float32 else 1e300
    a = torch.tensor([-1e4, -1e3, -200.0, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4, big], dtype=dtype)
    w = lambertw_exp(a)
    assert torch.isfinite(w).all() and (w >= 0).all()
    assert lambertw_exp(torch.tensor(0.0, dtype=dtype)).item() == pytest.approx(
        0.5671432904097838, rel=1e-6
    )  # omega constant W(1)
    assert lambertw_exp(torch.tensor(1.0, dtype=dtype)).item() == pytest.approx(1.0, rel=1e-6)
    inf = lambertw_exp(torch.tensor([-math.inf, math.inf], dtype=dtype))
    assert inf[0].item() == 0.0 and inf[1].item() == math.inf


def test_lambertw_exp_gradient():
    a = torch.linspace(-40, 40, 41, dtype=torch.float64, requires_grad=True)
    w = lambertw_exp(a)
    w.sum().backward()
    assert torch.allclose(a.grad, (w / (1 + w)).detach(), rtol=1e-14)
    a_small = torch.linspace(-5, 5, 11, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambertw_exp, (a_small,))
    assert torch.autograd.gradgradcheck(lambertw_exp, (a_small,))


def test_lambertw_exp_integer_input():
    w = lambertw_exp(torch.tensor([0, 1]))
    assert w.dtype == torch.get_default_dtype()
    assert w[1].item() == pytest.approx(1.0, rel=1e-6)
