"""Tests for the standard GAN objectives and the objective registry (wgan.objectives)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wgan.errors import ConfigError, WganError
from wgan.objectives import (
    DIVERGENCES,
    FGAN,
    OBJECTIVES,
    HingeGAN,
    LeastSquaresGAN,
    MinimaxGAN,
    NonSaturatingGAN,
    Objective,
    WassersteinGAN,
    as_batch,
    make_objective,
)

STANDARD = ["minimax", "nonsaturating", "wasserstein", "least_squares", "hinge"]

REAL = [0.0, 1.0]
FAKE = [-1.0, 2.0]


def _t(x, dtype=torch.float64, requires_grad=False):
    return torch.tensor(x, dtype=dtype, requires_grad=requires_grad)


def _softplus(x):
    return np.log1p(np.exp(np.asarray(x, dtype=np.float64)))


# ------------------------------------------------------------------------------------------
# Hand-computed values on real_out = [0, 1], fake_out = [-1, 2].
# ------------------------------------------------------------------------------------------


def test_minimax_hand_values():
    out = make_objective("minimax").critic_loss(_t(REAL), _t(FAKE))
    # -E log sigmoid(real) - E log(1 - sigmoid(fake))
    log_d_real = np.log(1.0 / (1.0 + np.exp(-np.array(REAL))))
    log_1m_d_fake = np.log(1.0 - 1.0 / (1.0 + np.exp(-np.array(FAKE))))
    value = log_d_real.mean() + log_1m_d_fake.mean()
    assert out["loss"].item() == pytest.approx(-value, rel=1e-12)
    assert out["value"].item() == pytest.approx(value, rel=1e-12)
    assert out["estimate"].item() == pytest.approx((value + 2 * math.log(2)) / 2, rel=1e-12)
    # by hand: loss = (log 2 + log(1 + e^-1))/2 + (log(1 + e^-1) + log(1 + e^2))/2
    by_hand = (math.log(2) + math.log1p(math.exp(-1))) / 2 + (
        math.log1p(math.exp(-1)) + math.log1p(math.exp(2))
    ) / 2
    assert out["loss"].item() == pytest.approx(by_hand, rel=1e-12)
    assert out["d_real"].item() == pytest.approx(0.5)
    assert out["d_fake"].item() == pytest.approx(0.5)
    assert out["p_real"].item() == pytest.approx(np.exp(log_d_real).mean())

    g = make_objective("minimax").generator_loss(_t(FAKE))["loss"].item()
    assert g == pytest.approx(log_1m_d_fake.mean(), rel=1e-12)  # E log(1 - D(G(z)))
    g_ns = make_objective("nonsaturating").generator_loss(_t(FAKE))["loss"].item()
    assert g_ns == pytest.approx(-np.log(1 / (1 + np.exp(-np.array(FAKE)))).mean(), rel=1e-12)
    assert g_ns == pytest.approx(_softplus(-np.array(FAKE)).mean(), rel=1e-12)


def test_nonsaturating_critic_is_minimax_critic():
    a = make_objective("minimax").critic_loss(_t(REAL), _t(FAKE))
    b = make_objective("nonsaturating").critic_loss(_t(REAL), _t(FAKE))
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k])


def test_wasserstein_hand_values():
    obj = make_objective("wasserstein")
    out = obj.critic_loss(_t(REAL), _t(FAKE))
    assert out["estimate"].item() == pytest.approx(0.5 - 0.5)
    assert out["loss"].item() == pytest.approx(0.0)
    out = obj.critic_loss(_t([1.0, 3.0]), _t([-1.0, 0.0]))
    assert out["estimate"].item() == pytest.approx(2.0 - (-0.5))  # E D(x) - E D(G(z))
    assert out["loss"].item() == pytest.approx(-2.5)
    assert obj.generator_loss(_t(FAKE))["loss"].item() == pytest.approx(-0.5)


def test_least_squares_hand_values():
    obj = make_objective("least_squares")
    out = obj.critic_loss(_t(REAL), _t(FAKE))
    # 1/2 mean((0-1)^2, (1-1)^2) + 1/2 mean((-1)^2, 2^2) = 0.25 + 1.25
    assert out["loss"].item() == pytest.approx(1.5)
    assert out["estimate"].item() == pytest.approx(2.0 - 8.0 * 1.5)
    # 1/2 mean((-1-1)^2, (2-1)^2) = 1/2 * 2.5
    assert obj.generator_loss(_t(FAKE))["loss"].item() == pytest.approx(1.25)


def test_hinge_hand_values():
    obj = make_objective("hinge")
    out = obj.critic_loss(_t(REAL), _t(FAKE))
    # mean(relu(1-0), relu(1-1)) + mean(relu(1-1), relu(1+2)) = 0.5 + 1.5
    assert out["loss"].item() == pytest.approx(2.0)
    assert out["estimate"].item() == pytest.approx(0.0)
    assert obj.generator_loss(_t(FAKE))["loss"].item() == pytest.approx(-0.5)


# ------------------------------------------------------------------------------------------
# Estimates at the optimal critic on a discrete pair p, q (atoms repeated by probability).
# ------------------------------------------------------------------------------------------

P = np.array([0.5, 0.25, 0.25])
Q = np.array([0.25, 0.25, 0.5])
REAL_ATOMS = [0, 0, 1, 2]  # empirical distribution exactly P
FAKE_ATOMS = [0, 1, 2, 2]  # empirical distribution exactly Q


def _at_atoms(critic_values):
    c = torch.tensor(critic_values, dtype=torch.float64)
    return c[REAL_ATOMS], c[FAKE_ATOMS]


def test_minimax_estimate_is_js_at_optimum():
    real, fake = _at_atoms(np.log(P / Q))  # logit of D* = p/(p+q)
    m = (P + Q) / 2
    js = 0.5 * np.sum(P * np.log(P / m)) + 0.5 * np.sum(Q * np.log(Q / m))
    out = MinimaxGAN().critic_loss(real, fake)
    assert out["estimate"].item() == pytest.approx(js, rel=1e-10)
    assert out["value"].item() == pytest.approx(2 * js - 2 * math.log(2), rel=1e-10)


def test_least_squares_estimate_is_triangular_at_optimum():
    real, fake = _at_atoms(P / (P + Q))  # D* = p/(p+q)
    delta = np.sum((P - Q) ** 2 / (P + Q))
    out = LeastSquaresGAN().critic_loss(real, fake)
    assert out["loss"].item() == pytest.approx((2 - delta) / 8, rel=1e-10)
    assert out["estimate"].item() == pytest.approx(delta, rel=1e-10)


def test_hinge_estimate_is_tv_at_optimum():
    real, fake = _at_atoms(np.sign(P - Q))  # D* = sign(p - q)
    tv = 0.5 * np.abs(P - Q).sum()
    out = HingeGAN().critic_loss(real, fake)
    assert out["loss"].item() == pytest.approx(2 * (1 - tv))
    assert out["estimate"].item() == pytest.approx(tv)


@pytest.mark.parametrize("name", ["minimax", "least_squares", "hinge"])
def test_estimate_is_lower_bound_for_other_critics(name):
    obj = make_objective(name)
    optimal = {
        "minimax": np.log(P / Q),
        "least_squares": P / (P + Q),
        "hinge": np.sign(P - Q),
    }[name]
    best = obj.critic_loss(*_at_atoms(optimal))["estimate"].item()
    rng = np.random.default_rng(0)
    for _ in range(50):
        other = optimal + rng.normal(scale=0.5, size=3)
        assert obj.critic_loss(*_at_atoms(other))["estimate"].item() <= best + 1e-12


# ------------------------------------------------------------------------------------------
# Sign sanity, shapes, gradients, extreme logits.
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", STANDARD)
def test_better_separation_gives_larger_estimate(name):
    obj = make_objective(name)
    # (score meaning "real", score meaning "fake"); LSGAN's targets are b=1 (real), a=0 (fake).
    hi, lo = (1.0, 0.0) if name == "least_squares" else (1.0, -1.0)
    mid = (hi + lo) / 2

    def est(r, f):
        return obj.critic_loss(torch.full((8,), r), torch.full((8,), f))["estimate"].item()

    separating, confused, wrong_way = est(hi, lo), est(mid, mid), est(lo, hi)
    assert separating > confused > wrong_way


@pytest.mark.parametrize("name", STANDARD)
def test_generator_loss_decreases_when_critic_likes_fakes(name):
    obj = make_objective(name)
    lo = 0.0 if name == "least_squares" else -1.0  # LSGAN's "fake" target is a=0
    rejected = obj.generator_loss(torch.full((4,), lo))["loss"]
    accepted = obj.generator_loss(torch.full((4,), 1.0))["loss"]
    assert accepted.item() < rejected.item()


@pytest.mark.parametrize("name", STANDARD)
def test_shapes_b_and_b1_agree(name):
    obj = make_objective(name)
    real = torch.tensor([0.3, -1.2, 2.0])
    fake = torch.tensor([-0.5, 0.1, 1.5, -2.0])  # batch sizes may differ
    a = obj.critic_loss(real, fake)
    b = obj.critic_loss(real[:, None], fake[:, None])
    assert set(a) == set(b) and {"loss", "estimate"} <= set(a)
    for k in a:
        assert a[k].dim() == 0
        assert torch.allclose(a[k], b[k])
    ga, gb = obj.generator_loss(fake), obj.generator_loss(fake[:, None])
    assert ga["loss"].dim() == 0 and torch.allclose(ga["loss"], gb["loss"])


@pytest.mark.parametrize("name", STANDARD)
def test_bad_shape_raises(name):
    obj = make_objective(name)
    with pytest.raises(WganError):
        obj.critic_loss(torch.zeros(3, 2), torch.zeros(3, 2))
    with pytest.raises(WganError):
        obj.generator_loss(torch.zeros(3, 1, 1))


def test_as_batch():
    x = torch.arange(3.0)
    assert as_batch(x) is x
    assert as_batch(x[:, None]).shape == (3,)


@pytest.mark.parametrize("name", STANDARD)
@pytest.mark.parametrize("scale", [1.0, 100.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_flow_and_no_nan(name, scale, dtype):
    obj = make_objective(name)
    base = torch.tensor([[1.0], [-1.0], [0.5], [-0.5]], dtype=dtype)
    for real_sign, fake_sign in [(1, -1), (-1, 1)]:  # both confident-right and confident-wrong
        real = (real_sign * scale * base.abs()).requires_grad_()
        fake = (fake_sign * scale * base.abs()).requires_grad_()
        out = obj.critic_loss(real, fake)
        assert all(torch.isfinite(v) for v in out.values())
        assert out["loss"].requires_grad and out["estimate"].requires_grad
        out["loss"].backward()
        assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()
        if real_sign == -1:
            # Confidently wrong (real scored low, fake high): every objective's critic loss
            # falls as the real scores rise and the fake scores fall, for every sample.
            assert (real.grad < 0).all() and (fake.grad > 0).all(), (real.grad, fake.grad)

        fake2 = (fake_sign * scale * base.abs()).requires_grad_()
        g = obj.generator_loss(fake2)
        assert torch.isfinite(g["loss"]) and g["loss"].dim() == 0
        g["loss"].backward()
        assert torch.isfinite(fake2.grad).all()


def test_nonsaturating_vs_minimax_gradient_when_fakes_rejected():
    # D(G(z)) ~ 0: the minimax generator gradient vanishes, the non-saturating one does not.
    l_fake = torch.full((4,), -20.0, dtype=torch.float64, requires_grad=True)
    MinimaxGAN().generator_loss(l_fake)["loss"].backward()
    g_minimax = l_fake.grad.abs().max().item()
    l_fake.grad = None
    NonSaturatingGAN().generator_loss(l_fake)["loss"].backward()
    g_ns = l_fake.grad.abs().max().item()
    assert g_minimax < 1e-8 < 0.1 < g_ns


# ------------------------------------------------------------------------------------------
# Registry.
# ------------------------------------------------------------------------------------------


def test_registry_names_and_types():
    assert set(OBJECTIVES) == {
        "minimax",
        "nonsaturating",
        "wasserstein",
        "least_squares",
        "hinge",
        "fgan",
    }
    expected = {
        "minimax": (MinimaxGAN, "js"),
        "nonsaturating": (NonSaturatingGAN, "js"),
        "wasserstein": (WassersteinGAN, "w1"),
        "least_squares": (LeastSquaresGAN, "triangular"),
        "hinge": (HingeGAN, "tv"),
    }
    for name, (cls, est) in expected.items():
        obj = make_objective(name)
        assert isinstance(obj, cls) and isinstance(obj, Objective)
        assert obj.name == name and obj.estimate_name == est
    for div in DIVERGENCES:
        obj = make_objective("fgan", divergence=div)
        assert isinstance(obj, FGAN) and obj.name == "fgan" and obj.estimate_name == div
    obj = make_objective(
        "fgan", divergence="weighted_jensen_shannon", pi=0.2, generator_loss="alternative"
    )
    assert obj.divergence.pi == 0.2 and obj.generator_mode == "alternative"


def test_registry_errors():
    with pytest.raises(ConfigError, match="valid choices: minimax"):
        make_objective("wgan")
    with pytest.raises(ValueError):  # ConfigError is a ValueError
        make_objective("WASSERSTEIN")
    with pytest.raises(ConfigError, match="valid parameters: none"):
        make_objective("hinge", margin=2.0)
    with pytest.raises(ConfigError, match="divergence"):
        make_objective("fgan")
    with pytest.raises(ConfigError, match="valid parameters: divergence, pi, generator_loss"):
        make_objective("fgan", divergence="kl", temperature=1.0)
    with pytest.raises(ConfigError, match="total_variation"):
        make_objective("fgan", divergence="chi2")
    with pytest.raises(ConfigError, match="saddle, alternative"):
        make_objective("fgan", divergence="kl", generator_loss="nonsaturating")
    for bad_pi in (0.0, 1.0, -0.1, 1.5, "0.5", True):
        with pytest.raises(ConfigError, match="pi"):
            make_objective("fgan", divergence="weighted_jensen_shannon", pi=bad_pi)
