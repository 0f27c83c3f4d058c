"""Lipschitz constraints: the penalty's value on a linear critic, clipping, spectral norm."""

import math

import pytest
import torch
from torch import nn

from wgan.constraints import (
    GradientPenalty,
    SpectralNorm,
    WeightClipping,
    input_gradient_norm,
    interpolates,
    make_constraints,
)
from wgan.errors import ConfigError
from wgan.gan.loss import GANLoss, PenaltyCall
from wgan.objectives import make_objective


def linear_critic(w):
    critic = nn.Linear(len(w), 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([w]))
        critic.bias.zero_()
    return critic


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.3, 0.4], [1.0, 0.0]])
def test_two_sided_penalty_on_linear_critic(w):
    # D(x) = w.x has gradient w everywhere, so the penalty is lambda (||w|| - 1)^2 exactly.
    critic = linear_critic(w)
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    terms = GradientPenalty(weight=10.0).penalty(critic, real, fake, torch.Generator())
    norm = math.hypot(*w)
    assert terms["penalty"].item() == pytest.approx(10.0 * (norm - 1.0) ** 2, rel=1e-5, abs=1e-6)
    assert terms["grad_norm"].item() == pytest.approx(norm, rel=1e-5)


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.3, 0.4]])
def test_one_sided_penalties_on_linear_critic(w):
    critic = linear_critic(w)
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    norm = math.hypot(*w)
    one = GradientPenalty(2.0, "one_sided").penalty(critic, real, fake, None)["penalty"]
    sq = GradientPenalty(2.0, "one_sided_squared").penalty(critic, real, fake, None)["penalty"]
    assert one.item() == pytest.approx(2.0 * max(0.0, norm - 1.0), abs=1e-5)
    assert sq.item() == pytest.approx(2.0 * max(0.0, norm - 1.0) ** 2, abs=1e-5)


def test_penalty_target_and_lazy_scaling():
    critic = linear_critic([3.0, 4.0])
    x = torch.randn(8, 2)
    # penalty() is lambda (||w|| - t)^2 whatever `every` is: the lazy factor is not its job ...
    terms = GradientPenalty(1.0, target=2.0, every=4).penalty(critic, x, x, None)
    assert terms["penalty"].item() == pytest.approx((5.0 - 2.0) ** 2, rel=1e-5)
    # ... but the critic loss's: on a step where it is due it is multiplied by `every` (the
    # step passes that factor; tests/gan/test_step.py checks on which steps it is due).
    cons = make_constraints(penalty="two_sided", penalty_weight=1.0, penalty_target=2.0,
                            penalty_every=4)  # fmt: skip
    assert cons.penalty_every == 4
    loss = GANLoss(make_objective("wasserstein"), cons)
    eps = torch.rand(8)
    due = loss.critic_terms(critic, x, x, eps=eps, penalty=PenaltyCall(factor=4.0))
    assert due["penalty"].item() == pytest.approx(4 * (5.0 - 2.0) ** 2, rel=1e-5)
    off = loss.critic_terms(critic, x, x, eps=eps, penalty=PenaltyCall(factor=0.0))
    assert float(off["penalty"]) == 0.0 and "grad_norm" not in off  # not computed
    torch.testing.assert_close(due["loss"] - off["loss"], due["penalty"])


def test_penalty_overrides_and_pre_drawn_weights():
    """``weight``/``target`` override lambda and t (one value per run in a sweep); eps (B,)
    drawn beforehand gives the interpolates a generator with the same draws gives."""
    critic = linear_critic([3.0, 4.0])
    gp = GradientPenalty(10.0)
    x = torch.randn(8, 2)
    terms = gp.penalty(critic, x, x, None, weight=2.0, target=3.0)
    assert terms["penalty"].item() == pytest.approx(2.0 * (5.0 - 3.0) ** 2, rel=1e-5)
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    eps = torch.rand(8, generator=torch.Generator().manual_seed(4))
    via_generator = interpolates(real, fake, torch.Generator().manual_seed(4))
    assert torch.equal(interpolates(real, fake, eps), via_generator)
    for impl in ("autograd", "func"):
        t = gp.penalty(critic, real, fake, eps, impl=impl)
        assert t["grad_norm"].item() == pytest.approx(5.0, rel=1e-5)


def test_eps_is_drawn_per_sample():
    real, fake = torch.ones(1000, 2), torch.zeros(1000, 2)
    x_hat = interpolates(real, fake, torch.Generator().manual_seed(0))
    # each row is eps_i * 1 + (1 - eps_i) * 0 = eps_i in both coordinates ...
    assert torch.equal(x_hat[:, 0], x_hat[:, 1])
    # ... and eps differs between samples, uniformly on [0, 1].
    assert x_hat[:, 0].unique().numel() > 990
    assert 0.45 < x_hat.mean().item() < 0.55 and x_hat.min() >= 0 and x_hat.max() <= 1


def test_penalty_gradient_reaches_critic_weights():
    critic = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    terms = GradientPenalty(10.0).penalty(critic, torch.randn(16, 2), torch.randn(16, 2), None)
    terms["penalty"].backward()
    # every weight matrix gets a gradient (the last bias cannot: grad_x D does not depend on it)
    weights = [p for p in critic.parameters() if p.ndim == 2]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in weights)
    assert all(p.grad.abs().sum() > 0 for p in weights)


def test_clipping_projects_every_parameter():
    critic = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.SGD(critic.parameters(), lr=10.0)
    (critic(torch.randn(64, 2)) ** 2).mean().backward()
    opt.step()
    assert max(p.abs().max().item() for p in critic.parameters()) > 0.01
    WeightClipping(0.01).project(critic)
    for p in critic.parameters():
        assert p.min().item() >= -0.01 and p.max().item() <= 0.01


def test_spectral_norm_makes_layers_near_1_lipschitz():
    torch.manual_seed(0)
    critic = SpectralNorm().prepare(nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 1)))
    for _ in range(30):  # power iteration converges over forward passes
        critic(torch.randn(8, 2))
    critic.eval()
    norms = input_gradient_norm(critic, torch.randn(512, 2))
    assert norms.max().item() <= 1.0 + 1e-3


def test_make_constraints_composes_and_validates():
    c = make_constraints(clip=0.1, penalty="two_sided", spectral_norm=True)
    assert [type(p).__name__ for p in c.parts] == [
        "SpectralNorm",
        "GradientPenalty",
        "WeightClipping",
    ]
    with pytest.raises(ConfigError):
        make_constraints(penalty="sideways")
    with pytest.raises(ConfigError):
        GradientPenalty(weight=-1.0)
